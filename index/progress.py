"""A progress bar for long work, on stderr, that can be switched off."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from tqdm import tqdm


@contextlib.contextmanager
def progress_bar(*, total: int, desc: str, unit: str, enabled: bool = True) -> Iterator[tqdm]:
    with tqdm(total=total, desc=desc, unit=unit, disable=not enabled, file=sys.stderr, dynamic_ncols=True) as bar:
        yield bar
