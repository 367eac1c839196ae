"""Context-window pre-flight: a prompt plus max_tokens beyond the window is refused unsent.

Windows are read from providers/*.toml here; prompts are sized with
``llm_bridge.tokens.count_message_tokens`` so the tests sit exactly on the boundary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import provider_table

from llm_bridge import AsyncOpenAI, BadRequestError, OpenAI
from llm_bridge import tokens as tokens_module
from llm_bridge.testing import FakeDashScope, FakeQianfan, FakeZhipu
from llm_bridge.tokens import count_message_tokens

MODES = pytest.mark.parametrize("mode", ["sync", "async"])
CASES = {
    "zhipu": "glm-4-airx",
    "qianfan": "ernie-4.0-8k",
    "dashscope": "qwen-max",
}
PROVIDERS = pytest.mark.parametrize("provider", sorted(CASES))
SENTENCE = "杭州西湖的风景四季皆美，苏堤春晓与断桥残雪最为有名。Hello West Lake! "


def context_window(provider: str, model: str) -> int:
    return int(provider_table(provider)["models"][model]["context_window"])


def make(provider: str, mode: str = "sync", **kwargs: Any) -> tuple[Any, Any]:
    if provider == "zhipu":
        fake: Any = FakeZhipu(api_key="id.secret")
        keys: dict[str, Any] = {"api_key": "id.secret"}
    elif provider == "qianfan":
        fake = FakeQianfan("ak", "sk")
        keys = {
            "api_key": "ak",
            "secret_key": "sk",
            "config": {"providers": {"qianfan": {"api": "v1"}}},
        }
    else:
        fake = FakeDashScope("sk-test")
        keys = {"api_key": "sk-test", "config": {"providers": {"dashscope": {"api": "native"}}}}
    if mode == "sync":
        http: Any = httpx.Client(transport=fake.transport())
        return OpenAI(provider=provider, http_client=http, **keys, **kwargs), fake
    http = httpx.AsyncClient(transport=fake.transport())
    return AsyncOpenAI(provider=provider, http_client=http, **keys, **kwargs), fake


async def create(client: Any, **params: Any) -> Any:
    result = client.chat.completions.create(**params)
    if isinstance(client, AsyncOpenAI):
        result = await result
    return result


def chat_requests(fake: Any) -> list[httpx.Request]:
    """Requests that carried a chat (not Qianfan's OAuth token fetches)."""
    return [r for r in fake.requests if "oauth" not in r.url.path]


def prompt(sentences: int) -> list[dict[str, str]]:
    return [{"role": "user", "content": SENTENCE * sentences}]


# --------------------------------------------------------------------------- boundary


@MODES
@PROVIDERS
async def test_one_token_over_the_window_is_refused_unsent(provider: str, mode: str) -> None:
    model = CASES[provider]
    window = context_window(provider, model)
    messages = prompt(20)
    tokens = count_message_tokens(messages, model, provider=provider)
    client, fake = make(provider, mode)

    with pytest.raises(BadRequestError) as caught:
        await create(client, model=model, messages=messages, max_tokens=window - tokens + 1)

    error = caught.value
    assert error.code == "context_length_exceeded"
    assert error.status_code == 400
    assert str(window) in str(error)
    # Worded as a provider's refusal is (langchain-openai tells a context overflow by
    # "context_length_exceeded" in the text), the body keeping the bare message.
    assert str(error).startswith("Error code: 400 - ")
    assert str(error).endswith("(context_length_exceeded)")
    assert isinstance(error.body, dict) and "Error code" not in str(error.body)
    assert fake.requests == []
    assert len(client.usage) == 0


@MODES
@PROVIDERS
async def test_exactly_the_window_is_sent(provider: str, mode: str) -> None:
    model = CASES[provider]
    window = context_window(provider, model)
    messages = prompt(20)
    tokens = count_message_tokens(messages, model, provider=provider)
    client, fake = make(provider, mode)

    completion = await create(client, model=model, messages=messages, max_tokens=window - tokens)

    assert completion.choices[0].message.content
    assert len(chat_requests(fake)) == 1


@MODES
async def test_max_completion_tokens_counts_too(mode: str) -> None:
    window = context_window("zhipu", "glm-4-airx")
    messages = prompt(20)
    tokens = count_message_tokens(messages, "glm-4-airx", provider="zhipu")
    client, fake = make("zhipu", mode)

    with pytest.raises(BadRequestError) as caught:
        await create(
            client,
            model="glm-4-airx",
            messages=messages,
            max_completion_tokens=window - tokens + 1,
        )
    assert caught.value.code == "context_length_exceeded"
    assert fake.requests == []

    await create(
        client, model="glm-4-airx", messages=messages, max_completion_tokens=window - tokens
    )
    assert len(fake.requests) == 1


def test_prompt_alone_beyond_the_window_is_refused() -> None:
    window = context_window("zhipu", "glm-4-airx")
    messages = prompt(400)
    assert count_message_tokens(messages, "glm-4-airx", provider="zhipu") > window
    client, fake = make("zhipu")

    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(model="glm-4-airx", messages=messages)

    assert caught.value.code == "context_length_exceeded"
    assert fake.requests == []


def test_stream_requests_are_preflighted() -> None:
    window = context_window("dashscope", "qwen-max")
    client, fake = make("dashscope")
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(
            model="qwen-max",
            messages=prompt(1),
            max_tokens=window,
            stream=True,
        )
    assert caught.value.code == "context_length_exceeded"
    assert fake.requests == []


def test_provider_prefixed_model_is_preflighted() -> None:
    window = context_window("zhipu", "glm-4-airx")
    fake = FakeZhipu(api_key="id.secret")
    client = OpenAI(
        config={"providers": {"zhipu": {"api_key": "id.secret"}}},
        http_client=httpx.Client(transport=fake.transport()),
    )
    with pytest.raises(BadRequestError) as caught:
        client.chat.completions.create(
            model="zhipu/glm-4-airx", messages=prompt(1), max_tokens=window
        )
    assert caught.value.code == "context_length_exceeded"
    assert fake.requests == []


# --------------------------------------------------------------------------- off switches


@MODES
async def test_policy_preflight_false_sends_anyway(mode: str) -> None:
    window = context_window("zhipu", "glm-4-airx")
    client, fake = make("zhipu", mode, config={"policy": {"preflight": False}})

    completion = await create(client, model="glm-4-airx", messages=prompt(400), max_tokens=window)

    assert completion.choices[0].message.content
    assert len(fake.requests) == 1


def test_policy_preflight_false_from_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "llm_bridge.toml"
    path.write_text("[policy]\npreflight = false\n", encoding="utf-8")
    window = context_window("zhipu", "glm-4-airx")
    client, fake = make("zhipu", config=path)
    client.chat.completions.create(model="glm-4-airx", messages=prompt(1), max_tokens=window)
    assert len(fake.requests) == 1


@MODES
async def test_model_not_in_the_catalogue_is_never_preflighted(mode: str) -> None:
    tokens_module._encodings.clear()
    client, fake = make("zhipu", mode)

    await create(
        client,
        model="glm-99-experimental",
        messages=prompt(2000),
        max_tokens=10_000_000,
    )

    assert len(fake.requests) == 1
    # Not even counted: the vocabulary was never needed.
    assert tokens_module._encodings == {}
    tokens_module._encodings.clear()


# --------------------------------------------------------------------------- cost of checking


@MODES
@PROVIDERS
async def test_small_prompt_does_not_load_the_vocabulary(provider: str, mode: str) -> None:
    tokens_module._encodings.clear()
    assert tokens_module._encodings == {}
    client, fake = make(provider, mode)

    await create(
        client,
        model=CASES[provider],
        messages=[{"role": "user", "content": "你好"}],
        max_tokens=100,
    )

    assert len(chat_requests(fake)) == 1
    assert tokens_module._encodings == {}  # never loaded
    tokens_module._encodings.clear()
