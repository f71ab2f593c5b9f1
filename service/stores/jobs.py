"""Where knowledge-base jobs are kept: one replica's memory, or Milvus, shared by every replica.

A job is made and run by the replica that took the request, but ``GET
/api/jobs/{id}`` may reach any replica behind the load balancer: with the
Milvus store each change of a job is written to the collection
``policyqa_jobs`` (strongly consistent, so the next read anywhere sees it).
Both backends speak the same verbs: ``put`` (make or update), ``get`` and
``counts`` (jobs by state), and pass one contract test.
"""

from __future__ import annotations

import functools
import json
import re
import threading
import time
from collections import Counter, OrderedDict
from dataclasses import asdict, dataclass, field, fields
from typing import Protocol

MAX_JOBS_KEPT = 1000  # in one replica's memory
FINISHED_KEPT_S = 7 * 24 * 3600.0  # in Milvus, finished jobs older than this are cleared away
JOBS_COLLECTION = "policyqa_jobs"
JOB_STATES = ("queued", "running", "done", "failed")
MAX_TEXT_CHARS = 4000  # of a job's message or error, kept well inside a VARCHAR row
# A replica writes its unfinished jobs again this often; one not written for JOB_STALE_S lost its replica.
JOB_HEARTBEAT_S, JOB_STALE_S = 5.0, 30.0
_JOB_ID = re.compile(r"[0-9a-f]{1,64}")


@dataclass
class Job:
    id: str
    kind: str  # add | replace | delete
    doc_id: str
    filename: str | None
    state: str = "queued"  # queued | running | done | failed
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    duplicate: bool = False
    embedded_passages: int = 0
    read_summary: str = ""  # what reading the file did ("OCR: 12 pages, mean confidence 0.97")
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict) -> Job:
        known = {f.name for f in fields(cls)}
        return cls(**{name: value for name, value in record.items() if name in known})


class JobStore(Protocol):
    def put(self, job: Job) -> None:
        """Record the job as it is now (made, or changed)."""

    def get(self, job_id: str) -> Job | None: ...

    def counts(self) -> dict[str, int]:
        """Jobs by state: queued and running now, done and failed as far as the store remembers."""


class InMemoryJobStore:
    """This replica's last ``MAX_JOBS_KEPT`` jobs; finished ones counted since the start."""

    def __init__(self, max_kept: int = MAX_JOBS_KEPT) -> None:
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._states: dict[str, str] = {}  # the state each kept job had when last put
        self._finished: Counter[str] = Counter()
        self._max_kept = max_kept
        self._lock = threading.Lock()

    def put(self, job: Job) -> None:
        with self._lock:
            was = self._states.get(job.id)
            if job.state in ("done", "failed") and was not in ("done", "failed"):
                self._finished[job.state] += 1
            self._jobs[job.id], self._states[job.id] = job, job.state
            while len(self._jobs) > self._max_kept:
                gone, _ = self._jobs.popitem(last=False)
                del self._states[gone]

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def unfinished(self) -> list[Job]:
        with self._lock:
            return [job for job in self._jobs.values() if job.state in ("queued", "running")]

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts = Counter(state for state in self._states.values() if state in ("queued", "running"))
            counts.update(self._finished)
        return dict(counts)


class MilvusJobStore:
    """The jobs of one knowledge base, as rows of ``policyqa_jobs`` that every replica reads.

    A queued or running job whose row was not written for ``stale_after_s`` (its replica writes
    it every ``JOB_HEARTBEAT_S``) belonged to a replica that was killed or cut off: it is answered
    as failed, so that nobody waits on it for ever.
    """

    def __init__(
        self, uri: str, *, kb_id: str, collection: str = JOBS_COLLECTION, stale_after_s: float = JOB_STALE_S
    ) -> None:
        from index.stores.milvus.client import Column, ensure_table, milvus_client

        self.kb_id, self.collection, self.stale_after_s = kb_id, collection, stale_after_s
        self._client = milvus_client(uri)
        ensure_table(
            self._client, collection, key=Column("key", "VARCHAR", 256),
            columns=[
                Column("kb_id", "VARCHAR", 64), Column("state", "VARCHAR", 16), Column("updated_at", "DOUBLE"),
                Column("record", "VARCHAR", 65_535),
            ],
        )  # fmt: skip

    def put(self, job: Job) -> None:
        from index.stores.milvus.client import with_placeholder

        record = job.to_dict()
        for name in ("message", "error"):
            if record[name] is not None:
                record[name] = record[name][:MAX_TEXT_CHARS]
        row = dict(
            key=self._key(job.id), kb_id=self.kb_id, state=job.state, updated_at=time.time(),
            record=json.dumps(record, ensure_ascii=False),
        )  # fmt: skip
        self._client.upsert(self.collection, with_placeholder([row]))
        if job.state in ("done", "failed"):
            self._forget_finished_before(time.time() - FINISHED_KEPT_S)

    def get(self, job_id: str) -> Job | None:
        if not _JOB_ID.fullmatch(job_id):  # ids are ours, hex: anything else is no job (and no filter text)
            return None
        rows = self._client.query(
            self.collection, filter=f'key == "{self._key(job_id)}"', output_fields=["record", "updated_at"]
        )
        if not rows:
            return None
        job = Job.from_dict(json.loads(rows[0]["record"]))
        silent_s = time.time() - float(rows[0]["updated_at"])
        if job.state in ("queued", "running") and silent_s > self.stale_after_s:
            job.state = "failed"
            job.error = f"the replica running this job stopped answering ({silent_s:.0f} s without news); retry it"
        return job

    def counts(self) -> dict[str, int]:
        counts = {}
        for state in JOB_STATES:
            where = f'{self._in_kb()} and state == "{state}"'
            rows = self._client.query(self.collection, filter=where, output_fields=["count(*)"])
            if rows and int(rows[0]["count(*)"]):
                counts[state] = int(rows[0]["count(*)"])
        return counts

    def _forget_finished_before(self, moment: float) -> None:
        where = f'{self._in_kb()} and state in ["done", "failed"] and updated_at < {moment!r}'
        self._client.delete(self.collection, filter=where)

    def _key(self, job_id: str) -> str:
        return f"{self.kb_id}/{job_id}"

    def _in_kb(self) -> str:
        from index.stores.milvus.client import quoted

        return f"kb_id == {quoted(self.kb_id)}"


def shared_job_store(settings, kb_id: str) -> JobStore | None:
    """The store every replica reads jobs from, when there is one (``POLICYQA_STORE=milvus``)."""
    if settings.store != "milvus":
        return None
    return MilvusJobStore(settings.milvus_uri, kb_id=kb_id)


def shared_writer_lock(settings, kb_id: str):
    """With ``POLICYQA_STORE=milvus``, a factory of the writer lock ``kb:<kb_id>`` that every replica's
    jobs in that knowledge base take (a job waits for it up to ``POLICYQA_JOB_TIMEOUT_S``); else None."""
    if settings.store != "milvus":
        return None
    from index.stores.milvus.lock import milvus_writer_lock

    return functools.partial(
        milvus_writer_lock, settings.milvus_uri, name=f"kb:{kb_id}", timeout_s=settings.job_timeout_s
    )
