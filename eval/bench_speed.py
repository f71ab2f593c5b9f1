"""Indexing and question speed of this tree against a baseline revision, side by side in one run.

    python -m eval.bench_speed --baseline e20e593 [--chars 150000] [--duration 10] [--late-chunking]

The baseline is checked out into a temporary git worktree and run with the
same Python; each side gets its own data and models directory (the model is
converted, and exported, before anything is timed). Measured for each side:

- ``policyqa ingest`` of about 150k characters of encyclopedia-style passages
  (the seed documents re-templated as ``eval/scale_corpus.py`` does), wall
  time of the whole command, as characters/s;
- question embedding p50 over the gold questions, in a process of its own;
- ``/api/search`` p50 over HTTP with wrk at concurrency 1 and requests/s at
  concurrency 1 and 8, on the seed corpus, errors counted.

Needs ``wrk``. The machine is noisy: compare the ratios, within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The environment as given, before importing index (which sets OMP_WAIT_POLICY): each side runs with its own defaults.
GIVEN_ENVIRONMENT = dict(os.environ)

EMBED_PROBE = """
import json, statistics, sys, time
from pathlib import Path
try:
    from index.threads import apply, serving_plan
    apply(serving_plan())
except ImportError:
    pass
try:
    from service.engines import passage_embedder
except ImportError:  # a baseline from before service/engines.py
    from service.engine import passage_embedder
from service.settings import Settings
embedder = passage_embedder(Settings())
questions = [json.loads(line)["question"] for line in open(sys.argv[1], encoding="utf-8")]
for q in questions[:10]:
    embedder.embed_queries([q])
times = []
for q in questions:
    t = time.perf_counter(); embedder.embed_queries([q]); times.append((time.perf_counter() - t) * 1000)
print(json.dumps({"p50_ms": statistics.median(times)}))
"""


def write_corpus(target: Path, chars: int) -> int:
    """Seed documents re-templated, cut into ~500-character passages, one file each; total characters."""
    from eval.scale_corpus import generate_sources, seed_templates

    target.mkdir(parents=True)
    total, number = 0, 0
    for source in generate_sources(seed_templates(REPO / "docs_raw"), 10_000, seed=11):
        body = source.raw_text.replace("\n\n", "\n")
        for at in range(0, len(body) - 250, 500):
            number += 1
            text = f"{source.title}（{number}）\n{body[at : at + 500]}\n"
            (target / f"p{number:05d}.txt").write_text(text, encoding="utf-8")
            total += len(text)
            if total >= chars:
                return total
    return total


def _env(side: dict, data_dir: Path, **extra: str) -> dict:
    env = {**GIVEN_ENVIRONMENT, "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_MODELS_DIR": str(side["models"]), **extra}
    env.pop("PYTHONPATH", None)
    return env


def ingest_s(side: dict, docs: Path, data_dir: Path, env_extra: dict) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "service.cli", "ingest", str(docs), "--quiet"], cwd=side["tree"],
        env=_env(side, data_dir, **env_extra), check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def embed_p50(side: dict, data_dir: Path) -> float:
    out = subprocess.run(
        [sys.executable, "-c", EMBED_PROBE, str(REPO / "index" / "quality" / "questions.jsonl")], cwd=side["tree"],
        env=_env(side, data_dir), check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])["p50_ms"]


def http_figures(side: dict, data_dir: Path, duration: float) -> dict:
    from eval.http_load import free_port, start, wrk

    port = free_port()
    questions = [
        json.loads(line)["question"] for line in (REPO / "index" / "quality" / "questions.jsonl").open(encoding="utf-8")
    ]
    bodies = [json.dumps({"query": q, "top_k": 5}, ensure_ascii=False) for q in questions]
    command = [sys.executable, "-m", "service.cli", "serve", "--port", str(port)]
    env = {k: v for k, v in _env(side, data_dir, POLICYQA_LOG_LEVEL="warning").items() if k != "OMP_NUM_THREADS"}
    process = subprocess.Popen(command, cwd=side["tree"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        start_ok(start, port)
        url = f"http://127.0.0.1:{port}/api/search"
        wrk(url, bodies, 1, 2)  # warm-up
        one = wrk(url, bodies, 1, duration)
        time.sleep(1)
        eight = wrk(url, bodies, 8, duration)
    finally:
        process.terminate()
        process.wait()
    return {"p50_c1_ms": one["p50_ms"], "rps_c1": one["rps"], "rps_c8": eight["rps"],
            "p99_c8_ms": eight["p99_ms"], "errors": one["errors"] + eight["errors"]}  # fmt: skip


def start_ok(start, port: int, timeout: float = 300) -> None:
    import httpx

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"server on port {port} did not answer")


def measure(side: dict, docs: Path, work: Path, duration: float, env_extra: dict) -> dict:
    seed = work / f"{side['name']}-seed"
    ingest_s(side, REPO / "docs_raw", seed, env_extra)  # converts (and exports) the model, untimed
    row = {"ingest_s": ingest_s(side, docs, work / f"{side['name']}-bench", env_extra)}
    row["embed_p50_ms"] = statistics.median(embed_p50(side, seed) for _ in range(2))
    row.update(http_figures(side, seed, duration))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="e20e593", help="git revision to compare with")
    parser.add_argument("--chars", type=int, default=150_000)
    parser.add_argument("--duration", type=float, default=10, help="seconds of each wrk run")
    parser.add_argument("--late-chunking", action="store_true", help="ingest this tree with POLICYQA_LATE_CHUNKING")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="policyqa-speed-"))
    baseline_tree = work / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", str(baseline_tree), args.baseline], cwd=REPO, check=True,
                   capture_output=True)  # fmt: skip
    try:
        docs = work / "docs"
        chars = write_corpus(docs, args.chars)
        sides = [
            {"name": "baseline", "tree": baseline_tree, "models": work / "models-baseline"},
            {"name": "this tree", "tree": REPO, "models": work / "models-new"},
        ]
        extra = {"POLICYQA_LATE_CHUNKING": "true"} if args.late_chunking else {}
        rows = {s["name"]: measure(s, docs, work, args.duration, extra if s["tree"] == REPO else {}) for s in sides}
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(baseline_tree)], cwd=REPO, check=False)
        shutil.rmtree(work, ignore_errors=True)
    print_table(rows, chars, args)
    if args.json:
        args.json.write_text(json.dumps({"chars": chars, "rows": rows}, indent=2), encoding="utf-8")
    return 0


def print_table(rows: dict, chars: int, args) -> None:
    base, new = rows["baseline"], rows["this tree"]
    print(f"corpus: {chars} characters; baseline {args.baseline}; late chunking {args.late_chunking}")
    print(f"{'figure':<28}{'baseline':>12}{'this tree':>12}{'ratio':>9}")
    figures = [
        ("ingest chars/s", chars / base["ingest_s"], chars / new["ingest_s"]),
        ("ingest s", base["ingest_s"], new["ingest_s"]),
        ("question embed p50 ms", base["embed_p50_ms"], new["embed_p50_ms"]),
        ("search p50 c=1 ms", base["p50_c1_ms"], new["p50_c1_ms"]),
        ("search req/s c=1", base["rps_c1"], new["rps_c1"]),
        ("search req/s c=8", base["rps_c8"], new["rps_c8"]),
        ("search p99 c=8 ms", base["p99_c8_ms"], new["p99_c8_ms"]),
        ("errors", base["errors"], new["errors"]),
    ]
    for name, old, now in figures:
        ratio = f"{now / old:8.2f}x" if old else "       -"
        print(f"{name:<28}{old:>12.1f}{now:>12.1f}{ratio}")
    scaling = {name: row["rps_c8"] / row["rps_c1"] for name, row in rows.items()}
    print(f"c=8 / c=1 req/s: baseline {scaling['baseline']:.2f}, this tree {scaling['this tree']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
