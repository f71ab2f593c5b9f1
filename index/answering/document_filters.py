"""Which documents a caller asks to answer from: issuer, level, 文种, a date range and validity."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from index.answering.standing import DocumentFacts, Standing, Status

LEVELS = ("中央", "省", "市", "县", "乡镇街道")


@dataclass(frozen=True)
class DocumentFilters:
    issuers: tuple[str, ...] = ()  # a document matches when one of its issuers contains one of these
    levels: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    date_from: str | None = None  # ISO, inclusive, on the document's own date (published, else written)
    date_to: str | None = None
    validity: tuple[Status, ...] = ()  # empty: every standing (superseded ones are demoted and flagged)

    def __post_init__(self) -> None:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")

    @property
    def empty(self) -> bool:
        return not (self.issuers or self.levels or self.kinds or self.date_from or self.date_to or self.validity)

    def admits(self, doc: DocumentFacts, standing: Standing) -> bool:
        if self.issuers and not any(want in issuer for want in self.issuers for issuer in doc.issuers):
            return False
        if self.levels and doc.level not in self.levels:
            return False
        if self.kinds and doc.kind not in self.kinds:
            return False
        if self.date_from or self.date_to:
            date = doc.date
            if date is None or (self.date_from and date < self.date_from) or (self.date_to and date > self.date_to):
                return False
        return not self.validity or standing.status in self.validity


def admitted(filters: DocumentFilters, facts: Mapping[str, DocumentFacts], standing: Mapping[str, Standing]):
    return [doc_id for doc_id, doc in facts.items() if filters.admits(doc, standing[doc_id])]
