"""Abandoned streams are freed by reference counting, and a garbage collection never hangs on
one (issue 19, item 1).

``for chunk in client.chat.completions.create(..., stream=True): break``, with no ``with`` and
no ``close()``, used to hang the client for ever: the stream's generator referred back to the
stream, so only the cyclic collector freed it, and when the collector ran inside httpcore's
connection-pool lock (a plain ``threading.Lock``) during a later request, the finaliser's
``response.close()`` waited on that same lock. With the collector off, every abandoned stream
kept its pool connection and its two loopback sockets.

Everything here runs against a real loopback server (`llm_bridge.testing.serve`), through
the upstream client's real connection pool:

* with the collector off, thousands of streams are abandoned mid-answer; the pool's
  connections and the process's sockets come back to where they started, and each stream's
  estimated usage is recorded once, at once: our own streams, and openai's over them for
  ``llm_bridge.OpenAI`` and ``AsyncOpenAI``;
* a stream only the collector can free (held in a reference cycle, as openai's own
  ``Stream`` holds ours under ``openai.OpenAI(http_client=llm_bridge.http_client())``) is
  released on the releaser thread, never inside the collection;
* in a child process with a deadline, so that a hang fails instead of stalling the suite: a
  collection run while the thread holds the pool's lock and an ``on_usage`` callback's lock
  returns, and the break-out pattern runs hundreds of times under aggressive collector
  thresholds.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any, Callable

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge import _streaming, _transport
from llm_bridge.testing import FakeZhipu, serve

KEY = "id.secret"
HELLO: Any = [{"role": "user", "content": "你好"}]
#: Long enough that every stream is abandoned with most of its answer unread.
TEXT = "一二三四五六七八九十" * 5
#: Streams abandoned with the collector off, per door (thousands where the time allows).
ABANDONED = {
    "Stream": 2000,
    "llm_bridge.OpenAI": 1000,
    "llm_bridge.OpenAI, Responses": 100,
    "openai.OpenAI+http_client, unlinked": 200,
    "AsyncStream": 500,
    "llm_bridge.AsyncOpenAI": 500,
}

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts sockets in /proc/self/fd"
)


def sockets() -> int:
    """The process's open sockets (the loopback server's included)."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # closed since listed
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
    return count


def connections(upstream: Any) -> list[Any]:
    """The upstream httpx client's pool connections (httpcore's)."""
    return list(upstream._transport._pool.connections)


def settled(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``check`` holds within ``seconds`` (the server closes its ends of the
    connections on its own threads)."""
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def stream_objects() -> list[Any]:
    kinds = (_streaming.Stream, _streaming.AsyncStream, openai.Stream, openai.AsyncStream)
    return [o for o in gc.get_objects() if isinstance(o, kinds)]


@pytest.fixture
def server() -> Iterator[Any]:
    with serve(FakeZhipu(api_key=KEY).reply(TEXT, chunk_size=1)) as running:
        yield running


@pytest.fixture
def no_collector() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


def root_of(server: Any) -> str:
    return server.url + "/api/paas/v4"


def plain_client(server: Any, upstream: httpx.Client, on_usage: Any) -> openai.OpenAI:
    bridge = llm_bridge.http_client(
        provider="zhipu",
        http_client=upstream,
        on_usage=on_usage,
        config={"providers": {"zhipu": {"base_url": root_of(server)}}},
    )
    return openai.OpenAI(api_key=KEY, base_url=root_of(server), http_client=bridge)


# --------------------------------------------------------------------------- collector off


def abandon_ours(client: Any) -> None:
    """Our own `Stream`, as the engine hands it to the transport."""
    engine = client._engine
    stream = engine.chat(
        {"model": "glm-4-flash", "messages": HELLO, "stream": True}, engine.options()
    )
    for _chunk in stream.parsed:
        break


def abandon_openais(client: Any) -> None:
    """openai's `Stream` over ours, as ``llm_bridge.OpenAI`` returns it."""
    for _chunk in client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True):
        break


def abandon_responses(client: Any) -> None:
    """openai's Responses event stream, over our chat stream translated into events."""
    for _event in client.responses.create(model="glm-4-flash", input="你好", stream=True):
        break


def abandon_unlinked(client: Any) -> None:
    """A plain openai client's stream, unlinked as ``llm_bridge.OpenAI`` unlinks its own."""
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    _streaming.unlink_openai_stream(stream)
    for _chunk in stream:
        break


SYNC_DOORS = {
    "Stream": ("bridged", abandon_ours),
    # These two, and llm_bridge.AsyncOpenAI below, rely on llm_bridge.OpenAI unlinking the
    # openai streams it returns (`_streaming.unlink_openai_stream`, called in _client.py).
    "llm_bridge.OpenAI": ("bridged", abandon_openais),
    "llm_bridge.OpenAI, Responses": ("bridged", abandon_responses),
    "openai.OpenAI+http_client, unlinked": ("plain", abandon_unlinked),
}


@pytest.mark.parametrize("door", list(SYNC_DOORS))
def test_abandoned_sync_streams_are_released_without_the_collector(
    door: str, server: Any, no_collector: None
) -> None:
    kind, abandon = SYNC_DOORS[door]
    records: list[Any] = []
    upstream = httpx.Client()
    if kind == "bridged":
        client: Any = llm_bridge.OpenAI(
            provider="zhipu",
            api_key=KEY,
            base_url=root_of(server),
            http_client=upstream,
            on_usage=records.append,
        )
    else:
        client = plain_client(server, upstream, records.append)
    before = sockets()
    for count in range(1, ABANDONED[door] + 1):
        abandon(client)
        # Released as the loop was left: no connection kept, the usage recorded at once.
        assert connections(upstream) == [] and len(records) == count, count
    assert stream_objects() == []
    assert settled(lambda: sockets() == before), (sockets(), before)
    assert all(record.estimated for record in records)
    client.close()
    upstream.close()


@pytest.mark.parametrize("door", ["AsyncStream", "llm_bridge.AsyncOpenAI"])
async def test_abandoned_async_streams_are_released_without_the_collector(
    door: str, server: Any, no_collector: None
) -> None:
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    records: list[Any] = []
    upstream = httpx.AsyncClient()
    client = llm_bridge.AsyncOpenAI(
        provider="zhipu",
        api_key=KEY,
        base_url=root_of(server),
        http_client=upstream,
        on_usage=records.append,
    )
    before = sockets()
    for count in range(1, ABANDONED[door] + 1):
        if door == "AsyncStream":
            engine = client._engine
            params = {"model": "glm-4-flash", "messages": HELLO, "stream": True}
            result = await engine.chat(params, engine.options())
            async for _chunk in result.parsed:
                break
            del result
        else:
            stream = await client.chat.completions.create(
                model="glm-4-flash", messages=HELLO, stream=True
            )
            async for _chunk in stream:
                break
            del stream
        # The event loop closes abandoned async generators as tasks of its own: a few steps.
        for _ in range(50):
            if not connections(upstream) and len(records) == count:
                break
            await asyncio.sleep(0)
        assert connections(upstream) == [] and len(records) == count, count
    for _ in range(50):  # the last stream's tasks may still be finishing
        if not stream_objects():
            break
        await asyncio.sleep(0)
    assert stream_objects() == []
    assert errors == []
    await client.close()
    await upstream.aclose()
    assert settled(lambda: sockets() == before), (sockets(), before)


# Python 3.10's contextlib keeps every exception a @contextmanager re-raises in a cycle with
# its own frame (fixed in 3.11), and closing httpx's body iterators re-raises GeneratorExit
# through several. The two tests below fail without what keeps our streams out of those
# cycles on any Python; the tests above, run on 3.10 in CI, show it is enough.


def test_a_release_raises_nothing_chained_to_the_exception_being_handled() -> None:
    contexts: list[Any] = []

    def release() -> None:
        try:
            raise GeneratorExit  # as closing httpx's body iterator raises inside
        except GeneratorExit as inner:
            contexts.append(inner.__context__)

    try:
        raise GeneratorExit  # the abandoned loop's, chained to whatever abandoned it
    except GeneratorExit:
        _streaming._detached(release)
    (context,) = contexts
    assert not isinstance(context, GeneratorExit)
    assert context.__context__ is None and context.__traceback__ is None


def test_what_a_release_raises_carries_no_trace_of_the_marker() -> None:
    def release() -> None:
        raise ValueError("on_usage failed")

    with pytest.raises(ValueError) as raised:
        _streaming._detached(release)
    assert raised.value.__context__ is None


class ChatStream:
    """What a stream body reads: a chat stream with nothing left to send."""

    closed = False

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> Any:
        raise StopAsyncIteration


def test_a_closed_stream_body_lets_go_of_its_chat_stream() -> None:
    class Chat(ChatStream):
        def close(self) -> None:
            self.closed = True

    chat = Chat()
    body = _transport._SSEBody(chat)
    body.close()
    assert chat.closed
    gone = weakref.ref(chat)
    del chat
    assert gone() is None, "a closed body still holds its chat stream"
    assert list(body) == []


async def test_a_closed_async_stream_body_lets_go_of_its_chat_stream() -> None:
    class Chat(ChatStream):
        async def close(self) -> None:
            self.closed = True

    chat = Chat()
    body = _transport._AsyncSSEBody(chat)
    await body.aclose()
    assert chat.closed
    gone = weakref.ref(chat)
    del chat
    assert gone() is None, "a closed body still holds its chat stream"
    assert [event async for event in body] == []


# --------------------------------------------------------------------------- the collector


def test_a_stream_only_the_collector_frees_is_released_on_the_releaser_thread(
    server: Any,
) -> None:
    threads: list[str] = []
    upstream = httpx.Client()
    client = plain_client(
        server, upstream, lambda record: threads.append(threading.current_thread().name)
    )
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    next(stream)
    cycle: list[Any] = [stream]
    cycle.append(cycle)  # a cycle of our own, whatever openai's stream does
    del stream, cycle
    gc.collect()
    assert _streaming._releaser.wait(10)
    assert threads == ["llm-bridge-release"]
    assert connections(upstream) == []
    upstream.close()


async def test_async_streams_the_collector_frees_close_without_errors(server: Any) -> None:
    # Under a plain openai.AsyncOpenAI, openai's stream holds ours in a reference cycle: the
    # collector finalises the lot at once, and the event loop closes each async generator
    # as a task of its own, in any order. None may find another already closing.
    errors: list[dict[str, Any]] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: errors.append(context))
    records: list[Any] = []
    upstream = httpx.AsyncClient()
    bridge = llm_bridge.async_http_client(
        provider="zhipu",
        http_client=upstream,
        on_usage=records.append,
        config={"providers": {"zhipu": {"base_url": root_of(server)}}},
    )
    client = openai.AsyncOpenAI(api_key=KEY, base_url=root_of(server), http_client=bridge)
    for count in range(1, 61):
        stream = await client.chat.completions.create(
            model="glm-4-flash", messages=HELLO, stream=True
        )
        async for _chunk in stream:
            break
        del stream
        if count % 10 == 0:
            gc.collect()
    for _ in range(200):
        gc.collect()  # (what the closing tasks leave behind, too)
        if not connections(upstream) and len(records) == 60:
            break
        await asyncio.sleep(0.01)
    assert errors == []
    assert connections(upstream) == [] and len(records) == 60
    await upstream.aclose()


CHILD = """
import faulthandler, gc, sys, threading

faulthandler.dump_traceback_later({deadline}, exit=True)  # a hang fails, with every stack

import httpx, openai

import llm_bridge
from llm_bridge import _streaming, _transport
from llm_bridge.testing import FakeZhipu, serve

KEY = "id.secret"
HELLO = [{{"role": "user", "content": "你好"}}]
door = sys.argv[1]
held = threading.Lock()  # taken by on_usage, as a callback guarding its own state would
records = []


def on_usage(record):
    with held:
        records.append(record)


def create():
    return client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)


with serve(FakeZhipu(api_key=KEY).reply("一二三四五六七八九十" * 5, chunk_size=1)) as server:
    root = server.url + "/api/paas/v4"
    upstream = httpx.Client()
    if door == "llm_bridge.OpenAI":
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key=KEY, base_url=root, http_client=upstream, on_usage=on_usage
        )
    else:
        bridge = llm_bridge.http_client(
            provider="zhipu",
            http_client=upstream,
            on_usage=on_usage,
            config={{"providers": {{"zhipu": {{"base_url": root}}}}}},
        )
        client = openai.OpenAI(api_key=KEY, base_url=root, http_client=bridge)
    pool = upstream._transport._pool

    # A collection while this thread holds the pool's lock (httpcore's, not reentrant) and
    # the callback's, freeing an abandoned stream held in a reference cycle, returns.
    stream = create()
    next(stream)
    cycle = [stream]
    cycle.append(cycle)
    del stream, cycle
    with pool._optional_thread_lock, held:
        gc.collect()
    assert _streaming._releaser.wait(10)
    assert not pool.connections and len(records) == 1, (pool.connections, records)
    print("collected inside the locks", flush=True)

    # The break-out pattern, the collector running at nearly every allocation.
    for thresholds, rounds in (((300, 5, 5), 300), ((1, 1, 1), 50)):
        gc.set_threshold(*thresholds)
        for _ in range(rounds):
            for chunk in create():
                break
    gc.set_threshold(700, 10, 10)
    gc.collect()
    assert _streaming._releaser.wait(10)
    assert not pool.connections, pool.connections
    assert len(records) == 351 and all(r.estimated for r in records), len(records)
    print("broke out 350 times", flush=True)
"""

#: Seconds the child may take (it needs a few).
DEADLINE = 60


@pytest.mark.parametrize("door", ["llm_bridge.OpenAI", "openai.OpenAI+http_client"])
def test_breaking_out_under_an_eager_collector_never_hangs(door: str, tmp_path: Any) -> None:
    script = tmp_path / "break_out.py"
    script.write_text(textwrap.dedent(CHILD.format(deadline=DEADLINE)), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), door],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=DEADLINE + 30,
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        cwd=tmp_path,
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    assert done.stdout.splitlines() == ["collected inside the locks", "broke out 350 times"]
    assert done.stderr == ""
