"""llm-bridge's front door against the openai client alone, and its engine against raw httpx.

    pip install httpx-aiohttp            # optional: the aiohttp rows (skipped if missing)
    python benchmarks/run.py             # everything, ~8 minutes on 2 cores; writes results.md
    python benchmarks/run.py --quick     # ~1.5-minute smoke run; prints only (add --out to write)
    python benchmarks/run.py --section responses   # the Responses section alone (~1 minute),
                                         # merged into results.md (the others kept as they are)

    # one loop alone, for a profiler (KIND: floor, lb, plain, raw, engine):
    python -m cProfile -s cumtime benchmarks/run.py --loop nonstream --kind lb -n 3000
    python -m cProfile -s tottime benchmarks/run.py --loop stream --kind engine --wire qianfan -n 20
    # ... of the Responses API (KIND: floor, lb; WIRE: zhipu, dashscope-compat, dashscope-responses)
    python -m cProfile -s tottime benchmarks/run.py --loop stream --api responses --wire zhipu -n 20

The server (``benchmarks/server.py``) runs in its own process on 127.0.0.1 and answers the
OpenAI, Zhipu v4, Qianfan v1 (with its OAuth token endpoint), DashScope native and DashScope
compatible-mode wires from pre-rendered bytes; it is always stopped at the end. It counts the
requests each route answers, and every row is checked against those counts before it is
measured (one request, and one stream where the row streams): a row that reaches another wire
than its label says stops the run.

**Front door** (issue 13's budget). The floor is what a user does without llm-bridge: the
``openai`` client talking straight to an OpenAI-compatible endpoint (the server's ``/v1``).
Against it: ``llm_bridge.OpenAI`` on the Zhipu wire, the DashScope compatible wire and the
DashScope native wire, and a plain ``openai.OpenAI(http_client=llm_bridge.http_client(...))``
on the Zhipu wire (``AsyncOpenAI`` and ``async_http_client`` for the concurrent rows, plus,
with no budget line, ``llm_bridge.AsyncOpenAI`` whose upstream is ``DefaultAioHttpClient``).
Every client is given an HTTP client with the same pool limits (1000 connections, 100
keep-alive: openai's and llm-bridge's defaults); llm-bridge's is the one to the provider.

**Responses API** (issue 15's budget). The floor is the openai client's ``responses.create``
against a native Responses endpoint (the server's ``/v1/responses``: a ``Response``, or the
events OpenAI streams). Against it: ``llm_bridge.OpenAI`` making the same call on the Zhipu
wire and on the DashScope compatible wire (a model llm-bridge translates: the Responses
request becomes a chat call, the chat answer a ``Response``, the chat stream Responses
events); and, when this llm-bridge passes it through, a DashScope model with its own
Responses API. Non-stream latency and one stream of 1000 events, the chat streams under the
translated rows sized to give the same events. Each row is checked with the hit counts and
with openai's ``responses.stream()`` helper before it is measured.

**Gateway budget** (issue 7's budgets, kept). The engine alone, driven as the transport
drives it minus openai: the OpenAI request's JSON bytes are read (`_front.read_json`,
`split_body`), the engine called (``engine.chat``) and the result written back as OpenAI's
JSON or server-sent events (`_front.json_body`, `sse_lines`), which is a gateway's work. It
is compared with raw httpx on the same wire: the exact URL, headers and JSON body the adapter
sends (checked at start-up against a captured engine request), then ``response.json()``;
streams read with ``iter_lines()`` and every ``data:`` event ``json.loads``-ed. The engine
uses llm-bridge's default httpx clients, which keep no response cookies (see
``_http_clients``): it can come out under 1.0x for that reason.

**Where the time goes.** On the OpenAI-shaped wires (Zhipu, DashScope compatible): each
layer of a non-stream ``llm_bridge.OpenAI`` request timed around its call (openai, the
httpx2 client, the transport, the engine, the upstream call) against the floor's; the same
client under cProfile, with the share of its time spent decoding and validating the
provider's JSON into llm-bridge's own models (`_shapes`), re-serialising them, and in
openai's own parsing; and those steps timed alone (no profiler): what handing openai the
provider's bytes with small patches could save at most.

Measured: cold import (fresh interpreter, median, minus an empty interpreter), sequential
non-stream latency p50/p99, one 1000-chunk stream consumed whole (median of several), 200
concurrent async requests (``asyncio.gather``, median wall time of several batches) and peak
RSS of a child process making 1000 requests. Rows are interleaved in rounds (rotating order)
so drift and noise hit all of them alike; every row reuses one client and is warmed up.

Nothing here fails a build: the budget section reports PASS/MISS per line.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib.util
import inspect
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, NamedTuple, Optional

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"


class Wire(NamedTuple):
    provider: str
    model: str
    root: str  # the API root below the server's URL
    label: str


#: The server's wires; each name is also the server's route name for its hit counts.
WIRES = {
    "openai": Wire("openai", "gpt-4o-mini", "/v1", "OpenAI"),
    "zhipu": Wire("zhipu", "glm-4-flash", "/api/paas/v4", "Zhipu v4"),
    "qianfan": Wire("qianfan", "ernie-speed-8k", "", "Qianfan v1"),
    "dashscope": Wire("dashscope", "qwen-plus", "/api/v1", "DashScope native"),
    "dashscope-compat": Wire("dashscope", "qwen-plus", "/compatible-mode/v1", "DashScope compat"),
}
#: Wires whose answers are already OpenAI-shaped (where a pass-through could apply).
OPENAI_SHAPED = ("zhipu", "dashscope-compat")

LABELS = {
    "floor": "openai → /v1 (floor)",
    "lb": "llm_bridge.OpenAI",
    "plain": "openai + llm_bridge.http_client()",
    "raw": "raw httpx",
    "engine": "engine (gateway path)",
    "none": "(idle interpreter)",
    "openai-idle": "(idle, openai imported)",
}
FRONT = [
    ("floor", "openai"),
    ("lb", "zhipu"),
    ("lb", "dashscope-compat"),
    ("lb", "dashscope"),
    ("plain", "zhipu"),
]
ENGINE = [(kind, wire) for wire in WIRES for kind in ("raw", "engine")]


class RSpec(NamedTuple):
    """A row of the Responses section."""

    kind: str  # floor or lb
    wire: str  # the client's root (a WIRES key)
    model: str
    route: str  # the server's route it must reach
    label: str  # its "wire" column
    translated: bool  # llm-bridge turns it into a chat call (and the chat stream into events)


RESPONSES_LABELS = {"floor": "openai → /v1/responses (floor)", "lb": "llm_bridge.OpenAI"}
#: Issue 15: the Responses API, translated to chat completions, against openai reading a
#: native Responses stream. DashScope's row names a model its catalogue does not mark
#: ``responses`` (qwen-max), so that llm-bridge translates it (see PASS_THROUGH).
RESPONSES = [
    RSpec("floor", "openai", "gpt-4o-mini", "responses", "OpenAI Responses", False),
    RSpec("lb", "zhipu", "glm-4-flash", "zhipu", "Zhipu v4 → chat", True),
    RSpec("lb", "dashscope-compat", "qwen-max", "dashscope-compat", "DashScope → chat", True),
]
#: qwen-plus on DashScope's compatible mode, whose own Responses API llm-bridge may pass
#: requests through to (``/compatible-mode/v1/responses``). Measured when the start-up check
#: finds that this llm-bridge does; else the section says it translates that model too.
PASS_THROUGH = RSpec(
    "lb", "dashscope-compat", "qwen-plus", "dashscope-responses", "DashScope Responses", False
)
RESPONSES_INSTRUCTIONS = "你是一个乐于助人的助手"  # (MESSAGES as a Responses request)
RESPONSES_INPUT = "你好"
#: The events of a Responses stream that are not text deltas (server.RESPONSES_FRAME).
RESPONSES_FRAME = 8

MESSAGES = [
    {"role": "system", "content": "你是一个乐于助人的助手"},
    {"role": "user", "content": "你好"},
]
TEMPERATURE = 0.7
API_KEY = "bench-key"
SECRET_KEY = "bench-secret"
STREAM_CHUNKS = 1000
CONCURRENCY = 200
RSS_REQUESTS = 1000
POOL = {"max_connections": 1000, "max_keepalive_connections": 100}  # openai's = llm-bridge's

#: Issue 13: the front door against the openai client alone.
FRONT_BUDGET = {"import": 1.10, "nonstream": 1.10, "stream": 1.15, "concurrent": 1.05, "rss": 1.15}
#: Issue 7's budgets, now the gateway's: the engine against raw httpx.
GATEWAY_BUDGET = {"nonstream": 1.10, "stream": 1.3, "concurrent": 1.0, "rss": 1.3}
#: Issue 15: ``llm_bridge.OpenAI().responses`` against openai on a native Responses endpoint.
RESPONSES_BUDGET = {"nonstream": 1.15, "stream": 1.15}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


HAVE_AIOHTTP = _installed("httpx_aiohttp")

ns = time.perf_counter_ns


# ----------------------------------------------------------------------------- the wires


def chunks_header(n: int) -> dict[str, str]:
    return {"x-bench-chunks": str(n)}


def bridge_settings(wire: str, url: str) -> dict[str, Any]:
    """llm-bridge's constructor arguments for a wire: provider, key, root and config.

    The root is in the config too, so that ``http_client()`` recognises requests to it
    (as it recognises a provider's real root) and routes them to that provider.
    """
    w = WIRES[wire]
    if wire == "qianfan":
        # (v1, the closed "wenxinworkshop" API, only on request since v2 became the default)
        table = {"api": "v1", "base_url": url, "token_url": url + "/oauth/2.0/token"}
        return {
            "provider": "qianfan",
            "api_key": API_KEY,
            "secret_key": SECRET_KEY,
            "config": {"providers": {"qianfan": table}},
        }
    root = url + w.root
    # (the key too: http_client(provider=...) builds its default engine up front, and that
    # needs one from the config or the environment, whatever key the requests carry)
    table = {"base_url": root, "api_key": API_KEY}
    if w.provider == "dashscope":  # (the API is named: the default has changed before)
        table["api"] = "compatible" if wire == "dashscope-compat" else "native"
    return {
        "provider": w.provider,
        "api_key": API_KEY,
        "base_url": root,
        "config": {"providers": {w.provider: table}},
    }


_TOKENS: dict[str, str] = {}


def qianfan_token(url: str) -> str:
    """The raw rows fetch Qianfan's OAuth token once, as llm-bridge does (B1)."""
    if url not in _TOKENS:
        import httpx

        r = httpx.post(
            url + "/oauth/2.0/token",
            params={
                "grant_type": "client_credentials",
                "client_id": API_KEY,
                "client_secret": SECRET_KEY,
            },
        )
        _TOKENS[url] = r.json()["access_token"]
    return _TOKENS[url]


def wire_request(wire: str, url: str, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL, headers, JSON body) of the request llm-bridge's adapter sends for MESSAGES."""
    w = WIRES[wire]
    headers = {"accept": "text/event-stream" if stream else "application/json"}
    if wire != "qianfan":
        headers["authorization"] = f"Bearer {API_KEY}"
    if wire in ("openai", "zhipu", "dashscope-compat"):
        body: dict[str, Any] = {"messages": MESSAGES, "model": w.model, "temperature": TEMPERATURE}
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return url + w.root + "/chat/completions", headers, body
    if wire == "qianfan":
        body = {
            "messages": MESSAGES[1:],
            "system": MESSAGES[0]["content"],
            "temperature": TEMPERATURE,
        }
        if stream:
            body["stream"] = True
        endpoint = f"{url}/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/ernie_speed"
        return f"{endpoint}?access_token={qianfan_token(url)}", headers, body
    parameters: dict[str, Any] = {"result_format": "message", "temperature": TEMPERATURE}
    if stream:
        parameters["incremental_output"] = True
        headers["x-dashscope-sse"] = "enable"
    body = {"model": w.model, "input": {"messages": MESSAGES}, "parameters": parameters}
    return url + w.root + "/services/aigc/text-generation/generation", headers, body


def openai_request(wire: str, stream: bool) -> bytes:
    """The body an openai client sends for MESSAGES: what the gateway path reads."""
    body: dict[str, Any] = {
        "messages": MESSAGES,
        "model": WIRES[wire].model,
        "temperature": TEMPERATURE,
    }
    if stream:
        body.update(stream=True, stream_options={"include_usage": True})
    return json.dumps(body).encode()


# ----------------------------------------------------------------------------- clients


class Row:
    """One client on one wire: ``call()`` makes one request (a coroutine function for an
    async row), ``stream(n)`` consumes one whole stream (sync rows) and returns its chunks.

    A Responses row (``responses`` given: see `RSpec`) calls ``client.responses.create``
    instead, and ``stream(n)`` consumes a stream of n Responses events."""

    def __init__(
        self,
        kind: str,
        wire: str,
        flavour: str = "sync",
        transport: str = "httpx",
        responses: Optional[RSpec] = None,
    ):
        self.kind, self.wire, self.flavour, self.transport = kind, wire, flavour, transport
        self.front = kind in ("floor", "lb", "plain")
        self.responses = responses
        #: the server's route the row must reach, and the "wire" column of the tables
        self.route = responses.route if responses else wire
        self.label = responses.label if responses else WIRES[wire].label
        name = (RESPONSES_LABELS if responses else LABELS)[kind]
        if flavour == "async" and self.front:
            name = name.replace("OpenAI", "AsyncOpenAI").replace("http_client", "async_http_client")
            if transport == "aiohttp":  # (llm-bridge's upstream: its opt-in aiohttp client)
                name += " + DefaultAioHttpClient"
        if flavour == "async" and not self.front:
            name += " + " + ("httpx.AsyncClient" if transport == "httpx" else "httpx-aiohttp")
        self.name = name
        self.call: Callable[[], Any] = _unset
        self.stream: Callable[[int], int] = _unset
        self._closers: list[Callable[[], Any]] = []
        self.client: Any = None  # a front-door row's openai client
        #: a Responses row: one stream through ``responses.stream()``, checked (see there)
        self.helper_stream: Callable[[int], Optional[str]] = _unset

    def closes(self, *closers: Callable[[], Any]) -> None:
        self._closers += closers

    def close(self) -> None:
        for close in self._closers:
            close()

    async def aclose(self) -> None:
        for close in self._closers:
            done = close()
            if inspect.isawaitable(done):
                await done


def _unset(*args: Any) -> Any:
    raise RuntimeError("not measured for this row")


def make_row(
    kind: str,
    wire: str,
    url: str,
    flavour: str = "sync",
    transport: str = "httpx",
    http: Any = None,
) -> Row:
    """A measured client. ``http`` (engine rows) replaces the engine's upstream client."""
    row = Row(kind, wire, flavour, transport)
    return _make(row, url, http)


def make_responses_row(spec: RSpec, url: str) -> Row:
    """A measured client of the Responses API (sync)."""
    return _make(Row(spec.kind, spec.wire, responses=spec), url)


def _make(row: Row, url: str, http: Any = None) -> Row:
    kind, sync = row.kind, row.flavour == "sync"
    if kind in ("floor", "lb", "plain"):
        _front_door(row, url, sync)
    elif kind == "raw":
        _raw(row, url, sync)
    elif kind == "engine":
        _engine(row, url, sync, http)
    else:
        raise ValueError(kind)
    return row


def _front_door(row: Row, url: str, sync: bool) -> None:
    """openai's clients, llm-bridge's subclasses, or openai's with llm-bridge's http client."""
    import openai
    from openai._constants import DEFAULT_CONNECTION_LIMITS

    import llm_bridge

    wire = WIRES[row.wire]
    upstream: Any = None  # llm-bridge's client to the provider: given, so closed here
    if row.kind == "floor":
        make_http = openai.DefaultHttpxClient if sync else openai.DefaultAsyncHttpxClient
        http = make_http(limits=type(DEFAULT_CONNECTION_LIMITS)(**POOL))
        client_class = openai.OpenAI if sync else openai.AsyncOpenAI
        client = client_class(api_key=API_KEY, base_url=url + wire.root, http_client=http)
    else:
        import httpx

        make = llm_bridge.DefaultHttpxClient if sync else llm_bridge.DefaultAsyncHttpxClient
        if row.transport == "aiohttp":
            make = llm_bridge.DefaultAioHttpClient
        upstream = make(limits=httpx.Limits(**POOL))
        settings = bridge_settings(row.wire, url)
        if row.kind == "lb":
            client_class = llm_bridge.OpenAI if sync else llm_bridge.AsyncOpenAI
            client = client_class(**settings, http_client=upstream)
        else:
            make_front = llm_bridge.http_client if sync else llm_bridge.async_http_client
            front = make_front(
                provider=wire.provider, config=settings["config"], http_client=upstream
            )
            client_class = openai.OpenAI if sync else openai.AsyncOpenAI
            client = client_class(api_key=API_KEY, base_url=settings["base_url"], http_client=front)
    row.client = client
    row.closes(client.close)
    if upstream is not None:
        row.closes(upstream.close if sync else upstream.aclose)
    if row.responses is not None:
        _responses(row, client)
        return
    create = client.chat.completions.create
    row.call = functools.partial(
        create, model=wire.model, messages=MESSAGES, temperature=TEMPERATURE
    )

    def stream(n: int) -> int:
        chunks = 0
        for _ in create(
            model=wire.model,
            messages=MESSAGES,
            temperature=TEMPERATURE,
            stream=True,
            stream_options={"include_usage": True},
            extra_headers=chunks_header(n),
        ):
            chunks += 1
        return chunks

    if sync:
        row.stream = stream


def _responses(row: Row, client: Any) -> None:
    """``responses.create`` (and ``responses.stream`` for the start-up check) on a row."""
    spec = row.responses
    assert spec is not None
    request = {
        "model": spec.model,
        "instructions": RESPONSES_INSTRUCTIONS,
        "input": RESPONSES_INPUT,
        "temperature": TEMPERATURE,
    }
    create = client.responses.create
    row.call = functools.partial(create, **request)

    def upstream(n: int) -> dict[str, str]:
        """The chunks to ask the server for, so that the stream has n Responses events: a
        translated row's chat stream has one chunk without text (Zhipu's finishing chunk,
        DashScope's role chunk) and no event of its own for the usage chunk."""
        return chunks_header(n - RESPONSES_FRAME + 1 if spec.translated else n)

    def stream(n: int) -> int:
        events = 0
        for _ in create(**request, stream=True, extra_headers=upstream(n)):
            events += 1
        return events

    def helper_stream(n: int) -> Optional[str]:
        """openai's own stream helper over n events: None if it reads them all, finds
        n - 8 text deltas and builds the final Response from them, else what went wrong."""
        deltas: list[str] = []
        events = 0
        with client.responses.stream(**request, extra_headers=upstream(n)) as events_in:
            for event in events_in:
                events += 1
                if event.type == "response.output_text.delta":
                    deltas.append(event.delta)
            final = events_in.get_final_response()
        text = "".join(deltas)
        if events != n or len(deltas) != n - RESPONSES_FRAME:
            return f"{events} events, {len(deltas)} text deltas (asked for {n} events)"
        if final.status != "completed" or final.output_text != text or final.usage is None:
            return f"get_final_response(): {final.status}, {final.output_text[:40]!r}..."
        return None

    row.stream = stream
    row.helper_stream = helper_stream


def _raw(row: Row, url: str, sync: bool) -> None:
    """httpx alone: the adapter's request spelled out, ``response.json()``."""
    import httpx

    u, h, b = wire_request(row.wire, url, False)
    if not sync:
        if row.transport == "aiohttp":
            from httpx_aiohttp import HttpxAiohttpClient

            client: Any = HttpxAiohttpClient(limits=httpx.Limits(**POOL))
        else:
            client = httpx.AsyncClient(limits=httpx.Limits(**POOL))
        post = functools.partial(client.post, u, json=b, headers=h)

        async def acall() -> Any:
            return _json_of(await post())

        row.call = acall
        row.closes(client.aclose)
        return
    client = httpx.Client()
    post = functools.partial(client.post, u, json=b, headers=h)
    su, sh, sb = wire_request(row.wire, url, True)
    loads = json.loads

    def stream(n: int) -> int:
        events = 0
        with client.stream("POST", su, json=sb, headers={**sh, **chunks_header(n)}) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    data = line[5:].lstrip()
                    if data == "[DONE]":
                        break
                    loads(data)
                    events += 1
        return events

    row.call = lambda: _json_of(post())
    row.stream = stream
    row.closes(client.close)


def _json_of(response: Any) -> Any:
    if response.status_code != 200:
        raise RuntimeError(response.text)
    return response.json()


def bridge_engine(wire: str, url: str, sync: bool, http: Any = None) -> tuple[Any, Any]:
    """An engine as ``llm_bridge.OpenAI`` builds one (`_transport.EngineFactory`), and
    its factory (whose ``http`` is the upstream client: ``http``, or a default one)."""
    from llm_bridge._config import load_config
    from llm_bridge._engine import AsyncEngine, SyncEngine
    from llm_bridge._transport import EngineFactory

    settings = bridge_settings(wire, url)
    factory = EngineFactory(
        SyncEngine if sync else AsyncEngine, http_client=http, timeout=None, max_retries=2
    )
    engine = factory(
        load_config(settings["config"]),
        provider=settings["provider"],
        api_key=settings["api_key"],
        base_url=settings.get("base_url"),
        secret_key=settings.get("secret_key"),
    )
    return engine, factory


def _engine(row: Row, url: str, sync: bool, http: Any) -> None:
    """The gateway path: OpenAI request bytes in, the engine, OpenAI JSON or SSE bytes out."""
    from llm_bridge._front import json_body, read_json, split_body, sse_lines

    if http is None and row.transport == "aiohttp":
        import httpx
        from httpx_aiohttp import HttpxAiohttpClient

        http = HttpxAiohttpClient(limits=httpx.Limits(**POOL))
    engine, factory = bridge_engine(row.wire, url, sync, http)
    http = factory.http  # (llm-bridge's default client when none was given)
    row.closes(http.close if sync else http.aclose)
    chat, plain = engine.chat, engine.options()
    body = openai_request(row.wire, False)

    def read(content: bytes, **given: Any) -> tuple[dict[str, Any], Any]:
        params, extras = split_body("chat", read_json(content))
        if extras:
            given["extra_body"] = extras
        return params, engine.options(**given) if given else plain

    if not sync:

        async def acall() -> bytes:
            return json_body((await chat(*read(body))).parsed)

        row.call = acall
        return
    stream_body = openai_request(row.wire, True)

    def stream(n: int) -> int:
        chunks = -1  # ([DONE] is not a chunk)
        parsed = chat(*read(stream_body, extra_headers=chunks_header(n))).parsed
        try:
            for _ in sse_lines(parsed):
                chunks += 1
        finally:
            parsed.close()
        return chunks

    row.call = lambda: json_body(chat(*read(body)).parsed)
    row.stream = stream


# ----------------------------------------------------------------------------- checks


def server_hits(url: str) -> dict[str, int]:
    with urllib.request.urlopen(url + "/_bench/hits") as response:
        return json.loads(response.read())


def route_problem(row: Row, before: dict[str, int], url: str, requests: int) -> Optional[str]:
    """None if the server saw exactly ``requests`` requests on the row's wire since ``before``
    (and Qianfan token fetches), else what it saw."""
    after = server_hits(url)
    seen = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    seen.pop("token", None)
    if seen == {row.route: requests}:
        return None
    return f"{row.name} ({row.flavour}) should reach {row.route!r} {requests}x; server saw {seen}"


def check_sync(rows: list[Row], url: str) -> list[str]:
    """One request and one short stream per row: each must reach the row's own wire."""
    problems: list[str] = []
    for row in rows:
        before = server_hits(url)
        row.call()
        if row.stream(3) < 3:
            problems.append(f"{row.name} on {row.wire}: a 3-chunk stream gave fewer chunks")
        problems += filter(None, [route_problem(row, before, url, 2)])
    return problems


def check_responses(rows: list[Row], url: str) -> list[str]:
    """A Responses row: one request (a completed Response with text), one 20-event stream
    (20 events) and one stream through openai's ``responses.stream()`` helper, whose
    ``get_final_response()`` must hold the text of its deltas; all on the row's own route."""
    problems: list[str] = []
    for row in rows:
        before = server_hits(url)
        answer = row.call()
        if answer.status != "completed" or not answer.output_text:
            problems.append(f"{row.name} on {row.label}: a Response {answer.status}, no text")
        events = row.stream(20)
        if events != 20:
            problems.append(f"{row.name} on {row.label}: a 20-event stream gave {events}")
        wrong = row.helper_stream(20)
        if wrong:
            problems.append(f"{row.name} on {row.label}: responses.stream(): {wrong}")
        problems += filter(None, [route_problem(row, before, url, 3)])
    return problems


async def check_async(rows: list[Row], url: str) -> list[str]:
    """One request per async row: each must reach the row's own wire."""
    problems: list[str] = []
    for row in rows:
        before = server_hits(url)
        await row.call()
        problems += filter(None, [route_problem(row, before, url, 1)])
    return problems


def wire_check(url: str) -> list[str]:
    """Capture what the engine sends and compare it with what the raw rows send."""
    import httpx

    problems = []
    for wire in WIRES:
        for stream in (False, True):
            seen: list[httpx.Request] = []
            http = httpx.Client(event_hooks={"request": [seen.append]})
            row = make_row("engine", wire, url, http=http)
            row.stream(3) if stream else row.call()
            row.close()
            request = [r for r in seen if "/oauth/" not in r.url.path][-1]
            u, h, b = wire_request(wire, url, stream)
            where = f"{wire} {'stream' if stream else 'non-stream'}"
            if str(request.url) != u:
                problems.append(f"{where}: URL {request.url} != {u}")
            if json.loads(request.content) != b:
                problems.append(
                    f"{where}: body {request.content.decode()} != "
                    + json.dumps(b, ensure_ascii=False)
                )
            for k, v in h.items():
                if request.headers.get(k) != v:
                    problems.append(f"{where}: header {k}: {request.headers.get(k)!r} != {v!r}")
    return problems


# ----------------------------------------------------------------------------- measuring


def rotated(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def percentile(sorted_values: list[int], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def bench_nonstream(rows: list[Row], rounds: int, per_round: int) -> dict[Row, dict]:
    for row in rows:  # warm up: connections, token, caches
        for _ in range(50):
            row.call()
    samples: dict[Row, list[int]] = {row: [] for row in rows}
    gc.collect()
    for r in range(rounds):
        for row in rotated(rows, r):
            call, out = row.call, samples[row]
            for _ in range(per_round):
                t0 = ns()
                call()
                out.append(ns() - t0)
    result = {}
    for row, values in samples.items():
        values.sort()
        result[row] = {
            "p50": percentile(values, 0.50) / 1e3,
            "p99": percentile(values, 0.99) / 1e3,
            "n": len(values),
        }
    return result


def bench_stream(rows: list[Row], rounds: int) -> dict[Row, dict]:
    for row in rows:
        row.stream(STREAM_CHUNKS)
    samples: dict[Row, list[int]] = {row: [] for row in rows}
    counts: dict[Row, int] = {}
    gc.collect()
    for r in range(rounds):
        for row in rotated(rows, r):
            t0 = ns()
            counts[row] = row.stream(STREAM_CHUNKS)
            samples[row].append(ns() - t0)
    return {
        row: {
            "ms": statistics.median(v) / 1e6,
            "min": min(v) / 1e6,
            "chunks": counts[row],
            "n": len(v),
        }
        for row, v in samples.items()
    }


async def batch(row: Row, n: int) -> int:
    call = row.call
    t0 = ns()
    await asyncio.gather(*[call() for _ in range(n)])
    return ns() - t0


async def bench_concurrent(
    url: str, groups: list[list[tuple[str, str, str]]], rounds: int, warm: int
) -> tuple[dict[Row, dict], list[str]]:
    """Each group of (kind, wire, transport) rows interleaved in rounds of one batch each."""
    result: dict[Row, dict] = {}
    problems: list[str] = []
    for specs in groups:
        rows = [make_row(k, w, url, "async", t) for k, w, t in specs]
        try:
            problems += await check_async(rows, url)
            if problems:
                break
            for row in rows:
                # httpx's pool takes seconds over its second and third bursts of 200 fresh
                # connections; from the fourth on it is steady.
                for _ in range(warm):
                    await batch(row, CONCURRENCY)
            samples: dict[Row, list[int]] = {row: [] for row in rows}
            gc.collect()
            for r in range(rounds):
                for row in rotated(rows, r):
                    samples[row].append(await batch(row, CONCURRENCY))
            for row, v in samples.items():
                result[row] = {"ms": statistics.median(v) / 1e6, "min": min(v) / 1e6, "n": len(v)}
        finally:
            for row in rows:
                await row.aclose()
    return result, problems


# ----------------------------------------------------------------------------- the Responses API


def responses_spec(kind: str, wire: str) -> RSpec:
    """The Responses row for ``--loop``: the floor, or llm-bridge on ``wire`` (a route)."""
    for spec in [*RESPONSES, PASS_THROUGH]:
        if spec.kind == kind and (kind == "floor" or spec.route == wire):
            return spec
    raise SystemExit(f"no Responses row for --kind {kind} --wire {wire}")


def responses_rows(url: str) -> tuple[list[Row], list[str]]:
    """The Responses rows, and notes: PASS_THROUGH is one of them when one request shows
    that this llm-bridge sends it to DashScope's own Responses API."""
    rows = [make_responses_row(spec, url) for spec in RESPONSES]
    notes: list[str] = []
    row = make_responses_row(PASS_THROUGH, url)
    before = server_hits(url)
    try:
        row.call()
    except Exception as error:  # (reported, and the section goes on without the row)
        seen: Any = f"{type(error).__name__}: {error}"
    else:
        after = server_hits(url)
        seen = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    if seen == {PASS_THROUGH.route: 1}:
        rows.append(row)
    else:
        row.close()
        if seen == {"dashscope-compat": 1}:
            notes.append(
                f"This llm-bridge translates `{PASS_THROUGH.model}` on DashScope's compatible "
                "mode to chat completions too (it does not use DashScope's own Responses API "
                "for it): no pass-through row."
            )
        else:
            notes.append(f"No pass-through row: `{PASS_THROUGH.model}` on DashScope: {seen}.")
    return rows, notes


def measure_responses(url: str, p: dict[str, int]) -> dict[str, Any]:
    """The Responses section's measurements (the rows checked first: exits if one fails)."""
    started = time.monotonic()
    rows, notes = responses_rows(url)
    try:
        wrong = check_responses(rows, url)
        if wrong:
            sys.exit("Responses route check failed:\n  " + "\n  ".join(wrong))
        nonstream = bench_nonstream(rows, p["ns_rounds"], p["ns_per_round"])
        stream = bench_stream(rows, p["stream_rounds"])
    finally:
        for row in rows:
            row.close()
    return {
        "nonstream": nonstream,
        "stream": stream,
        "notes": notes,
        "seconds": time.monotonic() - started,
        "ended": datetime.now(timezone.utc),
        "load": os.getloadavg(),
    }


# ----------------------------------------------------------------------------- child processes


def child_env(cache_dir: str) -> dict[str, str]:
    """Children compile bytecode once into a private cache (``PYTHONPYCACHEPREFIX``) and reuse it,
    as an installed package does, even where ``PYTHONDONTWRITEBYTECODE`` is set (an editable
    checkout would otherwise be compiled from source on every import)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


IMPORT_FLOOR = "import openai"
IMPORT_BRIDGE = "from llm_bridge import OpenAI"
IMPORT_ENGINE = "from llm_bridge._engine import SyncEngine"
IMPORTS = [IMPORT_FLOOR, IMPORT_BRIDGE, "import llm_bridge", "import httpx", IMPORT_ENGINE]
#: The import and the first client, together: llm-bridge loads the configuration, the
#: engine and the adapters when the first client is made, not at import.
CLIENT_FLOOR = "import openai; openai.OpenAI(api_key='k')"
CLIENT_BRIDGE = "from llm_bridge import OpenAI; OpenAI(provider='zhipu', api_key='id.secret')"


def import_times(runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time of ``python -c STATEMENT`` minus an empty interpreter's, in ms."""
    codes = {"(empty)": "pass", **{st: st for st in [*IMPORTS, CLIENT_FLOOR, CLIENT_BRIDGE]}}
    samples: dict[str, list[int]] = {k: [] for k in codes}
    names = list(codes)
    for name in names:  # warm the page cache and the .pyc files
        subprocess.run([sys.executable, "-c", codes[name]], check=True, env=env)
    for r in range(runs):
        for name in rotated(names, r):
            t0 = ns()
            subprocess.run([sys.executable, "-c", codes[name]], check=True, env=env)
            samples[name].append(ns() - t0)
    empty = statistics.median(samples["(empty)"])
    out = {name: (statistics.median(v) - empty) / 1e6 for name, v in samples.items()}
    out["(empty)"] = empty / 1e6
    return out


def rss_child(kind: str, wire: str, url: str, n: int) -> None:
    """In a child process: n sequential requests, then print peak RSS (KiB)."""
    import resource

    if kind == "openai-idle":
        import openai  # noqa: F401  (what any llm_bridge import loads: see the report)
    elif kind != "none":
        call = make_row(kind, wire, url).call
        for _ in range(n):
            call()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)


def rss(url: str, runs: int, requests: int, env: dict[str, str]) -> dict[tuple[str, str], float]:
    cases = [("none", "openai"), ("openai-idle", "openai"), *FRONT, *ENGINE]
    samples: dict[tuple[str, str], list[int]] = {c: [] for c in cases}
    for r in range(runs):
        for kind, wire in rotated(cases, r):
            # Started through sh: Linux carries the parent's peak RSS over fork+exec into
            # ru_maxrss, so the child is forked from a small process, not from this one.
            child = [sys.executable, __file__, "--rss-child", kind, wire, url, str(requests)]
            out = subprocess.run(
                ["sh", "-c", '"$@"; exit $?', "sh", *child],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            samples[(kind, wire)].append(int(out.stdout.strip().splitlines()[-1]))
    return {c: statistics.median(v) / 1024 for c, v in samples.items()}


# ----------------------------------------------------------------------------- where the time goes

#: The steps of ``llm_bridge.OpenAI``'s path that a pass-through would change, as profile
#: edges (callee file, callee name, caller file, caller name) whose cumulative time is
#: summed; None matches anything, a name matches a built-in (file "~") by substring.
STEPS = ("to _shapes", "serialise", "openai parse", "upstream HTTP")
_EDGES: dict[
    str, dict[str, list[tuple[Optional[str], Optional[str], Optional[str], Optional[str]]]]
] = {
    "nonstream": {
        # the provider's JSON decoded, checked, translated (adapter) and validated (engine)
        "to _shapes": [
            ("llm_bridge/adapters/", None, "llm_bridge/_engine.py", "result"),
            ("llm_bridge/_engine.py", "completion", None, None),
        ],
        "serialise": [("llm_bridge/_front.py", "json_body", None, None)],
        "openai parse": [("openai/_response.py", "_parse", None, None)],
        "upstream HTTP": [("llm_bridge/_engine.py", "_send", None, None)],
    },
    "stream": {
        # an OpenAI-shaped event is decoded and validated in one step (validate_json)
        "to _shapes": [
            ("llm_bridge/adapters/", "translate", "llm_bridge/_streaming.py", None),
            ("~", "validate_python", "llm_bridge/_streaming.py", None),
        ],
        "serialise": [("llm_bridge/_front.py", "sse_events", None, None)],
        "openai parse": [
            ("openai/_base_client.py", "_process_response_data", "openai/_streaming.py", None),
            ("openai/_streaming.py", "json", None, None),
            ("openai/_streaming.py", "decode", None, None),
        ],
    },
}


def _matches(key: tuple, path: Optional[str], name: Optional[str]) -> bool:
    file, _, func = key
    if path is not None and path not in file.replace(os.sep, "/"):
        return False
    return name is None or func == name or (file == "~" and name in func)


def profile_steps(stats: dict, mode: str) -> dict[str, float]:
    """Seconds per step, from ``pstats.Stats(...).stats``; ``total`` is all profiled time."""
    out = {"total": sum(entry[2] for entry in stats.values())}
    for step, edges in _EDGES[mode].items():
        seconds = 0.0
        for callee, (_, _, _, ct, callers) in stats.items():
            for path, name, caller_path, caller_name in edges:
                if not _matches(callee, path, name):
                    continue
                if caller_path is None and caller_name is None:
                    seconds += ct
                else:
                    seconds += sum(
                        edge[3]
                        for caller, edge in callers.items()
                        if _matches(caller, caller_path, caller_name)
                    )
        out[step] = seconds
    return out


def where_time_goes(url: str, calls: int, streams: int) -> dict[tuple[str, str], dict]:
    """``llm_bridge.OpenAI`` under cProfile on the OpenAI-shaped wires: seconds per step
    per request (per stream)."""
    import cProfile
    import pstats

    out = {}
    for wire in OPENAI_SHAPED:
        row = make_row("lb", wire, url)
        for _ in range(50):
            row.call()
        row.stream(STREAM_CHUNKS)
        for mode, count in (("nonstream", calls), ("stream", streams)):
            profiler = cProfile.Profile()
            gc.collect()
            profiler.enable()
            for _ in range(count):
                row.call() if mode == "nonstream" else row.stream(STREAM_CHUNKS)
            profiler.disable()
            steps = profile_steps(pstats.Stats(profiler).stats, mode)  # type: ignore[attr-defined]
            out[(wire, mode)] = {"n": count, **{k: v / count for k, v in steps.items()}}
        row.close()
    return out


#: The layers of a non-stream request, outermost first: (name, object path on the row's
#: openai client, method). Each is timed around its call; a layer's own time is its time
#: minus the next one's.
LAYERS = {
    "floor": [("openai", None, None), ("HTTP to the server", "_client", "send")],
    "lb": [
        ("openai", None, None),
        ("httpx2 client around the transport", "_client", "send"),
        ("transport: read request, write answer", "_transport", "handle_request"),
        ("engine", "_engine", "chat"),
        ("upstream HTTP", "_engine", "_open"),
    ],
}


def front_door_layers(url: str, calls: int) -> dict[tuple[str, str], dict[str, float]]:
    """Sequential non-stream requests of the floor and ``llm_bridge.OpenAI``, each layer
    timed around its call (a wrapper on the instance): the median of each layer's own
    time per request, in seconds."""
    rows = [make_row("floor", "openai", url)] + [make_row("lb", w, url) for w in OPENAI_SHAPED]
    spans: dict[Row, list[list[int]]] = {}
    for row in rows:
        layers = LAYERS[row.kind]
        spans[row] = [[] for _ in layers]
        for depth, (_, path, method) in enumerate(layers[1:], start=1):
            target = row.client
            for attribute in path.split("."):
                target = getattr(target, attribute)
            setattr(target, method, _timed(getattr(target, method), spans[row][depth]))
        call = row.call
        row.call = _timed(call, spans[row][0])
    for row in rows:
        for _ in range(50):
            row.call()
        for times in spans[row]:
            times.clear()
    for r in range(4):
        for row in rotated(rows, r):
            for _ in range(calls // 4):
                row.call()
    out = {}
    for row in rows:
        # each request: its layers' times, outermost first (and 0 for below the last)
        per_call = [(*t, 0) for t in zip(*spans[row])]
        own = {
            name: statistics.median(t[depth] - t[depth + 1] for t in per_call) / 1e9
            for depth, (name, _, _) in enumerate(LAYERS[row.kind])
        }
        own["total"] = statistics.median(t[0] for t in per_call) / 1e9
        out[(row.kind, row.wire)] = own
        row.close()
    return out


def _timed(fn: Callable[..., Any], times: list[int]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = ns()
        try:
            return fn(*args, **kwargs)
        finally:
            times.append(ns() - t0)

    return timed


def _best_of(fn: Callable[[], Any], repeat: int, number: int) -> float:
    """Seconds per call of ``fn``: the best of ``repeat`` runs of ``number`` calls."""
    best = float("inf")
    for _ in range(repeat):
        t0 = ns()
        for _ in range(number):
            fn()
        best = min(best, (ns() - t0) / 1e9 / number)
    return best


def step_costs(repeat: int) -> dict[tuple[str, str], dict[str, float]]:
    """The steps a pass-through would change, timed alone (no profiler) on the server's
    bytes: seconds per non-stream request, and per 1000-chunk stream."""
    import openai
    import server
    from openai.types.chat import ChatCompletion as OpenAICompletion
    from openai.types.chat import ChatCompletionChunk as OpenAIChunk

    from llm_bridge._front import json_body, sse_lines
    from llm_bridge._shapes.chat import ChatCompletion, ChatCompletionChunk

    client = openai.OpenAI(api_key="k", base_url="http://127.0.0.1:9/v1")  # (never sends)
    process = client._process_response_data
    validate_json = ChatCompletionChunk.__pydantic_validator__.validate_json
    provider_json = {"zhipu": server.ZHIPU_JSON, "dashscope-compat": server.DASHSCOPE_COMPAT_JSON}
    events = {
        "zhipu": server._zhipu_events(STREAM_CHUNKS),
        "dashscope-compat": server._dashscope_compat_events(STREAM_CHUNKS, True),
    }
    out = {}
    for wire in OPENAI_SHAPED:
        raw, provider = provider_json[wire], WIRES[wire].provider

        def to_shapes(raw: bytes = raw, provider: str = provider) -> Any:
            data = json.loads(raw)
            data.setdefault("object", "chat.completion")
            data["provider"] = provider
            return ChatCompletion.model_validate(data)

        model = to_shapes()
        ours = json_body(model)
        out[(wire, "nonstream")] = {
            "to _shapes": _best_of(to_shapes, repeat, 2000),
            "serialise": _best_of(lambda model=model: json_body(model), repeat, 2000),
            "openai parse": _best_of(
                lambda ours=ours: process(
                    data=json.loads(ours), cast_to=OpenAICompletion, response=None
                ),
                repeat,
                2000,
            ),
        }
        datas = [e[len(b"data: ") : -2] for e in events[wire] if e != b"data: [DONE]\n\n"]
        chunks = [validate_json(d) for d in datas]
        dumped = [e[len(b"data: ") : -2] for e in sse_lines(chunks)][:-1]  # (not [DONE])
        out[(wire, "stream")] = {
            "to _shapes": _best_of(
                lambda datas=datas: [validate_json(d) for d in datas], repeat, 3
            ),
            "serialise": _best_of(lambda chunks=chunks: list(sse_lines(chunks)), repeat, 3),
            "openai parse": _best_of(
                lambda dumped=dumped: [
                    process(data=json.loads(d), cast_to=OpenAIChunk, response=None) for d in dumped
                ],
                repeat,
                3,
            ),
        }
    client.close()
    return out


# ----------------------------------------------------------------------------- report


def fmt_ratio(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.2f}×"


def table(header: list[str], rows: list[list[str]], left: int = 2) -> list[str]:
    align = ["---" if i < left else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def machine() -> list[str]:
    from importlib.metadata import version

    import httpx
    import openai

    import llm_bridge

    versions = [
        f"llm-bridge {llm_bridge.__version__}",
        f"openai {openai.__version__}",
        f"httpx {httpx.__version__}",
    ]
    if _installed("httpx2"):
        versions.append(f"httpx2 {version('httpx2')}")
    if HAVE_AIOHTTP:
        versions.append(f"httpx-aiohttp {version('httpx-aiohttp')}")
    source = Path(llm_bridge.__file__).resolve().parent.parent
    if source != HERE.parent:  # (a clean export of a commit, say: PYTHONPATH=...)
        versions[0] += f" (imported from {source})"
    else:
        try:
            commit = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
            ).stdout.strip()
            if commit:
                versions[0] += f" (commit {commit}, plus any uncommitted changes)"
        except OSError:
            pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return [
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.system()} {platform.machine()}, nproc {cpus}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"- versions: {', '.join(versions)}",
        "- load average when the run ended: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (other work on the machine shows up as noise, mostly in p99 and the async batches)",
    ]


class Report:
    """The markdown, and the budget lines gathered on the way."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.budget: dict[str, list[tuple[str, float, float]]] = {
            "front": [],
            "gateway": [],
            "responses": [],
        }

    def add(self, *lines: str) -> None:
        self.lines += lines

    def check(self, group: str, line: str, ratio: float, limit: float) -> None:
        self.budget[group].append((f"{line} ≤ {limit:.2f}×", ratio, limit))


def baseline(results: dict, row: Any) -> Any:
    """The row a row is compared with: the floor for the front door, raw httpx (with
    httpx's own client) on the same wire for the engine."""
    want = ("floor", "openai", "httpx") if row.front else ("raw", row.wire, "httpx")
    for other in results:
        if (other.kind, other.wire, other.transport) == want:
            return results[other]
    raise LookupError(row.name)


def budgeted(row: Row) -> bool:
    """A row with a budget line: llm-bridge's, as configured by default (the front door's
    aiohttp row is shown for comparison only)."""
    return row.kind in ("lb", "plain", "engine") and not (row.front and row.transport != "httpx")


def report_nonstream(rep: Report, results: dict, group: str, limit: float) -> None:
    n = next(iter(results.values()))["n"]
    rep.add(f"{n} sequential requests per row (one client, keep-alive), in µs.", "")
    trs = []
    for row, v in results.items():
        base = baseline(results, row)
        ratio = v["p50"] / base["p50"]
        trs.append(
            [
                row.label,
                row.name,
                f"{v['p50']:.0f}",
                f"{v['p99']:.0f}",
                fmt_ratio(ratio),
                fmt_ratio(v["p99"] / base["p99"]),
            ]
        )
        if budgeted(row):
            rep.check(group, f"non-stream p50, {row.name}, {row.label}", ratio, limit)
    header = ["wire", "client", "p50 µs", "p99 µs", "p50 ×", "p99 ×"]
    rep.add(*table(header, trs), "")


def report_stream(
    rep: Report, results: dict, group: str, limit: float, unit: str = "chunks"
) -> None:
    rounds = next(iter(results.values()))["n"]
    rep.add(
        f"A {STREAM_CHUNKS}-event stream consumed whole; median (and best) of {rounds}, in ms.",
        "",
    )
    trs = []
    for row, v in results.items():
        ratio = v["ms"] / baseline(results, row)["ms"]
        trs.append(
            [
                row.label,
                row.name,
                f"{v['ms']:.1f}",
                f"{v['min']:.1f}",
                str(v["chunks"]),
                fmt_ratio(ratio),
            ]
        )
        if budgeted(row):
            rep.check(group, f"stream, {row.name}, {row.label}", ratio, limit)
    header = ["wire", "client", "median ms", "best ms", unit, "×"]
    rep.add(*table(header, trs), "")


def report_concurrent(rep: Report, results: dict, group: str, limit: float) -> None:
    rounds = next(iter(results.values()))["n"]
    rep.add(
        f"`asyncio.gather` of {CONCURRENCY} requests; median (and best) wall time of {rounds} "
        f"batches, in ms; every client has the same pool limits ({POOL['max_connections']} "
        f"connections, {POOL['max_keepalive_connections']} keep-alive). Ratios of medians, "
        "and of bests in the `(best)` column: other work on the machine lands in single "
        "batches, so the best-of ratio is the steadier comparison.",
        "",
    )
    trs = []
    for row, v in results.items():
        base = baseline(results, row)
        ratio = v["ms"] / base["ms"]
        trs.append(
            [
                row.label,
                row.name,
                f"{v['ms']:.0f}",
                f"{v['min']:.0f}",
                fmt_ratio(ratio),
                fmt_ratio(v["min"] / base["min"]),
            ]
        )
        if budgeted(row):
            rep.check(
                group,
                f"{CONCURRENCY} concurrent, {row.name}, {row.label}",
                ratio,
                limit,
            )
    header = ["wire", "client", "median ms", "best ms", "×", "(best)"]
    rep.add(*table(header, trs), "")


def report_rss(
    rep: Report, peak: dict, cases: list[tuple[str, str]], group: str, limit: float
) -> None:
    trs = []
    for kind, wire in cases:
        base = peak[("floor", "openai")] if group == "front" else peak[("raw", wire)]
        ratio = peak[(kind, wire)] / base
        name = LABELS[kind]
        trs.append([WIRES[wire].label, name, f"{peak[(kind, wire)]:.1f}", fmt_ratio(ratio)])
        if kind in ("lb", "plain", "engine"):
            rep.check(group, f"peak RSS, {name}, {WIRES[wire].label}", ratio, limit)
    rep.add(*table(["wire", "client", "peak RSS MiB", "×"], trs), "")


def report_profile(
    rep: Report, layers: dict, profile: dict, costs: dict, nonstream: dict, stream: dict
) -> None:
    """The "where the time goes" section."""
    names = list(dict.fromkeys(name for kind in ("floor", "lb") for name, _, _ in LAYERS[kind]))
    rep.add(
        "### Non-stream: the layers",
        "",
        "Sequential requests of the floor and `llm_bridge.OpenAI`, every layer timed around "
        "its call (no profiler): the median of each layer's own time (its time minus the "
        "next layer's), in µs. *openai* is openai's work around its HTTP client call "
        "(building the request, parsing the answer): the same for both.",
        "",
    )
    trs = [
        [
            WIRES[wire].label,
            LABELS[kind],
            *(f"{own[n] * 1e6:.0f}" if n in own else "—" for n in names),
            f"{own['total'] * 1e6:.0f}",
        ]
        for (kind, wire), own in layers.items()
    ]
    rep.add(*table(["wire", "client", *names, "total"], trs), "")
    floor = layers[("floor", "openai")]
    for (kind, wire), own in layers.items():
        if kind != "lb":
            continue
        bridge = own["transport: read request, write answer"] + own["engine"]
        rep.add(
            f"- {WIRES[wire].label}: {(own['total'] - floor['total']) * 1e6:.0f} µs over the "
            f"floor; transport and engine (without the upstream call) "
            f"{bridge * 1e6:.0f} µs; upstream HTTP {own['upstream HTTP'] * 1e6:.0f} µs "
            f"against the floor's {floor['HTTP to the server'] * 1e6:.0f} µs to the server."
        )
    rep.add("", "### Under cProfile", "")
    rep.add(
        f"`llm_bridge.OpenAI` on the OpenAI-shaped wires under cProfile: time per request (per "
        f"{STREAM_CHUNKS}-chunk stream) in each step, and its share of all profiled time. "
        "*to _shapes*: the provider's JSON decoded, checked, translated and validated into "
        "llm-bridge's own models (`_shapes`); *serialise*: those models written back as "
        "OpenAI JSON or SSE for openai; *openai parse*: openai reading that into its own "
        "types (the floor does the same work); *upstream HTTP*: the engine's httpx call to "
        "the server (a stream's is spread over its chunks: not separable). The profiler "
        "inflates Python-level work (openai's parsing, say) far more than pydantic-core's "
        "compiled validation and serialisation, so the shares understate the latter.",
        "",
    )
    trs = []
    for (wire, mode), b in profile.items():
        unit, scale = ("µs", 1e6) if mode == "nonstream" else ("ms", 1e3)
        cells = [f"{b[k] * scale:.1f} ({b[k] / b['total']:.0%})" if k in b else "—" for k in STEPS]
        label = f"{mode} ×{b['n']}, {unit}"
        trs.append([WIRES[wire].label, label, f"{b['total'] * scale:.0f}", *cells])
    rep.add(*table(["wire", "loop", "total", *STEPS], trs), "")

    def gap(wire: str, mode: str) -> float:
        """Seconds of the front door over the floor (p50, or median stream)."""
        results, key, scale = (
            (nonstream, "p50", 1e6) if mode == "nonstream" else (stream, "ms", 1e3)
        )
        floor = next(v for r, v in results.items() if r.kind == "floor")
        lb = next(v for r, v in results.items() if r.kind == "lb" and r.wire == wire)
        return (lb[key] - floor[key]) / scale

    rep.add(
        "### The steps a pass-through would skip",
        "",
        "The same steps timed alone, without the profiler (best of several runs on the "
        "server's bytes), against what the front door costs over the floor (the p50, or "
        "median stream, of `llm_bridge.OpenAI` minus the floor's, from the tables above). "
        "Handing openai the provider's bytes with small patches would skip *to _shapes* and "
        "*serialise* (openai's own parse stays, and a patch costs something), so their sum "
        "is the most a pass-through could save:",
        "",
    )
    trs = []
    for (wire, mode), c in costs.items():
        unit, scale = ("µs", 1e6) if mode == "nonstream" else ("ms", 1e3)
        skippable = c["to _shapes"] + c["serialise"]
        over = gap(wire, mode)
        trs.append(
            [
                WIRES[wire].label,
                f"{mode}, {unit}",
                *(f"{c[k] * scale:.1f}" for k in ("to _shapes", "serialise", "openai parse")),
                f"{skippable * scale:.1f}",
                f"{over * scale:.1f}",
                f"{skippable / over:.0%}" if over > 0 else "n/a",
            ]
        )
    header = ["wire", "per", "to _shapes", "serialise", "openai parse", "skippable"]
    rep.add(*table([*header, "front door − floor", "skippable share"], trs), "")


RESPONSES_TITLE = "## Responses API (issue 15)"
SEPARATELY = (
    "> The Responses API section was measured on its own (`--section responses`), later than "
    "the rest: its date and versions are in it."
)
BUDGET_TITLES = {
    "front": "### Front door (issue 13), × the floor",
    "responses": "### Responses API (issue 15), × the Responses floor",
    "gateway": "### Gateway (issue 7's budgets), engine × raw httpx",
}


def report_responses(
    rep: Report, data: dict[str, Any], cmd: str, about: Optional[list[str]] = None
) -> None:
    """The Responses section (its own date: it may be measured alone, ``--section``, and
    then says on what: ``about``, the machine and versions lines)."""
    load = ", ".join(f"{x:.2f}" for x in data["load"])
    translated = STREAM_CHUNKS - RESPONSES_FRAME + 1
    passing = [
        f"*{PASS_THROUGH.label}*: `{PASS_THROUGH.model}` on the same DashScope root, a model "
        "whose catalogue entry is marked `responses`: llm-bridge passes the request through "
        "to DashScope's own Responses API (the server's `/compatible-mode/v1/responses`, "
        "answering with the floor's bytes) and reads and writes its answer and events again "
        "(`PassedEventStream`). Same budget.",
        "",
    ]
    rep.add(
        RESPONSES_TITLE,
        "",
        f"Measured {data['ended'].strftime('%Y-%m-%d %H:%M UTC')} by `{cmd}` "
        f"({data['seconds']:.0f} s for this section; load average when it ended: {load}).",
        "",
        *([*about, ""] if about else []),
        "The floor is the openai client's `responses.create` against a native Responses "
        "endpoint (the server's `/v1/responses`: a `Response` JSON, or the events OpenAI "
        "sends, an `event:` and a `data:` line each). Ratios are to that floor. "
        "`llm_bridge.OpenAI` makes the same call on the Zhipu root and on DashScope's "
        "compatible-mode root (`qwen-max`, a model whose catalogue entry is not marked "
        "`responses`): llm-bridge reads the Responses request into a chat call "
        "(`_responses_front.prepare`), sends it, and writes the chat answer back as a "
        "`Response` (`answer`), or the chat stream as Responses events "
        "(`ResponseEventStream`), keeping each response in its in-process store (the "
        "request leaves `store` at its default, true, as OpenAI's server keeps it). Every "
        f"request: `instructions={RESPONSES_INSTRUCTIONS!r}`, `input={RESPONSES_INPUT!r}`, "
        f"`temperature={TEMPERATURE}`. Each row was checked first on the server's hit "
        "counts, and with openai's own `responses.stream()` helper (`get_final_response()` "
        "holds the text of the deltas).",
        "",
        *(passing if any(r.route == PASS_THROUGH.route for r in data["nonstream"]) else []),
        *(f"> {note}" for note in data["notes"]),
        *([""] if data["notes"] else []),
        "### Non-stream request latency",
        "",
    )
    report_nonstream(rep, data["nonstream"], "responses", RESPONSES_BUDGET["nonstream"])
    rep.add(
        f"### One {STREAM_CHUNKS}-event stream",
        "",
        f"Every row reads {STREAM_CHUNKS} Responses events: `response.created`, "
        "`response.in_progress`, `output_item.added`, `content_part.added`, "
        f"{STREAM_CHUNKS - RESPONSES_FRAME} `output_text.delta`, `output_text.done`, "
        "`content_part.done`, `output_item.done`, `response.completed`. The floor (and a "
        "pass-through row) gets them from the server; llm-bridge makes them from a chat "
        f"stream of {translated} chunks "
        f"({STREAM_CHUNKS - RESPONSES_FRAME} with text: Zhipu's last chunk carries only the "
        "finish reason and usage, DashScope's first only the role; DashScope's usage chunk "
        "and `[DONE]` come after them), the same text pieces.",
        "",
    )
    report_stream(rep, data["stream"], "responses", RESPONSES_BUDGET["stream"], unit="events")


def report_budget(rep: Report) -> None:
    """The budget section: a table per group with lines, and the count."""
    rep.add("## Budget", "")
    for group, title in BUDGET_TITLES.items():
        if rep.budget[group]:
            rep.add(*budget_table(rep, group, title), "")
    lines = [line for group in BUDGET_TITLES for line in rep.budget[group]]
    misses = sum(ratio > limit for _, ratio, limit in lines)
    rep.add(budget_count(len(lines) - misses, misses), "")


def budget_table(rep: Report, group: str, title: str) -> list[str]:
    verdicts = [
        [line, f"{ratio:.3f}×", "PASS" if ratio <= limit else "**MISS**"]
        for line, ratio, limit in rep.budget[group]
    ]
    return [title, "", *table(["line", "ratio", "result"], verdicts, left=1)]


def budget_count(passes: int, misses: int) -> str:
    return f"{passes} PASS, {misses} MISS. The benchmark only reports; nothing here fails a build."


def _section(lines: list[str], title: str, level: str) -> Optional[tuple[int, int]]:
    """[start, end) of the section headed ``title`` (up to the next heading of its level
    or above), or None."""
    if title not in lines:
        return None
    start = lines.index(title)
    above = ("# ", "## ") if level == "## " else ("# ", "## ", "### ")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith(above)), len(lines))
    return start, end


def merge_responses(text: str, rep: Report) -> str:
    """``results.md`` with the Responses section (and its budget table) of ``rep`` in place
    of any earlier one; the other sections are kept as they are, with their own dates, and
    the budget count is made again from all the tables."""
    lines = text.rstrip("\n").split("\n")
    if SEPARATELY not in lines:  # (before the first section: the header's date is not its)
        at = next((i for i, x in enumerate(lines) if x.startswith("## ")), len(lines))
        lines[at:at] = [SEPARATELY, ""]
    section = rep.lines[: rep.lines.index("## Budget")] if "## Budget" in rep.lines else rep.lines
    while section and section[-1] == "":
        section = section[:-1]
    old = _section(lines, RESPONSES_TITLE, "## ")
    if old is not None:
        lines[old[0] : old[1]] = [*section, ""]
    else:
        at = next(
            (
                lines.index(t)
                for t in ("## Gateway budget: the engine alone against raw httpx", "## Budget")
                if t in lines
            ),
            len(lines),
        )
        lines[at:at] = [*section, ""]
    title = BUDGET_TITLES["responses"]
    table_lines = [*budget_table(rep, "responses", title), ""]
    old = _section(lines, title, "### ")
    if old is not None:
        end = old[1]
        while end > old[0] and lines[end - 1].rstrip().endswith("nothing here fails a build."):
            end -= 1  # (the count closes the last table's section)
        while end > old[0] and lines[end - 1] == "":
            end -= 1
        lines[old[0] : end] = table_lines[:-1]
    elif "## Budget" in lines:
        budget = _section(lines, "## Budget", "## ")
        assert budget is not None
        gateway = BUDGET_TITLES["gateway"]
        at = lines.index(gateway) if gateway in lines[budget[0] : budget[1]] else budget[1]
        if at == budget[1]:
            at = next(i for i in range(budget[1] - 1, budget[0], -1) if "PASS, " in lines[i])
        lines[at:at] = table_lines
    else:
        lines += ["## Budget", "", *table_lines]
    budget = _section(lines, "## Budget", "## ")
    assert budget is not None
    passes = sum(1 for x in lines[budget[0] : budget[1]] if x.endswith("| PASS |"))
    misses = sum(1 for x in lines[budget[0] : budget[1]] if x.endswith("| **MISS** |"))
    count = [i for i in range(*budget) if lines[i].endswith("nothing here fails a build.")]
    if count:
        lines[count[-1]] = budget_count(passes, misses)
    else:
        lines[budget[1] : budget[1]] = [budget_count(passes, misses), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------- main


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about two minutes; prints only")
    ap.add_argument(
        "--out", type=Path, help=f"write markdown here (default for a full run: {RESULTS})"
    )
    ap.add_argument(
        "--section",
        choices=["all", "responses"],
        default="all",
        help="responses: only the Responses API section, merged into the results file "
        "(the other sections kept as they are)",
    )
    ap.add_argument("--loop", choices=["nonstream", "stream"], help="run one loop (for a profiler)")
    ap.add_argument("--api", choices=["chat", "responses"], default="chat", help="with --loop")
    ap.add_argument("--kind", choices=["floor", "lb", "plain", "raw", "engine"], default="lb")
    ap.add_argument(
        "--wire",
        choices=[*WIRES, PASS_THROUGH.route],
        default="zhipu",
        help=f"{PASS_THROUGH.route}: the Responses pass-through row (--api responses)",
    )
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument(
        "--rss-child", nargs=4, metavar=("KIND", "WIRE", "URL", "N"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()

    if args.rss_child:
        kind, wire, url, n = args.rss_child
        rss_child(kind, wire, url, int(n))
        return

    sys.path.insert(0, str(HERE))
    from server import BenchServer

    if args.loop:
        with BenchServer() as srv:
            if args.api == "responses":
                row = make_responses_row(responses_spec(args.kind, args.wire), srv.url)
            else:
                row = make_row(args.kind, args.wire, srv.url)
            t0 = ns()
            for _ in range(args.n):
                row.call() if args.loop == "nonstream" else row.stream(STREAM_CHUNKS)
            dt = (ns() - t0) / 1e6
            row.close()
        print(
            f"{args.loop} {row.name} on {row.label}: {args.n} in {dt:.0f} ms "
            f"({dt / args.n:.3f} ms each)"
        )
        return

    quick = args.quick
    p = {
        "import_runs": 3 if quick else 15,
        "ns_rounds": 4 if quick else 20,
        "ns_per_round": 50 if quick else 100,
        "stream_rounds": 3 if quick else 25,
        "conc_rounds": 2 if quick else 15,
        "conc_warm": 2 if quick else 4,
        "rss_runs": 1 if quick else 3,
        "rss_requests": 300 if quick else RSS_REQUESTS,
        "layer_calls": 400 if quick else 4000,
        "profile_calls": 300 if quick else 2000,
        "profile_streams": 2 if quick else 10,
        "step_repeat": 3 if quick else 7,
    }
    out_path = args.out or (None if quick else RESULTS)
    if args.section == "responses":
        responses_only(p, quick, out_path)
        return
    note = None
    if not HAVE_AIOHTTP:
        note = "httpx-aiohttp is not installed: the engine's aiohttp rows are skipped."
        print("note:", note)

    started = time.monotonic()

    def stage(name: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {name}", file=sys.stderr, flush=True)

    front_specs = [(k, w, "httpx") for k, w in FRONT]
    if HAVE_AIOHTTP:  # (no budget line: what the opt-in aiohttp upstream changes)
        front_specs.append(("lb", "zhipu", "aiohttp"))
    transports = ["httpx"] + (["aiohttp"] if HAVE_AIOHTTP else [])
    engine_specs = [(k, w, t) for w in WIRES for t in transports for k in ("raw", "engine")]
    cache_dir = tempfile.mkdtemp(prefix="llm-bridge-bench-pycache-")
    env = child_env(cache_dir)
    try:
        with BenchServer() as srv:
            url = srv.url
            stage(f"server on {url}; wire check")
            mismatches = wire_check(url)
            for problem in mismatches:
                print("wire check MISMATCH:", problem)
            front = [make_row(k, w, url) for k, w in FRONT]
            engine = [make_row(k, w, url) for k, w in ENGINE]
            try:
                stage("route check: every row reaches its own wire")
                wrong = check_sync(front + engine, url)
                if wrong:
                    sys.exit("route check failed:\n  " + "\n  ".join(wrong))
                stage("import times")
                imports = import_times(p["import_runs"], env)
                n = p["ns_rounds"] * p["ns_per_round"]
                stage(f"non-stream: {len(front) + len(engine)} rows x {n} requests")
                ns_front = bench_nonstream(front, p["ns_rounds"], p["ns_per_round"])
                ns_engine = bench_nonstream(engine, p["ns_rounds"], p["ns_per_round"])
                stage(f"stream: rows x {p['stream_rounds']} streams of {STREAM_CHUNKS}")
                st_front = bench_stream(front, p["stream_rounds"])
                st_engine = bench_stream(engine, p["stream_rounds"])
            finally:
                for row in front + engine:
                    row.close()
            stage("Responses API: route check, non-stream, stream")
            responses = measure_responses(url, p)
            stage(f"{CONCURRENCY} concurrent async requests x {p['conc_rounds']} rounds")
            concurrent, wrong = asyncio.run(
                bench_concurrent(url, [front_specs, engine_specs], p["conc_rounds"], p["conc_warm"])
            )
            if wrong:
                sys.exit("route check failed:\n  " + "\n  ".join(wrong))
            stage(f"peak RSS: children making {p['rss_requests']} requests x {p['rss_runs']}")
            peak = rss(url, p["rss_runs"], p["rss_requests"], env)
            stage("where the time goes: cProfile, then the steps alone")
            layers = front_door_layers(url, p["layer_calls"])
            profile = where_time_goes(url, p["profile_calls"], p["profile_streams"])
            costs = step_costs(p["step_repeat"])
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    stage("done; server stopped")
    elapsed = time.monotonic() - started

    rep = Report()
    cmd = "python benchmarks/run.py" + (" --quick" if quick else "")
    rep.add(
        "# llm-bridge performance benchmark",
        "",
        f"Produced by `{cmd}` ({elapsed:.0f} s) against the loopback fake server "
        "(`benchmarks/server.py`). Every row was checked against the server's per-route "
        "hit counts before it was measured: it reaches the wire its label names.",
        "",
        *machine(),
        "",
    )
    if mismatches:
        rep.add("**Wire check mismatches** (raw rows do not send what the engine sends):", "")
        rep.add(*[f"- {x}" for x in mismatches], "")
    if note:
        rep.add(f"> note: {note}", "")

    rep.add(
        "## Front door (issue 13)",
        "",
        "The floor is the openai client talking straight to an OpenAI-compatible endpoint "
        "(the server's `/v1`), what a user does without llm-bridge. Ratios are to the floor. "
        "`llm_bridge.OpenAI` is given the server's Zhipu, DashScope compatible-mode or "
        "DashScope native root; `openai + llm_bridge.http_client()` is a plain "
        "`openai.OpenAI(base_url=<Zhipu root>, http_client=llm_bridge.http_client("
        "provider='zhipu', config=...))`.",
        "",
        "### Cold import",
        "",
        f'Fresh interpreter `python -c "<statement>"`, median of {p["import_runs"]}, minus '
        f"an empty interpreter ({imports['(empty)']:.1f} ms).",
        "",
    )
    floor_import = imports[IMPORT_FLOOR]
    trs = [
        [f"`{st}`", f"{imports[st]:.1f} ms", fmt_ratio(imports[st] / floor_import)]
        for st in [*IMPORTS, CLIENT_FLOOR, CLIENT_BRIDGE]
    ]
    rep.add(*table(["statement", "time", "× import openai"], trs, left=1), "")
    rep.check(
        "front",
        f"`{IMPORT_BRIDGE}` / `{IMPORT_FLOOR}`",
        imports[IMPORT_BRIDGE] / floor_import,
        FRONT_BUDGET["import"],
    )
    rep.add("### Non-stream request latency", "")
    report_nonstream(rep, ns_front, "front", FRONT_BUDGET["nonstream"])
    rep.add(f"### One {STREAM_CHUNKS}-chunk stream", "")
    report_stream(rep, st_front, "front", FRONT_BUDGET["stream"])
    rep.add(f"### {CONCURRENCY} concurrent async requests", "")
    front_conc = {r: v for r, v in concurrent.items() if r.front}
    report_concurrent(rep, front_conc, "front", FRONT_BUDGET["concurrent"])
    rep.add(
        "### Peak RSS",
        "",
        f"`ru_maxrss` of a child process that builds the client and makes {p['rss_requests']} "
        f"requests; median of {p['rss_runs']}, in MiB (an idle interpreter running this "
        f"script: {peak[('none', 'openai')]:.1f} MiB).",
        "",
    )
    report_rss(rep, peak, FRONT, "front", FRONT_BUDGET["rss"])

    report_responses(rep, responses, cmd)
    rep.add(
        "## Gateway budget: the engine alone against raw httpx",
        "",
        "The engine driven as the transport drives it, minus openai: the OpenAI request's "
        "JSON read (`_front.read_json`, `split_body`), `engine.chat`, the result written as "
        "OpenAI JSON or SSE (`_front.json_body`, `sse_lines`). Ratios are to raw httpx on the "
        "same wire (the adapter's URL, headers and body; `response.json()`, or every SSE "
        "event `json.loads`-ed). The engine uses llm-bridge's default httpx clients, which "
        "keep no response cookies. Budgets are issue 7's.",
        "",
        f"Import: `{IMPORT_ENGINE}` takes {imports[IMPORT_ENGINE]:.1f} ms "
        f"({imports[IMPORT_ENGINE] / imports['import httpx']:.1f}× `import httpx`; no budget "
        "line): llm-bridge's exceptions subclass openai's (and `llm_bridge/__init__` "
        "re-exports openai's `Stream`), so any llm-bridge module loads all of openai.",
        "",
        "### Non-stream request latency",
        "",
    )
    report_nonstream(rep, ns_engine, "gateway", GATEWAY_BUDGET["nonstream"])
    rep.add(f"### One {STREAM_CHUNKS}-chunk stream", "")
    report_stream(rep, st_engine, "gateway", GATEWAY_BUDGET["stream"])
    rep.add(f"### {CONCURRENCY} concurrent async requests", "")
    engine_conc = {r: v for r, v in concurrent.items() if not r.front}
    report_concurrent(rep, engine_conc, "gateway", GATEWAY_BUDGET["concurrent"])
    rep.add(
        "### Peak RSS",
        "",
        f"As above ({p['rss_requests']} requests per child). An idle interpreter that has "
        f"imported openai: {peak[('openai-idle', 'openai')]:.1f} MiB; the engine's process "
        "carries openai because llm-bridge's exceptions subclass openai's.",
        "",
    )
    report_rss(rep, peak, ENGINE, "gateway", GATEWAY_BUDGET["rss"])

    rep.add("## Where the time goes", "")
    report_profile(rep, layers, profile, costs, ns_front, st_front)

    report_budget(rep)

    text = "\n".join(rep.lines)
    print(text)
    if out_path:
        out_path.write_text(text, encoding="utf-8")
        print(f"written to {out_path}")
    elif quick:
        print("(quick run: results.md not written; add --out PATH to write one)")


def responses_only(p: dict[str, int], quick: bool, out_path: Optional[Path]) -> None:
    """``--section responses``: that section alone, merged into ``out_path`` if given."""
    from server import BenchServer

    cmd = "python benchmarks/run.py --section responses" + (" --quick" if quick else "")
    with BenchServer() as srv:
        print(f"server on {srv.url}; Responses rows", file=sys.stderr, flush=True)
        data = measure_responses(srv.url, p)
    rep = Report()
    report_responses(rep, data, cmd, about=machine()[1:3])
    report_budget(rep)
    text = "\n".join(rep.lines)
    print(text)
    if out_path is None:
        print("(quick run: nothing written; add --out PATH to merge the section into a file)")
        return
    if out_path.exists():
        out_path.write_text(merge_responses(out_path.read_text(encoding="utf-8"), rep), "utf-8")
    else:
        out_path.write_text("# llm-bridge performance benchmark\n\n" + text + "\n", "utf-8")
    print(f"merged into {out_path}")


if __name__ == "__main__":
    main()
