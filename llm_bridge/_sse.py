"""An incremental Server-Sent Events decoder: bytes in, events out, no I/O.

Each provider frames its stream a little differently: Zhipu sends ``data: {...}`` and
``data: [DONE]``; DashScope sends ``id:``/``event:`` lines, a ``:HTTP_STATUS/200`` comment
and ``data:`` with no space; DeepSeek sends ``: keep-alive`` comments while queued. One
decoder that follows the WHATWG rules handles all of them.

Bytes are split into lines *before* decoding, so a multi-byte UTF-8 character that a
network read cut in two is reassembled, never replaced by U+FFFD.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Optional, Union

__all__ = ["EventTooLarge", "SSEDecoder", "SSEEvent"]

_BOM = b"\xef\xbb\xbf"


class SSEEvent:
    """One dispatched event. ``comments`` keeps ``:`` lines (DashScope puts status there).

    The decoder gives ``data`` as the bytes it read: `raw` hands them to a JSON parser
    as they are, and `data` decodes them (once) only for whoever wants text. Comments
    may likewise be the raw ``:``-lines, decoded only if read: DashScope sends one with
    every event and nothing here needs it.
    """

    __slots__ = ("_comments", "_text", "event", "id", "raw", "retry")

    def __init__(
        self,
        data: Union[str, bytes],
        event: Optional[str] = None,
        id: Optional[str] = None,
        retry: Optional[int] = None,
        comments: Union[tuple[str, ...], bytes] = (),
    ) -> None:
        self.raw = data  # as received (bytes from the decoder): what a JSON parser should take
        self._text: Optional[str] = None
        self.event = event
        self.id = id
        self.retry = retry
        self._comments = comments

    @property
    def data(self) -> str:
        """The event's data as text (invalid UTF-8 replaced, never an error)."""
        if self._text is None:
            raw = self.raw
            self._text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
        return self._text

    @property
    def comments(self) -> tuple[str, ...]:
        if isinstance(self._comments, bytes):
            self._comments = tuple(
                line[1:].decode("utf-8", errors="replace").lstrip(" ")
                for line in self._comments.split(b"\n")
                if line
            )
        return self._comments

    def __repr__(self) -> str:
        return f"SSEEvent(event={self.event!r}, data={self.data[:80]!r}, id={self.id!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SSEEvent) and all(
            getattr(self, name) == getattr(other, name)
            for name in ("comments", "data", "event", "id", "retry")
        )


_CR, _LF = ord("\r"), ord("\n")

#: The head of an event of at most an ``id:``, an ``event:`` and comments before its one
#: ``data:`` line, in that order: DashScope's framing (``id:1``, ``event:result``,
#: ``:HTTP_STATUS/200``, ``data:{...}``), matched in one pass instead of line by line. The
#: data is what follows the match, if no line break does.
_FRAMED_HEAD = re.compile(rb"(?:id: ?([^\n\0]*)\n)?(?:event: ?([^\n]*)\n)?((?::[^\n]*\n)*)data: ?")


class EventTooLarge(Exception):
    """An unfinished event (a line that does not end, say) went past the decoder's
    ``max_event_bytes``; the reader turns it into its own error."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"a stream event longer than {limit:,} bytes")
        self.limit = limit


def _may_end_event(data: bytes) -> bool:
    """Whether ``data`` may hold the blank line that ends an event (in any of LF, CR and
    CRLF line endings): ``\n\n``, ``\r\r`` or ``\n\r`` (CRLF CRLF holds the last)."""
    return b"\n\n" in data or b"\r\r" in data or b"\n\r" in data


class SSEDecoder:
    """Feed it the body chunk by chunk; call `flush` when the body ends.

    The body is cut into events at blank lines (``\\n\\n``) while still bytes, and each
    complete event is parsed on its own; an unfinished one waits in the buffer. The
    common event, a single ``data:`` line, is recognised without looking at its lines
    and handed over as its bytes: a stream's cost over raw httpx is mostly Python work
    per event, and an object per event was a measurable part of it.
    """

    def __init__(
        self, names: Optional[Iterable[str]] = None, *, max_event_bytes: Optional[int] = None
    ) -> None:
        """``names`` are the event names the reader tells apart (an ``error`` event, say).
        None keeps every named event whole; given, an event of another name may come as
        its data bytes (see `feed`), its name, id and comments dropped.
        ``max_event_bytes`` bounds an unfinished event (`EventTooLarge` past it)."""
        self._buffer = b""
        # Chunks of an unfinished event that brought no event boundary: kept apart, not
        # joined and searched again on every chunk (which made one endless line quadratic).
        self._parts: list[bytes] = []
        self._held = 0  # bytes in _buffer and _parts
        self._limit = max_event_bytes
        if isinstance(names, str):
            names = (names,)  # one name, not its letters
        self._names = None if names is None else frozenset(name.encode() for name in names)
        # What followed the id line of the last event that came as bytes though framed,
        # up to its data (DashScope: b"\nevent:result\n:HTTP_STATUS/200\ndata:"). An
        # event framed the same way is cut at it without the regular expression, which
        # on a loopback stream cost ~5% of the whole; see `_framed_event`.
        self._tail: Optional[bytes] = None
        # Until the body's first bytes are in: a UTF-8 byte order mark there is dropped,
        # as the WHATWG rules drop it (left, it made the first line's field name
        # "\ufeffdata", and the first event was lost). What may be the start of one.
        self._fresh = True
        self._opening = b""

    def _without_bom(self, chunk: bytes) -> bytes:
        """``chunk``, the body's first bytes, without a byte order mark (b"" while they
        could still be one: kept until more arrive)."""
        chunk = self._opening + chunk
        if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
            self._opening = chunk
            return b""
        self._fresh, self._opening = False, b""
        return chunk[len(_BOM) :] if chunk.startswith(_BOM) else chunk

    def feed(self, chunk: bytes) -> list[Union[bytes, SSEEvent]]:
        """The events completed by ``chunk`` (possibly none), in order.

        An event that is a single ``data:`` line and nothing else (nearly all of them) comes
        as its data bytes, with no event object made for it, and so does, when the decoder
        was given ``names``, one framed as DashScope frames its events and not of those
        names; any other comes as an `SSEEvent`."""
        if self._fresh:
            chunk = self._without_bom(chunk)
        if self._held:
            # An event is unfinished: look for its end only where ``chunk`` could put one
            # (the chunk and the few bytes before it), so a line that never ends is read
            # in linear time.
            before = self._parts[-1] if self._parts else self._buffer
            if not _may_end_event(before[-3:] + chunk):
                self._hold(chunk)
                return []
            if self._parts:
                self._buffer = b"".join([self._buffer, *self._parts])
                self._parts = []
        buffer = self._buffer + chunk if self._buffer else chunk
        if _CR in buffer:  # (an int: a byte test, several times faster than b"\r" in ...)
            # A CR at the very end may be the first half of CRLF: wait for the next chunk.
            held = b"\r" if buffer.endswith(b"\r") else b""
            buffer = buffer[: len(buffer) - len(held)].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            buffer += held
        blocks = buffer.split(b"\n\n")
        self._buffer = blocks.pop()
        self._held = 0
        if self._buffer:
            self._hold(b"", self._buffer)
        events = []
        tail = self._tail
        for block in blocks:
            if tail is not None:  # one id line, the framing learnt, one data line
                head, found, data = block.partition(tail)
                if (
                    found
                    and head.startswith(b"id:")
                    and _LF not in head
                    and _LF not in data
                    and data[:1] != b" "
                ):
                    events.append(data)
                    continue
            if block.startswith(b"data:") and _LF not in block:  # nearly every event: its data
                events.append(block[6:] if block[5:6] == b" " else block[5:])
                continue
            if block:
                event = self._framed_event(block)
                if event is None:
                    event = _parse_event(block)
                if event is not None:
                    events.append(event)
                tail = self._tail
        return events

    def _framed_event(self, block: bytes) -> Union[bytes, SSEEvent, None]:
        """The event of a block in `_FRAMED_HEAD`'s shape (its data bytes when its name is
        not one the reader asked for), else None (`_parse_event` reads it)."""
        match = _FRAMED_HEAD.match(block)
        if match is None:
            return None
        data = block[match.end() :]
        if _LF in data:
            return None
        id, name, comments = match.groups()
        if self._names is not None and name not in self._names:
            if id is not None and block.endswith(b"data:", 0, match.end()):
                # An id line, then this framing, then one data line with no space after
                # "data:" is an event of this same name for any id and data: `feed` then
                # cuts it at the framing (the id is dropped anyway, even one the regular
                # expression refuses for a NUL in it).
                self._tail = block[block.index(b"\n") : match.end()]
            return data
        return SSEEvent(
            data,
            None if name is None else name.decode("utf-8", errors="replace"),
            None if id is None else id.decode("utf-8", errors="replace"),
            None,
            comments,  # the raw lines, decoded on first read
        )

    def _hold(self, chunk: bytes, held: bytes = b"") -> None:
        """Keep ``chunk`` (or count ``held``, already kept) as part of the unfinished
        event; past ``max_event_bytes`` raise `EventTooLarge`."""
        if chunk:
            self._parts.append(chunk)
        self._held += len(chunk) + len(held)
        if self._limit is not None and self._held > self._limit:
            raise EventTooLarge(self._limit)

    @property
    def pending(self) -> bool:
        """True when bytes of an undispatched event are buffered."""
        if self._parts:
            self._buffer = b"".join([self._buffer, *self._parts])
            self._parts = []
        return bool(self._buffer.strip(b"\r\n"))

    def flush(self) -> list[Union[bytes, SSEEvent]]:
        """Dispatch what is left when the body ends without a final blank line."""
        if self._parts:
            self._buffer = b"".join([self._buffer, *self._parts])
            self._parts = []
        self._held = 0
        block, self._buffer = self._buffer.rstrip(b"\r\n"), b""
        event = _parse_event(block.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        return [] if event is None else [event]


def _parse_event(block: bytes) -> Optional[SSEEvent]:
    """One event's lines (no blank line among them but leading ones), as the WHATWG rules
    read them; None when it carries neither data nor an event name."""
    data: list[bytes] = []
    event = id = None
    retry = None
    comments: list[str] = []
    for raw in block.split(b"\n"):
        if not raw:
            continue  # a leading blank line ends an event that was already dispatched
        if raw.startswith(b":"):
            comments.append(raw[1:].decode("utf-8", errors="replace").lstrip(" "))
            continue
        if raw.startswith(b"{"):
            # Not SSE: a bare JSON line, which Qianfan v1 sends for errors inside an event
            # stream. The specification would ignore it; it is taken as data instead.
            data.append(raw)
            continue
        name, sep, value = raw.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", errors="replace")
        elif name == b"id" and b"\0" not in value:
            id = value.decode("utf-8", errors="replace")
        elif name == b"retry" and value.isdigit():
            retry = int(value)
        # Unknown field names are ignored, as the SSE specification says.
    if not data and event is None:
        return None
    return SSEEvent(b"\n".join(data), event, id, retry, tuple(comments))
