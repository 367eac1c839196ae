"""Zhipu GLM v4 streams through the drop-in facade (docs/providers/zhipu.md); Z2, Z3 and Z6
are GLM's own SSE bodies, byte for byte."""

from __future__ import annotations

import json
from typing import Any

import pytest
import respx
from helpers import HELLO, ProviderChat, text_of

import llm_bridge
from llm_bridge import (
    APIConnectionError,
    APIError,
    AsyncOpenAI,
    AsyncStream,
    BadRequestError,
    InternalServerError,
    OpenAI,
    RateLimitError,
    Stream,
)
from llm_bridge.testing import FakeZhipu, ToolCallSpec
from llm_bridge.types import CompletionUsage
from llm_bridge.types.chat import ChatCompletionChunk

NOW = 1721614853.0
KEY = "id.secret"
BASE = "https://open.bigmodel.cn/api/paas/v4"
CHAT = f"{BASE}/chat/completions"
SSE = {"Content-Type": "text/event-stream; charset=UTF-8"}
TASK = "20240722102053e7277a4f94e848248ff9588ed37fb6e6"

# Transcripts exactly as GLM's API sends them.
Z2 = (
    f'data: {{"id":"{TASK}","created":1721614853,"model":"glm-4","choices":[{{"index":0,'
    '"delta":{"role":"assistant","content":"人工智能"}}]}\n'
    "\n"
    f'data: {{"id":"{TASK}","created":1721614853,"model":"glm-4","choices":[{{"index":0,'
    '"delta":{"role":"assistant","content":"助手"}}]}\n'
    "\n"
    f'data: {{"id":"{TASK}","created":1721614853,"model":"glm-4","choices":[{{"index":0,'
    '"delta":{"role":"assistant","content":"。"}}]}\n'
    "\n"
    f'data: {{"id":"{TASK}","created":1721614853,"model":"glm-4","choices":[{{"index":0,'
    '"finish_reason":"stop","delta":{"role":"assistant","content":""}}],'
    '"usage":{"prompt_tokens":13,"completion_tokens":10,"total_tokens":23}}\n'
    "\n"
    "data: [DONE]\n"
    "\n"
).encode()
Z2_TEXT = "人工智能助手。"
Z2_USAGE = {"prompt_tokens": 13, "completion_tokens": 10, "total_tokens": 23}

Z3 = (
    'data: {"id":"20251217001840c9b9004b98c84b5a","created":1765901920,"model":"glm-4-plus",'
    '"choices":[{"index":0,"finish_reason":"tool_calls","delta":{"role":"assistant",'
    '"tool_calls":[{"id":"call_20251217001840c9b9004b98c84b5a_0","index":0,"type":"function",'
    '"function":{"name":"get_weather","arguments":"{\\"city\\":\\"北京\\"}"}}]}}],'
    '"usage":{"prompt_tokens":160,"completion_tokens":12,"total_tokens":172}}\n'
    "\n"
    "data: [DONE]\n"
    "\n"
).encode()

Z6 = (
    b'data: {"id":"sens-1","created":1702657020,"model":"glm-4-flash","choices":[{"index":0,'
    b'"delta":{"role":"assistant","content":""},"finish_reason":"sensitive"}],'
    b'"usage":{"prompt_tokens":10,"completion_tokens":2,"total_tokens":12}}\n'
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)


def fake(**kwargs: Any) -> FakeZhipu:
    return FakeZhipu(clock=lambda: NOW, **kwargs)


ZHIPU = ProviderChat("zhipu", "glm-4-flash", fake, {"api_key": KEY})
client, aclient = ZHIPU.client, ZHIPU.aclient


def stream(c: OpenAI, **params: Any) -> Stream:
    params.setdefault("model", "glm-4-flash")
    params.setdefault("messages", HELLO)
    return c.chat.completions.create(stream=True, **params)


async def astream(c: AsyncOpenAI, **params: Any) -> AsyncStream:
    params.setdefault("model", "glm-4-flash")
    params.setdefault("messages", HELLO)
    return await c.chat.completions.create(stream=True, **params)


class Ended:
    """What a consumed stream left: its HTTP response, and the usage the ledger recorded."""

    def __init__(self, s: Stream, c: OpenAI) -> None:
        self.response = s.response
        records = c.usage.records()
        self.usage = CompletionUsage(**records[-1].usage.model_dump()) if records else None


def raw_stream(body: bytes, *, split_bytes: int | None = None, **params: Any):
    """The chunks of a stream whose body is ``body`` verbatim, and what it left."""
    f = fake(split_bytes=split_bytes)
    f.raw(200, body, SSE)
    c = client(f)
    s = stream(c, **params)
    return list(s), Ended(s, c)


def collect_until_error(s: Any) -> tuple[list[ChatCompletionChunk], BaseException]:
    chunks: list[ChatCompletionChunk] = []
    with pytest.raises(APIError) as info:
        for chunk in s:
            chunks.append(chunk)
    return chunks, info.value


# --------------------------------------------------------------------------- Z2 contract


def test_z2_content_deltas_concatenate_to_the_full_text():
    chunks, _ = raw_stream(Z2)
    assert text_of(chunks) == Z2_TEXT
    assert [c.choices[0].delta.content for c in chunks] == ["人工智能", "助手", "。", ""]


def test_z2_chunks_are_openai_shaped():
    chunks, _ = raw_stream(Z2)
    for chunk in chunks:
        assert isinstance(chunk, ChatCompletionChunk)
        assert chunk.object == "chat.completion.chunk"
        assert chunk.provider == "zhipu"
        assert chunk.id == TASK
        assert chunk.created == 1721614853
        assert chunk.model == "glm-4"  # the upstream model name


def test_z2_role_only_on_the_first_chunk():
    chunks, _ = raw_stream(Z2)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.role for c in chunks[1:]] == [None] * (len(chunks) - 1)


def test_z2_finish_reason_only_on_the_final_content_chunk():
    chunks, _ = raw_stream(Z2)
    assert [c.choices[0].finish_reason for c in chunks] == [None, None, None, "stop"]


def test_z2_include_usage_puts_usage_on_a_last_chunk_without_choices():
    chunks, s = raw_stream(Z2, stream_options={"include_usage": True})
    last = chunks[-1]
    assert last.choices == []
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (
        13,
        10,
        23,
    )
    assert last.object == "chat.completion.chunk"
    assert last.provider == "zhipu"
    assert last.id == TASK
    assert all(c.usage is None for c in chunks[:-1])
    assert all(c.choices for c in chunks[:-1])
    assert text_of(chunks) == Z2_TEXT
    assert s.usage is not None
    assert s.usage.model_dump(include=set(Z2_USAGE)) == Z2_USAGE


def test_z2_without_include_usage_no_chunk_has_usage_but_the_ledger_has_it():
    chunks, s = raw_stream(Z2)
    assert len(chunks) == 4
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)
    assert isinstance(s.usage, CompletionUsage)
    assert s.usage.model_dump(include=set(Z2_USAGE)) == Z2_USAGE


def test_z2_include_usage_false_is_like_absent():
    chunks, _ = raw_stream(Z2, stream_options={"include_usage": False})
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)


@pytest.mark.parametrize("split", range(1, 8))
def test_z2_split_bytes_give_identical_chunks(split: int):
    whole, _ = raw_stream(Z2, stream_options={"include_usage": True})
    pieces, _ = raw_stream(Z2, split_bytes=split, stream_options={"include_usage": True})
    assert [c.model_dump() for c in pieces] == [c.model_dump() for c in whole]
    assert "\ufffd" not in text_of(pieces)


def test_z2_through_respx_byte_exact():
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(CHAT).respond(200, headers=SSE, content=Z2)
        c = OpenAI(provider="zhipu", api_key=KEY)
        s = stream(c, stream_options={"include_usage": True})
        chunks = list(s)
    assert route.call_count == 1
    sent = json.loads(route.calls.last.request.content)
    assert sent["stream"] is True
    assert sent["model"] == "glm-4-flash"
    assert route.calls.last.request.headers["Authorization"] == f"Bearer {KEY}"
    assert text_of(chunks) == Z2_TEXT
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 23


def test_z2_missing_done_but_finished_ends_cleanly():
    body = Z2[: Z2.index(b"data: [DONE]")]
    chunks, s = raw_stream(body, stream_options={"include_usage": True})
    assert text_of(chunks) == Z2_TEXT
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 23
    assert s.response.is_closed


def test_z2_missing_trailing_blank_line_still_ends_cleanly():
    chunks, _ = raw_stream(Z2.rstrip(b"\n"))
    assert text_of(chunks) == Z2_TEXT


# --------------------------------------------------------------------------- fake replies


def test_fake_stream_sync_content_and_usage():
    f = fake()
    f.reply("人工智能助手，很高兴见到你。", chunk_size=3)
    c = client(f)
    s = stream(c, stream_options={"include_usage": True})
    chunks = list(s)
    assert text_of(chunks) == "人工智能助手，很高兴见到你。"
    assert len(chunks) == 5 + 1 + 1  # 5 content chunks, the finish chunk, the usage chunk
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert f.last_json["stream"] is True
    assert c.usage.records()[-1].usage.model_dump() == chunks[-1].usage.model_dump()


@pytest.mark.parametrize("split", range(1, 8))
def test_fake_split_bytes_give_identical_results(split: int):
    def run(split_bytes: int | None) -> list[dict[str, Any]]:
        f = fake(split_bytes=split_bytes)
        f.reply("你好👋！我是人工智能助手智谱清言。", chunk_size=3)
        return [c.model_dump() for c in stream(client(f), stream_options={"include_usage": True})]

    assert run(split) == run(None)


def test_stream_response_is_the_httpx_response():
    f = fake()
    f.reply("hello")
    s = stream(client(f))
    assert isinstance(s, Stream)
    assert s.response.status_code == 200
    assert "event-stream" in s.response.headers["content-type"]
    assert str(s.response.request.url) == CHAT  # client.base_url is Zhipu's own root
    list(s)
    assert s.response.is_closed


def test_with_raw_response_stream_parse_returns_a_stream():
    f = fake()
    f.reply("hello world")
    raw = client(f).chat.completions.with_raw_response.create(
        model="glm-4-flash", messages=HELLO, stream=True
    )
    assert raw.status_code == 200
    parsed = raw.parse()
    assert isinstance(parsed, Stream)
    assert text_of(list(parsed)) == "hello world"


# --------------------------------------------------------------------------- tool calls


def _assert_single_tool_chunk(chunks: list[ChatCompletionChunk], call_id: str | None) -> None:
    tool_chunks = [c for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(tool_chunks) == 1
    choice = tool_chunks[0].choices[0]
    # GLM sends the call and its finish reason at once; OpenAI's wire (and openai's stream
    # helper) has the finish reason in the next chunk, with an empty delta.
    assert choice.finish_reason is None
    after = chunks[chunks.index(tool_chunks[0]) + 1].choices[0]
    assert after.finish_reason == "tool_calls" and not after.delta.tool_calls
    (call,) = choice.delta.tool_calls
    assert call.index == 0
    assert call.id and (call_id is None or call.id == call_id)
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "北京"}
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes.count("tool_calls") == 1
    assert [f for f in finishes if f is not None] == ["tool_calls"]


def test_z3_tool_call_stream_byte_exact():
    chunks, s = raw_stream(Z3, stream_options={"include_usage": True})
    _assert_single_tool_chunk(chunks, "call_20251217001840c9b9004b98c84b5a_0")
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 172
    assert s.usage.prompt_tokens == 160


def test_fake_tool_call_stream():
    f = fake()
    f.tool_call("get_weather", {"city": "北京"})
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "天气",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    chunks = list(stream(client(f), tools=tools))
    _assert_single_tool_chunk(chunks, None)
    assert f.last_json["tools"][0]["function"]["name"] == "get_weather"


def test_parallel_tool_calls_come_one_a_chunk_as_openai_streams_them():
    """GLM sends a turn's calls in one event: passed on as one chunk holding both, code
    reading a delta's first call only (llama-index's streamed tool calls, its agents)
    lost the second without a word."""
    f = fake()
    f.reply(
        tool_calls=[
            ToolCallSpec("get_weather", {"city": "北京"}),
            ToolCallSpec("get_weather", {"city": "上海"}),
        ]
    )
    chunks = list(stream(client(f)))
    per_chunk = [len(c.choices[0].delta.tool_calls or ()) for c in chunks if c.choices]
    assert [n for n in per_chunk if n] == [1, 1]
    calls = [
        c.choices[0].delta.tool_calls[0]
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert [call.index for call in calls] == [0, 1]
    assert [json.loads(call.function.arguments)["city"] for call in calls] == ["北京", "上海"]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f is not None] == ["tool_calls"]
    # openai's own stream helper puts both together again
    c = client(f.reply(tool_calls=[ToolCallSpec("a", {}), ToolCallSpec("b", {})]))
    with c.chat.completions.stream(model="glm-4-flash", messages=HELLO) as helper:
        final = helper.get_final_completion()
    assert [t.function.name for t in final.choices[0].message.tool_calls or []] == ["a", "b"]


@pytest.mark.parametrize("split", [1, 3, 7])
def test_z3_tool_call_survives_byte_splits(split: int):
    chunks, _ = raw_stream(Z3, split_bytes=split)
    _assert_single_tool_chunk(chunks, "call_20251217001840c9b9004b98c84b5a_0")


# --------------------------------------------------------------------------- abnormal ends


def test_z6_sensitive_finish_becomes_content_filter():
    chunks, _ = raw_stream(Z6, stream_options={"include_usage": True})
    assert chunks[0].choices[0].finish_reason == "content_filter"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 12


def test_fake_sensitive_after_some_chunks():
    f = fake()
    f.sensitive(after_chunks=2, content="abcdefghijkl")
    chunks = list(stream(client(f)))
    assert text_of(chunks) == "abcdefgh"
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None, None]


def test_network_error_finish_raises_internal_server_error_after_earlier_chunks():
    f = fake()
    f.reply("abcdefgh", finish_reason="network_error")
    chunks, error = collect_until_error(stream(client(f)))
    assert text_of(chunks) == "abcdefgh"
    assert isinstance(error, InternalServerError)
    assert error.provider == "zhipu"


def test_mid_stream_error_event_raises_content_filter_after_earlier_chunks():
    f = fake()
    f.error_mid_stream(2, "content_filter", content="abcdefghijkl")
    s = stream(client(f))
    chunks, error = collect_until_error(s)
    assert text_of(chunks) == "abcdefgh"
    assert len(chunks) == 2
    assert isinstance(error, BadRequestError)
    assert error.code == "content_filter"
    assert error.provider_code == "1301"
    assert error.provider == "zhipu"
    assert s.response.is_closed


@pytest.mark.parametrize("split", [None, 1, 7])
def test_mid_stream_error_event_byte_exact(split: int | None):
    # split None: the earlier chunk and the error event arrive in the same network read.
    error_event = {
        "error": {"code": "1301", "message": "系统检测到输入或生成内容可能包含不安全或敏感内容"}
    }
    body = (
        Z2[: Z2.index(b"data: ", 10)]
        + f"data: {json.dumps(error_event, ensure_ascii=False)}\n\n".encode()
    )
    f = fake(split_bytes=split)
    f.raw(200, body, SSE)
    chunks, error = collect_until_error(stream(client(f)))
    assert text_of(chunks) == "人工智能"
    assert isinstance(error, BadRequestError)
    assert error.code == "content_filter"


@pytest.mark.parametrize("cut_raises", [True, False])
def test_cut_connection_raises_connection_error_after_earlier_chunks(cut_raises: bool):
    f = fake()
    f.cut_stream(2, "abcdefghijkl", cut_raises=cut_raises)
    s = stream(client(f), stream_options={"include_usage": True})
    chunks, error = collect_until_error(s)
    assert text_of(chunks) == "abcdefgh"
    assert len(chunks) == 2
    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert isinstance(error, APIConnectionError)
    assert s.response.is_closed


@pytest.mark.parametrize("split", [1, 5])
def test_cut_connection_with_split_bytes_still_raises(split: int):
    f = fake(split_bytes=split)
    f.cut_stream(1, "abcdefgh", cut_raises=False)
    chunks, error = collect_until_error(stream(client(f)))
    assert text_of(chunks) == "abcd"
    assert isinstance(error, APIConnectionError)


def test_cut_in_the_middle_of_an_event_raises():
    half = Z2[: Z2.index(b"data: ", 10) + 40]
    chunks, error = collect_until_error(stream(client(fake().raw(200, half, SSE))))
    assert text_of(chunks) == "人工智能"
    assert isinstance(error, APIError)


@pytest.mark.parametrize("split", [None, 1, 7])
def test_malformed_json_event_raises_an_api_error(split: int | None):
    body = Z2[: Z2.index(b"data: ", 10)] + b'data: {"id":"x","choices":[{"index":0,\n\n'
    f = fake(split_bytes=split).raw(200, body, SSE)
    chunks, error = collect_until_error(stream(client(f)))
    assert text_of(chunks) == "人工智能"
    assert isinstance(error, llm_bridge.APIError)


def test_non_object_json_event_raises_an_api_error():
    # The bad event comes before any chunk, so create() itself raises (while it could retry).
    with pytest.raises(llm_bridge.APIError):
        stream(client(fake().raw(200, b"data: [1,2]\n\n", SSE)))


# --------------------------------------------------------------------------- stop emulation


STOPS = ["X", "END", "###"]


def test_stop_emulation_cuts_before_a_split_stop_sequence():
    f = fake()
    f.reply("hello ### world and more", chunk_size=2)  # "##" | "# " : straddles chunks
    chunks = list(stream(client(f), stop=STOPS, stream_options={"include_usage": True}))
    assert f.last_json["stop"] == ["X"]
    assert text_of(chunks) == "hello "
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [x for x in finishes if x is not None] == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])


@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_stop_emulation_at_every_chunk_size(size: int):
    f = fake(split_bytes=3)
    f.reply("abc END def", chunk_size=size)
    chunks = list(stream(client(f), stop=STOPS))
    assert text_of(chunks) == "abc "
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


def test_stop_emulation_releases_held_text_when_no_stop_matches():
    f = fake()
    f.reply("almost ##", chunk_size=2)
    chunks = list(stream(client(f), stop=STOPS, stream_options={"include_usage": True}))
    assert text_of(chunks) == "almost ##"
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []


# --------------------------------------------------------------------------- closing


def test_breaking_out_of_a_with_block_closes_the_response():
    f = fake()
    f.reply("a long answer that is not read to the end", chunk_size=2)
    with stream(client(f)) as s:
        for chunk in s:
            assert chunk.choices[0].delta.content == "a "
            break
        assert not s.response.is_closed
    assert s.response.is_closed


def test_close_releases_the_connection_and_stops_iteration():
    f = fake()
    f.reply("abcdefghijkl")
    s = stream(client(f))
    first = next(iter(s))
    assert first.choices[0].delta.content == "abcd"
    s.close()
    assert s.response.is_closed
    assert list(s) == []


def test_close_before_iterating():
    f = fake()
    f.reply("abcdefgh")
    s = stream(client(f))
    s.close()
    assert s.response.is_closed


# --------------------------------------------------------------------------- errors at create()


def test_rate_limit_1302_is_retried_before_any_chunk(no_retry_sleep):
    f = fake()
    f.fail("rate_limit").fail("rate_limit").reply("done")
    s = stream(client(f))
    assert len(f.requests) == 3
    assert text_of(list(s)) == "done"
    assert len(no_retry_sleep) == 2


def test_rate_limit_1302_gives_up_after_max_retries():
    f = fake()
    f.fail("rate_limit").fail("rate_limit").reply("never")
    with pytest.raises(RateLimitError) as info:
        stream(client(f, max_retries=1))
    assert len(f.requests) == 2
    assert info.value.provider_code == "1302"


def test_arrears_1113_raises_at_create_time_without_retry():
    f = fake()
    f.fail("arrears").reply("never")
    c = client(f)
    with pytest.raises(RateLimitError) as info:
        stream(c)
    assert len(f.requests) == 1
    assert info.value.code == "insufficient_quota"
    assert info.value.provider_code == "1113"
    assert info.value.status_code == 429


def test_input_content_filter_400_raises_at_create_time():
    f = fake()
    f.fail("content_filter")
    with pytest.raises(BadRequestError) as info:
        stream(client(f))
    assert info.value.code == "content_filter"
    assert len(f.requests) == 1


# --------------------------------------------------------------------------- async


async def test_async_stream_content_role_and_usage():
    f = fake()
    f.reply("人工智能助手。", chunk_size=2)
    s = await astream(aclient(f), stream_options={"include_usage": True})
    assert isinstance(s, AsyncStream)
    chunks = [c async for c in s]
    assert text_of(chunks) == "人工智能助手。"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:-1])
    assert all(c.object == "chat.completion.chunk" and c.provider == "zhipu" for c in chunks)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    assert s.response.is_closed


async def test_async_without_include_usage():
    f = fake()
    f.raw(200, Z2, SSE)
    c = aclient(f)
    s = await astream(c)
    chunks = [c async for c in s]
    assert all(c.usage is None for c in chunks)
    (record,) = c.usage.records()
    assert record.usage.model_dump(include=set(Z2_USAGE)) == Z2_USAGE


@pytest.mark.parametrize("split", range(1, 8))
async def test_async_split_bytes_identical(split: int):
    async def run(split_bytes: int | None) -> list[dict[str, Any]]:
        f = fake(split_bytes=split_bytes)
        f.raw(200, Z2, SSE)
        s = await astream(aclient(f), stream_options={"include_usage": True})
        return [c.model_dump() async for c in s]

    assert await run(split) == await run(None)


async def test_async_z3_tool_call():
    f = fake()
    f.raw(200, Z3, SSE)
    chunks = [c async for c in await astream(aclient(f))]
    _assert_single_tool_chunk(chunks, "call_20251217001840c9b9004b98c84b5a_0")


async def test_async_through_respx():
    async with respx.mock() as mock:
        route = mock.post(CHAT).respond(200, headers=SSE, content=Z2)
        c = AsyncOpenAI(provider="zhipu", api_key=KEY)
        chunks = [x async for x in await astream(c)]
    assert route.call_count == 1
    assert text_of(chunks) == Z2_TEXT


async def test_async_mid_stream_error():
    f = fake()
    f.error_mid_stream(1, "content_filter", content="abcdefgh")
    s = await astream(aclient(f))
    chunks = []
    with pytest.raises(BadRequestError) as info:
        async for chunk in s:
            chunks.append(chunk)
    assert text_of(chunks) == "abcd"
    assert info.value.code == "content_filter"


@pytest.mark.parametrize("cut_raises", [True, False])
async def test_async_cut_connection(cut_raises: bool):
    f = fake()
    f.cut_stream(2, "abcdefghijkl", cut_raises=cut_raises)
    s = await astream(aclient(f))
    chunks = []
    with pytest.raises(APIConnectionError):
        async for chunk in s:
            chunks.append(chunk)
    assert text_of(chunks) == "abcdefgh"


async def test_async_network_error_raises_internal_server_error():
    f = fake()
    f.reply("abcd", finish_reason="network_error")
    s = await astream(aclient(f))
    with pytest.raises(InternalServerError):
        async for _ in s:
            pass


async def test_async_sensitive():
    f = fake()
    f.raw(200, Z6, SSE)
    chunks = [c async for c in await astream(aclient(f))]
    assert chunks[-1].choices[0].finish_reason == "content_filter"


async def test_async_with_block_break_closes():
    f = fake()
    f.reply("abcdefghijkl", chunk_size=2)
    async with await astream(aclient(f)) as s:
        async for _ in s:
            break
    assert s.response.is_closed


async def test_async_close():
    f = fake()
    f.reply("abcdefghijkl")
    s = await astream(aclient(f))
    await s.__anext__()
    await s.close()
    assert s.response.is_closed


async def test_async_retry_then_arrears(no_retry_sleep):
    f = fake()
    f.fail("rate_limit").reply("ok")
    s = await astream(aclient(f))
    assert len(f.requests) == 2
    assert text_of([c async for c in s]) == "ok"
    f.fail("arrears")
    with pytest.raises(RateLimitError) as info:
        await astream(aclient(f))
    assert len(f.requests) == 3
    assert info.value.code == "insufficient_quota"


async def test_async_with_raw_response_parse_returns_async_stream():
    f = fake()
    f.reply("hi there")
    raw = await aclient(f).chat.completions.with_raw_response.create(
        model="glm-4-flash", messages=HELLO, stream=True
    )
    parsed = raw.parse()
    assert isinstance(parsed, AsyncStream)
    assert text_of([c async for c in parsed]) == "hi there"
