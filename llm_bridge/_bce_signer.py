"""Baidu Cloud (BCE) ``bce-auth-v1`` request signing.

Baidu Qianfan accepts two kinds of credentials: a short-lived OAuth ``access_token`` passed in
the query string, or an account-level IAM Access Key / Secret Key pair.  With AK/SK every request
carries an ``Authorization`` header computed with Baidu's ``bce-auth-v1`` scheme (used for
the IAM bearer-token fetch, docs/providers/qianfan.md "IAM keys → v2 bearer token"; the
steps, which that page does not spell out, are these):

1. ``authStringPrefix = "bce-auth-v1/{ak}/{timestamp}/{expiration}"``
2. ``signingKey = hex(HMAC-SHA256(sk, authStringPrefix))``
3. ``canonicalRequest = METHOD \\n CanonicalURI \\n CanonicalQuery \\n CanonicalHeaders``
4. ``signature = hex(HMAC-SHA256(signingKey, canonicalRequest))``
5. ``Authorization = authStringPrefix/{signed;headers}/{signature}``

This module is our own implementation of that algorithm so the SDK does not need
``bce-python-sdk`` at run time (it is only used by the tests, as the reference the output must
match byte for byte).  Everything here is pure: no I/O, and the clock is injected, which keeps
signing deterministic and testable.

Public names: :func:`bce_timestamp`, :func:`sign_request`, :class:`BceSigner`.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from typing import Callable, Iterable, List, Mapping, Optional, Tuple, Union

import httpx

from ._auth import Credentials

__all__ = ["BceSigner", "bce_timestamp", "sign_request"]

_AUTH_VERSION = "bce-auth-v1"

#: Bytes that ``normalize`` leaves alone; every other byte becomes ``%XX`` (uppercase hex).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.~-_")

#: Headers signed when the caller does not name any (``x-bce-*`` headers are always signed).
_DEFAULT_SIGNED_HEADERS = frozenset({"host", "content-md5", "content-length", "content-type"})

#: Headers :class:`BceSigner` signs when present (plus every ``x-bce-*`` header).
_SIGNER_HEADERS = ("host", "content-type", "x-bce-date")

_BCE_PREFIX = "x-bce-"

#: What ``bytes.strip()`` removes: header values are trimmed exactly like Baidu's signer does.
_ASCII_WHITESPACE = " \t\n\r\x0b\x0c"


def bce_timestamp(now: float) -> str:
    """Format an epoch time (seconds) as the UTC ``YYYY-MM-DDThh:mm:ssZ`` string BCE expects.

    Fractions of a second are dropped.
    """
    t = time.gmtime(math.floor(now))
    return (
        f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}"
        f"T{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}Z"
    )


def _normalize(value: str, *, keep_slash: bool = False) -> str:
    """Percent-encode every UTF-8 byte except ``A-Za-z0-9.~-_`` (and ``/`` if ``keep_slash``)."""
    out: List[str] = []
    for byte in value.encode("utf-8"):
        if byte in _UNRESERVED or (keep_slash and byte == 0x2F):
            out.append(chr(byte))
        else:
            out.append(f"%{byte:02X}")
    return "".join(out)


def _canonical_query(params: Iterable[Tuple[str, str]]) -> str:
    items = sorted(
        f"{_normalize(key)}={_normalize(value or '')}"
        for key, value in params
        if key.lower() != "authorization"
    )
    return "&".join(items)


def _canonical_headers(headers: Mapping[str, str], signed: Iterable[str]) -> str:
    wanted = set(signed)
    items = []
    for name, value in headers.items():
        lname = name.strip().lower()
        stripped = str(value).strip(_ASCII_WHITESPACE)
        if not stripped:
            continue  # empty-valued headers never take part in the signature
        if lname.startswith(_BCE_PREFIX) or lname in wanted:
            items.append(f"{_normalize(lname)}:{_normalize(stripped)}")
    items.sort()
    return "\n".join(items)


def _hmac_sha256_hex(key: bytes, msg: str) -> str:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).hexdigest()


def sign_request(
    method: str,
    url: Union[httpx.URL, str],
    headers: Mapping[str, str],
    *,
    access_key: str,
    secret_key: str,
    timestamp: str,
    expiration: int = 300,
    signed_headers: Optional[Iterable[str]] = None,
) -> str:
    """Return the ``Authorization`` header value for one request.

    ``url`` supplies the path (canonicalised from its decoded form, ``/`` kept) and the query
    parameters (all of them except ``authorization``).  ``headers`` are the headers the request
    will be sent with.  ``timestamp`` must be the value sent as ``x-bce-date``
    (see :func:`bce_timestamp`).

    ``signed_headers`` names the headers to sign (case-insensitive); they are listed sorted and
    lowercased in the result.  When ``None`` the BCE default set (``host``, ``content-md5``,
    ``content-length``, ``content-type``) is signed and the list in the result is empty
    (``.../<expiration>//<signature>``), exactly as Baidu's own signer does.  In both cases any
    ``x-bce-*`` header is signed too, and headers whose trimmed value is empty are skipped.
    """
    parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)

    auth_prefix = f"{_AUTH_VERSION}/{access_key}/{timestamp}/{int(expiration)}"
    signing_key = _hmac_sha256_hex(secret_key.encode("utf-8"), auth_prefix)

    if signed_headers is None:
        signed_list: List[str] = []
        signed_set = _DEFAULT_SIGNED_HEADERS
    else:
        signed_list = sorted({name.strip().lower() for name in signed_headers})
        signed_set = frozenset(signed_list)

    canonical_request = "\n".join(
        [
            method.upper(),
            _normalize(parsed.path or "/", keep_slash=True),
            _canonical_query(parsed.params.multi_items()),
            _canonical_headers(headers, signed_set),
        ]
    )
    signature = _hmac_sha256_hex(signing_key.encode("ascii"), canonical_request)
    return f"{auth_prefix}/{';'.join(signed_list)}/{signature}"


class BceSigner(Credentials):
    """Signs ``httpx.Request`` objects in place with an IAM Access Key / Secret Key pair.

    ``clock`` returns the current epoch time in seconds; inject a fixed one in tests.
    """

    def __init__(
        self,
        access_key: str,
        secret_key: str,
        *,
        expiration: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not access_key or not secret_key:
            raise ValueError("BceSigner needs both an access key and a secret key")
        self._access_key = access_key
        self._secret_key = secret_key
        self.expiration = int(expiration)
        self._clock = clock

    def secrets(self) -> tuple[str, ...]:
        return (self._access_key, self._secret_key)

    def sign(self, request: httpx.Request) -> None:
        """Add ``Host`` and ``x-bce-date`` (if absent) and the ``Authorization`` header.

        Signed headers: those of ``host``, ``content-type`` and ``x-bce-date`` that are present
        with a non-empty value, plus every non-empty ``x-bce-*`` header.  An ``x-bce-date``
        already on the request is reused as the signing timestamp.
        """
        headers = request.headers
        if "host" not in headers:
            headers["Host"] = request.url.netloc.decode("ascii")
        if "x-bce-date" not in headers:
            headers["x-bce-date"] = bce_timestamp(self._clock())
        timestamp = headers["x-bce-date"].strip(_ASCII_WHITESPACE)

        # httpx.Headers merges repeated names and lowercases keys in items().
        merged = dict(headers.items())
        signed = [
            name
            for name, value in merged.items()
            if (name in _SIGNER_HEADERS or name.startswith(_BCE_PREFIX))
            and value.strip(_ASCII_WHITESPACE)
        ]
        headers["Authorization"] = sign_request(
            request.method,
            request.url,
            merged,
            access_key=self._access_key,
            secret_key=self._secret_key,
            timestamp=timestamp,
            expiration=self.expiration,
            signed_headers=signed,
        )

    def __repr__(self) -> str:
        shown = self._access_key[:4]
        return f"{type(self).__name__}(access_key='{shown}…(redacted)')"
