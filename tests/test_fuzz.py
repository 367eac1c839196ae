"""The upstream fuzz suite (issue 19): the public client, and the gateway, against a
provider that answers generated statuses, headers and bodies.

Whatever a provider (or a proxy, a captive portal, a broken load balancer) answers, a call
ends in a result or an `APIError` subclass: never a bare ``ValueError``, ``KeyError``,
``RecursionError`` or ``UnicodeEncodeError``, and the gateway answers every request with
an HTTP response, never its own "failed to answer" error. Bodies are bounded (and the
clients' ``[limits]`` small), so memory is, and `MemoryWatch` measures it: what an
example peaks at, and whether memory keeps growing over hundreds of examples; the suite's
timeout bounds time.

How many examples each test runs is the profile, chosen with ``LLM_BRIDGE_FUZZ``:

- ``ci`` (the default, what the README's test command runs): 10,000 per provider and
  endpoint, with a fixed seed, so a failure reproduces run to run;
- ``nightly``: 100,000, with a fresh seed each run (hypothesis prints how to reproduce a
  failure);
- ``dev``: 300, for a quick run while working on a parser.

A provider is all its wires: each example draws which of the provider's APIs answers
(Zhipu with a static key or a JWT, Qianfan v1 and v2, DashScope native and compatible).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import os
import sysconfig
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx
import pytest
from fuzzing import BODIES, CLIENTS, EVENT_DATA, MODELS, SSE_BYTES
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from llm_bridge import APIError, OpenAI, _reasoning_memory, _response_store, _retry
from llm_bridge.gateway import GatewayApp, create_app, hash_key
from llm_bridge.tokens import count_tokens

T = TypeVar("T")

PROFILES = {"dev": 300, "ci": 10_000, "nightly": 100_000}
PROFILE = os.environ.get("LLM_BRIDGE_FUZZ", "ci")
if PROFILE not in PROFILES:
    raise ValueError(f"LLM_BRIDGE_FUZZ must be one of {sorted(PROFILES)}; got {PROFILE!r}")

FUZZ = settings(
    max_examples=PROFILES[PROFILE],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # (no target phase)
    deadline=None,
    derandomize=PROFILE != "nightly",
    database=None,
    suppress_health_check=list(HealthCheck),
)

#: The wires of each provider (names in `fuzzing.CLIENTS`).
PROVIDERS = {
    "zhipu": ["zhipu", "zhipu-jwt"],
    "qianfan": ["qianfan-v1", "qianfan-v2"],
    "dashscope": ["dashscope", "dashscope-compatible"],
}
LIMITS = {"max_response_bytes": 65_536, "max_sse_line_bytes": 16_384}
HELLO: Any = [{"role": "user", "content": "hi"}]
TOKEN = {"access_token": "24.fuzz-token", "expires_in": 2592000}

# --------------------------------------------------------------------------- memory

#: What one example may allocate at its peak (the whole client or gateway call), and how
#: much the second half of the measured window may add to what the first half left
#: behind. The clients' limits hold answers to 64 KiB. Seen on this project's machine:
#: peaks of 90-200 KB (1.7 MB for a gateway's first calls), and 5-35 KB added by bounded
#: caches still filling (a leak of 400 bytes a call adds 80 KB over 200 calls).
MAX_PEAK_BYTES = 4 * 2**20
MAX_GROWTH_BYTES = 64 * 2**10
#: Code of the test harness, not of llm-bridge or the libraries it drives: the
#: hypothesis engine keeps a record of its examples, and the session's secret scan keeps
#: every error's text.
HARNESS = ("/hypothesis/", "/_pytest/", "/pluggy/", "/tests/")
#: Where pydantic builds a model's schema and validator: once per type, on its first use.
#: openai defers building its types until then, so a rare answer that first reaches one
#: (an event type, a nested detail) builds it in whichever example meets it, a one-time
#: cost like a module's first import, not growth per call; what validation keeps (the
#: values) is allocated elsewhere and still counted.
_SCHEMA_BUILDING = (
    "/pydantic/_internal/_generate_schema.py",
    "/pydantic/_internal/_model_construction.py",
    "/pydantic/_internal/_type_refs.py",
    "/pydantic/plugin/_schema_validator.py",
    "/pydantic_core/core_schema.py",
)
_STDLIB = sysconfig.get_paths()["stdlib"]
_INSTALLED = (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])


def allocated_by(traceback: tracemalloc.Traceback) -> tracemalloc.Frame:
    """The frame an allocation is charged to: the innermost one outside the standard
    library and generated code (a ``dict`` a hypothesis dataclass fills is hypothesis's,
    not ``<string>``'s or ``functools``')."""
    for frame in reversed(traceback):  # (innermost last)
        name = frame.filename
        if name.startswith("<") or (name.startswith(_STDLIB) and not name.startswith(_INSTALLED)):
            continue
        return frame
    return traceback[-1]


class MemoryWatch:
    """Bounded memory, measured.

    After a warm-up (a fifth of the profile's examples, and every tokenizer loaded:
    connection pools, token caches and lazily built tables fill there), tracemalloc
    follows a window of up to 400 examples. It records the largest peak of any one
    example above what was allocated before it, and what the window's second half adds
    to what its first half left behind, each after a full collection. Caches fill and
    stop; a leak keeps growing, so a call that leaks 400 bytes fails the CI profile.
    (Each traced example costs about three untraced ones: the window is kept short.)

    tracemalloc counts the whole process: another thread's work (a stream released in
    the background, an earlier test's ledger writer) or something done once (a module's
    first import, a source file read for a warning) lands in whichever example is running.
    So an example over the bound is run once more, and its peak is the lower of the two:
    what the example's input makes a call allocate comes back, a one-off does not. Growth
    over the bound is confirmed the same way: the window goes on for another half, and
    the growth is the lower of the last two halves' (a leak grows in both; an earlier
    test's writer finishing, or a buffer kept once, lands in one).

    Logging is off in the window: pytest keeps every record of a test, with its
    arguments (requests, URLs), which would show as growth that is pytest's, not ours.
    The examples before and after the window log as usual."""

    def __init__(
        self, settle: Callable[[], object] = lambda: None, examples: int = PROFILES[PROFILE]
    ) -> None:
        self.settle = settle  # run before each measure: work queued for later, done now
        self.start = examples // 5
        window = min(400, examples // 2)
        self.middle = self.start + window // 2
        self.end = self.start + window
        self.confirmed = self.end + window // 2  # the end of a growth's confirmation
        self.seen = 0
        self.peak = 0
        self.repeated = 0  # examples over the bound, run once more
        #: Bytes left behind: at the middle, the end and (if growth was confirmed) after.
        self.left: dict[str, int] = {}
        self.grown_by: list[str] = []
        self._measured: dict[str, int] = {}  # by line, at the last measure
        self._tracing = False
        for model, provider in [
            ("glm-4", "zhipu"),
            ("ernie-4.0-8k", "qianfan"),
            ("qwen-plus", "dashscope"),
        ]:
            count_tokens("warm-up", model, provider=provider)

    def example(self, call: Callable[[], T]) -> T:
        """``call()``'s result, measured if the example is in the window."""
        self.seen += 1
        if self.seen == self.start:
            logging.disable(logging.CRITICAL)
            gc.collect()
            tracemalloc.start(4)  # (frames to find who allocated, `allocated_by`; more cost more)
            self._tracing = True
        if not self._tracing or self.seen < self.start:
            result = call()
        else:
            result, peak = self._peak_of(call)
            if peak > MAX_PEAK_BYTES:
                self.repeated += 1
                peak = min(peak, self._peak_of(call)[1])
            self.peak = max(self.peak, peak)
        self._at_end_of_example()
        return result

    @staticmethod
    def _peak_of(call: Callable[[], T]) -> tuple[T, int]:
        """``call()``'s result, and the most it allocated at once above what was before."""
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        result = call()
        return result, tracemalloc.get_traced_memory()[1] - before

    def _at_end_of_example(self) -> None:
        """The left-behind measures: at the window's middle, at its end, and after
        another half if the growth by the end was over the bound."""
        if not self._tracing:
            return
        if self.seen == self.middle:
            self._measure("middle")
        if self.seen == self.end - 1:
            self._measure("end")
            if self.left["end"] - self.left["middle"] <= MAX_GROWTH_BYTES:
                self.stop()
        if self.seen == self.confirmed - 1:
            self._measure("after")
            self.stop()

    def _measure(self, point: str) -> None:
        """What is left behind at ``point``, and the lines that grew most since the last
        measure."""
        now = self._left_behind()
        self.left[point] = sum(now.values())
        if self._measured:
            grown = {at: size - self._measured.get(at, 0) for at, size in now.items()}
            top = sorted(grown.items(), key=lambda item: -item[1])[:8]
            self.grown_by = [f"{at}: +{size} B" for at, size in top]
        self._measured = now

    def _left_behind(self) -> dict[str, int]:
        """Bytes still allocated, by the line charged with them; the harness's left out."""
        self.settle()
        gc.collect()
        left: dict[str, int] = {}
        for trace in tracemalloc.take_snapshot().traces:
            if any(part in f.filename for f in trace.traceback for part in _SCHEMA_BUILDING):
                continue
            frame = allocated_by(trace.traceback)
            if not any(part in frame.filename for part in HARNESS):
                at = f"{frame.filename}:{frame.lineno}"
                left[at] = left.get(at, 0) + trace.size
        return left

    def stop(self) -> None:
        self._tracing = False
        tracemalloc.stop()
        logging.disable(logging.NOTSET)

    def check(self) -> None:
        """Fail unless the window was measured and stayed within the bounds."""
        self.stop()  # (if the run ended before the window did)
        assert "end" in self.left, (
            f"{self.seen} examples ran; the window is {self.start}-{self.end}"
        )
        growth = self.left["end"] - self.left["middle"]
        if growth > MAX_GROWTH_BYTES:
            assert "after" in self.left, (
                f"{self.seen} examples ran; growth of {growth} B needed confirming up to "
                f"example {self.confirmed}"
            )
            growth = min(growth, self.left["after"] - self.left["end"])
        print(
            f"memory: peak {self.peak} B per example ({self.repeated} run twice); "
            f"{growth} B added by the second half"
            + (" (the lower of two halves)" if "after" in self.left else "")
        )
        print(*self.grown_by[:4], sep="\n")
        assert self.peak <= MAX_PEAK_BYTES, f"one example peaked at {self.peak} bytes"
        assert growth <= MAX_GROWTH_BYTES, (
            f"examples {self.middle}-{self.end} and {self.end}-{self.confirmed} each added "
            f"at least {growth} bytes to what the examples before them left behind "
            "(the lines that grew most, last):\n" + "\n".join(self.grown_by)
        )


# A library function that leaks, as tracemalloc sees one (test code is the harness's).
_LIBRARY: dict[str, Any] = {}
exec(
    compile(
        "def work(kept, leak, size):\n"
        "    scratch = bytearray(size)  # a call's working memory, freed\n"
        "    if leak:\n"
        "        kept.append(bytes(leak))\n",
        "/site-packages/leaky/_work.py",
        "exec",
    ),
    _LIBRARY,
)


@pytest.mark.parametrize(
    ("leak", "size", "failure"),
    [(0, 10_000, None), (1_000, 10_000, "added"), (0, 5 * 2**20, "peaked")],
)
def test_the_memory_watch_finds_a_leak_and_a_peak(leak: int, size: int, failure: Any) -> None:
    """The watch itself can fail: a call that keeps 1 KB, or one that peaks at 5 MB."""
    kept: list[bytes] = []
    watch = MemoryWatch(examples=1_000)
    for _ in range(1_000):
        watch.example(lambda: _LIBRARY["work"](kept, leak, size))
    if failure is None:
        watch.check()
    else:
        with pytest.raises(AssertionError, match=failure):
            watch.check()


def test_the_memory_watch_forgives_a_peak_that_does_not_come_back() -> None:
    """A one-off (another thread's work, a first import) lands in one example; run once
    more, that example stays within the bound."""
    once = [5 * 2**20]  # (taken by the window's first example)
    watch = MemoryWatch(examples=1_000)

    def call() -> None:
        size = once.pop() if once and watch.seen >= watch.start else 10_000
        _LIBRARY["work"]([], 0, size)

    for _ in range(1_000):
        watch.example(call)
    watch.check()
    assert watch.repeated == 1 and watch.peak < 2**20


def test_the_memory_watch_forgives_growth_that_does_not_come_back() -> None:
    """Something kept once in the window's second half (an earlier test's writer
    finishing, a buffer grown once) is over the bound there, and not in the next half."""
    kept: list[bytes] = []
    watch = MemoryWatch(examples=1_000)

    def call() -> None:
        once = 100_000 if watch.seen == watch.middle + 10 else 0
        _LIBRARY["work"](kept, once, 10_000)

    for _ in range(1_000):
        watch.example(call)
    watch.check()
    assert watch.left["end"] - watch.left["middle"] > MAX_GROWTH_BYTES
    assert watch.left["after"] - watch.left["end"] < MAX_GROWTH_BYTES


# --------------------------------------------------------------------------- answers


@dataclass
class Answer:
    """What the provider answers: a status, headers and a body."""

    status: int
    headers: list[tuple[str, bytes]]
    body: bytes

    def response(self) -> httpx.Response:
        return httpx.Response(self.status, headers=self.headers, content=self.body)


STATUSES = st.sampled_from([200] * 8 + [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503]) | (
    st.integers(100, 599)
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/json; charset=utf-8",
        "text/event-stream",
        "text/event-stream;charset=UTF-8",
        "text/html",
        "text/plain",
        "application/octet-stream",
        "",
    ]
) | st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=24)
#: Header values of every shape: numbers, dates, words, raw bytes.
HEADER_VALUES = st.one_of(
    st.integers(-(10**3), 10**13).map(str),
    st.floats().map(str),
    st.sampled_from(
        [
            "Wed, 21 Oct 2015 07:28:00 GMT",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1970 00:00:00 GMT",
            "1e400",
            "0.5",
            "-1",
            "soon",
            "",
            "6m0s",
            "1s",
        ]
    ),
    st.binary(max_size=16).filter(lambda b: not any(c in b for c in b"\r\n\x00")),
)
HEADER_NAMES = st.sampled_from(
    [
        "retry-after",
        "retry-after-ms",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "x-request-id",
        "x-dashscope-request-id",
        "content-encoding",
        "x-should-retry",
    ]
)
ENCODINGS = st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "x-gzip", "compress"])


def _bytes(value: Any) -> bytes:
    return json.dumps(value).encode()  # (ensure_ascii: lone surrogates as escapes)


def _sse(events: list[str], done: bool, keep_alive: bool) -> bytes:
    gap = b": keep-alive\n\n" if keep_alive else b""
    body = b"".join(gap + b"data: " + e.encode("utf-8", "surrogatepass") + b"\n\n" for e in events)
    return body + (b"data: [DONE]\n\n" if done else b"")


def _nested(value: Any, depth: int, opener: str) -> bytes:
    """``value`` inside ``depth`` arrays or objects: past every parser's nesting limit."""
    inner = json.dumps(value)
    if opener == "[":
        return ("[" * depth + inner + "]" * depth).encode()
    return ('{"choices":' * depth + inner + "}" * depth).encode()


def _with_surrogate(value: Any) -> Any:
    """Text with a lone surrogate (JSON may carry one; UTF-8 cannot) wherever text is."""
    if isinstance(value, str):
        return value + "\ud800"
    if isinstance(value, list):
        return [_with_surrogate(v) for v in value]
    if isinstance(value, dict):
        return {k: _with_surrogate(v) for k, v in value.items()}
    return value


BODY = st.one_of(
    BODIES.map(_bytes),
    BODIES.map(lambda value: _bytes(_with_surrogate(value))),
    st.builds(
        _sse,
        st.lists(EVENT_DATA | BODIES.map(lambda v: json.dumps(_with_surrogate(v))), max_size=5),
        st.booleans(),
        st.booleans(),
    ),
    SSE_BYTES,
    st.binary(max_size=400),
    st.builds(_nested, BODIES, st.integers(100, 3000), st.sampled_from("[{")),
    st.tuples(BODIES.map(_bytes), st.floats(0, 1)).map(lambda t: t[0][: int(len(t[0]) * t[1])]),
)


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    headers: list[tuple[str, bytes]] = []
    content_type = draw(CONTENT_TYPES)
    if content_type:
        headers.append(("content-type", content_type.encode()))
    for name, value in draw(st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4)):
        headers.append((name, value if isinstance(value, bytes) else value.encode()))
    if draw(st.integers(0, 9)) == 0:
        headers.append(("content-encoding", draw(ENCODINGS).encode()))
    return Answer(draw(STATUSES), headers, draw(BODY))


# --------------------------------------------------------------------------- the client


class Provider:
    """A provider answering what it is told (tokens it hands out properly: the fuzz is
    of the API, not of Qianfan's OAuth endpoint, which has tests of its own)."""

    def __init__(self) -> None:
        self.answer = Answer(200, [], b"{}")

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/2.0/token"):
            return httpx.Response(200, json=TOKEN)
        return self.answer.response()


PROVIDER = Provider()


@functools.cache
def client(wire: str) -> OpenAI:
    """The client of a wire; one retry, so that a retryable answer's ``Retry-After`` and
    ``retry-after-ms`` are read (the waits are recorded, not slept: see `waits`)."""
    provider, kwargs, _ = CLIENTS[wire]
    config = {**kwargs.get("config", {}), "limits": LIMITS}
    kwargs = {**kwargs, "config": config}
    http = httpx.Client(transport=httpx.MockTransport(PROVIDER.handle))
    return OpenAI(provider=provider, http_client=http, max_retries=1, **kwargs)


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The waits between attempts are checked instead of slept: each must be a plain number
    of seconds within the longest wait llm-bridge honours, whatever the headers said.
    (Only the bad ones are kept: a list of every wait would grow with the examples.)"""
    bad: list[object] = []

    def sleep(seconds: float) -> None:
        if not (isinstance(seconds, (int, float)) and 0 <= seconds <= _retry.MAX_RETRY_AFTER):
            bad.append(seconds)

    async def async_sleep(seconds: float) -> None:
        sleep(seconds)

    monkeypatch.setattr(_retry, "sleep", sleep)
    monkeypatch.setattr(_retry, "async_sleep", async_sleep)
    yield
    assert not bad, f"waits out of range: {bad[:5]}"


def only_api_errors(call: Callable[[], Any], shown: Any) -> None:
    try:
        result = call()
        if hasattr(result, "__iter__") and not isinstance(result, (dict, list)):
            for _ in result:  # a stream: read to its end
                pass
    except APIError:
        pass
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__}: {exc} escaped for {shown!r}") from exc


def chat(wire: str, stream: bool) -> Any:
    return client(wire).chat.completions.create(
        model=MODELS[wire][0], messages=HELLO, stream=stream
    )


def embeddings(wire: str, stream: bool) -> Any:
    return client(wire).embeddings.create(model=MODELS[wire][1], input=["a", "b"])


def responses(wire: str, stream: bool) -> Any:
    return client(wire).responses.create(model=MODELS[wire][0], input="hi", stream=stream)


ENDPOINTS = {"chat": chat, "embeddings": embeddings, "responses": responses}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_the_client_raises_only_api_errors(
    provider: str, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    call = ENDPOINTS[endpoint]
    # The process's Responses store keeps the last 1,000 answers: bounded, but it would
    # still be filling in the measured window. A small one is full before it.
    monkeypatch.setattr(_response_store._DEFAULT, "capacity", 20)
    # The same for the reasoning each client keeps of its tool-calling answers.
    for wire in PROVIDERS[provider]:
        kept = _reasoning_memory.memory_for(client(wire).usage)
        monkeypatch.setattr(kept, "_size", 20)
        monkeypatch.setattr(kept, "_characters", 4096)
    memory = MemoryWatch()

    @FUZZ
    @given(answer=answers(), wire=st.sampled_from(PROVIDERS[provider]), stream=st.booleans())
    def check(answer: Answer, wire: str, stream: bool) -> None:
        PROVIDER.answer = answer
        memory.example(lambda: only_api_errors(lambda: call(wire, stream), (wire, stream, answer)))

    check()
    memory.check()


# --------------------------------------------------------------------------- the gateway

GATEWAY_KEY = "sk-fuzz-gateway"
GATEWAY_MODELS = {
    "zhipu": "zhipu/glm-4-flash",
    "qianfan": "qianfan/ernie-4.0-8k",
    "dashscope": "dashscope/qwen-plus",
}


def gateway_config(ledger: Path) -> dict[str, Any]:
    return {
        "providers": {
            "zhipu": {"api_key": "fuzzId.fuzzSecret"},
            "qianfan": {"api_key": "bce-v3/ALTAK-fuzz/secret"},
            "dashscope": {"api_key": "sk-fuzz-dashscope"},
        },
        "limits": LIMITS,
        "gateway": {
            "ledger": str(ledger),
            "keys": {"fuzz": {"key_sha256": hash_key(GATEWAY_KEY), "models": ["*"]}},
        },
    }


class Gateway:
    """The gateway app in this process, on an event loop the examples share."""

    def __init__(self, tmp: Path) -> None:
        self.loop = asyncio.new_event_loop()
        upstream = httpx.AsyncClient(transport=httpx.MockTransport(PROVIDER.handle))
        self.app: GatewayApp = create_app(
            gateway_config(tmp / "ledger.sqlite"), http_client=upstream
        )
        self.loop.run_until_complete(self.app.startup())
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {GATEWAY_KEY}"},
        )

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self.loop.run_until_complete(self.client.post(path, json=body))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.app.shutdown())
        self.loop.close()


def gateway_request(endpoint: str, model: str, stream: bool) -> tuple[str, dict[str, Any]]:
    if endpoint == "chat":
        return "/v1/chat/completions", {"model": model, "messages": HELLO, "stream": stream}
    return "/v1/responses", {"model": model, "input": "hi", "stream": stream}


@pytest.mark.timeout(1800)
@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize("provider", list(GATEWAY_MODELS))
def test_the_gateway_answers_every_upstream_with_http(
    provider: str, endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every request gets a status and a body: OpenAI's error JSON for an error, never the
    gateway's own "failed to answer" (an exception of ours that escaped)."""
    # The reasoning the gateway's engines keep, and the process's Responses store (which
    # a gateway without a shared state uses: 1,000 answers, filled in the window by the
    # gateway tests before this one or not, depending on their order), small enough to be
    # full before the window.
    monkeypatch.setattr(_response_store._DEFAULT, "capacity", 20)
    monkeypatch.setattr(_reasoning_memory, "_SIZE", 20)
    monkeypatch.setattr(_reasoning_memory, "_CHARACTERS", 4096)
    gateway = Gateway(tmp_path)
    # (the ledger's queue, which its writer thread drains at the disk's pace, emptied)
    memory = MemoryWatch(settle=lambda: gateway.loop.run_until_complete(gateway.app.ledger.flush()))

    @FUZZ
    @given(answer=answers(), stream=st.booleans())
    def check(answer: Answer, stream: bool) -> None:
        PROVIDER.answer = answer
        path, body = gateway_request(endpoint, GATEWAY_MODELS[provider], stream)
        response = memory.example(lambda: gateway.post(path, body))
        shown = (stream, answer, response.status_code, response.content[:300])
        assert 200 <= response.status_code < 600, shown
        if response.status_code >= 400:
            error = response.json().get("error")
            assert isinstance(error, dict) and isinstance(error.get("message"), str), shown
            assert "failed to answer" not in error["message"], shown
        elif stream:
            assert response.headers["content-type"].startswith("text/event-stream"), shown
        else:
            assert isinstance(response.json(), dict), shown

    try:
        check()
    finally:
        gateway.close()
    memory.check()


def test_an_unknown_profile_is_refused() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", "import test_fuzz"],
        cwd=Path(__file__).parent,
        env={**os.environ, "LLM_BRIDGE_FUZZ": "weekly"},
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "LLM_BRIDGE_FUZZ must be one of" in done.stderr
