"""Fetched provider tokens shared by a gateway's replicas: one token request for the fleet.

Qianfan's tokens (v2's IAM bearer token, v1's OAuth access token) are fetched from a token
endpoint and cached per process (`TokenCredentials`). N gateway replicas would make N
token requests at a cold start and N again after every 401; with a `TokenShare` set on the
engine (``AsyncEngine.token_share``; the gateway sets one in Redis with ``[gateway] state =
"redis://..."``, one in the state file with a SQLite state) they make one between them:

1. Under the process's own lock (`TokenCredentials.async_lock`, so one task per replica
   gets this far), look in the share and `adopt` a fresh token another replica put there.
2. Otherwise take the fleet's lock (``acquire``), look once more (the holder before us may
   have just put one), mint, ``put`` the token with an expiry at its renew time, release.
3. A replica that finds the lock taken polls the share (20 ms, doubling to 250 ms) until
   the token appears, or the lock is free (its holder failed or died: then it mints), for
   at most `WAIT` seconds.

A token is better than an error: when the share fails, does not answer within
`CALL_TIMEOUT`, or no token arrives within `WAIT`, the replica mints on its own, as it
would without a share, and logs one warning (no secret, no URL; again only after the
share has answered in between). A failure of the mint itself (keys refused, IAM down) is
the caller's error, as without a share; the fleet lock is released for the next replica.

A token this process saw rejected (a 401 ``invalid_iam_token``: `TokenCredentials.invalidate`)
is never adopted again, so the next fetch mints a fresh one and overwrites the shared copy;
the other replicas keep using their copy of the old one until the provider refuses it
them too, and then adopt the new one instead of minting.

Renew times travel as Unix seconds. Replicas' clocks may differ by a few seconds: a replica
running ahead renews a little early, one running behind keeps a token a little longer,
inside the margin kept before the token really lapses (a tenth of its lifetime, at most
10 minutes for IAM, an hour for OAuth). The share's own expiry is relative (``PX``), so
its clock does not matter.

Why Zhipu's JWT is not shared: ``auth = "jwt"`` tokens are signed locally from the API
key (HMAC-SHA256, microseconds), with no request to Zhipu or anyone else, and Zhipu checks
the signature and timestamps, not a list of issued tokens. There is no token request to
save: a replica signing its own JWT costs less than one round trip to Redis, and putting
JWTs in Redis would only copy a bearer credential somewhere else. `ZhipuJWT` keeps its
process-local cache.

Only `AsyncEngine` consults a share (the gateway is asynchronous); `SyncEngine` keeps the
per-process single flight, unchanged. This module imports no Redis client: a share is
anything with the four coroutine methods of `TokenShare` (the gateway's are
``llm_bridge.gateway._redis_tokens.RedisTokenShare`` and
``llm_bridge.gateway._sqlite_tokens.SQLiteTokenShare``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from typing import Awaitable, Callable, Optional, Protocol, TypeVar

from ._auth import SharedToken, TokenCredentials
from ._deadline import within

__all__ = [
    "ADOPTED",
    "CALL_TIMEOUT",
    "LOCAL",
    "LOCK_TTL",
    "MINTED",
    "WAIT",
    "SharedToken",
    "TokenShare",
    "obtain_token",
]

log = logging.getLogger("llm_bridge")

#: Seconds the fleet lock lives: a replica that died while minting holds it no longer.
LOCK_TTL = 10.0
#: Seconds a replica waits for the lock holder's token before minting one of its own.
WAIT = 12.0
#: Seconds one call to the share may take before the share counts as failed.
CALL_TIMEOUT = 2.0
#: The first and the longest pause between two looks at the share while waiting.
POLL_FIRST = 0.02
POLL_MAX = 0.25

#: `obtain_token`'s answers: adopted from the share, minted and shared, minted without it.
ADOPTED = "adopted"
MINTED = "minted"
LOCAL = "local"

T = TypeVar("T")


class TokenShare(Protocol):
    """Where replicas put the tokens they mint, and the lock that lets one mint at a time.

    ``key`` is `TokenCredentials.share_key` (a digest, never a secret). Every method may
    raise or hang: `obtain_token` bounds each call and falls back to minting locally."""

    async def get(self, key: str) -> Optional[SharedToken]:
        """The token put under ``key``, or None (none, expired, or unreadable)."""
        ...

    async def put(self, key: str, token: SharedToken, ttl: float) -> None:
        """Keep ``token`` under ``key`` for ``ttl`` seconds (until its renew time)."""
        ...

    async def acquire(self, key: str, ttl: float) -> Optional[str]:
        """Take ``key``'s lock for at most ``ttl`` seconds: an owner string to `release`
        it with, or None while another holds it."""
        ...

    async def release(self, key: str, owner: str) -> None:
        """Free ``key``'s lock if ``owner`` still holds it (it may have lapsed and been
        taken by another since)."""
        ...


class _Unavailable(Exception):
    """The share failed, did not answer in time, or no token came; says why without
    detail (a Redis error may quote its URL, and the URL a password)."""


class _Calls:
    """Calls to one share, each bounded by a timeout, failures as `_Unavailable`."""

    def __init__(self, share: TokenShare, timeout: float) -> None:
        self.share = share
        self.timeout = timeout

    async def __call__(self, awaitable: Awaitable[T]) -> T:
        try:
            result = await within(awaitable, self.timeout)
        except Exception as exc:  # any failure of a pluggable share (CancelledError passes)
            raise _Unavailable(f"{type(exc).__name__}") from exc
        _answered(self.share)
        return result

    async def adopt(self, credentials: TokenCredentials) -> bool:
        """Whether the share held a token ``credentials`` took."""
        shared = await self(self.share.get(credentials.share_key))
        return shared is not None and credentials.adopt(shared.token, shared.renew_at)


async def obtain_token(
    share: TokenShare,
    credentials: TokenCredentials,
    mint: Callable[[], Awaitable[None]],
    *,
    lock_ttl: Optional[float] = None,
    wait: Optional[float] = None,
    call_timeout: Optional[float] = None,
) -> str:
    """Give ``credentials`` a fresh token: one from ``share``, or one ``mint`` fetches (and
    then puts there). The caller holds the process's own lock for ``credentials``.

    Returns `ADOPTED`, `MINTED` (by this replica, for the fleet) or `LOCAL` (minted without
    the share, which failed or kept us waiting too long). ``mint``'s own errors propagate.
    """
    calls = _Calls(share, CALL_TIMEOUT if call_timeout is None else call_timeout)
    key = credentials.share_key
    ttl = LOCK_TTL if lock_ttl is None else lock_ttl
    try:
        if await calls.adopt(credentials):
            return ADOPTED
        owner = await _acquire(calls, credentials, ttl, WAIT if wait is None else wait)
    except _Unavailable as why:
        _unavailable(share, why)
        await mint()
        return LOCAL
    if owner is None:
        return ADOPTED  # the holder's token arrived while we waited
    try:
        try:
            if await calls.adopt(credentials):  # put between our first look and the lock
                return ADOPTED
        except _Unavailable as why:
            _unavailable(share, why)
            await mint()
            return LOCAL
        await mint()
        shared = credentials.export()
        remaining = shared.renew_at - credentials.now() if shared is not None else 0.0
        if shared is not None and remaining > 0:
            try:
                await calls(share.put(key, shared, remaining))
            except _Unavailable as why:
                _unavailable(share, why)
        return MINTED
    finally:
        with contextlib.suppress(_Unavailable):  # else the lock lapses (LOCK_TTL)
            await calls(share.release(key, owner))


async def _acquire(
    calls: _Calls, credentials: TokenCredentials, ttl: float, wait: float
) -> Optional[str]:
    """The fleet lock's owner string once this replica holds it, or None when the token
    the holder minted arrived (and was adopted) first."""
    deadline = time.monotonic() + wait
    delay = POLL_FIRST
    while True:
        owner = await calls(calls.share.acquire(credentials.share_key, ttl))
        if owner is not None:
            return owner
        if time.monotonic() + delay > deadline:
            raise _Unavailable(f"no token from the replica minting one within {wait:g}s")
        await asyncio.sleep(delay)
        if await calls.adopt(credentials):
            return None
        delay = min(delay * 2, POLL_MAX)


# Shares that failed since they last answered: one warning per outage, not per request.
_failing: weakref.WeakSet[TokenShare] = weakref.WeakSet()


def _unavailable(share: TokenShare, why: BaseException) -> None:
    try:
        if share in _failing:
            return
        _failing.add(share)
    except TypeError:  # a share that takes no weak references: warn every time
        pass
    log.warning(
        "the token share is unavailable (%s): this process fetches its provider token "
        "itself until it answers again",
        why,
    )


def _answered(share: TokenShare) -> None:
    try:
        if share not in _failing:
            return
        _failing.discard(share)
    except TypeError:
        return
    log.info("the token share answers again: provider tokens are shared by the fleet")
