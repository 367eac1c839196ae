"""OpenAI-shaped stream events validated straight into `ChatCompletionChunk`.

`OpenAICompatStreamParser` takes a short cut for the usual event: it validates the event's
bytes into the chunk type and applies the role rule on the model, instead of parsing JSON
into dicts, translating them and validating those. The short cut must be invisible: for
any sequence of events, the chunks (values, which fields count as set, extras and their
order), the errors, the kept text and the usage must be what the general way gives.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llm_bridge import APIError, OpenAI
from llm_bridge._streaming import ChunkPipeline
from llm_bridge.adapters._base import CallContext
from llm_bridge.adapters.openai_compat import OpenAICompatStreamParser


def maybe(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """``{key: value}`` or nothing."""
    return st.one_of(st.just({}), values.map(lambda value: {key: value}))


TEXT = st.text(alphabet='ab你好 \n"\\', max_size=6)
DELTAS = st.builds(
    lambda *parts: {k: v for part in parts for k, v in part.items()},
    maybe("role", st.sampled_from(["assistant", "", None, "user"])),
    maybe("content", st.one_of(TEXT, st.none(), st.just(3))),
    maybe("reasoning_content", TEXT),
    maybe("tool_calls", st.just([{"index": 0, "id": "c", "function": {"arguments": "{"}}])),
    maybe("refusal", st.none()),
)
CHOICES = st.builds(
    lambda *parts: {k: v for part in parts for k, v in part.items()},
    maybe("index", st.sampled_from([0, 1, "0", True, None])),
    maybe("delta", st.one_of(DELTAS, st.none(), st.just({}))),
    maybe("finish_reason", st.sampled_from([None, "stop", "length", "sensitive"])),
    maybe("logprobs", st.none()),
    maybe("usage", st.just({"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2})),
)
CHUNKS = st.builds(
    lambda *parts: {k: v for part in parts for k, v in part.items()},
    maybe("id", st.sampled_from(["c1", 7])),
    maybe("object", st.sampled_from(["chat.completion.chunk", "chat.completion"])),
    maybe("created", st.sampled_from([1721614853, 1.0, 1.5, "17"])),
    maybe("model", st.just("glm-4")),
    maybe("choices", st.lists(CHOICES, max_size=2)),
    maybe("usage", st.one_of(st.none(), st.just({"prompt_tokens": 2, "total_tokens": 2}))),
    maybe("system_fingerprint", st.none()),
    maybe("request_id", st.just("r")),
    maybe("error", st.just({"code": "1301", "message": "m"})),
)
#: Chunks as providers really send them, which the short cut should mostly take: the
#: required fields there, a role repeated or not, now and then something it must refuse.
USUAL_DELTAS = st.builds(
    lambda *parts: {k: v for part in parts for k, v in part.items()},
    maybe("role", st.sampled_from(["assistant", "assistant", "", None])),
    maybe("content", st.one_of(TEXT, TEXT, st.none())),
    maybe("reasoning_content", st.one_of(TEXT, st.none(), st.just(["x"]))),
    maybe("refusal", st.none()),
    maybe("function_call", st.just({"name": "f", "arguments": "{}"})),
    maybe("matched_stop", st.sampled_from([None, 2, "x"])),  # SGLang-style extras
)
USUAL_CHOICES = st.builds(
    lambda index, delta, rest: {"index": index, "delta": delta, **rest},
    st.sampled_from([0, 0, 0, 1, "0", 1.0]),
    USUAL_DELTAS,
    st.one_of(
        st.just({}),
        st.just({"finish_reason": None}),
        st.just({"logprobs": None}),
        st.just({"finish_reason": "stop"}),
        st.just({"stop_reason": None}),  # vLLM puts it on every choice
        st.just({"usage": None}),  # Moonshot's place for usage, here empty
    ),
)
USUAL_CHUNKS = st.builds(
    lambda choices, rest: {
        "id": "c1",
        "created": 1721614853,
        "model": "glm-4",
        **rest,
        "choices": choices,
    },
    st.lists(USUAL_CHOICES, min_size=1, max_size=2),
    st.one_of(
        st.just({}),
        st.just({"object": "chat.completion.chunk", "usage": None}),
        st.just({"object": "chat.completion", "system_fingerprint": "fp"}),
        st.just({"request_id": "r"}),
        st.just({"error": None}),  # gateways that always send the key
        st.just({"usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3}}),
    ),
)
#: Whole SSE events: mostly plain chunk events, sometimes the end marker or broken JSON.
EVENTS = st.one_of(
    USUAL_CHUNKS.map(lambda c: b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n"),
    USUAL_CHUNKS.map(lambda c: b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n"),
    CHUNKS.map(lambda c: b"data: " + json.dumps(c, ensure_ascii=False).encode() + b"\n\n"),
    st.just(b"data: [DONE]\n\n"),
    st.just(b'data: {"id": "c1", "choices": [\n\n'),
)

Z2 = {"id": "c1", "created": 1, "model": "glm-4"}


@functools.cache
def adapter(provider: str) -> Any:
    return OpenAI(provider=provider, api_key="id.secret", max_retries=0)._engine.adapter(provider)


def run(
    events: list[bytes], *, typed: bool, provider: str, stop: bool, per_read: int = 1
) -> dict[str, Any]:
    """What a stream of ``events`` (``per_read`` to a network read) gives, with or
    without the short cut: every chunk as dumped and as set, the error, the text, the
    usage and the template."""
    call = CallContext(
        provider=provider,
        model="m",
        requested_model="m",
        stream=True,
        include_usage=True,
        emulated_stop=["STOP"] if stop else [],
    )
    response = httpx.Response(200, request=httpx.Request("POST", adapter(provider).url("x")))
    parser = adapter(provider).stream_parser(response, call)
    assert isinstance(parser, OpenAICompatStreamParser)
    parser.typed_chunks = typed
    pipeline = ChunkPipeline(parser, call, response)  # turns the short cut off for stop
    if stop:
        assert not parser.typed_chunks
    chunks: list[Any] = []
    error = None
    try:
        reads = [b"".join(events[i : i + per_read]) for i in range(0, len(events), per_read)]
        for data in reads:
            chunks += pipeline.feed(data)
            if pipeline.held is not None:
                raise pipeline.held
        chunks += pipeline.end()
    except APIError as exc:
        error = (type(exc).__name__, str(exc))
    return {
        "chunks": [
            (
                chunk.to_json(indent=None),
                chunk.model_dump(),
                chunk.model_fields_set,
                [(c.model_fields_set, c.delta.model_fields_set) for c in chunk.choices],
            )
            for chunk in chunks
        ],
        "error": error,
        "text": pipeline._text,
        "usage": pipeline.usage,
        "template": pipeline._template,
    }


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    events=st.lists(EVENTS, min_size=1, max_size=5),
    provider=st.sampled_from(["zhipu", "openai"]),
    stop=st.booleans(),
    per_read=st.sampled_from([1, 1, 2, 3]),
)
@example(
    events=[
        b"data: "
        + json.dumps(
            {**Z2, "choices": [{"index": 0, "delta": {"role": "assistant", "content": c}}]}
        ).encode()
        + b"\n\n"
        for c in ("a", "b")
    ],
    provider="zhipu",
    stop=False,
    per_read=1,
)
@example(
    events=[
        b'data: {"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, '
        b'"delta": {"content": "x"}}], "usage": null, "x": 1}\n\n'
    ],
    provider="openai",
    stop=False,
    per_read=1,
)
@example(  # an index of "0" is not the 0 of the role rule before validation
    events=[
        b'data: {"id": "c", "created": 1, "model": "m", "choices": [{"index": "0", "delta":'
        b' {"role": "assistant", "content": "a"}}]}\n\n',
        b'data: {"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta":'
        b' {"role": "assistant", "content": "b"}}]}\n\n',
    ],
    provider="zhipu",
    stop=False,
    per_read=1,
)
@example(  # found here: held stop-sequence text met a content of the wrong type
    events=[
        b'data: {"id": "c1", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {}},'
        b' {"index": 0, "delta": {"content": "S"}}]}\n\n',
        b'data: {"choices": [{"delta": {"content": 3}, "finish_reason": "stop"}]}\n\n',
    ],
    provider="zhipu",
    stop=True,
    per_read=1,
)
@example(  # shapes checked by hand in review, kept: duplicate keys, a wire "provider",
    # audio, function_call and logprobs objects, an "error" of null, bytes not UTF-8
    events=[
        b'data: {"id": "c", "created": 1, "model": "m", "provider": "x", "choices": [{"index":'
        b' 0, "index": 1, "delta": {"content": "a", "content": null, "audio": {"id": "x"},'
        b' "function_call": {"name": "f"}}, "logprobs": {"content": []}}]}\n\n',
        b'data: {"id": "c", "created": 1, "model": "m", "error": null, "choices": [{"index":'
        b' 0, "delta": {"content": "b"}}]}\n\n',
        b'data: {"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta":'
        b' {"content": "\xff"}}]}\n\n',
        b"data: [DONE]\n\n",
    ],
    provider="openai",
    stop=False,
    per_read=3,
)
def test_the_short_cut_gives_what_the_general_way_gives(
    events: list[bytes], provider: str, stop: bool, per_read: int
) -> None:
    typed = run(events, typed=True, provider=provider, stop=stop, per_read=per_read)
    general = run(events, typed=False, provider=provider, stop=stop, per_read=per_read)
    assert typed == general


def plain_parser(provider: str) -> Any:
    """A stream parser of ``provider`` for a call without stop sequences."""
    call = CallContext(provider=provider, model="m", requested_model="m", stream=True)
    response = httpx.Response(200, request=httpx.Request("POST", adapter(provider).url("x")))
    return adapter(provider).stream_parser(response, call)


def test_the_short_cut_is_taken_for_the_usual_event() -> None:
    # Guards the test above from comparing the general way with itself.
    parser = plain_parser("zhipu")
    event = json.dumps({**Z2, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    first = parser.translate(event.encode())
    assert first is not None and not isinstance(first, dict)
    assert first.choices[0].delta.role == "assistant" and first.provider == "zhipu"
    again = parser.translate(event.encode())  # a repeated role is dropped on the model too
    assert again is not None and not isinstance(again, dict)
    assert again.choices[0].delta.role is None
    assert "role" not in again.choices[0].delta.model_fields_set
    finish = {**Z2, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    assert isinstance(parser.translate(json.dumps(finish).encode()), dict)  # the general way


def test_a_stream_of_refused_events_stops_trying_the_short_cut() -> None:
    parser = plain_parser("openai")
    no_model = json.dumps({"id": "c", "created": 1, "choices": [{"index": 0, "delta": {}}]})
    for _ in range(OpenAICompatStreamParser.MAX_REFUSALS):
        assert parser.typed_chunks
        assert isinstance(parser.translate(no_model.encode()), dict)  # the general way
    assert not parser.typed_chunks


def test_released_stop_text_reaches_a_finish_chunk_with_an_empty_delta() -> None:
    # OpenAI's finish chunk has "delta": {}: text held back as a possible stop sequence
    # must be released into it, not into a dict attached to nothing.
    events = [
        b'data: {"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta":'
        b' {"content": "abST"}}]}\n\n',
        b'data: {"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {},'
        b' "finish_reason": "stop"}]}\n\n',
        b"data: [DONE]\n\n",
    ]
    result = run(events, typed=True, provider="zhipu", stop=True)
    texts = [
        json.loads(dumped)["choices"][0]["delta"].get("content") for dumped, *_ in result["chunks"]
    ]
    assert "".join(t or "" for t in texts) == "abST"
    assert "".join(result["text"]) == "abST"  # kept as it reached the caller
