"""The gold set run inside the server, as a job: what the console's 评测 view starts and follows.

One run at a time (each asks every gold question of the knowledge base in each mode, on the same compute slots as
the requests: for ``default`` the shipped gold set and the questions its staff added, for another knowledge base
its added ones, service/gold_set.py), the last few kept in memory with their summary
tables and plot. The metrics and the runner are the library's (``index/quality/``), shared with
``policyqa eval`` and the benchmarks in ``eval/``.
"""

from __future__ import annotations

import logging
import math
import secrets
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from index.answering.engine import QAEngine
from index.errors import ConflictError
from index.quality.backends import EngineBackend
from index.quality.datasets import Dataset
from index.quality.report import write_plot
from index.quality.runner import TOP_K, best_abstention_threshold, score_question, summarize_by_mode

logger = logging.getLogger(__name__)

RUNS_KEPT = 10


@dataclass
class EvalRun:
    id: str
    kb_id: str
    modes: list[str]
    dataset: str = "gold"
    state: str = "queued"  # queued | running | done | failed
    progress: float = 0.0
    questions: int = 0
    error: str | None = None
    summary: dict[str, dict[str, float]] | None = None
    abstention: dict | None = None  # the best relevance cut-off on this run, next to the configured one
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    plot: bytes | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        fields = {k: v for k, v in self.__dict__.items() if k != "plot"}
        fields["summary"] = _finite(self.summary)
        fields["abstention"] = _finite(self.abstention)
        return {**fields, "plot": self.plot is not None}


def _finite(value):
    """The figures with those that could not be computed (NaN: no question of that kind) as None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class ServerStopping(Exception):
    """The server is shutting down: the run stops between two questions."""


class Evaluations:
    def __init__(self) -> None:
        self._runs: OrderedDict[str, EvalRun] = OrderedDict()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def close(self, timeout: float = 10.0) -> None:
        """Stop a run in progress before the engines it asks are closed under it."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def start(self, *, kb_id: str, engine: QAEngine, modes: list[str], dataset: Dataset) -> EvalRun:
        with self._lock:
            if any(r.state in ("queued", "running") for r in self._runs.values()):
                raise ConflictError("an evaluation is already running; wait for it to finish")
            run = EvalRun(id=secrets.token_hex(8), kb_id=kb_id, modes=modes, dataset=dataset.name)
            self._runs[run.id] = run
            while len(self._runs) > RUNS_KEPT:
                self._runs.popitem(last=False)
        thread = threading.Thread(target=self._run, args=(run, engine, dataset), name=f"eval-{run.id}", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        return run

    def get(self, kb_id: str, run_id: str) -> EvalRun | None:
        run = self._runs.get(run_id)
        return run if run is not None and run.kb_id == kb_id else None

    def list(self, kb_id: str) -> list[EvalRun]:
        return [r for r in reversed(self._runs.values()) if r.kb_id == kb_id]

    def _run(self, run: EvalRun, engine: QAEngine, dataset: Dataset) -> None:
        run.state = "running"
        try:
            _evaluate(run, engine, dataset, self._stopping)
            run.state = "done"
        except ServerStopping:
            run.state, run.error = "failed", "the server stopped during the run"
        except Exception as exc:  # a failed run is reported with the run, never raised into the server
            logger.exception("evaluation %s failed", run.id)
            run.state, run.error = "failed", f"{type(exc).__name__}: {exc}"
        run.finished_at = time.time()


def _evaluate(run: EvalRun, engine: QAEngine, dataset: Dataset, stopping: threading.Event) -> None:
    backend = EngineBackend(engine)
    run.questions = len(dataset.questions)
    total = max(1, len(dataset.questions) * len(run.modes))
    if dataset.questions:  # as index.quality.runner does: the first question pays for lazy loading, untimed
        backend.ask(dataset.questions[0].text, mode=run.modes[0], top_k=TOP_K)
    results = []
    for mode in run.modes:
        for question in dataset.questions:
            if stopping.is_set():
                raise ServerStopping
            results.append(score_question(question, mode, backend.ask(question.text, mode=mode, top_k=TOP_K)))
            run.progress = round(len(results) / total, 4)
    run.summary = summarize_by_mode(results)
    calibration = best_abstention_threshold([r for r in results if r.mode == run.modes[0]])
    if calibration:
        threshold, accuracy = calibration
        configured = engine.options.answer.min_relevance
        run.abstention = {"mode": run.modes[0], "threshold": threshold, "accuracy": accuracy, "configured": configured}
    run.plot = _plot(run, results)


def _plot(run: EvalRun, results: list) -> bytes:

    with tempfile.TemporaryDirectory(prefix="policyqa-eval-plot-") as folder:
        path = Path(folder) / "plot.png"
        write_plot(path, run.summary, results, title=f"{run.dataset} · {run.kb_id} · {len(results)} answers")
        return path.read_bytes()
