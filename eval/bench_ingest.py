"""Time to add one 10-page PDF to a running service, and /api/ask latency meanwhile.

    python -m eval.bench_ingest --url http://127.0.0.1:8000 --token TOKEN [--pages 10]

The PDF is made from the seed documents' sentences (reportlab, a CJK font
built into PDF readers), about 900 characters a page. The document is deleted
afterwards, so the index is left as it was.
"""

from __future__ import annotations

import argparse
import io
import statistics
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]


def sentences() -> list[str]:
    from index.ingest.clean import clean_text
    from index.ingest.corpus import load_corpus

    text = "".join(clean_text(d.raw_text) for d in load_corpus(REPO / "docs_raw"))
    return [s + "。" for s in text.replace("\n", "").split("。") if len(s) > 15]


def make_pdf(pages: int, chars_per_page: int = 900) -> bytes:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfgen import canvas

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    pool, at = sentences(), 0
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    for page in range(pages):
        text = f"第{page + 1}页 基准测试文件。"
        while len(text) < chars_per_page:
            text += pool[at % len(pool)]
            at += 7
        pdf.setFont("STSong-Light", 10)
        for row, start in enumerate(range(0, len(text), 45)):
            pdf.drawString(40, 800 - 14 * row, text[start : start + 45])
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--token", required=True)
    parser.add_argument("--pages", type=int, default=10)
    args = parser.parse_args(argv)
    auth = {"Authorization": f"Bearer {args.token}"}
    data = make_pdf(args.pages)
    with httpx.Client(base_url=args.url, timeout=120) as client:
        health = client.get("/api/health").json()
        print(f"index: {health['documents']} documents, {health['chunks']} chunks; PDF {len(data) // 1024} KB")
        idle = []
        for _ in range(20):
            started = time.perf_counter()
            client.post("/api/ask", json={"question": "镇江市共有多少个街道？"}).raise_for_status()
            idle.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        job = client.post("/api/documents", headers=auth, files={"files": ("bench.pdf", data)}).json()["jobs"][0]
        busy, done = [], threading.Event()
        while True:
            state = client.get(f"/api/jobs/{job['id']}", headers=auth).json()
            if state["state"] in ("done", "failed"):
                break
            t = time.perf_counter()
            client.post("/api/ask", json={"question": "镇江市共有多少个街道？"}).raise_for_status()
            busy.append((time.perf_counter() - t) * 1000)
        elapsed = time.perf_counter() - started
        done.set()
        print(f"add {args.pages}-page PDF: {state['state']} in {elapsed:.1f} s, {state['embedded_passages']} passages")
        for name, values in (("ask idle", idle), ("ask during ingestion", busy)):
            values = sorted(values)
            print(
                f"{name:<22} n={len(values):4} p50 {statistics.median(values):6.1f} ms"
                f"  p95 {values[int(len(values) * 0.95) - 1]:6.1f} ms  max {values[-1]:6.1f} ms"
            )
        client.delete(f"/api/documents/{state['doc_id']}", headers=auth).raise_for_status()


if __name__ == "__main__":
    main()
