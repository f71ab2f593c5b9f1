"""Question analysis and answer spans: pure functions, tested on real questions and on text of other kinds.

The seed questions are those of the gold set; the others (news, notices, a
company report) were written here so that no rule is tuned to the nine documents.
"""

from __future__ import annotations

import pytest

from index.answering.evidence import quotable_span
from index.answering.question import analyze, expected_answer_type, focus_words, qualifiers
from index.answering.spans import new_spans, typed_spans


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("镇江市有多少个街道？", "quantity"),
        ("海安县首批下放了多少项行政权力事项？", "quantity"),
        ("涉农街道占街道总数的比例是多少？", "quantity"),
        ("聘任期是几年？", "quantity"),
        ("镇海区 中层岗位 竞聘 提拔使用 人数", "quantity"),
        ("《浅析我国乡镇行政管理体制改革》刊登在哪一年哪一期？", "date"),
        ("这个政策是什么时候出台的？", "date"),
        ("广东为深化乡镇街道体制改革出台了什么意见？", "document"),
        ("2024年国家新出台的政策文件叫什么名字？", "document"),
        ("骆驼街道改革试点是由谁负责的？", "person"),
        ("《红楼梦》的作者是谁？", "person"),
        ("由哪个部门审核确定人员名单？", "organisation"),
        ("我國自加入哪個國際組織以來經濟高速發展？", "organisation"),
        ("设立一办四中心的是哪个乡？", "place"),
        ("海安县选了哪两个镇先行先试？", "place"),
        ("街道办事处的主要职责有哪些？", "list"),
        ("改革前存在哪些突出问题？", "list"),  # 存在哪些 is no 在哪 (a place)
        ("镇江哪几个街道的人手最紧张？", "place"),
        ("乡镇机构为什么会比较臃肿？", "text"),
        ("乡镇政府处在哪一层，分量怎么样？", "text"),
        ("广东乡镇街道改革到现在成效咋样？", "text"),
        ("如果连着两年评比排在最后，会有什么后果？", "text"),
        # Other kinds of text.
        ("这家公司去年的营业收入是多少亿元？", "quantity"),
        ("地铁三号线什么时候开通？", "date"),
        ("这次比赛的冠军是谁？", "person"),
        ("新图书馆建在哪里？", "place"),
    ],
)
def test_expected_answer_type(question, expected):
    assert expected_answer_type(question) == expected


def test_qualifiers_are_years_ordinals_titles_numbers_and_names():
    found = {(q.kind, q.text) for q in qualifiers("朝阳区2024年第二批下放了多少项权力？")}
    assert found == {("place", "朝阳区"), ("year", "2024"), ("ordinal", "第二批")}
    assert ("ordinal", "首批") in {(q.kind, q.text) for q in qualifiers("海安县首批下放了多少项？")}
    titled = qualifiers("《关于加强基层治理体系和治理能力现代化建设的意见》是哪年印发的？")
    assert [q.kind for q in titled] == ["title"]
    assert ("number", "6") in {(q.kind, q.text) for q in qualifiers("镇海区6个镇（街道）精简了多少名人员？")}
    # Kinds of place are no qualifier: "乡镇街道", "试点镇", "镇里" name no particular place.
    assert qualifiers("乡镇街道体制改革中试点镇和镇里的干部有多少？") == ()
    # Other text: a city and a company.
    assert ("place", "杭州市") in {(q.kind, q.text) for q in qualifiers("杭州市地铁三号线什么时候开通？")}


def test_focus_is_the_noun_next_to_the_question_word():
    assert focus_words("乡镇公务员每月基本工资是多少元？", "quantity") == ("基本工资",)
    assert focus_words("竞聘走上中层岗位的干部里女干部有多少人？", "quantity") == ("女干部",)
    assert focus_words("这座城市的常住人口有多少万？", "quantity") == ("常住人口",)
    # Generic nouns name no subject: 后果 need not be in the answer.
    assert focus_words("会有什么后果？", "text") == ()


def test_units_are_read_from_the_question():
    assert analyze("镇江市有多少个街道？").unit == "个街道"
    assert analyze("乡镇公务员每月基本工资是多少元？").unit == "元"
    assert analyze("为什么要改革？").unit is None


SENTENCE = "目前，全市除31个镇外，共有25个街道，其中规模较小街道13个，占总数的63.6%。"


def test_quantities_dates_documents_and_places_are_found():
    assert [SENTENCE[s:e] for s, e in typed_spans(SENTENCE, "quantity")] == ["31个", "25个", "13个", "63.6%"]
    report = "2019年3月，公司营业收入达5.77亿元，同比增长12%，员工2万~3万人。"
    assert [report[s:e] for s, e in typed_spans(report, "quantity")] == ["5.77亿元", "12%", "2万~3万人"]
    assert [report[s:e] for s, e in typed_spans(report, "date")] == ["2019年3月"]
    notice = "市政府印发《关于加快推进城市更新的实施意见》，由市住房和城乡建设局牵头。"
    assert [notice[s:e] for s, e in typed_spans(notice, "document")] == ["《关于加快推进城市更新的实施意见》"]
    assert "市住房和城乡建设局" in [notice[s:e] for s, e in typed_spans(notice, "organisation")]
    towns = "县里在曲塘镇和李堡镇开展试点。"
    assert [towns[s:e] for s, e in typed_spans(towns, "place")] == ["曲塘镇和李堡镇"]


def test_ordinals_and_years_are_not_quantities():
    text = "第二批试点于2019年启动，一是加强领导。"
    assert typed_spans(text, "quantity") == []


def test_new_spans_respect_the_question_and_its_unit():
    # A figure the question already names is no answer, and 多少名 is not answered by "5个".
    assert [SENTENCE[s:e] for s, e in new_spans(SENTENCE, "quantity", "除31个镇外有多少个街道？", "个街道")] == [
        "25个",
        "13个",
    ]
    staff = "共设5个执法中队，配备执法人员40人。"
    assert [staff[s:e] for s, e in new_spans(staff, "quantity", "配备多少名执法人员？", "名")] == ["40人"]
    assert [staff[s:e] for s, e in new_spans(staff, "quantity", "每月工资多少元？", "元")] == []
    # 比例 and 占 ask for a share.
    assert [SENTENCE[s:e] for s, e in new_spans(SENTENCE, "quantity", "小街道占的比例是多少？")] == ["63.6%"]


@pytest.mark.parametrize(
    ("text", "title", "quoted"),
    [
        ("（二）推进权力下放按照权力“放得下、接得住”的要求，重点扩大试点镇的管理权限。", "", "按照权力"),
        (
            "一、我市街道基本情况（一）职能定位根据省委文件，街道承担经济发展、城市管理、公共服务、社会治理等六项职能。",
            "",
            "根据省委文件",
        ),
        (
            "关于中心镇行政管理体制改革的实践与思考海安县从县、镇实际出发开展试点。",
            "关于中心镇行政管理体制改革的实践与思考",
            "海安县",
        ),
        (
            "2.1 机构比较臃肿我国各乡镇结合自身具体状况，均建立了各类不同的机构来提升职责行使的有效性。",
            "",
            "我国各乡镇",
        ),
        # Not headings: a sentence that starts with a number or a year is quoted whole.
        ("2019年3月市县机构改革基本完成。", "", "2019年3月"),
        ("3个高新区已全部建立工委。", "", "3个高新区"),
    ],
)
def test_quotes_leave_headings_and_titles_out(text, title, quoted):
    start, end = quotable_span(text, 0, len(text), title)
    assert text[start:end].startswith(quoted) and end == len(text)
