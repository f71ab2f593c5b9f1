"""What document filters cost an answer, on a scale tier: ask p50 with no filter against filters that admit
every document, half of them and a tenth, and the cost of the policy view each generation needs.

    python -m eval.bench_filters [--work-dir DIR] [--tier 100000] [--rounds 3] [--out DIR] [--http]

The tier is eval.bench_scale's synthetic corpus (built into --work-dir unless it is there already). Its
documents are made from the seed texts, which name no issuer or date, so each is given a level, an issuer
and a date as a staff correction would: the same code path a filter takes over extracted fields. Rounds are
interleaved (every variant asks each question in turn), so load falls on all of them alike. With ``--http`` the
same questions go to ``POST /api/ask`` of a ``policyqa serve`` over the tier (the corrections written into its
registry first), so the figure includes validation, the view's cache and the JSON of the citations.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from tqdm import tqdm

from eval.plotting import pyplot

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {
    "none": None,
    "every document (validity current)": {"validity": ["current"]},
    "half (date_from 2020-01-01)": {"date_from": "2020-01-01"},
    "a tenth (level 省)": {"levels": ["省"]},
    "a tenth, two fields (level 省 + issuer 河南)": {"levels": ["省"], "issuers": ["河南"]},
}


def corrections(doc_ids: list[str]) -> dict[str, dict]:
    """A level, an issuer and a date for each document: a tenth provincial, dates spread over ten years."""
    found = {}
    for n, doc_id in enumerate(sorted(doc_ids)):
        provincial = n % 10 == 0
        fields = {
            "level": "省" if provincial else "县",
            "issuers": ["河南省人民政府办公厅" if provincial else "某县人民政府"],
            "published_date": f"{2015 + n % 10}-06-01",
        }
        found[doc_id] = {"fields": fields, "validity": None, "set_by": "bench", "set_at": ""}
    return found


def ensure_tier(work_dir: Path, tier: int) -> Path:
    data_dir = work_dir / f"tier-{tier}"
    if not (data_dir / "build.json").exists():
        command = ["-m", "eval.bench_scale", "--tiers", str(tier), "--builds-only", "--work-dir", str(work_dir)]
        subprocess.run([sys.executable, *command], cwd=REPO, check=True)
    return data_dir


def timed_ms(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def measure(data_dir: Path, rounds: int) -> dict:
    from index.answering.document_filters import DocumentFilters
    from index.quality.gold import load_questions
    from service.engines import open_engine
    from service.settings import Settings

    engine = open_engine(Settings(data_dir=data_dir, build_on_start=False))
    doc_ids = [d.doc_id for d in engine.documents()]
    given = corrections(doc_ids)
    engine.use_document_overrides(lambda: given)
    view_cold_ms = timed_ms(engine.policy_view)  # every document's text read and its metadata extracted
    engine.policy.changed()
    view_warm_ms = timed_ms(engine.policy_view)  # a new generation or a correction: extraction is kept
    questions = [q.question for q in load_questions()]
    filters = {name: None if v is None else DocumentFilters(**{k: tuple(x) if isinstance(x, list) else x
                                                               for k, x in v.items()})
               for name, v in VARIANTS.items()}  # fmt: skip
    admitted = {name: len(engine.policy_view().scope(None, f) or doc_ids) for name, f in filters.items()}
    for question in questions[:10]:  # warm: the encoder, FAISS pages, the BM25 arrays
        engine.ask(question, top_k=5, mode="hybrid", doc_ids=None)
    times: dict[str, list[float]] = {name: [] for name in filters}
    for _ in tqdm(range(rounds), desc="rounds", unit="round"):
        for question in questions:
            for name, chosen in filters.items():
                times[name].append(
                    timed_ms(
                        lambda q=question, f=chosen: engine.ask(q, top_k=5, mode="hybrid", doc_ids=None, filters=f)
                    )
                )
    engine.close()
    base = statistics.median(times["none"])
    return {
        "documents": len(doc_ids),
        "view_cold_ms": round(view_cold_ms, 1),
        "view_warm_ms": round(view_warm_ms, 1),
        "questions": len(questions),
        "rounds": rounds,
        "variants": {
            name: {
                "documents_admitted": admitted[name],
                "p50_ms": round(statistics.median(t), 2),
                "p90_ms": round(statistics.quantiles(t, n=10)[-1], 2),
                "ratio_to_none": round(statistics.median(t) / base, 3),
            }
            for name, t in times.items()
        },
    }


def measure_http(data_dir: Path, rounds: int) -> dict:
    import httpx

    from eval.server import start_server
    from index.quality.gold import load_questions
    from service.stores.registry import DEFAULT_KB, REGISTRY_FILE, SqliteRegistry

    registry = SqliteRegistry(data_dir / REGISTRY_FILE)
    doc_ids = _doc_ids(data_dir)
    for doc_id, body in corrections(doc_ids).items():
        registry.put_document_override(DEFAULT_KB, doc_id, body)
    # The first filtered question builds the policy view of every document (seconds at this size): not a timeout.
    env = {"POLICYQA_BUILD_ON_START": "false", "POLICYQA_REQUEST_TIMEOUT_S": "600"}
    server = start_server(data_dir, env, timeout=900, copy=False)
    questions = [q.question for q in load_questions()]
    times: dict[str, list[float]] = {name: [] for name in VARIANTS}
    try:
        with httpx.Client(base_url=server.url, timeout=120) as client:

            def ask(question: str, chosen: dict | None) -> None:
                body = {"question": question, "top_k": 5, "mode": "hybrid"}
                response = client.post("/api/ask", json=body if chosen is None else {**body, "filters": chosen})
                response.raise_for_status()

            first_view_ms = timed_ms(lambda: ask(questions[0], VARIANTS["a tenth (level 省)"]))
            for question in questions[:10]:
                ask(question, None)
            for _ in tqdm(range(rounds), desc="rounds (HTTP)", unit="round"):
                for question in questions:
                    for name, chosen in VARIANTS.items():
                        times[name].append(timed_ms(lambda q=question, f=chosen: ask(q, f)))
    finally:
        server.stop()
    base = statistics.median(times["none"])
    return {
        "documents": len(doc_ids),
        "first_filtered_ask_ms": round(first_view_ms, 1),
        "questions": len(questions),
        "rounds": rounds,
        "variants": {
            name: {
                "p50_ms": round(statistics.median(t), 2),
                "p90_ms": round(statistics.quantiles(t, n=10)[-1], 2),
                "ratio_to_none": round(statistics.median(t) / base, 3),
            }
            for name, t in times.items()
        },
    }


def _doc_ids(data_dir: Path) -> list[str]:
    from service.engines import open_engine
    from service.settings import Settings

    engine = open_engine(Settings(data_dir=data_dir, build_on_start=False))
    try:
        return sorted(d.doc_id for d in engine.documents())
    finally:
        engine.close()


def plot(result: dict, path: Path) -> None:
    plt = pyplot(cjk=True)  # the variants name 省 and 河南
    names = list(result["variants"])
    p50 = [result["variants"][n]["p50_ms"] for n in names]
    figure, axis = plt.subplots(figsize=(9, 4))
    axis.barh(names, p50, color=["#777"] + ["#1d4ed8"] * (len(names) - 1))
    axis.axvline(p50[0] * 1.1, color="#b91c1c", linestyle="--", label="target: no filter + 10%")
    axis.set_xlabel(f"{'HTTP POST /api/ask' if result.get('http') else 'in-process /ask'} p50 (ms)")
    axis.set_title(f"filters on {result['documents']} documents ({result['tier']} chunks)")
    axis.invert_yaxis()
    axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/policyqa-scale"))
    parser.add_argument("--tier", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "eval" / "reports")
    parser.add_argument("--http", action="store_true", help="ask a real server over HTTP instead of in-process")
    args = parser.parse_args(argv)
    data_dir = ensure_tier(args.work_dir, args.tier)
    measured = measure_http(data_dir, args.rounds) if args.http else measure(data_dir, args.rounds)
    result = {"tier": args.tier, "http": args.http, **measured}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"filters{'-http' if args.http else ''}-{datetime.now():%Y%m%dT%H%M%S}"
    stem.with_suffix(".json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    plot(result, stem.with_suffix(".png"))
    print(json.dumps(result, ensure_ascii=False, indent=2))
    print(f"written: {stem}.json, {stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
