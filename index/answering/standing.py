"""Whether a document still holds: current, amended, repealed or not yet in force, and by which document.

Read from what the documents themselves say (a later notice that repeals or amends an earlier one, an
expiry date, a date it takes effect), linked to the document that did it when that one is in the same
knowledge base; a status set by staff wins over all of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["current", "amended", "repealed", "not_yet_effective"]
STATUSES: tuple[Status, ...] = ("current", "amended", "repealed", "not_yet_effective")
STATUS_LABELS: dict[str, str] = {
    "current": "现行有效", "amended": "已修订", "repealed": "已废止", "not_yet_effective": "尚未施行",
}  # fmt: skip
SUPERSEDED: frozenset[str] = frozenset({"amended", "repealed"})


@dataclass(frozen=True)
class DocumentFacts:
    """One document's metadata as the answer uses it: extracted, with any staff corrections applied."""

    doc_id: str
    title: str
    issuers: tuple[str, ...] = ()
    doc_number: str | None = None
    written_date: str | None = None  # ISO dates throughout
    published_date: str | None = None
    effective_date: str | None = None
    expiry_date: str | None = None
    kind: str | None = None
    level: str | None = None
    subject_words: tuple[str, ...] = ()
    repeals: tuple[str, ...] = ()  # references (《title》 or 文号) the document says it repeals
    amends: tuple[str, ...] = ()
    provenance: Mapping[str, dict] = field(default_factory=dict)  # field -> {source, span, confidence, ...}

    @property
    def date(self) -> str | None:
        """The document's own date: when it was issued (published, else written)."""
        return self.published_date or self.written_date

    @property
    def in_force_from(self) -> str | None:
        return self.effective_date or self.published_date or self.written_date

    def years(self) -> set[int]:
        return {int(d[:4]) for d in (self.written_date, self.published_date, self.effective_date) if d}


@dataclass(frozen=True)
class Standing:
    status: Status
    source: str = "text"  # "text" (what a document says), "date", "title" (a later version), "staff"
    since: str | None = None
    by_doc_id: str | None = None
    by_title: str | None = None
    reference: str | None = None  # the words that said so, when a document did

    @property
    def superseded(self) -> bool:
        return self.status in SUPERSEDED

    def note(self) -> str | None:
        """The flag a citation and an answer carry ("该文件已于2023-05-01废止，被《…》取代")."""
        if self.status == "current":
            return None
        when = f"于{self.since}" if self.since else ""
        if self.status == "not_yet_effective":
            return f"该文件尚未施行{f'（自{self.since}起施行）' if self.since else ''}"
        verb = "废止" if self.status == "repealed" else "修订"
        by = f"，被《{self.by_title}》{'取代' if self.status == 'repealed' else '修订'}" if self.by_title else ""
        return f"该文件已{when}{verb}{by}"


CURRENT = Standing("current")


def standings(
    facts: Mapping[str, DocumentFacts],
    *,
    today: str,
    staff: Mapping[str, Standing] | None = None,
    references_match=None,
) -> dict[str, Standing]:
    """Each document's standing on ``today`` (ISO). ``references_match(reference, title=, doc_number=)``
    says whether a repeal or amendment names a document."""
    match = references_match or _plain_match
    linked = _linked(facts, today, match)
    found: dict[str, Standing] = {}
    for doc_id, doc in facts.items():
        if staff and doc_id in staff:
            found[doc_id] = staff[doc_id]
        elif doc_id in linked:
            found[doc_id] = linked[doc_id]
        elif doc.expiry_date and doc.expiry_date < today:
            found[doc_id] = Standing("repealed", "date", since=doc.expiry_date, reference=f"有效期至{doc.expiry_date}")
        elif doc.effective_date and doc.effective_date > today:
            found[doc_id] = Standing("not_yet_effective", "text", since=doc.effective_date)
        else:
            found[doc_id] = CURRENT
    return found


def _linked(facts: Mapping[str, DocumentFacts], today: str, match) -> dict[str, Standing]:
    """Standings that one document in the knowledge base gives another: what it repeals or amends, and,
    failing that, an earlier version of the same title from the same issuer."""
    by_title: dict[str, list[DocumentFacts]] = {}
    for doc in facts.values():
        by_title.setdefault(_title_key(doc.title), []).append(doc)
    found: dict[str, Standing] = {}
    for doc in sorted(facts.values(), key=lambda d: d.in_force_from or ""):  # the latest says last
        since = doc.in_force_from
        if since and since > today:
            continue  # it repeals nothing until it takes effect
        for status, references in (("amended", doc.amends), ("repealed", doc.repeals)):
            for reference in references:
                for target in _named(reference, facts.values(), by=doc, match=match):
                    found[target.doc_id] = Standing(
                        status, "text", since=since, by_doc_id=doc.doc_id, by_title=doc.title, reference=reference
                    )
    for versions in by_title.values():
        dated = sorted((d for d in versions if d.date), key=lambda d: d.date or "")
        for older, newer in zip(dated, dated[1:], strict=False):
            if older.doc_id in found or older.date == newer.date or not _same_issuer(older, newer):
                continue
            if newer.in_force_from and newer.in_force_from > today:
                continue  # as with a repeal: the older version holds until the newer one takes effect
            found[older.doc_id] = Standing("amended", "title", since=newer.in_force_from, by_doc_id=newer.doc_id,
                                           by_title=newer.title)  # fmt: skip
    return found


def _named(reference: str, docs: Iterable[DocumentFacts], *, by: DocumentFacts, match) -> list[DocumentFacts]:
    """The documents a reference in ``by`` names. A document issued after ``by`` is never one of them: a title
    outlives its versions, and the 2012 rules' '《…规则》同时废止' means the 1999 rules, not the 2019 ones."""
    return [
        d
        for d in docs
        if d.doc_id != by.doc_id
        and not (d.date and by.date and d.date > by.date)
        and match(reference, title=d.title, doc_number=d.doc_number)
    ]


def _same_issuer(a: DocumentFacts, b: DocumentFacts) -> bool:
    return not a.issuers or not b.issuers or bool(set(a.issuers) & set(b.issuers))


# A version's marks ("（2022年修订）") first, then brackets and spaces: what differs between versions of a title.
_TITLE_NOISE = re.compile(r"[（(](?:\d{4}年?)?(?:修订|修正|试行|草案)?[版本]?[)）]|[《》〈〉\s“”\"'（）()]")


def _title_key(title: str) -> str:
    return _TITLE_NOISE.sub("", title or "")


def _plain_match(reference: str, *, title: str, doc_number: str | None) -> bool:
    key = _title_key(reference)
    return bool(key) and (key == _title_key(title) or (doc_number is not None and key == _title_key(doc_number)))
