from fastapi import APIRouter

from index.errors import NotFoundError
from service.api.schemas import ErrorBody, JobOut
from service.api.tenancy import WriteKbDep

router = APIRouter(prefix="/jobs", tags=["admin"])


@router.get("/{job_id}", response_model=JobOut, responses={code: {"model": ErrorBody} for code in (401, 403, 404)})
def get_job(job_id: str, target: WriteKbDep) -> JobOut:
    """State, progress and errors of an upload, replacement or delete."""
    job = target.writer.job(job_id)
    if job is None:
        raise NotFoundError(f"no job with id {job_id!r}")
    return JobOut(**job.to_dict())
