"""Qianfan v1 credentials and the access-token lifecycle, end to end through the facade.

v1 was shut down on the public cloud on 2026-08-31, so these clients opt in with
``api = "v1"`` (issue 14); v2 is the default (tests/test_qianfan_v2_auth.py). On v1:
application API Key + Secret Key -> an OAuth ``access_token``, IAM account keys ->
bce-auth-v1 signing (checked against Baidu's own signer from ``bce-python-sdk``); a
``bce-v3/...`` key alone -> v2 (docs/providers/qianfan.md, "Credentials"). The token is
fetched lazily, cached, shared by every client in the process, renewed before ``expires_in``
and after 110/111 (once), and fetched single-flight by fifty threads or tasks at a time.

Everything runs offline on ``FakeQianfan`` / ``FakeQianfanV2``; retries never sleep (conftest).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import httpx
import pytest
from baidubce import utils as bce_utils
from baidubce.auth import bce_v1_signer
from baidubce.auth.bce_credentials import BceCredentials
from helpers import HELLO, KEY_SOURCES, Clock, bridge, credentials_of, keys_from

from llm_bridge import (
    AsyncOpenAI,
    AuthenticationError,
    OpenAI,
    OpenAIError,
    RateLimitError,
)
from llm_bridge._bce_signer import BceSigner
from llm_bridge.adapters import qianfan as qianfan_adapter
from llm_bridge.testing import FakeQianfan, FakeQianfanV2
from llm_bridge.types.chat import ChatCompletion

AK = "Y7uKeHc3appApiKey"
SK = "Nh4pW2appSecretKey"
OTHER_AK = "Q2otherAppApiKey"
OTHER_SK = "Z9otherAppSecret"
V2_KEY = "bce-v3/ALTAK-x/y"
IAM_AK = "ALTAKiamAccessKey0123"
IAM_SK = "iamSecretKey0123456789"

EPOCH = 1712391829  # 2024-04-06T08:23:49Z
TIMESTAMP = "2024-04-06T08:23:49Z"
NOW = 1709089502.0

V1_HOST = "aip.baidubce.com"
TOKEN_URL = "https://aip.baidubce.com/oauth/2.0/token"
V1_CHAT_PATH = "/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/completions_pro"  # ernie-4.0-8k
V2 = "https://qianfan.baidubce.com/v2"
MODEL = "ernie-4.0-8k"


# ----------------------------------------------------------------------------- helpers


def with_api(source: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` with ``api = "v1"`` under [providers.qianfan] unless ``source`` is a
    ``FakeQianfanV2``: v1 was shut down on the public cloud on 2026-08-31 and is used only
    on request (a private deployment)."""
    if isinstance(source, FakeQianfanV2):
        return options
    config = dict(options.get("config") or {})
    providers = dict(config.get("providers") or {})
    providers["qianfan"] = {**(providers.get("qianfan") or {}), "api": "v1"}
    return {**options, "config": {**config, "providers": providers}}


def client(source: Any, **options: Any) -> OpenAI:
    """A v1 client answered by ``source`` (these tests are of v1's credentials and token;
    v2's are below and in tests/test_qianfan_v2_auth.py), a v2 one for a ``FakeQianfanV2``."""
    return bridge("qianfan", source, **with_api(source, options))


def aclient(source: Any, **options: Any) -> AsyncOpenAI:
    return bridge("qianfan", source, mode="async", **with_api(source, options))


def ask(c: OpenAI, model: str = MODEL, **params: Any) -> ChatCompletion:
    return c.chat.completions.create(model=model, messages=HELLO, **params)


async def aask(c: AsyncOpenAI, model: str = MODEL, **params: Any) -> ChatCompletion:
    return await c.chat.completions.create(model=model, messages=HELLO, **params)


def chat_requests(fake: FakeQianfan) -> list[httpx.Request]:
    return [r for r in fake.requests if "/wenxinworkshop/chat/" in r.url.path]


def token_requests(fake: FakeQianfan) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path == "/oauth/2.0/token"]


def slow_token_handler(fake: FakeQianfan, delay: float = 0.02) -> Callable[..., Any]:
    """The fake's handler, with the token endpoint taking ``delay`` seconds (widens races)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/2.0/token":
            time.sleep(delay)
        return fake.handler(request)

    return handler


def async_slow_token_handler(fake: FakeQianfan, delay: float = 0.01) -> Callable[..., Any]:
    """An async handler that yields to the loop while the token endpoint answers."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/2.0/token":
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)
        return fake.handler(request)

    return handler


def assert_v1_with_token(fake: FakeQianfan) -> None:
    """One token request with the app keys, then a v1 chat carrying the issued token."""
    tokens = token_requests(fake)
    assert len(tokens) == 1
    url = tokens[0].url
    assert f"{url.scheme}://{url.host}{url.path}" == TOKEN_URL
    assert url.params["grant_type"] == "client_credentials"
    assert url.params["client_id"] == AK
    assert url.params["client_secret"] == SK
    (chat,) = chat_requests(fake)
    assert chat.url.host == V1_HOST
    assert chat.url.path == V1_CHAT_PATH
    assert chat.url.params["access_token"] == fake.issued_tokens[0]
    assert not chat.headers.get("authorization", "").startswith("bce-auth-v1")
    assert fake.bce_authorizations == []


# ----------------------------------------------------------------------------- 1. credentials


@pytest.mark.parametrize("source", KEY_SOURCES)
def test_app_keys_select_v1_with_access_token(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeQianfan(AK, SK)
    c = client(fake, **keys_from(source, monkeypatch, "qianfan", AK, SK))
    result = ask(c)
    assert result.choices[0].message.content.endswith("You said: 你好")
    assert result.choices[0].finish_reason == "stop"
    assert_v1_with_token(fake)


@pytest.mark.parametrize("source", KEY_SOURCES)
def test_bce_v3_key_alone_selects_v2(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeQianfanV2(V2_KEY)
    options = keys_from(source, monkeypatch, "qianfan", V2_KEY, variables=("QIANFAN_API_KEY",))
    c = client(fake, **options)
    result = ask(c)
    (request,) = fake.requests
    assert str(request.url) == f"{V2}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {V2_KEY}"
    assert "access_token" not in request.url.params
    assert result.choices[0].finish_reason == "stop"


def frozen_signer(monkeypatch: pytest.MonkeyPatch, epoch: float = EPOCH + 0.25) -> None:
    """Clients built from now on sign with a clock stopped at ``epoch``."""
    monkeypatch.setattr(
        qianfan_adapter, "BceSigner", functools.partial(BceSigner, clock=lambda: epoch)
    )


def baidu_reference(request: httpx.Request, signed: list[str]) -> str:
    """The Authorization value Baidu's ``bce_v1_signer.sign`` computes for ``request``."""
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    result = bce_v1_signer.sign(
        BceCredentials(IAM_AK, IAM_SK),
        request.method.encode(),
        bce_utils.normalize_string(request.url.path, False),
        {k.encode(): v.encode() for k, v in headers.items()},
        {
            k.encode(): v.encode()
            for k, v in request.url.params.multi_items()
            if k.lower() != "authorization"
        },
        timestamp=EPOCH,
        expiration_in_seconds=300,
        headers_to_sign={name.encode() for name in signed},
    )
    return result.decode("ascii")


@pytest.mark.parametrize("source", ["environment", "config"])
def test_iam_keys_sign_v1_like_baidus_signer(source: str, monkeypatch: pytest.MonkeyPatch) -> None:
    frozen_signer(monkeypatch)
    fake = FakeQianfan(AK, SK)  # api_key set: an unauthenticated request would get 110
    options: dict[str, Any] = {}
    if source == "environment":
        monkeypatch.setenv("QIANFAN_ACCESS_KEY", IAM_AK)
        monkeypatch.setenv("QIANFAN_SECRET_KEY", IAM_SK)
    else:
        iam = {"iam_access_key": IAM_AK, "iam_secret_key": IAM_SK}
        options = {"config": {"providers": {"qianfan": iam}}}
    c = client(fake, **options)
    result = ask(c)
    assert result.choices[0].message.content.endswith("You said: 你好")

    assert fake.token_requests == 0
    (request,) = fake.requests
    assert request.url.host == V1_HOST and request.url.path == V1_CHAT_PATH
    assert "access_token" not in request.url.params
    assert request.headers["x-bce-date"] == TIMESTAMP
    assert request.headers["host"] == V1_HOST
    auth = request.headers["authorization"]
    assert fake.bce_authorizations == [auth]
    prefix = f"bce-auth-v1/{IAM_AK}/{TIMESTAMP}/300/"
    assert auth.startswith(prefix)
    signed = auth[len(prefix) :].split("/")[0].split(";")
    assert {"host", "content-type", "x-bce-date"} <= set(signed)
    theirs = baidu_reference(request, signed)
    assert auth.rsplit("/", 1)[1] == theirs.rsplit("/", 1)[1]
    assert IAM_SK not in str(request.url) and IAM_SK not in str(request.headers)


def test_iam_signature_matches_baidu_for_a_stream_request(monkeypatch: pytest.MonkeyPatch) -> None:
    frozen_signer(monkeypatch)
    monkeypatch.setenv("QIANFAN_ACCESS_KEY", IAM_AK)
    monkeypatch.setenv("QIANFAN_SECRET_KEY", IAM_SK)
    fake = FakeQianfan(AK, SK)
    c = client(fake)
    stream = c.chat.completions.create(model="ernie-speed-8k", messages=HELLO, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text.endswith("You said: 你好")
    (request,) = fake.requests
    auth = request.headers["authorization"]
    signed = auth.split("/")[4].split(";")
    assert auth.rsplit("/", 1)[1] == baidu_reference(request, signed).rsplit("/", 1)[1]


@pytest.mark.parametrize("source", ["arguments", "environment"])
def test_api_key_without_secret_key_fails_at_construction(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeQianfan(AK, SK)
    with pytest.raises(OpenAIError) as info:
        client(fake, **keys_from(source, monkeypatch, "qianfan", AK))
    message = str(info.value)
    assert "QIANFAN_SK" in message and "secret_key" in message
    assert AK not in message
    assert fake.requests == []


def test_no_credentials_fails_at_construction_naming_qianfan_ak() -> None:
    fake = FakeQianfan(AK, SK)
    with pytest.raises(OpenAIError, match="QIANFAN_AK"):
        client(fake)
    with pytest.raises(OpenAIError, match="QIANFAN_AK"):
        aclient(fake)
    assert fake.requests == []


# ----------------------------------------------------------------------------- 2. lifecycle


def test_token_is_fetched_lazily_then_cached() -> None:
    fake = FakeQianfan(AK, SK)
    c = client(fake, api_key=AK, secret_key=SK)
    assert fake.requests == []  # constructing asks for nothing
    ask(c)
    assert fake.token_requests == 1 and len(chat_requests(fake)) == 1
    for _ in range(9):
        ask(c)
    assert fake.token_requests == 1
    assert len(chat_requests(fake)) == 10
    assert {r.url.params["access_token"] for r in chat_requests(fake)} == {fake.issued_tokens[0]}


async def test_async_token_is_fetched_lazily_then_cached() -> None:
    fake = FakeQianfan(AK, SK)
    c = aclient(fake, api_key=AK, secret_key=SK)
    assert fake.requests == []
    for _ in range(10):
        await aask(c)
    assert fake.token_requests == 1 and len(chat_requests(fake)) == 10


async def test_token_is_shared_by_sync_and_async_clients() -> None:
    fake = FakeQianfan(AK, SK)
    first = client(fake, api_key=AK, secret_key=SK)
    second = client(fake, config={"providers": {"qianfan": {"api_key": AK, "secret_key": SK}}})
    third = aclient(fake, api_key=AK, secret_key=SK)
    ask(first)
    ask(second)
    await aask(third)
    ask(first.with_options(timeout=5.0))
    assert fake.token_requests == 1
    assert {r.url.params["access_token"] for r in chat_requests(fake)} == {fake.issued_tokens[0]}


def test_different_keys_get_different_tokens() -> None:
    fake = FakeQianfan()  # accepts any keys
    one = client(fake, api_key=AK, secret_key=SK)
    two = client(fake, api_key=OTHER_AK, secret_key=OTHER_SK)
    same_ak_other_sk = client(fake, api_key=AK, secret_key=OTHER_SK)
    for c in (one, two, same_ak_other_sk, one, two, same_ak_other_sk):
        ask(c)
    assert fake.token_requests == 3
    assert [r.url.params["client_id"] for r in token_requests(fake)] == [AK, OTHER_AK, AK]
    used = [r.url.params["access_token"] for r in chat_requests(fake)]
    assert used[:3] == fake.issued_tokens and used[3:] == fake.issued_tokens


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_token_is_renewed_shortly_before_expires_in(
    mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(NOW)
    fake = FakeQianfan(AK, SK, token_ttl=100, clock=clock)
    c: Any = client(fake, api_key=AK, secret_key=SK) if mode == "sync" else None
    if c is None:
        c = aclient(fake, api_key=AK, secret_key=SK)
    monkeypatch.setattr(credentials_of(c), "_clock", clock)

    async def call() -> ChatCompletion:
        return ask(c) if mode == "sync" else await aask(c)

    await call()
    assert fake.token_requests == 1
    clock.now += 80  # well inside the token's life: kept
    await call()
    assert fake.token_requests == 1
    clock.now += 15  # 5 s before expires_in: renewed before it is sent, not after a 111
    await call()
    assert fake.token_requests == 2
    chats = chat_requests(fake)
    assert len(chats) == 3  # no request was rejected and retried
    assert [r.url.params["access_token"] for r in chats] == [
        fake.issued_tokens[0],
        fake.issued_tokens[0],
        fake.issued_tokens[1],
    ]


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("code", [111, 110])
async def test_rejected_token_is_refreshed_once_and_request_retried(
    code: int, mode: str, no_retry_sleep: list[float]
) -> None:
    fake = FakeQianfan(AK, SK)
    if mode == "sync":
        c: Any = client(fake, api_key=AK, secret_key=SK)
    else:
        c = aclient(fake, api_key=AK, secret_key=SK)

    async def call() -> ChatCompletion:
        return ask(c) if mode == "sync" else await aask(c)

    await call()
    if code == 111:
        fake.expire_tokens()
    else:
        fake.revoke_tokens()
    result = await call()
    assert result.choices[0].message.content.endswith("You said: 你好")
    assert fake.token_requests == 2
    chats = chat_requests(fake)
    assert len(chats) == 3  # warm-up, rejected, retried
    assert chats[1].url.params["access_token"] == fake.issued_tokens[0]
    assert chats[2].url.params["access_token"] == fake.issued_tokens[1]
    assert all(wait == 0 for wait in no_retry_sleep)  # no backoff before a reauth
    # Later calls keep the fresh token.
    await call()
    assert fake.token_requests == 2


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_fresh_token_rejected_again_raises_without_looping(mode: str) -> None:
    fake = FakeQianfan(AK, SK)
    if mode == "sync":
        c: Any = client(fake, api_key=AK, secret_key=SK)
    else:
        c = aclient(fake, api_key=AK, secret_key=SK)

    async def call() -> ChatCompletion:
        return ask(c) if mode == "sync" else await aask(c)

    await call()
    fake.fail("auth").fail("auth").fail("auth")  # 110 for every token, old and new
    with pytest.raises(AuthenticationError) as info:
        await call()
    assert info.value.provider_code == "110"
    assert fake.token_requests == 2  # one refresh, no more
    assert len(chat_requests(fake)) == 3  # warm-up, rejected, retried once


BAD_KEYS = [
    pytest.param("WrongAppApiKey00", SK, ("API Key", "QIANFAN_AK"), id="bad-ak"),
    pytest.param(AK, "WrongAppSecret00", ("Secret Key", "QIANFAN_SK"), id="bad-sk"),
]


@pytest.mark.parametrize(("ak", "sk", "names"), BAD_KEYS)
def test_bad_keys_raise_authentication_error_after_one_token_request(
    ak: str, sk: str, names: tuple[str, str]
) -> None:
    fake = FakeQianfan(AK, SK)
    c = client(fake, api_key=ak, secret_key=sk)
    with pytest.raises(AuthenticationError) as info:
        ask(c)
    err = info.value
    assert all(name in str(err) for name in names)
    assert fake.token_requests == 1 and chat_requests(fake) == []
    for text in (str(err), repr(err), repr(c), str(err.request.url), repr(err.body)):
        assert ak not in text and sk not in text


@pytest.mark.parametrize(("ak", "sk", "names"), BAD_KEYS)
async def test_bad_keys_async(ak: str, sk: str, names: tuple[str, str]) -> None:
    fake = FakeQianfan(AK, SK)
    c = aclient(fake, api_key=ak, secret_key=sk)
    with pytest.raises(AuthenticationError) as info:
        await aask(c)
    err = info.value
    assert all(name in str(err) for name in names)
    assert fake.token_requests == 1 and chat_requests(fake) == []
    for text in (str(err), repr(err), repr(c)):
        assert ak not in text and sk not in text
    # A second call tries again (the failure is not cached), still without retrying.
    with pytest.raises(AuthenticationError):
        await aask(c)
    assert fake.token_requests == 2


def test_debug_logs_never_show_keys_or_tokens(caplog: pytest.LogCaptureFixture) -> None:
    """``LLM_BRIDGE_LOG=debug`` logs request URLs; the token request's URL carries both keys."""
    caplog.set_level(logging.DEBUG, logger="llm_bridge")
    fake = FakeQianfan(AK, SK)
    c = client(fake, api_key=AK, secret_key=SK)
    ask(c)
    fake.expire_tokens()
    ask(c)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/oauth/2.0/token" in logged and V1_CHAT_PATH in logged
    for secret in (AK, SK, *fake.issued_tokens):
        assert secret not in logged


# ----------------------------------------------------------------------------- 3. single flight

CONCURRENCY = 50


def run_threads(c: OpenAI) -> list[ChatCompletion]:
    barrier = threading.Barrier(CONCURRENCY)

    def one(_: int) -> ChatCompletion:
        barrier.wait(timeout=10)
        return ask(c)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        return list(pool.map(one, range(CONCURRENCY)))


def test_fifty_threads_meeting_an_expired_token_fetch_one() -> None:
    fake = FakeQianfan(AK, SK)
    c = client(httpx.MockTransport(slow_token_handler(fake)), api_key=AK, secret_key=SK)
    ask(c)
    assert fake.token_requests == 1
    fake.expire_tokens()
    results = run_threads(c)
    assert len(results) == CONCURRENCY
    assert all(r.choices[0].message.content.endswith("You said: 你好") for r in results)
    assert fake.token_requests == 2  # the warm-up and exactly one renewal
    successes = [
        r for r in chat_requests(fake) if r.url.params["access_token"] == fake.issued_tokens[1]
    ]
    assert len(successes) == CONCURRENCY


def test_fifty_threads_at_cold_start_fetch_one() -> None:
    fake = FakeQianfan(AK, SK)
    c = client(httpx.MockTransport(slow_token_handler(fake)), api_key=AK, secret_key=SK)
    results = run_threads(c)
    assert len(results) == CONCURRENCY
    assert fake.token_requests == 1
    assert len(chat_requests(fake)) == CONCURRENCY


def test_fifty_threads_on_fifty_clients_fetch_one() -> None:
    """The single flight is per credentials, not per client."""
    fake = FakeQianfan(AK, SK)
    transport = httpx.MockTransport(slow_token_handler(fake))
    clients = [client(transport, api_key=AK, secret_key=SK) for _ in range(CONCURRENCY)]
    barrier = threading.Barrier(CONCURRENCY)

    def one(c: OpenAI) -> ChatCompletion:
        barrier.wait(timeout=10)
        return ask(c)

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        results = list(pool.map(one, clients))
    assert len(results) == CONCURRENCY
    assert fake.token_requests == 1


def test_thread_signing_while_another_thread_refreshes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thread B has checked the token (still cached) and is building its request when thread A,
    answered 111, drops the token and starts fetching a new one. B must still send a request
    (with the old token, answered 111 and retried, or with the new one), never crash."""
    fake = FakeQianfan(AK, SK)
    c = client(httpx.MockTransport(slow_token_handler(fake, 0.2)), api_key=AK, secret_key=SK)
    ask(c)
    fake.expire_tokens()
    credentials = credentials_of(c)
    adapter = c._engine.adapter("qianfan")
    dropped = threading.Event()
    invalidate, chat_request = credentials.invalidate, adapter.chat_request

    def spying_invalidate(request: httpx.Request) -> bool:
        result = invalidate(request)
        dropped.set()
        return result

    def held_chat_request(params: Any, call: Any) -> Any:
        if threading.current_thread().name == "B":
            dropped.wait(timeout=5)  # B sits between _ensure_token and sign
        return chat_request(params, call)

    monkeypatch.setattr(credentials, "invalidate", spying_invalidate)
    monkeypatch.setattr(adapter, "chat_request", held_chat_request)
    outcomes: dict[str, Any] = {}

    def run(name: str) -> None:
        try:
            outcomes[name] = ask(c).choices[0].finish_reason
        except Exception as error:
            outcomes[name] = error

    b = threading.Thread(target=run, args=("B",), name="B")
    b.start()
    time.sleep(0.05)  # B has passed _ensure_token and waits inside the request build
    a = threading.Thread(target=run, args=("A",), name="A")
    a.start()
    a.join(timeout=10)
    b.join(timeout=10)
    assert outcomes == {"A": "stop", "B": "stop"}
    assert fake.token_requests == 2


async def test_fifty_tasks_meeting_an_expired_token_fetch_one() -> None:
    fake = FakeQianfan(AK, SK)
    c = aclient(httpx.MockTransport(async_slow_token_handler(fake)), api_key=AK, secret_key=SK)
    await aask(c)
    fake.expire_tokens()
    results = await asyncio.gather(*(aask(c) for _ in range(CONCURRENCY)))
    assert len(results) == CONCURRENCY
    assert all(r.choices[0].message.content.endswith("You said: 你好") for r in results)
    assert fake.token_requests == 2


async def test_fifty_tasks_at_cold_start_fetch_one() -> None:
    fake = FakeQianfan(AK, SK)
    c = aclient(httpx.MockTransport(async_slow_token_handler(fake)), api_key=AK, secret_key=SK)
    results = await asyncio.gather(*(aask(c) for _ in range(CONCURRENCY)))
    assert len(results) == CONCURRENCY
    assert fake.token_requests == 1
    assert len(chat_requests(fake)) == CONCURRENCY


# ----------------------------------------------------------------------------- 4. v2


def v2client(fake: FakeQianfanV2, **options: Any) -> OpenAI:
    """A v2 client with the v2 root given explicitly, so these tests do not depend on the
    default root (covered by `test_bce_v3_key_alone_selects_v2`)."""
    options.setdefault("api_key", V2_KEY)
    return client(fake, base_url=V2, **options)


def v2aclient(fake: FakeQianfanV2, **options: Any) -> AsyncOpenAI:
    options.setdefault("api_key", V2_KEY)
    return aclient(fake, base_url=V2, **options)


def test_v2_chat_maps_model_finish_reason_and_bearer() -> None:
    fake = FakeQianfanV2(V2_KEY)
    c = v2client(fake)
    result = c.chat.completions.create(model="ernie-character-8k", messages=HELLO)
    (request,) = fake.requests
    assert str(request.url) == f"{V2}/chat/completions"
    assert request.headers["authorization"] == f"Bearer {V2_KEY}"
    body = json.loads(request.content)
    assert body["model"] == "ernie-char-8k"
    assert body["messages"] == HELLO
    assert "stream" not in body
    assert result.id.startswith("as-")
    assert result.choices[0].finish_reason == "stop"
    assert result.choices[0].message.content.endswith("You said: 你好")
    assert result.usage is not None and result.usage.total_tokens > 0
    assert fake.appids == [None]


def test_v2_sends_appid_from_config() -> None:
    fake = FakeQianfanV2(V2_KEY)
    config = {"providers": {"qianfan": {"appid": "app-x"}}}
    c = v2client(fake, config=config)
    ask(c)
    c.embeddings.create(model="embedding-v1", input="x")
    assert fake.appids == ["app-x", "app-x"]


@pytest.mark.parametrize(
    ("given", "sent"), [(0, 0.01), (0.0, 0.01), (0.5, 0.5), (1.0, 1.0), (1.7, 1.0)]
)
def test_v2_temperature_is_clamped_to_ernies_range(given: float, sent: float) -> None:
    fake = FakeQianfanV2(V2_KEY)
    ask(v2client(fake), temperature=given)
    assert fake.last_json["temperature"] == pytest.approx(sent)


@pytest.mark.parametrize("include_usage", [False, True])
def test_v2_stream(include_usage: bool) -> None:
    fake = FakeQianfanV2(V2_KEY, split_bytes=7)
    fake.reply("你好，千帆！", chunk_size=2)
    c = v2client(fake)
    params: dict[str, Any] = {}
    if include_usage:
        params["stream_options"] = {"include_usage": True}
    chunks = list(
        c.chat.completions.create(model="ernie-character-8k", messages=HELLO, stream=True, **params)
    )
    body = fake.last_json
    assert body["model"] == "ernie-char-8k" and body["stream"] is True
    with_choices = [ch for ch in chunks if ch.choices]
    text = "".join(ch.choices[0].delta.content or "" for ch in with_choices)
    assert text == "你好，千帆！"
    finishes = [ch.choices[0].finish_reason for ch in with_choices if ch.choices[0].finish_reason]
    assert finishes == ["stop"]
    if include_usage:
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens > 0
        assert all(ch.usage is None for ch in chunks[:-1])
    else:
        assert all(ch.choices for ch in chunks)
        assert all(ch.usage is None for ch in chunks)


async def test_v2_async_stream_with_usage() -> None:
    fake = FakeQianfanV2(V2_KEY, split_bytes=5)
    fake.reply("异步你好", chunk_size=1)
    c = v2aclient(fake)
    stream = await c.chat.completions.create(
        model="ernie-4.0-8k",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == "异步你好"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


def test_v2_bad_key_is_authentication_error_without_retry() -> None:
    fake = FakeQianfanV2(V2_KEY)
    c = v2client(fake, api_key="bce-v3/ALTAK-wrong/zzz")
    with pytest.raises(AuthenticationError) as info:
        ask(c)
    err = info.value
    assert err.status_code == 401
    assert err.provider_code == "invalid_iam_token"
    assert len(fake.requests) == 1
    assert "bce-v3/ALTAK-wrong/zzz" not in str(err) + repr(err) + repr(c)


def test_v2_rate_limit_is_retried(no_retry_sleep: list[float]) -> None:
    fake = FakeQianfanV2(V2_KEY)
    fake.fail("rate_limit").fail("rate_limit")
    result = ask(v2client(fake))
    assert result.choices[0].finish_reason == "stop"
    assert len(fake.requests) == 3
    assert len(no_retry_sleep) == 2


def test_v2_rate_limit_gives_up_after_max_retries(no_retry_sleep: list[float]) -> None:
    fake = FakeQianfanV2(V2_KEY)
    fake.fail("rate_limit").fail("rate_limit").fail("rate_limit").fail("rate_limit")
    with pytest.raises(RateLimitError) as info:
        ask(v2client(fake, max_retries=2))
    assert info.value.provider_code == "rpm_rate_limit_exceeded"
    assert info.value.status_code == 429
    assert len(fake.requests) == 3
    assert len(no_retry_sleep) == 2


async def test_v2_async_rate_limit_is_retried(no_retry_sleep: list[float]) -> None:
    fake = FakeQianfanV2(V2_KEY)
    fake.fail("rate_limit")
    result = await aask(v2aclient(fake))
    assert result.choices[0].finish_reason == "stop"
    assert len(fake.requests) == 2 and len(no_retry_sleep) == 1


def test_v2_embeddings() -> None:
    fake = FakeQianfanV2(V2_KEY)
    c = v2client(fake)
    texts = [f"text {i}" for i in range(20)]
    result = c.embeddings.create(model="embedding-v1", input=texts)
    assert [str(r.url) for r in fake.requests] == [f"{V2}/embeddings"] * 2  # 16 + 4
    bodies = [json.loads(r.content) for r in fake.requests]
    assert [len(b["input"]) for b in bodies] == [16, 4]
    assert all(b["model"] == "embedding-v1" for b in bodies)
    assert all(r.headers["authorization"] == f"Bearer {V2_KEY}" for r in fake.requests)
    assert [d.index for d in result.data] == list(range(20))
    assert all(len(d.embedding) == 1024 for d in result.data)
    assert result.usage.prompt_tokens > 0
    single = c.embeddings.create(model="embedding-v1", input="one")
    assert len(single.data) == 1
