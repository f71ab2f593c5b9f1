"""One segment written a batch at a time, so that a build holds one batch, not its corpus.

Catalogue rows and sentence vectors go to the segment's files as each batch
comes. Chunk vectors go to a scratch file and BM25 postings to compact columns
(``Bm25PostingsWriter``) until ``finish``, which builds the segment's vector
index over all of them (IVF above ``exact_max``, as a one-batch build would)
and writes its postings. The files are those a one-batch build writes.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from index.ingest.embed import Matrices
from index.ingest.passages import PreparedDocument
from index.stores.bm25_writer import Bm25PostingsWriter
from index.stores.local import segments
from index.stores.local.appended_rows import AppendedRows
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.vectors import FaissVectorStore
from index.stores.records import DocumentRecord, document_times, now_iso

SCRATCH_VECTORS = "chunk-vectors.scratch.npy"  # removed once the vector index is written


# The version of a document this write replaces or carries over, by doc_id (None: a new id), for its times.
EarlierDocument = Callable[[str], DocumentRecord | None]


class SegmentWriter:
    def __init__(
        self, data_dir: Path, dimension: int, first_ids: tuple[int, int], earlier: EarlierDocument | None = None
    ) -> None:
        self.dir = segments.new_segment_dir(data_dir)
        self._earlier = earlier
        self.first_ids = first_ids
        self.documents = self.chunks = self.sentences = 0
        self._catalogue = SqliteCatalogue(self.dir / segments.CATALOGUE_FILE, bulk=True)
        self._sentence_vectors = AppendedRows(self.dir / segments.SENTENCES_FILE, dimension)
        self._chunk_vectors = AppendedRows(self.dir / SCRATCH_VECTORS, dimension)
        self._postings = Bm25PostingsWriter()

    @property
    def offsets(self) -> tuple[int, int]:
        """What to add to a batch's ids (numbered from 1) to give the next rows of this segment."""
        return self.first_ids[0] - 1 + self.chunks, self.first_ids[1] - 1 + self.sentences

    def add_postings(self, chunk_ids: Sequence[int], token_lists: Iterable[Sequence[str]]) -> None:
        """The next batch's BM25 tokens, chunk ids given as the segment numbers them (``offsets`` applied)."""
        self._postings.add(chunk_ids, token_lists)

    def add_rows(self, documents: list[PreparedDocument], matrices: Matrices) -> None:
        """The next batch's catalogue rows and vectors (its ids numbered from 1); after ``add_postings``
        has been called for it, if at all concurrently."""
        chunk_offset, sentence_offset = self.offsets
        self._chunk_vectors.append(matrices.chunks)
        self._sentence_vectors.append(matrices.sentences)
        now = now_iso()
        for d in documents:
            earlier = self._earlier(d.source.doc_id) if self._earlier is not None else None
            self._catalogue.add(
                doc_id=d.source.doc_id,
                title=d.source.title,
                source=d.source.source,
                content_hash=d.content_hash,
                text=d.text,
                chunks=[dataclasses.replace(c, chunk_id=c.chunk_id + chunk_offset) for c in d.chunks]
                if chunk_offset
                else d.chunks,
                sentences=[(i + sentence_offset, a, b) for i, a, b in d.sentences],
                origin=d.source.origin,
                page_spans=d.page_spans,
                page_confidence=d.source.page_confidence,
                times=document_times(earlier, content_hash=d.content_hash, added_at=d.source.added_at, now=now),
            )
        self.documents += len(documents)
        self.chunks += len(matrices.chunks)
        self.sentences += len(matrices.sentences)

    def finish(self, exact_max: int, timings: dict[str, float]) -> segments.SegmentInfo:
        """Write the vector index and postings, mark the segment finished: its info."""
        mark = time.perf_counter()
        self._catalogue.close()
        _fsync(self.dir / segments.CATALOGUE_FILE)
        self._sentence_vectors.finish()
        _add(timings, "catalogue", time.perf_counter() - mark)
        mark = time.perf_counter()
        self._postings.finish(self.dir / segments.LEXICAL_FILE)
        _add(timings, "lexical", time.perf_counter() - mark)
        mark = time.perf_counter()
        self._chunk_vectors.finish()
        scratch = self.dir / SCRATCH_VECTORS
        ids = np.arange(self.first_ids[0], self.first_ids[0] + self.chunks, dtype=np.int64)
        vectors = FaissVectorStore.build(ids, np.load(scratch, mmap_mode="r"), exact_max=exact_max)
        vectors.save(self.dir / segments.VECTORS_FILE)
        scratch.unlink()
        _add(timings, "vectors", time.perf_counter() - mark)
        info = segments.SegmentInfo(
            segment_id=self.dir.name,
            first_chunk=self.first_ids[0],
            end_chunk=self.first_ids[0] + self.chunks,
            first_sentence=self.first_ids[1],
            end_sentence=self.first_ids[1] + self.sentences,
            documents=self.documents,
            chunks=self.chunks,
            vector_index=vectors.kind,
        )
        segments.finish_segment(self.dir, info)
        return info

    def abort(self) -> None:
        """Remove what was written: the segment never becomes part of an index."""
        self._catalogue.close()
        self._sentence_vectors.close()
        self._chunk_vectors.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def _add(timings: dict[str, float], stage: str, seconds: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + seconds


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
