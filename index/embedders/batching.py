"""Questions that arrive together are embedded together.

One encoder call for eight short questions costs far less than eight calls
(tokeniser, padding and framework overhead are per call, and the matrix
products get wider), so concurrent requests share a call. Nothing waits for
company: the worker takes whatever is queued when it becomes free, so a lone
question is embedded at once and batches form only under load.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future

import numpy as np

from index.embedders.base import Embedder

MAX_BATCH = 32


class QueryBatcher:
    """An embedder whose ``embed_queries`` is shared by concurrent callers; passages pass through."""

    def __init__(self, embedder: Embedder, *, max_batch: int = MAX_BATCH) -> None:
        self.inner = embedder
        self.name = embedder.name
        self.dimension = embedder.dimension
        self.max_tokens = embedder.max_tokens
        self.max_batch = max_batch
        self.batch_sizes: list[int] = []  # recent batch sizes, for the benchmark and tests
        self._queue: queue.SimpleQueue[tuple[list[str], Future] | None] = queue.SimpleQueue()
        self._worker = threading.Thread(target=self._run, name="query-embedder", daemon=True)
        self._worker.start()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self.inner.embed_passages(texts)

    def close(self) -> None:
        self._queue.put(None)
        self._worker.join(timeout=10)

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            jobs = [job]
            size = len(job[0])
            while size < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                jobs.append(job)
                size += len(job[0])
            self._embed(jobs)

    def _embed(self, jobs: list[tuple[list[str], Future]]) -> None:
        texts = [text for batch, _ in jobs for text in batch]
        try:
            vectors = self.inner.embed_queries(texts) if texts else np.zeros((0, self.dimension), np.float32)
        except BaseException as exc:  # the callers raise it, in their own threads
            for _, future in jobs:
                future.set_exception(exc)
            return
        self.batch_sizes = [*self.batch_sizes[-999:], len(texts)]
        at = 0
        for batch, future in jobs:
            future.set_result(vectors[at : at + len(batch)])
            at += len(batch)
