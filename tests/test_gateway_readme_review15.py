"""The gateway's answers that a new user following the README found misleading."""

from __future__ import annotations

from pathlib import Path

from test_gateway_app import AUTH, HELLO, ZHIPU_KEY, error_of, gateway, settings

from llm_bridge.testing import FakeZhipu


async def test_a_request_dearer_than_what_is_left_is_told_so_not_that_the_budget_is_used(
    tmp_path: Path,
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    async with gateway(settings(tmp_path, monthly_budget_cny=0.0001), fake.transport()) as (
        _,
        client,
    ):
        body = {"model": "priced", "messages": HELLO}  # no max_tokens: the whole output
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    assert response.status_code == 429
    error = error_of(response)
    assert error["code"] == "insufficient_quota"
    assert "has used its monthly budget" not in error["message"]
    assert "more than what is left" in error["message"] and "max_tokens" in error["message"]
    assert fake.requests == []


async def test_a_structured_answer_that_never_fits_its_schema_is_a_502_saying_so(
    tmp_path: Path,
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("不是 JSON").reply("还不是 JSON")
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    body = {
        "model": "fast",
        "messages": HELLO,
        "response_format": {"type": "json_schema", "json_schema": {"name": "c", "schema": schema}},
    }
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    assert response.status_code == 502
    assert error_of(response)["code"] == "structured_output_invalid"
    assert response.headers["x-should-retry"] == "false"
    assert len(fake.requests) == 2  # the answer, and the one re-ask
