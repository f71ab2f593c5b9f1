"""Live knowledge-base changes against a real server: add, replace, delete, bad input, crashes."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time

import httpx
import pytest

from index.ingest.chunk import chunk_text, section_spans
from index.ingest.documents import SourceDocument
from index.ingest.passages import clean_document
from index.ingest.readers import read_bytes
from tests.conftest import REPO, start_server, stop_server

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NEW_DOC = (
    "关于设立乡镇应急管理办公室的通知\n"
    "一、总体要求\n"
    "各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱、森林防火和安全生产的统筹协调。\n"
    "二、保障措施\n"
    "县财政每年安排专项经费120万元，用于乡镇应急物资储备和队伍培训。\n"
)


def seed_sentences() -> list[str]:
    text = "".join(
        (REPO / "docs_raw" / n).read_text(encoding="utf-8")
        for n in sorted(os.listdir(REPO / "docs_raw"))
        if n.endswith(".txt")
    )
    return [s + "。" for s in text.replace("\n", "").split("。") if len(s) > 20]


def large_document(paragraphs: int) -> str:
    sentences = seed_sentences()
    lines = ["大型汇编文件：乡镇街道改革材料选编"]
    for i in range(paragraphs):
        lines.append(f"{i + 1}、第{i + 1}部分。" + "".join(sentences[(i * 3 + k) % len(sentences)] for k in range(3)))
    return "\n".join(lines)


@pytest.fixture(scope="module")
def admin_server(seed_data_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kb-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {
        "POLICYQA_DATA_DIR": str(data_dir),
        "POLICYQA_BUILD_ON_START": "false",
        "POLICYQA_ADMIN_TOKEN": TOKEN,
        "POLICYQA_MAX_UPLOAD_MB": "0.2",
    }
    process, url = start_server(env)
    handle = {"process": process, "url": url, "env": env, "data_dir": data_dir}
    yield handle
    stop_server(handle["process"])


def restart(handle) -> None:
    stop_server(handle["process"])
    handle["process"], handle["url"] = start_server(handle["env"])


def kill_and_restart(handle) -> None:
    handle["process"].send_signal(signal.SIGKILL)
    handle["process"].wait()
    handle["process"], handle["url"] = start_server(handle["env"])


def http(handle) -> httpx.Client:
    return httpx.Client(base_url=handle["url"], timeout=60.0)


def wait_for(client: httpx.Client, job_id: str, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def upload(client: httpx.Client, name: str, content: bytes, **form) -> httpx.Response:
    return client.post("/api/documents", headers=AUTH, files={"files": (name, content)}, data=form)


def doc_count(client: httpx.Client) -> int:
    return client.get("/api/documents").json()["count"]


def cited_doc_ids(client: httpx.Client, question: str) -> set[str]:
    body = client.post("/api/search", json={"query": question, "top_k": 20}).json()
    return {r["doc_id"] for r in body["results"]}


def test_admin_endpoints_are_disabled_without_a_configured_token(client):
    response = client.post("/api/documents", files={"files": ("a.txt", "乡镇".encode())})
    assert response.status_code == 403 and response.json()["error"]["code"] == "forbidden"
    assert client.delete("/api/documents/haian-central-town-reform").status_code == 403


def test_missing_or_wrong_token_is_refused(admin_server):
    with http(admin_server) as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
            response = client.post("/api/documents", headers=headers, files={"files": ("a.txt", "乡镇".encode())})
            assert response.status_code == 401, headers
            assert response.json()["error"]["code"] == "unauthorized"
        assert client.delete("/api/documents/haian-central-town-reform").status_code == 401


def test_add_embeds_only_the_new_document_and_answers_from_it(admin_server):
    with http(admin_server) as client:
        before = doc_count(client)
        response = upload(client, "emergency-office.txt", NEW_DOC.encode("gb18030"))
        assert response.status_code == 202, response.text
        job = wait_for(client, response.json()["jobs"][0]["id"])
        assert job["state"] == "done", job
        text, _ = clean_document(SourceDocument("x", "t", "s", read_bytes(NEW_DOC.encode("gb18030"), "a.txt").text))
        assert job["embedded_passages"] == len(chunk_text(text)) + len(section_spans(text))
        assert doc_count(client) == before + 1
        answer = client.post("/api/ask", json={"question": "乡镇应急管理办公室核定编制多少名？"}).json()
        assert answer["answerable"] and "7名" in answer["answer"]
        assert answer["citations"][0]["doc_id"] == job["doc_id"] == "emergency-office"

        duplicate = upload(client, "copy-of-the-same.txt", NEW_DOC.encode("gb18030")).json()["jobs"][0]
        assert duplicate["duplicate"] and duplicate["doc_id"] == "emergency-office" and duplicate["state"] == "done"
        assert doc_count(client) == before + 1


def test_replace_and_delete_are_complete_and_survive_a_restart(admin_server):
    with http(admin_server) as client:
        job = wait_for(
            client, upload(client, "funds.txt", "乡镇专项经费为每年八十万元整。".encode()).json()["jobs"][0]["id"]
        )
        doc_id = job["doc_id"]
        replaced = client.put(
            f"/api/documents/{doc_id}",
            headers=AUTH,
            files={"file": ("funds.txt", "街道社区服务经费每年九十六万元。".encode())},
        )
        assert replaced.status_code == 202
        assert wait_for(client, replaced.json()["id"])["state"] == "done"
        document = client.get(f"/api/documents/{doc_id}").json()
        assert "九十六万元" in document["text"] and "八十万元" not in document["text"]

        deleted = client.delete(f"/api/documents/{doc_id}", headers=AUTH)
        assert deleted.status_code == 200 and deleted.json()["deleted"]
        assert client.get(f"/api/documents/{doc_id}").status_code == 404
        for question in ("街道社区服务经费每年多少", "九十六万元", "乡镇专项经费"):
            assert doc_id not in cited_doc_ids(client, question)
    restart(admin_server)
    with http(admin_server) as client:
        assert client.get(f"/api/documents/{doc_id}").status_code == 404
        assert doc_id not in cited_doc_ids(client, "街道社区服务经费每年九十六万元")
        assert client.get("/api/documents/emergency-office").status_code == 200  # added earlier, kept


@pytest.mark.parametrize(
    ("name", "content", "status"),
    [
        ("tool.exe", b"MZ\x90\x00", 422),
        ("empty.txt", b"", 422),
        ("blank.txt", b"   \n  ", 422),
        ("broken.docx", b"PK\x03\x04 not really a zip", 422),
        ("broken.pdf", b"%PDF-1.4 garbage", 422),
        ("junk.txt", bytes(range(256)) * 8, 422),
        ("../../etc/passwd.txt", "乡镇".encode(), 422),
        ("dir\\evil.txt", "乡镇".encode(), 422),
        ("huge.txt", "乡镇街道".encode() * 20_000, 413),
    ],
)
def test_bad_uploads_are_refused_and_change_nothing(admin_server, name, content, status):
    with http(admin_server) as client:
        before = client.get("/api/health").json()
        response = upload(client, name, content)
        assert response.status_code == status, response.text
        assert set(response.json()) == {"error"} and "Traceback" not in response.text
        assert client.get("/api/health").json()["build_id"] == before["build_id"]


def test_unknown_ids_are_404(admin_server):
    with http(admin_server) as client:
        assert client.delete("/api/documents/no-such-doc", headers=AUTH).status_code == 404
        put = client.put("/api/documents/no-such-doc", headers=AUTH, files={"file": ("a.txt", "乡镇".encode())})
        assert put.status_code == 404
        assert client.get("/api/jobs/feedface", headers=AUTH).status_code == 404


def test_serving_continues_during_a_large_upload(admin_server):
    with http(admin_server) as client:
        job = upload(client, "large.txt", large_document(60).encode()).json()["jobs"][0]
        latencies, states = [], set()
        while (current := client.get(f"/api/jobs/{job['id']}", headers=AUTH).json())["state"] in ("queued", "running"):
            states.add(current["state"])
            started = time.perf_counter()
            response = client.post("/api/ask", json={"question": "镇江市共有多少个街道？"})
            latencies.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200 and response.json()["answerable"]
        assert current["state"] == "done" and "running" in states and len(latencies) >= 3
        print(
            f"\nask during ingestion: n={len(latencies)} median {sorted(latencies)[len(latencies) // 2]:.0f} ms,"
            f" max {max(latencies):.0f} ms; {current['embedded_passages']} passages embedded"
        )


def test_a_crash_mid_upload_leaves_the_last_complete_state_and_the_upload_can_be_retried(admin_server):
    with http(admin_server) as client:
        before = client.get("/api/health").json()
        job = upload(client, "crash.txt", large_document(90).encode()).json()["jobs"][0]
        deadline = time.monotonic() + 120
        while client.get(f"/api/jobs/{job['id']}", headers=AUTH).json()["progress"] <= 0.1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    kill_and_restart(admin_server)
    with http(admin_server) as client:
        after = client.get("/api/health").json()
        assert (after["build_id"], after["documents"], after["chunks"]) == (
            before["build_id"],
            before["documents"],
            before["chunks"],
        )
        retried = wait_for(client, upload(client, "crash.txt", large_document(90).encode()).json()["jobs"][0]["id"])
        assert retried["state"] == "done"
        assert client.get("/api/health").json()["documents"] == before["documents"] + 1
    index_dir = admin_server["data_dir"] / "index"
    leftovers = [
        p for p in index_dir.iterdir() if p.is_dir() and p.name != "segments" and not (p / "manifest.json").exists()
    ]
    leftovers += [p for p in (index_dir / "segments").iterdir() if not (p / "segment.json").exists()]
    assert leftovers == []


def test_a_crash_during_a_delete_leaves_it_whole_or_undone(admin_server):
    with http(admin_server) as client:
        assert client.get("/api/documents/crash").status_code == 200
        threading.Thread(
            target=lambda: httpx.delete(f"{admin_server['url']}/api/documents/crash", headers=AUTH, timeout=60),
            daemon=True,
        ).start()
        time.sleep(0.3)
    kill_and_restart(admin_server)
    with http(admin_server) as client:
        present = client.get("/api/documents/crash").status_code == 200
        assert present == ("crash" in cited_doc_ids(client, "大型汇编文件 乡镇街道改革材料选编")) or not present
        if present:
            assert client.delete("/api/documents/crash", headers=AUTH).json()["deleted"]
        assert client.get("/api/documents/crash").status_code == 404
        assert "crash" not in cited_doc_ids(client, "大型汇编文件 乡镇街道改革材料选编")


def test_cli_add_and_remove(seed_data_dir, tmp_path):
    import subprocess
    import sys

    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    env = {**os.environ, "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false"}
    document = tmp_path / "emergency.txt"
    document.write_text(NEW_DOC, encoding="utf-8")

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    added = cli("add", str(document))
    assert added.returncode == 0, added.stderr
    assert "added as emergency" in added.stdout
    assert "already indexed as emergency" in cli("add", str(document)).stdout
    asked = cli("ask", "乡镇应急管理办公室核定编制多少名？", "--json")
    assert '"answerable": true' in asked.stdout and "7名" in asked.stdout
    removed = cli("remove", "emergency")
    assert removed.returncode == 0 and "emergency: removed" in removed.stdout
    assert '"doc_id": "emergency"' not in cli("search", "应急管理办公室", "--json", "--top-k", "20").stdout


def test_a_pdf_upload_cites_its_page(admin_server):
    import io

    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pages = [
        "一、总体要求。各街道建立网格化服务管理制度。",
        "二、人员配备。每个网格配备专职网格员一名。",
        "三、经费保障。网格员补贴由区财政统一发放。",
    ]
    for line in pages:
        pdf.setFont("STSong-Light", 12)
        pdf.drawString(72, 720, line)
        pdf.showPage()
    pdf.save()
    with http(admin_server) as client:
        response = client.post("/api/documents", headers=AUTH, files={"files": ("grid.pdf", buffer.getvalue())})
        job = wait_for(client, response.json()["jobs"][0]["id"])
        assert job["state"] == "done", job
        body = client.post(
            "/api/ask", json={"question": "每个网格配备几名专职网格员？", "doc_ids": [job["doc_id"]]}
        ).json()
        first = body["citations"][0]
        assert "专职网格员一名" in first["text"] and first["pages"][0] <= 2 <= first["pages"][1]
        scanned = io.BytesIO()
        blank = canvas.Canvas(scanned)
        blank.rect(72, 72, 200, 200)
        blank.showPage()
        blank.save()
        # A page without text is a scan to its check in the request: its job reads it, finds nothing and fails.
        accepted = client.post("/api/documents", headers=AUTH, files={"files": ("scan.pdf", scanned.getvalue())})
        assert accepted.status_code == 202, accepted.text
        failed = wait_for(client, accepted.json()["jobs"][0]["id"])
        assert failed["state"] == "failed" and "OCR found no text" in failed["error"], failed
