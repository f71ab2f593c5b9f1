"""The trash's sweep: expired entries purged in the background, whether or not anyone looks at the trash.

One thread per server, started by the app's lifespan. It sweeps once at the start (also parts an interrupted
delete left, and everything when the window is now 0), then, while the window is open, at a tenth of it, at
most a minute apart. Every replica sweeps: a purge another replica made first is skipped.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from service import trash
from service.stores.records import RecordStore

logger = logging.getLogger(__name__)

SWEEP_EVERY_S = 60.0
SHORTEST_SWEEP_S = 0.5  # for windows of seconds (tests)


class TrashSweeper:
    def __init__(self, records: RecordStore, retention: timedelta) -> None:
        self.records, self.retention = records, retention
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="policyqa-trash-sweep", daemon=True)

    @property
    def interval_s(self) -> float:
        return max(SHORTEST_SWEEP_S, min(SWEEP_EVERY_S, self.retention.total_seconds() / 10))

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        self._sweep(orphans=True)
        if self.retention <= timedelta(0):
            return  # nothing is kept from now on
        while not self._stop.wait(self.interval_s):
            self._sweep(orphans=False)

    def _sweep(self, *, orphans: bool) -> None:
        try:
            trash.sweep(self.records, self.retention, orphans=orphans)
        except Exception:  # the next sweep tries again; every trash call purges what has expired as well
            logger.exception("sweeping the trash failed")

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
