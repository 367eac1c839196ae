"""Gateway state in Redis (``[gateway] state = "redis://host:6379/0"``): one rate limit, one
budget and one ledger for any number of replicas. Needs ``redis>=5`` (``redis.asyncio``).

Rate limits (`RedisState.take`)
    A sliding-window log, like `MemoryState`'s: a sorted set per bucket holds what was
    taken (score = the Redis server's ``TIME`` in microseconds, member = time, sequence
    and amount), beside a small hash with the running sum, so a take is O(log n) plus the
    entries that just left the window. One Lua script expires, counts, decides and adds,
    so two replicas never both take the last unit. Why not GCRA, which is O(1) and one
    key: GCRA is a leaky bucket that lets ``limit`` through at once and then one every
    ``window/limit``, so any ``window`` can see nearly twice ``limit``; the contract
    (`GatewayState.take`) and the in-process fallback are "at most ``limit`` per sliding
    ``window``", and a replica that fails over to memory must keep the same meaning. The
    log costs one sorted-set entry per take still in the window: at most ``limit`` for an
    rpm bucket, one per request for a tpm bucket. Time is always Redis's own clock, never
    a replica's (replicas' clocks differ). Both keys expire one window (plus a second)
    after the last take or refusal; a log gone before its sum (evicted under a
    ``volatile-*`` policy) means nothing is in the window. The take's script also
    answers the take's id (`RedisState.take_entry`: its member without the amount), and
    a give-back with it shrinks that member alone, or nothing once it has left the
    window: one script each, no extra round trip.

Budgets (`reserve`, `settle`, `spent`)
    A hash per account, period -> spend, where the spend is a decimal string of yuan
    (``"12.3400567"``) and the Lua scripts add, subtract and compare such strings digit
    by digit. Lua's only numbers are doubles, and Redis's integers are 64 bits: a fixed
    unit (micro-yuan, nano-yuan) either rounds prices such as 0.8 yuan per million
    tokens (8e-7 yuan a token, and a cost is that times tokens, divided further by
    ``usage.cost_of``) or overflows double precision at a few million yuan. Decimal
    strings never lose a digit at any scale or size, and read as yuan with
    ``redis-cli HGETALL``. A budget hash expires 40 days after its last change.

Ledger (`RedisLedger`) — why a Redis stream rather than a database
    The fleet already shares this Redis, so a stream needs no second service, driver,
    schema or migration, and no second thing that can be down. ``XADD`` is an O(1)
    append whose IDs are the server's time, so entries of all replicas are in one
    order and ``read_ledger(since=...)`` is a range read. Idempotency sits in the same
    Lua script as the append: a per-request marker (request_id, with a TTL) is checked
    and set in the same atomic step as ``XADD``, so an entry retried after an outage (or
    written twice by two replicas) lands once. A consumer group can later ship the
    stream to a warehouse without touching the gateway. The costs: the stream lives in
    Redis's memory, and it is as durable as Redis's persistence: run the ledger's Redis
    with ``appendonly yes`` (``appendfsync always`` loses nothing on a crash), and trim
    (``maxlen``) only once the entries are exported. Deployments that must keep years of
    ledger in SQL should export from the stream.

    `RedisLedger.write` queues the entry in memory (bounded, never raising) and a
    background task appends the queue in pipelined batches, retrying with backoff while
    Redis is down; `flush` waits for the queue to drain (bounded by a timeout). A request
    is first written as a provisional entry when it is admitted (error code
    ``in_progress``), then as its final entry, so a replica killed mid-request leaves a
    trace; readers keep a request's last entry.

Every key starts with a prefix (``"llm-bridge:"`` by default). A script's keys share a
``{hash tag}`` so they live on one cluster slot. Scripts run with ``EVALSHA`` and are
loaded on the first ``NOSCRIPT`` (after a restart, or ``SCRIPT FLUSH``).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional, TypeVar, Union

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry as SyncRetry

from ._failover import FailoverState, StateUnavailable, stop_task
from ._state import IN_PROGRESS, LedgerEntry, SpendSeen, TakesByEntry, take_by_arguments

if TYPE_CHECKING:
    from ._config import GatewayConfig

__all__ = [
    "DEFAULT_PREFIX",
    "RedisLedger",
    "RedisState",
    "open_ledger",
    "open_state",
    "read_ledger",
]

log = logging.getLogger("llm_bridge.gateway")

DEFAULT_PREFIX = "llm-bridge:"
BUDGET_TTL = 40 * 86400  # seconds: a month's budget outlives its month by ~10 days
MARKER_TTL = 2 * 86400  # seconds a ledger entry's request_id is remembered
_SKEW = 3600.0  # seconds: how far a replica's clock may run ahead of Redis's (read_ledger)

# Errors that mean "Redis is not answering" rather than "this call is wrong".
_DOWN = (RedisConnectionError, RedisTimeoutError, ReadOnlyError, OSError)

T = TypeVar("T")


# ---------------------------------------------------------------------------- wiring


def open_state(gateway: GatewayConfig, *, prefix: str = DEFAULT_PREFIX) -> FailoverState:
    """The state for ``[gateway] state = "redis://..."``: a `RedisState` behind the
    ``state_failure`` policy (`FailoverState`). Connects lazily: nothing is sent to Redis
    before the first call, so a gateway starts while Redis is down (``/readyz`` says so)."""
    mode = "closed" if gateway.state_failure == "closed" else "open"
    return FailoverState(RedisState.from_url(gateway.state, prefix=prefix), mode=mode)


def open_ledger(gateway: GatewayConfig, *, prefix: str = DEFAULT_PREFIX) -> RedisLedger:
    """The fleet's ledger in the same Redis as the state (a stream, see `RedisLedger`)."""
    return RedisLedger.from_url(gateway.state, prefix=prefix)


# ---------------------------------------------------------------------------- Lua

_TAKE = """
-- KEYS[1]: the log (sorted set), KEYS[2]: its sum and sequence (hash)
-- ARGV: limit, window (microseconds), amount, force ('1': take it even past the limit,
-- units already used). Returns {0, the take's id} (taken: its member without the units,
-- '<seconds>.<microseconds>:<seq>', for _GIVE_BACK_TO) or {microseconds to wait, ''}.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit, window, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local force = ARGV[4] == '1'
if amount > limit and not force then return {window, ''} end
local function units(member) return tonumber(string.match(member, ':(%d+)$')) end
local cutoff = now - window
local used = tonumber(redis.call('HGET', KEYS[2], 'sum'))
if redis.call('EXISTS', KEYS[1]) == 0 then
  -- nothing in the window: the first take, or a log that expired or was evicted before
  -- its sum (which must not keep counting takes no longer there)
  used = 0
elseif used == nil then
  -- the sum was lost: count the log itself
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  used = 0
  for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    used = used + units(member)
  end
else
  local expired = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', cutoff)
  if #expired > 0 then
    for _, member in ipairs(expired) do used = used - units(member) end
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', cutoff)
    if used < 0 then used = 0 end
  end
end
local ttl = math.floor(window / 1000) + 1000
if force or used + amount <= limit then
  local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  local id = t[1] .. '.' .. t[2] .. ':' .. seq
  redis.call('ZADD', KEYS[1], now, id .. ':' .. ARGV[3])
  redis.call('HSET', KEYS[2], 'sum', used + amount)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  return {0, id}
end
-- Not taken. The log and its sum expire together: a sum left without its log would
-- count takes no longer there. Wait until enough of the oldest entries leave the window.
redis.call('HSET', KEYS[2], 'sum', used)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
local excess = used + amount - limit
local start = 0
while true do
  local page = redis.call('ZRANGE', KEYS[1], start, start + 99, 'WITHSCORES')
  if #page == 0 then return {window, ''} end
  for i = 1, #page, 2 do
    excess = excess - units(page[i])
    if excess <= 0 then
      local wait = tonumber(page[i + 1]) + window - now
      if wait < 1000 then wait = 1000 end
      return {wait, ''}
    end
  end
  start = start + 100
end
"""

_GIVE_BACK = """
-- KEYS[1]: the log (sorted set), KEYS[2]: its sum and sequence (hash)
-- ARGV: window (microseconds), amount. Shrinks the newest takes still in the window by
-- amount in all (removing those it empties) and the sum with them: for a caller that
-- kept no take's id (_GIVE_BACK_TO is the gateway's).
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[1])
local left = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', KEYS[2], 'sum'))
if used == nil then return 0 end
while left > 0 do
  local page = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  if #page == 0 or tonumber(page[2]) <= cutoff then break end
  local member = page[1]
  local head, held = string.match(member, '^(.*):(%d+)$')
  held = tonumber(held)
  redis.call('ZREM', KEYS[1], member)
  if held > left then
    redis.call('ZADD', KEYS[1], page[2], head .. ':' .. (held - left))
    used = used - left
    left = 0
  else
    used = used - held
    left = left - held
  end
end
if used < 0 then used = 0 end
redis.call('HSET', KEYS[2], 'sum', used)
return 0
"""

_GIVE_BACK_TO = """
-- KEYS[1]: the log (sorted set), KEYS[2]: its sum and sequence (hash)
-- ARGV: window (microseconds), amount, the take's id (from _TAKE). Shrinks that take by
-- amount (at most what it holds; removed when emptied) and the sum with it, if it is
-- still in the window; no other take. Returns the units given back.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local sec, usec = string.match(ARGV[3], '^(%d+)%.(%d+):%d+$')
if sec == nil then return 0 end
local at = tonumber(sec) * 1000000 + tonumber(usec)
local t = redis.call('TIME')
if at <= tonumber(t[1]) * 1000000 + tonumber(t[2]) - tonumber(ARGV[1]) then return 0 end
local head = ARGV[3] .. ':'
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], at, at)) do
  if string.sub(member, 1, #head) == head then
    local held = tonumber(string.sub(member, #head + 1))
    local back = math.min(held, tonumber(ARGV[2]))
    -- (added before the removal: a log left empty would be deleted, and its expiry lost)
    if held > back then redis.call('ZADD', KEYS[1], at, head .. (held - back)) end
    redis.call('ZREM', KEYS[1], member)
    -- (a lost sum stays lost: the next take counts the log, this take shrunk in it)
    local used = tonumber(redis.call('HGET', KEYS[2], 'sum'))
    if used ~= nil then
      used = used - back
      if used < 0 then used = 0 end
      redis.call('HSET', KEYS[2], 'sum', used)
    end
    return back
  end
end
return 0
"""

# Exact decimal arithmetic on strings such as "-12.0340" (Lua's numbers are doubles).
# A number is {n = negative, m = digits without leading zeros, s = digits after the point}.
_DECIMAL = """
local function strip(m)
  local r = string.gsub(m, '^0+', '')
  if r == '' then return '0' end
  return r
end
local function dec(text)
  local n = false
  if string.sub(text, 1, 1) == '-' then n = true; text = string.sub(text, 2) end
  local i, f = string.match(text, '^(%d*)%.?(%d*)$')
  if i == nil or (i == '' and f == '') then error('not a decimal: ' .. text) end
  local m = strip(i .. f)
  return {n = n and m ~= '0', m = m, s = #f}
end
local function addmag(a, b)
  if #a < #b then a, b = b, a end
  b = string.rep('0', #a - #b) .. b
  local out, carry = {}, 0
  for i = #a, 1, -1 do
    local d = string.byte(a, i) + string.byte(b, i) - 96 + carry
    if d >= 10 then d = d - 10; carry = 1 else carry = 0 end
    out[i] = string.char(d + 48)
  end
  local r = table.concat(out)
  if carry == 1 then r = '1' .. r end
  return strip(r)
end
local function cmpmag(a, b)
  if #a ~= #b then return #a < #b and -1 or 1 end
  if a == b then return 0 end
  return a < b and -1 or 1
end
local function submag(a, b) -- a >= b
  b = string.rep('0', #a - #b) .. b
  local out, borrow = {}, 0
  for i = #a, 1, -1 do
    local d = string.byte(a, i) - string.byte(b, i) - borrow
    if d < 0 then d = d + 10; borrow = 1 else borrow = 0 end
    out[i] = string.char(d + 48)
  end
  return strip(table.concat(out))
end
local function scaled(x, s)
  if x.s == s then return x end
  return {n = x.n, m = strip(x.m .. string.rep('0', s - x.s)), s = s}
end
local function dadd(x, y)
  local s = math.max(x.s, y.s)
  x, y = scaled(x, s), scaled(y, s)
  local r
  if x.n == y.n then r = {n = x.n, m = addmag(x.m, y.m), s = s}
  elseif cmpmag(x.m, y.m) >= 0 then r = {n = x.n, m = submag(x.m, y.m), s = s}
  else r = {n = y.n, m = submag(y.m, x.m), s = s} end
  if r.m == '0' then r.n = false end
  return r
end
local function dneg(x) return {n = (not x.n) and x.m ~= '0', m = x.m, s = x.s} end
local function dsign(x)
  if x.m == '0' then return 0 elseif x.n then return -1 else return 1 end
end
local function dstr(x)
  local m = x.m
  if x.s > 0 then
    if #m <= x.s then m = string.rep('0', x.s - #m + 1) .. m end
    local i, f = string.sub(m, 1, #m - x.s), string.gsub(string.sub(m, #m - x.s + 1), '0+$', '')
    m = i
    if f ~= '' then m = i .. '.' .. f end
  end
  if x.n then return '-' .. m end
  return m
end
"""

_RESERVE = (
    _DECIMAL
    + """
-- KEYS[1]: the account's hash; ARGV: period, amount, budget, ttl (ms). Returns {1, the
-- new spend} when reserved, else {0, the spend}.
local spent = redis.call('HGET', KEYS[1], ARGV[1]) or '0'
local new = dadd(dec(spent), dec(ARGV[2]))
if dsign(dadd(new, dneg(dec(ARGV[3])))) > 0 then return {0, spent} end
local text = dstr(new)
redis.call('HSET', KEYS[1], ARGV[1], text)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return {1, text}
"""
)

_SETTLE = (
    _DECIMAL
    + """
-- KEYS[1]: the account's hash; ARGV: period, reserved, actual, ttl (ms). Returns the spend.
local spent = dec(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local new = dadd(dadd(spent, dneg(dec(ARGV[2]))), dec(ARGV[3]))
if new.n then new = dec('0') end
local text = dstr(new)
redis.call('HSET', KEYS[1], ARGV[1], text)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return text
"""
)

_LEDGER_ADD = """
-- KEYS[1]: the request's marker, KEYS[2]: the stream; ARGV: marker ttl (s), maxlen (0:
-- none), final (1: the request's own entry, 0: its provisional one), then the entry's
-- field/value pairs. Returns the new ID, or false when nothing was added: the final
-- entry is already there, or this is a provisional one and any entry is. A final entry
-- after a provisional one is appended (readers keep the last entry of a request). The
-- append comes before the marker: a failed XADD leaves no marker behind.
local seen = redis.call('GET', KEYS[1])
if seen and (ARGV[3] == '0' or string.sub(seen, 1, 2) ~= 'p:') then return false end
local id
if tonumber(ARGV[2]) > 0 then
  id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 4))
else
  id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
end
redis.call('SET', KEYS[1], (ARGV[3] == '1' and 'f:' or 'p:') .. id, 'EX', ARGV[1])
return id
"""


class _Script:
    """A Lua script run by SHA; loaded into the server on its first NOSCRIPT."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(
        self, client: aioredis.Redis, keys: Sequence[str], args: Sequence[Union[str, int]]
    ) -> Any:
        try:
            return await _wait(client.evalsha(self.sha, len(keys), *keys, *args))
        except NoScriptError:
            await _wait(client.script_load(self.source))
            return await _wait(client.evalsha(self.sha, len(keys), *keys, *args))


async def _wait(result: Union[Awaitable[T], T]) -> T:
    """redis-py types its commands as "awaitable or not" for both clients; the asyncio
    client's always are."""
    if isinstance(result, Awaitable):
        return await result
    return result  # pragma: no cover - the asyncio client always returns awaitables


def _client(
    url: str,
    *,
    socket_timeout: float,
    connect_timeout: float,
    max_connections: int = 64,
    pool_timeout: float = 2.0,
    **options: Any,
) -> aioredis.Redis:
    # A blocking pool: a burst of requests waits (``pool_timeout``) for one of
    # ``max_connections`` connections rather than failing as if Redis were down. One
    # immediate retry (a pooled connection the server closed on a restart); no backoff,
    # so an outage shows within the timeouts and the failover takes over.
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=pool_timeout,
        decode_responses=True,
        socket_timeout=socket_timeout,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 1),
        **options,
    )
    return aioredis.Redis.from_pool(pool)


def _money(value: Decimal) -> str:
    if not isinstance(value, Decimal):
        value = Decimal(str(value))
    if not value.is_finite():
        raise ValueError(f"not an amount of money: {value}")
    return format(value, "f")


# ---------------------------------------------------------------------------- state


class _RedisUser:
    """What every Redis-backed piece of gateway state shares: its client (closed by
    `close` when it made the client itself) and a `ping` that never raises."""

    client: aioredis.Redis
    _owns_client: bool

    async def ping(self) -> bool:
        try:
            return bool(await _wait(self.client.ping()))
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        if self._owns_client:
            await self.client.aclose()


class RedisState(TakesByEntry, _RedisUser):
    """`GatewayState` in Redis, shared by every replica that uses the same server and
    prefix. Raises `StateUnavailable` when Redis does not answer (see `FailoverState`)."""

    _take = _Script(_TAKE)
    _give_back = _Script(_GIVE_BACK)
    _give_back_to = _Script(_GIVE_BACK_TO)
    _reserve = _Script(_RESERVE)
    _settle = _Script(_SETTLE)

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        budget_ttl: float = BUDGET_TTL,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.budget_ttl_ms = int(budget_ttl * 1000)
        #: What Redis last said each account had spent (`FailoverState` reads it).
        self.spend_seen = SpendSeen()
        self._owns_client = owns_client

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        budget_ttl: float = BUDGET_TTL,
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.5,
        **options: Any,
    ) -> RedisState:
        """A state on its own connection pool (closed by `close`)."""
        client = _client(
            url, socket_timeout=socket_timeout, connect_timeout=connect_timeout, **options
        )
        return cls(client, prefix=prefix, budget_ttl=budget_ttl, owns_client=True)

    def window_keys(self, bucket: str) -> tuple[str, str]:
        base = f"{self.prefix}rl:{{{bucket}}}"
        return base, base + ":n"

    def budget_key(self, account: str) -> str:
        return f"{self.prefix}budget:{account}"

    async def take_entry(
        self, bucket: str, *, limit: int, window: float, amount: int = 1, force: bool = False
    ) -> tuple[float, Optional[str]]:
        early = take_by_arguments(amount=amount, limit=limit, window=window, force=force)
        if early is not None:
            return early, None
        window_us = max(round(window * 1_000_000), 1)
        args = (int(limit), window_us, int(amount), 1 if force else 0)
        wait, entry = await self._run(self._take, self.window_keys(bucket), args)
        if int(wait) == 0:
            return 0.0, str(entry)
        return int(wait) / 1_000_000, None

    async def give_back(
        self, bucket: str, *, window: float, amount: int, entry: Optional[str] = None
    ) -> None:
        if amount <= 0:
            return
        window_us = max(round(window * 1_000_000), 1)
        keys = self.window_keys(bucket)
        if entry is None:
            await self._run(self._give_back, keys, (window_us, int(amount)))
        else:
            await self._run(self._give_back_to, keys, (window_us, int(amount), entry))

    async def reserve(self, account: str, period: str, *, amount: Decimal, budget: Decimal) -> bool:
        done, spent = await self._run(
            self._reserve,
            (self.budget_key(account),),
            (period, _money(amount), _money(budget), self.budget_ttl_ms),
        )
        self.spend_seen.saw(account, period, Decimal(spent))
        return int(done) == 1

    async def settle(
        self, account: str, period: str, *, reserved: Decimal, actual: Decimal
    ) -> None:
        spent = await self._run(
            self._settle,
            (self.budget_key(account),),
            (period, _money(reserved), _money(actual), self.budget_ttl_ms),
        )
        self.spend_seen.saw(account, period, Decimal(spent))

    async def spent(self, account: str, period: str) -> Decimal:
        try:
            value = await _wait(self.client.hget(self.budget_key(account), period))
        except _DOWN as exc:
            raise StateUnavailable(f"Redis: {type(exc).__name__}") from exc
        spent = Decimal(str(value)) if value else Decimal(0)
        self.spend_seen.saw(account, period, spent)
        return spent

    async def _run(
        self, script: _Script, keys: Sequence[str], args: Sequence[Union[str, int]]
    ) -> Any:
        try:
            return await script(self.client, keys, args)
        except _DOWN as exc:
            raise StateUnavailable(f"Redis: {type(exc).__name__}") from exc


# ---------------------------------------------------------------------------- ledger


def _fields(entry: LedgerEntry) -> list[str]:
    """The entry as a stream entry's field/value pairs (None: the field is left out)."""
    fields = {
        "v": "1",
        "request_id": entry.request_id,
        "at": repr(float(entry.at)),
        "key": entry.key,
        "model": entry.model,
        "provider": entry.provider,
        "upstream_model": entry.upstream_model,
        "prompt_tokens": str(int(entry.prompt_tokens)),
        "completion_tokens": str(int(entry.completion_tokens)),
        "cached_tokens": str(int(entry.cached_tokens)),
        "estimated": "1" if entry.estimated else "0",
        "cost_cny": None if entry.cost_cny is None else _money(entry.cost_cny),
        "latency_ms": repr(float(entry.latency_ms)),
        "status": str(int(entry.status)),
        "error_code": entry.error_code,
        "extra": json.dumps(entry.extra, ensure_ascii=False, sort_keys=True)
        if entry.extra
        else None,
    }
    out: list[str] = []
    for name, value in fields.items():
        if value is not None:
            out += (name, value)
    return out


def _entry(fields: dict[str, str]) -> LedgerEntry:
    cost = fields.get("cost_cny")
    extra = fields.get("extra")
    return LedgerEntry(
        request_id=fields["request_id"],
        at=float(fields["at"]),
        key=fields.get("key", ""),
        model=fields.get("model", ""),
        provider=fields.get("provider"),
        upstream_model=fields.get("upstream_model"),
        prompt_tokens=int(fields.get("prompt_tokens", 0)),
        completion_tokens=int(fields.get("completion_tokens", 0)),
        cached_tokens=int(fields.get("cached_tokens", 0)),
        estimated=fields.get("estimated") == "1",
        cost_cny=Decimal(cost) if cost is not None else None,
        latency_ms=float(fields.get("latency_ms", 0.0)),
        status=int(fields.get("status", 200)),
        error_code=fields.get("error_code"),
        extra=json.loads(extra) if extra else {},
    )


def _since(since: Union[float, datetime, None]) -> tuple[str, Optional[float]]:
    """The stream ID to read from, and the ``at`` to keep from (None: everything). Stream
    IDs are Redis's time at XADD, never before the request ended on Redis's clock; the
    margin covers a replica whose clock runs ahead."""
    if since is None:
        return "-", None
    at = since.timestamp() if isinstance(since, datetime) else float(since)
    return f"{max(int((at - _SKEW) * 1000), 0)}-0", at


def _ledger_keys(prefix: str, request_id: str) -> tuple[str, str]:
    stream = f"{prefix}{{ledger}}"
    return f"{stream}:seen:{request_id}", stream


class RedisLedger:
    """`LedgerSink` to a Redis stream, idempotent by request_id; queues while Redis is down.

    ``write`` puts the entry on a bounded in-memory queue and returns without waiting or
    raising; a background task appends what has queued in pipelined batches (so the
    request path never waits for Redis, and a busy gateway pays one round trip per
    batch). When Redis does not answer, the task retries with exponential backoff
    (``backoff`` seconds, doubling up to ``max_backoff``), and each entry lands exactly
    once thanks to its request_id marker. A full queue drops the new entry, logged and
    counted in ``dropped``. A provisional entry (`IN_PROGRESS`) is replaced by its
    request's final one for readers (`_latest`)."""

    _add = _Script(_LEDGER_ADD)
    #: The gateway writes a provisional entry when it admits a request (see `_LEDGER_ADD`).
    records_in_progress = True

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        queue_size: int = 100_000,
        marker_ttl: int = MARKER_TTL,
        maxlen: Optional[int] = None,
        flush_timeout: float = 10.0,
        backoff: float = 0.05,
        max_backoff: float = 2.0,
        batch: int = 200,
        owns_client: bool = False,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.stream = _ledger_keys(prefix, "")[1]
        self.queue_size = queue_size
        self.marker_ttl = int(marker_ttl)
        self.maxlen = int(maxlen or 0)
        self.flush_timeout = flush_timeout
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.batch = batch
        self.dropped = 0
        self._owns_client = owns_client
        self._queue: deque[LedgerEntry] = deque()
        self._down = False
        self._gave_up = False  # the last flush ran out of time
        self._flusher: Optional[asyncio.Task[None]] = None

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        socket_timeout: float = 1.0,
        connect_timeout: float = 0.5,
        **options: Any,
    ) -> RedisLedger:
        """A ledger on its own connection pool (closed by `close`); ``options`` go to
        `RedisLedger` (``queue_size``, ``marker_ttl``, ``maxlen``, ...)."""
        client = _client(url, socket_timeout=socket_timeout, connect_timeout=connect_timeout)
        return cls(client, prefix=prefix, owns_client=True, **options)

    @property
    def pending(self) -> int:
        """Entries not yet in Redis (queued or being written)."""
        return len(self._queue)  # (a batch leaves the queue once it is written)

    async def write(self, entry: LedgerEntry) -> None:
        """Queue ``entry`` and return at once; the flusher task appends what has queued in
        one pipelined round trip (`flush` waits for it)."""
        self._enqueue(entry)

    async def flush(self, timeout: Optional[float] = None) -> None:
        """Waits until every entry written so far is in Redis, at most ``timeout`` seconds
        (``flush_timeout`` by default); logs what is still queued after that."""
        deadline = time.monotonic() + (self.flush_timeout if timeout is None else timeout)
        while self.pending:
            if self._queue:
                self._start_flusher()
            if time.monotonic() >= deadline:
                self._gave_up = True
                log.error(
                    "gateway ledger: %d entries still queued for Redis after the flush timeout",
                    self.pending,
                )
                return
            await asyncio.sleep(0.01)
        self._gave_up = False

    async def close(self) -> None:
        """Flush (unless the last flush just ran out of time: the gateway's shutdown
        flushes, then closes, and a Redis that is down would hold it up twice as long and
        report the same entries twice), then stop the flusher and the client."""
        if not self._gave_up:
            await self.flush()
        flusher, self._flusher = self._flusher, None
        await stop_task(flusher)
        if self._owns_client:
            await self.client.aclose()

    async def read(self, since: Union[float, datetime, None] = None) -> list[LedgerEntry]:
        """Every entry in the stream (from ``since``, a Unix time or datetime, on)."""
        start, at = _since(since)
        entries: list[LedgerEntry] = []
        while True:
            page: Any = await _wait(self.client.xrange(self.stream, min=start, count=1000))
            entries += _keep(page, at)
            if len(page) < 1000:
                return _latest(entries)
            start = "(" + page[-1][0]

    # ------------------------------------------------------------------ the queue

    def _args(self, entry: LedgerEntry) -> tuple[tuple[str, str], list[Union[str, int]]]:
        keys = _ledger_keys(self.prefix, entry.request_id)
        final = 0 if entry.error_code == IN_PROGRESS else 1
        return keys, [self.marker_ttl, self.maxlen, final, *_fields(entry)]

    def _enqueue(self, entry: LedgerEntry) -> None:
        if len(self._queue) >= self.queue_size:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.error(
                    "gateway ledger: queue full (%d entries) while Redis is unreachable; "
                    "%d entries dropped so far",
                    self.queue_size,
                    self.dropped,
                )
            return
        self._queue.append(entry)
        self._gave_up = False  # (an entry no flush has waited for yet)
        self._start_flusher()

    def _went_down(self, exc: BaseException) -> None:
        if not self._down:
            self._down = True
            log.warning(
                "gateway ledger: Redis unreachable (%s): queueing entries until it returns",
                type(exc).__name__,
            )

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        delay = self.backoff
        written = 0
        while self._queue:
            batch = [self._queue[i] for i in range(min(self.batch, len(self._queue)))]
            try:
                await self._add_batch(batch)
            except Exception as exc:  # Redis down, or refusing (OOM, READONLY): retry
                if not isinstance(exc, (RedisError, OSError)):
                    log.exception("gateway ledger: writing to Redis failed")
                self._went_down(exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.max_backoff)
                continue
            for _ in batch:
                self._queue.popleft()
            written += len(batch)
            delay = self.backoff
        if self._down:
            self._down = False
            log.info("gateway ledger: Redis answers again; %d queued entries written", written)

    async def _add_batch(self, batch: list[LedgerEntry]) -> None:
        """Appends ``batch`` in one round trip; repeats are no-ops (request_id markers), so a
        batch cut short by a failure is simply sent again."""
        for attempt in (1, 2):
            pipe = self.client.pipeline(transaction=False)
            for entry in batch:
                keys, args = self._args(entry)
                pipe.evalsha(self._add.sha, len(keys), *keys, *args)
            results = await pipe.execute(raise_on_error=False)
            errors = [r for r in results if isinstance(r, Exception)]
            if not errors:
                return
            if attempt == 1 and all(isinstance(e, NoScriptError) for e in errors):
                await _wait(self.client.script_load(self._add.source))
                continue
            raise errors[0]


def _keep(page: Any, at: Optional[float]) -> list[LedgerEntry]:
    entries = [_entry(fields) for _id, fields in page]
    return entries if at is None else [e for e in entries if e.at >= at]


def _latest(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """One entry per request, its last (a final entry replaces the provisional one the
    request was admitted with), in the order requests first appear."""
    by_request: dict[str, LedgerEntry] = {}
    for entry in entries:
        by_request[entry.request_id] = entry
    return list(by_request.values())


def read_ledger(
    url: str,
    since: Union[float, datetime, None] = None,
    *,
    prefix: str = DEFAULT_PREFIX,
) -> list[LedgerEntry]:
    """Every ledger entry of the fleet in the Redis at ``url`` (from ``since``, a Unix time
    or datetime, on), oldest first: for ``llm-bridge usage``. Synchronous, for the CLI."""
    start, at = _since(since)
    stream = _ledger_keys(prefix, "")[1]
    client = redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=10.0, retry=SyncRetry(NoBackoff(), 1)
    )
    entries: list[LedgerEntry] = []
    try:
        while True:
            page: Any = client.xrange(stream, min=start, count=1000)
            entries += _keep(page, at)
            if len(page) < 1000:
                return _latest(entries)
            start = "(" + page[-1][0]
    finally:
        client.close()
