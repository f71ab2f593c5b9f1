"""Retrieval and answer composition in process, over the real seed index."""

from __future__ import annotations

import pytest

from index.answering.compose import NOT_COVERED, AnswerComposer, AnswerParams
from index.answering.retrieval import Retriever
from index.errors import UnknownDocumentError


@pytest.fixture(scope="module")
def retriever(seed_index, embedder):
    return Retriever(seed_index, embedder)


@pytest.fixture(scope="module")
def composer(seed_index):
    return AnswerComposer()


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
    declined = AnswerComposer().compose(question, result)
    assert not declined.answerable and declined.text == NOT_COVERED
    assert all(c.weak for c in declined.citations)
    forced = AnswerComposer(AnswerParams(min_relevance=0.0)).compose(question, result)
    assert forced.answerable and forced.quoted


def test_no_hits_means_no_answer(composer, retriever, seed_index):
    empty = retriever.search("街道", doc_ids=[]).hits
    assert empty == []
    answer = composer.compose("街道", retriever.search("街道", doc_ids=[]))
    assert not answer.answerable and answer.citations == []


@pytest.mark.parametrize(
    "question",
    [
        "镇江市有多少个街道？",
        "海安县首批下放了多少项行政权力事项？",
        "乡镇机构为什么会比较臃肿？",
        "广东为深化乡镇街道体制改革出台了什么意见？",
    ],
)
def test_the_answer_leads_with_citation_one_which_is_the_first_search_result(retriever, composer, question):
    result = retriever.search(question, top_k=5)
    answer = composer.compose(question, result)
    assert answer.answerable and answer.text.split("[", 1)[1].startswith("1]")
    assert answer.citations[0].hit.chunk.chunk_id == result.hits[0].chunk.chunk_id
    for hit in result.hits:  # each result carries its best sentence, inside its text
        best = hit.evidence.best
        assert 0 <= best.start < best.end <= len(hit.chunk.text) and hit.chunk.text[best.start : best.end] == best.text


def test_short_answers_are_spans_of_the_lead_quote(retriever, composer):
    for question, expected in [
        ("镇江市有多少个街道？", "25个街道"),
        ("海安县首批下放了多少项行政权力事项？", "341项"),
        ("广东为深化乡镇街道体制改革出台了什么意见？", "《关于深化乡镇街道体制改革完善基层治理体系的意见》"),
    ]:
        answer = composer.compose(question, retriever.search(question, top_k=5))
        short = answer.short_answer
        assert short is not None and short.text == expected
        assert short.n == answer.quoted[0].citation
        assert answer.citations[short.n - 1].hit.chunk.text[short.start : short.end] == expected
        assert expected in answer.quoted[0].text
    why = "乡镇机构为什么会比较臃肿？"
    assert composer.compose(why, retriever.search(why, top_k=5)).short_answer is None  # no span answers a why


def test_quotes_hold_no_heading_label_or_title(retriever, composer):
    question = "海安县是按照什么要求推进权力下放的？"
    answer = composer.compose(question, retriever.search(question, top_k=5))
    assert answer.answerable and "（二）推进权力下放" not in answer.text
    assert "关于中心镇行政管理体制改革的实践与思考" not in answer.text


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("乡镇公务员每月基本工资是多少元？", {"missing_answer_type", "missing_subject"}),
        ("朝阳区第二批下放了多少项行政权力事项？", {"missing_qualifier"}),
        ("海安县2024年下放了多少项行政权力事项？", {"missing_qualifier"}),
        ("红烧肉怎么做才好吃？", {"off_topic"}),
    ],
)
def test_near_topic_questions_are_declined_with_their_reason(retriever, composer, question, reason):
    answer = composer.compose(question, retriever.search(question, top_k=5))
    assert not answer.answerable and answer.declined_reason in reason
    assert all(c.weak for c in answer.citations) and answer.short_answer is None
    if answer.declined_reason != "off_topic":
        assert answer.text.startswith("文档提到了") and "但没有" in answer.text


def _passage(text: str, *, has_type: bool, missing_focus: tuple[str, ...] = ()):
    from index.answering.evidence import PassageEvidence, SentenceEvidence

    sentence = SentenceEvidence(0, 0, len(text), text, 0.9, 0.5, has_type, 1.0)
    return PassageEvidence((sentence,), (), missing_focus)


def test_a_passage_that_can_answer_goes_first_only_from_a_tie():
    import numpy as np

    from index.answering.question import analyze
    from index.answering.retrieval import _answering_first

    analysis = analyze("这家公司去年的营业收入是多少？")
    evidence = {
        0: _passage("公司去年业务稳步发展，客户遍及全国。", has_type=False),
        1: _passage("公司去年实现营业收入12亿元。", has_type=True),
        2: _passage("营业收入同比增长，达到3亿元。", has_type=True),
    }
    head = np.array([0, 1, 2])
    tied = np.array([0.901, 0.895, 0.5])
    assert _answering_first(head, tied, evidence, analysis).tolist() == [1, 0, 2]
    apart = np.array([0.95, 0.80, 0.5])
    assert _answering_first(head, apart, evidence, analysis).tolist() == [0, 1, 2]
    evidence[1] = _passage("公司去年实现营业收入12亿元。", has_type=True, missing_focus=("营业收入",))
    assert _answering_first(head, tied, evidence, analysis).tolist() == [0, 1, 2]  # 2 is not tied
    free_text = analyze("这家公司为什么发展得好？")
    assert _answering_first(head, tied, evidence, free_text).tolist() == [0, 1, 2]  # any passage can answer


def test_documents_matching_texts_are_kept_within_a_character_budget(seed_index, monkeypatch):
    """The qualifier check reads whole documents; what it keeps between questions stays under its budget,
    and a document let go is read again with the same answer."""
    from index.answering import evidence
    from index.answering.question import analyze

    scorer = evidence.EvidenceScorer(seed_index)
    documents = seed_index.catalogue.documents()
    chunks = [seed_index.catalogue.document_chunks(d.doc_id)[0] for d in documents]
    analysis = analyze("2019年开封市有多少个街道？")  # a year and a place: both looked up in the document
    assert analysis.qualifiers
    unbounded = [scorer.missing_qualifiers(c, analysis) for c in chunks]
    assert len(scorer._document_texts) == len(documents)
    budget = max(len(t) for t in scorer._document_texts.values()) + 1
    monkeypatch.setattr(evidence, "MAX_CACHED_DOCUMENT_CHARS", budget)
    bounded = evidence.EvidenceScorer(seed_index)
    for _ in range(2):
        assert [bounded.missing_qualifiers(c, analysis) for c in chunks] == unbounded
        assert bounded._document_chars == sum(map(len, bounded._document_texts.values())) <= budget
    assert 1 <= len(bounded._document_texts) < len(documents)
