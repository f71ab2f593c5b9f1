"""The corpus as received: documents listed by a manifest in a directory."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from index.errors import ConfigurationError
from index.ingest.readers import READERS, read_path

MANIFEST_NAME = "manifest.json"


@dataclass(frozen=True)
class SourceDocument:
    doc_id: str
    title: str
    source: str  # file name inside the corpus directory, or the uploaded file's name
    raw_text: str
    pages: tuple[str, ...] = ()  # a PDF's pages, each cleaned apart so citations can name their page
    origin: str = "corpus"  # "corpus" (the docs directory) or "upload" (added through the API or CLI)
    page_confidence: tuple[float | None, ...] = ()  # per page: its OCR confidence, None when read as text
    # The cleaned text and each page's span in it, when the process that read the file cleaned it already (an
    # upload, service/uploads.py): clean_document returns it, so the job does not clean it a second time.
    cleaned: tuple[str, tuple[tuple[int, int], ...]] | None = None


def doc_id_for(file_name: str) -> str:
    """A stable, URL-safe id from the file name ("kaifeng-reform.txt" -> "kaifeng-reform")."""
    stem = Path(file_name).stem
    return re.sub(r"[^0-9A-Za-z_\-\u4e00-\u9fff]+", "-", stem).strip("-") or "document"


def load_corpus(directory: Path) -> list[SourceDocument]:
    """Documents named in ``manifest.json`` (title, file), or every readable file when it is absent."""
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
    documents = []
    for entry in entries:
        path = directory / entry["file"]
        if not path.is_file():
            raise ConfigurationError(f"{manifest_path} lists {entry['file']}, which does not exist")
        read = read_path(path)
        title = entry.get("title") or read.title or _first_line(read.text) or path.stem
        documents.append(
            SourceDocument(
                doc_id_for(path.name), title, path.name, read.text, read.pages, page_confidence=read.page_confidence
            )
        )
    return documents


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:80]
