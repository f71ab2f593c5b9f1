"""Engines made from the service's settings: the embedder, the backend's configuration, the first build."""

from __future__ import annotations

import logging

from index.answering.engine import EngineOptions, QAEngine
from index.embedders import Embedder, embedder_name, load_embedder
from index.embedders.agreement import MIN_COSINE, agrees
from index.errors import IndexMismatchError, IndexNotFoundError
from index.stores.base import BackendConfig, IndexBackend
from index.stores.factory import open_backend
from index.threads import apply as apply_threads
from index.threads import serving_plan
from service.settings import Settings
from service.stores.registry import DEFAULT_KB

logger = logging.getLogger(__name__)


def passage_embedder(settings: Settings) -> Embedder:
    """The embedder the index is built with."""
    return load_embedder(
        settings.embedder,
        models_dir=settings.resolved_models_dir(),
        precision=settings.embed_precision,
        backend=settings.embed_backend,
    )


def backend_config(settings: Settings, kb_id: str = DEFAULT_KB) -> BackendConfig:
    """Where this knowledge base's index lives (``settings`` are the knowledge base's own: its data_dir)."""
    return BackendConfig(
        kind=settings.store, data_dir=settings.data_dir, kb_id=kb_id, milvus_uri=settings.milvus_uri,
        milvus_prefix=settings.milvus_prefix,
    )  # fmt: skip


def index_backend(settings: Settings, kb_id: str = DEFAULT_KB) -> IndexBackend:
    return open_backend(backend_config(settings, kb_id))


def engine_options(settings: Settings) -> EngineOptions:
    return EngineOptions(
        fusion=settings.fusion, dense_weight=settings.dense_weight, answer=settings.answer_params(),
        compute_slots=settings.compute_slots, ranking=settings.ranking,
    )  # fmt: skip


def open_engine(settings: Settings, *, show_progress: bool = False, kb_id: str = DEFAULT_KB) -> QAEngine:
    """Load the current index and the embedder for questions, building the index first if allowed."""
    apply_threads(serving_plan(compute_slots=settings.compute_slots))  # before an encoder is made
    backend = index_backend(settings, kb_id)
    embedder = None
    stale = backend.stale_format()
    if not backend.exists() or (stale and settings.build_on_start):
        if not settings.build_on_start:
            raise IndexNotFoundError(f"no index in {backend.location}; run 'policyqa ingest'")
        logger.info("%s: building it from %s", "old index format" if stale else "no index yet", settings.docs_dir)
        embedder = passage_embedder(settings)
        backend.ingest(
            embedder=embedder, docs_dir=settings.docs_dir, chunking=settings.chunking(), show_progress=show_progress,
            late_chunking=settings.late_chunking, keep_uploads=False,
        )  # fmt: skip
    if settings.query_embedder and settings.query_embedder != settings.embedder:
        return _open_with_query_embedder(settings, backend)
    embedder = embedder or passage_embedder(settings)
    index = backend.open_reader(embedder_name=embedder.name, dimension=embedder.dimension)
    return QAEngine(backend, embedder, index, engine_options(settings))


def _open_with_query_embedder(settings: Settings, backend: IndexBackend) -> QAEngine:
    """Questions embedded by another backend, if the index measured that it agrees with its own."""
    query_embedder = load_embedder(
        settings.query_embedder, models_dir=settings.resolved_models_dir(), backend=settings.embed_backend
    )
    index = backend.open_reader(embedder_name=embedder_name(settings.embedder), dimension=query_embedder.dimension)
    measured = index.manifest.query_embedders.get(query_embedder.name)
    if not agrees(measured):
        index.close()
        found = f"measured {measured['min_cosine']:.4f}" if measured else "never measured"
        raise IndexMismatchError(
            f"questions cannot be embedded with {query_embedder.name} against index {index.manifest.build_id}:"
            f" its agreement with {index.manifest.embedder.name} was {found}, below {MIN_COSINE}"
        )
    logger.info("embedding questions with %s (min cosine %.4f)", query_embedder.name, measured["min_cosine"])
    return QAEngine(backend, query_embedder, index, engine_options(settings))
