"""A knowledge base in use is never unloaded under a request, and a write key's allowance is its own knowledge bases'.

With one knowledge base loaded at a time, reading another used to evict the one an upload was being read for:
its writer closed, the accepted upload was queued behind the worker's end and never ran, and the job's record
went with the writer (issue 27, items 2 and 7).
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from eval.scans import Scan, image_bytes, layout, render_page
from tests.conftest import DOCS_RAW, serve_seed_copy, stop_server

TOKEN = "lease-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def one_loaded(seed_data_dir, tmp_path_factory):
    """At most one knowledge base besides the default loaded; 4 KB bodies outside the upload allowance."""
    env = {"POLICYQA_ADMIN_TOKEN": TOKEN, "POLICYQA_MAX_LOADED_KBS": "1", "POLICYQA_MAX_BODY_KB": "4"}
    process, url = serve_seed_copy(seed_data_dir, tmp_path_factory.mktemp("lease-data"), env)
    with httpx.Client(base_url=url, timeout=120) as http:
        for kb in ("kba", "kbb", "other"):
            made = http.post("/api/kbs", headers=AUTH, json={"kb_id": kb, "title": kb, "public": False})
            assert made.status_code == 201, made.text
        yield http
    log = stop_server(process)
    assert "Traceback" not in log, log


def finished(http: httpx.Client, path: str, timeout: float = 180.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = http.get(path, headers=AUTH)
        if response.status_code != 200 or response.json()["state"] in ("done", "failed"):
            return response
        assert time.monotonic() < deadline, f"{path} still {response.json()['state']} after {timeout} s"
        time.sleep(0.3)


def test_an_upload_survives_the_eviction_of_its_knowledge_base_and_so_does_its_job(one_loaded):
    http = one_loaded
    text = (DOCS_RAW / "haian-central-town-reform.txt").read_text(encoding="utf-8")
    scan = image_bytes(render_page(layout(text)[0][:5], Scan(dpi=150)), dpi=150)  # read by OCR: a second or more
    uploaded: dict[str, httpx.Response] = {}

    def upload() -> None:
        files = {"files": ("scan.png", scan, "image/png")}
        uploaded["response"] = http.post("/api/kbs/kba/documents", files=files, headers=AUTH)

    reader = threading.Thread(target=upload)
    reader.start()
    time.sleep(0.5)  # the scan is being read: kba is loaded, its job not yet queued
    assert http.get("/api/kbs/kbb/documents", headers=AUTH).status_code == 200  # loads kbb: one too many
    reader.join()
    assert uploaded["response"].status_code == 202, uploaded["response"].text
    job_id = uploaded["response"].json()["jobs"][0]["id"]

    job = finished(http, f"/api/kbs/kba/jobs/{job_id}")
    assert job.status_code == 200 and job.json()["state"] == "done", job.text
    doc_id = job.json()["doc_id"]
    assert http.get("/api/kbs/kbb/documents", headers=AUTH).status_code == 200  # kba, now idle, is evicted
    again = http.get(f"/api/kbs/kba/jobs/{job_id}", headers=AUTH)
    assert again.status_code == 200 and again.json()["state"] == "done", again.text
    listed = http.get("/api/kbs/kba/documents", headers=AUTH).json()["data"]
    assert doc_id in {d["doc_id"] for d in listed}


def test_a_write_key_gets_the_upload_allowance_only_on_its_own_knowledge_bases(one_loaded):
    """Any write key once got the allowance everywhere: a 200 MB form was spooled whole before the 403."""
    http = one_loaded
    made = http.post("/api/keys", headers=AUTH, json={"kbs": ["kbb"], "scope": "write"})
    assert made.status_code == 201, made.text
    key = {"Authorization": f"Bearer {made.json()['key']}"}
    content = ("乡镇街道便民服务事项。" * 400).encode()  # 12 KB: over the 4 KB body limit
    for path in ("/api/kbs/other/documents", "/api/documents"):
        refused = http.post(path, files={"files": ("a.txt", content)}, headers=key)
        assert refused.status_code == 413, refused.text
        assert refused.json()["error"]["code"] == "payload_too_large"
    own = http.post("/api/kbs/kbb/documents", files={"files": ("a.txt", content)}, headers=key)
    assert own.status_code == 202, own.text
    assert finished(http, f"/api/kbs/kbb/jobs/{own.json()['jobs'][0]['id']}").json()["state"] == "done"
