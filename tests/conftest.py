"""Shared fixtures: no real sleeping between retries, no stray config or keys from the machine."""

from __future__ import annotations

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
