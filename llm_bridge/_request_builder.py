"""`RequestBuilder`: the ``httpx.Request`` for a call, with what repeats between calls kept.

``client.build_request`` parses the URL character by character (twice when a query is
merged in), merges the client's default headers into the call's, then its cookies and
query parameters. A client of ours sends a handful of distinct URLs and header sets over
and over, so the builder keeps the parsed ``httpx.URL`` per (URL, query) and the merged
``httpx.Headers`` per header set, both immutable in use (``httpx.Request`` copies the
headers it is given), and makes the ``httpx.Request`` itself. That was two thirds of what
a non-stream request cost on top of raw httpx.

It does exactly what ``build_request`` does for an absolute URL, no ``cookies=`` and no
``params=`` argument, and defers to it when the client has state that needs merging (a
cookie jar with cookies, default query parameters) or the URL is relative. One thing it
does differently on purpose: a query already in the URL is kept and the call's params
merged into it, where ``build_request(url, params=...)`` would drop it. A test compares
the two.
"""

from __future__ import annotations

from typing import Any, Optional, Union

import httpx

__all__ = ["RequestBuilder"]

#: Entries kept per cache; more distinct keys than this (a stream of renewed access tokens
#: in Qianfan's query, say) start the cache over.
CACHE_SIZE = 64

HTTPClient = Union[httpx.Client, httpx.AsyncClient]


class RequestBuilder:
    """Builds requests for one engine; its caches live as long as the client."""

    def __init__(self) -> None:
        self._urls: dict[tuple[str, tuple[tuple[str, Any], ...]], httpx.URL] = {}
        self._headers: dict[tuple[Any, ...], httpx.Headers] = {}
        # (id of merged headers, host) -> (those headers, kept alive; with Host first)
        self._prepared: dict[tuple[int, bytes], tuple[httpx.Headers, httpx.Headers]] = {}

    def build(
        self,
        client: HTTPClient,
        method: str,
        url: str,
        *,
        params: dict[str, Any],
        headers: dict[str, str],
        content: Optional[bytes],
        timeout: Union[float, httpx.Timeout, None],
    ) -> httpx.Request:
        """What ``client.build_request(method, url + params, headers=..., content=...,
        timeout=...)`` returns."""
        target = self.url(url, params)
        if client.cookies or client.params or target.is_relative_url:
            # State of the client's to merge in: httpx's way, with the query of the call's
            # URL over the client's default params (httpx replaces a URL's query by them).
            return client.build_request(
                method,
                target,
                params=target.params,
                headers=headers,
                content=content,
                timeout=timeout,
            )
        extensions = {"timeout": httpx.Timeout(timeout).as_dict()}
        prepared = self.prepared_headers(client, headers, target) if content is not None else None
        if prepared is None:
            return httpx.Request(
                method,
                target,
                headers=self.merged_headers(client, headers),
                content=content,
                extensions=extensions,
            )
        # What ``Request(content=...)`` makes, without its header checks (half its cost):
        # the Host header first, the body's length last.
        assert content is not None
        request = httpx.Request(
            method,
            target,
            headers=prepared,
            stream=httpx.ByteStream(content),
            extensions=extensions,
        )
        request.headers["Content-Length"] = str(len(content))
        request.read()
        return request

    def url(self, url: str, params: dict[str, Any]) -> httpx.URL:
        """``url`` with ``params`` merged into its query, parsed once per distinct pair.

        Only text values are keyed: ``True == 1`` would make ``flag=true`` and ``flag=1``
        one entry, and lists are not hashable."""
        if not all(value.__class__ is str for value in params.values()):
            return httpx.URL(url).copy_merge_params(params)
        key = (url, tuple(params.items()))
        cached = self._urls.get(key)
        if cached is None:
            cached = httpx.URL(url).copy_merge_params(params) if params else httpx.URL(url)
            _put(self._urls, key, cached)
        return cached

    def merged_headers(self, client: HTTPClient, headers: dict[str, str]) -> httpx.Headers:
        """The client's default headers updated with ``headers``, as httpx merges them.

        Keyed by the client's headers as they are now, so a change to them is seen."""
        try:
            key = (*headers.items(), None, *client.headers.raw)
            cached = self._headers.get(key)
        except TypeError:  # an unhashable header value: httpx will say what is wrong
            cached, key = None, None
        if cached is None:
            cached = httpx.Headers(client.headers)
            cached.update(headers)
            if key is not None:
                _put(self._headers, key, cached)
        return cached

    def prepared_headers(
        self, client: HTTPClient, headers: dict[str, str], target: httpx.URL
    ) -> Optional[httpx.Headers]:
        """`merged_headers` preceded by the ``Host`` header ``httpx.Request`` adds for
        ``target``; None when the merged headers already name the host or the body's
        framing (``httpx.Request`` then decides what to add)."""
        merged = self.merged_headers(client, headers)
        key = (id(merged), target.netloc)
        cached = self._prepared.get(key)
        if cached is None:
            if any(name in merged for name in _SET_BY_HTTPX):
                return None
            cached = (merged, httpx.Headers([(b"Host", target.netloc), *merged.raw]))
            _put(self._prepared, key, cached)
        return cached[1]


#: Headers ``httpx.Request(content=...)`` sets itself unless the caller did.
_SET_BY_HTTPX = ("host", "content-length", "transfer-encoding")


def _put(cache: dict[Any, Any], key: Any, value: Any) -> None:
    if len(cache) >= CACHE_SIZE:
        cache.clear()
    cache[key] = value
