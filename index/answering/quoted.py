"""A sentence quoted in an answer: the unit composition and short answers both work on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class QuotedSentence:
    citation: int  # the n of the citation it is quoted from
    start: int  # offsets inside that citation's text
    end: int
    text: str
    similarity: float  # cosine to the question
    relevance: float  # similarity plus word coverage; decides whether to answer
