"""FAQ pairs in answers: a question that matches a pair leads with its approved answer, quoted verbatim.

A pair is a document of origin ``faq`` (``index/ingest/faq.py``), so it is retrieved and cited like any
passage; its hits carry the pair, and the API cites them as ``faq``. Beside retrieval, the question is
compared with every pair's question and similar questions (both embedded as questions, e5's ``query:`` side):
when the best cosine reaches ``MATCH_THRESHOLD`` and the pair is in the question's scope, the answer is the
pair's answer, whole and verbatim, citing the pair as [1]; the retrieved passages follow as further citations.

The threshold was chosen on held-out paraphrases and near-topic questions (``eval/faq_threshold.py``,
docs/faq.md). A knowledge base without pairs pays one check of an empty table per question.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answering.question import QuestionAnalysis
from index.answering.quoted import QuotedSentence
from index.answering.retrieval import Hit, SearchResult
from index.answering.spans import typed_spans
from index.embedders.base import Embedder
from index.ingest.clean import normalize_for_matching
from index.ingest.faq import FAQ_ORIGIN, FaqPair, answer_offset, parse_pair_text
from index.stores.base import Catalogue
from index.stores.records import ChunkRecord

# The cosine between a question and a pair's question (or a similar question) at which the pair's answer
# leads: chosen on the tune split of eval/faq_threshold.py for precision first (docs/faq.md, "Threshold").
MATCH_THRESHOLD = 0.96
MAX_VECTORS_KEPT = 200_000  # question vectors kept between generations (384 float32 each: 300 MB at most)


@dataclass(frozen=True)
class FaqEntry:
    doc_id: str
    pair: FaqPair
    text: str  # the document's text, which the citation shows whole


@dataclass(frozen=True)
class FaqMatch:
    entry: FaqEntry
    score: float  # cosine of the question to the closest of the pair's questions
    matched: str  # that question
    threshold: float


def answers_type(pair: FaqPair, analysis: QuestionAnalysis | None) -> bool:
    """Whether the pair's answer holds what the question asks for: 多少钱 is not answered by how to apply.
    Measured: it removes a third of the near-topic leads at the cost of a tenth of the paraphrases."""
    return analysis is None or not analysis.wants_span or bool(typed_spans(pair.answer, analysis.answer_type))


class FaqMemory:
    """What a knowledge base keeps of its pairs between generations: each pair's text by content hash, and
    each question's vector, so a new generation embeds only the questions it added."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder
        self._pairs: dict[tuple[str, str], FaqEntry | None] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    def entries(self, catalogue: Catalogue) -> list[FaqEntry]:
        records = [r for r in catalogue.documents() if r.origin == FAQ_ORIGIN]
        keys = [(r.doc_id, r.content_hash) for r in records]
        with self._lock:
            missing = [key for key in keys if key not in self._pairs]
        found = {}
        for doc_id, digest in missing:
            text = catalogue.document_text(doc_id) or ""
            pair = parse_pair_text(text)
            found[(doc_id, digest)] = FaqEntry(doc_id, pair, text) if pair is not None else None
        with self._lock:
            self._pairs = {key: found[key] if key in found else self._pairs[key] for key in keys}
            return [entry for entry in self._pairs.values() if entry is not None]

    def vectors(self, questions: Sequence[str]) -> np.ndarray:
        texts = [normalize_for_matching(q) for q in questions]
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            embedded = self.embedder.embed_queries(missing)
            with self._lock:
                if len(self._vectors) + len(missing) > MAX_VECTORS_KEPT:
                    self._vectors.clear()  # rare: a new generation embeds its questions once more
                self._vectors.update(zip(missing, embedded, strict=True))
        with self._lock:
            known = [self._vectors.get(t) for t in texts]
        if any(v is None for v in known):  # cleared meanwhile by another generation's load
            return self.embedder.embed_queries(texts).astype(np.float32)
        return np.array(known, dtype=np.float32).reshape(len(texts), -1)


class FaqBook:
    """One generation's pairs by document id, read on first use, and the matrix of their question vectors,
    embedded (or found in ``memory``) on the first question."""

    def __init__(self, catalogue: Catalogue, memory: FaqMemory, threshold: float = MATCH_THRESHOLD) -> None:
        self.catalogue = catalogue
        self.memory = memory
        self.threshold = threshold
        self._by_id: dict[str, FaqEntry] | None = None
        self._matrix: tuple[np.ndarray, list[tuple[FaqEntry, str]]] | None = None
        self._lock = threading.Lock()

    def _entries(self) -> dict[str, FaqEntry]:
        with self._lock:
            if self._by_id is None:
                entries = sorted(self.memory.entries(self.catalogue), key=lambda e: e.doc_id)
                self._by_id = {e.doc_id: e for e in entries}
            return self._by_id

    def _questions(self) -> tuple[np.ndarray, list[tuple[FaqEntry, str]]]:
        entries = self._entries()
        with self._lock:
            if self._matrix is None:
                owners = [(entry, q) for entry in entries.values() for q in entry.pair.questions]
                matrix = self.memory.vectors([q for _, q in owners]) if owners else np.zeros((0, 0), np.float32)
                self._matrix = (matrix, owners)
            return self._matrix

    def entries(self) -> list[FaqEntry]:
        """Every pair, in the order they were added."""
        return list(self._entries().values())

    def entry(self, doc_id: str) -> FaqEntry | None:
        return self._entries().get(doc_id)

    def match(
        self, query_vector: np.ndarray, scope: Sequence[str] | None = None, analysis: QuestionAnalysis | None = None
    ) -> FaqMatch | None:
        """The pair whose question (or similar question) is closest to the question, when close enough and, for a
        question that asks for a figure, date, name or place (``analysis``), when its answer holds one."""
        if not self._entries():
            return None
        matrix, owners = self._questions()
        scores = matrix @ query_vector.astype(np.float32)
        allowed = None if scope is None else set(scope)
        for i in np.argsort(-scores, kind="stable").tolist():
            if scores[i] < self.threshold:
                return None
            entry, question = owners[i]
            if allowed is None or entry.doc_id in allowed:
                if not answers_type(entry.pair, analysis):
                    return None
                return FaqMatch(entry, float(scores[i]), question, self.threshold)
        return None

    def mark(self, result: SearchResult) -> SearchResult:
        """The result with each hit from a pair carrying that pair (the API cites it as ``faq``)."""
        if not result.hits or not self._entries():
            return result
        hits = [self._marked(hit) for hit in result.hits]
        return dataclasses.replace(result, hits=hits)

    def _marked(self, hit: Hit) -> Hit:
        entry = self.entry(hit.chunk.doc_id)
        return hit if entry is None else dataclasses.replace(hit, faq=entry.pair)

    def leading(self, match: FaqMatch, result: SearchResult) -> tuple[list[Hit], QuotedSentence]:
        """The citations of an answer the pair leads: the pair whole as [1], then the other passages retrieved
        (as many in all as were retrieved), and the quoted answer."""
        entry = match.entry
        chunks = self.catalogue.document_chunks(entry.doc_id)
        first = chunks[0].chunk_id if chunks else 0
        whole = ChunkRecord(first, entry.doc_id, 0, 0, len(entry.text), (), entry.text, entry.pair.question,
                            chunks[0].source if chunks else "FAQ")  # fmt: skip
        lead = Hit(whole, match.score, match.score, 0.0, faq=entry.pair)
        others = [hit for hit in result.hits if hit.chunk.doc_id != entry.doc_id]
        start = answer_offset(entry.pair, entry.text)
        quoted = QuotedSentence(1, start, len(entry.text), entry.pair.answer, match.score, match.score)
        return [lead, *others[: max(len(result.hits), 1) - 1]], quoted
