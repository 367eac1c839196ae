"""A deadline on every socket read of a sync request, for llm-bridge's own httpx clients.

httpx's ``timeout`` bounds each read, so a server that sends its status line and headers
one byte every few seconds holds a sync call for as long as it likes. An async call is
held to its deadline by `_deadline.within`; a sync one has no such outer clock, so the
reads themselves are bounded: `hold_reads_to` sets, for the calling thread, the time by
which the exchange must be over, and `bound_reads` gives a client's connection pools a
network backend whose streams read with ``min(timeout, time left)`` and raise
``httpcore.ReadTimeout`` (httpx's ``ReadTimeout``) once it has passed.

The engine holds non-stream calls to their deadline (`_engine._deadline`) for the whole
exchange, and stream requests until the answer's headers arrive (a stream's events are
then bounded by its idle timeout and deadline, see `_stream_reading`). A thread with no
deadline set reads as before. A client whose transport or pool is not httpx's and
httpcore's own (a test transport, respx's mock) is left as it is.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
import typing
from typing import Any, Callable, Optional

import httpcore
import httpx

from ._pool_backends import wrap_backends

__all__ = ["bound_reads", "hold_reads_to"]

_held = threading.local()


def hold_reads_to(deadline: Optional[float]) -> Optional[float]:
    """Hold this thread's socket reads to ``deadline`` (``time.monotonic()``; None: no
    deadline); returns the deadline it replaces, to restore afterwards."""
    previous: Optional[float] = getattr(_held, "deadline", None)
    _held.deadline = deadline
    return previous


def bound_reads(client: httpx.Client) -> None:
    """Give the httpcore pools of ``client`` (its transport and mounts) the backend below."""
    wrap_backends(client, httpcore.ConnectionPool, httpcore.NetworkBackend, _DeadlineBackend)


class _DeadlineBackend(httpcore.NetworkBackend):
    """Another backend's connections, each wrapped in `_DeadlineStream`."""

    def __init__(self, backend: httpcore.NetworkBackend) -> None:
        self._backend = backend

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: Optional[float] = None,
        local_address: Optional[str] = None,
        socket_options: Optional[typing.Iterable[Any]] = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: Optional[float] = None,
        socket_options: Optional[typing.Iterable[Any]] = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _DeadlineStream(httpcore.NetworkStream):
    """A network stream whose reads end by the thread's deadline, and by the limits of a
    stream answer being read through it (`hold_to`); closing it also wakes a thread
    blocked reading it. The rest is the stream's."""

    #: While the response is open: when its next read must be over (a stream's clock).
    held: Optional[tuple[Callable[[], float], httpx.Response]] = None

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream
        self.write = stream.write  # type: ignore[method-assign]
        self.get_extra_info = stream.get_extra_info  # type: ignore[method-assign]

    def hold_to(self, read_by: Callable[[], float], response: httpx.Response) -> None:
        """Hold the reads to ``read_by()`` (``time.monotonic()``) until ``response`` is
        closed (the connection then serves other requests as before)."""
        self.held = (read_by, response)

    def close(self) -> None:
        """Close the socket, shut down first: a thread blocked reading it (a stream being
        read while another thread closes it, a "stop" button) wakes at once, where a bare
        close left it waiting for the read timeout."""
        sock = self._stream.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._stream.close()

    def read(self, max_bytes: int, timeout: Optional[float] = None) -> bytes:
        deadline: Optional[float] = getattr(_held, "deadline", None)
        held = self.held
        if held is not None:
            if held[1].is_closed:
                self.held = None
            else:
                limit = held[0]()
                deadline = limit if deadline is None else min(deadline, limit)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ReadTimeout("the answer took longer than the call's timeout")
            timeout = left if timeout is None else min(timeout, left)
        return self._stream.read(max_bytes, timeout)

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> httpcore.NetworkStream:
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))
