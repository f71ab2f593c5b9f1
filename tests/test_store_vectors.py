"""Vector stores (FAISS, Milvus): one contract, over real FAISS and a real milvus-lite server."""

import tempfile
import uuid
from pathlib import Path

import numpy as np
import pytest
from store_samples import unit_vectors

from index.stores.local.vectors import FaissVectorStore


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
    vectors = unit_vectors(12, 16)
    ids = np.array([5, 900_000_000_001, 17, 3, 42, 8, 77, 1 << 40, 61, 2, 19, 33], dtype=np.int64)
    store = new(16)
    store.add(ids, vectors)
    return store, ids, vectors


def test_vectors_search_is_best_first_with_cosine_scores(vector_store):
    store, ids, vectors = vector_store
    assert store.count() == 12
    query = unit_vectors(1, 16, seed=1)[0]
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
    for query in (vectors[0], vectors[4], unit_vectors(1, 16, seed=2)[0]):
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
    for query in unit_vectors(4, 16, seed=3):
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
        store.add(np.array([1, 2, 3]), unit_vectors(2, 16))  # ids and rows disagree
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
    store.add(np.array([7, 9]), unit_vectors(2, 4))
    assert sorted(store.search(np.array([1, 0, 0, 0], np.float32), 1000).ids.tolist()) == [7, 9]
    assert len(store.search(np.array([1, 0, 0, 0], np.float32), 0).ids) == 0


def test_milvus_vectors_knowledge_bases_share_a_collection_apart(milvus_uri):
    """Two knowledge bases in one collection (its partition key): each sees, counts and deletes only its own."""
    from index.stores.milvus.vectors import MilvusVectorStore

    name = f"contract_{uuid.uuid4().hex}"
    county, city = (MilvusVectorStore(4, uri=milvus_uri, collection=name, kb_id=kb) for kb in ("county", "city"))
    try:
        county.add(np.array([1, 2]), unit_vectors(2, 4, seed=1))
        city.add(np.array([3]), unit_vectors(1, 4, seed=2))
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
