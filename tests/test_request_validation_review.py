"""Requests OpenAI's server refuses are refused here too, in its terms, before anything is
sent: a missing required parameter, a boolean given as a string, ``stream_options``
without ``stream``, an unknown ``encoding_format``, and embeddings ``input`` as token ids
(which the Chinese providers do not take). A provider's own error reaches a client with
the message the provider gave, without the ``Error code: 400 -`` openai's client puts
before it. Each is checked on the wire of the transport (a plain HTTP request, where
openai's client would refuse some of these itself), through the openai client, and
through the gateway. Offline, against the fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge.gateway import create_app, hash_key
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeZhipu

KEY = "id.secret"
ZHIPU_ROOT = "https://open.bigmodel.cn/api/paas/v4"
DASHSCOPE_ROOT = "https://dashscope.aliyuncs.com/compatible-mode/v1"
HELLO: Any = [{"role": "user", "content": "你好"}]
GATEWAY_KEY = "sk-lb-validationreview-0123456789abcdef"


def wire(fake: Any) -> Any:
    """``llm_bridge.http_client()`` itself (an ``httpx2`` client under openai 3.x): raw
    OpenAI requests into the transport."""
    return llm_bridge.http_client(http_client=httpx.Client(transport=fake.transport()))


def refusal(response: httpx.Response) -> dict[str, Any]:
    """The error of a 400 answer."""
    assert response.status_code == 400, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    return error


def post(fake: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A raw request to Zhipu's root through the transport, refused."""
    headers = {"Authorization": f"Bearer {KEY}"}
    return refusal(wire(fake).post(ZHIPU_ROOT + path, json=body, headers=headers))


# --------------------------------------------------------------------------- required


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", {"model": "glm-4-flash"}, "messages"),
        ("/chat/completions", {"messages": HELLO}, "model"),
        ("/embeddings", {"model": "embedding-3"}, "input"),
        ("/embeddings", {"input": "你好"}, "model"),
    ],
)
def test_a_missing_required_parameter_is_named_in_openais_words(
    path: str, body: dict[str, Any], param: str
) -> None:
    fake = FakeZhipu(api_key=KEY)
    error = post(fake, path, body)
    assert error["message"] == f"Missing required parameter: '{param}'."
    assert (error["param"], error["code"]) == (param, "missing_required_parameter")
    assert fake.requests == []


# --------------------------------------------------------------------------- chat


@pytest.mark.parametrize("name", ["stream", "logprobs", "parallel_tool_calls", "store"])
def test_a_boolean_parameter_given_as_a_string_is_refused(name: str) -> None:
    fake = FakeZhipu(api_key=KEY)
    error = post(
        fake, "/chat/completions", {"model": "glm-4-flash", "messages": HELLO, name: "yes"}
    )
    assert error["param"] == name
    assert error["message"] == f"{name} must be a boolean, got str"
    assert fake.requests == []


@pytest.mark.parametrize("stream", [None, False])
def test_stream_options_without_stream_is_refused(stream: Any) -> None:
    fake = FakeZhipu(api_key=KEY)
    body = {"model": "glm-4-flash", "messages": HELLO, "stream_options": {"include_usage": True}}
    if stream is not None:
        body["stream"] = stream
    error = post(fake, "/chat/completions", body)
    assert error["message"] == (
        "The 'stream_options' parameter is only allowed when 'stream' is enabled."
    )
    assert error["param"] == "stream_options"
    assert fake.requests == []


def test_stream_options_that_is_not_an_object_is_refused() -> None:
    fake = FakeZhipu(api_key=KEY)
    body = {"model": "glm-4-flash", "messages": HELLO, "stream": True, "stream_options": "usage"}
    error = post(fake, "/chat/completions", body)
    assert error["param"] == "stream_options" and "must be an object" in error["message"]
    assert fake.requests == []


def test_the_openai_client_gets_the_same_refusal_for_stream_options() -> None:
    fake = FakeZhipu(api_key=KEY)
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.Client(transport=fake.transport())
    )
    with pytest.raises(llm_bridge.BadRequestError) as info:
        client.chat.completions.create(
            model="glm-4-flash", messages=HELLO, stream_options={"include_usage": True}
        )
    assert info.value.param == "stream_options" and fake.requests == []


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("path", "body", "said"),
    [
        ("/chat/completions", {"model": "glm-4-flash", "messages": HELLO, "n": 129}, "<= 128"),
        ("/chat/completions", {"model": "glm-4-flash", "messages": HELLO, "n": 0}, ">= 1"),
        (
            "/chat/completions",
            {"model": "glm-4-flash", "messages": HELLO, "logprobs": True, "top_logprobs": 21},
            "<= 20",
        ),
        ("/embeddings", {"model": "embedding-3", "input": ["一"] * 2049}, "at most 2048"),
    ],
    ids=["n-high", "n-low", "top_logprobs", "inputs"],
)
def test_counts_past_openais_bounds_are_refused_before_anything_is_sent(
    path: str, body: dict[str, Any], said: str
) -> None:
    # Each of n's choices is a request of its own where the provider takes one, and each
    # 64 texts one: a gateway key's n=100000 made 100000 provider calls.
    fake = FakeZhipu(api_key=KEY)
    error = post(fake, path, body)
    assert said in error["message"]
    assert fake.requests == []


def test_one_text_given_as_its_token_ids_may_be_longer_than_2048() -> None:
    # (refused as token ids, not for its length)
    fake = FakeZhipu(api_key=KEY)
    error = post(fake, "/embeddings", {"model": "embedding-3", "input": [1] * 3000})
    assert "text only" in error["message"]


# --------------------------------------------------------------------------- embeddings


def test_an_unknown_encoding_format_is_refused_naming_the_allowed_values() -> None:
    fake = FakeZhipu(api_key=KEY)
    body = {"model": "embedding-3", "input": "你好", "encoding_format": "hex"}
    error = post(fake, "/embeddings", body)
    assert error["param"] == "encoding_format"
    assert "'float' or 'base64'" in error["message"] and "'hex'" in error["message"]
    assert fake.requests == []


TOKEN_INPUTS = pytest.mark.parametrize(
    "tokens", [[15339, 1917], [[15339, 1917], [9906]]], ids=["ids", "lists-of-ids"]
)


@TOKEN_INPUTS
@pytest.mark.parametrize(
    ("fake", "settings", "model"),
    [
        (FakeZhipu(api_key=KEY), {"provider": "zhipu"}, "embedding-3"),
        (FakeDashScopeCompatible(api_key=KEY), {"base_url": DASHSCOPE_ROOT}, "text-embedding-v3"),
        (
            FakeDashScope(api_key=KEY),
            {"config": {"providers": {"dashscope": {"api_key": KEY, "api": "native"}}}},
            "text-embedding-v3",
        ),
    ],
    ids=["zhipu", "dashscope-compatible", "dashscope-native"],
)
def test_token_id_input_is_refused_before_sending_with_a_way_out(
    fake: Any, settings: dict[str, Any], model: str, tokens: list[Any]
) -> None:
    settings = {"api_key": KEY, **settings}
    upstream = httpx.Client(transport=fake.transport())
    client = llm_bridge.OpenAI(http_client=upstream, **settings)
    before = len(fake.requests)
    with pytest.raises(llm_bridge.BadRequestError) as info:
        client.embeddings.create(model=model, input=tokens)
    assert info.value.param == "input"
    assert "text only" in info.value.message
    assert "check_embedding_ctx_length=False" in info.value.message
    assert len(fake.requests) == before  # nothing was sent


# --------------------------------------------------------------------------- provider errors


def test_a_provider_errors_message_on_the_wire_has_no_client_prefix() -> None:
    fake = FakeZhipu(api_key=KEY).fail("bad_request").fail("bad_request").fail("bad_request")
    body = {"model": "glm-4-flash", "messages": HELLO}
    error = post(fake, "/chat/completions", body)
    assert error["message"].startswith("[zhipu 1214] ")
    # A plain openai client adds its own prefix once, to the provider's message.
    plain = openai.OpenAI(api_key=KEY, base_url=ZHIPU_ROOT, http_client=wire(fake))
    with pytest.raises(openai.BadRequestError) as info:
        plain.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert info.value.message.count("Error code: 400") == 1
    # llm_bridge.OpenAI raises the provider's error worded as openai's client words it.
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.Client(transport=fake.transport())
    )
    with pytest.raises(llm_bridge.BadRequestError) as raised:
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert raised.value.message.startswith("Error code: 400 - [zhipu 1214] ")


# --------------------------------------------------------------------------- gateway


@asynccontextmanager
async def gateway(tmp_path: Path, fake: Any) -> AsyncIterator[httpx.AsyncClient]:
    config = {
        "providers": {"zhipu": {"api_key": KEY}},
        "gateway": {
            "ledger": str(tmp_path / "ledger.sqlite"),
            "keys": {"team": {"key_sha256": hash_key(GATEWAY_KEY), "models": ["*"]}},
        },
    }
    app: Any = create_app(config, http_client=httpx.AsyncClient(transport=fake.transport()))
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield client
    finally:
        await app.shutdown()


@pytest.mark.parametrize(
    ("path", "body", "param", "text"),
    [
        ("/v1/chat/completions", {"model": "glm-4-flash"}, "messages", "Missing required"),
        ("/v1/embeddings", {"model": "embedding-3"}, "input", "Missing required"),
        (
            "/v1/chat/completions",
            {"model": "glm-4-flash", "messages": HELLO, "stream": "yes"},
            "stream",
            "must be a boolean",
        ),
        (
            "/v1/chat/completions",
            {"model": "glm-4-flash", "messages": HELLO, "stream_options": {"include_usage": True}},
            "stream_options",
            "only allowed when 'stream' is enabled",
        ),
        (
            "/v1/embeddings",
            {"model": "embedding-3", "input": "x", "encoding_format": "hex"},
            "encoding_format",
            "'float' or 'base64'",
        ),
        (
            "/v1/embeddings",
            {"model": "embedding-3", "input": [15339, 1917]},
            "input",
            "check_embedding_ctx_length=False",
        ),
    ],
)
async def test_the_gateway_refuses_the_same_requests_the_same_way(
    tmp_path: Path, path: str, body: dict[str, Any], param: str, text: str
) -> None:
    fake = FakeZhipu(api_key=KEY)
    async with gateway(tmp_path, fake) as client:
        headers = {"Authorization": f"Bearer {GATEWAY_KEY}"}
        error = refusal(await client.post(path, json=body, headers=headers))
    assert error["param"] == param and text in error["message"]
    assert fake.requests == []


async def test_the_gateway_passes_a_provider_error_on_without_the_client_prefix(
    tmp_path: Path,
) -> None:
    fake = FakeZhipu(api_key=KEY).fail("bad_request")
    async with gateway(tmp_path, fake) as client:
        headers = {"Authorization": f"Bearer {GATEWAY_KEY}"}
        body = {"model": "glm-4-flash", "messages": HELLO}
        error = refusal(await client.post("/v1/chat/completions", json=body, headers=headers))
    assert error["message"].startswith("[zhipu 1214] ") and error["provider"] == "zhipu"


@pytest.mark.parametrize("name", ["stream", "store", "background", "parallel_tool_calls"])
def test_a_responses_boolean_given_as_a_string_is_refused(name: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("不会发出")
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.Client(transport=fake.transport())
    )
    with pytest.raises(openai.BadRequestError) as caught:
        client.post(
            "/responses",
            body={"model": "glm-4-flash", "input": "你好", name: "yes"},
            cast_to=httpx.Response,
        )
    assert caught.value.param == name and "boolean" in caught.value.message
    assert fake.requests == []
