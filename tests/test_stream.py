"""Streamed answers (Server-Sent Events) and CORS, over a real server."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import start_server, stop_server

QUESTION = "海安县首批下放了多少项行政权力事项？"


def read_events(response: httpx.Response) -> list[tuple[str, dict]]:
    events = []
    for frame in response.text.split("\n\n"):
        if not frame.strip():
            continue
        fields = dict(line.split(": ", 1) for line in frame.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


def test_stream_sends_citations_then_pieces_then_done(client):
    response = client.post("/api/ask", json={"question": QUESTION, "stream": True})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = read_events(response)
    names = [name for name, _ in events]
    assert names[:2] == ["citations", "short_answer"] and names[-1] == "done" and set(names[2:-1]) == {"delta"}
    assert events[1][1]["text"] == "341项"  # the short answer goes before the quotes that prove it
    done = events[-1][1]
    assert "".join(data["text"] for name, data in events if name == "delta") == done["answer"]
    assert done["answerable"] and "341项" in done["answer"] and done["took_ms"] > 0
    plain = client.post("/api/ask", json={"question": QUESTION}).json()
    assert events[0][1]["citations"] == plain["citations"] and done["answer"] == plain["answer"]
    assert events[1][1] == plain["short_answer"] == done["short_answer"]
    assert done["confidence"] == plain["confidence"] >= plain["min_confidence"] > 0


def test_every_marker_arrives_whole(client):
    events = read_events(client.post("/api/ask", json={"question": "镇江市共有多少个街道？", "stream": True}))
    for name, data in events:
        if name == "delta":
            assert data["text"].count("[") == data["text"].count("]")


def test_a_declined_question_streams_its_state(client):
    events = read_events(client.post("/api/ask", json={"question": "红烧肉怎么做才好吃？", "stream": True}))
    assert events[-1] == ("done", events[-1][1]) and events[-1][1]["answerable"] is False
    assert events[-1][1]["confidence"] < 0.1
    assert all(c["weak"] for c in events[0][1]["citations"])


def test_bad_input_is_refused_before_any_stream(client):
    response = client.post("/api/ask", json={"question": " ", "stream": True})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    unknown = client.post("/api/ask", json={"question": "街道", "stream": True, "doc_ids": ["nope"]})
    events = read_events(unknown)
    assert events == [("error", {"error": {"code": "unknown_document", "message": "unknown document id(s): nope"}})]


def test_no_cross_origin_access_unless_configured(client):
    response = client.options(
        "/api/ask", headers={"Origin": "https://county.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in response.headers


@pytest.fixture(scope="module")
def cors_server(seed_data_dir):
    process, url = start_server(
        {
            "POLICYQA_DATA_DIR": str(seed_data_dir),
            "POLICYQA_BUILD_ON_START": "false",
            "POLICYQA_CORS_ORIGINS": "https://county.example.gov.cn, https://other.example",
        }
    )
    yield url
    stop_server(process)


def test_configured_origins_and_only_those(cors_server):
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    allowed = httpx.options(f"{cors_server}/api/ask", headers={"Origin": "https://county.example.gov.cn", **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://county.example.gov.cn"
    refused = httpx.options(f"{cors_server}/api/ask", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    simple = httpx.post(
        f"{cors_server}/api/ask", json={"question": QUESTION}, headers={"Origin": "https://other.example"}, timeout=60
    )
    assert simple.headers["access-control-allow-origin"] == "https://other.example"
