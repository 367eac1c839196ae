"""Gateway fixes from the session-19 review: a key's limits and its stored conversations
hold whatever extras or names a request carries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import SUITE_SECRETS
from test_gateway_app import AUTH, HELLO, OTHER_KEY, error_of, gateway, settings

from llm_bridge.gateway import hash_key
from llm_bridge.testing import FakeDashScopeCompatible, FakeZhipu

DASHSCOPE_KEY = "sk-dashscope-gatewaytest-0123456789"
SUITE_SECRETS.add(DASHSCOPE_KEY)
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}


async def test_a_responses_request_may_not_set_chats_output_limits_as_extras(
    tmp_path: Path,
) -> None:
    """``max_completion_tokens`` is no Responses parameter: passed on as an extra it reached
    the provider while the budget was estimated at its value (1 token) and the provider
    answered up to ``max_output_tokens``."""
    fake = FakeZhipu(api_key="gwtest.zhipusecret0123456789abcdef")
    config = settings(tmp_path, monthly_budget_cny=5)
    async with gateway(config, fake.transport()) as (_, client):
        for extra in ("max_completion_tokens", "max_tokens"):
            body = {"model": "priced", "input": "hi", "max_output_tokens": 4000, extra: 1}
            response = await client.post("/v1/responses", headers=AUTH, json=body)
            assert response.status_code == 400, response.text
            assert error_of(response)["param"] == extra
    assert fake.requests == []


async def test_the_estimate_takes_the_largest_output_limit_given(tmp_path: Path) -> None:
    """Given two limits, the budget's estimate is the larger: which one a provider honours
    is the adapter's business (at 0.01 CNY a token, 4000 tokens are past a 5 CNY budget)."""
    fake = FakeZhipu(api_key="gwtest.zhipusecret0123456789abcdef")
    config = settings(tmp_path, monthly_budget_cny=5)
    async with gateway(config, fake.transport()) as (_, client):
        body = {"model": "priced", "messages": HELLO, "max_completion_tokens": 1}
        response = await client.post(
            "/v1/chat/completions", headers=AUTH, json={**body, "max_tokens": 4000}
        )
        assert response.status_code == 429
        assert error_of(response)["code"] == "insufficient_quota"
    assert fake.requests == []


async def test_a_model_name_past_256_characters_is_refused_before_it_is_kept(
    tmp_path: Path,
) -> None:
    """A name was resolved, cached, written to the ledger and quoted whole in the 403
    before the key's permission and rate limit applied: megabyte names from a key that
    may use one model grew the worker's memory and the ledger by their size."""
    fake = FakeZhipu(api_key="gwtest.zhipusecret0123456789abcdef")
    async with gateway(settings(tmp_path), fake.transport()) as (app, client):
        name = "zhipu/" + "x" * 300
        response = await client.post(
            "/v1/chat/completions", headers=AUTH, json={"model": name, "messages": HELLO}
        )
        assert response.status_code == 400
        error = error_of(response)
        assert error["param"] == "model" and "256" in error["message"]
        assert len(response.content) < 1000
        assert name not in app.engines.engine._routes
        ok = await client.post(
            "/v1/chat/completions",
            headers=AUTH,
            json={"model": "zhipu/" + "x" * 250, "messages": HELLO},
        )
        assert ok.status_code == 403  # (a name of allowed length goes on to the key's check)


def _dashscope_settings(tmp_path: Path) -> dict[str, Any]:
    config = settings(tmp_path)
    config["providers"] = {"dashscope": {"api_key": DASHSCOPE_KEY}}
    config["models"], config["prices"] = {}, {}
    keys = config["gateway"]["keys"]
    keys["team"]["models"] = ["qwen-*"]
    keys["other"] = {"key_sha256": hash_key(OTHER_KEY), "models": ["qwen-*"]}
    return config


async def test_a_key_cannot_continue_another_keys_native_conversation(tmp_path: Path) -> None:
    """On a model DashScope serves natively an id unknown to the store was passed on, and
    DashScope, which holds every key's conversations under the gateway's account,
    continued another key's conversation."""
    fake = FakeDashScopeCompatible(DASHSCOPE_KEY).reply("秘密是 42").reply("接着说")
    async with gateway(_dashscope_settings(tmp_path), fake.transport()) as (_, client):
        first = await client.post(
            "/v1/responses", headers=AUTH, json={"model": "qwen-plus", "input": "秘密是 42"}
        )
        assert first.status_code == 200, first.text
        continued = {"model": "qwen-plus", "input": "秘密是什么？"}
        continued["previous_response_id"] = first.json()["id"]
        stolen = await client.post("/v1/responses", headers=OTHER, json=continued)
        assert stolen.status_code == 400
        error = error_of(stolen)
        assert (error["code"], error["param"]) == (
            "previous_response_not_found",
            "previous_response_id",
        )
        assert len(fake.requests) == 1
        own = await client.post("/v1/responses", headers=AUTH, json=continued)
        assert own.status_code == 200, own.text
        sent = json.loads(fake.requests[-1].content)
        assert sent.get("previous_response_id") == first.json()["id"]


async def test_an_unknown_previous_response_is_refused_on_a_native_model(tmp_path: Path) -> None:
    fake = FakeDashScopeCompatible(DASHSCOPE_KEY)
    async with gateway(_dashscope_settings(tmp_path), fake.transport()) as (_, client):
        body = {"model": "qwen-plus", "input": "hi", "previous_response_id": "resp_unknown"}
        response = await client.post("/v1/responses", headers=AUTH, json=body)
        assert response.status_code == 400
        assert error_of(response)["code"] == "previous_response_not_found"
    assert fake.requests == []


def test_a_redis_password_in_the_query_or_with_an_at_sign_is_hidden(tmp_path: Path) -> None:
    """``doctor`` and the config's repr showed ``?password=…`` (a form redis-py takes) in
    full, and the part of a password after an ``@``."""
    from llm_bridge.gateway import load_gateway_config

    for state, secret in (
        ("redis://10.0.0.5:6379/0?password=S3cretRedisPass", "S3cretRedisPass"),
        ("redis://user:p@ssword-tail@10.0.0.5:6379/0", "ssword-tail"),
    ):
        config = settings(tmp_path)
        config["gateway"]["state"] = state
        _, gateway_config = load_gateway_config(config)
        shown = repr(gateway_config)
        assert secret not in shown and "10.0.0.5:6379/0" in shown


async def test_a_model_name_past_256_characters_in_the_path_is_not_kept(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key="gwtest.zhipusecret0123456789abcdef")
    async with gateway(settings(tmp_path), fake.transport()) as (app, client):
        name = "zhipu/" + "x" * 8000
        response = await client.get(f"/v1/models/{name}", headers=AUTH)
        assert response.status_code == 404 and len(response.content) < 1000
        assert error_of(response)["code"] == "model_not_found"
        assert name not in app.engines.engine._routes
    from llm_bridge.gateway import read_entries

    (entry,) = read_entries(tmp_path / "ledger.sqlite")
    assert len(entry.model or "") <= 256
