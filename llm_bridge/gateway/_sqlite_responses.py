"""Stored Responses in the gateway's SQLite state file (`SQLiteResponseStore`), so that the
worker processes sharing a SQLite state (``[gateway] state = "sqlite..."``, and the file
``llm-bridge serve --workers N`` makes by itself) know every stored response: one created
through one worker is continued (``previous_response_id``), retrieved, listed
(``input_items``) and deleted through any other. Without it, a client's next turn reaches
another worker about half the time and is told its previous response does not exist.

One row per response in the file's ``responses`` table (declared with the others in
`_sqlite_state`): the id as the gateway files it, when it expires (Unix time, the clock
the workers share), and the entry as JSON (`_response_store.encoded`, before the
transaction). Every call is one transaction of the state's own (`SQLiteState.run`), on its
connection: inline, never waiting for a lock inside SQLite, retried off the event loop.

Bounds, as the in-process store's (`ResponseStore`):

- a response is gone ``ttl`` seconds (one hour) after it was stored;
- the file keeps the `DEFAULT_CAPACITY` (10 000) most recently stored. The in-process
  store keeps 1000 per process, in memory; this one serves every worker of the machine
  and keeps its entries on disk, so ten times that: at a turn a second for the hour of
  the TTL, none is dropped early. Each entry holds its conversation so far (a few KB
  for a chat, more for agents with long tool outputs), so the table may reach some
  hundreds of MB at full capacity; past it, the oldest go first.

Each put drops the expired rows (through an index on the expiry) and the oldest rows
beyond the capacity, so the table never holds more. ``store=false`` is decided by the
callers (``_responses_front``): nothing reaches the store.

A failing file (the disk, or a lock held longer than the state's ``busy_timeout``) never
reaches a client: the response was generated and paid for before it is stored. As the
Redis store does, this worker then keeps what it stores in a `ResponseStore` of its own,
answers lookups from it too, and leaves the file alone for ``retry_interval`` seconds at a
time (no request waits on it meanwhile). The first call after that pause which finds the
file usable hands the local entries over (with the time they have left) and deletes
there what was deleted here meanwhile, in one transaction; the workers share them again.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Callable, Optional, TypeVar

from .._response_store import DEFAULT_TTL, ResponseStore, StoredResponse, encoded, seconds
from ._failover import StateUnavailable
from ._sqlite_state import SQLiteState

__all__ = ["DEFAULT_CAPACITY", "SQLiteResponseStore"]

log = logging.getLogger("llm_bridge.gateway")

#: How many stored responses the file keeps (the most recently stored).
DEFAULT_CAPACITY = 10_000

T = TypeVar("T")


class _FileUnusable(Exception):
    """The file failed this call, or is being left alone after a failure."""


class SQLiteResponseStore:
    """`AsyncResponseStore` in a SQLite state file, shared by the processes that open it;
    this worker's memory while the file fails (see the module docstring)."""

    def __init__(
        self,
        state: SQLiteState,
        *,
        ttl: float = DEFAULT_TTL,
        capacity: int = DEFAULT_CAPACITY,
        retry_interval: float = 1.0,
    ) -> None:
        self.state = state
        self.ttl = ttl
        self.capacity = capacity
        self.retry_interval = retry_interval
        #: What this worker stored while the file failed it, until handed over.
        self.local = ResponseStore(ttl=ttl)
        self._retry_at: Optional[float] = None  # (monotonic) while failing: next attempt
        self._forget: set[str] = set()  # deleted here while failing: delete them there

    @property
    def ready(self) -> bool:
        """Whether the file served the last call (False while it is left alone)."""
        return self._retry_at is None

    # ------------------------------------------------------------------ AsyncResponseStore

    async def aget(self, response_id: str) -> Optional[StoredResponse]:
        def read(db: sqlite3.Connection, now: float) -> Optional[bytes]:
            row = db.execute(
                "SELECT entry FROM responses WHERE id = ? AND expires > ?", (response_id, now)
            ).fetchone()
            return row[0] if row else None

        try:
            raw = await self._file(read, write=False, what="look up a stored response")
        except _FileUnusable:
            raw = None
        entry = _decode(raw, response_id) if raw is not None else None
        return entry if entry is not None else self.local.get(response_id)

    async def aput(self, response_id: str, entry: StoredResponse) -> None:
        data = encoded(response_id, entry)
        if data is None:
            return

        def write(db: sqlite3.Connection, now: float) -> None:
            _insert(db, response_id, data, now + self.ttl)
            _trim(db, now, self.capacity)

        try:
            await self._file(write, write=True, what="store a response")
        except _FileUnusable:
            self.local.put(response_id, entry)

    async def adelete(self, response_id: str) -> bool:
        here = self.local.delete(response_id)

        def delete(db: sqlite3.Connection, now: float) -> bool:
            cursor = db.execute(
                "DELETE FROM responses WHERE id = ? AND expires > ?", (response_id, now)
            )
            return cursor.rowcount > 0

        try:
            return await self._file(delete, write=True, what="delete a stored response") or here
        except _FileUnusable:
            self._forget.add(response_id)  # (the file may hold it: deleted when back)
            return here

    def describe(self) -> str:
        where = (
            f"this gateway keeps stored responses in its SQLite state file for "
            f"{seconds(self.ttl)} s (the {self.capacity} most recent), shared by the worker "
            f"processes on this machine"
        )
        if not self.ready:
            where += (
                "; the file cannot be used just now, so this worker finds only the responses "
                "it stored itself meanwhile"
            )
        return where

    async def aclose(self) -> None:
        """Nothing: the file is the state's, which the gateway closes."""

    # ------------------------------------------------------------------ the file

    async def _file(
        self, work: Callable[[sqlite3.Connection, float], T], *, write: bool, what: str
    ) -> T:
        """``work`` in one transaction of the state's, after handing over what this worker
        kept while the file failed; `_FileUnusable` when the file fails (or is still being
        left alone). After a failure the file is pinged first (`SQLiteState.ping`), which
        gives up on a lock still held elsewhere within a quarter of a second rather than
        the state's ``busy_timeout``: no request waits that long once a second while
        another process holds the lock."""
        try:
            if self._retry_at is not None:
                if time.monotonic() < self._retry_at:
                    raise _FileUnusable
                await self.state.ping()
                await self._hand_over()
            return await self.state.run(work, write=write)
        except StateUnavailable as exc:
            if self._retry_at is None:
                log.warning(
                    "gateway response store: cannot %s in the SQLite state file (%s); "
                    "responses stored meanwhile stay in this worker until it can",
                    what,
                    exc,
                )
            self._retry_at = time.monotonic() + self.retry_interval
            raise _FileUnusable from None

    async def _hand_over(self) -> None:
        """Put in the file what was stored here while it failed (with the time each has
        left; an id the file holds already keeps its row) and delete there what was
        deleted here, in one transaction; then use the file again."""

        def move(
            db: sqlite3.Connection, now: float
        ) -> tuple[list[tuple[str, StoredResponse, float]], set[str]]:
            pending, forget = self.local.live(), set(self._forget)
            for response_id in forget:
                db.execute("DELETE FROM responses WHERE id = ?", (response_id,))
            for response_id, entry, left in pending:
                data = encoded(response_id, entry)
                if data is not None:  # (one that cannot be written is dropped: logged)
                    _insert(db, response_id, data, now + left, keep=True)
            _trim(db, now, self.capacity)
            return pending, forget

        pending, forget = await self.state.run(move, write=True)
        # (No await since the commit: nothing was stored or deleted here in between.)
        for response_id, entry, _left in pending:
            self.local.discard(response_id, entry)
        self._forget -= forget
        self._retry_at = None
        log.info("gateway response store: the SQLite state file is usable again; shared")


def _insert(
    db: sqlite3.Connection, response_id: str, data: bytes, expires: float, *, keep: bool = False
) -> None:
    """Store ``data`` under ``response_id`` as the newest row (or, with ``keep``, leave the
    row the id has, if any)."""
    verb = "INSERT OR IGNORE" if keep else "INSERT OR REPLACE"
    db.execute(
        f"{verb} INTO responses (id, expires, entry) VALUES (?, ?, ?)",
        (response_id, expires, data),
    )


def _trim(db: sqlite3.Connection, now: float, capacity: int) -> None:
    """Drop the expired rows, then the oldest beyond ``capacity``."""
    db.execute("DELETE FROM responses WHERE expires <= ?", (now,))
    (count,) = db.execute("SELECT count(*) FROM responses").fetchone()
    if count > capacity:
        db.execute(
            "DELETE FROM responses WHERE seq IN (SELECT seq FROM responses ORDER BY seq LIMIT ?)",
            (count - capacity,),
        )


def _decode(raw: bytes, response_id: str) -> Optional[StoredResponse]:
    try:
        return StoredResponse.from_json(json.loads(raw))
    except ValueError:  # (JSONDecodeError too) a layout of another release
        log.warning("gateway response store: the row of %s holds no stored response", response_id)
        return None
