"""The catalogue, vector and sentence-vector stores of a segmented index, read-only.

Each speaks the verbs and answers the questions of its one-build store
(``SqliteCatalogue``, ``FaissVectorStore``, ``SentenceVectorStore``) over the
live rows of every segment of one generation: a document lives in one
segment (found through a dict), a chunk or sentence id in the segment whose
id range holds it (one ``searchsorted``), and tombstoned documents and chunks
are never returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from index.stores.local.segments import Segment
from index.stores.records import ChunkRecord, DocumentRecord, SentenceRecord
from index.stores.vectors import VectorHits


def _owners(firsts: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """For each id, the index of the segment whose range starts at or below it."""
    return np.searchsorted(firsts, ids, side="right") - 1


def _gathered(firsts: np.ndarray, ids, dimension: int, read) -> np.ndarray:
    """Rows of ``ids`` in their order, each read from the segment whose id range holds it."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.zeros((len(ids), dimension), dtype=np.float32)
    owners = _owners(firsts, ids)
    for at in np.unique(owners).tolist():
        if at < 0:
            raise KeyError("ids below every segment")
        mask = owners == at
        out[mask] = read(at, ids[mask])
    return out


class SegmentedCatalogue:
    def __init__(self, segments: list[Segment], dead_docs: list[frozenset[str]]) -> None:
        self.segments = segments
        self._dead = dead_docs
        self._where: dict[str, int] = {}
        for i, (segment, dead) in enumerate(zip(segments, dead_docs, strict=True)):
            self._where.update((d, i) for d in segment.doc_ids if d not in dead)
        self._firsts = np.array([s.info.first_chunk for s in segments], dtype=np.int64)
        self._count = None

    def segment_of(self, doc_id: str) -> Segment | None:
        at = self._where.get(doc_id)
        return self.segments[at] if at is not None else None

    def count(self) -> int:
        if self._count is None:
            dead = [s.catalogue.chunk_ids(d) if d else [] for s, d in zip(self.segments, self._dead, strict=True)]
            self._count = sum(s.info.chunks for s in self.segments) - sum(map(len, dead))
        return self._count

    def document_count(self) -> int:
        return len(self._where)

    def documents(self) -> list[DocumentRecord]:
        found = [
            record
            for segment, dead in zip(self.segments, self._dead, strict=True)
            for record in segment.catalogue.documents()
            if record.doc_id not in dead
        ]
        return sorted(found, key=lambda r: r.source)

    def document(self, doc_id: str) -> DocumentRecord | None:
        segment = self.segment_of(doc_id)
        return segment.catalogue.document(doc_id) if segment else None

    def document_text(self, doc_id: str) -> str | None:
        segment = self.segment_of(doc_id)
        return segment.catalogue.document_text(doc_id) if segment else None

    def page_spans(self, doc_id: str) -> list[tuple[int, int]]:
        segment = self.segment_of(doc_id)
        return segment.catalogue.page_spans(doc_id) if segment else []

    def page_confidence(self, doc_id: str) -> tuple[float | None, ...]:
        segment = self.segment_of(doc_id)
        return segment.catalogue.page_confidence(doc_id) if segment else ()

    def find_by_content_hash(self, digest: str) -> DocumentRecord | None:
        for segment, dead in zip(self.segments, self._dead, strict=True):
            for doc_id in segment.catalogue.doc_ids_with_content_hash(digest):
                if doc_id not in dead:
                    return segment.catalogue.document(doc_id)
        return None

    def known_doc_ids(self, doc_ids: Iterable[str]) -> set[str]:
        return {d for d in doc_ids if d in self._where}

    def chunk_ids(self, doc_ids: Iterable[str]) -> list[int]:
        by_segment: dict[int, list[str]] = {}
        for d in doc_ids:
            if d in self._where:
                by_segment.setdefault(self._where[d], []).append(d)
        return [i for at, docs in sorted(by_segment.items()) for i in self.segments[at].catalogue.chunk_ids(docs)]

    def chunks(self, chunk_ids: Sequence[int]) -> list[ChunkRecord]:
        """Live chunks in the order of ``chunk_ids`` (unknown and deleted ids are skipped)."""
        ids = np.asarray([int(i) for i in chunk_ids], dtype=np.int64)
        if len(ids) == 0 or not self.segments:
            return []
        owners = _owners(self._firsts, ids)
        by_id = {}
        for at in np.unique(owners[owners >= 0]).tolist():
            segment, dead = self.segments[at], self._dead[at]
            for record in segment.catalogue.chunks(ids[owners == at].tolist()):
                if record.doc_id not in dead:
                    by_id[record.chunk_id] = record
        return [by_id[i] for i in ids.tolist() if i in by_id]

    def document_chunks(self, doc_id: str) -> list[ChunkRecord]:
        segment = self.segment_of(doc_id)
        return segment.catalogue.document_chunks(doc_id) if segment else []

    def sentences_within(self, doc_id: str, start: int, end: int) -> list[SentenceRecord]:
        segment = self.segment_of(doc_id)
        return segment.catalogue.sentences_within(doc_id, start, end) if segment else []

    def document_sentences(self, doc_id: str) -> list[SentenceRecord]:
        return self.sentences_within(doc_id, 0, 1 << 62)

    def meta(self) -> dict[str, str]:
        return self.segments[0].catalogue.meta() if self.segments else {}

    def close(self) -> None:
        for segment in self.segments:
            segment.close()


class SegmentedVectorStore:
    """Each segment searched as it is (exact or IVF), tombstoned ids dropped, the best k kept."""

    def __init__(self, segments: list[Segment], dead_chunks: list[np.ndarray], dimension: int) -> None:
        self.segments = segments
        self.dimension = dimension
        self._dead = [np.sort(np.asarray(d, dtype=np.int64)) for d in dead_chunks]
        self._firsts = np.array([s.info.first_chunk for s in segments], dtype=np.int64)
        self._ends = np.array([s.info.end_chunk for s in segments], dtype=np.int64)

    @property
    def kind(self) -> str:
        return self.segments[0].vectors.kind if self.segments else "exact"

    def count(self) -> int:
        return sum(s.vectors.count() for s in self.segments) - sum(len(d) for d in self._dead)

    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> VectorHits:
        found_ids, found_scores = [], []
        allowed = None if allowed_ids is None else np.asarray(allowed_ids, dtype=np.int64)
        for at, (segment, dead) in enumerate(zip(self.segments, self._dead, strict=True)):
            if allowed is not None:
                mine = allowed[(allowed >= self._firsts[at]) & (allowed < self._ends[at])]
                if len(mine) == 0:
                    continue
                hits = segment.vectors.search(query, k, mine)
            else:
                hits = segment.vectors.search(query, k + len(dead))  # enough left once the dead are dropped
            keep = ~np.isin(hits.ids, dead) if len(dead) else slice(None)
            found_ids.append(hits.ids[keep])
            found_scores.append(hits.scores[keep])
        if not found_ids:
            return VectorHits(np.zeros(0, np.int64), np.zeros(0, np.float32))
        ids, scores = np.concatenate(found_ids), np.concatenate(found_scores)
        order = np.argsort(-scores, kind="stable")[:k]
        return VectorHits(ids[order], scores[order])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        """The stored vectors of the given ids (each must be present)."""
        return _gathered(self._firsts, ids, self.dimension, lambda at, part: self.segments[at].vectors.vectors(part))

    def nbytes(self) -> int:
        return sum(s.vectors.nbytes() for s in self.segments)


class SegmentedSentenceVectors:
    """Sentence ids by segment; a merge gives its segment a fresh range, so ranges are sorted here."""

    def __init__(self, segments: list[Segment], dimension: int) -> None:
        self.segments = sorted(segments, key=lambda s: s.info.first_sentence)
        self.dimension = dimension
        self._firsts = np.array([s.info.first_sentence for s in self.segments], dtype=np.int64)

    def count(self) -> int:
        return sum(s.sentence_vectors.count() for s in self.segments)

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        return _gathered(
            self._firsts, ids, self.dimension, lambda at, part: self.segments[at].sentence_vectors.vectors(part)
        )
