"""`GatewayState` in this process's memory: one gateway, or a replica that lost its Redis.

Limits are sliding windows kept as the timestamps of what was taken (bounded by the limit),
budgets a dict of spends per account and period. A lock makes each decision atomic across
the event loop's tasks (and threads, should a caller use several).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from decimal import Decimal
from typing import Callable

from ._state import take_by_arguments

__all__ = ["MemoryState"]


class MemoryState:
    """Limits and budgets for one process (see `GatewayState`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._spend: dict[tuple[str, str], Decimal] = {}

    async def take(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> float:
        early = take_by_arguments(amount=amount, limit=limit, window=window, force=force)
        if early is not None:
            return early
        now = self._clock()
        with self._lock:
            taken = self._windows.get(bucket)
            if taken is None:
                taken = self._windows[bucket] = _Window()
            taken.expire(now - window)
            if force or taken.used + amount <= limit:
                taken.add(now, amount)
                return 0.0
            # Wait until enough of the oldest entries leave the window.
            excess = taken.used + amount - limit
            for at, units in taken.entries:
                excess -= units
                if excess <= 0:
                    return max(at + window - now, 0.001)
            return window  # pragma: no cover - amount <= limit makes the loop return

    async def give_back(self, bucket: str, *, window: float, amount: int) -> None:
        if amount <= 0:
            return
        with self._lock:
            taken = self._windows.get(bucket)
            if taken is not None:
                taken.expire(self._clock() - window)
                taken.give_back(amount)

    async def reserve(self, account: str, period: str, *, amount: Decimal, budget: Decimal) -> bool:
        with self._lock:
            spent = self._spend.get((account, period), Decimal(0))
            if spent + amount > budget:
                return False
            self._spend[(account, period)] = spent + amount
            return True

    async def settle(
        self, account: str, period: str, *, reserved: Decimal, actual: Decimal
    ) -> None:
        with self._lock:
            spent = self._spend.get((account, period), Decimal(0))
            self._spend[(account, period)] = max(spent - reserved + actual, Decimal(0))

    async def spent(self, account: str, period: str) -> Decimal:
        with self._lock:
            return self._spend.get((account, period), Decimal(0))

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


class _Window:
    """What one bucket took within its window: ``(time, units)`` oldest first, and their
    running sum (so a decision costs the entries that expire, not the whole window)."""

    __slots__ = ("entries", "used")

    def __init__(self) -> None:
        self.entries: deque[tuple[float, int]] = deque()
        self.used = 0

    def expire(self, before: float) -> None:
        entries = self.entries
        while entries and entries[0][0] <= before:
            self.used -= entries.popleft()[1]

    def add(self, at: float, units: int) -> None:
        self.entries.append((at, units))
        self.used += units

    def give_back(self, units: int) -> None:
        """Return ``units`` taken but not used, newest entries first (they hold their
        place in the window longest)."""
        entries = self.entries
        while units > 0 and entries:
            at, held = entries.pop()
            kept = held - units
            units -= held
            if kept > 0:
                entries.append((at, kept))
                self.used -= held - kept
            else:
                self.used -= held
