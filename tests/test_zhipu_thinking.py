"""GLM thinking, interleaved reasoning, history repair, token limits and the implicit cache,
through the genuine openai client against the Zhipu fake (docs/providers/zhipu.md).

Both front doors: ``llm_bridge.OpenAI(provider="zhipu")`` and a plain ``openai.OpenAI``
given ``llm_bridge.http_client()``; assertions are on the JSON the fake received and on
what the caller reads back.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import helpers
import openai
import pytest
from helpers import HELLO, ZHIPU_ROOT, no_unsupported_warnings, upstream

import llm_bridge
from llm_bridge import BadRequestError, UnsupportedParameterWarning
from llm_bridge.testing import FakeZhipu, ToolCallSpec

KEY = "2f8cd1.Xy7QsEcReTpart"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "天气",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def bridge(f: FakeZhipu, **kwargs: Any) -> llm_bridge.OpenAI:
    return helpers.bridge("zhipu", f, api_key=KEY, **kwargs)


def plain(f: FakeZhipu, root: str = ZHIPU_ROOT) -> openai.OpenAI:
    bridged = llm_bridge.http_client(http_client=upstream(f), max_retries=0)
    return openai.OpenAI(base_url=root, api_key=KEY, http_client=bridged)


CLIENTS = pytest.mark.parametrize("door", ["bridge", "plain"])


def client(door: str, f: FakeZhipu) -> Any:
    return bridge(f) if door == "bridge" else plain(f)


def sent(f: FakeZhipu, door: str = "bridge", **params: Any) -> dict[str, Any]:
    params.setdefault("messages", HELLO)
    with no_unsupported_warnings():
        client(door, f).chat.completions.create(**params)
    return f.last_json


# --------------------------------------------------------------------------- reasoning_effort


@CLIENTS
@pytest.mark.parametrize(
    ("model", "effort", "thinking", "native"),
    [
        ("glm-4.5", "high", "enabled", None),  # up to GLM-5.1: the switch only
        ("glm-4.7", "none", "disabled", None),
        ("glm-5.1", "minimal", "disabled", None),
        ("glm-5.1", "medium", "enabled", None),
        ("glm-5.2", "none", "disabled", None),  # GLM-5.2: hybrid, takes reasoning_effort
        ("glm-5.2", "high", "enabled", "high"),
        ("glm-5.2", "low", "enabled", "high"),  # GLM's own reading of low: high
        ("glm-5.2", "xhigh", "enabled", "max"),
        ("glm-5.3", "max", "enabled", "max"),  # always thinks: low | high | max
        ("glm-5.3", "medium", "enabled", "high"),
        ("glm-5.3", "minimal", "enabled", "low"),
        ("glm-5.3-flash", "low", "enabled", "low"),
    ],
)
def test_reasoning_effort_maps_per_model_from_the_catalogue(
    door: str, model: str, effort: str, thinking: str, native: str | None
) -> None:
    body = sent(FakeZhipu(), door, model=model, reasoning_effort=effort)
    assert body["thinking"] == {"type": thinking}
    assert body.get("reasoning_effort") == native


@CLIENTS
@pytest.mark.parametrize("model", ["glm-5.3", "glm-5.3-flash"])
def test_none_on_a_model_that_always_thinks_is_refused_before_any_request(
    door: str, model: str
) -> None:
    f = FakeZhipu()
    with pytest.raises(openai.BadRequestError, match=r"always thinks.*\['low', 'high', 'max'\]"):
        client(door, f).chat.completions.create(
            model=model, messages=HELLO, reasoning_effort="none"
        )
    assert f.requests == []


def test_a_reasoning_model_without_levels_gets_no_thinking_field() -> None:
    body = sent(FakeZhipu(), model="glm-z1-air", reasoning_effort="high")
    assert "thinking" not in body and "reasoning_effort" not in body


def test_an_unknown_glm_model_gets_the_thinking_switch() -> None:
    assert sent(FakeZhipu(), model="glm-9-preview", reasoning_effort="none")["thinking"] == {
        "type": "disabled"
    }


def test_without_reasoning_effort_nothing_is_added() -> None:
    body = sent(FakeZhipu(), model="glm-5.3")
    assert "thinking" not in body and "reasoning_effort" not in body


@CLIENTS
def test_the_callers_thinking_in_extra_body_wins_key_by_key(door: str) -> None:
    extra = {"thinking": {"clear_thinking": False}}
    body = sent(FakeZhipu(), door, model="glm-5.2", reasoning_effort="high", extra_body=extra)
    assert body["thinking"] == {"type": "enabled", "clear_thinking": False}
    assert body["reasoning_effort"] == "high"


def test_the_callers_disabled_thinking_wins_and_drops_the_effort() -> None:
    extra = {"thinking": {"type": "disabled"}}
    body = sent(FakeZhipu(), model="glm-5.2", reasoning_effort="max", extra_body=extra)
    assert body["thinking"] == {"type": "disabled"}
    assert "reasoning_effort" not in body


def test_the_callers_own_disabling_on_glm_5_3_reaches_glm_and_its_1210() -> None:
    f = FakeZhipu()
    with pytest.raises(BadRequestError) as info:
        bridge(f, max_retries=0).chat.completions.create(
            model="glm-5.3", messages=HELLO, extra_body={"thinking": {"type": "disabled"}}
        )
    assert info.value.provider_code == "1210"
    assert "始终思考" in str(info.value)


@pytest.mark.filterwarnings("ignore::llm_bridge.CodingPlanWarning")
def test_the_coding_plan_root_takes_disabled_on_glm_5_3_and_still_thinks() -> None:
    f = FakeZhipu().reply("好", reasoning_content="想")
    c = plain(f, "https://open.bigmodel.cn/api/coding/paas/v4")
    result = c.chat.completions.create(
        model="glm-5.3", messages=HELLO, extra_body={"thinking": {"type": "disabled"}}
    )
    assert result.choices[0].message.reasoning_content == "想"  # type: ignore[attr-defined]
    assert f.requests[-1].url.path == "/api/coding/paas/v4/chat/completions"


def test_thinking_turned_off_means_no_reasoning_in_the_answer() -> None:
    f = FakeZhipu().reply("好", reasoning_content="想")
    result = bridge(f).chat.completions.create(
        model="glm-4.7", messages=HELLO, reasoning_effort="none"
    )
    assert getattr(result.choices[0].message, "reasoning_content", None) is None


# --------------------------------------------------------------------------- reasoning_content


@CLIENTS
def test_reasoning_content_is_on_the_message_and_on_stream_deltas(door: str) -> None:
    f = (
        FakeZhipu()
        .reply("答案", reasoning_content="先想想")
        .reply("答案", reasoning_content="先想想")
    )
    c = client(door, f)
    message = c.chat.completions.create(model="glm-5.1", messages=HELLO).choices[0].message
    assert message.reasoning_content == "先想想"  # type: ignore[attr-defined]
    stream = c.chat.completions.create(model="glm-5.1", messages=HELLO, stream=True)
    pieces = [
        getattr(chunk.choices[0].delta, "reasoning_content", None) or ""
        for chunk in stream
        if chunk.choices
    ]
    assert "".join(pieces) == "先想想"


@CLIENTS
@pytest.mark.parametrize("model", ["glm-4.7", "glm-5.2", "glm-5.3"])
def test_tool_loop_sends_the_reasoning_back_with_the_tool_results(door: str, model: str) -> None:
    f = FakeZhipu()
    f.reply(
        reasoning_content="要查天气", tool_calls=[ToolCallSpec("get_weather", {"city": "北京"})]
    )
    f.reply("北京晴", reasoning_content="看到结果")
    c = client(door, f)
    messages: list[Any] = [{"role": "user", "content": "北京天气？"}]
    first = c.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    call = first.choices[0].message.tool_calls[0]
    messages.append(first.choices[0].message)  # openai's object, as the docs show
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "晴"})
    second = c.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert second.choices[0].message.content == "北京晴"
    assistant = f.last_json["messages"][1]
    assert assistant["role"] == "assistant"
    assert assistant["reasoning_content"] == "要查天气"
    assert assistant["tool_calls"][0]["id"] == call.id
    assert "refusal" not in assistant and "provider" not in assistant


def test_the_fake_refuses_a_tool_call_message_without_reasoning_while_thinking() -> None:
    f = FakeZhipu()
    body = {
        "model": "glm-5.1",
        "messages": [
            {"role": "user", "content": "天气？"},
            {"role": "assistant", "content": None, "tool_calls": [_tool_call()]},
            {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
        ],
    }
    response = upstream(f).post(f"{ZHIPU_ROOT}/chat/completions", json=body)
    assert response.status_code == 400
    assert "reasoning_content is missing in assistant tool call message at index 1" in response.text


def _tool_call() -> dict[str, Any]:
    return {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"北京"}'},
    }


@CLIENTS
def test_history_without_reasoning_gets_an_empty_one_while_thinking(door: str) -> None:
    history = [
        {"role": "user", "content": "天气？"},
        {"role": "assistant", "content": "", "tool_calls": [_tool_call()]},
        {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
    ]
    body = sent(FakeZhipu(), door, model="glm-5.1", messages=history)
    assert body["messages"][1]["reasoning_content"] == ""
    assert body["messages"][1]["content"] is None  # GLM: empty content next to tool calls


def test_history_without_reasoning_is_left_alone_when_thinking_is_off() -> None:
    history = [
        {"role": "user", "content": "天气？"},
        {"role": "assistant", "content": None, "tool_calls": [_tool_call()]},
        {"role": "tool", "tool_call_id": "call_1", "content": "晴"},
    ]
    body = sent(FakeZhipu(), model="glm-5.1", messages=history, reasoning_effort="none")
    assert "reasoning_content" not in body["messages"][1]


# --------------------------------------------------------------------------- history repair


@CLIENTS
def test_developer_becomes_system(door: str) -> None:
    body = sent(
        FakeZhipu(),
        door,
        model="glm-4.7",
        messages=[{"role": "developer", "content": "简短"}, *HELLO],
    )
    assert body["messages"][0] == {"role": "system", "content": "简短"}


def test_a_conversation_without_a_user_message_sends_the_last_system_one_as_the_users() -> None:
    body = sent(
        FakeZhipu(),
        model="glm-4.7",
        messages=[
            {"role": "system", "content": "规则"},
            {"role": "developer", "content": "写一首诗"},
        ],
    )
    assert body["messages"] == [
        {"role": "system", "content": "规则"},
        {"role": "user", "content": "写一首诗"},
    ]


def test_an_empty_assistant_message_is_left_out_and_no_text_is_lost() -> None:
    messages = [
        {"role": "user", "content": "一"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "二"},
    ]
    body = sent(FakeZhipu(), model="glm-4.7", messages=messages)
    assert body["messages"] == [messages[0], messages[2]]


# --------------------------------------------------------------------------- tool_choice


@pytest.mark.parametrize("effort", [None, "high"])
def test_required_tool_choice_is_sent_as_auto_with_a_warning_thinking_or_not(
    effort: str | None,
) -> None:
    params: dict[str, Any] = {"model": "glm-5.1", "messages": HELLO, "tools": [WEATHER]}
    if effort:
        params["reasoning_effort"] = effort
    f = FakeZhipu()
    with pytest.warns(UnsupportedParameterWarning, match="tool_choice"):
        bridge(f).chat.completions.create(tool_choice="required", **params)
    assert f.last_json["tool_choice"] == "auto"


def test_required_tool_choice_under_policy_error_fails_before_sending() -> None:
    f = FakeZhipu()
    c = bridge(f, config={"policy": {"unsupported_params": "error"}})
    with pytest.raises(BadRequestError, match="tool_choice"):
        c.chat.completions.create(
            model="glm-5.1", messages=HELLO, tools=[WEATHER], tool_choice="required"
        )
    assert f.requests == []


# --------------------------------------------------------------------------- token limits


@CLIENTS
@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"max_completion_tokens": 300}, 300),
        ({"max_tokens": 200}, 200),
        ({"max_tokens": 500, "max_completion_tokens": 300}, 300),
        ({"max_tokens": 100, "max_completion_tokens": 300}, 100),
    ],
)
def test_glm_gets_max_tokens_the_smaller_when_both_are_given(
    door: str, given: dict[str, int], expected: int
) -> None:
    body = sent(FakeZhipu(), door, model="glm-4.7", **given)
    assert body["max_tokens"] == expected
    assert "max_completion_tokens" not in body


# --------------------------------------------------------------------------- cache


@CLIENTS
def test_cached_tokens_pass_through_to_usage_and_the_ledger_prices_them(door: str) -> None:
    f = FakeZhipu()
    c = bridge(f) if door == "bridge" else plain(f)
    system = {"role": "system", "content": "长长的系统提示" * 40}
    first = c.chat.completions.create(model="glm-4.7", messages=[system, *HELLO])
    assert first.usage.prompt_tokens_details is None
    second = c.chat.completions.create(
        model="glm-4.7", messages=[system, {"role": "user", "content": "再来"}]
    )
    details = second.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens == 140  # the system prompt
    if door == "bridge":
        record = c.usage.records()[-1]  # type: ignore[attr-defined]
        assert record.usage.prompt_tokens_details.cached_tokens == 140
        # glm-4.7: 2 CNY/M input, 0.4 cached, 8 output
        usage = second.usage
        expected = (
            Decimal(usage.prompt_tokens - 140) * 2
            + Decimal(140) * Decimal("0.4")
            + Decimal(usage.completion_tokens) * 8
        ) / 1_000_000
        assert record.cost_cny == expected


def test_every_chat_model_with_a_price_has_a_cached_price_or_a_reason() -> None:
    from llm_bridge._config import load_config

    spec = load_config(None).providers["zhipu"]
    for name in ("glm-4.5", "glm-4.6", "glm-4.7", "glm-5.1", "glm-4.5-air", "glm-4.6v"):
        assert spec.models[name].cached_input_price is not None, name


@pytest.mark.parametrize(
    ("messages", "text"),
    [
        ([{"role": "system", "content": "规则"}], "messages参数非法"),
        (
            [{"role": "user", "content": "一"}, {"role": "assistant", "content": ""}],
            "content和tool_calls 字段不能同时为空",
        ),
    ],
)
def test_the_fake_keeps_glms_message_rules(messages: list[Any], text: str) -> None:
    response = upstream(FakeZhipu()).post(
        f"{ZHIPU_ROOT}/chat/completions",
        json={"model": "glm-4.7", "messages": messages},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "1214"
    assert text in response.json()["error"]["message"]
