"""Request and response models of the FAQ routes (service/api/routes/faq.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from index.ingest.faq import MAX_ANSWER_CHARS, MAX_QUESTION_CHARS, MAX_SIMILAR, MAX_SOURCE_CHARS
from service.api.schemas import JobOut

FaqQuestion = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]


class FaqIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    question: FaqQuestion = Field(description="问题: one line.")
    answer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_ANSWER_CHARS)] = Field(
        description="答案: the approved answer, quoted verbatim when a question matches the pair."
    )
    similar: list[FaqQuestion] = Field([], max_length=MAX_SIMILAR, description="相似问法: other ways to ask it.")
    source: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_SOURCE_CHARS)] = Field(
        "", description="来源: the document, article or office the answer comes from."
    )


class FaqOut(BaseModel):
    id: str
    question: str
    answer: str
    similar: list[str]
    source: str
    version: str = Field(description="The content hash of this version: a replace makes a new one.")


class FaqList(BaseModel):
    data: list[FaqOut]
    count: int = Field(description="Pairs matching q, in all (data holds one page of them).")
    offset: int
    limit: int


class FaqWritten(BaseModel):
    faq: FaqOut = Field(description="The pair as stored (cleaned as every document is); version once its job is done.")
    job: JobOut = Field(description="The change; the pair answers once the job is done (GET jobs/{id}).")


class FaqImported(BaseModel):
    ids: list[str] = Field(description="The new pairs' ids, in the file's row order.")
    count: int
    job: JobOut = Field(description="One change adding every pair, all or none.")


class FaqDeleted(BaseModel):
    id: str
    deleted: bool
    job: JobOut
