"""PDF: the text layer page by page; pages without one (scans) are rendered and read by OCR."""

from __future__ import annotations

import logging
from io import BytesIO

from index.errors import ConfigurationError, InvalidInputError
from index.ingest.readers import ocr_pages
from index.ingest.readers.base import EncryptedFileError, ReadDocument

logger = logging.getLogger(__name__)

# A page with an image and fewer visible characters of text layer than this is taken for a scan
# (a scanner's page stamp or a stray page number is not a text layer); a page without one, always.
MIN_TEXT_CHARS = 20
_NO_TEXT = "the PDF has no text layer (it looks like a scan) and OCR found no text in it"


def read_pdf(data: bytes, *, on_ocr_start: ocr_pages.OcrStart | None = None) -> ReadDocument:
    from pypdf.errors import DependencyError

    try:
        pages, title, with_images = _pdf_pages(data)
    except InvalidInputError:
        raise
    except DependencyError as exc:  # our installation's fault, not the uploader's
        raise ConfigurationError(f"reading this PDF needs an extra package: {exc}") from exc
    except Exception as exc:  # pypdf raises many types on a damaged file
        raise InvalidInputError("not a valid PDF file; it may be damaged or incomplete") from exc
    visible = [len("".join(page.split())) for page in pages]
    scanned = [i for i, n in enumerate(visible) if n == 0 or (n < MIN_TEXT_CHARS and i in with_images)]
    if not scanned:
        return ReadDocument("\n".join(pages), title, pages, (None,) * len(pages))
    recognised = ocr_pages.read_pages(_rendered(data, scanned), len(scanned), on_ocr_start)
    texts, confidence = list(pages), [None] * len(pages)
    for index, page in zip(scanned, recognised, strict=True):
        if page.lines:
            texts[index], confidence[index] = page.text, page.confidence
    if not any(text.strip() for text in texts):
        raise ocr_pages.nothing_recognised("PDF")
    note = ocr_pages.summary(recognised, text_pages=len(pages) - len(scanned))
    return ReadDocument("\n".join(texts), title, tuple(texts), tuple(confidence), note)


def _pdf_pages(data: bytes) -> tuple[tuple[str, ...], str | None, set[int]]:
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(data))
    # Many official PDFs are encrypted only to restrict printing or copying,
    # with an empty password to open them.
    if reader.is_encrypted and not reader.decrypt(""):
        raise EncryptedFileError("the PDF is password-protected; upload a copy without a password")
    pages = tuple((page.extract_text() or "").rstrip() for page in reader.pages)
    title = reader.metadata.title if reader.metadata else None
    with_images = {i for i, page in enumerate(reader.pages) if _has_image(page)}
    return pages, (title.strip() or None) if isinstance(title, str) else None, with_images


def _has_image(page) -> bool:
    resources = page.get("/Resources")
    objects = resources.get_object().get("/XObject") if resources is not None else None
    if objects is None:
        return False
    return any(ref.get_object().get("/Subtype") == "/Image" for ref in objects.get_object().values())


def _rendered(data: bytes, indices: list[int]):
    """The pages' images, greyscale, one at a time (a page's bitmap is freed before the next)."""
    try:
        import pypdfium2
    except ImportError as exc:
        raise ConfigurationError("reading scanned PDFs needs the pypdfium2 package: pip install -e .") from exc
    try:
        document = pypdfium2.PdfDocument(data, password="")
    except pypdfium2.PdfiumError as exc:
        raise InvalidInputError("the PDF's pages cannot be rendered for OCR; it may be damaged") from exc
    try:
        for index in indices:
            page = document[index]
            width, height = page.get_size()
            scale = ocr_pages.OCR_DPI / 72
            ocr_pages.check_pixels(int(width * scale), int(height * scale))
            bitmap = page.render(scale=scale, grayscale=True)
            yield bitmap.to_numpy().copy()
            bitmap.close()
            page.close()
    finally:
        document.close()
