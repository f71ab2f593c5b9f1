"""OCR accuracy and speed on seed pages rendered as scans, and gold questions asked of scanned documents.

    python -m eval.bench_ocr [--engines rapidocr tesseract] [--pages 6] [--json out.json]
    python -m eval.bench_ocr --gold [--engine rapidocr]

Pages are the seed documents laid out on A4 (eval.scans: a CJK font, 14 pt)
and rendered at 200 dpi clean, and at 150 dpi turned by 2 degrees with
speckle. The character error rate is the edit distance between what the
engine read and the page's text over the page's length, both with whitespace
removed and NFKC-folded (so a full-width comma read as a half-width one is
not an error). Speed is pages a second for each condition's pages read as an
upload reads a scan (``index.ingest.readers.ocr_pages.recognise``, pages in
parallel across the cores), with the process's CPU seconds a page beside it:
on a shared machine the CPU seconds move less than the wall clock.

``python -m eval.bench_ocr_ab --base DIR`` runs this benchmark on another
checkout (``git worktree add DIR <commit>``) and on this one in turns, and
reports their ratios.

``--gold`` uploads nothing: it reads each gold document as a scanned PDF
through the real reader (index.readers), indexes it in a temporary directory
in place of its text, and asks the gold questions whose answers lie on it.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import time
import unicodedata
from pathlib import Path

from eval.scans import Scan, layout, page_text, render_page

REPO = Path(__file__).resolve().parents[1]
CONDITIONS = {"200dpi": Scan(dpi=200), "150dpi+skew2+speckle": Scan(dpi=150, skew_deg=2.0, speckle=0.002, seed=7)}


def normalise(text: str) -> str:
    return "".join(unicodedata.normalize("NFKC", text).split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one row at a time."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def cer(hypothesis: str, reference: str) -> float:
    reference, hypothesis = normalise(reference), normalise(hypothesis)
    return edit_distance(hypothesis, reference) / max(len(reference), 1)


def seed_pages(count: int) -> list[list[str]]:
    """The first page of each seed document, then their second pages, until ``count``."""
    from index.ingest.corpus import load_corpus

    documents = [layout(d.raw_text) for d in load_corpus(REPO / "docs_raw")]
    pages = [doc[i] for i in range(3) for doc in documents if i < len(doc)]
    return pages[:count]


def _cpu() -> float:
    """CPU seconds of this process and its finished children (tesseract runs as one)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def bench_engine(name: str, pages: list[list[str]]) -> dict:
    """Each condition's pages read as an upload reads a scan (``ocr_pages.recognise``: in parallel where it can)."""
    import numpy as np

    from index.ingest.readers import ocr_pages

    ocr_pages.OCR_ENGINE = name
    # Two lines read first, so that both models load (rapidocr loads each on first use) outside the timing.
    list(ocr_pages.recognise([np.asarray(render_page(pages[0][:2], Scan(dpi=100)))]))
    rows = {}
    for condition, scan in CONDITIONS.items():
        images = [
            np.asarray(render_page(lines, Scan(**{**vars(scan), "seed": scan.seed + number})))
            for number, lines in enumerate(pages)
        ]
        wall, cpu = time.perf_counter(), _cpu()
        read = list(ocr_pages.recognise(images))
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        errors = [cer(page.text, page_text(lines)) for page, lines in zip(read, pages, strict=True)]
        rows[condition] = {
            "cer": round(statistics.fmean(errors), 4),
            "cer_max": round(max(errors), 4),
            "pages_per_s": round(len(pages) / wall, 3),
            "cpu_s_per_page": round(cpu / len(pages), 2),
            "confidence": round(statistics.fmean(page.confidence for page in read), 3),
        }
        logging.getLogger(__name__).info("%s %s %s", name, condition, rows[condition])
    return rows


def print_table(results: dict[str, dict]) -> None:
    print("| engine | condition | CER mean | CER worst page | pages/s | CPU s/page | mean confidence |")
    print("|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        for condition, r in rows.items():
            print(
                f"| {name} | {condition} | {r['cer']:.2%} | {r['cer_max']:.2%} | {r['pages_per_s']:.2f} "
                f"| {r['cpu_s_per_page']:.2f} | {r['confidence']:.3f} |"
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["rapidocr", "tesseract"])
    parser.add_argument("--pages", type=int, default=6)
    parser.add_argument("--gold", action="store_true", help="gold questions asked of scanned documents")
    parser.add_argument("--engine", default="rapidocr", help="the engine --gold reads with")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.gold:
        from eval.bench_ocr_gold import gold_on_scans

        results = gold_on_scans(args.engine)
    else:
        pages = seed_pages(args.pages)
        results = {name: bench_engine(name, pages) for name in args.engines}
        print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
