"""The contract every index backend passes, as test mixins: one per verb, at the level the engine reads.

A backend's test class inherits them and supplies two pytest fixtures:

- ``make_backend``: ``make_backend(kb_id) -> IndexBackend``, the same storage each call (a second call is a
  restart: a new process opening what the first left);
- ``embedder``: a deterministic ``Embedder`` (the same text, the same vector), fast enough to embed every
  change again; ``HashEmbedder`` below is one.

Each mixin compares what the backend serves after a verb with what a fresh build of the same documents
serves: the same passages found, with the same dense and BM25 scores (ids may differ: they are matched by
document and position). Nothing here imports pytest, so a backend living elsewhere can run it too.
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import os
import signal
from dataclasses import replace

import numpy as np

from index.ingest.chunk import ChunkingParams
from index.ingest.clean import normalize_for_matching
from index.ingest.documents import SourceDocument
from index.stores.base import BackendConfig, IndexBackend, IndexReader
from index.stores.factory import open_backend

CHUNKING = ChunkingParams(target_chars=120, max_chars=200, overlap_chars=0)
QUERIES = ("街道综合行政执法", "乡镇机构改革 编制", "便民服务中心 窗口", "人大工作 街道")
_fresh_kbs = itertools.count()


class HashEmbedder:
    """Vectors from a hash of the text: the same text, the same vector, in any process, with no model."""

    name, dimension, max_tokens = "hash-384", 384, 512

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        seeds = [int(hashlib.sha256(t.encode()).hexdigest()[:8], 16) for t in texts]
        rows = np.array([np.random.default_rng(s).normal(size=384) for s in seeds], dtype=np.float32)
        rows = rows.reshape(len(texts), 384)
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)

    embed_queries = embed_passages


class _KilledWhileEmbedding(HashEmbedder):
    """Kills its own process (SIGKILL: no cleanup, no exception) when a change first asks it for vectors."""

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def _change_and_die(config: BackendConfig, sources: list[SourceDocument], remove: list[str]) -> None:
    """In a process of its own: open the backend as a writer would and change it, dying part-way."""
    open_backend(config).change(embedder=_KilledWhileEmbedding(), sources=sources, remove=remove, chunking=CHUNKING)


def sample_documents() -> list[SourceDocument]:
    """Four short notices with sections and shared words, so BM25 statistics move when one goes."""
    bodies = {
        "law": "一、总体要求\n街道综合行政执法队伍统一行使执法权。编制由县级机构编制部门核定。\n"
        "二、主要任务\n（一）整合执法力量。街道设立综合行政执法办公室，配备执法人员12名。",
        "towns": "一、乡镇机构改革\n乡镇党政机构设置为7个，编制总额按人口规模核定。\n"
        "二、便民服务\n乡镇便民服务中心设立综合窗口，实行一窗受理。",
        "service": "便民服务中心建设\n每个街道建设一个便民服务中心，设置窗口不少于8个。\n"
        "便民服务事项清单由县政府公布。",
        "congress": "街道人大工作\n街道设立人大工作委员会，人大工作委员会主任由街道党工委副书记兼任。\n"
        "人大代表联络站每季度至少开展一次活动。",
    }
    return [SourceDocument(doc_id, f"关于{doc_id}的通知", f"{doc_id}.txt", text) for doc_id, text in bodies.items()]


def revised(document: SourceDocument) -> SourceDocument:
    return SourceDocument(document.doc_id, document.title, document.source,
                          document.raw_text + "\n三、附则\n本通知自印发之日起施行，编制调整另行通知。")  # fmt: skip


def served(reader: IndexReader, embedder) -> dict:
    """What a reader answers, keyed by (doc_id, ordinal) rather than by id: documents, chunk texts, dense
    and BM25 scores for every query, and the BM25 statistics (idf) of the query words."""
    catalogue = reader.catalogue
    documents = sorted(d.doc_id for d in catalogue.documents())
    chunk_ids = catalogue.chunk_ids(documents)
    chunks = {c.chunk_id: c for c in catalogue.chunks(chunk_ids)}
    key = {chunk_id: (c.doc_id, c.ordinal) for chunk_id, c in chunks.items()}
    texts = {key[i]: c.text for i, c in chunks.items()}
    figures = {}
    for query in QUERIES:
        lexical = reader.lexical.search(query, k=len(chunk_ids) or 1)
        vector = embedder.embed_queries([query])[0]
        dense = reader.vectors.search(vector, k=len(chunk_ids) or 1)
        figures[query] = {
            "bm25": {key[int(i)]: float(s) for i, s in zip(lexical.ids, lexical.scores, strict=True)},
            "dense": {key[int(i)]: float(s) for i, s in zip(dense.ids, dense.scores, strict=True) if int(i) in key},
        }
    words = sorted({w for q in QUERIES for w in q.split()} | {"编制", "街道", "窗口"})
    idf = {w: reader.lexical.idf(w) for w in words}
    return {"documents": documents, "texts": texts, "queries": figures, "idf": idf, "chunks": catalogue.count()}


def assert_same_serving(found: dict, expected: dict, tolerance: float = 1e-4) -> None:
    """The same documents, texts and chunk count, and every score within ``tolerance`` (sums over segments
    may differ in their last bits)."""
    assert (found["documents"], found["texts"], found["chunks"]) == (
        expected["documents"], expected["texts"], expected["chunks"],
    )  # fmt: skip
    assert found["idf"].keys() == expected["idf"].keys()
    assert np.allclose(list(found["idf"].values()), list(expected["idf"].values()), atol=tolerance)
    for query, figures in expected["queries"].items():
        for kind in ("bm25", "dense"):
            got, want = found["queries"][query][kind], figures[kind]
            assert got.keys() == want.keys(), (query, kind)
            assert np.allclose([got[k] for k in want], list(want.values()), atol=tolerance), (query, kind)


class BackendHelpers:
    """What the verb mixins share."""

    def fresh(self, make_backend, embedder, documents: list[SourceDocument]) -> dict:
        """What a backend built from nothing but ``documents`` serves."""
        backend: IndexBackend = make_backend(f"fresh{next(_fresh_kbs)}")
        backend.create_empty(embedder=embedder, chunking=CHUNKING)
        if documents:
            backend.change(embedder=embedder, sources=documents, chunking=CHUNKING)
        return self.serving(backend, embedder)

    def serving(self, backend: IndexBackend, embedder) -> dict:
        reader = backend.open_reader(embedder_name=embedder.name, dimension=embedder.dimension)
        try:
            return served(reader, embedder)
        finally:
            reader.close()

    def started(self, make_backend, embedder, kb_id: str) -> IndexBackend:
        backend: IndexBackend = make_backend(kb_id)
        backend.create_empty(embedder=embedder, chunking=CHUNKING)
        backend.change(embedder=embedder, sources=sample_documents(), chunking=CHUNKING)
        return backend


class AddDocumentsContract(BackendHelpers):
    def test_added_documents_are_served_as_a_fresh_build_serves_them(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "adds")
        text = "一、窗口服务\n街道便民服务窗口延长服务时间。编制不变。"
        extra = SourceDocument("extra", "补充通知", "extra.txt", text)
        report = backend.change(embedder=embedder, sources=[extra], chunking=CHUNKING)
        assert (report.added, report.documents) == (1, len(sample_documents()) + 1)
        expected = self.fresh(make_backend, embedder, [*sample_documents(), extra])
        assert_same_serving(self.serving(backend, embedder), expected)

    def test_a_change_names_a_new_generation(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "generations")
        before = backend.current_generation()
        extra = SourceDocument("extra", "补充通知", "extra.txt", "街道便民服务窗口延长服务时间。")
        report = backend.change(embedder=embedder, sources=[extra], chunking=CHUNKING)
        assert report.added == 1 and backend.current_generation() not in (None, before)
        assert backend.stored_counts()["documents"] == len(sample_documents()) + 1


class ReplaceDocumentsContract(BackendHelpers):
    def test_a_replaced_document_is_served_as_a_fresh_build_of_its_new_text(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "replaces")
        new = revised(sample_documents()[1])
        backend.change(embedder=embedder, sources=[new], chunking=CHUNKING)
        expected = [new if d.doc_id == new.doc_id else d for d in sample_documents()]
        assert_same_serving(self.serving(backend, embedder), self.fresh(make_backend, embedder, expected))


class DeleteDocumentsContract(BackendHelpers):
    def test_a_deleted_document_leaves_what_a_build_without_it_serves(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "deletes")
        report = backend.change(embedder=embedder, remove=["towns"], chunking=CHUNKING)
        assert report.removed == 1 and report.documents == len(sample_documents()) - 1
        expected = [d for d in sample_documents() if d.doc_id != "towns"]
        assert_same_serving(self.serving(backend, embedder), self.fresh(make_backend, embedder, expected))

    def test_a_delete_is_final_after_a_restart(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "restarts")
        backend.change(embedder=embedder, remove=["law"], chunking=CHUNKING)
        reopened = make_backend("restarts")  # as a new process would open it
        reader = reopened.open_reader(embedder_name=embedder.name, dimension=embedder.dimension)
        try:
            assert reader.catalogue.known_doc_ids(["law"]) == set()
            assert "law" not in {d.doc_id for d in reader.catalogue.documents()}
            hits = reader.lexical.search("综合行政执法办公室", k=50)
            assert all(c.doc_id != "law" for c in reader.catalogue.chunks([int(i) for i in hits.ids]))
        finally:
            reader.close()


class KnowledgeBasesApartContract(BackendHelpers):
    def test_knowledge_bases_do_not_see_each_others_documents_or_statistics(self, make_backend, embedder):
        alone = self.started(make_backend, embedder, "apart-a")
        before = self.serving(alone, embedder)
        other = make_backend("apart-b")
        other.create_empty(embedder=embedder, chunking=CHUNKING)
        neighbour = SourceDocument("neighbour", "邻近通知", "neighbour.txt", "街道 编制 窗口 " * 20)
        other.change(embedder=embedder, sources=[neighbour], chunking=CHUNKING)
        assert_same_serving(self.serving(alone, embedder), before)
        assert self.serving(other, embedder)["documents"] == ["neighbour"]
        other.drop(embedder.dimension)


class KilledWriterContract(BackendHelpers):
    def test_a_writer_stopped_mid_change_leaves_the_last_complete_state(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "killed")
        before = self.serving(backend, embedder)

        def stop(done: int, total: int) -> None:
            raise KeyboardInterrupt  # as a kill would, part-way through embedding: nothing may be half-written

        try:
            backend.change(embedder=embedder, sources=[revised(sample_documents()[2])], remove=["law"],
                           chunking=CHUNKING, on_progress=stop)  # fmt: skip
        except KeyboardInterrupt:
            pass
        else:
            raise AssertionError("the change was expected to stop")
        assert_same_serving(self.serving(make_backend("killed"), embedder), before)
        backend.change(embedder=embedder, remove=["law"], chunking=CHUNKING)  # the next writer goes on
        expected = [d for d in sample_documents() if d.doc_id != "law"]
        after = self.serving(make_backend("killed"), embedder)
        assert_same_serving(after, self.fresh(make_backend, embedder, expected))

    def test_a_writer_killed_mid_change_leaves_the_last_complete_state(self, make_backend):
        embedder = HashEmbedder()  # the killed writer's vectors, in the parent as in the child
        backend = self.started(make_backend, embedder, "sigkill")
        before = self.serving(backend, embedder)
        writer = multiprocessing.get_context("spawn").Process(
            target=_change_and_die, args=(backend.config, [revised(sample_documents()[3])], ["service"])
        )
        writer.start()
        writer.join(120)
        assert writer.exitcode == -signal.SIGKILL
        assert_same_serving(self.serving(make_backend("sigkill"), embedder), before)
        backend.change(embedder=embedder, remove=["service"], chunking=CHUNKING)  # the lock went with the process
        expected = [d for d in sample_documents() if d.doc_id != "service"]
        after = self.serving(make_backend("sigkill"), embedder)
        assert_same_serving(after, self.fresh(make_backend, embedder, expected))


class _RecordingEmbedder(HashEmbedder):
    """The same vectors, with every text it was asked to embed kept."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        self.texts += texts
        return super().embed_passages(texts)


class CorrectChunkContract(BackendHelpers):
    def test_a_corrected_chunk_is_served_with_its_new_text_and_only_it_is_embedded(self, make_backend):
        embedder = _RecordingEmbedder()
        backend = self.started(make_backend, embedder, "corrections")
        before = self.serving(backend, embedder)
        old = before["texts"][("towns", 1)]
        new = old.replace("便民服务", "群众服务驿站")
        embedder.texts.clear()
        done = backend.correct_chunk(embedder=embedder, doc_id="towns", ordinal=1, text=new)
        assert (done.before, done.after, done.ordinal) == (old, new, 1)
        flat_new = normalize_for_matching(new)
        assert len(embedder.texts) >= 2 and all(t.split("\n")[-1] in flat_new for t in embedder.texts)
        after = self.serving(backend, embedder)
        assert after["texts"] == {**before["texts"], ("towns", 1): new}
        reader = backend.open_reader(embedder_name=embedder.name, dimension=embedder.dimension)
        try:
            (found,) = reader.catalogue.chunks([done.chunk_id])
            assert (found.doc_id, found.ordinal, found.text) == ("towns", 1, new)
            assert int(reader.lexical.search("驿站", k=1).ids[0]) == done.chunk_id
        finally:
            reader.close()
        backend.correct_chunk(embedder=embedder, doc_id="towns", ordinal=1, text=old)  # a rollback
        assert_same_serving(self.serving(backend, embedder), before)


class DocumentTimesContract(BackendHelpers):
    def test_a_document_keeps_when_it_came_through_replaces_and_merges(self, make_backend, embedder):
        backend = self.started(make_backend, embedder, "times")
        first = {d.doc_id: d for d in self.documents(backend, embedder)}
        assert all(d.added_at and d.added_at == d.updated_at for d in first.values())
        came = "2020-01-02T03:04:05+00:00"  # a document coming back from the trash keeps its first time
        back = replace(revised(sample_documents()[0]), doc_id="back", added_at=came)
        backend.change(embedder=embedder, sources=[back], chunking=CHUNKING)
        backend.change(embedder=embedder, sources=[replace(back, raw_text=back.raw_text + "编制另行核定。")],
                       chunking=CHUNKING)  # fmt: skip
        backend.merge(full=True)
        found = {d.doc_id: d for d in self.documents(backend, embedder)}
        assert (found["back"].added_at, found["back"].updated_at > came) == (came, True)
        assert {k: (d.added_at, d.updated_at) for k, d in found.items() if k != "back"} == {
            k: (d.added_at, d.updated_at) for k, d in first.items()
        }
        backend.change(embedder=embedder, remove=["back"], chunking=CHUNKING)
        backend.change(embedder=embedder, sources=[replace(back, added_at=None)], chunking=CHUNKING)
        assert {d.doc_id: d for d in self.documents(backend, embedder)}["back"].added_at > came  # a new arrival

    def documents(self, backend: IndexBackend, embedder) -> list:
        reader = backend.open_reader(embedder_name=embedder.name, dimension=embedder.dimension)
        try:
            listed = reader.catalogue.documents()
            assert listed == [reader.catalogue.document(d.doc_id) for d in listed]
            return listed
        finally:
            reader.close()


class IndexBackendContract(
    DocumentTimesContract,
    CorrectChunkContract,
    AddDocumentsContract,
    ReplaceDocumentsContract,
    DeleteDocumentsContract,
    KnowledgeBasesApartContract,
    KilledWriterContract,
):
    """Every verb: a backend's test class inherits this and supplies ``make_backend`` and ``embedder``."""
