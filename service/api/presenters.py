"""Domain objects to response models."""

from __future__ import annotations

import re

from index.answering.compose import Answer
from index.answering.policy_view import PolicyView
from index.answering.retrieval import Hit
from service.api import schemas
from service.api.policy_schemas import document_policy


def passage(hit: Hit, view: PolicyView | None = None) -> dict:
    """``view``: the knowledge base's policy view, to say which document the passage is from and whether it holds."""
    chunk = hit.chunk
    policy = document_policy(*view.of(chunk.doc_id)) if view is not None else None
    return {
        "kind": "faq" if hit.faq is not None else "document",
        "faq": _faq(hit),
        "doc_id": chunk.doc_id,
        "title": chunk.title,
        "source": chunk.source,
        "section": list(chunk.section),
        "chunk_id": chunk.chunk_id,
        "text": chunk.text,
        "start": chunk.start,
        "end": chunk.end,
        "pages": list(chunk.pages) if chunk.pages else None,
        "ocr_confidence": chunk.ocr_confidence,
        "score": round(hit.score, 6),
        "dense_score": round(hit.dense, 6),
        "lexical_score": round(hit.lexical, 6),
        "evidence": _evidence(hit),
        "document": policy.model_dump() if policy is not None else None,
    }


def _faq(hit: Hit) -> dict | None:
    pair = hit.faq
    return {"id": hit.chunk.doc_id, "question": pair.question, "source": pair.source} if pair else None


def faq_lead(answer: Answer) -> schemas.FaqLead | None:
    match = answer.faq
    if match is None:
        return None
    return schemas.FaqLead(id=match.entry.doc_id, matched=match.matched, score=round(match.score, 6),
                           threshold=match.threshold)  # fmt: skip


def _evidence(hit: Hit) -> dict | None:
    """The passage's best sentence, as plain data: passages are printed as JSON by the CLI too."""
    best = hit.evidence.best if hit.evidence else None
    return {"start": best.start, "end": best.end} if best else None


def short_answer(answer: Answer) -> schemas.ShortAnswer | None:
    short = answer.short_answer
    return schemas.ShortAnswer(text=short.text, n=short.n, start=short.start, end=short.end) if short else None


def citations(answer: Answer, view: PolicyView | None = None) -> list[schemas.Citation]:
    return [
        schemas.Citation(
            n=c.n,
            highlights=[schemas.Highlight(start=s, end=e) for s, e in c.highlights],
            weak=c.weak,
            **passage(c.hit, view),
        )
        for c in answer.citations
    ]


_PIECE = re.compile(r".+?\[\d+\]|.+$", re.S)


def answer_pieces(answer: str) -> list[str]:
    """The answer cut after each [n] marker, so a marker never straddles two stream events."""
    return _PIECE.findall(answer)
