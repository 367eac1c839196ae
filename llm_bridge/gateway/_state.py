"""What gateway replicas share: rate-limit windows, budgets, and the usage ledger.

One process keeps them in memory (`MemoryState`, in ``_memory.py``); the processes of one
machine in a SQLite file (``state = "sqlite"``, and ``llm-bridge serve --workers N`` by
itself; ``_sqlite_state.py``); several replicas in Redis (``[gateway] state =
"redis://..."``, in ``_redis.py``), so any number of replicas enforce one limit and one
budget. The gateway talks only to these interfaces.

Every method is a coroutine: the gateway is an ASGI application, and a shared store is a
network service. Each operation that decides something is atomic in the store (a Lua
script in Redis, a transaction in SQLite, a lock in memory): two replicas never both take
the last slot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Optional, Protocol

__all__ = [
    "IN_PROGRESS",
    "GatewayState",
    "LedgerEntry",
    "LedgerSink",
    "SpendSeen",
    "give_back_entry",
    "take_by_arguments",
    "take_entry",
]

#: The error code of a provisional ledger entry: the request was admitted and had not
#: ended. Its final entry replaces it; a process killed mid-request leaves it standing.
IN_PROGRESS = "in_progress"


class GatewayState(Protocol):
    """Limits and budgets, shared by every replica that uses the same store."""

    async def take(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> float:
        """Take ``amount`` units from ``bucket``, which allows ``limit`` units per sliding
        ``window`` seconds. Returns 0.0 when taken; else the seconds until ``amount`` would
        fit (nothing is taken). ``amount`` larger than ``limit`` never fits: the returned
        wait is ``window``.

        ``force=True`` takes ``amount`` even past ``limit`` and returns 0.0: units that were
        already used (tokens a call used beyond its estimate), which the window must count
        so that later takes wait for them to leave it."""
        ...

    async def take_entry(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> tuple[float, Optional[str]]:
        """`take`, and the id of the entry it added to the window (None when it added
        none: a wait, or nothing to take), for `give_back` to shrink that entry alone.
        The same one call to the store as `take`. An id is opaque text, meaningful only
        to the store (and bucket) that gave it."""
        ...

    async def give_back(
        self, bucket: str, *, window: float, amount: int, entry: Optional[str] = None
    ) -> None:
        """Return ``amount`` units taken from ``bucket`` that were not used: a request
        took an estimate of its tokens (`take_entry`) and used fewer.

        With ``entry``, only that take shrinks (by at most what it holds), and nothing
        happens once it has left its ``window``: what the window counts for other takes
        stays, so the window never undercounts the takes still in it, and a take that
        outlived its window returns nothing it no longer holds.

        Without ``entry`` (a caller that kept none), the most recent takes still in the
        window shrink first, never below nothing. That takes the units off other
        requests' entries and can undercount the window: the gateway always passes
        ``entry``."""
        ...

    async def reserve(self, account: str, period: str, *, amount: Decimal, budget: Decimal) -> bool:
        """Add ``amount`` (an upper estimate of a request's cost) to the spend of
        ``account`` in ``period`` (e.g. ``"2026-12"``) if the result stays within
        ``budget``; True when reserved. Concurrent reservations near the edge therefore
        overspend by at most the estimate's error."""
        ...

    async def settle(
        self, account: str, period: str, *, reserved: Decimal, actual: Decimal
    ) -> None:
        """Replace a reservation by the actual cost once the request ended (``actual`` 0
        for a request that failed before any billing)."""
        ...

    async def spent(self, account: str, period: str) -> Decimal:
        """What ``account`` has spent (reserved included) in ``period``."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers (``/readyz``)."""
        ...

    async def close(self) -> None: ...


def take_by_arguments(*, amount: int, limit: int, window: float, force: bool) -> Optional[float]:
    """What `GatewayState.take` answers from its arguments alone, before any store is
    asked (every store's ``take`` starts here, so they agree): ``window`` for an
    ``amount`` over the ``limit`` (it never fits) unless forced, 0.0 for nothing to take
    (a take is never a credit: see ``give_back``); None when the store must decide."""
    if amount > limit and not force:
        return window
    if amount <= 0:
        return 0.0
    return None


class TakesByEntry:
    """A store's `GatewayState.take`, as its ``take_entry`` without the entry: what each
    built-in store inherits, so the three answer alike."""

    async def take_entry(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> tuple[float, Optional[str]]:
        raise NotImplementedError

    async def take(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> float:
        wait, _ = await self.take_entry(
            bucket, limit=limit, window=window, amount=amount, force=force
        )
        return wait


async def take_entry(
    state: GatewayState,
    bucket: str,
    *,
    limit: int,
    window: float,
    amount: int,
    force: bool = False,
) -> tuple[float, Optional[str]]:
    """``state.take_entry(...)``; for a state written against an earlier release of
    `GatewayState`, which has no `take_entry`, its `take` and no entry."""
    taker = getattr(state, "take_entry", None)
    if taker is None:
        wait = await state.take(bucket, limit=limit, window=window, amount=amount, force=force)
        return wait, None
    return await taker(bucket, limit=limit, window=window, amount=amount, force=force)


async def give_back_entry(
    state: GatewayState, bucket: str, *, window: float, amount: int, entry: Optional[str]
) -> None:
    """``state.give_back(...)`` of the units ``entry`` (from `take_entry`) did not use;
    an entry of None is passed as no argument (a state of an earlier release)."""
    if entry is None:
        await state.give_back(bucket, window=window, amount=amount)
    else:
        await state.give_back(bucket, window=window, amount=amount, entry=entry)


class SpendSeen:
    """What a shared store last said each account had spent, in the latest period it said
    it for (periods are ``"YYYY-MM"``, which sort as text). A store records here every
    spend it reads or writes (`reserve`, `settle`, `spent`), at no extra cost; the
    `FailoverState` standing in for it during an outage counts it against the budgets,
    so a key that had used its budget does not get the whole of it again. One entry per
    account, so it stays as small as the gateway's list of keys."""

    def __init__(self) -> None:
        self._latest: dict[str, tuple[str, Decimal]] = {}

    def saw(self, account: str, period: str, spent: Decimal) -> None:
        """The store said ``account`` had spent ``spent`` in ``period``. An earlier period
        than the one kept (a request settled after the month turned) is not kept."""
        latest = self._latest.get(account)
        if latest is None or period >= latest[0]:
            self._latest[account] = (period, spent)

    def spent(self, account: str, period: str) -> Decimal:
        """The spend last seen for ``account`` in ``period``; 0 when none was."""
        latest = self._latest.get(account)
        return latest[1] if latest is not None and latest[0] == period else Decimal(0)


@dataclass(frozen=True)
class LedgerEntry:
    """One gateway request, as the ledger keeps it."""

    request_id: str  # unique: a retried write never doubles an entry
    at: float  # Unix time the request ended
    key: str  # the gateway key's name (never the key)
    model: str  # what the client asked for
    provider: Optional[str]
    upstream_model: Optional[str]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    estimated: bool = False
    cost_cny: Optional[Decimal] = None
    latency_ms: float = 0.0
    status: int = 200
    error_code: Optional[str] = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Text from a provider (an error code, a model name) may hold a lone surrogate,
        # which JSON carries and neither SQLite nor Redis can store: made storable here,
        # so that no sink's writer fails on it.
        for name in ("model", "provider", "upstream_model", "error_code"):
            value = getattr(self, name)
            if isinstance(value, str):
                object.__setattr__(self, name, storable(value))
        if self.extra:
            extra = {storable(str(k)): storable(str(v)) for k, v in self.extra.items()}
            object.__setattr__(self, "extra", extra)


def storable(text: str) -> str:
    """``text`` as UTF-8 can hold it: each lone surrogate becomes U+FFFD."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in text)
    return text


class LedgerSink(Protocol):
    """Where ledger entries go: a SQLite file by default, Redis streams with Redis.

    `write` must not lose an entry the call returned from, and must be idempotent by
    ``request_id``: a write repeated after a store outage lands once."""

    async def write(self, entry: LedgerEntry) -> None: ...

    async def flush(self) -> None:
        """Everything written so far is durable (on shutdown)."""
        ...

    async def close(self) -> None: ...
