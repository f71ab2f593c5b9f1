"""The evaluation harness: floors on the gold set, HTTP parity, BEIR datasets, reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

from index.errors import ConfigurationError
from index.quality.datasets import load_beir
from service.evaluate import evaluate, save
from service.settings import Settings
from tests.conftest import REPO

FLOORS = REPO / "eval" / "floors.toml"
BEIR_MINI = REPO / "tests" / "fixtures" / "beir-mini"
RETRIEVAL = ("doc@1", "doc@3", "doc@5", "passage@1", "passage@3", "passage@5", "mrr@10", "ndcg@10")


@pytest.fixture(scope="module")
def settings(seed_data_dir):
    return Settings(data_dir=seed_data_dir, build_on_start=False)


@pytest.fixture(scope="module")
def gold_eval(settings):
    return evaluate(settings, show_progress=False)


def test_gold_set_meets_its_floors(gold_eval):
    floors = tomllib.loads(FLOORS.read_text(encoding="utf-8"))
    ceilings = floors.pop("ceilings")
    assert set(floors) == {"hybrid", "dense", "lexical"} >= set(ceilings)
    failures = [
        f"{mode} {metric}: {gold_eval.summary[mode][metric]:.3f} < floor {floor}"
        for mode, metrics in floors.items()
        for metric, floor in metrics.items()
        if not gold_eval.summary[mode][metric] >= floor
    ] + [
        f"{mode} {metric}: {gold_eval.summary[mode][metric]:.3f} > ceiling {ceiling}"
        for mode, metrics in ceilings.items()
        for metric, ceiling in metrics.items()
        if not gold_eval.summary[mode][metric] <= ceiling
    ]
    assert not failures, "\n".join(failures)


def test_every_answer_is_quoted_from_its_citations(gold_eval):
    assert all(figures["faithful"] == 1.0 for figures in gold_eval.summary.values())


def test_results_cover_every_question_in_every_mode(gold_eval):
    assert len(gold_eval.results) == 3 * len(gold_eval.dataset.questions) >= 3 * 48
    assert gold_eval.meta["abstention_calibration"]["configured"] == Settings().min_relevance


def test_report_files(gold_eval, tmp_path):
    folder = save(gold_eval, tmp_path)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert set(report["summary"]) == {"hybrid", "dense", "lexical"}
    first = report["questions"][0]
    assert {"id", "question", "mode", "ranked_docs", "ranked_chunks", "doc_rank", "passage_hits", "answer"} <= set(
        first
    )
    markdown = (folder / "report.md").read_text(encoding="utf-8")
    assert "| hybrid |" in markdown and "Misses in lexical mode" in markdown
    assert (folder / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_over_http_the_figures_are_the_same(gold_eval, settings, server):
    over_http = evaluate(settings, url=server, show_progress=False)
    assert over_http.meta["build_id"] == gold_eval.meta["build_id"]
    for mode in gold_eval.summary:
        for metric in (*RETRIEVAL, "answer", "abstain_p", "abstain_r", "faithful"):
            assert over_http.summary[mode][metric] == pytest.approx(gold_eval.summary[mode][metric]), (mode, metric)


def test_beir_dataset_is_indexed_apart(settings, seed_data_dir):
    builds_before = sorted(p.name for p in (seed_data_dir / "index").iterdir())
    temporary_before = set(Path(tempfile.gettempdir()).glob("policyqa-eval-*"))
    evaluation = evaluate(settings, dataset_dir=BEIR_MINI, show_progress=False)
    assert sorted(p.name for p in (seed_data_dir / "index").iterdir()) == builds_before
    assert set(Path(tempfile.gettempdir()).glob("policyqa-eval-*")) == temporary_before
    assert len(evaluation.dataset.questions) == 6  # q7 has no judgements
    hybrid = evaluation.summary["hybrid"]
    assert hybrid["doc@1"] >= 5 / 6 and hybrid["ndcg@10"] >= 0.8
    assert hybrid["answer"] >= 0.75  # four queries carry answer strings
    assert "abstention_calibration" not in evaluation.meta  # every query has a relevant document


def test_beir_loader_reads_grades_and_answers():
    dataset = load_beir(BEIR_MINI)
    by_id = {q.id: q for q in dataset.questions}
    assert by_id["q3"].relevant == {"d4": 2, "d8": 1}
    assert by_id["q1"].relevant == {"d1": 1}  # a grade of 0 is not relevant
    assert by_id["q2"].answers == ("十万元",) and by_id["q5"].answers == ()
    assert len(dataset.sources) == 8 and dataset.sources[5].title == "Waste collection schedule"


def test_beir_layout_errors(tmp_path, settings):
    (tmp_path / "corpus.jsonl").write_text('{"_id": "a", "text": "x"}\n', encoding="utf-8")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n', encoding="utf-8")
    with pytest.raises(ConfigurationError, match="qrels/test.tsv"):
        load_beir(tmp_path)
    (tmp_path / "corpus.jsonl").write_text("{broken\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="line 1 is not JSON"):
        load_beir(tmp_path)
    with pytest.raises(ConfigurationError, match="--url"):
        evaluate(settings, dataset_dir=BEIR_MINI, url="http://127.0.0.1:9", show_progress=False)
    with pytest.raises(ConfigurationError, match="unknown mode"):
        evaluate(settings, modes=["fuzzy"], show_progress=False)


def test_cli_prints_the_table_and_writes_a_report(seed_data_dir, tmp_path):
    env = {**os.environ, "POLICYQA_DATA_DIR": str(seed_data_dir), "POLICYQA_BUILD_ON_START": "false"}
    result = subprocess.run(
        [sys.executable, "-m", "service.cli", "eval", "--modes", "lexical", "--quiet", "--reports-dir", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "lexical" in result.stdout and "ndcg@10" in result.stdout
    assert len(list(tmp_path.glob("*/report.json"))) == 1
