"""The HTTP API over a real uvicorn server and the real seed index."""

from __future__ import annotations

import inspect
import re

import pytest

from index.quality.gold import contains_answer, load_questions
from service.api.routes import ask as ask_route
from service.api.routes import search as search_route

ANSWERABLE = [q for q in load_questions() if q.answerable]
UNANSWERABLE = [q for q in load_questions() if not q.answerable]
MARKED_SENTENCE = re.compile(r"(.+?)\[(\d+)\]", re.S)


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    assert "Traceback" not in response.text


def test_health_names_the_build(client, seed_index):
    body = client.get("/api/health").json()
    assert body["status"] == "ok"
    assert body["documents"] == 9
    assert body["chunks"] == seed_index.catalogue.count()
    assert body["embedder"] == seed_index.manifest.embedder.name
    assert body["build_id"] == seed_index.manifest.build_id


def test_gold_questions_cite_the_right_document_in_the_top_three(client):
    found = []
    for q in ANSWERABLE:
        citations = client.post("/api/ask", json={"question": q.question, "top_k": 3}).json()["citations"]
        if any(c["doc_id"] == q.doc_id and contains_answer(c["text"], q.answers) for c in citations):
            found.append(q.id)
    # The issue asks for 15; the index does better, and this guards it.
    assert len(found) >= 30, (
        f"only {len(found)} of {len(ANSWERABLE)}: {sorted(set(q.id for q in ANSWERABLE) - set(found))}"
    )


def test_most_of_the_first_gold_questions_are_answered(client):
    answered = [client.post("/api/ask", json={"question": q.question}).json()["answerable"] for q in ANSWERABLE[:12]]
    assert sum(answered) >= 10, answered


@pytest.mark.parametrize("question", [q.question for q in ANSWERABLE[:12]])
def test_every_answer_sentence_is_quoted_verbatim_from_its_citation(client, question):
    body = client.post("/api/ask", json={"question": question}).json()
    if not body["answerable"]:
        assert body["declined_reason"] and body["confidence"] is not None  # counted by the test above
        return
    citations = {c["n"]: c for c in body["citations"]}
    pieces = MARKED_SENTENCE.findall(body["answer"])
    assert pieces and "".join(f"{s}[{n}]" for s, n in pieces) == body["answer"]
    for sentence, n in pieces:
        citation = citations[int(n)]
        assert sentence in citation["text"]
        quoted = [citation["text"][h["start"] : h["end"]] for h in citation["highlights"]]
        assert sentence in quoted


def test_citation_fields_point_into_the_document(client):
    body = client.post("/api/ask", json={"question": "海安县首批下放了多少项行政权力事项？"}).json()
    first = body["citations"][0]
    assert {
        "n",
        "doc_id",
        "title",
        "source",
        "section",
        "chunk_id",
        "text",
        "highlights",
        "score",
        "dense_score",
        "lexical_score",
        "weak",
    } <= set(first)
    assert "341项" in body["answer"]
    document = client.get(f"/api/documents/{first['doc_id']}").json()
    assert document["text"][first["start"] : first["end"]] == first["text"]
    assert first["source"] == "haian-central-town-reform.txt"


@pytest.mark.parametrize(
    "question",
    [q.question for q in UNANSWERABLE if "天气" in q.question or "红烧肉" in q.question or "Python" in q.question],
)
def test_off_topic_questions_are_declined(client, question):
    body = client.post("/api/ask", json={"question": question}).json()
    assert body["answerable"] is False
    assert "没有找到" in body["answer"]
    assert not re.search(r"\[\d+\]", body["answer"])
    assert body["citations"] and all(c["weak"] and not c["highlights"] for c in body["citations"])


def test_traditional_characters_find_the_same_passage(client):
    simplified = client.post("/api/search", json={"query": "开封市乡镇和街道机构改革的重大意义"}).json()
    traditional = client.post("/api/search", json={"query": "開封市鄉鎮和街道機構改革的重大意義"}).json()
    assert simplified["results"][0]["chunk_id"] == traditional["results"][0]["chunk_id"]


@pytest.mark.parametrize("mode", ["hybrid", "dense", "lexical"])
def test_each_mode_ranks_results(client, mode):
    body = client.post("/api/search", json={"query": "八局两中心", "mode": mode, "top_k": 4}).json()
    scores = [r["score"] for r in body["results"]]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)
    assert body["results"][0]["doc_id"] == "haian-central-town-reform"


def test_doc_ids_filter_restricts_results(client):
    body = client.post(
        "/api/search", json={"query": "机构改革", "top_k": 10, "doc_ids": ["zhenjiang-subdistrict-npc-work"]}
    ).json()
    assert body["results"] and {r["doc_id"] for r in body["results"]} == {"zhenjiang-subdistrict-npc-work"}


def test_documents_are_listed_with_chunk_counts(client, seed_index):
    body = client.get("/api/documents").json()
    assert body["count"] == 9 == len(body["data"])
    assert sum(d["chunks"] for d in body["data"]) == seed_index.catalogue.count()
    assert {"doc_id", "title", "source", "type", "pages", "chunks", "origin", "policy", "corrections", "added_at",
            "updated_at"} == set(body["data"][0])  # fmt: skip
    assert {(d["type"], d["pages"]) for d in body["data"]} == {("txt", None)}  # plain text has no pages
    assert all(d["added_at"] == d["updated_at"] and d["added_at"].endswith("+00:00") for d in body["data"])


@pytest.mark.parametrize(("sort", "field"), [("title", "title"), ("chunks", "chunks"), ("added_at", "added_at")])
def test_documents_are_listed_in_the_order_asked(client, sort, field):
    listed = client.get(f"/api/documents?sort={sort}&descending=true").json()["data"]
    values = [d[field] for d in listed]
    assert values == sorted(values, reverse=True)
    refused = client.get("/api/documents?sort=text")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request"


def test_document_detail_gives_each_chunk_its_place(client):
    body = client.get("/api/documents/haian-central-town-reform").json()
    assert body["type"] == "txt" and body["chunks"] == len(body["chunk_spans"])
    spans = body["chunk_spans"]
    assert all(a["end"] <= b["start"] or a["start"] < b["start"] for a, b in zip(spans, spans[1:], strict=False))
    assert {"chunk_id", "section", "start", "end", "pages", "ocr_confidence"} == set(spans[0])
    assert any(s["section"] for s in spans)


def test_ask_says_which_threshold_the_abstention_used(client):
    body = client.post("/api/ask", json={"question": "红烧肉怎么做才好吃？"}).json()
    assert not body["answerable"] and body["declined_reason"]
    assert body["min_relevance"] > 0 and body["relevance"] < body["min_relevance"]


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/ask", "/api/search", "/api/documents", "/api/documents/{doc_id}", "/api/health"} <= set(paths)


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"question": ""}, 422, "invalid_request"),
        ({"question": "   \n\t "}, 422, "invalid_request"),
        ({"question": "街" * 1001}, 422, "invalid_request"),
        ({"question": "街道", "top_k": 0}, 422, "invalid_request"),
        ({"question": "街道", "top_k": 21}, 422, "invalid_request"),
        ({"question": "街道", "top_k": "many"}, 422, "invalid_request"),
        ({"question": "街道", "mode": "magic"}, 422, "invalid_request"),
        ({"question": "街道", "doc_ids": ["no-such-document"]}, 422, "unknown_document"),
        ({"question": "街道", "doc_ids": "not-a-list"}, 422, "invalid_request"),
        ({"question": 42}, 422, "invalid_request"),
        ({"question": "街道", "topk": 3}, 422, "invalid_request"),
        ({}, 422, "invalid_request"),
        ([], 422, "invalid_request"),
    ],
)
def test_bad_ask_input_gets_one_error_shape(client, payload, status, code):
    assert_error(client.post("/api/ask", json=payload), status, code)


def test_a_question_of_exactly_the_limit_is_accepted(client):
    assert client.post("/api/ask", json={"question": "街" * 1000}).status_code == 200


@pytest.mark.parametrize("body", [b"{not json", b'{"question": "\xe8\xa1"}', b"", b'{"question": "a",}'])
def test_malformed_json_is_a_400(client, body):
    response = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (400, 422)
    assert_error(response, response.status_code, "malformed_json" if response.status_code == 400 else "invalid_request")


def test_bad_search_input(client):
    assert_error(client.post("/api/search", json={"query": " "}), 422, "invalid_request")
    assert_error(client.post("/api/search", json={"query": "a", "doc_ids": ["x"]}), 422, "unknown_document")


def test_unknown_document_route_and_method(client):
    assert_error(client.get("/api/documents/no-such-document"), 404, "not_found")
    assert_error(client.get("/api/nothing-here"), 404, "not_found")
    assert_error(client.get("/api/ask"), 405, "method_not_allowed")


def test_heavy_endpoints_run_off_the_event_loop():
    # FastAPI runs plain functions in its thread pool; ask is a coroutine (it
    # may stream), so it must hand the embedding to the pool itself.
    assert not inspect.iscoroutinefunction(search_route.search)
    assert "run_in_threadpool(_answer" in inspect.getsource(ask_route)


def test_json_bodies_carry_chinese_as_utf8_text_not_escapes(client):
    """What curl shows is what the README shows: 海安县, not \\u6d77\\u5b89\\u53bf."""
    question = "海安县首批下放了多少项行政权力事项？"
    bodies = {
        "ask": client.post("/api/ask", json={"question": question}),
        "search": client.post("/api/search", json={"query": question}),
        "documents": client.get("/api/documents"),
        "error": client.get("/api/documents/海安县"),
        "stream": client.post("/api/ask", json={"question": question, "stream": True}),
    }
    assert bodies["error"].status_code == 404
    first_title = bodies["documents"].json()["data"][0]["title"]
    for name, response in bodies.items():
        expected = first_title if name == "documents" else "海安"
        assert expected.encode() in response.content, name
        assert b"\\u" not in response.content, name
