"""What both stream pipelines (chat chunks, Responses events) do with each network read
before translating it: cut it into server-sent events within ``max_sse_line_bytes``, and
hold the stream to its idle timeout and total deadline.

**How a stream's time limits relate to openai's ``timeout``.** ``timeout`` bounds each read
from the socket, so a server that sends a keep-alive comment every few seconds, or one
byte of an event at a time, never trips it. Two limits bound a stream as a whole:

- the *idle timeout*: the longest wait from one event to the next (or from the start to
  the first). Keep-alive comments and bytes of an unfinished event do not count as
  events, so a stream of keep-alives alone ends. Default: the call's read timeout (600 s
  by default in openai and here). Set it with ``[limits] stream_idle_timeout``, or per
  call or client with the header ``x-llm-bridge-stream-idle-timeout: <seconds>``;
- the *deadline*: the longest a whole stream may take. Off by default (an answer may
  rightly stream for many minutes); ``[limits] stream_deadline`` or
  ``x-llm-bridge-stream-deadline: <seconds>``.

Both are checked whenever bytes arrive. A socket that goes silent is bounded by the read
timeout, which a stream request sends lowered to its idle timeout and deadline when they
are shorter (`per_read_timeout`); on llm-bridge's own HTTP clients each read is also
held to the time the next limit falls (`hold_reads`): a read timeout restarts at every
read, so keep-alives, or events until just before the deadline, followed by silence
would otherwise end the stream up to twice its limit late. Passing either raises
`APITimeoutError` naming it.
"""

from __future__ import annotations

import math
import time
from typing import Any, Optional, Union

import httpx

from ._errors import APITimeoutError, ResponseTooLargeError
from ._sse import EventTooLarge, SSEDecoder, SSEEvent

__all__ = [
    "DEADLINE_HEADER",
    "IDLE_HEADER",
    "StreamClock",
    "decode",
    "hold_reads",
    "per_read_timeout",
    "seconds",
]

IDLE_HEADER = "x-llm-bridge-stream-idle-timeout"
DEADLINE_HEADER = "x-llm-bridge-stream-deadline"


class StreamClock:
    """One stream's idle timeout and total deadline, in seconds (None: no such limit)."""

    __slots__ = ("deadline", "idle", "last_event", "total")

    def __init__(
        self, idle: Optional[float], total: Optional[float], *, started: Optional[float] = None
    ) -> None:
        """``started``: when the request was sent (``time.monotonic()``; default now), from
        which the deadline counts; the idle time counts from now, the answer's headers."""
        now = time.monotonic()
        self.idle = idle
        self.total = total
        self.deadline = math.inf if total is None else (now if started is None else started) + total
        self.last_event = now

    def read_by(self) -> float:
        """When the next read must have brought an event (``time.monotonic()``; inf: no
        limit): the sooner of the idle timeout's and the deadline."""
        if self.idle is None:
            return self.deadline
        return min(self.deadline, self.last_event + self.idle)

    def tick(self, events: int, response: httpx.Response, provider: str) -> None:
        """A read brought ``events`` events: past either limit, raise `APITimeoutError`."""
        now = time.monotonic()
        if events and now <= self.deadline:
            self.last_event = now
            return
        late = self._passed(response, provider, now, 0.0)
        if late is not None:
            raise late

    def timed_out(self, response: httpx.Response, provider: str) -> Optional[APITimeoutError]:
        """What a read that timed out means, when the read timeout was lowered to one of
        the stream's limits (`per_read_timeout`): the error naming that limit, so that a
        silent socket names it too (the read may end a hair before the limit by this
        clock, hence the slack). None: the call's own read timeout ran out."""
        return self._passed(response, provider, time.monotonic(), _CLOCK_SLACK)

    def _passed(
        self, response: httpx.Response, provider: str, now: float, slack: float
    ) -> Optional[APITimeoutError]:
        """The error naming the limit the stream passed at ``now`` (less ``slack``)."""
        if now > self.deadline - slack:
            return _late(response, provider, f"its deadline of {self.total:g} s", "stream_deadline")
        if self.idle is not None and now - self.last_event > self.idle - slack:
            return _late(
                response,
                provider,
                f"{self.idle:g} s without an event (keep-alive comments do not count)",
                "stream_idle_timeout",
            )
        return None


#: How much earlier than a limit (seconds) a read timeout set to it may end, by this clock.
_CLOCK_SLACK = 0.05


def _late(response: httpx.Response, provider: str, what: str, key: str) -> APITimeoutError:
    header = IDLE_HEADER if key == "stream_idle_timeout" else DEADLINE_HEADER
    return APITimeoutError(
        response.request,
        provider=provider,
        message=f"{provider} stream timed out: {what}; set [limits] {key} in the config, or "
        f"the {header} header per call",
    )


def decode(
    decoder: SSEDecoder,
    data: bytes,
    final: bool,
    response: httpx.Response,
    provider: str,
    clock: Optional[StreamClock],
) -> list[Union[bytes, SSEEvent]]:
    """The events ``data`` (one network read; ``final``: the body ended) completes, within
    the stream's line limit and time limits."""
    try:
        events = decoder.flush() if final else decoder.feed(data)
    except EventTooLarge as big:  # a line that does not end: stop reading it
        raise ResponseTooLargeError(
            response,
            limit=big.limit,
            setting="max_sse_line_bytes",
            what="stream line",
            provider=provider,
        ) from None
    if clock is not None and not final:
        clock.tick(len(events), response, provider)
    return events


def hold_reads(response: httpx.Response, clock: StreamClock) -> None:
    """Hold the reads of ``response``'s connection to ``clock`` while it is open, where
    the connection is one of llm-bridge's own HTTP clients' (`_read_deadline`,
    `_async_pool`); any other reads as it did (bounded by its read timeout alone)."""
    stream = response.extensions.get("network_stream")
    hold = getattr(stream, "hold_to", None)
    if hold is not None:
        hold(clock.read_by, response)


def per_read_timeout(
    timeout: Union[float, httpx.Timeout, None], idle: Optional[float], total: Optional[float]
) -> Union[float, httpx.Timeout, None]:
    """``timeout`` for a stream request: its read timeout no longer than ``idle`` or
    ``total``, so a silent socket is bounded by them too."""
    limits = [t for t in (idle, total) if t is not None]
    if not limits:
        return timeout
    base = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
    read = min(limits) if base.read is None else min(base.read, *limits)
    if read == base.read:
        return timeout
    return httpx.Timeout(connect=base.connect, read=read, write=base.write, pool=base.pool)


def seconds(value: Any, name: str) -> Optional[float]:
    """A limit given as text (a header) or a number: positive seconds, or a ValueError
    naming ``name`` and the allowed range."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = math.nan
    if not (0 < number < math.inf):
        raise ValueError(f"{name} must be a number of seconds greater than 0; got {value!r}")
    return number
