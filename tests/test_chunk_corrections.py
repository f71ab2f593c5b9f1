"""Chunk corrections through the real server over HTTP (docs/corrections.md): one chunk's text corrected, only it
embedded again, cited with the new text, its versions and diff kept, rolled back, and seen by no other knowledge
base's key. The backends' side is in index/stores/contract.py (CorrectChunkContract), on local and Milvus."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import serve_seed_copy, stop_server

TOKEN = "corrections-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
DOC = "luotuo-subdistrict-operating-mechanism-2019"
OLD, NEW = "精简了有关机构16个", "精简了有关机构23个"
QUESTION = "镇海区通过撤并重组后精简了多少个机构？"


@pytest.fixture(scope="module")
def http(seed_data_dir, tmp_path_factory):
    process, base_url = serve_seed_copy(seed_data_dir, tmp_path_factory.mktemp("corrections"),
                                        {"POLICYQA_ADMIN_TOKEN": TOKEN})  # fmt: skip
    with httpx.Client(base_url=base_url, timeout=120.0) as client:
        yield client
    assert "Traceback" not in stop_server(process)


def key(http, kbs: list[str], label: str) -> dict:
    made = http.post("/api/keys", headers=ADMIN, json={"kbs": kbs, "scope": "write", "label": label})
    assert made.status_code in (200, 201), made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


def target_chunk(http, headers) -> dict:
    chunks = http.get(f"/api/documents/{DOC}/chunks", headers=headers).json()["data"]
    return next(c for c in chunks if OLD in c["text"] or NEW in c["text"])


def quoted(http, headers) -> tuple[str, list[dict]]:
    body = http.post("/api/ask", headers=headers, json={"question": QUESTION}).json()
    return body["answer"], body["citations"]


def test_a_corrected_chunk_is_cited_with_its_new_text_and_rolls_back(http):
    staff = key(http, ["default"], "staff")
    chunk = target_chunk(http, staff)
    answer, _ = quoted(http, staff)
    assert "16" in answer, answer

    response = http.patch(f"/api/documents/{DOC}/chunks/{chunk['chunk_id']}", headers=staff,
                          json={"text": chunk["text"].replace(OLD, NEW), "note": "OCR 误识"})  # fmt: skip
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["version"] == 1 and done["chunk"]["ordinal"] == chunk["ordinal"] and done["chunk"]["corrected"]
    sentences = len([s for s in done["chunk"]["text"].replace("\n", "。").split("。") if s.strip()])
    assert 2 <= done["embedded_passages"] <= sentences + 1  # the chunk and its sentences, nothing else
    assert {"op": "delete", "text": "16"} in done["diff"] and {"op": "insert", "text": "23"} in done["diff"]

    answer, citations = quoted(http, staff)
    assert "23" in answer and "16" not in answer, answer
    lead = next(c for c in citations if c["doc_id"] == DOC)
    assert lead["chunk_id"] == done["chunk"]["chunk_id"] and NEW in lead["text"] and OLD not in lead["text"]

    history = http.get(f"/api/documents/{DOC}/chunks/{done['chunk']['chunk_id']}/corrections", headers=staff).json()
    assert history["original"] == chunk["text"] and history["count"] == 1
    (version,) = history["versions"]
    assert (version["set_by"].startswith("key "), version["note"], version["text"]) == (
        True,
        "OCR 误识",
        done["chunk"]["text"],
    )
    listed = {d["doc_id"]: d for d in http.get("/api/documents", headers=staff).json()["data"]}
    assert (
        listed[DOC]["corrections"] == 1 and http.get(f"/api/documents/{DOC}", headers=staff).json()["corrections"] == 1
    )

    back = http.post(f"/api/documents/{DOC}/chunks/{done['chunk']['chunk_id']}/rollback", headers=staff, json={})
    assert back.status_code == 200, back.text
    assert back.json()["chunk"]["text"] == chunk["text"] and not back.json()["chunk"]["corrected"]
    answer, _ = quoted(http, staff)
    assert "16" in answer and "23" not in answer, answer
    history = http.get(f"/api/documents/{DOC}/chunks/{back.json()['chunk']['chunk_id']}/corrections", headers=staff)
    assert [(v["version"], v["action"], v["rollback_to"]) for v in history.json()["versions"]] == [
        (2, "rollback", 0), (1, "correct", None)]  # fmt: skip
    assert {d["doc_id"]: d for d in http.get("/api/documents", headers=staff).json()["data"]}[DOC]["corrections"] == 0
    trail = http.get("/api/audit", headers=ADMIN)
    if trail.status_code == 200:  # the audit trail's own tests cover it; here: who did it is there
        assert "staff" in trail.text


def test_another_knowledge_base_s_key_and_bad_input_are_refused_in_the_error_shape(http):
    assert http.post("/api/kbs", headers=ADMIN, json={"kb_id": "elsewhere", "title": "别处", "public": False})
    stranger = key(http, ["elsewhere"], "stranger")
    staff = key(http, ["default"], "staff-2")
    chunk = target_chunk(http, staff)
    path = f"/api/documents/{DOC}/chunks/{chunk['chunk_id']}"
    for response in (
        http.patch(path, headers=stranger, json={"text": "改动"}),
        http.get(f"{path}/corrections", headers=stranger),
        http.post(f"{path}/rollback", headers=stranger, json={}),
        http.patch(
            f"/api/kbs/elsewhere/documents/{DOC}/chunks/{chunk['chunk_id']}", headers=stranger, json={"text": "改动"}
        ),  # fmt: skip
    ):
        assert response.status_code in (401, 403, 404), response.text
        assert set(response.json()["error"]) >= {"code", "message"}
    for body, status in (({"text": ""}, 422), ({"text": "   "}, 422), ({"text": "字" * 2001}, 422),
                         ({"text": chunk["text"]}, 422), ({"note": "x"}, 422)):  # fmt: skip
        response = http.patch(path, headers=staff, json=body)
        assert response.status_code == status, (body, response.text)
        assert set(response.json()["error"]) >= {"code", "message"}
    assert http.patch(f"/api/documents/{DOC}/chunks/999999999", headers=staff, json={"text": "x"}).status_code == 404
    assert http.patch("/api/documents/nope/chunks/1", headers=staff, json={"text": "x"}).status_code == 404
    unknown = http.post(f"{path}/rollback", headers=staff, json={"version": 99})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    current = http.post(f"{path}/rollback", headers=staff, json={})  # it reads as the original already
    assert current.status_code == 422 and current.json()["error"]["code"] == "invalid_input"
