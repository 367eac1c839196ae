"""The genuine openai client as the front door, through both routes.

``llm_bridge.OpenAI`` *is* an ``openai.OpenAI``; ``llm_bridge.http_client()`` puts any openai
client on the same path. What openai code relies on holds on each: isinstance checks,
``except openai.RateLimitError``, the tool loop that appends the returned message, the
``parse`` and ``stream`` helpers, exactly ``max_retries + 1`` attempts, and a clear
``NotFoundError`` for an API the provider does not serve. Offline, against the fakes.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import httpx
import openai
import pydantic
import pytest
from helpers import openai_answer
from openai.types.chat import ChatCompletion, ChatCompletionChunk

import llm_bridge
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeZhipu

KEY = "id.secret"
ZHIPU_ROOT = "https://open.bigmodel.cn/api/paas/v4"
HELLO = [{"role": "user", "content": "你好"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def bridged(fake: Any, **kwargs: Any) -> openai.OpenAI:
    """``llm_bridge.OpenAI`` on Zhipu, its provider traffic answered by ``fake``."""
    kwargs.setdefault("provider", "zhipu")
    kwargs.setdefault("api_key", KEY)
    return llm_bridge.OpenAI(http_client=httpx.Client(transport=fake.transport()), **kwargs)


def plain(fake: Any, base_url: str = ZHIPU_ROOT, **kwargs: Any) -> openai.OpenAI:
    """A plain ``openai.OpenAI`` given ``llm_bridge.http_client()``."""
    bridge = llm_bridge.http_client(http_client=httpx.Client(transport=fake.transport()), **kwargs)
    return openai.OpenAI(api_key=KEY, base_url=base_url, http_client=bridge)


DOORS = pytest.mark.parametrize("door", [bridged, plain], ids=["llm_bridge.OpenAI", "http_client"])


def test_the_client_is_openais_and_so_are_its_answers() -> None:
    fake = FakeZhipu(api_key=KEY).reply("你好！")
    client = bridged(fake)
    assert isinstance(client, openai.OpenAI)
    assert str(client.base_url) == ZHIPU_ROOT + "/"  # the provider's real root
    assert client.api_key == KEY
    result = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert type(result) is ChatCompletion
    assert result.choices[0].message.content == "你好！"
    assert result.provider == "zhipu"  # extras stay reachable
    assert result.usage is not None and result.usage.estimated is False
    assert result._request_id  # openai's own request id, from our header


@DOORS
def test_openais_exception_classes_catch_provider_errors(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY).fail("rate_limit").fail("rate_limit").fail("rate_limit")
    client = door(fake, max_retries=0)
    with pytest.raises(openai.RateLimitError) as info:
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert info.value.status_code == 429
    assert info.value.code == "rate_limit_exceeded"
    assert len(fake.requests) == 1  # no retry by openai on top of llm-bridge's (none here)
    if door is bridged:  # our own object, with the provider's side
        assert isinstance(info.value, llm_bridge.RateLimitError)
        assert (info.value.provider, info.value.provider_code) == ("zhipu", "1302")
    else:  # openai's class for the status; the body names the provider
        assert info.value.body["provider_code"] == "1302"


@DOORS
@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_a_target_makes_exactly_max_retries_plus_one_attempts(door: Any, max_retries: int) -> None:
    fake = FakeZhipu(api_key=KEY)
    for _ in range(max_retries + 2):
        fake.fail("server_error")
    client = door(fake, max_retries=max_retries)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert len(fake.requests) == max_retries + 1


def test_with_options_max_retries_governs_the_engine() -> None:
    fake = FakeZhipu(api_key=KEY).fail("server_error").fail("server_error").reply("ok")
    client = bridged(fake, max_retries=0)
    copy = client.with_options(max_retries=2)
    assert copy.max_retries == 2 and isinstance(copy, llm_bridge.OpenAI)
    assert copy.chat.completions.create(model="glm-4-flash", messages=HELLO).choices
    assert len(fake.requests) == 3
    raw = copy.chat.completions.with_raw_response.create(model="glm-4-flash", messages=HELLO)
    assert raw.retries_taken == 0 and raw.http_response.headers["x-llm-bridge-provider"] == "zhipu"


def test_openais_newer_chat_parameters_are_not_taken_for_provider_extras() -> None:
    # (extras go into the provider's body as they are; these are openai's own)
    fake = FakeZhipu(api_key=KEY).reply("好")
    newer: Any = {
        "prompt_cache_retention": "24h",
        "prompt_cache_options": {"ttl": "24h"},
        "moderation": {"input": {"policy": "default"}},
    }
    bridged(fake).chat.completions.create(model="glm-4-flash", messages=HELLO, extra_body=newer)
    assert not set(newer) & set(json.loads(fake.requests[-1].content))


@pytest.mark.parametrize("flavour", [llm_bridge.OpenAI, llm_bridge.AsyncOpenAI])
def test_openais_other_constructor_arguments_are_taken_and_copied(flavour: Any) -> None:
    # (code moved from openai passes them: a TypeError would break the one-line change)
    given = {
        "webhook_secret": "whsec_test",
        "websocket_base_url": "wss://example.test/v1",
        "_strict_response_validation": True,
    }
    client = flavour(provider="zhipu", api_key=KEY, **given)
    for made in (client, client.with_options(timeout=5), client.copy(max_retries=1)):
        assert made.webhook_secret == "whsec_test"
        assert str(made.websocket_base_url) == "wss://example.test/v1"
        assert made._strict_response_validation is True
    assert client.copy(webhook_secret="whsec_other").webhook_secret == "whsec_other"


@DOORS
def test_the_tool_loop_appends_the_returned_message(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY).tool_call("get_weather", {"city": "北京"}, id="call_1")
    fake.reply("北京晴")
    client = door(fake)
    messages: list[Any] = [{"role": "user", "content": "北京天气？"}]
    first = client.chat.completions.create(
        model="glm-4-flash", messages=messages, tools=[WEATHER_TOOL]
    )
    message = first.choices[0].message
    (call,) = message.tool_calls or []
    assert json.loads(call.function.arguments) == {"city": "北京"}
    messages.append(message)  # the returned object itself, as openai's examples do
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "晴"})
    second = client.chat.completions.create(
        model="glm-4-flash", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "北京晴"
    sent = fake.last_json["messages"]
    assert sent[1]["role"] == "assistant" and sent[1]["tool_calls"][0]["id"] == "call_1"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "晴"}


def test_an_assistant_message_keeps_its_reasoning_content_when_sent_back() -> None:
    fake = FakeZhipu(api_key=KEY).reply("答")
    client = bridged(fake)
    first = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    message = first.choices[0].message
    message.reasoning_content = "想了想"  # as a thinking model returns it
    client.chat.completions.create(
        model="glm-4-flash", messages=[*HELLO, message, {"role": "user", "content": "再说"}]
    )
    assert fake.last_json["messages"][1]["reasoning_content"] == "想了想"


class Weather(pydantic.BaseModel):
    city: str


@DOORS
def test_parse_with_a_pydantic_tool(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY).tool_call("Weather", {"city": "杭州"})
    client = door(fake)
    completion = client.chat.completions.parse(
        model="glm-4-flash", messages=HELLO, tools=[openai.pydantic_function_tool(Weather)]
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == Weather(city="杭州")


@DOORS
def test_the_stream_helper_accumulates_the_final_completion(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY).reply("一二三四五六", chunk_size=2)
    client = door(fake)
    with client.chat.completions.stream(model="glm-4-flash", messages=HELLO) as stream:
        deltas = [e.delta for e in stream if e.type == "content.delta"]
        final = stream.get_final_completion()
    assert "".join(deltas) == "一二三四五六"
    assert final.choices[0].message.content == "一二三四五六"


@DOORS
def test_streams_are_openais_and_carry_usage_when_asked(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY).reply("你好", chunk_size=1)
    client = door(fake)
    stream = client.chat.completions.create(
        model="glm-4-flash", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    assert isinstance(stream, openai.Stream)
    chunks = list(stream)
    assert all(type(c) is ChatCompletionChunk for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "你好"


def test_a_mid_stream_provider_error_raises_its_mapped_class() -> None:
    fake = FakeZhipu(api_key=KEY).error_mid_stream(1, "content_filter", content="一二三四")
    stream = bridged(fake, max_retries=0).chat.completions.create(
        model="glm-4-flash", messages=HELLO, stream=True
    )
    with pytest.raises(openai.APIError) as info:
        list(stream)
    assert isinstance(info.value, llm_bridge.APIError)
    assert info.value.code == "content_filter"


def test_closing_a_stream_early_closes_upstream_and_records_usage_once() -> None:
    fake = FakeZhipu(api_key=KEY).reply("一二三四五六七八九十", chunk_size=1)
    client = bridged(fake)
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    next(iter(stream))
    stream.close()
    assert stream.response.is_closed
    (record,) = client.usage.records()
    assert record.estimated


@DOORS
def test_an_api_the_provider_does_not_serve_is_a_not_found_naming_both(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY)
    client = door(fake)
    with pytest.raises(openai.NotFoundError, match=r"zhipu.*image generation"):
        client.images.generate(prompt="猫")
    with pytest.raises(openai.NotFoundError, match="moderations"):
        client.moderations.create(input="hi")
    assert fake.requests == []  # never a call elsewhere


@DOORS
def test_models_come_from_the_catalogue(door: Any) -> None:
    client = door(FakeZhipu(api_key=KEY))
    ids = [m.id for m in client.models.list()]
    assert "glm-4-flash" in ids
    assert client.models.retrieve("glm-4-flash").owned_by == "zhipu"


def test_a_dashscope_compatible_base_url_goes_to_compatible_mode() -> None:
    fake = FakeDashScopeCompatible(api_key="sk-ds").reply("通义")
    client = llm_bridge.OpenAI(
        api_key="sk-ds",
        base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        http_client=httpx.Client(transport=fake.transport()),
    )
    assert client.provider == "dashscope"
    result = client.chat.completions.create(model="qwen-plus", messages=HELLO)
    assert result.choices[0].message.content == "通义"
    assert fake.requests[0].url.path == "/compatible-mode/v1/chat/completions"


def test_openai_base_url_in_the_environment_is_recognised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://dashscope.aliyuncs.com/compatible-mode/v1")
    fake = FakeDashScopeCompatible(api_key="sk-ds").reply("好")
    upstream = httpx.Client(transport=fake.transport())
    client = llm_bridge.OpenAI(api_key="sk-ds", http_client=upstream)
    assert client.chat.completions.create(model="qwen-plus", messages=HELLO).choices
    assert fake.requests[0].url.path == "/compatible-mode/v1/chat/completions"


def test_http_client_routes_by_host_with_the_requests_own_key() -> None:
    zhipu = FakeZhipu(api_key=KEY).reply("智谱")
    dashscope = FakeDashScopeCompatible(api_key="sk-ds").reply("通义")

    def route(request: httpx.Request) -> httpx.Response:
        fake = zhipu if request.url.host == "open.bigmodel.cn" else dashscope
        return fake.handler(request)

    bridge = llm_bridge.http_client(http_client=httpx.Client(transport=httpx.MockTransport(route)))
    to_zhipu = openai.OpenAI(api_key=KEY, base_url=ZHIPU_ROOT, http_client=bridge)
    to_dashscope = openai.OpenAI(
        api_key="sk-ds",
        base_url="https://dashscope.aliyuncs.com/compatible-mode/v1",
        http_client=bridge,
    )
    one = to_zhipu.chat.completions.create(model="glm-4-flash", messages=HELLO)
    two = to_dashscope.chat.completions.create(model="qwen-plus", messages=HELLO)
    assert (one.choices[0].message.content, two.choices[0].message.content) == ("智谱", "通义")
    assert dashscope.requests[0].headers["Authorization"] == "Bearer sk-ds"


def test_http_client_prefers_the_configured_key_over_the_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-configured")
    fake = FakeDashScopeCompatible(api_key="sk-configured").reply("好")
    client = plain(fake, base_url="https://dashscope.aliyuncs.com/compatible-mode/v1")
    assert client.chat.completions.create(model="qwen-plus", messages=HELLO).choices
    assert fake.requests[0].headers["Authorization"] == "Bearer sk-configured"


def test_http_client_follows_config_aliases_before_the_host() -> None:
    fake = FakeDashScope(api_key="sk-ds").reply("原生")
    config = {
        "providers": {"dashscope": {"api_key": "sk-ds", "api": "native"}},
        "models": {"gpt-4o": "dashscope/qwen-plus"},
    }
    client = plain(fake, base_url="https://api.openai.com/v1", config=config)
    result = client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert result.choices[0].message.content == "原生"
    assert fake.last_json["model"] == "qwen-plus"


def test_unknown_body_fields_are_provider_extras() -> None:
    fake = FakeZhipu(api_key=KEY).reply("ok")
    bridged(fake).chat.completions.create(
        model="glm-4-flash", messages=HELLO, extra_body={"do_sample": False}
    )
    assert fake.last_json["do_sample"] is False


async def test_the_async_client_is_openais_and_streams() -> None:
    fake = FakeZhipu(api_key=KEY).reply("异步", chunk_size=1)
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.AsyncClient(transport=fake.transport())
    )
    assert isinstance(client, openai.AsyncOpenAI)
    stream = await client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    assert isinstance(stream, openai.AsyncStream)
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "异步"
    fake.fail("rate_limit")
    with pytest.raises(openai.RateLimitError) as info:
        await client.with_options(max_retries=0).chat.completions.create(
            model="glm-4-flash", messages=HELLO
        )
    assert isinstance(info.value, llm_bridge.RateLimitError)


@pytest.mark.parametrize("door", [bridged, plain], ids=["bridge", "http_client"])
def test_the_providers_retry_after_reaches_the_caller(door: Any) -> None:
    fake = FakeZhipu(api_key=KEY).fail("rate_limit", headers={"Retry-After": "7"})
    with pytest.raises(openai.RateLimitError) as caught:
        door(fake, max_retries=0).chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert caught.value.response.headers["retry-after"] == "7"


def test_http_client_with_provider_and_no_configured_key_uses_the_requests_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    fake = FakeZhipu(api_key="req.key").reply("好")
    bridge = llm_bridge.http_client(
        provider="zhipu", http_client=httpx.Client(transport=fake.transport())
    )
    client = openai.OpenAI(api_key="req.key", http_client=bridge)  # openai's default base URL
    assert client.chat.completions.create(model="glm-4-flash", messages=HELLO).choices
    assert fake.requests[0].headers["Authorization"] == "Bearer req.key"
    assert fake.requests[0].url.host == "open.bigmodel.cn"


def test_http_client_with_an_unknown_provider_fails_at_once() -> None:
    with pytest.raises(llm_bridge.ConfigError, match="unknown provider 'zhipuu'"):
        llm_bridge.http_client(provider="zhipuu")


def test_a_closed_client_says_it_was_closed_and_sends_nothing() -> None:
    """Issue 19: a request after ``close()`` raised the HTTP library's bare RuntimeError."""
    fake = FakeZhipu(api_key=KEY)
    with bridged(fake) as client:
        assert client.chat.completions.create(model="glm-4-flash", messages=HELLO).id
    with pytest.raises(llm_bridge.ClientClosedError, match="was closed") as raised:
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert isinstance(raised.value, openai.OpenAIError) and isinstance(raised.value, RuntimeError)
    assert len(fake.requests) == 1


async def test_a_closed_async_client_says_it_was_closed_and_sends_nothing() -> None:
    fake = FakeZhipu(api_key=KEY)
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        http_client=httpx.AsyncClient(transport=fake.transport()),
    )
    assert (await client.chat.completions.create(model="glm-4-flash", messages=HELLO)).id
    await client.close()
    with pytest.raises(llm_bridge.ClientClosedError, match="AsyncOpenAI client was closed"):
        await client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    assert len(fake.requests) == 1


def _zhipu_with_a_lone_surrogate(request: httpx.Request) -> httpx.Response:
    """Zhipu's answer whose text holds ``"\\ud800"``: JSON may carry it, UTF-8 cannot."""
    head = '{"id":"r1","created":1,"model":"glm-4-flash","choices":[{"index":0,'
    usage = '"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    if not json.loads(request.content).get("stream"):
        body = head + '"message":{"role":"assistant","content":"a\\ud800b"},'
        body += '"finish_reason":"stop"}],' + usage
        return httpx.Response(
            200, content=body.encode(), headers={"content-type": "application/json"}
        )
    events = [
        head + '"delta":{"role":"assistant","content":"a\\ud800"}}]}',
        head + '"delta":{"content":"b"}}]}',
        head + '"delta":{"content":""},"finish_reason":"stop"}],' + usage,
        "[DONE]",
    ]
    sse = "".join(f"data: {event}\n\n" for event in events)
    return httpx.Response(200, content=sse.encode(), headers={"content-type": "text/event-stream"})


@DOORS
def test_text_with_a_lone_surrogate_reaches_openai_as_it_came(door: Any) -> None:
    """pydantic-core refuses to write a lone surrogate; such a chunk or answer is written
    the standard library's way (``\\u`` escapes) instead of failing."""
    client = door(
        SimpleNamespace(transport=lambda: httpx.MockTransport(_zhipu_with_a_lone_surrogate))
    )
    answer = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert answer.choices[0].message.content == "a\ud800b"
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "a\ud800b"


@DOORS
def test_each_calls_timeout_reaches_the_provider_request(door: Any) -> None:
    """openai puts a timeout on every request; calls with the same one share options
    (made once), and a different one is never taken for it."""
    fake = FakeZhipu(api_key=KEY)
    client = door(fake)
    for timeout in (None, 7.5, None, httpx.Timeout(3.0, connect=1.0), 7.5):
        chosen = client if timeout is None else client.with_options(timeout=timeout)
        chosen.chat.completions.create(model="glm-4-flash", messages=HELLO)
    sent = fake.requests
    reads = [(r.extensions["timeout"]["connect"], r.extensions["timeout"]["read"]) for r in sent]
    default = (openai.DEFAULT_TIMEOUT.connect, openai.DEFAULT_TIMEOUT.read)
    assert reads == [default, (7.5, 7.5), default, (1.0, 3.0), (7.5, 7.5)]


@DOORS
@pytest.mark.parametrize(
    ("content_type", "body", "text"),
    [
        ("text/plain; charset=gbk", "网关错误".encode("gbk"), "网关错误"),
        ("text/plain; charset=GB18030", "网关错误".encode("gb18030"), "网关错误"),
        ("text/plain", "网关错误".encode(), "网关错误"),
        ("text/plain; charset=no-such-codec", "网关错误".encode(), "网关错误"),
    ],
)
def test_an_error_page_is_quoted_in_its_declared_charset(
    door: Any, content_type: str, body: bytes, text: str
) -> None:
    """A provider's non-JSON error page is read as its Content-Type says (utf-8 when it
    names no charset, or one Python does not know), as httpx reads it."""

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, content=body, headers={"content-type": content_type})

    client = door(SimpleNamespace(transport=lambda: httpx.MockTransport(handle)), max_retries=0)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert text in info.value.message


def test_forwarded_headers_read_raw_names_in_any_case_and_any_encoding() -> None:
    from llm_bridge import _front

    raw = [
        (b"X-Trace", b"one"),
        (b"AUTHORIZATION", b"Bearer k"),
        (b"X-Stainless-OS", b"Linux"),
        (b"x-llm-bridge-stream-deadline", b"5"),
        (b"X-Title", "中文".encode()),
        (b"X-Latin", "café".encode("latin-1")),
    ]
    for _ in range(2):  # the second time from what was kept per name
        assert _front.forwarded_headers(raw) == {
            "x-trace": "one",
            "x-title": "中文",
            "x-latin": "café",
        }


@pytest.mark.parametrize(
    "timeout", [-1, 0, "30", httpx.Timeout(5, connect=-1)], ids=["negative", "zero", "text", "part"]
)
def test_a_timeout_out_of_range_is_refused_by_the_constructor(timeout: Any) -> None:
    for make in (
        lambda: llm_bridge.OpenAI(provider="zhipu", api_key=KEY, timeout=timeout),
        lambda: llm_bridge.http_client(provider="zhipu", timeout=timeout),
        lambda: llm_bridge.async_http_client(provider="zhipu", timeout=timeout),
    ):
        with pytest.raises(ValueError, match="timeout must be a positive number of seconds"):
            make()


@pytest.mark.parametrize("retries", [-1, 1.5, True])
def test_http_client_refuses_max_retries_out_of_range(retries: Any) -> None:
    with pytest.raises(ValueError, match="max_retries must be a non-negative integer"):
        llm_bridge.http_client(provider="zhipu", max_retries=retries)


def test_an_openai_key_kept_from_migrated_code_does_not_displace_the_configs() -> None:
    """``OpenAI(api_key=os.environ["OPENAI_API_KEY"])`` survives a migration; a model the
    config routes to a provider with a key of its own is sent with that key."""
    fake = FakeZhipu(api_key=KEY).reply("好")
    config = {"models": {"gpt-4o": "zhipu/glm-4-flash"}, "providers": {"zhipu": {"api_key": KEY}}}
    client = llm_bridge.OpenAI(
        api_key="sk-proj-openaikey0123456789",
        config=config,
        http_client=httpx.Client(transport=fake.transport()),
    )
    client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert [r.headers["authorization"] for r in fake.requests] == [f"Bearer {KEY}"]
    # Without a key of the provider's own, the argument is still the one used.
    keyless = llm_bridge.OpenAI(
        api_key=KEY,
        config={"models": {"gpt-4o": "zhipu/glm-4-flash"}},
        http_client=httpx.Client(transport=FakeZhipu(api_key=KEY).reply("好").transport()),
    )
    assert keyless.chat.completions.create(model="gpt-4o", messages=HELLO).choices


def test_an_unknown_openai_compatible_root_gets_every_request_as_openai_would_send_it() -> None:
    seen: list[httpx.Request] = []

    def deepseek(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return openai_answer(request, "你好")

    client = llm_bridge.OpenAI(
        api_key="sk-deepseek0123456789",
        base_url="https://api.deepseek.com/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(deepseek)),
    )
    assert str(client.base_url) == "https://api.deepseek.com/v1/"
    answer = client.chat.completions.create(model="deepseek-chat", messages=HELLO)
    assert answer.choices[0].message.content == "你好"
    assert str(seen[0].url) == "https://api.deepseek.com/v1/chat/completions"
    assert seen[0].headers["authorization"] == "Bearer sk-deepseek0123456789"


@pytest.mark.parametrize("fake_class", [FakeDashScope, FakeDashScopeCompatible])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_the_request_id_is_the_one_the_provider_sent_in_its_header(
    fake_class: Any, stream: bool
) -> None:
    """The id DashScope's support asks for is the one in its ``x-request-id`` header (in
    compatible mode the answer's ``id`` is ``chatcmpl-`` and that id): the caller's
    ``_request_id`` is it, streamed or not."""
    fake = fake_class(api_key="sk-test")
    sent: list[str] = []

    def kept(response: httpx.Response) -> None:
        sent.append(response.headers["x-request-id"])

    upstream = httpx.Client(transport=fake.transport(), event_hooks={"response": [kept]})
    client = llm_bridge.OpenAI(
        provider="dashscope", api_key="sk-test", base_url=fake.base_url, http_client=upstream
    )
    raw = client.chat.completions.with_raw_response.create(
        model="qwen-plus", messages=HELLO, stream=stream
    )
    answer = raw.parse()
    if stream:
        assert [chunk.choices[0].delta.content for chunk in answer if chunk.choices]
    assert len(sent) == 1 and sent[0]
    assert raw.headers["x-request-id"] == sent[0]
    if not stream:
        assert answer._request_id == sent[0]


def recording_client(handler: Any, records: list[Any]) -> llm_bridge.AsyncOpenAI:
    """An ``AsyncOpenAI`` on Zhipu answered by ``handler``, its usage into ``records``."""
    return llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        on_usage=records.append,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )


async def cancelled_once(client: llm_bridge.AsyncOpenAI, reached: Any, **params: Any) -> None:
    """Make a call, and cancel it once the provider was ``reached`` (an asyncio.Event)."""
    import asyncio

    call = asyncio.ensure_future(client.chat.completions.create(model="glm-4-flash", **params))
    await asyncio.wait_for(reached.wait(), 5)
    await asyncio.sleep(0.05)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_call_cancelled_while_out_is_recorded_as_its_prompt_estimated() -> None:
    """A task cancelled while its request is with the provider (``asyncio.wait_for``, a
    gateway client hanging up) is still answered and billed there: its prompt is
    recorded, estimated, as an early-closed stream's is; and only once."""
    import asyncio

    records: list[llm_bridge.UsageRecord] = []
    sent = asyncio.Event()

    async def provider(request: httpx.Request) -> httpx.Response:
        sent.set()
        await asyncio.sleep(30)
        raise AssertionError("not reached")

    client = recording_client(provider, records)
    await cancelled_once(client, sent, messages=HELLO * 50)
    (record,) = records
    assert record.estimated and record.usage.prompt_tokens > 50
    assert record.usage.completion_tokens == 0 and record.cost_cny is not None
    await client.close()


@pytest.mark.parametrize("proxies", [{}, {"NO_PROXY": "localhost", "HTTPS_PROXY": "http://p:1"}])
async def test_a_call_cancelled_before_it_was_sent_records_nothing(
    proxies: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A call cancelled while it waits for a pooled connection never reached the provider:
    no usage. The one that was out (its body sent, no answer yet) is recorded once. So too
    with proxy variables set, which give httpx's client mounts (the call goes direct)."""
    import asyncio

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in proxies.items():
        monkeypatch.setenv(name, value)

    connections: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)  # reads nothing back, answers nothing

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    records: list[llm_bridge.UsageRecord] = []
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        base_url=f"http://127.0.0.1:{port}/api/paas/v4",
        on_usage=records.append,
        http_client=llm_bridge.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=1)),
    )
    create = client.chat.completions.create
    out = asyncio.ensure_future(create(model="glm-4-flash", messages=HELLO))
    for _ in range(500):
        if connections:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # (its body is in the socket)
    waiting = [asyncio.ensure_future(create(model="glm-4-flash", messages=HELLO)) for _ in range(3)]
    await asyncio.sleep(0.1)
    for call in waiting:
        call.cancel()
    await asyncio.gather(*waiting, return_exceptions=True)
    assert records == [] and len(connections) == 1
    out.cancel()
    await asyncio.gather(out, return_exceptions=True)
    assert len(records) == 1 and records[0].estimated
    await client.close()
    for writer in connections:
        writer.close()
    server.close()
    await server.wait_closed()


async def test_a_stream_cancelled_before_its_first_chunk_records_its_prompt() -> None:
    """Between the answer's headers and its first chunk (the model thinking) the provider
    has taken the call: a cancel there is recorded, as before the headers and after."""
    import asyncio

    class Waiting(httpx.AsyncByteStream):
        closed = False

        async def __aiter__(self) -> Any:
            await asyncio.sleep(30)
            yield b""

        async def aclose(self) -> None:
            Waiting.closed = True

    answered = asyncio.Event()

    async def provider(request: httpx.Request) -> httpx.Response:
        answered.set()
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Waiting())

    records: list[llm_bridge.UsageRecord] = []
    client = recording_client(provider, records)
    await cancelled_once(client, answered, messages=HELLO, stream=True)
    (record,) = records
    assert record.estimated and record.usage.prompt_tokens > 0
    assert Waiting.closed  # (and the provider's answer was closed)
    await client.close()


async def test_an_async_on_usage_is_awaited() -> None:
    """``AsyncOpenAI(on_usage=<async def>)``: its coroutine was made and dropped (a
    "never awaited" warning, the record lost); it now runs on the event loop."""
    import asyncio

    seen: list[llm_bridge.UsageRecord] = []

    async def on_usage(record: llm_bridge.UsageRecord) -> None:
        await asyncio.sleep(0.05)  # (an async database write, say)
        seen.append(record)

    fake = FakeZhipu(api_key=KEY).reply("一").reply("二")
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        on_usage=on_usage,
        http_client=httpx.AsyncClient(transport=fake.transport()),
    )
    await client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    async for _ in await client.chat.completions.create(
        model="glm-4-flash", messages=HELLO, stream=True
    ):
        pass
    await client.close()  # waits for the callbacks still running
    assert [r.usage.completion_tokens > 0 for r in seen] == [True, True]


def test_an_async_on_usage_on_a_sync_client_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    import warnings

    async def on_usage(record: llm_bridge.UsageRecord) -> None:
        raise AssertionError("nothing can run it")

    fake = FakeZhipu(api_key=KEY).reply("一")
    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key=KEY,
        on_usage=on_usage,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "coroutine was never awaited")
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
        import gc

        gc.collect()
    assert "outside an event loop" in caplog.text and "plain function" in caplog.text
