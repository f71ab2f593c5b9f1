"""How the segment count behaves under a stream of small changes.

    python -m eval.bench_segment_stream --data-dir DIR [--models-dir M] [--changes 1000] [--reports-dir eval/reports]

On a copy of a built data directory's index (its models are used in place): ``--changes`` changes, each adding a
small document (a few sentences of the index's own text, embedded by the real
model) or, one time in three, deleting one added before; after each change
the policy's merges run as the service's merger runs them (until none is
due). Records the segments listed after each change and after its merges, the
tombstoned chunks, and the change and merge times; writes ``stream.json`` and
``stream.png`` and prints a summary. The copy is removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from eval.plotting import pyplot
from index.ingest.documents import SourceDocument
from index.stores.local.generations import current_build_dir, read_manifest
from index.stores.local.live import change_index
from index.stores.local.merge import merge_segments
from service.engines import passage_embedder
from service.settings import Settings

DELETE_SHARE = 1 / 3


def _state(data_dir: Path) -> tuple[int, int]:
    """(segments listed, chunks tombstoned) of the current generation."""
    manifest = read_manifest(current_build_dir(data_dir))
    return len(manifest.segments), sum(len(t.chunk_ids) for t in manifest.tombstones.values())


def _small_document(n: int, texts: list[str], rng: random.Random) -> SourceDocument:
    text = f"流式变更测试第{n}号。" + "".join(rng.sample(texts, 3))
    return SourceDocument(f"stream-{n}", f"流式变更测试第{n}号", f"stream-{n}.txt", text, (), "upload")


def run_stream(data_dir: Path, changes: int, *, models_dir: Path, seed: int = 0) -> list[dict]:
    embedder = passage_embedder(Settings(data_dir=data_dir, models_dir=models_dir))
    texts = [line for line in _corpus_sentences(data_dir) if len(line) >= 20][:500]
    rng, added, rows = random.Random(seed), [], []
    for n in range(changes):
        started = time.perf_counter()
        if added and rng.random() < DELETE_SHARE:
            change_index(data_dir=data_dir, embedder=embedder, remove={added.pop(rng.randrange(len(added)))})
            kind = "delete"
        else:
            document = _small_document(n, texts, rng)
            change_index(data_dir=data_dir, embedder=embedder, sources=[document])
            added.append(document.doc_id)
            kind = "add"
        change_s = time.perf_counter() - started
        segments_after_change, _ = _state(data_dir)
        started, merges = time.perf_counter(), 0
        while merge_segments(data_dir) is not None:
            merges += 1
        segments, tombstoned = _state(data_dir)
        rows.append({"change": n + 1, "kind": kind, "change_s": round(change_s, 4), "merges": merges,
                     "merge_s": round(time.perf_counter() - started, 4), "segments_after_change": segments_after_change,
                     "segments": segments, "tombstoned_chunks": tombstoned})  # fmt: skip
    return rows


def _corpus_sentences(data_dir: Path) -> list[str]:
    from index.stores.local.generations import load_index

    embedder_name = read_manifest(current_build_dir(data_dir)).embedder
    index = load_index(data_dir, embedder_name=embedder_name.name, dimension=embedder_name.dimension)
    texts = [chunk.text for chunk in index.catalogue.chunks(list(range(1, 400)))]
    return [s + "。" for text in texts for s in text.split("。") if s]


def summary(rows: list[dict]) -> dict:
    segments = [r["segments"] for r in rows]
    return {
        "changes": len(rows),
        "adds": sum(r["kind"] == "add" for r in rows),
        "deletes": sum(r["kind"] == "delete" for r in rows),
        "segments_max": max(segments),
        "segments_mean": round(statistics.mean(segments), 2),
        "segments_last": segments[-1],
        "merges": sum(r["merges"] for r in rows),
        "change_p50_s": round(statistics.median(r["change_s"] for r in rows), 4),
        "merge_s_total": round(sum(r["merge_s"] for r in rows), 2),
        "merge_s_max": max(r["merge_s"] for r in rows),
        "tombstoned_max": max(r["tombstoned_chunks"] for r in rows),
    }


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    x = [r["change"] for r in rows]
    top.step(x, [r["segments_after_change"] for r in rows], where="post", label="after the change", alpha=0.5)
    top.step(x, [r["segments"] for r in rows], where="post", label="after its merges")
    top.set_ylabel("segments")
    top.legend()
    bottom.step(x, [r["tombstoned_chunks"] for r in rows], where="post", color="tab:red")
    bottom.set_ylabel("tombstoned chunks")
    bottom.set_xlabel("change")
    figure.suptitle("Segments under a stream of small changes")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a built data directory (copied, not changed)")
    parser.add_argument("--models-dir", type=Path, help="where the converted model is (default: DATA_DIR/models)")
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--reports-dir", type=Path, default=Path("eval/reports"))
    args = parser.parse_args()
    out = args.reports_dir / time.strftime("stream-%Y%m%dT%H%M%SZ", time.gmtime())
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="policyqa-stream-") as work:
        data_dir = Path(work) / "data"
        shutil.copytree(args.data_dir / "index", data_dir / "index")
        models_dir = Settings(data_dir=args.data_dir, models_dir=args.models_dir).resolved_models_dir()
        rows = run_stream(data_dir, args.changes, models_dir=models_dir)
    result = {"summary": summary(rows), "rows": rows}
    (out / "stream.json").write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    plot(rows, out / "stream.png")
    print(json.dumps(result["summary"], indent=1))
    print(f"report: {out}")


if __name__ == "__main__":
    main()
