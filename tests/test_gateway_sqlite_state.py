"""The gateway's SQLite state (``[gateway] state = "sqlite"``, and what ``llm-bridge serve
--workers N`` shares by itself): its windows and budgets on a fake clock, its decisions
atomic across real processes, a real two-worker server enforcing one rpm, the budgets
started from the ledger once, and paths in ``[gateway]`` resolved against the config
file's directory."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SUITE_SECRETS, SUITE_TEXTS
from gateway_toml import gateway_toml, write_gateway_toml
from redis_server import free_port

from llm_bridge import ConfigError
from llm_bridge.cli import main
from llm_bridge.cli._serve import SHARED_STATE_ENV, worker_app
from llm_bridge.gateway import (
    LedgerEntry,
    MemoryState,
    SQLiteLedger,
    create_app,
    hash_key,
    load_gateway_config,
)
from llm_bridge.gateway._config import DEFAULT_LEDGER, DEFAULT_STATE_FILE
from llm_bridge.gateway._failover import FailoverState, StateUnavailable
from llm_bridge.gateway._ledger import read_entries, spend_by_key
from llm_bridge.gateway._sqlite_state import SQLiteState
from llm_bridge.testing import FakeZhipu, LoopbackServer, serve

ZHIPU_KEY = "gwsqlite.zhipusecret0123456789abcdef"
KEY = "sk-lb-sqlitestatekey-0123456789abcdef"
SUITE_SECRETS.update({ZHIPU_KEY, KEY, hash_key(KEY)})
HELLO = [{"role": "user", "content": "你好"}]


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def state(tmp_path: Path, clock: Clock) -> Iterator[SQLiteState]:
    opened = SQLiteState(tmp_path / "state.sqlite", clock=clock)
    yield opened
    opened.close_sync()


def rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


# --------------------------------------------------------------------------- windows


async def test_a_window_allows_limit_then_says_when_the_oldest_take_leaves(
    state: SQLiteState, clock: Clock
) -> None:
    for _ in range(3):
        assert await state.take("rpm:a", limit=3, window=60.0) == 0.0
        clock.now += 10
    # Taken at t0, t0+10, t0+20; now t0+30: the first leaves at t0+60.
    assert await state.take("rpm:a", limit=3, window=60.0) == pytest.approx(30.0)
    assert await state.take("rpm:b", limit=3, window=60.0) == 0.0  # buckets are apart
    clock.now += 30  # t0+60: the first take is out (a take at `at` leaves at `at + window`)
    assert await state.take("rpm:a", limit=3, window=60.0) == 0.0
    assert await state.take("rpm:a", limit=3, window=60.0) == pytest.approx(10.0)


async def test_amounts_force_and_give_back_match_the_memory_state(
    state: SQLiteState, clock: Clock
) -> None:
    """The same calls on `MemoryState` and `SQLiteState` give the same answers."""
    memory = MemoryState(clock=clock)
    calls: list[tuple[str, dict[str, Any], float]] = [
        ("take", {"amount": 40}, 0),
        ("take", {"amount": 50}, 5),
        ("take", {"amount": 20}, 0),  # 110 > 100: wait for the first (40) to leave
        ("take", {"amount": 101}, 0),  # more than the limit never fits
        ("give_back", {"amount": 30}, 1),  # the newest take (50) shrinks to 20
        ("take", {"amount": 40}, 0),  # 40 + 20 + 40 = 100: fits
        ("take", {"amount": 1}, 0),
        ("take", {"amount": 25, "force": True}, 0),  # used already: counted past the limit
        ("give_back", {"amount": 1000}, 10),  # everything back, never below nothing
        ("take", {"amount": 100}, 0),
        ("take", {"amount": 0}, 0),
    ]
    for name, kwargs, advance in calls:
        clock.now += advance
        answers = []
        for store in (memory, state):
            if name == "take":
                answers.append(await store.take("tpm:k", limit=100, window=60.0, **kwargs))
            else:
                answers.append(await store.give_back("tpm:k", window=60.0, **kwargs))
        assert answers[0] == pytest.approx(answers[1]), (name, kwargs, answers)
    assert await state.take("tpm:k", limit=100, window=60.0, amount=1) == pytest.approx(60.0)


async def test_the_window_tables_hold_only_what_is_in_a_window(
    state: SQLiteState, clock: Clock
) -> None:
    path = state.path
    for _ in range(300):  # 5 takes a second on one key for a minute
        await state.take("rpm:busy", limit=1000, window=60.0)
        clock.now += 0.2
    for n in range(50):  # keys used once, then never again
        await state.take(f"rpm:gone-{n}", limit=10, window=60.0)
    clock.now += 30
    for _ in range(300):  # another minute
        await state.take("rpm:busy", limit=1000, window=60.0)
        clock.now += 0.2
    # Only the busy key's last minute is left (the once-used keys are swept).
    (busy,) = rows(path, "SELECT count(*) FROM takes WHERE bucket = 'rpm:busy'")[0]
    assert 290 <= busy <= 301
    assert rows(path, "SELECT count(*) FROM takes WHERE bucket != 'rpm:busy'") == [(0,)]
    assert rows(path, "SELECT bucket FROM buckets") == [("rpm:busy",)]
    clock.now += 120
    await state.take("rpm:other", limit=10, window=60.0)  # (any write sweeps)
    assert rows(path, "SELECT bucket FROM takes") == [("rpm:other",)]


# --------------------------------------------------------------------------- budgets


async def test_budgets_are_exact_decimals_stored_as_text(state: SQLiteState) -> None:
    tiny = Decimal("0.0000008")  # 0.8 CNY per million tokens, one token
    for _ in range(3):
        assert await state.reserve("team", "2027-01", amount=tiny, budget=Decimal("0.0000024"))
    assert await state.spent("team", "2027-01") == Decimal("0.0000024")
    assert not await state.reserve("team", "2027-01", amount=tiny, budget=Decimal("0.0000024"))
    # A float would say 0.1 + 0.2 = 0.30000000000000004 and refuse this.
    assert await state.reserve("x", "2027-01", amount=Decimal("0.1"), budget=Decimal("0.3"))
    assert await state.reserve("x", "2027-01", amount=Decimal("0.2"), budget=Decimal("0.3"))
    huge = Decimal("123456789012345678901234567890.000000000000000000000000001")
    assert await state.reserve("big", "2027-01", amount=huge, budget=huge)
    await state.settle("big", "2027-01", reserved=Decimal(0), actual=Decimal("1e-30"))
    exact = Decimal("123456789012345678901234567890.000000000000000000000000001001")
    assert await state.spent("big", "2027-01") == exact  # (60 digits: no rounding)
    await state.settle("team", "2027-01", reserved=tiny, actual=Decimal("0.00000005"))
    assert await state.spent("team", "2027-01") == Decimal("0.00000165")
    await state.settle("team", "2027-01", reserved=Decimal(5), actual=Decimal(0))
    assert await state.spent("team", "2027-01") == 0  # never below nothing
    assert await state.spent("team", "2027-02") == 0
    stored = rows(state.path, "SELECT account, typeof(amount), amount FROM spend ORDER BY 1")
    assert stored[0] == ("big", "text", str(exact))
    assert all(kind == "text" and "E" not in text for _, kind, text in stored)


async def test_spend_unchanged_for_40_days_is_dropped(state: SQLiteState, clock: Clock) -> None:
    await state.reserve("team", "2027-01", amount=Decimal(1), budget=Decimal(9))
    clock.now += 39 * 86400
    await state.take("rpm:x", limit=1, window=60.0)
    assert await state.spent("team", "2027-01") == 1
    clock.now += 2 * 86400
    await state.take("rpm:x", limit=1, window=60.0)
    assert await state.spent("team", "2027-01") == 0
    assert rows(state.path, "SELECT count(*) FROM spend") == [(0,)]


async def test_two_states_on_one_file_share_everything_and_seed_once(
    tmp_path: Path, clock: Clock
) -> None:
    first = SQLiteState(tmp_path / "s.sqlite", clock=clock)
    clock.now += 100
    second = SQLiteState(tmp_path / "s.sqlite", clock=clock)
    try:
        assert second.created == first.created  # the file's, not the process's
        assert await first.take("rpm:k", limit=1, window=60.0) == 0.0
        assert await second.take("rpm:k", limit=1, window=60.0) > 0
        assert await first.reserve("k", "2027-01", amount=Decimal(3), budget=Decimal(5))
        assert not await second.reserve("k", "2027-01", amount=Decimal(3), budget=Decimal(5))
        assert not await second.seeded("2027-01")
        assert await second.seed("2027-01", {"k": Decimal("1.5"), "j": Decimal("0.25")})
        assert not await first.seed("2027-01", {"k": Decimal("1.5")})  # once per period
        assert await first.seeded("2027-01")
        assert await first.spent("k", "2027-01") == Decimal("4.5")
        assert await first.spent("j", "2027-01") == Decimal("0.25")
        assert await first.ping() and await second.ping()
    finally:
        first.close_sync()
        second.close_sync()


async def test_a_lock_held_elsewhere_is_waited_for_off_the_event_loop(
    state: SQLiteState,
) -> None:
    other = sqlite3.connect(state.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process mid-decision
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    running = asyncio.create_task(ticker())
    take = asyncio.create_task(state.take("rpm:k", limit=1, window=60.0))
    await asyncio.sleep(0.1)
    assert not take.done() and ticks >= 5  # the loop ran on while the take waited
    other.execute("COMMIT")
    assert await asyncio.wait_for(take, 5) == 0.0
    running.cancel()
    # A lock never let go: StateUnavailable after busy_timeout (state_failure decides).
    other.execute("BEGIN IMMEDIATE")
    state.busy_timeout = 0.2
    started = time.monotonic()
    with pytest.raises(StateUnavailable, match="locked by another process"):
        await state.take("rpm:k", limit=5, window=60.0)
    assert 0.2 <= time.monotonic() - started < 2
    other.execute("ROLLBACK")
    other.close()


@contextmanager
def locked_elsewhere(path: Path) -> Iterator[sqlite3.Connection]:
    """The file's write lock held by another connection (another process, mid-transaction,
    or a ``sqlite3`` shell left open) until the block ends."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield other
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_the_failover_stays_off_a_file_locked_elsewhere_until_it_is_unlocked(
    tmp_path: Path,
) -> None:
    """`ping` takes the write lock, so the failover's probe fails while another process
    holds it: requests wait ``busy_timeout`` once, then not at all until the lock is let
    go. (A probe by reading succeeded, ended the outage, and sent the next request to
    wait ``busy_timeout`` again, once per probe.)"""
    primary = SQLiteState(tmp_path / "s.sqlite", busy_timeout=0.5)
    state = FailoverState(primary, mode="open", retry_interval=0.05)
    try:
        with locked_elsewhere(primary.path):
            started = time.monotonic()
            assert await state.take("rpm:k", limit=1000, window=60.0) == 0.0  # in memory
            assert time.monotonic() - started >= 0.5 and not state.ready
            waits: list[float] = []
            until = time.monotonic() + 1.0  # many probes
            while time.monotonic() < until:
                started = time.monotonic()
                await state.take("rpm:k", limit=1000, window=60.0)
                waits.append(time.monotonic() - started)
                await asyncio.sleep(0.01)
            assert max(waits) < 0.25 and not state.ready
            with pytest.raises(StateUnavailable, match="locked by another process"):
                await primary.ping()
        deadline = time.monotonic() + 5
        while not state.ready:
            assert time.monotonic() < deadline, "the failover did not return to the file"
            await asyncio.sleep(0.02)
        assert await state.ping() and await primary.ping()
    finally:
        await state.close()


async def test_the_failover_counts_the_spend_the_file_last_reported(tmp_path: Path) -> None:
    """A budget used up in the file stays used up while the file is locked elsewhere."""
    primary = SQLiteState(tmp_path / "s.sqlite", busy_timeout=0.2)
    state = FailoverState(primary, mode="open", retry_interval=0.05)
    try:
        assert await state.reserve("team", "2027-01", amount=Decimal(8), budget=Decimal(10))
        await state.settle("team", "2027-01", reserved=Decimal(8), actual=Decimal("9.5"))
        with locked_elsewhere(primary.path):
            assert not await state.reserve("team", "2027-01", amount=Decimal(1), budget=Decimal(10))
            assert not state.ready
            assert await state.reserve("team", "2027-01", amount=Decimal("0.5"), budget=Decimal(10))
            assert await state.spent("team", "2027-01") == 10
    finally:
        await state.close()


async def test_a_seed_the_file_failed_is_added_by_the_next_write(state: SQLiteState) -> None:
    """A worker whose startup seed found the file locked elsewhere adds it (once) with
    its next write, rather than leaving the month without the spend from before."""
    state.busy_timeout = 0.2
    with locked_elsewhere(state.path), pytest.raises(StateUnavailable):
        await state.seed("2027-01", {"k": Decimal("1.5")})
    assert not await state.seeded("2027-01")
    assert await state.take("rpm:k", limit=1, window=60.0) == 0.0  # any write
    assert await state.seeded("2027-01")
    assert await state.spent("k", "2027-01") == Decimal("1.5")
    assert await state.take("rpm:k", limit=2, window=60.0) == 0.0
    assert not await state.seed("2027-01", {"k": Decimal("1.5")})
    assert await state.spent("k", "2027-01") == Decimal("1.5")  # added once


# --------------------------------------------------------------------------- processes


def _take_many(path: str, start: Any, seconds: float, out: Any) -> None:
    async def run() -> tuple[int, float, float]:
        state = SQLiteState(path)
        taken = 0
        start.wait(60)  # (every process has its state open)
        began = time.time()
        while time.time() < began + seconds:  # (each process tries for the same while)
            taken += await state.take("rpm:shared", limit=37, window=600.0) == 0.0
            await asyncio.sleep(0.002)  # (a request's other work: the others get turns)
        await state.close()
        return taken, began, time.time()

    out.put(asyncio.run(run()))


def _spend_many(path: str, start: Any, seconds: float, out: Any) -> None:
    async def run() -> int:
        state = SQLiteState(path)
        reserved = 0
        start.wait(60)  # (every process has its state open)
        began = time.time()
        while time.time() < began + seconds:
            cost = Decimal("0.07")
            if await state.reserve("team", "2027-01", amount=cost, budget=Decimal(1)):
                reserved += 1
                await asyncio.sleep(0.005)  # the call, while others reserve
                # It cost a little more than its estimate.
                await state.settle("team", "2027-01", reserved=cost, actual=Decimal("0.08"))
        await state.close()
        return reserved

    out.put(asyncio.run(run()))


def _race(target: Any, path: Path, processes: int, seconds: float) -> list[Any]:
    """What ``target(path, start, seconds, out)`` put in ``out`` in each of ``processes``
    processes on one state file, which ``start`` (a barrier) lets go at once."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Barrier(processes), context.Queue()
    SQLiteState(path).close_sync()  # (the file exists before the race)
    workers = [
        context.Process(target=target, args=(str(path), start, seconds, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(10)
        assert worker.exitcode == 0
    return results


def test_processes_taking_from_one_bucket_get_exactly_the_limit(tmp_path: Path) -> None:
    results = _race(_take_many, tmp_path / "s.sqlite", processes=4, seconds=0.5)
    taken = [n for n, _, _ in results]
    assert sum(taken) == 37, taken  # (with a memory state each: 4 x 37)
    began, ended = max(r[1] for r in results), min(r[2] for r in results)
    assert began < ended  # all four were taking at once
    assert sum(1 for n in taken if n) >= 2, taken


def test_processes_racing_for_a_budget_overspend_by_at_most_one_reservation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.sqlite"
    reserved = _race(_spend_many, path, processes=4, seconds=0.5)
    state = SQLiteState(path)
    try:
        spent = asyncio.run(state.spent("team", "2027-01"))
    finally:
        state.close_sync()
    # A reservation of 0.07 is admitted only while the spend and the reservations in
    # flight leave room for it in the budget of 1; each call then costs 0.08. The spend
    # can pass the budget only by the calls in flight costing more than their estimates
    # (four processes, 0.01 each): less than one reservation. (A memory state in each
    # process would let each spend about 1: about 4 in all.)
    count = sum(reserved)
    assert spent == Decimal("0.08") * count  # exactly
    assert Decimal(1) - Decimal("0.07") < spent <= Decimal(1) + Decimal("0.07"), reserved
    assert sum(1 for n in reserved if n) >= 2, reserved  # they raced


# --------------------------------------------------------------------------- config


def write_config(
    directory: Path, gateway: str, upstream: str = "http://127.0.0.1:9", key: str = ""
) -> Path:
    """``gateway.toml`` in ``directory``: ``gateway`` in its ``[gateway]`` table, ``key``
    in the table of its one key (``team``)."""
    text = gateway_toml(ZHIPU_KEY, KEY, gateway=gateway, key=key, upstream=upstream)
    return write_gateway_toml(directory, text)


def test_relative_paths_resolve_against_the_config_files_directory(tmp_path: Path) -> None:
    """The server's working directory (here ``elsewhere``) does not move them."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.chdir(elsewhere)
    conf = tmp_path / "conf"
    path = write_config(conf, 'ledger = "data/usage.sqlite"\nstate = "sqlite:///state.db"')
    gateway = load_gateway_config(path)[1]
    assert gateway.ledger == str(conf / "data" / "usage.sqlite")
    assert gateway.state_kind == "sqlite" and gateway.state_path == conf / "state.db"
    # A relative --config, too.
    os.chdir(tmp_path)
    assert load_gateway_config("conf/gateway.toml")[1].ledger == str(conf / "data/usage.sqlite")
    os.chdir(elsewhere)
    # The files are made there.
    app = create_app(path)
    asyncio.run(app.shutdown())
    assert (conf / "data" / "usage.sqlite").is_file() and (conf / "state.db").is_file()
    assert list(elsewhere.iterdir()) == []
    # "sqlite": the default file in the config's directory; an absolute path stays.
    path = write_config(conf, 'state = "sqlite"')
    gateway = load_gateway_config(path)[1]
    assert gateway.state_path == conf / DEFAULT_STATE_FILE
    assert gateway.ledger == DEFAULT_LEDGER  # (unnamed: the working directory, as before)
    absolute = tmp_path / "abs" / "s.sqlite"
    path = write_config(conf, f'state = "sqlite:///{absolute}"\nledger = "{tmp_path / "l.db"}"')
    gateway = load_gateway_config(path)[1]
    assert gateway.state_path == absolute and gateway.ledger == str(tmp_path / "l.db")
    # A config with no file keeps the working directory.
    mapping = {
        "providers": {"zhipu": {"api_key": ZHIPU_KEY}},
        "gateway": {
            "ledger": "usage.sqlite",
            "state": "sqlite:///state.db",
            "keys": {"team": {"key_sha256": hash_key(KEY)}},
        },
    }
    gateway = load_gateway_config(mapping)[1]
    assert gateway.ledger == "usage.sqlite" and gateway.state_path == Path("state.db")


async def test_usage_finds_the_ledger_a_config_names_from_any_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``llm-bridge usage --config`` reads the ledger the gateway writes: a relative path
    from the config's directory, and the default file with a SQLite state (not a Redis
    stream: that state is no Redis)."""
    conf = tmp_path / "conf"
    path = write_config(conf, 'ledger = "usage.sqlite"\nstate = "sqlite"')
    ledger = SQLiteLedger(conf / "usage.sqlite")
    await ledger.write(ledger_entry("one", time.time() - 5, "1.25"))
    await ledger.close()
    os.chdir(tmp_path)
    assert main(["usage", "--config", str(path), "--json"]) == 0
    assert '"team"' in capsys.readouterr().out
    path = write_config(conf, 'state = "sqlite"')  # the default ledger: the working directory
    os.chdir(conf)
    (conf / "usage.sqlite").rename(conf / DEFAULT_LEDGER)
    assert main(["usage", "--config", str(path), "--json"]) == 0
    assert '"team"' in capsys.readouterr().out


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('state = "sqlite://state.db"', 'gateway.state: expected "memory", "sqlite"'),
        ('state = "sqlite:///"', 'gateway.state: expected "memory", "sqlite"'),
        ('state = "sqlite:state.db"', "sqlite:////PATH"),
        ('state = "sqlite"\nledger = "redis"', 'gateway.ledger: "redis" needs a redis://'),
    ],
)
def test_config_mistakes_name_the_file_and_key(tmp_path: Path, line: str, message: str) -> None:
    path = write_config(tmp_path, line)
    with pytest.raises(ConfigError) as error:
        load_gateway_config(path)
    assert str(error.value).startswith(f"{path}: ") and message in str(error.value)


def test_a_state_file_that_cannot_be_opened_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'state = "sqlite:///missing/dir/state.db"')
    with pytest.raises(ConfigError) as error:
        create_app(path)
    text = str(error.value)
    assert text.startswith(f"{path}: gateway.state: cannot open the SQLite state file ")
    assert str(tmp_path / "missing/dir/state.db") in text and "does not exist" in text
    (tmp_path / "junk.db").write_bytes(b"not a database, just some bytes " * 100)
    path = write_config(tmp_path, 'state = "sqlite:///junk.db"')
    with pytest.raises(ConfigError, match=r"gateway\.state: cannot open .*junk\.db"):
        create_app(path)


def test_serve_says_an_unusable_state_file_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, 'state = "sqlite:///nowhere/state.db"')
    code = main(["serve", "--config", str(path), "--port", str(free_port())])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{path}: gateway.state: cannot open the SQLite state file" in err


# --------------------------------------------------------------------------- the app


def ledger_entry(request_id: str, at: float, cost: str) -> LedgerEntry:
    return LedgerEntry(
        request_id=request_id,
        at=at,
        key="team",
        model="fast",
        provider="zhipu",
        upstream_model="glm-4-flash",
        cost_cny=Decimal(cost),
    )


async def test_the_ledger_keeps_a_batch_while_another_process_holds_the_lock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`write` promises not to lose an entry: a batch that finds the file locked past the
    busy timeout waits and is written when the lock is let go (it was dropped). A batch
    that cannot be written for another reason is dropped at once, and said."""
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(path, busy_timeout=0.1)
    now = time.time()
    await ledger.write(ledger_entry("r0", now, "1"))
    await ledger.flush()
    with locked_elsewhere(path):
        for i in range(1, 4):
            await ledger.write(ledger_entry(f"r{i}", now + i, "10"))
        flushed = asyncio.ensure_future(ledger.flush())
        await asyncio.sleep(0.6)  # several busy timeouts
        assert not flushed.done()
    await asyncio.wait_for(flushed, 5)
    assert "is locked by another process; 3 entries wait" in caplog.text
    assert [e.request_id for e in read_entries(path)] == ["r0", "r1", "r2", "r3"]
    assert spend_by_key(path, since=0, until=now + 10) == {"team": Decimal(31)}

    broken = sqlite3.connect(path, isolation_level=None)
    broken.execute("DROP TABLE ledger")  # not a lock: nothing to wait for
    broken.close()
    await ledger.write(ledger_entry("r4", now + 4, "1"))
    with pytest.raises(sqlite3.OperationalError, match="no such table"):
        await asyncio.wait_for(ledger.flush(), 5)
    assert "1 entries could not be written" in caplog.text
    await ledger.close()


async def test_budgets_start_from_the_ledger_once_and_never_twice(tmp_path: Path) -> None:
    """A fresh state file gets the month's spend from before it existed; the other
    workers on it, and later restarts, add nothing (the file holds what came after)."""
    config = write_config(
        tmp_path, 'ledger = "usage.sqlite"\nstate = "sqlite"', key="monthly_budget_cny = 10"
    )
    ledger = SQLiteLedger(tmp_path / "usage.sqlite")
    now = time.time()
    await ledger.write(ledger_entry("earlier", now - 5, "1.25"))
    await ledger.write(ledger_entry("earlier-2", now - 4, "0.5"))
    await ledger.close()
    period = time.strftime("%Y-%m", time.gmtime())

    first, second = create_app(config), create_app(config)  # two workers
    await first.startup()
    await second.startup()
    assert await first.state.spent("team", period) == Decimal("1.75")
    # The first worker spends through the state; the ledger records it too.
    assert await second.state.reserve("team", period, amount=Decimal(2), budget=Decimal(10))
    await second.state.settle("team", period, reserved=Decimal(2), actual=Decimal("0.25"))
    await second.ledger.write(ledger_entry("later", time.time() + 1, "0.25"))
    await first.shutdown()
    await second.shutdown()

    restarted = create_app(config)
    await restarted.startup()
    try:
        assert await restarted.state.spent("team", period) == Decimal("2.00")
    finally:
        await restarted.shutdown()


async def test_readyz_pings_the_sqlite_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``/readyz`` says whether the file answers; a file that fails is a store that is
    down, and ``state_failure = "closed"`` then refuses what needs it with a 503."""
    config = write_config(tmp_path, 'state = "sqlite"\nstate_failure = "closed"', key="rpm = 5")
    app = create_app(config)
    assert isinstance(app.state, FailoverState) and isinstance(app.state.primary, SQLiteState)
    await app.startup()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["state"] == "ok"

            def broken(*args: Any) -> Any:
                raise sqlite3.OperationalError("disk I/O error")

            monkeypatch.setattr(app.state.primary, "_transaction", broken)
            monkeypatch.setattr(app.state.primary, "_probe", broken)  # (ping's)
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["state"] == "unreachable"
            refused = await client.post(
                "/v1/chat/completions",
                headers={"Authorization": f"Bearer {KEY}"},
                json={"model": "fast", "messages": HELLO},
            )
            SUITE_TEXTS.append(refused.text)
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "state_unavailable"
    finally:
        await app.shutdown()


def test_workers_put_the_shared_file_in_place_of_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, "")
    monkeypatch.setenv("LLM_BRIDGE_GATEWAY_CONFIG", str(config))
    monkeypatch.delenv(SHARED_STATE_ENV, raising=False)
    app = worker_app()  # one worker: the memory state
    assert isinstance(app.state, MemoryState)
    asyncio.run(app.shutdown())
    monkeypatch.setenv(SHARED_STATE_ENV, str(tmp_path / "shared.sqlite"))
    app = worker_app()
    assert isinstance(app.state, FailoverState)
    assert isinstance(app.state.primary, SQLiteState)
    assert app.state.primary.path == tmp_path / "shared.sqlite"
    asyncio.run(app.shutdown())
    # A configured state is the config's, whatever the variable says.
    config = write_config(tmp_path, 'state = "sqlite:///own.sqlite"')
    app = worker_app()
    assert isinstance(app.state, FailoverState)
    assert isinstance(app.state.primary, SQLiteState)
    assert app.state.primary.path == tmp_path / "own.sqlite"
    asyncio.run(app.shutdown())


# --------------------------------------------------------------------------- a real server


@contextmanager
def running_server(
    workdir: Path, upstream: LoopbackServer, *, workers: int, key: str = ""
) -> Iterator[tuple[str, Path]]:
    """``llm-bridge serve --workers N`` on a free port (its TMPDIR, where it makes the
    workers' shared state, is the second value), stopped with SIGTERM afterwards."""
    config = write_config(workdir, 'ledger = "usage.sqlite"', upstream.url, key)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / "server.log"
    tmp = workdir / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env["TMPDIR"] = str(tmp)
    command = [sys.executable, "-m", "llm_bridge.cli", "serve", "--config", str(config)]
    command += ["--port", str(port), "--workers", str(workers)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llm-bridge serve did not start:\n{log_path.read_text()}")
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url, tmp
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(5)
            SUITE_TEXTS.append(log_path.read_text("utf-8", errors="replace"))
    assert process.returncode == 0, log_path.read_text("utf-8", errors="replace")


def answers_per_worker(url: str, route: str = "/v1/chat/completions") -> list[int]:
    """How many requests of ``route`` each worker answered, from its own ``/metrics``
    (asked often, on a new connection each time, so that every worker answers some). A
    worker is told apart by its lines of the route: the counts by status and the sum of
    their durations."""
    seen: dict[tuple[str, ...], int] = {}
    for _ in range(60):
        text = httpx.get(url + "/metrics", headers={"connection": "close"}).text
        lines = tuple(
            line
            for line in text.splitlines()
            if f'route="{route}"' in line and ("requests_total" in line or "_sum" in line)
        )
        seen[lines] = sum(int(line.split()[-1]) for line in lines if "requests_total" in line)
    return sorted(seen.values())


def test_two_workers_enforce_one_rpm(tmp_path: Path) -> None:
    """``llm-bridge serve --workers 2`` with the default state: a burst of 3N requests for
    a key of rpm N gives exactly N answers, and so do both workers after it. (With a
    memory state per worker, each lets N through: any split of the requests between the
    workers gives more than N.)"""
    rpm = 6
    extra = 30
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for _ in range(3 * rpm):
        fake.reply("好")
    with serve(fake) as upstream:
        with running_server(tmp_path, upstream, workers=2, key=f"rpm = {rpm}") as (url, tmp):

            def ask(_: int) -> int:
                response = httpx.post(
                    url + "/v1/chat/completions",
                    headers={"Authorization": f"Bearer {KEY}", "connection": "close"},
                    json={"model": "fast", "messages": HELLO},
                    timeout=30,
                )
                SUITE_TEXTS.append(response.text)
                return response.status_code

            # Three clients at once, each on a new connection per request.
            with ThreadPoolExecutor(3) as pool:
                statuses = list(pool.map(ask, range(3 * rpm)))
            assert sorted(statuses) == [200] * rpm + [429] * (2 * rpm), statuses
            # A burst may all go to the first worker to wake (asyncio accepts what has
            # queued at once): requests one after the other reach both, and each refuses.
            assert [ask(n) for n in range(extra)] == [429] * extra
            counts = answers_per_worker(url)
            assert len(counts) == 2 and sum(counts) == 3 * rpm + extra, counts
            assert 0 not in counts  # both workers answered some
            (shared,) = tmp.iterdir()  # the workers' state, made by serve
            assert (shared / "state.sqlite").is_file()
        assert list(tmp.iterdir()) == []  # deleted when the server stopped


async def test_a_lock_held_past_the_longest_wait_drops_the_batch_and_says_which(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lock held for ever must not stall the gateway for ever: once the queue is full
    every request waits for room, and shutdown's flush waits too. After the longest wait
    the batch is dropped, logged with its requests' ids, and the ledger goes on."""
    from llm_bridge.gateway import _ledger

    monkeypatch.setattr(_ledger, "_LONGEST_WAIT", 0.4)
    path = tmp_path / "ledger.sqlite"
    ledger = SQLiteLedger(path, busy_timeout=0.1)
    now = time.time()
    with locked_elsewhere(path):
        await ledger.write(ledger_entry("stuck-1", now, "1"))
        with pytest.raises(sqlite3.OperationalError):
            await asyncio.wait_for(ledger.flush(), 5)
    assert "locked for over 0.4 s" in caplog.text and "stuck-1" in caplog.text
    await ledger.write(ledger_entry("after", now + 1, "1"))
    await asyncio.wait_for(ledger.flush(), 5)
    assert [e.request_id for e in read_entries(path)] == ["after"]
    await ledger.close()
