"""extract_metadata: each field taken from the most reliable place that holds it, with a confidence to match.

Order of trust, per field: a labelled header (发文字号：…) over the document's own layout (title, 文号 line, signature
block, a law's issuing history) over inference (a body guessed from its 文号 prefix). A field nothing supports is
left empty rather than guessed.
"""

from __future__ import annotations

import logging
import re

from index.ingest.metadata import layout
from index.ingest.metadata.dates import DATE_PATTERN, add_years_less_a_day, chinese_number, find_dates
from index.ingest.metadata.doc_numbers import find_doc_numbers
from index.ingest.metadata.fields import DocumentMetadata, MetadataField
from index.ingest.metadata.issuers import bodies_in_line, level_of
from index.ingest.metadata.kinds import kind_from_title
from index.ingest.metadata.layout import Line
from index.ingest.metadata.validity import find_amendments, find_repeals

logger = logging.getLogger(__name__)

_TITLE_PREFIX = re.compile(r"^(.{2,80}?)(?:关于|印发|转发|批转)")
_EFFECTIVE = re.compile(
    rf"本[\u4e00-\u9fff]{{1,8}}(?:自|从)\s?({DATE_PATTERN}|(?:印发|发布|公布|通过|签发)之日)起\s?(?:施行|实施|执行|生效)"
)
_EXPIRY = re.compile(rf"有效期(?:至|到)\s?({DATE_PATTERN})")
_OWN_VALIDITY = re.compile(r"本[\u4e00-\u9fff]{1,8}有效期")
_VALID_YEARS = re.compile(r"有效期(?:为|暂定)?\s?([0-9]{1,2}|[一二三四五六七八九十]{1,2})\s?年")
_NUMBER_LINE_SLACK = 12
_STATEMENT_REACH = 120
# 文号 prefixes whose body is certain; anything else is left to the text.
_PREFIX_BODIES = {"国发": "国务院", "国办发": "国务院办公厅", "国函": "国务院", "国办函": "国务院办公厅"}
_PREFIX_BODIES |= {"中发": "中共中央", "中办发": "中共中央办公厅"}


def _field(value: str, start: int, end: int, source: str, confidence: float) -> MetadataField:
    return MetadataField(value, (start, end), source, confidence)


def _title_line(lines: list[Line]) -> Line | None:
    for line in lines[:8]:
        if len(line.text) <= 80 and "。" not in line.text and kind_from_title(line.text):
            return line
    return None


def _bodies_from_title(title: str, start: int, source: str) -> tuple[MetadataField, ...]:
    match = _TITLE_PREFIX.match(title)
    names = bodies_in_line(match[1]) if match else None
    return tuple(_field(name, start + off, start + off + len(name), source, 0.85) for name, off in names or ())


def _header_bodies(lines: list[Line]) -> tuple[MetadataField, ...]:
    """A letterhead ('XX县人民政府文件') or a line of bodies above the title."""
    for line in lines[:5]:
        if "：" in line.text or "。" in line.text:
            break  # the salutation or the body has begun: a line of names below it is a signature
        names = bodies_in_line(line.text.removesuffix("文件").removesuffix("令"))
        if names:
            return tuple(_field(n, line.start + o, line.start + o + len(n), "text", 0.8) for n, o in names)
    return ()


def _issuers(title, lines, labels, signature, history, doc_number) -> tuple[MetadataField, ...]:
    for label in labels:
        if label.name == "issuers" and (names := bodies_in_line(label.value)):
            return tuple(_field(n, label.start + o, label.start + o + len(n), "text", 0.95) for n, o in names)
    title_line = _title_line(lines)
    chosen = _bodies_from_title(title, 0, "title") if title else ()
    if not chosen and title_line:
        chosen = _bodies_from_title(title_line.text, title_line.start, "text")
    chosen = chosen or _header_bodies(lines)
    signed = tuple(_field(n, o, o + len(n), "text", 0.8) for n, o in signature.bodies) if signature else ()
    if signed and {f.value for f in chosen} <= {f.value for f in signed}:
        return signed
    if chosen:
        return chosen
    bodies = [event.body for event in history if event.body]
    if bodies:
        name, start, end = bodies[-1]
        return (_field(name, start, end, "text", 0.8),)
    if doc_number and (body := _PREFIX_BODIES.get(doc_number.value.partition("〔")[0])):
        return (MetadataField(body, doc_number.span, doc_number.source, 0.4),)
    return ()


def _number_on_own_line(lines: list[Line], confidence: float) -> MetadataField | None:
    for index, line in enumerate(lines):
        if len(line.text) > 40:
            continue
        text = line.text
        following = lines[index + 1] if index + 1 < len(lines) else None
        # 中华人民共和国主席令 / 第十二号 on two lines: read as one, keeping the newline so offsets stay true.
        if text.endswith("令") and following and following.start == line.end + 1 and len(following.text) <= 12:
            text = text + "\n" + following.text
        for found in find_doc_numbers(text, line.start):
            if len(line.text) - (found.end - found.start) <= _NUMBER_LINE_SLACK:
                return _field(found.value, found.start, found.end, "text", confidence)
    return None


def _doc_number(title, lines, labels, history) -> MetadataField | None:
    for label in labels:
        if label.name == "doc_number" and (found := find_doc_numbers(label.value, label.start)):
            return _field(found[0].value, found[0].start, found[0].end, "text", 0.95)
    header = _number_on_own_line(lines[: layout.HEADER_LINES], 0.9)
    if header:
        return header
    if title and (found := find_doc_numbers(title[-40:], max(len(title) - 40, 0))):
        return _field(found[-1].value, found[-1].start, found[-1].end, "title", 0.8)
    for event in reversed(history):
        if found := find_doc_numbers(event.text, event.start):
            return _field(found[-1].value, found[-1].start, found[-1].end, "text", 0.85)
    tail = lines[max(len(lines) - layout.TAIL_LINES, layout.HEADER_LINES) :]
    return _number_on_own_line(tail, 0.75)


def _labelled_date(labels, name: str) -> MetadataField | None:
    for label in labels:
        if label.name == name and (found := next(find_dates(label.value, label.start), None)):
            return _field(found.iso, found.start, found.end, "text", 0.95)
    return None


def _dates(text, lines, labels, signature, history) -> dict[str, MetadataField | None]:
    written = _labelled_date(labels, "written_date")
    if written is None and signature:
        written = _field(signature.date.iso, signature.date.start, signature.date.end, "text", 0.9)
    if written is None:
        for line in lines[1:5]:
            if (found := layout.date_only(line)) and line.text.startswith(("（", "(")):
                written = _field(found.iso, found.start, found.end, "text", 0.7)
                break
    published = _labelled_date(labels, "published_date")
    if published is None and history:
        last = history[-1].date
        published = _field(last.iso, last.start, last.end, "text", 0.85)
    if published is None:
        printed = layout.printed_date(lines[-layout.TAIL_LINES :]) or layout.printed_date(lines[:5])
        published = _field(printed.iso, printed.start, printed.end, "text", 0.75) if printed else None
    effective = _labelled_date(labels, "effective_date")
    if effective is None and (found := layout.history_effective_date(layout.history_line(lines))):
        effective = _field(found.iso, found.start, found.end, "text", 0.85)
    if effective is None:
        effective = _effective(text, written=written, published=published)
        # An article '本法自1992年10月1日起施行' left unchanged by later revisions dates the first version only.
        if effective is not None and history and effective.value < history[-1].date.iso:
            effective = None
        # '自公布之日起施行' in a text revised since: the day meant is the first version's, which the text lacks.
        if effective is not None and effective.confidence < 0.9 and len(history) > 1:
            effective = None
    expiry = _labelled_date(labels, "expiry_date") or _expiry(text, effective or written)
    return {"written_date": written, "published_date": published, "effective_date": effective, "expiry_date": expiry}


def _effective(text: str, *, written: MetadataField | None, published: MetadataField | None) -> MetadataField | None:
    last = None
    for last in _EFFECTIVE.finditer(text):  # noqa: B007 - the last statement is the document's own
        pass
    if last is None:
        return None
    found = next(find_dates(last[1], last.start(1)), None)
    if found:
        return _field(found.iso, found.start, found.end, "text", 0.9)
    # 自印发之日起 runs from the date it was signed; 自发布/公布之日起 from the date it was made public.
    issued = (written or published) if "印发" in last[1] else (published or written)
    if issued is None:
        return None
    return MetadataField(issued.value, (last.start(), last.end()), "text", 0.6)


def _own_validity_statements(text: str) -> list[tuple[int, int]]:
    """Where the document speaks of its own force: the sentences holding '本…自…起施行' or '本…有效期'."""
    spans = []
    for pattern in (_EFFECTIVE, _OWN_VALIDITY):
        for match in pattern.finditer(text):
            # Bounded: a text with no 。 must not be scanned to its end once per statement.
            end = text.find("。", match.end(), match.end() + _STATEMENT_REACH)
            spans.append((match.start(), end if end >= 0 else min(match.end() + _STATEMENT_REACH, len(text))))
    return spans


def _expiry(text: str, start: MetadataField | None) -> MetadataField | None:
    # Only a validity said of the document itself: '认定有效期三年' of a licence or title is not its expiry.
    spans = _own_validity_statements(text)
    for low, high in spans:
        if match := _EXPIRY.search(text, low, high):
            found = next(find_dates(match[1], match.start(1)), None)
            if found:
                return _field(found.iso, found.start, found.end, "text", 0.9)
    match = next((m for low, high in spans if (m := _VALID_YEARS.search(text, low, high))), None)
    if match is None or start is None:
        return None
    years = int(match[1]) if match[1].isdigit() else chinese_number(match[1])
    if not years:
        return None
    return _field(add_years_less_a_day(start.value, years), match.start(), match.end(), "text", 0.6)


def _kind(title: str, lines: list[Line]) -> MetadataField | None:
    if title and (found := kind_from_title(title)):
        kind, start = found
        return MetadataField(kind, (start, start + len(kind)), "title", 0.9)
    line = _title_line(lines)
    if line and (found := kind_from_title(line.text)):
        kind, start = found
        return _field(kind, line.start + start, line.start + start + len(kind), "text", 0.75)
    return None


def _subject_words(labels) -> tuple[MetadataField, ...]:
    for label in labels:
        if label.name == "subject_words":
            words = []
            for match in re.finditer(r"[^\s\u3000、，,;；]{1,20}", label.value[:200]):
                words.append(_field(match[0], label.start + match.start(), label.start + match.end(), "text", 0.9))
            return tuple(words)
    return ()


def extract_metadata(text: str, *, title: str = "") -> DocumentMetadata:
    """The metadata one document states about itself; ``text`` is the cleaned text the spans point into."""
    lines = layout.split_lines(text)
    edges = lines[: layout.HEADER_LINES] + lines[max(len(lines) - layout.TAIL_LINES, layout.HEADER_LINES) :]
    labels = layout.labelled_fields(edges)
    history = layout.issuing_history(lines)
    first_body_line = 3 if len(lines) > 3 else len(lines)
    signature = layout.find_signature(lines, first_body_line)
    doc_number = _doc_number(title, lines, labels, history)
    issuers = _issuers(title, lines, labels, signature, history, doc_number)
    level_name = next((level for item in issuers if (level := level_of(item.value))), None)
    level = None
    if level_name and issuers:
        level = MetadataField(level_name, issuers[0].span, issuers[0].source, round(issuers[0].confidence * 0.9, 3))
    repeals = tuple(_field(ref.text, ref.start, ref.end, "text", 0.8) for ref in find_repeals(text))
    amends = tuple(_field(ref.text, ref.start, ref.end, "text", 0.8) for ref in find_amendments(text))
    return DocumentMetadata(
        issuers=issuers,
        doc_number=doc_number,
        **_dates(text, lines, labels, signature, history),
        kind=_kind(title, lines),
        level=level,
        subject_words=_subject_words(labels),
        repeals=repeals,
        amends=amends,
    )
