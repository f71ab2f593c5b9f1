"""Rewrite the current speed table of docs/performance.md from a ``python -m eval.bench_speed --json`` file.

    python -m eval.bench_speed --json speed.json
    python -m eval.performance_page --json speed.json [--page docs/performance.md] [--run "2 Zen 4 cores, quiet"]

bench_speed writes ``{"chars": N, "rows": {"baseline": {...}, "this tree": {...}}}``, each row with
``ingest_s``, ``embed_p50_ms``, ``p50_c1_ms``, ``rps_c1``, ``rps_c8``, ``p99_c8_ms`` and ``errors``.
The table shows this tree's figures (the baseline's are bench_speed's own business: it prints the
ratios). Only the text between ``<!-- performance:begin -->`` and ``<!-- performance:end -->`` is
replaced; a figure the file lacks (or holds as null) is shown as a dash.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PAGE = REPO / "docs" / "performance.md"
BEGIN, END = "<!-- performance:begin -->", "<!-- performance:end -->"
CURRENT = "this tree"  # bench_speed's name for the tree it was run from


def _number(value, digits: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def table(figures: dict, run: str) -> str:
    """The Markdown between the markers: this tree's figures and where they come from."""
    chars = figures.get("chars")
    row = figures.get("rows", {}).get(CURRENT)
    if row is None:
        raise ValueError(f"no {CURRENT!r} row in the figures: is this a bench_speed --json file?")
    ingest_s = row.get("ingest_s")
    rate = chars / ingest_s if chars and ingest_s else None
    rows = [
        ("ingest corpus (`policyqa ingest`, encyclopedia-style passages), characters", chars, 0),
        ("ingest, characters/s (the whole command, start-up included)", rate, 0),
        ("ingest, wall time, s", ingest_s, 1),
        ("question embedding p50 (gold questions, own process), ms", row.get("embed_p50_ms"), 1),
        ("`/api/search` p50 over HTTP, concurrency 1, ms", row.get("p50_c1_ms"), 1),
        ("`/api/search` requests/s, concurrency 1", row.get("rps_c1"), 1),
        ("`/api/search` requests/s, concurrency 8", row.get("rps_c8"), 1),
        ("`/api/search` p99 over HTTP, concurrency 8, ms", row.get("p99_c8_ms"), 1),
        ("errors", row.get("errors"), 0),
    ]
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {label} | {_number(value, digits)} |" for label, value, digits in rows]
    lines += ["", f"Run: {run}"]
    return "\n".join(lines)


def rewrite(page: str, block: str) -> str:
    """``page`` with the text between the markers replaced by ``block``."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < 0 or end < start:
        raise ValueError(f"the page needs {BEGIN} and then {END}")
    return page[: start + len(BEGIN)] + "\n" + block.strip("\n") + "\n" + page[end:]


def default_run(source: Path) -> str:
    written = datetime.fromtimestamp(source.stat().st_mtime, UTC)
    return (
        f"`python -m eval.bench_speed` written {written:%Y-%m-%d %H:%M} UTC; page made on a machine with"
        f" {os.cpu_count()} CPUs (pass --run to describe the machine and what else ran on it)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, required=True, help="the file python -m eval.bench_speed --json wrote")
    parser.add_argument("--page", type=Path, default=DEFAULT_PAGE, help="the page to rewrite")
    parser.add_argument("--run", help="where the figures come from: machine, date, what else ran")
    args = parser.parse_args(argv)
    figures = json.loads(args.json.read_text(encoding="utf-8"))
    page = args.page.read_text(encoding="utf-8")
    updated = rewrite(page, table(figures, args.run or default_run(args.json)))
    temporary = args.page.with_name(args.page.name + ".tmp")
    temporary.write_text(updated, encoding="utf-8")
    os.replace(temporary, args.page)
    print(f"{args.page}: table rewritten from {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
