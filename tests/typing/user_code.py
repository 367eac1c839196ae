"""A user's file, type-checked (never run) by tests/test_typing.py.

It must type-check under pyright exactly as the same file written against ``openai`` does:
the test also checks a copy with ``llm_bridge`` replaced by ``openai`` (``provider=`` removed, and
``http_client()`` replaced by openai's default client), so every ``assert_type`` below states
what openai's own types say.
"""

from __future__ import annotations

from typing import Any, Literal

import httpx2
import openai
import pydantic
from openai.lib.streaming.chat import ChatCompletionStreamManager
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ParsedChatCompletion
from typing_extensions import assert_type

import llm_bridge
import llm_bridge.types.chat

MODEL = "glm-4-flash"
HELLO: list[Any] = [{"role": "user", "content": "你好"}]


class City(pydantic.BaseModel):
    name: str
    country: str


def wants_openai(client: openai.OpenAI) -> str:
    return client.chat.completions.create(model=MODEL, messages=HELLO).id


async def wants_async_openai(client: openai.AsyncOpenAI) -> str:
    return (await client.chat.completions.create(model=MODEL, messages=HELLO)).id


def wants_http_client(http_client: httpx2.Client) -> None:
    """openai 3.x's ``http_client`` type."""


def wants_async_http_client(http_client: httpx2.AsyncClient) -> None:
    """openai 3.x's ``http_client`` type, async."""


def on_rate_limit(error: openai.RateLimitError) -> int:
    return error.status_code


def sync_user() -> None:
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret")
    assert_type(client, llm_bridge.OpenAI)
    wants_openai(client)  # usable where openai.OpenAI is expected

    completion = client.chat.completions.create(model=MODEL, messages=HELLO)
    assert_type(completion, ChatCompletion)
    assert_type(completion.choices[0].message.content, "str | None")

    stream = client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert_type(stream, openai.Stream[ChatCompletionChunk])
    assert_type(stream, llm_bridge.Stream[ChatCompletionChunk])
    for chunk in stream:
        assert_type(chunk, ChatCompletionChunk)

    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=HELLO)
    assert_type(raw.parse(), ChatCompletion)
    assert_type(raw.request_id, "str | None")

    parsed = client.chat.completions.parse(model=MODEL, messages=HELLO, response_format=City)
    assert_type(parsed, ParsedChatCompletion[City])
    assert_type(parsed.choices[0].message.parsed, "City | None")

    manager = client.chat.completions.stream(model=MODEL, messages=HELLO, response_format=City)
    assert_type(manager, ChatCompletionStreamManager[City])
    with manager as events:
        assert_type(events.get_final_completion(), ParsedChatCompletion[City])

    copy = client.with_options(max_retries=1, timeout=5)
    assert_type(copy, llm_bridge.OpenAI)
    assert_type(copy.chat.completions.create(model=MODEL, messages=HELLO), ChatCompletion)

    embeddings = client.embeddings.create(model="embedding-3", input=["你好"])
    assert_type(embeddings, CreateEmbeddingResponse)
    assert_type(embeddings.data[0].embedding, "list[float]")

    try:
        client.chat.completions.create(model=MODEL, messages=HELLO)
    except llm_bridge.RateLimitError as error:
        assert_type(error, llm_bridge.RateLimitError)
        assert_type(on_rate_limit(error), int)  # usable as openai.RateLimitError
        assert_type(error.status_code, Literal[429])

    assert_type(completion, llm_bridge.types.chat.ChatCompletion)
    same: type[ChatCompletion] = llm_bridge.types.chat.ChatCompletion
    assert_type(same, type[ChatCompletion])


def plain_client_through_the_bridge() -> None:
    wants_http_client(llm_bridge.http_client())
    client = openai.OpenAI(api_key="id.secret", http_client=llm_bridge.http_client())
    assert_type(client.chat.completions.create(model=MODEL, messages=HELLO), ChatCompletion)


async def async_user() -> None:
    client = llm_bridge.AsyncOpenAI(provider="zhipu", api_key="id.secret")
    assert_type(client, llm_bridge.AsyncOpenAI)
    await wants_async_openai(client)

    completion = await client.chat.completions.create(model=MODEL, messages=HELLO)
    assert_type(completion, ChatCompletion)

    stream = await client.chat.completions.create(model=MODEL, messages=HELLO, stream=True)
    assert_type(stream, openai.AsyncStream[ChatCompletionChunk])
    assert_type(stream, llm_bridge.AsyncStream[ChatCompletionChunk])
    async for chunk in stream:
        assert_type(chunk, ChatCompletionChunk)

    parsed = await client.chat.completions.parse(model=MODEL, messages=HELLO, response_format=City)
    assert_type(parsed, ParsedChatCompletion[City])

    copy = client.with_options(max_retries=1)
    assert_type(copy, llm_bridge.AsyncOpenAI)

    embeddings = await client.embeddings.create(model="embedding-3", input="你好")
    assert_type(embeddings, CreateEmbeddingResponse)

    wants_async_http_client(llm_bridge.async_http_client())
    plain = openai.AsyncOpenAI(api_key="id.secret", http_client=llm_bridge.async_http_client())
    assert_type(await plain.chat.completions.create(model=MODEL, messages=HELLO), ChatCompletion)
