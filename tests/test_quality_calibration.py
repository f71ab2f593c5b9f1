"""Calibration of the answers' confidence (ECE, reliability bins, sentence@1) and evaluations over several sources."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from types import SimpleNamespace

import pytest

from index.quality.backends import Reply, reply_from_answer, reply_from_json
from index.quality.datasets import EvalQuestion
from index.quality.metrics import ReliabilityBin, expected_calibration_error, reliability_bins
from index.quality.report import write_plot, write_report
from index.quality.runner import lead_sentence, score_question, summarize
from service.cli import build_parser
from service.evaluate import describe, evaluate, load_sources, save
from service.settings import Settings

OLD_KEYS = {
    *(f"{kind}@{k}" for kind in ("doc", "passage") for k in (1, 3, 5)),
    "mrr@10",
    "ndcg@10",
    "answer",
    "abstain_p",
    "abstain_r",
    "false_abstain",
    "abstain_r_near",
    "abstain_r_off",
    "short_f1",
    "short_em",
    "short_wrong",
    "faithful",
    "p50_ms",
    "p95_ms",
}

# --- ECE and reliability bins, against figures worked out by hand ---------------------------------

CONFIDENCES = [0.05, 0.15, 0.15, 0.55, 0.95, 1.0]
OUTCOMES = [False, False, True, True, True, True]


def test_reliability_bins_by_hand():
    assert reliability_bins(CONFIDENCES, OUTCOMES) == [
        ReliabilityBin(0.0, 0.1, 1, 0.05, 0.0),
        ReliabilityBin(0.1, 0.2, 2, pytest.approx(0.15), 0.5),
        ReliabilityBin(0.5, 0.6, 1, 0.55, 1.0),
        ReliabilityBin(0.9, 1.0, 2, pytest.approx(0.975), 1.0),  # 1.0 falls in the last bin
    ]
    low, high, count, mean_confidence, accuracy = reliability_bins([0.3], [True], bins=10)[0]
    assert (low, high, count) == (0.3, 0.4, 1)  # a bin holds its lower edge


def test_expected_calibration_error_by_hand():
    # |0.05 - 0| x 1 + |0.15 - 0.5| x 2 + |0.55 - 1| x 1 + |0.975 - 1| x 2, over 6 answers
    assert expected_calibration_error(CONFIDENCES, OUTCOMES) == pytest.approx(1.25 / 6)
    # one bin: |mean confidence 2.85 / 6 - accuracy 4 / 6|
    assert expected_calibration_error(CONFIDENCES, OUTCOMES, bins=1) == pytest.approx(1.15 / 6)
    assert expected_calibration_error([0.25] * 4, [True, False, False, False]) == 0.0  # calibrated
    assert expected_calibration_error([1.0, 1.0], [False, False]) == 1.0
    assert math.isnan(expected_calibration_error([], [])) and reliability_bins([], []) == []


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="outcomes"):
        expected_calibration_error([0.5], [])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins([1.2], [True])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins([float("nan")], [True])
    with pytest.raises(ValueError, match="bins"):
        reliability_bins([0.5], [True], bins=0)


# --- sentence@1 and ECE in the summary, from hand-made replies ----------------------------------

PASSAGE = "每村每年运转经费不低于十万元。经费由县级财政统筹安排。"


def _question(qid: str, answers: tuple[str, ...] = ("十万元",), answerable: bool = True) -> EvalQuestion:
    return EvalQuestion(qid, "村级组织每年的运转经费不少于多少？", {"d3": 1} if answerable else {}, answers, "factual")


def _reply(answer: str, *, answerable: bool = True, confidence: float | None = None) -> Reply:
    return Reply(["d3"], [7], [PASSAGE], answer, answerable, 0.95, {1: PASSAGE}, 0.01, confidence=confidence)


LEAD_HOLDS = "每村每年运转经费不低于十万元。[1]经费由县级财政统筹安排。[1]"
SECOND_HOLDS = "经费由县级财政统筹安排。[1]每村每年运转经费不低于十万元。[1]"


def _results(with_confidence: bool = True):
    conf = (lambda c: c) if with_confidence else (lambda c: None)
    return [
        score_question(_question("lead"), "hybrid", _reply(LEAD_HOLDS, confidence=conf(0.9)), source="s"),
        score_question(_question("second"), "hybrid", _reply(SECOND_HOLDS, confidence=conf(0.8)), source="s"),
        score_question(_question("declined"), "hybrid", _reply("未找到。", answerable=False), source="s"),
        score_question(_question("none", answerable=False), "hybrid", _reply(LEAD_HOLDS, confidence=conf(0.3))),
        score_question(_question("ungraded", answers=()), "hybrid", _reply(LEAD_HOLDS, confidence=conf(0.7))),
    ]


def test_sentence_hit_is_the_lead_sentence_only():
    lead, second, declined, unanswerable, ungraded = _results()
    assert lead_sentence(SECOND_HOLDS) == "经费由县级财政统筹安排。" and lead_sentence("未找到。") is None
    assert lead.sentence_hit is True and lead.answer_correct is True
    assert second.sentence_hit is False and second.answer_correct is True  # the answer holds it, its lead does not
    assert declined.sentence_hit is False
    assert unanswerable.sentence_hit is None and ungraded.sentence_hit is None
    assert lead.confidence == 0.9 and lead.source == "s" and unanswerable.source == ""
    assert lead.to_json()["sentence_hit"] is True and lead.to_json()["confidence"] == 0.9


def test_summary_adds_sentence_at_1_and_ece():
    summary = summarize(_results())
    assert set(summary) == OLD_KEYS | {"sentence@1", "ece", "confident_n"}
    assert summary["answer"] == pytest.approx(2 / 3)
    assert summary["sentence@1"] == pytest.approx(1 / 3)  # lead: hit; second: miss; declined: miss
    # 0.9 came true, 0.8 did not, 0.3 (unanswerable) did not; the ungraded question is not counted
    assert summary["confident_n"] == 3
    assert summary["ece"] == pytest.approx((0.1 + 0.8 + 0.3) / 3)
    bare = summarize(_results(with_confidence=False))
    assert math.isnan(bare["ece"]) and bare["confident_n"] == 0 and bare["sentence@1"] == summary["sentence@1"]


def test_replies_carry_the_confidence():
    body = {"citations": [], "answer": "x", "answerable": False, "relevance": 0.2}
    assert reply_from_json(body, 0.1).confidence is None
    assert reply_from_json({**body, "confidence": 0.42}, 0.1).confidence == 0.42
    answer = SimpleNamespace(
        text="x", answerable=True, relevance=0.9, citations=[], short_answer=None, declined_reason=None
    )
    assert reply_from_answer(answer, 0.1).confidence is None  # an Answer without the attribute yet
    answer.confidence = 0.77
    assert reply_from_answer(answer, 0.1).confidence == 0.77


def _png_width(path: Path) -> int:
    return struct.unpack(">I", path.read_bytes()[16:20])[0]


def test_plot_gains_a_reliability_panel_only_with_confidences(tmp_path):
    with_confidence, without = _results(), _results(with_confidence=False)
    write_plot(tmp_path / "with.png", {"hybrid": summarize(with_confidence)}, with_confidence, title="t")
    write_plot(tmp_path / "without.png", {"hybrid": summarize(without)}, without, title="t")
    assert _png_width(tmp_path / "with.png") > _png_width(tmp_path / "without.png")


def test_report_shows_ece_and_a_table_per_source(tmp_path):
    results = _results()
    other = [score_question(_question("lead"), "hybrid", _reply(SECOND_HOLDS, confidence=0.6), source="t")]
    meta = {
        "dataset": "s + t",
        "questions": 6,
        "by_source": {"s": {"hybrid": summarize(results)}, "t": {"hybrid": summarize(other)}},
    }
    questions = {("s", "lead"): "问题一", ("t", "lead"): "问题二"}
    folder = write_report(
        tmp_path,
        meta=meta,
        results=results + other,
        summary={"hybrid": summarize(results + other)},
        questions=questions,
    )
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "| source | mode |" in markdown and "| s | hybrid |" in markdown and "| t | hybrid |" in markdown
    assert "ECE 0.450 over 4 answers" in markdown  # (0.1 + 0.8 + 0.3 + 0.6) / 4, one answer a bin
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert {(q["source"], q["question"]) for q in report["questions"] if q["id"] == "lead"} == {
        ("s", "问题一"),
        ("t", "问题二"),
    }
    assert sum(b["count"] for b in report["reliability"]["hybrid"]) == 4


# --- several sources in one run -------------------------------------------------------------------

HOUSING = {
    "corpus": [
        ("h1", "住房公积金提取", "职工购买自住住房可以提取住房公积金。提取额度不超过购房款总额。"),
        ("h2", "公租房申请条件", "申请公共租赁住房的家庭人均月收入应低于三千元。申请人须在本市连续缴纳社保满一年。"),
        ("h3", "老旧小区改造", "老旧小区改造优先加装电梯和更新供水管网。改造资金由市区两级财政共同承担。"),
    ],
    "queries": [
        ("hq1", "申请公共租赁住房的家庭人均月收入要低于多少？", ["三千元"], "h2"),
        ("hq2", "老旧小区改造资金由谁承担？", ["市区两级财政"], "h3"),
        ("hq3", "职工在什么情况下可以提取住房公积金？", ["购买自住住房"], "h1"),
    ],
}
TRANSPORT = {
    "corpus": [
        ("t1", "公交票价优惠", "老年人持卡乘坐公交车实行免费。学生持卡乘车享受五折优惠。"),
        ("t2", "共享单车停放管理", "共享单车应停放在划定的停车区域内。违规停放的车辆由运营企业在两小时内清理。"),
        ("t3", "道路停车收费", "中心城区道路停车首小时收费五元。夜间停车实行免费。"),
    ],
    "queries": [
        ("tq1", "中心城区道路停车首小时收费多少？", ["五元"], "t3"),
        ("tq2", "违规停放的共享单车要在多长时间内清理？", ["两小时"], "t2"),
        ("tq3", "学生乘坐公交车有什么优惠？", ["五折"], "t1"),
        ("tq4", "红烧肉怎么做才好吃？", [], None),  # judged, nothing relevant: unanswerable
    ],
}


def write_beir(directory: Path, spec: dict) -> Path:
    """A BEIR-layout dataset: corpus.jsonl, queries.jsonl and qrels/test.tsv."""
    (directory / "qrels").mkdir(parents=True)
    corpus = [{"_id": i, "title": title, "text": text} for i, title, text in spec["corpus"]]
    queries = [{"_id": i, "text": text, "answers": answers} for i, text, answers, _ in spec["queries"]]
    for name, rows in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        lines = [json.dumps(row, ensure_ascii=False) for row in rows]
        (directory / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    judged = [f"{q}\t{doc or spec['corpus'][0][0]}\t{1 if doc else 0}" for q, _, _, doc in spec["queries"]]
    (directory / "qrels" / "test.tsv").write_text("\n".join(["query-id\tcorpus-id\tscore", *judged]) + "\n")
    return directory


@pytest.fixture(scope="module")
def two_sources(tmp_path_factory):
    root = tmp_path_factory.mktemp("beir-sources")
    return write_beir(root / "housing", HOUSING), write_beir(root / "transport", TRANSPORT)


@pytest.fixture(scope="module")
def multi_eval(two_sources, tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("unused-data"), build_on_start=False)
    return evaluate(settings, dataset_dirs=list(two_sources), modes=["hybrid"], show_progress=False)


def test_each_source_is_asked_and_summarised_apart(multi_eval):
    meta = multi_eval.meta
    assert meta["sources"] == ["housing", "transport"] and set(meta["by_source"]) == {"housing", "transport"}
    assert len(set(meta["builds"].values())) == 2  # each corpus in its own throwaway index
    assert [len(d.questions) for d in multi_eval.datasets] == [3, 4] and meta["questions"] == 7
    assert {r.source for r in multi_eval.results} == {"housing", "transport"} and len(multi_eval.results) == 7
    assert set(multi_eval.summary) == {"hybrid"}  # the same shape as for one source: all sources together
    for figures in (*(s["hybrid"] for s in meta["by_source"].values()), multi_eval.summary["hybrid"]):
        assert figures["doc@1"] >= 2 / 3 and figures["faithful"] == 1.0
        assert 0 <= figures["sentence@1"] <= figures["answer"]
        assert math.isnan(figures["ece"]) if figures["confident_n"] == 0 else 0 <= figures["ece"] <= 1
    housing, transport = (meta["by_source"][s]["hybrid"] for s in ("housing", "transport"))
    # three answerable questions in each: the pooled figure is their average
    assert multi_eval.summary["hybrid"]["doc@1"] == pytest.approx((housing["doc@1"] + transport["doc@1"]) / 2)
    assert transport["abstain_r"] == 1.0 and math.isnan(housing["abstain_r"])  # the off-topic query is declined


def test_describe_and_report_over_several_sources(multi_eval, tmp_path):
    text = describe(multi_eval)
    assert "housing: 3 questions" in text and "transport: 4 questions" in text and "all 2 sources together" in text
    assert text.count("sentence@1") == 3  # one table per source and one of all
    folder = save(multi_eval, tmp_path)
    assert "## By source (2)" in (folder / "report.md").read_text(encoding="utf-8")
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert set(report["by_source"]) == {"housing", "transport"}
    asked = {(q["source"], q["id"]): q["question"] for q in report["questions"]}
    assert asked[("transport", "tq4")] == "红烧肉怎么做才好吃？"


def test_sources_are_named_apart_and_gold_is_the_default(tmp_path, two_sources):
    twin = write_beir(tmp_path / "elsewhere" / "housing", HOUSING)
    assert [d.name for d in load_sources([two_sources[0], twin], gold=False)] == ["housing", "housing-2"]
    assert [d.name for d in load_sources([], gold=False)] == ["gold"]
    assert [d.name for d in load_sources(list(two_sources), gold=True)] == ["gold", "housing", "transport"]


def test_cli_takes_several_datasets_and_the_gold_set():
    args = build_parser().parse_args(["eval", "--dataset", "a", "--dataset", "b", "--gold"])
    assert args.dataset == [Path("a"), Path("b")] and args.gold
    plain = build_parser().parse_args(["eval"])
    assert plain.dataset is None and not plain.gold


def test_weighted_calibration_error_counts_a_question_as_its_weight():
    confidences, outcomes = [0.1, 0.15, 0.8, 0.9, 0.95], [False, True, True, True, False]
    doubled = expected_calibration_error(confidences + [0.15], outcomes + [True])
    assert expected_calibration_error(confidences, outcomes, weights=[1, 2, 1, 1, 1]) == pytest.approx(doubled)
    assert expected_calibration_error(confidences, outcomes, weights=[1] * 5) == pytest.approx(
        expected_calibration_error(confidences, outcomes)
    )
