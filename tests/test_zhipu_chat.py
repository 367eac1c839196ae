"""Zhipu GLM v4 non-stream chat through the drop-in facade, sync and async.

Request mapping (asserted on the JSON the fake received), response mapping, the whole error
code table of ``providers/zhipu.toml``, retries, JWT auth, raw responses and client options.
Wire facts: docs/providers/zhipu.md; the Z1–Z6 bodies are GLM's own, used byte for byte
through respx.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Callable

import httpx
import pytest
import respx
from helpers import (
    CLASS_STATUS,
    HELLO,
    MODES,
    ProviderChat,
    no_unsupported_warnings,
    provider_table,
)

import llm_bridge
from llm_bridge import (
    APIConnectionError,
    APITimeoutError,
    AsyncOpenAI,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    LegacyAPIResponse,
    OpenAI,
    OpenAIError,
    RateLimitError,
    UnsupportedParameterWarning,
    _auth,
)
from llm_bridge._errors import status_of
from llm_bridge.testing import FakeZhipu
from llm_bridge.types.chat import ChatCompletion

NOW = 1721614853.0
KEY_ID = "2f8cd1"
SECRET = "Xy7QsEcReTpart"
KEY = f"{KEY_ID}.{SECRET}"
BASE = "https://open.bigmodel.cn/api/paas/v4"
CHAT = f"{BASE}/chat/completions"
JSON_HEADERS = {"Content-Type": "application/json"}
JWT_CONFIG = {"providers": {"zhipu": {"auth": "jwt"}}}
TASK = "20240722102053e7277a4f94e848248ff9588ed37fb6e6"
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "description": "天气", "parameters": WEATHER_PARAMS},
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "description": "time", "parameters": {"type": "object"}},
}

# Bodies exactly as GLM's API sends them.
Z1 = (
    '{"choices":[{"finish_reason":"stop","index":0,"message":{"content":"你好👋！我是人工智能'
    '助手智谱清言，可以叫我小智🤖，很高兴见到你，欢迎问我任何问题。","role":"assistant"}}],'
    '"created":1721614853,"id":"20240722102053e7277a4f94e848248ff9588ed37fb6e6",'
    '"model":"glm-4-flash","request_id":"20240722102053e7277a4f94e848248ff9588ed37fb6e6",'
    '"usage":{"completion_tokens":31,"prompt_tokens":6,"total_tokens":37}}'
).encode()
Z1_TEXT = "你好👋！我是人工智能助手智谱清言，可以叫我小智🤖，很高兴见到你，欢迎问我任何问题。"
Z3 = (
    '{"choices":[{"finish_reason":"tool_calls","index":0,"message":{"content":null,'
    '"role":"assistant","tool_calls":[{"function":{"arguments":"{\\"city\\":\\"北京\\"}",'
    '"name":"get_weather"},"id":"call_8703658188965586201","index":0,"type":"function"}]}}],'
    '"created":1709617435,"id":"8703658188965586199","model":"glm-4-plus",'
    '"request_id":"8703658188965586199",'
    '"usage":{"completion_tokens":12,"prompt_tokens":160,"total_tokens":172}}'
).encode()
Z4 = (
    '{"error":{"code":"1002","message":"Authorization Token非法，'
    '请确认Authorization Token正确传递。"}}'
).encode()
Z4_EXPIRED = '{"error":{"code":"1003","message":"Authentication Token 已过期，请重新生成/获取"}}'
Z5_RATE = '{"error":{"code":"1302","message":"您的账户已达到速率限制，请您控制请求频率"}}'.encode()
Z5_ARREARS = '{"error":{"code":"1113","message":"您的账户已欠费，请充值后重试"}}'.encode()
Z6 = (
    '{"error":{"code":"1301","message":"系统检测到输入或生成内容可能包含不安全或敏感内容，'
    '请您避免输入易产生敏感内容的提示语，感谢您的配合。"}}'
).encode()

PROVIDER_TABLE = provider_table("zhipu")
ERROR_TABLE: dict[str, dict[str, Any]] = PROVIDER_TABLE["errors"]
# HTTP status per business code, as Zhipu's error-code table documents it (codes without
# one get the usual status of their exception class, CLASS_STATUS).
DOC_STATUS = {
    "500": 500,
    **dict.fromkeys(("1000", "1001", "1002", "1003", "1004", "1005"), 401),
    "1113": 429,
    "1200": 500,
    **dict.fromkeys(("1210", "1211", "1212", "1213", "1214", "1215", "1221", "1222"), 400),
    "1220": 403,
    "1230": 500,
    "1234": 500,
    "1261": 400,
    "1301": 400,
    **dict.fromkeys(("1302", "1303", "1304", "1305", "1308", "1309", "1310", "1311"), 429),
    "1313": 429,
}
REASONING_MODEL = next(
    name
    for name, info in PROVIDER_TABLE["models"].items()
    if "reasoning" in info.get("capabilities", []) and name.startswith("glm-4.5")
)
PLAIN_MODEL = "glm-4-flash"
assert "reasoning" not in PROVIDER_TABLE["models"][PLAIN_MODEL]["capabilities"]

# --------------------------------------------------------------------------- helpers


def fake(**kwargs: Any) -> FakeZhipu:
    return FakeZhipu(clock=lambda: NOW, **kwargs)


ZHIPU = ProviderChat("zhipu", PLAIN_MODEL, fake, {"api_key": KEY})
client, aclient = ZHIPU.client, ZHIPU.aclient
create, call, sent = ZHIPU.create, ZHIPU.call, ZHIPU.sent


def error_body(code: Any, message: str = "出错了") -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def check_jwt(authorization: str) -> dict[str, Any]:
    """Verify a Zhipu JWT independently of the library; return its payload."""
    token = authorization.replace("Bearer ", "", 1)
    parts = token.split(".")
    assert len(parts) == 3, authorization
    header = json.loads(b64url_decode(parts[0]))
    payload = json.loads(b64url_decode(parts[1]))
    expected = hmac.new(
        SECRET.encode(), f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256
    ).digest()
    assert hmac.compare_digest(b64url_decode(parts[2]), expected), "bad HS256 signature"
    assert header["alg"] == "HS256"
    assert header["sign_type"] == "SIGN"
    assert payload["api_key"] == KEY_ID
    assert SECRET not in token
    now_ms = time.time() * 1000
    assert isinstance(payload["timestamp"], int) and isinstance(payload["exp"], int)
    assert abs(payload["timestamp"] - now_ms) < 60_000  # milliseconds, not seconds
    assert payload["exp"] - payload["timestamp"] == 210_000
    return payload


@pytest.fixture
def fresh_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty process-wide JWT cache for this test."""
    monkeypatch.setattr(_auth, "_ZHIPU_TOKENS", _auth._TokenCache())


class CountingTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A transport whose every request raises ``error``; counts the attempts."""

    def __init__(self, error: Callable[[httpx.Request], Exception]) -> None:
        self.error = error
        self.calls = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.error(request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        raise self.error(request)


# =========================================================================== 1. request mapping


@MODES
async def test_plain_request_goes_to_the_chat_endpoint_with_the_bearer_key(mode: str):
    f = fake()
    result = await create(mode, f)
    request = f.requests[0]
    assert len(f.requests) == 1
    assert request.method == "POST"
    assert str(request.url) == CHAT
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert f.last_json == {"model": PLAIN_MODEL, "messages": HELLO}
    assert result.choices[0].message.content == f"(offline fake {PLAIN_MODEL}) You said: 你好"


@MODES
@pytest.mark.parametrize("temperature", [0, 0.0])
async def test_temperature_zero_is_do_sample_false_without_temperature(
    mode: str, temperature: float
):
    body = await sent(mode, temperature=temperature)
    assert body["do_sample"] is False
    assert "temperature" not in body


@MODES
@pytest.mark.parametrize(("given", "expected"), [(1.5, 0.99), (2, 0.99), (1.0, 0.99), (0.5, 0.5)])
async def test_temperature_is_clamped_into_glm_range(mode: str, given: float, expected: float):
    body = await sent(mode, temperature=given)
    assert body["temperature"] == expected
    assert "do_sample" not in body


@MODES
@pytest.mark.parametrize(("given", "expected"), [(1.0, 0.99), (0, 0.01), (0.0, 0.01), (0.7, 0.7)])
async def test_top_p_is_clamped_into_glm_range(mode: str, given: float, expected: float):
    body = await sent(mode, top_p=given)
    assert body["top_p"] == expected


@MODES
async def test_max_completion_tokens_is_sent_as_max_tokens(mode: str):
    body = await sent(mode, max_completion_tokens=100)
    assert body["max_tokens"] == 100
    assert "max_completion_tokens" not in body
    assert (await sent(mode, max_tokens=50))["max_tokens"] == 50


@MODES
async def test_stop_list_sends_only_the_first_and_applies_the_rest_client_side(mode: str):
    f = fake().reply("Alpha beta END gamma STOP delta", finish_reason="length")
    result = await create(mode, f, stop=["###", "END", "STOP"])
    assert f.last_json["stop"] == ["###"]
    choice = result.choices[0]
    assert choice.message.content == "Alpha beta "
    assert choice.finish_reason == "stop"


@MODES
async def test_stop_words_not_in_the_reply_leave_it_alone(mode: str):
    f = fake().reply("Alpha beta", finish_reason="length")
    result = await create(mode, f, stop=["###", "END"])
    assert result.choices[0].message.content == "Alpha beta"
    assert result.choices[0].finish_reason == "length"


@MODES
async def test_stop_string_is_sent_as_a_one_item_list(mode: str):
    body = await sent(mode, stop="Human:")
    assert body["stop"] == ["Human:"]


@MODES
async def test_tool_choice_none_sends_no_tools(mode: str):
    with no_unsupported_warnings():
        body = await sent(mode, tools=[WEATHER], tool_choice="none")
    assert "tools" not in body
    assert "tool_choice" not in body


@MODES
async def test_tool_choice_auto_and_absent_send_every_tool_with_auto(mode: str):
    with no_unsupported_warnings():
        for choice in ("auto", None):
            body = await sent(mode, tools=[WEATHER, TIME], tool_choice=choice)
            assert body["tool_choice"] == "auto"
            assert [t["function"]["name"] for t in body["tools"]] == ["get_weather", "get_time"]
            assert body["tools"][0] == WEATHER


@MODES
async def test_tool_choice_required_is_sent_as_auto_with_a_warning(mode: str):
    with pytest.warns(UnsupportedParameterWarning, match="tool_choice"):
        body = await sent(mode, tools=[WEATHER, TIME], tool_choice="required")
    assert body["tool_choice"] == "auto"
    assert len(body["tools"]) == 2


@MODES
async def test_named_tool_choice_offers_only_that_tool(mode: str):
    named = {"type": "function", "function": {"name": "get_time"}}
    with no_unsupported_warnings():
        body = await sent(mode, tools=[WEATHER, TIME], tool_choice=named)
    assert body["tool_choice"] == "auto"
    assert body["tools"] == [TIME]


@MODES
async def test_named_tool_choice_for_an_unknown_function_fails_before_sending(mode: str):
    f = fake()
    named = {"type": "function", "function": {"name": "nope"}}
    with pytest.raises(BadRequestError, match="nope") as info:
        await create(mode, f, tools=[WEATHER], tool_choice=named)
    assert info.value.param == "tool_choice"
    assert info.value.provider == "zhipu"
    assert f.requests == []


@MODES
async def test_tools_without_description_or_parameters_get_glm_defaults(mode: str):
    body = await sent(mode, tools=[{"type": "function", "function": {"name": "ping"}}])
    function = body["tools"][0]["function"]
    assert body["tools"][0]["type"] == "function"
    assert function["name"] == "ping"
    assert function["description"] == ""
    assert function["parameters"] == {"type": "object", "properties": {}}


@MODES
@pytest.mark.parametrize("name", ["get weather", "查天气", "a" * 65, "get.weather"])
async def test_tool_names_glm_rejects_fail_before_sending(mode: str, name: str):
    f = fake()
    tool = {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    with pytest.raises(BadRequestError) as info:
        await create(mode, f, tools=[tool])
    assert "name" in (info.value.param or "")
    assert name in str(info.value)
    assert f.requests == []


@MODES
async def test_short_user_is_sent_as_its_sha256(mode: str):
    body = await sent(mode, user="ab")
    assert body["user_id"] == hashlib.sha256(b"ab").hexdigest()
    assert "user" not in body


@MODES
async def test_long_user_is_sent_as_its_sha256(mode: str):
    user = "u" * 129
    body = await sent(mode, user=user)
    assert body["user_id"] == hashlib.sha256(user.encode()).hexdigest()


@MODES
@pytest.mark.parametrize("user", ["user-123", "abcdef", "u" * 128])
async def test_user_within_length_rule_passes_as_user_id(mode: str, user: str):
    body = await sent(mode, user=user)
    assert body["user_id"] == user
    assert "user" not in body


@MODES
async def test_unsupported_parameter_warns_once_per_process_and_is_not_sent(mode: str):
    f = fake()
    with pytest.warns(UnsupportedParameterWarning, match="logit_bias") as record:
        await create(mode, f, logit_bias={"1": 5})
    assert len([w for w in record if w.category is UnsupportedParameterWarning]) == 1
    assert "logit_bias" not in f.last_json
    with no_unsupported_warnings():
        await create(mode, f, logit_bias={"1": 5})
    assert "logit_bias" not in f.last_json
    assert len(f.requests) == 2


@MODES
async def test_n_above_one_is_served_by_n_requests_merged_into_n_choices(mode: str):
    f = fake().reply("first", usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7})
    f.reply("second", usage={"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    f.reply("third", usage={"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9})
    with no_unsupported_warnings():
        result = await create(mode, f, n=3)
    assert len(f.requests) == 3
    assert all("n" not in json.loads(r.content) for r in f.requests)
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert sorted(c.message.content for c in result.choices) == ["first", "second", "third"]
    # Each request was billed for its prompt: the prompt counts three times.
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (15, 9)
    assert result.usage.total_tokens == 24


@MODES
async def test_n_above_one_in_a_stream_warns_and_streams_one_choice(mode: str):
    f = fake()
    with pytest.warns(UnsupportedParameterWarning, match=r"\bn\b"):
        stream = await create(mode, f, n=2, stream=True)
        chunks = [c async for c in stream] if mode == "async" else list(stream)
    assert len(f.requests) == 1
    assert "n" not in f.last_json
    assert {c.choices[0].index for c in chunks if c.choices} == {0}


@MODES
async def test_n_one_is_silent(mode: str):
    with no_unsupported_warnings():
        body = await sent(mode, n=1)
    assert "n" not in body


@MODES
async def test_presence_penalty_under_policy_drop_is_silent_and_not_sent(mode: str):
    f = fake()
    options = {"config": {"policy": {"unsupported_params": "drop"}}}
    with no_unsupported_warnings():
        await create(mode, f, options=options, presence_penalty=0.5, logit_bias={"1": 1})
    assert "presence_penalty" not in f.last_json
    assert "logit_bias" not in f.last_json


@MODES
async def test_presence_penalty_under_policy_warn_warns_and_is_not_sent(mode: str):
    f = fake()
    with pytest.warns(UnsupportedParameterWarning, match="presence_penalty"):
        await create(mode, f, presence_penalty=0.5)
    assert "presence_penalty" not in f.last_json


@MODES
async def test_presence_penalty_under_policy_error_fails_before_sending(mode: str):
    f = fake()
    options = {"config": {"policy": {"unsupported_params": "error"}}}
    with pytest.raises(BadRequestError, match="presence_penalty") as info:
        await create(mode, f, options=options, presence_penalty=0.5)
    assert info.value.param == "presence_penalty"
    assert info.value.provider == "zhipu"
    assert info.value.status_code == 400
    assert f.requests == []


@MODES
async def test_data_url_image_is_sent_as_bare_base64(mode: str):
    data = "iVBORw0KGgoAAAANSUhEUgAAAAE="
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "这是什么"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{data}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        }
    ]
    body = await sent(mode, model="glm-4v-flash", messages=messages)
    parts = body["messages"][0]["content"]
    assert parts[0] == {"type": "text", "text": "这是什么"}
    assert parts[1] == {"type": "image_url", "image_url": {"url": data}}
    assert parts[2] == {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}


@MODES
async def test_developer_role_is_sent_as_system(mode: str):
    messages = [{"role": "developer", "content": "be brief"}, *HELLO]
    body = await sent(mode, messages=messages)
    assert body["messages"] == [{"role": "system", "content": "be brief"}, *HELLO]


@MODES
async def test_response_format_json_schema_is_emulated_on_json_object_without_a_warning(mode: str):
    # GLM has json_object only: the engine sends that with the schema in a system
    # instruction and checks the answer; the adapter must not warn about or drop it.
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    f = fake().reply('{"a": 1}')
    with no_unsupported_warnings():
        result = await create(mode, f, response_format=fmt)
    body = f.last_json
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0]["role"] == "system"
    assert '"required": ["a"]' in body["messages"][0]["content"]
    assert body["messages"][-1] == HELLO[-1]
    assert json.loads(result.choices[0].message.content) == {"a": 1}


@MODES
async def test_response_format_json_object_passes_silently(mode: str):
    with no_unsupported_warnings():
        body = await sent(mode, response_format={"type": "json_object"})
    assert body["response_format"] == {"type": "json_object"}


@MODES
@pytest.mark.parametrize(("effort", "thinking"), [("none", "disabled"), ("high", "enabled")])
async def test_reasoning_effort_on_a_thinking_model_sets_thinking(
    mode: str, effort: str, thinking: str
):
    with no_unsupported_warnings():
        body = await sent(mode, model=REASONING_MODEL, reasoning_effort=effort)
    assert body["thinking"] == {"type": thinking}
    assert "reasoning_effort" not in body


@MODES
async def test_reasoning_effort_on_a_plain_model_warns_and_is_dropped(mode: str):
    with pytest.warns(UnsupportedParameterWarning, match="reasoning_effort"):
        body = await sent(mode, model=PLAIN_MODEL, reasoning_effort="none")
    assert "thinking" not in body
    assert "reasoning_effort" not in body


@MODES
async def test_legacy_functions_and_function_call_become_tools(mode: str):
    body = await sent(
        mode,
        functions=[WEATHER["function"], TIME["function"]],
        function_call={"name": "get_weather"},
    )
    assert "functions" not in body
    assert "function_call" not in body
    assert body["tools"] == [WEATHER]
    assert body["tool_choice"] == "auto"


@MODES
async def test_extra_body_is_merged_into_the_body(mode: str):
    f = fake()
    result = await create(mode, f, extra_body={"do_sample": False, "request_id": "r-1"})
    assert f.last_json["do_sample"] is False
    assert f.last_json["request_id"] == "r-1"
    assert f.last_json["model"] == PLAIN_MODEL
    assert result.request_id == "r-1"  # GLM echoes the client's request id


@MODES
async def test_headers_and_query_from_client_and_call_reach_the_wire(mode: str):
    f = fake()
    options = {"default_headers": {"X-Default": "d"}, "default_query": {"dq": "1"}}
    await create(mode, f, options=options, extra_headers={"X-Extra": "e"}, extra_query={"eq": "2"})
    request = f.requests[0]
    assert request.headers["X-Default"] == "d"
    assert request.headers["X-Extra"] == "e"
    assert request.url.params["dq"] == "1"
    assert request.url.params["eq"] == "2"
    assert request.url.path == "/api/paas/v4/chat/completions"
    assert request.headers["Authorization"] == f"Bearer {KEY}"


@MODES
@pytest.mark.parametrize(
    ("params", "error", "names"),
    [
        # What OpenAI's server answers with 400 is a 400 here, before anything is sent.
        ({"messages": []}, BadRequestError, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, BadRequestError, "role"),
        ({"messages": "你好"}, BadRequestError, "messages"),
        ({"messages": {"role": "user", "content": "x"}}, BadRequestError, "messages"),
        ({"temperature": "hot"}, BadRequestError, "temperature"),
        ({"temperature": 3}, BadRequestError, "temperature"),
        # What openai's client refuses itself stays its TypeError.
        ({"temprature": 0.5}, TypeError, "temprature"),
        (
            {
                "tools": [
                    {"type": "function", "function": {"name": "f", "parameters": {"x": object()}}}
                ]
            },
            TypeError,
            "object",
        ),
    ],
    ids=[
        "empty-messages",
        "unknown-role",
        "messages-str",
        "messages-dict",
        "temperature-str",
        "temperature-3",
        "typo-kwarg",
        "tool-params-not-json",
    ],
)
async def test_bad_input_raises_naming_the_field_before_sending(
    mode: str, params: dict[str, Any], error: type[Exception], names: str
):
    f = fake()
    with pytest.raises(error) as info:
        await create(mode, f, **params)
    assert type(info.value) is error or issubclass(type(info.value), error)
    assert names in str(info.value)
    if error is BadRequestError:
        assert info.value.param is not None and names.split("[")[0] in info.value.param
    assert f.requests == []


# =========================================================================== 2. response mapping


@respx.mock(assert_all_called=True)
def test_z1_byte_exact_body_becomes_a_chat_completion(respx_mock: respx.MockRouter):
    route = respx_mock.post(CHAT).mock(
        return_value=httpx.Response(200, content=Z1, headers=JSON_HEADERS)
    )
    result = OpenAI(provider="zhipu", api_key=KEY).chat.completions.create(
        model="glm-4-flash", messages=HELLO, temperature=0.95, top_p=0.7
    )
    assert isinstance(result, ChatCompletion)
    assert result.object == "chat.completion"
    assert result.id == TASK
    assert result.request_id == TASK
    assert result.provider == "zhipu"
    assert result.model == "glm-4-flash"
    assert result.created == 1721614853
    assert result.choices[0].message.content == Z1_TEXT
    assert result.choices[0].message.role == "assistant"
    assert result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (6, 31)
    assert result.usage.total_tokens == 37
    dumped = result.model_dump()
    assert dumped["request_id"] == TASK
    assert dumped["provider"] == "zhipu"
    request = route.calls.last.request
    assert json.loads(request.content) == {
        "model": "glm-4-flash",
        "messages": HELLO,
        "temperature": 0.95,
        "top_p": 0.7,
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"


async def test_z1_byte_exact_body_async():
    async with respx.mock(assert_all_called=True) as mock:
        mock.post(CHAT).mock(return_value=httpx.Response(200, content=Z1, headers=JSON_HEADERS))
        async with AsyncOpenAI(provider="zhipu", api_key=KEY) as c:
            result = await c.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert result.object == "chat.completion"
    assert result.request_id == TASK
    assert result.provider == "zhipu"
    assert result.choices[0].message.content == Z1_TEXT


@MODES
async def test_model_is_the_upstream_name_not_the_alias(mode: str):
    f = fake()
    options = {"config": {"models": {"my-chat": "zhipu/glm-4-plus"}}}
    result = await create(mode, f, options=options, model="my-chat")
    assert f.last_json["model"] == "glm-4-plus"
    assert result.model == "glm-4-plus"
    assert result.provider == "zhipu"


@MODES
async def test_explicit_provider_prefix_is_stripped_on_the_wire(mode: str):
    f = fake()
    result = await create(mode, f, model="zhipu/glm-4-air")
    assert f.last_json["model"] == "glm-4-air"
    assert result.model == "glm-4-air"


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_z3_byte_exact_tool_call(mode: str):
    with respx.mock(assert_all_called=True) as mock:
        mock.post(CHAT).mock(return_value=httpx.Response(200, content=Z3, headers=JSON_HEADERS))
        if mode == "sync":
            result = OpenAI(provider="zhipu", api_key=KEY).chat.completions.create(
                model="glm-4-plus", messages=HELLO, tools=[WEATHER]
            )
        else:
            result = await AsyncOpenAI(provider="zhipu", api_key=KEY).chat.completions.create(
                model="glm-4-plus", messages=HELLO, tools=[WEATHER]
            )
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    call_ = choice.message.tool_calls[0]
    assert call_.id == "call_8703658188965586201"
    assert call_.type == "function"
    assert call_.function.name == "get_weather"
    assert isinstance(call_.function.arguments, str)
    assert json.loads(call_.function.arguments) == {"city": "北京"}
    assert result.model == "glm-4-plus"
    assert result.request_id == "8703658188965586199"


@MODES
async def test_scripted_tool_call_arguments_are_a_json_string(mode: str):
    f = fake().tool_call("get_weather", {"city": "上海"})
    result = await create(mode, f, tools=[WEATHER])
    call_ = result.choices[0].message.tool_calls[0]
    assert result.choices[0].finish_reason == "tool_calls"
    assert isinstance(call_.function.arguments, str)
    assert json.loads(call_.function.arguments) == {"city": "上海"}
    assert call_.id.startswith("call_")


@MODES
async def test_sensitive_finish_is_content_filter(mode: str):
    f = fake().sensitive(after_chunks=1, content="部分内容被拦截")
    result = await create(mode, f)
    assert result.choices[0].finish_reason == "content_filter"


@MODES
async def test_an_answer_cut_by_the_context_window_is_length(mode: str):
    """GLM-4.5 and later's ``model_context_window_exceeded`` is not a finish reason openai
    knows: code checking ``== "length"`` for a cut answer missed it."""
    f = fake().reply("半", finish_reason="model_context_window_exceeded")
    result = await create(mode, f)
    assert result.choices[0].finish_reason == "length"


@MODES
async def test_network_error_finish_raises_internal_server_error(mode: str):
    f = fake().reply("半", finish_reason="network_error")
    with pytest.raises(InternalServerError) as info:
        await create(mode, f, options={"max_retries": 0})
    assert info.value.provider_code == "network_error"
    assert info.value.provider == "zhipu"
    assert "network_error" in str(info.value)


@MODES
async def test_network_error_finish_never_becomes_a_result(mode: str):
    f = fake()
    for _ in range(3):
        f.reply("半", finish_reason="network_error")
    with pytest.raises(InternalServerError):
        await create(mode, f)
    assert len(f.requests) == 3


@MODES
@pytest.mark.parametrize(
    ("usage", "total"),
    [
        ({"prompt_tokens": 10, "completion_tokens": 2}, 12),  # the total: their sum
        ({"prompt_tokens": 10, "total_tokens": 10}, None),  # a count missing: estimated
        ({"prompt_tokens": 10, "completion_tokens": None}, None),
    ],
)
async def test_a_usage_missing_a_figure_is_completed_not_refused(
    mode: str, usage: dict, total: Any
):
    """openai's type requires all three counts: the whole (billed) answer was refused."""
    body = {
        "id": "1",
        "created": 1,
        "model": "glm-4-flash",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "好"}}
        ],
        "usage": usage,
    }
    result = await create(mode, fake().raw(200, json.dumps(body), JSON_HEADERS))
    assert result.choices[0].message.content == "好"
    assert result.usage is not None
    if total is None:
        assert result.usage.estimated
    else:
        assert result.usage.total_tokens == total and not result.usage.estimated


@MODES
async def test_extra_top_level_fields_are_reachable(mode: str):
    body = {
        "choices": [
            {"finish_reason": "stop", "index": 0, "message": {"content": "ok", "role": "assistant"}}
        ],
        "content_filter": [{"level": 1, "role": "assistant"}],
        "created": 1721614853,
        "id": "task-1",
        "model": "glm-4-flash",
        "request_id": "req-1",
        "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3},
        "web_search": [{"title": "智谱", "link": "https://bigmodel.cn", "refer": "ref_1"}],
    }
    f = fake().raw(200, json.dumps(body, ensure_ascii=False), JSON_HEADERS)
    result = await create(mode, f)
    assert result.content_filter == [{"level": 1, "role": "assistant"}]
    assert result.web_search[0]["title"] == "智谱"
    assert result.request_id == "req-1"
    dumped = result.model_dump()
    assert dumped["web_search"][0]["refer"] == "ref_1"
    assert dumped["content_filter"][0]["level"] == 1


@MODES
async def test_reasoning_content_on_the_message_is_reachable(mode: str):
    f = fake().reply("答案是 42", reasoning_content="先想一想")
    result = await create(mode, f, model=REASONING_MODEL)
    assert result.choices[0].message.reasoning_content == "先想一想"
    assert result.choices[0].message.content == "答案是 42"


# =========================================================================== 3. errors


def _status(code: str) -> int:
    return DOC_STATUS.get(code) or CLASS_STATUS[ERROR_TABLE[code]["exception"]]


@MODES
@pytest.mark.parametrize("code", sorted(ERROR_TABLE, key=int))
async def test_every_error_code_in_the_table_maps_to_its_exception(mode: str, code: str):
    rule = ERROR_TABLE[code]
    status = _status(code)
    attempts = 3 if rule.get("retryable") else 1
    f = fake()
    for _ in range(attempts):
        headers = {**JSON_HEADERS, "x-request-id": f"rid-{code}"}
        f.raw(status, error_body(code, f"错误 {rule.get('meaning', '')}"), headers)
    expected = getattr(llm_bridge, rule["exception"])
    with pytest.raises(expected) as info:
        await create(mode, f)
    error = info.value
    assert type(error) is expected
    assert error.provider == "zhipu"
    assert error.provider_code == code
    if rule.get("code"):
        assert error.code == rule["code"]
    assert error.provider_response.status_code == status
    assert error.status_code == status_of(expected, status)  # the class's, as openai's
    assert error.request_id == f"rid-{code}"
    assert code in str(error)
    assert isinstance(error.body, dict)
    assert len(f.requests) == attempts  # the table's retryable flag decides, not the status


@MODES
async def test_error_request_id_falls_back_to_the_body(mode: str):
    body = json.dumps({"error": {"code": "1214", "message": "bad"}, "request_id": "body-rid"})
    f = fake().raw(400, body, JSON_HEADERS)
    with pytest.raises(BadRequestError) as info:
        await create(mode, f)
    assert info.value.request_id == "body-rid"


@MODES
async def test_integer_error_code_is_tolerated(mode: str):
    f = fake().raw(429, error_body(1113), JSON_HEADERS)
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.provider_code == "1113"
    assert info.value.code == "insufficient_quota"
    assert len(f.requests) == 1


@MODES
async def test_arrears_1113_on_429_is_insufficient_quota_and_not_retried(
    mode: str, no_retry_sleep: list[float]
):
    f = fake().fail("arrears").reply("never reached")
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.code == "insufficient_quota"
    assert info.value.provider_code == "1113"
    assert info.value.status_code == 429
    assert len(f.requests) == 1
    assert no_retry_sleep == []


@MODES
async def test_rate_limit_1302_is_retried_max_retries_times(mode: str, no_retry_sleep: list[float]):
    f = fake()
    for _ in range(4):
        f.fail("rate_limit")
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.code == "rate_limit_exceeded"
    assert info.value.provider_code == "1302"
    assert len(f.requests) == 3
    assert len(no_retry_sleep) == 2
    assert all(0 < wait <= 8 for wait in no_retry_sleep)


@MODES
async def test_max_retries_zero_on_the_client_sends_once(mode: str):
    f = fake().fail("rate_limit").reply("never")
    with pytest.raises(RateLimitError):
        await create(mode, f, options={"max_retries": 0})
    assert len(f.requests) == 1


@MODES
async def test_with_options_max_retries_changes_the_count(mode: str):
    f = fake()
    for _ in range(6):
        f.fail("rate_limit")
    base = client(f) if mode == "sync" else aclient(f)
    copy = base.with_options(max_retries=5)
    assert copy.max_retries == 5
    assert base.max_retries == 2
    with pytest.raises(RateLimitError):
        await call(mode, copy)
    assert len(f.requests) == 6
    for _ in range(3):
        f.fail("rate_limit")
    with pytest.raises(RateLimitError):
        await call(mode, base)  # the original keeps its own setting
    assert len(f.requests) == 6 + 3


@MODES
async def test_unknown_code_on_429_falls_back_to_the_status_and_is_retried(mode: str):
    f = fake()
    for _ in range(3):
        f.raw(429, error_body("9999", "新的限流"), JSON_HEADERS)
    with pytest.raises(RateLimitError) as info:
        await create(mode, f)
    assert info.value.provider_code == "9999"
    assert info.value.status_code == 429
    assert len(f.requests) == 3


@MODES
async def test_html_502_is_internal_server_error_and_retried(mode: str):
    f = fake()
    for _ in range(3):
        f.raw(502, "<html><body>Bad Gateway</body></html>", {"Content-Type": "text/html"})
    with pytest.raises(InternalServerError) as info:
        await create(mode, f)
    assert info.value.status_code == 502
    assert "Bad Gateway" in str(info.value)
    assert len(f.requests) == 3


@MODES
async def test_rate_limit_then_success(mode: str):
    f = fake().fail("rate_limit").reply("好的")
    result = await create(mode, f)
    assert result.choices[0].message.content == "好的"
    assert len(f.requests) == 2


@MODES
async def test_retry_after_header_is_obeyed(mode: str, no_retry_sleep: list[float]):
    f = fake().fail("rate_limit", headers={"retry-after": "3"}).reply("ok")
    await create(mode, f)
    assert no_retry_sleep == [3.0]


@MODES
async def test_retry_after_ms_header_is_obeyed(mode: str, no_retry_sleep: list[float]):
    f = fake().fail("overloaded", headers={"retry-after-ms": "1500"}).reply("ok")
    await create(mode, f)
    assert no_retry_sleep == [1.5]


@MODES
async def test_server_error_storm_then_success(mode: str, no_retry_sleep: list[float]):
    f = fake().fail("server_error").fail("server_error").reply("终于")
    result = await create(mode, f)
    assert result.choices[0].message.content == "终于"
    assert len(f.requests) == 3
    assert len(no_retry_sleep) == 2
    assert all(0 < wait <= 8 for wait in no_retry_sleep)


@MODES
async def test_server_error_storm_exhausts_retries(mode: str):
    f = fake()
    for _ in range(3):
        f.fail("server_error")
    with pytest.raises(InternalServerError) as info:
        await create(mode, f)
    assert info.value.status_code == 500
    assert len(f.requests) == 3


@MODES
async def test_bad_request_1214_is_not_retried(mode: str, no_retry_sleep: list[float]):
    f = fake().fail("bad_request").reply("never")
    with pytest.raises(BadRequestError) as info:
        await create(mode, f)
    assert info.value.provider_code == "1214"
    assert info.value.code == "invalid_request_error"
    assert len(f.requests) == 1
    assert no_retry_sleep == []


@MODES
@pytest.mark.parametrize(
    ("kind", "code", "openai_code"),
    [
        ("context_length", "1261", "context_length_exceeded"),
        ("content_filter", "1301", "content_filter"),
    ],
)
async def test_prompt_too_long_and_content_blocked(
    mode: str, kind: str, code: str, openai_code: str
):
    f = fake().fail(kind)
    with pytest.raises(BadRequestError) as info:
        await create(mode, f)
    assert info.value.code == openai_code
    assert info.value.provider_code == code
    assert len(f.requests) == 1


# --------------------------------------------------------------------------- respx fixtures


@respx.mock(assert_all_called=True)
def test_z4_byte_exact_auth_failure(respx_mock: respx.MockRouter):
    route = respx_mock.post(CHAT).mock(
        return_value=httpx.Response(401, content=Z4, headers=JSON_HEADERS)
    )
    with pytest.raises(AuthenticationError) as info:
        OpenAI(provider="zhipu", api_key=KEY).chat.completions.create(
            model="glm-4-flash", messages=HELLO
        )
    assert info.value.status_code == 401
    assert info.value.provider_code == "1002"
    assert info.value.code == "invalid_api_key"
    assert "Authorization Token非法" in str(info.value)
    assert route.call_count == 1


@respx.mock(assert_all_called=True)
def test_z5_byte_exact_rate_limit_then_z1(
    respx_mock: respx.MockRouter, no_retry_sleep: list[float]
):
    route = respx_mock.post(CHAT).mock(
        side_effect=[
            httpx.Response(429, content=Z5_RATE, headers=JSON_HEADERS),
            httpx.Response(200, content=Z1, headers=JSON_HEADERS),
        ]
    )
    raw = OpenAI(provider="zhipu", api_key=KEY).chat.completions.with_raw_response.create(
        model="glm-4-flash", messages=HELLO
    )
    assert route.call_count == 2
    assert raw.retries_taken == 1
    assert raw.status_code == 200
    assert raw.request_id == TASK
    assert raw.parse().choices[0].message.content == Z1_TEXT
    assert len(no_retry_sleep) == 1


async def test_z5_byte_exact_arrears_async_is_not_retried():
    async with respx.mock(assert_all_called=True) as mock:
        route = mock.post(CHAT).mock(
            return_value=httpx.Response(429, content=Z5_ARREARS, headers=JSON_HEADERS)
        )
        with pytest.raises(RateLimitError) as info:
            await AsyncOpenAI(provider="zhipu", api_key=KEY).chat.completions.create(
                model="glm-4-flash", messages=HELLO
            )
    assert info.value.code == "insufficient_quota"
    assert route.call_count == 1


@respx.mock(assert_all_called=True)
def test_z6_byte_exact_content_filter(respx_mock: respx.MockRouter):
    respx_mock.post(CHAT).mock(return_value=httpx.Response(400, content=Z6, headers=JSON_HEADERS))
    with pytest.raises(BadRequestError) as info:
        OpenAI(provider="zhipu", api_key=KEY).chat.completions.create(
            model="glm-4-flash", messages=HELLO
        )
    assert info.value.code == "content_filter"
    assert info.value.provider_code == "1301"


# --------------------------------------------------------------------------- JWT auth


@MODES
async def test_jwt_mode_sends_a_valid_hs256_token_reused_across_calls(
    mode: str, fresh_tokens: None
):
    f = fake(api_key=KEY)
    c = client(f, config=JWT_CONFIG) if mode == "sync" else aclient(f, config=JWT_CONFIG)
    await call(mode, c)
    await call(mode, c)
    first, second = (r.headers["Authorization"] for r in f.requests)
    assert first != f"Bearer {KEY}"
    check_jwt(first)
    assert first == second
    # the cache is process-wide: another client with the same key reuses the token
    other = client(f, config=JWT_CONFIG) if mode == "sync" else aclient(f, config=JWT_CONFIG)
    await call(mode, other)
    assert f.requests[-1].headers["Authorization"] == first


@MODES
async def test_jwt_token_due_for_renewal_is_replaced(mode: str, fresh_tokens: None):
    _auth._ZHIPU_TOKENS.put(KEY, "stale-token", time.time() - 1)
    f = fake(api_key=KEY)
    await create(mode, f, options={"config": JWT_CONFIG})
    header = f.requests[0].headers["Authorization"]
    assert "stale-token" not in header
    check_jwt(header)


@MODES
async def test_jwt_expired_1003_is_resigned_once_and_succeeds(mode: str, fresh_tokens: None):
    f = fake(api_key=KEY)
    f.fail("auth", status=401, code="1003", message="Authentication Token 已过期，请重新生成/获取")
    f.reply("重新签名成功")

    def handler(request: httpx.Request) -> httpx.Response:
        response = f.handler(request)
        time.sleep(0.005)  # the next token gets a later millisecond timestamp
        return response

    transport = httpx.MockTransport(handler)
    options = {"config": JWT_CONFIG}
    c = client(transport, **options) if mode == "sync" else aclient(transport, **options)
    result = await call(mode, c)
    assert result.choices[0].message.content == "重新签名成功"
    assert len(f.requests) == 2
    first, second = (r.headers["Authorization"] for r in f.requests)
    assert first != second
    assert check_jwt(second)["timestamp"] > check_jwt(first)["timestamp"]


@MODES
async def test_jwt_expired_twice_is_resigned_only_once(mode: str, fresh_tokens: None):
    f = fake(api_key=KEY)
    for _ in range(3):
        f.raw(401, Z4_EXPIRED, JSON_HEADERS)
    with pytest.raises(AuthenticationError) as info:
        await create(mode, f, options={"config": JWT_CONFIG})
    assert info.value.provider_code == "1003"
    assert len(f.requests) == 2


@MODES
async def test_expired_1003_in_plain_key_mode_is_not_retried(mode: str):
    f = fake().raw(401, Z4_EXPIRED, JSON_HEADERS).reply("never")
    with pytest.raises(AuthenticationError):
        await create(mode, f)
    assert len(f.requests) == 1


@MODES
async def test_jwt_mode_with_a_key_without_a_dot_fails_clearly_before_sending(
    mode: str, fresh_tokens: None
):
    f = fake()
    with pytest.raises(OpenAIError, match=r"<id>\.<secret>") as info:
        await create(mode, f, options={"api_key": "nodotkey", "config": JWT_CONFIG})
    assert not isinstance(info.value, (APIConnectionError, AuthenticationError))
    assert f.requests == []


# --------------------------------------------------------------------------- transport failures


@MODES
async def test_connect_error_becomes_api_connection_error_after_retries(
    mode: str, no_retry_sleep: list[float]
):
    transport = CountingTransport(lambda r: httpx.ConnectError("refused", request=r))
    c = client(transport) if mode == "sync" else aclient(transport)
    with pytest.raises(APIConnectionError) as info:
        await call(mode, c)
    assert not isinstance(info.value, APITimeoutError)
    assert info.value.provider == "zhipu"
    assert transport.calls == 3
    assert len(no_retry_sleep) == 2


@MODES
async def test_read_timeout_becomes_api_timeout_error(mode: str):
    transport = CountingTransport(lambda r: httpx.ReadTimeout("slow", request=r))
    c = client(transport) if mode == "sync" else aclient(transport)
    with pytest.raises(APITimeoutError) as info:
        await call(mode, c)
    assert isinstance(info.value, APIConnectionError)
    assert info.value.provider == "zhipu"
    assert transport.calls == 3


# =========================================================================== 4. client surface


@MODES
async def test_with_raw_response(mode: str):
    f = fake().fail("rate_limit").reply("原始")
    c = client(f) if mode == "sync" else aclient(f)
    raw = c.chat.completions.with_raw_response.create(model=PLAIN_MODEL, messages=HELLO)
    if mode == "async":
        raw = await raw
    assert isinstance(raw, LegacyAPIResponse)
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("application/json")
    assert raw.retries_taken == 1
    parsed = raw.parse()
    assert isinstance(parsed, ChatCompletion)
    assert parsed.choices[0].message.content == "原始"
    assert json.loads(raw.content)["choices"][0]["message"]["content"] == "原始"
    assert json.loads(raw.content)["object"] == "chat.completion"  # OpenAI's bytes
    assert raw.headers["x-llm-bridge-provider"] == "zhipu"


@MODES
async def test_with_options_timeout_copy(mode: str):
    f = fake()
    options = {"default_headers": {"X-Keep": "1"}}
    base = client(f, **options) if mode == "sync" else aclient(f, **options)
    copy = base.with_options(timeout=7.0)
    assert copy.timeout == 7.0
    assert copy is not base
    await call(mode, copy)
    assert f.requests[-1].extensions["timeout"]["read"] == 7.0
    assert f.requests[-1].headers["X-Keep"] == "1"
    assert f.requests[-1].headers["Authorization"] == f"Bearer {KEY}"
    await call(mode, base)
    timeout = f.requests[-1].extensions["timeout"]
    assert timeout["read"] == 600.0
    assert timeout["connect"] == 5.0
    await call(mode, base, timeout=3.0)
    assert f.requests[-1].extensions["timeout"]["read"] == 3.0


def test_sync_client_as_context_manager_closes_its_http_client():
    with respx.mock(assert_all_called=True) as mock:
        mock.post(CHAT).mock(return_value=httpx.Response(200, content=Z1, headers=JSON_HEADERS))
        with OpenAI(provider="zhipu", api_key=KEY) as c:
            result = c.chat.completions.create(model="glm-4-flash", messages=HELLO)
            http = c._engine.http
            assert not http.is_closed
    assert result.choices[0].message.content == Z1_TEXT
    assert http.is_closed


async def test_async_client_as_context_manager_closes_its_http_client():
    f = fake().reply("异步")
    async with respx.mock(assert_all_called=True) as mock:
        mock.route(host="open.bigmodel.cn").mock(side_effect=f.handler)
        async with AsyncOpenAI(provider="zhipu", api_key=KEY) as c:
            result = await c.chat.completions.create(model="glm-4-flash", messages=HELLO)
            http = c._engine.http
    assert result.choices[0].message.content == "异步"
    assert http.is_closed


@MODES
async def test_secret_never_in_repr_or_error_text(mode: str, fresh_tokens: None):
    f = fake(api_key=KEY)
    for options in ({}, {"config": JWT_CONFIG}):
        c = client(f, **options) if mode == "sync" else aclient(f, **options)
        for shown in (repr(c), str(c), repr(c.with_options(timeout=1.0))):
            assert SECRET not in shown
            assert KEY not in shown
    wrong = (
        client(f, api_key="other.WrongSecret")
        if mode == "sync"
        else aclient(f, api_key="other.WrongSecret")
    )
    with pytest.raises(AuthenticationError) as info:
        await call(mode, wrong)
    local = fake()
    bad_tool = {"type": "function", "function": {"name": "bad name"}}
    with pytest.raises(BadRequestError) as local_info:
        await create(mode, local, tools=[bad_tool])
    f.raw(401, Z4, JSON_HEADERS)
    with pytest.raises(AuthenticationError) as key_info:
        await create(mode, f)
    for error in (info.value, local_info.value, key_info.value):
        for text in (str(error), repr(error), error.message):
            assert SECRET not in text
            assert "WrongSecret" not in text
