"""The OpenAI-compatible endpoints, driven by the official openai client against a real server."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import start_server, stop_server

openai = pytest.importorskip("openai", reason="the /v1 tests need the openai client: pip install -e '.[test]'")

HAIAN = "haian-central-town-reform"
HAIAN_TITLE = "关于中心镇行政管理体制改革的实践与思考"
ZHENJIANG = "zhenjiang-subdistrict-npc-work"
QUESTION = "海安县首批下放了多少项行政权力事项？"
KEY = "sk-policyqa-test-key"


@pytest.fixture()
def client(server):
    with openai.OpenAI(base_url=f"{server}/v1", api_key="unused", max_retries=0, timeout=60) as http:
        yield http


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def test_models_lists_policyqa(client, server):
    models = client.models.list()
    assert [m.id for m in models] == ["policyqa"]
    assert models.data[0].owned_by == "policyqa" and models.data[0].created > 0
    assert client.models.retrieve("policyqa").id == "policyqa"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_completion_answers_with_markers_sources_and_citations(client):
    completion = client.chat.completions.create(model="policyqa", messages=[user(QUESTION)])
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    content = choice.message.content
    answer, sources = content.split("\n\n来源：\n")
    assert "341项" in answer and "[1]" in answer
    assert f"- [1] {HAIAN_TITLE} · 一、主要做法 › （二）推进权力下放" in sources.splitlines()
    citations = choice.message.citations  # the extra field, kept by the client
    assert citations[0]["doc_id"] == HAIAN and citations[0]["n"] == 1
    assert {"title", "section", "chunk_id", "text", "highlights", "score", "weak"} <= set(citations[0])
    quoted = [citations[0]["text"][h["start"] : h["end"]] for h in citations[0]["highlights"]]
    assert any("341项" in q for q in quoted)
    assert choice.message.answerable is True
    assert 0.0 < choice.message.confidence <= 1.0  # the extension field: the calibrated confidence
    # Usage counts characters: the question's, and the reply's.
    assert completion.usage.prompt_tokens == len(QUESTION)
    assert completion.usage.completion_tokens == len(content)
    assert completion.usage.total_tokens == len(QUESTION) + len(content)


def test_same_citations_as_api_ask(client, server):
    completion = client.chat.completions.create(model="policyqa", messages=[user(QUESTION)])
    asked = httpx.post(f"{server}/api/ask", json={"question": QUESTION}, timeout=60).json()
    assert completion.choices[0].message.citations == asked["citations"]
    lead = f"答：{asked['short_answer']['text']}\n\n" if asked["short_answer"] else ""
    assert lead == "答：341项\n\n"  # the short answer comes first, then the quotes that prove it
    assert completion.choices[0].message.content.startswith(lead + asked["answer"] + "\n\n")


def test_streamed_completion(client):
    stream = client.chat.completions.create(
        model="policyqa", messages=[user(QUESTION)], stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 2 and all(p.count("[") == p.count("]") for p in pieces)  # markers arrive whole
    last = [c for c in chunks if c.choices][-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.choices[0].delta.citations[0]["doc_id"] == HAIAN
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(content)
    plain = client.chat.completions.create(model="policyqa", messages=[user(QUESTION)])
    assert content == plain.choices[0].message.content


def test_stream_ends_with_done(server):
    body = {"model": "policyqa", "messages": [user(QUESTION)], "stream": True}
    response = httpx.post(f"{server}/v1/chat/completions", json=body, timeout=60)
    assert response.headers["content-type"].startswith("text/event-stream")
    frames = [f for f in response.text.split("\n\n") if f.strip()]
    assert frames[-1] == "data: [DONE]" and all(f.startswith("data: ") for f in frames)


def test_followup_conversation_stays_on_the_document(client):
    first = client.chat.completions.create(model="policyqa", messages=[user("镇江市除31个镇外共有多少个街道？")])
    messages = [
        {"role": "system", "content": "You are a helpful assistant."},  # front ends send one; it is not used
        user("镇江市除31个镇外共有多少个街道？"),
        {"role": "assistant", "content": first.choices[0].message.content},
        user("那京口区呢？"),
    ]
    followup = client.chat.completions.create(model="policyqa", messages=messages)
    message = followup.choices[0].message
    assert "京口6个" in message.content and message.citations[0]["doc_id"] == ZHENJIANG
    document = client.chat.completions.create(
        model="policyqa",
        messages=[*messages[:3], {"role": "user", "content": [{"type": "text", "text": "这篇文章的作者是谁？"}]}],
    )
    assert "王丰江" in document.choices[0].message.content
    assert {c["doc_id"] for c in document.choices[0].message.citations} == {ZHENJIANG}


def test_declined_question_lists_the_nearest_passages(client):
    completion = client.chat.completions.create(model="policyqa", messages=[user("红烧肉怎么做才好吃？")])
    message = completion.choices[0].message
    assert message.answerable is False and "[1]" not in message.content.split("\n\n")[0]
    assert "最接近的段落" in message.content and all(c["weak"] for c in message.citations)


def test_ignored_parameters_and_our_own_options(client):
    completion = client.chat.completions.create(
        model="policyqa",
        messages=[user(QUESTION)],
        temperature=0.2,
        top_p=0.9,
        max_tokens=5,
        presence_penalty=0.1,
        seed=1,
        stop=["。"],
        user="someone",
        n=1,
        extra_body={"top_k": 2, "doc_ids": [HAIAN]},
    )
    citations = completion.choices[0].message.citations
    assert len(citations) == 2 and {c["doc_id"] for c in citations} == {HAIAN}
    assert "341项" in completion.choices[0].message.content  # answers are quoted whole, never cut at max_tokens


def error_of(call) -> tuple[int, dict]:
    with pytest.raises(openai.APIStatusError) as caught:
        call()
    return caught.value.status_code, caught.value.body


@pytest.mark.parametrize(
    ("kwargs", "status", "param", "code"),
    [
        ({"messages": []}, 400, "messages", "invalid_value"),
        ({"messages": [{"role": "assistant", "content": "你好"}]}, 400, "messages", "no_user_message"),
        ({"messages": [user("问"), {"role": "assistant", "content": "答"}]}, 400, "messages.[1].role", "invalid_value"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, 400, "messages.[0].role", None),
        ({"messages": [{"role": "wizard", "content": "x"}]}, 400, "messages.[0].role", "invalid_value"),
        ({"messages": [user("  ")]}, 400, "messages.[0].content", "invalid_value"),
        ({"messages": [user("街" * 1001)]}, 400, "messages.[0].content", "string_above_max_length"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
            400,
            "messages.[0].content",
            "unsupported_content",
        ),
        ({"messages": [user(QUESTION)], "n": 2}, 400, "n", "unsupported_value"),
        ({"messages": [user(QUESTION)], "logprobs": True}, 400, "logprobs", "unsupported_value"),
        ({"messages": [user(QUESTION)], "tool_choice": "required"}, 400, "tool_choice", "unsupported_value"),
        ({"messages": [user(QUESTION)], "response_format": {"type": "json_object"}}, 400, "response_format", None),
        ({"messages": [user(QUESTION)], "model": "gpt-4o"}, 404, "model", "model_not_found"),
        ({"messages": [user(QUESTION)], "extra_body": {"doc_ids": ["nope"]}}, 400, "doc_ids", "unknown_document"),
        ({"messages": [user(QUESTION)], "extra_body": {"top_k": 99}}, 400, "top_k", "invalid_value"),
    ],
    ids=[
        "no-messages",
        "no-user-message",
        "last-not-user",
        "tool-role",
        "unknown-role",
        "blank-question",
        "long-question",
        "image-part",
        "n-2",
        "logprobs",
        "forced-tool",
        "json-format",
        "unknown-model",
        "unknown-document",
        "top-k",
    ],
)
def test_errors_in_openai_shape(client, kwargs, status, param, code):
    kwargs = {"model": "policyqa", **kwargs}
    got_status, body = error_of(lambda: client.chat.completions.create(**kwargs))
    assert got_status == status
    assert set(body) == {"message", "type", "param", "code"} and body["message"]
    assert body["param"] == param
    if code:
        assert body["code"] == code
    assert body["type"] == ("not_found_error" if status == 404 else "invalid_request_error")


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b'{"model": "policyqa", "messages": [', {"content-type": "application/json"}),
        (b"\xff\xfe not utf-8", {"content-type": "application/json"}),
        (b"[1, 2]", {"content-type": "application/json"}),
    ],
    ids=["truncated", "not-utf8", "not-an-object"],
)
def test_malformed_bodies_are_400s_in_openai_shape(server, content, headers):
    response = httpx.post(f"{server}/v1/chat/completions", content=content, headers=headers, timeout=30)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]


def test_a_served_path_asked_with_another_method_is_a_405_naming_the_right_one(server):
    for method, path, allowed in (("PUT", "/v1/chat/completions", "POST"), ("DELETE", "/v1/models/policyqa", "GET"),
                                  ("POST", "/v1/models", "GET")):  # fmt: skip
        response = httpx.request(method, f"{server}{path}", json={})
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed
        assert response.json()["error"]["code"] == "method_not_allowed"
    assert httpx.put(f"{server}/v1/embeddings", json={}).status_code == 404


def test_other_routes_keep_their_own_error_shape(server):
    assert httpx.post(f"{server}/api/ask", json={}, timeout=30).json()["error"]["code"] == "invalid_request"
    unknown = httpx.post(f"{server}/v1/embeddings", json={"input": "x"}, timeout=30)
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"


@pytest.fixture(scope="module")
def keyed_server(seed_data_dir):
    process, url = start_server(
        {
            "POLICYQA_DATA_DIR": str(seed_data_dir),
            "POLICYQA_BUILD_ON_START": "false",
            "POLICYQA_OPENAI_API_KEYS": f"sk-other, {KEY}",
        }
    )
    yield url
    output = stop_server(process)
    assert "Traceback" not in output and KEY not in output


def test_api_keys_when_configured(keyed_server):
    with openai.OpenAI(base_url=f"{keyed_server}/v1", api_key=KEY, max_retries=0, timeout=60) as good:
        assert [m.id for m in good.models.list()] == ["policyqa"]
        completion = good.chat.completions.create(model="policyqa", messages=[user(QUESTION)])
        assert "341项" in completion.choices[0].message.content
    for wrong in ("sk-wrong", KEY + "x", KEY[:-1]):
        with openai.OpenAI(base_url=f"{keyed_server}/v1", api_key=wrong, max_retries=0, timeout=60) as bad:
            status, body = error_of(
                lambda bad=bad: bad.chat.completions.create(model="policyqa", messages=[user("问")])
            )
            assert status == 401 and body["code"] == "invalid_api_key" and body["type"] == "authentication_error"
            with pytest.raises(openai.AuthenticationError):
                bad.models.list()
    missing = httpx.get(f"{keyed_server}/v1/models", timeout=30)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_api_key"
    # The keys guard /v1 only: the rest of the API is as open as before.
    assert httpx.get(f"{keyed_server}/api/health", timeout=30).status_code == 200
