"""Review 14: the async and streaming drop-in, as an openai user exercises it.

- A streamed answer's headers say who answered and which request it was, as a non-stream
  answer's do (``x-llm-bridge-provider``, ``x-request-id`` and so ``request_id``), through
  both front doors; after a fallback they name the provider that answered.
- ``openai.Timeout`` (openai 3.x's, httpx2's class) is taken wherever a timeout is.
- ``copy()`` / ``with_options()`` read openai's ``NOT_GIVEN`` as "unchanged", as openai does.
- A stream the provider finishes without a single chunk is an ``APIError``: openai's stream
  helper would otherwise fail on it with a bare ``AssertionError``.
- A sync stream closed from another thread while that one waits for the provider closes
  (openai's own streams do), rather than raising ``generator already executing``.
- A stream whose text a client-side stop sequence ended ends there, as OpenAI's does at a
  stop sequence, instead of reading (and waiting for) the rest of the provider's answer.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from helpers import HELLO, MODES, by_door, chat, consume, door_client

import llm_bridge
from llm_bridge.testing import FakeDashScopeCompatible, FakeZhipu

KEY = "id.secret"


async def _raw_stream(mode: str, client: Any, **params: Any) -> tuple[Any, list[Any]]:
    """A streamed call through ``with_raw_response``: the raw answer and its chunks."""
    raw = client.chat.completions.with_raw_response.create(
        model=params.pop("model", "glm-4-flash"), messages=HELLO, stream=True, **params
    )
    if mode == "async":
        raw = await raw
    chunks, error = await consume(raw.parse())
    assert error is None
    return raw, chunks


# --------------------------------------------------------------------------- stream headers


@MODES
@by_door
async def test_a_streamed_answer_names_its_provider_and_request(mode: str, door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("你好", chunk_size=1)
    raw, chunks = await _raw_stream(mode, door_client(door, fake, mode=mode))
    assert raw.headers["x-llm-bridge-provider"] == "zhipu"
    assert raw.request_id == chunks[0].id  # Zhipu's task id, as a non-stream answer gives it


@MODES
async def test_a_stream_after_a_fallback_names_the_provider_that_answered(mode: str) -> None:
    zhipu = FakeZhipu(api_key=KEY).fail("arrears")
    dashscope = FakeDashScopeCompatible().reply("好")

    def answer(request: httpx.Request) -> httpx.Response:
        fake = zhipu if request.url.host == "open.bigmodel.cn" else dashscope
        return fake.handler(request)

    config = {
        "providers": {"zhipu": {"api_key": KEY}, "dashscope": {"api_key": "sk-test"}},
        "models": {"fast": ["zhipu/glm-4-flash", "dashscope/qwen-plus"]},
    }
    transport = httpx.MockTransport(answer)
    if mode == "sync":
        client: Any = llm_bridge.OpenAI(
            config=config, http_client=httpx.Client(transport=transport)
        )
    else:
        upstream = httpx.AsyncClient(transport=transport)
        client = llm_bridge.AsyncOpenAI(config=config, http_client=upstream)
    raw, chunks = await _raw_stream(mode, client, model="fast")
    assert chunks[0].provider == "dashscope"
    assert raw.headers["x-llm-bridge-provider"] == "dashscope"


# --------------------------------------------------------------------------- timeouts


@MODES
async def test_an_openai_timeout_is_taken_by_the_client_and_its_copies(mode: str) -> None:
    fake = FakeZhipu(api_key=KEY)
    timeout = openai.Timeout(10.0, connect=2.0)
    client = door_client("bridge", fake, mode=mode, timeout=timeout)
    assert client.timeout is timeout  # the caller's own object, as openai keeps it
    assert client._engine.timeout == httpx.Timeout(10.0, connect=2.0)
    quicker = client.with_options(timeout=openai.Timeout(7.0, connect=1.0))
    assert quicker._engine.timeout == httpx.Timeout(7.0, connect=1.0)
    answer = await chat(mode, quicker, model="glm-4-flash")
    assert answer.choices[0].message.content


@MODES
async def test_an_openai_timeout_is_taken_by_http_client(mode: str) -> None:
    fake = FakeZhipu(api_key=KEY)
    client = door_client("http_client", fake, mode=mode, timeout=openai.Timeout(9.0, connect=2.0))
    answer = await chat(mode, client, model="glm-4-flash")
    assert answer.choices[0].message.content


# --------------------------------------------------------------------------- copy


@pytest.mark.parametrize("name", ["timeout", "max_retries", "base_url"])
def test_copy_reads_not_given_as_unchanged(name: str) -> None:
    client = door_client("bridge", FakeZhipu(api_key=KEY), timeout=30.0, max_retries=1)
    copied = client.with_options(**{name: openai.NOT_GIVEN})
    assert (copied.timeout, copied.max_retries) == (client.timeout, client.max_retries)
    assert copied.base_url == client.base_url
    answer = copied.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert answer.choices[0].message.content


# --------------------------------------------------------------------------- empty streams

EMPTY_STREAMS = {
    "done only": b"data: [DONE]\n\n",
    "usage only": b'data: {"id": "e", "created": 1, "model": "glm-4-flash", "choices": [], '
    b'"usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}}\n\n'
    b"data: [DONE]\n\n",
}


def _empty_stream(body: bytes) -> Any:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return answer


@MODES
@by_door
@pytest.mark.parametrize("body", EMPTY_STREAMS.values(), ids=EMPTY_STREAMS.keys())
async def test_a_stream_without_a_chunk_is_an_api_error(mode: str, door: str, body: bytes) -> None:
    client = door_client(door, _empty_stream(body), mode=mode, max_retries=0)
    with pytest.raises(openai.APIError):
        stream = await chat(
            mode, client, model="glm-4-flash", stream=True, stream_options={"include_usage": True}
        )
        await consume(stream, ())


@by_door
def test_the_stream_helper_on_a_stream_without_a_chunk_raises_an_api_error(door: str) -> None:
    client = door_client(door, _empty_stream(EMPTY_STREAMS["done only"]), max_retries=0)
    with (
        pytest.raises(openai.APIError),
        client.chat.completions.stream(model="glm-4-flash", messages=HELLO) as stream,
    ):
        stream.get_final_completion()


# --------------------------------------------------------------------------- closing


def _event(content: str) -> bytes:
    """One Zhipu stream event carrying ``content``."""
    delta = {"role": "assistant", "content": content}
    chunk = {
        "id": "z",
        "created": 1,
        "model": "glm-4-flash",
        "choices": [{"index": 0, "delta": delta}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _event_stream(body: Any) -> Any:
    """A provider answering every request with ``body`` (a byte stream) as its events."""

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    return answer


class _Waiting(httpx.SyncByteStream):
    """A provider stream that sends one chunk, then waits until its response is closed."""

    def __init__(self) -> None:
        self.waiting = threading.Event()  # set once the second read waits
        self.closed = threading.Event()

    def __iter__(self) -> Iterator[bytes]:
        yield _event("你")
        self.waiting.set()
        self.closed.wait(10)

    def close(self) -> None:
        self.closed.set()


def _read_all(stream: Any) -> tuple[list[Any], Any]:
    """A sync stream's chunks, and the exception that ended it, if any."""
    chunks: list[Any] = []
    try:
        for chunk in stream:
            chunks.append(chunk)
    except Exception as error:
        return chunks, error
    return chunks, None


@by_door
def test_a_stream_closed_from_another_thread_closes(door: str) -> None:
    body = _Waiting()
    records: list[Any] = []
    client = door_client(door, _event_stream(body), on_usage=records.append)
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    outcome: list[Any] = []
    reader = threading.Thread(target=lambda: outcome.append(_read_all(stream)))
    reader.start()
    assert body.waiting.wait(10)
    stream.close()  # the reader is inside the stream's loop, waiting for the provider
    reader.join(10)
    chunks, error = outcome[0]
    assert [c.choices[0].delta.content for c in chunks] == ["你"]
    assert isinstance(error, openai.APIError)  # the stream ended before the provider finished
    assert len(records) == 1


# --------------------------------------------------------------------------- stop sequences


class _StallsAfter(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Zhipu events, one a read, then a read that times out: the provider still generating
    when the caller has had all of the answer it asked for."""

    def __init__(self, pieces: list[str]) -> None:
        self.events = [_event(piece) for piece in pieces]

    def __iter__(self) -> Iterator[bytes]:
        yield from self.events
        raise httpx.ReadTimeout("the provider is still generating")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for event in self.events:
            yield event
        raise httpx.ReadTimeout("the provider is still generating")


@MODES
@by_door
async def test_a_client_side_stop_sequence_ends_the_stream(mode: str, door: str) -> None:
    answer = _event_stream(_StallsAfter(["Hel", "lo ", "the", "re ", "wor", "ld"]))
    records: list[Any] = []
    client = door_client(door, answer, mode=mode, on_usage=records.append, max_retries=0)
    stream = await chat(
        mode,
        client,
        model="glm-4-flash",
        stream=True,
        stop=["\n\n", "there"],  # GLM takes one: "there" is applied here
        stream_options={"include_usage": True},
    )
    chunks, error = await consume(stream)
    assert error is None
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert len(records) == 1 and records[0].estimated  # cut short: counted here


def test_a_stream_closed_after_its_role_only_first_chunk_records_its_prompt() -> None:
    """DashScope's first chunk names only the role: the caller has it, so the request is
    no longer retried, and the provider bills its prompt; usage was recorded only once
    some text had come."""
    fake = FakeDashScopeCompatible().reply("一二三四五六七八九十", chunk_size=1)
    client = llm_bridge.OpenAI(
        provider="dashscope",
        api_key="sk-test",
        http_client=httpx.Client(transport=fake.transport()),
    )
    stream = client.chat.completions.create(model="qwen-plus", messages=HELLO, stream=True)
    first = next(iter(stream))
    assert first.choices[0].delta.content in (None, "")  # (the role-only chunk)
    stream.close()
    (record,) = client.usage.records()
    assert record.estimated and record.usage.prompt_tokens > 0
