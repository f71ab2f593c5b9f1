"""Documents cleaned, chunked and numbered into passages and sentences, ready for an embedder and a store."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from index.embedders.base import Embedder
from index.ingest.chunk import ChunkingParams, Span
from index.ingest.corpus import DocumentFailure, failure_reason
from index.ingest.documents import SourceDocument
from index.ingest.parallel import CleanedDocument, CleaningFailed, cleaned
from index.ingest.passages import PreparedDocument, lexical_text
from index.ingest.token_caps import TokenBudget, cap_passages
from index.ingest.tokenize import tokenize as words
from index.progress import progress_bar
from index.stores.records import NewChunk
from index.threads import build_plan

logger = logging.getLogger(__name__)

# (source, digest, first chunk id, first sentence id) -> the unchanged document taken from an earlier index, or None
Reuse = Callable[[SourceDocument, str, int, int], PreparedDocument | None]


# A build embeds and writes this many chunks at a time: what it holds at once, whatever the corpus size.
BATCH_CHUNKS = 32_768
# A segment is finished (its vector index and BM25 postings written) when it holds this many chunks: the
# chunk vectors and postings of one segment are all a build keeps until its end. The 1M-chunk benchmark
# tier stays one segment, searched as a whole build always was.
SEGMENT_CHUNKS = 1_048_576


@dataclass(frozen=True)
class BuildOptions:
    show_progress: bool
    on_progress: Callable[[int, int], None] | None
    exact_max: int
    late_chunking: bool
    workers: int | None
    batch_chunks: int = BATCH_CHUNKS
    segment_chunks: int = SEGMENT_CHUNKS

    @property
    def sentence_vectors(self) -> str:
        return "late-chunked" if self.late_chunking else "encoded"


@dataclass
class PreparedBatch:
    """Documents cleaned and chunked, numbered from 1 within the batch, ready to embed and write."""

    documents: list[PreparedDocument] = field(default_factory=list)
    tokens: dict[int, list[str]] | None = field(default_factory=dict)  # chunk id -> BM25 tokens, if a pool made them
    reused: int = 0
    chunks: int = 0
    sentences: int = 0
    read: int = 0  # sources taken from the stream so far, this batch's included (failed ones too)


def late_chunking_for(requested: bool, embedder: Embedder) -> bool:
    if requested and not hasattr(embedder, "embed_passages_with_spans"):
        logger.warning("%s cannot pool token states: sentences are encoded on their own", embedder.name)
        return False
    return requested


def prepare_all(
    sources,
    chunking: ChunkingParams,
    options: BuildOptions,
    *,
    embedder: Embedder,
    reuse: Reuse | None = None,
    failures: list[DocumentFailure] | None = None,
):
    """Every document cleaned and chunked (or reused), numbered in order; with BM25 tokens if a pool made them.

    Chunks and sentences are capped by ``embedder``'s own token count (``token_caps``). With ``failures``, a
    document that cannot be cleaned, chunked or capped is left out and recorded there; without, its error is
    raised.
    """
    batches = prepare_batches(sources, chunking, options, embedder=embedder, reuse=reuse, failures=failures,
                              batch_chunks=None, expected=len(sources))  # fmt: skip
    batch = next(batches, None) or PreparedBatch()
    return batch.documents, batch.reused, batch.tokens


def prepare_batches(
    sources: Iterable[SourceDocument],
    chunking: ChunkingParams,
    options: BuildOptions,
    *,
    embedder: Embedder,
    reuse: Reuse | None = None,
    failures: list[DocumentFailure] | None = None,
    batch_chunks: int | None = None,
    expected: int | None = None,
) -> Iterator[PreparedBatch]:
    """``prepare_all`` a batch at a time: a batch is yielded as soon as it holds ``batch_chunks`` chunks
    (None: one batch of everything), the sources are read as the batches need them, and each batch is
    numbered from 1. ``expected``: how many sources are coming, for the progress bar's ETA."""
    budget = TokenBudget.of(embedder)
    workers = options.workers or build_plan().workers
    batch, read = PreparedBatch(), 0
    with progress_bar(total=expected, desc="cleaning", unit="doc", enabled=options.show_progress) as bar:
        for source, done in cleaned(sources, chunking, workers=workers, keep_going=failures is not None):
            read += 1
            bar.update(1, characters=len(source.raw_text))
            _add(batch, source, done, budget, reuse, failures)
            if batch_chunks is not None and batch.chunks >= batch_chunks:
                batch.read = read
                yield batch
                batch = PreparedBatch()
    if batch.documents:
        batch.read = read
        yield batch
    logger.debug("cleaned %d documents", read)


def _add(batch: PreparedBatch, source, done, budget, reuse: Reuse | None, failures) -> None:
    """One cleaned source into the batch, numbered after what it holds; a failure recorded, where it may be."""
    if isinstance(done, CleaningFailed):  # only with failures to record it in
        _record(failures, source, done.reason)
        return
    try:
        first_ids = (batch.chunks + 1, batch.sentences + 1)
        document, chunk_tokens, was_reused = _prepare_one(source, done, budget, reuse, first_ids)
    except Exception as exc:  # one document's failure is reported, the others go on
        if failures is None:
            raise
        logger.debug("preparing %s failed", source.source, exc_info=True)
        _record(failures, source, failure_reason(exc))
        return
    batch.reused += was_reused
    if chunk_tokens is None or batch.tokens is None:
        batch.tokens = None  # made in process: tokenised when written
    else:
        batch.tokens.update((c.chunk_id, t) for c, t in zip(document.chunks, chunk_tokens, strict=True))
    batch.documents.append(document)
    batch.chunks += len(document.chunks)
    batch.sentences += len(document.sentences)


def _record(failures: list[DocumentFailure], source: SourceDocument, reason: str) -> None:
    logger.warning("%s not indexed: %s", source.source, reason)
    failures.append(DocumentFailure(source.doc_id, source.source, reason))


def _prepare_one(
    source: SourceDocument, done: CleanedDocument, budget: TokenBudget, reuse: Reuse | None, first_ids: tuple[int, int]
):
    """(the document, its chunks' BM25 tokens or None, whether it was reused)."""
    document = reuse(source, done.digest, *first_ids) if reuse else None
    was_reused = document is not None
    if document is None:
        chunks, sentences = cap_passages(done.text, source.title, done.chunks, done.sentences, budget)
        document = _numbered(source, done, chunks, sentences, *first_ids)
    if done.tokens is None or _spans(document.chunks) == _spans(done.chunks):
        return document, done.tokens, was_reused
    # The pool tokenised the chunks before they were capped (or a reused document's chunks differ): again here.
    return document, [words(lexical_text(source.title, c.text)) for c in document.chunks], was_reused


def _spans(chunks) -> list[tuple[int, int]]:
    return [(c.start, c.end) for c in chunks]


def _numbered(
    source: SourceDocument, done: CleanedDocument, chunks: list[Span], spans: list[Span], first_chunk: int,
    first_sentence: int,
) -> PreparedDocument:  # fmt: skip
    text = done.text
    numbered = [
        NewChunk(first_chunk + i, span.start, span.end, span.section, text[span.start : span.end])
        for i, span in enumerate(chunks)
    ]
    sentences = [(first_sentence + i, s.start, s.end) for i, s in enumerate(spans)]
    return PreparedDocument(source, text, done.digest, numbered, sentences, done.page_spans)
