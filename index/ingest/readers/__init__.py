"""One reader per file format, each turning an upload's bytes into a ``ReadDocument``.

Readers return the text as read; cleaning is ``index.ingest.clean``'s job. Every
failure a user can cause raises ``InvalidInputError`` (or a subclass) with a
message fit to show them. Paged formats (PDF, scans, slides, OFD) keep their
pages, so citations can name them; OCR'd pages keep their confidence.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from index.errors import InvalidInputError
from index.ingest.readers.base import (
    DamagedFileError,
    EncryptedFileError,
    FileTooLargeError,
    NeedsOcrError,
    ReadDocument,
    UnsupportedFormatError,
)
from index.ingest.readers.docx import read_docx
from index.ingest.readers.html import read_html
from index.ingest.readers.images import IMAGE_SUFFIXES, read_image
from index.ingest.readers.legacy import read_doc, read_wps
from index.ingest.readers.ocr_pages import OcrStart
from index.ingest.readers.ofd import read_ofd
from index.ingest.readers.pdf import read_pdf
from index.ingest.readers.sheets import read_csv, read_xls, read_xlsx
from index.ingest.readers.slides import read_pptx
from index.ingest.readers.text import decode_text, read_md, read_txt

logger = logging.getLogger(__name__)

__all__ = [
    "READERS", "SUPPORTED", "DamagedFileError", "EncryptedFileError", "FileTooLargeError", "NeedsOcrError",
    "ReadDocument", "UnsupportedFormatError", "decode_text", "read_bytes", "read_document", "read_path",
]  # fmt: skip

READERS: dict[str, Callable[..., ReadDocument]] = {
    ".txt": read_txt,
    ".md": read_md,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pdf": read_pdf,
    ".doc": read_doc,
    ".wps": read_wps,
    ".ofd": read_ofd,
    ".xlsx": read_xlsx,
    ".xls": read_xls,
    ".csv": read_csv,
    ".pptx": read_pptx,
    **dict.fromkeys(IMAGE_SUFFIXES, read_image),
}
SUPPORTED = tuple(READERS)
# Readers that may run OCR take a callback told how many pages it is about to read.
OCR_READERS = {read_pdf, read_image, read_ofd}


def read_bytes(data: bytes, filename: str, *, on_ocr_start: OcrStart | None = None) -> ReadDocument:
    suffix = Path(filename).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        kind = f"{suffix!r} files are" if suffix else "files without an extension are"
        raise UnsupportedFormatError(f"{kind} not supported; upload one of: {', '.join(SUPPORTED)}")
    if not data.strip():
        raise InvalidInputError(f"{filename} is empty")
    document = reader(data, on_ocr_start=on_ocr_start) if reader in OCR_READERS else reader(data)
    if not document.text.strip():
        raise InvalidInputError(f"{filename} contains no text")
    return document


def read_path(path: Path) -> ReadDocument:
    path = Path(path)
    return read_bytes(path.read_bytes(), path.name)


def read_document(path: Path) -> str:
    return read_path(path).text
