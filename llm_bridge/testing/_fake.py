"""The provider-neutral half of the fakes: scripting queue, request log, routing, byte streams.

Provider modules subclass :class:`FakeProvider`, declare ``base_url`` and ``routes``, and turn
scripted outcomes into native wire bytes. This module depends only on httpx and the standard
library so that ``llm_bridge.testing`` is importable without the rest of the SDK.
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
import threading
import time
from collections import deque
from typing import Any, AsyncIterator, Callable, ClassVar, Iterable, Iterator, Mapping
from urllib.parse import urlsplit

import httpx

from ._json_reply import json_content
from ._script import (
    DEFAULT_CHUNK_SIZE,
    OUTCOMES,
    Failure,
    MidStreamError,
    Outcome,
    Raw,
    Reply,
    Sensitive,
    StreamCut,
    ToolCallSpec,
)

#: The message httpx uses when a server drops the connection mid-body.
CUT_MESSAGE = "peer closed connection without sending complete message body"


def dumps(obj: Any, *, sort_keys: bool = False) -> str:
    """Compact, non-ASCII-escaping JSON, the way the Chinese providers write it."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), sort_keys=sort_keys)


def approx_tokens(text: str) -> int:
    """A deterministic stand-in for a tokenizer: two characters per token, at least one."""
    return max(1, len(text) // 2)


def sse_event(payload: Mapping[str, Any]) -> bytes:
    """One SSE event: a single ``data: `` line and a blank line."""
    return f"data: {dumps(payload)}\n\n".encode()


def uuid_from(seed: str) -> str:
    """A UUID-shaped id (8-4-4-4-12 hex digits) derived from ``seed``, for request ids."""
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def message_text(message: Any) -> str:
    """The text of a chat message: string content or the joined text parts (OpenAI's
    ``{"type": "text", "text"}`` parts and DashScope's native ``{"text"}`` ones alike)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return " ".join(text for text in texts if isinstance(text, str))
    return ""


def last_user_text(messages: list[Any], text_of: Callable[[Any], str] = message_text) -> str:
    """The text of the last ``user`` message, for the echo reply."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return text_of(message)
    return ""


def is_text_list(value: object) -> bool:
    """True for a list of strings."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def unit_vector(text: str, size: int) -> list[float]:
    """A deterministic unit vector derived from SHA-256 of the text (fake embeddings)."""
    raw: list[float] = []
    block = 0
    while len(raw) < size:
        digest = hashlib.sha256(f"{block}:{text}".encode()).digest()
        raw += [(n / 0xFFFF) * 2 - 1 for n in struct.unpack(">16H", digest)]
        block += 1
    raw = raw[:size]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [round(x / norm, 6) for x in raw]


def rechunk(chunks: Iterable[bytes], size: int | None) -> list[bytes]:
    """Re-split a byte stream every ``size`` bytes (None keeps the original chunks).

    Splitting ignores event and UTF-8 boundaries on purpose: real networks do too.
    """
    pieces = [chunk for chunk in chunks if chunk]
    if size is None:
        return pieces
    if size < 1:
        raise ValueError("split_bytes must be >= 1")
    data = b"".join(pieces)
    return [data[i : i + size] for i in range(0, len(data), size)]


class ChunkStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body delivered as separate reads, usable by sync and async clients alike.

    With ``cut`` set, iteration ends by raising ``httpx.RemoteProtocolError`` after the last
    chunk, exactly as httpx reports a connection the server closed mid-body.
    """

    def __init__(self, chunks: Iterable[bytes], *, cut: bool = False) -> None:
        self._chunks = list(chunks)
        self._cut = cut

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks
        if self._cut:
            raise httpx.RemoteProtocolError(CUT_MESSAGE)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield chunk
        if self._cut:
            raise httpx.RemoteProtocolError(CUT_MESSAGE)


Route = tuple[str, str, str]


class FakeProvider:
    """Base class for offline fakes that answer an SDK's HTTP requests in a provider's wire format.

    Script outcomes in FIFO order with the chaining helpers
    (``fake.reply("hi").fail("rate_limit")``); once the queue is empty every chat request gets a
    deterministic echo reply, so examples run offline without scripting. Every request received
    is kept in :attr:`requests`.

    Subclasses set ``base_url`` and ``routes`` — ``(method, path regex relative to the base path,
    handler method name)`` — and implement the handlers, each ``handler(request, **groups)``.
    """

    base_url: str  # a class attribute; an instance may follow its own host (DashScope's)
    routes: ClassVar[tuple[Route, ...]] = ()
    #: Further path roots (besides ``base_url``'s) under which the same routes answer.
    other_roots: ClassVar[tuple[str, ...]] = ()
    #: Paths the provider serves on another host (Qianfan's IAM token endpoint), with the
    #: origin they belong to: `serve` sends a request for one there, not to ``base_url``'s.
    other_hosts: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self, *, split_bytes: int | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        if split_bytes is not None and split_bytes < 1:
            raise ValueError("split_bytes must be >= 1")
        self.split_bytes = split_bytes
        self.clock = clock
        self.requests: list[httpx.Request] = []
        self._queue: deque[Outcome] = deque()
        self._lock = threading.Lock()
        self._serial = 0

    # -- scripting -------------------------------------------------------------------------

    def then(self, outcome: Outcome) -> FakeProvider:
        """Queue any scripted outcome; returns self for chaining. Anything else is a
        TypeError now, rather than a failure when a request arrives."""
        if not isinstance(outcome, OUTCOMES):
            kinds = ", ".join(kind.__name__ for kind in OUTCOMES)
            raise TypeError(f"then(): expected one of {kinds}, got {outcome!r}")
        with self._lock:
            self._queue.append(outcome)
        return self

    def reply(
        self,
        content: str = "",
        *,
        tool_calls: Iterable[ToolCallSpec] = (),
        finish_reason: str | None = None,
        usage: Mapping[str, Any] | None = None,
        reasoning_content: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> FakeProvider:
        """Queue a successful answer (see :class:`Reply`)."""
        return self.then(
            Reply(
                content=content,
                tool_calls=tuple(tool_calls),
                finish_reason=finish_reason,
                usage=usage,
                reasoning_content=reasoning_content,
                chunk_size=chunk_size,
            )
        )

    def tool_call(
        self, name: str, arguments: dict[str, Any] | str, id: str | None = None
    ) -> FakeProvider:
        """Queue an answer that is a single function call."""
        return self.then(Reply(tool_calls=(ToolCallSpec(name, arguments, id),)))

    def fail(
        self,
        kind: str,
        *,
        status: int | None = None,
        message: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> FakeProvider:
        """Queue a native error response of the given kind (see :class:`Failure`)."""
        return self.then(Failure(kind, status, message, code, dict(headers or {})))

    def raw(
        self, status: int, body: bytes | str = b"", headers: Mapping[str, str] | None = None
    ) -> FakeProvider:
        """Queue a byte-exact response."""
        return self.then(Raw(status, body, dict(headers or {})))

    def cut_stream(
        self, after_chunks: int, content: str = "", *, cut_raises: bool = True
    ) -> FakeProvider:
        """Queue a stream that drops the connection after ``after_chunks`` chunks."""
        return self.then(StreamCut(after_chunks, content, cut_raises))

    def error_mid_stream(
        self, after_chunks: int, kind: str = "content_filter", content: str = ""
    ) -> FakeProvider:
        """Queue a stream that sends ``after_chunks`` chunks, then a native error event."""
        return self.then(MidStreamError(after_chunks, kind, content))

    def sensitive(self, after_chunks: int = 0, content: str = "") -> FakeProvider:
        """Queue an answer stopped by the safety filter after ``after_chunks`` chunks."""
        return self.then(Sensitive(after_chunks, content))

    # -- inspection ------------------------------------------------------------------------

    @property
    def last_json(self) -> Any:
        """The parsed JSON body of the most recent request."""
        if not self.requests:
            raise LookupError("the fake has not received any request yet")
        last = self.requests[-1]
        try:
            return json.loads(last.content)
        except ValueError:
            raise LookupError(
                f"the most recent request ({last.method} {last.url.path}) has no JSON body"
            ) from None

    @property
    def pending(self) -> list[Outcome]:
        """The scripted outcomes no request has taken yet, in order (a test can assert
        ``fake.pending == []`` to check that every one it scripted was used)."""
        with self._lock:
            return list(self._queue)

    # -- wiring ----------------------------------------------------------------------------

    def transport(self) -> httpx.MockTransport:
        """An httpx transport answering from this fake; works for Client and AsyncClient."""
        return httpx.MockTransport(self.handler)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Record ``request`` and answer it; usable directly as a respx ``side_effect``."""
        request.read()
        with self._lock:
            self.requests.append(request)
        method, path = request.method.upper(), request.url.path
        for base_path in (urlsplit(self.base_url).path.rstrip("/"), *self.other_roots):
            if not path.startswith(base_path + "/"):
                continue
            relative = path[len(base_path) :]
            for route_method, pattern, name in self.routes:
                match = re.fullmatch(pattern, relative)
                if match and route_method == method:
                    return getattr(self, name)(request, **match.groupdict())
        return self.unknown_route(request)

    def unknown_route(self, request: httpx.Request) -> httpx.Response:
        """Answer a request no route matches; subclasses may render a native 404."""
        return httpx.Response(404, text=f"fake has no route for {request.method} {request.url}")

    # -- helpers for subclasses ------------------------------------------------------------

    def queued_failure(self, error: Callable[[Failure], httpx.Response]) -> httpx.Response | None:
        """The answer to a Failure (made by ``error``) or Raw at the head of the queue, taken
        from it; None when the head is anything else. Routes other than chat (embeddings,
        models) take only these: chat replies stay queued for the chat requests they were
        scripted for."""
        outcome = self.next_outcome(lambda o: isinstance(o, (Failure, Raw)))
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return error(outcome)
        return None

    def next_outcome(self, accept: Callable[[Outcome], bool] = lambda _: True) -> Outcome | None:
        """Pop the head of the queue if ``accept`` likes it, else None (queue left intact)."""
        with self._lock:
            if self._queue and accept(self._queue[0]):
                return self._queue.popleft()
            return None

    def next_serial(self) -> int:
        """A per-fake counter (1, 2, ...) for deterministic ids."""
        with self._lock:
            self._serial += 1
            return self._serial

    def default_reply(
        self, model: str, user_text: str, body: Any = None, messages: Any = None
    ) -> Reply:
        """The unscripted answer: a deterministic sentence echoing the last user message,
        or, for a request (``body``) that asks for JSON, JSON holding it (`json_content`)."""
        echo = f"(offline fake {model}) You said: {user_text}"
        return Reply(content=json_content(body, messages, echo) or echo)

    def json_response(
        self,
        status: int,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        *,
        sort_keys: bool = False,
    ) -> httpx.Response:
        """A compact JSON response with ``Content-Type: application/json``."""
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        body = dumps(payload, sort_keys=sort_keys).encode("utf-8")
        return httpx.Response(status, headers=all_headers, content=body)

    def stream_response(
        self,
        status: int,
        chunks: Iterable[bytes],
        headers: Mapping[str, str],
        *,
        cut: bool = False,
    ) -> httpx.Response:
        """A response whose body arrives as separate reads (re-split by ``split_bytes``)."""
        stream = ChunkStream(rechunk(chunks, self.split_bytes), cut=cut)
        return httpx.Response(status, headers=dict(headers), stream=stream)

    def raw_response(self, raw: Raw) -> httpx.Response:
        """Render a :class:`Raw` outcome byte for byte."""
        return self.stream_response(raw.status, [raw.body_bytes()], raw.headers)
