"""The seam between the library and where an index lives: what every backend must read and write.

A backend holds one knowledge base's index. ``IndexReader`` is one generation
of it opened read-only: what retrieval, evidence and the catalogue views
read. ``IndexWriter`` changes it: apply a change, ingest a directory, drop the
knowledge base, take the writer lock. ``IndexBackend`` opens readers and is
the writer. The local segmented index (``index/stores/local/backend.py``) and
Milvus (``index/stores/milvus/backend.py``) implement it; ``open_backend``
(``index/stores/factory.py``) is the only place one is chosen. The contract
they share is ``index/stores/contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from index.embedders.base import Embedder
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import DocumentFailure
from index.ingest.documents import SourceDocument
from index.stores.bm25 import LexicalHits, LexicalScores
from index.stores.chunk_edits import ChunkCorrection
from index.stores.manifest import IndexManifest
from index.stores.records import ChunkRecord, DocumentRecord, SentenceRecord
from index.stores.vectors import VectorHits

BackendKind = Literal["local", "milvus"]
DEFAULT_KB = "default"


@dataclass(frozen=True)
class BackendConfig:
    """Where one knowledge base's index lives, said explicitly (the library never reads the service's settings)."""

    kind: BackendKind
    data_dir: Path  # the knowledge base's own directory: the local index, locks; for Milvus only the locks
    kb_id: str = DEFAULT_KB
    milvus_uri: str | None = None
    milvus_prefix: str = "policyqa"


@dataclass(frozen=True)
class ChangeReport:
    """What a change or an incremental ingest did."""

    generation_id: str  # the generation it committed
    documents: int  # live, after the change
    chunks: int
    sentences: int
    added: int
    removed: int
    embedded_passages: int = 0
    segment_id: str | None = None  # the segment written for the added documents (local)
    rebuilt: bool = False  # the index could not take a change (other format or settings): rebuilt whole
    unchanged: int = 0  # for an ingest: corpus documents left as they were
    timings_s: dict[str, float] = field(default_factory=dict)
    failed: tuple[DocumentFailure, ...] = ()  # for an ingest: documents that could not be read or prepared


@dataclass(frozen=True)
class BuildReport:
    """What a full build from a corpus did."""

    generation_id: str
    documents: int
    chunks: int
    sentences: int
    embedded_documents: int
    reused_documents: int
    embedded_passages: int = 0  # chunks and sentences sent to the embedder
    timings_s: dict[str, float] = field(default_factory=dict)
    failed: tuple[DocumentFailure, ...] = ()  # documents that could not be read or prepared, left out


class Catalogue(Protocol):
    """Documents, chunks and sentences of one generation (live rows only)."""

    def count(self) -> int: ...
    def document_count(self) -> int: ...
    def documents(self) -> list[DocumentRecord]: ...
    def document(self, doc_id: str) -> DocumentRecord | None: ...
    def document_text(self, doc_id: str) -> str | None: ...
    def document_chunks(self, doc_id: str) -> list[ChunkRecord]: ...
    def document_sentences(self, doc_id: str) -> list[SentenceRecord]: ...
    def page_spans(self, doc_id: str) -> list[tuple[int, int]]: ...
    def page_confidence(self, doc_id: str) -> tuple[float | None, ...]: ...
    def chunks(self, chunk_ids: Sequence[int]) -> list[ChunkRecord]: ...
    def chunk_ids(self, doc_ids: Iterable[str]) -> list[int]: ...
    def known_doc_ids(self, doc_ids: Iterable[str]) -> set[str]: ...
    def find_by_content_hash(self, digest: str) -> DocumentRecord | None: ...


class VectorReader(Protocol):
    """Chunk or sentence vectors: float32, L2-normalised, searched by inner product over int64 ids."""

    def count(self) -> int: ...
    def search(self, query: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> VectorHits: ...
    def vectors(self, ids: np.ndarray) -> np.ndarray: ...


class LexicalReader(Protocol):
    """BM25 over every live chunk, with statistics global to the knowledge base."""

    def count(self) -> int: ...
    def idf(self, term: str) -> float: ...
    def scores(self, query: str, allowed_ids: Iterable[int] | None = None) -> LexicalScores: ...
    def search(self, query: str, k: int, allowed_ids: Iterable[int] | None = None) -> LexicalHits: ...


class IndexReader(Protocol):
    """One generation of a knowledge base's index, opened read-only."""

    manifest: IndexManifest  # its build_id is the generation's id
    catalogue: Catalogue
    vectors: VectorReader
    sentence_vectors: VectorReader
    lexical: LexicalReader

    def size_bytes(self) -> int:
        """What this generation costs the machine that opened it (for the cache of loaded knowledge bases)."""

    def close(self) -> None: ...


class IndexWriter(Protocol):
    """Changes to one knowledge base's index; every change commits a new generation whole or not at all."""

    def change(
        self,
        *,
        embedder: Embedder,
        sources: Sequence[SourceDocument] = (),
        remove: Collection[str] = (),
        chunking: ChunkingParams = ChunkingParams(),
        show_progress: bool = False,
        on_progress: Callable[[int, int], None] | None = None,
        late_chunking: bool = False,
    ) -> ChangeReport:
        """Add or replace ``sources`` and delete the ids in ``remove``, in one new generation."""

    def ingest(
        self,
        *,
        embedder: Embedder,
        docs_dir: Path,
        chunking: ChunkingParams = ChunkingParams(),
        show_progress: bool = False,
        late_chunking: bool = False,
        keep_uploads: bool = True,
    ) -> ChangeReport | BuildReport:
        """Bring the index in line with a corpus directory: only added, edited and removed files are written
        where the index can take changes; otherwise it is built whole (uploads kept with ``keep_uploads``).
        A file that cannot be read, cleaned or chunked fails alone: it is not in the index afterwards, and the
        report's ``failed`` says why."""

    def correct_chunk(self, *, embedder: Embedder, doc_id: str, ordinal: int, text: str) -> ChunkCorrection:
        """Give the chunk at ``ordinal`` of a document this text, in one new generation: its place, section
        path and the document's other chunks are kept, and only it and its sentences are embedded (the
        document's rows are written again, under new ids). What it replaced leaves storage as a replace's does."""

    def create_empty(self, *, embedder: Embedder, chunking: ChunkingParams, late_chunking: bool = False) -> None:
        """An empty index for a new knowledge base."""

    def drop(self, dimension: int) -> None:
        """Every stored row of this knowledge base (files in its data directory are the caller's)."""

    def writer_lock(self) -> AbstractContextManager:
        """One writer of this knowledge base's index at a time, across processes (and replicas, where shared)."""

    def merge(self, *, reuse: IndexReader | None = None, full: bool = False):
        """Merge what a backend merges itself (local segments); a report, or None when nothing was merged."""

    def purge_deleted(self) -> bool:
        """Take off storage the text of deleted documents that a change killed before its purge left; whether
        anything was (a new generation to reload). Each change purges its own before it returns."""


class IndexBackend(IndexWriter, Protocol):
    """One knowledge base's index: opens readers, and writes."""

    config: BackendConfig
    label: str  # how the CLI names where the index is ("" for the local directory, "in Milvus")

    @property
    def location(self) -> str:
        """Where the index is, for messages: a directory or a Milvus URI."""

    def exists(self) -> bool: ...

    def stale_format(self) -> bool:
        """An index of another format, to be rebuilt."""

    def open_reader(self, *, embedder_name: str, dimension: int, reuse: IndexReader | None = None) -> IndexReader:
        """The current generation; refuses one built with another embedder. ``reuse``: a reader of this
        backend opened before, whose parts the new one may share."""

    def current_generation(self, reader: IndexReader | None = None) -> str | None:
        """The id of the generation a reader should serve now (cheap enough to poll every second)."""

    def stored_counts(self) -> dict[str, int]:
        """Documents and chunks without opening a reader."""
