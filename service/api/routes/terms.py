"""A knowledge base's term dictionary: synonyms, abbreviations, related words and protected words.

Entries live in the staff's record store (kind "term"), not in the index: a change is used for the next question,
with no rebuild, in this replica and (within a second) in every other. Reads are staff data too: write keys and the
admin. What each entry does is in docs/terms.md.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from index.answering.term_set import (
    ENTRY_KINDS,
    MAX_ENTRIES,
    MAX_FORM_CHARS,
    MAX_NOTE_CHARS,
    MAX_VARIANTS,
    TermEntry,
    TermSet,
    checked_entry,
)
from index.answering.terms import default_terms
from index.errors import InvalidInputError, NotFoundError
from service.api.audit import note_for_audit
from service.api.schemas import ErrorBody
from service.api.tenancy import CallerDep, RecordsDep, WriteKbDep
from service.knowledge_bases import LoadedKnowledgeBase
from service.stores.records import RecordStore, StaffRecord
from service.stores.registry import now_iso
from service.term_records import TERM_KIND, entry_of, term_entries, term_records

router = APIRouter(prefix="/terms", tags=["terms"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}
TermId = Annotated[str, Path(min_length=1, max_length=64, description="The entry's id.")]
Form = Annotated[str, Field(min_length=1, max_length=MAX_FORM_CHARS)]
REINDEX_NOTE = (
    "Protected words are kept whole in questions now; the documents' index still holds them as jieba cut them, "
    "and re-tokenising documents with protected words is not available yet (docs/terms.md)."
)
ExportFormat = Literal["jsonl", "csv"]
_writing = threading.Lock()  # the check against the other entries and the write are one step in this process


class TermIn(BaseModel):
    canonical: Form = Field(description="The form documents and answers are compared in (a protected word).")
    variants: list[Form] = Field(
        default_factory=list, max_length=MAX_VARIANTS, description="Other forms read as the canonical one."
    )
    kind: Literal[ENTRY_KINDS] = Field(  # type: ignore[valid-type]
        description="synonym or abbreviation (read as one), related (close, never folded: reported), protected "
        "(one phrase the tokenizer keeps whole; no variants)."
    )
    note: str = Field("", max_length=MAX_NOTE_CHARS)


class TermOut(BaseModel):
    id: str
    canonical: str
    variants: list[str]
    kind: str
    note: str
    added_by: str
    added_at: str
    updated_by: str | None = None
    updated_at: str | None = None


class BaseTermOut(BaseModel):
    canonical: str
    variants: list[str]
    kind: str
    note: str


class TermList(BaseModel):
    data: list[TermOut]
    count: int
    base: list[BaseTermOut] | None = Field(None, description="The shipped list, with ?include_base=true.")
    reindex_needed: bool = Field(description="Protected words that the documents' index does not hold whole.")
    reindex_note: str | None = None


class TermChanged(BaseModel):
    term: TermOut | None = Field(description="The entry as stored; null after a delete.")
    reindex_needed: bool
    reindex_note: str | None = None


class TermImport(BaseModel):
    entries: list[TermIn] = Field(min_length=1, max_length=MAX_ENTRIES)


class TermsImported(BaseModel):
    data: list[TermOut]
    count: int
    reindex_needed: bool
    reindex_note: str | None = None


class AnalyzeIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000)


class Expansion(BaseModel):
    asked: str
    forms: list[str]


class AnalyzeOut(BaseModel):
    text: str
    read_as: str = Field(description="The question as answered: a form no document holds written as the one they do.")
    tokens: list[str] = Field(description="The question's words; a protected word whole.")
    expansions: list[Expansion] = Field(description="Term forms BM25 reads as any of their forms.")
    reindex_needed: bool


def _out(record: StaffRecord) -> TermOut:
    body = record.body
    entry = entry_of(record)
    return TermOut(
        id=record.record_id, canonical=entry.canonical, variants=list(entry.variants), kind=entry.kind,
        note=entry.note, added_by=body.get("added_by", ""), added_at=body.get("added_at", record.created_at),
        updated_by=body.get("updated_by"), updated_at=body.get("updated_at"),
    )  # fmt: skip


def _flag(terms: TermSet) -> dict:
    return {"reindex_needed": terms.reindex_needed, "reindex_note": REINDEX_NOTE if terms.reindex_needed else None}


def _current(target: LoadedKnowledgeBase) -> TermSet:
    target.engine.terms.changed()
    return target.engine.terms.current()


def _entry(body: TermIn, entry_id: str = "") -> TermEntry:
    return TermEntry(entry_id, body.canonical, tuple(body.variants), body.kind, body.note)


def _body(entry: TermEntry) -> dict:
    return {"canonical": entry.canonical, "variants": list(entry.variants), "kind": entry.kind, "note": entry.note}


@router.get("", response_model=TermList, responses=ERRORS)
def list_terms(
    target: WriteKbDep, records: RecordsDep,
    include_base: Annotated[bool, Query(description="Add the shipped list (read-only).")] = False,
) -> TermList:  # fmt: skip
    """The knowledge base's entries, oldest first, with who added each and when."""
    data = [_out(record) for record in term_records(records, target.kb_id)]
    base = None
    if include_base:
        base = [BaseTermOut(canonical=t.canonical, variants=list(t.variants), kind=t.kind, note=t.note)
                for t in default_terms().terms]  # fmt: skip
    return TermList(data=data, count=len(data), base=base, **_flag(target.engine.terms.current()))


@router.post("", response_model=TermChanged, status_code=201, responses=ERRORS)
async def add_term(body: TermIn, target: WriteKbDep, records: RecordsDep, caller: CallerDep, request: Request):
    """Add an entry; used for the next question, no rebuild."""
    record = await run_in_threadpool(_add, records, target.kb_id, [_entry(body)], caller.who)
    note_for_audit(request, term_id=record[0].record_id, canonical=body.canonical, kind=body.kind)
    return TermChanged(term=_out(record[0]), **_flag(_current(target)))


@router.post("/import", response_model=TermsImported, status_code=201, responses=ERRORS)
async def import_terms(body: TermImport, target: WriteKbDep, records: RecordsDep, caller: CallerDep, request: Request):
    """Add many entries at once: every one is checked first, and none is added if one is refused."""
    added = await run_in_threadpool(_add, records, target.kb_id, [_entry(e) for e in body.entries], caller.who)
    note_for_audit(request, imported=len(added))
    data = [_out(record) for record in added]
    return TermsImported(data=data, count=len(data), **_flag(_current(target)))


@router.get("/export", responses=ERRORS, response_class=Response)
def export_terms(
    target: WriteKbDep, records: RecordsDep,
    format: Annotated[ExportFormat, Query(description="JSON Lines, or CSV (variants joined by |).")] = "jsonl",
) -> Response:  # fmt: skip
    """The entries as a file that POST /terms/import (JSON Lines, one entry a line) or a spreadsheet reads."""
    rows = [_out(record).model_dump() for record in term_records(records, target.kb_id)]
    name = f"terms-{target.kb_id}.{format}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    if format == "jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        return Response(text, media_type="application/x-ndjson; charset=utf-8", headers=headers)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["canonical", "variants", "kind", "note", "added_by", "added_at", "id"])
    for row in rows:
        writer.writerow([row["canonical"], "|".join(row["variants"]), row["kind"], row["note"], row["added_by"],
                         row["added_at"], row["id"]])  # fmt: skip
    return Response("\ufeff" + out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.post("/analyze", response_model=AnalyzeOut, responses=ERRORS)
def analyze_terms(body: AnalyzeIn, target: WriteKbDep) -> AnalyzeOut:
    """How this knowledge base reads a question with its terms: the words, the rewrite and the expansions."""
    terms = target.engine.terms.current()
    lexical = target.engine.index.lexical
    query = terms.lexical_query(body.text)
    return AnalyzeOut(
        text=body.text, read_as=terms.in_documents_words(body.text, lexical), tokens=terms.tokens(body.text),
        expansions=[Expansion(asked=asked, forms=list(forms)) for asked, forms in query.alternatives],
        reindex_needed=terms.reindex_needed,
    )  # fmt: skip


@router.put("/{term_id}", response_model=TermChanged, responses=ERRORS)
async def replace_term(
    term_id: TermId, body: TermIn, target: WriteKbDep, records: RecordsDep, caller: CallerDep, request: Request
) -> TermChanged:
    """Change an entry; who added it and when are kept, who changed it and when are added."""
    record = await run_in_threadpool(_replace, records, target.kb_id, term_id, _entry(body, term_id), caller.who)
    note_for_audit(request, term_id=term_id, canonical=body.canonical, kind=body.kind)
    return TermChanged(term=_out(record), **_flag(_current(target)))


@router.delete("/{term_id}", response_model=TermChanged, responses=ERRORS)
async def delete_term(term_id: TermId, target: WriteKbDep, records: RecordsDep, request: Request) -> TermChanged:
    """Remove an entry; questions read without it from the next one."""
    found = await run_in_threadpool(records.get, TERM_KIND, target.kb_id, term_id)
    if found is None:
        raise NotFoundError(f"no term {term_id!r}")
    await run_in_threadpool(records.delete, TERM_KIND, target.kb_id, term_id)
    note_for_audit(request, term_id=term_id, canonical=found.body.get("canonical"))
    return TermChanged(term=None, **_flag(_current(target)))


def _add(records: RecordStore, kb_id: str, entries: list[TermEntry], who: str) -> list[StaffRecord]:
    with _writing:
        existing = list(term_entries(records, kb_id))
        if len(existing) + len(entries) > MAX_ENTRIES:
            raise InvalidInputError(f"a knowledge base holds at most {MAX_ENTRIES} term entries")
        checked: list[TermEntry] = []
        for n, entry in enumerate(entries):
            try:
                checked.append(checked_entry(TermEntry(f"new-{n + 1}", *_fields(entry)), [*existing, *checked]))
            except (InvalidInputError, NotFoundError) as error:
                raise type(error)(f"entry {n + 1}: {error}" if len(entries) > 1 else str(error)) from None
        stamp = now_iso()
        return [records.add(TERM_KIND, kb_id, {**_body(e), "added_by": who, "added_at": stamp}) for e in checked]


def _replace(records: RecordStore, kb_id: str, term_id: str, entry: TermEntry, who: str) -> StaffRecord:
    with _writing:
        found = records.get(TERM_KIND, kb_id, term_id)
        if found is None:
            raise NotFoundError(f"no term {term_id!r}")
        checked = checked_entry(entry, term_entries(records, kb_id))
        body = {**found.body, **_body(checked), "updated_by": who, "updated_at": now_iso()}
        return records.update(TERM_KIND, kb_id, term_id, body)


def _fields(entry: TermEntry) -> tuple:
    return entry.canonical, entry.variants, entry.kind, entry.note
