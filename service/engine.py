"""The framework-free application object: one loaded index, answering questions.

The HTTP routes and the CLI are thin wrappers over this.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from index.build import build_index
from index.embedders import Embedder, load_embedder
from index.errors import IndexNotFoundError
from index.search import Mode, Retriever, SearchResult
from index.storage import LoadedIndex, current_build_dir, load_index
from index.stores.catalogue import ChunkRecord, DocumentRecord
from service.answer import Answer, AnswerComposer
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TimedAnswer:
    answer: Answer
    took_ms: float


@dataclass(frozen=True)
class TimedSearch:
    result: SearchResult
    took_ms: float


class QAEngine:
    def __init__(self, settings: Settings, embedder: Embedder, index: LoadedIndex) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index = index
        self.retriever = Retriever(index, embedder, fusion=settings.fusion, dense_weight=settings.dense_weight)
        self.composer = AnswerComposer(index, settings.answer_params())

    @classmethod
    def open(cls, settings: Settings, *, show_progress: bool = False) -> QAEngine:
        """Load the configured embedder and the current index, building it first if allowed."""
        embedder = load_embedder(settings.embedder)
        if current_build_dir(settings.data_dir) is None:
            if not settings.build_on_start:
                raise IndexNotFoundError(f"no index in {settings.data_dir}; run 'policyqa ingest'")
            logger.info("no index yet: building it from %s", settings.docs_dir)
            build_index(
                docs_dir=settings.docs_dir,
                data_dir=settings.data_dir,
                embedder=embedder,
                chunking=settings.chunking(),
                show_progress=show_progress,
            )
        index = load_index(settings.data_dir, embedder_name=embedder.name, dimension=embedder.dimension)
        return cls(settings, embedder, index)

    def close(self) -> None:
        self.index.close()

    def search(self, query: str, *, top_k: int, mode: Mode, doc_ids: Sequence[str] | None) -> TimedSearch:
        started = time.perf_counter()
        result = self.retriever.search(query, top_k=top_k, mode=mode, doc_ids=doc_ids)
        return TimedSearch(result, (time.perf_counter() - started) * 1000)

    def ask(self, question: str, *, top_k: int, mode: Mode, doc_ids: Sequence[str] | None) -> TimedAnswer:
        started = time.perf_counter()
        result = self.retriever.search(question, top_k=top_k, mode=mode, doc_ids=doc_ids)
        answer = self.composer.compose(question, result)
        return TimedAnswer(answer, (time.perf_counter() - started) * 1000)

    def documents(self) -> list[DocumentRecord]:
        return self.index.catalogue.documents()

    def document(self, doc_id: str) -> tuple[DocumentRecord, str, list[ChunkRecord]] | None:
        record = self.index.catalogue.document(doc_id)
        if record is None:
            return None
        text = self.index.catalogue.document_text(doc_id) or ""
        return record, text, self.index.catalogue.document_chunks(doc_id)
