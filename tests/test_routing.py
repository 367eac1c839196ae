"""Routing: model name -> ordered (provider, upstream model) targets, and fallbacks on the wire."""

from __future__ import annotations

import json
from typing import Any, Optional

import httpx
import openai
import pytest
from helpers import openai_answer

import llm_bridge
from llm_bridge import (
    AsyncOpenAI,
    BadRequestError,
    InternalServerError,
    ModelNotFoundError,
    OpenAI,
    OpenAIError,
    load_config,
)
from llm_bridge._config import Config, builtin_providers
from llm_bridge._routing import resolve_model
from llm_bridge.testing import FakeZhipu

ZHIPU_KEY = "zhipuid.zhipusecret"
OPENAI_KEY = "sk-openai-test"
MESSAGES = [{"role": "user", "content": "route me"}]


def config(**raw: Any) -> Config:
    return load_config(raw)


def routes(cfg: Config, model: str, provider: Optional[str] = None) -> list[tuple[str, str]]:
    return [tuple(route) for route in resolve_model(cfg, model, client_provider=provider)]


def keyed(**raw: Any) -> dict[str, Any]:
    """A config mapping with keys for zhipu and openai, plus ``raw``."""
    providers = {"zhipu": {"api_key": ZHIPU_KEY}, "openai": {"api_key": OPENAI_KEY}}
    return {"providers": providers, **raw}


class Wire:
    """Zhipu through the fake; api.openai.com through an OpenAI-shaped echo."""

    def __init__(self) -> None:
        self.zhipu = FakeZhipu(api_key=ZHIPU_KEY)
        self.openai: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "open.bigmodel.cn":
            return self.zhipu.handler(request)
        request.read()
        self.openai.append(request)
        assert request.url.host == "api.openai.com", request.url
        usage = {"prompt_tokens": 2, "completion_tokens": 3, "total_tokens": 5}
        return openai_answer(request, "served by openai", usage=usage)

    def client(self, **kwargs: Any) -> OpenAI:
        http = httpx.Client(transport=httpx.MockTransport(self.handler))
        return OpenAI(http_client=http, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncOpenAI:
        http = httpx.AsyncClient(transport=httpx.MockTransport(self.handler))
        return AsyncOpenAI(http_client=http, **kwargs)


# --------------------------------------------------------------------------- resolve_model


def test_alias_to_one_target() -> None:
    cfg = config(models={"gpt-4o": "zhipu/glm-4-plus"})
    assert routes(cfg, "gpt-4o") == [("zhipu", "glm-4-plus")]


def test_alias_list_is_a_fallback_chain_in_order() -> None:
    cfg = config(models={"gpt-4o-mini": ["zhipu/glm-4-flash", "openai/gpt-4o-mini"]})
    assert routes(cfg, "gpt-4o-mini") == [("zhipu", "glm-4-flash"), ("openai", "gpt-4o-mini")]
    cfg = config(models={"gpt-4o-mini": ["openai/gpt-4o-mini", "zhipu/glm-4-flash"]})
    assert routes(cfg, "gpt-4o-mini") == [("openai", "gpt-4o-mini"), ("zhipu", "glm-4-flash")]


def test_nested_aliases_flatten_in_order() -> None:
    cfg = config(
        models={
            "cheap": "glm-4-flash",
            "strong": ["zhipu/glm-4-plus", "openai/gpt-4o"],
            "gpt-4o-mini": ["cheap", "strong", "zhipu/glm-4-flash"],
        }
    )
    assert routes(cfg, "cheap") == [("zhipu", "glm-4-flash")]
    # the duplicate zhipu/glm-4-flash at the end is tried once, at its first place
    assert routes(cfg, "gpt-4o-mini") == [
        ("zhipu", "glm-4-flash"),
        ("zhipu", "glm-4-plus"),
        ("openai", "gpt-4o"),
    ]


def test_alias_wins_over_catalogue_name() -> None:
    cfg = config(models={"glm-4-flash": "openai/gpt-4o-mini"})
    assert routes(cfg, "glm-4-flash") == [("openai", "gpt-4o-mini")]


def test_explicit_provider_prefix() -> None:
    cfg = config()
    assert routes(cfg, "openai/gpt-4o") == [("openai", "gpt-4o")]
    assert routes(cfg, "zhipu/glm-4-flash") == [("zhipu", "glm-4-flash")]
    # uncatalogued names under a known prefix are sent as written
    assert routes(cfg, "zhipu/glm-9-preview") == [("zhipu", "glm-9-preview")]
    # the prefix wins over the client's provider
    assert routes(cfg, "openai/gpt-4o", provider="zhipu") == [("openai", "gpt-4o")]


def test_explicit_prefix_to_user_defined_provider() -> None:
    cfg = config(
        providers={
            "deepseek": {
                "protocol": "openai_compat",
                "base_url": "https://api.deepseek.com/v1",
                "api_key": "sk-ds",
            }
        },
        models={"gpt-4o": "deepseek/deepseek-chat"},
    )
    assert routes(cfg, "deepseek/deepseek-chat") == [("deepseek", "deepseek-chat")]
    assert routes(cfg, "gpt-4o") == [("deepseek", "deepseek-chat")]


def test_client_provider_takes_uncatalogued_bare_names() -> None:
    cfg = config()
    assert routes(cfg, "glm-9-preview", provider="zhipu") == [("zhipu", "glm-9-preview")]
    assert routes(cfg, "gpt-4.1-nano", provider="openai") == [("openai", "gpt-4.1-nano")]
    # a catalogued name for another provider still goes to the client's provider
    assert routes(cfg, "glm-4-flash", provider="openai") == [("openai", "glm-4-flash")]


@pytest.mark.parametrize("spelling", ["glm-4-flash", "GLM-4-Flash", "GLM-4-FLASH"])
def test_catalogue_lookup_is_case_insensitive(spelling: str) -> None:
    assert "glm-4-flash" in builtin_providers()["zhipu"].models
    cfg = config()
    assert routes(cfg, spelling) == [("zhipu", "glm-4-flash")]
    assert routes(cfg, spelling, provider="zhipu") == [("zhipu", "glm-4-flash")]
    assert routes(cfg, f"zhipu/{spelling}") == [("zhipu", "glm-4-flash")]


def test_every_shipped_catalogue_name_routes_to_its_provider() -> None:
    cfg = config()
    for provider, table in builtin_providers().items():
        for name in table.models:
            assert routes(cfg, name) == [(provider, name)]


def test_default_provider_takes_unknown_names() -> None:
    cfg = config(default_provider="openai")
    assert routes(cfg, "gpt-4o") == [("openai", "gpt-4o")]
    # catalogue names still go where the catalogue says
    assert routes(cfg, "glm-4-flash") == [("zhipu", "glm-4-flash")]
    cfg = config(default_provider="zhipu")
    assert routes(cfg, "glm-9-preview") == [("zhipu", "glm-9-preview")]


def test_name_routing_nowhere_raises_with_suggestions() -> None:
    cfg = config(models={"gpt-4o": "zhipu/glm-4-plus"})
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model(cfg, "glm-4-flsh", client_provider=None)
    error = info.value
    assert isinstance(error, OpenAIError)
    assert error.model == "glm-4-flsh"
    assert "glm-4-flash" in error.suggestions
    assert "glm-4-flsh" in str(error)
    for suggestion in error.suggestions:
        assert suggestion in str(error)
    # an alias is a known name too
    with pytest.raises(ModelNotFoundError) as info:
        resolve_model(cfg, "gpt-4-o", client_provider=None)
    assert "gpt-4o" in info.value.suggestions


@pytest.mark.parametrize("model", ["nope/glm-4-flash", "", "   "])
def test_other_names_routing_nowhere(model: str) -> None:
    with pytest.raises(ModelNotFoundError):
        resolve_model(config(), model, client_provider=None)


# --------------------------------------------------------------------------- via the client


def test_client_routes_alias_to_upstream_model() -> None:
    wire = Wire()
    client = wire.client(config=keyed(models={"gpt-4o": "zhipu/glm-4-plus"}))
    answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert wire.zhipu.last_json["model"] == "glm-4-plus"
    assert (answer.provider, answer.model) == ("zhipu", "glm-4-plus")
    assert wire.openai == []


def test_client_sends_catalogue_spelling() -> None:
    wire = Wire()
    client = wire.client(config=keyed())
    answer = client.chat.completions.create(model="GLM-4-Flash", messages=MESSAGES)
    assert wire.zhipu.last_json["model"] == "glm-4-flash"
    assert answer.model == "glm-4-flash"


def test_client_provider_sends_uncatalogued_name() -> None:
    wire = Wire()
    client = wire.client(config=keyed(), provider="zhipu")
    answer = client.chat.completions.create(model="glm-9-preview", messages=MESSAGES)
    assert wire.zhipu.last_json["model"] == "glm-9-preview"
    assert answer.provider == "zhipu"


def test_client_explicit_prefix_reaches_other_provider() -> None:
    wire = Wire()
    client = wire.client(config=keyed())
    answer = client.chat.completions.create(model="openai/gpt-4o", messages=MESSAGES)
    (request,) = wire.openai
    assert str(request.url) == "https://api.openai.com/v1/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {OPENAI_KEY}"
    assert json.loads(request.content)["model"] == "gpt-4o"
    assert (answer.provider, answer.model) == ("openai", "gpt-4o")
    assert wire.zhipu.requests == []


def test_client_default_provider() -> None:
    wire = Wire()
    client = wire.client(config=keyed(default_provider="zhipu"))
    client.chat.completions.create(model="some-new-glm", messages=MESSAGES)
    assert wire.zhipu.last_json["model"] == "some-new-glm"


def test_unroutable_name_fails_before_any_request() -> None:
    wire = Wire()
    client = wire.client(config=keyed())
    with pytest.raises(ModelNotFoundError) as info:
        client.chat.completions.create(model="glm-4-flsh", messages=MESSAGES)
    assert isinstance(info.value, OpenAIError)
    assert "glm-4-flash" in info.value.suggestions
    assert "glm-4-flash" in str(info.value)
    assert wire.zhipu.requests == []
    assert wire.openai == []
    with pytest.raises(ModelNotFoundError):
        client.embeddings.create(model="embeding-3", input="x")
    assert wire.zhipu.requests == []


async def test_unroutable_name_fails_before_any_request_async() -> None:
    wire = Wire()
    client = wire.async_client(config=keyed())
    with pytest.raises(ModelNotFoundError) as info:
        await client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert info.value.model == "gpt-4o"
    assert wire.zhipu.requests == []
    assert wire.openai == []
    await client.close()


# --------------------------------------------------------------------------- fallback chains

CHAIN = {"models": {"gpt-4o-mini": ["zhipu/glm-4-flash", "openai/gpt-4o-mini"]}}


def test_fallback_after_server_errors_beyond_retries() -> None:
    wire = Wire()
    for _ in range(10):
        wire.zhipu.fail("server_error")
    client = wire.client(config=keyed(**CHAIN), max_retries=2)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(wire.zhipu.requests) == 3  # first try + 2 retries, then the next target
    assert len(wire.openai) == 1
    assert json.loads(wire.openai[0].content)["model"] == "gpt-4o-mini"
    assert (answer.provider, answer.model) == ("openai", "gpt-4o-mini")
    assert answer.choices[0].message.content == "served by openai"


async def test_fallback_after_server_errors_beyond_retries_async() -> None:
    wire = Wire()
    for _ in range(10):
        wire.zhipu.fail("server_error")
    client = wire.async_client(config=keyed(**CHAIN), max_retries=1)
    answer = await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(wire.zhipu.requests) == 2
    assert len(wire.openai) == 1
    assert (answer.provider, answer.model) == ("openai", "gpt-4o-mini")
    await client.close()


ALL_FAIL = {"models": {"sturdy": ["zhipu/glm-4-flash", "zhipu/glm-4-air"]}}


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_chain_that_fails_everywhere_keeps_every_targets_error(mode: str) -> None:
    """Issue 19: only the last target's error was raised, with no trace of the others."""
    wire = Wire()
    wire.zhipu.fail("overloaded", status=503, message="first down").fail(
        "server_error", status=500, message="second down"
    )
    if mode == "sync":
        with pytest.raises(InternalServerError) as info:
            wire.client(config=keyed(**ALL_FAIL), max_retries=0).chat.completions.create(
                model="sturdy", messages=MESSAGES
            )
    else:
        client = wire.async_client(config=keyed(**ALL_FAIL), max_retries=0)
        with pytest.raises(InternalServerError) as info:
            await client.chat.completions.create(model="sturdy", messages=MESSAGES)
        await client.close()
    error = info.value
    chain = [(f.provider, f.model, type(f.error).__name__) for f in error.fallback_errors]
    assert [c[:2] for c in chain] == [("zhipu", "glm-4-flash"), ("zhipu", "glm-4-air")]
    assert error.fallback_errors[-1].error is error
    first = error.fallback_errors[0].error
    assert "first down" in str(first) and "second down" in str(error)
    assert "before it: zhipu/glm-4-flash: RateLimitError: " in str(error)


def test_a_plain_openai_client_reads_the_chain_in_the_error_body() -> None:
    wire = Wire()
    wire.zhipu.fail("overloaded", status=503).fail("server_error", status=500)
    http = httpx.Client(transport=httpx.MockTransport(wire.handler))
    bridge = llm_bridge.http_client(config=keyed(**ALL_FAIL), http_client=http, max_retries=0)
    plain = openai.OpenAI(api_key="unused", http_client=bridge, max_retries=0)
    with pytest.raises(openai.InternalServerError) as info:
        plain.chat.completions.create(model="sturdy", messages=MESSAGES)
    body = info.value.body
    assert isinstance(body, dict)
    assert [f["model"] for f in body["fallbacks"]] == ["glm-4-flash", "glm-4-air"]


def test_first_target_serving_means_no_fallback() -> None:
    wire = Wire()
    wire.zhipu.fail("server_error")  # one failure: the retry succeeds
    client = wire.client(config=keyed(**CHAIN), max_retries=2)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(wire.zhipu.requests) == 2
    assert wire.openai == []
    assert (answer.provider, answer.model) == ("zhipu", "glm-4-flash")


def test_bad_request_on_first_target_does_not_fall_back() -> None:
    wire = Wire()
    wire.zhipu.fail("bad_request")
    client = wire.client(config=keyed(**CHAIN))
    with pytest.raises(BadRequestError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.status_code == 400
    assert info.value.provider == "zhipu"
    assert len(wire.zhipu.requests) == 1
    assert wire.openai == []


async def test_bad_request_on_first_target_does_not_fall_back_async() -> None:
    wire = Wire()
    wire.zhipu.fail("bad_request")
    client = wire.async_client(config=keyed(**CHAIN))
    with pytest.raises(BadRequestError):
        await client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(wire.zhipu.requests) == 1
    assert wire.openai == []
    await client.close()


def test_last_target_failing_raises_its_error() -> None:
    wire = Wire()
    for _ in range(10):
        wire.zhipu.fail("server_error")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.openai.com":
            wire.openai.append(request)
            return httpx.Response(503, json={"error": {"message": "down", "type": "server"}})
        return wire.handler(request)

    client = OpenAI(
        config=keyed(models={"gpt-4o-mini": ["openai/gpt-4o-mini", "zhipu/glm-4-flash"]}),
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(InternalServerError) as info:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert info.value.provider == "zhipu"  # the last target's error, not the first's
    assert len(wire.openai) == 1
    assert len(wire.zhipu.requests) == 1
