"""Which runtime and precision embed passages and questions on this machine, chosen by measurement.

Which is fastest depends on the chip, not on the code: on a Xeon with AVX-512
BF16, OpenVINO in bfloat16 ran passages at twice torch's speed, while on an
AVX2-only EPYC every bfloat16 path falls back and int8 is the candidate. So
the first build with a model directory (and ``policyqa bench``) times each
runtime available here on a fixed sample (``calibration_sample.json``: 300-
character passages and single sentences of the seed documents, and gold
questions), keeps only those whose vectors agree with torch float32 (min
cosine ``MIN_COSINE``) and that were checked on the gold set (``GOLD_CHECKED``),
and picks the fastest. The choice, the figures and the CPU's features are kept
in the model directory, per CPU: a directory copied to another machine is
measured again there.

Passages are timed on every core (a build has the machine); questions one at a
time on one thread (serving), as they run.
"""

from __future__ import annotations

import json
import logging
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from index.embedders.records import read_record, write_record
from index.locks import file_lock

logger = logging.getLogger(__name__)

RECORD_FILE = "policyqa-runtimes.json"
SAMPLE_FILE = Path(__file__).with_name("calibration_sample.json")
MIN_COSINE = 0.995
# (runtime, precision) pairs whose passages (or questions) kept every gold-set figure within 0.01 of torch
# float32 (docs/performance.md, "Embedding runtimes"); a faster pair outside these is not chosen.
GOLD_CHECKED = {
    "passages": {
        ("torch", "float32"), ("torch", "bfloat16"), ("onnx", "float32"), ("openvino", "float32"),
        ("openvino", "bfloat16"),
    },  # not int8: it agrees (min cosine 0.998) but lowered abstention precision by 0.022-0.024
    "queries": {("onnx", "int8"), ("onnx", "float32"), ("torch", "float32")},
}  # fmt: skip
FEATURE_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
TIMING_ROUNDS = 3
PRECISION_MARGIN = 0.15  # a more precise runtime this close to the fastest is chosen instead


@dataclass(frozen=True)
class Timing:
    runtime: str
    precision: str
    tokens_per_s: float  # passages; for questions, the p50 below
    p50_ms: float | None
    min_cosine: float
    eligible: bool
    reason: str = ""  # why it is not eligible, or why it could not run


@dataclass(frozen=True)
class RuntimeChoice:
    passages: tuple[str, str]
    queries: tuple[str, str]
    cpu: dict
    passage_timings: list[Timing]
    query_timings: list[Timing]
    measured_at: str

    def to_json(self) -> dict:
        return {
            "passages": list(self.passages), "queries": list(self.queries), "cpu": self.cpu,
            "passage_timings": [asdict(t) for t in self.passage_timings],
            "query_timings": [asdict(t) for t in self.query_timings], "measured_at": self.measured_at,
        }  # fmt: skip

    @classmethod
    def from_json(cls, kept: dict) -> RuntimeChoice:
        return cls(
            tuple(kept["passages"]), tuple(kept["queries"]), kept["cpu"],
            [Timing(**t) for t in kept["passage_timings"]], [Timing(**t) for t in kept["query_timings"]],
            kept["measured_at"],
        )  # fmt: skip


def cpu_features() -> dict:
    """The CPU's model, the vector extensions that decide the runtimes' speed, and the cores this process has."""
    from index.threads import available_cores

    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
                break
    except OSError:
        pass
    return {"model": model, "flags": [f for f in FEATURE_FLAGS if f in flags], "cores": available_cores()}


def cpu_key(cpu: dict) -> str:
    return f"{cpu['model']}|{','.join(cpu['flags'])}|{cpu['cores']}"


def passage_candidates(cpu: dict, *, openvino: bool) -> list[tuple[str, str]]:
    fast_bfloat16 = bool({"avx512_bf16", "amx_bf16"} & set(cpu["flags"]))
    candidates = [("torch", "float32"), ("onnx", "float32"), ("onnx", "int8")]
    if fast_bfloat16:
        candidates.append(("torch", "bfloat16"))
    if openvino:
        candidates.append(("openvino", "float32"))
        if fast_bfloat16:
            candidates.append(("openvino", "bfloat16"))
    return candidates


QUERY_CANDIDATES = [("onnx", "int8"), ("onnx", "float32")]


def remembered_choice(model_dir: Path, cpu: dict | None = None) -> RuntimeChoice | None:
    """The choice measured for this CPU in ``model_dir``, if any; an unreadable record is measured again."""
    kept = read_record(Path(model_dir) / RECORD_FILE).get(cpu_key(cpu or cpu_features()))
    try:
        return RuntimeChoice.from_json(kept) if isinstance(kept, dict) else None
    except (KeyError, TypeError, ValueError):
        return None


def remember_choice(model_dir: Path, choice: RuntimeChoice) -> None:
    path = Path(model_dir) / RECORD_FILE
    write_record(path, {**read_record(path), cpu_key(choice.cpu): choice.to_json()})


# (runtime, precision, threads) -> an encoder with ``encode(texts)`` and ``count_tokens(text)``
EncoderFactory = Callable[[str, str, int], object]


def measure_choice(
    model_dir: Path, make_encoder: EncoderFactory, *, passage_threads: int, query_threads: int, openvino: bool,
    prefixes: tuple[str, str] = ("query: ", "passage: "),
) -> RuntimeChoice:  # fmt: skip
    """Time every candidate on the sample, check it against torch float32, keep the fastest that agrees, and
    record it in ``model_dir`` (one process measures at a time; the others then read its result)."""
    cpu = cpu_features()
    with file_lock(Path(model_dir) / ".runtimes.lock"):
        kept = remembered_choice(model_dir, cpu)
        if kept is not None:
            return kept
        choice = _measure(make_encoder, cpu, passage_threads, query_threads, openvino, prefixes)
        remember_choice(model_dir, choice)
    logger.info(
        "embedding runtimes measured on %s: passages %s, questions %s",
        cpu["model"], "-".join(choice.passages), "-".join(choice.queries),
    )  # fmt: skip
    return choice


def remeasure(model_dir: Path, make_encoder: EncoderFactory, **kwargs) -> RuntimeChoice:
    """Forget this CPU's record and measure again (``policyqa bench``)."""
    path = Path(model_dir) / RECORD_FILE
    with file_lock(Path(model_dir) / ".runtimes.lock"):
        kept = read_record(path)
        kept.pop(cpu_key(cpu_features()), None)
        write_record(path, kept)
    return measure_choice(model_dir, make_encoder, **kwargs)


def _measure(make_encoder, cpu, passage_threads, query_threads, openvino, prefixes) -> RuntimeChoice:
    sample = json.loads(SAMPLE_FILE.read_text(encoding="utf-8"))
    passages = [prefixes[1] + t for t in sample["passages"]]
    questions = [prefixes[0] + q for q in sample["questions"]]
    reference = make_encoder("torch", "float32", passage_threads)
    want_passages, want_questions = reference.encode(passages), reference.encode(questions)
    tokens = sum(reference.count_tokens(t) for t in passages)
    passage_runs = _interleaved(make_encoder, passage_candidates(cpu, openvino=openvino), passage_threads, [passages])
    query_runs = _interleaved(make_encoder, QUERY_CANDIDATES, query_threads, [[q] for q in questions])
    passage_timings = [
        _timing(pair, run, want_passages, "passages", tokens_per_s=round(tokens / min(run.seconds), 1))
        for pair, run in passage_runs.items()
    ]
    query_timings = [
        _timing(pair, run, want_questions, "queries", p50_ms=round(statistics.median(run.seconds) * 1000, 2))
        for pair, run in query_runs.items()
    ]
    return RuntimeChoice(
        _fastest(passage_timings, speed=lambda t: t.tokens_per_s),
        _fastest(query_timings, speed=lambda t: 1 / t.p50_ms),
        cpu, passage_timings, query_timings, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )  # fmt: skip


@dataclass
class _Run:
    seconds: list[float]  # every timed call, over the rounds
    vectors: np.ndarray | None = None  # the last round's output
    error: str = ""


def _interleaved(make_encoder, pairs, threads, calls: list[list[str]]) -> dict[tuple[str, str], _Run]:
    """Each candidate loaded and warmed, then timed round by round in turn, so that a change in the machine's
    load (it is never quiet while a server runs) falls on every candidate alike."""
    encoders, runs = {}, {}
    for pair in pairs:
        try:
            encoders[pair] = make_encoder(*pair, threads)
            encoders[pair].encode(calls[0])  # warm-up: first calls allocate and (OpenVINO) specialise shapes
            runs[pair] = _Run([])
        except Exception as exc:  # a runtime that cannot load or run here is simply not a candidate
            logger.info("embedding runtime %s-%s unavailable: %s", *pair, exc)
            runs[pair] = _Run([], error=f"unavailable: {exc}")
    for _ in range(TIMING_ROUNDS):
        for pair, encoder in encoders.items():
            outputs = []
            for texts in calls:
                started = time.perf_counter()
                outputs.append(encoder.encode(texts))
                runs[pair].seconds.append(time.perf_counter() - started)
            runs[pair].vectors = np.concatenate(outputs)
    return runs


def _timing(pair, run: _Run, want: np.ndarray, role: str, *, tokens_per_s=0.0, p50_ms=None) -> Timing:
    if run.error:
        return Timing(*pair, 0.0, None, 0.0, False, run.error)
    cosine = float(np.sum(run.vectors * want, axis=1).min())
    return Timing(*pair, tokens_per_s, p50_ms, round(cosine, 5), *_eligibility(role, pair, cosine))


PRECISION_RANK = {"float32": 0, "bfloat16": 1, "int8": 2}


def _fastest(timings: list[Timing], *, speed) -> tuple[str, str]:
    """The fastest eligible candidate; but a more precise one within ``PRECISION_MARGIN`` of it wins, so that
    noise between two near-equal runtimes does not flip the index to a less exact one."""
    eligible = [t for t in timings if t.eligible]
    if not eligible:
        return "torch", "float32"
    best = max(speed(t) for t in eligible)
    close = [t for t in eligible if speed(t) >= best * (1 - PRECISION_MARGIN)]
    chosen = min(close, key=lambda t: (PRECISION_RANK.get(t.precision, len(PRECISION_RANK)), -speed(t)))
    return chosen.runtime, chosen.precision


def _eligibility(role: str, pair: tuple[str, str], cosine: float) -> tuple[bool, str]:
    if cosine < MIN_COSINE:
        return False, f"min cosine to torch float32 {cosine:.4f} < {MIN_COSINE}"
    if pair not in GOLD_CHECKED[role]:
        return False, "not checked on the gold set"
    return True, ""
