"""An incremental Server-Sent Events decoder: bytes in, events out, no I/O.

Each provider frames its stream a little differently: Zhipu sends ``data: {...}`` and
``data: [DONE]``; DashScope sends ``id:``/``event:`` lines, a ``:HTTP_STATUS/200`` comment
and ``data:`` with no space; DeepSeek sends ``: keep-alive`` comments while queued. One
decoder that follows the WHATWG rules handles all of them.

Bytes are split into lines *before* decoding, so a multi-byte UTF-8 character that a
network read cut in two is reassembled, never replaced by U+FFFD.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["SSEDecoder", "SSEEvent"]


class SSEEvent:
    """One dispatched event. ``comments`` keeps ``:`` lines (DashScope puts status there)."""

    __slots__ = ("comments", "data", "event", "id", "retry")

    def __init__(
        self,
        data: str,
        event: Optional[str] = None,
        id: Optional[str] = None,
        retry: Optional[int] = None,
        comments: tuple[str, ...] = (),
    ) -> None:
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry
        self.comments = comments

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data[:80]!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and all(
            getattr(self, slot) == getattr(other, slot) for slot in self.__slots__
        )


class SSEDecoder:
    """Feed it the body chunk by chunk; call `flush` when the body ends."""

    def __init__(self) -> None:
        self._buffer = b""
        self._reset()

    def _reset(self) -> None:
        self._data: list[str] = []
        self._event: Optional[str] = None
        self._id: Optional[str] = None
        self._retry: Optional[int] = None
        self._comments: list[str] = []
        self._dirty = False
        self._plain = True  # only data lines so far: the event is made the short way

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events completed by ``chunk`` (possibly none).

        The loop handles blank and ``data:`` lines inline: they are nearly every line of a
        stream, and this runs once per network read of every stream."""
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" in buffer:
            # A CR at the very end may be the first half of CRLF: wait for the next chunk.
            held = b"\r" if buffer.endswith(b"\r") else b""
            buffer = buffer[: len(buffer) - len(held)].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            buffer += held
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events = []
        for raw in lines:
            if not raw:
                data = self._data
                if data and self._plain:
                    events.append(SSEEvent(data[0] if len(data) == 1 else "\n".join(data)))
                    self._data = []
                    self._dirty = False
                elif self._dirty:
                    event = self._dispatch()
                    if event is not None:
                        events.append(event)
            elif raw.startswith(b"data:"):
                self._dirty = True
                value = raw[6:] if raw[5:6] == b" " else raw[5:]
                self._data.append(value.decode("utf-8", errors="replace"))
            else:
                self._line(raw)
        return events

    def flush(self) -> list[SSEEvent]:
        """Dispatch what is left when the body ends without a final blank line."""
        events = []
        if self._buffer:
            leftover, self._buffer = self._buffer.rstrip(b"\r"), b""
            event = self._line(leftover)
            if event is not None:
                events.append(event)
        event = self._line(b"")
        if event is not None:
            events.append(event)
        return events

    @property
    def pending(self) -> bool:
        """True when bytes of an undispatched event are buffered."""
        return bool(self._buffer) or self._dirty

    def _line(self, raw: bytes) -> Optional[SSEEvent]:
        if not raw:
            return self._dispatch()
        if raw.startswith(b"data:"):  # nearly every line of a stream: the short way
            self._dirty = True
            value = raw[6:] if raw[5:6] == b" " else raw[5:]
            self._data.append(value.decode("utf-8", errors="replace"))
            return None
        line = raw.decode("utf-8", errors="replace")
        self._dirty = True
        self._plain = False
        if line.startswith(":"):
            self._comments.append(line[1:].lstrip(" "))
            return None
        if line.startswith("{"):
            # Not SSE: a bare JSON line, which Qianfan v1 sends for errors inside an event
            # stream. The specification would ignore it; it is taken as data instead.
            self._data.append(line)
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)
        # Unknown field names are ignored, as the SSE specification says.
        return None

    def _dispatch(self) -> Optional[SSEEvent]:
        if not self._dirty:
            return None
        event = None
        data = self._data
        if data or self._event is not None:
            event = SSEEvent(
                data[0] if len(data) == 1 else "\n".join(data),
                self._event,
                self._id,
                self._retry,
                tuple(self._comments) if self._comments else (),
            )
        self._reset()
        return event
