"""The Milvus stores against the local ones, side by side in one run, on a built data directory.

    python -m eval.bench_milvus_stores --data-dir DIR [--models-dir M] [--uri http://127.0.0.1:19530] [--rounds 3]

Copies the index's chunk vectors and BM25 texts into Milvus (a ``milvus-lite
server`` on a free port, started here, unless ``--uri`` names one), then asks
the gold questions of both: dense top-50 (FAISS against Milvus FLAT) and BM25
scores (``Bm25LexicalStore`` against ``MilvusLexicalStore``), p50 and p95 per
store, and how far the two top-10 scores are apart. Question vectors are
computed beforehand, so the figures are the stores'. Writes nothing but the
collections it made, which it drops.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from eval.bench_milvus_index import start_milvus_lite
from index.ingest.passages import lexical_text
from index.quality.gold import load_questions
from index.stores.local.generations import current_build_dir, load_index, read_manifest
from index.stores.milvus.lexical import MilvusLexicalStore
from index.stores.milvus.vectors import MilvusVectorStore
from service.engines import passage_embedder
from service.settings import Settings


def _timed(function, items, rounds: int) -> tuple[list, list[float]]:
    results, times = [], []
    for _ in range(rounds):
        results = []
        for item in items:
            started = time.perf_counter()
            results.append(function(item))
            times.append((time.perf_counter() - started) * 1000)
    return results, times


def _summary(times: list[float]) -> dict[str, float]:
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(float(np.percentile(times, 95)), 2)}


def _agreement(a: list, b: list, k: int = 10) -> dict[str, float]:
    """How alike two stores' top k are: by score, rank for rank (near-duplicate chunks tie, and which of
    the tied comes back differs), and the share of questions whose top-k scores agree to 1e-4."""
    gaps = [
        float(np.max(np.abs(x.scores[:k] - y.scores[:k]), initial=0.0)) if len(x.scores[:k]) == len(y.scores[:k])
        else float("inf")
        for x, y in zip(a, b, strict=True)
    ]  # fmt: skip
    return {"max_score_gap": round(max(gaps), 6), "same_scores": round(float(np.mean([g <= 1e-4 for g in gaps])), 4)}


def run(data_dir: Path, uri: str, rounds: int, models_dir: Path | None = None) -> dict:
    manifest = read_manifest(current_build_dir(data_dir))
    index = load_index(data_dir, embedder_name=manifest.embedder.name, dimension=manifest.embedder.dimension)
    chunk_ids = np.array(index.catalogue.chunk_ids([d.doc_id for d in index.catalogue.documents()]), np.int64)
    chunks = index.catalogue.chunks(chunk_ids.tolist())
    questions = [q.question for q in load_questions()]
    embedder = passage_embedder(Settings(data_dir=data_dir, models_dir=models_dir))
    query_vectors = embedder.embed_queries(questions)
    name = f"bench_{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    vectors = MilvusVectorStore(manifest.embedder.dimension, uri=uri, collection=name)
    vectors.add(chunk_ids, index.vectors.vectors(chunk_ids))
    lexical = MilvusLexicalStore(uri=uri, name=name)
    lexical.add([c.chunk_id for c in chunks], [lexical_text(c.title, c.text) for c in chunks])
    load_s = time.perf_counter() - started
    try:
        local_dense, local_dense_t = _timed(lambda v: index.vectors.search(v, 50), query_vectors, rounds)
        milvus_dense, milvus_dense_t = _timed(lambda v: vectors.search(v, 50), query_vectors, rounds)
        local_bm25, local_bm25_t = _timed(lambda q: index.lexical.scores(q).top(50), questions, rounds)
        milvus_bm25, milvus_bm25_t = _timed(lambda q: lexical.scores(q).top(50), questions, rounds)
    finally:
        vectors.drop()
        lexical.drop()
    return {
        "chunks": len(chunk_ids), "questions": len(questions), "rounds": rounds, "load_s": round(load_s, 1),
        "dense": {"local": _summary(local_dense_t), "milvus": _summary(milvus_dense_t),
                  "top10": _agreement(local_dense, milvus_dense)},
        "bm25": {"local": _summary(local_bm25_t), "milvus": _summary(milvus_bm25_t),
                 "top10": _agreement(local_bm25, milvus_bm25)},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--uri", help="a running Milvus (default: a milvus-lite server started here)")
    parser.add_argument("--models-dir", type=Path, help="where the converted model is (default: DATA_DIR/models)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="policyqa-milvus-") as work:
        process, uri = (None, args.uri) if args.uri else start_milvus_lite(Path(work) / "milvus")
        try:
            print(json.dumps(run(args.data_dir, uri, args.rounds, args.models_dir), indent=1))
        finally:
            if process is not None:
                process.terminate()
                process.wait(timeout=15)


if __name__ == "__main__":
    main()
