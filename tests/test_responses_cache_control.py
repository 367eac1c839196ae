"""DashScope's explicit cache (``cache_control`` markers) through the Responses API.

A Responses request translated to chat completions carries the caller's markers onto the
chat messages and parts, so DashScope creates the cache and then hits it, and the
Response's usage says so (``cached_tokens``, ``cache_write_tokens``). Other providers get
the markers exactly as a chat-completions call with the same messages would send them. A
model DashScope serves the Responses API for goes to chat when markers ask for the
explicit cache its Responses API lacks; a turn that must pass through reports them and
leaves them out, and the cache figures of what DashScope answers there reach the ledger.
Everything is checked on what reached the fake provider's wire.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from helpers import bodies, bridge, sent

import llm_bridge
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu

DS_KEY = "sk-ds-cachetest"
EPHEMERAL = {"type": "ephemeral"}
DOCUMENT = "西湖位于杭州市西部。" * 200  # past the 1024-token minimum of an explicit cache
CHAT = "/compatible-mode/v1/chat/completions"
RESPONSES = "/compatible-mode/v1/responses"
NATIVE = {"providers": {"dashscope": {"api": "native"}}}


def dashscope(fake: Any, config: Any = None) -> llm_bridge.OpenAI:
    return bridge("dashscope", fake, api_key=DS_KEY, config=config)


def marked_input(question: str = "西湖在哪里？") -> Any:
    """A long system document marked for the explicit cache, then a question (``Any``:
    openai's input types have no ``cache_control``)."""
    document = {"type": "input_text", "text": DOCUMENT, "cache_control": EPHEMERAL}
    return [
        {"role": "system", "content": [document]},
        {"role": "user", "content": question},
    ]


def markers(messages: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """(message index, part index or None for the message itself) of every marker."""
    found: list[tuple[int, Any]] = []
    for index, message in enumerate(messages):
        content = message.get("content")
        for at, part in enumerate(content if isinstance(content, list) else []):
            if isinstance(part, dict) and "cache_control" in part:
                found.append((index, at))
        if "cache_control" in message:
            found.append((index, None))
    return found


# --------------------------------------------------------------------------- DashScope chat


@pytest.mark.parametrize("model", ["qwen-max", "qwen-plus"], ids=["chat-only", "responses"])
def test_markers_reach_dashscope_chat_and_the_cache_is_created_then_hit(model: str) -> None:
    # qwen-max has no Responses endpoint; qwen-plus has one, but its Responses API takes no
    # markers, so a request with them goes to chat completions too.
    fake = FakeDashScopeCompatible(DS_KEY).reply("在杭州。").reply("在杭州。")
    client = dashscope(fake)
    first = client.responses.create(model=model, input=marked_input())
    assert fake.requests[-1].url.path == CHAT
    system = sent(fake)["messages"][0]
    assert system == {
        "role": "system",
        "content": [{"type": "text", "text": DOCUMENT, "cache_control": EPHEMERAL}],
    }
    second = client.responses.create(model=model, input=marked_input("西湖有多大？"))
    assert first.usage is not None and second.usage is not None
    created, hit = first.usage.input_tokens_details, second.usage.input_tokens_details
    assert created.cached_tokens == 0 and created.cache_write_tokens > 0
    assert hit.cached_tokens == created.cache_write_tokens and hit.cache_write_tokens == 0
    # DashScope's own figures stay beside OpenAI's, as chat completions keeps them.
    assert created.model_extra is not None and hit.model_extra is not None
    assert created.model_extra["cache_creation_input_tokens"] == created.cache_write_tokens
    assert hit.model_extra["cache_type"] == "ephemeral"
    # The ledger prices the creation and the hit from the same figures.
    recorded = [record.usage.prompt_tokens_details for record in client.usage.records()]
    assert recorded[0] is not None and recorded[0].cache_write_tokens == created.cache_write_tokens
    assert recorded[1] is not None and recorded[1].cached_tokens == hit.cached_tokens


def test_a_streamed_response_reports_the_cache_too() -> None:
    fake = FakeDashScopeCompatible(DS_KEY).reply("在杭州。").reply("在杭州。", chunk_size=2)
    client = dashscope(fake)
    client.responses.create(model="qwen-max", input=marked_input())
    with client.responses.stream(model="qwen-max", input=marked_input()) as stream:
        final = stream.get_final_response()
    assert sent(fake)["stream"] is True
    assert markers(sent(fake)["messages"]) == [(0, 0)]
    assert final.usage is not None and final.usage.input_tokens_details.cached_tokens > 0


def test_markers_on_every_kind_of_item_and_part_land_where_they_were_put() -> None:
    fake = FakeDashScopeCompatible(DS_KEY).reply("好。")
    given: Any = [
        {"role": "developer", "content": "规则", "cache_control": EPHEMERAL},
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "看图", "cache_control": EPHEMERAL},
                {
                    "type": "input_image",
                    "image_url": "https://example.com/a.png",
                    "cache_control": EPHEMERAL,
                },
            ],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "一", "annotations": []},
                {
                    "type": "output_text",
                    "text": "二",
                    "annotations": [],
                    "cache_control": EPHEMERAL,
                },
            ],
        },
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {
            "type": "function_call_output",
            "call_id": "c1",
            "output": [{"type": "input_text", "text": "结果", "cache_control": EPHEMERAL}],
            "cache_control": EPHEMERAL,
        },
        {"role": "user", "content": "继续"},
    ]
    tool: Any = {"type": "function", "name": "f", "parameters": {"type": "object"}}
    dashscope(fake).responses.create(model="qwen-max", input=given, tools=[tool])
    messages = sent(fake)["messages"]
    assert messages[0]["content"] == "规则" and messages[0]["cache_control"] == EPHEMERAL
    assert messages[1]["content"] == [
        {"type": "text", "text": "看图", "cache_control": EPHEMERAL},
        {
            "type": "image_url",
            "image_url": {"url": "https://example.com/a.png"},
            "cache_control": EPHEMERAL,
        },
    ]
    # An assistant text with a marker stays in parts, so the marker has a place to sit.
    assert messages[2]["role"] == "assistant" and messages[2]["content"] == [
        {"type": "text", "text": "一"},
        {"type": "text", "text": "二", "cache_control": EPHEMERAL},
    ]
    assert messages[2]["tool_calls"][0]["id"] == "c1"
    assert messages[3]["role"] == "tool" and messages[3]["cache_control"] == EPHEMERAL
    assert messages[3]["content"] == [{"type": "text", "text": "结果", "cache_control": EPHEMERAL}]
    assert messages[4] == {"role": "user", "content": "继续"}


def test_the_native_dashscope_api_gets_the_markers_as_its_chat_calls_do() -> None:
    fake = FakeDashScope(DS_KEY).reply("在杭州。").reply("在杭州。")
    client = dashscope(fake, NATIVE)
    first = client.responses.create(model="qwen-plus", input=marked_input())
    assert fake.requests[-1].url.path.endswith("/text-generation/generation")
    system = sent(fake)["input"]["messages"][0]
    assert system["content"] == [{"type": "text", "text": DOCUMENT, "cache_control": EPHEMERAL}]
    second = client.responses.create(model="qwen-plus", input=marked_input())
    assert first.usage is not None and first.usage.input_tokens_details.cache_write_tokens > 0
    assert second.usage is not None and second.usage.input_tokens_details.cached_tokens > 0


# --------------------------------------------------------------------------- continuation


def test_a_continued_conversation_keeps_its_marked_prefix_cached() -> None:
    fake = FakeDashScopeCompatible(DS_KEY).reply("在杭州。").reply("很大。")
    client = dashscope(fake)
    first = client.responses.create(model="qwen-plus", input=marked_input())
    second = client.responses.create(
        model="qwen-plus", input="有多大？", previous_response_id=first.id
    )
    assert fake.requests[-1].url.path == CHAT  # a translated conversation stays translated
    assert markers(sent(fake)["messages"]) == [(0, 0)]
    assert second.usage is not None and second.usage.input_tokens_details.cached_tokens > 0


def test_a_long_conversation_sends_at_most_four_markers_the_newest() -> None:
    # Alibaba's guide marks each new turn; the store keeps every turn's marker, so the
    # history gives up its oldest ones to stay within four a request.
    fake = FakeDashScopeCompatible(DS_KEY)
    for _ in range(6):
        fake.reply("好。")
    client = dashscope(fake)
    previous = None
    for turn in range(6):
        part = {"type": "input_text", "text": f"第{turn}轮", "cache_control": EPHEMERAL}
        given: Any = [{"role": "user", "content": [part]}]
        made = client.responses.create(
            model="qwen-max",
            input=given,
            previous_response_id=previous,
        )
        previous = made.id
    sent_markers = [markers(body["messages"]) for body in bodies(fake, CHAT)]
    assert [len(found) for found in sent_markers] == [1, 2, 3, 4, 4, 4]
    last = bodies(fake, CHAT)[-1]["messages"]
    assert [last[i]["content"][0]["text"] for i, _ in sent_markers[-1]] == [
        "第2轮",
        "第3轮",
        "第4轮",
        "第5轮",
    ]
    assert "cache_control" not in last[0]["content"][0]  # 第0轮's, given up


# --------------------------------------------------------------------------- pass-through


def test_a_turn_that_must_pass_through_reports_the_markers_and_leaves_them_out() -> None:
    fake = FakeDashScopeCompatible(DS_KEY).reply("在杭州。").reply("很大。")
    client = dashscope(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = client.responses.create(model="qwen-plus", input="西湖在哪里？")
    assert fake.requests[-1].url.path == RESPONSES
    # DashScope keeps that conversation: the next turn must go to it, where explicit-cache
    # markers do nothing (its Responses API caches with its session cache instead).
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match=r"input\[0\]\.content\[0\]"):
        client.responses.create(
            model="qwen-plus", input=marked_input()[:1], previous_response_id=first.id
        )
    assert fake.requests[-1].url.path == RESPONSES
    body = sent(fake)
    assert body["previous_response_id"] == first.id
    assert "cache_control" not in json.dumps(body)
    assert body["input"][0]["content"][0]["text"] == DOCUMENT


def test_the_error_policy_refuses_such_a_turn_before_sending() -> None:
    fake = FakeDashScopeCompatible(DS_KEY).reply("在杭州。")
    client = dashscope(fake, {"policy": {"unsupported_params": "error"}})
    first = client.responses.create(model="qwen-plus", input="西湖在哪里？")
    with pytest.raises(llm_bridge.BadRequestError, match="cache_control"):
        client.responses.create(
            model="qwen-plus", input=marked_input(), previous_response_id=first.id
        )
    assert len(fake.requests) == 1


def test_the_cache_figures_of_a_passed_through_response_reach_the_ledger() -> None:
    # DashScope's own Responses API (its session cache) reports a cache write; the ledger,
    # which prices writes and reads apart, gets it in chat's names.
    details = {"cached_tokens": 0, "cache_write_tokens": 1200, "cache_type": "ephemeral"}
    usage = {
        "input_tokens": 1300,
        "input_tokens_details": details,
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 1305,
    }
    part = {"type": "output_text", "text": "在杭州。", "annotations": []}
    answer = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1,
        "model": "qwen-plus",
        "status": "completed",
        "output": [
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [part],
            }
        ],
        "usage": usage,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }
    fake = FakeDashScopeCompatible(DS_KEY).raw(
        200, json.dumps(answer), {"content-type": "application/json"}
    )
    client = dashscope(fake)
    response = client.responses.create(model="qwen-plus", input="西湖在哪里？")
    assert fake.requests[-1].url.path == RESPONSES
    assert response.usage is not None
    assert response.usage.input_tokens_details.cache_write_tokens == 1200
    recorded = client.usage.records()[-1].usage.prompt_tokens_details
    assert recorded is not None and recorded.cache_write_tokens == 1200
    assert (recorded.model_extra or {}).get("cache_type") == "ephemeral"


def test_a_request_without_markers_still_passes_through() -> None:
    fake = FakeDashScopeCompatible(DS_KEY).reply("在杭州。")
    dashscope(fake).responses.create(model="qwen-plus", input=[{"role": "user", "content": "嗨"}])
    assert fake.requests[-1].url.path == RESPONSES


# --------------------------------------------------------------------------- other providers


CHAT_MESSAGES: Any = [
    {
        "role": "system",
        "content": [{"type": "text", "text": DOCUMENT, "cache_control": EPHEMERAL}],
        "cache_control": EPHEMERAL,
    },
    {"role": "user", "content": [{"type": "text", "text": "问", "cache_control": EPHEMERAL}]},
]
RESPONSES_INPUT: Any = [
    {
        "role": "system",
        "content": [{"type": "input_text", "text": DOCUMENT, "cache_control": EPHEMERAL}],
        "cache_control": EPHEMERAL,
    },
    {"role": "user", "content": [{"type": "input_text", "text": "问", "cache_control": EPHEMERAL}]},
]


@pytest.mark.parametrize(
    ("provider", "fake", "model", "key"),
    [
        ("zhipu", FakeZhipu, "glm-4-flash", "id.secret"),
        ("qianfan", FakeQianfanV2, "ernie-4.5-turbo-128k", "bce-v3/ALTAK-x/y"),
        ("dashscope", FakeDashScopeCompatible, "qwen-max", DS_KEY),
    ],
)
def test_every_provider_gets_what_chat_completions_sends_it(
    provider: str, fake: Any, model: str, key: str
) -> None:
    chat_fake = fake(key).reply("好")
    bridge(provider, chat_fake, api_key=key).chat.completions.create(
        model=model, messages=CHAT_MESSAGES
    )
    responses_fake = fake(key).reply("好")
    bridge(provider, responses_fake, api_key=key).responses.create(
        model=model, input=RESPONSES_INPUT
    )
    assert sent(responses_fake)["messages"] == sent(chat_fake)["messages"]
