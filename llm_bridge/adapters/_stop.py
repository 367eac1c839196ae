"""Client-side stop sequences, for providers that take fewer than the caller gave.

OpenAI accepts four stop sequences; GLM accepts one. The others are applied here: the
output is cut before the first occurrence of any of them and ``finish_reason`` becomes
``stop``, which is what the caller would have seen from OpenAI. In a stream a stop
sequence can straddle two chunks, so `StopScanner` holds back just enough text to see it
whole before releasing anything.
"""

from __future__ import annotations

from typing import Optional

__all__ = ["StopScanner", "cut_at_stop"]


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """``text`` up to the earliest stop sequence, and whether one was found."""
    positions = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    if not positions:
        return text, False
    return text[: min(positions)], True


class StopScanner:
    """Streams text through, cutting it at the first stop sequence."""

    def __init__(self, stops: list[str]) -> None:
        self._stops = [s for s in stops if s]
        self._hold = max((len(s) for s in self._stops), default=1) - 1
        self._pending = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that is safe to release now (empty once stopped)."""
        if self.stopped:
            return ""
        buffer = self._pending + text
        cut, found = cut_at_stop(buffer, self._stops)
        if found:
            self.stopped = True
            self._pending = ""
            return cut
        release = len(buffer) - self._hold
        if release <= 0:
            self._pending = buffer
            return ""
        self._pending = buffer[release:]
        return buffer[:release]

    def flush(self) -> Optional[str]:
        """Whatever was held back, when the text ends without a stop sequence."""
        pending, self._pending = self._pending, ""
        return pending or None
