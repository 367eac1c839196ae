"""The HTTP client an openai client sends through to llm-bridge's transport.

openai hands every request to its HTTP client's ``send``, which passes it through auth,
event hooks, the redirect loop and the cookie jar on its way to the transport and back.
For llm-bridge's transport none of that has anything to do: its answers never redirect
and set no cookies. So a front client sends a non-stream request straight to the
transport when it has no auth, hooks or mounts of its own (as `front_client` makes it,
unless the caller adds some later): 25-30 us less a request, a fiftieth of a whole call
on the loopback. Everything else (a stream, a client given hooks or auth, a closed one)
goes through the library's own ``send``.

The direct way leaves on the response what ``send`` would: its ``request``, ``elapsed``,
``default_encoding``, the library's ``HTTP Request:`` log line; and marks the client
opened, as ``send`` does (a client cannot then be entered as a context manager).
``elapsed`` is set here for an answer that arrives read, which legacy httpx's ``send``
never does (``with_raw_response``'s ``.elapsed`` raised for it), whichever way it went.
"""

from __future__ import annotations

import datetime
import functools
import logging
import time
from typing import Any

__all__ = ["front_client"]


class _Direct:
    """Mixed into an HTTP library's client class (see `_client_class`): what the sync and
    async ``send`` share."""

    # (of the HTTP library, httpx or httpx2, the class was made for)
    _log: logging.Logger  # its logger
    _opened_state: Any  # its ``ClientState.OPENED``
    _client_default: Any  # its ``USE_CLIENT_DEFAULT``
    _transport: Any  # (the library client's own)
    _default_encoding: Any

    def _direct(self, stream: bool, auth: Any) -> bool:
        """Whether ``send`` may hand this request straight to the transport."""
        client: Any = self
        hooks = client._event_hooks
        return not (
            stream
            or client.is_closed
            or auth is not self._client_default
            or client._auth is not None
            or client._mounts
            or hooks["request"]
            or hooks["response"]
        )

    def _opened(self, request: Any) -> None:
        """What ``send`` does to the client and request before sending."""
        client: Any = self
        client._state = self._opened_state
        client._set_timeout(request)

    @staticmethod
    def _timed(response: Any, started: float, stream: bool) -> Any:
        """A response from the library's own ``send``, with the ``elapsed`` legacy httpx
        leaves unset on an answer the transport made read (a stream's comes at close)."""
        if not stream and not hasattr(response, "_elapsed"):
            elapsed = getattr(response.stream, "elapsed", None)  # (httpx2 keeps it there)
            if elapsed is None:
                response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        return response

    def _answered(self, request: Any, response: Any, started: float) -> Any:
        """What ``send`` leaves on a response it has read."""
        response.request = request
        response.elapsed = datetime.timedelta(seconds=time.perf_counter() - started)
        response.default_encoding = self._default_encoding
        log = self._log
        if log.isEnabledFor(logging.INFO):
            log.info(
                'HTTP Request: %s %s "%s %d %s"',
                request.method,
                request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response


class _DirectSync(_Direct):
    def send(self, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        started = time.perf_counter()
        auth = kwargs.get("auth", self._client_default)
        if not self._direct(stream, auth):
            response = super().send(request, stream=stream, **kwargs)  # type: ignore[misc]
            return self._timed(response, started, stream)
        self._opened(request)
        response = self._transport.handle_request(request)
        if not response.is_closed:
            try:
                response.read()
            except BaseException:
                response.close()
                raise
        return self._answered(request, response, started)


class _DirectAsync(_Direct):
    async def send(self, request: Any, *, stream: bool = False, **kwargs: Any) -> Any:
        started = time.perf_counter()
        auth = kwargs.get("auth", self._client_default)
        if not self._direct(stream, auth):
            response = await super().send(request, stream=stream, **kwargs)  # type: ignore[misc]
            return self._timed(response, started, stream)
        self._opened(request)
        response = await self._transport.handle_async_request(request)
        if not response.is_closed:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return self._answered(request, response, started)


@functools.cache
def _client_class(library: Any, sync: bool) -> type:
    """``library``'s client class (``Client`` or ``AsyncClient``) with the direct ``send``."""
    base = library.Client if sync else library.AsyncClient
    mixin = _DirectSync if sync else _DirectAsync
    attributes = {
        "_log": logging.getLogger(library.__name__),
        "_opened_state": library._client.ClientState.OPENED,
        "_client_default": library.USE_CLIENT_DEFAULT,
    }
    return type(base.__name__, (mixin, base), attributes)


def front_client(library: Any, transport: Any, *, sync: bool) -> Any:
    """A client of ``library`` (httpx or httpx2) sending to ``transport``, llm-bridge's."""
    return _client_class(library, sync)(transport=transport)
