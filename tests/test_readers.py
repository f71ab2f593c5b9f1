"""Readers over real files: DOCX built by python-docx, PDF by reportlab, HTML and text in real-world encodings."""

from __future__ import annotations

import io

import docx
import pytest
from pypdf import PdfReader, PdfWriter
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen import canvas

from index.errors import InvalidInputError
from index.ingest.chunk import ChunkingParams
from index.ingest.corpus import load_corpus
from index.ingest.readers import (
    READERS,
    SUPPORTED,
    NeedsOcrError,
    UnsupportedFormatError,
    read_bytes,
    read_document,
    read_path,
)
from tests.conftest import DOCS_RAW

NOTICE = "关于乡镇机构改革的通知\n一、总体要求\n各乡镇人民政府要在2019年底前完成改革。\n"


# ---------------------------------------------------------------------- DOCX


def _docx_bytes(*, title: str | None = "乡镇机构改革方案") -> bytes:
    document = docx.Document()
    if title:
        document.core_properties.title = title
    document.add_paragraph("各乡镇人民政府：")
    document.add_heading("一、总体要求", level=1)
    document.add_paragraph("坚持党的全面领导。")
    document.add_heading("（一）机构设置", level=2)
    table = document.add_table(rows=3, cols=3)
    for row, values in zip(table.rows, (("机构", "编制", "备注"), ("党政办", "5", "综合"), ("", "", "")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    merged = table.cell(2, 0).merge(table.cell(2, 1))
    merged.text = "便民服务中心"
    table.cell(2, 2).text = "新设"
    document.add_paragraph("二、保障措施")
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def test_docx_keeps_paragraphs_headings_and_tables_in_order():
    read = read_bytes(_docx_bytes(), "plan.docx")
    assert read.title == "乡镇机构改革方案"
    assert read.pages == ()
    assert read.text.split("\n") == [
        "各乡镇人民政府：",
        "# 一、总体要求",  # heading styles become Markdown headings: the chunker's sections
        "坚持党的全面领导。",
        "## （一）机构设置",
        "机构 | 编制 | 备注",
        "党政办 | 5 | 综合",
        "便民服务中心 | 新设",  # the merged cell once, not once per column it spans
        "二、保障措施",
    ]


def test_docx_without_a_core_title_takes_its_first_heading():
    assert read_bytes(_docx_bytes(title=None), "plan.DOCX").title == "一、总体要求"


def test_corrupt_docx_is_invalid_input():
    with pytest.raises(InvalidInputError, match="not a valid DOCX"):
        read_bytes(b"PK\x03\x04" + b"not really a zip archive" * 20, "broken.docx")


# ----------------------------------------------------------------------- PDF

PAGES = (
    "第一章 总体要求\n乡镇要加强党的建设。",
    "第二章 机构设置\n设置党政办公室等5个机构。",
    "第三章 保障措施\n2019年底前完成。",
)


def _pdf_bytes(pages: tuple[str, ...] = PAGES, *, title: str | None = "乡镇机构改革实施方案") -> bytes:
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    if title:
        pdf.setTitle(title)
    for page in pages:
        pdf.setFont("STSong-Light", 14)
        for number, line in enumerate(page.split("\n")):
            pdf.drawString(72, 720 - 24 * number, line)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def test_pdf_keeps_each_page_and_the_metadata_title():
    read = read_bytes(_pdf_bytes(), "plan.pdf")
    assert read.title == "乡镇机构改革实施方案"
    assert read.pages == PAGES
    assert read.text == "\n".join(read.pages)


def test_pdf_without_text_needs_ocr():
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.rect(72, 72, 300, 400, fill=1)  # what a scan looks like to a text extractor: no text at all
    pdf.showPage()
    pdf.save()
    with pytest.raises(NeedsOcrError, match="OCR") as caught:
        read_bytes(buffer.getvalue(), "scan.pdf")
    assert caught.value.code == "needs_ocr"


@pytest.mark.parametrize("data", [b"%PDF-1.4\nthis is not a pdf body", b"\x00\x01\x02 junk" * 50])
def test_corrupt_pdf_is_invalid_input(data):
    with pytest.raises(InvalidInputError, match="not a valid PDF"):
        read_bytes(data, "broken.pdf")


def _encrypted(user_password: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(_pdf_bytes())))
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_encrypted_with_an_empty_password_is_read():
    assert read_bytes(_encrypted(""), "restricted.pdf").pages == PAGES


def test_password_protected_pdf_is_invalid_input():
    with pytest.raises(InvalidInputError, match="password"):
        read_bytes(_encrypted("secret"), "locked.pdf")


# ---------------------------------------------------------------------- HTML

PAGE = """<!DOCTYPE html>
<html><head><meta charset="gbk"><title>关于乡镇机构改革的通知</title>
<style>.menu { color: red }</style><script>var banner = "脚本文字";</script></head>
<body class="page-with-sidebar">
<header><h1>某市人民政府门户网站</h1></header>
<nav><a href="/">首页</a><a href="/news">新闻</a></nav>
<div class="breadcrumb">首页 &gt; 政策文件</div>
<main>
  <h1>关于乡镇机构改革的通知</h1>
  <!-- 编辑备注 -->
  <p>各乡镇人民政府：
     现将有关事项通知如下。</p>
  <p>一、总体要求<br>（一）机构设置</p>
  <table><tr><th>机构</th><th>编制</th><th>备注</th></tr><tr><td>党政办</td><td>5</td><td>综合</td></tr></table>
  <div id="related-menu">相关链接</div>
</main>
<aside>热点新闻</aside>
<footer>版权所有 某市人民政府</footer>
<script>track("访问统计");</script>
</body></html>"""


def test_html_keeps_only_the_main_text():
    read = read_bytes(PAGE.encode("gbk"), "notice.HTM")
    assert read.title == "关于乡镇机构改革的通知"
    assert read.text.split("\n") == [
        "关于乡镇机构改革的通知",
        "各乡镇人民政府： 现将有关事项通知如下。",
        "一、总体要求",
        "（一）机构设置",
        "机构 | 编制 | 备注",
        "党政办 | 5 | 综合",
    ]
    for chrome in ("脚本文字", "访问统计", "首页", "门户网站", "相关链接", "热点新闻", "版权所有", "编辑备注"):
        assert chrome not in read.text


def test_html_without_main_reads_the_body_and_takes_the_first_h1_as_title():
    page = "<html><body><h1>街道工作条例</h1><div>第一条 总则<div>第二条 职责</div></div></body></html>"
    read = read_bytes(page.encode("utf-8"), "rules.html")
    assert read.title == "街道工作条例"
    assert read.text == "街道工作条例\n第一条 总则\n第二条 职责"


def test_gb2312_page_with_gbk_only_characters_decodes():
    # Pages labelled gb2312 routinely carry characters only GBK/GB18030 have (here 镕).
    page = '<html><head><meta charset="gb2312"></head><body><p>朱镕基同志讲话</p></body></html>'
    assert read_bytes(page.encode("gb18030"), "speech.html").text == "朱镕基同志讲话"


# ---------------------------------------------------------------- plain text


@pytest.mark.parametrize(
    "data",
    [
        NOTICE.encode("gb18030"),
        NOTICE.encode("utf-16"),  # with a BOM
        b"\xef\xbb\xbf" + NOTICE.encode("utf-8"),
        NOTICE.encode("utf-16-le"),  # no BOM: Windows "Unicode" saved by some tools
        NOTICE.encode("utf-8"),
    ],
    ids=["gb18030", "utf-16-bom", "utf-8-bom", "utf-16-le", "utf-8"],
)
def test_text_encodings_decode_to_the_same_text(data):
    read = read_bytes(data, "notice.txt")
    assert read == read_bytes(NOTICE.encode("utf-8"), "notice.txt")
    assert read.text == NOTICE and read.title is None


def test_short_gb18030_text_is_not_read_as_korean():
    # charset_normalizer alone reads this line as cp949.
    assert read_bytes("乡镇文件使用国标编码。".encode("gb18030"), "c.txt").text == "乡镇文件使用国标编码。"


def test_markdown_title_and_heading_marks():
    read = read_bytes("# 乡镇工作\n\n## 一、总体要求\n乡镇要做好便民服务。".encode("gb18030"), "b.md")
    assert read.title == "乡镇工作"
    assert read.text == "# 乡镇工作\n\n## 一、总体要求\n乡镇要做好便民服务。"  # marks kept for the chunker


@pytest.mark.parametrize(
    "data",
    [
        bytes(range(256)) * 4,
        b"\x89PNG\r\n\x1a\n" + bytes(range(40)) * 10,
        "正文\x01\x02\x03\x04".encode(),
        "一段正文。".encode() * 50 + b"\x00",
    ],
    ids=["bytes", "png", "control-characters", "one-nul"],
)
@pytest.mark.parametrize("name", ["junk.txt", "junk.md"])
def test_binary_data_named_as_text_is_refused(data, name):
    with pytest.raises(InvalidInputError, match="binary"):
        read_bytes(data, name)


@pytest.mark.parametrize("data", [b"", b"  \n\t\r\n", "\u3000\n".encode("utf-16")], ids=["zero", "spaces", "utf16"])
def test_empty_file_is_refused(data):
    with pytest.raises(InvalidInputError, match="empty|no text"):
        read_bytes(data, "empty.txt")


@pytest.mark.parametrize("name", ["setup.exe", "old-slides.ppt", "README"])
def test_unsupported_format_lists_what_is_supported(name):
    with pytest.raises(UnsupportedFormatError, match=r"\.docx") as caught:
        read_bytes(b"MZ\x90\x00", name)
    assert isinstance(caught.value, InvalidInputError)
    assert caught.value.code == "unsupported_format"


# -------------------------------------------------------------------- paths


def test_paths_dispatch_on_the_suffix(tmp_path):
    assert SUPPORTED[:6] == (".txt", ".md", ".html", ".htm", ".docx", ".pdf")
    assert {".doc", ".wps", ".ofd", ".xlsx", ".xls", ".csv", ".pptx", ".png", ".jpg", ".tif", ".bmp"} <= set(SUPPORTED)
    assert set(SUPPORTED) == set(READERS)
    path = tmp_path / "方案.PDF"
    path.write_bytes(_pdf_bytes())
    assert read_path(path).pages == PAGES
    assert read_document(path) == "\n".join(PAGES)


def test_seed_corpus_still_loads():
    documents = load_corpus(DOCS_RAW)
    assert len(documents) == 9
    assert all(document.raw_text.strip() for document in documents)


def test_unnumbered_docx_headings_become_sections():
    from index.ingest.chunk import chunk_text
    from index.ingest.clean import clean_text

    document = docx.Document()
    document.add_heading("总体要求", level=1)
    document.add_paragraph("各乡镇要加强组织领导，明确责任分工。")
    document.add_heading("机构设置", level=2)
    document.add_paragraph("设立党政综合便民服务中心，实行一窗受理。")
    buffer = io.BytesIO()
    document.save(buffer)
    text = clean_text(read_bytes(buffer.getvalue(), "plan.docx").text)
    sections = {section for chunk in chunk_text(text, ChunkingParams(30, 60, 0)) for section in [chunk.section]}
    assert ("总体要求", "机构设置") in sections
