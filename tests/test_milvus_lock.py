"""The writer lock across replicas (index/stores/milvus/lock.py) on a real ``milvus-lite server``.

Contenders are separate processes (tests/milvus_lock_worker.py), as replicas would be.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from index.errors import LockLostError, LockTimeoutError
from index.stores.milvus.lock import MilvusWriterLock, milvus_writer_lock
from tests.conftest import REPO

pytest.importorskip("pymilvus")

WORKER = REPO / "tests" / "milvus_lock_worker.py"
LEASE_S, MAX_SKEW_S = 2.0, 0.2  # as in the worker


def _lock(uri: str, name: str, timeout_s: float):
    return milvus_writer_lock(uri, name=name, lease_s=LEASE_S, max_skew_s=MAX_SKEW_S, timeout_s=timeout_s)


def _worker(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(WORKER), *args], cwd=REPO, env=env, **popen)


def test_processes_incrementing_under_the_lock_lose_no_update(milvus_uri):
    from tests.milvus_lock_worker import counter_client, read_counter

    processes, times = 4, 15
    workers = [_worker("count", milvus_uri, "counter", str(times)) for _ in range(processes)]
    for worker in workers:
        assert worker.wait(timeout=240) == 0
    assert read_counter(counter_client(milvus_uri), "counter") == processes * times


def test_a_holder_killed_while_holding_frees_the_lock_after_its_lease(milvus_uri):
    holder = _worker("hold", milvus_uri, "killed", stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockTimeoutError), _lock(milvus_uri, "killed", 1.0):  # alive, it holds the lock
            pass
        holder.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        with _lock(milvus_uri, "killed", 30):
            waited = time.monotonic() - killed_at
    finally:
        holder.kill()
        holder.wait()
    # Its last renewal was at most a quarter lease before the kill; the lease and the skew must pass.
    assert LEASE_S * 0.75 + MAX_SKEW_S - 0.1 <= waited <= LEASE_S + MAX_SKEW_S + 2.0


def test_a_second_contender_times_out_then_gets_the_lock_once_released(milvus_uri):
    first = MilvusWriterLock(milvus_uri, name="timeout", lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    second = MilvusWriterLock(milvus_uri, name="timeout", lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    first.acquire()
    started = time.monotonic()
    with pytest.raises(LockTimeoutError, match="timeout"):
        second.acquire(timeout_s=0.5)
    assert 0.5 <= time.monotonic() - started < 3.0
    time.sleep(LEASE_S)  # renewals keep the holder's claim alive past its first lease
    with pytest.raises(LockTimeoutError):
        second.acquire(timeout_s=0.3)
    first.release()
    second.acquire(timeout_s=5)
    second.ensure_held()
    second.release()


def test_a_holder_whose_lease_lapsed_is_told_so(milvus_uri):
    stalled = MilvusWriterLock(milvus_uri, name="stalled", lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    stalled.acquire()
    stalled.ensure_held()
    stalled._stop.set()  # its heartbeat stops, as in a replica frozen or cut off from Milvus
    stalled._heartbeat.join()
    with _lock(milvus_uri, "stalled", 10), pytest.raises(LockLostError):
        stalled.ensure_held()
    stalled.release()


def test_locks_of_different_names_do_not_wait_for_each_other(milvus_uri):
    with _lock(milvus_uri, "a", 2), _lock(milvus_uri, "b", 2):
        pass


def test_a_lease_shorter_than_four_skews_is_refused(milvus_uri):
    with pytest.raises(ValueError):
        MilvusWriterLock(milvus_uri, lease_s=1.0, max_skew_s=0.5)


def test_a_replicas_change_waits_while_another_replica_holds_the_writer_lock(
    seed_data_dir, tmp_path, milvus_uri, monkeypatch
):
    import functools
    import secrets
    import shutil

    from service import writer as kb_module
    from service.engines import open_engine
    from service.settings import Settings
    from service.stores.milvus_jobs import MilvusJobStore
    from service.uploads import prepare_upload
    from service.writer import KnowledgeBaseWriter

    monkeypatch.setattr(kb_module, "JOB_HEARTBEAT_S", 0.2)
    jobs = functools.partial(MilvusJobStore, milvus_uri, kb_id="replicas", collection=f"jobs_{secrets.token_hex(4)}")

    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    settings = Settings(data_dir=data_dir, build_on_start=False)
    engine = open_engine(settings)
    lock = functools.partial(
        milvus_writer_lock, milvus_uri, name="kb:replicas", lease_s=LEASE_S, max_skew_s=MAX_SKEW_S, timeout_s=30
    )
    impatient = functools.partial(lock, timeout_s=0.5)
    kb = KnowledgeBaseWriter(engine, settings, writer_lock=lock, jobs=jobs(stale_after_s=1.0))
    impatient_kb = KnowledgeBaseWriter(engine, settings, writer_lock=impatient)
    other_replica = MilvusWriterLock(milvus_uri, name="kb:replicas", lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    try:
        other_replica.acquire()
        upload = prepare_upload("关于便民服务站建设的通知\n每站配备专职工作人员3名。\n".encode(), "stations.txt", None)
        job = kb.add(upload)
        failed = impatient_kb.wait(impatient_kb.add(prepare_upload(b"\xe9\x80\x9a\xe7\x9f\xa5", "other.txt", None)))
        assert failed.state == "failed" and "writer lock" in failed.error
        assert job.state == "running" and job.embedded_passages == 0  # waiting: nothing embedded, nothing written
        assert not engine.index.catalogue.known_doc_ids(["stations"])
        time.sleep(1.5)  # longer than a job may stay silent: the heartbeat keeps it alive for the others
        assert jobs(stale_after_s=1.0).get(job.id).state == "running"
        other_replica.release()
        assert kb.wait(job, timeout=120).state == "done", job.error
        assert engine.current().index.catalogue.known_doc_ids(["stations"])
    finally:
        other_replica.release()
        kb.close()
        impatient_kb.close()
        engine.close()


def test_a_writer_whose_job_lock_lapsed_commits_nothing(milvus_uri, embedder, tmp_path):
    """Nothing checked the lease before each write: a replica frozen past its lease still committed its change."""
    import uuid

    from index.ingest.documents import SourceDocument
    from index.stores.milvus.reader import MilvusTarget, load_milvus_index
    from index.stores.milvus.writer import change_milvus

    target = MilvusTarget(milvus_uri, f"lapse{uuid.uuid4().hex[:8]}")
    document = SourceDocument("stations", "便民服务站", "stations.txt", "便民服务站\n每站配备专职工作人员3名。\n")
    job_lock = MilvusWriterLock(milvus_uri, name="kb:lapse", lease_s=LEASE_S, max_skew_s=MAX_SKEW_S)
    job_lock.acquire()
    job_lock._stop.set()  # this replica freezes: its lease is not renewed
    job_lock._heartbeat.join()
    try:
        # Another replica takes the job lock once the lease lapsed.
        with _lock(milvus_uri, "kb:lapse", 10), pytest.raises(LockLostError):
            change_milvus(target, data_dir=tmp_path, embedder=embedder, sources=[document])
    finally:
        job_lock.release()
    index = load_milvus_index(target, embedder_name=embedder.name, dimension=embedder.dimension)
    assert index.catalogue.document("stations") is None
