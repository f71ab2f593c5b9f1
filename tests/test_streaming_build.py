"""A build streamed in batches: several segments searched like one build, sources read as it goes, one batch held."""

from __future__ import annotations

import dataclasses
import gc
import random
import shutil

import numpy as np
import pytest

from index.ingest import parallel
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import load_corpus
from index.ingest.passages import PreparedDocument
from index.quality.gold import load_questions
from index.stores.bm25 import Bm25LexicalStore, read_saved_postings
from index.stores.bm25_writer import Bm25PostingsWriter
from index.stores.local import segments as seg
from index.stores.local.build import build_index
from index.stores.local.generations import current_build_dir, load_index
from tests.conftest import DOCS_RAW

SMALL = {"batch_chunks": 8, "segment_chunks": 25}  # the seed corpus's 53 chunks: a few batches a segment
QUESTIONS = [q.question for q in load_questions()][:25]


class CountedSources:
    """Sources handed out one at a time, counting how many have been taken."""

    def __init__(self, corpus) -> None:
        self.corpus, self.read = corpus, 0

    def __iter__(self):
        for source in self.corpus:
            self.read += 1
            yield source


class RecordingEmbedder:
    """The real embedder, each distinct text encoded once, noting at each call how many prepared documents
    are alive and how many sources the build has read."""

    def __init__(self, inner, sources_read) -> None:
        self.inner = inner
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens
        self.count_tokens = getattr(inner, "count_tokens", len)
        self._sources_read = sources_read
        self._known: dict[str, np.ndarray] = {}
        self.calls: list[tuple[int, int]] = []  # (prepared documents alive, sources read)

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        alive = sum(isinstance(o, PreparedDocument) for o in gc.get_objects())
        self.calls.append((alive, self._sources_read()))
        new = [t for t in dict.fromkeys(texts) if t not in self._known]
        if new:
            self._known.update(zip(new, self.inner.embed_passages(new), strict=True))
        return np.stack([self._known[t] for t in texts])


def load(data_dir, embedder):
    return load_index(data_dir, embedder_name=embedder.name, dimension=embedder.dimension)


def same_ranking(found, expected, tolerance: float) -> bool:
    """Same scores to ``tolerance``; ids the same but where two scores tie within it."""
    if len(found.ids) != len(expected.ids) or not np.allclose(found.scores, expected.scores, atol=tolerance):
        return False
    return all(
        a == b or abs(float(s) - float(t)) <= tolerance
        for a, b, s, t in zip(found.ids, expected.ids, found.scores, expected.scores, strict=True)
    )


def test_a_build_in_small_batches_writes_several_segments_searched_like_one_build(seed_data_dir, embedder, tmp_path):
    build_index(docs_dir=DOCS_RAW, data_dir=tmp_path, embedder=embedder, show_progress=False, **SMALL)
    streamed, whole = load(tmp_path, embedder), load(seed_data_dir, embedder)
    try:
        assert len(streamed.segments) >= 3 and len(whole.segments) == 1
        assert all(s.info.chunks <= SMALL["segment_chunks"] + 20 for s in streamed.segments)  # a document is not split
        assert [s.info.first_chunk for s in streamed.segments[1:]] == [s.info.end_chunk for s in streamed.segments[:-1]]
        assert streamed.manifest.counts == whole.manifest.counts
        assert streamed.catalogue.count() == whole.catalogue.count() == streamed.vectors.count()
        assert streamed.lexical.count() == whole.lexical.count()
        ids = np.arange(1, whole.catalogue.count() + 1)
        assert [c.text for c in streamed.catalogue.chunks(ids)] == [c.text for c in whole.catalogue.chunks(ids)]
        # The encoder's batches differ (padding), so vectors agree to float rounding, not bit for bit.
        sentences = np.arange(1, whole.manifest.counts["sentences"] + 1)
        pairs = streamed.sentence_vectors.vectors(sentences) * whole.sentence_vectors.vectors(sentences)
        assert np.sum(pairs, axis=1).min() > 0.9999
        for question, vector in zip(QUESTIONS, embedder.embed_queries(QUESTIONS), strict=True):
            # BM25's statistics are the whole index's, whichever segment a chunk is in.
            assert same_ranking(streamed.lexical.search(question, 20), whole.lexical.search(question, 20), 1e-4)
            assert same_ranking(streamed.vectors.search(vector, 20), whole.vectors.search(vector, 20), 1e-3)
    finally:
        streamed.close()
        whole.close()


def test_the_build_reads_its_sources_as_it_goes_and_holds_one_batch(embedder, tmp_path):
    seed = load_corpus(DOCS_RAW)
    corpus = [
        dataclasses.replace(s, doc_id=f"{s.doc_id}-{n}", title=f"{s.title}（{n}）") for n in range(4) for s in seed
    ]
    sources = CountedSources(corpus)

    recording = RecordingEmbedder(embedder, lambda: sources.read)
    report = build_index(
        sources=iter(sources), data_dir=tmp_path, embedder=recording, show_progress=False, workers=1, **SMALL
    )

    assert report.documents == len(corpus) == 36
    assert recording.calls[0][1] <= 3  # the first batch is embedded before the rest of the corpus is read
    # The batch being embedded (two or three documents here), and the first one while its agreement is measured.
    assert max(alive for alive, _ in recording.calls) <= 8


def test_the_cleaning_pool_works_ahead_of_its_reader_by_a_bounded_amount(monkeypatch):
    monkeypatch.setattr(parallel, "PARALLEL_MIN_CHARS", 20_000)
    monkeypatch.setattr(parallel, "PREFETCH_CHARS", 40_000)
    seed = load_corpus(DOCS_RAW)
    corpus = [dataclasses.replace(s, doc_id=f"{s.doc_id}-{n}") for n in range(60) for s in seed]
    sources = CountedSources(corpus)

    cleaned = parallel.cleaned(iter(sources), ChunkingParams(), workers=2)
    first_source, first = next(cleaned)
    read_ahead = sources.read
    rest = list(cleaned)
    smallest = min(len(s.raw_text) for s in seed)
    assert first_source is corpus[0] and first.tokens is not None  # the pool made it
    assert read_ahead <= (20_000 + 40_000) // smallest + 2 * parallel.TASK_DOCUMENTS < len(corpus)
    assert [s for s, _ in rest] == corpus[1:]
    alone = parallel.clean_one(corpus[-1], ChunkingParams(), True)
    assert rest[-1][1] == alone


def test_a_streamed_rebuild_of_an_unchanged_corpus_reuses_every_vector(seed_data_dir, embedder, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    report = build_index(docs_dir=DOCS_RAW, data_dir=data_dir, embedder=embedder, show_progress=False, **SMALL)
    assert (report.embedded_documents, report.reused_documents, report.embedded_passages) == (0, 9, 0)
    rebuilt, whole = load(data_dir, embedder), load(seed_data_dir, embedder)
    try:
        ids = np.arange(1, whole.catalogue.count() + 1)
        assert np.array_equal(rebuilt.vectors.vectors(ids), whole.vectors.vectors(ids))
    finally:
        rebuilt.close()
        whole.close()


def test_a_build_that_fails_midway_leaves_the_current_index_and_no_segment(seed_data_dir, embedder, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    before = {p.name for p in seg.segments_root(data_dir).iterdir()}
    current = current_build_dir(data_dir)

    def sources():
        yield from load_corpus(DOCS_RAW)[:6]  # two segments' worth are written before the failure
        raise OSError("the disk went away")

    with pytest.raises(OSError, match="went away"):
        build_index(sources=sources(), data_dir=data_dir, embedder=embedder, show_progress=False, **SMALL)
    assert {p.name for p in seg.segments_root(data_dir).iterdir()} == before
    assert current_build_dir(data_dir) == current


def test_postings_written_batch_by_batch_are_the_file_one_store_saves(tmp_path):
    rng = random.Random(7)
    words = [f"词{i}" for i in range(400)]
    token_lists = [[rng.choice(words[: rng.randint(1, 400)]) for _ in range(rng.randint(0, 60))] for _ in range(900)]
    ids = list(range(11, 11 + 3 * len(token_lists), 3))
    store = Bm25LexicalStore(tokenizer=lambda tokens: tokens)
    store.add(ids, token_lists)
    store.save(tmp_path / "one.npz")
    writer = Bm25PostingsWriter()
    for start in range(0, len(ids), 128):
        writer.add(ids[start : start + 128], token_lists[start : start + 128])
    writer.finish(tmp_path / "batched.npz")
    assert (tmp_path / "batched.npz").read_bytes() == (tmp_path / "one.npz").read_bytes()
    assert read_saved_postings(tmp_path / "batched.npz").terms[:3] == store._terms[:3]
    writer.add([5, 6], [["词1"], ["词2"]])
    with pytest.raises(ValueError, match="ascend"):  # rows are numbered in the order chunks come
        writer.add([6], [["词1"]])
