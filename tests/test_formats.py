"""Readers of the office formats on files made here: spreadsheets, slides, .doc/.wps (LibreOffice), OFD,
and the clear refusal of a corrupt, encrypted or oversized file of each."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import docx
import pytest
from openpyxl import Workbook
from pptx import Presentation
from pptx.util import Inches

from index.errors import InvalidInputError
from index.ingest.chunk import ChunkingParams, chunk_text
from index.ingest.clean import clean_text
from index.ingest.readers import EncryptedFileError, FileTooLargeError, read_bytes
from index.ingest.readers import sheets as sheets_module
from index.ingest.readers.base import OLE_MAGIC

needs_office = pytest.mark.skipif(not shutil.which("soffice"), reason="LibreOffice (libreoffice-writer-nogui)")


# --------------------------------------------------------------- spreadsheets


def _xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "编制表"
    sheet.append(["乡镇", "2035年核定编制", "备注"])
    sheet.append(["石榴镇", 41, None])
    sheet.append(["李堡镇", 38.0, "中心镇"])
    sheet.append([None, None, None])
    other = book.create_sheet("经费")
    other.append(["项目", "金额（万元）"])
    other.append(["应急物资储备", 120])
    book.properties.title = "乡镇编制与经费"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_sheets_are_sections_and_rows_carry_their_header():
    read = read_bytes(_xlsx(), "编制.xlsx")
    assert read.title == "乡镇编制与经费"
    assert read.text.split("\n") == [
        "# 编制表",
        "乡镇：石榴镇；2035年核定编制：41。",
        "乡镇：李堡镇；2035年核定编制：38；备注：中心镇。",
        "# 经费",
        "项目：应急物资储备；金额（万元）：120。",
    ]
    assert read.summary == "workbook: 3 rows"
    chunks = chunk_text(clean_text(read.text), ChunkingParams(60, 120, 0))
    assert {chunk.section[0] for chunk in chunks} == {"编制表", "经费"}


def test_csv_in_gbk_with_semicolons():
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";")
    writer.writerows([["街道", "社区数"], ["骆驼街道", "12"], ["庄市街道", "9"]])
    read = read_bytes(buffer.getvalue().encode("gbk"), "社区.csv")
    assert read.text.split("\n") == ["街道：骆驼街道；社区数：12。", "街道：庄市街道；社区数：9。"]


def test_xls_with_numbers_and_dates():
    import datetime as dt

    xlwt = pytest.importorskip("xlwt")
    book = xlwt.Workbook(encoding="utf-8")
    sheet = book.add_sheet("编制表")
    for col, value in enumerate(["乡镇", "2035年核定编制", "批复日期"]):
        sheet.write(0, col, value)
    sheet.write(1, 0, "石榴镇")
    sheet.write(1, 1, 41)
    sheet.write(1, 2, dt.datetime(2019, 3, 1), xlwt.easyxf(num_format_str="YYYY-MM-DD"))
    buffer = io.BytesIO()
    book.save(buffer)
    read = read_bytes(buffer.getvalue(), "编制.xls")
    assert read.text.split("\n") == ["# 编制表", "乡镇：石榴镇；2035年核定编制：41；批复日期：2019-03-01。"]


def test_too_many_rows_is_refused_before_anything_is_indexed(monkeypatch):
    monkeypatch.setattr(sheets_module, "MAX_ROWS", 2)
    with pytest.raises(FileTooLargeError, match="more than 2 rows"):
        read_bytes(_xlsx(), "big.xlsx")


# ---------------------------------------------------------------------- slides


def _pptx() -> bytes:
    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[1])
    first.shapes.title.text = "乡镇机构改革汇报"
    first.placeholders[1].text_frame.text = "一、改革进展"
    first.placeholders[1].text_frame.add_paragraph().text = "全县23个乡镇全部完成机构改革。"
    first.notes_slide.notes_text_frame.text = "汇报时强调便民服务中心。"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "编制情况"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(2), Inches(6), Inches(1)).table
    for (r, c), value in {(0, 0): "乡镇", (0, 1): "编制", (1, 0): "石榴镇", (1, 1): "41"}.items():
        table.cell(r, c).text = value
    box = second.shapes.add_textbox(Inches(1), Inches(4), Inches(6), Inches(1))
    box.text_frame.text = "编制总量保持不变。"
    deck.core_properties.title = ""
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def test_pptx_slide_titles_are_headings_then_body_table_and_notes_in_order():
    read = read_bytes(_pptx(), "汇报.pptx")
    assert read.title == "乡镇机构改革汇报"
    assert read.pages == (
        "# 乡镇机构改革汇报\n一、改革进展\n全县23个乡镇全部完成机构改革。\n备注：汇报时强调便民服务中心。",
        "# 编制情况\n乡镇 | 编制\n石榴镇 | 41\n编制总量保持不变。",
    )
    assert read.page_confidence == (None, None)


# ------------------------------------------------------------ legacy Word, WPS


def _soffice(folder: Path, target: str, source: Path) -> None:
    profile = (folder / "lo-profile").as_uri()
    subprocess.run(
        ["soffice", "--headless", f"-env:UserInstallation={profile}", "--convert-to", target, "--outdir", str(folder),
         str(source)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip


@pytest.fixture(scope="module")
def word97(tmp_path_factory) -> bytes:
    if not shutil.which("soffice"):
        pytest.skip("LibreOffice (libreoffice-writer-nogui)")
    folder = tmp_path_factory.mktemp("word97")
    document = docx.Document()
    document.add_heading("一、总体要求", level=1)
    document.add_paragraph("各乡镇设立应急管理办公室，核定编制7名。")
    document.add_heading("二、保障措施", level=1)
    document.add_paragraph("县财政每年安排专项经费120万元。")
    document.save(folder / "notice.docx")
    _soffice(folder, "doc:MS Word 97", folder / "notice.docx")
    return (folder / "notice.doc").read_bytes()


@pytest.mark.parametrize("name", ["通知.doc", "通知.wps"])
def test_doc_and_wps_keep_text_and_headings(word97, name):
    read = read_bytes(word97, name)
    assert read.text.split("\n") == [
        "# 一、总体要求",
        "各乡镇设立应急管理办公室，核定编制7名。",
        "# 二、保障措施",
        "县财政每年安排专项经费120万元。",
    ]
    assert "LibreOffice" in read.summary


# ------------------------------------------------------------------------- OFD

OFD_NS = "http://www.ofdspec.org/2016"


def _ofd(pages: list[list[tuple[float, float, float, str]]], *, encrypted: bool = False) -> bytes:
    """An OFD package: OFD.xml, a document, one Content.xml per page with (x, y, size, text) objects."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "OFD.xml",
            f'<ofd:OFD xmlns:ofd="{OFD_NS}" Version="1.0"><ofd:DocBody><ofd:DocInfo><ofd:Title>县政府通知</ofd:Title>'
            "</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>",
        )
        refs = "".join(f'<ofd:Page ID="{i + 1}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(len(pages)))
        document = f'<ofd:Document xmlns:ofd="{OFD_NS}"><ofd:Pages>{refs}</ofd:Pages></ofd:Document>'
        archive.writestr("Doc_0/Document.xml", document)
        for i, objects in enumerate(pages):
            body = "".join(
                f'<ofd:TextObject ID="{n}" Boundary="{x} {y} {len(text) * size} {size * 1.2}" Font="1" Size="{size}">'
                f'<ofd:TextCode X="0" Y="{size}">{text}</ofd:TextCode></ofd:TextObject>'
                for n, (x, y, size, text) in enumerate(objects)
            )
            layer = f'<ofd:Content><ofd:Layer ID="0">{body}</ofd:Layer></ofd:Content>'
            archive.writestr(f"Doc_0/Pages/Page_{i}/Content.xml", f'<ofd:Page xmlns:ofd="{OFD_NS}">{layer}</ofd:Page>')
        if encrypted:
            archive.writestr("Encryptions.xml", "<Encryptions/>")
    return buffer.getvalue()


OFD_PAGES = [
    [  # listed out of reading order, as converters write them
        (25, 60, 4.2, "各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱"),
        (25, 40, 6.0, "关于设立乡镇应急管理办公室的通知"),
        (25, 66, 4.2, "和安全生产的统筹协调。"),
        (34, 50, 4.2, "一、总体要求"),
    ],
    [(25, 40, 4.2, "县财政每年安排专项经费120万元。")],
]


def test_ofd_text_in_reading_order_with_headings_and_pages():
    read = read_bytes(_ofd(OFD_PAGES), "通知.ofd")
    assert read.title == "县政府通知"
    assert read.pages == (
        "# 关于设立乡镇应急管理办公室的通知\n一、总体要求\n"
        "各乡镇设立应急管理办公室，核定编制7名，负责防汛抗旱和安全生产的统筹协调。",
        "县财政每年安排专项经费120万元。",
    )
    assert read.summary == "OFD: 2 pages"


# ----------------------------------------------------- refused, nothing changed


def _truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("a.xlsx", b"PK\x03\x04" + b"broken" * 50, "not a valid .xlsx"),
        ("a.xlsx", "乡镇,编制\n".encode() * 3, "not a valid .xlsx"),
        ("a.xls", b"\x00\x01junk" * 40, "not a valid .xls"),
        ("a.xls", OLE_MAGIC + b"\x00" * 600, "not a valid .xls"),
        ("a.pptx", b"PK\x03\x04" + b"broken" * 50, "not a valid .pptx"),
        ("a.doc", b"plain text pretending" * 20, "not a valid .doc"),
        ("a.wps", b"\x00\x01junk" * 40, "not a valid .wps"),
        ("a.ofd", b"PK\x03\x04" + b"broken" * 50, "not a valid OFD"),
        ("a.ofd", b"not a zip at all" * 10, "not a valid OFD"),
        ("a.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not a readable image"),
        ("a.jpg", b"\xff\xd8\xff\xe0" + b"junk" * 30, "not a readable image|damaged"),
        ("a.csv", b"\x00\x01\x02\x03" * 64, "binary"),
    ],
)
def test_corrupt_files_are_refused_with_a_clear_message(name, data, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        read_bytes(data, name)
    assert caught.value.code != "invalid_input" or "damaged" in str(caught.value) or "binary" in str(caught.value)


@pytest.mark.parametrize("name", ["a.xlsx", "a.pptx", "a.docx"])
def test_password_protected_office_files_are_refused(name):
    # What Office writes for an encrypted .xlsx/.pptx/.docx: an OLE container, not a zip.
    with pytest.raises(EncryptedFileError, match="password-protected"):
        read_bytes(OLE_MAGIC + b"\x00" * 1024, name)


def test_encrypted_and_damaged_ofd_are_refused():
    with pytest.raises(EncryptedFileError, match="encrypted"):
        read_bytes(_ofd(OFD_PAGES, encrypted=True), "a.ofd")
    with pytest.raises(InvalidInputError, match="damaged"):
        read_bytes(_truncated(_ofd(OFD_PAGES)), "a.ofd")


@needs_office
def test_damaged_doc_is_refused(word97):
    with pytest.raises(InvalidInputError, match="could not be opened|damaged"):
        read_bytes(word97[:2048], "broken.doc")


def test_an_image_with_too_many_pixels_is_refused_before_decoding():
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("1", (9000, 9000), 1).save(buffer, "PNG")  # 81 MP, a few kB compressed
    with pytest.raises(FileTooLargeError, match="megapixels"):
        read_bytes(buffer.getvalue(), "huge.png")
