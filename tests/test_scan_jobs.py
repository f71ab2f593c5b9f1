"""A scan is checked in the upload request and read by OCR in its job (issue 28, item 4): the request answers
before the OCR, the job reports each page and then cites the text; a scan whose OCR fails (a killed reader, a
page past its deadline) fails its job, indexes nothing and leaves the server healthy; text uploads are as before."""

from __future__ import annotations

import os
import re
import shutil
import signal
import time

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient

from eval.scans import Scan, layout, render_page, scanned_pdf
from service import scan_reading
from service.api.app import create_app
from service.settings import Settings
from tests.conftest import serve_seed_copy, stop_server
from tests.test_kb import NEW_DOC

TOKEN = "scan-jobs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOTICE = (
    "关于设立乡镇应急管理办公室的通知\n"
    "各乡镇设立应急管理办公室，核定编制7名。县财政每年安排专项经费135万元，用于乡镇应急物资储备和救援队伍培训。"
)
FILLER = "乡镇便民服务中心实行一窗受理、集成服务，工作日全天开放，节假日安排专人值守。"


def scan(pages: int) -> bytes:
    """A scanned notice: its first page holds the fact asked about, the others filler."""
    texts = [NOTICE, *(f"第{n}页\n{FILLER}" for n in range(2, pages + 1))]
    return scanned_pdf([render_page(layout(text)[0], Scan(dpi=150, seed=n)) for n, text in enumerate(texts)], 150)


@pytest.fixture(scope="module")
def server(seed_data_dir, tmp_path_factory):
    process, url = serve_seed_copy(seed_data_dir, tmp_path_factory.mktemp("scan-jobs"), {"POLICYQA_ADMIN_TOKEN": TOKEN})
    with httpx.Client(base_url=url, timeout=60) as http:
        yield http, process
    log = stop_server(process)
    assert "Traceback" not in log, log


def _watch(http: httpx.Client, job_id: str, timeout: float = 300.0) -> tuple[dict, list[str]]:
    """The job once finished, and the messages it showed on the way."""
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        job = http.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if not seen or seen[-1] != job["message"]:
            seen.append(job["message"])
        if job["state"] in ("done", "failed"):
            return job, seen
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish: {seen[-3:]}")


def _readers(pid: int) -> list[psutil.Process]:
    """The reading processes of the server with this pid: its fork server's children."""
    forkservers = [c for c in psutil.Process(pid).children() if "forkserver" in " ".join(c.cmdline())]
    return [reader for fork_server in forkservers for reader in fork_server.children()]


def _count(http: httpx.Client) -> int:
    return http.get("/api/documents").json()["count"]


def test_a_scan_is_answered_before_its_ocr_and_its_job_reads_reports_and_cites_it(server):
    http, _ = server
    before = _count(http)
    started = time.monotonic()
    response = http.post("/api/documents", headers=AUTH, files={"files": ("应急办通知.pdf", scan(4))})
    answered_s = time.monotonic() - started
    assert response.status_code == 202, response.text
    (job,) = response.json()["jobs"]
    assert job["state"] in ("queued", "running") and job["read_summary"] == "", job
    assert job["message"] == "OCR of 4 pages queued", job

    job, seen = _watch(http, job["id"])
    read_s = time.monotonic() - started
    assert job["state"] == "done", job
    assert job["read_summary"].startswith("OCR: 4 pages") and job["message"].startswith("OCR: 4 pages"), job
    assert any(message.startswith("OCR page ") and message.endswith("/4") for message in seen), seen
    assert answered_s < read_s / 2, (answered_s, read_s)  # the request did not wait for the pages
    assert _count(http) == before + 1
    answer = http.post("/api/ask", json={"question": "乡镇应急管理的专项经费每年安排多少？"}).json()
    assert answer["answerable"] and "135万元" in answer["answer"], answer
    cited = answer["citations"][0]
    assert cited["doc_id"] == job["doc_id"] and cited["pages"][0] == 1 and 0.9 < cited["ocr_confidence"] <= 1.0


def test_a_scan_whose_reader_is_killed_fails_its_job_and_indexes_nothing(server):
    http, process = server
    before = _count(http)
    response = http.post("/api/documents", headers=AUTH, files={"files": ("长扫描件.pdf", scan(8))})
    assert response.status_code == 202, response.text
    job_id = response.json()["jobs"][0]["id"]
    deadline = time.monotonic() + 120
    while not http.get(f"/api/jobs/{job_id}", headers=AUTH).json()["message"].startswith("OCR page"):
        assert time.monotonic() < deadline, "the job never started reading its pages"
        time.sleep(0.1)
    readers = _readers(process.pid)
    assert readers, "no reading process"
    for reader in readers:  # the job's, the one reading pages now
        reader.send_signal(signal.SIGKILL)  # as the kernel's OOM killer would

    job, _ = _watch(http, job_id)
    assert job["state"] == "failed" and "could not be read by OCR" in job["error"], job
    assert _count(http) == before
    assert not _readers(process.pid), "a reader outlived its job"
    assert http.get("/api/health").status_code == 200
    text = http.post("/api/documents", headers=AUTH, files={"files": ("notice.txt", NEW_DOC.encode())})
    assert text.status_code == 202 and _watch(http, text.json()["jobs"][0]["id"])[0]["state"] == "done"


def test_a_text_upload_is_still_read_in_its_request(server):
    http, _ = server
    broken = http.post("/api/documents", headers=AUTH, files={"files": ("scan.png", b"\x89PNG\r\n\x1a\n junk")})
    assert broken.status_code == 422 and "not a readable image" in broken.json()["error"]["message"]
    empty = http.post("/api/documents", headers=AUTH, files={"files": ("blank.txt", b" \n")})
    assert empty.status_code == 422, empty.text
    response = http.post(
        "/api/documents", headers=AUTH, files={"files": ("通知.txt", f"{NOTICE}\n另行通知。".encode())}
    )
    assert response.status_code == 202, response.text
    (job,) = response.json()["jobs"]
    assert not job["message"].startswith("OCR"), job
    assert _watch(http, job["id"])[0]["state"] == "done"


def test_a_page_past_its_deadline_kills_the_reader_and_fails_the_job(seed_data_dir, tmp_path, monkeypatch):
    # The job's thread, in this process, keeps the deadline: after the first page, a page gets far less than it
    # needs (with two pages read at once, the second may come in time; the third cannot).
    monkeypatch.setattr(scan_reading, "OCR_SECONDS_PER_PAGE", 0.05)
    monkeypatch.setattr(scan_reading, "OCR_START_S", 60.0)
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    settings = Settings(data_dir=data_dir, build_on_start=False, admin_token=TOKEN)
    with TestClient(create_app(settings)) as client:
        before = client.get("/api/documents").json()["count"]
        response = client.post("/api/documents", headers=AUTH, files={"files": ("慢扫描件.pdf", scan(3))})
        assert response.status_code == 202, response.text
        job, _ = _watch(client, response.json()["jobs"][0]["id"], timeout=120)
        assert job["state"] == "failed", job
        assert re.fullmatch(r"OCR of 慢扫描件.pdf stopped at page [23] of 3: it took longer than 0.05 s", job["error"])
        assert client.get("/api/documents").json()["count"] == before
        assert client.get("/api/health").status_code == 200
        assert not _readers(os.getpid()), "the reader outlived its deadline"
