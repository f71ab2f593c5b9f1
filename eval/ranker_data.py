"""Candidates for training the rankers: what our own retrieval finds for each question, labelled.

Each DRCD question is asked three ways over an index of every paragraph: as it is,
with its paragraph left out (near-topic: the article's other paragraphs stay) and
with its whole article left out (off-topic). The gold set is asked of docs_raw/.
Passages come from the rules' retrieval before any learned ranking, with their
sentences judged, so the features built from them are those the service builds.

    python -m eval.ranker_data --data DIR --work WORK   # writes WORK/candidates.pkl
"""

from __future__ import annotations

import argparse
import hashlib
import pickle
from dataclasses import dataclass
from pathlib import Path

from eval import drcd
from index.answering.features import Candidate
from index.answering.question import QuestionAnalysis
from index.answering.retrieval import Retriever
from index.progress import progress_bar
from index.quality.datasets import REPO_DOCS
from index.quality.gold import load_questions
from index.stores.local.build import build_index
from service.engines import open_engine, passage_embedder
from service.settings import Settings

JUDGED = 40  # the passages a question's evidence is judged on (EvidenceParams.reranked)
VARIANTS = ("answerable", "near", "off")


@dataclass(frozen=True)
class Sample:
    source: str  # "drcd" or "gold"
    split: str  # train / validation / test of DRCD, gold-train / gold-test of the gold set
    variant: str  # answerable / near / off
    id: str
    question: str
    answers: tuple[str, ...]
    gold_doc: str | None  # the document that answers; None when this variant cannot be answered
    analysis: QuestionAnalysis
    doc_ids: tuple[str, ...]  # of the candidates, in the rules' order
    candidates: tuple[Candidate, ...]


def _engine(settings: Settings, data_dir: Path, **corpus):
    if not (data_dir / "index").exists():
        build_index(data_dir=data_dir, embedder=passage_embedder(settings), chunking=settings.chunking(), **corpus)
    local = {
        "store": "local",
        "data_dir": data_dir,
        "build_on_start": False,
        "models_dir": settings.resolved_models_dir(),
    }
    return open_engine(settings.model_copy(update=local))


def _ask(retriever: Retriever, question: str, doc_ids: list[str] | None):
    result = retriever.search(question, top_k=JUDGED, mode="hybrid", doc_ids=doc_ids)
    candidates = tuple(h.as_candidate() for h in result.hits if h.evidence is not None)
    doc_ids = tuple(h.chunk.doc_id for h in result.hits if h.evidence is not None)
    return result.analysis, doc_ids, candidates


def drcd_samples(settings: Settings, data: Path, work: Path, seed: int) -> list[Sample]:
    articles = drcd.load(data)
    engine = _engine(settings, work / "drcd", sources=drcd.sources(articles))
    retriever = Retriever(engine.index, engine.query_embedder)  # the rules' order: no learned model
    all_ids = [p.id for a in articles for p in a.paragraphs]
    samples = []
    total = sum(len(p.questions) for a in articles for p in a.paragraphs) * len(VARIANTS)
    with progress_bar(total=total, desc="drcd candidates", unit="question") as bar:
        for article in articles:
            split = drcd.split_of(article.id, seed)
            article_ids = {p.id for p in article.paragraphs}
            for paragraph in article.paragraphs:
                for q in paragraph.questions:
                    for variant in VARIANTS:
                        left_out = {"answerable": set(), "near": {paragraph.id}, "off": article_ids}[variant]
                        allowed = [d for d in all_ids if d not in left_out] if left_out else None
                        analysis, doc_ids, candidates = _ask(retriever, q.text, allowed)
                        gold = paragraph.id if variant == "answerable" else None
                        samples.append(
                            Sample("drcd", split, variant, q.id, q.text, q.answers, gold, analysis, doc_ids, candidates)
                        )
                        bar.update(1)
    engine.close()
    return samples


# Gold questions written after the models were trained (q199 on) are never trained on, whatever their document.
FIRST_UNSEEN_GOLD = 199


def gold_split(question_id: str, key: str, seed: int) -> str:
    """The gold set splits by document (its unanswerable questions by id): half trains, half stays held out."""
    if int(question_id.lstrip("q")) >= FIRST_UNSEEN_GOLD:
        return "gold-test"
    return "gold-train" if int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) % 2 == 0 else "gold-test"


def gold_samples(settings: Settings, work: Path, seed: int) -> list[Sample]:
    """The gold set's questions as written, and each answerable one again without its document (near-topic:
    the other documents on the same reforms stay), in the split of its document."""
    engine = _engine(settings, work / "gold", docs_dir=REPO_DOCS)
    retriever = Retriever(engine.index, engine.query_embedder)
    all_ids = [d.doc_id for d in engine.documents()]
    samples, questions = [], load_questions()
    with progress_bar(total=len(questions), desc="gold candidates", unit="question") as bar:
        for q in questions:
            split = gold_split(q.id, q.doc_id or q.id, seed)
            analysis, doc_ids, candidates = _ask(retriever, q.question, None)
            variant = "answerable" if q.answerable else (q.topic or "near")
            samples.append(
                Sample("gold", split, variant, q.id, q.question, q.answers, q.doc_id, analysis, doc_ids, candidates)
            )
            if q.answerable:
                allowed = [d for d in all_ids if d != q.doc_id]
                analysis, doc_ids, candidates = _ask(retriever, q.question, allowed)
                samples.append(
                    Sample("gold", split, "near", q.id, q.question, q.answers, None, analysis, doc_ids, candidates)
                )
            bar.update(1)
    engine.close()
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help=f"the directory holding {drcd.FILE_NAME}")
    parser.add_argument("--work", type=Path, required=True, help="indexes and candidates.pkl go here")
    parser.add_argument("--seed", type=int, default=drcd.DEFAULT_SEED)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    samples = gold_samples(settings, args.work, args.seed) + drcd_samples(settings, args.data, args.work, args.seed)
    with (args.work / "candidates.pkl").open("wb") as handle:
        pickle.dump(samples, handle, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{len(samples)} samples -> {args.work / 'candidates.pkl'}")


if __name__ == "__main__":
    from eval.ranker_data import main as module_main  # pickled samples name eval.ranker_data.Sample, not __main__

    module_main()
