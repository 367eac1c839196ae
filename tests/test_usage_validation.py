"""Usage and answers taken with care (issue 19): implausible token counts are replaced by a
count made here (marked estimated, with a warning), and an answer holding nothing (no
text, no tool call, no finish reason) is an `APIError`, not an empty success."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest

import llm_bridge
from llm_bridge.testing import FakeDashScope, FakeQianfan, FakeZhipu

HELLO: Any = [{"role": "user", "content": "你好"}]
ZHIPU_KEY = "usage.secret"


def zhipu_answer(usage: dict[str, Any]) -> str:
    return json.dumps(
        {
            "id": "z-1",
            "created": 1,
            "model": "glm-4-flash",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": "你好！"},
                }
            ],
            "usage": usage,
        }
    )


@pytest.mark.parametrize(
    "usage",
    [
        {"prompt_tokens": -1_000_000, "completion_tokens": 3, "total_tokens": -999_997},
        {"prompt_tokens": 10**30, "completion_tokens": 3, "total_tokens": 10**30 + 3},
        {"prompt_tokens": 5, "completion_tokens": -2, "total_tokens": 3},
    ],
)
def test_implausible_usage_is_counted_here_instead(
    usage: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).raw(
        200, zhipu_answer(usage), {"content-type": "application/json"}
    )
    records: list[Any] = []
    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key=ZHIPU_KEY,
        on_usage=records.append,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with caplog.at_level(logging.WARNING, logger="llm_bridge"):
        answer = client.chat.completions.create(model="glm-4-plus", messages=HELLO)
    assert answer.usage is not None and answer.usage.estimated  # type: ignore[attr-defined]
    assert 0 < answer.usage.prompt_tokens < 100 and answer.usage.completion_tokens > 0
    (record,) = records
    assert record.estimated and record.cost_cny is not None and 0 < record.cost_cny < 1
    assert any("implausible usage" in r.getMessage() for r in caplog.records)


def test_plausible_usage_is_kept_as_reported() -> None:
    usage = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    fake = FakeZhipu(api_key=ZHIPU_KEY).raw(
        200, zhipu_answer(usage), {"content-type": "application/json"}
    )
    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key=ZHIPU_KEY,
        http_client=httpx.Client(transport=fake.transport()),
    )
    answer = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert answer.usage is not None and not answer.usage.estimated  # type: ignore[attr-defined]
    assert answer.usage.total_tokens == 10


def test_an_empty_dashscope_choice_is_an_error_not_an_empty_answer() -> None:
    body = json.dumps({"output": {"choices": [{}]}, "request_id": "r-1"})
    fake = FakeDashScope(api_key="sk-empty").raw(200, body, {"content-type": "application/json"})
    client = llm_bridge.OpenAI(
        provider="dashscope",
        api_key="sk-empty",
        config={"providers": {"dashscope": {"api": "native"}}},
        max_retries=0,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with pytest.raises(llm_bridge.APIError, match="no message"):
        client.chat.completions.create(model="qwen-plus", messages=HELLO)


def test_a_null_qianfan_result_is_an_error_not_an_empty_answer() -> None:
    fake = FakeQianfan(api_key="qfAppKeyEmpty", secret_key="qfAppSecretEmpty").raw(
        200, json.dumps({"id": "as-1", "result": None}), {"content-type": "application/json"}
    )
    client = llm_bridge.OpenAI(
        provider="qianfan",
        api_key="qfAppKeyEmpty",
        secret_key="qfAppSecretEmpty",
        config={"providers": {"qianfan": {"api": "v1"}}},
        max_retries=0,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with pytest.raises(llm_bridge.APIError):
        client.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
