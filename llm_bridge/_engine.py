"""The one layer that does I/O: routing, adapters, retries and fallbacks around httpx.

`Engine` holds everything that is not I/O and is shared by both flavours: routing a
model name, building an adapter per provider (once per client, given the real clock and
id source), turning an adapter's `HTTPRequest` into an ``httpx.Request``, and turning the
response into the result: the adapter reads it as plain values (`llm_bridge._wire.Reply`)
and what it finds wrong comes back as a fault, raised here as its `APIError` with the
exchange attached (`call_adapter`).
`SyncEngine` and `AsyncEngine` add only the loops that send, retry and fall back; they
are kept line for line alike so that a fix to one is visibly owed to the other.

Nothing here knows about the facade's resources, so the httpx transport (for the real
``openai`` client) and the gateway can drive the same engine.
"""

from __future__ import annotations

import asyncio
import base64
import importlib
import itertools
import json
import logging
import math
import threading
import time
import uuid
import zlib
from array import array
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Optional, TypeVar, Union

import httpx
from pydantic_core import to_json

from . import _retry
from ._auth import Credentials, TokenCredentials, redact_http_logs, scrub
from ._config import CREDENTIAL_FIELDS, Config, _did_you_mean
from ._constants import USER_AGENT
from ._deadline import within
from ._errors import (
    SECRET_HEADERS,
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    ConfigError,
    FallbackFailure,
    InternalServerError,
    OpenAIError,
    RateLimitError,
    ResponseTooLargeError,
)
from ._fan_out import (
    BatchLimits,
    chat_copies,
    embedding_batches,
    merged_choices,
    merged_embeddings,
)
from ._http_clients import (
    DEFAULT_TIMEOUT,
    DefaultAsyncHttpxClient,
    DefaultHttpxClient,
    SentMark,
    direct_transport,
    follows_redirect,
    reads_body_as_sent,
)
from ._notices import warn_coding_plan, warn_retired, warn_unsupported
from ._preflight import check_context_window
from ._read_deadline import hold_reads_to
from ._reasoning_memory import memory_for
from ._request_builder import RequestBuilder
from ._responses_stream import ResponsesEventPipeline, chat_usage
from ._retry import RetryPolicy
from ._routing import Route, resolve_model
from ._shapes.chat import ChatCompletion
from ._shapes.completion_usage import CompletionUsage
from ._stream_reading import StreamClock, hold_reads, per_read_timeout
from ._structured import (
    Schema,
    StructuredOutputError,
    check,
    correction,
    emulate,
    emulates,
    mismatch,
)
from ._usage_account import UsageAccount
from ._wire import call_adapter, reply_of
from .adapters import adapter_class
from .adapters._base import MALFORMED, Adapter, CallContext, HTTPRequest, JSONDict, parse_json
from .adapters._params import (
    as_legacy_function_call,
    batch_token_limits,
    check_chat_params,
    check_embedding_params,
)
from .adapters._stop import cut_at_stop
from .usage import Price, UsageLedger, UsageRecord

if TYPE_CHECKING:
    from ._shapes.create_embedding_response import CreateEmbeddingResponse
    from ._token_share import TokenShare

# Streams (`_streaming`), the tokenizers (`tokens`) and the embedding types are imported
# where first needed: a client that never streams, estimates or embeds does not carry them.

__all__ = ["AsyncEngine", "Engine", "Operation", "RawResult", "RequestOptions", "SyncEngine"]

log = logging.getLogger("llm_bridge")

#: The protocols of providers with keys of their own, never OpenAI's (see `is_openai_key`).
_NATIVE_PROTOCOLS = frozenset({"zhipu", "qianfan", "dashscope"})


def is_openai_key(key: str) -> bool:
    """Whether ``key`` is shaped as OpenAI's are: project, service-account and admin keys
    by their prefix, and every OpenAI key (legacy ``sk-`` ones too) by the base64 of
    "OpenAI" it carries. DashScope's ``sk-`` keys are hex and carry neither."""
    return key.startswith(("sk-proj-", "sk-svcacct-", "sk-admin-")) or "T3BlbkFJ" in key


#: Model names whose routes a client remembers.
_ROUTE_CACHE_SIZE = 256
T = TypeVar("T")


class RequestOptions:
    """Per-call HTTP options: ``extra_headers``, ``extra_query``, ``extra_body``, ``timeout``,
    and a stream's ``stream_idle_timeout`` and ``stream_deadline`` (see `_stream_reading`)."""

    __slots__ = (
        "extra_body",
        "extra_headers",
        "extra_query",
        "max_retries",
        "raw",
        "stream_deadline",
        "stream_idle_timeout",
        "timeout",
    )

    def __init__(
        self,
        *,
        extra_headers: Optional[dict[str, str]] = None,
        extra_query: Optional[dict[str, Any]] = None,
        extra_body: Optional[dict[str, Any]] = None,
        timeout: Union[float, httpx.Timeout, None] = None,
        max_retries: Optional[int] = None,
        raw: bool = False,
        stream_idle_timeout: Optional[float] = None,
        stream_deadline: Optional[float] = None,
    ) -> None:
        self.extra_headers = extra_headers or {}
        self.extra_query = extra_query or {}
        self.extra_body = extra_body or {}
        self.timeout = timeout
        self.max_retries = max_retries
        self.raw = raw
        self.stream_idle_timeout = stream_idle_timeout
        self.stream_deadline = stream_deadline


def _choices(params: JSONDict) -> int:
    """How many choices one request asks for (``n``; 1 when not a count above 1)."""
    n = params.get("n")
    return n if type(n) is int and n > 1 else 1


def request_body(body: object) -> bytes:
    """``body`` as compact UTF-8 JSON, what ``json.dumps(body, ensure_ascii=False,
    separators=(",", ":")).encode()`` writes, in a quarter of the time. What pydantic-core
    refuses (a lone surrogate, nesting past its depth limit) takes the standard library's
    way, and so fails as it did. The same bytes for JSON values (what requests are made
    of: parsed JSON and the adapters' dicts); pydantic-core also writes some values the
    standard library refuses (``Decimal``, ``bytes``, dates), and a ``None`` key as
    ``"None"``."""
    try:
        return to_json(body)
    except ValueError:  # PydanticSerializationError
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


class Operation:
    """One call (chat, embeddings, or a Responses request a provider serves itself) against
    one route: what to send and how to read it."""

    def __init__(
        self, engine: Engine, kind: str, route: Route, params: JSONDict, options: RequestOptions
    ) -> None:
        self.engine = engine
        self.kind = kind
        self.route = route
        self.adapter = engine.adapter(route.provider)
        self.params = params
        self.options = options
        info = self.adapter.spec.model(route.model)
        if info is not None and info.retired:
            warn_retired(route.provider, route.model, info)
        stream_options = params.get("stream_options") or {}
        self.call = CallContext(
            provider=route.provider,
            model=route.model,
            requested_model=params["model"],
            stream=bool(params.get("stream")),
            include_usage=bool(stream_options.get("include_usage")),
            encoding_format=params.get("encoding_format"),
            info=info,
            extra_body=options.extra_body,
            one_tool_call=params.get("parallel_tool_calls") is False,
            choices=_choices(params),
            legacy_functions=params.get("functions") is not None,
        )
        # json_schema from a model without it: json_object plus the schema, checked here.
        self.schema: Optional[Schema] = None
        self.last_chance = False
        self.sent_at = time.monotonic()  # (set again as each attempt is built)
        if kind == "chat" and emulates(self.adapter.protocol, info, params):
            self.params, self.schema = emulate(params)
            self.call.strip_fences = self.call.stream
        # A model that only streams, called without stream=True, is streamed here and its
        # chunks aggregated into the ChatCompletion the caller asked for.
        self.aggregate = (
            kind == "chat" and not self.call.stream and self.adapter.must_stream(params, self.call)
        )
        self.usage = UsageAccount(
            engine.usage, engine.price, route, self.params, api=self.adapter.api, kind=kind
        )
        if kind == "chat" and engine.config.policy.preflight:
            check_context_window(self.params, info, route, self.adapter.api, self.adapter.base_url)
        if self.aggregate:
            self.call.stream = True

    @property
    def stream(self) -> bool:
        return self.call.stream

    def build(self, client: Union[httpx.Client, httpx.AsyncClient]) -> httpx.Request:
        """A fresh request per attempt: auth headers may renew between attempts. A request
        the adapter refuses raises its `BadRequestError` here, before anything is sent."""
        spec = call_adapter(None, self._spec)
        self.call.emulated_stop = spec.emulated_stop  # for the answer (`Engine.completion`)
        configured = self.adapter.spec.headers  # [providers.NAME] headers: under the wire's
        if configured:
            spec.headers = {**configured, **spec.headers}
        credentials = self.adapter.credentials
        spec.params.update(credentials.query())  # before building: URLs are costly to redo
        request = self.engine.http_request(
            client,
            spec,
            self.options,
            stream=self.stream,
            stream_limits=self.stream_limits() if self.stream else None,
        )
        credentials.sign(request)
        self.sent_at = time.monotonic()  # a stream's deadline counts from here
        return request

    def check(self) -> None:
        """Raise the adapter's refusal of this request, if it refuses it, sending nothing."""
        call_adapter(None, self._spec)

    def _spec(self) -> HTTPRequest:
        """The adapter's description of the request, the caller's ``extra_body`` merged in."""
        adapter = self.adapter
        if self.kind == "chat":
            spec = adapter.chat_request(self.params, self.call)
        elif self.kind == "responses":
            spec = adapter.responses_request(self.params, self.call)
        else:
            spec = adapter.embeddings_request(self.params, self.call)
        if self.options.extra_body and isinstance(spec.json, dict):
            spec.json = adapter.merge_extra_body(spec.json, self.options.extra_body)
        return spec

    def stream_limits(self) -> tuple[Optional[float], Optional[float]]:
        """This stream's idle timeout and total deadline, in seconds (see `_stream_reading`):
        the call's, else the config's; the idle timeout defaults to the read timeout, and a
        stream read whole for a non-stream call (`aggregate`) is held to it in total too,
        as a non-stream call is."""
        options, limits = self.options, self.engine.config.limits
        idle = options.stream_idle_timeout or limits.stream_idle_timeout
        total = options.stream_deadline or limits.stream_deadline
        read = _read_timeout(self.engine.timeout if options.timeout is None else options.timeout)
        if total is None and self.aggregate:
            total = read
        return (read if idle is None else idle), total

    def error(self, response: httpx.Response) -> Optional[APIStatusError]:
        """The error in a response whose body has been read, if any."""
        reply = reply_of(response)
        fault = call_adapter(response, self.adapter.find_error, reply, parse_json(reply))
        return None if fault is None else fault.api_error(response)

    def needs_body(self, response: httpx.Response) -> bool:
        """A stream request answered with something other than an event stream."""
        content_type = response.headers.get("content-type", "")
        return response.status_code >= 400 or "event-stream" not in content_type

    def result(self, response: httpx.Response) -> Any:
        adapter, reply = self.adapter, reply_of(response)
        body = parse_json(reply)
        fault = call_adapter(response, adapter.find_error, reply, body)
        if fault is not None:
            raise fault.api_error(response)
        if self.kind == "responses":
            answer = call_adapter(response, adapter.responses_response, reply, body, self.call)
            usage = chat_usage(answer.get("usage"))
            figures = self.usage.vetted(
                CompletionUsage.model_validate(usage) if usage else None,
                lambda: _output_texts(answer),
            )
            self.usage.record(figures, answer.get("id"))
            return answer
        if self.kind == "chat":
            data = call_adapter(response, adapter.chat_response, reply, body, self.call)
            if self.call.legacy_functions:
                for choice in data.get("choices") or ():
                    as_legacy_function_call(choice, "message")
            completion = self._typed(self.engine.completion, data, response)
            if not any(_answered(choice) for choice in completion.choices):
                raise adapter.invalid_body(
                    data, "an answer with no message, no tool call and no finish reason"
                ).api_error(response)
            completion.usage = self.usage.vetted(
                completion.usage, lambda: _answer_texts(completion)
            )
            extra = completion.__pydantic_extra__ or {}  # a missing extra costs an exception
            self.usage.record(completion.usage, extra.get("request_id") or completion.id)
            if self.schema is not None:
                self.check_schema(completion, response)
            return completion
        data = call_adapter(response, adapter.embeddings_response, reply, body, self.call)
        embeddings = self._typed(self.engine.embeddings, data, response)
        usage = embeddings.usage
        if usage.estimated:  # (the provider reported none: `embedding_usage`)
            usage.prompt_tokens = usage.total_tokens = self.usage.input_tokens()
        self.usage.record(
            CompletionUsage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=0,
                total_tokens=usage.total_tokens,
                estimated=usage.estimated,
            ),
            (embeddings.__pydantic_extra__ or {}).get("request_id"),
        )
        return embeddings

    def aggregated(
        self, chunks: list[Any], usage: Optional[CompletionUsage], response: httpx.Response
    ) -> ChatCompletion:
        """The answer of a call streamed for a non-stream caller (`aggregate`), checked
        against its emulated JSON schema as a non-stream answer is (`result`)."""
        from ._streaming import aggregate

        completion = aggregate(chunks, usage)
        if self.schema is not None:
            self.check_schema(completion, response)
        return completion

    def check_schema(self, completion: ChatCompletion, response: httpx.Response) -> None:
        """Each choice's answer against the emulated schema, code fences removed; a
        mismatch raises `StructuredOutputError` (``final`` on the corrected attempt).

        An answer the provider cut short (``length``) or stopped (``content_filter``) is
        not checked: asking again would resend what was filtered, or pay for the same cut;
        openai's ``parse`` raises its own error for either, as with a native schema."""
        assert self.schema is not None
        for choice in completion.choices:
            if choice.message.tool_calls:  # the model chose a tool: nothing to check
                continue
            if choice.finish_reason in ("length", "content_filter"):
                continue
            text, problem = check(choice.message.content, self.schema)
            choice.message.content = text
            if problem is not None:
                raise mismatch(
                    response,
                    self.schema,
                    text,
                    problem,
                    final=self.last_chance,
                    provider=self.route.provider,
                )

    def corrected(self, error: StructuredOutputError) -> Operation:
        """The same call once more, quoting the answer that did not match and why."""
        assert self.schema is not None
        params = correction(self.params, error.raw_text, error.problem)
        operation = Operation(self.engine, self.kind, self.route, params, self.options)
        operation.schema, operation.last_chance = self.schema, True
        return operation

    def _typed(
        self, build: Callable[[JSONDict, CallContext], T], data: JSONDict, response: httpx.Response
    ) -> T:
        """The response model for translated data; a shape it cannot take is an APIError."""
        try:
            return build(data, self.call)
        except MALFORMED as exc:
            raise self.adapter.invalid_body(
                data, f"a response the OpenAI types cannot hold ({exc})"
            ).api_error(response) from exc

    def pipeline(self, response: httpx.Response) -> Any:
        """What reads the stream: chat chunks, or a provider's own Responses events."""
        clock = StreamClock(*self.stream_limits(), started=self.sent_at)
        hold_reads(response, clock)
        if self.kind == "responses":
            return ResponsesEventPipeline(
                self.adapter,
                self.call,
                response,
                settle=self.usage.settle_stream,
                max_event_bytes=self.engine.config.limits.max_sse_line_bytes,
                clock=clock,
            )
        from ._streaming import ChunkPipeline

        parser = self.adapter.stream_parser(reply_of(response, read=False), self.call)
        return ChunkPipeline(
            parser,
            self.call,
            response,
            settle=self.usage.settle_stream,
            reasoning=self.engine.reasoning,
            max_event_bytes=self.engine.config.limits.max_sse_line_bytes,
            clock=clock,
        )

    def abandoned(self) -> None:
        """Record the prompt of a call cancelled while its request was out (an asyncio
        task cancelled, a gateway client that hung up) as an estimate: the provider goes
        on to answer it and bills it (UNSURE: no provider documents billing a call its
        client left; see docs/unsure.md X5), as it bills a stream closed early, which is
        recorded the same way. Its completion is unknown (counted as none). Called while
        the cancellation propagates: a failure here is logged, never raised in its place."""
        if self.kind == "embeddings":
            return
        try:
            self.usage.record(self.usage.estimate(""), None)
        except Exception:
            log.exception("%s/%s: a cancelled call's usage could not be recorded", *self.route)

    def unreadable_stream(self, response: httpx.Response) -> APIError:
        """A 200 stream request answered without SSE and without an error: cannot be read."""
        return self.adapter.invalid_body(
            parse_json(reply_of(response)),
            f"a {response.headers.get('content-type', 'non-SSE')} body to a stream request",
        ).api_error(response)


class Engine:
    """Shared, I/O-free state of a client: config, routing, adapters, defaults."""

    def __init__(
        self,
        config: Config,
        *,
        provider: Optional[str],
        api_key: Optional[str],
        secret_key: Optional[str] = None,
        base_url: Optional[str],
        timeout: Union[float, httpx.Timeout, None],
        max_retries: int,
        default_headers: Optional[dict[str, str]],
        default_query: Optional[dict[str, Any]],
        on_usage: Optional[Callable[[UsageRecord], Any]] = None,
        usage: Optional[UsageLedger] = None,
    ) -> None:
        self.config = config
        # A copy made by with_options shares its parent's ledger.
        self.usage = (
            usage
            if usage is not None
            else UsageLedger(on_usage or _import_callback(config.on_usage))
        )
        # The reasoning of tool-calling answers, for the family sharing this ledger.
        self.reasoning = memory_for(self.usage)
        self.provider = provider
        self._client_keys = {"api_key": api_key, "secret_key": secret_key}
        self._base_url = base_url
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.max_retries = max_retries
        #: Largest non-stream answer read (decompressed); see `_BoundedBody`.
        self.max_response_bytes = config.limits.max_response_bytes
        self.default_headers = dict(default_headers or {})
        self.default_query = dict(default_query or {})
        self._adapters: dict[str, Adapter] = {}
        self._prices: dict[tuple[str, str], Optional[Price]] = {}
        self._requests = RequestBuilder()
        self._routes: dict[str, list[Route]] = {}
        self._plain_options = (RequestOptions(), RequestOptions(raw=True))
        self._timeout_options: dict[tuple[Optional[float], ...], RequestOptions] = {}
        self._lock = threading.Lock()
        redact_http_logs()  # httpx's request log lines would show Qianfan's query secrets
        if provider is not None:
            # An unknown provider= or missing credentials fail at construction, as in openai.
            self.adapter(provider)

    def options(self, *, raw: bool = False, **given: Any) -> RequestOptions:
        """Per-call options; a call without any shares one read-only instance."""
        if given:
            return RequestOptions(raw=raw, **given)
        return self._plain_options[raw]

    def timeout_options(self, timeout: Optional[tuple[Optional[float], ...]]) -> RequestOptions:
        """The options of a call whose only option is its timeout, given as its connect,
        read, write and pool seconds (None: the client's): one read-only instance per
        value, as openai sets the same timeout on every request of a client."""
        if timeout is None:
            return self._plain_options[False]
        options = self._timeout_options.get(timeout)
        if options is None:
            if len(self._timeout_options) >= 16:
                self._timeout_options.clear()
            connect, read, write, pool = timeout
            options = RequestOptions(
                timeout=httpx.Timeout(connect=connect, read=read, write=write, pool=pool)
            )
            self._timeout_options[timeout] = options
        return options

    # ------------------------------------------------------------------ providers

    def primary_provider(self) -> Optional[str]:
        return self.provider or self.config.default_provider

    def client_key(self, field: str) -> Optional[str]:
        return self._client_keys.get(field)

    def _keys(self, name: str) -> dict[str, Optional[str]]:
        """Credentials for a provider: the client's arguments apply to its primary provider;
        without one, to a provider the config and environment give no key of that kind
        (code moved from openai keeps ``api_key=os.environ["OPENAI_API_KEY"]``, which must
        not displace the key the config holds for the provider a model routes to)."""
        primary = self.primary_provider()
        keys = {field: self.config.secret(name, field) for field in CREDENTIAL_FIELDS}
        keys["api_key_from"] = self.config.secret_source(name, "api_key")
        for field, value in self._client_keys.items():
            if value is None:
                continue
            if primary == name or (primary is None and keys.get(field) is None):
                keys[field] = value
                if field == "api_key":
                    keys["api_key_from"] = "argument"
        # A key pasted with its line end (`echo KEY > file`, a console's copy) would be sent
        # as an illegal header, and httpx's refusal quotes it.
        for field in CREDENTIAL_FIELDS:
            value = keys.get(field)
            if value is not None:
                keys[field] = value = value.strip() or None
                if value is not None and not value.isprintable():  # (never quoted here)
                    raise ConfigError(
                        f"the {field} for provider {name!r} holds a line break or another "
                        f"control character inside it; copy the key again"
                    )
        self._refuse_openai_key(name, keys)
        return keys

    def _refuse_openai_key(self, name: str, keys: dict[str, Optional[str]]) -> None:
        """Never send an OpenAI key to a provider that cannot take it: code moved from
        openai passes ``api_key=os.environ["OPENAI_API_KEY"]``, and with the provider's own
        key not set yet, that secret would go to Zhipu, Qianfan or DashScope (and come
        back as a 401 that points elsewhere)."""
        key = keys.get("api_key")
        protocol = self.config.provider(name).protocol
        if key is None or protocol not in _NATIVE_PROTOCOLS or not is_openai_key(key):
            return
        source = keys.get("api_key_from") or "the config"
        where = "the api_key= argument" if source == "argument" else source
        variables = " or ".join(self.config.provider(name).api_key_env) or "its api_key"
        raise ConfigError(
            f"the api_key for provider {name!r} (from {where}) is an OpenAI API key, which "
            f"{name} does not take; it was not sent. Set {variables} to your {name} key "
            f'(code moved from openai often passes api_key=os.environ["OPENAI_API_KEY"]: '
            f"drop that argument, and llm-bridge reads the provider's own variable)"
        )

    def adapter(self, name: str) -> Adapter:
        """The provider's adapter, built on first use and kept for the client's life."""
        adapter = self._adapters.get(name)
        if adapter is None:
            with self._lock:
                adapter = self._adapters.get(name) or self._build_adapter(name)
                self._adapters[name] = adapter
        return adapter

    def _build_adapter(self, name: str) -> Adapter:
        spec = self.config.provider(name)
        assert spec.protocol is not None  # checked when the config was built
        primary = self.primary_provider()
        base_url = self._base_url if self._base_url and primary in (None, name) else None
        adapter = adapter_class(spec.protocol).create(
            name,
            spec,
            keys=self._keys(name),
            base_url=base_url or self.config.base_url_from_env(name),
            policy=self.config.policy,
            warn=lambda param, message: warn_unsupported(name, param, message),
            clock=time.time,
            new_id=_new_id,
        )
        endpoint = spec.endpoint_of(adapter.base_url)
        if endpoint is not None and endpoint.plan == "coding":
            warn_coding_plan(name, endpoint.url)
        return adapter

    def price(self, provider: str, model: str) -> Optional[Price]:
        """The model's price, looked up once per client (the config does not change)."""
        key = (provider, model)
        if key not in self._prices:
            self._prices[key] = self.config.price(provider, model)
        return self._prices[key]

    def routes(self, model: str) -> list[Route]:
        """Where ``model`` goes, resolved once per name (the config does not change)."""
        routes = self._routes.get(model) if isinstance(model, str) else None
        if routes is None:
            routes = resolve_model(self.config, model, client_provider=self.provider)
            if len(self._routes) < _ROUTE_CACHE_SIZE:
                self._routes[model] = routes
        return routes

    def serves_responses(self, model: str) -> bool:
        """Whether every provider ``model`` routes to serves the Responses API itself."""
        try:
            routes = self.routes(model)
        except OpenAIError:  # an unknown model: the chat path says so
            return False
        for route in routes:
            adapter = self.adapter(route.provider)
            if not adapter.serves_responses(adapter.spec.model(route.model)):
                return False
        return True

    # ------------------------------------------------------------------ requests

    def http_request(
        self,
        client: Union[httpx.Client, httpx.AsyncClient],
        spec: HTTPRequest,
        options: RequestOptions,
        *,
        stream: bool,
        stream_limits: Optional[tuple[Optional[float], Optional[float]]] = None,
    ) -> httpx.Request:
        """The HTTP request for ``spec``; a stream's read timeout lowered to its
        ``stream_limits`` (idle timeout, deadline) where they are shorter."""
        headers = {
            "User-Agent": USER_AGENT,
            "Accept": "text/event-stream" if stream else "application/json",
            "Accept-Encoding": ACCEPT_ENCODING,
            **self.default_headers,
            **spec.headers,
            **options.extra_headers,
        }
        params = {**self.default_query, **spec.params, **options.extra_query}
        body = spec.json
        content = None
        if body is not None:
            content = request_body(body)
            headers["Content-Type"] = "application/json"
        timeout = self.timeout if options.timeout is None else options.timeout
        if stream_limits is not None:
            timeout = per_read_timeout(timeout, *stream_limits)
        return self._requests.build(
            client,
            spec.method,
            spec.url,
            params=params,
            headers=headers,
            content=content,
            timeout=timeout,
        )

    def retry_policy(self, operation: Operation) -> RetryPolicy:
        max_retries = operation.options.max_retries
        policy = RetryPolicy(
            self.max_retries if max_retries is None else max_retries,
            provider=operation.route.provider,
            what=operation.kind,
        )
        policy.credentials = operation.adapter.credentials
        return policy

    @staticmethod
    def token_request(credentials: Credentials) -> Optional[httpx.Request]:
        """The token fetch that must happen before the next request, if any."""
        if isinstance(credentials, TokenCredentials):
            return credentials.token_request()
        return None

    def timed(self, request: httpx.Request, operation: Operation) -> httpx.Request:
        """``request`` (a token fetch the credentials built) held to the call's timeout,
        as the call's own requests are: without one it had no deadline and no read
        timeout on llm-bridge's own clients, and a token endpoint that never answered
        held the call, and every call waiting for the same token, for ever. It asks for
        the encodings the engine reads, as they do (an HTTP library's default may offer
        brotli, which `unread_encoding` refuses)."""
        options = operation.options.timeout
        timeout = self.timeout if options is None else options
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout)
        request.extensions["timeout"] = timeout.as_dict()
        request.headers.setdefault("Accept-Encoding", ACCEPT_ENCODING)
        return request

    def falls_back(
        self,
        error: APIError,
        routes: list[Route],
        position: int,
        failed: list[FallbackFailure],
    ) -> bool:
        """Whether a call moves from ``routes[position]`` to the next target: there is one,
        and the error's kind is in ``[policy] fallback_on`` (by default faults of this
        provider, not faults of the request). Each route's operation is built only when it
        is tried, so a fallback target's checks never stop the first target.

        ``failed`` collects each target's failure; when the call gives up after falling
        back, the error raised keeps them all (`_keep_chain`)."""
        route = routes[position]
        failed.append(FallbackFailure(route.provider, route.model, error))
        if position + 1 >= len(routes) or error_kind(error) not in self.config.policy.fallback_on:
            _keep_chain(error, failed)
            _name_nearest(error, route, self.config)
            return False
        here, there = routes[position], routes[position + 1]
        log.warning(
            "%s/%s failed (%s); falling back to %s/%s",
            here.provider,
            here.model,
            type(error).__name__,
            there.provider,
            there.model,
        )
        return True

    # ------------------------------------------------------------------ results

    def completion(self, data: JSONDict, call: CallContext) -> ChatCompletion:
        if call.emulated_stop:
            for choice in data.get("choices", []):
                message = choice.get("message") or {}
                if isinstance(message.get("content"), str):
                    message["content"], hit = cut_at_stop(message["content"], call.emulated_stop)
                    if hit:
                        choice["finish_reason"] = "stop"
        if call.one_tool_call:  # parallel_tool_calls=False: the first call only
            for choice in data.get("choices", []):
                message = choice.get("message") or {}
                if isinstance(message.get("tool_calls"), list):
                    message["tool_calls"] = message["tool_calls"][:1]
        data["provider"] = call.provider
        completion = ChatCompletion.model_validate(data)
        self.reasoning.remember_answer(completion)
        return completion

    def embeddings(self, data: JSONDict, call: CallContext) -> CreateEmbeddingResponse:
        data["provider"] = call.provider
        if not data["data"]:  # (openai raises a bare ValueError on an empty list)
            raise ValueError("a response without embeddings")
        if call.encoding_format == "base64":
            for item in data["data"]:
                vector = item.get("embedding")
                if isinstance(vector, list):
                    item["embedding"] = base64.b64encode(array("f", vector).tobytes()).decode()
                elif isinstance(vector, str) and len(base64.b64decode(vector, validate=True)) % 4:
                    raise ValueError("a base64 embedding that is not float32 values")
        from ._shapes.create_embedding_response import CreateEmbeddingResponse

        return CreateEmbeddingResponse.model_validate(data)

    def embedding_batches(self, params: JSONDict, options: RequestOptions) -> list[JSONDict]:
        """The checked parameters of each request of an embeddings call: ``input`` split
        to the model's limits per request (from the catalogue; one request if none).

        A split call's requests are all built once before the first is sent, so that a
        refusal (a text too long, say, in the last request) comes before any request
        is billed; and names the text by its index in the whole call (`InputSlice`)."""
        check_embedding_params(params)
        route = self.routes(params["model"])[0]

        def limits() -> BatchLimits:
            info = self.config.provider(route.provider).model(route.model)
            if info is None:
                return BatchLimits()
            if info.max_batch_tokens is None:
                return BatchLimits(info.max_batch)
            return batch_token_limits(route.provider, route.model, info)

        batches = embedding_batches(params, limits)
        if len(batches) > 1:
            for batch in batches:
                Operation(self, "embeddings", route, batch, options).check()
        return batches

    def chat_requests(self, params: JSONDict, extra_body: Mapping[str, Any]) -> list[JSONDict]:
        """The checked parameters of each request a chat call takes (`chat_copies`), with
        the reasoning of earlier tool calls restored where the messages dropped it
        (`_reasoning_memory`)."""
        check_chat_params(params)
        messages = self.reasoning.restore(params["messages"])
        if messages is not params["messages"]:
            params = {**params, "messages": messages}

        def native_n() -> bool:
            route = self.routes(params["model"])[0]
            info = self.config.provider(route.provider).model(route.model)
            return self.adapter(route.provider).native_n_for(params, info, extra_body)

        return chat_copies(params, native_n)

    @staticmethod
    def merged(results: Sequence[RawResult], merge: Callable[[list[Any]], Any]) -> RawResult:
        """The results of a fanned-out call as one (`_fan_out`'s ``merge``)."""
        if len(results) == 1:
            return results[0]
        parsed = merge([r.parsed for r in results])
        return RawResult(results[-1].response, parsed, max(r.retries_taken for r in results))


def error_kind(error: BaseException) -> str:
    """The ``[policy] fallback_on`` word for an error."""
    if isinstance(error, APITimeoutError):
        return "timeout"
    if isinstance(error, APIConnectionError):
        return "connection"
    code = getattr(error, "code", None)
    if code == "content_filter":
        return "content_filter"
    if code == "insufficient_quota":
        return "quota"
    if isinstance(error, RateLimitError):
        return "rate_limit"
    if isinstance(error, InternalServerError):
        return "server_error"
    kinds = {400: "bad_request", 401: "auth", 403: "permission", 404: "not_found"}
    return kinds.get(getattr(error, "status_code", 0), "other")


def _name_nearest(error: APIError, route: Route, config: Config) -> None:
    """A provider's "no such model" given the model sent and the catalogue's nearest names
    to it, as llm-bridge's own `ModelNotFoundError` names them (the provider's own text,
    Zhipu's "模型不存在", names neither)."""
    catalogue = config.provider(route.provider).models
    if error.code != "model_not_found" or route.model in catalogue:
        return  # (a catalogued model the account cannot use: no other name would help)
    hint = _did_you_mean(route.model, catalogue)
    if route.model not in error.message:  # (a provider's own text may name it)
        known = hint or "; client.models.list() lists the ones it serves"
        hint = f"; {route.model!r} is not in the {route.provider} catalogue{known}"
    if hint not in error.message:
        error.message += hint
        error.args = (error.message, *error.args[1:])


def _import_callback(path: Optional[str]) -> Optional[Callable[[UsageRecord], Any]]:
    """The config's ``on_usage = "package.module:function"``, imported."""
    if not path:
        return None
    module_name, _, attribute = path.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(
            f'on_usage: cannot import {path!r} ({exc}); expected "package.module:function"'
        ) from None
    if not callable(found):
        raise ConfigError(
            f"on_usage: {path!r} is a {type(found).__name__}, not a function to call with "
            f"each usage record"
        )
    return found  # type: ignore[no-any-return]


def _new_id() -> str:
    """A fresh random id (32 hex digits), for what a provider's answer leaves unnamed."""
    return uuid.uuid4().hex


def _answer_texts(completion: ChatCompletion) -> tuple[str, str]:
    """What a chat answer generated, for an estimate of its usage: every choice's text,
    reasoning and tool calls (names and arguments), and the reasoning alone (counted as
    reasoning tokens too), as a stream of the same answer is counted."""
    generated: list[str] = []
    reasoning: list[str] = []
    for choice in completion.choices:
        message = choice.message
        thought = (message.__pydantic_extra__ or {}).get("reasoning_content")
        if isinstance(thought, str):
            reasoning.append(thought)
        generated += [message.content or "", message.refusal or ""]
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is not None:
                generated += [function.name, function.arguments]
    thought = "".join(reasoning)
    return "".join(generated) + thought, thought


def _output_texts(response: JSONDict) -> tuple[str, str]:
    """What a Responses answer generated, for an estimate of its usage: its message text,
    function calls and reasoning summaries, and the reasoning alone."""
    generated: list[str] = []
    reasoning: list[str] = []
    for item in response.get("output") or []:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            for part in item.get("content") or []:
                text = part.get("text") if isinstance(part, dict) else None
                generated.append(text if isinstance(text, str) else "")
        elif kind == "function_call":
            generated += [str(item.get("name") or ""), str(item.get("arguments") or "")]
        elif kind == "reasoning":
            for part in item.get("summary") or []:
                text = part.get("text") if isinstance(part, dict) else None
                reasoning.append(text if isinstance(text, str) else "")
    thought = "".join(reasoning)
    return "".join(generated) + thought, thought


def _read_timeout(timeout: Union[float, httpx.Timeout, None]) -> Optional[float]:
    return timeout.read if isinstance(timeout, httpx.Timeout) else timeout


def _deadline(request: httpx.Request, started: float) -> float:
    """When a non-stream exchange (a stream's: its headers) must be over
    (``time.monotonic()``): ``started`` plus the call's read timeout, so ``timeout`` bounds
    the whole answer, not each read (a server sending a byte every few seconds never trips
    a per-read timeout). No read timeout, no deadline. Async calls are held to it by
    `_deadline.within`; sync calls by their reads (`_read_deadline`) on llm-bridge's own
    clients, and from the first body byte on with any client."""
    timeout = request.extensions.get("timeout") or {}
    read = timeout.get("read") if isinstance(timeout, dict) else None
    return math.inf if read is None else started + float(read)


def _answered(choice: Any) -> bool:
    """Whether a choice holds an answer: text, a tool call, or at least a finish reason
    (a content-filtered answer is empty but finished)."""
    message = choice.message
    return bool(message.content or message.tool_calls or choice.finish_reason)


class _BoundedBody:
    """A non-stream answer read chunk by chunk, up to ``limit`` bytes after decompression:
    past it, reading stops with `ResponseTooLargeError`, so an endless body or a gzip bomb
    never reaches memory whole. gzip and deflate are inflated a step at a time
    (`_InflatedStream`; httpx's own decoder inflates each chunk whole: 100 KB of a bomb
    becomes 100 MB at once), and no other encoding gets this far (`unread_encoding`).
    ``done`` hands the bytes to the response, as ``read()`` would."""

    __slots__ = ("chunks", "deadline", "limit", "provider", "read", "response", "size", "wbits")

    def __init__(
        self, response: httpx.Response, limit: int, deadline: float, provider: str
    ) -> None:
        self.response = response
        self.provider = provider  # (named by the error past the limit)
        self.limit = limit
        self.deadline = deadline  # time.monotonic() by which the body must be in (`_deadline`)
        self.chunks: list[bytes] = []
        self.size = 0
        # Read whole already (a test transport's bytes): only its size is checked (`done`).
        self.read = response.is_stream_consumed
        encoding = response.headers.get("content-encoding", "").strip().lower()
        self.wbits = _ZLIB_ENCODINGS.get(encoding)

    def stream(self) -> Any:
        """The response's body stream (inflated, if it is compressed), taken to be read
        here: the response then counts as read (`done` gives it its content) and closes
        as usual. Read straight from the transport's stream: httpx's own iterators wrap
        each read in three context managers, a decoder and a chunker, 5-10 us a response.
        (httpx's own readers put the request on an error raised while reading; the
        engine's callers are given the request themselves, see `_transport_error`.)"""
        response = self.response
        response.is_stream_consumed = True
        if self.wbits is None:
            return response.stream
        return _InflatedStream(response.stream, self.wbits)

    def add(self, chunk: bytes) -> None:
        if time.monotonic() > self.deadline:  # a body dripped a byte at a time
            raise httpx.ReadTimeout("the answer took longer than the call's timeout")
        self.size += len(chunk)
        if self.size > self.limit:
            raise ResponseTooLargeError(
                self.response,
                limit=self.limit,
                setting="max_response_bytes",
                what="answer",
                provider=self.provider,
            )
        self.chunks.append(chunk)

    def done(self) -> None:
        if self.read:
            if len(self.response.content) > self.limit:
                self.add(self.response.content)  # (raises)
            return
        # What httpx's own read() keeps (its body is then read; the stream is closed).
        self.response._content = b"".join(self.chunks)


#: Content encodings inflated by llm-bridge rather than httpx, with zlib's window bits:
#: the only ones read (`unread_encoding`), and asked for (``Accept-Encoding``).
_ZLIB_ENCODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}
ACCEPT_ENCODING = "gzip, deflate"


def unread_encoding(response: httpx.Response) -> Optional[str]:
    """Why the answer's ``Content-Encoding`` cannot be read, or None (none, identity, or
    one of `_ZLIB_ENCODINGS`, which are inflated a step at a time). httpx would decode
    any other (brotli, zstd, layers of gzip) a whole network read at a time: a few KB
    become gigabytes before a limit sees them. They are never asked for, so a provider
    sending one is broken or hostile."""
    encoding = response.headers.get("content-encoding")
    if encoding is None:
        return None
    encoding = encoding.strip().lower()
    if encoding in _ZLIB_ENCODINGS or encoding in ("", "identity"):
        return None
    return (
        f"the answer's Content-Encoding {encoding[:40]!r} is not one llm-bridge reads "
        f"({ACCEPT_ENCODING}; asked for in Accept-Encoding)"
    )


#: The most a compressed stream's body is inflated to at a time (`_InflatedStream`).
_INFLATE_STEP = 65_536


class _InflatedStream(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A gzip- or deflate-encoded event stream's body, inflated at most `_INFLATE_STEP`
    bytes at a time. httpx's decoder inflates each network read whole, so 100 KB of a
    compressed bomb (blank lines, or one endless line) would be 100 MB in memory at once,
    before the stream's line limit (``max_sse_line_bytes``) or its clock could look at it;
    in steps, those limits stop it with bounded memory. A broken encoding is httpx's
    ``DecodingError``, as it would have been; "deflate" not wrapped in zlib's header is
    read as raw deflate, as httpx reads it."""

    def __init__(self, raw: Any, wbits: int) -> None:
        self.raw = raw
        self.wbits = wbits
        self.inflater = zlib.decompressobj(wbits)
        self.inflated = False  # (whether any byte came out yet)

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.raw:
            yield from self._inflate(chunk)
        yield from self._inflate(b"", final=True)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.raw:
            for piece in self._inflate(chunk):
                yield piece
        for piece in self._inflate(b"", final=True):
            yield piece

    def _inflate(self, chunk: bytes, *, final: bool = False) -> Iterator[bytes]:
        """What ``chunk`` (``final``: the body's end) inflates to, a step at a time."""
        try:
            yield from self._steps(chunk, final)
        except zlib.error as error:
            if not self._as_raw_deflate():
                raise httpx.DecodingError(f"the answer's compression is broken: {error}") from None
            yield from self._inflate(chunk, final=final)

    def _steps(self, chunk: bytes, final: bool) -> Iterator[bytes]:
        inflater = self.inflater
        while chunk:
            piece = inflater.decompress(chunk, _INFLATE_STEP)
            chunk = inflater.unconsumed_tail
            if piece:
                self.inflated = True
                yield piece
        rest = inflater.flush() if final else b""
        if rest:
            yield rest

    def _as_raw_deflate(self) -> bool:
        """Whether to read the body again as raw deflate: httpx's rule for "deflate" that
        fails before its first byte inflates (the zlib header is missing)."""
        if self.wbits != 15 or self.inflated:
            return False
        self.wbits = -15
        self.inflater = zlib.decompressobj(-15)
        return True

    def close(self) -> None:
        self.raw.close()

    async def aclose(self) -> None:
        await self.raw.aclose()


def _inflate_in_steps(response: httpx.Response) -> None:
    """Have a gzip- or deflate-encoded stream's body inflated by `_InflatedStream` rather
    than by httpx: its body becomes the inflated one, and its ``content-encoding`` goes."""
    wbits = _ZLIB_ENCODINGS.get(response.headers.get("content-encoding", "").strip().lower())
    if wbits is None or response.is_stream_consumed:
        return
    response.stream = _InflatedStream(response.stream, wbits)
    del response.headers["content-encoding"]


def _transport_error(error: httpx.HTTPError, request: httpx.Request, provider: str) -> APIError:
    """The `APIError` for an httpx failure, to be raised past the ``except`` clause that
    caught it: neither its cause nor its context then, so no traceback prints the httpx
    error, whose message may quote the URL (Qianfan's carries its access token) and
    whose ``request`` holds the credentials unmasked."""
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(request, provider=provider)
    # httpx quotes the URL in some messages (Qianfan's carries its access token), and a
    # header value it refuses.
    return APIConnectionError(
        message=scrub(f"Connection error: {error}", _secrets_of(request)),
        request=request,
        provider=provider,
    )


def _secrets_of(request: httpx.Request) -> tuple[str, ...]:
    """The credentials ``request`` carries in its headers, whole and without their scheme
    (``Bearer``)."""
    found: list[str] = []
    for name, value in request.headers.items():
        if name.lower() in SECRET_HEADERS:
            found += [value, value.split(" ", 1)[-1].strip()]
    return tuple(found)


class RawResult:
    """What the retry loop hands back: the HTTP response, the parsed result, retries taken."""

    __slots__ = ("parsed", "response", "retries_taken")

    def __init__(self, response: httpx.Response, parsed: Any, retries_taken: int) -> None:
        self.response = response
        self.parsed = parsed
        self.retries_taken = retries_taken


class SyncEngine(Engine):
    """Sends with ``httpx.Client``.

    Fetched tokens are single-flight per process only: unlike `AsyncEngine` it has no
    ``token_share`` (a gateway's replicas, which share tokens, run the async engine)."""

    def __init__(self, config: Config, *, http_client: Optional[httpx.Client], **kwargs: Any):
        super().__init__(config, **kwargs)
        self.owns_client = http_client is None
        self.http = http_client or DefaultHttpxClient(timeout=self.timeout)
        self.direct = direct_transport(self.http)

    def chat(self, params: JSONDict, options: RequestOptions) -> RawResult:
        """A chat call: its requests (see `chat_requests`), merged."""
        requests = self.chat_requests(params, options.extra_body)
        if len(requests) == 1:
            return self.call("chat", requests[0], options)
        return self.merged([self.call("chat", p, options) for p in requests], merged_choices)

    def embed(self, params: JSONDict, options: RequestOptions) -> RawResult:
        """An embeddings call: its batches, in order, merged."""
        batches = self.embedding_batches(params, options)
        results = [self.call("embeddings", b, options) for b in batches]
        return self.merged(results, merged_embeddings)

    def call(self, kind: str, params: JSONDict, options: RequestOptions) -> RawResult:
        """One request along its routes: each route's attempts (`_attempts`), then the
        next route if the policy falls back on the error."""
        routes = self.routes(params["model"])
        failures: list[FallbackFailure] = []
        for position, route in enumerate(routes):
            try:  # (the operation too: its pre-flight check may fall back)
                operation = Operation(self, kind, route, params, options)
                return self._attempts(operation)
            except APIError as error:
                if not self.falls_back(error, routes, position, failures):
                    raise
        raise AssertionError("unreachable: routes are never empty")

    def _attempts(self, operation: Operation) -> RawResult:
        """Every attempt of one route, in one loop: the first, and each retry the policy
        allows after a failure (the policy is made at the first failure: most calls never
        need one). The first answer that fails its JSON schema, whether or not a failed
        attempt came before it, is asked for once more, quoting the problem; that
        corrected request's failures are retried as the first's were, within the same
        ``max_retries``."""
        policy: Optional[RetryPolicy] = None
        retries = 0
        while True:
            try:
                return self._attempt(operation, retries)
            except StructuredOutputError as error:
                if error.final:
                    raise
                operation = operation.corrected(error)  # (its failures retried as any)
                continue
            except APIError as error:
                policy = policy or self.retry_policy(operation)
                wait = policy.wait_after(error, attempt=retries + 1)
                if wait is None:
                    raise
            _retry.sleep(wait)
            retries += 1

    def _attempt(self, operation: Operation, retries: int) -> RawResult:
        self._ensure_token(operation)
        request = operation.build(self.http)
        response = self._send(request, operation)
        if not operation.stream:
            return RawResult(response, operation.result(response), retries)
        if operation.needs_body(response):
            self._read_answer(response, request, operation)
            raise operation.error(response) or operation.unreadable_stream(response)
        from ._streaming import Stream

        _inflate_in_steps(response)
        stream = Stream(response, operation.pipeline(response))
        if operation.aggregate:
            completion = operation.aggregated(list(stream), stream.usage, response)
            return RawResult(response, completion, retries)
        stream.prime()  # a failure before the first chunk is still retried
        return RawResult(response, stream, retries)

    def _ensure_token(self, operation: Operation) -> None:
        credentials = operation.adapter.credentials
        if self.token_request(credentials) is None:
            return
        assert isinstance(credentials, TokenCredentials)
        with credentials.thread_lock:
            request = self.token_request(credentials)  # another thread may have fetched it
            if request is not None:
                request = self.timed(request, operation)
                credentials.accept_token(self._send(request, operation, stream=False))

    def _send(
        self, request: httpx.Request, operation: Operation, *, stream: Optional[bool] = None
    ) -> httpx.Response:
        started = time.monotonic()
        streamed = operation.stream if stream is None else stream
        deadline = _deadline(request, started)
        provider = operation.route.provider
        # Every read until the answer is in (a stream's: its headers) ends by the deadline.
        before = hold_reads_to(None if deadline == math.inf else deadline)
        try:
            response = self._open(request)
            if not streamed:
                self._read_body(response, deadline, provider)
        except httpx.HTTPError as error:
            failure = _transport_error(error, request, provider)
        else:
            _log_response(request, response, started)
            return response
        finally:
            hold_reads_to(before)
        raise failure  # (past the handler: see `_transport_error`)

    def _read_body(self, response: httpx.Response, deadline: float, provider: str) -> None:
        """Read ``response`` (from ``provider``) whole, within `max_response_bytes` and by
        ``deadline`` (see `_BoundedBody`), and close it."""
        body = _BoundedBody(response, self.max_response_bytes, deadline, provider)
        try:
            if not body.read:
                for chunk in body.stream():
                    body.add(chunk)
        finally:
            response.close()
        body.done()

    def _read_answer(
        self, response: httpx.Response, request: httpx.Request, operation: Operation
    ) -> None:
        """Read the body of a stream request answered without an event stream (an error,
        mostly) as a non-stream answer is read: within `max_response_bytes`, every read by
        the deadline counted from the send, so an endless, inflating or dripped error body
        cannot hold the call or its memory. A body cut short is a connection error,
        retried as one."""
        deadline = _deadline(request, operation.sent_at)
        before = hold_reads_to(None if deadline == math.inf else deadline)
        try:
            self._read_body(response, deadline, operation.route.provider)
        except httpx.HTTPError as error:
            failure = _transport_error(error, request, operation.route.provider)
        else:
            return
        finally:
            hold_reads_to(before)
        raise failure  # (past the handler: see `_transport_error`)

    def _open(self, request: httpx.Request) -> httpx.Response:
        """``self.http.send(request, stream=True)``, straight to its transport when that is
        the same thing (see `direct_transport`); an answer in an encoding not read here
        is closed and refused (`unread_encoding`)."""
        transport = self.direct
        response = None
        if isinstance(transport, httpx.BaseTransport) and not self.http.is_closed:
            response = transport.handle_request(request)
            response.request = request
            if follows_redirect(self.http, response):
                response.close()
                response = None
        if response is None:
            response = self.http.send(request, stream=True)
        problem = unread_encoding(response)
        if problem is not None:
            response.close()
            raise httpx.DecodingError(problem, request=request)
        return response

    def close(self) -> None:
        if self.owns_client:
            self.http.close()


class AsyncEngine(Engine):
    """Sends with ``httpx.AsyncClient``: the twin of `SyncEngine`, awaiting where it calls.

    ``token_share`` (None: tokens are fetched per process, as by `SyncEngine`) lets several
    processes, a gateway's replicas, fetch a provider token once between them (see
    `llm_bridge._token_share`)."""

    def __init__(self, config: Config, *, http_client: Optional[httpx.AsyncClient], **kwargs: Any):
        super().__init__(config, **kwargs)
        self.owns_client = http_client is None
        self.http = http_client or DefaultAsyncHttpxClient(timeout=self.timeout)
        self.direct = direct_transport(self.http)
        self.marks_sending = reads_body_as_sent(self.http)  # (see `_attempt`)
        self.token_share: Optional[TokenShare] = None

    def chat(self, params: JSONDict, options: RequestOptions) -> Awaitable[RawResult]:
        """A chat call: its requests (see `chat_requests`, sent concurrently), merged.

        Not itself a coroutine: a single request hands back `call`'s, so that the caller
        awaits it directly (every suspension of a request passes back through each
        coroutine in the chain: one level less)."""
        requests = self.chat_requests(params, options.extra_body)
        if len(requests) == 1:
            return self.call("chat", requests[0], options)
        return self._fan_out(requests, options)

    async def _fan_out(self, requests: list[JSONDict], options: RequestOptions) -> RawResult:
        """The copies of a call concurrently; the first to fail cancels the others (each a
        billed request nobody would read, retried as long as it fails) and is raised."""

        tasks = [asyncio.ensure_future(self.call("chat", p, options)) for p in requests]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        finally:  # (also when this call itself is cancelled)
            pending = [task for task in tasks if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        # (each failure is read, so none is logged as "never retrieved"; the first raised)
        errors = [task.exception() for task in tasks if not task.cancelled()]
        for error in errors:
            if error is not None:
                raise error
        return self.merged([task.result() for task in tasks], merged_choices)

    async def embed(self, params: JSONDict, options: RequestOptions) -> RawResult:
        """An embeddings call: its batches, in order (one at a time, as rate limits prefer)."""
        batches = self.embedding_batches(params, options)
        results = [await self.call("embeddings", b, options) for b in batches]
        return self.merged(results, merged_embeddings)

    async def call(self, kind: str, params: JSONDict, options: RequestOptions) -> RawResult:
        """As `SyncEngine.call`."""
        routes = self.routes(params["model"])
        failures: list[FallbackFailure] = []
        for position, route in enumerate(routes):
            try:  # (the operation too: its pre-flight check may fall back)
                operation = Operation(self, kind, route, params, options)
                return await self._attempts(operation)
            except APIError as error:
                if not self.falls_back(error, routes, position, failures):
                    raise
        raise AssertionError("unreachable: routes are never empty")

    async def _attempts(self, operation: Operation) -> RawResult:
        """As `SyncEngine._attempts`."""
        policy: Optional[RetryPolicy] = None
        retries = 0
        while True:
            try:
                return await self._attempt(operation, retries)
            except StructuredOutputError as error:
                if error.final:
                    raise
                operation = operation.corrected(error)
                continue
            except APIError as error:
                policy = policy or self.retry_policy(operation)
                wait = policy.wait_after(error, attempt=retries + 1)
                if wait is None:
                    raise
            await _retry.async_sleep(wait)
            retries += 1

    async def _attempt(self, operation: Operation, retries: int) -> RawResult:
        if self.token_request(operation.adapter.credentials) is not None:
            await self._ensure_token(operation)
        request = operation.build(self.http)
        # A call cancelled while out is billed by the provider, and recorded here as its
        # prompt (`Operation.abandoned`); one cancelled before its body began to go (a
        # wait for a pooled connection) never reached it. Where the transport does not
        # say (`reads_body_as_sent`), a cancelled call is taken to have been sent.
        sending = SentMark(request) if self.marks_sending else None
        try:
            response = await self._send(request, operation)
        except asyncio.CancelledError:
            if sending is None or sending.sent:
                operation.abandoned()
            raise
        if not operation.stream:
            return RawResult(response, operation.result(response), retries)
        if operation.needs_body(response):
            await self._read_answer(response, request, operation)
            raise operation.error(response) or operation.unreadable_stream(response)
        from ._streaming import AsyncStream

        _inflate_in_steps(response)
        stream = AsyncStream(response, operation.pipeline(response))
        try:
            if operation.aggregate:
                chunks = [chunk async for chunk in stream]
                completion = operation.aggregated(chunks, stream.usage, response)
                return RawResult(response, completion, retries)
            await stream.prime()  # a failure before the first chunk is still retried
        except asyncio.CancelledError:
            # Cancelled once the provider had begun to answer: closed, and recorded (an
            # estimate of what came, or of the prompt when nothing had).
            await stream.close()
            if stream.usage is None:
                operation.abandoned()
            raise
        return RawResult(response, stream, retries)

    async def _ensure_token(self, operation: Operation) -> None:
        credentials = operation.adapter.credentials
        if self.token_request(credentials) is None:
            return
        assert isinstance(credentials, TokenCredentials)
        async with credentials.async_lock():
            request = self.token_request(credentials)  # another task may have fetched it
            if request is None:
                return
            if self.token_share is None:
                request = self.timed(request, operation)
                credentials.accept_token(await self._send(request, operation, stream=False))
                return
            from ._token_share import obtain_token

            async def mint() -> None:
                fresh = self.token_request(credentials)  # signed now, after any wait
                if fresh is not None:
                    fresh = self.timed(fresh, operation)
                    credentials.accept_token(await self._send(fresh, operation, stream=False))

            how = await obtain_token(self.token_share, credentials, mint)
            log.debug("%s: provider token %s (token share)", operation.route.provider, how)

    async def _send(
        self, request: httpx.Request, operation: Operation, *, stream: Optional[bool] = None
    ) -> httpx.Response:
        started = time.monotonic()
        streamed = operation.stream if stream is None else stream
        deadline = _deadline(request, started)
        provider = operation.route.provider
        # The whole exchange (a stream's: up to its headers) within the deadline.
        reading = self._open(request) if streamed else self._read_whole(request, deadline, provider)
        try:
            if deadline == math.inf:
                response = await reading
            else:
                response = await within(reading, deadline - started)
        except (asyncio.TimeoutError, TimeoutError):
            failure: APIError = APITimeoutError(request, provider=provider)
        except httpx.HTTPError as error:
            failure = _transport_error(error, request, provider)
        else:
            _log_response(request, response, started)
            return response
        raise failure  # (past the handler: see `_transport_error`)

    async def _read_whole(
        self, request: httpx.Request, deadline: float, provider: str
    ) -> httpx.Response:
        """Send ``request`` and read its answer whole, within `max_response_bytes`."""
        response = await self._open(request)
        await self._read_body(response, deadline, provider)
        return response

    async def _read_body(self, response: httpx.Response, deadline: float, provider: str) -> None:
        """As `SyncEngine._read_body`."""
        body = _BoundedBody(response, self.max_response_bytes, deadline, provider)
        try:
            if not body.read:
                # The iterator itself is closed too, when the read stops early (an error,
                # the deadline's cancel): left to the garbage collector, an async
                # generator is finalised on whatever loop runs then.
                chunks = body.stream().__aiter__()
                try:
                    async for chunk in chunks:
                        body.add(chunk)
                finally:
                    close = getattr(chunks, "aclose", None)
                    if close is not None:
                        await close()
        finally:
            await response.aclose()
        body.done()

    async def _read_answer(
        self, response: httpx.Response, request: httpx.Request, operation: Operation
    ) -> None:
        """As `SyncEngine._read_answer`; the deadline held by `_deadline.within`."""
        deadline = _deadline(request, operation.sent_at)
        reading = self._read_body(response, deadline, operation.route.provider)
        try:
            if deadline == math.inf:
                await reading
            else:
                await within(reading, max(deadline - time.monotonic(), 0.0))
        except (asyncio.TimeoutError, TimeoutError):
            failure: APIError = APITimeoutError(request, provider=operation.route.provider)
        except httpx.HTTPError as error:
            failure = _transport_error(error, request, operation.route.provider)
        else:
            return
        finally:
            reading.close()  # (never started when the deadline had passed already)
            await response.aclose()
        raise failure  # (past the handler: see `_transport_error`)

    async def _open(self, request: httpx.Request) -> httpx.Response:
        """As `SyncEngine._open`."""
        transport = self.direct
        response = None
        if isinstance(transport, httpx.AsyncBaseTransport) and not self.http.is_closed:
            response = await transport.handle_async_request(request)
            response.request = request
            if follows_redirect(self.http, response):
                await response.aclose()
                response = None
        if response is None:
            response = await self.http.send(request, stream=True)
        problem = unread_encoding(response)
        if problem is not None:
            await response.aclose()
            raise httpx.DecodingError(problem, request=request)
        return response

    async def close(self) -> None:
        if self.owns_client:
            await self.http.aclose()


_SECRET_WORDS = ("token", "key", "secret", "client_id", "signature", "auth", "password")


def _log_response(request: httpx.Request, response: httpx.Response, started: float) -> None:
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "%s %s -> %d (%.0f ms)",
            request.method,
            _redacted(request.url),
            response.status_code,
            (time.monotonic() - started) * 1000,
        )


def _redacted(url: httpx.URL) -> str:
    """The URL for logs, with token-bearing query values hidden."""
    if not url.query:
        return str(url)
    params = [
        (k, "<redacted>" if any(word in k.lower() for word in _SECRET_WORDS) else v)
        for k, v in url.params.multi_items()
    ]
    return str(url.copy_with(params=params))


def _keep_chain(error: APIError, failed: list[FallbackFailure]) -> None:
    """Give the error a fallback chain ends with every target's failure: as
    ``fallback_errors`` (provider, model, error), named in its message (which survives
    every front door, logs included), and chained through ``__context__`` for code that
    catches it from the engine. A call that never fell back is left as it is."""
    if len(failed) < 2:
        return
    error.fallback_errors = tuple(failed)
    earlier = "; ".join(
        f"{f.provider}/{f.model}: {type(f.error).__name__}: {getattr(f.error, 'message', f.error)}"
        for f in failed[:-1]
    )
    error.own_message = error.message  # (the chain's last entry: this target's own words)
    error.message = f"{error.message} (every fallback target failed; before it: {earlier})"
    error.args = (error.message, *error.args[1:])
    for before, after in itertools.pairwise(failed):
        if after.error.__context__ is None and after.error.__cause__ is None:
            after.error.__context__ = before.error
