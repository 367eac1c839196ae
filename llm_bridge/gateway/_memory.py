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

__all__ = ["MemoryState"]


class MemoryState:
    """Limits and budgets for one process (see `GatewayState`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, deque[tuple[float, int]]] = {}
        self._spend: dict[tuple[str, str], Decimal] = {}

    async def take(self, bucket: str, *, limit: int, window: float, amount: int = 1) -> float:
        if amount > limit:
            return window
        if amount <= 0:  # nothing to take (never a credit: the window only fills)
            return 0.0
        now = self._clock()
        with self._lock:
            taken = self._windows.setdefault(bucket, deque())
            while taken and taken[0][0] <= now - window:
                taken.popleft()
            used = sum(units for _, units in taken)
            if used + amount <= limit:
                taken.append((now, amount))
                return 0.0
            # Wait until enough of the oldest entries leave the window.
            excess = used + amount - limit
            for at, units in taken:
                excess -= units
                if excess <= 0:
                    return max(at + window - now, 0.001)
            return window  # pragma: no cover - amount <= limit makes the loop return

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
