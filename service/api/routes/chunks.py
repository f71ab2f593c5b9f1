"""A document's chunks, and the staff's corrections of their text (docs/corrections.md)."""

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from index.errors import InvalidInputError, NotFoundError
from index.stores.records import ChunkRecord, DocumentRecord
from service import chunk_corrections as corrections
from service.api.audit import note_for_audit
from service.api.chunk_schemas import (
    ChunkCorrected,
    ChunkCorrectionIn,
    ChunkCorrections,
    ChunkList,
    ChunkOut,
    CorrectionVersion,
    DiffOp,
    RollbackIn,
)
from service.api.schemas import ErrorBody
from service.api.tenancy import CallerDep, ReadKbDep, RecordsDep, WriteKbDep
from service.knowledge_bases import LoadedKnowledgeBase
from service.stores.records import StaffRecord

router = APIRouter(prefix="/documents", tags=["chunks"])
READ_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404)}
WRITE_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}


def _document(target: LoadedKnowledgeBase, doc_id: str) -> tuple[DocumentRecord, list[ChunkRecord]]:
    found = target.engine.document(doc_id)
    if found is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    record, _, chunks = found
    return record, chunks


def _chunk(chunks: list[ChunkRecord], doc_id: str, chunk_id: int) -> ChunkRecord:
    found = [c for c in chunks if c.chunk_id == chunk_id]
    if not found:
        raise NotFoundError(f"document {doc_id!r} has no chunk {chunk_id} (a correction gives a chunk a new id: "
                            "list the chunks again)")  # fmt: skip
    return found[0]


def _chunk_out(chunk: ChunkRecord, history: corrections.ChunkHistory | None = None) -> ChunkOut:
    original = history.original if history is not None else None
    return ChunkOut(
        chunk_id=chunk.chunk_id, ordinal=chunk.ordinal, section=list(chunk.section), text=chunk.text,
        start=chunk.start, end=chunk.end, pages=list(chunk.pages) if chunk.pages else None,
        corrected=original is not None and original != chunk.text,
    )  # fmt: skip


@router.get("/{doc_id}/chunks", response_model=ChunkList, responses=READ_ERRORS)
def list_chunks(doc_id: str, target: ReadKbDep, records: RecordsDep) -> ChunkList:
    """The document's chunks in order, each with its id, position, section path, text and whether it is corrected."""
    record, chunks = _document(target, doc_id)
    corrected = corrections.corrected_chunks(records, target.kb_id, [record], lambda _: chunks).get(doc_id, set())
    data = [_chunk_out(c).model_copy(update={"corrected": c.ordinal in corrected}) for c in chunks]
    return ChunkList(doc_id=doc_id, data=data, count=len(data))


@router.patch("/{doc_id}/chunks/{chunk_id}", response_model=ChunkCorrected, responses=WRITE_ERRORS)
async def correct_chunk(
    doc_id: str, chunk_id: int, body: ChunkCorrectionIn, request: Request, target: WriteKbDep, records: RecordsDep,
    caller: CallerDep,
) -> ChunkCorrected:  # fmt: skip
    """Correct one chunk's text: only it is embedded again; answered once the new text is served."""
    record, chunks = _document(target, doc_id)
    chunk = _chunk(chunks, doc_id, chunk_id)
    return await run_in_threadpool(_write, request, target, records, caller.who, record, chunk, body.text, body.note)


@router.post("/{doc_id}/chunks/{chunk_id}/rollback", response_model=ChunkCorrected, responses=WRITE_ERRORS)
async def roll_back_chunk(
    doc_id: str, chunk_id: int, request: Request, target: WriteKbDep, records: RecordsDep, caller: CallerDep,
    body: RollbackIn | None = None,
) -> ChunkCorrected:  # fmt: skip
    """Restore the chunk's original text, or the text of a given version, through the same write."""
    body = body or RollbackIn()
    record, chunks = _document(target, doc_id)
    chunk = _chunk(chunks, doc_id, chunk_id)
    history = corrections.history(records, target.kb_id, record, chunk)
    if not history.live:
        raise NotFoundError(f"chunk {chunk_id} of {doc_id!r} has no corrections to roll back")
    text = history.text_of(body.version)
    if text is None:
        raise NotFoundError(f"chunk {chunk_id} of {doc_id!r} has no version {body.version}")
    return await run_in_threadpool(_write, request, target, records, caller.who, record, chunk, text, body.note,
                                   body.version)  # fmt: skip


def _write(request, target, records, who, record, chunk, text, note, rollback_to=None) -> ChunkCorrected:
    if text.strip() == chunk.text:
        raise InvalidInputError("the chunk reads so already")
    before = corrections.history(records, target.kb_id, record, chunk)
    done = target.writer.correct_chunk(record.doc_id, chunk.ordinal, text)
    filed = corrections.record(records, target.kb_id, done, before=before, document=record, who=who, note=note,
                               rollback_to=rollback_to)  # fmt: skip
    note_for_audit(request, doc_id=record.doc_id, ordinal=chunk.ordinal, version=filed.body["version"],
                   action=filed.body["action"])  # fmt: skip
    (now,) = [c for c in target.engine.document(record.doc_id)[2] if c.ordinal == chunk.ordinal]
    original = before.original if before.original is not None else done.before
    return ChunkCorrected(
        doc_id=record.doc_id, chunk=_chunk_out(now).model_copy(update={"corrected": now.text != original}),
        version=filed.body["version"], previous=done.before, diff=_diff(done.before, done.after),
        embedded_passages=done.embedded_passages, build_id=done.generation_id,
    )  # fmt: skip


@router.get("/{doc_id}/chunks/{chunk_id}/corrections", response_model=ChunkCorrections, responses=READ_ERRORS)
def chunk_corrections(doc_id: str, chunk_id: int, target: WriteKbDep, records: RecordsDep) -> ChunkCorrections:
    """Every version of the chunk's text, newest first, each with its character diff, who made it and when."""
    record, chunks = _document(target, doc_id)
    chunk = _chunk(chunks, doc_id, chunk_id)
    history = corrections.history(records, target.kb_id, record, chunk)
    original = history.original if history.original is not None else chunk.text
    versions = [_version(r, stale=False) for r in reversed(history.live)]
    versions += [_version(r, stale=True) for r in reversed(history.stale)]
    return ChunkCorrections(doc_id=doc_id, chunk=_chunk_out(chunk, history), original=original,
                            diff=_diff(original, chunk.text), versions=versions, count=len(versions))  # fmt: skip


def _version(r: StaffRecord, *, stale: bool) -> CorrectionVersion:
    b = r.body
    return CorrectionVersion(
        version=b["version"], action=b["action"], rollback_to=b.get("rollback_to"), chunk_id=b["chunk_id"],
        previous=b["previous"], text=b["text"], diff=_diff(b["previous"], b["text"]), note=b.get("note", ""),
        set_by=b["set_by"], set_at=b["set_at"], stale=stale,
    )  # fmt: skip


def _diff(before: str, after: str) -> list[DiffOp]:
    return [DiffOp(**op) for op in corrections.diff_ops(before, after)]
