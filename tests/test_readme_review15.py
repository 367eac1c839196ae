"""What a new user following the README met (session 15's walkthrough): each test holds
one fix."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge.testing import FakeZhipu

MESSAGES: Any = [{"role": "user", "content": "你好"}]


class Recorder:
    """An upstream client that answers as FakeZhipu at any host, keeping the URLs."""

    def __init__(self) -> None:
        self.fake = FakeZhipu()
        self.urls: list[str] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(str(request.url))
        request.read()
        moved = httpx.Request(
            request.method,
            self._at_zhipu(request.url),
            headers=request.headers,
            content=request.content,
        )
        return self.fake.handler(moved)

    @staticmethod
    def _at_zhipu(url: httpx.URL) -> httpx.URL:
        api = url.path[url.path.index("/v4/") + len("/v4") :]
        return httpx.URL(f"https://open.bigmodel.cn/api/paas/v4{api}")

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


@pytest.mark.parametrize(
    ("base_url", "sent_to"),
    [
        # A proxy the caller's openai client names: the provider is reached there.
        (
            "https://llm-proxy.corp.example/zhipu/api/paas/v4",
            "https://llm-proxy.corp.example/zhipu/api/paas/v4/chat/completions",
        ),
        ("https://10.0.0.7:8080/v4/", "https://10.0.0.7:8080/v4/chat/completions"),
        # No base_url (openai's default root): the provider's own root.
        (None, "https://open.bigmodel.cn/api/paas/v4/chat/completions"),
        # A provider root: that provider at that root, as before.
        (
            "https://open.bigmodel.cn/api/paas/v4",
            "https://open.bigmodel.cn/api/paas/v4/chat/completions",
        ),
    ],
)
def test_http_client_with_provider_keeps_the_openai_clients_own_root(base_url: Any, sent_to: str):
    recorder = Recorder()
    client = openai.OpenAI(
        api_key="id.secret",
        base_url=base_url,
        http_client=llm_bridge.http_client(provider="zhipu", http_client=recorder.client()),
    )
    answer = client.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    assert answer.choices[0].message.content
    assert recorder.urls == [sent_to]


def test_the_own_root_also_serves_embeddings_and_streams():
    recorder = Recorder()
    client = openai.OpenAI(
        api_key="id.secret",
        base_url="https://gw.example/api/paas/v4",
        http_client=llm_bridge.http_client(provider="zhipu", http_client=recorder.client()),
    )
    client.embeddings.create(model="embedding-3", input="文本")
    chunks = list(
        client.chat.completions.create(model="glm-4-flash", messages=MESSAGES, stream=True)
    )
    assert chunks
    assert recorder.urls == [
        "https://gw.example/api/paas/v4/embeddings",
        "https://gw.example/api/paas/v4/chat/completions",
    ]


DASHSCOPE_ROOT = "https://dashscope.aliyuncs.com/compatible-mode/v1"


def dashscope_fake() -> tuple[Any, httpx.Client]:
    from llm_bridge.testing import FakeDashScopeCompatible

    fake = FakeDashScopeCompatible()
    return fake, httpx.Client(transport=fake.transport())


@pytest.mark.parametrize("via", ["argument", "OPENAI_BASE_URL"])
def test_a_provider_root_as_base_url_takes_the_key_from_openai_api_key(
    monkeypatch: pytest.MonkeyPatch, via: str
):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-env")
    fake, upstream = dashscope_fake()
    if via == "argument":
        client = llm_bridge.OpenAI(base_url=DASHSCOPE_ROOT, http_client=upstream)
    else:
        monkeypatch.setenv("OPENAI_BASE_URL", DASHSCOPE_ROOT)
        client = llm_bridge.OpenAI(http_client=upstream)
    client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-from-openai-env"


def test_the_providers_own_key_still_wins_over_openai_api_key(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-dashscope-own")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-env")
    fake, upstream = dashscope_fake()
    client = llm_bridge.OpenAI(base_url=DASHSCOPE_ROOT, http_client=upstream)
    client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
    assert fake.requests[-1].headers["authorization"] == "Bearer sk-dashscope-own"


def test_without_a_provider_root_openai_api_key_is_not_taken_for_a_provider(
    monkeypatch: pytest.MonkeyPatch,
):
    # provider= alone says nothing about openai's variables: the provider's own are needed.
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    monkeypatch.delenv("ZHIPU_API_KEY", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-env")
    with pytest.raises(llm_bridge.ConfigError, match="ZHIPUAI_API_KEY"):
        llm_bridge.OpenAI(provider="zhipu")


@pytest.mark.parametrize(
    ("header", "value", "named"),
    [
        ("x-llm-bridge-stream-idle-timeout", "0.5", "0.5 s without an event"),
        ("x-llm-bridge-stream-deadline", "0.8", "its deadline of 0.8 s"),
    ],
)
def test_a_silent_stream_names_the_limit_it_passed(header: str, value: str, named: str):
    from llm_bridge.testing import Fault, serve

    fake = FakeZhipu()
    fake.reply("这是一个很长的回答，" * 40)
    with serve(fake, faults=[Fault.stall_after(400, 3.0)]) as server:
        client = llm_bridge.OpenAI(
            provider="zhipu", api_key="id.secret", base_url=f"{server.url}/api/paas/v4"
        )
        stream = client.chat.completions.create(
            model="glm-4-flash", messages=MESSAGES, stream=True, extra_headers={header: value}
        )
        with pytest.raises(llm_bridge.APITimeoutError) as caught:
            list(stream)
        client.close()
    assert named in caught.value.message
    assert "stream timed out" in caught.value.message


def test_an_image_for_a_text_only_model_suggests_current_vision_models():
    from llm_bridge.testing import FakeDashScope

    fake = FakeDashScope("sk-test")
    client = llm_bridge.OpenAI(
        api_key="sk-test",
        config={"providers": {"dashscope": {"api": "native"}}},
        http_client=httpx.Client(transport=fake.transport()),
    )
    image: Any = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    with pytest.raises(llm_bridge.BadRequestError) as caught:
        client.chat.completions.create(
            model="qwen-plus", messages=[{"role": "user", "content": [image]}]
        )
    suggested = caught.value.message.split("such as ", 1)[1].split(", ")
    catalogue = client.config.provider("dashscope").models
    assert suggested and all(
        catalogue[name].supports("vision") and not catalogue[name].retired for name in suggested
    )
    assert fake.requests == []


@pytest.mark.parametrize(
    ("model", "alias"),
    [("gpt-4o-mini", '"gpt-4o-mini" = "zhipu/'), ("text-embedding-3-small", "zhipu/embedding")],
)
def test_an_openai_model_name_is_answered_with_the_alias_to_write(
    monkeypatch: pytest.MonkeyPatch, model: str, alias: str
):
    for name in ("DASHSCOPE_API_KEY", "QIANFAN_API_KEY", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ZHIPUAI_API_KEY", "id.secret")
    client = llm_bridge.OpenAI()
    with pytest.raises(llm_bridge.ModelNotFoundError) as caught:
        if "embedding" in model:
            client.embeddings.create(model=model, input="文本")
        else:
            client.chat.completions.create(model=model, messages=MESSAGES)
    message = str(caught.value)
    assert "is an OpenAI model name" in message
    assert alias in message
    assert "llm-bridge migrate" in message


def test_dashscope_compatible_mode_gets_developer_messages_as_system():
    import json

    fake, upstream = dashscope_fake()
    client = llm_bridge.OpenAI(provider="dashscope", api_key="sk-test", http_client=upstream)
    messages: Any = [{"role": "developer", "content": "简短回答。"}, *MESSAGES]
    client.chat.completions.create(model="qwen-plus", messages=messages)
    sent = json.loads(fake.requests[-1].content)["messages"]
    assert [m["role"] for m in sent] == ["system", "user"]
    assert sent[0]["content"] == "简短回答。"


@pytest.mark.parametrize("imported_first", [False, True])
def test_llm_bridge_log_writes_each_line_once_beside_the_programs_own_logging(
    imported_first: bool,
):
    """Through the program's handler and format, whether it configured logging before
    importing llm_bridge or after (the usual order, which a ``basicConfig`` on import
    would have turned into a silent no-op: the program's own log file never made)."""
    import os
    import subprocess
    import sys
    import textwrap

    configure = (
        "import logging; "
        'logging.basicConfig(level=logging.WARNING, format="ROOT %(name)s %(message)s")'
    )
    steps = ["import llm_bridge", configure]
    script = "\n".join(steps if imported_first else steps[::-1]) + textwrap.dedent("""
        import httpx
        from llm_bridge import OpenAI
        from llm_bridge.testing import FakeZhipu
        fake = FakeZhipu()
        client = OpenAI(provider="zhipu", api_key="id.secret",
                        http_client=httpx.Client(transport=fake.transport()))
        client.chat.completions.create(model="glm-4-flash",
                                       messages=[{"role": "user", "content": "hi"}])
    """)
    env = {**os.environ, "LLM_BRIDGE_LOG": "debug"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    lines = [line for line in result.stderr.splitlines() if "chat/completions -> 200" in line]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ROOT llm_bridge")  # the program's own handler and format


@pytest.mark.parametrize(
    "key",
    ["sk-proj-abc123def456", "sk-svcacct-xyz", "sk-abcdefT3BlbkFJ0123456789abcdef0123456789ab"],
)
def test_an_openai_key_is_never_sent_to_a_provider(monkeypatch: pytest.MonkeyPatch, key: str):
    monkeypatch.delenv("ZHIPUAI_API_KEY", raising=False)
    fake = FakeZhipu()
    client = llm_bridge.OpenAI(
        api_key=key,
        config={"models": {"gpt-4o-mini": "zhipu/glm-4-flash"}},
        http_client=httpx.Client(transport=fake.transport()),
    )
    with pytest.raises(llm_bridge.ConfigError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert "is an OpenAI API key" in str(caught.value)
    assert "ZHIPUAI_API_KEY" in str(caught.value)
    assert key not in str(caught.value)
    assert fake.requests == []


def test_a_dashscope_key_is_not_mistaken_for_an_openai_one():
    fake, upstream = dashscope_fake()
    key = "sk-0123456789abcdef0123456789abcdef"  # DashScope's shape: sk- and 32 hex digits
    client = llm_bridge.OpenAI(provider="dashscope", api_key=key, http_client=upstream)
    client.chat.completions.create(model="qwen-plus", messages=MESSAGES)
    assert fake.requests[-1].headers["authorization"] == f"Bearer {key}"


def test_a_model_routing_nowhere_says_whether_a_config_was_loaded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_BRIDGE_CONFIG", raising=False)
    monkeypatch.setenv("ZHIPUAI_API_KEY", "id.secret")
    with pytest.raises(llm_bridge.ModelNotFoundError, match="none was loaded"):
        llm_bridge.OpenAI().chat.completions.create(model="my-alias", messages=MESSAGES)
    config = tmp_path / "elsewhere.toml"
    config.write_text('[models]\n"other" = "zhipu/glm-4-flash"\n')
    with pytest.raises(llm_bridge.ModelNotFoundError, match=r"elsewhere\.toml"):
        llm_bridge.OpenAI(config=str(config)).chat.completions.create(
            model="my-alias", messages=MESSAGES
        )


def test_the_compatible_fake_refuses_the_developer_role_as_dashscope_does():
    fake, _ = dashscope_fake()
    answer = fake.handler(
        httpx.Request(
            "POST",
            f"{DASHSCOPE_ROOT}/chat/completions",
            headers={"Authorization": "Bearer sk-test"},
            json={"model": "qwen-plus", "messages": [{"role": "developer", "content": "x"}]},
        )
    )
    assert answer.status_code == 400
    assert "developer is not one of" in answer.json()["error"]["message"]
