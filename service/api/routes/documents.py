import asyncio
from collections.abc import Coroutine
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, HTTPException, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from index.answering.policy_view import PolicyView
from index.errors import InvalidInputError, NotFoundError
from index.stores.records import ChunkRecord, DocumentRecord
from service import chunk_corrections
from service.api.audit import note_for_audit
from service.api.policy_schemas import document_policy
from service.api.routes.document_metadata import forget_corrections
from service.api.schemas import (
    ChunkSummary,
    DocumentDetail,
    DocumentList,
    DocumentSummary,
    ErrorBody,
    JobOut,
    JobsOut,
)
from service.api.tenancy import CallerDep, ReadKbDep, RecordsDep, RegistryDep, WriteKbDep
from service.api.trash_schemas import DocumentDeletedOut, TrashEntryOut
from service.stores.jobs import Job
from service.trash import TrashBin, delete_into_trash, utc_now
from service.uploads import ParseSlotsBusyError, PendingScan, Upload, prepare_upload_isolated

router = APIRouter(prefix="/documents", tags=["documents"])
READ_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404)}


DocumentOrder = Literal["source", "title", "added_at", "updated_at", "chunks"]


@router.get("", response_model=DocumentList, responses=READ_ERRORS)
def list_documents(
    target: ReadKbDep,
    records: RecordsDep,
    sort: Annotated[DocumentOrder, Query(description="The field to order by; times unknown sort first.")] = "source",
    descending: Annotated[bool, Query(description="Newest or largest first.")] = False,
) -> DocumentList:
    """Every indexed document with its format, pages, number of chunks, issuer, 文号, dates, validity,
    when it came and last changed, and how many of its chunks staff corrected."""
    view = target.engine.policy_view()
    field = "chunk_count" if sort == "chunks" else sort
    documents = sorted(
        target.engine.documents(), key=lambda d: (getattr(d, field), d.source, d.doc_id), reverse=descending
    )
    corrected = chunk_corrections.corrected_chunks(
        records, target.kb_id, documents, target.engine.index.catalogue.document_chunks
    )
    data = [DocumentSummary(**_summary(d, view, len(corrected.get(d.doc_id, ())))) for d in documents]
    return DocumentList(data=data, count=len(data))


def _summary(record: DocumentRecord, view: PolicyView, corrections: int = 0) -> dict:
    suffix = PurePosixPath(record.source).suffix.lower().lstrip(".")
    return {
        "doc_id": record.doc_id,
        "title": record.title,
        "source": record.source,
        "type": suffix,
        "pages": record.pages or None,
        "chunks": record.chunk_count,
        "origin": record.origin,
        "policy": document_policy(*view.of(record.doc_id)),
        "corrections": corrections,
        "added_at": record.added_at or None,
        "updated_at": record.updated_at or None,
    }


@router.get("/{doc_id}", response_model=DocumentDetail, responses=READ_ERRORS)
def get_document(doc_id: str, target: ReadKbDep, records: RecordsDep) -> DocumentDetail:
    """One document with its cleaned text and where each chunk lies in it (section, pages, OCR confidence)."""
    found = target.engine.document(doc_id)
    if found is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    record, text, chunks = found
    corrected = chunk_corrections.corrected_chunks(records, target.kb_id, [record], lambda _: chunks)
    return DocumentDetail(
        **_summary(record, target.engine.policy_view(), len(corrected.get(doc_id, ()))),
        content_hash=record.content_hash,
        text=text,
        chunk_spans=[_chunk_span(c) for c in chunks],
    )


def _chunk_span(chunk: ChunkRecord) -> ChunkSummary:
    return ChunkSummary(
        chunk_id=chunk.chunk_id,
        section=list(chunk.section),
        start=chunk.start,
        end=chunk.end,
        pages=list(chunk.pages) if chunk.pages else None,
        ocr_confidence=chunk.ocr_confidence,
    )


UPLOAD_TYPES = "One or more documents: text, HTML, Word, WPS, PDF (scans too), OFD, spreadsheets, slides or images."
ADMIN_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 413, 422)}
PARSE_RETRY_AFTER_S = 2  # a typical file reads in a second or two
DISCONNECT_CHECK_S = 0.5  # how often a file's reader looks whether its client is still there


async def _read_limited(upload: UploadFile, limit_bytes: int) -> bytes:
    """The file's bytes, refusing it as soon as it passes the limit."""
    data = await upload.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise HTTPException(413, f"{upload.filename} is larger than {limit_bytes // 1_000_000} MB")
    if not data:
        raise InvalidInputError(f"{upload.filename} is empty")
    return data


async def _prepared(
    request: Request, files: list[UploadFile], title: str | None, doc_id: str | None = None
) -> list[Upload | PendingScan]:
    """Each file read and checked, one after another, in one of the server's few parse slots; a scan is only
    checked, and read by OCR in its job."""
    try:
        with request.app.state.parse_slots.taken():
            return [await _read(request, file, title, doc_id) for file in files]
    except ParseSlotsBusyError as exc:  # raised on taking a slot, before anything was read
        raise HTTPException(503, str(exc), headers={"Retry-After": str(PARSE_RETRY_AFTER_S)}) from None


async def _read(request: Request, file: UploadFile, title: str | None, doc_id: str | None) -> Upload | PendingScan:
    settings = request.app.state.settings
    data = await _read_limited(file, int(settings.max_upload_mb * 1_000_000))
    # Reading a PDF or DOCX is CPU work, and a crafted file may never finish: in a process of its own, killed at
    # the parse deadline, at the request's deadline (which cancels this) or when the client goes away.
    reading = prepare_upload_isolated(data, file.filename, title, doc_id, timeout=settings.parse_timeout_s)
    return await _unless_client_leaves(request, reading)


async def _unless_client_leaves(
    request: Request, reading: Coroutine[Any, Any, Upload | PendingScan]
) -> Upload | PendingScan:
    task = asyncio.ensure_future(reading)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_CHECK_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise HTTPException(400, "the client closed the connection while its file was being read")
    finally:
        if not task.done():
            task.cancel()  # the reader is killed as the task unwinds
        elif not task.cancelled():
            task.exception()  # seen, so asyncio does not report it as lost


@router.post("", response_model=JobsOut, status_code=202, responses=ADMIN_ERRORS)
async def upload_documents(
    request: Request,
    target: WriteKbDep,
    files: Annotated[list[UploadFile], File(description=UPLOAD_TYPES)],
    title: Annotated[str | None, Form(max_length=200)] = None,
) -> JobsOut:
    """Add documents, each with a job to follow at jobs/{id} (same knowledge base); known content is not added twice."""
    most = request.app.state.settings.max_upload_files
    if len(files) > most:
        raise InvalidInputError(f"{len(files)} files in one upload; at most {most}")
    uploads = await _prepared(request, files, title if len(files) == 1 else None)
    return JobsOut(jobs=[_job_out(target.writer.add(u), u) for u in uploads])


def _job_out(job: Job, upload: Upload | PendingScan) -> JobOut:
    """The job, with what was read of the document as a policy when the request read it."""
    return JobOut(**job.to_dict(), metadata=upload.metadata if isinstance(upload, Upload) else None)


@router.put("/{doc_id}", response_model=JobOut, status_code=202, responses=ADMIN_ERRORS)
async def replace_document(
    doc_id: str,
    request: Request,
    target: WriteKbDep,
    file: Annotated[UploadFile, File(description="The new content.")],
    title: Annotated[str | None, Form(max_length=200)] = None,
) -> JobOut:
    """Replace a document's content, keeping its id; only the new content is embedded."""
    (upload,) = await _prepared(request, [file], title, doc_id)
    return _job_out(await run_in_threadpool(target.writer.replace, doc_id, upload), upload)


@router.delete("/{doc_id}", response_model=DocumentDeletedOut, responses=ADMIN_ERRORS)
def delete_document(
    doc_id: str, request: Request, target: WriteKbDep, registry: RegistryDep, records: RecordsDep, caller: CallerDep
) -> DocumentDeletedOut:
    """Remove a document from the catalogue, the vector index and the lexical index (and its corrections); with a
    trash retention window, it is kept in the knowledge base's trash first, to be restored (``trash``)."""
    trash = TrashBin(records, target.kb_id, retention=request.app.state.settings.trash_retention())
    catalogue = target.engine.index.catalogue
    job, kept = delete_into_trash(trash, target.writer, catalogue, registry, doc_id, deleted_by=caller.who)
    if job.state == "done":
        forget_corrections(registry, target.kb_id, doc_id)
        chunk_corrections.forget_document(records, target.kb_id, doc_id)
    if kept is not None:
        note_for_audit(request, trash_entry=kept.entry_id)
    return DocumentDeletedOut(doc_id=doc_id, deleted=job.state == "done", job=JobOut(**job.to_dict()),
                              trash=TrashEntryOut.of(kept, utc_now()) if kept else None)  # fmt: skip
