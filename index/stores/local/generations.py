"""An index on disk: immutable generations of immutable segments, and an atomically switched CURRENT.

DATA_DIR/index/<build_id>/manifest.json   a generation: its segments and tombstones (index/stores/local/segments.py)
DATA_DIR/index/segments/<segment_id>/     catalogue.sqlite3, vectors.faiss, sentences.npy, lexical.npz
DATA_DIR/index/CURRENT                    the build (generation) id being served
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.errors import IndexFormatError, IndexMismatchError, IndexNotFoundError
from index.locks import file_lock
from index.stores.local import segments as seg
from index.stores.local.durable import sync_directory, sync_tree, write_durably
from index.stores.local.lexical import LiveSegment, SegmentedLexicalStore
from index.stores.local.segmented import SegmentedCatalogue, SegmentedSentenceVectors, SegmentedVectorStore
from index.stores.local.segments import (  # noqa: F401  (the file names, where they were always found)
    CATALOGUE_FILE,
    LEXICAL_FILE,
    SENTENCES_FILE,
    VECTORS_FILE,
    Segment,
    SegmentInfo,
    Tombstone,
)
from index.stores.manifest import (  # noqa: F401  (where the local index's readers found them)
    FORMAT_VERSION,
    PIPELINE_VERSION,
    ChunkingInfo,
    EmbedderInfo,
    IndexManifest,
)

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"


def index_root(data_dir: Path) -> Path:
    return Path(data_dir) / "index"


def new_build_dir(data_dir: Path) -> Path:
    build_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)  # sorts by time
    path = index_root(data_dir) / build_id
    path.mkdir(parents=True)
    return path


def current_build_dir(data_dir: Path) -> Path | None:
    pointer = index_root(data_dir) / "CURRENT"
    if not pointer.exists():
        return None
    path = index_root(data_dir) / pointer.read_text(encoding="utf-8").strip()
    return path if (path / MANIFEST_FILE).exists() else None


def write_generation(data_dir: Path, manifest: IndexManifest) -> Path:
    """Write a new generation with this manifest (its build id set here), make it current, prune old ones."""
    build_dir = new_build_dir(data_dir)
    manifest = manifest.model_copy(update={"build_id": build_dir.name})
    sync_tree(build_dir)  # whatever else the generation holds, on disk before its manifest
    write_durably(build_dir / MANIFEST_FILE, manifest.model_dump_json(indent=2))  # whole or not at all
    sync_directory(build_dir.parent)
    switch_current(data_dir, build_dir)
    prune_builds(data_dir)
    return build_dir


def switch_current(data_dir: Path, build_dir: Path) -> None:
    """Point CURRENT at a finished build; readers see the old or the new one, never half."""
    write_durably(index_root(data_dir) / "CURRENT", build_dir.name + "\n")


@contextlib.contextmanager
def write_lock(data_dir: Path) -> Iterator[None]:
    """One writer at a time across processes (the server's jobs, the CLI): a lock on index/.lock."""
    with file_lock(index_root(data_dir) / ".lock"):
        yield


def generation_dirs(data_dir: Path) -> list[Path]:
    root = index_root(data_dir)
    dirs = [p for p in root.iterdir() if p.is_dir() and p.name != seg.SEGMENTS_DIR] if root.exists() else []
    return sorted(dirs, reverse=True)


def orphaned_generations(data_dir: Path) -> list[Path]:
    """Generations newer than the current one: written, but a crash came before CURRENT was switched.
    (Every switch is made under the write lock, so under it none is in the making.)"""
    current = current_build_dir(data_dir)
    return [p for p in generation_dirs(data_dir) if current is not None and p.name > current.name]


def remove_unfinished_builds(data_dir: Path) -> list[Path]:
    """Generations without a manifest and segments without segment.json: what a crash left.

    Also generations never made current. Call under the write lock. A merge's segments are left to
    the merger.
    """
    unfinished = [p for p in generation_dirs(data_dir) if not (p / MANIFEST_FILE).exists()]
    unfinished += orphaned_generations(data_dir)
    for path in unfinished:
        logger.warning("removing unfinished build %s", path.name)
        shutil.rmtree(path, ignore_errors=True)
    root = seg.segments_root(data_dir)
    finished = {p.name for p in root.iterdir() if (p / seg.SEGMENT_FILE).exists()} if root.exists() else set()
    seg.remove_segments(data_dir, keep=finished, merges=False)
    return unfinished


def prune_builds(data_dir: Path, *, keep: int = 2, merge_lock_held: bool = False) -> list[Path]:
    """Delete all but the newest ``keep`` generations, never the current one, and the segments none lists.

    The previous generation is kept so that a server still holding it, or an
    operator rolling back, finds it intact. Call under the write lock.
    """
    current = current_build_dir(data_dir)
    builds = [p for p in generation_dirs(data_dir) if (p / MANIFEST_FILE).exists()]
    removed = [p for p in builds[keep:] if p != current]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    listed: set[str] = set()
    for path in builds:
        if path not in removed:
            with contextlib.suppress(ValueError, OSError):
                listed.update(s.segment_id for s in read_manifest(path).segments)
    if merge_lock_held:
        seg.remove_segments(data_dir, keep=listed, merges=True)
        return removed
    with seg.merge_lock(data_dir, blocking=False) as no_merge_running:
        seg.remove_segments(data_dir, keep=listed, merges=no_merge_running)
    return removed


def current_format(data_dir: Path) -> int | None:
    """The format version of the current build, or None when there is none."""
    build_dir = current_build_dir(data_dir)
    return read_manifest(build_dir).format_version if build_dir else None


def read_manifest(build_dir: Path) -> IndexManifest:
    return IndexManifest.model_validate_json((build_dir / MANIFEST_FILE).read_text(encoding="utf-8"))


@dataclass(frozen=True)
class LoadedIndex:
    """One generation, opened read-only: its stores see the live rows of all its segments."""

    build_dir: Path
    manifest: IndexManifest
    catalogue: SegmentedCatalogue
    vectors: SegmentedVectorStore
    sentence_vectors: SegmentedSentenceVectors
    lexical: SegmentedLexicalStore
    segments: tuple[Segment, ...] = ()

    def size_bytes(self) -> int:
        """The generation directory's files (its manifest; the segments it lists are not counted)."""
        return sum(path.stat().st_size for path in self.build_dir.rglob("*") if path.is_file())

    def close(self) -> None:
        self.catalogue.close()


def open_generation(data_dir: Path, build_dir: Path, manifest: IndexManifest, reuse=()) -> LoadedIndex:
    """The generation's stores over its segments (those in ``reuse`` are not opened again)."""
    segments = seg.open_segments(data_dir, manifest.segments, reuse)
    tombstones = [manifest.tombstones.get(s.segment_id, Tombstone()) for s in segments]
    dead_chunks = [np.asarray(t.chunk_ids, dtype=np.int64) for t in tombstones]
    live = [
        LiveSegment(s.postings, s.postings.rows_of(t.chunk_ids), t.df)
        for s, t in zip(segments, tombstones, strict=True)
    ]
    dimension = manifest.embedder.dimension
    return LoadedIndex(
        build_dir=build_dir,
        manifest=manifest,
        catalogue=SegmentedCatalogue(segments, [frozenset(t.doc_ids) for t in tombstones]),
        vectors=SegmentedVectorStore(segments, dead_chunks, dimension),
        sentence_vectors=SegmentedSentenceVectors(segments, dimension),
        lexical=SegmentedLexicalStore(live),
        segments=tuple(segments),
    )


def load_index(data_dir: Path, *, embedder_name: str, dimension: int, reuse: LoadedIndex | None = None) -> LoadedIndex:
    """Open the current build read-only; refuse one built with another embedder.

    ``reuse``: an index loaded before, whose segments the new one shares instead of opening them again.
    """
    build_dir = current_build_dir(data_dir)
    if build_dir is None:
        raise IndexNotFoundError(f"no index in {index_root(data_dir)}; run 'policyqa ingest' first")
    manifest = read_manifest(build_dir)
    if manifest.format_version != FORMAT_VERSION:
        raise IndexFormatError(
            f"the index {manifest.build_id} has format {manifest.format_version}, this policyqa reads"
            f" {FORMAT_VERSION}: rebuild it with 'policyqa ingest'"
        )
    if manifest.embedder.name != embedder_name or manifest.embedder.dimension != dimension:
        raise IndexMismatchError(
            f"the index {manifest.build_id} was built with embedder {manifest.embedder.name!r}"
            f" ({manifest.embedder.dimension}-d) but {embedder_name!r} ({dimension}-d) is configured;"
            " rebuild it with 'policyqa ingest' or configure the same embedder"
        )
    if manifest.pipeline_version != PIPELINE_VERSION:
        logger.warning(
            "index %s was built by an older text pipeline (version %s, now %s); run 'policyqa ingest' to rebuild it",
            manifest.build_id,
            manifest.pipeline_version,
            PIPELINE_VERSION,
        )
    return open_generation(data_dir, build_dir, manifest, reuse.segments if reuse is not None else ())
