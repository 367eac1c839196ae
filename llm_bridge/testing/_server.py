"""A loopback HTTP server in front of any fake, with network faults injected on demand.

Why: an httpx ``MockTransport`` never opens a socket, so it cannot show what a client does
when a real connection is reset, stalls, or closes before its ``Content-Length`` was sent.
`serve` puts a fake (``FakeZhipu``, ``FakeQianfan``, ``FakeDashScope`` ...) behind a real
``http.server.ThreadingHTTPServer`` on ``127.0.0.1`` (an ephemeral port, daemon threads),
so the code under test goes through its real httpx transport, connection pool and
timeouts::

    from llm_bridge.testing import Fault, FakeZhipu, serve

    fake = FakeZhipu()
    with serve(fake, faults=[Fault.reset_before(), Fault.stall_after(200, 5.0)]) as server:
        client = OpenAI(provider="zhipu", api_key="id.secret", base_url=server.url + "/api/paas/v4")
        ...
        server.faults.append(Fault.truncate_after(64))  # more faults while it runs

What: each incoming request is rewritten to the fake's own host (same path and query, e.g.
``http://127.0.0.1:54321/api/v1/x?y=1`` -> ``https://dashscope.aliyuncs.com/api/v1/x?y=1``)
so the fake's routing works, handed to ``fake.handler``, and its answer written back: plain
bodies with ``Content-Length``, streamed bodies with chunked transfer encoding, each byte
chunk of the fake's stream written and flushed separately so the client sees real
incremental reads. A fake stream that ends in ``httpx.RemoteProtocolError`` (``cut_stream``)
becomes a connection closed mid-body.

Faults are consumed one per incoming request, in order (a fault with ``path`` set waits for
a request whose path contains it; requests with no fault left are served normally):

* ``Fault.reset_before()``: close the socket without any response (the fake is not called);
* ``Fault.reset_after(n)``: status line, headers and ``n`` body bytes, then shut the socket
  down mid-body;
* ``Fault.stall_after(n, seconds)``: ``n`` body bytes, then a pause before the rest;
* ``Fault.truncate_after(n)``: a ``Content-Length`` larger than what is sent, ``n`` bytes,
  then a clean close;
* ``Fault.delay(seconds)``: a pause before answering at all.

Everything is bounded: a pause ends early when the client hangs up or the server stops, and
`LoopbackServer.stop` shuts the listener and every open connection down and joins the
threads within 5 s. ``server.requests`` keeps every request received, faulted ones included
(``fake.requests`` only sees the ones the fake answered). Standard library and httpx only.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import urlsplit

import httpx

__all__ = ["Fault", "LoopbackServer", "serve"]

HOST = "127.0.0.1"
#: How long stop() may take in all.
STOP_TIMEOUT = 5.0
#: A connection idle (or a request unread) this long is dropped, so no thread waits forever.
IDLE_TIMEOUT = 30.0

#: Request headers not forwarded to the fake (httpx recomputes them from the new body).
#: ``Host`` is kept as the client sent it: a request signed over it (Qianfan's IAM
#: signature) still verifies, while the fake routes by the rewritten URL's host.
_HOP_REQUEST = frozenset({"content-length", "transfer-encoding", "connection"})
#: Response headers of the fake replaced by this server's own framing.
_HOP_RESPONSE = frozenset({"content-length", "transfer-encoding", "connection"})

_KINDS = ("reset_before", "reset_after", "stall_after", "truncate_after", "delay")


@dataclass(frozen=True)
class Fault:
    """One network fault, applied to one incoming request (build with the classmethods).

    ``nbytes`` counts body bytes (not chunk framing); ``seconds`` bounds a pause; ``path``,
    when set, makes the fault wait for a request whose URL path contains it (so a Qianfan
    token fetch can pass while the chat request after it is faulted).
    """

    kind: str
    nbytes: int = 0
    seconds: float = 0.0
    path: Optional[str] = None

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {_KINDS}")
        if self.nbytes < 0 or self.seconds < 0:
            raise ValueError("nbytes and seconds must be >= 0")

    @classmethod
    def reset_before(cls, *, path: Optional[str] = None) -> Fault:
        """Close the connection without sending any response."""
        return cls("reset_before", path=path)

    @classmethod
    def reset_after(cls, nbytes: int, *, path: Optional[str] = None) -> Fault:
        """Send headers and ``nbytes`` of body, then shut the socket down mid-body."""
        return cls("reset_after", nbytes=nbytes, path=path)

    @classmethod
    def stall_after(cls, nbytes: int, seconds: float, *, path: Optional[str] = None) -> Fault:
        """Send headers and ``nbytes`` of body, pause ``seconds``, then send the rest."""
        return cls("stall_after", nbytes=nbytes, seconds=seconds, path=path)

    @classmethod
    def truncate_after(cls, nbytes: int, *, path: Optional[str] = None) -> Fault:
        """Announce a longer ``Content-Length``, send ``nbytes``, then close cleanly."""
        return cls("truncate_after", nbytes=nbytes, path=path)

    @classmethod
    def delay(cls, seconds: float, *, path: Optional[str] = None) -> Fault:
        """Pause ``seconds`` before answering."""
        return cls("delay", seconds=seconds, path=path)


class _Abort(Exception):
    """Stop answering this request and drop its connection."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # many concurrent clients connect at once in tests

    def __init__(self, owner: LoopbackServer) -> None:
        self.owner = owner
        super().__init__((HOST, 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # As ThreadingMixIn does, but every handler thread is kept so stop() can join it.
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="llm-bridge-loopback-conn",
            daemon=True,
        )
        self.owner._track_thread(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected here, not worth a traceback


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT

    @property
    def _owner(self) -> LoopbackServer:
        """The `LoopbackServer` whose `_Server` made this handler."""
        server = self.server
        assert isinstance(server, _Server)  # the only server _Handler is given to
        return server.owner

    def setup(self) -> None:
        super().setup()
        self._owner._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._owner._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except (_Abort, OSError):
            self.close_connection = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    # -- one request -------------------------------------------------------------------------

    def _answer(self) -> None:
        owner = self._owner
        request = self._incoming(owner)
        owner._record(request)
        fault = owner._next_fault(request.url.path)
        if fault is not None and fault.kind == "reset_before":
            raise _Abort
        if fault is not None and fault.kind == "delay":
            self._pause(fault.seconds)
        try:
            response = owner.fake.handler(request)
        except Exception as error:  # (a bug in a test's script, or in the fake)
            response = owner._failed(request, error)
        self._write(response, fault)

    def _incoming(self, owner: LoopbackServer) -> httpx.Request:
        body = self._read_body()
        target = urlsplit(self.path)
        origin = getattr(owner.fake, "other_hosts", {}).get(target.path, owner._fake_origin)
        url = origin + target.path + (f"?{target.query}" if target.query else "")
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_REQUEST]
        return httpx.Request(self.command, url, headers=headers, content=body)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _write(self, response: httpx.Response, fault: Optional[Fault]) -> None:
        try:
            chunks: Iterable[bytes] = [response.content]
            plain = True
        except httpx.ResponseNotRead:
            chunks = _chunks(response)
            plain = False
        kind = fault.kind if fault is not None else None
        if kind == "truncate_after":
            body, _ = _collect(chunks)
            limit = min(fault.nbytes, len(body)) if fault is not None else 0
            self._head(response, content_length=max(len(body), limit + 1))
            self._send_plain(body[:limit])
            self.close_connection = True
            self._shutdown(socket.SHUT_WR)
            raise _Abort
        if plain:
            body = b"".join(chunks)
            self._head(response, content_length=len(body))
            self._send_faulted(_pieces([body]), fault, chunked=False)
            return
        self._head(response, content_length=None)
        self._send_faulted(_pieces(chunks), fault, chunked=True)

    def _send_faulted(
        self, pieces: Iterator[tuple[bytes, bool]], fault: Optional[Fault], *, chunked: bool
    ) -> None:
        """Write the body piece by piece, applying ``fault`` at its byte offset."""
        send = self._send_chunk if chunked else self._send_plain
        sent = 0
        limit = fault.nbytes if fault is not None else None
        applied = fault is None or fault.kind not in ("reset_after", "stall_after")

        def apply() -> None:
            nonlocal applied
            applied = True
            assert fault is not None
            if fault.kind == "reset_after":
                self._reset()
            self._pause(fault.seconds)

        if not applied and limit == 0:
            apply()
        for data, cut in pieces:
            if cut:  # the fake's stream ended in a RemoteProtocolError: a dropped connection
                self._reset()
            if not applied and limit is not None and sent + len(data) >= limit:
                head, data = data[: limit - sent], data[limit - sent :]
                send(head)
                sent += len(head)
                apply()
            if data:
                send(data)
                sent += len(data)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        if not applied:
            apply()  # the body was shorter than the fault's offset: apply it at the end

    # -- wire helpers ------------------------------------------------------------------------

    def _head(self, response: httpx.Response, *, content_length: Optional[int]) -> None:
        self.send_response(response.status_code, response.reason_phrase or None)
        for name, value in response.headers.multi_items():
            if name.lower() not in _HOP_RESPONSE:
                self.send_header(name, value)
        if content_length is None:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(content_length))
        self.end_headers()
        self.wfile.flush()

    def _send_plain(self, data: bytes) -> None:
        if data:
            self.wfile.write(data)
            self.wfile.flush()

    def _send_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

    def _reset(self) -> None:
        """Drop the connection mid-answer: no more bytes, no chunked terminator."""
        self.close_connection = True
        self._shutdown(socket.SHUT_RDWR)
        raise _Abort

    def _shutdown(self, how: int) -> None:
        with suppress(OSError):
            self.connection.shutdown(how)

    def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``; return early when the server stops or the client leaves."""
        deadline = time.monotonic() + seconds
        owner = self._owner
        while not owner._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            try:
                readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
                if readable:
                    if not self.connection.recv(1, socket.MSG_PEEK):
                        raise _Abort  # the client closed its end
                    time.sleep(min(left, 0.05))  # it sent more: keep pausing, without spinning
            except (OSError, ValueError):
                raise _Abort from None
        raise _Abort


def _chunks(response: httpx.Response) -> Iterator[bytes]:
    """The fake's stream as separate byte chunks, as the fake split them."""
    stream = response.stream
    assert isinstance(stream, httpx.SyncByteStream), "the fake's stream must be iterable"
    yield from stream


def _pieces(chunks: Iterable[bytes]) -> Iterator[tuple[bytes, bool]]:
    """``(data, False)`` per chunk, then ``(b"", True)`` if the fake's stream was cut."""
    try:
        for data in chunks:
            yield bytes(data), False
    except httpx.RemoteProtocolError:
        yield b"", True


def _collect(chunks: Iterable[bytes]) -> tuple[bytes, bool]:
    parts, cut = [], False
    for data, was_cut in _pieces(chunks):
        parts.append(data)
        cut = cut or was_cut
    return b"".join(parts), cut


class LoopbackServer:
    """A running loopback server for one fake; see the module docstring.

    ``url`` is ``http://127.0.0.1:<port>``; ``faults`` is the queue of pending `Fault`s
    (append while running); ``requests`` every request received (rewritten to the fake's
    host), faulted ones included; ``errors`` what the fake raised (a bug in a test's
    script, say), each answered as a 500 naming it rather than a dropped connection, which
    a test of retries could not tell from `Fault.reset_before`.
    """

    def __init__(self, fake: Any, faults: Optional[Iterable[Fault]] = None) -> None:
        self.fake = fake
        self.faults: deque[Fault] = deque(faults or ())
        self.requests: list[httpx.Request] = []
        self.errors: list[Exception] = []
        parts = urlsplit(fake.base_url)
        self._fake_origin = f"{parts.scheme}://{parts.netloc}"
        self._fake_path = parts.path.rstrip("/")
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self.connections_opened = 0
        self.connections_closed = 0
        self._server: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackServer:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="llm-bridge-loopback",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening, drop every open connection and join the threads (within 5 s)."""
        if self._server is None:
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in [t for t in (self._thread, *threads) if t is not None]:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._server = None

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not running"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``, without a trailing slash."""
        return f"http://{HOST}:{self.port}"

    def base_url_for(self, path_prefix: Optional[str] = None) -> str:
        """``url`` plus a path prefix (default: the path of the fake's ``base_url``)."""
        prefix = self._fake_path if path_prefix is None else path_prefix
        return self.url + ("/" + prefix.strip("/") if prefix.strip("/") else "")

    # -- connections -------------------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        with self._lock:
            return self.connections_opened - self.connections_closed

    def wait_for_connections(self, open_at_most: int = 0, timeout: float = 5.0) -> bool:
        """Wait until at most ``open_at_most`` connections are open; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.connections_opened - self.connections_closed > open_at_most:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
            return True

    # -- called by the handler threads -------------------------------------------------------

    def _track_thread(self, thread: threading.Thread) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)

    def _opened(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.add(sock)
            self.connections_opened += 1
            self._changed.notify_all()

    def _closed(self, sock: socket.socket) -> None:
        with self._changed:
            self._sockets.discard(sock)
            self.connections_closed += 1
            self._changed.notify_all()

    def _record(self, request: httpx.Request) -> None:
        with self._lock:
            self.requests.append(request)

    def _failed(self, request: httpx.Request, error: Exception) -> httpx.Response:
        """The answer to a request the fake raised on: kept in `errors`, and a 500 whose
        body says what was raised."""
        with self._lock:
            self.errors.append(error)
        message = f"llm_bridge.testing: the fake raised {type(error).__name__}: {error}"
        body = {"error": {"message": message, "type": "fake_error", "code": "fake_error"}}
        return httpx.Response(500, json=body, request=request)

    def _next_fault(self, path: str) -> Optional[Fault]:
        with self._lock:
            if self.faults and (self.faults[0].path is None or self.faults[0].path in path):
                return self.faults.popleft()
            return None


@contextmanager
def serve(fake: Any, *, faults: Optional[list[Fault]] = None) -> Iterator[LoopbackServer]:
    """Run ``fake`` behind a real loopback HTTP server for the ``with`` block."""
    server = LoopbackServer(fake, faults).start()
    try:
        yield server
    finally:
        server.stop()
