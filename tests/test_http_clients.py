"""The HTTP clients offered for ``http_client=``, including the opt-in aiohttp one."""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx

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


ZHIPU_CHAT = "https://open.bigmodel.cn/api/paas/v4/chat/completions"
REPLY = {
    "id": "x",
    "created": 1,
    "model": "glm-4-flash",
    "choices": [
        {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "好"}}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


def cookie_headers_sent(client: llm_bridge.OpenAI) -> list:
    with respx.mock() as mock:
        route = mock.post(ZHIPU_CHAT).respond(
            200, json=REPLY, headers={"Set-Cookie": "lb=node-7; Path=/"}
        )
        for _ in range(2):
            client.chat.completions.create(
                model="glm-4-flash", messages=[{"role": "user", "content": "x"}]
            )
    return [call.request.headers.get("cookie") for call in route.calls]


def test_the_default_client_keeps_no_cookies_from_responses() -> None:
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret")
    assert cookie_headers_sent(client) == [None, None]


def test_cookies_given_to_a_default_client_are_sent_and_a_plain_client_keeps_its_own() -> None:
    given = llm_bridge.DefaultHttpxClient(cookies={"tenant": "t1"})
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret", http_client=given)
    assert cookie_headers_sent(client) == ["tenant=t1", "tenant=t1"]
    given.cookies = {"tenant": "t2"}
    assert cookie_headers_sent(client) == ["tenant=t2", "tenant=t2"]

    plain = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret", http_client=httpx.Client())
    assert cookie_headers_sent(plain) == [None, "lb=node-7"]
