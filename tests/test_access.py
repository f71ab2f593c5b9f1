"""The access decision, as a table: caller x knowledge base x action."""

from __future__ import annotations

import pytest

from service.access import ADMIN, ANONYMOUS, Caller, Decision, KbAccess, decide

PUBLIC = KbAccess("town", public=True)
PRIVATE = KbAccess("staff", public=False)
READ_STAFF = Caller(kbs=frozenset({"staff"}), scope="read")
WRITE_STAFF = Caller(kbs=frozenset({"staff"}), scope="write")
WRITE_TOWN = Caller(kbs=frozenset({"town"}), scope="write")
A, U, F, N = Decision.ALLOW, Decision.UNAUTHENTICATED, Decision.FORBIDDEN, Decision.NOT_FOUND

TABLE = [
    # caller, kb, read, write, admin
    (ANONYMOUS, PUBLIC, A, U, U),
    (ANONYMOUS, PRIVATE, U, U, U),
    (ANONYMOUS, None, N, N, U),
    (READ_STAFF, PRIVATE, A, F, F),
    (READ_STAFF, PUBLIC, A, F, F),
    (READ_STAFF, None, N, N, F),
    (WRITE_STAFF, PRIVATE, A, A, F),
    (WRITE_STAFF, PUBLIC, A, F, F),
    (WRITE_TOWN, PRIVATE, F, F, F),
    (WRITE_TOWN, PUBLIC, A, A, F),
    (ADMIN, PUBLIC, A, A, A),
    (ADMIN, PRIVATE, A, A, A),
    (ADMIN, None, N, N, A),
]


@pytest.mark.parametrize(("caller", "kb", "read", "write", "admin"), TABLE)
def test_access_table(caller, kb, read, write, admin):
    assert [decide(caller, kb, action) for action in ("read", "write", "admin")] == [read, write, admin]


def test_without_an_admin_token_nobody_anonymous_may_change_anything():
    assert decide(ANONYMOUS, PUBLIC, "write", admin_enabled=False) is Decision.DISABLED
    assert decide(ANONYMOUS, PUBLIC, "admin", admin_enabled=False) is Decision.DISABLED
    assert decide(ANONYMOUS, PUBLIC, "read", admin_enabled=False) is Decision.ALLOW
    assert decide(WRITE_TOWN, PUBLIC, "write", admin_enabled=False) is Decision.ALLOW
