"""The same provider answer reads the same through both front doors and on every provider:
``llm_bridge.OpenAI``, and a plain ``openai.OpenAI`` given ``llm_bridge.http_client()``.
Code written against openai branches on the exception class, ``err.code`` and
``message.content is None``; none of that may depend on which door or provider it is.
Offline, against each provider's fake at its public API root."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any, Callable

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge.testing import (
    FakeDashScope,
    FakeDashScopeCompatible,
    FakeQianfanV2,
    FakeZhipu,
    Reply,
    ToolCallSpec,
)

HELLO = [{"role": "user", "content": "你好"}]
TOOL = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}

#: name -> (fake, its key, the provider's API root, a chat model)
PROVIDERS: dict[str, tuple[Callable[..., Any], str, str, str]] = {
    "zhipu": (FakeZhipu, "id.secret", "https://open.bigmodel.cn/api/paas/v4", "glm-4-flash"),
    "qianfan": (
        FakeQianfanV2,
        "bce-v3/ALTAK-test/0123456789abcdef",
        "https://qianfan.baidubce.com/v2",
        "ernie-4.5-turbo-32k",
    ),
    "dashscope-compatible": (
        FakeDashScopeCompatible,
        "sk-test",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "qwen-plus",
    ),
    "dashscope": (FakeDashScope, "sk-test", "https://dashscope.aliyuncs.com/api/v1", "qwen-plus"),
}


def client(door: str, fake: Any, key: str, root: str) -> openai.OpenAI:
    upstream = httpx.Client(transport=fake.transport())
    if door == "llm_bridge.OpenAI":
        return llm_bridge.OpenAI(api_key=key, base_url=root, http_client=upstream, max_retries=0)
    bridged = llm_bridge.http_client(http_client=upstream, max_retries=0)
    return openai.OpenAI(api_key=key, base_url=root, http_client=bridged, max_retries=0)


DOORS = pytest.mark.parametrize("door", ["llm_bridge.OpenAI", "http_client"])


@DOORS
@pytest.mark.parametrize("name", list(PROVIDERS))
def test_a_tool_call_answer_has_no_content(name: str, door: str) -> None:
    cls, key, root, model = PROVIDERS[name]
    fake = cls(api_key=key).tool_call("get_weather", {"city": "北京"})
    answer = client(door, fake, key, root).chat.completions.create(
        model=model, messages=HELLO, tools=[TOOL]
    )
    message = answer.choices[0].message
    assert message.tool_calls and message.content is None  # as OpenAI's: null, not ""


#: (provider, the fake's failure, openai's class and its status, .code): failures whose
#: provider status is not the one openai's class has (DashScope answers arrears with 400;
#: Zhipu a missing model with 400 and code 1211).
MISMATCHED = [
    ("dashscope", "arrears", openai.RateLimitError, 429, "insufficient_quota"),
    ("dashscope-compatible", "arrears", openai.RateLimitError, 429, "insufficient_quota"),
    ("zhipu", "model_not_found", openai.NotFoundError, 404, "model_not_found"),
]


@DOORS
@pytest.mark.parametrize(("name", "failure", "cls", "status", "code"), MISMATCHED)
def test_an_error_is_the_same_class_and_status_through_both_doors(
    name: str, failure: str, cls: type[openai.APIStatusError], status: int, code: str, door: str
) -> None:
    fake_cls, key, root, model = PROVIDERS[name]
    fake = fake_cls(api_key=key).fail(failure)
    with pytest.raises(cls) as caught:
        client(door, fake, key, root).chat.completions.create(model=model, messages=HELLO)
    error = caught.value
    assert error.code == code
    assert error.status_code == status
    assert error.message.startswith(f"Error code: {status} - ")  # as openai words it


@DOORS
@pytest.mark.parametrize("name", list(PROVIDERS))
def test_a_rate_limit_is_the_same_error_with_openais_body_everywhere(name: str, door: str) -> None:
    cls, key, root, model = PROVIDERS[name]
    fake = cls(api_key=key).fail("rate_limit")
    with pytest.raises(openai.RateLimitError) as caught:
        client(door, fake, key, root).chat.completions.create(model=model, messages=HELLO)
    error = caught.value
    assert error.code == "rate_limit_exceeded"
    body = error.body
    assert isinstance(body, dict)
    assert body["code"] == error.code and body["type"] == error.type is not None
    assert body["param"] == error.param and isinstance(body["message"], str)
    assert not body["message"].startswith("Error code:")  # as a server words it
    assert body["provider"] == (name if name != "dashscope-compatible" else "dashscope")
    if door == "llm_bridge.OpenAI":  # the provider's own answer stays reachable
        assert isinstance(error, llm_bridge.APIStatusError) and error.provider_body is not None


@pytest.mark.parametrize("name", ["zhipu", "qianfan", "dashscope-compatible"])
@pytest.mark.parametrize(
    ("failure", "cls", "code"),
    [
        ("content_filter", openai.BadRequestError, "content_filter"),
        ("rate_limit", openai.RateLimitError, "rate_limit_exceeded"),
    ],
)
def test_an_error_in_the_middle_of_a_stream_has_its_class(
    name: str, failure: str, cls: type[openai.APIStatusError], code: str
) -> None:
    fake_cls, key, root, model = PROVIDERS[name]
    fake = fake_cls(api_key=key).error_mid_stream(2, failure, "一二三四五六七八九十")
    stream = client("llm_bridge.OpenAI", fake, key, root).chat.completions.create(
        model=model, messages=HELLO, stream=True
    )
    with pytest.raises(cls) as caught:
        for _ in stream:
            pass
    assert caught.value.code == code


#: Two calls in one answer: what a model may do when it takes no parallel_tool_calls switch.
TWO_CALLS = Reply(
    tool_calls=(
        ToolCallSpec("get_weather", {"city": "北京"}),
        ToolCallSpec("get_weather", {"city": "上海"}),
    )
)


@DOORS
@pytest.mark.parametrize("name", ["zhipu", "qianfan", "dashscope"])
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("parallel", "calls"), [(False, 1), (None, 2)])
def test_parallel_tool_calls_false_gives_one_call(
    name: str, stream: bool, parallel: Any, calls: int, door: str
) -> None:
    cls, key, root, model = PROVIDERS[name]
    fake = cls(api_key=key).then(TWO_CALLS)
    extra = {} if parallel is None else {"parallel_tool_calls": parallel}
    c = client(door, fake, key, root)
    if stream:
        with c.chat.completions.stream(
            model=model, messages=HELLO, tools=[TOOL], **extra
        ) as events:
            message = events.get_final_completion().choices[0].message
    else:
        message = (
            c.chat.completions.create(model=model, messages=HELLO, tools=[TOOL], **extra)
            .choices[0]
            .message
        )
    assert message.tool_calls is not None and len(message.tool_calls) == calls
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "北京"}


@DOORS
@pytest.mark.parametrize("name", list(PROVIDERS))
def test_arrears_are_tried_once_everywhere(name: str, door: str) -> None:
    cls, key, root, model = PROVIDERS[name]
    fake = cls(api_key=key).fail("arrears").reply("不该到这里")
    bridged = llm_bridge.OpenAI(
        api_key=key, base_url=root, http_client=httpx.Client(transport=fake.transport())
    )
    plain = openai.OpenAI(
        api_key=key,
        base_url=root,
        http_client=llm_bridge.http_client(http_client=httpx.Client(transport=fake.transport())),
    )
    with pytest.raises(openai.RateLimitError) as caught:
        (bridged if door == "llm_bridge.OpenAI" else plain).chat.completions.create(
            model=model, messages=HELLO
        )
    assert caught.value.code == "insufficient_quota"
    assert len(fake.requests) == 1  # never retried (max_retries is openai's default, 2)


@pytest.mark.parametrize("name", ["dashscope", "zhipu"])
def test_an_error_rebuilt_from_its_response_keeps_its_status(name: str) -> None:
    """langchain-openai re-raises openai's errors rebuilt from ``err.response``: through
    ``llm_bridge.OpenAI`` that is the answer openai read, with the class's status (DashScope
    answers arrears with 400), and the provider's own is ``provider_response``."""
    cls, key, root, model = PROVIDERS[name]
    fake = cls(api_key=key).fail("arrears")
    with pytest.raises(llm_bridge.RateLimitError) as caught:
        client("llm_bridge.OpenAI", fake, key, root).chat.completions.create(
            model=model, messages=HELLO
        )
    error = caught.value
    rebuilt = openai.RateLimitError(error.message, response=error.response, body=error.body)
    assert rebuilt.status_code == error.status_code == 429
    assert error.provider_response.status_code in (400, 429)
    assert "Authorization" not in error.response.request.headers or (
        error.response.request.headers["Authorization"] == "***"
    )


@DOORS
@pytest.mark.parametrize(
    ("model", "said"),
    [
        ("glm-4-flsh", "'glm-4-flsh' is not in the zhipu catalogue; did you mean 'glm-4-flash'"),
        ("xyzzy", "'xyzzy' is not in the zhipu catalogue; client.models.list() lists"),
    ],
)
def test_a_model_the_provider_does_not_know_is_named_with_what_exists(
    door: str, model: str, said: str
) -> None:
    _, key, root, _ = PROVIDERS["zhipu"]
    fake = FakeZhipu(api_key=key).fail("model_not_found")
    with pytest.raises(openai.NotFoundError) as caught:
        client(door, fake, key, root).chat.completions.create(model=model, messages=HELLO)
    message = caught.value.message
    assert said in message
    assert message.count(model) == 1  # (added once, though the error passes two layers)


@DOORS
@pytest.mark.parametrize("name", list(PROVIDERS))
@pytest.mark.parametrize(
    ("failure", "error", "kind"),
    [
        ("model_not_found", openai.NotFoundError, "invalid_request_error"),
        ("arrears", openai.RateLimitError, "insufficient_quota"),
        ("rate_limit", openai.RateLimitError, "rate_limit_error"),
    ],
)
def test_the_same_failure_has_the_same_class_and_openai_type_everywhere(
    name: str, door: str, failure: str, error: type[Exception], kind: str
) -> None:
    # (Qianfan's unknown model was a BadRequestError; DashScope's arrears kept its own
    # "Arrearage" as the type)
    cls, key, root, model = PROVIDERS[name]
    with pytest.raises(error) as caught:
        client(door, cls(api_key=key).fail(failure), key, root).chat.completions.create(
            model=model, messages=HELLO
        )
    raised: Any = caught.value
    assert raised.type == kind


def sent_messages(fake: Any) -> list[Any]:
    body = fake.last_json
    return body["messages"] if "messages" in body else body["input"]["messages"]


@DOORS
@pytest.mark.parametrize("name", list(PROVIDERS))
def test_openais_deprecated_functions_get_a_function_call_back(name: str, door: str) -> None:
    # Code written before tools (functions=, message.function_call, role "function") keeps
    # its loop: the answer's call comes back as function_call, and the next turn, with the
    # call and its result in the legacy form, reaches the provider as a call and result.
    cls, key, root, model = PROVIDERS[name]
    function = {"name": "get_weather", "parameters": TOOL["function"]["parameters"]}
    fake = cls(api_key=key).tool_call("get_weather", {"city": "北京"})
    fake.tool_call("get_weather", {"city": "北京"}).reply("北京晴")
    openai_client: Any = client(door, fake, key, root)
    create = openai_client.chat.completions.create
    answer = create(model=model, messages=HELLO, functions=[function])
    choice = answer.choices[0]
    assert choice.finish_reason == "function_call" and not choice.message.tool_calls
    call = choice.message.function_call
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "北京"}
    pieces = [
        c.choices[0].delta.function_call
        for c in create(model=model, messages=HELLO, functions=[function], stream=True)
        if c.choices and c.choices[0].delta.function_call
    ]
    assert json.loads("".join(p.arguments or "" for p in pieces)) == {"city": "北京"}
    turn = [
        *HELLO,
        {"role": "assistant", "content": None, "function_call": call.model_dump()},
        {"role": "function", "name": "get_weather", "content": "晴"},
    ]
    assert create(model=model, messages=turn, functions=[function]).choices[0].message.content
    sent = [m for m in sent_messages(fake) if m.get("tool_calls") or m["role"] == "tool"]
    assert [m["role"] for m in sent] == ["assistant", "tool"]
    assert sent[0]["tool_calls"][0]["id"] == sent[1]["tool_call_id"]


def _odd_error(request: httpx.Request) -> httpx.Response:
    """An error inside an HTTP 200 body, with a code no provider table has and no ``type``."""
    return httpx.Response(200, json={"error": {"code": "9999", "message": "something odd"}})


@DOORS
@pytest.mark.parametrize("name", ["zhipu", "qianfan", "dashscope-compatible"])
def test_an_unknown_error_in_a_200_body_is_a_server_error_through_both_doors(
    name: str, door: str
) -> None:
    """openai classes an answer by the status it reads (500 here): `InternalServerError`,
    which ``except openai.InternalServerError`` and retry code catch, not the bare base."""
    _, key, root, model = PROVIDERS[name]
    fake = SimpleNamespace(transport=lambda: httpx.MockTransport(_odd_error))
    with pytest.raises(openai.InternalServerError) as caught:
        client(door, fake, key, root).chat.completions.create(model=model, messages=HELLO)
    assert caught.value.status_code == 500
    assert "something odd" in caught.value.message


def _thinking_stream(request: httpx.Request) -> httpx.Response:
    """An OpenAI-shaped stream whose reasoning pieces name no role (as Qianfan v2's
    thinking models send them): the role first comes with the answer's text."""

    def event(delta: dict[str, Any], finish: Any = None) -> bytes:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        chunk = {"id": "t", "object": "chat.completion.chunk", "created": 1, "model": "m"}
        return b"data: " + json.dumps({**chunk, "choices": [choice]}).encode() + b"\n\n"

    body = b"".join(
        [
            event({"reasoning_content": "想"}),
            event({"reasoning_content": "一想"}),
            event({"role": "assistant", "content": "好"}),
            event({}, "stop"),
            b"data: [DONE]\n\n",
        ]
    )
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)


@DOORS
@pytest.mark.parametrize("name", ["zhipu", "qianfan", "dashscope-compatible"])
def test_a_thinking_stream_names_its_role_on_its_first_chunk(name: str, door: str) -> None:
    """OpenAI names the role once, on a choice's first chunk: here a reasoning piece."""
    _, key, root, model = PROVIDERS[name]
    fake = SimpleNamespace(transport=lambda: httpx.MockTransport(_thinking_stream))
    stream = client(door, fake, key, root).chat.completions.create(
        model=model, messages=HELLO, stream=True
    )
    roles = [chunk.choices[0].delta.role for chunk in stream if chunk.choices]
    assert roles == ["assistant", None, None, None]


@DOORS
@pytest.mark.parametrize("name", list(PROVIDERS))
def test_n_choices_come_back_with_usage_for_all_of_them(name: str, door: str) -> None:
    """``n=3``: three choices, indexed 0-2, and the completion tokens of all three, whether
    the provider answers ``n`` itself (Qianfan v2, DashScope in both modes) or takes three requests
    (Zhipu)."""
    fake_cls, key, root, model = PROVIDERS[name]
    fake = fake_cls(api_key=key).reply("好的").reply("好的").reply("好的").reply("好的")
    openai_client = client(door, fake, key, root)
    one = openai_client.chat.completions.create(model=model, messages=HELLO)
    three = openai_client.chat.completions.create(model=model, messages=HELLO, n=3)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert [c.message.content for c in three.choices] == ["好的"] * 3
    assert one.usage is not None and three.usage is not None
    assert three.usage.completion_tokens == 3 * one.usage.completion_tokens
    sent = 1 + (3 if name == "zhipu" else 1)
    assert len(fake.requests) == sent


def test_copies_made_for_n_get_seeds_of_their_own() -> None:
    # The same seed in each would make a provider that honours it answer three times the
    # same; seed, seed + 1, seed + 2 stay reproducible.
    fake_cls, key, root, model = PROVIDERS["zhipu"]
    fake = fake_cls(api_key=key).reply("甲").reply("乙").reply("丙")
    client("llm_bridge.OpenAI", fake, key, root).chat.completions.create(
        model=model, messages=HELLO, n=3, seed=7
    )
    assert [json.loads(r.content).get("seed") for r in fake.requests] == [7, 8, 9]
