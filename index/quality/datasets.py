"""Evaluation datasets: the gold set for docs_raw/, or any corpus in BEIR layout.

BEIR layout: ``corpus.jsonl`` (``_id``, ``title``, ``text``), ``queries.jsonl``
(``_id``, ``text``, optional ``answers``: list of strings, ``short``: short answers,
``answer_type`` and, for unanswerable queries, ``topic``: near / off) and
``qrels/test.tsv`` (``query-id``, ``corpus-id``, ``score``, with a header).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from index.errors import ConfigurationError
from index.ingest.documents import SourceDocument
from index.quality.gold import GoldQuestion, load_questions

REPO_DOCS = Path(__file__).resolve().parents[2] / "docs_raw"


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    text: str
    relevant: dict[str, int]  # doc_id -> grade; empty when the corpus cannot answer it
    answers: tuple[str, ...]  # gold answer strings, possibly none
    type: str
    answer_type: str | None = None
    short: tuple[str, ...] = ()  # gold short answers
    topic: str | None = None  # for unanswerable questions: "near" or "off"

    @property
    def answerable(self) -> bool:
        return bool(self.relevant)


@dataclass(frozen=True)
class Dataset:
    name: str
    questions: list[EvalQuestion]
    docs_dir: Path | None = None  # the gold set is the service's own corpus
    sources: list[SourceDocument] | None = None  # a BEIR corpus, indexed apart


def eval_question(q: GoldQuestion) -> EvalQuestion:
    return EvalQuestion(
        q.id, q.question, {q.doc_id: 1} if q.doc_id else {}, q.answers, q.type, q.answer_type, q.short, q.topic
    )


def gold_dataset(added: Sequence[GoldQuestion] = (), *, shipped: bool = True, name: str = "gold") -> Dataset:
    """The shipped gold set (``shipped``) followed by ``added``: questions a knowledge base's staff added to it."""
    questions = [eval_question(q) for q in [*(load_questions() if shipped else ()), *added]]
    return Dataset(name, questions, docs_dir=REPO_DOCS if shipped else None)


def _read_jsonl(path: Path) -> list[dict]:
    if not path.is_file():
        raise ConfigurationError(f"BEIR dataset is missing {path.name}: {path}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ConfigurationError(f"{path.name} line {number} is not JSON: {exc.msg}") from exc
    return rows


def load_beir(directory: Path, split: str = "test") -> Dataset:
    directory = Path(directory)
    corpus = _read_jsonl(directory / "corpus.jsonl")
    sources = [
        SourceDocument(str(row["_id"]), row.get("title") or str(row["_id"]), f"corpus.jsonl#{row['_id']}", row["text"])
        for row in corpus
    ]
    qrels_path = directory / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise ConfigurationError(f"BEIR dataset is missing qrels/{split}.tsv: {qrels_path}")
    qrels: dict[str, dict[str, int]] = {}
    with qrels_path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    questions = [
        EvalQuestion(
            str(row["_id"]),
            row["text"],
            {doc: grade for doc, grade in qrels.get(str(row["_id"]), {}).items() if grade > 0},
            tuple(row.get("answers") or ()),
            "beir",
            row.get("answer_type"),
            tuple(row.get("short") or ()),
            row.get("topic"),
        )
        for row in _read_jsonl(directory / "queries.jsonl")
        if str(row["_id"]) in qrels
    ]
    if not questions:
        raise ConfigurationError(f"no query of {directory} has judgements in qrels/{split}.tsv")
    return Dataset(directory.name, questions, sources=sources)
