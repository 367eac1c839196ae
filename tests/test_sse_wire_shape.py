"""The OpenAI SSE llm-bridge writes (for a plain openai client and the gateway) is shaped
as OpenAI's own: a delta names only what it carries, with no null ``audio``,
``function_call``, ``refusal``, ``role`` or ``tool_calls`` keys (GitHub Copilot refuses
chunks with keys OpenAI never sends), while every choice keeps ``logprobs`` and
``finish_reason``, which OpenAI always sends, null or not."""

from __future__ import annotations

import json
from typing import Any

import openai
from helpers import HELLO, ZHIPU_ROOT, sse_payloads, upstream

import llm_bridge
from llm_bridge._front import sse_events
from llm_bridge._shapes.chat.chat_completion_chunk import ChatCompletionChunk
from llm_bridge.testing import FakeZhipu, Raw, ToolCallSpec

KEY = "id.secret"


def _written(fake: Any, **params: Any) -> list[dict[str, Any]]:
    """The chunks a plain openai client reads through `llm_bridge.http_client`, as JSON."""
    client = openai.OpenAI(
        api_key=KEY,
        base_url=ZHIPU_ROOT,
        http_client=llm_bridge.http_client(http_client=upstream(fake)),
    )
    with client.chat.completions.with_streaming_response.create(
        model="glm-4-plus", messages=HELLO, stream=True, **params
    ) as response:
        body = response.read()
    return [json.loads(p) for p in sse_payloads(body) if p != "[DONE]"]


def test_a_text_stream_is_written_as_openai_writes_it() -> None:
    fake = FakeZhipu(api_key=KEY).reply("你好呀", chunk_size=1)
    chunks = _written(fake, stream_options={"include_usage": True})
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0] == {"role": "assistant", "content": "你"}
    assert deltas[1:3] == [{"content": "好"}, {"content": "呀"}]
    for chunk in chunks:
        assert None not in chunk.values()
        for choice in chunk["choices"]:
            assert set(choice) == {"index", "delta", "logprobs", "finish_reason"}
            assert None not in choice["delta"].values()
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] > 0


def test_tool_call_chunks_name_only_what_they_carry() -> None:
    fake = FakeZhipu(api_key=KEY).reply(tool_calls=[ToolCallSpec("get_weather", {"city": "北京"})])
    chunks = _written(fake, tools=[{"type": "function", "function": {"name": "get_weather"}}])
    choices = [choice for c in chunks for choice in c["choices"]]
    (call,) = [call for choice in choices for call in choice["delta"].get("tool_calls", ())]
    assert set(call) == {"index", "id", "type", "function"}
    assert set(call["function"]) == {"name", "arguments"}
    assert choices[-1] == {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "tool_calls"}
    assert all(set(choice) == {"index", "delta", "logprobs", "finish_reason"} for choice in choices)


def test_a_lone_surrogate_is_written_with_the_same_shape() -> None:
    """Text pydantic-core cannot write (a provider's ``\\ud800`` escape) takes the standard
    library's way, shaped alike."""
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "glm-4-plus",
            "choices": [{"index": 0, "delta": {"content": "a\ud800"}}],
        }
    )
    (payload,) = sse_payloads(sse_events(chunk))
    assert "\\ud800" in payload
    assert json.loads(payload)["choices"] == [
        {"index": 0, "delta": {"content": "a\ud800"}, "logprobs": None, "finish_reason": None}
    ]


def test_log_probabilities_and_a_finish_reason_are_written_as_given() -> None:
    logprobs = {"content": [{"token": "a", "logprob": -0.5, "bytes": [97], "top_logprobs": []}]}
    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "glm-4-plus",
            "choices": [
                {"index": 0, "delta": {"content": "a"}, "logprobs": logprobs},
                {"index": 1, "delta": {}, "finish_reason": "stop"},
                {"index": 2, "delta": {}, "finish_reason": "length", "logprobs": logprobs},
            ],
        }
    )
    (payload,) = sse_payloads(sse_events(chunk))
    assert [
        (c["index"], c["logprobs"], c["finish_reason"]) for c in json.loads(payload)["choices"]
    ] == [(0, logprobs, None), (1, None, "stop"), (2, logprobs, "length")]


def test_a_provider_field_sent_as_null_is_kept() -> None:
    """Thinking models' content deltas carry ``"reasoning_content": null`` (DeepSeek,
    DashScope), and code written to their docs reads ``delta.reasoning_content`` on every
    chunk: openai's types have that attribute only if the JSON holds the key."""
    head = {"id": "t", "created": 1, "model": "glm-4-plus"}
    deltas = [
        ({"role": "assistant", "reasoning_content": "想"}, None),
        ({"content": "好", "reasoning_content": None}, None),
        ({"content": "", "reasoning_content": None}, "stop"),
    ]
    events = [
        {**head, "choices": [{"index": 0, "delta": d, "finish_reason": f}]} for d, f in deltas
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    answer = Raw(200, body + b"data: [DONE]\n\n", {"content-type": "text/event-stream"})
    chunks = _written(FakeZhipu(api_key=KEY).then(answer))
    assert [c["choices"][0]["delta"] for c in chunks] == [
        {"role": "assistant", "reasoning_content": "想"},
        {"content": "好", "reasoning_content": None},
        {"content": "", "reasoning_content": None},
    ]
