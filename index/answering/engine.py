"""The framework-free application object: one knowledge base's index, answering questions.

Every caller (the HTTP routes, ``/v1``, follow-ups, the CLI, the evaluation
runner) asks through ``QAEngine.ask``, so each answer takes one of the
compute slots. The index is read through the backend's ``IndexReader``
(``index/stores/base.py``); the engine never knows which backend it is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from index.answering.compose import Answer, AnswerComposer, AnswerParams
from index.answering.conversation import answer_in_context
from index.answering.document_filters import DocumentFilters
from index.answering.faq import FaqBook, FaqMemory
from index.answering.followup import Resolution, Turn
from index.answering.learned import shipped_models
from index.answering.policy_view import PolicyKnowledge, PolicyView
from index.answering.retrieval import Mode, Retriever, SearchResult
from index.answering.term_set import KnowledgeTerms, TermEntry
from index.embedders import Embedder
from index.embedders.batching import QueryBatcher
from index.stores.base import IndexBackend, IndexReader
from index.stores.records import ChunkRecord, DocumentRecord
from index.threads import apply as apply_threads
from index.threads import serving_plan

logger = logging.getLogger(__name__)

RELOAD_CHECK_S = 1.0


@dataclass(frozen=True)
class EngineOptions:
    """How an engine retrieves and answers (the service makes these from its settings)."""

    fusion: str = "weighted"
    dense_weight: float = 0.5
    answer: AnswerParams = field(default_factory=AnswerParams)
    compute_slots: int = 0  # 0: two per core
    ranking: str = "learned"  # "learned": the shipped models (index/answering/learned.py); "rules": hand-set weights


@dataclass(frozen=True)
class TimedAnswer:
    answer: Answer
    took_ms: float
    resolution: Resolution | None = None  # how the question was read in its conversation
    query: str = ""  # the text retrieved and answered: the question, completed when it is a follow-up


@dataclass(frozen=True)
class TimedSearch:
    result: SearchResult
    took_ms: float


@dataclass(frozen=True)
class Snapshot:
    """One generation and what answers from it; a request keeps the snapshot it started with."""

    index: IndexReader
    retriever: Retriever
    composer: AnswerComposer
    faq: FaqBook  # its FAQ pairs, read on first use


class QAEngine:
    def __init__(
        self, backend: IndexBackend, embedder: Embedder, index: IndexReader, options: EngineOptions = EngineOptions(),
        *, shared: QAEngine | None = None,
    ) -> None:  # fmt: skip
        self.backend = backend
        self.options = options
        self.embedder = embedder
        self.kb_id = backend.config.kb_id
        self._shared = shared
        if shared is not None:  # another knowledge base in the same server: one encoder queue, one set of slots
            self.query_embedder, self.threads, self._slots = shared.query_embedder, shared.threads, shared._slots
        else:
            self.query_embedder = QueryBatcher(embedder)  # concurrent questions share one encoder call
            # One thread each for the encoder, FAISS and BLAS; the cores are used by requests computing
            # side by side instead, at most compute_slots at once (index/threads.py says why).
            self.threads = apply_threads(serving_plan(compute_slots=options.compute_slots))
            self._slots = threading.BoundedSemaphore(self.threads.compute_slots)
        self.index_embedder_name = index.manifest.embedder.name
        self.policy = PolicyKnowledge()
        self.faq_memory = FaqMemory(self.query_embedder)  # the pairs' question vectors, kept across generations
        self.terms = KnowledgeTerms()  # the shipped list until the service says where the staff's entries are
        self._snapshot = self._snapshot_of(index)
        self._reload_lock = threading.Lock()
        self._checked_at = time.monotonic()

    def _snapshot_of(self, index: IndexReader) -> Snapshot:
        options = self.options
        models = shipped_models() if options.ranking == "learned" else None
        retriever = Retriever(
            index, self.query_embedder, fusion=options.fusion, dense_weight=options.dense_weight, models=models
        )
        faq = FaqBook(index.catalogue, self.faq_memory)
        snapshot = Snapshot(index, retriever, AnswerComposer(options.answer, models, faq), faq)
        # Bound to the index, not the snapshot: snapshot -> retriever -> snapshot would be a cycle, keeping a
        # replaced generation's segments until a full garbage collection (tests/test_live_service.py).
        retriever.arrange = lambda question, doc_ids: self.policy.view(
            index.catalogue, index.manifest.build_id
        ).arrange(question, doc_ids)
        retriever.terms = lambda: self.terms.current()
        retriever.scorer.terms = lambda: self.terms.current().table
        return snapshot

    def use_document_overrides(self, overrides: Callable[[], Mapping[str, dict]]) -> None:
        """Where the staff's corrections of document metadata are read from (the service's registry)."""
        self.policy = PolicyKnowledge(overrides)

    def use_terms(self, entries: Callable[[], Sequence[TermEntry]]) -> None:
        """Where the knowledge base's term entries are read from (the staff's record store)."""
        self.terms = KnowledgeTerms(entries)

    def policy_view(self, snapshot: Snapshot | None = None) -> PolicyView:
        """Every document's facts and standing in ``snapshot`` (the current one by default)."""
        snapshot = snapshot or self.current()
        return self.policy.view(snapshot.index.catalogue, snapshot.index.manifest.build_id)

    def current(self) -> Snapshot:
        """The snapshot to answer with; a generation committed elsewhere (the CLI, another replica) is
        picked up within a second."""
        now = time.monotonic()
        if now - self._checked_at >= RELOAD_CHECK_S:
            self._checked_at = now
            try:
                current = self.backend.current_generation(self._snapshot.index)
            except Exception:  # Milvus unreachable for a moment: answer from what is loaded, look again later
                logger.warning("could not check for a newer index", exc_info=True)
                return self._snapshot
            if current is not None and current != self._snapshot.index.manifest.build_id:
                self.reload()
        return self._snapshot

    def reload(self) -> None:
        """Serve the current generation from now on; requests in flight finish on the one they hold."""
        with self._reload_lock:
            current = self.backend.current_generation(self._snapshot.index)
            if current is None or current == self._snapshot.index.manifest.build_id:
                return
            index = self.backend.open_reader(
                embedder_name=self.index_embedder_name,
                dimension=self.embedder.dimension,
                reuse=self._snapshot.index,  # what it shares with the new generation stays as loaded
            )
            self._snapshot = self._snapshot_of(index)
            logger.info("now serving index %s", index.manifest.build_id)
        self.warm_policy_view()

    def warm_policy_view(self) -> None:
        """Read the documents' metadata into the policy view off the question path: the first view of a process
        reads every document's text (5 s at 17,000 documents), a new generation's the new documents'."""
        threading.Thread(target=self._warm_policy_view, name="policy-view-warm-up", daemon=True).start()

    def _warm_policy_view(self) -> None:
        try:
            self.policy_view()
        except Exception as error:  # closed under it, or a store gone for a moment: the next question builds it
            logger.info("policy view not warmed: %s", error)

    @property
    def index(self) -> IndexReader:
        return self.current().index

    def close(self) -> None:
        if self._shared is None:
            self.query_embedder.close()
        self._snapshot.index.close()

    def search(
        self, query: str, *, top_k: int, mode: Mode, doc_ids: Sequence[str] | None,
        filters: DocumentFilters | None = None,
    ) -> TimedSearch:  # fmt: skip
        started = time.perf_counter()
        snapshot = self.current()
        scope = self.policy_view(snapshot).scope(doc_ids, filters)
        with self._slots:
            query = self.terms.current().in_documents_words(query, snapshot.index.lexical)
            result = snapshot.faq.mark(snapshot.retriever.search(query, top_k=top_k, mode=mode, doc_ids=scope))
        return TimedSearch(result, (time.perf_counter() - started) * 1000)

    def ask(
        self,
        question: str,
        *,
        history: Sequence[Turn] = (),
        top_k: int,
        mode: Mode,
        doc_ids: Sequence[str] | None,
        filters: DocumentFilters | None = None,
    ) -> TimedAnswer:
        """Answer ``question`` as the next turn after ``history`` (oldest first; none for a lone question),
        from ``doc_ids`` and the documents ``filters`` admits; a superseded document it cites is flagged."""
        started = time.perf_counter()
        snapshot = self.current()  # one generation for the whole answer, even if another is switched to meanwhile
        view = self.policy_view(snapshot)
        with self._slots:
            question = self.terms.current().in_documents_words(question, snapshot.index.lexical)
            answered = answer_in_context(
                snapshot.retriever, snapshot.composer, question, history=history, top_k=top_k, mode=mode,
                doc_ids=view.scope(doc_ids, filters),
            )  # fmt: skip
        answer = flagged(answered.answer, view)
        return TimedAnswer(answer, (time.perf_counter() - started) * 1000, answered.resolution, answered.query)

    def documents(self) -> list[DocumentRecord]:
        return self.index.catalogue.documents()

    def document(self, doc_id: str) -> tuple[DocumentRecord, str, list[ChunkRecord]] | None:
        catalogue = self.index.catalogue
        record = catalogue.document(doc_id)
        if record is None:
            return None
        return record, catalogue.document_text(doc_id) or "", catalogue.document_chunks(doc_id)


def flagged(answer: Answer, view: PolicyView) -> Answer:
    """``answer`` with a notice for each cited document that is repealed, amended or not yet in force,
    also said at the end of the answer's text, so no client can show the quote without it."""
    notices = view.notices([(c.n, c.hit.chunk.doc_id) for c in answer.citations])
    if not notices:
        return answer
    return replace(answer, text=f"{answer.text}\n\n注：" + "；".join(notices) + "。", notices=tuple(notices))
