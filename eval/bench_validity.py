"""Validity detection measured on real laws (``python -m eval.bench_validity [MIRROR] [--out DIR]``).

Every law of the LawRefBook/Laws mirror that has a text (``eval.lawrefbook``) becomes one document of a single
knowledge base: its facts are extracted from its text, as the service does, and ``standings()`` is computed on the
mirror commit's date (not today's), so a rerun gives the same figures. The truth is ``law.expired`` in the mirror's
``db.sqlite3``.

The headline counts only ``repealed`` as "not in force": a law amended by a decision is still in force, and the
database counts an earlier version that a later one of the same title replaced sometimes as expired, sometimes not.
``repealed`` or ``amended`` against ``expired`` is reported beside it. Each miss is given one cause, worked out from
the whole corpus (which text names it beside 废止, whether the match failed, whether a later version exists).
Nothing here is imported by the library or needed by the tests.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

from eval.lawrefbook import DEFAULT_MIRROR, git, law_files, law_rows, read_law, render
from eval.plotting import pyplot
from index.answering.policy_view import facts_of
from index.answering.standing import DocumentFacts, Standing, standings
from index.ingest.metadata import extract_metadata, references_match

REPORTS = Path(__file__).resolve().parents[1] / "eval" / "reports"
SEED = 29
_BARE = re.compile(r"[《》〈〉\s\u3000（）()]|^中华人民共和国")
_REPEAL_WORDS = ("废止", "不再执行", "停止执行")

CAUSE_LABELS = {
    "amended: a later version in the corpus (title rule)": "较新版本在库内，判为已修订",
    "amended: a text says it amends it": "有文件称修改了它，判为已修订",
    "title or 文号 mismatch in references_match": "废止语句已抽出，但标题/文号未匹配",
    "a text names it beside 废止, not extracted": "库内文本在“废止”旁提到它，未抽出",
    "a later version in the corpus, not linked": "较新版本在库内，未关联",
    "repealing document not in the corpus": "废止它的文件不在库内",
    "the repealer's reference names an earlier law of the same title": "废止语句指向同名的更早文件",
    "a later law in the corpus repeals it; the db has not marked it": "库内后法明文废止，数据库未标",
    "an undated repealer (it may mean an earlier law of the same title)": "废止者无日期（可能指同名旧法）",
    "expiry date passed": "有效期已过",
}


def _bare(title: str) -> str:
    return _BARE.sub("", title or "")


def load_corpus(mirror: Path) -> tuple[list[dict], dict[str, DocumentFacts], dict[str, str]]:
    """The laws with a text, their facts (keyed by path) and their texts."""
    laws = law_files(mirror)
    facts: dict[str, DocumentFacts] = {}
    texts: dict[str, str] = {}
    for law in laws:
        title, text, _ = render(read_law(mirror, law["path"]))
        facts[law["path"]] = facts_of(law["path"], title, extract_metadata(text, title=title))
        texts[law["path"]] = text
    return laws, facts, texts


def confusion(laws: list[dict], found: dict[str, Standing], statuses: tuple[str, ...]) -> dict:
    """Counts, precision and recall of "not in force" (our ``statuses``) against the database's ``expired``."""
    counts = Counter()
    for law in laws:
        ours = found[law["path"]].status in statuses
        counts[("tp" if law["expired"] else "fp") if ours else ("fn" if law["expired"] else "tn")] += 1
    tp, fp, fn = counts["tp"], counts["fp"], counts["fn"]
    return {
        "tp": tp, "fp": fp, "fn": fn, "tn": counts["tn"],
        "precision": round(tp / (tp + fp), 3) if tp + fp else None,
        "recall": round(tp / (tp + fn), 3) if tp + fn else None,
    }  # fmt: skip


class MissCauses:
    """Why a law was judged wrongly, read from the whole corpus rather than from the standing alone."""

    def __init__(self, laws: list[dict], facts: dict[str, DocumentFacts], texts: dict[str, str]) -> None:
        self.laws = {law["path"]: law for law in laws}
        self.facts, self.texts = facts, texts
        self.versions: dict[str, list[str]] = defaultdict(list)
        for law in laws:
            self.versions[_bare(law["name"])].append(law["path"])

    def missed(self, path: str, standing: Standing) -> tuple[str, dict]:
        """The database says expired; we said something other than repealed."""
        if standing.status == "amended":
            cause = "amended: a later version in the corpus (title rule)" if standing.source == "title" else (
                "amended: a text says it amends it")  # fmt: skip
            return cause, {"by": standing.by_doc_id}
        doc = self.facts[path]
        key = _bare(doc.title) or _bare(self.laws[path]["name"])
        for other, facts in self.facts.items():
            for reference in facts.repeals if other != path else ():
                if key and (key in _bare(reference) or _bare(reference.split("》")[0]) == key):
                    return "title or 文号 mismatch in references_match", {"by": other, "reference": reference,
                                                                          "doc_number": doc.doc_number}  # fmt: skip
        for other, text in self.texts.items():
            if other != path and (where := _named_beside_repeal(text, key)) is not None:
                return "a text names it beside 废止, not extracted", {"by": other, "sentence": where}
        later = [
            v
            for v in self.versions[_bare(self.laws[path]["name"])]
            if self.laws[v]["publish"] > self.laws[path]["publish"]
        ]
        if later:
            return "a later version in the corpus, not linked", {"later": later}
        return "repealing document not in the corpus", {}

    def wrongly_repealed(self, path: str, standing: Standing) -> tuple[str, dict]:
        """We said repealed; the database says in force."""
        detail = {"by": standing.by_doc_id, "reference": standing.reference, "since": standing.since}
        if standing.source == "date":
            return "expiry date passed", detail
        by = self.facts.get(standing.by_doc_id or "")
        doc = self.facts[path]
        if by is not None and by.date and doc.date and doc.date > by.date:
            return "the repealer's reference names an earlier law of the same title", detail
        if standing.since is None:
            return "an undated repealer (it may mean an earlier law of the same title)", detail
        return "a later law in the corpus repeals it; the db has not marked it", detail


def _named_beside_repeal(text: str, key: str) -> str | None:
    if len(key) < 4 or key not in _bare(text):
        return None
    for sentence in re.split(r"[。；;\n]", text):
        if any(word in sentence for word in _REPEAL_WORDS) and key in _bare(sentence):
            return sentence[:160]
    return None


def evaluate(laws: list[dict], found: dict[str, Standing], causes: MissCauses) -> dict:
    misses: dict[str, list] = defaultdict(list)
    wrong: dict[str, list] = defaultdict(list)
    for law in laws:
        standing = found[law["path"]]
        if law["expired"] and standing.status != "repealed":
            cause, detail = causes.missed(law["path"], standing)
            misses[cause].append({"law": law["path"], **detail})
        elif not law["expired"] and standing.status == "repealed":
            cause, detail = causes.wrongly_repealed(law["path"], standing)
            wrong[cause].append({"law": law["path"], **detail})
    statuses = Counter((law["expired"], found[law["path"]].status, found[law["path"]].source) for law in laws)
    return {
        "laws": len(laws),
        "expired_in_db": sum(law["expired"] for law in laws),
        "repealed": confusion(laws, found, ("repealed",)),
        "repealed_or_amended": confusion(laws, found, ("repealed", "amended")),
        "statuses": [{"db_expired": e, "status": s, "source": src, "laws": n}
                     for (e, s, src), n in sorted(statuses.items())],
        "missed_by_cause": _counted(misses),
        "wrongly_repealed_by_cause": _counted(wrong),
        "missed": misses,
        "wrongly_repealed": wrong,
    }  # fmt: skip


def _counted(by_cause: dict[str, list]) -> dict[str, int]:
    return dict(sorted(((cause, len(items)) for cause, items in by_cause.items()), key=lambda kv: -kv[1]))


def halves(laws: list[dict], *, seed: int) -> dict[str, list[dict]]:
    """A seeded split of the laws judged (the corpus they are judged in stays whole: links cross the split)."""
    shuffled = sorted(laws, key=lambda law: law["path"])
    random.Random(seed).shuffle(shuffled)
    middle = len(shuffled) // 2
    return {"dev": shuffled[:middle], "test": shuffled[middle:]}


def plot(report: dict, path: Path) -> bool:
    plt = pyplot(cjk=True)
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": [1, 2.2]})
    rows = (
        ("已废止 vs expired", report["all"]["repealed"]),
        ("已废止+已修订 vs expired", report["all"]["repealed_or_amended"]),
    )
    for offset, (name, colour) in enumerate((("precision", "tab:blue"), ("recall", "tab:orange"))):
        values = [row[name] or 0 for _, row in rows]
        left.bar([i + (offset - 0.5) * 0.4 for i in range(len(rows))], values, 0.4, label=name, color=colour)
    left.set_xticks(range(len(rows)), [label for label, _ in rows])
    left.set_ylim(0, 1)
    left.legend()
    left.set_title(f"不再有效的判断（{report['all']['laws']} 部法律，{report['today']}）")
    causes = [(CAUSE_LABELS.get(c, c), n, "tab:red") for c, n in report["all"]["missed_by_cause"].items()]
    causes += [(CAUSE_LABELS.get(c, c), n, "tab:grey") for c, n in report["all"]["wrongly_repealed_by_cause"].items()]
    right.barh(range(len(causes)), [n for _, n, _ in causes], color=[c for *_, c in causes])
    right.set_yticks(range(len(causes)), [label for label, *_ in causes])
    right.invert_yaxis()
    right.set_title("漏判（红，数据库已失效）与误判为已废止（灰）的原因")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mirror", nargs="?", type=Path, default=DEFAULT_MIRROR, help="bare git dir of LawRefBook/Laws")
    parser.add_argument("--out", type=Path, default=REPORTS, help="where the JSON report and the plot go")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the dev/test halves")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    commit = git(args.mirror, "rev-parse", "HEAD").decode().strip()
    today = git(args.mirror, "log", "-1", "--format=%cs", "HEAD").decode().strip()
    laws, facts, texts = load_corpus(args.mirror)
    found = standings(facts, today=today, references_match=references_match)
    causes = MissCauses(laws, facts, texts)
    report = {
        "command": f"python -m eval.bench_validity {args.mirror} --seed {args.seed}",
        "source": f"LawRefBook/Laws@{commit}",
        "today": today,
        "db_rows": len(law_rows(args.mirror)),
        "all": evaluate(laws, found, causes),
        "halves": {
            name: {k: v for k, v in evaluate(part, found, causes).items() if k not in ("missed", "wrongly_repealed")}
            for name, part in halves(laws, seed=args.seed).items()
        },
    }
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "validity.json"
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    plotted = plot(report, out.with_suffix(".png"))
    headline = {k: report["all"][k] for k in ("laws", "expired_in_db", "repealed", "repealed_or_amended")}
    print(json.dumps({"today": today, "db_rows": report["db_rows"], **headline}, ensure_ascii=False, indent=1))
    for name, part in report["halves"].items():
        print(f"{name} half:", json.dumps({k: part[k] for k in ("laws", "repealed", "repealed_or_amended")}))
    for key in ("missed", "wrongly_repealed"):
        for cause, items in report["all"][key].items():
            print(f"-- {key}: {cause}: {len(items)}")
            for item in items[:6]:
                print("   ", json.dumps(item, ensure_ascii=False))
    print(f"report: {out}" + (f", plot: {out.with_suffix('.png')}" if plotted else ""))
    return report


if __name__ == "__main__":
    main()
