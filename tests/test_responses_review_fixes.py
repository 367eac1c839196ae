"""The Responses API where a review found it differing from OpenAI's, or losing a turn.

An unknown ``previous_response_id`` is a 400 as OpenAI answers it; completed responses
carry ``completed_at`` and whole-second timestamps; ``input_items.list`` pages as OpenAI's
does; storing a response DashScope answered itself never fails the request, and keeps its
conversation as chat messages (noting what has no chat form), so a continuation on a model
llm-bridge translates sends the earlier turns, or says which part of them it cannot.
"""

from __future__ import annotations

import json
import time
import warnings
from functools import partial
from typing import Any

import openai
import pytest
from helpers import bridge, by_door, door_client, sent

import llm_bridge
from llm_bridge._response_store import StoredResponse, default_store
from llm_bridge._responses import input_messages, output_messages
from llm_bridge.testing import FakeDashScopeCompatible, FakeZhipu, Raw

KEY = "id.secret"
MODEL = "glm-4-flash"
dashscope = partial(bridge, "dashscope", api_key="sk-ds")

#: A part DashScope's own Responses API takes and the chat translation has no form for.
VIDEO = {"type": "input_video", "video_url": "https://example.com/v.mp4"}


# --------------------------------------------------------------------------- previous id


@by_door
def test_an_unknown_previous_response_is_a_400_as_openai_answers_it(door: str) -> None:
    c = door_client(door, FakeZhipu(api_key=KEY).reply("不留"))
    made = c.responses.create(model=MODEL, input="别存", store=False)
    with pytest.raises(openai.BadRequestError) as caught:
        c.responses.create(model=MODEL, input="继续", previous_response_id=made.id)
    error = caught.value
    assert error.status_code == 400 and error.code == "previous_response_not_found"
    assert error.param == "previous_response_id" and made.id in error.message
    # An unknown id named in the URL is still not found.
    with pytest.raises(openai.NotFoundError):
        c.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        c.responses.delete(made.id)


# --------------------------------------------------------------------------- timestamps


def raw_timestamps(response: dict[str, Any]) -> tuple[Any, Any]:
    return response["created_at"], response.get("completed_at")


def assert_whole_seconds_now(created: Any, completed: Any) -> None:
    assert type(created) is int and type(completed) is int
    assert created <= completed <= time.time() + 1 and completed > time.time() - 60


def test_a_completed_response_carries_completed_at_in_whole_seconds() -> None:
    fake = FakeZhipu(api_key=KEY).reply("你好").reply("你好", chunk_size=1)
    fake.reply("很长的", finish_reason="length")
    c = door_client("bridge", fake)
    raw = c.responses.with_raw_response.create(model=MODEL, input="你好")
    made = raw.http_response.json()
    assert_whole_seconds_now(*raw_timestamps(made))
    retrieved = c.responses.with_raw_response.retrieve(made["id"]).http_response.json()
    assert raw_timestamps(retrieved) == raw_timestamps(made)

    streamed = c.responses.with_raw_response.create(model=MODEL, input="你好", stream=True)
    lines = streamed.http_response.read().decode().splitlines()
    events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert events[-1]["type"] == "response.completed"
    assert_whole_seconds_now(*raw_timestamps(events[-1]["response"]))
    assert type(events[0]["response"]["created_at"]) is int
    assert "completed_at" not in events[0]["response"]  # in progress

    cut = c.responses.with_raw_response.create(model=MODEL, input="写长诗").http_response.json()
    assert cut["status"] == "incomplete" and "completed_at" not in cut  # completed only
    assert type(cut["created_at"]) is int


# --------------------------------------------------------------------------- input items

TURNS: Any = [
    {"role": "user", "content": "一"},
    {"role": "assistant", "content": "二"},
    {"role": "user", "content": "三"},
]


def texts(page: Any) -> list[str]:
    return [item.content[0].text for item in page.data]


@by_door
def test_input_items_are_listed_in_the_order_and_pages_asked(door: str) -> None:
    c = door_client(door, FakeZhipu(api_key=KEY).reply("四"))
    rid = c.responses.create(model=MODEL, input=TURNS).id
    items = c.responses.input_items
    newest = items.list(rid)
    assert texts(newest) == ["三", "二", "一"] and not newest.has_more
    assert texts(items.list(rid, order="asc")) == ["一", "二", "三"]
    first = items.list(rid, order="asc", limit=2)
    assert texts(first) == ["一", "二"] and first.has_more
    assert (first.first_id, first.last_id) == (first.data[0].id, first.data[1].id)
    rest = items.list(rid, order="asc", limit=2, after=first.last_id)
    assert texts(rest) == ["三"] and not rest.has_more
    assert texts(items.list(rid, after=newest.data[0].id)) == ["二", "一"]
    # openai's pager follows has_more and last_id through every page.
    assert [item.id for item in items.list(rid, limit=1)] == [item.id for item in newest.data]


@by_door
def test_an_assistant_input_message_is_listed_with_output_text(door: str) -> None:
    c = door_client(door, FakeZhipu(api_key=KEY).reply("四"))
    rid = c.responses.create(model=MODEL, input=TURNS).id
    listed = c.responses.input_items.list(rid, order="asc").data
    assert [item.content[0].type for item in listed] == ["input_text", "output_text", "input_text"]
    assert listed[1].role == "assistant" and listed[1].content[0].annotations == []


@pytest.mark.parametrize(
    ("query", "param", "allowed"),
    [
        ({"limit": 0}, "limit", "from 1 to 100"),
        ({"limit": 101}, "limit", "from 1 to 100"),
        ({"order": "sideways"}, "order", "'asc' or 'desc'"),
        ({"after": "msg_nope"}, "after", "input items"),
    ],
)
def test_an_input_items_query_out_of_range_is_a_400_naming_it(
    query: dict[str, Any], param: str, allowed: str
) -> None:
    c = door_client("bridge", FakeZhipu(api_key=KEY).reply("四"))
    rid = c.responses.create(model=MODEL, input=TURNS).id
    with pytest.raises(openai.BadRequestError, match=allowed) as caught:
        c.responses.input_items.list(rid, **query)
    assert caught.value.param == param


# --------------------------------------------------------------------------- native store


def test_storing_a_native_answer_never_fails_the_request() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("好").reply("好")
    c = dashscope(fake)
    given: Any = [{"role": "user", "content": [{"type": "input_text", "text": "看"}, VIDEO]}]
    made = c.responses.create(model="qwen3.6-plus", input=given)
    assert made.output_text == "好" and fake.requests[-1].url.path.endswith("/responses")
    kinds = [e.type for e in c.responses.create(model="qwen3.6-plus", input=given, stream=True)]
    assert kinds[-1] == "response.completed"
    entry = default_store().get(made.id)
    assert entry is not None
    assert entry.messages == [
        {"role": "user", "content": [{"type": "text", "text": "看"}]},
        {"role": "assistant", "content": "好"},
    ]
    assert entry.omitted == {
        f"input[0].content[1].type of {made.id}": "unknown content type 'input_video'"
    }


def test_a_native_output_item_with_no_chat_form_is_noted_not_raised() -> None:
    answer = {
        "id": "resp_native1",
        "object": "response",
        "created_at": 1,
        "model": "qwen-plus",
        "status": "completed",
        "output": [
            {"id": "ws_1", "type": "web_search_call", "status": "completed"},
            {"id": "x_1", "type": "provider_own_item"},
            {
                "id": "msg_1",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "查到了", "annotations": []}],
            },
        ],
        "usage": {"input_tokens": 3, "output_tokens": 3, "total_tokens": 6},
    }
    fake = FakeDashScopeCompatible("sk-ds").then(Raw(200, json.dumps(answer)))
    made = dashscope(fake).responses.create(model="qwen-plus", input="搜一下")
    entry = default_store().get(made.id)
    assert entry is not None
    assert entry.messages[-1] == {"role": "assistant", "content": "查到了"}
    assert set(entry.omitted) == {
        "output[0] of resp_native1",
        "output[1].type of resp_native1",
    }


def test_the_store_translation_reports_what_it_cannot_read_and_keeps_the_rest() -> None:
    reports: list[tuple[str, str]] = []
    request: Any = {
        "model": "qwen-plus",
        "input": [
            {"role": "user", "content": [VIDEO, {"type": "input_text", "text": "看"}]},
            {"type": "function_call", "call_id": "c1"},  # no name, no arguments
            {"type": "something_new"},
            "not an item",
            {"role": "assistant", "content": "好"},
        ],
    }
    kept = input_messages(request, skipped=lambda where, why: reports.append((where, why)))
    assert kept == [
        {"role": "user", "content": [{"type": "text", "text": "看"}]},
        {"role": "assistant", "content": "好"},
    ]
    assert [where for where, _ in reports] == [
        "input[0].content[0].type",
        "input[1].name",
        "input[2].type",
        "input[3]",
    ]
    assert output_messages({"output": "nonsense"}, skipped=lambda where, why: None) == []
    with pytest.raises(ValueError, match="unknown content type 'input_video'"):
        input_messages(request)  # without ``skipped``: the translation's own strictness


def test_what_a_stored_entry_lacks_survives_a_shared_store() -> None:
    entry = StoredResponse({"id": "resp_1"}, [], omitted={"input[0] of resp_1": "why"})
    assert StoredResponse.from_json(json.loads(json.dumps(entry.to_json()))) == entry


# --------------------------------------------------------------------------- native, then chat


def test_a_native_conversation_continued_on_a_translated_model_keeps_its_turns() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("记住了").reply("好的").reply("你叫小明")
    c = dashscope(fake)
    first = c.responses.create(model="qwen-plus", input="我叫小明")
    second = c.responses.create(model="qwen-plus", input="我住杭州", previous_response_id=first.id)
    assert sent(fake)["previous_response_id"] == first.id  # the provider replays its own
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c.responses.create(model="qwen-max", input="我叫什么？", previous_response_id=second.id)
    assert fake.requests[-1].url.path.endswith("/chat/completions")
    assert sent(fake)["messages"] == [
        {"role": "user", "content": "我叫小明"},
        {"role": "assistant", "content": "记住了"},
        {"role": "user", "content": "我住杭州"},
        {"role": "assistant", "content": "好的"},
        {"role": "user", "content": "我叫什么？"},
    ]


def native_turn_with_a_video(policy: str) -> tuple[Any, Any, str]:
    fake = FakeDashScopeCompatible("sk-ds").reply("看到了").reply("继续")
    c = dashscope(fake, config={"policy": {"unsupported_params": policy}})
    given: Any = [{"role": "user", "content": [{"type": "input_text", "text": "看"}, VIDEO]}]
    return fake, c, c.responses.create(model="qwen3.6-plus", input=given).id


def test_a_chat_continuation_warns_about_what_the_native_turns_had_that_chat_cannot() -> None:
    fake, c, rid = native_turn_with_a_video("warn")
    lacking = rf"input\[0\]\.content\[1\]\.type of {rid}: unknown content type 'input_video'"
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match=lacking):
        later = c.responses.create(model="qwen-max", input="然后", previous_response_id=rid)
    assert sent(fake)["messages"][:2] == [
        {"role": "user", "content": [{"type": "text", "text": "看"}]},
        {"role": "assistant", "content": "看到了"},
    ]
    # The chat turn's conversation lacks the same part: a next turn says so again.
    entries = [default_store().get(rid), default_store().get(later.id)]
    assert [entry and list(entry.omitted) for entry in entries] == [
        [f"input[0].content[1].type of {rid}"]
    ] * 2


def test_under_the_error_policy_a_chat_continuation_that_would_lose_a_part_is_refused() -> None:
    fake, c, rid = native_turn_with_a_video("error")
    asked = len(fake.requests)
    with pytest.raises(openai.BadRequestError, match="input_video") as caught:
        c.responses.create(model="qwen-max", input="然后", previous_response_id=rid)
    assert caught.value.code == "unsupported_parameter" and len(fake.requests) == asked


def test_a_native_turn_after_a_response_llm_bridge_never_kept_notes_the_gap() -> None:
    fake = FakeDashScopeCompatible("sk-ds").reply("一").reply("二").reply("三")
    c = dashscope(fake)
    first = c.responses.create(model="qwen-plus", input="数一")
    default_store().delete(first.id)  # DashScope still has it; llm-bridge has no copy
    second = c.responses.create(model="qwen-plus", input="数二", previous_response_id=first.id)
    with pytest.warns(llm_bridge.UnsupportedParameterWarning, match=f"before {first.id}"):
        c.responses.create(model="qwen-max", input="数三", previous_response_id=second.id)
    assert [m["content"] for m in sent(fake)["messages"]] == ["数二", "二", "数三"]


# --------------------------------------------------------------------------- content filter


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_a_filter_breaking_off_a_stream_ends_the_response_incomplete(mode: str) -> None:
    """GLM's content filter comes mid-stream as an error event (1301): the response ends
    as the same filter given as a finish reason ends it, ``incomplete``, and is stored."""
    fake = FakeZhipu(api_key=KEY).error_mid_stream(1, "content_filter", "一二三四五六")
    c = bridge("zhipu", fake, mode=mode, api_key=KEY, max_retries=0)
    if mode == "sync":
        events = list(c.responses.create(model=MODEL, input="写点什么", stream=True))
    else:
        stream = await c.responses.create(model=MODEL, input="写点什么", stream=True)
        events = [event async for event in stream]
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "content_filter"
    assert last.response.error is None
    # It reports its usage, as OpenAI's incomplete responses do (the estimate recorded).
    usage = last.response.usage
    assert usage is not None and usage.input_tokens > 0 and usage.output_tokens > 0
    kept = c.responses.retrieve(last.response.id)
    assert (await kept if mode == "async" else kept).status == "incomplete"


# ------------------------------------------------------------------ DashScope's own, odd


DS_RESPONSE = {
    "id": "resp_ds1",
    "object": "response",
    "created_at": 1,
    "model": "qwen-plus",
    "status": "in_progress",
    "output": [],
    "parallel_tool_calls": True,
    "tool_choice": "auto",
    "tools": [],
}


def ds_events(*events: dict[str, Any]) -> Raw:
    body = "".join(
        f"event: {e['type']}\ndata: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events
    )
    return Raw(200, body, {"content-type": "text/event-stream"})


def test_a_passed_through_stream_that_fails_keeps_its_text_and_an_openai_code() -> None:
    """DashScope's own stream broken by an ``error`` event: ``response.failed`` carried
    DashScope's code (``InternalError``, not one openai's types take) and the stale
    snapshot's empty output, where a translated stream keeps the text streamed."""
    message = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress"}
    text = {"type": "output_text", "text": "", "annotations": []}
    fake = FakeDashScopeCompatible("sk-ds").then(
        ds_events(
            {"type": "response.created", "sequence_number": 0, "response": DS_RESPONSE},
            {
                "type": "response.output_item.added",
                "sequence_number": 1,
                "output_index": 0,
                "item": {**message, "content": []},
            },
            {
                "type": "response.content_part.added",
                "sequence_number": 2,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "part": text,
            },
            {
                "type": "response.output_text.delta",
                "sequence_number": 3,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "部分",
                "logprobs": [],
            },
            {"type": "error", "sequence_number": 4, "code": "InternalError", "message": "boom"},
        )
    )
    client = bridge("dashscope", fake, api_key="sk-ds", max_retries=0)
    events = list(client.responses.create(model="qwen-plus", input="x", stream=True))
    failed = events[-1]
    assert failed.type == "response.failed"
    assert failed.response.error is not None and failed.response.error.code == "server_error"
    (item,) = failed.response.output
    assert item.type == "message" and item.content[0].text == "部分"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "answer",
    [
        {"type": "response.failed", "response": [1]},
        {"type": "response.failed", "response": {"error": "boom"}},
    ],
)
def test_a_failure_event_of_another_shape_is_an_openai_error(answer: dict[str, Any]) -> None:
    fake = FakeDashScopeCompatible("sk-ds").then(ds_events(answer))
    client = bridge("dashscope", fake, api_key="sk-ds", max_retries=0)
    with pytest.raises(openai.APIError):
        list(client.responses.create(model="qwen-plus", input="x", stream=True))


@pytest.mark.parametrize(
    "usage",
    [
        {"input_tokens": 3, "output_tokens": 2, "output_tokens_details": [1]},
        {"input_tokens": 3, "output_tokens": 2, "total_tokens": "x"},
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_odd_usage_figures_are_read_around_not_raised(usage: dict[str, Any], stream: bool) -> None:
    """They raised ``AttributeError``, or a 400 blaming the caller."""
    done = {
        **DS_RESPONSE,
        "status": "completed",
        "output": [
            {
                "id": "m",
                "type": "message",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "好", "annotations": []}],
            }
        ],
        "usage": usage,
    }
    if stream:
        answer = ds_events({"type": "response.completed", "sequence_number": 0, "response": done})
    else:
        answer = Raw(200, json.dumps(done), {"content-type": "application/json"})
    records: list[Any] = []
    fake = FakeDashScopeCompatible("sk-ds").then(answer)
    client = bridge("dashscope", fake, api_key="sk-ds", max_retries=0, on_usage=records.append)
    result = client.responses.create(model="qwen-plus", input="x", stream=stream)
    if stream:
        list(result)
    (record,) = records
    figures = record.usage
    assert (figures.prompt_tokens, figures.completion_tokens, figures.total_tokens) == (3, 2, 5)
    assert not record.estimated


def test_a_passed_through_stream_cut_while_reasoning_is_billed_its_estimate() -> None:
    """Cut before any text (the model still reasoning): no usage was recorded at all, and
    the gateway's budget spent nothing on a call the provider bills."""
    thought = "让我想想这个问题。" * 10
    fake = FakeDashScopeCompatible("sk-ds").then(
        ds_events(
            {"type": "response.created", "sequence_number": 0, "response": DS_RESPONSE},
            {"type": "response.reasoning_summary_text.delta", "sequence_number": 1,
             "item_id": "rs_1", "output_index": 0, "summary_index": 0, "delta": thought},
        )  # (the body ends here, without response.completed)
    )  # fmt: skip
    records: list[Any] = []
    client = bridge("dashscope", fake, api_key="sk-ds", max_retries=0, on_usage=records.append)
    events = list(client.responses.create(model="qwen-plus", input="为什么？", stream=True))
    assert events[-1].type == "response.failed"
    (record,) = records
    assert record.estimated and record.usage.completion_tokens > 0
    details = record.usage.completion_tokens_details
    assert details is not None and details.reasoning_tokens == record.usage.completion_tokens


def test_an_estimate_leaves_out_input_it_cannot_translate() -> None:
    """DashScope took an ``input_video`` part that chat has no form for and answered
    without usage: the estimate raised, and the answered call became a 400."""
    done = {
        **DS_RESPONSE,
        "status": "completed",
        "output": [
            {"id": "m", "type": "message", "role": "assistant", "status": "completed",
             "content": [{"type": "output_text", "text": "一段视频", "annotations": []}]}
        ],
    }  # fmt: skip
    video = {"type": "input_video", "video_url": "https://example.com/v.mp4"}
    text = {"type": "input_text", "text": "这是什么？"}
    records: list[Any] = []
    fake = FakeDashScopeCompatible("sk-ds").then(
        Raw(200, json.dumps(done), {"content-type": "application/json"})
    )
    client = bridge("dashscope", fake, api_key="sk-ds", max_retries=0, on_usage=records.append)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        answer = client.responses.create(
            model="qwen-plus", input=[{"role": "user", "content": [text, video]}]
        )
    assert answer.output_text == "一段视频"
    (record,) = records
    assert record.estimated and record.usage.prompt_tokens > 0
