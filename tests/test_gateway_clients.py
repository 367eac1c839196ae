"""What the gateway's clients other than Python see: browser pages (CORS), a request id on
every answer, a provider refusing the gateway's own key, the model menu, and stored
Responses that stay with the key that made them. Through the ASGI app in process, against
the Zhipu fake (helpers from test_gateway_app)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from test_gateway_app import (
    AUTH,
    HELLO,
    OTHER_KEY,
    ZHIPU_KEY,
    error_of,
    gateway,
    seen,
    settings,
)

from llm_bridge import ConfigError
from llm_bridge.gateway import load_gateway_config
from llm_bridge.testing import FakeZhipu

OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}
PAGE = "https://chat.example.com"


def with_gateway(tmp_path: Path, **table: Any) -> dict[str, Any]:
    cfg = settings(tmp_path)
    cfg["gateway"].update(table)
    return cfg


async def chat(client: httpx.AsyncClient, **headers: str) -> httpx.Response:
    body = {"model": "fast", "messages": HELLO}
    return seen(await client.post("/v1/chat/completions", headers={**AUTH, **headers}, json=body))


# --------------------------------------------------------------------------- CORS


async def test_a_browser_preflight_is_answered_without_a_key(tmp_path: Path) -> None:
    async with gateway(settings(tmp_path), FakeZhipu(api_key=ZHIPU_KEY).transport()) as (_, c):
        asked = "authorization, content-type, x-stainless-os"
        preflight = await c.options(
            "/v1/chat/completions",
            headers={
                "Origin": PAGE,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": asked,
            },
        )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert preflight.headers["access-control-allow-headers"] == asked
    assert int(preflight.headers["access-control-max-age"]) > 0


async def test_answers_to_a_page_say_it_may_read_them(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("你好！").reply("再见")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        from_page = await chat(client, Origin=PAGE)
        refused = seen(await client.get("/v1/models", headers={"Origin": PAGE}))
        from_script = await chat(client)
    assert from_page.status_code == 200
    assert from_page.headers["access-control-allow-origin"] == "*"
    assert "x-request-id" in from_page.headers["access-control-expose-headers"]
    # An error is readable too (the page shows why), and a script gets no CORS headers.
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-origin" not in from_script.headers


async def test_cors_origins_names_the_pages_allowed(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("一").reply("二")
    cfg = with_gateway(tmp_path, cors_origins=[PAGE])
    async with gateway(cfg, fake.transport()) as (_, client):
        allowed = await chat(client, Origin=PAGE)
        other = await chat(client, Origin="https://evil.example.net")
    assert allowed.headers["access-control-allow-origin"] == PAGE
    assert allowed.headers["vary"] == "origin"
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers

    async with gateway(with_gateway(tmp_path, cors_origins=[]), fake.transport()) as (_, client):
        preflight = await client.options(
            "/v1/chat/completions",
            headers={"Origin": PAGE, "Access-Control-Request-Method": "POST"},
        )
    assert preflight.status_code == 204 and "access-control-allow-origin" not in preflight.headers


@pytest.mark.parametrize("origins", ["chat.example.com", ["https://chat.example.com/app"], [3]])
def test_a_malformed_cors_origin_is_named(tmp_path: Path, origins: Any) -> None:
    with pytest.raises(ConfigError, match=r"gateway\.cors_origins: expected"):
        load_gateway_config(with_gateway(tmp_path, cors_origins=origins))


# --------------------------------------------------------------------------- request ids


async def test_every_api_answer_carries_a_request_id(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("你好！").reply("流", chunk_size=1)
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        answers = {
            "chat": await chat(client),
            "stream": seen(
                await client.post(
                    "/v1/chat/completions",
                    headers=AUTH,
                    json={"model": "fast", "messages": HELLO, "stream": True},
                )
            ),
            "models": seen(await client.get("/v1/models", headers=AUTH)),
            "no key": seen(await client.get("/v1/models")),
            "no such API": seen(await client.get("/v1/nothing-here", headers=AUTH)),
            "bad JSON": seen(await client.post("/v1/chat/completions", headers=AUTH, content=b"{")),
        }
    for name, answer in answers.items():
        gateway_id = answer.headers["x-llm-bridge-gateway-request-id"]
        assert answer.headers.get("x-request-id"), name
        assert len(answer.headers.get_list("x-request-id")) == 1, name
        if name not in ("chat", "stream"):  # the provider's own id, where it gave one
            assert answer.headers["x-request-id"] == gateway_id, name


# --------------------------------------------------------------------------- provider refusal


async def test_a_provider_refusing_the_gateways_key_is_not_the_clients_401(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeZhipu(api_key="other.zhipusecretthatdiffers0123")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        answer = await chat(client)
    error = error_of(answer)
    assert answer.status_code == 502
    assert error["code"] == "provider_authentication_failed"
    assert error["provider"] == "zhipu" and "[providers.zhipu]" in error["message"]
    assert "bigmodel.cn" not in answer.text  # the provider's API root stays in the log
    assert any("refused the gateway's credentials" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- the model menu


async def test_the_model_list_leaves_out_providers_without_credentials(tmp_path: Path) -> None:
    cfg = settings(tmp_path, models=["*"])
    async with gateway(cfg, FakeZhipu(api_key=ZHIPU_KEY).transport()) as (_, c):
        listed = seen(await c.get("/v1/models", headers=OTHER)).json()["data"]
        ernie = await c.get("/v1/models/ernie-4.5-turbo-128k", headers=AUTH)
        glm = seen(await c.get("/v1/models/glm-4-flash", headers=AUTH))
    owners = {entry["owned_by"] for entry in listed}
    # (`other` may use zhipu/*: what routes there, aliases included)
    assert owners == {"zhipu", "llm-bridge-alias"}, owners
    assert glm.status_code == 200
    assert ernie.status_code == 404 and error_of(ernie)["code"] == "model_not_found"
    assert "qianfan" in error_of(ernie)["message"]


async def test_a_provider_without_credentials_is_the_operators_error(tmp_path: Path) -> None:
    cfg = settings(tmp_path)
    cfg["models"]["ernie"] = "qianfan/ernie-4.5-turbo-128k"
    cfg["gateway"]["keys"]["team"]["models"].append("ernie")
    async with gateway(cfg, FakeZhipu(api_key=ZHIPU_KEY).transport()) as (_, client):
        body = {"model": "ernie", "messages": HELLO}
        answer = seen(await client.post("/v1/chat/completions", headers=AUTH, json=body))
    assert answer.status_code == 500
    assert error_of(answer)["type"] == "configuration_error"


# --------------------------------------------------------------------------- stored Responses


async def test_stored_responses_belong_to_the_key_that_made_them(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("西湖在杭州。").reply("很美。")
    async with gateway(settings(tmp_path), fake.transport()) as (_, client):
        made = seen(
            await client.post(
                "/v1/responses", headers=AUTH, json={"model": "fast", "input": "西湖在哪里？"}
            )
        )
        rid = made.json()["id"]
        path = f"/v1/responses/{rid}"
        for attempt in (
            await client.get(path, headers=OTHER),
            await client.get(f"{path}/input_items", headers=OTHER),
            await client.delete(path, headers=OTHER),
        ):
            assert attempt.status_code == 404, attempt.text
            assert error_of(attempt)["code"] == "response_not_found"
        continued = await client.post(
            "/v1/responses",
            headers=OTHER,
            json={"model": "fast", "input": "它怎么样？", "previous_response_id": rid},
        )
        assert error_of(continued)["code"] == "previous_response_not_found"
        assert len(fake.requests) == 1  # nothing of team's conversation reached the provider
        still = seen(await client.get(path, headers=AUTH))
        assert still.status_code == 200 and still.json()["id"] == rid
        ours = await client.post(
            "/v1/responses",
            headers=AUTH,
            json={"model": "fast", "input": "它怎么样？", "previous_response_id": rid},
        )
        assert seen(ours).status_code == 200


async def test_a_request_without_a_model_is_named_in_openais_words(tmp_path: Path) -> None:
    async with gateway(settings(tmp_path), FakeZhipu(api_key=ZHIPU_KEY).transport()) as (_, c):
        answer = await c.post("/v1/chat/completions", headers=AUTH, json={"messages": HELLO})
    assert answer.status_code == 400
    error = error_of(answer)
    assert error["message"] == "Missing required parameter: 'model'." and error["param"] == "model"
