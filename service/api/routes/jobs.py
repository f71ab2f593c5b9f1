from fastapi import APIRouter

from index.errors import NotFoundError
from service.api.admin import AdminDep, KnowledgeBaseDep
from service.api.schemas import ErrorBody, JobOut

router = APIRouter(prefix="/api/jobs", tags=["admin"], dependencies=[AdminDep])


@router.get("/{job_id}", response_model=JobOut, responses={401: {"model": ErrorBody}, 404: {"model": ErrorBody}})
def get_job(job_id: str, kb: KnowledgeBaseDep) -> JobOut:
    """State, progress and errors of an upload, replacement or delete."""
    job = kb.job(job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return JobOut(**job.to_dict())
