"""Uploaded files read and checked before any job is queued: bad input is a 4xx and changes nothing.

A file is read in a process of its own (``prepare_upload_isolated``), killed after a deadline and capped in
memory, so a crafted file cannot stall or exhaust the server. The server awaits that process on its event
loop, holding no thread, and kills it as soon as the request is cancelled (its deadline passed, or its client
left). ``ParseSlots`` caps how many are read at once. The reading process also cleans the text, once: the job
that indexes it then uses that cleaned text (``SourceDocument.cleaned``) instead of cleaning it again.

A scan is only checked here: the file opens, its pages are counted and within the limits, and the reading
stops where OCR would start. The request answers with a ``PendingScan``, and the job reads it by OCR in a
process of the same kind (``service/scan_reading.py``), so the request's deadline does not bound a scan's pages.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import multiprocessing.process
import os
import resource
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import PurePosixPath, PureWindowsPath

from index.errors import InvalidInputError, PolicyQAError
from index.ingest.documents import SourceDocument, doc_id_for
from index.ingest.metadata import extract_metadata
from index.ingest.passages import clean_document, content_hash
from index.ingest.readers import read_bytes

logger = logging.getLogger(__name__)

MAX_FILENAME_CHARS = 255
# Address space a file's reader may add to what it starts with: a zip bomb fails there, not in the server.
PARSE_MEMORY_BYTES = 2 * 1024**3


class ParseTimeoutError(InvalidInputError):
    code = "parse_timeout"


class ParseSlotsBusyError(PolicyQAError):
    code = "unavailable"  # what the API answers it with: a 503 with Retry-After


@dataclass(frozen=True)
class Upload:
    document: SourceDocument
    content_hash: str
    summary: str = ""  # what reading did ("OCR: 12 pages, mean confidence 0.97"), shown with the job
    metadata: dict | None = None  # what was read of it as a policy (issuer, 文号, dates…), shown in the reply


@dataclass(frozen=True)
class PendingScan:
    """A file checked in the request that needs OCR: its job reads it (``service/scan_reading.py``)."""

    data: bytes
    filename: str
    title: str | None
    doc_id: str  # the id it will have, unless its content turns out to be known or its name taken
    pages: int  # how many pages OCR will read

    def __repr__(self) -> str:  # not the file's bytes, in a log or a traceback
        return f"PendingScan({self.filename!r}, pages={self.pages})"


class _ScanFound(Exception):
    """Raised where OCR would start, in the request's check: the job reads the pages. Never leaves the reader."""

    def __init__(self, pages: int) -> None:
        super().__init__(pages)
        self.pages = pages


def checked_filename(filename: str | None) -> str:
    """The bare file name; names carrying a path are refused, never used as paths."""
    name = (filename or "").strip()
    if not name or name in (".", ".."):
        raise InvalidInputError("the upload has no file name")
    if len(name) > MAX_FILENAME_CHARS:
        raise InvalidInputError(f"file name longer than {MAX_FILENAME_CHARS} characters")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in name):
        raise InvalidInputError(f"file name {name!r} must not contain control characters")
    if PurePosixPath(name).name != name or PureWindowsPath(name).name != name:
        raise InvalidInputError(f"file name {name!r} must not contain path components")
    return name


def prepare_upload(
    data: bytes, filename: str | None, title: str | None, doc_id: str | None = None, *, on_ocr_start=None
) -> Upload:
    """Read and clean an uploaded file; raises InvalidInputError for anything that cannot be indexed."""
    name = checked_filename(filename)
    read = read_bytes(data, name, on_ocr_start=on_ocr_start)
    document = SourceDocument(
        doc_id=doc_id or doc_id_for(name),
        title=(title or "").strip() or read.title or PurePosixPath(name).stem,
        source=name,
        raw_text=read.text,
        pages=tuple(read.pages),
        origin="upload",
        page_confidence=read.page_confidence,
    )
    text, page_spans = clean_document(document)
    if not text.strip():
        raise InvalidInputError(f"{name} holds no text to index")
    document = dataclasses.replace(document, cleaned=(text, tuple(page_spans)))
    found = extract_metadata(text, title=document.title).to_dict()
    return Upload(document, content_hash(text), read.summary, found)


class ParseSlots:
    """How many uploaded files are read at once, at most. Each reader is a process busy on a CPU and allowed
    2 GB: more than the machine's CPUs only makes them all slower. Used on the event loop only (no lock)."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self.busy = 0

    @contextlib.contextmanager
    def taken(self) -> Iterator[None]:
        """A slot while the block runs; none free is a ``ParseSlotsBusyError`` at once, not a place in a queue."""
        if self.busy >= self.slots:
            raise ParseSlotsBusyError(f"all {self.slots} upload readers are busy; retry in a few seconds")
        self.busy += 1
        try:
            yield
        finally:
            self.busy -= 1


async def prepare_upload_isolated(
    data: bytes, filename: str | None, title: str | None, doc_id: str | None = None, *, timeout: float
) -> Upload | PendingScan:
    """``prepare_upload`` in a process of its own, killed after ``timeout`` seconds or when this is cancelled;
    a file that needs OCR is checked but not read: a ``PendingScan`` for its job.

    A reader stuck on a crafted file (a PDF that loops, a zip bomb) cannot be
    stopped inside the server; a process can be killed, and its memory is
    capped. It is awaited on the event loop: no thread waits for it, so slow
    files cannot take the threads plain routes (``/api/health``) answer in.
    """
    name = checked_filename(filename)
    reader = start_reader(data, name, title, doc_id, read_scans=False)
    starting = asyncio.ensure_future(asyncio.to_thread(reader.process.start))
    try:
        await asyncio.shield(starting)
        reader.sender.close()
        try:
            await asyncio.wait_for(_readable(reader.receiver.fileno()), timeout)
        except TimeoutError:
            raise ParseTimeoutError(f"{name} could not be read within {timeout:g} s") from None
        outcome, value = reader.receiver.recv()  # sent whole by the child as soon as the first byte came
    except EOFError:  # the reader died: out of memory, or killed
        raise InvalidInputError(f"{name} could not be read (the reader ran out of memory or crashed)") from None
    finally:
        # Done, past the deadline, or cancelled (the request's deadline, its client gone): the reader dies now,
        # or, if cancelled while it was being started, as soon as it has started.
        if starting.done():
            _discard(starting, reader)
        else:
            starting.add_done_callback(lambda _: _discard(starting, reader))
    if outcome == "error":
        raise value
    if outcome == "scan":
        return PendingScan(data, name, title, doc_id or doc_id_for(name), value)
    return value


@dataclass(frozen=True)
class Reader:
    """A reading process, not yet started, and its end of the pipe it answers on."""

    process: multiprocessing.process.BaseProcess
    receiver: multiprocessing.connection.Connection
    sender: multiprocessing.connection.Connection
    scratch: str  # its temporary files, removed once it is dead

    def end(self) -> None:
        """Kill it if it runs, wait for it, and remove what it left (for a caller that may block)."""
        self.sender.close()
        self.receiver.close()
        if self.process.is_alive():
            self.process.kill()
        with contextlib.suppress(ValueError, AssertionError):  # never started
            self.process.join()
            self.process.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def start_reader(data: bytes, name: str, title: str | None, doc_id: str | None, *, read_scans: bool) -> Reader:
    """A reading process for the file; with ``read_scans`` it reads pages by OCR, telling each on the pipe
    (``("ocr", pages)``, then ``("page", n)``), else it stops where OCR would start (``("scan", pages)``).
    Started by the caller (``process.start()`` blocks: the event loop starts it in a thread)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["service.uploads"])  # imported once, in the fork server
    receiver, sender = context.Pipe(duplex=False)
    # The reader's temporary files (LibreOffice's profile and output, ...) go here, removed once it is dead:
    # a reader killed at its deadline cannot clean up after itself.
    scratch = tempfile.mkdtemp(prefix="policyqa-read-")
    args = (sender, data, name, title, doc_id, scratch, read_scans)
    process = context.Process(target=_prepare_in_child, args=args, daemon=True)
    return Reader(process, receiver, sender, scratch)


async def _readable(fd: int) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)
        os.set_blocking(fd, True)  # uvloop's watch made it non-blocking; the reads that follow wait for the rest


def _discard(starting: asyncio.Future, reader: Reader) -> None:
    """Kill the reader if it still runs; once the fork server reports it dead, collect it and its files."""
    reader.sender.close()
    reader.receiver.close()
    process = reader.process
    if starting.cancelled() or starting.exception() is not None:
        shutil.rmtree(reader.scratch, ignore_errors=True)
        return
    if process.exitcode is None:
        process.kill()
    loop = asyncio.get_running_loop()
    sentinel = process.sentinel

    def reap() -> None:
        loop.remove_reader(sentinel)
        process.join()
        process.close()
        shutil.rmtree(reader.scratch, ignore_errors=True)

    loop.add_reader(sentinel, reap)


def _prepare_in_child(
    sender, data: bytes, filename: str, title: str | None, doc_id: str | None, scratch: str, read_scans: bool
) -> None:
    tempfile.tempdir = scratch
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = _address_space() + PARSE_MEMORY_BYTES
    if hard == resource.RLIM_INFINITY or limit < hard:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    on_ocr_start = partial(_reporting_pages, sender) if read_scans else _stopping_at_ocr
    try:
        upload = prepare_upload(data, filename, title, doc_id, on_ocr_start=on_ocr_start)
        result: tuple[str, object] = ("ok", upload)
    except _ScanFound as found:
        result = ("scan", found.pages)
    except PolicyQAError as exc:
        result = ("error", exc)
    except MemoryError:
        result = ("error", InvalidInputError(f"{filename} needs more memory to read than an upload may use"))
    except Exception as exc:  # a reader's own bug: a clean 422, and the log says what
        logger.exception("reading %r failed", filename)
        result = ("error", InvalidInputError(f"{filename} could not be read ({type(exc).__name__})"))
    sender.send(result)
    sender.close()


def _stopping_at_ocr(pages: int) -> None:
    raise _ScanFound(pages)


def _reporting_pages(sender, pages: int):
    sender.send(("ocr", pages))
    return lambda number: sender.send(("page", number))


def _address_space() -> int:
    """This process's virtual memory size in bytes (Linux), or 0 when unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0
