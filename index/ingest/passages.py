"""A document's passages as every index sees them: the cleaned text, its hash, what the embedder and BM25 read.

A backend stores these; the local build and the Milvus writer prepare them alike (``index/ingest/prepare.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from index.ingest.clean import clean_text, normalize_for_matching
from index.ingest.documents import SourceDocument
from index.stores.records import NewChunk

MAX_HEADER_CHARS = 60


@dataclass
class PreparedDocument:
    source: SourceDocument
    text: str
    content_hash: str
    chunks: list[NewChunk]
    sentences: list[tuple[int, int, int]]  # (sentence_id, start, end)
    page_spans: list[tuple[int, int]] = field(default_factory=list)
    chunk_vectors: np.ndarray | None = None
    sentence_vectors: np.ndarray | None = None


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def passage_header(title: str, section: tuple[str, ...]) -> str:
    """What precedes a chunk's text in its embedder input: its place in the document."""
    return " > ".join((title, *section[-2:]))[:MAX_HEADER_CHARS] + "\n"


def passage_input(title: str, section: tuple[str, ...], text: str) -> str:
    """What the embedder sees for a chunk: its place in the document, then its text."""
    return normalize_for_matching(passage_header(title, section) + text)


def lexical_text(title: str, chunk_text: str) -> str:
    """What BM25 indexes for a chunk: the document title, then the chunk."""
    return f"{title}\n{chunk_text}"


def clean_document(source: SourceDocument) -> tuple[str, list[tuple[int, int]]]:
    """The cleaned text and, for a paged document, each page's span in it (pages cleaned apart).

    An upload arrives cleaned by the process that read it (``SourceDocument.cleaned``): that is returned as is.
    """
    if source.cleaned is not None:
        text, page_spans = source.cleaned
        return text, list(page_spans)
    if not source.pages:
        return clean_text(source.raw_text), []
    spans, parts, at = [], [], 0
    for page in source.pages:
        cleaned = clean_text(page)
        parts.append(cleaned)
        spans.append((at, at + len(cleaned)))
        at += len(cleaned) + 1
    return "\n".join(parts), spans
