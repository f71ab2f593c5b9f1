"""Sentence vectors, one row per sentence id, memory-mapped from a .npy file.

The answer composer reads a dozen rows per question, so a million chunks'
worth of sentences (gigabytes) stays on disk and in the page cache instead of
in the server's heap. A segment's sentence ids are dense from its ``first_id``
(1 for a whole build), so row = id - first_id. A merged segment keeps its
sentences' ids, which have gaps where deleted documents' were: it stores its
runs of consecutive ids beside the matrix (``ids_path``: first id, length,
first row of each run, a few bytes per deleted document), and a row is found
by ``searchsorted`` over the runs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class SentenceVectorStore:
    def __init__(self, matrix: np.ndarray, first_id: int = 1, runs: np.ndarray | None = None) -> None:
        self._matrix = matrix
        self.first_id = first_id
        self._runs = runs  # int64 (first id, length, first row) per run of ids; None when dense from first_id

    @staticmethod
    def runs_of(ids: np.ndarray) -> np.ndarray:
        """The runs of consecutive ids in sorted ``ids``, one row each: (first id, length, first row)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) == 0:
            return np.zeros((0, 3), dtype=np.int64)
        starts = np.flatnonzero(np.diff(ids) != 1) + 1
        rows = np.concatenate([[0], starts])
        lengths = np.diff(np.concatenate([rows, [len(ids)]]))
        return np.stack([ids[rows], lengths, rows], axis=1).astype(np.int64)

    @staticmethod
    def create(path: Path, count: int, dimension: int) -> np.ndarray:
        """A writable matrix on disk for a new build to fill, row i for sentence id i + 1."""
        return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dimension))

    @classmethod
    def load(cls, path: Path, *, first_id: int = 1) -> SentenceVectorStore:
        ids_path = cls.ids_path(path)
        runs = np.load(ids_path) if ids_path.exists() else None
        return cls(np.load(path, mmap_mode="r"), first_id, runs)

    @staticmethod
    def ids_path(path: Path) -> Path:
        return Path(path).with_name(Path(path).stem + "-runs.npy")

    @property
    def dimension(self) -> int:
        return int(self._matrix.shape[1])

    def count(self) -> int:
        return int(self._matrix.shape[0])

    def vectors(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids, dtype=np.int64)
        if self._runs is not None:
            firsts, lengths, rows = self._runs[:, 0], self._runs[:, 1], self._runs[:, 2]
            run = np.searchsorted(firsts, ids, side="right") - 1
            offset = ids - firsts[np.maximum(run, 0)]
            if len(ids) and (np.any(run < 0) or np.any(offset >= lengths[np.maximum(run, 0)])):
                raise KeyError("sentence ids not in this store")
            return np.asarray(self._matrix[rows[run] + offset], dtype=np.float32)
        first, last = self.first_id, self.first_id + self.count() - 1
        if len(ids) and (ids.min() < first or ids.max() > last):
            raise KeyError(f"sentence ids outside {first}..{last}")
        return np.asarray(self._matrix[ids - first], dtype=np.float32)
