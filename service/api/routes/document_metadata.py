"""A document's policy metadata: what was extracted (with where), and the staff's corrections of it.

A correction is kept in the registry, beside the knowledge base, not in the index: it takes effect with the
next question, with no rebuild, and it outlives a replace, an ingest and a merge of the document.
"""

from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from index.errors import InvalidInputError, NotFoundError
from service.api.policy_schemas import DocumentPolicy, MetadataCorrection, document_policy
from service.api.schemas import ErrorBody
from service.api.tenancy import CallerDep, ReadKbDep, RegistryDep, WriteKbDep
from service.knowledge_bases import LoadedKnowledgeBase
from service.stores.registry import Registry, now_iso

router = APIRouter(prefix="/documents", tags=["documents"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 422)}


class DocumentMetadataOut(BaseModel):
    doc_id: str
    title: str
    policy: DocumentPolicy = Field(description="The metadata as answers use it: extracted, with corrections applied.")
    extracted: dict = Field(description="What was read from the text: each field's value, span and confidence.")
    corrections: dict | None = Field(None, description="The staff's corrections, with who set them and when.")


@router.get("/{doc_id}/metadata", response_model=DocumentMetadataOut, responses=ERRORS)
def get_metadata(doc_id: str, target: ReadKbDep, registry: RegistryDep) -> DocumentMetadataOut:
    """A document's issuer, 文号, dates, 文种, level and validity, and where each came from."""
    return _metadata_of(target, registry, doc_id)


@router.patch("/{doc_id}/metadata", response_model=DocumentMetadataOut, responses=ERRORS)
async def correct_metadata(
    doc_id: str, body: MetadataCorrection, target: WriteKbDep, registry: RegistryDep, caller: CallerDep
) -> DocumentMetadataOut:
    """Correct fields (or set the validity: repealed by another document, say); effective at once, no rebuild."""
    view = target.engine.policy_view()
    if doc_id not in view.facts:
        raise NotFoundError(f"no document with id {doc_id!r}")
    by = body.validity.by_doc_id if body.validity else None
    if by is not None and (by == doc_id or by not in view.facts):
        raise InvalidInputError(f"validity.by_doc_id {by!r} must be another document of this knowledge base")
    kb_id = target.kb_id
    current = registry.document_overrides(kb_id).get(doc_id) or {}
    fields = {k: v for k, v in (current.get("fields") or {}).items() if k not in body.reset}
    fields.update(body.fields())
    validity = None if "validity" in body.reset else current.get("validity")
    if body.validity is not None:
        validity = body.validity.model_dump(mode="json")
    corrections = {"fields": fields, "validity": validity, "set_by": caller.who, "set_at": now_iso()}
    kept = corrections if fields or validity else None
    await run_in_threadpool(registry.put_document_override, kb_id, doc_id, kept)
    target.engine.policy.changed()
    return _metadata_of(target, registry, doc_id)


def _metadata_of(target: LoadedKnowledgeBase, registry: Registry, doc_id: str) -> DocumentMetadataOut:
    engine = target.engine
    view = engine.policy_view()
    facts, standing = view.of(doc_id)
    extracted = engine.policy.extracted(engine.index.catalogue, doc_id)
    if facts is None or extracted is None:
        raise NotFoundError(f"no document with id {doc_id!r}")
    policy = document_policy(facts, standing)
    assert policy is not None
    return DocumentMetadataOut(
        doc_id=doc_id, title=facts.title, policy=policy, extracted=extracted.to_dict(),
        corrections=registry.document_overrides(target.kb_id).get(doc_id),
    )  # fmt: skip


def forget_corrections(registry: Registry, kb_id: str, doc_id: str) -> None:
    """A deleted document's corrections go with it: a later document given the same id starts clean."""
    registry.put_document_override(kb_id, doc_id, None)
