"""Embeddings calls split into requests within the model's limits: by count, and by
tokens where the provider caps a request's total (Zhipu's 8K), and empty texts refused
before anything is sent."""

from __future__ import annotations

import itertools
import json
from typing import Any

import httpx
import pytest
from helpers import provider_table

from llm_bridge import BadRequestError, OpenAI
from llm_bridge._fan_out import BatchLimits, embedding_batches
from llm_bridge.adapters._params import APPROXIMATE_MARGIN
from llm_bridge.testing import FakeDashScopeCompatible, FakeZhipu
from llm_bridge.tokens import count_tokens

EMBEDDING_3 = provider_table("zhipu")["models"]["embedding-3"]
REQUEST_TOKENS = EMBEDDING_3["max_batch_tokens"]
BUDGET = REQUEST_TOKENS // APPROXIMATE_MARGIN  # Zhipu's count here is approximate


def zhipu(fake: FakeZhipu) -> OpenAI:
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    return OpenAI(provider="zhipu", api_key="id.secret", http_client=http)


def sent_inputs(fake: Any) -> list[list[str]]:
    return [json.loads(r.content)["input"] for r in fake.requests]


def tokens(text: str) -> int:
    return count_tokens(text, "embedding-3", provider="zhipu")


# ---------------------------------------------------------------- the packing itself


def batches(texts: list[Any], limits: BatchLimits) -> list[list[Any]]:
    return [b["input"] for b in embedding_batches({"input": texts}, lambda: limits)]


def test_packs_greedily_within_the_token_limit():
    texts = ["a" * 4, "b" * 4, "c" * 4, "d" * 2, "e" * 5]
    assert batches(texts, BatchLimits(None, 10, len)) == [
        ["a" * 4, "b" * 4],
        ["c" * 4, "d" * 2],
        ["e" * 5],
    ]


def test_the_count_limit_still_applies_with_a_token_limit():
    texts = [str(i) * 6 for i in range(7)]  # 42 bytes: over the token limit, so counted
    assert batches(texts, BatchLimits(3, 40, len)) == [texts[0:3], texts[3:6], texts[6:]]
    pairs = [texts[0:2], texts[2:4], texts[4:6], texts[6:]]
    assert batches(texts, BatchLimits(3, 15, len)) == pairs


def test_a_text_over_the_token_limit_goes_alone():
    texts = ["ab", "x" * 50, "cd"]
    assert batches(texts, BatchLimits(None, 10, len)) == [["ab"], ["x" * 50], ["cd"]]


def test_token_ids_count_as_their_length():
    rows = [[1] * 6, [2] * 6, [3] * 3]
    assert batches(rows, BatchLimits(None, 10, len)) == [[[1] * 6], [[2] * 6, [3] * 3]]


def test_texts_within_the_limit_in_bytes_are_never_tokenized():
    def refuse(text: str) -> int:
        raise AssertionError("tokenized")

    texts = ["短文本"] * 5  # 45 bytes
    assert batches(texts, BatchLimits(2, 45, refuse)) == [texts[0:2], texts[2:4], texts[4:]]


def test_a_single_string_is_one_request():
    assert batches("one text", BatchLimits(1, 1, len)) == ["one text"]  # type: ignore[arg-type]


# ---------------------------------------------------------------- through the client


def test_zhipu_calls_over_8k_tokens_are_split_to_fit():
    texts = [f"第{i}段：" + "数据迁移与模型调用的说明文字。" * 60 for i in range(20)]
    assert sum(map(tokens, texts)) > REQUEST_TOKENS  # one request would be refused
    fake = FakeZhipu()
    result = zhipu(fake).embeddings.create(model="embedding-3", input=texts)
    sent = sent_inputs(fake)
    assert len(sent) > 1
    assert [t for batch in sent for t in batch] == texts
    assert all(sum(map(tokens, batch)) <= BUDGET for batch in sent)
    # Greedy: no batch could have taken the next batch's first text.
    for batch, following in itertools.pairwise(sent):
        assert sum(map(tokens, batch)) + tokens(following[0]) > BUDGET
    assert [e.index for e in result.data] == list(range(len(texts)))


def test_without_the_split_the_fake_refuses_such_a_call():
    # What the split prevents: the fake holds Zhipu's limit on one request.
    texts = ["很长的文本内容。" * 700] * 4
    fake = FakeZhipu()
    answer = fake.handler(
        httpx.Request(
            "POST",
            "https://open.bigmodel.cn/api/paas/v4/embeddings",
            headers={"Authorization": "Bearer id.secret"},
            json={"model": "embedding-3", "input": texts},
        )
    )
    assert answer.status_code == 400
    zhipu(fake).embeddings.create(model="embedding-3", input=texts)  # split: accepted


@pytest.mark.parametrize("model", ["embedding-3", "embedding-2"])
def test_short_texts_still_go_64_at_a_time(model: str):
    fake = FakeZhipu()
    zhipu(fake).embeddings.create(model=model, input=[f"t{i}" for i in range(130)])
    assert [len(batch) for batch in sent_inputs(fake)] == [64, 64, 2]


def test_embedding_2_calls_over_8k_tokens_are_split_too():
    """embedding-2 had no limits: 50 texts of ~200 tokens went as one request, refused."""
    texts = [f"第{i}段：" + "数据迁移与模型调用的说明文字。" * 20 for i in range(50)]
    assert sum(map(tokens, texts)) > REQUEST_TOKENS
    fake = FakeZhipu()
    result = zhipu(fake).embeddings.create(model="embedding-2", input=texts)
    sent = sent_inputs(fake)
    assert len(sent) > 1 and [t for batch in sent for t in batch] == texts
    assert [e.index for e in result.data] == list(range(len(texts)))


def test_providers_without_a_token_limit_split_by_count_only():
    fake = FakeDashScopeCompatible()
    http = httpx.Client(transport=httpx.MockTransport(fake.handler))
    client = OpenAI(provider="dashscope", api_key="sk-test", http_client=http)
    texts = ["很长的文本内容。" * 300] * 9
    client.embeddings.create(model="text-embedding-v4", input=texts)
    limit = provider_table("dashscope")["models"]["text-embedding-v4"]["max_batch"]
    assert [len(batch) for batch in sent_inputs(fake)] == [
        min(limit, 9 - i) for i in range(0, 9, limit)
    ]


# ---------------------------------------------------------------- empty texts


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ("", "input must not be an empty string"),
        (["a", ""], "input[1]"),
        ([[1, 2], []], "input[1]"),
    ],
)
def test_empty_texts_are_refused_before_sending(value: Any, where: str):
    fake = FakeZhipu()
    with pytest.raises(BadRequestError, match=where.replace("[", r"\[")):
        zhipu(fake).embeddings.create(model="embedding-3", input=value)
    assert fake.requests == []


def test_a_refusal_in_a_later_request_comes_before_any_is_sent():
    texts = [f"t{i}" for i in range(69)] + ["word " * 4 * EMBEDDING_3["max_input_tokens"]]
    fake = FakeZhipu()
    with pytest.raises(BadRequestError, match=r"in input\[69\]") as caught:
        zhipu(fake).embeddings.create(model="embedding-3", input=texts)
    assert caught.value.code == "context_length_exceeded"
    assert fake.requests == []  # the first 64 texts were not sent (and billed) first


def test_one_text_as_token_ids_is_never_split():
    ids = list(range(200))
    assert batches(ids, BatchLimits(64, 10, len)) == [ids]
