"""``http_client=`` given to ``llm_bridge.OpenAI`` may be an httpx2 client (openai 3.x's own).

openai 3.x users set proxies and TLS with ``openai.DefaultHttpxClient(...)``, an httpx2
client; changing the import must keep that working. The provider traffic then goes through
that very client (its hooks see it), against a real loopback server, with streams, errors
and timeouts keeping their kinds. A client of the wrong flavour is a clear TypeError.
"""

from __future__ import annotations

import asyncio

import httpx
import httpx2
import openai
import pytest

import llm_bridge
from llm_bridge.testing import FakeZhipu, Fault, serve

KEY = "id.secret"
HELLO = [{"role": "user", "content": "你好"}]


def test_a_sync_httpx2_client_carries_the_provider_traffic() -> None:
    fake = FakeZhipu(api_key=KEY).reply("你好！").reply("流式回答")
    seen: list[str] = []
    with serve(fake) as server:
        upstream = httpx2.Client(event_hooks={"request": [lambda r: seen.append(str(r.url))]})
        client = llm_bridge.OpenAI(
            provider="zhipu",
            api_key=KEY,
            base_url=server.base_url_for(),
            http_client=upstream,
        )
        answer = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
        assert answer.choices[0].message.content == "你好！"
        stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "流式回答"
    assert len(seen) == 2 and all(url.endswith("/chat/completions") for url in seen)
    assert not upstream.is_closed  # the caller's client is the caller's to close
    upstream.close()


def test_openais_default_httpx_client_works_as_the_upstream() -> None:
    fake = FakeZhipu(api_key=KEY).reply("好")
    with serve(fake) as server:
        upstream = openai.DefaultHttpxClient()
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key=KEY, base_url=server.base_url_for(), http_client=upstream
        )
        assert client.chat.completions.create(model="glm-4-flash", messages=HELLO).choices
        upstream.close()


def test_an_httpx2_timeout_is_openais_timeout_error() -> None:
    fake = FakeZhipu(api_key=KEY).reply("迟到")
    with serve(fake, faults=[Fault.delay(2.0)]) as server:
        client = llm_bridge.OpenAI(
            provider="zhipu",
            api_key=KEY,
            base_url=server.base_url_for(),
            http_client=httpx2.Client(),
            timeout=0.3,
            max_retries=0,
        )
        with pytest.raises(openai.APITimeoutError):
            client.chat.completions.create(model="glm-4-flash", messages=HELLO)


def test_an_async_httpx2_client_carries_the_provider_traffic() -> None:
    fake = FakeZhipu(api_key=KEY).reply("异步")

    async def main() -> str:
        with serve(fake) as server:
            async with httpx2.AsyncClient() as upstream:
                client = llm_bridge.AsyncOpenAI(
                    provider="zhipu",
                    api_key=KEY,
                    base_url=server.base_url_for(),
                    http_client=upstream,
                )
                answer = await client.chat.completions.create(model="glm-4-flash", messages=HELLO)
                return answer.choices[0].message.content or ""

    assert asyncio.run(main()) == "异步"


@pytest.mark.parametrize(
    "front, upstream, expected",
    [
        ("OpenAI", httpx.AsyncClient, "belongs with AsyncOpenAI"),
        ("OpenAI", lambda: httpx2.AsyncClient(), "belongs with AsyncOpenAI"),
        ("AsyncOpenAI", httpx.Client, "belongs with OpenAI"),
        ("OpenAI", object, "must be an httpx or httpx2 client"),
    ],
)
def test_a_client_of_the_wrong_kind_is_a_type_error_saying_which(
    front: str, upstream: object, expected: str
) -> None:
    with pytest.raises(TypeError, match=expected):
        make = getattr(llm_bridge, front)
        make(provider="zhipu", api_key=KEY, http_client=upstream())  # type: ignore[operator]
