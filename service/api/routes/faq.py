"""FAQ pairs: imported from a table or added one by one, listed, replaced, exported and deleted.

Each pair is a document of origin ``faq`` in the knowledge base's index (``index/ingest/faq.py``): a change is a
job on the knowledge base's writer, like an upload, and the pair answers once its job is done. A question that
matches a pair is answered with the pair's approved answer (``index/answering/faq.py``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from index.answering.faq import FaqEntry
from index.errors import ConflictError, NotFoundError
from index.ingest.faq import FaqPair, faq_document, made_pair, new_faq_id, question_key
from index.ingest.faq_table import MAX_ROW_ERRORS, export_table, read_faq_table
from index.ingest.passages import content_hash
from service.api.audit import note_for_audit
from service.api.faq_schemas import FaqDeleted, FaqImported, FaqIn, FaqList, FaqOut, FaqWritten
from service.api.routes.documents import _read_limited
from service.api.schemas import ErrorBody, JobOut
from service.api.tenancy import ReadKbDep, WriteKbDep
from service.knowledge_bases import LoadedKnowledgeBase
from service.uploads import Upload, checked_filename

router = APIRouter(prefix="/faq", tags=["faq"])
READ_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404)}
WRITE_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 413, 422)}
MEDIA_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/x-ndjson; charset=utf-8",
}
# One pair is a small job: the reply waits for it, unless uploads queued before it take longer than this.
WRITE_WAIT_S = 120.0


class RowConflictError(ConflictError):
    """Rows that ask what other pairs ask already; ``details`` names each (the error shape's details)."""

    def __init__(self, message: str, details: list[dict]) -> None:
        super().__init__(message)
        self.details = details


def _out(faq_id: str, pair: FaqPair) -> FaqOut:
    return FaqOut(id=faq_id, question=pair.question, answer=pair.answer, similar=list(pair.similar),
                  source=pair.source, version=content_hash(faq_document(faq_id, pair).raw_text))  # fmt: skip


def _entries(target: LoadedKnowledgeBase) -> list[FaqEntry]:
    return target.engine.current().faq.entries()


def _entry(target: LoadedKnowledgeBase, faq_id: str) -> FaqEntry:
    entry = target.engine.current().faq.entry(faq_id)
    if entry is None:
        raise NotFoundError(f"no FAQ pair with id {faq_id!r}")
    return entry


def _taken(target: LoadedKnowledgeBase, leaving: str | None = None) -> dict[str, str]:
    """Each question (and similar question) the knowledge base's pairs hold, by its key: the pair's question."""
    taken: dict[str, str] = {}
    for entry in _entries(target):
        if entry.doc_id != leaving:
            for question in entry.pair.questions:
                taken.setdefault(question_key(question), f"{entry.doc_id} ({entry.pair.question})")
    return taken


def _clash(pair: FaqPair, taken: dict[str, str]) -> str | None:
    for question in pair.questions:
        if question_key(question) in taken:
            return f"{question!r} is asked by the pair {taken[question_key(question)]} already"
    return None


def _pair(body: FaqIn) -> FaqPair:
    return made_pair(body.question, body.answer, body.similar, body.source)


@router.get("", response_model=FaqList, responses=READ_ERRORS)
def list_faq(
    target: ReadKbDep,
    q: Annotated[
        str | None,
        Query(
            max_length=200, description="Only pairs whose question, similar questions, answer or 来源 hold this text."
        ),
    ] = None,  # fmt: skip
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> FaqList:
    """The knowledge base's FAQ pairs in the order they were added, a page at a time."""
    entries = _entries(target)
    if q:
        entries = [e for e in entries if q in e.text]
    page = entries[offset : offset + limit]
    return FaqList(data=[_out(e.doc_id, e.pair) for e in page], count=len(entries), offset=offset, limit=limit)


@router.post("", response_model=FaqWritten, status_code=202, responses=WRITE_ERRORS)
def add_faq(body: FaqIn, request: Request, target: WriteKbDep) -> FaqWritten:
    """Add one pair, answering once it is searchable (a client may GET it next); refused (409) when its question
    or a similar question is asked by another pair already."""
    pair = _pair(body)
    clash = _clash(pair, _taken(target))
    if clash:
        raise ConflictError(clash)
    faq_id = new_faq_id()
    document = faq_document(faq_id, pair)
    job = target.writer.wait(target.writer.add_all([document], label="FAQ"), WRITE_WAIT_S)
    note_for_audit(request, faq_id=faq_id, question=pair.question)
    return FaqWritten(faq=_out(faq_id, pair), job=JobOut(**job.to_dict()))


@router.post("/import", response_model=FaqImported, status_code=202, responses=WRITE_ERRORS)
async def import_faq(
    request: Request,
    target: WriteKbDep,
    file: Annotated[UploadFile, File(description="A .csv or .xlsx with the columns 问题, 答案 (相似问法, 来源).")],
) -> FaqImported:
    """Import pairs from a table, all or none: a bad or repeated row is named in the refusal's details."""
    name = checked_filename(file.filename)
    data = await _read_limited(file, int(request.app.state.settings.max_upload_mb * 1_000_000))
    rows = await run_in_threadpool(read_faq_table, data, name)
    taken = await run_in_threadpool(_taken, target)
    clashes = [{"row": r.row, "message": clash} for r in rows if (clash := _clash(r.pair, taken))]
    if clashes:
        named = "; ".join(f"row {c['row']}: {c['message']}" for c in clashes[:5])
        raise RowConflictError(f"{len(clashes)} row(s) ask what another pair asks already, nothing imported: {named}",
                               clashes[:MAX_ROW_ERRORS])  # fmt: skip
    documents = [faq_document(new_faq_id(n), row.pair) for n, row in enumerate(rows)]
    job = target.writer.add_all(documents, label=name)
    note_for_audit(request, file=name, pairs=len(documents))
    return FaqImported(ids=[d.doc_id for d in documents], count=len(documents), job=JobOut(**job.to_dict()))


@router.get("/export", responses={200: {"content": {t: {} for t in MEDIA_TYPES.values()}}, **READ_ERRORS})
def export_faq(
    target: ReadKbDep,
    format: Annotated[
        Literal["csv", "xlsx", "jsonl"], Query(description="csv (UTF-8, for Excel), xlsx or jsonl.")
    ] = "csv",  # noqa: A002
) -> Response:
    """Every pair as a file that faq/import reads back (with each pair's id in a column 编号, ignored on import)."""
    data = export_table(((e.doc_id, e.pair) for e in _entries(target)), format)
    name = f"faq-{target.kb_id}.{format}"
    return Response(
        data, media_type=MEDIA_TYPES[format], headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


@router.get("/{faq_id}", response_model=FaqOut, responses=READ_ERRORS)
def get_faq(faq_id: str, target: ReadKbDep) -> FaqOut:
    """One pair as stored."""
    entry = _entry(target, faq_id)
    return _out(entry.doc_id, entry.pair)


@router.put("/{faq_id}", response_model=FaqWritten, status_code=202, responses=WRITE_ERRORS)
def replace_faq(faq_id: str, body: FaqIn, request: Request, target: WriteKbDep) -> FaqWritten:
    """Replace a pair: a new version under the same id, answering once its job is done."""
    _entry(target, faq_id)
    pair = _pair(body)
    clash = _clash(pair, _taken(target, leaving=faq_id))
    if clash:
        raise ConflictError(clash)
    document = faq_document(faq_id, pair)
    job = target.writer.wait(target.writer.replace(faq_id, Upload(document, content_hash(document.raw_text), "FAQ")),
                             WRITE_WAIT_S)  # fmt: skip
    note_for_audit(request, faq_id=faq_id, question=pair.question)
    return FaqWritten(faq=_out(faq_id, pair), job=JobOut(**job.to_dict()))


@router.delete("/{faq_id}", response_model=FaqDeleted, responses=WRITE_ERRORS)
def delete_faq(faq_id: str, request: Request, target: WriteKbDep) -> FaqDeleted:
    """Remove a pair from the index: it no longer answers or is cited."""
    entry = _entry(target, faq_id)
    job = target.writer.delete(faq_id)
    note_for_audit(request, faq_id=faq_id, question=entry.pair.question)
    return FaqDeleted(id=faq_id, deleted=job.state == "done", job=JobOut(**job.to_dict()))
