"""The shipped learned models: a passage ranker, a sentence ranker and a calibrated answer-or-decline.

Trained by ``eval/train_ranker.py`` from the DRCD test split (see
``index/answering/models/MODEL_CARD.md``); loaded once per process, and refused
when they were trained on another version of the features.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.answering.features import (
    DECISION_FEATURES,
    FEATURE_VERSION,
    PASSAGE_FEATURES,
    SENTENCE_FEATURES,
)
from index.errors import ConfigurationError

MODELS_DIR = Path(__file__).resolve().parent / "models"
MANIFEST = "models.json"


@dataclass(frozen=True)
class Calibration:
    """Isotonic regression as its breakpoints: a raw decision score to P(the quoted sentence answers)."""

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]

    def __call__(self, raw: float) -> float:
        return float(np.interp(raw, self.scores, self.probabilities))


class _Booster:
    """A LightGBM model, predicting on one thread: requests already run side by side on the cores.

    One prediction at a time per model: LightGBM's predictors set shared fields of the booster as they are made
    (lightgbm-org/LightGBM#6142), and a prediction here takes well under a millisecond.
    """

    def __init__(self, path: Path, features: tuple[str, ...]) -> None:
        import lightgbm

        self._lock = threading.Lock()
        self.booster = lightgbm.Booster(model_str=path.read_text(encoding="utf-8"))
        if tuple(self.booster.feature_name()) != features:
            raise ConfigurationError(f"{path.name} was trained on other features: retrain it (eval/train_ranker.py)")

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros(0)
        with self._lock:
            return self.booster.predict(rows, num_threads=1)


@dataclass(frozen=True)
class LearnedModels:
    passage: _Booster
    sentence: _Booster
    decision: _Booster
    calibration: Calibration
    threshold: float  # the confidence an answer needs, chosen on the validation split for a stated precision
    card: dict

    def confidence(self, decision_row: np.ndarray) -> float:
        return self.calibration(float(self.decision(decision_row[None, :])[0]))


def load_models(directory: Path = MODELS_DIR) -> LearnedModels:
    manifest_path = directory / MANIFEST
    if not manifest_path.is_file():
        raise ConfigurationError(f"no learned models in {directory}: run python -m eval.train_ranker")
    card = json.loads(manifest_path.read_text(encoding="utf-8"))
    if card.get("feature_version") != FEATURE_VERSION:
        raise ConfigurationError(
            f"the models in {directory} read features version {card.get('feature_version')}, this code makes"
            f" version {FEATURE_VERSION}: retrain them (python -m eval.train_ranker)"
        )
    calibration = card["calibration"]
    return LearnedModels(
        _Booster(directory / "passage.txt", PASSAGE_FEATURES),
        _Booster(directory / "sentence.txt", SENTENCE_FEATURES),
        _Booster(directory / "decision.txt", DECISION_FEATURES),
        Calibration(tuple(calibration["scores"]), tuple(calibration["probabilities"])),
        float(card["threshold"]),
        card,
    )


@functools.cache
def shipped_models() -> LearnedModels:
    return load_models(MODELS_DIR)
