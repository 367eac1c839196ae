"""A fast loopback fake for the benchmark: OpenAI (chat completions and Responses), Zhipu v4,
Qianfan v1, DashScope (native and compatible mode) wire formats.

    python benchmarks/server.py [--port 0]      # prints "PORT <n>", serves until stdin closes

or, from Python (what ``benchmarks/run.py`` does)::

    from server import BenchServer
    with BenchServer() as srv:          # a separate process; stopped on exit, always
        srv.url                         # "http://127.0.0.1:<port>"

Standard library only (but for openai's types, which check the Responses fixtures at start-up):
one asyncio ``Protocol`` speaking HTTP/1.1 with keep-alive (and pipelining), so the server
costs a few microseconds per request and is never the bottleneck.
Every response is pre-rendered bytes (the §7 fixtures of shared/protocols.md):

* ``POST /v1/chat/completions``: OpenAI ``chat.completion``; with ``"stream": true`` SSE
  ``chat.completion.chunk`` events, a usage chunk if ``include_usage`` was asked, ``data: [DONE]``;
* ``POST /v1/responses``: OpenAI's Responses API: a ``Response`` (one assistant message with
  its ``output_text``, usage); with ``"stream": true`` the events OpenAI sends for it, each an
  ``event: <type>`` line and a ``data:`` line: ``response.created``, ``response.in_progress``,
  ``response.output_item.added``, ``response.content_part.added``, N - 8
  ``response.output_text.delta`` (the chat streams' pieces), ``response.output_text.done``,
  ``response.content_part.done``, ``response.output_item.done``, ``response.completed``; no
  ``[DONE]``. No ``obfuscation`` field (openai 3.63's event types have none). Both are checked
  against openai's ``Response`` and ``ResponseStreamEvent`` types when the server starts;
* ``POST /api/paas/v4/chat/completions``: Zhipu Z1; streamed, Z2-shaped events (role on every
  delta, no ``finish_reason`` key until the last, usage on the last) and ``data: [DONE]``;
* ``POST /oauth/2.0/token``: Qianfan B1 access token;
* ``POST /rpc/2.0/ai_custom/v1/wenxinworkshop/chat/{endpoint}?access_token=...``: Qianfan B2;
  streamed, B3-shaped events (``sentence_id``, ``is_end``, cumulative usage), no ``[DONE]``;
  without ``access_token`` the B5 error 110 in an HTTP 200 body;
* ``POST /api/v1/services/aigc/text-generation/generation``: DashScope D1; with header
  ``X-DashScope-SSE: enable`` D2-shaped incremental events (``id:``/``event:result``/
  ``:HTTP_STATUS/200``/``data:`` without spaces, running usage), no ``[DONE]``;
* ``POST /compatible-mode/v1/chat/completions``: DashScope compatible mode (D8): OpenAI's
  shapes in DashScope's key order, ``system_fingerprint: null``, ``usage: null`` on every
  chunk, the last piece of text on the finishing chunk, a ``choices: []`` usage chunk only
  with ``include_usage``, ``data: [DONE]``;
* ``POST /compatible-mode/v1/responses``: DashScope compatible mode's own Responses API, for
  the models that have it: the ``/v1/responses`` answers above (OpenAI's shapes);
* ``GET /_bench/hits``: how many requests each route above has answered, as JSON
  (``{"openai": 3, "zhipu": 1, ...}``; unknown paths count as ``"404"``), so that the
  benchmark can check every row reaches the wire it claims to measure.

Stream length (number of data events) comes from header ``x-bench-chunks: N`` or query
``?chunks=N`` (default 20). Streams are sent with chunked transfer encoding, one HTTP chunk
per SSE event, and the connection stays open afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from typing import Optional

DEFAULT_CHUNKS = 20
MAX_CHUNKS = 100_000

# ----------------------------------------------------------------------------- fixtures


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()


PIECES = ["人工智能", "助手", "，", "你好", "！", "很高兴", "见到你", "。", "Hello", " world"]

OPENAI_JSON = _dumps(
    {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "你好！有什么可以帮你的吗？",
                    "refusal": None,
                    "annotations": [],
                },
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 9,
            "completion_tokens": 10,
            "total_tokens": 19,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }
)
# Z1
ZHIPU_JSON = _dumps(
    {
        "choices": [
            {
                "finish_reason": "stop",
                "index": 0,
                "message": {
                    "content": "你好👋！我是人工智能助手智谱清言，可以叫我小智🤖，"
                    "很高兴见到你，欢迎问我任何问题。",
                    "role": "assistant",
                },
            }
        ],
        "created": 1721614853,
        "id": "20240722102053e7277a4f94e848248ff9588ed37fb6e6",
        "model": "glm-4-flash",
        "request_id": "20240722102053e7277a4f94e848248ff9588ed37fb6e6",
        "usage": {"completion_tokens": 31, "prompt_tokens": 6, "total_tokens": 37},
    }
)
# B1
QIANFAN_TOKEN_JSON = _dumps(
    {
        "refresh_token": "25.b55fe1d287227ca97aab219bb249b8ab.315360000.1798284651.282335-8574074",
        "expires_in": 2592000,
        "session_key": "9mzdWT",
        "access_token": "24.6c5e1ff107f0e8bcef8c46d3424a0e78.2592000.1485516651.282335-8574074",
        "scope": "public brain_all_scope wenxinworkshop_mgr ai_custom_yiyan_com",
        "session_secret": "dfac94a3489fe9fca7c3221cbf7525ff",
    }
)
# B2
QIANFAN_JSON = _dumps(
    {
        "id": "as-bcmt5ct4id",
        "object": "chat.completion",
        "created": 1709089502,
        "result": "你好！有什么我可以帮助你的吗？",
        "is_truncated": False,
        "need_clear_history": False,
        "finish_reason": "normal",
        "usage": {"prompt_tokens": 2, "completion_tokens": 12, "total_tokens": 14},
    }
)
# B5 (error 110 in an HTTP 200 body)
QIANFAN_NO_TOKEN = _dumps(
    {"error_code": 110, "error_msg": "Access token invalid or no longer valid"}
)
# D1
DASHSCOPE_JSON = _dumps(
    {
        "output": {
            "choices": [
                {
                    "finish_reason": "stop",
                    "message": {
                        "role": "assistant",
                        "content": "我是阿里云开发的一款超大规模语言模型，我叫通义千问。",
                    },
                }
            ]
        },
        "usage": {"input_tokens": 22, "output_tokens": 17, "total_tokens": 39},
        "request_id": "902fee3b-f7f0-9a8c-96a1-6b4ea25af114",
    }
)
# D8 (compatible mode), in DashScope's key order
DASHSCOPE_COMPAT_ID = "chatcmpl-f37af769-6ca0-9b36-83a2-177bce0afe22"
DASHSCOPE_COMPAT_JSON = _dumps(
    {
        "choices": [
            {
                "message": {
                    "role": "assistant",
                    "content": "我是阿里云开发的一款超大规模语言模型，我叫通义千问。",
                },
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
            }
        ],
        "object": "chat.completion",
        "usage": {
            "prompt_tokens": 22,
            "completion_tokens": 17,
            "total_tokens": 39,
            "prompt_tokens_details": {"cached_tokens": 0},
        },
        "created": 1770343445,
        "system_fingerprint": None,
        "model": "qwen-plus",
        "id": DASHSCOPE_COMPAT_ID,
    }
)
NOT_FOUND = _dumps({"error": {"message": "no such route in the benchmark server", "code": "404"}})

# OpenAI Responses (``POST /v1/responses``), as OpenAI's server writes it (key order included)
RESPONSES_ID = "resp_67ccd2bed1ec8190b14f964abc0542670bb6a6b452d3795b"
RESPONSES_MESSAGE_ID = "msg_67ccd2bf17f0819081ff3bb2cf6508e60bb6a6b452d3795b"
RESPONSES_INSTRUCTIONS = "你是一个乐于助人的助手"
RESPONSES_TEXT = "你好！有什么可以帮你的吗？"


def _response(status: str, output: list, usage: Optional[dict], done: bool) -> dict:
    """A ``Response`` object: what the request echoes, the output, and the usage."""
    return {
        "id": RESPONSES_ID,
        "object": "response",
        "created_at": 1741476542,
        "status": status,
        "background": False,
        "billing": {"payer": "developer"},
        "completed_at": 1741476543 if done else None,
        "error": None,
        "frequency_penalty": 0.0,
        "incomplete_details": None,
        "instructions": RESPONSES_INSTRUCTIONS,
        "max_output_tokens": None,
        "max_tool_calls": None,
        "model": "gpt-4o-mini-2024-07-18",
        "output": output,
        "parallel_tool_calls": True,
        "presence_penalty": 0.0,
        "previous_response_id": None,
        "prompt_cache_key": None,
        "prompt_cache_retention": None,
        "reasoning": {"effort": None, "summary": None},
        "safety_identifier": None,
        "service_tier": "default",
        "store": True,
        "temperature": 0.7,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": {},
    }


def _response_usage(output_tokens: int) -> dict:
    return {
        "input_tokens": 20,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 20 + output_tokens,
    }


def _output_text(text: str) -> dict:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _response_message(status: str, content: list) -> dict:
    return {
        "id": RESPONSES_MESSAGE_ID,
        "type": "message",
        "status": status,
        "content": content,
        "role": "assistant",
    }


RESPONSES_OBJECT = _response(
    "completed",
    [_response_message("completed", [_output_text(RESPONSES_TEXT)])],
    _response_usage(10),
    done=True,
)
RESPONSES_JSON = _dumps(RESPONSES_OBJECT)
#: Events of a Responses stream around its text deltas: created, in_progress, the item and
#: its part added; the text, the part and the item done; completed.
RESPONSES_FRAME = 8


def _openai_events(n: int, usage: bool) -> list[bytes]:
    base = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion.chunk",
        "created": 1741569952,
        "model": "gpt-4o-mini-2024-07-18",
        "service_tier": "default",
        "system_fingerprint": "fp_06737a9306",
    }
    events = []
    for i in range(n):
        last = i == n - 1
        delta = {} if last else {"content": PIECES[i % len(PIECES)]}
        if i == 0:
            delta = {"role": "assistant", "content": "", "refusal": None}
        choice = {
            "index": 0,
            "delta": delta,
            "logprobs": None,
            "finish_reason": "stop" if last else None,
        }
        ev = {**base, "choices": [choice]}
        if usage:
            ev["usage"] = None
        events.append(b"data: " + _dumps(ev) + b"\n\n")
    if usage:
        ev = {
            **base,
            "choices": [],
            "usage": {
                "prompt_tokens": 9,
                "completion_tokens": n,
                "total_tokens": 9 + n,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
        }
        events.append(b"data: " + _dumps(ev) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _zhipu_events(n: int) -> list[bytes]:  # Z2
    events = []
    for i in range(n):
        choice: dict = {"index": 0}
        ev: dict = {
            "id": "20240722102053e7277a4f94e848248ff9588ed37fb6e6",
            "created": 1721614853,
            "model": "glm-4",
            "choices": [choice],
        }
        if i == n - 1:
            choice["finish_reason"] = "stop"
            choice["delta"] = {"role": "assistant", "content": ""}
            ev["usage"] = {"prompt_tokens": 13, "completion_tokens": n, "total_tokens": 13 + n}
        else:
            choice["delta"] = {"role": "assistant", "content": PIECES[i % len(PIECES)]}
        events.append(b"data: " + _dumps(ev) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _qianfan_events(n: int) -> list[bytes]:  # B3
    events = []
    for i in range(n):
        last = i == n - 1
        ev = {
            "id": "as-vb0m37ti8y",
            "object": "chat.completion",
            "created": 1709089502 + i // 50,
            "sentence_id": i,
            "is_end": last,
            "is_truncated": False,
            "result": "" if last else PIECES[i % len(PIECES)],
            "need_clear_history": False,
            "finish_reason": "normal",
            "usage": {"prompt_tokens": 5, "completion_tokens": i + 1, "total_tokens": 6 + i},
        }
        events.append(b"data: " + _dumps(ev) + b"\n\n")
    return events


def _dashscope_events(n: int) -> list[bytes]:  # D2 (incremental)
    events = []
    for i in range(n):
        last = i == n - 1
        ev = {
            "output": {
                "choices": [
                    {
                        "message": {
                            "content": "" if last else PIECES[i % len(PIECES)],
                            "role": "assistant",
                        },
                        "finish_reason": "stop" if last else "null",
                    }
                ]
            },
            "usage": {"total_tokens": 11 + i + 1, "output_tokens": i + 1, "input_tokens": 11},
            "request_id": "71689cfc-1f42-9949-86e8-9563b7f832b1",
        }
        events.append(
            b"id:%d\nevent:result\n:HTTP_STATUS/200\ndata:" % (i + 1) + _dumps(ev) + b"\n\n"
        )
    return events


def _dashscope_compat_events(n: int, usage: bool) -> list[bytes]:  # D8
    tail = {
        "object": "chat.completion.chunk",
        "usage": None,
        "created": 1770343445,
        "system_fingerprint": None,
        "model": "qwen-plus",
        "id": DASHSCOPE_COMPAT_ID,
    }
    events = []
    for i in range(n):
        if i == 0:  # the role chunk
            choice: dict = {
                "delta": {"content": "", "role": "assistant"},
                "index": 0,
                "logprobs": None,
                "finish_reason": None,
            }
        else:  # later chunks put finish_reason first; the last piece rides on the finish
            finish = "stop" if i == n - 1 else None
            delta = {"content": PIECES[i % len(PIECES)]}
            choice = {"finish_reason": finish, "delta": delta, "index": 0, "logprobs": None}
        events.append(b"data: " + _dumps({"choices": [choice], **tail}) + b"\n\n")
    if usage:
        figures = {
            "prompt_tokens": 11,
            "completion_tokens": n,
            "total_tokens": 11 + n,
            "prompt_tokens_details": {"cached_tokens": 0},
        }
        events.append(b"data: " + _dumps({"choices": [], **tail, "usage": figures}) + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


def _responses_event_list(n: int) -> list[dict]:
    """A Responses stream of ``n`` events (at least ``RESPONSES_FRAME + 1``): one message
    whose text comes in ``n - RESPONSES_FRAME`` deltas, the pieces the chat streams send."""
    deltas = max(1, n - RESPONSES_FRAME)
    pieces = [PIECES[i % len(PIECES)] for i in range(deltas)]
    text = "".join(pieces)
    ids = {"item_id": RESPONSES_MESSAGE_ID, "output_index": 0, "content_index": 0}
    in_progress = _response("in_progress", [], None, done=False)
    message = _response_message("completed", [_output_text(text)])
    events: list[dict] = [
        {"type": "response.created", "response": in_progress},
        {"type": "response.in_progress", "response": in_progress},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": _response_message("in_progress", []),
        },
        {"type": "response.content_part.added", **ids, "part": _output_text("")},
        *(
            {"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []}
            for piece in pieces
        ),
        {"type": "response.output_text.done", **ids, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **ids, "part": _output_text(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": message},
        {
            "type": "response.completed",
            "response": _response("completed", [message], _response_usage(deltas), done=True),
        },
    ]
    # (OpenAI writes the type, then the sequence number, then the event's own fields)
    return [{"type": e["type"], "sequence_number": i, **e} for i, e in enumerate(events)]


def _responses_events(n: int) -> list[bytes]:
    """OpenAI's Responses SSE: an ``event:`` line and a ``data:`` line per event, no
    ``[DONE]``."""
    return [
        b"event: " + e["type"].encode() + b"\ndata: " + _dumps(e) + b"\n\n"
        for e in _responses_event_list(n)
    ]


def check_responses_fixtures() -> None:
    """The Responses fixtures against openai's own types (``Response`` and the stream event
    union); raises if a newer openai no longer reads them as intended."""
    from openai.types.responses import Response, ResponseStreamEvent
    from pydantic import TypeAdapter

    response = Response.model_validate(json.loads(RESPONSES_JSON))
    if response.output_text != RESPONSES_TEXT or response.usage is None:
        raise AssertionError(f"the Responses fixture reads as {response!r}")
    adapter: TypeAdapter = TypeAdapter(ResponseStreamEvent)
    events = _responses_event_list(RESPONSES_FRAME + len(PIECES))
    for event in events:
        parsed = adapter.validate_python(event)
        if type(parsed).__name__ == "BaseModel" or parsed.type != event["type"]:
            raise AssertionError(f"{event['type']}: read as {parsed!r}")
    final = Response.model_validate(events[-1]["response"])
    if final.output_text != "".join(PIECES):
        raise AssertionError(f"response.completed reads as {final!r}")


def _plain(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def _sse(events: list[bytes], ctype: bytes) -> bytes:
    out = [
        b"HTTP/1.1 200 OK\r\nContent-Type: "
        + ctype
        + b"\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n"
    ]
    for ev in events:
        out.append(b"%x\r\n" % len(ev) + ev + b"\r\n")
    out.append(b"0\r\n\r\n")
    return b"".join(out)


PLAIN = {
    "openai": _plain(OPENAI_JSON),
    "zhipu": _plain(ZHIPU_JSON),
    "qianfan": _plain(QIANFAN_JSON),
    "dashscope": _plain(DASHSCOPE_JSON),
    "dashscope-compat": _plain(DASHSCOPE_COMPAT_JSON),
    "responses": _plain(RESPONSES_JSON),
    "dashscope-responses": _plain(RESPONSES_JSON),
    "token": _plain(QIANFAN_TOKEN_JSON),
    "qianfan_no_token": _plain(QIANFAN_NO_TOKEN),
    "404": _plain(NOT_FOUND, b"404 Not Found"),
}
_STREAM_CACHE: dict[tuple[str, int, bool], bytes] = {}


def stream_response(fmt: str, n: int, usage: bool = True) -> bytes:
    key = (fmt, n, usage)
    hit = _STREAM_CACHE.get(key)
    if hit is None:
        if fmt == "openai":
            hit = _sse(_openai_events(n, usage), b"text/event-stream; charset=utf-8")
        elif fmt == "zhipu":
            hit = _sse(_zhipu_events(n), b"text/event-stream; charset=UTF-8")
        elif fmt == "qianfan":
            hit = _sse(_qianfan_events(n), b"text/event-stream")
        elif fmt == "dashscope-compat":
            hit = _sse(_dashscope_compat_events(n, usage), b"text/event-stream")
        elif fmt in ("responses", "dashscope-responses"):
            hit = _sse(_responses_events(n), b"text/event-stream; charset=utf-8")
        else:
            hit = _sse(_dashscope_events(n), b"text/event-stream;charset=UTF-8")
        if len(_STREAM_CACHE) > 64:
            _STREAM_CACHE.clear()
        _STREAM_CACHE[key] = hit
    return hit


# ----------------------------------------------------------------------------- HTTP/1.1


QIANFAN_CHAT = b"/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/"
ROUTES = {
    b"/v1/chat/completions": "openai",
    b"/v1/responses": "responses",
    b"/api/paas/v4/chat/completions": "zhipu",
    b"/oauth/2.0/token": "token",
    b"/api/v1/services/aigc/text-generation/generation": "dashscope",
    b"/compatible-mode/v1/chat/completions": "dashscope-compat",
    b"/compatible-mode/v1/responses": "dashscope-responses",
}
HITS_PATH = b"/_bench/hits"
#: Requests answered per route (see the module docstring); read with GET /_bench/hits.
HITS: dict[str, int] = {}


def respond(target: bytes, headers: dict[bytes, bytes], body: bytes) -> bytes:
    path, _, query = target.partition(b"?")
    if path == HITS_PATH:
        return _plain(_dumps(HITS))
    fmt = ROUTES.get(path)
    if fmt is None:
        if path.startswith(QIANFAN_CHAT):
            fmt = "qianfan" if b"access_token=" in query else "qianfan_no_token"
        else:
            fmt = "404"
    HITS[fmt] = HITS.get(fmt, 0) + 1
    if fmt in ("token", "404", "qianfan_no_token"):
        return PLAIN[fmt]
    if fmt == "dashscope":
        stream = headers.get(b"x-dashscope-sse", b"").lower() == b"enable"
    else:
        stream = b'"stream":true' in body or b'"stream": true' in body
    if not stream:
        return PLAIN[fmt]
    n = DEFAULT_CHUNKS
    raw = headers.get(b"x-bench-chunks")
    if raw is None and b"chunks=" in query:
        raw = query.split(b"chunks=", 1)[1].split(b"&", 1)[0]
    if raw:
        n = max(1, min(MAX_CHUNKS, int(raw)))
    asked = b'"include_usage"' in body  # (OpenAI-shaped wires send usage only when asked)
    return stream_response(fmt, n, usage=asked or fmt not in ("openai", "dashscope-compat"))


class HTTPProtocol(asyncio.Protocol):
    __slots__ = ("buf", "transport")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        out = []
        close = False
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            lines = buf[:end].split(b"\r\n")
            headers = {}
            for line in lines[1:]:
                k, _, v = line.partition(b":")
                headers[k.strip().lower()] = v.strip()
            length = int(headers.get(b"content-length", b"0"))
            if len(buf) < end + 4 + length:
                break
            body = buf[end + 4 : end + 4 + length]
            buf = buf[end + 4 + length :]
            parts = lines[0].split(b" ")
            target = parts[1] if len(parts) > 1 else b"/"
            out.append(respond(target, headers, body))
            if headers.get(b"connection", b"").lower() == b"close":
                close = True
                break
        self.buf = buf
        if out:
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))
        if close:
            self.transport.close()


async def serve(port: int = 0, host: str = "127.0.0.1") -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HTTPProtocol, host, port, backlog=2048, reuse_address=True)
    port = server.sockets[0].getsockname()[1]
    done = loop.create_future()

    def stdin_closed() -> None:
        # The parent went away (or closed our stdin to stop us): stop too.
        if not os.read(sys.stdin.fileno(), 4096) and not done.done():
            done.set_result(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: done.done() or done.set_result(None))
    if not sys.stdin.isatty():
        loop.add_reader(sys.stdin.fileno(), stdin_closed)
    print(f"PORT {port}", flush=True)
    async with server:
        await done


# ----------------------------------------------------------------------------- process handle


class BenchServer:
    """The server in a child process; ``stop()`` (or leaving the ``with``) always ends it."""

    def __init__(self, port: int = 0) -> None:
        self.proc: Optional[subprocess.Popen] = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--port", str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"benchmark server did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            if proc.stdin:
                proc.stdin.close()
            proc.terminate()
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        finally:
            if proc.stdout:
                proc.stdout.close()

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __del__(self) -> None:
        self.stop()


def main() -> None:
    port = 0
    if "--port" in sys.argv:
        port = int(sys.argv[sys.argv.index("--port") + 1])
    check_responses_fixtures()
    formats = ("openai", "zhipu", "qianfan", "dashscope", "dashscope-compat", "responses")
    for fmt in formats:  # common sizes
        stream_response(fmt, DEFAULT_CHUNKS)
        stream_response(fmt, 1000)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(port))


if __name__ == "__main__":
    main()
