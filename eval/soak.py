"""Sustained load: a mix of ask, search, streamed ask and admin upload/delete against a real server.

    python -m eval.soak [--duration 600] [--concurrency 4] [--interval 60] [--max-rss-growth-mb 150]
                        [--url URL --token T --pid PID] [--data-dir var]

Without ``--url`` it serves a copy of DATA_DIR's index with an admin token of
its own. Workers pick, per request: ask 40%, search 30%, streamed ask 20%,
admin 10% (upload a small new document, wait for its job, delete it; one
admin change at a time, as the service runs them one at a time anyway).
Every interval it prints, per kind, the requests, errors and latency
p50/p95/p99, and the server's resident memory (with its child processes:
the upload reader). Memory growth is counted from the end of the first
interval, when the allocator, caches and upload reader have reached their
working size; growth beyond ``--max-rss-growth-mb`` (150 MB) or any error
makes the exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import secrets
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from eval.server import start_server
from index.quality.gold import load_questions
from index.quality.metrics import percentile

KINDS = ("ask", "search", "stream", "admin")
WEIGHTS = (40, 30, 20, 10)
DEFAULT_MAX_RSS_GROWTH_MB = 150.0
JOB_TIMEOUT_S = 300.0


@dataclass
class Interval:
    index: int
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rss_mb: float = 0.0


@dataclass
class SoakReport:
    intervals: list[Interval]
    baseline_rss_mb: float
    final_rss_mb: float
    max_rss_growth_mb: float
    error_samples: list[str]
    warm_rss_mb: float = 0.0

    @property
    def errors(self) -> int:
        return sum(sum(i.errors.values()) for i in self.intervals)

    @property
    def requests(self) -> int:
        return sum(len(v) for i in self.intervals for v in i.latencies.values())

    @property
    def rss_growth_mb(self) -> float:
        return self.final_rss_mb - self.baseline_rss_mb

    @property
    def ok(self) -> bool:
        return self.errors == 0 and self.rss_growth_mb <= self.max_rss_growth_mb


def rss_mb(pid: int | None) -> float:
    """Resident memory of the process and its children, in MB (0 when unknown)."""
    if pid is None:
        return 0.0
    try:
        process = psutil.Process(pid)
        processes = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0
    for each in processes:
        with contextlib.suppress(psutil.Error):
            total += each.memory_info().rss
    return total / 1e6


class Soak:
    def __init__(self, url: str, token: str | None, *, seed: int = 0) -> None:
        self.url, self.token = url, token
        self.questions = [q.question for q in load_questions()]
        self.admin_lock = threading.Lock()
        self.random = random.Random(seed)
        self.error_samples: list[str] = []

    # -- one request of each kind; each raises on anything but a correct answer --
    def ask(self, client: httpx.Client) -> None:
        response = client.post("/api/ask", json={"question": self.random.choice(self.questions), "top_k": 5})
        body = _json(response, 200)
        assert "answer" in body and isinstance(body["citations"], list), body

    def search(self, client: httpx.Client) -> None:
        response = client.post("/api/search", json={"query": self.random.choice(self.questions), "top_k": 10})
        assert isinstance(_json(response, 200)["results"], list)

    def stream(self, client: httpx.Client) -> None:
        question = self.random.choice(self.questions)
        with client.stream("POST", "/api/ask", json={"question": question, "stream": True}) as response:
            text = response.read().decode()
        assert response.status_code == 200, f"{response.status_code}: {text[:300]}"
        events = [line[len("event: ") :] for line in text.splitlines() if line.startswith("event: ")]
        assert events and events[0] == "citations" and events[-1] == "done", events[-3:]

    def admin(self, client: httpx.Client) -> None:
        """Upload a new small document, wait until it is served, delete it."""
        headers = {"Authorization": f"Bearer {self.token}"}
        marker = secrets.token_hex(4)
        content = (
            f"关于乡镇服务事项{marker}的通知\n一、总体要求\n各乡镇设立第{marker}号便民服务窗口，配备工作人员三名。\n"
            f"二、保障措施\n县财政安排专项经费{len(marker)}十万元，用于窗口建设。\n"
        ).encode()
        response = client.post("/api/documents", headers=headers, files={"files": (f"soak-{marker}.txt", content)})
        job = _json(response, 202)["jobs"][0]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while job["state"] in ("queued", "running"):
            assert time.monotonic() < deadline, f"job {job['id']} did not finish"
            time.sleep(0.2)
            job = _json(client.get(f"/api/jobs/{job['id']}", headers=headers), 200)
        assert job["state"] == "done", job
        deleted = _json(client.delete(f"/api/documents/{job['doc_id']}", headers=headers), 200)
        assert deleted["deleted"], deleted

    # -- running --
    def one(self, client: httpx.Client, kind: str) -> tuple[str, float, str | None]:
        if kind == "admin" and (not self.token or not self.admin_lock.acquire(blocking=False)):
            kind = "search"  # one admin change at a time; the others keep reading
        elif kind == "admin":
            try:
                return self._timed(client, kind)
            finally:
                self.admin_lock.release()
        return self._timed(client, kind)

    def _timed(self, client: httpx.Client, kind: str) -> tuple[str, float, str | None]:
        started = time.perf_counter()
        error = None
        try:
            getattr(self, kind)(client)
        except Exception as exc:  # every failure is counted and sampled, none stops the soak
            error = f"{kind}: {type(exc).__name__}: {str(exc)[:300]}"
        return kind, (time.perf_counter() - started) * 1000, error


def _json(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, f"{response.request.method} {response.request.url.path}: " + (
        f"{response.status_code} {response.text[:300]}"
    )
    return response.json()


def run_soak(
    url: str,
    token: str | None,
    pid: int | None,
    *,
    duration: float,
    concurrency: int = 4,
    interval: float = 60.0,
    max_rss_growth_mb: float = DEFAULT_MAX_RSS_GROWTH_MB,
    seed: int = 0,
    out=sys.stdout,
) -> SoakReport:
    soak = Soak(url, token, seed=seed)
    with httpx.Client(base_url=url, timeout=120.0) as client:
        for kind in KINDS:  # warm-up: every path once (model, reader process, a build)
            _, _, error = soak.one(client, kind)
            if error:
                soak.error_samples.append(f"warm-up {error}")
    baseline = rss_mb(pid)
    print(f"soak {url}: {duration:g} s, {concurrency} workers, baseline RSS {baseline:.0f} MB", file=out, flush=True)
    intervals: list[Interval] = [Interval(0)]
    lock = threading.Lock()
    started = time.monotonic()
    stop_at = started + duration

    def worker(number: int) -> None:
        chooser = random.Random(seed * 1000 + number)
        with httpx.Client(base_url=url, timeout=120.0) as http:
            while time.monotonic() < stop_at:
                kind, ms, error = soak.one(http, chooser.choices(KINDS, WEIGHTS)[0])
                with lock:
                    current = intervals[-1]
                    current.latencies[kind].append(ms)
                    if error:
                        current.errors[kind] += 1
                        if len(soak.error_samples) < 20:
                            soak.error_samples.append(error)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True) for n in range(concurrency)]
    for thread in threads:
        thread.start()
    print(header(), file=out, flush=True)
    while any(t.is_alive() for t in threads):
        next_mark = started + interval * (len(intervals))
        while time.monotonic() < min(next_mark, stop_at) and any(t.is_alive() for t in threads):
            time.sleep(0.2)
        with lock:
            closing = intervals[-1]
            closing.rss_mb = rss_mb(pid)
            if time.monotonic() < stop_at:
                intervals.append(Interval(len(intervals)))
        print(describe_interval(closing, interval), file=out, flush=True)
        if time.monotonic() >= stop_at:
            break
    for thread in threads:
        thread.join()
    last = intervals[-1]
    if not last.rss_mb:
        last.rss_mb = rss_mb(pid)
    # Growth is counted from the end of the first interval: by then the allocator, the caches and the
    # upload reader have reached their working size, and what still grows is what a long run would see.
    settled = intervals[0].rss_mb if len(intervals) > 1 and intervals[0].rss_mb else baseline
    report = SoakReport(intervals, settled, rss_mb(pid), max_rss_growth_mb, soak.error_samples, baseline)
    print(summary(report), file=out, flush=True)
    return report


def header() -> str:
    columns = " ".join(f"{kind + ' n/err p50/p95/p99 ms':>34}" for kind in KINDS)
    return f"{'min':>5} {columns} {'RSS MB':>8}"


def describe_interval(interval: Interval, length: float) -> str:
    cells = []
    for kind in KINDS:
        values = interval.latencies.get(kind, [])
        if values:
            p50, p95, p99 = (percentile(values, q) for q in (50, 95, 99))
            cells.append(f"{len(values):>5}/{interval.errors.get(kind, 0):<3} {p50:>7.0f}/{p95:>7.0f}/{p99:>7.0f}")
        else:
            cells.append(f"{'-':>34}")
    label = f"{(interval.index + 1) * length / 60:.1f}"
    return f"{label:>5} " + " ".join(f"{c:>34}" for c in cells) + f" {interval.rss_mb:>8.0f}"


def summary(report: SoakReport) -> str:
    lines = [
        f"requests {report.requests}, errors {report.errors}; RSS after warm-up {report.warm_rss_mb:.0f} MB,"
        f" after the first interval {report.baseline_rss_mb:.0f} MB, at the end {report.final_rss_mb:.0f} MB"
        f" (growth {report.rss_growth_mb:+.0f} MB, bound {report.max_rss_growth_mb:g} MB)",
        "OK" if report.ok else "FAILED",
    ]
    lines.extend(f"  {sample}" for sample in report.error_samples)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load (default 600)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per report line (default 60)")
    parser.add_argument("--max-rss-growth-mb", type=float, default=DEFAULT_MAX_RSS_GROWTH_MB)
    parser.add_argument("--url", help="soak a running server instead of starting one")
    parser.add_argument("--token", help="its admin token (without one, no admin changes are made)")
    parser.add_argument("--pid", type=int, help="its process id, for memory figures")
    parser.add_argument("--data-dir", type=Path, default=Path("var"), help="index to copy and serve (default var)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    server = None
    url, token, pid = args.url, args.token, args.pid
    if url is None:
        token = secrets.token_urlsafe(24)
        server = start_server(args.data_dir, {"POLICYQA_ADMIN_TOKEN": token, "POLICYQA_BUILD_ON_START": "true"})
        url, pid = server.url, server.pid
    try:
        report = run_soak(
            url, token, pid, duration=args.duration, concurrency=args.concurrency, interval=args.interval,
            max_rss_growth_mb=args.max_rss_growth_mb, seed=args.seed,
        )  # fmt: skip
    finally:
        log = server.stop() if server else ""
    if server and "Traceback" in log:
        saved = Path("soak-server.log").resolve()
        saved.write_text(log, encoding="utf-8")
        print(f"the server log has a traceback; the log is in {saved}")
        return 1
    if args.json:
        args.json.write_text(json.dumps(figures(report), indent=2))
    return 0 if report.ok else 1


def figures(report: SoakReport) -> dict:
    return {
        "requests": report.requests,
        "errors": report.errors,
        "baseline_rss_mb": round(report.baseline_rss_mb, 1),
        "final_rss_mb": round(report.final_rss_mb, 1),
        "intervals": [
            {
                "rss_mb": round(i.rss_mb, 1),
                **{
                    kind: {"n": len(v), "errors": i.errors.get(kind, 0), "p50_ms": percentile(v, 50)}
                    for kind, v in i.latencies.items()
                },
            }
            for i in report.intervals
        ],
    }


if __name__ == "__main__":
    sys.exit(main())
