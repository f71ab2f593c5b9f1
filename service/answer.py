"""Extractive answers: the retrieved sentences that best answer the question, quoted verbatim.

Nothing is generated: every sentence of an answer is a slice of a cited
passage, followed by that passage's ``[n]`` marker. Sentence vectors are
computed at index time, so composing an answer costs a few dot products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.search import Hit, SearchResult
from index.storage import LoadedIndex
from index.tokenize import tokenize

NOT_COVERED = "文档中没有找到能回答这个问题的内容。以下是最接近的段落，仅供参考。"
MIN_SENTENCE_CHARS = 8


@dataclass(frozen=True)
class AnswerParams:
    # Abstain below this relevance; calibrated on eval/questions.jsonl (README, "Abstention").
    min_relevance: float = 0.91
    # Relevance = sentence cosine + this weight x the question's idf-weighted word
    # coverage: words the question names and no passage has are a sign of a
    # question the documents do not cover ("杭州市…" against Henan documents).
    coverage_weight: float = 0.15
    max_sentences: int = 3
    sentence_margin: float = 0.03  # extra sentences must be this close to the best cosine
    candidate_passages: int = 3


@dataclass(frozen=True)
class QuotedSentence:
    citation: int  # the n of the citation it is quoted from
    start: int  # offsets inside that citation's text
    end: int
    text: str
    similarity: float  # cosine to the question; picks the sentences
    relevance: float  # similarity plus word coverage; decides whether to answer


@dataclass(frozen=True)
class Citation:
    n: int
    hit: Hit
    highlights: list[tuple[int, int]]
    weak: bool


@dataclass(frozen=True)
class Answer:
    text: str
    answerable: bool
    relevance: float
    citations: list[Citation]
    quoted: list[QuotedSentence]


class AnswerComposer:
    def __init__(self, index: LoadedIndex, params: AnswerParams = AnswerParams()) -> None:
        self.index = index
        self.params = params

    def compose(self, question: str, result: SearchResult) -> Answer:
        hits = result.hits
        scored = self._score_sentences(question, result)
        relevance = max((s.relevance for s in scored), default=0.0)
        answerable = bool(hits) and relevance >= self.params.min_relevance
        quoted = self._select(scored) if answerable else []
        highlights: dict[int, list[tuple[int, int]]] = {}
        for q in quoted:
            highlights.setdefault(q.citation, []).append((q.start, q.end))
        citations = [
            Citation(n, hit, sorted(highlights.get(n, [])), weak=not answerable) for n, hit in enumerate(hits, start=1)
        ]
        text = "".join(f"{q.text}[{q.citation}]" for q in quoted) if quoted else NOT_COVERED
        return Answer(text, answerable, relevance, citations, quoted)

    def _score_sentences(self, question: str, result: SearchResult) -> list[QuotedSentence]:
        """Every sentence of the leading passages, scored against the question."""
        words = set(tokenize(question))
        lexical = self.index.lexical
        weights = {w: lexical.idf(w) for w in words}
        total_weight = sum(weights.values()) or 1.0
        candidates: list[tuple[int, Hit, int, int, str]] = []  # (n, hit, sentence id, start, text)
        seen: set[tuple[str, int]] = set()
        for n, hit in enumerate(result.hits[: self.params.candidate_passages], start=1):
            chunk = hit.chunk
            for sentence in self.index.catalogue.sentences_within(chunk.doc_id, chunk.start, chunk.end):
                if (chunk.doc_id, sentence.start) in seen:
                    continue  # the overlap between two passages is quoted from the better one
                seen.add((chunk.doc_id, sentence.start))
                text = chunk.text[sentence.start - chunk.start : sentence.end - chunk.start]
                if len(text) >= MIN_SENTENCE_CHARS:
                    candidates.append((n, hit, sentence.sentence_id, sentence.start - chunk.start, text))
        if not candidates:
            return []
        vectors = self.index.sentence_vectors.vectors(np.array([c[2] for c in candidates], dtype=np.int64))
        similarities = vectors @ result.query_vector
        scored = []
        for (n, _, _, start, text), similarity in zip(candidates, similarities, strict=True):
            coverage = sum(weights[w] for w in words & set(tokenize(text))) / total_weight
            relevance = float(similarity) + self.params.coverage_weight * coverage
            scored.append(QuotedSentence(n, start, start + len(text), text, float(similarity), relevance))
        return scored

    def _select(self, scored: list[QuotedSentence]) -> list[QuotedSentence]:
        ranked = sorted(scored, key=lambda s: -s.similarity)
        best = ranked[0].similarity
        margin = self.params.sentence_margin
        chosen = [s for s in ranked[: self.params.max_sentences] if s.similarity >= best - margin]
        return sorted(chosen, key=lambda s: (s.citation, s.start))
