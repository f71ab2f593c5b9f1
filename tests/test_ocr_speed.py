"""The fast paths of OCR against their plain versions, on the real engine: a page's lines recognised
together in width buckets read as each line alone does; pages read in parallel come back in order,
read as one at a time; lines narrowed for speed still read runs of repeated digits; small print is
still found on a page shrunk for detection."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from eval.bench_ocr import cer, seed_pages
from eval.scans import Scan, layout, page_text, render_page
from index.ingest.ocr import engine, ocr_image, to_grey
from index.ingest.readers import ocr_pages
from index.ingest.readers.ocr_pages import recognise
from tests.conftest import DOCS_RAW

SEED = (DOCS_RAW / "haian-central-town-reform.txt").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def rapidocr():
    from index.ingest.ocr_rapid import RapidOcrEngine

    return RapidOcrEngine()


def test_lines_recognised_in_width_buckets_read_as_each_line_alone(rapidocr):
    from index.ingest.ocr_rapid import _crop

    lines = layout(SEED)[0][:10]
    grey = to_grey(np.asarray(render_page(lines, Scan(dpi=150, speckle=0.001, seed=2))))
    crops = [_crop(grey, box) for box in rapidocr.detect(grey)]
    assert len(crops) >= len(lines)  # full lines, short closing lines: more than one width bucket
    alone = [rapidocr.recognise([crop])[0] for crop in crops]
    together = rapidocr.recognise(crops)
    assert [text for text, _ in together] == [text for text, _ in alone]
    assert [score for _, score in together] == pytest.approx([score for _, score in alone], abs=0.02)


def test_pages_read_in_parallel_come_back_in_order_as_read_one_at_a_time(monkeypatch):
    pages = [page[:8] for page in seed_pages(3)]  # the first page of three seed documents
    images = [np.asarray(render_page(lines, Scan(dpi=150, seed=n))) for n, lines in enumerate(pages)]
    threads: set[str] = set()

    def reading(image, ocr):
        threads.add(threading.current_thread().name)
        return ocr_image(image, ocr)

    one_at_a_time = [page.text for page in recognise(images, parallel=1)]
    monkeypatch.setattr(ocr_pages, "ocr_image", reading)
    in_parallel = [page.text for page in recognise(images, parallel=2)]
    assert in_parallel == one_at_a_time
    assert len(threads) == 2
    for text, lines in zip(in_parallel, pages, strict=True):
        assert cer(text, page_text(lines)) <= 0.03


@pytest.mark.parametrize("dpi", [150, 200])
def test_narrowed_lines_keep_repeated_digits(dpi):
    # At half the width the model merges repeated digits ("3333" -> "33"); the narrowing must stay short of that.
    text = "\n".join(
        [
            "2019年11月1日起，县财政每年安排专项经费1100万元，用于100个乡镇的应急物资储备。",
            "第33条：2000年至2022年间，人口由111万人增至1001万人，增长率为11.1%，GDP达3333.33亿元。",
            "文件编号：苏政办发〔2018〕111号，联系电话0513-88001100，邮编226600，共计77页。",
        ]
        * 3
    )
    lines = layout(text)[0]
    page = ocr_image(np.asarray(render_page(lines, Scan(dpi=dpi))), engine("rapidocr"))
    assert cer(page.text, page_text(lines)) <= 0.002


def test_small_print_is_found_on_the_page_shrunk_for_detection(monkeypatch):
    from eval import scans

    monkeypatch.setattr(scans, "FONT_POINTS", 10)  # 10 pt: 43 characters a line, 42 lines a page
    lines = layout(SEED)[0]
    image = np.asarray(render_page(lines, Scan(dpi=150, skew_deg=2.0, speckle=0.002, seed=4)))
    page = ocr_image(image, engine("rapidocr"))
    assert page.lines >= len(lines)
    assert cer(page.text, page_text(lines)) <= 0.02
