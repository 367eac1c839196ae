"""A request gives back the tpm tokens it did not use from its own take alone.

The gateway takes an estimate of a request's tokens from the key's tpm window when it is
admitted and gives back what the call did not use when it ends. The give-back used to
shrink the window's newest takes, which are other requests' (in flight, or admitted
since): a request that outlived the 60 s window took its unused tokens off the others'
(its own take had left the window), and one that ended within it shrank the others'
takes instead of its own, so the window forgot them once its own take left. Either way
a key could pass its tpm. Now `take_entry` names the take and `give_back` shrinks only
that one, or nothing once it has left the window: the same in memory, in a SQLite file
and in Redis (a real redis-server on loopback), and through `FailoverState`.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable, Optional

import httpx
import pytest
import redis.asyncio as aioredis
from conftest import SUITE_SECRETS
from redis_server import RedisServer

from llm_bridge.gateway import MemoryState, create_app, hash_key
from llm_bridge.gateway._failover import FailoverState, StateUnavailable
from llm_bridge.gateway._redis import RedisState
from llm_bridge.gateway._sqlite_state import SQLiteState
from llm_bridge.gateway._state import GatewayState
from llm_bridge.testing import FakeZhipu

ZHIPU_KEY = "tpmreview19.zhipusecret0123456789abcd"
KEY = "sk-lb-tpmreview19-team-0123456789abcdef"
SUITE_SECRETS.update({ZHIPU_KEY, KEY, hash_key(KEY)})
AUTH = {"Authorization": f"Bearer {KEY}"}
HELLO = [{"role": "user", "content": "你好"}]
#: What every call reports using: far less than any estimate here.
USED = {"prompt_tokens": 10, "completion_tokens": 15, "total_tokens": 25}


def tpm_config(tmp_path: Path) -> dict[str, Any]:
    """A gateway on Zhipu whose one key has a tpm of 1000."""
    return {
        "providers": {"zhipu": {"api_key": ZHIPU_KEY}},
        "models": {"fast": "zhipu/glm-4-flash"},
        "gateway": {
            "ledger": str(tmp_path / "ledger.sqlite"),
            "keys": {"team": {"key_sha256": hash_key(KEY), "tpm": 1000}},
        },
    }


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- the gateway


@dataclass
class Gated:
    """A gateway on `MemoryState` (clock moved by the test) whose upstream answers a
    request only once the test opens the gate for its ``max_tokens``."""

    client: httpx.AsyncClient
    clock: Clock
    gates: dict[int, asyncio.Event]

    def send(self, max_tokens: int) -> asyncio.Task[httpx.Response]:
        self.gates.setdefault(max_tokens, asyncio.Event())
        body = {"model": "fast", "messages": HELLO, "max_tokens": max_tokens}
        post = self.client.post("/v1/chat/completions", headers=AUTH, json=body)
        return asyncio.ensure_future(post)

    async def finish(self, max_tokens: int, task: asyncio.Task[httpx.Response]) -> int:
        self.gates[max_tokens].set()
        return (await task).status_code


@pytest.fixture
async def gated(tmp_path: Path) -> AsyncIterator[Gated]:
    clock = Clock()
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for _ in range(10):
        fake.reply("好", usage=USED)
    gates: dict[int, asyncio.Event] = {}

    async def upstream(request: httpx.Request) -> httpx.Response:
        gate = gates.get(json.loads(request.read()).get("max_tokens"))
        if gate is not None:
            await gate.wait()
        return fake.handler(request)

    config = tpm_config(tmp_path)
    http = httpx.AsyncClient(transport=httpx.MockTransport(upstream))
    app = create_app(config, http_client=http, state=MemoryState(clock=clock))
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=asgi(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield Gated(client, clock, gates)
    finally:
        for gate in gates.values():
            gate.set()
        await app.shutdown()


def asgi(app: object) -> Any:
    """The app as httpx's ASGI transport takes it (its type asks for a dict scope)."""
    return app


async def settle_down() -> None:
    """Let the requests in flight reach the upstream (or end)."""
    await asyncio.sleep(0.2)


async def test_a_request_past_the_window_gives_back_nothing_of_the_others(
    gated: Gated,
) -> None:
    """The reviewer's case: A (an estimate of ~920 tokens) is admitted at t=0 and its
    stream lasts past the 60 s window; B (~920) is admitted at t=61 and is in flight when
    A ends having used 25 tokens. A's take has left the window, so it gives back nothing:
    B's take stays counted and C (~920) is refused. A's ~895 unused tokens used to come
    off B's take, and C was let through: ~1,840 tokens in flight on a tpm of 1000."""
    a = gated.send(901)
    await settle_down()
    gated.clock.now += 61
    b = gated.send(902)
    await settle_down()
    assert await gated.finish(901, a) == 200
    c = gated.send(903)
    gated.gates[903].set()
    assert (await c).status_code == 429
    assert await gated.finish(902, b) == 200


async def test_a_request_within_the_window_shrinks_its_own_take(gated: Gated) -> None:
    """A (~520 tokens) at t=0, B (~420) at t=30, A ends at once having used 25: A's take
    shrinks to 25, B's stays 420. At t=61 A's take has left the window, which still
    holds B's 420, so C (~620) is refused. The give-back used to empty B's (newer) take
    and shrink A's, so the window held nothing once A's left, and C went through."""
    a = gated.send(500)
    await settle_down()
    gated.clock.now += 30
    b = gated.send(400)
    await settle_down()
    assert await gated.finish(500, a) == 200
    gated.clock.now += 31
    c = gated.send(600)
    gated.gates[600].set()
    assert (await c).status_code == 429
    assert await gated.finish(400, b) == 200


async def test_a_request_within_the_window_still_gives_back_what_it_did_not_use(
    gated: Gated,
) -> None:
    """A (~520) ends at once having used 25: its take shrinks to 25, so B (~920) fits."""
    a = gated.send(500)
    await settle_down()
    assert await gated.finish(500, a) == 200
    b = gated.send(900)
    gated.gates[900].set()
    assert (await b).status_code == 200


# --------------------------------------------------------------------------- each store


@dataclass
class Store:
    """A state under test, its window (seconds) and how time moves for it."""

    state: Any  # GatewayState with take_entry
    window: float
    advance: Callable[[float], Awaitable[None]]  # by a fraction of the window


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop(kill=True)


def fake_clock_store(state: Any, clock: Clock) -> Store:
    async def advance(fraction: float) -> None:
        clock.now += fraction * 60.0

    return Store(state, 60.0, advance)


@pytest.fixture(params=["memory", "sqlite", "redis", "failover"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    clock = Clock()
    if request.param == "memory":
        yield fake_clock_store(MemoryState(clock=clock), clock)
    elif request.param in ("sqlite", "failover"):
        sqlite = SQLiteState(tmp_path / "state.sqlite", clock=clock)
        state = sqlite if request.param == "sqlite" else FailoverState(sqlite)
        try:
            yield fake_clock_store(state, clock)
        finally:
            await state.close()
    else:
        # Redis's own clock: a real window, long enough for a busy machine. The checks
        # after a take has left it are made 0.05 windows past its expiry (a sleep never
        # ends early) and 0.35 windows before the next take's (a sleep may end late).
        state = RedisState.from_url(request.getfixturevalue("redis_url"), prefix="tpm19:")
        await state.client.flushdb()

        async def sleep(fraction: float) -> None:
            await asyncio.sleep(fraction * 2.0)

        try:
            yield Store(state, 2.0, sleep)
        finally:
            await state.close()


async def test_a_give_back_after_its_take_left_the_window_changes_nothing(
    store: Store,
) -> None:
    state, window = store.state, store.window
    wait, a = await state.take_entry("tpm:k", limit=100, window=window, amount=60)
    assert wait == 0.0 and a is not None
    await store.advance(1.05)  # A's take has left the window
    assert await state.take("tpm:k", limit=100, window=window, amount=90) == 0.0
    await state.give_back("tpm:k", window=window, amount=55, entry=a)
    # B's 90 are all still counted (they used to shrink to 35).
    assert await state.take("tpm:k", limit=100, window=window, amount=11) > 0
    assert await state.take("tpm:k", limit=100, window=window, amount=10) == 0.0


async def test_a_give_back_within_the_window_shrinks_only_its_own_take(store: Store) -> None:
    state, window = store.state, store.window
    _, a = await state.take_entry("tpm:k", limit=100, window=window, amount=60)
    await store.advance(0.4)
    assert await state.take("tpm:k", limit=100, window=window, amount=30) == 0.0
    await state.give_back("tpm:k", window=window, amount=50, entry=a)  # A: 10, B: 30
    assert await state.take("tpm:k", limit=100, window=window, amount=61) > 0
    assert await state.take("tpm:k", limit=100, window=window, amount=60) == 0.0
    await store.advance(0.65)  # A's take has left the window; B's 30 and the 60 have not
    assert await state.take("tpm:k", limit=100, window=window, amount=11) > 0
    assert await state.take("tpm:k", limit=100, window=window, amount=10) == 0.0


async def test_a_give_back_returns_at_most_what_its_take_holds(store: Store) -> None:
    state, window = store.state, store.window
    _, a = await state.take_entry("tpm:k", limit=100, window=window, amount=10)
    assert await state.take("tpm:k", limit=100, window=window, amount=50) == 0.0
    await state.give_back("tpm:k", window=window, amount=40, entry=a)  # A's 10, not 40
    await state.give_back("tpm:k", window=window, amount=40, entry=a)  # A holds nothing
    await state.give_back("tpm:other", window=window, amount=40, entry=a)  # not its bucket
    await state.give_back("tpm:k", window=window, amount=40, entry="not an id")
    assert await state.take("tpm:k", limit=100, window=window, amount=51) > 0
    assert await state.take("tpm:k", limit=100, window=window, amount=50) == 0.0


async def test_take_entry_names_only_what_it_took(store: Store) -> None:
    state, window = store.state, store.window
    assert await state.take_entry("tpm:k", limit=100, window=window, amount=0) == (0.0, None)
    assert await state.take_entry("tpm:k", limit=100, window=window, amount=101) == (
        window,
        None,
    )
    _, a = await state.take_entry("tpm:k", limit=100, window=window, amount=100)
    wait, none = await state.take_entry("tpm:k", limit=100, window=window, amount=1)
    assert wait > 0 and none is None
    _, forced = await state.take_entry("tpm:k", limit=100, window=window, amount=5, force=True)
    assert a is not None and forced is not None and a != forced


async def test_the_stores_agree_on_takes_and_give_backs_of_their_own(
    tmp_path: Path, redis_url: str
) -> None:
    """The same takes and give-backs (each of a random earlier take), no time passing,
    decide the same in memory, in SQLite and in Redis."""
    clock = Clock()
    memory = MemoryState(clock=clock)
    sqlite = SQLiteState(tmp_path / "state.sqlite", clock=clock)
    redis_state = RedisState.from_url(redis_url, prefix="tpm19-agree:")
    stores: list[Any] = [memory, sqlite, redis_state]
    entries: list[list[Optional[str]]] = []
    rng = random.Random(19)
    try:
        for step in range(300):
            amount = rng.randint(1, 30)
            if entries and rng.random() < 0.35:
                which = entries[rng.randrange(len(entries))]
                for state, entry in zip(stores, which):
                    await state.give_back("gb", window=60, amount=amount, entry=entry)
                continue
            force = rng.random() < 0.1
            answers = [
                await state.take_entry("gb", limit=100, window=60, amount=amount, force=force)
                for state in stores
            ]
            waits = [wait for wait, _ in answers]
            assert waits[0] == pytest.approx(waits[1]), (step, waits)
            assert len({wait == 0.0 for wait in waits}) == 1, (step, waits)
            assert len({entry is None for _, entry in answers}) == 1, (step, answers)
            if answers[0][1] is not None:
                entries.append([entry for _, entry in answers])
        # Every take given back in full: nothing left in any window.
        for which in entries:
            for state, entry in zip(stores, which):
                await state.give_back("gb", window=60, amount=1000, entry=entry)
        for state in stores:
            assert await state.take("gb", limit=100, window=60, amount=100) == 0.0
    finally:
        sqlite.close_sync()
        await redis_state.close()


# --------------------------------------------------------------------------- Redis


async def test_redis_keeps_the_log_and_its_expiry_when_a_take_shrinks(redis_url: str) -> None:
    state = RedisState.from_url(redis_url, prefix="tpm19-redis:")
    raw = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        log_key, sum_key = state.window_keys("tpm:k")
        _, a = await state.take_entry("tpm:k", limit=100, window=60, amount=60)
        assert a is not None
        await state.give_back("tpm:k", window=60, amount=20, entry=a)
        assert [str(m).rsplit(":", 1)[1] for m in await raw.zrange(log_key, 0, -1)] == ["40"]
        assert await raw.hget(sum_key, "sum") == "40"
        assert 59_000 < await raw.pttl(log_key) <= 61_000  # (a log re-made had none)
        # The sum lost (an eviction): the take still shrinks in the log, which the next
        # take counts.
        await raw.delete(sum_key)
        await state.give_back("tpm:k", window=60, amount=30, entry=a)
        assert await state.take("tpm:k", limit=100, window=60, amount=91) > 0
        assert await state.take("tpm:k", limit=100, window=60, amount=90) == 0.0
    finally:
        await raw.aclose()
        await state.close()


# --------------------------------------------------------------------------- failover


class Flaky(MemoryState):
    """A store that is down while ``down`` is set."""

    down = False

    async def take_entry(self, bucket: str, **kwargs: Any) -> tuple[float, Optional[str]]:
        if self.down:
            raise StateUnavailable("down")
        return await super().take_entry(bucket, **kwargs)

    async def give_back(self, bucket: str, **kwargs: Any) -> None:
        if self.down:
            raise StateUnavailable("down")
        await super().give_back(bucket, **kwargs)

    async def ping(self) -> bool:
        return not self.down


async def test_the_failover_gives_back_to_the_store_that_holds_the_take() -> None:
    """A take the store holds is not given back out of the outage's memory (other
    requests' takes), nor one the memory holds to the store."""
    primary = Flaky()
    state = FailoverState(primary, retry_interval=3600)
    try:
        _, a = await state.take_entry("tpm:k", limit=100, window=60, amount=60)
        primary.down = True
        _, b = await state.take_entry("tpm:k", limit=100, window=60, amount=30)  # memory
        await state.give_back("tpm:k", window=60, amount=50, entry=a)
        assert await state.take("tpm:k", limit=100, window=60, amount=71) > 0  # B's 30 stay
        primary.down = False
        assert await state.ping()  # back to the store
        await state.give_back("tpm:k", window=60, amount=30, entry=b)
        assert await primary.take("tpm:k", limit=100, window=60, amount=41) > 0  # A's 60 stay
        await state.give_back("tpm:k", window=60, amount=50, entry=a)
        assert await primary.take("tpm:k", limit=100, window=60, amount=90) == 0.0
    finally:
        await state.close()


async def test_a_closed_failover_says_a_give_back_to_a_store_that_is_down() -> None:
    primary = Flaky()
    state = FailoverState(primary, mode="closed", retry_interval=3600)
    try:
        _, a = await state.take_entry("tpm:k", limit=100, window=60, amount=60)
        primary.down = True
        with pytest.raises(StateUnavailable):
            await state.give_back("tpm:k", window=60, amount=50, entry=a)
    finally:
        await state.close()


class Earlier:
    """A `GatewayState` of an earlier release: no `take_entry`, no ``entry``."""

    def __init__(self) -> None:
        self.memory = MemoryState()
        self.calls: list[str] = []

    async def take(self, bucket: str, **kwargs: Any) -> float:
        self.calls.append("take")
        return await self.memory.take(bucket, **kwargs)

    async def give_back(self, bucket: str, *, window: float, amount: int) -> None:
        self.calls.append("give_back")
        await self.memory.give_back(bucket, window=window, amount=amount)

    async def reserve(self, account: str, period: str, **kwargs: Any) -> bool:
        return await self.memory.reserve(account, period, **kwargs)

    async def settle(self, account: str, period: str, **kwargs: Any) -> None:
        await self.memory.settle(account, period, **kwargs)

    async def spent(self, account: str, period: str) -> Decimal:
        return await self.memory.spent(account, period)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


async def test_a_state_of_an_earlier_release_still_serves(tmp_path: Path) -> None:
    """A state passed to `create_app` that has no `take_entry` is taken from with
    `take` and given back to without an entry."""
    earlier = Earlier()
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    fake.reply("好", usage=USED)
    config = tpm_config(tmp_path)
    state: GatewayState = earlier  # type: ignore[assignment]
    http = httpx.AsyncClient(transport=fake.transport())
    app = create_app(config, http_client=http, state=state)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=asgi(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            body = {"model": "fast", "messages": HELLO, "max_tokens": 500}
            answer = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    finally:
        await app.shutdown()
    assert answer.status_code == 200
    assert earlier.calls == ["take", "give_back"]
    assert await earlier.memory.take("tpm:team", limit=1000, window=60, amount=975) == 0.0
