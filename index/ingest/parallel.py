"""Cleaning, chunking and tokenising of a large build, in a pool of processes.

Each document is worked on alone, so the work splits by document. A worker
returns the cleaned text, its hash, the chunk and sentence spans and each
chunk's BM25 tokens; the parent numbers chunks and sentences, decides reuse
and writes the stores. Small builds (the seed corpus, an upload) stay in
the process: starting workers costs about a second each.

Workers are started with ``forkserver``, not ``fork``: the parent may hold
encoder and OpenMP threads, which a forked child inherits in whatever state
they were.
"""

from __future__ import annotations

import collections
import itertools
import logging
import multiprocessing
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from index.ingest.chunk import ChunkingParams, Span, chunk_text, section_spans
from index.ingest.corpus import failure_reason
from index.ingest.documents import SourceDocument
from index.ingest.passages import clean_document, content_hash, lexical_text
from index.ingest.tokenize import tokenize as words

logger = logging.getLogger(__name__)

PARALLEL_MIN_CHARS = 2_000_000  # below this, a pool's start costs more than it saves on two cores
TASK_DOCUMENTS = 16
# Text handed to the pool before its results are taken: enough to keep the workers busy while a batch is
# embedded and written, little enough that a corpus of any size is never read ahead whole.
PREFETCH_CHARS = 8_000_000


@dataclass(frozen=True)
class CleanedDocument:
    text: str
    page_spans: list[tuple[int, int]]
    digest: str
    chunks: list[Span]
    sentences: list[Span]
    tokens: list[list[str]] | None  # each chunk's BM25 tokens, when tokenised here


def clean_one(source: SourceDocument, chunking: ChunkingParams, tokenize: bool) -> CleanedDocument:
    text, page_spans = clean_document(source)
    chunks = chunk_text(text, chunking)
    tokens = None
    if tokenize:
        tokens = [words(lexical_text(source.title, text[c.start : c.end])) for c in chunks]
    return CleanedDocument(text, page_spans, content_hash(text), chunks, section_spans(text), tokens)


@dataclass(frozen=True)
class CleaningFailed:
    """A document that could not be cleaned or chunked, and why (an exception may not pickle back whole)."""

    reason: str


def _clean_or_fail(
    source: SourceDocument, chunking: ChunkingParams, tokenize: bool
) -> CleanedDocument | CleaningFailed:
    try:
        return clean_one(source, chunking, tokenize)
    except Exception as exc:  # one document's failure is reported, the others go on
        logger.debug("cleaning %s failed", source.source, exc_info=True)
        return CleaningFailed(failure_reason(exc))


def _clean_many(
    sources: list[SourceDocument], chunking: ChunkingParams, keep_going: bool
) -> list[CleanedDocument | CleaningFailed]:
    clean = _clean_or_fail if keep_going else clean_one
    return [clean(source, chunking, True) for source in sources]


def use_pool(sources: list[SourceDocument], workers: int) -> bool:
    return workers > 1 and sum(len(s.raw_text) for s in sources) >= PARALLEL_MIN_CHARS


def cleaned(
    sources: Iterable[SourceDocument], chunking: ChunkingParams, *, workers: int, keep_going: bool = False
) -> Iterator[tuple[SourceDocument, CleanedDocument | CleaningFailed]]:
    """Each source with its cleaned and chunked form, in order; tokenised too when a pool does the work.

    Sources are taken from the iterable as the work needs them: the pool works at most
    ``PREFETCH_CHARS`` ahead of the consumer, which meanwhile embeds and writes what came back.
    With ``keep_going``, a document that fails comes back as ``CleaningFailed`` and the others go on;
    without, its exception is raised.
    """
    sources = iter(sources)
    # Only a large build is worth a pool: the first PARALLEL_MIN_CHARS of text (or all of it) decide.
    head = list(_until_chars(sources, PARALLEL_MIN_CHARS)) if workers > 1 else []
    if not use_pool(head, workers):
        for source in itertools.chain(head, sources):
            yield source, _clean_or_fail(source, chunking, False) if keep_going else clean_one(source, chunking, False)
        return
    logger.info("cleaning, chunking and tokenising in %d processes", workers)
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight: collections.deque = collections.deque()  # (task, its future), in submission order
        chars_in_flight = 0
        for task in _batches(itertools.chain(head, sources), TASK_DOCUMENTS):
            in_flight.append((task, pool.submit(_clean_many, task, chunking, keep_going)))
            chars_in_flight += _chars(task)
            while chars_in_flight > PREFETCH_CHARS:
                task, future = in_flight.popleft()
                chars_in_flight -= _chars(task)
                yield from zip(task, future.result(), strict=True)
        while in_flight:
            task, future = in_flight.popleft()
            yield from zip(task, future.result(), strict=True)


def _chars(sources: list[SourceDocument]) -> int:
    return sum(len(s.raw_text) for s in sources)


def _until_chars(sources: Iterator[SourceDocument], limit: int) -> Iterator[SourceDocument]:
    total = 0
    for source in sources:
        yield source
        total += len(source.raw_text)
        if total >= limit:
            return


def _batches(items: Iterable, size: int) -> Iterator[list]:
    items = iter(items)
    while batch := list(itertools.islice(items, size)):
        yield batch
