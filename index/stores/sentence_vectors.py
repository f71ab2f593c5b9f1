"""Sentence vectors, one row per sentence id, memory-mapped from a .npy file.

The answer composer reads a dozen rows per question, so a million chunks'
worth of sentences (gigabytes) stays on disk and in the page cache instead of
in the server's heap. A segment's sentence ids are dense from its ``first_id``
(1 for a whole build), so row = id - first_id.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class SentenceVectorStore:
    def __init__(self, matrix: np.ndarray, first_id: int = 1) -> None:
        self._matrix = matrix
        self.first_id = first_id

    @staticmethod
    def create(path: Path, count: int, dimension: int) -> np.ndarray:
        """A writable matrix on disk for a new build to fill, row i for sentence id i + 1."""
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dimension))

    @classmethod
    def load(cls, path: Path, *, first_id: int = 1) -> SentenceVectorStore:
        return cls(np.load(path, mmap_mode="r"), first_id)

    @property
    def dimension(self) -> int:
        return int(self._matrix.shape[1])

    def count(self) -> int:
        return int(self._matrix.shape[0])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        first, last = self.first_id, self.first_id + self.count() - 1
        if len(ids) and (ids.min() < first or ids.max() > last):
            raise KeyError(f"sentence ids outside {first}..{last}")
        return np.asarray(self._matrix[ids - first], dtype=np.float32)
