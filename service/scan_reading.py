"""A scan read by OCR in its job: the same isolated, memory-capped, killable reading process as an upload's
check (``service/uploads.py``), with a deadline per page instead of the request's.

The job's thread waits on the reading process's pipe: each page it reports moves the deadline one page on,
so a long scan takes as long as its pages need, while a page that hangs (a crafted image, a stuck model) is
killed within ``OCR_SECONDS_PER_PAGE``. Nothing is indexed unless every page was read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from index.errors import InvalidInputError, PolicyQAError
from service.uploads import ParseTimeoutError, PendingScan, Upload, start_reader

logger = logging.getLogger(__name__)

# Longest one page may take (it is read at 200 dpi, about 2.5 CPU-s on a free core): past it, the reader is killed.
OCR_SECONDS_PER_PAGE = 15.0
# Loading the OCR models, before the first page (about a second), on top of that page's own allowance.
OCR_START_S = 15.0
# How often a wait looks whether the knowledge base is closing (then the reader is killed, not waited for).
STOP_CHECK_S = 0.5


class ScanReadingStoppedError(PolicyQAError):
    code = "unavailable"


def read_scan(
    scan: PendingScan, *, on_page: Callable[[int, int], None], timeout: float, job_timeout: float, stop: threading.Event
) -> Upload:
    """The scan read by OCR, ``on_page(done, pages)`` told after each page.

    ``timeout`` bounds each stretch that is not a page: opening the file before OCR, cleaning the text after;
    ``job_timeout`` the whole. Raises ``InvalidInputError`` (a subclass: ``ParseTimeoutError``, ``NeedsOcrError``,
    ...) for a scan that cannot be read, and ``ScanReadingStoppedError`` when ``stop`` is set meanwhile.
    """
    reader = start_reader(scan.data, scan.filename, scan.title, scan.doc_id, read_scans=True)
    job_deadline = time.monotonic() + job_timeout
    try:
        reader.process.start()
        reader.sender.close()
        pages, done, started = scan.pages, 0, False
        allowed = timeout
        while True:
            late = _lateness(scan, started, done, pages, allowed)
            if time.monotonic() + allowed > job_deadline:
                allowed = max(job_deadline - time.monotonic(), 0)
                late = f"OCR of {scan.filename} ran past the job's deadline ({job_timeout:g} s); nothing was changed"
            outcome, value = _next_message(reader, allowed, stop, late)
            if outcome == "ocr":  # the models load before the first page
                pages, started, allowed = value, True, OCR_START_S + OCR_SECONDS_PER_PAGE
            elif outcome == "page":
                done = value
                on_page(done, pages)
                allowed = OCR_SECONDS_PER_PAGE if done < pages else timeout
            elif outcome == "error":
                raise value
            else:
                return value
    except EOFError:  # the reader died: out of memory, or killed
        raise InvalidInputError(
            f"{scan.filename} could not be read by OCR (the reader ran out of memory or crashed)"
        ) from None
    finally:
        reader.end()


def _lateness(scan: PendingScan, started: bool, done: int, pages: int, allowed: float) -> str:
    """What a reader killed now failed at, for the job's error."""
    if started and done < pages:
        return f"OCR of {scan.filename} stopped at page {done + 1} of {pages}: it took longer than {allowed:g} s"
    return f"{scan.filename} could not be read within {allowed:g} s"


def _next_message(reader, allowed: float, stop: threading.Event, late: str) -> tuple[str, object]:
    deadline = time.monotonic() + allowed
    while not reader.receiver.poll(max(min(STOP_CHECK_S, deadline - time.monotonic()), 0)):
        if stop.is_set():
            raise ScanReadingStoppedError("the knowledge base was unloaded while its scan was read; upload it again")
        if time.monotonic() >= deadline:
            raise ParseTimeoutError(late)
    return reader.receiver.recv()
