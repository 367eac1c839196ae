"""Config: the TOML schema, where it is read from, and the errors a bad one gets.

Every bad config must fail with a `ConfigError` naming the file, the key path and what was
expected, and no secret may ever show up in an error message or a repr.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
import sys
import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
import respx

import llm_bridge
from llm_bridge import ConfigError, OpenAI, OpenAIError, load_config
from llm_bridge._config import builtin_providers
from llm_bridge.testing import FakeZhipu

SECRET = "sk-LEAKCHECK-7f3a9c21e5"
ZHIPU_KEY = "zhipuid.zhipusecret"
MESSAGES = [{"role": "user", "content": "你好, bridge"}]


# --------------------------------------------------------------------------- helpers


def write(directory: Path, text: str, name: str = "bridge.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def config_error(source: Any) -> str:
    """The message of the ConfigError that loading ``source`` raises."""
    with pytest.raises(ConfigError) as info:
        load_config(source)
    assert isinstance(info.value, OpenAIError)
    return str(info.value)


def openai_compat_body(request: httpx.Request) -> dict[str, Any]:
    """An OpenAI-shaped chat completion echoing the request's model and last message."""
    sent = json.loads(request.content)
    text = f"echo from {request.url.host}: {sent['messages'][-1]['content']}"
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": sent["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
    }


class Wire:
    """One transport for several hosts: Zhipu via the fake, anything else OpenAI-compatible."""

    def __init__(self, zhipu: FakeZhipu | None = None) -> None:
        self.zhipu = zhipu or FakeZhipu()
        self.requests: list[httpx.Request] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        if request.url.path.endswith("/api/paas/v4/chat/completions"):
            return self.zhipu.handler(request)
        return httpx.Response(200, json=openai_compat_body(request))

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler))


# --------------------------------------------------------------------------- bad configs


def test_malformed_toml_names_file_and_line(tmp_path: Path) -> None:
    lines = ['default_provider = "zhipu"', "", "[models]", '"gpt-4o" = zhipu/glm-4-plus']
    path = write(tmp_path, "\n".join(lines) + "\n")
    message = config_error(path)
    assert str(path) in message
    assert f"line {len(lines)}" in message


def test_malformed_toml_through_the_client(tmp_path: Path) -> None:
    path = write(tmp_path, "[providers.zhipu\napi_key = 1\n")
    with pytest.raises(ConfigError) as info:
        OpenAI(config=path)
    assert str(path) in str(info.value)
    assert "line 1" in str(info.value)


def test_unset_variable_names_variable_key_path_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[providers.zhipu]\napi_key = "${BRIDGE_TEST_UNSET_KEY}"\n')
    message = config_error(path)
    assert str(path) in message
    assert "BRIDGE_TEST_UNSET_KEY" in message
    assert "providers.zhipu.api_key" in message


def test_unset_variable_in_a_list_names_the_element(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[models]\n"gpt-4o" = ["zhipu/glm-4-plus", "${BRIDGE_TEST_FALLBACK}"]\n',
    )
    message = config_error(path)
    assert "BRIDGE_TEST_FALLBACK" in message
    assert "models.gpt-4o[1]" in message


def test_unknown_provider_block_names_it_lists_known_and_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, f'[providers.zhipuu]\napi_key = "{SECRET}"\n')
    message = config_error(path)
    assert str(path) in message
    assert "providers.zhipuu" in message
    for known in builtin_providers():
        assert known in message
    assert re.search(r"did you mean '?zhipu'?\b", message), message
    # how to define a new provider instead
    assert "protocol" in message
    assert "base_url" in message


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('[providers.zhipu]\nbase_ur = "https://example.test/v4"\n', "providers.zhipu.base_ur"),
        ('default_provder = "zhipu"\n', "default_provder"),
        ('[policy]\nunsupported_param = "drop"\n', "policy.unsupported_param"),
    ],
    ids=["base_ur", "default_provder", "unsupported_param"],
)
def test_unknown_key_is_named(tmp_path: Path, text: str, where: str) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert str(path) in message
    assert where in message
    assert "unknown key" in message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[providers.zhipu]\nbase_ur = "https://example.test/v4"\n', "base_url"),
        ('default_provder = "zhipu"\n', "default_provider"),
    ],
    ids=["base_ur", "default_provder"],
)
def test_unknown_key_says_what_was_expected(tmp_path: Path, text: str, expected: str) -> None:
    """'what was expected' for a typo is the key that was meant (or the list of valid keys)."""
    message = config_error(write(tmp_path, text))
    # The typo itself contains neither expected name, so it must come from a suggestion.
    assert re.search(rf"\b{expected}\b", message), message


@pytest.mark.parametrize(
    ("text", "where", "expected"),
    [
        (
            '[providers.zhipu.models."embedding-3"]\nmax_batch = "x"\n',
            "providers.zhipu.models.embedding-3.max_batch",
            "integer",
        ),
        ('[policy]\nunsupported_params = "loud"\n', "policy.unsupported_params", "'warn'"),
        ("[providers.zhipu]\ntoken_ttl = 5\n", "providers.zhipu.token_ttl", "30"),
        ('[providers.zhipu]\nbase_url = "open.bigmodel.cn"\n', "providers.zhipu.base_url", "URL"),
        ("default_provider = 3\n", "default_provider", "string"),
    ],
    ids=["max_batch", "unsupported_params", "token_ttl", "base_url", "default_provider"],
)
def test_wrong_value_type_names_key_and_expectation(
    tmp_path: Path, text: str, where: str, expected: str
) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert str(path) in message
    assert where in message
    assert expected in message


def test_unsupported_params_lists_all_choices(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[policy]\nunsupported_params = "loud"\n'))
    for choice in ("warn", "drop", "error"):
        assert choice in message
    assert "loud" in message


def test_auth_scheme_not_offered_by_provider(tmp_path: Path) -> None:
    path = write(tmp_path, '[providers.zhipu]\nauth = "oauth"\n')
    message = config_error(path)
    assert str(path) in message
    assert "providers.zhipu.auth" in message
    assert "oauth" in message
    for choice in builtin_providers()["zhipu"].auth_choices:
        assert choice in message


@pytest.mark.parametrize(
    "target",
    ["glm-4-plsu", "deepsek/deepseek-chat"],
)
def test_alias_pointing_nowhere(tmp_path: Path, target: str) -> None:
    path = write(tmp_path, f'[models]\n"gpt-4o" = "{target}"\n')
    message = config_error(path)
    assert str(path) in message
    assert "models.gpt-4o" in message
    assert target in message


def test_alias_pointing_nowhere_inside_a_chain(tmp_path: Path) -> None:
    path = write(tmp_path, '[models]\n"gpt-4o-mini" = ["zhipu/glm-4-flash", "not-a-model-x"]\n')
    message = config_error(path)
    assert "models.gpt-4o-mini" in message
    assert "not-a-model-x" in message


@pytest.mark.parametrize(
    ("text", "cycles"),
    [
        ('[models]\na = "b"\nb = "a"\n', ("a -> b -> a", "b -> a -> b")),
        ('[models]\nloop = "loop"\n', ("loop -> loop",)),
        (
            '[models]\na = ["zhipu/glm-4-flash", "b"]\nb = "c"\nc = ["a"]\n',
            ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"),
        ),
    ],
    ids=["two", "self", "three-via-list"],
)
def test_alias_cycle_names_the_cycle(tmp_path: Path, text: str, cycles: tuple[str, ...]) -> None:
    path = write(tmp_path, text)
    message = config_error(path)
    assert str(path) in message
    assert "cycle" in message
    assert any(cycle in message for cycle in cycles), message


def test_unknown_default_provider(tmp_path: Path) -> None:
    path = write(tmp_path, 'default_provider = "zhipuu"\n')
    message = config_error(path)
    assert str(path) in message
    assert "default_provider" in message
    assert "zhipuu" in message
    for known in builtin_providers():
        assert known in message
    assert re.search(r"did you mean '?zhipu'?\b", message), message


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "llm_bridge.toml"
    assert str(missing) in config_error(missing)
    with pytest.raises(ConfigError) as info:
        OpenAI(config=str(missing))
    assert str(missing) in str(info.value)


def test_missing_file_named_by_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "gone.toml"
    monkeypatch.setenv("LLM_BRIDGE_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        OpenAI()
    assert str(missing) in str(info.value)


def test_bad_mapping_config_names_the_key_path() -> None:
    message = config_error({"providers": {"zhipu": {"base_ur": "https://x.test"}}})
    assert "providers.zhipu.base_ur" in message


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(
    "text",
    [
        # an error elsewhere in a block that holds the key
        f'[providers.zhipu]\napi_key = "{SECRET}"\nbase_ur = "https://x.test"\n',
        f'[providers.zhipu]\napi_key = "{SECRET}"\nauth = "oauth"\n',
        f'[providers.zhipuu]\napi_key = "{SECRET}"\n',
        f'[providers.zhipu]\napi_key = "{SECRET}"\n[models]\na = "b"\nb = "a"\n',
        f'default_provider = "nope"\n[providers.zhipu]\napi_key = "{SECRET}"\n',
        # the key under a misspelt name: the value is still a secret
        f'[providers.zhipu]\napi_kye = "{SECRET}"\n',
        f'[providers.zhipu]\napikey = "{SECRET}"\n',
        # a key where a table was expected
        f'[providers.zhipu]\nheaders = "Bearer {SECRET}"\n',
        f'[providers.zhipu]\napi_key = ["{SECRET}"]\n',
    ],
    ids=[
        "unknown-key-beside",
        "bad-auth-beside",
        "unknown-provider",
        "alias-cycle-beside",
        "bad-default-beside",
        "misspelt-api_kye",
        "misspelt-apikey",
        "headers-not-table",
        "api_key-not-string",
    ],
)
def test_secret_never_in_config_error(tmp_path: Path, text: str) -> None:
    message = config_error(write(tmp_path, text))
    assert SECRET not in message
    assert SECRET[3:] not in message  # not even with the prefix cut


def test_secret_from_environment_never_in_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BRIDGE_TEST_SECRET", SECRET)
    text = '[providers.zhipu]\napi_key = "${BRIDGE_TEST_SECRET}"\nbase_ur = "https://x.test"\n'
    assert SECRET not in config_error(write(tmp_path, text))


def test_secret_never_in_reprs(tmp_path: Path) -> None:
    text = (
        f'[providers.zhipu]\napi_key = "{SECRET}"\n'
        f'[providers.deepseek]\nprotocol = "openai_compat"\n'
        f'base_url = "https://api.deepseek.com/v1"\napi_key = "{SECRET}"\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.api_key("zhipu") == SECRET  # it is there ...
    shown = [
        repr(config),
        str(config),
        repr(config.providers["zhipu"]),
        str(config.providers["deepseek"]),
        config.providers["zhipu"].model_dump_json(),
    ]
    client = OpenAI(config=config, api_key=SECRET)
    shown += [repr(client), str(client)]
    for text_shown in shown:  # ... but never shown
        assert SECRET not in text_shown


# --------------------------------------------------------------------------- good configs


def test_variable_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_KEY", ZHIPU_KEY)
    monkeypatch.setenv("BRIDGE_TEST_HOST", "glm-proxy.example.test")
    path = write(
        tmp_path,
        '[providers.zhipu]\napi_key = "${BRIDGE_TEST_KEY}"\n'
        'base_url = "https://${BRIDGE_TEST_HOST}/api/paas/v4"\n',
    )
    config = load_config(path)
    assert config.api_key("zhipu") == ZHIPU_KEY
    assert config.base_url("zhipu") == "https://glm-proxy.example.test/api/paas/v4"

    fake = FakeZhipu(api_key=ZHIPU_KEY)
    with OpenAI(config=path, http_client=httpx.Client(transport=fake.transport())) as client:
        answer = client.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    (request,) = fake.requests
    assert request.url.host == "glm-proxy.example.test"
    assert request.headers["Authorization"] == f"Bearer {ZHIPU_KEY}"
    assert "你好, bridge" in answer.choices[0].message.content


def test_variables_are_read_at_load_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_TEST_KEY", "first.value")
    config = load_config({"providers": {"zhipu": {"api_key": "${BRIDGE_TEST_KEY}"}}})
    monkeypatch.setenv("BRIDGE_TEST_KEY", "second.value")
    assert config.api_key("zhipu") == "first.value"


def test_user_defined_openai_compatible_provider_end_to_end(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[providers.deepseek]\nprotocol = "openai_compat"\n'
        'base_url = "https://api.deepseek.com/v1"\n'
        f'api_key = "{SECRET}"\n',
    )
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post("https://api.deepseek.com/v1/chat/completions").mock(
            side_effect=lambda request: httpx.Response(200, json=openai_compat_body(request))
        )
        client = OpenAI(config=path)
        explicit = client.chat.completions.create(model="deepseek/deepseek-chat", messages=MESSAGES)
        bound = OpenAI(config=path, provider="deepseek")
        bare = bound.chat.completions.create(model="deepseek-reasoner", messages=MESSAGES)

    assert route.call_count == 2
    first, second = (call.request for call in route.calls)
    assert first.headers["Authorization"] == f"Bearer {SECRET}"
    assert json.loads(first.content)["model"] == "deepseek-chat"
    assert json.loads(second.content)["model"] == "deepseek-reasoner"
    assert explicit.provider == "deepseek"
    assert explicit.model == "deepseek-chat"
    assert explicit.choices[0].message.content == "echo from api.deepseek.com: 你好, bridge"
    assert explicit.usage.total_tokens == 12
    assert bare.model == "deepseek-reasoner"


def test_zhipu_base_url_override_is_used_on_the_wire() -> None:
    wire = Wire()
    config = {
        "providers": {
            "zhipu": {"api_key": ZHIPU_KEY, "base_url": "https://gw.example.test/api/paas/v4/"}
        }
    }
    client = OpenAI(config=config, http_client=wire.client())
    answer = client.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    (request,) = wire.requests
    assert str(request.url) == "https://gw.example.test/api/paas/v4/chat/completions"
    assert answer.provider == "zhipu"
    # the rest of the shipped block is kept
    assert client.config.providers["zhipu"].protocol == "zhipu"
    assert "glm-4-flash" in client.config.providers["zhipu"].models


def test_config_as_mapping() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    config = {
        "default_provider": "zhipu",
        "providers": {"zhipu": {"api_key": ZHIPU_KEY}},
        "models": {"gpt-4o": "zhipu/glm-4-plus"},
        "policy": {"unsupported_params": "drop"},
    }
    client = OpenAI(config=config, http_client=httpx.Client(transport=fake.transport()))
    assert client.config.policy.unsupported_params == "drop"
    answer = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert fake.last_json["model"] == "glm-4-plus"
    assert fake.requests[0].headers["Authorization"] == f"Bearer {ZHIPU_KEY}"
    assert answer.model == "glm-4-plus"


def test_environment_variable_names_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        f'[providers.zhipu]\napi_key = "{ZHIPU_KEY}"\n[models]\n"gpt-4o" = "zhipu/glm-4-plus"\n',
        name="elsewhere.toml",
    )
    monkeypatch.setenv("LLM_BRIDGE_CONFIG", str(path))
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    client = OpenAI(http_client=httpx.Client(transport=fake.transport()))
    assert client.config.source == str(path)
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert fake.last_json["model"] == "glm-4-plus"


def test_config_file_in_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        tmp_path,
        f'[providers.zhipu]\napi_key = "{ZHIPU_KEY}"\n[models]\n"gpt-4o" = "zhipu/glm-4-air"\n',
        name="llm_bridge.toml",
    )
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    client = OpenAI(http_client=httpx.Client(transport=fake.transport()))
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
    assert fake.last_json["model"] == "glm-4-air"
    assert fake.requests[0].headers["Authorization"] == f"Bearer {ZHIPU_KEY}"


def test_environment_variable_wins_over_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    write(cwd, '[models]\n"gpt-4o" = "zhipu/glm-4-air"\n', name="llm_bridge.toml")
    chosen = write(tmp_path, '[models]\n"gpt-4o" = "zhipu/glm-4-plus"\n', name="chosen.toml")
    monkeypatch.setenv("LLM_BRIDGE_CONFIG", str(chosen))
    assert load_config().aliases["gpt-4o"] == ["zhipu/glm-4-plus"]


def test_without_config_the_usual_environment_key_is_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", "envid.envsecret")
    fake = FakeZhipu(api_key="envid.envsecret")
    client = OpenAI(http_client=httpx.Client(transport=fake.transport()))
    answer = client.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    assert fake.requests[0].headers["Authorization"] == "Bearer envid.envsecret"
    assert answer.provider == "zhipu"
    bound = OpenAI(provider="zhipu", http_client=httpx.Client(transport=fake.transport()))
    bound.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    assert fake.requests[1].headers["Authorization"] == "Bearer envid.envsecret"


def test_price_override_merges_with_shipped_entry() -> None:
    shipped = builtin_providers()["zhipu"].models["glm-4-flash"]
    config = load_config(
        {"providers": {"zhipu": {"models": {"glm-4-flash": {"input_price": "0.37"}}}}}
    )
    merged = config.providers["zhipu"].models["glm-4-flash"]
    assert merged.input_price == Decimal("0.37")
    # every field the override did not set keeps the shipped value
    for field in type(shipped).model_fields:
        if field != "input_price":
            assert getattr(merged, field) == getattr(shipped, field), field
    assert shipped.context_window is not None  # the comparison above is not vacuous
    # other catalogue entries are untouched
    assert (
        config.providers["zhipu"].models["glm-4-plus"]
        == builtin_providers()["zhipu"].models["glm-4-plus"]
    )


def test_price_override_from_toml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        '[providers.zhipu.models."glm-4-flash"]\ninput_price = 0.25\noutput_price = 0.5\n',
    )
    merged = load_config(path).providers["zhipu"].models["glm-4-flash"]
    shipped = builtin_providers()["zhipu"].models["glm-4-flash"]
    assert (merged.input_price, merged.output_price) == (Decimal("0.25"), Decimal("0.5"))
    assert merged.context_window == shipped.context_window
    assert merged.capabilities == shipped.capabilities


def test_user_config_does_not_change_the_shipped_tables() -> None:
    before = builtin_providers()["zhipu"].model_dump()
    load_config({"providers": {"zhipu": {"api_key": ZHIPU_KEY, "base_url": "https://x.test/v4"}}})
    assert builtin_providers()["zhipu"].model_dump() == before


def test_moving_a_program_is_a_one_line_change(tmp_path: Path) -> None:
    before = (
        f'[providers.zhipu]\napi_key = "{ZHIPU_KEY}"\n\n'
        "[providers.deepseek]\n"
        'protocol = "openai_compat"\n'
        'base_url = "https://api.deepseek.com/v1"\n'
        'api_key = "sk-deepseek-test"\n\n'
        "[models]\n"
        '"gpt-4o" = "zhipu/glm-4-plus"\n'
    )
    after = before.replace('"zhipu/glm-4-plus"', '"deepseek/deepseek-chat"')
    changed = [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]
    assert len(changed) == 2  # one line out, one line in

    def program(client: OpenAI) -> Any:  # the user's code: never changes
        return client.chat.completions.create(model="gpt-4o", messages=MESSAGES)

    hosts = []
    for text in (before, after):
        wire = Wire(FakeZhipu(api_key=ZHIPU_KEY))
        path = write(tmp_path, text, name="llm_bridge.toml")
        answer = program(OpenAI(config=path, http_client=wire.client()))
        (request,) = wire.requests
        hosts.append((request.url.host, json.loads(request.content)["model"], answer.provider))

    assert hosts == [
        ("open.bigmodel.cn", "glm-4-plus", "zhipu"),
        ("api.deepseek.com", "deepseek-chat", "deepseek"),
    ]


# --------------------------------------------------------------------------- construction


def test_unknown_provider_argument_fails_at_construction() -> None:
    wire = Wire()
    with pytest.raises(ConfigError) as info:
        OpenAI(provider="nope", api_key="x", http_client=wire.client())
    message = str(info.value)
    assert "nope" in message
    for known in builtin_providers():
        assert known in message
    assert wire.requests == []


def test_provider_defined_in_config_is_a_valid_provider_argument() -> None:
    config = {
        "providers": {
            "moonshot": {
                "protocol": "openai_compat",
                "base_url": "https://api.moonshot.cn/v1",
                "api_key": "sk-moon",
            }
        }
    }
    client = OpenAI(config=config, provider="moonshot")
    assert client.provider == "moonshot"


def test_missing_key_fails_at_construction_naming_the_variable() -> None:
    with pytest.raises(OpenAIError) as info:
        OpenAI(provider="zhipu")
    assert "ZHIPUAI_API_KEY" in str(info.value)
    assert "zhipu" in str(info.value)


def test_constructor_api_key_satisfies_the_provider() -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    client = OpenAI(
        provider="zhipu", api_key=ZHIPU_KEY, http_client=httpx.Client(transport=fake.transport())
    )
    client.chat.completions.create(model="glm-4-flash", messages=MESSAGES)
    assert fake.requests[0].headers["Authorization"] == f"Bearer {ZHIPU_KEY}"


def test_load_config_is_public_and_accepts_path_objects(tmp_path: Path) -> None:
    loader: Callable[..., Any] = llm_bridge.load_config
    config = loader(write(tmp_path, 'default_provider = "zhipu"\n'))
    assert isinstance(config, llm_bridge.Config)
    assert config.default_provider == "zhipu"
    assert config.source.endswith("bridge.toml")


# ------------------------------------------------------------ config you chose (issue 19)


def test_a_working_directory_config_may_not_name_code_to_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``llm_bridge.toml`` that came with a checked-out repository imported and ran its
    ``on_usage`` module on ``OpenAI()``; now only a file the caller chose may do that."""
    (tmp_path / "evilmod.py").write_text("import sys\nsys.ran_evil = True\ndef hook(r): pass\n")
    (tmp_path / "llm_bridge.toml").write_text('on_usage = "evilmod:hook"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("LLM_BRIDGE_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="LLM_BRIDGE_CONFIG") as raised:
        load_config()
    assert "working directory" in str(raised.value)
    assert not hasattr(sys, "ran_evil")
    monkeypatch.setenv("LLM_BRIDGE_CONFIG", "llm_bridge.toml")  # chosen: accepted
    assert load_config().on_usage == "evilmod:hook"
    assert load_config("llm_bridge.toml").on_usage == "evilmod:hook"


def test_the_loaded_config_file_is_named_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "llm_bridge.toml").write_text('[models]\nfast = "zhipu/glm-4-flash"\n')
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLM_BRIDGE_CONFIG", raising=False)
    with caplog.at_level(logging.INFO, logger="llm_bridge"):
        load_config()
    (line,) = [r.getMessage() for r in caplog.records if "config loaded" in r.getMessage()]
    assert "llm_bridge.toml" in line and "working directory" in line


@pytest.mark.parametrize(
    ("text", "environment", "expected"),
    [
        ("${LB_T_KEY:-fallback}", {}, "fallback"),
        ("${LB_T_KEY:-fallback}", {"LB_T_KEY": ""}, "fallback"),
        ("${LB_T_KEY:-fallback}", {"LB_T_KEY": "set"}, "set"),
        ("pre-${LB_T_KEY}-post", {"LB_T_KEY": "mid"}, "pre-mid-post"),
        ("${LB_T_KEY:-}", {}, ""),
    ],
)
def test_environment_references_with_defaults(
    monkeypatch: pytest.MonkeyPatch, text: str, environment: dict[str, str], expected: str
) -> None:
    monkeypatch.delenv("LB_T_KEY", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    config = load_config({"providers": {"zhipu": {"api_key": text}}})
    assert config.api_key("zhipu") == expected


@pytest.mark.parametrize("text", ["${${LB_T_KEY}}", "${LB_T_KEY:?no}", "${LB_T_KEY", "${1BAD}"])
def test_unknown_environment_reference_forms_are_refused(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    """They were used literally, as the key."""
    monkeypatch.setenv("LB_T_KEY", "x")
    with pytest.raises(ConfigError, match=r"providers\.zhipu\.api_key: unsupported"):
        load_config({"providers": {"zhipu": {"api_key": text}}})


def test_plain_http_to_another_host_warns_and_loopback_does_not() -> None:
    with pytest.warns(UserWarning, match="unencrypted"):
        OpenAI(provider="zhipu", api_key="id.secret", base_url="http://llm.example.com/v4")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OpenAI(provider="zhipu", api_key="id.secret", base_url="http://127.0.0.1:9/v4")


def test_configured_headers_are_sent_and_never_shown() -> None:
    fake = FakeZhipu(api_key="id.secret")
    config = {"providers": {"zhipu": {"headers": {"X-Tenant-Token": "tenant-secret-77"}}}}
    client = OpenAI(
        provider="zhipu",
        api_key="id.secret",
        config=config,
        http_client=httpx.Client(transport=fake.transport()),
    )
    client.chat.completions.create(model="glm-4-flash", messages=[{"role": "user", "content": "x"}])
    assert fake.requests[-1].headers["x-tenant-token"] == "tenant-secret-77"
    loaded = load_config(config)
    assert "tenant-secret-77" not in repr(loaded.provider("zhipu"))
    assert "tenant-secret-77" not in repr(loaded)


@pytest.mark.parametrize(
    ("raw", "where"),
    [
        ({"limits": {"stream_idle_timeout": True}}, "limits.stream_idle_timeout"),
        ({"limits": {"max_response_bytes": False}}, "limits.max_response_bytes"),
        ({"providers": {"zhipu": {"token_ttl": True}}}, "providers.zhipu.token_ttl"),
        (
            {"providers": {"zhipu": {"models": {"glm-4-flash": {"context_window": True}}}}},
            "providers.zhipu.models.glm-4-flash.context_window",
        ),
        ({"prices": {"zhipu/glm-4-flash": {"input": True, "output": 1}}}, "input"),
    ],
)
def test_a_boolean_where_a_number_belongs_is_an_error_not_one(raw: dict, where: str) -> None:
    """``stream_idle_timeout = true`` was a 1-second timeout (pydantic reads true as 1)."""
    with pytest.raises(ConfigError, match="expected a number, got") as raised:
        load_config(raw)
    assert where in str(raised.value)


def test_numbers_and_switches_from_variables_still_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``${VAR}`` value is always a string: ``"30"`` is still 30 seconds."""
    monkeypatch.setenv("IDLE", "30")
    monkeypatch.setenv("PREFLIGHT", "false")
    path = tmp_path / "bridge.toml"
    path.write_text(
        '[limits]\nstream_idle_timeout = "${IDLE}"\nmax_response_bytes = "${MAXB:-1000000}"\n'
        '[policy]\npreflight = "${PREFLIGHT}"\nfallback_on = ["timeout"]\n'
    )
    config = load_config(path)
    assert config.limits.stream_idle_timeout == 30.0
    assert config.limits.max_response_bytes == 1_000_000
    assert config.policy.preflight is False
    # (and a mapping from code may hold tuples)
    assert load_config({"policy": {"fallback_on": ("timeout",)}}).policy.fallback_on == ["timeout"]


def test_numbers_where_they_belong_still_load() -> None:
    config = load_config(
        {
            "limits": {"stream_idle_timeout": 30, "max_response_bytes": 1000},
            "prices": {"zhipu/glm-4-flash": {"input": "0.1", "output": 2}},
        }
    )
    assert config.limits.stream_idle_timeout == 30.0
    assert config.price("zhipu", "glm-4-flash").input == Decimal("0.1")


@pytest.mark.parametrize(
    ("raw", "suggested"),
    [
        ({"prices": {"zhipu/glm-4-flash": {"tiers": [{"input": 1, "output": 1, "upto": 5}]}}},
         "expected one of: up_to_input_tokens"),
        ({"providers": {"zhipu": {"endpoints": [{"url": "https://x", "regin": "cn"}]}}},
         "did you mean 'region'"),
    ],
)  # fmt: skip
def test_an_unknown_key_in_a_list_of_tables_names_the_keys_there(raw: dict, suggested: str) -> None:
    """The hint was "expected one of: " with nothing after it."""
    with pytest.raises(ConfigError, match=suggested):
        load_config(raw)


def test_a_configured_root_wins_over_the_environments_as_the_configured_key_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The config's ``api_key`` won over ``ZHIPUAI_API_KEY`` but its ``base_url`` lost to
    ``ZHIPUAI_BASE_URL``: the config's key went to a host the environment chose."""
    monkeypatch.setenv("ZHIPUAI_BASE_URL", "https://env.example/api/paas/v4")
    configured = load_config(
        {"providers": {"zhipu": {"api_key": "id.secret", "base_url": "https://cfg.example/v4"}}}
    )
    assert configured.base_url_from_env("zhipu") is None
    assert configured.base_url("zhipu") == "https://cfg.example/v4"
    # A provider the config gives no root of its own takes the environment's, as before.
    assert load_config({}).base_url("zhipu") == "https://env.example/api/paas/v4"
    monkeypatch.setenv("OPENAI_BASE_URL", "https://proxy.example/v1")
    assert load_config({}).base_url("openai") == "https://proxy.example/v1"  # (over the table's)
    # A root the config sets wins even when it is the one the shipped table has.
    shipped = {
        "providers": {"openai": {"api_key": "sk-x", "base_url": "https://api.openai.com/v1"}}
    }
    assert load_config(shipped).base_url("openai") == "https://api.openai.com/v1"
