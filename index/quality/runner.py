"""Runs a dataset through a backend, per retrieval mode, and scores every question."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from index.progress import progress_bar
from index.quality.backends import Backend, Reply
from index.quality.datasets import Dataset, EvalQuestion
from index.quality.gold import contains_answer
from index.quality.metrics import (
    best_char_f1,
    distinct,
    expected_calibration_error,
    hit_at,
    mean,
    ndcg_at,
    percentile,
    precision_recall,
    reciprocal_rank,
)

TOP_K = 20  # passages asked for: enough distinct documents for the @10 metrics
MARKED_SENTENCE = re.compile(r"(.+?)\[(\d+)\]", re.S)
CUTOFFS = (1, 3, 5)
WRONG_SHORT_F1 = 0.3  # a short answer below this character F1 is counted wrong


@dataclass(frozen=True)
class QuestionResult:
    id: str
    type: str
    mode: str
    answerable: bool
    relevant: dict[str, int]
    ranked_docs: list[str]  # distinct documents, best first
    ranked_chunks: list[int]
    passage_hits: list[bool]  # per ranked passage: relevant document and a gold answer in it
    answered: bool
    answer: str
    answer_correct: bool | None  # None when there are no gold answer strings
    faithful: bool  # every quoted sentence is in the passage its marker cites
    relevance: float
    latency_ms: float
    answer_type: str | None = None
    topic: str | None = None  # unanswerable questions: near / off
    short_gold: tuple[str, ...] = ()
    short_answer: str | None = None
    short_f1: float | None = None  # None when the question has no gold short answer
    declined_reason: str | None = None
    confidence: float | None = None  # the reply's P(its lead sentence answers the question)
    sentence_hit: bool | None = None  # answered, and the first quoted sentence holds a gold string; None: ungraded
    source: str = ""  # the dataset's name

    @property
    def doc_rank(self) -> int | None:
        return next((i for i, d in enumerate(self.ranked_docs, 1) if self.relevant.get(d, 0) > 0), None)

    def to_json(self) -> dict:
        return {**asdict(self), "doc_rank": self.doc_rank}


def is_faithful(reply: Reply) -> bool:
    """Whether the answer is nothing but sentences found verbatim in the passages they cite,
    and the short answer a piece of one of them."""
    if not reply.answerable:
        return True
    pieces = MARKED_SENTENCE.findall(reply.answer)
    if not pieces or "".join(f"{s}[{n}]" for s, n in pieces) != reply.answer:
        return False
    if not all(sentence in reply.cited_texts.get(int(n), "") for sentence, n in pieces):
        return False
    return reply.short_answer is None or any(reply.short_answer in sentence for sentence, _ in pieces)


def lead_sentence(answer: str) -> str | None:
    """The first quoted sentence of an answer (the first ``text[n]`` piece), None when it quotes none."""
    found = MARKED_SENTENCE.match(answer)
    return found.group(1) if found else None


def score_question(question: EvalQuestion, mode: str, reply: Reply, *, source: str = "") -> QuestionResult:
    def passage_hit(doc_id: str, text: str) -> bool:
        in_doc = question.relevant.get(doc_id, 0) > 0
        return in_doc and (not question.answers or contains_answer(text, question.answers))

    correct = sentence_hit = None
    if question.answers and question.answerable:
        correct = reply.answerable and contains_answer(reply.answer, question.answers)
        lead = lead_sentence(reply.answer) if reply.answerable else None
        sentence_hit = lead is not None and contains_answer(lead, question.answers)
    return QuestionResult(
        id=question.id,
        type=question.type,
        mode=mode,
        answerable=question.answerable,
        relevant=question.relevant,
        ranked_docs=distinct(reply.doc_ids),
        ranked_chunks=reply.chunk_ids,
        passage_hits=[passage_hit(d, t) for d, t in zip(reply.doc_ids, reply.passages, strict=True)],
        answered=reply.answerable,
        answer=reply.answer,
        answer_correct=correct,
        faithful=is_faithful(reply),
        relevance=reply.relevance,
        latency_ms=reply.seconds * 1000,
        answer_type=question.answer_type,
        topic=question.topic,
        short_gold=question.short,
        short_answer=reply.short_answer,
        short_f1=best_char_f1(reply.short_answer, question.short) if question.short else None,
        declined_reason=reply.declined_reason,
        confidence=reply.confidence,
        sentence_hit=sentence_hit,
        source=source,
    )


def run(dataset: Dataset, backend: Backend, modes: list[str], *, show_progress: bool = True) -> list[QuestionResult]:
    results = []
    total = len(dataset.questions) * len(modes)
    if dataset.questions:  # the first question pays for lazy loading (jieba's dictionary): not timed
        backend.ask(dataset.questions[0].text, mode=modes[0], top_k=TOP_K)
    with progress_bar(total=total, desc=f"eval {dataset.name}", unit="question", enabled=show_progress) as bar:
        for mode in modes:
            for question in dataset.questions:
                reply = backend.ask(question.text, mode=mode, top_k=TOP_K)
                results.append(score_question(question, mode, reply, source=dataset.name))
                bar.update(1)
    return results


def summarize(results: list[QuestionResult]) -> dict[str, float]:
    """The figures of one mode."""
    answerable = [r for r in results if r.answerable]
    summary: dict[str, float] = {}
    for k in CUTOFFS:
        summary[f"doc@{k}"] = mean([hit_at(r.ranked_docs, r.relevant, k) for r in answerable])
    for k in CUTOFFS:
        summary[f"passage@{k}"] = mean([float(any(r.passage_hits[:k])) for r in answerable])
    summary["mrr@10"] = mean([reciprocal_rank(r.ranked_docs, r.relevant, 10) for r in answerable])
    summary["ndcg@10"] = mean([ndcg_at(r.ranked_docs, r.relevant, 10) for r in answerable])
    graded = [r for r in answerable if r.answer_correct is not None]
    summary["answer"] = mean([float(r.answer_correct) for r in graded])
    summary["sentence@1"] = mean([float(r.sentence_hit) for r in answerable if r.sentence_hit is not None])
    precision, recall = precision_recall([not r.answered for r in results], [not r.answerable for r in results])
    summary["abstain_p"], summary["abstain_r"] = precision, recall
    summary["false_abstain"] = mean([float(not r.answered) for r in answerable])
    for topic in ("near", "off"):
        of_topic = [r for r in results if not r.answerable and r.topic == topic]
        summary[f"abstain_r_{topic}"] = mean([float(not r.answered) for r in of_topic])
    with_short = [r for r in answerable if r.short_f1 is not None]
    summary["short_f1"] = mean([r.short_f1 for r in with_short])
    summary["short_em"] = mean([float(r.short_f1 == 1.0) for r in with_short])
    given = [r for r in with_short if r.short_answer]
    summary["short_wrong"] = mean([float(r.short_f1 < WRONG_SHORT_F1) for r in given]) if given else 0.0
    summary["faithful"] = mean([float(r.faithful) for r in results if r.answered])
    confidences, outcomes = calibration_pairs(results)
    summary["ece"] = expected_calibration_error(confidences, outcomes)
    summary["confident_n"] = len(confidences)
    summary["p50_ms"] = percentile([r.latency_ms for r in results], 50)
    summary["p95_ms"] = percentile([r.latency_ms for r in results], 95)
    return summary


def calibration_pairs(results: list[QuestionResult]) -> tuple[list[float], list[bool]]:
    """Each confidence and whether it came true: the question is answerable and its lead sentence holds
    a gold string. Unanswerable questions count as false; answerable ones without gold strings are left out
    (nothing to check the lead sentence against)."""
    pairs = [
        (r.confidence, bool(r.sentence_hit))
        for r in results
        if r.confidence is not None and (not r.answerable or r.sentence_hit is not None)
    ]
    return [c for c, _ in pairs], [o for _, o in pairs]


def summarize_by_mode(results: list[QuestionResult]) -> dict[str, dict[str, float]]:
    modes = list(dict.fromkeys(r.mode for r in results))
    return {mode: summarize([r for r in results if r.mode == mode]) for mode in modes}


def best_abstention_threshold(results: list[QuestionResult]) -> tuple[float, float] | None:
    """The relevance cut-off that best tells answerable from unanswerable questions, and its accuracy."""
    if all(r.answerable for r in results) or not any(r.answerable for r in results):
        return None
    best = (0.0, -1.0)
    for threshold in sorted({round(r.relevance, 3) for r in results}):
        accuracy = mean([float((r.relevance >= threshold) == r.answerable) for r in results])
        if accuracy > best[1]:
            best = (threshold, accuracy)
    return best
