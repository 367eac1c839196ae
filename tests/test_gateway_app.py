"""The gateway's ASGI app in process: auth, limits, budgets, the ledger, metrics, bad input,
streams and disconnects. Provider traffic goes to the wire-exact fakes through the app's
upstream ``http_client``; the gateway itself is reached through ``httpx.ASGITransport`` (or
driven by hand with ASGI messages where a test needs to hang up mid-stream)."""

from __future__ import annotations

import asyncio
import gzip
import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import SUITE_SECRETS, SUITE_TEXTS
from gateway_toml import gateway_toml, write_gateway_toml

from llm_bridge import ConfigError
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
from llm_bridge.testing import FakeZhipu

ZHIPU_KEY = "gwtest.zhipusecret0123456789abcdef"
KEY = "sk-lb-gatewaytestkey-0123456789abcdef"
OTHER_KEY = "sk-lb-otherteamkey-9876543210fedcba"
SUITE_SECRETS.update({ZHIPU_KEY, KEY, OTHER_KEY, hash_key(KEY), hash_key(OTHER_KEY)})

HELLO = [{"role": "user", "content": "你好"}]
AUTH = {"Authorization": f"Bearer {KEY}"}


def settings(tmp_path: Path, **key: Any) -> dict[str, Any]:
    gateway: dict[str, Any] = {
        "ledger": str(tmp_path / "ledger.sqlite"),
        "keys": {
            "team": {
                "key_sha256": hash_key(KEY),
                "models": ["fast", "glm-*", "embedding-*", "priced"],
                **key,
            },
            "other": {"key_sha256": hash_key(OTHER_KEY), "models": ["zhipu/*"]},
        },
    }
    return {
        "providers": {"zhipu": {"api_key": ZHIPU_KEY}},
        "models": {"fast": "zhipu/glm-4-flash", "priced": "zhipu/glm-4-plus"},
        # 0.01 CNY per token either way: costs large enough to count.
        "prices": {"zhipu/glm-4-plus": {"input": 10000, "output": 10000}},
        "gateway": gateway,
    }


def seen(response: httpx.Response) -> httpx.Response:
    """Hand what the gateway answered to the suite's secret scan."""
    SUITE_TEXTS.append(f"{response.headers!r} {response.text}")
    return response


@asynccontextmanager
async def gateway(
    config: dict[str, Any], upstream: httpx.AsyncBaseTransport, **kwargs: Any
) -> AsyncIterator[tuple[GatewayApp, httpx.AsyncClient]]:
    app = create_app(config, http_client=httpx.AsyncClient(transport=upstream), **kwargs)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            yield app, client
    finally:
        await app.shutdown()


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = seen(response).json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return body["error"]


# --------------------------------------------------------------------------- answers


async def test_chat_is_answered_as_openai_and_recorded(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("你好！")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = seen(
            await client.post(
                "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": HELLO}
            )
        )
        assert response.status_code == 200
        body = response.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"] == "你好！"
        assert response.headers["x-llm-bridge-provider"] == "zhipu"
        request_id = response.headers["x-llm-bridge-gateway-request-id"]
    # The provider saw its own key, never the gateway key.
    sent = fake.requests[-1]
    assert KEY not in str(sent.headers) and fake.last_json["model"] == "glm-4-flash"
    (entry,) = read_entries(tmp_path / "ledger.sqlite")
    assert entry.request_id == request_id
    assert (entry.key, entry.model, entry.provider, entry.upstream_model) == (
        "team",
        "fast",
        "zhipu",
        "glm-4-flash",
    )
    assert entry.status == 200 and entry.prompt_tokens > 0 and entry.completion_tokens > 0
    assert entry.latency_ms > 0 and entry.extra == {"route": "/v1/chat/completions"}


async def test_client_headers_stay_at_the_gateway(tmp_path: Path) -> None:
    # Clients send their own tracking (Codex: session, thread, installation ids): none of
    # it reaches the provider; only what shapes the body does.
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("好")
    tracking = {"session-id": "s-1", "x-codex-window-id": "w-1", "originator": "codex"}
    # DashScope's options pass, but not those that are the gateway's to decide: a stream
    # the engine did not ask for (generated and billed, then refused), an async task, the
    # workspace billed.
    dashscope = {"x-dashscope-datainspection": '{"input": "cip"}'}
    gateways = {
        "x-dashscope-sse": "enable",
        "x-dashscope-async": "enable",
        "x-dashscope-workspace": "ws-other",
    }
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post(
            "/v1/chat/completions",
            headers={**AUTH, **tracking, **dashscope, **gateways},
            json={"model": "fast", "messages": HELLO},
        )
        assert response.status_code == 200
    sent = {name.lower() for name in fake.requests[-1].headers}
    assert not sent & set(tracking) and "content-type" in sent
    assert set(dashscope) <= sent and not sent & set(gateways)


async def test_a_calls_query_stays_at_the_gateway(tmp_path: Path) -> None:
    # (an Azure client's api-version; a value of the provider's own, as Qianfan v1's
    # access_token, would otherwise replace the gateway's)
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("好")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post(
            "/v1/chat/completions?api-version=2024-10-21&access_token=theirs",
            headers=AUTH,
            json={"model": "fast", "messages": HELLO},
        )
        assert response.status_code == 200
    assert fake.requests[-1].url.query == b""


async def test_a_budgeted_key_for_every_model_is_listed_only_the_priced_ones(
    tmp_path: Path,
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for budget, unpriced_listed in ((None, True), (100, False)):
        key: dict[str, Any] = {"models": ["*"]}
        if budget is not None:
            key["monthly_budget_cny"] = budget
        async with gateway(settings(tmp_path, **key), fake.transport()) as (_, client):
            listed = seen(await client.get("/v1/models", headers=AUTH)).json()
        ids = {m["id"] for m in listed["data"]}
        assert "glm-4-plus" in ids  # (priced)
        assert ("glm-5.3" in ids) is unpriced_listed  # (no price known: docs/unsure.md Z1)


async def test_a_stream_is_sse_and_its_usage_reaches_the_ledger(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("一二三四五六七八九十", chunk_size=2)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        body = {"model": "fast", "messages": HELLO, "stream": True}
        response = seen(await client.post("/v1/chat/completions", headers=AUTH, json=body))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[6:] for line in response.text.split("\n\n") if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
        == "一二三四五六七八九十"
    )
    (entry,) = read_entries(tmp_path / "ledger.sqlite")
    # The usage callback ran while the stream was iterated, in the request's context.
    assert entry.status == 200 and entry.provider == "zhipu"
    assert entry.completion_tokens > 0 and not entry.estimated


async def test_embeddings_and_models(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = seen(
            await client.post(
                "/v1/embeddings",
                headers=AUTH,
                json={"model": "embedding-3", "input": ["一", "二"], "encoding_format": "float"},
            )
        )
        assert response.status_code == 200
        assert [d["index"] for d in response.json()["data"]] == [0, 1]
        listed = seen(await client.get("/v1/models", headers=AUTH)).json()
        ids = {m["id"] for m in listed["data"]}
        assert "fast" in ids and "glm-4-flash" in ids
        assert all(i in ("fast", "priced") or i.startswith(("glm-", "embedding-")) for i in ids)
        one = seen(await client.get("/v1/models/glm-4-flash", headers=AUTH))
        assert one.status_code == 200 and one.json()["id"] == "glm-4-flash"
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        listed = seen(await client.get("/v1/models", headers=other)).json()
        # (`other` may use zhipu/*: the aliases `fast` and `priced` route there)
        assert {m["owned_by"] for m in listed["data"]} == {"zhipu", "llm-bridge-alias"}


async def test_the_responses_api_create_retrieve_items_delete(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("答案")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        created = seen(
            await client.post(
                "/v1/responses", headers=AUTH, json={"model": "fast", "input": "问题"}
            )
        )
        assert created.status_code == 200, created.text
        response = created.json()
        assert (
            response["object"] == "response"
            and response["output_text" if "output_text" in response else "output"]
        )
        rid = response["id"]
        got = seen(await client.get(f"/v1/responses/{rid}", headers=AUTH))
        assert got.status_code == 200 and got.json()["id"] == rid
        items = seen(await client.get(f"/v1/responses/{rid}/input_items", headers=AUTH))
        assert items.status_code == 200 and items.json()["object"] == "list"
        deleted = seen(await client.delete(f"/v1/responses/{rid}", headers=AUTH))
        assert deleted.status_code == 200 and deleted.json()["deleted"] is True
        gone = await client.get(f"/v1/responses/{rid}", headers=AUTH)
        assert gone.status_code == 404 and error_of(gone)["code"] == "response_not_found"


# --------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer sk-lb-wrong"},
        {"Authorization": f"Basic {KEY}"},
        {"api-key": KEY + "x"},
        {"Authorization": f"Bearer {hash_key(KEY)}"},  # the digest is not the key
    ],
)
async def test_without_a_valid_key_401(tmp_path: Path, headers: dict[str, str]) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        for path in ("/v1/chat/completions", "/v1/models", "/v1/nothing"):
            response = await client.post(
                path, headers=headers, json={"model": "fast", "messages": HELLO}
            )
            assert response.status_code == 401
            error = error_of(response)
            assert error["code"] == "invalid_api_key" and "gateway key" in error["message"]
    assert fake.requests == []


async def test_the_api_key_header_is_accepted(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post(
            "/v1/chat/completions",
            headers={"api-key": KEY},
            json={"model": "fast", "messages": HELLO},
        )
        assert seen(response).status_code == 200


async def test_a_model_the_key_may_not_use_403(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        for model in ("qwen-plus", "zhipu/glm-4-flash", "dashscope/qwen-max"):
            response = await client.post(
                "/v1/chat/completions", headers=AUTH, json={"model": model, "messages": HELLO}
            )
            assert response.status_code == 403, model
            error = error_of(response)
            assert error["code"] == "model_not_allowed" and error["param"] == "model"
        # (retrieved: OpenAI's 404 for a model the caller cannot see)
        retrieved = await client.get("/v1/models/qwen-plus", headers=AUTH)
        assert retrieved.status_code == 404 and error_of(retrieved)["code"] == "model_not_found"
        # "zhipu/*" allows whatever routes to Zhipu, by any name.
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        for model in ("fast", "glm-4-flash", "zhipu/glm-4-flash"):
            response = await client.post(
                "/v1/chat/completions", headers=other, json={"model": model, "messages": HELLO}
            )
            assert seen(response).status_code == 200, model
        response = await client.post(
            "/v1/chat/completions", headers=other, json={"model": "qwen-plus", "messages": HELLO}
        )
        assert response.status_code == 403
    assert len(fake.requests) == 3
    statuses = [e.status for e in read_entries(tmp_path / "ledger.sqlite")]
    assert (statuses.count(403), statuses.count(404), statuses.count(200)) == (4, 1, 3)


# --------------------------------------------------------------------------- limits


async def test_over_rpm_429_with_retry_after(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path, rpm=2), fake.transport()) as (_, client):
        body = {"model": "fast", "messages": HELLO}
        codes = [
            (await client.post("/v1/chat/completions", headers=AUTH, json=body)).status_code
            for _ in range(2)
        ]
        assert codes == [200, 200]
        refused = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        error = error_of(refused)
        assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
        # Another key has its own window.
        other = {"Authorization": f"Bearer {OTHER_KEY}"}
        assert (
            await client.post("/v1/chat/completions", headers=other, json=body)
        ).status_code == 200
    assert len(fake.requests) == 3


async def test_rpm_counts_model_calls_not_model_lists(tmp_path: Path) -> None:
    """Chat UIs reload the model list often: as with OpenAI's limits, only model calls
    count against ``rpm``."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path, rpm=2), fake.transport()) as (_, client):
        for _ in range(3):
            assert (await client.get("/v1/models", headers=AUTH)).status_code == 200
            assert (await client.get("/v1/models/fast", headers=AUTH)).status_code == 200
        body = {"model": "fast", "messages": HELLO}
        codes = [
            (await client.post("/v1/chat/completions", headers=AUTH, json=body)).status_code
            for _ in range(3)
        ]
    assert codes == [200, 200, 429]


async def test_a_call_refused_for_its_tokens_gives_its_request_back(tmp_path: Path) -> None:
    """Nothing was sent for a call ``tpm`` refused: it does not take one of the key's
    ``rpm`` requests (each such refusal did, and the key ran out of both)."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path, rpm=1, tpm=300), fake.transport()) as (_, client):
        huge = {"model": "fast", "messages": [{"role": "user", "content": "字" * 2000}]}
        for _ in range(2):
            refused = await client.post("/v1/chat/completions", headers=AUTH, json=huge)
            assert refused.status_code == 429 and error_of(refused)["type"] == "tokens"
        body = {"model": "fast", "messages": HELLO}
        answered = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert answered.status_code == 200
        again = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert again.status_code == 429 and error_of(again)["type"] == "requests"
    assert len(fake.requests) == 1


async def test_a_provider_account_out_of_funds_is_not_the_clients_budget(
    tmp_path: Path,
) -> None:
    """A provider's arrears are the operator's account running dry: a 502 saying so, not
    the 429 ``insufficient_quota`` a client reads as its own budget spent (the gateway's
    answer over a key's budget)."""
    fake = FakeZhipu(api_key=ZHIPU_KEY).fail("arrears")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        body = {"model": "fast", "messages": HELLO}
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    error = error_of(response)
    assert response.status_code == 502 and error["code"] == "provider_quota_exhausted"
    assert error["type"] == "server_error" and error["provider"] == "zhipu"
    assert "[providers.zhipu]" in error["message"]


async def test_over_tpm_429_with_retry_after(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path, tpm=300), fake.transport()) as (_, client):
        # Each takes its estimate (prompt + 250) and, once answered, gives back what it
        # did not use: without the give-back the second would not fit.
        wide = {"model": "fast", "messages": HELLO, "max_tokens": 250}
        for _ in range(2):
            answered = await client.post("/v1/chat/completions", headers=AUTH, json=wide)
            assert answered.status_code == 200
        # What the two used stays in the window: this estimate no longer fits.
        widest = {"model": "fast", "messages": HELLO, "max_tokens": 290}
        refused = await client.post("/v1/chat/completions", headers=AUTH, json=widest)
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert error_of(refused)["type"] == "tokens"
        huge = {"model": "fast", "messages": [{"role": "user", "content": "字" * 2000}]}
        refused = await client.post("/v1/chat/completions", headers=AUTH, json=huge)
        assert refused.status_code == 429 and "alone" in error_of(refused)["message"]
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/v1/chat/completions", {"input": {"messages": [{"role": "user", "content": "长"}]}}),
        ("/v1/chat/completions", {"parameters": {"max_tokens": 2000}}),
        ("/v1/chat/completions", {"system": "长" * 100}),
        ("/v1/chat/completions", {"max_output_tokens": 2048}),
        ("/v1/responses", {"parameters": {"max_tokens": 2000}}),
    ],
)
async def test_provider_fields_that_would_replace_what_the_limits_checked_are_refused(
    tmp_path: Path, path: str, extra: dict[str, Any]
) -> None:
    # Passed on as provider extras, they would replace the prompt or the answer's length
    # the key's tpm and budget were checked against (DashScope's envelope, ERNIE's fields).
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    body: dict[str, Any] = {"model": "fast", "max_tokens": 5, **extra}
    body["input" if path == "/v1/responses" else "messages"] = (
        "你好" if path == "/v1/responses" else HELLO
    )
    body.pop("max_tokens") if path == "/v1/responses" else None
    async with gateway(settings(tmp_path, tpm=100_000), fake.transport()) as (_, client):
        refused = await client.post(path, headers=AUTH, json=body)
        assert refused.status_code == 400
        error = error_of(refused)
        assert error["param"] == next(iter(extra)) and "limits and budget" in error["message"]
        # (a provider option that replaces nothing passes as before)
        fine = {"model": "fast", "messages": HELLO, "enable_thinking": False}
        assert (await client.post("/v1/chat/completions", headers=AUTH, json=fine)).is_success
    assert len(fake.requests) == 1


async def test_the_estimate_counts_tools_and_copies_but_not_image_data(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    tool = {
        "type": "function",
        "function": {"name": "f", "description": "长" * 3000, "parameters": {"type": "object"}},
    }
    image = "data:image/png;base64," + "A" * 400_000  # (160 000 tokens if read as text)
    vision = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "这是什么？"},
                {"type": "image_url", "image_url": {"url": image}},
            ],
        }
    ]
    async with gateway(settings(tmp_path, tpm=20_000), fake.transport()) as (_, client):
        tools = {"model": "fast", "messages": HELLO, "tools": [tool] * 20, "max_tokens": 10}
        refused = await client.post("/v1/chat/completions", headers=AUTH, json=tools)
        assert refused.status_code == 429 and "alone" in error_of(refused)["message"]
        copies = {"model": "fast", "messages": [{"role": "user", "content": "长" * 3000}]}
        refused = await client.post(
            "/v1/chat/completions", headers=AUTH, json={**copies, "n": 8, "max_tokens": 10}
        )
        assert refused.status_code == 429 and "alone" in error_of(refused)["message"]
        answered = await client.post(
            "/v1/chat/completions",
            headers=AUTH,
            json={"model": "glm-4v-flash", "messages": vision, "max_tokens": 10},
        )
        assert answered.status_code == 200, answered.text
    assert len(fake.requests) == 1


async def test_tpm_takes_the_usage_beyond_the_estimate(tmp_path: Path) -> None:
    """A call that used more than its length estimate has the rest taken afterwards."""
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply(
        "ok", usage={"prompt_tokens": 150, "completion_tokens": 100, "total_tokens": 250}
    )
    state = MemoryState()
    async with gateway(settings(tmp_path, tpm=1000), fake.transport(), state=state) as (_, c):
        body = {"model": "fast", "messages": HELLO}
        assert (await c.post("/v1/chat/completions", headers=AUTH, json=body)).status_code == 200
    assert await state.take("tpm:team", limit=1000, window=60.0, amount=750) == 0.0
    assert await state.take("tpm:team", limit=1000, window=60.0, amount=1) > 0


async def test_a_responses_continuation_is_estimated_with_its_stored_conversation(
    tmp_path: Path,
) -> None:
    """``previous_response_id`` sends the provider the whole stored conversation: a
    one-word continuation of it is estimated at the conversation's length, not one word."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path, tpm=5000), fake.transport()) as (_, client):
        long = {"model": "fast", "input": "长" * 3000, "max_output_tokens": 10}
        first = await client.post("/v1/responses", headers=AUTH, json=long)
        assert first.status_code == 200, first.text  # (~3600 estimated, ~1500 used)
        more = {"model": "fast", "input": "继续", "max_output_tokens": 10}
        refused = await client.post(
            "/v1/responses", headers=AUTH, json={**more, "previous_response_id": first.json()["id"]}
        )
        assert refused.status_code == 429, refused.text
        assert "tokens" in error_of(refused)["message"]
        # (a fresh short request still fits what is left)
        assert (await client.post("/v1/responses", headers=AUTH, json=more)).status_code == 200
    assert len(fake.requests) == 2


async def test_over_budget_429_insufficient_quota_and_spend_is_settled(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    state = MemoryState()
    config = settings(tmp_path, monthly_budget_cny=2)
    async with gateway(config, fake.transport(), state=state) as (app, client):
        body = {"model": "priced", "messages": HELLO, "max_tokens": 20}
        statuses = []
        for _ in range(40):
            response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
            statuses.append(response.status_code)
            if response.status_code != 200:
                break
        assert statuses[0] == 200 and statuses[-1] == 429, statuses
        error = error_of(response)
        assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
        assert response.headers["x-should-retry"] == "false"
        period = app._period()
    spent = await state.spent("team", period)
    costs = [e.cost_cny for e in read_entries(tmp_path / "ledger.sqlite") if e.status == 200]
    # Reservations were replaced by the actual costs, which stay within the budget.
    assert spent == sum(costs) and Decimal(0) < spent <= Decimal(2)
    assert len(costs) == statuses.count(200) == len(fake.requests)


async def test_a_failed_call_gives_its_reservation_back(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).fail("bad_request")
    state = MemoryState()
    async with gateway(settings(tmp_path, monthly_budget_cny=5), fake.transport(), state=state) as (
        app,
        client,
    ):
        body = {"model": "priced", "messages": HELLO, "max_tokens": 10}
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert response.status_code == 400
        assert await state.spent("team", app._period()) == 0
        # Without max_tokens the upper estimate is the model's whole output: too dear.
        body = {"model": "priced", "messages": HELLO}
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert response.status_code == 429
        assert error_of(response)["code"] == "insufficient_quota"
        assert await state.spent("team", app._period()) == 0


# --------------------------------------------------------------------------- the ledger


async def test_the_ledger_survives_a_restart_and_writes_each_request_once(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    config = settings(tmp_path)
    for _ in range(2):  # two app lifetimes on one file
        async with gateway(config, fake.transport()) as (_, client):
            await asyncio.gather(
                *(
                    client.post(
                        "/v1/chat/completions",
                        headers=AUTH,
                        json={"model": "fast", "messages": HELLO},
                    )
                    for _ in range(5)
                )
            )
    entries = list(read_entries(tmp_path / "ledger.sqlite"))
    assert len(entries) == 10 and len({e.request_id for e in entries}) == 10
    ledger = SQLiteLedger(tmp_path / "ledger.sqlite")
    await ledger.write(entries[0])  # a repeated write lands once
    await ledger.close()
    assert len(list(read_entries(tmp_path / "ledger.sqlite"))) == 10
    # `llm-bridge usage` sums it by key and provider.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_bridge.cli",
            "usage",
            "--ledger",
            str(tmp_path / "ledger.sqlite"),
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    (row,) = [line.split() for line in out.splitlines() if line.startswith("team ")]
    assert row[:4] == ["team", "zhipu", "10", "0"]


async def test_a_provider_error_code_with_a_lone_surrogate_is_stored(tmp_path: Path) -> None:
    """JSON may carry "\\ud800" (a provider's error code, say); SQLite cannot store it. It
    once killed the ledger's writer thread, and every later write waited for ever."""
    ledger = SQLiteLedger(tmp_path / "l.sqlite")
    odd = LedgerEntry(
        request_id="r1",
        at=1.0,
        key="team",
        model="m\ud800",
        provider="zhipu",
        upstream_model=None,
        status=400,
        error_code="12\udcff",
        extra={"note": "x\ud800"},
    )
    await ledger.write(odd)
    await ledger.write(LedgerEntry("r2", 2.0, "team", "glm-4-flash", "zhipu", None))
    await ledger.close()
    first, second = read_entries(tmp_path / "l.sqlite")
    assert (first.model, first.error_code, first.extra) == (
        "m\ufffd",
        "12\ufffd",
        {"note": "x\ufffd"},
    )
    assert second.request_id == "r2"


async def test_the_sqlite_ledger_waits_for_room_instead_of_growing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk slower than the requests makes `write` wait once ``queue_size`` entries are
    queued: memory stays bounded, and every entry still lands."""
    from llm_bridge.gateway import _ledger

    disk = threading.Event()
    original_row = _ledger._row

    def slow_row(entry: LedgerEntry) -> tuple[Any, ...]:
        disk.wait(10)
        return original_row(entry)

    monkeypatch.setattr(_ledger, "_row", slow_row)
    ledger = SQLiteLedger(tmp_path / "l.sqlite", queue_size=3)
    entries = [
        LedgerEntry(f"r{i}", float(i), "team", "glm-4-flash", "zhipu", None) for i in range(10)
    ]
    writes = asyncio.gather(*(ledger.write(entry) for entry in entries))
    await asyncio.sleep(0.2)
    assert not writes.done()  # waiting for room, not queued without end
    assert ledger._queue.qsize() <= 3
    disk.set()
    await asyncio.wait_for(writes, 10)
    await ledger.close()
    assert [e.request_id for e in read_entries(tmp_path / "l.sqlite")] == [
        e.request_id for e in entries
    ]


async def test_the_sqlite_ledger_keeps_every_field(tmp_path: Path) -> None:
    ledger = SQLiteLedger(tmp_path / "sub" / "l.sqlite")
    entry = LedgerEntry(
        request_id="r1",
        at=1.5,
        key="k",
        model="m",
        provider="zhipu",
        upstream_model="glm",
        prompt_tokens=3,
        completion_tokens=4,
        cached_tokens=1,
        estimated=True,
        cost_cny=Decimal("0.000123"),
        latency_ms=2.5,
        status=502,
        error_code="connection_error",
        extra={"route": "/v1/x"},
    )
    await asyncio.gather(*(ledger.write(entry) for _ in range(3)))
    await ledger.flush()
    await ledger.close()
    assert list(read_entries(tmp_path / "sub" / "l.sqlite")) == [entry]
    with pytest.raises(RuntimeError):
        await ledger.write(entry)


# --------------------------------------------------------------------------- errors


async def test_provider_errors_are_openai_shaped_and_counted(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).fail("bad_request")

    def unreachable(request: httpx.Request) -> httpx.Response:
        if fake.requests:
            raise httpx.ConnectError("connection refused")
        return fake.handler(request)

    async with gateway(settings(tmp_path), httpx.MockTransport(unreachable)) as (_, client):
        body = {"model": "fast", "messages": HELLO}
        bad = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert bad.status_code == 400 and error_of(bad).get("provider") == "zhipu"
        down = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert down.status_code == 502
        assert error_of(down)["code"] == "connection_error"
        metrics = seen(await client.get("/metrics")).text
    assert 'route="/v1/chat/completions",status="502"' in metrics
    assert 'provider="zhipu"' in metrics and 'code="connection_error"' in metrics
    entries = list(read_entries(tmp_path / "ledger.sqlite"))
    assert [(e.status, e.error_code) for e in entries][-1] == (502, "connection_error")


async def test_metrics_count_requests_tokens_and_cost_and_hold_no_secret(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        await client.post(
            "/v1/chat/completions", headers=AUTH, json={"model": "priced", "messages": HELLO}
        )
        await client.post("/v1/chat/completions", json={"model": "fast", "messages": HELLO})
        response = seen(await client.get("/metrics"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for expected in (
        'llm_bridge_gateway_requests_total{route="/v1/chat/completions",status="200"} 1',
        'llm_bridge_gateway_requests_total{route="/v1/chat/completions",status="401"} 1',
        'llm_bridge_gateway_errors_total{provider="gateway",code="invalid_api_key"} 1',
        'llm_bridge_gateway_tokens_total{key="team",provider="zhipu",model="glm-4-plus",kind="prompt"}',
        'llm_bridge_gateway_cost_cny_total{key="team",provider="zhipu",model="glm-4-plus"}',
        'llm_bridge_gateway_request_duration_seconds_bucket{route="/v1/chat/completions",'
        'le="+Inf"} 2',
        "# TYPE llm_bridge_gateway_request_duration_seconds histogram",
    ):
        assert expected in text, expected
    for secret in (ZHIPU_KEY, KEY, hash_key(KEY), ZHIPU_KEY.split(".")[1]):
        assert secret not in text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{not json", "could not parse the JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "must be a JSON object"),
        (b'{"messages": []}', "Missing required parameter: 'model'"),
        (b'{"model": 123, "messages": []}', "model must be a non-empty string"),
    ],
)
async def test_malformed_bodies_400(tmp_path: Path, content: bytes, message: str) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post(
            "/v1/chat/completions",
            headers={**AUTH, "content-type": "application/json"},
            content=content,
        )
        assert response.status_code == 400
        assert message in error_of(response)["message"]
    assert fake.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"model": "fast", "messages": "hello"},
        {"model": "fast", "messages": [{"role": "user", "content": "hi"}], "temperature": "hot"},
        {"model": "fast"},
    ],
)
async def test_wrong_types_400_from_the_engines_checks(
    tmp_path: Path, body: dict[str, Any]
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert response.status_code == 400, response.text
        error_of(response)
    assert fake.requests == []


async def test_a_body_over_the_limit_413(tmp_path: Path) -> None:
    config = settings(tmp_path)
    config["gateway"]["max_body_bytes"] = 2000
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(config, fake.transport()) as (_, client):
        body = {"model": "fast", "messages": [{"role": "user", "content": "x" * 3000}]}
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
        assert response.status_code == 413
        assert error_of(response)["code"] == "request_too_large"

        async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted as read
            for _ in range(4):
                yield b" " * 1000

        response = await client.post("/v1/chat/completions", headers=AUTH, content=chunked())
        assert response.status_code == 413
        ok = {"model": "fast", "messages": HELLO}
        assert (await client.post("/v1/chat/completions", headers=AUTH, json=ok)).status_code == 200
    assert len(fake.requests) == 1


async def test_a_compressed_body_415_naming_its_encoding(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    body = gzip.compress(json.dumps({"model": "fast", "messages": HELLO}).encode())
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post(
            "/v1/chat/completions",
            headers={**AUTH, "Content-Encoding": "gzip", "Content-Type": "application/json"},
            content=body,
        )
        assert response.status_code == 415, response.text
        error = error_of(response)
        assert error["code"] == "unsupported_content_encoding" and "gzip" in error["message"]
        plain = {**AUTH, "Content-Encoding": "identity"}
        ok = await client.post(
            "/v1/chat/completions", headers=plain, json=json.loads(gzip.decompress(body))
        )
        assert ok.status_code == 200
    assert len(fake.requests) == 1


async def test_unknown_paths_and_methods(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.get("/nothing/here")
        assert response.status_code == 404 and error_of(response)["code"] == "unknown_url"
        response = await client.get("/v1/chat/completions", headers=AUTH)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
        assert error_of(response)["code"] == "method_not_allowed"
        response = await client.post("/healthz")
        assert response.status_code == 405
        response = await client.post(
            "/v1/images/generations", headers=AUTH, json={"model": "fast", "prompt": "cat"}
        )
        assert response.status_code == 404
        assert "image generation" in error_of(response)["message"]
    assert fake.requests == []


def asgi_scope(method: str, path: str) -> dict[str, Any]:
    """An HTTP request's ASGI scope, with the team's key, ``path`` as a server decodes it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [
            (b"authorization", f"Bearer {KEY}".encode()),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }


async def asgi_request(
    app: GatewayApp, method: str, path: str, body: bytes = b""
) -> tuple[int, bytes]:
    """One request with ``path`` exactly as an ASGI server decodes it (httpx's client
    would normalise it first)."""
    out: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        out.append(message)

    await app(asgi_scope(method, path), receive, send)
    status = next(m["status"] for m in out if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in out if m["type"] == "http.response.body")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/x/../chat/completions"),
        ("POST", "/v1/./chat/completions"),
        ("POST", "/v1/chat/completions?"),  # (%3F, decoded)
        ("POST", "/v1/chat/completions#x"),  # (%23x)
        ("POST", "/v1//chat/completions"),
        ("GET", "/v1/models?"),
    ],
)
async def test_a_path_a_url_parser_would_rewrite_is_not_served(
    tmp_path: Path, method: str, path: str
) -> None:
    # Counted as one route (no model allowlist, budget or tpm for an unknown one) and
    # served as the route it normalises to, such a path would skip the key's checks.
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    forbidden = {"model": "zhipu/glm-4-plus", "messages": HELLO}
    async with gateway(settings(tmp_path), fake.transport()) as (app, _):
        status, body = await asgi_request(app, method, path, json.dumps(forbidden).encode())
    assert status == 404, body
    assert json.loads(body)["error"]["code"] == "unknown_url"
    assert fake.requests == []


async def test_answers_name_the_config_file_without_the_servers_directories(
    tmp_path: Path,
) -> None:
    """Where the server keeps its config is the operator's business, not every key
    holder's: an unknown model's 404 and /readyz name the file alone."""
    folder = tmp_path / "srv" / "secret-folder"
    path = write_gateway_toml(folder, gateway_toml(ZHIPU_KEY, KEY, key='models = ["*"]'))
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    app = create_app(path, http_client=httpx.AsyncClient(transport=fake.transport()))
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            body = {"model": "glm-4-flsh", "messages": HELLO}
            response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
            ready = await client.get("/readyz")
    finally:
        await app.shutdown()
    error = error_of(response)
    assert response.status_code == 404 and error["code"] == "model_not_found"
    assert "the config (gateway.toml)" in error["message"]
    assert ready.json()["config"] == "gateway.toml"
    for text in (response.text, ready.text):
        assert "secret-folder" not in text and str(tmp_path) not in text


async def test_health_and_readiness(tmp_path: Path) -> None:
    class Down(MemoryState):
        async def ping(self) -> bool:
            raise ConnectionError("state store down")

    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200 and ready.json()["state"] == "ok"
    async with gateway(settings(tmp_path), fake.transport(), state=Down()) as (_, client):
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["state"] == "unreachable"


async def test_a_stream_broken_upstream_ends_with_an_error_event(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).cut_stream(3, "一二三四五六七八九十")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        body = {"model": "fast", "messages": HELLO, "stream": True}
        response = seen(await client.post("/v1/chat/completions", headers=AUTH, json=body))
    events = [e for e in response.text.split("\n\n") if e]
    assert response.status_code == 200 and "[DONE]" not in response.text
    last = json.loads(events[-1][len("data: ") :])
    assert set(last) == {"error"} and last["error"]["message"]
    (entry,) = read_entries(tmp_path / "ledger.sqlite")
    assert entry.status >= 500 and entry.error_code


# --------------------------------------------------------------------------- disconnects


class HeldStream(httpx.AsyncByteStream):
    """An upstream SSE body that sends one chunk, then waits; records being closed."""

    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.release = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = {
            "id": "t1",
            "created": 1,
            "model": "glm-4-flash",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "你"}}],
        }
        yield f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()
        await self.release.wait()

    async def aclose(self) -> None:
        self.closed.set()


async def drive(
    app: GatewayApp, body: dict[str, Any], hang_up: asyncio.Event, sent: list[dict[str, Any]]
) -> None:
    """One request through the ASGI interface, whose client hangs up when told."""
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": json.dumps(body).encode(), "more_body": False}
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(asgi_scope("POST", "/v1/chat/completions"), receive, send)


@pytest.mark.parametrize("stream", [True, False])
async def test_a_client_that_hangs_up_closes_the_upstream_request(
    tmp_path: Path, stream: bool
) -> None:
    held = HeldStream()
    upstream_started = asyncio.Event()

    async def provider(request: httpx.Request) -> httpx.Response:
        upstream_started.set()
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=held)

    app = create_app(
        settings(tmp_path), http_client=httpx.AsyncClient(transport=httpx.MockTransport(provider))
    )
    hang_up = asyncio.Event()
    body = {"model": "fast", "messages": HELLO, "stream": stream}
    sent: list[dict[str, Any]] = []
    task = asyncio.ensure_future(drive(app, body, hang_up, sent))
    await asyncio.wait_for(upstream_started.wait(), 5)
    for _ in range(500):  # a stream's first event reaches the client before it hangs up
        if not stream or any(m.get("body", b"").startswith(b"data: ") for m in sent):
            break
        await asyncio.sleep(0.01)
    hang_up.set()
    await asyncio.wait_for(task, 5)
    await asyncio.wait_for(held.closed.wait(), 5)  # the provider's stream was closed
    if stream:
        assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
        assert b"\xe4\xbd\xa0" in b"".join(m.get("body", b"") for m in sent[1:])
    await app.shutdown()
    (entry,) = read_entries(tmp_path / "ledger.sqlite")
    assert (entry.status, entry.error_code) == (499, "client_disconnected")
    if stream:  # what was streamed before the hang-up is accounted (estimated)
        assert entry.provider == "zhipu" and entry.completion_tokens > 0 and entry.estimated
    else:  # the provider was sent the prompt, and bills it: estimated, as a stream's is
        assert entry.provider == "zhipu" and entry.estimated
        assert entry.prompt_tokens > 0 and entry.completion_tokens == 0


# --------------------------------------------------------------------------- config


def test_the_gateway_table_is_read_strictly(tmp_path: Path) -> None:
    good = gateway_toml(
        ZHIPU_KEY,
        KEY,
        gateway='ledger = "usage.sqlite"\nmax_body_bytes = 4096',
        key='models = ["fast"]\nrpm = 10\ntpm = 1000\nmonthly_budget_cny = 12.5',
    )
    config, gateway = load_gateway_config(write_gateway_toml(tmp_path, good))
    assert config.aliases == {"fast": ["zhipu/glm-4-flash"]}
    (key,) = gateway.keys
    assert (key.name, key.models, key.rpm, key.tpm) == ("team", ("fast",), 10, 1000)
    assert key.monthly_budget_cny == Decimal("12.5") and gateway.max_body_bytes == 4096
    assert gateway.client_write_timeout == 60  # (the default)
    assert hash_key(KEY) not in repr(gateway) and hash_key(KEY) not in repr(key)
    for mistake, said in [
        (good.replace("rpm = 10", "rmp = 10"), "unknown key 'rmp'"),
        (good.replace("ledger =", "ledgr ="), "unknown key 'ledgr'"),
        (good.replace(hash_key(KEY), "abc"), "key_sha256"),
        (good.replace("rpm = 10", "rpm = 0"), "rpm"),
        (
            good.replace("monthly_budget_cny = 12.5", 'monthly_budget_cny = "lots"'),
            "monthly_budget_cny",
        ),
        (good.split("[gateway.keys.team]")[0], "no gateway key is defined"),
        (good.replace("[models]", "[modelz]"), "modelz"),
        (good.replace('"usage.sqlite"', '"redis"'), "needs a redis:// gateway.state"),
        (good.replace("[gateway]", '[gateway]\nstate = "mysql://x"'), "gateway.state"),
        (good.replace("[gateway]", '[gateway]\nupstream = "curl"'), "gateway.upstream"),
        (
            good.replace("[gateway]", "[gateway]\nclient_write_timeout = 0"),
            "gateway.client_write_timeout: expected a positive number of seconds",
        ),
        (
            good.replace("[gateway]", "[gateway]\nclient_write_timeout = nan"),
            "gateway.client_write_timeout: expected a positive number of seconds",
        ),
        (
            good.replace("monthly_budget_cny = 12.5", "monthly_budget_cny = nan"),
            "monthly_budget_cny: expected a finite number",
        ),
        (
            good.replace("monthly_budget_cny = 12.5", "monthly_budget_cny = inf"),
            "monthly_budget_cny: expected a finite number",
        ),
    ]:
        with pytest.raises(ConfigError, match=said) as raised:
            load_gateway_config(write_gateway_toml(tmp_path, mistake))
        assert "gateway.toml" in str(raised.value)


@pytest.mark.parametrize("upstream", ["aiohttp", "httpx"])
async def test_the_upstream_client_is_the_configured_one_and_closed_on_shutdown(
    tmp_path: Path, upstream: str
) -> None:
    """Provider calls go through httpx by default, or aiohttp's pool with ``upstream =
    "aiohttp"``; either way shutdown closes the client the gateway made."""
    config = settings(tmp_path)
    config["gateway"]["upstream"] = upstream
    app = create_app(config)
    http = app.engines.engine.http
    transport = type(http._transport).__module__  # (the default transport of its client)
    assert transport.startswith("httpx_aiohttp" if upstream == "aiohttp" else "httpx")
    await app.startup()
    await app.shutdown()
    assert http.is_closed


def test_keys_new_prints_a_key_once_and_config_lines_with_its_hash(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "llm_bridge.cli",
            "keys",
            "new",
            "ci-bot",
            "--models",
            "fast",
            "glm-*",
            "--rpm",
            "30",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    key = next(line.strip() for line in out.splitlines() if line.strip().startswith("sk-lb-"))
    SUITE_SECRETS.add(key)
    config_text = out[out.index("[gateway.keys.ci-bot]") :]
    assert key not in config_text and out.count(key) == 1
    path = write_gateway_toml(
        tmp_path, f'[providers.zhipu]\napi_key = "{ZHIPU_KEY}"\n' + "[gateway]\n" + config_text
    )
    _, gateway = load_gateway_config(path)
    (spec,) = gateway.keys
    assert spec.name == "ci-bot" and spec.models == ("fast", "glm-*") and spec.rpm == 30
    assert spec.digest.hex() == hash_key(key)


def test_importing_llm_bridge_loads_no_gateway_or_server() -> None:
    def loaded(code: str) -> set[str]:
        out = subprocess.run(
            [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return set(out.stdout.split())

    modules = loaded("import llm_bridge\nfrom llm_bridge import OpenAI, http_client")
    assert not {m for m in modules if m.startswith(("llm_bridge.gateway", "llm_bridge.cli"))}
    assert not {"uvicorn", "starlette", "redis"} & modules
    # The gateway itself is plain ASGI: no server or framework until one runs it.
    modules = loaded("import llm_bridge.gateway")
    assert not {"uvicorn", "starlette"} & modules


async def test_the_config_on_usage_callback_still_sees_every_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "usage_hook_for_gateway.py"
    module.write_text("SEEN = []\ndef hook(record):\n    SEEN.append(record)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    config = settings(tmp_path)
    config["on_usage"] = "usage_hook_for_gateway:hook"
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(config, fake.transport()) as (_, client):
        await client.post(
            "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": HELLO}
        )
    import usage_hook_for_gateway  # type: ignore[import-not-found]

    assert len(usage_hook_for_gateway.SEEN) == 1
