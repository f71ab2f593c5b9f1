"""The term dictionary over HTTP: a synonym added through the API answers a question that failed, with no rebuild;
a protected word stays whole; entries record who added them; another knowledge base's key sees none of it."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import serve_seed_copy, stop_server

TOKEN = "terms-admin-token-31"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# The seed corpus says 开发区 (镇江: 5个开发区); 经开区 is nowhere in it.
QUESTION = "镇江市共有多少个经开区？"
ANSWER = "5个开发区"
GOLD_DOC = "zhenjiang-subdistrict-npc-work"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body


@pytest.fixture(scope="module")
def api(seed_data_dir, tmp_path_factory):
    process, base_url = serve_seed_copy(seed_data_dir, tmp_path_factory.mktemp("terms-data"),
                                        {"POLICYQA_ADMIN_TOKEN": TOKEN})  # fmt: skip
    with httpx.Client(base_url=base_url, timeout=60) as client:
        assert (
            client.post(
                "/api/kbs", headers=ADMIN, json={"kb_id": "other", "title": "Other", "public": False}
            ).status_code
            == 201
        )
        keys = {}
        for name, kbs in (("default", ["default"]), ("other", ["other"])):
            made = client.post(
                "/api/keys", headers=ADMIN, json={"kbs": kbs, "scope": "write", "label": f"{name} staff"}
            )
            assert made.status_code == 201, made.text
            keys[name] = made.json()
        yield client, keys
    output = stop_server(process)
    assert "Traceback" not in output, output


def ask(client: httpx.Client) -> dict:
    response = client.post("/api/ask", json={"question": QUESTION, "top_k": 5})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_synonym_added_through_the_api_answers_a_question_that_failed_with_no_rebuild(api):
    client, keys = api
    staff = bearer(keys["default"]["key"])
    build = client.get("/api/health").json()["build_id"]
    before = ask(client)
    assert not before["answerable"] and ANSWER not in "".join(before["answer"].split()), before["answer"]

    added = client.post("/api/terms", headers=staff, json={"canonical": "开发区", "variants": ["经开区"],
                                                           "kind": "synonym", "note": "镇江的说法"})  # fmt: skip
    assert added.status_code == 201, added.text
    entry = added.json()["term"]
    assert entry["added_by"] == f"key {keys['default']['key_id']} (default staff)" and entry["added_at"]
    assert added.json()["reindex_needed"] is False

    after = ask(client)
    assert after["answerable"] and ANSWER in "".join(after["answer"].split()), after["answer"]
    assert after["citations"][0]["doc_id"] == GOLD_DOC
    assert client.get("/api/health").json()["build_id"] == build  # no rebuild

    listed = client.get("/api/terms", headers=staff, params={"include_base": "true"}).json()
    assert [t["id"] for t in listed["data"]] == [entry["id"]]
    assert any(t["canonical"] == "街道办事处" for t in listed["base"])
    exported = client.get("/api/terms/export", headers=staff, params={"format": "csv"})
    assert exported.status_code == 200 and "经开区" in exported.text

    assert client.delete(f"/api/terms/{entry['id']}", headers=staff).status_code == 200
    assert not ask(client)["answerable"]  # used no more from the next question


def test_a_protected_word_stays_whole_and_says_the_documents_need_re_tokenising(api):
    client, keys = api
    staff = bearer(keys["default"]["key"])
    text = "综合行政执法大队的职责是什么"
    plain = client.post("/api/terms/analyze", headers=staff, json={"text": text}).json()
    assert "综合行政执法大队" not in plain["tokens"] and plain["reindex_needed"] is False

    added = client.post("/api/terms", headers=staff, json={"canonical": "综合行政执法大队", "kind": "protected"})
    assert added.status_code == 201, added.text
    assert added.json()["reindex_needed"] is True and added.json()["reindex_note"]
    kept = client.post("/api/terms/analyze", headers=staff, json={"text": text}).json()
    assert "综合行政执法大队" in kept["tokens"] and {"综合", "执法", "职责"} <= set(kept["tokens"])
    assert client.get("/api/terms", headers=staff).json()["reindex_needed"] is True

    changed = client.put(f"/api/terms/{added.json()['term']['id']}", headers=staff,
                         json={"canonical": "综合行政执法局", "kind": "protected"})  # fmt: skip
    assert changed.status_code == 200, changed.text
    assert changed.json()["term"]["updated_by"].startswith("key ") and changed.json()["term"]["added_at"]
    client.delete(f"/api/terms/{added.json()['term']['id']}", headers=staff)
    assert client.get("/api/terms", headers=staff).json()["reindex_needed"] is False


def test_another_knowledge_base_s_write_key_sees_none_of_it(api):
    client, keys = api
    staff, stranger = bearer(keys["default"]["key"]), bearer(keys["other"]["key"])
    entry = client.post("/api/terms", headers=staff, json={"canonical": "人大工委", "variants": ["街工委"],
                                                           "kind": "abbreviation"}).json()["term"]  # fmt: skip
    assert_error(client.get("/api/terms", headers=stranger), 403)
    assert_error(client.get("/api/kbs/default/terms", headers=stranger), 403)
    assert_error(client.delete(f"/api/terms/{entry['id']}", headers=stranger), 403)
    assert_error(client.delete(f"/api/kbs/other/terms/{entry['id']}", headers=stranger), 404)
    assert client.get("/api/kbs/other/terms", headers=stranger).json()["data"] == []
    assert_error(client.get("/api/terms"), 401)  # anonymous: staff data
    analyzed = client.post("/api/kbs/other/terms/analyze", headers=stranger, json={"text": "街工委有几个人"}).json()
    assert analyzed["expansions"] == []  # the other knowledge base's questions are read without it
    client.delete(f"/api/terms/{entry['id']}", headers=staff)


@pytest.mark.parametrize(
    "body",
    [
        {"canonical": "", "variants": ["经开区"], "kind": "synonym"},
        {"canonical": "开发区", "variants": [], "kind": "synonym"},
        {"canonical": "开发区" * 30, "variants": ["经开区"], "kind": "synonym"},
        {"canonical": "开发区", "variants": ["开发区"], "kind": "synonym"},
        {"canonical": "开发区", "variants": ["经开区", "经开区"], "kind": "synonym"},
        {"canonical": "开发区", "variants": ["经开区"], "kind": "protected"},
        {"canonical": "开发区", "variants": ["区"], "kind": "synonym"},
        {"canonical": "开发区", "variants": ["经开区"], "kind": "nickname"},
    ],
)
def test_bad_entries_are_refused_in_the_error_shape(api, body):
    client, keys = api
    assert_error(client.post("/api/terms", headers=bearer(keys["default"]["key"]), json=body), 422)


def test_a_duplicate_or_a_chain_is_a_conflict_and_an_import_adds_all_or_nothing(api):
    client, keys = api
    staff = bearer(keys["default"]["key"])
    first = client.post("/api/terms", headers=staff, json={"canonical": "开发区", "variants": ["经开区"],
                                                           "kind": "synonym"}).json()["term"]  # fmt: skip
    assert_error(client.post("/api/terms", headers=staff, json={"canonical": "开发区", "variants": ["开发园区"],
                                                               "kind": "synonym"}), 409)  # fmt: skip
    assert_error(client.post("/api/terms", headers=staff, json={"canonical": "经济开发区", "variants": ["经开区"],
                                                               "kind": "abbreviation"}), 409)  # fmt: skip
    batch = {"entries": [{"canonical": "高新区", "variants": ["高新园区"], "kind": "synonym"},
                         {"canonical": "园区", "variants": ["经开区"], "kind": "synonym"}]}  # fmt: skip
    assert_error(client.post("/api/terms/import", headers=staff, json=batch), 409)
    assert [t["id"] for t in client.get("/api/terms", headers=staff).json()["data"]] == [first["id"]]
    assert_error(client.put("/api/terms/0000-missing", headers=staff, json={"canonical": "高新区",
                                                                           "kind": "protected"}), 404)  # fmt: skip
    client.delete(f"/api/terms/{first['id']}", headers=staff)
