"""From a chat request to a question with its history, and from an answer to the protocol's replies."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from index.answering.engine import TimedAnswer
from index.answering.followup import Turn
from index.answering.policy_view import PolicyView
from service.api import presenters
from service.api.feedback_schemas import feedback_request
from service.api.openai_compat.errors import OpenAIError
from service.api.openai_compat.schemas import (
    MODEL_ID,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    FeedbackTemplate,
    Usage,
)
from service.api.schemas import MAX_QUESTION_CHARS, Citation

_MARKER = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class ChatTurns:
    question: str  # the last user message
    history: list[Turn]  # the user and assistant messages before it (system messages are not used)
    prompt_chars: int  # every message's text, for usage


def message_text(message, index: int) -> str:
    content = message.content
    if isinstance(content, list):
        texts = []
        for part in content:
            if part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise OpenAIError(
                    400,
                    f"Only text content is supported; got a '{part.get('type')}' part.",
                    param=f"messages.[{index}].content",
                    code="unsupported_content",
                )
            texts.append(part["text"])
        return "".join(texts)
    return content or ""


def check_request(body: ChatCompletionRequest) -> None:
    """Refuse what cannot be honoured; everything else the protocol has is ignored."""
    if body.n is not None and body.n > 1:
        raise OpenAIError(
            400, "Only n=1 is supported: there is one extractive answer.", param="n", code="unsupported_value"
        )
    if body.logprobs:
        raise OpenAIError(
            400,
            "logprobs are not available: answers are quoted, not sampled.",
            param="logprobs",
            code="unsupported_value",
        )
    if body.tool_choice not in (None, "none", "auto"):
        raise OpenAIError(400, "No tools can be called here.", param="tool_choice", code="unsupported_value")
    kind = (body.response_format or {}).get("type", "text")
    if kind != "text":
        raise OpenAIError(400, "Only text responses are supported.", param="response_format", code="unsupported_value")


def chat_turns(body: ChatCompletionRequest) -> ChatTurns:
    texts = [message_text(m, i) for i, m in enumerate(body.messages)]
    last = len(body.messages) - 1
    if not any(m.role == "user" for m in body.messages):
        raise OpenAIError(400, "The messages hold no user message to answer.", param="messages", code="no_user_message")
    if body.messages[last].role != "user":
        raise OpenAIError(
            400, "The last message must be the user's question.", param=f"messages.[{last}].role", code="invalid_value"
        )
    question = texts[last].strip()
    if not question:
        raise OpenAIError(
            400, "The last user message is empty.", param=f"messages.[{last}].content", code="invalid_value"
        )
    if len(question) > MAX_QUESTION_CHARS:
        raise OpenAIError(
            400,
            f"The question is {len(question)} characters long; at most {MAX_QUESTION_CHARS} are answered.",
            param=f"messages.[{last}].content",
            code="string_above_max_length",
        )
    history = [Turn(m.role, t) for m, t in zip(body.messages[:last], texts[:last], strict=True) if m.role != "system"]
    history = [t for t in history if t.role in ("user", "assistant")]
    return ChatTurns(question, history, sum(len(t) for t in texts))


def _source_line(citation: Citation) -> str:
    where = [citation.title or citation.source]
    if citation.section:
        where.append(" › ".join(citation.section))
    if citation.pages:
        first, last = citation.pages[0], citation.pages[-1]
        where.append(f"第 {first} 页" if first == last else f"第 {first}–{last} 页")
    document = citation.document
    if document is not None:
        where += [part for part in (document.doc_number, document.published_date or document.written_date) if part]
        if document.validity.note:
            where.append(document.validity.note)
    return f"- [{citation.n}] {' · '.join(where)}"


def sources_block(answer_text: str, citations: list[Citation], answerable: bool) -> str:
    """The sources under the answer: each marker's document and section (or, declined, the nearest passages)."""
    if answerable:
        used = {int(n) for n in _MARKER.findall(answer_text)}
        listed = [c for c in citations if c.n in used]
        heading = "来源："
    else:
        listed = citations
        heading = "最接近的段落（不构成答案）："
    if not listed:
        return ""
    return "\n\n" + heading + "\n" + "\n".join(_source_line(c) for c in listed)


@dataclass(frozen=True)
class Reply:
    """One answer, in the pieces both the plain and the streamed replies are made of."""

    id: str
    created: int
    fingerprint: str
    pieces: list[str]  # the content, cut so that no [n] marker is split
    citations: list[Citation]
    answerable: bool
    usage: Usage
    feedback: FeedbackTemplate
    model: str = MODEL_ID
    confidence: float | None = None

    @property
    def content(self) -> str:
        return "".join(self.pieces)


def make_reply(
    result: TimedAnswer, turns: ChatTurns, build_id: str, model: str = MODEL_ID, view: PolicyView | None = None,
    *, feedback_url: str = "/api/feedback",
) -> Reply:  # fmt: skip
    """``feedback_url``: where feedback on this answer is given (the knowledge base's feedback route)."""
    answer = result.answer
    citations = presenters.citations(answer, view)
    lead = f"答：{answer.short_answer.text}\n\n" if answer.short_answer else ""
    pieces = [lead, *presenters.answer_pieces(answer.text), sources_block(answer.text, citations, answer.answerable)]
    pieces = [p for p in pieces if p]
    completion = sum(len(p) for p in pieces)
    reply_id = f"chatcmpl-{uuid.uuid4().hex}"
    feedback = feedback_request(
        question=turns.question, answer=answer, citations=citations, channel="v1", response_id=reply_id
    )
    return Reply(
        id=reply_id,
        created=int(time.time()),
        fingerprint=f"policyqa-{build_id}",
        pieces=pieces,
        citations=citations,
        answerable=answer.answerable,
        confidence=None if answer.confidence is None else round(answer.confidence, 4),
        feedback=FeedbackTemplate(url=feedback_url, body=feedback),
        model=model,
        usage=Usage(
            prompt_tokens=turns.prompt_chars, completion_tokens=completion, total_tokens=turns.prompt_chars + completion
        ),
    )


def completion(reply: Reply) -> ChatCompletion:
    message = AssistantMessage(
        content=reply.content, citations=reply.citations, answerable=reply.answerable, confidence=reply.confidence,
        feedback=reply.feedback,
    )  # fmt: skip
    return ChatCompletion(
        id=reply.id,
        model=reply.model,
        created=reply.created,
        system_fingerprint=reply.fingerprint,
        choices=[Choice(message=message)],
        usage=reply.usage,
    )


def _chunk(reply: Reply, choices: list[dict], **extra) -> str:
    payload = {
        "id": reply.id,
        "object": "chat.completion.chunk",
        "created": reply.created,
        "model": reply.model,
        "system_fingerprint": reply.fingerprint,
        "choices": choices,
        **extra,
    }
    return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"


def chunks(reply: Reply, *, include_usage: bool) -> Iterator[str]:
    """The streamed reply: the role, the content in pieces, a last chunk with the citations, then [DONE]."""
    yield _chunk(reply, [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
    for piece in reply.pieces:
        yield _chunk(reply, [{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    closing = {
        "citations": [c.model_dump() for c in reply.citations],
        "answerable": reply.answerable,
        "confidence": reply.confidence,
        "feedback": reply.feedback.model_dump(),
    }
    yield _chunk(reply, [{"index": 0, "delta": closing, "finish_reason": "stop"}])
    if include_usage:
        yield _chunk(reply, [], usage=reply.usage.model_dump())
    yield "data: [DONE]\n\n"
