"""openai's answer objects built by validation (`_answer_models`) equal openai's own.

llm-bridge's clients hand openai's parsing step objects built by pydantic's validator
instead of openai's ``construct_type``. That is only right if nobody can tell: for any
answer JSON, either the validator refuses it (and openai's way runs) or the two objects
are the same at every level: classes, values with their exact types (``1`` is not
``1.0``), extras, and the fields counted as set.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, Union

import httpx
import openai
import pydantic
import pytest
import respx
from hypothesis import given, settings
from hypothesis import strategies as st
from openai._models import construct_type
from openai.types import CreateEmbeddingResponse, ModerationCreateResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from llm_bridge import AsyncOpenAI, OpenAI
from llm_bridge._answer_models import built

ZHIPU = "https://open.bigmodel.cn/api/paas/v4/chat/completions"


def same(a: Any, b: Any, where: str = "answer") -> None:
    """Fail unless ``a`` and ``b`` are the same objects in every way a caller can see."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, pydantic.BaseModel):
        assert a.model_fields_set == b.model_fields_set, f"{where}: fields set"
        same(a.__pydantic_extra__, b.__pydantic_extra__, f"{where} (extras)")
        for name in type(a).model_fields:
            same(getattr(a, name), getattr(b, name), f"{where}.{name}")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys"
        for key in a:
            same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list):
        assert len(a) == len(b), f"{where}: length"
        for i, (x, y) in enumerate(zip(a, b)):
            same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def fields(**choices: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts holding some of ``choices``' keys, each with one of its values."""
    return st.fixed_dictionaries({}, optional=choices)


def merged(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One dict of what each of ``parts`` draws."""
    return st.builds(lambda *dicts: {k: v for d in dicts for k, v in d.items()}, *parts)


#: Values of the wrong type next to right ones: openai keeps those as they came.
ODD = st.sampled_from(["17", 17, 1.5, True, None, [], {}, {"x": 1}])


def answers(odd: bool) -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """Strategies for each answer type: of the right JSON types throughout (``odd``
    False: what llm-bridge's engine writes, nearly all built here), or with a value of
    the wrong type now and then (``odd``: mostly left to openai)."""

    def v(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(valid, ODD) if odd else valid

    text = v(st.text(max_size=5))
    integer = v(st.integers(-2, 2**40))
    extras = fields(provider=st.just("zhipu"), request_id=text, reasoning_content=text)
    usage = merged(
        fields(
            prompt_tokens=integer,
            completion_tokens=integer,
            total_tokens=integer,
            prompt_tokens_details=v(merged(fields(cached_tokens=integer), extras)),
            completion_tokens_details=fields(reasoning_tokens=integer),
        ),
        fields(prompt_cache_hit_tokens=integer, estimated=st.booleans()),
    )
    tool_calls = st.lists(
        fields(
            index=integer,
            id=text,
            type=st.sampled_from(["function", "custom", "other", None]),
            function=fields(name=text, arguments=text),
        ),
        max_size=2,
    )
    message = merged(
        fields(
            role=v(st.sampled_from(["assistant", "user", None])),
            content=v(st.one_of(st.text(max_size=5), st.none())),
            refusal=v(st.none()),
            tool_calls=v(tool_calls),
            annotations=st.just([]),
        ),
        extras,
    )
    logprobs = st.one_of(
        st.none(),
        fields(
            content=st.lists(
                fields(
                    token=text,
                    logprob=v(st.one_of(st.floats(-5, 0), st.integers(-3, 0))),
                    bytes=v(st.lists(st.integers(0, 255), max_size=3)),
                    top_logprobs=st.just([]),
                ),
                max_size=2,
            )
        ),
    )
    finish = v(st.sampled_from(["stop", "length", "tool_calls", "content_filter", None]))
    completion = merged(
        st.fixed_dictionaries(
            {
                "id": text,
                "object": v(st.just("chat.completion")),
                "created": integer,
                "model": text,
                "choices": v(
                    st.lists(
                        merged(
                            st.fixed_dictionaries(
                                {"index": integer, "message": message, "finish_reason": finish},
                                optional={"logprobs": logprobs},
                            ),
                            extras,
                        ),
                        max_size=2,
                    )
                ),
            },
            optional={
                "usage": st.one_of(usage, st.none()),
                "system_fingerprint": v(st.text(max_size=3)),
                "service_tier": v(st.sampled_from(["default", "auto", None])),
            },
        ),
        extras,
    )
    chunk = merged(
        st.fixed_dictionaries(
            {
                "id": text,
                "object": v(st.just("chat.completion.chunk")),
                "created": integer,
                "model": text,
                "choices": st.lists(
                    st.fixed_dictionaries(
                        {"index": integer, "delta": message},
                        optional={"finish_reason": finish, "logprobs": logprobs},
                    ),
                    max_size=2,
                ),
            },
            optional={"usage": st.one_of(usage, st.none())},
        ),
        extras,
    )
    embeddings = st.fixed_dictionaries(
        {
            "object": v(st.just("list")),
            "model": text,
            "data": st.lists(
                st.fixed_dictionaries(
                    {
                        "object": v(st.just("embedding")),
                        "index": integer,
                        "embedding": v(
                            st.lists(
                                st.one_of(st.floats(-1, 1), st.integers(-1, 1), st.integers()),
                                max_size=4,
                            )
                        ),
                    }
                ),
                max_size=2,
            ),
            "usage": v(st.fixed_dictionaries({"prompt_tokens": integer, "total_tokens": integer})),
        }
    )
    response = merged(
        st.fixed_dictionaries(
            {
                "id": text,
                "object": st.just("response"),
                "created_at": v(st.one_of(st.integers(0, 2**31), st.floats(0, 2**31))),
                "model": text,
                "status": v(st.sampled_from(["completed", "incomplete"])),
                "parallel_tool_calls": v(st.booleans()),
                "tool_choice": st.sampled_from(["auto", "none", {"type": "function", "name": "f"}]),
                "tools": st.just([]),
                "output": st.lists(
                    st.one_of(
                        merged(
                            st.fixed_dictionaries(
                                {
                                    "type": st.just("message"),
                                    "id": text,
                                    "role": st.just("assistant"),
                                    "status": st.sampled_from(["completed", "in_progress"]),
                                    "content": st.lists(
                                        st.fixed_dictionaries(
                                            {
                                                "type": st.just("output_text"),
                                                "text": text,
                                                "annotations": st.just([]),
                                            }
                                        ),
                                        max_size=2,
                                    ),
                                }
                            ),
                            extras,
                        ),
                        st.fixed_dictionaries(
                            {
                                "type": st.just("function_call"),
                                "call_id": text,
                                "name": text,
                                "arguments": text,
                            },
                            optional={"id": text, "status": st.just("completed")},
                        ),
                        st.fixed_dictionaries(
                            {
                                "type": st.just("reasoning"),
                                "id": text,
                                "summary": st.just([{"type": "summary_text", "text": "t"}]),
                            },
                            optional={"encrypted_content": text},
                        ),
                    ),
                    max_size=2,
                ),
            },
            optional={
                "usage": v(
                    st.fixed_dictionaries(
                        {
                            "input_tokens": integer,
                            "output_tokens": integer,
                            "total_tokens": integer,
                            "input_tokens_details": merged(fields(cached_tokens=integer), extras),
                            "output_tokens_details": fields(reasoning_tokens=integer),
                        }
                    )
                )
            },
        ),
        extras,
    )
    return {
        "completion": completion,
        "chunk": chunk,
        "embeddings": embeddings,
        "response": response,
    }


def events(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Responses stream events of a few types (an unknown one too), their tag first."""

    def v(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(valid, ODD) if odd else valid

    text, integer = v(st.text(max_size=4)), v(st.integers(0, 2**40))
    extras = fields(provider=st.just("zhipu"), obfuscation=text)
    delta = st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["response.output_text.delta", "response.reasoning_summary_text.delta"]
            ),
            "item_id": text,
            "output_index": integer,
            "content_index": integer,
            "summary_index": integer,
            "delta": text,
            "sequence_number": integer,
        },
        optional={"logprobs": v(st.just([]))},
    )
    arguments = st.fixed_dictionaries(
        {
            "type": st.just("response.function_call_arguments.delta"),
            "item_id": text,
            "output_index": integer,
            "delta": text,
            "sequence_number": integer,
        }
    )
    done = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["response.output_item.done", "response.output_item.added"]),
            "output_index": integer,
            "sequence_number": integer,
            "item": st.fixed_dictionaries(
                {
                    "type": st.just("function_call"),
                    "call_id": text,
                    "name": text,
                    "arguments": text,
                },
                optional={"id": text, "status": st.just("completed")},
            ),
        }
    )
    unknown = st.fixed_dictionaries({"type": st.sampled_from(["response.new_thing", 3])})
    return merged(st.one_of(delta, arguments, done, unknown), extras)


USUAL_ANSWERS, ODD_ANSWERS = answers(odd=False), answers(odd=True)
USUAL_ANSWERS["event"], ODD_ANSWERS["event"] = events(odd=False), events(odd=True)
CASTS = {
    "completion": ChatCompletion,
    "chunk": ChatCompletionChunk,
    "embeddings": CreateEmbeddingResponse,
    "response": Response,
    "event": ResponseStreamEvent,
}

#: An answer as llm-bridge's engine writes it (the usual case, which must be built here).
USUAL = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1721614853,
    "model": "glm-4",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "你好", "reasoning_content": "想"},
            "finish_reason": "stop",
            "logprobs": {
                "content": [{"token": "a", "logprob": -1, "bytes": [97], "top_logprobs": []}]
            },
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
    "provider": "zhipu",
}


def check_equal(data: dict[str, Any], cast_to: type[Any]) -> Any:
    mine = built(json.loads(json.dumps(data)), cast_to)
    if mine is not None:
        same(mine, construct_type(type_=cast_to, value=json.loads(json.dumps(data))))
    return mine


@pytest.mark.parametrize("kind", list(CASTS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_an_answer_of_the_right_types_is_built_as_openai_builds_it(
    kind: str, data: st.DataObject
) -> None:
    check_equal(data.draw(USUAL_ANSWERS[kind]), CASTS[kind])


@pytest.mark.parametrize("kind", list(CASTS))
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_an_answer_with_odd_values_is_built_as_openai_builds_it_or_left_to_openai(
    kind: str, data: st.DataObject
) -> None:
    check_equal(data.draw(ODD_ANSWERS[kind]), CASTS[kind])


def test_the_usual_answer_is_built_here_and_an_odd_one_left_to_openai() -> None:
    # (so the tests above compare something: the usual answer takes the fast way)
    assert check_equal(USUAL, ChatCompletion) is not None
    assert built({**USUAL, "created": "1721614853"}, ChatCompletion) is None
    assert built([USUAL], ChatCompletion) is None  # (not an object: openai's way)


def test_a_stream_event_is_built_as_the_variant_its_type_names() -> None:
    event = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0}
    event.update(content_index=0, delta="你", sequence_number=3, logprobs=[], provider="z")
    mine = check_equal(event, ResponseStreamEvent)
    assert type(mine).__name__ == "ResponseTextDeltaEvent"
    assert built({**event, "type": "response.new_thing"}, ResponseStreamEvent) is None


class Summary(openai.BaseModel):
    """A caller's own class, as openai's docs suggest for ``parse(to=...)``."""

    model: str

    @pydantic.field_validator("model")
    @classmethod
    def upper(cls, value: str) -> str:
        return value.upper()


def test_what_openai_would_build_otherwise_is_left_to_openai() -> None:
    # A caller's class (its validators must not run: openai constructs it)...
    assert built({"model": "glm-4"}, Summary) is None
    # ... or a tagged union of them ...
    from openai._utils import PropertyInfo

    class Tagged(openai.BaseModel):
        type: Literal["t"]
        model: str

        @pydantic.field_validator("model")
        @classmethod
        def upper(cls, value: str) -> str:
            return value.upper()

    class Other(openai.BaseModel):
        type: Literal["o"]

    mine = Annotated[Union[Tagged, Other], PropertyInfo(discriminator="type")]
    assert built({"type": "t", "model": "m"}, mine) is None
    # ... an int a float field openai constructs cannot hold exactly (openai keeps it) ...
    response = {"id": "r", "object": "response", "created_at": 2**53 + 1, "model": "m"}
    response.update(output=[], parallel_tool_calls=False, tool_choice="auto", tools=[])
    assert built(response, Response) is None
    assert built({**response, "created_at": 2**53}, Response) is not None
    # ... a type with fields named otherwise in JSON (openai's construct keeps both) ...
    assert built({"id": "m", "model": "x", "results": []}, ModerationCreateResponse) is None
    # ... and an event whose tag is not text, which leaves the next event built here.
    event = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0}
    event.update(content_index=0, delta="你", sequence_number=3, logprobs=[])
    assert built({**event, "type": ["x"]}, ResponseStreamEvent) is None
    assert built(event, ResponseStreamEvent) is not None


@pytest.mark.parametrize("value", [None, ["x"]])
@pytest.mark.parametrize("name", ["_fields_set", "_BaseModel__cls"])
@pytest.mark.parametrize("where", ["answer", "message"])
def test_a_key_named_as_a_construct_parameter_is_left_to_openai(
    where: str, name: str, value: Any
) -> None:
    """openai's construct takes such a key as its own argument: ``"_fields_set": null``
    vanishes, other values raise. Whatever openai does with it, it is openai's to do."""
    answer = json.loads(json.dumps(USUAL))
    (answer if where == "answer" else answer["choices"][0]["message"])[name] = value
    assert built(answer, ChatCompletion) is None


def test_json_nested_deeper_than_the_recursion_limit_is_built_as_openai_builds_it() -> None:
    """A Response holds the request's tools, whose JSON schemas may nest deeply; JSON has
    no depth limit and openai's construct takes it (the check for inexact ints here
    recursed, and raised RecursionError)."""
    deep: Any = []
    for _ in range(900):  # (the recursion limit is 1000; json's own coder takes this)
        deep = [deep]
    response = {"id": "r", "object": "response", "created_at": 1, "model": "m", "output": []}
    response.update(parallel_tool_calls=False, tool_choice="auto", tools=[], deep=deep)
    assert type(check_equal(response, Response)) is Response


def test_a_page_is_left_to_openai() -> None:
    from openai.pagination import SyncPage
    from openai.types import Model

    page = {
        "object": "list",
        "data": [{"id": "m", "object": "model", "created": 0, "owned_by": "o"}],
    }
    assert built(page, SyncPage[Model]) is None


def zhipu_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(
        200,
        json={**USUAL, "usage": {**USUAL["usage"]}, "request_id": "r1"},
        headers={"x-request-id": "r1"},
    )


@respx.mock
def test_the_client_answers_with_openais_object_for_the_same_json() -> None:
    respx.post(ZHIPU).mock(side_effect=zhipu_answer)
    raw = OpenAI(provider="zhipu", api_key="id.secret").chat.completions.with_raw_response
    answer = raw.create(model="glm-4", messages=[{"role": "user", "content": "hi"}])
    parsed = answer.parse()
    same(parsed, construct_type(type_=ChatCompletion, value=answer.http_response.json()))
    assert parsed._request_id == "r1"  # (openai sets it on whatever object it parsed)


@respx.mock
async def test_the_async_client_too() -> None:
    respx.post(ZHIPU).mock(side_effect=zhipu_answer)
    client = AsyncOpenAI(provider="zhipu", api_key="id.secret")
    raw = await client.chat.completions.with_raw_response.create(
        model="glm-4", messages=[{"role": "user", "content": "hi"}]
    )
    same(raw.parse(), construct_type(type_=ChatCompletion, value=raw.http_response.json()))


@pytest.mark.parametrize("strict", [False, True])
def test_a_client_with_strict_validation_keeps_openais_way(
    strict: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llm_bridge import _client

    used: list[object] = []
    monkeypatch.setattr(_client, "built", lambda data, cast_to: used.append(data))
    with respx.mock:
        respx.post(ZHIPU).mock(side_effect=zhipu_answer)
        client = OpenAI(provider="zhipu", api_key="id.secret", _strict_response_validation=strict)
        answer = client.chat.completions.create(
            model="glm-4", messages=[{"role": "user", "content": "hi"}]
        )
    assert isinstance(answer, ChatCompletion)
    assert bool(used) is not strict


def zhipu_stream(request: httpx.Request) -> httpx.Response:
    events = [
        {
            "id": "c1",
            "created": 1,
            "model": "glm-4",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "你"}}],
        },
        {
            "id": "c1",
            "created": 1,
            "model": "glm-4",
            "choices": [{"index": 0, "delta": {"reasoning_content": "想"}}],
        },
        {
            "id": "c1",
            "created": 1,
            "model": "glm-4",
            "choices": [{"index": 0, "finish_reason": "stop", "delta": {"content": "好"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    ]
    body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
    return httpx.Response(200, content=body.encode(), headers={"content-type": "text/event-stream"})


@respx.mock
def test_each_chunk_of_a_stream_is_openais_object_for_the_same_json() -> None:
    respx.post(ZHIPU).mock(side_effect=zhipu_stream)
    client = OpenAI(provider="zhipu", api_key="id.secret")
    raw = client.chat.completions.with_raw_response.create(
        model="glm-4", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    body = raw.http_response.read()  # (what openai parses, kept to compare)
    chunks = list(raw.parse())
    sent = [
        json.loads(line[6:]) for line in body.decode().split("\n\n") if line.startswith("data: {")
    ]
    assert len(chunks) == len(sent) >= 3
    for chunk, data in zip(chunks, sent):
        same(chunk, construct_type(type_=ChatCompletionChunk, value=data))
