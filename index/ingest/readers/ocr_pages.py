"""OCR of page images for the readers: one engine per process, a page at a time, a summary for the uploader."""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from index.ingest.ocr import OcrPage, engine, ocr_image
from index.ingest.readers.base import FileTooLargeError, NeedsOcrError

logger = logging.getLogger(__name__)

OCR_DPI = 200  # PDF pages are rendered at this resolution for OCR
MAX_OCR_PAGES = 100  # about as many as one upload's deadline allows on two cores
MAX_PAGE_PIXELS = 40_000_000  # an A4 page at 600 dpi is 35 MP
LOW_CONFIDENCE = 0.8
OCR_ENGINE = "rapidocr"

# Told how many pages OCR is about to read, before the first one: the isolated parse process
# extends its deadline by that many pages. Set by the caller, not a global of the library.
OcrStart = Callable[[int], None]


def check_page_count(count: int) -> None:
    if count > MAX_OCR_PAGES:
        raise FileTooLargeError(
            f"the scan has {count} pages to recognise; at most {MAX_OCR_PAGES} are read in one upload:"
            " split the file and upload the parts"
        )


def check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PAGE_PIXELS:
        raise FileTooLargeError(
            f"a page image is {width}x{height} pixels; images up to {MAX_PAGE_PIXELS // 1_000_000} megapixels"
            " are read (scan at 300 dpi or less)"
        )


def recognise(images: Iterable[np.ndarray]) -> Iterator[OcrPage]:
    ocr = engine(OCR_ENGINE)
    for number, image in enumerate(images, 1):
        page = ocr_image(image, ocr)
        logger.info("OCR page %d: %d lines, confidence %.3f", number, page.lines, page.confidence)
        yield page


def summary(pages: list[OcrPage], text_pages: int = 0) -> str:
    """What OCR did, for the upload reply and the job."""
    read = [page for page in pages if page.lines]
    if not read:
        return ""
    mean = statistics.fmean(page.confidence for page in read)
    parts = [f"OCR: {len(read)} page{'s' if len(read) > 1 else ''}, mean confidence {mean:.2f}"]
    if text_pages:
        parts.insert(0, f"text layer: {text_pages} page{'s' if text_pages > 1 else ''}")
    turned = sum(1 for page in read if page.rotation)
    if turned:
        parts.append(f"{turned} page{'s' if turned > 1 else ''} turned upright")
    weak = [str(i) for i, page in enumerate(pages, 1) if page.lines and page.confidence < LOW_CONFIDENCE]
    if weak:
        parts.append(f"low confidence on page {', '.join(weak[:10])}: check the scan's quality")
    return "; ".join(parts)


def nothing_recognised(kind: str) -> NeedsOcrError:
    return NeedsOcrError(
        f"OCR found no text in the {kind}; it may be blank, a photo without text,"
        " or too faint or blurred to read: scan it again at 200-300 dpi"
    )
