"""The gateway on a real Redis: one rpm limit across two apps, and what a Redis outage does.

``state_failure = "closed"`` refuses requests with an OpenAI-shaped 503 while Redis is
down and ``/readyz`` says unavailable; ``"open"`` keeps serving with per-process limits
and ``/readyz`` says degraded (the replica stays in the load balancer). Both recover when
Redis answers again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis_server import RedisServer
from test_gateway_app import AUTH, HELLO, ZHIPU_KEY, gateway, settings

from llm_bridge.testing import FakeZhipu


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    with RedisServer(tmp_path / "redis").start() as server:
        yield server


def config(tmp_path: Path, redis: RedisServer, failure: str, **key: Any) -> dict[str, Any]:
    cfg = settings(tmp_path, **key)
    cfg["gateway"].update({"state": redis.url, "state_failure": failure, "ledger": "none"})
    return cfg


async def ask(client: Any) -> int:
    response = await client.post(
        "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": HELLO}
    )
    return response.status_code


async def test_two_apps_on_one_redis_share_one_rpm_limit(
    tmp_path: Path, redis: RedisServer
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    cfg = config(tmp_path, redis, "closed", rpm=5)
    async with (
        gateway(cfg, fake.transport()) as (_, one),
        gateway(cfg, fake.transport()) as (
            _,
            two,
        ),
    ):
        statuses = await asyncio.gather(*(ask(c) for c in [one, two] * 8))
    assert statuses.count(200) == 5 and statuses.count(429) == 11


async def test_closed_refuses_with_503_while_redis_is_down(
    tmp_path: Path, redis: RedisServer
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(config(tmp_path, redis, "closed", rpm=100), fake.transport()) as (_, c):
        assert await ask(c) == 200
        redis.stop(kill=True)
        response = await c.post(
            "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": HELLO}
        )
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "state_unavailable"
        assert (await c.get("/readyz")).status_code == 503
        redis.restart()
        for _ in range(50):  # the failover re-checks Redis about once a second
            if (await c.get("/readyz")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        assert await ask(c) == 200


async def test_open_keeps_serving_and_reports_degraded(tmp_path: Path, redis: RedisServer) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(config(tmp_path, redis, "open", rpm=100), fake.transport()) as (_, c):
        redis.stop(kill=True)
        assert await ask(c) == 200
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and ready.json()["status"] == "degraded"
