"""Qianfan v2 chat (issue 14): message repair, reasoning, token limits, usage, embeddings.

Histories OpenAI accepts are rewritten to v2's rules (system first, strict alternation with
tool results in the user slot, the last message from the user for ERNIE 4.5 / X1) and the
fake, which refuses what v2 refuses, must accept them; no text is ever dropped.
``reasoning_effort`` becomes ``enable_thinking`` / ``thinking_budget`` from the catalogue.
"""

from __future__ import annotations

import json
import warnings
from functools import partial
from typing import Any

import httpx
import pytest
from helpers import bridge, sent

from llm_bridge import BadRequestError, UnsupportedParameterWarning
from llm_bridge._config import builtin_providers
from llm_bridge._wire import Refused
from llm_bridge.adapters._params import ParamContext
from llm_bridge.adapters.qianfan import BRIDGE_REPLY, CONTINUE_PROMPT, repair_v2_messages
from llm_bridge.testing import FakeQianfanV2, Reply, ToolCallSpec
from llm_bridge.testing.qianfan import _check_v2_messages

KEY = "bce-v3/ALTAK-chatTest01/0a1b2c3d4e5f"
SPEC = builtin_providers()["qianfan"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


client = partial(bridge, "qianfan", api_key=KEY)


def ctx() -> ParamContext:
    return ParamContext(
        {}, provider="qianfan", url="https://x.invalid", policy="warn", rules={}, warn=print
    )


def texts(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False)


# ----------------------------------------------------------------------------- repair

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
CALL2 = {**CALL, "id": "call_2"}

CASES: dict[str, list[dict[str, Any]]] = {
    "system in the middle": [
        {"role": "user", "content": "u1"},
        {"role": "system", "content": "s-late"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "u2"},
    ],
    "consecutive users and developer": [
        {"role": "developer", "content": "dev"},
        {"role": "user", "content": "u1"},
        {"role": "user", "content": "u2"},
    ],
    "assistant first": [
        {"role": "assistant", "content": "a0"},
        {"role": "user", "content": "u1"},
    ],
    "trailing assistant": [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1"},
    ],
    "consecutive assistants with reasoning": [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "a1", "reasoning_content": "r1"},
        {"role": "assistant", "content": "a2", "reasoning_content": "r2"},
        {"role": "user", "content": "u2"},
    ],
    "parallel tool results then user": [
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": None, "tool_calls": [CALL, CALL2]},
        {"role": "tool", "tool_call_id": "call_1", "content": "t1"},
        {"role": "tool", "tool_call_id": "call_2", "content": "t2"},
        {"role": "user", "content": "u2"},
    ],
    "tool results last": [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "t1"},
    ],
    "orphan tool result": [
        {"role": "user", "content": "u1"},
        {"role": "tool", "tool_call_id": "call_9", "content": "t9"},
    ],
    "empty messages": [
        {"role": "user", "content": "  "},
        {"role": "user", "content": "u1"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "u2"},
    ],
    "multimodal merge": [
        {"role": "user", "content": "u1"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "u2"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ],
    "calls before any user": [
        {"role": "system", "content": "s"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "t1"},
        {"role": "user", "content": "u1"},
    ],
}


@pytest.mark.parametrize("last_user", [False, True], ids=["any-model", "ernie-4.5"])
@pytest.mark.parametrize("case", list(CASES))
def test_repaired_histories_obey_v2s_rules_and_keep_every_text(case: str, last_user: bool) -> None:
    messages = CASES[case]
    before = json.dumps(messages)
    repaired = repair_v2_messages(messages, ctx(), last_user=last_user)
    assert json.dumps(messages) == before  # the caller's messages are not changed
    model = "ernie-4.5-turbo-128k" if last_user else "deepseek-v3"
    assert _check_v2_messages(repaired, model) is None, repaired
    out = texts(repaired)
    for word in ("u1", "u2", "a0", "a1", "a2", "r1", "r2", "t1", "t2", "t9", "dev", "s-late"):
        if word in before:
            assert word in out, (word, repaired)
    assert sum(m["role"] == "system" for m in repaired) <= 1
    if any(m["role"] == "system" for m in repaired):
        assert repaired[0]["role"] == "system"


def test_repair_details() -> None:
    repaired = repair_v2_messages(CASES["system in the middle"], ctx(), last_user=False)
    assert repaired[0] == {"role": "system", "content": "s-late"}
    repaired = repair_v2_messages(CASES["trailing assistant"], ctx(), last_user=False)
    assert repaired[-1] == {"role": "user", "content": CONTINUE_PROMPT}
    repaired = repair_v2_messages(CASES["parallel tool results then user"], ctx(), last_user=False)
    assert [m["role"] for m in repaired] == [
        "user",
        "assistant",
        "tool",
        "tool",
        "assistant",
        "user",
    ]
    assert repaired[4] == {"role": "assistant", "content": BRIDGE_REPLY}
    repaired = repair_v2_messages(CASES["tool results last"], ctx(), last_user=False)
    assert repaired[-1]["role"] == "tool"  # allowed last on other models
    repaired = repair_v2_messages(CASES["tool results last"], ctx(), last_user=True)
    assert [m["role"] for m in repaired][-3:] == ["tool", "assistant", "user"]
    repaired = repair_v2_messages(
        CASES["consecutive assistants with reasoning"], ctx(), last_user=False
    )
    assert repaired[1] == {
        "role": "assistant",
        "content": "a1\n\na2",
        "reasoning_content": "r1\n\nr2",
    }
    repaired = repair_v2_messages(CASES["multimodal merge"], ctx(), last_user=False)
    (only,) = repaired
    assert only["content"][0] == {"type": "text", "text": "u1"}
    assert only["content"][2]["type"] == "image_url"


def test_a_history_without_any_user_text_is_refused_before_sending() -> None:
    with pytest.raises(Refused, match="at least one user message"):
        repair_v2_messages([{"role": "system", "content": "s"}], ctx(), last_user=False)


@pytest.mark.parametrize("case", list(CASES))
def test_through_the_front_door_the_fake_accepts_every_repaired_history(case: str) -> None:
    fake = FakeQianfanV2(KEY)
    c = client(fake)
    result = c.chat.completions.create(model="ernie-4.5-turbo-128k", messages=CASES[case])
    assert result.choices[0].message.content
    body = sent(fake)
    assert body["messages"][-1]["role"] == "user"  # ERNIE 4.5: last from the user


def test_the_fake_refuses_what_v2_refuses_unrepaired() -> None:
    fake = FakeQianfanV2(KEY)
    bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    response = httpx.Client(transport=fake.transport()).post(
        "https://qianfan.baidubce.com/v2/chat/completions",
        json={"model": "ernie-4.5-turbo-128k", "messages": bad},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_argument"
    tool_last = [
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": "", "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "t"},
    ]
    assert _check_v2_messages(tool_last, "deepseek-v3") is None
    assert _check_v2_messages(tool_last, "ernie-x1-turbo-32k") is not None
    assert _check_v2_messages([{"role": "assistant", "content": "a"}], "x") is not None
    assert _check_v2_messages([{"role": "user", "content": "u"}, HELLO_SYS], "x") is not None


HELLO_SYS = {"role": "system", "content": "late"}


# ----------------------------------------------------------------------------- reasoning


def test_effort_maps_to_enable_thinking_and_a_budget_on_a_hybrid_model() -> None:
    fake = FakeQianfanV2(KEY)
    c = client(fake)
    result = c.chat.completions.create(
        model="ernie-5.1", messages=[{"role": "user", "content": "hi"}], reasoning_effort="high"
    )
    body = sent(fake)
    assert body["enable_thinking"] is True and body["thinking_budget"] == 16384
    assert "reasoning_effort" not in body
    assert result.choices[0].message.reasoning_content == "(offline fake ernie-5.1 thinking)"


@pytest.mark.parametrize(("effort", "budget"), [("low", 2048), ("medium", 8192), ("max", 32768)])
def test_budgets_follow_the_table_capped_by_the_model(effort: str, budget: int) -> None:
    fake = FakeQianfanV2(KEY)
    client(fake).chat.completions.create(
        model="ernie-5.1", messages=[{"role": "user", "content": "hi"}], reasoning_effort=effort
    )
    assert sent(fake)["thinking_budget"] == budget


def test_the_budget_stays_under_half_of_max_completion_tokens_sent_as_max_tokens() -> None:
    fake = FakeQianfanV2(KEY)
    client(fake).chat.completions.create(
        model="ernie-5.1",
        messages=[{"role": "user", "content": "hi"}],
        reasoning_effort="high",
        max_completion_tokens=1000,
    )
    body = sent(fake)
    assert body["max_tokens"] == 1000 and "max_completion_tokens" not in body
    assert body["thinking_budget"] == 500


def test_max_tokens_is_sent_as_is() -> None:
    fake = FakeQianfanV2(KEY)
    client(fake).chat.completions.create(
        model="ernie-4.5-turbo-32k", messages=[{"role": "user", "content": "hi"}], max_tokens=77
    )
    assert sent(fake)["max_tokens"] == 77


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_none_turns_a_hybrid_model_off(effort: str) -> None:
    fake = FakeQianfanV2(KEY)
    result = client(fake).chat.completions.create(
        model="ernie-5.1", messages=[{"role": "user", "content": "hi"}], reasoning_effort=effort
    )
    body = sent(fake)
    assert body["enable_thinking"] is False and "thinking_budget" not in body
    assert getattr(result.choices[0].message, "reasoning_content", None) is None


def test_an_always_thinking_model_refuses_none_before_sending() -> None:
    fake = FakeQianfanV2(KEY)
    with pytest.raises(BadRequestError, match="always thinks"):
        client(fake).chat.completions.create(
            model="ernie-x1-turbo-32k",
            messages=[{"role": "user", "content": "hi"}],
            reasoning_effort="none",
        )
    assert fake.requests == []


def test_an_always_thinking_model_without_a_budget_gets_only_the_switch() -> None:
    fake = FakeQianfanV2(KEY)
    client(fake).chat.completions.create(
        model="ernie-x1-turbo-32k",
        messages=[{"role": "user", "content": "hi"}],
        reasoning_effort="high",
    )
    body = sent(fake)
    assert body["enable_thinking"] is True and "thinking_budget" not in body


def test_effort_on_a_model_that_does_not_think_is_dropped_with_a_warning() -> None:
    fake = FakeQianfanV2(KEY)
    with pytest.warns(UnsupportedParameterWarning, match="not a thinking model"):
        client(fake).chat.completions.create(
            model="ernie-4.5-turbo-128k",
            messages=[{"role": "user", "content": "hi"}],
            reasoning_effort="high",
        )
    body = sent(fake)
    assert "reasoning_effort" not in body and "enable_thinking" not in body


def test_effort_on_an_uncatalogued_model_is_passed_on_as_v2_documents_it() -> None:
    fake = FakeQianfanV2(KEY)
    client(fake).chat.completions.create(
        model="deepseek-v3.1-250821",
        messages=[{"role": "user", "content": "hi"}],
        reasoning_effort="low",
    )
    assert sent(fake)["reasoning_effort"] == "low"


@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
def test_a_forced_tool_call_turns_thinking_off_on_a_hybrid_model(choice: Any) -> None:
    fake = FakeQianfanV2(KEY)
    with pytest.warns(UnsupportedParameterWarning, match="thinking was turned off"):
        client(fake).chat.completions.create(
            model="ernie-5.1",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
            tool_choice=choice,
            reasoning_effort="high",
        )
    body = sent(fake)
    assert body["enable_thinking"] is False and "thinking_budget" not in body
    assert body["tool_choice"] == choice


def test_a_forced_tool_call_on_an_always_thinking_model_is_sent_as_auto() -> None:
    fake = FakeQianfanV2(KEY)
    with pytest.warns(UnsupportedParameterWarning, match="sent as 'auto'"):
        client(fake).chat.completions.create(
            model="ernie-x1.1",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
            tool_choice="required",
        )
    assert sent(fake)["tool_choice"] == "auto"


def test_under_the_error_policy_a_forced_tool_call_with_thinking_is_refused() -> None:
    fake = FakeQianfanV2(KEY)
    c = client(fake, config={"policy": {"unsupported_params": "error"}})
    with pytest.raises(BadRequestError, match="thinking mode"):
        c.chat.completions.create(
            model="ernie-5.1",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
            tool_choice="required",
            reasoning_effort="high",
        )
    assert fake.requests == []


def test_forced_tool_call_without_thinking_is_sent_unchanged() -> None:
    fake = FakeQianfanV2(KEY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client(fake).chat.completions.create(
            model="ernie-5.1",
            messages=[{"role": "user", "content": "weather?"}],
            tools=[WEATHER],
            tool_choice="required",
        )
    body = sent(fake)
    assert body["tool_choice"] == "required" and "enable_thinking" not in body


def test_reasoning_content_comes_back_on_stream_deltas() -> None:
    fake = FakeQianfanV2(KEY).then(Reply("答案", reasoning_content="先想一想", chunk_size=2))
    stream = client(fake).chat.completions.create(
        model="ernie-x1.1", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    reasoning, content = "", ""
    for chunk in stream:
        for choice in chunk.choices:
            reasoning += getattr(choice.delta, "reasoning_content", None) or ""
            content += choice.delta.content or ""
    assert (reasoning, content) == ("先想一想", "答案")


def test_reasoning_content_and_tool_calls_on_a_message() -> None:
    fake = FakeQianfanV2(KEY).then(
        Reply(
            reasoning_content="要查天气",
            tool_calls=(ToolCallSpec("get_weather", {"city": "北京"}),),
        )
    )
    result = client(fake).chat.completions.create(
        model="ernie-x1.1", messages=[{"role": "user", "content": "北京天气"}], tools=[WEATHER]
    )
    message = result.choices[0].message
    assert message.reasoning_content == "要查天气"
    assert message.tool_calls and message.tool_calls[0].function.name == "get_weather"
    assert result.choices[0].finish_reason == "tool_calls"


# ----------------------------------------------------------------------------- usage


def test_cached_tokens_are_reported_in_usage() -> None:
    fake = FakeQianfanV2(KEY, prompt_cache=True)
    c = client(fake)
    history = [
        {"role": "system", "content": "你是一个乐于助人的助手。" * 20},
        {"role": "user", "content": "第一个问题"},
    ]
    first = c.chat.completions.create(model="ernie-4.5-turbo-128k", messages=history)
    assert first.usage is not None and first.usage.prompt_tokens_details is None
    history += [
        {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "第二个问题"},
    ]
    second = c.chat.completions.create(model="ernie-4.5-turbo-128k", messages=history)
    details = second.usage.prompt_tokens_details if second.usage else None
    assert details is not None and details.cached_tokens and details.cached_tokens > 0
    assert details.cached_tokens < second.usage.prompt_tokens  # type: ignore[union-attr]


def test_v2_finish_reason_is_stop_and_the_older_normal_still_maps_to_stop() -> None:
    fake = FakeQianfanV2(KEY).reply("a").reply("b", finish_reason="normal")
    c = client(fake)
    assert (
        c.chat.completions.create(model="ernie-5.1", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .finish_reason
        == "stop"
    )
    assert (
        c.chat.completions.create(model="ernie-5.1", messages=[{"role": "user", "content": "x"}])
        .choices[0]
        .finish_reason
        == "stop"
    )


# ----------------------------------------------------------------------------- catalogue


@pytest.mark.parametrize(
    "model",
    [
        "ernie-4.5-turbo-128k",
        "ernie-4.5-turbo-32k",
        "ernie-4.5-turbo-vl",
        "ernie-x1-turbo-32k",
        "ernie-x1.1",
    ],
)
def test_ernie_45_and_x1_are_marked_for_the_last_user_turn_rule(model: str) -> None:
    info = SPEC.model(model)
    assert info is not None and info.supports("last_user_turn")


def test_the_catalogue_has_the_current_models_with_prices_and_thinking_data() -> None:
    for name in ("ernie-5.1", "ernie-5.0", "ernie-5.0-thinking-preview", "ernie-x1-turbo-32k"):
        info = SPEC.model(name)
        assert info is not None and info.v2_model and info.thinking is not None
        assert info.input_price is not None and info.output_price is not None
    assert SPEC.iam_token_url == "https://iam.bj.baidubce.com/v1/BCE-BEARER/token"
    assert SPEC.endpoints[0].api == "v2"  # the default
    retired = [n for n, m in SPEC.models.items() if m.retired]
    assert "ernie-4.0-8k-0613" in retired and "ernie-3.5-8k" not in retired
    for name in retired:
        successor = SPEC.models[name].successor
        assert successor and SPEC.model(successor) is not None
        assert SPEC.models[name].retired == "2026-08-31"


def test_embeddings_on_v2_are_sent_by_model_name() -> None:
    fake = FakeQianfanV2(KEY)
    result = client(fake).embeddings.create(model="bge-large-zh", input="你好")
    assert result.data[0].index == 0
    assert sent(fake) == {"model": "bge-large-zh", "input": "你好"}
    assert str(fake.requests[-1].url) == "https://qianfan.baidubce.com/v2/embeddings"


def _event(index: int, content: str, finish: Any = None) -> str:
    choice = {"index": index, "delta": {"role": "assistant", "content": content}}
    chunk = {
        "id": "as-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "ernie-4.5-turbo-128k",
        "choices": [{**choice, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


def test_a_stop_word_applied_here_ends_only_its_own_choice_of_a_stream() -> None:
    # v2 takes four stop words; the fifth is cut here, in each choice's own text.
    interleaved = [(0, "hello "), (1, "abc "), (0, "ST"), (1, "def "), (0, "OP tail")]
    interleaved += [(1, "ghi"), (0, ""), (1, "")]
    events = [
        _event(i, text, "stop" if n >= 6 else None) for n, (i, text) in enumerate(interleaved)
    ]
    fake = FakeQianfanV2().raw(
        200, "".join(events) + "data: [DONE]\n\n", {"content-type": "text/event-stream"}
    )
    stops = ["s1", "s2", "s3", "s4", "STOP"]
    stream = client(fake).chat.completions.create(
        model="ernie-4.5-turbo-128k",
        messages=[{"role": "user", "content": "hi"}],
        n=2,
        stream=True,
        stop=stops,
    )
    texts: dict[int, str] = {}
    finished: dict[int, str] = {}
    for chunk in stream:
        for choice in chunk.choices:
            texts[choice.index] = texts.get(choice.index, "") + (choice.delta.content or "")
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert fake.last_json["stop"] == stops[:4]
    assert texts == {0: "hello ", 1: "abc def ghi"}
    assert finished == {0: "stop", 1: "stop"}


def test_an_error_takes_qianfans_request_id_header() -> None:
    """Qianfan names its request id ``X-Baidu-Request-Id`` (protocols.md §2A.8), which was
    not read: an error without an id in its body had none."""
    body = (
        '{"error": {"code": "invalid_argument", "message": "bad", "type": "invalid_request_error"}}'
    )
    fake = FakeQianfanV2().raw(
        400, body, {"content-type": "application/json", "X-Baidu-Request-Id": "qf-req-1"}
    )
    with pytest.raises(BadRequestError) as raised:
        client(fake, max_retries=0).chat.completions.create(
            model="ernie-4.5-turbo-128k", messages=[{"role": "user", "content": "你好"}]
        )
    assert raised.value.request_id == "qf-req-1"
