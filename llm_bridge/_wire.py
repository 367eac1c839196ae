"""The line between the I/O layer and the adapters, drawn in plain values.

Adapters (`llm_bridge.adapters`) never see an ``httpx`` object. They read a provider's
answer as a `Reply` (status, headers, the URL it came from, the body's bytes) and report
what is wrong with a request or an answer as a `Fault`: the `APIError` a caller is to
see, described without the HTTP exchange. The I/O layer (the engine, the stream
pipelines, the CLI's model listing) makes the `Reply` from the response it read
(`reply_of`) and raises each fault as its `APIError`, the request and response attached
(`Fault.api_error`, `call_adapter`): as h11's protocol layer leaves sockets, and the
exceptions that carry them, to its caller.

This module imports ``httpx`` only where a fault becomes an `APIError`, so the adapters
that import it stay free of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar

from ._errors import (
    APIError,
    APIResponseValidationError,
    APIStatusError,
    BadRequestError,
    local_error,
)

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Fault",
    "MalformedBody",
    "ProviderFault",
    "Refused",
    "Reply",
    "call_adapter",
    "reply_of",
]

T = TypeVar("T")
E = TypeVar("E", bound=APIError)


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider's answer as adapters read it.

    ``headers`` are looked up by lower-case name (an ``httpx.Headers``, which ignores case,
    or a dict with lower-case names). ``url`` is where the request went (None: unknown);
    ``content`` the body as received, empty for a stream (read event by event) and
    decoded as ``encoding`` says when an error message quotes it (`text`)."""

    status_code: int
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""
    url: Optional[str] = None
    encoding: str = "utf-8"

    @property
    def text(self) -> str:
        """The body as text, undecodable bytes replaced (as httpx's ``Response.text``)."""
        return self.content.decode(self.encoding, errors="replace")


def reply_of(response: httpx.Response, *, read: bool = True) -> Reply:
    """The `Reply` for ``response``: with its body when ``read`` (a stream's is not)."""
    try:
        url: Optional[str] = str(response.request.url)
    except RuntimeError:  # a response built without its request
        url = None
    if not read:
        return Reply(response.status_code, response.headers, url=url)
    if response.default_encoding == "utf-8":  # httpx's default: the header decides
        encoding = _charset(response.headers.get("content-type"))
    else:  # a client's own default (a detector, say) may read the body
        encoding = response.encoding or "utf-8"
    return Reply(response.status_code, response.headers, response.content, url, encoding)


#: Content-Type values read by `_charset` (bounded: the values come from providers).
_CHARSETS: dict[Optional[str], str] = {}


def _charset(content_type: Optional[str]) -> str:
    """The encoding httpx reads a body in when it has this Content-Type: its charset if
    Python knows it, else utf-8. Kept per value: httpx parses the header with the
    standard library's e-mail parser, several microseconds a response, and a provider
    sends the same few values every time."""
    encoding = _CHARSETS.get(content_type)
    if encoding is None:
        import httpx

        headers = {} if content_type is None else {"content-type": content_type}
        encoding = httpx.Response(200, headers=headers).encoding or "utf-8"
        if len(_CHARSETS) >= 64:
            _CHARSETS.clear()
        _CHARSETS[content_type] = encoding
    return encoding


class Fault(Exception):
    """An error an adapter found, in plain values. It never reaches a caller: the I/O
    layer raises `api_error` in its place."""

    message: str

    def api_error(self, response: Optional[httpx.Response]) -> APIError:
        """The `APIError` this fault describes, for the exchange ``response`` ended (None:
        nothing was sent), carrying the fault's cause and traceback."""
        raise NotImplementedError

    def _carry(self, error: E) -> E:
        """``error`` with this fault's cause, context and traceback: raised in its place,
        it reads as if raised where the fault was."""
        error.__cause__ = self.__cause__
        error.__context__ = self.__context__
        error.__suppress_context__ = self.__suppress_context__
        return error.with_traceback(self.__traceback__)


class ProviderFault(Fault):
    """The provider reported a failure (a 4xx/5xx status, an error in a 200 body or in a
    stream): raised as ``cls``, an `APIStatusError`, with the given message and codes.
    ``retryable`` (None: the status decides) and ``should_reauth`` go on the error for
    the retry policy."""

    def __init__(
        self,
        cls: type[APIStatusError],
        message: str,
        *,
        body: object,
        code: Optional[str],
        provider: str,
        provider_code: Optional[str],
        retryable: Optional[bool],
        should_reauth: bool,
    ) -> None:
        super().__init__(message)
        self.cls = cls
        self.message = message
        self.body = body
        self.code = code
        self.provider = provider
        self.provider_code = provider_code
        self.retryable = retryable
        self.should_reauth = should_reauth

    def api_error(self, response: Optional[httpx.Response]) -> APIStatusError:
        assert response is not None, "a provider's fault comes with its response"
        error = self.cls(
            self.message,
            response=response,
            body=self.body,
            code=self.code,
            provider=self.provider,
            provider_code=self.provider_code,
        )
        error.retryable = self.retryable
        error.should_reauth = self.should_reauth
        return self._carry(error)


class MalformedBody(Fault):
    """The provider answered in a shape that cannot be translated: raised as an
    `APIResponseValidationError` carrying ``body``."""

    def __init__(self, message: str, *, body: object, provider: str) -> None:
        super().__init__(message)
        self.message = message
        self.body = body
        self.provider = provider

    def api_error(self, response: Optional[httpx.Response]) -> APIResponseValidationError:
        assert response is not None, "a malformed body comes with its response"
        return self._carry(
            APIResponseValidationError(
                response, self.body, message=self.message, provider=self.provider
            )
        )


class Refused(Fault):
    """A request the provider cannot take, refused before sending: raised as the
    `BadRequestError` the server would have answered (`local_error`), its request a POST
    to ``url``."""

    def __init__(
        self,
        message: str,
        *,
        url: str,
        provider: str,
        param: Optional[str] = None,
        code: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.url = url
        self.provider = provider
        self.param = param
        self.code = code

    def api_error(self, response: Optional[httpx.Response] = None) -> APIStatusError:
        import httpx

        return self._carry(
            local_error(
                BadRequestError,
                self.message,
                request=httpx.Request("POST", self.url),
                param=self.param,
                code=self.code,
                provider=self.provider,
            )
        )


def call_adapter(response: Optional[httpx.Response], method: Callable[..., T], *args: Any) -> T:
    """``method(*args)``, an adapter's, with a `Fault` it raises raised as its `APIError`
    for ``response`` (None: before sending). Raised outside the handler, so the error's
    ``__context__`` is the fault's own, not the fault: a fallback chain links its
    failures through it (`llm_bridge._engine._keep_chain`)."""
    try:
        return method(*args)
    except Fault as fault:
        error = fault.api_error(response)
    raise error
