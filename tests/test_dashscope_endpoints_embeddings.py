"""Alibaba DashScope endpoints, compatible mode and embeddings through the facade, sync and async.

Endpoints: the native and compatible-mode roots per region, the workspace header, base-URL
overrides, the key from the environment, bad ``api``/``region`` values. Compatible mode
(docs/providers/dashscope.md) through ``FakeDashScopeCompatible`` and byte-exact through respx
(D8). Native embeddings (D7): the body, ``text_index`` ordering, usage, catalogue batching,
dimensions, base64, ``extra_body`` and errors; compatible-mode embeddings too.
"""

from __future__ import annotations

import base64
import json
import math
import warnings
from array import array
from functools import partial
from pathlib import Path
from typing import Any

import helpers
import httpx
import pytest
import respx
from helpers import HELLO, MODES, consume, embed, float32, provider_table, text_of

from llm_bridge import (
    AsyncOpenAI,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    OpenAI,
    RateLimitError,
)
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible
from llm_bridge.types import CreateEmbeddingResponse
from llm_bridge.types.chat import ChatCompletion

KEY = "sk-test"
CN = "dashscope.aliyuncs.com"
INTL = "dashscope-intl.aliyuncs.com"
TEXT = "/api/v1/services/aigc/text-generation/generation"
EMBED = "/api/v1/services/embeddings/text-embedding/text-embedding"
COMPAT_CHAT = "/compatible-mode/v1/chat/completions"
COMPAT_EMBED = "/compatible-mode/v1/embeddings"
PROXY = "https://proxy.example.com"
MODEL = "qwen-plus"
INTL_CONFIG = {"providers": {"dashscope": {"region": "intl"}}}
COMPAT_CONFIG = {"providers": {"dashscope": {"api": "compatible"}}}
NATIVE_CONFIG = {"providers": {"dashscope": {"api": "native"}}}

CATALOGUE: dict[str, dict[str, Any]] = provider_table("dashscope")["models"]
V3_BATCH = CATALOGUE["text-embedding-v3"]["max_batch"]
V1_BATCH = CATALOGUE["text-embedding-v1"]["max_batch"]
V3_DIMS = CATALOGUE["text-embedding-v3"]["dimensions"]
assert V3_BATCH < 25 and V1_BATCH < 60, "the batch tests need inputs beyond one batch"


# D7: a native embeddings answer exactly as DashScope sends it.
D7_REQUEST = {
    "model": "text-embedding-v3",
    "input": {"texts": ["衣服的质量杠杠的"]},
    "parameters": {"text_type": "query", "dimension": 512},
}
D7 = (
    b'{"output":{"embeddings":[{"embedding":[-0.0485,0.0257,-0.0124],"text_index":0}]},'
    b'"usage":{"total_tokens":7},"request_id":"d89c06fb-46a1-47b6-acb9-bfb17f814969"}'
)

# D8: compatible-mode bodies (a stream, a content-filter error) exactly as DashScope sends them.
D8_ID = "chatcmpl-f37af769-6ca0-9b36-83a2-177bce0afe22"
D8_TAIL = (
    f'"created":1770343445,"system_fingerprint":null,"model":"qwen-plus","id":"{D8_ID}"' + "}\n\n"
)
D8_STREAM = (
    'data: {"choices":[{"delta":{"content":"","role":"assistant"},"index":0,"logprobs":null,'
    '"finish_reason":null}],"object":"chat.completion.chunk","usage":null,'
    + D8_TAIL
    + 'data: {"choices":[{"finish_reason":"stop","delta":{"content":"我是通义千问。"},"index":0,'
    '"logprobs":null}],"object":"chat.completion.chunk","usage":null,'
    + D8_TAIL
    + 'data: {"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":11,'
    '"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}},'
    + D8_TAIL
    + "data: [DONE]\n\n"
).encode()
D8_FILTERED = (
    b'{"error":{"code":"data_inspection_failed","param":null,"message":"Input text data may '
    b'contain inappropriate content.","type":"data_inspection_failed"},"id":"chatcmpl-1"}'
)
ARREARAGE = (
    b'{"error":{"code":"Arrearage","message":"Access denied, please make sure your account is '
    b'in good standing.","type":"Arrearage"}}'
)
INVALID_KEY = (
    b'{"error":{"code":"invalid_api_key","message":"Incorrect API key provided.","param":null,'
    b'"type":"invalid_request_error"},"request_id":"rid-401"}'
)
MID_STREAM_FILTER = (
    b'data: {"error":{"message":"Output data may contain inappropriate content.",'
    b'"type":"data_inspection_failed","param":null,"code":"data_inspection_failed"}}\n\n'
)
JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream"}


# --------------------------------------------------------------------------- helpers


class Recorder:
    """Wraps a fake so that its JSON answers are kept too, to compare with what comes back."""

    def __init__(self, fake: FakeDashScope | FakeDashScopeCompatible) -> None:
        self.fake = fake
        self.answers: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        response = self.fake.handler(request)
        response.read()
        if response.status_code == 200 and "json" in response.headers.get("content-type", ""):
            self.answers.append(json.loads(response.content))
        return response

    @property
    def requests(self) -> list[httpx.Request]:
        return self.fake.requests

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.fake.requests]


def make_client(mode: str, handler: Any, **kwargs: Any) -> Any:
    """A sync or async facade client answered by ``handler`` (a fake, a Recorder or callable).

    Compatible mode is DashScope's default api; a native fake's client opts into the native
    protocol (``api = "native"``) unless its config says otherwise."""
    if isinstance(getattr(handler, "fake", handler), FakeDashScope):
        config = kwargs.get("config", {})
        if isinstance(config, dict):
            block = config.get("providers", {}).get("dashscope", {})
            block = {"api": "native", **block}
            kwargs["config"] = {**config, "providers": {"dashscope": block}}
    if hasattr(handler, "handler"):
        handler = handler.handler
    kwargs.setdefault("api_key", KEY)
    transport = httpx.MockTransport(handler)
    if mode == "sync":
        return OpenAI(provider="dashscope", http_client=httpx.Client(transport=transport), **kwargs)
    return AsyncOpenAI(
        provider="dashscope", http_client=httpx.AsyncClient(transport=transport), **kwargs
    )


chat = partial(helpers.chat, model=MODEL)


def url(host: str, path: str) -> httpx.URL:
    return httpx.URL(f"https://{host}{path}")


def native_vectors(answers: list[dict[str, Any]]) -> list[list[float]]:
    """The vectors the native fake sent, in input order (by batch, then by text_index)."""
    out: list[list[float]] = []
    for answer in answers:
        items = sorted(answer["output"]["embeddings"], key=lambda e: e["text_index"])
        assert [e["text_index"] for e in items] == list(range(len(items)))
        out += [e["embedding"] for e in items]
    return out


# =========================================================================== 1. endpoints


@MODES
async def test_default_is_compatible_mode_on_the_beijing_host(mode: str):
    f = FakeDashScopeCompatible(KEY)
    transport = httpx.MockTransport(f.handler)
    if mode == "sync":
        c: Any = OpenAI(
            provider="dashscope", api_key=KEY, http_client=httpx.Client(transport=transport)
        )
    else:
        c = AsyncOpenAI(
            provider="dashscope", api_key=KEY, http_client=httpx.AsyncClient(transport=transport)
        )
    await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert [r.url for r in f.requests] == [url(CN, COMPAT_CHAT), url(CN, COMPAT_EMBED)]


@MODES
async def test_native_api_opt_in_on_the_beijing_host(mode: str):
    f = FakeDashScope(KEY)
    c = make_client(mode, f, config=NATIVE_CONFIG)
    await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert [r.url for r in f.requests] == [url(CN, TEXT), url(CN, EMBED)]
    assert all(r.headers["Authorization"] == f"Bearer {KEY}" for r in f.requests)
    assert f.requests[0].method == "POST"
    assert set(f.last_json) == {"model", "input", "parameters"}


@MODES
async def test_region_intl_uses_the_international_native_host(mode: str):
    f = FakeDashScope(KEY, host=INTL)
    c = make_client(mode, f, config=INTL_CONFIG)
    result = await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert [r.url for r in f.requests] == [url(INTL, TEXT), url(INTL, EMBED)]
    assert result.choices[0].message.content.endswith("You said: 你好")


@MODES
async def test_intl_region_never_reaches_the_beijing_host(mode: str):
    # Keys are region-bound: the Beijing fake refuses the request from the intl host (401).
    f = FakeDashScope(KEY)
    with pytest.raises(AuthenticationError):
        await chat(mode, make_client(mode, f, config=INTL_CONFIG))
    assert f.requests[0].url.host == INTL


@MODES
async def test_compatible_api_posts_an_openai_body_with_bearer_auth(mode: str):
    f = FakeDashScopeCompatible(KEY)
    c = make_client(mode, f, config=COMPAT_CONFIG)
    result = await chat(mode, c)
    request = f.requests[0]
    assert request.url == url(CN, COMPAT_CHAT)
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert f.last_json == {"model": MODEL, "messages": HELLO}
    assert isinstance(result, ChatCompletion)
    assert result.id.startswith("chatcmpl-")


@MODES
async def test_compatible_stream_body_has_stream_and_stream_options(mode: str):
    f = FakeDashScopeCompatible(KEY)
    c = make_client(mode, f, config=COMPAT_CONFIG)
    chunks, error = await consume(await chat(mode, c, stream=True))
    assert error is None
    body = f.last_json
    assert body["model"] == MODEL and body["messages"] == HELLO
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert "input" not in body and "parameters" not in body
    assert "X-DashScope-SSE" not in f.requests[0].headers
    assert text_of(chunks).endswith("You said: 你好")


@MODES
async def test_compatible_and_intl_use_the_international_compatible_host(mode: str):
    f = FakeDashScopeCompatible(KEY, host=INTL)
    config = {"providers": {"dashscope": {"api": "compatible", "region": "intl"}}}
    c = make_client(mode, f, config=config)
    await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert [r.url for r in f.requests] == [url(INTL, COMPAT_CHAT), url(INTL, COMPAT_EMBED)]


@MODES
async def test_explicit_native_api_setting_reaches_text_generation(mode: str):
    f = FakeDashScope(KEY)
    await chat(mode, make_client(mode, f, config={"providers": {"dashscope": {"api": "native"}}}))
    assert f.requests[0].url == url(CN, TEXT)


@MODES
async def test_workspace_header_on_native_chat_stream_and_embeddings(mode: str):
    f = FakeDashScope(KEY)
    c = make_client(mode, f, config={"providers": {"dashscope": {"workspace": "ws-1"}}})
    await chat(mode, c)
    _, error = await consume(await chat(mode, c, stream=True))
    assert error is None
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert f.workspaces == ["ws-1", "ws-1", "ws-1"]
    assert [r.headers["X-DashScope-WorkSpace"] for r in f.requests] == ["ws-1"] * 3


@MODES
async def test_workspace_header_on_compatible_chat_and_embeddings(mode: str):
    f = FakeDashScopeCompatible(KEY)
    config = {"providers": {"dashscope": {"api": "compatible", "workspace": "ws-1"}}}
    c = make_client(mode, f, config=config)
    await chat(mode, c)
    _, error = await consume(await chat(mode, c, stream=True))
    assert error is None
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert f.workspaces == ["ws-1", "ws-1", "ws-1"]


@MODES
async def test_no_workspace_header_without_a_workspace(mode: str):
    native, compat = FakeDashScope(KEY), FakeDashScopeCompatible(KEY)
    await chat(mode, make_client(mode, native))
    await embed(mode, make_client(mode, native), model="text-embedding-v3", input=["a"])
    await chat(mode, make_client(mode, compat, config=COMPAT_CONFIG))
    assert native.workspaces == [None, None]
    assert compat.workspaces == [None]


@MODES
@pytest.mark.parametrize("api", ["native", "compatible"])
async def test_base_url_argument_wins_over_the_region_default(mode: str, api: str):
    fake = FakeDashScope(KEY) if api == "native" else FakeDashScopeCompatible(KEY)
    root = "/api/v1" if api == "native" else "/compatible-mode/v1"
    config = {"providers": {"dashscope": {"api": api, "region": "intl"}}}
    c = make_client(mode, fake, config=config, base_url=PROXY + root)
    await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    path = TEXT if api == "native" else COMPAT_CHAT
    embed_path = EMBED if api == "native" else COMPAT_EMBED
    assert [str(r.url) for r in fake.requests] == [PROXY + path, PROXY + embed_path]


@MODES
async def test_config_base_url_wins_over_the_region_default(mode: str):
    f = FakeDashScope(KEY)
    config = {"providers": {"dashscope": {"region": "intl", "base_url": PROXY + "/api/v1/"}}}
    c = make_client(mode, f, config=config)
    await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert [str(r.url) for r in f.requests] == [PROXY + TEXT, PROXY + EMBED]


@MODES
async def test_config_file_base_url_wins_in_compatible_mode(mode: str, tmp_path: Path):
    path = tmp_path / "llm_bridge.toml"
    path.write_text(
        '[providers.dashscope]\napi = "compatible"\nregion = "intl"\n'
        f'base_url = "{PROXY}/compatible-mode/v1"\nworkspace = "ws-9"\n',
        "utf-8",
    )
    f = FakeDashScopeCompatible(KEY)
    await chat(mode, make_client(mode, f, config=str(path)))
    assert str(f.requests[0].url) == PROXY + COMPAT_CHAT
    assert f.workspaces == ["ws-9"]


@MODES
async def test_the_key_comes_from_dashscope_api_key(mode: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    f = FakeDashScope("sk-from-env")
    c = make_client(mode, f, api_key=None)
    result = await chat(mode, c)
    await embed(mode, c, model="text-embedding-v3", input=["a"])
    assert [r.headers["Authorization"] for r in f.requests] == ["Bearer sk-from-env"] * 2
    assert result.choices[0].message.content


@MODES
async def test_the_env_key_is_used_in_compatible_mode(mode: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    f = FakeDashScopeCompatible("sk-from-env")
    await chat(mode, make_client(mode, f, api_key=None, config=COMPAT_CONFIG))
    assert f.requests[0].headers["Authorization"] == "Bearer sk-from-env"


@pytest.mark.parametrize("key, value", [("api", "nope"), ("region", "mars")], ids=["api", "region"])
def test_invalid_api_or_region_is_a_config_error_naming_the_key(key: str, value: str):
    with pytest.raises(ConfigError) as info:
        c = OpenAI(
            provider="dashscope", api_key=KEY, config={"providers": {"dashscope": {key: value}}}
        )
        c.chat.completions.create(model=MODEL, messages=HELLO)
    message = str(info.value)
    assert f"dashscope.{key}" in message
    assert value in message


@pytest.mark.parametrize("key, value", [("api", "nope"), ("region", "mars")], ids=["api", "region"])
def test_invalid_api_or_region_in_a_file_names_the_file_and_key(
    key: str, value: str, tmp_path: Path
):
    path = tmp_path / "bad.toml"
    path.write_text(f'[providers.dashscope]\n{key} = "{value}"\n', "utf-8")
    with pytest.raises(ConfigError) as info:
        AsyncOpenAI(provider="dashscope", api_key=KEY, config=str(path))
    message = str(info.value)
    assert "bad.toml" in message
    assert f"dashscope.{key}" in message


# =========================================================================== 2. compatible mode


def compat(mode: str, f: FakeDashScopeCompatible | None = None, **kwargs: Any) -> Any:
    kwargs.setdefault("config", COMPAT_CONFIG)
    return make_client(mode, f if f is not None else FakeDashScopeCompatible(KEY), **kwargs)


@MODES
async def test_compatible_non_stream_reply(mode: str):
    f = FakeDashScopeCompatible(KEY).reply("我是通义千问。")
    result = await chat(mode, compat(mode, f))
    assert isinstance(result, ChatCompletion)
    assert result.choices[0].message.content == "我是通义千问。"
    assert result.choices[0].finish_reason == "stop"
    assert result.id.startswith("chatcmpl-")
    assert result.provider == "dashscope"
    assert result.usage.completion_tokens > 0
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens


@MODES
async def test_compatible_stream_with_include_usage_ends_with_a_usage_chunk(mode: str):
    usage = {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    f = FakeDashScopeCompatible(KEY).reply("我是通义千问。", usage=usage)
    stream = await chat(mode, compat(mode, f), stream=True, stream_options={"include_usage": True})
    chunks, error = await consume(stream)
    assert error is None
    assert text_of(chunks) == "我是通义千问。"
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.prompt_tokens == 11
    assert last.usage.completion_tokens == 7
    assert last.usage.total_tokens == 18
    assert all(chunk.usage is None for chunk in chunks[:-1])
    assert [c.finish_reason for ch in chunks for c in ch.choices][-1] == "stop"


@MODES
async def test_compatible_stream_without_include_usage_has_no_usage(mode: str):
    f = FakeDashScopeCompatible(KEY).reply("我是通义千问。")
    chunks, error = await consume(await chat(mode, compat(mode, f), stream=True))
    assert error is None
    assert text_of(chunks) == "我是通义千问。"
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks)  # no empty usage-only chunk
    assert chunks[-1].choices[0].finish_reason == "stop"


@MODES
async def test_d8_byte_exact_stream_through_respx(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"https://{CN}{COMPAT_CHAT}").respond(
            200, headers=SSE_HEADERS, content=D8_STREAM
        )
        cls = OpenAI if mode == "sync" else AsyncOpenAI
        c = cls(provider="dashscope", api_key=KEY, config=COMPAT_CONFIG)
        stream = await chat(
            mode,
            c,
            messages=[{"role": "user", "content": "你是谁?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks, error = await consume(stream)
    assert error is None
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "model": "qwen-plus",
        "messages": [{"role": "user", "content": "你是谁?"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert len(chunks) == 3  # [DONE] is no chunk
    assert all(chunk.id == D8_ID for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text_of(chunks) == "我是通义千问。"
    assert chunks[1].choices[0].finish_reason == "stop"
    assert chunks[2].choices == []
    assert chunks[2].usage.total_tokens == 18
    assert chunks[2].usage.prompt_tokens_details.cached_tokens == 0


@MODES
async def test_d8_data_inspection_failed_is_a_content_filter_bad_request(mode: str):
    f = FakeDashScopeCompatible(KEY).raw(400, D8_FILTERED, JSON_HEADERS).reply("never")
    with pytest.raises(BadRequestError) as info:
        await chat(mode, compat(mode, f))
    assert info.value.code == "content_filter"
    assert info.value.provider_code == "data_inspection_failed"
    assert info.value.status_code == 400
    assert len(f.requests) == 1


@MODES
async def test_the_fakes_content_filter_failure_maps_too(mode: str):
    f = FakeDashScopeCompatible(KEY).fail("content_filter")
    with pytest.raises(BadRequestError) as info:
        await chat(mode, compat(mode, f))
    assert info.value.code == "content_filter"
    assert info.value.request_id


@MODES
@pytest.mark.parametrize("content_type", ["application/json", "text/event-stream"])
async def test_compatible_sse_framed_400_on_a_stream_request_is_parsed(
    mode: str, content_type: str
):
    # In compatible mode a 400 body can itself be SSE-framed (data: {...}) when stream: true;
    # the issue: parse error bodies by content, not by header.
    body = b"data: " + D8_FILTERED + b"\n\n"
    f = FakeDashScopeCompatible(KEY).raw(400, body, {"Content-Type": content_type})
    try:
        chunks, error = await consume(await chat(mode, compat(mode, f), stream=True))
    except BadRequestError as raised:
        chunks, error = [], raised
    assert chunks == []
    assert isinstance(error, BadRequestError)
    assert error.provider_code == "data_inspection_failed"
    assert error.code == "content_filter"
    assert len(f.requests) == 1


@MODES
async def test_compatible_arrearage_is_insufficient_quota_and_not_retried(
    mode: str, no_retry_sleep: list[float]
):
    f = FakeDashScopeCompatible(KEY).raw(400, ARREARAGE, JSON_HEADERS).reply("never")
    with pytest.raises(RateLimitError) as info:
        await chat(mode, compat(mode, f))
    assert info.value.code == "insufficient_quota"
    assert info.value.provider_code == "Arrearage"
    assert len(f.requests) == 1
    assert no_retry_sleep == []


@MODES
async def test_compatible_invalid_api_key_is_an_authentication_error(mode: str):
    f = FakeDashScopeCompatible(KEY).raw(401, INVALID_KEY, JSON_HEADERS).reply("never")
    with pytest.raises(AuthenticationError) as info:
        await chat(mode, compat(mode, f))
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id == "rid-401"
    assert len(f.requests) == 1


@MODES
async def test_compatible_wrong_key_is_refused_by_the_fake(mode: str):
    f = FakeDashScopeCompatible("sk-right")
    with pytest.raises(AuthenticationError):
        await chat(mode, compat(mode, f, api_key="sk-wrong"))
    assert len(f.requests) == 1


@MODES
async def test_compatible_429_is_retried_then_succeeds(mode: str, no_retry_sleep: list[float]):
    f = FakeDashScopeCompatible(KEY).fail("rate_limit").reply("终于")
    result = await chat(mode, compat(mode, f))
    assert result.choices[0].message.content == "终于"
    assert len(f.requests) == 2
    assert len(no_retry_sleep) == 1


@MODES
async def test_compatible_429_exhausts_the_retries(mode: str):
    f = FakeDashScopeCompatible(KEY)
    for _ in range(3):
        f.fail("rate_limit")
    f.reply("never")
    with pytest.raises(RateLimitError):
        await chat(mode, compat(mode, f))
    assert len(f.requests) == 3


@MODES
async def test_compatible_throttling_code_is_retried(mode: str):
    f = FakeDashScopeCompatible(KEY).fail("rate_limit", code="Throttling.RateQuota").reply("好")
    result = await chat(mode, compat(mode, f))
    assert result.choices[0].message.content == "好"
    assert len(f.requests) == 2


@MODES
async def test_compatible_mid_stream_error_raises_after_earlier_chunks(mode: str):
    f = FakeDashScopeCompatible(KEY).error_mid_stream(
        2, "content_filter", content="一二三四五六七八九十"
    )
    chunks, error = await consume(await chat(mode, compat(mode, f), stream=True))
    assert text_of(chunks) == "一二三四五六七八"
    assert isinstance(error, BadRequestError)
    assert error.code == "content_filter"
    assert error.provider_code == "data_inspection_failed"
    assert len(f.requests) == 1


@MODES
async def test_compatible_mid_stream_error_byte_exact(mode: str):
    first = D8_STREAM.split(b"\n\n")[0] + b"\n\n"
    with respx.mock() as mock:
        mock.post(f"https://{CN}{COMPAT_CHAT}").respond(
            200, headers=SSE_HEADERS, content=first + MID_STREAM_FILTER
        )
        cls = OpenAI if mode == "sync" else AsyncOpenAI
        c = cls(provider="dashscope", api_key=KEY, config=COMPAT_CONFIG)
        chunks, error = await consume(await chat(mode, c, stream=True))
    assert len(chunks) == 1
    assert isinstance(error, BadRequestError)
    assert error.code == "content_filter"
    assert "inappropriate" in str(error)


@MODES
async def test_compatible_temperature_two_is_clamped(mode: str):
    f = FakeDashScopeCompatible(KEY)
    await chat(mode, compat(mode, f), temperature=2.0, top_p=1.0)
    assert f.last_json["temperature"] == 1.99
    assert f.last_json["top_p"] == 0.999999


@MODES
async def test_compatible_temperature_inside_the_range_is_kept(mode: str):
    f = FakeDashScopeCompatible(KEY)
    await chat(mode, compat(mode, f), temperature=0.7)
    assert f.last_json["temperature"] == 0.7


# =========================================================================== 3. native embeddings


@MODES
async def test_v3_body_and_dimension(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    result = await embed(
        mode, make_client(mode, rec), model="text-embedding-v3", input=["a", "b"], dimensions=512
    )
    assert rec.bodies == [
        {
            "model": "text-embedding-v3",
            "input": {"texts": ["a", "b"]},
            "parameters": {"dimension": 512},
        }
    ]
    assert isinstance(result, CreateEmbeddingResponse)
    assert result.model == "text-embedding-v3"
    assert result.provider == "dashscope"
    assert all(len(e.embedding) == 512 for e in result.data)


@MODES
async def test_results_sorted_by_text_index(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    texts = ["第一", "第二", "第三", "第四"]
    result = await embed(mode, make_client(mode, rec), model="text-embedding-v3", input=texts)
    sent = rec.answers[0]["output"]["embeddings"]
    assert [e["text_index"] for e in sent] != sorted(e["text_index"] for e in sent)  # shuffled
    assert [e.index for e in result.data] == [0, 1, 2, 3]
    by_index = {e["text_index"]: e["embedding"] for e in sent}
    assert [e.embedding for e in result.data] == float32([by_index[i] for i in range(4)])
    assert len({tuple(e.embedding) for e in result.data}) == 4


@MODES
async def test_usage_total_tokens_becomes_prompt_and_total(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    result = await embed(mode, make_client(mode, rec), model="text-embedding-v3", input=["abcdef"])
    total = rec.answers[0]["usage"]["total_tokens"]
    assert total > 0
    assert result.usage.prompt_tokens == total
    assert result.usage.total_tokens == total


@MODES
async def test_d7_byte_exact_through_respx(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(f"https://{CN}{EMBED}").respond(200, headers=JSON_HEADERS, content=D7)
        cls = OpenAI if mode == "sync" else AsyncOpenAI
        c = cls(provider="dashscope", api_key=KEY, config=NATIVE_CONFIG)
        result = await embed(
            mode,
            c,
            model="text-embedding-v3",
            input=["衣服的质量杠杠的"],
            dimensions=512,
            extra_body={"text_type": "query"},
        )
    assert json.loads(route.calls.last.request.content) == D7_REQUEST
    assert result.data[0].embedding == float32([-0.0485, 0.0257, -0.0124])
    assert result.data[0].index == 0
    assert result.usage.prompt_tokens == 7
    assert result.usage.total_tokens == 7


@MODES
async def test_out_of_order_answer_is_reordered_by_text_index(mode: str):
    body = {
        "output": {
            "embeddings": [
                {"text_index": 2, "embedding": [2.0]},
                {"text_index": 0, "embedding": [0.0]},
                {"text_index": 1, "embedding": [1.0]},
            ]
        },
        "usage": {"total_tokens": 9},
        "request_id": "rid-emb",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=body)

    result = await embed(
        mode,
        make_client(mode, handler, config=NATIVE_CONFIG),
        model="text-embedding-v3",
        input=["a", "b", "c"],
    )
    assert [e.index for e in result.data] == [0, 1, 2]
    assert [e.embedding for e in result.data] == float32([[0.0], [1.0], [2.0]])


@MODES
async def test_25_inputs_to_v3_are_batched_to_the_catalogue_limit(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    texts = [f"第{i}段 text {i}" for i in range(25)]
    result = await embed(
        mode, make_client(mode, rec), model="text-embedding-v3", input=texts, dimensions=256
    )
    batches = [body["input"]["texts"] for body in rec.bodies]
    sizes = [V3_BATCH] * (25 // V3_BATCH) + ([25 % V3_BATCH] if 25 % V3_BATCH else [])
    assert [len(b) for b in batches] == sizes
    assert [t for b in batches for t in b] == texts
    assert all(body["parameters"] == {"dimension": 256} for body in rec.bodies)
    assert [e.index for e in result.data] == list(range(25))
    assert [e.embedding for e in result.data] == float32(native_vectors(rec.answers))
    assert len({tuple(e.embedding) for e in result.data}) == 25
    assert result.usage.prompt_tokens == sum(a["usage"]["total_tokens"] for a in rec.answers)
    assert result.usage.total_tokens == result.usage.prompt_tokens


@MODES
async def test_60_inputs_to_v1_are_batched_to_its_limit(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    texts = [f"text number {i}" for i in range(60)]
    result = await embed(mode, make_client(mode, rec), model="text-embedding-v1", input=texts)
    batches = [body["input"]["texts"] for body in rec.bodies]
    assert len(batches) == math.ceil(60 / V1_BATCH)
    assert [len(b) for b in batches[:-1]] == [V1_BATCH] * (len(batches) - 1)
    assert [t for b in batches for t in b] == texts
    assert [e.index for e in result.data] == list(range(60))
    assert [e.embedding for e in result.data] == float32(native_vectors(rec.answers))
    assert all(
        len(e.embedding) == CATALOGUE["text-embedding-v1"]["dimensions"][0] for e in result.data
    )
    assert result.usage.total_tokens == sum(a["usage"]["total_tokens"] for a in rec.answers)


@MODES
async def test_a_throttled_later_batch_is_retried_and_order_kept(mode: str):
    f = FakeDashScope(KEY)
    rec = Recorder(f)
    texts = [f"t{i}" for i in range(V3_BATCH + 3)]
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if calls["n"] == 2:
            f.fail("rate_limit")
        return rec.handler(request)

    c = make_client(mode, handler, config=NATIVE_CONFIG)
    result = await embed(mode, c, model="text-embedding-v3", input=texts)
    assert len(f.requests) == 3
    assert [len(b["input"]["texts"]) for b in rec.bodies] == [V3_BATCH, 3, 3]
    assert [e.index for e in result.data] == list(range(len(texts)))
    assert [e.embedding for e in result.data] == float32(native_vectors(rec.answers))


@MODES
async def test_a_single_string_input(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    result = await embed(mode, make_client(mode, rec), model="text-embedding-v3", input="just one")
    assert rec.bodies[0]["input"] == {"texts": ["just one"]}
    assert len(result.data) == 1
    assert result.data[0].index == 0
    assert result.data[0].embedding == float32(native_vectors(rec.answers)[0])


@MODES
async def test_no_dimension_sent_unless_asked(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    result = await embed(mode, make_client(mode, rec), model="text-embedding-v3", input=["a"])
    assert "dimension" not in rec.bodies[0].get("parameters", {})
    assert len(result.data[0].embedding) == CATALOGUE["text-embedding-v3"]["default_dimensions"]


@MODES
async def test_unoffered_dimensions_rejected_before_sending(mode: str):
    f = FakeDashScope(KEY)
    with pytest.raises(BadRequestError) as info:
        await embed(
            mode, make_client(mode, f), model="text-embedding-v3", input=["a"], dimensions=300
        )
    assert f.requests == []
    message = str(info.value)
    assert "300" in message
    for allowed in V3_DIMS:
        assert str(allowed) in message
    assert info.value.param == "dimensions"


@MODES
@pytest.mark.parametrize("model", ["text-embedding-v1", "text-embedding-v2"])
async def test_fixed_size_model_own_size_is_dropped_quietly(mode: str, model: str):
    size = CATALOGUE[model]["dimensions"][0]
    rec = Recorder(FakeDashScope(KEY))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = await embed(
            mode, make_client(mode, rec), model=model, input=["a"], dimensions=size
        )
    assert "dimension" not in rec.bodies[0].get("parameters", {})
    assert len(result.data[0].embedding) == size


@MODES
@pytest.mark.parametrize("model", ["text-embedding-v1", "text-embedding-v2"])
async def test_fixed_size_model_other_size_is_refused_before_sending(mode: str, model: str):
    """Vectors of another size than asked for would break the index they go into: refused
    (as OpenAI refuses ``dimensions`` for a model without them), whatever the policy."""
    rec = Recorder(FakeDashScope(KEY))
    with pytest.raises(BadRequestError) as info:
        await embed(mode, make_client(mode, rec), model=model, input=["a"], dimensions=512)
    assert rec.requests == []
    assert info.value.param == "dimensions"
    size = CATALOGUE[model]["dimensions"][0]
    assert f"dimensions=512 is not offered by {model}; it always returns {size}" in str(info.value)


@MODES
async def test_base64_decodes_to_the_floats_sent(mode: str):
    rec = Recorder(FakeDashScope(KEY))
    texts = [f"t{i}" for i in range(V3_BATCH + 2)]
    result = await embed(
        mode,
        make_client(mode, rec),
        model="text-embedding-v3",
        input=texts,
        dimensions=64,
        encoding_format="base64",
    )
    assert all("encoding_format" not in body for body in rec.bodies)
    sent = native_vectors(rec.answers)
    assert len(result.data) == len(texts)
    for item, floats in zip(result.data, sent):
        assert isinstance(item.embedding, str)
        decoded = array("f", base64.b64decode(item.embedding))
        assert len(decoded) == 64
        assert list(decoded) == pytest.approx(floats, rel=1e-6, abs=1e-7)


@MODES
async def test_extra_body_text_type_lands_in_parameters(mode: str):
    f = FakeDashScope(KEY)
    await embed(
        mode,
        make_client(mode, f),
        model="text-embedding-v3",
        input=["a"],
        dimensions=512,
        extra_body={"text_type": "query"},
    )
    assert f.last_json["parameters"] == {"dimension": 512, "text_type": "query"}
    assert "text_type" not in f.last_json


@MODES
async def test_embedding_invalid_api_key(mode: str):
    f = FakeDashScope("sk-right")
    with pytest.raises(AuthenticationError) as info:
        await embed(
            mode, make_client(mode, f, api_key="sk-wrong"), model="text-embedding-v3", input=["a"]
        )
    assert info.value.provider_code == "InvalidApiKey"
    assert info.value.code == "invalid_api_key"
    assert info.value.request_id
    assert len(f.requests) == 1


@MODES
async def test_embedding_throttling_is_retried(mode: str, no_retry_sleep: list[float]):
    f = FakeDashScope(KEY).fail("rate_limit")
    result = await embed(mode, make_client(mode, f), model="text-embedding-v3", input=["a", "b"])
    assert len(f.requests) == 2
    assert len(no_retry_sleep) == 1
    assert [e.index for e in result.data] == [0, 1]


@MODES
async def test_embedding_throttling_exhausts_the_retries(mode: str):
    f = FakeDashScope(KEY)
    for _ in range(3):
        f.fail("rate_limit")
    with pytest.raises(RateLimitError) as info:
        await embed(mode, make_client(mode, f), model="text-embedding-v3", input=["a"])
    assert info.value.provider_code == "Throttling.RateQuota"
    assert info.value.code == "rate_limit_exceeded"
    assert len(f.requests) == 3


@MODES
async def test_embedding_arrearage_not_retried(mode: str):
    f = FakeDashScope(KEY).fail("arrears")
    with pytest.raises(RateLimitError) as info:
        await embed(mode, make_client(mode, f), model="text-embedding-v3", input=["a"])
    assert info.value.code == "insufficient_quota"
    assert len(f.requests) == 1


@MODES
async def test_embedding_http_200_with_a_code_is_an_error(mode: str):
    body = '{"code":"InvalidParameter","message":"bad","request_id":"rid-7"}'
    f = FakeDashScope(KEY).raw(200, body, JSON_HEADERS)
    with pytest.raises(BadRequestError) as info:
        await embed(mode, make_client(mode, f), model="text-embedding-v3", input=["a"])
    assert info.value.request_id == "rid-7"


# --------------------------------------------------------------------------- compatible embeddings


@MODES
async def test_compatible_embeddings_openai_shape(mode: str):
    rec = Recorder(FakeDashScopeCompatible(KEY))
    result = await embed(
        mode,
        make_client(mode, rec, config=COMPAT_CONFIG),
        model="text-embedding-v3",
        input=["a", "b"],
        dimensions=512,
    )
    assert rec.requests[0].url == url(CN, COMPAT_EMBED)
    assert rec.bodies == [{"model": "text-embedding-v3", "input": ["a", "b"], "dimensions": 512}]
    assert [e.index for e in result.data] == [0, 1]
    assert [e.embedding for e in result.data] == float32(
        [d["embedding"] for d in rec.answers[0]["data"]]
    )
    assert result.usage.prompt_tokens == rec.answers[0]["usage"]["prompt_tokens"]


@MODES
async def test_compatible_embeddings_batched_and_base64(mode: str):
    rec = Recorder(FakeDashScopeCompatible(KEY))
    texts = [f"t{i}" for i in range(25)]
    result = await embed(
        mode,
        make_client(mode, rec, config=COMPAT_CONFIG),
        model="text-embedding-v3",
        input=texts,
        encoding_format="base64",
    )
    assert [len(b["input"]) for b in rec.bodies] == [
        len(texts[i : i + V3_BATCH]) for i in range(0, 25, V3_BATCH)
    ]
    assert [t for b in rec.bodies for t in b["input"]] == texts
    sent = [d["embedding"] for a in rec.answers for d in a["data"]]
    assert [e.index for e in result.data] == list(range(25))
    for item, floats in zip(result.data, sent):
        assert list(array("f", base64.b64decode(item.embedding))) == pytest.approx(
            floats, rel=1e-6, abs=1e-7
        )
    assert result.usage.total_tokens == sum(a["usage"]["total_tokens"] for a in rec.answers)


@MODES
async def test_compatible_embeddings_errors_mapped(mode: str):
    f = FakeDashScopeCompatible(KEY).fail("rate_limit").fail("auth")
    with pytest.raises(AuthenticationError):
        await embed(
            mode, make_client(mode, f, config=COMPAT_CONFIG), model="text-embedding-v3", input=["a"]
        )
    assert len(f.requests) == 2  # the 429 was retried, the 401 was not
