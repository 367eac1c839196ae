"""Credentials that turn into request headers: bearer keys, Zhipu's signed JWTs, Qianfan tokens.

Zhipu accepts its API key ``<id>.<secret>`` either as a plain bearer token or as a
short-lived HS256 JWT signed with the secret (``auth = "jwt"``). The JWT's timestamps are
in *milliseconds* and its header carries ``"sign_type": "SIGN"``; get either wrong and
every request is a 401. Tokens are cached per key, shared by every client in the process,
and renewed well before they expire (and at once after a 1003 "token expired").

Signing is a few lines of stdlib HMAC, so no JWT library is needed.

Qianfan has two fetched tokens: v1's OAuth access token (`QianfanAccessToken`, application
keys, the closed v1 API) and v2's bearer token minted from IAM account keys
(`QianfanIamToken`, a bce-auth-v1 signed ``GET /v1/BCE-BEARER/token``). Both can be shared
by the replicas of a gateway (`TokenCredentials.share_key`, `export`, `adopt`; the engine
and `_token_share` do the sharing), so a fleet makes one token request, not one per process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import threading
import time
import weakref
from collections import deque
from datetime import datetime
from typing import Any, Callable, Optional

import httpx

from ._errors import APIStatusError, AuthenticationError, InternalServerError, RateLimitError

__all__ = [
    "BearerKey",
    "Credentials",
    "QianfanAccessToken",
    "QianfanIamToken",
    "SharedToken",
    "TokenCredentials",
    "ZhipuJWT",
    "sign_zhipu_jwt",
    "token_share_key",
]


class Credentials:
    """Authenticates requests; may hold a token that needs fetching, caching and renewing.

    `sign` adds the credentials to a finished ``httpx.Request`` (a header, a query value or
    a signature over the request). Credentials that need a token from a token endpoint say
    so through `token_request` (None while the cached token is good); the I/O layer sends
    it, single-flight, and hands the answer to `accept_token`. Nothing here does I/O.
    """

    def query(self) -> dict[str, str]:
        """Query parameters that carry the credential (added before the URL is built)."""
        return {}

    def sign(self, request: httpx.Request) -> None:
        """Add the credential to the built request (headers, a signature over it)."""

    def token_request(self) -> Optional[httpx.Request]:
        return None

    def accept_token(self, response: httpx.Response) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def invalidate(self, request: httpx.Request) -> bool:
        """The provider rejected the credential ``request`` carried: drop it if it is still
        the current one. True when a retry with a fresh credential may succeed."""
        return False

    def secrets(self) -> tuple[str, ...]:
        """Every secret string this credential holds, so error text can be scrubbed of them
        (a provider may echo the key it rejected)."""
        return ()


_SECRET_QUERY = re.compile(
    r"((?:access_token|token|api_key|key|client_secret|client_id|secret|signature|"
    r"authorization)=)[^&\s'\"]+",
    re.IGNORECASE,
)


def scrub(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every secret (of 6+ characters) and every credential-like URL query
    value (``access_token=...``) replaced by ``<redacted>``: transport errors quote URLs."""
    for secret in sorted((s for s in secrets if s and len(s) >= 6), key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return _SECRET_QUERY.sub(r"\1<redacted>", text)


class _RedactingFilter(logging.Filter):
    """Scrubs credential-like URL query values (see `scrub`) from an HTTP library's log
    records: httpx logs every request's URL at INFO, and Qianfan's carry its OAuth client
    secret or access token."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = scrub(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


#: The loggers HTTP libraries write request URLs to.
_HTTP_LOGGERS = ("httpx", "httpx2")


def redact_http_logs() -> None:
    """Give the HTTP libraries' loggers `_RedactingFilter` (once; called as engines are
    made, so a program that never makes one is left as it is)."""
    for name in _HTTP_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
            logger.addFilter(_RedactingFilter())


class SharedToken:
    """A fetched token and when to renew it (``renew_at``, Unix time in seconds), as one
    replica hands it to the others. The token never appears in the ``repr``."""

    __slots__ = ("renew_at", "token")

    def __init__(self, token: str, renew_at: float) -> None:
        self.token = token
        self.renew_at = float(renew_at)

    def __repr__(self) -> str:
        return f"SharedToken(<redacted>, renew_at={self.renew_at:.0f})"


def token_share_key(kind: str, url: str, key: str, secret: str) -> str:
    """A digest naming a token by the endpoint and keys that mint it: equal for every
    process holding the same keys, and telling nothing about the keys (SHA-256 of a
    128-bit-or-more secret cannot be reversed or guessed)."""
    material = f"llm-bridge token\0{kind}\0{url}\0{key}\0{secret}"
    return hashlib.sha256(material.encode()).hexdigest()


def _fingerprint(token: str) -> str:
    """What is remembered of a rejected token: its digest, not the token."""
    return hashlib.sha256(token.encode()).hexdigest()


class TokenCredentials(Credentials):
    """Credentials with a fetched token, refreshed single-flight across threads and tasks.

    Fifty threads (or tasks) that find the token missing or expired queue on one lock; the
    first fetches, the rest find the fresh token when they get the lock. asyncio locks
    belong to one event loop, so there is one per loop.

    Across processes (a gateway's replicas) the token can be shared: `share_key` names it
    without revealing the keys, `export` hands out the current token with its renew time
    (Unix seconds, so other machines can read it), and `adopt` takes one another replica
    minted. A token this process saw rejected (`invalidate`) is never adopted again: after
    a 401 the next fetch mints a fresh token, which then replaces the shared one.
    Subclasses keep their token through `_keep` and mark a rejected one with `_reject`.
    """

    #: The digest naming this token for sharing (see `token_share_key`); set by subclasses.
    share_key: str = ""
    #: How many rejected tokens are remembered (as digests), so none is adopted again.
    REJECTED_KEPT = 16

    def __init__(self) -> None:
        self.thread_lock = threading.Lock()
        # Guards the async-lock dict and the token state below; never held across I/O.
        self._guard = threading.Lock()
        self._async_locks: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
        self._token: Optional[str] = None
        self._renew_at = 0.0
        self._rejected: deque[str] = deque(maxlen=self.REJECTED_KEPT)
        self.fetches = 0  # how many tokens this process fetched for these keys
        self.adoptions = 0  # how many tokens this process took from other replicas

    def now(self) -> float:
        """The clock renew times are on: Unix time (subclasses take an injected clock)."""
        return time.time()

    def export(self) -> Optional[SharedToken]:
        """The current token and its renew time, for other replicas; None when there is no
        fresh token, or it was rejected."""
        with self._guard:
            token, renew_at = self._token, self._renew_at
            rejected = token is not None and _fingerprint(token) in self._rejected
        if token is None or rejected or renew_at <= self.now():
            return None
        return SharedToken(token, renew_at)

    def adopt(self, token: str, renew_at: float) -> bool:
        """Take ``token``, minted by another replica, until ``renew_at`` (Unix seconds).
        Refused (False) when it is not fresh by this process's clock, or when this process
        saw the provider reject it (a replica that has not noticed yet may still share it)."""
        if not isinstance(token, str) or not token or renew_at <= self.now():
            return False
        digest = _fingerprint(token)
        with self._guard:
            if digest in self._rejected:
                return False
            self._token = token
            self._renew_at = float(renew_at)
            self.adoptions += 1
        return True

    def _keep(self, token: str, renew_at: float) -> None:
        """Keep a token this process just fetched: authoritative, even if an earlier copy
        of it was rejected (a token endpoint may hand out the same token again)."""
        digest = _fingerprint(token)
        with self._guard:
            self._token = token
            self._renew_at = renew_at
            self.fetches += 1
            if digest in self._rejected:
                self._rejected.remove(digest)

    def _reject(self, sent: Optional[str]) -> None:
        """The provider refused ``sent``: mark it stale if it is the current token, and
        never adopt it again."""
        if not sent:
            return
        digest = _fingerprint(sent)
        with self._guard:
            if sent == self._token:
                # Never removed: another thread may be signing with it right now; a stale
                # token is renewed before the next request anyway.
                self._renew_at = 0.0
            if digest not in self._rejected:
                self._rejected.append(digest)

    def async_lock(self) -> Any:
        """This event loop's lock (an ``asyncio.Lock``)."""
        import asyncio  # here: sync-only programs need not load asyncio at all

        loop = asyncio.get_running_loop()
        with self._guard:
            lock = self._async_locks.get(loop)
            if lock is None:
                lock = self._async_locks[loop] = asyncio.Lock()
        return lock


class BearerKey(Credentials):
    """``Authorization: Bearer <key>``; the key never appears in ``repr``."""

    def __init__(self, key: str) -> None:
        self._key = key
        self._value = f"Bearer {key}"

    def secrets(self) -> tuple[str, ...]:
        # A dotted key (Zhipu's "<id>.<secret>") may be echoed in halves.
        return (self._key, *self._key.split("."))

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
    """Signed, cached, renewed Zhipu tokens (``auth = "jwt"``).

    Not shared between a gateway's replicas (unlike `TokenCredentials`): a JWT is signed
    here from the key in microseconds, with no request to anyone, so each replica signing
    its own costs nothing a share would save (see `llm_bridge._token_share`)."""

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

    def secrets(self) -> tuple[str, ...]:
        token = _ZHIPU_TOKENS.get(self._key, 0.0)
        return (self._key, *split_zhipu_key(self._key), *((token,) if token else ()))

    def invalidate(self, request: httpx.Request) -> bool:
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
        _ZHIPU_TOKENS.drop(self._key, only=sent)
        return True

    def __repr__(self) -> str:
        return f"ZhipuJWT(<redacted>, ttl={self._ttl})"


class QianfanAccessToken(TokenCredentials):
    """Qianfan v1 OAuth: an application's API Key + Secret Key buy a 30-day access token.

    The token is fetched lazily on first use, cached until shortly before ``expires_in``,
    shared by every client in the process that holds the same keys (see `shared`), and
    dropped when Qianfan answers 110/111 so that the next request fetches a new one.
    It travels as the ``access_token`` query value.
    """

    def __init__(
        self,
        api_key: str,
        secret_key: str,
        *,
        token_url: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self._api_key = api_key
        self._secret_key = secret_key
        self._token_url = token_url
        self._clock = clock
        self.share_key = token_share_key("oauth", token_url, api_key, secret_key)

    @classmethod
    def shared(cls, api_key: str, secret_key: str, *, token_url: str) -> QianfanAccessToken:
        """The process-wide instance for these keys, so all clients share one token."""
        digest = token_share_key("oauth", token_url, api_key, secret_key)
        with _SHARED_LOCK:
            instance = _SHARED_TOKENS.get(digest)
            if not isinstance(instance, cls):
                instance = _SHARED_TOKENS[digest] = cls(api_key, secret_key, token_url=token_url)
        return instance

    def now(self) -> float:
        return self._clock()

    def token_request(self) -> Optional[httpx.Request]:
        if self._token is not None and self._clock() < self._renew_at:
            return None
        params = {
            "grant_type": "client_credentials",
            "client_id": self._api_key,
            "client_secret": self._secret_key,
        }
        return httpx.Request(
            "POST", self._token_url, params=params, headers={"Accept": "application/json"}
        )

    def accept_token(self, response: httpx.Response) -> None:
        """Keep the token from a token-endpoint answer, or raise what went wrong."""
        body = _json_of(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            raise _token_error(response, body, self.secrets())
        expires_in = float(body.get("expires_in") or 0) or 2592000.0
        self._keep(token, self._clock() + expires_in - min(3600.0, expires_in / 10))

    def query(self) -> dict[str, str]:
        if self._token is None:  # pragma: no cover - the engine fetches before signing
            raise RuntimeError("no Qianfan access token: token_request() was not honoured")
        return {"access_token": self._token}

    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._api_key, self._secret_key, self._token) if s)

    def invalidate(self, request: httpx.Request) -> bool:
        """Mark the token stale (never remove it: another thread may be signing with it
        right now; a stale token is renewed before the next request anyway)."""
        self._reject(request.url.params.get("access_token"))
        return True

    def __repr__(self) -> str:
        return f"QianfanAccessToken(api_key={self._api_key[:4]}…(redacted))"


_SHARED_TOKENS: dict[str, TokenCredentials] = {}
_SHARED_LOCK = threading.Lock()


def _token_error(response: httpx.Response, body: Any, secrets: tuple[str, ...]) -> Exception:
    """Qianfan's token endpoint refused the keys: say which one, without showing either."""
    description = body.get("error_description") if isinstance(body, dict) else None
    code = body.get("error") if isinstance(body, dict) else None
    hints = {
        "unknown client id": "the API Key (QIANFAN_AK) is not a known application key",
        "Client authentication failed": "the Secret Key (QIANFAN_SK) does not match the API Key",
    }
    refusal = None
    if code == "invalid_client" or response.status_code in (400, 401):
        reason = hints.get(str(description), description or "the keys were rejected")
        refusal = f"Qianfan refused the access-token request: {reason} ({code}: {description})"
    return _token_endpoint_error(
        response, body, secrets, endpoint="token endpoint", refusal=refusal, code=code
    )


def _json_of(response: httpx.Response) -> Any:
    """A token endpoint's answer as JSON, or None when it is not JSON."""
    response.read()
    try:
        return response.json()
    except ValueError:
        return None


def _token_endpoint_error(
    response: httpx.Response,
    body: Any,
    secrets: tuple[str, ...],
    *,
    endpoint: str,
    refusal: Optional[str],
    code: Any,
) -> Exception:
    """A token endpoint's failure as openai's error: `AuthenticationError` carrying
    ``refusal`` when the keys were refused, else a server or status error. The failed
    request's URL and headers carry secrets (a query value, a signature): the error keeps
    a copy of the request without them."""
    url = response.request.url.copy_with(query=None)
    safe = httpx.Response(
        response.status_code,
        headers=response.headers,
        content=response.content,
        request=httpx.Request(response.request.method, url),
    )
    if refusal is not None:
        return AuthenticationError(
            scrub(refusal, secrets),
            response=safe,
            body=body,
            code="invalid_api_key",
            provider="qianfan",
            provider_code=str(code) if code else None,
        )
    cls: type[APIStatusError] = APIStatusError
    if response.status_code >= 500:
        cls = InternalServerError
    elif response.status_code == 429:  # (throttled, not refused: openai's callers back off)
        cls = RateLimitError
    return cls(
        f"Qianfan's {endpoint} answered {response.status_code} without a token",
        response=safe,
        body=body,
        provider="qianfan",
    )


class QianfanIamToken(TokenCredentials):
    """Qianfan v2 with IAM account keys: the Access Key / Secret Key mint a bearer token.

    ``GET {iam_token_url}?expireInSeconds=N``, signed with bce-auth-v1, answers
    ``{"userId", "token": "bce-v3/...", "status", "createTime", "expireTime"}`` (times in
    ISO-8601 UTC). The token is fetched lazily, single-flight (the engine holds
    `thread_lock` / `async_lock` around the fetch), shared by every client in the process
    holding the same keys (see `shared`), renewed shortly before it lapses, and marked
    stale when v2 answers 401 ``invalid_iam_token`` so the request is sent once more with
    a fresh one. It travels as ``Authorization: Bearer <token>``.

    ``assumed`` says, for error messages, why the keys were taken as IAM keys (keys given
    as ``api_key``/``secret_key`` whose form is ambiguous); the token endpoint's refusal
    then names it, so a caller holding application keys learns what went wrong.
    """

    #: The lifetime asked for (Baidu allows 5 minutes to 30 days; its SDK asks for 12 h).
    EXPIRE_SECONDS = 43200

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        iam_token_url: str,
        assumed: Optional[str] = None,
        expire_seconds: int = EXPIRE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if not access_key or not secret_key:
            raise ValueError("QianfanIamToken needs both an access key and a secret key")
        self._access_key = access_key
        self._secret_key = secret_key
        self._url = iam_token_url
        self.assumed = assumed
        self.expire_seconds = int(expire_seconds)
        self.clock = clock
        self.share_key = token_share_key("iam", iam_token_url, access_key, secret_key)

    @classmethod
    def shared(
        cls,
        access_key: str,
        secret_key: str,
        *,
        iam_token_url: str,
        assumed: Optional[str] = None,
        clock: Callable[[], float] = time.time,
    ) -> QianfanIamToken:
        """The process-wide instance for these keys, so all clients share one token."""
        digest = token_share_key("iam", iam_token_url, access_key, secret_key)
        with _SHARED_LOCK:
            instance = _SHARED_TOKENS.get(digest)
            if not isinstance(instance, cls):
                instance = _SHARED_TOKENS[digest] = cls(
                    access_key,
                    secret_key,
                    iam_token_url=iam_token_url,
                    assumed=assumed,
                    clock=clock,
                )
        return instance

    def now(self) -> float:
        return self.clock()

    def token_request(self) -> Optional[httpx.Request]:
        if self._token is not None and self.clock() < self._renew_at:
            return None
        from ._bce_signer import BceSigner  # (that module builds on this one)

        request = httpx.Request(
            "GET",
            self._url,
            params={"expireInSeconds": str(self.expire_seconds)},
            headers={"Accept": "application/json"},
        )
        BceSigner(self._access_key, self._secret_key, clock=self.clock).sign(request)
        return request

    def accept_token(self, response: httpx.Response) -> None:
        """Keep the token from IAM's answer, or raise what went wrong (keys never shown)."""
        body = _json_of(response)
        token = body.get("token") if isinstance(body, dict) else None
        if response.status_code >= 400 or not isinstance(token, str) or not token:
            raise _iam_error(response, body, self.secrets(), self.assumed)
        assert isinstance(body, dict)
        now = self.clock()
        lifetime = _lifetime(body.get("createTime"), body.get("expireTime"), now)
        if lifetime is None or lifetime <= 0:
            lifetime = float(self.expire_seconds)
        # Renew with a tenth of the lifetime (at most 10 minutes) to spare.
        self._keep(token, now + lifetime - min(600.0, lifetime / 10))

    def sign(self, request: httpx.Request) -> None:
        if self._token is None:  # pragma: no cover - the engine fetches before signing
            raise RuntimeError("no Qianfan bearer token: token_request() was not honoured")
        request.headers["Authorization"] = f"Bearer {self._token}"

    def secrets(self) -> tuple[str, ...]:
        token = self._token
        parts = tuple(token.split("/")[1:]) if token else ()
        return tuple(s for s in (self._access_key, self._secret_key, token, *parts) if s)

    def invalidate(self, request: httpx.Request) -> bool:
        """Mark the token stale if ``request`` carried it (another thread may already have
        minted a new one); the next request mints before it is sent, and never adopts
        this token from other replicas again."""
        self._reject(request.headers.get("Authorization", "").removeprefix("Bearer "))
        return True

    def __repr__(self) -> str:
        return f"QianfanIamToken(access_key={self._access_key[:4]}…(redacted))"


def _parse_utc(value: Any) -> Optional[float]:
    """An ISO-8601 time (``2026-12-05T08:00:00Z``, with or without fractions) as epoch
    seconds; None when it is not one."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None  # a time without a zone is not IAM's; the requested lifetime is used
    return moment.timestamp()


def _lifetime(created: Any, expires: Any, now: float) -> Optional[float]:
    """Seconds the minted token lives. From IAM's own ``createTime`` to ``expireTime`` when
    both are there (so a skewed local clock does not matter), else until ``expireTime``
    by the local clock."""
    end = _parse_utc(expires)
    if end is None:
        return None
    start = _parse_utc(created)
    return end - (start if start is not None else now)


def _iam_error(
    response: httpx.Response, body: Any, secrets: tuple[str, ...], assumed: Optional[str]
) -> Exception:
    """IAM refused to mint a v2 token: say so, and which kind of keys was assumed."""
    code = response.headers.get("x-bce-error-code")
    message = response.headers.get("x-bce-error-message")
    if isinstance(body, dict):
        code = body.get("code") or code
        message = body.get("message") or message
    why = assumed or "the keys came as IAM account keys (QIANFAN_ACCESS_KEY / QIANFAN_SECRET_KEY)"
    hint = (
        f"{why}. IAM account keys are the Access Key / Secret Key of the Baidu Cloud "
        f"console's security page; an application's API Key / Secret Key (QIANFAN_AK / "
        f"QIANFAN_SK) only worked on the v1 API, closed on 2026-08-31: create a v2 API key "
        f"('bce-v3/...', console -> API Key) or use IAM keys"
    )
    refusal = None
    status = response.status_code
    if status < 500 and status != 429 and (status in (400, 401, 403) or code):
        refusal = (
            f"Qianfan's IAM refused to mint a v2 bearer token: "
            f"{code or response.status_code}: {message or 'no reason given'}. {hint}"
        )
    return _token_endpoint_error(
        response, body, secrets, endpoint="IAM token endpoint", refusal=refusal, code=code
    )
