"""Usage on every response, its provenance, and the per-client ledger priced in yuan.

Through the drop-in facade against the offline fakes (their native wire formats): each
provider's usage mapping, stream de-duplication of cumulative usage, estimates where the
provider gives none, the ledger's sums and cost arithmetic (prices read from
providers/*.toml here, independently of the library), config overrides, ``on_usage``, and
exact sums under concurrent threads and tasks.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional

import helpers
import httpx
import pytest
from helpers import bridge, provider_table

from llm_bridge import APIConnectionError, APIError, AsyncOpenAI, ConfigError, OpenAI
from llm_bridge.testing import FakeDashScope, FakeQianfan, FakeZhipu
from llm_bridge.tokens import count_message_tokens, count_tokens
from llm_bridge.usage import UsageRecord

MILLION = Decimal(1_000_000)
HELLO = [{"role": "user", "content": "你好"}]
MODES = pytest.mark.parametrize("mode", ["sync", "async"])

ZHIPU_KEY = "id.secret"
QF_AK, QF_SK = "qf-ak", "qf-sk"
DS_KEY = "sk-test"

# Per provider: (model, scripted native usage, the OpenAI-shaped figures it must become).
MAPPINGS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "zhipu": (
        "glm-4.7",
        {
            "prompt_tokens": 1300,
            "completion_tokens": 210,
            "total_tokens": 1510,
            "prompt_tokens_details": {"cached_tokens": 1024},
            "completion_tokens_details": {"reasoning_tokens": 150},
        },
        {"prompt": 1300, "completion": 210, "total": 1510, "cached": 1024, "reasoning": 150},
    ),
    "qianfan": (
        "ernie-4.0-8k",
        {"prompt_tokens": 2, "completion_tokens": 12, "total_tokens": 14},
        {"prompt": 2, "completion": 12, "total": 14, "cached": None, "reasoning": None},
    ),
    "dashscope": (
        "qwen-plus",
        {
            "input_tokens": 3000,
            "output_tokens": 170,
            "total_tokens": 3170,
            "prompt_tokens_details": {"cached_tokens": 2048},
            "output_tokens_details": {"reasoning_tokens": 90},
        },
        {"prompt": 3000, "completion": 170, "total": 3170, "cached": 2048, "reasoning": 90},
    ),
}


# --------------------------------------------------------------------------- helpers


def toml_price(
    provider: str, model: str, *, thought: bool = False, prompt: int = 0, completion: int = 0
) -> tuple[Decimal, Decimal, Optional[Decimal]]:
    """(input, output, cached_input) CNY per million, read straight from the provider table;
    the output price of a call that ``thought``, where the table gives one; for a model
    priced by length, the first of its ``price_tiers`` that holds ``prompt`` and
    ``completion`` tokens (the last if none does)."""
    info = provider_table(provider, parse_float=Decimal)["models"][model]
    tiers = info.get("price_tiers") or []
    fitting = [
        tier
        for tier in tiers
        if prompt <= tier.get("up_to_input_tokens", prompt)
        and completion <= tier.get("up_to_output_tokens", completion)
    ]
    if tiers:
        info = (fitting or tiers[-1:])[0]
    cached = info.get("cached_input_price")
    output = info.get("thinking_output_price") if thought else None
    return (
        Decimal(str(info["input_price"])),
        Decimal(str(info["output_price"] if output is None else output)),
        None if cached is None else Decimal(str(cached)),
    )


def hand_cost(
    provider: str,
    model: str,
    prompt: int,
    completion: int,
    cached: int = 0,
    *,
    thought: bool = False,
) -> Decimal:
    price_in, price_out, price_cached = toml_price(
        provider, model, thought=thought, prompt=prompt, completion=completion
    )
    if price_cached is None:
        price_cached = price_in
    return ((prompt - cached) * price_in + cached * price_cached + completion * price_out) / MILLION


def make_fake(provider: str) -> Any:
    if provider == "zhipu":
        return FakeZhipu(api_key=ZHIPU_KEY)
    if provider == "qianfan":
        return FakeQianfan(QF_AK, QF_SK)
    return FakeDashScope(DS_KEY)


def make_client(provider: str, fake: Any, mode: str = "sync", **kwargs: Any) -> Any:
    keys: dict[str, Any] = {
        "zhipu": {"api_key": ZHIPU_KEY},
        "qianfan": {"api_key": QF_AK, "secret_key": QF_SK},
        "dashscope": {"api_key": DS_KEY},
    }[provider]
    if provider == "qianfan":  # v1 (closed on the public cloud 2026-08-31) only on request
        kwargs.setdefault("config", {"providers": {"qianfan": {"api": "v1"}}})
    if provider == "dashscope":  # these tests exercise the native wire (cumulative usage ...)
        kwargs.setdefault("config", {"providers": {"dashscope": {"api": "native"}}})
    return bridge(provider, fake, mode=mode, **keys, **kwargs)


async def create(client: Any, **params: Any) -> Any:
    result = client.chat.completions.create(**params)
    if isinstance(client, AsyncOpenAI):
        result = await result
    return result


async def consume(stream: Any) -> list[Any]:
    """Every chunk of a stream of either flavour (an error ends the test)."""
    chunks, _ = await helpers.consume(stream, errors=())
    return chunks


async def first_then_close(stream: Any) -> Any:
    """Take one chunk, break, close (twice: closing must stay idempotent)."""
    if hasattr(stream, "__aiter__"):
        async for chunk in stream:
            taken = chunk
            break
        await stream.close()
        await stream.close()
        return taken
    for chunk in stream:
        taken = chunk
        break
    stream.close()
    stream.close()
    return taken


def one_record(client: Any) -> UsageRecord:
    records = client.usage.records()
    assert len(records) == 1, records
    return records[0]


def assert_usage(usage: Any, expected: dict[str, Any]) -> None:
    assert usage.prompt_tokens == expected["prompt"]
    assert usage.completion_tokens == expected["completion"]
    assert usage.total_tokens == expected["total"]
    cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else None
    reasoning = (
        usage.completion_tokens_details.reasoning_tokens
        if usage.completion_tokens_details
        else None
    )
    assert cached == expected["cached"]
    assert reasoning == expected["reasoning"]


# --------------------------------------------------------------------------- mapping


@MODES
@pytest.mark.parametrize("provider", sorted(MAPPINGS))
async def test_usage_mapping_on_responses(provider: str, mode: str) -> None:
    model, native, expected = MAPPINGS[provider]
    fake = make_fake(provider).reply("你好！有什么可以帮你？", usage=native)
    client = make_client(provider, fake, mode)

    completion = await create(client, model=model, messages=HELLO)

    assert_usage(completion.usage, expected)
    assert completion.usage.estimated is False
    record = one_record(client)
    assert (record.provider, record.model, record.key) == (provider, model, f"{provider}/{model}")
    assert_usage(record.usage, expected)
    assert record.estimated is False
    assert record.cost_cny == hand_cost(
        provider,
        model,
        expected["prompt"],
        expected["completion"],
        expected["cached"] or 0,
        thought=bool(expected["reasoning"]),  # (a call that thought: its mode's price)
    )


@MODES
@pytest.mark.parametrize("provider", sorted(MAPPINGS))
async def test_stream_keeps_the_last_usage_never_a_sum(provider: str, mode: str) -> None:
    # Qianfan and DashScope repeat running usage on every event; Zhipu sends it once.
    model, native, expected = MAPPINGS[provider]
    answer = "西湖是杭州的名片，湖光山色四季皆美，断桥残雪最为动人。"
    fake = make_fake(provider).reply(answer, usage=native, chunk_size=3)
    client = make_client(provider, fake, mode)

    stream = await create(
        client, model=model, messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = await consume(stream)

    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == answer
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    assert_usage(chunks[-1].usage, expected)
    assert chunks[-1].usage.estimated is False
    record = one_record(client)
    assert_usage(record.usage, expected)
    assert record.estimated is False
    assert client.usage.total().completion_tokens == expected["completion"]


@MODES
@pytest.mark.parametrize("provider", ["qianfan", "dashscope"])
async def test_stream_without_include_usage_still_recorded_once(provider: str, mode: str) -> None:
    model, native, expected = MAPPINGS[provider]
    fake = make_fake(provider).reply("一二三四五六七八九十" * 3, usage=native, chunk_size=2)
    client = make_client(provider, fake, mode)

    chunks = await consume(await create(client, model=model, messages=HELLO, stream=True))

    assert len(chunks) > 5
    assert all(c.usage is None for c in chunks)
    assert_usage(one_record(client).usage, expected)


# --------------------------------------------------------------------------- estimates

RAW_WITHOUT_USAGE = {
    "zhipu": (
        "glm-4-flash",
        '{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"你好👋！我是人工智能助手。",'
        '"role":"assistant"}}],"created":1721614853,"id":"20240722102053e7277a4f94e848248f",'
        '"model":"glm-4-flash","request_id":"20240722102053e7277a4f94e848248f"}',
        "你好👋！我是人工智能助手。",
    ),
    "qianfan": (
        "ernie-4.0-8k",
        '{"id":"as-bcmt5ct4id","object":"chat.completion","created":1709089502,'
        '"result":"你好！有什么我可以帮助你的吗？","is_truncated":false,'
        '"need_clear_history":false,"finish_reason":"normal"}',
        "你好！有什么我可以帮助你的吗？",
    ),
    "dashscope": (
        "qwen-plus",
        '{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant",'
        '"content":"我是阿里云开发的一款超大规模语言模型，我叫通义千问。"}}]},'
        '"request_id":"902fee3b-f7f0-9a8c-96a1-6b4ea25af114"}',
        "我是阿里云开发的一款超大规模语言模型，我叫通义千问。",
    ),
}
D1_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "你是谁？"},
]


@MODES
@pytest.mark.parametrize("provider", sorted(RAW_WITHOUT_USAGE))
async def test_response_without_usage_is_estimated(provider: str, mode: str) -> None:
    model, body, text = RAW_WITHOUT_USAGE[provider]
    messages = D1_MESSAGES if provider == "dashscope" else HELLO
    fake = make_fake(provider).raw(200, body, {"Content-Type": "application/json"})
    client = make_client(provider, fake, mode)

    completion = await create(client, model=model, messages=messages)

    usage = completion.usage
    assert usage is not None
    assert usage.estimated is True
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert usage.prompt_tokens == count_message_tokens(messages, model, provider=provider)
    assert usage.completion_tokens == count_tokens(text, model, provider=provider)
    if provider == "dashscope":
        # D1 with its usage removed: DashScope's real figures are 22 in, 17 out.
        assert (usage.prompt_tokens, usage.completion_tokens) == (22, 17)
    record = one_record(client)
    assert record.estimated is True
    assert record.usage.prompt_tokens == usage.prompt_tokens
    assert client.usage.total().estimated_requests == 1


@MODES
async def test_cut_stream_raises_and_records_an_estimate_of_what_was_consumed(mode: str) -> None:
    content = "人工智能助手很高兴为你服务，请问有什么可以帮你？"
    fake = FakeZhipu(api_key=ZHIPU_KEY).cut_stream(2, content)
    client = make_client("zhipu", fake, mode)
    stream = await create(
        client,
        model="glm-4-flash",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )

    received: list[str] = []
    with pytest.raises(APIConnectionError):
        if mode == "sync":
            for chunk in stream:
                received.extend(c.delta.content or "" for c in chunk.choices)
        else:
            async for chunk in stream:
                received.extend(c.delta.content or "" for c in chunk.choices)

    consumed = "".join(received)
    assert consumed == content[:8]
    record = one_record(client)
    assert record.estimated is True
    assert record.usage.estimated is True
    assert record.usage.completion_tokens == count_tokens(consumed, "glm-4-flash")
    assert record.usage.completion_tokens > 0
    assert record.usage.prompt_tokens == count_message_tokens(HELLO, "glm-4-flash")
    assert client.usage.total().estimated_requests == 1


@MODES
@pytest.mark.parametrize("provider", ["qianfan", "dashscope"])
async def test_cut_stream_with_running_usage_records_the_last_figures(
    provider: str, mode: str
) -> None:
    model = MAPPINGS[provider][0]
    content = "一二三四五六七八九十" * 4
    fake = make_fake(provider).cut_stream(5, content)
    client = make_client(provider, fake, mode)
    stream = await create(client, model=model, messages=HELLO, stream=True)

    with pytest.raises(APIConnectionError):
        await consume(stream)

    record = one_record(client)
    # Five chunks of four characters were consumed; the fakes' running usage counts two
    # characters a token: the last running figure is 10, a sum of them would be 30.
    assert record.usage.completion_tokens == 10
    assert record.usage.total_tokens == record.usage.prompt_tokens + 10
    # The provider's figures, but not its final ones: the record says so.
    assert record.estimated is True
    assert client.usage.total().estimated_requests == 1


@MODES
async def test_stream_closed_early_is_recorded_once_with_what_was_consumed(mode: str) -> None:
    content = "西湖位于杭州，是中国著名的风景名胜，也是世界文化遗产。"
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply(content, chunk_size=4)
    client = make_client("zhipu", fake, mode)
    stream = await create(client, model="glm-4-flash", messages=HELLO, stream=True)

    chunk = await first_then_close(stream)

    first = chunk.choices[0].delta.content
    assert first == content[:4]
    record = one_record(client)
    assert record.estimated is True
    assert record.usage.completion_tokens == count_tokens(first, "glm-4-flash")
    assert record.usage.prompt_tokens == count_message_tokens(HELLO, "glm-4-flash")
    assert len(client.usage) == 1


@MODES
async def test_stream_left_by_with_block_is_recorded_once(mode: str) -> None:
    fake = FakeDashScope(DS_KEY).reply("一二三四五六七八九十" * 3, chunk_size=4)
    client = make_client("dashscope", fake, mode)
    stream = await create(client, model="qwen-plus", messages=HELLO, stream=True)
    if mode == "sync":
        with stream:
            next(iter(stream))
    else:
        async with stream:
            await stream.__anext__()
    record = one_record(client)
    # DashScope's running usage after one 4-character chunk (two characters a token).
    assert record.usage.completion_tokens == 2


@MODES
async def test_error_event_mid_stream_records_what_was_consumed(mode: str) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).error_mid_stream(2, "content_filter", "人工智能助手很高兴")
    client = make_client("zhipu", fake, mode)
    stream = await create(client, model="glm-4-flash", messages=HELLO, stream=True)

    with pytest.raises(APIError):
        await consume(stream)

    record = one_record(client)
    assert record.estimated is True
    assert record.usage.completion_tokens == count_tokens("人工智能助手很高", "glm-4-flash")


@MODES
async def test_stream_only_model_called_without_stream_is_recorded_once(mode: str) -> None:
    usage = {
        "input_tokens": 30,
        "output_tokens": 20,
        "total_tokens": 50,
        "output_tokens_details": {"reasoning_tokens": 8},
    }
    fake = FakeDashScope(DS_KEY).reply("答案是42", reasoning_content="想一想", usage=usage)
    client = make_client("dashscope", fake, mode)

    completion = await create(client, model="qwq-plus", messages=HELLO)

    expected = {"prompt": 30, "completion": 20, "total": 50, "cached": None, "reasoning": 8}
    assert_usage(completion.usage, expected)
    assert_usage(one_record(client).usage, expected)


@pytest.mark.parametrize("provider", ["zhipu", "qianfan"])
def test_n_copies_each_recorded_and_summed_like_the_response(provider: str) -> None:
    model = {"zhipu": "glm-4-plus", "qianfan": "ernie-4.0-8k"}[provider]
    fake = make_fake(provider)
    client = make_client(provider, fake)

    completion = client.chat.completions.create(model=model, messages=HELLO, n=2)

    total = client.usage.total()
    assert total.requests == len(fake.requests) - getattr(fake, "token_requests", 0)
    assert total.total_tokens == completion.usage.total_tokens
    assert total.prompt_tokens == completion.usage.prompt_tokens
    assert total.completion_tokens == completion.usage.completion_tokens


# --------------------------------------------------------------------------- ledger and cost


def multi_provider_client(mode: str = "sync", **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    fakes = {name: make_fake(name) for name in ("zhipu", "qianfan", "dashscope")}
    hosts = {
        "open.bigmodel.cn": fakes["zhipu"],
        "aip.baidubce.com": fakes["qianfan"],
        "dashscope.aliyuncs.com": fakes["dashscope"],
    }

    def route(request: httpx.Request) -> httpx.Response:
        return hosts[request.url.host].handler(request)

    config = kwargs.pop("config", {})
    config.setdefault(
        "providers",
        {
            "zhipu": {"api_key": ZHIPU_KEY},
            "qianfan": {"api_key": QF_AK, "secret_key": QF_SK, "api": "v1"},
            "dashscope": {"api_key": DS_KEY, "api": "native"},
        },
    )
    transport = httpx.MockTransport(route)
    if mode == "sync":
        return OpenAI(config=config, http_client=httpx.Client(transport=transport), **kwargs), fakes
    client = AsyncOpenAI(
        config=config, http_client=httpx.AsyncClient(transport=transport), **kwargs
    )
    return client, fakes


@MODES
async def test_total_and_by_model_sum_tokens_and_yuan(mode: str) -> None:
    client, fakes = multi_provider_client(mode)
    zhipu_usage = {
        "prompt_tokens": 5000,
        "completion_tokens": 700,
        "total_tokens": 5700,
        "prompt_tokens_details": {"cached_tokens": 3000},
    }
    fakes["zhipu"].reply("一", usage=zhipu_usage).reply("二", usage=zhipu_usage)
    fakes["dashscope"].reply(
        "三",
        usage={
            "input_tokens": 12345,
            "output_tokens": 678,
            "total_tokens": 13023,
            "prompt_tokens_details": {"cached_tokens": 4096},
        },
    )
    fakes["qianfan"].reply(
        "四", usage={"prompt_tokens": 99, "completion_tokens": 1, "total_tokens": 100}
    )

    await create(client, model="zhipu/glm-4.7", messages=HELLO)
    await create(client, model="zhipu/glm-4.7", messages=HELLO)
    await create(client, model="dashscope/qwen-plus", messages=HELLO)
    await create(client, model="qianfan/ernie-4.0-8k", messages=HELLO)

    zhipu_cost = hand_cost("zhipu", "glm-4.7", 5000, 700, 3000)
    ds_cost = hand_cost("dashscope", "qwen-plus", 12345, 678, 4096)
    qf_cost = hand_cost("qianfan", "ernie-4.0-8k", 99, 1)
    # Spelled out once, so that a wrong price table is caught too:
    # glm-4.7 3/14, cached 0.6 (its tier for up to 32K in and over 200 out); qwen-plus
    # 0.8/2, cached 0.16; ernie-4.0-8k 30/90.
    assert zhipu_cost == Decimal("0.0176")  # (2000*3 + 3000*0.6 + 700*14) / 1e6
    assert ds_cost == Decimal("0.00861056")  # (8249*0.8 + 4096*0.16 + 678*2) / 1e6
    assert qf_cost == Decimal("0.00306")  # (99*30 + 1*90) / 1e6

    by_model = client.usage.by_model()
    assert set(by_model) == {"zhipu/glm-4.7", "dashscope/qwen-plus", "qianfan/ernie-4.0-8k"}
    glm = by_model["zhipu/glm-4.7"]
    assert (glm.requests, glm.prompt_tokens, glm.completion_tokens, glm.total_tokens) == (
        2,
        10000,
        1400,
        11400,
    )
    assert glm.estimated_requests == 0
    assert glm.cost_cny == 2 * zhipu_cost
    assert by_model["dashscope/qwen-plus"].cost_cny == ds_cost
    assert by_model["qianfan/ernie-4.0-8k"].cost_cny == qf_cost

    total = client.usage.total()
    assert total.requests == 4
    assert total.prompt_tokens == 10000 + 12345 + 99
    assert total.completion_tokens == 1400 + 678 + 1
    assert total.total_tokens == 11400 + 13023 + 100
    assert total.estimated_requests == 0
    assert isinstance(total.cost_cny, Decimal)
    assert total.cost_cny == 2 * zhipu_cost + ds_cost + qf_cost


def test_price_override_from_config_mapping_changes_the_cost() -> None:
    usage = {
        "prompt_tokens": 3_000_000,
        "completion_tokens": 1_000_000,
        "total_tokens": 4_000_000,
        "prompt_tokens_details": {"cached_tokens": 1_000_000},
    }
    free = FakeZhipu(api_key=ZHIPU_KEY).reply("a", usage=usage)
    default = make_client("zhipu", free)
    default.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert default.usage.total().cost_cny == hand_cost("zhipu", "glm-4-flash", 3_000_000, 1_000_000)

    paid = FakeZhipu(api_key=ZHIPU_KEY).reply("a", usage=usage)
    config = {"prices": {"zhipu/glm-4-flash": {"input": 0.1, "output": 0.3, "cached_input": 0.05}}}
    client = make_client("zhipu", paid, config=config)
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    # 2M uncached * 0.1 + 1M cached * 0.05 + 1M out * 0.3 = 0.55 yuan, exactly.
    assert one_record(client).cost_cny == Decimal("0.55")
    assert client.usage.total().cost_cny == Decimal("0.55")


def test_price_override_from_toml_file_without_cached_price(tmp_path: Path) -> None:
    path = tmp_path / "llm_bridge.toml"
    path.write_text(
        '[providers.zhipu]\napi_key = "id.secret"\n\n'
        '[prices."zhipu/glm-4-flash"]\ninput = 0.1\noutput = 0.1\n',
        encoding="utf-8",
    )
    usage = {"prompt_tokens": 2_000_000, "completion_tokens": 500_000, "total_tokens": 2_500_000}
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("a", usage=usage)
    client = OpenAI(
        provider="zhipu", config=path, http_client=httpx.Client(transport=fake.transport())
    )
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert one_record(client).cost_cny == Decimal("0.25")


def test_model_without_a_price_costs_none_and_is_not_added() -> None:
    # A model the catalogue does not know (provider= sends it anyway) has no price.
    assert "glm-4-experimental" not in provider_table("zhipu")["models"]
    usage = {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150}
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("a", usage=usage).reply("b", usage=usage)
    client = make_client("zhipu", fake)

    client.chat.completions.create(model="glm-4-experimental", messages=HELLO)
    client.chat.completions.create(model="glm-4-plus", messages=HELLO)

    unpriced, priced = client.usage.records()
    assert unpriced.cost_cny is None
    assert priced.cost_cny == hand_cost("zhipu", "glm-4-plus", 100, 50)
    assert client.usage.total().cost_cny == priced.cost_cny
    assert client.usage.total().requests == 2
    assert client.usage.by_model()["zhipu/glm-4-experimental"].cost_cny == 0
    assert client.usage.by_model()["zhipu/glm-4-experimental"].prompt_tokens == 100


# --------------------------------------------------------------------------- on_usage


def check_callback_records(records: list[UsageRecord], completion: Any, cost: Decimal) -> None:
    assert len(records) == 1
    record = records[0]
    assert record.provider == "dashscope"
    assert record.model == "qwen-plus"
    assert record.usage.prompt_tokens == 22
    assert record.usage.completion_tokens == 17
    assert record.cost_cny == cost
    assert record.estimated is False
    assert record.request_id == completion.id
    assert record.request_id


@MODES
async def test_on_usage_constructor_callback(mode: str) -> None:
    seen: list[UsageRecord] = []
    usage = {"input_tokens": 22, "output_tokens": 17, "total_tokens": 39}
    fake = FakeDashScope(DS_KEY).reply("我是通义千问。", usage=usage)
    client = make_client("dashscope", fake, mode, on_usage=seen.append)

    completion = await create(client, model="qwen-plus", messages=HELLO)

    check_callback_records(seen, completion, hand_cost("dashscope", "qwen-plus", 22, 17))
    assert seen == client.usage.records()


def test_on_usage_also_sees_estimated_stream_records() -> None:
    seen: list[UsageRecord] = []
    fake = FakeZhipu(api_key=ZHIPU_KEY).cut_stream(1, "人工智能助手")
    client = make_client("zhipu", fake, on_usage=seen.append)
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    with pytest.raises(APIConnectionError):
        list(stream)
    assert len(seen) == 1
    assert seen[0].estimated is True
    assert seen[0].provider == "zhipu"
    assert seen[0].model == "glm-4-flash"


@MODES
async def test_on_usage_from_config_module_function(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = f"usage_sink_{mode}"
    (tmp_path / f"{module}.py").write_text(
        "SEEN = []\n\ndef collect(record):\n    SEEN.append(record)\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    usage = {"input_tokens": 22, "output_tokens": 17, "total_tokens": 39}
    fake = FakeDashScope(DS_KEY).reply("我是通义千问。", usage=usage)
    config = {"on_usage": f"{module}:collect", "providers": {"dashscope": {"api": "native"}}}
    client = make_client("dashscope", fake, mode, config=config)

    completion = await create(client, model="qwen-plus", messages=HELLO)

    seen = sys.modules[module].SEEN
    check_callback_records(seen, completion, hand_cost("dashscope", "qwen-plus", 22, 17))


def test_on_usage_config_that_cannot_be_imported_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="on_usage"):
        OpenAI(provider="zhipu", api_key=ZHIPU_KEY, config={"on_usage": "no_such_module_x:f"})


def test_on_usage_config_that_is_not_callable_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"on_usage: 'os:sep' is a str, not a function"):
        OpenAI(provider="zhipu", api_key=ZHIPU_KEY, config={"on_usage": "os:sep"})


@MODES
async def test_an_on_usage_callback_that_fails_loses_no_answer(
    mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(record: UsageRecord) -> None:
        raise ValueError("the sink is down")

    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("付过钱的回答")
    client = make_client("zhipu", fake, mode, on_usage=broken)
    completion = await create(client, model="glm-4-flash", messages=HELLO)
    assert completion.choices[0].message.content == "付过钱的回答"
    assert len(client.usage.records()) == 1  # the ledger kept it all the same
    assert any("on_usage callback" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- concurrency

CONCURRENT_USAGE = {
    "prompt_tokens": 1000,
    "completion_tokens": 500,
    "total_tokens": 1500,
    "prompt_tokens_details": {"cached_tokens": 200},
}


def scripted_zhipu(replies: int) -> FakeZhipu:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for i in range(replies):
        fake.reply(f"答{i}", usage=CONCURRENT_USAGE)
    return fake


def check_concurrent_totals(client: Any, calls: int) -> None:
    per_call = {
        "glm-4.7": hand_cost("zhipu", "glm-4.7", 1000, 500, 200),
        "glm-4-plus": hand_cost("zhipu", "glm-4-plus", 1000, 500, 200),
    }
    total = client.usage.total()
    assert total.requests == calls
    assert total.prompt_tokens == 1000 * calls
    assert total.completion_tokens == 500 * calls
    assert total.total_tokens == 1500 * calls
    assert total.estimated_requests == 0
    assert total.cost_cny == (per_call["glm-4.7"] + per_call["glm-4-plus"]) * (calls // 2)
    by_model = client.usage.by_model()
    assert set(by_model) == {"zhipu/glm-4.7", "zhipu/glm-4-plus"}
    for model, cost in per_call.items():
        summary = by_model[f"zhipu/{model}"]
        assert summary.requests == calls // 2
        assert summary.cost_cny == cost * (calls // 2)


def test_fifty_threads_sum_exactly() -> None:
    fake = scripted_zhipu(100)
    seen: list[UsageRecord] = []
    client = make_client("zhipu", fake, on_usage=seen.append)
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            barrier.wait()
            for model in ("glm-4.7", "glm-4-plus"):
                client.chat.completions.create(model=model, messages=HELLO)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert len(fake.requests) == 100
    check_concurrent_totals(client, 100)
    assert len(seen) == 100


async def test_fifty_tasks_sum_exactly() -> None:
    fake = scripted_zhipu(100)
    client = make_client("zhipu", fake, "async")

    async def work() -> None:
        for model in ("glm-4.7", "glm-4-plus"):
            await client.chat.completions.create(model=model, messages=HELLO)

    await asyncio.gather(*(work() for _ in range(50)))

    check_concurrent_totals(client, 100)


async def test_fifty_tasks_streaming_sum_exactly() -> None:
    fake = FakeDashScope(DS_KEY)
    usage = {"input_tokens": 300, "output_tokens": 40, "total_tokens": 340}
    for i in range(50):
        fake.reply(f"第{i}个回答，一二三四五六七八九十", usage=usage, chunk_size=2)
    client = make_client("dashscope", fake, "async")

    async def work() -> None:
        stream = await client.chat.completions.create(
            model="qwen-plus", messages=HELLO, stream=True
        )
        await consume(stream)

    await asyncio.gather(*(work() for _ in range(50)))

    total = client.usage.total()
    assert (total.requests, total.prompt_tokens, total.completion_tokens) == (50, 15000, 2000)
    assert total.cost_cny == 50 * hand_cost("dashscope", "qwen-plus", 300, 40)


# --------------------------------------------------------------------------- copies, reset


def test_with_options_copies_share_the_ledger() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("a", usage=usage).reply("b", usage=usage)
    client = make_client("zhipu", fake)
    # Copied while the ledger is still empty, the usual moment to make a copy.
    copy = client.with_options(timeout=30, max_retries=0)

    client.chat.completions.create(model="glm-4-plus", messages=HELLO)
    copy.chat.completions.create(model="glm-4-plus", messages=HELLO)

    assert copy.usage is client.usage
    assert client.usage.total().requests == 2
    assert client.usage.total().total_tokens == 30


def test_separate_clients_keep_separate_ledgers() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    one, two = make_client("zhipu", fake), make_client("zhipu", fake)
    one.chat.completions.create(model="glm-4-plus", messages=HELLO)
    assert len(one.usage) == 1
    assert len(two.usage) == 0


def test_reset_empties_the_ledger() -> None:
    usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("a", usage=usage).reply("b", usage=usage)
    client = make_client("zhipu", fake)
    client.chat.completions.create(model="glm-4-plus", messages=HELLO)

    client.usage.reset()

    total = client.usage.total()
    assert (total.requests, total.total_tokens, total.cost_cny) == (0, 0, Decimal(0))
    assert client.usage.by_model() == {}
    assert len(client.usage) == 0
    client.chat.completions.create(model="glm-4-plus", messages=HELLO)
    assert client.usage.total().requests == 1


# ------------------------------------------------------------ estimates of what was generated


def test_an_answer_without_usage_counts_its_tool_calls_and_reasoning() -> None:
    """Only ``message.content`` was counted: a tool call alone cost 0 completion tokens,
    and reasoning was neither counted nor priced as thinking, where the same answer
    streamed counted both."""
    arguments = '{"city": "上海", "date": "2026-12-07", "unit": "celsius"}'
    message = {
        "role": "assistant",
        "content": None,
        "reasoning_content": "先查天气。" * 20,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments},
            }
        ],
    }
    body = {
        "id": "1",
        "created": 1,
        "model": "glm-4.7",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": message}],
    }
    fake = FakeZhipu(api_key=ZHIPU_KEY).raw(
        200, json.dumps(body), {"content-type": "application/json"}
    )
    client = make_client("zhipu", fake)
    completion = client.chat.completions.create(model="glm-4.7", messages=HELLO)
    usage = completion.usage
    assert usage is not None and usage.estimated
    thought = count_tokens(message["reasoning_content"], "glm-4.7", provider="zhipu")
    call = count_tokens("get_weather" + arguments, "glm-4.7", provider="zhipu")
    assert usage.completion_tokens == thought + call
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == thought


@pytest.mark.parametrize("provider", ["zhipu", "dashscope"])
def test_embeddings_without_usage_are_counted_not_free(provider: str) -> None:
    """They were recorded as 0 tokens, cost 0, not estimated."""
    texts = ["今天天气怎么样？", "The weather is fine today."]
    if provider == "zhipu":
        model = "embedding-3"
        body = {"data": [{"index": i, "embedding": [0.1, 0.2]} for i in range(2)]}
        fake: Any = FakeZhipu(api_key=ZHIPU_KEY)
    else:
        model = "text-embedding-v4"
        embeddings = [{"text_index": i, "embedding": [0.1, 0.2]} for i in range(2)]
        body = {"output": {"embeddings": embeddings}, "request_id": "r"}
        fake = FakeDashScope(DS_KEY)
    fake.raw(200, json.dumps(body), {"content-type": "application/json"})
    client = make_client(provider, fake)
    answer = client.embeddings.create(model=model, input=texts, encoding_format="float")
    expected = sum(count_tokens(text, model, provider=provider) for text in texts)
    assert answer.usage.prompt_tokens == answer.usage.total_tokens == expected > 0
    record = one_record(client)
    assert record.estimated and record.usage.prompt_tokens == expected
    assert record.cost_cny is not None and record.cost_cny > 0


def test_n_copies_sum_their_cached_and_reasoning_tokens_too() -> None:
    """The merged ``usage`` of a call sent as ``n`` requests summed only the three totals:
    cached and reasoning tokens were the first copy's, and ``estimated`` too."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for reasoning in (100, 150, 120):
        fake.reply(
            "好",
            usage={
                "prompt_tokens": 2000,
                "completion_tokens": 200,
                "total_tokens": 2200,
                "prompt_tokens_details": {"cached_tokens": 1000},
                "completion_tokens_details": {"reasoning_tokens": reasoning},
            },
        )
    client = make_client("zhipu", fake)
    usage = client.chat.completions.create(model="glm-4.7", messages=HELLO, n=3).usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (6000, 600, 6600)
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 3000
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 370
    assert len(client.usage.records()) == 3


def test_n_copies_sum_dashscopes_cache_creation_by_duration_too() -> None:
    """Nested figures (``cache_creation.ephemeral_5m_input_tokens``, from which the
    creation count is derived) were the first copy's while their total was summed."""
    from llm_bridge._fan_out import _sum_fields

    def copy(written: int) -> dict[str, Any]:
        return {
            "prompt_tokens": 3000,
            "prompt_tokens_details": {
                "cache_creation_input_tokens": written,
                "cache_type": "ephemeral",
                "cache_creation": {"ephemeral_5m_input_tokens": written},
            },
            "estimated": False,
        }

    summed = _sum_fields([copy(100), copy(200)])
    details = summed["prompt_tokens_details"]
    assert summed["prompt_tokens"] == 6000 and details["cache_type"] == "ephemeral"
    assert details["cache_creation_input_tokens"] == 300
    assert details["cache_creation"] == {"ephemeral_5m_input_tokens": 300}
