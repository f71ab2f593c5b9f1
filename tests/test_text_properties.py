"""Properties of the text pipeline (cleaning, headings, sentences, chunks) on arbitrary Unicode.

Hypothesis draws text from every Unicode category (control and format
characters, emoji, mixed scripts) and from an alphabet built to hit the rules:
Chinese, heading markers, sentence ends, half-width punctuation, spaces, line
breaks, OCR confusions, boilerplate phrases, and very long unbroken lines.

Profiles: ``ci`` (default, modest example counts) and ``long``
(``HYPOTHESIS_PROFILE=long python -m pytest tests/test_text_properties.py``).
"""

from __future__ import annotations

import os
import re
import unicodedata

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.ingest.chunk import ChunkingParams, chunk_text, find_headings, section_spans, split_sentences
from index.ingest.clean import (
    CLEANING_STEPS,
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

settings.register_profile(
    "ci", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)
settings.register_profile("long", max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Pieces the rules look for, so that drawn text exercises them, not just random code points.
PIECES = [
    "一、", "（一）", "(二)", "1.", "2、", "2.1 ", "（3）", "一是", "第三条", "第一章", "第二节", "# ", "## ",
    "。", "！", "？", "；", "：", ":", ",", ";", "?", "!", "(", ")", "“", "”", "《", "》", "……",
    " ", "  ", "\t", "\u3000", "\u00a0", "\n", "\n\n", "\r\n", "\r", "\ufeff", "\u200b", "\x00", "\x1f", "\x85",
    "\u2028", "深人学习", "T.作", "以±", "设臵", "IOOo~3000人", "o", "下载文档前请自行甄别文档内容的完整性",
    "乡镇", "街道", "机构改革", "推 进", "Ａ１", "abc", "D630", "9:00-18:30", "😀", "👨‍👩‍👧", "ملف", "Ελλάδα", "ǅ",
]  # fmt: skip
pieces = st.lists(st.sampled_from(PIECES) | st.text(min_size=1, max_size=3), max_size=40).map("".join)
any_text = st.text(max_size=300)
long_line = st.tuples(st.sampled_from(["乡", "镇a", "街道，", "x"]), st.integers(300, 3000)).map(lambda p: p[0] * p[1])
texts = st.one_of(pieces, any_text, long_line, st.just(""))

CONTROL = {"Cc", "Cf", "Cs"}
ALLOWED_SPACES = frozenset(" \t\u00a0\u3000")
FULL_WIDTH = dict(zip(",;:?!()", "，；：？！（）", strict=True))


def non_space(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


def is_subsequence(small: str, big: str) -> bool:
    chars = iter(big)
    return all(ch in chars for ch in small)


# -- cleaning ----------------------------------------------------------------


@PROFILE
@given(texts)
@example("中,,a")
@example("乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇乡镇")
@example("\x1c乡镇\u2028街道 \n")
def test_clean_text_is_idempotent_and_leaves_no_noise(text):
    cleaned = clean_text(text)
    assert clean_text(cleaned) == cleaned
    assert "\r" not in cleaned and "\ufeff" not in cleaned
    assert not any(unicodedata.category(ch) in CONTROL and ch not in "\n\t" for ch in cleaned)
    assert cleaned == cleaned.strip("\n")
    assert all(line == line.strip() for line in cleaned.split("\n"))
    assert "\n\n\n" not in cleaned
    assert len(cleaned) <= len(text)


@PROFILE
@given(texts)
def test_every_step_returns_text_and_none_grows_it(text):
    for step in CLEANING_STEPS:
        result = step(text)
        assert isinstance(result, str) and len(result) <= len(text), step.__name__
        text = result


@PROFILE
@given(texts)
def test_control_characters_go_and_nothing_else(text):
    kept = remove_control_characters(text)
    expected = "".join(ch for ch in text if ch in "\n\r\t" or unicodedata.category(ch) not in CONTROL)
    assert kept == expected


@PROFILE
@given(texts)
def test_line_breaks_keep_every_visible_character_in_order(text):
    normalized = normalize_line_breaks(text)
    assert non_space(normalized) == non_space(text.replace("\ufeff", ""))
    assert normalize_line_breaks(normalized) == normalized


@PROFILE
@given(texts)
def test_boilerplate_removal_drops_whole_lines_only(text):
    result = remove_boilerplate_lines(text)
    kept, original = result.split("\n"), text.split("\n")
    assert result == "" or is_subsequence_of_lines(kept, original)
    dropped = list(original)
    for line in kept if result else []:
        dropped.remove(line)
    assert all(re.search("下载文档|预览|侵犯|客服|用户上传", line) for line in dropped if line)


def is_subsequence_of_lines(small: list[str], big: list[str]) -> bool:
    lines = iter(big)
    return all(line in lines for line in small)


@PROFILE
@given(texts)
@example("乡镇" * 18)
@example("关于乡镇改革的通知关于乡镇改革的通知关于乡镇改革的通知正文")
def test_repeated_opening_removal_only_drops_copies_of_the_opening(text):
    result = remove_repeated_opening(text)
    assert text.endswith(result)
    assert remove_repeated_opening(result) == result
    dropped = text[: len(text) - len(result)]
    if dropped:  # the dropped part is copies of the opening the result keeps
        unit = next(n for n in range(8, 81) if dropped == result[:n] * (len(dropped) // n) and len(dropped) % n == 0)
        assert unit


@PROFILE
@given(texts)
def test_space_removal_only_removes_spaces(text):
    result = remove_spaces_in_cjk(text)
    assert is_subsequence(result, text)
    removed = list(text)
    for ch in result:
        removed.remove(ch)
    assert set(removed) <= ALLOWED_SPACES


@PROFILE
@given(texts)
def test_full_width_punctuation_changes_punctuation_only_in_place(text):
    result = to_full_width_punctuation(text)
    assert len(result) == len(text)
    for before, after in zip(text, result, strict=True):
        assert after == before or FULL_WIDTH.get(before) == after
    assert to_full_width_punctuation(result) == result


@PROFILE
@given(texts)
def test_ocr_fixes_touch_only_their_table(text):
    result = fix_ocr_slips(text)
    if not re.search(r"深人|T\.?作|以±|设臵|o|[Il1][IlOo0-9]{2,}", text):
        assert result == text
    assert len(text) - len(result) <= text.count("T.")


@PROFILE
@given(texts)
def test_normalize_for_matching_is_total_and_idempotent(text):
    once = normalize_for_matching(text)
    assert normalize_for_matching(once) == once


# -- headings, sentences, chunks ---------------------------------------------

params_strategy = st.builds(
    lambda target, extra, overlap: ChunkingParams(target, target + extra, min(overlap, target - 1)),
    st.integers(20, 400),
    st.integers(0, 200),
    st.integers(0, 120),
)


@PROFILE
@given(texts)
@example("# 。")
@example("一、" * 50)
def test_headings_lie_in_order_inside_the_text(text):
    text = clean_text(text)
    headings = find_headings(text)
    for heading in headings:
        assert 0 <= heading.start < heading.end <= len(text)
        assert heading.label.strip() and heading.label in text[heading.start : heading.end]
    assert [h.start for h in headings] == sorted({h.start for h in headings})


@PROFILE
@given(texts)
def test_sentences_cover_every_visible_character_once_and_in_order(text):
    text = clean_text(text)
    cuts = [h.start for h in find_headings(text)]
    spans = split_sentences(text, cuts)
    assert "".join(text[s:e] for s, e in spans).replace("\n", "") == text.replace("\n", "").strip() or all(
        non_space(text[s:e]) for s, e in spans
    )
    assert non_space("".join(text[s:e] for s, e in spans)) == non_space(text)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start
    for start, end in spans:
        assert start < end and not text[start].isspace() and not text[end - 1].isspace()


@PROFILE
@given(texts, params_strategy)
@example("乡" * 5000, ChunkingParams())
@example("一、总则\n" + "各乡镇设立便民服务中心。" * 40 + "\n二、附则\n本办法自公布之日起施行。", ChunkingParams())
def test_chunks_cover_the_text_within_the_size_cap_and_keep_valid_offsets(text, params):
    text = clean_text(text)
    chunks = chunk_text(text, params)
    sentences = section_spans(text)
    if not non_space(text):
        assert chunks == []
        return
    covered = set()
    for chunk in chunks:
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert chunk.end - chunk.start <= params.max_chars
        assert not text[chunk.start].isspace() and not text[chunk.end - 1].isspace()
        assert all(isinstance(label, str) and label for label in chunk.section)
        covered.update(range(chunk.start, chunk.end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())  # nothing lost
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts))  # in reading order, no chunk twice
    for previous, current in zip(chunks, chunks[1:], strict=False):
        assert current.end > previous.end
        overlap = previous.end - current.start
        assert overlap <= params.overlap_chars  # only a short closing sentence is repeated
    assert {s.section for s in sentences} >= {c.section for c in chunks}
    assert chunk_text(text, params) == chunks  # deterministic
