"""The caller's ``http_client`` as the client that carries provider traffic.

The engine speaks to providers with ``httpx``. openai 3.x users hold ``httpx2`` clients:
``OpenAI(http_client=openai.DefaultHttpxClient(proxy=...))`` is how they set a proxy or
custom TLS, and changing the import to ``llm_bridge`` must keep that working. So an
``httpx2`` client is put under an ``httpx`` client through `Httpx2Transport`: each request
is re-made as an ``httpx2`` request and sent by the caller's client (its proxy, TLS,
mounts, auth and event hooks apply), and the answer streams back as an ``httpx`` response.
Errors keep their kind: ``httpx2.ConnectTimeout`` becomes ``httpx.ConnectTimeout``.

A client of the wrong flavour (an async client for the sync ``OpenAI``) is a ``TypeError``
that says which one to pass.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional, Union

import httpx

__all__ = ["AsyncHttpx2Transport", "Httpx2Transport", "upstream_client"]

UpstreamClient = Union[httpx.Client, httpx.AsyncClient]


def upstream_client(given: Any, *, sync: bool) -> Optional[UpstreamClient]:
    """``given`` as an httpx client of the right flavour; None stays None."""
    if given is None:
        return None
    wanted, other = (httpx.Client, httpx.AsyncClient) if sync else (httpx.AsyncClient, httpx.Client)
    if isinstance(given, wanted):
        return given
    httpx2 = _httpx2()
    if httpx2 is not None and isinstance(given, httpx2.Client if sync else httpx2.AsyncClient):
        if sync:
            return httpx.Client(transport=Httpx2Transport(given), timeout=None)
        return httpx.AsyncClient(transport=AsyncHttpx2Transport(given), timeout=None)
    flavour = "OpenAI" if sync else "AsyncOpenAI"
    if isinstance(given, other) or (
        httpx2 is not None and isinstance(given, httpx2.AsyncClient if sync else httpx2.Client)
    ):
        right = (
            "httpx.Client or httpx2.Client" if sync else "httpx.AsyncClient or httpx2.AsyncClient"
        )
        raise TypeError(
            f"http_client for {flavour} must be a {right}; got a {type(given).__name__}, which "
            f"belongs with {'AsyncOpenAI' if sync else 'OpenAI'}"
        )
    raise TypeError(
        f"http_client must be an httpx or httpx2 client (it carries the provider traffic); "
        f"got {type(given).__name__}"
    )


def _httpx2() -> Any:
    try:
        import httpx2
    except ImportError:  # openai before 3.x: only httpx exists
        return None
    return httpx2


class Httpx2Transport(httpx.BaseTransport):
    """Sends ``httpx`` requests through a caller's ``httpx2.Client`` (never closed here)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        outbound = _outbound(request)
        try:
            answer = self._client.send(outbound, stream=True)
        except Exception as error:
            raise _mapped(error, request) from error
        return _inbound(answer, _Body(answer, request))


class AsyncHttpx2Transport(httpx.AsyncBaseTransport):
    """`Httpx2Transport` for ``httpx2.AsyncClient``."""

    def __init__(self, client: Any) -> None:
        self._client = client

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        outbound = _outbound(request, await request.aread())
        try:
            answer = await self._client.send(outbound, stream=True)
        except Exception as error:
            raise _mapped(error, request) from error
        return _inbound(answer, _AsyncBody(answer, request))


def _outbound(request: httpx.Request, content: Optional[bytes] = None) -> Any:
    """The ``httpx2`` request for ``request``, with its timeout and other extensions."""
    return _httpx2().Request(
        request.method,
        str(request.url),
        headers=request.headers.raw,
        content=request.read() if content is None else content,
        extensions=request.extensions,
    )


def _inbound(
    answer: Any, body: Union[httpx.SyncByteStream, httpx.AsyncByteStream]
) -> httpx.Response:
    """An ``httpx`` response over ``answer``'s raw bytes (httpx decodes them once)."""
    return httpx.Response(
        answer.status_code,
        headers=answer.headers.raw,
        stream=body,
        extensions={k: v for k, v in answer.extensions.items() if k != "network_stream"},
    )


def _mapped(error: Exception, request: httpx.Request) -> Exception:
    """An ``httpx2`` transport error as the ``httpx`` error of the same name; any other
    exception unchanged."""
    httpx2 = _httpx2()
    if httpx2 is None or not isinstance(error, httpx2.TransportError):
        return error
    same = getattr(httpx, type(error).__name__, None)
    cls = same if isinstance(same, type) and issubclass(same, httpx.TransportError) else None
    return (cls or httpx.TransportError)(str(error), request=request)


class _Body(httpx.SyncByteStream):
    def __init__(self, answer: Any, request: httpx.Request) -> None:
        self._answer, self._request = answer, request

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._answer.iter_raw()
        except Exception as error:
            raise _mapped(error, self._request) from error

    def close(self) -> None:
        self._answer.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, answer: Any, request: httpx.Request) -> None:
        self._answer, self._request = answer, request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for piece in self._answer.aiter_raw():
                yield piece
        except Exception as error:
            raise _mapped(error, self._request) from error

    async def aclose(self) -> None:
        await self._answer.aclose()
