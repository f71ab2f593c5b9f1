"""Request and response models of the /v1 endpoints, after the OpenAI chat-completions protocol.

Parameters the protocol has and an extractive service cannot honour are
accepted and ignored where ignoring them is allowed (temperature, top_p,
max_tokens, seed, stop, penalties, user, ...), and refused where the caller
would get something other than what they asked for (``n`` > 1, ``logprobs``,
a forced tool call, a JSON response format).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from index.answering.retrieval import Mode
from service.api.policy_schemas import DocumentFiltersIn
from service.api.schemas import Citation, DocId

MODEL_ID = "policyqa"
MAX_MESSAGES = 100
MAX_MESSAGE_CHARS = 20_000


class ChatMessage(BaseModel):
    """A message of the conversation; tool and function messages have no place here (no tools are offered)."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant"]
    # A string, or content parts ({"type": "text", "text": ...}); parts of other types are refused when read.
    content: Annotated[str, StringConstraints(max_length=MAX_MESSAGE_CHARS)] | list[dict] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")  # the protocol's other parameters: accepted, ignored
    model: str = Field(
        max_length=64, description=f"The model: '{MODEL_ID}' (the knowledge base default) or a knowledge base's id."
    )
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(None, ge=1, le=128, description="Only 1: there is one extractive answer.")
    logprobs: bool | None = None
    tool_choice: Any = None
    response_format: dict | None = None
    # policyqa's own options (the openai client sends them with extra_body=...).
    top_k: int = Field(5, ge=1, le=20, description="Passages retrieved and cited.")
    mode: Mode = Field("hybrid", description="hybrid, dense or lexical retrieval.")
    doc_ids: list[DocId] | None = Field(None, max_length=100, description="Only answer from these documents.")
    filters: DocumentFiltersIn | None = Field(
        None, description="Only documents of these issuers, levels, 文种, dates or standings (as /api/ask's)."
    )


class FeedbackTemplate(BaseModel):
    """A verdict on this answer is ``body`` with ``verdict`` (and an optional ``comment``) added, POSTed to ``url``
    (a path on this server) with the same bearer key."""

    url: str = Field(description="/api/feedback, or /api/kbs/{kb_id}/feedback for another knowledge base.")
    body: dict = Field(description="The question, the answer as given, its citations and this completion's id.")


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    refusal: None = None
    citations: list[Citation] = Field(description="The passages behind the [n] markers, as /api/ask gives them.")
    answerable: bool = Field(description="False when the documents do not cover the question.")
    confidence: float | None = Field(
        None, description="Calibrated probability that the first quoted sentence answers (learned ranking only)."
    )
    feedback: FeedbackTemplate = Field(description="How to give feedback on this answer (docs/feedback.md).")


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class Usage(BaseModel):
    """Counted in characters (Unicode code points), not tokens: nothing here generates tokens."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    system_fingerprint: str
    choices: list[Choice]
    usage: Usage


class Model(BaseModel):
    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "policyqa"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Model]


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorBody(BaseModel):
    error: OpenAIErrorDetail
