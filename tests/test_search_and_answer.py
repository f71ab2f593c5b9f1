"""Retrieval and answer composition in process, over the real seed index."""

from __future__ import annotations

import pytest

from index.errors import UnknownDocumentError
from index.search import Retriever
from service.answer import NOT_COVERED, AnswerComposer, AnswerParams


@pytest.fixture(scope="module")
def retriever(seed_index, embedder):
    return Retriever(seed_index, embedder)


@pytest.fixture(scope="module")
def composer(seed_index):
    return AnswerComposer(seed_index)


def test_hybrid_reports_both_components(retriever):
    hits = retriever.search("镇江市街道人大工委人员配备", top_k=5).hits
    assert hits[0].chunk.doc_id == "zhenjiang-subdistrict-npc-work"
    assert all(0.0 < h.dense <= 1.0 and h.lexical >= 0.0 for h in hits)
    assert hits[0].lexical > 0.0


def test_rrf_and_weighted_fusion_both_work(seed_index, embedder):
    for fusion in ("rrf", "weighted"):
        hits = Retriever(seed_index, embedder, fusion=fusion).search("八局两中心", top_k=3).hits
        assert hits[0].chunk.doc_id == "haian-central-town-reform"
    with pytest.raises(ValueError, match="unknown fusion"):
        Retriever(seed_index, embedder, fusion="max")


def test_results_are_distinct_passages(retriever):
    hits = retriever.search("街道机构改革", top_k=20).hits
    assert len({h.chunk.chunk_id for h in hits}) == len(hits) == len({h.chunk.text for h in hits})


def test_unknown_doc_ids_are_named(retriever):
    with pytest.raises(UnknownDocumentError) as caught:
        retriever.search("街道", doc_ids=["haian-central-town-reform", "nope", "nada"])
    assert caught.value.doc_ids == ["nope", "nada"]


def test_full_width_and_traditional_queries_match(retriever):
    plain = retriever.search("2019年3月市县机构改革", top_k=1).hits[0].chunk.chunk_id
    wide = retriever.search("２０１９年３月市縣機構改革", top_k=1).hits[0].chunk.chunk_id
    assert plain == wide


def test_answer_quotes_sentences_and_highlights_them(retriever, composer):
    question = "镇江市除31个镇外共有多少个街道？"
    answer = composer.compose(question, retriever.search(question, top_k=5))
    assert answer.answerable and "25个街道" in answer.text
    assert 1 <= len(answer.quoted) <= 3
    for quoted in answer.quoted:
        citation = answer.citations[quoted.citation - 1]
        assert citation.hit.chunk.text[quoted.start : quoted.end] == quoted.text
        assert (quoted.start, quoted.end) in citation.highlights
        assert f"{quoted.text}[{quoted.citation}]" in answer.text


def test_abstention_follows_the_threshold(seed_index, retriever):
    question = "红烧肉怎么做才好吃？"
    result = retriever.search(question, top_k=3)
    declined = AnswerComposer(seed_index).compose(question, result)
    assert not declined.answerable and declined.text == NOT_COVERED
    assert all(c.weak for c in declined.citations)
    forced = AnswerComposer(seed_index, AnswerParams(min_relevance=0.0)).compose(question, result)
    assert forced.answerable and forced.quoted


def test_no_hits_means_no_answer(composer, retriever, seed_index):
    empty = retriever.search("街道", doc_ids=[]).hits
    assert empty == []
    answer = composer.compose("街道", retriever.search("街道", doc_ids=[]))
    assert not answer.answerable and answer.citations == []
