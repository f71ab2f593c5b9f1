"""Sentence vectors, one row per sentence id, memory-mapped from a .npy file.

The answer composer reads a dozen rows per question, so a million chunks'
worth of sentences (gigabytes) stays on disk and in the page cache instead of
in the server's heap. Sentence ids are dense from 1, so row = id - 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class SentenceVectorStore:
    def __init__(self, matrix: np.ndarray) -> None:
        self._matrix = matrix

    @staticmethod
    def create(path: Path, count: int, dimension: int) -> np.ndarray:
        """A writable matrix on disk for a new build to fill, row i for sentence id i + 1."""
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dimension))

    @classmethod
    def load(cls, path: Path) -> SentenceVectorStore:
        return cls(np.load(path, mmap_mode="r"))

    @property
    def dimension(self) -> int:
        return int(self._matrix.shape[1])

    def count(self) -> int:
        return int(self._matrix.shape[0])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) and (ids.min() < 1 or ids.max() > self.count()):
            raise KeyError(f"sentence ids outside 1..{self.count()}")
        return np.asarray(self._matrix[ids - 1], dtype=np.float32)
