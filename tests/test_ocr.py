"""OCR of scans made here as a scanner would (a seed page in a CJK font, 150-200 dpi, skew, speckle):
images, mixed PDFs page by page, pages fed in sideways, and a scanned PDF cited with its page
through the real server."""

from __future__ import annotations

import io
import re
import shutil
import warnings
import zipfile

import httpx
import numpy as np
import pytest
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from eval.bench_ocr import cer
from eval.scans import Scan, image_bytes, layout, page_text, render_page, scanned_pdf
from index.ingest.ocr import OcrLine, estimate_skew, paragraphs
from index.ingest.readers import FileTooLargeError, read_bytes
from index.ingest.readers import ocr_pages as ocr_pages_module
from tests.conftest import DOCS_RAW, start_server, stop_server

TOKEN = "ocr-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
SEED = (DOCS_RAW / "haian-central-town-reform.txt").read_text(encoding="utf-8")


def seed_page(lines: int | None = None) -> list[str]:
    page = layout(SEED)[0]
    return page[:lines] if lines else page


def test_skew_is_measured_and_lines_become_paragraphs():
    image = np.asarray(render_page(seed_page(12), Scan(dpi=100, skew_deg=2.0)))
    assert estimate_skew(image) == pytest.approx(2.0, abs=0.3)
    lines = [  # an indented opening line, a full line, a short closing line, then a new paragraph
        OcrLine("一、总体要求", 0.99, (140, 100, 400, 130)),
        OcrLine("各乡镇设立应急管理办公室，核定编", 0.98, (100, 150, 1000, 180)),
        OcrLine("制7名。", 0.97, (100, 200, 300, 230)),
        OcrLine("二、保障措施", 0.99, (140, 250, 400, 280)),
    ]
    assert paragraphs(lines[::-1]) == "一、总体要求\n各乡镇设立应急管理办公室，核定编制7名。\n二、保障措施"


def test_scanned_image_is_read_with_its_confidence():
    lines = seed_page()
    data = image_bytes(render_page(lines, Scan(dpi=200, skew_deg=1.0, speckle=0.001, seed=3)), "PNG", 200)
    read = read_bytes(data, "扫描件.png")
    assert cer(read.text, page_text(lines)) <= 0.03
    assert len(read.pages) == 1 and read.page_confidence[0] > 0.9
    assert re.match(r"OCR: 1 page, mean confidence (0\.9\d|1\.00)$", read.summary)


def test_mixed_pdf_reads_the_text_layer_and_ocrs_the_scanned_page():
    scanned = seed_page(14)
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(595, 842))
    pdf.setFont("STSong-Light", 14)
    pdf.drawString(72, 760, "第一页是文字版：乡镇机构改革实施方案的总体要求。")
    pdf.showPage()
    image = render_page(scanned, Scan(dpi=150, skew_deg=2.0, speckle=0.002, seed=5))
    pdf.drawImage(ImageReader(image.convert("RGB")), 0, 0, width=595, height=842)
    pdf.showPage()
    pdf.save()
    read = read_bytes(buffer.getvalue(), "mixed.pdf")
    assert read.pages[0] == "第一页是文字版：乡镇机构改革实施方案的总体要求。"
    assert cer(read.pages[1], page_text(scanned)) <= 0.05
    assert read.page_confidence[0] is None and read.page_confidence[1] > 0.9
    assert read.summary.startswith("text layer: 1 page; OCR: 1 page")


def test_a_page_scanned_sideways_is_turned_upright():
    lines = seed_page(8)
    data = image_bytes(render_page(lines, Scan(dpi=150, rotate=90)), "JPEG", 150)
    read = read_bytes(data, "sideways.jpg")
    assert cer(read.text, page_text(lines)) <= 0.05
    assert "1 page turned upright" in read.summary


def test_a_page_scanned_upside_down_is_turned_upright():
    lines = seed_page(6)
    read = read_bytes(image_bytes(render_page(lines, Scan(dpi=150, rotate=180)), "PNG", 150), "upside-down.png")
    assert cer(read.text, page_text(lines)) <= 0.05
    assert "1 page turned upright" in read.summary


def test_an_ofd_page_that_is_only_a_scan_is_ocrd():
    from tests.test_formats import OFD_NS, _ofd

    lines = seed_page(6)
    buffer = io.BytesIO(_ofd([[(25, 40, 4.2, "第一页有文字层，不需要识别。")]]))
    page = '<ofd:Layer ID="0"><ofd:ImageObject ID="9" ResourceID="77" Boundary="0 0 210 297"/></ofd:Layer>'
    res = '<ofd:MultiMedia ID="77" Type="Image"><ofd:MediaFile>scan.png</ofd:MediaFile></ofd:MultiMedia>'
    pages = '<ofd:Page ID="1" BaseLoc="Pages/Page_0/Content.xml"/><ofd:Page ID="2" BaseLoc="Pages/Page_1/Content.xml"/>'
    # The page list is written again: the archive keeps both, and readers take the last (a warning says so).
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "a") as archive:
        warnings.simplefilter("ignore", UserWarning)
        archive.writestr(
            "Doc_0/Pages/Page_1/Content.xml",
            f'<ofd:Page xmlns:ofd="{OFD_NS}"><ofd:Content>{page}</ofd:Content></ofd:Page>',
        )
        archive.writestr(
            "Doc_0/DocumentRes.xml",
            f'<ofd:Res xmlns:ofd="{OFD_NS}" BaseLoc="Res"><ofd:MultiMedias>{res}</ofd:MultiMedias></ofd:Res>',
        )
        archive.writestr("Doc_0/Res/scan.png", image_bytes(render_page(lines, Scan(dpi=150)), "PNG", 150))
        archive.writestr(
            "Doc_0/Document.xml",
            f'<ofd:Document xmlns:ofd="{OFD_NS}"><ofd:CommonData><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>'
            f"</ofd:CommonData><ofd:Pages>{pages}</ofd:Pages></ofd:Document>",
        )
    read = read_bytes(buffer.getvalue(), "scan.ofd")
    assert read.pages[0] == "第一页有文字层，不需要识别。"
    assert cer(read.pages[1], page_text(lines)) <= 0.03
    assert read.page_confidence[0] is None and read.page_confidence[1] > 0.9


def test_a_scan_with_too_many_pages_is_refused_before_ocr(monkeypatch):
    monkeypatch.setattr(ocr_pages_module, "MAX_OCR_PAGES", 1)
    pages = [render_page(seed_page(2), Scan(dpi=72)) for _ in range(2)]
    with pytest.raises(FileTooLargeError, match="at most 1 are read"):
        read_bytes(scanned_pdf(pages, 72), "long-scan.pdf")


# ------------------------------------------------------ through the real server

NOTICE_PAGES = [
    "关于设立乡镇应急管理办公室的通知\n一、总体要求\n各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱、森林防火和安全生产的统筹协调。",
    "二、保障措施\n县财政每年安排专项经费135万元，用于乡镇应急物资储备和救援队伍培训。\n三、实施时间\n本通知自印发之日起施行。",
]


@pytest.fixture(scope="module")
def ocr_server(seed_data_dir, tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("ocr-data")
    shutil.copytree(seed_data_dir, data_dir, dirs_exist_ok=True)
    env = {"POLICYQA_DATA_DIR": str(data_dir), "POLICYQA_BUILD_ON_START": "false", "POLICYQA_ADMIN_TOKEN": TOKEN}
    process, url = start_server(env)
    yield url
    stop_server(process)


def test_scanned_pdf_upload_is_cited_with_its_page_and_confidence(ocr_server):
    images = [
        render_page(layout(text)[0], Scan(dpi=150, skew_deg=1.5, speckle=0.001, seed=n))
        for n, text in enumerate(NOTICE_PAGES)
    ]
    with httpx.Client(base_url=ocr_server, timeout=120) as client:
        before = client.get("/api/documents").json()["count"]
        broken = client.post("/api/documents", headers=AUTH, files={"files": ("scan.png", b"\x89PNG\r\n\x1a\n junk")})
        assert broken.status_code == 422 and "not a readable image" in broken.json()["error"]["message"]
        response = client.post(
            "/api/documents", headers=AUTH, files={"files": ("应急办通知.pdf", scanned_pdf(images, 150))}
        )
        assert response.status_code == 202, response.text
        job = _wait(client, response.json()["jobs"][0]["id"])  # the scan is read by OCR in its job
        assert re.match(r"OCR: 2 pages, mean confidence (0\.9\d|1\.00)$", job["read_summary"]), job
        assert job["state"] == "done" and job["message"].startswith("OCR: 2 pages"), job
        assert client.get("/api/documents").json()["count"] == before + 1
        answer = client.post("/api/ask", json={"question": "乡镇应急管理的专项经费每年安排多少？"}).json()
        assert answer["answerable"] and "135万元" in answer["answer"], answer
        cited = answer["citations"][0]
        # The notice is one passage long: it runs over both pages, and the answer stands on the second.
        assert cited["doc_id"] == job["doc_id"] and cited["pages"] == [1, 2] and "135万元" in cited["text"]
        assert 0.9 < cited["ocr_confidence"] <= 1.0


def _wait(client: httpx.Client, job_id: str) -> dict:
    import time

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        job = client.get(f"/api/jobs/{job_id}", headers=AUTH).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")
