"""Prometheus metrics in the text exposition format."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from service.api.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text."}},
)
def metrics(request: Request) -> Response:
    """Requests by route and status, latency histograms, errors, index size and ingestion jobs."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
