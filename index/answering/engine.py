"""The framework-free application object: one loaded index, answering questions.

The HTTP routes and the CLI are thin wrappers over this.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from index.answering.compose import Answer, AnswerComposer
from index.answering.retrieval import Mode, Retriever, SearchResult
from index.embedders import Embedder, embedder_name, load_embedder
from index.embedders.agreement import MIN_COSINE, agrees
from index.embedders.batching import QueryBatcher
from index.errors import IndexMismatchError, IndexNotFoundError
from index.stores.local.generations import LoadedIndex
from index.stores.records import ChunkRecord, DocumentRecord
from index.threads import apply as apply_threads
from index.threads import serving_plan
from service import index_store
from service.settings import Settings
from service.stores.registry import DEFAULT_KB

logger = logging.getLogger(__name__)

RELOAD_CHECK_S = 1.0


@dataclass(frozen=True)
class TimedAnswer:
    answer: Answer
    took_ms: float


@dataclass(frozen=True)
class TimedSearch:
    result: SearchResult
    took_ms: float


def passage_embedder(settings: Settings) -> Embedder:
    """The embedder the index is built with."""
    return load_embedder(
        settings.embedder,
        models_dir=settings.resolved_models_dir(),
        precision=settings.embed_precision,
        backend=settings.embed_backend,
    )


@dataclass(frozen=True)
class Snapshot:
    """One build and what answers from it; a request keeps the snapshot it started with."""

    index: LoadedIndex
    retriever: Retriever
    composer: AnswerComposer


class QAEngine:
    def __init__(
        self, settings: Settings, embedder: Embedder, index: LoadedIndex, *, shared: QAEngine | None = None,
        kb_id: str = DEFAULT_KB,
    ) -> None:  # fmt: skip
        self.settings = settings
        self.embedder = embedder
        self.kb_id = kb_id
        self.milvus = index_store.milvus_target(settings, kb_id)  # None: the local index in DATA_DIR
        self._shared = shared
        if shared is not None:  # another knowledge base in the same server: one encoder queue, one set of slots
            self.query_embedder, self.threads, self._slots = shared.query_embedder, shared.threads, shared._slots
        else:
            self.query_embedder = QueryBatcher(embedder)  # concurrent questions share one encoder call
            # One thread each for the encoder, FAISS and BLAS; the cores are used by requests computing
            # side by side instead, at most compute_slots at once (index/threads.py says why).
            self.threads = apply_threads(serving_plan(compute_slots=settings.compute_slots))
            self._slots = threading.BoundedSemaphore(self.threads.compute_slots)
        self.index_embedder_name = index.manifest.embedder.name
        self._snapshot = self._snapshot_of(index)
        self._reload_lock = threading.Lock()
        self._checked_at = time.monotonic()

    def _snapshot_of(self, index: LoadedIndex) -> Snapshot:
        settings = self.settings
        retriever = Retriever(index, self.query_embedder, fusion=settings.fusion, dense_weight=settings.dense_weight)
        return Snapshot(index, retriever, AnswerComposer(settings.answer_params()))

    def current(self) -> Snapshot:
        """The snapshot to answer with; a build made elsewhere (the CLI, another replica) is picked up
        within a second."""
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_S:
            self._checked_at = now
            try:
                current = index_store.current_build_id(self.settings, self._snapshot.index)
            except Exception:  # Milvus unreachable for a moment: answer from what is loaded, look again later
                logger.warning("could not check for a newer index", exc_info=True)
                return self._snapshot
            if current is not None and current != self._snapshot.index.manifest.build_id:
                self.reload()
        return self._snapshot

    def reload(self) -> None:
        """Serve the current build from now on; requests in flight finish on the one they hold."""
        with self._reload_lock:
            current = index_store.current_build_id(self.settings, self._snapshot.index)
            if current is None or current == self._snapshot.index.manifest.build_id:
                return
            index = index_store.open_index(
                self.settings,
                self.kb_id,
                embedder_name=self.index_embedder_name,
                dimension=self.embedder.dimension,
                reuse=self._snapshot.index,  # segments it shares with the new generation stay as loaded
            )
            self._snapshot = self._snapshot_of(index)
            logger.info("now serving index %s", index.manifest.build_id)

    @property
    def index(self) -> LoadedIndex:
        return self.current().index

    @classmethod
    def open(cls, settings: Settings, *, show_progress: bool = False, kb_id: str = DEFAULT_KB) -> QAEngine:
        """Load the current index and the embedder for questions, building the index first if allowed.
        ``kb_id``: the knowledge base (its ``settings`` carry its own data_dir)."""
        apply_threads(serving_plan(compute_slots=settings.compute_slots))  # before an encoder is made
        embedder = None
        stale = index_store.stale_format(settings)
        if not index_store.has_index(settings, kb_id) or (stale and settings.build_on_start):
            where = settings.milvus_uri if settings.store == "milvus" else settings.data_dir
            if not settings.build_on_start:
                raise IndexNotFoundError(f"no index in {where}; run 'policyqa ingest'")
            logger.info("%s: building it from %s", "old index format" if stale else "no index yet", settings.docs_dir)
            embedder = passage_embedder(settings)
            index_store.build_corpus(settings, kb_id, embedder, docs_dir=settings.docs_dir, show_progress=show_progress)
        if settings.query_embedder and settings.query_embedder != settings.embedder:
            return cls._open_with_query_embedder(settings, kb_id)
        embedder = embedder or passage_embedder(settings)
        index = index_store.open_index(settings, kb_id, embedder_name=embedder.name, dimension=embedder.dimension)
        return cls(settings, embedder, index, kb_id=kb_id)

    @classmethod
    def _open_with_query_embedder(cls, settings: Settings, kb_id: str) -> QAEngine:
        """Questions embedded by another backend, if the index measured that it agrees with its own."""
        query_embedder = load_embedder(
            settings.query_embedder, models_dir=settings.resolved_models_dir(), backend=settings.embed_backend
        )
        index = index_store.open_index(
            settings, kb_id, embedder_name=embedder_name(settings.embedder), dimension=query_embedder.dimension
        )
        measured = index.manifest.query_embedders.get(query_embedder.name)
        if not agrees(measured):
            index.close()
            found = f"measured {measured['min_cosine']:.4f}" if measured else "never measured"
            raise IndexMismatchError(
                f"questions cannot be embedded with {query_embedder.name} against index {index.manifest.build_id}:"
                f" its agreement with {index.manifest.embedder.name} was {found}, below {MIN_COSINE}"
            )
        logger.info("embedding questions with %s (min cosine %.4f)", query_embedder.name, measured["min_cosine"])
        return cls(settings, query_embedder, index, kb_id=kb_id)

    def close(self) -> None:
        if self._shared is None:
            self.query_embedder.close()
        self._snapshot.index.close()

    def search(self, query: str, *, top_k: int, mode: Mode, doc_ids: Sequence[str] | None) -> TimedSearch:
        started = time.perf_counter()
        with self._slots:
            result = self.current().retriever.search(query, top_k=top_k, mode=mode, doc_ids=doc_ids)
        return TimedSearch(result, (time.perf_counter() - started) * 1000)

    def ask(self, question: str, *, top_k: int, mode: Mode, doc_ids: Sequence[str] | None) -> TimedAnswer:
        started = time.perf_counter()
        snapshot = self.current()
        with self._slots:
            result = snapshot.retriever.search(question, top_k=top_k, mode=mode, doc_ids=doc_ids)
            answer = snapshot.composer.compose(question, result)
        return TimedAnswer(answer, (time.perf_counter() - started) * 1000)

    def documents(self) -> list[DocumentRecord]:
        return self.index.catalogue.documents()

    def document(self, doc_id: str) -> tuple[DocumentRecord, str, list[ChunkRecord]] | None:
        catalogue = self.index.catalogue
        record = catalogue.document(doc_id)
        if record is None:
            return None
        return record, catalogue.document_text(doc_id) or "", catalogue.document_chunks(doc_id)
