"""Secret hygiene (issue 6, "Secrets"): no key, secret, access token or JWT in any text.

One test drives every provider and credential kind through successes, streams, embeddings
and every kind of failure — including providers that echo the rejected credential back in
their error message — with the ``llm_bridge`` logger at DEBUG, and collects all the text
that could reach a log file, a terminal or a bug report: every log record (with its
traceback), every exception's ``str()``/``repr()``/traceback, the ``repr()``/``str()`` of
clients, configs, credentials, adapters and usage records. Then it scans that text for
every secret the suite used, including the JWTs signed and the access tokens issued along
the way, and lists each leak with where it appeared.

The smaller tests pin single places (config reprs, `ConfigError` messages, the Qianfan
token endpoint's refusal) so that a leak there is named by its own failing test.
"""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
import warnings
from collections.abc import Iterator
from typing import Any, Callable, Optional

import httpx
import pytest
from helpers import HELLO, text_of, upstream

from llm_bridge import APIError, AsyncOpenAI, ConfigError, OpenAI
from llm_bridge._config import load_config
from llm_bridge.testing import (
    FakeDashScope,
    FakeDashScopeCompatible,
    FakeQianfan,
    FakeQianfanV2,
    FakeZhipu,
)

# --------------------------------------------------------------------------- the secrets

ZHIPU_ID, ZHIPU_SECRET = "zhipuKeyIdLk71", "zhipuSecretHalfQ8vN3mT5"
ZHIPU_KEY = f"{ZHIPU_ID}.{ZHIPU_SECRET}"
JWT_ID, JWT_SECRET = "zhipuJwtIdLk72", "zhipuJwtSecretR4wX9pZ2"
JWT_KEY = f"{JWT_ID}.{JWT_SECRET}"
WRONG_ZHIPU_KEY = "zhipuWrongIdLk73.zhipuWrongSecretM2kP"
QF_AK, QF_SK = "qianfanAppKeyLk74Hq", "qianfanAppSecretLk75Wz"
QF_WRONG_SK = "qianfanWrongSecretLk76"
QF_IAM_AK, QF_IAM_SK = "ALTAKqianfanIamLk77", "qianfanIamSecretLk78Yv"
QF_V2_SECRET = "qianfanV2SecretLk79Tb"
#: v1 (shut down on the public cloud on 2026-08-31) is used only on request.
QF_V1 = {"providers": {"qianfan": {"api": "v1"}}}
QF_V2_KEY = f"bce-v3/ALTAK-lk80ab/{QF_V2_SECRET}"
DS_KEY = "sk-dashscopeNativeLk81"
DS_COMPAT_KEY = "sk-dashscopeCompatLk82"
OPENAI_KEY = "sk-openaiFallbackLk83"
FB_ZHIPU_KEY = "zhipuFallbackIdLk84.zhipuFallbackSecretLk85"
FB_DS_KEY = "sk-dashscopeFallbackLk86"
FB_QF_AK, FB_QF_SK = "qianfanFbAppKeyLk87", "qianfanFbSecretLk88"
CFG_QF_AK, CFG_QF_SK = "qianfanCfgAppKeyLk89", "qianfanCfgSecretLk90"

#: name -> value of every static secret; signed JWTs and issued tokens are added at run time.
SECRETS: dict[str, str] = {
    "zhipu api_key": ZHIPU_KEY,
    "zhipu secret half": ZHIPU_SECRET,
    "zhipu jwt-mode api_key": JWT_KEY,
    "zhipu jwt-mode secret half": JWT_SECRET,
    "wrong zhipu api_key": WRONG_ZHIPU_KEY,
    "wrong zhipu secret half": WRONG_ZHIPU_KEY.split(".")[1],
    "qianfan API Key": QF_AK,
    "qianfan Secret Key": QF_SK,
    "wrong qianfan Secret Key": QF_WRONG_SK,
    "qianfan IAM access key": QF_IAM_AK,
    "qianfan IAM secret key": QF_IAM_SK,
    "qianfan v2 key": QF_V2_KEY,
    "qianfan v2 key secret part": QF_V2_SECRET,
    "dashscope key": DS_KEY,
    "dashscope compatible key": DS_COMPAT_KEY,
    "openai key": OPENAI_KEY,
    "fallback zhipu key": FB_ZHIPU_KEY,
    "fallback zhipu secret half": FB_ZHIPU_KEY.split(".")[1],
    "fallback dashscope key": FB_DS_KEY,
    "fallback qianfan API Key": FB_QF_AK,
    "fallback qianfan Secret Key": FB_QF_SK,
    "config qianfan API Key": CFG_QF_AK,
    "config qianfan Secret Key": CFG_QF_SK,
}

SSE = {"Content-Type": "text/event-stream"}
JSON = {"Content-Type": "application/json"}


# --------------------------------------------------------------------------- collection


class Evidence(logging.Handler):
    """Every text the run produced, each with where it came from."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.texts: list[tuple[str, str]] = []
        self.errors: list[BaseException] = []
        self.warnings: list[warnings.WarningMessage] = []
        self.scenario = "setup"

    # logging.Handler
    def emit(self, record: logging.LogRecord) -> None:
        where = f"log record {record.levelname} during {self.scenario!r}"
        self.texts.append((where, self.format(record)))  # message and exc_info traceback
        self.texts.append((f"{where} (raw msg/args)", f"{record.msg!r} {record.args!r}"))

    def add(self, where: str, text: str) -> None:
        self.texts.append((f"{where} during {self.scenario!r}", text))

    def obj(self, where: str, value: Any) -> None:
        self.add(f"repr({where})", repr(value))
        self.add(f"str({where})", str(value))

    def error(self, error: BaseException) -> None:
        self.errors.append(error)
        name = type(error).__name__
        self.obj(name, error)
        self.add(f"traceback of {name}", "".join(traceback.format_exception(error)))
        seen: set[int] = set()
        link: Optional[BaseException] = error
        while link is not None and id(link) not in seen:
            seen.add(id(link))
            self.obj(f"{name} chain: {type(link).__name__}", link)
            link = link.__cause__ or link.__context__

    def run(self, scenario: str, action: Callable[[], Any]) -> Any:
        """Run one scenario step; its result and any exception become evidence."""
        self.scenario = scenario
        try:
            result = action()
        except Exception as error:  # every failure is evidence, none stops the run
            self.error(error)
            return error
        self.obj("result", result)
        return result

    def leaks(self, secrets: dict[str, str]) -> list[str]:
        texts = self.texts + [("a warning", str(w.message)) for w in self.warnings]
        found = []
        for name, secret in secrets.items():
            for where, text in texts:
                at = text.find(secret)
                if at >= 0:
                    context = text[max(0, at - 60) : at + len(secret) + 20].replace("\n", " ")
                    found.append(f"{name} ({secret[:6]}…) in {where}: …{context}…")
        return found


@pytest.fixture
def evidence(monkeypatch: pytest.MonkeyPatch) -> Iterator[Evidence]:
    """The ``llm_bridge`` logger at DEBUG (as ``LLM_BRIDGE_LOG=debug`` sets it), captured."""
    monkeypatch.setenv("LLM_BRIDGE_LOG", "debug")
    logger = logging.getLogger("llm_bridge")
    handler = Evidence()
    old_level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            handler.warnings = caught
            yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


# --------------------------------------------------------------------------- transports


class Echo:
    """Wraps a fake: the next ``times`` API requests are refused with a body that echoes
    the credential the request carried (bearer token, JWT, access token or signature)."""

    def __init__(self, fake: Any, render: Callable[[str], httpx.Response]) -> None:
        self.fake = fake
        self.render = render
        self.times = 0

    def arm(self, times: int) -> Echo:
        self.times = times
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        if self.times > 0 and "/oauth/" not in request.url.path:
            self.times -= 1
            carried = request.url.params.get("access_token") or request.headers.get(
                "Authorization", ""
            )
            return self.render(carried)
        return self.fake.handler(request)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


class Raising(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """A transport whose network fails the way httpx reports it, for every request."""

    def __init__(self, error: type[httpx.TransportError], message: str) -> None:
        self.error = error
        self.message = message

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        raise self.error(self.message, request=request)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise self.error(self.message, request=request)


NETWORK_FAULTS = [
    (httpx.ConnectError, "[Errno 111] Connection refused"),
    (httpx.ConnectTimeout, "timed out"),
    (httpx.ReadTimeout, "The read operation timed out"),
    (httpx.RemoteProtocolError, "Server disconnected without sending a response."),
]


# --------------------------------------------------------------------------- scenarios


def zhipu_key_mode(ev: Evidence, clients: list[Any]) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    echo = Echo(
        fake,
        lambda cred: httpx.Response(
            401, json={"error": {"code": "1002", "message": f"Authorization Token非法: {cred}"}}
        ),
    )
    client = OpenAI(provider="zhipu", api_key=ZHIPU_KEY, http_client=upstream(echo))
    clients.append(client)
    chat = client.chat.completions.create
    ev.run("zhipu success", lambda: chat(model="glm-4-flash", messages=HELLO))
    ev.run("zhipu stream", lambda: text_of(chat(model="glm-4-flash", messages=HELLO, stream=True)))
    ev.run("zhipu embeddings", lambda: client.embeddings.create(model="embedding-3", input="x"))

    echo.arm(1)
    ev.run("zhipu 401 echoing the bearer key", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.fail("auth", message=f"API key {ZHIPU_KEY} (secret {ZHIPU_SECRET}) is not valid")
    ev.run("zhipu auth error echoing key", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.raw(401, f"<html><body>bad key {ZHIPU_KEY}</body></html>", {"Content-Type": "text/html"})
    ev.run("zhipu html 401 echoing key", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.raw(200, json.dumps({"error": {"code": "1002", "message": f"key={ZHIPU_KEY}"}}), JSON)
    ev.run("zhipu error in 200 echoing key", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.fail("auth", message=f"bad {ZHIPU_KEY}")
    ev.run(
        "zhipu stream refused echoing key",
        lambda: text_of(chat(model="glm-4-flash", messages=HELLO, stream=True)),
    )
    fake.raw(
        200,
        'data: {"id":"1","created":1,"choices":[{"index":0,"delta":{"content":"半"}}]}\n\n'
        + "data: "
        + json.dumps({"error": {"code": "1002", "message": f"token {ZHIPU_KEY} revoked"}})
        + "\n\n",
        SSE,
    )
    ev.run(
        "zhipu mid-stream error echoing key",
        lambda: text_of(chat(model="glm-4-flash", messages=HELLO, stream=True)),
    )
    fake.fail("rate_limit", message=f"slow down {ZHIPU_KEY}", headers={"Retry-After": "1"})
    fake.fail("rate_limit")
    ev.run("zhipu 429 twice then success", lambda: chat(model="glm-4-flash", messages=HELLO))
    for _ in range(3):
        fake.fail("server_error", message=f"upstream said {ZHIPU_KEY}")
    ev.run("zhipu 5xx beyond retries", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.fail("arrears", message=f"账户 {ZHIPU_KEY} 已欠费")
    ev.run("zhipu arrears", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.fail("auth", message=f"embedding key {ZHIPU_KEY} refused")
    ev.run(
        "zhipu embeddings error echoing key",
        lambda: client.embeddings.create(model="embedding-3", input="x"),
    )
    fake.cut_stream(2, "一二三四五六七八九十")
    ev.run(
        "zhipu stream cut mid-way",
        lambda: text_of(chat(model="glm-4-flash", messages=HELLO, stream=True)),
    )

    wrong = OpenAI(provider="zhipu", api_key=WRONG_ZHIPU_KEY, http_client=upstream(fake))
    clients.append(wrong)
    ev.run(
        "zhipu wrong key",
        lambda: wrong.chat.completions.create(model="glm-4-flash", messages=HELLO),
    )
    loose = FakeZhipu()
    loose.fail("auth", message=f"key {WRONG_ZHIPU_KEY} unknown")
    wrong2 = OpenAI(provider="zhipu", api_key=WRONG_ZHIPU_KEY, http_client=upstream(loose))
    clients.append(wrong2)
    ev.run(
        "zhipu wrong key echoed",
        lambda: wrong2.chat.completions.create(model="glm-4-flash", messages=HELLO),
    )


def zhipu_jwt_mode(ev: Evidence, clients: list[Any], jwts: set[str]) -> None:
    fake = FakeZhipu(api_key=JWT_KEY)
    echo = Echo(
        fake,
        lambda cred: httpx.Response(
            401,
            json={"error": {"code": "1003", "message": f"Authentication Token {cred} 已过期"}},
        ),
    )
    config = {"providers": {"zhipu": {"auth": "jwt"}}}
    client = OpenAI(provider="zhipu", api_key=JWT_KEY, config=config, http_client=upstream(echo))
    clients.append(client)
    chat = client.chat.completions.create
    ev.run("jwt success", lambda: chat(model="glm-4-flash", messages=HELLO))
    ev.run("jwt stream", lambda: text_of(chat(model="glm-4-flash", messages=HELLO, stream=True)))
    echo.arm(1)
    ev.run("jwt expired once (re-signed)", lambda: chat(model="glm-4-flash", messages=HELLO))
    echo.arm(3)
    ev.run("jwt expired every time", lambda: chat(model="glm-4-flash", messages=HELLO))
    fake.fail("auth", message=f"signed with {JWT_SECRET}?")
    ev.run("jwt error echoing secret half", lambda: chat(model="glm-4-flash", messages=HELLO))
    for request in fake.requests:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if token and token != JWT_KEY:
            jwts.add(token)


def qianfan_app_keys(ev: Evidence, clients: list[Any], tokens: set[str]) -> None:
    fake = FakeQianfan(api_key=QF_AK, secret_key=QF_SK)
    echo = Echo(
        fake,
        lambda cred: httpx.Response(
            200, json={"error_code": 110, "error_msg": f"Access token invalid: {cred}"}
        ),
    )
    client = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_SK,
        config=QF_V1,
        http_client=upstream(echo),
    )
    clients.append(client)
    chat = client.chat.completions.create
    model = "ernie-4.0-8k"
    ev.run("qianfan success", lambda: chat(model=model, messages=HELLO))
    ev.run("qianfan stream", lambda: text_of(chat(model=model, messages=HELLO, stream=True)))
    ev.run("qianfan embeddings", lambda: client.embeddings.create(model="embedding-v1", input="x"))
    ev.run(
        "qianfan raw response",
        lambda: client.chat.completions.with_raw_response.create(model=model, messages=HELLO),
    )
    ev.run("qianfan stream object", lambda: chat(model=model, messages=HELLO, stream=True))
    fake.expire_tokens()
    ev.run("qianfan 111 then new token", lambda: chat(model=model, messages=HELLO))
    fake.revoke_tokens()
    ev.run("qianfan 110 then new token", lambda: chat(model=model, messages=HELLO))
    echo.arm(1)
    ev.run("qianfan 110 echoing token once", lambda: chat(model=model, messages=HELLO))
    echo.arm(3)
    ev.run("qianfan 110 echoing token always", lambda: chat(model=model, messages=HELLO))
    fake.fail("arrears", message=f"app {QF_AK} over its daily limit")
    ev.run("qianfan 17 echoing AK", lambda: chat(model=model, messages=HELLO))
    fake.fail("rate_limit", message=f"qps of {QF_AK} exceeded").fail("rate_limit")
    ev.run("qianfan 18 twice then success", lambda: chat(model=model, messages=HELLO))
    fake.fail("server_error", message=f"secret {QF_SK} mismatch", status=500)
    fake.fail("server_error").fail("server_error")
    ev.run("qianfan 5xx beyond retries", lambda: chat(model=model, messages=HELLO))
    fake.fail("auth", message=f"token of {QF_AK} invalid")
    ev.run(
        "qianfan stream error in 200 echoing AK",
        lambda: text_of(chat(model=model, messages=HELLO, stream=True)),
    )
    echo.arm(3)
    ev.run(
        "qianfan stream 110 echoing token",
        lambda: text_of(chat(model=model, messages=HELLO, stream=True)),
    )
    fake.cut_stream(2, "一二三四五六七八九十")
    ev.run(
        "qianfan stream cut mid-way",
        lambda: text_of(chat(model=model, messages=HELLO, stream=True)),
    )
    tokens.update(fake.issued_tokens)

    bad = FakeQianfan(api_key=QF_AK, secret_key=QF_SK)
    wrong = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_WRONG_SK,
        config=QF_V1,
        http_client=upstream(bad),
    )
    clients.append(wrong)
    ev.run(
        "qianfan wrong Secret Key",
        lambda: wrong.chat.completions.create(model=model, messages=HELLO),
    )
    tokens.update(bad.issued_tokens)

    def refusing(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/oauth/2.0/token"):
            client_id = request.url.params.get("client_id")
            secret = request.url.params.get("client_secret")
            if secret != QF_SK:
                return httpx.Response(
                    401,
                    json={
                        "error": "invalid_client",
                        "error_description": f"Client authentication failed: {client_id}/{secret}",
                    },
                )
            return httpx.Response(500, text=f"token service down for {client_id}/{secret}")
        return bad.handler(request)

    echoing = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_WRONG_SK,
        config=QF_V1,
        http_client=httpx.Client(transport=httpx.MockTransport(refusing)),
    )
    clients.append(echoing)
    ev.run(
        "qianfan token refusal echoing the keys",
        lambda: echoing.chat.completions.create(model=model, messages=HELLO),
    )
    failing = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_SK,
        config=QF_V1,
        http_client=httpx.Client(transport=httpx.MockTransport(refusing)),
    )
    clients.append(failing)
    ev.run(
        "qianfan token endpoint 500 echoing the keys",
        lambda: failing.chat.completions.create(model=model, messages=HELLO),
    )

    down = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_WRONG_SK,
        config=QF_V1,
        http_client=upstream(Raising(httpx.ConnectError, "[Errno 111] Connection refused")),
    )
    clients.append(down)
    ev.run(
        "qianfan token endpoint unreachable",
        lambda: down.chat.completions.create(model=model, messages=HELLO),
    )


def qianfan_iam(ev: Evidence, clients: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeQianfan(api_key=QF_AK)
    echo = Echo(
        fake,
        lambda cred: httpx.Response(
            401,
            headers={"x-bce-error-code": "IamSignatureInvalid", "x-bce-error-message": cred},
            json={"code": "IamSignatureInvalid", "message": f"signature {cred} invalid"},
        ),
    )
    monkeypatch.setenv("QIANFAN_ACCESS_KEY", QF_IAM_AK)
    monkeypatch.setenv("QIANFAN_SECRET_KEY", QF_IAM_SK)
    client = OpenAI(provider="qianfan", config=QF_V1, http_client=upstream(echo))
    clients.append(client)
    chat = client.chat.completions.create
    ev.run("iam success", lambda: chat(model="ernie-4.0-8k", messages=HELLO))
    echo.arm(1)
    ev.run("iam 401 echoing the signature", lambda: chat(model="ernie-4.0-8k", messages=HELLO))
    fake.raw(
        403,
        json.dumps({"code": "AccessDenied", "message": f"ak {QF_IAM_AK} sk {QF_IAM_SK}"}),
        {**JSON, "x-bce-error-code": "AccessDenied"},
    )
    ev.run("iam 403 echoing both keys", lambda: chat(model="ernie-4.0-8k", messages=HELLO))


def qianfan_v2(ev: Evidence, clients: list[Any]) -> None:
    fake = FakeQianfanV2(api_key=QF_V2_KEY)
    client = OpenAI(provider="qianfan", api_key=QF_V2_KEY, http_client=upstream(fake))
    clients.append(client)
    chat = client.chat.completions.create
    ev.run("v2 success", lambda: chat(model="ernie-4.0-8k", messages=HELLO))
    ev.run("v2 stream", lambda: text_of(chat(model="ernie-4.0-8k", messages=HELLO, stream=True)))
    fake.fail("auth", message=f"Incorrect API key provided: {QF_V2_KEY}")
    ev.run("v2 401 echoing key", lambda: chat(model="ernie-4.0-8k", messages=HELLO))
    fake.raw(401, f"Unauthorized: {QF_V2_KEY}", {"Content-Type": "text/plain"})
    ev.run("v2 text 401 echoing key", lambda: chat(model="ernie-4.0-8k", messages=HELLO))
    fake.fail("rate_limit", message=f"{QF_V2_KEY} rpm").fail("rate_limit").fail("rate_limit")
    ev.run("v2 429 beyond retries", lambda: chat(model="ernie-4.0-8k", messages=HELLO))


def dashscope(ev: Evidence, clients: list[Any]) -> None:
    fake = FakeDashScope(api_key=DS_KEY)
    client = OpenAI(provider="dashscope", api_key=DS_KEY, http_client=upstream(fake))
    clients.append(client)
    chat = client.chat.completions.create
    ev.run("dashscope success", lambda: chat(model="qwen-plus", messages=HELLO))
    ev.run(
        "dashscope stream", lambda: text_of(chat(model="qwen-plus", messages=HELLO, stream=True))
    )
    ev.run(
        "dashscope embeddings",
        lambda: client.embeddings.create(model="text-embedding-v3", input="x"),
    )
    fake.fail("auth", message=f"Invalid API-key provided: {DS_KEY}")
    ev.run("dashscope 401 echoing key", lambda: chat(model="qwen-plus", messages=HELLO))
    fake.fail("auth", message=f"Invalid API-key provided: {DS_KEY}")
    ev.run(
        "dashscope stream 401 echoing key (SSE-framed)",
        lambda: text_of(chat(model="qwen-plus", messages=HELLO, stream=True)),
    )
    fake.raw(
        200,
        "id:1\nevent:error\n:HTTP_STATUS/401\ndata:"
        + json.dumps({"code": "InvalidApiKey", "message": f"key {DS_KEY}", "request_id": "r"})
        + "\n\n",
        SSE,
    )
    ev.run(
        "dashscope error event echoing key",
        lambda: text_of(chat(model="qwen-plus", messages=HELLO, stream=True)),
    )
    fake.fail("arrears", message=f"account of {DS_KEY} in arrears")
    ev.run("dashscope arrears", lambda: chat(model="qwen-plus", messages=HELLO))
    fake.fail("rate_limit", message=f"{DS_KEY} throttled").fail("rate_limit")
    ev.run("dashscope 429 twice then success", lambda: chat(model="qwen-plus", messages=HELLO))
    fake.fail("auth", message=f"embedding key {DS_KEY}")
    ev.run(
        "dashscope embeddings 401 echoing key",
        lambda: client.embeddings.create(model="text-embedding-v3", input="x"),
    )
    fake.cut_stream(2, "一二三四五六七八九十")
    ev.run(
        "dashscope stream cut mid-way",
        lambda: text_of(chat(model="qwen-plus", messages=HELLO, stream=True)),
    )

    compat = FakeDashScopeCompatible(api_key=DS_COMPAT_KEY)
    config = {"providers": {"dashscope": {"api": "compatible"}}}
    client2 = OpenAI(
        provider="dashscope", api_key=DS_COMPAT_KEY, config=config, http_client=upstream(compat)
    )
    clients.append(client2)
    chat2 = client2.chat.completions.create
    ev.run("dashscope compatible success", lambda: chat2(model="qwen-plus", messages=HELLO))
    compat.fail("auth", message=f"Incorrect API key provided: {DS_COMPAT_KEY}")
    ev.run("dashscope compatible 401 echoing key", lambda: chat2(model="qwen-plus", messages=HELLO))
    compat.fail("auth", message=f"Incorrect API key provided: {DS_COMPAT_KEY}")
    ev.run(
        "dashscope compatible stream 401 echoing key",
        lambda: text_of(chat2(model="qwen-plus", messages=HELLO, stream=True)),
    )


def network_faults(ev: Evidence, clients: list[Any]) -> None:
    """Connection errors and timeouts for each credential kind, sync and async."""
    setups = [
        ("zhipu", {"api_key": ZHIPU_KEY}, "glm-4-flash"),
        (
            "zhipu",
            {"api_key": JWT_KEY, "config": {"providers": {"zhipu": {"auth": "jwt"}}}},
            "glm-4-flash",
        ),
        ("qianfan", {"api_key": QF_AK, "secret_key": QF_SK, "config": QF_V1}, "ernie-4.0-8k"),
        ("qianfan", {"api_key": QF_V2_KEY}, "ernie-4.0-8k"),
        ("dashscope", {"api_key": DS_KEY}, "qwen-plus"),
    ]
    for provider, keys, model in setups:
        for error, message in NETWORK_FAULTS:
            transport = Raising(error, message)
            client = OpenAI(
                provider=provider, http_client=httpx.Client(transport=transport), **keys
            )
            clients.append(client)
            label = f"{provider} {error.__name__}"
            ev.run(
                label,
                lambda c=client, m=model: c.chat.completions.create(model=m, messages=HELLO),
            )
            ev.run(
                f"{label} (stream)",
                lambda c=client, m=model: text_of(
                    c.chat.completions.create(model=m, messages=HELLO, stream=True)
                ),
            )
            aclient = AsyncOpenAI(
                provider=provider, http_client=httpx.AsyncClient(transport=transport), **keys
            )
            clients.append(aclient)
            ev.run(
                f"{label} (async)",
                lambda c=aclient, m=model: asyncio.run(
                    c.chat.completions.create(model=m, messages=HELLO)
                ),
            )


def async_paths(ev: Evidence, clients: list[Any], tokens: set[str]) -> None:
    """The async twin of the main error paths."""
    zhipu = FakeZhipu(api_key=ZHIPU_KEY)
    qianfan = FakeQianfan(api_key=QF_AK, secret_key=QF_SK)
    az = AsyncOpenAI(
        provider="zhipu",
        api_key=ZHIPU_KEY,
        http_client=upstream(zhipu, "async"),
    )
    aq = AsyncOpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_SK,
        config=QF_V1,
        http_client=upstream(qianfan, "async"),
    )
    clients += [az, aq]

    async def zhipu_calls() -> None:
        await az.chat.completions.create(model="glm-4-flash", messages=HELLO)
        zhipu.fail("auth", message=f"async key {ZHIPU_KEY}")
        stream = await az.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
        async for _chunk in stream:  # read to its end: the failure comes from the stream
            pass

    async def qianfan_calls() -> None:
        await aq.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
        qianfan.expire_tokens()
        await aq.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
        qianfan.fail("auth", message=f"async AK {QF_AK} SK {QF_SK}")
        await aq.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)

    ev.run("async zhipu", lambda: asyncio.run(zhipu_calls()))
    ev.run("async qianfan", lambda: asyncio.run(qianfan_calls()))
    tokens.update(qianfan.issued_tokens)


def fallbacks(ev: Evidence, clients: list[Any], tokens: set[str]) -> None:
    """An alias over four providers, each failing in its own way, keys from the config."""
    zhipu = FakeZhipu(api_key=FB_ZHIPU_KEY)
    qianfan = FakeQianfan(api_key=FB_QF_AK, secret_key=FB_QF_SK)
    dash = FakeDashScope(api_key=FB_DS_KEY)
    openai_answers: list[httpx.Response] = []

    def openai(request: httpx.Request) -> httpx.Response:
        if openai_answers:
            return openai_answers.pop(0)
        return httpx.Response(
            200,
            json={
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": 1,
                "model": "gpt-4o-mini",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "ok"},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            },
        )

    def route(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "open.bigmodel.cn":
            return zhipu.handler(request)
        if host == "aip.baidubce.com":
            return qianfan.handler(request)
        if host == "dashscope.aliyuncs.com":
            return dash.handler(request)
        return openai(request)

    config = {
        "providers": {
            "zhipu": {"api_key": FB_ZHIPU_KEY},
            "qianfan": {"api_key": FB_QF_AK, "secret_key": FB_QF_SK, "api": "v1"},
            "dashscope": {"api_key": FB_DS_KEY},
            "openai": {"api_key": OPENAI_KEY},
        },
        "models": {
            "smart": [
                "zhipu/glm-4-flash",
                "qianfan/ernie-4.0-8k",
                "dashscope/qwen-plus",
                "openai/gpt-4o-mini",
            ]
        },
    }
    client = OpenAI(config=config, http_client=httpx.Client(transport=httpx.MockTransport(route)))
    clients.append(client)
    for _ in range(3):
        zhipu.fail("server_error", message=f"node for {FB_ZHIPU_KEY} down")
        qianfan.fail("rate_limit", message=f"{FB_QF_AK}/{FB_QF_SK} qps")
        dash.fail("overloaded", message=f"{FB_DS_KEY} overloaded")
    ev.run(
        "fallback down the chain to openai",
        lambda: client.chat.completions.create(model="smart", messages=HELLO),
    )
    for _ in range(3):
        zhipu.fail("rate_limit", message=f"{FB_ZHIPU_KEY} limited")
        qianfan.fail("server_error", message=f"{FB_QF_AK} broken")
        dash.fail("rate_limit", message=f"{FB_DS_KEY} limited")
    openai_answers.append(
        httpx.Response(
            401,
            json={
                "error": {
                    "message": f"Incorrect API key provided: {OPENAI_KEY}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
    )
    ev.run(
        "fallback chain ending in an echoed 401",
        lambda: client.chat.completions.create(model="smart", messages=HELLO),
    )
    for _ in range(3):
        zhipu.fail("server_error")
        qianfan.fail("server_error")
    dash.fail("auth", message=f"key {FB_DS_KEY} invalid")
    ev.run(
        "fallback stopped by an echoed 401",
        lambda: text_of(client.chat.completions.create(model="smart", messages=HELLO, stream=True)),
    )
    tokens.update(qianfan.issued_tokens)


def describe_clients(ev: Evidence, clients: list[Any]) -> None:
    ev.scenario = "describing clients"
    for index, client in enumerate(clients):
        where = f"client #{index} ({client.provider})"
        ev.obj(where, client)
        ev.obj(f"{where}.config", client.config)
        ev.obj(f"{where}.with_options()", client.with_options(max_retries=1))
        ev.obj(f"{where}.usage", client.usage)
        for record in client.usage.records():
            ev.obj(f"{where} usage record", record)
        ev.obj(f"{where}.usage.total()", client.usage.total())
        ev.obj(f"{where}.usage.by_model()", client.usage.by_model())
        for name, provider in client.config.providers.items():
            ev.obj(f"{where}.config.providers[{name!r}]", provider)
        for name, adapter in client._engine._adapters.items():
            ev.obj(f"{where} {name} adapter", adapter)
            ev.obj(f"{where} {name} credentials", adapter.credentials)


# --------------------------------------------------------------------------- the sweep


def test_no_secret_reaches_logs_errors_or_reprs(
    evidence: Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list[Any] = []
    jwts: set[str] = set()
    tokens: set[str] = set()

    zhipu_key_mode(evidence, clients)
    zhipu_jwt_mode(evidence, clients, jwts)
    qianfan_app_keys(evidence, clients, tokens)
    qianfan_iam(evidence, clients, monkeypatch)
    qianfan_v2(evidence, clients)
    dashscope(evidence, clients)
    network_faults(evidence, clients)
    async_paths(evidence, clients, tokens)
    fallbacks(evidence, clients, tokens)
    describe_clients(evidence, clients)

    # The sweep must have seen what it claims to check, or a silent pass proves nothing.
    assert len(jwts) >= 2, "the JWT scenarios signed fewer tokens than expected"
    assert len(tokens) >= 4, "the Qianfan scenarios were issued fewer tokens than expected"
    kinds = {type(error).__name__ for error in evidence.errors}
    for kind in (
        "AuthenticationError",
        "RateLimitError",
        "InternalServerError",
        "APIConnectionError",
        "APITimeoutError",
        "PermissionDeniedError",
    ):
        assert kind in kinds, f"no {kind} was produced; scenarios: {sorted(kinds)}"
    assert all(isinstance(error, APIError) for error in evidence.errors), [
        repr(error) for error in evidence.errors if not isinstance(error, APIError)
    ]
    # Providers echoed credentials in many scenarios; each echo was redacted or is a leak.
    redactions = sum("<redacted>" in text for where, text in evidence.texts if "str(" in where)
    assert redactions >= 20, f"only {redactions} redacted error texts: did the echoes happen?"
    levels = {where.split()[2] for where, _ in evidence.texts if where.startswith("log record")}
    assert {"DEBUG", "INFO", "WARNING"} <= levels, levels

    secrets = dict(SECRETS)
    secrets.update({f"signed JWT #{i}": jwt for i, jwt in enumerate(sorted(jwts))})
    secrets.update({f"Qianfan access token #{i}": t for i, t in enumerate(sorted(tokens))})
    leaks = evidence.leaks(secrets)
    assert not leaks, f"{len(leaks)} secret leak(s):\n" + "\n".join(leaks)


# --------------------------------------------------------------------------- focused tests


def test_qianfan_token_refusal_that_echoes_the_keys_is_scrubbed() -> None:
    """Baidu's token endpoint answering ``error_description`` with the key it refused."""

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            401,
            json={
                "error": "invalid_client",
                "error_description": f"unknown client id {QF_AK} (secret {QF_SK})",
            },
        )

    client = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_SK,
        config=QF_V1,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(APIError) as caught:
        client.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
    text = f"{caught.value} {caught.value!r}"
    assert QF_AK not in text and QF_SK not in text, text


@pytest.mark.parametrize("pad", [440, 450, 460, 470])
def test_a_body_quoted_in_an_error_is_cut_only_after_it_is_scrubbed(pad: int) -> None:
    """A body with no message is quoted in the error, cut to 500 characters: a key the
    provider echoed right across the cut must not show in part."""
    key = "myid.SUPERSECRETVALUE0123456789"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"pad": "x" * pad, "echo": key})

    client = OpenAI(
        provider="zhipu",
        api_key=key,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(APIError) as caught:
        client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert "SUPERSEC" not in str(caught.value), str(caught.value)


class BrokenBody(httpx.SyncByteStream):
    """One SSE event, then the read fails with an error that quotes the request URL."""

    def __init__(self, request: httpx.Request) -> None:
        self.request = request

    def __iter__(self) -> Iterator[bytes]:
        yield b'data: {"id":"as-1","result":"\xe4\xbd\xa0","is_end":false}\n\n'
        raise httpx.ReadError(f"error reading {self.request.url}", request=self.request)


@pytest.mark.parametrize("where", ["before the response", "mid-stream"])
def test_transport_error_quoting_the_url_does_not_leak_the_access_token(where: str) -> None:
    """An httpx error whose message quotes the request URL, ``access_token=`` and all."""
    fake = FakeQianfan(api_key=QF_AK, secret_key=QF_SK)

    def handler(request: httpx.Request) -> httpx.Response:
        if "access_token" not in request.url.params:
            return fake.handler(request)
        if where == "mid-stream":
            return httpx.Response(200, headers=SSE, stream=BrokenBody(request))
        raise httpx.ReadError(f"error reading {request.url}", request=request)

    client = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_SK,
        config=QF_V1,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(APIError) as caught:
        text_of(client.chat.completions.create(model="ernie-4.0-8k", messages=HELLO, stream=True))
    (token,) = fake.issued_tokens
    text = f"{caught.value} {caught.value!r}"
    assert "error reading" in text  # the scenario happened as scripted
    assert token not in text, text


def test_config_repr_hides_every_credential() -> None:
    config = load_config(
        {
            "providers": {
                "zhipu": {"api_key": ZHIPU_KEY},
                "qianfan": {
                    "api_key": CFG_QF_AK,
                    "secret_key": CFG_QF_SK,
                    "iam_access_key": QF_IAM_AK,
                    "iam_secret_key": QF_IAM_SK,
                },
                "dashscope": {"api_key": DS_KEY},
                "deepseek": {
                    "protocol": "openai_compat",
                    "base_url": "https://api.deepseek.com/v1",
                    "api_key": OPENAI_KEY,
                },
            }
        }
    )
    client = OpenAI(config=config, provider="qianfan")
    texts = [repr(config), str(config), repr(client), str(client)]
    for provider in config.providers.values():
        texts += [repr(provider), str(provider), repr(provider.model_dump())]
    texts += [repr(a.credentials) for a in client._engine._adapters.values()]
    joined = "\n".join(texts)
    for secret in (ZHIPU_KEY, CFG_QF_AK, CFG_QF_SK, QF_IAM_AK, QF_IAM_SK, DS_KEY, OPENAI_KEY):
        assert secret not in joined, secret
    # The secrets are really there (so the check above is not vacuous).
    assert config.secret("qianfan", "secret_key") == CFG_QF_SK


BAD_CONFIGS = [
    pytest.param({"providers": {"zhipu": {"api_key": [ZHIPU_KEY]}}}, id="key-as-list"),
    pytest.param({"providers": {"zhipu": {"api_key": {"value": ZHIPU_KEY}}}}, id="key-as-table"),
    pytest.param({"providers": {"zhipu": {"apikey": ZHIPU_KEY}}}, id="misspelt-key-field"),
    pytest.param({"providers": {"zhipu": {"api-key": ZHIPU_KEY}}}, id="dashed-key-field"),
    pytest.param({"providers": {"qianfan": {"secret": CFG_QF_SK}}}, id="misspelt-secret"),
    pytest.param(
        {"providers": {"qianfan": {"secret_key": 12345678901, "api_key": CFG_QF_AK}}},
        id="secret-as-number",
    ),
    pytest.param({"providers": {"newco": {"api_key": OPENAI_KEY}}}, id="unknown-provider-with-key"),
    pytest.param(
        {"providers": {"zhipu": {"api_key": ZHIPU_KEY, "auth": "bearer"}}}, id="bad-auth-mode"
    ),
    pytest.param(
        {"providers": {"zhipu": {"headers": {"Authorization": ["Bearer " + ZHIPU_KEY]}}}},
        id="header-as-list",
    ),
    pytest.param(
        {"providers": {"qianfan": {"iam_secret_key": [CFG_QF_SK], "iam_access_key": CFG_QF_AK}}},
        id="iam-key-as-list",
    ),
    pytest.param(
        {"providers": {"zhipu": {"api_key": ZHIPU_KEY + "${LLM_BRIDGE_TEST_UNSET_VAR}"}}},
        id="key-with-unset-variable",
    ),
    pytest.param(
        {"providers": {"zhipu": {"api_key": ZHIPU_KEY, "token_ttl": 1}}}, id="bad-sibling-field"
    ),
]


@pytest.mark.parametrize("raw", BAD_CONFIGS)
def test_config_error_never_quotes_a_key(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(raw)
    text = f"{caught.value}\n{caught.value!r}\n" + "".join(traceback.format_exception(caught.value))
    for secret in (ZHIPU_KEY, ZHIPU_SECRET, CFG_QF_AK, CFG_QF_SK, OPENAI_KEY, DS_KEY):
        assert secret not in text, f"{secret} in: {text}"


def _object_text(error: BaseException) -> str:
    """Everything an error's request carries that a caller may print or ship: its URL,
    headers, repr, and the pickled error (attributes and all)."""
    import pickle

    request = getattr(error, "request", None)
    response = getattr(error, "response", None)
    parts = [repr(request), str(getattr(request, "url", ""))]
    if request is not None:
        parts += [f"{k}: {v}" for k, v in request.headers.multi_items()]
    if response is not None:
        parts += [str(response.request.url), repr(dict(response.request.headers))]
    parts.append(pickle.dumps(error).decode("latin-1"))
    return "\n".join(parts)


def test_qianfan_v1_errors_carry_no_access_token_in_their_request() -> None:
    """Issue 19: every v1 error held the access token in ``e.request.url``."""
    fake = FakeQianfan(api_key=QF_AK, secret_key=QF_SK).fail("server_error", status=500)
    client = OpenAI(
        provider="qianfan",
        api_key=QF_AK,
        secret_key=QF_SK,
        config=QF_V1,
        max_retries=0,
        http_client=upstream(fake),
    )
    with pytest.raises(APIError) as caught:
        client.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
    (token,) = fake.issued_tokens
    text = _object_text(caught.value)
    assert "access_token=" in text  # the parameter is there, its value masked
    for secret in (token, QF_AK, QF_SK):
        assert secret not in text, secret


def test_an_unreachable_iam_token_endpoint_keeps_the_keys_out_of_the_error() -> None:
    """Issue 19: with Qianfan's token endpoint unreachable, the AK (in the signed
    ``Authorization`` header) was in ``e.request`` and pickled exceptions."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("unreachable", request=request)

    client = OpenAI(
        provider="qianfan",
        api_key=QF_IAM_AK,
        secret_key=QF_IAM_SK,
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    with pytest.raises(APIError) as caught:
        client.chat.completions.create(model="ernie-4.0-8k", messages=HELLO)
    text = _object_text(caught.value)
    assert "authorization: ***" in text.lower()  # the signed header was there, masked
    for secret in (QF_IAM_AK, QF_IAM_SK):
        assert secret not in text, secret
    import pickle

    again = pickle.loads(pickle.dumps(caught.value))
    assert type(again) is type(caught.value) and str(again) == str(caught.value)


# --------------------------------------------------------------------------- pasted keys


@pytest.mark.parametrize("pasted", ["{key}\n", " {key} ", "{key}\r\n", "\t{key}"])
@pytest.mark.parametrize("where", ["argument", "environment"])
def test_a_key_pasted_with_whitespace_around_it_works(
    pasted: str, where: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "id.pastedkeysecret0123"
    fake = FakeZhipu(api_key=key).reply("好")
    given = pasted.format(key=key)
    if where == "environment":
        monkeypatch.setenv("ZHIPUAI_API_KEY", given)
    client = OpenAI(
        provider="zhipu",
        api_key=given if where == "argument" else None,
        http_client=upstream(fake),
    )
    answer = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert answer.choices[0].message.content == "好"


def test_a_key_broken_by_a_line_break_is_refused_without_quoting_it() -> None:
    secret = "pastedkeysecret0123"
    fake = FakeZhipu(api_key=f"id.{secret}")
    with pytest.raises(ConfigError) as caught:
        OpenAI(
            provider="zhipu", api_key=f"id.pasted\n{secret}", http_client=upstream(fake)
        ).chat.completions.create(model="glm-4-flash", messages=HELLO)
    text = "".join(traceback.format_exception(caught.value))
    assert "line break" in str(caught.value) and secret not in text
    assert fake.requests == []
