"""The adapters on their own: plain dicts and bytes in, plain values or faults out.

No client, no fake server, no ``httpx`` object reaches an adapter here: a request is built
from a parameter dict, an answer is read from a `Reply` (status, headers, body bytes), and
what is wrong comes back as a `Fault`, which only the I/O layer turns into the exception a
caller sees (`Fault.api_error`, checked once here). The last test holds the package to
that: no module in ``llm_bridge/adapters`` imports httpx.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest

import llm_bridge
from llm_bridge._config import Policy, load_config
from llm_bridge._errors import status_of
from llm_bridge._wire import MalformedBody, ProviderFault, Refused, Reply
from llm_bridge.adapters import Adapter, CallContext, adapter_class
from llm_bridge.adapters._base import parse_json

NOW = 1_700_000_000.0
FRESH_ID = "0123456789abcdef0123456789abcdef"
HELLO = [{"role": "user", "content": "你好"}]

#: name -> (provider, config, keys, chat model, embedding model)
WIRES: dict[str, tuple[str, dict[str, Any], dict[str, str], str, str]] = {
    "openai": ("openai", {}, {"api_key": "sk-test"}, "gpt-4o-mini", "text-embedding-3-small"),
    "zhipu": ("zhipu", {}, {"api_key": "id.secret"}, "glm-4-flash", "embedding-3"),
    "qianfan-v2": ("qianfan", {}, {"api_key": "bce-v3/ALTAK-x/y"}, "ernie-4.0-8k", "embedding-v1"),
    "qianfan-v1": (
        "qianfan",
        {"api": "v1"},
        {"api_key": "a" * 24, "secret_key": "b" * 32},
        "ernie-4.0-8k",
        "embedding-v1",
    ),
    "dashscope": ("dashscope", {}, {"api_key": "sk-test"}, "qwen-plus", "text-embedding-v3"),
    "dashscope-native": (
        "dashscope",
        {"api": "native"},
        {"api_key": "sk-test"},
        "qwen-plus",
        "text-embedding-v3",
    ),
}
EVERY_WIRE = pytest.mark.parametrize("wire", list(WIRES))


def adapter(wire: str, *, policy: str = "warn", warned: Optional[list[Any]] = None) -> Adapter:
    """The wire's adapter, built as the engine builds it but with a fixed clock and id."""
    provider, table, keys, _, _ = WIRES[wire]
    spec = load_config({"providers": {provider: table}}).provider(provider)
    assert spec.protocol is not None
    reports = warned if warned is not None else []
    return adapter_class(spec.protocol).create(
        provider,
        spec,
        keys=keys,
        base_url=None,
        policy=Policy(unsupported_params=policy),  # type: ignore[arg-type]
        warn=lambda param, message: reports.append((param, message)),
        clock=lambda: NOW,
        new_id=lambda: FRESH_ID,
    )


def call(a: Adapter, model: str, *, stream: bool = False) -> CallContext:
    return CallContext(
        provider=a.name,
        model=model,
        requested_model=model,
        stream=stream,
        info=a.spec.model(model),
    )


def chat_model(wire: str) -> str:
    return WIRES[wire][3]


def reply(status: int, body: Any = None, **headers: str) -> Reply:
    content = (
        body if isinstance(body, bytes) else b"" if body is None else json.dumps(body).encode()
    )
    return Reply(status, headers, content, url="https://example.test/x")


# --------------------------------------------------------------------------- requests


@EVERY_WIRE
def test_a_chat_request_is_a_plain_description(wire: str) -> None:
    a = adapter(wire)
    context = call(a, chat_model(wire))
    before = dataclasses.replace(context)
    request = a.chat_request({"model": "x", "messages": HELLO, "temperature": 0.5}, context)
    assert request.method == "POST" and request.url.startswith(a.base_url + "/")
    json.dumps(request.json)  # plain JSON values only
    assert request.emulated_stop == []
    assert context == before  # the request side leaves the call context alone
    text = json.dumps(request.json, ensure_ascii=False)
    assert "你好" in text and "0.5" in text


SERVICE_PARAMS: dict[str, Any] = {
    "store": True,
    "metadata": {"team": "a"},
    "service_tier": "auto",
    "prompt_cache_key": "k",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"ttl": "24h"},
    "moderation": {"input": {"policy": "default"}},
    "safety_identifier": "user-1",
}


@EVERY_WIRE
def test_openais_service_parameters_reach_only_openai_shaped_servers(wire: str) -> None:
    # They change nothing the caller sees of the answer (storage, tracking, OpenAI's own
    # caching, tiering, moderation): the providers are not sent them, with no report;
    # OpenAI itself and the servers that copy it are.
    warned: list[Any] = []
    a = adapter(wire, warned=warned)
    params = {"model": "x", "messages": HELLO, **SERVICE_PARAMS}
    sent = json.dumps(a.chat_request(params, call(a, chat_model(wire))).json)
    reached = [name for name in SERVICE_PARAMS if f'"{name}"' in sent]
    assert reached == (list(SERVICE_PARAMS) if wire == "openai" else [])
    assert warned == []


def function_tool(name: str) -> dict[str, Any]:
    return {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}


@EVERY_WIRE
def test_an_allowed_tools_choice_sends_only_the_tools_it_allows(wire: str) -> None:
    # (sent on as it was, the model was offered every tool, the disallowed ones too)
    a = adapter(wire)
    choice = {
        "type": "allowed_tools",
        "allowed_tools": {"mode": "required", "tools": [function_tool("safe_tool")]},
    }
    params = {
        "model": "x",
        "messages": HELLO,
        "tools": [function_tool("safe_tool"), function_tool("delete_everything")],
        "tool_choice": choice,
    }
    sent = json.dumps(a.chat_request(params, call(a, chat_model(wire))).json)
    assert "safe_tool" in sent and "delete_everything" not in sent
    assert "allowed_tools" not in sent


def test_zhipu_returns_the_stop_words_it_does_not_send() -> None:
    a = adapter("zhipu")
    context = call(a, "glm-4-flash")
    request = a.chat_request(
        {"model": "x", "messages": HELLO, "stop": ["END", "STOP", "HALT"], "temperature": 0},
        context,
    )
    assert request.json["stop"] == ["END"]  # GLM takes one
    assert request.emulated_stop == ["STOP", "HALT"]  # the engine cuts at these
    assert context.emulated_stop == []
    assert request.json["do_sample"] is False and "temperature" not in request.json


def test_qianfan_v1_builds_its_own_wire() -> None:
    a = adapter("qianfan-v1")
    request = a.chat_request(
        {
            "model": "x",
            "messages": [{"role": "system", "content": "be brief"}, *HELLO],
            "stop": ["a", "b", "c", "d", "e"],
        },
        call(a, "ernie-4.0-8k", stream=True),
    )
    assert "/wenxinworkshop/chat/" in request.url
    assert request.json["system"] == "be brief"
    assert request.json["stream"] is True
    assert request.json["stop"] == ["a", "b", "c", "d"] and request.emulated_stop == ["e"]


def test_dashscope_native_wraps_the_conversation_and_streams_by_header() -> None:
    a = adapter("dashscope-native")
    request = a.chat_request(
        {"model": "x", "messages": HELLO, "max_tokens": 50}, call(a, "qwen-plus", stream=True)
    )
    assert request.json["input"]["messages"] == HELLO
    assert request.json["parameters"]["max_tokens"] == 50
    assert request.headers["X-DashScope-SSE"] == "enable"


@EVERY_WIRE
def test_an_embeddings_request_is_a_plain_description(wire: str) -> None:
    a = adapter(wire)
    model = WIRES[wire][4]
    request = a.embeddings_request({"model": "x", "input": ["一", "二"]}, call(a, model))
    assert request.method == "POST" and request.url.startswith(a.base_url + "/")
    assert "一" in json.dumps(request.json, ensure_ascii=False)


def test_a_request_the_provider_cannot_take_is_refused_before_sending() -> None:
    a = adapter("zhipu")
    tools = [{"type": "function", "function": {"name": "look_up", "parameters": {}}}]
    params = {
        "model": "x",
        "messages": HELLO,
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "missing"}},
    }
    with pytest.raises(Refused) as caught:
        a.chat_request(params, call(a, "glm-4-flash"))
    fault = caught.value
    assert fault.param == "tool_choice" and "missing" in fault.message
    # What the engine raises in its place: the BadRequestError the server would have sent.
    error = fault.api_error(None)
    assert isinstance(error, llm_bridge.BadRequestError) and error.status_code == 400
    assert error.param == "tool_choice" and error.provider == "zhipu"
    assert str(error.request.url).startswith(a.base_url)


def test_an_unsupported_parameter_is_reported_through_the_injected_callback() -> None:
    warned: list[Any] = []
    a = adapter("zhipu", warned=warned)
    request = a.chat_request(
        {"model": "x", "messages": HELLO, "logit_bias": {"1": 2}}, call(a, "glm-4-flash")
    )
    assert "logit_bias" not in request.json
    assert [param for param, _ in warned] == ["logit_bias"]
    with pytest.raises(Refused):
        adapter("zhipu", policy="error").chat_request(
            {"model": "x", "messages": HELLO, "logit_bias": {"1": 2}}, call(a, "glm-4-flash")
        )


# --------------------------------------------------------------------------- answers

CHAT_BODIES: dict[str, Any] = {
    "openai": {
        "id": "c1",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "好"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    },
    "qianfan-v1": {
        "result": "好",
        "is_truncated": False,
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    },
    "dashscope-native": {
        "request_id": "r1",
        "output": {
            "choices": [
                {"message": {"role": "assistant", "content": "好"}, "finish_reason": "stop"}
            ]
        },
        "usage": {"input_tokens": 3, "output_tokens": 1},
    },
}
CHAT_BODIES["zhipu"] = CHAT_BODIES["qianfan-v2"] = CHAT_BODIES["dashscope"] = CHAT_BODIES["openai"]


@EVERY_WIRE
def test_a_success_body_becomes_an_openai_completion(wire: str) -> None:
    a = adapter(wire)
    answer = reply(200, CHAT_BODIES[wire])
    body = parse_json(answer)
    assert a.find_error(answer, body) is None
    data = a.chat_response(answer, body, call(a, chat_model(wire)))
    (choice,) = data["choices"]
    assert choice["message"]["content"] == "好" and choice["finish_reason"] == "stop"
    assert data["object"] == "chat.completion"
    llm_bridge.types.chat.ChatCompletion.model_validate(data)


def test_what_an_answer_lacks_comes_from_the_injected_clock_and_ids() -> None:
    a = adapter("qianfan-v1")
    body = {"result": "", "function_call": {"name": "f", "arguments": "{}"}}
    data = a.chat_response(reply(200, body), body, call(a, "ernie-4.0-8k"))
    assert data["id"] == "as-" + FRESH_ID[:10] and data["created"] == int(NOW)
    assert data["choices"][0]["message"]["tool_calls"][0]["id"] == f"call_{FRESH_ID[:12]}_0"
    native = adapter("dashscope-native")
    answer = native.chat_response(reply(200), CHAT_BODIES["dashscope-native"], call(native, "m"))
    assert answer["created"] == int(NOW)


@EVERY_WIRE
def test_an_embeddings_body_becomes_an_openai_list(wire: str) -> None:
    a = adapter(wire)
    if wire == "dashscope-native":
        body: Any = {
            "output": {"embeddings": [{"text_index": 0, "embedding": [0.5, 0.25]}]},
            "usage": {"total_tokens": 2},
        }
    else:
        body = {"data": [{"index": 0, "embedding": [0.5, 0.25]}], "usage": {"prompt_tokens": 2}}
    data = a.embeddings_response(reply(200, body), body, call(a, WIRES[wire][4]))
    assert data["data"][0]["embedding"] == [0.5, 0.25]
    assert data["usage"]["prompt_tokens"] == 2


@pytest.mark.parametrize(
    ("wire", "answer", "cls", "code", "provider_code"),
    [
        (
            "zhipu",
            reply(429, {"error": {"code": "1113", "message": "余额不足"}}),
            llm_bridge.RateLimitError,
            "insufficient_quota",
            "1113",
        ),
        (
            "qianfan-v1",
            reply(200, {"error_code": 17, "error_msg": "Open api daily request limit reached"}),
            llm_bridge.RateLimitError,
            "insufficient_quota",
            "17",
        ),
        (
            "qianfan-v1",
            reply(403, b"", **{"x-bce-error-code": "AccessDenied"}),
            llm_bridge.PermissionDeniedError,
            "AccessDenied",
            "AccessDenied",
        ),
        (
            "dashscope-native",
            reply(400, {"code": "Arrearage", "message": "Access denied", "request_id": "r"}),
            llm_bridge.RateLimitError,
            "insufficient_quota",
            "Arrearage",
        ),
        (
            "openai",
            reply(502, b"<html>bad gateway</html>"),
            llm_bridge.InternalServerError,
            None,
            None,
        ),
    ],
)
def test_an_error_body_becomes_the_right_fault(
    wire: str, answer: Reply, cls: type, code: Optional[str], provider_code: Optional[str]
) -> None:
    a = adapter(wire)
    fault = a.find_error(answer, parse_json(answer))
    assert isinstance(fault, ProviderFault)
    assert fault.cls is cls and fault.code == code and fault.provider_code == provider_code
    status = status_of(cls, answer.status_code)  # the class's, as on openai's exceptions
    assert fault.message.startswith(f"Error code: {status} - [")
    # The engine attaches the exchange: the caller's exception, as openai's clients raise it.
    response = httpx.Response(
        answer.status_code, content=answer.content, request=httpx.Request("POST", a.base_url)
    )
    error = fault.api_error(response)
    assert type(error) is cls and error.response is response
    assert error.status_code == status
    assert (error.code, error.provider, error.provider_code) == (code, a.name, provider_code)
    assert error.message == fault.message


def test_a_body_that_is_not_json_is_quoted_in_the_message() -> None:
    a = adapter("openai")
    answer = reply(502, b"<html>bad gateway</html>")
    fault = a.find_error(answer, parse_json(answer))
    assert fault is not None and "<html>bad gateway</html>" in fault.message
    assert fault.retryable is True  # a 5xx without a table row


@EVERY_WIRE
def test_a_malformed_answer_is_a_malformed_body_fault(wire: str) -> None:
    a = adapter(wire)
    with pytest.raises(MalformedBody) as caught:
        a.chat_response(reply(200), {"unexpected": [1]}, call(a, chat_model(wire)))
    assert caught.value.body == {"unexpected": [1]} and caught.value.provider == a.name


def test_an_error_finish_word_raises_a_provider_fault() -> None:
    a = adapter("zhipu")
    body = {"choices": [{"index": 0, "message": {"content": ""}, "finish_reason": "network_error"}]}
    with pytest.raises(ProviderFault) as caught:
        a.chat_response(reply(200), body, call(a, "glm-4-flash"))
    assert caught.value.cls is llm_bridge.InternalServerError


# --------------------------------------------------------------------------- streams

OPENAI_CHUNK = {
    "id": "c1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [
        {"index": 0, "delta": {"role": "assistant", "content": "好"}, "finish_reason": None}
    ],
}
STREAM_EVENTS: dict[str, Any] = {
    "openai": OPENAI_CHUNK,
    "zhipu": OPENAI_CHUNK,
    "qianfan-v2": OPENAI_CHUNK,
    "dashscope": OPENAI_CHUNK,
    "qianfan-v1": {"id": "as-1", "created": 1, "result": "好", "is_end": False},
    "dashscope-native": {
        "request_id": "r1",
        "output": {
            "choices": [
                {"message": {"role": "assistant", "content": "好"}, "finish_reason": "null"}
            ]
        },
    },
}


def content_of(translated: Any) -> Any:
    """The content of the chunk a stream parser made of an event (`Translated`)."""
    chunk, _, fault = translated
    assert fault is None
    return chunk.choices[0].delta.content


@EVERY_WIRE
def test_a_stream_event_becomes_a_chunk(wire: str) -> None:
    a = adapter(wire)
    parser = a.stream_parser(Reply(200), call(a, chat_model(wire), stream=True))
    chunk = parser.translate(json.dumps(STREAM_EVENTS[wire]).encode())
    assert content_of(chunk) == "好"
    assert parser.translate(b"[DONE]") is None and parser.done


@EVERY_WIRE
def test_a_stream_event_the_parser_cannot_read_is_a_fault(wire: str) -> None:
    a = adapter(wire)
    parser = a.stream_parser(Reply(200), call(a, chat_model(wire), stream=True))
    with pytest.raises(MalformedBody):
        parser.translate(b"[1, 2]")


def test_an_error_event_in_a_stream_is_a_provider_fault() -> None:
    a = adapter("zhipu")
    parser = a.stream_parser(Reply(200), call(a, "glm-4-flash", stream=True))
    with pytest.raises(ProviderFault) as caught:
        parser.translate(b'{"error": {"code": "1302", "message": "too many requests"}}')
    assert caught.value.cls is llm_bridge.RateLimitError
    assert caught.value.retryable is True


def test_a_cumulative_dashscope_stream_sends_only_the_new_text() -> None:
    a = adapter("dashscope-native")
    context = call(a, "qwen-plus", stream=True)
    context.extra_body = {"incremental_output": False}
    parser = a.stream_parser(Reply(200), context)
    texts = []
    for so_far in ("你", "你好", "你好！"):
        event = {"request_id": "r", "output": {"choices": [{"message": {"content": so_far}}]}}
        texts.append(content_of(parser.translate(json.dumps(event).encode())))
    assert texts == ["你", "好", "！"]
    last = {"output": {"choices": [{"message": {"content": "你好！"}, "finish_reason": "stop"}]}}
    assert parser.translate(json.dumps(last).encode()) is not None
    assert parser.done


# --------------------------------------------------------------------------- purity

ADAPTERS_DIR = Path(llm_bridge.__file__).parent / "adapters"


def test_no_adapter_module_imports_httpx() -> None:
    """Adapters take plain values: an ``import httpx`` anywhere in the package (under
    TYPE_CHECKING too) is what lets an httpx object back in."""
    offenders = []
    for path in sorted(ADAPTERS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Name) and node.id == "httpx":
                names = ["httpx"]
            offenders += [
                f"{path.name}:{node.lineno}: {name}"
                for name in names
                if name == "httpx" or name.startswith("httpx.")
            ]
    assert ADAPTERS_DIR.joinpath("_base.py").exists()
    assert offenders == []


def test_no_adapter_module_reads_a_clock_or_draws_an_id() -> None:
    """The clock and ids are injected (`Adapter.create`): none is read in the package."""
    offenders = []
    for path in sorted(ADAPTERS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                offenders += [
                    f"{path.name}:{node.lineno}: import {alias.name}"
                    for alias in node.names
                    if alias.name in ("time", "uuid", "random", "datetime")
                ]
            elif isinstance(node, ast.ImportFrom) and node.module in ("time", "uuid", "random"):
                offenders.append(f"{path.name}:{node.lineno}: from {node.module}")
    assert offenders == []
