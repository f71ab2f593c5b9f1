"""Heading-aware chunking of cleaned Chinese policy text.

The text is cut into sentences (ending on 。！？； or a line break) and at
every heading marker; sentences are then packed into chunks of about
``target_chars``, never more than ``max_chars``, and a chunk does not run
across a top-level heading. Every span is a ``[start, end)`` range of the
cleaned text, so a citation can point at its place. Characters are all this
module counts: the embedder's tokens cap chunks and sentences further
(``token_caps.py``), with the same ``split_to_fit``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from index.ingest.clean import CJK

NUMERALS = "一二三四五六七八九十百零〇"
# "2 问题" then "2.1 机构": each dot in a decimal outline number is one level down.
_DECIMAL_OUTLINE = re.compile(r"\d{1,2}(?:\.\d{1,2})*[ \u3000]+(?=[" + CJK + "])")

# (rank, pattern): a lower rank is a higher heading. The ranks follow the
# outline order of Chinese official documents: 第X章 > 第X条 > 一、 > （一） >
# 1. / 1、 > （1） > 一是.
# "## 标题" (Markdown, and DOCX heading styles written that way): each # is one level, above 第X章.
_MARKDOWN_HEADING = re.compile(r"#{1,6}[ \t]+(?=\S)")
_MARKERS: tuple[tuple[float, re.Pattern[str]], ...] = (
    (-1.0, _MARKDOWN_HEADING),
    (0.0, re.compile(rf"第[{NUMERALS}\d]+章")),
    (0.5, re.compile(rf"第[{NUMERALS}\d]+节")),
    (1.0, re.compile(rf"第[{NUMERALS}\d]+条")),
    (2.0, re.compile(rf"[{NUMERALS}]+、")),
    (3.0, re.compile(rf"[（(][{NUMERALS}]+[)）]")),
    (4.0, re.compile(r"\d{1,2}(?:[、．]|\.(?!\d))")),
    (4.0, _DECIMAL_OUTLINE),
    (5.0, re.compile(r"[（(]\d{1,2}[)）]")),
    (6.0, re.compile(rf"[{NUMERALS}]是(?=[{CJK}])")),
)
# A marker counts as a heading only where a heading can stand: at a line
# start, after a sentence or clause end, or right after a parent heading's
# label (headings glued together: "一、我市街道基本情况(一)职能定位《省委…").
_HEADING_POSITION = re.compile(r"(?:^|(?<=[\n。！？；：:]))", re.MULTILINE)
_SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*|\n")
_LABEL_STOP = re.compile(r"[。！？；：:\n]")
_LABEL_CUES = re.compile(r"《|按照|通过|根据|参照|我市|我乡|我区|我国|面对|经过|目前|截至|为了|针对|对于|近年来|随着")
MAX_LABEL_CHARS = 24
GLUE_WINDOW = 40


@dataclass(frozen=True)
class Heading:
    start: int
    end: int  # end of the label
    rank: float
    label: str  # marker + label text, e.g. "（一）职能定位"


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    section: tuple[str, ...]


@dataclass(frozen=True)
class ChunkingParams:
    target_chars: int = 300
    max_chars: int = 400  # characters; the embedder's token count caps a chunk too (token_caps.py)
    overlap_chars: int = 80

    def __post_init__(self) -> None:
        if not 0 < self.target_chars <= self.max_chars:
            raise ValueError("need 0 < target_chars <= max_chars")
        if not 0 <= self.overlap_chars < self.target_chars:
            raise ValueError("need 0 <= overlap_chars < target_chars")


def _match_marker(text: str, pos: int) -> tuple[float, int] | None:
    for rank, pattern in _MARKERS:
        match = pattern.match(text, pos)
        if match:
            if pattern is _DECIMAL_OUTLINE:
                rank += 0.1 * match.group(0).count(".")
            elif pattern is _MARKDOWN_HEADING:
                rank += 0.1 * match.group(0).count("#")
            return rank, match.end()
    return None


def _label_end(text: str, body_start: int, limit: int) -> int:
    stop = _LABEL_STOP.search(text, body_start, limit)
    end = stop.start() if stop else limit
    if end - body_start <= MAX_LABEL_CHARS:
        return end
    cue = _LABEL_CUES.search(text, body_start + 2, end)
    if cue and cue.start() - body_start <= MAX_LABEL_CHARS * 2:
        return cue.start()
    comma = re.compile(r"[，,、]").search(text, body_start + 2, end)
    if comma and comma.start() - body_start <= MAX_LABEL_CHARS * 2:
        return comma.start()
    return body_start + MAX_LABEL_CHARS


def find_headings(text: str) -> list[Heading]:
    """Every heading in ``text``, in order, including glued ones."""
    headings: list[Heading] = []
    for position in _HEADING_POSITION.finditer(text):
        pos = position.start()
        if headings and pos < headings[-1].end:
            continue
        while (found := _match_marker(text, pos)) is not None:
            rank, body_start = found
            glued = _find_glued_child(text, body_start, rank)
            limit = glued if glued is not None else min(len(text), body_start + 200)
            end = _label_end(text, body_start, limit)
            label = text[pos:end].strip().lstrip("#").strip()
            if not label:  # "# " before a sentence end labels nothing: not a heading
                break
            headings.append(Heading(pos, end, rank, label))
            if glued is None or glued != end:
                break
            pos = glued
    return headings


def _find_glued_child(text: str, body_start: int, rank: float) -> int | None:
    """Where a lower-level marker follows this heading's label without a break."""
    window_end = min(len(text), body_start + GLUE_WINDOW)
    stop = _LABEL_STOP.search(text, body_start, window_end)
    if stop:
        window_end = stop.start()
    for pos in range(body_start + 2, window_end):
        found = _match_marker(text, pos)
        if found and found[0] > rank and found[0] < 6.0:
            return pos
    return None


def split_sentences(text: str, cut_points: list[int] | None = None) -> list[tuple[int, int]]:
    """Sentence spans, also cut at the given positions (heading starts)."""
    cuts = sorted(set(cut_points or []))
    spans: list[tuple[int, int]] = []
    start = 0
    boundaries = [m.end() for m in _SENTENCE_END.finditer(text)] + cuts + [len(text)]
    for boundary in sorted(set(boundaries)):
        if boundary <= start:
            continue
        spans.extend(_trimmed(text, start, boundary))
        start = boundary
    return spans


def _trimmed(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if end > start else []


# Where an over-long piece is cut, best first: a clause end, a comma, a colon, a space; else anywhere.
CUT_AFTER = ("。！？；!?;", "，,、", "：:", " \t\u3000\u00a0\n")

Fits = Callable[[int, int], bool]  # whether text[start:end] is small enough


def split_to_fit(text: str, start: int, end: int, fits: Fits) -> list[tuple[int, int]]:
    """``text[start:end]`` cut into trimmed pieces that each fit, at the best boundary in reach (``CUT_AFTER``).

    ``fits`` is only ever asked about trimmed ranges, and every piece returned was asked about. Each piece's
    reach is found by doubling then halving from the last piece's length, never by measuring all that is
    left, so a long line costs a small multiple of its length in ``fits``, even where it has no boundary.
    Raises ``ValueError`` when not even one character fits.
    """
    pieces: list[tuple[int, int]] = []
    start, end = _trim(text, start, end)
    guess = 64
    while start < end:
        limit = _longest_fit(text, start, end, fits, guess)
        if limit == end:
            pieces.append((start, end))
            break
        cut = _best_cut(text, start + (limit - start) // 3, limit)
        piece = _trim(text, start, cut)
        if cut != limit and not fits(*piece):  # a shorter prefix need not fit (tokens can merge): cut hard
            cut, piece = limit, _trim(text, start, limit)
        pieces.append(piece)
        guess = max(limit - start, 1)
        start, end = _trim(text, cut, end)
    return pieces


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _longest_fit(text: str, start: int, end: int, fits: Fits, guess: int) -> int:
    """The end of (about) the longest trimmed prefix of ``text[start:end]`` that fits: ``end`` if all of it does."""
    good, step = start, guess
    while True:
        probe = min(start + step, end)
        if not fits(*_trim(text, start, probe)):
            bad = probe
            break
        good = probe
        if probe == end:
            return end
        step *= 2
    while bad - good > 1:
        middle = (good + bad) // 2
        if fits(*_trim(text, start, middle)):
            good = middle
        else:
            bad = middle
    if good == start:
        raise ValueError(f"not even one character fits: {text[start : start + 20]!r}")
    return good


def _best_cut(text: str, lowest: int, limit: int) -> int:
    """Just after the best boundary in ``text[lowest:limit]``; ``limit`` when there is none."""
    for boundaries in CUT_AFTER:
        at = max(text.rfind(ch, lowest, limit) for ch in boundaries)
        if at >= lowest:
            return at + 1
    return limit


def _split_long(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Cut a sentence longer than ``max_chars`` characters at the best boundary in reach."""
    return split_to_fit(text, start, end, lambda a, b: b - a <= max_chars)


def section_spans(text: str) -> list[Span]:
    """Sentence-sized spans, each with the heading path in force at its start."""
    headings = find_headings(text)
    spans: list[Span] = []
    stack: list[Heading] = []
    heading_iter = iter(headings)
    upcoming = next(heading_iter, None)
    for start, end in split_sentences(text, [h.start for h in headings]):
        while upcoming is not None and upcoming.start <= start:
            while stack and stack[-1].rank >= upcoming.rank:
                stack.pop()
            stack.append(upcoming)
            upcoming = next(heading_iter, None)
        spans.append(Span(start, end, tuple(h.label for h in stack)))
    return spans


def chunk_text(text: str, params: ChunkingParams = ChunkingParams()) -> list[Span]:
    """Pack sentence spans into chunks; each chunk's section is its first sentence's."""
    pieces: list[Span] = []
    for span in section_spans(text):
        for start, end in _split_long(text, span.start, span.end, params.max_chars):
            pieces.append(Span(start, end, span.section))

    chunks: list[Span] = []
    current: list[Span] = []
    for piece in pieces:
        if current and _should_close(current, piece, params):
            chunks.append(Span(current[0].start, current[-1].end, current[0].section))
            current = _overlap_tail(current, piece, params)
        current.append(piece)
    if current:
        chunks.append(Span(current[0].start, current[-1].end, current[0].section))
    return chunks


def _should_close(current: list[Span], piece: Span, params: ChunkingParams) -> bool:
    size = piece.end - current[0].start
    if size > params.max_chars:
        return True
    if size > params.target_chars and current[-1].end - current[0].start >= params.target_chars // 3:
        return True
    new_top_section = piece.section[:1] != current[0].section[:1]
    return new_top_section and current[-1].end - current[0].start >= params.target_chars // 4


def _overlap_tail(current: list[Span], piece: Span, params: ChunkingParams) -> list[Span]:
    """The last sentence of the closed chunk, repeated when it is short and in the same section."""
    last = current[-1]
    fits = (last.end - last.start) <= params.overlap_chars
    fits = fits and piece.end - last.start <= params.max_chars
    if fits and last.section == piece.section and len(current) > 1:
        return [last]
    return []
