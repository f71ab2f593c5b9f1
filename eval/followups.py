"""Follow-up conversations: hit rates of follow-up questions against the same questions asked in full.

    python -m eval.followups [--url http://host:port] [--modes hybrid dense lexical] [--json PATH]

Each conversation in ``eval/followups.jsonl`` has earlier user turns, a
follow-up question that leans on them (那京口区呢？, 具体有哪些？, 这篇文章的作者是谁？),
the same question asked in full, and its gold document and answer strings (as
in ``index/quality/questions.jsonl``). Every conversation is played through the system
(the earlier turns asked and answered first, their answers sent back as
history), and scored four ways:

- ``full``: the full question, asked alone: what a follow-up should reach;
- ``followup``: the follow-up, with the conversation before it;
- ``alone``: the follow-up without the conversation: what history buys;
- ``switch``: the full question after another conversation's turns, a change of
  topic: resolving follow-ups must not spoil questions that stand alone.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from index.answering.engine import QAEngine
from index.answering.followup import Turn
from index.ingest.documents import doc_id_for
from index.quality.backends import Reply, reply_from_answer, reply_from_json
from index.quality.datasets import EvalQuestion
from index.quality.runner import TOP_K, QuestionResult, score_question, summarize
from service.engines import open_engine

FOLLOWUPS_PATH = Path(__file__).resolve().parent / "followups.jsonl"
CONDITIONS = ("full", "followup", "alone", "switch")
SHOWN = ("doc@1", "doc@3", "passage@1", "passage@3", "answer")


@dataclass(frozen=True)
class FollowupConversation:
    id: str
    history: tuple[str, ...]  # earlier user questions, oldest first
    question: str  # the follow-up
    full: str  # the same question, asked in full
    doc_id: str
    answers: tuple[str, ...]
    type: str  # swap, specify, document, ellipsis


def load_followups(path: Path = FOLLOWUPS_PATH) -> list[FollowupConversation]:
    conversations = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            conversations.append(
                FollowupConversation(
                    row["id"],
                    tuple(row["history"]),
                    row["question"],
                    row["full"],
                    doc_id_for(row["doc"]),
                    tuple(row["answers"]),
                    row["type"],
                )
            )
    return conversations


class ConversationBackend(Protocol):
    def ask(self, question: str, *, history: Sequence[Turn], mode: str, top_k: int) -> Reply: ...


class EngineConversations:
    """Asks the engine in this process, through the same code path as the HTTP routes."""

    def __init__(self, engine: QAEngine) -> None:
        self.engine = engine

    def ask(self, question: str, *, history: Sequence[Turn], mode: str, top_k: int) -> Reply:
        started = time.perf_counter()
        result = self.engine.ask(question, history=history, top_k=top_k, mode=mode, doc_ids=None)
        return reply_from_answer(result.answer, time.perf_counter() - started)


class HttpConversations:
    """Asks a running service's /api/ask, with the conversation in ``history``."""

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout)

    def ask(self, question: str, *, history: Sequence[Turn], mode: str, top_k: int) -> Reply:
        started = time.perf_counter()
        payload = {
            "question": question,
            "mode": mode,
            "top_k": top_k,
            "history": [{"role": t.role, "content": t.content} for t in history],
        }
        response = self.client.post("/api/ask", json=payload)
        seconds = time.perf_counter() - started
        response.raise_for_status()
        return reply_from_json(response.json(), seconds)

    def close(self) -> None:
        self.client.close()


def play(backend: ConversationBackend, questions: Sequence[str], *, mode: str) -> list[Turn]:
    """Ask each question after the ones before it; the conversation as user and assistant turns."""
    turns: list[Turn] = []
    for question in questions:
        reply = backend.ask(question, history=turns, mode=mode, top_k=TOP_K)
        turns = [*turns, Turn("user", question), Turn("assistant", reply.answer)]
    return turns


def run_followups(
    backend: ConversationBackend, conversations: Sequence[FollowupConversation], modes: Sequence[str]
) -> list[QuestionResult]:
    """Every conversation under every condition; the result's ``type`` names the condition."""
    results = []
    for mode in modes:
        histories = [play(backend, c.history, mode=mode) for c in conversations]
        for i, conversation in enumerate(conversations):
            other = histories[i - 1]  # the conversation before: another topic (the corpus is small, so not always)
            asks = {
                "full": (conversation.full, []),
                "followup": (conversation.question, histories[i]),
                "alone": (conversation.question, []),
                "switch": (conversation.full, other),
            }
            gold = EvalQuestion(conversation.id, conversation.full, {conversation.doc_id: 1}, conversation.answers, "")
            for condition, (question, history) in asks.items():
                reply = backend.ask(question, history=history, mode=mode, top_k=TOP_K)
                scored = score_question(gold, mode, reply)
                results.append(_with_type(scored, condition))
    return results


def _with_type(result: QuestionResult, condition: str) -> QuestionResult:
    from dataclasses import replace

    return replace(result, type=condition)


def summarize_followups(results: Sequence[QuestionResult]) -> dict[str, dict[str, dict[str, float]]]:
    """mode -> condition -> figures."""
    table: dict[str, dict[str, dict[str, float]]] = {}
    for mode in dict.fromkeys(r.mode for r in results):
        for condition in CONDITIONS:
            rows = [r for r in results if r.mode == mode and r.type == condition]
            if rows:
                figures = summarize(rows)
                table.setdefault(mode, {})[condition] = {
                    "n": len(rows),
                    **{k: figures[k] for k in (*SHOWN, "faithful")},
                }
    return table


def format_followups(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    lines = [f"{'mode':<9}{'asked':<10}{'n':>4}" + "".join(f"{c:>11}" for c in SHOWN)]
    for mode, conditions in summary.items():
        for condition, figures in conditions.items():
            cells = "".join(f"{figures[c]:>11.3f}" for c in SHOWN)
            lines.append(f"{mode:<9}{condition:<10}{figures['n']:>4}{cells}")
    return "\n".join(lines)


def misses(results: Sequence[QuestionResult], conversations: Sequence[FollowupConversation]) -> list[str]:
    """Follow-ups whose answer misses while the full question's hits, per mode."""
    by_key = {(r.mode, r.type, r.id): r for r in results}
    questions = {c.id: c for c in conversations}
    lines = []
    for (mode, condition, cid), result in by_key.items():
        if condition != "followup" or result.answer_correct:
            continue
        full = by_key.get((mode, "full", cid))
        note = "(the full question misses too)" if full and not full.answer_correct else ""
        conversation = questions[cid]
        lines.append(f"{mode} {cid} {' / '.join(conversation.history)} → {conversation.question} {note}".rstrip())
    return lines


def main(argv: list[str] | None = None) -> int:
    from index.answering.retrieval import MODES
    from service.settings import Settings

    parser = argparse.ArgumentParser(prog="python -m eval.followups", description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="ask a running service instead of the index in this process")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=["hybrid"])
    parser.add_argument("--json", type=Path, help="also write every result and the summary to this file")
    args = parser.parse_args(argv)
    conversations = load_followups()
    engine = None
    if args.url:
        backend: ConversationBackend = HttpConversations(args.url)
    else:
        engine = open_engine(Settings())
        backend = EngineConversations(engine)
    try:
        results = run_followups(backend, conversations, args.modes)
    finally:
        if engine is not None:
            engine.close()
    summary = summarize_followups(results)
    print(f"{len(conversations)} follow-up conversations (eval/followups.jsonl)")
    print(format_followups(summary))
    missed = misses(results, conversations)
    if missed:
        print("follow-ups answered wrongly:", *missed, sep="\n  ")
    if args.json:
        payload = {"summary": summary, "results": [r.to_json() for r in results]}
        args.json.write_text(json.dumps(payload, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
