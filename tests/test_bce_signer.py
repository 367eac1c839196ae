"""Our bce-auth-v1 signer must agree byte for byte with Baidu's own (``bce-python-sdk``).

``bce-python-sdk`` is a test-only dependency (the ``[dev]`` extra); it is imported normally so a
missing reference fails loudly instead of silently skipping the proof.

Conventions of the reference, read from ``baidubce/auth/bce_v1_signer.py`` and ``utils.py``:

* everything is ``bytes``: method, path, header names/values, params, ``headers_to_sign``;
* ``path`` is used verbatim as the canonical URI, the BCE clients pass it already normalised
  (``utils.append_uri`` -> ``normalize_string(path, encoding_slash=False)``);
* ``timestamp`` is an epoch ``int`` (``0`` means "now");
* header names are stripped and lowercased before the ``in headers_to_sign`` test, so
  ``headers_to_sign`` must hold lowercase ``bytes``; the ``Authorization`` value lists them in
  the iteration order of whatever was passed (we emit them sorted);
* ``get_canonical_querystring`` means to drop the ``authorization`` parameter but compares the
  bound method ``k.lower`` with a string, so it never does.  The protocol (§2A.3 step 7) excludes
  it, so the reference is fed the parameters without it.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import httpx
import pytest
from baidubce import utils as bce_utils
from baidubce.auth import bce_v1_signer
from baidubce.auth.bce_credentials import BceCredentials

from llm_bridge._bce_signer import BceSigner, bce_timestamp, sign_request

AK = "ALTAKexampleAccessKey0123456789"
SK = "exampleSecretKey0123456789abcdef"
HOST = "aip.baidubce.com"
EPOCH = 1712391829  # 2024-04-06T08:23:49Z
TIMESTAMP = "2024-04-06T08:23:49Z"

ERNIE_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro"
ODD_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/my model+v2 (测试)~x_y.z-1/%é"


def reference(
    method: str,
    path: str,
    params: Sequence[Tuple[str, str]],
    headers: Dict[str, str],
    *,
    epoch: int = EPOCH,
    expiration: int = 300,
    headers_to_sign: Optional[Sequence[str]] = None,
) -> str:
    """The Authorization value computed by Baidu's ``bce_v1_signer.sign``."""
    result = bce_v1_signer.sign(
        BceCredentials(AK, SK),
        method.encode(),
        bce_utils.normalize_string(path, False),
        {k.encode(): v.encode() for k, v in headers.items()},
        {k.encode(): v.encode() for k, v in params if k.lower() != "authorization"},
        timestamp=epoch,
        expiration_in_seconds=expiration,
        headers_to_sign=None
        if headers_to_sign is None
        else {h.lower().encode() for h in headers_to_sign},  # a set, as QF-SDK passes it
    )
    assert isinstance(result, bytes)
    return result.decode("ascii")


def normalise(auth: str) -> str:
    """Sort the signed-header list of an Authorization value (Baidu emits it in set order)."""
    version, ak, ts, exp, signed, signature = auth.split("/")
    signed = ";".join(sorted(signed.split(";"))) if signed else ""
    return "/".join([version, ak, ts, exp, signed, signature])


def signature_of(auth: str) -> str:
    return auth.rsplit("/", 1)[1]


BASE_HEADERS = {
    "Host": HOST,
    "Content-Type": "application/json",
    "x-bce-date": TIMESTAMP,
}

QUERIES: Dict[str, List[Tuple[str, str]]] = {
    "no-query": [],
    "one-param": [("access_token", "24.abc.def-123")],
    "several": [
        ("b", "2"),
        ("a", "1"),
        ("space key", "a b+c"),
        ("名字", "值/✓"),
        ("empty", ""),
        ("tilde~._-", "~._-"),
        ("authorization", "must-be-ignored"),
        ("Authorization", "must-be-ignored-too"),
    ],
}

HEADER_SETS: Dict[str, Dict[str, str]] = {
    "basic": dict(BASE_HEADERS),
    "extra-bce": {
        **BASE_HEADERS,
        "x-bce-foo": "  bar baz ",
        "X-Bce-Meta": "ü/:=?",
        "Content-Length": "17",
    },
    "empty-valued": {**BASE_HEADERS, "x-bce-empty": "", "Content-MD5": "   "},
}

SIGNED_SETS: Dict[str, Optional[List[str]]] = {
    "default": None,
    "explicit": ["Host", "content-type", "x-bce-date"],
    "explicit-with-empty": ["host", "content-type", "x-bce-date", "content-md5", "x-bce-empty"],
}


def url_for(path: str, params: Sequence[Tuple[str, str]]) -> httpx.URL:
    return httpx.URL(f"https://{HOST}").copy_with(path=path).copy_merge_params(list(params))


@pytest.mark.parametrize("signed_name", sorted(SIGNED_SETS))
@pytest.mark.parametrize("header_name", sorted(HEADER_SETS))
@pytest.mark.parametrize("query_name", sorted(QUERIES))
@pytest.mark.parametrize("path", [ERNIE_PATH, ODD_PATH, "/"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sign_request_matches_baidu(
    method: str, path: str, query_name: str, header_name: str, signed_name: str
) -> None:
    params = QUERIES[query_name]
    headers = HEADER_SETS[header_name]
    signed = SIGNED_SETS[signed_name]

    ours = sign_request(
        method,
        url_for(path, params),
        headers,
        access_key=AK,
        secret_key=SK,
        timestamp=TIMESTAMP,
        expiration=300,
        signed_headers=signed,
    )
    theirs = reference(method, path, params, headers, headers_to_sign=signed)

    assert signature_of(ours) == signature_of(theirs)
    assert ours == normalise(theirs)
    assert ours.startswith(f"bce-auth-v1/{AK}/{TIMESTAMP}/300/")


def test_string_url_and_expiration() -> None:
    params = QUERIES["several"]
    url = str(url_for(ODD_PATH, params))
    assert isinstance(url, str)
    ours = sign_request(
        "post",
        url,
        HEADER_SETS["extra-bce"],
        access_key=AK,
        secret_key=SK,
        timestamp=TIMESTAMP,
        expiration=1800,
        signed_headers=["host", "content-type"],
    )
    theirs = reference(
        "POST",
        ODD_PATH,
        params,
        HEADER_SETS["extra-bce"],
        expiration=1800,
        headers_to_sign=["host", "content-type"],
    )
    assert ours == normalise(theirs)
    assert "/1800/content-type;host/" in ours


def test_authorization_query_param_is_excluded() -> None:
    kwargs = dict(access_key=AK, secret_key=SK, timestamp=TIMESTAMP)
    with_auth = sign_request(
        "GET", f"https://{HOST}{ERNIE_PATH}?a=1&authorization=x", BASE_HEADERS, **kwargs
    )
    without = sign_request("GET", f"https://{HOST}{ERNIE_PATH}?a=1", BASE_HEADERS, **kwargs)
    assert with_auth == without


def test_default_signed_headers_leave_list_empty() -> None:
    auth = sign_request(
        "GET", f"https://{HOST}/", BASE_HEADERS, access_key=AK, secret_key=SK, timestamp=TIMESTAMP
    )
    assert auth.startswith(f"bce-auth-v1/{AK}/{TIMESTAMP}/300//")
    assert len(signature_of(auth)) == 64


# --- BceSigner on real httpx requests -------------------------------------------------------


def reference_for_request(request: httpx.Request, headers_to_sign: Sequence[str]) -> str:
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    return reference(
        request.method,
        request.url.path,
        list(request.url.params.multi_items()),
        headers,
        headers_to_sign=headers_to_sign,
    )


def test_signer_post_end_to_end() -> None:
    signer = BceSigner(AK, SK, clock=lambda: EPOCH + 0.75)
    request = httpx.Request(
        "POST",
        url_for(ERNIE_PATH, [("b", "2"), ("a", "x y")]),
        json={"messages": [{"role": "user", "content": "你好"}]},
    )
    assert request.headers["content-type"] == "application/json"

    signer.sign(request)

    assert request.headers["x-bce-date"] == TIMESTAMP
    assert request.headers["host"] == HOST
    auth = request.headers["authorization"]
    assert auth.startswith(f"bce-auth-v1/{AK}/{TIMESTAMP}/300/content-type;host;x-bce-date/")
    theirs = reference_for_request(request, ["host", "content-type", "x-bce-date"])
    assert auth == normalise(theirs)


def test_signer_get_with_extra_bce_headers_and_existing_date() -> None:
    signer = BceSigner(AK, SK, expiration=600, clock=lambda: pytest.fail("clock not needed"))
    request = httpx.Request(
        "GET",
        url_for(ODD_PATH, QUERIES["several"]),
        headers={
            "x-bce-date": "2023-01-02T03:04:05Z",
            "X-Bce-Foo": " bar ",
            "x-bce-empty": "",
            "Accept": "text/event-stream",
        },
    )
    signer.sign(request)

    auth = request.headers["authorization"]
    # No Content-Type on this GET; the empty x-bce header is neither signed nor listed.
    assert auth.startswith(f"bce-auth-v1/{AK}/2023-01-02T03:04:05Z/600/host;x-bce-date;x-bce-foo/")
    theirs = reference(
        "GET",
        ODD_PATH,
        QUERIES["several"],
        {k: v for k, v in request.headers.items() if k != "authorization"},
        epoch=1672628645,  # 2023-01-02T03:04:05Z
        expiration=600,
        headers_to_sign=["host", "x-bce-date", "x-bce-foo"],
    )
    assert auth == normalise(theirs)


def test_signer_sets_host_from_netloc_when_absent() -> None:
    signer = BceSigner(AK, SK, clock=lambda: EPOCH)
    request = httpx.Request("POST", "https://example.com:8443/v1/x", content=b"{}")
    del request.headers["host"]
    signer.sign(request)
    assert request.headers["host"] == "example.com:8443"
    theirs = reference_for_request(request, ["host", "x-bce-date"])
    assert request.headers["authorization"] == normalise(theirs)


def test_signer_repr_hides_keys() -> None:
    signer = BceSigner(AK, SK)
    text = repr(signer)
    assert text == "BceSigner(access_key='ALTA…(redacted)')"
    assert AK not in text
    assert SK not in text
    assert SK[:4] not in text
    assert str(signer) == text


def test_signer_requires_both_keys() -> None:
    with pytest.raises(ValueError):
        BceSigner("", SK)
    with pytest.raises(ValueError):
        BceSigner(AK, "")


# --- bce_timestamp ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (EPOCH, TIMESTAMP),
        (EPOCH + 0.999, TIMESTAMP),
        (951782400, "2000-02-29T00:00:00Z"),
        (4102444799.5, "2099-12-31T23:59:59Z"),
    ],
)
def test_bce_timestamp(now: float, expected: str) -> None:
    assert bce_timestamp(now) == expected


@pytest.mark.parametrize("epoch", [1, 86399, EPOCH, 1735689599, 2000000000])
def test_bce_timestamp_matches_baidu(epoch: int) -> None:
    assert bce_timestamp(epoch) == bce_utils.get_canonical_time(epoch).decode("ascii")
