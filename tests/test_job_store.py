"""Job records behind one contract (service/stores/jobs.py): this replica's memory, or Milvus shared by all."""

from __future__ import annotations

import secrets
import shutil
import time

import pytest

from service.stores.jobs import InMemoryJobStore, Job
from service.stores.milvus_jobs import MilvusJobStore


@pytest.fixture(params=["memory", "milvus"])
def make_store(request):
    """Stores of one knowledge base; with Milvus each call is another client, as another replica's would be."""
    if request.param == "memory":
        store = InMemoryJobStore()
        return lambda kb_id="default": store
    uri = request.getfixturevalue("milvus_uri")
    collection = f"jobs_{secrets.token_hex(4)}"  # each test starts from no jobs
    return lambda kb_id="default": MilvusJobStore(uri, kb_id=kb_id, collection=collection)


def _job(**fields) -> Job:
    return Job(id=secrets.token_hex(8), kind="add", doc_id="notice", filename="通知.txt", **fields)


def _when_finished(store, job_id: str, within_s: float = 2.0) -> Job:
    deadline = time.monotonic() + within_s
    while (job := store.get(job_id)).state not in ("done", "failed") and time.monotonic() < deadline:
        time.sleep(0.02)
    return job


def test_a_job_put_is_got_back_field_for_field(make_store):
    store = make_store()
    job = _job(read_summary="OCR: 2 pages, mean confidence 0.97", message="OCR: 2 pages")
    store.put(job)
    assert store.get(job.id).to_dict() == job.to_dict()


def test_each_change_of_a_job_is_what_the_next_get_answers(make_store):
    store = make_store()
    job = _job()
    store.put(job)
    job.state, job.progress, job.message = "running", 0.5, "embedded 5 of 10 passages"
    store.put(job)
    assert (store.get(job.id).state, store.get(job.id).progress) == ("running", 0.5)
    job.state, job.progress, job.embedded_passages, job.finished_at = "done", 1.0, 10, job.created_at + 3
    store.put(job)
    assert store.get(job.id).to_dict() == job.to_dict()


def test_an_unknown_or_malformed_id_is_no_job(make_store):
    store = make_store()
    store.put(_job())
    assert store.get(secrets.token_hex(8)) is None
    assert store.get('x" or key != "') is None
    assert store.get("") is None


def test_counts_are_queued_and_running_now_and_finished_ones(make_store):
    store = make_store()
    assert store.counts() == {}
    jobs = [_job() for _ in range(5)]
    for job in jobs:
        store.put(job)
    for job, state in zip(jobs, ["running", "done", "done", "failed"], strict=False):
        job.state = state
        store.put(job)
    jobs[1].message = "put again, still done"
    store.put(jobs[1])
    assert store.counts() == {"queued": 1, "running": 1, "done": 2, "failed": 1}


def test_a_job_made_on_one_replica_is_answered_on_another(milvus_uri):
    collection = f"jobs_{secrets.token_hex(4)}"
    first, second = (MilvusJobStore(milvus_uri, kb_id="default", collection=collection) for _ in range(2))
    job = _job()
    first.put(job)
    assert second.get(job.id).state == "queued"
    job.state, job.progress = "done", 1.0
    first.put(job)
    assert second.get(job.id).to_dict() == job.to_dict()
    assert second.counts() == {"done": 1}


def test_jobs_of_one_knowledge_base_are_not_answered_under_another(milvus_uri):
    collection = f"jobs_{secrets.token_hex(4)}"
    reform = MilvusJobStore(milvus_uri, kb_id="reform", collection=collection)
    other = MilvusJobStore(milvus_uri, kb_id="other", collection=collection)
    job = _job()
    reform.put(job)
    assert other.get(job.id) is None and other.counts() == {}
    assert reform.get(job.id) is not None


def test_an_upload_on_one_replica_reports_its_progress_to_another(seed_data_dir, tmp_path, milvus_uri):
    from service.engines import open_engine
    from service.settings import Settings
    from service.uploads import prepare_upload
    from service.writer import KnowledgeBaseWriter

    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    collection = f"jobs_{secrets.token_hex(4)}"
    settings = Settings(data_dir=data_dir, build_on_start=False)
    engine = open_engine(settings)
    kb = KnowledgeBaseWriter(engine, settings, jobs=MilvusJobStore(milvus_uri, kb_id="default", collection=collection))
    other_replica = MilvusJobStore(milvus_uri, kb_id="default", collection=collection)
    try:
        upload = prepare_upload("关于便民服务站建设的通知\n每站配备专职工作人员3名。\n".encode(), "stations.txt", None)
        job = kb.add(upload)
        assert other_replica.get(job.id) is not None  # seen elsewhere from the moment it is made
        kb.wait(job)
        seen = _when_finished(other_replica, job.id)  # the worker writes it just after it finishes here
        assert (seen.state, seen.doc_id, seen.progress) == ("done", "stations", 1.0), seen.error
        assert seen.embedded_passages == job.embedded_passages > 0
        assert kb.job(job.id) is job and kb.job_counts() == {"done": 1}
    finally:
        kb.close()
        engine.close()


def test_the_store_setting_picks_the_shared_job_store(tmp_path, milvus_uri):
    from service.settings import Settings
    from service.stores.factory import shared_job_store

    assert shared_job_store(Settings(data_dir=tmp_path, _env_file=None), "default") is None
    milvus = Settings(data_dir=tmp_path, store="milvus", milvus_uri=milvus_uri, _env_file=None)
    assert isinstance(shared_job_store(milvus, "default"), MilvusJobStore)
    with pytest.raises(ValueError, match="POLICYQA_MILVUS_URI"):  # refused when the settings are made
        Settings(data_dir=tmp_path, store="milvus", _env_file=None)


def test_an_unfinished_job_its_replica_stopped_writing_is_answered_as_failed(milvus_uri):
    store = MilvusJobStore(milvus_uri, kb_id="default", collection=f"jobs_{secrets.token_hex(4)}", stale_after_s=0.4)
    running, done = _job(state="running"), _job(state="done")
    store.put(running)
    store.put(done)
    assert store.get(running.id).state == "running"
    time.sleep(0.6)
    lost = store.get(running.id)
    assert lost.state == "failed" and "stopped answering" in lost.error
    assert store.get(done.id).state == "done"  # a finished job is never stale
    store.put(running)  # its replica's heartbeat: alive again
    assert store.get(running.id).state == "running"
