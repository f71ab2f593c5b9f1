"""The chaos soak's kill loop: a driver of changes, and kills aimed at adds, replacements, deletes, merges or idle.

``eval/chaos.py`` runs it on one local server, ``eval/chaos_replicas.py`` on replicas over Milvus.
"""

from __future__ import annotations

import random
import secrets
import statistics
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path

import httpx
from tqdm import tqdm

from eval.chaos_checks import Checker, Counts
from eval.chaos_servers import MergeWatch, ServerProcess, StartError
from eval.chaos_state import Ledger, Tracked, Versions

CHANGES = ("add", "replace", "delete")
PHASES = (*CHANGES, "merge", "idle")
REQUEST_TIMEOUT_S = 120.0
JOB_TIMEOUT_S = 300.0
DEFAULT_ESTIMATE_S = {"add": 2.5, "replace": 2.5, "delete": 0.4}  # until answered changes were timed
LIVE_DOCUMENTS = (3, 12)  # the generated documents kept live: fewer, an add; more, a delete
MERGE_WAIT_ADDS = 10  # adds sent while waiting for a merge to strike in


@dataclass
class Kill:
    """What a kill interrupted: ``phase`` is merge (a merge segment being written), else the change in flight
    on the killed server, else idle."""

    phase: str
    request: str | None
    merging: bool
    server: str


class Driver:
    """Sends changes one at a time, telling the ledger before each request and when it is answered."""

    def __init__(self, ledger: Ledger, token: str, rng: random.Random, counts: Counts) -> None:
        self.ledger, self.rng, self.counts = ledger, rng, counts
        self.headers = {"Authorization": f"Bearer {token}"}
        self.versions = Versions(rng)
        self.numbers = iter(range(1, 10**6))
        self.in_flight: tuple[str, str] | None = None  # (kind, url) of the change being made
        self.durations: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=12))
        self.warm: set[str] = set()  # servers (by url: a restart takes a new port) that made a change since starting
        self.stop = threading.Event()

    def estimate(self, kind: str) -> float:
        """How long such a change usually takes until answered (seconds), on a server that made one before:
        a restarted server's first change also loads the passage embedder (up to 12 s here)."""
        seen = self.durations[kind]
        return statistics.median(seen) if seen else DEFAULT_ESTIMATE_S[kind]

    def pick(self, kind: str) -> Tracked | None:
        live = self.ledger.live()
        return self.rng.choice(live) if kind != "add" and live else None

    def change(self, url: str, kind: str, document: Tracked | None = None) -> bool:
        """One change; True when answered as done. A server killed under it leaves it unanswered."""
        if kind == "add":
            document = self.ledger.new_document(next(self.numbers), secrets.token_hex(3))
        version = None if kind == "delete" else self.versions.new()
        self.ledger.sent(document, version)
        self.counts.changes_sent[kind] += 1
        self.in_flight, started = (kind, url), time.monotonic()
        try:
            with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT_S, headers=self.headers) as client:
                done = self._send(client, kind, document, version)
        except httpx.TransportError:  # killed under it (or timed out): not answered
            done = False
        finally:
            self.in_flight = None
        if done:
            self.ledger.answered(document)
            self.counts.changes_answered[kind] += 1
            if url in self.warm:
                self.durations[kind].append(time.monotonic() - started)
            self.warm.add(url)
        else:
            self.ledger.unanswered()
        return done

    def _send(self, client: httpx.Client, kind: str, document: Tracked, version) -> bool:
        if kind == "delete":
            response = client.delete(f"/api/documents/{document.doc_id}")
            return self._expect(response, 200) and response.json()["deleted"]
        upload = (document.filename, version.text(document.number).encode("utf-8"), "text/plain")
        if kind == "add":
            response = client.post("/api/documents", files={"files": upload})
            job = response.json()["jobs"][0] if self._expect(response, 202) else None
        else:
            response = client.put(f"/api/documents/{document.doc_id}", files={"file": upload})
            job = response.json() if self._expect(response, 202) else None
        if job is None:
            return False
        if job["doc_id"] != document.doc_id:
            self.counts.error(f"{kind}: job for {job['doc_id']!r}, expected {document.doc_id!r}")
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.05)
            response = client.get(f"/api/jobs/{job['id']}")
            if not self._expect(response, 200):
                return False
            job = response.json()
        if job["state"] != "done" or job["duplicate"]:
            self.counts.error(f"{kind} {document.doc_id}: job {job['state']}: {job.get('error') or job['message']}")
        return job["state"] == "done" and not job["duplicate"]

    def _expect(self, response: httpx.Response, status: int) -> bool:
        if response.status_code != status:
            self.counts.error(f"{response.request.method} {response.request.url.path}: {response.status_code}"
                              f" {response.text[:200]}")  # fmt: skip
        return response.status_code == status


class Chaos:
    """The kill loop over one or more servers; ``data_dirs`` are scanned for deleted text after each restart."""

    def __init__(self, servers: list[ServerProcess], token: str, *, seed: int, data_dirs: list[Path],
                 merges: bool = True) -> None:  # fmt: skip
        self.servers, self.rng, self.merges = servers, random.Random(seed), merges
        self.counts = Counts()
        self.ledger = Ledger()
        self.driver = Driver(self.ledger, token, self.rng, self.counts)
        self.checker = Checker(self.ledger, self.counts, token, data_dirs, self.rng)
        self.merge_watch = MergeWatch(data_dirs[0]) if merges else None

    # -- between kills --------------------------------------------------------
    def url(self) -> str:
        return self.rng.choice([s for s in self.servers if s.alive()]).url

    def next_change(self) -> str:
        live = len(self.ledger.live())
        if live < LIVE_DOCUMENTS[0]:
            return "add"
        if live > LIVE_DOCUMENTS[1]:
            return "delete"
        return self.rng.choices(CHANGES, (2, 1, 1))[0]

    def settle(self, changes: int) -> None:
        """A few changes left to finish (kept apart from the kill, and to warm the embedder after a start)."""
        for _ in range(changes):
            kind = self.next_change()
            self.driver.change(self.url(), kind, self.driver.pick(kind))

    def merging(self) -> bool:
        return self.merge_watch is not None and self.merge_watch()

    # -- a kill ---------------------------------------------------------------
    def strike(self, aim: str) -> Kill:
        """Start what the kill aims at, SIGKILL a server at a random moment of it; what was under way."""
        victim = self.rng.choice(self.servers)
        thread = None
        if aim in CHANGES:
            kind = "add" if not self.ledger.live() else aim
            url = victim.url if self.rng.random() < 0.75 else self.url()  # most often the victim's own change
            thread = threading.Thread(target=self.driver.change, args=(url, kind, self.driver.pick(kind)))
            thread.start()
            time.sleep(self.rng.uniform(0.0, 1.2 * self.driver.estimate(kind)))
        elif aim == "merge":
            thread = threading.Thread(target=self._adds, args=(victim.url,))
            thread.start()
            while thread.is_alive() and not self.merging():  # a merge of these tiny segments takes ~20 ms
                time.sleep(0.002)
        else:
            deadline = time.monotonic() + 10
            while self.merging() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(self.rng.uniform(0.0, 1.0))
        merging, in_flight = self.merging(), self.driver.in_flight
        request = in_flight[0] if in_flight and in_flight[1] == victim.url else None
        victim.kill()
        self.driver.stop.set()
        if thread is not None:
            thread.join()
        self.driver.stop.clear()
        return Kill("merge" if merging else request or "idle", request, merging, victim.name)

    def _adds(self, url: str) -> None:
        for _ in range(MERGE_WAIT_ADDS):
            if self.driver.stop.is_set() or not self.driver.change(url, "add"):
                return

    def restart(self, server: ServerProcess) -> bool:
        """Start a killed server again; False when it would not come up (counted as a reload error)."""
        try:
            server.start()
        except StartError as exc:
            self.counts.reload_error(f"{server.name} start {server.starts}: {exc}")
            return False
        self.checker.startup_log(server)
        if self.merge_watch is not None:
            self.merge_watch.restarted()
        return True

    # -- the whole run --------------------------------------------------------
    def run(self, kills: int, max_minutes: float, aims: tuple[str, ...] = PHASES) -> None:
        started = time.monotonic()
        aims = [p for p in aims if p != "merge" or self.merges]
        plan: list[str] = []
        self.checker.record_seed_answers(self.servers[0].url)
        self.settle(2)
        with tqdm(total=kills, desc="kills", unit="kill") as progress:
            while self.counts.kills < kills and time.monotonic() - started < max_minutes * 60:
                if not plan:
                    plan = self.rng.sample(aims, len(aims))
                self.settle(self.rng.randint(1, 2))
                aim = plan.pop()
                kill = self.strike(aim)
                self.counts.kill(aim, kill.phase, kill.request, kill.merging)
                server = next(s for s in self.servers if s.name == kill.server)
                if not self.restart(server):
                    break
                self.checker.check([s.url for s in self.servers], restarted=server.url)
                progress.update(1)
                progress.set_postfix(self.counts.faults(), refresh=False)
        if all(s.alive() for s in self.servers):
            self.checker.check([s.url for s in self.servers], restarted=self.servers[0].url, final=True)
        self.counts.wall_s = time.monotonic() - started
