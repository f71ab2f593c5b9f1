"""A segmented index: an add writes one small segment, a delete a tombstone; both survive reloads and crashes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from index.ingest.documents import SourceDocument
from index.stores.local import generations
from index.stores.local import segments as seg
from index.stores.local.build import build_index
from index.stores.local.generations import load_index
from index.stores.local.live import change_index, update_index
from tests.conftest import DOCS_RAW, REPO, CountingEmbedder

NEW_DOC = SourceDocument(
    "emergency",
    "关于设立乡镇应急管理办公室的通知",
    "emergency.txt",
    "关于设立乡镇应急管理办公室的通知\n一、总体要求\n各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱。\n"
    "二、保障措施\n县财政每年安排专项经费120万元，用于乡镇应急物资储备和队伍培训。\n",
    origin="upload",
)
QUESTION = "乡镇应急管理办公室核定编制多少名"


@pytest.fixture
def data_dir(seed_data_dir, tmp_path):
    path = tmp_path / "data"
    shutil.copytree(seed_data_dir, path)
    return path


def load(data_dir, embedder, reuse=None):
    return load_index(data_dir, embedder_name=embedder.name, dimension=embedder.dimension, reuse=reuse)


def doc_ids_found(index, embedder, query: str, k: int = 50) -> set[str]:
    vector = embedder.embed_queries([query])[0]
    ids = index.vectors.search(vector, k).ids.tolist() + index.lexical.search(query, k).ids.tolist()
    return {c.doc_id for c in index.catalogue.chunks(ids)}


def segment_files(data_dir) -> dict[str, float]:
    return {str(p): p.stat().st_mtime_ns for p in seg.segments_root(data_dir).rglob("*") if p.is_file()}


def test_add_writes_one_small_segment_and_touches_nothing_else(data_dir, embedder):
    before = segment_files(data_dir)
    counting = CountingEmbedder(embedder)
    report = change_index(data_dir=data_dir, embedder=counting, sources=[NEW_DOC])
    index = load(data_dir, embedder)
    assert [s.documents for s in index.manifest.segments] == [9, 1]
    assert len(counting.passages) == report.embedded_passages > 0
    assert all(segment_files(data_dir)[path] == mtime for path, mtime in before.items())
    assert "emergency" in doc_ids_found(index, embedder, QUESTION)
    assert index.catalogue.document_count() == 10 == index.manifest.counts["documents"]
    assert index.catalogue.count() == index.vectors.count() == index.lexical.count() == report.chunks
    chunk_ids = index.catalogue.chunk_ids(["emergency"])
    assert min(chunk_ids) == index.manifest.segments[0].end_chunk  # ids go on from the base's
    assert index.vectors.vectors(np.array(chunk_ids)).shape == (len(chunk_ids), embedder.dimension)
    index.close()


def test_delete_is_a_tombstone_and_the_document_is_never_found_again(data_dir, embedder):
    change_index(data_dir=data_dir, embedder=embedder, sources=[NEW_DOC])
    first = load(data_dir, embedder)
    gone = first.catalogue.chunk_ids(["emergency"]) + first.catalogue.chunk_ids(["haian-central-town-reform"])
    files = segment_files(data_dir)
    change_index(data_dir=data_dir, embedder=embedder, remove={"emergency", "haian-central-town-reform"})
    assert segment_files(data_dir) == files  # no segment written or rewritten
    index = load(data_dir, embedder, reuse=first)
    assert index.segments[0] is first.segments[0]  # reloading shares the open segments
    assert index.catalogue.document("emergency") is None and index.catalogue.chunks(gone) == []
    assert index.catalogue.document_count() == 8 == len(index.catalogue.documents())
    for query in (QUESTION, "海安市中心镇改革", "试点镇"):
        found = doc_ids_found(index, embedder, query, k=200)
        assert not found & {"emergency", "haian-central-town-reform"}
    assert index.catalogue.count() == index.vectors.count() == index.lexical.count()
    first.close()
    index.close()


def test_replace_is_one_switch(data_dir, embedder):
    change_index(data_dir=data_dir, embedder=embedder, sources=[NEW_DOC])
    edited = SourceDocument(NEW_DOC.doc_id, NEW_DOC.title, NEW_DOC.source, NEW_DOC.raw_text.replace("7名", "9名"))
    before = generations.current_build_dir(data_dir)
    change_index(data_dir=data_dir, embedder=embedder, sources=[edited])
    index = load(data_dir, embedder)
    assert generations.read_manifest(before).build_id != index.manifest.build_id
    assert "9名" in index.catalogue.document_text("emergency")
    texts = [c.text for c in index.catalogue.chunks(index.lexical.search("核定编制", 50).ids.tolist())]
    assert any("9名" in t for t in texts) and not any("7名" in t for t in texts)
    assert index.catalogue.document_count() == 10
    index.close()


def test_segmented_scores_equal_a_single_build_of_the_same_documents(data_dir, embedder, tmp_path):
    change_index(data_dir=data_dir, embedder=embedder, sources=[NEW_DOC])
    change_index(data_dir=data_dir, embedder=embedder, remove={"haian-central-town-reform"})
    segmented = load(data_dir, embedder)
    live = [_as_source(segmented, record.doc_id) for record in segmented.catalogue.documents()]
    single_dir = tmp_path / "single"
    shutil.copytree(data_dir, single_dir)
    build_index(data_dir=single_dir, embedder=embedder, sources=live, show_progress=False)  # reuses vectors
    single = load(single_dir, embedder)
    assert len(single.manifest.segments) == 1
    for query in (QUESTION, "街道办事处职责", "乡镇机构改革编制"):
        a, b = _keyed(segmented, segmented.lexical.scores(query)), _keyed(single, single.lexical.scores(query))
        assert a.keys() == b.keys()
        np.testing.assert_allclose([a[k] for k in sorted(a)], [b[k] for k in sorted(b)], rtol=1e-5)
        vector = embedder.embed_queries([query])[0]
        dense_a = _keyed(segmented, segmented.vectors.search(vector, 10))
        dense_b = _keyed(single, single.vectors.search(vector, 10))
        assert dense_a.keys() == dense_b.keys()
    segmented.close()
    single.close()


def _as_source(index, doc_id: str) -> SourceDocument:
    record = index.catalogue.document(doc_id)
    return SourceDocument(doc_id, record.title, record.source, index.catalogue.document_text(doc_id), (), record.origin)


def _keyed(index, hits) -> dict[tuple[str, int], float]:
    records = {c.chunk_id: c for c in index.catalogue.chunks(hits.ids.tolist())}
    return {
        (records[i].doc_id, records[i].ordinal): float(s) for i, s in zip(hits.ids.tolist(), hits.scores, strict=True)
    }


def test_ingest_touches_only_changed_files(data_dir, embedder, tmp_path):
    corpus = tmp_path / "docs"
    shutil.copytree(DOCS_RAW, corpus)
    changed = corpus / "haian-central-town-reform.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "试点镇还设立了便民服务中心。\n", encoding="utf-8")
    counting = CountingEmbedder(embedder)
    report = update_index(data_dir=data_dir, embedder=counting, docs_dir=corpus)
    assert (report.added, report.removed, report.documents) == (1, 1, 9)  # replaced: the old one tombstoned
    index = load(data_dir, embedder)
    assert len(index.manifest.segments) == 2 and index.manifest.segments[1].documents == 1
    assert any("便民服务中心" in c.text for c in index.catalogue.document_chunks("haian-central-town-reform"))
    index.close()
    again = update_index(data_dir=data_dir, embedder=counting, docs_dir=corpus)
    assert (again.added, again.removed) == (0, 0) and again.generation_id == report.generation_id


CRASH = """
import os, sys
from pathlib import Path
from index.stores.local import segments
from index.stores.local import generations
from index.ingest.documents import SourceDocument
from index.embedders import load_embedder
from index.stores.local.live import change_index

point, data_dir, kind = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
def die(*args, **kwargs):
    os.kill(os.getpid(), 9)
if point == "segment-files":
    segments.finish_segment = die  # the segment's files written, segment.json not
elif point == "before-switch":
    generations.switch_current = die  # the generation written, CURRENT not moved
elif point == "after-switch":
    generations.prune_builds = die  # CURRENT moved, old generations not pruned
embedder = load_embedder("e5-small", models_dir=Path(os.environ["POLICYQA_MODELS_DIR"]))
doc = SourceDocument("emergency", "应急", "emergency.txt", "各乡镇设立应急管理办公室，核定编制7名。", origin="upload")
if kind == "add":
    change_index(data_dir=data_dir, embedder=embedder, sources=[doc])
else:
    change_index(data_dir=data_dir, embedder=embedder, remove={"zhenjiang-subdistrict-npc-work"})
"""


@pytest.mark.parametrize(
    ("kind", "point", "committed"),
    [("add", "segment-files", False), ("add", "before-switch", False), ("add", "after-switch", True),
     ("delete", "before-switch", False), ("delete", "after-switch", True)],
)  # fmt: skip
def test_sigkill_during_a_change_leaves_the_last_committed_state(data_dir, embedder, kind, point, committed):
    killed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CRASH), point, str(data_dir), kind],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    index = load(data_dir, embedder)
    doc_id = "emergency" if kind == "add" else "zhenjiang-subdistrict-npc-work"
    present = index.catalogue.document(doc_id) is not None
    assert present == (committed == (kind == "add"))
    assert index.catalogue.count() == index.vectors.count() == index.lexical.count()
    assert (doc_id in doc_ids_found(index, embedder, "应急管理办公室 镇江市街道人大工作", k=200)) == present
    index.close()
    # The next change cleans up what the crash left, and works.
    change_index(data_dir=data_dir, embedder=embedder, remove={"kaifeng-reform"} & set())
    listed = {s.segment_id for s in generations.read_manifest(generations.current_build_dir(data_dir)).segments}
    on_disk = {p.name for p in seg.segments_root(data_dir).iterdir()}
    assert all((seg.segments_root(data_dir) / name / seg.SEGMENT_FILE).exists() for name in on_disk)
    assert listed <= on_disk
