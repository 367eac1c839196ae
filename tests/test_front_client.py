"""The HTTP client openai sends through (`llm_bridge._front_client`).

A non-stream request goes straight to llm-bridge's transport, skipping the HTTP library's
auth, hooks, redirects and cookie jar; the response still carries what the library's own
``send`` leaves on it, and a client given hooks or auth goes the library's way.
"""

from __future__ import annotations

import asyncio
import datetime
import importlib
import logging
from typing import Any

import openai
import pytest
from helpers import HELLO

import llm_bridge
from llm_bridge._transport import openai_uses_httpx2
from llm_bridge.testing import FakeZhipu

#: Legacy httpx always (openai before 3.x, or a client that asks for it); httpx2 where the
#: installed openai speaks it (tests/test_openai_major2.py runs this file on openai 2.x).
LIBRARIES = ["httpx", *(["httpx2"] if openai_uses_httpx2() else [])]


def upstream(fake: FakeZhipu, sync: bool = True) -> Any:
    """The provider side: llm-bridge's own client, which the engine sends to directly (so
    the httpx logger and send path below are the front client's alone)."""
    client = llm_bridge.DefaultHttpxClient if sync else llm_bridge.DefaultAsyncHttpxClient
    return client(transport=fake.transport())


def front(library: str, fake: FakeZhipu, sync: bool = True) -> Any:
    make = llm_bridge.http_client if sync else llm_bridge.async_http_client
    return make(provider="zhipu", library=library, http_client=upstream(fake, sync))


def plain_client(library: str, fake: FakeZhipu) -> openai.OpenAI:
    return openai.OpenAI(
        api_key="id.secret",
        base_url="https://open.bigmodel.cn/api/paas/v4",
        http_client=front(library, fake),
    )


def library_send_refused(monkeypatch: pytest.MonkeyPatch, library: str) -> None:
    """Make the library's own request path fail loudly if it is taken."""
    lib = importlib.import_module(library)
    for flavour in (lib.Client, lib.AsyncClient):

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the library's send path was taken")

        monkeypatch.setattr(flavour, "_send_handling_auth", refuse)


@pytest.mark.parametrize("library", LIBRARIES)
def test_raw_responses_have_elapsed_with_either_library(library: str) -> None:
    # Legacy httpx never set ``elapsed`` on an answer that arrived read: it raised.
    raw = plain_client(library, FakeZhipu()).chat.completions.with_raw_response.create(
        model="glm-4-flash", messages=HELLO
    )
    assert isinstance(raw.elapsed, datetime.timedelta)
    assert raw.elapsed > datetime.timedelta(0)
    assert raw.parse().choices[0].message.content


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_plain_front_client_skips_the_librarys_send(
    library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = plain_client(library, FakeZhipu())
    library_send_refused(monkeypatch, library)
    answer = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert answer.choices[0].message.content


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_direct_way_answers_as_the_librarys_send_does(library: str) -> None:
    fake = FakeZhipu()
    direct = plain_client(library, fake)
    hooked = plain_client(library, fake)
    seen: list[int] = []
    hooked._client.event_hooks["response"] = [lambda response: seen.append(response.status_code)]

    def call(client: openai.OpenAI) -> Any:
        return client.chat.completions.with_raw_response.create(
            model="glm-4-flash", messages=HELLO, temperature=0.5
        )

    ours, theirs = call(direct), call(hooked)
    assert seen == [200]  # (the hooked client went the library's way)
    a, b = ours.http_response, theirs.http_response
    assert type(a) is type(b)
    assert (a.status_code, a.is_closed, a.is_stream_consumed) == (
        b.status_code,
        b.is_closed,
        b.is_stream_consumed,
    )
    assert a.request is not None and a.request.url == b.request.url
    assert a.default_encoding == b.default_encoding
    assert a.headers.keys() == b.headers.keys()
    assert ours.parse().choices[0].message == theirs.parse().choices[0].message
    assert isinstance(theirs.elapsed, datetime.timedelta)


@pytest.mark.parametrize("library", LIBRARIES)
def test_auth_on_the_front_client_is_honoured(library: str) -> None:
    fake = FakeZhipu()
    client = plain_client(library, fake)
    added: list[str] = []

    def auth(request: Any) -> Any:
        added.append(str(request.url))
        return request

    client._client.auth = auth
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert added == ["https://open.bigmodel.cn/api/paas/v4/chat/completions"]


@pytest.mark.parametrize("library", LIBRARIES)
def test_errors_and_streams_still_work_and_closing_still_closes(library: str) -> None:
    fake = FakeZhipu(model_names={"glm-4-flash"})
    client = plain_client(library, fake)
    with pytest.raises(openai.NotFoundError, match="glm-nope"):
        client.chat.completions.create(model="glm-nope", messages=HELLO)
    chunks = list(client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    client.close()
    with pytest.raises(RuntimeError, match="closed"):
        client._client.send(client._client.build_request("GET", "https://x.test/"))


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_librarys_request_log_line_is_kept(library: str, caplog: Any) -> None:
    client = plain_client(library, FakeZhipu())
    with caplog.at_level(logging.INFO, logger=library):
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    lines = [r.getMessage() for r in caplog.records if r.name == library]
    assert lines == [
        'HTTP Request: POST https://open.bigmodel.cn/api/paas/v4/chat/completions "HTTP/1.1 200 OK"'
    ]


@pytest.mark.parametrize("library", LIBRARIES)
def test_a_used_front_client_counts_as_opened(library: str) -> None:
    # As with the library's send: a client that has sent cannot be entered afterwards.
    client = front(library, FakeZhipu())
    openai.OpenAI(
        api_key="k", base_url="https://open.bigmodel.cn/api/paas/v4", http_client=client
    ).chat.completions.create(model="glm-4-flash", messages=HELLO)
    with pytest.raises(RuntimeError, match=r"more than once|opened"):
        client.__enter__()


@pytest.mark.parametrize("library", LIBRARIES)
def test_the_async_front_client_goes_direct_too(
    library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeZhipu()
    client = openai.AsyncOpenAI(
        api_key="id.secret",
        base_url="https://open.bigmodel.cn/api/paas/v4",
        http_client=front(library, fake, sync=False),
    )
    library_send_refused(monkeypatch, library)

    async def main() -> Any:
        raw = await client.chat.completions.with_raw_response.create(
            model="glm-4-flash", messages=HELLO
        )
        return raw.elapsed, raw.parse()

    elapsed, answer = asyncio.run(main())
    assert isinstance(elapsed, datetime.timedelta)
    assert answer.choices[0].message.content


def test_llm_bridge_clients_send_through_the_direct_way(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeZhipu(api_key="id.secret")
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret", http_client=upstream(fake))
    library = "httpx2" if openai_uses_httpx2() else "httpx"
    library_send_refused(monkeypatch, library)
    raw = client.chat.completions.with_raw_response.create(model="glm-4-flash", messages=HELLO)
    assert isinstance(raw.elapsed, datetime.timedelta)
    assert raw.parse().provider == "zhipu"
