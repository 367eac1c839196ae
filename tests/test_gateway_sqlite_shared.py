"""What a SQLite state's workers share besides limits: stored Responses
(`SQLiteResponseStore`) and provider tokens (`SQLiteTokenShare`), in the state's file.

Two `SQLiteState`s on one file stand for two workers (a fake wall clock moves the TTLs);
real processes race for one token; two gateway apps on one file continue each other's
responses and fetch one Qianfan token between them (against a control on memory states,
which fetches one per app); and ``llm-bridge serve --workers 2`` holds a conversation whose
turns land on both workers. (Apps in one process share its own Responses store anyway:
only separate processes show what a per-process store loses.)"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from conftest import SUITE_TEXTS
from responses_turns import continued_elsewhere, create
from test_gateway_app import AUTH, ZHIPU_KEY, error_of, gateway, settings
from test_gateway_sqlite_state import (
    KEY,
    Clock,
    _race,
    answers_per_worker,
    locked_elsewhere,
    rows,
    running_server,
    write_config,
)
from test_gateway_sqlite_state import ZHIPU_KEY as SERVER_ZHIPU_KEY
from test_token_share import IAM_AK, IAM_SK, IAM_URL, ask, iam_fake, new_process, slow_iam
from test_token_share import settings as qianfan_settings

from llm_bridge._auth import QianfanIamToken, SharedToken
from llm_bridge._response_store import StoredResponse
from llm_bridge._token_share import ADOPTED, MINTED, obtain_token
from llm_bridge.cli._serve import SHARED_STATE_ENV, worker_app
from llm_bridge.gateway import GatewayApp
from llm_bridge.gateway._sqlite_responses import DEFAULT_CAPACITY, SQLiteResponseStore
from llm_bridge.gateway._sqlite_state import SQLiteState
from llm_bridge.gateway._sqlite_tokens import SQLiteTokenShare
from llm_bridge.testing import FakeZhipu, serve


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def workers(tmp_path: Path, clock: Clock) -> Iterator[tuple[SQLiteState, SQLiteState]]:
    """Two states on one file, as two worker processes open it."""
    one = SQLiteState(tmp_path / "state.sqlite", clock=clock)
    two = SQLiteState(tmp_path / "state.sqlite", clock=clock)
    yield one, two
    one.close_sync()
    two.close_sync()


def entry(text: str) -> StoredResponse:
    return StoredResponse(
        {"id": text, "object": "response", "output": [{"text": text}]},
        [{"role": "user", "content": text}, {"role": "assistant", "content": "好"}],
        [{"id": f"msg_{text}", "type": "message"}],
    )


def kept(path: Path) -> list[str]:
    """The response ids in the file, oldest first."""
    return [row[0] for row in rows(path, "SELECT id FROM responses ORDER BY seq")]


# --------------------------------------------------------------------------- the store


async def test_a_response_stored_by_one_worker_is_read_and_deleted_by_another(
    workers: tuple[SQLiteState, SQLiteState],
) -> None:
    one, two = SQLiteResponseStore(workers[0]), SQLiteResponseStore(workers[1])
    await one.aput("team/resp_1", entry("resp_1"))
    got = await two.aget("team/resp_1")
    assert got is not None
    assert (got.response, got.messages, got.input_items) == (
        entry("resp_1").response,
        entry("resp_1").messages,
        entry("resp_1").input_items,
    )
    assert await two.aget("team/resp_unknown") is None
    assert await two.adelete("team/resp_1") is True
    assert await one.aget("team/resp_1") is None
    assert await one.adelete("team/resp_1") is False  # nothing left to delete
    assert "SQLite state file for 3600 s (the 10000 most recent)" in one.describe()
    assert DEFAULT_CAPACITY == 10_000


async def test_a_response_expires_with_its_ttl_for_every_worker(
    workers: tuple[SQLiteState, SQLiteState], clock: Clock
) -> None:
    one, two = SQLiteResponseStore(workers[0]), SQLiteResponseStore(workers[1], ttl=60.0)
    await one.aput("a", entry("a"))  # (one's TTL: the hour)
    await two.aput("b", entry("b"))  # (a minute)
    clock.now += 59
    assert await one.aget("b") is not None
    clock.now += 1
    assert await one.aget("b") is None and await two.adelete("b") is False
    assert await two.aget("a") is not None
    clock.now += 3600 - 60
    assert await two.aget("a") is None
    assert kept(workers[0].path) == ["a", "b"]  # expired, not yet dropped
    await one.aput("c", entry("c"))  # a put drops what expired
    assert kept(workers[0].path) == ["c"]


async def test_the_file_keeps_the_most_recently_stored_up_to_its_capacity(
    workers: tuple[SQLiteState, SQLiteState],
) -> None:
    one = SQLiteResponseStore(workers[0], capacity=3)
    two = SQLiteResponseStore(workers[1], capacity=3)
    for name, store in zip("abcd", [one, two, one, two]):
        await store.aput(name, entry(name))
    assert kept(workers[0].path) == ["b", "c", "d"]
    assert await one.aget("a") is None and await two.aget("b") is not None
    await one.aput("b", entry("b"))  # stored again: the newest
    await two.aput("e", entry("e"))
    assert kept(workers[0].path) == ["d", "b", "e"]
    assert await one.adelete("d")  # a deleted one frees its place
    await two.aput("f", entry("f"))
    assert kept(workers[0].path) == ["b", "e", "f"]


async def test_a_failing_file_leaves_responses_with_their_worker_and_hands_them_over(
    workers: tuple[SQLiteState, SQLiteState], monkeypatch: pytest.MonkeyPatch
) -> None:
    one = SQLiteResponseStore(workers[0], retry_interval=0.0)
    two = SQLiteResponseStore(workers[1])
    await one.aput("stays", entry("stays"))
    await one.aput("dropped", entry("dropped"))

    def broken(*args: Any) -> Any:
        raise sqlite3.OperationalError("disk I/O error")

    with monkeypatch.context() as patch:
        patch.setattr(workers[0], "_transaction", broken)
        await one.aput("made", entry("made"))  # no error: kept by this worker
        assert not one.ready and "cannot be used just now" in one.describe()
        assert await one.aget("made") is not None
        assert await one.aget("stays") is None  # in the file, which fails
        assert await one.adelete("dropped") is False  # ... and deleted from it when back
        assert await two.aget("made") is None
        assert len(one.local) == 1
    assert await one.aget("stays") is not None  # the file works: handed over first
    assert one.ready and len(one.local) == 0
    assert await two.aget("made") is not None
    assert await two.aget("dropped") is None
    assert kept(workers[0].path) == ["stays", "made"]


async def test_a_store_does_not_wait_out_a_lock_held_elsewhere_at_each_retry(
    workers: tuple[SQLiteState, SQLiteState],
) -> None:
    """While another process holds the file's lock, a worker's store tries the file again
    with a ping, which gives up in a quarter of a second, not the state's busy timeout:
    a request does not wait that long at each retry."""
    workers[0].busy_timeout = 1.0
    one = SQLiteResponseStore(workers[0], retry_interval=0.0)  # (tries at every call)
    with locked_elsewhere(workers[0].path):
        started = time.monotonic()
        await one.aput("made", entry("made"))  # waits the busy timeout once; kept here
        assert time.monotonic() - started >= 1.0 and not one.ready
        started = time.monotonic()
        await one.aput("later", entry("later"))
        assert await one.aget("made") is not None
        assert time.monotonic() - started < 0.9 and not one.ready
    assert await one.aget("made") is not None and one.ready  # handed over
    assert kept(workers[0].path) == ["made", "later"] and len(one.local) == 0


def nested(depth: int) -> Any:
    value: Any = "底"
    for _ in range(depth):
        value = [value]
    return value


async def test_what_pydantic_cannot_write_is_stored_and_what_nothing_can_write_is_not(
    workers: tuple[SQLiteState, SQLiteState], caplog: pytest.LogCaptureFixture
) -> None:
    # A lone surrogate (a provider's escaped half emoji) and nesting past pydantic-core's
    # depth limit: the standard library writes both. What nothing writes (here a cycle;
    # in a request, nesting past the interpreter's limit) is not stored, said in the log,
    # and no error.
    one, two = SQLiteResponseStore(workers[0]), SQLiteResponseStore(workers[1])
    odd = entry("odd")
    odd.messages[1]["content"] = "半个表情 \ud83d"
    deep = entry("deep")
    deep.input_items.append({"type": "message", "content": nested(300)})
    hopeless = entry("hopeless")
    cycle: list[Any] = []
    cycle.append(cycle)
    hopeless.input_items.append({"type": "message", "content": cycle})
    for store, name, value in ((one, "odd", odd), (one, "deep", deep), (one, "x", hopeless)):
        await store.aput(name, value)
    got = await two.aget("odd")
    assert got is not None and got.messages[1]["content"] == "半个表情 \ud83d"
    got = await two.aget("deep")
    assert got is not None and got.input_items == deep.input_items
    assert await two.aget("x") is None and await one.aget("x") is None
    assert "response x not stored: it cannot be written as JSON" in caplog.text
    # ... and one that cannot be written, made while the file failed, is dropped at the
    # hand-over rather than stopping it.
    one = SQLiteResponseStore(workers[0], retry_interval=0.0)
    one.local.put("y", hopeless)
    one.local.put("z", entry("z"))
    one._retry_at = 0.0  # (as after a failure)
    assert await one.aget("z") is not None
    assert kept(workers[0].path) == ["odd", "deep", "z"]
    assert len(one.local) == 0


async def test_a_row_of_another_layout_is_not_found(
    workers: tuple[SQLiteState, SQLiteState],
) -> None:
    db = sqlite3.connect(workers[0].path)
    db.execute(
        "INSERT INTO responses (id, expires, entry) VALUES ('odd', 9e99, ?)", (b'{"v": 99}',)
    )
    db.commit()
    db.close()
    assert await SQLiteResponseStore(workers[1]).aget("odd") is None


# --------------------------------------------------------------------------- the file


def test_a_version_1_file_is_given_the_new_tables_and_keeps_its_budgets(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        INSERT INTO meta VALUES ('version', '1'), ('created', '1700000000.5');
        CREATE TABLE spend (account TEXT NOT NULL, period TEXT NOT NULL, amount TEXT NOT NULL,
            changed REAL NOT NULL, PRIMARY KEY (account, period)) WITHOUT ROWID;
        """
    )
    db.execute("INSERT INTO spend VALUES ('team', '2027-01', '1.25', ?)", (1.8e9,))
    db.commit()
    db.close()
    clock = Clock(1.8e9 + 1)
    state = SQLiteState(path, clock=clock)
    try:
        assert state.created == 1700000000.5
        assert asyncio.run(state.spent("team", "2027-01")) == Decimal("1.25")
        store = SQLiteResponseStore(state)
        asyncio.run(store.aput("a", entry("a")))
        assert asyncio.run(store.aget("a")) is not None
    finally:
        state.close_sync()
    assert rows(path, "SELECT value FROM meta WHERE name = 'version'") == [("2",)]
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '3' WHERE name = 'version'")  # a later release's
    db.execute("DROP TABLE tokens")  # (say it renamed one: it must not be made again)
    db.commit()
    db.close()
    with pytest.raises(sqlite3.DatabaseError, match="state schema version '3'"):
        SQLiteState(path)
    assert rows(path, "SELECT name FROM sqlite_master WHERE name = 'tokens'") == []


def test_a_new_state_file_is_its_owners_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """It holds a bearer token; SQLite gives its WAL files the same mode."""
    state = SQLiteState(tmp_path / "state.sqlite")
    try:
        asyncio.run(SQLiteTokenShare(state).acquire("k", 10.0))  # (a write: the WAL is made)
        made = sorted(tmp_path.iterdir())
        assert [p.name for p in made] == ["state.sqlite", "state.sqlite-shm", "state.sqlite-wal"]
        for path in made:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        state.close_sync()
    existing = tmp_path / "existing.sqlite"
    existing.touch(mode=0o644)
    os.chmod(existing, 0o644)  # (whatever the umask)
    with caplog.at_level(logging.WARNING, logger="llm_bridge.gateway"):
        SQLiteState(existing).close_sync()
    assert stat.S_IMODE(existing.stat().st_mode) == 0o644  # left as its owner made it
    assert f"{existing} can be read or written by other users (mode 644)" in caplog.text


def test_a_state_file_named_by_a_symlink_is_made_its_owners_alone(tmp_path: Path) -> None:
    real, link = tmp_path / "real.sqlite", tmp_path / "state.sqlite"
    link.symlink_to(real)  # (dangling: the file is not made yet)
    old = os.umask(0o022)
    state = SQLiteState(link)
    try:
        asyncio.run(SQLiteTokenShare(state).acquire("k", 10.0))  # (a write: the WAL is made)
        made = [p for p in tmp_path.iterdir() if not p.is_symlink()]
        names = ["real.sqlite", "real.sqlite-shm", "real.sqlite-wal"]
        assert sorted(p.name for p in made) == names
        for path in made:
            assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    finally:
        state.close_sync()
        os.umask(old)


# --------------------------------------------------------------------------- tokens


async def test_the_token_share_keeps_a_token_until_its_ttl_and_one_lock_holder(
    workers: tuple[SQLiteState, SQLiteState], clock: Clock
) -> None:
    one, two = SQLiteTokenShare(workers[0]), SQLiteTokenShare(workers[1])
    assert await two.get("k") is None
    await one.put("k", SharedToken("tok-1", clock.now + 100), ttl=100)
    got = await two.get("k")
    assert got is not None and (got.token, got.renew_at) == ("tok-1", clock.now + 100)
    owner = await one.acquire("k", ttl=10)
    assert owner is not None and await two.acquire("k", ttl=10) is None
    await two.release("k", "not-the-owner")  # another's lock stays
    assert await two.acquire("k", ttl=10) is None
    await one.release("k", owner)
    second = await two.acquire("k", ttl=10)
    assert second is not None
    clock.now += 10  # the holder died: its lock lapses
    assert await one.acquire("k", ttl=10) is not None
    await two.release("k", second)  # (a lapsed owner frees nothing)
    assert await two.acquire("k", ttl=10) is None
    clock.now += 90
    assert await one.get("k") is None  # past its renew time
    assert "tok-1" not in repr(one) and "tok-1" not in repr(got)


def _obtain(path: str, start: Any, mint_seconds: float, out: Any) -> None:
    """One worker process: its own credentials and IAM fake (each fake issues tokens of its
    own), a token obtained through the file's share, and how it came."""

    async def run() -> tuple[str, str]:
        state = SQLiteState(path)
        credentials = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
        fake = iam_fake()

        async def mint() -> None:
            await asyncio.sleep(mint_seconds)  # the others are waiting meanwhile
            request = credentials.token_request()
            assert request is not None
            credentials.accept_token(fake.handler(request))

        start.wait(60)
        how = await obtain_token(SQLiteTokenShare(state), credentials, mint)
        shared = credentials.export()
        await state.close()
        assert shared is not None
        return how, shared.token

    out.put(asyncio.run(run()))


def test_processes_obtaining_a_token_at_once_mint_it_once(tmp_path: Path) -> None:
    results = _race(_obtain, tmp_path / "state.sqlite", processes=3, seconds=0.3)
    hows = sorted(how for how, _ in results)
    assert hows == [ADOPTED, ADOPTED, MINTED], results
    assert len({token for _, token in results}) == 1  # the minting process's


# --------------------------------------------------------------------------- two gateway apps


def sqlite_config(tmp_path: Path) -> dict[str, Any]:
    cfg = settings(tmp_path)
    cfg["gateway"].update({"state": f"sqlite:///{tmp_path / 'state.sqlite'}", "ledger": "none"})
    return cfg


async def test_a_response_made_on_one_app_is_continued_read_and_deleted_on_another(
    tmp_path: Path,
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。").reply("很美。").reply("不留")
    cfg = sqlite_config(tmp_path)
    async with (
        gateway(cfg, fake.transport()) as (a, one),
        gateway(cfg, fake.transport()) as (
            b,
            two,
        ),
    ):
        assert isinstance(a.engines.shared_store, SQLiteResponseStore)
        assert isinstance(b.engines.shared_store, SQLiteResponseStore)
        made = await create(one, "西湖在哪里？")
        assert made.status_code == 200, made.text
        rid = made.json()["id"]
        assert kept(tmp_path / "state.sqlite") == [f"team/{rid}"]  # filed under its key

        gone = await continued_elsewhere(one, two, made, fake)
        error = error_of(gone)
        assert error["code"] == "response_not_found"
        assert "SQLite state file" in error["message"] and "this process" not in error["message"]
        late = await create(one, "继续", previous_response_id=rid)
        assert late.status_code == 400
        assert error_of(late)["code"] == "previous_response_not_found"

        unstored = await create(one, "别存", store=False)
        assert unstored.status_code == 200, unstored.text
        uid = unstored.json()["id"]
        assert len(kept(tmp_path / "state.sqlite")) == 1  # the follow-up's, not this one
        missing = await two.get(f"/v1/responses/{uid}", headers=AUTH)
        assert missing.status_code == 404


@asynccontextmanager
async def qianfan_apps(
    monkeypatch: pytest.MonkeyPatch, state: str, upstream: httpx.AsyncBaseTransport
) -> AsyncIterator[list[tuple[GatewayApp, httpx.AsyncClient]]]:
    """Two gateway apps on ``state``, each with Qianfan credentials of its own (as two
    processes have)."""
    async with AsyncExitStack() as stack:
        apps = []
        for _ in range(2):
            new_process(monkeypatch)
            app, client = await stack.enter_async_context(
                gateway(qianfan_settings(state), upstream)
            )
            app.engines.engine.adapter("qianfan")  # its credentials, before the next app's
            apps.append((app, client))
        yield apps


@pytest.mark.parametrize(("kind", "mints"), [("sqlite", 1), ("memory", 2)])
async def test_two_apps_on_one_sqlite_state_fetch_one_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, mints: int
) -> None:
    """With a SQLite state, one token request for both apps however many requests wait
    for it; the control, on memory states, makes one per app."""
    state = f"sqlite:///{tmp_path / 'state.sqlite'}" if kind == "sqlite" else "memory"
    fake = iam_fake()
    async with qianfan_apps(monkeypatch, state, slow_iam(fake)) as apps:
        (one, c1), (two, c2) = apps
        shares = [app.engines.engine.token_share for app in (one, two)]
        assert all(isinstance(s, SQLiteTokenShare) for s in shares) == (kind == "sqlite")
        statuses = await asyncio.gather(*(ask(c) for c in [c1, c2] * 10))
        assert statuses == [200] * 20
        assert fake.token_requests == mints
        fake.expire_tokens()  # IAM revoked it: one new token, which the other adopts
        assert await ask(c1) == 200 and await ask(c2) == 200
        assert fake.token_requests == 2 * mints
    if kind == "sqlite":
        assert rows(tmp_path / "state.sqlite", "SELECT token FROM tokens") == [
            (fake.issued_tokens[-1],)
        ]
        assert rows(tmp_path / "state.sqlite", "SELECT count(*) FROM token_locks") == [(0,)]


def test_workers_share_responses_and_tokens_in_the_shared_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``llm-bridge serve --workers N``'s own file serves both, as a configured one."""
    config = write_config(tmp_path, 'ledger = "none"')
    monkeypatch.setenv("LLM_BRIDGE_GATEWAY_CONFIG", str(config))
    monkeypatch.setenv(SHARED_STATE_ENV, str(tmp_path / "shared.sqlite"))
    app = worker_app()
    try:
        store = app.engines.shared_store
        assert isinstance(store, SQLiteResponseStore)
        assert store.state.path == tmp_path / "shared.sqlite"
        share = app.engines.engine.token_share
        assert isinstance(share, SQLiteTokenShare) and share.state is store.state
    finally:
        asyncio.run(app.shutdown())


# --------------------------------------------------------------------------- a real server


def test_a_conversation_continues_across_two_workers(tmp_path: Path) -> None:
    """``llm-bridge serve --workers 2``: each turn of a conversation on a new connection,
    so the turns land on both workers, and every one finds the turn before it. Which
    worker accepts a connection is the kernel's choice: while one has had no turn yet, a
    few more are made (a busy machine can hand sixteen in a row to one worker)."""
    fake = FakeZhipu(api_key=SERVER_ZHIPU_KEY)
    for n in range(16):
        fake.reply(f"答{n}")
    with serve(fake) as upstream, running_server(tmp_path, upstream, workers=2) as (url, _):
        previous: Optional[str] = None
        turns, counts = 0, [0]
        while 0 in counts and turns < 64:
            for _ in range(16 if turns == 0 else 8):
                body: dict[str, Any] = {"model": "fast", "input": f"问{turns}"}
                if previous is not None:
                    body["previous_response_id"] = previous
                response = httpx.post(
                    url + "/v1/responses",
                    headers={"Authorization": f"Bearer {KEY}", "connection": "close"},
                    json=body,
                    timeout=30,
                )
                SUITE_TEXTS.append(response.text)
                assert response.status_code == 200, (turns, response.text)
                previous = response.json()["id"]
                turns += 1
            counts = answers_per_worker(url, "/v1/responses")
        assert len(counts) == 2 and sum(counts) == turns and 0 not in counts, counts
    sent = fake.last_json["messages"]
    assert len(sent) == 2 * turns - 1 and sent[0] == {"role": "user", "content": "问0"}
