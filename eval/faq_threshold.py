"""Calibrate the FAQ match threshold (index/answering/faq.py MATCH_THRESHOLD) on held-out questions.

``eval/faq_pairs.jsonl`` holds FAQ pairs (question, similar questions, answer) and, for each, held-out
paraphrases (the pair should answer them) and near-topic questions (it should not: another pair may, or
none). The pairs alternate between a tune and a test split. Every question is matched against every pair, as
the server does; a threshold is chosen on the tune split (the lowest whose precision of "the FAQ leads" is at
least ``--precision``, precision first: a wrong canned answer is worse than an answer from the documents),
and the test split is then measured once at it.

    python -m eval.faq_threshold [--models-dir var/models]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from index.answering.faq import answers_type
from index.answering.question import analyze
from index.embedders import load_embedder
from index.ingest.clean import normalize_for_matching
from index.ingest.faq import FaqPair, question_key

PAIRS = Path(__file__).with_name("faq_pairs.jsonl")


def cases(pairs: list[dict]) -> list[tuple[str, str, int | None]]:
    """(split, question, the pair that should answer it or None); a near-topic question that is another pair's
    own question is left out (it is not held out)."""
    owner = {question_key(q): i for i, p in enumerate(pairs) for q in [p["question"], *p["similar"]]}
    found = []
    for i, pair in enumerate(pairs):
        split = "tune" if i % 2 == 0 else "test"
        found += [(split, q, i) for q in pair["paraphrases"]]
        found += [(split, q, None) for q in pair["negatives"] if question_key(q) not in owner]
    return found


def best_matches(embedder, pairs: list[dict], questions: list[str]) -> tuple[np.ndarray, np.ndarray]:
    owners = [(i, q) for i, p in enumerate(pairs) for q in [p["question"], *p["similar"]]]
    matrix = embedder.embed_queries([normalize_for_matching(q) for _, q in owners])
    asked = embedder.embed_queries([normalize_for_matching(q) for q in questions])
    scores = asked @ matrix.T
    best = scores.argmax(axis=1)
    return scores.max(axis=1), np.array([owners[b][0] for b in best])


def rates(score, best, expected, threshold: float) -> tuple[float, float, int, int]:
    leads = score >= threshold
    right = leads & (best == expected)
    answerable = expected >= 0
    precision = right.sum() / leads.sum() if leads.sum() else 1.0
    return float(precision), float(right.sum() / answerable.sum()), int(leads.sum()), int(right.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, default=Path("var/models"))
    parser.add_argument("--precision", type=float, default=0.8)
    args = parser.parse_args()
    pairs = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines() if line.strip()]
    found = cases(pairs)
    embedder = load_embedder("e5-small", models_dir=args.models_dir)
    score, best = best_matches(embedder, pairs, [q for _, q, _ in found])
    answers = [FaqPair(p["question"], p["answer"]) for p in pairs]
    typed = np.array([answers_type(answers[b], analyze(q)) for (_, q, _), b in zip(found, best, strict=True)])
    score = np.where(typed, score, 0.0)  # the server's gate: the answer must hold what is asked for
    expected = np.array([-1 if e is None else e for _, _, e in found])
    split = np.array([s for s, _, _ in found])
    tune, test = split == "tune", split == "test"
    grid = np.round(np.arange(0.80, 0.995, 0.005), 3)
    print("threshold  tune precision  tune recall")
    chosen = None
    for t in grid:
        p, r, _, _ = rates(score[tune], best[tune], expected[tune], t)
        print(f"{t:9.3f}  {p:14.3f}  {r:11.3f}")
        if chosen is None and p >= args.precision:
            chosen = float(t)
    assert chosen is not None, "no threshold reaches the precision asked"
    p, r, leads, right = rates(score[test], best[test], expected[test], chosen)
    print(
        f"pairs {len(pairs)}; tune {tune.sum()} questions, test {test.sum()} ({(expected[test] >= 0).sum()} answerable)"
    )
    print(f"chosen on tune: {chosen:.3f} (lowest with precision >= {args.precision})")
    print(f"test at {chosen:.3f}: precision {p:.3f}, recall {r:.3f} ({right} right of {leads} leads)")


if __name__ == "__main__":
    main()
