"""Property-based fault suite (issue 6): parsers take anything and raise only `APIError`s.

The SSE decoder is fed arbitrary bytes split at arbitrary points; every adapter's response,
embeddings, error and stream-event parser is fed arbitrary JSON (random and shaped like the
real bodies). A `TypeError`/`KeyError`/`AttributeError` escaping a parser is a bug: a
provider (or a proxy in between) that answers something odd must surface as an
``openai``-style error the caller's ``except`` clauses already handle, never as a crash.

Seeds are fixed (``derandomize=True``) so a failure here is reproducible run to run; the
``@example`` rows pin the shapes that crashed when this file was written.
"""

from __future__ import annotations

import copy
import functools
import itertools
import json
from typing import Any, Callable

import httpx
import pytest
from fuzzing import BODIES, CLIENTS, DATA_EVENTS, EVENTS, MODELS, SHAPED_JSON, SSE_BYTES
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from llm_bridge import APIError, OpenAI
from llm_bridge._shapes.chat import ChatCompletionChunk
from llm_bridge._sse import SSEDecoder, SSEEvent
from llm_bridge._wire import Fault, ProviderFault, Reply
from llm_bridge.adapters._base import Adapter, CallContext

PROFILE = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --------------------------------------------------------------------------- strategies
# --------------------------------------------------------------------------- SSE decoder


def _decode(pieces: list[bytes]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:  # a plain data event comes as its bytes
        events += (SSEEvent(e) if isinstance(e, bytes) else e for e in decoder.feed(piece))
    return events + decoder.flush()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


@PROFILE
@given(data=st.binary(max_size=300) | SSE_BYTES, cuts=st.lists(st.integers(0, 10_000)))
def test_sse_decoder_split_anywhere_decodes_the_same(data: bytes, cuts: list[int]) -> None:
    whole = _decode([data])
    pieces = _split(data, cuts)
    assert b"".join(pieces) == data
    assert _decode(pieces) == whole


def _reference_sse(data: bytes) -> list[SSEEvent]:
    """The event-stream algorithm read line by line, as plainly as the WHATWG text puts
    it (plus our two departures: a bare JSON line is data, and the body's end dispatches
    a last event without its blank line). The decoder's fast paths must agree with it."""
    events: list[SSEEvent] = []
    state: dict[str, Any] = {}

    def reset() -> None:
        state.update(data=[], event=None, id=None, retry=None, comments=[])

    def dispatch() -> None:
        if state["data"] or state["event"] is not None:
            events.append(
                SSEEvent(
                    "\n".join(state["data"]),
                    state["event"],
                    state["id"],
                    state["retry"],
                    tuple(state["comments"]),
                )
            )
        reset()

    reset()
    for line in data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        text = line.decode("utf-8", errors="replace")
        if not line:
            dispatch()
        elif line.startswith(b":"):
            state["comments"].append(text[1:].lstrip(" "))
        elif line.startswith(b"{"):
            state["data"].append(text)
        else:
            name, sep, value = line.partition(b":")
            value = value[1:] if sep and value.startswith(b" ") else value
            decoded = value.decode("utf-8", errors="replace")
            if name == b"data":
                state["data"].append(decoded)
            elif name == b"event":
                state["event"] = decoded
            elif name == b"id" and b"\0" not in value:
                state["id"] = decoded
            elif name == b"retry" and value.isdigit():
                state["retry"] = int(value)
    dispatch()
    return events


@PROFILE
@given(data=st.binary(max_size=300) | SSE_BYTES, cuts=st.lists(st.integers(0, 10_000)))
@example(data=b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\nid: 2\ndata: x\n\n", cuts=[])
@example(data=b"event: error\n: a\n:b\ndata:  two spaces\n\nid:a\x00b\ndata:y\n\n", cuts=[9])
def test_sse_decoder_agrees_with_the_line_by_line_algorithm(data: bytes, cuts: list[int]) -> None:
    assert _decode(_split(data, cuts)) == _reference_sse(data)


@PROFILE
@given(data=st.binary(max_size=300) | SSE_BYTES, cuts=st.lists(st.integers(0, 10_000)))
@example(data=b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\n", cuts=[])
@example(data=b"id:1\nevent:result\n:event:error\ndata:{}\n\n", cuts=[])
@example(data=b"id:1\nevent:error\n:HTTP_STATUS/400\ndata: x\n\n", cuts=[])
@example(data=b"id:1\nevent: error\ndata: x\n\n", cuts=[3])
@example(data=b"event:errors\ndata: x\n\n", cuts=[])
@example(data=b"data:a\nevent:result\ndata:b\n\n", cuts=[])
@example(data=b"retry: 3000\nevent:result\ndata:\n\n", cuts=[])
@example(data=b"event:error\nevent:result\ndata:x\n\n", cuts=[])
@example(data=b"data\ndata: [DONE]\n\nid:1\ndata\ndata:x\n\n", cuts=[])
@example(data=b'{"error_code": 110}\ndata: x\n\nid:1\n{"a": 1}\ndata: y\n\n', cuts=[])
def test_sse_decoder_telling_apart_some_names_agrees_with_the_line_by_line_algorithm(
    data: bytes, cuts: list[int]
) -> None:
    _check_decoding_telling_errors_apart(data, cuts)


def _check_decoding_telling_errors_apart(data: bytes, cuts: list[int]) -> None:
    # Told to tell "error" apart (what the stream parsers ask), the decoder hands every
    # other event over as its data bytes, losing only what no reader then needs (its
    # name, id, retry and comments); an "error" event comes whole, as without names.
    decoder = SSEDecoder(["error"])
    items: list[Any] = []
    for piece in _split(data, cuts):
        items += decoder.feed(piece)
    items += decoder.flush()
    reference = _reference_sse(data)
    assert len(items) == len(reference)
    for item, event in zip(items, reference):
        if isinstance(item, bytes):
            assert event.event != "error"
            assert item.decode("utf-8", errors="replace") == event.data
        else:
            assert item == event


#: DashScope-framed events and near misses, so that the framing the decoder learns from
#: one event (see `SSEDecoder._framed_event`) meets events framed a little differently.
FRAMED_LINES = st.sampled_from(
    [
        b"id:1",
        b"id: 2",
        b"id:3\x00",
        b"event:result",
        b"event:error",
        b"event: result",
        b"event",
        b":HTTP_STATUS/200",
        b":HTTP_STATUS/400",
        b'data:{"a": 1}',
        b"data: x",
        b"data:",
        b"data:\ndata",
        b"retry:5",
    ]
)
FRAMED_EVENTS = st.one_of(
    st.lists(FRAMED_LINES, min_size=1, max_size=5),
    # DashScope's framing after lines other than one id line, before other data lines
    st.tuples(
        st.sampled_from(
            [b"id:7", b"id: 8", b"id:9\x00", b"data: x", b"data:", b"id:1\ndata:a", b":a", b""]
        ),
        st.just(b"event:result\n:HTTP_STATUS/200"),
        st.lists(FRAMED_LINES, min_size=1, max_size=2),
    ).map(lambda parts: [parts[0], parts[1], *parts[2]]),
).map(lambda lines: b"\n".join(lines) + b"\n\n")


@PROFILE
@given(
    events=st.lists(FRAMED_EVENTS, max_size=6),
    first=st.integers(1, 99),
    cuts=st.lists(st.integers(0, 10_000)),
)
@example(events=[b"id:2\nevent:result\n:HTTP_STATUS/200\ndata: x\n\n"], first=1, cuts=[])
@example(events=[b"id:2\n:HTTP_STATUS/200\nevent:result\ndata:x\n\n"], first=1, cuts=[])
@example(events=[b"id:2\nevent:result\n:HTTP_STATUS/200\ndata:x\ndata:y\n\n"], first=1, cuts=[])
@example(events=[b"id:2\nid:3\nevent:result\n:HTTP_STATUS/200\ndata:x\n\n"], first=1, cuts=[])
@example(events=[b"id:2\nevent:error\n:HTTP_STATUS/200\ndata:x\n\n"], first=1, cuts=[])
def test_sse_decoder_learning_a_framing_agrees_with_the_line_by_line_algorithm(
    events: list[bytes], first: int, cuts: list[int]
) -> None:
    # A stream that opens as DashScope's do, then goes on with events framed alike or not.
    data = b"id:%d\nevent:result\n:HTTP_STATUS/200\ndata:{}\n\n" % first + b"".join(events)
    _check_decoding_telling_errors_apart(data, cuts)


@PROFILE
@given(data=st.binary(max_size=300) | SSE_BYTES)
def test_sse_decoder_byte_by_byte_decodes_the_same(data: bytes) -> None:
    assert _decode([data[i : i + 1] for i in range(len(data))]) == _decode([data])


@PROFILE
@given(data=st.binary(max_size=200) | SSE_BYTES, cuts=st.lists(st.integers(0, 10_000)))
def test_sse_decoder_flush_never_raises_and_empties(data: bytes, cuts: list[int]) -> None:
    decoder = SSEDecoder()
    for piece in _split(data, cuts):
        decoder.feed(piece)
        decoder.flush()  # mid-body flushes (a stream cut anywhere) must not raise either
    decoder.flush()
    assert not decoder.pending
    assert decoder.flush() == []


@PROFILE
@given(data=SSE_BYTES)
def test_sse_decoder_events_carry_text(data: bytes) -> None:
    for event in _decode([data]):
        assert isinstance(event.data, str)
        assert event.event is None or isinstance(event.event, str)
        assert event.retry is None or isinstance(event.retry, int)


# --------------------------------------------------------------------------- adapters


@functools.cache
def adapter(name: str) -> Adapter:
    provider, kwargs, fake = CLIENTS[name]
    client = OpenAI(
        provider=provider, http_client=httpx.Client(transport=fake().transport()), **kwargs
    )
    return client._engine.adapter(provider)


def test_every_adapter_class_is_covered() -> None:
    classes = {type(adapter(name)).__name__ for name in CLIENTS}
    assert classes == {
        "ZhipuAdapter",
        "OpenAICompatAdapter",
        "QianfanAdapter",
        "QianfanV2Adapter",
        "DashScopeAdapter",
        "DashScopeCompatAdapter",
    }


def response(a: Adapter, status: int = 200, headers: Any = None) -> Reply:
    """The plain answer adapters read (they never see httpx objects)."""
    return Reply(status, headers or {}, url=a.url("x"))


def http_response(a: Adapter, status: int = 200) -> httpx.Response:
    """What the engine attaches to the exception a fault becomes."""
    return httpx.Response(status, request=httpx.Request("POST", a.url("x")))


def call(a: Adapter, *, stream: bool = False, cumulative: bool = False) -> CallContext:
    return CallContext(
        provider=a.name,
        model="m",
        requested_model="m",
        stream=stream,
        extra_body={"incremental_output": False} if cumulative else {},
    )


def only_api_errors(
    what: str,
    function: Callable[..., Any],
    *args: Any,
    shown: Any,
    allowed: tuple[type[Exception], ...] = (APIError,),
) -> None:
    """Run ``function``; an ``allowed`` error is fine (an `APIError` from a client, a
    `Fault`, the description an adapter raises, from an adapter), anything else is the
    bug being looked for."""
    try:
        function(*args)
    except allowed:
        pass
    except Exception as exc:  # re-raised with the input that caused it
        raise AssertionError(
            f"{what} let {type(exc).__name__}: {exc} escape for input {shown!r}"
        ) from exc


ADAPTERS = pytest.mark.parametrize("name", list(CLIENTS))
#: Seven adapters share the budget: 100 examples each keeps the file well under 30 s.
PER_ADAPTER = settings(PROFILE, max_examples=100)


@ADAPTERS
@PER_ADAPTER
@given(body=BODIES)
@example(body={"choices": [1]})
@example(body={"choices": [{"message": 1}]})
@example(body={"output": {"choices": [1]}})
@example(body={"choices": [None]})
@example(body={"result": "x", "finish_reason": [None]})
@example(body={"result": "x", "usage": 1})
@example(body={"output": {"choices": [{"message": {"content": [1]}}]}})
@example(body={"output": {}, "usage": {"output_tokens_details": 1}})
def test_chat_response_raises_only_api_errors(name: str, body: Any) -> None:
    a = adapter(name)
    only_api_errors(
        f"{name} chat_response",
        a.chat_response,
        response(a),
        copy.deepcopy(body),
        call(a),
        shown=body,
        allowed=(Fault,),
    )


@ADAPTERS
@PER_ADAPTER
@given(body=BODIES)
@example(body={"data": [1]})
@example(body={"data": [{}]})
@example(body={"data": [None]})
@example(body={"data": [], "usage": 1})
@example(body={"output": {"embeddings": [1]}})
@example(body={"output": {"embeddings": [{}]}})
def test_embeddings_response_raises_only_api_errors(name: str, body: Any) -> None:
    a = adapter(name)
    only_api_errors(
        f"{name} embeddings_response",
        a.embeddings_response,
        response(a),
        copy.deepcopy(body),
        call(a),
        shown=body,
        allowed=(Fault,),
    )


@ADAPTERS
@PER_ADAPTER
@given(
    body=BODIES | st.text(max_size=40) | SHAPED_JSON.map(lambda v: "data:" + json.dumps(v)),
    status=st.sampled_from([200, 400, 401, 429, 500, 503]),
    bce_code=st.none() | st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=8),
)
@example(body={"error": {"code": 1}}, status=200, bce_code=None)
@example(body={"error": {"code": "1113", "message": 1}}, status=429, bce_code=None)
@example(body={"error_code": 110, "error_msg": 1}, status=200, bce_code=None)
@example(body={"code": "Arrearage", "message": [1]}, status=400, bce_code=None)
@example(body={"code": "InvalidParameter", "message": 5}, status=400, bce_code=None)
@example(
    body={"error": {"code": "invalid_parameter_error", "message": 5}}, status=400, bce_code=None
)
def test_find_error_raises_only_api_errors(
    name: str, body: Any, status: int, bce_code: Any
) -> None:
    a = adapter(name)
    headers = {"x-bce-error-code": bce_code} if bce_code else None
    resp = response(a, status, headers)

    def find() -> None:
        fault = a.find_error(resp, copy.deepcopy(body))
        assert fault is None or isinstance(fault, ProviderFault)
        if fault is not None:
            error = fault.api_error(http_response(a, status))
            assert isinstance(error, APIError)
            str(error), repr(error)

    only_api_errors(f"{name} find_error", find, shown=body)


@ADAPTERS
@PER_ADAPTER
@given(body=BODIES | st.text(max_size=40))
@example(body={"error": {"code": 1}})
@example(body={"error": {"type": ["x"]}})
@example(body={"code": "x", "error_code": 0})
def test_error_fields_return_strings_or_none(name: str, body: Any) -> None:
    a = adapter(name)
    try:
        code, _ = a.error_fields(copy.deepcopy(body))
    except Exception as exc:
        raise AssertionError(f"{name} error_fields raised {exc!r} for {body!r}") from exc
    assert code is None or isinstance(code, str), (code, body)


@ADAPTERS
@PER_ADAPTER
@given(events=st.lists(EVENTS | DATA_EVENTS, min_size=1, max_size=6), cumulative=st.booleans())
@example(events=[SSEEvent('{"choices": [null]}')], cumulative=False)
@example(events=[SSEEvent('{"choices": [{"delta": true}]}')], cumulative=False)
@example(events=[SSEEvent('{"choices": [{"delta": {"tool_calls": [1]}}]}')], cumulative=False)
@example(events=[SSEEvent('{"output": {"choices": [{"message": 1}]}}')], cumulative=False)
@example(events=[SSEEvent('{"output": 1}')], cumulative=False)
@example(
    events=[SSEEvent('{"result": "x", "is_end": true, "finish_reason": [1]}')], cumulative=False
)
@example(events=[SSEEvent('{"result": "x", "function_call": {"name": 1}}')], cumulative=False)
@example(events=[SSEEvent('{"error": {"type": []}}')], cumulative=False)
@example(events=[SSEEvent('{"error": {"code": false, "type": false}}')], cumulative=False)
@example(events=[SSEEvent('{"error": 1}', event="error")], cumulative=False)
def test_stream_parser_raises_only_api_errors(
    name: str, events: list[SSEEvent | bytes], cumulative: bool
) -> None:
    a = adapter(name)
    parser = a.stream_parser(response(a), call(a, stream=True, cumulative=cumulative))

    def feed_all() -> None:
        for event in events:
            translated = parser.translate(event)
            if translated is not None:
                chunk, usage, fault = translated
                assert chunk is None or isinstance(chunk, ChatCompletionChunk)
                assert usage is None or (isinstance(usage, dict) and usage)
                if fault is not None:
                    raise fault

    only_api_errors(f"{name} stream parser", feed_all, shown=events, allowed=(Fault,))


# --------------------------------------------------------------------------- through a client

HELLO = [{"role": "user", "content": "hi"}]
TOKEN = {"access_token": "24.prop-token", "expires_in": 2592000}
E2E = settings(PROFILE, max_examples=20)


def answering(name: str, content: bytes, content_type: str) -> OpenAI:
    """A client of ``name`` whose provider answers every request with ``content``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/2.0/token"):
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(200, content=content, headers={"Content-Type": content_type})

    provider, kwargs, _ = CLIENTS[name]
    http = httpx.Client(transport=httpx.MockTransport(handler))
    return OpenAI(provider=provider, http_client=http, max_retries=0, **kwargs)


def sse(events: list[Any], done: bool) -> bytes:
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


@ADAPTERS
@E2E
@given(body=BODIES)
@example(body={"choices": [{"message": {"content": 5}}]})
@example(body={"output": {"choices": [{"message": {"content": 5}}]}})
@example(body={"result": 5})
def test_client_chat_raises_only_api_errors(name: str, body: Any) -> None:
    """What an adapter lets through, the response models must not choke on either."""
    client = answering(name, json.dumps(body).encode(), "application/json")
    only_api_errors(
        f"{name} chat.completions.create",
        lambda: client.chat.completions.create(model=MODELS[name][0], messages=HELLO),
        shown=body,
    )


@ADAPTERS
@E2E
@given(events=st.lists(BODIES, min_size=1, max_size=4), done=st.booleans())
@example(events=[{"choices": [{"delta": {"content": 5}}]}], done=True)
@example(events=[{"output": {"choices": [{"message": {"content": 5}}]}}], done=True)
@example(events=[{"result": 5, "is_end": True}], done=False)
def test_client_stream_raises_only_api_errors(name: str, events: list[Any], done: bool) -> None:
    client = answering(name, sse(events, done), "text/event-stream")

    def consume() -> None:
        stream = client.chat.completions.create(model=MODELS[name][0], messages=HELLO, stream=True)
        for _ in stream:
            pass

    only_api_errors(f"{name} stream", consume, shown=events)


@ADAPTERS
@E2E
@given(body=BODIES)
@example(body={"data": [{"embedding": "x", "index": 0}]})
@example(body={"output": {"embeddings": [{"embedding": "x", "text_index": 0}]}})
@example(body={"data": [None]})
@example(body={"data": [{"embedding": None}]})
@example(body={"output": {"embeddings": [{"embedding": None}]}})
def test_client_embeddings_raise_only_api_errors(name: str, body: Any) -> None:
    client = answering(name, json.dumps(body).encode(), "application/json")
    only_api_errors(
        f"{name} embeddings.create",
        lambda: client.embeddings.create(model=MODELS[name][1], input=["a"]),
        shown=body,
    )
