"""Reading uploads: capped in number, killed at the request's deadline, never in the threads /api/health needs;
spreadsheets read as stored, not as their <dimension> claims; text cleaned once, in the reading process."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import threading
import time
import zipfile

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from openpyxl import Workbook

from index.ingest import passages
from index.ingest.passages import clean_document
from index.ingest.readers import FileTooLargeError, read_bytes
from service.api.app import create_app
from service.settings import Settings
from service.uploads import prepare_upload
from tests.conftest import serve_seed_copy, stop_server
from tests.test_kb import NEW_DOC, large_document

TOKEN = "parse-limits-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPLOAD_DEADLINE_S = 2.0
# Cleaning this takes about 0.7 s a MB here: far past the deadline, so only the deadline ends its reading.
SLOW_TEXT = large_document(16_000).encode()


# -- spreadsheets -----------------------------------------------------------------------------------------------


def _xlsx(rows: int, *, dimension: str | None = None, far_cell: str | None = None) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.append(["乡镇", "2035年核定编制"])
    for i in range(rows):
        sheet.append([f"第{i}镇", i])
    if far_cell:
        sheet[far_cell] = "备注"
    buffer = io.BytesIO()
    book.save(buffer)
    if dimension is None:
        return buffer.getvalue()
    # openpyxl writes the dimension its cells span; a crafted file claims another.
    return _with_sheet(buffer.getvalue(), rb'<dimension ref="[^"]*"', f'<dimension ref="{dimension}"'.encode())


def _with_sheet(book: bytes, pattern: bytes, replacement: bytes) -> bytes:
    """The workbook with its first sheet's XML rewritten, as a crafted file would be."""
    source, crafted = zipfile.ZipFile(io.BytesIO(book)), io.BytesIO()
    with zipfile.ZipFile(crafted, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(pattern, replacement, data)
            target.writestr(item, data)
    return crafted.getvalue()


@pytest.mark.parametrize(
    "data",
    [_xlsx(1000, dimension="A1:XFD20000"), _xlsx(2, far_cell="XFD20000")],
    ids=["claimed-dimension", "far-cell"],
)
def test_a_sheet_is_read_as_stored_not_as_wide_as_it_claims(data):
    assert len(data) < 20_000
    started = time.perf_counter()
    read = read_bytes(data, "编制.xlsx")
    elapsed = time.perf_counter() - started
    assert elapsed < 0.5, f"{elapsed:.1f} s"  # 1.8 s and 17 s before: every row padded to 16,384 cells
    assert read.text.split("\n")[1] == "乡镇：第0镇；2035年核定编制：0。"


def test_a_sheet_of_far_flung_cells_is_refused_by_its_cell_count():
    rows = "".join(f'<row r="{i}"><c r="XFD{i}"><v>{i}</v></c></row>' for i in range(1, 20_001))
    book = _xlsx(0, dimension="A1:XFD20000")
    crafted = _with_sheet(book, rb"<sheetData>.*</sheetData>", f"<sheetData>{rows}</sheetData>".encode())
    started = time.perf_counter()
    with pytest.raises(FileTooLargeError, match="cells"):
        read_bytes(crafted, "宽表.xlsx")
    assert time.perf_counter() - started < 1.0


# -- the parse slots and the deadline, over a real server -------------------------------------------------------


@pytest.fixture(scope="module")
def one_reader(seed_data_dir, tmp_path_factory):
    """One parse slot, uploads cut at UPLOAD_DEADLINE_S; the fork server started by a first, small upload."""
    env = {
        "POLICYQA_ADMIN_TOKEN": TOKEN,
        "POLICYQA_MAX_PARSES": "1",
        "POLICYQA_UPLOAD_TIMEOUT_S": str(UPLOAD_DEADLINE_S),
    }
    process, url = serve_seed_copy(seed_data_dir, tmp_path_factory.mktemp("parse-limits-data"), env)
    with httpx.Client(base_url=url, timeout=30) as http:
        warm = http.post("/api/documents", files={"files": ("blank.txt", b" \n")}, headers=AUTH)
        assert warm.status_code == 422, warm.text  # holds no text: read, and refused
    yield {"url": url, "process": process}
    output = stop_server(process)
    assert "Traceback" not in output, output


def _readers(server: subprocess.Popen) -> list[psutil.Process]:
    """The server's upload readers: the fork server's children."""
    try:
        children = psutil.Process(server.pid).children()
    except psutil.NoSuchProcess:
        return []
    servers = [c for c in children if "forkserver" in " ".join(c.cmdline())]
    return [reader for fork_server in servers for reader in fork_server.children()]


def _slow_upload(url: str, outcome: dict) -> None:
    with httpx.Client(base_url=url, timeout=60) as http:
        outcome["response"] = http.post("/api/documents", files={"files": ("slow.txt", SLOW_TEXT)}, headers=AUTH)


def _until(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_second_upload_is_refused_while_the_one_reader_is_busy_and_health_still_answers(one_reader):
    outcome: dict = {}
    slow = threading.Thread(target=_slow_upload, args=(one_reader["url"], outcome))
    # Told apart by pid, not by start time: psutil derives a process's start from the boot time, which the
    # kernel gives in whole seconds, so it can read up to a second early.
    earlier = {reader.pid for reader in _readers(one_reader["process"])}
    slow.start()

    def slow_is_read() -> bool:  # by a reader of its own: an earlier upload's may still be exiting
        return any(reader.pid not in earlier for reader in _readers(one_reader["process"]))

    try:
        assert _until(slow_is_read, 10), "the slow upload never started reading"
        with httpx.Client(base_url=one_reader["url"], timeout=10) as http:
            second = http.post("/api/documents", files={"files": ("notice.txt", NEW_DOC.encode())}, headers=AUTH)
            assert second.status_code == 503, second.text
            assert set(second.json()) == {"error"} and "busy" in second.json()["error"]["message"]
            assert int(second.headers["retry-after"]) >= 1
            slowest = 0.0
            while slow.is_alive():
                started = time.perf_counter()
                assert http.get("/api/health").status_code == 200
                slowest = max(slowest, time.perf_counter() - started)
                time.sleep(0.1)
        assert slowest < 1.0, f"/api/health took {slowest:.2f} s while a file was read"
    finally:
        slow.join()
    assert outcome["response"].status_code == 503  # the slow file ran past the upload deadline


def test_a_file_still_read_at_the_request_deadline_is_killed_then(one_reader):
    outcome: dict = {}
    slow = threading.Thread(target=_slow_upload, args=(one_reader["url"], outcome))
    slow.start()
    assert _until(lambda: _readers(one_reader["process"]), 10), "the slow upload never started reading"
    slow.join()
    answered = time.monotonic()
    response = outcome["response"]
    assert response.status_code == 503 and response.json()["error"]["code"] == "timeout", response.text
    assert _until(lambda: not _readers(one_reader["process"]), 1.0), "the reader outlived its request"
    assert time.monotonic() - answered < 1.5
    with httpx.Client(base_url=one_reader["url"], timeout=30) as http:  # and its slot is free again
        again = http.post("/api/documents", files={"files": ("blank.txt", b" \n")}, headers=AUTH)
        assert again.status_code == 422, again.text


def test_a_file_whose_client_left_is_no_longer_read(one_reader):
    try:
        with httpx.Client(base_url=one_reader["url"], timeout=httpx.Timeout(30, read=0.3)) as http:
            http.post("/api/documents", files={"files": ("slow.txt", SLOW_TEXT)}, headers=AUTH)
    except httpx.ReadTimeout:
        pass  # the client gave up and closed its connection
    # Its reader is killed at the next look (every 0.5 s), well before the request's deadline would kill it.
    time.sleep(1.2)
    assert not _readers(one_reader["process"]), "the reader outlived its client"


# -- cleaning once ----------------------------------------------------------------------------------------------


def test_an_uploaded_document_is_cleaned_in_its_reading_process_only(seed_data_dir, tmp_path, monkeypatch):
    def cleaning_in_the_server(text: str) -> str:
        raise AssertionError("the server cleaned an upload the reading process had cleaned")

    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    settings = Settings(data_dir=data_dir, build_on_start=False, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        # Set after the start: the reader is a process of its own, and this process must not clean the upload.
        monkeypatch.setattr(passages, "clean_text", cleaning_in_the_server)
        response = client.post("/api/documents", files={"files": ("emergency.txt", NEW_DOC.encode())}, headers=AUTH)
        assert response.status_code == 202, response.text
        (job,) = response.json()["jobs"]
        deadline = time.monotonic() + 120
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.2)
            job = client.get(f"/api/jobs/{job['id']}", headers=AUTH).json()
        assert job["state"] == "done", job
        document = client.get(f"/api/documents/{job['doc_id']}").json()
        assert "核定编制7名" in document["text"]


def test_the_cleaned_text_an_upload_carries_is_what_cleaning_gives():
    from tests.test_formats import _pptx  # slides: a paged document, each page cleaned apart

    upload = prepare_upload(_pptx(), "汇报.pptx", None)
    text, spans = upload.document.cleaned
    assert len(spans) == 2 and clean_document(upload.document) == (text, list(spans))
    assert clean_document(dataclasses.replace(upload.document, cleaned=None)) == (text, list(spans))
