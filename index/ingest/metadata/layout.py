"""Where things sit in a policy document: its lines, the labelled header a website adds (发文字号：…), the
signature block (bodies then a date on lines of their own), and the issuing history a law carries under its title
（2019年3月15日第十三届全国人民代表大会第二次会议通过）.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from index.ingest.metadata.dates import DATE_PATTERN, FoundDate, find_dates
from index.ingest.metadata.doc_numbers import find_doc_numbers
from index.ingest.metadata.issuers import bodies_in_line, is_plausible_body

logger = logging.getLogger(__name__)

HEADER_LINES = 15
TAIL_LINES = 15
SHORT_LINE = 60

LABELS = {
    "发文机关": "issuers",
    "发布机关": "issuers",
    "发文单位": "issuers",
    "制定机关": "issuers",
    "发文字号": "doc_number",
    "发文文号": "doc_number",
    "文号": "doc_number",
    "成文日期": "written_date",
    "成文时间": "written_date",
    "发布日期": "published_date",
    "发布时间": "published_date",
    "公布日期": "published_date",
    "施行日期": "effective_date",
    "实施日期": "effective_date",
    "生效日期": "effective_date",
    "有效期至": "expiry_date",
    "失效日期": "expiry_date",
    "主题词": "subject_words",
}
_LABEL = re.compile("(" + "|".join(sorted(LABELS, key=len, reverse=True)) + r")\s?[：:]\s?")
_DATE_ONLY = re.compile(rf"^[（(]?\s?({DATE_PATTERN})\s?[）)]?$")
_SIGNED = re.compile(rf"^([^\d（(]{{3,40}}?)\s?({DATE_PATTERN})$")
_PRINTED = re.compile(rf"({DATE_PATTERN})\s?印发")
_HISTORY_VERBS = ("通过", "公布", "修订", "修正", "发布", "批准")
# A session number (第十三届) may stand between a place and its congress; it is not part of the body's name.
_LAW_BODY = re.compile(
    r"([\u4e00-\u9fff]{2,12}?(?:省|自治区|市|自治州|县))(?:第[一二三四五六七八九十百0-9]{1,4}届)?"
    r"(人民代表大会常务委员会|人民代表大会|人民政府)"
    r"|(全国)(?:第[一二三四五六七八九十百0-9]{1,4}届)?(人民代表大会常务委员会|人民代表大会)"
    r"|()(全国人民代表大会常务委员会|全国人民代表大会|国务院|最高人民法院|最高人民检察院)"
)
_HISTORY_EFFECTIVE = re.compile(rf"({DATE_PATTERN})\s?起?\s?(?:施行|实施|生效)")
_QUOTED_DECISION = re.compile(r"《([^《》〈\n]{2,40}?)关于[^《》\n]{0,80}?决定》")
_QUOTED = re.compile(r"《[^《》\n]{0,100}》")


@dataclass(frozen=True)
class Line:
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)


@dataclass(frozen=True)
class Labelled:
    name: str
    value: str
    start: int


@dataclass(frozen=True)
class Signature:
    bodies: tuple[tuple[str, int], ...]
    date: FoundDate


@dataclass(frozen=True)
class HistoryEvent:
    date: FoundDate
    body: tuple[str, int, int] | None  # the name, and where it was written (a session number may sit inside)
    text: str
    start: int


def split_lines(text: str) -> list[Line]:
    """The non-blank lines, stripped, each with the offset of its first kept character."""
    lines = []
    position = 0
    for raw in text.split("\n"):
        stripped = raw.strip()
        if stripped:
            lines.append(Line(stripped, position + raw.index(stripped[0])))
        position += len(raw) + 1
    return lines


def labelled_fields(lines: list[Line]) -> list[Labelled]:
    found = []
    for line in lines:
        if len(line.text) > 400:
            continue
        labels = list(_LABEL.finditer(line.text))
        for index, label in enumerate(labels):
            end = labels[index + 1].start() if index + 1 < len(labels) else len(line.text)
            value = line.text[label.end() : end].strip()
            if value:
                found.append(Labelled(LABELS[label[1]], value, line.start + label.end()))
    return found


def date_only(line: Line) -> FoundDate | None:
    if len(line.text) > 30:
        return None
    match = _DATE_ONLY.match(line.text)
    return next(find_dates(match[1], line.start + match.start(1)), None) if match else None


def printed_date(lines: list[Line]) -> FoundDate | None:
    """The 版记 line '…办公室 2019年3月6日印发' (or a header '（2019年3月5日印发）')."""
    for line in lines:
        if len(line.text) <= SHORT_LINE and (match := _PRINTED.search(line.text)):
            return next(find_dates(match[1], line.start + match.start(1)), None)
    return None


def find_signature(lines: list[Line], first_body_line: int) -> Signature | None:
    """The first date standing on its own line after the header, with the body names on the lines just above it."""
    for index in range(first_body_line, len(lines)):
        found = date_only(lines[index])
        if found is None:
            signed = _signed_line(lines[index])
            if signed:
                return signed
            continue
        bodies: list[tuple[str, int]] = []
        for above in range(index - 1, max(index - 5, first_body_line - 1), -1):
            names = bodies_in_line(lines[above].text)
            if names is None:
                break
            bodies = [(name, lines[above].start + offset) for name, offset in names] + bodies
        return Signature(tuple(bodies), found)
    return None


def _signed_line(line: Line) -> Signature | None:
    """'望谟县人民政府办公室 2022年12月20日': the body and the date on one line."""
    if len(line.text) > SHORT_LINE or not (match := _SIGNED.match(line.text)):
        return None
    names = bodies_in_line(match[1])
    found = next(find_dates(match[2], line.start + match.start(2)), None)
    if not names or found is None:
        return None
    return Signature(tuple((name, line.start + offset) for name, offset in names), found)


def _event_body(event_text: str, offset: int) -> tuple[str, int, int] | None:
    blanked = _QUOTED.sub(lambda m: "　" * len(m[0]), event_text)
    for match in _LAW_BODY.finditer(blanked):
        name = "".join(part for part in match.groups() if part)
        if is_plausible_body(name):
            return name, offset + match.start(), offset + match.end()
    # '根据《国务院关于修改部分行政法规的决定》修订': the body that made the amending decision.
    for quoted in _QUOTED_DECISION.finditer(event_text):
        names = bodies_in_line(quoted[1])
        if names and len(names) == 1:
            return names[0][0], offset + quoted.start(1), offset + quoted.end(1)
    # '国家市场监督管理总局令第54号公布': the body that signs an order is the order's prefix.
    for number in find_doc_numbers(blanked, offset):
        name = number.value.partition("令第")[0].removeprefix("中华人民共和国")
        if number.kind == "order" and is_plausible_body(name):
            return name, number.start, number.start + len(number.value.partition("令第")[0])
    return None


def history_line(lines: list[Line]) -> Line | None:
    """The parenthesis under a law's title that lists its adoption and revisions, if it has one."""
    for line in lines[:6]:
        if not line.text.startswith(("（", "(")) or not any(verb in line.text for verb in _HISTORY_VERBS):
            continue
        first = next(find_dates(line.text[:40], line.start), None)
        if first is not None and first.start - line.start <= 3:
            return line
    return None


def history_effective_date(line: Line | None) -> FoundDate | None:
    """'…公布　2006年1月23日施行' or '自2021年1月1日起施行' inside the history parenthesis."""
    if line is None:
        return None
    match = _HISTORY_EFFECTIVE.search(line.text[:3000])
    return next(find_dates(match[1], line.start + match.start(1)), None) if match else None


def issuing_history(lines: list[Line]) -> list[HistoryEvent]:
    """The events of a law's history paragraph under its title, oldest first; empty when there is none."""
    line = history_line(lines)
    if line is None:
        return []
    dates = list(find_dates(line.text[:3000], line.start))
    events = []
    for index, found in enumerate(dates):
        end = dates[index + 1].start if index + 1 < len(dates) else line.end
        event_text = line.text[found.end - line.start : end - line.start]
        if any(verb in event_text for verb in _HISTORY_VERBS):
            events.append(HistoryEvent(found, _event_body(event_text, found.end), event_text, found.end))
    return events
