"""Train the passage ranker, the sentence ranker and the calibrated decline; write them and their card.

    python -m eval.ranker_data --data DIR --work WORK   # the candidates (retrieval over DRCD and docs_raw/)
    python -m eval.train_ranker --work WORK [--out index/answering/models]

Trained on the DRCD train split, early-stopped and calibrated on its validation
split, reported once on its test split and on the gold set (neither is tuned on).
LightGBM runs deterministically on one thread, so the same candidates and seed
give the same files byte for byte.
"""

from __future__ import annotations

import argparse
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.drcd import DEFAULT_SEED, SHA256
from eval.ranker_data import Sample
from index.answering.features import (
    DECISION_FEATURES,
    FEATURE_VERSION,
    PASSAGE_FEATURES,
    SENTENCE_FEATURES,
    decision_row,
    passage_rows,
    question_context,
    sentence_candidates,
    sentence_rows,
)
from index.answering.learned import MANIFEST, MODELS_DIR
from index.quality.gold import contains_answer
from index.quality.metrics import expected_calibration_error

CANDIDATE_PASSAGES = 3  # AnswerParams.candidate_passages: the passages whose sentences are quoted
GOLD_WEIGHT = 3.0  # a policy question of the gold set's training half counts as this many DRCD questions
# Calibrated, and the threshold chosen, for a mix where this share of the questions cannot be answered (the gold
# set's share, and about that of the held-out BEIR sets): the validation split's negatives are reweighted to it.
UNANSWERABLE_SHARE = 0.25
# The threshold: the highest at which at most this share of the validation split's answerable questions are
# declined (a decline of an answerable question costs a user more than a doubtful answer flagged by its
# confidence).
FALSE_DECLINE_BUDGET = 0.06
RANKER = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "eval_at": [1],
    "num_leaves": 15,
    "learning_rate": 0.05,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 10,
}
DECISION = {"objective": "binary", "metric": "binary_logloss", "num_leaves": 7, "learning_rate": 0.05,
            "min_data_in_leaf": 40, "feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1}  # fmt: skip
FIXED = {"deterministic": True, "force_row_wise": True, "num_threads": 1, "verbosity": -1}
ROUNDS, PATIENCE = 600, 50
TRAINED_ON = "2026-12-07"  # the card's date: fixed, so that a rebuild is byte for byte
SPLITS = ("train", "validation", "test", "gold-train", "gold-test")


@dataclass
class Prepared:
    sample: Sample
    passage_x: np.ndarray
    passage_y: np.ndarray
    sentence_x: np.ndarray | None = None
    sentence_y: np.ndarray | None = None
    passage_scores: np.ndarray | None = None
    sentence_scores: np.ndarray | None = None
    decision_x: np.ndarray | None = None
    correct: bool = False  # the lead sentence holds a gold answer and comes from the answering document
    passage_at_1: bool = False  # the passage model's first passage answers
    vetoed: bool = False  # the lead's document lacks a qualifier the question names: declined whatever the model
    candidates: list | None = None


def _passage_label(sample: Sample, doc_id: str, text: str) -> float:
    return float(sample.gold_doc is not None and doc_id == sample.gold_doc and contains_answer(text, sample.answers))


def prepare(samples: list[Sample]) -> list[Prepared]:
    prepared = []
    for sample in samples:
        context = question_context(sample.question, sample.analysis)
        labels = [_passage_label(sample, d, c.text) for d, c in zip(sample.doc_ids, sample.candidates, strict=True)]
        prepared.append(Prepared(sample, passage_rows(context, sample.candidates), np.array(labels)))
    return prepared


def rank_sentences(item: Prepared, passage_model) -> None:
    """Order passages by the passage model, then make the sentence rows of the first few."""
    sample = item.sample
    scores = passage_model.predict(item.passage_x, num_threads=1) if len(item.passage_x) else np.zeros(0)
    order = np.argsort(-scores, kind="stable")
    passages = [sample.candidates[i] for i in order]
    docs = [sample.doc_ids[i] for i in order]
    context = question_context(sample.question, sample.analysis)
    candidates = sentence_candidates(passages, CANDIDATE_PASSAGES)
    doc_of = {id(p): d for p, d in zip(passages, docs, strict=True)}
    item.passage_scores = scores[order]
    item.passage_at_1 = bool(len(order) and item.passage_y[order[0]])
    item.candidates = candidates
    item.sentence_x = sentence_rows(context, candidates)
    item.sentence_y = np.array(
        [_passage_label(sample, doc_of[id(c.passage)], c.sentence.text) for c in candidates], dtype=np.float64
    )


def decide(item: Prepared, sentence_model) -> None:
    if item.sentence_x is None or len(item.sentence_x) == 0:
        item.decision_x, item.correct = None, False
        return
    scores = sentence_model.predict(item.sentence_x, num_threads=1)
    lead = int(np.argmax(scores))
    item.sentence_scores = scores
    item.decision_x = decision_row(item.sentence_x[lead], scores, lead, item.passage_scores)
    item.correct = bool(item.sentence_y[lead])
    item.vetoed = bool(item.candidates[lead].passage.evidence.missing_qualifiers)


def _weight(item: Prepared) -> float:
    return GOLD_WEIGHT if item.sample.source == "gold" else 1.0


def _groups(items: list[Prepared], x: str, y: str):
    kept = [i for i in items if getattr(i, y) is not None and getattr(i, y).sum() > 0]
    return (
        np.vstack([getattr(i, x) for i in kept]),
        np.concatenate([getattr(i, y) for i in kept]),
        [len(getattr(i, y)) for i in kept],
        np.concatenate([np.full(len(getattr(i, y)), _weight(i)) for i in kept]),
    )


def train_ranker(train: list[Prepared], validation: list[Prepared], x: str, y: str, names, seed: int):
    import lightgbm

    tx, ty, tg, tw = _groups(train, x, y)
    vx, vy, vg, _ = _groups(validation, x, y)
    params = {**RANKER, **FIXED, "seed": seed}
    train_set = lightgbm.Dataset(
        tx, ty, group=tg, weight=tw, feature_name=list(names), categorical_feature=["answer_type"]
    )
    valid_set = lightgbm.Dataset(vx, vy, group=vg, reference=train_set)
    return lightgbm.train(
        params, train_set, ROUNDS, valid_sets=[valid_set], callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)]
    )


def train_decision(train: list[Prepared], validation: list[Prepared], seed: int):
    import lightgbm

    def xy(items):
        kept = [i for i in items if i.decision_x is not None]
        rows = np.vstack([i.decision_x for i in kept])
        return rows, np.array([float(i.correct) for i in kept]), np.array([_weight(i) for i in kept])

    tx, ty, tw = xy(train)
    vx, vy, _ = xy(validation)
    names = list(DECISION_FEATURES)
    train_set = lightgbm.Dataset(tx, ty, weight=tw, feature_name=names, categorical_feature=["answer_type"])
    valid_set = lightgbm.Dataset(vx, vy, reference=train_set)
    return lightgbm.train(
        {**DECISION, **FIXED, "seed": seed},
        train_set,
        ROUNDS,
        valid_sets=[valid_set],
        callbacks=[lightgbm.early_stopping(PATIENCE, verbose=False)],
    )


def calibrate(decision_model, validation: list[Prepared]) -> tuple[list[float], list[float]]:
    from sklearn.isotonic import IsotonicRegression

    kept = [i for i in validation if i.decision_x is not None]
    raw = decision_model.predict(np.vstack([i.decision_x for i in kept]), num_threads=1)
    isotonic = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
    isotonic.fit(raw, [float(i.correct) for i in kept], sample_weight=mix_weights(kept))
    return [round(float(v), 6) for v in isotonic.X_thresholds_], [round(float(v), 6) for v in isotonic.y_thresholds_]


def confidences(items: list[Prepared], decision_model, scores: list[float], probabilities: list[float]) -> np.ndarray:
    out = np.zeros(len(items))
    rows = [(n, i.decision_x) for n, i in enumerate(items) if i.decision_x is not None]
    if rows:
        raw = decision_model.predict(np.vstack([r for _, r in rows]), num_threads=1)
        out[[n for n, _ in rows]] = np.interp(raw, scores, probabilities)
    return out


def mix_weights(items: list[Prepared]) -> np.ndarray:
    """Per question, how many it counts as in a mix with UNANSWERABLE_SHARE of unanswerable questions."""
    answerable = np.array([i.sample.variant == "answerable" for i in items], dtype=bool)
    if answerable.all() or not answerable.any():
        return np.ones(len(items))
    ratio = UNANSWERABLE_SHARE / (1 - UNANSWERABLE_SHARE) * answerable.sum() / (~answerable).sum()
    return np.where(answerable, 1.0, ratio)


def choose_threshold(items: list[Prepared], confidence: np.ndarray, budget: float) -> float:
    """The highest confidence an answer may need while at most ``budget`` of the answerable questions are declined."""
    answerable = np.array([i.sample.variant == "answerable" for i in items], dtype=bool)
    vetoed = np.array([i.vetoed for i in items], dtype=bool)
    best = 0.0
    for threshold in sorted(set(np.round(confidence, 6).tolist())):
        declined = (confidence < threshold) | vetoed
        if declined[answerable].mean() <= budget:
            best = float(threshold)
    return best


def figures(items: list[Prepared], confidence: np.ndarray, threshold: float) -> dict[str, float]:
    def share(values):
        return round(float(np.mean(values)), 4) if len(values) else float("nan")

    answerable = [n for n, i in enumerate(items) if i.sample.variant == "answerable"]
    answered = (confidence >= threshold) & ~np.array([i.vetoed for i in items], dtype=bool)
    out = {
        "questions": len(answerable),
        "passage@1": share([items[n].passage_at_1 for n in answerable]),
        "sentence@1": share([items[n].correct for n in answerable]),
        "answered_right": share([items[n].correct and answered[n] for n in answerable]),
        "false_decline": share([not answered[n] for n in answerable]),
    }
    for variant in ("near", "off"):
        of = [n for n, i in enumerate(items) if i.sample.variant == variant]
        out[f"decline_{variant}"] = share([not answered[n] for n in of])
    outcomes = np.array([i.correct for i in items], dtype=float)
    out["ece"] = round(
        expected_calibration_error(confidence.tolist(), outcomes.tolist(), weights=mix_weights(items)), 4
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="holds candidates.pkl (eval.ranker_data)")
    parser.add_argument("--out", type=Path, default=MODELS_DIR)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    with (args.work / "candidates.pkl").open("rb") as handle:
        samples: list[Sample] = pickle.load(handle)
    items = prepare(samples)
    by_split = {s: [i for i in items if i.sample.split == s] for s in SPLITS}
    training = by_split["train"] + by_split["gold-train"]
    passage_model = train_ranker(
        training, by_split["validation"], "passage_x", "passage_y", PASSAGE_FEATURES, args.seed
    )
    for item in items:
        rank_sentences(item, passage_model)
    sentence_model = train_ranker(
        training, by_split["validation"], "sentence_x", "sentence_y", SENTENCE_FEATURES, args.seed
    )
    for item in items:
        decide(item, sentence_model)
    decision_model = train_decision(training, by_split["validation"], args.seed)
    scores, probabilities = calibrate(decision_model, by_split["validation"])
    conf = {s: confidences(v, decision_model, scores, probabilities) for s, v in by_split.items()}
    threshold = choose_threshold(by_split["validation"], conf["validation"], FALSE_DECLINE_BUDGET)
    metrics = {s: figures(v, conf[s], threshold) for s, v in by_split.items()}
    write(args.out, passage_model, sentence_model, decision_model, scores, probabilities, threshold, metrics, args.seed)
    for split, values in metrics.items():
        print(split, json.dumps(values, ensure_ascii=False))


def write(out: Path, passage, sentence, decision, scores, probabilities, threshold, metrics, seed) -> None:
    import lightgbm

    out.mkdir(parents=True, exist_ok=True)
    for name, model in (("passage", passage), ("sentence", sentence), ("decision", decision)):
        (out / f"{name}.txt").write_text(model.model_to_string(), encoding="utf-8")
    manifest = {
        "feature_version": FEATURE_VERSION,
        "threshold": round(threshold, 6),
        "false_decline_budget": FALSE_DECLINE_BUDGET,
        "unanswerable_share": UNANSWERABLE_SHARE,
        "calibration": {"scores": scores, "probabilities": probabilities},
        "trees": {"passage": passage.num_trees(), "sentence": sentence.num_trees(), "decision": decision.num_trees()},
        "metrics": metrics,
        "data": {"drcd_test_sha256": SHA256, "split_seed": seed},
        "lightgbm": lightgbm.__version__,
    }
    (out / MANIFEST).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    (out / "MODEL_CARD.md").write_text(model_card(manifest), encoding="utf-8")
    print(f"models written to {out}")


def model_card(manifest: dict) -> str:
    """The card beside the models: what they are, what they were trained on, and how well they do where."""
    rows = [
        f"| {split} | {m['questions']} | {m['passage@1']:.3f} | {m['sentence@1']:.3f} | {m['answered_right']:.3f}"
        f" | {m['false_decline']:.3f} | {m['decline_near']:.3f} | {m['decline_off']:.3f} | {m['ece']:.3f} |"
        for split, m in manifest["metrics"].items()
    ]
    trees = manifest["trees"]
    return "\n".join(
        [
            "# Model card: policyqa's learned rankers and calibrated decline",
            "",
            f"Trained {TRAINED_ON} by `python -m eval.train_ranker` (LightGBM {manifest['lightgbm']}, feature"
            f" version {manifest['feature_version']}). Files: `passage.txt` ({trees['passage']} trees, LambdaRank"
            f" over {len(PASSAGE_FEATURES)} features), `sentence.txt` ({trees['sentence']} trees, LambdaRank over"
            f" {len(SENTENCE_FEATURES)} features), `decision.txt` ({trees['decision']} trees, binary over"
            f" {len(DECISION_FEATURES)} features) and `models.json` (isotonic calibration, threshold, figures).",
            "",
            "## What they decide",
            "",
            "- **Passages**: the order of the 40 candidates whose sentences were judged (hybrid mode).",
            "- **Sentences**: which sentence of the first three passages is quoted first.",
            "- **Answer or decline**: P(the quoted lead sentence answers), isotonic-calibrated on the validation"
            f" split reweighted so that {manifest['unanswerable_share']:.0%} of its questions cannot be answered (the"
            " gold set's share); answered when at least"
            f" {manifest['threshold']} (`POLICYQA_MIN_CONFIDENCE` overrides it), the highest threshold at which at"
            f" most {manifest['false_decline_budget']:.0%} of the validation split's answerable questions were"
            " declined. A lead whose document lacks a qualifier the question names is declined whatever the"
            " confidence. ECE below is computed at that same mix.",
            "",
            "## Data, licence and attribution",
            "",
            "- **DRCD test split** (`DRCD_test.json` of github.com/DRCKnowledgeTeam/DRCD, commit b944790,"
            f" sha256 `{manifest['data']['drcd_test_sha256'][:16]}…`): 3,493 questions over 1,000 paragraphs of 378"
            " Wikipedia articles, compiled by Delta Electronics, **CC BY-SA 3.0**"
            " (creativecommons.org/licenses/by-sa/3.0). Converted to simplified script with OpenCC t2s, as the"
            f" service converts, and split by article (seed {manifest['data']['split_seed']}): 70% train, 15%"
            " validation, 15% test. These models are derived from it and are shared under the same licence.",
            "- Each DRCD question is asked three ways over an index of all 1,000 paragraphs: as is, without its"
            " paragraph (near-topic: the article's other paragraphs stay) and without its article (off-topic).",
            "- **policyqa's own gold set** (`index/quality/questions.jsonl`, over `docs_raw/`), each answerable"
            " question also asked without its document (near-topic), split by document: `gold-train` is trained"
            f" on (each question weighted as {GOLD_WEIGHT:g} DRCD ones), `gold-test` is not; questions written"
            " after the models (q199 on) are always in `gold-test`.",
            "- Labels: a sentence answers when it is in the answering document and holds a gold answer string; a"
            " passage when it does.",
            "",
            "## Figures (the lead sentence each question would quote, threshold applied)",
            "",
            "| split | answerable | passage@1 | sentence@1 | answered right | false declines | near declined"
            " | off declined | ECE |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "`train` and `gold-train` were trained on; `validation` chose the early stopping, the calibration and"
            " the threshold; `test` and `gold-test` were touched by nothing. The gap between `gold-train` and"
            " `gold-test`, and between DRCD and the gold set, is the price of a domain the models saw little of.",
            "",
            "## Rebuild",
            "",
            "```",
            "python -m eval.ranker_data --data DIR --work WORK   # DIR holds DRCD_test.json",
            "python -m eval.train_ranker --work WORK",
            "```",
            "",
            "From the same `WORK/candidates.pkl` and seed the files are identical byte for byte (LightGBM runs"
            " deterministic on one thread). The candidates themselves come from the embedder: the same machine and"
            " encoder runtime give the same ones, another CPU may differ in the last bits of a cosine.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
