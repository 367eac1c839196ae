"""``/dashboard``: the gateway's usage dashboard, for keys with ``admin = true``.

What it shows, over the last 30 days (UTC days) of the ledger the gateway writes (the
SQLite file, or with a Redis state the fleet's Redis stream): spend per day by key and by
model (charts, and the table behind them), tokens with the share that was estimated (counted
here because the provider gave no final figures), errors by provider and code, each
provider's latency percentiles and error rate, and every key with its limits and what it
has used of its monthly budget.

The page is rendered here, as HTML, with every value from the ledger escaped (model names
and error codes are whatever clients and providers sent). The charts are drawn in the
browser by uPlot (MIT), vendored as a file in ``static/`` with its licence, and by
``static/dashboard.js``, which reads the chart data from a JSON block in the page: nothing
is fetched from elsewhere (the machines that run a gateway may have no internet), and the
Content-Security-Policy allows scripts and styles from the gateway alone, none inline.

Signing in. Scripts send the key as for the API (``Authorization: Bearer``). A browser
cannot send that header on a navigation, so ``GET /dashboard`` without it answers a small
form (status 401) that POSTs the key to ``/dashboard/login``; an admin key gets an
``HttpOnly; SameSite=Strict`` cookie holding a session token: the key's name and an expiry,
signed with HMAC-SHA256 (never the key, nor its digest), valid for 12 hours, and only while
that key is still configured, unchanged, with ``admin = true``. The key travels once, in a
POST body, so it never appears in a URL, a server log or the browser's history. A key
without admin rights gets 403. Tokens are signed with ``$LLM_BRIDGE_GATEWAY_DASHBOARD_SECRET``
when it is set (at least 32 characters; the same on every worker and replica so any of them
accepts a session), else with a random secret of this process (sessions end when it
restarts, and other worker processes do not accept them).

Reading the ledger never blocks the event loop and is bounded: the SQLite file is summed
by SQL (GROUP BY day, key, model, provider; latencies as a histogram of two significant
digits) on a worker thread; the Redis stream is read newest first, at most
`MAX_REDIS_ENTRIES` entries, into an in-memory SQLite database that the same SQL sums.
Concurrent page loads share one reading.
"""

from __future__ import annotations

import asyncio
import base64
import calendar
import contextlib
import hashlib
import hmac
import html
import json
import logging
import os
import secrets
import sqlite3
import sys
import time
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from .._errors import ConfigError
from ._asgi import BodyTooLarge, ClientGone, read_body
from ._config import KeySpec
from ._ledger import _SCHEMA, NullLedger, SQLiteLedger, _row
from ._state import IN_PROGRESS

if TYPE_CHECKING:
    from ._app import GatewayApp

__all__ = ["SECRET_ENV", "Dashboard", "route_of"]

log = logging.getLogger("llm_bridge.gateway")

#: The secret session tokens are signed with (every worker and replica the same one).
SECRET_ENV = "LLM_BRIDGE_GATEWAY_DASHBOARD_SECRET"
#: The session cookie (HttpOnly, SameSite=Strict, Path=/dashboard).
COOKIE = "llm_bridge_dashboard"
#: How long a signed-in browser stays signed in.
SESSION_SECONDS = 12 * 3600
#: Days the dashboard covers (UTC days, today included).
WINDOW_DAYS = 30
#: Most entries read from a Redis ledger for one page (the newest; the page says so).
MAX_REDIS_ENTRIES = 200_000
#: Largest login form body read.
MAX_LOGIN_BYTES = 4096
#: Rows of each table (the rest is summed into one line).
TOP_ROWS = 50
#: Series of a chart (the rest is one "other" series).
TOP_SERIES = 8
#: Characters of a model name or an error code kept (clients choose model names).
NAME_CHARS = 120

_STATIC_DIR = Path(__file__).parent / "static"
#: The files ``/dashboard/static/`` serves, and their content types.
_STATIC_TYPES = {
    "uPlot.iife.min.js": "text/javascript; charset=utf-8",
    "uPlot.min.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # same-origin, not no-referrer: with no-referrer a browser sends "Origin: null" on the
    # sign-in form's POST, which `_same_origin` could not tell from another site's.
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


def route_of(path: str) -> str:
    """The route label a ``/dashboard`` path is counted under in the metrics."""
    if path in ("/dashboard", "/dashboard/"):
        return "/dashboard"
    if path in ("/dashboard/login", "/dashboard/logout"):
        return path
    if path.startswith("/dashboard/static/"):
        return "/dashboard/static/{file}"
    return "other"


# --------------------------------------------------------------------------- serving


class Dashboard:
    """The ``/dashboard`` routes of one `GatewayApp`."""

    def __init__(self, app: GatewayApp) -> None:
        self.app = app
        configured = os.environ.get(SECRET_ENV)
        if configured is not None and len(configured) < 32:
            raise ConfigError(
                f"${SECRET_ENV} must be at least 32 characters (it signs the dashboard's "
                f"sessions); unset it to use a random secret per process"
            )
        self._secret = configured.encode() if configured else secrets.token_bytes(32)
        self._keys = {key.name: key for key in app.gateway.keys}
        self._reading: Optional[asyncio.Task[Facts]] = None

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        """Answer one ``/dashboard`` request; returns the status sent."""
        path, method = scope["path"], scope["method"]
        if path.startswith("/dashboard/static/"):
            return await self._static(scope, send)
        if path in ("/dashboard", "/dashboard/"):
            if method != "GET":
                return await _page(send, 405, _message_page("Use GET."), [(b"allow", b"GET, HEAD")])
            return await self._dashboard(scope, send)
        if path == "/dashboard/login":
            if method != "POST":
                return await _page(send, 405, _login_page(), [(b"allow", b"POST")])
            return await self._login(scope, receive, send)
        if path == "/dashboard/logout":
            if method != "POST":
                return await _page(send, 405, _message_page("Use POST."), [(b"allow", b"POST")])
            if not _same_origin(scope):
                return await _page(send, 403, _message_page("Cross-site request refused."))
            return await _page(
                send, 200, _login_page("Signed out."), [(b"set-cookie", _clear_cookie())]
            )
        return await _page(send, 404, _message_page("No such dashboard page."))

    # ------------------------------------------------------------------ who is asking

    def _credentials(self, scope: dict[str, Any]) -> tuple[Optional[KeySpec], str]:
        """The key behind a request and how it came: ``header`` (a key that was sent),
        ``cookie`` (a valid session), ``bad-header``, ``bad-cookie`` or ``none``."""
        presented: Optional[str] = None
        cookie: Optional[str] = None
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = raw_value.decode("latin-1")
            if name == "authorization":
                scheme, _, token = value.partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    presented = token.strip()
            elif name == "api-key" and value.strip() and presented is None:
                presented = value.strip()
            elif name == "cookie":
                cookie = _cookie_value(value, COOKIE) or cookie
        if presented is not None:
            key = self.app.key_of(presented)
            return key, "header" if key is not None else "bad-header"
        if cookie is not None:
            key = self._session_key(cookie)
            return key, "cookie" if key is not None else "bad-cookie"
        return None, "none"

    def _sign(self, key: KeySpec, expires: int) -> bytes:
        message = b"\0".join(
            [b"llm-bridge-dashboard-session-v1", key.name.encode(), str(expires).encode()]
        )
        # The key's digest is signed too: a session ends when its key is replaced.
        return hmac.new(self._secret, message + b"\0" + key.digest, hashlib.sha256).digest()

    def session_token(self, key: KeySpec, now: float) -> str:
        """A session token for ``key``: its name, an expiry and their signature."""
        expires = int(now) + SESSION_SECONDS
        name = _b64(key.name.encode())
        return f"{name}.{expires}.{_b64(self._sign(key, expires))}"

    def _session_key(self, token: str) -> Optional[KeySpec]:
        """The admin key a session token was issued to, if the token is valid and unexpired
        and the key is still configured, unchanged and admin."""
        parts = token.split(".")
        if len(parts) != 3 or len(parts[1]) > 12 or not (parts[1].isascii() and parts[1].isdigit()):
            return None
        try:
            name = _unb64(parts[0]).decode()
            signature = _unb64(parts[2])
        except (ValueError, UnicodeDecodeError):
            return None
        key = self._keys.get(name)
        expires = int(parts[1])
        if key is None or not key.admin:
            return None
        if not hmac.compare_digest(self._sign(key, expires), signature):
            return None
        return key if expires > self.app.clock() else None

    # ------------------------------------------------------------------ pages

    async def _dashboard(self, scope: dict[str, Any], send: Any) -> int:
        key, how = self._credentials(scope)
        if key is None:
            message = {
                "bad-header": "That gateway key is not valid.",
                "bad-cookie": "Your session has ended: sign in again.",
            }.get(how, "")
            extra = [(b"www-authenticate", b'Bearer realm="llm-bridge dashboard"')]
            if how == "bad-cookie":
                extra.append((b"set-cookie", _clear_cookie()))
            return await _page(send, 401, _login_page(message), extra)
        if not key.admin:
            return await _page(send, 403, _refused_page(key.name))
        summary = await self.summary()
        body = render_dashboard(summary, signed_in=key.name, session=how == "cookie")
        return await _page(send, 200, body)

    async def _login(self, scope: dict[str, Any], receive: Any, send: Any) -> int:
        if not _same_origin(scope):
            return await _page(send, 403, _message_page("Cross-site sign-in refused."))
        try:
            body = await read_body(receive, MAX_LOGIN_BYTES)
        except BodyTooLarge:
            return await _page(send, 413, _login_page("That was not a gateway key."))
        except ClientGone:
            return 499
        try:
            form = urllib.parse.parse_qs(body.decode("utf-8"), max_num_fields=4)
        except (UnicodeDecodeError, ValueError):
            form = {}
        presented = (form.get("key") or [""])[0].strip()
        key = self.app.key_of(presented) if presented else None
        client = (scope.get("client") or ("?",))[0]
        if key is None:
            log.warning("gateway dashboard: a sign-in with an unknown key was refused (%s)", client)
            return await _page(send, 401, _login_page("That gateway key is not valid."))
        if not key.admin:
            log.warning("gateway dashboard: key %r (not admin) was refused (%s)", key.name, client)
            return await _page(send, 403, _refused_page(key.name))
        log.info("gateway dashboard: key %r signed in (%s)", key.name, client)
        token = self.session_token(key, self.app.clock())
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        cookie = (
            f"{COOKIE}={token}; Path=/dashboard; Max-Age={SESSION_SECONDS}; HttpOnly; "
            f"SameSite=Strict{secure}"
        )
        headers = [(b"location", b"/dashboard"), (b"set-cookie", cookie.encode())]
        return await _page(send, 303, _message_page("Signed in."), headers)

    async def _static(self, scope: dict[str, Any], send: Any) -> int:
        name = scope["path"][len("/dashboard/static/") :]
        asset = _asset(name) if name in _STATIC_TYPES else None
        if asset is None:
            return await _page(send, 404, _message_page("No such file."))
        if scope["method"] not in ("GET", "HEAD"):
            return await _page(send, 405, _message_page("Use GET."), [(b"allow", b"GET, HEAD")])
        content, version = asset
        etag = f'"{version}"'.encode()
        # Pages name each file with ?v=<its digest>: such a URL never changes content.
        query = urllib.parse.parse_qs((scope.get("query_string") or b"").decode("latin-1"))
        pinned = query.get("v") == [version]
        headers = [
            (b"content-type", _STATIC_TYPES[name].encode()),
            (b"etag", etag),
            (b"x-content-type-options", b"nosniff"),
            (
                b"cache-control",
                b"public, max-age=31536000, immutable" if pinned else b"public, no-cache",
            ),
        ]
        if any(
            k.lower() == b"if-none-match" and etag in v.replace(b" ", b"").split(b",")
            for k, v in scope["headers"]
        ):
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return 304
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        body = b"" if scope["method"] == "HEAD" else content
        await send({"type": "http.response.body", "body": body})
        return 200

    # ------------------------------------------------------------------ data

    async def summary(self) -> Summary:
        """What the page shows, now: the ledger's facts (one reading shared by concurrent
        page loads) and each key's budget use from the gateway's state."""
        app = self.app
        now = app.clock()
        window = Window.ending(now)
        reading = self._reading
        if reading is None or reading.done():
            reading = self._reading = asyncio.ensure_future(read_facts(app.ledger, window))
        facts = await asyncio.shield(reading)
        period = time.strftime("%Y-%m", time.gmtime(now))
        spent = await asyncio.gather(*(_spent(app, key.name, period) for key in app.gateway.keys))
        notice = None
        if getattr(app.state, "ready", True) is False:  # state_failure = "open", store down
            notice = (
                "The shared state store is unreachable: the budget use shown is this "
                "process's own until it answers again."
            )
        return Summary(
            window=window,
            facts=facts,
            keys=list(zip(app.gateway.keys, spent)),
            period=period,
            state_notice=notice,
        )


async def _spent(app: GatewayApp, name: str, period: str) -> Optional[Decimal]:
    """What the key has used (reserved included) of this month's budget, as the limiter
    sees it; None when the state store does not answer."""
    try:
        return await asyncio.wait_for(app.state.spent(name, period), 5.0)
    except Exception as error:
        log.warning("gateway dashboard: the budget use of %r is unknown: %s", name, error)
        return None


# --------------------------------------------------------------------------- the ledger


@dataclass(frozen=True)
class Window:
    """The days the dashboard covers: ``days`` UTC days up to ``until`` (now), and the
    current month (its budgets)."""

    since: float
    until: float
    month_start: float
    days: tuple[int, ...]  # day numbers (Unix time // 86400)

    @classmethod
    def ending(cls, now: float, days: int = WINDOW_DAYS) -> Window:
        today = int(now // 86400)
        first = today - days + 1
        year, month = time.gmtime(now)[:2]
        month_start = float(calendar.timegm((year, month, 1, 0, 0, 0)))
        return cls(float(first * 86400), now, month_start, tuple(range(first, today + 1)))


@dataclass
class Usage:
    """Sums over a set of ledger entries."""

    requests: int = 0
    errors: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    estimated: int = 0  # tokens of requests whose usage was estimated here
    cost: Decimal = Decimal(0)

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion

    def add(self, other: Usage) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt += other.prompt
        self.completion += other.completion
        self.cached += other.cached
        self.estimated += other.estimated
        self.cost += other.cost

    def minus(self, other: Usage) -> Usage:
        return Usage(
            self.requests - other.requests,
            self.errors - other.errors,
            self.prompt - other.prompt,
            self.completion - other.completion,
            self.cached - other.cached,
            self.estimated - other.estimated,
            self.cost - other.cost,
        )


@dataclass(frozen=True)
class ErrorRow:
    provider: Optional[str]  # None: the gateway's own answer (limits, model not allowed)
    code: str
    status: int
    count: int
    last_at: float


@dataclass(frozen=True)
class Health:
    provider: str
    requests: int
    errors: int  # answers >= 400, client disconnects (499) excepted
    p50: Optional[float]
    p95: Optional[float]
    p99: Optional[float]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0


@dataclass
class Facts:
    """What the ledger says about the window (see `read_facts`)."""

    by_day_key: list[tuple[int, str, Usage]] = field(default_factory=list)
    by_key_model: list[tuple[str, str, Usage]] = field(default_factory=list)
    by_day_model: list[tuple[int, Optional[str], Usage]] = field(default_factory=list)
    top_models: list[str] = field(default_factory=list)
    errors: list[ErrorRow] = field(default_factory=list)
    health: list[Health] = field(default_factory=list)
    month_by_key: dict[str, Usage] = field(default_factory=dict)
    unfinished: int = 0  # provisional entries: in flight, or cut off by a crash
    notice: Optional[str] = None  # the ledger could not be read, or was read in part

    def total(self) -> Usage:
        total = Usage()
        for _, _, usage in self.by_day_key:
            total.add(usage)
        return total

    def per_day(self) -> dict[int, Usage]:
        days: dict[int, Usage] = {}
        for day, _, usage in self.by_day_key:
            days.setdefault(day, Usage()).add(usage)
        return days


@dataclass
class Summary:
    window: Window
    facts: Facts
    keys: list[tuple[KeySpec, Optional[Decimal]]]  # each key and its budget use this month
    period: str
    state_notice: Optional[str] = None  # the limiter's store is down (budgets per process)


async def read_facts(ledger: Any, window: Window) -> Facts:
    """The window's facts from the gateway's ledger (never raises: a ledger that cannot
    be read gives empty facts with a notice)."""
    if isinstance(ledger, NullLedger):
        return Facts(notice='This gateway keeps no ledger ([gateway] ledger = "none").')
    # A Redis ledger exists only where its module (and redis) was imported already.
    redis_module = sys.modules.get(f"{__package__}._redis")
    try:
        if isinstance(ledger, SQLiteLedger):
            # What this process handed over is committed first (unless it is shutting down).
            # Waited for at most 2 s, and never cancelled: the writer thread answers it.
            if not getattr(ledger, "_closed", False):
                await asyncio.wait({asyncio.ensure_future(ledger.flush())}, timeout=2.0)
            return await asyncio.to_thread(_file_facts, ledger.path, window)
        if redis_module is not None and isinstance(ledger, redis_module.RedisLedger):
            await ledger.flush(timeout=1.0)
            return await _redis_facts(ledger, window)
    except Exception as error:
        log.warning("gateway dashboard: the ledger could not be read: %r", error)
        return Facts(notice=f"The ledger could not be read ({type(error).__name__}).")
    return Facts(notice=f"The ledger ({type(ledger).__name__}) cannot be read by the dashboard.")


def _file_facts(path: Path, window: Window) -> Facts:
    """Sum a SQLite ledger file (on a worker thread; read-only)."""
    connection = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    try:
        connection.execute("PRAGMA busy_timeout=5000")
        return _facts(connection, window)
    finally:
        connection.close()


async def _redis_facts(ledger: Any, window: Window) -> Facts:
    """Sum a Redis ledger: its entries since the window (or the month) began, newest first
    and at most `MAX_REDIS_ENTRIES`, go into an in-memory SQLite database page by page
    (each page on a worker thread), which the same SQL as a file's then sums."""
    from ._ledger import _COLUMNS
    from ._redis import _entry, _since, _wait

    since = min(window.since, window.month_start)
    start, _ = _since(since)
    insert = (
        f"INSERT OR IGNORE INTO ledger ({', '.join(_COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in _COLUMNS)})"
    )
    database = sqlite3.connect(":memory:", check_same_thread=False)
    try:
        await asyncio.to_thread(database.executescript, _SCHEMA)
        seen: set[str] = set()
        end, read, truncated, oldest = "+", 0, False, None
        while True:
            page: Any = await _wait(
                ledger.client.xrevrange(ledger.stream, max=end, min=start, count=1000)
            )
            rows = []
            for _, fields in page:
                entry = _entry(fields)
                # Newest first: a request's first entry seen is its last (the final one).
                if entry.at < since or entry.request_id in seen:
                    continue
                seen.add(entry.request_id)
                rows.append(_row(entry))
                oldest = entry.at if oldest is None else min(oldest, entry.at)
            if rows:
                await asyncio.to_thread(database.executemany, insert, rows)
            read += len(page)
            if len(page) < 1000:
                break
            if read >= MAX_REDIS_ENTRIES:
                truncated = True
                break
            end = "(" + page[-1][0]
        facts = await asyncio.to_thread(_facts, database, window)
    finally:
        database.close()
    if truncated and oldest is not None:
        facts.notice = (
            f"The Redis ledger was read in part: its newest {read:,} entries, back to "
            f"{_when(oldest)} UTC."
        )
    return facts


class _DecimalSum:
    """SQLite aggregate ``dsum``: the exact sum of decimal strings (costs are TEXT)."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, value: Any) -> None:
        if value is not None:
            with contextlib.suppress(InvalidOperation):  # not a number: not money
                self.total += Decimal(str(value))

    def finalize(self) -> str:
        return str(self.total)


#: A finished request in the window (provisional entries are counted apart).
_WHERE = "at >= :since AND at < :until AND error_code IS NOT :in_progress"
_SUMS = (
    "COUNT(*), SUM(status >= 400), SUM(prompt_tokens), SUM(completion_tokens), "
    "SUM(cached_tokens), SUM(CASE WHEN estimated THEN prompt_tokens + completion_tokens "
    "ELSE 0 END), dsum(cost_cny) AS cost"
)
_DAY = "CAST(at / 86400 AS INTEGER)"
_MODEL = f"substr(model, 1, {NAME_CHARS})"


def _usage(row: Sequence[Any]) -> Usage:
    n, errors, prompt, completion, cached, estimated, cost = row
    return Usage(
        int(n or 0),
        int(errors or 0),
        int(prompt or 0),
        int(completion or 0),
        int(cached or 0),
        int(estimated or 0),
        Decimal(cost or 0),
    )


def _facts(connection: sqlite3.Connection, window: Window) -> Facts:
    """The window's facts from a connection to a ledger table (bounded: every query
    groups, and every grouping is limited)."""
    connection.create_aggregate("dsum", 1, _DecimalSum)  # type: ignore[arg-type]
    args: dict[str, Any] = {
        "since": window.since,
        "until": window.until,
        "in_progress": IN_PROGRESS,
    }

    def rows(query: str, extra: Optional[dict[str, Any]] = None) -> list[Any]:
        return connection.execute(query, {**args, **(extra or {})}).fetchall()

    facts = Facts()
    facts.by_day_key = [
        (int(r[0]), str(r[1]), _usage(r[2:]))
        for r in rows(
            f"SELECT {_DAY} AS day, substr(key, 1, 64) AS k, {_SUMS} FROM ledger "
            f"WHERE {_WHERE} GROUP BY day, k ORDER BY day, k LIMIT 20000"
        )
    ]
    facts.by_key_model = [
        (str(r[0]), str(r[1]), _usage(r[2:]))
        for r in rows(
            f"SELECT substr(key, 1, 64) AS k, {_MODEL} AS m, {_SUMS} FROM ledger "
            f"WHERE {_WHERE} GROUP BY k, m ORDER BY CAST(cost AS REAL) DESC, COUNT(*) DESC, k, m "
            f"LIMIT {TOP_ROWS}"
        )
    ]
    facts.top_models = [
        str(r[0])
        for r in rows(
            f"SELECT {_MODEL} AS m, dsum(cost_cny) AS cost FROM ledger WHERE {_WHERE} "
            f"GROUP BY m ORDER BY CAST(cost AS REAL) DESC, COUNT(*) DESC, m "
            f"LIMIT {TOP_SERIES - 1}"
        )
    ]
    chosen = {f"m{i}": model for i, model in enumerate(facts.top_models)}
    among = ", ".join(f":{name}" for name in chosen) or "NULL"
    facts.by_day_model = [
        (int(r[0]), None if r[1] is None else str(r[1]), _usage(r[2:]))
        for r in rows(
            f"SELECT {_DAY} AS day, CASE WHEN {_MODEL} IN ({among}) THEN {_MODEL} END AS m, "
            f"{_SUMS} FROM ledger WHERE {_WHERE} GROUP BY day, m ORDER BY day, m LIMIT 20000",
            chosen,
        )
    ]
    facts.errors = [
        ErrorRow(r[0], str(r[1]), int(r[2]), int(r[3]), float(r[4]))
        for r in rows(
            f"SELECT substr(provider, 1, 64) AS p, "
            f"COALESCE(substr(error_code, 1, {NAME_CHARS}), CAST(status AS TEXT)) AS c, "
            f"status, COUNT(*) AS n, MAX(at) FROM ledger WHERE {_WHERE} AND status >= 400 "
            f"GROUP BY p, c, status ORDER BY n DESC, p, c LIMIT {TOP_ROWS}"
        )
    ]
    providers = rows(
        f"SELECT substr(provider, 1, 64) AS p, COUNT(*) AS n, "
        f"SUM(status >= 400 AND status != 499) FROM ledger "
        f"WHERE {_WHERE} AND provider IS NOT NULL AND status > 0 "
        f"GROUP BY p ORDER BY n DESC, p LIMIT {TOP_ROWS}"
    )
    # Latencies rounded to two significant digits: a histogram of at most ~90 buckets a
    # decade per provider, whose percentiles are within 5% of the exact ones.
    histogram: dict[str, list[tuple[float, int]]] = {}
    for provider, bucket, count in rows(
        f"SELECT substr(provider, 1, 64) AS p, "
        f"CAST(printf('%.2g', latency_ms) AS REAL) AS b, COUNT(*) FROM ledger "
        f"WHERE {_WHERE} AND provider IS NOT NULL AND status > 0 "
        f"GROUP BY p, b ORDER BY p, b LIMIT 100000"
    ):
        histogram.setdefault(str(provider), []).append((float(bucket), int(count)))
    facts.health = [
        Health(
            str(provider),
            int(n),
            int(errors or 0),
            *_percentiles(histogram.get(str(provider), []), (0.50, 0.95, 0.99)),
        )
        for provider, n, errors in providers
    ]
    facts.month_by_key = {
        str(r[0]): _usage(r[1:])
        for r in rows(
            f"SELECT substr(key, 1, 64) AS k, {_SUMS} FROM ledger "
            f"WHERE at >= :month AND at < :until AND error_code IS NOT :in_progress "
            f"GROUP BY k ORDER BY k LIMIT 1000",
            {"month": window.month_start},
        )
    }
    (unfinished,) = connection.execute(
        "SELECT COUNT(*) FROM ledger WHERE at >= :since AND at < :until "
        "AND error_code IS :in_progress",
        args,
    ).fetchone()
    facts.unfinished = int(unfinished)
    return facts


def _percentiles(
    histogram: list[tuple[float, int]], quantiles: Iterable[float]
) -> tuple[Optional[float], ...]:
    """Each quantile of a sorted histogram ``(value, count)``: the smallest value with at
    least that share of the counts at or below it."""
    total = sum(count for _, count in histogram)
    if not total:
        return tuple(None for _ in quantiles)
    found: list[Optional[float]] = []
    for q in quantiles:
        rank = max(1, -(-total * q // 1))  # ceil(total * q), at least the first
        cumulative = 0
        value: Optional[float] = None
        for bucket, count in histogram:
            cumulative += count
            if cumulative >= rank:
                value = bucket
                break
        found.append(value)
    return tuple(found)


# --------------------------------------------------------------------------- rendering


def _e(value: object) -> str:
    """``value`` as HTML text (quotes escaped too: safe in attributes)."""
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _cny(value: Optional[Decimal]) -> str:
    """Yuan to 4 places, or to 6 below a fen (free-tier calls cost millionths of a yuan,
    as `llm-bridge usage` shows them: 4 places showed them as nothing)."""
    if value is None:
        return "–"
    return f"{value:,.6f}" if 0 < abs(value) < Decimal("0.01") else f"{value:,.4f}"


def _ms(value: Optional[float]) -> str:
    if value is None:
        return "–"
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "–"


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(at))


def _day(day: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(day * 86400))


def _json_block(data: Any) -> str:
    """JSON for a ``<script type="application/json">`` block: no ``<``, ``>`` or ``&``
    survives, so no value can end the block or open another element."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return (
        text.replace("&", "\\u0026")
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _asset_url(name: str) -> str:
    asset = _asset(name)
    version = asset[1] if asset is not None else "0"
    return f"/dashboard/static/{name}?v={version}"


@cache
def _asset(name: str) -> Optional[tuple[bytes, str]]:
    """A static file's bytes and the digest its URLs carry (read once per process: the
    files are small and never change while it runs)."""
    try:
        content = (_STATIC_DIR / name).read_bytes()
    except OSError:
        return None
    return content, hashlib.sha256(content).hexdigest()[:16]


def _head(title: str, *, charts: bool) -> str:
    links = [f'<link rel="stylesheet" href="{_e(_asset_url("dashboard.css"))}">']
    if charts:
        links.insert(0, f'<link rel="stylesheet" href="{_e(_asset_url("uPlot.min.css"))}">')
        links.append(f'<script src="{_e(_asset_url("uPlot.iife.min.js"))}" defer></script>')
        links.append(f'<script src="{_e(_asset_url("dashboard.js"))}" defer></script>')
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<link rel="icon" href="data:,">\n'  # no favicon request
        f"<title>{_e(title)}</title>\n" + "\n".join(links) + "\n</head>\n"
    )


_LOGIN_FORM = (
    '<form class="login" method="post" action="/dashboard/login">'
    '<label for="key">Gateway key</label>'
    '<input id="key" name="key" type="password" autocomplete="current-password" '
    'spellcheck="false" required autofocus>'
    '<button type="submit">Sign in</button></form>'
)


def _login_page(message: str = "") -> str:
    notice = f'<p class="notice" role="alert">{_e(message)}</p>' if message else ""
    return (
        _head("Sign in · llm-bridge gateway", charts=False)
        + '<body class="narrow"><main>\n<h1>llm-bridge gateway</h1>\n'
        + "<p>The usage dashboard opens with a gateway key that has <code>admin = true</code> "
        "in its <code>[gateway.keys.NAME]</code> table.</p>\n"
        + notice
        + _LOGIN_FORM
        + '\n<p class="hint">Scripts may send the key as <code>Authorization: Bearer</code> '
        "instead. Signing in keeps a session cookie for 12 hours; the key itself is never "
        "stored in the browser.</p>\n</main></body></html>\n"
    )


def _refused_page(name: str) -> str:
    return (
        _head("Refused · llm-bridge gateway", charts=False)
        + '<body class="narrow"><main>\n<h1>llm-bridge gateway</h1>\n'
        + f'<p class="notice" role="alert">The gateway key <b>{_e(name)}</b> may not open the '
        "dashboard: it has no <code>admin = true</code> in its "
        f"<code>[gateway.keys.{_e(name)}]</code> table.</p>\n"
        + "<p>Sign in with an admin key:</p>"
        + _LOGIN_FORM
        + "\n</main></body></html>\n"
    )


def _message_page(message: str) -> str:
    return (
        _head("llm-bridge gateway", charts=False)
        + f'<body class="narrow"><main>\n<h1>llm-bridge gateway</h1>\n<p>{_e(message)}</p>\n'
        + '<p><a href="/dashboard">The dashboard</a></p>\n</main></body></html>\n'
    )


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, numeric_from: int, id: str
) -> str:
    """A table of already escaped cells (columns from ``numeric_from`` on align right)."""
    head = "".join(
        f'<th scope="col"{" class=num" if i >= numeric_from else ""}>{_e(h)}</th>'
        for i, h in enumerate(headers)
    )
    body = []
    for row in rows:
        cells = "".join(
            f"<td{' class=num' if i >= numeric_from else ''}>{cell}</td>"
            for i, cell in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}" class="empty">None.</td></tr>')
    return (
        f'<table id="{id}"><thead><tr>{head}</tr></thead><tbody>'
        + "".join(body)
        + "</tbody></table>"
    )


def _series(
    days: Sequence[int], points: Iterable[tuple[int, str, Decimal]], *, top: int
) -> dict[str, Any]:
    """Chart series ``{"labels", "values"}``: one per label (the ``top - 1`` dearest, then
    "other"), one value per day."""
    totals: dict[str, Decimal] = {}
    cells: dict[tuple[str, int], Decimal] = {}
    for day, label, value in points:
        totals[label] = totals.get(label, Decimal(0)) + value
        cells[(label, day)] = cells.get((label, day), Decimal(0)) + value
    ranked = sorted(totals, key=lambda label: (-totals[label], label))
    kept = ranked if len(ranked) <= top else ranked[: top - 1]
    labels = list(kept)
    values = [[float(cells.get((label, day), 0)) for day in days] for label in kept]
    rest = [label for label in ranked if label not in kept]
    if rest:
        labels.append("other")
        values.append([float(sum(cells.get((r, day), 0) for r in rest)) for day in days])
    return {"labels": labels, "values": values}


def chart_data(summary: Summary) -> dict[str, Any]:
    """The data the page's charts draw (x: each day's start, Unix seconds)."""
    facts, days = summary.facts, summary.window.days
    per_day = facts.per_day()
    by_key = _series(days, ((d, k, u.cost) for d, k, u in facts.by_day_key), top=TOP_SERIES)
    by_model = _series(
        days,
        ((d, m if m is not None else "other", u.cost) for d, m, u in facts.by_day_model),
        top=TOP_SERIES,
    )
    empty = Usage()
    return {
        "days": [day * 86400 for day in days],
        "spend_by_key": by_key,
        "spend_by_model": by_model,
        "tokens": {
            "labels": ["prompt", "completion"],
            "values": [
                [per_day.get(day, empty).prompt for day in days],
                [per_day.get(day, empty).completion for day in days],
            ],
            "estimated": [per_day.get(day, empty).estimated for day in days],
        },
    }


def render_dashboard(summary: Summary, *, signed_in: str, session: bool) -> str:
    """The dashboard page (every value from the ledger or the config escaped)."""
    facts, window = summary.facts, summary.window
    total = facts.total()
    per_day = facts.per_day()
    parts = [_head("Usage · llm-bridge gateway", charts=True), "<body>\n<header>\n"]
    signout = (
        '<form method="post" action="/dashboard/logout"><button type="submit">Sign out'
        "</button></form>"
        if session
        else ""
    )
    parts.append(
        "<div><h1>llm-bridge gateway · usage</h1>"
        f"<p>The last {len(window.days)} days ({_day(window.days[0])} to "
        f"{_day(window.days[-1])}, UTC), as of {_when(window.until)} UTC. Signed in as "
        f'<b id="signed-in">{_e(signed_in)}</b>.</p></div>{signout}\n</header>\n<main>\n'
    )
    notices = []
    if facts.notice:
        notices.append(facts.notice)
    if summary.state_notice:
        notices.append(summary.state_notice)
    if facts.unfinished:
        notices.append(
            f"{_n(facts.unfinished)} requests have no final entry (in flight now, or cut off "
            "when a gateway process was killed); they are left out below."
        )
    for notice in notices:
        parts.append(f'<p class="notice" role="status">{_e(notice)}</p>\n')
    parts.append(
        '<section class="cards">'
        f'<div class="card"><span>Requests</span><b id="total-requests">{_n(total.requests)}</b>'
        "</div>"
        f'<div class="card"><span>Errors</span><b id="total-errors">{_n(total.errors)}</b>'
        f"<small>{_pct(total.errors, total.requests)} of requests</small></div>"
        f'<div class="card"><span>Tokens</span><b id="total-tokens">{_n(total.tokens)}</b>'
        f"<small>{_pct(total.estimated, total.tokens)} estimated</small></div>"
        f'<div class="card"><span>Spend (CNY)</span><b id="total-spend">{_cny(total.cost)}</b>'
        "</div></section>\n"
    )

    # Spend.
    parts.append(
        '<section id="spend"><h2>Spend per day</h2>\n<div class="charts">'
        "<figure><figcaption>By key (CNY)</figcaption>"
        '<div class="chart" id="chart-spend-key" data-series="spend_by_key" data-unit="CNY">'
        "</div></figure>"
        "<figure><figcaption>By model (CNY)</figcaption>"
        '<div class="chart" id="chart-spend-model" data-series="spend_by_model" '
        'data-unit="CNY"></div></figure></div>\n'
    )
    shown = Usage()
    key_model_rows = []
    for key, model, usage in facts.by_key_model:
        shown.add(usage)
        key_model_rows.append(_usage_cells([_e(key), _e(model)], usage))
    rest = total.minus(shown)
    if rest.requests > 0:
        key_model_rows.append(_usage_cells(["<i>the rest</i>", ""], rest))
    parts.append(
        "<h3>By key and model</h3>"
        + _table(
            ["Key", "Model", "Requests", "Errors", "Prompt", "Completion", "Estimated", "CNY"],
            key_model_rows,
            numeric_from=2,
            id="table-key-model",
        )
    )
    day_rows = [
        _usage_cells([_e(_day(day))], per_day.get(day, Usage())) for day in reversed(window.days)
    ]
    parts.append(
        "<details><summary>Per day</summary>"
        + _table(
            ["Day (UTC)", "Requests", "Errors", "Prompt", "Completion", "Estimated", "CNY"],
            day_rows,
            numeric_from=1,
            id="table-days",
        )
        + "</details></section>\n"
    )

    # Tokens.
    parts.append(
        '<section id="tokens"><h2>Tokens</h2>\n'
        f"<p>{_n(total.prompt)} prompt ({_n(total.cached)} of them read from a provider's "
        f"cache) and {_n(total.completion)} completion tokens; "
        f'<span id="estimated-share">{_pct(total.estimated, total.tokens)}</span> of all '
        "tokens are estimates (counted here because the provider reported no final usage: "
        "the dashed line).</p>\n"
        '<figure><figcaption>Tokens per day</figcaption><div class="chart" id="chart-tokens" '
        'data-series="tokens" data-unit="tokens"></div></figure></section>\n'
    )

    # Errors.
    error_rows = [
        [
            _e(row.provider) if row.provider else "<i>gateway</i>",
            f"<code>{_e(row.code)}</code>",
            _e(row.status),
            _n(row.count),
            _e(_when(row.last_at)),
        ]
        for row in facts.errors
    ]
    parts.append(
        '<section id="errors"><h2>Errors by provider and code</h2>\n'
        "<p>Answers with status 400 or more; <i>gateway</i> marks the gateway's own "
        "(model not allowed, rate limits, budget, bad requests).</p>"
        + _table(
            ["Provider", "Code", "Status", "Count", "Last (UTC)"],
            error_rows,
            numeric_from=2,
            id="table-errors",
        )
        + "</section>\n"
    )

    # Provider health.
    health_rows = [
        [
            _e(h.provider),
            _n(h.requests),
            _n(h.errors),
            _pct(h.errors, h.requests),
            _ms(h.p50),
            _ms(h.p95),
            _ms(h.p99),
        ]
        for h in facts.health
    ]
    parts.append(
        '<section id="health"><h2>Provider health</h2>\n'
        "<p>Latency is the gateway's whole answer (a stream's until its end), in "
        "milliseconds, to two significant digits; the error rate leaves out clients that "
        "hung up (499).</p>"
        + _table(
            ["Provider", "Requests", "Errors", "Error rate", "p50 ms", "p95 ms", "p99 ms"],
            health_rows,
            numeric_from=1,
            id="table-health",
        )
        + "</section>\n"
    )

    # Keys.
    usage_30d: dict[str, Usage] = {}
    for _, key_name, usage in facts.by_day_key:
        usage_30d.setdefault(key_name, Usage()).add(usage)
    key_rows = []
    for key, spent in summary.keys:
        budget = key.monthly_budget_cny
        if budget is None:
            used = "–"
        elif spent is None:
            used = "unknown (state store unreachable)"
        else:
            used = f"{_cny(spent)} ({_pct(float(spent), float(budget))})"
            if budget > 0:
                used += f' <meter min="0" max="{_e(budget)}" value="{_e(spent)}"></meter>'
        month = summary.facts.month_by_key.get(key.name, Usage())
        key_rows.append(
            [
                f"<b>{_e(key.name)}</b>",
                "yes" if key.admin else "",
                _e(", ".join(key.models)) if key.models else "<i>none</i>",
                _n(key.rpm) if key.rpm is not None else "–",
                _n(key.tpm) if key.tpm is not None else "–",
                _cny(budget),
                used,
                _cny(month.cost),
                _n(usage_30d.get(key.name, Usage()).requests),
            ]
        )
    parts.append(
        f'<section id="keys"><h2>Keys</h2>\n<p>Budget use in {_e(summary.period)} is what '
        "the limiter holds (reserved and settled); the ledger's sum of the month beside it. "
        "Keys are shown by name only.</p>"
        + _table(
            [
                "Key",
                "Admin",
                "Models",
                "rpm",
                "tpm",
                "Monthly budget",
                "Used this month",
                "Ledger, month",
                "Requests, 30 days",
            ],
            key_rows,
            numeric_from=3,
            id="table-keys",
        )
        + "</section>\n"
    )
    parts.append(
        '</main>\n<script type="application/json" id="dashboard-data">'
        + _json_block(chart_data(summary))
        + "</script>\n</body></html>\n"
    )
    return "".join(parts)


def _usage_cells(first: list[str], usage: Usage) -> list[str]:
    return [
        *first,
        _n(usage.requests),
        _n(usage.errors),
        _n(usage.prompt),
        _n(usage.completion),
        _pct(usage.estimated, usage.tokens),
        _cny(usage.cost),
    ]


# --------------------------------------------------------------------------- HTTP bits


async def _page(
    send: Any, status: int, body: str, headers: Sequence[tuple[bytes, bytes]] = ()
) -> int:
    data = body.encode("utf-8")
    start = [*_PAGE_HEADERS, *headers, (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": data})
    return status


def _clear_cookie() -> bytes:
    return f"{COOKIE}=; Path=/dashboard; Max-Age=0; HttpOnly; SameSite=Strict".encode()


def _cookie_value(header: str, name: str) -> Optional[str]:
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name and value:
            return value
    return None


def _same_origin(scope: dict[str, Any]) -> bool:
    """Whether a form POST came from the gateway's own pages: a browser says so in
    ``Sec-Fetch-Site``, or names the page's origin in ``Origin``, which must be this host's
    (a client that sends neither, like curl, is not a browser another site can steer)."""
    origin = host = site = None
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name == "origin":
            origin = raw_value.decode("latin-1")
        elif name == "host":
            host = raw_value.decode("latin-1")
        elif name == "sec-fetch-site":
            site = raw_value.decode("latin-1").lower()
    if site is not None:
        return site in ("same-origin", "none")
    if origin is None:
        return True
    parsed = urllib.parse.urlsplit(origin)
    return origin != "null" and host is not None and parsed.netloc == host


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
