"""Cleaning rules for noisy Chinese policy text.

Every rule is a pure ``str -> str`` function; ``clean_text`` applies them in a
fixed order. The cleaned text is what the catalogue stores and what citation
offsets point into, so rules never reorder text.

``normalize_for_matching`` is separate: it folds traditional characters and
full-width forms for the lexical and dense indexes and for queries, but is
never shown to a user.
"""

from __future__ import annotations

import functools
import re
import unicodedata

CJK = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
CJK_PUNCT = r"\u3000-\u303f\uff00-\uffef“”‘’《》—…·"

# Lines a document-sharing site adds to every preview, e.g.
# "- 1、下载文档前请自行甄别文档内容的完整性,平台不提供额外的编辑、内容补充、找答案等附加服务。"
_BOILERPLATE_PATTERNS = (
    r"下载文档前请自行甄别",
    r"仅部分预览.{0,4}的文档",
    r"如文档侵犯您的权益",
    r"人工客服工作时间",
    r"本文档由用户上传",
)
# A line holding one of them anywhere is dropped. Searched for, not matched with a leading ".*" after optional
# list markers: that form backtracked quadratically on a line of dashes and spaces (28 KB held the GIL 13 s).
_BOILERPLATE = re.compile("|".join(_BOILERPLATE_PATTERNS))

# OCR confusions seen in scanned policy text. Each is narrow on purpose: a
# rule that fires on correct text would corrupt it.
_OCR_SLIPS = (
    # "深人学习" (deep person study) is an OCR slip for "深入学习".
    (re.compile(r"深人(?=学习|贯彻|推进|开展|调研|研究|实施|基层)"), "深入"),
    # "T.作": the character 工 read as a capital T and a stray dot.
    (re.compile(rf"(?<=[{CJK}])T\.?作"), "工作"),
    # "以±]": the character 上 read as a plus-minus sign.
    (re.compile(r"以±"), "以上"),
    # "设臵": a rare variant that OCR engines emit for 置.
    (re.compile(r"设臵"), "设置"),
    # A lower-case o standing for the full stop 。 between Chinese text.
    (re.compile(rf"(?<=[{CJK}\]）)])o(?=[{CJK}])"), "。"),
)
# Digits read as letters, e.g. "IOOo~3000人" for "1000~3000人": a run of digits and digit-like letters, followed
# by a range or a unit, is read from its first 1-like character that does not follow a Latin letter, so a
# "○○○人"-style placeholder typed as "OOO人" is left alone. Found run by run, not by one pattern with a lookahead:
# "(?<![A-Za-z])[Il1][IlOo0-9]{2,}(?=...)" was retried from every digit of a long run (16,000 digits took 5.7 s).
_OCR_DIGIT_RUN = re.compile(r"[IlOo0-9]{3,}")
_OCR_DIGITS_FOLLOWER = re.compile(r"\s*[~～\-—至到]\s*\d|[人个万元年]")
_DIGIT_FOR_LETTER = str.maketrans({"I": "1", "l": "1", "O": "0", "o": "0"})
_LATIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

_SPACE_IN_CJK = re.compile(rf"(?<=[{CJK}{CJK_PUNCT}])[ \t\u00a0\u3000]+(?=[{CJK}{CJK_PUNCT}])")

# Half-width punctuation inside Chinese text becomes full-width; between
# digits or Latin letters it stays (9:00-18:30, 2.1, "D630").
_HALF_TO_FULL = str.maketrans({",": "，", ";": "；", ":": "：", "?": "？", "!": "！", "(": "（", ")": "）"})
# A whole run ("中,,a", "?!" after Chinese), not one mark: otherwise each pass converted one more. The run is
# tried from its first mark only (the lookbehind): retried from every mark, 40,000 commas took 17 s.
_PUNCT_NEAR_CJK = re.compile(rf"(?<=[{CJK}{CJK_PUNCT}])[,;:?!]+|(?<![,;:?!])[,;:?!]+(?=[{CJK}])")
_PAREN_PAIR = re.compile(r"\(([^()\n]{0,40})\)")


def remove_boilerplate_lines(text: str) -> str:
    """Drop download-site notices that stand on lines of their own."""
    kept = [line for line in text.split("\n") if not _BOILERPLATE.search(line)]
    return "\n".join(kept)


_REPEATED_OPENING = re.compile(r"\A(.{8,80}?)\1+")


def remove_repeated_opening(text: str) -> str:
    """Drop a doubled opening ("关于…的实践与思考关于…的实践与思考海安县…"), a copy-paste slip.

    Every further copy goes too, and the result is checked again, so that
    cleaning twice changes nothing more ("乡镇" eighteen times is not halved on
    each pass).
    """
    while (shorter := _REPEATED_OPENING.sub(r"\1", text, count=1)) != text:
        text = shorter
    return text


def fix_ocr_slips(text: str) -> str:
    """Undo a small table of known OCR confusions."""
    for pattern, replacement in _OCR_SLIPS:
        text = pattern.sub(replacement, text)
    return _OCR_DIGIT_RUN.sub(_read_digit_run, text)


def _read_digit_run(run: re.Match[str]) -> str:
    """The run with its letters read as digits from where an OCR'd number starts, if a range or unit follows."""
    text, start, found = run.string, run.start(), run.group(0)
    if not _OCR_DIGITS_FOLLOWER.match(text, run.end()):
        return found
    for offset, character in enumerate(found[:-2]):  # at least three characters from the start
        if character in "Il1" and (start + offset == 0 or text[start + offset - 1] not in _LATIN):
            return found[:offset] + found[offset:].translate(_DIGIT_FOR_LETTER)
    return found


def remove_spaces_in_cjk(text: str) -> str:
    """Remove spaces that OCR or layout put inside Chinese runs ("推 进" -> "推进")."""
    return _SPACE_IN_CJK.sub("", text)


def to_full_width_punctuation(text: str) -> str:
    """Use full-width punctuation next to Chinese text, as the standard asks."""

    def paren(match: re.Match[str]) -> str:
        inner = match.group(1)
        if re.search(rf"[{CJK}]", inner) or _touches_cjk(match.string, match.start(), match.end()):
            return f"（{inner}）"
        return match.group(0)

    text = _PAREN_PAIR.sub(paren, text)
    return _PUNCT_NEAR_CJK.sub(lambda m: m.group(0).translate(_HALF_TO_FULL), text)


def _touches_cjk(text: str, start: int, end: int) -> bool:
    before = text[start - 1] if start > 0 else ""
    after = text[end] if end < len(text) else ""
    return bool(re.match(rf"[{CJK}]", before) or re.match(rf"[{CJK}]", after))


def normalize_line_breaks(text: str) -> str:
    """Unify line endings, trim each line and drop runs of blank lines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "")
    lines = [line.strip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def remove_control_characters(text: str) -> str:
    """Drop control and format characters other than line breaks and tab."""
    return "".join(ch for ch in text if ch in "\n\r\t" or unicodedata.category(ch) not in ("Cc", "Cf", "Cs"))


CLEANING_STEPS = (
    remove_control_characters,
    normalize_line_breaks,
    remove_boilerplate_lines,
    remove_repeated_opening,
    remove_spaces_in_cjk,
    fix_ocr_slips,
    to_full_width_punctuation,
    normalize_line_breaks,
)


MAX_CLEANING_ROUNDS = 4


def clean_text(text: str) -> str:
    """Apply every cleaning step in order, again until nothing changes.

    One rule can make work for another (a comma made full-width now stands
    between a space and Chinese, so the space goes on a second pass); repeating
    makes cleaning idempotent, so cleaning cleaned text changes nothing. Every
    step only removes or narrows, so a few rounds suffice.
    """
    for _ in range(MAX_CLEANING_ROUNDS):
        cleaned = text
        for step in CLEANING_STEPS:
            cleaned = step(cleaned)
        if cleaned == text:
            break
        text = cleaned
    return text


@functools.cache
def _t2s():
    # The C++ OpenCC binding: opencc-purepy 1.5.0 ships a reversed phrase
    # (结束 -> 結束) that turned simplified text traditional.
    import opencc

    return opencc.OpenCC("t2s.json")


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese (OpenCC t2s)."""
    return _t2s().convert(text) if text else text


def normalize_for_matching(text: str) -> str:
    """The form both indexes and every query are compared in.

    NFKC folds full-width letters and digits ("２０１９" -> "2019"); t2s folds
    traditional characters; case is folded for Latin terms.
    """
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()
