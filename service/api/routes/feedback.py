"""Feedback on answers (read: anyone who may ask, within a per-caller budget) and its review queue (write).

The work is service/feedback.py's; this router decides who may call, checks passages against the knowledge base
and shapes the replies.
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from service.access import Caller
from service.api.audit import note_for_audit
from service.api.feedback_schemas import (
    RECORD_ID_PATTERN,
    FeedbackCreate,
    FeedbackList,
    FeedbackOut,
    FeedbackReceipt,
    FeedbackUpdate,
    GoldAdd,
    GoldQuestionOut,
    Status,
    Verdict,
)
from service.api.limits import client_key
from service.api.schemas import ErrorBody
from service.api.tenancy import (
    CallerDep,
    KnowledgeBasesDep,
    ReadableKbRecordDep,
    RecordsDep,
    WritableKbRecordDep,
)
from service.feedback import NOT_IN_DOCUMENTS, FeedbackQueue, located_passage
from service.gold_set import GoldSet
from service.knowledge_bases import KnowledgeBases
from service.stores.records import MAX_LIST, StaffRecord
from service.stores.registry import now_iso

router = APIRouter(prefix="/feedback", tags=["feedback"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422, 429)}
FeedbackId = Annotated[str, Path(pattern=RECORD_ID_PATTERN, description="The feedback's id.")]
Before = Annotated[str | None, Query(pattern=RECORD_ID_PATTERN, description="Only those older than this id.")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIST, description="At most this many.")]


def _budget_key(caller: Caller, request: Request) -> str:
    if caller.admin:
        return "admin"
    return f"key:{caller.key_id}" if caller.key_id else f"address:{client_key(request.scope)}"


def _checked(kbs: KnowledgeBases, kb_id: str, **passage) -> dict:
    with kbs.leased(kb_id) as loaded:
        return located_passage(loaded.engine, **passage)


def feedback_out(record: StaffRecord) -> FeedbackOut:
    return FeedbackOut(id=record.record_id, kb_id=record.kb_id, created_at=record.created_at,
                       updated_at=record.updated_at, **record.body)  # fmt: skip


@router.post("", response_model=FeedbackReceipt, status_code=201, responses=ERRORS)
def give_feedback(
    body: FeedbackCreate, request: Request, target: ReadableKbRecordDep, caller: CallerDep, records: RecordsDep,
    kbs: KnowledgeBasesDep,
) -> FeedbackReceipt:  # fmt: skip
    """A verdict on an answer as it was given: helpful, wrong, should_have_declined or should_have_answered.
    Whoever may ask the knowledge base may give it, up to POLICYQA_FEEDBACK_PER_MINUTE a minute (429 beyond)."""
    request.app.state.feedback_budget.spend(_budget_key(caller, request))
    given = body.model_dump(mode="json")
    if body.correct_passage is not None:
        given["correct_passage"] = _checked(kbs, target.kb_id, **body.correct_passage.model_dump())
    record = FeedbackQueue(records).file(target.kb_id, given, given_by=caller.who)
    return FeedbackReceipt(id=record.record_id, kb_id=record.kb_id, verdict=body.verdict, status="open",
                           created_at=record.created_at)  # fmt: skip


@router.get("", response_model=FeedbackList, responses=ERRORS)
def list_feedback(
    target: WritableKbRecordDep, records: RecordsDep, before: Before = None, limit: Limit = 50,
    verdict: Verdict | None = None, status: Status | None = None,
) -> FeedbackList:  # fmt: skip
    """The review queue, newest first, each with the answer as it was; ``verdict`` and ``status`` filter it."""
    found, next_before = FeedbackQueue(records).page(
        target.kb_id, limit=limit, before=before, verdict=verdict, status=status
    )
    return FeedbackList(data=[feedback_out(r) for r in found], count=len(found), next_before=next_before)


@router.get("/{feedback_id}", response_model=FeedbackOut, responses=ERRORS)
def get_feedback(feedback_id: FeedbackId, target: WritableKbRecordDep, records: RecordsDep) -> FeedbackOut:
    return feedback_out(FeedbackQueue(records).get(target.kb_id, feedback_id))


@router.patch("/{feedback_id}", response_model=FeedbackOut, responses=ERRORS)
def review_feedback(
    feedback_id: FeedbackId, body: FeedbackUpdate, request: Request, target: WritableKbRecordDep,
    caller: CallerDep, records: RecordsDep, kbs: KnowledgeBasesDep,
) -> FeedbackOut:  # fmt: skip
    """Mark the passage that answers the question (checked: a passage of this knowledge base holding the
    quote) or that the documents do not; add a resolution note; set the status."""
    queue = FeedbackQueue(records)
    queue.get(target.kb_id, feedback_id)  # a 404 before any passage is looked up
    changes: dict = {}
    stamp = {"marked_by": caller.who, "marked_at": now_iso()}
    if body.passage is not None:
        passage = _checked(kbs, target.kb_id, **body.passage.model_dump())
        changes["marked"] = {"kind": "passage", **passage, **stamp}
    elif body.not_in_documents is not None:
        changes["marked"] = {"kind": NOT_IN_DOCUMENTS, **stamp} if body.not_in_documents else None
    if body.note is not None:
        changes["note"] = body.note
    if body.status is not None:
        changes["status"] = body.status
    note_for_audit(request, feedback_id=feedback_id, **{k: v for k, v in changes.items() if k != "note"})
    return feedback_out(queue.review(target.kb_id, feedback_id, changes=changes, reviewed_by=caller.who))


@router.post("/{feedback_id}/gold", response_model=GoldQuestionOut, status_code=201, responses=ERRORS)
def add_to_gold(
    feedback_id: FeedbackId, request: Request, target: WritableKbRecordDep, caller: CallerDep, records: RecordsDep,
    body: GoldAdd | None = None,
) -> GoldQuestionOut:  # fmt: skip
    """Add the feedback's question, with its marked passage (or as not answerable), to this knowledge base's
    gold set, which its evaluations run from then on; the feedback is resolved."""
    body = body or GoldAdd()
    added = FeedbackQueue(records).add_to_gold(
        target.kb_id, feedback_id, GoldSet(records), answers=body.answers, short=body.short, topic=body.topic,
        added_by=caller.who,
    )  # fmt: skip
    note_for_audit(request, feedback_id=feedback_id, gold_id=added.record_id, question=added.body["question"])
    return gold_out(added)


def gold_out(record: StaffRecord) -> GoldQuestionOut:
    fields = GoldQuestionOut.model_fields
    return GoldQuestionOut(id=record.record_id, kb_id=record.kb_id, created_at=record.created_at,
                           **{k: v for k, v in record.body.items() if k in fields})  # fmt: skip
