"""The usage ledger's default home: a SQLite file, written by one thread.

sqlite3 blocks, and the gateway's event loop must not: every statement runs on a writer
thread that owns the connection. `SQLiteLedger.write` hands an entry over and returns at
once; the thread commits what has queued meanwhile in one transaction, so a busy gateway
pays one commit per batch, not per request, and no request waits for a commit. `flush`
(on shutdown) waits until everything handed over is committed. What a SIGKILL can lose is
the last few milliseconds of hand-overs: a request admitted earlier still has its
provisional row (`IN_PROGRESS`), written when it was admitted. Rows are keyed by
``request_id``, so a repeated write lands once. While another process holds the file's
lock, the thread keeps what has queued and tries again, for up to `_LONGEST_WAIT` (entries
queue behind it meanwhile, up to ``queue_size``, and `flush` waits).

Reading (``llm-bridge usage``, and a gateway restoring this month's budgets when it
starts: all of them into an in-memory state, what came before the file into a new SQLite
state) is plain synchronous sqlite3: `read_entries`, `spend_by_key`.

A relative ``[gateway] ledger`` path is resolved against the config file's directory when
the config is read (`load_gateway_config`), so this module only ever sees the final path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from decimal import Decimal
from pathlib import Path
from typing import Any, Optional, Union

from .._errors import ConfigError
from ._sqlite_state import _busy
from ._state import IN_PROGRESS, LedgerEntry

log = logging.getLogger("llm_bridge.gateway")

__all__ = ["NullLedger", "SQLiteLedger", "read_entries", "spend_by_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger (
    request_id TEXT PRIMARY KEY,
    at REAL NOT NULL,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT,
    upstream_model TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    estimated INTEGER NOT NULL,
    cost_cny TEXT,
    latency_ms REAL NOT NULL,
    status INTEGER NOT NULL,
    error_code TEXT,
    extra TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_at ON ledger (at);
"""

_COLUMNS = (
    "request_id",
    "at",
    "key",
    "model",
    "provider",
    "upstream_model",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "estimated",
    "cost_cny",
    "latency_ms",
    "status",
    "error_code",
    "extra",
)
#: A request's row lands once: a repeated write changes nothing, except that the final
#: row replaces the provisional one written when the request was admitted (error code
#: ``in_progress``), so a process killed mid-request still leaves its row.

_INSERT = (
    f"INSERT INTO ledger ({', '.join(_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in _COLUMNS)}) "
    f"ON CONFLICT(request_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in _COLUMNS[1:])
    + f" WHERE ledger.error_code = '{IN_PROGRESS}'"
)

#: Most entries one transaction takes.
_BATCH = 500
#: The first and the longest pause of the writer thread between two attempts at a file
#: whose lock another process kept past the busy timeout.
_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 1.0
#: How long a batch waits for a file locked by another process before it is dropped
#: (logged): entries queue behind it meanwhile, and once the queue is full every request
#: waits for room, so a lock held for ever must not stall the gateway for ever.
_LONGEST_WAIT = 30.0


def _row(entry: LedgerEntry) -> tuple[Any, ...]:
    return (
        entry.request_id,
        entry.at,
        entry.key,
        entry.model,
        entry.provider,
        entry.upstream_model,
        entry.prompt_tokens,
        entry.completion_tokens,
        entry.cached_tokens,
        int(entry.estimated),
        None if entry.cost_cny is None else str(entry.cost_cny),
        entry.latency_ms,
        entry.status,
        entry.error_code,
        json.dumps(entry.extra, ensure_ascii=False, sort_keys=True),
    )


def _entry(row: tuple[Any, ...]) -> LedgerEntry:
    values = dict(zip(_COLUMNS, row))
    values["estimated"] = bool(values["estimated"])
    cost = values["cost_cny"]
    values["cost_cny"] = None if cost is None else Decimal(cost)
    values["extra"] = json.loads(values["extra"] or "{}")
    return LedgerEntry(**values)


def _connect(path: Union[str, Path], busy_timeout: float) -> sqlite3.Connection:
    connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")  # readers (llm-bridge usage) never block it
    connection.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint/commit
    # Another worker's commit in progress is waited for (on the writer thread).
    connection.execute(f"PRAGMA busy_timeout={round(busy_timeout * 1000)}")
    connection.executescript(_SCHEMA)
    return connection


def open_file(
    path: Path, source: str = "<mapping>", *, busy_timeout: float = 5.0
) -> sqlite3.Connection:
    """A connection to the ledger file at ``path``, its directory and tables made; a
    `ConfigError` naming ``[gateway] ledger`` in ``source`` when the file cannot be used
    (not a SQLite file, a directory that cannot be made, no permission). A statement
    waits up to ``busy_timeout`` seconds for a lock another connection holds."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return _connect(path, busy_timeout)
    except (sqlite3.Error, OSError) as exc:
        raise ConfigError(
            f"{source}: gateway.ledger: cannot use {path} as the SQLite ledger: {exc}"
        ) from None


class SQLiteLedger:
    """A `LedgerSink` over a SQLite file (shared safely by every worker on one machine)."""

    #: The gateway writes a provisional row when it admits a request (see `_INSERT`).
    records_in_progress = True

    def __init__(
        self,
        path: Union[str, Path],
        *,
        queue_size: int = 10_000,
        source: str = "<mapping>",
        busy_timeout: float = 5.0,
    ) -> None:
        """A ledger in the file at ``path`` (made when missing: a `ConfigError` naming
        ``source`` when it cannot be used). The writer thread waits ``busy_timeout``
        seconds at a time for a lock another process holds, and then again."""
        self.path = Path(path)
        # Fails now if the file is unusable.
        self._connection = open_file(self.path, source, busy_timeout=busy_timeout)
        # Bounded: if the disk falls behind the requests, `write` waits for room rather
        # than the queue growing without end (about 300 bytes an entry).
        self._queue: queue.Queue[Optional[tuple[Optional[LedgerEntry], Optional[Future[None]]]]] = (
            queue.Queue(maxsize=queue_size)
        )
        self._thread = threading.Thread(target=self._run, name="llm-bridge-ledger", daemon=True)
        self._thread.start()
        self._closed = False

    async def write(self, entry: LedgerEntry) -> None:
        """Queue ``entry`` for the writer thread and return: the request path waits for no
        commit, and the thread commits whatever has queued meanwhile in one transaction.
        Only when ``queue_size`` entries are waiting (the disk slower than the requests)
        does ``write`` wait for room, so memory stays bounded and no entry is dropped.
        `flush` waits until everything queued is committed."""
        if self._closed:
            raise RuntimeError("the ledger is closed")
        await self._put((entry, None))

    async def flush(self) -> None:
        """Wait until every entry written so far is committed (or, the file locked by
        another process for longer than `_LONGEST_WAIT`, dropped); raise the error of a
        batch that could not be written."""
        done: Future[None] = Future()
        await self._put((None, done))
        await asyncio.wrap_future(done)

    async def _put(self, item: tuple[Optional[LedgerEntry], Optional[Future[None]]]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.get_running_loop().run_in_executor(None, self._queue.put, item)

    async def close(self) -> None:
        if self._closed:
            return
        await self.flush()
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._queue.put, None)
        await loop.run_in_executor(None, self._thread.join, 10.0)

    def _run(self) -> None:
        """The writer thread: take what is queued, commit it in one transaction, answer.
        A batch is a local of `_commit`, so it is freed before the thread waits for the
        next entry (a burst's last 500 entries are not held until the next request)."""
        try:
            while (item := self._queue.get()) is not None:
                self._commit(item)
        finally:
            self._connection.close()

    def _commit(self, first: tuple[Optional[LedgerEntry], Optional[Future[None]]]) -> None:
        batch = [first]
        while len(batch) < _BATCH:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)  # stop after this batch
                break
            batch.append(more)
        rows = [_row(entry) for entry, _ in batch if entry is not None]
        error = self._insert(rows) if rows else None
        for _, done in batch:
            if done is None:
                continue
            if error is None:
                done.set_result(None)
            else:
                done.set_exception(error)

    def _insert(self, rows: list[tuple[Any, ...]]) -> Optional[Exception]:
        """Commit ``rows`` in one transaction. While another process holds the file's lock
        (past the busy timeout: a backup, an open ``sqlite3`` shell, a stuck worker) the
        batch is kept and tried again after a pause, up to `_LONGEST_WAIT`. Any other error
        (a full disk, a damaged file), or a lock held longer, drops the batch, logged with
        the requests it held, and is returned: the writer must outlive one bad batch."""
        pause, stalled = _FIRST_PAUSE, False
        give_up = time.monotonic() + _LONGEST_WAIT
        while True:
            try:
                with self._connection:  # one transaction
                    self._connection.execute("BEGIN IMMEDIATE")
                    self._connection.executemany(_INSERT, rows)
            except Exception as exc:  # (any: see above)
                busy = isinstance(exc, sqlite3.OperationalError) and _busy(exc)
                if not busy or time.monotonic() >= give_up:
                    log.error(
                        "gateway ledger: %d entries could not be written to %s (%s%s); "
                        "their requests: %s",
                        len(rows),
                        self.path,
                        exc,
                        f", locked for over {_LONGEST_WAIT:g} s" if busy else "",
                        ", ".join(str(row[0]) for row in rows[:20])
                        + (" ..." if len(rows) > 20 else ""),
                    )
                    return exc
                if not stalled:
                    stalled = True
                    log.warning(
                        "gateway ledger: %s is locked by another process; %d entries wait "
                        "for it (and the entries after them)",
                        self.path,
                        len(rows),
                    )
                time.sleep(pause)
                pause = min(pause * 2, _LONGEST_PAUSE)
            else:
                if stalled:
                    log.info(
                        "gateway ledger: %s is unlocked; the waiting entries are written", self.path
                    )
                return None


class NullLedger:
    """``[gateway] ledger = "none"``: usage goes to metrics only."""

    async def write(self, entry: LedgerEntry) -> None:
        return None

    async def flush(self) -> None:
        return None

    async def close(self) -> None:
        return None


def _read_only(path: Union[str, Path]) -> sqlite3.Connection:
    """A read-only connection to a ledger file. Its URI is percent-encoded: written into
    ``file:`` as it is, a ``#`` or ``?`` in the path would end it early (and SQLite
    would open another file, finding no ledger table)."""
    return sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)


def spend_by_key(path: Union[str, Path], *, since: float, until: float) -> dict[str, Decimal]:
    """What each key spent (``cost_cny`` summed, exactly) in the entries of [since, until)
    of a ledger file: a gateway whose limits live in its memory starts its monthly
    budgets from it, so a restart does not hand every key a fresh budget."""
    connection = _read_only(path)
    spent: dict[str, Decimal] = {}
    try:
        rows = connection.execute(
            "SELECT key, cost_cny FROM ledger WHERE at >= ? AND at < ? AND cost_cny IS NOT NULL",
            (since, until),
        )
        for key, cost in rows:
            spent[key] = spent.get(key, Decimal(0)) + Decimal(cost)
    finally:
        connection.close()
    return spent


def read_entries(
    path: Union[str, Path], *, since: Optional[float] = None, until: Optional[float] = None
) -> Iterator[LedgerEntry]:
    """The entries of a ledger file, oldest first (for ``llm-bridge usage`` and tests)."""
    connection = _read_only(path)
    try:
        query = f"SELECT {', '.join(_COLUMNS)} FROM ledger WHERE at >= ? AND at < ? ORDER BY at"
        rows = connection.execute(query, (since or 0.0, until or float("inf"))).fetchall()
    finally:
        connection.close()
    for row in rows:
        yield _entry(row)
