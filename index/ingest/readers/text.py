"""Plain text and Markdown: encodings detected, not assumed (Chinese government files are often
GB18030 or UTF-16)."""

from __future__ import annotations

import logging
import re

from index.errors import InvalidInputError
from index.ingest.readers.base import ReadDocument

logger = logging.getLogger(__name__)

_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
# On short text charset_normalizer ties many encodings at zero chaos (a GB18030
# line reads as cp949 or Big5 just as well). This corpus is mainland Chinese,
# so a tie goes to GB18030, then UTF-16 (Windows writes little-endian), then Big5.
_PREFERRED = ("gb18030", "utf_16_le", "utf_16_be", "big5", "big5hkscs")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_BINARY = "the file looks like binary data, not text; upload a text, Word, PDF, spreadsheet, slide or image file"


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
