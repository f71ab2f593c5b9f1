"""The policyqa command, run as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

from tests.conftest import REPO


def run_cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false"}
    return subprocess.run(
        [sys.executable, "-m", "service.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


def test_ask_prints_the_answer_and_its_citations(seed_data_dir):
    result = run_cli("ask", "海安县首批下放了多少项行政权力事项？", data_dir=seed_data_dir)
    assert result.returncode == 0, result.stderr
    assert "341项" in result.stdout and "[1]" in result.stdout
    assert result.stdout.startswith("答：341项\n")  # the short answer first
    assert "关于中心镇行政管理体制改革的实践与思考" in result.stdout


def test_ask_json(seed_data_dir):
    result = run_cli("ask", "镇江市共有多少个街道", "--json", "--top-k", "2", data_dir=seed_data_dir)
    body = json.loads(result.stdout)
    assert body["answerable"] and len(body["citations"]) == 2
    assert body["short_answer"]["text"] == "25个街道" and body["declined_reason"] is None


def test_search_with_a_document_filter(seed_data_dir):
    result = run_cli(
        "search", "机构改革", "--json", "--doc-id", "kaifeng-township-subdistrict-reform", data_dir=seed_data_dir
    )
    assert result.returncode == 0, result.stderr
    results = json.loads(result.stdout)
    assert {r["doc_id"] for r in results} == {"kaifeng-township-subdistrict-reform"}
    assert all(0 <= r["evidence"]["start"] < r["evidence"]["end"] <= len(r["text"]) for r in results)


def test_ingest_reuses_unchanged_documents(seed_data_dir, tmp_path):
    data_dir = tmp_path / "data"
    shutil.copytree(seed_data_dir, data_dir)
    result = run_cli("ingest", str(REPO / "docs_raw"), "--quiet", data_dir=data_dir)
    assert result.returncode == 0, result.stderr
    assert "9 documents" in result.stdout and "reused 9" in result.stdout


def test_errors_are_one_line_without_a_traceback(tmp_path):
    result = run_cli("ask", "街道", data_dir=tmp_path / "empty")
    assert result.returncode == 2
    assert "policyqa ingest" in result.stderr and "Traceback" not in result.stderr


def test_ingest_reports_a_broken_document_and_indexes_the_rest(tmp_path):
    from tests.test_token_caps import TIMETABLE

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notice.txt").write_text("关于街道改革的通知\n一、总体要求\n街道要加强党的建设。", encoding="utf-8")
    (docs / "timetable.txt").write_text(TIMETABLE, encoding="utf-8")  # one "sentence" of 1,000 tokens
    (docs / "broken.docx").write_bytes(b"PK\x03\x04" + b"not really a zip archive" * 20)
    result = run_cli("ingest", str(docs), "--quiet", data_dir=tmp_path / "data")
    assert result.returncode == 0, result.stderr
    assert "broken.docx: not indexed: not a valid DOCX file" in result.stderr
    assert "2 documents" in result.stdout and "1 failed" in result.stdout
    assert "Traceback" not in result.stderr

    # When nothing could be indexed, the exit status says so.
    (docs / "notice.txt").unlink()
    (docs / "timetable.txt").unlink()
    result = run_cli("ingest", str(docs), "--quiet", data_dir=tmp_path / "empty")
    assert result.returncode == 1
    assert "broken.docx: not indexed" in result.stderr and "0 documents" in result.stdout
