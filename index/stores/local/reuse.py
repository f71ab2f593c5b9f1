"""What a new build takes from the current one: unchanged documents' chunks and vectors,
and, for live changes, the documents themselves."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.ingest.documents import SourceDocument
from index.ingest.passages import PreparedDocument
from index.stores.local import generations
from index.stores.local.segmented import SegmentedCatalogue, SegmentedSentenceVectors, SegmentedVectorStore
from index.stores.records import NewChunk

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreviousBuild:
    manifest: generations.IndexManifest
    catalogue: SegmentedCatalogue
    vectors: SegmentedVectorStore
    sentence_vectors: SegmentedSentenceVectors
    reusable: bool  # same embedder, chunking and pipeline: its vectors may be copied
    by_key: dict[tuple[str, str], str]  # (content hash, title) -> doc_id

    def close(self) -> None:
        self.catalogue.close()


def open_previous(
    data_dir: Path, embedder: generations.EmbedderInfo, chunking: generations.ChunkingInfo
) -> PreviousBuild | None:
    build_dir = generations.current_build_dir(data_dir)
    if build_dir is None:
        return None
    try:
        manifest = generations.read_manifest(build_dir)
    except ValueError:
        logger.warning("ignoring unreadable manifest in %s", build_dir)
        return None
    if manifest.format_version != generations.FORMAT_VERSION:
        return None  # its catalogue has other columns: nothing can be carried over or reused
    try:
        loaded = generations.open_generation(data_dir, build_dir, manifest)
    except (OSError, RuntimeError, ValueError, sqlite3.Error) as exc:
        # A damaged build (a file missing or unreadable) is rebuilt from the sources, not reused.
        logger.warning("not reusing build %s: %s", build_dir.name, exc)
        return None
    catalogue = loaded.catalogue
    return PreviousBuild(
        manifest=manifest,
        catalogue=catalogue,
        vectors=loaded.vectors,
        sentence_vectors=loaded.sentence_vectors,
        reusable=manifest.reusable_by(embedder, chunking),
        by_key={(d.content_hash, d.title): d.doc_id for d in catalogue.documents()},
    )


def carried_sources(
    previous: PreviousBuild, exclude: Collection[str], *, only_origins: Collection[str] | None = None
) -> list[SourceDocument]:
    """The previous build's documents, as sources again (their cleaned text cleans to itself)."""
    sources = []
    for record in previous.catalogue.documents():
        if record.doc_id in exclude or (only_origins is not None and record.origin not in only_origins):
            continue
        text = previous.catalogue.document_text(record.doc_id) or ""
        pages = tuple(text[s:e] for s, e in previous.catalogue.page_spans(record.doc_id))
        confidence = previous.catalogue.page_confidence(record.doc_id)
        sources.append(
            SourceDocument(record.doc_id, record.title, record.source, text, pages, record.origin, confidence)
        )
    return sources


def reuse(
    previous: PreviousBuild, source: SourceDocument, digest: str, first_chunk: int, first_sentence: int
) -> PreparedDocument | None:
    """The unchanged document's chunks and vectors under new ids, or None."""
    old_doc_id = previous.by_key.get((digest, source.title)) if previous.reusable else None
    if old_doc_id is None:
        return None
    catalogue = previous.catalogue
    old_chunks = catalogue.document_chunks(old_doc_id)
    old_sentences = catalogue.document_sentences(old_doc_id)
    chunks = [NewChunk(first_chunk + i, c.start, c.end, c.section, c.text) for i, c in enumerate(old_chunks)]
    sentences = [(first_sentence + i, s.start, s.end) for i, s in enumerate(old_sentences)]
    return PreparedDocument(
        source,
        catalogue.document_text(old_doc_id) or "",
        digest,
        chunks,
        sentences,
        page_spans=catalogue.page_spans(old_doc_id),
        chunk_vectors=previous.vectors.vectors(np.array([c.chunk_id for c in old_chunks], dtype=np.int64)),
        sentence_vectors=previous.sentence_vectors.vectors(
            np.array([s.sentence_id for s in old_sentences], dtype=np.int64)
        ),
    )
