"""What every reader returns, and the errors they raise."""

from __future__ import annotations

from dataclasses import dataclass

from index.errors import InvalidInputError


@dataclass(frozen=True)
class ReadDocument:
    text: str  # raw text; for paged formats "\n".join(pages)
    title: str | None
    pages: tuple[str, ...] = ()  # paged formats (PDF, scans, slides, OFD): page n is pages[n - 1]
    page_confidence: tuple[float | None, ...] = ()  # per page: its OCR confidence, None when read as text
    summary: str = ""  # what reading did, in words for the uploader ("OCR: 12 pages, mean confidence 0.97")


class UnsupportedFormatError(InvalidInputError):
    code = "unsupported_format"


class NeedsOcrError(InvalidInputError):
    code = "needs_ocr"


class EncryptedFileError(InvalidInputError):
    code = "encrypted_file"


class FileTooLargeError(InvalidInputError):
    """Within the upload limit, but more than a reader takes: too many pages, rows or pixels."""

    code = "file_too_large"


class DamagedFileError(InvalidInputError):
    code = "damaged_file"


# An encrypted .docx/.xlsx/.pptx is not a zip but an OLE compound file holding the encrypted package.
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def one_line(text: str) -> str:
    return " ".join(text.split())


def refuse_encrypted_ooxml(data: bytes, kind: str) -> None:
    """An Office Open XML file that is an OLE container is password-protected (or an old binary file)."""
    if data.startswith(OLE_MAGIC):
        raise EncryptedFileError(
            f"the {kind} file is password-protected (or an old binary Office file renamed);"
            " save a copy without a password in the current format and upload that"
        )
