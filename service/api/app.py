"""The FastAPI application factory."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from index.answering.engine import QAEngine
from service.api.errors import install_error_handlers
from service.api.hardening import install_hardening
from service.api.limits import CallerBudget
from service.api.responses import Utf8JSONResponse
from service.api.routes import api_router
from service.engines import open_engine
from service.evaluations import Evaluations
from service.knowledge_bases import KnowledgeBases
from service.settings import Settings
from service.stores.factory import open_records, open_registry
from service.trash_sweep import TrashSweeper
from service.uploads import ParseSlots

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, engine: QAEngine | None = None) -> FastAPI:
    """Build the app; the lifespan loads the index once (building it if none exists)."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        opened = engine or await run_in_threadpool(open_engine, settings)
        app.state.engine = opened
        app.state.registry = open_registry(settings)
        app.state.records = open_records(settings)
        app.state.kbs = KnowledgeBases(settings, opened, app.state.registry, app.state.records)
        app.state.writer = app.state.kbs.default.writer  # default's writer (metrics, health)
        app.state.evaluations = Evaluations()
        app.state.trash_sweeper = TrashSweeper(app.state.records, settings.trash_retention())
        app.state.trash_sweeper.start()
        logger.info("serving index %s (%s)", opened.index.manifest.build_id, opened.embedder.name)
        try:
            yield
        finally:
            await run_in_threadpool(app.state.evaluations.close)  # before the engines it may be asking
            await run_in_threadpool(app.state.trash_sweeper.close)
            app.state.kbs.close()
            if engine is None:
                opened.close()

    app = FastAPI(
        title="policyqa",
        summary="Cited answers from Chinese policy documents on township and subdistrict reform.",
        version="0.1.0",
        lifespan=lifespan,
        default_response_class=Utf8JSONResponse,  # Chinese as UTF-8 text, not \\uXXXX escapes
    )
    app.state.settings = settings
    app.state.parse_slots = ParseSlots(settings.max_parses)  # uploads read at once, across every route
    app.state.feedback_budget = CallerBudget(settings.feedback_per_minute, what="feedback posts")
    install_error_handlers(app)
    if settings.cors_origins:
        # Only the configured origins; no credentials: the widget sends none.
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],  # the widget asks and searches; admin tools call same-origin
            allow_headers=["Content-Type", "Authorization"],  # Authorization: the /v1 API keys
            max_age=600,
        )
    app.include_router(api_router)
    install_hardening(app, settings)
    return app
