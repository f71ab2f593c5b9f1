"""Dependencies as Annotated aliases; the only global state is app.state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from index.answering.engine import QAEngine


def get_engine(request: Request) -> QAEngine:
    return request.app.state.engine


EngineDep = Annotated[QAEngine, Depends(get_engine)]
