"""A knowledge base's terms: the shipped list merged with its staff's entries, and what they change in a question.

The index side is never touched: documents keep the tokens they were indexed with, so a synonym or an
abbreviation works on the question side at once. A question that names one form of a term is scored by BM25 as if
it had named whichever form a passage holds (the best of the forms, not their sum: a long canonical form's many
tokens would otherwise outweigh the rest of the question), and its qualifiers are compared in the canonical form.
A protected word is one token on the question side (jieba cannot cut across it); documents hold it whole only once
they are tokenised with it, which this index does not do yet (docs/terms.md).
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from index.answering.terms import KINDS, Term, TermTable, default_terms, fold
from index.errors import ConflictError, InvalidInputError
from index.ingest.tokenize import tokenize
from index.stores.bm25 import LexicalScores

logger = logging.getLogger(__name__)

ENTRY_KINDS = ("synonym", "abbreviation", "related", "protected")
MIN_FORM_CHARS = 2  # one character is inside too many words: 办 would turn every 办理 into 办公室
MAX_FORM_CHARS = 64
MAX_VARIANTS = 32
MAX_NOTE_CHARS = 500
MAX_ENTRIES = 1000  # per knowledge base: read in one page of the record store
TERMS_CHECK_S = 1.0  # how often a knowledge base's entries are read again (as engine.RELOAD_CHECK_S)
_SEPARATOR = "。"  # tokenize() segments each sentence apart: a protected word between two is never cut across
_NOT_IN_FORM = re.compile(r"[\t\r\n|。！？；]")
assert set(ENTRY_KINDS) <= KINDS


@dataclass(frozen=True)
class TermEntry:
    """One staff entry, as the record store keeps it (the route adds who and when)."""

    entry_id: str
    canonical: str
    variants: tuple[str, ...]
    kind: str
    note: str = ""

    def as_term(self) -> Term:
        return Term(self.canonical, self.variants, self.kind, self.note, 0)

    def forms(self) -> tuple[str, ...]:
        return (self.canonical, *self.variants)


def checked_entry(entry: TermEntry, others: Iterable[TermEntry]) -> TermEntry:
    """``entry`` with its forms trimmed, or InvalidInputError (malformed) / ConflictError (clashes with another)."""
    canonical = entry.canonical.strip()
    variants = tuple(v.strip() for v in entry.variants)
    if entry.kind not in ENTRY_KINDS:
        raise InvalidInputError(f"kind must be one of {list(ENTRY_KINDS)}, not {entry.kind!r}")
    for form in (canonical, *variants):
        _check_form(form)
    if len(entry.note) > MAX_NOTE_CHARS:
        raise InvalidInputError(f"the note is over {MAX_NOTE_CHARS} characters")
    if entry.kind == "protected" and variants:
        raise InvalidInputError("a protected word is one phrase kept whole: it takes no variants")
    if entry.kind != "protected" and not variants:
        raise InvalidInputError(f"a {entry.kind} entry needs at least one variant")
    if len(variants) > MAX_VARIANTS:
        raise InvalidInputError(f"at most {MAX_VARIANTS} variants in one entry")
    seen = {fold(canonical): canonical}
    for variant in variants:
        earlier = seen.setdefault(fold(variant), variant)
        if earlier is not variant:
            what = "its canonical form" if earlier == canonical else f"the variant {earlier!r}"
            raise InvalidInputError(f"the variant {variant!r} is the same as {what} (after folding width and case)")
    entry = TermEntry(entry.entry_id, canonical, variants, entry.kind, entry.note.strip())
    _check_against(entry, others)
    return entry


def _check_form(form: str) -> None:
    if len(form) < MIN_FORM_CHARS:
        raise InvalidInputError(f"{form!r}: a term form needs at least {MIN_FORM_CHARS} characters")
    if len(form) > MAX_FORM_CHARS:
        raise InvalidInputError(f"{form[:20]!r}...: a term form has at most {MAX_FORM_CHARS} characters")
    if _NOT_IN_FORM.search(form):
        raise InvalidInputError(f"{form!r}: a term form holds no tab, line break, '|' or sentence end")
    if not tokenize(form):
        raise InvalidInputError(f"{form!r}: a term form needs a word in it, not only stopwords or punctuation")


def _check_against(entry: TermEntry, others: Iterable[TermEntry]) -> None:
    """One form, one meaning: a form already read as another canonical would make a chain (A -> B -> C) or a loop."""
    mine = {fold(form) for form in entry.forms()}
    for other in others:
        if other.entry_id == entry.entry_id:
            continue
        if entry.kind == "related" or other.kind == "related":
            if entry.kind == other.kind and fold(other.canonical) == fold(entry.canonical):
                raise ConflictError(f"{entry.canonical!r} already has related words: entry {other.entry_id}")
            continue
        shared = sorted(mine & {fold(form) for form in other.forms()})
        if shared:
            raise ConflictError(
                f"{shared[0]!r} is already in entry {other.entry_id} ({other.canonical!r}, {other.kind}): "
                "a form has one canonical form; edit that entry instead"
            )


class LexicalStore(Protocol):
    def scores(self, query: str, allowed_ids: Iterable[int] | None = None) -> LexicalScores: ...
    def idf(self, term: str) -> float: ...


@dataclass(frozen=True)
class LexicalQuery:
    """What BM25 is asked: ``rest`` (the question, its term forms taken out, cut at protected words), plus for each
    term form found, (the form as asked, every form of the term): a passage may hold any of them."""

    rest: str
    alternatives: tuple[tuple[str, tuple[str, ...]], ...] = ()


class TermSet:
    """The shipped list with a knowledge base's entries; an entry overrides the shipped lines that share a form."""

    def __init__(self, base: Sequence[Term] = (), entries: Sequence[TermEntry] = ()) -> None:
        self.entries = tuple(entries)
        staff_forms = {fold(f) for e in self.entries if e.kind != "related" for f in e.forms()}
        kept = [
            t for t in base if t.kind == "related" or not staff_forms & {fold(f) for f in (t.canonical, *t.variants)}
        ]
        self.table = TermTable([*kept, *(e.as_term() for e in self.entries)])
        self.protected = tuple(sorted({fold(e.canonical) for e in self.entries if e.kind == "protected"}))
        self._whole = re.compile("|".join(map(re.escape, sorted(self.protected, key=len, reverse=True))))

    @property
    def reindex_needed(self) -> bool:
        """Whether documents would be tokenised otherwise: their index does not hold the protected words whole."""
        return bool(self.protected)

    def pieces(self, text: str) -> list[str]:
        """``text`` (folded) cut at protected words, each of them a piece of its own."""
        folded = fold(text)
        if not self.protected:
            return [folded]
        pieces, at = [], 0
        for match in self._whole.finditer(folded):
            pieces += [folded[at : match.start()], match.group()]
            at = match.end()
        return [p for p in (*pieces, folded[at:]) if p]

    def tokens(self, question: str) -> list[str]:
        """The question's words as this knowledge base reads them: a protected word whole, after its parts (as
        jieba's search mode gives a dictionary word)."""
        found: list[str] = []
        for piece in self.pieces(question):
            found += tokenize(piece)
            if piece in self.protected and piece not in found:
                found.append(piece)
        return found

    def _spans(self, folded: str) -> list[tuple[int, int, tuple[str, ...]]]:
        """(start, end, every form of the term) of each term form in ``folded`` that has other forms."""
        spans = []
        for start, end, canonical in self.table.occurrences(folded):
            forms = sorted({fold(f) for f in self.table.variants(canonical)} | {folded[start:end]})
            if len(forms) > 1:
                spans.append((start, end, tuple(forms)))
        return spans

    def in_documents_words(self, question: str, lexical: LexicalStore) -> str:
        """The question with each term form that no passage holds written as the form most passages hold
        (街工委 -> 人大工委), so that every later step (the embedding, the focus words a figure's passage must
        mention, the qualifiers) reads the documents' word; the question as asked where nothing needs it."""
        folded = fold(question)
        spans = self._spans(folded)
        if not spans:
            return question
        parts, at, changed = [], 0, False
        for start, end, forms in spans:
            held = {form: len(_whole_form_scores(lexical, form, None).ids) for form in forms}
            best = max(forms, key=lambda form: held[form])
            asked = folded[start:end]
            if held[asked] == 0 and held[best] > 0:
                parts += [folded[at:start], best]
                at, changed = end, True
        return "".join([*parts, folded[at:]]) if changed else question

    def lexical_query(self, question: str) -> LexicalQuery:
        folded = fold(question)
        spans = self._spans(folded)
        if not spans and not self.protected:
            return LexicalQuery(question)
        rest, at = [], 0
        for start, end, _ in spans:
            rest.append(folded[at:start])
            at = end
        rest.append(folded[at:])
        cut = [piece for part in rest for piece in self.pieces(part)]
        asked = {(folded[start:end], forms): None for start, end, forms in spans}
        return LexicalQuery(_SEPARATOR.join(cut), tuple(asked))

    def lexical_scores(self, lexical: LexicalStore, question: str, allowed=None) -> LexicalScores:
        """BM25 of the question, each term form in it read as whichever of the term's forms a passage holds whole,
        weighed as the form asked (a long canonical form's many words would otherwise outweigh the question)."""
        query = self.lexical_query(question)
        total = lexical.scores(query.rest, allowed)
        for asked, forms in query.alternatives:
            weight = _weight(lexical, asked)
            best = None
            for form in forms:
                found = _whole_form_scores(lexical, form, allowed)
                own = _weight(lexical, form)
                if own > 0 and len(found.ids):
                    found = LexicalScores(found.ids, (found.scores * np.float32(weight / own)).astype(np.float32))
                best = found if best is None else _combined(best, found, np.maximum)
            total = _combined(total, best, np.add)
        return total


def _weight(lexical: LexicalStore, form: str) -> float:
    """What a passage holding ``form`` gains at most, roughly: the idf of its words."""
    return sum(lexical.idf(word) for word in set(tokenize(form)))


def _whole_form_scores(lexical: LexicalStore, form: str, allowed) -> LexicalScores:
    """BM25 of ``form`` in the passages holding all its words (one of them alone is not the term: 办公室 is no
    机构编制委员会办公室)."""
    words = list(dict.fromkeys(tokenize(form)))
    if not words:
        return LexicalScores(np.zeros(0, np.int64), np.zeros(0, np.float32))
    each = [lexical.scores(word, allowed) for word in words]
    ids = each[0].ids
    for found in each[1:]:
        ids = np.intersect1d(ids, found.ids, assume_unique=True)
    total = np.zeros(len(ids), dtype=np.float32)
    for found in each:
        total += found.of(ids)
    return LexicalScores(ids.astype(np.int64), total)


def _combined(a: LexicalScores, b: LexicalScores, how) -> LexicalScores:
    """Two score lists over ascending ids as one: ``how`` (np.add, np.maximum) where both hold an id."""
    if len(b.ids) == 0:
        return a
    if len(a.ids) == 0:
        return b
    ids, inverse = np.unique(np.concatenate([a.ids, b.ids]), return_inverse=True)
    scores = np.zeros(len(ids), dtype=np.float32)
    scores[inverse[: len(a.ids)]] = a.scores
    at = inverse[len(a.ids) :]
    scores[at] = how(scores[at], b.scores)
    return LexicalScores(ids.astype(np.int64), scores.astype(np.float32))


class KnowledgeTerms:
    """A knowledge base's current ``TermSet``: its entries (``entries``: read from the staff's record store) are
    read again at most once a second, so an entry added through another replica is used as soon as here."""

    def __init__(
        self, entries: Callable[[], Sequence[TermEntry]] | None = None, *, base: Sequence[Term] | None = None
    ) -> None:
        self._entries = entries or tuple
        self._base = default_terms().terms if base is None else tuple(base)
        self._read: tuple[TermEntry, ...] = ()
        self._set = TermSet(self._base)
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def changed(self) -> None:
        """An entry changed here: the next question reads them, now."""
        with self._lock:
            self._read_at = -math.inf

    def current(self) -> TermSet:
        now = time.monotonic()
        if now - self._read_at < TERMS_CHECK_S:
            return self._set
        with self._lock:
            if now - self._read_at < TERMS_CHECK_S:
                return self._set
            self._read_at = now
            try:
                found = tuple(self._entries())
            except Exception:  # the store unreachable for a moment: answer with what was read, look again later
                logger.warning("could not read the term entries", exc_info=True)
                return self._set
            if found != self._read:
                self._read, self._set = found, usable_term_set(self._base, found)
            return self._set


def usable_term_set(base: Sequence[Term], entries: Sequence[TermEntry]) -> TermSet:
    """The term set of ``entries``, leaving out any that clash with an earlier one (two replicas adding the same
    form at once can both pass the check); what is left out is logged, never an error at question time."""
    kept: list[TermEntry] = []
    for entry in sorted(entries, key=lambda e: e.entry_id):
        try:
            kept.append(checked_entry(entry, kept))
        except (InvalidInputError, ConflictError) as error:
            logger.warning("term entry %s left out: %s", entry.entry_id, error)
    return TermSet(base, kept)
