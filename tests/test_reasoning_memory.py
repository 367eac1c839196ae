"""The reasoning of an answer that called tools goes back with the tool results, even when
the caller's framework rebuilt the assistant message without it (`_reasoning_memory`)."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import httpx
import pytest

import llm_bridge
from llm_bridge._reasoning_memory import ReasoningMemory
from llm_bridge.testing import FakeZhipu
from llm_bridge.testing._script import Reply, ToolCallSpec

THOUGHT = "先查天气，再回答。"


def scripted() -> FakeZhipu:
    fake = FakeZhipu(api_key="id.secret")
    fake.then(
        Reply(reasoning_content=THOUGHT, tool_calls=(ToolCallSpec("weather", {"city": "杭州"}),))
    )
    fake.then(Reply(reasoning_content="好的", content="晴"))
    return fake


def assistant_turns(fake: FakeZhipu) -> list[dict[str, Any]]:
    last = json.loads(fake.requests[-1].content)
    return [m for m in last["messages"] if m["role"] == "assistant"]


def rebuilt(message: Any) -> dict[str, Any]:
    """The assistant turn as frameworks rebuild it: text and tool calls, nothing else."""
    return {
        "role": "assistant",
        "content": message.content,
        "tool_calls": [c.model_dump(exclude_none=True) for c in message.tool_calls],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_a_rebuilt_assistant_turn_gets_its_reasoning_back(stream: bool):
    fake = scripted()
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key="id.secret", http_client=httpx.Client(transport=fake.transport())
    )
    messages: list[Any] = [{"role": "user", "content": "杭州天气？"}]
    if stream:
        with client.chat.completions.stream(model="glm-5.1", messages=messages) as events:
            message = events.get_final_completion().choices[0].message
    else:
        message = client.chat.completions.create(model="glm-5.1", messages=messages)
        message = message.choices[0].message
    assert message.tool_calls
    messages += [
        rebuilt(message),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "晴"},
    ]
    client.chat.completions.create(model="glm-5.1", messages=messages)
    assert assistant_turns(fake)[0]["reasoning_content"] == THOUGHT
    assert "reasoning_content" not in messages[1]  # the caller's message is left as it was


@pytest.mark.parametrize("streamed", [False, True])
def test_openai_agents_tool_loop_keeps_the_reasoning(streamed: bool):
    from agents import (
        Agent,
        OpenAIChatCompletionsModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )

    set_tracing_disabled(True)
    fake = scripted()
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key="id.secret",
        http_client=httpx.AsyncClient(transport=fake.transport()),
    )

    @function_tool
    def weather(city: str) -> str:
        return "晴"

    model = OpenAIChatCompletionsModel(model="glm-5.1", openai_client=client)
    agent = Agent(name="a", instructions="简短回答。", tools=[weather], model=model)

    async def run() -> Any:
        if not streamed:
            return (await Runner.run(agent, "杭州天气？")).final_output
        result = Runner.run_streamed(agent, "杭州天气？")
        async for _ in result.stream_events():
            pass
        return result.final_output

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert asyncio.run(run()) == "晴"
    assert assistant_turns(fake)[0]["reasoning_content"] == THOUGHT


def test_the_callers_own_reasoning_wins():
    memory = ReasoningMemory()
    memory.remember(["call_1"], "kept")
    own = {"role": "assistant", "tool_calls": [{"id": "call_1"}], "reasoning_content": "mine"}
    assert memory.restore([own]) == [own]


def test_memory_is_bounded_and_leaves_messages_alone():
    memory = ReasoningMemory(size=2)
    for n in range(3):
        memory.remember([f"call_{n}"], f"thought {n}")
    turns = [{"role": "assistant", "tool_calls": [{"id": f"call_{n}"}]} for n in range(3)]
    restored = memory.restore(turns)
    assert [m.get("reasoning_content") for m in restored] == [None, "thought 1", "thought 2"]
    assert all("reasoning_content" not in m for m in turns)
    memory.remember(["call_9"], "")  # nothing to keep
    assert (
        memory.restore([{"role": "assistant", "tool_calls": [{"id": "call_9"}]}])[0].get(
            "reasoning_content"
        )
        is None
    )


def test_a_stream_closed_early_counts_its_reasoning_as_reasoning_tokens():
    from decimal import Decimal

    from llm_bridge.testing import FakeDashScopeCompatible

    fake = FakeDashScopeCompatible()
    records: list[Any] = []
    client = llm_bridge.OpenAI(
        provider="dashscope",
        api_key="sk-test",
        http_client=httpx.Client(transport=fake.transport()),
        on_usage=records.append,
    )
    fake.then(Reply(reasoning_content="思考" * 200, content="回答内容。" * 50))
    stream = client.chat.completions.create(
        model="qwen-plus",
        messages=[{"role": "user", "content": "你好"}],
        reasoning_effort="high",
        stream=True,
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    stream.close()
    usage = records[-1].usage
    assert usage.estimated
    thought = usage.completion_tokens_details.reasoning_tokens
    assert 0 < thought <= usage.completion_tokens
    price = client.config.price("dashscope", "qwen-plus")
    assert price is not None and price.thinking_output is not None
    flat = price.for_call(usage.prompt_tokens, usage.completion_tokens)
    expected = (
        usage.prompt_tokens * flat.input + usage.completion_tokens * flat.thinking_output
    ) / Decimal(1_000_000)
    assert records[-1].cost_cny == expected  # the thinking-mode output price


def test_memory_is_bounded_in_characters_too():
    memory = ReasoningMemory(size=100, characters=10)
    memory.remember(["a"], "12345")
    memory.remember(["b"], "67890")
    memory.remember(["c"], "abc")  # 13 characters: the oldest goes
    memory.remember(["d"], "x" * 11)  # more than the whole memory: not kept
    turns = [{"role": "assistant", "tool_calls": [{"id": i}]} for i in "abcd"]
    assert [m.get("reasoning_content") for m in memory.restore(turns)] == [
        None,
        "67890",
        "abc",
        None,
    ]


def test_clients_keep_their_own_memory_and_copies_share_it():
    fake = scripted()
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key="id.secret", http_client=httpx.Client(transport=fake.transport())
    )
    messages: list[Any] = [{"role": "user", "content": "杭州天气？"}]
    message = client.chat.completions.create(model="glm-5.1", messages=messages).choices[0].message
    assert message.tool_calls
    messages += [
        rebuilt(message),
        {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "晴"},
    ]
    # A copy (with_options) continues the conversation with the reasoning restored ...
    client.with_options(timeout=30).chat.completions.create(model="glm-5.1", messages=messages)
    assert assistant_turns(fake)[0]["reasoning_content"] == THOUGHT
    # ... another client, whose own answers never carried it, does not get it.
    other = FakeZhipu(api_key="id.secret").reply("晴")
    stranger = llm_bridge.OpenAI(
        provider="zhipu", api_key="id.secret", http_client=httpx.Client(transport=other.transport())
    )
    stranger.chat.completions.create(model="glm-5.1", messages=messages)
    assert assistant_turns(other)[0]["reasoning_content"] != THOUGHT
