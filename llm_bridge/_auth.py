"""Credentials that turn into request headers: bearer keys and Zhipu's signed JWTs.

Zhipu accepts its API key ``<id>.<secret>`` either as a plain bearer token or as a
short-lived HS256 JWT signed with the secret (``auth = "jwt"``). The JWT's timestamps are
in *milliseconds* and its header carries ``"sign_type": "SIGN"``; get either wrong and
every request is a 401. Tokens are cached per key, shared by every client in the process,
and renewed well before they expire (and at once after a 1003 "token expired").

Signing is a few lines of stdlib HMAC, so no JWT library is needed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import threading
import time
import weakref
from typing import Any, Callable, Optional

import httpx

__all__ = [
    "BearerKey",
    "Credentials",
    "TokenCredentials",
    "ZhipuJWT",
    "sign_zhipu_jwt",
]


class Credentials:
    """Authenticates requests; may hold a token that needs fetching, caching and renewing.

    `sign` adds the credentials to a finished ``httpx.Request`` (a header, a query value or
    a signature over the request). Credentials that need a token from a token endpoint say
    so through `token_request` (None while the cached token is good); the I/O layer sends
    it, single-flight, and hands the answer to `accept_token`. Nothing here does I/O.
    """

    def sign(self, request: httpx.Request) -> None:
        raise NotImplementedError

    def token_request(self) -> Optional[httpx.Request]:
        return None

    def accept_token(self, response: httpx.Response) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def invalidate(self, request: httpx.Request) -> bool:
        """The provider rejected the credential ``request`` carried: drop it if it is still
        the current one. True when a retry with a fresh credential may succeed."""
        return False


class TokenCredentials(Credentials):
    """Credentials with a fetched token, refreshed single-flight across threads and tasks.

    Fifty threads (or tasks) that find the token missing or expired queue on one lock; the
    first fetches, the rest find the fresh token when they get the lock. asyncio locks
    belong to one event loop, so there is one per loop.
    """

    def __init__(self) -> None:
        self.thread_lock = threading.Lock()
        self._guard = threading.Lock()  # guards the dict below, never held across I/O
        self._async_locks: weakref.WeakKeyDictionary[Any, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )

    def async_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
        return lock


class BearerKey(Credentials):
    """``Authorization: Bearer <key>``; the key never appears in ``repr``."""

    def __init__(self, key: str) -> None:
        self._value = f"Bearer {key}"

    def sign(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = self._value

    def __repr__(self) -> str:
        return "BearerKey(<redacted>)"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_zhipu_jwt(api_key: str, *, now_ms: int, ttl_ms: int) -> str:
    """A Zhipu v4 JWT for ``api_key`` (``<id>.<secret>``), valid from ``now_ms`` for ``ttl_ms``."""
    key_id, secret = split_zhipu_key(api_key)
    header = {"alg": "HS256", "sign_type": "SIGN", "typ": "JWT"}
    payload = {"api_key": key_id, "exp": now_ms + ttl_ms, "timestamp": now_ms}
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, payload)
    )
    signature = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256)
    return f"{signing_input}.{_b64url(signature.digest())}"


def split_zhipu_key(api_key: str) -> tuple[str, str]:
    key_id, sep, secret = api_key.partition(".")
    if not sep or not key_id or not secret or "." in secret:
        raise ValueError(
            "a Zhipu API key has the form '<id>.<secret>' (one dot); the key given does not, "
            'so it cannot sign a JWT (auth = "jwt"). Check the key, or use auth = "key".'
        )
    return key_id, secret


class _TokenCache:
    """Process-wide cache of signed tokens, keyed by API key (safe across threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str, now: float) -> Optional[str]:
        with self._lock:
            entry = self._tokens.get(key)
        return entry[0] if entry is not None and entry[1] > now else None

    def put(self, key: str, token: str, renew_at: float) -> None:
        with self._lock:
            self._tokens[key] = (token, renew_at)

    def drop(self, key: str, *, only: str) -> None:
        """Forget ``key``'s token if it is still ``only`` (another caller may have renewed it)."""
        with self._lock:
            entry = self._tokens.get(key)
            if entry is not None and entry[0] == only:
                del self._tokens[key]


_ZHIPU_TOKENS = _TokenCache()


class ZhipuJWT(Credentials):
    """Signed, cached, renewed Zhipu tokens (``auth = "jwt"``)."""

    #: Renew this long before the token expires, so a request in flight never carries a stale one.
    RENEW_MARGIN = 30.0

    def __init__(
        self, api_key: str, *, ttl: float = 210.0, clock: Callable[[], float] = time.time
    ) -> None:
        split_zhipu_key(api_key)  # fail at construction, not at the first request
        self._key = api_key
        self._ttl = ttl
        self._clock = clock

    def sign(self, request: httpx.Request) -> None:
        now = self._clock()
        token = _ZHIPU_TOKENS.get(self._key, now)
        if token is None:
            token = sign_zhipu_jwt(self._key, now_ms=int(now * 1000), ttl_ms=int(self._ttl * 1000))
            _ZHIPU_TOKENS.put(self._key, token, now + self._ttl - self.RENEW_MARGIN)
        request.headers["Authorization"] = f"Bearer {token}"

    def invalidate(self, request: httpx.Request) -> bool:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        _ZHIPU_TOKENS.drop(self._key, only=sent)
        return True

    def __repr__(self) -> str:
        return f"ZhipuJWT(<redacted>, ttl={self._ttl})"
