"""`Stream` and `AsyncStream`: what ``create(stream=True)`` returns, as in openai.

Both are thin loops over `ChunkPipeline`, which holds everything that is not I/O: SSE
decoding, the adapter's event parser, usage bookkeeping, client-side stop sequences and
the end-of-stream checks. OpenAI's stream contract, kept for every provider:

* with ``stream_options={"include_usage": True}`` the last chunk has ``choices == []``
  and ``usage`` set; without it no chunk carries usage (providers that put usage on
  every event, or on the finish chunk, are normalised);
* a stream that ends before the provider said it was finished, or breaks, raises an
  `APIError` subclass: it never just stops;
* leaving the ``with`` block or calling ``close()`` releases the connection.

A stream left unclosed is released when it is no longer referenced, by reference counting:
no object here refers back to the stream that holds it (its chunk loop is a generator
given the response and the pipeline, never the stream), so `for chunk in stream: break`
releases the connection at the end of the loop. A release the garbage collector triggers
(an unclosed stream held in someone else's reference cycle, openai's own ``Stream`` for
one) is handed to a thread of its own instead of run there: see `_release`.
"""

from __future__ import annotations

import gc
import inspect
import itertools
import logging
import os
import queue
import sys
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import Any, Callable, Optional, cast

import httpx

from ._auth import scrub
from ._errors import APIConnectionError, APIError, APITimeoutError
from ._reasoning_memory import ReasoningMemory
from ._shapes.chat import ChatCompletion, ChatCompletionChunk
from ._shapes.completion_usage import CompletionUsage
from ._sse import SSEDecoder
from ._stream_reading import StreamClock, decode
from ._tool_call_deltas import ToolCallHeads
from ._wire import Fault
from .adapters._base import MALFORMED, CallContext, JSONDict, StreamParser

__all__ = ["AsyncStream", "ChunkPipeline", "Stream", "aggregate", "unlink_openai_stream"]

#: `ChatCompletionChunk.model_validate` without its Python-level wrapper.
_validate_chunk = ChatCompletionChunk.__pydantic_validator__.validate_python


class ChunkPipeline:
    """Bytes of one provider stream in, OpenAI chunk models out. No I/O."""

    def __init__(
        self,
        parser: StreamParser,
        call: CallContext,
        response: httpx.Response,
        settle: Optional[
            Callable[[Optional[JSONDict], str, Optional[str], bool, bool, str], Optional[JSONDict]]
        ] = None,
        max_event_bytes: Optional[int] = None,
        clock: Optional[StreamClock] = None,
        reasoning: Optional[ReasoningMemory] = None,
    ) -> None:
        self.parser = parser
        self.clock = clock  # the stream's idle timeout and deadline
        self.call = call
        self.response = response
        # The last usage figures read (in OpenAI's names), and the latest given since, as
        # the provider named them: a provider that repeats running figures on every event
        # has most of them never read (see `usage`).
        self._usage: Optional[JSONDict] = None
        self._usage_given: Optional[JSONDict] = None
        self._settle = settle
        self._settled = False
        # What reached the caller, to estimate usage if need be; None once the provider
        # gave figures of its own, which then stand (its later ones replace them).
        self._text: Optional[list[str]] = []
        self._thought = _Thought(reasoning)  # reasoning beside tool calls, to remember
        self._calls = ToolCallHeads(parser.adapter.new_call_id)  # each call's header, sent once
        self._decoder = SSEDecoder(parser.event_names, max_event_bytes=max_event_bytes)
        self.held: Optional[APIError] = None  # see `feed`
        self.answered = False  # whether any chunk was made (see `end`)

    @property
    def ended(self) -> bool:
        """True once a stop sequence applied here (one the provider was not sent) ended the
        text. Nothing the provider sends after it reaches the caller, so the stream ends
        there, as OpenAI's does at a stop sequence, rather than reading (and having the
        provider generate and bill) the rest of the answer."""
        return self.parser.stopped

    def end(self) -> Iterator[ChatCompletionChunk]:
        """Called when the body ends (or the text `ended` before it): flush, check the
        provider finished, add the usage chunk. The rest of a body the text ended before is
        not read, so what is left of it in the decoder (part of an event) is dropped."""
        if not self.ended:
            yield from self.feed(b"", final=True)
        if self.held is not None:
            raise self.held
        if not self.complete:
            raise APIConnectionError(
                message=f"{self.call.provider} stream ended before the provider finished it "
                f"(connection closed early; {self._consumed()})",
                request=self.response.request,
                provider=self.call.provider,
            )
        if not self.answered:
            raise self._unanswered()
        usage = self.settle()
        head = self.parser.head
        if self.call.include_usage and usage is not None and head is not None:
            chunk = {**head, "choices": [], "usage": usage}
            try:
                yield _validate_chunk(chunk)
            except ValueError as exc:  # pydantic's ValidationError
                raise self.parser.invalid_chunk(chunk, exc).api_error(self.response) from None

    @property
    def usage(self) -> Optional[JSONDict]:
        """The provider's latest usage figures, in OpenAI's names (final once settled).

        Figures of a shape that cannot be read do not count: the last readable ones stand,
        marked estimated, as running figures undercount what came after them. Reading
        changes nothing (the latest figures are read again until newer ones come)."""
        given = self._usage_given
        if given is None:
            return self._usage
        usage = self._read_usage(given)
        if usage is not None:
            return usage
        return None if self._usage is None else {**self._usage, "estimated": True}

    @usage.setter
    def usage(self, value: Optional[JSONDict]) -> None:
        self._usage, self._usage_given = value, None

    def _read_usage(self, given: JSONDict) -> Optional[JSONDict]:
        """Figures as the parser got them, in OpenAI's names; None when unreadable."""
        try:
            usage = self.parser.usage_of(given)
            CompletionUsage.model_validate(usage)
        except MALFORMED:
            return None
        return usage

    @property
    def complete(self) -> bool:
        """True once the provider said the stream is finished (or a stop word ended it)."""
        return self.parser.done or self.parser.finished

    def settle(self) -> Optional[JSONDict]:
        """Final usage, once: the provider's last figures, else an estimate of what was
        consumed. Called at the end of the stream, and when it breaks or is closed early.

        A stream abandoned until the interpreter exits is settled without a record: counting
        tokens then would import the tokenizer while imports no longer work."""
        if not self._settled:
            self._settled = True
            self._thought.keep()
            if self._settle is not None and not sys.is_finalizing():
                request_id = (self.parser.head or {}).get("id") or None
                self.usage = self._settle(
                    self.usage,
                    "".join(self._text or ()),
                    request_id,
                    self.complete,
                    self.answered,
                    self._thought.text(),
                )
        return self.usage

    def _unanswered(self) -> APIError:
        """The error for a stream the provider finished without a single chunk: no text,
        no tool call, no finish reason. A non-stream answer with nothing in it is refused
        the same way; passed on, it would be an empty stream, on which openai's stream
        helper (``chat.completions.stream``) fails with a bare ``AssertionError``."""
        what = "a stream that ended without an answer (no text, tool call or finish reason)"
        return self.parser.adapter.invalid_body(None, what).api_error(self.response)

    def _consumed(self) -> str:
        return "usage so far unknown" if self.usage is None else f"usage so far {self.usage}"

    def feed(self, data: bytes, *, final: bool = False) -> list[ChatCompletionChunk]:
        """The chunks ``data`` (one network read) completes; ``final`` flushes the rest.

        Each event the read completes goes through the parser's `translate`, and what it
        gives (`Translated`) through this loop: usage kept aside (the caller sees it only
        on the include_usage chunk at the end), the text kept for an estimate, the chunk
        passed on. What a stream costs over raw httpx is mostly Python work per event, so
        this is one flat loop with nothing per event but the parse and the translation.

        An error at a later event of the same read is held in `held` rather than raised,
        so that the chunks before it still reach the caller first; the stream raises it
        right after them. A fault the parser raises or gives becomes its `APIError` here,
        for this stream's response (raised outside the handler: see
        `llm_bridge._wire.call_adapter`)."""
        events = decode(self._decoder, data, final, self.response, self.call.provider, self.clock)
        chunks: list[ChatCompletionChunk] = []
        translate = self.parser.translate
        text = self._text
        error: Optional[APIError] = None
        for event in events:
            try:
                translated = translate(event)  # raises only faults
                if translated is None:
                    continue
                chunk, usage, fault = translated
                if usage is not None:
                    text = self._given(usage)
                if chunk is None:
                    if fault is not None:
                        if text is not None:
                            text += _text_of_dict(fault.body)
                        raise fault
                    continue
                for choice in chunk.choices:
                    delta = choice.delta
                    if delta.__pydantic_extra__:
                        reasoning = delta.__pydantic_extra__.get("reasoning_content")
                        if isinstance(reasoning, str):
                            self._thought.note(choice.index, reasoning)
                            if text is not None:
                                text.append(reasoning)
                    calls = delta.tool_calls
                    if calls:
                        self._calls.tidy(choice.index, calls)
                        self._thought.calls(choice.index, calls)
                        if text is not None:
                            for call in calls:
                                if call.function is not None:
                                    text += call.function.name or "", call.function.arguments or ""
                    if text is not None and delta.content is not None:
                        text.append(delta.content)
                    if calls and len(calls) > 1 and len(chunk.choices) == 1:
                        chunks += _one_call_a_chunk(chunk)  # (only tool-call chunks look)
                        break
                else:
                    chunks.append(chunk)
            except Fault as fault:
                error = fault.api_error(self.response)
                break
        if error is not None:
            if not chunks:
                raise error
            self.held = error
        if chunks:
            self.answered = True
        return chunks

    def _given(self, usage: JSONDict) -> Optional[list[str]]:
        """Keep an event's usage figures aside (where a provider repeats running figures,
        the last count); returns the text still kept for an estimate, which is none once
        the provider's own figures can be read. Figures are read here only until then;
        later ones wait for `usage` (most are replaced before anything asks)."""
        if self._text is None:
            self._usage_given = usage
        else:
            read = self._read_usage(usage)
            if read is not None:
                self._usage, self._text = read, None
        return self._text

    @property
    def usage_model(self) -> Optional[CompletionUsage]:
        return None if self.usage is None else CompletionUsage.model_validate(self.usage)


def _text_of_dict(chunk: Any) -> Iterator[str]:
    """The text of a chunk dict the OpenAI types could not hold (its fault's body), kept
    for an estimate all the same: the provider produced it, though the caller gets the
    error instead of the chunk."""
    for choice in chunk["choices"]:
        delta = choice.get("delta")
        if not delta:
            continue
        if delta.get("content").__class__ is str:
            yield delta["content"]
        if isinstance(delta.get("reasoning_content"), str):
            yield delta["reasoning_content"]
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):
                yield from (str(function.get(k) or "") for k in ("name", "arguments"))


class _Thought:
    """A stream's reasoning text and tool call ids, per choice, handed to the reasoning
    memory when the stream settles (`llm_bridge._reasoning_memory`)."""

    __slots__ = ("ids", "memory", "texts")

    def __init__(self, memory: Optional[ReasoningMemory]) -> None:
        self.memory = memory
        self.texts: dict[int, list[str]] = {}
        self.ids: dict[int, list[str]] = {}

    def note(self, index: int, reasoning: str) -> None:
        texts = self.texts.get(index)
        if texts is None:
            texts = self.texts[index] = []
        texts.append(reasoning)

    def calls(self, index: int, calls: Any) -> None:
        ids = [call.id for call in calls if call.id]
        if ids:
            self.ids.setdefault(index, []).extend(ids)

    def text(self) -> str:
        """All the reasoning read (every choice's), for an estimate of reasoning tokens."""
        return "".join(piece for texts in self.texts.values() for piece in texts)

    def keep(self) -> None:
        if self.memory is None:
            return
        for index, ids in self.ids.items():
            self.memory.remember(ids, "".join(self.texts.get(index, ())))


def _one_call_a_chunk(chunk: ChatCompletionChunk) -> list[ChatCompletionChunk]:
    """A chunk of one choice holding several tool calls (GLM and Qianfan send a turn's
    calls in one event) as one chunk per call, as OpenAI streams them: code reading only
    a delta's first call (llama-index's streamed tool calls) lost the others. The first
    keeps the rest of the delta (role, text, reasoning), the last the finish reason."""
    (choice,) = chunk.choices
    calls = choice.delta.tool_calls or []
    last = len(calls) - 1
    out = []
    for position, call in enumerate(calls):
        if position == 0:
            delta = choice.delta.model_copy(update={"tool_calls": [call]})
        else:
            delta = type(choice.delta)(tool_calls=[call])
        finish = choice.finish_reason if position == last else None
        part = choice.model_copy(update={"delta": delta, "finish_reason": finish})
        out.append(chunk.model_copy(update={"choices": [part]}))
    return out


def _identity(response: httpx.Response) -> bool:
    """True when the body is not content-encoded: its raw bytes are then read directly,
    skipping httpx's decoder layers (one call per network read each)."""
    if response.is_stream_consumed:  # already read into memory: only iter_bytes serves it
        return False
    return response.headers.get("content-encoding", "identity").lower() in ("identity", "")


def _broken(error: httpx.HTTPError, pipeline: ChunkPipeline) -> APIConnectionError:
    request = pipeline.response.request
    if isinstance(error, httpx.TimeoutException):
        clock = pipeline.clock
        late = clock.timed_out(pipeline.response, pipeline.call.provider) if clock else None
        return late or APITimeoutError(request, provider=pipeline.call.provider)
    return APIConnectionError(
        message=scrub(
            f"{pipeline.call.provider} stream broke mid-way: {error} ({pipeline._consumed()})"
        ),
        request=request,
        provider=pipeline.call.provider,
    )


# --------------------------------------------------------------------------- release


#: The thread running a garbage collection at this moment, if any (see `_release`).
_collector: Optional[int] = None


def _note_collection(
    phase: str, info: dict[str, Any], _ident: Callable[[], int] = threading.get_ident
) -> None:
    """A `gc.callbacks` entry: which thread, if any, is inside a collection now.

    Finalisers run inside the collection, in the thread it interrupted, at whatever point
    that thread had reached: possibly inside httpcore's connection-pool lock (a
    non-reentrant ``threading.Lock``) or the usage ledger's. (``_ident`` is bound now:
    collections go on while the interpreter exits, after module globals are cleared.)"""
    global _collector
    _collector = _ident() if phase == "start" else None


gc.callbacks.append(_note_collection)

_log = logging.getLogger("llm_bridge")


#: A sync stream's body: httpx's iterator of its bytes, a generator.
_Body = Generator[bytes, None, None]

#: The bodies of the sync streams being read (see `_chunks`).
_reading: set[_Body] = set()


def _release_now(pipeline: Any, response: httpx.Response, reads: Optional[_Body]) -> None:
    """Record what the stream consumed (once); close its body iterator and its response."""
    try:
        pipeline.settle()
    finally:
        try:
            if reads is not None:
                _reading.discard(reads)
                reads.close()
        finally:
            response.close()


def _release(pipeline: Any, response: httpx.Response, reads: Optional[_Body] = None) -> None:
    """Release a sync stream: now, unless that could block the thread for ever.

    Closing a response takes its connection pool's lock, and settling takes the usage
    ledger's and calls ``on_usage``. Called from a finaliser inside a garbage collection,
    the thread may already hold such a lock, taken by the code the collector interrupted,
    and would wait for itself: the release goes to the releaser thread instead, which
    takes the lock once that code lets go of it. The same while the interpreter exits,
    when a daemon thread stopped mid-request may hold a lock that is never released.
    Anywhere else (``close()``, a ``with`` block, the end of the stream, the last
    reference dropped) it is done now, in the caller's thread."""
    if _collector == threading.get_ident() or sys.is_finalizing():
        _releaser.put((pipeline, response, reads))
    else:
        _detached(_release_now, pipeline, response, reads)


class _Detached(Exception):
    """The exception `_detached` handles while it runs its function."""


def _detached(release: Callable[..., None], *args: Any) -> None:
    """``release(*args)`` as if no exception were being handled.

    A stream abandoned mid-loop is released while a ``GeneratorExit`` is handled (ours,
    chained to the abandoning generator's, whose frame holds, say, openai's ``Stream``).
    Every exception raised meanwhile takes the one being handled as its ``__context__``:
    closing the body throws a ``GeneratorExit`` through httpx's ``contextmanager``
    blocks, and on Python 3.10 ``contextlib`` leaves each such exception in a cycle with
    the frame that handled it, so the chain, and the abandoned streams on it, would wait
    for the garbage collector. Handling an exception of our own, with no context and no
    traceback, gives them that as their context instead: a dead end. An exception the
    release raises itself (a user's ``on_usage``) is passed on without that marker."""
    try:
        raise _Detached
    except _Detached as detached:
        detached.__context__ = detached.__traceback__ = None
        try:
            release(*args)
        except BaseException as error:
            if error.__context__ is detached:
                error.__context__ = None
            raise


class _Releaser:
    """A daemon thread releasing the streams `_release` could not release where it ran.

    Started with the first sync stream of a process (never from a finaliser: starting a
    thread takes locks of its own), and again in a child after ``fork``."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()  # put() is reentrant
        self._pid = 0

    def start(self) -> None:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="llm-bridge-release", daemon=True).start()

    def put(self, release: tuple[Any, httpx.Response, Optional[_Body]]) -> None:
        self._queue.put(release)

    def wait(self, timeout: float) -> bool:
        """Wait until everything handed over so far is released (True) or ``timeout``
        seconds pass (False). For tests."""
        self.start()
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def _run(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if isinstance(item, threading.Event):
                item.set()
            else:
                try:
                    _release_now(*item)
                except Exception:  # an on_usage callback, a broken connection's close
                    _log.warning("releasing an abandoned stream failed", exc_info=True)
            item = None  # the last one released is not kept alive while waiting


_releaser = _Releaser()


# --------------------------------------------------------------------------- streams


class _StreamBase:
    response: httpx.Response
    _pipeline: ChunkPipeline

    @property
    def usage(self) -> Optional[CompletionUsage]:
        """The usage the provider reported so far (the final figures once consumed)."""
        return self._pipeline.usage_model

    @property
    def provider(self) -> str:
        return self._pipeline.call.provider

    @property
    def request_id(self) -> Optional[str]:
        """The id the stream's chunks carry (the provider's request or task id), once one
        was read; None for a pipeline without chunks (a Responses pass-through)."""
        parser = getattr(self._pipeline, "parser", None)
        head = getattr(parser, "head", None) or {}
        request_id = head.get("id")
        return request_id if isinstance(request_id, str) else None


def _chunks(
    response: httpx.Response, pipeline: ChunkPipeline
) -> Generator[ChatCompletionChunk, None, None]:
    """A sync stream's chunks, read from ``response``; releases it however it ends.

    A function of the response and the pipeline rather than a method: a generator of the
    stream's own would refer to the stream that holds it, a cycle only the garbage
    collector frees, and an abandoned stream would keep its connection until it ran.

    The body iterator is kept in `_reading` until `_release` closes it. httpx's body
    iterators are generators, and httpcore's innermost one closes the connection when it
    is finalised, taking the pool's lock: were it reachable only from garbage (this
    generator, in a cycle of someone else's), the collector would finalise it itself,
    inside whatever the thread was doing when it ran."""
    reads: Optional[_Body] = None
    failure: Optional[APIConnectionError] = None
    try:
        reads = cast(_Body, response.iter_raw() if _identity(response) else response.iter_bytes())
        _reading.add(reads)
        for data in reads:
            yield from pipeline.feed(data)
            if pipeline.held is not None:
                raise pipeline.held
            if pipeline.ended:
                break
        yield from pipeline.end()
    except httpx.HTTPError as error:
        failure = _broken(error, pipeline)
    finally:
        _release(pipeline, response, reads)
    if failure is not None:  # past the handler: see `_engine._transport_error`
        raise failure


class Stream(_StreamBase):
    """A synchronous stream of `ChatCompletionChunk`; iterate it, then it closes itself."""

    def __init__(self, response: httpx.Response, pipeline: ChunkPipeline) -> None:
        _releaser.start()
        self.response = response
        self._pipeline = pipeline
        self._iterator = _chunks(response, pipeline)
        self._head: list[ChatCompletionChunk] = []

    def prime(self) -> None:
        """Read up to the first chunk now, so that a failure before it (an error event, a
        cut connection) happens while the call can still be retried."""
        for chunk in self._iterator:
            self._head.append(chunk)
            break

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        # The chunks generator behind a C-level chain, not `self`: a for loop then runs
        # without a Python-level __next__ per chunk. A chain, unlike `yield from`, leaves
        # the generator open when a loop is left early, so iterating can resume.
        return itertools.chain(_drain(self._head), self._iterator)

    def __next__(self) -> ChatCompletionChunk:
        if self._head:
            return self._head.pop()
        return next(self._iterator)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection; iteration stops; what was consumed is recorded.

        Closing from another thread than the one iterating (a "stop" button's) while that
        one waits for the provider leaves the chunk loop to it: a running generator cannot
        be closed (``ValueError: generator already executing``). Its wait ends on the
        closed response, and the loop releases as it ends, as openai's streams do."""
        iterator = self._iterator
        try:
            if inspect.getgeneratorstate(iterator) != inspect.GEN_RUNNING:
                iterator.close()  # a started loop releases as it ends
        finally:
            _release(self._pipeline, self.response)  # (once: both steps are idempotent)


def _drain(head: list[ChatCompletionChunk]) -> Iterator[ChatCompletionChunk]:
    """The primed first chunk, unless next() took it already."""
    while head:
        yield head.pop()


async def _achunks(
    response: httpx.Response, pipeline: ChunkPipeline
) -> AsyncGenerator[ChatCompletionChunk, None]:
    """An async stream's chunks (see `_chunks`). An abandoned one is closed by the event
    loop's async-generator finaliser, as a task: never inside the collector."""
    failure: Optional[APIConnectionError] = None
    try:
        body = response.aiter_raw() if _identity(response) else None
        async for data in body or response.aiter_bytes():
            for chunk in pipeline.feed(data):
                yield chunk
            if pipeline.held is not None:
                raise pipeline.held
            if pipeline.ended:
                break
        for chunk in pipeline.end():
            yield chunk
    except httpx.HTTPError as error:
        failure = _broken(error, pipeline)
    finally:
        try:
            pipeline.settle()
        finally:
            await response.aclose()
    if failure is not None:  # past the handler: see `_engine._transport_error`
        raise failure


class AsyncStream(_StreamBase):
    """The asynchronous twin of `Stream`: ``async for chunk in stream``."""

    def __init__(self, response: httpx.Response, pipeline: ChunkPipeline) -> None:
        self.response = response
        self._pipeline = pipeline
        self._iterator = _achunks(response, pipeline)
        self._head: list[ChatCompletionChunk] = []

    async def prime(self) -> None:
        """Read up to the first chunk now (see `Stream.prime`)."""
        async for chunk in self._iterator:
            self._head.append(chunk)
            break

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return _aiterate(self._head, self._iterator)

    async def __anext__(self) -> ChatCompletionChunk:
        if self._head:
            return self._head.pop()
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the connection (see `Stream.close`).

        The response is closed before the chunk loop, and a loop in the middle of a step
        is not closed but left to finish it: an abandoned stream's loop and what holds it
        are closed by the event loop as separate tasks, in any order, and closing a loop
        another task is closing raises. Once the response is closed, closing the loop runs
        to its end in one step, leaving no such task an opening; a step still reading ends
        on the closed response."""
        try:
            self._pipeline.settle()
        finally:
            try:
                await self.response.aclose()
            finally:
                if getattr(self._iterator, "ag_await", None) is None:  # at a chunk, or done
                    await self._iterator.aclose()


async def _aiterate(
    head: list[ChatCompletionChunk], chunks: AsyncIterator[ChatCompletionChunk]
) -> AsyncIterator[ChatCompletionChunk]:
    """The primed first chunk (unless __anext__ took it), then the rest; leaving the loop
    early leaves ``chunks`` open, so iterating can resume."""
    while head:
        yield head.pop()
    async for chunk in chunks:
        yield chunk


def unlink_openai_stream(stream: Any) -> None:
    """Make openai's ``Stream`` or ``AsyncStream`` freed by reference counting.

    openai builds a stream's iterator as ``self._iterator = self.__stream__()``: a
    generator whose frame holds the stream that holds it. Such a stream, abandoned
    unclosed (``for chunk in stream: break``), waits for the garbage collector, and with
    it the response under it and the provider connection under that. Here the iterator is
    rebuilt on a copy of the stream that does not hold it: the same response, client,
    decoder and options, no cycle; dropping the stream then closes its response at once.

    For ``llm_bridge.OpenAI``/``AsyncOpenAI``, whose streams these are, as openai hands a
    stream over and before anything reads it. Anything but openai's own unstarted
    ``__stream__`` of the stream's class (another openai version's layout) is left as it
    is. The generator's frame is not looked into: on Python 3.13.0 a view of a generator's
    locals that outlives the generator crashes the interpreter (CPython gh-125723)."""
    iterator = getattr(stream, "__dict__", {}).get("_iterator")
    own = getattr(getattr(type(stream), "__stream__", None), "__code__", None)
    code = getattr(iterator, "gi_code", None) or getattr(iterator, "ag_code", None)
    if own is None or code is not own or _started(iterator):
        return
    view = object.__new__(type(stream))
    view.__dict__.update(stream.__dict__)
    del view.__dict__["_iterator"]
    stream._iterator = view.__stream__()


def _started(iterator: Any) -> bool:
    """Whether a generator (or async generator) has run: running, suspended at a
    ``yield`` (known from Python 3.12 for async generators, 3.11 for generators), or
    finished. (Where suspension cannot be told, `unlink_openai_stream`'s caller, which
    runs before anything can read the stream, is what ensures it has not started.)"""
    prefix = "ag_" if hasattr(iterator, "ag_code") else "gi_"
    return bool(
        getattr(iterator, prefix + "running", False)
        or getattr(iterator, prefix + "suspended", False)
        or getattr(iterator, prefix + "frame", None) is None
    )


def aggregate(
    chunks: list[ChatCompletionChunk], usage: Optional[CompletionUsage]
) -> ChatCompletion:
    """A whole stream as the `ChatCompletion` a non-stream call returns.

    Serves models that only stream (QwQ, Qwen3 thinking) when the caller did not ask for a
    stream: content, reasoning and tool-call fragments are joined per choice.
    """
    choices: dict[int, JSONDict] = {}
    tools: dict[int, dict[int, JSONDict]] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            into = choices.setdefault(
                choice.index,
                {
                    "index": choice.index,
                    "finish_reason": None,
                    "message": {"role": "assistant", "content": None},
                },
            )
            _merge_delta(into["message"], choice.delta, tools.setdefault(choice.index, {}))
            if choice.finish_reason is not None:
                into["finish_reason"] = choice.finish_reason
            if choice.logprobs is not None:  # (asked for: each chunk's tokens, in order)
                kept = into.setdefault("logprobs", {"content": [], "refusal": None})
                kept["content"] += [p.model_dump() for p in choice.logprobs.content or ()]
    for index, calls in tools.items():
        if calls:
            message = choices[index]["message"]
            message["tool_calls"] = [calls[i] for i in sorted(calls)]
            if message["content"] == "":  # (only tool calls: OpenAI's content is null)
                message["content"] = None
    head = chunks[0].model_dump(exclude={"choices", "usage", "object"}) if chunks else {}
    return ChatCompletion.model_validate(
        {
            **head,
            "object": "chat.completion",
            "choices": [choices[i] for i in sorted(choices)],
            "usage": usage.model_dump() if usage is not None else None,
        }
    )


def _merge_delta(message: JSONDict, delta: Any, calls: dict[int, JSONDict]) -> None:
    for field in ("content", "reasoning_content"):
        piece = getattr(delta, field, None)
        if isinstance(piece, str):
            message[field] = (message.get(field) or "") + piece
    legacy = delta.function_call  # (an answer to openai's deprecated ``functions``)
    if legacy is not None:
        into = message.setdefault("function_call", {"name": "", "arguments": ""})
        into["name"] += legacy.name or ""
        into["arguments"] += legacy.arguments or ""
    for call in delta.tool_calls or []:
        into = calls.setdefault(
            call.index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        into["id"] = call.id or into["id"]
        if call.function is not None:
            into["function"]["name"] += call.function.name or ""
            into["function"]["arguments"] += call.function.arguments or ""
