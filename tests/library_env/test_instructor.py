"""instructor (``instructor.from_openai`` + ``response_model``) through both front doors.

instructor wraps the openai client it is given and turns a pydantic model into a forced
function call (``Mode.TOOLS``, its default) or a JSON answer (``Mode.JSON``), validates the
answer into the model, and re-asks with the validation error when it does not fit. Each
test asserts what GLM received on its native wire and the model instructor handed back.
"""

from __future__ import annotations

import instructor
from openai.types.chat import ChatCompletion
from pydantic import BaseModel, field_validator
from test_libraries import (
    HANGZHOU,
    MODEL,
    City,
    async_client,
    bodies,
    by_door,
    sync_client,
    tool_names,
    user_says,
)

from llm_bridge.testing import FakeZhipu

QUESTION = "西湖在哪里？"


def assert_parsed(parsed: BaseModel, expected: BaseModel) -> None:
    """instructor hands back an instance of a subclass it derived from the response model."""
    assert isinstance(parsed, type(expected))
    assert parsed.model_dump() == expected.model_dump()


def assert_forced_city_tool(body: dict) -> None:
    """instructor forces its ``City`` tool by name; GLM takes only ``tool_choice="auto"``,
    so llm-bridge offers that one function alone, which is as forced as GLM gets."""
    assert body["model"] == MODEL
    assert tool_names(body) == ["City"]
    assert body["tool_choice"] == "auto"
    function = body["tools"][0]["function"]
    assert function["description"] == City.__doc__
    assert set(function["parameters"]["properties"]) == {"name", "country"}
    assert function["parameters"]["properties"]["name"]["description"] == "the city's name"


@by_door
def test_instructor_response_model(door: str, fake: FakeZhipu) -> None:
    fake.tool_call("City", HANGZHOU.model_dump())
    client = instructor.from_openai(sync_client(door, fake))

    city, completion = client.chat.completions.create_with_completion(
        model=MODEL, response_model=City, messages=user_says(QUESTION)
    )

    assert_parsed(city, HANGZHOU)
    assert type(completion) is ChatCompletion  # openai's own object underneath
    assert completion.usage is not None and completion.usage.total_tokens > 0
    (body,) = bodies(fake)
    assert_forced_city_tool(body)
    assert body["messages"] == user_says(QUESTION)
    assert not body.get("stream")


@by_door
async def test_instructor_async_response_model(door: str, fake: FakeZhipu) -> None:
    fake.tool_call("City", HANGZHOU.model_dump())
    client = instructor.from_openai(async_client(door, fake))

    city = await client.chat.completions.create(
        model=MODEL, response_model=City, messages=user_says(QUESTION)
    )

    assert_parsed(city, HANGZHOU)
    (body,) = bodies(fake)
    assert_forced_city_tool(body)
    assert body["messages"] == user_says(QUESTION)


class ChineseCity(BaseModel):
    """A city and its country, both written in Chinese."""

    name: str
    country: str

    @field_validator("country")
    @classmethod
    def in_chinese(cls, value: str) -> str:
        if value != "中国":
            raise ValueError("country must be written in Chinese")
        return value


@by_door
def test_instructor_reasks_with_the_validation_error(door: str, fake: FakeZhipu) -> None:
    fake.tool_call("ChineseCity", {"name": "杭州", "country": "China"}, id="call_city_1")
    fake.tool_call("ChineseCity", {"name": "杭州", "country": "中国"})
    client = instructor.from_openai(sync_client(door, fake))

    city = client.chat.completions.create(
        model=MODEL, response_model=ChineseCity, max_retries=2, messages=user_says(QUESTION)
    )

    assert_parsed(city, ChineseCity(name="杭州", country="中国"))
    first, second = bodies(fake)
    assert first["messages"] == user_says(QUESTION)
    question, assistant, tool_result = second["messages"]
    assert question == user_says(QUESTION)[0]
    assert assistant["tool_calls"][0]["id"] == "call_city_1"
    assert tool_result["role"] == "tool" and tool_result["tool_call_id"] == "call_city_1"
    assert "country must be written in Chinese" in tool_result["content"]


@by_door
def test_instructor_json_mode(door: str, fake: FakeZhipu) -> None:
    fake.reply(HANGZHOU.model_dump_json())
    client = instructor.from_openai(sync_client(door, fake), mode=instructor.Mode.JSON)

    city = client.chat.completions.create(
        model=MODEL, response_model=City, messages=user_says(QUESTION)
    )

    assert_parsed(city, HANGZHOU)
    (body,) = bodies(fake)
    assert body["response_format"] == {"type": "json_object"}  # GLM's own JSON mode
    assert "tools" not in body
    system, question = body["messages"]
    assert system["role"] == "system" and '"country"' in system["content"]  # the schema
    assert question == user_says(QUESTION)[0]
