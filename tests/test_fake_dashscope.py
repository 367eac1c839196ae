"""FakeDashScope and FakeDashScopeCompatible speak DashScope's wires (docs/providers/dashscope.md,
"The fakes")."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import respx

from llm_bridge.testing import (
    Failure,
    FakeDashScope,
    FakeDashScopeCompatible,
    MidStreamError,
    Reply,
    Sensitive,
    StreamCut,
    ToolCallSpec,
)

NOW = 1770343445.0
KEY = "sk-3f9a1c0d2b"
BASE = FakeDashScope.base_url
TEXT = f"{BASE}/services/aigc/text-generation/generation"
MULTIMODAL = f"{BASE}/services/aigc/multimodal-generation/generation"
EMBED = f"{BASE}/services/embeddings/text-embedding/text-embedding"
INTL = "dashscope-intl.aliyuncs.com"
COMPAT = FakeDashScopeCompatible.base_url
COMPAT_CHAT = f"{COMPAT}/chat/completions"
COMPAT_EMBED = f"{COMPAT}/embeddings"
HELLO = [{"role": "user", "content": "你好"}]
SSE = {"X-DashScope-SSE": "enable", "Accept": "text/event-stream"}
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
CALL_ID = re.compile(r"call_[0-9a-f]{22}")
FRAME = re.compile(r"id:(\d+)\nevent:(result|error)\n:HTTP_STATUS/(\d{3})\ndata:(\{.*\})")
INCREMENTAL = {"result_format": "message", "incremental_output": True}


def fake(**kwargs: Any) -> FakeDashScope:
    return FakeDashScope(clock=lambda: NOW, **kwargs)


def body_for(model: str = "qwen-plus", messages: Any = None, **parameters: Any) -> dict[str, Any]:
    return {
        "model": model,
        "input": {"messages": HELLO if messages is None else messages},
        "parameters": parameters,
    }


def post(
    f: FakeDashScope,
    body: dict[str, Any] | None = None,
    *,
    url: str = TEXT,
    sse: bool = False,
    **headers: str,
) -> httpx.Response:
    all_headers = {**(SSE if sse else {}), **headers}
    with httpx.Client(transport=f.transport()) as c:
        return c.post(url, json=body or body_for(), headers=all_headers)


def sse_client(f: FakeDashScope) -> httpx.Client:
    return httpx.Client(transport=f.transport(), headers=SSE)


def stream_raw(f: FakeDashScope, body: dict[str, Any] | None = None, url: str = TEXT) -> bytes:
    """A streamed body, asserting the native SSE content type."""
    body = body or body_for(**INCREMENTAL)
    with sse_client(f) as c, c.stream("POST", url, json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream;charset=UTF-8"
        return b"".join(r.iter_raw())


def frames(raw: bytes) -> list[tuple[int, str, int, dict[str, Any]]]:
    """Parse native SSE strictly: four lines per event, no spaces after colons, ids 1..N."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n") and "[DONE]" not in text
    parsed = []
    for number, block in enumerate(text[:-2].split("\n\n"), start=1):
        match = FRAME.fullmatch(block)
        assert match, block
        assert int(match.group(1)) == number
        parsed.append((number, match.group(2), int(match.group(3)), json.loads(match.group(4))))
    return parsed


def payloads(raw: bytes) -> list[dict[str, Any]]:
    """The data of result events, asserting each one's framing."""
    out = []
    for _, event, status, data in frames(raw):
        assert (event, status) == ("result", 200)
        out.append(data)
    return out


def message_of(event: dict[str, Any]) -> dict[str, Any]:
    return event["output"]["choices"][0]["message"]


def finish_of(event: dict[str, Any]) -> str:
    return event["output"]["choices"][0]["finish_reason"]


def native_error(r: httpx.Response, status: int) -> dict[str, Any]:
    """A non-stream native error: the status and a flat JSON body."""
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["code", "message", "request_id"]
    assert UUID.fullmatch(body["request_id"])
    return body


# -- non-stream bodies -------------------------------------------------------------------


def test_message_format_is_d1_shaped() -> None:
    f = fake(api_key=KEY).reply("我是通义千问。")
    r = post(f, body_for(result_format="message"), Authorization=f"Bearer {KEY}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["output", "usage", "request_id"]
    assert body["output"] == {
        "choices": [
            {"finish_reason": "stop", "message": {"role": "assistant", "content": "我是通义千问。"}}
        ]
    }
    assert list(body["output"]["choices"][0]) == ["finish_reason", "message"]
    assert list(body["usage"]) == ["input_tokens", "output_tokens", "total_tokens"]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    assert UUID.fullmatch(body["request_id"])
    assert b'"content":"\xe6\x88\x91' in r.content  # UTF-8, not \\u-escaped


def test_text_format_is_the_default() -> None:
    r = post(fake())
    body = r.json()
    assert body["output"] == {
        "text": "(offline fake qwen-plus) You said: 你好",
        "finish_reason": "stop",
    }
    assert list(body) == ["output", "usage", "request_id"]


def test_tool_call_is_d4_shaped() -> None:
    f = fake().tool_call("get_current_weather", {"location": "杭州市"})
    f.then(Reply(tool_calls=[ToolCallSpec("a", {}), ToolCallSpec("b", "{bad", id="call_x")]))
    body = post(f, body_for(result_format="message")).json()
    (choice,) = body["output"]["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert list(message) == ["role", "content", "tool_calls"] and message["content"] == ""
    (call,) = message["tool_calls"]
    assert list(call) == ["function", "index", "id", "type"]
    assert call["function"] == {"name": "get_current_weather", "arguments": '{"location":"杭州市"}'}
    assert call["index"] == 0 and call["type"] == "function" and CALL_ID.fullmatch(call["id"])
    # a tool call is answered in the choices shape even without result_format message
    calls = message_of(post(f).json())["tool_calls"]
    assert [(c["index"], c["id"], c["function"]["arguments"]) for c in calls][1] == (
        1,
        "call_x",
        "{bad",
    )


def test_reasoning_content_non_stream() -> None:
    f = fake().reply("答案是 4。", reasoning_content="2+2=4")
    body = post(f, body_for(result_format="message")).json()
    message = message_of(body)
    assert list(message) == ["role", "content", "reasoning_content"]
    assert message["reasoning_content"] == "2+2=4"
    assert body["usage"]["output_tokens_details"] == {"reasoning_tokens": 2}


def test_stream_field_in_the_body_is_ignored() -> None:
    f = fake()
    r = post(f, {**body_for(result_format="message"), "stream": True})
    assert r.headers["content-type"] == "application/json" and "output" in r.json()
    raw = stream_raw(f, {**body_for(**INCREMENTAL), "stream": False})
    assert finish_of(payloads(raw)[-1]) == "stop"


# -- streams: framing, incremental, cumulative ------------------------------------------------


D2_FIRST_EVENT = (
    'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":'
    '{"content":"你好","role":"assistant"},"finish_reason":"null"}]},"usage":'
    '{"total_tokens":12,"output_tokens":1,"input_tokens":11},"request_id":"RID"}\n\n'
)


def test_incremental_stream_is_byte_exact_d2() -> None:
    usage = {"total_tokens": 19, "output_tokens": 8, "input_tokens": 11}
    f = fake().then(Reply("你好！有", usage=usage, chunk_size=2))
    raw = stream_raw(f).decode("utf-8")
    rid = UUID.search(raw).group(0)  # type: ignore[union-attr]
    expected = D2_FIRST_EVENT.replace("RID", rid)
    expected += (
        'id:2\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":'
        '{"content":"！有","role":"assistant"},"finish_reason":"null"}]},"usage":'
        f'{{"total_tokens":13,"output_tokens":2,"input_tokens":11}},"request_id":"{rid}"}}\n\n'
        'id:3\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":'
        '{"content":"","role":"assistant"},"finish_reason":"stop"}]},"usage":'
        f'{{"total_tokens":19,"output_tokens":8,"input_tokens":11}},"request_id":"{rid}"}}\n\n'
    )
    assert raw == expected


def test_cumulative_stream_is_d3_shaped() -> None:
    f = fake().reply("你好！有什么可以帮你的？", chunk_size=4)
    events = payloads(stream_raw(f, body_for(result_format="message")))
    contents = [message_of(e)["content"] for e in events]
    assert contents == ["你好！有", "你好！有什么可以", "你好！有什么可以帮你的？"]
    assert [finish_of(e) for e in events] == ["null", "null", "stop"]  # no empty final event
    assert all(list(message_of(e)) == ["content", "role"] for e in events)


def test_cumulative_text_format_stream() -> None:
    f = fake().reply("abcdef", chunk_size=4)
    events = payloads(stream_raw(f, body_for()))
    assert [e["output"] for e in events] == [
        {"text": "abcd", "finish_reason": "null"},
        {"text": "abcdef", "finish_reason": "stop"},
    ]


def test_incremental_text_format_stream() -> None:
    f = fake().reply("abcdef", chunk_size=4)
    events = payloads(stream_raw(f, body_for(incremental_output=True)))
    assert [e["output"]["text"] for e in events] == ["abcd", "ef", ""]


def test_character_level_chunks_and_split_bytes() -> None:
    text = "通义🙂千问"
    f = fake(split_bytes=1).reply(text, chunk_size=1)
    body = body_for(result_format="message")
    with sse_client(f) as c, c.stream("POST", TEXT, json=body) as r:
        reads = list(r.iter_raw())
    assert all(len(read) == 1 for read in reads)  # UTF-8 characters split across reads
    contents = [message_of(e)["content"] for e in payloads(b"".join(reads))]
    assert contents == ["通", "通义", "通义🙂", "通义🙂千", "通义🙂千问"]


def test_null_finish_string_and_running_usage_on_every_event() -> None:
    f = fake().reply("一二三四五六七八九十", chunk_size=2).reply("一二三四五六七八九十")
    events = payloads(stream_raw(f))
    assert [finish_of(e) for e in events] == ["null"] * 5 + ["stop"]
    assert all(set(e["usage"]) == {"input_tokens", "output_tokens", "total_tokens"} for e in events)
    outputs = [e["usage"]["output_tokens"] for e in events]
    assert outputs == sorted(outputs) and outputs[0] < outputs[-1]
    assert {e["usage"]["input_tokens"] for e in events} == {1}
    assert {e["request_id"] for e in events} == {events[0]["request_id"]}
    final = post(f, body_for(result_format="message")).json()["usage"]
    assert events[-1]["usage"] == {
        k: final[k] for k in ("total_tokens", "output_tokens", "input_tokens")
    }


def test_reasoning_streams_first() -> None:
    f = fake().reply("好的", reasoning_content="想一想", chunk_size=2)
    events = payloads(stream_raw(f, body_for(enable_thinking=True, **INCREMENTAL)))
    messages = [message_of(e) for e in events]
    assert [m.get("reasoning_content") for m in messages] == ["想一", "想", None, None]
    assert [m["content"] for m in messages] == ["", "", "好的", ""]
    assert events[-1]["usage"]["output_tokens_details"] == {"reasoning_tokens": 1}
    cumulative = fake().reply("好的", reasoning_content="想一想", chunk_size=2)
    events = payloads(stream_raw(cumulative, body_for(result_format="message")))
    assert [message_of(e).get("reasoning_content") for e in events] == ["想一", "想一想", "想一想"]
    assert [message_of(e)["content"] for e in events] == ["", "", "好的"]


def test_incremental_tool_call_stream() -> None:
    f = fake().then(
        Reply(tool_calls=[ToolCallSpec("get_weather", {"city": "杭州"}), ToolCallSpec("f", {})])
    )
    events = payloads(stream_raw(f))
    calls = [message_of(e).get("tool_calls") for e in events]
    first = calls[0][0]
    assert first["function"] == {"name": "get_weather", "arguments": '{"ci'}
    assert CALL_ID.fullmatch(first["id"]) and first["index"] == 0 and first["type"] == "function"
    fragments = [c[0] for c in calls[1:-1] if c[0]["index"] == 0]
    assert all("name" not in c["function"] and c["id"] == "" for c in fragments)
    assert '{"ci' + "".join(c["function"]["arguments"] for c in fragments) == '{"city":"杭州"}'
    second = [c[0] for c in calls[1:-1] if c[0]["index"] == 1]
    assert len(second) == 1 and second[0]["function"] == {"name": "f", "arguments": "{}"}
    assert calls[-1] is None and message_of(events[-1])["content"] == ""
    assert [finish_of(e) for e in events][-2:] == ["null", "tool_calls"]


def test_cumulative_tool_call_stream() -> None:
    f = fake().tool_call("get_weather", {"city": "杭州"}, id="call_fixed")
    events = payloads(stream_raw(f, body_for(result_format="message")))
    arguments = [message_of(e)["tool_calls"][0]["function"]["arguments"] for e in events]
    assert arguments == ['{"ci', '{"city":', '{"city":"杭州"', '{"city":"杭州"}']
    assert all(
        message_of(e)["tool_calls"][0]["function"]["name"] == "get_weather"
        and message_of(e)["tool_calls"][0]["id"] == "call_fixed"
        for e in events
    )
    assert [finish_of(e) for e in events] == ["null", "null", "null", "tool_calls"]


def test_empty_reply_streams_one_final_event() -> None:
    (only,) = payloads(stream_raw(fake().reply(""), body_for(result_format="message")))
    assert message_of(only) == {"content": "", "role": "assistant"}
    assert finish_of(only) == "stop"


# -- errors -----------------------------------------------------------------------------------


FAILURES = [
    ("rate_limit", 429, "Throttling.RateQuota"),
    ("overloaded", 503, "ModelUnavailable"),
    ("arrears", 400, "Arrearage"),
    ("auth", 401, "InvalidApiKey"),
    ("content_filter", 400, "DataInspectionFailed"),
    ("context_length", 400, "InvalidParameter"),
    ("server_error", 500, "InternalError"),
    ("model_not_found", 404, "ModelNotFound"),
    ("bad_request", 400, "InvalidParameter"),
]


@pytest.mark.parametrize(("kind", "status", "code"), FAILURES)
def test_failure_kinds_non_stream(kind: str, status: int, code: str) -> None:
    assert native_error(post(fake().fail(kind)), status)["code"] == code


@pytest.mark.parametrize(("kind", "status", "code"), FAILURES)
def test_failure_kinds_on_stream_requests_are_sse_framed_json(
    kind: str, status: int, code: str
) -> None:
    r = post(fake().fail(kind), body_for(**INCREMENTAL), sse=True)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"  # the quirk: not event-stream
    with pytest.raises(json.JSONDecodeError):
        r.json()
    ((number, event, comment_status, data),) = frames(r.content)
    assert (number, event, comment_status) == (1, "error", status)
    assert list(data) == ["code", "message", "request_id"] and data["code"] == code


def test_d5_and_d6_messages() -> None:
    f = fake().fail("auth").fail("rate_limit").fail("content_filter").fail("arrears")
    assert native_error(post(f), 401)["message"] == "Invalid API-key provided."
    assert (
        native_error(post(f), 429)["message"]
        == "Requests rate limit exceeded, please try again later."
    )
    assert native_error(post(f), 400)["message"] == "Input data may contain inappropriate content."
    r = post(f, body_for(**INCREMENTAL), sse=True)
    rid = json.loads(r.text.split("data:", 1)[1])["request_id"]
    assert r.text == (
        'id:1\nevent:error\n:HTTP_STATUS/400\ndata:{"code":"Arrearage","message":"Access denied, '
        f'please make sure your account is in good standing.","request_id":"{rid}"}}\n\n'
    )
    f.fail("context_length")
    assert native_error(post(f), 400)["message"] == "Range of input length should be [1, 129024]"


def test_failure_overrides() -> None:
    f = fake().then(
        Failure(
            "rate_limit",
            code="Throttling.AllocationQuota",
            message="Free allocated quota exceeded.",
            headers={"Retry-After": "3"},
        )
    )
    f.fail("server_error", status=502)
    r = post(f)
    body = native_error(r, 429)
    assert body["code"] == "Throttling.AllocationQuota"
    assert body["message"] == "Free allocated quota exceeded." and r.headers["retry-after"] == "3"
    r = post(f, body_for(**INCREMENTAL), sse=True)
    assert r.status_code == 502 and ":HTTP_STATUS/502\n" in r.text


def test_mid_stream_error_is_d6_second_form() -> None:
    f = fake().then(MidStreamError(after_chunks=2, content="abcdefghijkl"))
    f.error_mid_stream(0, "rate_limit")
    parsed = frames(stream_raw(f))
    assert [(n, event, status) for n, event, status, _ in parsed] == [
        (1, "result", 200),
        (2, "result", 200),
        (3, "error", 400),
    ]
    assert [message_of(d)["content"] for _, _, _, d in parsed[:2]] == ["abcd", "efgh"]
    assert all(finish_of(d) == "null" for _, _, _, d in parsed[:2])
    error = parsed[2][3]
    assert error["code"] == "DataInspectionFailed"
    assert error["message"] == "Output data may contain inappropriate content."
    assert error["request_id"] == parsed[0][3]["request_id"]
    ((number, event, status, data),) = frames(stream_raw(f))
    assert (number, event, status, data["code"]) == (1, "error", 429, "Throttling.RateQuota")


def test_mid_stream_error_on_non_stream_request_is_the_plain_error() -> None:
    f = fake().error_mid_stream(1, "server_error", "abcdefgh")
    assert native_error(post(f), 500)["code"] == "InternalError"


def test_http_200_with_a_code_is_scripted_with_raw() -> None:
    """The two-layer error model (§3.6): an error inside HTTP 200, scripted byte for byte."""
    body = '{"code":"InvalidParameter","message":"Preprocessor error","request_id":"req-1"}'
    f = fake().raw(200, body, {"Content-Type": "application/json"})
    r = post(f)
    assert r.status_code == 200 and r.json()["code"] == "InvalidParameter"
    frame = f"id:1\nevent:error\n:HTTP_STATUS/400\ndata:{body}\n\n"
    f.raw(200, frame, {"Content-Type": "text/event-stream;charset=UTF-8"})
    assert frames(stream_raw(f))[0][1] == "error"


def test_stream_cut_and_sensitive() -> None:
    f = fake().cut_stream(2, "abcdefghijkl")
    f.then(StreamCut(after_chunks=1, content="abcdefgh", cut_raises=False))
    f.then(Sensitive(after_chunks=1, content="abcdefgh"))
    seen: list[bytes] = []
    body = body_for(**INCREMENTAL)
    raises = pytest.raises(httpx.RemoteProtocolError)
    with sse_client(f) as c, c.stream("POST", TEXT, json=body) as r, raises:
        for chunk in r.iter_raw():
            seen.append(chunk)
    assert [finish_of(e) for e in payloads(b"".join(seen))] == ["null", "null"]
    (only,) = payloads(stream_raw(f))
    assert finish_of(only) == "null"
    events = payloads(stream_raw(f))
    assert [(message_of(e)["content"], finish_of(e)) for e in events] == [
        ("abcd", "null"),
        ("", "content_filter"),
    ]
    f.sensitive(1, "abcdefgh").cut_stream(1, "abcdefgh")
    assert finish_of(post(f, body_for(result_format="message")).json()) == "content_filter"
    with pytest.raises(httpx.RemoteProtocolError):
        post(f)


# -- admission: key, region, workspace, model ----------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", KEY])
def test_bad_or_missing_key_is_d5_401(authorization: str | None) -> None:
    f = fake(api_key=KEY).reply("kept")
    headers = {} if authorization is None else {"Authorization": authorization}
    body = native_error(post(f, **headers), 401)
    assert (body["code"], body["message"]) == ("InvalidApiKey", "Invalid API-key provided.")
    r = post(f, body_for(result_format="message"), Authorization=f"Bearer {KEY}")
    assert message_of(r.json())["content"] == "kept"  # rejections consumed nothing


def test_auth_rejection_on_a_stream_request_is_sse_framed() -> None:
    r = post(fake(api_key=KEY), body_for(**INCREMENTAL), sse=True)
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"
    assert frames(r.content)[0][3]["code"] == "InvalidApiKey"


def test_region_hosts_and_workspaces() -> None:
    intl = fake(host=INTL)
    assert intl.base_url == f"https://{INTL}/api/v1"
    r = post(
        intl, url=TEXT.replace("dashscope.aliyuncs.com", INTL), **{"X-DashScope-WorkSpace": "ws-1"}
    )
    assert r.status_code == 200
    assert native_error(post(intl), 401)["code"] == "InvalidApiKey"  # keys are region-bound
    assert native_error(post(fake(), url=TEXT.replace("dashscope.aliyuncs.com", INTL)), 401)
    assert intl.workspaces == ["ws-1", None]


def test_model_checks() -> None:
    f = fake(model_names={"qwen-plus"})
    assert post(f).status_code == 200
    body = native_error(post(f, body_for("qwen-nope")), 404)
    assert body["code"] == "ModelNotFound"
    r = post(f, {"input": {"messages": HELLO}})
    assert native_error(r, 400)["code"] == "BadRequest.EmptyModel"


def test_respx_routing() -> None:
    f = fake().reply("经由 respx")
    with respx.mock:
        respx.route(host="dashscope.aliyuncs.com").mock(side_effect=f.handler)
        r = httpx.post(TEXT, json=body_for(result_format="message"))
    assert message_of(r.json())["content"] == "经由 respx"


# -- request rules ------------------------------------------------------------------------------


def invalid(r: httpx.Response) -> str:
    body = native_error(r, 400)
    assert body["code"] == "InvalidParameter"
    return body["message"]


def test_message_rules() -> None:
    f = fake().reply("kept")
    assert "role of user" in invalid(post(f, body_for(messages=[])))
    ending_with_assistant = [*HELLO, {"role": "assistant", "content": "你好！"}]
    message = invalid(post(f, body_for(messages=ending_with_assistant)))
    assert "last message's role must be user, function or tool" in message
    assert "role" in invalid(post(f, body_for(messages=[{"role": "robot", "content": "x"}])))
    tool_turn = [
        *HELLO,
        {"role": "assistant", "content": "", "tool_calls": []},
        {"role": "tool", "content": "晴", "tool_call_id": "call_1", "name": "get_weather"},
    ]
    assert post(f, body_for(messages=tool_turn)).json()["output"]["text"] == "kept"


def test_legacy_prompt_input() -> None:
    r = post(fake(), {"model": "qwen-turbo", "input": {"prompt": "你好"}})
    assert r.json()["output"]["text"].endswith("You said: 你好")
    assert invalid(post(fake(), {"model": "qwen-turbo", "input": {}})).startswith("Either")
    r = post(fake(), {"model": "qwen-turbo"})
    assert native_error(r, 400)["code"] == "BadRequest.EmptyInput"


def test_json_object_needs_the_word_json() -> None:
    f = fake()
    fmt = {"type": "json_object"}
    message = invalid(post(f, body_for(response_format=fmt)))
    assert message == (
        "'messages' must contain the word 'json' in some form, to use 'response_format' of "
        "type 'json_object'."
    )
    asks = [{"role": "system", "content": "Answer in JSON."}, *HELLO]
    assert post(f, body_for(messages=asks, response_format=fmt)).status_code == 200
    assert post(f, body_for(response_format={"type": "text"})).status_code == 200


def test_multimodal_routing_and_list_content() -> None:
    f = fake().reply("一只猫。", chunk_size=2).reply("一只猫。", chunk_size=2)
    picture = [
        {"role": "user", "content": [{"image": "https://x/cat.png"}, {"text": "这是什么？"}]}
    ]
    assert invalid(post(f, body_for("qwen-vl-max", picture))) == "url error"
    assert invalid(post(f, body_for("qwen-plus", picture), url=MULTIMODAL)) == "url error"
    assert "image" in invalid(post(f, body_for("qwen-plus", picture)))
    body = post(f, body_for("qwen-vl-max", picture), url=MULTIMODAL).json()
    assert message_of(body)["content"] == [{"text": "一只猫。"}]
    events = payloads(stream_raw(f, body_for("qwen-vl-max", picture, **INCREMENTAL), MULTIMODAL))
    assert [message_of(e)["content"] for e in events] == [
        [{"text": "一只"}],
        [{"text": "猫。"}],
        [],
    ]
    echo = post(f, body_for("qvq-max", picture), url=MULTIMODAL).json()
    assert message_of(echo)["content"] == [{"text": "(offline fake qvq-max) You said: 这是什么？"}]


def test_custom_multimodal_models() -> None:
    f = fake(multimodal_models={"my-vision"})
    assert post(f, body_for("my-vision"), url=MULTIMODAL).status_code == 200
    assert post(f, body_for("qwen-vl-max")).status_code == 200


def test_stream_only_models() -> None:
    f = fake()
    expected = (
        "This model only support stream mode, please enable the stream parameter to access the "
        "model."
    )
    assert invalid(post(f, body_for("qwq-plus"))) == expected
    assert invalid(post(f, body_for("qwq-32b", result_format="message"))) == expected
    assert stream_raw(f, body_for("qwq-plus", **INCREMENTAL))
    r = post(f, body_for("qwq-plus", result_format="message"), sse=True)
    assert frames(r.content)[0][1] == "error" and r.status_code == 400
    custom = fake(stream_only_models={"qwen3-235b-a22b-thinking-2507"})
    assert post(custom, body_for("qwq-plus")).status_code == 200
    assert post(custom, body_for("qwen3-235b-a22b-thinking-2507")).status_code == 400


def test_thinking_needs_incremental_output() -> None:
    f = fake()
    cumulative = body_for(result_format="message", enable_thinking=True)
    r = post(f, cumulative, sse=True)
    assert r.status_code == 400
    (_, event, status, data) = frames(r.content)[0]
    assert (event, status, data["code"]) == ("error", 400, "InvalidParameter")
    assert "incremental_output" in data["message"]
    assert stream_raw(f, body_for(enable_thinking=True, **INCREMENTAL))
    assert post(f, body_for(enable_thinking=False), sse=True).status_code == 200


def test_incremental_output_needs_a_stream() -> None:
    message = invalid(post(fake(), body_for(**INCREMENTAL)))
    assert message == "parameter incremental_output only support stream call"


def test_invalid_json_body() -> None:
    with httpx.Client(transport=fake().transport()) as c:
        r = c.post(TEXT, content=b"{not json", headers={"Content-Type": "application/json"})
    assert native_error(r, 400)["code"] == "InvalidParameter"


async def test_async_client_stream_and_error() -> None:
    f = fake(api_key=KEY, split_bytes=7).reply("异步你好").fail("rate_limit")
    headers = {"Authorization": f"Bearer {KEY}", **SSE}
    async with httpx.AsyncClient(transport=f.transport(), headers=headers) as c:
        async with c.stream("POST", TEXT, json=body_for(**INCREMENTAL)) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
        events = payloads(raw)
        assert "".join(message_of(e)["content"] for e in events) == "异步你好"
        r = await c.post(TEXT, json=body_for(**INCREMENTAL))
        assert r.status_code == 429 and frames(r.content)[0][3]["code"] == "Throttling.RateQuota"


# -- embeddings -----------------------------------------------------------------------------------


def embed(f: FakeDashScope, texts: Any, model: str = "text-embedding-v3", **parameters: Any):
    body = {"model": model, "input": {"texts": texts}, "parameters": parameters}
    with httpx.Client(transport=f.transport()) as c:
        return c.post(EMBED, json=body)


def test_embeddings_are_d7_shaped_and_shuffled() -> None:
    texts = ["衣服的质量杠杠的", "很好", "不错"]
    body = embed(fake(), texts, text_type="query").json()
    assert list(body) == ["output", "usage", "request_id"]
    assert list(body["usage"]) == ["total_tokens"]
    items = body["output"]["embeddings"]
    assert [item["text_index"] for item in items] == [2, 1, 0]  # clients must sort
    assert all(list(item) == ["embedding", "text_index"] for item in items)
    assert all(len(item["embedding"]) == 1024 for item in items)
    again = embed(fake(), ["很好"]).json()["output"]["embeddings"][0]["embedding"]
    assert items[1]["embedding"] == again  # deterministic per text


@pytest.mark.parametrize(
    ("model", "dimension", "size"),
    [
        ("text-embedding-v3", None, 1024),
        ("text-embedding-v3", 512, 512),
        ("text-embedding-v3", 64, 64),
        ("text-embedding-v4", 2048, 2048),
        ("text-embedding-v4", 1536, 1536),
        ("text-embedding-v2", None, 1536),
    ],
)
def test_embedding_dimensions(model: str, dimension: int | None, size: int) -> None:
    parameters = {} if dimension is None else {"dimension": dimension}
    item = embed(fake(), ["x"], model, **parameters).json()["output"]["embeddings"][0]
    assert len(item["embedding"]) == size


@pytest.mark.parametrize(
    ("model", "dimension"), [("text-embedding-v3", 2048), ("text-embedding-v4", 100)]
)
def test_embedding_bad_dimension(model: str, dimension: int) -> None:
    assert "dimension" in invalid(embed(fake(), ["x"], model, dimension=dimension))


def test_embedding_batch_limits() -> None:
    f = fake()
    assert embed(f, ["t"] * 10).status_code == 200
    message = invalid(embed(f, ["t"] * 11))
    assert message == "batch size is invalid, it should not be larger than 10."
    assert invalid(embed(f, ["t"] * 11, "text-embedding-v4")).endswith("larger than 10.")
    assert embed(f, ["t"] * 25, "text-embedding-v1").status_code == 200
    assert invalid(embed(f, ["t"] * 26, "text-embedding-v2")).endswith("larger than 25.")
    assert "texts" in invalid(embed(f, []))
    assert "texts" in invalid(embed(f, "一段文字"))


def test_embeddings_take_only_failures_from_the_queue() -> None:
    f = fake(api_key=KEY).reply("for chat").fail("rate_limit")
    assert native_error(embed(f, ["x"]), 401)["code"] == "InvalidApiKey"
    with httpx.Client(transport=f.transport(), headers={"Authorization": f"Bearer {KEY}"}) as c:
        body = {"model": "text-embedding-v3", "input": {"texts": ["x"]}}
        assert c.post(EMBED, json=body).status_code == 200  # reply stays queued
        assert c.post(TEXT, json=body_for()).json()["output"]["text"] == "for chat"
        assert native_error(c.post(EMBED, json=body), 429)["code"] == "Throttling.RateQuota"


# -- compatible mode -------------------------------------------------------------------------------


def cfake(**kwargs: Any) -> FakeDashScopeCompatible:
    return FakeDashScopeCompatible(clock=lambda: NOW, **kwargs)


def cpost(f: FakeDashScopeCompatible, url: str = COMPAT_CHAT, **body: Any) -> httpx.Response:
    body.setdefault("model", "qwen-plus")
    if url == COMPAT_CHAT:
        body.setdefault("messages", HELLO)
    with httpx.Client(transport=f.transport()) as c:
        return c.post(url, json=body)


def openai_events(raw: bytes) -> list[str]:
    text = raw.decode("utf-8")
    assert text.endswith("\n\n")
    blocks = text[:-2].split("\n\n")
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks)
    return [block[len("data: ") :] for block in blocks]


D8 = (
    'data: {"choices":[{"delta":{"content":"","role":"assistant"},"index":0,"logprobs":null,'
    '"finish_reason":null}],"object":"chat.completion.chunk","usage":null,"created":1770343445,'
    '"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-ID"}\n\n'
    'data: {"choices":[{"finish_reason":"stop","delta":{"content":"我是通义千问。"},"index":0,'
    '"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1770343445,'
    '"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-ID"}\n\n'
    'data: {"choices":[],"object":"chat.completion.chunk","usage":{"prompt_tokens":11,'
    '"completion_tokens":7,"total_tokens":18,"prompt_tokens_details":{"cached_tokens":0}},'
    '"created":1770343445,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-ID"}\n\n'
    "data: [DONE]\n\n"
)


def test_compat_stream_is_byte_exact_d8() -> None:
    usage = {
        "prompt_tokens": 11,
        "completion_tokens": 7,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    f = cfake().then(Reply("我是通义千问。", usage=usage, chunk_size=8))
    r = cpost(f, stream=True, stream_options={"include_usage": True})
    assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
    uuid = re.search(r"chatcmpl-([0-9a-f-]{36})", r.text).group(1)  # type: ignore[union-attr]
    assert UUID.fullmatch(uuid)
    assert r.text == D8.replace("ID", uuid)


def test_compat_stream_without_include_usage() -> None:
    r = cpost(cfake().reply("你好呀朋友们", chunk_size=2), stream=True)
    events = openai_events(r.content)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["usage"] is None and len(c["choices"]) == 1 for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "你好呀朋友们"
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, None, None, "stop"]


def test_compat_non_stream_shape() -> None:
    f = cfake(api_key=KEY).reply("你好", reasoning_content="想")
    with httpx.Client(transport=f.transport(), headers={"Authorization": f"Bearer {KEY}"}) as c:
        body = c.post(COMPAT_CHAT, json={"model": "qwen-plus", "messages": HELLO}).json()
    assert list(body) == [
        "choices",
        "object",
        "usage",
        "created",
        "system_fingerprint",
        "model",
        "id",
    ]
    assert re.fullmatch(r"chatcmpl-" + UUID.pattern, body["id"])
    assert body["object"] == "chat.completion" and body["created"] == int(NOW)
    assert body["choices"] == [
        {
            "message": {"role": "assistant", "content": "你好", "reasoning_content": "想"},
            "finish_reason": "stop",
            "index": 0,
            "logprobs": None,
        }
    ]
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}


def test_compat_tool_calls() -> None:
    f = (
        cfake()
        .tool_call("get_weather", {"city": "杭州"})
        .tool_call("get_weather", {"city": "杭州"})
    )
    (call,) = cpost(f).json()["choices"][0]["message"]["tool_calls"]
    assert CALL_ID.fullmatch(call["id"]) and call["function"]["arguments"] == '{"city":"杭州"}'
    chunks = [json.loads(e) for e in openai_events(cpost(f, stream=True).content)[:-1]]
    deltas = [c["choices"][0]["delta"].get("tool_calls") for c in chunks]
    tools = [d[0] for d in deltas if d]
    assert tools[0]["function"]["name"] == "get_weather" and CALL_ID.fullmatch(tools[0]["id"])
    assert "".join(t["function"]["arguments"] for t in tools) == '{"city":"杭州"}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


COMPAT_FAILURES = [
    ("rate_limit", 429, "limit_requests"),
    ("overloaded", 503, "ModelUnavailable"),
    ("arrears", 400, "Arrearage"),
    ("auth", 401, "invalid_api_key"),
    ("content_filter", 400, "data_inspection_failed"),
    ("context_length", 400, "invalid_parameter_error"),
    ("server_error", 500, "internal_error"),
    ("model_not_found", 404, "model_not_found"),
    ("bad_request", 400, "invalid_parameter_error"),
]


@pytest.mark.parametrize(("kind", "status", "code"), COMPAT_FAILURES)
@pytest.mark.parametrize("stream", [False, True])
def test_compat_failures(kind: str, status: int, code: str, stream: bool) -> None:
    r = cpost(cfake().fail(kind), stream=stream)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["error", "id", "request_id"]
    assert list(body["error"]) == ["code", "param", "message", "type"]
    assert body["error"]["code"] == code and body["error"]["param"] is None
    assert body["id"] == f"chatcmpl-{body['request_id']}"


def test_compat_d8_error_bodies() -> None:
    f = cfake().fail("content_filter").fail("arrears").fail("auth")
    assert cpost(f).json()["error"] == {
        "code": "data_inspection_failed",
        "param": None,
        "message": "Input text data may contain inappropriate content.",
        "type": "data_inspection_failed",
    }
    error = cpost(f).json()["error"]
    assert (error["code"], error["type"]) == ("Arrearage", "Arrearage")
    assert error["message"] == "Access denied, please make sure your account is in good standing."
    assert cpost(f).json()["error"]["message"] == "Incorrect API key provided."


def test_compat_admission_and_rules() -> None:
    f = cfake(api_key=KEY, model_names={"qwen-plus", "qwq-plus"}, host=INTL)
    r = cpost(f)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    headers = {"Authorization": f"Bearer {KEY}", "X-DashScope-WorkSpace": "ws-9"}
    url = COMPAT_CHAT.replace("dashscope.aliyuncs.com", INTL)
    with httpx.Client(transport=f.transport(), headers=headers) as c:
        assert c.post(url, json={"model": "qwen-plus", "messages": HELLO}).status_code == 200
        r = c.post(url, json={"model": "qwen-max", "messages": HELLO})
        assert r.status_code == 404 and "`qwen-max`" in r.json()["error"]["message"]
        r = c.post(url, json={"model": "qwq-plus", "messages": HELLO})
        assert r.status_code == 400 and "only support stream mode" in r.json()["error"]["message"]
        fmt = {"type": "json_object"}
        r = c.post(url, json={"model": "qwen-plus", "messages": HELLO, "response_format": fmt})
        assert r.status_code == 400 and "word 'json'" in r.json()["error"]["message"]
        r = c.post(url, json={"model": "qwen-plus", "messages": []})
        assert r.json()["error"]["code"] == "invalid_parameter_error"
    assert f.workspaces == [None, "ws-9", "ws-9", "ws-9", "ws-9", "ws-9"]


def test_compat_mid_stream_error_sensitive_and_cut() -> None:
    f = cfake().error_mid_stream(1, "content_filter", "abcdefgh")
    events = openai_events(cpost(f, stream=True).content)
    assert "[DONE]" not in events and len(events) == 3
    assert json.loads(events[-1]) == {
        "error": {
            "message": "Output data may contain inappropriate content.",
            "type": "data_inspection_failed",
            "param": None,
            "code": "data_inspection_failed",
        }
    }
    f.sensitive(1, "abcdefgh")
    events = openai_events(cpost(f, stream=True).content)
    assert events[-1] == "[DONE]"
    assert json.loads(events[-2])["choices"][0]["finish_reason"] == "content_filter"
    f.cut_stream(1, "abcdefgh")
    with pytest.raises(httpx.RemoteProtocolError):
        cpost(f, stream=True)


def test_compat_embeddings() -> None:
    f = cfake()
    body = cpost(
        f, COMPAT_EMBED, model="text-embedding-v3", input=["a", "b"], dimensions=256
    ).json()
    assert list(body) == ["data", "model", "object", "usage", "id"]
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(len(d["embedding"]) == 256 and d["object"] == "embedding" for d in body["data"])
    assert list(body["usage"]) == ["prompt_tokens", "total_tokens"]
    assert len(cpost(f, COMPAT_EMBED, input="单条").json()["data"]) == 1
    r = cpost(f, COMPAT_EMBED, model="text-embedding-v3", input=["t"] * 11)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "batch size is invalid, it should not be larger than 10."


async def test_compat_async_stream() -> None:
    f = cfake(split_bytes=5).reply("异步你好")
    body = {"model": "qwen-plus", "messages": HELLO, "stream": True}
    async with (
        httpx.AsyncClient(transport=f.transport()) as c,
        c.stream("POST", COMPAT_CHAT, json=body) as r,
    ):
        raw = b"".join([chunk async for chunk in r.aiter_raw()])
    events = openai_events(raw)
    assert events[-1] == "[DONE]"
    text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1])
    assert text == "异步你好"
