"""Fault injection: SIGKILL the server at random moments of uploads, replacements, deletes and merges.

    python -m eval.chaos [--kills 50] [--seed N] [--data-dir DIR] [--report PATH] [--max-minutes 45]
    python -m eval.chaos --replicas 2 --milvus [--kills 10]

Serves a copy of DATA_DIR's index (built once from docs_raw/ with the real
embedder when DATA_DIR has none) with an admin token, on 127.0.0.1. A driver
sends changes one after another: an upload of a small generated document with
marker words of its own (``eval/chaos_state.py``), waited for through its job;
a replacement of one; a delete. Between kills it makes a few changes that are
left to finish; then it aims a kill: during an add, a replacement or a delete
(SIGKILL a random time after the request was sent, within that change's usual
duration), during a merge (adds until a merge segment is being written, then
SIGKILL), or idle. Each kill is counted by what was under way at that moment:
``merge`` when a merge segment was being written (a background merge, or a
delete's purge rewriting its segment), else the change in flight, else idle.

After each restart: the server must come up, with no error logged while it
loads; every change answered as done must be there (an added or replaced
document listed, its text holding its latest marker) and every delete answered
as done must stay gone; a change that was never answered may have landed or
not, but whole; the markers of every deleted or replaced-away version must be
absent from search results and answers, and, where the change was answered as
done, from every file under the data directory (zip members of .npz opened,
UTF-8 and UTF-32-LE, Latin words lower-cased too); and the seed questions
must cite the same top document as before the first kill.

With ``--replicas 2 --milvus`` the same runs against two replicas over a real
``milvus-lite server`` (seeded once with the corpus): changes go through either
replica, and one replica at a time is killed (nothing is merged there). Prints
and writes a JSON report; exits 1 on any fault.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path

from eval.chaos_checks import Counts
from eval.chaos_loop import PHASES, Chaos
from eval.chaos_servers import ServerProcess


def prepared_data_dir(data_dir: Path | None, workdir: Path, models_dir: Path) -> Path:
    """A data directory with an index: ``data_dir`` if it has one, else one built here from docs_raw/."""
    if data_dir is not None and (data_dir / "index" / "CURRENT").exists():
        return data_dir
    from index.embedders import load_embedder
    from index.stores.local.build import build_index

    built = workdir / "seed"
    print(f"building the seed index in {built} (embedder models in {models_dir})", flush=True)
    embedder = load_embedder("e5-small", models_dir=models_dir)
    build_index(docs_dir=Path("docs_raw"), data_dir=built, embedder=embedder, show_progress=False)
    return built


def run_local(
    source: Path, workdir: Path, *, kills: int, seed: int, max_minutes: float, aims: tuple[str, ...] = PHASES,
    env: dict[str, str] | None = None,
) -> Counts:  # fmt: skip
    """The soak on one server over a copy of ``source``'s index (``env``: more settings for the server)."""
    data_dir = workdir / "data"
    shutil.copytree(source / "index", data_dir / "index")
    token = secrets.token_urlsafe(24)
    env = {**os.environ, "POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_ADMIN_TOKEN": token,
           "POLICYQA_BUILD_ON_START": "false", **(env or {})}  # fmt: skip
    server = ServerProcess("server", data_dir, env, workdir / "server.log")
    server.start()
    chaos = Chaos([server], token, seed=seed, data_dirs=[data_dir])
    try:
        chaos.run(kills, max_minutes, aims)
    finally:
        server.stop()
    chaos.checker.server_log(server.log())
    chaos.counts.restart_s = server.start_times_s[1:]
    return chaos.counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, help="servers killed (default 50; 10 with --milvus)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, help="an index to copy and serve (default: built from docs_raw/)")
    parser.add_argument("--report", type=Path, default=Path("eval/reports/chaos.json"), help="the JSON report")
    parser.add_argument("--max-minutes", type=float, default=45.0, help="stop killing after this long (default 45)")
    parser.add_argument("--replicas", type=int, default=1, help="with --milvus: replicas over one Milvus (2)")
    parser.add_argument("--milvus", action="store_true", help="replicas over a milvus-lite server")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (logs, data)")
    args = parser.parse_args(argv)
    if args.milvus != (args.replicas > 1):
        parser.error("--replicas 2 goes with --milvus (the local index has one writer: one server)")
    workdir = Path(tempfile.mkdtemp(prefix="policyqa-chaos-"))
    models_dir = Path(os.environ.get("POLICYQA_MODELS_DIR") or (args.data_dir or Path("var")) / "models")
    os.environ["POLICYQA_MODELS_DIR"] = str(models_dir.resolve())
    if args.milvus:
        from eval.chaos_replicas import run_milvus

        counts = run_milvus(workdir, replicas=args.replicas, kills=args.kills or 10, seed=args.seed,
                            max_minutes=args.max_minutes)  # fmt: skip
    else:
        source = prepared_data_dir(args.data_dir, workdir, models_dir)
        counts = run_local(source, workdir, kills=args.kills or 50, seed=args.seed, max_minutes=args.max_minutes)
    report = counts.report(
        command="python -m eval.chaos " + " ".join(sys.argv[1:] if argv is None else argv),
        mode="milvus" if args.milvus else "local", replicas=args.replicas, seed=args.seed,
        kills_planned=args.kills or (10 if args.milvus else 50), max_minutes=args.max_minutes,
    )  # fmt: skip
    print(json.dumps(report, indent=2, ensure_ascii=False))
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    ok = counts.ok
    if args.keep or not ok:
        print(f"logs and data kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    print("OK" if ok else "FAULTS FOUND")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
