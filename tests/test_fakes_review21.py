"""Review 21 of the offline fakes, through ``llm_bridge.OpenAI``.

Stop words: every fake that is sent stop words (``stop`` on the OpenAI-shaped wires and
Qianfan v1, ``parameters.stop`` on DashScope's native one) ends its answer before the
earliest of them, with finish reason "stop" and usage counted on what it sent, in streams
and non-stream answers alike. DashScope compatible mode's Responses endpoint renders
scripted tool calls as ``function_call`` items (and their events) and echoes the last user
text when unscripted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

import httpx
import pytest
from helpers import bridge

from llm_bridge.testing import (
    FakeDashScope,
    FakeDashScopeCompatible,
    FakeQianfan,
    FakeQianfanV2,
    FakeZhipu,
    ToolCallSpec,
)
from llm_bridge.testing._fake import approx_tokens

TEXT = "alpha beta gamma delta epsilon zeta"
HELLO = [{"role": "user", "content": "x"}]


@dataclass(frozen=True)
class Wire:
    """One fake's wire: how to make the fake and a client, and where its stop words go."""

    make: Callable[[], Any]
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    sent_stop: Callable[[dict[str, Any]], Any] = lambda body: body["stop"]


def _native_stop(body: dict[str, Any]) -> Any:
    return body["parameters"]["stop"]


WIRES = {
    "zhipu": Wire(
        lambda: FakeZhipu(api_key="id.secret"),
        "glm-4-flash",
        {"provider": "zhipu", "api_key": "id.secret"},
    ),
    "qianfan-v2": Wire(
        FakeQianfanV2, "ernie-4.5-turbo-128k", {"provider": "qianfan", "api_key": "bce-v3/a/b"}
    ),
    "qianfan-v1": Wire(
        lambda: FakeQianfan("ak", "sk"),
        "ernie-3.5-8k",
        {
            "provider": "qianfan",
            "api_key": "ak",
            "secret_key": "sk",
            "config": {"providers": {"qianfan": {"api": "v1"}}},
        },
    ),
    "dashscope-native": Wire(
        FakeDashScope,
        "qwen-plus",
        {
            "provider": "dashscope",
            "api_key": "sk-test",
            "config": {"providers": {"dashscope": {"api": "native"}}},
        },
        _native_stop,
    ),
    "dashscope-compatible": Wire(
        FakeDashScopeCompatible, "qwen-plus", {"provider": "dashscope", "api_key": "sk-test"}
    ),
}
wires = pytest.mark.parametrize("wire", list(WIRES.values()), ids=list(WIRES))


def _chat_bodies(fake: Any) -> list[dict[str, Any]]:
    """The JSON bodies of the chat requests a fake received (not Qianfan's token calls)."""
    return [json.loads(r.content) for r in fake.requests if r.content and r.method == "POST"]


def _create(wire: Wire, fake: Any, **params: Any) -> Any:
    """One chat call to ``fake`` through a fresh ``llm_bridge.OpenAI``."""
    options = dict(wire.options)
    provider = options.pop("provider")
    client = bridge(provider, fake, **options)
    return client.chat.completions.create(model=wire.model, messages=HELLO, **params)


# -- stop words ------------------------------------------------------------------------------


@wires
def test_a_sent_stop_word_cuts_a_scripted_answer(wire: Wire):
    fake = wire.make()
    fake.reply(TEXT, chunk_size=3)
    answer = _create(wire, fake, stop=["gamma"])
    assert wire.sent_stop(_chat_bodies(fake)[-1]) == ["gamma"]
    choice = answer.choices[0]
    assert choice.message.content == "alpha beta "
    assert choice.finish_reason == "stop"
    assert answer.usage.completion_tokens == approx_tokens("alpha beta ")


@wires
def test_a_sent_stop_word_cuts_a_streamed_answer(wire: Wire):
    fake = wire.make()
    fake.reply(TEXT, chunk_size=3)
    chunks = list(
        _create(wire, fake, stop="gamma", stream=True, stream_options={"include_usage": True})
    )
    assert wire.sent_stop(_chat_bodies(fake)[-1]) in ("gamma", ["gamma"])
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert text == "alpha beta "
    assert [f for f in finishes if f] == ["stop"]
    usage = [c.usage for c in chunks if c.usage is not None][-1]
    assert usage.completion_tokens == approx_tokens("alpha beta ")


@pytest.mark.parametrize(
    "wire",
    [w for name, w in WIRES.items() if name != "zhipu"],
    ids=[n for n in WIRES if n != "zhipu"],
)
def test_the_earliest_of_several_stop_words_ends_the_echo(wire: Wire):
    """Earliest in the text, not first in the list (GLM takes one stop word: not sent)."""
    fake = wire.make()  # unscripted: the echo "(offline fake <model>) You said: x"
    answer = _create(wire, fake, stop=["said", "fake"])
    assert wire.sent_stop(_chat_bodies(fake)[-1]) == ["said", "fake"]
    assert answer.choices[0].message.content == "(offline "
    assert answer.choices[0].finish_reason == "stop"


@wires
def test_stop_words_not_in_the_answer_change_nothing(wire: Wire):
    fake = wire.make()
    fake.reply(TEXT).reply(TEXT)
    assert _create(wire, fake, stop=["omega"]).choices[0].message.content == TEXT
    chunks = list(_create(wire, fake, stop=["omega"], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT


def test_qianfan_v1_reports_a_stop_word_as_stop_not_normal():
    """v1's wire says ``normal`` for a natural end and ``stop`` for a stop word."""
    fake = FakeQianfan()
    url = "https://aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions"
    with httpx.Client(transport=fake.transport()) as client:
        fake.reply(TEXT).reply(TEXT)
        body = {"messages": HELLO, "stop": ["gamma"]}
        cut = client.post(url, json=body).json()
        whole = client.post(url, json={"messages": HELLO}).json()
    assert (cut["result"], cut["finish_reason"]) == ("alpha beta ", "stop")
    assert (whole["result"], whole["finish_reason"]) == (TEXT, "normal")


# -- DashScope compatible mode's Responses endpoint --------------------------------------------

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _responses_client(fake: FakeDashScopeCompatible) -> Any:
    return bridge("dashscope", fake, api_key="sk-test")


def test_responses_renders_a_scripted_tool_call_as_a_function_call_item():
    fake = FakeDashScopeCompatible()
    fake.tool_call("get_weather", {"city": "杭州"}, id="call_abc")
    response = _responses_client(fake).responses.create(
        model="qwen-plus", input="杭州天气", tools=[WEATHER]
    )
    assert fake.pending == []
    (call,) = response.output
    assert call.type == "function_call"
    assert (call.name, call.call_id, call.status) == ("get_weather", "call_abc", "completed")
    assert json.loads(call.arguments) == {"city": "杭州"}
    assert call.id and call.id.startswith("fc_")
    assert response.output_text == ""


def test_responses_puts_the_text_before_the_calls_it_made():
    fake = FakeDashScopeCompatible()
    fake.reply("查一下", tool_calls=[ToolCallSpec("get_weather", {"city": "北京"})])
    response = _responses_client(fake).responses.create(
        model="qwen-plus", input="北京天气", tools=[WEATHER]
    )
    assert [item.type for item in response.output] == ["message", "function_call"]
    assert response.output_text == "查一下"
    assert response.output[1].call_id.startswith("call_")


def test_responses_streams_a_function_call_in_openais_order():
    fake = FakeDashScopeCompatible()
    fake.tool_call("get_weather", {"city": "杭州"}, id="call_abc")
    client = _responses_client(fake)
    with client.responses.stream(model="qwen-plus", input="杭州天气", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    middle = kinds[2:-1]
    assert middle[0] == "response.output_item.added"
    assert set(middle[1:-2]) == {"response.function_call_arguments.delta"}
    assert middle[-2:] == ["response.function_call_arguments.done", "response.output_item.done"]
    added = events[2]
    assert added.item.type == "function_call"  # type: ignore[union-attr]
    assert added.item.arguments == ""  # type: ignore[union-attr]
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")  # type: ignore[union-attr]
    assert json.loads(deltas) == {"city": "杭州"}
    (call,) = final.output
    assert call.type == "function_call"
    assert (call.name, call.call_id) == ("get_weather", "call_abc")
    assert json.loads(call.arguments) == {"city": "杭州"}


def test_responses_echoes_the_last_user_text_when_unscripted():
    fake = FakeDashScopeCompatible()
    client = _responses_client(fake)
    first = client.responses.create(model="qwen-plus", input="西湖在哪里？")
    assert first.output_text == "(offline fake qwen-plus) You said: 西湖在哪里？"
    listed = [
        {"role": "user", "content": "早"},
        {"role": "assistant", "content": "早上好"},
        {"role": "user", "content": [{"type": "input_text", "text": "再详细一点"}]},
    ]
    second = client.responses.create(model="qwen-plus", input=listed)  # type: ignore[arg-type]
    assert second.output_text == "(offline fake qwen-plus) You said: 再详细一点"
    with client.responses.stream(model="qwen-plus", input="hi") as stream:
        streamed = stream.get_final_response()
    assert streamed.output_text == "(offline fake qwen-plus) You said: hi"


def test_a_tool_output_follow_up_echoes_the_conversations_user_text():
    fake = FakeDashScopeCompatible()
    fake.tool_call("get_weather", {"city": "杭州"})
    client = _responses_client(fake)
    asked = client.responses.create(model="qwen-plus", input="杭州天气", tools=[WEATHER])
    call = asked.output[0]
    assert call.type == "function_call"
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "晴"}
    answered = client.responses.create(
        model="qwen-plus", previous_response_id=asked.id, input=[result], tools=[WEATHER]
    )
    assert answered.output_text == "(offline fake qwen-plus) You said: 杭州天气"
