"""HTML: the main text only; navigation, scripts and footers dropped, table rows as ``a | b | c``."""

from __future__ import annotations

import re

from index.ingest.readers.base import ReadDocument
from index.ingest.readers.base import one_line as _one_line

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
