"""The term table: the shipped list read as the checks read it, a malformed list refused, normalize idempotent."""

from __future__ import annotations

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from index.answering.terms import DEFAULT_PATH, HEADER, chinese_numeral_value, default_terms, load_terms


@pytest.fixture(scope="module")
def terms():
    return default_terms()


@pytest.mark.parametrize(
    "group",
    [
        ("首批", "第一批", "第1批"),
        ("首届", "第一届", "第1届"),
        ("首次", "第一次"),
        ("街道办", "街道办事处"),
        ("中央编办", "中央编委办", "中央机构编制委员会办公室"),
        ("编办", "编委办", "机构编制委员会办公室"),
        ("综合执法", "综合行政执法"),
        ("党群中心", "党群服务中心"),
        ("乡镇政府", "乡镇人民政府"),
        ("市政府", "市人民政府"),
        ("县以上", "县级以上"),
        ("全国人大常委会", "全国人民代表大会常务委员会"),
        ("第十二届", "第12届"),
        ("二十五个", "25个"),
        ("两个", "2个"),
        ("一百零五条", "105条"),
        ("２０１９年", "2019年"),
        ("機構編制", "机构编制"),
    ],
)
def test_forms_of_one_term_are_the_same(terms, group):
    assert len({terms.normalize(form) for form in group}) == 1, [terms.normalize(form) for form in group]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("骆驼街道办事处", "骆驼街道办事处"),  # the 街道办 inside it is not expanded again
        ("骆驼街道办", "骆驼街道办事处"),
        ("中央编办", "中央机构编制委员会办公室"),  # not 中央 + 机构编制委员会办公室 by luck: one term
        ("中央编委", "中央机构编制委员会"),
        ("到街道办理", "到街道办理"),  # 街道 + 办理
        ("其中共有二十个", "其中共有20个"),  # 中共 is not in the table
        ("政府职能转变", "政府职能转变"),  # 政府 alone is no 人民政府
        ("十一个", "11个"),
        ("十个", "10个"),
        ("二十个", "20个"),
        ("二十多个", "20多个"),
        ("第一次全体会议", "第1次全体会议"),
        ("2019年", "2019年"),
        ("二〇一九年", "二〇一九年"),  # a year in bare digits is left as it is
        ("一般", "一般"),
        ("统一", "统一"),
        ("统一名称", "统一名称"),
        ("一起", "一起"),
        ("一是", "一是"),
        ("几十个", "几十个"),
        ("十几个", "十几个"),
        ("一两个", "一两个"),
        ("十一五期间", "十一五期间"),
        ("职责", "职责"),
    ],
)
def test_normalize(terms, text, expected):
    assert terms.normalize(text) == expected


@pytest.mark.parametrize(
    ("numeral", "value"),
    [("十", 10), ("十一", 11), ("二十", 20), ("二十五", 25), ("一百零五", 105), ("一百五十", 150), ("两百", 200)]
    + [("一千零五十", 1050), ("两", 2), ("二〇一九", None), ("一百五", None), ("一两", None), ("百", None)]
    + [("十零", None), ("十百", None)],
)
def test_chinese_numeral_value(numeral, value):
    assert chinese_numeral_value(numeral) == value


def test_related_terms_are_not_the_same(terms):
    assert not terms.same("职责", "职能")
    assert "职能" in terms.related("职责")
    assert "职责" in terms.related("职能")
    assert "职责" not in terms.related("职责")
    assert terms.related("街道办事处") == frozenset()


def test_variants(terms):
    assert terms.variants("首批") == {"首批", "第一批"}
    assert terms.variants("第1批") == {"首批", "第一批", "第1批"}
    assert terms.variants("中央编办") >= {"中央编办", "中央机构编制委员会办公室"}
    assert "编办" not in terms.variants("中央编办")
    assert terms.variants("改革") == {"改革"}
    assert terms.same("首批", "第一批")


def test_the_shipped_list_is_modest_and_well_formed(terms):
    assert 25 <= len(terms.terms) <= 60
    assert DEFAULT_PATH.read_text(encoding="utf-8").count("\t") > 0


def _write(tmp_path, *lines):
    path = tmp_path / "terms.tsv"
    path.write_text("\n".join(["# a comment", "\t".join(HEADER), *lines]) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["街道办事处\t街道办\tabbreviation\t", "乡镇政府\tabbreviation"], "line 4: expected 4"),
        (["\t街道办\tabbreviation\t"], "line 3: the canonical form is empty"),
        (["街道办事处\t街道办\tshortcut\t"], "line 3: unknown kind 'shortcut'"),
        (["街道办事处\t街道办||\tabbreviation\t"], "line 3: an empty variant"),
        (["街道办事处\t\tsynonym\t"], "line 3: a 'synonym' line needs at least one variant"),
        (["党群服务中心\t党群中心\tabbreviation\t", "便民服务中心\t党群中心\tabbreviation\t"], "line 4: '党群中心'"),
        (["第一批\t首批\tsynonym\t", "首批\t头批\tsynonym\t"], "line 4: '首批'"),  # a chain would need two passes
    ],
)
def test_a_malformed_list_names_its_line(tmp_path, lines, message):
    with pytest.raises(ValueError, match=message):
        load_terms(_write(tmp_path, *lines))


def test_a_list_without_its_header_is_refused(tmp_path):
    path = tmp_path / "terms.tsv"
    path.write_text("街道办事处\t街道办\tabbreviation\t\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 1: expected the header"):
        load_terms(path)


def test_a_staff_list_is_read_on_its_own(tmp_path):
    table = load_terms(
        _write(tmp_path, "乡镇综合便民服务中心\t便民中心\tabbreviation\tour own name", "第一批\t首批\tsynonym")
    )
    assert table.normalize("便民中心") == "乡镇综合便民服务中心"
    assert table.same("首批", "第1批")
    assert not table.same("编办", "机构编制委员会办公室")


# Pieces the table and the number rules act on, so that random strings meet them often, with traditional and
# full-width forms and any CJK character besides.
_TABLE_LINES = DEFAULT_PATH.read_text(encoding="utf-8").splitlines()
_TABLE_CHARS = {char for line in _TABLE_LINES if not line.startswith("#") for char in "".join(line.split("\t")[:2])}
_PIECES = sorted(_TABLE_CHARS - set("|") | set("第首零〇一二两三四五六七八九十百千个批次届多余几统理"))
_PIECES += [*"0123456789０１２３機構編製辦", "街道办", "中央编", "第十", "一百零", "编委办", "乡镇政府", "薴"]
_ANY_CJK = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
_TEXT = st.lists(st.sampled_from(_PIECES) | _ANY_CJK, max_size=30).map("".join)


@settings(max_examples=600, deadline=None)
@given(_TEXT)
@example("薴")  # OpenCC's t2s: 薴 -> 苧 -> 苎
def test_normalize_is_idempotent(text):
    terms = default_terms()
    once = terms.normalize(text)
    assert terms.normalize(once) == once
