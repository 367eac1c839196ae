"""Review 14 of the gateway, operated as a platform team would: limits that must hold
(tpm counting what a call used beyond its estimate, budgets across a restart, a budget
refusal giving its tokens back, a request that can never fit saying so), HEAD on what
answers GET, the model list agreeing with what a key may use, the 403 naming the models
a key may use, and ``llm-bridge usage`` stating its clock. Provider traffic goes to the
wire-exact Zhipu fake; the gateway is reached in process through ``httpx.ASGITransport``
(the Redis test runs a real redis-server on loopback)."""

from __future__ import annotations

import asyncio
import calendar
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cli_support import run_cli
from conftest import SUITE_SECRETS, SUITE_TEXTS
from redis_server import RedisServer, free_port

from llm_bridge.gateway import (
    GatewayApp,
    LedgerEntry,
    MemoryState,
    SQLiteLedger,
    create_app,
    hash_key,
    load_gateway_config,
    read_entries,
)
from llm_bridge.gateway._redis import RedisLedger, RedisState
from llm_bridge.testing import FakeZhipu

ZHIPU_KEY = "review14.zhipusecret0123456789abcdef"
KEY = "sk-lb-review14-team-0123456789abcdef"
PROVIDER_KEY = "sk-lb-review14-zhipu-0123456789abcdef"
SUITE_SECRETS.update({ZHIPU_KEY, KEY, PROVIDER_KEY, hash_key(KEY), hash_key(PROVIDER_KEY)})

HELLO = [{"role": "user", "content": "你好"}]
AUTH = {"Authorization": f"Bearer {KEY}"}
#: What each scripted answer reports using: far more than the length estimate of HELLO.
USED = {"prompt_tokens": 100, "completion_tokens": 300, "total_tokens": 400}


def settings(tmp_path: Path, models: Any = ("fast", "glm-*", "priced"), **key: Any) -> dict:
    """A gateway with key ``team`` (``models`` and ``key``'s limits) and key ``zhipu-only``
    (``zhipu/*``); ``priced`` costs 0.01 CNY a token either way."""
    return {
        "providers": {"zhipu": {"api_key": ZHIPU_KEY}},
        "models": {"fast": "zhipu/glm-4-flash", "priced": "zhipu/glm-4-plus"},
        "prices": {"zhipu/glm-4-plus": {"input": 10000, "output": 10000}},
        "gateway": {
            "ledger": str(tmp_path / "ledger.sqlite"),
            "keys": {
                "team": {"key_sha256": hash_key(KEY), "models": list(models), **key},
                "zhipu-only": {"key_sha256": hash_key(PROVIDER_KEY), "models": ["zhipu/*"]},
            },
        },
    }


def seen(response: httpx.Response) -> httpx.Response:
    """Hand what the gateway answered to the suite's secret scan."""
    SUITE_TEXTS.append(f"{response.headers!r} {response.text}")
    return response


def answering(count: int) -> FakeZhipu:
    """A fake whose next ``count`` answers each report `USED`."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for _ in range(count):
        fake.reply("好", usage=USED)
    return fake


@asynccontextmanager
async def gateway(
    config: dict[str, Any], fake: FakeZhipu, **kwargs: Any
) -> AsyncIterator[tuple[GatewayApp, httpx.AsyncClient]]:
    app = create_app(config, http_client=httpx.AsyncClient(transport=fake.transport()), **kwargs)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield app, client
    finally:
        await app.shutdown()


async def chat(client: httpx.AsyncClient, **body: Any) -> httpx.Response:
    body = {"model": "fast", "messages": HELLO, **body}
    return seen(await client.post("/v1/chat/completions", headers=AUTH, json=body))


# --------------------------------------------------------------------------- tpm


async def test_tpm_counts_what_calls_used_beyond_their_estimates(tmp_path: Path) -> None:
    """Each call is estimated at a few tokens and uses 400: once the window holds 1000,
    the next is refused. The excess used to be taken only "where it still fits", so
    past 600 it was dropped and every call went through (3,200 tokens a minute here)."""
    async with gateway(settings(tmp_path, tpm=1000), answering(8)) as (_, client):
        statuses = [(await chat(client)).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]


async def test_a_redis_window_takes_used_tokens_past_its_limit(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    server.start()
    state = RedisState.from_url(server.url, prefix="review14:")
    try:
        assert await state.take("tpm:team", limit=1000, window=60.0, amount=900) == 0.0
        # Used already: counted although it does not fit (and although it is over the limit).
        assert await state.take("tpm:team", limit=1000, window=60.0, amount=500, force=True) == 0
        assert await state.take("tpm:team", limit=1000, window=60.0, amount=1) > 0
        await state.give_back("tpm:team", window=60.0, amount=1000)
        assert await state.take("tpm:team", limit=1000, window=60.0, amount=600) == 0.0
        assert await state.take("tpm:team", limit=10, window=60.0, amount=50, force=True) == 0
    finally:
        await state.close()
        server.stop(kill=True)


async def test_a_budget_refusal_gives_its_tokens_back(tmp_path: Path) -> None:
    """A request the budget refuses never ran: the tpm tokens its estimate took are
    returned, or a key near its budget would also lose its minute's tokens."""
    state = MemoryState()
    config = settings(tmp_path, tpm=1000, monthly_budget_cny=1)
    async with gateway(config, answering(1), state=state) as (_, client):
        for _ in range(3):  # each estimated at ~400 tokens, up to 4 CNY: over the budget
            refused = await chat(client, model="priced", max_tokens=400)
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "insufficient_quota"
    assert await state.take("tpm:team", limit=1000, window=60.0, amount=1000) == 0.0


async def test_a_request_over_tpm_by_itself_says_not_to_retry(tmp_path: Path) -> None:
    """openai's clients honour ``x-should-retry``: without it they wait Retry-After (60 s)
    before each retry of a request that can never fit."""
    async with gateway(settings(tmp_path, tpm=300), answering(1)) as (_, client):
        huge = await chat(client, messages=[{"role": "user", "content": "字" * 2000}])
        too_wide = await chat(client, max_tokens=5000)
        full_window = [await chat(client, max_tokens=200) for _ in range(2)]
    for refused in (huge, too_wide):
        assert refused.status_code == 429 and refused.headers["x-should-retry"] == "false"
        assert "alone" in refused.json()["error"]["message"]
    # A window that is merely full is worth retrying after Retry-After.
    assert [r.status_code for r in full_window] == [200, 429]
    assert "x-should-retry" not in full_window[1].headers
    assert int(full_window[1].headers["retry-after"]) >= 1


# --------------------------------------------------------------------------- budgets


async def test_the_monthly_budget_outlives_a_restart(tmp_path: Path) -> None:
    """With the in-memory state, a restart (a deploy, a crash) used to hand every key its
    whole monthly budget again: the spend now starts from this month's ledger."""
    body = {"model": "priced", "max_tokens": 300}  # 4 CNY used each, up to 3.14 reserved
    config = settings(tmp_path, monthly_budget_cny=10)
    async with gateway(config, answering(3)) as (_, client):
        first = [(await chat(client, **body)).status_code for _ in range(3)]
    async with gateway(config, answering(3)) as (app, client):
        after_restart = (await chat(client, **body)).status_code
        assert await app.state.spent("team", app._period()) == Decimal(8)
    assert first == [200, 200, 429] and after_restart == 429
    spent = sum(e.cost_cny or Decimal(0) for e in read_entries(tmp_path / "ledger.sqlite"))
    assert spent == Decimal(8)


async def test_a_restart_restores_only_this_utc_months_spend(tmp_path: Path) -> None:
    """Budgets are per calendar month, UTC: a minute before midnight of the month's
    first day (UTC) is last month's, whatever the server's time zone."""
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    row = {"key": "team", "model": "priced", "provider": "zhipu", "upstream_model": "glm-4-plus"}
    last_month = calendar.timegm((2026, 11, 30, 23, 59, 0))
    this_month = calendar.timegm((2026, 12, 1, 0, 1, 0))
    await ledger.write(LedgerEntry("old", at=last_month, cost_cny=Decimal("9.5"), **row))
    await ledger.write(LedgerEntry("new", at=this_month, cost_cny=Decimal("2.25"), **row))
    await ledger.close()
    now = calendar.timegm((2026, 12, 1, 4, 0, 0))
    engine_config, gateway_config = load_gateway_config(settings(tmp_path, monthly_budget_cny=10))
    app = GatewayApp(engine_config, gateway_config, clock=lambda: now)
    await app.startup()
    try:
        assert await app.state.spent("team", "2026-12") == Decimal("2.25")
        assert await app.state.spent("team", "2026-11") == Decimal(0)
    finally:
        await app.shutdown()


# --------------------------------------------------------------------------- HTTP methods


async def test_head_is_answered_wherever_get_is(tmp_path: Path) -> None:
    async with gateway(settings(tmp_path), answering(0)) as (_, client):
        for path, headers in (
            ("/healthz", {}),
            ("/readyz", {}),
            ("/metrics", {}),
            ("/v1/models", AUTH),
            ("/v1/models/glm-4-flash", AUTH),
        ):
            head = seen(await client.head(path, headers=headers))
            assert head.status_code == 200, path
            assert head.content == b"" and int(head.headers["content-length"]) > 0, path
        # A route that takes no GET takes no HEAD; a 405 lists HEAD beside GET.
        head = seen(await client.head("/v1/chat/completions", headers=AUTH))
        assert head.status_code == 405 and head.headers["allow"] == "POST"
        put = seen(await client.put("/healthz"))
        assert put.status_code == 405 and put.headers["allow"] == "GET, HEAD"


# --------------------------------------------------------------------------- models


async def test_the_model_list_is_what_the_key_may_use(tmp_path: Path) -> None:
    """Every model a key may request is listed, aliases included ("zhipu/*" allows the
    aliases that route to Zhipu), and every listed one may be requested."""
    zhipu_only = {"Authorization": f"Bearer {PROVIDER_KEY}"}
    config = settings(tmp_path, models=["zhipu/glm-4-flash"])
    async with gateway(config, answering(0)) as (_, client):
        for headers, expected in ((AUTH, {"fast", "glm-4-flash"}), (zhipu_only, {"fast"})):
            listed = seen(await client.get("/v1/models", headers=headers)).json()["data"]
            ids = {entry["id"] for entry in listed}
            assert expected <= ids, ids
            for name in ids:
                one = seen(await client.get(f"/v1/models/{name}", headers=headers))
                assert one.status_code == 200, name
        listed = seen(await client.get("/v1/models", headers=AUTH)).json()["data"]
        assert {entry["id"] for entry in listed} == {"fast", "glm-4-flash"}


async def test_a_403_names_the_models_the_key_may_use(tmp_path: Path) -> None:
    config = settings(tmp_path)
    config["gateway"]["keys"]["ops"] = {"key_sha256": hash_key(ZHIPU_KEY), "models": []}
    async with gateway(config, answering(0)) as (_, client):
        refused = await chat(client, model="qwen-plus")
        ops = {"Authorization": f"Bearer {ZHIPU_KEY}"}
        body = {"model": "fast", "messages": HELLO}
        admin_only = seen(await client.post("/v1/chat/completions", headers=ops, json=body))
    assert refused.status_code == 403
    message = refused.json()["error"]["message"]
    assert "'qwen-plus'" in message and "It may use: fast, glm-*, priced" in message
    assert admin_only.status_code == 403
    assert "may use no model" in admin_only.json()["error"]["message"]


async def test_a_key_allows_its_models_in_any_case_as_routing_reads_them(
    tmp_path: Path,
) -> None:
    """Model names route whatever their case (``GLM-4-Flash`` is glm-4-flash), so a key
    allowed ``glm-*`` may ask for it so written."""
    async with gateway(settings(tmp_path), answering(0)) as (_, client):
        answered = await chat(client, model="GLM-4-Flash")
    assert answered.status_code == 200, answered.text


# --------------------------------------------------------------------------- usage


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "ledger.sqlite"

    async def write() -> None:
        sink = SQLiteLedger(path)
        await sink.write(LedgerEntry("r1", at=1_796_000_000.0, key="team", model="fast",
                                     provider="zhipu", upstream_model="glm-4-flash"))  # fmt: skip
        await sink.close()

    asyncio.run(write())
    yield path


def test_usage_says_its_as_of_time_is_utc(ledger: Path) -> None:
    """Every other time ``llm-bridge usage`` prints is UTC; its "as of" was local time
    without a zone."""
    done = run_cli("usage", "--ledger", str(ledger), cwd=ledger.parent, env={"TZ": "Asia/Tokyo"})
    assert done.returncode == 0, done.stderr
    title = done.stdout.splitlines()[0]
    assert title.startswith(f"{ledger} (all time, as of ") and title.endswith(" UTC)"), title


# --------------------------------------------------------------------------- shutdown


async def test_a_shutdown_with_redis_away_waits_for_the_ledger_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The shutdown flushes the ledger, then closes it; closing flushed again, so with
    Redis away it waited out the flush timeout twice (past a typical grace period) and
    reported the same queued entries twice."""
    ledger = RedisLedger.from_url(f"redis://127.0.0.1:{free_port()}/0", flush_timeout=0.3)
    config = settings(tmp_path)
    async with gateway(config, answering(1), ledger=ledger) as (_, client):
        assert (await chat(client)).status_code == 200
        caplog.clear()
    gave_up = [r for r in caplog.records if "after the flush timeout" in r.getMessage()]
    assert len(gave_up) == 1, [r.getMessage() for r in gave_up]
    assert "2 entries" in gave_up[0].getMessage()  # the request's provisional and final


# --------------------------------------------------------------------------- ledger paths


def test_a_ledger_whose_path_holds_a_hash_sign_is_read(tmp_path: Path) -> None:
    """The gateway writes ``ledgers#2026/ledger.sqlite``; reading it put the path into a
    ``file:`` URI unencoded, so SQLite opened ``ledgers`` and found no ledger table."""
    folder = tmp_path / "ledgers#2026?q"
    folder.mkdir()
    path = folder / "ledger.sqlite"

    async def write() -> None:
        sink = SQLiteLedger(path)
        await sink.write(LedgerEntry("r1", at=1_796_000_000.0, key="team", model="fast",
                                     provider="zhipu", upstream_model="glm-4-flash",
                                     cost_cny=Decimal("0.5")))  # fmt: skip
        await sink.close()

    asyncio.run(write())
    assert [e.request_id for e in read_entries(path)] == ["r1"]
    done = run_cli("usage", "--ledger", str(path), "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert '"requests": 1' in done.stdout


async def test_a_key_with_a_budget_may_not_use_a_model_without_a_price(tmp_path: Path) -> None:
    """A model outside the catalogue, or catalogued without a price (glm-5.3), cost the
    budget nothing: a key refused glm-4-plus for its budget could use them without end."""
    config = settings(tmp_path, models=["zhipu/*"], monthly_budget_cny="0.01")
    config["prices"]["zhipu/glm-9-priced"] = {"input": 1, "output": 1}
    unbudgeted = {"Authorization": f"Bearer {PROVIDER_KEY}"}
    async with gateway(config, answering(2)) as (_, client):
        refused = [await chat(client, model=m) for m in ("zhipu/glm-9-ultra", "glm-5.3")]
        priced = await chat(client, model="zhipu/glm-9-priced")
        body = {"model": "zhipu/glm-9-ultra", "messages": HELLO}
        free_to_use = await client.post("/v1/chat/completions", headers=unbudgeted, json=body)
        listed = seen(await client.get("/v1/models", headers=AUTH)).json()["data"]
        one = seen(await client.get("/v1/models/glm-5.3", headers=AUTH))
    for answer in refused:
        error = answer.json()["error"]
        assert answer.status_code == 403 and error["code"] == "model_price_unknown"
        assert "[prices." in error["message"]
    assert priced.status_code == 200 and seen(free_to_use).status_code == 200
    ids = {entry["id"] for entry in listed}
    assert "glm-4-plus" in ids and "glm-5.3" not in ids
    # Left out of the list, so retrieved as one that does not exist (review 21).
    assert one.status_code == 404 and one.json()["error"]["code"] == "model_not_found"
