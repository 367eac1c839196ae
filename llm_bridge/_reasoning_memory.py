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
carries no reasoning of its own (`restore`). One memory serves the process (`MEMORY`):
a conversation may move between a client and its ``with_options`` copies, or between
clients, and tool call ids are unique. Bounded: the most recent calls only.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

__all__ = ["MEMORY", "ReasoningMemory"]

#: Tool calls remembered: the recent turns of many conversations at once.
_SIZE = 4096


class ReasoningMemory:
    """Tool call id -> the reasoning of the answer that made it (the newest `_SIZE`)."""

    def __init__(self, size: int = _SIZE) -> None:
        self._size = size
        self._kept: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, call_ids: Iterable[Any], reasoning: Any) -> None:
        """Keep ``reasoning`` (text) for each of ``call_ids`` (ids of one answer's calls)."""
        if not isinstance(reasoning, str) or not reasoning:
            return
        with self._lock:
            for call_id in call_ids:
                if isinstance(call_id, str) and call_id:
                    self._kept[call_id] = reasoning
                    self._kept.move_to_end(call_id)
            while len(self._kept) > self._size:
                self._kept.popitem(last=False)

    def remember_answer(self, data: Any) -> None:
        """Keep the reasoning of each choice of a chat completion (as a dict) that calls
        tools."""
        for choice in data.get("choices") or () if isinstance(data, dict) else ():
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and message.get("tool_calls"):
                calls = message["tool_calls"]
                ids = [c.get("id") for c in calls if isinstance(c, dict)]
                self.remember(ids, message.get("reasoning_content"))

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


#: The process's memory (see the module's docstring).
MEMORY = ReasoningMemory()
