"""The DRCD test split as training data: articles, split by article, in simplified script.

DRCD (github:DRCKnowledgeTeam/DRCD, ``DRCD_test.json``; CC BY-SA 3.0, compiled from
Wikipedia by Delta Electronics) holds 3,493 questions over 1,000 paragraphs of 378
articles, in traditional script. It is converted the way the service converts
(``to_simplified``, OpenCC t2s) and split by article, so no article's text is both
trained on and tested on.

    python -m eval.drcd --data DIR --beir OUT   # BEIR directories of the validation and test splits
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

from index.ingest.clean import to_simplified
from index.ingest.documents import SourceDocument

FILE_NAME = "DRCD_test.json"
SHA256 = "d9de0b4d247a8391ac8daee6c02c2c8272b75562a1e2377b50ae04ecc09a7438"  # commit b944790 of the repository
SPLITS = ("train", "validation", "test")
SPLIT_SHARES = (0.70, 0.15, 0.15)
DEFAULT_SEED = 20261207


@dataclass(frozen=True)
class Question:
    id: str
    text: str
    answers: tuple[str, ...]  # the annotators' spans, distinct, in simplified script
    paragraph_id: str


@dataclass(frozen=True)
class Paragraph:
    id: str
    text: str
    questions: tuple[Question, ...]


@dataclass(frozen=True)
class Article:
    id: str
    title: str
    paragraphs: tuple[Paragraph, ...]


def load(data_dir: Path) -> list[Article]:
    path = Path(data_dir) / FILE_NAME
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != SHA256:
        raise SystemExit(f"{path} is not the DRCD test split this was built from (sha256 {digest})")
    articles = []
    for article in json.loads(raw)["data"]:
        paragraphs = []
        for paragraph in article["paragraphs"]:
            pid = str(paragraph["id"])
            questions = tuple(
                Question(
                    str(qa["id"]),
                    to_simplified(qa["question"]),
                    tuple(dict.fromkeys(to_simplified(a["text"]).strip() for a in qa["answers"] if a["text"].strip())),
                    pid,
                )
                for qa in paragraph["qas"]
            )
            paragraphs.append(Paragraph(pid, to_simplified(paragraph["context"]), questions))
        articles.append(Article(str(article["id"]), to_simplified(article["title"]), tuple(paragraphs)))
    return articles


def split_of(article_id: str, seed: int = DEFAULT_SEED) -> str:
    """The article's split, from a hash of the seed and its id: stable whatever the file's order."""
    fraction = int(hashlib.sha256(f"{seed}:{article_id}".encode()).hexdigest()[:12], 16) / 16**12
    bound = 0.0
    for name, share in zip(SPLITS, SPLIT_SHARES, strict=True):
        bound += share
        if fraction < bound:
            return name
    return SPLITS[-1]


def sources(articles: list[Article]) -> list[SourceDocument]:
    """One document per paragraph, titled by its article."""
    return [SourceDocument(p.id, a.title, f"{FILE_NAME}#{p.id}", p.text) for a in articles for p in a.paragraphs]


def removed_paragraphs(articles: list[Article], seed: int = DEFAULT_SEED) -> set[str]:
    """One paragraph per article of two or more, left out of an evaluation corpus: its questions become
    near-topic unanswerable ones (the article's other paragraphs stay)."""
    chooser = random.Random(seed)
    return {chooser.choice(a.paragraphs).id for a in articles if len(a.paragraphs) >= 2}


def write_beir(articles: list[Article], split: str, directory: Path, seed: int = DEFAULT_SEED) -> Path:
    """A BEIR directory: every paragraph of every split (less the removed ones of this split) as the
    corpus, this split's questions as the queries; a removed paragraph's questions are unanswerable."""
    in_split = [a for a in articles if split_of(a.id, seed) == split]
    removed = removed_paragraphs(in_split, seed)
    out = Path(directory) / f"drcd-{split}"
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = [s for s in sources(articles) if s.doc_id not in removed]
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as handle:
        for s in corpus:
            handle.write(json.dumps({"_id": s.doc_id, "title": s.title, "text": s.raw_text}, ensure_ascii=False) + "\n")
    with (
        (out / "queries.jsonl").open("w", encoding="utf-8") as queries,
        (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as qrels,
    ):
        qrels.write("query-id\tcorpus-id\tscore\n")
        for article in in_split:
            for paragraph in article.paragraphs:
                gone = paragraph.id in removed
                for q in paragraph.questions:
                    row = {"_id": q.id, "text": q.text, "answers": list(q.answers), "short": list(q.answers)}
                    if gone:
                        row["topic"] = "near"
                    queries.write(json.dumps(row, ensure_ascii=False) + "\n")
                    qrels.write(f"{q.id}\t{paragraph.id}\t{0 if gone else 1}\n")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help=f"the directory holding {FILE_NAME}")
    parser.add_argument("--beir", type=Path, required=True, help="where to write drcd-validation/ and drcd-test/")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    articles = load(args.data)
    for split in ("validation", "test"):
        print(write_beir(articles, split, args.beir, args.seed))


if __name__ == "__main__":
    main()
