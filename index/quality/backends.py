"""Where questions are asked: the engine in this process, or a running service over HTTP.

Both return the same ``Reply``, so the same figures come out of either.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

import httpx

from index.answering.compose import Answer
from index.answering.engine import QAEngine


@dataclass(frozen=True)
class Reply:
    doc_ids: list[str]  # of the ranked passages, best first
    chunk_ids: list[int]
    passages: list[str]
    answer: str
    answerable: bool
    relevance: float
    cited_texts: dict[int, str]  # n -> passage text
    seconds: float
    short_answer: str | None = None
    declined_reason: str | None = None
    confidence: float | None = None  # P(the quoted lead sentence answers the question), when the engine gives one


class Backend(Protocol):
    def ask(self, question: str, *, mode: str, top_k: int) -> Reply: ...


def reply_from_json(body: dict, seconds: float) -> Reply:
    """A reply from an /api/ask response body."""
    citations = body["citations"]
    return Reply(
        doc_ids=[c["doc_id"] for c in citations],
        chunk_ids=[c["chunk_id"] for c in citations],
        passages=[c["text"] for c in citations],
        answer=body["answer"],
        answerable=body["answerable"],
        relevance=body["relevance"],
        cited_texts={c["n"]: c["text"] for c in citations},
        seconds=seconds,
        short_answer=(body.get("short_answer") or {}).get("text"),
        declined_reason=body.get("declined_reason"),
        confidence=body.get("confidence"),
    )


def reply_from_answer(answer: Answer, seconds: float) -> Reply:
    """A reply from an engine's answer: what /api/ask would send of it."""
    citations = answer.citations
    return Reply(
        doc_ids=[c.hit.chunk.doc_id for c in citations],
        chunk_ids=[c.hit.chunk.chunk_id for c in citations],
        passages=[c.hit.chunk.text for c in citations],
        answer=answer.text,
        answerable=answer.answerable,
        relevance=answer.relevance,
        cited_texts={c.n: c.hit.chunk.text for c in citations},
        seconds=seconds,
        short_answer=answer.short_answer.text if answer.short_answer else None,
        declined_reason=answer.declined_reason,
        confidence=getattr(answer, "confidence", None),  # until Answer carries it
    )


class EngineBackend:
    def __init__(self, engine: QAEngine) -> None:
        self.engine = engine

    def ask(self, question: str, *, mode: str, top_k: int) -> Reply:
        started = time.perf_counter()
        timed = self.engine.ask(question, top_k=top_k, mode=mode, doc_ids=None)
        seconds = time.perf_counter() - started
        return reply_from_answer(timed.answer, seconds)


class HttpBackend:
    def __init__(self, url: str, *, timeout: float = 60.0, kb: str | None = None, key: str | None = None) -> None:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=timeout, headers=headers)
        self.ask_path = f"/api/kbs/{kb}/ask" if kb and kb != "default" else "/api/ask"

    def ask(self, question: str, *, mode: str, top_k: int) -> Reply:
        started = time.perf_counter()
        response = self.client.post(self.ask_path, json={"question": question, "mode": mode, "top_k": top_k})
        seconds = time.perf_counter() - started
        response.raise_for_status()
        return reply_from_json(response.json(), seconds)

    def health(self) -> dict:
        return self.client.get("/api/health").raise_for_status().json()

    def close(self) -> None:
        self.client.close()
