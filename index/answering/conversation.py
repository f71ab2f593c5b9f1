"""Answering the last question of a conversation: follow-ups resolved (index/answering/followup.py), then retrieval.

Composed from one snapshot's retriever and composer; ``QAEngine.ask`` (index/answering/engine.py) is the
entry point every caller uses, a question with no earlier turn included.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answering.compose import Answer, AnswerComposer
from index.answering.followup import Resolution, Turn, name_document, resolve, user_questions
from index.answering.question import analyze
from index.answering.retrieval import Mode, Retriever, SearchResult
from index.ingest.clean import normalize_for_matching


@dataclass(frozen=True)
class ConversationAnswer:
    answer: Answer
    resolution: Resolution
    query: str  # the text retrieved and answered: the question, completed when it is a follow-up
    took_ms: float


def answer_in_context(
    retriever: Retriever,
    composer: AnswerComposer,
    question: str,
    *,
    history: Sequence[Turn] = (),
    top_k: int,
    mode: Mode,
    doc_ids: Sequence[str] | None,
) -> ConversationAnswer:
    """Answer ``question`` as the next turn after ``history`` (oldest first), from one snapshot's parts."""
    started = time.perf_counter()
    resolution = resolve(question, user_questions(history))
    if not resolution.followup:
        result = retriever.search(question, top_k=top_k, mode=mode, doc_ids=doc_ids)
        answer = composer.compose(question, result, doc_ids)
        return ConversationAnswer(answer, resolution, question, (time.perf_counter() - started) * 1000)
    query, scope = resolution.query, doc_ids
    if resolution.same_document:
        # "This document": the one the previous question is answered from, found the same way again.
        previous = retriever.search(resolution.anchor, top_k=1, mode=mode, doc_ids=doc_ids)
        if previous.hits:
            scope = [previous.hits[0].chunk.doc_id]
            if resolution.name_document:
                query = name_document(resolution.question, previous.hits[0].chunk.title)
    result = retriever.search(query, top_k=top_k, mode=mode, doc_ids=scope)
    if query != resolution.question and not resolution.name_document:
        result = _leaning_on_the_question(retriever, query, resolution.question, result)
    answer = composer.compose(query, result, scope)
    return ConversationAnswer(answer, resolution, query, (time.perf_counter() - started) * 1000)


def _leaning_on_the_question(retriever, query: str, question: str, result: SearchResult) -> SearchResult:
    """Sentences picked by the completed question and the follow-up's own words alike.

    The carried words find the passages; without the follow-up's own vector the
    answer would often quote the sentence that answered the previous question.
    """
    mixed = result.query_vector + retriever.embed_query(question)
    norm = float(np.linalg.norm(mixed))
    if norm == 0.0:
        return result
    # The answer must hold what the user named now; a place carried from an earlier turn found the passages,
    # but a question wrongly taken for a follow-up must not be declined for lacking it.
    analysis = analyze(query)
    own = tuple(q for q in analysis.qualifiers if q.text in normalize_for_matching(question))
    analysis = dataclasses.replace(analysis, qualifiers=own)
    return retriever.rejudged(query, result, (mixed / norm).astype(np.float32), analysis)
