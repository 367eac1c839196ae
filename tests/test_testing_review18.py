"""`llm_bridge.testing` as a user's test suite meets it: scripts refused when they are
written wrong, a fake's own failure said rather than hidden, what is left of a script
inspectable, and Qianfan's IAM token endpoint reachable through `serve`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import llm_bridge
from llm_bridge.testing import FakeQianfanV2, FakeZhipu, Reply, ToolCallSpec, serve

HELLO = [{"role": "user", "content": "你好"}]


def test_a_script_of_the_wrong_kind_is_refused_when_written() -> None:
    """``then("你好")`` or a tuple for a tool call failed only when a request came: as an
    AttributeError through ``transport()``, a dropped connection through ``serve()``."""
    with pytest.raises(TypeError, match="expected one of Reply"):
        FakeZhipu().then("你好")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="ToolCallSpec"):
        FakeZhipu().reply(tool_calls=[("f", {"a": 1})])  # type: ignore[list-item]
    FakeZhipu().reply(tool_calls=[ToolCallSpec("f", {"a": 1})])  # (the right form)


def test_what_is_left_of_a_script_can_be_seen() -> None:
    fake = FakeZhipu(api_key="id.secret").fail("rate_limit").reply("好")
    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key="id.secret",
        max_retries=0,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with pytest.raises(llm_bridge.RateLimitError):
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert [type(outcome) for outcome in fake.pending] == [Reply]
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert fake.pending == []


def test_last_json_of_a_request_without_a_body_says_so() -> None:
    fake = FakeZhipu(api_key="id.secret")
    fake.handler(httpx.Request("GET", fake.base_url + "/models"))
    with pytest.raises(LookupError, match=r"GET .*/models\) has no JSON body"):
        _ = fake.last_json


def test_a_fake_that_raises_is_a_500_naming_it_not_a_dropped_connection() -> None:
    """``serve()`` closed the connection without a word, as ``Fault.reset_before`` does:
    a retry test could pass on a broken script."""

    class Broken(FakeZhipu):
        def handler(self, request: httpx.Request) -> httpx.Response:
            raise KeyError("no such scripted turn")

    with serve(Broken(api_key="id.secret")) as server:
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key="id.secret", base_url=server.url + "/api/paas/v4",
            max_retries=0,
        )  # fmt: skip
        with pytest.raises(llm_bridge.InternalServerError, match="the fake raised KeyError"):
            client.chat.completions.create(model="glm-4-flash", messages=HELLO)
        assert [type(error) for error in server.errors] == [KeyError]


def test_qianfans_iam_token_endpoint_answers_through_serve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every request went to the chat host, where the IAM path is a 404, and the signed
    ``Host`` was replaced: IAM keys could not be tested over a socket."""
    access, secret = "ALTAKq7Hn2mVx9LpR4tWc8Ye", "5f0c7a9e1b2d4c6e8f0a1b3c5d7e9f1a"
    fake = FakeQianfanV2(access_key=access, secret_key=secret)
    with serve(fake) as server:
        options: dict[str, Any] = {
            "providers": {
                "qianfan": {
                    "base_url": server.url + "/v2",
                    "iam_token_url": server.url + "/v1/BCE-BEARER/token",
                }
            }
        }
        client = llm_bridge.OpenAI(
            provider="qianfan", api_key=access, secret_key=secret, config=options
        )
        answer = client.chat.completions.create(model="ernie-4.5-turbo-128k", messages=HELLO)
    assert answer.choices[0].message.content
    assert fake.token_requests == 1
