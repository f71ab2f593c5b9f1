"""Where knowledge-base jobs are kept: one replica's memory, or Milvus, shared by every replica.

A job is made and run by the replica that took the request, but ``GET
/api/jobs/{id}`` may reach any replica behind the load balancer: with the
Milvus store each change of a job is written to the collection
``policyqa_jobs`` (strongly consistent, so the next read anywhere sees it).
Both backends speak the same verbs: ``put`` (make or update), ``get`` and
``counts`` (jobs by state), and pass one contract test.
"""

from __future__ import annotations

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
    kind: str  # add | replace | delete | correct (a chunk)
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
