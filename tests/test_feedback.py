"""Feedback that becomes a regression test, through a real server over HTTP: a 👎 with the right passage is
reviewed, added to the knowledge base's gold set and asked by ``policyqa eval --kb`` (over HTTP and in process) and
by the server's evaluation; who may give, read and review it; the budget; bad input; feedback on a /v1 answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from service.feedback import FeedbackQueue
from service.stores.records import SqliteRecordStore
from tests.conftest import REPO, start_server, stop_server
from tests.test_kbs import FACT, QUESTION, assert_error, bearer

TOKEN = "feedback-admin-token-30"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
KB, OTHER = "fb", "fb-other"
PER_MINUTE = 20
QUOTE = "核定编制7名"  # in tests/test_kbs.py's FACT, the answer to its QUESTION


@pytest.fixture(scope="module")
def site(seed_data_dir, tmp_path_factory):
    """A server with two private knowledge bases, keys for each, and the fact uploaded into ``fb``."""
    data_dir = tmp_path_factory.mktemp("feedback-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {
        "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN,
        "POLICYQA_FEEDBACK_PER_MINUTE": str(PER_MINUTE),
    }  # fmt: skip
    process, base_url = start_server(env)
    with httpx.Client(base_url=base_url, timeout=120.0) as client:
        keys = {}
        for kb in (KB, OTHER):
            made = client.post("/api/kbs", headers=ADMIN, json={"kb_id": kb, "title": kb, "public": False})
            assert made.status_code == 201, made.text
            for scope in ("read", "write"):
                key = client.post("/api/keys", headers=ADMIN, json={"kbs": [kb], "scope": scope, "label": scope})
                keys[kb, scope] = key.json()["key"]
        _upload(client, bearer(keys[KB, "write"]))
        yield {"client": client, "url": base_url, "keys": keys, "data_dir": data_dir}
    output = stop_server(process)
    assert "Traceback" not in output, output


def _upload(client: httpx.Client, headers: dict) -> None:
    response = client.post(f"/api/kbs/{KB}/documents", headers=headers, files={"files": ("office.txt", FACT.encode())})
    assert response.status_code == 202, response.text
    job_id = response.json()["jobs"][0]["id"]
    deadline = time.monotonic() + 240
    while (job := client.get(f"/api/kbs/{KB}/jobs/{job_id}", headers=headers).json())["state"] not in (
        "done",
        "failed",
    ):
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["state"] == "done", job


def feedback_of(asked: dict, verdict: str, **extra) -> dict:
    """What the widget sends: the answer as it was given, with its citations."""
    citations = [
        {"n": c["n"], "doc_id": c["doc_id"], "title": c["title"], "section": c["section"],
         "quote": c["text"][:400], "chunk_id": c["chunk_id"]}
        for c in asked["citations"]
    ]  # fmt: skip
    answer = {
        "text": asked["answer"], "answerable": asked["answerable"], "declined_reason": asked["declined_reason"],
        "short_answer": (asked.get("short_answer") or {}).get("text"),
    }  # fmt: skip
    return {"question": asked["question"], "answer": answer, "citations": citations, "verdict": verdict, **extra}


def run_eval(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=REPO, env={**os.environ, **(env or {})},
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def the_report(reports_dir) -> dict:
    (report,) = reports_dir.glob("*/report.json")
    return json.loads(report.read_text(encoding="utf-8"))


def test_a_thumbs_down_with_the_right_passage_becomes_a_gold_question_that_eval_asks(site, tmp_path):
    client, keys = site["client"], site["keys"]
    reader, staff = bearer(keys[KB, "read"]), bearer(keys[KB, "write"])
    asked = client.post(f"/api/kbs/{KB}/ask", headers=reader, json={"question": QUESTION}).json()
    cited = next(c for c in asked["citations"] if QUOTE in c["text"])
    helpful = client.post(f"/api/kbs/{KB}/feedback", headers=reader, json=feedback_of(asked, "helpful"))
    assert helpful.status_code == 201, helpful.text
    suggested = {"doc_id": cited["doc_id"], "chunk_id": cited["chunk_id"], "quote": QUOTE}
    down = feedback_of(asked, "wrong", comment="应该引用编制那一句", correct_passage=suggested)
    given = client.post(f"/api/kbs/{KB}/feedback", headers=reader, json=down)
    assert given.status_code == 201, given.text
    assert given.json()["status"] == "open" and given.json()["verdict"] == "wrong"
    feedback_id = given.json()["id"]

    # The review queue, newest first, with the answer as it was; filtered by verdict and status.
    queue = client.get(f"/api/kbs/{KB}/feedback", headers=staff).json()
    assert [f["id"] for f in queue["data"]] == [feedback_id, helpful.json()["id"]] and queue["next_before"] is None
    first = queue["data"][0]
    assert first["answer"]["text"] == asked["answer"] and first["citations"][0]["doc_id"] == cited["doc_id"]
    assert first["correct_passage"]["chunk_id"] == cited["chunk_id"] and first["given_by"].endswith("(read)")
    only = client.get(f"/api/kbs/{KB}/feedback", headers=staff, params={"verdict": "helpful", "limit": 1}).json()
    assert [f["verdict"] for f in only["data"]] == ["helpful"]
    paged = client.get(f"/api/kbs/{KB}/feedback", headers=staff, params={"limit": 1}).json()
    rest = client.get(f"/api/kbs/{KB}/feedback", headers=staff, params={"before": paged["next_before"]}).json()
    assert [f["id"] for f in paged["data"] + rest["data"]] == [f["id"] for f in queue["data"]]

    # Staff mark the passage (checked against the knowledge base) and add the question to the gold set.
    path = f"/api/kbs/{KB}/feedback/{feedback_id}"
    assert_error(client.post(f"{path}/gold", headers=staff), 409, "conflict")  # nothing marked yet
    not_there = {"passage": {"doc_id": cited["doc_id"], "quote": "核定编制9名"}}
    assert_error(client.patch(path, headers=staff, json=not_there), 422, "invalid_input")
    assert_error(client.patch(path, headers=staff, json={"passage": {"doc_id": "nope", "quote": QUOTE}}), 422)
    marked = client.patch(path, headers=staff, json={"passage": suggested, "note": "答案在第一条"})
    assert marked.status_code == 200, marked.text
    assert marked.json()["marked"]["chunk_id"] == cited["chunk_id"] and marked.json()["note"] == "答案在第一条"
    outside = client.post(f"{path}/gold", headers=staff, json={"answers": ["120万元"]})
    assert_error(outside, 422, "invalid_input")  # an answer must be a piece of the marked quote
    gold = client.post(f"{path}/gold", headers=staff)
    assert gold.status_code == 201, gold.text
    assert gold.json()["answers"] == [QUOTE] and gold.json()["doc_id"] == cited["doc_id"]
    assert client.get(path, headers=staff).json()["status"] == "resolved"
    listed = client.get(f"/api/kbs/{KB}/gold", headers=staff).json()
    assert [g["question"] for g in listed["data"]] == [QUESTION]

    # policyqa eval --kb asks it: over HTTP with the staff's key, and in process from the data directory.
    over_http = run_eval("eval", "--kb", KB, "--url", site["url"], "--key", keys[KB, "write"], "--modes", "lexical",
                         "--quiet", "--reports-dir", str(tmp_path / "http"))  # fmt: skip
    assert over_http.returncode == 0, over_http.stderr
    assert f"gold-{KB}: 1 questions" in over_http.stdout
    (scored,) = the_report(tmp_path / "http")["questions"]
    assert scored["id"] == gold.json()["id"] and scored["question"] == QUESTION
    assert scored["answered"] and scored["answer_correct"] is True and scored["doc_rank"] == 1, scored
    local = ["--data-dir", str(site["data_dir"]), "eval", "--kb", KB, "--modes", "lexical", "--quiet"]
    in_process = run_eval(*local, "--reports-dir", str(tmp_path / "local"), env={"POLICYQA_BUILD_ON_START": "false"})
    assert in_process.returncode == 0, in_process.stderr
    assert [q["answer_correct"] for q in the_report(tmp_path / "local")["questions"]] == [True]

    # ...and so does the server's evaluation (the console's 评测).
    run = client.post(f"/api/kbs/{KB}/evaluations", headers=ADMIN, json={"modes": ["lexical"]})
    assert run.status_code == 202, run.text
    assert run.json()["questions"] == 1 and run.json()["dataset"] == f"gold-{KB}"
    deadline = time.monotonic() + 240
    while (body := client.get(f"/api/kbs/{KB}/evaluations/{run.json()['id']}", headers=ADMIN).json())["state"] not in (
        "done", "failed",
    ):  # fmt: skip
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert body["state"] == "done" and body["summary"]["lexical"]["answer"] == 1.0, body


def test_a_knowledge_base_without_gold_questions_says_so(site, tmp_path):
    client, keys = site["client"], site["keys"]
    error = assert_error(client.post(f"/api/kbs/{OTHER}/evaluations", headers=ADMIN, json={}), 409, "conflict")
    assert "no gold questions" in error["message"]
    result = run_eval("eval", "--kb", OTHER, "--url", site["url"], "--key", keys[OTHER, "write"], "--quiet",
                      "--reports-dir", str(tmp_path))  # fmt: skip
    assert result.returncode == 2 and "has no gold questions yet" in result.stderr, result.stderr


def test_readers_give_feedback_staff_read_it_and_another_knowledge_base_sees_none(site):
    client, keys = site["client"], site["keys"]
    reader, staff = bearer(keys[KB, "read"]), bearer(keys[KB, "write"])
    stranger, stranger_reader = bearer(keys[OTHER, "write"]), bearer(keys[OTHER, "read"])
    body = {
        "question": QUESTION,
        "answer": {"text": "文档未涉及", "answerable": False},
        "verdict": "should_have_answered",
    }
    assert_error(client.post(f"/api/kbs/{KB}/feedback", json=body), 401, "unauthorized")  # private: a key needed
    assert_error(client.post(f"/api/kbs/{KB}/feedback", headers=stranger_reader, json=body), 403, "forbidden")
    given = client.post(f"/api/kbs/{KB}/feedback", headers=reader, json=body)
    assert given.status_code == 201, given.text
    path = f"/api/kbs/{KB}/feedback/{given.json()['id']}"

    assert_error(client.get(f"/api/kbs/{KB}/feedback", headers=reader), 403, "forbidden")  # gives, cannot read
    assert_error(client.get(path, headers=reader), 403, "forbidden")
    assert_error(client.get(f"/api/kbs/{KB}/feedback"), 401, "unauthorized")
    for method, url, json_body in (
        ("GET", f"/api/kbs/{KB}/feedback", None), ("GET", path, None), ("PATCH", path, {"status": "resolved"}),
        ("POST", f"{path}/gold", None), ("GET", f"/api/kbs/{KB}/gold", None),
    ):  # fmt: skip
        assert_error(client.request(method, url, headers=stranger, json=json_body), 403, "forbidden")
    assert client.get(f"/api/kbs/{OTHER}/feedback", headers=stranger).json()["data"] == []
    assert client.get(f"/api/kbs/{OTHER}/gold", headers=stranger).json()["data"] == []
    assert_error(client.get(f"/api/kbs/{OTHER}/feedback/{given.json()['id']}", headers=stranger), 404)
    assert client.get(path, headers=staff).json()["verdict"] == "should_have_answered"
    assert client.get(path, headers=ADMIN).status_code == 200

    # Not in the documents: an unanswerable gold question, removed again.
    marked = client.patch(path, headers=staff, json={"not_in_documents": True, "status": "resolved"})
    assert marked.json()["marked"]["kind"] == "not_in_documents" and marked.json()["status"] == "resolved"
    gold = client.post(f"{path}/gold", headers=staff, json={"topic": "near"})
    assert gold.status_code == 201 and gold.json()["doc_id"] is None and gold.json()["answers"] == []
    assert_error(client.post(f"{path}/gold", headers=staff), 409, "conflict")
    deleted = client.delete(f"/api/kbs/{KB}/gold/{gold.json()['id']}", headers=staff)
    assert deleted.json() == {"id": gold.json()["id"], "deleted": True}
    assert_error(client.delete(f"/api/kbs/{KB}/gold/{gold.json()['id']}", headers=staff), 404, "not_found")


def test_the_feedback_budget_is_per_caller_and_answers_429_in_the_error_shape(site):
    client = site["client"]
    made = client.post("/api/keys", headers=ADMIN, json={"kbs": [KB], "scope": "read", "label": "busy"}).json()
    busy = bearer(made["key"])
    body = {"question": QUESTION, "answer": {"text": "…", "answerable": True}, "verdict": "helpful"}
    for _ in range(PER_MINUTE):
        assert client.post(f"/api/kbs/{KB}/feedback", headers=busy, json=body).status_code == 201
    refused = client.post(f"/api/kbs/{KB}/feedback", headers=busy, json=body)
    assert_error(refused, 429, "too_many_requests")
    assert int(refused.headers["Retry-After"]) >= 1
    reader = bearer(site["keys"][KB, "read"])  # another caller's budget is its own
    assert client.post(f"/api/kbs/{KB}/feedback", headers=reader, json=body).status_code == 201


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"verdict": "meh"}, "verdict"),
        ({"comment": "长" * 1001}, "comment"),
        ({"citations": [{"doc_id": "x", "quote": "字" * 401}]}, "citations.0.quote"),
        ({"answer": {"text": "…"}}, "answer.answerable"),
        ({"rating": 5}, "rating"),
        ({"question": "   "}, "question"),
    ],
    ids=["verdict", "comment", "quote", "answerable", "unknown-field", "empty-question"],
)
def test_bad_feedback_is_a_422_naming_the_field(site, change, field):
    body = {"question": QUESTION, "answer": {"text": "…", "answerable": True}, "verdict": "wrong", **change}
    error = assert_error(site["client"].post("/api/feedback", headers=ADMIN, json=body), 422, "invalid_request")
    assert field in [d["field"] for d in error["details"]], error


def test_bad_review_input_is_refused(site):
    client, staff = site["client"], bearer(site["keys"][KB, "write"])
    base = f"/api/kbs/{KB}/feedback"
    assert_error(client.get(f"{base}/not-an-id", headers=staff), 422, "invalid_request")
    assert_error(client.get(f"{base}/0000000000000000-00000000", headers=staff), 404, "not_found")
    assert_error(client.get(base, headers=staff, params={"status": "closed"}), 422, "invalid_request")
    given = client.post(base, headers=staff, json={"question": QUESTION, "answer": {"text": "…", "answerable": True},
                                                   "verdict": "wrong"})  # fmt: skip
    both = {"passage": {"doc_id": "office", "quote": QUOTE}, "not_in_documents": True}
    assert_error(client.patch(f"{base}/{given.json()['id']}", headers=staff, json=both), 422, "invalid_request")
    bad_passage = {"correct_passage": {"doc_id": "office", "chunk_id": 999_999}}
    suggestion = {"question": QUESTION, "answer": {"text": "…", "answerable": True}, "verdict": "wrong", **bad_passage}
    assert_error(client.post(base, headers=staff, json=suggestion), 422, "invalid_input")
    as_json = {**staff, "content-type": "application/json"}
    assert_error(client.post(base, headers=as_json, content=b"{not json"), 400, "malformed_json")


def test_a_v1_answer_carries_the_feedback_request_to_send(site):
    client, reader = site["client"], bearer(site["keys"][KB, "read"])
    chat = {"model": KB, "messages": [{"role": "user", "content": QUESTION}]}
    completion = client.post("/v1/chat/completions", headers=reader, json=chat).json()
    feedback = completion["choices"][0]["message"]["feedback"]
    assert feedback["url"] == f"/api/kbs/{KB}/feedback"
    assert feedback["body"]["response_id"] == completion["id"] and feedback["body"]["question"] == QUESTION
    given = client.post(feedback["url"], headers=reader, json={**feedback["body"], "verdict": "wrong"})
    assert given.status_code == 201, given.text
    kept = client.get(f"/api/kbs/{KB}/feedback/{given.json()['id']}", headers=bearer(site["keys"][KB, "write"]))
    assert kept.json()["channel"] == "v1" and kept.json()["response_id"] == completion["id"]
    assert kept.json()["citations"][0]["doc_id"] == completion["choices"][0]["message"]["citations"][0]["doc_id"]
    with client.stream("POST", "/v1/chat/completions", headers=reader, json={**chat, "stream": True}) as streamed:
        events = [json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: {")]
    assert events[-1]["choices"][0]["delta"]["feedback"]["url"] == f"/api/kbs/{KB}/feedback"


def test_the_queue_pages_through_a_filter_across_batches(tmp_path, monkeypatch):
    """Filtering reads the store in batches: a match past the first batch is found, and the paging id is right."""
    monkeypatch.setattr("service.feedback.FILTERED_BATCH", 3)
    queue = FeedbackQueue(SqliteRecordStore(tmp_path / "staff.sqlite3"))
    made = [
        queue.file("kb", {"verdict": "wrong" if n in (1, 6) else "helpful"}, given_by="anonymous") for n in range(8)
    ]
    found, next_before = queue.page("kb", limit=1, verdict="wrong")
    assert [r.record_id for r in found] == [made[6].record_id] and next_before == made[6].record_id
    found, next_before = queue.page("kb", limit=1, verdict="wrong", before=next_before)
    assert [r.record_id for r in found] == [made[1].record_id]
    assert queue.page("kb", limit=1, verdict="wrong", before=made[1].record_id) == ([], None)
