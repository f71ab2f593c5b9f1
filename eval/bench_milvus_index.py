"""The local store and Milvus side by side: the same synthetic corpus in both, search and ask timed in one run.

    python -m eval.bench_scale --store milvus [--tiers 10000,100000] [--milvus-uri http://host:19530]
    python -m eval.bench_milvus_index [--tiers 10000] [--milvus-uri URI] [--work-dir DIR] [--out FILE]

For each tier, the corpus of ``eval/scale_corpus.py`` (passages embedded by
moving real sentence vectors, questions embedded for real) is built locally
and written into Milvus (a ``milvus-lite server`` started here, or
``--milvus-uri``); then the gold questions are searched and asked of each, in
this process, one at a time: p50 and p95 latency, and questions a second.
Both include embedding the question, the same work on either side.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def start_milvus_lite(data_dir: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = ["milvus-lite", "server", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"http://127.0.0.1:{port}"
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("milvus-lite server did not start")


def timed(fn, questions: list[str]) -> dict:
    for question in questions[:20]:  # warm-up: caches, lazy imports
        fn(question)
    times = []
    started = time.perf_counter()
    for question in questions:
        mark = time.perf_counter()
        fn(question)
        times.append((time.perf_counter() - mark) * 1000)
    elapsed = time.perf_counter() - started
    ordered = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "per_s": round(len(times) / elapsed, 1),
    }


def measure(engine, questions: list[str]) -> dict:
    return {
        "search": timed(lambda q: engine.search(q, top_k=5, mode="hybrid", doc_ids=None), questions),
        "ask": timed(lambda q: engine.ask(q, top_k=5, mode="hybrid", doc_ids=None), questions),
    }


def bench_tier(n_chunks: int, uri: str, work: Path, embedder, table: Path, questions: list[str]) -> dict:
    from eval.scale_corpus import SyntheticEmbedder, generate_sources, seed_templates
    from index.answering.engine import QAEngine
    from index.stores.local.build import build_index
    from index.stores.milvus.reader import MilvusTarget
    from index.stores.milvus.writer import change_milvus
    from service.engines import index_backend
    from service.settings import Settings

    passages = SyntheticEmbedder.from_table(table, embedder.name, real=embedder)
    sources = list(generate_sources(seed_templates(REPO / "docs_raw"), n_chunks))
    local_dir, replica_dir = work / f"local-{n_chunks}", work / f"replica-{n_chunks}"
    started = time.perf_counter()
    report = build_index(data_dir=local_dir, embedder=passages, sources=sources, show_progress=False)
    local_build_s = time.perf_counter() - started
    target = MilvusTarget(uri, f"bench{uuid.uuid4().hex[:8]}")
    started = time.perf_counter()
    change_milvus(target, data_dir=replica_dir, embedder=passages, sources=sources)
    milvus_write_s = time.perf_counter() - started
    dimension = embedder.dimension
    local_backend = index_backend(Settings(data_dir=local_dir))
    local = QAEngine(
        local_backend, embedder, local_backend.open_reader(embedder_name=embedder.name, dimension=dimension)
    )
    settings = Settings(store="milvus", milvus_uri=uri, milvus_prefix=target.prefix, data_dir=replica_dir)
    milvus_backend = index_backend(settings)
    milvus = QAEngine(milvus_backend, embedder,
                      milvus_backend.open_reader(embedder_name=embedder.name, dimension=dimension))  # fmt: skip
    result = {
        "chunks": report.chunks,
        "documents": report.documents,
        "local_build_s": round(local_build_s, 1),
        "milvus_write_s": round(milvus_write_s, 1),
        "local": measure(local, questions),
        "milvus": measure(milvus, questions),
    }
    local.close()
    milvus.close()
    return result


def print_table(tiers: list[dict]) -> None:
    print("| chunks | | local p50 | local p95 | local q/s | Milvus p50 | Milvus p95 | Milvus q/s | p50 ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for tier in tiers:
        for endpoint in ("search", "ask"):
            a, b = tier["local"][endpoint], tier["milvus"][endpoint]
            ratio = b["p50_ms"] / a["p50_ms"]
            print(f"| {tier['chunks']} | {endpoint} | {a['p50_ms']} ms | {a['p95_ms']} ms | {a['per_s']} |"
                  f" {b['p50_ms']} ms | {b['p95_ms']} ms | {b['per_s']} | {ratio:.2f}x |")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", default="10000")
    parser.add_argument("--milvus-uri", help="a Milvus to use (default: a milvus-lite server started here)")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    args, _ = parser.parse_known_args(argv)  # bench_scale's other options are its own

    from eval.scale_corpus import write_base_table
    from index.embedders import load_embedder
    from index.quality.gold import load_questions
    from service.settings import Settings

    work = args.work_dir or Path(tempfile.mkdtemp(prefix="policyqa-milvus-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    embedder = load_embedder("e5-small", models_dir=Settings().resolved_models_dir().resolve())
    questions = [q.question for q in load_questions()]
    table = work / "base.npz"
    if not table.exists():
        write_base_table(table, REPO / "docs_raw", embedder)
    server, uri = (None, args.milvus_uri) if args.milvus_uri else start_milvus_lite(work / "milvus")
    try:
        tiers = [bench_tier(int(n), uri, work, embedder, table, questions) for n in args.tiers.split(",")]
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
    print_table(tiers)
    if args.out:
        args.out.write_text(json.dumps(tiers, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
