"""Spreadsheets (.xlsx, .xls, .csv): each sheet a section, each row one line that carries its header.

A row reads "乡镇：石榴镇；2035年核定编制：41。", so a question about one cell finds
its row with the column names beside the value. The first non-empty row of a
sheet is its header; empty cells are left out; formulas give their last
computed value. Dropped: formatting, comments, charts, images, hidden-ness.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Iterator, Sequence
from io import BytesIO

from index.errors import ConfigurationError, InvalidInputError
from index.ingest.readers.base import (
    OLE_MAGIC,
    DamagedFileError,
    FileTooLargeError,
    ReadDocument,
    one_line,
    refuse_encrypted_ooxml,
)
from index.ingest.readers.text import decode_text

MAX_ROWS = 20_000  # every row is a sentence to embed: more would take the job longer than its deadline
# Cells walked, empty ones included: rows are padded to their last cell, and a gap between rows is walked row
# by row, so a small file with a cell at XFD1048576 would otherwise cost billions of steps before MAX_ROWS.
MAX_CELLS = 2_000_000


def read_xlsx(data: bytes) -> ReadDocument:
    refuse_encrypted_ooxml(data, "Excel")
    from openpyxl import load_workbook

    try:
        book = load_workbook(BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # zip, XML and key errors alike on a broken file
        raise DamagedFileError("not a valid .xlsx file; it may be damaged, or an old .xls renamed") from exc
    try:
        sheets = [(sheet.title, _stored_rows(sheet)) for sheet in book.worksheets]
        title = (book.properties.title or "").strip() or None
        return _document(sheets, title, "workbook")
    finally:
        book.close()


def _stored_rows(sheet) -> Iterator[Sequence]:
    """The rows the sheet's XML holds, each as wide as its last cell.

    The sheet's ``<dimension>`` is only a claim: openpyxl pads every row to its
    width, so ``A1:XFD20000`` made each row 16,384 cells and a 5 KB file took 20 s.
    """
    sheet.reset_dimensions()
    return sheet.iter_rows(values_only=True)


def read_xls(data: bytes) -> ReadDocument:
    try:
        import xlrd
    except ImportError as exc:
        raise ConfigurationError("reading .xls files needs the xlrd package: pip install -e .") from exc
    if not data.startswith(OLE_MAGIC):
        raise DamagedFileError("not a valid .xls file; it may be damaged, or another format renamed")
    try:
        book = xlrd.open_workbook(file_contents=data, on_demand=True)
    except xlrd.biffh.XLRDError as exc:
        if "encrypt" in str(exc).lower() or "password" in str(exc).lower():
            raise InvalidInputError("the .xls file is password-protected; save a copy without a password") from exc
        raise DamagedFileError("not a valid .xls file; it may be damaged") from exc
    except Exception as exc:
        raise DamagedFileError("not a valid .xls file; it may be damaged") from exc

    def rows(sheet) -> Iterator[list]:
        for r in range(sheet.nrows):
            yield [_xls_value(cell, book.datemode) for cell in sheet.row(r)]

    sheets = [(sheet.name, rows(sheet)) for sheet in (book.sheet_by_index(i) for i in range(book.nsheets))]
    return _document(sheets, None, "workbook")


def _xls_value(cell, datemode: int):
    import xlrd

    if cell.ctype == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(cell.value, datemode)
        except (ValueError, OverflowError):
            return cell.value
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return None
    return cell.value


def read_csv(data: bytes) -> ReadDocument:
    text = decode_text(data)
    if "\x00" in text:
        raise InvalidInputError("the file looks like binary data, not a CSV table")
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|，")
    except csv.Error:
        dialect = csv.excel
    rows = csv.reader(io.StringIO(text), dialect)
    return _document([(None, rows)], None, "CSV file")


class _Walk:
    """How much of a workbook has been read: rows kept (each a sentence to embed) and cells looked at."""

    def __init__(self, kind: str) -> None:
        self.kind, self.rows, self.cells = kind, 0, 0

    def look(self, row: Sequence) -> None:
        self.cells += max(len(row), 1)  # an empty row costs a step too
        if self.cells > MAX_CELLS:
            raise FileTooLargeError(
                f"the {self.kind} spans more than {MAX_CELLS:,} cells, empty ones included;"
                " upload only the sheets or rows to be searched"
            )

    def keep(self) -> None:
        self.rows += 1
        if self.rows > MAX_ROWS:
            raise FileTooLargeError(
                f"the {self.kind} has more than {MAX_ROWS:,} rows; upload only the sheets or rows to be searched"
            )


def _document(sheets: Iterable[tuple[str | None, Iterable[Sequence]]], title: str | None, kind: str) -> ReadDocument:
    lines: list[str] = []
    walk = _Walk(kind)
    for name, rows in sheets:
        sheet_lines = list(_sheet_lines(rows, walk))
        if sheet_lines:
            if name is not None:
                lines.append(f"# {one_line(name)}")
            lines.extend(sheet_lines)
    if not lines:
        raise InvalidInputError(f"the {kind} holds no cells with text or numbers")
    return ReadDocument("\n".join(lines), title, summary=f"{kind}: {walk.rows} rows")


def _sheet_lines(rows: Iterable[Sequence], walk: _Walk) -> Iterator[str]:
    header: list[str] | None = None
    body = 0
    for row in rows:
        walk.look(row)
        cells = [_cell_text(value) for value in row]
        if not any(cells):
            continue
        if header is None:
            header = cells
            continue
        pairs = []
        for i, cell in enumerate(cells):
            if not cell:
                continue
            name = header[i] if i < len(header) else ""
            pairs.append(f"{name}：{cell}" if name and name != cell else cell)
        body += 1
        walk.keep()
        yield "；".join(pairs) + "。"
    if header is not None and not body:  # a one-row sheet: the row is its content
        walk.keep()
        yield "；".join(cell for cell in header if cell) + "。"


def _cell_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "是" if value else "否"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return one_line(str(value)).strip("；")
