"""Provider tokens shared through the gateway's SQLite state file (`SQLiteTokenShare`), so
that the worker processes sharing a SQLite state (``[gateway] state = "sqlite..."``, and
the file ``llm-bridge serve --workers N`` makes by itself) make one Qianfan token request
between them, not one each (the algorithm: `llm_bridge._token_share`; the Redis
counterpart: `_redis_tokens`).

Two tables of the state file (declared in `_sqlite_state`), keyed by
`TokenCredentials.share_key` (a SHA-256 digest of the token endpoint and the keys, never
the keys):

``tokens``
    The token, its renew time (Unix seconds) and when the row stops counting (the renew
    time, as the ``ttl`` `put` is given): a row past it is never read, and the next `put`
    deletes it.
``token_locks``
    The single-flight lock: a row with a random owner and an expiry, taken by `acquire` in
    one ``BEGIN IMMEDIATE`` transaction (so two workers never both find it free) when
    there is none or it lapsed, and deleted by `release` only for the owner that took it.

Every call is one transaction of the state's (`SQLiteState.run`), on its connection:
inline and cheap, lock waits off the event loop. A failing file raises `StateUnavailable`,
and `obtain_token` then fetches the token in this worker, as without a share.

The token is stored as is: anyone who can read the file can use it until it lapses (at
most its lifetime, 12 hours for IAM). A state file is therefore made readable by its
owner only (`_sqlite_state._create_private`); a file made by an earlier release keeps its
mode.
"""

from __future__ import annotations

import secrets
import sqlite3
from typing import Optional

from .._auth import SharedToken
from ._sqlite_state import SQLiteState

__all__ = ["SQLiteTokenShare"]


class SQLiteTokenShare:
    """`llm_bridge._token_share.TokenShare` in a SQLite state file. Errors are raised as
    `StateUnavailable` (`obtain_token` bounds every call and falls back to a local fetch)."""

    def __init__(self, state: SQLiteState) -> None:
        self.state = state

    async def get(self, key: str) -> Optional[SharedToken]:
        def read(db: sqlite3.Connection, now: float) -> Optional[SharedToken]:
            row = db.execute(
                "SELECT token, renew_at FROM tokens WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
            return SharedToken(*row) if row is not None else None

        return await self.state.run(read, write=False)

    async def put(self, key: str, token: SharedToken, ttl: float) -> None:
        def write(db: sqlite3.Connection, now: float) -> None:
            db.execute("DELETE FROM tokens WHERE expires <= ?", (now,))
            db.execute(
                "INSERT OR REPLACE INTO tokens VALUES (?, ?, ?, ?)",
                (key, token.token, token.renew_at, now + ttl),
            )

        await self.state.run(write, write=True)

    async def acquire(self, key: str, ttl: float) -> Optional[str]:
        owner = secrets.token_hex(16)

        def take(db: sqlite3.Connection, now: float) -> Optional[str]:
            held = db.execute(
                "SELECT 1 FROM token_locks WHERE key = ? AND expires > ?", (key, now)
            ).fetchone()
            if held is not None:
                return None
            db.execute(
                "INSERT OR REPLACE INTO token_locks VALUES (?, ?, ?)", (key, owner, now + ttl)
            )
            return owner

        return await self.state.run(take, write=True)

    async def release(self, key: str, owner: str) -> None:
        def free(db: sqlite3.Connection, now: float) -> None:
            db.execute("DELETE FROM token_locks WHERE key = ? AND owner = ?", (key, owner))

        await self.state.run(free, write=True)

    async def close(self) -> None:
        """Nothing: the file is the state's, which the gateway closes."""

    def __repr__(self) -> str:
        return f"SQLiteTokenShare({str(self.state.path)!r})"
