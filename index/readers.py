"""One reader per file format, each returning the document's raw text.

Plain text and Markdown are here; richer formats join as their readers are
written. Encodings are detected, not assumed: Chinese government files are
often GB18030 or UTF-16.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from index.errors import InvalidInputError

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else GB18030."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise InvalidInputError("cannot detect the text encoding (tried UTF-8, UTF-16, GB18030)") from exc


def read_txt(path: Path) -> str:
    return decode_text(path.read_bytes())


def read_md(path: Path) -> str:
    # Markdown headings ("## 一、总体要求") keep their own numbering, which the
    # chunker reads; the hashes themselves carry nothing.
    lines = decode_text(path.read_bytes()).split("\n")
    return "\n".join(line.lstrip("#").strip() if line.startswith("#") else line for line in lines)


READERS: dict[str, Callable[[Path], str]] = {".txt": read_txt, ".md": read_md}


def read_document(path: Path) -> str:
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise InvalidInputError(f"unsupported file type {path.suffix!r}; supported: {', '.join(sorted(READERS))}")
    return reader(path)
