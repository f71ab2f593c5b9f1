"""The metadata record: each value with where it was found and how sure we are of it.

A field carries its span (character offsets into the cleaned text) so the console can show the evidence, and its
source so a value staff typed in is never overwritten by a re-extraction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

SOURCES = ("text", "title", "staff")
SCALAR_FIELDS = (
    "doc_number",
    "written_date",
    "published_date",
    "effective_date",
    "expiry_date",
    "kind",
    "level",
)
TUPLE_FIELDS = ("issuers", "subject_words", "repeals", "amends")


@dataclass(frozen=True)
class MetadataField:
    value: str
    span: tuple[int, int] | None
    source: str
    confidence: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "span": list(self.span) if self.span is not None else None,
            "source": self.source,
            "confidence": round(self.confidence, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MetadataField | None:
        """None for a record that lacks a value: an old or hand-edited file must not stop a load."""
        value = data.get("value") if isinstance(data, dict) else None
        if not isinstance(value, str) or not value:
            return None
        span = data.get("span")
        parsed_span = (int(span[0]), int(span[1])) if isinstance(span, list | tuple) and len(span) == 2 else None
        source = data.get("source") if data.get("source") in SOURCES else "text"
        confidence = data.get("confidence")
        confidence = float(confidence) if isinstance(confidence, int | float) else 0.0
        return cls(value=value, span=parsed_span, source=source, confidence=min(max(confidence, 0.0), 1.0))


@dataclass(frozen=True)
class DocumentMetadata:
    issuers: tuple[MetadataField, ...] = ()
    doc_number: MetadataField | None = None
    written_date: MetadataField | None = None
    published_date: MetadataField | None = None
    effective_date: MetadataField | None = None
    expiry_date: MetadataField | None = None
    kind: MetadataField | None = None
    level: MetadataField | None = None
    subject_words: tuple[MetadataField, ...] = ()
    repeals: tuple[MetadataField, ...] = ()
    amends: tuple[MetadataField, ...] = ()
    version: int = field(default=1, compare=False)

    def value(self, name: str) -> str | None:
        found = getattr(self, name)
        return found.value if isinstance(found, MetadataField) else None

    def values(self, name: str) -> tuple[str, ...]:
        return tuple(item.value for item in getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": self.version}
        for name in SCALAR_FIELDS:
            found = getattr(self, name)
            data[name] = found.to_dict() if found is not None else None
        for name in TUPLE_FIELDS:
            data[name] = [item.to_dict() for item in getattr(self, name)]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DocumentMetadata:
        """Unknown keys are ignored and missing ones left empty, so records written by older or newer code load."""
        data = data if isinstance(data, dict) else {}
        scalars = {}
        for name in SCALAR_FIELDS:
            raw = data.get(name)
            scalars[name] = MetadataField.from_dict(raw) if isinstance(raw, dict) else None
        tuples = {}
        for name in TUPLE_FIELDS:
            raw = data.get(name)
            items = raw if isinstance(raw, list) else []
            tuples[name] = tuple(f for f in (MetadataField.from_dict(item) for item in items) if f is not None)
        return cls(**scalars, **tuples)
