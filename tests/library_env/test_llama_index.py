"""llama-index's ``OpenAILike`` through both front doors.

``OpenAILike`` is llama-index's LLM for any OpenAI-compatible endpoint. Through
``bridge_client`` it is handed llm-bridge clients (``openai_client``/``async_openai_client``);
through ``http_client`` it builds its own openai clients on llm-bridge's HTTP clients.

llama-index retries on its own (tenacity, around each call) on openai's ``RateLimitError``,
``InternalServerError`` and connection errors, up to ``max_retries`` attempts; under it,
each attempt is one call through llm-bridge with llm-bridge's own ``max_retries``.
"""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
import tenacity
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike
from test_libraries import (
    KEY,
    MODEL,
    ZHIPU_ROOT,
    async_client,
    bodies,
    by_door,
    sync_client,
    user_says,
)

import llm_bridge
from llm_bridge.testing import FakeZhipu

LLAMA_RETRIES = 3


def llama_llm(door: str, fake: FakeZhipu, *, max_retries: int = 0, bridge_retries: int = 2) -> Any:
    """An ``OpenAILike`` on ``fake`` through ``door``: ``max_retries`` is llama-index's,
    ``bridge_retries`` llm-bridge's."""
    common: dict[str, Any] = {
        "model": MODEL,
        "api_key": KEY,
        "api_base": ZHIPU_ROOT,
        "is_chat_model": True,
        "context_window": 128_000,
        "max_retries": max_retries,
    }
    if door == "bridge_client":
        return OpenAILike(
            **common,
            openai_client=sync_client(door, fake).with_options(max_retries=bridge_retries),
            async_openai_client=async_client(door, fake).with_options(max_retries=bridge_retries),
        )
    return OpenAILike(
        **common,
        http_client=llm_bridge.http_client(
            http_client=httpx.Client(transport=fake.transport()), max_retries=bridge_retries
        ),
        async_http_client=llm_bridge.async_http_client(
            http_client=httpx.AsyncClient(transport=fake.transport()), max_retries=bridge_retries
        ),
    )


@pytest.fixture
def no_llama_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama-index waits 1-20 s (random exponential) between its attempts; not here."""
    from llama_index.llms.openai import utils

    monkeypatch.setattr(utils, "wait_random_exponential", lambda **_: tenacity.wait_none())


@by_door
def test_llama_index_chat(door: str, fake: FakeZhipu) -> None:
    fake.reply("你好！我是智谱的模型。")
    answer = llama_llm(door, fake).chat(
        [
            ChatMessage(role="system", content="回答要简短。"),
            ChatMessage(role="user", content="你好"),
        ]
    )

    assert answer.message.content == "你好！我是智谱的模型。"
    assert answer.raw is not None and answer.raw.usage.total_tokens > 0
    (body,) = bodies(fake)
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": "回答要简短。"},
        {"role": "user", "content": "你好"},
    ]
    assert body["temperature"] == 0.1  # llama-index's default, inside GLM's range
    assert not body.get("stream")


@by_door
def test_llama_index_complete(door: str, fake: FakeZhipu) -> None:
    fake.reply("床前明月光")
    answer = llama_llm(door, fake).complete("写一句诗")

    assert answer.text == "床前明月光"
    (body,) = bodies(fake)
    assert body["messages"] == user_says("写一句诗")  # a chat model: complete() is a chat


@by_door
async def test_llama_index_async_stream_chat(door: str, fake: FakeZhipu) -> None:
    fake.reply("异步流式回答", chunk_size=2)
    stream = await llama_llm(door, fake).astream_chat([ChatMessage(role="user", content="讲")])
    deltas = [chunk.delta async for chunk in stream]

    assert "".join(deltas) == "异步流式回答"
    (body,) = bodies(fake)
    assert body["stream"] is True
    assert body["messages"] == user_says("讲")


@pytest.mark.usefixtures("no_llama_wait")
@by_door
def test_llama_index_retries_a_retryable_provider_error(
    door: str, fake: FakeZhipu, no_retry_sleep: list[float]
) -> None:
    fake.fail("rate_limit").fail("server_error").reply("第三次成功")
    llm = llama_llm(door, fake, max_retries=LLAMA_RETRIES, bridge_retries=0)

    answer = llm.chat([ChatMessage(role="user", content="你好")])

    assert answer.message.content == "第三次成功"
    assert len(bodies(fake)) == LLAMA_RETRIES  # two retries by llama-index, then the answer
    assert no_retry_sleep == []  # llm-bridge itself made one attempt per call, as configured


@pytest.mark.usefixtures("no_llama_wait")
@pytest.mark.parametrize("bridge_retries", [0, 1])
@by_door
def test_llama_index_gives_up_after_its_attempts(
    door: str, bridge_retries: int, fake: FakeZhipu
) -> None:
    attempts = LLAMA_RETRIES * (bridge_retries + 1)  # each llama-index attempt is a full call
    for _ in range(attempts + 1):
        fake.fail("server_error")
    llm = llama_llm(door, fake, max_retries=LLAMA_RETRIES, bridge_retries=bridge_retries)

    with pytest.raises(openai.InternalServerError):
        llm.chat([ChatMessage(role="user", content="你好")])

    assert len(fake.requests) == attempts  # the spare failure was never asked for
