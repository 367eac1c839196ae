"""Offline fakes of the providers' HTTP APIs, speaking their real native wire formats.

Use them to test code built on ``llm_bridge`` without network access or API keys. A fake is an
ordinary httpx request handler, so it plugs in wherever httpx does.

As an httpx transport::

    import httpx
    from llm_bridge import OpenAI
    from llm_bridge.testing import FakeZhipu

    fake = FakeZhipu(api_key="id.secret")
    fake.reply("你好！").fail("rate_limit").tool_call("get_weather", {"city": "北京"})
    client = OpenAI(
        provider="zhipu",
        api_key="id.secret",
        http_client=httpx.Client(transport=fake.transport()),  # or httpx.AsyncClient
    )

Or through respx::

    def test_chat(respx_mock):
        fake = FakeZhipu()
        respx_mock.route(host="open.bigmodel.cn").mock(side_effect=fake.handler)

Scripted outcomes are answered in FIFO order (``reply``, ``tool_call``, ``fail``, ``raw``,
``cut_stream``, ``error_mid_stream``, ``sensitive``, or ``then(outcome)``); once the queue is
empty every chat request gets a deterministic echo such as
``"(offline fake glm-4-flash) You said: 你好"``. A reply (scripted or echoed) ends before
the earliest stop word the request sends (``stop``; DashScope native's ``parameters.stop``),
with finish reason ``stop``, as the providers end it. Every request received is kept in
``fake.requests`` and ``fake.last_json`` is the last request's parsed body. Pass
``split_bytes=N`` to deliver stream bodies in N-byte reads that split SSE events and UTF-8
characters, the way real networks do.

``FakeQianfan`` is Baidu Qianfan's v1 API on ``https://aip.baidubce.com``: it issues OAuth
access tokens (``fake.token_requests``, ``fake.expire_tokens()``, ``fake.revoke_tokens()``),
accepts ``bce-auth-v1`` signed requests, enforces v1's message rules and answers errors as
``{"error_code": N}`` in HTTP 200 bodies. ``FakeQianfanV2`` is the OpenAI-compatible
``https://qianfan.baidubce.com/v2``.

``FakeDashScope`` is Alibaba DashScope's native API on ``https://dashscope.aliyuncs.com/api/v1``
(``host="dashscope-intl.aliyuncs.com"`` for the international region): streaming by the
``X-DashScope-SSE: enable`` header with ``id:``/``event:``/``:HTTP_STATUS/200`` framing,
cumulative content unless ``incremental_output`` is true, flat ``{code, message, request_id}``
errors (SSE-framed on stream requests), embeddings answered out of ``text_index`` order, and
the server's request rules (last role, json_object, multimodal path, stream-only models).
``FakeDashScopeCompatible`` is its OpenAI-compatible ``/compatible-mode/v1``.

``serve(fake, faults=[Fault.reset_before(), ...])`` runs any fake behind a real loopback HTTP
server (127.0.0.1, ephemeral port) that injects resets, stalls, truncations and delays.

This package depends only on httpx and the standard library.
"""

from __future__ import annotations

from ._fake import FakeProvider
from ._script import Failure, MidStreamError, Raw, Reply, Sensitive, StreamCut, ToolCallSpec
from ._server import Fault, LoopbackServer, serve
from .dashscope import FakeDashScope
from .dashscope_compatible import FakeDashScopeCompatible
from .qianfan import FakeQianfan, FakeQianfanV2
from .zhipu import FakeZhipu

__all__ = [
    "Failure",
    "FakeDashScope",
    "FakeDashScopeCompatible",
    "FakeProvider",
    "FakeQianfan",
    "FakeQianfanV2",
    "FakeZhipu",
    "Fault",
    "LoopbackServer",
    "MidStreamError",
    "Raw",
    "Reply",
    "Sensitive",
    "StreamCut",
    "ToolCallSpec",
    "serve",
]
