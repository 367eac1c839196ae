"""Prices by the call's length (DashScope's and Zhipu's tiers), the explicit-cache-hit
price as catalogue data, thinking-mode output per tier, ``[prices]`` rows with tiers, the
errors a wrong tier table gives, and the ledger's cost of a tiered call end to end.

A call pays the first tier whose bounds (inclusive) hold its prompt and completion tokens;
the figures below are spelled out by hand so that a wrong tier choice or a wrong price
table is caught, not recomputed with the code under test.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

import llm_bridge
from llm_bridge import ConfigError
from llm_bridge._config import load_config
from llm_bridge._shapes.completion_usage import CompletionUsage
from llm_bridge.testing import FakeZhipu
from llm_bridge.usage import Price, PriceTier, cost_of

MILLION = Decimal(1_000_000)
KEY = "id.secret"
HELLO = [{"role": "user", "content": "你好"}]

#: qwen-plus as the catalogue tiers it (CNY per million): up to 128000 prompt tokens
#: 0.8 in / 2 out / 8 thinking, 128001..256000 2.4 / 20 / 24, beyond 4.8 / 48 / 64; cached
#: 20 %, explicit hit 10 %, cache creation 125 % of each tier's input.
QWEN_PLUS_TIERS = [
    (128_000, "0.8", "2", "8"),
    (256_000, "2.4", "20", "24"),
    (None, "4.8", "48", "64"),
]


def usage(prompt: int, completion: int, *, reasoning: int = 0, **details: Any) -> CompletionUsage:
    figures: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if details:
        figures["prompt_tokens_details"] = details
    if reasoning:
        figures["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return CompletionUsage.model_validate(figures)


def catalogue_price(provider: str, model: str) -> Price:
    price = load_config({}).price(provider, model)
    assert price is not None
    return price


def flat_cost(prompt: int, completion: int, price_in: str, price_out: str) -> Decimal:
    return (prompt * Decimal(price_in) + completion * Decimal(price_out)) / MILLION


# --------------------------------------------------------------------------- boundaries


@pytest.mark.parametrize(
    ("prompt", "tier"),
    [
        (1, 0),
        (128_000, 0),  # exactly at the bound: still the first tier
        (128_001, 1),  # one over: the second
        (256_000, 1),
        (256_001, 2),
        (990_000, 2),
    ],
)
def test_qwen_plus_pays_the_tier_its_prompt_falls_in(prompt: int, tier: int) -> None:
    _, price_in, price_out, _ = QWEN_PLUS_TIERS[tier]
    cost = cost_of(usage(prompt, 1000), catalogue_price("dashscope", "qwen-plus"))
    assert cost == flat_cost(prompt, 1000, price_in, price_out)


@pytest.mark.parametrize(
    ("prompt", "completion", "expected"),
    [
        # glm-4.7: up to 32000 in and 200 out 2/8; up to 32000 in 3/14; beyond 4/16.
        (32_000, 200, ("2", "8")),
        (32_000, 201, ("3", "14")),  # one more output token: the second tier
        (1_000, 5_000, ("3", "14")),
        (32_001, 10, ("4", "16")),  # one more input token: the third, whatever the output
        (150_000, 100_000, ("4", "16")),
    ],
)
def test_glm_pays_the_tier_of_its_prompt_and_its_answer(
    prompt: int, completion: int, expected: tuple[str, str]
) -> None:
    cost = cost_of(usage(prompt, completion), catalogue_price("zhipu", "glm-4.7"))
    assert cost == flat_cost(prompt, completion, *expected)


def test_a_call_beyond_the_last_bound_pays_the_last_tier() -> None:
    price = Price(
        Decimal(1),
        Decimal(2),
        tiers=(
            PriceTier(100, None, Decimal(1), Decimal(2)),
            PriceTier(200, None, Decimal(5), Decimal(6)),
        ),
    )
    assert price.for_call(1_000) == Price(Decimal(5), Decimal(6))
    assert price.for_call(100) == Price(Decimal(1), Decimal(2))


def test_an_untiered_price_is_its_own_tier() -> None:
    price = catalogue_price("zhipu", "glm-4-plus")
    assert price.tiers == () and price.for_call(10**9, 10**9) is price


# --------------------------------------------------------------------------- cache, thinking


def test_cached_tokens_cost_the_cached_price_of_the_calls_tier() -> None:
    price = catalogue_price("dashscope", "qwen-plus")
    # 200000 prompt tokens (second tier: 2.4 in, 0.48 cached), 150000 of them cached.
    cost = cost_of(usage(200_000, 1_000, cached_tokens=150_000), price)
    assert cost == (50_000 * Decimal("2.4") + 150_000 * Decimal("0.48") + 1_000 * 20) / MILLION
    # Cache writes at the tier's creation price (125 % of 2.4 = 3).
    written = cost_of(usage(200_000, 0, cache_creation_input_tokens=100_000), price)
    assert written == (100_000 * Decimal("2.4") + 100_000 * 3) / MILLION


def test_the_tier_counts_the_whole_prompt_cached_tokens_included() -> None:
    price = catalogue_price("dashscope", "qwen-plus")
    # 130000 prompt tokens, 129000 cached: the second tier, though only 1000 are uncached.
    cost = cost_of(usage(130_000, 0, cached_tokens=129_000), price)
    assert cost == (1_000 * Decimal("2.4") + 129_000 * Decimal("0.48")) / MILLION


@pytest.mark.parametrize(("prompt", "tier"), [(100_000, 0), (200_000, 1), (300_000, 2)])
def test_a_call_that_thought_pays_its_tiers_thinking_output_price(prompt: int, tier: int) -> None:
    _, price_in, price_out, thinking = QWEN_PLUS_TIERS[tier]
    price = catalogue_price("dashscope", "qwen-plus")
    thought = cost_of(usage(prompt, 10_000, reasoning=6_000), price)
    plain = cost_of(usage(prompt, 10_000), price)
    assert thought == flat_cost(prompt, 10_000, price_in, thinking)
    assert plain == flat_cost(prompt, 10_000, price_in, price_out)


def test_an_explicit_cache_hit_costs_the_catalogues_explicit_price_in_each_tier() -> None:
    price = catalogue_price("dashscope", "qwen-plus")
    assert price.explicit_cache_hit == Decimal("0.08")  # 10 % of 0.8: catalogue data now
    for prompt, price_in in ((100_000, "0.8"), (200_000, "2.4"), (300_000, "4.8")):
        hit = usage(prompt, 0, cached_tokens=prompt // 2, cache_type="ephemeral")
        half = prompt // 2
        expected = (half * Decimal(price_in) + half * Decimal(price_in) / 10) / MILLION
        assert cost_of(hit, price) == expected


@pytest.mark.parametrize(
    "model", ["qwen-max", "qwen-plus", "qwen-flash", "qwen3-max", "qwen3.5-plus", "qwen3.6-plus"]
)
def test_dashscope_explicit_hits_cost_a_tenth_of_input_as_before(model: str) -> None:
    """The rate the ledger used as a constant (10 % of input) is kept, now as data."""
    price = catalogue_price("dashscope", model)
    hit = usage(1_000, 0, cached_tokens=1_000, cache_type="ephemeral")
    assert cost_of(hit, price) == 1_000 * price.input / 10 / MILLION


def test_every_dashscope_price_with_an_explicit_cache_has_its_creation_price() -> None:
    """Alibaba's context-cache page: explicit creation costs 125 % of input, a hit 10 %.
    Eleven rows and tiers gave the hit price only, so a cache write cost 100 %."""
    from llm_bridge._config import builtin_providers

    rows = []
    for name, info in builtin_providers()["dashscope"].models.items():
        rows += [(name, info), *((f"{name} tier", tier) for tier in info.price_tiers)]
    checked = 0
    for name, row in rows:
        if row.explicit_cache_hit_price is None or row.input_price is None:
            continue
        assert row.cache_creation_price == row.input_price * Decimal("1.25"), name
        checked += 1
    assert checked > 20


def test_an_explicit_hit_without_an_explicit_price_costs_the_cached_price() -> None:
    # Zhipu has no explicit cache: were a hit so marked, it would cost the cached price.
    price = catalogue_price("zhipu", "glm-4.5v")
    assert price.explicit_cache_hit is None
    hit = usage(1_000, 0, cached_tokens=1_000, cache_type="ephemeral")
    assert cost_of(hit, price) == 1_000 * Decimal("0.4") / MILLION


def test_thinking_output_prices_found_for_other_hybrid_models() -> None:
    expected = {
        "qwen-turbo": ("0.6", "3"),
        "qwen3-235b-a22b": ("8", "20"),
        "qwen3-32b": ("8", "20"),
        "qwen3-14b": ("4", "10"),
        "qwen3-8b": ("2", "5"),
    }
    for model, (plain, thinking) in expected.items():
        price = catalogue_price("dashscope", model)
        assert (price.output, price.thinking_output) == (Decimal(plain), Decimal(thinking)), model
    # qwen-flash costs the same in both modes (every source gives one output price).
    assert catalogue_price("dashscope", "qwen-flash").for_call(1).thinking_output is None


# --------------------------------------------------------------------------- the catalogue


def test_every_catalogued_tier_table_starts_with_the_models_own_price() -> None:
    config = load_config({})
    tiered = 0
    for name, provider in config.providers.items():
        for model in provider.models:
            price = config.price(name, model)
            if price is None or not price.tiers:
                continue
            tiered += 1
            first = price.tiers[0].flat()
            assert (price.input, price.output) == (first.input, first.output), model
            assert price.for_call(0) == first, model
    assert tiered >= 20  # DashScope, Zhipu and Qianfan tables were read


# --------------------------------------------------------------------------- overrides


def test_a_price_row_with_tiers_replaces_the_catalogues() -> None:
    row = {
        "tiers": [
            {"up_to_input_tokens": 1_000, "input": 1, "output": 2, "thinking_output": 3},
            {"input": 10, "output": 20, "cached_input": 5, "explicit_cache_hit": 4},
        ]
    }
    config = load_config({"prices": {"dashscope/qwen-plus": row}})
    price = config.price("dashscope", "qwen-plus")
    assert price is not None
    assert (price.input, price.output) == (Decimal(1), Decimal(2))  # the first tier's
    assert cost_of(usage(1_000, 1_000, reasoning=1), price) == Decimal(4_000) / MILLION
    assert cost_of(usage(1_001, 0), price) == Decimal(10_010) / MILLION
    hit = usage(2_000, 0, cached_tokens=1_000, cache_type="ephemeral")
    assert cost_of(hit, price) == Decimal(14_000) / MILLION
    # A flat row replaces the catalogue's tiers too.
    flat = load_config({"prices": {"dashscope/qwen-plus": {"input": 1, "output": 2}}})
    assert cost_of(usage(500_000, 0), flat.price("dashscope", "qwen-plus")) == Decimal("0.5")


def test_a_price_row_takes_an_explicit_cache_hit_price() -> None:
    row = {"input": 10, "output": 20, "cached_input": 2, "explicit_cache_hit": 1}
    price = load_config({"prices": {"zhipu/glm-4-flash": row}}).price("zhipu", "glm-4-flash")
    hit = usage(1_000_000, 0, cached_tokens=1_000_000, cache_type="ephemeral")
    assert cost_of(hit, price) == Decimal(1)


def test_a_flat_price_row_keeps_each_price_under_its_own_name() -> None:
    """Six distinct prices, so a field carried into the wrong slot of `Price` shows."""
    row = {
        "input": 1,
        "output": 2,
        "cached_input": 3,
        "cache_creation": 4,
        "thinking_output": 5,
        "explicit_cache_hit": 6,
    }
    price = load_config({"prices": {"dashscope/qwen-plus": row}}).price("dashscope", "qwen-plus")
    assert price == Price(
        input=Decimal(1),
        output=Decimal(2),
        cached_input=Decimal(3),
        cache_creation=Decimal(4),
        thinking_output=Decimal(5),
        explicit_cache_hit=Decimal(6),
        tiers=(),
    )


def test_a_users_model_block_can_give_its_own_tiers() -> None:
    tiers = [
        {"up_to_input_tokens": 10, "input_price": 1, "output_price": 2},
        {"input_price": 3, "output_price": 4},
    ]
    config = load_config({"providers": {"zhipu": {"models": {"glm-4.7": {"price_tiers": tiers}}}}})
    info = config.provider("zhipu").model("glm-4.7")
    assert info is not None and (info.input_price, info.output_price) == (1, 2)
    assert info.cached_input_price is None  # the catalogue's first-tier 0.4 went with its tiers
    assert info.context_window == 200_000  # the rest of the entry is kept
    assert cost_of(usage(11, 0), config.price("zhipu", "glm-4.7")) == Decimal(33) / MILLION


def test_price_tiers_empty_prices_a_tiered_model_flat() -> None:
    block = {"price_tiers": [], "input_price": 1}
    config = load_config({"providers": {"zhipu": {"models": {"glm-4.7": block}}}})
    price = config.price("zhipu", "glm-4.7")
    assert price is not None and price.tiers == ()
    assert (price.input, price.output) == (Decimal(1), Decimal(8))


# --------------------------------------------------------------------------- config errors


def error_of(config: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    return str(caught.value)


def test_tiers_out_of_order_are_refused_naming_the_key() -> None:
    row = {
        "tiers": [
            {"up_to_input_tokens": 2_000, "input": 1, "output": 2},
            {"up_to_input_tokens": 1_000, "input": 3, "output": 4},
        ]
    }
    message = error_of({"prices": {"dashscope/qwen-plus": row}})
    assert message.startswith("<mapping>: prices.dashscope/qwen-plus.tiers: ")
    assert "tiers[1].up_to_input_tokens: 1000" in message and "ascending" in message


def test_a_tier_after_the_unbounded_one_is_refused() -> None:
    tiers = [
        {"input_price": 1, "output_price": 2},
        {"up_to_input_tokens": 5, "input_price": 3, "output_price": 4},
    ]
    message = error_of({"providers": {"zhipu": {"models": {"glm-4.7": {"price_tiers": tiers}}}}})
    assert (
        "providers.zhipu.models.glm-4.7.price_tiers: price_tiers[1].up_to_input_tokens" in message
    )


def test_an_output_bound_without_a_tier_for_longer_answers_is_refused() -> None:
    tiers = [
        {"up_to_input_tokens": 10, "up_to_output_tokens": 5, "input_price": 1, "output_price": 2},
        {"up_to_input_tokens": 20, "input_price": 3, "output_price": 4},
    ]
    message = error_of({"providers": {"zhipu": {"models": {"glm-4.7": {"price_tiers": tiers}}}}})
    assert "price_tiers[0].up_to_output_tokens: 5 bounds the output" in message


def test_a_tier_without_its_prices_or_with_a_bad_bound_is_refused() -> None:
    missing = error_of({"prices": {"dashscope/qwen-plus": {"tiers": [{"input": 1}]}}})
    assert "prices.dashscope/qwen-plus.tiers.0.output: Field required" in missing
    zero = {"tiers": [{"up_to_input_tokens": 0, "input": 1, "output": 2}]}
    assert "tiers.0.up_to_input_tokens" in error_of({"prices": {"dashscope/qwen-plus": zero}})
    empty = error_of({"prices": {"dashscope/qwen-plus": {"cached_input": 1}}})
    assert "prices.dashscope/qwen-plus: input and output required" in empty


def test_a_flat_price_contradicting_the_catalogues_tiers_is_refused() -> None:
    """``input_price`` alone on a tiered model: which price is meant cannot be told."""
    message = error_of({"providers": {"dashscope": {"models": {"qwen-plus": {"input_price": 1}}}}})
    assert message.startswith("<mapping>: providers.dashscope.models.qwen-plus: input_price = 1")
    assert "price_tiers[0].input_price = 0.8" in message


def test_a_row_price_contradicting_its_first_tier_is_refused() -> None:
    row = {"input": 9, "output": 2, "tiers": [{"input": 1, "output": 2}]}
    message = error_of({"prices": {"dashscope/qwen-plus": row}})
    assert "input = 9 differs from tiers[0].input = 1" in message


def test_a_config_file_error_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "llm_bridge.toml"
    path.write_text(
        '[[prices."zhipu/glm-4.7".tiers]]\nup_to_input_tokens = 100\ninput = 1\noutput = 1\n\n'
        '[[prices."zhipu/glm-4.7".tiers]]\nup_to_input_tokens = 50\ninput = 2\noutput = 2\n',
        encoding="utf-8",
    )
    message = error_of(path)
    assert message.startswith(f"{path}: prices.zhipu/glm-4.7.tiers: tiers[1].up_to_input_tokens")


def test_a_shipped_table_with_a_bad_tier_names_its_file(tmp_path: Path) -> None:
    """The shipped tables go through the same check (a data change cannot slip by)."""
    from llm_bridge._config import ProviderConfig, _validate

    raw = {
        "models": {
            "m": {
                "price_tiers": [
                    {"up_to_input_tokens": 10, "input_price": 1, "output_price": 1},
                    {"up_to_input_tokens": 10, "input_price": 2, "output_price": 2},
                ]
            }
        }
    }
    with pytest.raises(ConfigError) as caught:
        _validate(ProviderConfig, raw, "providers/x.toml", prefix="")
    assert str(caught.value).startswith("providers/x.toml: models.m.price_tiers: price_tiers[1]")


# --------------------------------------------------------------------------- the gateway bound


def test_upper_cost_bounds_every_call_no_longer_than_the_estimate() -> None:
    price = catalogue_price("dashscope", "qwen-plus")
    bound = price.upper_cost(200_000, 10_000)
    # The dearest such call: second tier, all of the prompt written to a cache, thinking.
    assert bound == (200_000 * 3 + 10_000 * 24) / MILLION
    for prompt, completion, extra in [
        (200_000, 10_000, {"cache_creation_input_tokens": 200_000}),
        (128_000, 10_000, {}),
        (200_000, 10_000, {"cached_tokens": 100_000}),
    ]:
        for reasoning in (0, 1):
            cost = cost_of(usage(prompt, completion, reasoning=reasoning, **extra), price)
            assert cost is not None and cost <= bound
    # Zhipu's tiers by answer length: a long answer's tier is the dearer one.
    glm = catalogue_price("zhipu", "glm-4.7")
    assert glm.upper_cost(1_000, 1_000) == (1_000 * 3 + 1_000 * 14) / MILLION
    assert glm.upper_cost(1_000, 100) == (1_000 * 2 + 100 * 8) / MILLION
    # An untiered price: its dearest rates.
    flat = Price(Decimal(1), Decimal(2), cache_creation=Decimal("1.25"), thinking_output=Decimal(4))
    assert flat.upper_cost(1_000, 1_000) == (1_000 * Decimal("1.25") + 1_000 * 4) / MILLION


# --------------------------------------------------------------------------- end to end


def test_the_ledger_records_the_tiered_cost_of_a_real_call() -> None:
    reported = {
        "prompt_tokens": 40_000,  # beyond glm-4.7's 32000: its third tier, 4 in / 16 out
        "completion_tokens": 300,
        "total_tokens": 40_300,
        "prompt_tokens_details": {"cached_tokens": 30_000},  # 0.8 cached in that tier
    }
    short = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    fake = FakeZhipu(api_key=KEY).reply("好", usage=reported).reply("好", usage=short)
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.Client(transport=fake.transport())
    )
    client.chat.completions.create(model="glm-4.7", messages=HELLO)
    client.chat.completions.create(model="glm-4.7", messages=HELLO)
    long_call, short_call = client.usage.records()
    assert long_call.cost_cny == (10_000 * 4 + 30_000 * Decimal("0.8") + 300 * 16) / MILLION
    assert short_call.cost_cny == (100 * 2 + 50 * 8) / MILLION  # the first tier: 2 / 8
    assert client.usage.total().cost_cny == long_call.cost_cny + short_call.cost_cny
