"""One progress bar per stage of long work, on stderr, with its rates; it can be switched off.

Each bar counts its own unit (documents, passages, chunks) and shows the
rate in characters per second beside it, so stages of different units
compare. Nothing else prints a bar while one runs: sentence-transformers'
own "Batches" bar is turned off where it is called.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from tqdm import tqdm


class StageBar:
    """A tqdm bar whose postfix shows characters/s (and the unit's rate, which tqdm shows anyway)."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar
        self._started = time.perf_counter()
        self.characters = 0

    def update(self, n: int, *, characters: int = 0) -> None:
        self.characters += characters
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        if characters:
            self._bar.set_postfix_str(f"{self.characters / elapsed:,.0f} chars/s", refresh=False)
        self._bar.update(n)


@contextlib.contextmanager
def progress_bar(
    *, total: int, desc: str, unit: str, enabled: bool = True, position: int | None = None
) -> Iterator[StageBar]:
    """``position`` 1 puts the bar of a stage that runs beside another on the line below it."""
    with tqdm(
        total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
        mininterval=0.5, position=position,
    ) as bar:  # fmt: skip
        yield StageBar(bar)
