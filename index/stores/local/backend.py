"""The local backend: a knowledge base's index as immutable segments and generations in its data directory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from index.embedders.base import Embedder
from index.ingest.chunk import ChunkingParams
from index.ingest.documents import ADDED_ORIGINS, SourceDocument
from index.stores.base import BackendConfig, BuildReport, ChangeReport
from index.stores.chunk_edits import ChunkCorrection
from index.stores.local import generations
from index.stores.local.build import build_index
from index.stores.local.chunk_edit import correct_chunk
from index.stores.local.live import change_index, update_index
from index.stores.local.merge import MergeReport, merge_segments
from index.stores.local.purge import purge_deleted


@dataclass
class LocalBackend:
    """``IndexBackend`` over DATA_DIR/index (``index/stores/local/generations.py`` lays it out)."""

    config: BackendConfig
    label: str = ""

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

    @property
    def location(self) -> str:
        return str(self.data_dir)

    # -- reading ------------------------------------------------------------
    def exists(self) -> bool:
        return generations.current_build_dir(self.data_dir) is not None

    def stale_format(self) -> bool:
        return generations.current_format(self.data_dir) not in (None, generations.FORMAT_VERSION)

    def open_reader(self, *, embedder_name: str, dimension: int, reuse=None) -> generations.LoadedIndex:
        return generations.load_index(self.data_dir, embedder_name=embedder_name, dimension=dimension, reuse=reuse)

    def current_generation(self, reader=None) -> str | None:
        build_dir = generations.current_build_dir(self.data_dir)
        return build_dir.name if build_dir is not None else None

    def stored_counts(self) -> dict[str, int]:
        build_dir = generations.current_build_dir(self.data_dir)
        return generations.read_manifest(build_dir).counts if build_dir is not None else {}

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
        report = change_index(
            data_dir=self.data_dir, embedder=embedder, sources=sources, remove=remove, chunking=chunking,
            show_progress=show_progress, on_progress=on_progress, late_chunking=late_chunking,
        )  # fmt: skip
        # What was deleted or replaced leaves the disk before the change is answered as done.
        purge_deleted(self.data_dir, older_generations_hold_them=report.rebuilt and bool(report.removed))
        return report

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
        options = {"chunking": chunking, "show_progress": show_progress, "late_chunking": late_chunking}
        if keep_uploads:  # an index that can take changes gets only the added, edited and removed files
            changed = update_index(data_dir=self.data_dir, embedder=embedder, docs_dir=docs_dir, **options)
            if changed is not None:
                purge_deleted(self.data_dir, older_generations_hold_them=changed.rebuilt and bool(changed.removed))
                return changed
        return build_index(
            docs_dir=docs_dir, data_dir=self.data_dir, embedder=embedder,
            carry_over=ADDED_ORIGINS if keep_uploads else False, keep_going=True, **options,
        )  # fmt: skip

    def correct_chunk(self, *, embedder: Embedder, doc_id: str, ordinal: int, text: str) -> ChunkCorrection:
        corrected = correct_chunk(data_dir=self.data_dir, embedder=embedder, doc_id=doc_id, ordinal=ordinal, text=text)
        purge_deleted(self.data_dir)  # the text corrected away leaves the disk, as a replaced document's does
        return corrected

    def create_empty(self, *, embedder: Embedder, chunking: ChunkingParams, late_chunking: bool = False) -> None:
        build_index(sources=[], data_dir=self.data_dir, embedder=embedder, chunking=chunking, show_progress=False)

    def drop(self, dimension: int) -> None:
        """Nothing outside the data directory, which the caller removes."""

    @contextlib.contextmanager
    def writer_lock(self) -> Iterator[None]:
        with generations.write_lock(self.data_dir):
            yield

    def purge_deleted(self) -> bool:
        """What a change killed before its purge left; skipped while a merge (or a backup) holds the merge lock."""
        return bool(purge_deleted(self.data_dir, blocking=False))

    def merge(self, *, reuse: generations.LoadedIndex | None = None, full: bool = False) -> MergeReport | None:
        return merge_segments(self.data_dir, full=full, reuse=reuse.segments if reuse is not None else ())
