"""Request and response models for what the knowledge base knows of a document as a policy: its issuer,
文号, dates, 文种, level and validity; the filters a question may take; the staff's corrections."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from index.answering.document_filters import LEVELS, DocumentFilters
from index.answering.policy_view import EDITABLE_FIELDS
from index.answering.standing import STATUS_LABELS, DocumentFacts, Standing

Level = Literal["中央", "省", "市", "县", "乡镇街道"]
Validity = Literal["current", "amended", "repealed", "not_yet_effective"]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


def _written_as_text(value: object) -> object:
    """A date comes as "YYYY-MM-DD": pydantic would read a number as seconds since 1970 (found by schemathesis)."""
    if value is not None and not isinstance(value, str | dt.date):
        raise ValueError("a date is written as YYYY-MM-DD")
    return value


IsoDate = Annotated[dt.date, BeforeValidator(_written_as_text)]
assert set(Level.__args__) == set(LEVELS)  # type: ignore[attr-defined]
assert set(Validity.__args__) == set(STATUS_LABELS)  # type: ignore[attr-defined]


class DocumentFiltersIn(BaseModel):
    """Only answer from documents that match every given field (each list: any of its values)."""

    model_config = ConfigDict(extra="forbid")
    issuers: list[ShortText] = Field([], max_length=20, description="Issuing bodies; a part matches (河南省).")
    levels: list[Level] = Field([], max_length=5, description="中央, 省, 市, 县 or 乡镇街道.")
    kinds: list[ShortText] = Field([], max_length=20, description="文种: 通知, 意见, 办法, 规定, 方案, 决定, 条例…")
    date_from: IsoDate | None = Field(None, description="On or after this date (the document's own date).")
    date_to: IsoDate | None = Field(None, description="On or before this date.")
    validity: list[Validity] = Field(
        [],
        max_length=4,
        description="Standings to keep; by default all, with superseded documents demoted and flagged.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> DocumentFiltersIn:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError("date_from is after date_to")
        return self

    def domain(self) -> DocumentFilters:
        return DocumentFilters(
            issuers=tuple(self.issuers), levels=tuple(self.levels), kinds=tuple(self.kinds),
            date_from=self.date_from.isoformat() if self.date_from else None,
            date_to=self.date_to.isoformat() if self.date_to else None, validity=tuple(self.validity),
        )  # fmt: skip


def domain_filters(filters: DocumentFiltersIn | None) -> DocumentFilters | None:
    return None if filters is None else filters.domain()


class ValidityOut(BaseModel):
    status: Validity
    label: str = Field(description="现行有效, 已修订, 已废止 or 尚未施行.")
    since: str | None = Field(None, description="When it changed (ISO date), when known.")
    by_doc_id: str | None = Field(None, description="The document in this knowledge base that repealed or amended it.")
    by_title: str | None = None
    source: str = Field(description="text (a document says so), date, title (a later version), or staff.")
    note: str | None = Field(None, description="The flag shown with a citation: 该文件已于…废止，被《…》取代.")


class DocumentPolicy(BaseModel):
    issuers: list[str] = Field(description="发文机关, several for a joint notice.")
    doc_number: str | None = Field(None, description="文号, e.g. 国办发〔2019〕5号.")
    written_date: str | None = Field(None, description="成文日期 (ISO).")
    published_date: str | None = Field(None, description="发布日期 (ISO).")
    effective_date: str | None = Field(None, description="施行日期 (ISO).")
    expiry_date: str | None = Field(None, description="有效期至 (ISO).")
    kind: str | None = Field(None, description="文种.")
    level: str | None = Field(None, description="中央, 省, 市, 县 or 乡镇街道.")
    subject_words: list[str] = Field([], description="主题词.")
    validity: ValidityOut
    provenance: dict[str, dict] = Field(
        {}, description="Per field: where it came from (source text/title/staff, span, confidence, set_by, set_at)."
    )


def document_policy(facts: DocumentFacts | None, standing: Standing) -> DocumentPolicy | None:
    if facts is None:
        return None
    return DocumentPolicy(
        issuers=list(facts.issuers), doc_number=facts.doc_number, written_date=facts.written_date,
        published_date=facts.published_date, effective_date=facts.effective_date, expiry_date=facts.expiry_date,
        kind=facts.kind, level=facts.level, subject_words=list(facts.subject_words),
        validity=ValidityOut(
            status=standing.status, label=STATUS_LABELS[standing.status], since=standing.since,
            by_doc_id=standing.by_doc_id, by_title=standing.by_title, source=standing.source, note=standing.note(),
        ),
        provenance={name: dict(value) for name, value in facts.provenance.items()},
    )  # fmt: skip


class ValidityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Validity
    since: IsoDate | None = None
    by_doc_id: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None


CorrectableField = Literal[
    "issuers",
    "doc_number",
    "written_date",
    "published_date",
    "effective_date",
    "expiry_date",
    "kind",
    "level",
    "subject_words",
    "validity",
]
# One list of editable fields: the answers' (policy_view.EDITABLE_FIELDS) and this model's must not drift apart.
assert set(CorrectableField.__args__) == {*EDITABLE_FIELDS, "validity"}  # type: ignore[attr-defined]


class MetadataCorrection(BaseModel):
    """The fields staff set; a field left out keeps its value, one named in ``reset`` goes back to the text's."""

    model_config = ConfigDict(extra="forbid")
    issuers: list[ShortText] | None = Field(None, max_length=10)
    doc_number: ShortText | None = None
    written_date: IsoDate | None = None
    published_date: IsoDate | None = None
    effective_date: IsoDate | None = None
    expiry_date: IsoDate | None = None
    kind: ShortText | None = None
    level: Level | None = None
    subject_words: list[ShortText] | None = Field(None, max_length=30)
    validity: ValidityIn | None = None
    reset: list[CorrectableField] = Field([], max_length=10, description="Fields to return to what was extracted.")

    def fields(self) -> dict:
        """The metadata fields this correction sets, as plain JSON values."""
        names = self.model_fields_set - {"validity", "reset"}
        values = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        return {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in values.items()}
