"""The knowledge-base registry and API keys over a real SQLite file."""

from __future__ import annotations

import sqlite3

import pytest

from index.errors import ConflictError, InvalidInputError, NotFoundError
from service.registry import DEFAULT_KB, Registry


@pytest.fixture
def registry(tmp_path) -> Registry:
    return Registry(tmp_path / "keys.sqlite3")


def test_default_exists_public_unless_configured(tmp_path):
    assert Registry(tmp_path / "a.sqlite3").kb(DEFAULT_KB).public
    assert not Registry(tmp_path / "b.sqlite3", default_public=False).kb(DEFAULT_KB).public


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
    raw = sqlite3.connect(registry.path).execute("SELECT * FROM api_keys").fetchall()
    assert made.key not in repr(raw) and made.key.split("_")[-1] not in repr(raw)
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
