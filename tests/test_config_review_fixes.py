"""Config errors found in review: a shared ``[gateway]`` table, file encodings, empty
variables, keys pasted into the wrong field, and the wording of validation errors.

Each must be a `ConfigError` naming the file and the key path, never echoing a key whole.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import config_error, write

from llm_bridge import OpenAI, load_config
from llm_bridge.gateway._config import load_gateway_config

KEY = "0123456789abcdef0123456789abcdef.SECRETsecret1234"  # Zhipu's id.secret shape

GATEWAY_FILE = """
[providers.zhipu]
api_key = "zid.zsecret"

[models]
fast = "zhipu/glm-4-flash"

[gateway]
state = "${ONLY_ON_THE_GATEWAY_HOST}"

[gateway.keys.team-a]
key_sha256 = "0257c3cdf1692ffdfbcdc330f83206be0494451b1fed121017ccb0a3559288e0"
"""


def test_one_file_serves_the_gateway_and_its_clients(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GATEWAY_FILE, "llm_bridge.toml")
    monkeypatch.delenv("ONLY_ON_THE_GATEWAY_HOST", raising=False)
    monkeypatch.delenv("LLM_BRIDGE_CONFIG", raising=False)
    assert load_config().aliases == {"fast": ["zhipu/glm-4-flash"]}
    OpenAI()  # the README's gateway file, found in the working directory
    monkeypatch.setenv("ONLY_ON_THE_GATEWAY_HOST", "memory")
    config, gateway = load_gateway_config(path)
    assert [key.name for key in gateway.keys] == ["team-a"]
    assert config.aliases == load_config(path).aliases


def test_a_gbk_file_names_the_line_and_asks_for_utf8(tmp_path: Path) -> None:
    path = tmp_path / "gbk.toml"
    path.write_bytes('default_provider = "zhipu"\n# 智谱的配置\n'.encode("gbk"))
    message = config_error(path)
    assert str(path) in message
    assert "line 2" in message
    assert "UTF-8" in message


def test_a_utf8_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeffdefault_provider = "zhipu"\n'.encode())
    assert load_config(path).default_provider == "zhipu"


def test_an_empty_variable_names_the_key_and_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZK", "")
    path = write(tmp_path, '[providers.zhipu]\napi_key = "${ZK}"\n')
    message = config_error(path)
    assert f"{path}: providers.zhipu.api_key: ${{ZK}} is set but empty" in message
    # ${VAR:-} says an empty value is meant.
    config = load_config({"providers": {"zhipu": {"headers": {"X-Tag": "${ZK:-}"}}}})
    assert config.provider("zhipu").headers == {"X-Tag": ""}


@pytest.mark.parametrize("field", ["api_key_env", "secret_key_env", "iam_secret_key_env"])
def test_a_key_in_an_env_field_is_refused_without_echo(tmp_path: Path, field: str) -> None:
    path = write(tmp_path, f'[providers.qianfan]\n{field} = ["{KEY}"]\n')
    message = config_error(path)
    assert f"providers.qianfan.{field}: expected names of environment variables" in message
    assert "SECRET" not in message


def test_a_key_as_base_url_env_is_not_echoed(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, f'[providers.zhipu]\nbase_url_env = ["{KEY}"]\n'))
    assert "providers.zhipu.base_url_env" in message
    assert "SECRET" not in message


@pytest.mark.parametrize(
    "text",
    [
        f'[providers.dashscope]\nregion = "{KEY}"\n',
        f'[providers.zhipu]\nbase_url = "{KEY}"\n',
        f'default_provider = "{KEY}"\n',
        f'[models]\nfast = "{KEY}"\n',
        f'[providers.zhipu.models.glm-4]\ncontext_window = "{KEY}"\n',
    ],
)
def test_a_long_wrong_value_is_not_echoed_whole(tmp_path: Path, text: str) -> None:
    message = config_error(write(tmp_path, text))
    assert KEY[:8] in message  # the start helps to recognise what was pasted
    assert "SECRET" not in message


def test_a_short_wrong_value_is_shown_once(tmp_path: Path) -> None:
    message = config_error(write(tmp_path, '[providers.zhipu]\nbase_url = "ftp://x"\n'))
    assert message.endswith("providers.zhipu.base_url: expected an http(s) URL, got 'ftp://x'")


def test_a_union_error_is_one_line_at_the_users_key(tmp_path: Path) -> None:
    path = write(tmp_path, "[models]\nfast = 3\n")
    assert config_error(path) == (
        f"{path}: models.fast: Input should be a valid string or Input should be a valid list "
        f"(got 3)"
    )


def test_a_config_that_is_neither_path_nor_mapping() -> None:
    message = config_error(42)
    assert "config: expected a path to a TOML file" in message
    assert "got int" in message
