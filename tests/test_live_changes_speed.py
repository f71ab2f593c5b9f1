"""What keeps a live change's cost the change's: nothing of it waits on a model load or reads the whole index.

The times themselves are measured by eval/bench_live_http.py; these tests check the mechanisms.
"""

from __future__ import annotations

import shutil
import sqlite3

from index.ingest.documents import SourceDocument
from index.stores.local import generations
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.live import change_index

NOTICE = "关于青鸾湾海藻养殖保险试点的通知。青鸾湾海藻养殖保险试点的保费补贴比例为百分之六十五。"


def test_a_change_reads_only_the_catalogue_rows_of_the_documents_it_changes(
    seed_data_dir, embedder, tmp_path, monkeypatch
):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    corpus_doc = SqliteCatalogue(next(data_dir.glob("index/segments/*/catalogue.sqlite3")), read_only=True)
    try:
        first_doc_id = corpus_doc.doc_ids()[0]
    finally:
        corpus_doc.close()
    listed = []
    every_doc_id = SqliteCatalogue.doc_ids
    monkeypatch.setattr(SqliteCatalogue, "doc_ids", lambda self: listed.append(self) or every_doc_id(self))
    notice = SourceDocument("notice", "海藻养殖保险试点", "notice.txt", NOTICE, (), "upload")
    replaced = SourceDocument("notice", "海藻养殖保险试点", "notice.txt", NOTICE + "试点期限为三年。", (), "upload")
    changes = [{"sources": [notice]}, {"sources": [replaced]}, {"remove": {"notice", first_doc_id}}]
    reports = []
    for change in changes:
        reports.append(change_index(data_dir=data_dir, embedder=embedder, **change))
        assert listed == []  # no segment's full list of documents was read: an add, a replace, a delete
    assert [(r.added, r.removed) for r in reports] == [(1, 0), (1, 1), (0, 2)]
    assert [r.documents for r in reports] == [10, 10, 8]
    manifest = generations.read_manifest(generations.current_build_dir(data_dir))
    dead = {d for t in manifest.tombstones.values() for d in t.doc_ids}
    assert dead == {"notice", first_doc_id}  # the replaced version and both deleted documents
    assert sum(len(t.doc_ids) for t in manifest.tombstones.values()) == 3
    index = generations.load_index(data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
    try:
        assert index.catalogue.known_doc_ids(["notice", first_doc_id]) == set()
        assert index.catalogue.document_count() == 8
    finally:
        index.close()


def test_an_uploads_duplicate_check_looks_its_content_hash_up_in_an_index(tmp_path):
    path = tmp_path / "catalogue.sqlite3"
    SqliteCatalogue(path).close()
    with sqlite3.connect(path) as conn:
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT doc_id FROM documents WHERE content_hash = ?", ("0" * 64,))
        steps = [row[-1] for row in plan]
    # Not a scan of every document's row (with its text), once per upload.
    assert any("USING INDEX" in step or "USING COVERING INDEX" in step for step in steps), steps
