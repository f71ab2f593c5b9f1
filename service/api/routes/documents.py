from functools import partial
from pathlib import PurePosixPath
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from index.errors import InvalidInputError, NotFoundError
from index.stores.records import ChunkRecord, DocumentRecord
from service.api.schemas import (
    ChunkSummary,
    DeletedOut,
    DocumentDetail,
    DocumentList,
    DocumentSummary,
    ErrorBody,
    JobOut,
    JobsOut,
)
from service.api.tenancy import ReadKbDep, WriteKbDep
from service.uploads import Upload, prepare_upload_isolated

router = APIRouter(prefix="/documents", tags=["documents"])
READ_ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404)}


@router.get("", response_model=DocumentList, responses=READ_ERRORS)
def list_documents(target: ReadKbDep) -> DocumentList:
    """Every indexed document with its format, pages and number of chunks."""
    data = [DocumentSummary(**_summary(d)) for d in target.engine.documents()]
    return DocumentList(data=data, count=len(data))


def _summary(record: DocumentRecord) -> dict:
    suffix = PurePosixPath(record.source).suffix.lower().lstrip(".")
    return {
        "doc_id": record.doc_id,
        "title": record.title,
        "source": record.source,
        "type": suffix,
        "pages": record.pages or None,
        "chunks": record.chunk_count,
        "origin": record.origin,
    }


@router.get("/{doc_id}", response_model=DocumentDetail, responses=READ_ERRORS)
def get_document(doc_id: str, target: ReadKbDep) -> DocumentDetail:
    """One document with its cleaned text and where each chunk lies in it (section, pages, OCR confidence)."""
    found = target.engine.document(doc_id)
    if found is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    record, text, chunks = found
    return DocumentDetail(
        **_summary(record),
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


async def _read_limited(upload: UploadFile, limit_bytes: int) -> bytes:
    """The file's bytes, refusing it as soon as it passes the limit."""
    data = await upload.read(limit_bytes + 1)
    if len(data) > limit_bytes:
        raise HTTPException(413, f"{upload.filename} is larger than {limit_bytes // 1_000_000} MB")
    if not data:
        raise InvalidInputError(f"{upload.filename} is empty")
    return data


async def _prepared(request: Request, upload: UploadFile, title: str | None, doc_id: str | None = None) -> Upload:
    settings = request.app.state.settings
    data = await _read_limited(upload, int(settings.max_upload_mb * 1_000_000))
    # Reading a PDF or DOCX is CPU work, and a crafted file may never finish:
    # in a process of its own, killed at the deadline, waited for off the event loop.
    return await run_in_threadpool(
        partial(prepare_upload_isolated, timeout=settings.parse_timeout_s), data, upload.filename, title, doc_id
    )


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
    uploads = [await _prepared(request, f, title if len(files) == 1 else None) for f in files]
    return JobsOut(jobs=[JobOut(**target.writer.add(u).to_dict()) for u in uploads])


@router.put("/{doc_id}", response_model=JobOut, status_code=202, responses=ADMIN_ERRORS)
async def replace_document(
    doc_id: str,
    request: Request,
    target: WriteKbDep,
    file: Annotated[UploadFile, File(description="The new content.")],
    title: Annotated[str | None, Form(max_length=200)] = None,
) -> JobOut:
    """Replace a document's content, keeping its id; only the new content is embedded."""
    upload = await _prepared(request, file, title, doc_id)
    return JobOut(**(await run_in_threadpool(target.writer.replace, doc_id, upload)).to_dict())


@router.delete("/{doc_id}", response_model=DeletedOut, responses=ADMIN_ERRORS)
def delete_document(doc_id: str, target: WriteKbDep) -> DeletedOut:
    """Remove a document from the catalogue, the vector index and the lexical index."""
    job = target.writer.delete(doc_id)
    return DeletedOut(doc_id=doc_id, deleted=job.state == "done", job=JobOut(**job.to_dict()))
