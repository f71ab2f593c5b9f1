"""The service's live changes on a segmented index: small segments, background merges, deletes that stay deleted."""

from __future__ import annotations

import gc
import shutil
import time

from index.answering.engine import QAEngine
from index.stores.local import generations
from service.engines import open_engine
from service.settings import Settings
from service.uploads import prepare_upload
from service.writer import KnowledgeBaseWriter

NOTICE = "关于第{i}批乡镇便民服务站建设的通知\n各乡镇建设第{i}批便民服务站，每站配备专职工作人员{n}名。\n"


def cited(engine: QAEngine, question: str) -> set[str]:
    answer = engine.ask(question, top_k=5, mode="hybrid", doc_ids=None).answer
    hits = engine.search(question, top_k=20, mode="hybrid", doc_ids=None).result.hits
    return {c.hit.chunk.doc_id for c in answer.citations} | {h.chunk.doc_id for h in hits}


def indexes_alive(data_dir) -> int:
    """The loaded snapshots of ``data_dir``'s index still in memory (other tests may hold their own)."""
    return sum(
        isinstance(o, generations.LoadedIndex) and o.build_dir.is_relative_to(data_dir) for o in gc.get_objects()
    )


def test_changes_are_small_segments_merged_in_the_background_and_deletes_stay_deleted(seed_data_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    settings = Settings(data_dir=data_dir, build_on_start=False)
    engine = open_engine(settings)
    kb = KnowledgeBaseWriter(engine, settings)
    base = engine.index.manifest.segments[0].segment_id
    for i in range(4):
        upload = prepare_upload(NOTICE.format(i=i, n=i + 2).encode(), f"notice-{i}.txt", None)
        job = kb.wait(kb.add(upload))
        assert job.state == "done", job.error
    kb.wait_for_merges()
    segments = engine.current().index.manifest.segments
    assert segments[0].segment_id == base  # the base was never rewritten
    assert len(segments) == 2 and segments[1].documents == 4  # the four small ones were merged
    assert "notice-2" in cited(engine, "第2批便民服务站每站配备多少名工作人员")

    started = time.perf_counter()
    job = kb.delete("notice-2")
    deleted_s = time.perf_counter() - started
    assert job.state == "done"
    assert "notice-2" not in cited(engine, "第2批便民服务站每站配备多少名工作人员")
    print(f"\ndelete visible after {deleted_s * 1000:.0f} ms")
    assert deleted_s < 5.0
    kb.wait_for_merges()
    engine.current()
    # Replaced snapshots let go of the segments they alone held as soon as nothing refers to them,
    # not at a full garbage collection (the service's many objects make those rare).
    gc.collect()
    gc.disable()
    try:
        for i in range(3):
            kb.wait(kb.add(prepare_upload(NOTICE.format(i=10 + i, n=3).encode(), f"extra-{i}.txt", None)))
            kb.wait_for_merges()
            engine.current()
        assert indexes_alive(data_dir) == 1  # the one served; with gc off, any cycle would keep the others
    finally:
        gc.enable()
    kb.close()
    engine.close()

    engine = open_engine(settings)  # a restart
    assert "notice-2" not in cited(engine, "第2批便民服务站每站配备多少名工作人员")
    assert engine.index.catalogue.document("notice-2") is None
    assert engine.index.catalogue.document_count() == 15
    engine.close()
    from index.stores.local.merge import merge_segments

    merge_segments(data_dir, full=True)
    engine = open_engine(settings)
    assert len(engine.index.manifest.segments) == 1 and engine.index.manifest.tombstones == {}
    assert "notice-2" not in cited(engine, "第2批便民服务站每站配备多少名工作人员")
    assert "notice-1" in cited(engine, "第1批便民服务站每站配备多少名工作人员")
    assert generations.current_build_dir(data_dir).name == engine.index.manifest.build_id
    engine.close()
