"""文号: 国办发〔2019〕5号 in any bracket people type, and order numbers (国务院令第336号, 主席令第十二号).

Values are normalised to the 〔〕 form with Arabic numbers, so two spellings of one number compare equal; the span
still points at the text as written.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from index.ingest.metadata.dates import chinese_number

logger = logging.getLogger(__name__)

_OPEN = re.escape("〔[（(［【﹝")
_CLOSE = re.escape("〕]）)］】﹞")
# A prefix of 1-14 characters (豫政办, 财税, 京发改规) then a year in brackets and a serial number.
_BRACKETED = re.compile(
    rf"([\u4e00-\u9fff]{{1,16}})\s?[{_OPEN}]\s?((?:19|20)\d{{2}})\s?[{_CLOSE}]"
    r"\s?第?\s?(\d{1,5})\s?号"
)
_CN_NUMBER = "〇零一二三四五六七八九十百千"
# 中华人民共和国主席令第十二号, 国务院令第336号, 河南省人民政府令第12号; also the 第12号令 order.
_ORDER = re.compile(rf"([\u4e00-\u9fff]{{2,24}}?令)\s?第\s?([0-9]{{1,5}}|[{_CN_NUMBER}]{{1,8}})\s?号")
_ORDER_SUFFIXED = re.compile(rf"([\u4e00-\u9fff]{{2,24}}?)第\s?([0-9]{{1,5}}|[{_CN_NUMBER}]{{1,8}})\s?号令")
# Words a bracketed number's prefix never starts with: they belong to the sentence before it.
_PREFIX_NOISE = re.compile(r"^.*(?:根据|按照|依据|印发|关于|的|见|文件|通知|转发|公布|废止|修改|号[和及与]?|年|日)")


@dataclass(frozen=True)
class FoundNumber:
    value: str
    start: int
    end: int
    kind: str  # "bracketed" or "order"


def normalise_doc_number(text: str) -> str | None:
    """The canonical spelling of one 文号, or None when the text holds none."""
    found = find_doc_numbers(text)
    return found[0].value if found else None


def find_doc_numbers(text: str, offset: int = 0) -> list[FoundNumber]:
    """Every 文号 in ``text`` (meant for short lines: the prefix is read back to the line's start)."""
    found = []
    for match in _BRACKETED.finditer(text):
        prefix = _PREFIX_NOISE.sub("", match[1]).lstrip("和及与")
        if not prefix:
            continue
        start = match.end(1) - len(prefix) + offset
        found.append(FoundNumber(f"{prefix}〔{match[2]}〕{int(match[3])}号", start, match.end() + offset, "bracketed"))
    for pattern, suffixed in ((_ORDER, False), (_ORDER_SUFFIXED, True)):
        for match in pattern.finditer(text):
            number = int(match[2]) if match[2].isdigit() else chinese_number(match[2])
            prefix = _PREFIX_NOISE.sub("", match[1]).lstrip("和及与")
            if not number or not prefix:
                continue
            start = match.end(1) - len(prefix) + offset
            if suffixed:
                prefix = prefix if prefix.endswith("令") else prefix + "令"
            found.append(FoundNumber(f"{prefix}第{number}号", start, match.end() + offset, "order"))
    return sorted(found, key=lambda item: item.start)
