"""Gold questions asked of the seed documents uploaded as scans (``python -m eval.bench_ocr --gold``).

Each seed document is laid out on A4 pages (eval.scans), rendered as a scan
(200 dpi, 1 degree of skew, light speckle), made into an image-only PDF and
read by the real PDF reader, which OCRs every page. Two indexes are built in
a temporary directory: one from the documents' text, one from their scans.
The answerable gold questions whose answer strings stand on one page are asked
of both (hybrid mode); a question counts as answered when it is not declined
and the answer holds a gold string.
"""

from __future__ import annotations

import json
import logging
import statistics
import tempfile
import time
from pathlib import Path

from tqdm import tqdm

from eval.scans import Scan, layout, page_text, render_page, scanned_pdf
from index.ingest.clean import clean_text
from index.ingest.corpus import load_corpus
from index.ingest.documents import SourceDocument
from index.quality.gold import contains_answer, load_questions

logger = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[1]
SCAN = Scan(dpi=200, skew_deg=1.0, speckle=0.001)


def scanned_sources(documents: list[SourceDocument]) -> tuple[list[SourceDocument], dict]:
    from index.ingest.readers import read_bytes

    sources, stats = [], {"pages": 0, "seconds": 0.0, "confidence": []}
    for document in tqdm(documents, desc="scanning and OCR", unit="document"):
        pages = layout(document.raw_text)
        images = [render_page(lines, Scan(**{**vars(SCAN), "seed": n})) for n, lines in enumerate(pages)]
        started = time.perf_counter()
        read = read_bytes(scanned_pdf(images, SCAN.dpi), f"{document.doc_id}.pdf")
        stats["seconds"] += time.perf_counter() - started
        stats["pages"] += len(pages)
        stats["confidence"].extend(c for c in read.page_confidence if c is not None)
        sources.append(
            SourceDocument(
                document.doc_id, document.title, document.source, read.text, read.pages, "corpus", read.page_confidence
            )
        )
    return sources, stats


def on_one_page(document: SourceDocument, answers: tuple[str, ...]) -> bool:
    """Whether a gold string stands whole on one page of the scanned layout."""
    return any(contains_answer(clean_text(page_text(lines)), answers) for lines in layout(document.raw_text))


def _engine(data_dir: Path, sources: list[SourceDocument]):
    from index.stores.local.build import build_index
    from service.engines import open_engine, passage_embedder
    from service.settings import Settings

    settings = Settings(data_dir=data_dir, build_on_start=False)
    build_index(sources=sources, data_dir=data_dir, embedder=passage_embedder(settings), chunking=settings.chunking())
    return open_engine(settings)


def _answered(engine, question) -> bool:
    answer = engine.ask(question.question, top_k=5, mode="hybrid", doc_ids=None).answer
    return answer.answerable and contains_answer(answer.text, question.answers)


def gold_on_scans(engine_name: str = "rapidocr") -> dict:
    from index.ingest.readers import ocr_pages

    ocr_pages.OCR_ENGINE = engine_name
    documents = {d.doc_id: d for d in load_corpus(REPO / "docs_raw")}
    questions = [q for q in load_questions() if q.answerable and on_one_page(documents[q.doc_id], q.answers)]
    scans, stats = scanned_sources(list(documents.values()))
    with tempfile.TemporaryDirectory(prefix="policyqa-ocr-gold-") as work:
        text_engine = _engine(Path(work) / "text", list(documents.values()))
        scan_engine = _engine(Path(work) / "scans", scans)
        rows = [
            {"id": q.id, "text": _answered(text_engine, q), "scan": _answered(scan_engine, q)}
            for q in tqdm(questions, desc="asking", unit="question")
        ]
        text_engine.close()
        scan_engine.close()
    result = {
        "engine": engine_name,
        "scan": vars(SCAN),
        "questions_on_one_page": len(rows),
        "answered_from_text": sum(r["text"] for r in rows),
        "answered_from_scans": sum(r["scan"] for r in rows),
        "lost_on_scans": [r["id"] for r in rows if r["text"] and not r["scan"]],
        "gained_on_scans": [r["id"] for r in rows if r["scan"] and not r["text"]],
        "pages": stats["pages"],
        "ocr_pages_per_s": round(stats["pages"] / stats["seconds"], 3),
        "mean_page_confidence": round(statistics.fmean(stats["confidence"]), 4),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return result
