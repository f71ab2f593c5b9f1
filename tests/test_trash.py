"""The trash (service/trash.py): a delete kept for the retention window, restored with its id, first time and
metadata corrections, purged on demand, at expiry and with its knowledge base, leaving no text in the store's file.

The store and its clock are tested directly; the routes through real servers (retention 24 h, and 0 with an entry
left from before, which the start's sweep must purge); the console in tests/test_console_trash.py.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from index.stores.records import DocumentRecord
from service import trash as trash_module
from service.stores.records import MAX_BODY_BYTES, RECORDS_FILE, SqliteRecordStore, encoded_body
from service.trash import (
    CONTENTS_KIND,
    ENTRY_KIND,
    ORPHAN_AGE,
    TooLargeToKeepError,
    TrashBin,
    TrashedContents,
    pieces,
    sweep,
)
from service.trash_sweep import TrashSweeper
from tests.conftest import serve_seed_copy, start_server, stop_server
from tests.test_kbs import assert_error

TOKEN = "trash-admin-token-6"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
GRID = "关于调整街道网格员配备标准的通知\n一、配备标准\n每个社区网格配备专职网格员1名，按每300户1名核定。\n"
GRID_QUESTION = "社区网格员按每多少户配备1名？"
RECORD = DocumentRecord("doc", "标题", "a.pdf", "hash", 3, "upload", 2, "2023-05-01T08:00:00+00:00", "")


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def marked_text(marker: str) -> str:
    """A notice with a marker deep in its body (not its title), to be looked for in the store's bytes."""
    return GRID + f"二、核验\n本通知核验码为{marker}，仅供测试。\n"


def store_bytes(data_dir: Path) -> bytes:
    """The staff store's file and its write-ahead log, as on disk."""
    path = data_dir / RECORDS_FILE
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def checkpointed_bytes(data_dir: Path) -> bytes:
    with sqlite3.connect(data_dir / RECORDS_FILE) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return store_bytes(data_dir)


# -- the store, with a clock of our own ------------------------------------------------------------------------
def test_pieces_fit_a_record_whatever_the_escapes_and_join_back():
    text = "中" * 70_000 + "\x01" * 12_000 + '"\\' * 4_000 + "end"
    parts = pieces(text)
    assert "".join(parts) == text and len(parts) > 3
    for part in parts:
        assert len(encoded_body({"token": "0" * 16, "n": 99, "text": part}).encode()) <= MAX_BODY_BYTES
    assert pieces("") == []


def test_an_entry_keeps_everything_until_its_window_ends_then_nothing(tmp_path):
    store = SqliteRecordStore(tmp_path / RECORDS_FILE)
    now = [datetime(2024, 3, 1, tzinfo=UTC)]
    trash = TrashBin(store, "town", retention=timedelta(hours=2), now=lambda: now[0])
    marker = f"MARK{secrets.token_hex(6)}"
    contents = TrashedContents(
        "正文" * 40_000 + marker, ((0, 10), (11, 20)), (0.93, None), {"fields": {"kind": "通知"}}
    )
    entry = trash.keep(RECORD, contents, deleted_by="key abc (编办)")
    assert len(entry.part_ids) > 1 and entry.expires_at == "2024-03-01T02:00:00+00:00"
    assert trash.contents(entry) == contents and [e.entry_id for e in trash.entries()] == [entry.entry_id]
    assert marker.encode() in store_bytes(tmp_path)
    now[0] += timedelta(hours=1, minutes=59)
    assert trash.entry(entry.entry_id) == entry
    now[0] += timedelta(minutes=1)
    assert trash.entries() == [] and store.list(CONTENTS_KIND, None) == [] and store.list(ENTRY_KIND, None) == []
    assert marker.encode() not in store_bytes(tmp_path)  # zeroed in the file, and the log emptied by the store


def test_an_entry_and_its_parts_round_trip_through_milvus(milvus_uri):
    from service.stores.milvus_records import MilvusRecordStore

    store = MilvusRecordStore(milvus_uri, prefix=f"trash{secrets.token_hex(4)}")
    trash = TrashBin(store, "town", retention=timedelta(hours=1))
    contents = TrashedContents("条" * 60_000 + '"\x02' * 3_000, ((0, 9),), (0.81,), None)  # parts near the limit
    entry = trash.keep(RECORD, contents, deleted_by="admin")
    assert len(entry.part_ids) >= 4 and trash.contents(trash.entry(entry.entry_id)) == contents
    trash.purge(entry)
    assert store.list(ENTRY_KIND, None) == [] and store.list(CONTENTS_KIND, None) == []


def test_contents_too_large_to_list_in_one_entry_are_not_kept_at_all(tmp_path, monkeypatch):
    monkeypatch.setattr(trash_module, "MAX_PARTS", 2)
    store = SqliteRecordStore(tmp_path / RECORDS_FILE)
    with pytest.raises(TooLargeToKeepError):
        TrashBin(store, "town", retention=timedelta(hours=1)).keep(
            RECORD, TrashedContents("很" * 40_000, (), (), None), deleted_by="admin"
        )
    assert store.list(CONTENTS_KIND, None) == [] and store.list(ENTRY_KIND, None) == []


def test_a_shortened_window_applies_to_what_is_in_the_trash_and_0_keeps_nothing(tmp_path):
    store = SqliteRecordStore(tmp_path / RECORDS_FILE)
    now = datetime.now(UTC)
    kept = TrashBin(store, "town", retention=timedelta(days=7)).keep(RECORD, TrashedContents("文字", (), (), None),
                                                                      deleted_by="admin")  # fmt: skip
    shorter = TrashBin(store, "town", retention=timedelta(hours=1))
    assert shorter.entry(kept.entry_id).expires_at == (datetime.fromisoformat(kept.deleted_at)
                                                       + timedelta(hours=1)).isoformat()  # fmt: skip
    TrashBin(store, "other", retention=timedelta(days=7)).keep(RECORD, TrashedContents("文字", (), (), None),
                                                               deleted_by="admin")  # fmt: skip
    assert sweep(store, timedelta(days=7), now=lambda: now + timedelta(days=6)) == 0
    assert sweep(store, timedelta(0)) == 2
    assert store.list(ENTRY_KIND, None) == [] and store.list(CONTENTS_KIND, None) == []


def test_parts_an_interrupted_delete_left_are_purged_once_old(tmp_path):
    store = SqliteRecordStore(tmp_path / RECORDS_FILE)
    store.add(CONTENTS_KIND, "town", {"token": "lost", "n": 0, "text": "无主的文字"})
    kept = TrashBin(store, "town", retention=timedelta(days=1)).keep(RECORD, TrashedContents("文字", (), (), None),
                                                                     deleted_by="admin")  # fmt: skip
    sweep(store, timedelta(days=1), orphans=True)
    assert len(store.list(CONTENTS_KIND, None)) == 2  # young: perhaps another replica filing an entry now
    later = datetime.now(UTC) + ORPHAN_AGE + timedelta(minutes=1)
    sweep(store, timedelta(days=1), now=lambda: later, orphans=True)
    assert [r.record_id for r in store.list(CONTENTS_KIND, None)] == list(kept.part_ids)


def test_the_sweeper_purges_in_the_background(tmp_path):
    store = SqliteRecordStore(tmp_path / RECORDS_FILE)
    TrashBin(store, "town", retention=timedelta(seconds=1)).keep(RECORD, TrashedContents("文字", (), (), None),
                                                                 deleted_by="admin")  # fmt: skip
    sweeper = TrashSweeper(store, timedelta(seconds=1))
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while store.list(ENTRY_KIND, None) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        sweeper.close()
    assert store.list(ENTRY_KIND, None) == [] and store.list(CONTENTS_KIND, None) == []


# -- through a real server --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Served:
    url: str
    data_dir: Path


@pytest.fixture(scope="module")
def served(seed_data_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("trash-data")
    env = {"POLICYQA_ADMIN_TOKEN": TOKEN, "POLICYQA_TRASH_RETENTION_HOURS": "24"}
    process, url = serve_seed_copy(seed_data_dir, data_dir, env)
    yield Served(url, data_dir)
    output = stop_server(process)
    assert "Traceback" not in output, output


@pytest.fixture(scope="module")
def http(served):
    with httpx.Client(base_url=served.url, timeout=120) as client:
        yield client


def ok(response: httpx.Response, status: int = 200) -> dict:
    assert response.status_code == status, response.text
    return response.json()


def uploaded(http: httpx.Client, name: str, text: str, headers: dict = ADMIN, kb: str = "default") -> str:
    reply = ok(http.post(f"/api/kbs/{kb}/documents", headers=headers, files={"files": (name, text.encode())}), 202)
    job = reply["jobs"][0]
    deadline = time.monotonic() + 240
    while job["state"] not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
        job = ok(http.get(f"/api/kbs/{kb}/jobs/{job['id']}", headers=headers))
    assert job["state"] == "done", job
    return job["doc_id"]


def cited(http: httpx.Client, question: str, kb: str = "default", headers: dict = ADMIN) -> list[str]:
    body = ok(http.post(f"/api/kbs/{kb}/ask", headers=headers, json={"question": question}))
    return [c["doc_id"] for c in body["citations"]] if body["answerable"] else []


def test_a_deleted_document_is_restored_with_its_id_first_time_and_corrections(http):
    doc_id = uploaded(http, "grid-standard.txt", GRID)
    ok(http.patch(f"/api/documents/{doc_id}/metadata", headers=ADMIN, json={"doc_number": "某政办〔2024〕3号"}))
    before = ok(http.get(f"/api/documents/{doc_id}"))
    assert cited(http, GRID_QUESTION)[:1] == [doc_id]

    deleted = ok(http.delete(f"/api/documents/{doc_id}", headers=ADMIN))
    entry = deleted["trash"]
    assert deleted["deleted"] and entry["doc_id"] == doc_id and entry["deleted_by"] == "admin"
    assert 23 * 3600 < entry["expires_in_s"] <= 24 * 3600 and entry["size_bytes"] > len(GRID.encode())
    assert http.get(f"/api/documents/{doc_id}").status_code == 404 and doc_id not in cited(http, GRID_QUESTION)
    listed = ok(http.get("/api/trash", headers=ADMIN))
    newest = listed["data"][0]
    assert listed["retention_hours"] == 24 and newest.pop("expires_in_s") <= entry.pop("expires_in_s")
    assert newest == entry

    restored = ok(http.post(f"/api/trash/{entry['id']}/restore", headers=ADMIN), 202)
    assert restored["restored"] and restored["job"]["state"] == "done" and restored["entry"]["id"] == entry["id"]
    assert all(e["id"] != entry["id"] for e in ok(http.get("/api/trash", headers=ADMIN))["data"])
    after = ok(http.get(f"/api/documents/{doc_id}"))
    assert after["text"] == before["text"] and after["chunks"] == before["chunks"]
    assert after["added_at"] == before["added_at"] == entry["added_at"] and after["added_at"]
    metadata = ok(http.get(f"/api/documents/{doc_id}/metadata"))
    assert metadata["corrections"]["fields"]["doc_number"] == "某政办〔2024〕3号"
    assert metadata["policy"]["doc_number"] == "某政办〔2024〕3号"
    assert cited(http, GRID_QUESTION)[:1] == [doc_id]
    ok(http.delete(f"/api/documents/{doc_id}", headers=ADMIN))  # out of the way of the tests after


def test_a_purged_entry_leaves_no_text_in_the_store(http, served):
    marker = f"PURGE{secrets.token_hex(8)}"
    doc_id = uploaded(http, "purge-me.txt", marked_text(marker))
    entry = ok(http.delete(f"/api/documents/{doc_id}", headers=ADMIN))["trash"]
    assert marker.encode() in store_bytes(served.data_dir)  # kept while in the trash
    purged = ok(http.delete(f"/api/trash/{entry['id']}", headers=ADMIN))
    assert purged == {"id": entry["id"], "doc_id": doc_id, "purged": True}
    assert marker.encode() not in store_bytes(served.data_dir)  # as the server left it
    assert marker.encode() not in checkpointed_bytes(served.data_dir)
    assert_error(http.post(f"/api/trash/{entry['id']}/restore", headers=ADMIN), 404, "not_found")


def test_a_restore_over_an_id_taken_again_is_a_409_and_the_entry_stays(http):
    doc_id = uploaded(http, "uploaded-twice.txt", GRID.replace("300", "250"))
    entry = ok(http.delete(f"/api/documents/{doc_id}", headers=ADMIN))["trash"]
    assert uploaded(http, "uploaded-twice.txt", GRID.replace("300", "250")) == doc_id
    error = assert_error(http.post(f"/api/trash/{entry['id']}/restore", headers=ADMIN), 409, "conflict")
    assert doc_id in error["message"]
    assert any(e["id"] == entry["id"] for e in ok(http.get("/api/trash", headers=ADMIN))["data"])
    ok(http.delete(f"/api/trash/{entry['id']}", headers=ADMIN))
    ok(http.delete(f"/api/documents/{doc_id}", headers=ADMIN))


def test_unknown_entries_and_knowledge_bases_are_404_in_the_error_shape(http):
    for bad in ("no-such-entry", "0000000000000000-00000000", "%E4%B8%AD", "x" * 300):
        assert_error(http.post(f"/api/trash/{bad}/restore", headers=ADMIN), 404, "not_found")
        assert_error(http.delete(f"/api/trash/{bad}", headers=ADMIN), 404, "not_found")
    assert_error(http.get("/api/kbs/nowhere/trash", headers=ADMIN), 404, "not_found")
    assert_error(http.get("/api/trash"), 401, "unauthorized")


def test_another_base_keys_and_readers_are_refused_and_the_trail_names_the_key(http, served):
    ok(http.post("/api/kbs", headers=ADMIN, json={"kb_id": "town", "title": "Town", "public": False}), 201)
    ok(http.post("/api/kbs", headers=ADMIN, json={"kb_id": "other", "title": "Other", "public": False}), 201)
    made = ok(http.post("/api/keys", headers=ADMIN, json={"kbs": ["town"], "scope": "write", "label": "编办李四"}), 201)
    writer = bearer(made["key"])
    reader = bearer(ok(http.post("/api/keys", headers=ADMIN, json={"kbs": ["town"], "scope": "read"}), 201)["key"])
    stranger = bearer(ok(http.post("/api/keys", headers=ADMIN, json={"kbs": ["other"], "scope": "write"}), 201)["key"])
    doc_id = uploaded(http, "town-grid.txt", GRID, writer, "town")
    entry = ok(http.delete(f"/api/kbs/town/documents/{doc_id}", headers=writer))["trash"]
    assert entry["deleted_by"] == f"key {made['key_id']} (编办李四)"

    for refused in (reader, stranger):
        assert_error(http.get("/api/kbs/town/trash", headers=refused), 403, "forbidden")
        assert_error(http.post(f"/api/kbs/town/trash/{entry['id']}/restore", headers=refused), 403, "forbidden")
        assert_error(http.delete(f"/api/kbs/town/trash/{entry['id']}", headers=refused), 403, "forbidden")
    assert ok(http.get("/api/kbs/other/trash", headers=stranger))["data"] == []  # another base's entry is not here
    assert_error(http.delete(f"/api/kbs/other/trash/{entry['id']}", headers=stranger), 404, "not_found")

    ok(http.post(f"/api/kbs/town/trash/{entry['id']}/restore", headers=writer), 202)
    assert cited(http, GRID_QUESTION, "town", writer)[:1] == [doc_id]
    again = ok(http.delete(f"/api/kbs/town/documents/{doc_id}", headers=writer))["trash"]
    ok(http.delete(f"/api/kbs/town/trash/{again['id']}", headers=writer))
    trail = ok(http.get("/api/kbs/town/audit", headers=writer))["data"]
    assert [(r["action"], r["who"]) for r in trail[:4]] == [
        ("DELETE /api/kbs/{kb_id}/trash/{entry_id}", f"key {made['key_id']} (编办李四)"),
        ("DELETE /api/kbs/{kb_id}/documents/{doc_id}", f"key {made['key_id']} (编办李四)"),
        ("POST /api/kbs/{kb_id}/trash/{entry_id}/restore", f"key {made['key_id']} (编办李四)"),
        ("DELETE /api/kbs/{kb_id}/documents/{doc_id}", f"key {made['key_id']} (编办李四)"),
    ]
    assert trail[0]["detail"] == {"doc_id": doc_id, "title": "town-grid"}
    assert trail[1]["detail"] == {"trash_entry": again["id"]} and trail[2]["params"]["entry_id"] == entry["id"]


def test_deleting_a_knowledge_base_drops_its_trash(http, served):
    marker = f"KBGONE{secrets.token_hex(8)}"
    ok(http.post("/api/kbs", headers=ADMIN, json={"kb_id": "brief", "title": "Brief", "public": False}), 201)
    doc_id = uploaded(http, "brief.txt", marked_text(marker), ADMIN, "brief")
    ok(http.delete(f"/api/kbs/brief/documents/{doc_id}", headers=ADMIN))
    assert marker.encode() in store_bytes(served.data_dir)
    ok(http.delete("/api/kbs/brief", headers=ADMIN))
    assert marker.encode() not in checkpointed_bytes(served.data_dir)
    assert SqliteRecordStore(served.data_dir / RECORDS_FILE).list(ENTRY_KIND, "brief") == []


# -- a window of 0: today's delete, and nothing left from a window before ----------------------------------------
def test_with_no_window_a_delete_keeps_nothing_and_the_start_purges_what_was_kept(seed_data_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    for leftover in data_dir.glob(f"{RECORDS_FILE}*"):  # the session's server may have made one in the seed
        leftover.unlink()
    left, store = f"LEFT{secrets.token_hex(8)}", SqliteRecordStore(data_dir / RECORDS_FILE)
    TrashBin(store, "default", retention=timedelta(days=1)).keep(
        RECORD, TrashedContents(marked_text(left), (), (), None), deleted_by="admin"
    )
    assert left.encode() in store_bytes(data_dir)
    env = {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN}
    process, url = start_server(env)
    try:
        deadline = time.monotonic() + 30
        while store.list(ENTRY_KIND, None) and time.monotonic() < deadline:  # the start's sweep, before any call
            time.sleep(0.1)
        assert store.list(ENTRY_KIND, None) == [] and left.encode() not in checkpointed_bytes(data_dir)
        with httpx.Client(base_url=url, timeout=120) as client:
            listed = ok(client.get("/api/trash", headers=ADMIN))
            assert listed == {"data": [], "count": 0, "retention_hours": 0}
            marker = f"GONE{secrets.token_hex(8)}"
            doc_id = uploaded(client, "no-window.txt", marked_text(marker))
            deleted = ok(client.delete(f"/api/documents/{doc_id}", headers=ADMIN))
            assert deleted["deleted"] and deleted["trash"] is None
            assert client.get(f"/api/documents/{doc_id}").status_code == 404
    finally:
        output = stop_server(process)
    assert "Traceback" not in output, output
    assert store.list(ENTRY_KIND, None) == [] and store.list(CONTENTS_KIND, None) == []
    assert marker.encode() not in checkpointed_bytes(data_dir)
