"""What a question asks for, read from its wording alone: pure functions, no index.

Two things are read: the expected answer type (a number for 多少, a date for
哪年, a named document for 什么意见, ...) and the qualifiers that an answer
must hold (a year, an ordinal such as 第二批, a number, a place or body, a
《title》). Answers are then checked against both (``index.answering.evidence``).
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass

from index.ingest.clean import normalize_for_matching

QUANTITY, DATE, PERSON, ORGANISATION, PLACE, DOCUMENT, LIST, TEXT = (
    "quantity",
    "date",
    "person",
    "organisation",
    "place",
    "document",
    "list",
    "text",
)
ANSWER_TYPES = (QUANTITY, DATE, PERSON, ORGANISATION, PLACE, DOCUMENT, LIST, TEXT)
SPAN_TYPES = frozenset({QUANTITY, DATE, PERSON, ORGANISATION, PLACE, DOCUMENT})

_NUMERAL = "零〇一二两三四五六七八九十百千万亿"
# (type, cue) in order of precedence: "哪年出台了什么文件" asks for a date first.
_TYPE_CUES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (DATE, re.compile(r"哪一?年|哪个?月|哪一?天|何时|什么时[候间]|啥时候|几月|几号|何年|哪个时间")),
    (LIST, re.compile(r"哪几(?!个(?:省|市|县|区|镇|乡|街道|村|城市))")),
    (PLACE, re.compile(r"哪[两三四五几]个(?:省|市|县|区|镇|乡|街道|村|城市)")),  # places, before 几个 (a count)
    (
        QUANTITY,
        re.compile(
            r"多少|几[个名人项次批类种家所条户件位成年天岁倍级层万千百]|比例|比重|百分之?几|多大|多高|多长|多重|多远|多久"
            r"|(?:人数|数量|总数|数目|规模|个数|编制数)(?:$|[？?\s]|是|有|为)"
        ),
    ),
    (
        DOCUMENT,
        re.compile(
            r"(?:什么|哪个|哪份|哪部|哪项|啥)[^，,。？?]{0,14}?(?:意见|规定|文件|通知|办法|条例|方案|决定|法规|纲要)"
            r"|(?:意见|规定|文件|通知|办法|条例|方案|决定)(?:的名称|叫什么|是什么名|名字|全称)"
        ),
    ),
    (PERSON, re.compile(r"(?:是|由|归|找)?谁|哪位|何人|作者|什么人|叫什么(?:名字)?|名字叫")),
    (
        ORGANISATION,
        re.compile(r"(?:哪个|哪些|什么|哪家)[^，,。？?]{0,4}?(?:部门|机构|单位|组织|机关|协会|公司)|由哪"),
    ),
    (
        PLACE,
        re.compile(
            r"哪里|哪儿|在哪(?![一些个层级种类方])|何处|什么地方|哪个(?:省|市|县|区|镇|乡|街道|村|地区|地方|城市)"
            r"|哪(?:省|市|县|区|乡|镇)|哪[两三四五几]个(?:省|市|县|区|镇|乡|街道|村|城市)"
        ),
    ),
    (LIST, re.compile(r"哪些|有啥|都有什么|包括什么|包括哪|几方面|几项|几个方面")),
    (TEXT, re.compile(r"为什么|为何|如何|怎样|怎么|咋|什么原因|什么作用|什么意义|有何")),
)
_ORDINAL = re.compile(rf"(首批|首次|首届|第[{_NUMERAL}\d]+(?:批|次|届|期|轮|阶段|个五年))")
_YEAR = re.compile(r"((?:19|20)\d{2})年?")
# A number is tried only where its run of digits or numerals starts: tried at every position of a long run,
# the greedy run and the failing look-ahead would cost the square of its length.
_NUMBER = re.compile(
    rf"((?<!\d)\d+(?:\.\d+)?%?|(?<![{_NUMERAL}])[{_NUMERAL}]{{2,}})(?=[个名人项次万元亿户所家条件位%])"
)
_TITLE = re.compile(r"《([^》]{2,60})》")
_POS_ENTITY = {"ns": PLACE, "nt": ORGANISATION, "nr": PERSON, "nrt": PERSON}
# A person's name from a question's tags is too often a misreading ("闯一闯"): qualifiers take places and bodies.
_QUALIFYING_ENTITIES = frozenset({PLACE, ORGANISATION})
# Words that name a kind of place rather than one place ("乡镇", "街道" alone, "本市").
_GENERIC_PLACES = frozenset(
    "乡镇 街道 城区 社区 农村 全市 全省 全县 全区 本市 本县 本区 各地 基层 地区 该市 该县 该区 该镇 该乡 我市 我县 我区"
    " 市县 县市 县区 省市 镇街 镇村 试点镇 中心镇 各省 各市 各县 各区 乡村 城市"
    " 省级 市级 县级 区级 镇级 乡级 村级".split()
)
# Nouns a question asks about without naming the subject: "什么后果" needs no word "后果" in the answer.
GENERIC_FOCUS = frozenset(
    "后果 原因 作用 意义 情况 措施 办法 做法 内容 特点 问题 方式 结果 效果 变化 名字 名称 说法 现象 经验 目的 目标 要求"
    " 任务 举措 成效 好处 关系 区别 不同 影响 阶段 步骤 过程 方面 职责 职能 体会 认识 特色 亮点 难点 困难 主要"
    " 文章 本文 文中 篇文章 文件 材料 时候 时间 年份 地方 东西 事情 事儿 数字 数量 总数 人数"
    " 一共 总共 大约 大概 一般 具体 基本 当时 现在 目前 以后 以前 之后 后来 最后 比例 比重 岁数 报告 调研 调查 研究"
    " 文档 资料"
    # Nouns that name the kind of answer, not its subject: 哪个部门, 哪本期刊, 什么人.
    " 部门 机构 单位 组织 机关 人员 期刊 刊物 杂志 城市 地点 日期 年代 数额 金额 人物 名单".split()
)


@dataclass(frozen=True)
class Qualifier:
    kind: str  # "year", "ordinal", "number", "title", "place", "organisation", "person"
    text: str


@dataclass(frozen=True)
class QuestionAnalysis:
    answer_type: str
    qualifiers: tuple[Qualifier, ...]
    unit: str | None  # the unit or classifier a quantity is asked in: 多少"元", 几"个街道"
    focus: tuple[str, ...] = ()  # the nouns the asked-for thing is named by: "基本工资" in 基本工资是多少元

    @property
    def wants_span(self) -> bool:
        return self.answer_type in SPAN_TYPES


def expected_answer_type(question: str) -> str:
    """The first type whose cue the question holds, in the order of ``_TYPE_CUES``; free text otherwise."""
    text = normalize_for_matching(question)
    return next((kind for kind, cue in _TYPE_CUES if cue.search(text)), TEXT)


def asked_unit(question: str) -> str | None:
    """The unit after 多少 / 几: "多少元" -> "元", "多少个街道" -> "个街道", "多少项" -> "项"."""
    if re.search(r"多少钱|多少工资|几块钱", question):
        return "元"  # money, whatever the currency word
    match = re.search(r"(?:多少|几)([个名人项次批类种家所条户件位元万亿]{1,2})?([\u4e00-\u9fff]{0,4})", question)
    if not match or not match.group(1):
        return None
    unit = match.group(1)
    noun = match.group(2) or ""
    noun = re.split(r"[的是了呢吗啊？?，,。]", noun)[0]
    return unit + noun[:2] if noun and unit in "个名项家所条户件位" else unit


def qualifiers(question: str) -> tuple[Qualifier, ...]:
    """What an answer must hold besides its type, in question order and without repeats."""
    text = normalize_for_matching(question)
    found: list[tuple[int, Qualifier]] = []
    found += [(m.start(), Qualifier("ordinal", m.group(1))) for m in _ORDINAL.finditer(text)]
    found += [(m.start(), Qualifier("year", m.group(1))) for m in _YEAR.finditer(text)]
    found += [(m.start(), Qualifier("title", m.group(1))) for m in _TITLE.finditer(text)]
    years = {q.text for _, q in found if q.kind == "year"}
    found += [(m.start(), Qualifier("number", m.group(1))) for m in _NUMBER.finditer(text) if m.group(1) not in years]
    outside_titles = _TITLE.sub(lambda m: " " * len(m.group(0)), text)
    found += [
        (s, Qualifier(kind, outside_titles[s:e]))
        for s, e, kind in entity_spans(outside_titles)
        if kind in _QUALIFYING_ENTITIES
    ]
    seen: set[str] = set()
    result = []
    for _, qualifier in sorted(found, key=lambda f: f[0]):
        if qualifier.text not in seen:
            seen.add(qualifier.text)
            result.append(qualifier)
    return tuple(result)


@functools.lru_cache(maxsize=1 << 16)
def entity_spans(text: str) -> tuple[tuple[int, int, str], ...]:
    """Named places, bodies and people as (start, end, kind): jieba's part-of-speech tags, and place suffixes."""
    entities: list[tuple[int, int, str]] = []
    tags = _pos_tags(text)
    pos = 0
    for i, (word, flag) in enumerate(tags):
        kind = _POS_ENTITY.get(flag)
        name = word
        following = tags[i + 1][0] if i + 1 < len(tags) else ""
        if kind is None and following in _PLACE_SUFFIXES and flag in _NAME_FLAGS and len(word) >= 2:
            kind, name = PLACE, word + following  # "骆驼" + "街道", "曲塘" + "镇"
        elif kind is None and word in _PLACE_SUFFIXES and len(word) == 1:
            start = _single_characters_before(tags, i)
            if start < i:  # "禾" + "梨" + "坳" + "乡": a rare name jieba cuts into characters
                name = "".join(w for w, _ in tags[start : i + 1])
                entities.append((pos - len(name) + len(word), pos + len(word), PLACE))
            pos += len(word)
            continue
        elif kind is None and _PLACE_ENDING.fullmatch(word) and flag in _NAME_FLAGS:
            kind = PLACE
        if kind == PERSON and name[-1] in "省市县区镇乡村":
            kind = PLACE  # "李堡镇" is tagged as a person's name
        if kind and len(name) >= 2 and not _generic_place(name):
            entities.append((pos, pos + len(name), kind))
        pos += len(word)
    return tuple(entities)


def _single_characters_before(tags: tuple[tuple[str, str], ...], i: int) -> int:
    start = i
    while start > 0 and i - start < 3 and len(tags[start - 1][0]) == 1 and tags[start - 1][1] in _CHARACTER_FLAGS:
        start -= 1
    return start if i - start >= 2 else i


_CHARACTER_FLAGS = frozenset({"n", "ng", "g", "nr", "ns", "nz", "a", "ag", "vg", "j"})
_PLACE_SUFFIXES = frozenset("省 市 县 区 镇 乡 村 街道 社区 自治区 自治州 旗".split())
_PLACE_ENDING = re.compile(r"[\u4e00-\u9fff]{2,5}(?:省|市|县|区|镇|乡|村|街道|社区)")
_NAME_FLAGS = frozenset({"n", "nz", "ns", "nr", "nt", "j", "nrt", "nrfg"})


_ONLY_KINDS = re.compile(r"(?:乡|镇|街道|村|社区|县|市|区|省|城|农村|城市)+[里上内级]?")
_NOT_A_NAME = re.compile(r"^(?:各|每个?|全|本|该|我|这个?|那个?|哪个?|什么|有的|新|原|一个|试点|改革|所在|周边)")


def _generic_place(word: str) -> bool:
    """ "试点镇", "各县" or "该市" name a kind of place, not one place."""
    return word in _GENERIC_PLACES or bool(_NOT_A_NAME.match(word) or _ONLY_KINDS.fullmatch(word))


def analyze(question: str) -> QuestionAnalysis:
    answer_type = expected_answer_type(question)
    unit = asked_unit(normalize_for_matching(question)) if answer_type == QUANTITY else None
    found = qualifiers(question)
    return QuestionAnalysis(answer_type, found, unit, focus_words(question, answer_type, found))


# One-character words that jieba may tag as nouns but that modify nothing: "干部里", "光事业站所".
_NOT_MODIFIERS = frozenset("里 光 就 都 也 还 只 才 又 内 中 上 下 外 前 后 们".split())
_CUE_OF = {kind: cue for kind, cue in _TYPE_CUES}
_FOCUS_FLAGS = frozenset({"n", "nz", "nr", "j", "ng", "vn"})
_CLAUSE = re.compile(r"[，,。；;？?！!\s]")
FOCUS_BEFORE, FOCUS_AFTER = 2, 1


def focus_words(question: str, answer_type: str, found: tuple[Qualifier, ...] = ()) -> tuple[str, ...]:
    """The noun phrases next to the question word, in its clause: what the answer must be about.

    "乡镇公务员每月基本工资是多少元" -> 乡镇公务员, 基本工资; "哪一年出台了街道人大工委的工作规则" -> 工作规则.
    Generic nouns (后果, 情况, 名称) and the qualifiers (places, years) are left out: they are checked apart.
    """
    text = normalize_for_matching(question)
    cue = _CUE_OF.get(answer_type)
    match = cue.search(text) if cue else None
    if match is None:
        return ()
    clause_start = max((m.end() for m in _CLAUSE.finditer(text, 0, match.start())), default=0)
    clause_end = next((m.start() for m in _CLAUSE.finditer(text, match.end())), len(text))
    named = "".join(q.text for q in found)
    after_start = match.end()
    unit = asked_unit(text) if answer_type == QUANTITY else None
    if unit and text.startswith(unit, after_start):
        after_start += len(unit)  # "多少户居民": the counted noun is checked with the unit, not as the focus
    elif unit and text.startswith(unit[0], after_start):
        after_start += 1
    before = _noun_phrases(text[clause_start : match.start()], named)
    after = _noun_phrases(text[after_start:clause_end], named)
    return tuple(dict.fromkeys([w for phrase in before[-1:] + after[-1:] for w in phrase]))


def _noun_phrases(text: str, named: str) -> list[list[str]]:
    """Runs of nouns, as their words ("女干部", "基本工资"), without generic or already-checked words.

    A one-character modifier stays glued to the noun after it: "女" + "干部" is checked as "女干部".
    """
    phrases: list[list[str]] = []
    run: list[tuple[str, str]] = []
    for word, flag in (*_pos_tags(text), ("", "x")):
        if flag in _FOCUS_FLAGS or (flag in ("b", "a") and len(word) == 1):
            run.append((word, flag))
            continue
        glued: list[tuple[str, str]] = []
        for w, f in [(w, f) for w, f in run if w not in _NOT_MODIFIERS]:
            if glued and len(glued[-1][0]) == 1:
                glued[-1] = (glued[-1][0] + w, "n")
            else:
                glued.append((w, f))
        glued = [w for w, _ in glued]
        content = [w for w in glued if len(w) >= 2 and w not in GENERIC_FOCUS and w not in named]
        content = [w for w in content if not _generic_place(w)]
        if content:
            phrases.append(content)
        run = []
    return phrases


@functools.lru_cache(maxsize=4096)
def _pos_tags(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((pair.word, pair.flag) for pair in _posseg().cut(text))


@functools.cache
def _posseg():
    import jieba
    import jieba.posseg

    jieba.setLogLevel(logging.WARNING)
    return jieba.posseg
