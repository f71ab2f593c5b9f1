"""A float32 .npy matrix written a block of rows at a time, never held whole in memory.

A large build's sentence vectors (gigabytes at a million chunks) go to their
file as each batch is embedded. The row count is known only at the end, so the
header is written first for no rows and written again when finished: numpy
leaves room in a .npy header for the row count to grow (``GROWTH_AXIS_MAX_DIGITS``),
so the data never moves. The file then loads like any ``np.save``'d matrix.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


class AppendedRows:
    def __init__(self, path: Path, dimension: int) -> None:
        self.path = Path(path)
        self.dimension = dimension
        self.count = 0
        self._handle = self.path.open("wb")
        self._data_offset = self._write_header()

    def append(self, rows: np.ndarray) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.dimension:
            raise ValueError(f"expected rows of dimension {self.dimension}, got {rows.shape}")
        self._handle.write(memoryview(rows).cast("B"))
        self.count += len(rows)

    def finish(self) -> None:
        """Write the row count into the header and close the file."""
        self._handle.flush()
        self._handle.seek(0)
        if self._write_header() != self._data_offset:
            raise RuntimeError(f"the .npy header of {self.path} grew past the room numpy leaves for it")
        self._handle.close()

    def close(self) -> None:
        """Close without finishing (the file is left to whoever removes what an unfinished build wrote)."""
        self._handle.close()

    def _write_header(self) -> int:
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
                  "shape": (self.count, self.dimension)}  # fmt: skip
        np.lib.format.write_array_header_1_0(self._handle, header)
        return self._handle.tell()
