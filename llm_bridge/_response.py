"""What ``.with_raw_response`` returns: the provider's HTTP response plus ``parse()``.

As in openai, ``client.chat.completions.with_raw_response.create(...)`` gives access to
headers (rate-limit counters, request ids) while ``parse()`` still returns the translated
`ChatCompletion` (or `Stream`). ``content`` and ``text`` are the provider's own bytes, before
translation, which is what one wants when debugging a provider.
"""

from __future__ import annotations

import datetime
from typing import Any, Generic, Optional, TypeVar

import httpx

__all__ = ["LegacyAPIResponse"]

R = TypeVar("R")


class LegacyAPIResponse(Generic[R]):
    """The raw response of one call (after retries and fallbacks) and its parsed result."""

    def __init__(self, http_response: httpx.Response, parsed: R, *, retries_taken: int) -> None:
        self.http_response = http_response
        self._parsed = parsed
        self.retries_taken = retries_taken

    def parse(self) -> R:
        return self._parsed

    @property
    def headers(self) -> httpx.Headers:
        return self.http_response.headers

    @property
    def http_request(self) -> httpx.Request:
        return self.http_response.request

    @property
    def status_code(self) -> int:
        return self.http_response.status_code

    @property
    def url(self) -> httpx.URL:
        return self.http_response.url

    @property
    def method(self) -> str:
        return self.http_request.method

    @property
    def http_version(self) -> str:
        return self.http_response.http_version

    @property
    def elapsed(self) -> datetime.timedelta:
        return self.http_response.elapsed

    @property
    def is_closed(self) -> bool:
        return self.http_response.is_closed

    @property
    def content(self) -> bytes:
        """The provider's body (not read for streams: iterate ``parse()`` instead)."""
        return self.http_response.content

    @property
    def text(self) -> str:
        return self.http_response.text

    @property
    def request_id(self) -> Optional[str]:
        parsed: Any = self._parsed
        return self.headers.get("x-request-id") or getattr(parsed, "request_id", None)

    def __repr__(self) -> str:
        return (
            f"<LegacyAPIResponse [{self.status_code}] {self.method} "
            f"{self.url.copy_with(query=None)} retries_taken={self.retries_taken}>"
        )
