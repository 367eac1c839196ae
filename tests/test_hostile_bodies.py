"""Hostile upstream bodies (issue 19): an endless answer, a huge one, a gzip bomb. Each
ends in `ResponseTooLargeError` (an `APIError`) once the configured limit is read, never
a `MemoryError` or gigabytes of memory, and is not retried."""

from __future__ import annotations

import asyncio
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from functools import partial

import httpx
import openai
import pytest
from helpers import HELLO, bridge, upstream

import llm_bridge
from llm_bridge import ResponseTooLargeError

KEY = "hostile.secret"
LIMIT = 1_000_000


class Endless(httpx.SyncByteStream):
    """A 200 JSON answer that never ends (counts what was pulled from it)."""

    def __init__(self) -> None:
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        yield b'{"id": "x", "choices": [{"message": {"content": "'
        chunk = b"a" * 65536
        while True:
            self.sent += len(chunk)
            yield chunk


class Chunks(httpx.SyncByteStream):
    """Bytes sent in small pieces, as a socket delivers them."""

    def __init__(self, data: bytes, size: int = 7) -> None:
        self.data, self.size = data, size

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), self.size):
            yield self.data[start : start + self.size]


def bomb() -> bytes:
    """About 100 KB of gzip that inflates to 100 MB of spaces."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * 1_000_000
    return b"".join(compressor.compress(block) for _ in range(100)) + compressor.flush()


#: A Zhipu client answered by a handler function, reading at most LIMIT bytes of an answer.
client = partial(bridge, "zhipu", api_key=KEY, config={"limits": {"max_response_bytes": LIMIT}})


def test_an_endless_body_stops_at_the_limit_in_bounded_memory() -> None:
    body = Endless()
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=body)

    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError) as raised:
            client(handler).chat.completions.create(model="glm-4-flash", messages=HELLO)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = raised.value
    assert isinstance(error, openai.APIError)
    assert "max_response_bytes" in str(error) and f"{LIMIT:,}" in str(error)
    assert body.sent <= LIMIT + 2 * 65536  # stopped reading at the limit
    assert peak < 8 * LIMIT
    assert len(calls) == 1  # never retried


def test_a_gzip_bomb_counts_as_what_it_inflates_to() -> None:
    packed = bomb()
    assert len(packed) < LIMIT  # small on the wire

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        # (streamed, as from a socket: bytes given as content would be read whole at once)
        return httpx.Response(200, headers=headers, stream=httpx.ByteStream(packed))

    tracemalloc.start()
    try:
        with pytest.raises(ResponseTooLargeError):
            client(handler).chat.completions.create(model="glm-4-flash", messages=HELLO)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 * LIMIT


def test_an_answer_within_the_limit_is_read_as_before_gzip_included() -> None:
    answer = (
        b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"glm-4-flash",'
        b'"choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant",'
        b'"content":"\xe5\xa5\xbd"}}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
        b'"total_tokens":2}}'
    )

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=Chunks(gzip.compress(answer)))

    done = client(handler).chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert done.choices[0].message.content == "好"


def test_the_gateway_answers_a_too_large_body_with_a_502() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=Endless())

    bridge = llm_bridge.http_client(
        provider="zhipu",
        config={"limits": {"max_response_bytes": LIMIT}},
        http_client=upstream(handler),
    )
    plain = openai.OpenAI(api_key=KEY, http_client=bridge, max_retries=0)
    with pytest.raises(openai.APIStatusError) as raised:
        plain.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert raised.value.status_code == 502
    assert "max_response_bytes" in str(raised.value)


class AsyncEndless(httpx.AsyncByteStream):
    """`Endless` for an async client, noting when its iterator has been closed."""

    def __init__(self) -> None:
        self.finished = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            yield b'{"id": "x", "choices": [{"message": {"content": "'
            while True:
                yield b"a" * 65536
        finally:
            self.finished = True


def test_an_async_read_stopped_at_the_limit_closes_its_iterator_at_once() -> None:
    # (left to the garbage collector, an async generator is finalised on whatever loop
    # runs then, or warns that it never was)
    body = AsyncEndless()

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "application/json"}, stream=body)

    async def main() -> bool:
        # (llm-bridge's own client, which the engine reads from directly: the body it
        # reads is this stream's, not one httpx wrapped around it)
        upstream = llm_bridge.DefaultAsyncHttpxClient(transport=httpx.MockTransport(handler))
        async_client = llm_bridge.AsyncOpenAI(
            provider="zhipu",
            api_key=KEY,
            config={"limits": {"max_response_bytes": LIMIT}},
            http_client=upstream,
        )
        with pytest.raises(ResponseTooLargeError):
            await async_client.chat.completions.create(model="glm-4-flash", messages=HELLO)
        return body.finished  # before anything else runs

    assert asyncio.run(main())


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(llm_bridge.ConfigError, match=r"limits\.max_response_bytes"):
        llm_bridge.load_config({"limits": {"max_response_bytes": 0}})
