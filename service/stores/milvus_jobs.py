"""Job records in Milvus, shared by every replica: the collection ``policyqa_jobs``, strongly consistent."""

from __future__ import annotations

import json
import time

from index.stores.milvus.client import Column, ensure_table, milvus_client, quoted, with_placeholder
from service.stores.jobs import _JOB_ID, FINISHED_KEPT_S, JOB_STALE_S, JOB_STATES, JOBS_COLLECTION, MAX_TEXT_CHARS, Job


class MilvusJobStore:
    """The jobs of one knowledge base, as rows of ``policyqa_jobs`` that every replica reads.

    A queued or running job whose row was not written for ``stale_after_s`` (its replica writes
    it every ``JOB_HEARTBEAT_S``) belonged to a replica that was killed or cut off: it is answered
    as failed, so that nobody waits on it for ever.
    """

    def __init__(
        self, uri: str, *, kb_id: str, collection: str = JOBS_COLLECTION, stale_after_s: float = JOB_STALE_S
    ) -> None:
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
        return f"kb_id == {quoted(self.kb_id)}"
