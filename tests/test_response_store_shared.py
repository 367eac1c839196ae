"""Stored Responses shared by gateway replicas through Redis, and the store's async path.

Two `GatewayApp`s on one real redis-server play two replicas: a response created through
one is continued (``previous_response_id``), retrieved, listed and deleted through the
other; it expires with its TTL; with Redis down a replica keeps serving from its own
memory (no Redis error reaches a client) and hands what it stored over when Redis returns.
The asynchronous transport (the gateway's, ``llm_bridge.AsyncOpenAI``'s) only ever awaits
the store: a store whose synchronous methods raise serves every Responses route.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
import redis.asyncio as aioredis
from redis_server import RedisServer
from responses_turns import ANSWER_1, USER_1, USER_2, continued_elsewhere, create
from test_gateway_app import AUTH, ZHIPU_KEY, error_of, gateway, seen, settings

import llm_bridge
from llm_bridge._response_store import ResponseStore, StoredResponse, default_store
from llm_bridge.gateway import GatewayApp
from llm_bridge.gateway._redis_responses import RedisResponseStore, shared_response_store
from llm_bridge.testing import FakeDashScopeCompatible, FakeZhipu


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    with RedisServer(tmp_path / "redis").start() as server:
        yield server


@pytest.fixture
async def peek(redis: RedisServer) -> AsyncIterator[aioredis.Redis]:
    """A client of the test's own, to look at what the replicas wrote."""
    client = aioredis.Redis.from_url(redis.url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


def config(tmp_path: Path, redis: RedisServer) -> dict[str, Any]:
    cfg = settings(tmp_path)
    cfg["gateway"].update({"state": redis.url, "ledger": "none"})
    return cfg


@asynccontextmanager
async def replica(
    cfg: dict[str, Any], upstream: httpx.AsyncBaseTransport, **store_options: Any
) -> AsyncIterator[tuple[GatewayApp, httpx.AsyncClient, RedisResponseStore]]:
    """One gateway replica whose Responses store is `shared_response_store`'s (given
    ``store_options``: a short ``ttl``, say)."""
    async with gateway(cfg, upstream) as (app, client):
        store = shared_response_store(app.gateway, **store_options)
        assert isinstance(store, RedisResponseStore)
        own = app.engines.shared_store
        app.engines.shared_store = store
        try:
            yield app, client, store
        finally:
            await store.aclose()
            app.engines.shared_store = own


async def until(condition: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("not reached in time")


# --------------------------------------------------------------------------- sharing


async def test_a_response_made_on_one_replica_is_continued_read_and_deleted_on_another(
    tmp_path: Path, redis: RedisServer, peek: aioredis.Redis
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。").reply("很美。")
    cfg = config(tmp_path, redis)
    async with (
        replica(cfg, fake.transport()) as (_, one, _store1),
        replica(cfg, fake.transport()) as (_, two, _store2),
    ):
        made = await create(one, "西湖在哪里？")
        assert made.status_code == 200, made.text
        rid = made.json()["id"]
        key = f"llm-bridge:response:team/{rid}"
        assert 3_590_000 < await peek.pttl(key) <= 3_600_000  # the TTL is Redis's expiry
        raw = await peek.get(key)
        assert raw is not None and json.loads(raw)["response"]["id"] == rid

        gone = await continued_elsewhere(one, two, made, fake)
        assert await peek.exists(key) == 0
        error = error_of(gone)
        assert error["code"] == "response_not_found"
        assert "in Redis" in error["message"] and "in this process" not in error["message"]
        again = await two.delete(f"/v1/responses/{rid}", headers=AUTH)
        assert again.status_code == 404


async def test_a_streamed_response_is_in_redis_before_its_last_event(
    tmp_path: Path, redis: RedisServer, peek: aioredis.Redis
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。", chunk_size=2).reply("很美。")
    cfg = config(tmp_path, redis)
    async with (
        replica(cfg, fake.transport()) as (one, _, _store1),
        replica(cfg, fake.transport()) as (two, _, _store2),
    ):
        # Through the replicas' transports, to look at Redis while the events come (no
        # gateway key is in play there, so the responses are filed under their bare ids).
        request = httpx.Request(
            "POST",
            "http://gateway.llm-bridge.internal/v1/responses",
            json={"model": "fast", "input": "西湖在哪里？", "stream": True},
        )
        response = await one.transport.handle_async_request(request)
        rid: Optional[str] = None
        stored_when_completed: Optional[int] = None
        async for frame in response.aiter_raw():
            for line in frame.decode().splitlines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    rid = event.get("response", {}).get("id", rid)
                    if event["type"] == "response.completed":
                        stored_when_completed = await peek.exists(f"llm-bridge:response:{rid}")
        await response.aclose()
        assert rid is not None and stored_when_completed == 1

        body = {"model": "fast", "input": "它怎么样？", "previous_response_id": rid}
        follow = await two.transport.handle_async_request(
            httpx.Request("POST", "http://gateway.llm-bridge.internal/v1/responses", json=body)
        )
        assert follow.status_code == 200, await follow.aread()
        assert fake.last_json["messages"] == [USER_1, ANSWER_1, USER_2]


async def test_stored_responses_expire_with_their_ttl(
    tmp_path: Path, redis: RedisServer, peek: aioredis.Redis
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。")
    cfg = config(tmp_path, redis)
    async with (
        replica(cfg, fake.transport(), ttl=0.6) as (_, one, _store1),
        replica(cfg, fake.transport(), ttl=0.6) as (_, two, _store2),
    ):
        rid = (await create(one, "西湖在哪里？")).json()["id"]
        assert 0 < await peek.pttl(f"llm-bridge:response:team/{rid}") <= 600
        assert (await two.get(f"/v1/responses/{rid}", headers=AUTH)).status_code == 200
        await asyncio.sleep(0.8)
        assert await peek.exists(f"llm-bridge:response:team/{rid}") == 0
        gone = await two.get(f"/v1/responses/{rid}", headers=AUTH)
        assert gone.status_code == 404 and error_of(gone)["code"] == "response_not_found"
        asked = len(fake.requests)
        late = await create(one, "它怎么样？", previous_response_id=rid)
        assert late.status_code == 400
        error = error_of(late)
        assert error["code"] == "previous_response_not_found" and "for 0.6 s" in error["message"]
        assert len(fake.requests) == asked  # refused before any provider call


# --------------------------------------------------------------------------- Redis failing


def assert_no_redis_internals(response: httpx.Response) -> None:
    text = response.text
    for word in ("ConnectionError", "redis.exceptions", "Error 111", "Traceback", "OOM"):
        assert word not in text, text


async def test_with_redis_down_a_replica_serves_its_own_and_hands_them_over_after(
    tmp_path: Path, redis: RedisServer, peek: aioredis.Redis
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。").reply("很美。").reply("删掉的")
    cfg = config(tmp_path, redis)
    async with (
        replica(cfg, fake.transport(), retry_interval=0.05) as (_, one, store1),
        replica(cfg, fake.transport(), retry_interval=0.05) as (_, two, store2),
    ):
        redis.stop(kill=True)
        made = await create(one, "西湖在哪里？")
        assert made.status_code == 200, made.text
        rid = made.json()["id"]
        assert not store1.ready  # the outage was noticed, not raised
        follow = await create(one, "它怎么样？", previous_response_id=rid)
        assert follow.status_code == 200, follow.text
        assert fake.last_json["messages"] == [USER_1, ANSWER_1, USER_2]
        for path in (f"/v1/responses/{rid}", f"/v1/responses/{rid}/input_items"):
            assert seen(await one.get(path, headers=AUTH)).status_code == 200
        dropped = (await create(one, "删掉这个")).json()["id"]
        assert (await one.delete(f"/v1/responses/{dropped}", headers=AUTH)).status_code == 200

        # The other replica cannot know it: a plain OpenAI-shaped 404 that says why.
        elsewhere = await two.get(f"/v1/responses/{rid}", headers=AUTH)
        assert elsewhere.status_code == 404
        assert_no_redis_internals(elsewhere)
        assert "Redis is unreachable" in error_of(elsewhere)["message"]
        continued = await create(two, "继续", previous_response_id=rid)
        # (not a 400, which clients do not retry: Redis may well hold it)
        assert continued.status_code == 503 and continued.headers["retry-after"] == "1"
        assert error_of(continued)["code"] == "store_unavailable"
        assert_no_redis_internals(continued)

        redis.start()
        await until(lambda: store1.ready and store2.ready)
        assert len(store1.local) == 0  # handed over
        assert 0 < await peek.pttl(f"llm-bridge:response:team/{rid}") <= 3_600_000
        shared = seen(await two.get(f"/v1/responses/{rid}", headers=AUTH))
        assert shared.status_code == 200 and shared.json()["id"] == rid
        assert (await two.get(f"/v1/responses/{dropped}", headers=AUTH)).status_code == 404


async def test_a_response_deleted_while_redis_is_down_is_deleted_when_it_returns(
    redis: RedisServer, peek: aioredis.Redis
) -> None:
    """A delete of a response Redis holds, made while Redis is unreachable, is applied
    when it answers again: the response does not come back (it was forgotten)."""
    store = RedisResponseStore.from_url(redis.url, retry_interval=0.05)
    try:
        await store.aput("team/resp_1", StoredResponse({"id": "resp_1"}, [{"role": "user"}]))
        redis.stop(kill=True)
        assert await store.adelete("team/resp_1") is False  # (not here; Redis cannot say)
        assert not store.ready
        redis.start()
        await until(lambda: store.ready)
        assert await peek.exists("llm-bridge:response:team/resp_1") == 0
        assert await store.aget("team/resp_1") is None
    finally:
        await store.aclose()


async def test_deletes_remembered_during_an_outage_are_bounded(
    redis: RedisServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """DELETEs of made-up ids during an outage must not grow a replica's memory for as
    long as the outage lasts: past the bound they apply here only, and that is said."""
    from llm_bridge.gateway import _redis_responses

    monkeypatch.setattr(_redis_responses, "_MOST_FORGOTTEN", 3)
    store = RedisResponseStore.from_url(redis.url, retry_interval=60)
    try:
        redis.stop(kill=True)
        for n in range(5):
            await store.adelete(f"team/resp_made_up_{n}")
        await store.adelete("team/" + "x" * 300)
        assert len(store._forget) == 3
        assert "past 3; later ones apply to this replica only" in caplog.text
    finally:
        redis.start()
        await store.aclose()


async def test_a_redis_that_refuses_writes_leaves_the_response_with_its_replica(
    tmp_path: Path, redis: RedisServer, peek: aioredis.Redis
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。").reply("很美。")
    async with replica(config(tmp_path, redis), fake.transport()) as (_, one, store):
        await peek.config_set("maxmemory", "1")  # every write now fails with OOM
        try:
            made = await create(one, "西湖在哪里？")
            assert made.status_code == 200, made.text
            rid = made.json()["id"]
            assert await peek.exists(f"llm-bridge:response:team/{rid}") == 0
            assert store.ready and len(store.local) == 1  # refused, not down
            follow = await create(one, "它怎么样？", previous_response_id=rid)
            assert follow.status_code == 200, follow.text
            assert fake.last_json["messages"] == [USER_1, ANSWER_1, USER_2]
        finally:
            await peek.config_set("maxmemory", "0")


async def test_responses_only_the_standard_library_can_write_are_shared_too(
    redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    # (the SQLite store's twin test: tests/test_gateway_sqlite_shared.py)
    one, two = RedisResponseStore.from_url(redis.url), RedisResponseStore.from_url(redis.url)
    try:
        odd = StoredResponse({"id": "odd"}, [{"role": "assistant", "content": "半个 \ud83d"}])
        hopeless: list[Any] = []  # (nothing writes a cycle)
        hopeless.append(hopeless)
        await one.aput("odd", odd)
        await one.aput("x", StoredResponse({"id": "x"}, [{"role": "user", "content": hopeless}]))
        got = await two.aget("odd")
        assert got is not None and got.messages == odd.messages
        assert await two.aget("x") is None and one.ready and len(one.local) == 0
        assert "response x not stored: it cannot be written as JSON" in caplog.text
    finally:
        await one.aclose()
        await two.aclose()


async def test_a_foreign_value_under_a_response_key_is_not_found(
    tmp_path: Path, redis: RedisServer, peek: aioredis.Redis
) -> None:
    await peek.set("llm-bridge:response:resp_foreign", "not a stored response")
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with replica(config(tmp_path, redis), fake.transport()) as (_, one, _store):
        got = await one.get("/v1/responses/resp_foreign", headers=AUTH)
        assert got.status_code == 404 and error_of(got)["code"] == "response_not_found"


async def test_a_replica_starts_with_redis_down(tmp_path: Path, redis: RedisServer) -> None:
    redis.stop(kill=True)
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("好的")
    async with replica(config(tmp_path, redis), fake.transport()) as (_, one, store):
        assert store.ready  # nothing was sent yet: connected lazily
        made = await create(one, "在吗？")
        assert made.status_code == 200, made.text
        assert not store.ready


# --------------------------------------------------------------------------- the async path


class AsyncOnlyStore(ResponseStore):
    """An in-memory store whose synchronous methods fail the test: what the async
    transport must never call (it would block the event loop on a networked store)."""

    def __init__(self) -> None:
        super().__init__()
        self.awaited: list[str] = []

    def get(self, response_id: str) -> Optional[StoredResponse]:
        raise AssertionError("the async transport called the store's sync get")

    def put(self, response_id: str, entry: StoredResponse) -> None:
        raise AssertionError("the async transport called the store's sync put")

    def delete(self, response_id: str) -> bool:
        raise AssertionError("the async transport called the store's sync delete")

    async def aget(self, response_id: str) -> Optional[StoredResponse]:
        self.awaited.append("get")
        return ResponseStore.get(self, response_id)

    async def aput(self, response_id: str, entry: StoredResponse) -> None:
        self.awaited.append("put")
        ResponseStore.put(self, response_id, entry)

    async def adelete(self, response_id: str) -> bool:
        self.awaited.append("delete")
        return ResponseStore.delete(self, response_id)


async def test_the_gateway_only_awaits_its_store(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。").reply("很美。", chunk_size=1)
    store = AsyncOnlyStore()
    async with gateway(settings(tmp_path), fake.transport()) as (app, client):
        app.engines.shared_store = store
        rid = (await create(client, "西湖在哪里？")).json()["id"]
        streamed = await create(client, "它怎么样？", previous_response_id=rid, stream=True)
        assert streamed.status_code == 200 and "response.completed" in streamed.text
        for path in (f"/v1/responses/{rid}", f"/v1/responses/{rid}/input_items"):
            assert seen(await client.get(path, headers=AUTH)).status_code == 200
        assert (await client.delete(f"/v1/responses/{rid}", headers=AUTH)).status_code == 200
        missing = await create(client, "继续", previous_response_id=rid)
        assert missing.status_code == 400
        assert "in this process" in error_of(missing)["message"]  # the store describes itself
    assert store.awaited == ["put", "get", "put", "get", "get", "delete", "get"]
    assert len(store) == 1  # the streamed answer


async def test_async_openai_only_awaits_its_store() -> None:
    store = AsyncOnlyStore()
    zhipu = FakeZhipu(api_key="id.secret").reply("一").reply("二三", chunk_size=1)
    c = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key="id.secret",
        http_client=httpx.AsyncClient(transport=zhipu.transport()),
    )
    c._transport.source.store = store
    made = await c.responses.create(model="glm-4-flash", input="数一")
    async with c.responses.stream(
        model="glm-4-flash", input="数二", previous_response_id=made.id
    ) as stream:
        final = await stream.get_final_response()
    assert final.output_text == "二三"
    assert (await c.responses.retrieve(final.id)).output_text == "二三"
    await c.responses.delete(made.id)
    # DashScope serves Responses itself: its answers are stored the same way.
    dashscope = FakeDashScopeCompatible("sk-ds").reply("千问。").reply("四五", chunk_size=1)
    d = llm_bridge.AsyncOpenAI(
        provider="dashscope",
        api_key="sk-ds",
        http_client=httpx.AsyncClient(transport=dashscope.transport()),
    )
    d._transport.source.store = store
    native = await d.responses.create(model="qwen-plus", input="你是谁？")
    async with d.responses.stream(model="qwen3-max", input="数数") as passed:
        native_final = await passed.get_final_response()
    assert native_final.output_text == "四五"
    assert (await d.responses.retrieve(native.id)).output_text == "千问。"
    assert store.awaited == ["put", "get", "put", "get", "delete", "put", "put", "get"]
    await c.close()
    await d.close()


# --------------------------------------------------------------------------- the pieces


def test_a_stored_response_survives_json() -> None:
    entry = StoredResponse(
        {"id": "resp_1", "object": "response"},
        [USER_1, ANSWER_1],
        [{"id": "msg_1", "type": "message"}],
        native=True,
    )
    back = StoredResponse.from_json(json.loads(json.dumps(entry.to_json())))
    assert (back.response, back.messages, back.input_items, back.native) == (
        entry.response,
        entry.messages,
        entry.input_items,
        True,
    )
    for junk in (None, [], {"v": 99}, {"v": 1, "response": {}, "messages": "no"}):
        with pytest.raises(ValueError):
            StoredResponse.from_json(junk)


def test_the_memory_store_is_both_flavours_and_deletes_only_live_entries() -> None:
    now = [0.0]
    store = ResponseStore(capacity=2, ttl=10.0, clock=lambda: now[0])
    entry = StoredResponse({"id": "a"}, [])
    asyncio.run(store.aput("a", entry))
    assert asyncio.run(store.aget("a")) is entry and store.get("a") is entry
    now[0] = 11.0
    assert store.delete("a") is False  # expired: there was nothing to delete
    store.put("b", StoredResponse({}, []))
    assert asyncio.run(store.adelete("b")) is True and store.get("b") is None
    assert "in this process for 10 s (the 2 most recent)" in store.describe()


def test_a_memory_gateway_keeps_the_process_store(tmp_path: Path) -> None:
    from llm_bridge.gateway import load_gateway_config

    _, memory = load_gateway_config(settings(tmp_path))
    assert shared_response_store(memory) is default_store()
