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
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

import httpx

from ._auth import scrub
from ._errors import APIConnectionError, APIError, APITimeoutError
from ._shapes.chat import ChatCompletion, ChatCompletionChunk
from ._shapes.completion_usage import CompletionUsage
from ._sse import SSEDecoder
from .adapters._base import MALFORMED, CallContext, JSONDict, StreamParser
from .adapters._stop import StopScanner

__all__ = ["AsyncStream", "ChunkPipeline", "Stream", "aggregate"]

#: `ChatCompletionChunk.model_validate` without its Python-level wrapper (runs per chunk).
_validate_chunk = ChatCompletionChunk.__pydantic_validator__.validate_python


class ChunkPipeline:
    """Bytes of one provider stream in, OpenAI chunk models out. No I/O."""

    def __init__(
        self,
        parser: StreamParser,
        call: CallContext,
        response: httpx.Response,
        settle: Optional[
            Callable[[Optional[JSONDict], str, Optional[str], bool], Optional[JSONDict]]
        ] = None,
    ) -> None:
        self.parser = parser
        self.call = call
        self.response = response
        # The latest usage as the parser gave it, put in OpenAI's names only when read: a
        # provider that repeats running figures on every event has most never read.
        self._usage_given: Optional[JSONDict] = None
        self._usage: Optional[JSONDict] = None
        self._settle = settle
        self._settled = False
        # What reached the caller, to estimate usage if need be; None once the provider
        # gave figures of its own, which then stand (its later ones replace them).
        self._text: Optional[list[str]] = []
        self._decoder = SSEDecoder(parser.event_names)
        self._template: Optional[JSONDict] = None
        self._stop = StopScanner(call.emulated_stop) if call.emulated_stop else None
        if self._stop is not None:
            parser.typed_chunks = False  # stop sequences are cut out of dicts
        self._stopped = False
        self.held: Optional[APIError] = None  # see `feed`

    def end(self) -> Iterator[ChatCompletionChunk]:
        """Called when the body ends: flush, check the provider finished, add the usage chunk."""
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
        usage = self.settle()
        if self.call.include_usage and usage is not None and self._template is not None:
            yield self._validated({**self._template, "choices": [], "usage": usage})

    @property
    def usage(self) -> Optional[JSONDict]:
        """The provider's latest usage figures, in OpenAI's names (final once settled)."""
        if self._usage_given is not None:
            given, self._usage_given = self._usage_given, None
            try:
                usage = self.parser.usage_of(given)
                CompletionUsage.model_validate(usage)
            except MALFORMED:
                # Figures of a shape that cannot be read are dropped. The last good ones
                # stand, marked estimated: running figures undercount what came after them.
                if self._usage is not None:
                    self._usage = {**self._usage, "estimated": True}
            else:
                self._usage = usage
        return self._usage

    @usage.setter
    def usage(self, value: Optional[JSONDict]) -> None:
        self._usage, self._usage_given = value, None

    @property
    def complete(self) -> bool:
        """True once the provider said the stream is finished (or a stop word ended it)."""
        return bool(self.parser.done or getattr(self.parser, "finished", False) or self._stopped)

    def settle(self) -> Optional[JSONDict]:
        """Final usage, once: the provider's last figures, else an estimate of what was
        consumed. Called at the end of the stream, and when it breaks or is closed early.

        A stream abandoned until the interpreter exits is settled without a record: counting
        tokens then would import the tokenizer while imports no longer work."""
        if not self._settled:
            self._settled = True
            if self._settle is not None and not sys.is_finalizing():
                request_id = (self._template or {}).get("id") or None
                self.usage = self._settle(
                    self.usage, "".join(self._text or ()), request_id, self.complete
                )
        return self.usage

    def _consumed(self) -> str:
        return "usage so far unknown" if self.usage is None else f"usage so far {self.usage}"

    def feed(self, data: bytes, *, final: bool = False) -> list[ChatCompletionChunk]:
        """The chunks ``data`` (one network read) completes; ``final`` flushes the rest.

        Each event the read completes goes through the parser's `translate`, and its
        chunk through this loop: usage kept aside (the caller sees it only on the
        include_usage chunk at the end), emulated stop sequences applied, the text kept
        for an estimate, the model validated (unless the parser gave a typed one).
        What a stream costs over raw httpx is mostly Python work per event, so this is
        one flat loop with nothing per event but the parse, the translation and the
        validation.

        An error at a later event of the same read is held in `held` rather than raised,
        so that the chunks before it still reach the caller first; the stream raises it
        right after them."""
        events = self._decoder.flush() if final else self._decoder.feed(data)
        chunks: list[ChatCompletionChunk] = []
        parser = self.parser
        translate = parser.translate
        provider, text, stop = self.call.provider, self._text, self._stop
        for event in events:
            try:
                chunk = translate(event)  # raises only the APIError family
                if chunk is None:
                    continue
                if chunk.__class__ is not dict:  # a typed chunk (see `StreamParser.translate`)
                    if parser.usage_given is not None:
                        usage, parser.usage_given = parser.usage_given, None
                        text = self._given(usage)
                    if self._template is None:
                        self._template = self._template_of(chunk)
                    if text is not None:  # the text the dict way keeps, for such a chunk
                        for choice in chunk.choices:
                            delta = choice.delta
                            if delta.content is not None:
                                text.append(delta.content)
                            if delta.__pydantic_extra__:
                                reasoning = delta.__pydantic_extra__.get("reasoning_content")
                                if isinstance(reasoning, str):
                                    text.append(reasoning)
                    chunks.append(chunk)
                    continue
                if "usage" in chunk:
                    text = self._given(chunk.pop("usage"))
                if self._template is None:
                    self._template = {
                        k: chunk[k] for k in ("id", "created", "model", "object") if k in chunk
                    }
                    self._template["provider"] = provider
                choices = chunk.get("choices")
                if not choices:
                    continue  # a usage-only chunk: its figures are kept for the end
                if stop is not None and not self._apply_stop(chunk):
                    continue
                chunk["provider"] = provider
                if text is not None:
                    for choice in choices:
                        delta = choice.get("delta")
                        if delta:
                            content = delta.get("content")
                            if content.__class__ is str:
                                text.append(content)
                            if "reasoning_content" in delta or "tool_calls" in delta:
                                self._remember(text, delta)
                try:
                    chunks.append(_validate_chunk(chunk))
                except ValueError as exc:  # pydantic's ValidationError: OpenAI's type rejects it
                    raise self._invalid(chunk, exc) from None
            except APIError as error:
                if not chunks:
                    raise
                self.held = error
                break
        return chunks

    def _given(self, usage: Any) -> Optional[list[str]]:
        """Keep an event's usage figures aside (where a provider repeats running figures,
        the last count); returns the text still kept for an estimate, which is none once
        the provider's own figures can be read."""
        if usage and usage.__class__ is dict:
            self._usage_given = usage
            if self._text is not None and self.usage is not None:
                self._text = None
        return self._text

    def _template_of(self, chunk: ChatCompletionChunk) -> JSONDict:
        """What every chunk of the stream shares, for the include_usage chunk at the end."""
        template = {k: getattr(chunk, k) for k in ("id", "created", "model", "object")}
        return {**template, "provider": self.call.provider}

    def _validated(self, chunk: JSONDict) -> ChatCompletionChunk:
        try:
            return _validate_chunk(chunk)
        except ValueError as exc:
            raise self._invalid(chunk, exc) from None

    def _invalid(self, chunk: JSONDict, reason: Exception) -> APIError:
        """The error for a chunk OpenAI's type cannot hold."""
        return self.parser.adapter.invalid_body(
            self.response, chunk, f"a stream chunk the OpenAI types cannot hold ({reason})"
        )

    @staticmethod
    def _remember(text: list[str], delta: JSONDict) -> None:
        """Keep a delta's reasoning and tool-call text (its content is kept by the caller)."""
        if isinstance(delta.get("reasoning_content"), str):
            text.append(delta["reasoning_content"])
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict):  # any other shape fails validation just after
                text.extend(str(function.get(k) or "") for k in ("name", "arguments"))

    def _apply_stop(self, chunk: JSONDict) -> bool:
        """Cut content at an emulated stop sequence; False when the chunk has nothing left."""
        assert self._stop is not None
        if self._stopped:
            return False
        for choice in chunk["choices"]:
            delta = choice.get("delta")
            if not delta:
                delta = choice["delta"] = {}  # (attached: held text may be released into it)
            if isinstance(delta.get("content"), str):
                delta["content"] = self._stop.feed(delta["content"])
            if self._stop.stopped:
                choice["finish_reason"] = "stop"
                self._stopped = True
            elif choice.get("finish_reason") is not None:
                held = self._stop.flush()
                content = delta.get("content")
                if held and (content is None or isinstance(content, str)):
                    delta["content"] = (content or "") + held  # (other content fails validation)
        return True

    @property
    def usage_model(self) -> Optional[CompletionUsage]:
        return None if self.usage is None else CompletionUsage.model_validate(self.usage)


def _identity(response: httpx.Response) -> bool:
    """True when the body is not content-encoded: its raw bytes are then read directly,
    skipping httpx's decoder layers (one call per network read each)."""
    if response.is_stream_consumed:  # already read into memory: only iter_bytes serves it
        return False
    return response.headers.get("content-encoding", "identity").lower() in ("identity", "")


def _broken(error: httpx.HTTPError, pipeline: ChunkPipeline) -> APIConnectionError:
    request = pipeline.response.request
    if isinstance(error, httpx.TimeoutException):
        return APITimeoutError(request, provider=pipeline.call.provider)
    return APIConnectionError(
        message=scrub(
            f"{pipeline.call.provider} stream broke mid-way: {error} ({pipeline._consumed()})"
        ),
        request=request,
        provider=pipeline.call.provider,
    )


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


class Stream(_StreamBase):
    """A synchronous stream of `ChatCompletionChunk`; iterate it, then it closes itself."""

    def __init__(self, response: httpx.Response, pipeline: ChunkPipeline) -> None:
        self.response = response
        self._pipeline = pipeline
        self._iterator = self._chunks()
        self._head: list[ChatCompletionChunk] = []

    def prime(self) -> None:
        """Read up to the first chunk now, so that a failure before it (an error event, a
        cut connection) happens while the call can still be retried."""
        for chunk in self._iterator:
            self._head.append(chunk)
            break

    def _chunks(self) -> Iterator[ChatCompletionChunk]:
        pipeline = self._pipeline
        try:
            body = self.response.iter_raw() if _identity(self.response) else None
            for data in body or self.response.iter_bytes():
                yield from pipeline.feed(data)
                if pipeline.held is not None:
                    raise pipeline.held
            yield from pipeline.end()
        except httpx.HTTPError as error:
            raise _broken(error, self._pipeline) from error
        finally:
            try:
                self._pipeline.settle()
            finally:
                self.response.close()

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        # The chunks generator behind a C-level chain, not `self`: a for loop then runs
        # without a Python-level __next__ per chunk. A chain, unlike `yield from`, leaves
        # the generator open when a loop is left early, so iterating can resume.
        return itertools.chain(self._drain_head(), self._iterator)

    def _drain_head(self) -> Iterator[ChatCompletionChunk]:
        while self._head:  # the primed first chunk, unless next() took it already
            yield self._head.pop()

    def __next__(self) -> ChatCompletionChunk:
        if self._head:
            return self._head.pop()
        return next(self._iterator)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the connection; iteration stops; what was consumed is recorded."""
        try:
            self._iterator.close()
            self._pipeline.settle()
        finally:
            self.response.close()


class AsyncStream(_StreamBase):
    """The asynchronous twin of `Stream`: ``async for chunk in stream``."""

    def __init__(self, response: httpx.Response, pipeline: ChunkPipeline) -> None:
        self.response = response
        self._pipeline = pipeline
        self._iterator = self._chunks()
        self._head: list[ChatCompletionChunk] = []

    async def prime(self) -> None:
        """Read up to the first chunk now (see `Stream.prime`)."""
        async for chunk in self._iterator:
            self._head.append(chunk)
            break

    async def _chunks(self) -> AsyncIterator[ChatCompletionChunk]:
        pipeline = self._pipeline
        try:
            body = self.response.aiter_raw() if _identity(self.response) else None
            async for data in body or self.response.aiter_bytes():
                for chunk in pipeline.feed(data):
                    yield chunk
                if pipeline.held is not None:
                    raise pipeline.held
            for chunk in pipeline.end():
                yield chunk
        except httpx.HTTPError as error:
            raise _broken(error, self._pipeline) from error
        finally:
            try:
                self._pipeline.settle()
            finally:
                await self.response.aclose()

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        while self._head:  # the primed first chunk, unless __anext__ took it already
            yield self._head.pop()
        async for chunk in self._iterator:
            yield chunk

    async def __anext__(self) -> ChatCompletionChunk:
        if self._head:
            return self._head.pop()
        return await self._iterator.__anext__()

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    async def close(self) -> None:
        try:
            await self._iterator.aclose()
            self._pipeline.settle()
        finally:
            await self.response.aclose()


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
    for index, calls in tools.items():
        if calls:
            choices[index]["message"]["tool_calls"] = [calls[i] for i in sorted(calls)]
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
    for call in delta.tool_calls or []:
        into = calls.setdefault(
            call.index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        into["id"] = call.id or into["id"]
        if call.function is not None:
            into["function"]["name"] += call.function.name or ""
            into["function"]["arguments"] += call.function.arguments or ""
