"""Cleaning rules, each checked on lines copied from docs_raw/ as received.

Inputs are quoted literally from the corpus (half-width punctuation, OCR
spaces and slips included); ``test_quoted_lines_are_real`` keeps them honest.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import pytest

from index.ingest.clean import (
    CJK,
    clean_text,
    fix_ocr_slips,
    normalize_for_matching,
    normalize_line_breaks,
    remove_boilerplate_lines,
    remove_control_characters,
    remove_repeated_opening,
    remove_spaces_in_cjk,
    to_full_width_punctuation,
)

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs_raw"
DOC_PATHS = sorted(DOCS_DIR.glob("*.txt"))
CJK_CHAR = re.compile(f"[{CJK}]")
SPACE_BETWEEN_CJK = re.compile(f"[{CJK}][ \t\u00a0\u3000]+[{CJK}]")


def read_raw(name: str) -> str:
    return (DOCS_DIR / name).read_text(encoding="utf-8")


# Real lines, as received.
GD = "guangdong-township-subdistrict-reform.txt"
GD_SPACED = "深化乡镇街道体制改革是推 进国家治理体系和治理能力现代化的重要内容。"
GD_SLIP = (
    "广东省委编办坚持 深人学习习近平总书记关于基层治 理的重要论述,在2019年3月市县 机构改革基本完成后,"
    "压茬推进深 化乡镇街道体制改革工作。"
)
GD_2020 = "2020年 以来,坚持疫情防控和深化乡镇街道体制改革工作“两手抓”,强 化统筹协调,扎实推动改革措施落 地见效。"
GD_T_ZUO = (
    "通过明确乡镇街道党(工)委的职能定位,设立综合治理委员会、公共服务委员会、综合行政执法委员会等统一指挥协调的"
    "工作平台,推动资源服务管理下沉,加强了乡镇街道党(工)委对基层各类组织、各项T.作的领导统筹和对各类资源的管理使用。"
)
TA = "township-administrative-system-reform.txt"
TA_KEYWORDS = (
    "[关键词]乡镇;行政管理体制;改革[中图分类号]D630 [文献标识码]A"
    "乡镇行政管理体制是指由乡级政府相关管理部门组成的管理体系。"
)
TA_OUTLINE = "但是还存在以下几个方面的问题:2.1 机构比较臃肿"
SV = "subdistrict-management-reform-survey.txt"
SV_SCALE = (
    "(三)街道规模分类参照乡镇分类标准,以常住人口为主要指标对街道进行规模分类,规模较小[2万人(含)以下]、"
    "中等规模(2万~7万人)和规模较大[7万人(含)以±]o我市55个街道中规模较小街道13个,其中有5个街道人口仅IOOo~3000人,"
    "中等规模街道32个,规模较大街道10个。"
)
WR = "subdistrict-reform-work-report-3.txt"
WR_SHEZHI = "按工作需要设臵副主任1-2名,由中心工作人员竞聘产生,工作人员按核定的编制和岗位定员。"
LT = "luotuo-subdistrict-operating-mechanism-2019.txt"
LT_RENREN = (
    "科学、合理设置岗位,对职能已明显弱化的岗位取消兼并,对一些人浮于事的岗位进行力量调整,"
    "达到“人人有事做,事事有人做”的目标。"
)
ZJ = "zhenjiang-subdistrict-npc-work.txt"
ZJ_BEFORE = "2017年3月,全市确定8个联系点,其中有2个街道,采取上下联动、规范引导,进一步强化街道(园区)人大建设。"
ZJ_HEADING = "二是完善建章立制。"
ZJ_BOILERPLATE = (
    "- 1、下载文档前请自行甄别文档内容的完整性,平台不提供额外的编辑、内容补充、找答案等附加服务。",
    '- 2、"仅部分预览"的文档,不可在线预览部分如存在完整性等问题,可反馈申请退款(可完整预览的文档不适用该条件!)。',
    "- 3、如文档侵犯您的权益,请联系客服反馈,我们会尽快为您处理(人工客服工作时间:9:00-18:30)。",
)
ZJ_AGE = "主任平均年龄51.9周岁,任职5年以上的占25%,最长13年(华阳街道)"
ZJ_SOURCE = "作者:王丰江来源:《人大研究》 2019年第8期"


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (GD, GD_SPACED),
        (GD, GD_SLIP),
        (GD, GD_2020),
        (GD, GD_T_ZUO),
        (TA, TA_KEYWORDS),
        (TA, TA_OUTLINE),
        (SV, SV_SCALE),
        (WR, WR_SHEZHI),
        (LT, LT_RENREN),
        (ZJ, ZJ_BEFORE),
        (ZJ, ZJ_HEADING),
        *((ZJ, line) for line in ZJ_BOILERPLATE),
        (ZJ, ZJ_AGE),
        (ZJ, ZJ_SOURCE),
    ],
)
def test_quoted_lines_are_real(doc: str, fragment: str) -> None:
    assert fragment in read_raw(doc)


# remove_spaces_in_cjk


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (GD_SPACED, "深化乡镇街道体制改革是推进国家治理体系和治理能力现代化的重要内容。"),
        (
            GD_SLIP,
            "广东省委编办坚持深人学习习近平总书记关于基层治理的重要论述,在2019年3月市县机构改革基本完成后,"
            "压茬推进深化乡镇街道体制改革工作。",
        ),
        ("2020年 以来", "2020年以来"),
        ("工作“两手抓”,强 化统筹协调", "工作“两手抓”,强化统筹协调"),
        ("推\u3000进", "推进"),
        ("推 \t 进", "推进"),
    ],
)
def test_remove_spaces_in_cjk_joins_split_chinese(raw: str, expected: str) -> None:
    assert remove_spaces_in_cjk(raw) == expected


@pytest.mark.parametrize(
    "kept",
    [
        TA_KEYWORDS,  # "D630 [文献标识码]": a digit before the space
        ZJ_SOURCE,  # "》 2019年"
        "Tool box",
        "2.1 机构比较臃肿",
        "2019年 3月",
    ],
)
def test_remove_spaces_in_cjk_keeps_latin_and_digit_spaces(kept: str) -> None:
    assert remove_spaces_in_cjk(kept) == kept


def test_remove_spaces_keeps_the_space_after_an_identifier() -> None:
    assert "D630 [文献标识码]A" in remove_spaces_in_cjk(TA_KEYWORDS)
    assert "D630 [文献标识码]A" in clean_text(TA_KEYWORDS)


# remove_boilerplate_lines


def test_boilerplate_lines_vanish_and_neighbours_stay_in_order() -> None:
    text = "\n".join([ZJ_BEFORE, ZJ_HEADING, *ZJ_BOILERPLATE, ZJ_AGE])
    assert remove_boilerplate_lines(text) == "\n".join([ZJ_BEFORE, ZJ_HEADING, ZJ_AGE])


@pytest.mark.parametrize("line", ZJ_BOILERPLATE)
def test_each_boilerplate_line_is_dropped_alone(line: str) -> None:
    assert remove_boilerplate_lines(f"{ZJ_HEADING}\n{line}\n{ZJ_BEFORE}") == f"{ZJ_HEADING}\n{ZJ_BEFORE}"


def test_boilerplate_removal_keeps_real_lines_of_every_document() -> None:
    for path in DOC_PATHS:
        raw = path.read_text(encoding="utf-8")
        removed = set(raw.split("\n")) - set(remove_boilerplate_lines(raw).split("\n"))
        expected = set(ZJ_BOILERPLATE) if path.name == ZJ else set()
        assert removed == expected, path.name


# fix_ocr_slips


def test_fix_ocr_slips_on_real_lines() -> None:
    assert fix_ocr_slips("深人学习") == "深入学习"
    assert "坚持 深入学习习近平" in fix_ocr_slips(GD_SLIP)
    assert "各项工作的领导统筹" in fix_ocr_slips(GD_T_ZUO)
    fixed = fix_ocr_slips(SV_SCALE)
    assert "[7万人(含)以上]。我市55个街道" in fixed
    assert "人口仅1000~3000人," in fixed
    assert fix_ocr_slips(WR_SHEZHI).startswith("按工作需要设置副主任1-2名")


def test_ocr_fixes_survive_the_whole_pipeline() -> None:
    assert "坚持深入学习习近平总书记关于基层治理的重要论述，在2019年3月" in clean_text(GD_SLIP)
    assert "党（工）委对基层各类组织、各项工作的领导统筹" in clean_text(GD_T_ZUO)
    cleaned = clean_text(SV_SCALE)
    assert cleaned.startswith("（三）街道规模分类")
    assert "规模较小[2万人（含）以下]、中等规模（2万~7万人）和规模较大[7万人（含）以上]。我市55个街道" in cleaned
    assert "其中有5个街道人口仅1000~3000人，中等规模街道32个" in cleaned
    assert clean_text(WR_SHEZHI).startswith("按工作需要设置副主任1-2名，")


@pytest.mark.parametrize(
    "unchanged",
    [
        LT_RENREN,  # "人人有事做": 人 that is not a slip for 入
        ZJ_BEFORE,  # "2017年3月", "8个联系点"
        ZJ_SOURCE,  # "2019年第8期"
        ZJ_AGE,
        TA_KEYWORDS,  # "D630", "A乡镇"
        "2019年",
        "Tool",
        "Tool Kit使用说明",
        "Logo设计",
        "O2O模式",
        "ISO9001认证",
        "深人人心",  # not in the narrow list of verbs after 深人
        "T作",  # no Chinese before the T
        "100~3000人",
    ],
)
def test_fix_ocr_slips_leaves_correct_text_alone(unchanged: str) -> None:
    assert fix_ocr_slips(unchanged) == unchanged


def test_letters_read_for_digits_only_before_a_count_or_range() -> None:
    assert fix_ocr_slips("1OO万元") == "100万元"
    assert fix_ocr_slips("IOO~300") == "100~300"
    assert fix_ocr_slips("IOO items") == "IOO items"


# to_full_width_punctuation


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            ZJ_BOILERPLATE[2],
            "- 3、如文档侵犯您的权益，请联系客服反馈，我们会尽快为您处理（人工客服工作时间：9:00-18:30）。",
        ),
        (TA_OUTLINE, "但是还存在以下几个方面的问题：2.1 机构比较臃肿"),
        (ZJ_AGE, "主任平均年龄51.9周岁，任职5年以上的占25%，最长13年（华阳街道）"),
        (
            TA_KEYWORDS,
            "[关键词]乡镇；行政管理体制；改革[中图分类号]D630 [文献标识码]A"
            "乡镇行政管理体制是指由乡级政府相关管理部门组成的管理体系。",
        ),
        ("中等规模(2万~7万人)和规模较大", "中等规模（2万~7万人）和规模较大"),
        ("工作“两手抓”,强化", "工作“两手抓”，强化"),
        (ZJ_SOURCE, "作者：王丰江来源：《人大研究》 2019年第8期"),
        ("原因?是", "原因？是"),
        ("(可完整预览的文档不适用该条件!)", "（可完整预览的文档不适用该条件！）"),
    ],
)
def test_half_width_punctuation_next_to_chinese_becomes_full_width(raw: str, expected: str) -> None:
    assert to_full_width_punctuation(raw) == expected


@pytest.mark.parametrize(
    "unchanged",
    ["9:00-18:30", "2.1", "51.9", "比例为1:2。", "Hello, world", "A(B)", "(3)", "f(x, y)", "[7万人"],
)
def test_punctuation_between_digits_or_latin_stays_half_width(unchanged: str) -> None:
    assert to_full_width_punctuation(unchanged) == unchanged


def test_times_and_decimals_inside_chinese_are_kept() -> None:
    cleaned = clean_text(ZJ_AGE)
    assert "51.9周岁" in cleaned
    assert "工作时间：9:00-18:30）" in to_full_width_punctuation(ZJ_BOILERPLATE[2])
    assert "问题：2.1 机构" in clean_text(TA_OUTLINE)


# normalize_line_breaks, remove_control_characters


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("第一行\r\n第二行", "第一行\n第二行"),
        ("第一行\r第二行", "第一行\n第二行"),
        ("\ufeff第一行\n\n\n\n第二行\n", "第一行\n\n第二行"),
        ("\n\n  第一行  \n\t第二行\t\n\n", "第一行\n第二行"),
        ("第一行\n  \n \n第二行", "第一行\n\n第二行"),
    ],
)
def test_normalize_line_breaks(raw: str, expected: str) -> None:
    assert normalize_line_breaks(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("推\u200b进", "推进"),
        ("\ufeff深化改革", "深化改革"),
        ("乡镇\x00街道\x07", "乡镇街道"),
        ("a\u00adb", "ab"),
        ("第一行\n第二行\t续\r\n", "第一行\n第二行\t续\r\n"),
    ],
)
def test_remove_control_characters(raw: str, expected: str) -> None:
    assert remove_control_characters(raw) == expected


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_clean_text_keeps_lines_apart_whatever_the_line_ending(newline: str) -> None:
    raw = newline.join([ZJ_HEADING, ZJ_BEFORE, ""])
    assert clean_text(raw).split("\n") == [ZJ_HEADING, clean_text(ZJ_BEFORE)]


# clean_text over the whole corpus


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[str, str]]:
    texts = {}
    for path in DOC_PATHS:
        raw = path.read_text(encoding="utf-8")
        texts[path.name] = (raw, clean_text(raw))
    return texts


def test_corpus_is_present() -> None:
    assert len(DOC_PATHS) == 9


@pytest.mark.parametrize("name", [p.name for p in DOC_PATHS])
def test_clean_text_on_every_document(corpus: dict[str, tuple[str, str]], name: str) -> None:
    raw, cleaned = corpus[name]
    for marker in ("下载文档前请自行甄别", "仅部分预览", "如文档侵犯您的权益", "人工客服工作时间"):
        assert marker not in cleaned
    assert not SPACE_BETWEEN_CJK.search(cleaned)
    assert clean_text(cleaned) == cleaned
    assert "\r" not in cleaned and "\n\n\n" not in cleaned
    assert cleaned == cleaned.strip()


@pytest.mark.parametrize("name", [p.name for p in DOC_PATHS])
def test_clean_text_loses_no_chinese_characters(corpus: dict[str, tuple[str, str]], name: str) -> None:
    raw, cleaned = corpus[name]
    body = remove_repeated_opening(remove_boilerplate_lines(raw))
    before = Counter(CJK_CHAR.findall(body))
    after = Counter(CJK_CHAR.findall(cleaned))
    # Characters a rule may take away: 人 of 深人学习 and 臵 of 设臵 ...
    assert before - after <= Counter({"人": body.count("深人"), "臵": body.count("设臵")})
    # ... and the ones it may put in: 入 and 置 for those, 工 for "T." and 上 for "±".
    added = {"入": body.count("深人"), "置": body.count("设臵"), "工": body.count("T."), "上": body.count("以±")}
    assert after - before <= Counter(added)


def test_clean_text_drops_exactly_the_boilerplate(corpus: dict[str, tuple[str, str]]) -> None:
    raw, cleaned = corpus[ZJ]
    assert len(raw) - len(cleaned) > sum(len(line) for line in ZJ_BOILERPLATE)
    assert cleaned.endswith("二是完善建章立制。")


# normalize_for_matching


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("開封市的鄉鎮機構改革", "开封市的乡镇机构改革"),
        ("駱駝街道改革前內部機構總數大約有多少個？", "骆驼街道改革前内部机构总数大约有多少个?"),
        ("２０１９年", "2019年"),
        ("ＩＳＯ９００１", "iso9001"),
        ("全力以赴麵改革", "全力以赴面改革"),
        ("开封市的乡镇机构改革", "开封市的乡镇机构改革"),
    ],
)
def test_normalize_for_matching(raw: str, expected: str) -> None:
    assert normalize_for_matching(raw) == expected


def test_normalize_for_matching_keeps_simplified_text_simplified(corpus: dict[str, tuple[str, str]]) -> None:
    assert normalize_for_matching("基本结束") == "基本结束"
    for _, cleaned in corpus.values():
        once = normalize_for_matching(cleaned)
        assert normalize_for_matching(once) == once


def test_remove_repeated_opening_drops_the_doubled_title() -> None:
    # haian-central-town-reform.txt opens with its title twice, glued.
    line = "关于中心镇行政管理体制改革的实践与思考关于中心镇行政管理体制改革的实践与思考海安县从县、镇实际出发"
    assert line in read_raw("haian-central-town-reform.txt")
    assert remove_repeated_opening(line) == "关于中心镇行政管理体制改革的实践与思考海安县从县、镇实际出发"
    assert remove_repeated_opening("人人有事做，事事有人做") == "人人有事做，事事有人做"
    assert remove_repeated_opening("哈哈哈哈哈哈") == "哈哈哈哈哈哈"


@pytest.mark.parametrize(
    "line",
    ["-" + " " * 28_000 + "a", "- 1、" * 7_000 + "x", "•" + "\t" * 28_000 + "下载", "1." * 14_000 + " " * 1_000 + "b"],
)
def test_pathological_lines_clean_in_linear_time(line):
    """A line of dashes and spaces once backtracked quadratically (28 KB: the server stalled 13.7 s). A bound
    far above the linear cost (milliseconds) and far below the quadratic one (seconds)."""
    started = time.perf_counter()
    clean_text(line)
    remove_boilerplate_lines(line)
    assert time.perf_counter() - started < 1.0
