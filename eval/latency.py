"""Latency of /api/ask and /api/search over real HTTP, on the gold questions.

    python -m eval.latency [--url http://127.0.0.1:8000] [--rounds 3] [--concurrency 1]

Starts nothing: point it at a running ``policyqa serve``. Prints median, p95,
p99, throughput and the server's build; compare figures as ratios within one run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from index.quality.gold import load_questions
from index.quality.metrics import percentile


def measure(client: httpx.Client, path: str, field: str, questions: list[str], concurrency: int) -> dict[str, float]:
    def one(question: str) -> float:
        started = time.perf_counter()
        response = client.post(path, json={field: question, "top_k": 5})
        response.raise_for_status()
        return (time.perf_counter() - started) * 1000

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        latencies = list(pool.map(one, questions))
    elapsed = time.perf_counter() - started
    return {
        "n": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "req_per_s": len(latencies) / elapsed,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args(argv)
    questions = [q.question for q in load_questions()] * args.rounds
    with httpx.Client(base_url=args.url, timeout=60) as client:
        health = client.get("/api/health").json()
        print(f"build {health['build_id']}: {health['documents']} documents, {health['chunks']} chunks")
        measure(client, "/api/ask", "question", questions[:5], 1)  # warm up
        for path, field in (("/api/search", "query"), ("/api/ask", "question")):
            figures = measure(client, path, field, questions, args.concurrency)
            print(f"{path:<12} " + "  ".join(f"{k} {v:.1f}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
