"""A chunk corrected in the local index: a live change that replaces its document by the corrected one.

The document's segment is opened alone (its catalogue and vectors), the
corrected document made from it (``index/stores/chunk_edits.py``: only the
chunk and its sentences embedded), and written as a replace is: one small
segment, a tombstone for the old rows, a new generation. The backend then
purges the tombstoned rows, so the text corrected away leaves the disk.
"""

from __future__ import annotations

import time
from pathlib import Path

from index.embedders.base import Embedder
from index.errors import ConfigurationError, IndexNotFoundError, NotFoundError
from index.ingest.prepare import BuildOptions
from index.stores.chunk_edits import ChunkCorrection, corrected_document
from index.stores.local import generations
from index.stores.local import segments as seg
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.live import commit_prepared, tombstones_for
from index.stores.local.segmented import SegmentedCatalogue, SegmentedSentenceVectors, SegmentedVectorStore
from index.stores.local.vectors import EXACT_MAX


def correct_chunk(*, data_dir: Path, embedder: Embedder, doc_id: str, ordinal: int, text: str) -> ChunkCorrection:
    with generations.write_lock(data_dir):
        generations.remove_unfinished_builds(data_dir)
        build_dir = generations.current_build_dir(data_dir)
        if build_dir is None:
            raise IndexNotFoundError(f"no index in {generations.index_root(data_dir)}")
        manifest = generations.read_manifest(build_dir)
        if (manifest.embedder.name, manifest.embedder.dimension) != (embedder.name, embedder.dimension):
            raise ConfigurationError(f"the index was built with {manifest.embedder.name}, not {embedder.name}")
        late = manifest.versions.get("sentence_vectors") == "late-chunked"
        started = time.perf_counter()
        corrected = _corrected(data_dir, manifest, embedder, doc_id, ordinal, text, late)
        timings = {"embed": time.perf_counter() - started}
        options = BuildOptions(False, None, EXACT_MAX, late, None)
        removed = tombstones_for(data_dir, manifest, {doc_id})
        report = commit_prepared(data_dir, manifest, embedder, [corrected.document], None, options, removed,
                                 timings, started)  # fmt: skip
    return ChunkCorrection(  # the segment's chunk ids start at the counter the manifest held
        report.generation_id, doc_id, ordinal, manifest.next_chunk_id + ordinal, corrected.before,
        corrected.document.chunks[ordinal].text, corrected.embedded_passages,
    )  # fmt: skip


def _corrected(data_dir: Path, manifest, embedder: Embedder, doc_id: str, ordinal: int, text: str, late: bool):
    """The corrected document, read from the one live segment that holds it."""
    for info in manifest.segments:
        dead = manifest.tombstones.get(info.segment_id, seg.Tombstone())
        if doc_id in dead.doc_ids or not _holds(data_dir, info, doc_id):
            continue
        segment = seg.open_segment(data_dir, info)
        try:
            return corrected_document(
                SegmentedCatalogue([segment], [frozenset(dead.doc_ids)]),
                SegmentedVectorStore([segment], [dead.chunk_ids], embedder.dimension),
                SegmentedSentenceVectors([segment], embedder.dimension),
                doc_id=doc_id, ordinal=ordinal, text=text, embedder=embedder, late=late,
            )  # fmt: skip
        finally:
            segment.close()
    raise NotFoundError(f"no document with id {doc_id!r}")


def _holds(data_dir: Path, info: seg.SegmentInfo, doc_id: str) -> bool:
    catalogue = SqliteCatalogue(seg.segments_root(data_dir) / info.segment_id / seg.CATALOGUE_FILE, read_only=True)
    try:
        return bool(catalogue.known_doc_ids([doc_id]))
    finally:
        catalogue.close()
