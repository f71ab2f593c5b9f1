"""The Milvus backend: a knowledge base's index in collections every replica shares."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.embedders.base import Embedder
from index.errors import ConfigurationError
from index.ingest.chunk import ChunkingParams
from index.ingest.documents import SourceDocument
from index.stores.base import BackendConfig, ChangeReport
from index.stores.chunk_edits import ChunkCorrection
from index.stores.milvus.catalogue import MilvusCatalogue
from index.stores.milvus.chunk_edit import correct_chunk_milvus
from index.stores.milvus.reader import MilvusIndex, MilvusMeta, MilvusStores, MilvusTarget, build_id, load_milvus_index
from index.stores.milvus.writer import change_milvus, drop_milvus_kb, ingest_milvus, write_lock


@dataclass
class MilvusBackend:
    """``IndexBackend`` over one knowledge base's partition of a Milvus deployment's collections."""

    config: BackendConfig
    label: str = "in Milvus"

    def __post_init__(self) -> None:
        if not self.config.milvus_uri:
            raise ConfigurationError("the Milvus backend needs a URI (POLICYQA_MILVUS_URI)")
        self.target = MilvusTarget(self.config.milvus_uri, self.config.milvus_prefix, self.config.kb_id)

    @property
    def location(self) -> str:
        return self.target.uri

    # -- reading ------------------------------------------------------------
    def exists(self) -> bool:
        return MilvusMeta(self.target).state()[0] is not None

    def stale_format(self) -> bool:
        return False  # Milvus rows have one format

    def open_reader(self, *, embedder_name: str, dimension: int, reuse: MilvusIndex | None = None) -> MilvusIndex:
        return load_milvus_index(self.target, embedder_name=embedder_name, dimension=dimension, reuse=reuse)

    def current_generation(self, reader: MilvusIndex | None = None) -> str | None:
        meta = reader.stores.meta if reader is not None else MilvusMeta(self.target)
        return build_id(self.target, meta.generation())  # one small query: cheap enough to poll

    def stored_counts(self) -> dict[str, int]:
        catalogue = MilvusCatalogue(uri=self.target.uri, prefix=self.target.prefix, kb_id=self.target.kb_id)
        return {"documents": catalogue.document_count(), "chunks": catalogue.count()}

    # -- writing ------------------------------------------------------------
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
        return change_milvus(
            self.target, data_dir=self.config.data_dir, embedder=embedder, sources=sources, remove=remove,
            chunking=chunking, show_progress=show_progress, on_progress=on_progress, late_chunking=late_chunking,
        )  # fmt: skip

    def ingest(
        self,
        *,
        embedder: Embedder,
        docs_dir: Path,
        chunking: ChunkingParams = ChunkingParams(),
        show_progress: bool = False,
        late_chunking: bool = False,
        keep_uploads: bool = True,
    ) -> ChangeReport:
        """Milvus takes every change in place: only added, edited and removed corpus files are written."""
        return ingest_milvus(
            self.target, data_dir=self.config.data_dir, embedder=embedder, docs_dir=docs_dir, chunking=chunking,
            show_progress=show_progress, late_chunking=late_chunking,
        )  # fmt: skip

    def correct_chunk(self, *, embedder: Embedder, doc_id: str, ordinal: int, text: str) -> ChunkCorrection:
        return correct_chunk_milvus(self.target, data_dir=self.config.data_dir, embedder=embedder, doc_id=doc_id,
                                    ordinal=ordinal, text=text)  # fmt: skip

    def create_empty(self, *, embedder: Embedder, chunking: ChunkingParams, late_chunking: bool = False) -> None:
        change_milvus(self.target, data_dir=self.config.data_dir, embedder=embedder, chunking=chunking,
                      late_chunking=late_chunking)  # fmt: skip

    def drop(self, dimension: int) -> None:
        drop_milvus_kb(self.target, dimension)

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        with write_lock(self.target, self.config.data_dir):
            yield

    def merge(self, *, reuse: MilvusIndex | None = None, full: bool = False) -> None:
        """Nothing to merge: Milvus compacts its own segments."""

    def purge_deleted(self) -> bool:
        """Nothing left: a delete removes the rows (Milvus drops them from its files when it compacts)."""
        return False

    def stores(self, dimension: int) -> MilvusStores:
        return MilvusStores(self.target, dimension)
