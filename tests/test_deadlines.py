"""Deadlines (issue 19): a server that sends one byte every few hundred milliseconds never
trips a per-read timeout, so ``timeout`` now bounds a non-stream call's whole answer.

Each case runs against a loopback server that drips its answer, and must end with
`APITimeoutError` soon after the timeout, not when the drip ends (bounded: the drip would
take tens of seconds)."""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from helpers import loopback_server

import llm_bridge

HELLO: Any = [{"role": "user", "content": "你好"}]
BODY = (
    b'{"id":"c","created":1,"model":"glm-4-flash","choices":[{"index":0,"finish_reason":"stop",'
    b'"message":{"role":"assistant","content":"' + b"a" * 200 + b'"}}]}'
)
HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(
    BODY
)
TIMEOUT = 1.0
GAP = 0.2  # seconds between bytes: far below the timeout, so no single read times out


def serve_drip(what: str) -> Iterator[str]:
    """A loopback server dripping the head (``what == "head"``) or the body (``"body"``)
    one byte per `GAP`."""

    def drip(conn: socket.socket, stop: threading.Event) -> None:
        if what == "body":
            conn.sendall(HEAD)
        for byte in HEAD + BODY if what == "head" else BODY:
            if stop.is_set():
                return
            conn.sendall(bytes([byte]))
            time.sleep(GAP)

    return loopback_server(drip)


@pytest.fixture(params=["body", "head"])
def drip(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    for url in serve_drip(request.param):
        yield request.param, url


def test_a_dripped_answer_ends_at_the_timeout_async(drip: tuple[str, str]) -> None:
    _, url = drip

    async def call() -> None:
        client = llm_bridge.AsyncOpenAI(
            provider="zhipu", api_key="drip.secret", base_url=url, timeout=TIMEOUT, max_retries=0
        )
        try:
            await client.chat.completions.create(model="glm-4-flash", messages=HELLO)
        finally:
            await client.close()

    started = time.monotonic()
    with pytest.raises(llm_bridge.APITimeoutError):
        asyncio.run(call())
    assert time.monotonic() - started < TIMEOUT + 2.0


def test_a_dripped_answer_ends_at_the_timeout_sync(drip: tuple[str, str]) -> None:
    """The head too: the default client's reads are held to the deadline."""
    _, url = drip
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key="drip.secret", base_url=url, timeout=TIMEOUT, max_retries=0
    )
    started = time.monotonic()
    with pytest.raises(llm_bridge.APITimeoutError):
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert time.monotonic() - started < TIMEOUT + 2.0
    client.close()


def test_a_dripped_head_of_a_stream_ends_at_the_timeout() -> None:
    for url in serve_drip("head"):
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key="drip.secret", base_url=url, timeout=TIMEOUT, max_retries=0
        )
        started = time.monotonic()
        with pytest.raises(llm_bridge.APITimeoutError):
            client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        assert time.monotonic() - started < TIMEOUT + 2.0
        client.close()


def test_retries_each_get_the_deadline() -> None:
    """Each attempt is bounded, so a call makes max_retries + 1 bounded attempts."""
    for url in serve_drip("body"):
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key="drip.secret", base_url=url, timeout=0.5, max_retries=1
        )
        started = time.monotonic()
        with pytest.raises(llm_bridge.APITimeoutError):
            client.chat.completions.create(model="glm-4-flash", messages=HELLO)
        assert time.monotonic() - started < 2 * 0.5 + 3.0  # two attempts, one backoff
        client.close()


# ----------------------------------------------------------------------------- streams

SSE_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
EVENT = (
    b'data: {"id":"c","created":1,"model":"glm-4-flash","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":"a"}}]}\n\n'
)


def serve_sse(pattern: str, *, for_seconds: float = math.inf) -> Iterator[str]:
    """A loopback server answering with an event stream that never ends: after one event,
    keep-alive comments only (``"keepalive"``), an event every `GAP` (``"events"``), or
    nothing at all (``"silent"``); the comments or events for ``for_seconds``, then
    silence."""

    def stream(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(SSE_HEAD + EVENT)
        ends = time.monotonic() + for_seconds
        while not stop.wait(GAP):
            if time.monotonic() + GAP > ends:
                continue
            if pattern == "keepalive":
                conn.sendall(b": keep-alive\n\n")
            elif pattern == "events":
                conn.sendall(EVENT)

    return loopback_server(stream)


def read_stream(
    url: str, *, flavour: str = "sync", until: float = 30.0, **client: Any
) -> tuple[int, float, Optional[Exception]]:
    """Chunks read from a stream of ``url`` before it failed, the time it took, the error
    (None: the stream was still going after ``until`` seconds, and was left)."""
    options: dict[str, Any] = dict(provider="zhipu", api_key="sse.secret", base_url=url)
    options.update(max_retries=0, **client)
    chunks = 0
    started = time.monotonic()
    if flavour == "sync":
        with llm_bridge.OpenAI(**options) as sync_client:
            try:
                for _ in sync_client.chat.completions.create(
                    model="glm-4-flash", messages=HELLO, stream=True
                ):
                    chunks += 1
                    if time.monotonic() - started > until:
                        return chunks, time.monotonic() - started, None
            except Exception as error:
                return chunks, time.monotonic() - started, error
        raise AssertionError("the stream never ends: it cannot have ended")

    async def read() -> tuple[int, float, Optional[Exception]]:
        nonlocal chunks
        async with llm_bridge.AsyncOpenAI(**options) as async_client:
            try:
                stream = await async_client.chat.completions.create(
                    model="glm-4-flash", messages=HELLO, stream=True
                )
                async for _ in stream:
                    chunks += 1
                    if time.monotonic() - started > until:
                        return chunks, time.monotonic() - started, None
            except Exception as error:
                return chunks, time.monotonic() - started, error
        raise AssertionError("the stream never ends: it cannot have ended")

    return asyncio.run(read())


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


def test_keep_alives_alone_end_a_stream_at_its_read_timeout(flavour: str) -> None:
    """Keep-alive comments every GAP never trip the per-read timeout; the idle timeout,
    which is the read timeout by default, counts them as nothing."""
    for url in serve_sse("keepalive"):
        chunks, took, error = read_stream(url, flavour=flavour, timeout=TIMEOUT)
        assert isinstance(error, llm_bridge.APITimeoutError), error
        assert "without an event" in str(error) and "stream_idle_timeout" in str(error)
        assert chunks == 1  # the one event before the keep-alives
        assert TIMEOUT <= took < TIMEOUT + 2.0


def test_the_idle_timeout_is_set_per_call_by_header_and_in_the_config(flavour: str) -> None:
    for url in serve_sse("keepalive"):
        _, took, error = read_stream(
            url,
            flavour=flavour,
            default_headers={"x-llm-bridge-stream-idle-timeout": "0.5"},
        )
        assert isinstance(error, llm_bridge.APITimeoutError) and took < 0.5 + 2.0
        _, took, error = read_stream(
            url, flavour=flavour, config={"limits": {"stream_idle_timeout": 0.5}}
        )
        assert isinstance(error, llm_bridge.APITimeoutError) and took < 0.5 + 2.0


def test_a_silent_stream_ends_at_its_idle_timeout_not_the_read_timeout(flavour: str) -> None:
    """Nothing arrives: the request's read timeout was lowered to the idle timeout."""
    for url in serve_sse("silent"):
        _, took, error = read_stream(
            url, flavour=flavour, config={"limits": {"stream_idle_timeout": 0.5}}
        )
        assert isinstance(error, llm_bridge.APITimeoutError), error
        assert took < 0.5 + 2.0


def test_a_stream_of_events_ends_at_its_deadline(flavour: str) -> None:
    """Events every GAP keep it from ever being idle; the deadline ends it."""
    for url in serve_sse("events"):
        chunks, took, error = read_stream(
            url, flavour=flavour, default_headers={"x-llm-bridge-stream-deadline": "1.2"}
        )
        assert isinstance(error, llm_bridge.APITimeoutError), error
        assert "deadline of 1.2 s" in str(error) and "stream_deadline" in str(error)
        assert chunks >= 3  # the events before it reached the caller
        assert 1.2 <= took < 1.2 + 2.0
        # Without a deadline the same stream goes on past it (the default is none).
        _, took, error = read_stream(url, flavour=flavour, timeout=1.0, until=2.5)
        assert error is None and took > 2.5


@pytest.mark.parametrize(
    ("pattern", "limit"),
    [("keepalive", "x-llm-bridge-stream-idle-timeout"), ("events", "x-llm-bridge-stream-deadline")],
)
def test_silence_after_reads_ends_a_stream_at_its_limit_not_later(
    flavour: str, pattern: str, limit: str
) -> None:
    """The read timeout restarts at every read: keep-alives (or events) until just before
    the limit, then silence, ended the stream nearly twice its limit late."""
    seconds = 2.0
    for url in serve_sse(pattern, for_seconds=0.8 * seconds):
        _, took, error = read_stream(
            url, flavour=flavour, timeout=30.0, default_headers={limit: str(seconds)}
        )
        assert isinstance(error, llm_bridge.APITimeoutError), error
        assert seconds <= took < 1.4 * seconds  # (it took 1.8 times the limit)


def test_a_bad_stream_limit_is_refused_naming_the_header() -> None:
    with pytest.raises(llm_bridge.BadRequestError) as caught:
        llm_bridge.OpenAI(provider="zhipu", api_key="id.secret").chat.completions.create(
            model="glm-4-flash",
            messages=HELLO,
            stream=True,
            extra_headers={"x-llm-bridge-stream-deadline": "soon"},
        )
    assert "x-llm-bridge-stream-deadline" in str(caught.value)
    assert "greater than 0" in str(caught.value)
    with pytest.raises(llm_bridge.ConfigError, match="stream_idle_timeout"):
        llm_bridge.OpenAI(
            provider="zhipu", api_key="id.secret", config={"limits": {"stream_idle_timeout": 0}}
        )


def test_closing_a_sync_stream_from_another_thread_ends_the_read_at_once() -> None:
    """A "stop" button: the reading thread waited in the socket read for the whole read
    timeout (600 s by default), holding the provider's connection, after close()."""
    for url in serve_sse("silent"):
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key="sse.secret", base_url=url, max_retries=0, timeout=20.0
        )
        stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        ended: list[float] = []
        reader = threading.Thread(target=read_to_the_end, args=(stream, ended), daemon=True)
        reader.start()
        time.sleep(0.3)  # (the reader is waiting in the read by now)
        closed = time.monotonic()
        stream.close()
        reader.join(10.0)
        assert ended and ended[0] - closed < 5.0  # (it took the read timeout, 20 s)
        client.close()


def read_to_the_end(stream: Any, ended: list[float]) -> None:
    """Read ``stream`` until it ends or fails; note when in ``ended``."""
    try:
        for _ in stream:
            pass
    except Exception:
        pass
    ended.append(time.monotonic())
