"""Feedback on answers, and the staff's review of it: the loop by which a complaint becomes a regression test.

A reader (a read key, or anyone on a public knowledge base) files a verdict on an answer as they saw it: the
question, the answer's text, short answer and whether it was declined, its citations, an optional comment and the
passage or text they think is right. Staff of that knowledge base (its write keys, the admin) read the queue newest
first, mark the passage that does answer it (checked against the knowledge base) or that the documents do not, and
add the question to the knowledge base's gold set (service/gold_set.py), which ``policyqa eval --kb`` and the
server's evaluation run from then on.

Each feedback is a staff record of kind ``feedback`` (service/stores/records.py); this module is framework-free:
the routes (service/api/routes/feedback.py) validate the shapes and decide who may call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from index.errors import ConflictError, InvalidInputError, NotFoundError
from index.quality.gold import flat
from index.stores.records import ChunkRecord, DocumentRecord
from service.gold_set import TOPICS, GoldSet, gold_body
from service.stores.records import RecordStore, StaffRecord
from service.stores.registry import now_iso

FEEDBACK_KIND = "feedback"
VERDICTS = ("helpful", "wrong", "should_have_declined", "should_have_answered")
STATUSES = ("open", "resolved")
NOT_IN_DOCUMENTS = "not_in_documents"
FILTERED_BATCH = 200  # records read at a time while looking for those of one verdict or status


class DocumentSource(Protocol):
    """What marking a passage needs of a knowledge base: ``QAEngine.document``."""

    def document(self, doc_id: str) -> tuple[DocumentRecord, str, list[ChunkRecord]] | None: ...


def located_passage(source: DocumentSource, *, doc_id: str, chunk_id: int | None, quote: str | None) -> dict:
    """A passage of this knowledge base, checked: the document exists, the chunk is one of its own, and the quote
    (whitespace aside) is in that chunk, or in one of the document's chunks when none is named."""
    found = source.document(doc_id)
    if found is None:
        raise InvalidInputError(f"no document {doc_id!r} in this knowledge base")
    record, _, chunks = found
    if chunk_id is not None:
        chunks = [c for c in chunks if c.chunk_id == chunk_id]
        if not chunks:
            raise InvalidInputError(f"passage {chunk_id} is not a passage of document {doc_id!r}")
    passage = {"doc_id": doc_id, "title": record.title, "chunk_id": chunk_id}
    if quote is None:
        if chunk_id is not None:
            passage["section"] = list(chunks[0].section)
        return passage
    wanted = flat(quote)
    chunk = next((c for c in chunks if wanted and wanted in flat(c.text)), None)
    if chunk is None:
        where = f"passage {chunk_id}" if chunk_id is not None else "any one passage"
        raise InvalidInputError(f"the quote is not in {where} of document {doc_id!r}")
    return {**passage, "chunk_id": chunk.chunk_id, "section": list(chunk.section), "quote": quote.strip()}


def _matches(record: StaffRecord, verdict: str | None, status: str | None) -> bool:
    body = record.body
    return (verdict is None or body["verdict"] == verdict) and (status is None or body["status"] == status)


class FeedbackQueue:
    """The feedback of every knowledge base, filed and reviewed in the staff record store."""

    def __init__(self, records: RecordStore) -> None:
        self.records = records

    def file(self, kb_id: str, given: dict, *, given_by: str) -> StaffRecord:
        """Keep a verdict as given (already validated), open, with no review yet."""
        body = {**given, "given_by": given_by, "status": "open", "marked": None, "note": "", "gold_id": None}
        body.update(reviewed_by=None, reviewed_at=None)
        return self.records.add(FEEDBACK_KIND, kb_id, body)

    def get(self, kb_id: str, feedback_id: str) -> StaffRecord:
        record = self.records.get(FEEDBACK_KIND, kb_id, feedback_id)
        if record is None:
            raise NotFoundError(f"no feedback {feedback_id!r}")
        return record

    def page(
        self, kb_id: str, *, limit: int, before: str | None = None, verdict: str | None = None,
        status: str | None = None,
    ) -> tuple[list[StaffRecord], str | None]:  # fmt: skip
        """Up to ``limit`` records, newest first, of ``verdict`` and ``status`` when given; and the id to page on
        from (``before``), None when nothing is left."""
        batch_size = limit if verdict is None and status is None else max(limit, FILTERED_BATCH)
        found: list[StaffRecord] = []
        while batch := self.records.list(FEEDBACK_KIND, kb_id, limit=batch_size, before=before):
            for record in batch:
                if _matches(record, verdict, status):
                    found.append(record)
                    if len(found) == limit:
                        return found, record.record_id
            before = batch[-1].record_id
            if len(batch) < batch_size:
                break
        return found, None

    def review(self, kb_id: str, feedback_id: str, *, changes: dict, reviewed_by: str) -> StaffRecord:
        """Apply the staff's ``changes`` (``marked``, ``note``, ``status``: each only when present)."""
        record = self.get(kb_id, feedback_id)
        body = {**record.body, **changes, "reviewed_by": reviewed_by, "reviewed_at": now_iso()}
        return self.records.update(FEEDBACK_KIND, kb_id, feedback_id, body)

    def add_to_gold(
        self,
        kb_id: str,
        feedback_id: str,
        gold: GoldSet,
        *,
        answers: Sequence[str] = (),
        short: Sequence[str] = (),
        topic: str | None = None,
        added_by: str,
    ) -> StaffRecord:
        """The feedback's question, with its marked passage (or as not answerable), as a gold question of this
        knowledge base; the feedback is resolved. Its answers are pieces of the marked quote (the quote itself
        by default), so that the metrics can find them in an answer and in a passage."""
        record = self.get(kb_id, feedback_id)
        body = record.body
        if body["gold_id"] and gold.get(kb_id, body["gold_id"]) is not None:
            raise ConflictError(f"feedback {feedback_id!r} is already gold question {body['gold_id']!r}")
        marked = body["marked"]
        if marked is None:
            raise ConflictError(
                f"feedback {feedback_id!r} has no marked passage: PATCH it with the passage that answers the question,"
                " or with not_in_documents, first"
            )
        origin = {"feedback_id": feedback_id, "added_by": added_by, "added_at": now_iso()}
        if marked["kind"] == NOT_IN_DOCUMENTS:
            if answers or short:
                raise InvalidInputError("a question the documents do not answer has no answers or short answers")
            question = gold_body(question=body["question"], doc_id=None, answers=(), topic=topic, origin=origin)
        else:
            if topic is not None:
                raise InvalidInputError(f"topic ({', '.join(TOPICS)}) is for questions the documents do not answer")
            pieces = _pieces_of(marked["quote"], answers or [marked["quote"]], "answers")
            origin.update(chunk_id=marked["chunk_id"], quote=marked["quote"])
            question = gold_body(
                question=body["question"], doc_id=marked["doc_id"], answers=pieces,
                short=_pieces_of(marked["quote"], short, "short"), origin=origin,
            )  # fmt: skip
        added = gold.add(kb_id, question)
        changes = {"gold_id": added.record_id, "status": "resolved"}
        self.review(kb_id, feedback_id, changes=changes, reviewed_by=added_by)
        return added


def _pieces_of(quote: str, pieces: Sequence[str], field: str) -> list[str]:
    """``pieces`` (whitespace removed), each of which must be in ``quote``."""
    whole = flat(quote)
    outside = [p for p in pieces if not flat(p) or flat(p) not in whole]
    if outside:
        raise InvalidInputError(f"{field}: {outside[0]!r} is not a piece of the marked quote")
    return [flat(p) for p in pieces]
