"""Baidu Qianfan v1 ("wenxinworkshop") through the drop-in facade, sync and async.

v1 was shut down on the public cloud on 2026-08-31; these clients opt in with
``api = "v1"`` (a private deployment that still serves it), which keeps it working.

Endpoint mapping, message repair, parameter mapping, responses, every numeric error code of
``providers/qianfan.toml`` inside HTTP 200 bodies, streams and embeddings; asserted on what
FakeQianfan received (it rejects what Baidu rejects) and on what the caller gets back.
Wire facts: docs/providers/qianfan.md; the B1–B7 bodies are Qianfan v1's own, used byte for
byte through respx.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import httpx
import pytest
import respx
from helpers import HELLO, MODES, ProviderChat, consume, embed, float32, provider_table

import llm_bridge
from llm_bridge import (
    APIConnectionError,
    APIError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    RateLimitError,
    UnsupportedParameterWarning,
)
from llm_bridge.adapters.qianfan import CONTINUE_PROMPT
from llm_bridge.testing import FakeQianfan
from llm_bridge.testing._fake import approx_tokens
from llm_bridge.types.chat import ChatCompletion

NOW = 1709089502.0
AK, SK = "Y7uKeHc3ak", "Nh4pW2sk"
HOST = "https://aip.baidubce.com"
V1_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop"
TOKEN_PATH = "/oauth/2.0/token"
MODEL = "ernie-3.5-8k"
JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream"}
WEATHER_PARAMS = {
    "type": "object",
    "properties": {"location": {"type": "string"}},
    "required": ["location"],
}
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_current_weather",
        "description": "获取指定城市的天气",
        "parameters": WEATHER_PARAMS,
    },
}
TIME = {
    "type": "function",
    "function": {"name": "get_time", "description": "现在几点", "parameters": {"type": "object"}},
}

# Bodies exactly as Qianfan v1 sends them.
B1 = (
    b'{"refresh_token":"25.b55fe1d287227ca97aab219bb249b8ab.315360000.1798284651.282335-8574074",'
    b'"expires_in":2592000,"session_key":"9mzdWT...","access_token":"24.6c5e1ff107f0e8bcef8c46d3'
    b'424a0e78.2592000.1485516651.282335-8574074","scope":"public brain_all_scope '
    b'wenxinworkshop_mgr ai_custom_yiyan_com","session_secret":"dfac94a3489fe9fca7c3221cbf7525ff"}'
)
B1_TOKEN = "24.6c5e1ff107f0e8bcef8c46d3424a0e78.2592000.1485516651.282335-8574074"
B2_REQUEST = {
    "messages": [{"role": "user", "content": "你好"}],
    "system": "你是一个乐于助人的助手",
    "temperature": 0.8,
}
B2 = (
    '{"id":"as-bcmt5ct4id","object":"chat.completion","created":1709089502,'
    '"result":"你好！有什么我可以帮助你的吗？","is_truncated":false,"need_clear_history":false,'
    '"finish_reason":"normal","usage":{"prompt_tokens":2,"completion_tokens":12,"total_tokens":14}}'
).encode()
B2_TEXT = "你好！有什么我可以帮助你的吗？"
B3 = (
    'data: {"id":"as-vb0m37ti8y","object":"chat.completion","created":1709089502,"sentence_id":0,'
    '"is_end":false,"is_truncated":false,"result":"当然可以，","need_clear_history":false,'
    '"finish_reason":"normal","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}'
    "\n\n"
    'data: {"id":"as-vb0m37ti8y","object":"chat.completion","created":1709089510,"sentence_id":1,'
    '"is_end":false,"is_truncated":false,"result":"以下是一个简单的例子：",'
    '"need_clear_history":false,"finish_reason":"normal","usage":{"prompt_tokens":5,'
    '"completion_tokens":12,"total_tokens":17}}'
    "\n\n"
    'data: {"id":"as-vb0m37ti8y","object":"chat.completion","created":1709089531,"sentence_id":2,'
    '"is_end":true,"is_truncated":false,"result":"","need_clear_history":false,'
    '"finish_reason":"normal","usage":{"prompt_tokens":5,"completion_tokens":420,'
    '"total_tokens":425}}'
    "\n\n"
).encode()
B3_TEXT = "当然可以，以下是一个简单的例子："
B3_USAGE = {"prompt_tokens": 5, "completion_tokens": 420, "total_tokens": 425}
B4_REQUEST = {
    "messages": [{"role": "user", "content": "北京今天天气怎么样"}],
    "functions": [
        {
            "name": "get_current_weather",
            "description": "获取指定城市的天气",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        }
    ],
}
B4 = (
    '{"id":"as-cxyk3rgk1t","object":"chat.completion","created":1700000000,"result":"",'
    '"is_truncated":false,"need_clear_history":false,"finish_reason":"function_call",'
    '"function_call":{"name":"get_current_weather","thoughts":"用户想知道北京的天气，'
    '我需要调用get_current_weather","arguments":"{\\"location\\":\\"北京\\"}"},'
    '"usage":{"prompt_tokens":103,"completion_tokens":29,"total_tokens":132}}'
).encode()
B4_FOLLOW_UP = [
    {
        "role": "assistant",
        "content": "",
        "function_call": {"name": "get_current_weather", "arguments": '{"location":"北京"}'},
    },
    {"role": "function", "name": "get_current_weather", "content": '{"result":"晴，25℃"}'},
]
B5_110 = b'{"error_code":110,"error_msg":"Access token invalid or no longer valid"}'
B5_111 = b'{"error_code":111,"error_msg":"Access token expired"}'
B5_18 = b'{"error_code":18,"error_msg":"Open api qps request limit reached"}'
B5_336501 = b'{"error_code":336501,"error_msg":"Rate limit reached for RPM"}'
B5_17 = b'{"error_code":17,"error_msg":"Open api daily request limit reached"}'
B6 = (
    b'{"id":"as-1h8xu7d2pq","object":"chat.completion","created":1709090000,"result":"",'
    b'"is_truncated":false,"need_clear_history":true,"ban_round":-1,'
    b'"finish_reason":"content_filter","usage":{"prompt_tokens":12,"completion_tokens":0,'
    b'"total_tokens":12}}'
)
B7 = (
    b'{"id":"as-7qsk3yvx0h","object":"embedding_list","created":1709089502,"data":[{"object":'
    b'"embedding","embedding":[0.0133,-0.0412,0.0871],"index":0}],"usage":{"prompt_tokens":4,'
    b'"total_tokens":4}}'
)

PROVIDER_TABLE = provider_table("qianfan")
NUMERIC_ERRORS: dict[str, dict[str, Any]] = {
    code: rule for code, rule in PROVIDER_TABLE["errors"].items() if code.isdigit()
}
CATALOGUE: dict[str, dict[str, Any]] = PROVIDER_TABLE["models"]
assert len(NUMERIC_ERRORS) >= 25, "the numeric v1 error table went missing"


# --------------------------------------------------------------------------- helpers


def fake(**kwargs: Any) -> FakeQianfan:
    kwargs.setdefault("clock", lambda: NOW)
    return FakeQianfan(AK, SK, **kwargs)


#: v1 was shut down on the public cloud on 2026-08-31: it is used only on request.
V1_ONLY = {"providers": {"qianfan": {"api": "v1"}}}


QIANFAN = ProviderChat(
    "qianfan",
    MODEL,
    fake,
    {"api_key": AK, "secret_key": SK, "config": V1_ONLY},
    body=lambda f: chat_bodies(f)[-1],
)
client, aclient, plain_client = QIANFAN.client, QIANFAN.aclient, QIANFAN.plain_client
create, call, sent = QIANFAN.create, QIANFAN.call, QIANFAN.sent
stream_chunks = QIANFAN.stream_chunks


def chat_requests(f: FakeQianfan) -> list[httpx.Request]:
    return [r for r in f.requests if "/wenxinworkshop/chat/" in r.url.path]


def embedding_requests(f: FakeQianfan) -> list[httpx.Request]:
    return [r for r in f.requests if "/wenxinworkshop/embeddings/" in r.url.path]


def chat_bodies(f: FakeQianfan) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in chat_requests(f)]


def error_body(code: int, message: str = "出错了") -> bytes:
    return json.dumps({"error_code": code, "error_msg": message}, ensure_ascii=False).encode()


def assert_v1_messages(messages: list[dict[str, Any]]) -> None:
    """v1's message rules: odd count, strict alternation, from and to the user."""
    assert messages, "messages must not be empty"
    assert len(messages) % 2 == 1, f"even number of messages: {messages}"
    assert messages[0]["role"] == "user", messages
    assert messages[-1]["role"] in ("user", "function"), messages
    for index, message in enumerate(messages):
        role = message["role"]
        if index % 2 == 0:
            assert role in ("user", "function"), (index, messages)
        else:
            assert role == "assistant", (index, messages)
        if role == "function":
            assert message.get("name"), message
        if role == "assistant" and message.get("function_call"):
            assert set(message["function_call"]) == {"name", "arguments"}
            continue
        assert isinstance(message["content"], str) and message["content"].strip(), message


def body_text(body: dict[str, Any]) -> str:
    """Everything textual the request carries (system and messages)."""
    parts = [body.get("system", "")]
    for message in body["messages"]:
        parts.append(message.get("content") or "")
        if message.get("function_call"):
            parts.append(json.dumps(message["function_call"], ensure_ascii=False))
    return "\n".join(parts)


def token_route(mock: respx.MockRouter) -> respx.Route:
    return mock.post(url__regex=rf"^{HOST}{TOKEN_PATH}\?").mock(
        return_value=httpx.Response(200, content=B1, headers=JSON_HEADERS)
    )


def chat_route(mock: respx.MockRouter, suffix: str = "completions") -> respx.Route:
    return mock.post(url__regex=rf"^{HOST}{V1_PATH}/chat/{suffix}\?")


# --------------------------------------------------------------------------- 1. endpoints


@MODES
@pytest.mark.parametrize(
    ("model", "suffix"),
    [
        ("ERNIE-4.0-8K", "completions_pro"),
        ("ernie-4.0-8k", "completions_pro"),
        ("ernie-3.5-8k", "completions"),
        ("ERNIE-3.5-8K", "completions"),
        ("ernie-speed-8k", "ernie_speed"),
        ("ERNIE-Speed-8K", "ernie_speed"),
        ("ERNIE-Bot-4", "completions_pro"),
        ("ernie-bot-4", "completions_pro"),
        ("ERNIE-Bot", "completions"),
        ("ERNIE-Lite-8K-0922", "eb-instant"),
        ("Embedding-Free-Custom-SVC", "embedding-free-custom-svc"),
        ("My-Private-Endpoint", "my-private-endpoint"),
    ],
)
async def test_model_name_maps_to_the_endpoint_suffix(mode: str, model: str, suffix: str):
    f = fake()
    result = await create(mode, f, model=model)
    (request,) = chat_requests(f)
    assert request.url.path == f"{V1_PATH}/chat/{suffix}"
    assert request.url.params["access_token"] == f.issued_tokens[-1]
    body = json.loads(request.content)
    assert "model" not in body
    assert body["messages"] == HELLO
    assert result.choices[0].message.content.endswith("You said: 你好")


@MODES
async def test_one_token_serves_many_calls(mode: str):
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    for _ in range(3):
        await call(mode, c)
    assert f.token_requests == 1
    tokens = {r.url.params["access_token"] for r in chat_requests(f)}
    assert tokens == {f.issued_tokens[0]}
    (token_request,) = [r for r in f.requests if r.url.path == TOKEN_PATH]
    assert token_request.url.params["grant_type"] == "client_credentials"
    assert token_request.url.params["client_id"] == AK
    assert token_request.url.params["client_secret"] == SK


# --------------------------------------------------------------------------- 2. messages


@MODES
async def test_system_and_developer_messages_go_to_the_system_field(mode: str):
    body = await sent(
        mode,
        messages=[
            {"role": "system", "content": "你是一个乐于助人的助手"},
            {"role": "developer", "content": "回答要简短"},
            {"role": "user", "content": "你好"},
            {"role": "system", "content": "用中文回答"},
        ],
    )
    assert all(m["role"] not in ("system", "developer") for m in body["messages"])
    assert body["messages"] == HELLO
    for text in ("你是一个乐于助人的助手", "回答要简短", "用中文回答"):
        assert text in body["system"]
    assert (
        body["system"].index("你是")
        < body["system"].index("回答要")
        < body["system"].index("用中文")
    )


@MODES
async def test_no_system_field_without_system_messages(mode: str):
    body = await sent(mode, messages=HELLO)
    assert "system" not in body


@MODES
async def test_consecutive_user_messages_are_merged_without_losing_text(mode: str):
    texts = ["第一段", "第二段", "第三段"]
    body = await sent(mode, messages=[{"role": "user", "content": t} for t in texts])
    assert len(body["messages"]) == 1
    assert body["messages"][0]["role"] == "user"
    content = body["messages"][0]["content"]
    assert [content.index(t) for t in texts] == sorted(content.index(t) for t in texts)
    assert_v1_messages(body["messages"])


@MODES
async def test_text_parts_are_joined(mode: str):
    parts = [{"type": "text", "text": "甲部分"}, {"type": "text", "text": "乙部分"}]
    body = await sent(mode, messages=[{"role": "user", "content": parts}])
    (message,) = body["messages"]
    assert isinstance(message["content"], str)
    assert "甲部分" in message["content"] and "乙部分" in message["content"]


@MODES
async def test_empty_and_blank_messages_are_dropped(mode: str):
    body = await sent(
        mode,
        messages=[
            {"role": "user", "content": "问题一"},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "   "},
            {"role": "assistant", "content": "\n"},
            {"role": "user", "content": "问题二"},
        ],
    )
    assert_v1_messages(body["messages"])
    assert all(m["content"].strip() for m in body["messages"])
    assert "问题一" in body_text(body) and "问题二" in body_text(body)


@MODES
async def test_a_leading_assistant_message_is_kept_in_system(mode: str):
    body = await sent(
        mode,
        messages=[
            {"role": "system", "content": "你是导游"},
            {"role": "assistant", "content": "欢迎来到北京！"},
            {"role": "user", "content": "故宫几点开门"},
        ],
    )
    assert body["messages"] == [{"role": "user", "content": "故宫几点开门"}]
    assert "你是导游" in body["system"]
    assert "欢迎来到北京！" in body["system"]


@MODES
async def test_a_trailing_assistant_message_is_followed_by_the_continue_prompt(mode: str):
    body = await sent(
        mode,
        messages=[
            {"role": "user", "content": "写一首诗"},
            {"role": "assistant", "content": "床前明月光，"},
        ],
    )
    assert body["messages"] == [
        {"role": "user", "content": "写一首诗"},
        {"role": "assistant", "content": "床前明月光，"},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]


MESSY_HISTORY = [
    {"role": "system", "content": "规则甲"},
    {"role": "user", "content": ""},
    {"role": "user", "content": "第一问"},
    {"role": "user", "content": "补充说明"},
    {"role": "assistant", "content": "回答一"},
    {"role": "assistant", "content": "回答一续"},
    {"role": "developer", "content": "规则乙"},
    {"role": "user", "content": "  "},
    {"role": "user", "content": "第二问"},
    {"role": "assistant", "content": "回答二"},
]


@MODES
async def test_a_messy_history_is_repaired_into_v1_shape(mode: str):
    assert len(MESSY_HISTORY) == 10
    f = fake()
    result = await create(mode, f, messages=MESSY_HISTORY)
    assert result.choices[0].finish_reason == "stop"  # the fake accepted it
    body = chat_bodies(f)[-1]
    assert_v1_messages(body["messages"])
    text = body_text(body)
    for message in MESSY_HISTORY:
        if message["content"].strip():
            assert message["content"] in text, message
    assert "规则甲" in body["system"] and "规则乙" in body["system"]
    assert body["messages"][-1] == {"role": "user", "content": CONTINUE_PROMPT}


@MODES
@pytest.mark.parametrize(
    "history",
    [
        [
            {"role": "user", "content": "甲"},
            {"role": "assistant", "content": "乙"},
            {"role": "assistant", "content": "丙"},
        ],
        [
            {"role": "user", "content": "甲"},
            {"role": "user", "content": "乙"},
            {"role": "assistant", "content": "丙"},
            {"role": "user", "content": "丁"},
            {"role": "user", "content": "戊"},
        ],
        [
            {"role": "assistant", "content": "甲"},
            {"role": "user", "content": "乙"},
            {"role": "assistant", "content": "丙"},
            {"role": "assistant", "content": "丁"},
        ],
        [{"role": "system", "content": "甲"}, {"role": "user", "content": "乙"}] * 3,
    ],
    ids=["two-assistants", "doubled-users", "assistant-first-and-last", "system-interleaved"],
)
async def test_histories_the_fake_would_reject_are_accepted(mode: str, history: list[Any]):
    f = fake()
    await create(mode, f, messages=history)
    body = chat_bodies(f)[-1]
    assert_v1_messages(body["messages"])
    text = body_text(body)
    for message in history:
        assert message["content"] in text


@MODES
async def test_a_history_without_text_is_refused_before_sending(mode: str):
    f = fake()
    with pytest.raises(BadRequestError):
        await create(
            mode,
            f,
            messages=[{"role": "system", "content": "规则"}, {"role": "user", "content": ""}],
        )
    assert chat_requests(f) == []


def weather_call(call_id: str, city: str) -> dict[str, Any]:
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": "get_current_weather", "arguments": json.dumps({"location": city})},
    }


@MODES
async def test_a_tool_round_trip_becomes_function_call_and_function_messages(mode: str):
    arguments = '{"location":"北京"}'
    body = await sent(
        mode,
        messages=[
            {"role": "user", "content": "北京今天天气怎么样"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc",
                        "type": "function",
                        "function": {"name": "get_current_weather", "arguments": arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_abc", "content": '{"result":"晴，25℃"}'},
        ],
        tools=[WEATHER],
    )
    assert body["messages"] == [{"role": "user", "content": "北京今天天气怎么样"}, *B4_FOLLOW_UP]
    assert_v1_messages(body["messages"])


@MODES
@pytest.mark.parametrize("reverse", [False, True], ids=["in-order", "results-reversed"])
async def test_parallel_tool_calls_become_alternating_pairs(mode: str, reverse: bool):
    results = [
        {"role": "tool", "tool_call_id": "call_bj", "content": "北京晴"},
        {"role": "tool", "tool_call_id": "call_sh", "content": "上海雨"},
    ]
    if reverse:
        results.reverse()
    f = fake()
    await create(
        mode,
        f,
        messages=[
            {"role": "user", "content": "北京和上海天气"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [weather_call("call_bj", "北京"), weather_call("call_sh", "上海")],
            },
            *results,
        ],
        tools=[WEATHER],
    )
    messages = chat_bodies(f)[-1]["messages"]
    assert_v1_messages(messages)
    assert len(messages) == 5
    pairs = [(messages[i], messages[i + 1]) for i in (1, 3)]
    seen = []
    for call_message, result_message in pairs:
        assert call_message["role"] == "assistant" and call_message["content"] == ""
        assert result_message["role"] == "function"
        assert result_message["name"] == "get_current_weather"
        city = json.loads(call_message["function_call"]["arguments"])["location"]
        expected = {"北京": "北京晴", "上海": "上海雨"}[city]
        assert result_message["content"] == expected, (call_message, result_message)
        seen.append(city)
    assert sorted(seen) == ["上海", "北京"]


@MODES
async def test_assistant_text_next_to_tool_calls_keeps_alternation(mode: str):
    """OpenAI models often say something and call a tool in the same turn."""
    f = fake()
    await create(
        mode,
        f,
        messages=[
            {"role": "user", "content": "北京天气"},
            {
                "role": "assistant",
                "content": "我来查一下。",
                "tool_calls": [weather_call("call_bj", "北京")],
            },
            {"role": "tool", "tool_call_id": "call_bj", "content": "晴"},
        ],
        tools=[WEATHER],
        options={"max_retries": 0},
    )
    body = chat_bodies(f)[-1]
    assert_v1_messages(body["messages"])
    assert "我来查一下。" in body_text(body)
    assert body["messages"][-1] == {
        "role": "function",
        "name": "get_current_weather",
        "content": "晴",
    }


@MODES
async def test_a_user_message_right_after_a_tool_result_keeps_alternation(mode: str):
    """OpenAI accepts a user turn straight after tool results; v1 needs an assistant between."""
    f = fake()
    await create(
        mode,
        f,
        messages=[
            {"role": "user", "content": "北京天气"},
            {"role": "assistant", "content": None, "tool_calls": [weather_call("call_bj", "北京")]},
            {"role": "tool", "tool_call_id": "call_bj", "content": "晴"},
            {"role": "user", "content": "那上海呢"},
        ],
        tools=[WEATHER],
        options={"max_retries": 0},
    )
    body = chat_bodies(f)[-1]
    assert_v1_messages(body["messages"])
    for text in ("北京天气", "晴", "那上海呢"):
        assert text in body_text(body)


@MODES
async def test_a_tool_call_id_from_a_response_pairs_its_result(mode: str):
    f = fake().tool_call("get_current_weather", {"location": "北京"})
    c = client(f) if mode == "sync" else aclient(f)
    first = await call(mode, c, messages=[{"role": "user", "content": "北京天气"}], tools=[WEATHER])
    tool_call = first.choices[0].message.tool_calls[0]
    history = [
        {"role": "user", "content": "北京天气"},
        {"role": "assistant", "content": None, "tool_calls": [tool_call.model_dump()]},
        {"role": "tool", "tool_call_id": tool_call.id, "content": "晴"},
    ]
    second = await call(mode, c, messages=history, tools=[WEATHER])
    assert second.choices[0].finish_reason == "stop"
    messages = chat_bodies(f)[-1]["messages"]
    assert messages[1]["function_call"] == {
        "name": "get_current_weather",
        "arguments": '{"location":"北京"}',
    }
    assert messages[2] == {"role": "function", "name": "get_current_weather", "content": "晴"}


@MODES
async def test_an_image_part_is_refused_before_sending(mode: str):
    f = fake()
    content = [
        {"type": "text", "text": "这是什么"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    with pytest.raises(BadRequestError) as caught:
        await create(mode, f, messages=[{"role": "user", "content": content}])
    assert "image_url" in str(caught.value)
    assert caught.value.provider == "qianfan"
    assert chat_requests(f) == []


# --------------------------------------------------------------------------- 3. parameters


@MODES
@pytest.mark.parametrize(("given", "expected"), [(0, 0.01), (0.0, 0.01), (0.7, 0.7), (1.5, 1.0)])
async def test_temperature_is_kept_inside_zero_one(mode: str, given: float, expected: float):
    body = await sent(mode, temperature=given)
    assert body["temperature"] == pytest.approx(expected)
    assert 0 < body["temperature"] <= 1


@MODES
async def test_top_p_passes_through(mode: str):
    body = await sent(mode, top_p=0.3)
    assert body["top_p"] == pytest.approx(0.3)


@MODES
@pytest.mark.parametrize(("given", "expected"), [(2, 2.0), (-2, 1.0), (0, 1.5), (1, 1.75)])
async def test_presence_penalty_becomes_penalty_score(mode: str, given: float, expected: float):
    body = await sent(mode, presence_penalty=given)
    assert body["penalty_score"] == pytest.approx(expected)
    assert "presence_penalty" not in body


@MODES
async def test_no_optional_fields_unless_asked(mode: str):
    body = await sent(mode)
    assert body == {"messages": HELLO}


@MODES
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"max_tokens": 1}, 2),
        ({"max_tokens": 2}, 2),
        ({"max_tokens": 300}, 300),
        ({"max_completion_tokens": 1}, 2),
        ({"max_completion_tokens": 50, "max_tokens": 300}, 50),
    ],
)
async def test_max_tokens_become_max_output_tokens(mode: str, params: Any, expected: int):
    body = await sent(mode, **params)
    assert body["max_output_tokens"] == expected
    assert "max_tokens" not in body and "max_completion_tokens" not in body


@MODES
async def test_a_fifth_stop_word_is_applied_client_side(mode: str):
    f = fake().reply("答案是四十二。END 这部分不该出现")
    stops = ["<a>", "<b>", "<c>", "<d>", "END"]
    result = await create(mode, f, stop=stops)
    assert chat_bodies(f)[-1]["stop"] == stops[:4]
    assert result.choices[0].message.content == "答案是四十二。"
    assert result.choices[0].finish_reason == "stop"


@MODES
async def test_a_fifth_stop_word_is_applied_to_a_stream(mode: str):
    f = fake().reply("答案是四十二。END 这部分不该出现", chunk_size=3)
    stops = ["<a>", "<b>", "<c>", "<d>", "END"]
    chunks, error = await stream_chunks(mode, f, stop=stops)
    assert error is None
    assert chat_bodies(f)[-1]["stop"] == stops[:4]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "答案是四十二。"


@MODES
async def test_a_single_stop_string_is_sent_as_a_list(mode: str):
    body = await sent(mode, stop="\n\n")
    assert body["stop"] == ["\n\n"]


@MODES
async def test_user_becomes_user_id(mode: str):
    body = await sent(mode, user="u-123")
    assert body["user_id"] == "u-123"
    assert "user" not in body


@MODES
@pytest.mark.parametrize("kind", ["json_object", "text"])
async def test_response_format_is_a_plain_string(mode: str, kind: str):
    body = await sent(mode, response_format={"type": kind})
    assert body["response_format"] == kind


@MODES
async def test_tools_become_functions(mode: str):
    body = await sent(mode, tools=[WEATHER, TIME])
    assert "tools" not in body
    assert body["functions"] == [
        {
            "name": "get_current_weather",
            "description": "获取指定城市的天气",
            "parameters": WEATHER_PARAMS,
        },
        {"name": "get_time", "description": "现在几点", "parameters": {"type": "object"}},
    ]
    assert "tool_choice" not in body


@MODES
async def test_a_named_tool_choice_is_forced(mode: str):
    body = await sent(
        mode,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
    )
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_time"}}
    assert [f["name"] for f in body["functions"]] == ["get_current_weather", "get_time"]


@MODES
async def test_tool_choice_none_sends_no_functions(mode: str):
    body = await sent(mode, tools=[WEATHER], tool_choice="none")
    assert "functions" not in body and "tool_choice" not in body


@MODES
async def test_tool_choice_auto_sends_functions_without_warning(mode: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedParameterWarning)
        body = await sent(mode, tools=[WEATHER], tool_choice="auto")
    assert [f["name"] for f in body["functions"]] == ["get_current_weather"]
    assert "tool_choice" not in body


@MODES
async def test_tool_choice_required_warns(mode: str):
    with pytest.warns(UnsupportedParameterWarning, match="tool_choice"):
        body = await sent(mode, tools=[WEATHER], tool_choice="required")
    assert [f["name"] for f in body["functions"]] == ["get_current_weather"]
    assert "tool_choice" not in body


@MODES
@pytest.mark.parametrize(("name", "value"), [("frequency_penalty", 0.5), ("seed", 42)])
async def test_unsupported_parameters_warn_and_are_not_sent(mode: str, name: str, value: Any):
    with pytest.warns(UnsupportedParameterWarning, match=name):
        body = await sent(mode, **{name: value})
    assert name not in body
    assert body == {"messages": HELLO}


@MODES
async def test_n_2_sends_two_requests_and_merges_the_choices(mode: str):
    usage_a = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    usage_b = {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}
    f = fake().reply("第一个回答", usage=usage_a).reply("第二个回答", usage=usage_b)
    result = await create(mode, f, n=2)
    bodies = chat_bodies(f)
    assert len(bodies) == 2
    assert all("n" not in body for body in bodies)
    assert [c.index for c in result.choices] == [0, 1]
    assert [c.message.content for c in result.choices] == ["第一个回答", "第二个回答"]
    assert result.usage.prompt_tokens == 6
    assert result.usage.completion_tokens == 10
    assert result.usage.total_tokens == 16


# --------------------------------------------------------------------------- 4. responses


@MODES
async def test_b2_byte_exact_becomes_a_chat_completion(mode: str):
    async with respx.mock(assert_all_called=True) as mock:
        token = token_route(mock)
        route = chat_route(mock).mock(
            return_value=httpx.Response(200, content=B2, headers=JSON_HEADERS)
        )
        result = await call(
            mode,
            plain_client(mode),
            messages=[
                {"role": "system", "content": "你是一个乐于助人的助手"},
                {"role": "user", "content": "你好"},
            ],
            temperature=0.8,
        )
    assert isinstance(result, ChatCompletion)
    assert result.id == "as-bcmt5ct4id"
    assert result.object == "chat.completion"
    assert result.created == 1709089502
    assert result.model == MODEL
    assert result.provider == "qianfan"
    assert result.is_truncated is False
    assert result.model_dump()["is_truncated"] is False
    choice = result.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == B2_TEXT
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2, 12)
    assert result.usage.total_tokens == 14
    request = route.calls.last.request
    assert json.loads(request.content) == B2_REQUEST
    assert request.url.params["access_token"] == B1_TOKEN
    assert token.call_count == 1


@MODES
async def test_is_truncated_true_is_kept(mode: str):
    body = json.loads(B2)
    body.update(is_truncated=True, finish_reason="length")
    f = fake().raw(200, json.dumps(body, ensure_ascii=False), JSON_HEADERS)
    result = await create(mode, f)
    assert result.is_truncated is True
    assert result.choices[0].finish_reason == "length"


@MODES
async def test_b4_byte_exact_function_call_becomes_tool_calls(mode: str):
    async with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        route = chat_route(mock).mock(
            return_value=httpx.Response(200, content=B4, headers=JSON_HEADERS)
        )
        result = await call(
            mode,
            plain_client(mode),
            messages=[{"role": "user", "content": "北京今天天气怎么样"}],
            tools=[WEATHER],
        )
    assert json.loads(route.calls.last.request.content) == B4_REQUEST
    choice = result.choices[0]
    assert choice.finish_reason == "tool_calls"
    (tool_call,) = choice.message.tool_calls
    assert tool_call.type == "function"
    assert tool_call.function.name == "get_current_weather"
    assert tool_call.function.arguments == '{"location":"北京"}'
    assert json.loads(tool_call.function.arguments) == {"location": "北京"}
    assert tool_call.id and tool_call.id != "get_current_weather"
    assert not choice.message.content
    assert result.id == "as-cxyk3rgk1t"
    assert result.usage.total_tokens == 132


@MODES
async def test_tool_call_ids_are_unique_across_responses(mode: str):
    f = fake()
    f.tool_call("get_current_weather", {"location": "北京"})
    f.tool_call("get_current_weather", {"location": "北京"})
    c = client(f) if mode == "sync" else aclient(f)
    ids = set()
    for _ in range(2):
        result = await call(mode, c, tools=[WEATHER])
        assert result.choices[0].finish_reason == "tool_calls"
        ids.add(result.choices[0].message.tool_calls[0].id)
    assert len(ids) == 2
    assert "get_current_weather" not in ids


@MODES
async def test_b6_byte_exact_is_content_filter(mode: str):
    async with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        chat_route(mock).mock(return_value=httpx.Response(200, content=B6, headers=JSON_HEADERS))
        result = await call(mode, plain_client(mode))
    assert result.choices[0].finish_reason == "content_filter"
    assert not result.choices[0].message.content
    assert result.id == "as-1h8xu7d2pq"
    assert result.need_clear_history is True
    assert result.usage.total_tokens == 12


@MODES
async def test_need_clear_history_with_an_empty_result_is_content_filter(mode: str):
    body = json.loads(B2)
    body.update(result="", need_clear_history=True, ban_round=-1, finish_reason="normal")
    f = fake().raw(200, json.dumps(body, ensure_ascii=False), JSON_HEADERS)
    result = await create(mode, f)
    assert result.choices[0].finish_reason == "content_filter"


@MODES
async def test_the_fakes_sensitive_answer_is_content_filter(mode: str):
    f = fake().sensitive()
    result = await create(mode, f)
    assert result.choices[0].finish_reason == "content_filter"


# ------------------------------------------------------------------------- 5. errors in 200 bodies


def expected_chat_requests(rule: dict[str, Any]) -> int:
    if rule.get("reauth"):
        return 2
    return 3 if rule.get("retryable") else 1


@MODES
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("code", sorted(NUMERIC_ERRORS, key=int))
async def test_every_numeric_error_code_in_a_200_body(
    mode: str, stream: bool, code: str, no_retry_sleep: list[float]
):
    rule = NUMERIC_ERRORS[code]
    f = fake()
    for _ in range(5):
        f.raw(200, error_body(int(code), f"错误 {code}"), JSON_HEADERS)
    expected_class = getattr(llm_bridge, rule["exception"])
    with pytest.raises(APIStatusError) as caught:
        await create(mode, f, stream=stream)
    error = caught.value
    assert type(error) is expected_class
    assert error.provider == "qianfan"
    assert error.provider_code == code
    assert error.code == rule.get("code", code)
    assert f"错误 {code}" in str(error)
    attempts = expected_chat_requests(rule)
    assert len(chat_requests(f)) == attempts
    if rule.get("reauth"):
        assert f.token_requests == 2
        tokens = [r.url.params["access_token"] for r in chat_requests(f)]
        assert tokens == f.issued_tokens
        assert all(wait == 0 for wait in no_retry_sleep)  # a refresh is retried at once
    else:
        assert f.token_requests == 1
        assert len(no_retry_sleep) == attempts - 1


@MODES
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_an_unknown_code_is_an_api_status_error_that_keeps_it(mode: str, stream: bool):
    f = fake().raw(200, error_body(999999, "未知错误"), JSON_HEADERS)
    with pytest.raises(APIStatusError) as caught:
        await create(mode, f, stream=stream)
    # (the class openai gives the 500 it is answered with; not retried: nothing says it passes)
    assert type(caught.value) is InternalServerError
    assert caught.value.provider_code == "999999"
    assert caught.value.code == "999999"
    assert "未知错误" in str(caught.value)
    assert len(chat_requests(f)) == 1


@MODES
async def test_17_is_insufficient_quota_and_not_retried(mode: str, no_retry_sleep: list[float]):
    f = fake().raw(200, B5_17, JSON_HEADERS).reply("不该到这里")
    with pytest.raises(RateLimitError) as caught:
        await create(mode, f)
    assert caught.value.code == "insufficient_quota"
    assert caught.value.provider_code == "17"
    assert len(chat_requests(f)) == 1
    assert no_retry_sleep == []


@MODES
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_18_is_retried_then_succeeds(mode: str, stream: bool, no_retry_sleep: list[float]):
    f = fake().raw(200, B5_18, JSON_HEADERS).reply("终于成功")
    result = await create(mode, f, stream=stream)
    if stream:
        chunks, error = await consume(result)
        assert error is None
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == "终于成功"
    else:
        assert result.choices[0].message.content == "终于成功"
    assert len(chat_requests(f)) == 2
    assert len(no_retry_sleep) == 1


@MODES
async def test_max_retries_zero_does_not_retry_18(mode: str):
    f = fake().raw(200, B5_18, JSON_HEADERS).reply("不该到这里")
    with pytest.raises(RateLimitError):
        await create(mode, f, options={"max_retries": 0})
    assert len(chat_requests(f)) == 1


@MODES
@pytest.mark.parametrize("body", [B5_110, B5_111], ids=["110", "111"])
async def test_110_and_111_refresh_the_token_once_and_retry(mode: str, body: bytes):
    f = fake().raw(200, body, JSON_HEADERS).reply("换了令牌")
    result = await create(mode, f)
    assert result.choices[0].message.content == "换了令牌"
    assert f.token_requests == 2
    tokens = [r.url.params["access_token"] for r in chat_requests(f)]
    assert tokens == f.issued_tokens
    assert tokens[0] != tokens[1]


@MODES
async def test_an_expired_token_is_refreshed(mode: str):
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    await call(mode, c)
    f.expire_tokens()
    result = await call(mode, c)
    assert result.choices[0].finish_reason == "stop"
    assert f.token_requests == 2
    assert len(chat_requests(f)) == 3
    assert chat_requests(f)[-1].url.params["access_token"] == f.issued_tokens[-1]


@MODES
async def test_b5_byte_exact_errors(mode: str, no_retry_sleep: list[float]):
    async with respx.mock(assert_all_called=True) as mock:
        token = token_route(mock)
        route = chat_route(mock).mock(
            side_effect=[
                httpx.Response(200, content=B5_110, headers=JSON_HEADERS),
                httpx.Response(200, content=B5_18, headers=JSON_HEADERS),
                httpx.Response(200, content=B2, headers=JSON_HEADERS),
            ]
        )
        result = await call(mode, plain_client(mode))
    assert result.choices[0].message.content == B2_TEXT
    assert route.call_count == 3
    assert token.call_count == 2
    assert len([wait for wait in no_retry_sleep if wait > 0]) == 1  # the 110 retry is at once

    async with respx.mock(assert_all_called=False) as mock:
        token = token_route(mock)
        route = chat_route(mock).mock(
            return_value=httpx.Response(200, content=B5_336501, headers=JSON_HEADERS)
        )
        with pytest.raises(RateLimitError) as caught:
            await call(mode, plain_client(mode))
    assert caught.value.provider_code == "336501"
    assert caught.value.code == "rate_limit_exceeded"
    assert route.call_count == 3
    assert token.call_count == 0  # a later client reuses the process-wide token

    async with respx.mock(assert_all_called=False) as mock:
        token = token_route(mock)
        route = chat_route(mock).mock(
            return_value=httpx.Response(200, content=B5_17, headers=JSON_HEADERS)
        )
        with pytest.raises(RateLimitError) as caught:
            await call(mode, plain_client(mode), stream=True)
    assert caught.value.code == "insufficient_quota"
    assert route.call_count == 1
    assert token.call_count == 0


@MODES
async def test_b5_111_twice_is_an_authentication_error(mode: str):
    async with respx.mock(assert_all_called=True) as mock:
        token = token_route(mock)
        route = chat_route(mock).mock(
            return_value=httpx.Response(200, content=B5_111, headers=JSON_HEADERS)
        )
        with pytest.raises(AuthenticationError) as caught:
            await call(mode, plain_client(mode))
    assert caught.value.provider_code == "111"
    assert route.call_count == 2
    assert token.call_count == 2


# --------------------------------------------------------------------------- 6. streams


def texts_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def assert_stream_shape(chunks: list[Any], *, include_usage: bool, finish: str = "stop") -> None:
    choice_chunks = [c for c in chunks if c.choices]
    assert choice_chunks, "no chunk with choices"
    assert choice_chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in choice_chunks[1:])
    assert all(c.choices[0].finish_reason is None for c in choice_chunks[:-1])
    assert choice_chunks[-1].choices[0].finish_reason == finish
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.provider == "qianfan" for c in chunks)
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert all(c.usage is None for c in chunks[:-1])
        assert len(chunks) == len(choice_chunks) + 1
    else:
        assert all(c.usage is None for c in chunks)
        assert len(chunks) == len(choice_chunks)


@MODES
@pytest.mark.parametrize("include_usage", [False, True])
async def test_b3_byte_exact_stream(mode: str, include_usage: bool):
    params: dict[str, Any] = {"stream": True}
    if include_usage:
        params["stream_options"] = {"include_usage": True}
    async with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        route = chat_route(mock).mock(
            return_value=httpx.Response(200, content=B3, headers=SSE_HEADERS)
        )
        c = plain_client(mode)
        stream = await call(mode, c, **params)
        chunks, error = await consume(stream)
    assert error is None
    assert json.loads(route.calls.last.request.content)["stream"] is True
    assert texts_of(chunks) == B3_TEXT
    assert_stream_shape(chunks, include_usage=include_usage)
    assert all(c.id == "as-vb0m37ti8y" for c in chunks)
    assert all(c.model == MODEL for c in chunks)
    assert len([c for c in chunks if c.choices]) == 3
    if include_usage:
        assert chunks[-1].usage.model_dump(include=set(B3_USAGE)) == B3_USAGE
    assert c.usage.records()[-1].usage.total_tokens == 425  # recorded with or without it


@MODES
@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("include_usage", [False, True])
async def test_b3_split_anywhere_gives_the_same_stream(mode: str, split: int, include_usage: bool):
    f = fake(split_bytes=split).raw(200, B3, SSE_HEADERS)
    params: dict[str, Any] = {}
    if include_usage:
        params["stream_options"] = {"include_usage": True}
    chunks, error = await stream_chunks(mode, f, **params)
    assert error is None
    assert texts_of(chunks) == B3_TEXT
    assert_stream_shape(chunks, include_usage=include_usage)
    if include_usage:
        assert chunks[-1].usage.model_dump(include=set(B3_USAGE)) == B3_USAGE


@MODES
@pytest.mark.parametrize("split", [None, 1, 2, 3, 4, 5])
async def test_a_fake_stream_with_usage(mode: str, split: int | None):
    usage = {"prompt_tokens": 9, "completion_tokens": 30, "total_tokens": 39}
    text = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。"
    f = fake(split_bytes=split).reply(text, usage=usage, chunk_size=5)
    chunks, error = await stream_chunks(mode, f, stream_options={"include_usage": True})
    assert error is None
    assert texts_of(chunks) == text
    assert_stream_shape(chunks, include_usage=True)
    assert chunks[-1].usage.model_dump(include=set(usage)) == usage
    assert chat_bodies(f)[-1]["stream"] is True


@MODES
async def test_a_streamed_function_call_becomes_a_tool_calls_delta(mode: str):
    f = fake().tool_call("get_current_weather", {"location": "北京"})
    chunks, error = await stream_chunks(mode, f, tools=[WEATHER])
    assert error is None
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert len(calls) == 1
    assert calls[0].index == 0
    assert calls[0].id and calls[0].id != "get_current_weather"
    assert calls[0].type == "function"
    assert calls[0].function.name == "get_current_weather"
    assert json.loads(calls[0].function.arguments) == {"location": "北京"}
    assert_stream_shape(chunks, include_usage=False, finish="tool_calls")


@MODES
@pytest.mark.parametrize("raises", [True, False], ids=["connection-drop", "clean-eof"])
async def test_a_cut_stream_raises_after_the_earlier_chunks(mode: str, raises: bool):
    f = fake().cut_stream(2, "一二三四五六七八九十", cut_raises=raises)
    chunks, error = await stream_chunks(mode, f)
    assert isinstance(error, APIConnectionError)
    assert texts_of(chunks) == "一二三四五六七八"
    assert all(c.choices[0].finish_reason is None for c in chunks)


@MODES
@pytest.mark.parametrize(
    ("kind", "exception", "code"),
    [("rate_limit", RateLimitError, "18"), ("content_filter", BadRequestError, "336003")],
)
async def test_an_error_event_mid_stream_raises_after_the_earlier_chunks(
    mode: str, kind: str, exception: type, code: str
):
    f = fake().error_mid_stream(2, kind, "一二三四五六七八九十")
    chunks, error = await stream_chunks(mode, f)
    assert type(error) is exception
    assert error.provider_code == code
    assert texts_of(chunks) == "一二三四五六七八"
    assert len(chat_requests(f)) == 1


@MODES
@pytest.mark.parametrize("split", [1, 2, 3, 4, 5])
async def test_an_error_event_split_anywhere(mode: str, split: int):
    events = B3.split(b"\n\n")[:2]
    body = b"\n\n".join(events) + b"\n\n" + b"data: " + B5_336501 + b"\n\n"
    f = fake(split_bytes=split).raw(200, body, SSE_HEADERS)
    chunks, error = await stream_chunks(mode, f)
    assert type(error) is RateLimitError
    assert error.provider_code == "336501"
    assert texts_of(chunks) == B3_TEXT


@MODES
async def test_an_error_json_line_inside_an_event_stream_is_mapped(mode: str):
    """Inside a v1 SSE body a line not starting with ``data: `` may be an error JSON (QF-SDK
    reads it as one)."""
    f = fake().raw(200, B5_336501 + b"\n", SSE_HEADERS)
    try:  # raised at create() or at the first read: either is fine
        chunks, error = await stream_chunks(mode, f, options={"max_retries": 0})
    except APIError as raised:
        chunks, error = [], raised
    assert chunks == []
    assert type(error) is RateLimitError
    assert error.provider_code == "336501"


# --------------------------------------------------------------------------- 7. embeddings


@MODES
async def test_40_inputs_are_batched_and_reassembled_in_order(mode: str):
    max_batch = CATALOGUE["embedding-v1"]["max_batch"]
    texts = [f"第{i}段文本" + "长" * (i % 7) for i in range(40)]
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    result = await embed(mode, c, model="embedding-v1", input=texts)
    requests = embedding_requests(f)
    assert len(requests) == math.ceil(40 / max_batch) == 3
    inputs = [json.loads(r.content)["input"] for r in requests]
    assert all(len(batch) <= max_batch for batch in inputs)
    assert [t for batch in inputs for t in batch] == texts
    assert all(r.url.path == f"{V1_PATH}/embeddings/embedding-v1" for r in requests)
    assert all("access_token" in r.url.params for r in requests)
    assert [d.index for d in result.data] == list(range(40))
    assert result.provider == "qianfan"
    expected = sum(approx_tokens(t) for t in texts)
    assert result.usage.prompt_tokens == expected
    assert result.usage.total_tokens == expected
    reverse = await embed(mode, c, model="embedding-v1", input=texts[::-1])
    by_text = {t: d.embedding for t, d in zip(texts[::-1], reverse.data)}
    assert all(d.embedding == by_text[t] for t, d in zip(texts, result.data))
    assert len({tuple(d.embedding) for d in result.data}) == 40


@MODES
async def test_tao_8k_batches_by_its_own_limit(mode: str):
    max_batch = CATALOGUE["tao-8k"]["max_batch"]
    texts = ["甲", "乙", "丙"]
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    result = await embed(mode, c, model="tao-8k", input=texts)
    requests = embedding_requests(f)
    assert len(requests) == math.ceil(len(texts) / max_batch)
    assert all(r.url.path == f"{V1_PATH}/embeddings/tao_8k" for r in requests)
    assert all(len(json.loads(r.content)["input"]) <= max_batch for r in requests)
    assert [d.index for d in result.data] == [0, 1, 2]


@MODES
async def test_a_single_string_input(mode: str):
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    result = await embed(mode, c, model="embedding-v1", input="推荐一些美食")
    (request,) = embedding_requests(f)
    assert json.loads(request.content) == {"input": ["推荐一些美食"]}
    assert len(result.data) == 1 and result.data[0].index == 0
    assert len(result.data[0].embedding) == CATALOGUE["embedding-v1"]["default_dimensions"]


@MODES
async def test_b7_byte_exact_embeddings(mode: str):
    async with respx.mock(assert_all_called=True) as mock:
        token_route(mock)
        route = mock.post(url__regex=rf"^{HOST}{V1_PATH}/embeddings/embedding-v1\?").mock(
            return_value=httpx.Response(200, content=B7, headers=JSON_HEADERS)
        )
        result = await embed(mode, plain_client(mode), model="embedding-v1", input=["推荐一些美食"])
    assert json.loads(route.calls.last.request.content) == {"input": ["推荐一些美食"]}
    assert result.object == "list"
    assert result.model == "embedding-v1"
    assert [d.index for d in result.data] == [0]
    assert result.data[0].embedding == float32([0.0133, -0.0412, 0.0871])
    assert (result.usage.prompt_tokens, result.usage.total_tokens) == (4, 4)


@MODES
async def test_dimensions_equal_to_the_fixed_size_are_not_sent(mode: str):
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedParameterWarning)
        result = await embed(mode, c, model="embedding-v1", input="你好", dimensions=384)
    assert "dimensions" not in json.loads(embedding_requests(f)[-1].content)
    assert len(result.data[0].embedding) == 384


@MODES
async def test_other_dimensions_are_refused_before_sending(mode: str):
    f = fake()
    c = client(f) if mode == "sync" else aclient(f)
    with pytest.raises(BadRequestError) as info:
        await embed(mode, c, model="embedding-v1", input="你好", dimensions=128)
    assert embedding_requests(f) == []
    assert info.value.param == "dimensions" and "always returns 384" in str(info.value)


@MODES
async def test_embedding_errors_in_200_bodies_are_mapped(mode: str, no_retry_sleep: list[float]):
    f = fake().raw(200, error_body(336003, "input invalid"), JSON_HEADERS)
    c = client(f) if mode == "sync" else aclient(f)
    with pytest.raises(BadRequestError) as caught:
        await embed(mode, c, model="embedding-v1", input="你好")
    assert caught.value.provider_code == "336003"
    assert caught.value.code == "invalid_request_error"
    assert len(embedding_requests(f)) == 1

    f.raw(200, B5_18, JSON_HEADERS)
    result = await embed(mode, c, model="embedding-v1", input="你好")
    assert len(result.data) == 1
    assert len(embedding_requests(f)) == 3
    assert len(no_retry_sleep) == 1

    f.raw(200, B5_111, JSON_HEADERS)
    result = await embed(mode, c, model="embedding-v1", input="你好")
    assert len(result.data) == 1
    assert f.token_requests == 2
