"""A corpus directory read for ``policyqa ingest``: one file that cannot be read fails alone.

An ingest of hundreds of files reads them all and says which failed and why
(``DocumentFailure``); ``load_corpus`` refuses a corpus with any unreadable
file, as a caller that needs every document wants. The same record carries a
document that fails later, in cleaning, chunking or measuring
(``index/ingest/prepare.py``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from index.errors import ConfigurationError, PolicyQAError
from index.ingest.documents import MANIFEST_NAME, SourceDocument, doc_id_for
from index.ingest.readers import READERS, read_path

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DocumentFailure:
    """A document left out of a build, and why."""

    doc_id: str
    source: str  # its file name in the corpus directory, or the uploaded file's name
    reason: str


def failure_reason(exc: Exception) -> str:
    """Our own errors are written for a user; anything else is named by its type too."""
    return str(exc) if isinstance(exc, PolicyQAError) else f"{type(exc).__name__}: {exc}"


def corpus_entries(directory: Path) -> list[dict]:
    """The files ``manifest.json`` lists (every readable file when there is none), each ``{"file", "title"}``."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigurationError(f"document directory not found: {directory}")
    manifest_path = directory / MANIFEST_NAME
    if manifest_path.exists():
        return json.loads(manifest_path.read_text(encoding="utf-8"))["documents"]
    readable = (p for p in sorted(directory.iterdir()) if p.suffix.lower() in READERS and p.is_file())
    return [{"file": p.name, "title": None} for p in readable]


def iter_corpus(directory: Path, entries: list[dict] | None = None) -> Iterator[SourceDocument | DocumentFailure]:
    """Each listed document read when it is asked for, or why it could not be: a large corpus is never
    held whole, a build takes its documents one batch at a time."""
    for entry in corpus_entries(directory) if entries is None else entries:
        try:
            yield _read_entry(Path(directory), entry)
        except Exception as exc:  # one unreadable file is reported; the others are read
            logger.warning("%s not read: %s", entry["file"], failure_reason(exc))
            yield DocumentFailure(doc_id_for(entry["file"]), entry["file"], failure_reason(exc))


def read_corpus(directory: Path) -> tuple[list[SourceDocument], list[DocumentFailure]]:
    """The documents ``manifest.json`` lists (every readable file when there is none), and those that failed."""
    documents, failures = [], []
    for read in iter_corpus(directory):
        (failures if isinstance(read, DocumentFailure) else documents).append(read)
    return documents, failures


def load_corpus(directory: Path) -> list[SourceDocument]:
    """Every document of the corpus; ``ConfigurationError`` naming the first file that could not be read."""
    documents, failures = read_corpus(directory)
    if failures:
        raise ConfigurationError(f"{failures[0].source} could not be read: {failures[0].reason}")
    return documents


def _read_entry(directory: Path, entry: dict) -> SourceDocument:
    path = directory / entry["file"]
    if not path.is_file():
        raise ConfigurationError(f"{MANIFEST_NAME} lists {entry['file']}, which does not exist")
    read = read_path(path)
    title = entry.get("title") or read.title or _first_line(read.text) or path.stem
    return SourceDocument(
        doc_id_for(path.name), title, path.name, read.text, read.pages, page_confidence=read.page_confidence
    )


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:80]
