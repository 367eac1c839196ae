"""What the property and fuzz suites generate, and the client of every wire they drive.

Provider-shaped JSON (the keys real bodies have, anything underneath), server-sent event
bytes, and `CLIENTS`/`MODELS`: one entry per adapter class there is, with its keys and
models. Shared by `test_properties` (parsers, a few examples each) and `test_fuzz` (the
public client and the gateway, thousands of examples per provider and endpoint).
"""

from __future__ import annotations

import json
from typing import Any, Callable

from hypothesis import strategies as st

from llm_bridge._sse import SSEEvent
from llm_bridge.testing import (
    FakeDashScope,
    FakeDashScopeCompatible,
    FakeQianfan,
    FakeQianfanV2,
    FakeZhipu,
)

# --------------------------------------------------------------------------- strategies

#: Keys the adapters look up somewhere, so random dicts reach past the first ``get``.
KNOWN_KEYS = [
    "choices",
    "message",
    "delta",
    "content",
    "reasoning_content",
    "role",
    "finish_reason",
    "index",
    "tool_calls",
    "function",
    "function_call",
    "name",
    "arguments",
    "thoughts",
    "id",
    "type",
    "usage",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "input_tokens",
    "output_tokens",
    "output_tokens_details",
    "prompt_tokens_details",
    "reasoning_tokens",
    "cached_tokens",
    "output",
    "text",
    "search_info",
    "tool_info",
    "request_id",
    "data",
    "embedding",
    "embeddings",
    "text_index",
    "object",
    "model",
    "created",
    "error",
    "code",
    "error_code",
    "error_msg",
    "result",
    "is_end",
    "need_clear_history",
]

#: Words with meaning somewhere (finish reasons, roles, tool types, error codes).
WORDS = st.sampled_from(
    [
        "stop",
        "length",
        "null",
        "normal",
        "sensitive",
        "network_error",
        "tool_calls",
        "content_filter",
        "function",
        "assistant",
        "user",
        "web_search",
        "1113",
        "1003",
        "110",
        "111",
        "18",
        "Arrearage",
        "Throttling.RateQuota",
        "InvalidApiKey",
        "[DONE]",
        "",
    ]
)

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**40), max_value=2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | WORDS
)

#: Any JSON value, with arbitrary keys.
ANY_JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)

#: JSON whose objects use the keys real bodies have, nested arbitrarily.
SHAPED_JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KNOWN_KEYS), children, max_size=5)
    ),
    max_leaves=25,
)


def _wrap(key: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda value: {key: value}, SHAPED_JSON)


#: Bodies shaped like each provider's: the top-level key right, anything underneath.
TOP_LEVEL = st.one_of(
    [_wrap(key) for key in ("choices", "output", "error_code", "result", "data", "error", "code")]
)
BODIES = st.one_of(
    ANY_JSON,
    SHAPED_JSON,
    TOP_LEVEL,
    st.dictionaries(st.sampled_from(KNOWN_KEYS), SHAPED_JSON, max_size=6),
)

#: What a stream event's ``data`` can be: JSON of any shape, text, or the end marker.
EVENT_DATA = st.one_of(
    BODIES.map(lambda value: json.dumps(value, ensure_ascii=False)),
    st.text(max_size=20),
    st.just("[DONE]"),
    st.just(""),
)
EVENTS = st.builds(
    SSEEvent,
    data=EVENT_DATA,
    event=st.none() | st.just("error") | st.just("result") | st.text(max_size=6),
)
#: Events as the decoder hands most of them over: their data bytes (any bytes at all).
DATA_EVENTS = EVENT_DATA.map(lambda text: text.encode("utf-8", "surrogatepass")) | st.binary(
    max_size=40
)

#: Lines that look like SSE, so split points land inside real framing too.
SSE_LINES = st.one_of(
    st.sampled_from(
        [
            b"data: [DONE]",
            b'data: {"a": 1}',
            b"data:x",
            b"data",
            b"event: error",
            b"event:result",
            b"id:1",
            b"id: a\x00b",
            b"retry: 3000",
            b"retry: x",
            b":HTTP_STATUS/200",
            b": keep-alive",
            b'{"error_code": 110}',
            "data: 你好".encode(),
            b"",
        ]
    ),
    st.binary(max_size=12),
)
SSE_BYTES = st.lists(
    st.tuples(SSE_LINES, st.sampled_from([b"\n", b"\r\n", b"\r", b"\n\n", b"\r\n\r\n", b""])),
    max_size=12,
).map(lambda pairs: b"".join(line + end for line, end in pairs))

# --------------------------------------------------------------------------- wires

ZHIPU_KEY = "propId.propSecret"

#: name -> (provider, client keyword arguments, fake) for each adapter class there is.
CLIENTS: dict[str, tuple[str, dict[str, Any], Callable[[], Any]]] = {
    "zhipu": ("zhipu", {"api_key": ZHIPU_KEY}, FakeZhipu),
    "zhipu-jwt": (
        "zhipu",
        {"api_key": ZHIPU_KEY, "config": {"providers": {"zhipu": {"auth": "jwt"}}}},
        FakeZhipu,
    ),
    "openai": ("openai", {"api_key": "sk-prop-openai"}, FakeZhipu),
    "qianfan-v1": (
        "qianfan",
        {
            "api_key": "propAppKey",
            "secret_key": "propAppSecret",
            "config": {"providers": {"qianfan": {"api": "v1"}}},
        },
        FakeQianfan,
    ),
    "qianfan-v2": ("qianfan", {"api_key": "bce-v3/ALTAK-prop/secret"}, FakeQianfanV2),
    "dashscope": (
        "dashscope",
        {
            "api_key": "sk-prop-dashscope",
            "config": {"providers": {"dashscope": {"api": "native"}}},
        },
        FakeDashScope,
    ),
    "dashscope-compatible": (
        "dashscope",
        {
            "api_key": "sk-prop-dashscope",
            "config": {"providers": {"dashscope": {"api": "compatible"}}},
        },
        FakeDashScopeCompatible,
    ),
}

#: name -> (chat model, embedding model) for the end-to-end properties.
MODELS = {
    "zhipu": ("glm-4-flash", "embedding-3"),
    "zhipu-jwt": ("glm-4-flash", "embedding-3"),
    "openai": ("gpt-4o-mini", "text-embedding-3-small"),
    "qianfan-v1": ("ernie-4.0-8k", "embedding-v1"),
    "qianfan-v2": ("ernie-4.0-8k", "embedding-v1"),
    "dashscope": ("qwen-plus", "text-embedding-v3"),
    "dashscope-compatible": ("qwen-plus", "text-embedding-v3"),
}
