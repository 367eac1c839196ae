"""What a replica does when its shared state store (Redis) stops answering:
``[gateway] state_failure = "open" | "closed"``.

``FailoverState(primary, mode=...)`` wraps the shared `GatewayState`:

- ``"open"`` (the default): the first call that finds the store unreachable logs one warning
  and the replica goes on serving from a `MemoryState` of its own, so limits and budgets
  hold per process until the store returns (N replicas may then let N times a limit
  through: availability over exactness). A budget is not handed out afresh: what the
  store last said the account had spent (`SpendSeen`, kept by the store as it answers)
  counts against it, plus what is spent in memory (an account the replica had not seen
  spend starts from 0).
- ``"closed"``: every call raises `StateUnavailable` while the store is unreachable, and the
  gateway answers 503 (exactness over availability).

While the store is down no request waits on it: a background probe pings it every
``retry_interval`` seconds, and the wrapper returns to it once it answers (one info log).
In ``"open"`` mode what was spent during the outage is then added to the shared budgets
before the first request goes back to them, so the outage does not hand out a second
budget; a reservation made in memory and settled after the return nets out in the store,
since its reserve was added with the outage's spend. Rate-limit windows are short and are
not carried over. A take's id (`take_entry`) says which of the two holds the take, so a
give-back goes to that one or nowhere: a take held by the store is not given back out of
the memory's window during an outage, nor one held by an outage's memory to the store.

`ready` (for ``/readyz``) is False while the store is unreachable, in either mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from typing import Any, Literal, Optional

from ._memory import MemoryState
from ._state import GatewayState, SpendSeen, take_entry

__all__ = ["FailoverState", "StateUnavailable"]

log = logging.getLogger("llm_bridge.gateway")


class StateUnavailable(ConnectionError):
    """The shared state store does not answer (with ``state_failure = "closed"`` the gateway
    answers 503). Raised by `RedisState` for connection errors and timeouts, and by
    `FailoverState` in ``"closed"`` mode."""


#: How `FailoverState.take_entry` marks the ids of takes the store holds; those the
#: memory holds are marked ``m<generation>:`` (each outage's memory is a new generation).
_PRIMARY = "p:"

# What counts as "the store is down" when a primary raises it (RedisState raises
# StateUnavailable; a primary of another kind may let builtin socket errors through).
_UNAVAILABLE = (StateUnavailable, ConnectionError, TimeoutError, OSError)


class FailoverState:
    """A `GatewayState` that survives its primary's outages (see the module docstring)."""

    def __init__(
        self,
        primary: GatewayState,
        *,
        mode: Literal["open", "closed"] = "open",
        retry_interval: float = 1.0,
    ) -> None:
        if mode not in ("open", "closed"):
            raise ValueError(f"state_failure must be 'open' or 'closed', not {mode!r}")
        self.primary = primary
        self.mode = mode
        self.retry_interval = retry_interval
        self._down = False
        self._memory = MemoryState()
        self._generation = 0  # of `_memory`: a take's id names the memory that holds it
        self._touched: set[tuple[str, str]] = set()  # budgets spent in memory
        self._seen = _spend_seen(primary)
        self._probe: Optional[asyncio.Task[None]] = None
        self._recovering = False
        self._closed = False

    @property
    def ready(self) -> bool:
        """Whether the shared store answered the last call (``/readyz``)."""
        return not self._down

    # ------------------------------------------------------------------ GatewayState

    async def take(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> float:
        if not self._down:
            try:
                return await self.primary.take(
                    bucket, limit=limit, window=window, amount=amount, force=force
                )
            except _UNAVAILABLE as exc:
                self._went_down(exc)
        return await self._fallback().take(
            bucket, limit=limit, window=window, amount=amount, force=force
        )

    async def take_entry(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> tuple[float, Optional[str]]:
        if not self._down:
            try:
                wait, entry = await take_entry(
                    self.primary, bucket, limit=limit, window=window, amount=amount, force=force
                )
                return wait, None if entry is None else _PRIMARY + entry
            except _UNAVAILABLE as exc:
                self._went_down(exc)
        memory, generation = self._fallback(), self._generation
        wait, entry = await memory.take_entry(
            bucket, limit=limit, window=window, amount=amount, force=force
        )
        return wait, None if entry is None else f"m{generation}:{entry}"

    async def give_back(
        self, bucket: str, *, window: float, amount: int, entry: Optional[str] = None
    ) -> None:
        if entry is None:
            if not self._down:
                try:
                    return await self.primary.give_back(bucket, window=window, amount=amount)
                except _UNAVAILABLE as exc:
                    self._went_down(exc)
            await self._fallback().give_back(bucket, window=window, amount=amount)
        elif entry.startswith(_PRIMARY):
            # The store holds the take: while it is down, the memory does not (and in
            # "closed" mode this says the store is unreachable, as every call does).
            if self._down:
                self._fallback()
                return
            try:
                own = entry[len(_PRIMARY) :]
                await self.primary.give_back(bucket, window=window, amount=amount, entry=own)
            except _UNAVAILABLE as exc:
                self._went_down(exc)
                self._fallback()
        else:
            generation, _, own = entry[1:].partition(":")
            # A memory replaced since (`_carry_over`) went with its windows and the take.
            if generation == str(self._generation):
                await self._memory.give_back(bucket, window=window, amount=amount, entry=own)

    async def reserve(self, account: str, period: str, *, amount: Decimal, budget: Decimal) -> bool:
        if not self._down:
            try:
                return await self.primary.reserve(account, period, amount=amount, budget=budget)
            except _UNAVAILABLE as exc:
                self._went_down(exc)
        memory = self._fallback()
        self._touched.add((account, period))
        # The memory holds the outage's spend; the store's, as last seen, comes off the budget.
        left = budget - self._seen.spent(account, period)
        return await memory.reserve(account, period, amount=amount, budget=left)

    async def settle(
        self, account: str, period: str, *, reserved: Decimal, actual: Decimal
    ) -> None:
        if not self._down:
            try:
                return await self.primary.settle(account, period, reserved=reserved, actual=actual)
            except _UNAVAILABLE as exc:
                self._went_down(exc)
        # A reservation the store holds, settled in memory: the store keeps the (upper)
        # estimate, the memory the actual cost: a conservative error, never an undercount.
        memory = self._fallback()
        self._touched.add((account, period))
        await memory.settle(account, period, reserved=reserved, actual=actual)

    async def spent(self, account: str, period: str) -> Decimal:
        if not self._down:
            try:
                return await self.primary.spent(account, period)
            except _UNAVAILABLE as exc:
                self._went_down(exc)
        outage = await self._fallback().spent(account, period)
        return self._seen.spent(account, period) + outage

    async def ping(self) -> bool:
        """Pings the shared store (not the fallback); a success ends an outage at once."""
        try:
            alive = await self.primary.ping()
        except _UNAVAILABLE:
            alive = False
        if alive and self._down:
            await self._recover()
        elif not alive and not self._down:
            self._went_down(None)
        return alive and not self._down

    async def close(self) -> None:
        self._closed = True
        probe, self._probe = self._probe, None
        await stop_task(probe)
        await self.primary.close()

    # ------------------------------------------------------------------ the outage

    def _fallback(self) -> MemoryState:
        if self.mode == "closed":
            raise StateUnavailable("the gateway's shared state store is unreachable")
        return self._memory

    def _went_down(self, exc: Optional[BaseException]) -> None:
        if not self._down:
            self._down = True
            what = type(exc).__name__ if exc is not None else "no answer to ping"
            if self.mode == "open":
                log.warning(
                    "gateway state store unreachable (%s): limits and budgets are per "
                    "process until it returns (state_failure = 'open')",
                    what,
                )
            else:
                log.warning(
                    "gateway state store unreachable (%s): answering 503 until it returns "
                    "(state_failure = 'closed')",
                    what,
                )
        if not self._closed and (self._probe is None or self._probe.done()):
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while self._down and not self._closed:
            await asyncio.sleep(self.retry_interval)
            try:
                alive = await self.primary.ping()
            except _UNAVAILABLE:
                alive = False
            except Exception:  # a bug in a primary must not end the probing silently
                log.exception("gateway state store probe failed")
                alive = False
            if alive:
                await self._recover()

    async def _recover(self) -> None:
        """Carry what was spent in memory over to the store, then use the store again.

        Several rounds while requests still spend in memory; the last check for nothing
        left and the switch back happen with no await between them, so no spend is left
        behind in memory. One recovery at a time (the probe and a ``ping``)."""
        if self._recovering:
            return
        self._recovering = True
        try:
            await self._carry_over()
        finally:
            self._recovering = False

    async def _carry_over(self) -> None:
        while self._down:
            if not self._touched:
                self._down = False
                log.info("gateway state store answers again: limits and budgets are shared")
                return
            memory, touched = self._memory, self._touched
            self._memory, self._touched = MemoryState(), set()
            self._generation += 1
            try:
                for account, period in sorted(touched):
                    spent = await memory.spent(account, period)
                    if spent > 0:
                        await self.primary.settle(
                            account, period, reserved=Decimal(0), actual=spent
                        )
                    touched.discard((account, period))
            except _UNAVAILABLE:
                # Down again: what was not carried over goes back to the memory.
                for account, period in touched:
                    spent = await memory.spent(account, period)
                    await self._memory.settle(account, period, reserved=Decimal(0), actual=spent)
                    self._touched.add((account, period))
                return


def _spend_seen(primary: GatewayState) -> SpendSeen:
    """What ``primary`` records of the spends it reads and writes (`RedisState`,
    `SQLiteState`); an empty record for a primary that keeps none."""
    seen = getattr(primary, "spend_seen", None)
    return seen if isinstance(seen, SpendSeen) else SpendSeen()


async def stop_task(task: Optional[asyncio.Task[Any]]) -> None:
    """Cancel a background task (a probe, a flusher) and wait for it to end; whatever it
    raised on the way out is of no interest at shutdown."""
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
