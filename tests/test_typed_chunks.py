"""Stream events that become typed chunks without the general way's chunk dict.

`OpenAICompatStreamParser` takes a short cut for the usual event: it validates the event's
bytes into the chunk type and applies the role rule on the model, instead of parsing JSON
into dicts, translating them and validating those. DashScope's and Qianfan v1's parsers
make the chunk of an event that is a piece of text directly (`_typed_chunks`), with no
validation pass. Each short cut must be invisible: for any sequence of events, the chunks
(values, which fields count as set, extras and their order, the classes), the errors,
the kept text and the usage must be what the general way gives.
"""

from __future__ import annotations

import enum
import functools
import json
from typing import Any, Optional

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from llm_bridge import APIError, OpenAI
from llm_bridge._streaming import ChunkPipeline
from llm_bridge._wire import Reply
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


#: Client keyword arguments per provider (Qianfan's key and secret make it speak v1).
KEYS: dict[str, dict[str, Any]] = {
    "qianfan": {
        "api_key": "appKey",
        "secret_key": "appSecret",
        "config": {"providers": {"qianfan": {"api": "v1"}}},
    },
    "dashscope": {
        "api_key": "sk-dashscope",
        "config": {"providers": {"dashscope": {"api": "native"}}},
    },
}


@functools.cache
def adapter(provider: str) -> Any:
    keys = KEYS.get(provider, {"api_key": "id.secret"})
    return OpenAI(provider=provider, max_retries=0, **keys)._engine.adapter(provider)


def types_of(value: Any) -> Any:
    """``value`` with every leaf replaced by its type."""
    if isinstance(value, dict):
        return {key: types_of(item) for key, item in value.items()}
    if isinstance(value, list):
        return [types_of(item) for item in value]
    return type(value)


def run(
    events: list[bytes],
    *,
    typed: bool,
    provider: str,
    stop: bool,
    per_read: int = 1,
    extra_body: Optional[dict[str, Any]] = None,
    model: str = "m",
) -> dict[str, Any]:
    """What a stream of ``events`` (``per_read`` to a network read) gives, with or
    without the short cut: every chunk as dumped and as set, the error, the text, the
    usage and the template."""
    call = CallContext(
        provider=provider,
        model=model,
        requested_model=model,
        stream=True,
        include_usage=True,
        emulated_stop=["STOP"] if stop else [],
        extra_body=extra_body or {},
    )
    parser = stream_parser(provider, call, typed=typed)
    if stop:  # stop sequences are cut out of chunk dicts: the short cut is off
        assert not parser.typed_chunks
    if hasattr(parser, "_created"):  # the stream's own time: the same for both runs
        parser._created = 1721614853
    pipeline = ChunkPipeline(parser, call, http_response(provider))
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
                types_of(chunk.model_dump()),  # (a str subclass equals its str)
                chunk.model_fields_set,
                [(c.model_fields_set, c.delta.model_fields_set) for c in chunk.choices],
                [
                    (type(model), model.__pydantic_private__, model.__pydantic_extra__)
                    for model in (chunk, *chunk.choices, *(c.delta for c in chunk.choices))
                ],
            )
            for chunk in chunks
        ],
        "error": error,
        "text": pipeline._text,
        "usage": pipeline.usage,
        "template": parser.head,
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


def http_response(provider: str) -> httpx.Response:
    """The stream's HTTP response, which the pipeline attaches to the errors it raises."""
    return httpx.Response(200, request=httpx.Request("POST", adapter(provider).url("x")))


def stream_parser(provider: str, call: CallContext, *, typed: bool = True) -> Any:
    """A stream parser of ``provider`` for ``call``, with or without its short cuts."""
    response = Reply(200, url=adapter(provider).url("x"))
    parser = adapter(provider).stream_parser(response, call)
    return type(parser)(parser.adapter, response, call, typed_chunks=typed)


def plain_parser(provider: str) -> Any:
    """A stream parser of ``provider`` for a call without stop sequences."""
    call = CallContext(provider=provider, model="m", requested_model="m", stream=True)
    return stream_parser(provider, call)


def general_ways(parser: Any) -> list[dict[str, Any]]:
    """The chunk dicts ``parser`` finishes the general way from now on (a short cut
    makes its typed chunk without one)."""
    dicts: list[dict[str, Any]] = []
    general = parser._general

    def counted(chunk: dict[str, Any]) -> Any:
        dicts.append(chunk)
        return general(chunk)

    parser._general = counted
    return dicts


def test_the_short_cut_is_taken_for_the_usual_event() -> None:
    # Guards the test above from comparing the general way with itself.
    parser = plain_parser("zhipu")
    general = general_ways(parser)
    event = json.dumps({**Z2, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})
    first, _, _ = parser.translate(event.encode())
    assert first is not None and not general
    assert first.choices[0].delta.role == "assistant" and first.provider == "zhipu"
    again, _, _ = parser.translate(event.encode())  # a repeated role is dropped on the model too
    assert again is not None and not general
    assert again.choices[0].delta.role is None
    assert "role" not in again.choices[0].delta.model_fields_set
    finish = {**Z2, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    assert parser.translate(json.dumps(finish).encode())[0] is not None
    assert len(general) == 1  # the general way


def test_a_stream_of_refused_events_stops_trying_the_short_cut() -> None:
    parser = plain_parser("openai")
    general = general_ways(parser)
    no_model = json.dumps({"id": "c", "created": 1, "choices": [{"index": 0, "delta": {}}]})
    for refusals in range(1, OpenAICompatStreamParser.MAX_REFUSALS + 1):
        assert parser.typed_chunks
        assert parser.translate(no_model.encode())[0] is not None
        assert len(general) == refusals  # the general way
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


# --------------------------------------------------------------- pieces of text, built


def parts(*parts: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """One dict of the keys each strategy gives (or leaves out)."""
    return st.builds(lambda *ds: {k: v for d in ds for k, v in d.items()}, *parts)


DS_USAGE = {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4}
#: Native DashScope messages, choices and events: mostly the usual piece of text or
#: reasoning, now and then a shape the short cut must leave to the general way.
DS_MESSAGES = parts(
    maybe("role", st.sampled_from(["assistant", "assistant", None, 1])),
    maybe("content", st.one_of(TEXT, TEXT, st.none(), st.just(3), st.just([{"text": "p"}]))),
    maybe("reasoning_content", st.one_of(TEXT, st.none(), st.just(["x"]))),
    maybe("tool_calls", st.sampled_from([[], [{"id": "c", "function": {"name": "f"}}]])),
    maybe("partial", st.just(True)),  # a key the general way ignores
)
DS_CHOICES = parts(
    maybe("message", st.one_of(DS_MESSAGES, DS_MESSAGES, st.none(), st.just("x"))),
    maybe("finish_reason", st.sampled_from(["null", "null", None, "", "stop", False])),
    maybe("index", st.sampled_from([0, 0, 1, "0", True])),
    maybe("logprobs", st.none()),
)
DS_EVENTS = st.builds(
    lambda output, rest: {**output, **rest},
    st.one_of(
        st.lists(DS_CHOICES, min_size=1, max_size=1).map(lambda c: {"output": {"choices": c}}),
        st.lists(DS_CHOICES, max_size=2).map(lambda c: {"output": {"choices": c}}),
        st.just({"output": {"text": "t", "finish_reason": "null"}}),  # result_format text
        st.just({}),
    ),
    parts(
        maybe(
            "usage", st.sampled_from([DS_USAGE, DS_USAGE, {}, None, [1], {"output_tokens": "x"}])
        ),
        maybe("request_id", st.sampled_from(["r1", "r1", None, 5, ""])),
        maybe("code", st.sampled_from(["Throttling", None])),
    ),
)


def dashscope_event(data: Any, number: int = 1, name: str = "result") -> bytes:
    head = b"id:%d\nevent:%s\n:HTTP_STATUS/200\ndata:" % (number, name.encode())
    return head + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    events=st.lists(DS_EVENTS.map(dashscope_event), min_size=1, max_size=5),
    incremental=st.booleans(),
    stop=st.booleans(),
    per_read=st.sampled_from([1, 1, 2, 3]),
)
@example(  # the usual stream: text, then the finish
    events=[
        dashscope_event(
            {"output": {"choices": [{"message": m, "finish_reason": f}]}, "usage": DS_USAGE}
        )
        for m, f in (
            ({"role": "assistant", "content": "", "reasoning_content": "hm"}, "null"),
            ({"role": "assistant", "content": "a"}, "null"),
            ({"role": "assistant", "content": ""}, "stop"),
        )
    ],
    incremental=True,
    stop=False,
    per_read=1,
)
@example(  # cumulative: each event repeats the text so far; one rewrites it
    events=[
        dashscope_event({"output": {"choices": [{"message": {"content": c}}]}})
        for c in ("a", "ab", "xy")
    ],
    incremental=False,
    stop=False,
    per_read=2,
)
@example(  # tool calls, and indexes validation would read as 0 and 1
    events=[
        dashscope_event({"output": {"choices": [{"message": m, "index": i}]}})
        for m, i in (
            ({"content": "a", "tool_calls": [{"id": "c", "function": {"name": "f"}}]}, 0),
            ({"content": "b"}, "0"),
            ({"content": "c"}, True),
        )
    ],
    incremental=True,
    stop=False,
    per_read=1,
)
@example(  # an error event
    events=[dashscope_event({"code": "Throttling", "message": "slow down"}, name="error")],
    incremental=True,
    stop=False,
    per_read=1,
)
def test_dashscope_text_chunks_are_what_the_general_way_gives(
    events: list[bytes], incremental: bool, stop: bool, per_read: int
) -> None:
    extra_body = {"incremental_output": incremental}
    options = dict(provider="dashscope", stop=stop, per_read=per_read, extra_body=extra_body)
    assert run(events, typed=True, **options) == run(events, typed=False, **options)


QF_USAGE = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
#: Qianfan v1 events: ``result`` pieces, ``is_end`` on the last, now and then an error,
#: a function call or a field of another type.
QF_EVENTS = st.builds(
    lambda base, rest: {**base, **rest},
    st.just({"object": "chat.completion", "sentence_id": 0, "need_clear_history": False}),
    parts(
        maybe("id", st.sampled_from(["as-1", "as-1", None, 5])),
        maybe("created", st.sampled_from([1721614853, 1721614853, 0, "17", 1.5, True])),
        maybe("result", st.one_of(TEXT, TEXT, st.none(), st.just(3))),
        maybe("is_end", st.sampled_from([False, False, True, None])),
        maybe("function_call", st.sampled_from([None, {}, {"name": "f", "arguments": "{}"}])),
        maybe("usage", st.sampled_from([QF_USAGE, QF_USAGE, {}, None, "x"])),
        maybe("error_code", st.sampled_from([336100, None])),
        maybe("error_msg", st.just("busy")),
    ),
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(
    events=st.lists(
        QF_EVENTS.map(lambda e: b"data: " + json.dumps(e, ensure_ascii=False).encode() + b"\n\n"),
        min_size=1,
        max_size=5,
    ),
    stop=st.booleans(),
    per_read=st.sampled_from([1, 1, 2, 3]),
)
@example(
    events=[
        b'data: {"id": "as-1", "created": 1, "result": "%s", "is_end": %s, "usage": %s}\n\n'
        % (text, end, json.dumps(QF_USAGE).encode())
        for text, end in ((b"a", b"false"), (b"b", b"false"), (b"", b"true"))
    ],
    stop=False,
    per_read=1,
)
def test_qianfan_v1_text_chunks_are_what_the_general_way_gives(
    events: list[bytes], stop: bool, per_read: int
) -> None:
    options = dict(provider="qianfan", stop=stop, per_read=per_read)
    assert run(events, typed=True, **options) == run(events, typed=False, **options)


@pytest.mark.parametrize(
    ("provider", "event"),
    [
        (
            "dashscope",
            dashscope_event(
                {
                    "output": {"choices": [{"message": {"role": "assistant", "content": "a"}}]},
                    "usage": DS_USAGE,
                    "request_id": "r1",
                }
            ),
        ),
        (
            "qianfan",
            b'data: {"id": "as-1", "created": 1, "result": "a", "is_end": false,'
            b' "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}\n\n',
        ),
    ],
)
def test_a_piece_of_text_is_built_as_a_typed_chunk(provider: str, event: bytes) -> None:
    # Guards the tests above from comparing the general way with itself.
    call = CallContext(provider=provider, model="m", requested_model="m", stream=True)
    parser = stream_parser(provider, call)
    general = general_ways(parser)
    raw = event.split(b"data:", 1)[1].strip()
    chunk, usage, fault = parser.translate(raw)
    assert chunk is not None and not general and fault is None
    assert chunk.choices[0].delta.content == "a" and chunk.provider == provider
    assert usage  # the running figures, for the stream layer to keep
    pipeline = ChunkPipeline(parser, call, http_response(provider))
    assert pipeline.feed(event)[0].choices[0].delta.content == "a"
    assert pipeline.usage is not None and pipeline.usage["total_tokens"] == 4


class ModelName(str, enum.Enum):
    QWEN = "qwen-plus"


@pytest.mark.parametrize("provider", ["dashscope", "qianfan"])
def test_a_model_named_by_a_str_subclass_comes_back_as_a_plain_str(provider: str) -> None:
    if provider == "dashscope":
        event = dashscope_event({"output": {"choices": [{"message": {"content": "a"}}]}})
    else:
        event = b'data: {"id": "as-1", "created": 1, "result": "a", "is_end": false}\n\n'
    options = dict(provider=provider, stop=False, model=ModelName.QWEN)
    typed = run([event], typed=True, **options)
    assert typed == run([event], typed=False, **options)
    assert typed["chunks"][0][1]["model"].__class__ is str
