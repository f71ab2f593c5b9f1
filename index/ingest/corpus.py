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


def read_corpus(directory: Path) -> tuple[list[SourceDocument], list[DocumentFailure]]:
    """The documents ``manifest.json`` lists (every readable file when there is none), and those that failed."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ConfigurationError(f"document directory not found: {directory}")
    manifest_path = directory / MANIFEST_NAME
    if manifest_path.exists():
        entries = json.loads(manifest_path.read_text(encoding="utf-8"))["documents"]
    else:
        entries = [
            {"file": p.name, "title": None}
            for p in sorted(directory.iterdir())
            if p.suffix.lower() in READERS and p.is_file()
        ]
    documents, failures = [], []
    for entry in entries:
        try:
            documents.append(_read_entry(directory, entry))
        except Exception as exc:  # one unreadable file is reported; the others are read
            logger.warning("%s not read: %s", entry["file"], failure_reason(exc))
            failures.append(DocumentFailure(doc_id_for(entry["file"]), entry["file"], failure_reason(exc)))
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
