"""The gateway: an ASGI application in front of the same transport the openai client uses.

A request arrives as ASGI; the gateway checks what is the gateway's business (the key,
the model it may use, its limits and budget, the body's size), then builds an
``httpx.Request`` of the OpenAI call and hands it to `AsyncBridgeTransport`, the transport
``llm_bridge.async_http_client()`` gives openai. Whatever that answers (OpenAI JSON, SSE,
an OpenAI-shaped error) is streamed back chunk by chunk. So every translation, retry,
fallback and error mapping is the one the Python clients get; nothing is done twice.

Why plain ASGI and no framework: the gateway has ten routes and one handler shape, and
the transport already speaks OpenAI's wire, so a framework would add a request and a
response object per call (and an import) for nothing the gateway uses.

Per request:

1. ``/v1/...`` needs a gateway key (``Authorization: Bearer`` or ``api-key``): its SHA-256
   is compared with every configured digest in constant time. 401 otherwise.
2. The body is read up to ``max_body_bytes`` (413), parsed (400), its ``model`` checked
   against the key's patterns (403, naming them), and for a key with a budget against
   the prices the gateway knows (403: a model without a price would cost it nothing).
3. ``rpm`` takes one unit from the key's window, ``tpm`` an estimate of the tokens
   (`llm_bridge.tokens`), ``monthly_budget_cny`` reserves an upper estimate of the cost in
   the `GatewayState`; any refusal is a 429 (``insufficient_quota`` for the budget).
4. The transport answers; the engine's usage callback reports each provider call's usage
   to the request that caused it, through a `contextvars.ContextVar` (streams report when
   they end, while the gateway's task iterates them, so the context is still there).
5. The budget is settled with the actual cost, the tpm window charged what the call used
   beyond its estimate (past the limit if need be: it was used), a `LedgerEntry` written,
   metrics counted. An in-memory state starts each month's budgets from the SQLite
   ledger (`GatewayApp.startup`), so a restart hands out no second budget; a SQLite
   state keeps its budgets in its file and takes from the ledger only what was spent
   before the file existed, once.

A client that disconnects cancels the task that talks to the provider: the upstream
request (or stream) is closed, and the ledger records what was used (status 499).

``/dashboard`` (the usage dashboard, for keys with ``admin = true``) is `_dashboard`'s: this
module only routes to it and lends it the key check (`GatewayApp.key_of`).
"""

from __future__ import annotations

import asyncio
import calendar
import contextvars
import hashlib
import hmac
import json
import logging
import math
import time
import uuid
from collections.abc import Awaitable, Iterable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import httpx

from .. import _front
from .._config import Config
from .._errors import InternalServerError, OpenAIError
from .._response_store import AsyncResponseStore, StoredResponse, default_store
from .._responses import RESPONSES_PARAMS
from .._transport import AsyncBridgeTransport, EngineChoice, EngineFactory
from ..adapters._params import CHAT_PARAMS, EMBEDDING_PARAMS
from ..usage import UsageRecord
from ._asgi import BodyTooLarge, ClientGone, ClientStalled, read_body
from ._config import DEFAULT_LEDGER, GatewayConfig, KeySpec
from ._dashboard import Dashboard, route_of
from ._failover import StateUnavailable
from ._key_store import KeyScopedStore
from ._ledger import NullLedger, SQLiteLedger, spend_by_key
from ._memory import MemoryState
from ._metrics import Metrics
from ._sqlite_responses import SQLiteResponseStore
from ._sqlite_state import SQLiteState, shared_file
from ._sqlite_state import open_state as open_sqlite_state
from ._sqlite_tokens import SQLiteTokenShare
from ._state import (
    IN_PROGRESS,
    GatewayState,
    LedgerEntry,
    LedgerSink,
    give_back_entry,
    take_entry,
)

__all__ = ["GatewayApp"]

log = logging.getLogger("llm_bridge.gateway")

if TYPE_CHECKING:
    from ._redis_tokens import RedisTokenShare

#: The request being answered in this task (the engine's usage callback reads it).
_current: contextvars.ContextVar[Optional[_Exchange]] = contextvars.ContextVar(
    "llm_bridge_gateway_request", default=None
)

#: The URL the transport sees: fixed, so neither the client's Host header nor its path
#: prefix can steer routing (the config alone routes).
_INTERNAL_ORIGIN = "http://gateway.llm-bridge.internal"


def _forwarded(name: str) -> bool:
    """Whether a client's request header reaches the provider: only what shapes the body
    (``content-type``, ``accept``) and DashScope's own ``x-dashscope-*`` options, but for
    those that are the gateway's to decide. Clients send their own tracking (Codex:
    session, thread and installation ids), and the gateway's keys and hop-by-hop headers
    are the gateway's."""
    if name.startswith("x-dashscope-"):
        return name not in _DASHSCOPE_GATEWAYS
    return name in _FORWARDED_REQUEST


#: DashScope headers a client may not set through the gateway: whether the answer is
#: streamed (the engine asks for a stream when the body does, and reads what it asked
#: for: a stream it did not ask for would be generated and billed, and then refused), an
#: asynchronous task (no answer to read), and the workspace billed (the config's).
_DASHSCOPE_GATEWAYS = frozenset({"x-dashscope-sse", "x-dashscope-async", "x-dashscope-workspace"})


#: Request headers forwarded to the provider as they are.
_FORWARDED_REQUEST = frozenset({"content-type", "accept"})

#: Response headers the server frames itself.
_DROPPED_RESPONSE = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})

#: Completion tokens assumed for a model without a known maximum, when a request sets none.
_DEFAULT_MAX_OUTPUT = 4096
#: Prompt tokens assumed for one image or audio clip, whatever the size of its data: an
#: upper estimate at the providers' default resolution limits (Qwen-VL's images are 4 to
#: 1280 tokens by default, GLM-4V's about 1600); trued up when the call ends. UNSURE
#: (docs/unsure.md X4) for high-resolution modes, which may take more.
_MEDIA_TOKENS = 4096
#: UTF-8 bytes per token assumed when a request's prompt is estimated from its length:
#: an upper estimate for the providers' vocabularies on Chinese (about 3 bytes a token, a
#: common character being one token or less) and on English (about 4 bytes a token).
_BYTES_PER_TOKEN = 2.5

_JSON = [(b"content-type", b"application/json")]

#: What a page may read of an answer besides the CORS-safelisted headers.
_EXPOSED = (
    b"access-control-expose-headers",
    b"x-request-id, x-llm-bridge-gateway-request-id, x-llm-bridge-provider, "
    b"x-llm-bridge-retries, x-should-retry, retry-after",
)


class _Exchange:
    """One gateway request's facts, for the ledger, the metrics and the budget."""

    __slots__ = (
        "error_code",
        "key",
        "model",
        "previous",
        "provider",
        "records",
        "request_id",
        "route",
        "status",
        "upstream_model",
    )

    def __init__(self, route: str) -> None:
        self.request_id = "gw-" + uuid.uuid4().hex
        self.route = route
        self.key: Optional[KeySpec] = None
        self.model = ""
        self.provider: Optional[str] = None
        self.upstream_model: Optional[str] = None
        self.status = 500
        self.error_code: Optional[str] = None
        self.records: list[UsageRecord] = []
        #: The stored response a Responses continuation names, as read for its checks.
        self.previous: Optional[tuple[str, StoredResponse]] = None


class _GatewayError(Exception):
    """An answer the gateway gives itself (auth, limits, bad input)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str,
        code: Optional[str],
        param: Optional[str] = None,
        headers: Optional[dict[str, str]] = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return json.dumps({"error": error}, ensure_ascii=False).encode()


class _GatewayEngines:
    """The transport's engine source for the gateway: one engine, routed by the config
    alone (never by the request's host, and never with a key from the request)."""

    def __init__(self, factory: EngineFactory, config: Config, store: AsyncResponseStore) -> None:
        self.factory = factory
        self.shared_store = store  # every key's stored Responses
        self.engine = factory(config, provider=None, api_key=None, base_url=None)
        self._choice = EngineChoice(self.engine, "/v1")

    @property
    def store(self) -> AsyncResponseStore:
        """The stored Responses the request being answered may see: its key's own (the
        transport reads this per request, `_transport.store_of`)."""
        exchange = _current.get()
        if exchange is None or exchange.key is None:
            return self.shared_store
        return KeyScopedStore(self.shared_store, exchange.key.name, exchange.previous)

    def choose(self, request: Any) -> EngineChoice:
        return self._choice


def _canonical(path: str) -> bool:
    """Whether a (decoded) request path reads back as itself when parsed as a URL: no
    ``.`` or ``..`` segments, no empty ones (``//``), no ``?`` or ``#`` (sent as %3F or
    %23). Any other path could be counted under one route (`_route_of`: its model,
    budget and limit checks) and served as another, which a URL parser normalises it to."""
    segments = path.split("/")[1:]
    if segments and segments[-1] == "":
        segments.pop()  # (a trailing slash)
    return "?" not in path and "#" not in path and all(s not in ("", ".", "..") for s in segments)


def _route_of(path: str) -> tuple[str, Optional[tuple[str, ...]]]:
    """The route template a ``/v1`` path is counted under, and the methods it takes (None:
    the transport decides, naming the API it does not serve)."""
    rest = path.strip("/").split("/")[1:]
    head = rest[0] if rest else ""
    if rest == ["chat", "completions"]:
        return "/v1/chat/completions", ("POST",)
    if rest == ["embeddings"]:
        return "/v1/embeddings", ("POST",)
    if rest == ["responses"]:
        return "/v1/responses", ("POST",)
    if head == "responses" and len(rest) == 2:
        return "/v1/responses/{id}", ("GET", "DELETE")
    if head == "responses" and len(rest) == 3 and rest[2] == "input_items":
        return "/v1/responses/{id}/input_items", ("GET",)
    if rest == ["models"]:
        return "/v1/models", ("GET",)
    if head == "models" and len(rest) > 1:
        return "/v1/models/{id}", ("GET",)
    return "/v1/other", None


_BODY_ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "responses",
}


def _public_source(source: str) -> str:
    """How the gateway's answers (errors, ``/readyz``) name its config: a file by its name
    alone, as where the server keeps it is nobody's business but the operator's; a
    config without a file says so (rather than naming the server's working directory)."""
    if source == "<mapping>":
        return source
    if source == "defaults":
        return "no config file"
    return Path(source).name


class GatewayApp:
    """The ASGI application (`create_app` builds it from a config)."""

    def __init__(
        self,
        config: Config,
        gateway: GatewayConfig,
        *,
        http_client: Optional[httpx.AsyncClient] = None,
        state: Optional[GatewayState] = None,
        ledger: Optional[LedgerSink] = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from .._engine import AsyncEngine, _import_callback

        self.config = config.shown_as(_public_source(config.source))
        self.gateway = gateway
        self.clock = clock
        self.metrics = Metrics()
        self._user_on_usage = _import_callback(config.on_usage)
        self._own_http: Optional[httpx.AsyncClient] = None
        if http_client is None and gateway.upstream == "aiohttp":
            http_client = self._own_http = _aiohttp_upstream(gateway)
        factory = EngineFactory(
            AsyncEngine,
            http_client=http_client,
            timeout=gateway.timeout,
            max_retries=gateway.max_retries,
            on_usage=self._on_usage,
        )
        self.state: GatewayState = state if state is not None else open_state(gateway)
        self._own_state = state is None  # (a state handed in holds its own budgets)
        shared = shared_file(self.state)
        self.engines = _GatewayEngines(factory, self.config, open_response_store(gateway, shared))
        self.transport = AsyncBridgeTransport(self.engines, stash_errors=False)
        self.ledger: LedgerSink = ledger if ledger is not None else open_ledger(gateway)
        # Workers and replicas fetch provider tokens (Qianfan's) once between them.
        self.token_share = open_token_share(gateway, shared)
        self.engines.engine.token_share = self.token_share
        self._digests = [(key.digest, key) for key in gateway.keys]
        self.dashboard = Dashboard(self)
        self._closed = False
        self._inflight = 0  # requests not yet accounted for (shutdown waits for them)

    # ------------------------------------------------------------------ ASGI

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # no websocket APIs: refuse the handshake
            await send({"type": "websocket.close", "code": 1003})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as error:  # the server reports it and exits
                    await send({"type": "lifespan.startup.failed", "message": str(error)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        """The server's lifespan hook: restore this month's budgets from the ledger when
        they live in this process's memory. (No vocabulary is loaded: limits and budgets
        estimate prompts by length.)"""
        await self._restore_budgets()

    async def _restore_budgets(self) -> None:
        """Start an in-memory state's monthly budgets from what the SQLite ledger says each
        key spent this month (UTC), so that restarting the gateway (a deploy, a crash)
        does not give every key its whole budget again. A SQLite state keeps its budgets
        in its file: it is given only what the ledger holds from before the file was
        created, and only once for all the processes sharing it (`_seed_shared`). A Redis
        state keeps its budgets in Redis; a state handed to the app is taken as it is."""
        if not self._own_state or not isinstance(self.ledger, SQLiteLedger):
            return
        budgeted = {key.name for key in self.gateway.keys if key.monthly_budget_cny is not None}
        if not budgeted:
            return
        period = self._period()
        shared = shared_file(self.state)
        if shared is not None:
            await self._seed_shared(shared, self.ledger, period)
            return
        if not isinstance(self.state, MemoryState):
            return
        start, end = _month_bounds(period)
        spent = await asyncio.to_thread(spend_by_key, self.ledger.path, since=start, until=end)
        for name, cost in spent.items():
            if name in budgeted and cost > 0:
                await self.state.settle(name, period, reserved=Decimal(0), actual=cost)

    async def _seed_shared(self, state: SQLiteState, ledger: SQLiteLedger, period: str) -> None:
        """Add to a SQLite state's budgets of ``period`` what the ledger says each key
        spent in it before the state's file was created. Its later spend is in the file
        already (the ledger would count it twice), and the `SQLiteState.seed` of the first
        worker to get there marks the period, so the others add nothing."""
        try:
            if await state.seeded(period):
                return
            start, end = _month_bounds(period)
            until = min(end, state.created)
            spent: dict[str, Decimal] = {}
            if until > start:
                spent = await asyncio.to_thread(spend_by_key, ledger.path, since=start, until=until)
            await state.seed(period, {name: cost for name, cost in spent.items() if cost > 0})
        except StateUnavailable as down:  # the gateway still serves (state_failure decides)
            log.warning(
                "gateway: this month's budgets from the ledger could not be added to the "
                "shared state yet (they will be with its next write that succeeds): %s",
                down,
            )

    async def shutdown(self) -> None:
        """Flush the ledger and close the state store and the upstream client (once)."""
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + 5.0  # requests the server cancelled write their rows
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        try:
            await self.ledger.flush()
            await self.ledger.close()
        finally:
            try:
                await self.state.close()
                await self.engines.shared_store.aclose()  # (the in-process store: nothing to do)
            finally:
                try:
                    await self.transport.aclose()
                finally:
                    if self._own_http is not None:
                        await self._own_http.aclose()
                    if self.token_share is not None:
                        await self.token_share.close()

    async def _http(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, method = scope["path"], scope["method"]
        if method == "HEAD" and _serves_get(path):  # a GET's headers (HTTP requires HEAD)
            scope, send, method = {**scope, "method": "GET"}, _headless(send), "GET"
        if path == "/v1" or path.startswith("/v1/"):
            if method == "OPTIONS" and _header(scope, b"access-control-request-method"):
                await self._preflight(scope, send)
                return
            await self._api(scope, receive, send)
            return
        if path == "/dashboard" or path.startswith("/dashboard/"):
            started = time.perf_counter()
            self.metrics.started()
            status = 500
            try:
                status = await self.dashboard.handle(scope, receive, send)
            finally:
                self.metrics.finished(
                    route=route_of(path), status=status, seconds=time.perf_counter() - started
                )
            return
        if path in ("/healthz", "/readyz", "/metrics"):
            started = time.perf_counter()
            self.metrics.started()
            status = 405
            try:
                if method != "GET":
                    error = _method_not_allowed(method, path, ("GET",))
                    await _send_error(send, error)
                elif path == "/healthz":
                    status = 200
                    await _send(send, 200, _JSON, b'{"status":"ok"}')
                elif path == "/readyz":
                    status = await self._ready(send)
                else:
                    status = 200
                    text = self.metrics.render().encode()
                    headers = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")]
                    await _send(send, 200, headers, text)
            finally:
                self.metrics.finished(
                    route=path, status=status, seconds=time.perf_counter() - started
                )
            return
        self.metrics.started()
        try:
            await _send_error(send, _unknown_url(method, path))
        finally:
            self.metrics.finished(route="other", status=404, seconds=0.0)

    async def _ready(self, send: Any) -> int:
        try:
            reachable = await asyncio.wait_for(self.state.ping(), 5.0)
        except Exception:
            reachable = False
        # With state_failure = "open" an unreachable store degrades limits to this process
        # but the replica still serves: it stays in the load balancer, reported degraded.
        degraded = not reachable and getattr(self.state, "mode", None) == "open"
        status = 200 if (reachable or degraded) and not self._closed else 503
        body = {
            "status": "degraded" if degraded else "ready" if status == 200 else "unavailable",
            "config": self.config.source,
            "state": "ok" if reachable else "unreachable",
        }
        await _send(send, status, _JSON, json.dumps(body).encode())
        return status

    def _cors(self, scope: dict[str, Any]) -> list[tuple[bytes, bytes]]:
        """The CORS headers of an answer to a page of ``Origin`` (none when the request
        names no origin, or one ``cors_origins`` does not allow)."""
        origin = _header(scope, b"origin")
        allowed = self.gateway.cors_origins
        if origin is None or not allowed:
            return []
        if "*" in allowed:
            return [(b"access-control-allow-origin", b"*"), _EXPOSED]
        if origin.decode("latin-1").lower() not in allowed:
            return []
        return [(b"access-control-allow-origin", origin), (b"vary", b"origin"), _EXPOSED]

    async def _preflight(self, scope: dict[str, Any], send: Any) -> None:
        """A browser's CORS preflight (``OPTIONS`` naming the method it means to send):
        answered without a key, as browsers send none with it."""
        self.metrics.started()
        headers = self._cors(scope)
        if headers:
            wanted = _header(scope, b"access-control-request-headers")
            headers += [
                (b"access-control-allow-methods", b"GET, POST, DELETE, OPTIONS"),
                (b"access-control-allow-headers", wanted or b"authorization, content-type"),
                (b"access-control-max-age", b"600"),
            ]
        try:
            await _send(send, 204, headers, b"")
        finally:
            self.metrics.finished(route="preflight", status=204, seconds=0.0)

    # ------------------------------------------------------------------ the API

    async def _api(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        route, methods = _route_of(scope["path"])
        exchange = _Exchange(route)
        send = _stamped(send, exchange.request_id, self._cors(scope))
        started = time.perf_counter()
        self.metrics.started()
        token = _current.set(exchange)
        self._inflight += 1
        try:
            try:
                await self._serve(scope, receive, send, exchange, methods)
            except StateUnavailable as down:  # state_failure = "closed" and the store is down
                raise _GatewayError(
                    503,
                    f"the gateway's shared state store is unreachable ({down}); with "
                    f'[gateway] state_failure = "closed" requests are refused until it '
                    f"answers again",
                    type="server_error",
                    code="state_unavailable",
                    headers={"Retry-After": "1"},
                ) from None
        except _GatewayError as error:
            exchange.status, exchange.error_code = error.status, error.code or str(error.status)
            await _send_error(send, error)
        except ClientGone:
            exchange.status, exchange.error_code = 499, "client_disconnected"
        except ClientStalled:
            exchange.status, exchange.error_code = 499, "client_stalled"
            log.warning(
                "%s: the client read none of its stream for %g s (client_write_timeout): "
                "connection given up",
                exchange.request_id,
                self.gateway.client_write_timeout,
            )
        except asyncio.CancelledError:  # the server gave up on it (shutdown grace over)
            exchange.status, exchange.error_code = 503, "server_shutdown"
            raise
        finally:
            _current.reset(token)
            seconds = time.perf_counter() - started
            self.metrics.finished(
                route=route,
                status=exchange.status,
                seconds=seconds,
                provider=exchange.provider,
                error_code=exchange.error_code,
            )
            try:
                if exchange.key is not None:
                    await self._account(exchange, seconds)
            finally:
                self._inflight -= 1

    async def _serve(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        exchange: _Exchange,
        methods: Optional[tuple[str, ...]],
    ) -> None:
        headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
        key = self._authenticate(headers)
        exchange.key = key
        method, path = scope["method"], scope["path"]
        if not _canonical(path):
            raise _unknown_url(method, path)
        if methods is not None and method not in methods:
            raise _method_not_allowed(method, path, methods)
        body = await _read_body(receive, headers, self.gateway.max_body_bytes)
        kind = _BODY_ROUTES.get(exchange.route)
        params: dict[str, Any] = {}
        if kind is not None:
            params = _parse_body(body)
            _refuse_provider_envelope(kind, params)
            exchange.model = params["model"]
        elif exchange.route == "/v1/models/{id}":
            exchange.model = path.split("/", 3)[3]
            if len(exchange.model) > MAX_MODEL_NAME:  # (no such model: see `_parse_body`)
                exchange.model = exchange.model[:MAX_MODEL_NAME]
                raise _GatewayError(
                    404,
                    f"No model has a name over {MAX_MODEL_NAME} characters.",
                    type="invalid_request_error",
                    code="model_not_found",
                    param="model",
                )
        routes = self._routes(exchange.model) if exchange.model else ()
        if exchange.model and not key.allows(exchange.model, routes):
            raise _model_not_allowed(key, exchange.model, retrieved=kind is None)
        if key.monthly_budget_cny is not None:
            self._check_priced(key, routes, retrieved=kind is None)
        reservation = await self._admit(key, kind, params, routes, exchange) if kind else None
        try:
            try:
                # A call's query would be passed on to the provider's URL (an Azure
                # client's api-version, or a value of the provider's own, such as
                # Qianfan v1's access_token): only the gateway's own routes read one.
                query = b"" if kind is not None else scope.get("query_string") or b""
                url = httpx.URL(_INTERNAL_ORIGIN + path, query=query)
            except httpx.InvalidURL:  # control characters in the path: no such API
                raise _unknown_url(method, path.encode("unicode_escape").decode()) from None
            request = httpx.Request(
                method,
                url,
                headers=[(k, v) for k, v in headers if _forwarded(k) and v.isascii()],
                content=body,
            )
            if getattr(self.ledger, "records_in_progress", False):
                await self.ledger.write(self._entry(exchange, 0.0, in_progress=True))
            await _until_disconnect(receive, self._answer(request, send, exchange))
        finally:
            if reservation is not None:
                await self._settle(key, reservation, exchange)

    def _authenticate(self, headers: list[tuple[str, str]]) -> KeySpec:
        presented = None
        for name, value in headers:
            if name == "authorization":
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    presented = token.strip()
            elif name == "api-key" and value.strip() and presented is None:
                presented = value.strip()
        found = self.key_of(presented) if presented is not None else None
        if found is not None:
            return found
        raise _GatewayError(
            401,
            "Incorrect or missing gateway key. Send it as 'Authorization: Bearer <key>' (the "
            "openai clients' api_key) or an 'api-key' header.",
            type="invalid_request_error",
            code="invalid_api_key",
        )

    def key_of(self, presented: str) -> Optional[KeySpec]:
        """The configured key whose text ``presented`` is, or None. Its SHA-256 is compared
        with every configured digest (all of them, in constant time), so neither the answer
        nor its timing tells how much of a key was right."""
        digest = hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest()
        found = None
        for known, spec in self._digests:
            if hmac.compare_digest(known, digest):
                found = spec
        return found

    def _routes(self, model: str) -> tuple[str, ...]:
        try:
            return tuple(f"{r.provider}/{r.model}" for r in self.engines.engine.routes(model))
        except OpenAIError:  # an unknown model: the transport answers with 404
            return ()

    # ------------------------------------------------------------------ answering

    async def _answer(self, request: httpx.Request, send: Any, exchange: _Exchange) -> None:
        """The transport's answer, relayed as it comes (runs in a task a disconnect
        cancels)."""
        try:
            response = await self.transport.handle_async_request(request)
        except Exception as error:
            await self._send_failure(send, exchange, error)
            return
        watch: Optional[_StallWatch] = None
        try:
            exchange.status = response.status_code
            exchange.provider = response.headers.get("x-llm-bridge-provider") or exchange.provider
            headers = [
                (k.encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.multi_items()
                if k.lower() not in _DROPPED_RESPONSE
            ]
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                content = await response.aread()
                if response.status_code == 401:  # the provider refused the gateway's key
                    exchange.status, content = 502, _provider_refused(content, "credentials")
                elif response.status_code == 429 and (
                    _error_object(content).get("code") == "insufficient_quota"
                ):
                    exchange.status, content = 502, _provider_refused(content, "quota")
                if response.status_code >= 400:
                    _note_error(exchange, content)
                elif exchange.route == "/v1/models":
                    content = self._visible_models(content, exchange.key)
                headers.append((b"content-length", str(len(content)).encode()))
                await send(
                    {"type": "http.response.start", "status": exchange.status, "headers": headers}
                )
                await send({"type": "http.response.body", "body": content})
                return
            await send(
                {"type": "http.response.start", "status": exchange.status, "headers": headers}
            )
            watch = _StallWatch(self.gateway.client_write_timeout)
            try:
                async for chunk in response.aiter_raw():
                    piece = {"type": "http.response.body", "body": chunk, "more_body": True}
                    await watch.send(send, piece)
            except ClientStalled:
                raise
            except Exception as error:  # broke mid-stream: the client gets an error event
                reported = _front.as_openai_error(error) or _internal(error)
                reply = _front.error_reply(reported)
                exchange.status = reply.status
                _note_error(exchange, reply.body)
                event = b"data: " + reply.body + b"\n\n"
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            if watch is not None:
                watch.close()
            await response.aclose()

    async def _send_failure(self, send: Any, exchange: _Exchange, error: Exception) -> None:
        """A provider that could not be reached (or an error of ours) as OpenAI's error."""
        reported = _front.as_openai_error(error) or _internal(error)
        reply = _front.error_reply(reported)
        exchange.status = reply.status
        _note_error(exchange, reply.body)
        headers = [(k.encode(), v.encode()) for k, v in reply.headers.items()]
        await _send(send, reply.status, headers, reply.body)

    def _visible_models(self, content: bytes, key: Optional[KeySpec]) -> bytes:
        """The model list filtered to what the key may use."""
        if key is None or (key.models == ("*",) and key.monthly_budget_cny is None):
            return content  # (a budget hides the unpriced models: `_listed`)
        page = json.loads(content)
        page["data"] = [entry for entry in page.get("data", []) if self._listed(entry, key)]
        return json.dumps(page, ensure_ascii=False).encode()

    def _listed(self, entry: dict[str, Any], key: KeySpec) -> bool:
        """Whether the model list shows ``entry`` to ``key``: by the check a request for
        it passes (`_serve`), so its routes decide (an alias, ``owned_by`` the
        ``llm-bridge-alias``, is listed for ``zhipu/*`` when it routes to Zhipu)."""
        name = entry["id"]
        routes = self._routes(name) or (f"{entry['owned_by']}/{name}",)
        if not key.allows(name, routes):
            return False
        return key.monthly_budget_cny is None or not self._unpriced(routes)

    # ------------------------------------------------------------------ limits and usage

    def _on_usage(self, record: UsageRecord) -> None:
        """The engine's usage callback: each provider call's usage, to its request."""
        exchange = _current.get()
        if exchange is not None:
            exchange.records.append(record)
        if self._user_on_usage is not None:
            self._user_on_usage(record)

    async def _reserve(
        self,
        key: KeySpec,
        kind: str,
        params: dict[str, Any],
        routes: tuple[str, ...],
        exchange: _Exchange,
    ) -> Optional[_Reservation]:
        """Take the request's estimate from the key's ``tpm`` window and budget, if it has
        them: the request's own, plus the stored conversation a Responses request
        continues (found by `_check_previous`), which the provider is sent and bills too,
        so a one-word continuation of a long conversation is not estimated at one word."""
        if key.tpm is None and key.monthly_budget_cny is None:
            return None
        previous = exchange.previous
        carried = _prompt_tokens({"messages": previous[1].messages}) if previous else 0
        estimate = _estimate(self.config, self.engines.engine, kind, params, routes, carried)
        reservation = _Reservation(self._period(), estimate)
        if key.tpm is not None:
            wait, entry = await take_entry(
                self.state, f"tpm:{key.name}", limit=key.tpm, window=60.0, amount=estimate.tokens
            )
            if wait > 0:
                raise _rate_limited(key, "tokens", key.tpm, wait, estimate.tokens)
            reservation.tokens = estimate.tokens
            reservation.entry = entry
        if key.monthly_budget_cny is not None:
            try:
                await self._reserve_budget(key, key.monthly_budget_cny, reservation)
            except _GatewayError:  # refused: the tokens just taken were never used
                if reservation.tokens and key.tpm is not None:
                    await give_back_entry(
                        self.state,
                        f"tpm:{key.name}",
                        window=60.0,
                        amount=reservation.tokens,
                        entry=reservation.entry,
                    )
                raise
        return reservation

    async def _admit(
        self,
        key: KeySpec,
        kind: str,
        params: dict[str, Any],
        routes: tuple[str, ...],
        exchange: _Exchange,
    ) -> Optional[_Reservation]:
        """Count a model call (``kind``: chat, embeddings, responses) against the key's
        ``rpm``, and reserve its tokens and cost (`_reserve`). Only model calls count, as
        with OpenAI's limits: a chat UI that reloads the model list often does not spend
        its chat requests on it. A call refused here (its tokens, its budget, an unknown
        conversation) gives its request back: nothing was sent."""
        entry: Optional[str] = None
        if key.rpm is not None:
            wait, entry = await take_entry(
                self.state, f"rpm:{key.name}", limit=key.rpm, window=60.0, amount=1
            )
            if wait > 0:
                raise _rate_limited(key, "requests", key.rpm, wait)
        try:
            if kind == "responses":
                await self._check_previous(params, exchange)
            return await self._reserve(key, kind, params, routes, exchange)
        except _GatewayError:
            if key.rpm is not None:
                await give_back_entry(
                    self.state, f"rpm:{key.name}", window=60.0, amount=1, entry=entry
                )
            raise

    async def _check_previous(self, params: dict[str, Any], exchange: _Exchange) -> None:
        """Find the stored response a Responses request continues (``previous_response_id``)
        in the key's own store, for the estimate (`_reserve`) and the transport (read
        once: `KeyScopedStore`). The store down: nothing here; the transport reports it
        as the call's error.

        An id the key's store does not hold is refused here (400
        ``previous_response_not_found``), whatever the model. The SDK passes such an id
        on to a provider that serves the Responses API itself, where the caller's account
        may still hold the conversation; behind the gateway that account is the gateway's,
        holding every key's conversations, and passing the id on would let one key
        continue another's. While the shared store is unreachable an id it may hold is
        not refused but answered 503, to be retried (openai's clients do)."""
        previous = params.get("previous_response_id")
        if not isinstance(previous, str):
            return
        store = self.engines.store
        try:
            entry = await store.aget(previous)
        except Exception:  # (the store down: the transport reports it, as the call's error)
            return
        if entry is not None:
            exchange.previous = (previous, entry)
            return
        if not getattr(self.engines.shared_store, "ready", True):
            raise _GatewayError(
                503,
                f"Previous response with id '{previous}' cannot be looked up: {store.describe()}"
                f". Retry shortly.",
                type="server_error",
                code="store_unavailable",
                headers={"Retry-After": "1"},
            )
        raise _GatewayError(
            400,
            f"Previous response with id '{previous}' not found: {store.describe()}, each "
            f"for the gateway key that made it; it is unknown to this key, expired, "
            f"deleted, or was made with store=false.",
            type="invalid_request_error",
            param="previous_response_id",
            code="previous_response_not_found",
        )

    def _unpriced(self, routes: tuple[str, ...]) -> list[str]:
        """The routes (``provider/model``) whose price the gateway does not know."""
        engine = self.engines.engine
        return [route for route in routes if engine.price(*route.split("/", 1)) is None]

    def _check_priced(self, key: KeySpec, routes: tuple[str, ...], *, retrieved: bool) -> None:
        """Refuse a key with a budget any model whose price is unknown (outside the
        catalogue, or catalogued without one): its cost could be neither estimated nor
        settled, so it would cost the budget nothing while the provider bills it. Such a
        model ``retrieved`` (``GET /v1/models/{id}``) is a 404, as the key's model list
        leaves it out (`_model_not_allowed`'s rule)."""
        unpriced = self._unpriced(routes)
        if not unpriced:
            return
        if retrieved:
            raise _GatewayError(
                404,
                f"The model {unpriced[0]!r} is not among those the gateway key {key.name!r} "
                f"may use: it has a monthly budget, and the model's price is unknown to the "
                f"gateway (GET /v1/models lists the models it may use).",
                type="invalid_request_error",
                code="model_not_found",
                param="model",
            )
        raise _GatewayError(
            403,
            f"The gateway key {key.name!r} has a monthly budget, and the price of "
            f"{', '.join(unpriced)} is unknown to the gateway, so its cost could not be "
            f"counted against the budget. The gateway's operator can set it in the config: "
            f'[prices."{unpriced[0]}"] input = ..., output = ... (CNY per million tokens).',
            type="permission_error",
            code="model_price_unknown",
            param="model",
        )

    async def _reserve_budget(
        self, key: KeySpec, budget: Decimal, reservation: _Reservation
    ) -> None:
        """Reserve the request's upper cost estimate in the key's monthly budget (a 429
        ``insufficient_quota`` when it does not fit)."""
        cost = reservation.estimate.cost
        if await self.state.reserve(key.name, reservation.period, amount=cost, budget=budget):
            reservation.cost = cost
            return
        spent = await self.state.spent(key.name, reservation.period)
        left = max(budget - spent, Decimal(0))
        if spent >= budget:
            said = (
                f"The gateway key {key.name!r} has used its monthly budget of {budget} CNY "
                f"for {reservation.period} ({spent:.4f} spent or reserved)."
            )
        else:  # the budget is not used up: this request's worst case does not fit
            said = (
                f"This request may cost up to {cost:.6f} CNY, more than what is left of the "
                f"monthly budget of the gateway key {key.name!r} for {reservation.period} "
                f"({left:.6f} of {budget} CNY). Set max_tokens (max_output_tokens) to bound "
                f"its cost: the bound counts the longest answer the request allows."
            )
        raise _GatewayError(
            429,
            said,
            type="insufficient_quota",
            code="insufficient_quota",
            headers={"x-should-retry": "false"},
        )

    async def _settle(self, key: KeySpec, reservation: _Reservation, exchange: _Exchange) -> None:
        try:
            if reservation.cost is not None and key.monthly_budget_cny is not None:
                actual = sum((r.cost_cny or Decimal(0) for r in exchange.records), Decimal(0))
                await self.state.settle(
                    key.name, reservation.period, reserved=reservation.cost, actual=actual
                )
            if reservation.tokens and key.tpm is not None:
                bucket = f"tpm:{key.name}"
                used = sum(r.usage.total_tokens for r in exchange.records)
                extra = min(used - reservation.tokens, key.tpm)
                if extra > 0:  # more than estimated: used already, so taken past the limit
                    await self.state.take(
                        bucket, limit=key.tpm, window=60.0, amount=extra, force=True
                    )
                elif extra < 0:  # less: the request's own take gives the difference back
                    # (none once it has left the window: the others' takes stay counted)
                    await give_back_entry(
                        self.state, bucket, window=60.0, amount=-extra, entry=reservation.entry
                    )
        except StateUnavailable as down:  # the outage is already reported: one line each
            log.warning("gateway: a request's budget could not be settled: %s", down)
        except Exception:
            log.exception("gateway: settling a request's budget failed")

    def _period(self) -> str:
        return time.strftime("%Y-%m", time.gmtime(self.clock()))

    async def _account(self, exchange: _Exchange, seconds: float) -> None:
        """The request's ledger entry and usage metrics."""
        key = exchange.key
        assert key is not None
        records = exchange.records
        first = records[0] if records else None
        prompt = sum(r.usage.prompt_tokens for r in records)
        completion = sum(r.usage.completion_tokens for r in records)
        cached = 0
        for r in records:
            details = r.usage.prompt_tokens_details
            cached += (details.cached_tokens or 0) if details is not None else 0
        costs = [r.cost_cny for r in records if r.cost_cny is not None]
        cost = sum(costs, Decimal(0)) if costs else None
        for r in records:
            self.metrics.usage(
                key=key.name,
                provider=r.provider,
                model=r.model,
                prompt_tokens=r.usage.prompt_tokens,
                completion_tokens=r.usage.completion_tokens,
                cost_cny=r.cost_cny,
            )
        entry = LedgerEntry(
            request_id=exchange.request_id,
            at=self.clock(),
            key=key.name,
            model=exchange.model,
            provider=first.provider if first else exchange.provider,
            upstream_model=first.model if first else None,
            prompt_tokens=prompt,
            completion_tokens=completion,
            cached_tokens=cached,
            estimated=any(r.estimated for r in records),
            cost_cny=cost,
            latency_ms=round(seconds * 1000, 3),
            status=exchange.status,
            error_code=exchange.error_code,
            extra={"route": exchange.route},
        )
        try:
            await self.ledger.write(entry)
        except Exception:
            log.exception("gateway: the ledger write for %s failed", exchange.request_id)

    def _entry(self, exchange: _Exchange, seconds: float, *, in_progress: bool) -> LedgerEntry:
        """The provisional row of an admitted request (replaced by `_account`'s)."""
        assert exchange.key is not None and in_progress
        return LedgerEntry(
            request_id=exchange.request_id,
            at=self.clock(),
            key=exchange.key.name,
            model=exchange.model,
            provider=None,
            upstream_model=None,
            estimated=True,
            latency_ms=round(seconds * 1000, 3),
            status=0,
            error_code=IN_PROGRESS,
            extra={"route": exchange.route},
        )


class _Estimate:
    __slots__ = ("cost", "tokens")

    def __init__(self, tokens: int, cost: Decimal) -> None:
        self.tokens = tokens
        self.cost = cost


class _Reservation:
    __slots__ = ("cost", "entry", "estimate", "period", "tokens")

    def __init__(self, period: str, estimate: _Estimate) -> None:
        self.period = period
        self.estimate = estimate
        self.tokens = 0
        self.entry: Optional[str] = None  # the tpm window's id of the take of ``tokens``
        self.cost: Optional[Decimal] = None


def _estimate(
    config: Config,
    engine: Any,
    kind: str,
    params: dict[str, Any],
    routes: tuple[str, ...],
    carried: int = 0,
) -> _Estimate:
    """Tokens to take from ``tpm`` (the prompt, estimated from its length, plus any
    completion maximum the request sets) and an upper estimate of the cost (that prompt,
    plus the largest completion the request allows, at the dearest of the model's routes).
    ``carried`` is the prompt a Responses continuation adds from its stored conversation.

    The prompt is never tokenized here: a vocabulary costs each worker tens of MiB and the
    count hundreds of microseconds a request, and both are trued up anyway when the call
    ends (`GatewayApp._settle` takes what was used beyond the estimate, gives back what was
    not, and settles the budget to the actual cost). The length estimate is high on purpose
    (see `_BYTES_PER_TOKEN`)."""
    if kind == "embeddings" and isinstance(params.get("input"), list):
        items = params["input"]
        prompt = sum(
            len(item) if isinstance(item, list) else _length_tokens(item) for item in items
        )
    elif kind == "embeddings":
        prompt = _length_tokens(params.get("input"))
    else:
        prompt = _prompt_tokens(params) + carried
    n_given = params.get("n")
    n: int = n_given if isinstance(n_given, int) and n_given > 0 else 1
    prompt *= n  # (a provider taking one choice a request is sent, and bills, each copy)
    # The largest limit given: which one a provider honours is the adapter's choice, and
    # the estimate is an upper bound.
    asked = max(
        (
            params[name]
            for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")
            if isinstance(params.get(name), int)
            and not isinstance(params.get(name), bool)
            and params[name] > 0
        ),
        default=None,
    )
    tokens = prompt + (asked or 0) * n
    cost = Decimal(0)
    for route in routes or ():
        route_provider, route_model = route.split("/", 1)
        price = engine.price(route_provider, route_model)
        if price is None:
            continue
        completion = 0
        if kind != "embeddings":
            info = config.provider(route_provider).model(route_model)
            ceiling = info.max_output_tokens if info is not None else None
            completion = (asked or ceiling or _DEFAULT_MAX_OUTPUT) * n
        # (the dearest rate of every tier the call may fall in, thinking and cache writes
        # included: an upper bound)
        cost = max(cost, price.upper_cost(prompt, completion))
    return _Estimate(tokens, cost)


def _month_bounds(period: str) -> tuple[float, float]:
    """The Unix times [start, end) of a budget period (``"2026-12"``, a UTC month)."""
    year, month = (int(part) for part in period.split("-"))
    start = calendar.timegm((year, month, 1, 0, 0, 0))
    end = calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))
    return float(start), float(end)


def _prompt_tokens(params: dict[str, Any]) -> int:
    """An upper estimate of a chat or Responses request's prompt: all the client sent
    (its messages or input, and the tools, schemas and instructions the provider is sent
    and bills as prompt too), each image or audio clip counted as `_MEDIA_TOKENS` rather
    than by the length of its inline data. (A Responses continuation's stored
    conversation is counted by `GatewayApp._reserve`.)"""
    media, inline = _media(params.get("messages") or params.get("input"))
    sent = [
        value
        for name, value in params.items()
        if name in ("instructions", "input")
        or (isinstance(value, (list, dict)) and name not in _NOT_PROMPT)
    ]
    text = json.dumps(sent, ensure_ascii=False, default=str).encode("utf-8", "replace")
    return math.ceil(max(len(text) - inline, 0) / _BYTES_PER_TOKEN) + media * _MEDIA_TOKENS


#: A request's objects and lists that are not sent to the model as prompt.
_NOT_PROMPT = frozenset({"stream_options", "metadata", "logit_bias", "reasoning"})


def _media(items: Any) -> tuple[int, int]:
    """How many images and audio clips a messages (or Responses input) list holds, and
    the bytes of their data given inline."""
    count = inline = 0
    for item in items if isinstance(items, list) else ():
        content = item.get("content") if isinstance(item, dict) else None
        for part in content if isinstance(content, list) else ():
            data = _media_data(part) if isinstance(part, dict) else None
            if data is not None:
                count += 1
                inline += len(data.encode("utf-8", "replace"))
    return count, inline


def _media_data(part: dict[str, Any]) -> Optional[str]:
    """The URL or data of an image or audio part (chat's or the Responses API's), else
    None."""
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else image
    elif kind == "input_image":
        url = part.get("image_url")
    elif kind == "input_audio":
        audio = part.get("input_audio")
        url = audio.get("data") if isinstance(audio, dict) else None
    else:
        return None
    return url if isinstance(url, str) else ""


def _refuse_provider_envelope(kind: str, params: dict[str, Any]) -> None:
    """Refuse a top-level field outside the API's parameters (a provider extra, passed on
    to the provider's body) that would replace a part of the provider's request the
    gateway checks the key's limits and budget against: the prompt (DashScope's ``input``,
    ERNIE's ``system``) or the answer's length (``parameters``, ``max_output_tokens``)."""
    known = {"chat": CHAT_PARAMS, "embeddings": EMBEDDING_PARAMS}.get(kind, RESPONSES_PARAMS)
    for name in params:
        if name in _PROVIDER_ENVELOPE and name not in known:
            raise _bad_request(
                f"The field '{name}' is not accepted by this gateway: as a provider field it "
                f"would replace what the request's OpenAI parameters say (the prompt, or how "
                f"long the answer may be), which the key's limits and budget are checked "
                f"against. Send the OpenAI parameters (messages, max_tokens) instead.",
                param=name,
            )


#: Provider request fields a client's extras may not set through the gateway (see
#: `_refuse_provider_envelope`): DashScope's native envelope, ERNIE's system text and
#: output limit, and the names other wires (and the other API) give the output limit.
_PROVIDER_ENVELOPE = frozenset(
    {
        "input",
        "parameters",
        "resources",
        "system",
        "max_output_tokens",
        "max_new_tokens",
        "max_tokens",
        "max_completion_tokens",
    }
)


def _length_tokens(value: Any) -> int:
    """An upper estimate of the tokens in ``value`` (text or JSON) from its UTF-8 length."""
    if isinstance(value, str):
        size = len(value.encode("utf-8", "surrogatepass"))
    else:
        size = len(json.dumps(value, ensure_ascii=False, default=str).encode("utf-8", "replace"))
    return math.ceil(size / _BYTES_PER_TOKEN)


# --------------------------------------------------------------------------- helpers


def _aiohttp_upstream(gateway: GatewayConfig) -> Optional[httpx.AsyncClient]:
    """The provider client of ``upstream = "aiohttp"``: an httpx client on aiohttp's
    connection pool, which costs a loopback call about half of httpcore's and stays linear
    under bursts (httpcore's pool bookkeeping grows with the square of its connections;
    see ``benchmarks/gateway_results.md``). Not the default yet: in the full test suite's
    fault storm, a request made right after the storm once timed out on it, and the cause
    (a connection reused while its last answer was still pending?) is not understood. None
    when aiohttp is not installed (the ``[server]`` extra brings it)."""
    try:
        import httpx_aiohttp  # noqa: F401  (present: the client below can be built)
    except ImportError:
        log.warning(
            'gateway: upstream = "aiohttp" but aiohttp is not installed (pip install '
            '"llm-bridge-cn[server]"); provider calls use httpx'
        )
        return None
    from .._http_clients import DEFAULT_TIMEOUT, DefaultAioHttpClient

    timeout = gateway.timeout if gateway.timeout is not None else DEFAULT_TIMEOUT
    return DefaultAioHttpClient(timeout=timeout)


def open_response_store(
    gateway: GatewayConfig, shared: Optional[SQLiteState]
) -> AsyncResponseStore:
    """Stored Responses where the state is shared: in Redis for all replicas, in the
    SQLite state file ``shared`` (`shared_file`) for the processes of the machine, else
    in the process's own store."""
    if gateway.state_kind == "redis":
        from ._redis_responses import shared_response_store

        return shared_response_store(gateway)
    if shared is not None:
        return SQLiteResponseStore(shared)
    return default_store()


def open_token_share(
    gateway: GatewayConfig, shared: Optional[SQLiteState]
) -> Optional[Union[RedisTokenShare, SQLiteTokenShare]]:
    """Where workers and replicas share the provider tokens they fetch: Redis, the SQLite
    state file ``shared``, or nowhere (None: each process fetches its own)."""
    if gateway.state_kind == "redis":
        from ._redis_tokens import open_token_share as open_redis_share

        return open_redis_share(gateway)
    if shared is not None:
        return SQLiteTokenShare(shared)
    return None


def open_state(gateway: GatewayConfig) -> GatewayState:
    """The state store the config names: this process's memory, a SQLite file the
    machine's processes share, or Redis."""
    if gateway.state_kind == "memory":
        return MemoryState()
    if gateway.state_kind == "sqlite":
        return open_sqlite_state(gateway)
    from . import _redis

    return _redis.open_state(gateway)


def open_ledger(gateway: GatewayConfig) -> LedgerSink:
    """The ledger the config names (by default a SQLite file per machine, or the Redis
    stream of a Redis state, which the whole fleet shares)."""
    if gateway.ledger == "none":
        return NullLedger()
    path = sqlite_ledger_path(gateway)
    if path is None:
        from . import _redis

        return _redis.open_ledger(gateway)
    return SQLiteLedger(path, source=gateway.source)


def sqlite_ledger_path(gateway: GatewayConfig) -> Optional[str]:
    """The SQLite file the ledger is written to, or None (no ledger, or Redis's)."""
    ledger = gateway.ledger
    if ledger in ("none", "redis") or (ledger is None and gateway.state_kind == "redis"):
        return None
    return ledger or DEFAULT_LEDGER


async def _read_body(receive: Any, headers: list[tuple[str, str]], limit: int) -> bytes:
    """The request's body, at most ``limit`` bytes (413 past it), as the client sent it: a
    compressed one (``Content-Encoding``) is refused with 415 rather than read as
    malformed JSON, or decompressed past the limit."""
    declared = next((v for k, v in headers if k == "content-length"), None)
    encoding = next((v for k, v in headers if k == "content-encoding"), "identity")
    if encoding.strip().lower() not in ("", "identity"):
        raise _GatewayError(
            415,
            f"The gateway reads request bodies uncompressed; this one has "
            f"'Content-Encoding: {encoding[:40]}'. Send it without compression.",
            type="invalid_request_error",
            code="unsupported_content_encoding",
        )
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    try:
        return await read_body(receive, limit)
    except BodyTooLarge:
        raise _too_large(limit) from None


#: The longest model name a request may give (providers' names are a few dozen characters).
MAX_MODEL_NAME = 256


def _parse_body(body: bytes) -> dict[str, Any]:
    try:
        params = json.loads(body) if body else None
    except (ValueError, RecursionError) as exc:  # nesting deeper than the parser goes
        raise _bad_request(f"We could not parse the JSON body of your request ({exc}).") from None
    if not isinstance(params, dict):
        raise _bad_request("The request body must be a JSON object.")
    model = params.get("model")
    if model is None:
        raise _bad_request("Missing required parameter: 'model'.", param="model")
    if not isinstance(model, str) or not model.strip():
        raise _bad_request("model must be a non-empty string", param="model")
    if len(model) > MAX_MODEL_NAME:
        # (a name is resolved, cached, written to the ledger and quoted in errors
        # before the key's permission and rate limit are checked)
        raise _bad_request(
            f"model must be at most {MAX_MODEL_NAME} characters, got {len(model)}",
            param="model",
        )
    return params


class _StallWatch:
    """Gives up on a client that takes none of a streamed answer for ``seconds``
    (``[gateway] client_write_timeout``): the server's ``send`` then waits on a socket
    that accepts nothing more, and would hold the stream, and the provider call behind
    it, until shutdown.

    One timer per ``seconds`` for the whole stream rather than a timeout per chunk
    (``asyncio.wait_for`` makes a task for each): ``send`` only notes when it began,
    and the timer, finding a send still pending after ``seconds``, cancels the task
    that waits in it, which `send` reports as `ClientStalled`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self.since: Optional[float] = None  # when the pending send began (None: none is)
        self.stalled = False
        self.timer = self.loop.call_later(seconds, self._check)

    async def send(self, send: Any, message: dict[str, Any]) -> None:
        self.since = self.loop.time()
        try:
            await send(message)
        except asyncio.CancelledError:
            if not self.stalled:
                raise
            uncancel = getattr(self.task, "uncancel", None)  # (Python 3.11+)
            if uncancel is not None:
                uncancel()  # the cancellation was this watch's, and is answered
            raise ClientStalled from None
        finally:
            self.since = None

    def _check(self) -> None:
        now, since = self.loop.time(), self.since
        if since is not None and now - since >= self.seconds and self.task is not None:
            self.stalled = True
            self.task.cancel()
            return
        wait = self.seconds if since is None else self.seconds - (now - since)
        self.timer = self.loop.call_later(wait, self._check)

    def close(self) -> None:
        self.timer.cancel()


async def _until_disconnect(receive: Any, work: Awaitable[None]) -> None:
    """Run ``work`` (talking to the provider, writing to the client) until done, or until
    the client disconnects: then cancel it, which closes the upstream request."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        task.cancel()
        watcher.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)
        raise
    if task.done():
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
        task.result()
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise ClientGone


async def _disconnected(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


def _error_object(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an OpenAI-shaped error body (empty: none, or no such body)."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        error = None
    return error if isinstance(error, dict) else {}


def _note_error(exchange: _Exchange, body: bytes) -> None:
    """The code and provider an OpenAI-shaped error body names (for the ledger, metrics)."""
    error = _error_object(body)
    code = error.get("code") or error.get("type")
    exchange.error_code = str(code) if code else str(exchange.status)
    provider = error.get("provider")
    if isinstance(provider, str):
        exchange.provider = provider


def _internal(error: BaseException) -> OpenAIError:
    """An unexpected error of ours: logged here, answered without its details."""
    log.error("gateway: unexpected error (%s)", type(error).__name__, exc_info=error)
    request = httpx.Request("POST", _INTERNAL_ORIGIN)
    response = httpx.Response(500, request=request)
    return InternalServerError(
        "The gateway failed to answer this request (see its log).",
        response=response,
        body=None,
    )


def _bad_request(message: str, *, param: Optional[str] = None) -> _GatewayError:
    return _GatewayError(400, message, type="invalid_request_error", code=None, param=param)


def _too_large(limit: int) -> _GatewayError:
    return _GatewayError(
        413,
        f"The request body is larger than this gateway accepts ({limit} bytes; "
        f"[gateway] max_body_bytes).",
        type="invalid_request_error",
        code="request_too_large",
    )


def _unknown_url(method: str, path: str) -> _GatewayError:
    return _GatewayError(
        404,
        f"Invalid URL ({method} {path}). The gateway serves /v1/chat/completions, "
        f"/v1/embeddings, /v1/responses, /v1/models, /healthz, /readyz, /metrics and "
        f"/dashboard.",
        type="invalid_request_error",
        code="unknown_url",
    )


def _method_not_allowed(method: str, path: str, allowed: Iterable[str]) -> _GatewayError:
    methods = list(allowed)
    if "GET" in methods and "HEAD" not in methods:  # (`_http` answers HEAD as GET)
        methods.append("HEAD")
    allow = ", ".join(methods)
    return _GatewayError(
        405,
        f"{method} is not allowed on {path} (allowed: {allow}).",
        type="invalid_request_error",
        code="method_not_allowed",
        headers={"allow": allow},
    )


#: Most of a key's model patterns a 403 names.
_NAMED_PATTERNS = 20


def _model_not_allowed(key: KeySpec, model: str, *, retrieved: bool = False) -> _GatewayError:
    """The 403 of a model the key may not use, naming what it may use (its patterns:
    the key's holder needs them to choose a model, and they are no secret to it). A
    model ``retrieved`` (``GET /v1/models/{id}``) gets OpenAI's 404 ``model_not_found``
    instead, as for a model that does not exist: the key's model list leaves it out too,
    and openai's clients raise `NotFoundError` for it."""
    message = f"The gateway key {key.name!r} may not use the model {model!r}."
    if not key.models:
        message += " It may use no model (it only opens the dashboard)."
    else:
        named = ", ".join(key.models[:_NAMED_PATTERNS])
        more = len(key.models) - _NAMED_PATTERNS
        if more > 0:
            named += f" and {more} more"
        message += f" It may use: {named} (GET /v1/models lists them)."
    if retrieved:
        return _GatewayError(
            404, message, type="invalid_request_error", code="model_not_found", param="model"
        )
    return _GatewayError(
        403, message, type="permission_error", code="model_not_allowed", param="model"
    )


def _rate_limited(
    key: KeySpec, what: str, limit: int, wait: float, wanted: Optional[int] = None
) -> _GatewayError:
    """The 429 of a full rpm or tpm window. A request whose estimate alone is over the
    limit never fits, so it says ``x-should-retry: false``: openai's clients would
    otherwise wait ``Retry-After`` (a minute) before each of their retries."""
    retry_after = max(1, math.ceil(wait))
    per = "requests per minute (rpm)" if what == "requests" else "tokens per minute (tpm)"
    message = f"Rate limit reached for gateway key {key.name!r}: {limit} {per}."
    headers = {"retry-after": str(retry_after)}
    if wanted is not None and wanted > limit:
        message += (
            f" This request alone is estimated at {wanted} tokens, over the limit: send a "
            f"shorter prompt or a smaller max_tokens."
        )
        headers["x-should-retry"] = "false"
    else:
        message += f" Please try again in {retry_after}s."
    return _GatewayError(429, message, type=what, code="rate_limit_exceeded", headers=headers)


def _serves_get(path: str) -> bool:
    """Whether GET is answered at ``path``, so HEAD is too (as a GET without its body)."""
    if path in ("/healthz", "/readyz", "/metrics", "/dashboard", "/dashboard/"):
        return True
    if path.startswith("/dashboard/static/"):
        return True
    if path == "/v1" or path.startswith("/v1/"):
        methods = _route_of(path)[1]
        return methods is not None and "GET" in methods
    return False


def _headless(send: Any) -> Any:
    """``send`` for a HEAD request: the GET's status and headers (``content-length``
    included), no body bytes (uvicorn drops them too; other ASGI servers may not)."""

    async def headless(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            message = {**message, "body": b""}
        await send(message)

    return headless


def _header(scope: dict[str, Any], name: bytes) -> Optional[bytes]:
    """A request header's value (ASGI gives names in lower case), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _stamped(send: Any, request_id: str, cors: list[tuple[bytes, bytes]]) -> Any:
    """``send`` with the headers every API answer carries: the gateway's request id (the
    ledger's), ``x-request-id`` (the provider's when it gave one, as OpenAI's clients read
    it into ``request_id``, else the gateway's) and the CORS headers of the request."""
    ours = request_id.encode()

    async def stamped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = list(message.get("headers", ()))
            headers.append((b"x-llm-bridge-gateway-request-id", ours))
            if not any(name.lower() == b"x-request-id" for name, _ in headers):
                headers.append((b"x-request-id", ours))
            message = {**message, "headers": headers + cors}
        await send(message)

    return stamped


#: What the gateway tells its client when a provider refuses the gateway's own account:
#: (message after the provider's name, ``code``, what the log says).
_ACCOUNT_REFUSALS = {
    "credentials": (
        "refused the gateway's credentials (the gateway key you sent was accepted); the "
        "gateway's operator must check [providers.{provider}] in its config.",
        "provider_authentication_failed",
        "refused the gateway's credentials",
    ),
    "quota": (
        "refused the gateway's account: it is out of funds or quota there (the gateway key "
        "you sent was accepted, and its own budget is not what ran out); the gateway's "
        "operator must top it up or change [providers.{provider}] in its config.",
        "provider_quota_exhausted",
        "has no funds or quota left for the gateway's account",
    ),
}


def _provider_refused(content: bytes, what: str) -> bytes:
    """The answer when a provider refused the gateway's own account (``what``: its
    ``"credentials"``, a 401 of the provider's; its ``"quota"``, arrears or a spent quota,
    a 429 ``insufficient_quota``): a 502. OpenAI's clients take a 401 to mean the key
    *they* sent is bad, and ``insufficient_quota`` that *their* account is spent, which is
    the gateway's own answer over a key's budget; the account behind the gateway is the
    operator's. The provider's message, which may name its API root or the account, goes
    to the log for the operator."""
    error = _error_object(content)
    provider = error.get("provider") if isinstance(error.get("provider"), str) else None
    message, code, logged = _ACCOUNT_REFUSALS[what]
    log.error("gateway: %s %s: %s", provider, logged, error.get("message"))
    body = {
        "message": f"{provider or 'The provider'} " + message.format(provider=provider or "..."),
        "type": "server_error",
        "param": None,
        "code": code,
        "provider": provider,
        "provider_code": error.get("provider_code"),
    }
    return json.dumps({"error": body}, ensure_ascii=False).encode()


async def _send(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Any, error: _GatewayError) -> None:
    headers = [*_JSON, *((k.encode(), v.encode()) for k, v in error.headers.items())]
    await _send(send, error.status, headers, error.body())
