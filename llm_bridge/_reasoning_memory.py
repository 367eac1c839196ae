"""The reasoning a model gave with its tool calls, kept so that it goes back with their results.

Thinking models want the assistant turn's ``reasoning_content`` back beside the results of
its tool calls: GLM's interleaved thinking reads it (and refuses a turn without it where
thinking is on), DashScope's and Qianfan's thinking models continue from it. Code that
appends the returned message keeps the field. Agent frameworks rebuild the assistant
message from its text and tool calls and lose it: openai-agents replays it only for
DeepSeek model names, langchain-openai keeps no such field. The provider then gets an
empty reasoning, and the model its own thinking no more.

So llm-bridge remembers, per tool call id, the reasoning of the answer that made the
call (`remember`), and puts it back on an assistant message that names those calls and
carries no reasoning of its own (`restore`). One memory serves a client and the clients
made from it (``with_options`` copies, the engines of one ``http_client()``): those that
share a usage ledger (`memory_for`). Not the whole process: tool call ids repeat across
clients where they are made deterministically (the offline fakes), and one client's
conversation must not reach into another's. Bounded: the most recent calls, and a total
of characters.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Optional

__all__ = ["ReasoningMemory", "memory_for"]

#: Tool calls remembered: the recent turns of many conversations at once; and the
#: characters of reasoning kept for them, so that long answers keep memory bounded too.
_SIZE = 4096
_CHARACTERS = 16 * 1024 * 1024


class ReasoningMemory:
    """Tool call id -> the reasoning of the answer that made it (the newest `_SIZE`)."""

    def __init__(self, size: Optional[int] = None, characters: Optional[int] = None) -> None:
        self._size = _SIZE if size is None else size
        self._characters = _CHARACTERS if characters is None else characters
        self._held = 0  # characters kept, an answer's text counted once per call id
        self._kept: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, call_ids: Iterable[Any], reasoning: Any) -> None:
        """Keep ``reasoning`` (text) for each of ``call_ids`` (ids of one answer's calls)."""
        if not isinstance(reasoning, str) or not reasoning:
            return
        if len(reasoning) > self._characters:
            return  # more than the memory holds: keeping it would push out everything else
        with self._lock:
            for call_id in call_ids:
                if isinstance(call_id, str) and call_id:
                    previous = self._kept.pop(call_id, None)
                    self._held -= len(previous) if previous is not None else 0
                    self._kept[call_id] = reasoning
                    self._held += len(reasoning)
            while len(self._kept) > self._size or self._held > self._characters:
                _, dropped = self._kept.popitem(last=False)
                self._held -= len(dropped)

    def remember_answer(self, completion: Any) -> None:
        """Keep the reasoning of each choice of a (validated) chat completion that calls
        tools."""
        for choice in completion.choices:
            message = choice.message
            if message.tool_calls:
                extra = message.__pydantic_extra__ or {}
                self.remember((c.id for c in message.tool_calls), extra.get("reasoning_content"))

    def restore(self, messages: Any) -> Any:
        """``messages`` with the remembered reasoning on each assistant message that calls
        tools and carries none (missing, None or ""); the messages themselves are not
        changed (a changed one is copied), and ``messages`` is returned as is when nothing
        was restored."""
        if not self._kept or not isinstance(messages, list):
            return messages
        restored = None
        for index, message in enumerate(messages):
            if not (
                isinstance(message, dict)
                and message.get("role") == "assistant"
                and message.get("tool_calls")
                and not message.get("reasoning_content")
            ):
                continue
            reasoning = self._find(message["tool_calls"])
            if reasoning is not None:
                restored = restored or list(messages)
                restored[index] = {**message, "reasoning_content": reasoning}
        return messages if restored is None else restored

    def _find(self, calls: Any) -> Any:
        with self._lock:
            for call in calls if isinstance(calls, list) else ():
                call_id = call.get("id") if isinstance(call, dict) else None
                if isinstance(call_id, str) and call_id in self._kept:
                    return self._kept[call_id]
        return None


#: Each client family's memory, by the usage ledger the family shares (it lives as long).
_FAMILIES: weakref.WeakKeyDictionary[Any, ReasoningMemory] = weakref.WeakKeyDictionary()
_FAMILIES_LOCK = threading.Lock()


def memory_for(ledger: Any) -> ReasoningMemory:
    """The memory of the clients that share ``ledger`` (made on first use)."""
    with _FAMILIES_LOCK:
        memory = _FAMILIES.get(ledger)
        if memory is None:
            memory = _FAMILIES[ledger] = ReasoningMemory()
        return memory
