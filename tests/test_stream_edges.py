"""Stream edge cases around the chunk pipeline: what is delivered before an error in the
same network read, malformed usage and templates, resuming iteration, the SSE decoder's
bytes for DashScope events, and a pre-flight refusal that falls back to the next route."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
import respx

from llm_bridge import APIResponseValidationError, AsyncOpenAI, OpenAI
from llm_bridge.testing import FakeZhipu

ZHIPU_CHAT = "https://open.bigmodel.cn/api/paas/v4/chat/completions"
DASHSCOPE_CHAT = "https://dashscope.aliyuncs.com/api/v1/services/aigc/text-generation/generation"
NATIVE = {"providers": {"dashscope": {"api": "native"}}}
SSE = {"Content-Type": "text/event-stream"}
HELLO = [{"role": "user", "content": "你好"}]


def zhipu_event(content: Any, finish: Any = None, **extra: Any) -> str:
    chunk = {"id": "t", "created": 1, "model": "glm-4", **extra}
    chunk["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"


def dashscope_event(content: str, finish: str, usage: dict) -> str:
    body = {
        "output": {"choices": [{"message": {"role": "assistant", "content": content}}]},
        "usage": usage,
        "request_id": "r1",
    }
    body["output"]["choices"][0]["finish_reason"] = finish
    return f"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{json.dumps(body)}\n\n"


def zhipu_stream(body: str, **params: Any) -> Any:
    client = OpenAI(provider="zhipu", api_key="id.secret", max_retries=0)
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, headers=SSE, content=body.encode())
        stream = client.chat.completions.create(
            model="glm-4-flash", messages=HELLO, stream=True, **params
        )
        chunks: list[Any] = []
        error = None
        try:
            for chunk in stream:
                chunks.append(chunk)
        except Exception as exc:  # the test asserts its type
            error = exc
    return chunks, error, stream


def dashscope_stream(body: str) -> Any:
    """The chunks of a DashScope stream of ``body`` (with include_usage), the stream, the client."""
    client = OpenAI(
        provider="dashscope",
        api_key="sk-x",
        max_retries=0,
        config={"providers": {"dashscope": {"api": "native"}}},
    )
    with respx.mock() as mock:
        mock.post(DASHSCOPE_CHAT).respond(200, headers=SSE, content=body.encode())
        stream = client.chat.completions.create(
            model="qwen-plus",
            messages=HELLO,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    return chunks, stream, client


def test_chunks_before_an_invalid_chunk_in_the_same_read_are_delivered_first() -> None:
    # One network read (respx delivers the body whole): a good chunk, then one whose
    # content is a number, which OpenAI's chunk type cannot hold.
    chunks, error, _ = zhipu_stream(zhipu_event("你好") + zhipu_event(5) + zhipu_event("!"))
    assert [c.choices[0].delta.content for c in chunks] == ["你好"]
    assert isinstance(error, APIResponseValidationError)


def test_a_template_an_include_usage_chunk_cannot_be_made_from_is_an_api_error() -> None:
    first = 'data: {"created": 1, "model": "glm-4", "choices": []}\n\n'  # no id
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    body = first + zhipu_event("好", "stop", usage=usage) + "data: [DONE]\n\n"
    chunks, error, _ = zhipu_stream(body, stream_options={"include_usage": True})
    assert [c.choices[0].delta.content for c in chunks] == ["好"]
    assert isinstance(error, APIResponseValidationError)


@pytest.mark.parametrize(
    "usage", [{"input_tokens": 3, "output_tokens": None}, {"output_tokens_details": "x"}]
)
def test_running_usage_of_an_unreadable_shape_is_estimated_instead(usage: dict) -> None:
    body = dashscope_event("你好", "null", usage) + dashscope_event("!", "stop", usage)
    chunks, stream, _ = dashscope_stream(body)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "你好!"
    assert chunks[-1].usage is not None and chunks[-1].usage.estimated is True
    assert stream.response.is_closed


def test_running_usage_keeps_its_last_readable_figures_marked_estimated() -> None:
    # Once the provider has given readable figures, the text is no longer kept for an
    # estimate: a later unreadable figure leaves the earlier ones, which undercount what
    # followed them, so they are marked estimated.
    good = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    bad = {"input_tokens": 3, "output_tokens": None}
    body = dashscope_event("你好", "null", good) + dashscope_event("!", "stop", bad)
    chunks, _, client = dashscope_stream(body)
    usage = chunks[-1].usage
    assert usage is not None and usage.estimated
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3, 2, 5)
    assert client.usage.total().completion_tokens == 2


def test_a_readable_figure_after_an_unreadable_one_is_exact_again() -> None:
    good = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    bad = {"input_tokens": 3, "output_tokens": None}
    final = {"input_tokens": 3, "output_tokens": 4, "total_tokens": 7}
    client = OpenAI(provider="dashscope", api_key="sk-x", max_retries=0, config=NATIVE)
    with respx.mock() as mock:
        body = dashscope_event("好", "null", good)  # the first read; the rest fed below
        mock.post(DASHSCOPE_CHAT).respond(200, headers=SSE, content=body.encode())
        engine = client._engine  # the engine's own stream, under openai's
        params = {"model": "qwen-plus", "messages": HELLO, "stream": True}
        stream = engine.chat(params, engine.options()).parsed
        pipeline = stream._pipeline
        assert pipeline.usage is not None and pipeline._text is None  # figures: no text kept
        pipeline.feed(dashscope_event("!", "null", bad).encode())
        assert pipeline.usage == {**pipeline.usage, "completion_tokens": 2, "estimated": True}
        pipeline.feed(dashscope_event("?", "stop", final).encode())
        assert pipeline.usage is not None and "estimated" not in pipeline.usage
        assert pipeline.usage["completion_tokens"] == 4
        stream.close()


def test_dashscope_events_come_from_the_decoder_as_bytes_and_error_events_whole() -> None:
    from llm_bridge._sse import SSEDecoder

    body = dashscope_event("你好", "null", {"input_tokens": 1, "output_tokens": 1})
    body += 'id:2\nevent:error\n:HTTP_STATUS/400\ndata:{"code":"X","message":"m"}\n\n'
    result, error = SSEDecoder(["error"]).feed(body.encode())
    assert isinstance(result, bytes) and json.loads(result)["request_id"] == "r1"
    assert (error.event, error.id, error.comments) == ("error", "2", ("HTTP_STATUS/400",))


def test_iteration_resumes_after_a_loop_is_left_and_next_keeps_the_first_chunk() -> None:
    body = zhipu_event("a") + zhipu_event("b") + zhipu_event("c", "stop") + "data: [DONE]\n\n"
    client = OpenAI(provider="zhipu", api_key="id.secret")
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, headers=SSE, content=body.encode())
        stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        seen = []
        for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
            break
        seen += [chunk.choices[0].delta.content for chunk in stream]
        assert seen == ["a", "b", "c"]

        again = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        iterator = iter(again)
        first = next(again)
        assert [first.choices[0].delta.content] + [
            c.choices[0].delta.content for c in iterator
        ] == ["a", "b", "c"]


async def test_async_iteration_resumes_after_a_loop_is_left() -> None:
    body = zhipu_event("a") + zhipu_event("b") + zhipu_event("c", "stop") + "data: [DONE]\n\n"
    client = AsyncOpenAI(provider="zhipu", api_key="id.secret")
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, headers=SSE, content=body.encode())
        stream = await client.chat.completions.create(
            model="glm-4-flash", messages=HELLO, stream=True
        )
        seen = []
        async for chunk in stream:
            seen.append(chunk.choices[0].delta.content)
            break
        first_after = await stream.__anext__()
        seen.append(first_after.choices[0].delta.content)
        seen += [chunk.choices[0].delta.content async for chunk in stream]
    assert seen == ["a", "b", "c"]


def test_a_preflight_refusal_falls_back_when_bad_request_is_in_fallback_on() -> None:
    """ernie-4.0-8k's window cannot hold the prompt; with bad_request in fallback_on the
    call goes on to glm-4-flash instead of failing."""
    config = {
        "providers": {
            "zhipu": {"api_key": "id.secret"},
            "qianfan": {"api_key": "ak", "secret_key": "sk", "api": "v1"},
        },
        "models": {"long": ["qianfan/ernie-4.0-8k", "zhipu/glm-4-flash"]},
        "policy": {"fallback_on": ["bad_request"]},
    }
    zhipu = FakeZhipu().reply("好")
    client = OpenAI(config=config, http_client=httpx.Client(transport=zhipu.transport()))
    answer = client.chat.completions.create(
        model="long", messages=[{"role": "user", "content": "长" * 20000}]
    )
    assert answer.provider == "zhipu"


def test_an_unreadable_tool_call_fragment_is_an_api_error() -> None:
    event = {
        "id": "t",
        "created": 1,
        "model": "glm-4",
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": "x"}]}}],
    }
    client = OpenAI(provider="zhipu", api_key="id.secret", max_retries=0)
    with respx.mock() as mock:
        mock.post(ZHIPU_CHAT).respond(200, headers=SSE, content=f"data: {json.dumps(event)}\n\n")
        # Before the first chunk: raised by create() itself, where it could be retried.
        with pytest.raises(APIResponseValidationError):
            client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)


WEATHER: Any = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}


def tool_only(fake: Any) -> Any:
    from llm_bridge.testing import Reply, ToolCallSpec

    return fake.then(Reply(content="", tool_calls=(ToolCallSpec("get_weather", {"city": "北京"}),)))


def test_an_answer_of_only_tool_calls_has_null_content_streamed_and_aggregated() -> None:
    # Qianfan v2 and DashScope send "" beside tool calls; OpenAI sends null, and code
    # tests `message.content is None` to tell a tool call from an answer.
    from helpers import bridge

    from llm_bridge.testing import FakeDashScopeCompatible, FakeQianfanV2

    key = "bce-v3/ALTAK-streamEdges/0a1b2c3d4e5f"
    hello: Any = [{"role": "user", "content": "北京天气？"}]
    streamed = bridge("qianfan", tool_only(FakeQianfanV2()), api_key=key)
    with streamed.chat.completions.stream(
        model="ernie-4.5-turbo-128k", messages=hello, tools=[WEATHER]
    ) as stream:
        stream.until_done()
        final = stream.get_final_completion().choices[0].message
    assert final.content is None and final.tool_calls
    # (a model that only streams, called without stream=True: its chunks aggregated)
    aggregated = bridge("dashscope", tool_only(FakeDashScopeCompatible()), api_key="sk-edge")
    with pytest.warns(Warning):  # (qwq-plus is retired: a warning, and sent anyway)
        answer = aggregated.chat.completions.create(
            model="qwq-plus", messages=hello, tools=[WEATHER]
        )
    message = answer.choices[0].message
    assert message.content is None and message.tool_calls
