"""OpenAI chunks of one choice's next piece of text, made without a validation pass.

Nearly every event of a DashScope or Qianfan v1 stream is just that: a piece of text
(or of reasoning) for the one choice there is. The general way builds a chunk dict for
it, and the stream layer validates the dict into `ChatCompletionChunk`. On the
benchmark's loopback streams, that validation was the largest single part of what a
stream cost over raw httpx: its code is large, and between two network reads it has left
the CPU's caches.

`text_chunk` makes the same three objects (chunk, choice, delta) directly, exactly as
validating the dict makes them: the same field values, extras and fields counted as set.
It is given only values its caller has checked are of the exact types validation hands
back unchanged (``str``, ``int``; `CallContext` holds the model name as a plain ``str``),
so nothing is skipped but the checking itself.
tests/test_typed_chunks.py holds it equal to the dict way over generated events.
"""

from __future__ import annotations

from typing import Any, Optional

import pydantic

from .._shapes.chat.chat_completion_chunk import ChatCompletionChunk, Choice, ChoiceDelta

__all__ = ["text_chunk"]


def _defaults(model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """Every field of ``model`` in validation's order, at its default (None if required),
    for copying shallowly: a default that is not None or a string would be shared."""
    defaults = {
        name: None if field.is_required() else field.default
        for name, field in model.model_fields.items()
    }
    shared = [name for name, value in defaults.items() if not isinstance(value, (str, type(None)))]
    if shared:
        raise TypeError(f"{model.__name__} fields {shared} have defaults text_chunk cannot copy")
    return defaults


_CHUNK = _defaults(ChatCompletionChunk)
_CHOICE = _defaults(Choice)
_DELTA = _defaults(ChoiceDelta)
#: What a chunk dict of the general way sets (besides its extras), and its choice.
_CHUNK_SET = ("id", "object", "created", "model", "choices")
_CHOICE_SET = frozenset({"index", "delta", "finish_reason"})

_new = object.__new__
# The setters of what pydantic keeps beside an instance's __dict__ (slots of its BaseModel),
# called directly: past pydantic's __setattr__, which would validate, and a little faster
# than object.__setattr__.
_SLOTS = pydantic.BaseModel.__dict__
_set_values = _SLOTS["__dict__"].__set__
_set_given = _SLOTS["__pydantic_fields_set__"].__set__
_set_extra = _SLOTS["__pydantic_extra__"].__set__
_set_private = _SLOTS["__pydantic_private__"].__set__


def _model(cls: type[Any], values: dict[str, Any], given: set[str], extra: dict[str, Any]) -> Any:
    """An instance of ``cls`` as pydantic's validation leaves one (no private attributes)."""
    instance = _new(cls)
    _set_values(instance, values)
    _set_given(instance, given)
    _set_extra(instance, extra)
    _set_private(instance, None)
    return instance


def text_chunk(
    id: str,
    created: int,
    model: str,
    index: int,
    content: Optional[str],
    reasoning: Optional[str],
    role: bool,
    extra: dict[str, Any],
) -> ChatCompletionChunk:
    """The chunk that validating this dict gives::

        {"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
         "choices": [{"index": index, "delta": delta, "finish_reason": None}], **extra}

    where ``delta`` holds ``role: "assistant"`` if ``role``, then ``reasoning_content``
    and ``content`` if they are non-empty. Every argument must be of its exact type (no
    subclass, no bool for an int), and ``extra`` JSON values: nothing is checked here."""
    delta_values = dict(_DELTA)
    delta_given: set[str] = set()
    delta_extra: dict[str, Any] = {}
    if role:
        delta_values["role"] = "assistant"
        delta_given.add("role")
    if reasoning:
        delta_extra["reasoning_content"] = reasoning
        delta_given.add("reasoning_content")
    if content:
        delta_values["content"] = content
        delta_given.add("content")
    delta = _model(ChoiceDelta, delta_values, delta_given, delta_extra)
    choice_values = dict(_CHOICE)
    choice_values["delta"], choice_values["index"] = delta, index
    choice = _model(Choice, choice_values, set(_CHOICE_SET), {})
    values = dict(_CHUNK)
    values["id"], values["choices"], values["created"], values["model"] = (
        id,
        [choice],
        created,
        model,
    )
    return _model(ChatCompletionChunk, values, {*_CHUNK_SET, *extra}, extra)  # type: ignore[no-any-return]
