"""Documents cleaned, chunked and numbered into passages and sentences, ready for an embedder and a store."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from index.embedders.base import Embedder
from index.ingest.chunk import ChunkingParams
from index.ingest.documents import SourceDocument
from index.ingest.parallel import CleanedDocument, cleaned
from index.ingest.passages import PreparedDocument
from index.progress import progress_bar
from index.stores.records import NewChunk
from index.threads import build_plan

logger = logging.getLogger(__name__)

# (source, digest, first chunk id, first sentence id) -> the unchanged document taken from an earlier index, or None
Reuse = Callable[[SourceDocument, str, int, int], PreparedDocument | None]


@dataclass(frozen=True)
class BuildOptions:
    show_progress: bool
    on_progress: Callable[[int, int], None] | None
    exact_max: int
    late_chunking: bool
    workers: int | None

    @property
    def sentence_vectors(self) -> str:
        return "late-chunked" if self.late_chunking else "encoded"


def late_chunking_for(requested: bool, embedder: Embedder) -> bool:
    if requested and not hasattr(embedder, "embed_passages_with_spans"):
        logger.warning("%s cannot pool token states: sentences are encoded on their own", embedder.name)
        return False
    return requested


def prepare_all(sources, chunking: ChunkingParams, options: BuildOptions, reuse: Reuse | None = None):
    """Every document cleaned and chunked (or reused), numbered in order; with BM25 tokens if a pool made them."""
    next_chunk_id, next_sentence_id = 1, 1
    prepared: list[PreparedDocument] = []
    tokens: dict[int, list[str]] | None = {}
    reused = 0
    total_chars = sum(len(s.raw_text) for s in sources)
    workers = options.workers or build_plan().workers
    with progress_bar(total=len(sources), desc="cleaning", unit="doc", enabled=options.show_progress) as bar:
        for source, done in zip(sources, cleaned(sources, chunking, workers=workers), strict=True):
            document = reuse(source, done.digest, next_chunk_id, next_sentence_id) if reuse else None
            if document is None:
                document = _prepare(source, done, next_chunk_id, next_sentence_id)
            else:
                reused += 1
            if done.tokens is None or tokens is None or len(done.tokens) != len(document.chunks):
                tokens = None  # made in process, or reused chunks that differ: tokenised when written
            else:
                tokens.update((c.chunk_id, t) for c, t in zip(document.chunks, done.tokens, strict=True))
            next_chunk_id += len(document.chunks)
            next_sentence_id += len(document.sentences)
            prepared.append(document)
            bar.update(1, characters=len(source.raw_text))
    logger.debug("cleaned %d documents, %d characters", len(sources), total_chars)
    return prepared, reused, tokens


def _prepare(source: SourceDocument, done: CleanedDocument, first_chunk: int, first_sentence: int) -> PreparedDocument:
    text = done.text
    chunks = [
        NewChunk(first_chunk + i, span.start, span.end, span.section, text[span.start : span.end])
        for i, span in enumerate(done.chunks)
    ]
    sentences = [(first_sentence + i, s.start, s.end) for i, s in enumerate(done.sentences)]
    return PreparedDocument(source, text, done.digest, chunks, sentences, done.page_spans)
