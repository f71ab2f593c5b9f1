"""One writer at a time across replicas, agreed through rows in a Milvus collection.

Why an algorithm of our own: Milvus offers inserts, deletes and strongly
consistent reads of rows, and nothing conditional (no compare-and-swap, no
transaction; an insert of an existing key silently replaces it). Lamport's
bakery algorithm needs only what there is, reads of every contender's row and
writes of one's own, and gives mutual exclusion without deadlock, first come
first served.

Rows: each state of a contender is a row ``(name, owner, version, choosing,
ticket, expires_at)`` keyed ``name/owner/version``. A new state is written by
inserting the next version and only then deleting the older ones, so a reader
sees the old state or the new one, never neither, whatever the server does
inside an upsert. A contender's state is its row of highest version; no row
means it is not contending. Every acquisition takes a fresh owner id.

Taking the lock (contender i, owner id o_i, ids compared as strings):
  1. write (choosing, ticket 0);
  2. read all rows of the lock: t_i = 1 + the largest ticket seen;
  3. write (not choosing, t_i);
  4. read all rows; for each other contender j among them, wait until a read
     shows j gone, or j not choosing with (t_j, o_j) > (t_i, o_i), or j's lease
     expired. Then i holds the lock. Releasing deletes i's rows.

Why two never hold it at once: say i and j both passed step 4, i passing j at
read r_i and j passing i at read r_j; each read follows its reader's step 3.
(a) r_i showed j gone (a contender that first appears after i's first step-4
read is this case too): j's step 1 came after r_i, so its step 2 read came
after i's step 3 and t_j > t_i; i's row stays (not choosing, t_i) until i
releases, so r_j can show i neither gone nor behind j, a contradiction.
(b) r_i showed j with (t_j, o_j) > (t_i, o_i): r_j cannot show i with a larger
pair, and cannot show i gone either, as then i's step 2 would follow j's step
3 and t_i > t_j. The proof uses one property of the store: a read returns every
write that completed before it began (Milvus's Strong consistency level; one
milvus-lite process gives it trivially).

Leases, the only use of clocks: a contender killed while holding the lock
would hold it forever, so each row carries ``expires_at`` (wall clock, read on
every replica), a thread writes a fresh row every ``lease_s / 4`` while the
contender has rows, and the others treat a row as gone once ``now >
expires_at + max_skew_s``. A contender counts itself alive only while each
renewal completes before ``expires_at - max_skew_s`` of the row it replaces;
once one does not, it is *lost*: a waiting contender starts over under a new
owner id, and the holder's ``ensure_held()`` raises ``LockLostError``.
Assumptions: replicas' clocks differ by less than ``max_skew_s``; the holder
calls ``ensure_held()`` (``ensure_locks_held()``: every lock of the thread)
before each write of its work, so after a lost lease at most the write already
in flight lands (Milvus has no fencing token that could refuse it: the gap
every lease without one leaves). Deadlines and polling use the monotonic clock.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from index.errors import LockLostError, LockTimeoutError
from index.stores.milvus.client import Column, ensure_table, milvus_client, quoted, with_placeholder

logger = logging.getLogger(__name__)

LOCK_COLLECTION = "policyqa_locks"  # under the default POLICYQA_MILVUS_PREFIX, "policyqa"


def lock_collection(prefix: str) -> str:
    """The lock collection of one deployment: two deployments on one Milvus never share a lock."""
    return f"{prefix}_locks"


_KEY = Column("key", "VARCHAR", 512)
_COLUMNS = (
    Column("name", "VARCHAR", 128),
    Column("owner", "VARCHAR", 256),
    Column("version", "INT64"),
    Column("choosing", "BOOL"),
    Column("ticket", "INT64"),
    Column("expires_at", "DOUBLE"),
)
_FIELDS = [column.name for column in _COLUMNS]
POLL_FIRST_S, POLL_MAX_S = 0.02, 0.25
_held_here = threading.local()  # the locks this thread holds: its writes are made under all of them


def locks_held_here() -> list[MilvusWriterLock]:
    return getattr(_held_here, "locks", [])


def ensure_locks_held() -> None:
    """Raise ``LockLostError`` if a writer lock this thread holds has lapsed; a writer calls it before each
    write and before its commit, so a replica whose lease lapsed stops there (the job's ``kb:`` lock and the
    index's lock alike)."""
    for lock in locks_held_here():
        lock.ensure_held()


@dataclass(frozen=True)
class Contender:
    owner: str
    version: int
    choosing: bool
    ticket: int
    expires_at: float

    def precedes(self, ticket: int, owner: str) -> bool:
        return (self.ticket, self.owner) < (ticket, owner)


class MilvusWriterLock:
    """A named lock over ``uri``; ``acquire``/``release``, or use it as a context manager."""

    def __init__(
        self, uri: str, *, name: str = "writer", lease_s: float = 15.0, max_skew_s: float = 1.0,
        collection: str = LOCK_COLLECTION,
    ) -> None:  # fmt: skip
        if not 0 < 4 * max_skew_s < lease_s:
            raise ValueError("lease_s must exceed four times max_skew_s (and max_skew_s be positive)")
        self.name, self.lease_s, self.max_skew_s, self.collection = name, lease_s, max_skew_s, collection
        self._client = milvus_client(uri)
        ensure_table(self._client, collection, key=_KEY, columns=_COLUMNS)
        self._state_lock = threading.Lock()  # the heartbeat and the caller both write this contender's rows
        self._owner: str | None = None
        self._version, self._choosing, self._ticket, self._expires_at = 0, False, 0, 0.0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        self.held = False

    # -- taking and giving back --------------------------------------------
    def acquire(self, timeout_s: float | None = None) -> None:
        """Wait until this contender holds the lock; ``LockTimeoutError`` after ``timeout_s`` seconds."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            self._enter_contest()
            try:
                if self._wait_for_turn(deadline):
                    self.held = True
                    _held_here.locks = [*locks_held_here(), self]
                    return
            except BaseException:
                self._leave_contest()
                raise
            self._leave_contest()  # lost our lease while waiting: start over with a new ticket
            logger.warning("writer lock %r: lease lapsed while waiting; taking a new ticket", self.name)

    def release(self) -> None:
        self.held = False
        _held_here.locks = [lock for lock in locks_held_here() if lock is not self]
        self._leave_contest()

    def ensure_held(self) -> None:
        """Raise ``LockLostError`` unless the lock is still ours (call before each write made under it)."""
        if not self.held or self._lost.is_set() or time.time() >= self._expires_at - self.max_skew_s:
            raise LockLostError(f"the writer lock {self.name!r} is no longer held (its lease lapsed)")

    def __enter__(self) -> MilvusWriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    # -- the bakery ----------------------------------------------------------
    def _enter_contest(self) -> None:
        self._owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self._version, self._expires_at = 0, 0.0
        self._lost.clear()
        self._stop.clear()
        self._write(choosing=True, ticket=0)  # step 1
        self._heartbeat = threading.Thread(target=self._renew, name=f"policyqa-lock-{self.name}", daemon=True)
        self._heartbeat.start()
        others = self._others()  # step 2
        self._write(choosing=False, ticket=1 + max((c.ticket for c in others), default=0))  # step 3

    def _wait_for_turn(self, deadline: float | None) -> bool:
        """Step 4: True once every contender seen first has passed; False if our lease lapsed."""
        waiting = {c.owner for c in self._others()}
        pause = POLL_FIRST_S
        while waiting:
            if self._lost.is_set():
                return False
            now = time.time()
            current = {c.owner: c for c in self._others()}
            waiting = {owner for owner in waiting if owner in current and self._blocks(current[owner], now)}
            if not waiting:
                break
            if deadline is not None and time.monotonic() >= deadline:
                holders = ", ".join(sorted(waiting))
                raise LockTimeoutError(f"the writer lock {self.name!r} was not free in time (ahead: {holders})")
            time.sleep(pause)
            pause = min(pause * 1.5, POLL_MAX_S)
        return not self._lost.is_set() and time.time() < self._expires_at - self.max_skew_s

    def _blocks(self, other: Contender, now: float) -> bool:
        if now > other.expires_at + self.max_skew_s:
            return False  # its lease lapsed: it knows it lost, and stops
        return other.choosing or other.precedes(self._ticket, self._owner or "")

    def _others(self) -> list[Contender]:
        """Every other contender's latest state; rows whose lease lapsed are cleared away."""
        rows = self._client.query(self.collection, filter=f"name == {quoted(self.name)}", output_fields=_FIELDS)
        latest: dict[str, Contender] = {}
        for row in rows:
            state = Contender(
                row["owner"], int(row["version"]), bool(row["choosing"]), int(row["ticket"]), float(row["expires_at"])
            )
            known = latest.get(state.owner)
            if state.owner != self._owner and (known is None or state.version > known.version):
                latest[state.owner] = state
        now = time.time()
        for gone in [c for c in latest.values() if now > c.expires_at + self.max_skew_s + self.lease_s]:
            self._delete(gone.owner, up_to_version=gone.version)
        return list(latest.values())

    # -- this contender's rows -------------------------------------------------
    def _write(self, *, choosing: bool | None = None, ticket: int | None = None) -> None:
        """Insert our next state (by default the current one, renewed), then delete the older ones;
        marks us lost if the write landed too late."""
        with self._state_lock:
            if self._owner is None or self._lost.is_set():
                return
            choosing = self._choosing if choosing is None else choosing
            ticket = self._ticket if ticket is None else ticket
            started = time.time()
            version, expires_at = self._version + 1, started + self.lease_s
            row = dict(
                key=f"{self.name}/{self._owner}/{version}", name=self.name, owner=self._owner, version=version,
                choosing=choosing, ticket=ticket, expires_at=expires_at,
            )  # fmt: skip
            self._client.insert(self.collection, with_placeholder([row]))
            if self._version and time.time() >= self._expires_at - self.max_skew_s:
                self._lost.set()  # others may have judged our previous row lapsed before this one landed
                return
            self._version, self._choosing, self._ticket, self._expires_at = version, choosing, ticket, expires_at
            self._delete(self._owner, up_to_version=version - 1)

    def _renew(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            try:
                self._write()
            except Exception:  # Milvus unreachable for a moment: the next beat tries again
                logger.warning("writer lock %r: renewing the lease failed", self.name, exc_info=True)
            if self._lost.is_set():
                logger.error("writer lock %r: lease lapsed", self.name)
                return

    def _leave_contest(self) -> None:
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(self.lease_s)
            self._heartbeat = None
        with self._state_lock:
            owner, self._owner = self._owner, None
        if owner is not None:
            try:
                self._delete(owner)
            except Exception:  # its lease lapses on its own
                logger.warning("writer lock %r: could not delete our rows", self.name, exc_info=True)

    def _delete(self, owner: str, *, up_to_version: int | None = None) -> None:
        where = f"name == {quoted(self.name)} and owner == {quoted(owner)}"
        if up_to_version is not None:
            where += f" and version <= {up_to_version}"
        self._client.delete(self.collection, filter=where)


@contextlib.contextmanager
def milvus_writer_lock(
    uri: str, *, name: str = "writer", lease_s: float = 15.0, max_skew_s: float = 1.0, timeout_s: float | None = None,
    collection: str = LOCK_COLLECTION,
) -> Iterator[MilvusWriterLock]:  # fmt: skip
    """Hold the lock ``name`` of ``collection`` for the block (``LockTimeoutError`` if not had in ``timeout_s``)."""
    lock = MilvusWriterLock(uri, name=name, lease_s=lease_s, max_skew_s=max_skew_s, collection=collection)
    lock.acquire(timeout_s)
    try:
        yield lock
    finally:
        lock.release()
