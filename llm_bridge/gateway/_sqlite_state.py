"""Gateway state in a SQLite file: one rate limit and one budget for every worker process
on one machine (``[gateway] state = "sqlite"``, and what ``llm-bridge serve --workers N``
uses by itself when the config says ``"memory"``).

Why SQLite: the workers of one server are processes, so memory is not shared; Redis
shares it but is a second service to run. A SQLite file needs nothing beyond the
standard library, and its write lock makes a decision atomic across processes.

Each decision is one transaction
    ``BEGIN IMMEDIATE`` takes the database's write lock before anything is read, so the
    read (what a bucket has used, what an account has spent), the decision and the write
    happen with no other process in between: two workers never both take the last unit.
    The file is in WAL mode (readers never wait for the writer) with
    ``synchronous=NORMAL`` (a commit is not fsynced; a checkpoint is, so a power cut may
    lose the last commits, never the file).

Blocking calls, run inline on the event loop (measured: ``docs/gateway-sqlite-state.md``)
    A decision costs 10-30 microseconds (p50; a few rows read and written on pages in
    memory), less than handing it to a thread and back (30-45 us), so it runs inline.
    Two things could block the loop for long, and neither is done inline:

    - Waiting for another process's lock. The connection's busy timeout is 0: a
      ``BEGIN IMMEDIATE`` that finds the lock taken gives up at once and is retried after
      an ``asyncio.sleep`` (0.2 ms, doubling up to 5 ms), so the loop serves other
      requests meanwhile. (SQLite's own busy handler sleeps inside the call, 1, 2, 5 ...
      100 ms, and in a test of four busy processes let a waiter starve for seconds.)
      After ``busy_timeout`` seconds of waiting (another process stopped holding the
      lock), or when the disk fails, a call raises `StateUnavailable`, which
      ``state_failure`` turns into per-process limits or a 503 (`open_state` wraps the
      state in a `FailoverState`, as Redis's).
    - Checkpoints, which copy the WAL into the file and fsync it (5-15 ms). SQLite runs
      one inside the commit that fills 1000 pages; here `_Checkpointer`, a thread, runs
      them every 100 commits, and the inline one is only a bound (`_WAL_PAGES_MAX`).

    There is no ``await`` inside a transaction, so the calls of one event loop never
    interleave on the connection; a `SQLiteState` belongs to one event loop.

Rate limits (`take`, `give_back`): a sliding-window log, as `MemoryState`'s
    Table ``takes`` holds one row per take still in its window (bucket, time, sequence,
    units) and ``buckets`` one per bucket (the running sum of its units, its sequence,
    and when its last take leaves the window). A take expires its bucket's old rows,
    reads the sum, decides and adds: O(rows that expired), not O(window). A take's id
    (`take_entry`) is its row's time and sequence, so a give-back shrinks that row
    alone, or nothing once it has expired. Every ``_SWEEP_EVERY`` seconds a call also
    drops whole buckets idle past their window (a key removed from the config), so the
    tables hold what the windows hold, nothing older. Time is the wall clock
    (``time.time``): the workers share it, while each has its own monotonic clock. A
    wall clock set back keeps takes in the window longer (the limit errs strict), one
    set forward lets them leave sooner.

Budgets (`reserve`, `settle`, `spent`): exact decimals
    Table ``spend`` holds each account's spend in a period as text (``"12.3400567"``),
    never a float, and the arithmetic is Python's `Decimal` with unlimited precision, so
    no sum loses a digit at any scale. A period's row is deleted 40 days after its last
    change (as Redis's budget hash expires).

Budgets carried over from the ledger (`created`, `seeded`, `seed`)
    A state in memory starts each month's budgets from the SQLite ledger; this file keeps
    its budgets itself, so only spend from *before the file existed* may be added, and
    only once: `seed` adds a period's spend and marks the period in one transaction, and
    the gateway reads the ledger only up to `created`. Every worker tries at startup;
    the first adds, the others find the mark. A file that persists across restarts is
    therefore never counted twice, and a fresh file (the per-run file of ``llm-bridge
    serve --workers N``) starts from what the ledger says. A seed the file failed (a
    lock held elsewhere past ``busy_timeout``) is added by the worker's next write that
    succeeds.

Stored Responses and provider tokens (tables ``responses``, ``tokens``, ``token_locks``)
    The same file, on the same connection and through the same transactions (`run`),
    holds what the workers share besides limits: the stored Responses of
    ``_sqlite_responses`` and the provider tokens of ``_sqlite_tokens``. One file means one
    path to configure, one lock discipline and one checkpointer. All the file's tables are
    declared here (`_SCHEMA`), so its layout reads in one place; version 2 added these
    three, and a version-1 file is given them when it is opened (`_init_meta`). A new file
    is made readable by its owner only, since it holds a bearer token (`_create_private`).
"""

from __future__ import annotations

import asyncio
import contextlib
import decimal
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional, TypeVar, Union

from .._errors import ConfigError
from ._failover import FailoverState, StateUnavailable
from ._state import GatewayState, SpendSeen, TakesByEntry, take_by_arguments

if TYPE_CHECKING:
    from ._config import GatewayConfig

__all__ = ["SPEND_TTL", "SQLiteState", "open_state", "shared_file"]

log = logging.getLogger("llm_bridge.gateway")

#: Seconds a period's spend is kept after its last change (a month's outlives it by ~10 days).
SPEND_TTL = 40 * 86400.0
#: Seconds between sweeps of idle buckets and old spend, per process.
_SWEEP_EVERY = 10.0
#: The first and the longest pause between attempts at a lock another process holds.
_FIRST_PAUSE = 0.0002
_LONGEST_PAUSE = 0.005
#: Seconds `ping` waits for the write lock: the other processes' decisions hold it for
#: microseconds, so a lock held this long is held by something else.
_PING_WAIT = 0.25
#: The file's layout, and the one before it, which this one only adds tables to: a file
#: of it is given them by `_connect` and marked as of this one by `_init_meta`.
_VERSION = "2"
_PREVIOUS = "1"
#: Commits of one process between two checkpoints its background thread runs.
_CHECKPOINT_EVERY = 100
#: WAL pages past which a commit checkpoints inline after all (the thread cannot keep
#: up: a WAL of at most ~40 MB), and the size the WAL file is cut back to after one.
_WAL_PAGES_MAX = 10_000
_WAL_BYTES_KEPT = 4 * 1024 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
    bucket TEXT PRIMARY KEY,
    used INTEGER NOT NULL,      -- the units of the bucket's rows in takes
    seq INTEGER NOT NULL,       -- the last take's sequence number
    idle_at REAL NOT NULL       -- when the bucket's last take leaves its window
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS takes (
    bucket TEXT NOT NULL,
    at REAL NOT NULL,
    seq INTEGER NOT NULL,
    units INTEGER NOT NULL,
    PRIMARY KEY (bucket, at, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS spend (
    account TEXT NOT NULL,
    period TEXT NOT NULL,
    amount TEXT NOT NULL,       -- yuan, an exact decimal in plain notation
    changed REAL NOT NULL,
    PRIMARY KEY (account, period)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seeded (period TEXT PRIMARY KEY) WITHOUT ROWID;
-- Version 2: stored Responses (_sqlite_responses) and provider tokens (_sqlite_tokens).
CREATE TABLE IF NOT EXISTS responses (
    seq INTEGER PRIMARY KEY,    -- the order they were stored in: the oldest go first
    id TEXT NOT NULL UNIQUE,    -- as filed by the gateway ("<key name>/<response id>")
    expires REAL NOT NULL,
    entry BLOB NOT NULL         -- StoredResponse.to_json, as JSON
);
CREATE INDEX IF NOT EXISTS responses_expiry ON responses (expires);
CREATE TABLE IF NOT EXISTS tokens (
    key TEXT PRIMARY KEY,       -- TokenCredentials.share_key (a digest, never a secret)
    token TEXT NOT NULL,
    renew_at REAL NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS token_locks (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""

#: Exact decimal arithmetic: enough precision that a sum is never rounded.
_EXACT = decimal.Context(
    prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN, traps=[]
)

T = TypeVar("T")


def open_state(gateway: GatewayConfig) -> FailoverState:
    """The state of ``[gateway] state = "sqlite..."``: a `SQLiteState` behind the
    ``state_failure`` policy, as Redis's. Opens (and creates) the file now, so a path that
    cannot be used is a `ConfigError` before the gateway serves anything."""
    path = gateway.state_path
    assert path is not None, "not a SQLite state"
    state = SQLiteState.open(path, source=gateway.source)
    mode = "closed" if gateway.state_failure == "closed" else "open"
    return FailoverState(state, mode=mode)


def shared_file(state: GatewayState) -> Optional[SQLiteState]:
    """The `SQLiteState` ``state`` is, or wraps (`open_state`'s `FailoverState`); None for
    a state of another kind. Whoever shares one shares its file: the budgets seeded from
    the ledger, stored Responses, provider tokens."""
    if isinstance(state, FailoverState):
        state = state.primary
    return state if isinstance(state, SQLiteState) else None


class SQLiteState(TakesByEntry):
    """Limits and budgets shared by the processes that open the same file (see
    `GatewayState` and the module docstring)."""

    def __init__(
        self,
        path: Union[str, Path],
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ) -> None:
        """Open (creating it and its tables when missing) the state file at ``path``.
        Raises `sqlite3.Error` or `OSError` when it cannot (`open` says it as a
        `ConfigError`). ``clock`` is the wall clock every process shares (a test's own);
        ``busy_timeout`` how long a call waits for another process's lock."""
        self.path = Path(path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        #: What the file last said each account had spent (`FailoverState` reads it).
        self.spend_seen = SpendSeen()
        #: The seeds the file failed (`seed`): added by the next write that succeeds.
        self._unseeded: dict[str, dict[str, Decimal]] = {}
        self._next_sweep = 0.0
        self._commits = 0
        self._checkpoints: Optional[_Checkpointer] = None
        _create_private(self.path)
        self._db = _connect(self.path)
        try:
            #: When the file was created (Unix time): the ledger's spend before it is what
            #: `seed` may add.
            self.created: float = self._init_meta()
        except BaseException:
            self._db.close()
            raise

    @classmethod
    def open(
        cls,
        path: Union[str, Path],
        *,
        source: str = "<mapping>",
        key: str = "gateway.state",
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 5.0,
    ) -> SQLiteState:
        """`SQLiteState`, with a failure to open the file said as a `ConfigError` naming
        the config file (``source``), the key and the path."""
        path = Path(path)
        try:
            return cls(path, clock=clock, busy_timeout=busy_timeout)
        except (sqlite3.Error, OSError) as exc:
            hint = ""
            if not path.parent.is_dir():
                hint = f" (the directory {path.parent} does not exist)"
            raise ConfigError(
                f"{source}: {key}: cannot open the SQLite state file {path}: {exc}{hint}"
            ) from None

    def _init_meta(self) -> float:
        """The file's creation time, recorded by the first process to open it; a file of
        the previous layout (which `_connect` gave the new tables) is marked as of this."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('version', ?), ('created', ?)",
                (_VERSION, repr(self.clock())),
            )
            db.execute(
                "UPDATE meta SET value = ? WHERE name = 'version' AND value = ?",
                (_VERSION, _PREVIOUS),
            )
            rows = dict(db.execute("SELECT name, value FROM meta").fetchall())
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if rows.get("version") != _VERSION:
            raise sqlite3.DatabaseError(f"state schema version {rows.get('version')!r}")
        # From now on a busy lock is waited for by `run`, off the event loop.
        db.execute("PRAGMA busy_timeout = 0")
        return float(rows["created"])

    # ------------------------------------------------------------------ GatewayState

    async def take_entry(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> tuple[float, Optional[str]]:
        early = take_by_arguments(amount=amount, limit=limit, window=window, force=force)
        if early is not None:
            return early, None

        def decide(db: sqlite3.Connection, now: float) -> tuple[float, Optional[str]]:
            used, seq = _expire(db, bucket, now - window)
            if force or used + amount <= limit:
                db.execute("INSERT INTO takes VALUES (?, ?, ?, ?)", (bucket, now, seq + 1, amount))
                db.execute(
                    "INSERT INTO buckets VALUES (?, ?, ?, ?) ON CONFLICT (bucket) DO UPDATE "
                    "SET used = excluded.used, seq = excluded.seq, "
                    "idle_at = max(idle_at, excluded.idle_at)",
                    (bucket, used + amount, seq + 1, now + window),
                )
                return 0.0, _entry_id(now, seq + 1)
            # Wait until enough of the oldest takes leave the window.
            excess = used + amount - limit
            rows = db.execute(
                "SELECT at, units FROM takes WHERE bucket = ? ORDER BY at, seq", (bucket,)
            )
            for at, units in rows:
                excess -= units
                if excess <= 0:
                    return max(at + window - now, 0.001), None
            return window, None  # pragma: no cover - used == the rows' units, amount <= limit

        return await self.run(decide, write=True)

    async def give_back(
        self, bucket: str, *, window: float, amount: int, entry: Optional[str] = None
    ) -> None:
        if amount <= 0:
            return
        if entry is not None:
            key = _entry_key(entry)
            if key is not None:
                await self.run(
                    lambda db, now: _give_back_to(db, bucket, key, window, amount, now), write=True
                )
            return

        def shrink(db: sqlite3.Connection, now: float) -> None:
            used, _ = _expire(db, bucket, now - window)
            left = amount
            while left > 0 and used > 0:
                # The newest take first: it holds its place in the window longest.
                row = db.execute(
                    "SELECT at, seq, units FROM takes WHERE bucket = ? "
                    "ORDER BY at DESC, seq DESC LIMIT 1",
                    (bucket,),
                ).fetchone()
                if row is None:
                    break
                at, seq, units = row
                if units > left:
                    db.execute(
                        "UPDATE takes SET units = ? WHERE bucket = ? AND at = ? AND seq = ?",
                        (units - left, bucket, at, seq),
                    )
                    used -= left
                    left = 0
                else:
                    db.execute(
                        "DELETE FROM takes WHERE bucket = ? AND at = ? AND seq = ?",
                        (bucket, at, seq),
                    )
                    used -= units
                    left -= units
            db.execute("UPDATE buckets SET used = ? WHERE bucket = ?", (max(used, 0), bucket))

        await self.run(shrink, write=True)

    async def reserve(self, account: str, period: str, *, amount: Decimal, budget: Decimal) -> bool:
        def decide(db: sqlite3.Connection, now: float) -> tuple[bool, Decimal]:
            spent = _spend(db, account, period)
            new = _EXACT.add(spent, amount)
            if new > budget:  # (comparisons are exact in any context)
                return False, spent
            _set_spend(db, account, period, new, now)
            return True, new

        done, spent = await self.run(decide, write=True)
        self.spend_seen.saw(account, period, spent)
        return done

    async def settle(
        self, account: str, period: str, *, reserved: Decimal, actual: Decimal
    ) -> None:
        def replace(db: sqlite3.Connection, now: float) -> Decimal:
            new = _EXACT.add(_EXACT.subtract(_spend(db, account, period), reserved), actual)
            new = max(new, Decimal(0))
            _set_spend(db, account, period, new, now)
            return new

        spent = await self.run(replace, write=True)
        self.spend_seen.saw(account, period, spent)

    async def spent(self, account: str, period: str) -> Decimal:
        spent = await self.run(lambda db, now: _spend(db, account, period), write=False)
        self.spend_seen.saw(account, period, spent)
        return spent

    async def ping(self) -> bool:
        """Whether a decision could be made now (``/readyz``, and `FailoverState`'s probe
        during an outage): the file answers a read *with its write lock taken*, within
        `_PING_WAIT` seconds; raises `StateUnavailable` when it does not ("unreachable").
        A plain read succeeds while another process holds the lock (WAL readers do not
        wait for the writer), so a probe by reading ended an outage every second only for
        the next decision to wait ``busy_timeout`` and fail again."""
        return await self._retrying(self._probe, min(self.busy_timeout, _PING_WAIT))

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        """Close the file (for a caller with no event loop)."""
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self._db.close()

    # ------------------------------------------------------------------ seeding

    async def seeded(self, period: str) -> bool:
        """Whether some process has already run `seed` for ``period`` on this file."""

        def read(db: sqlite3.Connection, now: float) -> bool:
            row = db.execute("SELECT 1 FROM seeded WHERE period = ?", (period,)).fetchone()
            return row is not None

        return await self.run(read, write=False)

    async def seed(self, period: str, spent: Mapping[str, Decimal]) -> bool:
        """Add ``spent`` (each account's spend in ``period`` before `created`, from the
        ledger) to the budgets, unless a process did so already; True when added. When
        the file fails (`StateUnavailable`, raised), the seed is kept and added by this
        process's next write that succeeds: a worker that started while another process
        held the lock does not leave the month's budgets without what came before."""
        self._unseeded.pop(period, None)
        try:
            return await self.run(lambda db, now: _seed(db, period, spent, now), write=True)
        except StateUnavailable:
            self._unseeded[period] = dict(spent)
            raise

    # ------------------------------------------------------------------ transactions

    async def run(self, work: Callable[[sqlite3.Connection, float], T], *, write: bool) -> T:
        """``work(connection, now)`` in one transaction (``BEGIN IMMEDIATE`` when it
        writes), inline; while another process holds the lock, retried after a pause that
        lets the event loop run. Errors of the file become `StateUnavailable`. ``now`` is
        `clock`'s. Public for the file's other users (`_sqlite_responses`,
        `_sqlite_tokens`); ``work`` must not block, and is rerun from the start when the
        lock was busy."""
        return await self._retrying(lambda: self._transaction(work, write), self.busy_timeout)

    async def _retrying(self, attempt: Callable[[], T], wait: float) -> T:
        """``attempt()``, again after a pause that lets the event loop run for as long as
        another process holds the lock, up to ``wait`` seconds; errors of the file (and
        the lock held past ``wait``) as `StateUnavailable`."""
        deadline: Optional[float] = None
        pause = _FIRST_PAUSE
        while True:
            try:
                return attempt()
            except sqlite3.OperationalError as exc:
                if not _busy(exc):
                    raise StateUnavailable(f"SQLite state {self.path}: {exc}") from exc
            except sqlite3.DatabaseError as exc:  # (not a database, or a corrupt one)
                if isinstance(exc, sqlite3.IntegrityError):
                    raise
                raise StateUnavailable(f"SQLite state {self.path}: {exc}") from exc
            now = time.monotonic()
            if deadline is None:
                deadline = now + wait
            elif now >= deadline:
                raise StateUnavailable(
                    f"SQLite state {self.path}: locked by another process for {wait:g} s"
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def _transaction(self, work: Callable[[sqlite3.Connection, float], T], write: bool) -> T:
        db = self._db
        db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        try:
            now = self.clock()
            if write and now >= self._next_sweep:
                _sweep(db, now)
                self._next_sweep = now + _SWEEP_EVERY
            unseeded = self._unseeded if write else {}
            for period, spent in unseeded.items():
                _seed(db, period, spent, now)
            result = work(db, now)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if unseeded:
            self._unseeded = {}
        if write:
            self._commits += 1
            if self._commits >= _CHECKPOINT_EVERY:
                self._commits = 0
                if self._checkpoints is None:
                    self._checkpoints = _Checkpointer(self.path)
                self._checkpoints.wake()
        return result

    def _probe(self) -> bool:
        """Take the write lock, read the file's version, and let go (`ping`)."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            return db.execute("SELECT 1 FROM meta WHERE name = 'version'").fetchone() is not None
        finally:
            db.execute("ROLLBACK")


class _Checkpointer:
    """A thread that copies the WAL into the database file when woken (a ``PASSIVE``
    checkpoint: it never waits for, nor blocks, a writer).

    SQLite checkpoints by itself at the end of a commit once the WAL holds 1000 pages,
    and that commit then copies ~4 MB and fsyncs the file, a 5-15 ms stall of the event
    loop (measured) every few hundred decisions. Here the commits wake this thread
    instead, and the inline checkpoint remains only as a bound (`_WAL_PAGES_MAX`) for a
    load the thread cannot keep up with."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._woken = threading.Event()
        self._stopped = False
        self._thread = threading.Thread(
            target=self._run, name="llm-bridge-state-checkpoint", daemon=True
        )
        self._thread.start()

    def wake(self) -> None:
        self._woken.set()

    def stop(self) -> None:
        self._stopped = True
        self._woken.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        try:
            db = sqlite3.connect(str(self.path), isolation_level=None)
        except sqlite3.Error as exc:
            log.warning("gateway state: cannot checkpoint %s: %s", self.path, exc)
            return
        try:
            while True:
                self._woken.wait()
                self._woken.clear()
                if self._stopped:
                    return
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # the next commit's `run` reports the file
                    log.debug("gateway state: checkpoint of %s failed: %s", self.path, exc)
        finally:
            db.close()


# ---------------------------------------------------------------------------- helpers


def _create_private(path: Path) -> None:
    """Make the file (empty: SQLite takes it for a new database) readable and writable by
    its owner only. It holds a provider's bearer token (`_sqlite_tokens`), and SQLite
    gives the WAL and shared-memory files it makes beside it the database file's
    permissions. A symlink to a file not made yet has that file made so. A file that
    exists keeps its mode, with a warning when others may read it (made by an earlier
    release, or by hand)."""
    target = os.path.realpath(path)
    try:
        os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        with contextlib.suppress(OSError):
            mode = stat.S_IMODE(os.stat(target).st_mode)
            if mode & 0o077:
                log.warning(
                    "gateway state: %s can be read or written by other users (mode %03o) "
                    "and holds provider access tokens; chmod 600 it",
                    path,
                    mode,
                )


def _connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), the file in WAL mode
    and its tables made. Waits up to 5 s for a lock here only: processes starting
    together may all be creating the file. A file of a later layout is refused before
    anything is written to it (its release may have changed the tables made here)."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout = 5000")
        _refuse_later_layout(db)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint = {_WAL_PAGES_MAX}")  # see _Checkpointer
        db.execute(f"PRAGMA journal_size_limit = {_WAL_BYTES_KEPT}")
        db.executescript(_SCHEMA)
    except BaseException:
        db.close()
        raise
    return db


def _refuse_later_layout(db: sqlite3.Connection) -> None:
    """Raise if the file's ``meta`` says it is of a layout other than this or the one
    before it (an empty or new file, or one without ``meta``, passes)."""
    try:
        row = db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return
        raise
    if row is not None and row[0] not in (_VERSION, _PREVIOUS):
        raise sqlite3.DatabaseError(
            f"state schema version {row[0]!r}: the file is of another llm-bridge release "
            f"(this one reads versions {_PREVIOUS} and {_VERSION}); give this one a file "
            f"of its own"
        )


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Whether ``exc`` is "another connection holds the lock" (worth waiting for)."""
    code = getattr(exc, "sqlite_errorcode", None)  # (Python 3.11+)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


def _expire(db: sqlite3.Connection, bucket: str, cutoff: float) -> tuple[int, int]:
    """Drop ``bucket``'s takes at or before ``cutoff``; its units still in the window and
    its last sequence number."""
    row = db.execute("SELECT used, seq FROM buckets WHERE bucket = ?", (bucket,)).fetchone()
    if row is None:
        return 0, 0
    used, seq = row
    (gone,) = db.execute(
        "SELECT COALESCE(SUM(units), 0) FROM takes WHERE bucket = ? AND at <= ?",
        (bucket, cutoff),
    ).fetchone()
    if gone:
        db.execute("DELETE FROM takes WHERE bucket = ? AND at <= ?", (bucket, cutoff))
        used = max(used - gone, 0)
        db.execute("UPDATE buckets SET used = ? WHERE bucket = ?", (used, bucket))
    return used, seq


def _entry_id(at: float, seq: int) -> str:
    """The id `take_entry` gives a take: its row's key in ``takes`` (``repr`` of a float
    reads back as the same float)."""
    return f"{at!r}/{seq}"


def _entry_key(entry: str) -> Optional[tuple[float, int]]:
    """The ``(at, seq)`` of an id `_entry_id` made; None for text it did not make."""
    at, _, seq = entry.rpartition("/")
    try:
        return float(at), int(seq)
    except ValueError:
        return None


def _give_back_to(
    db: sqlite3.Connection,
    bucket: str,
    key: tuple[float, int],
    window: float,
    amount: int,
    now: float,
) -> None:
    """Shrink the take ``key`` of ``bucket`` by ``amount`` (at most what it holds), if it
    is still in the window; the other takes are left as they are."""
    used, _ = _expire(db, bucket, now - window)
    at, seq = key
    row = db.execute(
        "SELECT units FROM takes WHERE bucket = ? AND at = ? AND seq = ?", (bucket, at, seq)
    ).fetchone()
    if row is None:  # left the window (or never was)
        return
    (units,) = row
    back = min(amount, units)
    if units > back:
        db.execute(
            "UPDATE takes SET units = ? WHERE bucket = ? AND at = ? AND seq = ?",
            (units - back, bucket, at, seq),
        )
    else:
        db.execute("DELETE FROM takes WHERE bucket = ? AND at = ? AND seq = ?", (bucket, at, seq))
    db.execute("UPDATE buckets SET used = ? WHERE bucket = ?", (max(used - back, 0), bucket))


def _seed(db: sqlite3.Connection, period: str, spent: Mapping[str, Decimal], now: float) -> bool:
    """Add ``spent`` to the budgets of ``period`` and mark the period seeded, unless it
    is already (`SQLiteState.seed`); True when added."""
    if db.execute("SELECT 1 FROM seeded WHERE period = ?", (period,)).fetchone():
        return False
    for account, cost in spent.items():
        _set_spend(db, account, period, _EXACT.add(_spend(db, account, period), cost), now)
    db.execute("INSERT INTO seeded VALUES (?)", (period,))
    return True


def _sweep(db: sqlite3.Connection, now: float) -> None:
    """Drop buckets whose every take has left the window, and spend unchanged for
    `SPEND_TTL` seconds: what keeps the file as small as the live windows."""
    db.execute(
        "DELETE FROM takes WHERE bucket IN (SELECT bucket FROM buckets WHERE idle_at <= ?)",
        (now,),
    )
    db.execute("DELETE FROM buckets WHERE idle_at <= ?", (now,))
    db.execute("DELETE FROM spend WHERE changed < ?", (now - SPEND_TTL,))


def _spend(db: sqlite3.Connection, account: str, period: str) -> Decimal:
    row = db.execute(
        "SELECT amount FROM spend WHERE account = ? AND period = ?", (account, period)
    ).fetchone()
    return Decimal(row[0]) if row else Decimal(0)


def _set_spend(
    db: sqlite3.Connection, account: str, period: str, amount: Decimal, now: float
) -> None:
    db.execute(
        "INSERT INTO spend VALUES (?, ?, ?, ?) ON CONFLICT (account, period) DO UPDATE "
        "SET amount = excluded.amount, changed = excluded.changed",
        (account, period, _text(amount), now),
    )


def _text(amount: Decimal) -> str:
    """``amount`` as exact plain digits (``"0.0000008"``, never ``"8E-7"``)."""
    return format(amount, "f")
