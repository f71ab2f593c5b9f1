"""Evaluate retrieval and answers on the gold set or a BEIR-layout dataset.

    policyqa eval [--dataset DIR] [--url http://host:port] [--modes hybrid dense lexical]

The gold set is asked of the service's own index (built if missing), or of a
running service with --url. A BEIR dataset is indexed into a temporary data
directory that is removed afterwards; the service's index is never touched.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from index.answering.engine import QAEngine
from index.answering.retrieval import MODES
from index.errors import ConfigurationError
from index.quality.backends import EngineBackend, HttpBackend
from index.quality.datasets import Dataset, gold_dataset, load_beir
from index.quality.report import format_table, write_report
from index.quality.runner import QuestionResult, best_abstention_threshold, run, summarize_by_mode
from index.stores.local.build import build_index
from service.engines import open_engine, passage_embedder
from service.settings import Settings

DEFAULT_REPORTS_DIR = Path("eval/reports")


@dataclass(frozen=True)
class Evaluation:
    dataset: Dataset
    results: list[QuestionResult]
    summary: dict[str, dict[str, float]]
    meta: dict


def evaluate(
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    url: str | None = None,
    modes: list[str] | None = None,
    show_progress: bool = True,
    kb: str | None = None,
    key: str | None = None,
) -> Evaluation:
    modes = modes or list(MODES)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigurationError(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    dataset = load_beir(dataset_dir) if dataset_dir else gold_dataset()
    started = time.perf_counter()
    if url:
        if dataset.sources is not None:
            raise ConfigurationError(
                "--url asks a running service, which serves its own corpus: use it with the gold set"
            )
        backend = HttpBackend(url, kb=kb, key=key)
        health = backend.health()
        results = run(dataset, backend, modes, show_progress=show_progress)
        backend.close()
        about = {"backend": url, "kb": kb or "default", "build_id": health["build_id"], "embedder": health["embedder"]}
    elif dataset.sources is not None:
        with tempfile.TemporaryDirectory(prefix="policyqa-eval-") as data_dir:
            embedder = passage_embedder(settings)
            build_index(
                sources=dataset.sources,
                data_dir=Path(data_dir),
                embedder=embedder,
                chunking=settings.chunking(),
                show_progress=show_progress,
                late_chunking=settings.late_chunking,
            )
            temporary = {  # a throwaway local index of the dataset's own corpus, whatever the store configured
                "store": "local",
                "data_dir": Path(data_dir),
                "build_on_start": False,
                "models_dir": settings.resolved_models_dir(),
            }
            engine = open_engine(settings.model_copy(update=temporary))
            results = run(dataset, EngineBackend(engine), modes, show_progress=show_progress)
            about = _about(engine)
            engine.close()
    else:
        engine = open_engine(settings, show_progress=show_progress)
        results = run(dataset, EngineBackend(engine), modes, show_progress=show_progress)
        about = _about(engine)
        engine.close()
    summary = summarize_by_mode(results)
    meta = {
        "dataset": dataset.name,
        **about,
        "modes": modes,
        "questions": len(dataset.questions),
        "elapsed_s": round(time.perf_counter() - started, 2),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    calibration = best_abstention_threshold([r for r in results if r.mode == modes[0]])
    if calibration:
        meta["abstention_calibration"] = {
            "mode": modes[0],
            "threshold": calibration[0],
            "accuracy": calibration[1],
            "configured": settings.min_relevance,
        }
    return Evaluation(dataset, results, summary, meta)


def _about(engine: QAEngine) -> dict:
    manifest = engine.index.manifest
    return {"backend": "in-process", "build_id": manifest.build_id, "embedder": manifest.embedder.name}


def save(evaluation: Evaluation, reports_dir: Path = DEFAULT_REPORTS_DIR) -> Path:
    questions = {q.id: q.text for q in evaluation.dataset.questions}
    return write_report(
        reports_dir, meta=evaluation.meta, results=evaluation.results, summary=evaluation.summary, questions=questions
    )


def describe(evaluation: Evaluation) -> str:
    meta = evaluation.meta
    lines = [
        f"{meta['dataset']}: {meta['questions']} questions via {meta['backend']} (build {meta['build_id']}),"
        f" {meta['elapsed_s']:.1f} s",
        format_table(evaluation.summary),
    ]
    calibration = meta.get("abstention_calibration")
    if calibration:
        lines.append(
            f"abstention: best threshold {calibration['threshold']:.3f} (accuracy {calibration['accuracy']:.3f}),"
            f" configured {calibration['configured']:.3f}"
        )
    return "\n".join(lines)
