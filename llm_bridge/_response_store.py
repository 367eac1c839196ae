"""Stored responses, for ``previous_response_id``, ``responses.retrieve`` and ``delete``.

OpenAI keeps a response on its server unless the request says ``store=false``; the next
turn names it and the server replays the conversation. Zhipu and Qianfan have no such
state, so llm-bridge keeps it: the response, the chat messages of the whole conversation up
to and including its answer (what the next turn is sent after), and its input items.

The store is in memory, in this process, bounded (least recently stored go first) and with
a time to live. The gateway will put the same interface over its shared state store.
Thread-safe; no I/O.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["ResponseStore", "StoredResponse", "default_store"]

#: How many responses, and for how long, the default store keeps.
DEFAULT_CAPACITY = 1000
DEFAULT_TTL = 3600.0


@dataclass
class StoredResponse:
    """One stored response and what continuing from it needs."""

    response: dict[str, Any]
    messages: list[dict[str, Any]]  # the conversation's chat messages, answer included
    input_items: list[dict[str, Any]] = field(default_factory=list)
    native: bool = False  # the provider's own Responses answer (its id is the provider's)
    expires_at: float = 0.0


class ResponseStore:
    """Responses by id: bounded, expiring, safe across threads."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.capacity = capacity
        self.ttl = ttl
        self._clock = clock
        self._items: OrderedDict[str, StoredResponse] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, response_id: str, entry: StoredResponse) -> None:
        entry.expires_at = self._clock() + self.ttl
        with self._lock:
            self._items[response_id] = entry
            self._items.move_to_end(response_id)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> Optional[StoredResponse]:
        """The stored response, or None when unknown or expired (then forgotten)."""
        with self._lock:
            entry = self._items.get(response_id)
            if entry is not None and entry.expires_at <= self._clock():
                del self._items[response_id]
                entry = None
            return entry

    def delete(self, response_id: str) -> bool:
        with self._lock:
            return self._items.pop(response_id, None) is not None

    def __len__(self) -> int:
        return len(self._items)


_DEFAULT = ResponseStore()


def default_store() -> ResponseStore:
    """The process's store, which every client shares (as OpenAI's server is shared by the
    clients of one account); ids are random, so only the holder of an id can name it."""
    return _DEFAULT
