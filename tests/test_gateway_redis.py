"""The gateway's shared state in a REAL redis-server (tests/redis_server.py): one limit and
one budget across OS processes, the Lua scripts' atomicity and exact decimal arithmetic,
the ``state_failure`` policy through a Redis outage, and a ledger that loses and doubles
nothing when Redis is killed and restarted mid-run. No Redis mocks anywhere.

redis-server must be installed (``.ci/run`` installs Debian's package): these tests fail,
they do not skip, when it is missing.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal, localcontext
from pathlib import Path

import pytest
import redis.asyncio as aioredis
import redis_server as redis_server_module
from redis_server import RedisServer

from llm_bridge.gateway._failover import FailoverState, StateUnavailable
from llm_bridge.gateway._memory import MemoryState
from llm_bridge.gateway._redis import RedisLedger, RedisState, read_ledger
from llm_bridge.gateway._state import IN_PROGRESS, LedgerEntry

REPO = Path(__file__).resolve().parent.parent
PERIOD = "2026-12"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One server for the tests that never stop it (each uses its own key prefix)."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of the test's own, which it may kill and restart (same port)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop(kill=True)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}:"


@pytest.fixture
async def raw(shared_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(shared_server.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def state(shared_server: RedisServer, prefix: str) -> AsyncIterator[RedisState]:
    st = RedisState.from_url(shared_server.url, prefix=prefix)
    try:
        yield st
    finally:
        await st.close()


async def until(condition, timeout: float = 10.0, what: str = "condition") -> None:
    """Polls an async ``condition`` until it holds; fails after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)


def entry(i: int, **fields) -> LedgerEntry:
    values = dict(
        request_id=f"req-{i:04d}",
        at=1_796_000_000.0 + i + 0.123456,
        key="team-a" if i % 2 else "team-b",
        model="glm-4-flash",
        provider="zhipu" if i % 3 else None,
        upstream_model="glm-4-flash-250414" if i % 3 else None,
        prompt_tokens=i,
        completion_tokens=2 * i,
        cached_tokens=i // 2,
        estimated=bool(i % 5 == 0),
        cost_cny=Decimal("0.0000008") * i if i % 7 else None,
        latency_ms=12.5 + i,
        status=200 if i % 11 else 502,
        error_code=None if i % 11 else "upstream_error",
        extra={"route": "a/b", "名": "值"} if i % 13 == 0 else {},
    )
    values.update(fields)
    return LedgerEntry(**values)


# --------------------------------------------------------------------------- the helper


def test_helper_fails_loudly_without_redis_server(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(redis_server_module.shutil, "which", lambda name: None)
    monkeypatch.setattr(redis_server_module.os, "access", lambda path, mode: False)
    with pytest.raises(RuntimeError, match="redis-server not found"):
        RedisServer(tmp_path)


def test_helper_fails_loudly_when_the_server_cannot_start(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        server = RedisServer(tmp_path, port=busy.getsockname()[1])
        with pytest.raises(RuntimeError, match="redis-server exited"):
            server.start(timeout=10)


def test_helper_restarts_on_the_same_port_and_keeps_the_data(tmp_path: Path) -> None:
    import redis

    with RedisServer(tmp_path) as server:
        port = server.port
        client = redis.Redis(port=port)
        client.set("k", "v")
        server.restart(kill=True)  # a crash: the fsynced AOF brings "k" back
        assert server.port == port
        assert client.get("k") == b"v"
        client.close()


# --------------------------------------------------------------------------- rate limits


async def test_take_is_a_sliding_window(state: RedisState, raw: aioredis.Redis) -> None:
    assert await state.take("w", limit=3, window=0.6) == 0.0
    slept_from = time.monotonic()
    await asyncio.sleep(0.3)
    late = time.monotonic() - slept_from - 0.3  # (a busy machine wakes the test late)
    assert [await state.take("w", limit=3, window=0.6) for _ in range(2)] == [0.0] * 2
    wait = await state.take("w", limit=3, window=0.6)
    assert 0.2 < wait <= 0.3  # until the first take leaves the window, not a fixed window
    await asyncio.sleep(wait + 0.02)
    assert await state.take("w", limit=3, window=0.6) == 0.0  # the first one's slot
    wait = await state.take("w", limit=3, window=0.6)
    assert 0.2 < wait <= 0.3 + late  # the next two leave 0.6 s after they came
    # amounts (tokens per minute): what does not fit takes nothing
    assert await state.take("tpm", limit=10, window=60, amount=7) == 0.0
    assert 59 < await state.take("tpm", limit=10, window=60, amount=4) <= 60
    assert await state.take("tpm", limit=10, window=60, amount=3) == 0.0
    assert await state.take("tpm", limit=10, window=60, amount=11) == 60  # never fits
    # the keys expire a window (plus a second) after the last take
    log_key, sum_key = state.window_keys("tpm")
    assert await raw.hget(sum_key, "sum") == "10"
    assert 59_000 < await raw.pttl(log_key) <= 61_000
    assert 59_000 < await raw.pttl(sum_key) <= 61_000
    assert all(k.startswith(state.prefix) for k in await raw.keys(state.prefix + "*"))


async def test_take_agrees_with_memory_state(state: RedisState) -> None:
    """The same sequence, no time passing, decides the same in Redis and in memory (the
    failover's fallback must keep the meaning of a limit)."""
    memory = MemoryState()
    rng = random.Random(7)
    for _ in range(120):
        amount = rng.randint(1, 9)
        got = await state.take("agree", limit=40, window=60, amount=amount)
        want = await memory.take("agree", limit=40, window=60, amount=amount)
        assert (got == 0.0) == (want == 0.0)


async def test_give_back_agrees_with_memory_state(state: RedisState) -> None:
    """Takes and give-backs interleaved decide the same in Redis and in memory, and a
    give-back frees exactly what it returns (never more than was taken)."""
    memory = MemoryState()
    rng = random.Random(11)
    for _ in range(150):
        amount = rng.randint(1, 12)
        if rng.random() < 0.3:
            await state.give_back("gb", window=60, amount=amount)
            await memory.give_back("gb", window=60, amount=amount)
            continue
        got = await state.take("gb", limit=40, window=60, amount=amount)
        want = await memory.take("gb", limit=40, window=60, amount=amount)
        assert (got == 0.0) == (want == 0.0)
    await state.give_back("full", window=60, amount=5)  # nothing taken: stays empty
    assert await state.take("full", limit=10, window=60, amount=10) == 0.0
    await state.give_back("full", window=60, amount=4)
    assert await state.take("full", limit=10, window=60, amount=4) == 0.0
    assert await state.take("full", limit=10, window=60, amount=1) > 0


async def test_take_is_atomic_under_many_tasks(state: RedisState, raw: aioredis.Redis) -> None:
    results = await asyncio.gather(*(state.take("burst", limit=100, window=60) for _ in range(300)))
    assert sum(r == 0.0 for r in results) == 100
    # amounts: the sum of what was taken never passes the limit, and every refusal was right
    rng = random.Random(3)
    amounts = [rng.randint(1, 25) for _ in range(200)]
    results = await asyncio.gather(
        *(state.take("tokens", limit=1000, window=60, amount=a) for a in amounts)
    )
    taken = [a for a, r in zip(amounts, results) if r == 0.0]
    refused = [a for a, r in zip(amounts, results) if r != 0.0]
    assert sum(taken) <= 1000 and refused
    assert all(sum(taken) + a > 1000 for a in refused)
    log_key, sum_key = state.window_keys("tokens")
    assert int(await raw.hget(sum_key, "sum")) == sum(taken)
    assert await raw.zcard(log_key) == len(taken)
    # the running sum lost (an eviction): the script counts the log again
    await raw.delete(sum_key)
    assert await state.take("tokens", limit=1000, window=60, amount=1001 - sum(taken)) > 0
    assert int(await raw.hget(sum_key, "sum")) == sum(taken)


async def test_a_refused_take_keeps_the_log_as_long_as_its_sum(
    state: RedisState, raw: aioredis.Redis
) -> None:
    """A refusal renews the expiry of the log with its sum's. Renewing the sum's alone let
    the log expire first, and the sum it left behind refused every take from then on."""
    window = 0.2  # the keys live a window plus a second: 1.2 s
    assert [await state.take("stuck", limit=2, window=window) for _ in range(2)] == [0.0] * 2
    await asyncio.sleep(0.15)
    assert await state.take("stuck", limit=2, window=window) > 0  # refused at 0.15 s
    log_key, sum_key = state.window_keys("stuck")
    assert abs(await raw.pttl(log_key) - await raw.pttl(sum_key)) < 50
    await asyncio.sleep(1.1)  # past the takes' own expiry (1.2 s), before the refusal's
    assert await state.take("stuck", limit=2, window=window) == 0.0


async def test_a_log_evicted_before_its_sum_leaves_an_empty_window(
    state: RedisState, raw: aioredis.Redis
) -> None:
    """A ``volatile-*`` maxmemory policy may evict the log and keep its sum: the window
    is then empty, not full for as long as the sum is renewed."""
    assert await state.take("evicted", limit=2, window=60, amount=2) == 0.0
    assert await state.take("evicted", limit=2, window=60) > 0
    log_key, sum_key = state.window_keys("evicted")
    await raw.delete(log_key)  # (what an eviction does)
    assert await state.take("evicted", limit=2, window=60, amount=2) == 0.0
    assert await raw.hget(sum_key, "sum") == "2" and await raw.zcard(log_key) == 1
    assert await state.take("evicted", limit=2, window=60) > 0


async def test_scripts_are_reloaded_after_script_flush(
    state: RedisState, raw: aioredis.Redis
) -> None:
    assert await state.take("f", limit=5, window=60) == 0.0
    assert await state.reserve("acct", PERIOD, amount=Decimal("1"), budget=Decimal("5"))
    await raw.script_flush()
    assert await state.take("f", limit=5, window=60) == 0.0
    assert await state.reserve("acct", PERIOD, amount=Decimal("1"), budget=Decimal("5"))
    assert await state.spent("acct", PERIOD) == 2


# --------------------------------------------------------------------------- budgets


def _random_decimal(rng: random.Random) -> Decimal:
    scale = rng.choice([0, 1, 2, 6, 7, 9, 12, 18, 25])
    digits = rng.randint(0, 10 ** rng.randint(1, 30))
    return Decimal(f"{digits}e-{scale}")  # exact, whatever the context's precision


async def test_budget_arithmetic_is_exact(state: RedisState, raw: aioredis.Redis) -> None:
    """Reserve and settle against Python's Decimal, with scales from 0 to 25 digits and
    magnitudes far beyond a double's 53 bits."""
    rng = random.Random(11)
    model = Decimal(0)
    with localcontext() as exact:
        exact.prec = 200  # Python's side exact too (the default rounds at 28 digits)
        for i in range(300):
            amount = _random_decimal(rng)
            if i % 2 == 0:
                budget = model + _random_decimal(rng) - _random_decimal(rng)
                ok = await state.reserve("exact", PERIOD, amount=amount, budget=budget)
                assert ok == (model + amount <= budget), (model, amount, budget)
                if ok:
                    model += amount
            else:
                reserved = _random_decimal(rng)
                await state.settle("exact", PERIOD, reserved=reserved, actual=amount)
                model = max(model - reserved + amount, Decimal(0))
            assert await state.spent("exact", PERIOD) == model
    # a budget at the exact edge, and tiny prices per token
    await state.settle("edge", PERIOD, reserved=Decimal(0), actual=Decimal("99.9999992"))
    assert await state.reserve("edge", PERIOD, amount=Decimal("0.0000008"), budget=Decimal(100))
    assert not await state.reserve(
        "edge", PERIOD, amount=Decimal("1E-25"), budget=Decimal("100.000")
    )
    assert await raw.hget(state.budget_key("edge"), PERIOD) == "100"
    assert 39 * 86400_000 < await raw.pttl(state.budget_key("edge")) <= 40 * 86400_000
    with pytest.raises(ValueError):
        await state.reserve("edge", PERIOD, amount=Decimal("NaN"), budget=Decimal(1))


async def test_reserve_and_settle_are_atomic_under_many_tasks(state: RedisState) -> None:
    estimate, budget = Decimal("0.0123457"), Decimal("1.5")
    oks = await asyncio.gather(
        *(state.reserve("many", PERIOD, amount=estimate, budget=budget) for _ in range(200))
    )
    winners = sum(oks)
    assert winners == int(budget / estimate)  # 121: exactly as many as fit
    assert await state.spent("many", PERIOD) == winners * estimate
    actual = Decimal("0.0100001")
    await asyncio.gather(
        *(state.settle("many", PERIOD, reserved=estimate, actual=actual) for _ in range(winners))
    )
    assert await state.spent("many", PERIOD) == winners * actual


# --------------------------------------------------------------------------- two processes

WORKER = """
import asyncio, json, sys
from decimal import Decimal
from llm_bridge.gateway._redis import RedisState

async def main(mode, url, prefix, n, a, b):
    state = RedisState.from_url(url, prefix=prefix)
    assert await state.ping()
    print("ready", flush=True)
    sys.stdin.readline()  # go: both processes start together
    if mode == "take":
        calls = [state.take("burst", limit=int(a), window=float(b)) for _ in range(n)]
        results = await asyncio.gather(*calls)
        wins = sum(1 for r in results if r == 0.0)
    else:
        calls = [
            state.reserve("acct", "2026-12", amount=Decimal(a), budget=Decimal(b))
            for _ in range(n)
        ]
        wins = sum(await asyncio.gather(*calls))
    await state.close()
    print(json.dumps(wins), flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), *sys.argv[5:]))
"""


def run_together(tmp_path: Path, args: list[list[str]], timeout: float = 60) -> list[int]:
    """Runs one worker process per argument list, releases them at once, returns what each
    one won."""
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), *a],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env=env,
        )
        for a in args
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            line = p.stdout.readline()
            assert line.strip() == "ready", (line, p.stderr.read() if p.stderr else "")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        wins = []
        for p in procs:
            out, err = p.communicate(timeout=timeout)
            assert p.returncode == 0, err
            wins.append(json.loads(out.strip().splitlines()[-1]))
        return wins
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_two_processes_enforce_one_limit(
    shared_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    rpm = 40
    # 3 x rpm requests, split over two OS processes, all within one 60 s window
    args = [["take", shared_server.url, prefix, str(n), str(rpm), "60"] for n in (60, 60)]
    wins = run_together(tmp_path, args)
    assert sum(wins) == rpm, wins


async def test_budget_race_across_two_processes(
    shared_server: RedisServer, prefix: str, tmp_path: Path
) -> None:
    """50 concurrent reservations (25 tasks in each of two processes) against a budget
    that has room for a few: the spend never passes the budget by more than one
    estimate (with atomic reservations: never at all)."""
    state = RedisState.from_url(shared_server.url, prefix=prefix)
    budget, estimate = Decimal("1.000000"), Decimal("0.0071234567")
    await state.settle("acct", PERIOD, reserved=Decimal(0), actual=Decimal("0.9"))
    args = [["reserve", shared_server.url, prefix, "25", str(estimate), str(budget)]] * 2
    wins = await asyncio.to_thread(run_together, tmp_path, args)
    spent = await state.spent("acct", PERIOD)
    assert sum(wins) == 14, wins  # 0.1 / 0.0071234567 = 14.04
    assert spent == Decimal("0.9") + 14 * estimate
    assert spent - budget <= estimate and spent <= budget
    await state.close()


# --------------------------------------------------------------------------- failover


async def test_failover_open_serves_per_process_then_returns_to_redis(
    own_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = FailoverState(
        RedisState.from_url(own_server.url, prefix=prefix), mode="open", retry_interval=0.1
    )
    other = RedisState.from_url(own_server.url, prefix=prefix)  # another replica
    try:
        assert await state.take("b", limit=5, window=60) == 0.0
        assert await state.reserve("acct", PERIOD, amount=Decimal("2"), budget=Decimal("10"))
        assert state.ready and await state.ping()

        own_server.stop(kill=True)
        caplog.set_level("WARNING", logger="llm_bridge.gateway")
        # Per process from now on: a fresh window of 5, and the budget from this process.
        results = [await state.take("b", limit=5, window=60) for _ in range(7)]
        assert results[:5] == [0.0] * 5 and all(r > 0 for r in results[5:])
        assert not state.ready
        assert not await state.ping()
        assert await state.reserve("acct", PERIOD, amount=Decimal("3"), budget=Decimal("10"))
        await state.settle("acct", PERIOD, reserved=Decimal("3"), actual=Decimal("2.5"))
        unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
        assert len(unreachable) == 1  # logged once per outage, not per request
        assert own_server.url.split("//")[1] not in caplog.text

        own_server.start()  # same port, same data (the AOF)
        await until(lambda: _ready(state), what="FailoverState back on Redis")
        # Redis again: shared with the other replica, and the outage's spend carried over
        assert await state.take("b", limit=5, window=60) == 0.0
        assert await other.spent("acct", PERIOD) == Decimal("4.5")
        log_key, _ = other.window_keys("b")
        assert await other.client.zcard(log_key) == 2
    finally:
        await state.close()
        await other.close()


async def test_failover_open_counts_the_spend_redis_last_reported(
    own_server: RedisServer, prefix: str
) -> None:
    """During an outage a budget is what Redis last said was spent plus what is spent in
    memory: an exhausted key does not get its budget again (it got all of it before)."""
    state = FailoverState(
        RedisState.from_url(own_server.url, prefix=prefix), mode="open", retry_interval=0.1
    )
    budget = Decimal(200)
    try:
        assert await state.reserve("team", PERIOD, amount=Decimal(150), budget=budget)
        await state.settle("team", PERIOD, reserved=Decimal(150), actual=Decimal("160.5"))
        assert await state.reserve("other", PERIOD, amount=Decimal(10), budget=budget)
        assert not await state.reserve("other", PERIOD, amount=Decimal(195), budget=budget)

        own_server.stop(kill=True)
        assert not await state.reserve("team", PERIOD, amount=Decimal(40), budget=budget)
        assert await state.reserve("team", PERIOD, amount=Decimal("39.5"), budget=budget)
        assert not await state.reserve("team", PERIOD, amount=Decimal("0.01"), budget=budget)
        assert await state.spent("team", PERIOD) == budget
        assert not await state.reserve("other", PERIOD, amount=Decimal(191), budget=budget)
        assert await state.reserve("other", PERIOD, amount=Decimal(190), budget=budget)
        assert await state.reserve("new", PERIOD, amount=Decimal(200), budget=budget)  # unseen

        own_server.start()
        await until(lambda: _ready(state), what="FailoverState back on Redis")
        assert await state.spent("team", PERIOD) == budget  # the outage's spend, added once
        assert await state.spent("other", PERIOD) == budget
    finally:
        await state.close()


async def _ready(state: FailoverState) -> bool:
    return state.ready


async def test_failover_closed_refuses_then_returns_to_redis(
    own_server: RedisServer, prefix: str
) -> None:
    state = FailoverState(
        RedisState.from_url(own_server.url, prefix=prefix), mode="closed", retry_interval=0.1
    )
    try:
        assert await state.take("b", limit=5, window=60) == 0.0
        own_server.stop(kill=True)
        started = time.monotonic()
        with pytest.raises(StateUnavailable):
            await state.take("b", limit=5, window=60)
        with pytest.raises(StateUnavailable):
            await state.reserve("acct", PERIOD, amount=Decimal(1), budget=Decimal(10))
        with pytest.raises(StateUnavailable):
            await state.settle("acct", PERIOD, reserved=Decimal(1), actual=Decimal(1))
        assert time.monotonic() - started < 2  # a refused connection fails fast
        assert not state.ready and not await state.ping()

        own_server.start()
        await until(lambda: _ready(state), what="FailoverState back on Redis")
        assert await state.take("b", limit=5, window=60) == 0.0
        assert await state.reserve("acct", PERIOD, amount=Decimal(1), budget=Decimal(10))
        assert state.ready and await state.ping()
    finally:
        await state.close()


async def test_redis_state_raises_state_unavailable_and_ping_is_false(tmp_path: Path) -> None:
    server = RedisServer(tmp_path)  # never started: nothing listens on its port
    state = RedisState.from_url(server.url)
    try:
        assert not await state.ping()
        with pytest.raises(StateUnavailable):
            await state.take("b", limit=1, window=1)
        with pytest.raises(StateUnavailable):
            await state.spent("a", PERIOD)
    finally:
        await state.close()


# --------------------------------------------------------------------------- ledger


async def test_ledger_survives_a_killed_redis_exactly_once(
    own_server: RedisServer, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = RedisLedger.from_url(
        own_server.url, prefix=prefix, backoff=0.02, max_backoff=0.2, batch=7
    )
    written = [entry(i) for i in range(200)]
    queued: list[int] = []
    try:
        for i, e in enumerate(written):
            if i in (60, 150):
                own_server.stop(kill=True)  # SIGKILL mid-run (the second: mid-drain, maybe)
            if i in (120, 175):
                queued.append(ledger.pending)
                own_server.start()  # same port, the AOF reloaded
            await ledger.write(e)  # never raises
            await asyncio.sleep(0.002)
        assert queued[0] >= 60 and queued[1] >= 25  # written during the outages
        await ledger.flush(timeout=20)
        assert ledger.pending == 0 and ledger.dropped == 0
        read = await ledger.read()
    finally:
        await ledger.close()
    ids = [e.request_id for e in read]
    assert len(ids) == len(set(ids)) == 200  # every entry, exactly once
    assert sorted(read, key=lambda e: e.request_id) == written  # and field for field
    assert read_ledger(own_server.url, prefix=prefix) == read  # the CLI's reader


async def test_a_final_entry_replaces_the_provisional_one(
    shared_server: RedisServer, prefix: str
) -> None:
    """The gateway writes a provisional entry at admission and the final one at the end:
    readers see one entry per request, the final one when there is one; a provisional
    entry after the final one, or a second final one, adds nothing."""
    one = RedisLedger.from_url(shared_server.url, prefix=prefix)
    two = RedisLedger.from_url(shared_server.url, prefix=prefix)
    provisional = entry(3, status=0, error_code=IN_PROGRESS, prompt_tokens=0)
    try:
        await one.write(provisional)
        await one.write(entry(4, status=0, error_code=IN_PROGRESS))  # killed: never ends
        await one.flush()
        assert [(e.request_id, e.error_code) for e in await one.read()] == [
            ("req-0003", IN_PROGRESS),
            ("req-0004", IN_PROGRESS),
        ]
        await two.write(entry(3))  # the request ends (on another replica, even)
        await two.flush()
        await one.write(provisional)  # late: changes nothing
        await one.write(entry(3, latency_ms=1.0))  # repeated: changes nothing
        await one.flush()
        read = await one.read()
        assert read == [entry(3), entry(4, status=0, error_code=IN_PROGRESS)]
        assert read_ledger(shared_server.url, prefix=prefix) == read
        assert await one.client.xlen(one.stream) == 3  # two provisional, one final
    finally:
        await one.close()
        await two.close()


async def test_ledger_is_idempotent_by_request_id(shared_server: RedisServer, prefix: str) -> None:
    one = RedisLedger.from_url(shared_server.url, prefix=prefix)
    two = RedisLedger.from_url(shared_server.url, prefix=prefix)  # another replica
    try:
        await one.write(entry(1))
        await one.write(entry(1))
        await one.flush()
        await two.write(entry(1, latency_ms=99.0))
        await asyncio.gather(*(r.write(entry(2)) for r in (one, two) for _ in range(10)))
        await one.flush()
        await two.flush()
        read = await one.read()
        assert [e.request_id for e in read] == ["req-0001", "req-0002"]
        assert read[0] == entry(1)
        marker = f"{prefix}{{ledger}}:seen:req-0001"
        assert 0 < await one.client.ttl(marker) <= 2 * 86400
    finally:
        await one.close()
        await two.close()


async def test_ledger_queue_is_bounded_and_drains_when_redis_starts(
    tmp_path: Path, prefix: str
) -> None:
    server = RedisServer(tmp_path)  # down at first
    ledger = RedisLedger.from_url(server.url, prefix=prefix, queue_size=5, backoff=0.02)
    try:
        for i in range(8):
            await ledger.write(entry(i))  # never raises
        assert ledger.pending == 5 and ledger.dropped == 3
        started = time.monotonic()
        await ledger.flush(timeout=0.3)  # bounded: returns with the queue still full
        assert time.monotonic() - started < 2 and ledger.pending == 5
        server.start()
        await ledger.flush(timeout=20)
        assert ledger.pending == 0
        assert [e.request_id for e in await ledger.read()] == [
            entry(i).request_id for i in range(5)
        ]
        # the script cache is empty after a restart: the batch path loads it (NOSCRIPT)
        server.restart(kill=True)
        await ledger.client.script_flush()
        ledger._down = True  # route the next writes through the queue's batches
        for i in range(5, 8):
            await ledger.write(entry(i))
        await ledger.flush(timeout=20)
        assert len(await ledger.read()) == 8
    finally:
        await ledger.close()
        server.stop(kill=True)


async def test_read_ledger_since(shared_server: RedisServer, prefix: str) -> None:
    ledger = RedisLedger.from_url(shared_server.url, prefix=prefix)
    now = time.time()
    try:
        for i, at in enumerate((now - 7200, now - 10, now)):
            await ledger.write(entry(i, at=at))
    finally:
        await ledger.close()
    assert len(read_ledger(shared_server.url, prefix=prefix)) == 3
    recent = read_ledger(shared_server.url, since=now - 60, prefix=prefix)
    assert [e.request_id for e in recent] == ["req-0001", "req-0002"]
    assert read_ledger(shared_server.url, prefix="nothing-here:") == []
