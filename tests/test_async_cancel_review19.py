"""A cancellation that arrives with the answer reaches the caller (review 19).

Before Python 3.12, ``asyncio.wait_for`` swallows a cancellation of the awaiting task that
arrives in the same loop step as the awaited result (CPython gh-86296): it returns the
result, and the task goes on as if never cancelled. llm-bridge held every async request,
every error body of a stream and every call to the token share to its deadline with
``wait_for``, so an ``asyncio.timeout``, a ``wait_for`` or a TaskGroup abort around a call
could be lost: a stream read to the end, a call retried, ``task.cancelling()`` left at 1.
openai's own client does not do this. They are now held by `_deadline.within`.

The cases are deterministic: the transport (or the share) has the caller's task cancelled
in the very step it answers, as a timer or a TaskGroup sibling would when it happens to run
then. Each fails with ``wait_for`` on Python 3.10 and 3.11.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Optional

import httpx
import pytest

import llm_bridge
from llm_bridge._auth import QianfanIamToken, SharedToken
from llm_bridge._config import builtin_providers
from llm_bridge._deadline import within
from llm_bridge._token_share import obtain_token
from llm_bridge.testing import FakeZhipu

KEY = "review19.secret"
HELLO: Any = [{"role": "user", "content": "你好"}]


def cancel_soon(task: Optional[asyncio.Task[Any]]) -> None:
    """Cancel ``task`` in the next callback round: the step that schedules this ends first
    (with its result, here), as when a timer and an answer come due together."""
    assert task is not None
    asyncio.get_running_loop().call_soon(task.cancel)


async def ends_cancelled(work: Awaitable[Any]) -> asyncio.Task[Any]:
    """Run ``work`` as a task of its own (the one cancelled) and return it, ended."""

    async def caller() -> str:
        await work
        await asyncio.sleep(0)  # a cancel that came with the answer strikes here at the latest
        return "finished"

    task = asyncio.ensure_future(caller())
    await asyncio.wait({task}, timeout=10)
    assert task.done()
    return task


async def assert_ends_cancelled(work: Awaitable[Any], closing: Any = None) -> None:
    """``work`` ends cancelled: the caller's cancellation reached it (``closing``, a
    client, is closed afterwards either way)."""
    try:
        task = await ends_cancelled(work)
    finally:
        if closing is not None:
            await closing.close()
    assert task.cancelled(), f"the call went on: {task.result()!r}"


class CancelOnAnswer(httpx.AsyncBaseTransport):
    """The fake GLM's answers; the first has the calling task cancelled as it comes."""

    def __init__(self) -> None:
        self.inner = FakeZhipu(api_key=KEY).transport()
        self.victim: Optional[asyncio.Task[Any]] = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if self.victim is not None:
            cancel_soon(self.victim)
            self.victim = None
        return response


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_cancel_that_comes_with_the_answer_cancels_the_call(stream: bool) -> None:
    transport = CancelOnAnswer()
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        timeout=30.0,  # a deadline: the request is held to it
        max_retries=0,
        http_client=httpx.AsyncClient(transport=transport),
    )

    async def call() -> None:
        transport.victim = asyncio.current_task()
        answer: Any = await client.chat.completions.create(
            model="glm-4-flash", messages=HELLO, stream=stream
        )
        if stream:
            async for _ in answer:  # (wait_for: read to the end, the cancel lost)
                pass

    await assert_ends_cancelled(call(), closing=client)


class EndsWithCancel(httpx.AsyncByteStream):
    """An error body whose last read has the calling task cancelled."""

    def __init__(self, body: bytes, victim: Optional[asyncio.Task[Any]]) -> None:
        self.body = body
        self.victim = victim

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body
        cancel_soon(self.victim)

    async def aclose(self) -> None:
        pass


async def test_a_cancel_that_comes_with_a_stream_error_body_cancels_the_call() -> None:
    """A stream answered with an error: its body is read (`_read_answer`) before the
    retry. With ``wait_for`` the cancel was lost there, and the call retried and answered."""
    fake = FakeZhipu(api_key=KEY)
    victim: list[asyncio.Task[Any]] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if victim:  # the first attempt
            body = EndsWithCancel(b'{"error":{"message":"busy"}}', victim.pop())
            headers = {"content-type": "application/json", "x-should-retry": "true"}
            return httpx.Response(503, headers={**headers, "retry-after-ms": "1"}, stream=body)
        return fake.handler(request)

    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        timeout=30.0,
        max_retries=1,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )

    async def call() -> None:
        task = asyncio.current_task()
        assert task is not None
        victim.append(task)
        stream = await client.chat.completions.create(
            model="glm-4-flash", messages=HELLO, stream=True
        )
        async for _ in stream:
            pass

    await assert_ends_cancelled(call(), closing=client)


class CancelOnFirstLook:
    """A token share that has the calling task cancelled as it answers the first look."""

    def __init__(self) -> None:
        self.victim: Optional[asyncio.Task[Any]] = None

    async def get(self, key: str) -> Optional[SharedToken]:
        if self.victim is not None:
            cancel_soon(self.victim)
            self.victim = None
        return None

    async def put(self, key: str, token: SharedToken, ttl: float) -> None:
        pass

    async def acquire(self, key: str, ttl: float) -> Optional[str]:
        return "owner"

    async def release(self, key: str, owner: str) -> None:
        pass


async def test_a_cancel_that_comes_with_the_token_shares_answer_cancels_the_fetch() -> None:
    share = CancelOnFirstLook()
    credentials = QianfanIamToken(
        "ALTAKs7Ke2mTx4LpQ8tWd3Yf",
        "9e1b2d4c6e8f0a1b3c5d7e9f1a5f0c7a",
        iam_token_url=builtin_providers()["qianfan"].iam_token_url or "",
    )

    async def mint() -> None:
        await asyncio.sleep(0)  # a token request: other tasks run

    async def fetch() -> None:
        share.victim = asyncio.current_task()
        await obtain_token(share, credentials, mint)

    task = await ends_cancelled(fetch())
    assert task.cancelled(), f"the fetch went on: {task.result()!r}"


# `within` itself: the deadline, the caller's cancel, and the result, on this Python.


async def test_within_hands_over_the_result_and_the_error() -> None:
    async def answer() -> str:
        await asyncio.sleep(0)
        return "answer"

    async def fail() -> str:
        await asyncio.sleep(0)
        raise httpx.ReadError("cut")

    assert await within(answer(), 5.0) == "answer"
    with pytest.raises(httpx.ReadError):
        await within(fail(), 5.0)


async def hang_noting(cancelled: list[bool]) -> None:
    """Wait for ever; note being cancelled in ``cancelled``."""
    try:
        await asyncio.sleep(30)
    except asyncio.CancelledError:
        cancelled.append(True)
        raise


async def test_within_cancels_the_step_at_the_deadline_and_leaves_the_caller_uncancelled() -> None:
    cancelled: list[bool] = []
    hang = functools.partial(hang_noting, cancelled)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await within(hang(), 0.05)
    assert 0.04 < time.monotonic() - started < 2.0
    assert cancelled == [True]  # ended, not left running behind the caller
    task = asyncio.current_task()
    if sys.version_info >= (3, 11):
        assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # no cancellation left over for the caller


async def test_within_a_deadline_already_past_never_starts_the_step() -> None:
    started: list[bool] = []

    async def step() -> None:
        started.append(True)

    coroutine = step()
    with pytest.raises(TimeoutError):
        await within(coroutine, 0.0)
    assert started == []
    assert inspect.getcoroutinestate(coroutine) == inspect.CORO_CLOSED  # never "not awaited"


async def test_within_a_cancel_of_the_caller_stops_the_step() -> None:
    cancelled: list[bool] = []
    hang = functools.partial(hang_noting, cancelled)

    task = asyncio.ensure_future(within(hang(), 30.0))
    await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.wait({task}, timeout=5)
    assert task.cancelled() and cancelled == [True]


async def test_within_a_cancel_that_comes_with_the_result_reaches_the_caller() -> None:
    async def answer(victim: Optional[asyncio.Task[Any]]) -> str:
        await asyncio.sleep(0)
        cancel_soon(victim)
        return "answer"

    async def call() -> None:
        await within(answer(asyncio.current_task()), 30.0)

    await assert_ends_cancelled(call())


async def test_a_request_past_its_deadline_is_a_timeout_and_the_caller_goes_on() -> None:
    """The engine's deadline, on `within`: `APITimeoutError`, as before, and no
    cancellation left behind for the caller (which an outer timeout would misread)."""

    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        raise AssertionError("never answered")

    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        timeout=0.1,
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(slow)),
    )
    started = time.monotonic()
    try:
        with pytest.raises(llm_bridge.APITimeoutError):
            await client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    finally:
        await client.close()
    assert time.monotonic() - started < 2.0
    task = asyncio.current_task()
    if sys.version_info >= (3, 11):
        assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)
