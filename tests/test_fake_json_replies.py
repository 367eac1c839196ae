"""The fakes answer an unscripted request for JSON with JSON (`testing/_json_reply`), so code
that parses structured output runs against them without scripting."""

from __future__ import annotations

import json
from typing import Any, Literal, Optional

import httpx
import pydantic
import pytest

import llm_bridge
from llm_bridge.testing import FakeDashScope, FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu
from llm_bridge.testing._json_reply import json_content


class Stop(pydantic.BaseModel):
    city: str
    nights: int


class Trip(pydantic.BaseModel):
    title: str
    stops: list[Stop]
    kind: Literal["rail", "air"]
    budget: Optional[float] = None
    booked: bool


FAKES = [
    (FakeZhipu, "zhipu", "glm-4-flash", "id.secret"),  # json_schema emulated
    (FakeDashScopeCompatible, "dashscope", "qwen-plus", "sk-test"),  # native json_schema
    (FakeQianfanV2, "qianfan", "ernie-4.5-turbo-128k", "bce-v3/ALTAK-a/b"),
    (FakeDashScope, "dashscope", "qwen-plus", "sk-test"),  # native: parameters.response_format
]


def bridge(fake: Any, provider: str, key: str) -> llm_bridge.OpenAI:
    native = (
        {"providers": {"dashscope": {"api": "native"}}} if isinstance(fake, FakeDashScope) else None
    )
    return llm_bridge.OpenAI(
        provider=provider,
        api_key=key,
        config=native,
        http_client=httpx.Client(transport=fake.transport()),
    )


@pytest.mark.parametrize(("make", "provider", "model", "key"), FAKES)
def test_parse_runs_against_an_unscripted_fake(make: Any, provider: str, model: str, key: str):
    fake = make()
    client = bridge(fake, provider, key)
    answer = client.chat.completions.parse(
        model=model, messages=[{"role": "user", "content": "去杭州"}], response_format=Trip
    )
    trip = answer.choices[0].message.parsed
    assert isinstance(trip, Trip)
    assert "去杭州" in trip.title and trip.kind == "rail" and len(trip.stops) == 1
    assert len(fake.requests) == 1  # right the first time: no re-ask


@pytest.mark.parametrize(("make", "provider", "model", "key"), FAKES)
def test_json_object_gets_the_echo_as_json(make: Any, provider: str, model: str, key: str):
    fake = make()
    client = bridge(fake, provider, key)
    answer = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "answer in JSON"}],
        response_format={"type": "json_object"},
    )
    assert "answer in JSON" in json.loads(answer.choices[0].message.content or "")["reply"]


def test_schemas_with_refs_bounds_and_unions():
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 3},
            "short": {"type": "string", "maxLength": 4},
            "either": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/Leaf"}]},
            "many": {"type": "array", "items": {"type": "number"}, "minItems": 2},
            "fixed": {"const": "x"},
        },
        "$defs": {"Leaf": {"type": "object", "properties": {"ok": {"type": "boolean"}}}},
    }
    body = {"response_format": {"type": "json_schema", "json_schema": {"schema": schema}}}
    assert json.loads(json_content(body, [], "echo text") or "") == {
        "n": 3,
        "short": "echo",
        "either": {"ok": True},
        "many": [0.0, 0.0],
        "fixed": "x",
    }
    assert json_content({}, [], "echo") is None  # no JSON asked for: the prose echo
