"""HTTP clients with llm-bridge's defaults, for ``http_client=`` (as openai offers them).

``DefaultHttpxClient`` / ``DefaultAsyncHttpxClient`` are httpx clients with our timeout,
pool limits and redirects. ``DefaultAioHttpClient`` is the opt-in async client backed by
aiohttp (``pip install "llm-bridge-cn[aiohttp]"``): under heavy concurrency httpx's own
async pool is the bottleneck, aiohttp's is not. It is imported only when asked for, so
``import llm_bridge`` never pays for aiohttp.
"""

from __future__ import annotations

from typing import Any

import httpx

from ._constants import DEFAULT_LIMITS, DEFAULT_TIMEOUT

__all__ = ["DefaultAioHttpClient", "DefaultAsyncHttpxClient", "DefaultHttpxClient"]


def _defaults(kwargs: dict[str, Any]) -> dict[str, Any]:
    kwargs.setdefault("timeout", DEFAULT_TIMEOUT)
    kwargs.setdefault("limits", DEFAULT_LIMITS)
    kwargs.setdefault("follow_redirects", True)
    return kwargs


class DefaultHttpxClient(httpx.Client):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_defaults(kwargs))


class DefaultAsyncHttpxClient(httpx.AsyncClient):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**_defaults(kwargs))


class DefaultAioHttpClient:
    """An ``httpx.AsyncClient`` whose transport is aiohttp; for ``AsyncOpenAI(http_client=...)``.

    Note that respx does not intercept it: tests mock with a loopback server instead.
    """

    def __new__(cls, **kwargs: Any) -> httpx.AsyncClient:  # type: ignore[misc]
        try:
            from httpx_aiohttp import HttpxAiohttpClient
        except ImportError:
            raise RuntimeError(
                'DefaultAioHttpClient needs aiohttp: pip install "llm-bridge-cn[aiohttp]"'
            ) from None
        return HttpxAiohttpClient(**_defaults(kwargs))
