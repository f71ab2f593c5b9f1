from fastapi import APIRouter

from service.api.deps import EngineDep
from service.api.errors import NotFound
from service.api.schemas import ChunkSummary, DocumentDetail, DocumentList, DocumentSummary, ErrorBody

router = APIRouter(prefix="/api/documents", tags=["documents"])


@router.get("", response_model=DocumentList)
def list_documents(engine: EngineDep) -> DocumentList:
    """Every indexed document with its number of chunks."""
    data = [
        DocumentSummary(doc_id=d.doc_id, title=d.title, source=d.source, chunks=d.chunk_count)
        for d in engine.documents()
    ]
    return DocumentList(data=data, count=len(data))


@router.get("/{doc_id}", response_model=DocumentDetail, responses={404: {"model": ErrorBody}})
def get_document(doc_id: str, engine: EngineDep) -> DocumentDetail:
    """One document with its cleaned text and where each chunk lies in it."""
    found = engine.document(doc_id)
    if found is None:
        raise NotFound(f"no document with id {doc_id!r}")
    record, text, chunks = found
    return DocumentDetail(
        doc_id=record.doc_id,
        title=record.title,
        source=record.source,
        chunks=record.chunk_count,
        content_hash=record.content_hash,
        text=text,
        chunk_spans=[
            ChunkSummary(chunk_id=c.chunk_id, section=list(c.section), start=c.start, end=c.end) for c in chunks
        ],
    )
