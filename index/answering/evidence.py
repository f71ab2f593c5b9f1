"""Evidence inside retrieved passages: which sentence answers, and how well.

Each candidate passage is judged by its best sentence: how close the
sentence's vector is to the question's, how much of the question's (idf-
weighted) wording it holds, whether it holds the expected answer type (a
number for 多少), and whether its document holds the question's qualifiers
(a year, 第二批, a place). Passages are then re-ranked by that evidence
combined with their fused retrieval score.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from index.answering.fusion import min_max
from index.answering.question import DATE, QUANTITY, Qualifier, QuestionAnalysis
from index.answering.spans import new_spans
from index.answering.terms import TermTable, default_terms
from index.ingest.chunk import find_headings
from index.ingest.clean import normalize_for_matching
from index.ingest.tokenize import tokenize
from index.stores.base import IndexReader
from index.stores.records import ChunkRecord

MIN_SENTENCE_CHARS = 8
FOCUS_CHECKED = frozenset({QUANTITY, DATE})  # answer types whose passage must name the question's focus
TITLE_WINDOW = 40  # a title glued to the text stands within this many characters of its start
# Characters of documents' matching text kept between questions (about 8 MB): a question with a year or a
# place looks it up in the documents of its forty candidates, and 256 documents thrashed on a 1,700-document
# corpus (9 documents normalised again per question, about 1 ms of a 4 ms search).
MAX_CACHED_DOCUMENT_CHARS = 4_000_000
MAX_CACHED_PASSAGES = 8192  # passages whose quotable sentences are kept between questions


@dataclass(frozen=True)
class EvidenceParams:
    coverage_weight: float = 0.15  # support = cosine + this x idf-weighted coverage of the question's words
    type_weight: float = 0.05  # + this when the sentence holds the expected answer type
    qualifier_penalty: float = 0.1  # - this per qualifier its document lacks
    evidence_weight: float = 0.5  # passage rank = (1 - w) x fused + w x evidence, both min-max normalised
    reranked: int = 40  # fused candidates whose sentences are judged
    # Ranking weighs a word by how few of the candidates hold it, too: a place every candidate names
    # tells which document, not which passage. 0 = corpus idf only.
    local_idf: float = 1.0


@dataclass(frozen=True)
class SentenceEvidence:
    sentence_id: int
    start: int  # quotable span inside the passage text: heading labels and a glued title left out
    end: int
    text: str
    similarity: float
    coverage: float
    has_type: bool
    support: float
    covered: frozenset[str] = field(default_factory=frozenset)  # question words it holds
    has_focus: bool = True  # it names what the question asks about (index.question.focus_words)


@dataclass(frozen=True)
class PassageEvidence:
    sentences: tuple[SentenceEvidence, ...]
    missing_qualifiers: tuple[Qualifier, ...]  # the question's qualifiers its document does not hold
    missing_focus: tuple[str, ...] = ()  # the question's focus words the passage does not hold
    word_weights: dict[str, float] = field(default_factory=dict)  # question word -> its weight among the candidates

    @property
    def best(self) -> SentenceEvidence | None:
        return max(self.sentences, key=lambda s: s.support, default=None)

    @property
    def holds_what_is_asked(self) -> bool:
        """Its document holds the question's qualifiers, and the passage its focus."""
        return not (self.missing_qualifiers or self.missing_focus)

    def answers_with(self, sentence: SentenceEvidence, analysis: QuestionAnalysis) -> bool:
        """Whether the sentence can be quoted as the answer: the asked type in it, nothing asked missing."""
        return self.holds_what_is_asked and (sentence.has_type or not analysis.wants_span)

    def can_answer(self, analysis: QuestionAnalysis) -> bool:
        """Whether the passage could be quoted as the answer: the asked type in a sentence, nothing asked missing."""
        return self.holds_what_is_asked and (not analysis.wants_span or any(s.has_type for s in self.sentences))


def quotable_span(text: str, start: int, end: int, title: str) -> tuple[int, int]:
    """The part of ``text[start:end]`` worth quoting: without a leading heading label or document title."""
    skip = _unquotable_prefix(text[start:end], title)
    return start + skip, end


@functools.lru_cache(maxsize=1 << 16)
def _unquotable_prefix(sentence: str, title: str) -> int:
    """How many leading characters are a glued title or heading labels (sentences start at headings)."""
    cut = 0
    if title and len(title) >= 4:
        at = sentence.rfind(title, 0, TITLE_WINDOW + len(title))
        if at >= 0 and at + len(title) < len(sentence) - MIN_SENTENCE_CHARS:
            cut = at + len(title)
    while cut < len(sentence) and sentence[cut] in _LEAD_MARKS:
        rest = sentence[cut:]
        heading = next((h for h in find_headings(rest) if h.start == 0), None)
        if heading is None or heading.end >= len(rest) - MIN_SENTENCE_CHARS:
            break
        cut += heading.end
        while cut < len(sentence) and sentence[cut] in _SEPARATORS:
            cut += 1
    while cut < len(sentence) and sentence[cut] in _SEPARATORS:
        cut += 1
    return cut


# A heading marker starts with one of these (一、（一）1. 第一条 一是 # ...); anything else cannot be a heading.
_LEAD_MARKS = frozenset("第一二三四五六七八九十百零〇（(0123456789#")
_SEPARATORS = frozenset(" \u3000：:，,•·")


class EvidenceScorer:
    """Scores the sentences of passages against one question.

    Between questions it keeps only what does not depend on the question (a
    passage's quotable sentences, a document's matching text), for the life of
    the index snapshot it was made for.
    """

    def __init__(self, index: IndexReader, params: EvidenceParams = EvidenceParams()) -> None:
        self.index = index
        self.params = params
        self._document_texts: dict[str, str] = {}
        self._document_chars = 0
        # The term table qualifiers are compared in (a knowledge base's: staff entries take effect at once).
        self.terms: Callable[[], TermTable] = default_terms
        self._texts_table: TermTable | None = None
        self._document_lock = threading.Lock()  # requests judge in several threads at once
        # Over the catalogue, not a bound method: a cache holding ``self`` would be a reference cycle, and the
        # snapshot's segments (open SQLite files, mapped vectors) would outlive it until a full garbage collection.
        self._quotable_sentences = functools.lru_cache(maxsize=MAX_CACHED_PASSAGES)(
            functools.partial(_quotable_sentences, index.catalogue)
        )

    def judge(
        self, question: str, analysis: QuestionAnalysis, query_vector: np.ndarray, chunks: list[ChunkRecord]
    ) -> list[PassageEvidence]:
        words = set(tokenize(question))
        weights = {w: self.index.lexical.idf(w) for w in words}
        spans = [self._quotable_sentences(chunk) for chunk in chunks]
        ids = np.array([sid for per_chunk in spans for sid, _, _ in per_chunk], dtype=np.int64)
        similarities = self.index.sentence_vectors.vectors(ids) @ query_vector if len(ids) else np.zeros(0)
        local = _local_weights(words, weights, chunks, self.params.local_idf)
        share, local_share = _Share(weights), _Share(local)
        judged, row = [], 0
        for chunk, per_chunk in zip(chunks, spans, strict=True):
            missing = self.missing_qualifiers(chunk, analysis)
            passage_text = flat(chunk.title + "".join(chunk.section) + chunk.text)
            missing_focus = self._missing_focus(analysis, passage_text)
            sentences = []
            for sentence_id, start, end in per_chunk:
                text = chunk.text[start:end]
                covered = frozenset(words & words_in(text))
                has_type = analysis.wants_span and bool(new_spans(text, analysis.answer_type, question, analysis.unit))
                has_focus = not missing_focus
                support = float(similarities[row]) + self.params.coverage_weight * local_share(covered)
                support += self.params.type_weight * (has_type and has_focus)
                support -= self.params.qualifier_penalty * len(missing)
                sentences.append(
                    SentenceEvidence(
                        sentence_id,
                        start,
                        end,
                        text,
                        float(similarities[row]),
                        share(covered),
                        has_type,
                        support,
                        covered,
                        has_focus,
                    )
                )
                row += 1
            judged.append(PassageEvidence(tuple(sentences), missing, missing_focus, local))
        return judged

    def _missing_focus(self, analysis: QuestionAnalysis, passage_text: str) -> tuple[str, ...]:
        """The focus words a figure's or date's passage lacks: a figure must sit in a passage about the
        asked thing (工资 for 每月工资是多少). Other questions are often worded apart from their answer
        (信心, 分量, 先行先试: measured, checking them declined 5% of answerable questions), so they are not.
        """
        if analysis.answer_type not in FOCUS_CHECKED:
            return ()
        return tuple(w for w in analysis.focus if not _mentions(passage_text, flat(w)))

    def missing_qualifiers(self, chunk: ChunkRecord, analysis: QuestionAnalysis) -> tuple[Qualifier, ...]:
        if not analysis.qualifiers:
            return ()
        table = self.terms()
        text = self._document_text(chunk, table)
        return tuple(q for q in analysis.qualifiers if not _holds(text, q, table))

    def _document_text(self, chunk: ChunkRecord, table: TermTable) -> str:
        if table is not self._texts_table:  # the terms changed: documents are read in their new form
            with self._document_lock:
                self._document_texts, self._document_chars, self._texts_table = {}, 0, table
        text = self._document_texts.get(chunk.doc_id)
        if text is None:
            raw = self.index.catalogue.document_text(chunk.doc_id) or chunk.text
            text = "".join(table.normalize(chunk.title + raw).split())
            with self._document_lock:
                if table is self._texts_table and chunk.doc_id not in self._document_texts:
                    self._document_texts[chunk.doc_id] = text
                    self._document_chars += len(text)
                while self._document_chars > MAX_CACHED_DOCUMENT_CHARS and len(self._document_texts) > 1:
                    self._document_chars -= len(self._document_texts.pop(next(iter(self._document_texts))))
        return text


def _mentions(text: str, word: str) -> bool:
    """The word, or its characters in order within a short stretch: 监管 is how 监督管理 is abbreviated."""
    if word in text:
        return True
    if len(word) < 2:
        return False
    window = 3 * len(word)
    at = text.find(word[0])
    while at >= 0:
        position = at
        for char in word[1:]:
            position = text.find(char, position + 1, at + window)
            if position < 0:
                break
        else:
            return True
        at = text.find(word[0], at + 1)
    return False


class _Share:
    """The weighted share of the question's words that a sentence holds."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = weights
        # Sums in sorted order: a set's order follows the hash seed, and the last bit of a sum its order.
        self.total = sum(weights[w] for w in sorted(weights)) or 1.0

    def __call__(self, covered: frozenset[str]) -> float:
        return sum(self.weights[w] for w in sorted(covered)) / self.total


def _local_weights(
    words: set[str], weights: dict[str, float], chunks: list[ChunkRecord], strength: float
) -> dict[str, float]:
    """Corpus idf times (1 + strength x log of the candidates' own inverse frequency), per question word."""
    if not chunks or strength == 0:
        return weights
    counts = {w: 0 for w in words}
    for chunk in chunks:
        held = words_in(chunk.text)
        for w in words & held:
            counts[w] += 1
    n = len(chunks)
    return {w: weights[w] * (1.0 + strength * math.log((n + 1) / (counts[w] + 1))) for w in words}


def _quotable_sentences(catalogue, chunk: ChunkRecord) -> tuple[tuple[int, int, int], ...]:
    """(sentence id, start, end) inside the chunk's text, of each sentence long enough to quote."""
    found = []
    for sentence in catalogue.sentences_within(chunk.doc_id, chunk.start, chunk.end):
        start, end = quotable_span(chunk.text, sentence.start - chunk.start, sentence.end - chunk.start, chunk.title)
        if end - start >= MIN_SENTENCE_CHARS:
            found.append((sentence.sentence_id, start, end))
    return tuple(found)


@functools.lru_cache(maxsize=1 << 16)
def flat(text: str) -> str:
    """The matching form without spaces: what a word or qualifier is looked up in."""
    return "".join(normalize_for_matching(text).split())


@functools.lru_cache(maxsize=1 << 16)
def words_in(text: str) -> frozenset[str]:
    return frozenset(tokenize(text))


def _holds(document_text: str, qualifier: Qualifier, table: TermTable) -> bool:
    """Whether the document (in the term table's form: 首批 and 第一批 alike) holds the qualifier."""
    wanted = "".join(table.normalize(qualifier.text).split())
    if wanted in document_text:
        return True
    if qualifier.kind == "place" and len(wanted) >= 3:
        # "海安县" is written "海安" as often: the name without its administrative suffix.
        stem = re.sub(r"(?:省|市|县|区|镇|乡|村|街道|社区)$", "", wanted)
        return len(stem) >= 2 and stem in document_text
    return False


def combined_scores(fused: np.ndarray, evidence: np.ndarray, weight: float) -> np.ndarray:
    """(1 - weight) x fused + weight x evidence, both min-max normalised over the candidates."""
    return ((1.0 - weight) * min_max(fused) + weight * min_max(evidence)).astype(np.float32)
