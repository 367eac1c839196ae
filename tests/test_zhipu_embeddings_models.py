"""Zhipu embeddings (docs/providers/zhipu.md, shape Z7) and the models resource, through the
facade."""

from __future__ import annotations

import base64
import json
import math
import warnings
from array import array
from typing import Any

import httpx
import pytest
import respx
from helpers import float32, provider_table

from llm_bridge import (
    AsyncOpenAI,
    BadRequestError,
    NotFoundError,
    OpenAI,
)
from llm_bridge.testing import FakeZhipu
from llm_bridge.types import CreateEmbeddingResponse, Embedding, Model

KEY = "id.secret"
BASE = "https://open.bigmodel.cn/api/paas/v4"
EMBED = f"{BASE}/embeddings"
CATALOGUE = provider_table("zhipu")["models"]
#: What ``models.list()`` offers: the catalogue but for the models Zhipu has retired.
LISTED = [name for name, entry in CATALOGUE.items() if "retired" not in entry]
MAX_BATCH = CATALOGUE["embedding-3"]["max_batch"]

Z7 = (
    b'{"data":[{"embedding":[-0.0277,0.0153,0.0331],"index":0,"object":"embedding"}],'
    b'"model":"embedding-3","object":"list","usage":{"completion_tokens":0,"prompt_tokens":11,'
    b'"total_tokens":11}}'
)


class Recorder:
    """A FakeZhipu whose answers are kept too, to compare with what the client returns."""

    def __init__(self) -> None:
        self.fake = FakeZhipu()
        self.answers: list[dict[str, Any]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        response = self.fake.handler(request)
        response.read()
        if response.status_code == 200:
            self.answers.append(json.loads(response.content))
        return response

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(r.content) for r in self.fake.requests]

    def client(self, **kwargs: Any) -> OpenAI:
        transport = httpx.MockTransport(self.handler)
        return OpenAI(
            provider="zhipu", api_key=KEY, http_client=httpx.Client(transport=transport), **kwargs
        )

    def aclient(self, **kwargs: Any) -> AsyncOpenAI:
        transport = httpx.MockTransport(self.handler)
        return AsyncOpenAI(
            provider="zhipu",
            api_key=KEY,
            http_client=httpx.AsyncClient(transport=transport),
            **kwargs,
        )

    def vectors(self) -> list[list[float]]:
        return [item["embedding"] for answer in self.answers for item in answer["data"]]


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


# --------------------------------------------------------------------------- embeddings


def test_embedding_3_body_and_result(rec: Recorder):
    result = rec.client().embeddings.create(
        model="embedding-3", input=["text a", "text b"], dimensions=256
    )
    assert len(rec.fake.requests) == 1
    request = rec.fake.requests[0]
    assert request.url == httpx.URL(EMBED)
    assert request.method == "POST"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert rec.bodies[0] == {
        "model": "embedding-3",
        "input": ["text a", "text b"],
        "dimensions": 256,
    }
    assert isinstance(result, CreateEmbeddingResponse)
    assert result.object == "list"
    assert result.model == "embedding-3"
    assert result.provider == "zhipu"
    assert [type(e) for e in result.data] == [Embedding, Embedding]
    assert [e.index for e in result.data] == [0, 1]
    assert all(len(e.embedding) == 256 for e in result.data)
    assert [e.embedding for e in result.data] == float32(rec.vectors())
    usage = rec.answers[0]["usage"]
    assert result.usage.prompt_tokens == usage["prompt_tokens"] > 0
    assert result.usage.total_tokens == usage["total_tokens"]


def test_embedding_z7_byte_exact_through_respx():
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(EMBED).respond(
            200, headers={"Content-Type": "application/json"}, content=Z7
        )
        result = OpenAI(provider="zhipu", api_key=KEY).embeddings.create(
            model="embedding-3", input=["智谱AI是一家专注于大模型的公司"], dimensions=256
        )
    sent = json.loads(route.calls.last.request.content)
    assert sent == {
        "model": "embedding-3",
        "input": ["智谱AI是一家专注于大模型的公司"],
        "dimensions": 256,
    }
    assert result.data[0].embedding == float32([-0.0277, 0.0153, 0.0331])
    assert result.usage.prompt_tokens == 11
    assert result.usage.total_tokens == 11
    assert result.provider == "zhipu"


def test_single_string_input(rec: Recorder):
    result = rec.client().embeddings.create(model="embedding-3", input="just one", dimensions=512)
    assert rec.bodies[0]["input"] in ("just one", ["just one"])
    assert len(result.data) == 1
    assert result.data[0].index == 0
    assert len(result.data[0].embedding) == 512


def test_default_dimensions_not_sent_when_not_given(rec: Recorder):
    result = rec.client().embeddings.create(model="embedding-3", input=["a"])
    assert "dimensions" not in rec.bodies[0]
    assert len(result.data[0].embedding) == CATALOGUE["embedding-3"]["default_dimensions"]


def test_many_inputs_are_batched_to_the_catalogue_limit(rec: Recorder):
    texts = [f"第{i}段文本 number {i}" for i in range(150)]
    result = rec.client().embeddings.create(model="embedding-3", input=texts, dimensions=256)
    batches = [body["input"] for body in rec.bodies]
    assert len(batches) == math.ceil(150 / MAX_BATCH)
    assert all(len(batch) <= MAX_BATCH for batch in batches)
    assert [len(b) for b in batches[:-1]] == [MAX_BATCH] * (len(batches) - 1)
    assert [t for batch in batches for t in batch] == texts
    assert all(body["dimensions"] == 256 for body in rec.bodies)
    assert [e.index for e in result.data] == list(range(150))
    assert [e.embedding for e in result.data] == float32(rec.vectors())
    assert len({tuple(e.embedding) for e in result.data}) == 150  # order really matters
    assert result.usage.prompt_tokens == sum(a["usage"]["prompt_tokens"] for a in rec.answers)
    assert result.usage.total_tokens == sum(a["usage"]["total_tokens"] for a in rec.answers)


def test_batch_results_reassembled_by_index_even_when_provider_reorders():
    # The provider answers each batch with its data in reverse order: indices decide.
    def handler(request: httpx.Request) -> httpx.Response:
        texts = json.loads(request.content)["input"]
        data = [
            {"embedding": [float(t.split()[-1]), 0.5], "index": i, "object": "embedding"}
            for i, t in enumerate(texts)
        ][::-1]
        usage = {"prompt_tokens": len(texts), "completion_tokens": 0, "total_tokens": len(texts)}
        body = {"data": data, "model": "embedding-3", "object": "list", "usage": usage}
        return httpx.Response(200, json=body)

    c = OpenAI(
        provider="zhipu",
        api_key=KEY,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    texts = [f"text {i}" for i in range(150)]
    result = c.embeddings.create(model="embedding-3", input=texts)
    assert [e.index for e in result.data] == list(range(150))
    assert [e.embedding[0] for e in result.data] == [float(i) for i in range(150)]
    assert result.usage.prompt_tokens == 150


def test_unoffered_dimensions_rejected_before_sending(rec: Recorder):
    with pytest.raises(BadRequestError) as info:
        rec.client().embeddings.create(model="embedding-3", input=["a"], dimensions=300)
    assert rec.fake.requests == []
    message = str(info.value)
    assert "300" in message
    for allowed in CATALOGUE["embedding-3"]["dimensions"]:
        assert str(allowed) in message
    assert info.value.param == "dimensions"


def test_embedding_2_other_dimensions_refused_before_sending(rec: Recorder):
    with pytest.raises(BadRequestError) as info:
        rec.client().embeddings.create(model="embedding-2", input=["a", "b"], dimensions=512)
    assert rec.fake.requests == []
    assert info.value.param == "dimensions" and "always returns 1024" in str(info.value)


def test_embedding_2_its_own_size_is_dropped_quietly(rec: Recorder):
    """Asking a fixed-size model for the size it has changes nothing: no warning, not sent."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = rec.client().embeddings.create(model="embedding-2", input=["a"], dimensions=1024)
    assert "dimensions" not in rec.bodies[0]
    assert len(result.data[0].embedding) == 1024


def test_embedding_2_without_dimensions_no_warning(rec: Recorder):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = rec.client().embeddings.create(model="embedding-2", input=["a"])
    assert len(result.data[0].embedding) == 1024


def test_base64_encoding_decodes_to_the_floats_sent(rec: Recorder):
    result = rec.client().embeddings.create(
        model="embedding-3", input=["a", "b", "c"], dimensions=256, encoding_format="base64"
    )
    sent = rec.vectors()
    assert len(result.data) == 3
    for item, floats in zip(result.data, sent):
        assert isinstance(item.embedding, str)
        decoded = array("f")
        decoded.frombytes(base64.b64decode(item.embedding))
        assert len(decoded) == 256
        assert list(decoded) == pytest.approx(floats, rel=1e-6, abs=1e-7)


def test_base64_encoding_with_batches(rec: Recorder):
    texts = [f"t{i}" for i in range(MAX_BATCH + 3)]
    result = rec.client().embeddings.create(
        model="embedding-3", input=texts, dimensions=256, encoding_format="base64"
    )
    assert len(rec.fake.requests) == 2
    for item, floats in zip(result.data, rec.vectors()):
        decoded = array("f", base64.b64decode(item.embedding))
        assert list(decoded) == pytest.approx(floats, rel=1e-6, abs=1e-7)


def test_empty_list_input_is_a_bad_request(rec: Recorder):
    with pytest.raises(BadRequestError, match="input"):
        rec.client().embeddings.create(model="embedding-3", input=[])
    assert rec.fake.requests == []


def test_embeddings_with_raw_response(rec: Recorder):
    raw = rec.client().embeddings.with_raw_response.create(model="embedding-3", input=["a"])
    assert raw.status_code == 200
    assert isinstance(raw.parse(), CreateEmbeddingResponse)


async def test_async_embeddings(rec: Recorder):
    c = rec.aclient()
    result = await c.embeddings.create(model="embedding-3", input=["x", "y"], dimensions=256)
    assert rec.bodies[0] == {"model": "embedding-3", "input": ["x", "y"], "dimensions": 256}
    assert isinstance(result, CreateEmbeddingResponse)
    assert result.provider == "zhipu"
    assert all(len(e.embedding) == 256 for e in result.data)
    assert result.usage.prompt_tokens == rec.answers[0]["usage"]["prompt_tokens"]


async def test_async_embeddings_batched(rec: Recorder):
    texts = [f"text {i}" for i in range(150)]
    result = await rec.aclient().embeddings.create(model="embedding-3", input=texts)
    assert len(rec.fake.requests) == math.ceil(150 / MAX_BATCH)
    assert [e.index for e in result.data] == list(range(150))
    assert [e.embedding for e in result.data] == float32(rec.vectors())
    assert result.usage.total_tokens == sum(a["usage"]["total_tokens"] for a in rec.answers)


async def test_async_embeddings_errors(rec: Recorder):
    c = rec.aclient()
    with pytest.raises(BadRequestError):
        await c.embeddings.create(model="embedding-3", input=["a"], dimensions=300)
    with pytest.raises(BadRequestError, match="input"):
        await c.embeddings.create(model="embedding-3", input=[])
    assert rec.fake.requests == []


# --------------------------------------------------------------------------- models


def zhipu_client(**kwargs: Any) -> OpenAI:
    return OpenAI(provider="zhipu", api_key=KEY, **kwargs)


def test_models_list_sync_iterable_and_data():
    page = zhipu_client().models.list()
    listed = list(page)
    assert listed == list(page.data)
    assert all(isinstance(m, Model) for m in listed)
    by_id = {m.id: m for m in listed}
    for name in LISTED:
        assert name in by_id, name
        assert by_id[name].owned_by == "zhipu"
        assert by_id[name].object == "model"
    assert "glm-4-flash" in by_id and "embedding-3" in by_id


def test_models_list_sends_no_request():
    def handler(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    c = zhipu_client(http_client=httpx.Client(transport=httpx.MockTransport(handler)))
    assert len(list(c.models.list())) >= len(LISTED)


def test_models_retrieve():
    model = zhipu_client().models.retrieve("glm-4-flash")
    assert isinstance(model, Model)
    assert model.id == "glm-4-flash"
    assert model.owned_by == "zhipu"


def test_models_retrieve_unknown_raises_not_found():
    with pytest.raises(NotFoundError) as info:
        zhipu_client().models.retrieve("glm-9000")
    assert "glm-9000" in str(info.value)
    assert info.value.status_code == 404


def test_models_list_includes_config_aliases():
    config = {
        "providers": {"zhipu": {"api_key": KEY}},
        "models": {
            "gpt-4o": "zhipu/glm-4-plus",
            "gpt-4o-mini": ["zhipu/glm-4-flash"],
        },
    }
    c = OpenAI(provider="zhipu", config=config)
    ids = [m.id for m in c.models.list()]
    assert "gpt-4o" in ids and "gpt-4o-mini" in ids
    assert "glm-4-flash" in ids
    assert len(ids) == len(set(ids))
    assert c.models.retrieve("gpt-4o").id == "gpt-4o"


async def test_models_async_await_and_async_for():
    c = AsyncOpenAI(provider="zhipu", api_key=KEY)
    page = await c.models.list()
    ids = {m.id: m.owned_by for m in page.data}
    streamed = {m.id: m.owned_by async for m in c.models.list()}
    assert ids == streamed
    for name in LISTED:
        assert ids[name] == "zhipu"
    model = await c.models.retrieve("glm-4-flash")
    assert model.id == "glm-4-flash" and model.owned_by == "zhipu"
    with pytest.raises(NotFoundError):
        await c.models.retrieve("glm-9000")
