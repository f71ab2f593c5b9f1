"""The staff record store's contract: SQLite (service/stores/records.py) and Milvus
(service/stores/milvus_records.py) on a real ``milvus-lite server`` answer the same."""

from __future__ import annotations

import secrets

import pytest

from index.errors import ConflictError, InvalidInputError, NotFoundError
from service.stores.records import MAX_BODY_BYTES, SqliteRecordStore


@pytest.fixture(params=["sqlite", "milvus"])
def make_store(request, tmp_path):
    """Stores over one backing store: with Milvus each call is another client, as another replica's would be."""
    if request.param == "sqlite":
        return lambda: SqliteRecordStore(tmp_path / "staff.sqlite3")
    from service.stores.milvus_records import MilvusRecordStore

    uri = request.getfixturevalue("milvus_uri")
    run = secrets.token_hex(4)
    return lambda: MilvusRecordStore(uri, prefix=f"run{run}")


def test_add_get_update_delete(make_store):
    store = make_store()
    added = store.add("feedback", "kba", {"verdict": "wrong", "question": "街道编制有多少"})
    other_replica = make_store()
    assert other_replica.get("feedback", "kba", added.record_id) == added
    assert store.get("feedback", "kbb", added.record_id) is None
    assert store.get("terms", "kba", added.record_id) is None
    updated = other_replica.update("feedback", "kba", added.record_id, {"verdict": "helpful"})
    assert updated.created_at == added.created_at and updated.body == {"verdict": "helpful"}
    assert store.get("feedback", "kba", added.record_id).body == {"verdict": "helpful"}
    store.delete("feedback", "kba", added.record_id)
    assert other_replica.get("feedback", "kba", added.record_id) is None
    with pytest.raises(NotFoundError):
        store.delete("feedback", "kba", added.record_id)
    with pytest.raises(NotFoundError):
        store.update("feedback", "kba", added.record_id, {})


def test_lists_newest_first_and_pages_on(make_store):
    store = make_store()
    made = [store.add("audit", "kba" if n % 2 else "kbb", {"n": n}) for n in range(7)]
    newest = store.list("audit", None, limit=3)
    assert [r.body["n"] for r in newest] == [6, 5, 4]
    assert [r.body["n"] for r in store.list("audit", None, limit=10, before=newest[-1].record_id)] == [3, 2, 1, 0]
    assert [r.body["n"] for r in store.list("audit", "kba")] == [5, 3, 1]
    assert store.list("feedback", None) == []
    assert sorted(r.record_id for r in made) == [r.record_id for r in made]


def test_forgetting_a_kb_keeps_the_kinds_asked_for(make_store):
    store = make_store()
    store.add("feedback", "kba", {"n": 1})
    store.add("audit", "kba", {"n": 2})
    store.add("feedback", "kbb", {"n": 3})
    store.forget_kb("kba", keep=frozenset({"audit"}))
    assert store.list("feedback", "kba") == []
    assert [r.body for r in store.list("audit", "kba")] == [{"n": 2}]
    assert [r.body for r in store.list("feedback", "kbb")] == [{"n": 3}]


def test_an_oversized_body_is_refused_and_nothing_is_kept(make_store):
    store = make_store()
    with pytest.raises(InvalidInputError):
        store.add("feedback", "kba", {"comment": "很" * MAX_BODY_BYTES})
    assert store.list("feedback", "kba") == []


def test_audit_records_are_append_only(make_store):
    store = make_store()
    filed = store.add("audit", "kba", {"action": "DELETE /api/documents/{doc_id}"})
    with pytest.raises(ConflictError):
        store.update("audit", "kba", filed.record_id, {"action": "nothing happened"})
    with pytest.raises(ConflictError):
        store.delete("audit", "kba", filed.record_id)
    assert store.get("audit", "kba", filed.record_id) == filed
