"""How long a live change takes to show in answers over HTTP: an upload until it is cited, a delete until it is not.

    python -m eval.bench_live_http [--tier-dir DIR ...] [--seed-dir DIR] [--code LABEL=PATH ...] [--rounds 2]
                                   [--replicas] [--out FILE]

For each index (the seed corpus, built from docs_raw/ into --seed-dir when it has
none, and each --tier-dir: a tier of ``python -m eval.bench_scale --builds-only
--work-dir DIR``, i.e. DIR/tier-100000) and each code tree (``--code
base=/tmp/livework/base``: a ``git worktree`` of another commit, run with its
own directory first on PYTHONPATH; this checkout by default), a copy of the
index is served by ``policyqa serve``, warmed up with a few questions, and then,
``--rounds`` times: a one-page .docx about a made-up subject is uploaded with
``POST /api/documents``, ``/api/ask`` is asked about it until a citation names
it (``cited_s``, from just before the upload), and the document is deleted
with ``DELETE /api/documents/{id}`` and asked about until no citation names it
(``gone_s``). ``job_s`` is when the upload's job finished (its ``finished_at``). The
first round, the first upload after the server started, is shown apart
(``first_cited_s``, ``first_gone_s``); the others as their median.

``--replicas``: two replicas over one ``milvus-lite server`` (docs/deployment.md),
the seed corpus ingested into it; the upload and the delete go to the first
replica and the questions to the second (``cited_s`` and ``gone_s`` are seen
from there), and to the first too (``cited_here_s``, ``first_cited_here_s``).

Every code tree is measured in the same run, so the ratios (against the first
--code) hold on a shared machine; what else runs on it is printed as the load
average before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from eval.live_servers import Served, milvus_replicas, serve_copy

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-live-http-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PLACES = ("青鸾湾", "白鹭洲", "紫苏岭", "金鳞滩", "翠屏坳", "雁回矶")
POLL_S = 0.05
GIVE_UP_S = 180.0


def one_page_docx(place: str) -> bytes:
    """A page about a subject no corpus here mentions, so that the question about it finds only it."""
    import docx

    document = docx.Document()
    document.core_properties.title = f"关于开展{place}海藻养殖保险试点的通知"
    document.add_heading("一、试点范围", level=1)
    document.add_paragraph(f"{place}海藻养殖保险试点覆盖全镇十二个养殖合作社，试点期限为三年。")
    document.add_heading("二、保费补贴", level=1)
    document.add_paragraph(f"{place}海藻养殖保险试点的保费补贴比例为百分之六十五，由县财政和镇财政按七比三分担。")
    document.add_paragraph("养殖户自缴部分不超过保费的百分之三十五，投保面积以村委会核实的数据为准。")
    document.add_heading("三、理赔办法", level=1)
    document.add_paragraph("因台风、赤潮造成的损失，经查勘定损后十五个工作日内赔付到户。")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def question_about(place: str) -> str:
    return f"{place}海藻养殖保险试点的保费补贴比例是多少？"


def cites(client: httpx.Client, url: str, question: str, doc_id: str) -> bool:
    reply = client.post(f"{url}/api/ask", json={"question": question, "top_k": 5}, timeout=60.0)
    reply.raise_for_status()
    return any(c["doc_id"] == doc_id for c in reply.json()["citations"])


def seconds_until(started: float, condition) -> tuple[float, int]:
    """Seconds from ``started`` until ``condition()`` first holds, and how many times it was asked."""
    asked = 0
    while time.monotonic() - started < GIVE_UP_S:
        asked += 1
        if condition():
            return time.monotonic() - started, asked
        time.sleep(POLL_S)
    raise TimeoutError(f"still not so after {GIVE_UP_S:g} s")


def upload(client: httpx.Client, url: str, place: str, number: int) -> dict:
    files = {"files": (f"live-bench-{number}.docx", one_page_docx(place), "application/octet-stream")}
    reply = client.post(f"{url}/api/documents", files=files, headers=AUTH, timeout=120.0)
    reply.raise_for_status()
    return reply.json()["jobs"][0]


def one_round(writer: str, readers: list[str], number: int) -> dict:
    """Upload on ``writer``; the times each of ``readers`` first cites it, then stops citing it after a delete."""
    place = PLACES[number % len(PLACES)]
    question = question_about(place)
    with httpx.Client() as client:
        wall, started = time.time(), time.monotonic()
        job = upload(client, writer, place, number)
        upload_s, doc_id = time.monotonic() - started, job["doc_id"]
        cited = [seconds_until(started, lambda r=r: cites(client, r, question, doc_id)) for r in readers]
        finished = client.get(f"{writer}/api/jobs/{job['id']}", headers=AUTH).json()
        deleting = time.monotonic()
        client.delete(f"{writer}/api/documents/{doc_id}", headers=AUTH, timeout=180.0).raise_for_status()
        delete_s = time.monotonic() - deleting
        gone = [seconds_until(deleting, lambda r=r: not cites(client, r, question, doc_id)) for r in readers]
    return {
        "upload_s": round(upload_s, 3),
        "job_s": round(finished["finished_at"] - wall, 3) if finished.get("finished_at") else None,
        "cited_s": [round(s, 3) for s, _ in cited],
        "asks_until_cited": [n for _, n in cited],
        "delete_s": round(delete_s, 3),
        "gone_s": [round(s, 3) for s, _ in gone],
    }


def warm_up(url: str) -> None:
    """A server that has answered before: its lazy imports, caches and pages are in."""
    with httpx.Client() as client:
        for question in ("乡镇机构改革的主要任务是什么？", "养老保险补贴标准是多少？", question_about("无名湾")):
            client.post(f"{url}/api/ask", json={"question": question, "top_k": 5}, timeout=120.0)


def measure(served: Served, rounds: int, reader_urls: list[str] | None = None, profile: Path | None = None) -> list:
    for url in served.urls:
        warm_up(url)
    readers = reader_urls or served.urls[:1]
    results = []
    with profiled(served, profile):
        for number in range(rounds):
            result = one_round(served.urls[0], readers, number)
            print(f"    round {number + 1}: {json.dumps(result)}", flush=True)
            results.append(result)
    return results


@contextlib.contextmanager
def profiled(served: Served, out: Path | None) -> Iterator[None]:
    """With ``out`` (a file name prefix), py-spy samples every thread of each server, idle ones too, while the
    rounds run: collapsed stacks in OUT-<n>.txt (``py-spy`` from PyPI)."""
    if out is None:
        yield
        return
    command = ["py-spy", "record", "--threads", "--idle", "--rate", "100", "--format", "raw", "--nonblocking"]
    spies = [
        subprocess.Popen([*command, "--pid", str(p.pid), "-o", f"{out}-{n}.txt"], stdout=subprocess.DEVNULL)
        for n, p in enumerate(served.processes)
    ]
    time.sleep(1.0)  # attached before the first upload
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)


def median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def summary(results: list[dict], reader: int = 0) -> dict:
    """The first round (the first upload after the server started) apart from the median of the others."""
    later = results[1:] or results
    return {
        "first_cited_s": results[0]["cited_s"][reader],
        "first_gone_s": results[0]["gone_s"][reader],
        "cited_s": round(median([r["cited_s"][reader] for r in later]), 3),
        "gone_s": round(median([r["gone_s"][reader] for r in later]), 3),
        "job_s": round(median([r["job_s"] for r in later if r["job_s"] is not None] or [0.0]), 3),
    }


def seed_index(seed_dir: Path) -> Path:
    """The seed corpus indexed into ``seed_dir`` (once), by this checkout's ``policyqa ingest``."""
    import subprocess
    import sys

    if not (seed_dir / "index" / "CURRENT").exists():
        env = {**os.environ, "POLICYQA_DATA_DIR": str(seed_dir), "POLICYQA_MODELS_DIR": str(models_dir())}
        subprocess.run([sys.executable, "-m", "service.cli", "ingest", "docs_raw", "--quiet"], cwd=REPO, env=env,
                       check=True)  # fmt: skip
    return seed_dir


def models_dir() -> Path:
    from service.settings import Settings

    return Settings().resolved_models_dir().resolve()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(rows: list[dict]) -> None:
    """Seconds, and in brackets the ratio to the first code tree's on the same index."""
    columns = ("first_cited_s", "first_gone_s", "cited_s", "gone_s", "job_s")
    print(f"{'index':<14} {'code':<8}" + "".join(f" {c:>18}" for c in columns))
    first: dict[str, dict] = {}
    for row in rows:
        base = first.setdefault(row["index"], row)
        cells = "".join(f" {row[c]:>9.2f} ({row[c] / max(base[c], 1e-9):>5.2f})" for c in columns)
        print(f"{row['index']:<14} {row['code']:<8}{cells}")


def _labelled(profile: Path | None, *labels: str) -> Path | None:
    return None if profile is None else profile.with_name("-".join([profile.name, *labels]))


def parse_code(values: list[str]) -> list[tuple[str, Path]]:
    if not values:
        return [("current", REPO)]
    return [(label, Path(path).resolve()) for label, _, path in (v.partition("=") for v in values)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tier-dir", type=Path, action="append", default=[], help="a built tier's data directory")
    parser.add_argument("--seed-dir", type=Path, help="where the seed corpus's index is (built there if missing)")
    parser.add_argument("--no-seed", action="store_true", help="only the tiers")
    parser.add_argument("--code", action="append", default=[], help="LABEL=PATH of a code tree to serve with")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--replicas", action="store_true", help="two replicas over a milvus-lite server instead")
    parser.add_argument("--out", type=Path, help="write the figures here as JSON")
    parser.add_argument("--profile", type=Path, help="a path prefix: py-spy each server while the rounds run")
    args = parser.parse_args(argv)
    codes = parse_code(args.code)
    work = Path(tempfile.mkdtemp(prefix="policyqa-live-http-"))
    rows: list[dict] = []
    print(f"load average before: {load_average()}", flush=True)
    try:
        if args.replicas:
            rows = replica_rows(codes, work, args.rounds, args.profile)
        else:
            indexes = [] if args.no_seed else [("seed", seed_index(args.seed_dir or work / "seed"))]
            indexes += [(path.name, path) for path in args.tier_dir]
            rows = local_rows(indexes, codes, work, args.rounds, args.profile)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average after: {load_average()}", flush=True)
    print_table(rows)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def local_rows(indexes, codes, work: Path, rounds: int, profile: Path | None) -> list[dict]:
    rows = []
    for index_label, data_dir in indexes:
        for code_label, code_dir in codes:
            print(f"{index_label} served by {code_label} ({code_dir}) ...", flush=True)
            env = {"POLICYQA_ADMIN_TOKEN": TOKEN, "POLICYQA_MODELS_DIR": str(models_dir())}
            with serve_copy(code_dir, data_dir, work / f"{index_label}-{code_label}", env) as served:
                results = measure(served, rounds, profile=_labelled(profile, index_label, code_label))
            rows.append({"index": index_label, "code": code_label, **summary(results), "rounds": results})
    return rows


def replica_rows(codes, work: Path, rounds: int, profile: Path | None) -> list[dict]:
    rows = []
    for code_label, code_dir in codes:
        print(f"two replicas over milvus-lite, served by {code_label} ({code_dir}) ...", flush=True)
        env = {"POLICYQA_ADMIN_TOKEN": TOKEN, "POLICYQA_MODELS_DIR": str(models_dir())}
        with milvus_replicas(code_dir, work / f"milvus-{code_label}", env) as served:
            results = measure(
                served, rounds, [served.urls[1], served.urls[0]], _labelled(profile, "replicas", code_label)
            )
        here = summary(results, reader=1)
        rows.append({"index": "replicas", "code": code_label, **summary(results), "cited_here_s": here["cited_s"],
                     "first_cited_here_s": here["first_cited_s"], "rounds": results})  # fmt: skip
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
