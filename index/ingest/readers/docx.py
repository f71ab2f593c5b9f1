"""DOCX: paragraphs in order, heading styles as Markdown headings, tables as ``a | b | c`` rows."""

from __future__ import annotations

from io import BytesIO

from index.errors import InvalidInputError
from index.ingest.readers.base import ReadDocument, refuse_encrypted_ooxml
from index.ingest.readers.base import one_line as _one_line

_HEADING_STYLES = ("Heading", "标题", "Title")


def read_docx(data: bytes) -> ReadDocument:
    refuse_encrypted_ooxml(data, "Word")
    try:
        return _docx_document(data)
    except InvalidInputError:
        raise
    except Exception as exc:  # python-docx raises zip, XML and key errors alike on a broken file
        raise InvalidInputError("not a valid DOCX file; it may be damaged, or an old .doc renamed") from exc


def _docx_document(data: bytes) -> ReadDocument:
    import docx
    from docx.table import Table

    document = docx.Document(BytesIO(data))
    lines: list[str] = []
    first_heading = None
    for block in document.iter_inner_content():  # paragraphs and tables in document order
        if isinstance(block, Table):
            lines.extend(_docx_rows(block))
            continue
        text = block.text.strip()
        style = block.style.name if block.style is not None else ""
        if text and first_heading is None and style.startswith(_HEADING_STYLES):
            first_heading = text
        level = _heading_level(style)
        if text:
            # Written as a Markdown heading, so that an unnumbered heading still gives the chunker a section.
            lines.append(f"{'#' * level} {text}" if level else text)
    title = (document.core_properties.title or "").strip() or first_heading
    return ReadDocument("\n".join(lines), title)


def _heading_level(style: str) -> int:
    """1 to 6 for a heading or title paragraph style ("Heading 2", "标题 2", "Title"), else 0."""
    if style in ("Title", "标题"):
        return 1
    if not style.startswith(_HEADING_STYLES):
        return 0
    digits = "".join(ch for ch in style if ch.isdigit())
    return min(int(digits), 6) if digits else 1


def _docx_rows(table) -> list[str]:
    rows = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        # A merged cell comes back once per grid column it spans.
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(_one_line(cell.text))
        line = " | ".join(cell for cell in cells if cell)
        if line:
            rows.append(line)
    return rows
