"""The pure SSE decoder: bytes in, events out (framings from docs/providers/*.md)."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from llm_bridge._sse import EventTooLarge, SSEDecoder, SSEEvent


class EventDecoder(SSEDecoder):
    """The decoder with every event as an `SSEEvent`: `SSEDecoder.feed` hands a plain
    ``data:`` event over as its bytes (see `test_a_plain_data_event_comes_as_its_bytes`)."""

    def feed(self, chunk: bytes) -> list[SSEEvent]:  # type: ignore[override]
        return [SSEEvent(e) if isinstance(e, bytes) else e for e in super().feed(chunk)]


# Zhipu's stream Z2 (docs/providers/zhipu.md), byte for byte.
Z2 = (
    'data: {"id":"20240722102053e7277a4f94e848248ff9588ed37fb6e6","created":1721614853,'
    '"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"人工智能"}}]}\n'
    "\n"
    'data: {"id":"20240722102053e7277a4f94e848248ff9588ed37fb6e6","created":1721614853,'
    '"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"助手"}}]}\n'
    "\n"
    'data: {"id":"20240722102053e7277a4f94e848248ff9588ed37fb6e6","created":1721614853,'
    '"model":"glm-4","choices":[{"index":0,"delta":{"role":"assistant","content":"。"}}]}\n'
    "\n"
    'data: {"id":"20240722102053e7277a4f94e848248ff9588ed37fb6e6","created":1721614853,'
    '"model":"glm-4","choices":[{"index":0,"finish_reason":"stop","delta":{"role":"assistant",'
    '"content":""}}],"usage":{"prompt_tokens":13,"completion_tokens":10,"total_tokens":23}}\n'
    "\n"
    "data: [DONE]\n"
    "\n"
).encode()

# DashScope's native framing (docs/providers/dashscope.md): no space after colons, a status
# comment.
DASHSCOPE = (
    "id:1\n"
    "event:result\n"
    ":HTTP_STATUS/200\n"
    'data:{"output":{"choices":[{"message":{"content":"你好","role":"assistant"},'
    '"finish_reason":"null"}]},"usage":{"total_tokens":116,"input_tokens":114,'
    '"output_tokens":2},"request_id":"71689cfc-1f42-9949-86e8-9563b7f832b1"}\n'
    "\n"
).encode()


def decode(*pieces: bytes) -> list[SSEEvent]:
    """Feed ``pieces`` one by one, then flush; every event in order."""
    decoder = EventDecoder()
    events: list[SSEEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.flush()
    return events


def datas(events: list[SSEEvent]) -> list[str]:
    return [event.data for event in events]


# --------------------------------------------------------------------------- framings


def test_zhipu_framing_gives_one_event_per_data_line_and_the_done_sentinel():
    decoder = EventDecoder()
    events = decoder.feed(Z2)
    assert len(events) == 5
    assert events[-1].data == "[DONE]"
    payloads = [json.loads(e.data) for e in events[:-1]]
    assert [p["choices"][0]["delta"]["content"] for p in payloads] == ["人工智能", "助手", "。", ""]
    assert payloads[-1]["usage"] == {
        "prompt_tokens": 13,
        "completion_tokens": 10,
        "total_tokens": 23,
    }
    for event in events:
        assert event.event is None
        assert event.id is None
        assert event.retry is None
        assert event.comments == ()
        assert not event.data.startswith(" ")
    assert decoder.flush() == []
    assert not decoder.pending


def test_dashscope_framing_no_space_after_colon_and_status_comment_kept():
    (event,) = decode(DASHSCOPE)
    assert event.id == "1"
    assert event.event == "result"
    assert event.comments == ("HTTP_STATUS/200",)
    assert event.data.startswith('{"output"')
    assert json.loads(event.data)["output"]["choices"][0]["message"]["content"] == "你好"


def test_dashscope_error_event_keeps_its_type_and_status():
    raw = (
        b"id:1\nevent:error\n:HTTP_STATUS/400\n"
        b'data:{"code":"InvalidParameter","message":"Preprocessor error"}\n\n'
    )
    (event,) = decode(raw)
    assert event.event == "error"
    assert event.comments == ("HTTP_STATUS/400",)
    assert json.loads(event.data)["code"] == "InvalidParameter"


def test_dashscope_events_do_not_leak_fields_into_the_next_event():
    second = DASHSCOPE.replace(b"id:1", b"id:2").replace(b"HTTP_STATUS/200", b"HTTP_STATUS/201")
    first, nxt = decode(DASHSCOPE + second)
    assert (first.id, first.comments) == ("1", ("HTTP_STATUS/200",))
    assert (nxt.id, nxt.comments) == ("2", ("HTTP_STATUS/201",))


def test_deepseek_keep_alive_comments_yield_no_event():
    decoder = EventDecoder()
    assert decoder.feed(b": keep-alive\n\n: keep-alive\n\n") == []
    assert not decoder.pending
    events = decoder.feed(b': keep-alive\n\ndata: {"a":1}\n\n')
    assert datas(events) == ['{"a":1}']
    # A comment block dispatched on its own does not stick to the next event.
    assert events[0].comments == ()
    assert decoder.flush() == []


def test_comment_inside_an_event_is_kept_and_data_still_dispatched():
    (event,) = decode(b"data: x\n: keep-alive\n\n")
    assert event.data == "x"
    assert event.comments == ("keep-alive",)


def test_only_one_leading_space_is_stripped_from_a_value():
    (event,) = decode(b"data:  two spaces\n\n")
    assert event.data == " two spaces"


def test_retry_and_unknown_fields():
    (event,) = decode(b"retry: 3000\nfoo: bar\ndata: x\n\n")
    assert event.retry == 3000
    assert event.data == "x"
    (event,) = decode(b"retry: soon\ndata: x\n\n")
    assert event.retry is None


# --------------------------------------------------------------------------- line endings


def test_crlf_line_endings():
    assert datas(decode(b"data: a\r\n\r\ndata: b\r\n\r\n")) == ["a", "b"]


def test_lone_cr_line_endings():
    assert datas(decode(b"data: a\r\rdata: b\r\r")) == ["a", "b"]


def test_mixed_line_endings():
    assert datas(decode(b"data: a\r\n\ndata: b\r\rdata: c\n\r\n")) == ["a", "b", "c"]


def test_crlf_split_across_two_feeds_is_one_line_ending():
    decoder = EventDecoder()
    assert decoder.feed(b"data: a\r") == []
    events = decoder.feed(b"\n\r\n")
    assert datas(events) == ["a"]
    assert decoder.flush() == []


def test_blank_line_crlf_split_across_feeds_gives_a_single_event():
    decoder = EventDecoder()
    events = decoder.feed(b"data: a\r\n\r")
    events += decoder.feed(b"\ndata: b\r\n\r\n")
    events += decoder.flush()
    assert datas(events) == ["a", "b"]


def test_z2_with_crlf_split_byte_by_byte():
    crlf = Z2.replace(b"\n", b"\r\n")
    assert datas(decode(*[crlf[i : i + 1] for i in range(len(crlf))])) == datas(decode(Z2))


# --------------------------------------------------------------------------- data lines


def test_multi_line_data_joined_with_newline():
    (event,) = decode(b"data: first\ndata: second\ndata:third\n\n")
    assert event.data == "first\nsecond\nthird"


def test_empty_data_line_contributes_an_empty_line():
    (event,) = decode(b"data: a\ndata\ndata: b\n\n")
    assert event.data == "a\n\nb"


def test_multibyte_utf8_character_split_across_feeds():
    raw = "data: 人工智能👋\n\n".encode()
    start = raw.index("工".encode())
    emoji = raw.index("👋".encode())
    decoder = EventDecoder()
    events = decoder.feed(raw[: start + 1])  # first byte of 工
    events += decoder.feed(raw[start + 1 : emoji + 2])  # half of the emoji
    events += decoder.feed(raw[emoji + 2 :])
    assert datas(events) == ["人工智能👋"]
    assert "\ufffd" not in events[0].data


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7])
def test_multibyte_text_at_every_chunk_size(size: int):
    raw = 'data: {"content":"你好👋！我是人工智能助手"}\n\n'.encode()
    events = decode(*[raw[i : i + size] for i in range(0, len(raw), size)])
    assert datas(events) == ['{"content":"你好👋！我是人工智能助手"}']


# --------------------------------------------------------------------------- split points


def test_every_split_point_of_z2_yields_the_same_events():
    expected = decode(Z2)
    assert len(expected) == 5
    for cut in range(len(Z2) + 1):
        got = decode(Z2[:cut], Z2[cut:])
        assert got == expected, f"split at byte {cut}"
        assert all("\ufffd" not in e.data for e in got), f"split at byte {cut}"


def test_every_split_point_of_z2_crlf_yields_the_same_events():
    crlf = Z2.replace(b"\n", b"\r\n")
    expected = decode(Z2)
    for cut in range(len(crlf) + 1):
        assert decode(crlf[:cut], crlf[cut:]) == expected, f"split at byte {cut}"


def test_every_split_point_of_dashscope_yields_the_same_event():
    expected = decode(DASHSCOPE)
    for cut in range(len(DASHSCOPE) + 1):
        assert decode(DASHSCOPE[:cut], DASHSCOPE[cut:]) == expected, f"split at byte {cut}"


def test_random_multi_way_splits_of_z2_yield_the_same_events():
    expected = decode(Z2)
    rng = random.Random(20240722)
    for _ in range(300):
        cuts = sorted(rng.sample(range(1, len(Z2)), rng.randint(2, 12)))
        bounds = [0, *cuts, len(Z2)]
        pieces = [Z2[a:b] for a, b in itertools.pairwise(bounds)]
        assert decode(*pieces) == expected, f"cuts {cuts}"


def test_events_are_dispatched_as_soon_as_their_blank_line_arrives():
    decoder = EventDecoder()
    first_end = Z2.index(b"\n\n") + 2
    assert len(decoder.feed(Z2[: first_end - 1])) == 0
    assert len(decoder.feed(Z2[first_end - 1 : first_end])) == 1


# --------------------------------------------------------------------------- flush, pending


def test_flush_dispatches_a_final_event_without_trailing_newline():
    decoder = EventDecoder()
    assert decoder.feed(b"data: [DONE]") == []
    assert decoder.pending
    assert datas(decoder.flush()) == ["[DONE]"]
    assert not decoder.pending
    assert decoder.flush() == []


def test_flush_dispatches_a_final_event_without_blank_line():
    decoder = EventDecoder()
    assert decoder.feed(b'data: {"a":1}\n') == []
    assert decoder.pending
    assert datas(decoder.flush()) == ['{"a":1}']
    assert not decoder.pending


def test_flush_after_a_trailing_lone_cr():
    decoder = EventDecoder()
    events = decoder.feed(b"data: a\r")
    events += decoder.flush()
    assert datas(events) == ["a"]


def test_flush_of_nothing_or_only_comments_gives_nothing():
    assert EventDecoder().flush() == []
    decoder = EventDecoder()
    decoder.feed(b": keep-alive")
    assert decoder.flush() == []


def test_pending_tracks_undispatched_bytes():
    decoder = EventDecoder()
    assert not decoder.pending
    decoder.feed(b"da")
    assert decoder.pending  # a partial line
    decoder.feed(b"ta: x\n")
    assert decoder.pending  # a complete line, event not dispatched yet
    assert datas(decoder.feed(b"\n")) == ["x"]
    assert not decoder.pending
    decoder.feed(b": comment\n")
    assert decoder.pending
    decoder.feed(b"\n")
    assert not decoder.pending


def test_event_repr_and_equality():
    a = SSEEvent("x", event="result", id="1")
    assert a == SSEEvent("x", event="result", id="1")
    assert a != SSEEvent("x", event="result", id="2")
    assert a != "x"
    assert "result" in repr(a)


def test_a_plain_data_event_comes_as_its_bytes_and_any_other_as_an_event() -> None:
    items = SSEDecoder().feed(
        b'data: {"a":1}\n\ndata:[DONE]\n\nevent: error\ndata: x\n\ndata: a\ndata: b\n\n'
    )
    assert items[:2] == [b'{"a":1}', b"[DONE]"]  # the data, leading space stripped
    assert [(e.event, e.data) for e in items[2:]] == [("error", "x"), (None, "a\nb")]


def test_dashscope_framing_with_a_line_break_after_the_data_is_read_line_by_line() -> None:
    # The framed fast path takes the data to the end of the block only when it is one
    # line; a second data line (or any other) makes the generic reading take over.
    (event,) = EventDecoder().feed(b"id:1\nevent:result\n:HTTP_STATUS/200\ndata:a\ndata:b\n\n")
    assert (event.id, event.event, event.data, event.comments) == (
        "1",
        "result",
        "a\nb",
        ("HTTP_STATUS/200",),
    )


# ------------------------------------------------------------- hostile input (issue 19)


def test_a_line_that_never_ends_is_kept_in_pieces_not_searched_again() -> None:
    """One SSE line without a newline was joined and split anew on every chunk: 50 MB took
    30 s in the decoder alone. Chunks of an unfinished event are now only kept (and only
    the bytes around each new chunk are searched for an event's end)."""
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ") == []
    for _ in range(5000):
        assert decoder.feed(b"x" * 1000) == []
    assert len(decoder._parts) == 5000 and decoder._buffer == b"data: "
    (event,) = decoder.feed(b"\n\n")
    assert event == b"x" * 5_000_000


def test_an_event_end_split_across_chunks_after_a_long_line_is_found() -> None:
    for ending in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        for cut in range(1, len(ending)):
            decoder = SSEDecoder()
            decoder.feed(b"data: ")
            decoder.feed(b"abc")
            assert decoder.feed(ending[:cut]) == []
            assert decoder.feed(ending[cut:] + b"data: next\n\n") == [b"abc", b"next"]


def test_an_unfinished_event_past_the_limit_raises() -> None:
    decoder = SSEDecoder(max_event_bytes=10_000)
    decoder.feed(b"data: ")
    with pytest.raises(EventTooLarge) as raised:
        for _ in range(100):
            decoder.feed(b"y" * 1000)
    assert raised.value.limit == 10_000
    assert SSEDecoder(max_event_bytes=10_000).feed(b"data: " + b"z" * 9000 + b"\n\n")


def test_a_stream_line_past_max_sse_line_bytes_is_an_api_error() -> None:
    import httpx

    import llm_bridge

    class Endless(httpx.SyncByteStream):
        def __iter__(self):
            yield b'data: {"id": "x", "choices": [{"delta": {"content": "'
            while True:
                yield b"q" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Endless())

    client = llm_bridge.OpenAI(
        provider="zhipu",
        api_key="sse.secret",
        config={"limits": {"max_sse_line_bytes": 1_000_000}},
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(llm_bridge.ResponseTooLargeError, match="max_sse_line_bytes"):
        for _ in client.chat.completions.create(
            model="glm-4-flash", messages=[{"role": "user", "content": "hi"}], stream=True
        ):
            pass


@pytest.mark.parametrize("cut", [0, 1, 2, 3, 5])
def test_a_byte_order_mark_opening_the_body_is_dropped(cut: int) -> None:
    """As the WHATWG rules drop it: left, the first line's field was "\\ufeffdata" and the
    first event was lost (the stream then "ended without an answer")."""
    body = b"\xef\xbb\xbfdata: 1\n\ndata: 2\n\n"
    decoder = SSEDecoder()
    events = [*decoder.feed(body[:cut]), *decoder.feed(body[cut:]), *decoder.flush()]
    assert [e if isinstance(e, bytes) else e.raw for e in events] == [b"1", b"2"]
    # (only at the very start: later, the same bytes are data)
    later = SSEDecoder()
    assert later.feed(b"data: \xef\xbb\xbfx\n\n") == [b"\xef\xbb\xbfx"]
