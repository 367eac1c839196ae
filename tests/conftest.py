"""Shared fixtures: no real sleeping between retries, no stray config or keys from the machine."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from llm_bridge import _retry


class SleepRecorder(list):
    """The waits the retry policy asked for, in order (nothing actually sleeps)."""


@pytest.fixture(autouse=True)
def no_retry_sleep(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    waits = SleepRecorder()

    async def async_record(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(_retry, "sleep", waits.append)
    monkeypatch.setattr(_retry, "async_sleep", async_record)
    return waits


#: The variables that would point a test at the developer's keys, config or logging.
MACHINE_VARIABLES = (
    "LLM_BRIDGE_CONFIG",
    "ZHIPUAI_API_KEY",
    "ZHIPUAI_BASE_URL",
    "DASHSCOPE_API_KEY",
    "QIANFAN_AK",
    "QIANFAN_SK",
    "QIANFAN_API_KEY",
    "QIANFAN_ACCESS_KEY",
    "QIANFAN_SECRET_KEY",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "LLM_BRIDGE_LOG",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Tests see neither the developer's keys nor a llm_bridge.toml in the working directory."""
    for name in MACHINE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-parameter warnings afresh."""
    from llm_bridge import _notices

    monkeypatch.setattr(_notices, "_warned", set())


@pytest.fixture(autouse=True)
def fresh_token_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Process-wide credential caches (JWTs, Qianfan access tokens) start empty per test."""
    from llm_bridge import _auth

    monkeypatch.setattr(_auth, "_SHARED_TOKENS", {})
    monkeypatch.setattr(_auth, "_ZHIPU_TOKENS", _auth._TokenCache())


# --------------------------------------------------------------------------- secret scan
# Every log record the session produces (any logger's, at any level) and every API
# error's text is kept, with every credential the session handed to a client or that a
# client minted (access tokens, JWTs); when the session ends, `collect_logs_and_secrets`
# scans the one for the other and fails the run on a leak, whichever tests were
# selected, in any order. Tests add what they saw elsewhere (gateway answers, a
# browser's page) to SUITE_TEXTS, and secrets of their own to SUITE_SECRETS.

SUITE_TEXTS: list[str] = []
SUITE_SECRETS: set[str] = set()

# Short placeholders ("ak", "a.b") occur in ordinary text; real-looking secrets do not.
MIN_SECRET_LENGTH = 8


def leaked_secrets(texts: list[str], secrets: set[str]) -> list[tuple[str, str]]:
    """(secret, text) for each secret of at least `MIN_SECRET_LENGTH` characters found in
    a text; a Zhipu key's secret half ("<id>.<secret>") counts on its own."""
    wanted = {s for s in secrets if len(s) >= MIN_SECRET_LENGTH}
    wanted |= {
        part
        for s in wanted
        if s.count(".") == 1
        for part in s.split(".")
        if len(part) >= MIN_SECRET_LENGTH
    }
    return [(secret, text) for text in set(texts) for secret in wanted if secret in text]


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        SUITE_TEXTS.append(self.format(record))


@pytest.fixture(autouse=True, scope="session")
def collect_logs_and_secrets() -> Iterator[None]:
    from llm_bridge import _auth, _engine, _errors

    logger = logging.getLogger("llm_bridge")
    handler = _Collect(level=logging.DEBUG)
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    # Other libraries' records too (httpx logs each request's URL at INFO): the root
    # logger's handler sees every logger that propagates.
    root = logging.getLogger()
    root_handler = _Collect(level=logging.INFO)
    root_previous = root.level
    root.addHandler(root_handler)
    root.setLevel(min(root_previous or logging.WARNING, logging.INFO))
    # Tests that post to a fake's token URL themselves (no engine made yet) would log its
    # query secrets through httpx: redacted as every engine does, so that the check below
    # sees what llm-bridge logs, in any order of tests.
    _auth.redact_http_logs()

    original_error_init = _errors.APIError.__init__
    original_engine_init = _engine.Engine.__init__
    original_accept = _auth.QianfanAccessToken.accept_token
    original_iam_accept = _auth.QianfanIamToken.accept_token
    original_sign = _auth.sign_zhipu_jwt

    def error_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_error_init(self, *args, **kwargs)
        SUITE_TEXTS.append(f"{self!s} {self!r}")

    def engine_init(self: Any, config: Any, **kwargs: Any) -> None:
        for field in ("api_key", "secret_key"):
            if kwargs.get(field):
                SUITE_SECRETS.add(kwargs[field])
        for name in config.providers:
            for field in ("api_key", "secret_key", "iam_access_key", "iam_secret_key"):
                value = getattr(config.providers[name], field)
                if value is not None:
                    SUITE_SECRETS.add(value.get_secret_value())
        original_engine_init(self, config, **kwargs)

    def accept(self: Any, response: Any) -> None:
        original_accept(self, response)
        if self._token:
            SUITE_SECRETS.add(self._token)

    def iam_accept(self: Any, response: Any) -> None:
        original_iam_accept(self, response)
        if self._token:
            SUITE_SECRETS.add(self._token)

    def sign(api_key: str, **kwargs: Any) -> str:
        token = original_sign(api_key, **kwargs)
        SUITE_SECRETS.add(token)
        return token

    patches = [
        (_errors.APIError, "__init__", error_init),
        (_engine.Engine, "__init__", engine_init),
        (_auth.QianfanAccessToken, "accept_token", accept),
        (_auth.QianfanIamToken, "accept_token", iam_accept),
        (_auth, "sign_zhipu_jwt", sign),
    ]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    for owner, name, value in patches:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
        logger.removeHandler(handler)
        logger.setLevel(previous)
        root.removeHandler(root_handler)
        root.setLevel(root_previous)
    leaks = leaked_secrets(SUITE_TEXTS, SUITE_SECRETS)
    assert not leaks, "secrets in the session's logs or errors:\n" + "\n".join(
        f"{secret[:6]}… in: {text[:300]}" for secret, text in leaks[:20]
    )
