"""Streamed tool calls and roles in OpenAI's form whatever habit the provider streams with.

- A provider repeating a call's ``id``/``type``/``name`` on every fragment (GLM-5.1 as
  some proxies relay it, vLLM and SGLang servers of Qwen): joined by openai's stream
  helper, the call's id became ``call_1call_1call_1`` and its name the name three times.
- Parallel calls all streamed at index 0, each with its own id (Qwen3 on vLLM/SGLang,
  Ollama): joined, two calls became one with two JSON objects as its arguments.
- An empty ``role`` (GLM-5 has sent ``"role": ""``): clients validating chunks against
  OpenAI's schema (the AI SDK, opencode, Copilot) refuse it; OpenAI's is ``"assistant"``.

Each through both front doors, and on the OpenAI SSE the gateway and `http_client` write.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from helpers import HELLO, by_door, door_client, sse_payloads

from llm_bridge._tool_call_deltas import ToolCallHeads
from llm_bridge.testing import FakeZhipu, Raw

KEY = "id.secret"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": name,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    for name in ("get_weather", "get_time")
]
BASE = {"id": "task-1", "created": 1, "model": "glm-4-plus"}


def _stream(*choices: dict[str, Any], usage: bool = True) -> Raw:
    events = [{**BASE, "choices": [choice]} for choice in choices]
    if usage:
        events[-1]["usage"] = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return Raw(200, body + b"data: [DONE]\n\n", {"content-type": "text/event-stream"})


def _call(index: int, call_id: str, name: str, arguments: str) -> dict[str, Any]:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


def _fragment(*calls: dict[str, Any], finish: Any = None, role: str = "assistant") -> dict:
    return {
        "index": 0,
        "delta": {"role": role, "content": "", "tool_calls": list(calls)},
        "finish_reason": finish,
    }


FINISH = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": "tool_calls"}

#: The header on every fragment.
REPEATED = _stream(
    _fragment(_call(0, "call_1", "get_weather", '{"ci')),
    _fragment(_call(0, "call_1", "get_weather", 'ty": "Bei')),
    _fragment(_call(0, "call_1", "get_weather", 'jing"}')),
    FINISH,
)
#: Two calls, both at index 0, one after the other.
SHARED_INDEX = _stream(
    _fragment(_call(0, "call_a", "get_weather", '{"city": ')),
    _fragment({"index": 0, "function": {"arguments": '"Beijing"}'}}),
    _fragment(_call(0, "call_b", "get_time", '{"city": ')),
    _fragment({"index": 0, "function": {"arguments": '"Tokyo"}'}}),
    FINISH,
)


def _final(door: str, answer: Raw) -> Any:
    """openai's own ``chat.completions.stream`` helper's final completion."""
    client = door_client(door, FakeZhipu(api_key=KEY).then(answer))
    with client.chat.completions.stream(model="glm-4-plus", messages=HELLO, tools=TOOLS) as stream:
        for _ in stream:
            pass
        return stream.get_final_completion()


@by_door
def test_a_header_repeated_on_every_fragment_is_sent_once(door: str) -> None:
    (call,) = _final(door, REPEATED).choices[0].message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_1", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"city": "Beijing"}


@by_door
def test_parallel_calls_at_one_index_become_calls_of_their_own(door: str) -> None:
    calls = _final(door, SHARED_INDEX).choices[0].message.tool_calls
    assert [(c.id, c.function.name) for c in calls] == [
        ("call_a", "get_weather"),
        ("call_b", "get_time"),
    ]
    # A fragment without an id continues the latest call at its index.
    assert [json.loads(c.function.arguments) for c in calls] == [
        {"city": "Beijing"},
        {"city": "Tokyo"},
    ]


@by_door
def test_the_chunks_read_as_openai_streams_them(door: str) -> None:
    client = door_client(door, FakeZhipu(api_key=KEY).then(REPEATED))
    chunks = list(
        client.chat.completions.create(model="glm-4-plus", messages=HELLO, tools=TOOLS, stream=True)
    )
    calls = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]
    assert [(c.id, c.type, c.function.name) for c in calls] == [
        ("call_1", "function", "get_weather"),
        (None, None, None),
        (None, None, None),
    ]
    assert "".join(c.function.arguments for c in calls) == '{"city": "Beijing"}'


def test_the_written_sse_carries_the_header_once() -> None:
    """What a gateway client or a plain openai client reads: continuation fragments hold no
    ``id``, ``type`` or ``name`` keys, as OpenAI's do."""
    from llm_bridge._front import sse_events

    client = door_client("bridge", FakeZhipu(api_key=KEY).then(SHARED_INDEX))
    stream = client.chat.completions.create(
        model="glm-4-plus", messages=HELLO, tools=TOOLS, stream=True
    )
    written = b"".join(sse_events(chunk) for chunk in stream)
    calls = [
        call
        for payload in sse_payloads(written)
        for choice in json.loads(payload)["choices"]
        for call in choice["delta"].get("tool_calls") or ()
    ]
    assert calls == [
        _call(0, "call_a", "get_weather", '{"city": '),
        {"index": 0, "function": {"arguments": '"Beijing"}'}},
        _call(1, "call_b", "get_time", '{"city": '),
        {"index": 1, "function": {"arguments": '"Tokyo"}'}},
    ]


def test_a_stream_in_openai_form_passes_unchanged() -> None:
    heads = ToolCallHeads(lambda: "call_" + "f" * 24)
    from llm_bridge._shapes.chat.chat_completion_chunk import ChoiceDeltaToolCall

    def calls(*raw: dict[str, Any]) -> list[Any]:
        return [ChoiceDeltaToolCall.model_validate(c) for c in raw]

    first = calls(_call(0, "call_a", "f", ""), _call(1, "call_b", "g", ""))
    heads.tidy(0, first)
    later = calls({"index": 1, "function": {"arguments": "{}"}})
    heads.tidy(0, later)
    other_choice = calls(_call(0, "call_c", "f", "{}"))
    heads.tidy(1, other_choice)
    assert [c.model_dump(exclude_unset=True) for c in first + later + other_choice] == [
        _call(0, "call_a", "f", ""),
        _call(1, "call_b", "g", ""),
        {"index": 1, "function": {"arguments": "{}"}},
        _call(0, "call_c", "f", "{}"),
    ]


def _tidied(*raw: dict[str, Any]) -> list[dict[str, Any]]:
    """``raw`` fragments of one choice, one per event, as `ToolCallHeads` leaves them."""
    from llm_bridge._shapes.chat.chat_completion_chunk import ChoiceDeltaToolCall

    heads = ToolCallHeads(lambda: "call_" + "0" * 24)
    calls = [ChoiceDeltaToolCall.model_validate(c) for c in raw]
    for call in calls:
        heads.tidy(0, [call])
    return [c.model_dump(exclude_unset=True) for c in calls]


def test_an_id_changing_without_a_name_is_the_same_call() -> None:
    """Some providers' later fragments carry an id of their own, the same on each."""
    assert _tidied(
        _call(0, "call_X", "get_weather", ""),
        {"index": 0, "id": "call_Y", "function": {"arguments": '{"city": '}},
        {"index": 0, "id": "call_Y", "function": {"arguments": '"Beijing"}'}},
    ) == [
        _call(0, "call_X", "get_weather", ""),
        {"index": 0, "function": {"arguments": '{"city": '}},
        {"index": 0, "function": {"arguments": '"Beijing"}'}},
    ]


def test_two_calls_of_one_function_at_one_index_stay_two() -> None:
    assert [
        c["index"]
        for c in _tidied(
            _call(0, "call_a", "get_weather", '{"city": "Beijing"}'),
            _call(0, "call_b", "get_weather", '{"city": "Tokyo"}'),
        )
    ] == [0, 1]


def test_a_name_streamed_in_pieces_keeps_every_piece() -> None:
    pieces = _tidied(
        _call(0, "call_1", "echo", ""),
        {"index": 0, "function": {"name": "_"}},
        {"index": 0, "function": {"name": "echo"}},
        {"index": 0, "function": {"name": "echo_echo", "arguments": "{}"}},
    )
    assert [c["function"].get("name") for c in pieces] == ["echo", "_", "echo", None]


def test_a_call_begun_without_an_id_is_given_one_and_a_late_id_left_out() -> None:
    from llm_bridge._shapes.chat.chat_completion_chunk import ChoiceDeltaToolCall

    heads = ToolCallHeads(lambda: "call_" + "ab" * 12)
    first = ChoiceDeltaToolCall.model_validate({"index": 0, "function": {"name": "f"}})
    with_id = ChoiceDeltaToolCall.model_validate({"index": 0, "id": "call_1", "type": "function"})
    for call in (first, with_id):
        heads.tidy(0, [call])
    assert first.model_dump(exclude_unset=True) == {
        "index": 0,
        "id": "call_" + "ab" * 12,
        "type": "function",
        "function": {"name": "f"},
    }
    assert with_id.model_dump(exclude_unset=True) == {"index": 0}  # (not a new call)


NO_ID = _stream(
    _fragment({"index": 0, "function": {"name": "get_weather", "arguments": '{"city": '}}),
    _fragment({"index": 0, "function": {"arguments": '"Beijing"}'}}),
    FINISH,
)


@by_door
def test_a_streamed_call_without_an_id_can_be_answered(door: str) -> None:
    """openai's stream helper joins the call; its id names the tool message answering it,
    and the next turn goes out with both."""
    fake = FakeZhipu(api_key=KEY).then(NO_ID).reply("晴")
    client = door_client(door, fake)
    with client.chat.completions.stream(model="glm-4-plus", messages=HELLO, tools=TOOLS) as stream:
        message = stream.get_final_completion().choices[0].message
    (call,) = message.tool_calls
    assert call.id.startswith("call_") and len(call.id) == 29
    answer = {"role": "tool", "tool_call_id": call.id, "content": "晴"}
    reply = client.chat.completions.create(
        model="glm-4-plus", messages=[*HELLO, message, answer], tools=TOOLS
    )
    assert reply.choices[0].message.content == "晴"
    sent = json.loads(fake.requests[-1].content)["messages"]
    assert sent[1]["tool_calls"][0]["id"] == sent[2]["tool_call_id"] == call.id


def _answered_call(door: str, call: dict[str, Any]) -> Any:
    """The tool call a client reads from a non-stream answer holding ``call`` alone."""
    answer = {
        **BASE,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    fake = FakeZhipu(api_key=KEY).then(Raw(200, json.dumps(answer)))
    reply = door_client(door, fake).chat.completions.create(
        model="glm-4-plus", messages=HELLO, tools=TOOLS
    )
    (got,) = reply.choices[0].message.tool_calls
    return got


@pytest.mark.parametrize("given", [None, ""])
@by_door
def test_an_answers_call_without_an_id_is_given_one(door: str, given: Any) -> None:
    call = {"type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
    if given is not None:
        call["id"] = given
    got = _answered_call(door, call)
    assert got.id.startswith("call_") and len(got.id) == 29


def test_empty_strings_name_nothing() -> None:
    """An empty ``id`` or ``name`` is left out, and an empty ``type`` is a function's."""
    from llm_bridge._shapes.chat.chat_completion_chunk import ChoiceDeltaToolCall

    heads = ToolCallHeads(lambda: "call_" + "f" * 24)
    first = ChoiceDeltaToolCall.model_validate(
        {"index": 0, "id": "call_1", "type": "", "function": {"name": "f", "arguments": ""}}
    )
    later = ChoiceDeltaToolCall.model_validate(
        {"index": 0, "id": "", "type": "", "function": {"name": "", "arguments": "{}"}}
    )
    heads.tidy(0, [first])
    heads.tidy(0, [later])
    assert first.model_dump(exclude_unset=True) == _call(0, "call_1", "f", "")
    assert later.model_dump(exclude_unset=True) == {"index": 0, "function": {"arguments": "{}"}}


@by_door
def test_an_answers_call_of_empty_type_is_a_function_call(door: str) -> None:
    call = {**_call(0, "call_1", "get_weather", '{"city": "Beijing"}'), "type": ""}
    got = _answered_call(door, call)
    assert (got.id, got.type, got.function.name) == ("call_1", "function", "get_weather")


# --------------------------------------------------------------------------- empty role

PLAIN_TEXT = {"index": 0, "delta": {"role": "", "content": "你好"}}


@pytest.mark.parametrize("later", ["text", "finish"])
@by_door
def test_an_empty_role_is_the_assistant(door: str, later: str) -> None:
    """The first chunk takes the typed way (validated from its bytes) when the stream's
    other events do; with a finish word on every chunk, the general way: both mend it."""
    finish = None if later == "text" else "stop"
    events = [
        {**PLAIN_TEXT, "finish_reason": finish},
        {"index": 0, "delta": {"role": "", "content": "!"}, "finish_reason": "stop"},
    ]
    client = door_client(door, FakeZhipu(api_key=KEY).then(_stream(*events)))
    chunks = list(client.chat.completions.create(model="glm-4-plus", messages=HELLO, stream=True))
    roles = [c.choices[0].delta.role for c in chunks if c.choices]
    assert roles == ["assistant", None]


def test_an_empty_role_before_any_text_names_nothing() -> None:
    events = [
        {"index": 0, "delta": {"role": ""}},
        {"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"},
    ]
    client = door_client("bridge", FakeZhipu(api_key=KEY).then(_stream(*events)))
    chunks = list(client.chat.completions.create(model="glm-4-plus", messages=HELLO, stream=True))
    assert [c.choices[0].delta.role for c in chunks if c.choices] == [None, "assistant"]


@by_door
def test_an_empty_role_in_an_answer_is_the_assistant(door: str) -> None:
    answer = {
        **BASE,
        "choices": [
            {"index": 0, "message": {"role": "", "content": "你好"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    fake = FakeZhipu(api_key=KEY).then(Raw(200, json.dumps(answer)))
    reply = door_client(door, fake).chat.completions.create(model="glm-4-plus", messages=HELLO)
    assert reply.choices[0].message.role == "assistant"
