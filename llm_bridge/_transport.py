"""The transport under the genuine openai client: OpenAI requests in, provider calls out.

``llm_bridge.OpenAI`` is openai's client with this transport in its HTTP client, and
``llm_bridge.http_client()`` hands the same transport to any openai client. A request
openai sends (``POST .../chat/completions`` with OpenAI JSON) is read by `_front`, routed
and sent to the provider by the engine (retries, fallbacks, usage), and answered with the
OpenAI JSON or server-sent events openai expects. Nothing reaches the network from here
except the engine's calls to providers.

Errors become OpenAI-shaped error responses with ``x-should-retry: false`` (the engine
made every attempt already, so openai's own loop must not multiply them), each carrying
the exception object in its extensions: ``llm_bridge.OpenAI`` raises that object, with
``provider`` and ``provider_code``; a plain openai client raises openai's class for the
status. A provider that cannot be reached is raised as `APIConnectionError` /
`APITimeoutError` to a plain client (openai 2 and later pass an ``OpenAIError`` from the
transport through unchanged), since no status fits it.

The transport classes serve both HTTP libraries openai has used: ``httpx2`` (openai 3.x)
and ``httpx``; which one a request came from decides the response type.

Stored responses (``previous_response_id``, ``responses.retrieve``/``delete``) live in the
engine source's ``store`` (the process-wide `default_store` unless the source was given
another, as the gateway gives its shared one). The synchronous transport calls the store,
the asynchronous one awaits it (`AsyncResponseStore`: a store on the network never blocks
the event loop); everything else about a request is read and answered by the same code.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import httpx

from . import _front, _responses_front
from ._catalogue import model_entry, model_list
from ._endpoints import KnownRoot, find_root, known_roots
from ._errors import APIConnectionError, OpenAIError
from ._front_client import front_client
from ._response_store import StoredResponse, default_store

if TYPE_CHECKING:
    from ._config import Config
    from ._engine import AsyncEngine, SyncEngine
    from .usage import UsageLedger, UsageRecord

try:  # openai 3.x speaks httpx2; earlier versions, and legacy clients, httpx
    import httpx2
except ImportError:  # pragma: no cover - only without openai 3.x
    httpx2 = None  # type: ignore[assignment]

__all__ = [
    "AsyncBridgeTransport",
    "BridgeTransport",
    "EngineFactory",
    "FixedEngine",
    "RoutedEngines",
    "async_http_client",
    "checked_timeout",
    "http_client",
]

_SYNC_STREAM_BASES: tuple[type, ...] = (httpx.SyncByteStream,) + (
    (httpx2.SyncByteStream,) if httpx2 is not None else ()
)
_ASYNC_STREAM_BASES: tuple[type, ...] = (httpx.AsyncByteStream,) + (
    (httpx2.AsyncByteStream,) if httpx2 is not None else ()
)
_SYNC_TRANSPORT_BASES: tuple[type, ...] = (httpx.BaseTransport,) + (
    (httpx2.BaseTransport,) if httpx2 is not None else ()
)
_ASYNC_TRANSPORT_BASES: tuple[type, ...] = (httpx.AsyncBaseTransport,) + (
    (httpx2.AsyncBaseTransport,) if httpx2 is not None else ()
)

#: Engines a routing transport keeps (one per provider root and request key).
_MAX_ROUTED_ENGINES = 64


def store_of(source: Any) -> Any:
    """The response store of an engine source: its ``store`` attribute, if it has one (a
    store is a `SyncResponseStore` for `BridgeTransport`, an `AsyncResponseStore` for
    `AsyncBridgeTransport`), else the process's `default_store`."""
    store = getattr(source, "store", None)
    return default_store() if store is None else store


class EngineChoice:
    """The engine a request goes to, and the API root its path is read below."""

    def __init__(self, engine: Any, root_path: str = "") -> None:
        self.engine = engine
        self.root_path = root_path


class FixedEngine:
    """``llm_bridge.OpenAI``'s own: every request goes to the client's engine."""

    def __init__(self, factory: EngineFactory, engine: Any, root_path: str) -> None:
        self.factory = factory
        self.engine = engine
        self.store: Any = default_store()  # where stored responses live (see store_of)
        self._choice = EngineChoice(engine, root_path)

    def choose(self, request: Any) -> EngineChoice:
        return self._choice


class RoutedEngines:
    """``llm_bridge.http_client()``'s: the request's host and key pick the engine.

    A request to a known provider root (DashScope's compatible mode, Zhipu, Qianfan v2
    ...) goes to that provider, with that root's settings; anything else to ``provider``
    (or wherever the config routes the model). The key is the config's or environment's
    for the provider, else the request's own bearer key.
    """

    def __init__(self, factory: EngineFactory, config: Config, provider: Optional[str]) -> None:
        self.factory = factory
        self.config = config
        self.provider = provider
        self.store: Any = default_store()  # where stored responses live (see store_of)
        self._roots = known_roots(config)  # the tables do not change: listed once
        self._keyed: dict[str, bool] = {}  # provider -> the config or environment has a key
        self._engines: dict[tuple[Any, ...], EngineChoice] = {}
        self._lock = threading.Lock()
        if provider is not None:
            config.provider(provider)  # an unknown provider= fails here, naming the known
        # Without provider=, or with a key for it in the config or environment, one engine
        # serves every other request; built now so that config mistakes show at once.
        self.default: Optional[EngineChoice] = None
        if provider is None or self._has_key(provider):
            self.default = EngineChoice(
                factory(config, provider=provider, api_key=None, base_url=None)
            )

    def choose(self, request: Any) -> EngineChoice:
        known = find_root(self._roots, str(request.url))
        if known is None and self.provider is not None:
            known = own_root(request.url, self.provider)
        if known is None and self.default is not None:
            return self.default
        provider = known.provider if known is not None else self.provider
        assert provider is not None  # (no default engine only when provider= was given)
        key = None if self._has_key(provider) else _front.bearer_of(request.headers)
        cache_key = (provider, known.root if known is not None else None, key)
        choice = self._engines.get(cache_key)
        if choice is None:
            with self._lock:
                choice = self._engines.get(cache_key) or self._new_choice(provider, known, key)
                self._engines[cache_key] = choice
        return choice

    def _has_key(self, provider: str) -> bool:
        """Whether the config or environment holds a key for ``provider`` (cached)."""
        keyed = self._keyed.get(provider)
        if keyed is None:
            fields = ("api_key", "iam_access_key")
            keyed = self._keyed[provider] = any(self.config.secret(provider, f) for f in fields)
        return keyed

    def _new_choice(self, provider: str, known: Any, key: Optional[str]) -> EngineChoice:
        """An engine for a provider root, or for ``provider=`` with the request's own key,
        not seen before."""
        if len(self._engines) >= _MAX_ROUTED_ENGINES:
            self._engines.pop(next(iter(self._engines)))
        if known is None:
            return EngineChoice(
                self.factory(self.config, provider=provider, api_key=key, base_url=None)
            )
        config = self.config.with_provider_settings(provider, known.settings)
        engine = self.factory(config, provider=provider, api_key=key, base_url=known.root)
        return EngineChoice(engine, httpx.URL(known.root).path)


#: The openai client's default root: a request there names no root of the caller's own.
_OPENAI_HOST = "api.openai.com"


def own_root(url: Any, provider: str) -> Optional[KnownRoot]:
    """``provider`` at the root the caller's openai client was given (its ``base_url``: a
    proxy, a private deployment), for ``http_client(provider=...)`` and a request to a
    root no provider table names: the root is the URL up to the segment that names an
    OpenAI API. None for openai's default root (the caller gave no ``base_url``) and for
    a URL that names no API."""
    if url.host == _OPENAI_HOST:
        return None
    segments = url.path.strip("/").split("/")
    start = _front.api_start(segments)
    if start is None:
        return None
    path = "/".join(segments[:start])
    root = f"{url.scheme}://{url.netloc.decode('ascii')}" + (f"/{path}" if path else "")
    return KnownRoot(provider, root, {})


#: Requests answered from the store, about the stored response their URL names.
_STORED_KINDS = frozenset({"response", "response_input_items", "response_delete"})


class _Call:
    """One front-door request, read: where it goes and what it asks.

    Some requests need the response store first: a Responses request that continues a
    stored response, and the stored-response endpoints. `stored_id` names the response
    (None: the store is not needed); the transport looks it up (`deletes`: deletes it) in
    `store`, its own way (called or awaited), and hands the result to `read_responses`
    or `local_answer`."""

    __slots__ = (
        "body",
        "endpoint",
        "engine",
        "options",
        "params",
        "responses",
        "store",
        "stored_id",
    )

    def __init__(self, source: Any, request: Any) -> None:
        choice = source.choose(request)
        self.engine = choice.engine
        self.store = store_of(source)
        self.endpoint = _front.endpoint_of(request.method, request.url.path, choice.root_path)
        self.params: dict[str, Any] = {}
        self.options: Any = None
        self.responses: Any = None  # a Responses request: the chat call it became
        self.body: object = None  # a Responses request's body, until read_responses
        self.stored_id: Optional[str] = None
        kind = self.endpoint.kind
        if kind == "unserved":
            raise _front.unserved(self.endpoint, self.engine.primary_provider())
        if kind == "responses":
            self.body = _front.read_json(request.content)
            self.stored_id = _responses_front.previous_id(self.body)
        elif kind in ("chat", "embeddings"):
            params, extras = _front.split_body(kind, _front.read_json(request.content))
            self._given(request, params, extras)
        elif kind in _STORED_KINDS:
            self.stored_id = self.endpoint.ident or ""

    @property
    def deletes(self) -> bool:
        """Whether the store is to delete `stored_id` (rather than give it)."""
        return self.endpoint.kind == "response_delete"

    def read_responses(self, request: Any, previous: Optional[StoredResponse]) -> None:
        """Read a Responses request, given what the store held under its
        ``previous_response_id`` (None: nothing, or it names none)."""
        self.responses = _responses_front.prepare(
            self.body,
            previous=previous,
            store=self.store,
            policy=self.engine.config.policy.unsupported_params,
            provider=self.engine.primary_provider(),
            url=str(request.url),
            native=self.engine.serves_responses,
        )
        self._given(request, self.responses.params, self.responses.extras)

    def _given(self, request: Any, params: dict[str, Any], extras: dict[str, Any]) -> None:
        """The engine call's parameters, and its options from the request's extras,
        headers, query and timeout."""
        self.params = params
        given: dict[str, Any] = {}
        headers = _front.forwarded_headers(request.headers.raw)
        if headers:
            given["extra_headers"] = headers
        query = _front.query_of(request.url.params)
        if query:
            given["extra_query"] = query
        if extras:
            given["extra_body"] = extras
        if params.get("stream"):
            given.update(_front.stream_limits_from(request.headers))
        # The common call has nothing but a timeout (openai sets one on every request):
        # it gets shared options, made once per timeout.
        options = self.engine.timeout_options(_front.timeout_of(request.extensions))
        if given:
            options = self.engine.options(timeout=options.timeout, **given)
        self.options = options

    def local_answer(self, url: str, stored: Any) -> Any:
        """``models`` and ``model`` from the catalogue; stored responses from ``stored``,
        what the store gave for `stored_id` (the entry, or whether it deleted one):
        answered here, no provider call."""
        kind, ident = self.endpoint.kind, self.endpoint.ident or ""
        if kind == "models":
            return model_list(self.engine, self.engine.provider)
        if kind == "model":
            return model_entry(self.engine, ident)
        if kind == "response_delete":
            return _responses_front.deleted(bool(stored), ident, url, self.store)
        entry = _responses_front.found(stored, ident, url, self.store)
        if kind == "response" and httpx.URL(url).params.get("stream") == "true":
            raise _responses_front.no_streamed_retrieval(ident, url)
        if kind == "response_input_items":
            return _responses_front.input_items_page(entry, url)
        return entry.response


def json_response(request: Any, headers: dict[str, str], body: bytes) -> Any:
    """What ``Response(200, headers=headers, content=body, request=request)`` makes, in the
    request's HTTP library, read already. Made without reading the body back through the
    library's decoders: a fifth of the cost (3 us, not 14), which matters on every
    non-stream answer. ``headers`` is the caller's fresh dict: ``Content-Length`` is
    added to it."""
    library = _library(request)
    headers["Content-Length"] = str(len(body))
    response = library.Response(
        200, headers=headers, stream=library.ByteStream(body), request=request
    )
    response._content = body  # what ``read()`` keeps, and all it would do
    response.is_stream_consumed = response.is_closed = True
    return response


def _library(request: Any) -> Any:
    """The HTTP library a request is from (the response must be of the same)."""
    if httpx2 is not None and isinstance(request, httpx2.Request):
        return httpx2
    return httpx


class _TransportBase:
    """What both transport flavours share: reading requests and writing answers."""

    def __init__(self, source: Any, *, stash_errors: bool) -> None:
        self.source = source
        self.stash_errors = stash_errors

    def _json(
        self,
        request: Any,
        call: _Call,
        parsed: Any,
        retries: int = 0,
        upstream: Mapping[str, str] = {},
    ) -> Any:
        provider = getattr(parsed, "provider", None) or call.engine.primary_provider()
        headers = _front.success_headers(parsed, provider, retries, upstream)
        return json_response(request, headers, _front.json_body(parsed))

    def _answer(
        self, request: Any, call: _Call, result: Any
    ) -> tuple[Any, Optional[_responses_front.Keep]]:
        """An engine result as openai's JSON, or as its event stream (a Responses request's
        as a ``Response`` or Responses events); with the response to store before the
        answer is returned (an event stream's body stores its own, see `_EventBody`)."""
        parsed = result.parsed
        streamed = call.params.get("stream") and hasattr(parsed, "close")
        if not streamed:
            kept = None
            if call.responses is not None:
                if not call.responses.native:
                    completion = parsed.model_dump(mode="json", exclude_none=True)
                    parsed = _responses_front.answer(call.responses, completion)
                kept = _responses_front.to_keep(call.responses, parsed)
            answer = self._json(
                request, call, parsed, result.retries_taken, result.response.headers
            )
            return answer, kept
        headers = _front.stream_headers(
            result.response.headers,
            getattr(parsed, "request_id", None),
            getattr(parsed, "provider", None) or call.engine.primary_provider(),
            result.retries_taken,
        )
        _preload_openai_stream_errors()
        sync = isinstance(self, BridgeTransport)
        if call.responses is not None:
            events = _responses_front.event_stream(parsed, call.responses)
            body = _EventBody(events, call.store) if sync else _AsyncEventBody(events, call.store)
        else:
            body = _SSEBody(parsed) if sync else _AsyncSSEBody(parsed)
        response = _library(request).Response(200, headers=headers, stream=body, request=request)
        return response, None

    def _failure(self, error: BaseException, request: Any) -> Any:
        reported = _front.as_openai_error(error)
        if reported is None:
            raise error
        if not self.stash_errors and isinstance(reported, APIConnectionError):
            raise reported  # no status fits; openai passes OpenAIErrors through
        reply = _front.error_reply(reported)
        extensions = {_front.ERROR_EXTENSION: reported} if self.stash_errors else {}
        return _library(request).Response(
            reply.status,
            headers=reply.headers,
            content=reply.body,
            request=request,
            extensions=extensions,
        )


def _preload_openai_stream_errors() -> None:
    """Resolve ``anyio.EndOfStream`` now, while imports work.

    openai 3.x's stream iterator names it in an ``except`` clause, and anyio resolves it
    lazily (an import). A stream abandoned until the interpreter exits is closed when
    imports no longer work, and that import then prints a traceback at exit."""
    anyio = sys.modules.get("anyio")
    if anyio is not None:
        getattr(anyio, "EndOfStream", None)


class _Source:
    """What a streamed body reads, let go of as the body is closed.

    On Python 3.10 closing httpx's body iterators leaves them in reference cycles (its
    ``contextlib`` keeps each exception it re-raises in a cycle with its own frame), and
    those cycles hold the response, and so the body: holding on to the chat stream after
    closing would keep it, and all it refers to, for the garbage collector."""

    def __init__(self, source: Any) -> None:
        self._source: Optional[Any] = source

    def _take(self) -> Optional[Any]:
        """The source, once (None after the body was closed)."""
        source, self._source = self._source, None
        return source


class _SyncSource(_Source):
    def close(self) -> None:
        source = self._take()
        if source is not None:
            source.close()


class _AsyncSource(_Source):
    async def aclose(self) -> None:
        source = self._take()
        if source is not None:
            await source.close()


class _SSEBody(_SyncSource, *_SYNC_STREAM_BASES):  # type: ignore[misc]
    """A chat stream as OpenAI's server-sent events; closing it closes the provider's."""

    def __iter__(self) -> Iterator[bytes]:
        return _front.sse_lines(self._source) if self._source is not None else iter(())


class _AsyncSSEBody(_AsyncSource, *_ASYNC_STREAM_BASES):  # type: ignore[misc]
    """The asynchronous twin of `_SSEBody`."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._source is None:
            return
        async for chunk in self._source:
            yield _front.sse_events(chunk)
        yield _front.DONE_EVENT


class _EventBody(_SyncSource, *_SYNC_STREAM_BASES):  # type: ignore[misc]
    """Responses events (already framed) as a response body: the finished response the
    events hand over (a `Keep`) is stored before the frames that end it go out. Closing
    the body closes the chat."""

    def __init__(self, events: Any, store: Any) -> None:
        super().__init__(events)
        self._store = store

    def __iter__(self) -> Iterator[bytes]:
        if self._source is None:
            return
        for frame in self._source:
            if isinstance(frame, _responses_front.Keep):
                self._store.put(frame.response_id, frame.entry)
            else:
                yield frame


class _AsyncEventBody(_AsyncSource, *_ASYNC_STREAM_BASES):  # type: ignore[misc]
    """The asynchronous twin of `_EventBody` (the store is awaited)."""

    def __init__(self, events: Any, store: Any) -> None:
        super().__init__(events)
        self._store = store

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._source is None:
            return
        async for frame in self._source:
            if isinstance(frame, _responses_front.Keep):
                await self._store.aput(frame.response_id, frame.entry)
            else:
                yield frame


class BridgeTransport(_TransportBase, *_SYNC_TRANSPORT_BASES):  # type: ignore[misc]
    """The synchronous transport (``httpx.Client`` / ``httpx2.Client``)."""

    def handle_request(self, request: Any) -> Any:
        try:
            request.read()
            call = _Call(self.source, request)
            kind, store, wanted = call.endpoint.kind, call.store, call.stored_id
            stored: Any = None
            if wanted is not None:
                stored = store.delete(wanted) if call.deletes else store.get(wanted)
            if kind == "responses":
                call.read_responses(request, stored)
            if call.responses is not None and call.responses.native:
                result = call.engine.call("responses", call.params, call.options)
            elif kind in ("chat", "responses"):
                result = call.engine.chat(call.params, call.options)
            elif kind == "embeddings":
                result = call.engine.embed(call.params, call.options)
            else:
                return self._json(request, call, call.local_answer(str(request.url), stored))
            response, kept = self._answer(request, call, result)
            if kept is not None:
                store.put(kept.response_id, kept.entry)
            return response
        except Exception as error:
            return self._failure(error, request)

    def close(self) -> None:
        factory = self.source.factory
        if factory.owns_http:
            factory.http.close()


class AsyncBridgeTransport(_TransportBase, *_ASYNC_TRANSPORT_BASES):  # type: ignore[misc]
    """The asynchronous transport (``httpx.AsyncClient`` / ``httpx2.AsyncClient``)."""

    async def handle_async_request(self, request: Any) -> Any:
        try:
            await request.aread()
            call = _Call(self.source, request)
            kind, store, wanted = call.endpoint.kind, call.store, call.stored_id
            stored: Any = None
            if wanted is not None:
                stored = await (store.adelete(wanted) if call.deletes else store.aget(wanted))
            if kind == "responses":
                call.read_responses(request, stored)
            if call.responses is not None and call.responses.native:
                result = await call.engine.call("responses", call.params, call.options)
            elif kind in ("chat", "responses"):
                result = await call.engine.chat(call.params, call.options)
            elif kind == "embeddings":
                result = await call.engine.embed(call.params, call.options)
            else:
                return self._json(request, call, call.local_answer(str(request.url), stored))
            response, kept = self._answer(request, call, result)
            if kept is not None:
                await store.aput(kept.response_id, kept.entry)
            return response
        except Exception as error:
            return self._failure(error, request)

    async def aclose(self) -> None:
        factory = self.source.factory
        if factory.usage is not None:
            await factory.usage.drain()  # (an async on_usage's last records)
        if factory.owns_http:
            await factory.http.aclose()


# --------------------------------------------------------------------------- factories


class EngineFactory:
    """Makes the engines of one front client: one upstream HTTP client, one usage ledger.

    The upstream client is the caller's ``http_client`` (never closed here) or a default
    one the factory owns and the transport closes."""

    def __init__(
        self,
        engine_class: Union[type[SyncEngine], type[AsyncEngine]],
        *,
        http_client: Union[httpx.Client, httpx.AsyncClient, None],
        timeout: Any,
        max_retries: int,
        secret_key: Optional[str] = None,
        on_usage: Optional[Callable[[UsageRecord], Any]] = None,
        usage: Optional[UsageLedger] = None,
    ) -> None:
        from ._engine import SyncEngine as _SyncEngine
        from ._http_clients import DEFAULT_TIMEOUT, DefaultAsyncHttpxClient, DefaultHttpxClient
        from ._upstream import upstream_client

        self.engine_class = engine_class
        self.timeout = DEFAULT_TIMEOUT if timeout is None else checked_timeout(timeout)
        self.max_retries = max_retries
        self.secret_key = secret_key
        self.on_usage = on_usage
        self.usage = usage
        sync = issubclass(engine_class, _SyncEngine)
        http_client = upstream_client(http_client, sync=sync)
        self.owns_http = http_client is None
        if http_client is None:
            make = DefaultHttpxClient if sync else DefaultAsyncHttpxClient
            http_client = make(timeout=self.timeout)
        self.http: Any = http_client  # (the flavour matches engine_class)

    def __call__(
        self,
        config: Config,
        *,
        provider: Optional[str],
        api_key: Optional[str],
        base_url: Optional[str],
        secret_key: Optional[str] = None,
    ) -> Any:
        engine = self.engine_class(
            config,
            http_client=self.http,
            provider=provider,
            api_key=api_key,
            secret_key=secret_key,
            base_url=base_url,
            timeout=self.timeout,
            max_retries=self.max_retries,
            default_headers=None,
            default_query=None,
            on_usage=self.on_usage,
            usage=self.usage,
        )
        self.usage = engine.usage  # the first engine's ledger serves the rest
        return engine


def _http_client(
    flavour: str,
    *,
    config: Any = None,
    provider: Optional[str] = None,
    http_client: Any = None,
    timeout: Any = None,
    max_retries: int = 2,
    on_usage: Optional[Callable[[UsageRecord], Any]] = None,
    library: Optional[str] = None,
) -> Any:
    from ._config import Config, load_config
    from ._engine import AsyncEngine, SyncEngine

    lib = client_library(library)
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ValueError(f"max_retries must be a non-negative integer, got {max_retries!r}")
    if timeout is not None:
        timeout = checked_timeout(timeout)
    resolved = config if isinstance(config, Config) else load_config(config)
    make = EngineFactory(
        SyncEngine if flavour == "sync" else AsyncEngine,
        http_client=http_client,
        timeout=timeout,
        max_retries=max_retries,
        on_usage=on_usage,
    )
    source = RoutedEngines(make, resolved, provider)
    if flavour == "sync":
        return front_client(lib, BridgeTransport(source, stash_errors=False), sync=True)
    return front_client(lib, AsyncBridgeTransport(source, stash_errors=False), sync=False)


def checked_timeout(timeout: Any) -> Any:
    """``timeout`` (seconds, or an ``httpx.Timeout``), or a ``ValueError`` naming it when a
    figure is not a positive number: httpx would refuse it on every request instead.

    An ``httpx2.Timeout`` (openai 3.x's ``openai.Timeout``, which openai's documentation
    passes as ``timeout=``) comes back as the ``httpx.Timeout`` of the same figures: the
    engine's provider clients are httpx's, which take no other library's timeout."""
    if httpx2 is not None and isinstance(timeout, httpx2.Timeout):
        timeout = httpx.Timeout(**timeout.as_dict())
    seconds = list(timeout.as_dict().values()) if isinstance(timeout, httpx.Timeout) else [timeout]
    if any(
        isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0
        for value in seconds
        if value is not None
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds, an httpx.Timeout of such, or "
            f"None for the default; got {timeout!r}"
        )
    return timeout


def client_library(library: Optional[str]) -> Any:
    """The HTTP library to build a front client with: the one openai uses by default."""
    if library is None:
        library = "httpx2" if openai_uses_httpx2() else "httpx"
    if library == "httpx":
        return httpx
    if library == "httpx2":
        if httpx2 is None:
            raise OpenAIError('library="httpx2" needs the httpx2 package (openai 3.x brings it)')
        return httpx2
    raise ValueError(f'library must be "httpx" or "httpx2", got {library!r}')


def openai_uses_httpx2() -> bool:
    import openai

    return httpx2 is not None and int(openai.__version__.split(".", 1)[0]) >= 3


def http_client(
    *,
    config: Any = None,
    provider: Optional[str] = None,
    http_client: Optional[httpx.Client] = None,
    timeout: Any = None,
    max_retries: int = 2,
    on_usage: Optional[Callable[[UsageRecord], Any]] = None,
    library: Optional[str] = None,
) -> Any:
    """An HTTP client for ``openai.OpenAI(http_client=...)`` that goes through llm-bridge.

    Requests to a known provider root keep going there, with every quirk handled;
    anything else is routed by the config (aliases, ``provider/model``) or to
    ``provider``. ``http_client`` carries the upstream traffic (proxies, TLS, test
    transports); ``max_retries`` and ``timeout`` govern the provider calls (the openai
    client's own retries are switched off per response). ``library`` is ``"httpx2"``
    (openai 3.x's default) or ``"httpx"``.
    """
    return _http_client("sync", **locals())


def async_http_client(
    *,
    config: Any = None,
    provider: Optional[str] = None,
    http_client: Optional[httpx.AsyncClient] = None,
    timeout: Any = None,
    max_retries: int = 2,
    on_usage: Optional[Callable[[UsageRecord], Any]] = None,
    library: Optional[str] = None,
) -> Any:
    """`http_client` for ``openai.AsyncOpenAI``."""
    return _http_client("async", **locals())
