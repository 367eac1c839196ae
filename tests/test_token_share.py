"""Provider tokens shared by a gateway's replicas (issue 16): one Qianfan token request for
the fleet.

Replicas are simulated in one process by giving each its own `QianfanIamToken` (the
process-wide registry is emptied between them, as if they were separate processes); the
fake's IAM endpoint counts the mints. First with an in-memory `TokenShare` double (the
algorithm: adopt, single flight, the rejected token, failures), then two `GatewayApp`s on
a real redis-server with `RedisTokenShare`. Each sharing test has a control that shows the
count it checks would differ without the share.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any, Optional

import httpx
import pytest
from redis_server import RedisServer
from test_gateway_app import AUTH, KEY, gateway

from llm_bridge import AsyncOpenAI, AuthenticationError, _auth, _token_share
from llm_bridge._auth import QianfanAccessToken, QianfanIamToken, SharedToken, token_share_key
from llm_bridge._config import builtin_providers
from llm_bridge._token_share import ADOPTED, LOCAL, MINTED, obtain_token
from llm_bridge.gateway import GatewayApp, hash_key
from llm_bridge.gateway._redis_tokens import RedisTokenShare, open_token_share
from llm_bridge.testing import FakeQianfanV2
from llm_bridge.testing.qianfan import IAM_HOST

IAM_AK = "ALTAKs7Ke2mTx4LpQ8tWd3Yf"
IAM_SK = "9e1b2d4c6e8f0a1b3c5d7e9f1a5f0c7a"
IAM_URL = builtin_providers()["qianfan"].iam_token_url or ""
MODEL = "ernie-4.5-turbo-128k"
HELLO: list[Any] = [{"role": "user", "content": "你好"}]
REQUESTS = 20  # concurrent requests per replica


def iam_fake() -> FakeQianfanV2:
    return FakeQianfanV2(access_key=IAM_AK, secret_key=IAM_SK)


def slow_iam(fake: FakeQianfanV2, delay: float = 0.05) -> httpx.MockTransport:
    """The fake, with an IAM endpoint slow enough that every replica is waiting while
    the first mints."""

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == IAM_HOST:
            await asyncio.sleep(delay)
        return fake.handler(request)

    return httpx.MockTransport(handler)


def chats(fake: FakeQianfanV2) -> list[httpx.Request]:
    return [r for r in fake.requests if r.url.path == "/v2/chat/completions"]


def new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget this process's shared credentials, so the next replica has its own."""
    monkeypatch.setattr(_auth, "_SHARED_TOKENS", {})


class MemoryShare:
    """An in-memory `TokenShare` with the semantics of the Redis one (expiry, a lock with
    an owner and a lifetime), counting calls; it can be made to fail or to hang."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[SharedToken, float]] = {}
        self.locks: dict[str, tuple[str, float]] = {}
        self.calls: list[str] = []
        self.fail = False
        self.hang = False

    async def _call(self, name: str) -> None:
        self.calls.append(name)
        await asyncio.sleep(0)  # a round trip: other tasks run
        if self.fail:
            raise ConnectionError("Error 111 connecting to redis://:hunter2@share:6379")
        if self.hang:
            await asyncio.sleep(3600)

    async def get(self, key: str) -> Optional[SharedToken]:
        await self._call("get")
        entry = self.values.get(key)
        return entry[0] if entry is not None and entry[1] > time.monotonic() else None

    async def put(self, key: str, token: SharedToken, ttl: float) -> None:
        await self._call("put")
        self.values[key] = (token, time.monotonic() + ttl)

    async def acquire(self, key: str, ttl: float) -> Optional[str]:
        await self._call("acquire")
        held = self.locks.get(key)
        if held is not None and held[1] > time.monotonic():
            return None
        owner = secrets.token_hex(8)
        self.locks[key] = (owner, time.monotonic() + ttl)
        return owner

    async def release(self, key: str, owner: str) -> None:
        await self._call("release")
        if self.locks.get(key, ("", 0.0))[0] == owner:
            del self.locks[key]


def replica(
    monkeypatch: pytest.MonkeyPatch, transport: httpx.AsyncBaseTransport, share: Any
) -> AsyncOpenAI:
    """One replica: a client with its own credentials (a process of its own) and ``share``."""
    new_process(monkeypatch)
    client = AsyncOpenAI(
        provider="qianfan",
        api_key=IAM_AK,
        secret_key=IAM_SK,
        http_client=httpx.AsyncClient(transport=transport),
    )
    client._engine.token_share = share
    return client


def credentials_of(client: AsyncOpenAI) -> QianfanIamToken:
    credentials = client._engine.adapter("qianfan").credentials
    assert isinstance(credentials, QianfanIamToken)
    return credentials


async def ask_all(*clients: AsyncOpenAI, each: int = REQUESTS) -> list[Any]:
    return await asyncio.gather(
        *(c.chat.completions.create(model=MODEL, messages=HELLO) for c in clients * each)
    )


# --------------------------------------------------------------------------- credentials


def test_the_share_key_is_a_digest_of_the_endpoint_and_keys_never_the_keys() -> None:
    one = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    same = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    assert one.share_key == same.share_key == token_share_key("iam", IAM_URL, IAM_AK, IAM_SK)
    assert len(one.share_key) == 64 and int(one.share_key, 16) >= 0
    for secret in (IAM_AK, IAM_SK, IAM_AK.lower(), IAM_SK[:8]):
        assert secret not in one.share_key
    others = {
        QianfanIamToken(IAM_AK, IAM_SK[::-1], iam_token_url=IAM_URL).share_key,
        QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL + "x").share_key,
        QianfanAccessToken(IAM_AK, IAM_SK, token_url=IAM_URL).share_key,  # another kind
    }
    assert one.share_key not in others and len(others) == 3


def test_export_and_adopt_hand_a_token_to_another_replica_without_showing_it() -> None:
    fake = iam_fake()
    one = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    two = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    assert one.export() is None  # nothing fetched yet
    request = one.token_request()
    assert request is not None
    one.accept_token(fake.handler(request))
    shared = one.export()
    assert shared is not None and shared.token == fake.issued_tokens[0]
    assert time.time() + 43200 - 601 < shared.renew_at < time.time() + 43200  # Unix seconds
    assert fake.issued_tokens[0] not in repr(shared) and "SharedToken" in repr(shared)

    assert two.adopt(shared.token, shared.renew_at)
    assert two.token_request() is None and (two.fetches, two.adoptions) == (0, 1)
    sent = httpx.Request("POST", "https://qianfan.baidubce.com/v2/chat/completions")
    two.sign(sent)
    assert sent.headers["authorization"] == f"Bearer {fake.issued_tokens[0]}"

    assert not QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL).adopt(
        shared.token, time.time() - 1
    )  # stale by this replica's clock

    # The provider refused it to `two`: never adopted again, and not handed on either.
    assert two.invalidate(sent)
    assert two.token_request() is not None
    assert not two.adopt(shared.token, shared.renew_at)
    assert two.export() is None
    # A token the endpoint hands out afresh is kept, even one refused before.
    renewal = two.token_request()
    assert renewal is not None
    two.accept_token(fake.handler(renewal))
    assert two.export() is not None and two.fetches == 1


# --------------------------------------------------------------------------- the algorithm


async def test_two_replicas_with_a_share_mint_one_token_between_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = iam_fake()
    share = MemoryShare()
    one = replica(monkeypatch, slow_iam(fake), share)
    two = replica(monkeypatch, slow_iam(fake), share)
    assert credentials_of(one) is not credentials_of(two)
    results = await ask_all(one, two)
    assert len(results) == 2 * REQUESTS
    assert fake.token_requests == 1
    assert {r.headers["authorization"] for r in chats(fake)} == {f"Bearer {fake.issued_tokens[0]}"}
    assert credentials_of(one).fetches + credentials_of(two).fetches == 1
    assert credentials_of(one).adoptions + credentials_of(two).adoptions == 1
    assert share.locks == {}  # released
    # Once the token is held, requests never ask the share.
    calls = len(share.calls)
    await ask_all(one, two, each=3)
    assert len(share.calls) == calls


async def test_control_without_a_share_each_replica_mints(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = iam_fake()
    one = replica(monkeypatch, slow_iam(fake), None)
    two = replica(monkeypatch, slow_iam(fake), None)
    await ask_all(one, two)
    assert fake.token_requests == 2


async def test_a_rejected_token_is_replaced_once_and_the_other_replica_adopts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = iam_fake()
    share = MemoryShare()
    one = replica(monkeypatch, fake.transport(), share)
    two = replica(monkeypatch, fake.transport(), share)
    await ask_all(one, each=1)
    await ask_all(two, each=1)
    assert fake.token_requests == 1
    assert (credentials_of(one).fetches, credentials_of(two).adoptions) == (1, 1)
    fake.expire_tokens()  # IAM no longer accepts it: 401 invalid_iam_token
    await ask_all(two, each=1)
    assert fake.token_requests == 2  # `two` did not re-adopt the refused token
    assert credentials_of(two).fetches == 1
    await ask_all(one, each=3)
    assert fake.token_requests == 2  # `one` adopted the new one
    assert (credentials_of(one).fetches, credentials_of(one).adoptions) == (1, 1)
    assert chats(fake)[-1].headers["authorization"] == f"Bearer {fake.issued_tokens[1]}"


async def test_a_failing_share_means_a_local_mint_and_one_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fake = iam_fake()
    share = MemoryShare()
    share.fail = True
    client = replica(monkeypatch, fake.transport(), share)
    with caplog.at_level(logging.DEBUG, logger="llm_bridge"):
        await ask_all(client, each=5)
        assert fake.token_requests == 1
        fake.expire_tokens()
        await ask_all(client, each=2)
    assert fake.token_requests == 2
    warnings = [r for r in caplog.records if "token share is unavailable" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING
    assert "ConnectionError" in warnings[0].getMessage()
    assert "hunter2" not in caplog.text and "share:6379" not in caplog.text
    # Answering again is said once; the next outage is warned about again.
    share.fail = False
    fake.expire_tokens()
    with caplog.at_level(logging.DEBUG, logger="llm_bridge"):
        await ask_all(client, each=1)
    assert "token share answers again" in caplog.text
    assert fake.token_requests == 3


async def test_a_hanging_share_is_given_up_on_within_the_call_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_token_share, "CALL_TIMEOUT", 0.05)
    fake = iam_fake()
    share = MemoryShare()
    share.hang = True
    client = replica(monkeypatch, fake.transport(), share)
    started = time.monotonic()
    await ask_all(client, each=3)
    assert time.monotonic() - started < 2.0
    assert fake.token_requests == 1


async def test_a_lock_whose_holder_never_puts_a_token_is_waited_on_within_bounds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = iam_fake()
    share = MemoryShare()

    def minter(credentials: QianfanIamToken) -> Any:
        async def mint() -> None:
            request = credentials.token_request()
            assert request is not None
            credentials.accept_token(fake.handler(request))

        return mint

    # A replica died holding the lock (it lapses after 0.3 s): the waiter takes it over.
    waiter = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    await share.acquire(waiter.share_key, 0.3)
    started = time.monotonic()
    assert await obtain_token(share, waiter, minter(waiter), wait=5.0) == MINTED
    assert 0.25 < time.monotonic() - started < 2.0
    assert (await share.get(waiter.share_key)) is not None
    # A holder that keeps the lock past the wait: the waiter mints without the share.
    stuck = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    share.values.clear()
    await share.acquire(stuck.share_key, 60.0)
    started = time.monotonic()
    assert await obtain_token(share, stuck, minter(stuck), wait=0.3) == LOCAL
    assert time.monotonic() - started < 1.0
    assert stuck.token_request() is None and fake.token_requests == 2


async def test_a_waiter_adopts_the_token_the_holder_puts() -> None:
    fake = iam_fake()
    share = MemoryShare()
    holder = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    waiter = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    release = asyncio.Event()

    async def slow_mint() -> None:
        await release.wait()
        request = holder.token_request()
        assert request is not None
        holder.accept_token(fake.handler(request))

    async def never() -> None:
        raise AssertionError("the waiter must not mint")

    holding = asyncio.ensure_future(obtain_token(share, holder, slow_mint))
    await asyncio.sleep(0.01)
    waiting = asyncio.ensure_future(obtain_token(share, waiter, never))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    release.set()
    assert await holding == MINTED and await waiting == ADOPTED
    assert waiter.export() is not None and fake.token_requests == 1


async def test_a_failed_mint_is_the_callers_error_and_frees_the_lock() -> None:
    share = MemoryShare()
    credentials = QianfanIamToken(IAM_AK, IAM_SK, iam_token_url=IAM_URL)
    refusing = FakeQianfanV2(access_key=IAM_AK, secret_key="not-the-secret-key-0000000000")

    async def mint() -> None:
        request = credentials.token_request()
        assert request is not None
        response = refusing.handler(request)
        response.request = request  # as a client would have it
        credentials.accept_token(response)

    with pytest.raises(AuthenticationError):
        await obtain_token(share, credentials, mint)
    assert share.locks == {} and share.values == {}


# --------------------------------------------------------------------------- Redis, gateway


@pytest.fixture
def redis(tmp_path: Path) -> Any:
    with RedisServer(tmp_path / "redis").start() as server:
        yield server


def settings(state: str) -> dict[str, Any]:
    return {
        "providers": {"qianfan": {"iam_access_key": IAM_AK, "iam_secret_key": IAM_SK}},
        "models": {"fast": f"qianfan/{MODEL}"},
        "gateway": {
            "state": state,
            "ledger": "none",
            "keys": {"team": {"key_sha256": hash_key(KEY), "models": ["fast"]}},
        },
    }


@asynccontextmanager
async def replicas(
    monkeypatch: pytest.MonkeyPatch, state: str, upstream: httpx.AsyncBaseTransport, count: int = 2
) -> AsyncIterator[list[tuple[GatewayApp, httpx.AsyncClient]]]:
    """``count`` gateway apps on one state URL, each with credentials of its own and its
    engine's token share (set here while `GatewayApp` does not wire one itself)."""
    owned: list[RedisTokenShare] = []
    async with AsyncExitStack() as stack:
        apps = []
        for _ in range(count):
            new_process(monkeypatch)
            app, client = await stack.enter_async_context(gateway(settings(state), upstream))
            engine = app.engines.engine
            engine.adapter("qianfan")  # its credentials, before the next replica's
            if engine.token_share is None:
                share = open_token_share(app.gateway)
                assert share is not None
                owned.append(share)
                engine.token_share = share
            apps.append((app, client))
        try:
            yield apps
        finally:
            for share in owned:
                await share.close()


async def ask(client: httpx.AsyncClient) -> int:
    response = await client.post(
        "/v1/chat/completions", headers=AUTH, json={"model": "fast", "messages": HELLO}
    )
    return response.status_code


async def stored_token(share: RedisTokenShare, key: str) -> Any:
    """The JSON under the token key, as Redis holds it."""
    client: Any = share.client
    return json.loads(await client.get(share.token_key(key)))


def gateway_credentials(app: GatewayApp) -> QianfanIamToken:
    credentials = app.engines.engine.adapter("qianfan").credentials
    assert isinstance(credentials, QianfanIamToken)
    return credentials


async def test_two_gateways_on_one_redis_mint_one_token(
    monkeypatch: pytest.MonkeyPatch, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    fake = iam_fake()
    with caplog.at_level(logging.DEBUG, logger="llm_bridge"):
        async with replicas(monkeypatch, redis.url, slow_iam(fake)) as apps:
            (one, c1), (two, c2) = apps
            assert gateway_credentials(one) is not gateway_credentials(two)
            statuses = await asyncio.gather(*(ask(c) for c in [c1, c2] * REQUESTS))
            assert statuses == [200] * 2 * REQUESTS
            assert fake.token_requests == 1
            share = one.engines.engine.token_share
            assert isinstance(share, RedisTokenShare)
            key = gateway_credentials(one).share_key
            stored = await stored_token(share, key)
            assert stored["token"] == fake.issued_tokens[0]
            client: Any = share.client
            ttl_ms = await client.pttl(share.token_key(key))
            assert 0 < stored["renew_at"] - time.time() <= 43200
            assert 0 < ttl_ms <= (stored["renew_at"] - time.time() + 1) * 1000
            assert await client.exists(share.lock_key(key)) == 0  # released
            names = await client.keys("*")
    assert {n for n in names if ":token:" in n} == {share.token_key(key)}
    for secret in (IAM_AK, IAM_SK, fake.issued_tokens[0], *fake.issued_tokens[0].split("/")):
        assert all(secret not in name for name in names)
    # The token never reaches a log, nor a repr.
    texts = [caplog.text, repr(share), repr(gateway_credentials(one)), repr(one.gateway)]
    token = fake.issued_tokens[0]
    for text in texts:
        for secret in (IAM_AK, IAM_SK, token, token.split("/")[2]):
            assert secret not in text
    assert "token share" in caplog.text  # the debug line naming how the token came


async def test_control_two_gateways_without_redis_state_mint_two(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = iam_fake()
    async with AsyncExitStack() as stack:
        clients = []
        for _ in range(2):
            new_process(monkeypatch)
            app, client = await stack.enter_async_context(
                gateway(settings("memory"), slow_iam(fake))
            )
            app.engines.engine.adapter("qianfan")
            assert open_token_share(app.gateway) is None
            clients.append(client)
        await asyncio.gather(*(ask(c) for c in clients * REQUESTS))
    assert fake.token_requests == 2


async def test_a_401_on_one_gateway_is_one_new_mint_the_other_adopts(
    monkeypatch: pytest.MonkeyPatch, redis: RedisServer
) -> None:
    fake = iam_fake()
    async with replicas(monkeypatch, redis.url, fake.transport()) as apps:
        (one, c1), (two, c2) = apps
        assert await ask(c1) == 200 and await ask(c2) == 200
        assert fake.token_requests == 1
        fake.expire_tokens()  # IAM revoked the token: 401 invalid_iam_token
        assert await ask(c2) == 200
        assert fake.token_requests == 2
        share = two.engines.engine.token_share
        assert isinstance(share, RedisTokenShare)
        stored = await stored_token(share, gateway_credentials(two).share_key)
        assert stored["token"] == fake.issued_tokens[1]  # the refused one was overwritten
        statuses = await asyncio.gather(*(ask(c1) for _ in range(5)))
        assert statuses == [200] * 5
        assert fake.token_requests == 2  # adopted, not minted
        assert gateway_credentials(one).token_request() is None
        assert chats(fake)[-1].headers["authorization"] == f"Bearer {fake.issued_tokens[1]}"


async def test_with_redis_down_each_gateway_mints_its_own_and_serves(
    monkeypatch: pytest.MonkeyPatch, redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    redis.stop(kill=True)
    fake = iam_fake()
    with caplog.at_level(logging.DEBUG, logger="llm_bridge"):
        async with replicas(monkeypatch, redis.url, fake.transport()) as apps:
            (_, c1), (_, c2) = apps
            statuses = await asyncio.gather(*(ask(c) for c in [c1, c2] * 5))
            assert statuses == [200] * 10
            assert fake.token_requests == 2  # one per replica, none per request
            fake.expire_tokens()
            assert await ask(c1) == 200 and await ask(c2) == 200
            assert fake.token_requests == 4
    warnings = [r for r in caplog.records if "token share is unavailable" in r.getMessage()]
    assert len(warnings) == 2  # once per replica, not once per fetch
    for token in fake.issued_tokens:
        assert token not in caplog.text
    assert str(redis.port) not in "".join(r.getMessage() for r in warnings)
