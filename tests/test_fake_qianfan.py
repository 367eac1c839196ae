"""FakeQianfan / FakeQianfanV2 speak Baidu Qianfan's wire formats (docs/providers/qianfan.md,
"The fakes")."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import httpx
import pytest
from helpers import sse_payloads

from llm_bridge._bce_signer import BceSigner
from llm_bridge.testing import (
    Failure,
    FakeQianfan,
    FakeQianfanV2,
    MidStreamError,
    Reply,
    Sensitive,
    StreamCut,
    ToolCallSpec,
)
from llm_bridge.testing.qianfan import KNOWN_ENDPOINTS

NOW = 1709089502.0
AK, SK = "Y7uKeHc3ak", "Nh4pW2sk"
HOST = FakeQianfan.base_url
TOKEN_URL = f"{HOST}/oauth/2.0/token"
V1 = f"{HOST}/rpc/2.0/ai_custom/v1/wenxinworkshop"
CHAT = f"{V1}/chat/completions"
EMBED = f"{V1}/embeddings/embedding-v1"
HELLO = [{"role": "user", "content": "你好"}]
TOKEN_RE = re.compile(r"24\.[0-9a-f]{32}\.(\d+)\.(\d+)\.\d+-\d+")
AS_ID = re.compile(r"as-[0-9a-z]{10}")
B3_KEYS = [
    "id",
    "object",
    "created",
    "sentence_id",
    "is_end",
    "is_truncated",
    "result",
    "need_clear_history",
    "finish_reason",
    "usage",
]


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def fake(**kwargs: Any) -> FakeQianfan:
    kwargs.setdefault("clock", lambda: NOW)
    return FakeQianfan(**kwargs)


def client(f: FakeQianfan | FakeQianfanV2, **headers: str) -> httpx.Client:
    return httpx.Client(transport=f.transport(), headers=headers)


def get_token(f: FakeQianfan, ak: str = AK, sk: str = SK) -> httpx.Response:
    params = {"grant_type": "client_credentials", "client_id": ak, "client_secret": sk}
    with client(f) as c:
        return c.post(TOKEN_URL, params=params)


def chat(f: FakeQianfan, token: str | None = None, url: str = CHAT, **body: Any) -> httpx.Response:
    body.setdefault("messages", HELLO)
    params = {} if token is None else {"access_token": token}
    with client(f) as c:
        return c.post(url, params=params, json=body)


def stream_chunks(f: FakeQianfan, token: str | None = None, **body: Any) -> list[bytes]:
    """The raw reads of a streamed v1 chat response (asserting B3's content type)."""
    body.setdefault("messages", HELLO)
    params = {} if token is None else {"access_token": token}
    with client(f) as c, c.stream("POST", CHAT, params=params, json={**body, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        return list(r.iter_raw())


events = sse_payloads


def v1_error(r: httpx.Response) -> tuple[int, str]:
    """A v1 error must arrive as HTTP 200 JSON with only error_code and error_msg."""
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["error_code", "error_msg"]
    assert isinstance(body["error_code"], int) and body["error_msg"]
    return body["error_code"], body["error_msg"]


# -- OAuth tokens ---------------------------------------------------------------------------


def test_token_issue_is_b1_shaped_and_counted() -> None:
    f = fake(api_key=AK, secret_key=SK)
    r = get_token(f)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == [
        "refresh_token",
        "expires_in",
        "session_key",
        "access_token",
        "scope",
        "session_secret",
    ]
    assert body["expires_in"] == 2592000
    match = TOKEN_RE.fullmatch(body["access_token"])
    assert match and match.group(1) == "2592000"
    assert int(match.group(2)) == int(NOW) + 2592000
    assert body["refresh_token"].startswith("25.")
    second = get_token(f).json()["access_token"]
    assert second != body["access_token"]
    assert f.token_requests == 2
    assert f.issued_tokens == [body["access_token"], second]


def test_token_ttl_is_configurable() -> None:
    body = get_token(fake(token_ttl=3600)).json()
    assert body["expires_in"] == 3600
    assert TOKEN_RE.fullmatch(body["access_token"]).group(1) == "3600"  # type: ignore[union-attr]


def test_token_bad_ak_and_bad_sk_bodies() -> None:
    f = fake(api_key=AK, secret_key=SK)
    r = get_token(f, ak="nope")
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_client", "error_description": "unknown client id"}
    r = get_token(f, sk="nope")
    assert r.status_code == 401
    assert r.json() == {
        "error": "invalid_client",
        "error_description": "Client authentication failed",
    }
    assert f.token_requests == 2 and f.issued_tokens == []


def test_token_without_configured_keys_accepts_any_pair_but_not_empty() -> None:
    f = fake()
    assert get_token(f, ak="any", sk="thing").status_code == 200
    assert get_token(f, ak="").json()["error_description"] == "unknown client id"
    with client(f) as c:
        r = c.post(TOKEN_URL, params={"client_id": AK, "client_secret": SK})
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"
    assert f.token_requests == 3


def test_issued_token_authorises_chat() -> None:
    f = fake(api_key=AK, secret_key=SK)
    token = get_token(f).json()["access_token"]
    r = chat(f, token)
    assert r.json()["result"] == "(offline fake completions) You said: 你好"
    assert f.requests[-1].url.params["access_token"] == token


def test_missing_or_unknown_token_is_110_when_keys_are_configured() -> None:
    f = fake(api_key=AK, secret_key=SK).reply("kept")
    assert v1_error(chat(f)) == (110, "Access token invalid or no longer valid")
    assert v1_error(chat(f, "24.forged"))[0] == 110
    token = get_token(f).json()["access_token"]
    assert chat(f, token).json()["result"] == "kept"  # rejections consumed nothing


def test_expire_tokens_then_refresh() -> None:
    f = fake(api_key=AK, secret_key=SK)
    old = get_token(f).json()["access_token"]
    assert f.expire_tokens() is f
    assert v1_error(chat(f, old)) == (111, "Access token expired")
    new = get_token(f).json()["access_token"]
    assert chat(f, new).status_code == 200 and "result" in chat(f, new).json()
    assert v1_error(chat(f, old))[0] == 111


def test_revoke_tokens_answers_110() -> None:
    f = fake()
    token = get_token(f).json()["access_token"]
    f.revoke_tokens()
    assert v1_error(chat(f, token)) == (110, "Access token invalid or no longer valid")
    # without configured keys a token the fake never issued is accepted
    assert "result" in chat(f, "24.someone-elses").json()


def test_tokens_lapse_by_the_clock() -> None:
    clock = Clock()
    f = FakeQianfan(token_ttl=60, clock=clock)
    token = get_token(f).json()["access_token"]
    clock.now += 59
    assert "result" in chat(f, token).json()
    clock.now += 1
    assert v1_error(chat(f, token))[0] == 111


def test_token_errors_for_stream_requests_are_json_not_sse() -> None:
    f = fake()
    token = get_token(f).json()["access_token"]
    f.expire_tokens()
    with client(f) as c:
        body = {"messages": HELLO, "stream": True}
        with c.stream("POST", CHAT, params={"access_token": token}, json=body) as r:
            r.read()
    assert v1_error(r) == (111, "Access token expired")
    assert b"data:" not in r.content


def test_fifty_threads_fifty_token_requests() -> None:
    f = fake(api_key=AK, secret_key=SK)
    tokens: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        token = get_token(f).json()["access_token"]
        with lock:
            tokens.append(token)

    threads = [threading.Thread(target=worker) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert f.token_requests == 50  # the fake counts; deduplication is the client's job
    assert len(set(tokens)) == 50 and sorted(tokens) == sorted(f.issued_tokens)


# -- bce-auth-v1 ----------------------------------------------------------------------------


def test_bce_auth_v1_signed_request_is_accepted_and_recorded() -> None:
    f = fake(api_key=AK, secret_key=SK).reply("signed")
    signer = BceSigner("ALTAKexample", "iam-secret", clock=lambda: NOW)
    request = httpx.Request("POST", CHAT, json={"messages": HELLO})
    signer.sign(request)
    with client(f) as c:
        r = c.send(request)
    assert r.json()["result"] == "signed"
    (header,) = f.bce_authorizations
    assert header == request.headers["Authorization"]
    assert header.startswith("bce-auth-v1/ALTAKexample/2024-02-28T03:05:02Z/300/")
    assert "access_token" not in f.requests[-1].url.params


@pytest.mark.parametrize(
    "header",
    [
        "bce-auth-v1/AK/2024-02-28T03:05:02Z/300//" + "0" * 64,
        "bce-auth-v1/AK/2024-02-28T03:05:02Z/1800/host;x-bce-date/" + "ab" * 32,
    ],
)
def test_any_well_formed_bce_header_is_accepted(header: str) -> None:
    f = fake(api_key=AK)
    with client(f, Authorization=header) as c:
        r = c.post(CHAT, json={"messages": HELLO})
    assert "result" in r.json()
    assert f.bce_authorizations == [header]


@pytest.mark.parametrize(
    "header",
    [
        "bce-auth-v1/AK/2024-02-28 03:05:02/300//" + "0" * 64,
        "bce-auth-v1/AK/2024-02-28T03:05:02Z/300//" + "0" * 63,
        "bce-auth-v1/AK/2024-02-28T03:05:02Z/300/Host/" + "0" * 64,
        "bce-auth-v1/AK/2024-02-28T03:05:02Z//" + "0" * 64,
    ],
)
def test_malformed_bce_header_gets_the_gateway_401(header: str) -> None:
    f = fake().reply("kept")
    with client(f, Authorization=header) as c:
        r = c.post(CHAT, json={"messages": HELLO})
    assert r.status_code == 401
    assert r.headers["x-bce-error-code"] == "SignatureDoesNotMatch"
    assert r.headers["x-bce-error-message"] == (
        "SignatureDoesNotMatch, cause: Fail to authn user: Signature does not match"
    )
    assert r.json()["code"] == "SignatureDoesNotMatch"
    assert f.bce_authorizations == []
    assert chat(f).json()["result"] == "kept"


# -- v1 chat, non-stream --------------------------------------------------------------------


def test_default_reply_is_b2_shaped() -> None:
    f = fake()
    r = chat(f, system="你是一个乐于助人的助手", temperature=0.8)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "result",
        "is_truncated",
        "need_clear_history",
        "finish_reason",
        "usage",
    ]
    assert AS_ID.fullmatch(body["id"])
    assert body["object"] == "chat.completion" and body["created"] == int(NOW)
    assert body["result"] == "(offline fake completions) You said: 你好"
    assert body["is_truncated"] is False and body["need_clear_history"] is False
    assert body["finish_reason"] == "normal"
    usage = body["usage"]
    assert usage["prompt_tokens"] == 1 + 5  # "你好" + the system prompt
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert r.content == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    assert f.last_json["system"] == "你是一个乐于助人的助手"


def test_model_key_in_body_is_just_recorded() -> None:
    f = fake()
    assert chat(f, model="ERNIE-3.5-8K").status_code == 200
    assert f.last_json["model"] == "ERNIE-3.5-8K"


def test_scripted_reply_usage_and_length_finish() -> None:
    f = fake().reply("hi", usage={"prompt_tokens": 2, "completion_tokens": 12, "total_tokens": 14})
    f.reply("cut", finish_reason="length")
    body = chat(f).json()
    assert body["result"] == "hi"
    assert body["usage"] == {"prompt_tokens": 2, "completion_tokens": 12, "total_tokens": 14}
    body = chat(f).json()
    assert (body["finish_reason"], body["is_truncated"]) == ("length", True)


def test_tool_call_is_b4_shaped() -> None:
    f = fake().then(
        Reply(
            reasoning_content="用户想知道北京的天气，我需要调用get_current_weather",
            tool_calls=[ToolCallSpec("get_current_weather", {"location": "北京"})],
        )
    )
    body = chat(f, functions=[{"name": "get_current_weather", "parameters": {}}]).json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "result",
        "is_truncated",
        "need_clear_history",
        "finish_reason",
        "function_call",
        "usage",
    ]
    assert body["result"] == "" and body["finish_reason"] == "function_call"
    assert body["function_call"] == {
        "name": "get_current_weather",
        "thoughts": "用户想知道北京的天气，我需要调用get_current_weather",
        "arguments": '{"location":"北京"}',
    }


def test_tool_call_helper_and_follow_up_turn_is_valid() -> None:
    f = fake().tool_call("get_current_weather", {"location": "北京"}).reply("晴，25℃")
    assert chat(f).json()["function_call"]["thoughts"] == ""
    follow_up = [
        {"role": "user", "content": "北京今天天气怎么样"},
        {
            "role": "assistant",
            "content": "",
            "function_call": {"name": "get_current_weather", "arguments": '{"location":"北京"}'},
        },
        {"role": "function", "name": "get_current_weather", "content": '{"result":"晴，25℃"}'},
    ]
    assert chat(f, messages=follow_up).json()["result"] == "晴，25℃"


def test_sensitive_non_stream_is_b6_shaped() -> None:
    f = fake().sensitive(1, "abcdefgh")
    body = chat(f).json()
    assert list(body) == [
        "id",
        "object",
        "created",
        "result",
        "is_truncated",
        "need_clear_history",
        "ban_round",
        "finish_reason",
        "usage",
    ]
    assert body["result"] == "" and body["need_clear_history"] is True
    assert body["ban_round"] == -1 and body["finish_reason"] == "content_filter"
    assert body["usage"]["completion_tokens"] == 0


def test_raw_and_stream_cut_on_non_stream_request() -> None:
    f = fake().raw(502, "<html>bad gateway</html>", {"Content-Type": "text/html"})
    f.cut_stream(0, "hello")
    r = chat(f)
    assert (r.status_code, r.text) == (502, "<html>bad gateway</html>")
    with pytest.raises(httpx.RemoteProtocolError):
        chat(f)


# -- v1 message rules -----------------------------------------------------------------------

U = {"role": "user", "content": "u"}
A = {"role": "assistant", "content": "a"}
EVEN = "the role of message with even index in the messages must be user or function"
ODD = "the role of message with odd index in the messages must be assistant"


@pytest.mark.parametrize(
    ("messages", "code", "message"),
    [
        ([{"role": "system", "content": "s"}, U], 336006, EVEN),
        ([U, A, {"role": "system", "content": "s"}], 336006, EVEN),
        ([U, {"role": "system", "content": "s"}, U], 336006, ODD),
        ([U, A], 336006, "the length of messages must be an odd number"),
        ([], 336006, "the length of messages must be an odd number"),
        ([U, U, U], 336006, ODD),
        ([U, A, A], 336006, EVEN),
        ([A, U, A], 336006, EVEN),
        (
            [{"role": "function", "name": "f", "content": "{}"}],
            336003,
            "the first message must be user",
        ),
        ([{"role": "user", "content": ""}], 336003, "message content can not be empty"),
        (
            [U, {"role": "assistant", "content": "  "}, U],
            336003,
            "message content can not be empty",
        ),
        ([{"role": "user"}], 336003, "message content can not be empty"),
        ("hi", 336001, "Invalid Argument"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_message_rules(messages: Any, code: int, message: str, stream: bool) -> None:
    f = fake().reply("kept")
    assert v1_error(chat(f, messages=messages, stream=stream)) == (code, message)
    assert chat(f).json()["result"] == "kept"  # a rejected request consumes nothing


def test_invalid_json_body() -> None:
    with client(fake()) as c:
        r = c.post(CHAT, content=b"{nope", headers={"Content-Type": "application/json"})
    assert v1_error(r) == (336002, "Invalid JSON")


# -- endpoints ------------------------------------------------------------------------------


def test_endpoints_restrict_suffixes_and_name_the_model() -> None:
    f = fake(endpoints=KNOWN_ENDPOINTS)
    assert chat(f).json()["result"] == "(offline fake ERNIE-3.5-8K) You said: 你好"
    pro = chat(f, url=f"{V1}/chat/completions_pro").json()["result"]
    assert pro.startswith("(offline fake ERNIE-4.0-8K)")
    assert v1_error(chat(f, url=f"{V1}/chat/gpt-4o")) == (3, "Unsupported openapi method")
    assert v1_error(chat(f, url=f"{V1}/embeddings/nope", input=["x"]))[0] == 3


def test_any_suffix_without_endpoints_and_unknown_paths() -> None:
    f = fake()
    assert (
        chat(f, url=f"{V1}/chat/my_custom_service")
        .json()["result"]
        .startswith("(offline fake my_custom_service)")
    )
    assert v1_error(chat(f, url=f"{V1}/tokenizer/erniebot"))[0] == 3
    with client(f) as c:
        assert c.get(f"{HOST}/somewhere").status_code == 404
    assert len(f.requests) == 3


# -- v1 failures ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "code", "message"),
    [
        ("rate_limit", 18, "Open api qps request limit reached"),
        ("overloaded", 336100, "try again later"),
        ("arrears", 17, "Open api daily request limit reached"),
        ("auth", 110, "Access token invalid or no longer valid"),
        ("content_filter", 336003, None),
        ("context_length", 336103, "input too long"),
        ("server_error", 336000, "Internal error"),
        ("model_not_found", 3, "Unsupported openapi method"),
        ("bad_request", 336003, "the first message must be user"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_failure_kinds_render_native_codes_in_200_bodies(
    kind: str, code: int, message: str | None, stream: bool
) -> None:
    f = fake().fail(kind)
    got_code, got_message = v1_error(chat(f, stream=stream))
    assert got_code == code
    if message is None:
        assert "sensitive" in got_message
    else:
        assert got_message == message


def test_failure_overrides() -> None:
    f = fake().fail("rate_limit", code="336501", headers={"Retry-After": "2"})
    f.fail("rate_limit", code="336502", message="custom")
    f.then(Failure("server_error", status=503))
    r = chat(f)
    assert v1_error(r) == (336501, "Rate limit reached for RPM")
    assert r.headers["retry-after"] == "2"
    assert v1_error(chat(f)) == (336502, "custom")
    r = chat(f, stream=True)
    assert r.status_code == 503
    assert r.json() == {"error_code": 336000, "error_msg": "Internal error"}


# -- v1 streaming ---------------------------------------------------------------------------


def test_stream_matches_b3_framing() -> None:
    f = fake().reply("当然可以，以下是一个简单的例子：", chunk_size=5)
    chunks = stream_chunks(f, system="简短")
    assert all(chunk.startswith(b"data: ") for chunk in chunks)  # one read per event
    raw = b"".join(chunks)
    assert b"[DONE]" not in raw
    parsed = [json.loads(p) for p in events(raw)]
    assert [list(e) for e in parsed] == [B3_KEYS] * len(parsed)
    assert [e["sentence_id"] for e in parsed] == list(range(len(parsed)))
    assert [e["is_end"] for e in parsed] == [False] * (len(parsed) - 1) + [True]
    assert all(e["finish_reason"] == "normal" for e in parsed)
    assert all(e["object"] == "chat.completion" for e in parsed)
    assert len({e["id"] for e in parsed}) == 1 and AS_ID.fullmatch(parsed[0]["id"])
    assert "".join(e["result"] for e in parsed) == "当然可以，以下是一个简单的例子："
    assert [e["result"] for e in parsed[:2]] == ["当然可以，", "以下是一个"]
    assert parsed[-1]["result"] == ""
    usages = [e["usage"] for e in parsed]
    assert len({u["prompt_tokens"] for u in usages}) == 1
    completions = [u["completion_tokens"] for u in usages]
    assert completions == sorted(completions) and completions[0] < completions[-1]
    assert all(u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"] for u in usages)
    assert raw.decode().startswith('data: {"id":"as-')
    assert '"result":"当然可以，"' in raw.decode()  # not ASCII-escaped


def test_stream_with_scripted_usage_keeps_prompt_constant() -> None:
    usage = {"prompt_tokens": 5, "completion_tokens": 420, "total_tokens": 425}
    f = fake().reply("abcdefgh", usage=usage)
    parsed = [json.loads(p) for p in events(b"".join(stream_chunks(f)))]
    assert parsed[-1]["usage"] == usage
    assert {e["usage"]["prompt_tokens"] for e in parsed} == {5}


def test_empty_reply_streams_only_the_end_event() -> None:
    (only,) = events(b"".join(stream_chunks(fake().reply(""))))
    event = json.loads(only)
    assert event["sentence_id"] == 0 and event["is_end"] is True and event["result"] == ""


def test_stream_function_call_on_the_end_event() -> None:
    f = fake().tool_call("get_current_weather", {"location": "北京"})
    (only,) = events(b"".join(stream_chunks(f)))
    event = json.loads(only)
    assert event["is_end"] is True and event["finish_reason"] == "function_call"
    assert event["function_call"]["arguments"] == '{"location":"北京"}'
    assert list(event)[-2:] == ["function_call", "usage"]


def test_sensitive_stream_ends_with_b6_fields() -> None:
    f = fake().then(Sensitive(after_chunks=1, content="abcdefgh"))
    first, last = (json.loads(p) for p in events(b"".join(stream_chunks(f))))
    assert first["result"] == "abcd" and first["finish_reason"] == "normal"
    assert last["is_end"] is True and last["result"] == ""
    assert last["need_clear_history"] is True and last["ban_round"] == -1
    assert last["finish_reason"] == "content_filter"


def test_mid_stream_error_event() -> None:
    f = fake().then(MidStreamError(after_chunks=1, kind="rate_limit", content="abcdefgh"))
    payloads = events(b"".join(stream_chunks(f)))
    assert len(payloads) == 2
    assert json.loads(payloads[1]) == {
        "error_code": 18,
        "error_msg": "Open api qps request limit reached",
    }


def test_stream_cuts() -> None:
    f = fake().cut_stream(2, "abcdefghijkl")
    f.then(StreamCut(after_chunks=1, content="abcdefgh", cut_raises=False))
    seen: list[bytes] = []
    with client(f) as c:
        body = {"messages": HELLO, "stream": True}
        with c.stream("POST", CHAT, json=body) as r, pytest.raises(httpx.RemoteProtocolError):
            for chunk in r.iter_raw():
                seen.append(chunk)
    assert len(seen) == 2 and b'"is_end":true' not in b"".join(seen)
    (only,) = events(b"".join(stream_chunks(f)))
    assert json.loads(only)["is_end"] is False


def test_split_bytes_rechunks_same_bytes() -> None:
    whole = b"".join(stream_chunks(fake().reply("人工智能助手。")))
    pieces = stream_chunks(fake(split_bytes=3).reply("人工智能助手。"))
    assert b"".join(pieces) == whole
    assert all(len(p) == 3 for p in pieces[:-1]) and len(pieces) > 50


async def test_async_client_token_stream_and_error() -> None:
    f = fake(api_key=AK, secret_key=SK, split_bytes=7).reply("异步你好")
    params = {"grant_type": "client_credentials", "client_id": AK, "client_secret": SK}
    async with httpx.AsyncClient(transport=f.transport()) as c:
        token = (await c.post(TOKEN_URL, params=params)).json()["access_token"]
        body = {"messages": HELLO, "stream": True}
        async with c.stream("POST", CHAT, params={"access_token": token}, json=body) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
        parsed = [json.loads(p) for p in events(raw)]
        assert parsed[-1]["is_end"] is True
        assert "".join(e["result"] for e in parsed) == "异步你好"
        f.revoke_tokens()
        r = await c.post(CHAT, params={"access_token": token}, json=body)
        assert v1_error(r)[0] == 110
    assert f.token_requests == 1


# -- v1 embeddings --------------------------------------------------------------------------


def embed(f: FakeQianfan, url: str = EMBED, **body: Any) -> httpx.Response:
    with client(f) as c:
        return c.post(url, json=body)


def test_embeddings_b7_shape() -> None:
    r = embed(fake(), input=["推荐一些美食", "你好"], user_id="u-123")
    body = r.json()
    assert list(body) == ["id", "object", "created", "data", "usage"]
    assert AS_ID.fullmatch(body["id"]) and body["object"] == "embedding_list"
    assert [list(d) for d in body["data"]] == [["object", "embedding", "index"]] * 2
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 384 for d in body["data"])
    assert list(body["usage"]) == ["prompt_tokens", "total_tokens"]
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0
    again = embed(fake(), input=["推荐一些美食"]).json()["data"][0]["embedding"]
    assert again == body["data"][0]["embedding"]
    bge = embed(fake(), url=f"{V1}/embeddings/bge_large_zh", input=["x"]).json()
    assert len(bge["data"][0]["embedding"]) == 1024


def test_embeddings_batch_limits() -> None:
    f = fake()
    ok = embed(f, input=[f"t{i}" for i in range(16)]).json()
    assert [d["index"] for d in ok["data"]] == list(range(16))
    assert v1_error(embed(f, input=[f"t{i}" for i in range(17)])) == (
        336003,
        "embeddings max size is 16",
    )
    tao = f"{V1}/embeddings/tao_8k"
    assert len(embed(f, url=tao, input=["one"]).json()["data"]) == 1
    assert v1_error(embed(f, url=tao, input=["a", "b"])) == (336003, "embeddings max size is 1")
    assert v1_error(embed(f, input=[]))[0] == 336003
    assert v1_error(embed(f, input="not a list"))[0] == 336003


def test_embeddings_auth_and_queue() -> None:
    f = fake(api_key=AK).fail("rate_limit").reply("for chat")
    assert v1_error(embed(f, input=["x"]))[0] == 110
    token = get_token(f, sk="any").json()["access_token"]
    url = f"{EMBED}?access_token={token}"
    assert v1_error(embed(f, url=url, input=["x"]))[0] == 18
    assert "data" in embed(f, url=url, input=["x"]).json()
    assert chat(f, token).json()["result"] == "for chat"


# -- v2 -------------------------------------------------------------------------------------

V2 = FakeQianfanV2.base_url
V2_CHAT = f"{V2}/chat/completions"
V2_KEY = "bce-v3/ALTAK-xxxxxxxx/yyyyyyyy"


def v2fake(**kwargs: Any) -> FakeQianfanV2:
    kwargs.setdefault("clock", lambda: NOW)
    kwargs.setdefault("api_key", V2_KEY)
    return FakeQianfanV2(**kwargs)


def v2client(f: FakeQianfanV2, **headers: str) -> httpx.Client:
    return client(f, Authorization=f"Bearer {V2_KEY}", **headers)


def v2chat(f: FakeQianfanV2, **body: Any) -> httpx.Response:
    body.setdefault("model", "ernie-4.0-turbo-8k")
    body.setdefault("messages", HELLO)
    with v2client(f) as c:
        return c.post(V2_CHAT, json=body)


def v2stream(f: FakeQianfanV2, **body: Any) -> list[Any]:
    body.setdefault("model", "ernie-4.0-turbo-8k")
    body.setdefault("messages", HELLO)
    with v2client(f) as c, c.stream("POST", V2_CHAT, json={**body, "stream": True}) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "text/event-stream"
        payloads = events(r.read())
    assert payloads[-1] == "[DONE]"
    return [json.loads(p) for p in payloads[:-1]]


@pytest.mark.parametrize("authorization", [None, "Bearer wrong", V2_KEY])
def test_v2_auth_rejection_body(authorization: str | None) -> None:
    f = v2fake().reply("kept")
    headers = {} if authorization is None else {"Authorization": authorization}
    with client(f, **headers) as c:
        r = c.post(V2_CHAT, json={"model": "ernie-4.0-8k", "messages": HELLO})
    assert r.status_code == 401 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert list(body) == ["error", "id"] and AS_ID.fullmatch(body["id"])
    assert body["error"] == {
        "code": "invalid_iam_token",
        "message": "IAM Certification failed",
        "type": "invalid_request_error",
    }
    assert v2chat(f).json()["choices"][0]["message"]["content"] == "kept"


def test_v2_non_stream_shape_and_appid() -> None:
    f = v2fake()
    with v2client(f, appid="app-zzzz") as c:
        r = c.post(V2_CHAT, json={"model": "ernie-4.0-turbo-8k", "messages": HELLO})
    body = r.json()
    assert list(body) == ["id", "object", "created", "model", "choices", "usage"]
    assert AS_ID.fullmatch(body["id"]) and body["object"] == "chat.completion"
    assert body["model"] == "ernie-4.0-turbo-8k" and body["created"] == int(NOW)
    assert body["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "(offline fake ernie-4.0-turbo-8k) You said: 你好",
            },
            "finish_reason": "stop",  # v2's word today (chat reference, 2025-12-23)
            "flag": 0,
        }
    ]
    v2chat(f)
    assert f.appids == ["app-zzzz", None]


def test_v2_tool_calls_and_reasoning() -> None:
    f = v2fake().then(
        Reply(reasoning_content="想", tool_calls=[ToolCallSpec("get_weather", {"city": "北京"})])
    )
    choice = v2chat(f).json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["reasoning_content"] == "想"
    (call,) = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"北京"}'}


def test_v2_stream_with_include_usage_matches_b8() -> None:
    f = v2fake().reply("你好！")
    chunks = v2stream(f, stream_options={"include_usage": True})
    first, finish, usage = chunks
    assert list(first) == ["id", "object", "created", "model", "choices"]
    assert first["object"] == "chat.completion.chunk"
    assert first["choices"] == [{"index": 0, "delta": {"content": "你好！"}, "flag": 0}]
    assert finish["choices"] == [
        {"index": 0, "delta": {"content": ""}, "finish_reason": "stop", "flag": 0}
    ]
    assert list(usage) == ["id", "object", "created", "model", "choices", "usage"]
    assert usage["choices"] == []
    assert list(usage["usage"]) == ["prompt_tokens", "completion_tokens", "total_tokens"]
    assert len({c["id"] for c in chunks}) == 1


def test_v2_stream_without_include_usage_has_no_usage_chunk() -> None:
    chunks = v2stream(v2fake().reply("abcdefgh"))
    assert all(c["choices"] and "usage" not in c for c in chunks)
    assert [c["choices"][0].get("finish_reason") for c in chunks] == [None, None, "stop"]


def test_v2_stream_tool_call_sensitive_and_cut() -> None:
    f = v2fake().tool_call("f", {"a": 1}, id="call_1").sensitive(1, "abcdefgh")
    f.cut_stream(1, "abcdefgh")
    (only,) = v2stream(f)
    (choice,) = only["choices"]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["delta"]["tool_calls"] == [
        {
            "index": 0,
            "id": "call_1",
            "type": "function",
            "function": {"name": "f", "arguments": '{"a":1}'},
        }
    ]
    first, last = v2stream(f)
    assert first["choices"][0]["delta"] == {"content": "abcd"}
    assert last["choices"][0]["finish_reason"] == "content_filter"
    with v2client(f) as c:
        body = {"model": "m", "messages": HELLO, "stream": True}
        with c.stream("POST", V2_CHAT, json=body) as r, pytest.raises(httpx.RemoteProtocolError):
            r.read()


@pytest.mark.parametrize(
    ("kind", "status", "code", "type_"),
    [
        ("rate_limit", 429, "rpm_rate_limit_exceeded", "rate_limit_exceeded"),
        ("overloaded", 503, "server_overloaded", "server_error"),
        ("arrears", 429, "insufficient_quota", "insufficient_quota"),
        ("auth", 401, "invalid_iam_token", "invalid_request_error"),
        ("content_filter", 400, "content_filter", "invalid_request_error"),
        ("context_length", 400, "characters_too_long", "invalid_request_error"),
        ("server_error", 500, "internal_error", "server_error"),
        ("model_not_found", 400, "invalid_model", "invalid_request_error"),
        ("bad_request", 400, "invalid_argument", "invalid_request_error"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_v2_failures(kind: str, status: int, code: str, type_: str, stream: bool) -> None:
    r = v2chat(v2fake().fail(kind), stream=stream)
    assert r.status_code == status and r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"]["code"] == code and body["error"]["type"] == type_
    assert body["error"]["message"] and AS_ID.fullmatch(body["id"])


def test_v2_rate_limit_body_is_b8() -> None:
    r = v2chat(v2fake().fail("rate_limit", headers={"Retry-After": "1"}))
    assert r.json()["error"] == {
        "code": "rpm_rate_limit_exceeded",
        "message": "Rate limit reached for RPM",
        "type": "rate_limit_exceeded",
    }
    assert r.headers["retry-after"] == "1"


def test_v2_model_checks() -> None:
    f = v2fake(model_names={"ernie-4.0-8k"})
    assert v2chat(f, model="ernie-4.0-8k").status_code == 200
    assert v2chat(f, model="gpt-4o").json()["error"]["code"] == "invalid_model"
    r = v2chat(f, model="")
    assert r.status_code == 400 and r.json()["error"]["message"] == "model is empty"


def test_v2_without_api_key_accepts_any_caller() -> None:
    f = FakeQianfanV2(clock=lambda: NOW)
    with client(f) as c:
        r = c.post(V2_CHAT, json={"model": "ernie-speed-8k", "messages": HELLO})
    assert r.status_code == 200


def test_v2_embeddings() -> None:
    f = v2fake().fail("rate_limit").reply("for chat")
    with v2client(f) as c:
        assert (
            c.post(f"{V2}/embeddings", json={"model": "embedding-v1", "input": "x"}).status_code
            == 429
        )
        r = c.post(f"{V2}/embeddings", json={"model": "embedding-v1", "input": ["a", "b"]})
        body = r.json()
        assert body["object"] == "list" and body["model"] == "embedding-v1"
        assert [d["index"] for d in body["data"]] == [0, 1]
        assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"]
        too_many = {"model": "embedding-v1", "input": ["x"] * 17}
        assert c.post(f"{V2}/embeddings", json=too_many).status_code == 400
    assert v2chat(f).json()["choices"][0]["message"]["content"] == "for chat"


async def test_v2_async_stream() -> None:
    f = v2fake(split_bytes=5).reply("异步你好")
    body = {
        "model": "ernie-4.0-8k",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    headers = {"Authorization": f"Bearer {V2_KEY}"}
    async with httpx.AsyncClient(transport=f.transport(), headers=headers) as c:
        async with c.stream("POST", V2_CHAT, json=body) as r:
            raw = b"".join([chunk async for chunk in r.aiter_raw()])
        payloads = events(raw)
        assert payloads[-1] == "[DONE]" and json.loads(payloads[-2])["choices"] == []
        r = await c.post(V2_CHAT, json={"model": "ernie-4.0-8k", "messages": HELLO})
        assert r.json()["choices"][0]["message"]["content"].endswith("You said: 你好")


# ----------------------------------------------------------------------------- v2 today

IAM_AK, IAM_SK = "ALTAKfakeIamKey0123", "fakeIamSecret0123456789abcdef"
IAM_URL = "https://iam.bj.baidubce.com/v1/BCE-BEARER/token"


def iam_request(
    ak: str = IAM_AK, sk: str = IAM_SK, at: float = NOW, **params: str
) -> httpx.Request:
    request = httpx.Request("GET", IAM_URL, params=params or {"expireInSeconds": "3600"})
    BceSigner(ak, sk, clock=lambda: at).sign(request)
    return request


def test_v2_iam_mints_a_token_for_a_well_signed_request() -> None:
    f = FakeQianfanV2(access_key=IAM_AK, secret_key=IAM_SK, clock=lambda: NOW)
    r = f.handler(iam_request())
    assert r.status_code == 201
    body = r.json()
    assert list(body) == ["userId", "token", "status", "createTime", "expireTime"]
    assert body["token"].startswith("bce-v3/ALTAK-") and body["status"] == "enable"
    assert body["createTime"] == "2024-02-28T03:05:02Z"
    assert body["expireTime"] == "2024-02-28T04:05:02Z"
    assert f.issued_tokens == [body["token"]] and f.token_requests == 1
    chat = httpx.Request(
        "POST",
        V2_CHAT,
        json={"model": "ernie-5.1", "messages": HELLO},
        headers={"Authorization": f"Bearer {body['token']}"},
    )
    assert f.handler(chat).status_code == 200
    f.expire_tokens()
    assert f.handler(chat).json()["error"]["code"] == "invalid_iam_token"


@pytest.mark.parametrize(
    ("request_args", "code"),
    [
        ({"sk": "wrong-secret-0123456789"}, "SignatureDoesNotMatch"),
        ({"ak": "ALTAKsomeoneElse01"}, "InvalidAccessKeyId"),
        ({"at": NOW - 3600}, "RequestExpired"),
    ],
)
def test_v2_iam_refuses_bad_signatures_as_iam_does(request_args: dict[str, Any], code: str) -> None:
    f = FakeQianfanV2(access_key=IAM_AK, secret_key=IAM_SK, clock=lambda: NOW)
    r = f.handler(iam_request(**request_args))
    assert r.status_code == 401 and r.json()["code"] == code
    assert f.issued_tokens == []


def test_v2_iam_verifier_agrees_with_baidus_signer_on_a_query_with_odd_characters() -> None:
    from baidubce import utils as bce_utils
    from baidubce.auth import bce_v1_signer
    from baidubce.auth.bce_credentials import BceCredentials

    from llm_bridge.testing.qianfan import verify_bce_signature

    request = httpx.Request("GET", IAM_URL, params={"expireInSeconds": "60", "a b": "c/d~"})
    request.headers["x-bce-date"] = "2024-02-28T03:05:02Z"
    auth = bce_v1_signer.sign(
        BceCredentials(IAM_AK, IAM_SK),
        b"GET",
        bce_utils.normalize_string(request.url.path, False),
        {k.encode(): v.encode() for k, v in request.headers.items()},
        {k.encode(): v.encode() for k, v in request.url.params.multi_items()},
        timestamp=int(NOW),
        expiration_in_seconds=300,
        headers_to_sign={b"host", b"x-bce-date"},
    )
    request.headers["authorization"] = auth.decode()
    assert verify_bce_signature(request, IAM_AK, IAM_SK, now=NOW + 10) is None
    assert verify_bce_signature(request, IAM_AK, IAM_SK + "x", now=NOW + 10) is not None


@pytest.mark.parametrize(
    "messages",
    [
        [{"role": "assistant", "content": "a"}, {"role": "user", "content": "u"}],
        [{"role": "user", "content": "u"}, {"role": "user", "content": "u"}],
        [{"role": "user", "content": "u"}, {"role": "system", "content": "s"}],
        [{"role": "user", "content": "u"}, {"role": "assistant", "content": "a"}],
        [{"role": "user", "content": "u"}, {"role": "tool", "content": "t", "tool_call_id": "x"}],
        [{"role": "user", "content": "  "}],
    ],
)
def test_v2_refuses_messages_out_of_order(messages: list[dict[str, Any]]) -> None:
    r = v2chat(v2fake(), messages=messages)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "code": "invalid_argument",
        "message": r.json()["error"]["message"],
        "type": "invalid_request_error",
    }


def test_v2_last_message_must_be_user_for_ernie_45_and_x1_only() -> None:
    history = [
        {"role": "user", "content": "u"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    assert v2chat(v2fake(), model="deepseek-v3", messages=history).status_code == 200
    assert v2chat(v2fake(), model="ernie-4.5-turbo-128k", messages=history).status_code == 400
    assert v2chat(v2fake(), model="ernie-x1-turbo-32k", messages=history).status_code == 400


def test_v2_thinking_fields() -> None:
    f = v2fake()
    body = v2chat(f, model="ernie-5.1", enable_thinking=True).json()
    assert body["choices"][0]["message"]["reasoning_content"] == "(offline fake ernie-5.1 thinking)"
    body = v2chat(f, model="ernie-5.1").json()
    assert "reasoning_content" not in body["choices"][0]["message"]
    chunks = v2stream(f.reply("答", reasoning_content="想"), model="ernie-x1.1")
    assert chunks[0]["choices"][0]["delta"] == {"reasoning_content": "想"}
    assert chunks[1]["choices"][0]["delta"] == {"content": "答"}
    r = v2chat(f, model="ernie-5.1", enable_thinking=True, thinking_budget=50)
    assert r.status_code == 400 and "thinking_budget" in r.json()["error"]["message"]


def test_v2_prompt_cache_reports_cached_tokens() -> None:
    f = v2fake(prompt_cache=True)
    first = [{"role": "system", "content": "规则" * 50}, {"role": "user", "content": "一"}]
    assert "prompt_tokens_details" not in v2chat(f, messages=first).json()["usage"]
    again = [*first, {"role": "assistant", "content": "好"}, {"role": "user", "content": "二"}]
    usage = v2chat(f, messages=again).json()["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] > 0
    assert list(usage) == [
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "prompt_tokens_details",
    ]
    assert "prompt_tokens_details" not in v2chat(v2fake(), messages=again).json()["usage"]
