"""A document as received, before cleaning; the corpus directory it may come from is read by ``corpus.py``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "manifest.json"
# Documents that did not come from the corpus directory: a rebuild from the directory keeps them.
ADDED_ORIGINS = ("upload", "faq")


@dataclass(frozen=True)
class SourceDocument:
    doc_id: str
    title: str
    source: str  # file name inside the corpus directory, or the uploaded file's name
    raw_text: str
    pages: tuple[str, ...] = ()  # a PDF's pages, each cleaned apart so citations can name their page
    origin: str = "corpus"  # "corpus" (the docs directory), "upload" (added through the API or CLI) or "faq" (a pair)
    page_confidence: tuple[float | None, ...] = ()  # per page: its OCR confidence, None when read as text
    # The cleaned text and each page's span in it, when the process that read the file cleaned it already (an
    # upload, service/uploads.py): clean_document returns it, so the job does not clean it a second time.
    cleaned: tuple[str, tuple[tuple[int, int], ...]] | None = None
    # When the document first entered the knowledge base (ISO 8601 UTC), for one coming back (a restore from the
    # trash); None: the writer keeps the time of the id it replaces, or stamps it now.
    added_at: str | None = None


def doc_id_for(file_name: str) -> str:
    """A stable, URL-safe id from the file name ("kaifeng-reform.txt" -> "kaifeng-reform")."""
    stem = Path(file_name).stem
    return re.sub(r"[^0-9A-Za-z_\-\u4e00-\u9fff]+", "-", stem).strip("-") or "document"
