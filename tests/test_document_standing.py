"""Validity linking, filters and the order of current and superseded passages, as pure functions; and the
filtered dense search's shortcut against the index's own filter, on the seed index."""

from __future__ import annotations

import numpy as np
import pytest

from index.answering.document_filters import DocumentFilters
from index.answering.policy_view import PolicyView
from index.answering.retrieval import POST_FILTER_SHARE, Retriever
from index.answering.standing import DocumentFacts, standings
from index.ingest.metadata import references_match

OLD = DocumentFacts("old", "某县乡镇编制管理办法", issuers=("某县人民政府",), doc_number="某政〔2019〕3号",
                    written_date="2019-03-01", level="县", kind="办法")  # fmt: skip
NEW = DocumentFacts("new", "某县乡镇编制管理规定", issuers=("某县人民政府",), doc_number="某政〔2023〕8号",
                    written_date="2023-04-01", effective_date="2023-05-01", level="县", kind="规定",
                    repeals=("《某县乡镇编制管理办法》（某政〔2019〕3号）",))  # fmt: skip
PROVINCE = DocumentFacts(
    "province", "河南省意见", issuers=("河南省人民政府办公厅",), written_date="2021-07-01", level="省"
)


def _view(*docs: DocumentFacts, today: str = "2026-12-07", staff=None) -> PolicyView:
    facts = {d.doc_id: d for d in docs}
    return PolicyView(facts, standings(facts, today=today, staff=staff, references_match=references_match))


def test_a_repeal_links_the_documents_from_the_day_it_takes_effect():
    view = _view(OLD, NEW, PROVINCE)
    old = view.standing["old"]
    assert (old.status, old.by_doc_id, old.since, old.source) == ("repealed", "new", "2023-05-01", "text")
    assert view.standing["new"].status == view.standing["province"].status == "current"
    before = _view(OLD, NEW, today="2023-04-15")  # the repealing one is not in force yet
    assert before.standing["old"].status == "current" and before.standing["new"].status == "not_yet_effective"


def test_expiry_a_later_version_of_the_same_title_and_staff():
    expired = DocumentFacts("e", "临时办法", written_date="2020-01-01", expiry_date="2022-12-31")
    first = DocumentFacts("v1", "乡镇考核办法", issuers=("某县人民政府",), written_date="2018-01-01")
    second = DocumentFacts("v2", "乡镇考核办法（2022年修订）", issuers=("某县人民政府",), written_date="2022-01-01")
    other_issuer = DocumentFacts("v3", "乡镇考核办法", issuers=("另一县人民政府",), written_date="2024-01-01")
    view = _view(expired, first, second, other_issuer)
    assert view.standing["e"].status == "repealed" and view.standing["e"].source == "date"
    assert (view.standing["v1"].status, view.standing["v1"].by_doc_id) == ("amended", "v2")
    assert view.standing["v2"].status == "current"  # another issuer's same title amends nothing of ours
    from index.answering.standing import Standing

    staff = _view(OLD, NEW, staff={"old": Standing("current", "staff")})
    assert staff.standing["old"].status == "current"


def test_a_repeal_by_title_alone_never_reaches_a_version_issued_after_the_repealing_document():
    # The 2012 rules repealed "《某规则》" (the 1999 rules, not in this knowledge base); the 2019 rules of the
    # same title came later and are in force. Found on LawRefBook/Laws (eval/bench_validity.py).
    trial = DocumentFacts("2012", "某检察院刑事诉讼规则（试行）", issuers=("某检察院",), published_date="2012-11-22",
                          effective_date="2013-01-01", repeals=("《某检察院刑事诉讼规则》",))  # fmt: skip
    later = DocumentFacts("2019", "某检察院刑事诉讼规则", issuers=("某检察院",), published_date="2019-12-30")
    view = _view(trial, later)
    assert view.standing["2019"].status == "current"
    assert (view.standing["2012"].status, view.standing["2012"].by_doc_id) == ("amended", "2019")  # the title rule
    undated = DocumentFacts("undated", "某检察院刑事诉讼规则", issuers=("某检察院",))
    assert _view(trial, undated).standing["undated"].status == "repealed"  # no date to tell: the text is taken


def test_a_later_version_not_yet_in_force_leaves_the_earlier_one_current():
    # The 矿产资源法 revised on 2024-11-08 takes effect on 2025-07-01: until then the 2009 text is the law.
    first = DocumentFacts("2009", "矿产资源法", issuers=("常委会",), published_date="2009-08-27")
    revised = DocumentFacts("2024", "矿产资源法", issuers=("常委会",), published_date="2024-11-08",
                            effective_date="2025-07-01")  # fmt: skip
    before = _view(first, revised, today="2025-04-19")
    assert before.standing["2009"].status == "current" and before.standing["2024"].status == "not_yet_effective"
    after = _view(first, revised, today="2025-07-01")
    assert (after.standing["2009"].status, after.standing["2009"].since) == ("amended", "2025-07-01")


def test_filters_admit_by_every_field_given():
    view = _view(OLD, NEW, PROVINCE)
    assert set(view.scope(None, DocumentFilters(levels=("省",)))) == {"province"}
    assert set(view.scope(None, DocumentFilters(issuers=("某县",), validity=("current",)))) == {"new"}
    assert set(view.scope(None, DocumentFilters(date_from="2020-01-01", date_to="2022-12-31"))) == {"province"}
    assert view.scope(None, DocumentFilters(validity=("current", "repealed"))) is None  # all: no narrowing
    assert view.scope(["old", "nope"], DocumentFilters(levels=("县",))) == ["old", "nope"]  # unknown: named later
    assert view.scope(["old"], None) == ["old"] and view.scope(None, DocumentFilters()) is None
    with pytest.raises(ValueError):
        DocumentFilters(date_from="2023-01-01", date_to="2019-01-01")


def test_superseded_passages_go_after_current_ones_unless_the_question_is_about_their_time():
    view = _view(OLD, NEW, PROVINCE)
    candidates = ["old", "new", "province"]
    assert [candidates[i] for i in view.arrange("编制有多少名？", candidates)] == ["new", "province", "old"]
    assert [candidates[i] for i in view.arrange("2019年的规定编制有多少名？", candidates)][0] == "old"
    assert [candidates[i] for i in view.arrange("原来的办法规定编制多少？", candidates)] == candidates
    assert [candidates[i] for i in view.arrange("河南省的意见怎么说？", candidates)][0] == "province"
    assert view.notices([(1, "new"), (2, "old"), (3, "old")]) == [
        "[2][3]《某县乡镇编制管理办法》该文件已于2023-05-01废止，被《某县乡镇编制管理规定》取代"
    ]


def test_the_wide_unfiltered_search_finds_what_the_filtered_one_finds(seed_index, embedder):
    retriever = Retriever(seed_index, embedder)
    doc_ids = sorted(d.doc_id for d in seed_index.catalogue.documents())
    query = retriever.embed_query("街道综合行政执法的编制")
    for keep in (doc_ids[1:], doc_ids[: len(doc_ids) // 2], doc_ids[:1]):
        allowed = retriever._allowed_chunk_ids(keep)
        assert len(allowed) >= POST_FILTER_SHARE * seed_index.vectors.count() or keep == doc_ids[:1]
        inside = seed_index.vectors.search(query, 10, allowed).ids
        assert np.array_equal(retriever._dense_candidates(query, 10, allowed), inside)


def test_the_policy_view_is_built_off_the_question_path(seed_data_dir):
    import time

    from service.engines import open_engine
    from service.settings import Settings

    engine = open_engine(Settings(data_dir=seed_data_dir, build_on_start=False))
    try:
        generation = engine.index.manifest.build_id
        assert not engine.policy.built_for(generation)
        engine.warm_policy_view()
        deadline = time.monotonic() + 60
        while not engine.policy.built_for(generation) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert engine.policy.built_for(generation)
    finally:
        engine.close()
