"""What the chaos soak checks after each restart, and the counts it reports (``eval/chaos.py``)."""

from __future__ import annotations

import random
import re
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from eval.chaos_state import ABSENT, Ledger, Retired, observed_state, traces
from index.quality.gold import load_questions

SEED_QUESTIONS = 5
SAMPLES = 30
OLD_MARKERS_PER_CHECK = 3  # retired markers searched again at each restart (all of them at the end)
LIVE_PER_CHECK = 2  # live documents looked for by their marker at each restart
REPLICA_TRIES = 3


@dataclass
class Counts:
    """Everything counted; the faults must all be 0."""

    kills: int = 0
    kills_by_aim: Counter = field(default_factory=Counter)
    kills_by_phase: Counter = field(default_factory=Counter)
    kills_by_request: Counter = field(default_factory=Counter)
    kills_during_merge: int = 0
    changes_sent: Counter = field(default_factory=Counter)
    changes_answered: Counter = field(default_factory=Counter)
    unanswered_changes_landed: int = 0
    change_errors: int = 0
    lost_acknowledged_changes: int = 0
    resurrected_deletes: int = 0
    torn_changes: int = 0
    unexpected_documents: int = 0
    seed_documents_lost: int = 0
    deleted_text_in_answers: set[str] = field(default_factory=set)
    deleted_text_on_disk: set[str] = field(default_factory=set)
    unanswered_deleted_text_on_disk: set[str] = field(default_factory=set)
    unanswered_deleted_text_kept: set[str] = field(default_factory=set)  # still there after a later change
    live_not_found: int = 0
    reload_errors: int = 0
    replicas_disagree: int = 0
    seed_answers_changed: int = 0
    server_log_tracebacks: int = 0
    merges_logged: int = 0
    purges_logged: int = 0
    checks: int = 0
    wall_s: float = 0.0
    restart_s: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    notes: dict[str, object] = field(default_factory=dict)

    def sample(self, text: str) -> None:
        if len(self.samples) < SAMPLES:
            self.samples.append(text[:600])

    def error(self, text: str) -> None:
        self.change_errors += 1
        self.sample(f"change error: {text}")

    def reload_error(self, text: str) -> None:
        self.reload_errors += 1
        self.sample(f"reload error: {text}")

    def kill(self, aim: str, phase: str, request: str | None, merging: bool) -> None:
        self.kills += 1
        self.kills_by_aim[aim] += 1
        self.kills_by_phase[phase] += 1
        self.kills_by_request[request or "none"] += 1
        self.kills_during_merge += merging

    def faults(self) -> dict[str, int]:
        return {
            "lost": self.lost_acknowledged_changes,
            "resurrected": self.resurrected_deletes,
            "torn": self.torn_changes,
            "on_disk": len(self.deleted_text_on_disk),
            "kept": len(self.unanswered_deleted_text_kept),
            "in_answers": len(self.deleted_text_in_answers),
            "reload": self.reload_errors,
            "replicas": self.replicas_disagree,
            "seeds": self.seed_answers_changed,
        }

    @property
    def ok(self) -> bool:
        others = (self.change_errors, self.unexpected_documents, self.seed_documents_lost, self.live_not_found,
                  self.server_log_tracebacks)  # fmt: skip
        return self.kills > 0 and not any(self.faults().values()) and not any(others)

    def report(self, **about) -> dict:
        answered = sum(self.changes_answered.values())
        return {
            **about,
            "kills": self.kills,
            "kills_by_phase": dict(self.kills_by_phase),
            "kills_aimed_at": dict(self.kills_by_aim),
            "kills_by_request_in_flight": dict(self.kills_by_request),
            "kills_during_merge": self.kills_during_merge,
            "changes_sent": dict(self.changes_sent),
            "acknowledged_changes": answered,
            "acknowledged_by_kind": dict(self.changes_answered),
            "unacknowledged_changes": sum(self.changes_sent.values()) - answered,
            "unacknowledged_changes_landed": self.unanswered_changes_landed,
            "lost_acknowledged_changes": self.lost_acknowledged_changes,
            "resurrected_deletes": self.resurrected_deletes,
            "torn_changes": self.torn_changes,
            "deleted_text_in_answers": len(self.deleted_text_in_answers),
            "deleted_text_found_on_disk": len(self.deleted_text_on_disk),
            "unacknowledged_deleted_text_on_disk": len(self.unanswered_deleted_text_on_disk),
            "unacknowledged_deleted_text_on_disk_after_the_next_change": len(self.unanswered_deleted_text_kept),
            "reload_errors": self.reload_errors,
            "replicas_disagree": self.replicas_disagree,
            "seed_answers_changed": self.seed_answers_changed,
            "seed_documents_lost": self.seed_documents_lost,
            "unexpected_documents": self.unexpected_documents,
            "live_documents_not_found_by_their_marker": self.live_not_found,
            "change_errors": self.change_errors,
            "server_log_tracebacks": self.server_log_tracebacks,
            "merges_logged": self.merges_logged,
            "purges_logged": self.purges_logged,
            "checks": self.checks,
            "restart_s": _spread(self.restart_s),
            "wall_s": round(self.wall_s, 1),
            **self.notes,
            "ok": self.ok,
            "samples": self.samples,
        }


def _spread(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"median": round(statistics.median(values), 1), "max": round(max(values), 1), "n": len(values)}


def top_document(client: httpx.Client, question: str) -> str | None:
    response = client.post("/api/ask", json={"question": question, "top_k": 5})
    response.raise_for_status()
    citations = response.json()["citations"]
    return citations[0]["doc_id"] if citations else None


class Checker:
    """The checks made after each restart, against the ledger of changes sent and answered."""

    def __init__(self, ledger: Ledger, counts: Counts, token: str, data_dirs: list[Path], rng: random.Random) -> None:
        self.ledger, self.counts, self.rng = ledger, counts, rng
        self.headers = {"Authorization": f"Bearer {token}"}
        self.data_dirs = data_dirs
        self.seed_documents: set[str] = set()
        self.seed_answers: dict[str, str | None] = {}
        self.searched: set[str] = set()  # retired markers already looked for in answers
        self.on_disk_before: set[str] = set()  # versions of unanswered changes on disk at the last check
        self.answered_before = 0  # changes answered by then

    def client(self, url: str) -> httpx.Client:
        return httpx.Client(base_url=url, timeout=120.0, headers=self.headers)

    def record_seed_answers(self, url: str) -> None:
        """Before any change: the documents served, and the top document of the first gold questions
        answered from their own document."""
        with self.client(url) as client:
            self.seed_documents = {d["doc_id"] for d in client.get("/api/documents").json()["data"]}
            for question in (q for q in load_questions() if q.answerable):
                if top_document(client, question.question) == question.doc_id:
                    self.seed_answers[question.question] = question.doc_id
                if len(self.seed_answers) == SEED_QUESTIONS:
                    break

    def startup_log(self, server) -> None:
        """An error logged while the server loaded is a reload error."""
        log = server.run_log()
        if "Traceback" in log or re.search(r"\bERROR\b", log):
            self.counts.reload_error(f"{server.name} start {server.starts} logged:\n{log[-1500:]}")

    def check(self, urls: list[str], *, restarted: str, final: bool = False) -> None:
        self.counts.checks += 1
        with self.client(restarted) as client:
            listing = self._documents(client)
            for url in urls:
                if url != restarted:
                    self._same_listing(url, listing)
            self._answers(client, final)
            self._seeds(client)
        self._disk()
        self.counts.unanswered_changes_landed = self.ledger.landed_unacknowledged

    # -- each kind of check ---------------------------------------------------
    def _documents(self, client: httpx.Client) -> set[str]:
        health = client.get("/api/health").json()
        listing = {d["doc_id"] for d in client.get("/api/documents").json()["data"]}
        if health["documents"] != len(listing):
            self.counts.reload_error(f"health counts {health['documents']} documents, the listing {len(listing)}")
        if lost := self.seed_documents - listing:
            self.counts.seed_documents_lost += len(lost)
            self.counts.sample(f"seed documents gone: {sorted(lost)}")
            self.seed_documents -= lost
        for document in self.ledger.documents.values():
            listed = document.doc_id in listing
            text = client.get(f"/api/documents/{document.doc_id}").json().get("text") if listed else None
            expected = sorted(map(str, document.possible))
            fault = self.ledger.observe(document, observed_state(listed, text))
            if fault is not None:
                self._fault(fault, f"{document.doc_id}: expected one of {expected}, found {text!r:.300}")
        if unexpected := listing - self.seed_documents - set(self.ledger.documents):
            self.counts.unexpected_documents += len(unexpected)
            self.counts.sample(f"documents nobody added: {sorted(unexpected)}")
        return listing

    def _fault(self, kind: str, detail: str) -> None:
        if kind == "lost":
            self.counts.lost_acknowledged_changes += 1
        elif kind == "resurrected":
            self.counts.resurrected_deletes += 1
        else:
            self.counts.torn_changes += 1
        self.counts.sample(f"{kind}: {detail}")

    def _same_listing(self, url: str, listing: set[str]) -> None:
        """Another replica lists the same documents (it reads the shared index; it looks for a newer
        generation at most once a second)."""
        with self.client(url) as client:
            for _ in range(REPLICA_TRIES):
                other = {d["doc_id"] for d in client.get("/api/documents").json()["data"]}
                if other == listing:
                    return
                time.sleep(1.0)
        self.counts.replicas_disagree += 1
        self.counts.sample(f"{url} lists {sorted(other ^ listing)} unlike the restarted replica")

    def _answers(self, client: httpx.Client, final: bool) -> None:
        """Retired markers (new ones, a few old ones; all at the end) in no search result or answer;
        a few live documents found by theirs."""
        new = [t for t in self.ledger.retired if t not in self.searched]
        old = sorted(self.searched)
        tokens = new + (old if final else self.rng.sample(old, min(OLD_MARKERS_PER_CHECK, len(old))))
        for token in tokens:
            hits = client.post("/api/search", json={"query": token, "top_k": 10}).json()["results"]
            self._served(self.ledger.retired[token], hits, "search")
            self.searched.add(token)
        if tokens:
            retired = self.ledger.retired[self.rng.choice(tokens)]
            body = client.post("/api/ask", json={"question": f"观测员{retired.version.name}的观测编号是多少？"}).json()
            self._served(retired, [{"text": body["answer"], "doc_id": ""}, *body["citations"]], "ask")
        for document in self.rng.sample(self.ledger.live(), min(LIVE_PER_CHECK, len(self.ledger.live()))):
            hits = client.post("/api/search", json={"query": document.certain, "top_k": 5}).json()["results"]
            if document.doc_id not in {h["doc_id"] for h in hits}:
                self.counts.live_not_found += 1
                self.counts.sample(f"{document.doc_id} not found by its marker {document.certain}")

    def _served(self, retired: Retired, hits: list[dict], where: str) -> None:
        absent = self.ledger.documents[retired.doc_id].possible == {ABSENT}
        for hit in hits:
            if any(n in hit["text"] for n in retired.version.needles) or (absent and hit["doc_id"] == retired.doc_id):
                if retired.version.token not in self.counts.deleted_text_in_answers:
                    self.counts.sample(f"{where} served retired {retired}: {hit['text'][:200]!r}")
                self.counts.deleted_text_in_answers.add(retired.version.token)

    def _disk(self) -> None:
        """Retired versions on disk: after an answered change, none ever; after an unanswered one that landed
        (killed between its commit and its purge), none once another change was answered since."""
        landed = {t: r for t, r in self.ledger.retired.items() if r.landed}
        found: dict[str, str] = {}
        for data_dir in self.data_dirs:
            found.update(traces(data_dir, [n for r in landed.values() for n in r.version.needles]))
        answered = sum(self.counts.changes_answered.values())
        unanswered_found = set()
        for token, retired in landed.items():
            where = [found[n] for n in retired.version.needles if n in found]
            if not where:
                continue
            if retired.acknowledged:
                if token not in self.counts.deleted_text_on_disk:
                    self.counts.sample(f"on disk after an acknowledged change: {retired} in {where}")
                self.counts.deleted_text_on_disk.add(token)
                continue
            unanswered_found.add(token)
            self.counts.unanswered_deleted_text_on_disk.add(token)
            if token in self.on_disk_before and answered > self.answered_before:
                if token not in self.counts.unanswered_deleted_text_kept:
                    self.counts.sample(f"on disk after an unacknowledged change that landed, and after the next"
                                       f" answered change: {retired} in {where}")  # fmt: skip
                self.counts.unanswered_deleted_text_kept.add(token)
        self.on_disk_before, self.answered_before = unanswered_found, answered

    def _seeds(self, client: httpx.Client) -> None:
        for question, expected in self.seed_answers.items():
            if (top := top_document(client, question)) != expected:
                self.counts.seed_answers_changed += 1
                self.counts.sample(f"seed question {question!r}: top document {top!r}, before {expected!r}")

    def server_log(self, log: str) -> None:
        """Tracebacks, merges and purges in a server's whole log (every run of it)."""
        self.counts.server_log_tracebacks += log.count("Traceback")
        self.counts.merges_logged += len(re.findall(r"merged \d+ segments", log))
        self.counts.purges_logged += log.count("purged deleted documents")
        if "Traceback" in log:
            at = log.index("Traceback")
            self.counts.sample(f"server log: {log[max(0, at - 300) : at + 1500]}")
