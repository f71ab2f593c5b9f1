"""Terms of administrative Chinese compared as one form: abbreviations and synonyms folded, ordinals in digits."""

from __future__ import annotations

import functools
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from index.ingest.clean import normalize_for_matching

DEFAULT_PATH = Path(__file__).with_name("terms.tsv")
HEADER = ("canonical", "variants", "kind", "note")
FOLDED_KINDS = frozenset({"synonym", "abbreviation"})
# "keep" names a phrase that a shorter variant inside it would misread (到街道办理 is 街道 + 办理, not 街道办 + 理).
# "protected" is a keep that is also one word to the tokenizer (上海交通大学, not 上海 + 交通 + 大学): staff add
# those per knowledge base (index/answering/term_set.py).
WHOLE_KINDS = frozenset({"keep", "protected"})
KINDS = FOLDED_KINDS | WHOLE_KINDS | {"related"}

_DIGIT_VALUES = dict(zip("零〇一二两三四五六七八九", (0, 0, 1, 2, 2, 3, 4, 5, 6, 7, 8, 9), strict=True))
_UNIT_VALUES = {"十": 10, "百": 100, "千": 1000}
_NUMERAL = "".join(_DIGIT_VALUES) + "".join(_UNIT_VALUES)
# Counts are told by the word after them; 万 and 亿 stay words ("五万人" -> "5万人", as documents write it).
_CLASSIFIERS = "个批次届轮期名人项条件家所户位类种级层号年月日天周元万亿"
# 几十个 and 数十个 are no numbers; 统一, 唯一, 之一, 同一 ... are words that end in 一, not counts.
_NOT_AFTER = "几数统唯之同万单划专逐归合"
_COUNT_OR_ORDINAL = re.compile(
    rf"(?<=第)[{_NUMERAL}]+|(?<![{_NUMERAL}{_NOT_AFTER}])[{_NUMERAL}]+(?=[多余]?[{_CLASSIFIERS}])"
)


def fold(text: str) -> str:
    """``normalize_for_matching`` twice: t2s is no fixed point (薴 -> 苧 -> 苎); two are, for every CJK character."""
    return normalize_for_matching(normalize_for_matching(text))


@dataclass(frozen=True)
class Term:
    canonical: str
    variants: tuple[str, ...]
    kind: str
    note: str
    line: int


@functools.lru_cache(maxsize=4096)
def chinese_numeral_value(numeral: str) -> int | None:
    """二十五 -> 25, 十一 -> 11, 一百零五 -> 105, 两 -> 2; None where it is no well-formed number.

    Runs of bare digits (二〇一九, a year), ranges (一两, 三四) and the spoken 一百五 (150 or 105?) are None:
    reading them would guess.
    """
    if len(numeral) == 1 and numeral in _DIGIT_VALUES:
        return _DIGIT_VALUES[numeral]
    total, pending, last_unit, after_zero = 0, None, 10_000, False
    for position, char in enumerate(numeral):
        if char in _UNIT_VALUES:
            unit = _UNIT_VALUES[char]
            if pending is None and position == 0 and unit == 10:
                pending = 1  # 十一 is 一十一
            if pending is None or unit >= last_unit or after_zero:
                return None
            total, pending, last_unit = total + pending * unit, None, unit
        elif char in "零〇":
            if pending is not None or after_zero or last_unit == 10_000:
                return None
            after_zero = True
        else:
            if pending is not None:
                return None
            pending, after_zero = _DIGIT_VALUES[char], False
    if pending is not None:
        if last_unit > 10 and numeral[-2] not in "零〇":
            return None
        total += pending
    return None if after_zero else total


def unify_numbers(text: str) -> str:
    """Chinese numerals in ordinals and counts as Arabic digits: 第十二届 -> 第12届, 二十五个 -> 25个."""

    def digits(match: re.Match[str]) -> str:
        value = chinese_numeral_value(match.group())
        return match.group() if value is None else str(value)

    return _COUNT_OR_ORDINAL.sub(digits, text)


class TermTable:
    """A loaded term list: ``normalize`` gives the form two texts are compared in."""

    def __init__(self, terms: Iterable[Term]):
        self.terms = tuple(terms)
        self._rewrite: dict[str, str] = {}
        for term in self.terms:
            if term.kind in FOLDED_KINDS or term.kind in WHOLE_KINDS:
                canonical = fold(term.canonical)
                for form in (term.canonical, *term.variants):
                    self._rewrite[fold(form)] = canonical
        # Longest first: 中央编办 is one term, not 中央 + 编办, and 街道办事处 is read whole, so the 街道办
        # inside it is not expanded again.
        forms = sorted(self._rewrite, key=lambda form: (-len(form), form))
        self._pattern = re.compile("|".join(map(re.escape, forms))) if forms else None
        self._forms_by_key: dict[str, set[str]] = defaultdict(set)
        for term in self.terms:
            if term.kind in FOLDED_KINDS:
                self._forms_by_key[self.normalize(term.canonical)].update((term.canonical, *term.variants))
        self._related_by_key: dict[str, set[str]] = defaultdict(set)
        for term in self.terms:
            if term.kind == "related":
                members = (term.canonical, *term.variants)
                for member in members:
                    key = self.normalize(member)
                    for other in members:
                        if self.normalize(other) != key:
                            self._related_by_key[key].update(self.variants(other))

    def normalize(self, text: str) -> str:
        """The comparison form: folded (full width, traditional, case), every variant as its canonical, digits."""
        folded = fold(text)
        if self._pattern is not None:
            folded = self._pattern.sub(lambda match: self._rewrite[match.group()], folded)
        return unify_numbers(folded)

    def occurrences(self, folded: str) -> list[tuple[int, int, str]]:
        """(start, end, folded canonical) of each term form in ``folded`` (already ``fold``-ed), longest first."""
        if self._pattern is None:
            return []
        return [(m.start(), m.end(), self._rewrite[m.group()]) for m in self._pattern.finditer(folded)]

    def same(self, a: str, b: str) -> bool:
        return self.normalize(a) == self.normalize(b)

    def variants(self, word: str) -> frozenset[str]:
        """Every surface form with the same canonical form as ``word``, ``word`` included."""
        return frozenset({word, *self._forms_by_key.get(self.normalize(word), ())})

    def related(self, word: str) -> frozenset[str]:
        """Words close to ``word`` but not equal to it (职责 -> 职能, 职权), with their variants."""
        return frozenset(self._related_by_key.get(self.normalize(word), ()))


def _parse_line(line: str, number: int) -> Term:
    fields = line.split("\t")
    if len(fields) not in (3, 4):
        raise ValueError(f"line {number}: expected 4 tab-separated columns {HEADER}, found {len(fields)}")
    canonical, variants_field, kind = (field.strip() for field in fields[:3])
    note = fields[3].strip() if len(fields) == 4 else ""
    if not canonical:
        raise ValueError(f"line {number}: the canonical form is empty")
    if kind not in KINDS:
        raise ValueError(f"line {number}: unknown kind {kind!r}; expected one of {sorted(KINDS)}")
    variants = tuple(variant.strip() for variant in variants_field.split("|")) if variants_field.strip() else ()
    if any(not variant for variant in variants):
        raise ValueError(f"line {number}: an empty variant in {variants_field!r} (a stray '|')")
    if kind in WHOLE_KINDS and variants:
        raise ValueError(f"line {number}: a {kind!r} line names one phrase and no variants")
    if kind not in WHOLE_KINDS and not variants:
        raise ValueError(f"line {number}: a {kind!r} line needs at least one variant")
    return Term(canonical, variants, kind, note, number)


def _check_unambiguous(terms: list[Term]) -> None:
    """One form, one canonical; and no chains (a canonical that is another line's variant would need two passes)."""
    canonical_of: dict[str, tuple[str, int]] = {}
    for term in terms:
        if term.kind == "related":
            continue
        canonical = fold(term.canonical)
        for form in (term.canonical, *term.variants):
            folded = fold(form)
            earlier, line = canonical_of.setdefault(folded, (canonical, term.line))
            if earlier != canonical:
                raise ValueError(f"line {term.line}: {form!r} is already read as {earlier!r} on line {line}")


def load_terms(path: Path = DEFAULT_PATH) -> TermTable:
    """Read a term list (see terms.tsv); a ValueError names the line of the first malformed entry."""
    terms: list[Term] = []
    header_seen = False
    for number, raw in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not header_seen:
            if tuple(field.strip() for field in line.split("\t")) != HEADER:
                raise ValueError(f"line {number}: expected the header {chr(9).join(HEADER)!r}, found {line!r}")
            header_seen = True
            continue
        terms.append(_parse_line(line, number))
    if not header_seen:
        raise ValueError(f"{path}: no header line {chr(9).join(HEADER)!r}")
    _check_unambiguous(terms)
    return TermTable(terms)


@functools.cache
def default_terms() -> TermTable:
    """The shipped list, read once."""
    return load_terms(DEFAULT_PATH)
