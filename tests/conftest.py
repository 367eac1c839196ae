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


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory):
    """Tests see neither the developer's keys nor a llm_bridge.toml in the working directory."""
    for name in (
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
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sees the once-per-parameter warnings afresh."""
    from llm_bridge.adapters import _params

    monkeypatch.setattr(_params, "_warned", set())


@pytest.fixture(autouse=True)
def fresh_token_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Process-wide credential caches (JWTs, Qianfan access tokens) start empty per test."""
    from llm_bridge import _auth

    monkeypatch.setattr(_auth, "_SHARED_TOKENS", {})
    monkeypatch.setattr(_auth, "_ZHIPU_TOKENS", _auth._TokenCache())


# --------------------------------------------------------------------------- secret scan
# Every log record the suite produces and every API error's text is kept, with every
# credential the suite handed to a client or that a client minted (access tokens, JWTs);
# tests/test_zz_secret_scan.py, collected last, scans the one for the other.

SUITE_TEXTS: list[str] = []
SUITE_SECRETS: set[str] = set()


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
