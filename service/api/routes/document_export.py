"""Every document of a knowledge base as JSON Lines: its text, its metadata as extracted, the staff's corrections,
and the policy facts answers use; what an office keeps, moves or audits outside policyqa.

At ``/export/documents``, not under ``/documents/``: a document may be called ``export``.
"""

from collections.abc import Iterator

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from service.api.policy_schemas import DocumentPolicy, document_policy
from service.api.schemas import ErrorBody
from service.api.tenancy import ReadKbDep, RegistryDep
from service.knowledge_bases import LoadedKnowledgeBase
from service.stores.registry import Registry

router = APIRouter(prefix="/export", tags=["documents"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404)}


class ExportedDocument(BaseModel):
    doc_id: str
    title: str
    source: str
    origin: str
    content_hash: str
    pages: int | None
    text: str = Field(description="The cleaned text, as indexed.")
    policy: DocumentPolicy | None = Field(description="The metadata as answers use it: extracted, then corrected.")
    extracted: dict | None = Field(description="What was read from the text, with each field's span and confidence.")
    corrections: dict | None = Field(description="The staff's corrections, with who set them and when.")


@router.get("/documents", response_class=StreamingResponse, responses=ERRORS)
def export_documents(target: ReadKbDep, registry: RegistryDep) -> StreamingResponse:
    """Every document as one JSON line: text, extracted metadata, corrections and the resulting policy facts."""
    headers = {"Content-Disposition": f'attachment; filename="documents-{target.kb_id}.jsonl"'}
    return StreamingResponse(_lines(target, registry), media_type="application/x-ndjson", headers=headers)


def _lines(target: LoadedKnowledgeBase, registry: Registry) -> Iterator[str]:
    engine = target.engine
    view = engine.policy_view()
    overrides = registry.document_overrides(target.kb_id)
    for listed in engine.documents():
        found = engine.document(listed.doc_id)
        if found is None:  # deleted while the export ran
            continue
        record, text, _chunks = found
        extracted = engine.policy.extracted(engine.index.catalogue, record.doc_id)
        exported = ExportedDocument(
            doc_id=record.doc_id, title=record.title, source=record.source, origin=record.origin,
            content_hash=record.content_hash, pages=record.pages or None, text=text,
            policy=document_policy(*view.of(record.doc_id)),
            extracted=extracted.to_dict() if extracted is not None else None,
            corrections=overrides.get(record.doc_id),
        )  # fmt: skip
        yield exported.model_dump_json() + "\n"
