"""The signals a learned ranker reads: one row of numbers per candidate passage or answer sentence.

The same functions make the rows when the models are trained (``eval/train_ranker.py``)
and when a question is answered, so a model sees at serving time what it saw in
training. The hand-set vetoes of the rules (a missing qualifier, focus or answer
type) are features here: the models learn how much each matters.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answering.evidence import PassageEvidence, SentenceEvidence, flat, words_in
from index.answering.question import ANSWER_TYPES, QuestionAnalysis
from index.answering.spans import new_spans
from index.ingest.tokenize import tokenize
from index.stores.records import ChunkRecord

FEATURE_VERSION = 1
# A question word held by at least this share of the candidates names the subject they all share
# ("X的体长是多少": X), not what tells them apart (体长).
SHARED_SHARE = 0.5
_BIGRAM_CHARACTER = re.compile(r"[\u4e00-\u9fff0-9a-z]")

PASSAGE_FEATURES = (
    "answer_type",
    "dense",
    "dense_gap",
    "dense_rank",
    "lexical_share",
    "lexical_rank",
    "fused",
    "best_similarity",
    "best_similarity_gap",
    "best_local_coverage",
    "best_distinct_coverage",
    "passage_distinct_coverage",
    "best_bigrams",
    "best_bigrams_gap",
    "has_type",
    "missing_qualifiers",
    "missing_focus",
    "qualifiers",
    "title_coverage",
    "chars",
    "sentences",
)
SENTENCE_FEATURES = (
    "answer_type",
    "similarity",
    "similarity_gap",
    "similarity_rank",
    "coverage",
    "local_coverage",
    "distinct_coverage",
    "distinct_words",
    "shared_coverage",
    "bigrams",
    "bigrams_gap",
    "compactness",
    "has_type",
    "typed_spans",
    "first_span_at",
    "has_focus",
    "missing_focus",
    "missing_qualifiers",
    "qualifiers",
    "position",
    "relative_position",
    "chars",
    "ends_with_colon",
    "passage_rank",
    "passage_dense",
    "passage_lexical_share",
    "passage_dense_gap",
    "title_coverage",
    "question_chars",
)
# The answer-or-decline model reads the lead sentence's row and how clearly it and its passage won.
DECISION_FEATURES = (*SENTENCE_FEATURES, "sentence_score", "sentence_margin", "passage_score", "passage_margin")


@dataclass(frozen=True)
class QuestionContext:
    text: str
    analysis: QuestionAnalysis
    words: frozenset[str]
    bigrams: frozenset[str]

    @property
    def answer_type_code(self) -> int:
        return ANSWER_TYPES.index(self.analysis.answer_type)


def question_context(question: str, analysis: QuestionAnalysis) -> QuestionContext:
    return QuestionContext(question, analysis, frozenset(tokenize(question)), bigrams_of(question))


@functools.lru_cache(maxsize=1 << 16)
def bigrams_of(text: str) -> frozenset[str]:
    """Adjacent pairs of word characters: what survives a segmentation that differs between question and text."""
    chars = [c if _BIGRAM_CHARACTER.match(c) else " " for c in flat(text)]
    return frozenset(a + b for a, b in zip(chars, chars[1:], strict=False) if a != " " and b != " ")


@dataclass(frozen=True)
class Candidate:
    """One passage as the rankers see it: its retrieval scores and its judged sentences."""

    title: str
    section: tuple[str, ...]
    text: str
    dense: float
    lexical: float
    evidence: PassageEvidence

    @classmethod
    def of(cls, chunk: ChunkRecord, dense: float, lexical: float, evidence: PassageEvidence) -> Candidate:
        return cls(chunk.title, tuple(chunk.section), chunk.text, float(dense), float(lexical), evidence)


def passage_rows(context: QuestionContext, passages: Sequence[Candidate]) -> np.ndarray:
    """One row of PASSAGE_FEATURES per passage, some relative to the other candidates."""
    rows = np.zeros((len(passages), len(PASSAGE_FEATURES)), dtype=np.float64)
    if not passages:
        return rows
    dense = np.array([p.dense for p in passages])
    lexical = np.array([p.lexical for p in passages])
    shared = _shared_words(context.words, [words_in(p.text) for p in passages])
    best = [p.evidence.best for p in passages]
    best_similarity = np.array([s.similarity if s else 0.0 for s in best])
    bigram_best = np.array([max((_bigram_share(context, s.text) for s in p.evidence.sentences), default=0.0)
                            for p in passages])  # fmt: skip
    lexical_top = lexical.max() if lexical.max() > 0 else 1.0
    fused = 0.5 * _min_max(dense) + 0.5 * _min_max(lexical)
    for i, passage in enumerate(passages):
        evidence = passage.evidence
        weights = evidence.word_weights
        sentence = best[i]
        rows[i] = (
            context.answer_type_code,
            dense[i],
            dense[i] - dense.max(),
            _rank(dense, i),
            lexical[i] / lexical_top,
            _rank(lexical, i),
            fused[i],
            best_similarity[i],
            best_similarity[i] - best_similarity.max(),
            _share(weights, sentence.covered) if sentence else 0.0,
            _share(weights, sentence.covered - shared, context.words - shared) if sentence else 0.0,
            _share(weights, words_in(passage.text) - shared, context.words - shared),
            bigram_best[i],
            bigram_best[i] - bigram_best.max(),
            float(any(s.has_type for s in evidence.sentences)),
            len(evidence.missing_qualifiers),
            len(evidence.missing_focus),
            len(context.analysis.qualifiers),
            _share(weights, words_in(passage.title + "".join(passage.section))),
            len(passage.text),
            len(evidence.sentences),
        )
    return rows


@dataclass(frozen=True)
class SentenceCandidate:
    passage_rank: int  # 1 for the first passage
    passage: Candidate
    sentence: SentenceEvidence
    position: int  # its place among the passage's quotable sentences


def sentence_candidates(passages: Sequence[Candidate], limit: int) -> list[SentenceCandidate]:
    """Every quotable sentence of the first ``limit`` passages; an overlap is kept from the better passage."""
    found, seen = [], set()
    for rank, passage in enumerate(passages[:limit], start=1):
        for position, sentence in enumerate(passage.evidence.sentences):
            if sentence.sentence_id in seen:  # overlapping passages share their sentences' ids
                continue
            seen.add(sentence.sentence_id)
            found.append(SentenceCandidate(rank, passage, sentence, position))
    return found


def sentence_rows(context: QuestionContext, candidates: Sequence[SentenceCandidate]) -> np.ndarray:
    """One row of SENTENCE_FEATURES per candidate sentence."""
    rows = np.zeros((len(candidates), len(SENTENCE_FEATURES)), dtype=np.float64)
    if not candidates:
        return rows
    analysis = context.analysis
    shared = _shared_words(context.words, [c.sentence.covered for c in candidates])
    similarity = np.array([c.sentence.similarity for c in candidates])
    bigrams = np.array([_bigram_share(context, c.sentence.text) for c in candidates])
    passage_dense = np.array([c.passage.dense for c in candidates])
    lexical_top = max(max(c.passage.lexical for c in candidates), 1e-9)
    for i, candidate in enumerate(candidates):
        sentence, evidence = candidate.sentence, candidate.passage.evidence
        weights = evidence.word_weights
        spans = (
            new_spans(sentence.text, analysis.answer_type, context.text, analysis.unit) if analysis.wants_span else []
        )
        rows[i] = (
            context.answer_type_code,
            similarity[i],
            similarity[i] - similarity.max(),
            _rank(similarity, i),
            sentence.coverage,
            _share(weights, sentence.covered),
            _share(weights, sentence.covered - shared, context.words - shared),
            len(context.words - shared),
            _share(weights, sentence.covered & shared, shared),
            bigrams[i],
            bigrams[i] - bigrams.max(),
            _compactness(sentence.text, sentence.covered),
            float(bool(spans)),
            len(spans),
            spans[0][0] / max(len(sentence.text), 1) if spans else -1.0,
            float(sentence.has_focus),
            len(evidence.missing_focus),
            len(evidence.missing_qualifiers),
            len(analysis.qualifiers),
            candidate.position,
            candidate.position / max(len(evidence.sentences) - 1, 1),
            len(sentence.text),
            float(sentence.text.rstrip().endswith(("：", ":"))),
            candidate.passage_rank,
            passage_dense[i],
            candidate.passage.lexical / lexical_top,
            passage_dense[i] - passage_dense.max(),
            _share(weights, words_in(candidate.passage.title + "".join(candidate.passage.section))),
            len(context.text),
        )
    return rows


def decision_row(
    sentence_row: np.ndarray, sentence_scores: np.ndarray, lead: int, passage_scores: np.ndarray
) -> np.ndarray:
    """The lead sentence's row, its ranker score and margins: what the calibrated decline reads."""
    others = np.delete(sentence_scores, lead)
    passages = np.sort(passage_scores)[::-1]
    return np.concatenate(
        [
            sentence_row,
            [
                sentence_scores[lead],
                sentence_scores[lead] - (others.max() if len(others) else sentence_scores[lead] - 10.0),
                passages[0] if len(passages) else 0.0,
                passages[0] - passages[1] if len(passages) > 1 else 10.0,
            ],
        ]
    )


def _shared_words(words: frozenset[str], held: Sequence[frozenset[str]]) -> frozenset[str]:
    if not held:
        return frozenset()
    need = SHARED_SHARE * len(held)
    return frozenset(w for w in words if sum(w in h for h in held) >= need)


def _share(weights: dict[str, float], covered: frozenset[str], of: frozenset[str] | None = None) -> float:
    """The weighted share of ``of`` (all the question's words when None) that ``covered`` holds."""
    pool = weights.keys() if of is None else of
    # Summed in sorted order: a set's order follows the hash seed, and the last bit of a sum its order.
    total = sum(weights.get(w, 0.0) for w in sorted(pool))
    return sum(weights.get(w, 0.0) for w in sorted(covered) if w in pool) / total if total > 0 else 0.0


def _bigram_share(context: QuestionContext, text: str) -> float:
    if not context.bigrams:
        return 0.0
    return len(context.bigrams & bigrams_of(text)) / len(context.bigrams)


def _compactness(text: str, covered: frozenset[str]) -> float:
    """How closely the question's words sit together in the sentence: their length over the stretch they span."""
    lowered = flat(text)
    places = [(at, at + len(w)) for w in covered if (at := lowered.find(w)) >= 0]
    if len(places) < 2:
        return float(len(places))
    stretch = max(e for _, e in places) - min(s for s, _ in places)
    return min(1.0, sum(e - s for s, e in places) / stretch) if stretch > 0 else 1.0


def _rank(values: np.ndarray, i: int) -> float:
    return float(np.sum(values > values[i]))


def _min_max(values: np.ndarray) -> np.ndarray:
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high - low > 1e-9 else np.ones_like(values)
