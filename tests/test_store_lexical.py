"""BM25 (local postings, Milvus rows) against a reference implementation, over real sentences from docs_raw/."""

import json
import math
import re
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from store_samples import IDS, QUERIES, SENTENCES

from index.ingest.tokenize import STOPWORDS, tokenize
from index.stores.bm25 import Bm25LexicalStore


def test_tokenize_folds_traditional_to_simplified():
    assert tokenize("開封市鄉鎮改革") == tokenize("开封市乡镇改革")
    assert "乡镇" in tokenize("開封市鄉鎮改革")
    assert tokenize("街道辦事處職能轉變") == tokenize("街道办事处职能转变")


def test_tokenize_by_sentence_equals_segmenting_the_whole_text():
    """The per-sentence cache must not change a single token (jieba cuts at punctuation anyway)."""
    from index.ingest.clean import normalize_for_matching
    from index.ingest.corpus import load_corpus
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
