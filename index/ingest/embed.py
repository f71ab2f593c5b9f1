"""The embedding stage of a build: reused vectors copied into place, the rest encoded batch by batch.

Two schemes fill the sentence matrix:

- **encoded** (default): every sentence is its own encoder input, after its chunks;
- **late-chunked**: a chunk's pass also yields its sentences' vectors
  (``index/ingest/late_chunking.py``); only sentences no chunk holds whole are encoded.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from index.embedders.base import Embedder
from index.ingest.clean import normalize_for_matching
from index.ingest.late_chunking import ChunkJob, plan_document
from index.ingest.passages import PreparedDocument, passage_header
from index.progress import progress_bar

logger = logging.getLogger(__name__)

# Large enough for the encoder to sort each batch by length (less padding).
EMBED_BATCH = 256


@dataclass(frozen=True)
class Matrices:
    """Every vector of the new build: row = id - 1. Sentences go straight to their file."""

    chunks: np.ndarray
    sentences: np.ndarray


@dataclass(frozen=True)
class _Job:
    matrix: np.ndarray
    row: int
    text: str
    chunk: ChunkJob | None = None  # a chunk whose pass also gives these sentences


def embed_missing(
    prepared: list[PreparedDocument],
    matrices: Matrices,
    embedder: Embedder,
    *,
    late: bool,
    show_progress: bool,
    on_progress: Callable[[int, int], None] | None,
) -> int:
    """Copy reused vectors into place and embed the rest; the number of encoder inputs."""
    pending = []
    for document in prepared:
        chunk_rows, sentence_rows = rows_of(document)
        if document.chunk_vectors is not None:
            matrices.chunks[chunk_rows] = document.chunk_vectors
            matrices.sentences[sentence_rows] = document.sentence_vectors
        else:
            pending.append(document)
        # Views of the matrices: they fill in as the batches are embedded (the agreement check reads them).
        document.chunk_vectors = matrices.chunks[chunk_rows]
        document.sentence_vectors = matrices.sentences[sentence_rows]
    jobs = _late_jobs(pending, matrices, passage_header) if late else _jobs(pending, matrices, passage_header)
    total = sum(len(d.chunks) + len(d.sentences) for d in pending)  # vectors to make, whichever the scheme
    done = inputs = 0
    with progress_bar(total=total, desc="embedding", unit="vector", enabled=show_progress) as bar:
        while batch := list(itertools.islice(jobs, EMBED_BATCH)):
            made = _embed_batch(batch, matrices, embedder)
            inputs += len(batch)
            done += made
            bar.update(made, characters=sum(len(job.text) for job in batch))
            if on_progress is not None:
                on_progress(done, total)
    logger.info("embedded %d vectors with %d encoder inputs", done, inputs)
    return inputs


def _embed_batch(batch: list[_Job], matrices: Matrices, embedder: Embedder) -> int:
    texts = [job.text for job in batch]  # each fits the model's input: capped by its token count when prepared
    chunk_jobs = [job.chunk for job in batch if job.chunk is not None]
    if not chunk_jobs:
        for job, vector in zip(batch, embedder.embed_passages(texts), strict=True):
            job.matrix[job.row] = vector
        return len(batch)
    vectors, pooled = embedder.embed_passages_with_spans(texts, [j.chunk.spans if j.chunk else [] for j in batch])
    made, missing = 0, []
    for job, vector, sentence_vectors in zip(batch, vectors, pooled, strict=True):
        job.matrix[job.row] = vector
        made += 1
        if job.chunk is None:
            continue
        for row, sentence_vector, (start, end) in zip(
            job.chunk.sentence_rows, sentence_vectors, job.chunk.spans, strict=True
        ):
            if sentence_vector is None:  # no token wholly inside it: encoded on its own
                missing.append((row, job.text[start:end]))
            else:
                matrices.sentences[row] = sentence_vector
            made += 1
    if missing:
        for (row, _), vector in zip(missing, embedder.embed_passages([t for _, t in missing]), strict=True):
            matrices.sentences[row] = vector
    return made


def rows_of(document: PreparedDocument) -> tuple[slice, slice]:
    """A document's ids are consecutive, so its vectors are one slice of each matrix."""
    chunks, sentences = document.chunks, document.sentences
    chunk_rows = slice(chunks[0].chunk_id - 1, chunks[-1].chunk_id) if chunks else slice(0, 0)
    sentence_rows = slice(sentences[0][0] - 1, sentences[-1][0]) if sentences else slice(0, 0)
    return chunk_rows, sentence_rows


def _jobs(pending: list[PreparedDocument], matrices: Matrices, header) -> Iterator[_Job]:
    """Every chunk with its heading path, then every sentence, each its own input."""
    for document in pending:
        title = document.source.title
        for c in document.chunks:
            yield _Job(matrices.chunks, c.chunk_id - 1, normalize_for_matching(header(title, c.section) + c.text))
        for sentence_id, start, end in document.sentences:
            yield _Job(matrices.sentences, sentence_id - 1, normalize_for_matching(document.text[start:end]))


def _late_jobs(pending: list[PreparedDocument], matrices: Matrices, header) -> Iterator[_Job]:
    """Every chunk, carrying the sentences it holds; then the sentences no chunk holds whole."""
    for document in pending:
        title = document.source.title
        plan = plan_document(document, lambda section, title=title: header(title, section))
        for chunk in plan.chunks:
            yield _Job(matrices.chunks, chunk.chunk_row, chunk.text, chunk)
        for row, text in plan.lone_sentences:
            yield _Job(matrices.sentences, row, text)
