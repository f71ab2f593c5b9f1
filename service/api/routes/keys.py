"""API keys (admin): made with their knowledge bases and scope, listed by prefix, label and last use, revoked."""

from typing import Annotated

from fastapi import APIRouter, Path, Request

from service.api.audit import note_for_audit
from service.api.schemas import ErrorBody, KeyCreate, KeyCreated, KeyDeleted, KeyList, KeyOut
from service.api.tenancy import AdminOnly, RegistryDep
from service.stores.registry import KeyRecord

router = APIRouter(prefix="/api/keys", tags=["keys"], dependencies=[AdminOnly])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 422)}
KeyId = Annotated[str, Path(min_length=1, max_length=64, description="The key's id (not the key).")]


def _out(record: KeyRecord, last_used_at: str | None = None) -> dict:
    return {**record.__dict__, "kbs": list(record.kbs), "last_used_at": last_used_at}


@router.post("", response_model=KeyCreated, status_code=201, responses=ERRORS)
def create_key(body: KeyCreate, registry: RegistryDep, request: Request) -> KeyCreated:
    """A new key; the answer is the only time the key itself is shown."""
    made = registry.create_key(kbs=body.kbs, scope=body.scope, label=body.label)
    record = made.record
    note_for_audit(request, key_id=record.key_id, prefix=record.prefix, scope=record.scope, kbs=list(record.kbs))
    return KeyCreated(**_out(made.record), key=made.key)


@router.get("", response_model=KeyList, responses=ERRORS)
def list_keys(registry: RegistryDep) -> KeyList:
    uses = registry.key_uses()
    data = [KeyOut(**_out(record, uses.get(record.key_id))) for record in registry.list_keys()]
    return KeyList(data=data, count=len(data))


@router.delete("/{key_id}", response_model=KeyDeleted, responses=ERRORS)
def delete_key(key_id: KeyId, registry: RegistryDep) -> KeyDeleted:
    """Revoke a key: the next request with it is a 401."""
    registry.delete_key(key_id)
    return KeyDeleted(key_id=key_id, deleted=True)
