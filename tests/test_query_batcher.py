"""Concurrent questions share encoder calls and each gets its own vector back."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from index.embedders.batching import QueryBatcher


class SlowEmbedder:
    """The real embedder, with each call held back so that callers pile up behind it."""

    def __init__(self, inner, gate: threading.Event) -> None:
        self.inner, self.gate = inner, gate
        self.entered = threading.Event()  # the worker is inside a call, held at the gate
        self.name, self.dimension, self.max_tokens = inner.name, inner.dimension, inner.max_tokens

    def embed_queries(self, texts):
        self.entered.set()
        self.gate.wait(timeout=30)
        if any(t == "boom" for t in texts):
            raise ValueError("boom")
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts):
        return self.inner.embed_passages(texts)


QUESTIONS = ["开封市乡镇机构改革", "镇海区骆驼街道的做法", "海安市中心镇改革", "街道职能定位", "基层治理"]


def test_concurrent_questions_are_batched_and_answered_in_order(embedder):
    gate = threading.Event()
    slow = SlowEmbedder(embedder, gate)
    batcher = QueryBatcher(slow)
    results: dict[int, np.ndarray] = {}
    first = threading.Thread(target=lambda: results.__setitem__(-1, batcher.embed_queries(["第一个问题"])))
    first.start()  # occupies the worker at the gate while the others queue up
    # The others start only once the worker holds the first call: before, they could join its batch, and
    # the wait below for five queued questions never ended.
    assert slow.entered.wait(timeout=30)
    threads = [
        threading.Thread(target=lambda i=i, q=q: results.__setitem__(i, batcher.embed_queries([q])))
        for i, q in enumerate(QUESTIONS)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while batcher._queue.qsize() < len(QUESTIONS) and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    gate.set()
    for thread in [first, *threads]:
        thread.join(timeout=60)
    try:
        assert batcher.batch_sizes == [1, len(QUESTIONS)]
        alone = embedder.embed_queries(QUESTIONS)
        for i in range(len(QUESTIONS)):
            cosine = float(results[i][0] @ alone[i])
            assert cosine > 0.999, (QUESTIONS[i], cosine)  # each caller gets its own question's vector
    finally:
        batcher.close()


def test_an_error_reaches_every_caller_of_the_batch_and_the_worker_goes_on(embedder):
    gate = threading.Event()
    gate.set()
    batcher = QueryBatcher(SlowEmbedder(embedder, gate))
    try:
        with pytest.raises(ValueError, match="boom"):
            batcher.embed_queries(["boom"])
        assert batcher.embed_queries(["开封市"]).shape == (1, embedder.dimension)
        assert batcher.embed_queries([]).shape == (0, embedder.dimension)
    finally:
        batcher.close()
