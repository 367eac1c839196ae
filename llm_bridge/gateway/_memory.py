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
from typing import Callable, Optional

from ._state import TakesByEntry, take_by_arguments

__all__ = ["MemoryState"]


class MemoryState(TakesByEntry):
    """Limits and budgets for one process (see `GatewayState`)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[str, _Window] = {}
        self._spend: dict[tuple[str, str], Decimal] = {}

    async def take_entry(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> tuple[float, Optional[str]]:
        early = take_by_arguments(amount=amount, limit=limit, window=window, force=force)
        if early is not None:
            return early, None
        now = self._clock()
        with self._lock:
            taken = self._windows.get(bucket)
            if taken is None:
                taken = self._windows[bucket] = _Window()
            taken.expire(now - window)
            if force or taken.used + amount <= limit:
                return 0.0, str(taken.add(now, amount))
            # Wait until enough of the oldest entries leave the window.
            excess = taken.used + amount - limit
            for take in taken.entries:
                excess -= take.units
                if excess <= 0:
                    return max(take.at + window - now, 0.001), None
            return window, None  # pragma: no cover - amount <= limit makes the loop return

    async def give_back(
        self, bucket: str, *, window: float, amount: int, entry: Optional[str] = None
    ) -> None:
        if amount <= 0:
            return
        with self._lock:
            taken = self._windows.get(bucket)
            if taken is None:
                return
            taken.expire(self._clock() - window)
            if entry is None:
                taken.give_back(amount)
                return
            try:
                taken_id = int(entry)  # (`_Window.add`'s)
            except ValueError:  # not an id of this state's: nothing of it is here
                return
            taken.give_back_to(taken_id, amount)

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


class _Take:
    """One take in a window: when, its id (`_Window.add`), and the units it still holds."""

    __slots__ = ("at", "id", "units")

    def __init__(self, at: float, ident: int, units: int) -> None:
        self.at = at
        self.id = ident
        self.units = units


class _Window:
    """What one bucket took within its window: its takes oldest first (ids count up),
    those still holding units by id, and their running sum (so a decision costs the
    takes that expire, not the whole window)."""

    __slots__ = ("by_id", "entries", "last_id", "used")

    def __init__(self) -> None:
        self.entries: deque[_Take] = deque()
        self.by_id: dict[int, _Take] = {}
        self.last_id = 0
        self.used = 0

    def expire(self, before: float) -> None:
        entries = self.entries
        while entries and entries[0].at <= before:
            gone = entries.popleft()
            self.by_id.pop(gone.id, None)
            self.used -= gone.units

    def add(self, at: float, units: int) -> int:
        """Add a take; its id (for `give_back_to`)."""
        self.last_id += 1
        take = _Take(at, self.last_id, units)
        self.entries.append(take)
        self.by_id[take.id] = take
        self.used += units
        return take.id

    def give_back_to(self, taken: int, units: int) -> None:
        """Return up to ``units`` of the take ``taken``, if it is still in the window. An
        emptied take stays in the log with 0 units until it expires (taking it out of
        the middle would cost the whole log), and is given nothing more."""
        take = self.by_id.get(taken)
        if take is None:
            return
        back = min(units, take.units)
        take.units -= back
        self.used -= back
        if take.units == 0:
            del self.by_id[taken]

    def give_back(self, units: int) -> None:
        """Return ``units`` taken but not used, newest takes first (they hold their place
        in the window longest): for a caller that kept no take's id."""
        entries = self.entries
        while units > 0 and entries:
            take = entries[-1]
            back = min(units, take.units)
            take.units -= back
            self.used -= back
            units -= back
            if take.units == 0:
                entries.pop()
                self.by_id.pop(take.id, None)
