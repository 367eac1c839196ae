"""Provider-neutral scripted outcomes for the fake providers.

A test queues these small immutable values on a fake (``fake.reply(...)``, ``fake.fail(...)``,
``fake.then(Reply(...))``); each fake renders them into its own provider's native wire format.
Keeping the *what happens* here and the *how it looks on the wire* in the provider modules lets
one script drive the Zhipu, Qianfan and DashScope fakes alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

#: Failure kinds every provider fake knows how to render into its native error.
FAILURE_KINDS = frozenset(
    {
        "rate_limit",
        "overloaded",
        "arrears",
        "auth",
        "content_filter",
        "context_length",
        "server_error",
        "model_not_found",
        "bad_request",
    }
)

#: Characters per streamed content chunk unless an outcome says otherwise.
DEFAULT_CHUNK_SIZE = 4


def _check_kind(kind: str) -> None:
    """Reject unknown failure kinds early, at scripting time rather than request time."""
    if kind not in FAILURE_KINDS:
        raise ValueError(f"unknown failure kind {kind!r}; expected one of {sorted(FAILURE_KINDS)}")


def _check_chunking(after_chunks: int, chunk_size: int) -> None:
    """Reject chunk counts and sizes that cannot describe a stream."""
    if after_chunks < 0:
        raise ValueError("after_chunks must be >= 0")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")


def chunk_text(text: str, size: int) -> list[str]:
    """Split ``text`` into pieces of ``size`` characters (code points, never mid-character)."""
    return [text[i : i + size] for i in range(0, len(text), size)]


@dataclass(frozen=True)
class ToolCallSpec:
    """One function call the fake model makes.

    ``arguments`` may be a dict (serialised as compact JSON) or a string sent verbatim, which
    lets a test script malformed JSON. ``id`` of None lets the provider fake invent one in its
    native format.
    """

    name: str
    arguments: Union[Dict[str, Any], str]
    id: Optional[str] = None

    def arguments_json(self) -> str:
        """The arguments as the JSON string providers put on the wire."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True)
class Reply:
    """A successful answer.

    ``finish_reason`` None means natural: ``"tool_calls"`` when there are tool calls, else
    ``"stop"``. ``usage`` None means computed deterministically from text lengths.
    ``chunk_size`` is the number of characters per streamed content chunk. ``stopped_by``
    is the request's stop word that ended the answer (set by the fakes, `stopped`; a wire
    whose natural finish is not ``"stop"``, Qianfan v1's ``"normal"``, reports it as
    ``"stop"``).
    """

    content: str = ""
    tool_calls: Sequence[ToolCallSpec] = ()
    finish_reason: Optional[str] = None
    usage: Optional[Mapping[str, Any]] = None
    reasoning_content: Optional[str] = None
    chunk_size: int = DEFAULT_CHUNK_SIZE
    stopped_by: Optional[str] = None

    def __post_init__(self) -> None:
        _check_chunking(0, self.chunk_size)
        # Freeze a caller's list so the dataclass stays immutable.
        object.__setattr__(self, "tool_calls", tuple(self.tool_calls))
        for call in self.tool_calls:  # (said now, not as an AttributeError at a request)
            if not isinstance(call, ToolCallSpec):
                raise TypeError(f"tool_calls: expected ToolCallSpec(name, arguments), got {call!r}")

    def resolved_finish_reason(self) -> str:
        """The finish reason to send: the scripted one, or the natural one."""
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def completion_text(self) -> str:
        """Everything the model "generated", used to compute deterministic usage."""
        parts = [self.reasoning_content or "", self.content]
        parts += [call.name + call.arguments_json() for call in self.tool_calls]
        return "".join(parts)


@dataclass(frozen=True)
class Failure:
    """An HTTP error answer; each provider maps ``kind`` to its native status, code and body.

    ``status``, ``message`` and ``code`` override the provider's defaults for that kind;
    ``headers`` are added to the response (e.g. ``{"Retry-After": "2"}``).
    """

    kind: str
    status: Optional[int] = None
    message: Optional[str] = None
    code: Optional[str] = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_kind(self.kind)


@dataclass(frozen=True)
class Raw:
    """A byte-exact answer, for wire shapes the scripted outcomes cannot express."""

    status: int
    body: Union[bytes, str] = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def body_bytes(self) -> bytes:
        """The body as bytes (str bodies are UTF-8 encoded)."""
        return self.body.encode("utf-8") if isinstance(self.body, str) else self.body


@dataclass(frozen=True)
class StreamCut:
    """A stream that sends ``after_chunks`` content chunks, then stops without a terminator.

    ``cut_raises`` True ends with ``httpx.RemoteProtocolError`` (what httpx raises when the
    peer drops the connection); False ends with a clean but premature EOF.
    """

    after_chunks: int
    content: str = ""
    cut_raises: bool = True
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        _check_chunking(self.after_chunks, self.chunk_size)


@dataclass(frozen=True)
class MidStreamError:
    """A stream that sends ``after_chunks`` content chunks, then a native error event."""

    after_chunks: int
    kind: str = "content_filter"
    content: str = ""
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        _check_kind(self.kind)
        _check_chunking(self.after_chunks, self.chunk_size)


@dataclass(frozen=True)
class Sensitive:
    """An answer the provider's safety filter stops after ``after_chunks`` content chunks.

    Streams end with the provider's content-filter finish; non-stream answers carry the
    partial text with that finish reason.
    """

    after_chunks: int = 0
    content: str = ""
    chunk_size: int = DEFAULT_CHUNK_SIZE

    def __post_init__(self) -> None:
        _check_chunking(self.after_chunks, self.chunk_size)


#: Anything a fake can be scripted to answer with.
Outcome = Union[Reply, Failure, Raw, StreamCut, MidStreamError, Sensitive]
#: The classes of `Outcome` (what ``then()`` takes).
OUTCOMES = (Reply, Failure, Raw, StreamCut, MidStreamError, Sensitive)


def stop_words(value: Any) -> Tuple[str, ...]:
    """The stop words of a request's ``stop`` field: one string or a list of them. Anything
    else in the list (DashScope's token-id lists) and empty strings are not text to find."""
    words = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    return tuple(word for word in words if isinstance(word, str) and word)


def stopped(outcome: Outcome, words: Sequence[str]) -> Outcome:
    """``outcome`` as a model sent stop ``words`` generates it: a `Reply` whose content holds
    one ends before the earliest, with ``finish_reason`` "stop" and without the tool calls
    it would have made after it (generation ended there). Computed usage follows the cut
    text; a scripted ``usage`` stands as written. Anything else, and a Reply without a stop
    word, is returned unchanged (interrupted outcomes end on their own terms)."""
    if not isinstance(outcome, Reply):
        return outcome
    positions = [(outcome.content.find(word), word) for word in words]
    found = [(at, word) for at, word in positions if at >= 0]
    if not found:
        return outcome
    at, word = min(found)
    return replace(
        outcome,
        content=outcome.content[:at],
        tool_calls=(),
        finish_reason="stop",
        stopped_by=word,
    )


def sent_chunks(outcome: Union[StreamCut, MidStreamError, Sensitive]) -> Tuple[str, ...]:
    """The content chunks an interrupted outcome delivers before it is interrupted."""
    return tuple(chunk_text(outcome.content, outcome.chunk_size)[: outcome.after_chunks])
