"""A provider's own Responses stream (DashScope compatible mode), passed through.

Where the provider serves OpenAI's Responses API itself, its events are already in
openai's shapes: they are handed on as they come. What this pipeline adds is what the
engine adds to every stream: an error event or ``response.failed`` from the provider
raises its mapped `APIError` (before anything reached the caller, so it can be retried),
a body that ends before ``response.completed`` (or ``incomplete``) raises, and the usage
of ``response.completed`` is recorded once — or, for a stream cut short, estimated from the
text that was seen.

It has the interface `llm_bridge._streaming.Stream` drives (`feed`, `end`, `settle`,
``held``), so the same sync and async stream classes carry it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Callable, Optional

import httpx
from pydantic_core import from_json

from ._errors import APIConnectionError, APIError, InternalServerError
from ._sse import SSEDecoder
from ._stream_reading import StreamClock, decode
from ._wire import reply_of
from .adapters._base import Adapter, CallContext

__all__ = ["ResponsesEventPipeline", "chat_usage"]

JSONDict = dict[str, Any]

#: The events that end a response.
_FINAL = frozenset({"response.completed", "response.incomplete"})
#: The delta events of what the model generates (an estimate of a cut stream counts them),
#: and those of them that are reasoning (counted as reasoning tokens too).
_REASONING = frozenset({"response.reasoning_summary_text.delta", "response.reasoning_text.delta"})
_GENERATED = _REASONING | {
    "response.output_text.delta",
    "response.refusal.delta",
    "response.function_call_arguments.delta",
}
#: The counts chat's ``prompt_tokens_details`` declares (integers; the rest are extras).
_COUNTS = frozenset(
    {"audio_tokens", "cache_write_tokens", "cached_tokens", "image_tokens", "text_tokens"}
)


def chat_usage(usage: Any) -> Optional[JSONDict]:
    """A Responses ``usage`` in chat completions' names (what the ledger records).

    ``input_tokens_details`` becomes ``prompt_tokens_details`` whole: its cache figures
    (``cached_tokens``, ``cache_write_tokens``, and a provider's own, such as DashScope's
    ``cache_creation_input_tokens`` and ``cache_type``) have the names chat gives them, and
    the ledger prices cache reads and writes from them."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    figures: JSONDict = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _whole(usage.get("total_tokens")) or prompt + completion,
    }
    details = usage.get("input_tokens_details")
    if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
        # A count chat's type declares is kept only as a whole number, so an odd value
        # from upstream cannot fail the ledger's parsing of the rest.
        figures["prompt_tokens_details"] = {
            name: value
            for name, value in details.items()
            if name not in _COUNTS or isinstance(value, int)
        }
    reasoning = _field(usage.get("output_tokens_details"), "reasoning_tokens")
    if isinstance(reasoning, int):
        figures["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return figures


def _whole(value: Any) -> Optional[int]:
    """``value`` if it is a whole number (not a boolean), else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _field(value: Any, name: str) -> Any:
    """``value[name]`` if ``value`` is an object, else None: a provider's answer of
    another shape is read as one without the field, not an `AttributeError`."""
    return value.get(name) if isinstance(value, dict) else None


class ResponsesEventPipeline:
    """Responses events from the provider's SSE bytes, checked and passed on as dicts."""

    def __init__(
        self,
        adapter: Adapter,
        call: CallContext,
        response: httpx.Response,
        settle: Callable[
            [Optional[JSONDict], str, Optional[str], bool, bool, str], Optional[JSONDict]
        ],
        max_event_bytes: Optional[int] = None,
        clock: Optional[StreamClock] = None,
    ) -> None:
        self.adapter = adapter
        self.clock = clock  # the stream's idle timeout and deadline
        self.call = call
        self.response = response
        self._settle = settle
        self._decoder = SSEDecoder(("error",), max_event_bytes=max_event_bytes)
        self._text: list[str] = []  # what was generated: text, reasoning, call arguments
        self._reasoning: list[str] = []
        self._usage: Optional[JSONDict] = None
        self._response_id: Optional[str] = None
        self._settled = False
        self.complete = False
        self.held: Optional[APIError] = None
        #: Never: a passed-through Responses stream has no stop applied here (the chat
        #: pipeline's `ended`, read by the stream loops both share).
        self.ended = False

    def feed(self, data: bytes, *, final: bool = False) -> list[JSONDict]:
        """The events ``data`` completes; an error after some of them is held (as in the
        chat pipeline) so that those reach the caller first."""
        events = decode(self._decoder, data, final, self.response, self.call.provider, self.clock)
        out: list[JSONDict] = []
        for event in events:
            raw = event if isinstance(event, bytes) else event.raw
            if isinstance(raw, str):
                raw = raw.encode()
            if not raw.strip() or raw == b"[DONE]":
                continue
            try:
                out.extend(self._event(raw))
            except APIError as error:
                if not out:
                    raise
                self.held = error
                break
        return out

    def _event(self, raw: bytes) -> Iterator[JSONDict]:
        try:
            data = from_json(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise self.adapter.invalid_body(raw, "a Responses event that is not one").api_error(
                self.response
            )
        kind = data["type"]
        if kind == "error" or kind == "response.failed":
            error = _field(data.get("response"), "error") if kind == "response.failed" else data
            if isinstance(error, str):
                error = {"message": error}
            raise self.adapter.make_error(
                reply_of(self.response, read=False),
                {"error": error},
                str(_field(error, "code") or "server_error"),
                _field(error, "message"),
                default=InternalServerError,
            ).api_error(self.response)
        delta = data.get("delta")
        if kind in _GENERATED and isinstance(delta, str):
            self._text.append(delta)
            if kind in _REASONING:
                self._reasoning.append(delta)
        elif kind in _FINAL:
            finished = data.get("response")
            self._usage = chat_usage(_field(finished, "usage"))
            self._response_id = _field(finished, "id")
            self.complete = True
        elif kind == "response.created":  # (the provider began: a cut from now is billed)
            self._response_id = _field(data.get("response"), "id") or ""
        yield data

    def _consumed(self) -> str:
        return f"{len(self._text)} text deltas so far"

    @property
    def usage_model(self) -> Any:
        """The recorded figures (as the chat pipeline's ``usage_model``), once settled."""
        from ._shapes.completion_usage import CompletionUsage

        return CompletionUsage.model_validate(self._usage) if self._usage else None

    def end(self) -> Iterator[JSONDict]:
        """Called when the body ends: flush, and check the provider finished."""
        yield from self.feed(b"", final=True)
        if self.held is not None:
            raise self.held
        if not self.complete:
            raise APIConnectionError(
                message=f"{self.call.provider} Responses stream ended before the response "
                f"completed (connection closed early)",
                request=self.response.request,
                provider=self.call.provider,
            )
        self.settle()

    def settle(self) -> Optional[JSONDict]:
        """Record the usage once: the provider's, else an estimate of the text seen."""
        if not self._settled:
            self._settled = True
            began = self._response_id is not None  # (the provider began its response)
            self._usage = self._settle(
                self._usage,
                "".join(self._text),
                self._response_id or None,
                self.complete,
                began,
                "".join(self._reasoning),
            )
        return self._usage
