"""What the knowledge base knows of each document as a policy: its facts, its standing, and what that
changes in an answer (which documents a filter admits, which passages go first, which citations are flagged).

Facts are extracted from each document's text once and kept by content hash, so a new generation only reads
the documents it added; staff corrections are applied on top and take effect at once, with no rebuild.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from index.answering.document_filters import DocumentFilters, admitted
from index.answering.standing import CURRENT, DocumentFacts, Standing, standings
from index.ingest.metadata import DocumentMetadata, extract_metadata, references_match
from index.stores.base import Catalogue

logger = logging.getLogger(__name__)

CORRECTIONS_CHECK_S = 1.0  # how often the staff's corrections are read again (as engine.RELOAD_CHECK_S)
# Words that ask about an earlier state of affairs: superseded documents are not demoted for them.
_PAST = re.compile(r"原来|原先|以前|此前|之前|旧|当时|过去|曾经|废止前|修订前|修改前|历史")
_YEAR = re.compile(r"((?:19|20)\d{2})\s*年")
_PLACE = re.compile(r"^(?:中共)?(.{2,8}?(?:省|自治区|市|县|区|乡|镇|街道))")
EDITABLE_FIELDS = ("issuers", "doc_number", "written_date", "published_date", "effective_date", "expiry_date",
                   "kind", "level", "subject_words")  # fmt: skip


@dataclass(frozen=True)
class QuestionCues:
    years: frozenset[int]
    asks_about_past: bool
    text: str


def question_cues(question: str) -> QuestionCues:
    years = frozenset(int(y) for y in _YEAR.findall(question))
    return QuestionCues(years, bool(_PAST.search(question)), question)


SCOPES_KEPT = 32  # filters remembered per view: a widget or a console sends the same few again and again


@dataclass(frozen=True)
class PolicyView:
    facts: Mapping[str, DocumentFacts]
    standing: Mapping[str, Standing]
    _scopes: dict = field(default_factory=dict, compare=False, repr=False)
    _scopes_lock: threading.Lock = field(default_factory=threading.Lock, compare=False, repr=False)

    def of(self, doc_id: str) -> tuple[DocumentFacts | None, Standing]:
        return self.facts.get(doc_id), self.standing.get(doc_id, CURRENT)

    def scope(self, doc_ids: Sequence[str] | None, filters: DocumentFilters | None) -> Sequence[str] | None:
        """The documents to answer from: ``doc_ids`` narrowed by ``filters`` (an unknown id is kept, so the
        retriever names it as unknown rather than it vanishing)."""
        if filters is None or filters.empty:
            return None if doc_ids is None else list(doc_ids)
        kept = self._admitted(filters)
        if doc_ids is None:
            return None if len(kept) == len(self.facts) else kept  # all of them: no narrowing to pay for
        wanted = set(kept)
        return [d for d in doc_ids if d in wanted or d not in self.facts]

    def _admitted(self, filters: DocumentFilters) -> tuple[str, ...]:
        """The same tuple for the same filters, so the retriever's cache of their chunk ids finds it at once."""
        with self._scopes_lock:
            if filters not in self._scopes:
                if len(self._scopes) >= SCOPES_KEPT:
                    self._scopes.pop(next(iter(self._scopes)))
                self._scopes[filters] = tuple(admitted(filters, self.facts, self.standing))
            return self._scopes[filters]

    def arrange(self, question: str, doc_ids: Sequence[str]) -> list[int]:
        """The candidates' order (indices into ``doc_ids``, best first): a passage from a superseded document
        goes after the current ones unless the question asks about the past, and a document the question
        names (its year, its issuer) goes first when some candidates match and others do not."""
        cues = question_cues(question)
        named = [self._named(doc_id, cues) for doc_id in doc_ids]
        narrows = any(named) and not all(named)
        demoted = [self._demoted(doc_id, cues) for doc_id in doc_ids]
        return sorted(range(len(doc_ids)), key=lambda i: (narrows and not named[i], demoted[i], i))

    def notices(self, cited: Sequence[tuple[int, str]]) -> list[str]:
        """A flag for each cited document that is not simply in force (``(n, doc_id)`` in citation order),
        naming every citation of it: "[4][5]《…》该文件已于…废止"."""
        markers: dict[str, str] = {}
        for n, doc_id in cited:
            markers[doc_id] = markers.get(doc_id, "") + f"[{n}]"
        flagged: list[str] = []
        for doc_id, marks in markers.items():
            doc, standing = self.of(doc_id)
            note = standing.note()
            if note and doc is not None:
                flagged.append(f"{marks}《{doc.title}》{note}")
        return flagged

    def _named(self, doc_id: str, cues: QuestionCues) -> bool:
        doc = self.facts.get(doc_id)
        if doc is None:
            return False
        if cues.years and doc.years() & cues.years:
            return True
        return any(_issuer_named(issuer, cues.text) for issuer in doc.issuers)

    def _demoted(self, doc_id: str, cues: QuestionCues) -> bool:
        doc, standing = self.of(doc_id)
        if not standing.superseded or cues.asks_about_past:
            return False
        return not (doc is not None and cues.years and _in_force_during(doc, standing, cues.years))


def _issuer_named(issuer: str, question: str) -> bool:
    if issuer and issuer in question:
        return True
    place = _PLACE.match(issuer or "")
    return place is not None and place.group(1) in question


def _in_force_during(doc: DocumentFacts, standing: Standing, years: frozenset[int]) -> bool:
    start = int(doc.in_force_from[:4]) if doc.in_force_from else None
    end = int(standing.since[:4]) if standing.since else None
    return any((start is None or start <= y) and (end is None or y <= end) for y in years)


class PolicyKnowledge:
    """Builds a knowledge base's ``PolicyView`` for each generation, reading only the documents it has not
    read before, with the staff's corrections (``overrides``: doc_id -> corrected fields) applied. The
    corrections are read again at most once a second, so one made through another replica (a shared
    registry) is seen as soon as a new generation would be."""

    def __init__(self, overrides: Callable[[], Mapping[str, dict]] | None = None) -> None:
        self._overrides = overrides or dict
        self._extracted: dict[tuple[str, str], DocumentMetadata] = {}
        self._view: tuple[tuple, PolicyView] | None = None
        self._corrections: Mapping[str, dict] = {}
        self._version = 0
        self._read_at = -math.inf
        self._lock = threading.Lock()

    def changed(self) -> None:
        """The staff's corrections changed here: the next view reads them, now."""
        with self._lock:
            self._read_at = -math.inf

    def built_for(self, generation: str) -> bool:
        """Is a view of ``generation`` ready (no question will wait for one)?"""
        view = self._view
        return view is not None and view[0][0] == generation

    def view(self, catalogue: Catalogue, generation: str) -> PolicyView:
        with self._lock:
            self._read_corrections()
            key = (generation, self._version, date.today().isoformat())
            if self._view is None or self._view[0] != key:
                self._view = (key, self._build(catalogue, today=key[2]))
            return self._view[1]

    def _read_corrections(self) -> None:
        now = time.monotonic()
        if now - self._read_at < CORRECTIONS_CHECK_S:
            return
        self._read_at = now
        try:
            found = dict(self._overrides())
        except Exception:  # the registry unreachable for a moment: answer with what was read, look again later
            logger.warning("could not read the corrections of document metadata", exc_info=True)
            return
        if found != self._corrections:
            self._corrections, self._version = found, self._version + 1

    def extracted(self, catalogue: Catalogue, doc_id: str) -> DocumentMetadata | None:
        record = catalogue.document(doc_id)
        return None if record is None else self._metadata(catalogue, doc_id, record.title, record.content_hash)

    def _build(self, catalogue: Catalogue, *, today: str) -> PolicyView:
        overrides = self._corrections
        facts: dict[str, DocumentFacts] = {}
        live: set[tuple[str, str]] = set()
        for record in catalogue.documents():
            live.add((record.doc_id, record.content_hash))
            extracted = self._metadata(catalogue, record.doc_id, record.title, record.content_hash)
            facts[record.doc_id] = corrected(facts_of(record.doc_id, record.title, extracted),
                                             overrides.get(record.doc_id))  # fmt: skip
        for gone in set(self._extracted) - live:
            del self._extracted[gone]
        staff = {
            d: _staff_standing(o["validity"], facts) for d, o in overrides.items() if d in facts and o.get("validity")
        }
        found = standings(facts, today=today, staff=staff, references_match=references_match)
        return PolicyView(facts, found)

    def _metadata(self, catalogue: Catalogue, doc_id: str, title: str, content_hash: str) -> DocumentMetadata:
        key = (doc_id, content_hash)
        if key not in self._extracted:
            self._extracted[key] = extract_metadata(catalogue.document_text(doc_id) or "", title=title)
        return self._extracted[key]


def facts_of(doc_id: str, title: str, metadata: DocumentMetadata) -> DocumentFacts:
    return DocumentFacts(
        doc_id=doc_id,
        title=title,
        issuers=metadata.values("issuers"),
        doc_number=metadata.value("doc_number"),
        written_date=metadata.value("written_date"),
        published_date=metadata.value("published_date"),
        effective_date=metadata.value("effective_date"),
        expiry_date=metadata.value("expiry_date"),
        kind=metadata.value("kind"),
        level=metadata.value("level"),
        subject_words=metadata.values("subject_words"),
        repeals=metadata.values("repeals"),
        amends=metadata.values("amends"),
        provenance={name: _provenance(metadata, name) for name in EDITABLE_FIELDS if getattr(metadata, name)},
    )


def corrected(facts: DocumentFacts, override: Mapping | None) -> DocumentFacts:
    """``facts`` with the staff's corrections: each names its author and time, and wins over the text."""
    if not override:
        return facts
    changes: dict = {}
    provenance = dict(facts.provenance)
    for name, value in (override.get("fields") or {}).items():
        if name not in EDITABLE_FIELDS:
            continue
        changes[name] = tuple(value) if name in ("issuers", "subject_words") else (value or None)
        provenance[name] = {"source": "staff", "set_by": override.get("set_by"), "set_at": override.get("set_at"),
                            "confidence": 1.0}  # fmt: skip
    return replace(facts, **changes, provenance=provenance)


def _staff_standing(validity: Mapping, facts: Mapping[str, DocumentFacts]) -> Standing:
    by = validity.get("by_doc_id")
    by_title = facts[by].title if by in facts else validity.get("by_title")
    return Standing(validity["status"], "staff", since=validity.get("since"), by_doc_id=by, by_title=by_title)


def _provenance(metadata: DocumentMetadata, name: str) -> dict:
    """Where a field was found: its source, span and confidence (a list's: each item's span)."""
    found = getattr(metadata, name)
    items = found if isinstance(found, tuple) else (found,)
    first = items[0].to_dict()
    first.pop("value")
    if len(items) > 1:
        first["spans"] = [list(item.span) if item.span else None for item in items]
    return first
