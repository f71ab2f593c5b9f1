"""Who may do what in which knowledge base: one pure function, table-tested in tests/test_access.py.

Callers: anonymous, the admin token, or an API key (read or write, scoped to
some knowledge bases). Actions: ``read`` (ask, search, list and read
documents), ``write`` (upload, replace, delete documents; follow jobs) and
``admin`` (create, change and delete knowledge bases; manage keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

Action = Literal["read", "write", "admin"]


class Decision(Enum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"  # 401: send credentials
    FORBIDDEN = "forbidden"  # 403: these credentials do not grant it
    DISABLED = "disabled"  # 403: no admin token is configured, so nobody may change anything
    NOT_FOUND = "not_found"  # 404: no such knowledge base


@dataclass(frozen=True)
class Caller:
    admin: bool = False
    kbs: frozenset[str] = frozenset()  # what the key is scoped to
    scope: Literal["read", "write"] | None = None  # None: anonymous (or the admin)
    key_id: str | None = None  # the API key's id, for the record of who changed what
    label: str = ""

    @property
    def who(self) -> str:
        """The caller as a change's record names it: "admin", or the key's id and label."""
        if self.admin:
            return "admin"
        return f"key {self.key_id}" + (f" ({self.label})" if self.label else "") if self.key_id else "anonymous"

    @property
    def anonymous(self) -> bool:
        return not self.admin and self.scope is None


ANONYMOUS = Caller()
ADMIN = Caller(admin=True)


@dataclass(frozen=True)
class KbAccess:
    """What the decision needs to know about a knowledge base."""

    kb_id: str
    public: bool


def decide(caller: Caller, kb: KbAccess | None, action: Action, *, admin_enabled: bool = True) -> Decision:
    """Allow, or the reason not to; ``kb`` is None when the knowledge base does not exist."""
    if caller.admin:
        return Decision.ALLOW if kb is not None or action == "admin" else Decision.NOT_FOUND
    if kb is None and action != "admin":
        return Decision.NOT_FOUND
    if caller.anonymous:
        if action == "read" and kb is not None and kb.public:
            return Decision.ALLOW
        if action != "read" and not admin_enabled:
            return Decision.DISABLED
        return Decision.UNAUTHENTICATED
    if action == "admin" or kb is None:
        return Decision.FORBIDDEN
    scoped = kb.kb_id in caller.kbs
    if action == "read":
        return Decision.ALLOW if scoped or kb.public else Decision.FORBIDDEN
    return Decision.ALLOW if scoped and caller.scope == "write" else Decision.FORBIDDEN
