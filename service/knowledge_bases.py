"""Every knowledge base of one server, each an engine and its writer over its own data directory.

``default`` is today's index in DATA_DIR (built from docs_raw/) and stays
loaded; another lives in DATA_DIR/kbs/<kb_id>/, is loaded on first use and
evicted, least recently used first, when more are loaded than
``max_loaded_kbs`` or their index files pass ``kb_cache_mb``. All of them share
the default's encoder, question batcher and compute slots.

A request leases the knowledge base it works on (``leased``): one that is
leased, or has a job queued or running, is never evicted, so an upload
accepted while another knowledge base is loaded is never dropped with its
writer. An evicted one stops its job worker and is dropped; its job records
stay with the server, so a finished job still answers after a reload.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from index.answering.engine import QAEngine
from index.errors import NotFoundError
from service.engines import engine_options, index_backend
from service.settings import Settings
from service.stores.factory import shared_job_store, shared_writer_lock
from service.stores.jobs import InMemoryJobStore
from service.stores.records import RecordStore
from service.stores.registry import DEFAULT_KB, Registry, valid_kb_id
from service.term_records import term_entries
from service.writer import KnowledgeBaseWriter

logger = logging.getLogger(__name__)

KBS_DIR = "kbs"
# How long a delete waits for the requests using the knowledge base to finish before unloading it anyway.
DROP_WAIT_S = 60.0


@dataclass(frozen=True)
class LoadedKnowledgeBase:
    kb_id: str
    engine: QAEngine
    writer: KnowledgeBaseWriter
    size_bytes: int


class _NoPassages:
    """Stands in for the encoder when an empty knowledge base is made: there is nothing to embed."""

    max_tokens = 512

    def __init__(self, name: str, dimension: int) -> None:
        self.name, self.dimension = name, dimension

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return np.zeros((len(texts), self.dimension), np.float32)

    embed_queries = embed_passages


class KnowledgeBases:
    def __init__(
        self, settings: Settings, default_engine: QAEngine, registry: Registry, records: RecordStore | None = None
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.records = records  # the staff's records: a knowledge base's term entries are read from them
        self._read_corrections(default_engine, DEFAULT_KB)
        default_writer = KnowledgeBaseWriter(
            default_engine,
            settings,
            jobs=shared_job_store(settings, DEFAULT_KB),
            writer_lock=shared_writer_lock(settings, DEFAULT_KB),
        )
        self.default = LoadedKnowledgeBase(DEFAULT_KB, default_engine, default_writer, 0)
        self._loaded: OrderedDict[str, LoadedKnowledgeBase] = OrderedDict()
        self._lock = threading.Lock()
        self._released = threading.Condition(self._lock)
        self._load_locks: dict[str, threading.Lock] = {}
        self._leases: Counter[str] = Counter()  # requests using each loaded knowledge base now
        self._dropping: set[str] = set()
        self._job_records: dict[str, InMemoryJobStore] = {}  # outlive a knowledge base's eviction

    def data_dir(self, kb_id: str) -> Path:
        if kb_id == DEFAULT_KB:
            return self.settings.data_dir
        if not valid_kb_id(kb_id):  # never a path outside kbs/
            raise ValueError(f"bad kb_id {kb_id!r}")
        return self.settings.data_dir / KBS_DIR / kb_id

    def get(self, kb_id: str) -> LoadedKnowledgeBase:
        """The loaded knowledge base (loading it now if need be), for a moment's use: it may be evicted
        as soon as another is loaded. A request that changes it or waits on it uses ``leased``."""
        return self._acquire(kb_id, lease=False)

    @contextmanager
    def leased(self, kb_id: str) -> Iterator[LoadedKnowledgeBase]:
        """The loaded knowledge base, never evicted while the block runs."""
        loaded = self._acquire(kb_id, lease=True)
        try:
            yield loaded
        finally:
            if kb_id != DEFAULT_KB:
                with self._lock:
                    self._leases[kb_id] -= 1
                    if self._leases[kb_id] <= 0:
                        del self._leases[kb_id]
                        self._released.notify_all()
                    self._evict_locked(keep=None)  # loads made while it was leased may have passed the budget

    def _acquire(self, kb_id: str, *, lease: bool) -> LoadedKnowledgeBase:
        if kb_id == DEFAULT_KB:
            return self.default
        with self._lock:
            if (hit := self._hit_locked(kb_id, lease)) is not None:
                return hit
            load_lock = self._load_locks.setdefault(kb_id, threading.Lock())
        with load_lock:  # one load per knowledge base at a time; others load side by side
            with self._lock:
                if (hit := self._hit_locked(kb_id, lease)) is not None:
                    return hit
            loaded = self._load(kb_id)
            with self._lock:
                if kb_id in self._dropping:  # deleted while it loaded
                    loaded.writer.close()
                    raise NotFoundError(f"no knowledge base {kb_id!r}")
                self._loaded[kb_id] = loaded
                self._leases[kb_id] += lease
                self._evict_locked(keep=kb_id)
        return loaded

    def _hit_locked(self, kb_id: str, lease: bool) -> LoadedKnowledgeBase | None:
        if kb_id in self._dropping:
            raise NotFoundError(f"no knowledge base {kb_id!r}")
        hit = self._loaded.get(kb_id)
        if hit is not None:
            self._loaded.move_to_end(kb_id)
            self._leases[kb_id] += lease
        return hit

    def loaded_ids(self) -> list[str]:
        with self._lock:
            return [DEFAULT_KB, *self._loaded]

    def counts(self, kb_id: str) -> dict[str, int]:
        """Documents and chunks, from the loaded index or else the manifest on disk (nothing is loaded)."""
        with self._lock:
            loaded = self.default if kb_id == DEFAULT_KB else self._loaded.get(kb_id)
        if loaded is not None:
            counts = loaded.engine.index.manifest.counts
        else:
            counts = index_backend(self._settings_of(kb_id), kb_id).stored_counts()
        return {"documents": int(counts.get("documents", 0)), "chunks": int(counts.get("chunks", 0))}

    def create(self, kb_id: str) -> None:
        """An empty index for a new knowledge base."""
        engine = self.default.engine
        data_dir = self.data_dir(kb_id)
        if data_dir.exists():  # left by a knowledge base of the same name deleted in a crash
            self._remove_dir(data_dir)
        settings = self._settings_of(kb_id)
        backend = index_backend(settings, kb_id)
        backend.drop(engine.embedder.dimension)  # what a crash mid-delete left in a shared store
        no_passages = _NoPassages(engine.index_embedder_name, engine.embedder.dimension)
        backend.create_empty(embedder=no_passages, chunking=settings.chunking(), late_chunking=settings.late_chunking)

    def drop(self, kb_id: str) -> None:
        """Unload and delete a knowledge base's files (the registry has forgotten it already).

        New requests for it are refused from now on; those already using it finish first (up to a minute),
        and a load racing the delete is discarded, so nothing writes into the directory being removed.
        """
        with self._lock:
            self._dropping.add(kb_id)
            self._released.wait_for(lambda: not self._leases[kb_id], timeout=DROP_WAIT_S)
            loaded = self._loaded.pop(kb_id, None)
        try:
            with self._load_locks.get(kb_id) or threading.Lock():  # a load in progress ends first
                pass
            if loaded is not None:
                loaded.writer.close()
                loaded.writer.wait_for_merges(timeout=120)  # a merge writing into the directory finishes first
            index_backend(self._settings_of(kb_id), kb_id).drop(self.default.engine.embedder.dimension)
            self._remove_dir(self.data_dir(kb_id))
        finally:
            with self._lock:
                self._dropping.discard(kb_id)
                self._job_records.pop(kb_id, None)

    def close(self) -> None:
        with self._lock:
            loaded, self._loaded = list(self._loaded.values()), OrderedDict()
        for entry in loaded:
            entry.writer.close()
            entry.engine.close()
        self.default.writer.close()

    def _read_corrections(self, engine: QAEngine, kb_id: str) -> None:
        engine.use_document_overrides(lambda: self.registry.document_overrides(kb_id))
        engine.warm_policy_view()
        if self.records is not None:
            records = self.records
            engine.use_terms(lambda: term_entries(records, kb_id))

    def _settings_of(self, kb_id: str) -> Settings:
        return self.settings.model_copy(
            update={"data_dir": self.data_dir(kb_id), "models_dir": self.settings.resolved_models_dir()}
        )

    def _load(self, kb_id: str) -> LoadedKnowledgeBase:
        default = self.default.engine
        settings = self._settings_of(kb_id)
        backend = index_backend(settings, kb_id)
        if not backend.exists():
            self.create(kb_id)
        index = backend.open_reader(embedder_name=default.index_embedder_name, dimension=default.embedder.dimension)
        engine = QAEngine(backend, default.embedder, index, engine_options(settings), shared=default)
        self._read_corrections(engine, kb_id)
        logger.info("loaded knowledge base %s (build %s)", kb_id, index.manifest.build_id)
        with self._lock:
            records = self._job_records.setdefault(kb_id, InMemoryJobStore())
        writer = KnowledgeBaseWriter(
            engine, settings, jobs=shared_job_store(self.settings, kb_id),
            writer_lock=shared_writer_lock(self.settings, kb_id), records=records,
        )  # fmt: skip
        return LoadedKnowledgeBase(kb_id, engine, writer, index.size_bytes())

    def _evict_locked(self, *, keep: str | None) -> None:
        budget = self.settings.kb_cache_mb * 1_000_000
        while len(self._loaded) > self.settings.max_loaded_kbs or (
            sum(e.size_bytes for e in self._loaded.values()) > budget
        ):
            victim = next(
                (e for e in self._loaded.values() if e.kb_id != keep and not self._leases[e.kb_id] and not _busy(e)),
                None,
            )
            if victim is None:
                return  # everything else is in use or mid-job: over the budget until one is free
            del self._loaded[victim.kb_id]
            victim.writer.close()
            logger.info("evicted knowledge base %s", victim.kb_id)

    def _remove_dir(self, data_dir: Path) -> None:
        if not data_dir.exists():
            return
        trash = data_dir.with_name(f".deleted-{data_dir.name}-{secrets.token_hex(4)}")
        data_dir.rename(trash)  # one step: the knowledge base is gone, whatever the removal leaves
        shutil.rmtree(trash, ignore_errors=True)


def _busy(entry: LoadedKnowledgeBase) -> bool:
    counts = entry.writer.job_counts()
    return bool(counts.get("queued") or counts.get("running")) or entry.writer.merging()
