"""Real libraries built on the openai client work through llm-bridge, offline.

langchain-openai (``ChatOpenAI``), openai-agents (``Agent`` + ``Runner``) and pydantic-ai
(``Agent`` with a typed output) are driven against the fake Zhipu provider through both
front doors:

- ``bridge_client``: an ``llm_bridge.OpenAI`` / ``AsyncOpenAI`` instance is the library's
  openai client;
- ``http_client``: a plain ``openai`` client (or the library's own) pointed at Zhipu's real
  API root, with ``http_client=llm_bridge.http_client(...)``.

Each test asserts both what the provider received on its native wire (messages, tools,
tool results) and what the library handed back (text, tool calls, parsed models).
Nothing touches the network: the upstream ``httpx`` client's transport is the fake.
"""

from __future__ import annotations

import json
from typing import Any

import helpers
import httpx
import openai
import pytest
from pydantic import BaseModel, Field

import llm_bridge
from llm_bridge.testing import FakeZhipu

KEY = "id.secret"
ZHIPU_ROOT = "https://open.bigmodel.cn/api/paas/v4"
MODEL = "glm-4-flash"
DOORS = ("bridge_client", "http_client")

by_door = pytest.mark.parametrize("door", DOORS)


class City(BaseModel):
    """A city and the country it is in."""

    name: str = Field(description="the city's name")
    country: str


HANGZHOU = City(name="杭州", country="中国")


# --------------------------------------------------------------------------- helpers


@pytest.fixture
def fake() -> FakeZhipu:
    return FakeZhipu(api_key=KEY)


def sync_client(door: str, fake: FakeZhipu) -> openai.OpenAI:
    """An openai client whose provider traffic goes to ``fake``, through ``door``."""
    upstream = httpx.Client(transport=fake.transport())
    if door == "bridge_client":
        return llm_bridge.OpenAI(provider="zhipu", api_key=KEY, http_client=upstream)
    front = llm_bridge.http_client(http_client=upstream)
    return openai.OpenAI(api_key=KEY, base_url=ZHIPU_ROOT, http_client=front)


def async_client(door: str, fake: FakeZhipu) -> openai.AsyncOpenAI:
    """The asynchronous twin of `sync_client`."""
    upstream = httpx.AsyncClient(transport=fake.transport())
    if door == "bridge_client":
        return llm_bridge.AsyncOpenAI(provider="zhipu", api_key=KEY, http_client=upstream)
    front = llm_bridge.async_http_client(http_client=upstream)
    return openai.AsyncOpenAI(api_key=KEY, base_url=ZHIPU_ROOT, http_client=front)


def bodies(fake: FakeZhipu) -> list[dict[str, Any]]:
    """Every chat request the provider received, parsed, in order."""
    return helpers.bodies(fake, "/api/paas/v4/chat/completions")


def tool_names(body: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in body.get("tools", [])]


def user_says(text: str) -> list[dict[str, Any]]:
    """The messages of a one-turn conversation, as the provider should receive them."""
    return [{"role": "user", "content": text}]


# --------------------------------------------------------------------------- langchain-openai


def chat_model(door: str, fake: FakeZhipu) -> Any:
    """A ``ChatOpenAI`` talking to ``fake`` through ``door``.

    Through ``bridge_client`` the llm-bridge clients are handed to ChatOpenAI as its
    ``root_client``/``client`` (and async twins); through ``http_client`` ChatOpenAI builds
    its own openai clients on llm-bridge's HTTP clients.
    """
    from langchain_openai import ChatOpenAI

    if door == "bridge_client":
        client, aclient = sync_client(door, fake), async_client(door, fake)
        return ChatOpenAI(
            model=MODEL,
            root_client=client,
            client=client.chat.completions,
            root_async_client=aclient,
            async_client=aclient.chat.completions,
        )
    return ChatOpenAI(
        model=MODEL,
        api_key=KEY,
        base_url=ZHIPU_ROOT,
        max_retries=0,
        http_client=llm_bridge.http_client(http_client=httpx.Client(transport=fake.transport())),
        http_async_client=llm_bridge.async_http_client(
            http_client=httpx.AsyncClient(transport=fake.transport())
        ),
    )


def get_weather_tool() -> Any:
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        return f"{city}：晴，25°C"

    return get_weather


@by_door
def test_langchain_invoke(door: str, fake: FakeZhipu) -> None:
    fake.reply("你好！我是智谱的模型。")
    answer = chat_model(door, fake).invoke([("system", "回答要简短。"), ("user", "你好")])

    assert answer.content == "你好！我是智谱的模型。"
    assert answer.usage_metadata["total_tokens"] > 0
    assert answer.response_metadata["finish_reason"] == "stop"
    (body,) = bodies(fake)
    assert body["model"] == MODEL
    assert body["messages"] == [
        {"role": "system", "content": "回答要简短。"},
        {"role": "user", "content": "你好"},
    ]
    assert not body.get("stream")


@by_door
async def test_langchain_ainvoke(door: str, fake: FakeZhipu) -> None:
    fake.reply("异步的回答")
    answer = await chat_model(door, fake).ainvoke("异步问题")

    assert answer.content == "异步的回答"
    assert bodies(fake)[0]["messages"] == user_says("异步问题")


@by_door
def test_langchain_stream(door: str, fake: FakeZhipu) -> None:
    fake.reply("流式输出的一段回答", chunk_size=3)
    chunks = list(chat_model(door, fake).stream("讲一句话"))

    assert "".join(chunk.content for chunk in chunks) == "流式输出的一段回答"
    assert len([chunk for chunk in chunks if chunk.content]) == 3
    (body,) = bodies(fake)
    assert body["stream"] is True
    assert body["messages"] == user_says("讲一句话")


@by_door
async def test_langchain_astream(door: str, fake: FakeZhipu) -> None:
    fake.reply("异步流式回答", chunk_size=2)
    parts = [chunk.content async for chunk in chat_model(door, fake).astream("讲一句话")]

    assert "".join(parts) == "异步流式回答"
    assert bodies(fake)[0]["stream"] is True


@by_door
def test_langchain_bind_tools_round_trip(door: str, fake: FakeZhipu) -> None:
    from langchain_core.messages import HumanMessage

    fake.tool_call("get_weather", {"city": "北京"}, id="call_weather_1").reply("北京晴，25°C。")
    get_weather = get_weather_tool()
    llm = chat_model(door, fake).bind_tools([get_weather])

    question = HumanMessage("北京天气怎么样？")
    asked = llm.invoke([question])
    assert asked.tool_calls == [
        {
            "name": "get_weather",
            "args": {"city": "北京"},
            "id": "call_weather_1",
            "type": "tool_call",
        }
    ]
    tool_message = get_weather.invoke(asked.tool_calls[0])
    final = llm.invoke([question, asked, tool_message])

    assert final.content == "北京晴，25°C。"
    first, second = bodies(fake)
    assert tool_names(first) == ["get_weather"]
    assert first["tools"][0]["function"]["description"] == "Get the weather for a city."
    assert first["tools"][0]["function"]["parameters"]["properties"] == {"city": {"type": "string"}}
    assert second["messages"][1]["tool_calls"][0]["id"] == "call_weather_1"
    assert second["messages"][2] == {
        "role": "tool",
        "tool_call_id": "call_weather_1",
        "content": "北京：晴，25°C",
    }


@by_door
def test_langchain_structured_output_by_function_calling(door: str, fake: FakeZhipu) -> None:
    fake.tool_call("City", HANGZHOU.model_dump())
    structured = chat_model(door, fake).with_structured_output(City, method="function_calling")

    assert structured.invoke("西湖在哪里？") == HANGZHOU
    (body,) = bodies(fake)
    assert tool_names(body) == ["City"]
    schema = body["tools"][0]["function"]["parameters"]
    assert set(schema["properties"]) == {"name", "country"}
    assert body["messages"] == user_says("西湖在哪里？")


@by_door
def test_langchain_structured_output_by_json_schema(door: str, fake: FakeZhipu) -> None:
    # GLM has no native json_schema: llm-bridge sends json_object with the schema in a
    # system instruction and checks the answer; the fake replies with the JSON object.
    fake.reply(HANGZHOU.model_dump_json())
    structured = chat_model(door, fake).with_structured_output(City)  # method="json_schema"

    assert structured.invoke("西湖在哪里？") == HANGZHOU
    sent = bodies(fake)[0]
    assert sent["response_format"] == {"type": "json_object"}
    instruction = sent["messages"][0]
    assert instruction["role"] == "system" and "JSON Schema" in instruction["content"]
    assert sent["messages"][1:] == user_says("西湖在哪里？")


# --------------------------------------------------------------------------- openai-agents


@pytest.mark.parametrize("streamed", [False, True], ids=["run", "run_streamed"])
@by_door
async def test_openai_agents_tool_round_trip(door: str, streamed: bool, fake: FakeZhipu) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool

    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Get the weather for a city."""
        calls.append(city)
        return f"{city}：晴，25°C"

    fake.tool_call("get_weather", {"city": "北京"}, id="call_weather_1").reply("北京今天晴，25°C。")
    agent = Agent(
        name="weather",
        instructions="你回答天气问题。",
        model=OpenAIChatCompletionsModel(model=MODEL, openai_client=async_client(door, fake)),
        tools=[get_weather],
    )
    config = RunConfig(tracing_disabled=True)
    if streamed:
        result = Runner.run_streamed(agent, "北京天气怎么样？", run_config=config)
        events = [event.type async for event in result.stream_events()]
        assert "raw_response_event" in events
    else:
        result = await Runner.run(agent, "北京天气怎么样？", run_config=config)

    assert calls == ["北京"]
    assert result.final_output == "北京今天晴，25°C。"
    first, second = bodies(fake)
    assert first["messages"] == [
        {"role": "system", "content": "你回答天气问题。"},
        {"role": "user", "content": "北京天气怎么样？"},
    ]
    assert tool_names(first) == ["get_weather"]
    assert bool(first.get("stream")) is streamed
    assistant, tool_result = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "call_weather_1"
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "北京"}
    assert tool_result == {
        "role": "tool",
        "tool_call_id": "call_weather_1",
        "content": "北京：晴，25°C",
    }


# --------------------------------------------------------------------------- pydantic-ai


def pydantic_ai_model(door: str, fake: FakeZhipu) -> Any:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel(MODEL, provider=OpenAIProvider(openai_client=async_client(door, fake)))


@by_door
async def test_pydantic_ai_typed_output(door: str, fake: FakeZhipu) -> None:
    from pydantic_ai import Agent

    fake.tool_call("final_result", HANGZHOU.model_dump())
    agent = Agent(pydantic_ai_model(door, fake), output_type=City, instructions="回答城市问题。")

    # pydantic-ai forces its output tool with tool_choice="required"; GLM takes only
    # "auto", so llm-bridge says it changed that (and the only tool is the output tool).
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="tool_choice"):
        result = await agent.run("西湖在哪里？")

    assert result.output == HANGZHOU
    (body,) = bodies(fake)
    assert tool_names(body) == ["final_result"]
    assert set(body["tools"][0]["function"]["parameters"]["properties"]) == {"name", "country"}
    assert body["messages"] == [
        {"role": "system", "content": "回答城市问题。"},
        {"role": "user", "content": "西湖在哪里？"},
    ]


@by_door
async def test_pydantic_ai_tool_then_typed_output(door: str, fake: FakeZhipu) -> None:
    from pydantic_ai import Agent

    class Population(BaseModel):
        city: str
        people: int

    asked: list[str] = []
    agent = Agent(pydantic_ai_model(door, fake), output_type=Population)

    @agent.tool_plain
    def get_population(city: str) -> int:
        """The population of a city."""
        asked.append(city)
        return 12_000_000

    fake.tool_call("get_population", {"city": "杭州"}, id="call_pop_1")
    fake.tool_call("final_result", {"city": "杭州", "people": 12_000_000})
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="tool_choice"):
        result = await agent.run("杭州有多少人？")

    assert asked == ["杭州"]
    assert result.output == Population(city="杭州", people=12_000_000)
    first, second = bodies(fake)
    assert sorted(tool_names(first)) == ["final_result", "get_population"]
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_pop_1",
        "content": "12000000",
    }


@by_door
async def test_pydantic_ai_streams_text(door: str, fake: FakeZhipu) -> None:
    from pydantic_ai import Agent

    fake.reply("西湖在杭州。", chunk_size=2)
    agent = Agent(pydantic_ai_model(door, fake))

    async with agent.run_stream("西湖在哪里？") as run:
        deltas = [delta async for delta in run.stream_text(delta=True)]

    assert "".join(deltas) == "西湖在杭州。"
    (body,) = bodies(fake)
    assert body["stream"] is True
    assert body["messages"] == user_says("西湖在哪里？")
