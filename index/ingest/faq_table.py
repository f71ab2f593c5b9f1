"""FAQ pairs read from and written to a table: .csv, .xlsx (and .jsonl out).

The columns are 问题 and 答案, optionally 相似问法 (several in one cell, one per line or split by |) and 来源;
a header may be in any order, other columns are ignored. Every row is checked before anything is added: a
file with a bad row is refused whole, each bad row named by its number as a spreadsheet shows it (the
header is row 1) and, in a CSV, by the line it starts on.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from index.errors import InvalidInputError
from index.ingest.faq import ANSWER, QUESTION, SIMILAR, SOURCE, FaqPair, made_pair, question_key
from index.ingest.readers.base import refuse_encrypted_ooxml
from index.ingest.readers.text import decode_text

FORMATS = ("csv", "xlsx")
EXPORT_FORMATS = ("csv", "xlsx", "jsonl")
MAX_ROWS = 5_000  # pairs in one import: each is a small document to embed in one job
MAX_ROW_ERRORS = 50  # named in one refusal; the rest are counted
MAX_CELLS = 200_000  # cells walked, empty ones included (a sheet's claimed width is not trusted)
MAX_UNZIPPED_BYTES = 200_000_000  # what an .xlsx may inflate to: a zip bomb is refused before it is opened
COLUMNS = (QUESTION, ANSWER, SIMILAR, SOURCE)
ID_COLUMN = "编号"  # written on export; ignored on import (an imported pair gets a new id)
_ALIASES = {"question": QUESTION, "answer": ANSWER, "similar": SIMILAR, "similar_questions": SIMILAR,
            "source": SOURCE, "相似问题": SIMILAR, "出处": SOURCE}  # fmt: skip
_SPLIT = str.maketrans({"|": "\n", "｜": "\n"})


class FaqTableError(InvalidInputError):
    """A table that cannot be imported; ``details`` names each bad row."""

    def __init__(self, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass(frozen=True)
class FaqRow:
    row: int  # as a spreadsheet numbers it: the header is row 1
    pair: FaqPair


def read_faq_table(data: bytes, filename: str) -> list[FaqRow]:
    """Every row of the file as a checked pair; raises ``FaqTableError`` naming every bad row."""
    kind = PurePosixPath(filename).suffix.lower().lstrip(".")
    if kind not in FORMATS:
        raise InvalidInputError(f"{filename}: FAQ pairs are imported from .csv or .xlsx, not .{kind or '?'}")
    rows = _csv_rows(data) if kind == "csv" else _xlsx_rows(data)
    return _pairs(rows, filename)


def _csv_rows(data: bytes) -> Iterator[tuple[int, int | None, Sequence]]:
    text = decode_text(data)
    if "\x00" in text:
        raise InvalidInputError("the file looks like binary data, not a CSV table")
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text, newline=""), dialect)
    line = 1
    try:
        for number, cells in enumerate(reader, start=1):
            yield number, line, cells
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FaqTableError(f"line {line}: not valid CSV ({exc})", [{"line": line, "message": str(exc)}]) from None


def _xlsx_rows(data: bytes) -> Iterator[tuple[int, int | None, Sequence]]:
    refuse_encrypted_ooxml(data, "Excel")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise InvalidInputError("not a valid .xlsx file; it may be damaged, or an old .xls renamed") from None
    if unzipped > MAX_UNZIPPED_BYTES:
        raise InvalidInputError(f"the workbook unpacks to more than {MAX_UNZIPPED_BYTES // 1_000_000} MB")
    from openpyxl import load_workbook

    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:  # zip, XML and key errors alike on a broken file
        raise InvalidInputError("not a valid .xlsx file; it may be damaged, or an old .xls renamed") from None
    try:
        sheet = book.worksheets[0]  # the first sheet: an export writes one
        sheet.reset_dimensions()
        cells = 0
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            cells += max(len(row), 1)
            if cells > MAX_CELLS:
                raise InvalidInputError(f"the sheet spans more than {MAX_CELLS:,} cells, empty ones included")
            yield number, None, row
    finally:
        book.close()


def _header(cells: Sequence) -> dict[str, int]:
    found: dict[str, int] = {}
    for at, cell in enumerate(cells):
        name = _cell(cell).replace(" ", "")
        name = _ALIASES.get(name.lower(), name)
        if name in COLUMNS and name not in found:
            found[name] = at
    missing = [name for name in (QUESTION, ANSWER) if name not in found]
    if missing:
        seen = "、".join(_cell(c) for c in cells if _cell(c)) or "nothing"
        raise FaqTableError(
            f"row 1 must name the columns {QUESTION} and {ANSWER} (optional: {SIMILAR}, {SOURCE}); it has {seen}",
            [{"row": 1, "message": f"missing column {'、'.join(missing)}"}],
        )
    return found


def _pairs(rows: Iterable[tuple[int, int | None, Sequence]], filename: str) -> list[FaqRow]:
    header: dict[str, int] | None = None
    pairs: list[FaqRow] = []
    errors: list[dict] = []
    seen: dict[str, int] = {}
    for number, line, cells in rows:
        if not any(_cell(c) for c in cells):
            continue
        if header is None:
            header = _header(cells)
            continue
        if len(pairs) + len(errors) >= MAX_ROWS:
            raise InvalidInputError(f"{filename} has more than {MAX_ROWS:,} pairs; import it in parts")
        where = {"row": number, **({"line": line} if line is not None else {})}
        try:
            pair = _row_pair(cells, header)
        except InvalidInputError as exc:
            errors.append({**where, "message": str(exc)})
            continue
        first = seen.setdefault(question_key(pair.question), number)
        if first != number:
            errors.append({**where, "message": f"{QUESTION} repeats row {first}: {pair.question}"})
            continue
        pairs.append(FaqRow(number, pair))
    if header is None:
        raise FaqTableError(f"{filename} is empty: row 1 must name the columns {QUESTION} and {ANSWER}")
    if errors:
        named = "; ".join(_where(e) + f": {e['message']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise FaqTableError(f"{len(errors)} bad row(s), nothing imported: {named}{more}", errors[:MAX_ROW_ERRORS])
    if not pairs:
        raise FaqTableError(f"{filename} has a header but no pairs")
    return pairs


def _where(error: dict) -> str:
    return f"row {error['row']}" + (f" (line {error['line']})" if "line" in error else "")


def _row_pair(cells: Sequence, header: dict[str, int]) -> FaqPair:
    def value(name: str) -> str:
        at = header.get(name)
        return _cell(cells[at]) if at is not None and at < len(cells) else ""

    similar = [s for s in value(SIMILAR).translate(_SPLIT).split("\n") if s.strip()]
    return made_pair(value(QUESTION), value(ANSWER), similar, value(SOURCE))


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# -- export ------------------------------------------------------------------------------------------------
def export_rows(pairs: Iterable[tuple[str, FaqPair]]) -> Iterator[list[str]]:
    yield [*COLUMNS, ID_COLUMN]
    for faq_id, pair in pairs:
        yield [pair.question, pair.answer, "\n".join(pair.similar), pair.source, faq_id]


def export_table(pairs: Iterable[tuple[str, FaqPair]], kind: str) -> bytes:
    """The pairs as a file that ``read_faq_table`` reads back (csv: UTF-8 with a BOM, for Excel)."""
    if kind == "jsonl":
        lines = (
            json.dumps(
                {
                    "id": faq_id,
                    "question": p.question,
                    "similar": list(p.similar),
                    "answer": p.answer,
                    "source": p.source,
                },
                ensure_ascii=False,
            )  # fmt: skip
            for faq_id, p in pairs
        )
        return "".join(line + "\n" for line in lines).encode("utf-8")
    if kind == "csv":
        out = io.StringIO(newline="")
        csv.writer(out).writerows(export_rows(pairs))
        return ("\ufeff" + out.getvalue()).encode("utf-8")
    if kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet("FAQ")
        for row in export_rows(pairs):
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    raise InvalidInputError(f"unknown export format {kind!r}; choose from {', '.join(EXPORT_FORMATS)}")
