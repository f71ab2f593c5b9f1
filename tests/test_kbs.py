"""Knowledge bases and keys over the real app (TestClient, lifespan run) with real uploads and the real model."""

from __future__ import annotations

import json
import shutil
import time

import pytest
from fastapi.testclient import TestClient

from service.api.app import create_app
from service.settings import Settings

TOKEN = "kb-admin-token-77"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
FACT = (
    "关于设立乡镇应急管理办公室的通知\n"
    "一、总体要求\n"
    "各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱、森林防火和安全生产的统筹协调。\n"
    "二、保障措施\n"
    "县财政每年安排专项经费120万元，用于乡镇应急物资储备和队伍培训。\n"
)
QUESTION = "乡镇应急管理办公室核定编制多少名？"
MARK = "应急管理办公室"  # in the uploaded fact, nowhere in docs_raw/


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response, status: int, code: str | None = None) -> dict:
    """The error of a refusal in the one error shape."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


@pytest.fixture(scope="module")
def app_client(seed_data_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("kbs-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    settings = Settings(data_dir=data_dir, build_on_start=False, admin_token=TOKEN, max_loaded_kbs=2)
    with TestClient(create_app(settings)) as client:
        yield client


def make_kb(client, kb_id: str, *, public: bool) -> dict:
    response = client.post("/api/kbs", headers=ADMIN, json={"kb_id": kb_id, "title": kb_id.title(), "public": public})
    assert response.status_code == 201, response.text
    return response.json()


def make_key(client, kbs: list[str], scope: str, label: str = "") -> str:
    response = client.post("/api/keys", headers=ADMIN, json={"kbs": kbs, "scope": scope, "label": label})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def upload_and_wait(client, kb_id: str, headers: dict, name: str = "emergency-office.txt") -> dict:
    response = client.post(f"/api/kbs/{kb_id}/documents", headers=headers, files={"files": (name, FACT.encode())})
    assert response.status_code == 202, response.text
    job_id = response.json()["jobs"][0]["id"]
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = client.get(f"/api/kbs/{kb_id}/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("done", "failed"):
            assert job["state"] == "done", job
            return job
        time.sleep(0.1)
    raise AssertionError("the upload did not finish")


def cited(body: dict) -> set[str]:
    return {c["doc_id"] for c in body.get("citations", [])}


def test_knowledge_bases_are_created_listed_changed_and_refused_in_the_error_shape(app_client):
    client = app_client
    made = make_kb(client, "town", public=True)
    assert (made["documents"], made["chunks"], made["public"], made["description"]) == (0, 0, True, "")
    make_kb(client, "staff", public=False)
    assert_error(client.post("/api/kbs", headers=ADMIN, json={"kb_id": "town", "title": "x", "public": True}), 409)
    for bad in ("", "Town", "a/b", "x" * 65):
        assert_error(client.post("/api/kbs", headers=ADMIN, json={"kb_id": bad, "title": "x", "public": True}), 422)
    assert_error(client.post("/api/kbs", json={"kb_id": "anon", "title": "x", "public": True}), 401)
    anonymous = client.get("/api/kbs").json()
    assert {kb["kb_id"] for kb in anonymous["data"]} >= {"default", "town"} and "staff" not in str(anonymous)
    assert anonymous["count"] == len(anonymous["data"])
    every = {kb["kb_id"]: kb for kb in client.get("/api/kbs", headers=ADMIN).json()["data"]}
    assert every["default"]["documents"] == 9 and every["staff"]["public"] is False
    assert_error(client.get("/api/kbs/staff"), 401, "unauthorized")
    assert_error(client.get("/api/kbs/nope", headers=ADMIN), 404)
    changed = client.patch("/api/kbs/town", headers=ADMIN, json={"description": "乡镇公开文件"})
    assert changed.status_code == 200 and changed.json()["description"] == "乡镇公开文件"
    assert_error(client.patch("/api/kbs/town", json={"public": False}), 401)
    assert client.patch("/api/kbs/town", headers=ADMIN, json={"public": False}).json()["public"] is False
    assert_error(client.post("/api/kbs/town/search", json={"query": "乡镇"}), 401)  # private at once
    assert client.patch("/api/kbs/town", headers=ADMIN, json={"public": True}).json()["public"] is True
    assert client.post("/api/kbs/town/search", json={"query": "乡镇"}).status_code == 200
    assert_error(client.patch("/api/kbs/nope", headers=ADMIN, json={"title": "x"}), 404)
    assert_error(client.delete("/api/kbs/default", headers=ADMIN), 409, "conflict")
    assert_error(client.delete("/api/kbs/nope", headers=ADMIN), 404)


def test_keys_are_shown_once_listed_by_prefix_and_revoked_at_once(app_client):
    client = app_client
    make_kb(client, "keyed", public=False)
    response = client.post("/api/keys", headers=ADMIN, json={"kbs": ["keyed"], "scope": "read", "label": "intranet"})
    made = response.json()
    assert response.status_code == 201 and made["key"].startswith(made["prefix"]) and made["kbs"] == ["keyed"]
    listed = client.get("/api/keys", headers=ADMIN).json()
    assert made["key"] not in json.dumps(listed)
    assert any(k["prefix"] == made["prefix"] and k["label"] == "intranet" for k in listed["data"])
    assert client.get("/api/kbs/keyed/documents", headers=bearer(made["key"])).status_code == 200
    assert_error(client.get("/api/keys", headers=bearer(made["key"])), 403, "forbidden")
    assert_error(client.post("/api/keys", headers=ADMIN, json={"kbs": ["nope"], "scope": "read"}), 422)
    assert_error(client.post("/api/keys", headers=ADMIN, json={"kbs": ["keyed"], "scope": "all"}), 422)
    assert client.delete(f"/api/keys/{made['key_id']}", headers=ADMIN).status_code == 200
    assert_error(client.get("/api/kbs/keyed/documents", headers=bearer(made["key"])), 401)
    assert_error(client.delete(f"/api/keys/{made['key_id']}", headers=ADMIN), 404)


def test_a_private_knowledge_base_wants_a_key_scoped_to_it(app_client):
    client = app_client
    make_kb(client, "private", public=False)
    make_kb(client, "other", public=False)
    read, write = make_key(client, ["private"], "read"), make_key(client, ["private"], "write")
    elsewhere = make_key(client, ["other"], "write")
    ask = {"question": QUESTION}
    assert_error(client.post("/api/kbs/private/ask", json=ask), 401, "unauthorized")
    assert_error(client.post("/api/kbs/private/search", json={"query": "乡镇"}), 401)
    assert_error(client.post("/api/kbs/private/ask", headers=bearer(elsewhere), json=ask), 403, "forbidden")
    assert_error(client.post("/api/kbs/private/ask", headers=bearer("pqa_00000000_wrong"), json=ask), 401)
    assert client.post("/api/kbs/private/ask", headers=bearer(read), json=ask).status_code == 200
    upload = {"files": ("a.txt", FACT.encode())}
    assert_error(client.post("/api/kbs/private/documents", headers=bearer(read), files=upload), 403)
    assert_error(client.post("/api/kbs/private/documents", files=upload), 401)
    assert_error(client.delete("/api/kbs/private/documents/x", headers=bearer(read)), 403)
    assert_error(client.post("/api/kbs/nope/ask", headers=bearer(read), json=ask), 404)
    assert_error(client.post("/api/documents", headers=bearer(write), files=upload), 403)  # not scoped to default
    assert client.post("/api/ask", headers=bearer(read), json=ask).status_code == 200  # default is public


def test_a_fact_uploaded_into_one_knowledge_base_is_cited_there_and_nowhere_else(app_client):
    client = app_client
    make_kb(client, "county", public=False)
    key = make_key(client, ["county"], "write")
    auth = bearer(key)
    assert client.get("/api/kbs/county/documents", headers=auth).json()["count"] == 0
    empty = client.post("/api/kbs/county/ask", headers=auth, json={"question": QUESTION}).json()
    assert not empty["answerable"] and empty["citations"] == []
    job = upload_and_wait(client, "county", auth)
    answer = client.post("/api/kbs/county/ask", headers=auth, json={"question": QUESTION}).json()
    assert answer["answerable"] and "7名" in answer["answer"] and cited(answer) == {job["doc_id"]}
    assert client.get(f"/api/kbs/county/documents/{job['doc_id']}", headers=auth).status_code == 200
    assert client.get("/api/kbs/county", headers=auth).json()["documents"] == 1

    default_ids = {d["doc_id"] for d in client.get("/api/documents").json()["data"]}
    assert job["doc_id"] not in default_ids and len(default_ids) == 9
    assert_error(client.get(f"/api/documents/{job['doc_id']}"), 404)
    plain = client.post("/api/ask", json={"question": QUESTION, "top_k": 20}).json()
    assert MARK not in json.dumps(plain["citations"], ensure_ascii=False) and job["doc_id"] not in cited(plain)
    hits = client.post("/api/search", json={"query": QUESTION, "top_k": 20}).json()["results"]
    assert all(h["doc_id"] in default_ids for h in hits)
    history = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": plain["answer"]}]
    followup = client.post("/api/ask", json={"question": "经费呢？", "history": history, "top_k": 20}).json()
    assert MARK not in json.dumps(followup["citations"], ensure_ascii=False) and job["doc_id"] not in cited(followup)
    stream = client.post("/api/ask", json={"question": QUESTION, "stream": True, "top_k": 20}).text
    assert "event: citations" in stream and job["doc_id"] not in stream and MARK not in stream.split("event: done")[0]
    chat = {"messages": [{"role": "user", "content": QUESTION}], "top_k": 20}
    v1 = client.post("/v1/chat/completions", json={**chat, "model": "policyqa"}).json()
    v1_citations = json.dumps(v1["choices"][0]["message"]["citations"], ensure_ascii=False)
    assert job["doc_id"] not in json.dumps(v1) and MARK not in v1_citations
    v1_county = client.post("/v1/chat/completions", headers=auth, json={**chat, "model": "county"}).json()
    assert v1_county["model"] == "county" and "7名" in v1_county["choices"][0]["message"]["content"]
    streamed = client.post("/v1/chat/completions", json={**chat, "model": "policyqa", "stream": True}).text
    assert "[DONE]" in streamed and job["doc_id"] not in streamed
    county_reply = v1_county["choices"][0]["message"]["content"]
    turns = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": county_reply}]
    v1_followup = {"model": "policyqa", "messages": [*turns, {"role": "user", "content": "经费呢？"}], "top_k": 20}
    followed = client.post("/v1/chat/completions", json=v1_followup).json()
    assert job["doc_id"] not in json.dumps(followed["choices"][0]["message"]["citations"])


def test_v1_models_are_the_knowledge_bases_the_key_may_read(app_client):
    client = app_client
    make_kb(client, "v1-private", public=False)
    key = make_key(client, ["v1-private"], "read")
    anonymous = {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert "policyqa" in anonymous and "v1-private" not in anonymous and "default" not in anonymous
    keyed = {m["id"] for m in client.get("/v1/models", headers=bearer(key)).json()["data"]}
    assert {"policyqa", "v1-private"} <= keyed
    assert client.get("/v1/models/v1-private", headers=bearer(key)).json()["id"] == "v1-private"
    chat = {"model": "v1-private", "messages": [{"role": "user", "content": QUESTION}]}
    refused = client.post("/v1/chat/completions", json=chat)
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    make_kb(client, "v1-other", public=False)
    other = make_key(client, ["v1-other"], "read")
    forbidden = client.post("/v1/chat/completions", headers=bearer(other), json=chat)
    assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "model_not_permitted"
    missing = client.post("/v1/chat/completions", json={**chat, "model": "nope"})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert client.post("/v1/chat/completions", headers=bearer(key), json=chat).status_code == 200


def test_knowledge_bases_load_lazily_are_evicted_and_deleted_with_their_documents(app_client):
    client = app_client
    kbs = client.app.state.kbs
    for kb_id in ("lru-a", "lru-b", "lru-c"):
        make_kb(client, kb_id, public=True)
        assert kb_id not in kbs.loaded_ids()  # made, not loaded
    for kb_id in ("lru-a", "lru-b", "lru-c", "lru-a"):
        assert client.post(f"/api/kbs/{kb_id}/search", json={"query": "乡镇"}).status_code == 200
    loaded = kbs.loaded_ids()
    assert loaded[0] == "default" and len(loaded) == 3 and loaded[-1] == "lru-a" and "lru-b" not in loaded
    assert client.post("/api/kbs/lru-b/ask", json={"question": QUESTION}).status_code == 200  # loaded again

    make_kb(client, "gone", public=False)
    key = make_key(client, ["gone"], "write")
    job = upload_and_wait(client, "gone", ADMIN, name="gone.txt")
    data_dir = kbs.data_dir("gone")
    assert data_dir.exists()
    deleted = client.delete("/api/kbs/gone", headers=ADMIN)
    assert deleted.status_code == 200 and not data_dir.exists()
    assert_error(client.post("/api/kbs/gone/ask", headers=ADMIN, json={"question": QUESTION}), 404)
    assert_error(client.get("/api/kbs/gone/documents", headers=bearer(key)), 404)
    assert key[:12] not in json.dumps(client.get("/api/keys", headers=ADMIN).json())  # it named only 'gone'
    assert_error(client.post("/api/kbs/gone/documents", headers=bearer(key), files={"files": ("a.txt", b"x")}), 404)
    make_kb(client, "gone", public=True)
    assert_error(client.post("/api/kbs/gone/documents", headers=bearer(key), files={"files": ("a.txt", b"x")}), 401)
    again = client.post("/api/kbs/gone/ask", json={"question": QUESTION, "top_k": 20}).json()
    assert job["doc_id"] not in cited(again) and client.get("/api/kbs/gone").json()["documents"] == 0


def test_the_cli_adds_to_and_asks_one_knowledge_base(app_client, tmp_path, capsys):
    from service.cli import main

    client = app_client
    data_dir = str(client.app.state.settings.data_dir)
    make_kb(client, "cli-kb", public=False)
    fact = tmp_path / "cli-fact.txt"
    fact.write_text(FACT, encoding="utf-8")
    assert main(["--data-dir", data_dir, "add", "--kb", "cli-kb", str(fact)]) == 0
    capsys.readouterr()
    assert main(["--data-dir", data_dir, "ask", "--kb", "cli-kb", QUESTION, "--json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["answerable"] and cited(body) == {"cli-fact"}
    assert main(["--data-dir", data_dir, "--kb", "default", "ask", QUESTION, "--json"]) == 0
    assert "cli-fact" not in cited(json.loads(capsys.readouterr().out))
    assert main(["--data-dir", data_dir, "ask", "--kb", "no-such-kb", QUESTION]) == 2
    assert "no knowledge base 'no-such-kb'" in capsys.readouterr().err
    # The server picks the CLI's build up: the fact is there, under a key's eyes only.
    key = make_key(client, ["cli-kb"], "read")
    assert client.get("/api/kbs/cli-kb/documents", headers=bearer(key)).json()["count"] == 1


def test_every_knowledge_base_route_is_in_the_openapi_schema_with_its_errors(app_client):
    schema = app_client.get("/openapi.json").json()
    paths = schema["paths"]
    expected = {
        "/api/kbs": {"get", "post"},
        "/api/kbs/{kb_id}": {"get", "patch", "delete"},
        "/api/kbs/{kb_id}/ask": {"post"},
        "/api/kbs/{kb_id}/search": {"post"},
        "/api/kbs/{kb_id}/documents": {"get", "post"},
        "/api/kbs/{kb_id}/documents/{doc_id}": {"get", "put", "delete"},
        "/api/kbs/{kb_id}/jobs/{job_id}": {"get"},
        "/api/keys": {"get", "post"},
        "/api/keys/{key_id}": {"delete"},
        "/api/ask": {"post"},
        "/v1/models": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(paths[path]), path
    ask = paths["/api/kbs/{kb_id}/ask"]["post"]
    kb_id = next(p for p in ask["parameters"] if p["name"] == "kb_id")
    assert kb_id["in"] == "path" and kb_id["schema"]["pattern"] == "^[a-z0-9_-]{1,64}$"
    assert {"401", "403", "404"} <= set(ask["responses"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids))


def test_caller_says_who_a_credential_is_and_refuses_one_that_matches_nothing(app_client):
    client = app_client
    make_kb(client, "caller-kb", public=False)
    write_key = make_key(client, ["caller-kb"], "write")
    assert client.get("/api/caller", headers=ADMIN).json() == {"role": "admin", "kbs": None}
    assert client.get("/api/caller", headers=bearer(write_key)).json() == {"role": "write", "kbs": ["caller-kb"]}
    for headers in ({}, bearer("wrong"), {"Authorization": "Basic abc"}):
        assert_error(client.get("/api/caller", headers=headers), 401, "unauthorized")
    assert "/api/caller" in client.get("/openapi.json").json()["paths"]


def test_evaluations_run_the_gold_set_for_the_admin_only_one_at_a_time(app_client):
    client = app_client
    write_key = make_key(client, ["default"], "write")
    assert_error(client.post("/api/evaluations", json={"modes": ["lexical"]}), 401, "unauthorized")
    assert_error(client.post("/api/evaluations", headers=bearer(write_key), json={}), 403, "forbidden")
    assert_error(client.post("/api/evaluations", headers=ADMIN, json={"modes": ["nope"]}), 422, "invalid_request")
    run = client.post("/api/evaluations", headers=ADMIN, json={"modes": ["lexical"]})
    assert run.status_code == 202, run.text
    run_id = run.json()["id"]
    assert_error(client.post("/api/evaluations", headers=ADMIN, json={}), 409, "conflict")
    deadline = time.monotonic() + 240
    while (body := client.get(f"/api/evaluations/{run_id}", headers=ADMIN).json())["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert body["state"] == "done" and body["progress"] == 1.0 and body["plot"], body
    assert body["summary"]["lexical"]["doc@3"] > 0.8 and body["abstention"]["configured"] > 0
    plot = client.get(f"/api/evaluations/{run_id}/plot.png", headers=ADMIN)
    assert plot.headers["content-type"] == "image/png" and plot.content.startswith(b"\x89PNG")
    assert [r["id"] for r in client.get("/api/evaluations", headers=ADMIN).json()["data"]][:1] == [run_id]
    make_kb(client, "eval-other", public=True)
    assert_error(client.get(f"/api/kbs/eval-other/evaluations/{run_id}", headers=ADMIN), 404, "not_found")
    assert_error(client.get("/api/kbs/no-such-kb/evaluations", headers=ADMIN), 404, "not_found")
    # Another knowledge base runs its own gold set (docs/feedback.md): none yet is a 409 that says so.
    refused = client.post("/api/kbs/eval-other/evaluations", headers=ADMIN, json={"modes": ["lexical"]})
    assert_error(refused, 409, "conflict")
    assert "no gold questions" in refused.json()["error"]["message"]
    asked = {"question": QUESTION, "answer": {"text": "", "answerable": False}, "verdict": "should_have_declined"}
    feedback_id = client.post("/api/kbs/eval-other/feedback", json=asked).json()["id"]
    client.patch(f"/api/kbs/eval-other/feedback/{feedback_id}", headers=ADMIN, json={"not_in_documents": True})
    assert client.post(f"/api/kbs/eval-other/feedback/{feedback_id}/gold", headers=ADMIN).status_code == 201
    # In an empty knowledge base some figures cannot be computed (no answer to check): null, not a 500.
    run_id = client.post("/api/kbs/eval-other/evaluations", headers=ADMIN, json={"modes": ["lexical"]}).json()["id"]
    deadline = time.monotonic() + 240
    while (body := client.get(f"/api/kbs/eval-other/evaluations/{run_id}", headers=ADMIN)).json()["state"] != "done":
        assert body.status_code == 200 and body.json()["state"] != "failed" and time.monotonic() < deadline, body.text
        time.sleep(0.2)
    summary = body.json()["summary"]["lexical"]
    assert body.json()["dataset"] == "gold-eval-other" and body.json()["questions"] == 1
    assert summary["faithful"] is None and summary["doc@1"] is None and summary["abstain_r"] == 1.0
