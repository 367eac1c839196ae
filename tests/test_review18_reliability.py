"""Failures end cleanly: a review of retries, fan-out, deadlines and hostile upstream
bytes."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

import llm_bridge
from llm_bridge.testing import FakeZhipu

KEY = "review18.secret"
HELLO = [{"role": "user", "content": "你好"}]


def answered_by(handler: Any, **options: Any) -> llm_bridge.AsyncOpenAI:
    """An async GLM client whose requests ``handler`` answers."""
    transport = httpx.MockTransport(handler)
    return llm_bridge.AsyncOpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.AsyncClient(transport=transport), **options
    )


def test_a_failed_copy_cancels_its_siblings() -> None:
    """``n=3`` on GLM is three requests; one refused left the other two running (and
    retried, each billed) after the caller had its error."""
    fake = FakeZhipu(api_key=KEY)
    seen: list[int] = []
    cancelled: list[int] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        seen.append(len(seen))
        if len(seen) == 2:
            body = {"error": {"code": "1214", "message": "bad input"}}
            return httpx.Response(400, json=body)
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(len(seen))
            raise
        return fake.handler(request)

    async def call() -> None:
        client = answered_by(handler, max_retries=2)
        with pytest.raises(llm_bridge.BadRequestError):
            await asyncio.wait_for(
                client.chat.completions.create(model="glm-4-flash", messages=HELLO, n=3), 10
            )
        assert len(cancelled) == 2  # both siblings, before the error reached the caller
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        assert others == []
        await asyncio.sleep(0.2)
        assert len(seen) == 3  # none retried afterwards

    asyncio.run(call())


def test_copies_that_all_succeed_are_merged() -> None:
    fake = FakeZhipu(api_key=KEY)
    for text in ("一", "二", "三"):
        fake.reply(text)

    async def call() -> list[str]:
        client = llm_bridge.AsyncOpenAI(
            provider="zhipu",
            api_key=KEY,
            http_client=httpx.AsyncClient(transport=fake.transport()),
        )
        answer = await client.chat.completions.create(model="glm-4-flash", messages=HELLO, n=3)
        return [choice.message.content or "" for choice in answer.choices]

    assert sorted(asyncio.run(call())) == ["一", "三", "二"]
    assert [json.loads(r.content).get("n") for r in fake.requests] == [None] * 3


def test_every_failed_copy_is_retrieved_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    """With every copy failing, only the first error was read: asyncio logged the others
    as "Task exception was never retrieved", with their tracebacks."""
    import gc

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": {"code": "1214", "message": "bad input"}})

    async def call() -> None:
        client = answered_by(handler, max_retries=0)
        with pytest.raises(llm_bridge.BadRequestError):
            await client.chat.completions.create(model="glm-4-flash", messages=HELLO, n=3)

    with caplog.at_level("ERROR", logger="asyncio"):
        asyncio.run(call())
        gc.collect()
    assert "never retrieved" not in caplog.text
