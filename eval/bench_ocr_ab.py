"""The OCR benchmark on two checkouts in turns: a base (another commit, as a git worktree) and this one.

    git worktree add /tmp/ocr-base <commit>
    python -m eval.bench_ocr_ab --base /tmp/ocr-base [--rounds 3] [--pages 6] [--json out.json]

Each round runs ``eval/bench_ocr.py`` of this checkout once over the base's
library (``PYTHONPATH`` set to the base) and once over this one's, in a fresh
process each, alternating which goes first. On a machine others share, the
absolute figures move from minute to minute; the ratio within a round is
what to compare. Reported: each side's figures per round, and per condition
the median ratio (this checkout over the base) of pages a second and of CPU
seconds a page.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "eval" / "bench_ocr.py"


def run_bench(tree: Path, pages: int, engine: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        command = [sys.executable, str(BENCH), "--engines", engine, "--pages", str(pages), "--json", out.name]
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"the benchmark failed on {tree}:\n{done.stderr[-3000:]}")
        return json.loads(Path(out.name).read_text(encoding="utf-8"))[engine]


def compare(base: Path, rounds: int, pages: int, engine: str) -> dict:
    runs: list[dict] = []
    for number in range(rounds):
        order = [("base", base), ("this", REPO)]
        if number % 2:
            order.reverse()
        results = {side: run_bench(tree, pages, engine) for side, tree in order}
        runs.append(results)
        print(f"round {number + 1}: {json.dumps(results, ensure_ascii=False)}", flush=True)
    ratios = {}
    for condition in runs[0]["this"]:
        speed = [run["this"][condition]["pages_per_s"] / run["base"][condition]["pages_per_s"] for run in runs]
        cpu = [run["this"][condition]["cpu_s_per_page"] / run["base"][condition]["cpu_s_per_page"] for run in runs]
        ratios[condition] = {
            "pages_per_s_ratio": round(statistics.median(speed), 2),
            "cpu_s_per_page_ratio": round(statistics.median(cpu), 2),
            "cer_base": [run["base"][condition]["cer"] for run in runs][0],
            "cer_this": [run["this"][condition]["cer"] for run in runs][0],
        }
    return {"rounds": runs, "ratios": ratios}


def print_ratios(ratios: dict) -> None:
    print("| condition | pages/s, this / base | CPU s/page, this / base | CER base | CER this |")
    print("|---|---|---|---|---|")
    for condition, r in ratios.items():
        print(
            f"| {condition} | {r['pages_per_s_ratio']:.2f} | {r['cpu_s_per_page_ratio']:.2f} "
            f"| {r['cer_base']:.2%} | {r['cer_this']:.2%} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the base checkout (a git worktree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--engine", default="rapidocr")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    result = compare(args.base.resolve(), args.rounds, args.pages, args.engine)
    print_ratios(result["ratios"])
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
