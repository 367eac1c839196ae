"""openai-agents on its default model, the Responses API, through llm-bridge (issue 15).

``Agent(model="glm-4-flash")`` with an ``OpenAIProvider`` built on our client resolves to
agents' ``OpenAIResponsesModel``, which calls ``client.responses.create`` (streamed for
``Runner.run_streamed``). llm-bridge serves it from a chat provider: the offline FakeZhipu
asks for the function tool, the tool runs in the agent loop, its result goes back, and the
final answer comes out. Both front doors: ``llm_bridge.AsyncOpenAI``, and a plain
``openai.AsyncOpenAI`` on ``llm_bridge.async_http_client()``. Tracing is off (it would
export over the network).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from agents import (
    Agent,
    RunConfig,
    Runner,
    function_tool,
    set_default_openai_client,
    set_tracing_disabled,
)
from agents.models import _openai_shared
from agents.models.openai_provider import OpenAIProvider
from agents.models.openai_responses import OpenAIResponsesModel
from helpers import bodies

import llm_bridge
from llm_bridge.testing import FakeZhipu

KEY = "id.secret"
ZHIPU_ROOT = "https://open.bigmodel.cn/api/paas/v4"
MODEL = "glm-4-flash"
INSTRUCTIONS = "你是天气助手，先查天气再回答。"
QUESTION = "北京今天天气怎么样？"
FORECAST = "北京: 晴, 25°C"
ANSWER = "北京今天晴，25度。"
DOORS = ("llm_bridge", "http_client")

ran: list[str] = []  # the cities the tool was called for


@function_tool
def get_weather(city: str) -> str:
    """今天某个城市的天气。"""
    ran.append(city)
    return f"{city}: 晴, 25°C"


@pytest.fixture(autouse=True)
def no_tracing() -> Iterator[None]:
    set_tracing_disabled(True)
    ran.clear()
    yield
    ran.clear()


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest) -> str:
    return request.param


def async_client(fake: FakeZhipu, door: str) -> openai.AsyncOpenAI:
    upstream = httpx.AsyncClient(transport=fake.transport())
    if door == "llm_bridge":
        return llm_bridge.AsyncOpenAI(provider="zhipu", api_key=KEY, http_client=upstream)
    bridge = llm_bridge.async_http_client(http_client=upstream)
    return openai.AsyncOpenAI(api_key=KEY, base_url=ZHIPU_ROOT, http_client=bridge)


def weather_agent() -> Agent[Any]:
    return Agent(name="天气", instructions=INSTRUCTIONS, model=MODEL, tools=[get_weather])


def run_config(client: openai.AsyncOpenAI) -> RunConfig:
    return RunConfig(model_provider=OpenAIProvider(openai_client=client))


def check_tool_round_trip(fake: FakeZhipu, *, streamed: bool) -> None:
    """Two chat requests: the question with the tool; then the call and its result."""
    first, second = bodies(fake)
    for body in (first, second):
        assert body["model"] == MODEL
        (tool,) = body["tools"]
        assert tool["type"] == "function" and tool["function"]["name"] == "get_weather"
        assert tool["function"]["parameters"]["properties"]["city"]["type"] == "string"
        assert bool(body.get("stream")) is streamed
    assert first["messages"] == [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": QUESTION},
    ]
    system, user, assistant, tool_result = second["messages"]
    assert (system, user) == (first["messages"][0], first["messages"][1])
    assert assistant["role"] == "assistant"
    (call,) = assistant["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "北京"}
    assert tool_result == {"role": "tool", "tool_call_id": call["id"], "content": FORECAST}


def test_the_default_model_is_the_responses_model() -> None:
    fake = FakeZhipu(api_key=KEY)
    provider = OpenAIProvider(openai_client=async_client(fake, "llm_bridge"))
    assert isinstance(provider.get_model(MODEL), OpenAIResponsesModel)


async def test_an_agent_calls_its_tool_and_answers(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).tool_call("get_weather", {"city": "北京"}).reply(ANSWER)
    client = async_client(fake, door)

    result = await Runner.run(weather_agent(), QUESTION, run_config=run_config(client))

    assert result.final_output == ANSWER
    assert ran == ["北京"]
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert [type(r).__name__ for r in result.raw_responses] == ["ModelResponse"] * 2
    assert result.raw_responses[-1].response_id.startswith("resp_")
    check_tool_round_trip(fake, streamed=False)


async def test_a_streamed_agent_run(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).tool_call("get_weather", {"city": "北京"})
    fake.reply(ANSWER, chunk_size=2)
    client = async_client(fake, door)

    result = Runner.run_streamed(weather_agent(), QUESTION, run_config=run_config(client))
    raw: list[str] = []
    items: list[str] = []
    async for event in result.stream_events():
        if event.type == "raw_response_event":
            raw.append(event.data.type)
        elif event.type == "run_item_stream_event":
            items.append(event.name)

    assert result.final_output == ANSWER
    assert ran == ["北京"]
    assert items == ["tool_called", "tool_output", "message_output_created"]
    assert raw.count("response.created") == raw.count("response.completed") == 2
    assert "response.function_call_arguments.done" in raw
    assert raw.count("response.output_text.delta") > 1
    check_tool_round_trip(fake, streamed=True)


async def test_set_default_openai_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The global way: ``set_default_openai_client(client)``, no RunConfig."""
    monkeypatch.setattr(_openai_shared, "_default_openai_client", None)
    monkeypatch.setattr(_openai_shared, "_default_openai_key", None)
    monkeypatch.setattr(_openai_shared, "_use_responses_by_default", True)
    monkeypatch.setattr(_openai_shared, "_default_openai_responses_transport", "http")
    fake = FakeZhipu(api_key=KEY).tool_call("get_weather", {"city": "北京"}).reply(ANSWER)

    set_default_openai_client(async_client(fake, "http_client"), use_for_tracing=False)
    result = await Runner.run(weather_agent(), QUESTION)

    assert result.final_output == ANSWER and ran == ["北京"]
    check_tool_round_trip(fake, streamed=False)
