"""One retry policy, on openai's contract, shared by the sync and async I/O paths.

What is retried: connection errors and timeouts; HTTP 408, 409, 429 and >=500; and any
provider code its table marks ``retryable`` even inside an HTTP 200 body. What is not:
other 4xx, and codes the table marks not retryable even when their status says otherwise
(Zhipu 1113 "in arrears" arrives as 429; retrying it only burns time). A provider's
``retry-after-ms`` / ``retry-after`` is obeyed up to `MAX_RETRY_AFTER`; otherwise the wait
is exponential with jitter, 0.5 s doubling to 8 s, as openai does.

The engine's loop makes every attempt (`SyncEngine._attempts` and its async twin, which
differ only in how they wait) and asks `RetryPolicy.wait_after` after each failure. A
dozen lines of loop need no retry library, and the common call, which succeeds at once,
pays for none.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import Any, Optional

from ._errors import APIConnectionError, APIError, APIStatusError

__all__ = ["RetryPolicy", "is_retryable", "retry_delay"]

INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
MAX_RETRY_AFTER = 60.0

log = logging.getLogger("llm_bridge")


def is_retryable(error: BaseException) -> bool:
    """Would openai retry this (with the provider's code table having the last word)?"""
    if isinstance(error, APIConnectionError):
        return True
    if not isinstance(error, APIStatusError):
        return False
    if error.retryable is not None:
        return error.retryable
    header = error.response.headers.get("x-should-retry")
    if header in ("true", "false"):
        return header == "true"
    status = error.response.status_code  # the provider's, as openai's rule reads it
    return status in (408, 409, 429) or status >= 500


def retry_delay(error: Optional[BaseException], retries_done: int) -> float:
    """Seconds to wait before the next attempt (``retries_done`` >= 1): the provider's
    wait when it asks for one of up to `MAX_RETRY_AFTER`, else the backoff. As in openai, a
    wait of zero (or one already past) is no wait asked for: an overloaded provider saying
    ``retry-after: 0`` gets the backoff, not every retry at once."""
    if isinstance(error, APIStatusError):
        after = _retry_after(error.response.headers)
        if after is not None and 0 < after <= MAX_RETRY_AFTER:
            return after
    delay = min(INITIAL_RETRY_DELAY * 2 ** (retries_done - 1), MAX_RETRY_DELAY)
    return delay * (1 - 0.25 * random.random())


def _retry_after(headers: Any) -> Optional[float]:
    """The provider's requested wait in seconds, or None when it gave none readable.

    Total over any header value: a number of milliseconds (``retry-after-ms``), a number
    of seconds or an HTTP date (``retry-after``); anything else (words, NaN, a date out of
    range) is no wait at all, and the usual backoff applies."""
    value = headers.get("retry-after-ms")
    if value is not None:
        seconds = _number(value)
        if seconds is not None:
            return seconds / 1000
    value = headers.get("retry-after")
    if not value:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    import email.utils  # rare: only for a Retry-After given as an HTTP date

    try:
        parsed = email.utils.parsedate_to_datetime(value)
        return parsed.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError, IndexError, OSError):
        return None


def _number(value: Any) -> Optional[float]:
    """``value`` as a finite float, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def sleep(seconds: float) -> None:
    """The sync wait between attempts (a module function so tests can replace it)."""
    time.sleep(seconds)


async def async_sleep(seconds: float) -> None:
    import asyncio  # imported on first use: sync-only programs never load it

    await asyncio.sleep(seconds)


class RetryPolicy:
    """The retry decision for one call: ``max_retries`` plus one re-authentication."""

    def __init__(self, max_retries: int, *, provider: str, what: str) -> None:
        self.max_retries = max_retries
        self.provider = provider
        self.what = what
        self.reauthenticated = False
        self.credentials: Any = None  # the provider's credentials, renewed on reauth errors

    def wait_after(self, error: APIError, *, attempt: int) -> Optional[float]:
        """Seconds to wait before the attempt after the failed ``attempt`` (1-based), or
        None when the call ends with ``error``."""
        if not self._decide(error, attempt=attempt):
            return None
        wait = 0.0 if error.should_reauth else retry_delay(error, attempt)
        log.info(
            "%s %s: attempt %d failed (%s); retrying in %.2fs",
            self.provider,
            self.what,
            attempt,
            _describe(error),
            wait,
        )
        return wait

    def _decide(self, error: APIError, *, attempt: int) -> bool:
        if error.should_reauth and not self.reauthenticated:
            request = getattr(error, "_sent", None) or error.request
            self.reauthenticated = bool(
                self.credentials and request is not None and self.credentials.invalidate(request)
            )
            return self.reauthenticated
        allowed = self.max_retries + 1 + (1 if self.reauthenticated else 0)
        return attempt < allowed and is_retryable(error)


def _describe(error: Optional[BaseException]) -> str:
    if isinstance(error, APIStatusError):
        return f"{type(error).__name__} {error.status_code} {error.provider_code or ''}".strip()
    if isinstance(error, APIError):
        return type(error).__name__
    return repr(error)
