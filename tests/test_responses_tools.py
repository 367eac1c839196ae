"""Responses tools beyond plain functions (issue 16): ``namespace`` tools and ``web_search``.

Codex CLI sends both every turn: its sub-agent tools as a ``namespace`` tool
(``multi_agent_v1``) and OpenAI's hosted ``web_search`` (docs/responses-tools.md). A
namespace's functions become chat functions named ``<namespace>__<name>`` and come back as
``function_call`` items carrying ``namespace`` and the plain ``name``, in answers, in
streams and in the history of later turns. ``web_search`` becomes chat completions'
``web_search_options``, which each provider's adapter turns into its own search (GLM's
``web_search`` tool, DashScope's ``enable_search``, Qianfan v2's ``web_search``) from the
``[web_search]`` table of its ``providers/*.toml``.

The translation tests are pure (plain dicts, openai's types validating what comes out);
the provider tests go through ``llm_bridge.OpenAI`` to the fakes.
"""

from __future__ import annotations

import json
import re
import warnings
from functools import partial
from typing import Any

import httpx
import openai
import pytest
from helpers import bridge, sent
from test_responses_translation import (
    REQ,
    chunk,
    ids,
    params,
    reported,
    run_stream,
    same,
    snapshot_output,
    types,
    valid,
)

import llm_bridge
from llm_bridge._responses import (
    input_messages,
    output_messages,
    response_from_chat,
)
from llm_bridge.testing import (
    FakeDashScope,
    FakeDashScopeCompatible,
    FakeQianfanV2,
    FakeZhipu,
    ToolCallSpec,
)

#: What Codex 0.171 sends (tests/test_gateway_codex.py), cut down: a plain function, its
#: sub-agent namespace and web search in its default "cached" mode.
EXEC = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command.",
    "strict": False,
    "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}},
}
AGENTS = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Tools for spawning and managing sub-agents.",
    "tools": [
        {
            "type": "function",
            "name": "close_agent",
            "description": "Close an agent.",
            "strict": False,
            "parameters": {
                "type": "object",
                "properties": {"target": {"type": "string"}},
                "required": ["target"],
            },
        },
        {
            "type": "function",
            "name": "spawn_agent",
            "description": "Spawn a sub-agent.",
            "parameters": {"type": "object", "properties": {"message": {"type": "string"}}},
        },
    ],
}
#: Typed Any: plain JSON handed to openai's typed methods, as a gateway client sends it.
WEB_SEARCH: Any = {"type": "web_search", "external_web_access": False}
CODEX_TOOLS: Any = [EXEC, AGENTS, WEB_SEARCH]
CODEX = {**REQ, "tools": CODEX_TOOLS}
CHAT_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

ZHIPU_KEY = "id.secret"
GLM_SEARCH = {"type": "web_search", "web_search": {"enable": True, "search_result": True}}


def completion(*calls: tuple[str, str, str], content: Any = None) -> dict[str, Any]:
    """A chat completion whose message makes ``(id, name, arguments)`` calls."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in calls
        ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "glm-4.6",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


def answer(request: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
    return response_from_chat(
        chat, request=request, response_id="resp_1", created_at=1.0, item_ids=ids()
    )


def function_names(out: dict[str, Any]) -> list[str]:
    return [tool["function"]["name"] for tool in out.get("tools", [])]


# --------------------------------------------------------------------------- namespaces


def test_codex_tools_become_chat_functions_and_a_web_search_without_reports() -> None:
    out, where = reported(CODEX)
    assert where == []  # nothing dropped any more
    assert function_names(out) == [
        "exec_command",
        "multi_agent_v1__close_agent",
        "multi_agent_v1__spawn_agent",
    ]
    close = out["tools"][1]["function"]
    assert close == {
        "name": "multi_agent_v1__close_agent",
        # The namespace's description is meant for the model: it leads each function's.
        "description": "Tools for spawning and managing sub-agents.\n\nClose an agent.",
        "parameters": AGENTS["tools"][0]["parameters"],
        "strict": False,
    }
    assert out["tools"][0]["function"]["name"] == "exec_command"  # plain ones untouched
    # external_web_access has no chat form (the provider searches its own index).
    assert out["web_search_options"] == {}


def test_a_namespaced_call_comes_back_with_namespace_and_plain_name() -> None:
    chat = completion(
        ("call_1", "multi_agent_v1__spawn_agent", '{"message":"hi"}'),
        ("call_2", "exec_command", '{"cmd":"ls"}'),
    )
    response = answer(CODEX, chat)
    spawn, run = response["output"]
    assert spawn == {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "spawn_agent",
        "namespace": "multi_agent_v1",
        "arguments": '{"message":"hi"}',
        "status": "completed",
    }
    assert run["name"] == "exec_command" and "namespace" not in run
    parsed = valid(response)  # openai's own type reads the namespace
    assert [(c.namespace, c.name) for c in parsed.output if c.type == "function_call"] == [
        ("multi_agent_v1", "spawn_agent"),
        (None, "exec_command"),
    ]
    assert parsed.tools[1].type == "namespace"  # echoed as sent
    # The store keeps the chat form: the same flattened name goes back to the provider.
    (turn,) = output_messages(response)
    assert [c["function"]["name"] for c in turn["tool_calls"]] == [
        "multi_agent_v1__spawn_agent",
        "exec_command",
    ]


def test_history_items_with_a_namespace_become_the_same_chat_name() -> None:
    """Codex sends the whole conversation back (store=false): its function_call items
    carry the namespace the answer gave them."""
    history = [
        {"type": "message", "role": "user", "content": "close it"},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "close_agent",
            "namespace": "multi_agent_v1",
            "arguments": '{"target":"a1"}',
        },
        {
            "type": "function_call_output",
            "call_id": "call_1",
            "name": "close_agent",  # openai's input item may name the tool: not needed
            "namespace": "multi_agent_v1",
            "output": "closed",
        },
    ]
    out = params({**CODEX, "input": history})
    user, assistant, tool = out["messages"]
    assert user == {"role": "user", "content": "close it"}
    assert assistant["tool_calls"] == [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "multi_agent_v1__close_agent", "arguments": '{"target":"a1"}'},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "closed"}
    assert input_messages({**CODEX, "input": history})[1] == assistant
    # A call whose namespace the request no longer declares keeps the default spelling;
    # a null namespace is a plain function.
    gone = [{**history[1], "namespace": "old_tools"}, {**history[2], "namespace": None}]
    out = params({**REQ, "input": [history[0], *gone]})
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "old_tools__close_agent"
    plain = [{**history[1], "namespace": None}, history[2]]
    out = params({**REQ, "input": [history[0], *plain]})
    assert out["messages"][1]["tool_calls"][0]["function"]["name"] == "close_agent"


def test_a_continued_conversation_sends_what_the_store_kept() -> None:
    """previous_response_id: input_messages + output_messages of turn one are the history
    of turn two, and agree with Codex's resent items."""
    first = {**CODEX, "input": "spawn one"}
    response = answer(first, completion(("call_1", "multi_agent_v1__spawn_agent", "{}")))
    stored = input_messages(first) + output_messages(response)
    result = {"type": "function_call_output", "call_id": "call_1", "output": "spawned a1"}
    by_store = params({**CODEX, "input": [result]}, history=stored)
    resent = [
        {"role": "user", "content": "spawn one"},
        *[{k: v for k, v in item.items() if k != "id"} for item in response["output"]],
        result,
    ]
    by_items = params({**CODEX, "input": resent})
    assert by_store["messages"] == by_items["messages"]
    assert by_store["messages"][1]["tool_calls"][0]["function"]["name"] == (
        "multi_agent_v1__spawn_agent"
    )


def test_flattened_names_are_valid_distinct_and_reversible() -> None:
    tools = [
        {"type": "function", "name": "crm__lookup"},  # a plain tool with the default spelling
        {"type": "namespace", "name": "crm", "tools": [{"type": "function", "name": "lookup"}]},
        # Two pairs that join to the same text.
        {"type": "namespace", "name": "a__b", "tools": [{"type": "function", "name": "c"}]},
        {"type": "namespace", "name": "a", "tools": [{"type": "function", "name": "b__c"}]},
        # Characters and lengths chat names cannot have.
        {"type": "namespace", "name": "my.tools", "tools": [{"type": "function", "name": "x y"}]},
        {"type": "namespace", "name": "n" * 40, "tools": [{"type": "function", "name": "m" * 40}]},
    ]
    request = {**REQ, "tools": tools}
    names = function_names(params(request))
    assert len(names) == len(set(names)) == 6
    assert all(CHAT_NAME.match(name) for name in names)
    assert names[0] == "crm__lookup" and names[1] != "crm__lookup"  # the plain tool keeps it
    assert names[2] == "a__b__c" and names[3] != "a__b__c"
    assert names == function_names(params(request))  # the same every time
    pairs = [(None, "crm__lookup"), ("crm", "lookup"), ("a__b", "c"), ("a", "b__c")]
    pairs += [("my.tools", "x y"), ("n" * 40, "m" * 40)]
    calls = [(f"call_{i}", name, "{}") for i, name in enumerate(names)]
    output = answer(request, completion(*calls))["output"]
    assert [(item.get("namespace"), item["name"]) for item in output] == pairs
    # ... and each comes back as the same chat name in the next turn.
    (turn,) = output_messages({"output": output, "tools": tools})
    assert [c["function"]["name"] for c in turn["tool_calls"]] == names


def test_a_call_to_an_undeclared_name_stays_plain() -> None:
    response = answer(CODEX, completion(("c", "multi_agent_v1__nothing", "{}")))
    (item,) = response["output"]
    assert item["name"] == "multi_agent_v1__nothing" and "namespace" not in item


def test_tool_choice_can_name_namespaced_functions() -> None:
    out = params(
        {
            **CODEX,
            "tool_choice": {
                "type": "function",
                "name": "spawn_agent",
                "namespace": "multi_agent_v1",
            },
        }
    )
    assert out["tool_choice"] == {
        "type": "function",
        "function": {"name": "multi_agent_v1__spawn_agent"},
    }
    assert "web_search_options" not in out  # a forced function is not a search
    allowed = {
        "type": "allowed_tools",
        "mode": "auto",
        "tools": [{"type": "namespace", "name": "multi_agent_v1"}, {"type": "web_search"}],
    }
    out = params({**CODEX, "tool_choice": allowed})
    assert function_names(out) == ["multi_agent_v1__close_agent", "multi_agent_v1__spawn_agent"]
    assert out["web_search_options"] == {}
    allowed["tools"] = [
        {"type": "function", "name": "close_agent", "namespace": "multi_agent_v1"},
        {"type": "function", "name": "exec_command"},
    ]
    out = params({**CODEX, "tool_choice": allowed})
    assert function_names(out) == ["exec_command", "multi_agent_v1__close_agent"]
    assert "web_search_options" not in out  # left out of the allowed tools


def test_what_a_namespace_cannot_hold_is_reported_and_malformed_ones_raise() -> None:
    custom = {"type": "custom", "name": "apply_patch", "format": {"type": "text"}}
    out, where = reported(
        {**REQ, "tools": [{"type": "namespace", "name": "ns", "tools": [custom, EXEC]}]}
    )
    assert where == ["tools[0].tools[0]"] and function_names(out) == ["ns__exec_command"]
    with pytest.raises(TypeError, match=r"tools\[0\]\.tools: must be a list"):
        params({**REQ, "tools": [{"type": "namespace", "name": "ns"}]})
    with pytest.raises(ValueError, match=r"tools\[0\]\.name: required"):
        params({**REQ, "tools": [{"type": "namespace", "tools": []}]})
    with pytest.raises(TypeError, match=r"input\[0\]\.namespace: must be a string"):
        params(
            {
                **REQ,
                "input": [
                    {
                        "type": "function_call",
                        "call_id": "c",
                        "name": "f",
                        "arguments": "{}",
                        "namespace": 3,
                    }
                ],
            }
        )


# --------------------------------------------------------------------------- streams


def call_delta(
    index: int, name: str | None, arguments: str, id: str | None = None
) -> dict[str, Any]:
    function: dict[str, Any] = {"arguments": arguments}
    if name is not None:
        function["name"] = name
    delta: dict[str, Any] = {"index": index, "function": function}
    if id is not None:
        delta.update({"id": id, "type": "function"})
    return {"tool_calls": [delta]}


def test_a_streamed_namespaced_call_carries_its_namespace() -> None:
    chunks = [
        chunk({"role": "assistant", "content": "Closing it."}),
        chunk(call_delta(0, "multi_agent_v1__close_agent", "", id="call_a")),
        chunk(call_delta(0, None, '{"target":')),
        chunk(call_delta(0, None, '"a1"}')),
        chunk(call_delta(1, "exec_command", '{"cmd":"ls"}', id="call_b")),
        chunk({}, finish="tool_calls"),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}),
    ]
    events, writer, state = run_stream(chunks, {**CODEX, "stream": True})
    added = [e["item"] for e in events if e["type"] == "response.output_item.added"]
    assert added[1] == {
        "id": "fc_2",
        "type": "function_call",
        "call_id": "call_a",
        "name": "close_agent",
        "namespace": "multi_agent_v1",
        "arguments": "",
        "status": "in_progress",
    }
    done = [e["item"] for e in events if e["type"] == "response.output_item.done"]
    assert (done[1]["namespace"], done[1]["name"], done[1]["arguments"]) == (
        "multi_agent_v1",
        "close_agent",
        '{"target":"a1"}',
    )
    assert "namespace" not in done[2]
    same(writer, state)  # openai's accumulator rebuilds the same final response
    assert [getattr(i, "namespace", None) for i in snapshot_output(state)] == [
        None,
        "multi_agent_v1",
        None,
    ]
    calls = [i for i in valid(writer.response).output if i.type == "function_call"]
    assert [(c.namespace, c.name) for c in calls] == [
        ("multi_agent_v1", "close_agent"),
        (None, "exec_command"),
    ]
    (turn,) = output_messages(writer.response)
    assert turn["tool_calls"][0]["function"]["name"] == "multi_agent_v1__close_agent"


def test_a_name_that_arrives_after_the_call_opened_is_translated_too() -> None:
    chunks = [
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_a", "type": "function", "function": {"arguments": ""}}
                ]
            }
        ),
        chunk(call_delta(0, "multi_agent_v1__spawn_agent", "{}")),
        chunk({}, finish="tool_calls"),
    ]
    _, writer, state = run_stream(chunks, {**CODEX, "stream": True})
    (item,) = writer.response["output"]
    assert (item["namespace"], item["name"]) == ("multi_agent_v1", "spawn_agent")
    same(writer, state)


def test_a_providers_own_tool_calls_are_not_function_calls() -> None:
    """GLM may report its web search as a tool call of type web_search: never the caller's."""
    search = {"index": 0, "id": "ws_1", "type": "web_search", "web_search": {"query": "x"}}
    chunks = [
        chunk({"tool_calls": [search]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "stray"}}]}),
        chunk({"content": "Found it."}),
        chunk({}, finish="stop"),
    ]
    events, writer, state = run_stream(chunks, {**CODEX, "stream": True})
    assert "response.function_call_arguments.delta" not in types(events)
    assert [i["type"] for i in writer.response["output"]] == ["message"]
    same(writer, state)
    chat = completion(content="Found it.")
    chat["choices"][0]["message"]["tool_calls"] = [search]
    assert [i["type"] for i in answer(CODEX, chat)["output"]] == ["message"]


# --------------------------------------------------------------------------- web search


@pytest.mark.parametrize("kind", ["web_search", "web_search_preview", "web_search_2025_08_26"])
def test_web_search_becomes_web_search_options(kind: str) -> None:
    tool = {
        "type": kind,
        "search_context_size": "high",
        "user_location": {"type": "approximate", "city": "杭州", "country": "CN"},
    }
    out, where = reported({**REQ, "tools": [tool]})
    assert where == [] and "tools" not in out
    assert out["web_search_options"] == {
        "search_context_size": "high",
        "user_location": {"type": "approximate", "approximate": {"city": "杭州", "country": "CN"}},
    }


def test_what_web_search_cannot_do_is_reported() -> None:
    limited = {"type": "web_search", "filters": {"allowed_domains": ["gov.cn"]}}
    out, where = reported({**REQ, "tools": [limited]})
    assert where == ["tools[0].filters"] and "web_search_options" not in out  # not searched
    out, where = reported({**REQ, "tools": [WEB_SEARCH], "tool_choice": {"type": "web_search"}})
    assert where == ["tool_choice"] and out["web_search_options"] == {}  # the model decides
    out = params({**REQ, "tools": [WEB_SEARCH], "tool_choice": "none"})
    assert "web_search_options" not in out
    with pytest.raises(ValueError, match="search_context_size"):
        params({**REQ, "tools": [{"type": "web_search", "search_context_size": "huge"}]})


# --------------------------------------------------------------------------- providers


zhipu = partial(bridge, "zhipu", api_key=ZHIPU_KEY)


def test_codex_tools_reach_glm_as_functions_and_its_web_search() -> None:
    """End to end: a namespaced call answered, dispatched by namespace, sent back."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    fake.reply(tool_calls=[ToolCallSpec("multi_agent_v1__close_agent", {"target": "a1"})])
    fake.reply("Closed.")
    client = zhipu(fake)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no UnsupportedParameterWarning any more
        first = client.responses.create(model="glm-4.6", input="close a1", tools=CODEX_TOOLS)
    body = sent(fake)
    assert [t.get("function", {}).get("name") for t in body["tools"]] == [
        "exec_command",
        "multi_agent_v1__close_agent",
        "multi_agent_v1__spawn_agent",
        None,
    ]
    assert body["tools"][-1] == GLM_SEARCH and "web_search_options" not in body
    (call,) = [item for item in first.output if item.type == "function_call"]
    assert (call.namespace, call.name, json.loads(call.arguments)) == (
        "multi_agent_v1",
        "close_agent",
        {"target": "a1"},
    )
    # Codex's next turn: the whole conversation again, the call as it came back.
    resent: Any = [
        {"role": "user", "content": "close a1"},
        call.model_dump(exclude_none=True, exclude={"id", "status"}),
        {"type": "function_call_output", "call_id": call.call_id, "output": "closed"},
    ]
    second = client.responses.create(model="glm-4.6", input=resent, tools=CODEX_TOOLS, store=False)
    assert second.output_text == "Closed."
    assistant, result = sent(fake)["messages"][-2:]
    assert assistant["tool_calls"][0]["function"]["name"] == "multi_agent_v1__close_agent"
    assert result == {"role": "tool", "tool_call_id": call.call_id, "content": "closed"}


def test_a_streamed_namespaced_call_through_the_client() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    fake.reply(tool_calls=[ToolCallSpec("multi_agent_v1__spawn_agent", {"message": "go"})])
    with zhipu(fake).responses.stream(model="glm-4.6", input="spawn", tools=CODEX_TOOLS) as stream:
        added = [e.item for e in stream if e.type == "response.output_item.added"]
        final = stream.get_final_response()
    assert [(i.namespace, i.name) for i in added if i.type == "function_call"] == [
        ("multi_agent_v1", "spawn_agent")
    ]
    (call,) = [i for i in final.output if i.type == "function_call"]
    assert (call.namespace, call.name) == ("multi_agent_v1", "spawn_agent")


def test_a_stored_namespaced_call_continues_with_previous_response_id() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    fake.reply(
        tool_calls=[ToolCallSpec("multi_agent_v1__spawn_agent", {"message": "go"}, "call_9")]
    )
    fake.reply("Spawned.")
    client = zhipu(fake)
    first = client.responses.create(model="glm-4.6", input="spawn", tools=CODEX_TOOLS)
    result: Any = {"type": "function_call_output", "call_id": "call_9", "output": "a1"}
    client.responses.create(
        model="glm-4.6", input=[result], tools=CODEX_TOOLS, previous_response_id=first.id
    )
    assistant = sent(fake)["messages"][-2]
    assert assistant["tool_calls"][0]["function"]["name"] == "multi_agent_v1__spawn_agent"


def test_glm_searches_for_chat_callers_too_and_not_on_models_without_search() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("今天晴。").reply("不查。")
    client = zhipu(fake)
    messages: Any = [{"role": "user", "content": "杭州天气"}]
    client.chat.completions.create(model="glm-4.6", messages=messages, web_search_options={})
    assert sent(fake)["tools"] == [GLM_SEARCH]
    # glm-5-turbo's catalogue entry has no web_search: the policy applies, nothing is sent.
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="web_search_options"):
        client.chat.completions.create(
            model="glm-5-turbo", messages=messages, web_search_options={}
        )
    assert "tools" not in sent(fake) and "web_search_options" not in sent(fake)


def test_a_config_can_turn_the_providers_search_off() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("不查。")
    config = {
        "providers": {"zhipu": {"web_search": {"enabled": False}}},
        "policy": {"unsupported_params": "error"},
    }
    with pytest.raises(openai.BadRequestError, match="web_search"):
        zhipu(fake, config=config).responses.create(
            model="glm-4.6", input="今天新闻", tools=[WEB_SEARCH]
        )
    assert fake.requests == []


dashscope = partial(bridge, "dashscope", api_key="sk-ds")


def test_dashscope_compatible_mode_searches_with_enable_search() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("晴。")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # qwen-max has no Responses endpoint of its own: translated to chat.
        dashscope(fake).responses.create(model="qwen-max", input="天气", tools=CODEX_TOOLS)
    body = sent(fake)
    assert fake.requests[-1].url.path == "/compatible-mode/v1/chat/completions"
    assert body["enable_search"] is True and "web_search_options" not in body
    assert [t["function"]["name"] for t in body["tools"]][1:] == [
        "multi_agent_v1__close_agent",
        "multi_agent_v1__spawn_agent",
    ]


def test_dashscope_native_searches_with_the_enable_search_parameter() -> None:
    fake = FakeDashScope("sk-ds").reply("晴。")
    config = {"providers": {"dashscope": {"api": "native"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dashscope(fake, config=config).responses.create(
            model="qwen-max", input="天气", tools=[WEB_SEARCH]
        )
    assert fake.last_json["parameters"]["enable_search"] is True
    assert "web_search_options" not in fake.last_json["parameters"]


def test_qianfan_v2_searches_with_its_web_search_field() -> None:
    key = "bce-v3/ALTAK-abc/def"
    fake = FakeQianfanV2(api_key=key).reply("晴。")
    client = llm_bridge.OpenAI(
        provider="qianfan", api_key=key, http_client=httpx.Client(transport=fake.transport())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.responses.create(model="ernie-4.5-turbo-128k", input="天气", tools=[WEB_SEARCH])
    body = sent(fake)
    assert body["web_search"] == {"enable": True} and "web_search_options" not in body


def test_a_provider_without_a_search_rule_gets_openais_own_parameter() -> None:
    """An OpenAI-compatible provider of the user's takes web_search_options as it is."""
    bodies: list[dict[str, Any]] = []

    def answer_chat(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=completion(content="sunny"))

    config = {
        "providers": {
            "moonshot": {
                "protocol": "openai_compat",
                "base_url": "https://api.moonshot.cn/v1",
                "api_key": "sk-moon",
            }
        }
    }
    client = llm_bridge.OpenAI(
        config=config,
        provider="moonshot",
        http_client=httpx.Client(transport=httpx.MockTransport(answer_chat)),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = client.responses.create(model="kimi-k2", input="天气", tools=CODEX_TOOLS)
    assert response.output_text == "sunny"
    (body,) = bodies
    assert body["web_search_options"] == {}
    assert [t["function"]["name"] for t in body["tools"]][1:3] == [
        "multi_agent_v1__close_agent",
        "multi_agent_v1__spawn_agent",
    ]
