"""A delete leaves no trace of the document's text on disk once it returns (issue 27, item 8).

A delete used to write only a tombstone: the sentences stayed in the segment's catalogue.sqlite3 until a merge,
and the previous generation, which lists the segment, was kept. Every file of the data directory is read here,
the compressed ones opened, for a marker only the deleted document held.
"""

from __future__ import annotations

import shutil
import time
import zipfile
from pathlib import Path

import pytest

from index.ingest.documents import SourceDocument
from index.stores.base import BackendConfig
from index.stores.local import generations
from index.stores.local.backend import LocalBackend
from index.stores.local.generations import load_index
from tests.conftest import DOCS_RAW

MARKER = "甄珏璇"  # a name no seed document holds
LATIN_MARKER = "QX7731ZK"


def private_document(doc_id: str) -> SourceDocument:
    text = (
        f"关于{MARKER}同志社区服务登记的通知\n一、基本情况\n{MARKER}，证件号{LATIN_MARKER}，住所在骆驼街道，"
        f"申请社区服务登记。\n二、办理要求\n{MARKER}同志的材料由街道便民服务中心留存。\n"
    )
    return SourceDocument(doc_id, f"{MARKER}登记通知", f"{doc_id}.txt", text, origin="upload")


def traces(data_dir: Path, needles: list[str]) -> list[str]:
    """Every file under data_dir (zip members opened: .npz/.npy files in them) that holds one of the needles."""
    found = []
    needles = [*needles, *(n.lower() for n in needles)]  # BM25 keeps words lower-cased
    encoded = [n.encode("utf-8") for n in needles] + [n.encode("utf-32-le") for n in needles]
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file()):
        blobs = [path.read_bytes()]
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                blobs += [archive.read(name) for name in archive.namelist()]
        if any(needle in blob for blob in blobs for needle in encoded):
            found.append(str(path.relative_to(data_dir)))
    return found


@pytest.fixture
def backend(seed_data_dir, tmp_path) -> LocalBackend:
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    return LocalBackend(BackendConfig(kind="local", data_dir=data_dir))


def test_the_marker_is_found_while_the_document_is_indexed(backend, embedder):
    """The scan itself finds text: in the catalogue as UTF-8, in the BM25 vocabulary inside lexical.npz."""
    backend.change(embedder=embedder, sources=[private_document("private")])
    found = traces(backend.data_dir, [MARKER, LATIN_MARKER])
    assert any(f.endswith("catalogue.sqlite3") for f in found), found
    assert any(f.endswith("lexical.npz") for f in found), found


def test_deleting_a_document_alone_in_its_segment_leaves_no_trace(backend, embedder):
    backend.change(embedder=embedder, sources=[private_document("private")])
    later = SourceDocument("later", "乡镇工作要点", "later.txt", "乡镇工作要点\n乡镇要做好便民服务。", origin="upload")
    backend.change(embedder=embedder, sources=[later])
    backend.change(embedder=embedder, remove={"private"})
    assert traces(backend.data_dir, [MARKER, LATIN_MARKER]) == []
    index = load_index(backend.data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
    try:
        assert index.catalogue.document("private") is None
        assert index.catalogue.document("later") is not None
        assert index.catalogue.document_count() == 10
    finally:
        index.close()


def test_deleting_one_document_of_a_shared_segment_rewrites_it_and_keeps_the_others(backend, embedder):
    neighbour = SourceDocument(
        "neighbour", "村务公开制度", "neighbour.txt", "村务公开制度\n村务要按时公开。", origin="upload"
    )
    backend.change(embedder=embedder, sources=[private_document("private"), neighbour])
    backend.change(embedder=embedder, remove={"private"})
    assert traces(backend.data_dir, [MARKER, LATIN_MARKER]) == []
    assert len(generations.generation_dirs(backend.data_dir)) == 1
    index = load_index(backend.data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
    try:
        assert index.catalogue.document("neighbour") is not None
        hits = index.lexical.search("村务 按时 公开", 5)
        assert "neighbour" in {c.doc_id for c in index.catalogue.chunks(hits.ids.tolist())}
    finally:
        index.close()


def test_replacing_a_document_leaves_no_trace_of_its_old_text(backend, embedder):
    backend.change(embedder=embedder, sources=[private_document("private")])
    cleaned = SourceDocument(
        "private", "社区服务登记通知", "private.txt", "社区服务登记通知\n材料由街道便民服务中心留存。"
    )
    backend.change(embedder=embedder, sources=[cleaned])
    assert traces(backend.data_dir, [MARKER, LATIN_MARKER]) == []


def test_deleting_a_seed_document_takes_its_sentences_off_the_disk(backend, embedder):
    sentence = next(
        line.strip()[:16]
        for line in (DOCS_RAW / "haian-central-town-reform.txt").read_text(encoding="utf-8").splitlines()
        if len(line.strip()) > 30
    )
    assert traces(backend.data_dir, [sentence])
    backend.change(embedder=embedder, remove={"haian-central-town-reform"})
    assert traces(backend.data_dir, [sentence]) == []


def test_a_delete_killed_before_its_purge_is_purged_by_the_next_change(backend, embedder):
    """The chaos soak killed servers between a delete's commit and its purge: that text stayed until a merge."""
    from index.stores.local.live import change_index

    backend.change(embedder=embedder, sources=[private_document("private")])
    change_index(data_dir=backend.data_dir, embedder=embedder, remove={"private"})  # committed, never purged
    assert traces(backend.data_dir, [MARKER])
    later = SourceDocument("later", "乡镇工作要点", "later.txt", "乡镇工作要点\n乡镇要做好便民服务。", origin="upload")
    backend.change(embedder=embedder, sources=[later])
    assert traces(backend.data_dir, [MARKER, LATIN_MARKER]) == []


def test_a_file_taken_out_of_the_corpus_leaves_no_trace_after_the_next_ingest(embedder, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "private.txt").write_text(private_document("private").raw_text, encoding="utf-8")
    (docs / "kept.txt").write_text("村务公开制度\n村务要按时公开。", encoding="utf-8")
    backend = LocalBackend(BackendConfig(kind="local", data_dir=tmp_path / "data"))
    backend.ingest(embedder=embedder, docs_dir=docs)
    backend.ingest(embedder=embedder, docs_dir=docs)  # an index that takes changes: the next one is incremental
    assert traces(backend.data_dir, [MARKER])
    (docs / "private.txt").unlink()
    assert backend.ingest(embedder=embedder, docs_dir=docs).removed == 1
    assert traces(backend.data_dir, [MARKER, LATIN_MARKER]) == []


def test_a_writer_starting_over_an_unpurged_delete_purges_it_before_any_job(backend, embedder):
    """The chaos soak's gap: after a kill between a delete's commit and its purge, the text stayed on disk until
    the next change, indefinitely if none came (a retried DELETE is a 404)."""
    from index.stores.local.live import change_index
    from service.engines import open_engine
    from service.settings import Settings
    from service.writer import KnowledgeBaseWriter

    backend.change(embedder=embedder, sources=[private_document("private")])
    change_index(data_dir=backend.data_dir, embedder=embedder, remove={"private"})  # committed, never purged
    assert traces(backend.data_dir, [MARKER])
    settings = Settings(data_dir=backend.data_dir, build_on_start=False)
    engine = open_engine(settings)
    writer = KnowledgeBaseWriter(engine, settings)
    try:
        deadline = time.monotonic() + 60
        while engine.index.manifest.tombstones and time.monotonic() < deadline:  # reloaded once purged
            time.sleep(0.2)
        assert traces(backend.data_dir, [MARKER, LATIN_MARKER]) == []
        assert engine.index.catalogue.document("private") is None
        assert engine.index.manifest.tombstones == {}  # the engine serves the purged generation
    finally:
        writer.close()
        engine.close()
