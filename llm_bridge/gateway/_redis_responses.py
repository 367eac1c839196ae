"""Stored Responses in the gateway's Redis (`RedisResponseStore`), so that every replica of a
gateway with ``[gateway] state = "redis://..."`` knows every stored response: one created
through one replica is continued (``previous_response_id``), retrieved, listed
(``input_items``) and deleted through any other.

One key per response, under the state's prefix (``"llm-bridge:"``)::

    llm-bridge:response:<response id>   JSON (`_response_store.encoded`), SET with PX <ttl>

Redis forgets a response ``ttl`` seconds (one hour, as in a single process) after it was
stored; ``delete`` is a ``DEL``. The in-process store's other bound, a capacity (the 1000
most recent), has no counterpart here: Redis holds every response of the last ``ttl``
seconds, each with its conversation so far. Size Redis for that; under Redis's default
``maxmemory-policy noeviction`` a full Redis refuses the write and the response is kept by
the replica that made it (as during an outage, below), while a ``volatile-*`` policy may
evict stored responses (and other keys with a time to live) early.

When Redis does not answer, the store fails open whatever ``state_failure`` says, because
by the time a response is stored it has been generated and paid for: refusing it would
lose it, and a lookup can still be answered from what this replica holds. So while Redis
is unreachable, responses are stored in a `ResponseStore` of this replica's (the 1000
most recent; a response stored then lives in this replica only, and an id stored in
Redis is "not found" here: the error says why), nothing waits on Redis (a background
probe pings it every ``retry_interval`` seconds), and no Redis error ever reaches a
client. When Redis answers again, the responses stored meanwhile are handed over to it
(``SET ... NX``, with the time they have left), the responses deleted meanwhile are
deleted there (wherever they were stored), and the replicas share them from then on.

Redis is reached the way `_redis` reaches it (its client options and timeouts), on a pool
of the store's own, connected lazily: nothing is sent before the first Responses request,
and a gateway starts while Redis is down. The store is asynchronous only, for
`AsyncBridgeTransport` (the gateway's transport); it never blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import TYPE_CHECKING, Any, Optional

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .._response_store import (
    DEFAULT_TTL,
    AsyncResponseStore,
    ResponseStore,
    StoredResponse,
    default_store,
    encoded,
    seconds,
)
from ._failover import stop_task
from ._redis import _DOWN, DEFAULT_PREFIX, _client, _wait

if TYPE_CHECKING:
    from ._config import GatewayConfig

__all__ = ["RedisResponseStore", "shared_response_store"]

log = logging.getLogger("llm_bridge.gateway")

#: Errors of a Redis call that the store answers from this replica instead: Redis down
#: (`_DOWN`, which starts the outage), or refusing one command (out of memory, say).
_FAILED = (RedisError, OSError)
#: The most deletes an outage remembers to make in Redis when it answers again, and the
#: longest id remembered (ours are about 40 characters): deletes of made-up ids must not
#: grow a replica's memory for as long as an outage lasts.
_MOST_FORGOTTEN = 10_000
_LONGEST_ID = 256


def shared_response_store(
    gateway: GatewayConfig,
    *,
    prefix: str = DEFAULT_PREFIX,
    ttl: float = DEFAULT_TTL,
    **options: Any,
) -> AsyncResponseStore:
    """The Responses store for ``[gateway] state``: in its Redis, or else the process's
    own `default_store` (a SQLite state's store lives in its open file, so the gateway
    makes that one: `_app.open_response_store`). ``options`` go to
    `RedisResponseStore.from_url` (``retry_interval``, timeouts). Close the store with
    ``aclose`` at shutdown (a no-op for the process's store)."""
    if gateway.state_kind != "redis":
        return default_store()
    return RedisResponseStore.from_url(gateway.state, prefix=prefix, ttl=ttl, **options)


def _ms(seconds: float) -> int:
    """Seconds as whole milliseconds, at least one (``PX 0`` is an error)."""
    return max(math.ceil(seconds * 1000), 1)


class RedisResponseStore:
    """`AsyncResponseStore` in Redis, shared by every replica on the same server and
    prefix; this replica's memory while Redis is unreachable (see the module docstring)."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float = DEFAULT_TTL,
        retry_interval: float = 1.0,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl = ttl
        self.retry_interval = retry_interval
        #: What this replica stored while Redis failed it, until handed over.
        self.local = ResponseStore(ttl=ttl)
        self._owns_client = owns_client
        self._down = False
        self._forget: set[str] = set()  # deleted while Redis failed: DEL them on the return
        self._forget_full = False  # (said once an outage, see `adelete`)
        self._probe: Optional[asyncio.Task[None]] = None
        self._closed = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl: float = DEFAULT_TTL,
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.5,
        retry_interval: float = 1.0,
        **options: Any,
    ) -> RedisResponseStore:
        """A store on its own connection pool (closed by `aclose`); ``options`` go to the
        Redis client, as `_redis`'s."""
        client = _client(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout, **options
        )
        return cls(client, prefix=prefix, ttl=ttl, retry_interval=retry_interval, owns_client=True)

    @property
    def ready(self) -> bool:
        """Whether Redis answered the last call (False during an outage)."""
        return not self._down

    def key(self, response_id: str) -> str:
        return f"{self.prefix}response:{response_id}"

    # ------------------------------------------------------------------ AsyncResponseStore

    async def aget(self, response_id: str) -> Optional[StoredResponse]:
        if not self._down:
            try:
                raw = await _wait(self.client.get(self.key(response_id)))
            except _FAILED as exc:
                self._failed(exc, "look up a stored response")
            else:
                entry = self._decode(raw, response_id) if raw is not None else None
                if entry is not None:
                    return entry
        return self.local.get(response_id)  # stored here while Redis failed us

    async def aput(self, response_id: str, entry: StoredResponse) -> None:
        data = encoded(response_id, entry)
        if data is None:
            return
        if not self._down:
            try:
                await _wait(self.client.set(self.key(response_id), data, px=_ms(self.ttl)))
                return
            except _FAILED as exc:
                self._failed(exc, "store a response")
        self.local.put(response_id, entry)

    async def adelete(self, response_id: str) -> bool:
        """Delete the response here and in Redis. While Redis fails, the id is kept and
        deleted there when it answers again (Redis may hold it, or a hand-over in progress
        may be taking it there): a response deleted during an outage never comes back.
        True when it was found (here, or in Redis when Redis answers)."""
        here = self.local.delete(response_id)
        if not self._down:
            try:
                return bool(await _wait(self.client.delete(self.key(response_id)))) or here
            except _FAILED as exc:
                self._failed(exc, "delete a stored response")
        if len(self._forget) < _MOST_FORGOTTEN and len(response_id) <= _LONGEST_ID:
            self._forget.add(response_id)  # (bounded: deletes of made-up ids, in a long outage)
        elif not self._forget_full:
            self._forget_full = True
            log.warning(
                "gateway: deletes of stored responses made while Redis is unreachable are "
                "past %d; later ones apply to this replica only",
                _MOST_FORGOTTEN,
            )
        return here

    def describe(self) -> str:
        where = (
            f"this gateway keeps stored responses in Redis for {seconds(self.ttl)} s, shared by "
            f"all its replicas"
        )
        if self._down:
            where += (
                "; Redis is unreachable just now, so this replica finds only the responses "
                "it stored itself meanwhile"
            )
        return where

    async def aclose(self) -> None:
        self._closed = True
        probe, self._probe = self._probe, None
        await stop_task(probe)
        if self._owns_client:
            await self.client.aclose()

    # ------------------------------------------------------------------ failures

    def _decode(self, raw: Any, response_id: str) -> Optional[StoredResponse]:
        try:
            return StoredResponse.from_json(json.loads(raw))
        except ValueError:  # (JSONDecodeError too) not ours, or a layout of another release
            log.warning(
                "gateway response store: %s holds no stored response", self.key(response_id)
            )
            return None

    def _failed(self, exc: BaseException, what: str) -> None:
        """A Redis call failed: Redis is down (the outage starts), or it refused this one
        command (this call is answered from the replica)."""
        if isinstance(exc, _DOWN):
            self._went_down(exc)
        else:
            log.warning(
                "gateway response store: Redis refused to %s (%s: %s); answered from this "
                "replica's memory",
                what,
                type(exc).__name__,
                exc,
            )

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "gateway response store: Redis unreachable (%s): responses stored meanwhile "
                "stay in this replica until it returns",
                type(exc).__name__,
            )
        if not self._closed and (self._probe is None or self._probe.done()):
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_back())

    async def _probe_until_back(self) -> None:
        while self._down and not self._closed:
            await asyncio.sleep(self.retry_interval)
            try:
                alive = bool(await _wait(self.client.ping()))
            except _FAILED:
                alive = False
            if alive:
                await self._hand_over()

    async def _hand_over(self) -> None:
        """Give Redis what was stored (and deleted) here during the outage, then use Redis
        again. Rounds until nothing is left, as requests may still store here meanwhile;
        the last check and the switch back happen with no await between them, and entries
        stay readable here until Redis has them."""
        while self._down and not self._closed:
            pending, forget = self.local.live(), set(self._forget)
            if not pending and not forget:
                self._down = False
                log.info("gateway response store: Redis answers again; responses are shared")
                return
            pipe = self.client.pipeline(transaction=False)
            for response_id, entry, left in pending:
                data = encoded(response_id, entry)
                if data is not None:  # (one that cannot be written is dropped: logged)
                    pipe.set(self.key(response_id), data, px=_ms(left), nx=True)
            for response_id in forget:
                pipe.delete(self.key(response_id))
            try:
                await pipe.execute()
            except _FAILED:
                return  # down again (or refusing): the probe goes on
            for response_id, entry, _left in pending:
                self.local.discard(response_id, entry)
            self._forget -= forget
            self._forget_full = False
