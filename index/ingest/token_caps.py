"""Chunks and sentences capped by what the embedder reads: its own token count, not characters.

Chunking (``chunk.py``) packs sentences by characters, which holds only while a
Chinese character is about one token. Digits, Latin letters, tables, anonymised
names (``xxxxxxx``) and lines without a 。 break that: a bus timetable's one
"sentence" was 837 tokens, past e5's 512. So each chunk and sentence is measured
as the embedder will read it (the matching form of the heading path and text for
a chunk, of the text for a sentence; the embedder's ``count_tokens`` adds its
passage prefix and special tokens), and one that does not fit is cut further by
``chunk.split_to_fit``: a sentence at a clause end, comma, colon or space, else
anywhere; a chunk between its sentences first. A sentence is kept small enough to
stand alone in a chunk under its heading path (a token a character of the path),
so late chunking still finds every sentence whole inside a chunk where the
characters allow.

Each chunk and sentence is counted once here, and the encoder tokenises it once
more: the build refused over-long inputs by counting them before, so no count
was added. An embedder without ``count_tokens`` is taken to read one token a
character.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from index.embedders.base import Embedder
from index.errors import ConfigurationError
from index.ingest.chunk import Span, split_to_fit
from index.ingest.clean import normalize_for_matching
from index.ingest.passages import passage_header, passage_input


@dataclass(frozen=True)
class TokenBudget:
    count: Callable[[str], int]  # tokens of a passage text as the embedder reads it, prefix and specials included
    max_tokens: int

    @classmethod
    def of(cls, embedder: Embedder) -> TokenBudget:
        return cls(getattr(embedder, "count_tokens", None) or len, embedder.max_tokens)


def cap_passages(
    text: str, title: str, chunks: list[Span], sentences: list[Span], budget: TokenBudget
) -> tuple[list[Span], list[Span]]:
    """(chunks, sentences) of a cleaned document, each cut further where it would not fit the embedder's input."""
    measure = _Measure(text, title, budget)
    try:
        capped = [
            Span(start, end, sentence.section)
            for sentence in sentences
            for start, end in _fitted(text, sentence, functools.partial(measure.sentence_fits, sentence.section))
        ]
        return _capped_chunks(text, chunks, capped, measure), capped
    except ValueError as exc:  # only a heading path as long as the whole input leaves no room
        raise ConfigurationError(f"{budget.max_tokens} tokens hold no text after the heading path: {exc}") from exc


def _fitted(text: str, span: Span, fits: Callable[[int, int], bool]) -> list[tuple[int, int]]:
    return [(span.start, span.end)] if fits(span.start, span.end) else split_to_fit(text, span.start, span.end, fits)


class _Measure:
    """Whether a range of one document fits the input, as a chunk under its heading path or as a sentence."""

    def __init__(self, text: str, title: str, budget: TokenBudget) -> None:
        self.text, self.title, self.budget = text, title, budget
        self._header_room: dict[tuple[str, ...], int] = {}

    def chunk_fits(self, section: tuple[str, ...], start: int, end: int) -> bool:
        text = passage_input(self.title, section, self.text[start:end])
        return self.budget.count(text) <= self.budget.max_tokens

    def sentence_fits(self, section: tuple[str, ...], start: int, end: int) -> bool:
        """Fits on its own, with room left for the heading path a chunk of it alone would carry.

        The room is a token a character of the heading path: exact for the sentence's own input, which is
        counted; near enough for the chunk, which is counted too (counting every heading path as well cost a
        quarter more counts on the seed corpus).
        """
        tokens = self.budget.count(normalize_for_matching(self.text[start:end]))
        return tokens + self._room(section) <= self.budget.max_tokens

    def _room(self, section: tuple[str, ...]) -> int:
        if section not in self._header_room:
            self._header_room[section] = len(passage_header(self.title, section))
        return self._header_room[section]


def _capped_chunks(text: str, chunks: list[Span], sentences: list[Span], measure: _Measure) -> list[Span]:
    starts = [s.start for s in sentences]

    def section_at(position: int) -> tuple[str, ...]:
        index = bisect.bisect_right(starts, position) - 1
        return sentences[index].section if index >= 0 else ()

    capped: list[Span] = []
    for chunk in chunks:
        if measure.chunk_fits(chunk.section, chunk.start, chunk.end):
            capped.append(chunk)
            continue
        first = bisect.bisect_right(starts, chunk.start)
        last = bisect.bisect_left(starts, chunk.end)
        inside = sentences[max(first - 1, 0) : last]
        inner = {x for s in inside for x in (s.start, s.end) if chunk.start < x < chunk.end}
        cuts = sorted({chunk.start, chunk.end} | inner)
        units = [
            piece
            for start, end in itertools.pairwise(cuts)
            for piece in split_to_fit(text, start, end, lambda a, b: measure.chunk_fits(section_at(a), a, b))
        ]
        capped.extend(_packed(units, section_at, measure))
    return capped


def _packed(units: list[tuple[int, int]], section_at, measure: _Measure) -> list[Span]:
    """Consecutive units joined into the fewest chunks that fit (each unit fits alone)."""
    packed: list[Span] = []
    at = 0
    while at < len(units):
        start, section = units[at][0], section_at(units[at][0])
        good, bad = at, len(units)
        while bad - good > 1:
            middle = (good + bad) // 2
            if measure.chunk_fits(section, start, units[middle][1]):
                good = middle
            else:
                bad = middle
        packed.append(Span(start, units[good][1], section))
        at = good + 1
    return packed
