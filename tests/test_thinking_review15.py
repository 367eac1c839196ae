"""Review 15: ``reasoning_effort`` and the thinking switch, as a caller meets them.

1. Qwen3.5 and later think unless told not to: a call that says nothing about thinking
   still gets the thinking-mode guards (streaming, no forced tool, no json_schema, a budget
   below the token limit).
2. An effort the provider's budget table lacks takes the nearest level it has: budgets
   never shrink as the effort rises.
3. ``n > 1`` on DashScope: served without thinking, and never sent where DashScope would
   answer one choice (with tools, or while thinking).
4. Qianfan v2: no ``thinking_budget`` when the token limit is too small for its minimum.
5. Null openai-only fields of appended assistant messages (and the ``.stream()`` helper's
   ``parsed`` / ``parsed_arguments``) do not reach GLM or Qianfan.

Every test goes through ``llm_bridge.OpenAI`` and a fake, and checks the wire and the
result.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import llm_bridge
from llm_bridge import BadRequestError, UnsupportedParameterWarning
from llm_bridge._config import load_config
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu
from llm_bridge.testing._script import Reply, ToolCallSpec

DS_KEY = "sk-test"
QF_KEY = "bce-v3/ALTAK-review15/0a1b2c3d4e5f"
ZP_KEY = "id.secret"
HELLO: Any = [{"role": "user", "content": "杭州"}]
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
#: A forced call of the one tool (the native API has no "required").
NAMED: Any = {"type": "function", "function": {"name": "weather"}}
APIS = pytest.mark.parametrize("api", ["compatible", "native"])


def client(provider: str, fake: Any, key: str, **options: Any) -> llm_bridge.OpenAI:
    """``llm_bridge.OpenAI`` for ``provider``, answered by ``fake``."""
    return llm_bridge.OpenAI(
        provider=provider,
        api_key=key,
        http_client=httpx.Client(transport=fake.transport()),
        **options,
    )


def dashscope(api: str = "compatible", **options: Any) -> tuple[Any, llm_bridge.OpenAI]:
    """A DashScope fake of the ``api``'s wire and a client answered by it."""
    if api == "native":
        fake: Any = FakeDashScope(DS_KEY)
        config = {"providers": {"dashscope": {"api": "native"}}, **options.pop("config", {})}
        return fake, client("dashscope", fake, DS_KEY, config=config, **options)
    fake = FakeDashScopeCompatible(DS_KEY)
    return fake, client("dashscope", fake, DS_KEY, **options)


def sent(api: str, body: Any) -> dict[str, Any]:
    """A request's parameters: the body (compatible) or its ``parameters`` (native)."""
    return body["parameters"] if api == "native" else body


def streamed(api: str, fake: Any) -> bool:
    """Whether the fake's last request streamed."""
    if api == "native":
        return fake.requests[-1].headers.get("X-DashScope-SSE") == "enable"
    return fake.last_json.get("stream") is True


def unsupported(caught: list[warnings.WarningMessage]) -> list[str]:
    """The texts of the UnsupportedParameterWarnings among ``caught``."""
    return [str(w.message) for w in caught if issubclass(w.category, UnsupportedParameterWarning)]


# ------------------------------------------------ 1. Qwen3.5 and later think by default

#: The catalogue's Qwen3.5-and-later hybrid models (qwen3.5-plus ... qwen3.8-flash).
QWEN35_HYBRIDS = sorted(
    name
    for name, info in load_config().provider("dashscope").models.items()
    if re.match(r"qwen3\.(\d+)-", name)
    and int(name.split(".")[1].split("-")[0]) >= 5
    and info.thinking == "hybrid"
)


def test_every_qwen35_hybrid_is_catalogued_as_thinking_by_default() -> None:
    assert {"qwen3.5-plus", "qwen3.6-flash", "qwen3.7-max", "qwen3.8-flash"} <= set(QWEN35_HYBRIDS)
    spec = load_config().provider("dashscope")
    assert [m for m in QWEN35_HYBRIDS if not spec.models[m].thinking_by_default] == []


@pytest.mark.parametrize("model", QWEN35_HYBRIDS)
def test_a_plain_call_to_a_qwen35_model_is_streamed_as_its_default_thinking_needs(
    model: str,
) -> None:
    fake, bridge = dashscope()
    fake.then(Reply(content="晴", reasoning_content="想一想"))
    answer = bridge.chat.completions.create(model=model, messages=HELLO)
    assert fake.last_json["stream"] is True  # the fake refuses a non-stream thinking call
    assert "enable_thinking" not in fake.last_json  # the model's default, as asked
    assert answer.choices[0].message.content == "晴"
    assert getattr(answer.choices[0].message, "reasoning_content", None) == "想一想"


@APIS
def test_a_forced_tool_call_on_a_qwen35_model_turns_its_default_thinking_off(api: str) -> None:
    fake, bridge = dashscope(api)
    fake.then(Reply(tool_calls=(ToolCallSpec("weather", {"city": "杭州"}),)))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = bridge.chat.completions.create(
            model="qwen3.6-plus", messages=HELLO, tools=TOOLS, tool_choice=NAMED
        )
    assert sent(api, fake.last_json)["enable_thinking"] is False
    assert unsupported(caught) == []  # only the model's default was switched off
    calls = answer.choices[0].message.tool_calls
    assert calls is not None and calls[0].function.name == "weather"


class Weather(BaseModel):
    city: str
    temp: int


@APIS
def test_parse_on_a_qwen35_model_is_served_without_thinking(api: str) -> None:
    fake, bridge = dashscope(api)
    fake.then(Reply(content='{"city": "杭州", "temp": 20}'))
    answer = bridge.chat.completions.parse(
        model="qwen3.5-plus", messages=HELLO, response_format=Weather
    )
    fields = sent(api, fake.last_json)
    assert fields["enable_thinking"] is False
    assert fields["response_format"]["type"] == "json_schema"
    assert answer.choices[0].message.parsed == Weather(city="杭州", temp=20)


@APIS
def test_a_token_limit_on_a_qwen35_model_bounds_its_default_thinking(api: str) -> None:
    fake, bridge = dashscope(api)
    answer = bridge.chat.completions.create(model="qwen3.7-plus", messages=HELLO, max_tokens=1000)
    fields = sent(api, fake.last_json)
    assert fields["thinking_budget"] == 500
    assert streamed(api, fake)
    assert answer.choices[0].message.content


def test_the_fake_holds_a_qwen35_request_without_enable_thinking_to_thinking_rules() -> None:
    """What the catalogue fix is checked against: DashScope's default for the model."""
    fake = FakeDashScopeCompatible(DS_KEY)
    http = httpx.Client(transport=fake.transport())
    url = f"{fake.base_url}/chat/completions"
    headers = {"Authorization": f"Bearer {DS_KEY}"}

    def post(**body: Any) -> httpx.Response:
        return http.post(url, headers=headers, json={"messages": HELLO, **body})

    assert post(model="qwen3.6-plus").status_code == 400  # thinking needs a stream
    assert post(model="qwen3.6-plus", enable_thinking=False).status_code == 200
    assert post(model="qwen-plus").status_code == 200  # commercial Qwen3: off by default
    forced = post(model="qwen3.6-plus", stream=True, tools=TOOLS, tool_choice="required")
    assert forced.status_code == 400
    assert "tool_choice" in forced.text


# ------------------------------------------------ 2. budgets follow the effort's rank


def test_efforts_beyond_the_budget_table_take_its_nearest_level() -> None:
    fake, bridge = dashscope()
    budgets = {}
    for effort in ("minimal", "low", "medium", "high", "xhigh", "max"):
        bridge.chat.completions.create(
            model="qwen3.8-max",
            messages=HELLO,
            reasoning_effort=effort,  # type: ignore[arg-type]  # ("max": GLM's top level)
        )
        budgets[effort] = fake.last_json["thinking_budget"]
    table = load_config().provider("dashscope").thinking_budgets
    assert budgets["xhigh"] == budgets["max"] == budgets["high"] == table["high"]
    assert budgets["minimal"] == budgets["low"] == table["low"]
    values = list(budgets.values())
    assert values == sorted(values)  # never less thinking for a higher effort


def test_a_hybrid_model_gets_the_largest_budget_for_xhigh() -> None:
    fake, bridge = dashscope()
    bridge.chat.completions.create(model="qwen-plus", messages=HELLO, reasoning_effort="xhigh")
    assert fake.last_json["enable_thinking"] is True
    assert fake.last_json["thinking_budget"] == 32768


# ------------------------------------------------ 3. n > 1 on DashScope


@APIS
def test_n_on_a_hybrid_model_turns_the_asked_thinking_off_and_answers_n_choices(
    api: str,
) -> None:
    fake, bridge = dashscope(api)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = bridge.chat.completions.create(
            model="qwen-plus", messages=HELLO, n=2, reasoning_effort="high"
        )
    fields = sent(api, fake.last_json)
    assert fields["n"] == 2
    assert fields["enable_thinking"] is False
    assert "thinking_budget" not in fields
    assert not streamed(api, fake)
    assert len(answer.choices) == 2
    assert [m for m in unsupported(caught) if "n=2" in m and "thinking" in m]


def test_n_with_thinking_asked_is_refused_under_the_error_policy() -> None:
    fake, bridge = dashscope(config={"policy": {"unsupported_params": "error"}})
    with pytest.raises(BadRequestError, match="n=2"):
        bridge.chat.completions.create(
            model="qwen-plus", messages=HELLO, n=2, reasoning_effort="high"
        )
    assert fake.requests == []


def test_n_on_a_qwen35_model_turns_its_default_thinking_off_silently() -> None:
    fake, bridge = dashscope()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = bridge.chat.completions.create(model="qwen3.6-plus", messages=HELLO, n=3)
    assert fake.last_json["n"] == 3
    assert fake.last_json["enable_thinking"] is False
    assert len(answer.choices) == 3
    assert unsupported(caught) == []


def test_n_on_a_model_that_always_thinks_never_asks_for_choices_it_cannot_serve() -> None:
    """qwen3.8-max cannot stop thinking: the call is fanned out into one-choice requests
    (the engine asks the adapter, `native_n_for`), and nothing is dropped or warned of."""
    fake, bridge = dashscope()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = bridge.chat.completions.create(
            model="qwen3.8-max", messages=HELLO, n=2, reasoning_effort="high"
        )
    bodies = [json.loads(r.content) for r in fake.requests]
    assert all(body.get("n", 1) == 1 for body in bodies)
    assert all(body["enable_thinking"] is True for body in bodies)
    assert len(bodies) == 2  # fanned out: two one-choice requests
    assert len(answer.choices) == 2
    assert not [m for m in unsupported(caught) if "n=2" in m]


@APIS
def test_n_with_tools_is_not_sent_where_dashscope_answers_one_choice(api: str) -> None:
    fake, bridge = dashscope(api)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = bridge.chat.completions.create(model="qwen-plus", messages=HELLO, n=2, tools=TOOLS)
    bodies = [sent(api, json.loads(r.content)) for r in fake.requests]
    assert all(body.get("n", 1) == 1 for body in bodies)
    assert len(bodies) == 2  # fanned out
    assert len(answer.choices) == 2
    assert not [m for m in unsupported(caught) if "tools" in m and "n=2" in m]


def test_the_native_fake_answers_one_choice_to_n_in_thinking_mode() -> None:
    """What the n rules are checked against (UNSURE D33: one choice, or a 400)."""
    fake = FakeDashScope(DS_KEY)
    http = httpx.Client(transport=fake.transport())
    url = f"{fake.base_url}/services/aigc/text-generation/generation"
    headers = {"Authorization": f"Bearer {DS_KEY}"}

    def choices(**parameters: Any) -> int:
        body = {"model": "qwen-plus", "input": {"messages": HELLO}, "parameters": parameters}
        reply = http.post(url, headers=headers, json=body)
        assert reply.status_code == 200, reply.text
        return len(reply.json()["output"]["choices"])

    assert choices(result_format="message", n=2) == 2
    assert choices(result_format="message", n=2, tools=TOOLS) == 1


# ------------------------------------------------ 4. Qianfan v2's minimum budget


@pytest.mark.parametrize(
    ("max_tokens", "budget"), [(60, None), (100, None), (150, 100), (1000, 500)]
)
def test_qianfan_sends_no_budget_the_token_limit_cannot_hold(max_tokens: int, budget: Any) -> None:
    fake = FakeQianfanV2()
    bridge = client("qianfan", fake, QF_KEY)
    answer = bridge.chat.completions.create(
        model="ernie-5.0", messages=HELLO, reasoning_effort="high", max_tokens=max_tokens
    )
    body = fake.last_json
    assert body["enable_thinking"] is True
    assert body.get("thinking_budget") == budget
    if budget is not None:
        assert budget < max_tokens
    assert answer.choices[0].message.content


# ------------------------------------------------ 5. openai-only fields stay home

_OPENAI_ONLY = {"refusal", "annotations", "audio", "function_call", "parsed", "provider"}
CALL = ToolCallSpec("weather", {"city": "杭州"})


def result_of(message: Any) -> dict[str, Any]:
    """The tool result answering ``message``'s first tool call."""
    return {"role": "tool", "tool_call_id": message.tool_calls[0].id, "content": "晴"}


def test_a_message_from_openais_stream_helper_reaches_glm_without_its_client_fields() -> None:
    fake = FakeZhipu(api_key=ZP_KEY)
    fake.then(Reply(reasoning_content="查天气", tool_calls=(CALL,)))
    fake.then(Reply(content="晴"))
    bridge = client("zhipu", fake, ZP_KEY)
    messages: Any = list(HELLO)
    with bridge.chat.completions.stream(model="glm-5.1", messages=messages, tools=TOOLS) as s:
        for _ in s:
            pass
        final = s.get_final_completion()
    message = final.choices[0].message
    assert message.tool_calls
    messages += [message, result_of(message)]
    answer = bridge.chat.completions.create(model="glm-5.1", messages=messages, tools=TOOLS)
    assistant = fake.last_json["messages"][1]
    assert _OPENAI_ONLY.isdisjoint(assistant)
    assert "parsed_arguments" not in assistant["tool_calls"][0]["function"]
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"city": "杭州"}
    assert assistant["reasoning_content"] == "查天气"
    assert answer.choices[0].message.content == "晴"


@pytest.mark.parametrize(
    ("provider", "fake_class", "key", "model"),
    [
        ("qianfan", FakeQianfanV2, QF_KEY, "ernie-x1.1"),
        ("dashscope", FakeDashScopeCompatible, DS_KEY, "qwen-plus"),
    ],
)
def test_an_appended_message_object_reaches_the_provider_without_null_openai_fields(
    provider: str, fake_class: Any, key: str, model: str
) -> None:
    fake = fake_class()
    fake.then(Reply(reasoning_content="查天气", tool_calls=(CALL,)))
    fake.then(Reply(content="晴"))
    bridge = client(provider, fake, key)
    messages: Any = list(HELLO)
    first = bridge.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    message = first.choices[0].message
    assert message.tool_calls
    messages += [message, result_of(message)]
    answer = bridge.chat.completions.create(model=model, messages=messages, tools=TOOLS)
    assistant = fake.last_json["messages"][1]
    assert assistant["role"] == "assistant"
    assert _OPENAI_ONLY.isdisjoint(assistant)
    assert assistant["tool_calls"][0]["function"]["name"] == "weather"
    assert answer.choices[0].message.content == "晴"


def test_a_refusal_with_text_still_reaches_qianfan() -> None:
    """Only null openai-only fields go: one that says something is the provider's to read."""
    fake = FakeQianfanV2()
    bridge = client("qianfan", fake, QF_KEY)
    messages: Any = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "不行", "refusal": "不行", "audio": None},
        {"role": "user", "content": "为什么"},
    ]
    bridge.chat.completions.create(model="ernie-4.5-turbo-128k", messages=messages)
    assistant = fake.last_json["messages"][1]
    assert assistant["refusal"] == "不行"
    assert "audio" not in assistant
