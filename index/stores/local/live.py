"""Live changes that cost the change: one small segment for what is added, tombstones for what is removed.

An add writes a segment holding only the new documents (ids from the
manifest's counters); a delete writes no segment, only a tombstone with the
BM25 document frequencies its chunks held; a replace is both, in one new
generation. Nothing else is read, copied or embedded. The generation is
switched through CURRENT as a full build is, so a crash at any point leaves
the last committed generation in service (what it left half-written is
removed by the next writer).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from pathlib import Path

from index.embedders.base import Embedder
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import read_corpus
from index.ingest.documents import SourceDocument
from index.ingest.passages import lexical_text
from index.ingest.prepare import BuildOptions, late_chunking_for, prepare_all
from index.ingest.tokenize import tokenize
from index.stores.base import ChangeReport
from index.stores.changes import corpus_changes, refuse_duplicate_ids
from index.stores.local import generations
from index.stores.local import segments as seg
from index.stores.local.build import build_index, write_segment
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.segmented import SegmentedCatalogue
from index.stores.local.vectors import EXACT_MAX
from index.stores.records import DocumentRecord

logger = logging.getLogger(__name__)


def change_index(
    *,
    data_dir: Path,
    embedder: Embedder,
    sources: list[SourceDocument] = (),
    remove: Collection[str] = (),
    chunking: ChunkingParams = ChunkingParams(),
    show_progress: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
    late_chunking: bool = False,
    exact_max: int = EXACT_MAX,
    keep_going: bool = False,
) -> ChangeReport:
    """Add or replace ``sources`` and delete the ids in ``remove``, in one new generation.

    An index of another format, embedder or chunking cannot take a segment of
    this one: it is rebuilt whole, carrying its documents over, as before.
    With ``keep_going``, a source that cannot be prepared is left out (its earlier
    version removed all the same) and listed in the report's ``failed``.
    """
    sources = refuse_duplicate_ids(sources)
    options = BuildOptions(show_progress, on_progress, exact_max, late_chunking_for(late_chunking, embedder), None)
    with generations.write_lock(data_dir):
        generations.remove_unfinished_builds(data_dir)
        build_dir = generations.current_build_dir(data_dir)
        manifest = _changeable(build_dir, embedder, chunking, options)
        if manifest is not None:
            failures = [] if keep_going else None
            return _change_locked(data_dir, manifest, embedder, sources, set(remove), chunking, options, failures)
    report = build_index(
        sources=sources, data_dir=data_dir, embedder=embedder, chunking=chunking, carry_over=True, remove=remove,
        show_progress=show_progress, on_progress=on_progress, late_chunking=late_chunking, exact_max=exact_max,
        keep_going=keep_going,
    )  # fmt: skip
    return ChangeReport(
        report.generation_id, report.documents, report.chunks, report.sentences, len(sources) - len(report.failed),
        len(remove), report.embedded_passages, rebuilt=True, timings_s=report.timings_s, failed=report.failed,
    )  # fmt: skip


def _changeable(build_dir: Path | None, embedder: Embedder, chunking: ChunkingParams, options: BuildOptions):
    """The current manifest, if a segment made with these settings may join it."""
    if build_dir is None:
        return None
    try:
        manifest = generations.read_manifest(build_dir)
    except ValueError:
        return None
    settings = (generations.EmbedderInfo(name=embedder.name, dimension=embedder.dimension),
                generations.ChunkingInfo(**vars(chunking)))  # fmt: skip
    same_kind = manifest.versions.get("sentence_vectors", "encoded") == options.sentence_vectors
    return manifest if manifest.reusable_by(*settings) and same_kind else None


def _change_locked(
    data_dir, manifest, embedder, sources, remove: set[str], chunking, options, failures=None
) -> ChangeReport:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    removed = tombstones_for(data_dir, manifest, remove | {s.doc_id for s in sources})
    timings["tombstones"] = time.perf_counter() - started
    prepared, _, tokens = prepare_all(sources, chunking, options, embedder=embedder, failures=failures)
    return commit_prepared(data_dir, manifest, embedder, prepared, tokens, options, removed, timings, started,
                           failures)  # fmt: skip


def commit_prepared(
    data_dir, manifest, embedder, prepared, tokens, options, removed, timings, started, failures=None
) -> ChangeReport:
    """Write the prepared documents (numbered from 1; those with vectors are not embedded again) as one
    segment, with ``removed`` = ``tombstones_for(...)`` for what they replace, in a new generation."""
    tombstones, dropped, earlier = removed
    infos, added, embedded = list(manifest.segments), (0, 0), 0
    next_ids = (manifest.next_chunk_id, manifest.next_sentence_id)
    if prepared:
        info, _ = write_segment(
            data_dir,
            prepared,
            tokens,
            embedder,
            None,
            options,
            timings,
            first_ids=next_ids,
            agreement=manifest.query_embedders,
            earlier=earlier.get,
        )  # measured once, for the whole index
        embedded = int(timings.pop("embedded_inputs"))
        infos.append(info)
        added = (info.chunks, info.end_sentence - info.first_sentence)
        next_ids = (info.end_chunk, info.end_sentence)
    counts = _counts(manifest.counts, (len(prepared), *added), dropped)
    timings["total"] = time.perf_counter() - started
    new = manifest.model_copy(
        update={
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "segments": infos,
            "tombstones": tombstones,
            "next_chunk_id": next_ids[0],
            "next_sentence_id": next_ids[1],
            "counts": counts,
            "timings_s": {k: round(v, 3) for k, v in timings.items()},
        }
    )
    build_dir = generations.write_generation(data_dir, new)
    logger.info("index %s: +%d documents, -%d documents", build_dir.name, len(prepared), dropped[0])
    return ChangeReport(
        build_dir.name, counts["documents"], counts["chunks"], counts["sentences"], len(prepared), dropped[0],
        embedded, infos[-1].segment_id if prepared else None, timings_s=timings, failed=tuple(failures or ()),
    )  # fmt: skip


def _counts(before: dict[str, int], added: tuple[int, int, int], dropped: tuple[int, int, int]) -> dict[str, int]:
    """Live documents, chunks and sentences after adding and dropping (each a triple in that order)."""
    counts = dict(before)
    for key, plus, minus in zip(("documents", "chunks", "sentences"), added, dropped, strict=True):
        counts[key] = counts.get(key, 0) + plus - minus
    counts["embedded_documents"] = added[0]
    return counts


def catalogue_view(data_dir: Path, manifest: generations.IndexManifest) -> SegmentedCatalogue:
    """A generation's live documents, its segments opened for their catalogues only (no vectors loaded)."""
    segments = seg.open_segments(data_dir, manifest.segments, catalogue_only=True)
    dead = [frozenset(manifest.tombstones.get(s.segment_id, seg.Tombstone()).doc_ids) for s in segments]
    return SegmentedCatalogue(segments, dead)


def tombstones_for(data_dir: Path, manifest: generations.IndexManifest, doc_ids: set[str]):
    """The manifest's tombstones with the live ones of ``doc_ids`` added: (tombstones, (documents, chunks,
    sentences), the records tombstoned by doc_id: what a replace keeps the times of). Each segment's catalogue is
    asked for these documents only: listing every document of every segment, as a catalogue view does, made each
    change cost the size of the index."""
    tombstones = dict(manifest.tombstones)
    documents = chunks = sentences = 0
    records: dict[str, DocumentRecord] = {}
    for info in manifest.segments if doc_ids else ():
        dead = set(tombstones.get(info.segment_id, seg.Tombstone()).doc_ids)
        catalogue = SqliteCatalogue(seg.segments_root(data_dir) / info.segment_id / seg.CATALOGUE_FILE, read_only=True)
        try:
            for doc_id in sorted(catalogue.known_doc_ids(doc_ids - dead)):
                record = records[doc_id] = catalogue.document(doc_id)
                doc_chunks = catalogue.document_chunks(doc_id)
                df = Counter(term for c in doc_chunks for term in set(tokenize(lexical_text(record.title, c.text))))
                previous = tombstones.get(info.segment_id, seg.Tombstone())
                tombstones[info.segment_id] = previous.extended([doc_id], [c.chunk_id for c in doc_chunks], df)
                documents += 1
                chunks += len(doc_chunks)
                sentences += len(catalogue.document_sentences(doc_id))
        finally:
            catalogue.close()
    return tombstones, (documents, chunks, sentences), records


def update_index(*, data_dir: Path, embedder: Embedder, docs_dir: Path, **options) -> ChangeReport | None:
    """``policyqa ingest`` on an index that can take changes: only added, edited or removed files are
    written; None when there is no such index (build it whole instead)."""
    build_dir = generations.current_build_dir(data_dir)
    chunking = options.get("chunking", ChunkingParams())
    late = BuildOptions(False, None, EXACT_MAX, late_chunking_for(options.get("late_chunking", False), embedder), None)
    manifest = _changeable(build_dir, embedder, chunking, late)
    if manifest is None:
        return None
    sources, unread = read_corpus(docs_dir)  # an unreadable file fails alone (and is not in the index after)
    catalogue = catalogue_view(data_dir, manifest)
    try:
        changes = corpus_changes(catalogue, sources)
    finally:
        catalogue.close()
    if not changes.changed and not changes.removed:
        counts = manifest.counts
        return ChangeReport(build_dir.name, counts["documents"], counts["chunks"], counts.get("sentences", 0), 0, 0,
                            unchanged=changes.unchanged, failed=tuple(unread))  # fmt: skip
    report = change_index(data_dir=data_dir, embedder=embedder, sources=changes.changed, remove=changes.removed,
                          keep_going=True, **options)  # fmt: skip
    return dataclasses.replace(report, unchanged=changes.unchanged, failed=(*unread, *report.failed))
