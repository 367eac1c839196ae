"""A chat-shaped conversation sent through Responses reaches the provider as through chat.

Hypothesis draws a conversation in valid chat order: an optional system (or developer)
message, then user turns, assistant turns (text, tool calls, or both) and the tool results
every call needs. It goes to a fresh FakeZhipu twice, once as
``client.chat.completions.create(messages=...)`` and once as
``client.responses.create(input=<the same conversation as Responses items>, store=False)``;
the two chat requests the provider receives carry equal ``messages`` (and equal ``tools``
when the conversation has tools). Through both front doors.
"""

from __future__ import annotations

import json
from typing import Any

from helpers import by_door, door_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_bridge.testing import FakeZhipu

KEY = "id.secret"
MODEL = "glm-4-flash"

PROFILE = settings(
    max_examples=50,
    deadline=None,
    # the conftest's autouse fixtures (no sleeping, clean environment) may be shared by
    # every example; each example makes its own fake and client
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

JSONDict = dict[str, Any]

texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")) | st.sampled_from("北京天气晴"),
    min_size=1,
    max_size=24,
).filter(lambda text: text.strip() != "")
TOOL_NAMES = ("get_weather", "get_time", "lookup")
arguments = st.dictionaries(
    st.sampled_from(("city", "day", "q")), st.integers(-5, 5) | texts, max_size=2
)


def chat_tool(name: str) -> JSONDict:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"the {name} tool",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }


@st.composite
def user_messages(draw: st.DrawFn) -> JSONDict:
    if draw(st.booleans()):
        return {"role": "user", "content": draw(texts)}
    parts = draw(st.lists(texts, min_size=1, max_size=3))
    return {"role": "user", "content": [{"type": "text", "text": t} for t in parts]}


@st.composite
def conversations(draw: st.DrawFn) -> tuple[list[JSONDict], list[JSONDict]]:
    """(messages, tools) in valid chat order, ending with a user or tool message."""
    messages: list[JSONDict] = []
    if draw(st.booleans()):
        role = draw(st.sampled_from(("system", "developer")))
        messages.append({"role": role, "content": draw(texts)})
    calls = 0
    for _ in range(draw(st.integers(0, 4))):
        messages.append(draw(user_messages()))
        kind = draw(st.sampled_from(("text", "calls", "both")))
        assistant: JSONDict = {"role": "assistant", "content": None}
        if kind != "calls":
            assistant["content"] = draw(texts)
        names: list[str] = []
        if kind != "text":
            names = draw(st.lists(st.sampled_from(TOOL_NAMES), min_size=1, max_size=3))
            assistant["tool_calls"] = [
                {
                    "id": f"call_{calls + i}",
                    "type": "function",
                    "function": {
                        "name": name,
                        "arguments": json.dumps(draw(arguments), ensure_ascii=False),
                    },
                }
                for i, name in enumerate(names)
            ]
        messages.append(assistant)
        for i in range(len(names)):
            messages.append(
                {"role": "tool", "tool_call_id": f"call_{calls + i}", "content": draw(texts)}
            )
        calls += len(names)
    if not messages or messages[-1]["role"] != "tool" or draw(st.booleans()):
        messages.append(draw(user_messages()))
    tool_names = draw(st.lists(st.sampled_from(TOOL_NAMES), unique=True, max_size=3))
    return messages, [chat_tool(name) for name in tool_names]


def as_items(messages: list[JSONDict]) -> list[JSONDict]:
    """The conversation as Responses input items."""
    items: list[JSONDict] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message["content"],
                }
            )
        elif role == "assistant":
            if message["content"] is not None:
                items.append(
                    {
                        "type": "message",
                        "role": "assistant",
                        "content": [
                            {"type": "output_text", "text": message["content"], "annotations": []}
                        ],
                    }
                )
            for call in message.get("tool_calls", []):
                items.append(
                    {
                        "type": "function_call",
                        "call_id": call["id"],
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                    }
                )
        elif isinstance(message["content"], str):
            items.append({"role": role, "content": message["content"]})
        else:
            parts = [{"type": "input_text", "text": p["text"]} for p in message["content"]]
            items.append({"type": "message", "role": role, "content": parts})
    return items


def as_response_tools(tools: list[JSONDict]) -> list[JSONDict]:
    return [{"type": "function", **tool["function"]} for tool in tools]


@by_door
@PROFILE
@given(conversation=conversations())
def test_responses_input_reaches_the_provider_as_the_chat_messages(
    door: str, conversation: tuple[list[JSONDict], list[JSONDict]]
) -> None:
    messages, tools = conversation
    fake = FakeZhipu(api_key=KEY)
    c = door_client(door, fake)
    chat_options: JSONDict = {"tools": tools} if tools else {}
    responses_options: JSONDict = {"tools": as_response_tools(tools)} if tools else {}

    c.chat.completions.create(model=MODEL, messages=messages, **chat_options)  # type: ignore[arg-type]
    c.responses.create(model=MODEL, input=as_items(messages), store=False, **responses_options)  # type: ignore[arg-type]

    via_chat, via_responses = (json.loads(request.content) for request in fake.requests)
    assert via_responses["messages"] == via_chat["messages"]
    assert via_responses.get("tools") == via_chat.get("tools")
    if tools:
        assert [t["function"]["name"] for t in via_chat["tools"]] == [
            t["function"]["name"] for t in tools
        ]
