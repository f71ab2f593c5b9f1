"""The short answer: the span of the lead sentence that answers a typed question ("25个街道", "2019年3月")."""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.answering.question import QUANTITY, QuestionAnalysis
from index.answering.quoted import QuotedSentence
from index.answering.spans import new_spans
from index.ingest.tokenize import tokenize

# A clause ends at these: the span whose clause holds most of the question's words answers it.
_CLAUSE_END = re.compile(r"[，,。；;、：:（）()]")


@dataclass(frozen=True)
class ShortAnswer:
    text: str
    n: int  # the citation whose text holds it
    start: int  # offsets inside that citation's text
    end: int


def short_answer(
    question: str, analysis: QuestionAnalysis, sentence: QuotedSentence, weights: dict[str, float] | None = None
) -> ShortAnswer | None:
    """The typed span of ``sentence`` whose clause best matches the question; None when there is none."""
    if not analysis.wants_span:
        return None
    text = sentence.text
    spans = new_spans(text, analysis.answer_type, question, analysis.unit)
    if not spans:
        return None
    unit = analysis.unit if analysis.answer_type == QUANTITY else None
    if unit:
        spans = [_with_noun(text, span, unit) for span in spans]
    # The unit's noun ("街道" of 多少个街道) is matched by the span itself, not by its clause.
    # Words weigh by how rare they are among the candidates: "京口" picks its clause, "镇江" (everywhere) does not.
    words = {w: (weights or {}).get(w, 1.0) for w in set(tokenize(question)) if not (unit and w in unit)}
    floor = min(words.values(), default=0.0)

    def rank(span: tuple[int, int]) -> tuple[float, bool, int]:
        with_noun = bool(unit) and text[span[0] : span[1]].endswith(unit)
        return _clause_match(text, span, words) - floor + with_noun * floor, with_noun, -span[0]

    start, end = max(spans, key=rank)
    return ShortAnswer(text[start:end], sentence.citation, sentence.start + start, sentence.start + end)


def _with_noun(text: str, span: tuple[int, int], unit: str) -> tuple[int, int]:
    """ "25个" + "街道" when the question asked 多少个街道."""
    start, end = span
    noun = unit[1:]
    return (start, end + len(noun)) if noun and text.startswith(noun, end) else (start, end)


def _clause_match(text: str, span: tuple[int, int], words: dict[str, float]) -> float:
    """The weight of the question's words in the span's clause, and half as much for the clause before it."""
    clause_start = _previous_end(text, span[0])
    clause_end = next((m.start() for m in _CLAUSE_END.finditer(text, span[1])), len(text))
    before_start = _previous_end(text, max(clause_start - 1, 0))
    here = text[clause_start:clause_end]
    before = text[before_start:clause_start]
    return sum(weight for w, weight in words.items() if w in here) + 0.5 * sum(
        weight for w, weight in words.items() if w in before
    )


def _previous_end(text: str, position: int) -> int:
    ends = [m.end() for m in _CLAUSE_END.finditer(text, 0, position)]
    return ends[-1] if ends else 0
