"""A knowledge base's own gold questions (write): the ones its staff added from feedback
(POST …/feedback/{id}/gold), listed and removed here; service/gold_set.py keeps them."""

from typing import Annotated

from fastapi import APIRouter, Path, Request

from service.api.audit import note_for_audit
from service.api.feedback_schemas import RECORD_ID_PATTERN, GoldDeleted, GoldList
from service.api.routes.feedback import ERRORS, Before, Limit, gold_out
from service.api.tenancy import RecordsDep, WritableKbRecordDep
from service.gold_set import GoldSet

router = APIRouter(prefix="/gold", tags=["feedback"])
GoldId = Annotated[str, Path(pattern=RECORD_ID_PATTERN, description="The gold question's id.")]


@router.get("", response_model=GoldList, responses=ERRORS)
def list_gold(target: WritableKbRecordDep, records: RecordsDep, before: Before = None, limit: Limit = 100) -> GoldList:
    """The questions staff added to this knowledge base's gold set, newest first (``default`` also runs the
    shipped gold set, index/quality/questions.jsonl, which is not listed here)."""
    found = GoldSet(records).page(target.kb_id, limit=limit, before=before)
    next_before = found[-1].record_id if len(found) == limit else None
    return GoldList(data=[gold_out(r) for r in found], count=len(found), next_before=next_before)


@router.delete("/{gold_id}", response_model=GoldDeleted, responses=ERRORS)
def delete_gold(gold_id: GoldId, request: Request, target: WritableKbRecordDep, records: RecordsDep) -> GoldDeleted:
    """Remove a gold question; its feedback may be added again."""
    gold = GoldSet(records)
    found = gold.get(target.kb_id, gold_id)
    gold.delete(target.kb_id, gold_id)
    note_for_audit(request, gold_id=gold_id, question=found.body["question"] if found else None)
    return GoldDeleted(id=gold_id, deleted=True)
