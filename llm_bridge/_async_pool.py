"""A cheaper idle-connection check for the async httpx client under concurrency.

Whenever a request starts or ends, httpcore's async connection pool asks every
connection it holds whether it has expired, and for an idle one that means asking the
network stream ``get_extra_info("is_readable")`` (an idle socket with something to read
is one the server closed, or sent what it should not have: either way, not reusable).
On asyncio, httpcore answers that through anyio, which builds a dict of all of a
socket's attributes on every call to look up the socket itself. With 200 requests in
flight on a loopback server, that lookup was a fifth of the time of a burst, raw httpx's
and ours alike (the aiohttp-backed client avoids httpcore altogether).

`cache_socket_lookups` gives a client's connection pools a network backend that wraps
each stream: the socket is looked up once, when the connection is made, and the
readability check polls it directly. Reads and writes go straight to the wrapped
stream. The pool itself is untouched (respx still intercepts it), and a client whose
transport or pool is not httpx's and httpcore's own is left as it is.
"""

from __future__ import annotations

import select
import ssl
import time
import typing
from typing import Any, Callable, Optional

import httpcore
import httpx

from ._pool_backends import wrap_backends

__all__ = ["cache_socket_lookups"]


def cache_socket_lookups(client: httpx.AsyncClient) -> None:
    """Give the httpcore pools of ``client`` (its transport and mounts) the backend below."""
    wrap_backends(
        client, httpcore.AsyncConnectionPool, httpcore.AsyncNetworkBackend, _SocketCachingBackend
    )


class _SocketCachingBackend(httpcore.AsyncNetworkBackend):
    """Another backend's connections, each wrapped in `_SocketCachingStream`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend) -> None:
        self._backend = backend

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[typing.Iterable[Any]] = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _SocketCachingStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: Optional[float] = None,
        socket_options: Optional[typing.Iterable[Any]] = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _SocketCachingStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _SocketCachingStream(httpcore.AsyncNetworkStream):
    """A network stream whose socket is looked up once; everything else is the stream's."""

    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream
        self._socket = stream.get_extra_info("socket")
        # The wrapped stream's own methods, not coroutines that would await them: a
        # read or a write costs what it cost before.
        self.read = stream.read  # type: ignore[method-assign]
        self.write = stream.write  # type: ignore[method-assign]
        self.aclose = stream.aclose  # type: ignore[method-assign]
        self._held: Optional[tuple[Callable[[], float], httpx.Response]] = None

    def hold_to(self, read_by: Callable[[], float], response: httpx.Response) -> None:
        """Hold the reads to ``read_by()`` (``time.monotonic()``) until ``response`` is
        closed: a stream's idle timeout and deadline (`_stream_reading.hold_reads`). The
        per-read timeout restarts at every read, so alone it let a stream run up to
        twice its limit."""
        self._held = (read_by, response)
        self.read = self._held_read  # type: ignore[method-assign]

    async def _held_read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        assert self._held is not None
        read_by, response = self._held
        if response.is_closed:  # (the connection now serves another request)
            self._held = None
            self.read = self._stream.read  # type: ignore[method-assign]
            return await self._stream.read(max_bytes, timeout)
        left = read_by() - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the stream passed its idle timeout or deadline")
        return await self._stream.read(max_bytes, left if timeout is None else min(timeout, left))

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        return _SocketCachingStream(stream)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and self._socket is not None:
            return _readable(self._socket)
        return self._stream.get_extra_info(info)


def _readable(sock: Any) -> bool:
    """Whether ``sock`` has something to read (or is closed) right now, without waiting."""
    fd = sock.fileno()
    if fd == -1:
        return True  # closed
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    return bool(select.select([fd], [], [], 0)[0])  # (Windows, which has no poll)
