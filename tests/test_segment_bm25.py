"""BM25 over segments and tombstones scores like one index of the live documents (and like the formula)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from index.stores.bm25 import Bm25LexicalStore
from index.stores.local.lexical import LiveSegment, SegmentedLexicalStore, SegmentPostings

VOCABULARY = [f"w{i}" for i in range(25)]


def identity(words):
    return list(words)


def brute_force(documents: dict[int, list[str]], query: list[str], k1=1.2, b=0.75) -> dict[int, float]:
    n = len(documents)
    average = sum(len(d) for d in documents.values()) / n if n else 1.0
    average = average or 1.0
    df = Counter(t for d in documents.values() for t in set(d))
    scores = {}
    for chunk_id, words in documents.items():
        tf = Counter(words)
        total = 0.0
        for term, qtf in Counter(query).items():
            if tf[term] and df[term]:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                total += qtf * idf * tf[term] * (k1 + 1) / (tf[term] + k1 * (1 - b + b * len(words) / average))
        if total:
            scores[chunk_id] = total
    return scores


def segmented(tmp_path, batches: list[dict[int, list[str]]], deleted: set[int]) -> SegmentedLexicalStore:
    live = []
    for i, batch in enumerate(batches):
        store = Bm25LexicalStore(tokenizer=identity)
        store.add(list(batch), list(batch.values()))
        path = tmp_path / f"segment-{i}.npz"
        store.save(path)
        postings = SegmentPostings.load(path)
        dead = [c for c in batch if c in deleted]
        df = Counter(t for c in dead for t in set(batch[c]))
        live.append(LiveSegment(postings, postings.rows_of(dead), dict(df)))
    return SegmentedLexicalStore(live, tokenizer=identity)


def check(tmp_path, batches, deleted, queries) -> None:
    documents = {c: words for batch in batches for c, words in batch.items() if c not in deleted}
    store = segmented(tmp_path, batches, deleted)
    single = Bm25LexicalStore(tokenizer=identity)
    single.add(list(documents), list(documents.values()))
    assert store.count() == single.count() == len(documents)
    for term in VOCABULARY[:8]:
        assert store.document_frequency(term) == single.document_frequency(term)
        assert math.isclose(store.idf(term), single.idf(term), rel_tol=1e-12)
    for query in queries:
        got, want = store.scores(query), single.scores(query)
        assert got.ids.tolist() == want.ids.tolist()
        np.testing.assert_allclose(got.scores, want.scores, rtol=2e-6)
        reference = brute_force(documents, query)
        assert sorted(reference) == got.ids.tolist()
        np.testing.assert_allclose(got.scores, [reference[i] for i in got.ids.tolist()], rtol=2e-5)
        top = store.search(query, 5)
        assert top.ids.tolist() == single.search(query, 5).ids.tolist() or np.allclose(
            top.scores, single.search(query, 5).scores, rtol=2e-6
        )


words = st.lists(st.sampled_from(VOCABULARY), min_size=0, max_size=12)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.lists(words, min_size=1, max_size=6)),
        st.tuples(st.just("delete"), st.integers(min_value=0, max_value=2**16)),
    ),
    min_size=1,
    max_size=10,
)
queries = st.lists(st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=4), min_size=1, max_size=4)


@settings(max_examples=60, deadline=None)
@given(operations=operations, queries=queries)
def test_segmented_bm25_equals_one_index_of_the_live_documents(tmp_path_factory, operations, queries):
    tmp_path = tmp_path_factory.mktemp("bm25")
    batches: list[dict[int, list[str]]] = []
    deleted: set[int] = set()
    next_id = 1
    for kind, value in operations:
        if kind == "add":
            batches.append({next_id + i: w for i, w in enumerate(value)})
            next_id += len(value)
        else:
            live = sorted(c for batch in batches for c in batch if c not in deleted)
            if live:
                deleted.add(live[value % len(live)])
    check(tmp_path, batches, deleted, queries)


def test_seeded_random_sequences_of_adds_and_deletes(tmp_path):
    rng = np.random.default_rng(15)
    weights = 1 / np.arange(1, len(VOCABULARY) + 1)
    weights /= weights.sum()
    batches, deleted, next_id = [], set(), 1
    for step in range(40):
        if step % 3 == 2 and next_id > 1:
            live = [c for b in batches for c in b if c not in deleted]
            deleted.update(rng.choice(live, size=min(len(live), 3), replace=False).tolist())
        else:
            size = int(rng.integers(1, 30))
            batch = {next_id + i: rng.choice(VOCABULARY, size=int(rng.integers(0, 40)), p=weights).tolist()
                     for i in range(size)}  # fmt: skip
            batches.append(batch)
            next_id += size
    queries = [rng.choice(VOCABULARY, size=int(rng.integers(1, 5)), p=weights).tolist() for _ in range(20)]
    check(tmp_path, batches, deleted, queries)


def test_allowed_ids_and_scores_of_given_ids(tmp_path):
    batches = [{1: ["a", "b"], 2: ["b", "c"]}, {3: ["a", "a", "c"], 4: ["d"]}]
    store = segmented(tmp_path, batches, {2})
    assert store.scores(["a", "b"], allowed_ids=[3, 2]).ids.tolist() == [3]
    scores = store.score(["a"], [4, 3, 1, 2])
    assert scores[0] == 0 and scores[3] == 0 and scores[1] > 0 and scores[2] > 0


def test_merged_postings_score_like_the_segments_they_replace(tmp_path):
    from index.stores.local.lexical import merge_postings

    rng = np.random.default_rng(3)
    batches, next_id = [], 1
    for size in (20, 5, 7):
        batches.append(
            {next_id + i: rng.choice(VOCABULARY, size=int(rng.integers(0, 15))).tolist() for i in range(size)}
        )
        next_id += size
    deleted = {2, 3, 21, 30}
    before = segmented(tmp_path, batches, deleted)
    parts = []
    for segment in before.segments:
        live = np.ones(len(segment.postings.row_ids), dtype=bool)
        live[segment.dead_rows] = False
        parts.append((segment.postings, live))
    assert merge_postings(parts, tmp_path / "merged.npz") == 32 - len(deleted)
    merged = SegmentPostings.load(tmp_path / "merged.npz")
    after = SegmentedLexicalStore([LiveSegment(merged, np.zeros(0, np.int64), {})], tokenizer=identity)
    assert not deleted & set(merged.row_ids.tolist()) and after.count() == before.count()
    assert all(merged.df(t) > 0 for t in merged.terms)  # terms only deleted rows held are gone
    for query in (["w0", "w1"], ["w3"], ["w2", "w2", "w7", "w9"]):
        a, b = before.scores(query), after.scores(query)
        assert a.ids.tolist() == b.ids.tolist()
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-6)


def test_sentence_vectors_with_gaps_are_found_by_their_runs():
    from index.stores.local.sentence_vectors import SentenceVectorStore

    ids = np.array([3, 4, 5, 9, 10, 15])
    assert SentenceVectorStore.runs_of(ids).tolist() == [[3, 3, 0], [9, 2, 3], [15, 1, 5]]
    store = SentenceVectorStore(np.arange(12, dtype=np.float32).reshape(6, 2), 3, SentenceVectorStore.runs_of(ids))
    assert store.vectors(np.array([15, 3, 9, 5]))[:, 0].tolist() == [10.0, 0.0, 6.0, 4.0]
    for missing in (2, 6, 11, 16):
        with pytest.raises(KeyError):
            store.vectors(np.array([missing]))
