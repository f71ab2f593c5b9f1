"""One reader per file format, each turning an upload's bytes into a ``ReadDocument``.

Readers return the text as read; cleaning is ``index.clean``'s job. Encodings
are detected, not assumed: Chinese government files are often GB18030 or
UTF-16. Every failure a user can cause raises ``InvalidInputError`` (or a
subclass) with a message fit to show them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

from index.errors import ConfigurationError, InvalidInputError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadDocument:
    text: str  # raw text; for PDFs "\n".join(pages)
    title: str | None
    pages: tuple[str, ...] = ()  # PDFs only: page n is pages[n - 1]


class UnsupportedFormatError(InvalidInputError):
    code = "unsupported_format"


class NeedsOcrError(InvalidInputError):
    code = "needs_ocr"


# ---------------------------------------------------------------- plain text

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# On short text charset_normalizer ties many encodings at zero chaos (a GB18030
# line reads as cp949 or Big5 just as well). This corpus is mainland Chinese,
# so a tie goes to GB18030, then UTF-16 (Windows writes little-endian), then Big5.
_PREFERRED = ("gb18030", "utf_16_le", "utf_16_be", "big5", "big5hkscs")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BINARY = "the file looks like binary data, not text; upload a .txt, .md, .html, .docx or .pdf document"


def decode_text(data: bytes) -> str:
    """A BOM, else strict UTF-8, else the likeliest Chinese-aware guess, else GB18030."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    guessed = _guess_encoding(data)
    if guessed is not None:
        return guessed
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        message = _BINARY if b"\x00" in data else "cannot detect the text encoding; save the file as UTF-8"
        raise InvalidInputError(message) from exc


def _guess_encoding(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None
    least_chaos = min(match.chaos for match in matches)
    tied = {match.encoding: match for match in matches if match.chaos == least_chaos}
    best = next((tied[name] for name in _PREFERRED if name in tied), matches[0])
    logger.debug("decoded text as %s", best.encoding)
    return str(best)


def _checked_text(data: bytes) -> str:
    text = decode_text(data)
    if "\x00" in text or len(_CONTROL.findall(text)) > 0.05 * len(text):
        raise InvalidInputError(_BINARY)
    return text


def read_txt(data: bytes) -> ReadDocument:
    return ReadDocument(_checked_text(data), title=None)


def read_md(data: bytes) -> ReadDocument:
    lines = _checked_text(data).split("\n")
    title = next((line[2:].strip() for line in lines if line.startswith("# ") and line[2:].strip()), None)
    # Heading marks stay: the chunker reads "## 标题" as a second-level heading.
    return ReadDocument("\n".join(lines), title)


# ---------------------------------------------------------------------- HTML

_HTML_DROP = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg", "template"]
_CHROME = re.compile(r"nav|menu|footer|sidebar|breadcrumb", re.IGNORECASE)
# A page-level class such as <body class="with-sidebar"> must not take the page with it.
_NEVER_DROP = {"html", "body", "main", "article"}
_HTML_BLOCKS = [
    "p", "div", "li", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "table", "main",
    "ul", "ol", "dl", "dt", "dd", "blockquote", "pre", "caption", "figure", "figcaption", "address", "hr",
]  # fmt: skip
# Marks line ends while the tree is flattened; source newlines inside a
# paragraph are only formatting, so they cannot serve as the mark.
_BREAK = "\x1e"
# GB2312 and GBK pages often hold characters only their superset decodes.
_GB_ALIASES = {"gb2312", "gbk", "x-gbk", "cp936", "gb_2312-80"}


def read_html(data: bytes) -> ReadDocument:
    from bs4 import BeautifulSoup
    from bs4.dammit import EncodingDetector

    declared = (EncodingDetector.find_declared_encoding(data, is_html=True) or "").lower()
    soup = BeautifulSoup(data, "html.parser", from_encoding="gb18030" if declared in _GB_ALIASES else None)
    # Chrome goes first: an <svg> has its own <title>, a banner its own <h1>.
    _drop_chrome(soup)
    candidates = soup.find_all(["main", "article"])
    root = max(candidates, key=lambda tag: len(tag.get_text())) if candidates else (soup.body or soup)
    heading = root.find("h1") or soup.find("h1")
    title = _one_line(soup.title.get_text()) if soup.title else ""
    title = title or (_one_line(heading.get_text()) if heading else "")
    return ReadDocument("\n".join(_html_lines(root)), title or None)


def _drop_chrome(soup) -> None:
    for tag in soup.find_all(_HTML_DROP):
        tag.decompose()
    for tag in soup.find_all(_is_chrome):
        if not tag.decomposed:
            tag.decompose()


def _is_chrome(tag) -> bool:
    if tag.name in _NEVER_DROP:
        return False
    names = [tag.get("id") or "", *(tag.get("class") or [])]
    return any(_CHROME.search(name) for name in names)


def _html_lines(root) -> list[str]:
    for row in root.find_all("tr"):
        cells = [_one_line(cell.get_text(" ")) for cell in row.find_all(["td", "th"], recursive=False)]
        row.replace_with(_BREAK + " | ".join(cell for cell in cells if cell) + _BREAK)
    for br in root.find_all("br"):
        br.replace_with(_BREAK)
    for block in root.find_all(_HTML_BLOCKS):
        block.insert_before(_BREAK)
        block.insert_after(_BREAK)
    lines = (_one_line(piece) for piece in root.get_text().split(_BREAK))
    return [line for line in lines if line]


def _one_line(text: str) -> str:
    return " ".join(text.split())


# ---------------------------------------------------------------------- DOCX

_HEADING_STYLES = ("Heading", "标题", "Title")


def read_docx(data: bytes) -> ReadDocument:
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


# ----------------------------------------------------------------------- PDF


def read_pdf(data: bytes) -> ReadDocument:
    from pypdf.errors import DependencyError

    try:
        pages, title = _pdf_pages(data)
    except InvalidInputError:
        raise
    except DependencyError as exc:  # our installation's fault, not the uploader's
        raise ConfigurationError(f"reading this PDF needs an extra package: {exc}") from exc
    except Exception as exc:  # pypdf raises many types on a damaged file
        raise InvalidInputError("not a valid PDF file; it may be damaged or incomplete") from exc
    if not any(page.strip() for page in pages):
        raise NeedsOcrError("the PDF has no text layer (it looks like a scan); it needs OCR before it can be indexed")
    return ReadDocument("\n".join(pages), title, pages)


def _pdf_pages(data: bytes) -> tuple[tuple[str, ...], str | None]:
    from pypdf import PdfReader

    reader = PdfReader(BytesIO(data))
    # Many official PDFs are encrypted only to restrict printing or copying,
    # with an empty password to open them.
    if reader.is_encrypted and not reader.decrypt(""):
        raise InvalidInputError("the PDF is password-protected; upload a copy without a password")
    pages = tuple((page.extract_text() or "").rstrip() for page in reader.pages)
    title = reader.metadata.title if reader.metadata else None
    return pages, (title.strip() or None) if isinstance(title, str) else None


# ------------------------------------------------------------------ dispatch

READERS: dict[str, Callable[[bytes], ReadDocument]] = {
    ".txt": read_txt,
    ".md": read_md,
    ".html": read_html,
    ".htm": read_html,
    ".docx": read_docx,
    ".pdf": read_pdf,
}
SUPPORTED = tuple(READERS)


def read_bytes(data: bytes, filename: str) -> ReadDocument:
    suffix = Path(filename).suffix.lower()
    reader = READERS.get(suffix)
    if reader is None:
        kind = f"{suffix!r} files are" if suffix else "files without an extension are"
        raise UnsupportedFormatError(f"{kind} not supported; upload one of: {', '.join(SUPPORTED)}")
    if not data.strip():
        raise InvalidInputError(f"{filename} is empty")
    document = reader(data)
    if not document.text.strip():
        raise InvalidInputError(f"{filename} contains no text")
    return document


def read_path(path: Path) -> ReadDocument:
    path = Path(path)
    return read_bytes(path.read_bytes(), path.name)


def read_document(path: Path) -> str:
    return read_path(path).text
