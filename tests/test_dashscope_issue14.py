"""DashScope, issue 14: compatible mode by default, multimodal routing of Qwen3.5+, the word
JSON, json_schema and thinking, reasoning_effort, token-limit names, cache tiers, key and
region errors, Coding-Plan keys, and embeddings beyond one batch, through the real openai
client against the fakes."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge import AuthenticationError, BadRequestError
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible

KEY = "sk-test"
HELLO = [{"role": "user", "content": "你好"}]
NATIVE = {"providers": {"dashscope": {"api": "native"}}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
SCHEMA = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}


def bridge(fake: Any, config: Any = None, key: str = KEY) -> llm_bridge.OpenAI:
    return llm_bridge.OpenAI(
        provider="dashscope",
        api_key=key,
        config=config,
        http_client=httpx.Client(transport=fake.transport()),
    )


def plain(fake: Any, base_url: str) -> openai.OpenAI:
    upstream = httpx.Client(transport=fake.transport())
    return openai.OpenAI(
        api_key=KEY, base_url=base_url, http_client=llm_bridge.http_client(http_client=upstream)
    )


# ------------------------------------------------------------------ 1. compatible by default


def test_the_default_is_compatible_mode_and_native_keeps_working() -> None:
    compat = FakeDashScopeCompatible(KEY)
    bridge(compat).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert compat.requests[0].url.path == "/compatible-mode/v1/chat/completions"
    native = FakeDashScope(KEY)
    bridge(native, NATIVE).chat.completions.create(model="qwen-plus", messages=HELLO)
    assert native.requests[0].url.path.endswith("/text-generation/generation")


def test_hong_kong_is_a_region() -> None:
    fake = FakeDashScopeCompatible(KEY, host="cn-hongkong.dashscope.aliyuncs.com")
    client = bridge(fake, {"providers": {"dashscope": {"region": "hk"}}})
    client.chat.completions.create(model="qwen-plus", messages=HELLO)
    assert fake.requests[0].url.host == "cn-hongkong.dashscope.aliyuncs.com"


def test_a_native_base_url_selects_the_native_wire() -> None:
    fake = FakeDashScope(KEY)
    client = llm_bridge.OpenAI(
        provider="dashscope",
        api_key=KEY,
        base_url="https://dashscope.aliyuncs.com/api/v1",
        http_client=httpx.Client(transport=fake.transport()),
    )
    client.chat.completions.create(model="qwen-plus", messages=HELLO)
    assert fake.requests[0].url.path.endswith("/text-generation/generation")


# ------------------------------------------------------------------ 2. multimodal routing


@pytest.mark.parametrize("model", ["qwen3.5-plus", "qwen3.6-plus", "qwen3.7-plus"])
def test_qwen35_plus_models_use_the_multimodal_endpoint_natively(model: str) -> None:
    fake = FakeDashScope(KEY)
    result = bridge(fake, NATIVE).chat.completions.create(model=model, messages=HELLO)
    assert fake.requests[0].url.path.endswith("/multimodal-generation/generation")
    assert result.choices[0].message.content


def test_the_fake_refuses_a_multimodal_model_on_the_text_path() -> None:
    fake = FakeDashScope(KEY)
    response = fake.handler(
        httpx.Request(
            "POST",
            "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": "qwen3.6-plus", "input": {"messages": HELLO}, "parameters": {}},
        )
    )
    assert response.status_code == 400 and b"url error" in response.read()


# ------------------------------------------------------------------ 3. JSON


@pytest.mark.parametrize("config", [None, NATIVE], ids=["compatible", "native"])
def test_json_object_gets_the_word_json_and_passes_the_fake(config: Any) -> None:
    fake = FakeDashScope(KEY) if config else FakeDashScopeCompatible(KEY)
    system = [{"role": "system", "content": "Be brief."}, *HELLO]
    bridge(fake, config).chat.completions.create(
        model="qwen-plus", messages=system, response_format={"type": "json_object"}
    )
    body = fake.last_json
    messages = body["input"]["messages"] if config else body["messages"]
    assert messages[0]["content"] == "Be brief.\n\nAnswer in JSON."


@pytest.mark.parametrize("config", [None, NATIVE], ids=["compatible", "native"])
def test_json_schema_on_a_hybrid_thinking_call_turns_thinking_off(config: Any) -> None:
    fake = FakeDashScope(KEY) if config else FakeDashScopeCompatible(KEY)
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="non-thinking"):
        bridge(fake, config).chat.completions.create(
            model="qwen3.6-plus", messages=HELLO, response_format=SCHEMA, reasoning_effort="high"
        )
    body = fake.last_json
    fields = body["parameters"] if config else body
    assert fields["enable_thinking"] is False and fields["response_format"] == SCHEMA
    assert "thinking_budget" not in fields


# ------------------------------------------------------------------ 7. reasoning


@pytest.mark.parametrize("config", [None, NATIVE], ids=["compatible", "native"])
def test_reasoning_effort_maps_to_enable_thinking_and_a_budget_under_the_limit(
    config: Any,
) -> None:
    fake = FakeDashScope(KEY) if config else FakeDashScopeCompatible(KEY)
    fake.reply("答", reasoning_content="想")
    result = bridge(fake, config).chat.completions.create(
        model="qwen3.6-plus", messages=HELLO, reasoning_effort="high", max_tokens=1000
    )
    body = fake.last_json
    fields = body["parameters"] if config else body
    assert fields["enable_thinking"] is True and fields["thinking_budget"] == 500
    assert result.choices[0].message.reasoning_content == "想"  # type: ignore[attr-defined]


def test_a_thinking_only_model_refuses_none_before_sending() -> None:
    fake = FakeDashScopeCompatible(KEY)
    with pytest.raises(BadRequestError, match="always thinks"):
        bridge(fake).chat.completions.create(
            model="qwen3.8-max", messages=HELLO, reasoning_effort="none"
        )
    assert fake.requests == []


def test_the_fake_refuses_enable_thinking_false_on_a_thinking_only_model() -> None:
    fake = FakeDashScopeCompatible(KEY)
    with pytest.raises(BadRequestError, match="restricted to True"):
        bridge(fake).chat.completions.create(
            model="qwen3.8-max", messages=HELLO, stream=False, extra_body={"enable_thinking": False}
        )


def test_forced_tool_choice_turns_thinking_off_on_a_hybrid_model() -> None:
    fake = FakeDashScopeCompatible(KEY)
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="thinking mode"):
        bridge(fake).chat.completions.create(
            model="qwen-plus",
            messages=HELLO,
            tools=[TOOL],
            tool_choice="required",
            reasoning_effort="medium",
        )
    assert fake.last_json["enable_thinking"] is False


def test_a_callers_thinking_budget_over_the_limit_is_cut() -> None:
    fake = FakeDashScopeCompatible(KEY)
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="thinking_budget"):
        bridge(fake).chat.completions.create(
            model="qwen-plus",
            messages=HELLO,
            max_completion_tokens=16384,
            extra_body={"enable_thinking": True, "thinking_budget": 32768},
            stream=True,
        ).close()
    assert fake.last_json["thinking_budget"] == 8192


def test_streamed_reasoning_content_arrives_in_deltas_compatible() -> None:
    fake = FakeDashScopeCompatible(KEY).reply("答案", reasoning_content="推理")
    stream = bridge(fake).chat.completions.create(model="qwen-plus", messages=HELLO, stream=True)
    pieces = [getattr(c.choices[0].delta, "reasoning_content", None) for c in stream if c.choices]
    assert "推理" in "".join(p for p in pieces if p)


# ------------------------------------------------------------------ 8. token-limit names


def test_token_limits_are_max_completion_tokens_compatible_and_max_tokens_native() -> None:
    compat = FakeDashScopeCompatible(KEY)
    bridge(compat).chat.completions.create(model="qwen-max", messages=HELLO, max_tokens=100)
    assert compat.last_json["max_completion_tokens"] == 100
    assert "max_tokens" not in compat.last_json
    native = FakeDashScope(KEY)
    bridge(native, NATIVE).chat.completions.create(
        model="qwen-max", messages=HELLO, max_completion_tokens=100
    )
    assert native.last_json["parameters"]["max_tokens"] == 100


# ------------------------------------------------------------------ 6. cache tiers


@pytest.mark.parametrize("config", [None, NATIVE], ids=["compatible", "native"])
def test_cache_control_passes_and_creation_then_hit_are_reported(config: Any) -> None:
    fake = FakeDashScope(KEY) if config else FakeDashScopeCompatible(KEY)
    long = "代码" * 300
    part = {"type": "text", "text": long, "cache_control": {"type": "ephemeral"}}
    messages = [{"role": "system", "content": [part]}, *HELLO]
    client = bridge(fake, config)
    first = client.chat.completions.create(model="qwen-plus", messages=messages)
    sent = fake.last_json["input"]["messages"] if config else fake.last_json["messages"]
    assert sent[0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    second = client.chat.completions.create(model="qwen-plus", messages=messages)
    created = first.usage.prompt_tokens_details  # type: ignore[union-attr]
    hit = second.usage.prompt_tokens_details  # type: ignore[union-attr]
    assert created.cached_tokens == 0 and created.cache_write_tokens > 0  # type: ignore[union-attr,operator]
    assert created.model_extra["cache_creation_input_tokens"] == created.cache_write_tokens  # type: ignore[union-attr,index]
    assert hit.cached_tokens == created.cache_write_tokens  # type: ignore[union-attr]


def test_catalogue_cache_prices() -> None:
    info = llm_bridge.load_config(None).provider("dashscope").model("qwen3.6-plus")
    assert info is not None and info.input_price is not None
    assert info.cached_input_price == info.input_price * 2 / 10
    assert info.cache_creation_price == info.input_price * 125 / 100


# ------------------------------------------------------------------ 5. keys, regions, plans


@pytest.mark.parametrize("config", [None, NATIVE], ids=["compatible", "native"])
def test_a_401_names_the_region_and_plan_the_key_went_to(config: Any) -> None:
    fake = (FakeDashScope if config else FakeDashScopeCompatible)("sk-other")
    with pytest.raises(AuthenticationError) as caught:
        bridge(fake, config).chat.completions.create(model="qwen-plus", messages=HELLO)
    text = str(caught.value)
    assert "China (Beijing), standard plan" in text
    assert "work only in the region and billing plan they were made for" in text
    assert "Coding Plan key (sk-sp-...) works only on the Coding Plan host" in text


def test_a_coding_plan_key_off_the_coding_host_fails_before_any_request() -> None:
    fake = FakeDashScopeCompatible()
    with pytest.raises(openai.OpenAIError, match='plan = "coding"'):
        bridge(fake, key="sk-sp-abc").chat.completions.create(model="qwen-plus", messages=HELLO)
    assert fake.requests == []


def test_a_coding_plan_key_on_its_host_warns_once() -> None:
    compat = FakeDashScopeCompatible(host="coding.dashscope.aliyuncs.com")

    class Coding:  # the plan's root is /v1, the fake's /compatible-mode/v1
        requests = compat.requests

        @staticmethod
        def transport() -> httpx.MockTransport:
            def handle(request: httpx.Request) -> httpx.Response:
                path = request.url.path.replace("/v1/", "/compatible-mode/v1/", 1)
                url = request.url.copy_with(path=path)
                moved = httpx.Request("POST", url, headers=request.headers, content=request.read())
                return compat.handler(moved)

            return httpx.MockTransport(handle)

    fake = Coding()
    config = {"providers": {"dashscope": {"plan": "coding"}}}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            bridge(fake, config, key="sk-sp-abc").chat.completions.create(
                model="qwen3-coder-plus", messages=HELLO
            )
    assert [str(w.message) for w in caught].count(str(caught[0].message)) == 1
    assert "forbid" in str(caught[0].message)


# ------------------------------------------------------------------ 4. embeddings


@pytest.mark.parametrize(
    "base_url",
    ["https://dashscope.aliyuncs.com/compatible-mode/v1", "https://dashscope.aliyuncs.com/api/v1"],
    ids=["compatible", "native"],
)
def test_more_than_ten_texts_come_back_as_floats_in_order_through_plain_openai(
    base_url: str,
) -> None:
    fake = (FakeDashScope if base_url.endswith("/api/v1") else FakeDashScopeCompatible)(KEY)
    texts = [f"文本{i}" for i in range(23)]
    result = plain(fake, base_url).embeddings.create(model="text-embedding-v4", input=texts)
    assert len(fake.requests) == 3  # 10 + 10 + 3: text-embedding-v4 takes 10 per call
    assert [e.index for e in result.data] == list(range(23))
    solo = plain(fake, base_url).embeddings.create(model="text-embedding-v4", input=texts[17])
    assert result.data[17].embedding == pytest.approx(solo.data[0].embedding, rel=1e-6)
    assert all(isinstance(x, float) for x in result.data[0].embedding)


def test_the_fake_refuses_eleven_texts_for_v4() -> None:
    fake = FakeDashScopeCompatible(KEY)
    response = fake.handler(
        httpx.Request(
            "POST",
            "https://dashscope.aliyuncs.com/compatible-mode/v1/embeddings",
            headers={"Authorization": f"Bearer {KEY}"},
            json={"model": "text-embedding-v4", "input": ["a"] * 11},
        )
    )
    assert response.status_code == 400


# ------------------------------------------------------------------ decided as sent


def test_an_allowed_tools_auto_choice_keeps_a_thinking_call_streamed() -> None:
    """``allowed_tools`` in mode auto forces no call, so a model thinking by default
    keeps thinking, and DashScope serves thinking only as a stream: the call was judged
    on the raw object (as if forced), sent unstreamed while still thinking, and
    refused with a 400."""
    fake = FakeDashScopeCompatible(KEY).reply("好", reasoning_content="想")
    other = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}
    choice = {"type": "allowed_tools", "allowed_tools": {"mode": "auto", "tools": [TOOL]}}
    answer = bridge(fake).chat.completions.create(
        model="qwen3.6-plus", messages=HELLO, tools=[TOOL, other], tool_choice=choice
    )
    assert answer.choices[0].message.content == "好"
    (sent,) = fake.requests
    body = sent_json(sent)
    assert body["stream"] is True and body["tool_choice"] == "auto"
    assert [t["function"]["name"] for t in body["tools"]] == ["f"]


@pytest.mark.parametrize(
    "call",
    [
        {"functions": [{"name": "f", "parameters": {"type": "object"}}]},
        {"extra_body": {"enable_thinking": True}},
    ],
    ids=["legacy functions", "thinking forced in extra_body"],
)
def test_n_copies_are_sent_one_a_request_where_dashscope_answers_one(call: dict) -> None:
    """DashScope answers one choice with tools or while thinking: such a call is sent as
    ``n`` one-choice requests. Legacy ``functions`` (tools once converted) and thinking
    forced in ``extra_body`` were missed, and the caller got one choice of two."""
    fake = FakeDashScopeCompatible(KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "n was sent as n=1")
        answer = bridge(fake).chat.completions.create(
            model="qwen-plus", messages=HELLO, n=2, **call
        )
    assert len(answer.choices) == 2 and len(fake.requests) == 2
    assert all("n" not in sent_json(request) for request in fake.requests)


def sent_json(request: httpx.Request) -> dict[str, Any]:
    return json.loads(request.content)


def test_the_native_api_with_tool_choice_none_serves_n_in_one_request() -> None:
    """The native API sends no tools for ``tool_choice="none"``; ``n`` was still cut to 1
    (streams) or sent as ``n`` requests, as if the tools went."""
    fake = FakeDashScope(KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        answer = bridge(fake, NATIVE).chat.completions.create(
            model="qwen-plus", messages=HELLO, n=2, tools=[TOOL], tool_choice="none"
        )
    (sent,) = fake.requests
    parameters = sent_json(sent)["parameters"]
    assert parameters["n"] == 2 and "tools" not in parameters
    assert len(answer.choices) == 2
