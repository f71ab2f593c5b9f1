"""The gold question set for docs_raw/."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from index.ingest.documents import doc_id_for

QUESTIONS_PATH = Path(__file__).resolve().parent / "questions.jsonl"


@dataclass(frozen=True)
class GoldQuestion:
    id: str
    question: str
    doc_id: str | None  # None for a question the corpus cannot answer
    answers: tuple[str, ...]
    type: str
    answer_type: str | None = None  # what it asks for: quantity, date, place, ... (index.question)
    short: tuple[str, ...] = ()  # acceptable short answers, for span types
    topic: str | None = None  # unanswerable ones: "near" (the corpus discusses the subject) or "off"

    @property
    def answerable(self) -> bool:
        return self.doc_id is not None


def load_questions(path: Path = QUESTIONS_PATH) -> list[GoldQuestion]:
    questions = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            doc_id = doc_id_for(row["doc"]) if row["doc"] else None
            questions.append(
                GoldQuestion(
                    row["id"],
                    row["question"],
                    doc_id,
                    tuple(row["answers"]),
                    row["type"],
                    row.get("answer_type"),
                    tuple(row.get("short", ())),
                    row.get("topic"),
                )
            )
    return questions


def flat(text: str) -> str:
    """``text`` without whitespace: how gold strings are written and matched."""
    return "".join(text.split())


def contains_answer(text: str, answers: tuple[str, ...]) -> bool:
    """Whether ``text`` holds one of the gold strings, whitespace ignored."""
    flattened = flat(text)
    return any(answer in flattened for answer in answers)
