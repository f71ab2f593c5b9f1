"""The embedding runtimes are chosen by measurement on the machine, kept per CPU, and overridden by a setting."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from index.embedders.e5_convert import converted_model_dir
from index.embedders.e5_small import load_e5_small
from index.embedders.runtime_choice import (
    RECORD_FILE,
    Timing,
    _eligibility,
    _fastest,
    cpu_features,
    cpu_key,
    passage_candidates,
    remembered_choice,
)
from tests.conftest import DOCS_RAW, REPO


def timing(runtime: str, precision: str, tokens_per_s: float, *, eligible: bool = True) -> Timing:
    return Timing(runtime, precision, tokens_per_s, None, 1.0, eligible)


def test_the_fastest_eligible_runtime_wins_unless_a_more_precise_one_is_close():
    speed = lambda t: t.tokens_per_s  # noqa: E731
    assert _fastest([timing("torch", "float32", 100), timing("openvino", "bfloat16", 300)], speed=speed) == (
        "openvino", "bfloat16",
    )  # fmt: skip
    # Within the margin, noise must not flip an index to a less exact runtime.
    assert _fastest([timing("onnx", "float32", 95), timing("openvino", "bfloat16", 100)], speed=speed) == (
        "onnx", "float32",
    )  # fmt: skip
    assert _fastest([timing("onnx", "int8", 900, eligible=False), timing("torch", "float32", 100)], speed=speed) == (
        "torch", "float32",
    )  # fmt: skip
    assert _fastest([timing("onnx", "int8", 900, eligible=False)], speed=speed) == ("torch", "float32")


def test_a_runtime_is_eligible_only_if_it_agrees_and_held_the_gold_set():
    assert _eligibility("passages", ("openvino", "bfloat16"), 0.9999) == (True, "")
    assert not _eligibility("passages", ("openvino", "bfloat16"), 0.99)[0]  # disagrees with float32
    # int8 passages agree (0.998) but lowered abstention precision by 0.02 on the gold set and DRCD's test split.
    eligible, reason = _eligibility("passages", ("onnx", "int8"), 0.998)
    assert not eligible and "gold" in reason
    assert _eligibility("queries", ("onnx", "int8"), 0.998) == (True, "")


def test_candidates_follow_the_cpu():
    avx2 = {"model": "EPYC", "flags": ["avx2", "fma"], "cores": 2}
    bf16 = {"model": "Xeon", "flags": ["avx2", "avx512f", "avx512_bf16"], "cores": 2}
    assert ("openvino", "bfloat16") not in passage_candidates(avx2, openvino=True)
    assert ("torch", "bfloat16") not in passage_candidates(avx2, openvino=True)
    assert {("openvino", "bfloat16"), ("torch", "bfloat16")} <= set(passage_candidates(bf16, openvino=True))
    assert cpu_key(avx2) != cpu_key(bf16)


@pytest.fixture
def fresh_record(models_dir):
    """This CPU's record removed for the test, and put back after (the session's other tests use it)."""
    model_dir, _ = converted_model_dir(models_dir)
    record = model_dir / RECORD_FILE
    kept = record.read_bytes() if record.exists() else None
    record.unlink(missing_ok=True)
    yield model_dir
    if kept is None:
        record.unlink(missing_ok=True)
    else:
        record.write_bytes(kept)


def test_the_first_passages_measure_the_runtimes_once_per_cpu(models_dir, fresh_record):
    model_dir = fresh_record
    other_cpu = {"model": "another machine", "flags": ["avx2"], "cores": 64}
    (model_dir / RECORD_FILE).write_text(json.dumps({cpu_key(other_cpu): {"passages": ["onnx", "int8"]}}))
    embedder = load_e5_small(models_dir)
    assert embedder.runtime_choice is None  # another CPU's figures say nothing about this one
    embedder.embed_passages(["乡镇机构改革"])
    choice = embedder.runtime_choice
    assert choice is not None and choice.cpu == cpu_features()
    assert {(t.runtime, t.precision) for t in choice.passage_timings} == set(
        passage_candidates(cpu_features(), openvino=True)
    )
    chosen = next(t for t in choice.passage_timings if (t.runtime, t.precision) == choice.passages)
    assert chosen.eligible and chosen.tokens_per_s > 0 and chosen.min_cosine >= 0.995
    assert all(t.p50_ms > 0 for t in choice.query_timings if t.eligible)
    assert embedder.passage_backend == choice.passages and embedder.query_backend == choice.queries
    assert "passages " + "-".join(choice.passages) in embedder.backend
    kept = json.loads((model_dir / RECORD_FILE).read_text())
    assert set(kept) == {cpu_key(other_cpu), cpu_key(cpu_features())}  # the other CPU's record is kept

    again = load_e5_small(models_dir)  # a later process reads the choice instead of measuring
    assert again.runtime_choice.measured_at == choice.measured_at
    assert (again.query_backend, again.passage_backend) == (choice.queries, choice.passages)
    assert remembered_choice(model_dir).passages == choice.passages


def test_a_setting_overrides_the_measured_choice(models_dir, fresh_record):
    embedder = load_e5_small(models_dir, backend="torch", precision="float32")
    embedder.embed_passages(["乡镇机构改革"])
    assert not embedder.measures_runtimes and embedder.runtime_choice is None
    assert embedder.passage_backend == ("torch", "float32")
    assert not (fresh_record / RECORD_FILE).exists()


def test_policyqa_bench_prints_the_machines_figures_beside_their_floors(models_dir, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for path in sorted(DOCS_RAW.glob("*.txt"))[:2]:
        (corpus / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "bench.json"
    env = {**os.environ, "POLICYQA_MODELS_DIR": str(models_dir), "POLICYQA_DATA_DIR": str(tmp_path / "unused")}
    run = subprocess.run(
        [sys.executable, "-m", "service.cli", "bench", str(corpus), "--ocr-pages", "1", "--json", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    figures = json.loads(out.read_text(encoding="utf-8"))
    assert figures["cpu"] == cpu_features()
    assert figures["ingest"]["characters_per_s"] > 0
    assert figures["ingest"]["characters_per_s"] <= figures["ingest"]["floor_characters_per_s"]
    assert 0 < figures["limit"]["share_of_peak"] < 1
    assert figures["question_embedding"]["p50_ms"] > 0
    assert figures["http"]["search_p50_ms"] > 0 and figures["http"]["ask_p50_ms"] > 0
    assert figures["http"]["health_p50_ms"] > 0
    assert figures["ocr"]["pages_per_s"] > 0
    for line in ("embedding runtimes", "chosen", "characters/s for the whole build", "/api/ask p50", "OCR:"):
        assert line in run.stdout
    assert not (tmp_path / "unused").exists()  # the bench works in a scratch directory of its own


def test_gpu_batches_are_sized_by_the_free_memory():
    from index.embedders.e5_runtime import CPU_BATCH_SIZE, GPU_BATCH_LIMITS, device_batch_size, gpu_batch_size

    assert gpu_batch_size(4 * 2**30) == 85  # a 4 GiB card: half of it at 24 MiB an input
    assert gpu_batch_size(139 * 2**30) == GPU_BATCH_LIMITS[1]
    assert gpu_batch_size(100 * 2**20) == GPU_BATCH_LIMITS[0]
    assert device_batch_size("cpu") == CPU_BATCH_SIZE
