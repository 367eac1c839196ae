"""Cache tiers in the ledger's cost, and the warning for a model its provider retired."""

from __future__ import annotations

import warnings
from decimal import Decimal

import httpx
import pytest

import llm_bridge
from llm_bridge._shapes.completion_usage import CompletionUsage
from llm_bridge.testing import FakeZhipu
from llm_bridge.usage import Price, cost_of

KEY = "id.secret"
HELLO = [{"role": "user", "content": "你好"}]
PRICE = Price(Decimal(4), Decimal(12), cached_input=Decimal("0.8"), cache_creation=Decimal(5))


def usage(prompt: int, completion: int, **details: int) -> CompletionUsage:
    return CompletionUsage.model_validate(
        {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            **({"prompt_tokens_details": details} if details else {}),
        }
    )


def test_cached_reads_and_cache_writes_are_priced_by_tier() -> None:
    # 1M prompt tokens: 300k read from cache, 200k written to it, 500k plain; 100k out.
    figures = usage(1_000_000, 100_000, cached_tokens=300_000, cache_creation_input_tokens=200_000)
    expected = Decimal("0.5") * 4 + Decimal("0.3") * Decimal("0.8") + Decimal("0.2") * 5
    assert cost_of(figures, PRICE) == expected + Decimal("0.1") * 12
    # openai's own name for written tokens counts the same.
    same = usage(1_000_000, 100_000, cached_tokens=300_000, cache_write_tokens=200_000)
    assert cost_of(same, PRICE) == cost_of(figures, PRICE)


def test_tiers_without_a_price_of_their_own_cost_the_input_price() -> None:
    plain = Price(Decimal(4), Decimal(12))
    figures = usage(1_000_000, 0, cached_tokens=500_000, cache_creation_input_tokens=100_000)
    assert cost_of(figures, plain) == Decimal(4)


def test_a_config_price_row_takes_a_cache_creation_price() -> None:
    config = llm_bridge.load_config(
        {"prices": {"zhipu/glm-4-flash": {"input": 1, "output": 2, "cache_creation": 1.25}}}
    )
    price = config.price("zhipu", "glm-4-flash")
    assert price is not None and price.cache_creation == Decimal("1.25")


def test_the_ledger_prices_the_cached_tokens_a_provider_reports() -> None:
    reported = {
        "prompt_tokens": 1000,
        "completion_tokens": 0,
        "total_tokens": 1000,
        "prompt_tokens_details": {"cached_tokens": 1000},
    }
    fake = FakeZhipu(api_key=KEY).reply("好", usage=reported)
    config = {"prices": {"zhipu/glm-4-flash": {"input": 10, "output": 10, "cached_input": 1}}}
    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key=KEY,
        config=config,
        http_client=httpx.Client(transport=fake.transport()),
    )
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert client.usage.records()[0].cost_cny == Decimal("0.001")


def test_a_retired_model_warns_once_naming_date_and_successor_and_still_sends() -> None:
    config = {
        "providers": {
            "zhipu": {
                "models": {
                    "glm-old-test": {"retired": "2026-10-10", "successor": "glm-4.7"},
                }
            }
        }
    }
    fake = FakeZhipu(api_key=KEY).reply("一").reply("二")
    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key=KEY,
        config=config,
        http_client=httpx.Client(transport=fake.transport()),
    )
    with pytest.warns(llm_bridge.ModelRetiredWarning) as caught:
        client.chat.completions.create(model="glm-old-test", messages=HELLO)
    (warning,) = caught
    assert "2026-10-10" in str(warning.message) and "'glm-4.7'" in str(warning.message)
    assert len(fake.requests) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", llm_bridge.ModelRetiredWarning)
        client.chat.completions.create(model="glm-old-test", messages=HELLO)  # once only
    assert len(fake.requests) == 2
