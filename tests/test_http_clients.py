"""The HTTP clients offered for ``http_client=``, including the opt-in aiohttp one."""

from __future__ import annotations

import asyncio

import httpx
import pytest

import llm_bridge
from llm_bridge.testing import FakeZhipu, serve


def test_default_httpx_clients_carry_our_defaults() -> None:
    with llm_bridge.DefaultHttpxClient() as client:
        assert client.timeout == httpx.Timeout(600.0, connect=5.0)
        assert client.follow_redirects is True
    custom = llm_bridge.DefaultAsyncHttpxClient(timeout=3.0)
    assert custom.timeout == httpx.Timeout(3.0)


@pytest.mark.timeout(30)
async def test_aiohttp_client_serves_requests_and_streams_over_real_sockets() -> None:
    fake = FakeZhipu(api_key="id.secret")
    fake.reply("你好").reply("流式回答")
    with serve(fake) as server:
        http_client = llm_bridge.DefaultAioHttpClient()
        assert isinstance(http_client, httpx.AsyncClient)
        client = llm_bridge.AsyncOpenAI(
            provider="zhipu",
            api_key="id.secret",
            base_url=server.url + "/api/paas/v4",
            http_client=http_client,
        )
        async with client:
            answer = await client.chat.completions.create(
                model="glm-4-flash", messages=[{"role": "user", "content": "hi"}]
            )
            stream = await client.chat.completions.create(
                model="glm-4-flash",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
        await http_client.aclose()
    assert answer.choices[0].message.content == "你好"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "流式回答"
    assert chunks[-1].usage is not None


@pytest.mark.timeout(30)
async def test_aiohttp_client_under_concurrency() -> None:
    fake = FakeZhipu(api_key="id.secret")
    with serve(fake) as server:
        http_client = llm_bridge.DefaultAioHttpClient()
        client = llm_bridge.AsyncOpenAI(
            provider="zhipu",
            api_key="id.secret",
            base_url=server.url + "/api/paas/v4",
            http_client=http_client,
        )
        results = await asyncio.gather(
            *(
                client.chat.completions.create(
                    model="glm-4-flash", messages=[{"role": "user", "content": f"q{i}"}]
                )
                for i in range(50)
            )
        )
        await http_client.aclose()
    assert len(results) == 50
    assert {r.choices[0].message.content for r in results} == {
        f"(offline fake glm-4-flash) You said: q{i}" for i in range(50)
    }
