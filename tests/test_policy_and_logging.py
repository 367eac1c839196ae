"""[policy] fallback_on, and the LLM_BRIDGE_LOG switch."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import httpx
import pytest

from llm_bridge import BadRequestError, OpenAI, RateLimitError
from llm_bridge.testing import FakeDashScope, FakeZhipu

HELLO = [{"role": "user", "content": "你好"}]


def two_provider_client(
    fallback_on: list[str] | None, zhipu: FakeZhipu, dashscope: FakeDashScope
) -> OpenAI:
    def route(request: httpx.Request) -> httpx.Response:
        fake = zhipu if request.url.host == "open.bigmodel.cn" else dashscope
        return fake.handler(request)

    config: dict = {
        "providers": {
            "zhipu": {"api_key": "id.secret"},
            "dashscope": {"api_key": "sk-x", "api": "native"},
        },
        "models": {"chat": ["zhipu/glm-4-flash", "dashscope/qwen-plus"]},
    }
    if fallback_on is not None:
        config["policy"] = {"fallback_on": fallback_on}
    return OpenAI(
        config=config, max_retries=0, http_client=httpx.Client(transport=httpx.MockTransport(route))
    )


def test_content_filter_does_not_fall_back_by_default() -> None:
    zhipu, dashscope = FakeZhipu().fail("content_filter"), FakeDashScope()
    with pytest.raises(BadRequestError) as info:
        two_provider_client(None, zhipu, dashscope).chat.completions.create(
            model="chat", messages=HELLO
        )
    assert info.value.code == "content_filter"
    assert dashscope.requests == []


def test_fallback_on_content_filter_when_configured() -> None:
    zhipu, dashscope = FakeZhipu().fail("content_filter"), FakeDashScope().reply("换个模型回答")
    client = two_provider_client(["content_filter"], zhipu, dashscope)
    answer = client.chat.completions.create(model="chat", messages=HELLO)
    assert (answer.provider, answer.model) == ("dashscope", "qwen-plus")
    assert answer.choices[0].message.content == "换个模型回答"


def test_quota_falls_back_by_default_but_not_when_left_out() -> None:
    zhipu, dashscope = FakeZhipu().fail("arrears"), FakeDashScope().reply("ok")
    answer = two_provider_client(None, zhipu, dashscope).chat.completions.create(
        model="chat", messages=HELLO
    )
    assert answer.provider == "dashscope"

    zhipu, dashscope = FakeZhipu().fail("arrears"), FakeDashScope()
    with pytest.raises(RateLimitError) as info:
        two_provider_client(
            ["connection", "server_error"], zhipu, dashscope
        ).chat.completions.create(model="chat", messages=HELLO)
    assert info.value.code == "insufficient_quota"
    assert dashscope.requests == []


def test_unknown_fallback_kind_is_a_config_error() -> None:
    from llm_bridge import ConfigError, load_config

    with pytest.raises(ConfigError, match=r"policy\.fallback_on"):
        load_config({"policy": {"fallback_on": ["everything"]}})


def test_llm_bridge_log_debug_logs_request_lines_without_keys() -> None:
    script = textwrap.dedent("""
        import httpx
        from llm_bridge import OpenAI
        from llm_bridge.testing import FakeZhipu
        fake = FakeZhipu(api_key="logid.logsecretvalue")
        client = OpenAI(provider="zhipu", api_key="logid.logsecretvalue",
                        http_client=httpx.Client(transport=fake.transport()))
        client.chat.completions.create(model="glm-4-flash",
                                       messages=[{"role": "user", "content": "hi"}])
    """)
    env = {**os.environ, "LLM_BRIDGE_LOG": "debug"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    assert "POST https://open.bigmodel.cn/api/paas/v4/chat/completions -> 200" in result.stderr
    assert "logsecretvalue" not in result.stderr

    quiet = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={k: v for k, v in env.items() if k != "LLM_BRIDGE_LOG"},
        timeout=60,
        check=True,
    )
    assert "chat/completions" not in quiet.stderr


def test_a_fallback_targets_checks_never_stop_the_first_target() -> None:
    """ernie-4.0-8k's 8K window cannot hold this prompt; glm-4-flash's can, and goes first."""
    zhipu = FakeZhipu().reply("装得下")
    config = {
        "providers": {
            "zhipu": {"api_key": "id.secret"},
            "qianfan": {"api_key": "ak", "secret_key": "sk", "api": "v1"},
        },
        "models": {"long": ["zhipu/glm-4-flash", "qianfan/ernie-4.0-8k"]},
    }
    client = OpenAI(config=config, http_client=httpx.Client(transport=zhipu.transport()))
    answer = client.chat.completions.create(
        model="long", messages=[{"role": "user", "content": "长" * 20000}]
    )
    assert (answer.provider, answer.choices[0].message.content) == ("zhipu", "装得下")


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_every_attempt_is_made_by_one_loop_and_numbered_from_one(
    mode: str, caplog: pytest.LogCaptureFixture, no_retry_sleep: list[float]
) -> None:
    """Three 503s then an answer, with max_retries=3: four attempts, the log numbers the
    failed ones 1, 2 and 3, and openai's ``retries_taken`` says 3; with max_retries=2 the
    third 503 is the error raised, after two waits."""
    import asyncio

    from llm_bridge import AsyncOpenAI, InternalServerError

    def run(max_retries: int) -> tuple[FakeZhipu, object]:
        fake = FakeZhipu()
        for _ in range(3):
            fake.fail("server_error")
        options = {"provider": "zhipu", "api_key": "id.secret", "max_retries": max_retries}
        if mode == "sync":
            client = OpenAI(**options, http_client=httpx.Client(transport=fake.transport()))
            call = lambda: client.chat.completions.with_raw_response.create(  # noqa: E731
                model="glm-4-flash", messages=HELLO
            )
            return fake, call()
        aclient = AsyncOpenAI(**options, http_client=httpx.AsyncClient(transport=fake.transport()))
        create = aclient.chat.completions.with_raw_response.create
        return fake, asyncio.run(create(model="glm-4-flash", messages=HELLO))

    with caplog.at_level("INFO", logger="llm_bridge"):
        fake, raw = run(max_retries=3)
    assert len(fake.requests) == 4
    assert raw.retries_taken == 3  # type: ignore[attr-defined]
    logged = [r.getMessage() for r in caplog.records if " failed (" in r.getMessage()]
    numbers = [message.split("attempt ")[1].split(" ")[0] for message in logged]
    assert numbers == ["1", "2", "3"]
    assert len(no_retry_sleep) == 3

    no_retry_sleep.clear()
    with pytest.raises(InternalServerError):
        run(max_retries=2)
    assert len(no_retry_sleep) == 2


TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize("policy", ["warn", "error"])
def test_an_unsupported_value_is_worded_as_the_policy_treats_it(policy: str) -> None:
    """The warning says what was sent instead; the refusal, which sends nothing, does not
    say something was sent."""
    fake = FakeZhipu(api_key="id.secret")
    config = {"policy": {"unsupported_params": policy}}
    client = OpenAI(
        provider="zhipu",
        api_key="id.secret",
        config=config,
        http_client=httpx.Client(transport=fake.transport()),
    )
    call = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "hi"}]}
    call.update(tools=TOOLS, tool_choice="required")
    if policy == "warn":
        with pytest.warns(UserWarning) as caught:
            client.chat.completions.create(**call)
        said = str(caught[0].message)
        assert "GLM accepts only 'auto'; 'required' was sent as 'auto'." in said
        return
    with pytest.raises(BadRequestError) as refused:
        client.chat.completions.create(**call)
    said = str(refused.value)
    assert "zhipu does not support tool_choice: GLM accepts only 'auto'. Refused" in said
    assert "nothing was sent" in said and "was sent as" not in said
    assert fake.requests == []
