"""``response_format: json_schema`` (and so ``chat.completions.parse``) on every provider.

Zhipu has only ``json_object``: the engine sends that with the schema in a system
instruction, checks the answer against the schema, asks once more quoting what was wrong,
and raises `StructuredOutputError` carrying the raw text when the second answer fails too.
The validator itself is tested directly on the JSON Schema subset structured outputs use.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Optional

import openai
import pytest
from helpers import by_door, door_client
from pydantic import BaseModel

import llm_bridge
from llm_bridge._structured import FenceStripper, Schema, check
from llm_bridge.testing import FakeZhipu

KEY = "id.secret"
ASK = [{"role": "user", "content": "杭州在哪个国家?"}]


class City(BaseModel):
    name: str
    country: str
    population_millions: Optional[float]
    kind: Literal["city", "town"]


GOOD = {"name": "杭州", "country": "中国", "population_millions": 12.5, "kind": "city"}


@by_door
def test_parse_works_on_a_provider_with_json_object_only(door: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply(json.dumps(GOOD, ensure_ascii=False))
    parsed = door_client(door, fake).chat.completions.parse(
        model="glm-4-flash", messages=ASK, response_format=City
    )
    assert parsed.choices[0].message.parsed == City(**GOOD)
    sent = json.loads(fake.requests[0].content)
    assert sent["response_format"] == {"type": "json_object"}
    instruction = sent["messages"][0]
    assert instruction["role"] == "system" and "JSON Schema" in instruction["content"]
    assert '"population_millions"' in instruction["content"]
    assert sent["messages"][1:] == ASK  # the caller's messages follow, unchanged


@by_door
def test_code_fences_around_the_answer_are_removed(door: str) -> None:
    fenced = "```json\n" + json.dumps(GOOD, ensure_ascii=False) + "\n```"
    fake = FakeZhipu(api_key=KEY).reply(fenced)
    parsed = door_client(door, fake).chat.completions.parse(
        model="glm-4-flash", messages=ASK, response_format=City
    )
    assert parsed.choices[0].message.parsed == City(**GOOD)
    assert len(fake.requests) == 1


@by_door
def test_a_mismatching_answer_is_asked_for_once_more_quoting_the_problem(door: str) -> None:
    wrong = {**GOOD, "kind": "metropolis"}
    fake = FakeZhipu(api_key=KEY).reply(json.dumps(wrong)).reply(json.dumps(GOOD))
    parsed = door_client(door, fake).chat.completions.parse(
        model="glm-4-flash", messages=ASK, response_format=City
    )
    assert parsed.choices[0].message.parsed == City(**GOOD)
    assert len(fake.requests) == 2
    retry = json.loads(fake.requests[1].content)["messages"]
    assert retry[-2] == {"role": "assistant", "content": json.dumps(wrong)}
    assert retry[-1]["role"] == "user" and "$.kind" in retry[-1]["content"]
    assert "metropolis" in retry[-1]["content"]


@by_door
@pytest.mark.parametrize("stopped", ["length", "content_filter"])
def test_an_answer_cut_short_or_filtered_is_not_asked_for_again(door: str, stopped: str) -> None:
    # openai's parse raises its own error for either, as with a native schema; asking
    # again would resend what was filtered, or pay for the same cut.
    fake = FakeZhipu(api_key=KEY)
    if stopped == "length":
        fake.reply('{"name": "杭', finish_reason="length")
    else:
        fake.sensitive(1, '{"name"')
    fake.reply(json.dumps(GOOD, ensure_ascii=False))
    error = {
        "length": openai.LengthFinishReasonError,
        "content_filter": openai.ContentFilterFinishReasonError,
    }[stopped]
    with pytest.raises(error):
        door_client(door, fake).chat.completions.parse(
            model="glm-4-flash", messages=ASK, response_format=City
        )
    assert len(fake.requests) == 1


def test_two_mismatches_raise_an_error_carrying_the_raw_text() -> None:
    fake = FakeZhipu(api_key=KEY).reply("我不知道").reply('{"name": "杭州"}')
    with pytest.raises(openai.APIResponseValidationError) as caught:
        door_client("bridge", fake).chat.completions.parse(
            model="glm-4-flash", messages=ASK, response_format=City
        )
    error: Any = caught.value
    assert isinstance(error, llm_bridge.StructuredOutputError)
    assert error.raw_text == '{"name": "杭州"}' and "'country' is missing" in error.problem
    assert "City" in str(error) and "also when asked again" in str(error)
    assert len(fake.requests) == 2


def test_a_plain_client_gets_an_openai_error_naming_the_schema() -> None:
    fake = FakeZhipu(api_key=KEY).reply("no").reply("still no")
    with pytest.raises(openai.APIStatusError) as caught:
        door_client("http_client", fake).with_options(max_retries=0).chat.completions.parse(
            model="glm-4-flash", messages=ASK, response_format=City
        )
    assert "does not match the JSON schema 'City'" in str(caught.value)


def test_the_usage_of_both_attempts_is_recorded() -> None:
    fake = FakeZhipu(api_key=KEY).reply("{}").reply(json.dumps(GOOD, ensure_ascii=False))
    bridged = door_client("bridge", fake)
    bridged.chat.completions.parse(model="glm-4-flash", messages=ASK, response_format=City)
    assert len(bridged.usage.records()) == 2


def test_json_object_and_plain_requests_are_left_alone() -> None:
    fake = FakeZhipu(api_key=KEY).reply("{}").reply("hi")
    bridged = door_client("bridge", fake)
    bridged.chat.completions.create(
        model="glm-4-flash", messages=ASK, response_format={"type": "json_object"}
    )
    bridged.chat.completions.create(model="glm-4-flash", messages=ASK)
    first, second = (json.loads(r.content) for r in fake.requests)
    assert first["messages"] == ASK and first["response_format"] == {"type": "json_object"}
    assert second["messages"] == ASK and "response_format" not in second


# --------------------------------------------------------------------------- the validator

SCHEMA = City.model_json_schema()


@pytest.mark.parametrize(
    "answer, problem",
    [
        (GOOD, None),
        ({**GOOD, "population_millions": None}, None),
        ({**GOOD, "population_millions": "many"}, "$.population_millions"),
        ({k: v for k, v in GOOD.items() if k != "name"}, "'name' is missing"),
        ({**GOOD, "kind": "village"}, "not one of"),
        ([GOOD], "expected object, got array"),
        ({**GOOD, "population_millions": 12.0}, None),
    ],
)
def test_the_validator_names_the_first_problem(answer: Any, problem: Optional[str]) -> None:
    _, found = check(json.dumps(answer), Schema("City", SCHEMA))
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


@pytest.mark.parametrize(("value", "fits"), [(3, True), (3.0, True), (3.5, False), (True, False)])
def test_a_whole_number_written_with_a_point_is_an_integer(value: Any, fits: bool) -> None:
    # (as JSON Schema and pydantic take it)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    _, found = check(json.dumps({"n": value}), Schema("N", schema))
    assert (found is None) is fits, found


def test_refs_arrays_and_strict_objects() -> None:
    schema = {
        "type": "object",
        "properties": {"cities": {"type": "array", "items": {"$ref": "#/$defs/C"}}},
        "required": ["cities"],
        "additionalProperties": False,
        "$defs": {
            "C": {
                "type": "object",
                "properties": {"n": {"type": "integer"}},
                "required": ["n"],
                "additionalProperties": False,
            }
        },
    }
    target = Schema("S", schema)
    assert check('{"cities": [{"n": 1}, {"n": 2}]}', target)[1] is None
    assert "$.cities[1].n: expected integer" in (
        check('{"cities": [{"n": 1}, {"n": 2.5}]}', target)[1] or ""
    )
    assert "'extra' is not allowed" in (check('{"cities": [], "extra": 1}', target)[1] or "")
    assert "not JSON" in (check("cities: none", target)[1] or "")


# --------------------------------------------------------------------------- streamed answers

#: Answers a model without native json_schema gives, and the JSON inside them.
FENCED = [
    ("```json\n" + json.dumps(GOOD, ensure_ascii=False) + "\n```", GOOD),
    ("  ```\n" + json.dumps(GOOD, ensure_ascii=False) + "\n```\n", GOOD),
    ("```JSON\n" + json.dumps({**GOOD, "name": "a`b"}, ensure_ascii=False) + "```", None),
    (json.dumps(GOOD, ensure_ascii=False), GOOD),
]


@pytest.mark.parametrize(("answer", "inside"), FENCED)
def test_a_streamed_answers_fences_go_however_it_is_cut(answer: str, inside: Any) -> None:
    expected = json.dumps(inside or {**GOOD, "name": "a`b"}, ensure_ascii=False)
    for size in range(1, len(answer) + 1):
        stripper = FenceStripper()
        pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
        assert "".join(stripper.feed(p) for p in pieces) + stripper.end() == expected, size


def test_text_that_only_looks_like_a_fence_at_first_is_passed_on() -> None:
    stripper = FenceStripper()
    out = stripper.feed("`") + stripper.feed("`x") + stripper.end()
    assert out == "``x"


@by_door
def test_a_streamed_fenced_answer_parses_as_the_unstreamed_one_does(door: str) -> None:
    fenced = "```json\n" + json.dumps(GOOD, ensure_ascii=False) + "\n```"
    fake = FakeZhipu(api_key=KEY).reply(fenced, chunk_size=3)
    client = door_client(door, fake)
    with client.chat.completions.stream(
        model="glm-4-flash", messages=ASK, response_format=City
    ) as stream:
        final = stream.get_final_completion()
    message = final.choices[0].message
    assert message.parsed == City(**GOOD)
    assert message.content is not None and json.loads(message.content) == GOOD
