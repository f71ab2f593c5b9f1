"""The audit trail through a real server: every change filed with who made it and from where, read per knowledge
base by its write keys and in full by the admin, append-only and exported as JSON Lines."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.conftest import serve_seed_copy, stop_server

TOKEN = "audit-admin-token-5"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NOTICE = "关于调整街道网格员配备标准的通知\n一、配备标准\n每个社区网格配备专职网格员1名，按每300户1名核定。\n"


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture(scope="module")
def base_url(seed_data_dir, tmp_path_factory):
    process, url = serve_seed_copy(
        seed_data_dir, tmp_path_factory.mktemp("audit-data"), {"POLICYQA_ADMIN_TOKEN": TOKEN}
    )
    yield url
    output = stop_server(process)
    assert "Traceback" not in output, output


def made(response: httpx.Response, status: int = 201) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def wait_for(client: httpx.Client, url: str, headers: dict) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = client.get(url, headers=headers).json()
        if job["state"] in ("done", "failed"):
            assert job["state"] == "done", job
            return job
        time.sleep(0.2)
    raise AssertionError("the job did not finish")


def test_changes_are_filed_with_who_made_them_and_read_only_by_their_staff(base_url):
    with httpx.Client(base_url=base_url, timeout=60) as client:
        made(client.post("/api/kbs", headers=ADMIN, json={"kb_id": "town", "title": "Town", "public": False}))
        made(client.post("/api/kbs", headers=ADMIN, json={"kb_id": "other", "title": "Other", "public": False}))
        town_writer = made(
            client.post("/api/keys", headers=ADMIN, json={"kbs": ["town"], "scope": "write", "label": "编办张三"})
        )
        town_reader = made(client.post("/api/keys", headers=ADMIN, json={"kbs": ["town"], "scope": "read"}))
        other_writer = made(client.post("/api/keys", headers=ADMIN, json={"kbs": ["other"], "scope": "write"}))
        writer = bearer(town_writer["key"])

        upload = made(client.post("/api/kbs/town/documents", headers=writer,
                                  files={"files": ("grid.txt", NOTICE.encode())}), 202)  # fmt: skip
        job = wait_for(client, f"/api/kbs/town/jobs/{upload['jobs'][0]['id']}", writer)
        doc_id = job["doc_id"]
        made(client.patch(f"/api/kbs/town/documents/{doc_id}/metadata", headers=writer,
                          json={"doc_number": "某政办〔2024〕3号"}), 200)  # fmt: skip
        # Reads and refusals are not changes.
        made(
            client.post("/api/kbs/town/ask", headers=bearer(town_reader["key"]), json={"question": "网格员怎么配备"}),
            200,
        )
        assert client.patch(f"/api/kbs/town/documents/{doc_id}/metadata", headers=writer,
                            json={"no_such_field": "x"}).status_code == 422  # fmt: skip
        made(client.delete(f"/api/kbs/town/documents/{doc_id}", headers=writer), 200)

        trail = made(client.get("/api/kbs/town/audit", headers=writer), 200)
        actions = [record["action"] for record in trail["data"]]
        assert actions == [
            "DELETE /api/kbs/{kb_id}/documents/{doc_id}",
            "PATCH /api/kbs/{kb_id}/documents/{doc_id}/metadata",
            "POST /api/kbs/{kb_id}/documents",
        ], actions
        for record in trail["data"]:
            assert (
                record["who"] == f"key {town_writer['key_id']} (编办张三)" and record["key_id"] == town_writer["key_id"]
            )
            assert record["client"] == "127.0.0.1" and record["kb_id"] == "town" and record["status"] < 400
        assert trail["data"][0]["params"] == {"kb_id": "town", "doc_id": doc_id}

        # Only the knowledge base's write keys and the admin read it; another base's writer sees nothing of it.
        assert client.get("/api/kbs/town/audit", headers=bearer(town_reader["key"])).status_code == 403
        refused = client.get("/api/kbs/town/audit", headers=bearer(other_writer["key"]))
        assert refused.status_code in (403, 404) and set(refused.json()) == {"error"}
        assert made(client.get("/api/kbs/other/audit", headers=bearer(other_writer["key"])), 200)["data"] == []
        assert client.get("/api/admin/audit", headers=writer).status_code == 403

        everything = made(client.get("/api/admin/audit", headers=ADMIN, params={"limit": 1000}), 200)["data"]
        deployment = [record for record in everything if record["kb_id"] == "*"]
        assert [record["action"] for record in deployment].count("POST /api/keys") == 3
        key_made = next(record for record in deployment if record["detail"].get("key_id") == town_writer["key_id"])
        assert key_made["who"] == "admin" and key_made["detail"]["scope"] == "write"
        assert {"POST /api/kbs"} <= {record["action"] for record in deployment}

        # Paging and the JSON Lines export agree with the listing.
        first = made(client.get("/api/admin/audit", headers=ADMIN, params={"limit": 2}), 200)
        second = made(client.get("/api/admin/audit", headers=ADMIN,
                                 params={"limit": 2, "before": first["next_before"]}), 200)  # fmt: skip
        assert [r["record_id"] for r in first["data"] + second["data"]] == [r["record_id"] for r in everything[:4]]
        exported = client.get("/api/kbs/town/audit/export", headers=writer)
        assert exported.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in exported.text.splitlines()]
        assert [line["record_id"] for line in lines] == [record["record_id"] for record in trail["data"]]

        # Deleting the knowledge base keeps its trail, with the delete itself in it.
        made(client.delete("/api/kbs/town", headers=ADMIN), 200)
        kept = made(client.get("/api/admin/audit", headers=ADMIN, params={"limit": 1000}), 200)["data"]
        town = [record["action"] for record in kept if record["kb_id"] == "town"]
        assert town[0] == "DELETE /api/kbs/{kb_id}" and len(town) == 4
        assert client.get("/api/admin/audit", headers=ADMIN, params={"before": "x"}).status_code == 422


def test_each_staff_action_is_filed_with_the_key_that_did_it(base_url):
    with httpx.Client(base_url=base_url, timeout=120) as client:
        made(client.post("/api/kbs", headers=ADMIN, json={"kb_id": "staff", "title": "Staff", "public": False}))
        made(client.post("/api/kbs", headers=ADMIN, json={"kb_id": "elsewhere", "title": "E", "public": False}))
        writer_key = made(
            client.post("/api/keys", headers=ADMIN, json={"kbs": ["staff"], "scope": "write", "label": "乙"})
        )
        reader = bearer(made(client.post("/api/keys", headers=ADMIN, json={"kbs": ["staff"], "scope": "read"}))["key"])
        outsider = bearer(
            made(client.post("/api/keys", headers=ADMIN, json={"kbs": ["elsewhere"], "scope": "write"}))["key"]
        )
        writer = bearer(writer_key["key"])
        upload = made(client.post("/api/kbs/staff/documents", headers=writer,
                                  files={"files": ("grid.txt", NOTICE.encode())}), 202)  # fmt: skip
        doc_id = wait_for(client, f"/api/kbs/staff/jobs/{upload['jobs'][0]['id']}", writer)["doc_id"]

        term = {"canonical": "网格员", "variants": ["网格管理员"], "kind": "synonym", "note": ""}
        made(client.post("/api/kbs/staff/terms", headers=writer, json=term))
        pair = {"question": "社区网格员按多少户配备？", "answer": "按每300户1名核定。", "similar": [], "source": "测试"}
        wait_for(
            client,
            "/api/kbs/staff/jobs/"
            + made(client.post("/api/kbs/staff/faq", headers=writer, json=pair), 202)["job"]["id"],
            writer,
        )
        chunk = made(client.get(f"/api/kbs/staff/documents/{doc_id}/chunks", headers=writer), 200)["data"][0]
        corrected = {"text": chunk["text"].replace("1名", "一名"), "note": "统一写法"}
        made(
            client.patch(
                f"/api/kbs/staff/documents/{doc_id}/chunks/{chunk['chunk_id']}", headers=writer, json=corrected
            ),
            200,
        )
        verdict = {"question": "网格员怎么配备？", "answer": {"text": "无法回答", "answerable": False},
                   "verdict": "should_have_answered"}  # fmt: skip
        feedback_id = made(client.post("/api/kbs/staff/feedback", headers=reader, json=verdict))["id"]
        passage = {"passage": {"doc_id": doc_id, "quote": "按每300户一名核定"}}
        made(client.patch(f"/api/kbs/staff/feedback/{feedback_id}", headers=writer, json=passage), 200)
        made(client.post(f"/api/kbs/staff/feedback/{feedback_id}/gold", headers=writer, json={}))

        trail = made(client.get("/api/kbs/staff/audit", headers=writer), 200)["data"]
        by_action = {record["action"]: record for record in trail}
        for action in (
            "POST /api/kbs/{kb_id}/documents",
            "POST /api/kbs/{kb_id}/terms",
            "POST /api/kbs/{kb_id}/faq",
            "PATCH /api/kbs/{kb_id}/documents/{doc_id}/chunks/{chunk_id}",
            "PATCH /api/kbs/{kb_id}/feedback/{feedback_id}",
            "POST /api/kbs/{kb_id}/feedback/{feedback_id}/gold",
        ):
            assert by_action[action]["who"] == f"key {writer_key['key_id']} (乙)", (action, by_action[action])
        assert "POST /api/kbs/{kb_id}/feedback" not in by_action  # a reader's verdict reads, it changes nothing
        for path in ("audit", "terms", "feedback", "gold"):
            refused = client.get(f"/api/kbs/staff/{path}", headers=outsider)
            assert refused.status_code in (403, 404) and set(refused.json()) == {"error"}, (path, refused.text)
