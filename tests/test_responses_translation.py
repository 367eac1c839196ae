"""The Responses-over-chat translation core (issue 15): pure, checked against openai's types.

Requests become chat parameters; chat completions and chunk streams become Responses
objects and events. Every Response is validated with ``openai.types.responses.Response``,
every event with openai's ``ResponseStreamEvent`` union, and every stream is fed to openai's
own ``responses.stream()`` accumulator, which must rebuild the final Response we report.
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any, Callable

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._types import omit
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from llm_bridge._responses import (
    RESPONSES_PARAMS,
    ResponseEvents,
    Unsupported,
    chat_params,
    input_messages,
    instruction_messages,
    output_messages,
    response_from_chat,
)

EVENTS: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(ResponseStreamEvent)
REQ: dict[str, Any] = {"model": "glm-4.6", "input": "hi"}


def ids() -> Callable[[str], str]:
    counter = itertools.count(1)
    return lambda prefix: f"{prefix}_{next(counter)}"


def raise_unsupported(param: str, reason: str) -> None:
    raise Unsupported(param, reason)


class Reports(list):
    def __call__(self, param: str, reason: str) -> None:
        self.append((param, reason))


def params(request: dict[str, Any], history: Any = ()) -> dict[str, Any]:
    return chat_params(request, list(history), unsupported=raise_unsupported)


def reported(request: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    reports = Reports()
    out = chat_params(request, [], unsupported=reports)
    return out, [param for param, _ in reports]


def valid(response: dict[str, Any]) -> Response:
    return Response.model_validate(response)


# --------------------------------------------------------------------------- requests


def test_string_input_and_instructions() -> None:
    out = params({"model": "glm-4.6", "input": "Hello", "instructions": "Be brief."})
    assert out == {
        "model": "glm-4.6",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hello"},
        ],
    }


def test_history_goes_after_instructions_and_before_input() -> None:
    history = [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
    ]
    out = params({"model": "m", "input": "three", "instructions": "sys"}, history)
    assert [m["content"] for m in out["messages"]] == ["sys", "one", "two", "three"]


def test_instructions_not_kept_for_continuation() -> None:
    request = {"model": "m", "input": "q", "instructions": "sys"}
    assert input_messages(request) == [{"role": "user", "content": "q"}]
    assert instruction_messages(request) == [{"role": "system", "content": "sys"}]


def test_message_items_every_role_and_part() -> None:
    request = {
        "model": "m",
        "input": [
            {"role": "system", "content": "s"},
            {"role": "developer", "content": [{"type": "input_text", "text": "d"}]},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "look"},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AA"},
                ],
            },
            {"role": "assistant", "content": "plain"},
            {"role": "user", "content": "next"},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "a", "annotations": []},
                    {"type": "output_text", "text": "b", "annotations": []},
                ],
            },
        ],
    }
    assert params(request)["messages"] == [
        {"role": "system", "content": "s"},
        {"role": "developer", "content": [{"type": "text", "text": "d"}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}},
            ],
        },
        {"role": "assistant", "content": "plain"},
        {"role": "user", "content": "next"},
        {"role": "assistant", "content": "ab"},
    ]


def test_function_calls_grouped_with_reasoning_and_text() -> None:
    request = {
        "model": "m",
        "input": [
            {"role": "user", "content": "weather?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [
                    {"type": "summary_text", "text": "think"},
                    {"type": "summary_text", "text": "more"},
                ],
            },
            {"role": "assistant", "content": "Let me check."},
            {
                "type": "function_call",
                "call_id": "call_a",
                "name": "w",
                "arguments": '{"c":"Paris"}',
            },
            {"type": "function_call", "call_id": "call_b", "name": "w", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_a", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "call_b",
                "output": [{"type": "input_text", "text": "rain"}],
            },
        ],
    }
    assert params(request)["messages"] == [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "w", "arguments": '{"c":"Paris"}'},
                },
                {"id": "call_b", "type": "function", "function": {"name": "w", "arguments": "{}"}},
            ],
            "reasoning_content": "think\n\nmore",
        },
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_b", "content": [{"type": "text", "text": "rain"}]},
    ]


def test_function_call_alone_has_null_content() -> None:
    request = {
        "model": "m",
        "input": [
            {"role": "user", "content": "x"},
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c", "output": "ok"},
        ],
    }
    assert params(request)["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }


def test_reasoning_item_starts_a_new_turn_after_text() -> None:
    request = {
        "model": "m",
        "input": [
            {"role": "assistant", "content": "first"},
            {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": "r"}]},
            {"role": "assistant", "content": "second"},
        ],
    }
    assert params(request)["messages"] == [
        {"role": "assistant", "content": "first"},
        {"role": "assistant", "content": "second", "reasoning_content": "r"},
    ]


def test_reasoning_with_only_encrypted_content_is_skipped_and_raw_text_used() -> None:
    request = {
        "model": "m",
        "input": [
            {"role": "user", "content": "x"},
            {"type": "reasoning", "id": "rs", "summary": [], "encrypted_content": "gAAA"},
            {
                "type": "reasoning",
                "id": "rs2",
                "summary": [],
                "content": [{"type": "reasoning_text", "text": "raw"}],
            },
            {"role": "assistant", "content": "y"},
        ],
    }
    assert params(request)["messages"][1] == {
        "role": "assistant",
        "content": "y",
        "reasoning_content": "raw",
    }


def test_reasoning_summary_preferred_over_raw_text() -> None:
    request = {
        "model": "m",
        "input": [
            {
                "type": "reasoning",
                "id": "rs",
                "summary": [{"type": "summary_text", "text": "short"}],
                "content": [{"type": "reasoning_text", "text": "long raw"}],
            },
            {"role": "assistant", "content": "y"},
        ],
    }
    assert params(request)["messages"] == [
        {"role": "assistant", "content": "y", "reasoning_content": "short"}
    ]


def test_scalar_parameters() -> None:
    out = params(
        {
            **REQ,
            "temperature": 0.3,
            "top_p": 0.9,
            "max_output_tokens": 512,
            "parallel_tool_calls": False,
            "user": "u1",
            "safety_identifier": "s1",
            "reasoning": {"effort": "high", "summary": "detailed"},
            "metadata": {"k": "v"},
            "store": False,
            "previous_response_id": "resp_0",
            "stream_options": {"include_obfuscation": False},
            "prompt_cache_retention": "24h",
            "truncation": "disabled",
            "include": ["reasoning.encrypted_content"],
            "background": False,
        }
    )
    assert out == {
        "model": "glm-4.6",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_completion_tokens": 512,
        "parallel_tool_calls": False,
        "user": "u1",
        "safety_identifier": "s1",
        "reasoning_effort": "high",
    }


def test_stream_asks_for_usage() -> None:
    out = params({**REQ, "stream": True})
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    assert "stream" not in params({**REQ, "stream": False})


def test_function_tools_and_choices() -> None:
    tools = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather",
            "parameters": {"type": "object", "properties": {"c": {"type": "string"}}},
            "strict": True,
        },
        {"type": "function", "name": "noop", "parameters": None, "strict": None},
    ]
    out = params({**REQ, "tools": tools, "tool_choice": "required"})
    assert out["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather",
                "parameters": {"type": "object", "properties": {"c": {"type": "string"}}},
                "strict": True,
            },
        },
        {"type": "function", "function": {"name": "noop"}},
    ]
    assert out["tool_choice"] == "required"
    for choice in ("auto", "none"):
        assert params({**REQ, "tools": tools, "tool_choice": choice})["tool_choice"] == choice
    named = params({**REQ, "tools": tools, "tool_choice": {"type": "function", "name": "noop"}})
    assert named["tool_choice"] == {"type": "function", "function": {"name": "noop"}}
    allowed = params(
        {
            **REQ,
            "tools": tools,
            "tool_choice": {
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "noop"}],
            },
        }
    )
    assert allowed["tool_choice"] == "required"
    assert [t["function"]["name"] for t in allowed["tools"]] == ["noop"]
    # only a web search allowed: no function tool, so no choice ("required" of nothing)
    searching = params(
        {
            **REQ,
            "tools": [*tools, {"type": "web_search"}],
            "tool_choice": {"type": "allowed_tools", "mode": "required",
                            "tools": [{"type": "web_search"}]},
        }
    )  # fmt: skip
    assert "tool_choice" not in searching and not searching.get("tools")
    assert "web_search_options" in searching


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ({"type": "text"}, {"type": "text"}),
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {
                "type": "json_schema",
                "name": "Person",
                "schema": {"type": "object"},
                "strict": True,
                "description": "a person",
            },
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "Person",
                    "schema": {"type": "object"},
                    "strict": True,
                    "description": "a person",
                },
            },
        ),
    ],
)
def test_text_format(fmt: dict[str, Any], expected: dict[str, Any]) -> None:
    out = params({**REQ, "text": {"format": fmt, "verbosity": "low"}})
    assert out["response_format"] == expected
    assert out["verbosity"] == "low"


def test_parse_sends_what_chat_understands() -> None:
    """``responses.parse(text_format=Model)`` sends openai's strict json_schema block."""
    from openai.lib._parsing._responses import type_to_text_format_param

    class Person(pydantic.BaseModel):
        name: str

    fmt = type_to_text_format_param(Person)
    out = params({**REQ, "text": {"format": fmt}})
    assert out["response_format"]["type"] == "json_schema"
    assert out["response_format"]["json_schema"]["name"] == "Person"
    assert out["response_format"]["json_schema"]["strict"] is True
    assert out["response_format"]["json_schema"]["schema"]["properties"]["name"]


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        (
            {"tools": [{"type": "web_search", "filters": {"allowed_domains": ["a.cn"]}}]},
            "tools[0].filters",
        ),
        ({"tools": [{"type": "file_search", "vector_store_ids": ["v"]}]}, "tools[0]"),
        ({"tools": [{"type": "code_interpreter", "container": {"type": "auto"}}]}, "tools[0]"),
        ({"tools": [{"type": "image_generation"}]}, "tools[0]"),
        ({"tools": [{"type": "mcp", "server_label": "x"}]}, "tools[0]"),
        ({"tools": [{"type": "computer_use_preview"}]}, "tools[0]"),
        ({"tool_choice": {"type": "web_search_preview"}}, "tool_choice"),
        ({"tool_choice": {"type": "mcp", "server_label": "x"}}, "tool_choice"),
        ({"background": True}, "background"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"some_new_param": 1}, "some_new_param"),
        ({"truncation": "auto"}, "truncation"),
        ({"context_management": [{"type": "compaction"}]}, "context_management"),
        (
            {
                "input": [
                    {"type": "item_reference", "id": "msg_1"},
                    {"role": "user", "content": "x"},
                ]
            },
            "input[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"type": "web_search_call", "id": "ws"}, {"role": "user", "content": "x"}]},
            "input[0]",
        ),
    ],
)
def test_unsupported_features_are_reported(extra: dict[str, Any], param: str) -> None:
    out, params_reported = reported({**REQ, **extra})
    assert params_reported == [param]
    assert "web_search" not in json.dumps(out.get("tools", []))  # dropped, never sent
    with pytest.raises(Unsupported) as raised:
        params({**REQ, **extra})
    assert raised.value.param == param
    assert raised.value.reason


@pytest.mark.parametrize(
    "include",
    [
        "web_search_call.action.sources",
        "web_search_call.results",
        "file_search_call.results",
        "message.input_image.image_url",
        "reasoning.encrypted_content",
    ],
)
def test_include_values_with_nothing_to_fill_are_accepted(include: str) -> None:
    """As OpenAI accepts them: a web_search tool (translated) with its sources asked for
    was refused under the error policy for "the web_search tool is not available"."""
    request = {**REQ, "tools": [{"type": "web_search"}], "include": [include]}
    out, where = reported(request)
    assert where == []
    assert "web_search_options" in out


def test_hosted_tool_dropped_function_tool_kept() -> None:
    out, where = reported(
        {**REQ, "tools": [{"type": "image_generation"}, {"type": "function", "name": "f"}]}
    )
    assert where == ["tools[0]"]
    assert out["tools"] == [{"type": "function", "function": {"name": "f"}}]


@pytest.mark.parametrize(
    ("request_", "error", "message"),
    [
        ({"input": "x"}, TypeError, "model"),
        ({**REQ, "input": 3}, TypeError, "input: must be"),
        ({**REQ, "input": ["x"]}, TypeError, "input[0]: must be an object"),
        ({**REQ, "input": [{"type": "foo"}]}, ValueError, "input[0].type: unknown item type 'foo'"),
        (
            {**REQ, "input": [{"role": "user", "content": "a"}, {"role": "boss", "content": "b"}]},
            ValueError,
            "input[1].role",
        ),
        (
            {**REQ, "input": [{"role": "user", "content": [{"type": "input_video"}]}]},
            ValueError,
            "input[0].content[0].type: unknown content type 'input_video'",
        ),
        ({**REQ, "input": [{"role": "user", "content": 5}]}, TypeError, "input[0].content"),
        (
            {**REQ, "input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            ValueError,
            "input[0].call_id: required",
        ),
        (
            {**REQ, "input": [{"type": "function_call_output", "call_id": "c", "output": 1}]},
            TypeError,
            "input[0].output",
        ),
        (
            {**REQ, "input": [{"type": "reasoning", "summary": [{"type": "x", "text": "t"}]}]},
            ValueError,
            "input[0].summary[0].type",
        ),
        ({**REQ, "tools": [{"type": "function"}]}, ValueError, "tools[0].name: required"),
        ({**REQ, "tools": {"type": "function"}}, TypeError, "tools: must be a list"),
        ({**REQ, "tool_choice": "maybe"}, ValueError, "tool_choice"),
        ({**REQ, "text": {"format": {"type": "xml"}}}, ValueError, "text.format.type"),
        (
            {**REQ, "text": {"format": {"type": "json_schema", "schema": {}}}},
            ValueError,
            "text.format.name: required",
        ),
        (
            {**REQ, "text": {"format": {"type": "json_schema", "name": "n"}}},
            ValueError,
            "text.format.schema",
        ),
        ({"model": "m"}, ValueError, "input"),
    ],
)
def test_malformed_requests_name_the_parameter(
    request_: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error) as raised:
        params(request_)
    assert message in str(raised.value)


def test_every_param_openai_sends_is_known() -> None:
    from openai.types.responses.response_create_params import ResponseCreateParamsBase

    assert set(ResponseCreateParamsBase.__annotations__) | {"stream"} <= RESPONSES_PARAMS


# --------------------------------------------------------------------------- responses


def completion(message: dict[str, Any], finish: str = "stop", usage: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "glm-4.6",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def respond(chat: dict[str, Any], request: Any = None, **kw: Any) -> dict[str, Any]:
    return response_from_chat(
        chat,
        request=request or REQ,
        response_id="resp_1",
        created_at=1700000000.0,
        item_ids=ids(),
        **kw,
    )


USAGE = {
    "prompt_tokens": 10,
    "completion_tokens": 20,
    "total_tokens": 30,
    "prompt_tokens_details": {"cached_tokens": 4},
    "completion_tokens_details": {"reasoning_tokens": 7},
}


def test_text_response() -> None:
    out = respond(completion({"content": "Hello!"}, usage=USAGE), completed_at=1700000001.0)
    parsed = valid(out)
    assert parsed.output_text == "Hello!"
    assert parsed.status == "completed"
    assert parsed.completed_at == 1700000001.0
    assert out["output"] == [
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": "Hello!", "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert out["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4, "cache_write_tokens": 0},
        "output_tokens": 20,
        "output_tokens_details": {"reasoning_tokens": 7},
        "total_tokens": 30,
    }
    assert parsed.usage is not None and parsed.usage.input_tokens_details.cached_tokens == 4


def test_response_echoes_request() -> None:
    request = {
        "model": "glm-4.6",
        "input": "x",
        "instructions": "sys",
        "tools": [{"type": "function", "name": "f", "parameters": {}, "strict": True}],
        "tool_choice": {"type": "function", "name": "f"},
        "temperature": 0.2,
        "top_p": 0.5,
        "max_output_tokens": 99,
        "parallel_tool_calls": False,
        "previous_response_id": "resp_0",
        "store": False,
        "metadata": {"a": "b"},
        "text": {"format": {"type": "json_object"}},
        "reasoning": {"effort": "low"},
        "user": "u",
    }
    parsed = valid(respond(completion({"content": "{}"}), request))
    assert parsed.model == "glm-4.6"
    assert parsed.instructions == "sys"
    assert parsed.tools[0].type == "function"
    assert parsed.tool_choice.type == "function"  # type: ignore[union-attr]
    assert (parsed.temperature, parsed.top_p, parsed.max_output_tokens) == (0.2, 0.5, 99)
    assert parsed.parallel_tool_calls is False
    assert parsed.previous_response_id == "resp_0"
    assert parsed.metadata == {"a": "b"}
    assert parsed.text is not None and parsed.text.format is not None
    assert parsed.text.format.type == "json_object"
    assert parsed.reasoning is not None and parsed.reasoning.effort == "low"
    assert parsed.user == "u"
    assert parsed.to_dict()["store"] is False
    defaults = valid(respond(completion({"content": "x"})))
    assert defaults.tool_choice == "auto"
    assert defaults.tools == []
    assert defaults.parallel_tool_calls is True
    assert defaults.text is not None and defaults.text.format is not None
    assert defaults.text.format.type == "text"
    assert defaults.completed_at is None


def test_tool_calls_and_reasoning() -> None:
    chat = completion(
        {
            "content": None,
            "reasoning_content": "I should call it.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
            ],
        },
        finish="tool_calls",
    )
    out = respond(chat)
    parsed = valid(out)
    assert [item.type for item in parsed.output] == ["reasoning", "function_call", "function_call"]
    assert out["output"][0] == {
        "id": "rs_1",
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": "I should call it."}],
    }
    assert out["output"][1] == {
        "id": "fc_2",
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": "{}",
        "status": "completed",
    }
    assert out["output"][2]["call_id"] == "call_4"  # no id from the provider: one is made
    assert parsed.status == "completed"
    assert parsed.usage is None


@pytest.mark.parametrize(
    ("finish", "reason"),
    [
        ("length", "max_output_tokens"),
        ("content_filter", "content_filter"),
        ("sensitive", "content_filter"),
        ("model_context_window_exceeded", "max_output_tokens"),
    ],
)
def test_cut_short_is_incomplete(finish: str, reason: str) -> None:
    parsed = valid(respond(completion({"content": "Once upon"}, finish=finish)))
    assert parsed.status == "incomplete"
    assert parsed.incomplete_details is not None
    assert parsed.incomplete_details.reason == reason
    assert parsed.output[-1].status == "incomplete"  # type: ignore[union-attr]


def test_refusal() -> None:
    parsed = valid(respond(completion({"content": None, "refusal": "No."})))
    message = parsed.output[0]
    assert message.type == "message"
    assert message.content[0].type == "refusal"


def test_output_messages_for_the_store() -> None:
    chat = completion(
        {
            "content": "Checking.",
            "reasoning_content": "hmm",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        }
    )
    assert output_messages(respond(chat)) == [
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
            "reasoning_content": "hmm",
        }
    ]


def test_response_output_fed_back_as_input() -> None:
    """Stateless continuation: the caller passes the output items back as input."""
    out = respond(
        completion(
            {
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            }
        )
    )
    request = {
        "model": "m",
        "input": [
            {"role": "user", "content": "go"},
            *out["output"],
            {"type": "function_call_output", "call_id": "c1", "output": "done"},
        ],
    }
    assert params(request)["messages"] == [
        {"role": "user", "content": "go"},
        *output_messages(out),
        {"role": "tool", "tool_call_id": "c1", "content": "done"},
    ]


# --------------------------------------------------------------------------- streams


def chunk(
    delta: dict[str, Any] | None = None, finish: Any = None, usage: Any = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "glm-4.6",
        "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def run_stream(
    chunks: list[dict[str, Any]], request: Any = None, text_format: Any = omit
) -> tuple[list[dict[str, Any]], ResponseEvents, ResponseStreamState[Any]]:
    writer = ResponseEvents(
        request or {**REQ, "stream": True},
        response_id="resp_1",
        created_at=1700000000.0,
        item_ids=ids(),
    )
    events = writer.start()
    for c in chunks:
        events += writer.chunk(c)
    events += writer.finish()
    state = feed(events, text_format)
    return events, writer, state


def feed(events: list[dict[str, Any]], text_format: Any = omit) -> ResponseStreamState[Any]:
    """Validate every event with openai's union and run openai's own accumulator over them."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=text_format)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    for event in events:
        parsed = EVENTS.validate_python(copy.deepcopy(event))
        assert parsed.type == event["type"]
        assert set(event) <= set(type(parsed).model_fields), event  # no stray fields
        state.handle_event(parsed)
    return state


def strip_parsed(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: strip_parsed(v) for k, v in value.items() if k not in ("parsed", "parsed_arguments")
        }
    if isinstance(value, list):
        return [strip_parsed(v) for v in value]
    return value


def final_of(state: ResponseStreamState[Any]) -> dict[str, Any]:
    completed = state._completed_response
    assert completed is not None, "openai's accumulator saw no response.completed"
    return strip_parsed(completed.to_dict(mode="json", exclude_unset=False))


def same(writer: ResponseEvents, state: ResponseStreamState[Any]) -> None:
    """openai's accumulator rebuilds our final Response three ways: from the completed
    event, from the ``output_item.done`` items, and (text, arguments) from the deltas."""
    ours: dict[str, Any] = valid(writer.response).to_dict(mode="json", exclude_unset=False)
    assert final_of(state) == ours
    done = [
        state._completed_output[i].to_dict(mode="json", exclude_unset=False)
        for i in sorted(state._completed_output)
    ]
    assert done == ours["output"]
    accumulated = snapshot_output(state)
    assert len(accumulated) == len(ours["output"])
    for item, final in zip(accumulated, ours["output"]):
        assert item.type == final["type"]
        if item.type == "message":
            assert [getattr(p, "text", None) for p in item.content] == [
                p.get("text") for p in final["content"]
            ]
        elif item.type == "function_call":
            assert (item.call_id, item.arguments) == (final["call_id"], final["arguments"])


def snapshot_output(state: ResponseStreamState[Any]) -> list[Any]:
    """What openai accumulated from the deltas themselves (not from the final response)."""
    snap = state._ResponseStreamState__current_snapshot  # type: ignore[attr-defined]
    return snap.output


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


def test_text_stream() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, finish="stop"),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ]
    events, writer, state = run_stream(chunks)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    delta = events[4]
    assert delta == {
        "type": "response.output_text.delta",
        "sequence_number": 4,
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "delta": "Hel",
        "logprobs": [],
    }
    assert events[6]["text"] == "Hello"
    assert events[0]["response"]["status"] == "in_progress"
    assert events[0]["response"]["output"] == []
    same(writer, state)
    final = valid(writer.response)
    assert final.output_text == "Hello"
    assert final.usage is not None and final.usage.total_tokens == 5
    assert snapshot_output(state)[0].content[0].text == "Hello"


def test_stream_matches_response_from_chat() -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "Let me "}),
        chunk({"reasoning_content": "think."}),
        chunk({"content": "Answer"}),
        chunk({}, finish="stop", usage=USAGE),
    ]
    _, writer, _ = run_stream(chunks)
    whole = respond(
        completion({"content": "Answer", "reasoning_content": "Let me think."}, usage=USAGE),
        {**REQ, "stream": True},
    )
    assert writer.response == whole


def test_reasoning_then_text_stream() -> None:
    chunks = [
        chunk({"role": "assistant", "reasoning_content": "Let me "}),
        chunk({"reasoning_content": "think."}),
        chunk({"content": "Answer"}),
        chunk({}, finish="stop", usage=USAGE),
    ]
    events, writer, state = run_stream(chunks)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"] == {"id": "rs_1", "type": "reasoning", "summary": []}
    assert events[6]["text"] == "Let me think."
    assert events[8]["item"]["summary"] == [{"type": "summary_text", "text": "Let me think."}]
    assert events[9]["output_index"] == 1
    same(writer, state)
    final = valid(writer.response)
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 7


def test_parallel_tool_calls_stream() -> None:
    chunks = [
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "time", "arguments": '{"tz":'},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": '"CET"}'}}]}),
        chunk({}, finish="tool_calls"),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ]
    events, writer, state = run_stream(chunks)
    assert types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert events[2]["item"] == {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_a",
        "name": "weather",
        "arguments": "",
        "status": "in_progress",
    }
    assert events[8]["arguments"] == '{"city":"Paris"}'
    final = valid(writer.response)
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name, c.arguments) for c in calls] == [
        ("call_a", "weather", '{"city":"Paris"}'),
        ("call_b", "time", '{"tz":"CET"}'),
    ]
    same(writer, state)
    assert [item.arguments for item in snapshot_output(state)] == [
        '{"city":"Paris"}',
        '{"tz":"CET"}',
    ]
    assert output_messages(writer.response)[0]["tool_calls"][1]["id"] == "call_b"


def test_interleaved_tool_call_deltas() -> None:
    chunks = [
        chunk(
            {"tool_calls": [{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{"}}]}
        ),
        chunk(
            {"tool_calls": [{"index": 1, "id": "b", "function": {"name": "g", "arguments": "["}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "]"}}]}, finish="tool_calls"),
    ]
    _, writer, state = run_stream(chunks)
    assert [i["arguments"] for i in writer.response["output"]] == ["{}", "[]"]
    same(writer, state)


def test_text_then_tool_call_and_whole_calls_in_one_chunk() -> None:
    """Zhipu's way: the calls arrive whole, in one chunk, after some text."""
    chunks = [
        chunk({"role": "assistant", "content": "Checking"}),
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}},
                    {"index": 1, "id": "c2", "function": {"name": "g", "arguments": "{}"}},
                ]
            },
            finish="tool_calls",
        ),
    ]
    events, writer, state = run_stream(chunks)
    same(writer, state)
    assert [i["type"] for i in writer.response["output"]] == [
        "message",
        "function_call",
        "function_call",
    ]
    # the message closes before the first call opens
    done_message = types(events).index("response.output_item.done")
    assert (
        done_message
        < [i for i, e in enumerate(events) if e["type"] == "response.output_item.added"][1]
    )


def test_length_stream_is_incomplete() -> None:
    chunks = [chunk({"content": "Once upon"}), chunk({}, finish="length")]
    events, writer, state = run_stream(chunks)
    assert events[-1]["type"] == "response.incomplete"
    done = [e for e in events if e["type"] == "response.output_item.done"]
    assert done[-1]["item"]["status"] == "incomplete"
    final = valid(writer.response)
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert state._completed_response is None  # openai: incomplete is not "completed"
    whole = respond(completion({"content": "Once upon"}, finish="length"), {**REQ, "stream": True})
    assert writer.response == whole


def test_usage_only_last_chunk_and_empty_stream() -> None:
    events, writer, state = run_stream(
        [chunk({"role": "assistant"}), chunk({}, finish="stop"), chunk(usage=USAGE)]
    )
    assert types(events) == ["response.created", "response.in_progress", "response.completed"]
    assert writer.response["output"] == []
    assert writer.response["usage"]["input_tokens_details"]["cached_tokens"] == 4
    same(writer, state)


def test_failed_stream() -> None:
    writer = ResponseEvents(REQ, response_id="resp_1", created_at=1.0, item_ids=ids())
    events = writer.start() + writer.chunk(chunk({"content": "par"}))
    events += writer.fail({"code": "provider_overloaded", "message": "busy"})
    feed(events)
    assert events[-1]["type"] == "response.failed"
    final = valid(writer.response)
    assert final.status == "failed"
    assert final.error is not None
    assert (final.error.code, final.error.message) == ("server_error", "busy")
    assert final.output[0].status == "incomplete"  # type: ignore[union-attr]
    with pytest.raises(RuntimeError):
        writer.chunk(chunk({"content": "more"}))


def test_refusal_stream() -> None:
    events, writer, state = run_stream([chunk({"refusal": "I can't"}), chunk({}, finish="stop")])
    assert "response.refusal.delta" in types(events)
    same(writer, state)
    assert writer.response == respond(
        completion({"content": None, "refusal": "I can't"}), {**REQ, "stream": True}
    )


@pytest.mark.parametrize("refusal_first", [True, False])
def test_a_refusal_and_text_in_one_message_keep_their_own_indexes(refusal_first: bool) -> None:
    """A refusal then text: the text had no ``content_part.added`` and streamed at the
    refusal's index 0, and openai's accumulator failed an assertion."""
    pieces = [chunk({"refusal": "I can't"}), chunk({"content": "but here"})]
    if not refusal_first:
        pieces.reverse()
    events, writer, state = run_stream([*pieces, chunk({}, finish="stop")])
    indexes = {
        e["type"]: e["content_index"] for e in events if e["type"].startswith("response.refusal")
    }
    text_indexes = {
        e["type"]: e["content_index"]
        for e in events
        if e["type"].startswith("response.output_text")
    }
    first, second = (0, 1) if refusal_first else (1, 0)
    assert set(indexes.values()) == {first} and set(text_indexes.values()) == {second}
    added = [e["part"]["type"] for e in events if e["type"] == "response.content_part.added"]
    kinds = ["refusal", "output_text"]
    assert added == (kinds if refusal_first else kinds[::-1])
    numbers = [e["sequence_number"] for e in events]
    assert numbers == sorted(numbers)
    same(writer, state)  # (openai's own accumulator reads it to the same response)
    (message,) = final_of(state)["output"]
    assert [part["type"] for part in message["content"]] == added


def test_stream_parse_with_text_format() -> None:
    """``responses.stream(text_format=Model)``: openai's accumulator parses our text."""

    class Person(pydantic.BaseModel):
        name: str
        age: int

    request = {
        **REQ,
        "stream": True,
        "text": {"format": {"type": "json_schema", "name": "Person", "schema": {}, "strict": True}},
    }
    chunks = [
        chunk({"content": '{"name": "Ada",'}),
        chunk({"content": ' "age": 36}'}, finish="stop"),
    ]
    _, _, state = run_stream(chunks, request, text_format=Person)
    completed = state._completed_response
    assert completed is not None
    assert completed.output_parsed == Person(name="Ada", age=36)


def test_chunk_before_start_starts() -> None:
    writer = ResponseEvents(REQ, response_id="r", created_at=1.0, item_ids=ids())
    events = writer.chunk(chunk({"content": "x"})) + writer.finish()
    feed(events)
    assert types(events)[:2] == ["response.created", "response.in_progress"]


# --------------------------------------------------------------------------- property


_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12)
_args = st.dictionaries(st.sampled_from("abc"), st.integers(), max_size=2).map(json.dumps)


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid chat conversation: every assistant tool call is answered by a tool message."""
    messages: list[dict[str, Any]] = []
    counter = itertools.count()
    for _ in range(draw(st.integers(1, 6))):
        role = draw(st.sampled_from(["system", "developer", "user", "assistant"]))
        if role != "assistant":
            if draw(st.booleans()):
                content: Any = draw(_text)
            else:
                content = [{"type": "text", "text": t} for t in draw(st.lists(_text, max_size=3))]
            messages.append({"role": role, "content": content})
            continue
        calls = [
            {
                "id": f"call_{next(counter)}",
                "type": "function",
                "function": {"name": draw(st.sampled_from(["f", "g"])), "arguments": draw(_args)},
            }
            for _ in range(draw(st.integers(0, 2)))
        ]
        text = draw(st.one_of(st.none(), _text)) if calls else draw(_text)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls:
            message["tool_calls"] = calls
        if draw(st.booleans()):
            message["reasoning_content"] = draw(_text)
        messages.append(message)
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": draw(_text)})
    return messages


def as_items(messages: list[dict[str, Any]], styles: list[bool]) -> list[dict[str, Any]]:
    """The conversation written as Responses input items (two spellings of each message)."""
    items: list[dict[str, Any]] = []
    for message, rich in zip(messages, styles):
        role = message["role"]
        if role == "tool":
            items.append(
                {
                    "type": "function_call_output",
                    "call_id": message["tool_call_id"],
                    "output": message["content"],
                }
            )
        elif role != "assistant":
            content = message["content"]
            if isinstance(content, list):
                content = [{"type": "input_text", "text": p["text"]} for p in content]
            item = {"role": role, "content": content}
            items.append({"type": "message", **item} if rich else item)
        else:
            if "reasoning_content" in message:
                items.append(
                    {
                        "type": "reasoning",
                        "id": "rs",
                        "summary": [{"type": "summary_text", "text": message["reasoning_content"]}],
                    }
                )
            if message["content"] is not None:
                if rich:
                    items.append(
                        {
                            "type": "message",
                            "id": "msg",
                            "role": "assistant",
                            "status": "completed",
                            "content": [
                                {
                                    "type": "output_text",
                                    "text": message["content"],
                                    "annotations": [],
                                }
                            ],
                        }
                    )
                else:
                    items.append({"role": "assistant", "content": message["content"]})
            for call in message.get("tool_calls", []):
                items.append(
                    {
                        "type": "function_call",
                        "id": "fc",
                        "call_id": call["id"],
                        "name": call["function"]["name"],
                        "arguments": call["function"]["arguments"],
                        "status": "completed",
                    }
                )
    return items


@settings(max_examples=200, deadline=None, derandomize=True)
@given(conversations(), st.lists(st.booleans(), min_size=20, max_size=20))
def test_conversation_round_trip(messages: list[dict[str, Any]], styles: list[bool]) -> None:
    request = {"model": "m", "input": as_items(messages, styles)}
    assert input_messages(request) == one_turn_each(messages)
    assert params(request)["messages"] == one_turn_each(messages)


def one_turn_each(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat form Responses items can tell apart: an assistant text followed by an
    assistant message of tool calls alone is one turn as items (a ``message`` item, then
    ``function_call`` items), so it comes back as one assistant message holding both."""
    out: list[dict[str, Any]] = []
    for message in messages:
        last = out[-1] if out else None
        if (
            last is not None
            and last["role"] == message["role"] == "assistant"
            and "tool_calls" not in last
            and message.get("content") is None
            and message.get("tool_calls")
        ):
            out[-1] = {**last, "tool_calls": message["tool_calls"]}
        else:
            out.append(message)
    return out


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("reasoning_content"), _text),
            st.tuples(st.just("content"), _text),
        ),
        max_size=8,
    ),
    st.sampled_from(["stop", "length", "content_filter"]),
)
def test_any_text_stream_rebuilds_in_openai(pieces: list[tuple[str, str]], finish: str) -> None:
    """Whatever order reasoning and text arrive in, openai's accumulator and we agree."""
    chunks = [chunk({key: value}) for key, value in pieces] + [chunk({}, finish=finish)]
    events, writer, state = run_stream(chunks)
    valid(writer.response)
    if finish == "stop":
        same(writer, state)
    else:
        assert events[-1]["type"] == "response.incomplete"
    text = "".join(v for k, v in pieces if k == "content")
    assert valid(writer.response).output_text == text


_delta_parts = st.fixed_dictionaries(
    {},
    optional={
        "content": st.sampled_from(["", "你好", "a"]),
        "reasoning_content": st.sampled_from(["", "想"]),
        "refusal": st.sampled_from(["", "no"]),
        "role": st.just("assistant"),
        "tool_calls": st.just(
            [
                {
                    "index": 0,
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "f", "arguments": "{}"},
                }
            ]
        ),
    },
)


@st.composite
def _typed_chunks(draw: Any) -> Any:
    from openai.types.chat import ChatCompletionChunk

    choices = [
        {
            "index": draw(st.sampled_from([0, 0, 0, 1])),
            "delta": draw(_delta_parts),
            "finish_reason": draw(st.sampled_from([None, None, None, "stop", "length"])),
        }
        for _ in range(draw(st.integers(0, 2)))
    ]
    body: dict[str, Any] = {**chunk(None), "choices": choices}
    if draw(st.integers(0, 5)) == 0:
        body["usage"] = USAGE
    return ChatCompletionChunk.model_validate(body)


@st.composite
def _text_chunk(draw: Any) -> Any:
    from openai.types.chat import ChatCompletionChunk

    delta = {"content": draw(st.sampled_from("ab"))}
    extra = draw(st.sampled_from([None, None, "refusal", "reasoning_content", "tool_calls"]))
    if extra == "tool_calls":
        delta[extra] = [{"index": 0, "id": "c", "function": {"name": "f", "arguments": ""}}]
    elif extra is not None:
        delta[extra] = "x"
    body = chunk(delta, finish=draw(st.sampled_from([None, None, None, "length"])))
    body["choices"][0]["index"] = draw(st.sampled_from([0, 0, 0, 1]))
    return ChatCompletionChunk.model_validate(body)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(_text_chunk(), _typed_chunks()), max_size=12))
def test_typed_chunks_give_the_frames_their_json_gives(chunks: list[Any]) -> None:
    """The event stream's shortcut for chunks that only continue the text writes the same
    frames (ids, sequence numbers, fields) as the chunks' JSON values take the long way."""
    from unittest import mock

    from llm_bridge import _responses_front
    from llm_bridge._responses_front import ResponseEventStream, ResponsesCall

    def frames(source: list[Any]) -> list[Any]:
        call = ResponsesCall(
            request={**REQ, "stream": True, "store": False},
            params={},
            extras={},
            response_id="resp_1",
            created_at=1700000000,
            history=[],
        )
        with (
            mock.patch.object(_responses_front, "new_id", ids()),
            mock.patch.object(_responses_front, "_now", lambda: 1700000001),
        ):
            return list(ResponseEventStream(iter(source), call))

    as_json = [c.model_dump(mode="json", exclude_none=True) for c in chunks]
    assert frames(chunks) == frames(as_json)
