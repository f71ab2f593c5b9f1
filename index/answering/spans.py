"""Spans of a sentence that can answer a typed question: numbers with units, dates, names, 《documents》.

Pure functions over text; they decide whether a sentence holds what the
question asks for, and cut the short answer out of it.
"""

from __future__ import annotations

import functools
import re

from index.answering.question import (
    DATE,
    DOCUMENT,
    ORGANISATION,
    PERSON,
    PLACE,
    QUANTITY,
    entity_spans,
)

_CN_NUMBER = "零〇一二两三四五六七八九十百千万亿半"
_UNITS = (
    "个多?世纪|万元|亿元|千元|元|万人|人次|人|名|个|项|次|批|类|种|家|所|条|户|件|位|岁|倍|套|辆|台|张|本|册|篇|支|座|间|处|平方公里|"
    "公里|亩|公顷|小时|天|周|个月|世纪|年|级|层|%|％|‰|成|万|亿"
)
# A number with its unit: "341项", "25个街道", "63.6%", "2万~7万人", "一办四中心" is no quantity.
_QUANTITY = re.compile(
    rf"(?:\d+(?:\.\d+)?|[{_CN_NUMBER}]{{1,6}})(?:[万亿千百])?(?:[~～\-至到](?:\d+(?:\.\d+)?|[{_CN_NUMBER}]+)[万亿千百]?)?"
    rf"[多余来]?(?:{_UNITS})"
    r"|(?:无|没有|零)一?(?:起|例|人|个|件|项|名)"  # "无一起上访事件": none is a count too
)
_DATE = re.compile(
    r"(?:(?:19|20)\d{2}年(?:第\d{1,2}期|\d{1,2}月(?:\d{1,2}日)?|[上下]半年|底|初|末)?"
    r"|\d{1,2}月\d{1,2}日|\d{1,2}月(?:底|初|中旬|上旬|下旬))"
)
_TITLE_SPAN = re.compile(r"《[^》]{2,80}》")
_ORG_SUFFIX = re.compile(
    r"(?:委员会|办公室|办公厅|编办|政府|党委|党工委|人大|政协|组织(?=[^\u4e00-\u9fff]|以来|的|和|与|等|$)|协会|集团"
    r"|公司|(?<![干内全外])部|委|局|厅|中心|大队|院|办(?![理法事公学好得]))"
    r"(?![\u4e00-\u9fff]{0,1}(?:员|书记|主任|成员))"
)
_CJK_RUN = re.compile(r"[\u4e00-\u9fff]+")
# Characters an organisation's name does not start with: "由乡镇党委", "报市县委组织部".
_FUNCTION_CHARACTERS = frozenset("由报经向在并将对的是为从把被让给于等自有原")
MAX_ORG_CHARS = 14
_AUTHOR = re.compile(r"作者[:：]\s*([\u4e00-\u9fff·]{2,6}?)(?=来源|[\s，,（(；;]|$)")
_COORDINATED = re.compile(r"^[和与及、]$")
# Units that answer a question asked in another: 多少名 is answered by "50人".
_COMPATIBLE_UNITS = (
    frozenset("名 人 位 人次 万人".split()),
    frozenset("元 万元 亿元 千元".split()),
    frozenset("个 家 所 座 处".split()),
    frozenset("项 件 条".split()),
    frozenset("% ％ 成".split()),
)
# 哪个市 is answered by a 市, not by the towns in the sentence.
_ASKED_LEVEL = re.compile(r"哪[一两三四五几]?个(省|市|县|区|镇|乡|街道|村)")
_PERCENT_CUE = re.compile(r"比例|比重|百分|占.{0,12}(?:多少|几)")


def typed_spans(text: str, answer_type: str) -> list[tuple[int, int]]:
    """Every span of ``text`` of the given answer type, in order; empty for list and free-text types."""
    return list(_typed_spans(text, answer_type))


# Candidate sentences recur from question to question: their spans are computed once.
@functools.lru_cache(maxsize=1 << 16)
def _typed_spans(text: str, answer_type: str) -> tuple[tuple[int, int], ...]:
    return tuple(_find_typed_spans(text, answer_type))


def _find_typed_spans(text: str, answer_type: str) -> list[tuple[int, int]]:
    if answer_type == QUANTITY:
        return [m.span() for m in _QUANTITY.finditer(text) if not _is_year(text, m) and not _is_ordinal(text, m)]
    if answer_type == DATE:
        return [m.span() for m in _DATE.finditer(text)]
    if answer_type == DOCUMENT:
        return [m.span() for m in _TITLE_SPAN.finditer(text)]
    if answer_type == PLACE:
        return _coordinated([(s, e) for s, e, kind in entity_spans(text) if kind == PLACE], text)
    if answer_type in (PERSON, ORGANISATION):
        bodies = [(s, e) for s, e, kind in entity_spans(text) if kind == ORGANISATION]
        bodies = _maximal(sorted(set(bodies + _organisation_names(text))))
        if answer_type == ORGANISATION:
            return bodies
        # 谁 is answered by a body as often as by a person: "由乡镇党委进行资格审查".
        authors = [m.span(1) for m in _AUTHOR.finditer(text)]
        people = [
            (s, e)
            for s, e, kind in entity_spans(text)
            if kind == PERSON and not _PLACE_END.search(text[s:e]) and not _PLACE_AFTER.match(text, e)
        ]
        return sorted(set(authors + people + bodies))
    return []


_LEVEL_BODY = re.compile(r"[省市县区乡镇](?:委|政府)")
_PLACE_AFTER = re.compile(r"(?:省|市|县|区|镇|乡|村|街道|社区)")  # "金山" + "街道" is a place, not a person
_PLACE_END = re.compile(r"(?:省|市|县|区|镇|乡|村|街道)$")


def _organisation_names(text: str) -> list[tuple[int, int]]:
    """Runs of characters ending in a body's suffix (党委, 组织部, 编办, ...), started after a function character."""
    spans = []
    for run in _CJK_RUN.finditer(text):
        for suffix in _ORG_SUFFIX.finditer(text, run.start(), run.end()):
            start = suffix.start()
            while start > run.start() and text[start - 1] not in _FUNCTION_CHARACTERS:
                start -= 1
            start = max(start, suffix.end() - MAX_ORG_CHARS)
            if suffix.end() - start >= 3 or _LEVEL_BODY.fullmatch(text, start, suffix.end()):
                spans.append((start, suffix.end()))
    return spans


def _maximal(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Drop spans inside another: "市县委" within "市县委组织部"."""
    return [a for a in spans if not any(b != a and b[0] <= a[0] and a[1] <= b[1] for b in spans)]


def _coordinated(spans: list[tuple[int, int]], text: str) -> list[tuple[int, int]]:
    """ "曲塘镇和李堡镇" is one answer to 哪两个镇: places joined by 和 / 与 / 、 are merged."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and _COORDINATED.match(text[merged[-1][1] : start]):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def _is_year(text: str, match: re.Match[str]) -> bool:
    """ "2019年" is a date, not a quantity of years."""
    return bool(re.fullmatch(r"(?:19|20)\d{2}年", match.group(0)))


def _is_ordinal(text: str, match: re.Match[str]) -> bool:
    """ "第二批", "二次会议", "一办一所五科室", "七站八所": counting words that are not answers."""
    before = text[match.start() - 1 : match.start()]
    if before == "第" or bool(re.fullmatch(rf"[{_CN_NUMBER}]个", match.group(0)) and before in "这那每"):
        return True
    if match.group(0).endswith("次") and text.startswith(("会议", "全会", "大会", "全体会议"), match.end()):
        return True
    # A Chinese numeral beside another one is a set phrase's: 一办一所五科室, 七站八所, 一办四中心.
    cn_only = match.group(0)[0] in _CN_NUMBER
    beside = text[match.start() - 2 : match.start() - 1] + text[match.end() : match.end() + 1]
    return cn_only and any(ch in _CN_NUMBER for ch in beside)


def new_spans(text: str, answer_type: str, question: str, unit: str | None = None) -> list[tuple[int, int]]:
    """Typed spans that say something the question does not already say, in the unit it asks in."""
    flat_question = "".join(question.split())
    spans = [(s, e) for s, e in _typed_spans(text, answer_type) if text[s:e] not in flat_question]
    if answer_type == PLACE and (level := _ASKED_LEVEL.search(flat_question)):
        spans = [(s, e) for s, e in spans if text[s:e].endswith(level.group(1))]
    if answer_type == QUANTITY:
        if _PERCENT_CUE.search(flat_question):
            spans = [(s, e) for s, e in spans if text[s:e][-1] in "%％成"] or spans
        if unit:
            spans = [(s, e) for s, e in spans if _unit_fits(text[s:e], unit[0])]
    return spans


def _unit_fits(quantity: str, asked: str) -> bool:
    """Whether "50人" answers 多少名: the same unit or one of its kind."""
    unit = re.sub(rf"^[\d.{_CN_NUMBER}~～\-至到多余来]+", "", quantity)
    if not unit or unit.startswith(asked):
        return True
    if asked == "个":  # the all-purpose classifier: 几个人, 几个部门; not money, shares or time
        return unit[:1] not in "元%％成年月天周岁"
    return any(asked in kind and (unit in kind or unit[:1] in kind) for kind in _COMPATIBLE_UNITS)
