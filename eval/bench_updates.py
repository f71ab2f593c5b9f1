"""What a live change costs on a built tier: ``python -m eval.bench_scale --updates`` (see there).

On the tier's data directory, in this process: add a 10-page document
(embedded by the real model), delete it, and time until a search no longer
sees it; add ten small documents (ten delta segments) and compare search
latency with the merged index; run a full merge while searching, for search
p50/p99 during the merge against idle. Searches are hybrid
``Retriever.search`` calls with the questions' vectors computed beforehand,
so the figures are the index's, not the encoder's; FAISS searches on one thread and the
merge runs at a lower OS priority, as in the service. The directory is left
merged and servable.
"""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import numpy as np

from index.answering.retrieval import Retriever
from index.ingest.clean import normalize_for_matching
from index.ingest.documents import SourceDocument
from index.stores.local.generations import load_index
from index.stores.local.live import change_index
from index.stores.local.merge import merge_segments
from index.threads import lower_priority

MARKER = "更新基准测试专用文件"


class _KnownQuestions:
    """An embedder for questions asked before: their vectors were computed once."""

    def __init__(self, embedder, questions: list[str]) -> None:
        self.name, self.dimension = embedder.name, embedder.dimension
        self._vectors = dict(zip(questions, embedder.embed_queries(questions), strict=True))
        self._embedder = embedder

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            self._vectors.update(zip(missing, self._embedder.embed_queries(missing), strict=True))
        return np.stack([self._vectors[t] for t in texts])


def ten_page_document(seed_texts: list[str], pages: int = 10, page_chars: int = 1200) -> SourceDocument:
    text = "".join(seed_texts)
    page_texts = [f"{MARKER}第{i + 1}页。" + text[i * page_chars : (i + 1) * page_chars] for i in range(pages)]
    return SourceDocument("bench-update", f"{MARKER}（十页）", "bench-update.pdf", "\n".join(page_texts),
                          tuple(page_texts), "upload")  # fmt: skip


def _latencies(retriever: Retriever, questions: list[str], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            retriever.search(question, top_k=5)
            times.append((time.perf_counter() - started) * 1000)
    return times


def _p(times: list[float], q: float) -> float:
    return round(float(np.percentile(times, q)), 2) if times else 0.0


def measure_updates(data_dir: Path, embedder, questions: list[str], seed_texts: list[str]) -> dict:
    import faiss

    faiss.omp_set_num_threads(
        1
    )  # as the service searches (index/answering/engine.py): tiny segments cost no thread wake-ups
    queries = _KnownQuestions(embedder, [normalize_for_matching(q) for q in questions])

    def load(reuse=None):
        return load_index(data_dir, embedder_name=embedder.name, dimension=embedder.dimension, reuse=reuse)

    index = load()
    _latencies(Retriever(index, queries), questions, 1)  # warm-up: pages, caches
    idle = _latencies(Retriever(index, queries), questions, 2)
    document = ten_page_document(seed_texts)
    embedder.embed_passages([p[:300] for p in document.pages[:4]])  # warm-up: a server has embedded before
    before_chunks = index.catalogue.count()
    started = time.perf_counter()
    added = change_index(data_dir=data_dir, embedder=embedder, sources=[document])
    add_s = time.perf_counter() - started
    index = load(index)
    assert index.catalogue.document(document.doc_id) is not None

    started = time.perf_counter()
    change_index(data_dir=data_dir, embedder=embedder, remove={document.doc_id})
    delete_s = time.perf_counter() - started
    index = load(index)
    still = {c.doc_id for c in index.catalogue.chunks(index.lexical.search(MARKER, 50).ids.tolist())}
    visible_s = time.perf_counter() - started
    assert document.doc_id not in still

    for i in range(10):
        small = SourceDocument(f"bench-small-{i}", f"{MARKER}第{i}号", f"bench-small-{i}.txt",
                               f"{MARKER}第{i}号。" + seed_texts[i % len(seed_texts)][:600], (), "upload")  # fmt: skip
        change_index(data_dir=data_dir, embedder=embedder, sources=[small])
    index = load(index)
    segments = len(index.manifest.segments)
    deltas = _latencies(Retriever(index, queries), questions, 2)
    # Deleted again, so that the merge drops them and the tier is left with the documents it was built with.
    change_index(data_dir=data_dir, embedder=embedder, remove={f"bench-small-{i}" for i in range(10)})
    index = load(index)

    during, merge_report = [], {}

    def merge() -> None:
        lower_priority()  # as the service's merger runs
        merge_report.update(r=merge_segments(data_dir, full=True))

    merging = threading.Thread(target=merge)
    retriever = Retriever(index, queries)
    started = time.perf_counter()
    merging.start()
    while merging.is_alive():
        during += _latencies(retriever, questions[:10], 1)
    merge_s = time.perf_counter() - started
    index = load(index)
    merged = _latencies(Retriever(index, queries), questions, 2)
    return {
        "add_s": round(add_s, 3),
        "embed_s": round(added.timings_s.get("embed", 0.0), 3),
        "add_pages": len(document.pages),
        "add_chunks": added.chunks - before_chunks,
        "delete_s": round(delete_s, 3),
        "visible_s": round(visible_s, 3),
        "merge_s": round(merge_s, 3),
        "merged_chunks": merge_report["r"].chunks if merge_report.get("r") else None,
        "segments_before_merge": segments,
        "search_idle_p50_ms": _p(idle, 50),
        "search_idle_p99_ms": _p(idle, 99),
        "search_deltas_p50_ms": _p(deltas, 50),
        "search_merged_p50_ms": _p(merged, 50),
        "search_during_merge_p50_ms": _p(during, 50),
        "search_during_merge_p99_ms": _p(during, 99),
        "searches_during_merge": len(during),
        "deltas_over_merged_p50": round(statistics.median(deltas) / statistics.median(merged), 3),
        "during_merge_over_idle_p99": round(_p(during, 99) / max(_p(idle, 99), 1e-9), 3) if during else None,
    }
