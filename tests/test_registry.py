"""The knowledge-base registry and API keys, one contract over both backends: a real SQLite file, and
Milvus (service/stores/milvus_registry.py) on a real ``milvus-lite server``."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from index.errors import ConflictError, InvalidInputError, NotFoundError
from service.stores.registry import DEFAULT_KB, SqliteRegistry


@pytest.fixture(params=["sqlite", "milvus"])
def make_registry(request, tmp_path):
    """Registries over one store: with Milvus, each call is another client, as another replica's would be."""
    if request.param == "sqlite":
        return lambda **options: SqliteRegistry(tmp_path / "keys.sqlite3", **options)
    from service.stores.milvus_registry import MilvusRegistry

    uri = request.getfixturevalue("milvus_uri")
    run = secrets.token_hex(4)  # each test starts from an empty registry
    return lambda **options: MilvusRegistry(uri, prefix=f"run{run}", **options)


@pytest.fixture
def registry(make_registry):
    return make_registry()


def _stored(registry) -> str:
    """Everything the backend keeps about keys, as text."""
    if isinstance(registry, SqliteRegistry):
        return repr(sqlite3.connect(registry.path).execute("SELECT * FROM api_keys").fetchall())
    return repr(registry._client.query(registry.keys_collection, filter='key_id != ""', output_fields=["*"]))


def test_default_exists_public_unless_configured(make_registry):
    assert make_registry().kb(DEFAULT_KB).public
    assert make_registry(default_public=False).kb(DEFAULT_KB).public  # made once: the first setting stays


def test_default_is_private_when_so_configured_first(make_registry):
    assert not make_registry(default_public=False).kb(DEFAULT_KB).public


def test_create_update_delete_kb(registry):
    created = registry.create_kb(kb_id="staff-1", title="Staff", public=False)
    assert (created.kb_id, created.title, created.description, created.public) == ("staff-1", "Staff", "", False)
    with pytest.raises(ConflictError):
        registry.create_kb(kb_id="staff-1", title="Again", public=True)
    for bad in ("", "A", "a" * 65, "a b", "../x", "ü"):
        with pytest.raises(InvalidInputError):
            registry.create_kb(kb_id=bad, title="x", public=True)
    updated = registry.update_kb("staff-1", description="内部", public=True)
    assert (updated.title, updated.description, updated.public) == ("Staff", "内部", True)
    assert [kb.kb_id for kb in registry.list_kbs()] == ["default", "staff-1"]
    registry.delete_kb("staff-1")
    assert registry.kb("staff-1") is None
    for call in (lambda: registry.delete_kb("staff-1"), lambda: registry.update_kb("nope", title="x")):
        with pytest.raises(NotFoundError):
            call()
    with pytest.raises(ConflictError):
        registry.delete_kb(DEFAULT_KB)


def test_keys_are_stored_hashed_found_by_secret_and_revoked_at_once(registry):
    registry.create_kb(kb_id="staff", title="Staff", public=False)
    made = registry.create_key(kbs=["staff", "default"], scope="read", label="intranet")
    assert made.key.startswith(made.record.prefix + "_") and len(made.key) > 40
    assert made.record.kbs == ("default", "staff") and made.record.scope == "read"
    assert registry.find_key(made.key) == made.record
    assert registry.find_key(made.key[:-1] + ("A" if made.key[-1] != "A" else "B")) is None
    assert registry.find_key("") is None and registry.find_key("pqa_nothing") is None
    raw = _stored(registry)
    assert made.key not in raw and made.key.split("_")[-1] not in raw
    assert [k.label for k in registry.list_keys()] == ["intranet"]
    registry.delete_key(made.record.key_id)
    assert registry.find_key(made.key) is None and registry.list_keys() == []
    with pytest.raises(NotFoundError):
        registry.delete_key(made.record.key_id)


def test_a_key_names_existing_knowledge_bases_and_loses_a_deleted_one(registry):
    with pytest.raises(InvalidInputError):
        registry.create_key(kbs=["nope"], scope="read")
    with pytest.raises(InvalidInputError):
        registry.create_key(kbs=[], scope="read")
    registry.create_kb(kb_id="a", title="A", public=False)
    registry.create_kb(kb_id="b", title="B", public=False)
    both = registry.create_key(kbs=["a", "b"], scope="write")
    only_a = registry.create_key(kbs=["a"], scope="read")
    registry.delete_kb("a")
    assert registry.find_key(both.key).kbs == ("b",)
    assert registry.find_key(only_a.key) is None  # no knowledge base left: revoked
    registry.create_kb(kb_id="a", title="A again", public=False)
    assert registry.find_key(both.key).kbs == ("b",)  # a new 'a' is not the old one


def test_a_key_made_through_one_replica_is_honoured_and_revoked_through_another(make_registry):
    first, second = make_registry(), make_registry()
    first.create_kb(kb_id="staff", title="Staff", public=False)
    assert second.kb("staff").title == "Staff"
    made = first.create_key(kbs=["staff"], scope="write", label="county office")
    assert second.find_key(made.key) == made.record
    second.delete_key(made.record.key_id)
    assert first.find_key(made.key) is None


def test_a_malformed_key_matches_nothing(registry):
    registry.create_key(kbs=["default"], scope="read")
    for key in ('pqa_" or prefix != "', "pqa_0000000g_x", "x" * 300, "pqa_\u0000"):
        assert registry.find_key(key) is None


def test_the_store_setting_picks_the_registry(tmp_path, milvus_uri):
    from service.settings import Settings
    from service.stores.factory import open_registry
    from service.stores.milvus_registry import MilvusRegistry

    assert isinstance(open_registry(Settings(data_dir=tmp_path, _env_file=None)), SqliteRegistry)
    shared = Settings(data_dir=tmp_path, store="milvus", milvus_uri=milvus_uri, _env_file=None)
    made = open_registry(shared).create_key(kbs=["default"], scope="read")
    assert isinstance(open_registry(shared), MilvusRegistry)
    assert open_registry(shared).find_key(made.key) == made.record
    open_registry(shared).delete_key(made.record.key_id)


def test_two_deployments_on_one_milvus_share_no_knowledge_base_key_job_or_lock(milvus_uri):
    """POLICYQA_MILVUS_PREFIX once named only the index collections: registries, jobs and locks were shared."""
    from index.stores.milvus.lock import MilvusWriterLock, lock_collection
    from service.settings import Settings
    from service.stores.factory import open_registry, shared_job_store, shared_writer_lock
    from service.stores.jobs import Job

    run = secrets.token_hex(4)
    alpha, beta = (
        Settings(store="milvus", milvus_uri=milvus_uri, milvus_prefix=f"{name}{run}") for name in ("alpha", "beta")
    )
    open_registry(alpha).create_kb(kb_id="reform", title="Reform", public=False)
    assert open_registry(alpha).kb("reform") is not None
    assert open_registry(beta).kb("reform") is None
    issued = open_registry(alpha).create_key(kbs=["default"], scope="read")
    assert open_registry(beta).find_key(issued.key) is None

    job = Job(id=secrets.token_hex(8), kind="add", doc_id="d", filename="d.txt")
    shared_job_store(alpha, "default").put(job)
    assert shared_job_store(beta, "default").get(job.id) is None

    held = MilvusWriterLock(milvus_uri, name="kb:default", collection=lock_collection(alpha.milvus_prefix))
    held.acquire(timeout_s=10)
    try:
        with shared_writer_lock(beta, "default")():  # another deployment's lock of the same name is free
            pass
    finally:
        held.release()


def test_document_corrections_are_kept_per_knowledge_base_replaced_whole_and_forgotten(make_registry):
    registry, replica = make_registry(), make_registry()
    registry.create_kb(kb_id="town", title="Town", public=True)
    correction = {"fields": {"doc_number": "豫编办〔2019〕12号"}, "validity": None, "set_by": "admin", "set_at": "now"}
    registry.put_document_override("town", "notice/1", correction)
    registry.put_document_override("default", "notice/1", {"fields": {"kind": "通知"}})
    assert replica.document_overrides("town") == {"notice/1": correction}  # another replica reads it at once
    registry.put_document_override("town", "notice/1", {"fields": {"kind": "办法"}})
    assert replica.document_overrides("town") == {"notice/1": {"fields": {"kind": "办法"}}}
    registry.put_document_override("town", "notice/1", None)
    assert replica.document_overrides("town") == {}
    registry.put_document_override("town", "other", {"fields": {"kind": "意见"}})
    registry.delete_kb("town")
    assert replica.document_overrides("town") == {}  # a deleted knowledge base takes its corrections with it
    assert replica.document_overrides("default") == {"notice/1": {"fields": {"kind": "通知"}}}


def test_a_keys_last_use_is_written_at_most_once_a_minute_and_goes_with_the_key(make_registry):
    registry = make_registry()
    made = registry.create_key(kbs=["default"], scope="read", label="busy")
    assert registry.key_uses() == {}  # never used
    start = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    registry.note_key_use(made.record.key_id, now=start)
    assert registry.key_uses() == {made.record.key_id: "2026-01-05T09:00:00+00:00"}
    registry.note_key_use(made.record.key_id, now=start + timedelta(seconds=59))  # a busy key: no write
    assert make_registry().key_uses()[made.record.key_id] == "2026-01-05T09:00:00+00:00"  # any replica reads it
    registry.note_key_use(made.record.key_id, now=start + timedelta(seconds=61))
    assert registry.key_uses()[made.record.key_id] == "2026-01-05T09:01:01+00:00"
    assert registry.find_key(made.key) == made.record  # finding a key writes nothing
    registry.delete_key(made.record.key_id)
    registry.note_key_use(made.record.key_id, now=start + timedelta(minutes=5))  # revoked: nothing noted
    assert registry.key_uses() == {}


def test_a_registry_file_from_before_last_use_opens_with_its_keys(tmp_path):
    path = tmp_path / "keys.sqlite3"
    SqliteRegistry(path).create_kb(kb_id="staff", title="Staff", public=False)
    made = SqliteRegistry(path).create_key(kbs=["staff"], scope="write", label="old")
    with sqlite3.connect(path) as db:  # the file as an older release left it: no last_used_at column
        db.execute("ALTER TABLE api_keys DROP COLUMN last_used_at")
    reopened = SqliteRegistry(path)
    assert reopened.find_key(made.key) == made.record
    reopened.note_key_use(made.record.key_id)
    assert list(reopened.key_uses()) == [made.record.key_id]
