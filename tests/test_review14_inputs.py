"""Review 14, inputs: embeddings, content parts, token counts and models as an openai user
sends them to each provider (regressions found by the review)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from helpers import bridge

from llm_bridge import BadRequestError, NotFoundError
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu
from llm_bridge.tokens import count_message_tokens, count_tokens

NATIVE = {"providers": {"dashscope": {"api": "native"}}}
QIANFAN_KEY = "bce-v3/ALTAK-inputs01/0a1b2c3d4e5f"

#: (provider, fake, constructor options, model, its max_input_tokens in the catalogue)
EMBEDDERS: list[tuple[str, Any, dict[str, Any], str, int]] = [
    ("zhipu", lambda: FakeZhipu(), {"api_key": "id.secret"}, "embedding-3", 3072),
    ("qianfan", lambda: FakeQianfanV2(QIANFAN_KEY), {"api_key": QIANFAN_KEY}, "embedding-v1", 384),
    (
        "dashscope",
        lambda: FakeDashScopeCompatible("sk-test"),
        {"api_key": "sk-test"},
        "text-embedding-v4",
        8192,
    ),
    (
        "dashscope",
        lambda: FakeDashScope("sk-test"),
        {"api_key": "sk-test", "config": NATIVE},
        "text-embedding-v2",
        2048,
    ),
]
by_embedder = pytest.mark.parametrize(
    ("provider", "make", "options", "model", "limit"),
    EMBEDDERS,
    ids=["zhipu", "qianfan", "dashscope", "dashscope-native"],
)


@by_embedder
def test_an_embedding_text_far_beyond_the_model_limit_is_refused_naming_the_limit(
    provider: str, make: Any, options: dict[str, Any], model: str, limit: int
):
    fake = make()
    client = bridge(provider, fake, **options)
    client.embeddings.create(model=model, input="字" * (limit // 2))  # within: sent
    assert len(fake.requests) == 1
    with pytest.raises(BadRequestError) as caught:
        client.embeddings.create(model=model, input=["short", "word " * (4 * limit)])
    assert f"maximum context length is {limit} tokens" in caught.value.message
    assert "input[1]" in caught.value.message
    assert caught.value.code == "context_length_exceeded"
    assert len(fake.requests) == 1


def test_an_exactly_counted_text_just_over_the_limit_is_refused():
    """DashScope counts with Qwen's own vocabulary: one token over is over."""
    fake = FakeDashScopeCompatible("sk-test")
    client = bridge("dashscope", fake, api_key="sk-test")
    with pytest.raises(BadRequestError, match="8192 tokens, however you requested 8193"):
        client.embeddings.create(model="text-embedding-v4", input=" a" * 8193)
    assert fake.requests == []


# --------------------------------------------------------------------------- content parts

FILE_PART = {"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}
AUDIO_PART = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}
#: (provider, fake, constructor options, a vision model, the part it cannot take)
PART_REFUSERS: list[tuple[str, Any, dict[str, Any], str, dict[str, Any]]] = [
    ("zhipu", lambda: FakeZhipu(), {"api_key": "id.secret"}, "glm-4v-plus", FILE_PART),
    (
        "qianfan",
        lambda: FakeQianfanV2(QIANFAN_KEY),
        {"api_key": QIANFAN_KEY},
        "ernie-4.5-turbo-vl-32k",
        AUDIO_PART,
    ),
    (
        "qianfan",
        lambda: FakeQianfanV2(QIANFAN_KEY),
        {"api_key": QIANFAN_KEY},
        "ernie-4.5-turbo-vl-32k",
        FILE_PART,
    ),
    (
        "dashscope",
        lambda: FakeDashScope("sk-test"),
        {"api_key": "sk-test", "config": NATIVE},
        "qwen3-vl-plus",
        FILE_PART,
    ),
]


@pytest.mark.parametrize(
    ("provider", "make", "options", "model", "part"),
    PART_REFUSERS,
    ids=["zhipu-file", "qianfan-audio", "qianfan-file", "dashscope-native-file"],
)
def test_a_part_the_provider_cannot_take_is_refused_naming_part_and_provider(
    provider: str, make: Any, options: dict[str, Any], model: str, part: dict[str, Any]
):
    fake = make()
    client = bridge(provider, fake, **options)
    content = [{"type": "text", "text": "what is this?"}, part]
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": content}])
    assert f"messages[0].content[1] is a part of type {part['type']!r}" in caught.value.message
    assert f"which {provider} cannot take" in caught.value.message
    assert caught.value.param == "messages[0].content[1].type"
    assert fake.requests == []


def test_qianfan_refuses_an_image_in_a_system_message_rather_than_dropping_it():
    fake = FakeQianfanV2(QIANFAN_KEY)
    client = bridge("qianfan", fake, api_key=QIANFAN_KEY)
    system = [
        {"type": "text", "text": "Describe images."},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
    ]
    messages: Any = [{"role": "system", "content": system}, {"role": "user", "content": "hi"}]
    with pytest.raises(BadRequestError, match="system message with a part of type 'image_url'"):
        client.chat.completions.create(model="ernie-4.5-turbo-vl-32k", messages=messages)
    assert fake.requests == []


# --------------------------------------------------------------------------- models


def test_retrieving_a_misspelt_model_suggests_the_catalogued_names():
    client = bridge("dashscope", FakeDashScopeCompatible("sk-test"), api_key="sk-test")
    with pytest.raises(NotFoundError) as caught:
        client.models.retrieve("Qwen-Pls")
    assert "not in the dashscope catalogue; did you mean 'qwen-plus'" in caught.value.message
    assert caught.value.code == "model_not_found"


# --------------------------------------------------------------------------- tokens

WEATHER_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "查询某个城市的天气情况，返回温度、湿度和风力。" * 20,
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string", "description": "城市名称"}},
            "required": ["city"],
        },
    },
}


def test_tool_definitions_count_towards_the_prompt():
    messages: Any = [{"role": "user", "content": "北京今天天气怎么样？"}]
    bare = count_message_tokens(messages, "qwen-plus", provider="dashscope")
    with_tools = count_message_tokens(
        messages, "qwen-plus", provider="dashscope", tools=[WEATHER_TOOL]
    )
    assert with_tools - bare == count_tokens(
        json.dumps([WEATHER_TOOL], ensure_ascii=False), "qwen-plus", provider="dashscope"
    )


def test_usage_counted_here_counts_the_tools_too():
    """A stream closed before the provider's usage: the estimate is the prompt's,
    tool definitions included, as the provider bills them."""
    fake = FakeDashScopeCompatible().reply("一二三四五六七八九十", chunk_size=1)
    client = bridge("dashscope", fake, api_key="sk-test")
    messages: Any = [{"role": "user", "content": "北京今天天气怎么样？"}]
    stream = client.chat.completions.create(
        model="qwen-plus", messages=messages, tools=[WEATHER_TOOL], stream=True
    )
    next(iter(stream))
    stream.close()
    (record,) = client.usage.records()
    assert record.estimated
    with_tools = count_message_tokens(
        messages, "qwen-plus", provider="dashscope", api="compatible", tools=[WEATHER_TOOL]
    )
    assert record.usage.prompt_tokens == with_tools


def test_tools_that_overflow_the_context_window_are_refused_before_sending():
    """The tools alone take the window: the provider would refuse (and may bill)."""
    fake = FakeZhipu()
    client = bridge("zhipu", fake, api_key="id.secret")
    tools = [
        {**WEATHER_TOOL, "function": {**WEATHER_TOOL["function"], "name": f"tool_{i}"}}
        for i in range(30)
    ]
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(
            model="glm-4-airx", messages=[{"role": "user", "content": "hi"}], tools=tools
        )
    assert caught.value.code == "context_length_exceeded"
    assert fake.requests == []


def test_embeddings_answered_out_of_order_come_back_in_input_order():
    """OpenAI answers in input order and langchain zips vectors with texts by position."""

    def handler(request: httpx.Request) -> httpx.Response:
        data = [
            {"object": "embedding", "index": i, "embedding": [float(i), 0.5]}
            for i in reversed(range(3))
        ]
        usage = {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}
        return httpx.Response(
            200, json={"object": "list", "model": "embedding-3", "data": data, "usage": usage}
        )

    client = bridge("zhipu", handler, api_key="id.secret")
    result = client.embeddings.create(model="embedding-3", input=["a", "b", "c"])
    assert [item.index for item in result.data] == [0, 1, 2]
    assert [item.embedding[0] for item in result.data] == [0.0, 1.0, 2.0]
