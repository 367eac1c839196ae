"""Alibaba DashScope native chat through the drop-in facade, sync and async.

Request mapping (asserted on the JSON the fake received), multimodal routing, response and
stream mapping (incremental and cumulative), stream-only models aggregated into one
completion, and the whole error code table of ``providers/dashscope.toml``.
Wire facts: docs/providers/dashscope.md; the D1–D6 bodies are DashScope's own native-API
requests and answers, used byte for byte through respx.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx
from helpers import (
    CLASS_STATUS,
    HELLO,
    MODES,
    ProviderChat,
    consume,
    no_unsupported_warnings,
    provider_table,
)

import llm_bridge
from llm_bridge import (
    APIConnectionError,
    BadRequestError,
    InternalServerError,
    PermissionDeniedError,
    RateLimitError,
    UnsupportedParameterWarning,
)
from llm_bridge._errors import status_of
from llm_bridge.testing import FakeDashScope, Reply, StreamCut, ToolCallSpec
from llm_bridge.types.chat import ChatCompletion

KEY = "sk-test"
BASE = "https://dashscope.aliyuncs.com/api/v1"
TEXT_URL = f"{BASE}/services/aigc/text-generation/generation"
MM_URL = f"{BASE}/services/aigc/multimodal-generation/generation"
TEXT_PATH = "/api/v1/services/aigc/text-generation/generation"
MM_PATH = "/api/v1/services/aigc/multimodal-generation/generation"
MODEL = "qwen-plus"
VL_MODEL = "qwen-vl-max"
JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream;charset=UTF-8"}
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "查询天气",
        "parameters": WEATHER_PARAMS,
    },
}
IMAGE = "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"
DATA_IMAGE = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"

PROVIDER_TABLE = provider_table("dashscope")
ERROR_TABLE: dict[str, dict[str, Any]] = PROVIDER_TABLE["errors"]
CATALOGUE: dict[str, dict[str, Any]] = PROVIDER_TABLE["models"]
PLAIN_CODES = sorted(c for c in ERROR_TABLE if ":" not in c and "*" not in c)
PREFIX_ROWS = sorted(c for c in ERROR_TABLE if c.endswith(".*"))
MESSAGE_ROWS = sorted(c for c in ERROR_TABLE if ":" in c)
assert len(PLAIN_CODES) >= 25, "the DashScope error table went missing"
assert PREFIX_ROWS and MESSAGE_ROWS
THINKING_BY_DEFAULT = next(
    name for name, info in CATALOGUE.items() if info.get("thinking_by_default")
)
assert not CATALOGUE[THINKING_BY_DEFAULT].get("stream_only")
assert "vision" not in CATALOGUE[MODEL]["capabilities"]
assert "vision" in CATALOGUE[VL_MODEL]["capabilities"]

# HTTP status per code, as DashScope's error-code table documents it (codes without one get
# the usual status of their exception class, CLASS_STATUS).
DOC_STATUS = {
    "InvalidApiKey": 401,
    "invalid_api_key": 401,
    "Throttling": 429,
    "LimitRequests": 429,
    "Arrearage": 400,
    "PrepaidBillOverdue": 429,
    "PostpaidBillOverdue": 429,
    "CommodityNotPurchased": 429,
    "AllocationQuota.FreeTierOnly": 403,
    "DataInspectionFailed": 400,
    "data_inspection_failed": 400,
    "FaqRuleBlocked": 400,
    "CustomRoleBlocked": 400,
    "InvalidParameter": 400,
    "invalid_parameter_error": 400,
    "InvalidURL": 400,
    "UnsupportedOperation": 400,
    "AccessDenied": 403,
    "Workspace.AccessDenied": 403,
    "Model.AccessDenied": 403,
    "ModelNotFound": 404,
    "Model.NotExist": 404,
    "model_not_found": 404,
    "WorkSpaceNotFound": 404,
    "RequestTimeOut": 408,
    "InternalError": 500,
    "SystemError": 500,
    "ModelUnavailable": 503,
    "ServiceUnavailable": 503,
    "GatewayTimeout": 504,
}

# --------------------------------------------------------------------------- D1–D6 fixtures

D1_REQUEST = (
    '{"model":"qwen-plus","input":{"messages":[{"role":"system","content":"You are a helpful '
    'assistant."},{"role":"user","content":"你是谁？"}]},"parameters":{"result_format":"message"}}'
).encode()
D1_MESSAGES = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "你是谁？"},
]
D1_TEXT = "我是阿里云开发的一款超大规模语言模型，我叫通义千问。"
D1 = (
    '{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":'
    '"我是阿里云开发的一款超大规模语言模型，我叫通义千问。"}}]},"usage":{"input_tokens":22,'
    '"output_tokens":17,"total_tokens":39},"request_id":"902fee3b-f7f0-9a8c-96a1-6b4ea25af114"}'
).encode()
D1_RID = "902fee3b-f7f0-9a8c-96a1-6b4ea25af114"
D1_TEXT_FORMAT = (
    '{"output":{"text":"我是阿里云开发的一款超大规模语言模型，我叫通义千问。","finish_reason":'
    '"stop"},"usage":{"input_tokens":22,"output_tokens":17,"total_tokens":39},'
    '"request_id":"7a7f0c31-9d52-9f0a-a6a3-22b0c5b2f1de"}'
).encode()

D2_REQUEST = (
    '{"model":"qwen-plus","input":{"messages":[{"role":"user","content":"你好"}]},'
    '"parameters":{"result_format":"message","incremental_output":true}}'
).encode()
D2_RID = "71689cfc-1f42-9949-86e8-9563b7f832b1"
D2_EVENTS = [
    "id:1\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":"你好","role":"assistant"},'
    '"finish_reason":"null"}]},"usage":{"total_tokens":12,"output_tokens":1,"input_tokens":11},'
    '"request_id":"71689cfc-1f42-9949-86e8-9563b7f832b1"}\n\n',
    "id:2\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":"！有什么可以帮你的？","role":"assistant"},'
    '"finish_reason":"null"}]},"usage":{"total_tokens":19,"output_tokens":8,"input_tokens":11},'
    '"request_id":"71689cfc-1f42-9949-86e8-9563b7f832b1"}\n\n',
    "id:3\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":"","role":"assistant"},'
    '"finish_reason":"stop"}]},"usage":{"total_tokens":19,"output_tokens":8,"input_tokens":11},'
    '"request_id":"71689cfc-1f42-9949-86e8-9563b7f832b1"}\n\n',
]
D2 = "".join(D2_EVENTS).encode()
D3 = (
    "id:1\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":"你好","role":"assistant"},'
    '"finish_reason":"null"}]},"usage":{"total_tokens":12,"output_tokens":1,"input_tokens":11},'
    '"request_id":"5c0d0a55-6a8b-9b4d-9c1b-1f0b8b1f3a10"}\n\n'
    "id:2\nevent:result\n:HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":"你好！有什么可以帮你的？",'
    '"role":"assistant"},"finish_reason":"stop"}]},"usage":{"total_tokens":19,'
    '"output_tokens":8,"input_tokens":11},"request_id":"5c0d0a55-6a8b-9b4d-9c1b-1f0b8b1f3a10"}\n\n'
).encode()
STREAM_TEXT = "你好！有什么可以帮你的？"

D4 = (
    '{"output":{"choices":[{"finish_reason":"tool_calls","message":{"role":"assistant",'
    '"content":"","tool_calls":[{"function":{"name":"get_current_weather","arguments":'
    '"{\\"location\\": \\"杭州市\\"}"},"index":0,"id":"call_cb3dd8fd4b7b4d9aaf2ee1",'
    '"type":"function"}]}}]},"usage":{"input_tokens":217,"output_tokens":18,"total_tokens":235},'
    '"request_id":"bd803417-56a7-9597-9d3f-a998a35b0477"}'
).encode()

D5_BODIES = [
    (
        401,
        '{"code":"InvalidApiKey","message":"Invalid API-key provided.","request_id":'
        '"fb53c4ec-1c12-4fc4-a580-cdb7c3261fc1"}',
        "AuthenticationError",
        "invalid_api_key",
        1,
    ),
    (
        429,
        '{"code":"Throttling.RateQuota","message":"Requests rate limit exceeded, please try '
        'again later.","request_id":"4c9a8f1e-2b1d-9d0e-8f5a-7e6c1d2b3a4f"}',
        "RateLimitError",
        "rate_limit_exceeded",
        3,
    ),
    (
        400,
        '{"code":"DataInspectionFailed","message":"Input data may contain inappropriate '
        'content.","request_id":"a3e1c5b0-7d2f-9c41-b8e6-0f9d2c7a1b35"}',
        "BadRequestError",
        "content_filter",
        1,
    ),
    (
        400,
        '{"code":"InvalidParameter","message":"<400> InternalError.Algo.InvalidParameter: Range '
        'of max_tokens should be [1, 32768]","request_id":"f19efcde-711c-9eff-af2f-e6a09d189750"}',
        "BadRequestError",
        "invalid_request_error",
        1,
    ),
]

D6_REJECTED = (
    b"id:1\nevent:error\n:HTTP_STATUS/400\n"
    b'data:{"request_id":"req-1","code":"Arrearage","type":"Arrearage","message":"Access denied, '
    b'please make sure your account is in good standing."}\n\n'
)
D6_MID_STREAM = (
    b"id:7\nevent:error\n:HTTP_STATUS/400\n"
    b'data:{"code":"DataInspectionFailed","message":"Output data may contain inappropriate '
    b'content.","request_id":"0cbe6006-faec-9854-bf8b-c906d75c3bd8"}\n\n'
)

#: These tests exercise the native protocol, which is opt-in (compatible mode is the default).
NATIVE = {"providers": {"dashscope": {"api": "native"}}}


# --------------------------------------------------------------------------- helpers


def fake(**kwargs: Any) -> FakeDashScope:
    return FakeDashScope(KEY, **kwargs)


DASHSCOPE = ProviderChat("dashscope", MODEL, fake, {"api_key": KEY, "config": NATIVE})
client, aclient, plain_client = DASHSCOPE.client, DASHSCOPE.aclient, DASHSCOPE.plain_client
create, call, sent = DASHSCOPE.create, DASHSCOPE.call, DASHSCOPE.sent
stream_chunks = DASHSCOPE.stream_chunks


def texts(chunks: list[Any], field: str = "content") -> list[str]:
    """The non-empty ``field`` pieces of the deltas, in order."""
    out = []
    for chunk in chunks:
        for choice in chunk.choices:
            piece = getattr(choice.delta, field, None)
            if piece:
                out.append(piece)
    return out


def tool_deltas(chunks: list[Any]) -> list[Any]:
    return [call for chunk in chunks for c in chunk.choices for call in c.delta.tool_calls or []]


def finishes(chunks: list[Any]) -> list[Any]:
    return [c.finish_reason for chunk in chunks for c in chunk.choices]


def error_body(code: str, message: str = "出错了", request_id: str = "r-1") -> str:
    return json.dumps(
        {"code": code, "message": message, "request_id": request_id}, ensure_ascii=False
    )


def status_for(code: str) -> int:
    return DOC_STATUS.get(code) or CLASS_STATUS[ERROR_TABLE[code]["exception"]]


# =========================================================================== 1. request mapping


@MODES
async def test_plain_request_goes_to_text_generation_with_the_native_envelope(mode: str):
    f = fake()
    result = await create(mode, f)
    assert len(f.requests) == 1
    request = f.requests[0]
    assert request.method == "POST"
    assert str(request.url) == TEXT_URL
    assert request.url.path == TEXT_PATH
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert "x-dashscope-sse" not in request.headers
    assert f.last_json == {
        "model": MODEL,
        "input": {"messages": HELLO},
        "parameters": {"result_format": "message"},
    }
    assert result.choices[0].message.content == f"(offline fake {MODEL}) You said: 你好"


@MODES
async def test_stream_request_uses_the_sse_header_and_incremental_output(mode: str):
    f = fake()
    chunks, error = await stream_chunks(mode, f)
    assert error is None and chunks
    request = f.requests[0]
    assert request.url.path == TEXT_PATH
    assert request.headers["X-DashScope-SSE"] == "enable"
    body = f.last_json
    assert "stream" not in body
    assert "stream" not in body["parameters"]
    assert body["parameters"] == {"result_format": "message", "incremental_output": True}


@MODES
async def test_stream_options_never_reach_the_body(mode: str):
    f = fake()
    await stream_chunks(mode, f, stream_options={"include_usage": True})
    body = f.last_json
    assert set(body) == {"model", "input", "parameters"}
    assert "stream_options" not in body["parameters"]


@MODES
@pytest.mark.parametrize(("given", "expected"), [(2.0, 1.99), (2, 1.99), (0.7, 0.7), (0, 0)])
async def test_temperature_is_kept_below_two(mode: str, given: float, expected: float):
    body = await sent(mode, temperature=given)
    assert body["parameters"]["temperature"] == expected
    assert "temperature" not in body


@MODES
@pytest.mark.parametrize(
    ("given", "expected"), [(1.0, 0.999999), (1, 0.999999), (0, 0.000001), (0.8, 0.8)]
)
async def test_top_p_is_kept_inside_the_tolerant_range(mode: str, given: float, expected: float):
    body = await sent(mode, top_p=given)
    assert body["parameters"]["top_p"] == expected


@MODES
async def test_max_completion_tokens_becomes_max_tokens(mode: str):
    body = await sent(mode, max_completion_tokens=100)
    assert body["parameters"]["max_tokens"] == 100
    assert "max_completion_tokens" not in body["parameters"]
    assert (await sent(mode, max_tokens=50))["parameters"]["max_tokens"] == 50


@MODES
async def test_seed_stop_presence_penalty_and_n_pass_into_parameters(mode: str):
    body = await sent(mode, seed=42, stop=["。", "END"], presence_penalty=0.5, n=2)
    parameters = body["parameters"]
    assert parameters["seed"] == 42
    assert parameters["stop"] == ["。", "END"]
    assert parameters["presence_penalty"] == 0.5
    assert parameters["n"] == 2
    for name in ("seed", "stop", "presence_penalty", "n"):
        assert name not in body


@MODES
async def test_no_optional_parameters_unless_asked(mode: str):
    body = await sent(mode)
    assert body["parameters"] == {"result_format": "message"}


@MODES
async def test_tools_and_auto_tool_choice_pass_into_parameters(mode: str):
    with no_unsupported_warnings():
        body = await sent(mode, tools=[WEATHER], tool_choice="auto")
    assert body["parameters"]["tools"] == [WEATHER]
    assert body["parameters"]["tool_choice"] == "auto"
    assert "tools" not in body


@MODES
async def test_tool_choice_none_sends_no_tools(mode: str):
    body = await sent(mode, tools=[WEATHER], tool_choice="none")
    assert "tools" not in body["parameters"]
    assert body["parameters"].get("tool_choice") in (None, "none")


@MODES
async def test_a_named_tool_choice_is_sent_as_is(mode: str):
    choice = {"type": "function", "function": {"name": "get_current_weather"}}
    body = await sent(mode, tools=[WEATHER], tool_choice=choice)
    assert body["parameters"]["tools"] == [WEATHER]
    assert body["parameters"]["tool_choice"] == choice


@MODES
async def test_tool_choice_required_warns_and_is_not_sent(mode: str):
    f = fake()
    with pytest.warns(UnsupportedParameterWarning, match="tool_choice"):
        await create(mode, f, tools=[WEATHER], tool_choice="required")
    parameters = f.last_json["parameters"]
    assert parameters["tools"] == [WEATHER]
    assert parameters.get("tool_choice") in (None, "auto")


@MODES
async def test_frequency_penalty_warns_and_is_not_sent(mode: str):
    f = fake()
    with pytest.warns(UnsupportedParameterWarning, match="frequency_penalty"):
        await create(mode, f, frequency_penalty=0.5)
    assert "frequency_penalty" not in f.last_json["parameters"]
    assert "frequency_penalty" not in f.last_json


@MODES
async def test_reasoning_effort_none_disables_thinking(mode: str):
    f = fake()
    await create(mode, f, reasoning_effort="none")
    assert f.last_json["parameters"]["enable_thinking"] is False
    assert "x-dashscope-sse" not in f.requests[0].headers
    assert "reasoning_effort" not in f.last_json["parameters"]


@MODES
async def test_extra_body_parameters_land_in_parameters(mode: str):
    body = await sent(mode, extra_body={"enable_search": True, "top_k": 5})
    assert body["parameters"]["enable_search"] is True
    assert body["parameters"]["top_k"] == 5
    assert body["parameters"]["result_format"] == "message"
    assert "enable_search" not in body and "top_k" not in body


@MODES
async def test_extra_body_envelope_keys_merge_at_the_top_level(mode: str):
    body = await sent(mode, extra_body={"input": {"prompt": "再说一遍"}, "resources": []})
    assert body["input"] == {"messages": HELLO, "prompt": "再说一遍"}
    assert body["resources"] == []
    assert "input" not in body["parameters"]
    assert "resources" not in body["parameters"]
    assert "prompt" not in body


@MODES
async def test_an_extra_body_parameters_envelope_merges_into_parameters(mode: str):
    body = await sent(
        mode,
        temperature=0.5,
        extra_body={"parameters": {"repetition_penalty": 1.1}, "top_k": 5},
    )
    assert body["parameters"]["repetition_penalty"] == 1.1
    assert body["parameters"]["top_k"] == 5
    assert body["parameters"]["temperature"] == 0.5
    assert body["parameters"]["result_format"] == "message"


@MODES
async def test_json_object_without_the_word_json_gets_it_in_a_system_message(mode: str):
    # DashScope refuses json_object unless a message says "JSON" (the fake too): the
    # smallest fix is a system message saying it.
    f = fake()
    result = await create(mode, f, response_format={"type": "json_object"})
    assert result.choices[0].message.content
    messages = f.last_json["input"]["messages"]
    assert messages[0] == {"role": "system", "content": "Answer in JSON."}
    assert messages[1:] == HELLO


@MODES
async def test_json_in_an_image_url_is_not_the_word_json(mode: str):
    """Only text counts: an image whose URL or data holds "json" by chance left the
    request without the word, and DashScope refused it."""
    image = {"type": "image_url", "image_url": {"url": "https://img.example/json/cat.png"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "这是什么？"}, image]}]
    f = fake()
    await create(
        mode, f, model="qwen-vl-max", messages=messages, response_format={"type": "json_object"}
    )
    system = f.last_json["input"]["messages"][0]  # (a multimodal model's: in parts)
    assert system == {"role": "system", "content": [{"text": "Answer in JSON."}]}


@MODES
async def test_json_object_with_the_word_json_is_sent(mode: str):
    messages = [{"role": "user", "content": "用 JSON 回答：你好"}]
    body = await sent(mode, messages=messages, response_format={"type": "json_object"})
    assert body["parameters"]["response_format"] == {"type": "json_object"}


@MODES
async def test_json_schema_response_format_passes(mode: str):
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    body = await sent(mode, response_format=fmt)
    assert body["parameters"]["response_format"] == fmt


@MODES
async def test_a_trailing_assistant_message_fails_before_sending(mode: str):
    f = fake()
    messages = [*HELLO, {"role": "assistant", "content": "你好！"}]
    with pytest.raises(BadRequestError) as info:
        await create(mode, f, messages=messages)
    assert f.requests == []
    assert "assistant" in str(info.value)


TOOL_HISTORY = [
    {"role": "user", "content": "杭州天气怎么样？"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_cb3dd8fd4b7b4d9aaf2ee1",
                "type": "function",
                "function": {
                    "name": "get_current_weather",
                    "arguments": '{"location": "杭州市"}',
                },
            }
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_cb3dd8fd4b7b4d9aaf2ee1",
        "content": "杭州今天晴，24℃",
    },
]


@MODES
async def test_a_tool_round_trip_keeps_ids_and_sends_empty_assistant_content(mode: str):
    body = await sent(mode, messages=TOOL_HISTORY, tools=[WEATHER])
    messages = body["input"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "tool"]
    assert messages[1]["content"] == ""
    assert messages[1]["tool_calls"] == TOOL_HISTORY[1]["tool_calls"]
    assert messages[2]["tool_call_id"] == "call_cb3dd8fd4b7b4d9aaf2ee1"
    assert messages[2]["content"] == "杭州今天晴，24℃"


@MODES
async def test_a_tool_result_also_carries_the_function_name(mode: str):
    """Older DashScope docs put ``name`` on the tool message: it is sent with the call id."""
    body = await sent(mode, messages=TOOL_HISTORY, tools=[WEATHER])
    assert body["input"]["messages"][2].get("name") == "get_current_weather"


@MODES
async def test_developer_role_becomes_system(mode: str):
    messages = [{"role": "developer", "content": "简短回答"}, *HELLO]
    body = await sent(mode, messages=messages)
    assert body["input"]["messages"][0] == {"role": "system", "content": "简短回答"}


# =========================================================================== 2. multimodal


def vision_messages(url: str) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": "You are a helpful assistant."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "图中描绘的是什么景象？"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        },
    ]


@MODES
@pytest.mark.parametrize("url", [IMAGE, DATA_IMAGE], ids=["http", "data-url"])
async def test_an_image_part_goes_to_the_multimodal_path_as_native_parts(mode: str, url: str):
    f = fake()
    f.reply("图中是一只狗和一个女孩。")
    result = await create(mode, f, model=VL_MODEL, messages=vision_messages(url))
    request = f.requests[0]
    assert str(request.url) == MM_URL
    assert request.url.path == MM_PATH
    body = f.last_json
    assert body["model"] == VL_MODEL
    assert body["input"]["messages"] == [
        {"role": "system", "content": [{"text": "You are a helpful assistant."}]},
        {"role": "user", "content": [{"text": "图中描绘的是什么景象？"}, {"image": url}]},
    ]
    assert body["parameters"]["result_format"] == "message"
    message = result.choices[0].message
    assert message.content == "图中是一只狗和一个女孩。"
    assert isinstance(message.content, str)


@MODES
async def test_a_vision_model_streams_list_content_as_strings(mode: str):
    f = fake()
    f.reply("一只狗和一个女孩", chunk_size=3)
    chunks, error = await stream_chunks(mode, f, model=VL_MODEL, messages=vision_messages(IMAGE))
    assert error is None
    assert f.requests[0].url.path == MM_PATH
    pieces = texts(chunks)
    assert all(isinstance(p, str) for p in pieces)
    assert "".join(pieces) == "一只狗和一个女孩"


@MODES
async def test_multimodal_response_content_list_becomes_a_string(mode: str):
    body = (
        '{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant","content":'
        '[{"text":"这是一只狗。"},{"text":"还有一个女孩。"}]}}]},"usage":{"input_tokens":1271,'
        '"output_tokens":12,"total_tokens":1283,"image_tokens":1247},"request_id":"mm-1"}'
    )
    f = fake().raw(200, body, JSON_HEADERS)
    result = await create(mode, f, model=VL_MODEL, messages=vision_messages(IMAGE))
    assert result.choices[0].message.content == "这是一只狗。还有一个女孩。"
    assert result.usage.prompt_tokens == 1271
    assert result.usage.total_tokens == 1283


@MODES
async def test_a_vision_model_takes_text_only_messages_on_the_multimodal_path(mode: str):
    f = fake()
    result = await create(mode, f, model=VL_MODEL)
    assert f.requests[0].url.path == MM_PATH
    assert f.last_json["input"]["messages"] == [{"role": "user", "content": [{"text": "你好"}]}]
    assert result.choices[0].message.content == f"(offline fake {VL_MODEL}) You said: 你好"


@MODES
async def test_a_vision_snapshot_unknown_to_the_catalogue_goes_multimodal(mode: str):
    f = fake().reply("一只狗")
    result = await create(mode, f, model="qwen-vl-max-2025-08-13", messages=vision_messages(IMAGE))
    assert f.requests[0].url.path == MM_PATH
    assert result.choices[0].message.content == "一只狗"


@MODES
async def test_an_image_to_a_text_only_model_fails_before_sending(mode: str):
    f = fake()
    with pytest.raises(BadRequestError) as info:
        await create(mode, f, model=MODEL, messages=vision_messages(IMAGE))
    assert f.requests == []
    assert MODEL in str(info.value)


# =========================================================================== 3. responses


@MODES
async def test_d1_byte_exact_becomes_a_chat_completion(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(TEXT_URL).mock(
            return_value=httpx.Response(200, content=D1, headers=JSON_HEADERS)
        )
        result = await call(mode, plain_client(mode), messages=D1_MESSAGES)
    assert route.calls.last.request.content == D1_REQUEST
    assert isinstance(result, ChatCompletion)
    assert result.object == "chat.completion"
    assert result.id == D1_RID
    assert result.request_id == D1_RID
    assert result.provider == "dashscope"
    assert result.model == MODEL
    assert isinstance(result.created, int) and result.created > 1_600_000_000
    choice = result.choices[0]
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == D1_TEXT
    assert choice.finish_reason == "stop"
    assert choice.message.tool_calls is None
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (22, 17, 39)
    assert not usage.estimated
    dumped = result.model_dump()
    assert dumped["request_id"] == D1_RID
    assert dumped["provider"] == "dashscope"


@MODES
async def test_the_text_result_format_also_parses(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        mock.post(TEXT_URL).mock(
            return_value=httpx.Response(200, content=D1_TEXT_FORMAT, headers=JSON_HEADERS)
        )
        result = await call(mode, plain_client(mode), messages=D1_MESSAGES)
    assert result.choices[0].message.content == D1_TEXT
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].finish_reason == "stop"
    assert result.id == "7a7f0c31-9d52-9f0a-a6a3-22b0c5b2f1de"
    assert result.usage.total_tokens == 39


@MODES
async def test_the_fakes_text_format_reply_parses(mode: str):
    f = fake().reply("文本格式")
    result = await create(mode, f, extra_body={"result_format": "text"})
    assert f.last_json["parameters"]["result_format"] == "text"
    assert result.choices[0].message.content == "文本格式"


@MODES
async def test_d4_byte_exact_tool_call(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(TEXT_URL).mock(
            return_value=httpx.Response(200, content=D4, headers=JSON_HEADERS)
        )
        result = await call(mode, plain_client(mode), tools=[WEATHER])
    sent_body = json.loads(route.calls.last.request.content)
    assert sent_body["parameters"] == {"result_format": "message", "tools": [WEATHER]}
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert len(choice.message.tool_calls) == 1
    tool_call = choice.message.tool_calls[0]
    assert tool_call.id == "call_cb3dd8fd4b7b4d9aaf2ee1"
    assert tool_call.type == "function"
    assert tool_call.function.name == "get_current_weather"
    assert isinstance(tool_call.function.arguments, str)
    assert json.loads(tool_call.function.arguments) == {"location": "杭州市"}
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (217, 18)
    assert result.id == "bd803417-56a7-9597-9d3f-a998a35b0477"


@MODES
async def test_the_fakes_tool_call_round_trips(mode: str):
    f = fake().tool_call("get_current_weather", {"location": "杭州市"}, id="call_x")
    result = await create(mode, f, tools=[WEATHER])
    tool_call = result.choices[0].message.tool_calls[0]
    assert tool_call.id == "call_x"
    assert json.loads(tool_call.function.arguments) == {"location": "杭州市"}
    assert result.choices[0].finish_reason == "tool_calls"


@MODES
async def test_reasoning_content_and_usage_details_are_reachable(mode: str):
    body = (
        '{"output":{"choices":[{"finish_reason":"stop","message":{"role":"assistant",'
        '"content":"答案是 2。","reasoning_content":"1+1 等于 2。"}}]},"usage":{"input_tokens":'
        '30,"output_tokens":20,"total_tokens":50,"output_tokens_details":{"reasoning_tokens":12},'
        '"prompt_tokens_details":{"cached_tokens":16}},"request_id":"r-think"}'
    )
    f = fake().raw(200, body, JSON_HEADERS)
    result = await create(mode, f)
    message = result.choices[0].message
    assert message.content == "答案是 2。"
    assert message.reasoning_content == "1+1 等于 2。"
    usage = result.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (30, 20, 50)
    assert usage.completion_tokens_details.reasoning_tokens == 12
    assert usage.prompt_tokens_details.cached_tokens == 16


@MODES
async def test_usage_without_total_tokens_is_summed(mode: str):
    body = (
        '{"output":{"choices":[{"finish_reason":"length","message":{"role":"assistant",'
        '"content":"截断"}}]},"usage":{"input_tokens":5,"output_tokens":7},"request_id":"r-old"}'
    )
    f = fake().raw(200, body, JSON_HEADERS)
    result = await create(mode, f)
    assert result.usage.total_tokens == 12
    assert result.choices[0].finish_reason == "length"


# =========================================================================== 4. streams


async def respx_stream(mode: str, body: bytes, **params: Any) -> tuple[list[Any], Any, Any]:
    """Stream ``body`` (SSE bytes) through respx; return chunks, error and the request."""
    params.setdefault("messages", HELLO)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(TEXT_URL).mock(
            return_value=httpx.Response(200, content=body, headers=SSE_HEADERS)
        )
        stream = await call(mode, plain_client(mode), stream=True, **params)
        chunks, error = await consume(stream)
    return chunks, error, route.calls.last.request


@MODES
async def test_d2_byte_exact_incremental_stream(mode: str):
    chunks, error, request = await respx_stream(mode, D2, stream_options={"include_usage": True})
    assert error is None
    assert request.content == D2_REQUEST
    assert request.headers["X-DashScope-SSE"] == "enable"
    assert texts(chunks) == ["你好", "！有什么可以帮你的？"]
    assert finishes(chunks) == [None, None, "stop"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:-1])
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.id == D2_RID for c in chunks)
    assert all(c.provider == "dashscope" for c in chunks)
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (11, 8)
    assert last.usage.total_tokens == 19  # the last event's figures, never a sum
    assert all(c.usage is None for c in chunks[:-1])


@MODES
async def test_d3_byte_exact_cumulative_stream_emits_only_the_new_text(mode: str):
    chunks, error, request = await respx_stream(
        mode,
        D3,
        stream_options={"include_usage": True},
        extra_body={"incremental_output": False},
    )
    assert error is None
    assert json.loads(request.content)["parameters"]["incremental_output"] is False
    assert texts(chunks) == ["你好", "！有什么可以帮你的？"]
    assert finishes(chunks) == [None, "stop"]
    assert chunks[-1].choices == []
    assert chunks[-1].usage.total_tokens == 19
    assert chunks[-1].usage.prompt_tokens == 11


@MODES
async def test_d2_and_d3_give_the_same_text(mode: str):
    incremental, _, _ = await respx_stream(mode, D2)
    cumulative, _, _ = await respx_stream(mode, D3, extra_body={"incremental_output": False})
    assert "".join(texts(incremental)) == "".join(texts(cumulative)) == STREAM_TEXT


@MODES
async def test_without_include_usage_no_chunk_carries_usage(mode: str):
    chunks, error, _ = await respx_stream(mode, D2)
    assert error is None
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


@MODES
@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "cumulative"])
async def test_fake_stream_usage_is_the_last_events_never_summed(mode: str, incremental: bool):
    usage = {"input_tokens": 40, "output_tokens": 9, "total_tokens": 49}
    f = fake().reply("一二三四五六七八九十", usage=usage, chunk_size=2)
    extra = {} if incremental else {"extra_body": {"incremental_output": False}}
    chunks, error = await stream_chunks(mode, f, stream_options={"include_usage": True}, **extra)
    assert error is None
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    final = chunks[-1].usage
    assert (final.prompt_tokens, final.completion_tokens, final.total_tokens) == (40, 9, 49)
    assert "".join(texts(chunks)) == "一二三四五六七八九十"


@MODES
@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "cumulative"])
async def test_reasoning_deltas_come_before_content(mode: str, incremental: bool):
    f = fake().reply("答案是 2。", reasoning_content="先想一想：1+1 等于 2。", chunk_size=3)
    extra = {} if incremental else {"extra_body": {"incremental_output": False}}
    chunks, error = await stream_chunks(mode, f, **extra)
    assert error is None
    assert "".join(texts(chunks, "reasoning_content")) == "先想一想：1+1 等于 2。"
    assert "".join(texts(chunks)) == "答案是 2。"
    kinds = []
    for chunk in chunks:
        for choice in chunk.choices:
            if getattr(choice.delta, "reasoning_content", None):
                kinds.append("r")
            if choice.delta.content:
                kinds.append("c")
    assert kinds.index("c") > max(i for i, k in enumerate(kinds) if k == "r")
    assert len(texts(chunks, "reasoning_content")) > 1


@MODES
@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "cumulative"])
async def test_a_streamed_tool_call_gives_fragments_with_id_and_name_once(
    mode: str, incremental: bool
):
    arguments = {"location": "杭州市", "unit": "celsius"}
    spec = ToolCallSpec("get_current_weather", arguments, id="call_abc")
    f = fake().then(Reply(tool_calls=[spec], chunk_size=5))
    extra = {} if incremental else {"extra_body": {"incremental_output": False}}
    chunks, error = await stream_chunks(mode, f, tools=[WEATHER], **extra)
    assert error is None
    deltas = tool_deltas(chunks)
    assert len(deltas) > 2, "the arguments should arrive in several fragments"
    ids = [d.id for d in deltas if d.id]
    assert ids == ["call_abc"]
    assert deltas[0].id == "call_abc"
    names = [d.function.name for d in deltas if d.function and d.function.name]
    assert names == ["get_current_weather"]
    joined = "".join(d.function.arguments or "" for d in deltas if d.function)
    assert joined == json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
    assert all(d.index == 0 for d in deltas)
    assert finishes(chunks)[-1] == "tool_calls"


@MODES
@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("incremental", [True, False], ids=["incremental", "cumulative"])
async def test_multibyte_text_split_at_every_byte_still_concatenates(
    mode: str, split: int, incremental: bool
):
    text = "你好👋！Qwen 通义千问🤖，ünïcødé 测试。"
    f = fake(split_bytes=split).reply(text, chunk_size=3)
    extra = {} if incremental else {"extra_body": {"incremental_output": False}}
    chunks, error = await stream_chunks(mode, f, **extra)
    assert error is None
    pieces = texts(chunks)
    assert "".join(pieces) == text
    assert pieces == [text[i : i + 3] for i in range(0, len(text), 3)]
    assert finishes(chunks)[-1] == "stop"


@MODES
async def test_d6_mid_stream_error_raises_after_the_earlier_chunks(mode: str):
    body = "".join(D2_EVENTS[:2]).encode() + D6_MID_STREAM
    chunks, error, _ = await respx_stream(mode, body)
    assert texts(chunks) == ["你好", "！有什么可以帮你的？"]
    assert isinstance(error, BadRequestError)
    assert error.code == "content_filter"
    assert error.provider_code == "DataInspectionFailed"
    assert error.request_id == "0cbe6006-faec-9854-bf8b-c906d75c3bd8"


@MODES
async def test_the_fakes_mid_stream_error_raises_content_filter(mode: str):
    f = fake().error_mid_stream(2, "content_filter", content="一二三四五六七八九十")
    chunks, error = await stream_chunks(mode, f)
    assert "".join(texts(chunks)) == "一二三四五六七八"
    assert isinstance(error, BadRequestError)
    assert error.code == "content_filter"
    assert len(f.requests) == 1


@MODES
@pytest.mark.parametrize("cut_raises", [True, False], ids=["reset", "early-eof"])
async def test_a_cut_stream_raises_api_connection_error(mode: str, cut_raises: bool):
    f = fake().then(StreamCut(2, content="一二三四五六七八九十", cut_raises=cut_raises))
    chunks, error = await stream_chunks(mode, f)
    assert "".join(texts(chunks)) == "一二三四五六七八"
    assert isinstance(error, APIConnectionError)
    assert all(c.finish_reason is None for chunk in chunks for c in chunk.choices)


@MODES
async def test_a_200_stream_event_with_a_code_raises(mode: str):
    body = (
        D2_EVENTS[0]
        + "id:2\nevent:result\n:HTTP_STATUS/200\n"
        + 'data:{"code":"InternalError.Algo","message":"inference failed","request_id":"r-9"}\n\n'
    ).encode()
    chunks, error, _ = await respx_stream(mode, body)
    assert texts(chunks) == ["你好"]
    assert isinstance(error, InternalServerError)
    assert error.provider_code == "InternalError.Algo"


# =========================================================================== 5. stream-only models


@MODES
async def test_a_stream_only_model_is_streamed_and_aggregated(mode: str):
    usage = {
        "input_tokens": 30,
        "output_tokens": 12,
        "total_tokens": 42,
        "output_tokens_details": {"reasoning_tokens": 7},
    }
    f = fake().reply("答案是 2。", reasoning_content="先想一想：1+1=2。", usage=usage)
    result = await create(mode, f, model="qwq-plus")
    assert len(f.requests) == 1
    request = f.requests[0]
    assert request.headers["X-DashScope-SSE"] == "enable"
    assert f.last_json["parameters"]["incremental_output"] is True
    assert "stream" not in f.last_json
    assert isinstance(result, ChatCompletion)
    assert result.object == "chat.completion"
    assert result.model == "qwq-plus"
    message = result.choices[0].message
    assert message.content == "答案是 2。"
    assert message.reasoning_content == "先想一想：1+1=2。"
    assert result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (30, 12)
    assert result.usage.total_tokens == 42
    assert result.usage.completion_tokens_details.reasoning_tokens == 7
    assert result.id and result.provider == "dashscope"


@MODES
async def test_an_aggregated_d2_keeps_the_last_usage(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(TEXT_URL).mock(
            return_value=httpx.Response(200, content=D2, headers=SSE_HEADERS)
        )
        result = await call(mode, plain_client(mode), model="qwq-plus")
    assert route.calls.last.request.headers["X-DashScope-SSE"] == "enable"
    assert isinstance(result, ChatCompletion)
    assert result.choices[0].message.content == STREAM_TEXT
    assert result.usage.total_tokens == 19
    assert result.usage.completion_tokens == 8
    assert result.id == D2_RID


@MODES
async def test_enable_thinking_through_extra_body_is_streamed_and_aggregated(mode: str):
    f = fake().reply("好的。", reasoning_content="用户打招呼。")
    result = await create(mode, f, model=MODEL, extra_body={"enable_thinking": True})
    assert f.requests[0].headers["X-DashScope-SSE"] == "enable"
    parameters = f.last_json["parameters"]
    assert parameters["enable_thinking"] is True
    assert parameters["incremental_output"] is True
    assert isinstance(result, ChatCompletion)
    assert result.choices[0].message.content == "好的。"
    assert result.choices[0].message.reasoning_content == "用户打招呼。"


@MODES
async def test_reasoning_effort_high_on_a_hybrid_model_is_streamed(mode: str):
    f = fake().reply("好的。", reasoning_content="想。")
    result = await create(mode, f, model=MODEL, reasoning_effort="high")
    assert f.requests[0].headers["X-DashScope-SSE"] == "enable"
    assert f.last_json["parameters"]["enable_thinking"] is True
    assert result.choices[0].message.content == "好的。"


@MODES
async def test_a_thinking_by_default_model_is_streamed_unless_thinking_is_off(mode: str):
    f = fake().reply("思考后的答案", reasoning_content="想")
    result = await create(mode, f, model=THINKING_BY_DEFAULT)
    assert f.requests[0].headers.get("X-DashScope-SSE") == "enable"
    assert f.last_json["parameters"]["incremental_output"] is True
    assert result.choices[0].message.content == "思考后的答案"

    g = fake().reply("直接回答")
    result = await create(mode, g, model=THINKING_BY_DEFAULT, extra_body={"enable_thinking": False})
    assert "x-dashscope-sse" not in g.requests[0].headers
    assert "incremental_output" not in g.last_json["parameters"]
    assert g.last_json["parameters"]["enable_thinking"] is False
    assert result.choices[0].message.content == "直接回答"


@MODES
async def test_reasoning_effort_none_keeps_a_thinking_by_default_model_unstreamed(mode: str):
    f = fake().reply("直接回答")
    result = await create(mode, f, model=THINKING_BY_DEFAULT, reasoning_effort="none")
    assert "x-dashscope-sse" not in f.requests[0].headers
    assert f.last_json["parameters"]["enable_thinking"] is False
    assert result.choices[0].message.content == "直接回答"


@MODES
async def test_a_mid_stream_error_in_an_aggregated_stream_raises(mode: str):
    f = fake().error_mid_stream(1, "content_filter", content="一二三四五六")
    with pytest.raises(BadRequestError) as info:
        await create(mode, f, model="qwq-plus")
    assert info.value.code == "content_filter"
    assert len(f.requests) == 1


@MODES
async def test_a_plain_model_is_not_streamed(mode: str):
    f = fake()
    await create(mode, f, model=MODEL)
    assert "x-dashscope-sse" not in f.requests[0].headers


@MODES
async def test_tool_calls_in_an_aggregated_stream_come_back_whole(mode: str):
    arguments = {"location": "杭州市", "unit": "celsius"}
    spec = ToolCallSpec("get_current_weather", arguments, id="call_q1")
    f = fake().then(Reply(tool_calls=[spec], chunk_size=4))
    result = await create(mode, f, model="qwq-plus", tools=[WEATHER])
    assert f.requests[0].headers["X-DashScope-SSE"] == "enable"
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert len(choice.message.tool_calls) == 1
    tool_call = choice.message.tool_calls[0]
    assert tool_call.id == "call_q1"
    assert tool_call.type == "function"
    assert tool_call.function.name == "get_current_weather"
    assert json.loads(tool_call.function.arguments) == arguments


@MODES
async def test_an_error_in_an_aggregated_stream_raises(mode: str):
    f = fake().fail("arrears")
    with pytest.raises(RateLimitError) as info:
        await create(mode, f, model="qwq-plus")
    assert info.value.code == "insufficient_quota"
    assert len(f.requests) == 1


# =========================================================================== 6. errors


@MODES
@pytest.mark.parametrize("code", PLAIN_CODES)
async def test_every_plain_error_code_maps_to_its_exception(mode: str, code: str):
    rule = ERROR_TABLE[code]
    status = status_for(code)
    attempts = 3 if rule.get("retryable") else 1
    f = fake()
    for _ in range(attempts):
        f.raw(status, error_body(code, f"错误 {code}"), JSON_HEADERS)
    f.reply("never reached")
    expected = getattr(llm_bridge, rule["exception"])
    with pytest.raises(expected) as info:
        await create(mode, f)
    error = info.value
    assert type(error) is expected
    assert error.provider == "dashscope"
    assert error.provider_code == code
    assert error.code == rule.get("code", code)
    assert error.provider_response.status_code == status
    assert error.status_code == status_of(expected, status)  # the class's, as openai's
    assert error.request_id == "r-1"
    assert code in str(error)
    assert len(f.requests) == attempts  # the table's retryable flag decides, not the status


@MODES
@pytest.mark.parametrize("row", PREFIX_ROWS)
async def test_every_prefix_row_matches_codes_under_it(mode: str, row: str):
    rule = ERROR_TABLE[row]
    code = row[:-1] + "Whatever"
    status = CLASS_STATUS[rule["exception"]]
    attempts = 3 if rule.get("retryable") else 1
    f = fake()
    for _ in range(attempts):
        f.raw(status, error_body(code), JSON_HEADERS)
    f.reply("never reached")
    expected = getattr(llm_bridge, rule["exception"])
    with pytest.raises(expected) as info:
        await create(mode, f)
    assert type(info.value) is expected
    assert info.value.provider_code == code
    assert info.value.code == rule.get("code", code)
    assert len(f.requests) == attempts


@MODES
@pytest.mark.parametrize("row", MESSAGE_ROWS)
async def test_every_message_row_matches_by_text(mode: str, row: str):
    code, _, text = row.partition(":")
    rule = ERROR_TABLE[row]
    status = CLASS_STATUS[rule["exception"]]
    attempts = 3 if rule.get("retryable") else 1
    f = fake()
    for _ in range(attempts):
        f.raw(status, error_body(code, f"<400> {text} (detail)"), JSON_HEADERS)
    f.reply("never reached")
    with pytest.raises(getattr(llm_bridge, rule["exception"])) as info:
        await create(mode, f)
    assert info.value.provider_code == code
    assert info.value.code == rule["code"]
    assert len(f.requests) == attempts


@MODES
@pytest.mark.parametrize("code", ["Throttling.RateQuota", "Throttling.Whatever"])
async def test_throttling_codes_are_retried(mode: str, code: str, no_retry_sleep: list[float]):
    f = fake()
    for _ in range(3):
        f.raw(429, error_body(code, "Requests rate limit exceeded."), JSON_HEADERS)
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.provider_code == code
    assert len(f.requests) == 3
    assert len(no_retry_sleep) == 2


@MODES
async def test_throttling_then_success_returns_the_completion(mode: str):
    f = fake().fail("rate_limit").reply("终于")
    result = await create(mode, f)
    assert result.choices[0].message.content == "终于"
    assert len(f.requests) == 2


@MODES
async def test_arrearage_is_insufficient_quota_and_not_retried(
    mode: str, no_retry_sleep: list[float]
):
    f = fake().fail("arrears").reply("never reached")
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.code == "insufficient_quota"
    assert info.value.provider_code == "Arrearage"
    assert info.value.provider_response.status_code == 400  # DashScope's; openai's class: 429
    assert info.value.status_code == 429
    assert len(f.requests) == 1
    assert no_retry_sleep == []


@MODES
async def test_free_allocation_exhausted_is_insufficient_quota_and_not_retried(mode: str):
    body = error_body("Throttling.AllocationQuota", "Free allocated quota exceeded.")
    f = fake().raw(429, body, JSON_HEADERS).reply("never reached")
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.code == "insufficient_quota"
    assert info.value.provider_code == "Throttling.AllocationQuota"
    assert len(f.requests) == 1


@MODES
async def test_allocated_quota_throttling_is_a_retried_rate_limit(mode: str):
    body = error_body(
        "Throttling.AllocationQuota", "Allocated quota exceeded, please increase your quota limit."
    )
    f = fake()
    for _ in range(3):
        f.raw(429, body, JSON_HEADERS)
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.code == "rate_limit_exceeded"
    assert len(f.requests) == 3


@MODES
async def test_input_too_long_is_context_length_exceeded(mode: str):
    f = fake().fail("context_length")
    with pytest.raises(BadRequestError) as info:
        await create(mode, f)
    assert info.value.code == "context_length_exceeded"
    assert info.value.provider_code == "InvalidParameter"
    assert "Range of input length should be [1, 129024]" in str(info.value)
    assert len(f.requests) == 1


@MODES
async def test_data_inspection_failed_is_content_filter(mode: str):
    f = fake().fail("content_filter")
    with pytest.raises(BadRequestError) as info:
        await create(mode, f)
    assert info.value.code == "content_filter"
    assert info.value.provider_code == "DataInspectionFailed"
    assert info.value.request_id
    assert len(f.requests) == 1


@MODES
@pytest.mark.parametrize(("status", "body", "exception", "code", "attempts"), D5_BODIES)
async def test_d5_byte_exact_errors(
    mode: str, status: int, body: str, exception: str, code: str, attempts: int
):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(TEXT_URL).mock(
            return_value=httpx.Response(status, content=body.encode(), headers=JSON_HEADERS)
        )
        with pytest.raises(getattr(llm_bridge, exception)) as info:
            await call(mode, plain_client(mode))
    error = info.value
    assert error.code == code
    assert error.status_code == status
    assert error.provider_code == json.loads(body)["code"]
    assert error.request_id == json.loads(body)["request_id"]
    assert route.call_count == attempts


@MODES
@pytest.mark.parametrize(
    "content_type", ["application/json", "text/event-stream;charset=UTF-8"], ids=["json", "sse"]
)
async def test_d6_sse_framed_400_on_a_stream_request_raises_at_create(mode: str, content_type: str):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(TEXT_URL).mock(
            return_value=httpx.Response(
                400, content=D6_REJECTED, headers={"Content-Type": content_type}
            )
        )
        with pytest.raises(RateLimitError) as info:
            await call(mode, plain_client(mode), stream=True)
    error = info.value
    assert error.code == "insufficient_quota"
    assert error.provider_code == "Arrearage"
    assert error.request_id == "req-1"
    assert (error.status_code, error.provider_response.status_code) == (429, 400)
    assert route.call_count == 1


@MODES
async def test_the_fakes_sse_framed_errors_on_stream_requests(mode: str):
    f = fake().fail("content_filter")
    with pytest.raises(BadRequestError) as info:
        await create(mode, f, stream=True)
    assert info.value.code == "content_filter"
    g = fake().fail("rate_limit").fail("rate_limit").fail("rate_limit")
    with pytest.raises(RateLimitError):
        await create(mode, g, stream=True)
    assert len(g.requests) == 3


@MODES
async def test_http_200_with_a_code_is_an_error(mode: str):
    body = error_body("InvalidParameter", "Required parameter(s) missing or invalid", "r-200")
    f = fake().raw(200, body, JSON_HEADERS)
    with pytest.raises(BadRequestError) as info:
        await create(mode, f)
    assert info.value.provider_code == "InvalidParameter"
    assert info.value.request_id == "r-200"
    assert len(f.requests) == 1


@MODES
async def test_an_empty_code_in_a_200_body_is_not_an_error(mode: str):
    body = json.loads(D1)
    body.update({"code": "", "message": ""})
    f = fake().raw(200, json.dumps(body, ensure_ascii=False), JSON_HEADERS)
    result = await create(mode, f)
    assert result.choices[0].message.content == D1_TEXT


@MODES
async def test_a_json_error_body_on_a_200_stream_request_raises_at_create(mode: str):
    f = fake().raw(200, error_body("Arrearage", "Access denied.", "r-s"), JSON_HEADERS)
    with pytest.raises(RateLimitError) as info:
        await create(mode, f, stream=True)
    assert info.value.code == "insufficient_quota"
    assert info.value.request_id == "r-s"
    assert len(f.requests) == 1


@MODES
async def test_http_200_with_a_retryable_code_is_retried(mode: str):
    f = fake().raw(200, error_body("InternalError", "boom"), JSON_HEADERS).reply("好了")
    result = await create(mode, f)
    assert result.choices[0].message.content == "好了"
    assert len(f.requests) == 2


@MODES
async def test_a_bad_key_is_authentication_error(mode: str):
    f = FakeDashScope("sk-other")
    with pytest.raises(llm_bridge.AuthenticationError) as info:
        await create(mode, f)
    assert info.value.code == "invalid_api_key"
    assert len(f.requests) == 1


@MODES
async def test_commodity_not_purchased_on_429_is_not_retried(mode: str):
    f = fake()
    f.raw(429, error_body("CommodityNotPurchased"), JSON_HEADERS).reply("never")
    with pytest.raises(PermissionDeniedError):
        await create(mode, f)
    assert len(f.requests) == 1


LOGPROB = {"token": "你", "bytes": [228, 189, 160], "logprob": -0.1, "top_logprobs": []}


def native_event(content: str, finish: str) -> str:
    choice = {
        "message": {"role": "assistant", "content": content},
        "finish_reason": finish,
        "logprobs": {"content": [{**LOGPROB, "token": content}]},
    }
    body = {"output": {"choices": [choice]}, "request_id": "r-1"}
    return f"data: {json.dumps(body)}\n\n"


def test_the_log_probabilities_dashscope_answers_reach_the_caller() -> None:
    # (asked for with logprobs=True, they were dropped: the answer read as if none came)
    choice = {
        "message": {"role": "assistant", "content": "你好"},
        "finish_reason": "stop",
        "logprobs": {"content": [LOGPROB]},
    }
    body = {
        "output": {"choices": [choice]},
        "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        "request_id": "r-1",
    }
    answer = client(fake().raw(200, json.dumps(body), {"content-type": "application/json"}))
    got = answer.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True)
    content = got.choices[0].logprobs.content
    assert [(p.token, p.logprob) for p in content] == [("你", -0.1)]
    sse = native_event("你", "null") + native_event("好", "stop")
    streamed = client(fake().raw(200, sse, {"content-type": "text/event-stream"}))
    chunks = list(
        streamed.chat.completions.create(model=MODEL, messages=HELLO, logprobs=True, stream=True)
    )
    tokens = [
        p.token
        for c in chunks
        if c.choices and c.choices[0].logprobs
        for p in c.choices[0].logprobs.content
    ]
    assert tokens == ["你", "好"]


def test_a_stream_read_whole_keeps_its_log_probabilities() -> None:
    # (a model that only streams, called without stream=True: its chunks aggregated)
    from llm_bridge._shapes.chat.chat_completion_chunk import ChatCompletionChunk
    from llm_bridge._streaming import aggregate

    def chunk(token: str, finish: Any) -> ChatCompletionChunk:
        return ChatCompletionChunk.model_validate(
            {
                "id": "c1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": token},
                        "finish_reason": finish,
                        "logprobs": {"content": [{**LOGPROB, "token": token}]},
                    }
                ],
            }
        )

    whole = aggregate([chunk("你", None), chunk("好", "stop")], None)
    assert whole.choices[0].message.content == "你好"
    assert [p.token for p in whole.choices[0].logprobs.content] == ["你", "好"]
