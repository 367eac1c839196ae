"""Streamed tool-call fragments put in OpenAI's form, for code that joins them by index.

OpenAI streams a tool call as fragments sharing its ``index``: the first carries ``id``,
``type`` and the function's ``name``, the rest only pieces of ``arguments``. Every
accumulator (openai's ``chat.completions.stream``, langchain, the AI SDK, ours in
`llm_bridge._streaming.aggregate`) joins the fragments of one index, concatenating every
string it finds. Two provider habits break that:

- the header repeated on every fragment (GLM-5.1 as relayed by some proxies, vLLM and
  SGLang servers of Qwen, which config-defined providers reach): joined, the call's id
  becomes ``call_1call_1call_1`` and its name ``get_weatherget_weather...``;
- parallel calls all streamed at index 0 (Qwen3 on vLLM/SGLang, Ollama), each with its own
  id: joined, two calls become one whose arguments are two JSON objects end to end.

`ToolCallHeads` keeps, per stream, the header each (choice, index) began with: a fragment
repeating it loses the repeated fields, and one with another ``id`` at an index already
holding a call, and a function name, is a new call and gets the next free index (its
later fragments follow it there; an id that changes without a name, as some providers'
later fragments do, is the same call's). A fragment without an id continues the call at
its index: parallel calls that come without ids cannot be told apart, so they are left
as the provider sent them. A call's first fragment without an id is given one, as a
non-stream answer's call is (`Adapter.new_call_id`): OpenAI's always has one, the AI SDK
refuses a call without, and the tool message answering it needs one; an id the provider
sends later for that call is then left out. A stream already in OpenAI's form passes unchanged.

UNSURE (docs/unsure.md X6): which of our providers stream either habit; the reports are
third parties'.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

__all__ = ["ToolCallHeads"]


class _Head:
    """What began one call: its id (``minted`` when llm-bridge made it) and name as first
    sent, and the index it is given."""

    __slots__ = ("id", "index", "minted", "name")

    def __init__(self, call_id: str, name: Optional[str], index: int, minted: bool) -> None:
        self.id = call_id
        self.name = name
        self.index = index
        self.minted = minted


class ToolCallHeads:
    """One stream's tool calls, by choice and the provider's index (see the module).
    ``new_call_id`` names a call that came without an id."""

    __slots__ = ("_heads", "_new_call_id", "_taken")

    def __init__(self, new_call_id: Callable[[], str]) -> None:
        self._heads: dict[tuple[int, int], _Head] = {}  # the latest call at each index
        self._taken: dict[int, set[int]] = {}  # the indexes given out, per choice
        self._new_call_id = new_call_id

    def tidy(self, choice: int, calls: list[Any]) -> None:
        """Put one delta's ``calls`` (`ChoiceDeltaToolCall` models, fresh from the
        provider's event) in OpenAI's form, in place."""
        taken = self._taken.setdefault(choice, set())
        for call in calls:
            function = call.function
            _blank_to_none(call, function)
            key = (choice, call.index)
            head = self._heads.get(key)
            name = function.name if function is not None else None
            if head is None or (
                call.id and name and not head.minted and call.id != head.id
            ):  # (a new call names its function: an id alone changing mid-call does not)
                self._heads[key] = self._begin(call, name, taken)
                continue
            if head.index != call.index:
                _set(call, "index", head.index)
            if call.id is not None:
                _unset(call, "id")  # (the same id, or a late one: the call has its id)
            if call.type is not None:
                _unset(call, "type")
            if name is not None:
                if head.name is None:
                    head.name = name
                elif name == head.name:
                    _unset(function, "name")
                else:  # (a name streamed in pieces: what is repeated is the whole so far)
                    head.name += name

    def _begin(self, call: Any, name: Optional[str], taken: set[int]) -> _Head:
        """The head of a call this fragment begins: its index (the next free one if
        another call holds the provider's), an id and a type if it came without them."""
        index = call.index if call.index not in taken else max(taken) + 1
        taken.add(index)
        if index != call.index:
            _set(call, "index", index)
        minted = call.id is None
        if minted:
            _put(call, "id", self._new_call_id())
        if call.type is None:
            _put(call, "type", "function")
        return _Head(call.id, name, index, minted)


def _blank_to_none(call: Any, function: Any) -> None:
    """Empty strings for what OpenAI leaves out: an ``id`` or ``name`` of ``""`` names
    nothing (continuation fragments with ``"id": ""`` are read on DashScope's compatible
    mode, UNSURE as docs/unsure.md X6 says), and a ``type`` of ``""`` is a function
    call's (the AI SDK refuses it: "Type validation failed")."""
    if call.id == "":
        _unset(call, "id")
    if call.type == "":
        _set(call, "type", "function")
    if function is not None and function.name == "":
        _unset(function, "name")


def _set(model: Any, field: str, value: Any) -> None:
    vars(model)[field] = value


def _put(model: Any, field: str, value: Any) -> None:
    """``field`` of ``model`` as if the provider had sent ``value``."""
    vars(model)[field] = value
    model.__pydantic_fields_set__.add(field)


def _unset(model: Any, field: str) -> None:
    """``field`` of ``model`` as if the provider had not sent it."""
    vars(model)[field] = None
    model.__pydantic_fields_set__.discard(field)
