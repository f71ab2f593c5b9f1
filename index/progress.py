"""One progress bar per stage of long work, on stderr, with its rates; it can be switched off.

Each bar counts its own unit (documents, passages, chunks) and shows the
rate in characters per second beside it, so stages of different units
compare. A streamed build knows how many documents are coming but not how
many chunks they make: its later stages' totals are extrapolated from the
share of the documents seen so far (``extrapolate``), so they too show an
ETA. Nothing else prints a bar while one runs: sentence-transformers' own
"Batches" bar is turned off where it is called.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

from tqdm import tqdm


class StageBar:
    """A tqdm bar whose postfix shows characters/s (and the unit's rate, which tqdm shows anyway)."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar
        self._started = time.perf_counter()
        self.characters = 0
        self.count = 0  # kept here: a disabled tqdm bar counts nothing

    def update(self, n: int, *, characters: int = 0) -> None:
        self.characters += characters
        self.count += n
        elapsed = max(time.perf_counter() - self._started, 1e-9)
        if characters:
            self._bar.set_postfix_str(f"{self.characters / elapsed:,.0f} chars/s", refresh=False)
        self._bar.update(n)

    def extrapolate(self, share: float) -> None:
        """Set the total to what the count would reach if it grew on at its rate per input: ``share`` is
        the part of the input (documents) seen so far; at 1 the total is the count."""
        if share <= 0:
            return
        total = self.count if share >= 1 else max(self.count, round(self.count / share))
        if total != self._bar.total:
            self._bar.total = total
            self._bar.refresh()


@contextlib.contextmanager
def progress_bar(
    *, total: int | None, desc: str, unit: str, enabled: bool = True, position: int | None = None
) -> Iterator[StageBar]:
    """``position`` 1 puts the bar of a stage that runs beside another on the line below it."""
    with tqdm(
        total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True,
        mininterval=0.5, position=position,
    ) as bar:  # fmt: skip
        yield StageBar(bar)


class BatchedStageBars:
    """The embedding and BM25 stages of a build that comes in batches: one bar each over the whole build,
    and ``on_progress`` told the vectors made over all batches (against their extrapolated total)."""

    def __init__(self, *, enabled: bool, on_progress: Callable[[int, int], None] | None = None) -> None:
        self._enabled = enabled
        self._on_progress = on_progress
        self._stack = contextlib.ExitStack()
        self.embedding: StageBar | None = None
        self.lexical: StageBar | None = None
        self._expected_vectors = 0

    def __enter__(self) -> BatchedStageBars:
        self.embedding = self._stack.enter_context(
            progress_bar(total=None, desc="embedding", unit="vector", enabled=self._enabled, position=1)
        )
        self.lexical = self._stack.enter_context(
            progress_bar(total=None, desc="lexical", unit="chunk", enabled=self._enabled, position=2)
        )
        return self

    def __exit__(self, *exc_info) -> None:
        self._stack.close()

    @contextlib.contextmanager
    def embedding_batch(self, vectors: int, characters: int) -> Iterator[Callable[[int, int], None]]:
        """A batch of ``vectors`` to make from ``characters`` of text: yields the embedding stage's
        ``on_progress`` for it (done, total within the batch), and counts the batch whole when it ends."""
        made_before = self.embedding.count
        self._expected_vectors = max(self._expected_vectors, made_before + vectors)

        def progress(done: int, total: int) -> None:
            counted = self.embedding.count - made_before
            self.embedding.update(done - counted, characters=characters * (done - counted) // max(total, 1))
            if self._on_progress is not None:
                self._on_progress(made_before + done, max(self._expected_vectors, made_before + total))

        yield progress
        if self.embedding.count - made_before < vectors:
            progress(vectors, vectors)

    def extrapolate(self, share: float) -> None:
        """``share``: the part of the build's documents read so far (0 when unknown)."""
        self.embedding.extrapolate(share)
        self.lexical.extrapolate(share)
        if share > 0:
            self._expected_vectors = max(self._expected_vectors, round(self.embedding.count / min(share, 1.0)))
