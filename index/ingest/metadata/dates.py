"""Dates as policy documents write them: 2019年3月5日, 2019-03-05, 二〇一九年三月五日 (〇, ○ and 零 all seen).

Every pattern is a flat run of bounded classes, so a scan is linear in the text.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

_CN_DIGITS = {"〇": 0, "○": 0, "零": 0, "Ｏ": 0, "O": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6}
_CN_DIGITS |= {"七": 7, "八": 8, "九": 9}
_CN_DIGIT_CLASS = "〇○零Ｏ一二三四五六七八九"
_CN_SMALL = "一二三四五六七八九十"

_ARABIC_DATE = re.compile(r"((?:19|20)\d{2})\s?年\s?(\d{1,2})\s?月\s?(\d{1,2})\s?日")
_DASHED_DATE = re.compile(r"(?<!\d)((?:19|20)\d{2})[-./](\d{1,2})[-./](\d{1,2})(?!\d)")
_CHINESE_DATE = re.compile(
    rf"([{_CN_DIGIT_CLASS}]{{4}})\s?年\s?([{_CN_SMALL}]{{1,2}})\s?月\s?([{_CN_SMALL}]{{1,3}})\s?日"
)
# One pattern for any of the three, used where a date is part of a larger phrase.
DATE_PATTERN = (
    rf"(?:(?:19|20)\d{{2}}\s?年\s?\d{{1,2}}\s?月\s?\d{{1,2}}\s?日"
    rf"|(?:19|20)\d{{2}}[-./]\d{{1,2}}[-./]\d{{1,2}}"
    rf"|[{_CN_DIGIT_CLASS}]{{4}}\s?年\s?[{_CN_SMALL}]{{1,2}}\s?月\s?[{_CN_SMALL}]{{1,3}}\s?日)"
)


@dataclass(frozen=True)
class FoundDate:
    iso: str
    start: int
    end: int


def small_chinese_number(text: str) -> int | None:
    """一 .. 九十九 (also 十, 十五, 二十, 三十一); None for anything else."""
    if not text or any(ch not in _CN_SMALL and ch not in _CN_DIGITS for ch in text):
        return None
    if "十" not in text:
        return _CN_DIGITS.get(text) if len(text) == 1 else None
    tens, _, ones = text.partition("十")
    tens_value = _CN_DIGITS.get(tens, -1) if tens else 1
    ones_value = _CN_DIGITS.get(ones, -1) if ones else 0
    if tens_value < 0 or ones_value < 0 or "十" in ones:
        return None
    return tens_value * 10 + ones_value


def chinese_number(text: str) -> int | None:
    """Small numbers with 百 and 千 too (令第一百二十三号); digit-by-digit forms (二〇一九) as well."""
    if text and all(ch in _CN_DIGITS for ch in text):
        return int("".join(str(_CN_DIGITS[ch]) for ch in text))
    total = 0
    rest = text
    for unit, factor in (("千", 1000), ("百", 100)):
        if unit in rest:
            head, _, rest = rest.partition(unit)
            head_value = _CN_DIGITS.get(head, -1) if head else 1
            if head_value < 0:
                return None
            total += head_value * factor
    rest = rest.lstrip("零〇")
    if not rest:
        return total if text else None
    small = small_chinese_number(rest)
    return None if small is None else total + small


def _iso(year: int, month: int, day: int) -> str | None:
    try:
        return dt.date(year, month, day).isoformat()
    except ValueError:
        return None


def parse_date(text: str) -> str | None:
    """The ISO form of one written date, or None when it is not a real calendar date."""
    for found in find_dates(text):
        return found.iso
    return None


def find_dates(text: str, offset: int = 0) -> Iterator[FoundDate]:
    """Every date in ``text``, in order, with offsets shifted by ``offset``."""
    found: list[FoundDate] = []
    for pattern in (_ARABIC_DATE, _DASHED_DATE):
        for match in pattern.finditer(text):
            iso = _iso(int(match[1]), int(match[2]), int(match[3]))
            if iso:
                found.append(FoundDate(iso, match.start() + offset, match.end() + offset))
    for match in _CHINESE_DATE.finditer(text):
        year = chinese_number(match[1])
        month, day = small_chinese_number(match[2]), small_chinese_number(match[3])
        iso = _iso(year, month, day) if year and month and day else None
        if iso:
            found.append(FoundDate(iso, match.start() + offset, match.end() + offset))
    yield from sorted(found, key=lambda item: item.start)


def add_years_less_a_day(iso: str, years: int) -> str | None:
    """N years of validity end the day before the anniversary (有效期5年 from 2020-01-01 → 2024-12-31)."""
    start = dt.date.fromisoformat(iso)
    try:
        anniversary = start.replace(year=start.year + years)
    except ValueError:  # 29 February
        anniversary = start.replace(year=start.year + years, day=28) + dt.timedelta(days=1)
    return (anniversary - dt.timedelta(days=1)).isoformat()
