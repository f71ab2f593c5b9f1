"""Request and response models of feedback, its review and the knowledge bases' gold sets.

The bounds keep the largest feedback, reviewed, under the staff record store's 60,000 bytes of JSON
(service/stores/records.py): at most 8 citations with quotes of 400 characters, an answer of 4,000.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from index.answering.compose import Answer
from service.api.schemas import Citation, DocId, Question
from service.feedback import VERDICTS
from service.gold_set import TOPICS

MAX_CITATIONS = 8
MAX_QUOTE_CHARS = 400
MAX_ANSWER_CHARS = 4000
MAX_NOTE_CHARS = 1000
RECORD_ID_PATTERN = r"^[0-9]{16}-[0-9a-f]{8}$"

Verdict = Literal["helpful", "wrong", "should_have_declined", "should_have_answered"]
Status = Literal["open", "resolved"]
Topic = Literal["near", "off"]
assert set(Verdict.__args__) == set(VERDICTS) and set(Topic.__args__) == set(TOPICS)  # type: ignore[attr-defined]
Note = Annotated[str, StringConstraints(max_length=MAX_NOTE_CHARS)]
Heading = Annotated[str, StringConstraints(max_length=100)]
Quote = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_NOTE_CHARS)]
Piece = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ChunkId = Annotated[int, Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class FeedbackCitation(_Strict):
    """A citation of the answer, as the reader saw it."""

    n: int | None = Field(None, ge=1, le=100, description="Its [n] marker in the answer.")
    doc_id: DocId
    title: Annotated[str, StringConstraints(max_length=200)] = ""
    section: list[Heading] = Field([], max_length=8, description="Heading path, outermost first.")
    quote: Annotated[str, StringConstraints(max_length=MAX_QUOTE_CHARS)] = Field(
        "", description="What was quoted from the passage (its highlighted sentences, or its start)."
    )
    chunk_id: ChunkId | None = Field(None, description="The passage's chunk id, as /api/ask gives it.")


class AnswerAsGiven(_Strict):
    text: Annotated[str, StringConstraints(max_length=MAX_ANSWER_CHARS)] = Field(
        description="The answer's text, with its [n] markers."
    )
    short_answer: Annotated[str, StringConstraints(max_length=200)] | None = None
    answerable: bool = Field(description="False when the question was declined.")
    declined_reason: Annotated[str, StringConstraints(max_length=64)] | None = None


class SuggestedPassage(_Strict):
    """The passage the reader thinks answers the question; checked against the knowledge base."""

    doc_id: DocId
    chunk_id: ChunkId | None = None
    quote: Quote | None = Field(None, description="Text of that passage (whitespace aside).")


class FeedbackCreate(_Strict):
    question: Question
    answer: AnswerAsGiven
    citations: list[FeedbackCitation] = Field([], max_length=MAX_CITATIONS)
    verdict: Verdict = Field(description="helpful, wrong, should_have_declined or should_have_answered.")
    comment: Note = ""
    correct_text: Note | None = Field(None, description="The right answer in the reader's words.")
    correct_passage: SuggestedPassage | None = None
    response_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,100}$")] | None = Field(
        None, description="The /v1 chat completion's id, when the answer came from /v1."
    )
    channel: Literal["api", "widget", "v1"] = Field("api", description="Where the answer was shown.")


class FeedbackReceipt(BaseModel):
    id: str
    kb_id: str
    verdict: Verdict
    status: Status
    created_at: str


class MarkedPassage(_Strict):
    doc_id: DocId
    chunk_id: ChunkId | None = Field(None, description="The chunk; by default the document's first that holds quote.")
    quote: Quote = Field(description="The piece of it that answers: a figure with its noun, a name, a sentence.")


class FeedbackUpdate(_Strict):
    """The staff's review; each field changes only when given."""

    passage: MarkedPassage | None = Field(None, description="The passage of this knowledge base that answers it.")
    not_in_documents: bool | None = Field(
        None, description="true: the documents do not answer it; false: clear the marking."
    )
    note: Note | None = Field(None, description="The resolution note.")
    status: Status | None = None

    @model_validator(mode="after")
    def _one_marking(self) -> FeedbackUpdate:
        if self.passage is not None and self.not_in_documents is not None:
            raise ValueError("give passage or not_in_documents, not both")
        return self


class Marking(BaseModel):
    kind: Literal["passage", "not_in_documents"]
    doc_id: str | None = None
    chunk_id: int | None = None
    title: str | None = None
    section: list[str] = []
    quote: str | None = None
    marked_by: str
    marked_at: str


class FeedbackOut(BaseModel):
    id: str
    kb_id: str
    created_at: str
    updated_at: str
    question: str
    answer: AnswerAsGiven
    citations: list[FeedbackCitation]
    verdict: Verdict
    comment: str
    correct_text: str | None
    correct_passage: dict | None = Field(description="The reader's passage, as checked: doc_id, title, chunk_id...")
    response_id: str | None
    channel: str
    given_by: str = Field(description="anonymous, or the key that gave it.")
    status: Status
    marked: Marking | None
    note: str
    gold_id: str | None = Field(description="The gold question made of it.")
    reviewed_by: str | None
    reviewed_at: str | None


class FeedbackList(BaseModel):
    data: list[FeedbackOut]
    count: int
    next_before: str | None = Field(description="Pass as before= for the next page; null at the end.")


class GoldAdd(_Strict):
    answers: list[Piece] = Field(
        [], max_length=10, description="Pieces of the marked quote an answer must hold (default: the whole quote)."
    )
    short: list[Piece] = Field([], max_length=10, description="Acceptable short answers, pieces of the quote.")
    topic: Topic | None = Field(None, description="For one the documents do not answer: near or off topic.")


class GoldQuestionOut(BaseModel):
    """A question of the knowledge base's gold set, in the fields of index/quality/gold.py's GoldQuestion."""

    id: str
    kb_id: str
    question: str
    doc_id: str | None = Field(description="null: the documents do not answer it.")
    answers: list[str]
    type: str
    answer_type: str | None
    short: list[str]
    topic: str | None
    feedback_id: str | None = None
    chunk_id: int | None = None
    quote: str | None = None
    added_by: str | None = None
    created_at: str


class GoldList(BaseModel):
    data: list[GoldQuestionOut]
    count: int
    next_before: str | None


class GoldDeleted(BaseModel):
    id: str
    deleted: bool


def quote_of(citation: Citation) -> str:
    """What an answer quoted from a passage: its highlighted sentences, else its start; at most 400 characters."""
    text = citation.text
    marked = "…".join(text[h.start : h.end] for h in citation.highlights if h.end > h.start)
    return (marked or text)[:MAX_QUOTE_CHARS]


def feedback_request(
    *, question: str, answer: Answer, citations: list[Citation], channel: str, response_id: str | None = None
) -> dict:
    """The body of ``POST …/feedback`` for ``answer``, bar its verdict: what /v1 hands its clients, each field
    within the bounds above."""
    body = {
        "question": question,
        "answer": {
            "text": answer.text[:MAX_ANSWER_CHARS],
            "short_answer": answer.short_answer.text[:200] if answer.short_answer else None,
            "answerable": answer.answerable,
            "declined_reason": answer.declined_reason,
        },
        "citations": [
            {"n": c.n, "doc_id": c.doc_id, "title": c.title[:200], "section": [h[:100] for h in c.section[:8]],
             "quote": quote_of(c), "chunk_id": c.chunk_id}
            for c in citations[:MAX_CITATIONS]
        ],
        "channel": channel,
    }  # fmt: skip
    return {**body, "response_id": response_id} if response_id else body
