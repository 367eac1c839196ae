"""Qianfan v2 is the default for every credential that reaches it (issue 14).

A ``bce-v3/...`` key is a bearer key; IAM account keys mint a v2 bearer token at
``iam.bj.baidubce.com/v1/BCE-BEARER/token`` (bce-auth-v1 signed, verified by the fake with
its own implementation and checked here against Baidu's ``bce-python-sdk``), cached until
shortly before its ``expireTime``, minted once for many threads or tasks, and renewed once
on 401 ``invalid_iam_token``. Application keys (v1 only, closed on 2026-08-31) fail at
construction unless ``api = "v1"`` opts in. Keys given as api_key/secret_key are told apart
by form. Everything goes through the real openai client, both front doors, on the fake.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable

import httpx
import openai
import pytest
from baidubce import utils as bce_utils
from baidubce.auth import bce_v1_signer
from baidubce.auth.bce_credentials import BceCredentials
from helpers import HELLO, KEY_SOURCES, Clock, bridge, credentials_of, keys_from, upstream

import llm_bridge
from llm_bridge import AsyncOpenAI, AuthenticationError, OpenAI, OpenAIError
from llm_bridge._auth import QianfanIamToken
from llm_bridge._config import builtin_providers
from llm_bridge.adapters.qianfan import key_kind, plan_keys
from llm_bridge.testing import FakeQianfan, FakeQianfanV2
from llm_bridge.testing.qianfan import IAM_HOST

IAM_AK = "ALTAKq7Hn2mVx9LpR4tWc8Ye"  # an IAM Access Key's form
IAM_SK = "5f0c7a9e1b2d4c6e8f0a1b3c5d7e9f1a"
HEX_AK = "0123456789abcdef0123456789abcdef"  # the other IAM form: 32 hex digits
APP_AK = "Yq3Kp8Lm2Nx7Rt5Vw9Zb4Hc6"  # an application API Key: 24 letters and digits
APP_SK = "Pz1Xc3Vb5Nm7Qw9Er2Ty4Ui6Op8As0Df"
ODD_AK = "my-key"  # neither form
V2_KEY = "bce-v3/ALTAK-v2keyA1b2/c3d4e5f6a7b8c9d0"
V2 = "https://qianfan.baidubce.com/v2"
MODEL = "ernie-4.5-turbo-128k"
NOW = 1796000000.0  # 2026-11-30
CONCURRENCY = 20


def iam_fake(clock: Callable[[], float] = time.time, **kwargs: Any) -> FakeQianfanV2:
    return FakeQianfanV2(access_key=IAM_AK, secret_key=IAM_SK, clock=clock, **kwargs)


#: A sync or async client answered by a fake or a transport (its keys are the test's own).
client = partial(bridge, "qianfan")
aclient = partial(bridge, "qianfan", mode="async")


def ask(c: OpenAI, **params: Any) -> Any:
    params.setdefault("model", MODEL)
    params.setdefault("messages", HELLO)
    return c.chat.completions.create(**params)


def chats(fake: FakeQianfanV2) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path == "/v2/chat/completions"]


def tokens(fake: FakeQianfanV2) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.host == IAM_HOST]


def use_clock(c: OpenAI | AsyncOpenAI, clock: Clock) -> None:
    credentials = credentials_of(c)
    assert isinstance(credentials, QianfanIamToken)
    credentials.clock = clock


@pytest.fixture
def iam_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QIANFAN_ACCESS_KEY", IAM_AK)
    monkeypatch.setenv("QIANFAN_SECRET_KEY", IAM_SK)


# ----------------------------------------------------------------------------- key forms


@pytest.mark.parametrize(
    ("key", "kind"),
    [
        (IAM_AK, "iam"),
        ("ALTAKshort", "iam"),
        (HEX_AK, "iam"),
        (HEX_AK.upper(), "iam"),
        (APP_AK, "app"),
        (ODD_AK, "unknown"),
        (APP_AK[:-1], "unknown"),  # 23 characters
        (HEX_AK + "0", "unknown"),  # 33 hex digits
        ("Yq3Kp8Lm2Nx7Rt5Vw9Zb4Hc-", "unknown"),
    ],
)
def test_key_kind_tells_iam_and_application_keys_apart_by_form(key: str, kind: str) -> None:
    assert key_kind(key) == kind


SPEC = builtin_providers()["qianfan"]
SPEC_V1 = SPEC.model_copy(update={"api": "v1"})


def keys(**given: str) -> dict[str, Any]:
    return {"api_key": None, "secret_key": None, "iam_access_key": None, **given}


@pytest.mark.parametrize(
    ("given", "spec", "plan"),
    [
        (keys(api_key=V2_KEY), SPEC, ("v2", "bearer")),
        (keys(api_key=V2_KEY, secret_key=APP_SK), SPEC, ("v2", "bearer")),
        (keys(api_key=IAM_AK, secret_key=IAM_SK), SPEC, ("v2", "iam")),
        (keys(api_key=HEX_AK, secret_key=IAM_SK), SPEC, ("v2", "iam")),
        (keys(api_key=ODD_AK, secret_key=IAM_SK), SPEC, ("v2", "iam")),
        (keys(iam_access_key=IAM_AK, iam_secret_key=IAM_SK), SPEC, ("v2", "iam")),
        (keys(iam_access_key=ODD_AK, iam_secret_key=IAM_SK), SPEC, ("v2", "iam")),
        (
            keys(api_key=APP_AK, secret_key=APP_SK, iam_access_key=IAM_AK, iam_secret_key=IAM_SK),
            SPEC,
            ("v2", "iam"),
        ),
        (keys(api_key=APP_AK, secret_key=APP_SK), SPEC_V1, ("v1", "app")),
        (keys(api_key=ODD_AK, secret_key=APP_SK), SPEC_V1, ("v1", "app")),
        (keys(api_key=IAM_AK, secret_key=IAM_SK), SPEC_V1, ("v1", "iam")),
        (keys(iam_access_key=IAM_AK, iam_secret_key=IAM_SK), SPEC_V1, ("v1", "iam")),
    ],
)
def test_plan_keys(given: dict[str, Any], spec: Any, plan: tuple[str, str]) -> None:
    result = plan_keys("qianfan", spec, given)
    assert (result.api, result.kind) == plan
    if result.kind == "iam" and given.get("api_key") == ODD_AK and result.api == "v2":
        assert "taken as IAM account keys" in (result.assumed or "")
    for secret in (IAM_SK, APP_SK, IAM_AK, APP_AK):
        assert secret not in repr(result)


def test_the_keys_of_an_iam_plan_are_the_iam_pair_when_application_keys_are_also_set() -> None:
    given = keys(api_key=APP_AK, secret_key=APP_SK, iam_access_key=IAM_AK, iam_secret_key=IAM_SK)
    plan = plan_keys("qianfan", SPEC, given)
    assert (plan.key, plan.secret) == (IAM_AK, IAM_SK)


# ----------------------------------------------------------------------------- v1 closed


@pytest.mark.parametrize("source", KEY_SOURCES)
def test_application_keys_without_the_v1_opt_in_fail_before_any_request(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeQianfanV2()
    with pytest.raises(OpenAIError) as info:
        client(fake, **keys_from(source, monkeypatch, "qianfan", APP_AK, APP_SK))
    message = str(info.value)
    assert "2026-08-31" in message and "v1" in message
    assert "bce-v3/" in message and "API Key" in message  # how to get a v2 key
    assert "QIANFAN_ACCESS_KEY" in message  # or IAM keys
    assert 'api = "v1"' in message  # the opt-in for a private deployment
    assert APP_AK not in message and APP_SK not in message
    assert fake.requests == []


def test_application_keys_with_the_v1_opt_in_still_speak_v1() -> None:
    fake = FakeQianfan(APP_AK, APP_SK)
    c = client(
        fake,
        api_key=APP_AK,
        secret_key=APP_SK,
        config={"providers": {"qianfan": {"api": "v1"}}},
    )
    result = ask(c, model="ernie-3.5-8k")
    assert result.choices[0].message.content.endswith("You said: 你好")
    assert fake.token_requests == 1
    (chat,) = [r for r in fake.requests if "/wenxinworkshop/chat/" in r.url.path]
    assert chat.url.host == "aip.baidubce.com"


def test_a_v2_key_with_the_v1_opt_in_is_refused_at_construction() -> None:
    with pytest.raises(OpenAIError, match="v2 only"):
        client(FakeQianfanV2(), api_key=V2_KEY, config={"providers": {"qianfan": {"api": "v1"}}})


def test_application_keys_and_iam_keys_together_reach_v2_with_the_iam_keys(
    iam_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QIANFAN_AK", APP_AK)
    monkeypatch.setenv("QIANFAN_SK", APP_SK)
    fake = iam_fake()
    assert ask(client(fake)).choices[0].finish_reason == "stop"
    assert len(tokens(fake)) == 1


# ----------------------------------------------------------------------------- minting


def baidu_reference(request: httpx.Request, signed: list[str], epoch: int) -> str:
    """The Authorization Baidu's own ``bce_v1_signer.sign`` computes for ``request``."""
    headers = {k: v for k, v in request.headers.items() if k != "authorization"}
    result = bce_v1_signer.sign(
        BceCredentials(IAM_AK, IAM_SK),
        request.method.encode(),
        bce_utils.normalize_string(request.url.path, False),
        {k.encode(): v.encode() for k, v in headers.items()},
        {k.encode(): v.encode() for k, v in request.url.params.multi_items()},
        timestamp=epoch,
        expiration_in_seconds=300,
        headers_to_sign={name.encode() for name in signed},
    )
    return result.decode("ascii")


@pytest.mark.parametrize("source", ["environment", "arguments", "hex-arguments", "config"])
def test_iam_keys_mint_a_bearer_token_then_chat_on_v2(
    source: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    access = HEX_AK if source == "hex-arguments" else IAM_AK
    fake = FakeQianfanV2(access_key=access, secret_key=IAM_SK)
    options: dict[str, Any] = {}
    if source == "environment":
        monkeypatch.setenv("QIANFAN_ACCESS_KEY", access)
        monkeypatch.setenv("QIANFAN_SECRET_KEY", IAM_SK)
    elif source == "config":
        iam = {"iam_access_key": access, "iam_secret_key": IAM_SK}
        options = {"config": {"providers": {"qianfan": iam}}}
    else:
        options = {"api_key": access, "secret_key": IAM_SK}
    c = client(fake, **options)
    result = ask(c)
    assert result.choices[0].message.content.endswith("You said: 你好")
    (token_request,) = tokens(fake)
    assert token_request.method == "GET"
    assert f"{token_request.url.scheme}://{token_request.url.host}{token_request.url.path}" == (
        SPEC.iam_token_url
    )
    assert token_request.url.params["expireInSeconds"] == "43200"
    assert token_request.headers["authorization"].startswith(f"bce-auth-v1/{access}/")
    (chat,) = chats(fake)
    assert str(chat.url) == f"{V2}/chat/completions"
    assert chat.headers["authorization"] == f"Bearer {fake.issued_tokens[0]}"
    assert fake.issued_tokens[0].startswith("bce-v3/")


def test_the_token_request_is_signed_as_baidus_own_signer_signs_it(iam_env: None) -> None:
    fake = iam_fake()
    c = client(fake)
    clock = Clock(NOW + 0.4)
    use_clock(c, clock)
    fake.clock = clock
    ask(c)
    (request,) = tokens(fake)
    auth = request.headers["authorization"]
    prefix, signature = auth.rsplit("/", 1)
    signed = prefix.split("/")[4].split(";")
    assert signed == ["host", "x-bce-date"]
    assert request.headers["x-bce-date"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW))
    assert signature == baidu_reference(request, signed, int(NOW)).rsplit("/", 1)[1]


def test_a_wrong_secret_is_refused_by_iam_naming_the_kind_of_keys_without_showing_them() -> None:
    fake = iam_fake()
    c = client(fake, api_key=ODD_AK, secret_key="not-the-secret-key-0123")
    with pytest.raises(AuthenticationError) as info:
        ask(c)
    message = str(info.value)
    assert "IAM" in message and "taken as IAM account keys" in message
    assert "bce-v3/" in message  # how to get a v2 key instead
    assert "not-the-secret-key-0123" not in message
    assert info.value.status_code == 401
    assert chats(fake) == []  # nothing was sent with a token that does not exist
    assert len(tokens(fake)) == 1  # an auth error is not retried


def test_a_tampered_signature_is_refused_by_the_fake_as_iam_refuses_it(iam_env: None) -> None:
    fake = iam_fake()
    original = fake.handler

    def tamper(request: httpx.Request) -> httpx.Response:
        if request.url.host == IAM_HOST:
            auth = request.headers["authorization"]
            request.headers["authorization"] = auth[:-1] + ("1" if auth.endswith("0") else "0")
        return original(request)

    with pytest.raises(AuthenticationError, match="SignatureDoesNotMatch"):
        ask(client(httpx.MockTransport(tamper)))


def test_iam_throttling_is_a_rate_limit_not_a_refusal_of_the_keys(iam_env: None) -> None:
    """A 429 from the token endpoint was an ``AuthenticationError`` (401) telling the
    caller to make new keys; callers back off on ``RateLimitError``."""
    fake = iam_fake()
    original = fake.handler
    throttled = {"code": "RequestRateLimitExceeded", "message": "too many requests"}

    def throttle(request: httpx.Request) -> httpx.Response:
        if request.url.host == IAM_HOST:
            return httpx.Response(429, json=throttled)
        return original(request)

    with pytest.raises(llm_bridge.RateLimitError) as info:
        ask(client(httpx.MockTransport(throttle), max_retries=0))
    assert info.value.status_code == 429 and "bce-v3/" not in str(info.value)


def test_the_token_request_asks_only_for_encodings_the_engine_reads(iam_env: None) -> None:
    """An HTTP library's default (aiohttp's with Brotli installed) offered br, which the
    engine refuses to read."""
    fake = iam_fake()
    ask(client(fake))
    (token,) = tokens(fake)
    assert token.headers["accept-encoding"] == "gzip, deflate"
    assert token.extensions["timeout"]["read"] is not None  # (and held to the call's timeout)


def test_a_stale_signature_is_refused(iam_env: None) -> None:
    fake = iam_fake(clock=Clock(NOW + 3600))  # IAM's clock is an hour ahead of ours
    c = client(fake)
    use_clock(c, Clock(NOW))
    with pytest.raises(AuthenticationError, match="RequestExpired"):
        ask(c)


def slow_iam(fake: FakeQianfanV2, delay: float = 0.05) -> Callable[..., httpx.Response]:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == IAM_HOST:
            time.sleep(delay)
        return fake.handler(request)

    return handler


def test_twenty_threads_at_cold_start_mint_one_token(iam_env: None) -> None:
    fake = iam_fake()
    c = client(httpx.MockTransport(slow_iam(fake)))
    barrier = threading.Barrier(CONCURRENCY)

    def call(_: int) -> Any:
        barrier.wait()
        return ask(c)

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(call, range(CONCURRENCY)))
    assert len(results) == CONCURRENCY
    assert len(tokens(fake)) == 1
    assert len(chats(fake)) == CONCURRENCY
    assert {r.headers["authorization"] for r in chats(fake)} == {f"Bearer {fake.issued_tokens[0]}"}


def test_twenty_threads_on_twenty_clients_share_one_token(iam_env: None) -> None:
    fake = iam_fake()
    clients = [client(httpx.MockTransport(slow_iam(fake))) for _ in range(CONCURRENCY)]
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        list(pool.map(ask, clients))
    assert len(tokens(fake)) == 1


async def test_twenty_tasks_at_cold_start_mint_one_token(iam_env: None) -> None:
    fake = iam_fake()

    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.02 if request.url.host == IAM_HOST else 0)
        return fake.handler(request)

    c = aclient(httpx.MockTransport(handler))
    results = await asyncio.gather(
        *(c.chat.completions.create(model=MODEL, messages=HELLO) for _ in range(CONCURRENCY))
    )
    assert len(results) == CONCURRENCY
    assert len(tokens(fake)) == 1


def test_the_token_is_renewed_once_on_401_and_the_request_sent_again(iam_env: None) -> None:
    fake = iam_fake()
    c = client(fake)
    ask(c)
    fake.expire_tokens()  # IAM revoked it (or it lapsed early): v2 answers 401
    result = ask(c)
    assert result.choices[0].message.content
    assert len(tokens(fake)) == 2
    first, second, third = chats(fake)
    assert second.headers["authorization"] == first.headers["authorization"]
    assert third.headers["authorization"] == f"Bearer {fake.issued_tokens[1]}"
    assert result._request_id is not None


def test_a_fresh_token_refused_again_raises_after_one_renewal(iam_env: None) -> None:
    fake = iam_fake()
    c = client(fake, max_retries=5)
    ask(c)
    fake.expire_tokens()
    fake.fail("auth").fail("auth").fail("auth")  # the renewed token is refused too
    with pytest.raises(AuthenticationError) as info:
        ask(c)
    assert info.value.provider_code == "invalid_iam_token"
    assert len(tokens(fake)) == 2  # renewed once, not in a loop
    assert len(chats(fake)) == 3


def test_expiry_is_honoured_by_the_injected_clock(iam_env: None) -> None:
    clock = Clock(NOW)
    fake = iam_fake(clock=clock)
    c = client(fake)
    use_clock(c, clock)
    ask(c)
    assert len(tokens(fake)) == 1
    # The token lives 43200 s (IAM's createTime..expireTime); it is renewed 600 s early.
    clock.now += 43200 - 601
    ask(c)
    assert len(tokens(fake)) == 1
    clock.now += 2
    ask(c)
    assert len(tokens(fake)) == 2  # renewed before it lapsed: no 401 was needed
    assert [r.headers["authorization"] for r in chats(fake)][-1] == (
        f"Bearer {fake.issued_tokens[1]}"
    )


def test_a_short_lived_token_is_renewed_by_its_own_lifetime() -> None:
    clock = Clock(NOW)
    fake = iam_fake(clock=clock)
    credentials = QianfanIamToken(
        IAM_AK, IAM_SK, iam_token_url=SPEC.iam_token_url or "", expire_seconds=600, clock=clock
    )
    request = credentials.token_request()
    assert request is not None and request.url.params["expireInSeconds"] == "600"
    credentials.accept_token(fake.handler(request))
    assert credentials.token_request() is None
    clock.now += 600 - 60  # a tenth of the lifetime to spare
    assert credentials.token_request() is not None


def test_secrets_stay_out_of_reprs_logs_and_errors(
    iam_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    fake = iam_fake()
    c = client(fake)
    with caplog.at_level(logging.DEBUG, logger="llm_bridge"):
        ask(c)
        fake.fail("auth", message=f"IAM Certification failed for {IAM_AK}")
        fake.fail("auth")
        with pytest.raises(AuthenticationError) as info:
            ask(c)
    token = fake.issued_tokens[-1]
    credentials = credentials_of(c)
    texts = [repr(credentials), str(info.value), repr(info.value), caplog.text]
    for text in texts:
        for secret in (IAM_SK, IAM_AK, token, token.split("/")[2]):
            assert secret not in text
    assert "QianfanIamToken" in repr(credentials)


# ----------------------------------------------------------------------------- front doors


def test_plain_openai_client_through_http_client_mints_and_chats(iam_env: None) -> None:
    fake = iam_fake()
    bridge = llm_bridge.http_client(http_client=upstream(fake))
    plain = openai.OpenAI(api_key="unused", base_url=V2, http_client=bridge)
    result = plain.chat.completions.create(model=MODEL, messages=HELLO)
    assert result.choices[0].message.content.endswith("You said: 你好")
    assert len(tokens(fake)) == 1
    assert chats(fake)[0].headers["authorization"].startswith("Bearer bce-v3/")


def test_plain_openai_client_with_a_bce_v3_key() -> None:
    fake = FakeQianfanV2(V2_KEY)
    bridge = llm_bridge.http_client(http_client=upstream(fake))
    plain = openai.OpenAI(api_key=V2_KEY, base_url=V2, http_client=bridge)
    assert plain.chat.completions.create(model=MODEL, messages=HELLO).choices
    assert chats(fake)[0].headers["authorization"] == f"Bearer {V2_KEY}"


def test_embeddings_on_v2_with_iam_keys(iam_env: None) -> None:
    fake = iam_fake()
    result = client(fake).embeddings.create(model="embedding-v1", input=["你好", "世界"])
    assert [d.index for d in result.data] == [0, 1]
    assert len(result.data[0].embedding) == 1024
    (request,) = [r for r in fake.requests if r.url.path == "/v2/embeddings"]
    assert request.headers["authorization"] == f"Bearer {fake.issued_tokens[0]}"
    assert fake.last_json["model"] == "embedding-v1"


def test_a_401_on_v2_with_keys_of_an_ambiguous_form_says_they_were_taken_as_iam_keys() -> None:
    fake = FakeQianfanV2(access_key=ODD_AK, secret_key=IAM_SK)
    c = client(fake, api_key=ODD_AK, secret_key=IAM_SK)
    ask(c)
    fake.fail("auth").fail("auth")
    with pytest.raises(AuthenticationError) as info:
        ask(c)
    assert "taken as IAM account keys" in str(info.value)
    assert len(tokens(fake)) == 2  # renewed once first
    clear = client(FakeQianfanV2(V2_KEY).fail("auth"), api_key=V2_KEY)
    with pytest.raises(AuthenticationError) as plain:
        ask(clear)
    assert "taken as IAM" not in str(plain.value)


def test_an_ambiguous_key_from_qianfan_ak_is_taken_as_an_application_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # QIANFAN_AK/QIANFAN_SK hold an application's keys, whatever they look like.
    monkeypatch.setenv("QIANFAN_AK", ODD_AK)
    monkeypatch.setenv("QIANFAN_SK", APP_SK)
    fake = FakeQianfanV2()
    with pytest.raises(OpenAIError, match="2026-08-31"):
        client(fake)
    assert fake.requests == []


def test_the_same_ambiguous_key_as_an_argument_is_taken_as_an_iam_key() -> None:
    given = keys(api_key=ODD_AK, secret_key=APP_SK, api_key_from="argument")
    plan = plan_keys("qianfan", SPEC, given)
    assert (plan.api, plan.kind) == ("v2", "iam") and "taken as IAM" in (plan.assumed or "")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_token_endpoint_that_never_answers_ends_at_the_calls_timeout(mode: str) -> None:
    """The IAM token request was sent with no timeout at all (on llm-bridge's own client):
    a token endpoint that accepted the connection and never answered held the call, and
    every call waiting for the same token, for ever."""
    from helpers import loopback_server

    access, secret = "ALTAKq7Hn2mVx9LpR4tWc8Ye", "5f0c7a9e1b2d4c6e8f0a1b3c5d7e9f1a"
    for url in loopback_server(lambda conn, stop: stop.wait(30)):
        root = url.split("/api/")[0]
        config = {"providers": {"qianfan": {"iam_token_url": f"{root}/v1/BCE-BEARER/token"}}}
        options: dict[str, Any] = dict(
            provider="qianfan", api_key=access, secret_key=secret, config=config,
            timeout=1.0, max_retries=0,
        )  # fmt: skip
        started = time.monotonic()
        with pytest.raises(llm_bridge.APITimeoutError):
            if mode == "sync":
                OpenAI(**options).chat.completions.create(
                    model="ernie-4.5-turbo-128k", messages=HELLO
                )
            else:
                asyncio.run(
                    asyncio.wait_for(
                        AsyncOpenAI(**options).chat.completions.create(
                            model="ernie-4.5-turbo-128k", messages=HELLO
                        ),
                        20,
                    )
                )
        assert time.monotonic() - started < 10  # (it never ended)
