"""Provider tokens shared through the gateway's Redis (`RedisTokenShare`), so that the
replicas of a gateway with ``[gateway] state = "redis://..."`` make one Qianfan token
request between them, not one each (the algorithm: `llm_bridge._token_share`).

Keys, under the state's prefix (``"llm-bridge:"``), named by `TokenCredentials.share_key`
(a SHA-256 digest of the token endpoint and the keys, never the keys):

``llm-bridge:token:<share_key>``
    JSON ``{"token": ..., "renew_at": <Unix seconds>}``, set with ``PX`` until the renew
    time, so Redis forgets a token no replica should use any more.
``llm-bridge:token:<share_key>:lock``
    The single-flight lock: ``SET key <random owner> NX PX <ms>``, released by a Lua
    compare-and-delete, so a replica whose lock lapsed never frees another's.

The token itself is stored as is: anyone who can read this Redis can use it until it
lapses (at most the token's lifetime, 12 hours for IAM). The gateway's Redis already holds
budgets and the ledger; protect it accordingly (``requirepass``/ACLs, ``rediss://``, a
private network). Zhipu's JWTs are not shared (see `llm_bridge._token_share` for why).

Redis is reached the way `_redis` reaches it (its client options, timeouts and script
runner), on a small pool of its own, connected lazily: nothing is sent before the first
token fetch, and a gateway starts while Redis is down (its replicas then fetch their own
tokens).
"""

from __future__ import annotations

import json
import math
import secrets
from typing import TYPE_CHECKING, Any, Optional

import redis.asyncio as aioredis

from .._auth import SharedToken
from ._redis import DEFAULT_PREFIX, _client, _RedisUser, _Script, _wait

if TYPE_CHECKING:
    from ._config import GatewayConfig

__all__ = ["RedisTokenShare", "open_token_share"]

_RELEASE = """
-- KEYS[1]: the lock; ARGV[1]: its owner. Deletes the lock only if that owner still holds it.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def open_token_share(
    gateway: GatewayConfig, *, prefix: str = DEFAULT_PREFIX
) -> Optional[RedisTokenShare]:
    """The token share for ``[gateway] state``: in its Redis, or None without Redis (each
    process shares its tokens among its own clients)."""
    if gateway.state_kind != "redis":
        return None
    return RedisTokenShare.from_url(gateway.state, prefix=prefix)


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds, at least one (``PX 0`` is an error)."""
    return max(math.ceil(seconds * 1000), 1)


class RedisTokenShare(_RedisUser):
    """`llm_bridge._token_share.TokenShare` in Redis. Errors are raised as redis-py's
    (`obtain_token` bounds every call and falls back to a local fetch)."""

    _release = _Script(_RELEASE)

    def __init__(
        self, client: aioredis.Redis, *, prefix: str = DEFAULT_PREFIX, owns_client: bool = False
    ) -> None:
        self.client = client
        self.prefix = prefix
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.5,
        max_connections: int = 8,
        **options: Any,
    ) -> RedisTokenShare:
        """A share on its own small connection pool (closed by `close`): token fetches are
        rare, one replica's are serialised, and a waiter polls on one connection."""
        client = _client(
            url,
            socket_timeout=socket_timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            **options,
        )
        return cls(client, prefix=prefix, owns_client=True)

    def token_key(self, key: str) -> str:
        return f"{self.prefix}token:{key}"

    def lock_key(self, key: str) -> str:
        return f"{self.prefix}token:{key}:lock"

    async def get(self, key: str) -> Optional[SharedToken]:
        raw = await _wait(self.client.get(self.token_key(key)))
        if not raw:
            return None
        try:
            value = json.loads(raw)
            token, renew_at = value["token"], float(value["renew_at"])
        except (ValueError, TypeError, KeyError):
            return None  # not ours, or from an incompatible version: mint a fresh one
        if not isinstance(token, str) or not token or not math.isfinite(renew_at):
            return None
        return SharedToken(token, renew_at)

    async def put(self, key: str, token: SharedToken, ttl: float) -> None:
        value = json.dumps({"token": token.token, "renew_at": token.renew_at})
        await _wait(self.client.set(self.token_key(key), value, px=_ms(ttl)))

    async def acquire(self, key: str, ttl: float) -> Optional[str]:
        owner = secrets.token_hex(16)
        taken = await _wait(self.client.set(self.lock_key(key), owner, nx=True, px=_ms(ttl)))
        return owner if taken else None

    async def release(self, key: str, owner: str) -> None:
        await self._release(self.client, (self.lock_key(key),), (owner,))

    def __repr__(self) -> str:  # never the client's: its URL may carry a password
        return f"RedisTokenShare(prefix={self.prefix!r})"
