"""The gateway's usage dashboard (``/dashboard``): who may open it (admin keys, by header or
by a signed session cookie), what it sums from the ledger (SQLite and Redis alike, bounded),
how it renders hostile names, and, in a real headless Chromium against a real ``llm-bridge
serve`` process, that the page loads with the requests just sent, draws its charts, and
refuses a key without admin rights.

Set ``LLM_BRIDGE_DASHBOARD_SCREENSHOT=docs/dashboard.png`` to keep the browser test's
screenshot (the README shows it)."""

from __future__ import annotations

import asyncio
import calendar
import html.parser
import os
import re
import shutil
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from conftest import SUITE_SECRETS, SUITE_TEXTS

from llm_bridge import ConfigError
from llm_bridge.gateway import (
    GatewayApp,
    LedgerEntry,
    MemoryState,
    SQLiteLedger,
    hash_key,
    load_gateway_config,
)
from llm_bridge.gateway import _dashboard as dashboard
from llm_bridge.gateway._ledger import IN_PROGRESS, NullLedger
from llm_bridge.testing import FakeZhipu

ZHIPU_KEY = "gwdash.zhipusecret0123456789abcdef"
ADMIN_KEY = "sk-lb-dashboardadmin-0123456789abcdef"
TEAM_KEY = "sk-lb-dashboardteam-0123456789abcdef"
BATCH_KEY = "sk-lb-dashboardbatch-0123456789abcdef"
SECRET = "dashboard-session-secret-0123456789abcdef"
SUITE_SECRETS.update(
    {ZHIPU_KEY, ADMIN_KEY, TEAM_KEY, BATCH_KEY, SECRET}
    | {hash_key(k) for k in (ADMIN_KEY, TEAM_KEY, BATCH_KEY)}
)
HELLO = [{"role": "user", "content": "你好"}]
#: A model name a client may send: it lands in the ledger, so the page must escape it.
HOSTILE = "<img src=x onerror=\"document.title='pwned'\">&amp;</script>"
DAY = 86400
#: 2026-12-15 12:00 UTC: fixed, so the window and the month are known.
NOW = float(calendar.timegm((2026, 12, 15, 12, 0, 0)))


def settings(ledger: Any, **gateway: Any) -> dict[str, Any]:
    return {
        "providers": {"zhipu": {"api_key": ZHIPU_KEY}},
        "models": {"fast": "zhipu/glm-4-flash"},
        # 1 and 2 CNY per thousand tokens: costs large enough to see.
        "prices": {"zhipu/glm-4-flash": {"input": 1000, "output": 2000}},
        "gateway": {
            "ledger": str(ledger),
            "keys": {
                "ops": {"key_sha256": hash_key(ADMIN_KEY), "models": [], "admin": True},
                "team": {
                    "key_sha256": hash_key(TEAM_KEY),
                    "models": ["fast", "glm-*"],
                    "rpm": 600,
                    "tpm": 100000,
                    "monthly_budget_cny": 50,
                },
                "batch": {"key_sha256": hash_key(BATCH_KEY), "models": ["*"]},
            },
            **gateway,
        },
    }


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@asynccontextmanager
async def gateway(
    config: dict[str, Any],
    upstream: Optional[httpx.AsyncBaseTransport] = None,
    *,
    clock: Any = time.time,
    **kwargs: Any,
) -> AsyncIterator[tuple[GatewayApp, httpx.AsyncClient]]:
    engine_config, gateway_config = load_gateway_config(config)
    upstream = upstream or FakeZhipu(api_key=ZHIPU_KEY).transport()
    app = GatewayApp(
        engine_config,
        gateway_config,
        http_client=httpx.AsyncClient(transport=upstream),
        clock=clock,
        **kwargs,
    )
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)  # pyright: ignore[reportArgumentType]
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield app, client
    finally:
        await app.shutdown()


def seen(response: httpx.Response) -> httpx.Response:
    """Hand what the gateway answered to the suite's secret scan (all but ``Set-Cookie``, the
    one place a session token belongs), and check here that no answer ever holds a key or
    a key's digest, there included."""
    for key in (ADMIN_KEY, TEAM_KEY, BATCH_KEY):
        whole = f"{response.headers!r} {response.text}"
        assert key not in whole and hash_key(key) not in whole
    headers = [(k, v) for k, v in response.headers.items() if k.lower() != "set-cookie"]
    SUITE_TEXTS.append(f"{headers!r} {response.text}")
    return response


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def session(token: str) -> dict[bytes, bytes]:
    """The header a browser sends with a session cookie."""
    return {b"cookie": f"{dashboard.COOKIE}={token}".encode()}


class _Tables(html.parser.HTMLParser):
    """Each ``<table id=...>`` of a page as rows of cell texts, and each element's text by
    id (what a reader sees: entities decoded, tags dropped)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.texts: dict[str, str] = {}
        self._table: Optional[str] = None
        self._cell: Optional[list[str]] = None
        self._ids: list[tuple[str, str, list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, Optional[str]]]) -> None:
        found = dict(attrs).get("id")
        if tag == "table" and found:
            self._table = found
            self.tables[found] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th") and self._table:
            self._cell = []
        if found and tag not in ("table", "meta", "link", "input"):
            self._ids.append((tag, found, []))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None
        if self._ids and self._ids[-1][0] == tag:
            _, found, parts = self._ids.pop()
            self.texts[found] = "".join(parts).strip()

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        for _, _, parts in self._ids:
            parts.append(data)


def parse(page: str) -> _Tables:
    parser = _Tables()
    parser.feed(page)
    return parser


def rows_of(page: str, table: str) -> list[list[str]]:
    """A table's body rows (its header row left out)."""
    return parse(page).tables[table][1:]


# --------------------------------------------------------------------------- config


def test_admin_is_a_checked_per_key_flag(tmp_path: Path) -> None:
    _, parsed = load_gateway_config(settings(tmp_path / "l.sqlite"))
    flags = {key.name: key.admin for key in parsed.keys}
    assert flags == {"ops": True, "team": False, "batch": False}
    bad = settings(tmp_path / "l.sqlite")
    bad["gateway"]["keys"]["team"]["admin"] = "yes"
    with pytest.raises(ConfigError, match=r"gateway\.keys\.team\.admin: expected true or false"):
        load_gateway_config(bad)
    typo = settings(tmp_path / "l.sqlite")
    typo["gateway"]["keys"]["team"]["admn"] = True
    with pytest.raises(ConfigError, match=r"unknown key 'admn' \(known: admin, key_sha256"):
        load_gateway_config(typo)


def test_a_short_session_secret_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(dashboard.SECRET_ENV, "too-short")
    engine_config, gateway_config = load_gateway_config(settings(tmp_path / "l.sqlite"))
    with pytest.raises(ConfigError, match="at least 32 characters"):
        GatewayApp(engine_config, gateway_config)


# --------------------------------------------------------------------------- signing in


async def test_who_may_open_the_dashboard(tmp_path: Path) -> None:
    async with gateway(settings(tmp_path / "l.sqlite")) as (_, client):
        # No key: the sign-in form, 401, with the page's security headers.
        response = seen(await client.get("/dashboard"))
        assert response.status_code == 401
        assert response.headers["content-type"] == "text/html; charset=utf-8"
        assert response.headers["www-authenticate"].startswith("Bearer ")
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "default-src 'none'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"
        assert 'action="/dashboard/login"' in response.text and 'type="password"' in response.text
        # A key that is not one: 401 again; a key without admin rights: 403.
        response = seen(await client.get("/dashboard", headers=bearer("sk-lb-not-a-key")))
        assert response.status_code == 401 and "not valid" in response.text
        response = seen(await client.get("/dashboard", headers=bearer(TEAM_KEY)))
        assert response.status_code == 403
        assert "<b>team</b> may not open the dashboard" in response.text
        response = seen(await client.get("/dashboard", headers={"api-key": BATCH_KEY}))
        assert response.status_code == 403
        # An admin key: the page.
        response = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY)))
        assert response.status_code == 200
        assert parse(response.text).texts["signed-in"] == "ops"
        assert "content-security-policy" in response.headers
        # Other methods and pages.
        response = seen(await client.post("/dashboard", headers=bearer(ADMIN_KEY)))
        assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
        response = seen(await client.get("/dashboard/nothing", headers=bearer(ADMIN_KEY)))
        assert response.status_code == 404
        response = seen(await client.get("/dashboard/login"))
        assert response.status_code == 405


async def test_a_browser_signs_in_with_a_form_and_gets_a_signed_session(tmp_path: Path) -> None:
    clock = Clock(NOW)
    async with gateway(settings(tmp_path / "l.sqlite"), clock=clock) as (app, client):
        login = {"key": ADMIN_KEY}
        origin = {"origin": "http://gw"}
        response = seen(await client.post("/dashboard/login", data=login, headers=origin))
        assert response.status_code == 303 and response.headers["location"] == "/dashboard"
        cookie = response.headers["set-cookie"]
        name, _, rest = cookie.partition("=")
        token, _, attributes = rest.partition(";")
        SUITE_SECRETS.add(token)
        client.cookies.clear()  # each request below names its cookie itself
        assert name == dashboard.COOKIE
        assert {a.strip() for a in attributes.split(";")} == {
            "Path=/dashboard",
            f"Max-Age={dashboard.SESSION_SECONDS}",
            "HttpOnly",
            "SameSite=Strict",
        }
        # The token is the key's name, an expiry and a signature: never the key.
        assert ADMIN_KEY not in token and hash_key(ADMIN_KEY) not in token
        jar = session(token)
        response = seen(await client.get("/dashboard", headers=jar))
        assert response.status_code == 200 and parse(response.text).texts["signed-in"] == "ops"
        assert 'action="/dashboard/logout"' in response.text

        # A forged or altered token is refused, and the browser told to drop it.
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        for bad in (forged, "b3Bz.99999999999.AAAA", "not-a-token", "b3Bz.²³.AAAA"):
            response = seen(await client.get("/dashboard", headers=session(bad)))
            assert response.status_code == 401, bad
            assert response.headers["set-cookie"].startswith(f"{dashboard.COOKIE}=;")
        # The same name with another process's secret: refused too.
        other = dashboard.Dashboard(app)
        keys = {k.name: k for k in app.gateway.keys}
        alien = other.session_token(keys["ops"], NOW)
        response = seen(await client.get("/dashboard", headers=session(alien)))
        assert response.status_code == 401
        # A token for a key that is not admin never validates (none is issued either).
        not_admin = app.dashboard.session_token(keys["team"], NOW)
        response = seen(await client.get("/dashboard", headers=session(not_admin)))
        assert response.status_code == 401

        # Sessions end after SESSION_SECONDS.
        clock.now = NOW + dashboard.SESSION_SECONDS + 1
        response = seen(await client.get("/dashboard", headers=jar))
        assert response.status_code == 401 and "session has ended" in response.text
        clock.now = NOW

        # Signing out clears the cookie.
        response = seen(
            await client.post("/dashboard/logout", headers={**jar, b"origin": b"http://gw"})
        )
        assert response.status_code == 200
        assert response.headers["set-cookie"].startswith(f"{dashboard.COOKIE}=;")
        assert "Max-Age=0" in response.headers["set-cookie"]

        # Refusals: a key without admin rights (403), a wrong key (401), both cookie-less;
        # a sign-in posted from another site (403); an oversized form (413).
        response = seen(
            await client.post("/dashboard/login", data={"key": TEAM_KEY}, headers=origin)
        )
        assert response.status_code == 403 and "set-cookie" not in response.headers
        response = seen(
            await client.post("/dashboard/login", data={"key": "sk-wrong"}, headers=origin)
        )
        assert response.status_code == 401 and "set-cookie" not in response.headers
        assert "sk-wrong" not in response.text  # a key typed is never echoed
        response = seen(
            await client.post(
                "/dashboard/login", data=login, headers={"origin": "https://evil.example"}
            )
        )
        assert response.status_code == 403 and "set-cookie" not in response.headers
        response = seen(
            await client.post("/dashboard/login", content=b"key=" + b"x" * 5000, headers=origin)
        )
        assert response.status_code == 413


async def test_workers_sharing_the_secret_accept_each_others_sessions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``llm-bridge serve --workers N`` (or replicas behind one balancer) with the same
    ``$LLM_BRIDGE_GATEWAY_DASHBOARD_SECRET``: a session from one is valid on another."""
    monkeypatch.setenv(dashboard.SECRET_ENV, SECRET)
    config = settings(tmp_path / "l.sqlite")
    async with gateway(config) as (_, first), gateway(config) as (_, second):
        response = seen(await first.post("/dashboard/login", data={"key": ADMIN_KEY}))
        token = response.cookies[dashboard.COOKIE]
        SUITE_SECRETS.add(token)
        response = seen(await second.get("/dashboard", headers=session(token)))
        assert response.status_code == 200


# --------------------------------------------------------------------------- static files


async def test_static_files_are_served_with_types_and_caching(tmp_path: Path) -> None:
    async with gateway(settings(tmp_path / "l.sqlite")) as (_, client):
        page = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY))).text
        urls = re.findall(r'(?:src|href)="(/dashboard/static/[^"]+)"', page)
        assert {url.split("?")[0].rsplit("/", 1)[1] for url in urls} == {
            "uPlot.iife.min.js",
            "uPlot.min.css",
            "dashboard.js",
            "dashboard.css",
        }
        for url in urls:  # static files need no key: they hold no data
            response = await client.get(url)
            assert response.status_code == 200, url
            kind = "text/javascript" if url.split("?")[0].endswith(".js") else "text/css"
            assert response.headers["content-type"] == f"{kind}; charset=utf-8"
            assert response.headers["x-content-type-options"] == "nosniff"
            # Pages name each file by its digest, so such a URL is cached for good.
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
            etag = response.headers["etag"]
            again = await client.get(url, headers={"if-none-match": etag})
            assert again.status_code == 304 and again.content == b""
        library = await client.get("/dashboard/static/uPlot.iife.min.js")
        assert library.headers["cache-control"] == "public, no-cache"  # no digest in the URL
        assert library.content.startswith(b"/*! https://github.com/leeoniya/uPlot (v1.6.32)")
        head = await client.head("/dashboard/static/dashboard.css")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) > 100
        for missing in ("/dashboard/static/README.md", "/dashboard/static/../_app.py"):
            assert (await client.get(missing)).status_code == 404
        metrics = (await client.get("/metrics")).text
        assert 'route="/dashboard/static/{file}",status="200"' in metrics
        assert 'route="/dashboard",status="200"' in metrics


def test_the_vendored_library_ships_with_its_licence() -> None:
    static = Path(dashboard.__file__).parent / "static"
    assert "MIT License" in (static / "uPlot.LICENSE").read_text()
    assert (static / "uPlot.iife.min.js").stat().st_size < 100_000  # a small library


# --------------------------------------------------------------------------- the sums


def entry(
    n: int,
    at: float,
    *,
    key: str = "team",
    model: str = "fast",
    provider: Optional[str] = "zhipu",
    prompt: int = 0,
    completion: int = 0,
    cost: Optional[str] = None,
    status: int = 200,
    code: Optional[str] = None,
    latency: float = 100.0,
    estimated: bool = False,
    cached: int = 0,
) -> LedgerEntry:
    return LedgerEntry(
        request_id=f"gw-test-{n:06d}",
        at=at,
        key=key,
        model=model,
        provider=provider,
        upstream_model="glm-4-flash" if provider else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=cached,
        estimated=estimated,
        cost_cny=Decimal(cost) if cost is not None else None,
        latency_ms=latency,
        status=status,
        error_code=code,
        extra={"route": "/v1/chat/completions"},
    )


def history(now: float) -> list[LedgerEntry]:
    """A month of ledger entries around ``now``, each kind the dashboard tells apart."""
    entries = [
        entry(1, now - 60, prompt=100, completion=50, cost="0.1", cached=20),
        entry(2, now - 120, prompt=10, completion=10, cost="0.2", estimated=True, latency=200),
        entry(
            3,
            now - DAY,
            key="batch",
            model="glm-4-plus",
            prompt=1000,
            completion=500,
            cost="1.25",
            latency=1000,
        ),
        entry(4, now - 20 * DAY, prompt=5, completion=5, cost="2"),  # in the window
        entry(5, now - 31 * DAY, prompt=5, completion=5, cost="100"),  # before it
        entry(
            6,
            now - 30,
            model=HOSTILE,
            provider=None,
            status=403,
            code="model_not_allowed",
            latency=1,
        ),
        entry(7, now - 40, status=500, code="1234", latency=50),
        entry(8, now - 50, status=499, code="client_disconnected", latency=5000),
        entry(9, now - 10, provider=None, status=0, code=IN_PROGRESS, latency=0),
    ]
    # 100 calls to another provider, 1 to 100 ms: exact percentiles.
    entries += [
        entry(
            100 + i,
            now - 2 * DAY,
            key="batch",
            model="qwen-plus",
            provider="dashscope",
            prompt=1,
            completion=1,
            cost="0.001",
            latency=float(i + 1),
        )
        for i in range(100)
    ]
    return entries


async def write_all(ledger: Any, entries: list[LedgerEntry]) -> None:
    for item in entries:
        await ledger.write(item)
    await ledger.flush()


async def test_the_ledger_is_summed_by_day_key_model_provider_and_code(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    await write_all(ledger, history(NOW))
    state = MemoryState()
    await state.reserve("team", "2026-12", amount=Decimal("12.5"), budget=Decimal(50))
    config = settings(ledger.path)
    async with gateway(config, clock=Clock(NOW), ledger=ledger, state=state) as (app, client):
        summary = await app.dashboard.summary()
        page = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY))).text
    facts = summary.facts
    window = summary.window
    assert len(window.days) == 30 and window.days[-1] == int(NOW // DAY)
    assert window.since == (int(NOW // DAY) - 29) * DAY

    total = facts.total()  # entries 1-4, 6-8 and the 100 DashScope calls
    assert total.requests == 107 and total.errors == 3
    assert total.cost == Decimal("0.1") + Decimal("0.2") + Decimal("1.25") + 2 + Decimal("0.1")
    assert total.prompt == 100 + 10 + 1000 + 5 + 100 and total.cached == 20
    assert total.estimated == 20  # entry 2's tokens
    assert facts.unfinished == 1

    today = int(NOW // DAY)
    per_day = facts.per_day()
    assert per_day[today].requests == 5 and per_day[today].cost == Decimal("0.3")
    assert per_day[today - 1].cost == Decimal("1.25")
    assert per_day[today - 20].cost == Decimal(2)
    assert today - 31 not in per_day

    by_pair = {(k, m): u for k, m, u in facts.by_key_model}
    assert by_pair[("team", "fast")].requests == 5  # 1, 2, 4, 7, 8
    assert by_pair[("team", "fast")].cost == Decimal("2.3")
    assert by_pair[("team", HOSTILE)].errors == 1
    assert facts.by_key_model[0][:2] == ("team", "fast")  # the dearest first
    assert facts.top_models[:3] == ["fast", "glm-4-plus", "qwen-plus"]

    errors = {(e.provider, e.code, e.status): e.count for e in facts.errors}
    assert errors == {
        (None, "model_not_allowed", 403): 1,
        ("zhipu", "1234", 500): 1,
        ("zhipu", "client_disconnected", 499): 1,
    }
    health = {h.provider: h for h in facts.health}
    assert set(health) == {"zhipu", "dashscope"}
    assert (health["dashscope"].p50, health["dashscope"].p95, health["dashscope"].p99) == (
        50.0,
        95.0,
        99.0,
    )
    assert health["dashscope"].requests == 100 and health["dashscope"].errors == 0
    # zhipu: entries 1, 2, 3, 4, 7, 8; the 499 is no provider error.
    assert health["zhipu"].requests == 6 and health["zhipu"].errors == 1
    assert health["zhipu"].p50 == 100.0 and health["zhipu"].p99 == 5000.0

    # The month: December only (entry 4 is from November).
    assert facts.month_by_key["team"].cost == Decimal("0.3")
    assert facts.month_by_key["batch"].cost == Decimal("1.25") + Decimal("0.1")
    assert dict((k.name, spent) for k, spent in summary.keys)["team"] == Decimal("12.5")

    # The page: the same numbers, every name escaped.
    found = parse(page)
    assert found.texts["total-requests"] == "107" and found.texts["total-spend"] == "3.6500"
    assert found.texts["estimated-share"] == f"{100 * 20 / total.tokens:.1f}%"
    assert HOSTILE not in page and "<img" not in page
    assert [cells[1] for cells in rows_of(page, "table-key-model") if "img" in cells[1]] == [
        HOSTILE
    ]
    keys = {row[0]: row for row in rows_of(page, "table-keys")}
    assert keys["team"][5] == "50.0000" and keys["team"][6].startswith("12.5000 (25.0%)")
    assert keys["ops"][1] == "yes" and keys["ops"][2] == "none"
    assert keys["team"][7] == "0.3000"  # the ledger's sum of the month
    error_rows = rows_of(page, "table-errors")
    assert error_rows[[r[1] for r in error_rows].index("1234")][:4] == ["zhipu", "1234", "500", "1"]
    assert ["gateway", "model_not_allowed", "403", "1"] in [r[:4] for r in error_rows]
    health_rows = {row[0]: row for row in rows_of(page, "table-health")}
    assert health_rows["dashscope"][4:] == ["50", "95", "99"]
    assert health_rows["zhipu"][3] == "16.7%"
    assert "1 requests have no final entry" in page
    # The chart data: a JSON block no value can break out of.
    block = page.split('id="dashboard-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in block and ">" not in block and "&" not in block
    chart = dashboard.chart_data(summary)
    assert chart["days"][-1] == today * DAY and len(chart["days"]) == 30
    assert chart["spend_by_key"]["labels"] == ["team", "batch"]
    assert chart["spend_by_key"]["values"][0][-1] == pytest.approx(0.3)
    assert chart["tokens"]["estimated"][-1] == 20


def test_charts_keep_the_dearest_series_and_sum_the_rest() -> None:
    days = (1, 2)
    points = [(1, f"k{i}", Decimal(i)) for i in range(12)] + [(2, "k11", Decimal(1))]
    series = dashboard._series(days, points, top=8)
    assert series["labels"] == ["k11", "k10", "k9", "k8", "k7", "k6", "k5", "other"]
    assert series["values"][0] == [11.0, 1.0]
    assert series["values"][-1] == [float(sum(range(5))), 0.0]


async def test_the_page_sums_requests_sent_through_the_gateway(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("好").reply("好的").fail("server_error")
    config = settings(tmp_path / "ledger.sqlite", max_retries=0)
    async with gateway(config, fake.transport()) as (app, client):
        for model in ("fast", "fast", "fast", HOSTILE):
            await client.post(
                "/v1/chat/completions",
                headers=bearer(TEAM_KEY),
                json={"model": model, "messages": HELLO},
            )
        page = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY))).text
        spent = await app.state.spent("team", app._period())
    found = parse(page)
    assert found.texts["total-requests"] == "4" and found.texts["total-errors"] == "2"
    errors = [row[:4] for row in rows_of(page, "table-errors")]
    assert ["zhipu", "500", "500", "1"] in errors
    assert ["gateway", "model_not_allowed", "403", "1"] in errors
    keys = {row[0]: row for row in rows_of(page, "table-keys")}
    assert spent == Decimal("0.006") and keys["team"][6].startswith("0.006000 (")
    assert keys["team"][8] == "4"


async def test_without_a_ledger_the_page_says_so(tmp_path: Path) -> None:
    config = settings("none")
    async with gateway(config, ledger=NullLedger()) as (_, client):
        page = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY))).text
    assert 'ledger = "none"' in html.unescape(page) and parse(page).texts["total-requests"] == "0"


async def test_an_unreadable_ledger_gives_a_page_with_a_notice(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    async with gateway(settings(ledger.path), ledger=ledger) as (_, client):
        (tmp_path / "ledger.sqlite").unlink()
        (tmp_path / "ledger.sqlite").mkdir()  # not a database any more
        response = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY)))
        (tmp_path / "ledger.sqlite").rmdir()
    assert response.status_code == 200 and "The ledger could not be read" in response.text


async def test_concurrent_page_loads_share_one_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = 0
    original = dashboard._file_facts

    def counted(*args: Any) -> dashboard.Facts:
        nonlocal calls
        calls += 1
        # sqlite3 blocks: the reading must run on a worker thread, never the event loop's.
        assert threading.current_thread() is not threading.main_thread()
        time.sleep(0.2)
        return original(*args)

    monkeypatch.setattr(dashboard, "_file_facts", counted)
    async with gateway(settings(tmp_path / "ledger.sqlite")) as (_, client):
        loads = asyncio.gather(
            *(client.get("/dashboard", headers=bearer(ADMIN_KEY)) for _ in range(5))
        )
        await asyncio.sleep(0.05)  # the reading is under way on its thread
        # The event loop is free meanwhile: another request is answered before the pages.
        assert (await client.get("/healthz")).status_code == 200
        assert not loads.done()
        pages = await loads
        assert all(p.status_code == 200 and "could not be read" not in p.text for p in pages)
        assert calls == 1
        await client.get("/dashboard", headers=bearer(ADMIN_KEY))
        assert calls == 2  # a later load reads again


async def test_a_redis_ledger_gives_the_same_sums_and_is_read_in_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from redis_server import RedisServer

    from llm_bridge.gateway._redis import RedisLedger

    now = time.time()  # stream IDs are Redis's clock: the entries must be near it
    entries = history(now)
    sqlite_ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    await write_all(sqlite_ledger, entries)
    with RedisServer(tmp_path / "redis") as server:
        redis_ledger = RedisLedger.from_url(server.url)
        try:
            # A request's final entry replaces its provisional one for the dashboard too.
            await redis_ledger.write(entry(1, now - 61, provider=None, status=0, code=IN_PROGRESS))
            await write_all(redis_ledger, entries)
            window = dashboard.Window.ending(now)
            from_sqlite = await dashboard.read_facts(sqlite_ledger, window)
            from_redis = await dashboard.read_facts(redis_ledger, window)
            assert from_redis == from_sqlite and from_redis.total().requests == 107

            # At most MAX_REDIS_ENTRIES are read (the newest), and the page says so.
            await write_all(
                redis_ledger,
                [entry(10_000 + i, now - 5, prompt=1, cost="0.01") for i in range(1500)],
            )
            monkeypatch.setattr(dashboard, "MAX_REDIS_ENTRIES", 1000)
            partial = await dashboard.read_facts(redis_ledger, window)
            assert partial.total().requests == 1000
            assert partial.notice and "read in part: its newest 1,000 entries" in partial.notice
        finally:
            await redis_ledger.close()
            await sqlite_ledger.close()
        # Redis gone: the page still answers, with a notice.
        config = settings("redis", state=server.url)
        async with gateway(config) as (app, client):
            server.stop()
            response = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY)))
            assert response.status_code == 200
            assert "The ledger could not be read" in response.text
            # (state_failure = "open": the limiter goes on in memory, and the page says so)
            assert "The shared state store is unreachable" in response.text
            assert app.state is not None
        # state_failure = "closed": nothing to show for the budgets but that.
        async with gateway(
            {**config, "gateway": {**config["gateway"], "state_failure": "closed"}}
        ) as (_, client):
            response = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY)))
            team = {row[0]: row for row in rows_of(response.text, "table-keys")}["team"]
            assert team[6] == "unknown (state store unreachable)"


# --------------------------------------------------------------------------- in a browser


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    from browser import headless_chromium

    with headless_chromium(width=1280, height=900) as driver:
        yield driver


def seed_history(path: Path, now: float) -> None:
    """Earlier days for the charts to show (today's entries all come from real requests
    through the gateway, sent by the test)."""

    async def write() -> None:
        ledger = SQLiteLedger(path)
        rows = []
        for back in range(1, 30):
            at = now - back * DAY
            for i, (key, model, base) in enumerate(
                (("team", "fast", 0.8), ("team", "glm-4-plus", 2.1), ("batch", "embedding-3", 0.4))
            ):
                wave = 1 + 0.5 * ((back * (i + 3)) % 7) / 7
                prompt = int(4000 * base * wave)
                rows.append(
                    entry(
                        back * 10 + i,
                        at,
                        key=key,
                        model=model,
                        prompt=prompt,
                        completion=prompt // 3,
                        cost=f"{base * wave:.4f}",
                        estimated=(back + i) % 9 == 0,
                        latency=300 + 40 * ((back + i) % 11),
                    )
                )
        await write_all(ledger, rows)
        await ledger.close()

    asyncio.run(write())


def pixels(driver: Any, chart_id: str) -> dict[str, int]:
    """Pixels drawn on a chart's canvas: all, and those of its first series' colour."""
    return driver.execute_script(
        """
        const canvas = document.querySelector('#' + arguments[0] + ' canvas');
        if (!canvas) return {drawn: 0, bars: 0};
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let drawn = 0, bars = 0;
        for (let i = 0; i < data.length; i += 4) {
          if (data[i + 3] > 0) drawn++;
          // #2563eb, the first series' colour (a bar's fill or edge)
          if (data[i + 3] > 100 && Math.abs(data[i] - 37) < 30 && Math.abs(data[i + 1] - 99) < 30
              && data[i + 2] > 200) bars++;
        }
        return {drawn: drawn, bars: bars};
        """,
        chart_id,
    )


def test_the_dashboard_in_a_real_browser(tmp_path: Path, chromium: Any) -> None:
    """``llm-bridge serve`` in front of a provider fake; real requests through it; then the
    dashboard in headless Chromium: the sign-in form, a key without admin rights refused,
    the page with today's requests, its charts drawn, no script error and no CSP
    violation; then a hostile model name, shown as text."""
    from selenium.webdriver.common.by import By
    from test_gateway_server import ZHIPU_KEY as SERVER_ZHIPU_KEY
    from test_gateway_server import running_gateway

    from llm_bridge.testing import serve

    started = time.monotonic()
    seed_history(tmp_path / "ledger.sqlite", time.time())
    keys = f"""
[gateway.keys.ops]
key_sha256 = "{hash_key(ADMIN_KEY)}"
models = []
admin = true

[gateway.keys.team]
key_sha256 = "{hash_key(TEAM_KEY)}"
models = ["fast", "glm-*"]
rpm = 600
monthly_budget_cny = 50

[gateway.keys.batch]
key_sha256 = "{hash_key(BATCH_KEY)}"
models = ["*"]
"""
    prices = """
[prices."zhipu/glm-4-flash"]
input = 1000
output = 2000
"""
    fake = FakeZhipu(api_key=SERVER_ZHIPU_KEY)
    with (
        serve(fake) as upstream,
        running_gateway(
            tmp_path, upstream, keys=keys, tables=prices, extra="max_retries = 0"
        ) as server,
    ):
        # Real requests: answers, a stream, a provider failure, a model not allowed.
        fake.reply("你好！").reply("一二三四", chunk_size=1).fail("server_error").reply("好")
        with httpx.Client(base_url=server.url, timeout=20) as api:
            statuses = [
                api.post(
                    "/v1/chat/completions",
                    headers=bearer(key),
                    json={"model": model, "messages": HELLO, **extra},
                ).status_code
                for key, model, extra in (
                    (TEAM_KEY, "fast", {}),
                    (TEAM_KEY, "fast", {"stream": True}),
                    (TEAM_KEY, "fast", {}),
                    (TEAM_KEY, "qwen-max", {}),
                    (BATCH_KEY, "glm-4-flash", {}),
                )
            ]
            assert statuses == [200, 200, 500, 403, 200]
            # The answers a script gets: 401 without a key, 403 without admin rights.
            assert seen(api.get("/dashboard")).status_code == 401
            assert seen(api.get("/dashboard", headers=bearer(TEAM_KEY))).status_code == 403
            assert seen(api.get("/dashboard", headers=bearer(ADMIN_KEY))).status_code == 200
            server.entries(29 * 3 + 5)  # the seeded days and today's five, all final

            driver = chromium
            # No session: the sign-in form.
            driver.get(server.url + "/dashboard")
            assert find(driver, "form.login input[type=password]")
            # A key without admin rights is refused, and gets no session.
            sign_in(driver, TEAM_KEY)
            notice = find(driver, ".notice").text
            assert "team may not open the dashboard" in notice
            assert driver.get_cookie(dashboard.COOKIE) is None
            # So far the console holds only those two answers (as "failed" loads; the driver
            # hands the console over as it comes, so it is read until both are there).
            console: list[dict[str, Any]] = []

            def both_logged() -> bool:
                logged = driver.get_log("browser")
                console.extend(e for e in logged if e["level"] in ("SEVERE", "WARNING"))
                return len(console) >= 2

            wait_for(both_logged)
            time.sleep(0.2)
            both_logged()
            assert [re.sub(r"^\S+ - ", "", e["message"]) for e in console] == [
                "Failed to load resource: the server responded with a status of 401 (Unauthorized)",
                "Failed to load resource: the server responded with a status of 403 (Forbidden)",
            ], console
            # The admin key: the dashboard, with a session the page's scripts cannot read.
            sign_in(driver, ADMIN_KEY)
            assert find(driver, "#signed-in").text == "ops"
            assert driver.current_url == server.url + "/dashboard"
            cookie = driver.get_cookie(dashboard.COOKIE)
            assert cookie is not None
            SUITE_SECRETS.add(cookie["value"])
            assert cookie["httpOnly"] is True and cookie["sameSite"] == "Strict"
            assert driver.execute_script("return document.cookie") == ""

            # The charts are drawn: a canvas each, with bars in the first series' colour.
            wait_for(lambda: driver.execute_script("return document.body.dataset.charts") == "3")
            for chart in ("chart-spend-key", "chart-spend-model", "chart-tokens"):
                element = driver.find_element(By.ID, chart)
                assert element.get_attribute("data-drawn") == "true"
                drawn = pixels(driver, chart)
                assert drawn["drawn"] > 5000 and drawn["bars"] > 200, (chart, drawn)
                legend = element.find_elements(By.CSS_SELECTOR, ".u-legend .u-series")
                assert len(legend) >= 3, chart  # x, and a series or more
            legend_text = driver.find_element(By.ID, "chart-spend-key").text
            assert "team" in legend_text and "batch" in legend_text

            # Today's real requests are there.
            SUITE_TEXTS.append(driver.page_source)
            errors = table(driver, "table-errors")
            assert ["zhipu", "500", "500", "1"] in [row[:4] for row in errors]
            assert ["gateway", "model_not_allowed", "403", "1"] in [row[:4] for row in errors]
            assert ["team", "qwen-max", "1", "1"] in [
                row[:4] for row in table(driver, "table-key-model")
            ]
            keys_shown = {row[0]: row for row in table(driver, "table-keys")}
            assert set(keys_shown) == {"ops", "team", "batch"}
            assert keys_shown["team"][5] == "50.0000" and keys_shown["team"][6] != "0.0000 (0.0%)"
            health = {row[0]: row for row in table(driver, "table-health")}
            assert health["zhipu"][1] != "0"
            today = time.strftime("%Y-%m-%d", time.gmtime())
            driver.find_element(By.CSS_SELECTOR, "#spend details summary").click()
            days = {row[0]: row for row in table(driver, "table-days")}
            assert days[today][1] == "5" and days[today][2] == "2"  # requests, errors

            # No script error, no Content-Security-Policy violation, no failed load.
            console = driver.get_log("browser")
            SUITE_TEXTS.append(repr(console))
            assert [e for e in console if e["level"] in ("SEVERE", "WARNING")] == [], console

            # The screenshot: the whole page (a viewport as tall as it, through Chrome's
            # DevTools), the per-day table folded again.
            driver.execute_script("document.querySelector('#spend details').open = false")
            height = int(driver.execute_script("return document.documentElement.scrollHeight"))
            metrics = {"width": 1280, "height": height, "deviceScaleFactor": 1, "mobile": False}
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
            try:
                time.sleep(0.3)  # the charts follow the resize
                shot = tmp_path / "dashboard.png"
                assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 20_000
            finally:
                driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
            target = os.environ.get("LLM_BRIDGE_DASHBOARD_SCREENSHOT")
            if target:
                shutil.copy(shot, target)

            # A model name is whatever a client sends: it is shown as text, and runs nothing.
            refused = api.post(
                "/v1/chat/completions",
                headers=bearer(TEAM_KEY),
                json={"model": HOSTILE, "messages": HELLO},
            )
            assert refused.status_code == 403
            server.entries(29 * 3 + 6)
            driver.refresh()
            wait_for(lambda: driver.execute_script("return document.body.dataset.charts") == "3")
            SUITE_TEXTS.append(driver.page_source)
            assert HOSTILE in [row[1] for row in table(driver, "table-key-model")]
            assert HOSTILE in driver.find_element(By.ID, "chart-spend-model").text  # the legend
            assert driver.title == "Usage · llm-bridge gateway"  # no onerror ran
            assert not driver.find_elements(By.CSS_SELECTOR, "img")
            assert [e for e in driver.get_log("browser") if e["level"] == "SEVERE"] == []

            # Signing out ends the session.
            driver.find_element(By.CSS_SELECTOR, "header form button").click()
            assert find(driver, "form.login") and find(driver, ".notice").text == "Signed out."
            assert driver.get_cookie(dashboard.COOKIE) is None
    assert time.monotonic() - started < 60


def sign_in(driver: Any, key: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    field = driver.find_element(By.CSS_SELECTOR, "form.login input[name=key]")
    field.send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "form.login button").click()
    WebDriverWait(driver, 10).until(lambda _: gone(field))
    wait_for(lambda: driver.execute_script("return document.readyState") == "complete")


def gone(element: Any) -> bool:
    """Whether ``element`` left the page (a navigation replaced it). While the old page is
    torn down, chromedriver may answer "Node with given id does not belong to the
    document" instead of a stale-element error: gone too (seen with Chromium 156)."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as error:
        if "does not belong to the document" in str(error):
            return True
        raise
    return False


def find(driver: Any, css: str, timeout: float = 10.0) -> Any:
    """The element ``css`` selects, once the page (after a navigation) has it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    located = expected_conditions.presence_of_element_located((By.CSS_SELECTOR, css))
    return WebDriverWait(driver, timeout).until(located)


def table(driver: Any, table_id: str) -> list[list[str]]:
    """A table's body rows as the browser shows them."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        ".map(tr => Array.from(tr.cells).map(td => td.textContent.trim()));",
        table_id,
    )


def wait_for(condition: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the page did not get there in time")
        time.sleep(0.05)


async def test_a_spend_of_millionths_of_a_yuan_is_shown(tmp_path: Path) -> None:
    """Four free-tier calls cost 0.000048 CNY: the page showed 0.0000 at 4 places."""
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    await write_all(ledger, [entry(n, NOW - 60, cost="0.000012") for n in range(4)])
    config = settings(ledger.path)
    async with gateway(config, clock=Clock(NOW), ledger=ledger) as (_, client):
        page = seen(await client.get("/dashboard", headers=bearer(ADMIN_KEY))).text
    assert parse(page).texts["total-spend"] == "0.000048"
