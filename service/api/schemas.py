"""Request and response models of the HTTP API, one per direction."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from index.answering.retrieval import Mode
from service.api.policy_schemas import DocumentFiltersIn, DocumentPolicy

MAX_QUESTION_CHARS = 1000
MAX_HISTORY_TURNS = 40
MAX_TURN_CHARS = 8000

Question = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_QUESTION_CHARS)]
DocId = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class RetrievalOptions(BaseModel):
    """What /api/ask and /api/search share."""

    # strict: "stream": 0 or "top_k": 2.0 is refused as the schema says, not coerced (found by schemathesis).
    model_config = ConfigDict(extra="forbid", strict=True)
    top_k: int = Field(5, ge=1, le=20, description="How many passages to return (and cite).")
    mode: Mode = Field("hybrid", description="hybrid (dense + BM25, fused), dense, or lexical.")
    doc_ids: list[DocId] | None = Field(None, max_length=100, description="Only search these documents.")
    filters: DocumentFiltersIn | None = Field(
        None, description="Only documents of these issuers, levels, 文种, dates or standings (with doc_ids: both)."
    )


class HistoryTurn(BaseModel):
    """One earlier turn of the conversation, as in the OpenAI chat protocol."""

    model_config = ConfigDict(extra="forbid")
    role: Literal["user", "assistant"]
    content: Annotated[str, StringConstraints(max_length=MAX_TURN_CHARS)]


class AskRequest(RetrievalOptions):
    question: Question = Field(description="The question, in simplified or traditional Chinese.")
    stream: bool = Field(False, description="Answer as Server-Sent Events: citations, answer pieces, done.")
    history: list[HistoryTurn] = Field(
        [],
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns, oldest first: a follow-up (那镇海区呢？) is answered in their context.",
    )


class SearchRequest(RetrievalOptions):
    query: Question = Field(description="Search words or a question.")


class Highlight(BaseModel):
    start: int = Field(description="Offset of a quoted sentence inside the passage text.")
    end: int


class FaqCited(BaseModel):
    id: str = Field(description="The pair's id (its document id): GET faq/{id}.")
    question: str
    source: str = Field(description="来源: where the approved answer comes from; empty when not given.")


class FaqLead(BaseModel):
    id: str = Field(description="The pair whose approved answer leads the answer, quoted whole as [1].")
    matched: str = Field(description="The pair's question or similar question (相似问法) the question matched.")
    score: float = Field(description="Cosine of the question to that one.")
    threshold: float = Field(description="The score a pair's answer needs to lead (calibrated, docs/faq.md).")


class Passage(BaseModel):
    kind: Literal["document", "faq"] = Field("document", description="A document's passage, or an FAQ pair.")
    faq: FaqCited | None = Field(None, description="For kind faq: the pair, with its 来源.")
    doc_id: str
    title: str
    source: str = Field(description="The file in the corpus directory.")
    section: list[str] = Field(description="Heading path, outermost first.")
    chunk_id: int
    text: str
    start: int = Field(description="Offset of the passage in the cleaned document text.")
    end: int
    pages: list[int] | None = Field(None, description="First and last page of the passage, for paged formats (PDF).")
    ocr_confidence: float | None = Field(
        None, description="For a passage read by OCR (a scan): the lowest confidence, 0-1, of its pages."
    )
    score: float = Field(
        description="Ranking score of the mode used (hybrid with learned ranking: the passage ranker's score,"
        " a relative number, higher is better; not a probability)."
    )
    dense_score: float = Field(description="Cosine similarity to the question.")
    lexical_score: float = Field(description="BM25 score.")
    evidence: Highlight | None = Field(
        None, description="The passage's sentence that best supports the question (offsets inside text)."
    )
    document: DocumentPolicy | None = Field(
        None, description="Its document's issuer, 文号, dates, 文种, level and validity (with a flag when superseded)."
    )


class Citation(Passage):
    n: int = Field(description="The number of the [n] marker in the answer.")
    highlights: list[Highlight]
    weak: bool = Field(description="True when the question was judged not answerable from the documents.")


class ShortAnswer(BaseModel):
    text: str = Field(description="The span of a quoted sentence that answers the question: a figure, date or name.")
    n: int = Field(description="The citation whose text holds it.")
    start: int = Field(description="Offset inside that citation's text.")
    end: int


class AskResponse(BaseModel):
    question: str
    answer: str
    answerable: bool
    relevance: float = Field(description="Best sentence relevance; answerable when at least the threshold.")
    min_relevance: float = Field(description="The threshold: below it the question is declined (off_topic).")
    confidence: float | None = Field(
        None,
        description="Calibrated probability that the first quoted sentence answers the question (with the"
        " learned ranking, POLICYQA_RANKING=learned); the question is answered when it is at least min_confidence.",
    )
    min_confidence: float | None = Field(None, description="The confidence an answer needs; null with the rules.")
    short_answer: ShortAnswer | None = Field(
        None, description="The answering span, for questions that ask for a figure, date, name, place or document."
    )
    declined_reason: str | None = Field(
        None,
        description="Why the question was declined: off_topic (nothing relevant), missing_qualifier (a year,"
        " batch, place or title it names is not in the documents), missing_answer_type (the passages"
        " discuss the subject but hold no figure, date or name of the kind asked), missing_subject"
        " (they hold such a figure, but not about the thing asked: 工资 in 每月工资是多少) or uncertain"
        " (nothing named is missing, but no sentence is likely enough to answer: confidence below min_confidence).",
    )
    citations: list[Citation]
    took_ms: float
    resolved_question: str | None = Field(
        None, description="What was retrieved and answered, when the history completed a follow-up question."
    )
    notices: list[str] = Field(
        [], description="Cited documents that are repealed, amended or not yet in force (also said in the answer)."
    )
    faq: FaqLead | None = Field(
        None, description="When the question matched an FAQ pair: the pair whose approved answer is the answer."
    )


class SearchResponse(BaseModel):
    query: str
    results: list[Passage]
    took_ms: float


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    source: str
    type: str = Field("", description="The source file's format, from its extension: pdf, docx, txt...")
    pages: int | None = Field(None, description="Pages, for paged formats (PDF, OFD, scans).")
    chunks: int
    origin: Literal["corpus", "upload", "faq"] = Field(
        "corpus", description="The docs directory, an upload, or an FAQ pair (managed under faq/)."
    )
    policy: DocumentPolicy | None = Field(None, description="Issuer, 文号, dates, 文种, level and validity.")
    corrections: int = Field(0, description="Chunks whose text staff corrected (docs/corrections.md).")
    added_at: str | None = Field(
        None, description="When its id first came (ISO 8601 UTC), kept through replaces and a restore from the trash."
    )
    updated_at: str | None = Field(None, description="When its content last changed (ISO 8601 UTC).")


class DocumentList(BaseModel):
    data: list[DocumentSummary]
    count: int


class ChunkSummary(BaseModel):
    chunk_id: int
    section: list[str]
    start: int
    end: int
    pages: list[int] | None = Field(None, description="First and last page of the chunk, for paged formats.")
    ocr_confidence: float | None = Field(None, description="For a chunk read by OCR: its pages' lowest confidence.")


class DocumentDetail(DocumentSummary):
    content_hash: str
    text: str = Field(description="The cleaned text that passage offsets point into.")
    chunk_spans: list[ChunkSummary]


class Health(BaseModel):
    status: Literal["ok"]
    documents: int
    chunks: int
    embedder: str
    dimension: int
    build_id: str
    built_at: str


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: list[dict] | None = None


class ErrorBody(BaseModel):
    error: ErrorDetail


class JobOut(BaseModel):
    id: str
    kind: Literal["add", "replace", "delete", "correct"]
    doc_id: str
    filename: str | None
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(description="0 to 1.")
    message: str
    error: str | None
    duplicate: bool = Field(description="The content was already indexed: doc_id names the existing document.")
    embedded_passages: int = Field(description="Chunks and sentences this change sent to the embedder.")
    read_summary: str = Field(
        "", description="What reading the file did, e.g. 'OCR: 12 pages, mean confidence 0.97' or 'workbook: 40 rows'."
    )
    metadata: dict | None = Field(
        None,
        description="In an upload's reply: what was read of the document as a policy (issuers, doc_number, dates,"
        " kind, level...), each with its span and confidence; null for a scan (read in its job) and elsewhere.",
    )
    created_at: float
    finished_at: float | None


class JobsOut(BaseModel):
    jobs: list[JobOut]


class DeletedOut(BaseModel):
    doc_id: str
    deleted: bool
    job: JobOut


# -- knowledge bases and keys ------------------------------------------------
KbId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_-]{1,64}$", min_length=1, max_length=64)]
KbTitle = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
KbDescription = Annotated[str, StringConstraints(max_length=2000)]


class KbCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kb_id: KbId = Field(description="1 to 64 of a-z, 0-9, _ and -; used in the URL.")
    title: KbTitle
    description: KbDescription = ""
    public: bool = Field(description="Public: anyone may ask and search it; otherwise only keys scoped to it.")


class KbUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: KbTitle | None = None
    description: KbDescription | None = None
    public: bool | None = None


class KbOut(BaseModel):
    kb_id: str
    title: str
    description: str
    public: bool
    documents: int
    chunks: int
    created_at: str


class KbList(BaseModel):
    data: list[KbOut]
    count: int


class KbDeleted(BaseModel):
    kb_id: str
    deleted: bool


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kbs: list[KbId] = Field(min_length=1, max_length=100, description="The knowledge bases the key is for.")
    scope: Literal["read", "write"] = Field(description="read: ask and search; write: also upload and delete.")
    label: Annotated[str, StringConstraints(max_length=200)] = ""


class KeyOut(BaseModel):
    key_id: str
    prefix: str = Field(description="The key's first characters, to tell keys apart; not a secret.")
    kbs: list[str]
    scope: Literal["read", "write"]
    label: str
    created_at: str
    last_used_at: str | None = Field(
        None, description="When the key was last used (noted at most once a minute); null if never."
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class KeyList(BaseModel):
    data: list[KeyOut]
    count: int


class EvalRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    modes: list[Mode] = Field(
        ["hybrid", "dense", "lexical"], min_length=1, max_length=3, description="The retrieval modes to run."
    )


class EvalOut(BaseModel):
    id: str
    kb_id: str
    dataset: str = Field(
        description="gold (default's: index/quality/questions.jsonl and the staff's added questions), or"
        " gold-<kb_id> (another knowledge base's added questions)."
    )
    modes: list[str]
    state: Literal["queued", "running", "done", "failed"]
    progress: float = Field(description="0 to 1.")
    questions: int
    error: str | None
    summary: dict[str, dict[str, float | None]] | None = Field(
        None,
        description="Per mode: doc@k, passage@k, mrr@10, ndcg@10, answer, abstention, short answers, latency"
        " (null where no question allowed the figure, e.g. in an empty knowledge base).",
    )
    abstention: dict[str, str | float | None] | None = Field(
        None, description="The relevance threshold that best tells answerable from not, next to the configured one."
    )
    created_at: float
    finished_at: float | None
    plot: bool = Field(description="Whether plot.png is ready.")


class EvalList(BaseModel):
    data: list[EvalOut]
    count: int


class CallerOut(BaseModel):
    role: Literal["admin", "write", "read"] = Field(description="The admin token, or a key's scope.")
    kbs: list[str] | None = Field(description="The knowledge bases a key is scoped to; null for the admin (all).")


class KeyDeleted(BaseModel):
    key_id: str
    deleted: bool
