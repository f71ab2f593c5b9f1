"""Metadata extraction measured on real laws and on the written notices (``python -m eval.bench_metadata``).

Real corpus: a local mirror of github.com/LawRefBook/Laws (fetched as a bare git directory; read with ``git show``).
Each Markdown law carries an issuing-history block under its title and a row in ``db.sqlite3`` (table ``law``:
level, name, publish, valid_from). A law is laid out the way the national database prints it: the title, the
history in one parenthesis under it, then the articles. What is compared:

- published_date: ``law.publish`` (the date in the file name);
- effective_date: ``law.valid_from`` where the row has one;
- issuers: from the repository's classification: 行政法规 → 国务院; 部门规章 → its folder (公安部 ...);
  司法解释 → the court(s) named before 关于 in its name; 法律/宪法 → 全国人民代表大会 or its 常务委员会 (either);
- doc_number: the order number (国务院令第336号) the history block names last, read here by its own small pattern;
  a law whose block names none expects none.

Files are split by a seeded shuffle into a development sample (rules were tuned on it) and a test sample, reported
once. Nothing here is imported by the library or needed by the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
from collections import Counter
from pathlib import Path

from eval.lawrefbook import DEFAULT_MIRROR, git, law_files, read_law, render
from eval.plotting import pyplot
from index.ingest.metadata import extract_metadata
from index.ingest.metadata.dates import chinese_number, find_dates
from index.ingest.metadata.score import FieldScore, score_all

REPO = Path(__file__).resolve().parents[1]
NOTICES = REPO / "tests" / "data" / "notices.jsonl"
REPORTS = REPO / "eval" / "reports"
NPC = ("全国人民代表大会", "全国人民代表大会常务委员会")
_ORDER = re.compile(r"([\u4e00-\u9fff]{2,20}?令)\s?第\s?([0-9]{1,5}|[〇零一二三四五六七八九十百千]{1,8})\s?号")
_COURTS = re.compile(r"^((?:最高人民法院|最高人民检察院)(?:[、，\s]*(?:最高人民法院|最高人民检察院))*)")
DATE_NAMES = ("published_date", "effective_date")
SCORED = ("issuers", "doc_number", "published_date", "effective_date", "date", "kind", "level")


def split_samples(laws: list[dict], *, seed: int, size: int) -> dict[str, list[dict]]:
    shuffled = sorted(laws, key=lambda law: law["path"])
    random.Random(seed).shuffle(shuffled)
    return {"dev": shuffled[:size], "test": shuffled[size : 2 * size]}


def expected_fields(law: dict, title: str, history: list[str]) -> dict:
    expected: dict = {"published_date": law["publish"]}
    if law["valid_from"]:
        expected["effective_date"] = law["valid_from"]
    if law["level"] == "行政法规":
        expected["issuers"] = ["国务院"]
    elif law["level"] == "部门规章":
        expected["issuers"] = [law["path"].split("/")[1]]
    elif law["level"] == "司法解释" and (courts := _COURTS.match(title)):
        expected["issuers"] = re.findall(r"最高人民法院|最高人民检察院", courts[1])
    # Only a block that names an order number says what the 文号 is: the repository records none otherwise, and a
    # 法释〔2023〕6号 printed above the articles is then neither confirmed nor contradicted.
    orders = [match for line in history for match in _ORDER.finditer(line)]
    if orders:
        prefix, number = orders[-1][1], orders[-1][2]
        value = int(number) if number.isdigit() else chinese_number(number)
        expected["doc_number"] = f"{prefix}第{value}号"
    return expected


def _tolerant_issuers(meta, law: dict, expected: dict) -> dict:
    """法律 and 宪法: either chamber counts. 部门规章: the folder is a short name (市场监督管理总局), so a single
    extracted body whose full name ends with it (国家市场监督管理总局) counts."""
    got = meta.values("issuers")
    if law["level"] in ("法律", "宪法"):
        expected["issuers"] = list(got) if len(got) == 1 and got[0] in NPC else [NPC[1]]
    elif law["level"] == "部门规章" and len(got) == 1 and got[0].endswith(expected["issuers"][0]):
        expected["issuers"] = list(got)
    return expected


def _date_in_text(text: str, iso: str) -> bool:
    return any(found.iso == iso for found in find_dates(text))


def run_laws(mirror: Path, sample: list[dict]) -> tuple[dict[str, FieldScore], dict[str, FieldScore], dict]:
    results, findable_results, why_missed, seconds = [], [], Counter(), 0.0
    for law in sample:
        markdown = read_law(mirror, law["path"])
        title, text, history = render(markdown)
        started = time.perf_counter()
        meta = extract_metadata(text, title=title)
        seconds += time.perf_counter() - started
        expected = expected_fields(law, title, history)
        expected = _tolerant_issuers(meta, law, expected)
        for name in ("published_date", "effective_date"):
            if name in expected and meta.value(name) != expected[name]:
                where = "in text" if _date_in_text(text, expected[name]) else "not in text"
                why_missed[f"{name}: expected date {where}"] += 1
        if not history:
            why_missed["file has no history block"] += 1
        results.append((law["path"], meta, expected))
        # The same comparison where the repository's date is printed somewhere in the text: its history blocks
        # often stop before the latest revision, whose date then cannot be extracted from the file at all.
        findable = {k: v for k, v in expected.items() if k not in DATE_NAMES or _date_in_text(text, v)}
        findable_results.append((law["path"], meta, findable))
    extra = {"documents": len(sample), "extract_seconds": round(seconds, 3), "miss_causes": dict(why_missed)}
    extra["levels"] = dict(Counter(law["level"] for law in sample))
    return score_all(results), score_all(findable_results), extra


def run_notices() -> dict[str, FieldScore]:
    rows = [json.loads(line) for line in NOTICES.read_text(encoding="utf-8").splitlines() if line.strip()]
    return score_all(
        (
            f"notice {index}: {row['title'] or row['text'][:20]}",
            extract_metadata(row["text"], title=row["title"]),
            row["expected"],
        )
        for index, row in enumerate(rows)
    ), len(rows)


def _table(scores: dict[str, FieldScore]) -> dict:
    return {name: scores[name].summary() for name in SCORED if name in scores}


def plot(report: dict, path: Path) -> bool:
    plt = pyplot(cjk=True)
    panels = (
        (f"laws (n={report['laws']['documents']})", report["laws"]["fields"]),
        ("laws, date printed in text", report["laws"]["fields_where_the_date_is_in_the_text"]),
        (f"written notices (n={report['notices']['documents']})", report["notices"]["fields"]),
    )
    fields = [name for name in SCORED if all(name in table for _, table in panels)]
    figure, axes = plt.subplots(1, len(panels), figsize=(13, 3.8), sharey=True)
    for axis, (label, table) in zip(axes, panels, strict=True):
        positions = range(len(fields))
        axis.bar([p - 0.2 for p in positions], [table[f]["precision"] for f in fields], 0.4, label="precision")
        axis.bar([p + 0.2 for p in positions], [table[f]["recall"] for f in fields], 0.4, label="recall")
        axis.set_xticks(list(positions), fields, rotation=30, ha="right")
        axis.axhline(0.95, color="grey", linewidth=0.6, linestyle="--")
        axis.axhline(0.90, color="grey", linewidth=0.6, linestyle=":")
        axis.set_title(label)
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", nargs="?", type=Path, default=DEFAULT_MIRROR, help="bare git dir of LawRefBook/Laws")
    parser.add_argument("--split", choices=("dev", "test"), default="test")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--misses", type=int, default=25, help="misses to print per field")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    laws = law_files(args.mirror)
    sample = split_samples(laws, seed=args.seed, size=args.size)[args.split]
    law_scores, findable_scores, law_extra = run_laws(args.mirror, sample)
    notice_scores, notice_count = run_notices()
    commit = git(args.mirror, "rev-parse", "HEAD").decode().strip()
    report = {
        "command": f"python -m eval.bench_metadata {args.mirror} --split {args.split} --seed {args.seed} "
        f"--size {args.size}",
        "laws": {
            "source": f"LawRefBook/Laws@{commit}",
            "split": args.split,
            "eligible": len(laws),
            **law_extra,
            "fields": _table(law_scores),
            "fields_where_the_date_is_in_the_text": _table(findable_scores),
        },
        "notices": {
            "source": str(NOTICES.relative_to(REPO)),
            "documents": notice_count,
            "fields": _table(notice_scores),
        },
        "misses": {
            key: {name: score.examples[: args.misses] for name, score in scores.items() if score.examples}
            for key, scores in (("laws", law_scores), ("notices", notice_scores))
        },
    }
    REPORTS.mkdir(parents=True, exist_ok=True)
    out = REPORTS / f"metadata-{args.split}.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    plotted = plot(report, REPORTS / f"metadata-{args.split}.png")
    summary = {key: report[key]["fields"] for key in ("laws", "notices")}
    summary["laws, dates printed in the text"] = report["laws"]["fields_where_the_date_is_in_the_text"]
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    print(json.dumps(law_extra, ensure_ascii=False))
    for key, by_field in report["misses"].items():
        for name, examples in by_field.items():
            print(f"-- {key} {name}: {len(examples)} shown")
            for example in examples:
                print("   ", json.dumps(example, ensure_ascii=False))
    print(f"report: {out}" + (f", plot: {out.with_suffix('.png')}" if plotted else ""))
    return report


if __name__ == "__main__":
    main()
