"""The gateway under faults (issue 16, "Reliability, tested").

* A provider fault storm: a real ``llm-bridge serve`` process whose Zhipu provider is a
  fake behind `llm_bridge.testing.serve` with ~30 network faults (resets, stalls, truncated
  bodies, delays) and 5xx/429 answers queued; 50 concurrent clients (openai's Python
  client, streamed and not) each end within their timeout with a success or an
  OpenAI-shaped error, the gateway stays healthy, and the ledger has one row per request.
* A graceful shutdown whose grace runs out mid-stream: the client gets an error, never a
  silent end, and the ledger records the request once (SIGKILL mid-stream is in
  ``test_gateway_server.py``, for the SQLite and the Redis ledger).
* Bad input, generated: random methods, paths, queries, headers and bodies against the
  in-process app; every answer is a success or an OpenAI-shaped JSON error with a 4xx/5xx
  status (never a crash, a non-JSON 500 or a hang).
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Optional

import httpx
import openai
import pytest
from conftest import SUITE_TEXTS
from hypothesis import HealthCheck, example, given, reject, settings
from hypothesis import strategies as st
from test_gateway_app import AUTH, error_of, gateway
from test_gateway_app import KEY as APP_KEY
from test_gateway_app import ZHIPU_KEY as APP_ZHIPU_KEY
from test_gateway_app import settings as app_settings
from test_gateway_server import (
    HELLO,
    KEY,
    REQUEST_ID,
    ZHIPU_KEY,
    Gateway,
    StreamWatch,
    running_gateway,
)

from llm_bridge.gateway import read_entries
from llm_bridge.testing import FakeZhipu, Fault, serve

# --------------------------------------------------------------------------- a tuned server

#: Seconds per provider call in the storm's gateway: stalls and delays longer than this
#: end in a timeout (and one retry), so no request waits on a stalled provider for long.
GATEWAY_TIMEOUT = 1.5
#: What each storm client allows a request, in all.
CLIENT_TIMEOUT = 10.0


def is_openai_error_body(body: object) -> bool:
    """``{"message": str, "type", "param", "code", ...}``: what openai's clients read."""
    return (
        isinstance(body, dict)
        and {"message", "type", "param", "code"} <= set(body)
        and isinstance(body["message"], str)
        and bool(body["message"])
    )


# --------------------------------------------------------------------------- the storm


def storm_faults() -> list[Fault]:
    """30 network faults in a fixed shuffled order: resets, stalls and delays longer than
    the gateway's timeout, short ones under it, and bodies cut short."""
    long, short = GATEWAY_TIMEOUT + 2.5, 0.3
    faults = [Fault.reset_before() for _ in range(6)]
    faults += [Fault.reset_after(n) for n in (0, 20, 60, 150, 400)]
    faults += [Fault.stall_after(n, long) for n in (0, 30, 100, 250, 500)]
    faults += [Fault.stall_after(n, short) for n in (10, 200, 600)]
    faults += [Fault.truncate_after(n) for n in (0, 10, 50, 120, 300)]
    faults += [Fault.delay(long) for _ in range(4)]
    faults += [Fault.delay(short) for _ in range(2)]
    random.Random(16).shuffle(faults)
    return faults


class Outcome:
    """What one storm client saw."""

    def __init__(self, index: int, stream: bool) -> None:
        self.index = index
        self.stream = stream
        self.seconds = 0.0
        self.request_id: Optional[str] = None
        self.text: Optional[str] = None
        self.finish_reason: Optional[str] = None
        self.error: Optional[BaseException] = None

    def __repr__(self) -> str:
        what = f"error={self.error!r}" if self.error else f"text={self.text!r}"
        return f"<request {self.index} stream={self.stream} {self.seconds:.2f}s {what}>"


def one_request(api: openai.OpenAI, index: int, stream: bool) -> Outcome:
    outcome = Outcome(index, stream)
    messages = [{"role": "user", "content": f"第{index}号请求"}]
    started = time.monotonic()
    try:
        raw = api.chat.completions.with_raw_response.create(
            model="fast", messages=messages, stream=stream
        )
        outcome.request_id = raw.headers.get(REQUEST_ID)
        parsed: Any = raw.parse()
        if stream:
            parts, finish = [], None
            for chunk in parsed:
                for choice in chunk.choices:
                    parts.append(choice.delta.content or "")
                    finish = choice.finish_reason or finish
            outcome.text, outcome.finish_reason = "".join(parts), finish
        else:
            outcome.text = parsed.choices[0].message.content
            outcome.finish_reason = parsed.choices[0].finish_reason
    except Exception as error:  # judged by the test
        outcome.error = error
        response = getattr(error, "response", None)
        if response is not None and outcome.request_id is None:
            outcome.request_id = response.headers.get(REQUEST_ID)
        SUITE_TEXTS.append(f"{error!s} {getattr(error, 'body', None)!r}")
    outcome.seconds = time.monotonic() - started
    return outcome


def wait_for_entries(ledger: Path, count: int, timeout: float = 10.0) -> list[Any]:
    deadline = time.monotonic() + timeout
    entries: list[Any] = []
    while time.monotonic() < deadline:
        entries = list(read_entries(ledger)) if ledger.exists() else []
        if len(entries) >= count:
            break
        time.sleep(0.1)
    return entries


#: The message of the gateway's own 500 (an exception it did not expect): a bug, whatever
#: the provider did.
INTERNAL = "The gateway failed to answer this request"


@pytest.mark.parametrize("retries", [0, 1])
def test_a_provider_fault_storm_ends_every_request_cleanly(tmp_path: Path, retries: int) -> None:
    """50 concurrent clients against a provider that resets, stalls, truncates, delays and
    answers 500/429: each ends within its timeout with a success (the whole answer) or an
    OpenAI-shaped error; the gateway stays healthy; the ledger has one row per request."""
    requests = 50
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    for kind in ["server_error"] * 5 + ["rate_limit"] * 4 + ["server_error"]:
        fake.fail(kind)
    began = time.monotonic()
    extra = f"timeout = {GATEWAY_TIMEOUT}\nmax_retries = {retries}"
    with serve(fake, faults=storm_faults()) as upstream:
        gw = Gateway(tmp_path, upstream, extra=extra, rpm=100000, tpm=100000000)
        try:
            api = openai.OpenAI(
                base_url=gw.url + "/v1", api_key=KEY, max_retries=0, timeout=CLIENT_TIMEOUT
            )
            with ThreadPoolExecutor(max_workers=requests) as pool:
                futures = [pool.submit(one_request, api, i, i % 2 == 0) for i in range(requests)]
                outcomes = [f.result(timeout=45) for f in futures]

            # Every request ended, within its timeout, as a success or an OpenAI error.
            for outcome in outcomes:
                assert outcome.seconds < CLIENT_TIMEOUT, outcome
                assert outcome.request_id, outcome
                if outcome.error is None:
                    # A success is the whole answer: no silently truncated stream.
                    expected = f"(offline fake glm-4-flash) You said: 第{outcome.index}号请求"
                    assert outcome.text == expected, outcome
                    assert outcome.finish_reason == "stop", outcome
                    continue
                error = outcome.error
                assert isinstance(error, openai.APIError), outcome
                # Not a dropped connection or a client timeout: the gateway answered.
                assert not isinstance(error, openai.APIConnectionError), outcome
                assert is_openai_error_body(error.body), (outcome, error.body)
                assert INTERNAL not in error.message, (outcome, gw.output())
                if isinstance(error, openai.APIStatusError):
                    assert error.status_code in (429, 500, 502, 503, 504), outcome
            # The storm did something: every fault was met, and without retries some
            # requests failed (with one retry most recover), but never all of them.
            # (a request may also time out connecting under the storm: most, not all, arrive)
            assert not upstream.faults and len(upstream.requests) >= requests * 0.8
            failed = [o for o in outcomes if o.error is not None]
            assert len(failed) < requests and (failed or retries), outcomes

            # The gateway is still healthy and answers normally once the faults are spent.
            while fake.next_outcome() is not None:
                pass
            assert httpx.get(gw.url + "/healthz", timeout=5).json() == {"status": "ok"}
            assert httpx.get(gw.url + "/readyz", timeout=5).status_code == 200
            after = one_request(api, requests, stream=True)
            assert after.error is None and after.finish_reason == "stop", after

            # One ledger row per request, each under the id its answer carried.
            entries = wait_for_entries(gw.ledger, requests + 1)
            assert len(entries) == requests + 1, (len(entries), outcomes)
            by_id = {e.request_id: e for e in entries}
            assert len(by_id) == len(entries)
            assert set(by_id) == {o.request_id for o in [*outcomes, after]}
            for outcome in outcomes:
                entry = by_id[outcome.request_id]
                assert entry.key == "node-team" and entry.model == "fast", entry
                if outcome.error is None:
                    assert entry.status == 200 and entry.error_code is None, (outcome, entry)
                else:
                    assert entry.status >= 400 and entry.error_code, (outcome, entry)
                    if isinstance(outcome.error, openai.APIStatusError):
                        assert entry.status == outcome.error.status_code, (outcome, entry)
        finally:
            gw.stop()
    output = gw.output()
    assert "Exception in ASGI application" not in output, output
    assert "unexpected error" not in output, output
    assert len(list(read_entries(gw.ledger))) == requests + 1  # the shutdown added none
    assert time.monotonic() - began < 60


@pytest.mark.parametrize("stream", [False, True])
async def test_a_provider_error_body_cut_short_is_a_connection_error(
    tmp_path: Path, stream: bool
) -> None:
    """The provider answers 500 and drops the connection inside that error's body: a
    network failure like any other (retried, then 502), never the gateway's own crash."""
    fake = FakeZhipu(api_key=APP_ZHIPU_KEY).fail("server_error")
    with serve(fake, faults=[Fault.truncate_after(10)]) as upstream:
        config = app_settings(tmp_path)
        config["providers"]["zhipu"]["base_url"] = upstream.url + "/api/paas/v4"
        async with gateway(config, httpx.AsyncHTTPTransport()) as (_, client):
            body = {"model": "fast", "messages": HELLO, "stream": stream}
            response = await client.post("/v1/chat/completions", headers=AUTH, json=body)
    SUITE_TEXTS.append(response.text)
    # The retry (conftest makes its wait instant) gets the fake's ordinary answer.
    assert response.status_code == 200, response.text
    if stream:
        events = [e[len("data: ") :] for e in response.text.split("\n\n") if e.strip()]
        assert events[-1] == "[DONE]", events
        chunks = [json.loads(e)["choices"] for e in events[:-1]]
        text = "".join(c[0]["delta"].get("content") or "" for c in chunks if c)
    else:
        text = response.json()["choices"][0]["message"]["content"]
    assert text.endswith("You said: 你好"), response.text
    assert len(upstream.requests) == 2


# --------------------------------------------------------------------------- killed mid-stream


def assert_not_a_silent_end(watch: StreamWatch) -> None:
    """The client knows the stream broke: a transport error, or an error event last."""
    assert watch.status == 200 and watch.request_id, watch.__dict__
    assert b"[DONE]" not in watch.body
    if watch.error is None:
        last = json.loads(watch.events()[-1].removeprefix(b"data: "))
        assert is_openai_error_body(last.get("error")), watch.body
    else:
        assert isinstance(watch.error, httpx.RemoteProtocolError), watch.error


def test_a_shutdown_whose_grace_runs_out_mid_stream_records_the_request_once(
    tmp_path: Path,
) -> None:
    """SIGTERM with a 1 s grace while the provider stalls 20 s: uvicorn cancels the
    request. The client gets an error, and the ledger holds the request once, as failed."""
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("一二三四五六七八九十", chunk_size=1)
    with serve(fake, faults=[Fault.stall_after(300, 20.0)]) as upstream:
        gw = Gateway(tmp_path, upstream, grace=1)
        try:
            watch = StreamWatch(gw.url)
            assert watch.first.wait(15)
            began = time.monotonic()
            gw.process.send_signal(signal.SIGTERM)
            watch.thread.join(20)
            gw.process.wait(15)
        finally:
            gw.stop()
        assert not watch.thread.is_alive() and time.monotonic() - began < 10
        assert_not_a_silent_end(watch)
        rows = [e for e in read_entries(gw.ledger) if e.request_id == watch.request_id]
        assert len(rows) == 1, f"the cancelled request is in the ledger {len(rows)} times"
        (row,) = rows
        # What the provider streamed before the cut is accounted, as an estimate.
        assert row.completion_tokens > 0 and row.estimated, row
        # The client did not get its answer: the row must not read as a success.
        assert row.status != 200 and row.error_code, row
        # A restart on the same file adds its own requests, never that one again.
        with running_gateway(tmp_path, upstream) as second:
            second_api = openai.OpenAI(base_url=second.url + "/v1", api_key=KEY, max_retries=0)
            assert second_api.chat.completions.create(model="fast", messages=HELLO).id
    entries = list(read_entries(gw.ledger))
    assert len(entries) == 2 and len({e.request_id for e in entries}) == 2


# --------------------------------------------------------------------------- bad input

#: Bodies larger than this get 413 in the generated requests.
BODY_LIMIT = 4096

PROFILE = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

#: Text a client can put in a URL (httpx percent-encodes what needs it); control
#: characters reach the gateway as percent escapes, as from a real client.
url_text = st.text(
    st.characters(blacklist_categories=("Cc", "Cs"), blacklist_characters="?#%/\\"),
    max_size=6,
)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
good_models = st.sampled_from(["fast", "glm-4-flash", "priced", "zhipu/glm-4-flash"])
models = (
    good_models
    | st.sampled_from(["embedding-3", "qwen-plus", "glm-*", "no-such-model", "", " "])
    | json_scalars
)
parts = st.fixed_dictionaries(
    {"type": st.sampled_from(["text", "image_url", "input_text", "bogus"])},
    optional={
        "text": st.text(max_size=10) | json_scalars,
        "image_url": st.just({"url": "data:image/png;base64,AAAA"}) | json_scalars,
    },
)
contents = st.text(min_size=1, max_size=30) | st.lists(parts, max_size=3) | json_values
good_message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system"]), "content": st.text(min_size=1, max_size=30)}
)
message = st.fixed_dictionaries(
    {},
    optional={
        "role": st.sampled_from(["user", "assistant", "system", "tool", "developer", "bogus"])
        | json_scalars,
        "content": contents,
        "name": json_scalars,
        "tool_calls": json_values,
        "tool_call_id": json_scalars,
    },
)
messages = st.lists(good_message, min_size=1, max_size=3) | st.lists(message, max_size=4)
messages |= json_values
counts = st.integers(min_value=-5, max_value=5) | st.sampled_from([0, 10**9, -(10**9)])
#: Optional fields, each with plausible and wrong values.
OPTIONAL = {
    "stream": st.booleans() | json_scalars,
    "stream_options": st.just({"include_usage": True}) | json_values,
    "max_tokens": counts | json_scalars,
    "max_completion_tokens": counts | json_scalars,
    "n": counts | json_scalars,
    "temperature": st.floats(-1, 3) | json_scalars,
    "top_p": json_scalars,
    "stop": json_values,
    "tools": st.just([{"type": "function", "function": {"name": "f", "parameters": {}}}])
    | json_values,
    "tool_choice": st.sampled_from(["auto", "none", "required"]) | json_values,
    "response_format": st.sampled_from([{"type": "json_object"}, {"type": "text"}]) | json_values,
    "user": json_scalars,
    "metadata": json_values,
}
chat_bodies = st.fixed_dictionaries(
    {"model": good_models | models, "messages": messages}, optional=OPTIONAL
)
embedding_bodies = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["embedding-3", "embedding-2"]) | models,
        "input": st.text(min_size=1, max_size=20)
        | st.lists(st.text(min_size=1, max_size=10), min_size=1, max_size=3)
        | json_values,
    },
    optional={
        "encoding_format": st.sampled_from(["float", "base64"]) | json_scalars,
        "dimensions": counts | json_scalars,
        "user": json_scalars,
    },
)
responses_bodies = st.fixed_dictionaries(
    {
        "model": good_models | models,
        "input": st.text(min_size=1, max_size=20) | st.lists(message, max_size=3) | json_values,
    },
    optional={
        "instructions": json_scalars,
        "stream": st.booleans() | json_scalars,
        "max_output_tokens": counts | json_scalars,
        "previous_response_id": json_scalars,
        "store": json_scalars,
        "text": json_values,
        "reasoning": json_values,
        "tools": json_values,
    },
)


def encode(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


any_shape = st.one_of(chat_bodies, embedding_bodies, responses_bodies, json_values)
bodies = st.one_of(
    any_shape.map(encode),
    any_shape.map(lambda body: json.dumps(body).encode()),  # ASCII escapes, lone surrogates
    st.binary(max_size=64),
    st.sampled_from(
        [
            b"",
            b"{",
            b"{not json",
            b'{"model": "fast", "messages": [',
            b"\xff\xfe{}",
            b'{"model": "fast", "messages": [{"role": "user", "content": "\xe4\xbd"}]}',
            b'{"model": "fast", "model": 1}',
            b"null",
            b"[]",
            b"1e999999",
            b'{"model": "fast", "messages": [{"role": "user", "content": "hi"}]}'
            + b" " * BODY_LIMIT,
            encode({"model": "fast", "messages": [{"role": "user", "content": "字" * BODY_LIMIT}]}),
            b"[" * 2000 + b"]" * 2000,
        ]
    ),
)
#: The body each route takes, most of the time.
BODY_OF = {
    "/v1/chat/completions": chat_bodies,
    "/v1/embeddings": embedding_bodies,
    "/v1/responses": responses_bodies,
}
ROUTES = [
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/embeddings"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/responses"),
    ("GET", "/v1/responses/resp_0123"),
    ("DELETE", "/v1/responses/resp_0123"),
    ("GET", "/v1/responses/resp_0123/input_items"),
    ("GET", "/v1/models"),
    ("GET", "/v1/models/glm-4-flash"),
    ("GET", "/v1/models/fast"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
OTHER_PATHS = [
    "/v1/models/qwen-plus",
    "/v1",
    "/v1/",
    "/v1/completions",
    "/v1/chat",
    "/v1/chat/completions/",
    "/v1/chat/completions/abc",
    "/v1/images/generations",
    "/v1/files",
    "/v1/audio/speech",
    "/",
    "/favicon.ico",
]
SEGMENTS = [
    "v1",
    "chat",
    "completions",
    "embeddings",
    "responses",
    "models",
    "input_items",
    "fast",
    "..",
    ".",
    "",
    "%00",
    "%0A",
    "%0D%0A",
    "%7F",
    "%20",
    "%2F",
    "%25",
    "%3F",
    "%E4%BD%A0",
    "%FF",
    "%zz",
    "你好",
    "a b",
    "~!$&'()*+,;=:@",
]
random_paths = st.lists(st.sampled_from(SEGMENTS) | url_text, min_size=1, max_size=5).map(
    lambda segments: "/" + "/".join(segments)
)
methods = st.sampled_from(["POST", "GET", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"])
methods |= st.from_regex(r"[A-Z]{1,8}", fullmatch=True)

header_values = st.binary(max_size=24).map(
    lambda raw: bytes(b for b in raw if b == 9 or 32 <= b != 127).strip()
) | st.sampled_from(
    [b"", b"0", b"-1", b"99999999999", b"\xb2", b"1.5", b"application/json", "我的应用".encode()]
)
HEADER_NAMES = [
    "content-type",
    "content-length",
    "accept",
    "accept-encoding",
    "x-api-key",
    "openai-organization",
    "openai-project",
    "openai-beta",
    "x-stainless-timeout",
    "x-stainless-retry-count",
    "x-stainless-raw-response",
    "idempotency-key",
    "x-request-id",
    "x-llm-bridge-provider",
    "x-title",
    "user-agent",
    "cookie",
    "expect",
    "x-forwarded-for",
]
header_names = st.sampled_from(HEADER_NAMES) | st.from_regex(
    r"[a-z][a-z0-9-]{0,15}", fullmatch=True
)
GOOD_AUTH = [(b"authorization", f"Bearer {APP_KEY}".encode())]
AUTHS = [
    *[GOOD_AUTH] * 6,
    [(b"api-key", APP_KEY.encode())],
    [(b"authorization", f"bearer   {APP_KEY}  ".encode())],
    [],
    [(b"authorization", b"Bearer ")],
    [(b"authorization", b"Bearer sk-lb-wrong")],
    [(b"authorization", f"Basic {APP_KEY}".encode())],
    [(b"authorization", b"Bearer \xff\xfe")],
    [*GOOD_AUTH, (b"authorization", b"Bearer x")],
]


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """One request: mostly a route the gateway serves with a plausible body, sometimes
    anything at all."""
    if draw(st.booleans()):
        method, path = draw(st.sampled_from(ROUTES))
    else:
        method = draw(methods)
        path = draw(st.sampled_from([p for _, p in ROUTES] + OTHER_PATHS) | random_paths)
    body = draw(st.one_of(BODY_OF.get(path, any_shape).map(encode), bodies))
    headers = list(draw(st.sampled_from(AUTHS)))
    headers += [
        (name.encode(), value)
        for name, value in draw(st.lists(st.tuples(header_names, header_values), max_size=4))
        if name not in ("authorization", "api-key", "host", "transfer-encoding")
    ]
    query = draw(st.lists(st.tuples(url_text.filter(bool), url_text), max_size=3))
    return {"method": method, "path": path, "query": query, "headers": headers, "body": body}


def check_answer(request: dict[str, Any], response: httpx.Response) -> None:
    """A success, or an OpenAI-shaped error JSON with a 4xx/5xx status."""
    SUITE_TEXTS.append(f"{response.headers!r} {response.text}")
    status, kind = response.status_code, response.headers.get("content-type", "")
    where = f"{request['method']} {request['path']} -> {status} {response.content[:300]!r}"
    assert 200 <= status < 600 and not 300 <= status < 400, where
    assert b"Traceback" not in response.content, where
    if request["method"] == "HEAD":  # no body, as HTTP says
        return
    if status >= 400:
        assert kind.startswith("application/json"), where
        body = response.json()
        assert set(body) == {"error"} and is_openai_error_body(body["error"]), where
        # Whatever the input, the gateway's answer to it is never its own crash.
        assert INTERNAL not in body["error"]["message"], where
        return
    if kind.startswith("text/event-stream"):
        events = [e for e in response.text.split("\n\n") if e.strip()]
        assert events, where
        for event in events:
            assert event.startswith(("data: ", "event: ")), where
            data = event.split("data: ", 1)[1]
            if data == "[DONE]":
                continue
            payload = json.loads(data)
            if "error" in payload:
                assert is_openai_error_body(payload["error"]), where
        return
    if kind.startswith("application/json"):
        response.json()
    elif kind.startswith("text/plain"):
        assert request["path"] == "/metrics", where
    else:
        raise AssertionError(f"unexpected content-type {kind!r}: {where}")


def build(request: dict[str, Any]) -> httpx.Request:
    return httpx.Request(
        request["method"],
        "http://gw" + request["path"],
        params=request["query"],
        headers=request["headers"],
        content=request["body"],
    )


def test_any_request_gets_a_success_or_an_openai_shaped_error(tmp_path: Path) -> None:
    """Random methods, paths, queries, headers and bodies against the in-process app."""
    config = app_settings(tmp_path, tpm=10**9, monthly_budget_cny=10**6)
    config["gateway"]["max_body_bytes"] = BODY_LIMIT
    fake = FakeZhipu(api_key=APP_ZHIPU_KEY)
    loop = asyncio.new_event_loop()
    stack = AsyncExitStack()
    try:
        _, client = loop.run_until_complete(
            stack.enter_async_context(gateway(config, fake.transport()))
        )

        async def send(request: dict[str, Any]) -> httpx.Response:
            return await client.send(build(request))

        @PROFILE
        @given(request=requests())
        @example(
            request={
                "method": "POST",
                "path": "/v1/chat/completions",
                "query": [],
                "headers": [(b"authorization", f"Bearer {APP_KEY}".encode())],
                "body": encode({"model": "fast", "messages": HELLO, "stream": True}),
            }
        )
        def check(request: dict[str, Any]) -> None:
            try:
                build(request)
            except httpx.HTTPError:
                reject()  # not a request a client could send
            try:
                response = loop.run_until_complete(asyncio.wait_for(send(request), 10))
            except asyncio.TimeoutError:
                raise AssertionError(f"no answer within 10 s: {request}") from None
            except Exception as error:  # uvicorn would answer a non-JSON 500
                raise AssertionError(f"the app raised {error!r} for {request}") from error
            check_answer(request, response)

        check()
    finally:
        loop.run_until_complete(stack.aclose())
        loop.close()
    # Whatever came in, the gateway key never went out to the provider.
    for sent in fake.requests:
        assert APP_KEY not in f"{sent.url} {sent.headers} {sent.content!r}"


#: Inputs that escaped the gateway as exceptions (uvicorn answers those with a text/plain
#: 500): a control character in the path, a header value that is not ASCII (an app name
#: in a UTF-8 ``X-Title``; a forwarded ``Content-Type``), JSON nested deeper than the
#: parser recurses, and a Content-Length of a digit that int() refuses.
CHAT = encode({"model": "fast", "messages": HELLO})
KNOWN_BAD = {
    "nul-in-path": ("POST", "/v1/%00", [], CHAT),
    "crlf-in-path": ("POST", "/v1/chat%0D%0A", [], CHAT),
    "utf8-header": ("POST", "/v1/chat/completions", [(b"x-title", "我的应用".encode())], CHAT),
    "latin1-content-type": (
        "POST",
        "/v1/chat/completions",
        [(b"content-type", b"application/json; charset=\xe9")],
        CHAT,
    ),
    "deep-json": ("POST", "/v1/chat/completions", [], b"[" * 100_000 + b"]" * 100_000),
    "deep-json-object": (
        "POST",
        "/v1/responses",
        [],
        b'{"model": "fast", "input": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    ),
    "superscript-length": ("POST", "/v1/chat/completions", [(b"content-length", b"\xb2")], CHAT),
}


@pytest.mark.parametrize("case", list(KNOWN_BAD))
async def test_known_bad_inputs_get_an_openai_shaped_answer(tmp_path: Path, case: str) -> None:
    method, path, headers, body = KNOWN_BAD[case]
    request = {
        "method": method,
        "path": path,
        "query": [],
        "headers": GOOD_AUTH + headers,
        "body": body,
    }
    fake = FakeZhipu(api_key=APP_ZHIPU_KEY)
    async with gateway(app_settings(tmp_path), fake.transport()) as (_, client):
        try:
            response = await asyncio.wait_for(client.send(build(request)), 10)
        except Exception as error:
            raise AssertionError(f"the app raised {error!r}") from error
    check_answer(request, response)
    assert response.status_code < 500, response.text


def test_bad_input_over_the_wire_gets_an_openai_shaped_answer(tmp_path: Path) -> None:
    """The same inputs through uvicorn: what a client actually gets back."""
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    with serve(fake) as upstream, running_gateway(tmp_path, upstream) as gw:
        answers = {}
        for case in (
            "nul-in-path",
            "crlf-in-path",
            "utf8-header",
            "latin1-content-type",
            "deep-json",
        ):
            method, path, headers, body = KNOWN_BAD[case]
            auth = [(b"authorization", f"Bearer {KEY}".encode())]
            response = httpx.request(
                method, gw.url + path, headers=auth + headers, content=body, timeout=10
            )
            answers[case] = (response.status_code, response.headers.get("content-type"))
            SUITE_TEXTS.append(response.text)
            if response.status_code >= 400:
                try:
                    shaped = is_openai_error_body(response.json().get("error"))
                except ValueError:
                    shaped = False
                answers[case] += (shaped,)
        assert httpx.get(gw.url + "/healthz", timeout=5).status_code == 200
    broken = {
        case: answer
        for case, answer in answers.items()
        if answer[0] >= 500 or (answer[0] >= 400 and not answer[2])
    }
    assert not broken, f"answered with a non-JSON or internal error: {broken}"


async def test_a_negative_max_tokens_does_not_refill_the_tpm_window(tmp_path: Path) -> None:
    """tpm takes the prompt plus ``max_tokens`` before the call: a negative ``max_tokens``
    (which the request is then refused for) must not hand tokens back to the window."""
    fake = FakeZhipu(api_key=APP_ZHIPU_KEY)
    async with gateway(app_settings(tmp_path, tpm=300), fake.transport()) as (_, client):
        wide = {"model": "fast", "messages": HELLO, "max_tokens": 250}
        for _ in range(2):
            response = await client.post("/v1/chat/completions", headers=AUTH, json=wide)
            assert response.status_code == 200
        small = {"model": "fast", "messages": HELLO, "max_tokens": 290}
        refused = await client.post("/v1/chat/completions", headers=AUTH, json=small)
        assert refused.status_code == 429
        negative = {"model": "fast", "messages": HELLO, "max_tokens": -(10**6)}
        response = await client.post("/v1/chat/completions", headers=AUTH, json=negative)
        assert response.status_code in (400, 429), response.text
        error_of(response)
        again = await client.post("/v1/chat/completions", headers=AUTH, json=small)
        assert again.status_code == 429, "a negative max_tokens refilled the tpm window"
    assert len(fake.requests) == 2
