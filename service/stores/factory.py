"""The one place the service's own stores are chosen: the registry, the shared job store, the job lock.

``POLICYQA_STORE=milvus`` puts them in Milvus, shared by every replica, in collections named after
``POLICYQA_MILVUS_PREFIX`` (two deployments on one Milvus share nothing); otherwise the registry is DATA_DIR's
SQLite file and jobs stay in each replica's memory.
"""

from __future__ import annotations

import functools

from index.stores.milvus.lock import lock_collection, milvus_writer_lock
from service.stores.jobs import JobStore
from service.stores.milvus_jobs import MilvusJobStore
from service.stores.milvus_records import MilvusRecordStore
from service.stores.milvus_registry import MilvusRegistry
from service.stores.records import RECORDS_FILE, RecordStore, SqliteRecordStore
from service.stores.registry import REGISTRY_FILE, Registry, SqliteRegistry


def open_registry(settings) -> Registry:
    """The registry of this deployment: shared in Milvus with ``POLICYQA_STORE=milvus``
    (service/stores/milvus_registry.py, the same verbs), else DATA_DIR's SQLite file."""
    if settings.store == "milvus":
        return MilvusRegistry(
            settings.milvus_uri, default_public=settings.default_kb_public, prefix=settings.milvus_prefix
        )
    return SqliteRegistry(settings.data_dir / REGISTRY_FILE, default_public=settings.default_kb_public)


def open_records(settings) -> RecordStore:
    """Feedback, terms, corrections and the audit trail: shared in Milvus with ``POLICYQA_STORE=milvus``,
    else DATA_DIR's ``staff.sqlite3``."""
    if settings.store == "milvus":
        return MilvusRecordStore(settings.milvus_uri, prefix=settings.milvus_prefix)
    return SqliteRecordStore(settings.data_dir / RECORDS_FILE)


def shared_job_store(settings, kb_id: str) -> JobStore | None:
    """The store every replica reads jobs from, when there is one (``POLICYQA_STORE=milvus``)."""
    if settings.store != "milvus":
        return None
    return MilvusJobStore(settings.milvus_uri, kb_id=kb_id, collection=f"{settings.milvus_prefix}_jobs")


def shared_writer_lock(settings, kb_id: str):
    """With ``POLICYQA_STORE=milvus``, a factory of the writer lock ``kb:<kb_id>`` that every replica's
    jobs in that knowledge base take (a job waits for it up to ``POLICYQA_JOB_TIMEOUT_S``); else None."""
    if settings.store != "milvus":
        return None
    return functools.partial(
        milvus_writer_lock, settings.milvus_uri, name=f"kb:{kb_id}", timeout_s=settings.job_timeout_s,
        collection=lock_collection(settings.milvus_prefix),
    )  # fmt: skip
