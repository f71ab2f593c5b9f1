"""Merging segments: the policy, what a merge keeps and drops, deletes during a merge, a merge that dies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from index.ingest.documents import SourceDocument
from index.stores.local import generations, merge
from index.stores.local import segments as seg
from index.stores.local.generations import load_index
from index.stores.local.live import change_index
from index.stores.local.merge import merge_segments, plan_merge
from index.stores.manifest import SegmentInfo, Tombstone
from tests.conftest import REPO
from tests.test_segments import NEW_DOC, _keyed, doc_ids_found


def info(i: int, chunks: int) -> SegmentInfo:
    return SegmentInfo(segment_id=f"s{i}", first_chunk=i * 1000, end_chunk=i * 1000 + chunks, first_sentence=i * 1000,
                       end_sentence=i * 1000 + chunks, documents=1, chunks=chunks)  # fmt: skip


def test_policy_merges_a_tier_of_similar_segments_and_bounds_the_count():
    assert plan_merge([info(0, 5000), info(1, 3)], {}) is None
    assert plan_merge([info(0, 5000), info(1, 3), info(2, 2), info(3, 3), info(4, 1)], {}) == (1, 5)
    growing = [info(i, 4**i) for i in range(12)]  # every segment in a tier of its own
    assert plan_merge(growing, {}) == (0, 2)
    half_dead = {"s1": Tombstone(chunk_ids=list(range(1000, 1040)))}
    assert plan_merge([info(0, 5000), info(1, 100)], half_dead) == (1, 2)


def sources(n: int) -> list[SourceDocument]:
    text = "关于第{i}批乡镇便民服务站建设的通知\n各乡镇建设便民服务站{a}个，每站配备工作人员{b}名。\n"
    return [
        SourceDocument(
            f"notice-{i}", f"第{i}号通知", f"notice-{i}.txt", text.format(i=i, a=i + 3, b=i + 2), (), "upload"
        )
        for i in range(n)
    ]


@pytest.fixture
def changed_dir(seed_data_dir, tmp_path, embedder):
    """The seed index with three delta segments and two documents deleted."""
    path = tmp_path / "data"
    shutil.copytree(seed_data_dir, path)
    for doc in [NEW_DOC, *sources(2)]:
        change_index(data_dir=path, embedder=embedder, sources=[doc])
    change_index(data_dir=path, embedder=embedder, remove={"notice-0", "haian-central-town-reform"})
    return path


def load(path, embedder):
    return load_index(path, embedder_name=embedder.name, dimension=embedder.dimension)


QUERIES = ("乡镇应急管理办公室核定编制多少名", "便民服务站配备工作人员", "海安市中心镇改革试点", "街道办事处职责")


def test_a_full_merge_keeps_every_live_row_and_drops_the_tombstoned_for_good(changed_dir, embedder):
    before = load(changed_dir, embedder)
    assert len(before.manifest.segments) == 4
    dead = [i for s in before.manifest.tombstones.values() for i in s.chunk_ids]
    report = merge_segments(changed_dir, full=True)
    after = load(changed_dir, embedder)
    assert len(after.manifest.segments) == 1 and after.manifest.tombstones == {}
    assert report.dropped_chunks == len(dead) > 0 and after.segments[0].info.chunks == before.catalogue.count()
    assert after.catalogue.document_count() == before.catalogue.document_count() == 10
    assert after.catalogue.count() == after.vectors.count() == after.lexical.count() == before.catalogue.count()
    assert not set(dead) & set(after.segments[0].postings.row_ids.tolist())
    assert after.segments[0].vectors.count() == after.catalogue.count()  # the dead rows are not in the file
    for query in QUERIES:
        a, b = _keyed(before, before.lexical.scores(query)), _keyed(after, after.lexical.scores(query))
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-6)
        vector = embedder.embed_queries([query])[0]
        assert before.vectors.search(vector, 10).ids.tolist() == after.vectors.search(vector, 10).ids.tolist()
        assert not doc_ids_found(after, embedder, query, k=200) & {"notice-0", "haian-central-town-reform"}
    for doc_id in ("emergency", "notice-1", "kaifeng-reform"):
        ids = np.array([s.sentence_id for s in after.catalogue.document_sentences(doc_id)])
        np.testing.assert_array_equal(before.sentence_vectors.vectors(ids), after.sentence_vectors.vectors(ids))
    assert merge_segments(changed_dir, full=True) is None  # nothing left to merge
    listed = {
        s.segment_id for b in generations.generation_dirs(changed_dir) for s in generations.read_manifest(b).segments
    }
    assert {p.name for p in seg.segments_root(changed_dir).iterdir()} == listed
    before.close()
    after.close()


def test_a_delete_made_during_a_merge_stays_deleted(changed_dir, embedder, monkeypatch):
    write = merge._write_merged

    def write_then_delete(*args):
        written = write(*args)
        change_index(data_dir=changed_dir, embedder=embedder, remove={"emergency"})  # while the merge runs
        return written

    monkeypatch.setattr(merge, "_write_merged", write_then_delete)
    assert merge_segments(changed_dir, full=True) is not None
    index = load(changed_dir, embedder)
    assert index.catalogue.document("emergency") is None and index.catalogue.document_count() == 9
    assert "emergency" not in doc_ids_found(index, embedder, QUERIES[0], k=200)
    assert list(index.manifest.tombstones) == [index.manifest.segments[0].segment_id]
    index.close()
    merge_segments(changed_dir, full=True)  # and the next merge drops it for good
    index = load(changed_dir, embedder)
    assert index.manifest.tombstones == {} and index.catalogue.document("emergency") is None
    assert index.catalogue.count() == index.vectors.count() == index.lexical.count()
    index.close()


def test_merge_changes_nothing_when_the_run_is_gone(changed_dir, embedder, monkeypatch):
    write = merge._write_merged

    def write_then_merge(*args):
        written = write(*args)
        manifest = generations.read_manifest(generations.current_build_dir(changed_dir))
        generations.write_generation(changed_dir, manifest.model_copy(update={"segments": manifest.segments[:-1]}))
        return written

    monkeypatch.setattr(merge, "_write_merged", write_then_merge)
    assert merge_segments(changed_dir, full=True) is None


def test_a_merge_starting_leaves_a_writers_segment_in_the_making_alone(changed_dir, monkeypatch):
    """The merger holds no write lock: a segment a writer begins while it clears a dead merge's is not
    a leftover (it was, when the merger listed the directory once and removed by a second listing)."""
    made: list = []
    remove = seg.remove_segments

    def writer_begins_then_remove(*args, **kwargs):
        made.append(seg.new_segment_dir(changed_dir))  # a writer's, not finished yet
        return remove(*args, **kwargs)

    dead_merge = seg.new_segment_dir(changed_dir, prefix=seg.MERGE_PREFIX)
    monkeypatch.setattr(seg, "remove_segments", writer_begins_then_remove)
    merge._remove_merge_leftovers(changed_dir)
    assert made[0].is_dir() and not dead_merge.exists()


CRASH = """
import os, sys
from pathlib import Path
from index.stores.local import merge
from index.stores.local import segments
from index.stores.local import generations
point, data_dir = sys.argv[1], Path(sys.argv[2])
def die(*args, **kwargs):
    os.kill(os.getpid(), 9)
if point == "segment-files":
    segments.finish_segment = die
elif point == "before-switch":
    generations.switch_current = die
merge.merge_segments(data_dir, full=True)
"""


@pytest.mark.parametrize("point", ["segment-files", "before-switch"])
def test_a_merge_that_dies_leaves_the_previous_segments_in_service(changed_dir, embedder, point):
    before = load(changed_dir, embedder)
    state = (before.manifest.build_id, before.catalogue.document_count(), before.catalogue.count())
    before.close()
    killed = subprocess.run([sys.executable, "-c", textwrap.dedent(CRASH), point, str(changed_dir)],
                            cwd=REPO, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    index = load(changed_dir, embedder)
    assert (index.manifest.build_id, index.catalogue.document_count(), index.catalogue.count()) == state
    assert "notice-0" not in doc_ids_found(index, embedder, QUERIES[1], k=200)
    index.close()
    leftovers = [p for p in seg.segments_root(changed_dir).iterdir() if p.name.startswith(seg.MERGE_PREFIX)]
    assert leftovers  # what the dead merge wrote, cleaned by the next one
    assert merge_segments(changed_dir, full=True) is not None
    names = {p.name for p in seg.segments_root(changed_dir).iterdir()}
    assert not {p.name for p in leftovers} & names
    index = load(changed_dir, embedder)
    assert index.catalogue.document_count() == state[1] and len(index.manifest.segments) == 1
    index.close()
