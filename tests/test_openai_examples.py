"""openai-python's own chat and parsing examples, with only the import changed.

Each program below is our own code that uses the API the way one of openai-python's
``examples/`` scripts does (named in its docstring), written once against the constructor
it is given: ``OpenAI`` / ``AsyncOpenAI`` as ``from openai import ...`` or
``from llm_bridge import ...`` would bind them. The examples take their key and base URL
from the environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``), and so do these runs; the
only thing the harness adds is the offline fake provider behind the HTTP client:

- ``openai``: ``openai.OpenAI(http_client=llm_bridge.http_client(http_client=<fake>))``;
- ``llm_bridge``: ``llm_bridge.OpenAI(http_client=<fake>)``.

Every run asserts what the program got back (printed) and what the provider received on
its native wire. Zhipu has no native ``json_schema`` and DashScope's ``json_object`` needs
the word "json" in the messages, so the parsing examples also run against DashScope (native
and compatible mode). The fakes answer with JSON that matches the example's schema.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable, List, Union

import httpx
import openai
import pytest
from helpers import EXAMPLE_DOORS, example_makers
from pydantic import BaseModel

import llm_bridge
from llm_bridge.testing import (
    FakeDashScope,
    FakeDashScopeCompatible,
    FakeProvider,
    FakeZhipu,
    Reply,
    ToolCallSpec,
)

DOORS = EXAMPLE_DOORS
Maker = Callable[[], openai.OpenAI]  # what ``OpenAI`` is to a program: call it, get a client
AsyncMaker = Callable[[], openai.AsyncOpenAI]
ignore_unsupported = pytest.mark.filterwarnings("ignore::llm_bridge.UnsupportedParameterWarning")


@dataclass(frozen=True)
class Target:
    """A provider as the examples reach it: a fake, the base URL and key in the environment."""

    name: str
    fake_class: type[FakeProvider]
    base_url: str
    key_variable: str
    key: str
    model: str


ZHIPU = Target(
    "zhipu",
    FakeZhipu,
    "https://open.bigmodel.cn/api/paas/v4",
    "ZHIPUAI_API_KEY",
    "id.secret",
    "glm-4-flash",
)
DASHSCOPE = Target(
    "dashscope",
    FakeDashScope,
    "https://dashscope.aliyuncs.com/api/v1",
    "DASHSCOPE_API_KEY",
    "sk-ds",
    "qwen-plus",
)
DASHSCOPE_COMPATIBLE = Target(
    "dashscope-compatible",
    FakeDashScopeCompatible,
    "https://dashscope.aliyuncs.com/compatible-mode/v1",
    "DASHSCOPE_API_KEY",
    "sk-ds",
    "qwen-plus",
)


@dataclass
class Run:
    """One door onto one provider: the constructors a program gets, and the fake behind them."""

    door: str
    target: Target
    fake: Any
    OpenAI: Maker
    AsyncOpenAI: AsyncMaker

    @property
    def model(self) -> str:
        return self.target.model

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.fake.requests]


def make_run(door: str, target: Target, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.setenv("OPENAI_API_KEY", target.key)
    monkeypatch.setenv("OPENAI_BASE_URL", target.base_url)
    monkeypatch.setenv(target.key_variable, target.key)
    fake = target.fake_class(api_key=target.key)
    return Run(door, target, fake, *example_makers(door, fake))


@pytest.fixture(params=DOORS)
def door(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def zhipu(door: str, monkeypatch: pytest.MonkeyPatch) -> Run:
    return make_run(door, ZHIPU, monkeypatch)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def sent_messages(body: dict[str, Any]) -> list[Any]:
    """The messages of a request body (DashScope's native API nests them under ``input``)."""
    return body["messages"] if "messages" in body else body["input"]["messages"]


def streamed(request: httpx.Request) -> bool:
    """Whether a request asked for a stream (DashScope's native API asks by a header)."""
    if request.headers.get("X-DashScope-SSE") == "enable":
        return True
    return json.loads(request.content).get("stream") is True


def sent_options(body: dict[str, Any]) -> dict[str, Any]:
    """The generation options of a request body (``parameters`` on DashScope's native API)."""
    return body.get("parameters", body)


# --------------------------------------------------------------------------- demo.py

SAY_TEST = user("Say this is a test")
LIST_FILES = user("How do I output all files in a directory using Python?")


def demo(OpenAI: Maker, model: str, out: list[Any]) -> None:
    """examples/demo.py: a standard request, a streaming one, then ``with_raw_response``."""
    client = OpenAI()

    out.append("----- standard request -----")
    completion = client.chat.completions.create(model=model, messages=SAY_TEST)
    out.append(completion.choices[0].message.content)

    out.append("----- streaming request -----")
    stream = client.chat.completions.create(model=model, messages=LIST_FILES, stream=True)
    for chunk in stream:
        if not chunk.choices:
            continue
        out.append(chunk.choices[0].delta.content)  # the example prints it, None or not

    out.append("----- custom response headers test -----")
    response = client.chat.completions.with_raw_response.create(model=model, messages=SAY_TEST)
    completion = response.parse()
    out.append(response.request_id)
    out.append(completion.choices[0].message.content)
    out.append(completion.id)


def test_demo(zhipu: Run) -> None:
    zhipu.fake.reply("This is a test.")
    zhipu.fake.reply("Use os.listdir() or pathlib.Path.iterdir().", chunk_size=5)
    zhipu.fake.reply("This is a test, again.")
    out: list[Any] = []

    demo(zhipu.OpenAI, zhipu.model, out)

    assert out[:3] == [
        "----- standard request -----",
        "This is a test.",
        "----- streaming request -----",
    ]
    marker = out.index("----- custom response headers test -----")
    streamed = out[3:marker]
    assert all(isinstance(piece, str) for piece in streamed), streamed  # nothing prints "None"
    assert "".join(streamed) == "Use os.listdir() or pathlib.Path.iterdir()."
    request_id, content, completion_id = out[marker + 1 :]
    assert content == "This is a test, again."
    assert request_id and request_id == completion_id  # Zhipu's task id, as x-request-id
    first, second, third = zhipu.bodies()
    assert first["messages"] == third["messages"] == SAY_TEST
    assert second["messages"] == LIST_FILES and second["stream"] is True
    assert not first.get("stream") and not third.get("stream")
    assert {body["model"] for body in (first, second, third)} == {"glm-4-flash"}


# --------------------------------------------------------------------------- async_demo.py


async def async_demo(AsyncOpenAI: AsyncMaker, model: str, out: list[Any]) -> None:
    """examples/async_demo.py: a streamed request read with ``async for``."""
    client = AsyncOpenAI()
    stream = await client.chat.completions.create(model=model, messages=SAY_TEST, stream=True)
    async for chunk in stream:
        if not chunk.choices:
            continue
        out.append(chunk.choices[0].delta.content)


async def test_async_demo(zhipu: Run) -> None:
    zhipu.fake.reply("这是一个测试。", chunk_size=2)
    out: list[Any] = []

    await async_demo(zhipu.AsyncOpenAI, zhipu.model, out)

    assert all(isinstance(piece, str) for piece in out), out
    assert "".join(out) == "这是一个测试。"
    (body,) = zhipu.bodies()
    assert body["messages"] == SAY_TEST and body["stream"] is True


# --------------------------------------------------------------------------- streaming.py
# The example streams the legacy completions API, which the providers do not serve: its call
# must fail clearly without reaching them. Its manual iteration (next() on the stream, then a
# for loop over the rest) is then applied to a streamed chat completion.

COUNTING = user("1,2,3,")


def streaming(OpenAI: Maker, model: str, out: list[Any]) -> None:
    """examples/streaming.py, sync_main."""
    client = OpenAI()
    try:
        client.completions.create(
            model=model, prompt="1,2,3,", max_tokens=5, temperature=0, stream=True
        )
    except openai.NotFoundError as error:
        out.append(error)
    response = client.chat.completions.create(
        model=model, messages=COUNTING, max_tokens=5, temperature=0, stream=True
    )
    first = next(response)
    out.append(first.to_json())
    for data in response:
        out.append(data.to_json())


async def async_streaming(AsyncOpenAI: AsyncMaker, model: str, out: list[Any]) -> None:
    """examples/streaming.py, async_main."""
    client = AsyncOpenAI()
    try:
        await client.completions.create(
            model=model, prompt="1,2,3,", max_tokens=5, temperature=0, stream=True
        )
    except openai.NotFoundError as error:
        out.append(error)
    response = await client.chat.completions.create(
        model=model, messages=COUNTING, max_tokens=5, temperature=0, stream=True
    )
    first = await response.__anext__()
    out.append(first.to_json())
    async for data in response:
        out.append(data.to_json())


def check_streaming(run: Run, out: list[Any]) -> None:
    error, *dumps = out
    assert isinstance(error, openai.NotFoundError), error
    assert "legacy completions" in str(error)
    chunks = [json.loads(text) for text in dumps]
    assert len(chunks) == 4  # "4,", "5,", "6", then the finishing chunk
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "4,5,6"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    (body,) = run.bodies()  # the legacy call reached no provider
    assert body["messages"] == COUNTING and body["stream"] is True
    assert body["max_tokens"] == 5
    assert body["do_sample"] is False  # temperature=0: GLM's greedy decoding


def test_streaming(zhipu: Run) -> None:
    zhipu.fake.reply("4,5,6", chunk_size=2)
    out: list[Any] = []
    streaming(zhipu.OpenAI, zhipu.model, out)
    check_streaming(zhipu, out)


async def test_async_streaming(zhipu: Run) -> None:
    zhipu.fake.reply("4,5,6", chunk_size=2)
    out: list[Any] = []
    await async_streaming(zhipu.AsyncOpenAI, zhipu.model, out)
    check_streaming(zhipu, out)


# ------------------------------------------------------------------ with_streaming_response
# Not an example script: openai-python's README, "Accessing raw response data" ->
# "`.with_streaming_response`" (there without a stream; here also with stream=True).


def streaming_response(OpenAI: Maker, model: str, out: list[Any]) -> None:
    client = OpenAI()
    with client.chat.completions.with_streaming_response.create(
        messages=SAY_TEST, model=model
    ) as response:
        out.append(response.headers.get("content-type"))
        out.append("".join(response.iter_lines()))
    with client.chat.completions.with_streaming_response.create(
        messages=SAY_TEST, model=model, stream=True
    ) as response:
        out.append(response.headers.get("content-type"))
        out.extend(line for line in response.iter_lines() if line)


def test_with_streaming_response(zhipu: Run) -> None:
    zhipu.fake.reply("This is a test.").reply("流式回答", chunk_size=2)
    out: list[Any] = []

    streaming_response(zhipu.OpenAI, zhipu.model, out)

    json_type, body, sse_type, *lines = out
    assert json_type.startswith("application/json")
    assert json.loads(body)["choices"][0]["message"]["content"] == "This is a test."
    assert sse_type.startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(line.removeprefix("data: ")) for line in lines[:-1]]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "流式回答"
    first, second = zhipu.bodies()
    assert not first.get("stream") and second["stream"] is True


# --------------------------------------------------------------------------- parsing.py


class Step(BaseModel):
    explanation: str
    output: str


class MathResponse(BaseModel):
    steps: List[Step]
    final_answer: str


TUTOR = [
    {"role": "system", "content": "You are a helpful math tutor."},
    {"role": "user", "content": "solve 8x + 31 = 2"},
]
SOLUTION = MathResponse(
    steps=[
        Step(explanation="Subtract 31 from both sides.", output="8x = -29"),
        Step(explanation="Divide both sides by 8.", output="x = -29/8"),
    ],
    final_answer="x = -29/8",
)


def parsing(OpenAI: Maker, model: str, out: list[Any]) -> None:
    """examples/parsing.py."""
    client = OpenAI()
    completion = client.chat.completions.parse(
        model=model, messages=TUTOR, response_format=MathResponse
    )
    message = completion.choices[0].message
    if message.parsed:
        out.append(message.parsed.steps)
        out.append(f"answer: {message.parsed.final_answer}")
    else:
        out.append(message.refusal)


async def async_parsing(AsyncOpenAI: AsyncMaker, model: str, out: list[Any]) -> None:
    """examples/parsing.py, with the async client."""
    client = AsyncOpenAI()
    completion = await client.chat.completions.parse(
        model=model, messages=TUTOR, response_format=MathResponse
    )
    message = completion.choices[0].message
    if message.parsed:
        out.append(message.parsed.steps)
        out.append(f"answer: {message.parsed.final_answer}")
    else:
        out.append(message.refusal)


def check_structured_request(run: Run, body: dict[str, Any]) -> None:
    """The provider got the caller's messages and a JSON response format, and the schema
    reached the model one way or another (natively, or spelled out in a message)."""
    messages = sent_messages(body)
    assert messages[-len(TUTOR) :] == TUTOR
    fmt = sent_options(body)["response_format"]
    assert fmt["type"] in ("json_schema", "json_object")
    if fmt["type"] == "json_object" and run.target.fake_class is not FakeZhipu:
        # DashScope refuses json_object unless some message says "json"
        assert "json" in json.dumps(messages, ensure_ascii=False).lower()
    wire = json.dumps(body, ensure_ascii=False)
    assert all(name in wire for name in ("final_answer", "explanation", "steps"))


@ignore_unsupported
@pytest.mark.parametrize("target", [ZHIPU, DASHSCOPE, DASHSCOPE_COMPATIBLE], ids=lambda t: t.name)
def test_parsing(door: str, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(door, target, monkeypatch)
    run.fake.reply(SOLUTION.model_dump_json())
    out: list[Any] = []

    parsing(run.OpenAI, run.model, out)

    assert out == [SOLUTION.steps, "answer: x = -29/8"]
    (body,) = run.bodies()
    check_structured_request(run, body)


@ignore_unsupported
async def test_async_parsing(zhipu: Run) -> None:
    zhipu.fake.reply(SOLUTION.model_dump_json())
    out: list[Any] = []

    await async_parsing(zhipu.AsyncOpenAI, zhipu.model, out)

    assert out == [SOLUTION.steps, "answer: x = -29/8"]
    (body,) = zhipu.bodies()
    check_structured_request(zhipu, body)


# --------------------------------------------------------------------------- parsing_stream.py


def parsing_stream(OpenAI: Maker, model: str, out: list[Any]) -> Any:
    """examples/parsing_stream.py: ``chat.completions.stream`` with a response_format."""
    client = OpenAI()
    with client.chat.completions.stream(
        model=model, messages=TUTOR, response_format=MathResponse
    ) as stream:
        for event in stream:
            out.append(event)
    return stream.get_final_completion()


async def async_parsing_stream(AsyncOpenAI: AsyncMaker, model: str, out: list[Any]) -> Any:
    """examples/parsing_stream.py, with the async client."""
    client = AsyncOpenAI()
    async with client.chat.completions.stream(
        model=model, messages=TUTOR, response_format=MathResponse
    ) as stream:
        async for event in stream:
            out.append(event)
    return await stream.get_final_completion()


def check_parsing_stream(run: Run, events: list[Any], final: Any) -> None:
    kinds = [event.type for event in events]
    assert "refusal.delta" not in kinds and "refusal.done" not in kinds
    assert kinds.count("content.done") == 1 and kinds[-1] == "content.done"
    assert kinds.count("chunk") >= kinds.count("content.delta") > 1
    text = "".join(event.delta for event in events if event.type == "content.delta")
    assert MathResponse.model_validate_json(text) == SOLUTION
    (done,) = [event for event in events if event.type == "content.done"]
    assert done.parsed == SOLUTION and done.content == text
    message = final.choices[0].message
    assert message.parsed == SOLUTION and message.content == text
    assert final.choices[0].finish_reason == "stop"
    (request,) = run.fake.requests
    assert streamed(request)
    check_structured_request(run, json.loads(request.content))


@ignore_unsupported
@pytest.mark.parametrize("target", [ZHIPU, DASHSCOPE], ids=lambda t: t.name)
def test_parsing_stream(door: str, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(door, target, monkeypatch)
    run.fake.reply(SOLUTION.model_dump_json(), chunk_size=16)
    events: list[Any] = []

    final = parsing_stream(run.OpenAI, run.model, events)

    check_parsing_stream(run, events, final)


@ignore_unsupported
async def test_async_parsing_stream(zhipu: Run) -> None:
    zhipu.fake.reply(SOLUTION.model_dump_json(), chunk_size=16)
    events: list[Any] = []

    final = await async_parsing_stream(zhipu.AsyncOpenAI, zhipu.model, events)

    check_parsing_stream(zhipu, events, final)


# --------------------------------------------------------------------------- parsing_tools.py


class Table(str, Enum):
    orders = "orders"
    customers = "customers"
    products = "products"


class Column(str, Enum):
    id = "id"
    status = "status"
    expected_delivery_date = "expected_delivery_date"
    delivered_at = "delivered_at"
    shipped_at = "shipped_at"
    ordered_at = "ordered_at"
    canceled_at = "canceled_at"


class Operator(str, Enum):
    eq = "="
    gt = ">"
    lt = "<"
    le = "<="
    ge = ">="
    ne = "!="


class OrderBy(str, Enum):
    asc = "asc"
    desc = "desc"


class DynamicValue(BaseModel):
    column_name: str


class Condition(BaseModel):
    column: str
    operator: Operator
    value: Union[str, int, DynamicValue]


class Query(BaseModel):
    table_name: Table
    columns: List[Column]
    conditions: List[Condition]
    order_by: OrderBy


ORDERS_QUESTION = [
    {
        "role": "system",
        "content": "You are a helpful assistant. The current date is August 6, 2024. You help "
        "users query for the data they are looking for by calling the query function.",
    },
    {
        "role": "user",
        "content": "look up all my orders in november of last year that were fulfilled but "
        "not delivered on time",
    },
]
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


def parsing_tools(OpenAI: Maker, model: str, out: list[Any]) -> None:
    """examples/parsing_tools.py: ``parse`` with ``openai.pydantic_function_tool``."""
    client = OpenAI()
    completion = client.chat.completions.parse(
        model=model, messages=ORDERS_QUESTION, tools=[openai.pydantic_function_tool(Query)]
    )
    tool_call = (completion.choices[0].message.tool_calls or [])[0]
    out.append(tool_call.function)
    assert isinstance(tool_call.function.parsed_arguments, Query)
    out.append(tool_call.function.parsed_arguments.table_name)


async def async_parsing_tools(AsyncOpenAI: AsyncMaker, model: str, out: list[Any]) -> None:
    """examples/parsing_tools.py, with the async client."""
    client = AsyncOpenAI()
    completion = await client.chat.completions.parse(
        model=model, messages=ORDERS_QUESTION, tools=[openai.pydantic_function_tool(Query)]
    )
    tool_call = (completion.choices[0].message.tool_calls or [])[0]
    out.append(tool_call.function)
    assert isinstance(tool_call.function.parsed_arguments, Query)
    out.append(tool_call.function.parsed_arguments.table_name)


def check_parsing_tools(run: Run, out: list[Any]) -> None:
    function, table = out
    assert table is Table.orders
    assert function.name == "Query"
    assert function.parsed_arguments == Query.model_validate(ORDERS_QUERY)
    assert function.parsed_arguments.conditions[-1].value == DynamicValue(
        column_name="expected_delivery_date"
    )
    (body,) = run.bodies()
    assert sent_messages(body) == ORDERS_QUESTION
    (tool,) = sent_options(body)["tools"]
    assert tool["type"] == "function" and tool["function"]["name"] == "Query"
    parameters = tool["function"]["parameters"]
    assert set(parameters["properties"]) == {"table_name", "columns", "conditions", "order_by"}
    assert "Condition" in parameters["$defs"]  # the nested models travel with it


@pytest.mark.parametrize("target", [ZHIPU, DASHSCOPE], ids=lambda t: t.name)
def test_parsing_tools(door: str, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    run = make_run(door, target, monkeypatch)
    run.fake.tool_call("Query", ORDERS_QUERY)
    out: list[Any] = []
    parsing_tools(run.OpenAI, run.model, out)
    check_parsing_tools(run, out)


async def test_async_parsing_tools(zhipu: Run) -> None:
    zhipu.fake.tool_call("Query", ORDERS_QUERY)
    out: list[Any] = []
    await async_parsing_tools(zhipu.AsyncOpenAI, zhipu.model, out)
    check_parsing_tools(zhipu, out)


# ------------------------------------------------------------------ parsing_tools_stream.py


class GetWeather(BaseModel):
    city: str
    country: str


WEATHER_QUESTION = user("What's the weather like in SF and New York?")
TWO_CITIES = Reply(
    tool_calls=[
        ToolCallSpec("get_weather", {"city": "San Francisco", "country": "US"}),
        ToolCallSpec("get_weather", {"city": "New York", "country": "US"}),
    ]
)


def parsing_tools_stream(OpenAI: Maker, model: str, out: list[Any]) -> Any:
    """examples/parsing_tools_stream.py: streamed parallel tool calls, parsed."""
    client = OpenAI()
    with client.chat.completions.stream(
        model=model,
        messages=WEATHER_QUESTION,
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
        parallel_tool_calls=True,
    ) as stream:
        for event in stream:
            if event.type in (
                "tool_calls.function.arguments.delta",
                "tool_calls.function.arguments.done",
            ):
                out.append(event)
    return stream.get_final_completion()


async def async_parsing_tools_stream(AsyncOpenAI: AsyncMaker, model: str, out: list[Any]) -> Any:
    """examples/parsing_tools_stream.py, with the async client."""
    client = AsyncOpenAI()
    async with client.chat.completions.stream(
        model=model,
        messages=WEATHER_QUESTION,
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
        parallel_tool_calls=True,
    ) as stream:
        async for event in stream:
            if event.type in (
                "tool_calls.function.arguments.delta",
                "tool_calls.function.arguments.done",
            ):
                out.append(event)
    return await stream.get_final_completion()


def check_parsing_tools_stream(run: Run, events: list[Any], final: Any) -> None:
    cities = [
        GetWeather(city="San Francisco", country="US"),
        GetWeather(city="New York", country="US"),
    ]
    done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert [(event.index, event.name, event.parsed_arguments) for event in done] == [
        (0, "get_weather", cities[0]),
        (1, "get_weather", cities[1]),
    ], "every tool call ends with its own arguments.done event, as on OpenAI's stream"
    for i, event in enumerate(done):
        deltas = [e.arguments_delta for e in events if e.type.endswith(".delta") and e.index == i]
        assert "".join(deltas) == event.arguments
    calls = final.choices[0].message.tool_calls or []
    assert [call.function.parsed_arguments for call in calls] == cities
    assert final.choices[0].finish_reason == "tool_calls"
    (request,) = run.fake.requests
    body = json.loads(request.content)
    assert sent_messages(body) == WEATHER_QUESTION and streamed(request)
    assert [tool["function"]["name"] for tool in sent_options(body)["tools"]] == ["get_weather"]


@pytest.mark.parametrize("target", [ZHIPU, DASHSCOPE], ids=lambda t: t.name)
def test_parsing_tools_stream(door: str, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    # Zhipu sends all tool calls in its finishing chunk; DashScope streams the arguments.
    run = make_run(door, target, monkeypatch)
    run.fake.then(TWO_CITIES)
    events: list[Any] = []
    final = parsing_tools_stream(run.OpenAI, run.model, events)
    check_parsing_tools_stream(run, events, final)


async def test_async_parsing_tools_stream(zhipu: Run) -> None:
    zhipu.fake.then(TWO_CITIES)
    events: list[Any] = []
    final = await async_parsing_tools_stream(zhipu.AsyncOpenAI, zhipu.model, events)
    check_parsing_tools_stream(zhipu, events, final)


# --------------------------------------------------------------------------- module_client.py
# openai's module-level client has no llm_bridge twin (there is no ``llm_bridge.chat``), so this
# one runs through the http_client door only: ``openai.http_client = llm_bridge.http_client()``.


def module_client(out: list[Any], model: str, http_client: Any) -> None:
    """examples/module_client.py."""
    openai.api_key = ZHIPU.key
    openai.base_url = ZHIPU.base_url + "/"
    openai.default_headers = {"x-foo": "true"}
    openai.http_client = http_client
    stream = openai.chat.completions.create(model=model, messages=LIST_FILES, stream=True)
    for chunk in stream:
        out.append(chunk.choices[0].delta.content or "")


def test_module_client(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("api_key", "base_url", "default_headers", "http_client", "_client"):
        monkeypatch.setattr(openai, name, getattr(openai, name))  # restored afterwards
    monkeypatch.setattr(openai, "_client", None)
    fake = FakeZhipu(api_key=ZHIPU.key).reply("Use os.listdir().", chunk_size=4)
    bridge = llm_bridge.http_client(http_client=httpx.Client(transport=fake.transport()))
    out: list[Any] = []

    module_client(out, ZHIPU.model, bridge)

    assert "".join(out) == "Use os.listdir()."
    (request,) = fake.requests
    assert json.loads(request.content)["messages"] == LIST_FILES
    assert request.headers["x-foo"] == "true"  # the client's headers reach the provider
