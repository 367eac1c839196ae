"""Deadlines (issue 19): a server that sends one byte every few hundred milliseconds never
trips a per-read timeout, so ``timeout`` now bounds a non-stream call's whole answer.

Each case runs against a loopback server that drips its answer, and must end with
`APITimeoutError` soon after the timeout, not when the drip ends (bounded: the drip would
take tens of seconds)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

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
    """A loopback server answering each connection by dripping the head (``what ==
    "head"``) or the body (``"body"``) one byte per `GAP`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                if what == "body":
                    conn.sendall(HEAD)
                for byte in HEAD + BODY if what == "head" else BODY:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(GAP)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/paas/v4"
    finally:
        stop.set()
        listener.close()


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


def test_a_dripped_body_ends_at_the_timeout_sync() -> None:
    for url in serve_drip("body"):
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key="drip.secret", base_url=url, timeout=TIMEOUT, max_retries=0
        )
        started = time.monotonic()
        with pytest.raises(llm_bridge.APITimeoutError):
            client.chat.completions.create(model="glm-4-flash", messages=HELLO)
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
