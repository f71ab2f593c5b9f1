"""Many knowledge bases in one server: ask latency and memory against one knowledge base of the same size.

    python -m eval.bench_kbs [--kbs 100] [--chunks 1000] [--questions 60] [--max-loaded 200]

One index of about ``--chunks`` chunks is built from the seed corpus (digits
and county names redrawn, vectors moved from real ones: eval/scale_corpus.py)
and served as ``default``; ``--kbs`` knowledge bases get a copy each, registered
like POST /api/kbs would, so each is loaded and held on its own. The app runs
in this process (TestClient, lifespan included). Measured, one request at a
time: ask p50 on default alone; ask p50 with the questions spread round-robin
over every knowledge base once all are loaded (warm); the first ask of each
(its load); the process RSS before and after loading them, and the loaded
count the LRU keeps at ``--max-loaded``.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from index.quality.gold import load_questions

REPO = Path(__file__).resolve().parents[1]


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def build(data_dir: Path, n_chunks: int, embedder_name: str) -> int:
    from eval.scale_corpus import SyntheticEmbedder, generate_sources, seed_templates, write_base_table
    from index.stores.local.build import build_index
    from service.engines import passage_embedder
    from service.settings import Settings

    table = data_dir.parent / "base-table.npz"
    write_base_table(table, REPO / "docs_raw", passage_embedder(Settings()))
    embedder = SyntheticEmbedder.from_table(table, embedder_name)
    sources = list(generate_sources(seed_templates(REPO / "docs_raw"), n_chunks))
    return build_index(data_dir=data_dir, embedder=embedder, sources=sources, show_progress=False).chunks


def copy_into_kbs(data_dir: Path, n_kbs: int) -> list[str]:
    from service.stores.registry import REGISTRY_FILE, SqliteRegistry

    registry = SqliteRegistry(data_dir / REGISTRY_FILE)
    kb_ids = [f"kb{i:03d}" for i in range(n_kbs)]
    for kb_id in kb_ids:
        shutil.copytree(data_dir / "index", data_dir / "kbs" / kb_id / "index", symlinks=True)
        registry.create_kb(kb_id=kb_id, title=kb_id, public=True)
    return kb_ids


def live_engines() -> int:
    """QAEngine objects still alive (default included): evicted ones must be gone."""
    from index.answering.engine import QAEngine

    gc.collect()
    return sum(isinstance(o, QAEngine) for o in gc.get_objects())


def timed_ms(client, path: str, question: str) -> float:
    started = time.perf_counter()
    response = client.post(path, json={"question": question, "top_k": 5})
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.text
    return elapsed


def measure(data_dir: Path, kb_ids: list[str], questions: list[str], max_loaded: int) -> dict:
    from fastapi.testclient import TestClient

    from service.api.app import create_app
    from service.settings import Settings

    settings = Settings(
        data_dir=data_dir,
        models_dir=Settings().resolved_models_dir(),  # the converted model where it usually is, not in tmp
        build_on_start=False,
        max_loaded_kbs=max_loaded,
        log_level="warning",
    )
    with TestClient(create_app(settings)) as client:
        for q in questions[:10]:
            timed_ms(client, "/api/ask", q)  # warm-up: caches, lazy imports
        single = [timed_ms(client, "/api/ask", q) for q in questions]
        rss_one = rss_mb()
        first = [timed_ms(client, f"/api/kbs/{kb_id}/ask", questions[0]) for kb_id in kb_ids]
        rss_all = rss_mb()
        spread = [timed_ms(client, f"/api/kbs/{kb_ids[i % len(kb_ids)]}/ask", q) for i, q in enumerate(questions * 2)]
        single_again = [timed_ms(client, "/api/ask", q) for q in questions]
        loaded = len(client.app.state.kbs.loaded_ids()) - 1
        live = live_engines()
    p50_single = statistics.median(single + single_again)
    p50_spread = statistics.median(spread)
    return {
        "kbs": len(kb_ids),
        "ask_p50_ms_one_kb": round(p50_single, 2),
        "ask_p50_ms_spread_over_all": round(p50_spread, 2),
        "ratio": round(p50_spread / p50_single, 3),
        "first_ask_p50_ms": round(statistics.median(first), 2),
        "rss_mb_default_only": round(rss_one, 1),
        "rss_mb_after_loading_all": round(rss_all, 1),
        "rss_mb_per_loaded_kb": round((rss_all - rss_one) / max(min(len(kb_ids), max_loaded), 1), 2),
        "loaded_at_end": loaded,
        "live_engines_after_gc": live,
        "max_loaded": max_loaded,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kbs", type=int, default=100)
    parser.add_argument("--chunks", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--max-loaded", type=int, default=200)
    args = parser.parse_args(argv)
    from index.embedders import embedder_name
    from service.settings import Settings

    questions = [q.question for q in load_questions()][: args.questions]
    with tempfile.TemporaryDirectory(prefix="policyqa-bench-kbs-") as tmp:
        data_dir = Path(tmp) / "data"
        started = time.perf_counter()
        chunks = build(data_dir, args.chunks, embedder_name(Settings().embedder))
        kb_ids = copy_into_kbs(data_dir, args.kbs)
        prepared_s = time.perf_counter() - started
        result = {"chunks_per_kb": chunks, "prepare_s": round(prepared_s, 1)}
        result |= measure(data_dir, kb_ids, questions, args.max_loaded)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
