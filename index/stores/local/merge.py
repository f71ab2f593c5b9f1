"""Merging segments: a size-tiered policy, and a merge that never blocks reads or writes.

A merge writes one new segment from the live rows of a run of adjacent
segments: catalogue rows copied in SQL, vectors copied (never re-embedded)
into a new FAISS index (so an IVF index is trained again on what it now
holds), sentence vectors copied, BM25 postings joined without the
tombstoned rows, which are gone for good. Chunk and sentence ids are kept,
so the run's id ranges become the new segment's.

It runs without the write lock: changes go on meanwhile. Only the switch
takes the lock, for as long as it takes to write a manifest: the merged
segment replaces the run, and tombstones written since the merge began
are moved onto it. A merge that dies leaves its segment unlisted; the
previous segments stay in service, and the next merge removes what it left.
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.stores.local import generations
from index.stores.local import segments as seg
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.lexical import merge_postings
from index.stores.local.sentence_vectors import SentenceVectorStore
from index.stores.local.vectors import EXACT_MAX, FaissVectorStore

logger = logging.getLogger(__name__)

MERGE_FACTOR = 4  # this many adjacent segments of one size tier are merged into one
MAX_SEGMENTS = 10  # above this many, the smallest adjacent pair is merged whatever its tiers
DEAD_SHARE = 0.3  # a segment with this share of its rows tombstoned is rewritten without them
COPY_BATCH = 65_536


@dataclass(frozen=True)
class MergeReport:
    build_dir: Path
    merged: list[str]  # the segment ids replaced
    segment_id: str
    chunks: int  # live chunks in the new segment
    dropped_chunks: int  # tombstoned rows dropped for good
    timings_s: dict[str, float]


def live_chunks(info: seg.SegmentInfo, tombstones: dict[str, seg.Tombstone]) -> int:
    return info.chunks - len(tombstones.get(info.segment_id, seg.Tombstone()).chunk_ids)


def plan_merge(
    infos: list[seg.SegmentInfo],
    tombstones: dict[str, seg.Tombstone],
    *,
    factor: int = MERGE_FACTOR,
    max_segments: int = MAX_SEGMENTS,
) -> tuple[int, int] | None:
    """The run ``[start, end)`` of adjacent segments to merge next, or None when none needs it."""
    sizes = [live_chunks(i, tombstones) for i in infos]
    tiers = [int(math.log(max(size, 1), factor)) for size in sizes]
    best = None
    for start in range(len(infos) - factor + 1):
        if len(set(tiers[start : start + factor])) == 1 and (best is None or tiers[start] < tiers[best]):
            best = start
    if best is not None:
        return best, best + factor
    if len(infos) > max_segments:
        pair = min(range(len(infos) - 1), key=lambda i: sizes[i] + sizes[i + 1])
        return pair, pair + 2
    for i, info in enumerate(infos):
        if info.chunks and (info.chunks - sizes[i]) >= DEAD_SHARE * info.chunks:
            return i, i + 1
    return None


def merge_segments(
    data_dir: Path,
    *,
    full: bool = False,
    exact_max: int = EXACT_MAX,
    run: tuple[int, int] | None = None,
    reuse: Iterable[seg.Segment] = (),
) -> MergeReport | None:
    """Merge what the policy picks (``full``: every segment into one); None when nothing needed it,
    or when the index changed under the merge so that its run is no longer listed. Segments in
    ``reuse`` (the service's, already loaded) are read from memory instead of opened again."""
    with seg.merge_lock(data_dir):
        return merge_holding_lock(data_dir, full=full, exact_max=exact_max, run=run, reuse=reuse)


def merge_holding_lock(
    data_dir: Path,
    *,
    full: bool = False,
    exact_max: int = EXACT_MAX,
    run: tuple[int, int] | None = None,
    reuse: Iterable[seg.Segment] = (),
) -> MergeReport | None:
    """``merge_segments`` for a caller that holds the merge lock already."""
    _remove_merge_leftovers(data_dir)
    build_dir = generations.current_build_dir(data_dir)
    if build_dir is None:
        return None
    manifest = generations.read_manifest(build_dir)
    if full:
        run = (0, len(manifest.segments)) if len(manifest.segments) > 1 or manifest.tombstones else None
    elif run is None:
        run = plan_merge(manifest.segments, manifest.tombstones)
    if run is None:
        return None
    started = time.perf_counter()
    merged = manifest.segments[run[0] : run[1]]
    seen = {s.segment_id: manifest.tombstones.get(s.segment_id, seg.Tombstone()) for s in merged}
    info, timings = _write_merged(data_dir, merged, seen, exact_max, reuse)
    with generations.write_lock(data_dir):
        committed = _switch(data_dir, merged, seen, info)
    timings["total"] = time.perf_counter() - started
    if committed is None:
        return None
    dropped = sum(len(t.chunk_ids) for t in seen.values())
    logger.info(
        "merged %d segments into %s (%d chunks, %d dropped)", len(merged), info.segment_id, info.chunks, dropped
    )
    return MergeReport(committed, [s.segment_id for s in merged], info.segment_id, info.chunks, dropped, timings)


def _remove_merge_leftovers(data_dir: Path) -> None:
    """A dead merge's segment: unfinished, or finished but never listed. Call holding the merge lock:
    only the merger lists merge segments, so none can be listed meanwhile. Writers' segments are left
    alone: one may be in the making, and its writer cleans up after itself under the write lock."""
    listed: set[str] = set()
    orphaned = set(generations.orphaned_generations(data_dir))
    for path in (p for p in generations.generation_dirs(data_dir) if p not in orphaned):
        with contextlib.suppress(OSError, ValueError):
            listed.update(s.segment_id for s in generations.read_manifest(path).segments)
    seg.remove_segments(data_dir, keep=listed, merges=True, writes=False)


def _write_merged(data_dir: Path, merged, seen: dict[str, seg.Tombstone], exact_max: int, reuse=()):
    """The merged segment, finished (its info, stage timings); segments in ``reuse`` are read as loaded."""
    timings: dict[str, float] = {}
    segment_dir = seg.new_segment_dir(data_dir, prefix=seg.MERGE_PREFIX)
    reuse = list(reuse)
    sources = seg.open_segments(data_dir, merged, reuse)
    try:
        mark = time.perf_counter()
        documents, chunk_ids, sentence_ids = _copy_catalogues(data_dir, segment_dir, sources, seen)
        timings["catalogue"] = time.perf_counter() - mark
        mark = time.perf_counter()
        vectors = np.concatenate([_owned(s.vectors, s.info, chunk_ids) for s in sources])
        store = FaissVectorStore.build(chunk_ids, vectors, exact_max=exact_max)
        store.save(segment_dir / seg.VECTORS_FILE)
        timings["vectors"] = time.perf_counter() - mark
        mark = time.perf_counter()
        _copy_sentences(segment_dir / seg.SENTENCES_FILE, sources, sentence_ids)
        timings["sentences"] = time.perf_counter() - mark
        mark = time.perf_counter()
        merge_postings([_live_postings(s, seen) for s in sources], segment_dir / seg.LEXICAL_FILE)
        timings["lexical"] = time.perf_counter() - mark
    except BaseException:
        shutil.rmtree(segment_dir, ignore_errors=True)
        raise
    finally:
        for s in sources:
            if all(s is not r for r in reuse):
                s.close()
    info = seg.SegmentInfo(
        segment_id=segment_dir.name,
        first_chunk=merged[0].first_chunk,
        end_chunk=merged[-1].end_chunk,
        # Dense ids are read as row = id - first_sentence, so the range then starts at the first one kept.
        first_sentence=int(sentence_ids[0]) if _dense(sentence_ids) else min(s.first_sentence for s in merged),
        end_sentence=max(s.end_sentence for s in merged),
        documents=documents,
        chunks=len(chunk_ids),
        vector_index=store.kind,
    )
    seg.finish_segment(segment_dir, info)
    return info, timings


def _copy_catalogues(data_dir: Path, segment_dir: Path, sources: list[seg.Segment], seen):
    """The live documents' rows, copied in SQL: (documents, chunk ids, sentence ids), ids ascending."""
    catalogue = SqliteCatalogue(segment_dir / seg.CATALOGUE_FILE, bulk=True)
    documents = sum(
        catalogue.add_from(seg.segments_root(data_dir) / s.segment_id / seg.CATALOGUE_FILE,
                           exclude=seen[s.segment_id].doc_ids)
        for s in sources
    )  # fmt: skip
    chunk_ids = np.array(catalogue.all_chunk_ids(), dtype=np.int64)
    sentence_ids = np.array(catalogue.all_sentence_ids(), dtype=np.int64)
    catalogue.compact()
    catalogue.close()
    return documents, chunk_ids, sentence_ids


def _live_postings(segment: seg.Segment, seen: dict[str, seg.Tombstone]):
    dead = segment.postings.rows_of(seen[segment.segment_id].chunk_ids)
    if not len(dead):
        return segment.postings, None
    live = np.ones(len(segment.postings.row_ids), dtype=bool)
    live[dead] = False
    return segment.postings, live


def _owned(vectors: FaissVectorStore, info: seg.SegmentInfo, ids: np.ndarray) -> np.ndarray:
    """The vectors of the ids in this segment's range, read in batches."""
    mine = ids[(ids >= info.first_chunk) & (ids < info.end_chunk)]
    batches = [vectors.vectors(mine[i : i + COPY_BATCH]) for i in range(0, len(mine), COPY_BATCH)]
    return np.concatenate(batches) if batches else np.zeros((0, vectors.dimension), dtype=np.float32)


def _copy_sentences(path: Path, sources: list[seg.Segment], ids: np.ndarray) -> None:
    dimension = sources[0].sentence_vectors.dimension
    matrix = SentenceVectorStore.create(path, len(ids), dimension)
    at = 0
    for s in sorted(sources, key=lambda s: s.info.first_sentence):
        mine = ids[(ids >= s.info.first_sentence) & (ids < s.info.end_sentence)]
        for i in range(0, len(mine), COPY_BATCH):
            batch = mine[i : i + COPY_BATCH]
            matrix[at : at + len(batch)] = s.sentence_vectors.vectors(batch)
            at += len(batch)
    matrix.flush()
    if not _dense(ids):  # gaps where deleted sentences were: the rows need their ids
        np.save(SentenceVectorStore.ids_path(path), SentenceVectorStore.runs_of(ids))


def _dense(ids: np.ndarray) -> bool:
    return len(ids) > 0 and int(ids[-1] - ids[0]) + 1 == len(ids)


def _switch(data_dir: Path, merged: list[seg.SegmentInfo], seen: dict[str, seg.Tombstone], info: seg.SegmentInfo):
    """Replace the run by the merged segment in the current generation, if the run is still listed.
    Call under the write lock."""
    generations.remove_unfinished_builds(data_dir)
    manifest = generations.read_manifest(generations.current_build_dir(data_dir))
    ids = [s.segment_id for s in manifest.segments]
    names = [s.segment_id for s in merged]
    at = ids.index(names[0]) if names[0] in ids else -1
    if at < 0 or ids[at : at + len(names)] != names:
        logger.warning("the index changed under the merge: its segment %s is dropped", info.segment_id)
        return None
    tombstones = {k: v for k, v in manifest.tombstones.items() if k not in seen}
    since = _tombstones_since(manifest.tombstones, seen)
    if since.doc_ids:
        tombstones[info.segment_id] = since
    segments = manifest.segments[:at] + [info] + manifest.segments[at + len(names) :]
    return generations.write_generation(
        data_dir, manifest.model_copy(update={"segments": segments, "tombstones": tombstones})
    )


def _tombstones_since(now: dict[str, seg.Tombstone], seen: dict[str, seg.Tombstone]) -> seg.Tombstone:
    """What was deleted from the merged segments after the merge read them: it now lies in the new one."""
    doc_ids, chunk_ids, df = [], [], Counter()
    for segment_id, before in seen.items():
        after = now.get(segment_id, seg.Tombstone())
        known_docs, known_chunks = set(before.doc_ids), set(before.chunk_ids)
        doc_ids += [d for d in after.doc_ids if d not in known_docs]
        chunk_ids += [c for c in after.chunk_ids if c not in known_chunks]
        df.update(Counter(after.df) - Counter(before.df))
    return seg.Tombstone(doc_ids=doc_ids, chunk_ids=chunk_ids, df=dict(df))
