"""Stored responses, for ``previous_response_id``, ``responses.retrieve`` and ``delete``.

OpenAI keeps a response on its server unless the request says ``store=false``; the next
turn names it and the server replays the conversation. Zhipu and Qianfan have no such
state, so llm-bridge keeps it: the response, the chat messages of the whole conversation up
to and including its answer (what the next turn is sent after), and its input items.

A store comes in two flavours, because its callers do: the synchronous transport calls
`SyncResponseStore`'s ``get``/``put``/``delete``, the asynchronous one (``AsyncOpenAI``,
the gateway) awaits `AsyncResponseStore`'s ``aget``/``aput``/``adelete`` and never calls
the synchronous ones, so a store on the network (the gateway's Redis store,
``llm_bridge.gateway._redis_responses``) never blocks the event loop. Every decision about
what to store and what a lookup means is made by the callers' shared code
(``_responses_front``); a store only moves entries.

`ResponseStore` is the in-memory store: in this process, bounded (least recently stored go
first) and with a time to live. It is both flavours at once (no I/O, so the async methods
just call the sync ones). Thread-safe.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol

from pydantic_core import to_json

__all__ = [
    "AsyncResponseStore",
    "ResponseStore",
    "StoredResponse",
    "SyncResponseStore",
    "default_store",
    "encoded",
    "seconds",
]

log = logging.getLogger("llm_bridge")

#: How many responses, and for how long, the default store keeps.
DEFAULT_CAPACITY = 1000
DEFAULT_TTL = 3600.0

#: The version of `StoredResponse.to_json`'s layout (a shared store outlives a release).
_LAYOUT = 1


@dataclass
class StoredResponse:
    """One stored response and what continuing from it needs."""

    response: dict[str, Any]
    messages: list[dict[str, Any]]  # the conversation's chat messages, answer included
    input_items: list[dict[str, Any]] = field(default_factory=list)
    native: bool = False  # the provider's own Responses answer (its id is the provider's)
    #: What the provider saw that ``messages`` lack ("<where> of <response id>" -> why):
    #: items of a native conversation with no chat form (`_responses_front.to_keep`).
    omitted: dict[str, str] = field(default_factory=dict)
    expires_at: float = 0.0  # (the in-memory store's bookkeeping; never serialised)

    def to_json(self) -> dict[str, Any]:
        """The entry as a JSON object, for a store that keeps serialised entries."""
        return {
            "v": _LAYOUT,
            "response": self.response,
            "messages": self.messages,
            "input_items": self.input_items,
            "native": self.native,
            "omitted": self.omitted,
        }

    @classmethod
    def from_json(cls, data: Any) -> StoredResponse:
        """The entry `to_json` wrote; ValueError for anything else (a foreign key, say)."""
        if not isinstance(data, dict) or data.get("v") != _LAYOUT:
            raise ValueError("not a stored llm-bridge response")
        response, messages = data.get("response"), data.get("messages")
        items, omitted = data.get("input_items", []), data.get("omitted", {})
        if not (isinstance(response, dict) and isinstance(messages, list)):
            raise ValueError("a stored llm-bridge response without its response or messages")
        if not (isinstance(items, list) and isinstance(omitted, dict)):
            raise ValueError("a stored llm-bridge response with malformed input items or notes")
        return cls(response, messages, items, native=data.get("native") is True, omitted=omitted)


def encoded(response_id: str, entry: StoredResponse) -> Optional[bytes]:
    """``entry`` as JSON bytes, for a store that keeps serialised entries; None (logged)
    when it cannot be written.

    pydantic-core writes it; what that refuses, a lone surrogate a provider sent (escaped
    text can carry one) or nesting past its depth limit, the standard library writes,
    escaped. What neither writes (nesting past the interpreter's limit, which a body parsed
    as JSON can reach by a few levels on some Python versions) is not stored (a later
    ``previous_response_id`` naming it gets a not-found saying why), and its request
    still gets its answer."""
    data = entry.to_json()
    try:
        return to_json(data)
    except ValueError:  # PydanticSerializationError
        pass
    try:
        return json.dumps(data).encode()
    except (TypeError, ValueError, RecursionError) as error:
        log.warning("response %s not stored: it cannot be written as JSON (%s)", response_id, error)
        return None


def seconds(value: float) -> str:
    """A duration for a message: ``3600``, ``0.5`` (never ``3600.000000`` or ``1e+06``)."""
    return f"{value:.3f}".rstrip("0").rstrip(".")


class SyncResponseStore(Protocol):
    """What the synchronous transport calls."""

    def get(self, response_id: str) -> Optional[StoredResponse]:
        """The stored response, or None when unknown, expired or deleted."""
        ...

    def put(self, response_id: str, entry: StoredResponse) -> None: ...

    def delete(self, response_id: str) -> bool:
        """Forget a response; False when there was none (unknown, expired, deleted)."""
        ...

    def describe(self) -> str:
        """Where and for how long responses are kept, as a clause for error messages
        ("llm-bridge keeps stored responses in this process for 3600 s ..."); no I/O."""
        ...


class AsyncResponseStore(Protocol):
    """What the asynchronous transport awaits (and nothing else: no blocking call)."""

    async def aget(self, response_id: str) -> Optional[StoredResponse]: ...

    async def aput(self, response_id: str, entry: StoredResponse) -> None: ...

    async def adelete(self, response_id: str) -> bool: ...

    def describe(self) -> str: ...

    async def aclose(self) -> None:
        """Release connections (the owner calls it once, at shutdown)."""
        ...


class ResponseStore:
    """Responses by id in this process: bounded, expiring, safe across threads; a
    `SyncResponseStore` and an `AsyncResponseStore` both."""

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

    # ------------------------------------------------------------------ sync

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
        """Forget a response; False when it was unknown or had expired already."""
        with self._lock:
            entry = self._items.pop(response_id, None)
            return entry is not None and entry.expires_at > self._clock()

    def describe(self) -> str:
        return (
            f"llm-bridge keeps stored responses in this process for {seconds(self.ttl)} s "
            f"(the {self.capacity} most recent)"
        )

    def live(self) -> list[tuple[str, StoredResponse, float]]:
        """Every live entry, least recently stored first, each with the seconds it has
        left (a shared store's local fallback hands its entries over this way, then
        `discard`s them, once the shared store is back)."""
        now = self._clock()
        with self._lock:
            items = list(self._items.items())
        return [
            (key, entry, entry.expires_at - now) for key, entry in items if entry.expires_at > now
        ]

    def discard(self, response_id: str, entry: StoredResponse) -> None:
        """Forget ``response_id`` if it is still this very ``entry``."""
        with self._lock:
            if self._items.get(response_id) is entry:
                del self._items[response_id]

    def __len__(self) -> int:
        return len(self._items)

    # ------------------------------------------------------------------ async (no I/O)

    async def aget(self, response_id: str) -> Optional[StoredResponse]:
        return self.get(response_id)

    async def aput(self, response_id: str, entry: StoredResponse) -> None:
        self.put(response_id, entry)

    async def adelete(self, response_id: str) -> bool:
        return self.delete(response_id)

    async def aclose(self) -> None:
        return None


_DEFAULT = ResponseStore()


def default_store() -> ResponseStore:
    """The process's store, which every client shares (as OpenAI's server is shared by the
    clients of one account); ids are random, so only the holder of an id can name it."""
    return _DEFAULT
