"""The exception hierarchy: openai's own classes, with the provider's side added.

Code written against ``openai`` catches ``openai.RateLimitError`` and reads ``.status_code``,
``.code`` and ``.request_id``; moving it here must not change a single ``except`` clause, so
each class here subclasses openai's class of the same name (``llm_bridge.RateLimitError`` is
an ``openai.RateLimitError``). Each error also says which provider raised it and the
provider's own error code (``provider``, ``provider_code``), because "1113" or "Arrearage"
is what a support ticket needs.

The constructors are ours, not openai's: the request and response here are the upstream
exchange with the provider (``httpx`` objects), and ``code``/``param``/``type`` come from the
provider's code table rather than from an OpenAI-shaped body.

Errors raised *before* anything is sent (a parameter the provider cannot take under the
``error`` policy, a prompt over the context window) still carry an ``httpx.Request`` and a
synthetic ``httpx.Response`` so that every attribute an ``except`` block reads exists.
"""

# `body` is a property here where openai declares an attribute (it is computed from the
# fields a fallback chain or a size limit may set after construction); pyright would flag
# every class that inherits both.
# pyright: reportIncompatibleVariableOverride=false

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Optional, cast

import openai

if TYPE_CHECKING:  # (imported where used: httpx imports its command line, and with it
    import httpx  # click and rich when they are installed, which `import llm_bridge` must not)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "CodingPlanWarning",
    "ConfigError",
    "ConflictError",
    "FallbackFailure",
    "InternalServerError",
    "ModelNotFoundError",
    "ModelRetiredWarning",
    "NotFoundError",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "StructuredOutputError",
    "UnprocessableEntityError",
    "UnsupportedParameterWarning",
]


#: The root of every error raised on purpose: openai's own class.
OpenAIError = openai.OpenAIError


class ConfigError(OpenAIError, ValueError):
    """A config file or mapping is unreadable, malformed or inconsistent.

    The message names the file, the key path and what was expected.
    """


class ClientClosedError(OpenAIError, RuntimeError):
    """A request on a client after its ``close()`` (or the end of its ``with`` block);
    raised before anything is sent. (A ``RuntimeError`` too, as the HTTP library's own
    refusal was.)"""


class ModelNotFoundError(OpenAIError, ValueError):
    """A model name routes to no provider; raised before any request is sent."""

    def __init__(self, message: str, *, model: str, suggestions: list[str]) -> None:
        super().__init__(message)
        self.model = model
        self.suggestions = suggestions


class UnsupportedParameterWarning(UserWarning):
    """An OpenAI parameter the provider cannot honour was dropped or replaced (policy
    ``warn``); the message says which."""


class CodingPlanWarning(UserWarning):
    """Requests go to a Coding Plan host (Zhipu's GLM Coding Plan, DashScope's Coding
    Plan): the plans' terms allow interactive coding tools only, not scripts or back-ends."""


class ModelRetiredWarning(UserWarning):
    """The model was retired by its provider; the request is still sent (some regions lag
    behind), and the warning names the retirement date and the successor."""


class FallbackFailure(NamedTuple):
    """One target of a fallback chain, and how it failed."""

    provider: str
    model: str
    error: BaseException


class APIError(openai.APIError):
    """An error tied to an HTTP exchange with a provider.

    ``provider_body`` is the provider's answer as it came (its own shape, which differs per
    provider); ``body`` is what openai's own exception holds there (for a status error,
    the error object as OpenAI's API words it: see `APIStatusError.body`)."""

    message: str
    request: Any  # the upstream ``httpx.Request``
    provider_body: object | None
    code: Optional[str] = None
    param: Optional[str] = None
    type: Optional[str] = None
    provider: Optional[str] = None
    provider_code: Optional[str] = None
    #: When a fallback chain failed on every target: each target's failure, in the order
    #: tried (this error last). Empty otherwise.
    fallback_errors: tuple[FallbackFailure, ...] = ()
    #: The message as this target's failure alone worded it, before the fallback chain's
    #: summary was added to ``message`` (None: ``message`` is its own).
    own_message: Optional[str] = None
    #: What a server would have written as the error's message, for an error made here
    #: (`local_error`), whose ``message`` is worded as the client's (None: read from
    #: ``message``, see `server_message`).
    server_text: Optional[str] = None
    #: The provider's code table's verdict on retrying this error: None leaves it to
    #: openai's rules (connection errors, 408, 409, 429 and 5xx are retried).
    retryable: Optional[bool] = None
    #: The credential went stale (a Qianfan access token revoked before its expiry):
    #: renew it and try once more, at once.
    should_reauth: bool = False

    def __init__(
        self,
        message: str,
        request: httpx.Request,
        *,
        body: object | None,
        code: Optional[str] = None,
        param: Optional[str] = None,
        type: Optional[str] = None,
        provider: Optional[str] = None,
        provider_code: Optional[str] = None,
    ) -> None:
        Exception.__init__(self, message)  # (openai's __init__ reads another body shape)
        self.message = message
        # What the caller sees, prints, logs or pickles has its secrets masked; the request
        # as sent stays private for re-authentication (`_retry`), never pickled.
        self._sent = request
        self.request = redacted_request(request)
        self.provider_body = body
        # openai reads code/param/type from an OpenAI-shaped body; explicit values (from a
        # provider's code table) win, because provider bodies are not OpenAI-shaped.
        fields = _openai_error_fields(body)
        self.code = code if code is not None else fields.get("code")
        self.param = param if param is not None else fields.get("param")
        if type is None:  # (a provider's own word for it, DashScope's "Arrearage", is not)
            type = fields.get("type") if fields.get("type") in OPENAI_ERROR_TYPES else None
        self.type = type
        self.provider = provider
        self.provider_code = provider_code

    @property
    def body(self) -> object | None:
        """The body openai's exception would hold: the provider's, for an error that is
        not a status error (a malformed answer, say)."""
        return self.provider_body

    def __reduce__(self) -> Any:
        state = {k: v for k, v in self.__dict__.items() if k != "_sent"}
        return (_rebuilt, (type(self), self.args), state)


def _rebuilt(cls: type[APIError], args: tuple[Any, ...]) -> APIError:
    """An unpickled error: its attributes come back from the pickled state."""
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    return error


#: Query parameters and headers that carry credentials: Qianfan v1's ``access_token`` and
#: its OAuth ``client_id``/``client_secret``, bearer and API-key headers, bce-auth headers.
SECRET_QUERY = frozenset({"access_token", "client_id", "client_secret", "api_key", "apikey"})
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie"}
)
MASK = "***"


def redacted_request(request: Any) -> Any:
    """``request`` with the values of credential query parameters and headers masked (the
    same object when there are none); its body stream is kept as it is."""
    import httpx

    if not isinstance(request, httpx.Request):
        return request
    url = request.url
    secret_query = any(name.lower() in SECRET_QUERY for name in url.params)
    secret_header = any(name.lower() in SECRET_HEADERS for name in request.headers)
    if not secret_query and not secret_header:
        return request
    if secret_query:
        url = url.copy_with(
            params=[
                (name, MASK if name.lower() in SECRET_QUERY else value)
                for name, value in url.params.multi_items()
            ]
        )
    headers = [
        (name, MASK if name.lower() in SECRET_HEADERS else value)
        for name, value in request.headers.multi_items()
    ]
    clean = httpx.Request(request.method, url, headers=headers, stream=request.stream)
    clean.extensions = {k: v for k, v in request.extensions.items() if k == "timeout"}
    return clean


def _openai_error_fields(body: object) -> dict[str, Optional[str]]:
    if not isinstance(body, dict):
        return {}
    fields = cast("dict[str, Any]", body)
    error: Any = fields.get("error")
    inner = cast("dict[str, Any]", error) if isinstance(error, dict) else fields
    return {
        key: (str(inner[key]) if inner.get(key) is not None else None)
        for key in ("code", "param", "type")
        if key in inner
    }


class APIResponseValidationError(APIError, openai.APIResponseValidationError):
    """The provider answered, but not in a shape the adapter can translate."""

    response: Any  # the upstream ``httpx.Response``
    status_code: int

    def __init__(
        self,
        response: httpx.Response,
        body: object | None,
        *,
        message: str | None = None,
        provider: Optional[str] = None,
    ) -> None:
        super().__init__(
            message or "Data returned by API invalid for expected schema.",
            response.request,
            body=body,
            provider=provider,
        )
        if self.request is not response.request:
            response.request = self.request
        self.response = response
        self.status_code = response.status_code


class ResponseTooLargeError(APIResponseValidationError):
    """A provider's answer went past a size limit (``[limits]`` in the config): reading
    stopped there, so a hostile or broken upstream cannot exhaust memory. Never retried."""

    limit: int
    setting: str

    def __init__(
        self,
        response: httpx.Response,
        *,
        limit: int,
        setting: str,
        what: str,
        provider: Optional[str] = None,
    ) -> None:
        """``provider`` names who sent it, as every other provider error does (in
        ``provider`` and at the head of the message)."""
        label = f"[{provider}] " if provider else ""
        super().__init__(
            response,
            None,
            message=(
                f"{label}The provider's {what} is larger than {limit:,} bytes, the limit "
                f"[limits] {setting} sets; reading stopped there. Raise the limit if the "
                f"answer is genuine."
            ),
            provider=provider,
        )
        self.code = "response_too_large"
        self.limit = limit
        self.setting = setting


class StructuredOutputError(APIResponseValidationError):
    """The model's answer did not match the requested JSON schema (``json_schema`` emulated
    on a provider or model without it natively).

    ``raw_text`` is what the model said and ``problem`` what is wrong with it (``body``
    holds both). ``final`` is False on a first answer, which the engine asks for once
    more, quoting the problem; the caller sees only a final one."""

    raw_text: str
    problem: str
    final: bool


class APIStatusError(APIError, openai.APIStatusError):
    """The provider reported a failure (a 4xx/5xx status, or an error inside a 200 body).

    ``status_code`` is the class's, as on openai's exceptions (a `RateLimitError` is 429
    even where the provider said 400, as DashScope does for arrears; an error inside a 200
    body has its class's status too): the same error then reads the same through a plain
    openai client, which picks its class from the status the transport writes. The
    provider's own answer stays in ``provider_response``. ``response`` is the same until
    the error reaches an openai client: then it is the answer that client read from
    llm-bridge's transport (OpenAI's error JSON, with the class's status), as on openai's
    own exceptions; libraries that rebuild an error from it (langchain-openai) then see
    the same status through both front doors."""

    response: Any  # the upstream ``httpx.Response``, then the transport's (see above)
    provider_response: Any  # the provider's ``httpx.Response``
    status_code: int
    request_id: Optional[str]

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response,
        body: object | None,
        request_id: Optional[str] = None,
        **fields: Any,
    ) -> None:
        super().__init__(message, response.request, body=body, **fields)
        if self.request is not response.request:  # (openai reads err.response.request too)
            response.request = self.request
        self.response = self.provider_response = response
        self.status_code = status_of(type(self), response.status_code)
        if self.code == "insufficient_quota":  # (OpenAI's type for it too, on every wire)
            self.type = "insufficient_quota"
        elif self.type is None:
            self.type = error_type(self.status_code)
        self.request_id = request_id or _request_id_from(response, body)

    @property
    def body(self) -> object | None:
        """The error object as OpenAI's API words it, which openai's exceptions hold here
        (``{"message", "type", "param", "code"}``, plus ``provider`` and
        ``provider_code``, and ``fallbacks`` when a fallback chain failed everywhere)."""
        return error_object(self, type=self.type or error_type(self.status_code), code=self.code)


def status_of(cls: type[APIStatusError], given: int) -> int:
    """The status an error of ``cls`` answers with: the class's own (`RateLimitError`:
    429), else ``given`` when it is one of failure (500 for an error in a 200 body)."""
    own = getattr(cls, "status_code", None)
    if isinstance(own, int) and own >= 400:
        return own
    if issubclass(cls, InternalServerError) and given < 500:
        return 500
    return given if given >= 400 else 500


#: The error ``type`` values OpenAI's API gives (and an OpenAI-compatible server copies);
#: any other a body holds is replaced by the status's (`error_type`).
OPENAI_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "permission_error",
        "not_found_error",
        "rate_limit_error",
        "insufficient_quota",
        "requests",
        "tokens",
        "server_error",
        "api_error",
    }
)


def error_type(status: int) -> str:
    """OpenAI's error ``type`` for a status."""
    if status >= 500:
        return "server_error"
    return {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(
        status, "invalid_request_error"
    )


def error_object(error: BaseException, *, type: str, code: Optional[str]) -> dict[str, Any]:
    """``error`` as OpenAI's API words it in ``{"error": {...}}``, with llm-bridge's
    additions: the provider and its own code, and every target's failure when a fallback
    chain failed everywhere."""
    payload: dict[str, Any] = {
        "message": server_message(error),
        "type": type,
        "param": getattr(error, "param", None),
        "code": code,
    }
    for extra in ("provider", "provider_code"):
        value = getattr(error, extra, None)
        if value is not None:
            payload[extra] = value
    chain = getattr(error, "fallback_errors", ())
    if chain:
        payload["fallbacks"] = [
            {
                "provider": failure.provider,
                "model": failure.model,
                "error": failure.error.__class__.__name__,
                "message": server_message(failure.error, own=True),
            }
            for failure in chain
        ]
    return payload


#: The headers providers put their request id in (the one their support asks for).
REQUEST_ID_HEADERS = (
    "x-request-id",
    "x-acs-request-id",
    "x-bce-request-id",
    "x-baidu-request-id",  # (Qianfan's, protocols.md §2A.8)
    "x-log-id",
)


def request_id_header(headers: Mapping[str, str]) -> Optional[str]:
    """The provider's request id among a response's ``headers``, if it sent one."""
    for header in REQUEST_ID_HEADERS:
        value = headers.get(header)
        if value:
            return value
    return None


def _request_id_from(response: httpx.Response, body: object) -> Optional[str]:
    found = request_id_header(response.headers)
    if found:
        return found
    if isinstance(body, dict):
        fields = cast("dict[str, Any]", body)
        for key in ("request_id", "requestId", "id"):
            value = fields.get(key)
            if isinstance(value, str) and value:
                return value
    return None


class BadRequestError(APIStatusError, openai.BadRequestError):
    status_code: Literal[400] = 400  # type: ignore[assignment]


class AuthenticationError(APIStatusError, openai.AuthenticationError):
    status_code: Literal[401] = 401  # type: ignore[assignment]


class PermissionDeniedError(APIStatusError, openai.PermissionDeniedError):
    status_code: Literal[403] = 403  # type: ignore[assignment]


class NotFoundError(APIStatusError, openai.NotFoundError):
    status_code: Literal[404] = 404  # type: ignore[assignment]


class ConflictError(APIStatusError, openai.ConflictError):
    status_code: Literal[409] = 409  # type: ignore[assignment]


class UnprocessableEntityError(APIStatusError, openai.UnprocessableEntityError):
    status_code: Literal[422] = 422  # type: ignore[assignment]


class RateLimitError(APIStatusError, openai.RateLimitError):
    status_code: Literal[429] = 429  # type: ignore[assignment]


class InternalServerError(APIStatusError, openai.InternalServerError):
    pass


class APIConnectionError(APIError, openai.APIConnectionError):
    """The provider could not be reached, or the connection broke (also mid-stream)."""

    def __init__(
        self,
        *,
        message: str = "Connection error.",
        request: httpx.Request,
        provider: Optional[str] = None,
    ) -> None:
        super().__init__(message, request, body=None, provider=provider)


class APITimeoutError(APIConnectionError, openai.APITimeoutError):
    """The request, or a stream between two events, took longer than the timeout."""

    def __init__(
        self,
        request: httpx.Request,
        *,
        provider: Optional[str] = None,
        message: str = "Request timed out.",
    ) -> None:
        super().__init__(message=message, request=request, provider=provider)


#: Status code -> exception class, exactly as openai keys them.
STATUS_EXCEPTIONS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}

#: Names a provider table may use in its error-code section.
EXCEPTIONS_BY_NAME: dict[str, type[APIStatusError]] = {
    cls.__name__: cls for cls in (*STATUS_EXCEPTIONS.values(), InternalServerError, APIStatusError)
}


def exception_for_status(status: int) -> type[APIStatusError]:
    """The openai exception class for an HTTP status (>=500 is InternalServerError)."""
    if status >= 500:
        return InternalServerError
    return STATUS_EXCEPTIONS.get(status, APIStatusError)


def local_error(
    cls: type[APIStatusError],
    message: str,
    *,
    request: httpx.Request,
    code: Optional[str] = None,
    param: Optional[str] = None,
    provider: Optional[str] = None,
) -> APIStatusError:
    """An error detected here, before sending, shaped as if the server had said it.

    The synthetic response carries the class's status code, so ``err.status_code`` reads
    as it would have from the server, and its message is worded as a provider's failure
    is (``Error code: 400 - <message> (<code>)``, `status_message`): libraries that
    classify openai errors by their text (langchain's context-overflow check looks for
    ``context_length_exceeded``) read both alike. The body keeps the bare message."""
    status = getattr(cls, "status_code", None)
    if not isinstance(status, int):
        status = 500 if issubclass(cls, InternalServerError) else 400
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    import httpx

    response = httpx.Response(status, json=body, request=request)
    worded = status_message(status, message if code is None else f"{message} ({code})")
    error = cls(
        worded,
        response=response,
        body=body,
        code=code,
        param=param,
        type="invalid_request_error",
        provider=provider,
    )
    error.server_text = message
    return error


def status_message(status: int, text: str) -> str:
    """A provider's failure worded as openai's client words the errors it raises
    (``Error code: 400 - text``): the message of the exception a Python caller catches."""
    return f"Error code: {status} - {text}"


def server_message(error: BaseException, *, own: bool = False) -> str:
    """An error's message as a server writes it in ``{"error": {"message": ...}}``: without
    the ``Error code: 400 -`` of `status_message`, which belongs to the client (openai's
    adds its own to what it reads). ``own``: as the error worded it before a fallback
    chain's summary was added (see `APIError.own_message`), for its entry in the chain."""
    own_words = getattr(error, "own_message", None) if own else None
    server_text = getattr(error, "server_text", None)
    if own_words is None and server_text is not None:
        return str(server_text)
    message = own_words or getattr(error, "message", None) or str(error)
    status = getattr(error, "status_code", None)
    if isinstance(status, int):
        return message.removeprefix(status_message(status, ""))
    return message
