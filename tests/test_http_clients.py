"""The HTTP clients offered for ``http_client=``, including the opt-in aiohttp one."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
import respx
from helpers import loopback_server

import llm_bridge
import llm_bridge._async_pool
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
@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 abc\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 10_000 + b"\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}",
    ],
    ids=["garbage status line", "header line too long", "negative length"],
)
async def test_an_answer_aiohttp_cannot_read_is_an_openai_error(head: bytes) -> None:
    """aiohttp's ``ClientResponseError`` escaped as itself: no ``except APIError`` (nor the
    retries, nor the gateway's error answer) caught it."""
    for url in loopback_server(lambda conn, stop: conn.sendall(head)):
        http_client = llm_bridge.DefaultAioHttpClient()
        client = llm_bridge.AsyncOpenAI(
            provider="zhipu", api_key="id.secret", base_url=url, http_client=http_client,
            max_retries=0,
        )  # fmt: skip
        with pytest.raises(llm_bridge.APIConnectionError, match="could not be read as HTTP"):
            await client.chat.completions.create(
                model="glm-4-flash", messages=[{"role": "user", "content": "hi"}]
            )
        await http_client.aclose()


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


def test_the_default_async_client_looks_sockets_up_once_per_connection() -> None:
    # Guards `_async_pool` against httpx or httpcore internals it relies on changing.
    from llm_bridge._async_pool import _SocketCachingBackend

    client = llm_bridge.DefaultAsyncHttpxClient()
    assert isinstance(client._transport._pool._network_backend, _SocketCachingBackend)
    llm_bridge._async_pool.cache_socket_lookups(client)  # a second call wraps nothing twice
    backend = client._transport._pool._network_backend
    assert not isinstance(backend._backend, _SocketCachingBackend)
    plain = httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    llm_bridge._async_pool.cache_socket_lookups(plain)  # not httpcore's pool: left alone
    given = httpx.AsyncHTTPTransport()  # the caller's, perhaps shared: left alone too
    llm_bridge.DefaultAsyncHttpxClient(transport=given)
    assert not isinstance(given._pool._network_backend, _SocketCachingBackend)


@pytest.mark.timeout(30)
async def test_the_default_async_client_reuses_live_connections_and_drops_closed_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from llm_bridge import _async_pool

    checks: list[bool] = []
    readable = _async_pool._readable
    monkeypatch.setattr(
        _async_pool, "_readable", lambda sock: checks.append(readable(sock)) or checks[-1]
    )
    fake = FakeZhipu(api_key="id.secret")
    with serve(fake) as server:
        client = llm_bridge.AsyncOpenAI(
            provider="zhipu",
            api_key="id.secret",
            base_url=server.url + "/api/paas/v4",
            max_retries=0,  # a dead connection reused would fail, not be retried
        )

        async def ask(text: str) -> str:
            answer = await client.chat.completions.create(
                model="glm-4-flash", messages=[{"role": "user", "content": text}]
            )
            return answer.choices[0].message.content or ""

        answers = await asyncio.gather(*(ask(f"q{i}") for i in range(30)))
        assert answers == [f"(offline fake glm-4-flash) You said: q{i}" for i in range(30)]
        opened = server.connections_opened
        for i in range(3):  # one at a time: a kept connection serves each
            await ask(f"again {i}")
        assert server.connections_opened == opened
        assert checks and not any(checks)  # idle connections were checked: none readable

        with server._lock:  # the server hangs up on every idle connection
            sockets = list(server._sockets)
        for sock in sockets:
            sock.shutdown(socket.SHUT_RDWR)
        assert server.wait_for_connections(0)
        assert await ask("after") == "(offline fake glm-4-flash) You said: after"
        assert any(checks)  # a closed one was seen as such, and a new one made
        assert server.connections_opened == opened + 1
        await client.close()


# The engine sends straight to a default client's transport (`direct_transport`), skipping
# ``Client.send``; whatever ``send`` would have done differently goes through ``send``.


def _chat(client: llm_bridge.OpenAI) -> str:
    answer = client.chat.completions.create(
        model="glm-4-flash", messages=[{"role": "user", "content": "x"}]
    )
    return answer.choices[0].message.content or ""


def test_a_default_client_is_sent_to_directly_and_still_follows_redirects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent_through: list[str] = []
    real_send = llm_bridge.DefaultHttpxClient.send

    def counting_send(self: httpx.Client, request: httpx.Request, **kwargs: object) -> object:
        sent_through.append(str(request.url))
        return real_send(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(llm_bridge.DefaultHttpxClient, "send", counting_send)
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret")
    moved = "https://open.bigmodel.cn/api/paas/v4/moved"
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, json=REPLY)
        assert _chat(client) == REPLY["choices"][0]["message"]["content"]
        assert sent_through == []  # straight to the transport
        mock.post(ZHIPU_CHAT).respond(307, headers={"Location": moved})
        mock.post(moved).respond(200, json=REPLY)
        assert _chat(client) == REPLY["choices"][0]["message"]["content"]
    assert sent_through == [ZHIPU_CHAT]  # the redirect: through send, which followed it


def test_a_client_with_event_hooks_or_auth_is_sent_through() -> None:
    seen: list[str] = []
    hooked = llm_bridge.DefaultHttpxClient(
        event_hooks={"request": [lambda request: seen.append(request.method)]}
    )
    authed = llm_bridge.DefaultHttpxClient(auth=("user", "pass"))
    with respx.mock() as mock:
        route = mock.post(ZHIPU_CHAT).respond(200, json=REPLY)
        _chat(llm_bridge.OpenAI(provider="zhipu", api_key="id.secret", http_client=hooked))
        _chat(llm_bridge.OpenAI(provider="zhipu", api_key="id.secret", http_client=authed))
    assert seen == ["POST"]
    assert route.calls[1].request.headers["authorization"].startswith("Basic ")


async def test_the_default_async_client_is_sent_to_directly_and_follows_redirects(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sent_through: list[str] = []
    real_send = llm_bridge.DefaultAsyncHttpxClient.send

    async def counting_send(
        self: httpx.AsyncClient, request: httpx.Request, **kwargs: object
    ) -> object:
        sent_through.append(str(request.url))
        return await real_send(self, request, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(llm_bridge.DefaultAsyncHttpxClient, "send", counting_send)
    client = llm_bridge.AsyncOpenAI(provider="zhipu", api_key="id.secret")
    moved = "https://open.bigmodel.cn/api/paas/v4/moved"
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, json=REPLY)
        for _ in range(2):
            answer = await client.chat.completions.create(
                model="glm-4-flash", messages=[{"role": "user", "content": "x"}]
            )
        assert sent_through == []
        mock.post(ZHIPU_CHAT).respond(308, headers={"Location": moved})
        mock.post(moved).respond(200, json=REPLY)
        answer = await client.chat.completions.create(
            model="glm-4-flash", messages=[{"role": "user", "content": "x"}]
        )
    await client.close()
    assert answer.choices[0].message.content == REPLY["choices"][0]["message"]["content"]
    assert sent_through == [ZHIPU_CHAT]
