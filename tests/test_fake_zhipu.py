"""FakeZhipu speaks Zhipu GLM v4's native wire format (docs/providers/zhipu.md: "The fake")."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from typing import Any

import httpx
import pytest
import respx
from helpers import sse_payloads

from llm_bridge.testing import (
    Failure,
    FakeZhipu,
    MidStreamError,
    Raw,
    Reply,
    Sensitive,
    StreamCut,
    ToolCallSpec,
)

NOW = 1721614853.0
BASE = FakeZhipu.base_url
CHAT = f"{BASE}/chat/completions"
EMBED = f"{BASE}/embeddings"
KEY = "2f8cd1.Xy7Qsecret"
HELLO = [{"role": "user", "content": "你好"}]


def fake(**kwargs: Any) -> FakeZhipu:
    return FakeZhipu(clock=lambda: NOW, **kwargs)


def client(f: FakeZhipu, **headers: str) -> httpx.Client:
    return httpx.Client(transport=f.transport(), headers=headers)


def chat(f: FakeZhipu, **body: Any) -> httpx.Response:
    body.setdefault("model", "glm-4-flash")
    body.setdefault("messages", HELLO)
    with client(f) as c:
        return c.post(CHAT, json=body)


def stream_chunks(f: FakeZhipu, **body: Any) -> list[bytes]:
    """The raw reads of a streamed chat response."""
    body.setdefault("model", "glm-4")
    body.setdefault("messages", HELLO)
    with client(f) as c, c.stream("POST", CHAT, json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream; charset=UTF-8"
        return list(r.iter_raw())


events = sse_payloads  # (Z2 framing)


def jwt(key: str, *, exp_ms: int, ts_ms: int, alg: str = "HS256") -> str:
    key_id, secret = key.split(".")

    def part(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing = (
        part({"alg": alg, "sign_type": "SIGN"})
        + "."
        + part({"api_key": key_id, "exp": exp_ms, "timestamp": ts_ms})
    )
    sig = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()


# -- non-stream -----------------------------------------------------------------------------


def test_default_reply_is_z1_shaped_echo_without_object_field() -> None:
    f = fake()
    r = chat(f)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["choices", "created", "id", "model", "request_id", "usage"]
    assert "object" not in body
    assert body["created"] == int(NOW)
    assert body["model"] == "glm-4-flash"
    assert body["request_id"] == body["id"]
    assert len(body["id"]) == 46 and body["id"][:14].isdigit()
    assert body["choices"] == [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {
                "content": "(offline fake glm-4-flash) You said: 你好",
                "role": "assistant",
            },
        }
    ]
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    # compact, non-escaped JSON, byte for byte
    assert (
        r.content
        == json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode()
    )


def test_scripted_reply_echoes_request_id_and_usage() -> None:
    f = fake()
    f.reply("hi", usage={"prompt_tokens": 6, "completion_tokens": 31, "total_tokens": 37})
    body = chat(f, request_id="req-123").json()
    assert body["request_id"] == "req-123"
    assert body["choices"][0]["message"]["content"] == "hi"
    assert body["usage"] == {"completion_tokens": 31, "prompt_tokens": 6, "total_tokens": 37}
    assert f.last_json["request_id"] == "req-123"
    assert len(f.requests) == 1


def test_usage_is_deterministic_from_text_lengths() -> None:
    f = fake().reply("12345678")
    messages = [{"role": "system", "content": "abcd"}, {"role": "user", "content": "abcdefgh"}]
    usage = chat(f, messages=messages).json()["usage"]
    assert usage == {"completion_tokens": 4, "prompt_tokens": 2 + 4, "total_tokens": 10}


def test_tool_call_non_stream_is_z3_shaped() -> None:
    f = fake().tool_call("get_weather", {"city": "北京"})
    choice = chat(f, model="glm-4-plus").json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    (call,) = message["tool_calls"]
    assert list(call) == ["function", "id", "index", "type"]
    assert call["id"].startswith("call_") and call["id"][5:].isdigit()
    assert call["index"] == 0 and call["type"] == "function"
    assert call["function"] == {"arguments": '{"city":"北京"}', "name": "get_weather"}


def test_reasoning_content_and_explicit_tool_call_id() -> None:
    f = fake().then(
        Reply("答", reasoning_content="想", tool_calls=[ToolCallSpec("f", "{bad", id="call_1")])
    )
    message = chat(f).json()["choices"][0]["message"]
    assert message["content"] == "答"
    assert message["reasoning_content"] == "想"
    assert message["tool_calls"][0]["id"] == "call_1"
    assert message["tool_calls"][0]["function"]["arguments"] == "{bad"


def test_sensitive_non_stream() -> None:
    f = fake().sensitive(1, "abcdefgh")
    choice = chat(f).json()["choices"][0]
    assert choice["finish_reason"] == "sensitive"
    assert choice["message"]["content"] == "abcd"


def test_raw_is_byte_exact() -> None:
    f = fake().raw(502, b"<html>bad gateway</html>", {"Content-Type": "text/html"})
    r = chat(f)
    assert (r.status_code, r.content, r.headers["content-type"]) == (
        502,
        b"<html>bad gateway</html>",
        "text/html",
    )


def test_model_check() -> None:
    f = fake(model_names={"glm-4-flash"})
    assert chat(f).status_code == 200
    r = chat(f, model="glm-9")
    assert r.status_code == 400
    assert r.json() == {"error": {"code": "1211", "message": "模型不存在，请检查模型代码。"}}


# -- failures -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("rate_limit", 429, "1302"),
        ("overloaded", 429, "1305"),
        ("arrears", 429, "1113"),
        ("auth", 401, "1002"),
        ("content_filter", 400, "1301"),
        ("context_length", 400, "1261"),
        ("server_error", 500, "500"),
        ("model_not_found", 400, "1211"),
        ("bad_request", 400, "1214"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_failure_kinds_render_native_codes(kind: str, status: int, code: str, stream: bool) -> None:
    f = fake().fail(kind)
    r = chat(f, stream=stream)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert list(r.json()) == ["error"]
    assert error["code"] == code and isinstance(error["message"], str) and error["message"]


def test_failure_messages_and_overrides() -> None:
    f = fake().fail("rate_limit", headers={"Retry-After": "3"})
    f.fail("arrears").fail("context_length")
    f.then(Failure("server_error", status=503, code="1234", message="boom"))
    r = chat(f)
    assert r.headers["retry-after"] == "3"
    assert r.json()["error"]["message"] == "您的账户已达到速率限制，请您控制请求频率"
    assert chat(f).json()["error"]["message"] == "您的账户已欠费，请充值后重试"
    assert chat(f).json()["error"]["message"] == "Prompt 超过最大长度"
    r = chat(f)
    assert r.status_code == 503
    assert r.json() == {"error": {"code": "1234", "message": "boom"}}


def test_unknown_failure_kind_is_rejected_when_scripted() -> None:
    with pytest.raises(ValueError):
        Failure("nope")


# -- auth -----------------------------------------------------------------------------------


def auth_status(f: FakeZhipu, authorization: str | None) -> tuple[int, str | None]:
    headers = {} if authorization is None else {"Authorization": authorization}
    with client(f, **headers) as c:
        r = c.post(CHAT, json={"model": "glm-4", "messages": HELLO})
    return r.status_code, (r.json().get("error") or {}).get("code")


def test_auth_accepts_raw_key_and_jwt() -> None:
    f = fake(api_key=KEY)
    now_ms = int(NOW * 1000)
    token = jwt(KEY, exp_ms=now_ms + 210_000, ts_ms=now_ms)
    assert auth_status(f, f"Bearer {KEY}") == (200, None)
    assert auth_status(f, f"Bearer {token}") == (200, None)
    assert auth_status(f, token) == (200, None)


def test_auth_rejections() -> None:
    f = fake(api_key=KEY)
    now_ms = int(NOW * 1000)
    assert auth_status(f, "Bearer other.key") == (401, "1002")
    assert auth_status(f, None) == (401, "1001")  # (no header: protocols.md §1.9)
    expired = jwt(KEY, exp_ms=now_ms - 1, ts_ms=now_ms - 210_000)
    assert auth_status(f, f"Bearer {expired}") == (401, "1003")
    wrong_secret = jwt("2f8cd1.other", exp_ms=now_ms + 210_000, ts_ms=now_ms)
    assert auth_status(f, wrong_secret) == (401, "1002")
    in_seconds = jwt(KEY, exp_ms=int(NOW) + 210, ts_ms=int(NOW))
    assert auth_status(f, in_seconds)[0] == 401
    assert auth_status(f, jwt(KEY, exp_ms=now_ms + 1000, ts_ms=now_ms, alg="HS512"))[1] == "1002"


def test_auth_failure_body_and_no_outcome_consumed() -> None:
    f = fake(api_key=KEY).reply("kept")
    with client(f, Authorization="Bearer other.key") as c:
        r = c.post(CHAT, json={"model": "glm-4", "messages": HELLO})
    message = "Authorization Token非法，请确认Authorization Token正确传递。"
    assert r.json() == {"error": {"code": "1002", "message": message}}
    with client(f, Authorization=f"Bearer {KEY}") as c:
        r = c.post(CHAT, json={"model": "glm-4", "messages": HELLO})
    assert r.json()["choices"][0]["message"]["content"] == "kept"
    assert len(f.requests) == 2


# -- streaming ------------------------------------------------------------------------------


def test_stream_matches_z2_framing() -> None:
    f = fake().reply("人工智能助手。")
    chunks = stream_chunks(f)
    assert all(chunk.startswith(b"data: ") for chunk in chunks)  # one read per event
    payloads = events(b"".join(chunks))
    assert payloads[-1] == "[DONE]"
    parsed = [json.loads(p) for p in payloads[:-1]]
    *middle, last = parsed
    assert [list(c) for c in middle] == [["id", "created", "model", "choices"]] * 2
    for chunk in middle:
        (choice,) = chunk["choices"]
        assert "finish_reason" not in choice
        assert choice["delta"]["role"] == "assistant"
        assert "usage" not in chunk and "object" not in chunk
    assert [c["choices"][0]["delta"]["content"] for c in middle] == ["人工智能", "助手。"]
    assert list(last) == ["id", "created", "model", "choices", "usage"]
    assert last["choices"] == [
        {"index": 0, "finish_reason": "stop", "delta": {"role": "assistant", "content": ""}}
    ]
    assert list(last["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    assert len({c["id"] for c in parsed}) == 1
    assert payloads[0].startswith('{"id":"') and '"content":"人工智能"' in payloads[0]


def test_stream_reasoning_before_content() -> None:
    f = fake().reply("ab", reasoning_content="think", chunk_size=3)
    parsed = [json.loads(p) for p in events(b"".join(stream_chunks(f)))[:-1]]
    deltas = [c["choices"][0]["delta"] for c in parsed]
    assert deltas[:3] == [
        {"role": "assistant", "reasoning_content": "thi"},
        {"role": "assistant", "reasoning_content": "nk"},
        {"role": "assistant", "content": "ab"},
    ]


def test_stream_tool_call_single_chunk_with_usage() -> None:
    f = fake().tool_call("get_weather", {"city": "北京"}, id="call_1")
    payloads = events(b"".join(stream_chunks(f, model="glm-4-plus")))
    assert len(payloads) == 2 and payloads[1] == "[DONE]"
    chunk = json.loads(payloads[0])
    (choice,) = chunk["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["delta"]["tool_calls"] == [
        {
            "id": "call_1",
            "index": 0,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"北京"}'},
        }
    ]
    assert "usage" in chunk


def test_split_bytes_rechunks_same_bytes() -> None:
    whole = b"".join(stream_chunks(fake().reply("人工智能助手。")))
    pieces = stream_chunks(fake(split_bytes=3).reply("人工智能助手。"))
    assert b"".join(pieces) == whole
    assert all(len(p) == 3 for p in pieces[:-1]) and len(pieces) > 50


def test_sensitive_stream_ends_with_sensitive_finish() -> None:
    f = fake().then(Sensitive(after_chunks=1, content="abcdefgh"))
    payloads = events(b"".join(stream_chunks(f)))
    assert payloads[-1] == "[DONE]"
    first, last = (json.loads(p) for p in payloads[:-1])
    assert first["choices"][0]["delta"]["content"] == "abcd"
    assert last["choices"][0]["finish_reason"] == "sensitive"
    assert "usage" in last


def test_mid_stream_error_event_then_close() -> None:
    f = fake().then(MidStreamError(after_chunks=1, kind="content_filter", content="abcdefgh"))
    payloads = events(b"".join(stream_chunks(f)))
    assert len(payloads) == 2
    assert json.loads(payloads[1])["error"]["code"] == "1301"
    assert list(json.loads(payloads[1])) == ["error"]


def test_stream_cut_raises_remote_protocol_error() -> None:
    f = fake().cut_stream(2, "abcdefghijkl")
    seen: list[bytes] = []
    body = {"model": "glm-4", "messages": HELLO, "stream": True}
    cut = pytest.raises(httpx.RemoteProtocolError, match="peer closed connection")
    with client(f) as c, c.stream("POST", CHAT, json=body) as r, cut:
        for chunk in r.iter_raw():
            seen.append(chunk)
    assert len(seen) == 2 and b"[DONE]" not in b"".join(seen)


def test_stream_cut_clean_eof() -> None:
    f = fake().then(StreamCut(after_chunks=1, content="abcdefgh", cut_raises=False))
    payloads = events(b"".join(stream_chunks(f)))
    assert len(payloads) == 1 and "[DONE]" not in payloads


def test_stream_cut_on_non_stream_request() -> None:
    f = fake().cut_stream(0, "hello")
    with pytest.raises(httpx.RemoteProtocolError):
        chat(f)


async def test_async_client_stream_and_cut() -> None:
    f = fake(split_bytes=5).reply("异步你好").cut_stream(1, "abcdefgh")
    body = {"model": "glm-4", "messages": HELLO, "stream": True}
    async with httpx.AsyncClient(transport=f.transport()) as c:
        async with c.stream("POST", CHAT, json=body) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
        assert events(raw)[-1] == "[DONE]"
        async with c.stream("POST", CHAT, json=body) as r:
            with pytest.raises(httpx.RemoteProtocolError):
                async for _ in r.aiter_raw():
                    pass
        r = await c.post(CHAT, json={"model": "glm-4", "messages": HELLO})
        assert r.json()["choices"][0]["message"]["content"].endswith("You said: 你好")


# -- embeddings -----------------------------------------------------------------------------


def embed(f: FakeZhipu, **body: Any) -> httpx.Response:
    with client(f) as c:
        return c.post(EMBED, json=body)


def test_embeddings_z7_shape_and_dimensions() -> None:
    f = fake()
    r = embed(f, model="embedding-3", input=["智谱AI是一家专注于大模型的公司"], dimensions=256)
    body = r.json()
    assert list(body) == ["data", "model", "object", "usage"]
    assert body["object"] == "list" and body["model"] == "embedding-3"
    (item,) = body["data"]
    assert list(item) == ["embedding", "index", "object"]
    assert item["object"] == "embedding" and item["index"] == 0
    assert len(item["embedding"]) == 256
    assert body["usage"]["completion_tokens"] == 0
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    again = embed(f, model="embedding-3", input="智谱AI是一家专注于大模型的公司", dimensions=256)
    assert again.json()["data"][0]["embedding"] == item["embedding"]
    default = embed(f, model="embedding-3", input="x").json()["data"][0]["embedding"]
    assert len(default) == 2048
    fixed = embed(f, model="embedding-2", input="x", dimensions=256).json()["data"][0]
    assert len(fixed["embedding"]) == 1024


@pytest.mark.parametrize(
    "body",
    [
        {"model": "embedding-3", "input": "x", "dimensions": 300},
        {"model": "embedding-3", "input": ["x"] * 65},
        {"model": "embedding-3", "input": []},
        {"model": "embedding-3", "input": [1, 2]},
    ],
)
def test_embeddings_invalid_parameters(body: dict[str, Any]) -> None:
    r = embed(fake(), **body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "1214"


def test_embeddings_batch_limit_allows_64() -> None:
    r = embed(fake(), model="embedding-3", input=[f"t{i}" for i in range(64)], dimensions=256)
    assert [d["index"] for d in r.json()["data"]] == list(range(64))


def test_embeddings_take_failures_but_leave_replies_queued() -> None:
    f = fake().fail("rate_limit").reply("for chat")
    assert embed(f, model="embedding-3", input="x").status_code == 429
    assert embed(f, model="embedding-3", input="x").status_code == 200
    assert chat(f).json()["choices"][0]["message"]["content"] == "for chat"


# -- plumbing -------------------------------------------------------------------------------


def test_queue_is_thread_safe() -> None:
    f = fake()
    for i in range(50):
        f.reply(f"reply-{i}")
    results: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        content = chat(f).json()["choices"][0]["message"]["content"]
        with lock:
            results.append(content)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(f"reply-{i}" for i in range(50))
    assert len(f.requests) == 50
    assert chat(f).json()["choices"][0]["message"]["content"].startswith("(offline fake")


def test_works_with_respx() -> None:
    f = fake(split_bytes=7).reply("abcdefgh").cut_stream(1, "abcdefgh")
    body = {"model": "glm-4", "messages": HELLO, "stream": True}
    with respx.mock(assert_all_called=True) as mock:
        mock.route(host="open.bigmodel.cn").mock(side_effect=f.handler)
        with httpx.Client() as c:
            with c.stream("POST", CHAT, json=body) as r:
                assert events(r.read())[-1] == "[DONE]"
            with c.stream("POST", CHAT, json=body) as r, pytest.raises(httpx.RemoteProtocolError):
                r.read()
    assert f.last_json["stream"] is True


async def test_works_with_respx_async() -> None:
    f = fake().reply("hi")
    with respx.mock() as mock:
        mock.route(host="open.bigmodel.cn").mock(side_effect=f.handler)
        async with httpx.AsyncClient() as c:
            r = await c.post(CHAT, json={"model": "glm-4", "messages": HELLO})
    assert r.json()["choices"][0]["message"]["content"] == "hi"


def test_unknown_route_is_404_and_recorded() -> None:
    f = fake()
    with client(f) as c:
        assert c.get(f"{BASE}/models").status_code == 404
    assert len(f.requests) == 1


def test_last_json_without_requests() -> None:
    with pytest.raises(LookupError):
        _ = fake().last_json


def test_raw_outcome_type_is_exported() -> None:
    assert Raw(200, "é").body_bytes() == "é".encode()


NO_DESCRIPTION = {"type": "function", "function": {"name": "f", "parameters": {}}}
NO_PARAMETERS = {"type": "function", "function": {"name": "f", "description": "d"}}


@pytest.mark.parametrize(
    "extra",
    [
        {"stop": ["Human:", "AI:"]},
        {"tool_choice": "required"},
        {"tool_choice": "none"},
        {"temperature": 1.5},
        {"temperature": 0},
        {"top_p": 1},
        {"user_id": "abc"},
        {"user_id": "u" * 129},
        {"tools": [NO_DESCRIPTION]},
        {"tools": [NO_PARAMETERS]},
    ],
)
def test_parameters_glm_refuses_are_refused(extra: dict) -> None:
    """protocols.md §1.3 and docs/providers/zhipu.md: one stop word at most, ``tool_choice``
    "auto" only, sampling within GLM's ranges, a 6-128 character ``user_id``, tools with a
    description and parameters. A fake that took them would let a regression in
    llm-bridge's translation of them pass unseen."""
    f = fake()
    with client(f) as c:
        r = c.post(CHAT, json={"model": "glm-4-flash", "messages": HELLO, **extra})
    assert r.status_code == 400 and r.json()["error"]["code"] == "1214"
    assert next(iter(extra)) in r.json()["error"]["message"]


def test_what_glm_refuses_is_translated_into_what_it_takes() -> None:
    """The adapter's side of the rules above, end to end: OpenAI's values that GLM refuses
    (temperature 0 and above 1, a short ``user``, a tool without a description or
    parameters) are sent as values it takes."""
    import llm_bridge

    f = fake()
    client = llm_bridge.OpenAI(
        provider="zhipu", api_key=KEY, http_client=httpx.Client(transport=f.transport())
    )
    tool = {"type": "function", "function": {"name": "f"}}
    for temperature in (0, 1.5):
        client.chat.completions.create(
            model="glm-4-flash",
            messages=HELLO,
            temperature=temperature,
            top_p=1,
            user="abc",
            tools=[tool],  # type: ignore[list-item]
        )
    assert len(f.requests) == 2
