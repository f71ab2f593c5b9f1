"""Evaluate retrieval and answers on the gold set or BEIR-layout datasets, one or several in a run.

    policyqa eval [--dataset DIR]... [--gold] [--url http://host:port] [--modes hybrid dense lexical]

The gold set is asked of the service's own index (built if missing), or of a
running service with --url. Each BEIR dataset is indexed into its own temporary
data directory that is removed afterwards; the service's index is never touched.
Every result is tagged with the dataset it came from (its source).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
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
    datasets: list[Dataset]  # the sources, in the order they were asked
    results: list[QuestionResult]
    summary: dict[str, dict[str, float]]  # per mode: the one source's figures, or all sources' together
    meta: dict  # meta["by_source"][source][mode]: the figures of each source

    @property
    def dataset(self) -> Dataset:
        """The one dataset, or every source's questions as one (their ids may repeat across sources)."""
        if len(self.datasets) == 1:
            return self.datasets[0]
        questions = [q for d in self.datasets for q in d.questions]
        return Dataset(" + ".join(d.name for d in self.datasets), questions)


def load_sources(dataset_dirs: Sequence[Path], *, gold: bool, gold_set: Dataset | None = None) -> list[Dataset]:
    """The gold set (when asked for, or when no directory is given), then each BEIR directory;
    a name already taken gets a suffix, so that every source has its own. ``gold_set``: a knowledge base's
    (service/gold_set.py), in place of the shipped one."""
    asked = [gold_set or gold_dataset()] if gold or not dataset_dirs else []
    datasets = asked + [load_beir(d) for d in dataset_dirs]
    taken: set[str] = set()
    for i, dataset in enumerate(datasets):
        name, n = dataset.name, 1
        while name in taken:
            n += 1
            name = f"{dataset.name}-{n}"
        taken.add(name)
        datasets[i] = dataclasses.replace(dataset, name=name)
    return datasets


def evaluate(
    settings: Settings,
    *,
    dataset_dir: Path | None = None,
    dataset_dirs: Sequence[Path] = (),
    gold: bool = False,
    url: str | None = None,
    modes: list[str] | None = None,
    show_progress: bool = True,
    kb: str | None = None,
    key: str | None = None,
    gold_set: Dataset | None = None,
) -> Evaluation:
    """Ask every source's questions in every mode. ``dataset_dir`` is one of ``dataset_dirs``;
    ``gold`` adds the gold set to them (it is the only source when no directory is given): ``gold_set``,
    the knowledge base's, or else the shipped one."""
    modes = modes or list(MODES)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ConfigurationError(f"unknown mode(s) {unknown}; choose from {list(MODES)}")
    datasets = load_sources([*([dataset_dir] if dataset_dir else []), *dataset_dirs], gold=gold, gold_set=gold_set)
    if url and any(d.sources is not None for d in datasets):
        raise ConfigurationError("--url asks a running service, which serves its own corpus: use it with the gold set")
    started = time.perf_counter()
    results: list[QuestionResult] = []
    abouts: dict[str, dict] = {}
    for dataset in datasets:
        found, abouts[dataset.name] = _run_source(
            dataset, settings, modes, url=url, kb=kb, key=key, show_progress=show_progress
        )
        results += found
    meta = _meta(datasets, abouts, modes, started)
    meta["by_source"] = {d.name: summarize_by_mode([r for r in results if r.source == d.name]) for d in datasets}
    calibration = best_abstention_threshold([r for r in results if r.mode == modes[0]])
    if calibration:
        meta["abstention_calibration"] = {
            "mode": modes[0],
            "threshold": calibration[0],
            "accuracy": calibration[1],
            "configured": settings.min_relevance,
        }
    return Evaluation(datasets, results, summarize_by_mode(results), meta)


def _run_source(
    dataset: Dataset,
    settings: Settings,
    modes: list[str],
    *,
    url: str | None,
    kb: str | None,
    key: str | None,
    show_progress: bool,
) -> tuple[list[QuestionResult], dict]:
    """One source's results, and what answered them."""
    if url:
        backend = HttpBackend(url, kb=kb, key=key)
        health = backend.health()
        results = run(dataset, backend, modes, show_progress=show_progress)
        backend.close()
        return results, {
            "backend": url,
            "kb": kb or "default",
            "build_id": health["build_id"],
            "embedder": health["embedder"],
        }
    if dataset.sources is None:
        engine = open_engine(settings, show_progress=show_progress)
        results = run(dataset, EngineBackend(engine), modes, show_progress=show_progress)
        about = _about(engine)
        engine.close()
        return results, about
    with tempfile.TemporaryDirectory(prefix="policyqa-eval-") as data_dir:
        build_index(
            sources=dataset.sources,
            data_dir=Path(data_dir),
            embedder=passage_embedder(settings),
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
        return results, about


def _meta(datasets: list[Dataset], abouts: dict[str, dict], modes: list[str], started: float) -> dict:
    first = next(iter(abouts.values()))
    builds = {name: about["build_id"] for name, about in abouts.items()}
    return {
        "dataset": " + ".join(d.name for d in datasets),
        **first,
        "build_id": ", ".join(dict.fromkeys(builds.values())),
        "sources": [d.name for d in datasets],
        "builds": builds,
        "modes": modes,
        "questions": sum(len(d.questions) for d in datasets),
        "elapsed_s": round(time.perf_counter() - started, 2),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _about(engine: QAEngine) -> dict:
    manifest = engine.index.manifest
    return {"backend": "in-process", "build_id": manifest.build_id, "embedder": manifest.embedder.name}


def save(evaluation: Evaluation, reports_dir: Path = DEFAULT_REPORTS_DIR) -> Path:
    questions = {(d.name, q.id): q.text for d in evaluation.datasets for q in d.questions}
    return write_report(
        reports_dir, meta=evaluation.meta, results=evaluation.results, summary=evaluation.summary, questions=questions
    )


def describe(evaluation: Evaluation) -> str:
    """The run in a few lines, and one table per source (and one of them all together when several)."""
    meta = evaluation.meta
    lines = [
        f"{meta['dataset']}: {meta['questions']} questions via {meta['backend']} (build {meta['build_id']}),"
        f" {meta['elapsed_s']:.1f} s",
    ]
    by_source = meta["by_source"]
    for dataset in evaluation.datasets:
        if len(by_source) > 1:
            lines.append(f"\n{dataset.name}: {len(dataset.questions)} questions (build {meta['builds'][dataset.name]})")
        lines.append(format_table(by_source[dataset.name]))
    if len(by_source) > 1:
        lines += [
            f"\nall {len(by_source)} sources together: {meta['questions']} questions",
            format_table(evaluation.summary),
        ]
    calibration = meta.get("abstention_calibration")
    if calibration:
        lines.append(
            f"abstention: best threshold {calibration['threshold']:.3f} (accuracy {calibration['accuracy']:.3f}),"
            f" configured {calibration['configured']:.3f}"
        )
    return "\n".join(lines)
