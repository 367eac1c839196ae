"""Failure behaviour as a caller relying on openai's semantics meets it (review 14).

- A stream request answered with an error (or any body that is not an event stream) has
  that body read as a non-stream answer is: within ``max_response_bytes`` and by the
  call's timeout, so an endless, inflating or dripped error body cannot hold the call.
- A compressed event stream is inflated in steps, so a gzip bomb meets the stream's line
  limit with bounded memory.
- An answer that fails its emulated JSON schema is corrected once whether or not a failed
  attempt came before it, and the corrected request is retried as any other.
- ``retry-after: 0`` is no wait asked for: the backoff applies, as in openai.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import traceback
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional

import httpx
import openai
import pytest
from helpers import HELLO, MODES, bridge, chat, consume, loopback_server
from pydantic import BaseModel

import llm_bridge
from llm_bridge import APITimeoutError, ResponseTooLargeError
from llm_bridge.testing import FakeQianfan, FakeZhipu

pytestmark = pytest.mark.timeout(60)

KEY = "review14.secret"
LIMIT = 1_000_000
#: A Zhipu stream chunk (one event), before whatever follows it in a test.
FIRST_EVENT = (
    b'data: {"id":"c","created":1,"model":"glm-4-flash","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"hi"}}]}\n\n'
)


def limited(source: Any, mode: str, **options: Any) -> Any:
    """A Zhipu client answered by ``source``, reading at most `LIMIT` bytes of an answer."""
    limits = {"max_response_bytes": LIMIT, "max_sse_line_bytes": 100_000}
    return bridge("zhipu", source, mode=mode, api_key=KEY, config={"limits": limits}, **options)


class Endless(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that never ends (counts what was pulled from it), after ``head``."""

    def __init__(self, head: bytes) -> None:
        self.head = head
        self.sent = 0

    def _pieces(self) -> Iterator[bytes]:
        yield self.head
        chunk = b"a" * 65536
        while self.sent < 500 * LIMIT:  # (a bound for the test's sake: far past the limit)
            self.sent += len(chunk)
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        return self._pieces()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self._pieces():
            yield piece


class Packed(httpx.SyncByteStream, httpx.AsyncByteStream):
    """Bytes handed over in one piece, as one network read (sync or async)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __iter__(self) -> Iterator[bytes]:
        yield self.data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


def gzipped(*parts: bytes, repeat: bytes = b"", times: int = 0) -> bytes:
    """``parts`` then ``repeat`` ``times`` over, gzip-compressed (never whole in memory)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    packed = [compressor.compress(part) for part in parts]
    packed += [compressor.compress(repeat) for _ in range(times)]
    return b"".join(packed) + compressor.flush()


def peak_of(call: Any) -> tuple[BaseException, int]:
    """The error ``call()`` raised and the most memory the process held meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(llm_bridge.APIError) as caught:
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return caught.value, peak


def run(mode: str, coroutine: Any) -> Any:
    """A `helpers.chat`-style coroutine run to its end (a sync client's call runs in it)."""
    return asyncio.run(coroutine)


# --------------------------------------------------------------------------- error bodies


@MODES
def test_an_endless_error_body_to_a_stream_request_stops_at_the_limit(mode: str) -> None:
    """It was read whole (``response.read()``): 500 MB here, all of it in memory."""
    bodies: list[Endless] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(Endless(b'{"error": {"code": "500", "message": "'))
        headers = {"content-type": "application/json"}
        return httpx.Response(500, headers=headers, stream=bodies[-1])

    client = limited(handler, mode)
    with pytest.raises(ResponseTooLargeError):
        run(mode, chat(mode, client, model="glm-4-flash", stream=True))
    assert len(bodies) == 1  # a size limit is never retried
    assert bodies[0].sent < 4 * LIMIT


@MODES
def test_a_gzip_bomb_answering_a_stream_request_counts_as_what_it_inflates_to(mode: str) -> None:
    packed = gzipped(repeat=b" " * LIMIT, times=100)  # 100 MB of spaces, 100 KB sent

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": "gzip"}
        return httpx.Response(500, headers=headers, stream=Packed(packed))

    client = limited(handler, mode)
    error, peak = peak_of(lambda: run(mode, chat(mode, client, model="glm-4-flash", stream=True)))
    assert isinstance(error, ResponseTooLargeError)
    assert peak < 8 * LIMIT


#: Seconds between two bytes of a dripped body: far below the timeout, so no single read
#: times out; the whole body would take `DRIP_BYTES` times as long.
GAP = 0.2
DRIP_BYTES = 200
TIMEOUT = 1.0


def drip_server(head: bytes) -> Iterator[str]:
    """A loopback server (its Zhipu root) that answers every request with ``head``, then
    a body one byte per `GAP`."""

    def drip(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(head)
        for _ in range(DRIP_BYTES):
            if stop.wait(GAP):
                return
            conn.sendall(b" ")

    return loopback_server(drip)


@MODES
def test_a_dripped_error_body_to_a_stream_request_ends_at_the_timeout(mode: str) -> None:
    """It was read with only the per-read timeout: the whole drip, 40 s here."""
    head = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\r\n"
    for url in drip_server(head):
        cls = llm_bridge.OpenAI if mode == "sync" else llm_bridge.AsyncOpenAI
        client = cls(provider="zhipu", api_key=KEY, base_url=url, timeout=TIMEOUT, max_retries=0)
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            run(mode, chat(mode, client, model="glm-4-flash", stream=True))
        assert time.monotonic() - started < TIMEOUT + 5.0  # (the drip: 40 s)


# --------------------------------------------------------------------------- streams


#: zlib's window bits for each way of compressing a body: gzip, zlib-wrapped deflate, and
#: the raw deflate some servers send as "deflate" (httpx reads it too).
WBITS = {"gzip": 31, "deflate": 15, "raw deflate": -15}


async def compressed_answer(mode: str, how: str = "gzip") -> str:
    """The text of a healthy compressed stream (see `WBITS`), read through a client of
    ``mode``."""
    fake = FakeZhipu(api_key=KEY).reply("你好，世界")

    def handler(request: httpx.Request) -> httpx.Response:
        answer = fake.handler(request)
        packer = zlib.compressobj(9, zlib.DEFLATED, WBITS[how])  # (3.10: no wbits= in compress)
        body = packer.compress(answer.read()) + packer.flush()
        encoding = how.split()[-1]
        headers = {"content-type": "text/event-stream", "content-encoding": encoding}
        return httpx.Response(200, headers=headers, stream=Packed(body))

    stream = await chat(mode, limited(handler, mode), model="glm-4-flash", stream=True)
    chunks, error = await consume(stream)
    assert error is None
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@MODES
def test_a_compressed_stream_is_inflated_in_steps(mode: str) -> None:
    """httpx inflated each read whole: 100 KB of gzip became one 100 MB line in memory
    before the line limit could see it."""
    packed = gzipped(FIRST_EVENT, b"data: ", repeat=b"a" * LIMIT, times=100)

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"content-type": "text/event-stream", "content-encoding": "gzip"}
        return httpx.Response(200, headers=headers, stream=Packed(packed))

    async def read_all() -> None:
        stream = await chat(mode, limited(handler, mode), model="glm-4-flash", stream=True)
        chunks, error = await consume(stream)
        assert chunks  # the first event came through
        assert error is not None
        raise error

    # Once unmeasured: what a first broken stream loads for good (the tokenizer that
    # estimates its usage) is not what the bomb holds.
    with pytest.raises(ResponseTooLargeError):
        run(mode, read_all())
    error, peak = peak_of(lambda: run(mode, read_all()))
    assert isinstance(error, ResponseTooLargeError) and error.setting == "max_sse_line_bytes"
    assert peak < 8 * LIMIT


@MODES
@pytest.mark.parametrize("how", list(WBITS))
def test_a_compressed_stream_within_the_limits_reads_as_before(mode: str, how: str) -> None:
    assert run(mode, compressed_answer(mode, how)) == "你好，世界"


@MODES
@pytest.mark.parametrize("stream", [False, True])
def test_a_whole_answer_in_raw_deflate_reads_as_httpx_reads_it(mode: str, stream: bool) -> None:
    """A non-stream answer sent as "deflate" without zlib's header was "compression is
    broken" (and retried), where httpx, and a stream, read it."""
    fake = FakeZhipu(api_key=KEY).reply("你好，世界")

    def handler(request: httpx.Request) -> httpx.Response:
        answer = fake.handler(request)
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        body = packer.compress(answer.read()) + packer.flush()
        headers = {**answer.headers, "content-encoding": "deflate"}
        headers.pop("content-length", None)
        return httpx.Response(answer.status_code, headers=headers, stream=Packed(body))

    async def call() -> str:
        answer = await chat(mode, limited(handler, mode), model="glm-4-flash", stream=stream)
        if not stream:
            return answer.choices[0].message.content
        chunks, error = await consume(answer)
        assert error is None
        return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)

    assert run(mode, call()) == "你好，世界"


def layered_bomb() -> bytes:
    """gzip of gzip: a few KB that a layer-by-layer decoder inflates to 100 MB."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    inner = gzipped(repeat=b" " * 1_000_000, times=100)
    return packer.compress(inner) + packer.flush()


@MODES
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("encoding", ["gzip, gzip", "br", "zstd"])
def test_an_encoding_not_asked_for_is_refused_before_it_inflates(
    mode: str, stream: bool, encoding: str
) -> None:
    """httpx decoded brotli, zstd and layered gzip a network read at a time: a 2 KB
    answer grew to gigabytes before a limit saw it. Only gzip and deflate are asked
    for, and read (a step at a time)."""
    packed = layered_bomb()
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers["accept-encoding"])
        content_type = "text/event-stream" if stream else "application/json"
        headers = {"content-type": content_type, "content-encoding": encoding}
        return httpx.Response(200, headers=headers, stream=Packed(packed))

    async def call() -> None:
        answer = await chat(
            mode, limited(handler, mode, max_retries=0), model="glm-4-flash", stream=stream
        )
        if stream:
            _, error = await consume(answer)
            raise error or AssertionError("no error")

    error, peak = peak_of(lambda: run(mode, call()))
    assert isinstance(error, llm_bridge.APIConnectionError)
    assert f"Content-Encoding {encoding!r} is not one llm-bridge reads" in str(error)
    assert peak < 8 * LIMIT
    assert asked == ["gzip, deflate"]


# --------------------------------------------------------------------------- retries


class City(BaseModel):
    name: str


GOOD = json.dumps({"name": "杭州"}, ensure_ascii=False)


def test_a_failure_of_the_corrected_request_is_retried() -> None:
    """The corrected request was sent outside the retry loop: its 500 ended the call."""
    fake = FakeZhipu(api_key=KEY).reply("不是 JSON").fail("server_error", status=500).reply(GOOD)
    client = bridge("zhipu", fake, api_key=KEY)
    parsed = client.chat.completions.parse(
        model="glm-4-flash", messages=HELLO, response_format=City
    )
    assert parsed.choices[0].message.parsed == City(name="杭州")
    assert len(fake.requests) == 3


def test_an_answer_after_a_retry_is_still_corrected() -> None:
    """A mismatch after a failed attempt was raised without asking once more."""
    fake = FakeZhipu(api_key=KEY).fail("server_error", status=500).reply("不是 JSON").reply(GOOD)
    client = bridge("zhipu", fake, api_key=KEY)
    parsed = client.chat.completions.parse(
        model="glm-4-flash", messages=HELLO, response_format=City
    )
    assert parsed.choices[0].message.parsed == City(name="杭州")
    assert len(fake.requests) == 3
    corrected = json.loads(fake.requests[2].content)["messages"]
    assert corrected[-2] == {"role": "assistant", "content": "不是 JSON"}


@pytest.mark.parametrize("header", ["retry-after", "retry-after-ms"])
def test_a_retry_after_of_zero_gets_the_backoff(header: str, no_retry_sleep: list[float]) -> None:
    """As openai: only a wait above zero is the provider's; all retries at once was not."""
    fake = FakeZhipu(api_key=KEY).fail("rate_limit", status=429, headers={header: "0"})
    client = bridge("zhipu", fake.reply("好"), api_key=KEY)
    assert client.chat.completions.create(model="glm-4-flash", messages=HELLO).choices
    assert len(no_retry_sleep) == 1 and 0.375 <= no_retry_sleep[0] <= 0.5


# --------------------------------------------------------------------------- error objects


@MODES
def test_a_size_limit_error_names_its_provider(mode: str) -> None:
    """It was the one provider error with ``provider`` None and no provider in its text."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"choices": [{"message": {"content": "a" * LIMIT}}]})

    with pytest.raises(ResponseTooLargeError) as caught:
        run(mode, chat(mode, limited(handler, mode), model="glm-4-flash"))
    assert caught.value.provider == "zhipu"
    assert caught.value.message.startswith("[zhipu] ")


def test_the_last_entry_of_a_failed_chain_is_its_own_failure_alone() -> None:
    """Its message in ``body["fallbacks"]`` was the whole chain's, the summary repeated."""
    zhipu = FakeZhipu(api_key=KEY).fail("server_error", status=500, message="first down")
    zhipu.fail("server_error", status=500, message="second down")
    config = {
        "models": {"sturdy": ["zhipu/glm-4-flash", "zhipu/glm-4-air"]},
        "providers": {"zhipu": {"api_key": KEY}},
    }
    client = llm_bridge.OpenAI(config=config, http_client=httpx.Client(transport=zhipu.transport()))
    with pytest.raises(llm_bridge.InternalServerError) as caught:
        client.with_options(max_retries=0).chat.completions.create(model="sturdy", messages=HELLO)
    body: Any = caught.value.body
    chain = body["fallbacks"]
    assert [entry["message"] for entry in chain] == [
        "[zhipu 500] first down",
        "[zhipu 500] second down",
    ]
    assert "every fallback target failed" in caught.value.message  # (the raised one says it)


# --------------------------------------------------------------------------- secrets

QF_AK, QF_SK = "review14QianfanAK", "review14QianfanSK"


def test_an_unreachable_provider_leaves_no_access_token_in_the_traceback() -> None:
    """Through ``http_client()`` the `APIConnectionError` reaches the caller as raised, and
    its cause was the httpx error: its message quoted the URL, ``access_token=`` and all
    (as an event hook's ``raise_for_status()`` does), and its request held it unmasked."""
    fake = FakeQianfan(api_key=QF_AK, secret_key=QF_SK)

    def handler(request: httpx.Request) -> httpx.Response:
        if "access_token" not in request.url.params:
            return fake.handler(request)  # (the token fetch)
        raise httpx.ReadError(f"error reading {request.url}", request=request)

    config = {"providers": {"qianfan": {"api": "v1", "api_key": QF_AK, "secret_key": QF_SK}}}
    upstream = httpx.Client(transport=httpx.MockTransport(handler))
    bridged = llm_bridge.http_client(
        provider="qianfan", config=config, http_client=upstream, max_retries=0
    )
    plain = openai.OpenAI(api_key="unused", http_client=bridged, max_retries=0)
    with pytest.raises(openai.APIConnectionError) as caught:
        plain.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
    (token,) = fake.issued_tokens
    error: BaseException = caught.value
    assert "error reading" in str(error)  # the scenario happened as scripted
    assert token not in "".join(traceback.format_exception(error))
    link: Optional[BaseException] = error
    while link is not None:
        assert token not in f"{link} {link!r} {getattr(link, 'request', '')!r}"
        assert token not in str(getattr(getattr(link, "request", None), "url", ""))
        link = link.__cause__ or link.__context__


class _BreaksAfter(httpx.SyncByteStream):
    """A stream body that sends ``head``, then fails as a dropped connection whose
    message quotes ``url`` (as httpx's may)."""

    def __init__(self, head: bytes, request: httpx.Request) -> None:
        self.head, self.request = head, request

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        raise httpx.ReadError(f"error reading {self.request.url}", request=self.request)


def test_a_stream_broken_midway_leaves_no_access_token_in_the_traceback() -> None:
    """The same for a stream that breaks after its first event, through either door: the
    `APIConnectionError` was raised ``from`` the httpx error."""
    fake = FakeQianfan(api_key=QF_AK, secret_key=QF_SK)
    first = b'data: {"id":"as-1","result":"hi","is_end":false,"sentence_id":0}\n\n'

    def handler(request: httpx.Request) -> httpx.Response:
        if "access_token" not in request.url.params:
            return fake.handler(request)  # (the token fetch)
        stream = _BreaksAfter(first, request)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)

    config = {"providers": {"qianfan": {"api": "v1", "api_key": QF_AK, "secret_key": QF_SK}}}
    upstream = httpx.Client(transport=httpx.MockTransport(handler))
    client = llm_bridge.OpenAI(
        provider="qianfan", config=config, http_client=upstream, max_retries=0
    )
    stream = client.chat.completions.create(model="ernie-4.0-8k", messages=HELLO, stream=True)
    with pytest.raises(openai.APIConnectionError) as caught:
        for _ in stream:
            pass
    (token,) = fake.issued_tokens
    error: BaseException = caught.value
    assert token not in "".join(traceback.format_exception(error))


@MODES
def test_a_stream_line_past_its_limit_names_its_provider(mode: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        endless = Endless(FIRST_EVENT + b"data: ")  # one line that never ends
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=endless)

    async def read() -> None:
        stream = await chat(mode, limited(handler, mode), model="glm-4-flash", stream=True)
        await consume(stream, ())

    with pytest.raises(ResponseTooLargeError) as caught:
        run(mode, read())
    assert caught.value.provider == "zhipu"
