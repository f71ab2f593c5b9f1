"""Building, rebuilding and loading indexes on disk."""

from __future__ import annotations

import json
import shutil

import pytest

from index.errors import IndexMismatchError, IndexNotFoundError
from index.ingest.chunk import ChunkingParams
from index.ingest.clean import clean_text, normalize_for_matching
from index.ingest.passages import passage_input
from index.stores.local import generations
from index.stores.local.build import build_index
from index.stores.local.generations import load_index
from tests.conftest import DOCS_RAW, CountingEmbedder


def test_manifest_records_embedder_chunking_counts_and_versions(seed_data_dir, seed_index):
    manifest = seed_index.manifest
    assert generations.current_build_dir(seed_data_dir).name == manifest.build_id
    assert manifest.embedder.dimension == 384
    assert manifest.chunking.target_chars == 300
    assert manifest.counts["documents"] == 9
    assert manifest.counts["chunks"] == seed_index.catalogue.count() == seed_index.vectors.count()
    assert manifest.counts["chunks"] == seed_index.lexical.count()
    assert manifest.counts["sentences"] == seed_index.sentence_vectors.count()
    assert {"faiss", "numpy", "python"} <= set(manifest.versions)
    assert {"clean_chunk", "embed", "vectors", "lexical", "catalogue"} <= set(manifest.timings_s)


def test_every_store_shares_the_chunk_ids(seed_index):
    ids = [c.chunk_id for d in seed_index.catalogue.documents() for c in seed_index.catalogue.document_chunks(d.doc_id)]
    assert len(ids) == len(set(ids)) == seed_index.vectors.count()
    assert seed_index.vectors.vectors(ids).shape == (len(ids), 384)  # every id is in FAISS
    assert all(score >= 0 for score in seed_index.lexical.score("街道", ids))


def test_chunks_point_into_the_cleaned_text(seed_index):
    for document in seed_index.catalogue.documents():
        text = seed_index.catalogue.document_text(document.doc_id)
        assert text == clean_text((DOCS_RAW / document.source).read_text(encoding="utf-8"))
        for chunk in seed_index.catalogue.document_chunks(document.doc_id):
            assert text[chunk.start : chunk.end] == chunk.text


@pytest.fixture()
def corpus_copy(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS_RAW, docs)
    return docs


def test_rebuild_embeds_only_changed_documents(corpus_copy, seed_data_dir, embedder, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    changed = corpus_copy / "haian-central-town-reform.txt"
    changed.write_text(changed.read_text(encoding="utf-8") + "试点镇还设立了便民服务中心。\n", encoding="utf-8")

    counting = CountingEmbedder(embedder)
    report = build_index(docs_dir=corpus_copy, data_dir=data_dir, embedder=counting, show_progress=False)

    assert (report.embedded_documents, report.reused_documents) == (1, 8)
    index = load_index(data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
    haian_chunks = index.catalogue.document_chunks("haian-central-town-reform")
    haian_sentences = index.catalogue.document_sentences("haian-central-town-reform")
    assert len(counting.passages) == len(haian_chunks) + len(haian_sentences)
    assert any("便民服务中心" in c.text for c in haian_chunks)
    # Reused vectors are the same vectors: a reused document's search results are unchanged.
    hit = index.vectors.search(embedder.embed_queries(["镇江市共有多少个街道"])[0], 1)
    assert index.catalogue.chunks(hit.ids.tolist())[0].doc_id == "zhenjiang-subdistrict-npc-work"
    index.close()


def test_unchanged_corpus_rebuild_embeds_nothing_and_switches_current(seed_data_dir, embedder, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    before = generations.current_build_dir(data_dir)
    counting = CountingEmbedder(embedder)
    report = build_index(docs_dir=DOCS_RAW, data_dir=data_dir, embedder=counting, show_progress=False)
    assert counting.passages == []
    assert report.reused_documents == 9
    after = generations.current_build_dir(data_dir)
    assert after != before and after.name == report.generation_id
    assert before.exists(), "an old build stays intact: readers that hold it keep working"


def test_loading_with_another_embedder_is_refused(seed_data_dir, embedder):
    with pytest.raises(IndexMismatchError, match=f"built with embedder '{embedder.name}'"):
        load_index(seed_data_dir, embedder_name="sentence-transformers:other", dimension=384)
    with pytest.raises(IndexMismatchError, match="768-d"):
        load_index(seed_data_dir, embedder_name=embedder.name, dimension=768)


def test_missing_index_is_reported(tmp_path):
    with pytest.raises(IndexNotFoundError, match="policyqa ingest"):
        load_index(tmp_path, embedder_name="x", dimension=1)


def test_corpus_without_manifest_takes_every_text_file(tmp_path, embedder):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("关于街道改革的通知\n一、总体要求\n街道要加强党的建设。", encoding="utf-8")
    (docs / "b.md").write_text("# 乡镇工作\n\n乡镇要做好便民服务。", encoding="utf-8")
    (docs / "c.txt").write_bytes("乡镇文件使用国标编码。".encode("gb18030"))
    (docs / "ignored.bin").write_bytes(b"\x00\x01")
    report = build_index(docs_dir=docs, data_dir=tmp_path / "data", embedder=embedder, show_progress=False)
    assert report.documents == 3
    index = load_index(tmp_path / "data", embedder_name=embedder.name, dimension=embedder.dimension)
    titles = {d.doc_id: d.title for d in index.catalogue.documents()}
    assert titles == {"a": "关于街道改革的通知", "b": "乡镇工作", "c": "乡镇文件使用国标编码。"}
    index.close()


def test_seed_manifest_lists_nine_documents_verbatim_from_the_seed():
    manifest = json.loads((DOCS_RAW / "manifest.json").read_text(encoding="utf-8"))["documents"]
    assert len(manifest) == 9
    seed = DOCS_RAW.parents[1] / "shared" / "seeds"
    bundle = next(seed.glob("*.txt"), None) if seed.exists() else None
    for entry in manifest:
        body = (DOCS_RAW / entry["file"]).read_text(encoding="utf-8")
        if bundle is not None:
            assert body.rstrip("\n") in bundle.read_text(encoding="utf-8")
            assert entry["title"] in bundle.read_text(encoding="utf-8").splitlines()


def test_a_sentence_longer_than_the_model_input_is_cut_to_fit_it(tmp_path, embedder):
    """Refused before (a ConfigurationError naming POLICYQA_CHUNK_MAX_CHARS, nothing indexed): a sentence is now
    capped by the embedder's token count, whatever the character caps."""
    docs = tmp_path / "docs"
    docs.mkdir()
    # One long sentence without a break (a repeated phrase would be cleaned away as a doubled opening).
    (docs / "long.txt").write_text("".join(f"第{i}项乡镇街道机构改革任务" for i in range(150)), encoding="utf-8")
    report = build_index(
        docs_dir=docs,
        data_dir=tmp_path / "data",
        embedder=embedder,
        chunking=ChunkingParams(target_chars=1200, max_chars=1500),
        show_progress=False,
    )
    assert report.documents == 1
    index = load_index(tmp_path / "data", embedder_name=embedder.name, dimension=embedder.dimension)
    text = index.catalogue.document_text("long")
    chunks = index.catalogue.document_chunks("long")
    sentences = index.catalogue.document_sentences("long")
    assert len(sentences) > 1 and len(chunks) > 1
    inputs = [passage_input("long", c.section, c.text) for c in chunks]
    inputs += [normalize_for_matching(text[s.start : s.end]) for s in sentences]
    assert max(embedder.count_tokens(t) for t in inputs) <= embedder.max_tokens
    index.close()


def test_a_document_that_fails_is_reported_and_the_rest_is_built(tmp_path, embedder):
    from index.ingest.documents import SourceDocument

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "good.txt").write_text("关于街道改革的通知\n一、总体要求\n街道要加强党的建设。", encoding="utf-8")
    (docs / "broken.docx").write_bytes(b"PK\x03\x04" + b"not really a zip archive" * 20)
    (docs / "empty.txt").write_text("   \n", encoding="utf-8")
    report = build_index(docs_dir=docs, data_dir=tmp_path / "data", embedder=embedder, show_progress=False,
                         keep_going=True)  # fmt: skip
    assert report.documents == 1
    assert {f.source for f in report.failed} == {"broken.docx", "empty.txt"}
    assert all(f.reason for f in report.failed)

    # One that fails while it is cleaned fails alone too (no reader makes one: here a page that is no text).
    good = SourceDocument("plan", "方案", "plan.txt", "乡镇要做好便民服务。")
    unclean = SourceDocument("unclean", "坏文件", "unclean.pdf", "第一页。", pages=("第一页。", None))
    report = build_index(sources=[unclean, good], data_dir=tmp_path / "data", embedder=embedder,
                         show_progress=False, keep_going=True)  # fmt: skip
    assert report.documents == 1 and [f.doc_id for f in report.failed] == ["unclean"]
    assert "TypeError" in report.failed[0].reason
    with pytest.raises(TypeError):  # without keep_going (an upload, a change) the error is the caller's
        build_index(sources=[unclean, good], data_dir=tmp_path / "data", embedder=embedder, show_progress=False)


def test_an_ingest_into_an_index_that_takes_changes_reports_a_file_broken_since(tmp_path, embedder):
    from index.stores.base import BackendConfig
    from index.stores.local.backend import LocalBackend

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("关于街道改革的通知\n街道要加强党的建设。", encoding="utf-8")
    (docs / "b.txt").write_text("乡镇工作要点\n乡镇要做好便民服务。", encoding="utf-8")
    backend = LocalBackend(BackendConfig(kind="local", data_dir=tmp_path / "data"))
    assert backend.ingest(embedder=embedder, docs_dir=docs).failed == ()
    (docs / "b.txt").write_bytes(b"\x00" * 8 + b"\xff\xfe" * 10)  # no text left once read
    (docs / "c.txt").write_text("村务公开制度\n村务要按时公开。", encoding="utf-8")
    report = backend.ingest(embedder=embedder, docs_dir=docs)
    assert [f.source for f in report.failed] == ["b.txt"]
    assert (report.added, report.removed, report.unchanged, report.documents) == (1, 1, 1, 2)


def test_old_builds_are_pruned_keeping_current_and_previous(seed_data_dir, embedder, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    for _ in range(3):
        build_index(docs_dir=DOCS_RAW, data_dir=data_dir, embedder=embedder, show_progress=False)
    builds = [p for p in (data_dir / "index").iterdir() if p.is_dir() and p.name != "segments"]
    assert len(builds) == 2
    assert generations.current_build_dir(data_dir) in builds
    listed = {s.segment_id for b in builds for s in generations.read_manifest(b).segments}
    assert {p.name for p in (data_dir / "index" / "segments").iterdir()} == listed


def test_an_index_of_an_older_format_is_refused_or_rebuilt(seed_data_dir, tmp_path):
    from index.errors import IndexFormatError
    from service.engines import open_engine
    from service.settings import Settings

    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    manifest_path = generations.current_build_dir(data_dir) / generations.MANIFEST_FILE
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest_path.write_text(json.dumps({**manifest, "format_version": 1}), encoding="utf-8")
    with pytest.raises(IndexFormatError, match="policyqa ingest"):
        open_engine(Settings(data_dir=data_dir, build_on_start=False))
    engine = open_engine(Settings(data_dir=data_dir, build_on_start=True))
    assert engine.index.manifest.format_version == generations.FORMAT_VERSION
    assert engine.index.catalogue.document_count() == 9
    engine.close()
