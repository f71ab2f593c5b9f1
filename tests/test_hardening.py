"""Limits, security headers, request logs and metrics, over real servers on the seed index."""

from __future__ import annotations

import asyncio
import inspect
import json
import shutil
import time
from itertools import count
from pathlib import Path, PurePosixPath, PureWindowsPath

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.api import admin, tenancy
from service.api.limits import StreamLimitMiddleware, TokenBuckets, _wants_stream
from service.settings import Settings
from tests.conftest import start_server, stop_server

TOKEN = "hardening-token-7f3a9c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "https://county.example.gov.cn"
QUESTION = "海安县首批下放了多少项行政权力事项？"
DOC = "关于乡镇便民服务的通知\n一、总体要求\n各乡镇设立便民服务中心，配备工作人员五名。\n".encode()
_addresses = count(1)


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"], body
    return body


def as_client(address: str | None = None) -> dict:
    """Headers that make the request come from its own address (uvicorn trusts X-Forwarded-For from 127.0.0.1)."""
    return {"X-Forwarded-For": address or f"198.51.100.{next(_addresses)}"}


@pytest.fixture(scope="module")
def hardened(seed_data_dir, tmp_path_factory):
    """Tight limits: 60 requests a minute in bursts of 5, 4 KB bodies, 2 files an upload, jobs cut at once."""
    data_dir = tmp_path_factory.mktemp("hardened-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {
        "POLICYQA_DATA_DIR": str(data_dir),
        "POLICYQA_BUILD_ON_START": "false",
        "POLICYQA_ADMIN_TOKEN": TOKEN,
        "POLICYQA_CORS_ORIGINS": ORIGIN,
        "POLICYQA_RATE_LIMIT_PER_MINUTE": "60",
        "POLICYQA_RATE_LIMIT_BURST": "5",
        "POLICYQA_MAX_BODY_KB": "4",
        "POLICYQA_MAX_UPLOAD_FILES": "2",
        "POLICYQA_JOB_TIMEOUT_S": "0.001",
    }
    process, url = start_server(env)
    handle = {"url": url, "process": process, "data_dir": data_dir}
    yield handle
    handle["log"] = stop_server(process)


@pytest.fixture(scope="module")
def deadlines(seed_data_dir, tmp_path_factory):
    """Every request and every upload reading past 1 ms: each one runs out of time."""
    data_dir = tmp_path_factory.mktemp("deadline-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {
        "POLICYQA_DATA_DIR": str(data_dir),
        "POLICYQA_BUILD_ON_START": "false",
        "POLICYQA_ADMIN_TOKEN": TOKEN,
        "POLICYQA_REQUEST_TIMEOUT_S": "0.001",
        "POLICYQA_PARSE_TIMEOUT_S": "0.001",
    }
    # Health runs out of time too: the server is up once it answers at all (a 503 in our error shape).
    process, url = start_server(env, ready=(200, 503))
    yield url
    output = stop_server(process)
    assert "Traceback" not in output, output


# -- security headers ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/widget.js", "/widget.css", "/api/health", "/api/documents/nope", "/metrics"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    expected = "cross-origin" if path.startswith("/widget") else "same-origin"
    assert response.headers["cross-origin-resource-policy"] == expected


def test_demo_page_policy_allows_its_own_styles_by_hash_and_nothing_inline_else(client):
    policy = dict(part.strip().split(" ", 1) for part in client.get("/").headers["content-security-policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"  # the demo page has no inline script
    assert policy["style-src"].startswith("'self' 'sha256-") and "unsafe-inline" not in policy["style-src"]
    assert policy["connect-src"] == "'self'"


def test_api_policy_allows_nothing(client):
    policy = client.post("/api/search", json={"query": "街道"}).headers["content-security-policy"]
    assert policy.startswith("default-src 'none'")


# -- request ids, logs, metrics ------------------------------------------------


def test_request_id_is_kept_when_sane_and_made_otherwise(client):
    assert client.get("/api/health", headers={"X-Request-ID": "abc-123.x_y"}).headers["x-request-id"] == "abc-123.x_y"
    for insane in ("", "a b", "x" * 65, "中文".encode(), "a\tb", "<script>"):
        made = client.get("/api/health", headers={"X-Request-ID": insane}).headers["x-request-id"]
        assert made != insane and len(made) == 32 and made.isalnum()
    assert client.get("/nope").headers["x-request-id"]  # 404s too


def test_metrics_count_requests_errors_index_and_jobs(client, seed_index):
    client.get("/api/documents/no-such-document")
    client.post("/api/search", json={"query": "街道", "top_k": 3})
    families = {f.name: f for f in text_string_to_metric_families(client.get("/metrics").text)}
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    found = (
        "policyqa_http_requests_total",
        (("method", "GET"), ("route", "/api/documents/{doc_id}"), ("status", "404")),
    )
    assert samples[found] >= 1  # labelled by the route template, not the path
    assert samples[("policyqa_http_errors_total", (("route", "/api/documents/{doc_id}"), ("status", "404")))] >= 1
    assert samples[("policyqa_http_request_duration_seconds_count", (("route", "/api/search"),))] >= 1
    assert samples[("policyqa_index_documents", ())] == seed_index.catalogue.document_count()
    assert samples[("policyqa_index_chunks", ())] == seed_index.catalogue.count()
    assert {("state", s) for s in ("queued", "running", "done", "failed")} == {
        labels[0] for name, labels in samples if name == "policyqa_ingestion_jobs"
    }


# -- limits ----------------------------------------------------------------------


def test_question_length_and_top_k_are_bounded_and_types_are_strict(client):
    assert client.post("/api/ask", json={"question": "问" * 1000, "top_k": 1}).status_code == 200
    assert_error(client.post("/api/ask", json={"question": "问" * 1001}), 422, "invalid_request")
    assert_error(client.post("/api/search", json={"query": "街道", "top_k": 21}), 422, "invalid_request")
    assert_error(client.post("/api/ask", json={"question": QUESTION, "stream": 0}), 422, "invalid_request")
    assert_error(client.post("/api/ask", json={"question": QUESTION, "top_k": 2.0}), 422, "invalid_request")


def test_bodies_over_the_limit_are_413_whether_declared_or_streamed(hardened):
    big = json.dumps({"question": "乡镇" * 3000}).encode()
    with httpx.Client(base_url=hardened["url"], timeout=30) as http:
        assert_error(http.post("/api/ask", content=big, headers=as_client()), 413, "payload_too_large")
        chunked = http.post("/api/ask", content=iter([big[:3000], big[3000:]]), headers=as_client())
        assert_error(chunked, 413, "payload_too_large")
        assert http.post("/api/ask", json={"question": QUESTION}, headers=as_client()).status_code == 200


def test_only_the_token_opens_the_upload_allowance(hardened):
    content = ("乡镇街道便民服务事项。" * 400).encode()  # 12 KB: over the 4 KB body limit
    with httpx.Client(base_url=hardened["url"], timeout=60) as http:
        refused = http.post("/api/documents", files={"files": ("a.txt", content)}, headers=as_client())
        assert_error(refused, 413, "payload_too_large")
        wrong = {**as_client(), "Authorization": "Bearer wrong"}
        assert_error(
            http.post("/api/documents", files={"files": ("a.txt", content)}, headers=wrong), 413, "payload_too_large"
        )
        three = [("files", (f"{n}.txt", DOC)) for n in range(3)]
        assert_error(http.post("/api/documents", files=three, headers={**AUTH, **as_client()}), 422, "invalid_input")


def test_rate_limit_is_per_client_with_retry_after_and_cors_headers(hardened):
    me, other = as_client(), as_client()
    with httpx.Client(base_url=hardened["url"], timeout=30) as http:
        answers = [http.get("/api/documents", headers={**me, "Origin": ORIGIN}) for _ in range(8)]
        statuses = [r.status_code for r in answers]
        assert statuses[:5] == [200] * 5 and 429 in statuses[5:], statuses
        limited = next(r for r in answers if r.status_code == 429)
        assert_error(limited, 429, "too_many_requests")
        assert int(limited.headers["retry-after"]) >= 1
        assert limited.headers["access-control-allow-origin"] == ORIGIN  # the widget can read why
        assert http.get("/api/documents", headers=other).status_code == 200  # another client is not affected
        assert all(http.get("/api/health", headers=me).status_code == 200 for _ in range(3))  # health is exempt


def test_an_ingestion_job_past_its_deadline_fails_and_changes_nothing(hardened):
    headers = {**AUTH, **as_client()}
    with httpx.Client(base_url=hardened["url"], timeout=60) as http:
        before = http.get("/api/health").json()
        job = http.post("/api/documents", files={"files": ("late.txt", DOC)}, headers=headers).json()["jobs"][0]
        deadline = time.monotonic() + 120
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(1.1)  # within the rate limit
            job = http.get(f"/api/jobs/{job['id']}", headers=headers).json()
        assert job["state"] == "failed" and "nothing was changed" in job["error"], job
        after = http.get("/api/health").json()
        assert (after["build_id"], after["documents"]) == (before["build_id"], before["documents"])


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "..", "a/b.txt", "C:\\x.txt", "/abs.txt", "name\n.txt", "nul\x00.txt", "x" * 300]
)
def test_file_names_are_never_paths(hardened, name):
    # Written by hand: an HTTP client would escape the name, and a hostile one does not.
    boundary = "policyqa-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'
    body = head.encode() + DOC + f"\r\n--{boundary}--\r\n".encode()
    headers = {**AUTH, **as_client(), "Content-Type": f"multipart/form-data; boundary={boundary}"}
    started = time.time()
    with httpx.Client(base_url=hardened["url"], timeout=60) as http:
        response = http.post("/api/documents", content=body, headers=headers)
    if response.status_code == 202:  # the multipart parser kept only the last part of a Windows path
        filename = response.json()["jobs"][0]["filename"]
        assert filename == PureWindowsPath(filename).name == PurePosixPath(filename).name != ".."
    else:
        assert response.status_code in (400, 422) and set(response.json()) == {"error"}, response.text
    data_dir = hardened["data_dir"]
    # Other tests' files lie beside it (a b.txt of their own): only what this upload could have written counts.
    written = [p for p in data_dir.parent.rglob("*") if p.name in ("passwd", "b.txt", "abs.txt")]
    assert not [p for p in written if p.stat().st_mtime >= started - 1], written


def test_deadlines_answer_503_at_once_and_readers_are_cut(deadlines):
    with httpx.Client(base_url=deadlines, timeout=60) as http:
        response = http.post("/api/ask", json={"question": QUESTION})
        assert_error(response, 503, "timeout")
        assert int(response.headers["retry-after"]) >= 1
        streamed = http.post("/api/ask", json={"question": QUESTION, "stream": True})
        if streamed.status_code == 200:  # the stream had opened: it ends with an error event
            assert streamed.text.rstrip().splitlines()[-1].startswith('data: {"error": {"code": "timeout"')
        else:
            assert_error(streamed, 503, "timeout")
        upload = http.post("/api/documents", files={"files": ("slow.txt", DOC)}, headers=AUTH)
        assert_error(upload, 422, "parse_timeout")


# -- admin token -------------------------------------------------------------------


def test_admin_token_is_compared_in_constant_time():
    assert admin.same_secret("s3cret", "s3cret") and not admin.same_secret("s3cret", "s3cre")
    assert not admin.same_secret("", "s3cret") and not admin.same_secret("s3cret-longer", "s3cret")
    assert "hmac.compare_digest" in inspect.getsource(admin.same_secret)
    for check in (tenancy.identify_caller, admin.token_matches):
        assert "same_secret" in check.__code__.co_names and "compare_digest" not in check.__code__.co_names
    settings = Settings(admin_token="tok")
    assert admin.token_matches(settings, "Bearer tok") and admin.token_matches(settings, "bearer tok")
    assert not any(admin.token_matches(settings, h) for h in (None, "", "tok", "Basic tok", "Bearer tok2"))
    assert not admin.token_matches(Settings(), "Bearer tok")  # no token configured: nothing opens


def test_logs_are_one_json_line_per_request_and_never_hold_the_token(hardened):
    with httpx.Client(base_url=hardened["url"], timeout=30) as http:
        http.get("/api/jobs/feedface", headers={**AUTH, **as_client(), "X-Request-ID": "log-check-1"})
        http.get("/api/jobs/feedface?token=" + TOKEN, headers={**as_client(), "Authorization": "Bearer " + TOKEN[:-1]})
    log = Path(hardened["process"].log_path).read_text(encoding="utf-8")
    assert TOKEN not in log and TOKEN[:-1] not in log
    records = [json.loads(line) for line in log.splitlines() if line.startswith('{"request_id"')]
    mine = next(r for r in records if r["request_id"] == "log-check-1")
    assert mine["method"] == "GET" and mine["path"] == "/api/jobs/feedface" and mine["status"] == 404
    assert mine["route"] == "/api/jobs/{job_id}" and mine["client"].startswith("198.51.100.")
    assert isinstance(mine["duration_ms"], float)


# -- in-process: the stream counter and the token bucket -----------------------------


def test_open_streams_are_counted_and_the_one_over_the_limit_is_refused():
    release = asyncio.Event()

    async def slow_stream(scope, receive, send):  # stands in for an answer that is still streaming
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await release.wait()
        await send({"type": "http.response.body", "body": b"done"})

    middleware = StreamLimitMiddleware(slow_stream, Settings(max_streams=2))

    async def call(body: bytes) -> list[dict]:
        sent: list[dict] = []
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive():
            return messages.pop() if messages else {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/api/ask",
            "headers": [(b"content-type", b"application/json")],
        }
        await middleware(scope, receive, send)
        return sent

    async def scenario():
        stream = b'{"question": "q", "stream": true}'
        first, second = asyncio.create_task(call(stream)), asyncio.create_task(call(stream))
        await asyncio.sleep(0.05)
        assert middleware.active == 2
        refused = await call(stream)
        plain = asyncio.create_task(call(b'{"question": "q"}'))  # not a stream: not counted, not refused
        await asyncio.sleep(0.05)
        release.set()
        await asyncio.gather(first, second, plain)
        assert middleware.active == 0
        return refused, plain.result()

    refused, plain = asyncio.run(scenario())
    assert refused[0]["status"] == 503 and b"too_many_streams" in refused[1]["body"]
    assert (b"retry-after", b"1") in refused[0]["headers"]
    assert plain[0]["status"] == 200


@pytest.mark.parametrize("value", ["true", '"true"', "1", '"yes"', '"on"'])
def test_every_true_a_request_schema_accepts_counts_as_a_stream(value):
    """/v1 reads "stream" leniently: 45 streams once ran against a limit of 32 as "true" and 1."""
    assert _wants_stream(f'{{"model": "policyqa", "stream": {value}}}'.encode())


@pytest.mark.parametrize("value", ["false", "0", '"no"', "null", "[1]"])
def test_what_no_schema_reads_as_true_is_not_a_stream(value):
    assert not _wants_stream(f'{{"question": "q", "stream": {value}}}'.encode())


@pytest.mark.parametrize("path", ["/api/ask", "/v1/chat/completions"])
def test_json_nested_too_deep_is_a_4xx_in_the_error_shape_not_a_traceback(client, path):
    depth = 100_000
    body = '{"question": "q", "stream": true, "x": ' + "[" * depth + "]" * depth + "}"
    response = client.post(path, content=body.encode(), headers={"content-type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert set(response.json()) == {"error"} and "Traceback" not in response.text


def test_token_bucket_refills_at_the_rate_up_to_the_burst():
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # one token comes every half second
    assert buckets.take("b") == 0.0  # its own bucket
    now[0] = 10.0
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]  # refilled to the burst, no further
    assert buckets.take("a") > 0
