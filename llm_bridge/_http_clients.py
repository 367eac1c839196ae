"""HTTP clients with llm-bridge's defaults, for ``http_client=`` (as openai offers them).

``DefaultHttpxClient`` / ``DefaultAsyncHttpxClient`` are httpx clients with our timeout,
pool limits and redirects; the clients made when no ``http_client`` is given are these.
``DefaultAioHttpClient`` is the opt-in async client backed by aiohttp
(``pip install "llm-bridge-cn[aiohttp]"``): under heavy concurrency httpx's own async pool
is the bottleneck, aiohttp's is not. It is imported only when asked for, so
``import llm_bridge`` never pays for aiohttp.

``DefaultAsyncHttpxClient``'s connection pools check idle connections more cheaply than
httpcore does by itself on asyncio (see `_async_pool`), which shows under concurrency.
``DefaultHttpxClient``'s hold each read to the call's deadline (see `_read_deadline`), so
a sync call's whole answer, headers included, ends by its timeout.

The two httpx clients are also sent to directly: `direct_transport` gives the engine the
transport ``Client.send`` would hand a request to, when ``send`` would add nothing but its
own cost (no auth, no event hooks, no proxy mounts, no cookie jar to fill). Skipping its
layers saves 70-80 us a request to a nearby server. Redirects, which ``send`` follows,
go back through it (`follows_redirect`).

All three keep no cookies from responses. Every provider here authenticates by header or
query, and httpx spends 15-25 us on every response wrapping it for the standard
library's cookie jar (a twentieth of a whole request to a nearby server). Cookies set on
the client are still sent; to keep the ones responses set, pass a plain ``httpx.Client``.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx

from ._constants import (
    DEFAULT_CONNECT_SECONDS,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_KEEPALIVE,
    DEFAULT_TIMEOUT_SECONDS,
)

DEFAULT_TIMEOUT = httpx.Timeout(DEFAULT_TIMEOUT_SECONDS, connect=DEFAULT_CONNECT_SECONDS)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=DEFAULT_MAX_CONNECTIONS, max_keepalive_connections=DEFAULT_MAX_KEEPALIVE
)

__all__ = [
    "DefaultAioHttpClient",
    "DefaultAsyncHttpxClient",
    "DefaultHttpxClient",
    "SentMark",
    "direct_transport",
    "follows_redirect",
    "reads_body_as_sent",
]


class ResponseCookiesIgnored(httpx.Cookies):
    """The cookies of a client that sends what it is given and takes none from responses."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class _NoResponseCookies:
    """Mixed into an httpx client: its ``cookies`` are `ResponseCookiesIgnored`."""

    _cookies: httpx.Cookies

    @property
    def cookies(self) -> httpx.Cookies:
        cookies = self.__dict__.get("_kept_cookies")
        if cookies is None:  # httpx's constructor sets _cookies without the setter
            cookies = self.__dict__["_kept_cookies"] = ResponseCookiesIgnored(self._cookies)
        return cookies

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self.__dict__["_kept_cookies"] = ResponseCookiesIgnored(cookies)


def _defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    kwargs.setdefault("limits", DEFAULT_LIMITS)
    kwargs.setdefault("follow_redirects", True)
    return kwargs


class DefaultHttpxClient(_NoResponseCookies, httpx.Client):
    def __init__(self, **kwargs: Any) -> None:
        own_transports = "transport" not in kwargs and "mounts" not in kwargs
        super().__init__(**_defaults(kwargs))
        if own_transports:  # (one given may be shared with other clients: left as it is)
            from ._read_deadline import bound_reads

            bound_reads(self)


class DefaultAsyncHttpxClient(_NoResponseCookies, httpx.AsyncClient):
    def __init__(self, **kwargs: Any) -> None:
        own_transports = "transport" not in kwargs and "mounts" not in kwargs
        super().__init__(**_defaults(kwargs))
        if own_transports:  # (one given may be shared with other clients: left as it is)
            from ._async_pool import cache_socket_lookups  # (httpcore loads with a transport)

            cache_socket_lookups(self)


def direct_transport(
    client: httpx.Client | httpx.AsyncClient,
) -> httpx.BaseTransport | httpx.AsyncBaseTransport | None:
    """The transport ``client.send`` would pass every request to, when sending to it
    directly is what ``send`` would do; else None (the client is sent through).

    Only our own client classes qualify: they keep no cookies from responses, so ``send``'s
    cookie extraction is nothing to skip. Whoever hands in a client of their own (event
    hooks, auth, a subclass) gets ``send`` and everything it does."""
    if type(client) not in (DefaultHttpxClient, DefaultAsyncHttpxClient):
        return None
    if client.auth is not None or any(client.event_hooks.values()) or client._mounts:
        return None
    return client._transport


def reads_body_as_sent(client: httpx.AsyncClient) -> bool:
    """Whether ``client`` reads a request's body only while sending it (httpx's own
    transport, over httpcore, which sends the headers first, directly or through a
    proxy; a mount of None, as ``NO_PROXY`` makes, is the client's own transport): then
    a body not yet read was not yet sent (see `SentMark`). A mock transport reads it at
    once, and other transports are not known to wait."""
    return all(
        transport is None or isinstance(transport, httpx.AsyncHTTPTransport)
        for transport in (client._transport, *client._mounts.values())
    )


class SentMark(httpx.AsyncByteStream):
    """A request's body that notes when the transport begins to send it (``sent``): a
    call cancelled before then never reached the provider (it waited for a pooled
    connection, or was connecting), and is not billed."""

    __slots__ = ("body", "sent")

    def __init__(self, request: httpx.Request) -> None:
        self.body = cast("httpx.AsyncByteStream", request.stream)
        self.sent = False
        request.stream = self

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.sent = True
        async for chunk in self.body:
            yield chunk

    async def aclose(self) -> None:
        await self.body.aclose()


def follows_redirect(client: httpx.Client | httpx.AsyncClient, response: httpx.Response) -> bool:
    """Whether ``client.send`` would have followed ``response`` (a direct answer that must
    then be closed and the request sent through the client)."""
    return client.follow_redirects and response.has_redirect_location


class DefaultAioHttpClient:
    """An ``httpx.AsyncClient`` whose transport is aiohttp; for ``AsyncOpenAI(http_client=...)``.

    Note that respx does not intercept it: tests mock with a loopback server instead.
    """

    def __new__(cls, **kwargs: Any) -> httpx.AsyncClient:  # type: ignore[misc]
        return _aiohttp_client_class()(**_defaults(kwargs))


@functools.cache
def _aiohttp_client_class() -> type[httpx.AsyncClient]:
    try:
        from httpx_aiohttp import HttpxAiohttpClient
    except ImportError:
        raise RuntimeError(
            'DefaultAioHttpClient needs aiohttp: pip install "llm-bridge-cn[aiohttp]"'
        ) from None

    import aiohttp

    class AioHttpClient(_NoResponseCookies, HttpxAiohttpClient):  # type: ignore[misc]
        async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
            """httpx's ``send``, an answer aiohttp could not read as HTTP (a header line
            past its limit, a garbage status line, a negative length) raised as httpx's
            ``RemoteProtocolError``, as httpx's own client raises it: httpx_aiohttp maps
            only aiohttp's connection, timeout and payload errors, so these escaped
            every ``except openai.APIError``."""
            try:
                return await super().send(request, **kwargs)
            except aiohttp.ClientResponseError as error:
                raise httpx.RemoteProtocolError(
                    f"the answer could not be read as HTTP: {error.message}", request=request
                ) from None

    return AioHttpClient
