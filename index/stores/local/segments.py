"""Segments: the immutable pieces an index is made of, and the generations that list them.

DATA_DIR/index/segments/<segment_id>/  catalogue.sqlite3, vectors.faiss, sentences.npy,
                                       lexical.npz, then segment.json (written last: finished)
DATA_DIR/index/<generation_id>/        manifest.json: the segments served and their tombstones
DATA_DIR/index/CURRENT                 the generation being served

A segment holds some documents: their catalogue rows, chunk vectors, sentence
vectors and BM25 postings. Chunk and sentence ids are global: each segment's
are a range ``[first, end)`` allocated from the manifest's counters, and the
ranges of the segments listed in order ascend without overlapping (a merge
replaces adjacent segments by one over the union of their ranges). A
document deleted from a segment is a tombstone in the manifest; a merge drops
it for good.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.locks import file_lock
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.durable import sync_directory, sync_tree, write_durably
from index.stores.local.lexical import SegmentPostings
from index.stores.local.sentence_vectors import SentenceVectorStore
from index.stores.local.vectors import FaissVectorStore
from index.stores.manifest import SegmentInfo, Tombstone  # noqa: F401  (a segment's own records)

logger = logging.getLogger(__name__)

CATALOGUE_FILE = "catalogue.sqlite3"
VECTORS_FILE = "vectors.faiss"
SENTENCES_FILE = "sentences.npy"
LEXICAL_FILE = "lexical.npz"
SEGMENT_FILE = "segment.json"
SEGMENTS_DIR = "segments"
MERGE_PREFIX = "merge-"  # segments a merge writes; only the merger (holding the merge lock) cleans them up


def segments_root(data_dir: Path) -> Path:
    return Path(data_dir) / "index" / SEGMENTS_DIR


def new_segment_id(prefix: str = "") -> str:
    return prefix + datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + secrets.token_hex(3)


def new_segment_dir(data_dir: Path, prefix: str = "") -> Path:
    path = segments_root(data_dir) / new_segment_id(prefix)
    path.mkdir(parents=True)
    return path


def finish_segment(segment_dir: Path, info: SegmentInfo) -> None:
    """Mark a written segment finished: its files on disk first, then segment.json."""
    sync_tree(segment_dir)
    write_durably(segment_dir / SEGMENT_FILE, info.model_dump_json(indent=2))
    sync_directory(segment_dir.parent)


@contextlib.contextmanager
def merge_lock(data_dir: Path, *, blocking: bool = True) -> Iterator[bool]:
    """One merger at a time: a lock on index/.merge.lock; yields whether it was taken."""
    with file_lock(Path(data_dir) / "index" / ".merge.lock", blocking=blocking) as taken:
        yield taken


def remove_segments(data_dir: Path, keep: set[str], *, merges: bool, writes: bool = True) -> list[str]:
    """Delete segment directories not in ``keep`` (unfinished or unreferenced): merge outputs only if
    ``merges``, writers' segments only if ``writes`` (the merger, which holds no write lock, must not:
    a writer may have just made one)."""
    root = segments_root(data_dir)
    removed = []
    for path in sorted(root.iterdir()) if root.exists() else []:
        made_by_merge = path.name.startswith(MERGE_PREFIX)
        if path.name in keep or (made_by_merge and not merges) or (not made_by_merge and not writes):
            continue
        if (path / SEGMENT_FILE).exists():
            logger.info("removing segment %s, no longer listed", path.name)
        else:
            logger.warning("removing unfinished segment %s", path.name)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


@dataclass(frozen=True)
class Segment:
    """One opened segment, read-only; shared by every generation that lists it."""

    info: SegmentInfo
    catalogue: SqliteCatalogue
    doc_ids: tuple[str, ...]
    vectors: FaissVectorStore | None = None  # None when opened for its catalogue only (a writer's view)
    sentence_vectors: SentenceVectorStore | None = None
    postings: SegmentPostings | None = None

    @property
    def segment_id(self) -> str:
        return self.info.segment_id

    def close(self) -> None:
        self.catalogue.close()


def open_segment(data_dir: Path, info: SegmentInfo, *, catalogue_only: bool = False) -> Segment:
    path = segments_root(data_dir) / info.segment_id
    catalogue = SqliteCatalogue(path / CATALOGUE_FILE, read_only=True)
    segment = Segment(info=info, catalogue=catalogue, doc_ids=tuple(catalogue.doc_ids()))
    if catalogue_only:
        return segment
    return Segment(
        info=info,
        catalogue=catalogue,
        doc_ids=segment.doc_ids,
        vectors=FaissVectorStore.load(path / VECTORS_FILE),
        sentence_vectors=SentenceVectorStore.load(path / SENTENCES_FILE, first_id=info.first_sentence),
        postings=SegmentPostings.load(path / LEXICAL_FILE),
    )


def open_segments(
    data_dir: Path, infos: list[SegmentInfo], reuse: Iterable[Segment] = (), *, catalogue_only: bool = False
) -> list[Segment]:
    """The listed segments, taking those already open from ``reuse`` (a segment never changes)."""
    opened = {s.segment_id: s for s in reuse if catalogue_only or s.vectors is not None}
    return [opened.get(i.segment_id) or open_segment(data_dir, i, catalogue_only=catalogue_only) for i in infos]


def chunk_ranges(segments: list[Segment]) -> np.ndarray:
    """Each segment's first chunk id, ascending: where a chunk id lives is one searchsorted."""
    return np.array([s.info.first_chunk for s in segments], dtype=np.int64)
