"""OpenAI's wire in and out of the engine: the seam every front door shares. No I/O.

A front door receives what an OpenAI client sends (method, URL, headers, JSON body) and
must answer as OpenAI's server would. This module reads such a request into an engine
call (which API, the parameters, the per-call options) and writes the engine's result, or
its error, back as OpenAI's status, headers and body. The transport under the openai
client uses it; so will the gateway.

What arrives is the body openai built: the API's parameters with the caller's
``extra_body`` already merged in. Parameters the API does not have are therefore the
caller's provider extras, and go to the engine as ``extra_body`` again.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple, Optional

import httpx
from pydantic_core import to_json

from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ConfigError,
    ModelNotFoundError,
    NotFoundError,
    OpenAIError,
    StructuredOutputError,
    error_object,
    error_type,
    local_error,
    request_id_header,
)
from ._stream_reading import DEADLINE_HEADER, IDLE_HEADER, seconds
from .adapters._params import CHAT_PARAMS, EMBEDDING_PARAMS, ParamError

__all__ = [
    "ERROR_EXTENSION",
    "Endpoint",
    "ErrorReply",
    "api_start",
    "endpoint_of",
    "error_reply",
    "forwarded_headers",
    "header_value",
    "split_body",
    "sse_lines",
    "stream_limits_from",
    "unserved",
]

#: The parameter a check's message starts with: ``messages[0].role must be ...``.
_PARAM_PATH = re.compile(r"[a-z_]+(?:\[\d+\])?(?:\.[a-z_]+(?:\[\d+\])?)*(?= )")

#: Where a front-door response keeps the exception object it reports, so that
#: ``llm_bridge.OpenAI`` raises that very object (with ``provider``) rather than openai's.
ERROR_EXTENSION = "llm_bridge.error"

#: The first path segment of each OpenAI API, with the name an error message uses.
_APIS = {
    "chat": "chat completions",
    "completions": "the legacy completions API",
    "embeddings": "embeddings",
    "models": "models",
    "responses": "the Responses API",
    "images": "image generation",
    "audio": "audio (speech, transcription, translation)",
    "files": "files",
    "batches": "batches",
    "moderations": "moderations",
    "fine_tuning": "fine-tuning",
    "uploads": "uploads",
    "vector_stores": "vector stores",
    "assistants": "assistants",
    "threads": "threads",
    "realtime": "the Realtime API",
    "conversations": "conversations",
    "evals": "evals",
    "containers": "containers",
    "videos": "videos",
    "skills": "skills",
    "organization": "the administration API",
    "admin": "the administration API",
}

#: A request's timeout: its connect, read, write and pool seconds (None: no limit).
TimeoutValues = tuple[Optional[float], Optional[float], Optional[float], Optional[float]]

#: Request headers that belong to the openai client's conversation with us, not to the
#: provider: its own key, its telemetry, the body's framing. The rest (the caller's
#: ``default_headers`` and ``extra_headers``) go upstream.
_LOCAL_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "content-type",
        "accept",
        "accept-encoding",
        "connection",
        "user-agent",
        "authorization",
        "api-key",
        "openai-organization",
        "openai-project",
        "idempotency-key",
        "openai-beta",
        "x-stainless-raw-response",
    }
)


class Endpoint(NamedTuple):
    """Which API a request is for: ``chat``, ``embeddings``, ``models``, ``model`` (one
    model, named by ``ident``), ``responses`` (create), ``response``,
    ``response_delete`` and ``response_input_items`` (one stored response, named by
    ``ident``) or ``unserved`` (``api`` says which)."""

    kind: str
    api: str
    ident: Optional[str] = None


def api_start(segments: list[str]) -> Optional[int]:
    """The index of the first path segment that names an OpenAI API, if one does: what
    comes before it is the API's root."""
    return next((i for i, segment in enumerate(segments) if segment in _APIS), None)


def endpoint_of(method: str, path: str, root_path: str = "") -> Endpoint:
    """The API a request path addresses, below ``root_path`` when known, else by the first
    segment that names an OpenAI API."""
    path = path.rstrip("/")
    if root_path and path.startswith(root_path.rstrip("/") + "/"):
        segments = path[len(root_path.rstrip("/")) + 1 :].split("/")
    else:
        segments = path.strip("/").split("/")
        start = api_start(segments)
        segments = segments[start:] if start is not None else segments
    head = segments[0] if segments else ""
    api = _APIS.get(head, "/".join(segments) or "/")
    if method == "POST" and segments == ["chat", "completions"]:
        return Endpoint("chat", api)
    if method == "POST" and segments == ["embeddings"]:
        return Endpoint("embeddings", api)
    if method == "GET" and segments == ["models"]:
        return Endpoint("models", api)
    if method == "GET" and head == "models" and len(segments) > 1:
        return Endpoint("model", api, "/".join(segments[1:]))
    if head == "responses":
        return _responses_endpoint(method, segments, api)
    if head == "chat":
        api = "stored chat completions"
    return Endpoint("unserved", api)


def _responses_endpoint(method: str, segments: list[str], api: str) -> Endpoint:
    """``POST /responses``; ``GET``/``DELETE /responses/{id}``; ``GET
    /responses/{id}/input_items``. Anything else (``cancel``, ``compact`` ...) is unserved."""
    if method == "POST" and len(segments) == 1:
        return Endpoint("responses", api)
    if len(segments) == 2 and method in ("GET", "DELETE"):
        return Endpoint("response" if method == "GET" else "response_delete", api, segments[1])
    if method == "GET" and len(segments) == 3 and segments[2] == "input_items":
        return Endpoint("response_input_items", api, segments[1])
    if segments[1:] == ["input_tokens"]:
        counting = "Responses input token counting (llm_bridge.tokens counts locally)"
        return Endpoint("unserved", counting)
    return Endpoint("unserved", f"the Responses API's {'/'.join(segments[2:]) or 'request'}")


def split_body(kind: str, body: object) -> tuple[dict[str, Any], dict[str, Any]]:
    """The API's parameters, and the rest (the caller's provider extras)."""
    if not isinstance(body, dict):
        raise invalid_request("the request body must be a JSON object", param=None)
    known = CHAT_PARAMS if kind == "chat" else EMBEDDING_PARAMS
    params = {k: v for k, v in body.items() if k in known and v is not None}
    extras = {k: v for k, v in body.items() if k not in known}
    return params, extras


def read_json(content: bytes) -> object:
    try:
        return json.loads(content) if content else {}
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting past the parser
        raise invalid_request(f"the request body is not valid JSON ({exc})", param=None) from None


def invalid_request(
    message: str, *, param: Optional[str], code: Optional[str] = None
) -> APIStatusError:
    """A request OpenAI's server would answer with 400, as the error it would raise."""
    return local_error(
        BadRequestError, message, request=httpx.Request("POST", "/"), param=param, code=code
    )


def unserved(endpoint: Endpoint, provider: Optional[str]) -> APIStatusError:
    """The error for an API the routed provider does not serve: never a call elsewhere."""
    who = f"provider {provider!r}" if provider else "llm-bridge"
    return local_error(
        NotFoundError,
        f"{who} does not serve the {endpoint.api} API here; llm-bridge serves chat "
        f"completions, the Responses API (create, stream, parse, retrieve, delete, input "
        f"items), embeddings and models",
        request=httpx.Request("POST", "/"),
        code="unsupported_api",
        provider=provider,
    )


def forwarded_headers(raw: Iterable[tuple[bytes, bytes]]) -> dict[str, str]:
    """The caller's own headers among those a request carries (see `_LOCAL_HEADERS`),
    from its raw headers: names in lower case, values decoded as httpx decodes them.

    Whether a name is forwarded is kept per name (a request carries a dozen headers,
    nearly all of them openai's own, and this runs for every request)."""
    forwarded: dict[str, str] = {}
    for name, value in raw:
        kept = _FORWARDED.get(name)
        if kept is None:
            kept = _forwarded_name(name)
            if len(_FORWARDED) >= 256:  # the names come from callers: bounded
                _FORWARDED.clear()
            _FORWARDED[name] = kept
        if kept:
            forwarded[kept] = _header_text(value)
    return forwarded


#: Raw header names read by `forwarded_headers`: the name to forward, or "" (dropped).
_FORWARDED: dict[bytes, str] = {}


def _forwarded_name(raw: bytes) -> str:
    name = _header_text(raw).lower()
    if name in _LOCAL_HEADERS or name.startswith(("x-stainless-", "x-llm-bridge-")):
        return ""
    return name


def _header_text(raw: bytes) -> str:
    """A header's bytes as text, as ``httpx.Headers`` decodes them (ascii, utf-8, else
    latin-1)."""
    for encoding in ("ascii", "utf-8"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            pass
    return raw.decode("latin-1")


def query_of(params: Any) -> dict[str, Any]:
    """A request's query as a mapping (a repeated key as a list, as it came)."""
    query: dict[str, Any] = {}
    for key in params:
        if key == "beta":  # openai's beta resources mark themselves so; not the provider's
            continue
        values = params.get_list(key)
        query[key] = values if len(values) > 1 else values[0]
    return query


def timeout_of(extensions: Mapping[str, Any]) -> Optional[TimeoutValues]:
    """The timeout the openai client set on a request (httpx's and httpx2's shape), as
    its connect, read, write and pool seconds."""
    timeout = extensions.get("timeout")
    if not isinstance(timeout, dict):
        return None
    get = timeout.get
    return get("connect"), get("read"), get("write"), get("pool")


def stream_limits_from(headers: Mapping[str, str]) -> dict[str, float]:
    """A stream's time limits given in a request's headers, as engine options (see
    `_stream_reading`); a value that is not positive seconds is a ValueError naming the
    header."""
    limits: dict[str, float] = {}
    for header, option in _STREAM_LIMIT_HEADERS:
        value = seconds(headers.get(header), header)
        if value is not None:
            limits[option] = value
    return limits


_STREAM_LIMIT_HEADERS = (
    (IDLE_HEADER, "stream_idle_timeout"),
    (DEADLINE_HEADER, "stream_deadline"),
)


def bearer_of(headers: Mapping[str, str]) -> Optional[str]:
    value = headers.get("authorization") or ""
    scheme, _, token = value.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class ErrorReply(NamedTuple):
    """The status, headers and body a front door answers an error with."""

    status: int
    headers: dict[str, str]
    body: bytes


def as_openai_error(error: BaseException) -> Optional[OpenAIError]:
    """The OpenAI error a front door reports for an exception, if it is one to report.

    Parameter checks raise ``TypeError``/``ValueError`` naming the parameter (first in
    the message, or as a `ParamError`'s ``param``); OpenAI's server answers such requests
    with 400, so that is what they become here."""
    if isinstance(error, OpenAIError):
        return error
    if isinstance(error, ParamError):
        return invalid_request(str(error), param=error.param, code=error.code)
    if isinstance(error, (TypeError, ValueError)):
        message = str(error)
        named = _PARAM_PATH.match(message)
        return invalid_request(message, param=named.group(0) if named else None)
    return None


def error_reply(error: OpenAIError) -> ErrorReply:
    """OpenAI's answer to a failed request: status, headers, ``{"error": {...}}``.

    ``x-should-retry: false`` tells the openai client not to retry: the engine has made
    every attempt the caller's ``max_retries`` allows already."""
    status, kind = 500, "server_error"
    code = getattr(error, "code", None)
    if isinstance(error, APIStatusError):
        status = error.status_code  # (the class's: see `APIStatusError`)
        kind = error.type or error_type(status)
    elif isinstance(error, APITimeoutError):
        status, kind, code = 504, "timeout", code or "timeout"
    elif isinstance(error, APIConnectionError):
        status, kind, code = 502, "connection_error", code or "connection_error"
    elif code == "response_too_large":  # the provider's answer broke a [limits] size
        status, kind = 502, "server_error"
    elif isinstance(error, StructuredOutputError):  # the model's answer, not the server
        status, kind, code = 502, "server_error", code or "structured_output_invalid"
    elif isinstance(error, APIResponseValidationError):  # an answer that cannot be read
        status, kind, code = 502, "server_error", code or "invalid_response"
    elif isinstance(error, ModelNotFoundError):
        status, kind, code = 404, "invalid_request_error", "model_not_found"
    elif isinstance(error, ConfigError):
        status, kind = 500, "configuration_error"
    elif not isinstance(error, APIError):
        status, kind = 400, "invalid_request_error"
    payload = error_object(error, type=kind, code=code)
    headers = {"content-type": "application/json", "x-should-retry": "false"}
    # The provider's wait, for a library's own retry layer (llama-index honours it).
    upstream = getattr(error, "response", None)
    for name in ("retry-after", "retry-after-ms"):
        value = header_value(upstream.headers.get(name) if upstream is not None else None)
        if value:
            headers[name] = value
    request_id = header_value(getattr(error, "request_id", None))
    if request_id:
        headers["x-request-id"] = request_id
    try:
        body = json.dumps({"error": payload}, ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate from the provider's message: escaped
        body = json.dumps({"error": payload}).encode()
    return ErrorReply(status, headers, body)


#: How many retries the engine took for a response (openai counts only its own).
RETRIES_HEADER = "x-llm-bridge-retries"


def retry_header(retries: int) -> dict[str, str]:
    return {RETRIES_HEADER: str(retries)} if retries else {}


def retries_of(response: Any) -> int:
    """The engine's retries a front-door response reports (0 for any other response)."""
    value = response.headers.get(RETRIES_HEADER) if response is not None else None
    return int(value) if value and value.isdigit() else 0


def header_value(value: object) -> Optional[str]:
    """``value`` (from a provider's headers or body) if it can be passed on as a header
    value: printable ASCII, at most 256 characters; else None (a header an HTTP library
    would refuse, or one smuggling a line break, is dropped rather than failing the
    answer)."""
    if isinstance(value, str) and 0 < len(value) <= 256 and value.isascii() and value.isprintable():
        return value
    return None


def success_headers(
    parsed: Any, provider: Optional[str], retries: int = 0, upstream: Mapping[str, str] = {}
) -> dict[str, str]:
    """A JSON answer's headers: ``x-request-id`` is the provider's request id, from its
    ``upstream`` headers (`request_id_header`), else its body's ``request_id``, else the
    answer's ``id``; ``x-llm-bridge-provider`` says who answered; the engine's retries."""
    headers = {"content-type": "application/json", **retry_header(retries)}
    extra = getattr(parsed, "__pydantic_extra__", None) or {}
    request_id = header_value(request_id_header(upstream)) or header_value(
        extra.get("request_id") or getattr(parsed, "id", None)
    )
    if request_id:
        headers["x-request-id"] = request_id
    if provider:
        headers["x-llm-bridge-provider"] = provider
    return headers


def stream_headers(
    upstream: Mapping[str, str], request_id: Optional[str], provider: Optional[str], retries: int
) -> dict[str, str]:
    """An event stream's answer headers: what `success_headers` gives a JSON answer, so
    ``with_raw_response``'s ``request_id`` and ``x-llm-bridge-provider`` read the same
    whether the call streamed or not. ``x-request-id`` is the provider's header, else the
    id its chunks carry (``request_id``); ``provider`` is who answered (a fallback's, too)."""
    headers = {**SSE_HEADERS, **retry_header(retries)}
    request_id = header_value(request_id_header(upstream)) or header_value(request_id)
    if request_id:
        headers["x-request-id"] = request_id
    if provider:
        headers["x-llm-bridge-provider"] = provider
    return headers


def json_body(parsed: Any) -> bytes:
    """A response model (or a plain value) as OpenAI's JSON.

    Text holding a lone surrogate (a provider's ``"\\ud800"`` escape, which JSON allows
    and UTF-8 cannot carry) is written with ``\\u`` escapes, as it came: pydantic-core
    refuses to write it, so such a value takes the standard library's way."""
    try:
        serializer = getattr(parsed, "__pydantic_serializer__", None)
        if serializer is not None:  # (``model_dump_json`` is this, decoded to text)
            return serializer.to_json(parsed)  # type: ignore[no-any-return]
        return to_json(parsed)
    except ValueError:  # PydanticSerializationError: a lone surrogate
        data = parsed.model_dump(mode="json") if hasattr(parsed, "model_dump") else parsed
        return json.dumps(data, separators=(",", ":")).encode()


def sse_lines(chunks: Iterable[Any]) -> Iterator[bytes]:
    """Chunk models as OpenAI's server-sent events, a piece per chunk, ending with
    ``[DONE]``."""
    for chunk in chunks:
        yield sse_events(chunk)
    yield DONE_EVENT


DONE_EVENT = b"data: [DONE]\n\n"


def sse_events(chunk: Any) -> bytes:
    """One chunk as the events OpenAI's server would send for it, in one piece of body.

    Written as OpenAI writes a chunk: a null is left out (a delta names only what it
    carries: ``{"content": "..."}``, not six keys of which five are null), except a
    choice's ``logprobs`` and ``finish_reason``, which OpenAI always sends. Clients that
    check chunks against OpenAI's schema (GitHub Copilot) refuse keys OpenAI never sends,
    such as a delta's ``function_call``, and every client parses less.

    This runs for every chunk of every stream: the common chunk (one choice, no tool
    calls) is tested for first and written by `chunk_json`, straight from its serializer.

    Chunks with tool calls are written as OpenAI writes them: a continuation delta carries
    no ``id``/``type``/``name`` keys at all (openai's stream helper copies a ``null`` type
    over the call's "function"), and a finish reason arrives in a chunk of its own after
    the last tool-call delta (providers such as Zhipu send both at once, and openai's
    helper then never reports the last call's arguments as done)."""
    choices = chunk.choices
    if (
        (len(choices) == 1 and choices[0].delta.tool_calls is None)
        or not any(choice.delta.tool_calls for choice in choices)
    ) and not _null_extras(chunk):
        try:
            return b"data: " + chunk_json(chunk) + b"\n\n"
        except ValueError:  # PydanticSerializationError: a lone surrogate (see `json_body`)
            pass
    data = _chunk_dict(chunk)
    ending = []
    for choice in data["choices"]:
        if choice["finish_reason"] and choice["delta"].get("tool_calls"):
            ending.append(
                {
                    "index": choice["index"],
                    "delta": {},
                    "logprobs": None,
                    "finish_reason": choice["finish_reason"],
                }
            )
            choice["finish_reason"] = None
    if not ending:
        return _event(data)
    usage = data.pop("usage", None)
    last = {**data, "choices": ending}
    if usage is not None:
        last["usage"] = usage
    return _event(data) + _event(last)


#: What `chunk_json` writes apart, and each choice's ending when it has no log probabilities
#: (by whether it has a finish reason): the keys OpenAI always sends, null or not.
_NO_CHOICES = frozenset({"choices"})
_ENDINGS = {True: b',"logprobs":null}', False: b',"logprobs":null,"finish_reason":null}'}


def chunk_json(chunk: Any) -> bytes:
    """A chunk model as OpenAI's JSON, without the nulls OpenAI leaves out (`sse_events`).

    Raises ``ValueError`` for text holding a lone surrogate, as `json_body`'s serializer
    does (`_chunk_dict` then takes the standard library's way)."""
    top = chunk.__pydantic_serializer__.to_json(chunk, exclude=_NO_CHOICES, exclude_none=True)
    written = []
    for choice in chunk.choices:
        data = choice.__pydantic_serializer__.to_json(choice, exclude_none=True)
        if choice.logprobs is None:
            data = data[:-1] + _ENDINGS[choice.finish_reason is not None]
        elif choice.finish_reason is None:
            data = data[:-1] + b',"finish_reason":null}'
        written.append(data)
    return b'{"choices":[' + b",".join(written) + b"]," + top[1:]


def _chunk_dict(chunk: Any) -> dict[str, Any]:
    """`chunk_json` as JSON values (for chunks whose events are written from a dict), with
    a provider's own fields kept where they came as null (`_null_extras`)."""
    data = chunk.model_dump(mode="json", exclude_none=True)
    _put_null_extras(chunk, data)
    for choice, written in zip(chunk.choices, data["choices"]):
        written.setdefault("logprobs", None)
        written.setdefault("finish_reason", None)
        _put_null_extras(choice, written)
        _put_null_extras(choice.delta, written["delta"])
    return data


def _null_extras(chunk: Any) -> bool:
    """Whether a field beyond OpenAI's came as null on the chunk, a choice or a delta
    (DeepSeek-style ``"reasoning_content": null`` beside the answer's text): written all
    the same, since code reads such a field as an attribute (``delta.reasoning_content``),
    which openai's types have only if the JSON holds it."""
    if _has_null(chunk.__pydantic_extra__):
        return True
    return any(
        _has_null(choice.__pydantic_extra__) or _has_null(choice.delta.__pydantic_extra__)
        for choice in chunk.choices
    )


def _has_null(extra: Optional[dict[str, Any]]) -> bool:
    return extra is not None and None in extra.values()


def _put_null_extras(model: Any, data: dict[str, Any]) -> None:
    for name, value in (model.__pydantic_extra__ or {}).items():
        if value is None:
            data[name] = None


def _event(data: Any) -> bytes:
    return b"data: " + json_body(data) + b"\n\n"


SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
