"""One server-sent chunk of a streamed ``client.chat.completions.create(stream=True)``.

Mirrors ``openai.types.chat.chat_completion_chunk``.  As for the non-streamed response,
``finish_reason`` and ``role`` accept any string, and a reasoning model's chain of thought
arrives as the extra ``delta.reasoning_content``.
"""

from typing import List, Optional

from .._base import BaseModel
from ..completion_usage import CompletionUsage
from .chat_completion import ChoiceLogprobs, FinishReason

__all__ = [
    "ChatCompletionChunk",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaAudio",
    "ChoiceDeltaFunctionCall",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallFunction",
    "ChoiceLogprobs",
]


class ChoiceDeltaAudio(BaseModel):
    """A piece of streamed audio output: an id, base64 data, transcript text or expiry."""

    id: Optional[str] = None
    data: Optional[str] = None
    expires_at: Optional[int] = None
    transcript: Optional[str] = None


class ChoiceDeltaFunctionCall(BaseModel):
    """A fragment of a legacy ``function_call``; concatenate ``arguments`` across chunks."""

    arguments: Optional[str] = None
    name: Optional[str] = None


class ChoiceDeltaToolCallFunction(BaseModel):
    """A fragment of a tool call's function; concatenate ``arguments`` across chunks."""

    arguments: Optional[str] = None
    name: Optional[str] = None


class ChoiceDeltaToolCall(BaseModel):
    """A fragment of the tool call at position ``index``; ``id`` comes with the first one."""

    index: int
    id: Optional[str] = None
    function: Optional[ChoiceDeltaToolCallFunction] = None
    type: Optional[str] = None


class ChoiceDelta(BaseModel):
    """The part of the message added by this chunk.

    Reasoning models stream their chain of thought as ``delta.reasoning_content`` (an
    extra field) before the answer's ``content``.
    """

    audio: Optional[ChoiceDeltaAudio] = None
    content: Optional[str] = None
    function_call: Optional[ChoiceDeltaFunctionCall] = None
    refusal: Optional[str] = None
    role: Optional[str] = None
    tool_calls: Optional[List[ChoiceDeltaToolCall]] = None


class Choice(BaseModel):
    """A choice's delta; ``finish_reason`` is set on the choice's last chunk."""

    delta: ChoiceDelta
    finish_reason: Optional[FinishReason] = None
    index: int
    logprobs: Optional[ChoiceLogprobs] = None


class ChatCompletionChunk(BaseModel):
    """A streamed chunk; every chunk of a stream shares ``id``, ``created`` and ``model``.

    ``choices`` may be empty on the final chunk that carries only ``usage``.
    """

    id: str
    choices: List[Choice]
    created: int
    model: str
    object: str = "chat.completion.chunk"
    service_tier: Optional[str] = None
    system_fingerprint: Optional[str] = None
    usage: Optional[CompletionUsage] = None
