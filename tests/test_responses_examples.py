"""openai-python's Responses examples, with only the import changed (issue 15).

Each program below is our own code that uses the Responses API the way one of
openai-python's ``examples/responses/`` scripts (or a README snippet) does, named in its
docstring. It is written once against the constructor it is given, ``OpenAI`` /
``AsyncOpenAI`` as ``from openai import ...`` or ``from llm_bridge import ...`` would bind
them, and run through both:

- ``openai``: ``openai.OpenAI(http_client=llm_bridge.http_client(http_client=<fake>))``;
- ``llm_bridge``: ``llm_bridge.OpenAI(http_client=<fake>)``.

The key and base URL come from the environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), as
in the examples. The provider is an offline FakeZhipu, which speaks chat completions only:
every run asserts what came back (openai's ``Response`` types, stream events, parsed
objects) and the chat request the provider received.

Features no chat provider has (``background``, the beta ``multi_agent`` parameter, input
token counting, the Responses WebSocket) follow the documented unsupported-parameter
policy: warn and drop by default, ``BadRequestError`` under ``unsupported_params = "error"``,
and an API llm-bridge does not serve is a ``NotFoundError`` before anything is sent.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Callable, List

import openai
import pytest
from helpers import EXAMPLE_DOORS, example_makers
from openai.types.responses import Response
from pydantic import BaseModel
from test_openai_examples import DynamicValue, Query, Table

import llm_bridge
from llm_bridge.testing import FakeZhipu

DOORS = EXAMPLE_DOORS
KEY = "id.secret"
ZHIPU_ROOT = "https://open.bigmodel.cn/api/paas/v4"
MODEL = "glm-4-flash"
Maker = Callable[..., openai.OpenAI]  # what ``OpenAI`` is to a program
AsyncMaker = Callable[..., openai.AsyncOpenAI]
ignore_unsupported = pytest.mark.filterwarnings("ignore::llm_bridge.UnsupportedParameterWarning")


@dataclass
class Run:
    """One door onto the fake: the constructors a program gets, and the fake behind them."""

    door: str
    fake: FakeZhipu
    OpenAI: Maker
    AsyncOpenAI: AsyncMaker

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.fake.requests]


def make_run(door: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", ZHIPU_ROOT)
    monkeypatch.setenv("ZHIPUAI_API_KEY", KEY)  # the provider's own variable, for llm_bridge
    fake = FakeZhipu(api_key=KEY)
    return Run(door, fake, *example_makers(door, fake))


@pytest.fixture(params=DOORS)
def run(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Run:
    return make_run(request.param, monkeypatch)


STRICT = {"config": {"policy": {"unsupported_params": "error"}}}


# --------------------------------------------------------------------------- the math tutor
# streaming.py, structured_outputs.py and the background examples share this schema.


class Step(BaseModel):
    explanation: str
    output: str


class MathResponse(BaseModel):
    steps: List[Step]
    final_answer: str


SOLVE = "solve 8x + 31 = 2"
SOLUTION = MathResponse(
    steps=[
        Step(explanation="Subtract 31 from both sides.", output="8x = -29"),
        Step(explanation="Divide both sides by 8.", output="x = -29/8"),
    ],
    final_answer="x = -29/8",
)


def check_math_request(body: dict[str, Any]) -> None:
    """The question reached GLM as a chat turn, with a JSON answer asked for and the schema
    spelled out somewhere in the request (GLM has no native json_schema)."""
    assert body["model"] == MODEL
    assert body["messages"][-1] == {"role": "user", "content": SOLVE}
    assert body["response_format"] == {"type": "json_object"}
    wire = json.dumps(body, ensure_ascii=False)
    assert all(name in wire for name in ("final_answer", "explanation", "steps"))


# --------------------------------------------------------------------------- README snippets

PIRATE = "You are a coding assistant that talks like a pirate."
INSTANCE_QUESTION = "How do I check if a Python object is an instance of a class?"


def readme_create(OpenAI: Maker, out: list[Any]) -> None:
    """README "Usage": ``responses.create`` with instructions, printing ``output_text``."""
    client = OpenAI()
    response = client.responses.create(model=MODEL, instructions=PIRATE, input=INSTANCE_QUESTION)
    out.append(response)
    out.append(response.output_text)


def test_readme_create(run: Run) -> None:
    run.fake.reply("Arr, use isinstance(obj, Cls), matey!")
    out: list[Any] = []

    readme_create(run.OpenAI, out)

    response, text = out
    assert isinstance(response, Response) and response.status == "completed"
    assert text == "Arr, use isinstance(obj, Cls), matey!"
    assert response.instructions == PIRATE and response.model == MODEL
    (body,) = run.bodies()
    assert body["messages"] == [
        {"role": "system", "content": PIRATE},
        {"role": "user", "content": INSTANCE_QUESTION},
    ]
    assert not body.get("stream")


FIVE_YEAR_OLD = "Explain disestablishmentarianism to a smart five year old."


async def readme_async_create(AsyncOpenAI: AsyncMaker, out: list[Any]) -> None:
    """README "Async usage": ``await client.responses.create(...)``."""
    client = AsyncOpenAI()
    response = await client.responses.create(model=MODEL, input=FIVE_YEAR_OLD)
    out.append(response.output_text)


async def test_readme_async_create(run: Run) -> None:
    run.fake.reply("It means a church stops being the official one.")
    out: list[Any] = []

    await readme_async_create(run.AsyncOpenAI, out)

    assert out == ["It means a church stops being the official one."]
    (body,) = run.bodies()
    assert body["messages"] == [{"role": "user", "content": FIVE_YEAR_OLD}]


UNICORN = "Write a one-sentence bedtime story about a unicorn."
STORY = "The unicorn counted stars until she fell asleep."


def readme_stream(OpenAI: Maker, out: list[Any]) -> None:
    """README "Streaming responses": ``responses.create(stream=True)``, printing each event."""
    client = OpenAI()
    stream = client.responses.create(model=MODEL, input=UNICORN, stream=True)
    for event in stream:
        out.append(event)


async def readme_async_stream(AsyncOpenAI: AsyncMaker, out: list[Any]) -> None:
    """README "Streaming responses", the async client."""
    client = AsyncOpenAI()
    stream = await client.responses.create(model=MODEL, input=UNICORN, stream=True)
    async for event in stream:
        out.append(event)


def check_readme_stream(run: Run, events: list[Any]) -> None:
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    deltas = [event.delta for event in events if event.type == "response.output_text.delta"]
    assert len(deltas) > 1 and "".join(deltas) == STORY
    assert events[-1].response.output_text == STORY
    assert events[0].response.id == events[-1].response.id
    (body,) = run.bodies()
    assert body["messages"] == [{"role": "user", "content": UNICORN}]
    assert body["stream"] is True


def test_readme_stream(run: Run) -> None:
    run.fake.reply(STORY, chunk_size=7)
    events: list[Any] = []
    readme_stream(run.OpenAI, events)
    check_readme_stream(run, events)


async def test_readme_async_stream(run: Run) -> None:
    run.fake.reply(STORY, chunk_size=7)
    events: list[Any] = []
    await readme_async_stream(run.AsyncOpenAI, events)
    check_readme_stream(run, events)


RACCOON = "https://upload.wikimedia.org/wikipedia/commons/thumb/d/d5/2023_06_08_Raccoon1.jpg/x.jpg"


def readme_vision(OpenAI: Maker, out: list[Any]) -> None:
    """README "Vision": an ``input_text`` and an ``input_image`` URL in one user message."""
    client = OpenAI()
    response = client.responses.create(
        model="glm-4v-flash",
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in this image?"},
                    {"type": "input_image", "image_url": RACCOON},
                ],
            }
        ],
    )
    out.append(response.output_text)


def test_readme_vision(run: Run) -> None:
    run.fake.reply("A raccoon.")
    out: list[Any] = []

    readme_vision(run.OpenAI, out)

    assert out == ["A raccoon."]
    (body,) = run.bodies()
    assert body["model"] == "glm-4v-flash"
    (message,) = body["messages"]
    assert message["role"] == "user"
    assert message["content"][0] == {"type": "text", "text": "What is in this image?"}
    assert message["content"][1]["type"] == "image_url"
    assert message["content"][1]["image_url"]["url"] == RACCOON


def readme_json_mode(OpenAI: Maker, out: list[Any]) -> None:
    """README "Structured outputs" aside: ``text={"format": {"type": "json_object"}}``."""
    client = OpenAI()
    response = client.responses.create(
        input=[{"role": "user", "content": "How much ?"}],
        model=MODEL,
        text={"format": {"type": "json_object"}},
    )
    out.append(json.loads(response.output_text))


def test_readme_json_mode(run: Run) -> None:
    run.fake.reply('{"price": 42}')
    out: list[Any] = []

    readme_json_mode(run.OpenAI, out)

    assert out == [{"price": 42}]
    (body,) = run.bodies()
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][-1] == {"role": "user", "content": "How much ?"}


# --------------------------------------------------------------------------- streaming.py


def streaming(OpenAI: Maker, out: list[Any]) -> Any:
    """examples/responses/streaming.py: ``responses.stream`` with ``text_format``, printing
    the ``output_text`` events, then ``get_final_response()``."""
    client = OpenAI()
    with client.responses.stream(input=SOLVE, model=MODEL, text_format=MathResponse) as stream:
        for event in stream:
            if "output_text" in event.type:
                out.append(event)
    return stream.get_final_response()


async def async_streaming(AsyncOpenAI: AsyncMaker, out: list[Any]) -> Any:
    """examples/responses/streaming.py, with the async client."""
    client = AsyncOpenAI()
    async with client.responses.stream(
        input=SOLVE, model=MODEL, text_format=MathResponse
    ) as stream:
        async for event in stream:
            if "output_text" in event.type:
                out.append(event)
    return await stream.get_final_response()


def check_streaming(run: Run, events: list[Any], final: Any) -> None:
    kinds = [event.type for event in events]
    assert set(kinds) == {"response.output_text.delta", "response.output_text.done"}
    assert kinds.count("response.output_text.delta") > 1
    assert kinds[-1] == "response.output_text.done"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert MathResponse.model_validate_json(text) == SOLUTION
    assert events[-1].text == text
    assert final.output_parsed == SOLUTION
    assert final.output[0].content[0].parsed == SOLUTION
    assert final.status == "completed"
    (request,) = run.fake.requests
    body = json.loads(request.content)
    assert body["stream"] is True
    check_math_request(body)


def test_streaming(run: Run) -> None:
    run.fake.reply(SOLUTION.model_dump_json(), chunk_size=16)
    events: list[Any] = []
    final = streaming(run.OpenAI, events)
    check_streaming(run, events, final)


async def test_async_streaming(run: Run) -> None:
    run.fake.reply(SOLUTION.model_dump_json(), chunk_size=16)
    events: list[Any] = []
    final = await async_streaming(run.AsyncOpenAI, events)
    check_streaming(run, events, final)


# --------------------------------------------------------------------------- structured_outputs.py


def structured_outputs(OpenAI: Maker, out: list[Any]) -> None:
    """examples/responses/structured_outputs.py: ``responses.parse`` with ``text_format``,
    reading ``parsed`` from every output_text part, then from ``output[0].content[0]``."""
    client = OpenAI()
    rsp = client.responses.parse(input=SOLVE, model=MODEL, text_format=MathResponse)
    for output in rsp.output:
        if output.type != "message":
            raise Exception("Unexpected non message")
        for item in output.content:
            if item.type != "output_text":
                raise Exception("unexpected output type")
            if not item.parsed:
                raise Exception("Could not parse response")
            out.append(item.parsed)
            out.append(f"answer: {item.parsed.final_answer}")
    message = rsp.output[0]
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text"
    if not text.parsed:
        raise Exception("Could not parse response")
    out.append(text.parsed.final_answer)


async def async_structured_outputs(AsyncOpenAI: AsyncMaker, out: list[Any]) -> None:
    """examples/responses/structured_outputs.py, with the async client."""
    client = AsyncOpenAI()
    rsp = await client.responses.parse(input=SOLVE, model=MODEL, text_format=MathResponse)
    message = rsp.output[0]
    assert message.type == "message"
    text = message.content[0]
    assert text.type == "output_text"
    out.append(text.parsed)
    out.append(rsp.output_parsed)


def test_structured_outputs(run: Run) -> None:
    run.fake.reply(SOLUTION.model_dump_json())
    out: list[Any] = []

    structured_outputs(run.OpenAI, out)

    assert out == [SOLUTION, "answer: x = -29/8", "x = -29/8"]
    (body,) = run.bodies()
    check_math_request(body)


async def test_async_structured_outputs(run: Run) -> None:
    run.fake.reply(SOLUTION.model_dump_json())
    out: list[Any] = []

    await async_structured_outputs(run.AsyncOpenAI, out)

    assert out == [SOLUTION, SOLUTION]
    (body,) = run.bodies()
    check_math_request(body)


# ------------------------------------------------- structured_outputs_tools.py, streaming_tools.py
# (the Query model is the one openai-python's chat parsing examples use, shared)


LATE_ORDERS = (
    "look up all my orders in november of last year that were fulfilled but not delivered on time"
)
ORDERS_QUERY = {
    "table_name": "orders",
    "columns": ["id", "status", "expected_delivery_date", "delivered_at"],
    "conditions": [
        {"column": "ordered_at", "operator": ">=", "value": "2023-11-01"},
        {"column": "ordered_at", "operator": "<", "value": "2023-12-01"},
        {"column": "status", "operator": "=", "value": "fulfilled"},
        {
            "column": "delivered_at",
            "operator": ">",
            "value": {"column_name": "expected_delivery_date"},
        },
    ],
    "order_by": "asc",
}


def check_query_request(body: dict[str, Any]) -> None:
    assert body["messages"] == [{"role": "user", "content": LATE_ORDERS}]
    (tool,) = body["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "Query"
    parameters = tool["function"]["parameters"]
    assert set(parameters["properties"]) == {"table_name", "columns", "conditions", "order_by"}
    assert "Condition" in parameters["$defs"]  # the nested models travel with it


def structured_outputs_tools(OpenAI: Maker, out: list[Any]) -> None:
    """examples/responses/structured_outputs_tools.py: ``responses.parse`` with
    ``tools=[openai.pydantic_function_tool(Query)]``; the call's ``parsed_arguments``."""
    client = OpenAI()
    response = client.responses.parse(
        model=MODEL, input=LATE_ORDERS, tools=[openai.pydantic_function_tool(Query)]
    )
    out.append(response)
    function_call = response.output[0]
    assert function_call.type == "function_call"
    assert isinstance(function_call.parsed_arguments, Query)
    out.append(function_call.parsed_arguments.table_name)


async def async_structured_outputs_tools(AsyncOpenAI: AsyncMaker, out: list[Any]) -> None:
    """examples/responses/structured_outputs_tools.py, with the async client."""
    client = AsyncOpenAI()
    response = await client.responses.parse(
        model=MODEL, input=LATE_ORDERS, tools=[openai.pydantic_function_tool(Query)]
    )
    out.append(response)
    function_call = response.output[0]
    assert function_call.type == "function_call"
    assert isinstance(function_call.parsed_arguments, Query)
    out.append(function_call.parsed_arguments.table_name)


def check_structured_outputs_tools(run: Run, out: list[Any]) -> None:
    response, table = out
    assert table is Table.orders
    call = response.output[0]
    assert call.name == "Query" and call.call_id
    assert call.parsed_arguments == Query.model_validate(ORDERS_QUERY)
    assert call.parsed_arguments.conditions[-1].value == DynamicValue(
        column_name="expected_delivery_date"
    )
    assert response.tools[0].name == "Query"  # the response echoes the request's tool
    (body,) = run.bodies()
    check_query_request(body)


def test_structured_outputs_tools(run: Run) -> None:
    run.fake.tool_call("Query", ORDERS_QUERY)
    out: list[Any] = []
    structured_outputs_tools(run.OpenAI, out)
    check_structured_outputs_tools(run, out)


async def test_async_structured_outputs_tools(run: Run) -> None:
    run.fake.tool_call("Query", ORDERS_QUERY)
    out: list[Any] = []
    await async_structured_outputs_tools(run.AsyncOpenAI, out)
    check_structured_outputs_tools(run, out)


def streaming_tools(OpenAI: Maker, out: list[Any]) -> Any:
    """examples/responses/streaming_tools.py: ``responses.stream`` with a
    ``pydantic_function_tool``, printing every event."""
    client = OpenAI()
    with client.responses.stream(
        model=MODEL, input=LATE_ORDERS, tools=[openai.pydantic_function_tool(Query)]
    ) as stream:
        for event in stream:
            out.append(event)
    return stream.get_final_response()


async def async_streaming_tools(AsyncOpenAI: AsyncMaker, out: list[Any]) -> Any:
    """examples/responses/streaming_tools.py, with the async client."""
    client = AsyncOpenAI()
    async with client.responses.stream(
        model=MODEL, input=LATE_ORDERS, tools=[openai.pydantic_function_tool(Query)]
    ) as stream:
        async for event in stream:
            out.append(event)
    return await stream.get_final_response()


def check_streaming_tools(run: Run, events: list[Any], final: Any) -> None:
    kinds = [event.type for event in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" not in kinds
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == done.arguments
    assert json.loads(done.arguments) == ORDERS_QUERY
    (item_done,) = [e for e in events if e.type == "response.output_item.done"]
    assert item_done.item.type == "function_call" and item_done.item.name == "Query"
    (call,) = final.output
    assert call.type == "function_call" and call.status == "completed"
    assert call.parsed_arguments == Query.model_validate(ORDERS_QUERY)
    (request,) = run.fake.requests
    body = json.loads(request.content)
    assert body["stream"] is True
    check_query_request(body)


def test_streaming_tools(run: Run) -> None:
    run.fake.tool_call("Query", ORDERS_QUERY)
    events: list[Any] = []
    final = streaming_tools(run.OpenAI, events)
    check_streaming_tools(run, events, final)


async def test_async_streaming_tools(run: Run) -> None:
    run.fake.tool_call("Query", ORDERS_QUERY)
    events: list[Any] = []
    final = await async_streaming_tools(run.AsyncOpenAI, events)
    check_streaming_tools(run, events, final)


# ------------------------------------------------------------ background.py, background_async.py
# ``background`` is a Responses feature no chat provider has: by default it warns and is
# dropped, so the response streams in the foreground. The example breaks off the stream at
# sequence number 10; a response that never finished was never stored, so picking it up
# again with ``retrieve(stream=True, starting_after=10)`` is a NotFoundError saying so, and
# reaches no provider. Under the "error" policy the first call is refused, unsent.

LONG_SOLUTION = SOLUTION.model_dump_json()  # ~20 deltas at chunk_size=8


def background(OpenAI: Maker, out: list[Any], **client_options: Any) -> None:
    """examples/responses/background.py: ``create(background=True, stream=True)`` broken off
    at sequence number 10, then ``retrieve(response_id=..., stream=True, starting_after=10)``."""
    client = OpenAI(**client_options)
    id = None
    with client.responses.create(input=SOLVE, model=MODEL, background=True, stream=True) as stream:
        for event in stream:
            if event.type == "response.created":
                id = event.response.id
                out.append(event.response)
            if "output_text" in event.type:
                out.append(event)
            if event.sequence_number == 10:
                break
    out.append("Interrupted. Continuing...")
    assert id is not None
    with client.responses.retrieve(response_id=id, stream=True, starting_after=10) as stream:
        for event in stream:
            if "output_text" in event.type:
                out.append(event)


async def async_background(AsyncOpenAI: AsyncMaker, out: list[Any], **client_options: Any) -> None:
    """examples/responses/background_async.py."""
    client = AsyncOpenAI(**client_options)
    id = None
    async with await client.responses.create(
        input=SOLVE, model=MODEL, background=True, stream=True
    ) as stream:
        async for event in stream:
            if event.type == "response.created":
                id = event.response.id
                out.append(event.response)
            if "output_text" in event.type:
                out.append(event)
            if event.sequence_number == 10:
                break
    out.append("Interrupted. Continuing...")
    assert id is not None
    async with await client.responses.retrieve(
        response_id=id, stream=True, starting_after=10
    ) as stream:
        async for event in stream:
            if "output_text" in event.type:
                out.append(event)


def check_background_interrupted(run: Run, out: list[Any], caught: pytest.WarningsRecorder) -> None:
    messages = [str(w.message) for w in caught]
    assert any("background" in m for m in messages), messages
    created, *printed = out
    assert created.id.startswith("resp_")
    assert printed[-1] == "Interrupted. Continuing..."
    deltas = printed[:-1]
    assert deltas and all(e.type == "response.output_text.delta" for e in deltas)
    assert deltas[-1].sequence_number == 10
    assert LONG_SOLUTION.startswith("".join(e.delta for e in deltas))
    (body,) = run.bodies()  # the retrieve reached no provider
    assert "background" not in body and body["stream"] is True
    assert body["messages"][-1] == {"role": "user", "content": SOLVE}


def test_background(run: Run) -> None:
    run.fake.reply(LONG_SOLUTION, chunk_size=8)
    out: list[Any] = []
    with (
        pytest.warns(llm_bridge.UnsupportedParameterWarning) as caught,
        pytest.raises(openai.NotFoundError, match="not found") as error,
    ):
        background(run.OpenAI, out)
    assert out[0].id in str(error.value)
    check_background_interrupted(run, out, caught)


async def test_async_background(run: Run) -> None:
    run.fake.reply(LONG_SOLUTION, chunk_size=8)
    out: list[Any] = []
    with (
        pytest.warns(llm_bridge.UnsupportedParameterWarning) as caught,
        pytest.raises(openai.NotFoundError, match="not found") as error,
    ):
        await async_background(run.AsyncOpenAI, out)
    assert out[0].id in str(error.value)
    check_background_interrupted(run, out, caught)


def test_background_under_the_error_policy_is_refused_unsent(run: Run) -> None:
    out: list[Any] = []
    with pytest.raises(openai.BadRequestError, match="background"):
        background(run.OpenAI, out, **STRICT)
    assert out == [] and run.fake.requests == []


async def test_async_background_under_the_error_policy_is_refused_unsent(run: Run) -> None:
    out: list[Any] = []
    with pytest.raises(openai.BadRequestError, match="background"):
        await async_background(run.AsyncOpenAI, out, **STRICT)
    assert out == [] and run.fake.requests == []


# --------------------------------------- background_streaming.py, background_streaming_async.py


def background_streaming(OpenAI: Maker, out: list[Any], **client_options: Any) -> Any:
    """examples/responses/background_streaming.py: ``responses.stream(text_format=...,
    background=True)`` broken off at 10, then ``responses.stream(response_id=...,
    starting_after=10, text_format=...)`` and its ``get_final_response()``."""
    client = OpenAI(**client_options)
    id = None
    with client.responses.stream(
        input=SOLVE, model=MODEL, text_format=MathResponse, background=True
    ) as stream:
        for event in stream:
            if event.type == "response.created":
                id = event.response.id
                out.append(event.response)
            if "output_text" in event.type:
                out.append(event)
            if event.sequence_number == 10:
                break
    out.append("Interrupted. Continuing...")
    assert id is not None
    with client.responses.stream(
        response_id=id, starting_after=10, text_format=MathResponse
    ) as stream:
        for event in stream:
            if "output_text" in event.type:
                out.append(event)
        return stream.get_final_response()


async def async_background_streaming(
    AsyncOpenAI: AsyncMaker, out: list[Any], **client_options: Any
) -> Any:
    """examples/responses/background_streaming_async.py."""
    client = AsyncOpenAI(**client_options)
    id = None
    async with client.responses.stream(
        input=SOLVE, model=MODEL, text_format=MathResponse, background=True
    ) as stream:
        async for event in stream:
            if event.type == "response.created":
                id = event.response.id
                out.append(event.response)
            if "output_text" in event.type:
                out.append(event)
            if event.sequence_number == 10:
                break
    out.append("Interrupted. Continuing...")
    assert id is not None
    async with client.responses.stream(
        response_id=id, starting_after=10, text_format=MathResponse
    ) as stream:
        async for event in stream:
            if "output_text" in event.type:
                out.append(event)
        return await stream.get_final_response()


def test_background_streaming(run: Run) -> None:
    run.fake.reply(LONG_SOLUTION, chunk_size=8)
    out: list[Any] = []
    with (
        pytest.warns(llm_bridge.UnsupportedParameterWarning) as caught,
        pytest.raises(openai.NotFoundError, match="not found") as error,
    ):
        background_streaming(run.OpenAI, out)
    assert out[0].id in str(error.value)
    check_background_interrupted(run, out, caught)
    check_math_request(run.bodies()[0])


async def test_async_background_streaming(run: Run) -> None:
    run.fake.reply(LONG_SOLUTION, chunk_size=8)
    out: list[Any] = []
    with (
        pytest.warns(llm_bridge.UnsupportedParameterWarning) as caught,
        pytest.raises(openai.NotFoundError, match="not found") as error,
    ):
        await async_background_streaming(run.AsyncOpenAI, out)
    assert out[0].id in str(error.value)
    check_background_interrupted(run, out, caught)
    check_math_request(run.bodies()[0])


def test_background_streaming_under_the_error_policy_is_refused_unsent(run: Run) -> None:
    out: list[Any] = []
    with pytest.raises(openai.BadRequestError, match="background"):
        background_streaming(run.OpenAI, out, **STRICT)
    assert out == [] and run.fake.requests == []


# When the answer is short the first stream ends before sequence number 10, the response is
# stored, and the example goes on to stream the stored response by id. llm-bridge must then
# either replay it as Responses events (ending in response.completed, so the helper's
# get_final_response() works) or refuse with an API error saying why; an empty stream that
# leaves get_final_response() with nothing is neither.

SHORT_SOLUTION = MathResponse(steps=[], final_answer="x = -29/8")


def resume_stored(client: openai.OpenAI, response_id: str) -> tuple[list[Any], Any]:
    """The second half of background_streaming.py, for a response that finished and was
    stored: stream it again by id and take the final response."""
    with client.responses.stream(
        response_id=response_id, starting_after=10, text_format=MathResponse
    ) as stream:
        events = list(stream)
        return events, stream.get_final_response()


@ignore_unsupported
def test_background_streaming_of_a_finished_response(run: Run) -> None:
    run.fake.reply(SHORT_SOLUTION.model_dump_json(), chunk_size=100)  # one delta
    client = run.OpenAI()
    with client.responses.stream(
        input=SOLVE, model=MODEL, text_format=MathResponse, background=True
    ) as stream:
        events = list(stream)  # fewer than 11 events: never broken off
    assert events[-1].type == "response.completed" and events[-1].sequence_number < 10
    made = events[-1].response
    assert client.responses.retrieve(made.id).output_text == made.output_text  # stored

    try:
        replayed, final = resume_stored(client, made.id)
    except openai.APIStatusError as error:  # refusing is fine, if it says why
        assert "stream" in str(error)
    else:
        assert replayed and replayed[-1].type == "response.completed"
        assert all(event.sequence_number > 10 for event in replayed)
        assert final.id == made.id and final.output_parsed == SHORT_SOLUTION
    assert len(run.fake.requests) == 1


# ------------------------------------------------------------------ multi_agent_streaming.py
# The beta client's ``multi_agent`` parameter asks OpenAI's server to run sub-agents: a
# Responses feature no chat provider has, so it follows the policy (warn and drop); the
# coordinator's answer streams as an ordinary message with no agent attached.

PROPOSALS = "Compare Proposal Alpha and Proposal Beta; delegate each to an agent."


def multi_agent_streaming(OpenAI: Maker, out: list[Any]) -> None:
    """examples/responses/multi_agent_streaming.py: ``client.beta.responses.create`` with
    ``multi_agent`` and ``betas``, labelling text deltas by the agent of their item."""
    client = OpenAI()
    stream = client.beta.responses.create(
        model=MODEL,
        input=PROPOSALS,
        multi_agent={"enabled": True},
        stream=True,
        betas=["responses_multi_agent=v1"],
    )
    item_agents: dict[int, str] = {}
    labeled: set[int] = set()
    for event in stream:
        if event.type == "response.output_item.added":
            item = event.item
            item_agents[event.output_index] = item.agent.agent_name if item.agent else "/root"
        elif event.type == "response.output_text.delta":
            name = item_agents.get(event.output_index, "/root")
            if event.output_index not in labeled:
                out.append(f"Coordinator: {name}" if name == "/root" else f"Agent: {name}")
                labeled.add(event.output_index)
            out.append(event.delta)


def test_multi_agent_streaming(run: Run) -> None:
    run.fake.reply("Beta keeps the data in the VPC; pick Beta.", chunk_size=6)
    out: list[Any] = []

    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match="multi_agent"):
        multi_agent_streaming(run.OpenAI, out)

    assert out[0] == "Coordinator: /root"
    assert "".join(out[1:]) == "Beta keeps the data in the VPC; pick Beta."
    (body,) = run.bodies()
    assert body["messages"] == [{"role": "user", "content": PROPOSALS}]
    assert "multi_agent" not in body  # OpenAI's server-side agents: not a GLM parameter


def test_multi_agent_under_the_error_policy_is_refused_unsent(
    run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    maker = run.OpenAI
    monkeypatch.setattr(run, "OpenAI", lambda: maker(**STRICT))
    with pytest.raises(openai.BadRequestError, match="multi_agent"):
        multi_agent_streaming(run.OpenAI, [])
    assert run.fake.requests == []


# ----------------------------------------------------------------- responses_input_tokens.py
# ``POST /responses/input_tokens`` is not served: a NotFoundError before any request, which
# names what is missing (input token counting), not the whole Responses API (served).


def responses_input_tokens(OpenAI: Maker, out: list[Any]) -> None:
    """examples/responses_input_tokens.py: ``responses.input_tokens.count`` with a strict
    function tool and a forced ``tool_choice``."""
    client = OpenAI()
    response = client.responses.input_tokens.count(
        model=MODEL,
        instructions="You are a concise assistant.",
        input=[
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "What's the weather in Hangzhou?"}],
            }
        ],
        tools=[
            {
                "type": "function",
                "name": "get_current_weather",
                "description": "Get current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {"location": {"type": "string"}},
                    "required": ["location"],
                    "additionalProperties": False,
                },
                "strict": True,
            }
        ],
        tool_choice={"type": "function", "name": "get_current_weather"},
    )
    out.append(response.input_tokens)


def test_responses_input_tokens(run: Run) -> None:
    out: list[Any] = []
    with pytest.raises(openai.NotFoundError) as caught:
        responses_input_tokens(run.OpenAI, out)
    assert out == [] and run.fake.requests == []
    message = str(caught.value)
    assert "input_tokens" in message or "input token" in message, message
    assert "does not serve the Responses API" not in message, message


# --------------------------------------------------------------------------- websocket.py
# ``client.responses.connect()`` opens a WebSocket to ``<base_url>/responses`` itself, past
# any HTTP client. The opening is replaced here by a recorder (nothing leaves the machine).
# llm_bridge.OpenAI serves no Responses WebSocket, so the documented policy for an API it
# does not serve applies: a NotFoundError before anything is dialled, not a WebSocket to
# the provider's host carrying the provider's key. (openai.OpenAI with llm-bridge's HTTP
# client cannot be helped: the WebSocket never meets the HTTP client.)


class Dialled(Exception):
    """Raised by the recorder in place of a network connection."""


def websocket(OpenAI: Maker, out: list[Any]) -> None:
    """examples/responses/websocket.py, its first turn: ``responses.connect()``, then
    ``connection.response.create(..., stream=True)`` with a forced function tool."""
    client = OpenAI()
    with client.responses.connect() as connection:
        connection.response.create(
            model=MODEL,
            input="Use get_sku_inventory for sku='sku-froge-lily-pad-deluxe'.",
            stream=True,
            tools=[
                {
                    "type": "function",
                    "name": "get_sku_inventory",
                    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}},
                    "strict": False,
                }
            ],
            tool_choice={"type": "function", "name": "get_sku_inventory"},
        )
        for event in connection:
            out.append(event)
            break


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, str]]]:
    from openai.lib import _websocket

    seen: list[tuple[str, dict[str, str]]] = []

    def record(url: str, **kwargs: Any) -> Any:
        seen.append((url, dict(kwargs.get("additional_headers") or {})))
        raise Dialled(url)

    monkeypatch.setattr(_websocket, "_connect_sync", record)
    return seen


def test_websocket_is_not_served(
    dials: list[tuple[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    run = make_run("llm_bridge", monkeypatch)
    out: list[Any] = []
    with pytest.raises(openai.NotFoundError):
        websocket(run.OpenAI, out)
    assert dials == [], f"dialled {dials[0][0]} with the provider's key" if dials else ""
    assert out == [] and run.fake.requests == []


def test_websocket_through_the_http_client_bypasses_llm_bridge(
    dials: list[tuple[str, dict[str, str]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The limit of the ``http_client`` door, recorded: openai dials the base URL itself."""
    run = make_run("openai", monkeypatch)
    with pytest.raises(Dialled):
        websocket(run.OpenAI, [])
    ((url, _headers),) = dials
    assert url.startswith("wss://open.bigmodel.cn/api/paas/v4/responses")
    assert run.fake.requests == []


# --------------------------------------------------------------------------- no warnings


def test_the_supported_examples_warn_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples that use only translatable features run without a single warning."""
    run = make_run("llm_bridge", monkeypatch)
    run.fake.reply("Arr.").reply(SOLUTION.model_dump_json()).tool_call("Query", ORDERS_QUERY)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        readme_create(run.OpenAI, [])
        structured_outputs(run.OpenAI, [])
        structured_outputs_tools(run.OpenAI, [])
    assert len(run.fake.requests) == 3
