"""The fault suite: real sockets, real faults, for Zhipu, Qianfan v1 and DashScope (issue 6).

Each test runs a provider fake behind `llm_bridge.testing.serve` (a loopback HTTP server on
127.0.0.1, started and stopped by the test) and points an ordinary client at it, so the
library's real httpx transport, connection pool, timeouts and retry loop are exercised.
Faults are injected by the server (resets, stalls, truncations) or scripted on the fake
(429 with retry-after, 5xx, errors inside HTTP 200 bodies, malformed events). Every test
asserts the exception class, the number of attempts the server saw and, through
``pytest.mark.timeout`` and small client timeouts, that nothing hangs. Retry waits are not
slept: the autouse ``no_retry_sleep`` fixture records them.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import httpx
import pytest
from helpers import HELLO, chat, consume, text_of
from hypothesis import given, settings
from hypothesis import strategies as st

import llm_bridge
from llm_bridge import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AsyncOpenAI,
    InternalServerError,
    OpenAI,
    RateLimitError,
)
from llm_bridge._retry import MAX_RETRY_AFTER, retry_delay
from llm_bridge.testing import FakeDashScope, FakeQianfan, FakeZhipu, Fault, LoopbackServer, serve

pytestmark = pytest.mark.timeout(30)

PROVIDERS = ("zhipu", "qianfan", "dashscope")
ZHIPU_KEY = "fault-suite-id.fault-suite-secret"
QIANFAN_AK, QIANFAN_SK = "faultSuiteAK", "faultSuiteSK"
DASHSCOPE_KEY = "sk-fault-suite-key"
#: A long answer: about 175 stream events, several kilobytes on every provider's wire.
LONG = "".join(f"片段{i:03d};" for i in range(100))
#: A body offset inside the stream above: past its first events, well before its end.
MID = 1500
#: Read timeout for the stall tests (a stall is far longer; a healthy read takes ms).
READ_TIMEOUT = 0.5
SHORT_TIMEOUT = httpx.Timeout(READ_TIMEOUT, connect=2.0)
SSE = {"Content-Type": "text/event-stream"}
TOKEN = "/oauth/2.0/token"

#: Per provider: the model, and the path fragment of its chat requests.
MODELS = {"zhipu": "glm-4-flash", "qianfan": "ernie-3.5-8k", "dashscope": "qwen-plus"}
CHAT_PATHS = {
    "zhipu": "/chat/completions",
    "qianfan": "/wenxinworkshop/chat/",
    "dashscope": "/generation",
}


# --------------------------------------------------------------------------- harness


@dataclass
class Target:
    """One provider fake behind a running loopback server, and how to reach it."""

    provider: str
    fake: Any
    server: LoopbackServer

    @property
    def model(self) -> str:
        return MODELS[self.provider]

    @property
    def chat_path(self) -> str:
        return CHAT_PATHS[self.provider]

    def client(self, mode: str, **kwargs: Any) -> Any:
        cls = OpenAI if mode == "sync" else AsyncOpenAI
        url = self.server.url
        if self.provider == "zhipu":
            return cls(provider="zhipu", api_key=ZHIPU_KEY, base_url=url + "/api/paas/v4", **kwargs)
        if self.provider == "qianfan":
            config = {
                "providers": {"qianfan": {"base_url": url, "token_url": url + TOKEN, "api": "v1"}}
            }
            return cls(
                provider="qianfan",
                api_key=QIANFAN_AK,
                secret_key=QIANFAN_SK,
                config=config,
                **kwargs,
            )
        return cls(provider="dashscope", api_key=DASHSCOPE_KEY, base_url=url + "/api/v1", **kwargs)

    def fault(self, *faults: Fault) -> None:
        """Queue faults for the chat requests (a Qianfan token fetch passes through)."""
        self.server.faults.extend(replace(f, path=self.chat_path) for f in faults)

    def attempts(self) -> int:
        """Chat requests that reached the server, faulted or not."""
        return sum(self.chat_path in r.url.path for r in self.server.requests)

    def answered(self) -> int:
        """Chat requests the fake answered."""
        return sum(self.chat_path in r.url.path for r in self.fake.requests)


def make_fake(provider: str) -> Any:
    if provider == "zhipu":
        return FakeZhipu(api_key=ZHIPU_KEY)
    if provider == "qianfan":
        return FakeQianfan(QIANFAN_AK, QIANFAN_SK)
    return FakeDashScope(api_key=DASHSCOPE_KEY)


@pytest.fixture(params=PROVIDERS)
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    fake = make_fake(request.param)
    started = time.monotonic()
    with serve(fake) as server:
        yield Target(request.param, fake, server)
    assert time.monotonic() - started < 30


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


async def chat_error(mode: str, client: Any, **params: Any) -> APIError:
    """The APIError one chat call raises (fails the test if it does not)."""
    with pytest.raises(APIError) as info:
        await chat(mode, client, **params)
    return info.value


def assert_usage_recorded(records: list[Any]) -> None:
    """A broken stream still records what was consumed: once, marked estimated."""
    assert len(records) == 1, records
    assert records[0].estimated and records[0].usage.completion_tokens > 0


async def close(client: Any) -> None:
    result = client.close()
    if asyncio.iscoroutine(result):
        await result


# --------------------------------------------------------------------------- 429 and 5xx


@pytest.mark.parametrize(("header", "value"), [("retry-after", "2"), ("retry-after-ms", "2000")])
async def test_429_with_retry_after_is_retried_after_that_wait(
    target: Target, mode: str, header: str, value: str, no_retry_sleep: list[float]
):
    target.fake.fail("rate_limit", status=429, headers={header: value}).reply("好了")
    client = target.client(mode)
    result = await chat(mode, client, model=target.model)
    assert result.choices[0].message.content == "好了"
    assert no_retry_sleep == [2.0]
    assert target.attempts() == 2
    await close(client)


async def test_retry_after_as_an_http_date(target: Target, no_retry_sleep: list[float]):
    when = email.utils.formatdate(time.time() + 3, usegmt=True)
    target.fake.fail("rate_limit", status=429, headers={"retry-after": when}).reply("好了")
    client = target.client("sync")
    assert client.chat.completions.create(model=target.model, messages=HELLO)
    assert len(no_retry_sleep) == 1 and 1.0 < no_retry_sleep[0] <= 3.0
    client.close()


async def test_a_retry_after_beyond_the_cap_falls_back_to_backoff(
    target: Target, no_retry_sleep: list[float]
):
    target.fake.fail("rate_limit", status=429, headers={"retry-after": "3600"}).reply("好了")
    client = target.client("sync")
    assert client.chat.completions.create(model=target.model, messages=HELLO)
    assert len(no_retry_sleep) == 1 and no_retry_sleep[0] <= 0.5
    client.close()


@pytest.mark.parametrize(
    "value", ["soon", "nan", "inf", "-inf", "1e999", "Mon, 99 Foo 2026 99:99:99 GMT", "  "]
)
async def test_an_unreadable_retry_after_is_ignored_and_the_retry_still_happens(
    target: Target, value: str, no_retry_sleep: list[float]
):
    """Issue 19: a Retry-After that is neither a number nor a date raised ValueError, which
    lost the RateLimitError and its retry. Now it is no wait: the usual backoff applies."""
    headers = {"retry-after": value, "retry-after-ms": value}
    target.fake.fail("rate_limit", status=429, headers=headers).reply("好了")
    client = target.client("sync")
    assert client.chat.completions.create(model=target.model, messages=HELLO)
    assert len(no_retry_sleep) == 1 and 0 < no_retry_sleep[0] <= 0.5
    assert target.attempts() == 2
    client.close()


@given(
    st.dictionaries(
        st.sampled_from(["retry-after", "retry-after-ms"]),
        st.binary(max_size=40).map(lambda raw: raw.decode("latin-1")),
    )
)
@settings(max_examples=500, deadline=None)
def test_retry_delay_is_total_over_any_header_text(headers: dict[str, str]) -> None:
    request = httpx.Request("POST", "https://example.invalid/")
    raw = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    response = httpx.Response(429, headers=raw, request=request)
    error = llm_bridge.RateLimitError("slow down", response=response, body=None)
    delay = retry_delay(error, 1)
    assert 0 <= delay <= MAX_RETRY_AFTER


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_5xx_storm_then_success(
    target: Target, mode: str, stream: bool, no_retry_sleep: list[float]
):
    target.fake.fail("server_error", status=500).fail("overloaded", status=503).reply("好了")
    client = target.client(mode)
    result = await chat(mode, client, model=target.model, stream=stream)
    if stream:
        chunks, error = await consume(result)
        assert error is None and text_of(chunks) == "好了"
    else:
        assert result.choices[0].message.content == "好了"
    assert target.attempts() == 3
    # exponential backoff with jitter: 0.5 s then 1 s, each less up to a quarter
    assert len(no_retry_sleep) == 2
    assert 0.375 <= no_retry_sleep[0] <= 0.5 and 0.75 <= no_retry_sleep[1] <= 1.0
    await close(client)


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_5xx_beyond_the_retries_is_an_internal_server_error(
    target: Target, mode: str, max_retries: int
):
    for _ in range(max_retries + 2):
        target.fake.fail("server_error", status=500)
    client = target.client(mode, max_retries=max_retries)
    error = await chat_error(mode, client, model=target.model)
    assert type(error) is InternalServerError
    assert error.status_code == 500
    assert error.provider == target.provider
    assert target.attempts() == max_retries + 1
    await close(client)


# --------------------------------------------------------------------------- resets


async def test_a_reset_before_any_response_is_retried_then_raised(
    target: Target, mode: str, no_retry_sleep: list[float]
):
    target.fault(Fault.reset_before(), Fault.reset_before(), Fault.reset_before())
    client = target.client(mode)
    error = await chat_error(mode, client, model=target.model)
    assert type(error) is APIConnectionError
    assert target.attempts() == 3
    assert target.answered() == 0
    assert len(no_retry_sleep) == 2
    await close(client)


async def test_resets_before_any_response_then_success(target: Target, mode: str):
    target.fault(Fault.reset_before(), Fault.reset_before())
    target.fake.reply("好了")
    client = target.client(mode)
    result = await chat(mode, client, model=target.model)
    assert result.choices[0].message.content == "好了"
    assert target.attempts() == 3
    await close(client)


async def test_a_reset_mid_stream_raises_after_the_chunks(target: Target, mode: str):
    target.fake.reply(LONG)
    target.fault(Fault.reset_after(MID))
    records: list[Any] = []
    client = target.client(mode, on_usage=records.append)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert chunks, "the chunks before the reset reach the caller"
    assert LONG.startswith(text_of(chunks)) and text_of(chunks) != LONG
    assert type(error) is APIConnectionError  # never a silent end
    assert target.attempts() == 1  # a stream is not retried once a chunk was delivered
    assert_usage_recorded(records)
    await close(client)


async def test_a_stream_the_fake_cuts_is_a_dropped_socket(target: Target, mode: str):
    target.fake.cut_stream(3, LONG)
    client = target.client(mode)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert text_of(chunks) == LONG[:12]
    assert type(error) is APIConnectionError
    assert target.attempts() == 1
    await close(client)


@pytest.mark.parametrize("nbytes", [0, 10])
async def test_a_reset_before_the_first_chunk_is_retried(
    target: Target, mode: str, nbytes: int, no_retry_sleep: list[float]
):
    target.fake.reply("丢了").reply("第二次")
    target.fault(Fault.reset_after(nbytes))
    client = target.client(mode)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert error is None
    assert text_of(chunks) == "第二次"
    assert target.attempts() == 2
    assert len(no_retry_sleep) == 1
    await close(client)


# --------------------------------------------------------------------------- timeouts


async def test_a_stall_mid_stream_is_a_timeout(target: Target, mode: str):
    target.fake.reply(LONG)
    target.fault(Fault.stall_after(MID, 20.0))
    client = target.client(mode, timeout=SHORT_TIMEOUT)
    started = time.monotonic()
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert chunks
    assert type(error) is APITimeoutError
    assert target.attempts() == 1
    assert time.monotonic() - started < READ_TIMEOUT + 3
    await close(client)


async def test_a_stall_before_the_first_chunk_is_retried(target: Target):
    target.fake.reply("慢了").reply("第二次")
    target.fault(Fault.stall_after(0, 20.0))
    client = target.client("sync", timeout=SHORT_TIMEOUT)
    chunks, error = await consume(await chat("sync", client, model=target.model, stream=True))
    assert error is None
    assert text_of(chunks) == "第二次"
    assert target.attempts() == 2
    client.close()


async def test_a_slow_answer_times_out_per_attempt(target: Target):
    target.fault(Fault.delay(20.0))
    client = target.client("sync", timeout=SHORT_TIMEOUT, max_retries=0)
    started = time.monotonic()
    error = await chat_error("sync", client, model=target.model)
    assert type(error) is APITimeoutError
    assert target.attempts() == 1
    assert time.monotonic() - started < READ_TIMEOUT + 3
    client.close()


async def test_the_per_call_timeout_overrides_the_clients(target: Target):
    target.fault(Fault.delay(20.0))
    client = target.client("sync", max_retries=0)  # openai's 600 s default
    error = await chat_error("sync", client, model=target.model, timeout=SHORT_TIMEOUT)
    assert type(error) is APITimeoutError
    client.close()


# --------------------------------------------------------------------------- truncation


async def test_truncated_sse_raises_after_the_chunks(target: Target, mode: str):
    target.fake.reply(LONG)
    target.fault(Fault.truncate_after(MID))
    records: list[Any] = []
    client = target.client(mode, on_usage=records.append)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert chunks and LONG.startswith(text_of(chunks)) and text_of(chunks) != LONG
    assert isinstance(error, (APIConnectionError, APIError))
    assert target.attempts() == 1
    assert_usage_recorded(records)
    await close(client)


async def test_sse_that_ends_cleanly_before_the_finish_raises(target: Target, mode: str):
    target.fake.cut_stream(2, LONG, cut_raises=False)
    client = target.client(mode)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert text_of(chunks) == LONG[:8]
    assert type(error) is APIConnectionError
    assert target.attempts() == 1
    await close(client)


async def test_a_truncated_json_body_is_a_connection_error_after_retries(target: Target, mode: str):
    target.fault(*[Fault.truncate_after(20)] * 3)
    client = target.client(mode)
    error = await chat_error(mode, client, model=target.model)
    assert type(error) is APIConnectionError
    assert target.attempts() == 3
    await close(client)


# --------------------------------------------------------------------------- malformed events

#: One good first event per provider, in its native framing.
GOOD_EVENT = {
    "zhipu": 'data: {"id":"t1","created":1,"model":"glm-4-flash","choices":[{"index":0,'
    '"delta":{"role":"assistant","content":"你好"}}]}\n\n',
    "qianfan": 'data: {"id":"as-1","object":"chat.completion","created":1,"sentence_id":0,'
    '"is_end":false,"is_truncated":false,"result":"你好","need_clear_history":false,'
    '"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n',
    "dashscope": 'id:1\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[{"message":'
    '{"content":"你好","role":"assistant"},"finish_reason":"null"}]},"usage":{"total_tokens":2,'
    '"output_tokens":1,"input_tokens":1},"request_id":"r-1"}\n\n',
}
BAD_EVENT = {
    "zhipu": 'data: {"id":"t1","choices":[{"index":0,"delta":{"content":\n\n',
    "qianfan": 'data: {"id":"as-1","result":"你\n\n',
    "dashscope": 'id:2\nevent:result\n:HTTP_STATUS/200\ndata:{"output":{"choices":[\n\n',
}


async def test_malformed_json_in_the_first_event_is_an_api_error(target: Target, mode: str):
    target.fake.raw(200, BAD_EVENT[target.provider], SSE)
    client = target.client(mode)
    try:
        chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    except APIError as raised:
        chunks, error = [], raised
    assert chunks == []
    assert isinstance(error, APIError)
    assert target.attempts() == 1  # a body that cannot be read is not retried
    await close(client)


async def test_malformed_json_after_a_good_event_raises_after_it(target: Target, mode: str):
    target.fake.raw(200, GOOD_EVENT[target.provider] + BAD_EVENT[target.provider], SSE)
    records: list[Any] = []
    client = target.client(mode, on_usage=records.append)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert text_of(chunks) == "你好"
    assert isinstance(error, APIError)
    assert target.attempts() == 1
    assert_usage_recorded(records)
    await close(client)


async def test_malformed_json_body_is_an_api_error(target: Target, mode: str):
    target.fake.raw(200, '{"choices": [', {"Content-Type": "application/json"})
    client = target.client(mode)
    error = await chat_error(mode, client, model=target.model)
    assert isinstance(error, APIError)
    assert target.attempts() == 1
    await close(client)


# --------------------------------------------------------------------------- errors in HTTP 200


def script_error_in_200(target: Target, stream: bool) -> None:
    """A retryable rate-limit error inside an HTTP 200 answer, in the provider's framing."""
    fake, provider = target.fake, target.provider
    if provider == "qianfan":
        fake.fail("rate_limit")  # {"error_code":18} in a 200 JSON body, also for streams
    elif stream:
        fake.error_mid_stream(0, "rate_limit")  # an error event first in a 200 stream
    elif provider == "zhipu":
        body = {"error": {"code": "1302", "message": "您的账户已达到速率限制"}}
        fake.raw(200, json.dumps(body, ensure_ascii=False), {"Content-Type": "application/json"})
    else:
        body = {"code": "Throttling.RateQuota", "message": "rate limited", "request_id": "r-1"}
        fake.raw(200, json.dumps(body), {"Content-Type": "application/json"})


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_a_retryable_error_inside_http_200_is_retried(
    target: Target, mode: str, stream: bool, no_retry_sleep: list[float]
):
    script_error_in_200(target, stream)
    target.fake.reply("好了")
    client = target.client(mode)
    result = await chat(mode, client, model=target.model, stream=stream)
    if stream:
        chunks, error = await consume(result)
        assert error is None and text_of(chunks) == "好了"
    else:
        assert result.choices[0].message.content == "好了"
    assert target.attempts() == 2
    assert len(no_retry_sleep) == 1
    await close(client)


async def test_a_retryable_error_inside_http_200_beyond_the_retries(target: Target, mode: str):
    for _ in range(3):
        script_error_in_200(target, stream=False)
    client = target.client(mode)
    error = await chat_error(mode, client, model=target.model)
    assert type(error) is RateLimitError
    assert error.code == "rate_limit_exceeded"
    assert target.attempts() == 3
    await close(client)


async def test_an_error_event_after_chunks_is_raised_not_retried(target: Target, mode: str):
    target.fake.error_mid_stream(2, "content_filter", content=LONG)
    client = target.client(mode)
    chunks, error = await consume(await chat(mode, client, model=target.model, stream=True))
    assert text_of(chunks) == LONG[:8]
    assert isinstance(error, APIStatusError)
    assert target.attempts() == 1
    await close(client)


# --------------------------------------------------------------------------- arrears


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
async def test_arrears_are_not_retried(
    target: Target, mode: str, stream: bool, no_retry_sleep: list[float]
):
    target.fake.fail("arrears")  # Zhipu 1113 (HTTP 429), Qianfan 17, DashScope Arrearage
    client = target.client(mode)
    error = await chat_error(mode, client, model=target.model, stream=stream)
    assert type(error) is RateLimitError
    assert error.code == "insufficient_quota"
    assert target.attempts() == 1
    assert no_retry_sleep == []
    await close(client)


# --------------------------------------------------------------------------- Qianfan tokens


@pytest.fixture
def qianfan() -> Iterator[Target]:
    fake = make_fake("qianfan")
    with serve(fake) as server:
        yield Target("qianfan", fake, server)


async def test_an_expired_token_is_renewed_once_for_50_concurrent_threads(qianfan: Target):
    fake = qianfan.fake
    client = qianfan.client("sync")
    client.chat.completions.create(model=qianfan.model, messages=HELLO)  # warm the token
    assert fake.token_requests == 1
    fake.expire_tokens()

    def one(i: int) -> str:
        messages = [{"role": "user", "content": f"第{i}个"}]
        result = client.chat.completions.create(model=qianfan.model, messages=messages)
        return result.choices[0].message.content

    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    assert answers == [f"(offline fake completions) You said: 第{i}个" for i in range(50)]
    assert fake.token_requests == 2  # exactly one new token for all fifty
    assert len(fake.issued_tokens) == 2
    client.close()


async def test_an_expired_token_is_renewed_once_for_50_concurrent_tasks(qianfan: Target):
    fake = qianfan.fake
    client = qianfan.client("async")
    await client.chat.completions.create(model=qianfan.model, messages=HELLO)
    fake.expire_tokens()

    async def one(i: int) -> str:
        messages = [{"role": "user", "content": f"第{i}个"}]
        result = await client.chat.completions.create(model=qianfan.model, messages=messages)
        return result.choices[0].message.content

    answers = await asyncio.gather(*(one(i) for i in range(50)))
    assert answers == [f"(offline fake completions) You said: 第{i}个" for i in range(50)]
    assert fake.token_requests == 2
    await client.close()


async def test_a_reset_token_fetch_is_retried(qianfan: Target, mode: str):
    qianfan.server.faults.append(Fault.reset_before(path=TOKEN))
    client = qianfan.client(mode)
    result = await chat(mode, client, model=qianfan.model)
    assert result.choices[0].message.content.endswith("你好")
    assert qianfan.fake.token_requests == 1  # the reset one never reached the fake
    assert sum(TOKEN in r.url.path for r in qianfan.server.requests) == 2
    await close(client)


# --------------------------------------------------------------------------- releasing


def pool_connections(client: Any) -> list[Any]:
    return list(client._engine.http._transport._pool.connections)


@pytest.mark.parametrize("how", ["close", "with"])
async def test_closing_a_stream_early_releases_its_connection(target: Target, mode: str, how: str):
    client = target.client(mode)
    if target.provider == "qianfan":
        await chat(mode, client, model=target.model)  # fetch the token first
    target.fake.reply(LONG)
    target.fault(Fault.stall_after(MID, 20.0))  # the server is mid-answer when we leave
    stream = await chat(mode, client, model=target.model, stream=True)
    started = time.monotonic()
    if mode == "sync":
        if how == "with":
            with stream:
                next(iter(stream))
        else:
            next(iter(stream))
            stream.close()
    elif how == "with":
        async with stream:
            await stream.__anext__()
    else:
        await stream.__anext__()
        await stream.close()
    # The server notices the client hung up (its stall ends early) and the pool is empty.
    assert target.server.wait_for_connections(open_at_most=0, timeout=5.0)
    assert time.monotonic() - started < 5.0
    assert pool_connections(client) == []
    assert target.attempts() == 1 + (target.provider == "qianfan")
    await close(client)


async def test_server_stops_promptly_with_a_stalled_client(target: Target):
    target.fault(Fault.stall_after(0, 20.0))
    client = target.client("sync", timeout=httpx.Timeout(20.0, connect=2.0), max_retries=0)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            client.chat.completions.create(model=target.model, messages=HELLO, stream=True)
        except APIError as error:
            errors.append(error)

    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(call)
        deadline = time.monotonic() + 5
        while target.attempts() == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        started = time.monotonic()
        target.server.stop()
        assert time.monotonic() - started < 5.0
        future.result(timeout=5)
    assert len(errors) == 1 and isinstance(errors[0], APIConnectionError)
    client.close()
