"""A question and its history are read in time linear in their length, whatever characters they hold.

A request may carry a 1,000-character question and up to 100 earlier turns of 20,000 characters (/v1).
Quadratic patterns showed on long runs: a number tried at every digit of a run (14 s for 20,000 digits), a
book title tried at every 《 (84 s for 100 turns of 《). The bound below is far above the linear cost (well
under 0.3 s here) and far below the quadratic one.
"""

from __future__ import annotations

import json
import time

import httpx
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from index.answering.followup import followup_strength, key_words, places, resolve
from index.answering.question import analyze, qualifiers

BOUND_S = 2.0
LINE_CHARS = 20_000
QUESTION_CHARS = 1000

# What the answering rules look for, repeated: digits before a unit, numerals, titles, ordinals, places, pointers.
UNITS = [
    "1", "1.", "12%", "一", "三十", "x", "-", " ", "，", "《", "》", "《a", "第1", "第一", "市", "镇镇", "那",
    "呢？", "这个", "xx市", "12个", "2016年", "的", "a1", "。",
]  # fmt: skip
# Chinese words go through jieba's part-of-speech HMM, linear but about 0.1 ms a character: a long line of them
# is checked at the question's length; digits, Latin letters, numerals and punctuation at the turn's.
CHEAP_TO_TAG = [u for u in UNITS if not any("\u4e00" <= ch <= "\u9fff" for ch in u) or set(u) <= set("一三十第")]


def repeated(units, most: int):
    return st.tuples(st.sampled_from(units), st.integers(1, most)).map(
        lambda p: (p[0] * (p[1] // len(p[0]) + 1))[: p[1]]
    )


lines = repeated(UNITS, LINE_CHARS) | st.text(max_size=200)
long_cheap_lines = repeated(CHEAP_TO_TAG, LINE_CHARS)
question_lines = repeated(UNITS, QUESTION_CHARS) | st.text(max_size=QUESTION_CHARS)
LINE_SETTINGS = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def took(call, *args) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


@LINE_SETTINGS
@given(long_cheap_lines | question_lines)
@example("1" * LINE_CHARS)
@example("三十" * (LINE_CHARS // 2))
def test_qualifiers_of_a_long_line_take_linear_time(line):
    assert took(qualifiers, line) < BOUND_S


@LINE_SETTINGS
@given(lines)
@example("《" * LINE_CHARS)
def test_a_hundred_long_earlier_turns_resolve_in_linear_time(line):
    assert took(resolve, "那副主任呢？", [line] * 100) < BOUND_S
    assert took(followup_strength, line) < BOUND_S
    assert took(places, line) < BOUND_S
    assert took(key_words, line[:QUESTION_CHARS]) < BOUND_S


@settings(max_examples=10, deadline=None, database=None)
@given(st.sampled_from(UNITS))
def test_a_question_at_the_length_limit_is_analysed_in_bounded_time(unit):
    assert took(analyze, (unit * QUESTION_CHARS)[:QUESTION_CHARS]) < BOUND_S


def test_only_the_last_earlier_questions_are_resolved_and_each_only_in_part():
    topic = "开封市的乡镇机构改革什么时候完成？"
    assert "开封市" in resolve("那副主任呢？", [topic]).query
    assert "开封市" not in resolve("那副主任呢？", [topic, *["请问"] * 20]).query  # too far back
    assert "开封市" not in resolve("那副主任呢？", ["这" * 2000 + topic]).query  # past the part that is read


def test_a_long_history_of_digits_and_titles_is_answered_promptly(client: httpx.Client):
    """The review's case: one turn of 8,000 digits took /api/ask 10.5 s (4.5 s here); the 64 KB body holds seven."""
    assert client.post("/api/ask", json={"question": "聘任期是几年？"}).status_code == 200  # the first is slower
    for unit, turns in (("1", 7), ("《", 2)):  # as UTF-8, 《 takes three bytes
        history = [{"role": "user", "content": unit * 8000}] * turns
        body = json.dumps({"question": "那聘任期是几年？", "history": history}, ensure_ascii=False).encode()
        started = time.perf_counter()
        response = client.post("/api/ask", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 200, response.text
        assert time.perf_counter() - started < 3.0
