"""The Responses API through both front doors, translated to chat for Zhipu and Qianfan.

``client.responses.create/stream/parse/retrieve/delete`` and ``input_items.list`` run on
openai's own code; the provider (a fake speaking its wire) receives chat completions.
Each test checks what the provider received and what openai handed back: openai's
``Response`` types, its stream helper's events and accumulated final response, stored
responses for ``previous_response_id``.
"""

from __future__ import annotations

import asyncio
import json
import warnings
from functools import partial
from typing import Any

import httpx
import openai
import pytest
from helpers import bridge, by_door, door_client, sent
from openai.types.responses import Response
from pydantic import BaseModel

import llm_bridge
from llm_bridge.testing import FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu

KEY = "id.secret"
MODEL = "glm-4-flash"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "今天的天气",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


# --------------------------------------------------------------------------- create


@by_door
def test_create_answers_with_openais_response_from_a_chat_provider(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("西湖在杭州。")
    response = door_client(door, fake).responses.create(
        model=MODEL, instructions="简短回答。", input="西湖在哪里？", max_output_tokens=64
    )
    assert isinstance(response, Response)
    assert response.output_text == "西湖在杭州。"
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.usage is not None and response.usage.total_tokens > 0
    body = sent(fake)
    assert body["messages"] == [
        {"role": "system", "content": "简短回答。"},
        {"role": "user", "content": "西湖在哪里？"},
    ]
    assert body["max_tokens"] == 64  # GLM's name for the limit


@by_door
def test_a_length_cut_answer_is_incomplete(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("很长的", finish_reason="length")
    response = door_client(door, fake).responses.create(model=MODEL, input="写一首长诗")
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"


# --------------------------------------------------------------------------- stream


@by_door
def test_the_stream_helper_sees_openais_events_and_final_response(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("湖光山色，四季皆美。", chunk_size=2)
    with door_client(door, fake).responses.stream(model=MODEL, input="描述西湖") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert kinds.count("response.output_text.delta") >= 2
    assert "response.output_text.done" in kinds and "response.output_item.done" in kinds
    assert final.output_text == "湖光山色，四季皆美。"
    assert sent(fake)["stream"] is True


@by_door
def test_streamed_reasoning_arrives_as_summary_text(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("42", reasoning_content="先想一想。")
    with door_client(door, fake).responses.stream(model=MODEL, input="答案是？") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert "response.reasoning_summary_text.delta" in kinds
    reasoning = [item for item in final.output if item.type == "reasoning"]
    assert reasoning and reasoning[0].summary[0].text == "先想一想。"
    assert final.output_text == "42"


# --------------------------------------------------------------------------- tools


def run_tool_conversation(c: openai.OpenAI, *, chained: bool) -> tuple[Response, Response]:
    """Ask, get a function call, answer it; chained by previous_response_id, or by sending
    the whole input again (with store=False)."""
    question = [{"role": "user", "content": "北京天气怎么样？"}]
    first = c.responses.create(
        model=MODEL,
        input=question,
        tools=[WEATHER_TOOL],
        store=chained,  # type: ignore[list-item]
    )
    call = next(item for item in first.output if item.type == "function_call")
    result = {"type": "function_call_output", "call_id": call.call_id, "output": '{"晴": 25}'}
    if chained:
        second = c.responses.create(
            model=MODEL,
            previous_response_id=first.id,
            input=[result],  # type: ignore[list-item]
            tools=[WEATHER_TOOL],  # type: ignore[list-item]
        )
    else:
        history: list[Any] = [*question, *[item.model_dump() for item in first.output], result]
        second = c.responses.create(
            model=MODEL,
            input=history,
            tools=[WEATHER_TOOL],
            store=False,  # type: ignore[list-item]
        )
    return first, second


@pytest.mark.parametrize("chained", [True, False], ids=["previous_response_id", "full_input"])
@by_door
def test_a_tool_conversation_reaches_the_provider_as_chat(door: str, chained: bool) -> None:
    fake = FakeZhipu(api_key=KEY).tool_call("get_weather", {"city": "北京"}).reply("晴，25度。")
    first, second = run_tool_conversation(door_client(door, fake), chained=chained)
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "北京"}
    assert second.output_text == "晴，25度。"
    tools = sent(fake, 0)["tools"]
    assert tools[0]["function"]["name"] == "get_weather"
    messages = sent(fake, 1)["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["tool_calls"][0]["id"] == call.call_id
    assert messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": '{"晴": 25}'}


# --------------------------------------------------------------------------- store


@by_door
def test_stored_responses_can_be_retrieved_listed_and_deleted(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("好的")
    c = door_client(door, fake)
    made = c.responses.create(model=MODEL, input="记住这句话")
    assert c.responses.retrieve(made.id).output_text == "好的"
    items = c.responses.input_items.list(made.id)
    assert [item.type for item in items.data] == ["message"]
    c.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError, match="not found"):
        c.responses.retrieve(made.id)


@by_door
def test_an_unknown_previous_response_is_refused_before_any_request(door: str) -> None:
    fake = FakeZhipu(api_key=KEY)
    with pytest.raises(openai.BadRequestError, match=r"resp_nope.*not found"):
        door_client(door, fake).responses.create(
            model=MODEL, input="继续", previous_response_id="resp_nope"
        )
    assert fake.requests == []


def test_store_false_keeps_nothing() -> None:
    fake = FakeZhipu(api_key=KEY).reply("不留")
    c = door_client("bridge", fake)
    made = c.responses.create(model=MODEL, input="别存", store=False)
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(made.id)


# --------------------------------------------------------------------------- parse


class City(BaseModel):
    name: str
    country: str


@by_door
def test_parse_gives_the_pydantic_object(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply('{"name": "杭州", "country": "中国"}')
    parsed = door_client(door, fake).responses.parse(model=MODEL, input="杭州", text_format=City)
    assert parsed.output_parsed == City(name="杭州", country="中国")
    assert sent(fake)["response_format"] == {"type": "json_object"}  # emulated for GLM


# --------------------------------------------------------------------------- unsupported


#: A built-in tool no chat provider has (web_search has an equivalent: test_responses_tools).
CODE_INTERPRETER: Any = {"type": "code_interpreter", "container": {"type": "auto"}}


def test_a_built_in_tool_warns_and_is_not_sent() -> None:
    fake = FakeZhipu(api_key=KEY).reply("不算了")
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="code_interpreter"):
        door_client("bridge", fake).responses.create(
            model=MODEL, input="算一下", tools=[CODE_INTERPRETER]
        )
    assert "tools" not in sent(fake)


def test_with_the_error_policy_a_built_in_tool_is_refused_unsent() -> None:
    fake = FakeZhipu(api_key=KEY)
    strict = door_client("bridge", fake, config={"policy": {"unsupported_params": "error"}})
    with pytest.raises(openai.BadRequestError, match="code_interpreter"):
        strict.responses.create(model=MODEL, input="算一下", tools=[CODE_INTERPRETER])
    assert fake.requests == []


# --------------------------------------------------------------------------- async, Qianfan


@by_door
def test_async_create_and_stream(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("一").reply("二三", chunk_size=1)

    async def main() -> tuple[str, str]:
        c = door_client(door, fake, mode="async")
        made = await c.responses.create(model=MODEL, input="数一")
        async with c.responses.stream(model=MODEL, input="数二") as stream:
            async for _ in stream:
                pass
            final = await stream.get_final_response()
        return made.output_text, final.output_text

    assert asyncio.run(main()) == ("一", "二三")


def test_qianfan_v2_serves_responses_through_chat() -> None:
    key = "bce-v3/ALTAK-test/abcdef"
    fake = FakeQianfanV2(api_key=key).reply("文心一言在此。")
    c = llm_bridge.OpenAI(
        provider="qianfan", api_key=key, http_client=httpx.Client(transport=fake.transport())
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        response = c.responses.create(model="ernie-4.5-turbo-128k", input="你是谁？")
    assert response.output_text == "文心一言在此。"
    assert fake.requests[-1].url.path == "/v2/chat/completions"


# --------------------------------------------------------------------------- DashScope native


dashscope = partial(bridge, "dashscope", api_key="sk-ds")


def test_dashscope_serves_responses_itself_for_the_models_that_have_it() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("通义千问在此。").reply("第二轮。")
    c = dashscope(fake)
    first = c.responses.create(model="qwen-plus", input="你是谁？", temperature=2.0)
    assert first.output_text == "通义千问在此。"
    assert fake.requests[-1].url.path == "/compatible-mode/v1/responses"
    body = sent(fake)
    assert body["input"] == "你是谁？" and body["temperature"] == 1.99  # DashScope's range
    # The provider keeps the conversation: the id passes through, and retrieve works here.
    second = c.responses.create(model="qwen-plus", input="再说一遍", previous_response_id=first.id)
    assert sent(fake)["previous_response_id"] == first.id and second.output_text == "第二轮。"
    assert c.responses.retrieve(first.id).output_text == "通义千问在此。"
    assert c.usage.records()[0].usage.prompt_tokens > 0  # usage recorded


def test_dashscope_responses_stream_passes_through_to_openais_helper() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("一二三四", chunk_size=1)
    with dashscope(fake).responses.stream(model="qwen3-max", input="数数") as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()
    assert deltas == ["一", "二", "三", "四"] and final.output_text == "一二三四"
    assert fake.requests[-1].url.path == "/compatible-mode/v1/responses"


def test_dashscope_models_without_responses_are_translated_to_chat() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("老模型。")
    response = dashscope(fake).responses.create(model="qwen-max", input="你好")
    assert response.output_text == "老模型。"
    assert fake.requests[-1].url.path == "/compatible-mode/v1/chat/completions"


def test_dashscope_has_no_background_mode_per_the_policy() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("同步回答。")
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="background"):
        response = dashscope(fake).responses.create(model="qwen-plus", input="hi", background=True)
    assert response.output_text == "同步回答。" and "background" not in sent(fake)


def test_a_dashscope_responses_error_is_mapped() -> None:
    fake = FakeDashScopeCompatible("sk-ds").fail("rate_limit").fail("rate_limit")
    with pytest.raises(openai.RateLimitError):
        dashscope(fake).with_options(max_retries=1).responses.create(model="qwen-plus", input="hi")
    assert len(fake.requests) == 2


@pytest.mark.parametrize("copied", [False, True])
def test_websocket_modes_are_not_found_and_never_leave_the_process(copied: bool) -> None:
    c = door_client("bridge", FakeZhipu(api_key=KEY))
    if copied:
        c = c.with_options(timeout=5)
    with pytest.raises(openai.NotFoundError, match="Responses WebSocket mode"):
        c.responses.connect()
    with pytest.raises(openai.NotFoundError, match="the Realtime API"):
        c.realtime.connect(model="gpt-realtime")
    assert c.responses is c.responses  # built once, as openai builds it


def test_namespace_tools_are_translated_even_where_dashscope_serves_responses() -> None:
    """Codex's namespace tools are flattened by the translation; DashScope's own Responses
    endpoint is not known to take them, so such a request does not pass through."""
    fake = FakeDashScopeCompatible("sk-ds").reply("好的")
    namespace = {
        "type": "namespace",
        "name": "agents",
        "description": "sub-agents",
        "tools": [{"type": "function", "name": "spawn", "parameters": {"type": "object"}}],
    }
    dashscope(fake).responses.create(model="qwen-plus", input="开始", tools=[namespace])
    assert fake.requests[-1].url.path == "/compatible-mode/v1/chat/completions"
    assert [t["function"]["name"] for t in sent(fake)["tools"]] == ["agents__spawn"]
