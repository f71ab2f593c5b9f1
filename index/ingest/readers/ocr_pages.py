"""OCR of page images for the readers: one engine per process, pages read in parallel, a summary for the uploader."""

from __future__ import annotations

import logging
import os
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from index.ingest.ocr import OcrPage, engine, ocr_image
from index.ingest.readers.base import FileTooLargeError, NeedsOcrError

logger = logging.getLogger(__name__)

OCR_DPI = 200  # PDF pages are rendered at this resolution for OCR
# A scan is read by its job (service/scan_reading.py), not in the request: pages cost the job's time, about a second
# each on two cores, so the cap bounds how long one upload holds its knowledge base's reader, not a request deadline.
MAX_OCR_PAGES = 500
MAX_PAGE_PIXELS = 40_000_000  # an A4 page at 600 dpi is 35 MP
LOW_CONFIDENCE = 0.8
OCR_ENGINE = "rapidocr"
# Pages read at once, one core each: the models run single-threaded, so a page in flight per core keeps the
# cores on convolutions. Each page in flight adds about 250 MB of address space (its images, the detector's
# activations, a thread's malloc arena) to the reading process, whose cap is 2 GB over what it starts with:
# 8 pages of a 200 dpi scan peaked 1.5 GB over it with 2 in flight, 2.0 GB with 4 (the models load inside too).
MAX_PARALLEL_PAGES = 2

# Told as each page has been read (its number, from 1), for the job's progress and its per-page deadline.
OcrPageRead = Callable[[int], None]
# Told how many pages OCR is about to read, before the first one; may return an ``OcrPageRead`` to be told of
# each page. The request's quick check stops reading here (it raises); the job's reading process reports pages.
# Set by the caller, not a global of the library.
OcrStart = Callable[[int], OcrPageRead | None]


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


def read_pages(images: Iterable[np.ndarray], count: int, on_ocr_start: OcrStart | None) -> list[OcrPage]:
    """The ``count`` pages ``images`` yields, read by OCR once the count is checked and the caller told."""
    check_page_count(count)
    on_page = on_ocr_start(count) if on_ocr_start is not None else None
    pages = []
    for page in recognise(images):
        pages.append(page)
        if on_page is not None:
            on_page(len(pages))
    return pages


def recognise(images: Iterable[np.ndarray], parallel: int | None = None) -> Iterator[OcrPage]:
    """The pages in order, ``parallel`` of them read at once (one per usable core by default).

    Images are taken from ``images`` in this thread (a PDF renderer is not thread-safe) and only as
    workers free up, so no more than ``parallel`` + 1 page images are held at a time.
    """
    ocr = engine(OCR_ENGINE)
    workers = parallel or parallel_pages()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ocr-page") as pool:
        pending: deque[Future[OcrPage]] = deque()
        number = 0
        for image in images:
            pending.append(pool.submit(ocr_image, image, ocr))
            if len(pending) >= workers:
                number += 1
                yield _logged(number, pending.popleft().result())
        while pending:
            number += 1
            yield _logged(number, pending.popleft().result())


def parallel_pages() -> int:
    """The cores this process may run on (its CPU affinity, as a container's cpuset sets it), up to the cap."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PARALLEL_PAGES))


def _logged(number: int, page: OcrPage) -> OcrPage:
    logger.info("OCR page %d: %d lines, confidence %.3f", number, page.lines, page.confidence)
    return page


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
