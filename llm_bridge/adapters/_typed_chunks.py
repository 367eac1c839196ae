"""Typed OpenAI chunks made past the general way's chunk dict and its validation pass.

The general way of a stream event builds an OpenAI chunk dict and validates it into
`ChatCompletionChunk` (`StreamParser.translate`). On the benchmark's loopback streams
that validation was the largest single part of what a stream cost over raw httpx: its
code is large, and between two network reads it has left the CPU's caches. So the usual
events take a short cut, and this module holds the two places where one reaches past
pydantic's public API:

* `text_chunk` makes the chunk of one choice's next piece of text (nearly every event of
  a DashScope or Qianfan v1 stream) directly, exactly as validating the dict makes it:
  the same field values, extras and fields counted as set. It is given only values its
  caller has checked are of the exact types validation hands back unchanged (``str``,
  ``int``; `CallContext` holds the model name as a plain ``str``), so nothing is skipped
  but the checking itself.
* `finish_validated` gives a chunk the OpenAI-compatible parser validated straight from
  an event's bytes what the general way's dict would have had (``object``,
  ``provider``, the role rule) by changing it in place.

tests/test_typed_chunks.py holds both equal to the general way over generated events.
"""

from __future__ import annotations

from typing import Any, Optional

import pydantic

from .._shapes.chat.chat_completion_chunk import ChatCompletionChunk, Choice, ChoiceDelta

__all__ = ["finish_validated", "text_chunk", "validate_chunk", "validate_chunk_json"]

#: `ChatCompletionChunk.model_validate` and `model_validate_json` without their
#: Python-level wrappers (they run per event).
validate_chunk = ChatCompletionChunk.__pydantic_validator__.validate_python
validate_chunk_json = ChatCompletionChunk.__pydantic_validator__.validate_json


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


def finish_validated(
    chunk: ChatCompletionChunk, provider: str, roles_sent: set[int]
) -> ChatCompletionChunk:
    """``chunk``, validated straight from an OpenAI-shaped event's bytes, changed in place
    into what the general way gives the same event: ``object`` set to
    ``"chat.completion.chunk"``, ``provider`` added, a null ``usage`` no longer counted as
    set, and OpenAI's role rule applied (a choice names its role on its first chunk only;
    ``roles_sent`` holds the indexes that did, and is updated).

    Changing a model in place is safe here because the validator made ``chunk`` for this
    one event a moment ago and nothing else refers to it yet; every value written is of
    the exact type validation gives (the literal strings, the ``str`` provider, None), and
    the fields counted as set become those the general way's dict keys make. The caller
    (`OpenAICompatStreamParser`) has already sent every event this cannot finish the
    general way: usage, a finish word, tool calls, an error."""
    for choice in chunk.choices:
        delta = choice.delta
        fields = delta.__pydantic_fields_set__
        if choice.index in roles_sent:
            if "role" in fields:
                fields.discard("role")
                vars(delta)["role"] = None
        elif (
            delta.role
            or delta.content is not None
            or (delta.__pydantic_extra__ or {}).get("reasoning_content") is not None
        ):
            if not delta.role:  # (absent, or an empty string: see the general way)
                fields.add("role")
                vars(delta)["role"] = "assistant"
            roles_sent.add(choice.index)
        elif "role" in fields:  # an empty one before anything else (the general way's rule)
            fields.discard("role")
            vars(delta)["role"] = None
    fields = chunk.__pydantic_fields_set__
    fields.discard("usage")  # a null one, which the general way pops from the dict
    fields.update(("object", "provider"))
    vars(chunk)["object"] = "chat.completion.chunk"
    extra = chunk.__pydantic_extra__
    assert extra is not None  # the chunk types keep extras (extra="allow")
    extra["provider"] = provider
    return chunk
