"""Review 14: the 2026 provider quirks as a user moving from OpenAI meets them.

Structured output in DashScope's thinking mode (served only without thinking), ``n`` beyond
DashScope's range, explicit-cache hits in the ledger, refusals that name the model, and
Qianfan v2's stop-word limit. Every test goes through ``llm_bridge.OpenAI`` and a fake.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Optional

import pytest
from helpers import bridge, no_unsupported_warnings
from pydantic import BaseModel

from llm_bridge import BadRequestError, UnsupportedParameterWarning
from llm_bridge._config import load_config
from llm_bridge._shapes.completion_usage import CompletionUsage
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu
from llm_bridge.usage import Price, cost_of

DS_KEY = "sk-test"
QF_KEY = "bce-v3/ALTAK-review14/0a1b2c3d4e5f"
NATIVE = {"providers": {"dashscope": {"api": "native"}}}
STRICT = {"policy": {"unsupported_params": "error"}}
HELLO: Any = [{"role": "user", "content": "杭州"}]
APIS = pytest.mark.parametrize("api", ["compatible", "native"])


class City(BaseModel):
    name: str
    population: Optional[float]


CITY = '{"name": "杭州", "population": 12.5}'


def dashscope(api: str, **options: Any) -> tuple[Any, Any]:
    """A DashScope fake of the ``api``'s wire and a client answered by it."""
    if api == "native":
        fake: Any = FakeDashScope(DS_KEY)
        config = {**NATIVE, **options.pop("config", {})}
        return fake, bridge("dashscope", fake, api_key=DS_KEY, config=config, **options)
    fake = FakeDashScopeCompatible(DS_KEY)
    return fake, bridge("dashscope", fake, api_key=DS_KEY, **options)


def fields(api: str, fake: Any) -> dict[str, Any]:
    """The request's parameters: the body (compatible) or its ``parameters`` (native)."""
    body = fake.last_json
    return body["parameters"] if api == "native" else body


# ----------------------------------------------------------------- structured output


@APIS
def test_parse_on_a_model_that_thinks_by_default_turns_thinking_off(api: str) -> None:
    # qwen3-235b-a22b thinks unless told not to, has no native json_schema, and DashScope
    # serves json_object only without thinking: the call goes out non-thinking (so not as
    # a forced stream) and its fenced answer is checked and cleaned as on any model.
    fake, client = dashscope(api)
    fake.reply(f"```json\n{CITY}\n```")
    with no_unsupported_warnings():  # the caller asked for no thinking: nothing was dropped
        result = client.chat.completions.parse(
            model="qwen3-235b-a22b", messages=HELLO, response_format=City
        )
    assert result.choices[0].message.parsed == City(name="杭州", population=12.5)
    sent = fields(api, fake)
    assert sent["enable_thinking"] is False
    assert sent["response_format"] == {"type": "json_object"}
    assert "stream" not in fake.last_json and "incremental_output" not in sent


@APIS
def test_json_object_with_reasoning_effort_turns_thinking_off_and_says_so(api: str) -> None:
    fake, client = dashscope(api)
    with pytest.warns(UnsupportedParameterWarning, match="json_object is served only in non-"):
        client.chat.completions.create(
            model="qwen-plus",
            messages=[{"role": "user", "content": "JSON please"}],
            response_format={"type": "json_object"},
            reasoning_effort="high",
        )
    sent = fields(api, fake)
    assert sent["enable_thinking"] is False and "thinking_budget" not in sent


@APIS
def test_structured_output_is_not_sent_to_a_model_that_always_thinks(api: str) -> None:
    fake, client = dashscope(api)
    with pytest.warns(UnsupportedParameterWarning, match="qwen3.8-max always thinks"):
        client.chat.completions.create(
            model="qwen3.8-max", messages=HELLO, response_format={"type": "json_object"}
        )
    sent = fields(api, fake)
    assert "response_format" not in sent
    messages = fake.last_json["input"]["messages"] if api == "native" else sent["messages"]
    assert "JSON" in json.dumps(messages)  # the messages still ask for JSON


def test_the_error_policy_refuses_structured_output_on_an_always_thinking_model() -> None:
    fake, client = dashscope("compatible", config=STRICT)
    with pytest.raises(BadRequestError, match="response_format") as caught:
        client.chat.completions.create(
            model="qwen3.8-max", messages=HELLO, response_format={"type": "json_object"}
        )
    assert caught.value.param == "response_format"
    assert fake.requests == []


def test_parse_on_a_stream_only_model_checks_the_aggregated_answer() -> None:
    fake, client = dashscope("compatible")
    fake.reply(f"```json\n{CITY}\n```")
    result = client.chat.completions.parse(
        model="qwen3-235b-a22b-thinking-2507", messages=HELLO, response_format=City
    )
    assert result.choices[0].message.parsed == City(name="杭州", population=12.5)


# ----------------------------------------------------------------- parameters


@APIS
def test_n_beyond_dashscopes_range_is_cut_naming_range_provider_and_model(api: str) -> None:
    fake, client = dashscope(api)
    with pytest.warns(UnsupportedParameterWarning) as caught:
        client.chat.completions.create(model="qwen-plus", messages=HELLO, n=5)
    (warning,) = [w for w in caught if issubclass(w.category, UnsupportedParameterWarning)]
    text = str(warning.message)
    assert "dashscope" in text and "qwen-plus" in text and "1 to 4" in text and "n=5" in text
    assert fields(api, fake)["n"] == 4


def test_the_error_policy_refuses_n_beyond_the_range_before_sending() -> None:
    fake, client = dashscope("compatible", config=STRICT)
    with pytest.raises(BadRequestError, match="1 to 4") as caught:
        client.chat.completions.create(model="qwen-plus", messages=HELLO, n=8)
    assert caught.value.param == "n" and fake.requests == []


@pytest.mark.parametrize(
    ("make", "model", "named"),
    [
        (lambda: bridge("zhipu", FakeZhipu(api_key="id.secret"), api_key="id.secret"),
         "glm-5.3", "zhipu/glm-5.3"),
        (lambda: dashscope("compatible")[1], "qwen3.8-max", "dashscope/qwen3.8-max"),
        (lambda: bridge("qianfan", FakeQianfanV2(api_key=QF_KEY), api_key=QF_KEY),
         "ernie-x1.1", "qianfan/ernie-x1.1"),
    ],
)  # fmt: skip
def test_refusing_reasoning_effort_none_names_provider_and_model(
    make: Any, model: str, named: str
) -> None:
    with pytest.raises(BadRequestError, match="always thinks") as caught:
        make().chat.completions.create(model=model, messages=HELLO, reasoning_effort="none")
    assert named in str(caught.value) and caught.value.param == "reasoning_effort"


def test_qianfan_v2_sends_four_stop_words_and_applies_the_rest_itself() -> None:
    fake = FakeQianfanV2(api_key=QF_KEY).reply("甲乙丙丁戊己庚")
    client = bridge("qianfan", fake, api_key=QF_KEY)
    result = client.chat.completions.create(
        model="ernie-4.5-turbo-32k", messages=HELLO, stop=["a", "b", "c", "d", "庚", "己"]
    )
    assert fake.last_json["stop"] == ["a", "b", "c", "d"]
    assert result.choices[0].message.content == "甲乙丙丁戊"


# ----------------------------------------------------------------- usage and cost


def usage(prompt: int, cached: int, **details: Any) -> CompletionUsage:
    return CompletionUsage.model_validate(
        {
            "prompt_tokens": prompt,
            "completion_tokens": 0,
            "total_tokens": prompt,
            "prompt_tokens_details": {"cached_tokens": cached, **details},
        }
    )


def test_an_explicit_cache_hit_costs_a_tenth_of_the_input_price() -> None:
    # The explicit-hit rate is catalogue data (DashScope: 10 % of input), not a constant.
    price = Price(
        Decimal(10),
        Decimal(20),
        cached_input=Decimal(2),
        cache_creation=Decimal("12.5"),
        explicit_cache_hit=Decimal(1),
    )
    implicit = usage(1_000_000, 1_000_000)
    explicit = usage(1_000_000, 1_000_000, cache_type="ephemeral")
    assert cost_of(implicit, price) == Decimal(2)  # the implicit rate: 20 %
    assert cost_of(explicit, price) == Decimal(1)  # the explicit rate: 10 %
    # Without an explicit-hit price, such a read costs the cached-input price.
    no_explicit = Price(Decimal(10), Decimal(20), cached_input=Decimal(2))
    assert cost_of(explicit, no_explicit) == Decimal(2)


@APIS
def test_the_ledger_prices_dashscopes_explicit_cache_hit_at_its_own_rate(api: str) -> None:
    _, client = dashscope(api)
    document = "条款" * 600
    marked = [
        {
            "role": "system",
            "content": [{"type": "text", "text": document, "cache_control": {"type": "ephemeral"}}],
        },
        *HELLO,
    ]
    client.chat.completions.create(model="qwen-plus", messages=marked)  # creates the cache
    answer = client.chat.completions.create(model="qwen-plus", messages=marked)  # hits it
    figures = answer.usage
    details = figures.prompt_tokens_details
    assert details is not None and details.cached_tokens
    price = client._engine.config.price("dashscope", "qwen-plus")
    uncached = figures.prompt_tokens - details.cached_tokens
    expected = (
        uncached * price.input
        + details.cached_tokens * price.input / 10
        + figures.completion_tokens * price.output
    ) / 1_000_000
    assert client.usage.records()[-1].cost_cny == expected


def test_a_call_that_thought_costs_the_thinking_output_price() -> None:
    # Hybrid models price output higher in thinking mode (qwen-plus: 2 without, 8 with).
    price = Price(Decimal("0.8"), Decimal(2), thinking_output=Decimal(8))
    figures = {"prompt_tokens": 0, "completion_tokens": 1_000_000, "total_tokens": 1_000_000}
    plain = CompletionUsage.model_validate(figures)
    thought = CompletionUsage.model_validate(
        {**figures, "completion_tokens_details": {"reasoning_tokens": 600_000}}
    )
    assert cost_of(plain, price) == Decimal(2)
    assert cost_of(thought, price) == Decimal(8)
    assert cost_of(thought, Price(Decimal("0.8"), Decimal(2))) == Decimal(2)  # none known


def test_the_thinking_output_price_comes_from_the_catalogue_and_the_config() -> None:
    catalogue = load_config({})
    price = catalogue.price("dashscope", "qwen-plus")
    assert price is not None and price.thinking_output == Decimal(8)
    assert price.output == Decimal(2)
    row = {"input": 1, "output": 2, "thinking_output": 6}
    configured = load_config({"prices": {"dashscope/qwen-plus": row}})
    assert configured.price("dashscope", "qwen-plus") == Price(
        Decimal(1), Decimal(2), thinking_output=Decimal(6)
    )
