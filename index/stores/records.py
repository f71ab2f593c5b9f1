"""What every backend's catalogue returns: documents, chunks and sentences as frozen records."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class DocumentRecord:
    doc_id: str
    title: str
    source: str
    content_hash: str
    chunk_count: int
    origin: str = "corpus"
    pages: int = 0  # pages of a paged format (PDF, OFD, scans); 0 for text without pages
    # ISO 8601 UTC: when the id first entered the knowledge base (kept through replaces, corrections and a restore
    # from the trash) and when its content last changed; "" for a document written before times were kept.
    added_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class ChunkRecord:
    chunk_id: int
    doc_id: str
    ordinal: int
    start: int
    end: int
    section: tuple[str, ...]
    text: str
    title: str
    source: str
    pages: tuple[int, int] | None = None  # first and last page (from 1) of a paged document
    ocr_confidence: float | None = None  # the lowest OCR confidence of the pages it lies on, for scans


@dataclass(frozen=True)
class SentenceRecord:
    sentence_id: int
    doc_id: str
    start: int
    end: int


@dataclass(frozen=True)
class NewChunk:
    chunk_id: int
    start: int
    end: int
    section: tuple[str, ...]
    text: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def document_times(
    earlier: DocumentRecord | None, *, content_hash: str, added_at: str | None, now: str
) -> tuple[str, str]:
    """(added_at, updated_at) of a document being written ``now``: it keeps the time its id first came
    (``added_at`` for one restored, else the version it replaces), and its last change unless its content is
    the same (a rebuild carrying it over, a replace with the same text)."""
    added = added_at or (earlier.added_at if earlier is not None else "") or now
    unchanged = earlier is not None and earlier.content_hash == content_hash and earlier.updated_at
    return added, earlier.updated_at if unchanged else now


def pages_of(page_spans: list[list[int]], start: int, end: int) -> tuple[int, int] | None:
    """The first and last page (numbered from 1) that the span [start, end) touches."""
    if not page_spans:
        return None
    starts = [span[0] for span in page_spans]
    first = max(bisect.bisect_right(starts, start) - 1, 0)
    last = max(bisect.bisect_right(starts, max(end - 1, start)) - 1, first)
    return first + 1, last + 1


def with_confidence(spans: Sequence[tuple[int, int]], confidence: Sequence[float | None]):
    padded = list(confidence) + [None] * (len(spans) - len(confidence))
    return zip(spans, padded[: len(spans)], strict=True)


def confidence_of(page_spans: list[list], pages: tuple[int, int] | None) -> float | None:
    """The lowest OCR confidence among the pages a passage lies on (None when none of them was OCR'd)."""
    if pages is None:
        return None
    found = [span[2] for span in page_spans[pages[0] - 1 : pages[1]] if len(span) > 2]
    return min(found) if found else None
