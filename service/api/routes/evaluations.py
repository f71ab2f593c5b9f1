"""The gold set as a job (admin): start a run, follow its progress, read the last runs' tables and plot."""

from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response

from index.errors import NotFoundError
from service.api.schemas import ErrorBody, EvalList, EvalOut, EvalRequest
from service.api.tenancy import AdminKbDep, RecordsDep
from service.evaluations import EvalRun, Evaluations
from service.gold_set import GoldSet, kb_gold_dataset

router = APIRouter(prefix="/evaluations", tags=["admin"])
ERRORS = {code: {"model": ErrorBody} for code in (401, 403, 404, 409, 422)}
RunId = Annotated[str, Path(min_length=1, max_length=64, description="The run's id.")]
PNG = {200: {"content": {"image/png": {}}, "description": "Quality per mode and latency, as a PNG image."}}


def _evaluations(request: Request) -> Evaluations:
    return request.app.state.evaluations


def _found(request: Request, kb_id: str, run_id: str) -> EvalRun:
    run = _evaluations(request).get(kb_id, run_id)
    if run is None:
        raise NotFoundError(f"no evaluation {run_id!r}")
    return run


@router.post("", response_model=EvalOut, status_code=202, responses=ERRORS)
def start_evaluation(body: EvalRequest, request: Request, target: AdminKbDep, records: RecordsDep) -> EvalOut:
    """Ask the knowledge base's gold questions in each mode, in the background: for ``default`` the shipped gold
    set and those its staff added, for another its added ones (409 when it has none); one run at a time (409)."""
    dataset = kb_gold_dataset(target.kb_id, GoldSet(records).questions(target.kb_id))
    modes = list(dict.fromkeys(body.modes))
    run = _evaluations(request).start(kb_id=target.kb_id, engine=target.engine, modes=modes, dataset=dataset)
    return EvalOut(**run.to_dict())


@router.get("", response_model=EvalList, responses=ERRORS)
def list_evaluations(request: Request, target: AdminKbDep) -> EvalList:
    """The last runs, newest first, with their summary tables."""
    data = [EvalOut(**run.to_dict()) for run in _evaluations(request).list(target.kb_id)]
    return EvalList(data=data, count=len(data))


@router.get("/{run_id}", response_model=EvalOut, responses=ERRORS)
def get_evaluation(run_id: RunId, request: Request, target: AdminKbDep) -> EvalOut:
    return EvalOut(**_found(request, target.kb_id, run_id).to_dict())


@router.get("/{run_id}/plot.png", response_class=Response, responses={**ERRORS, **PNG})
def evaluation_plot(run_id: RunId, request: Request, target: AdminKbDep) -> Response:
    run = _found(request, target.kb_id, run_id)
    if run.plot is None:
        raise NotFoundError(f"evaluation {run_id!r} has no plot yet")
    return Response(run.plot, media_type="image/png", headers={"Cache-Control": "no-store"})
