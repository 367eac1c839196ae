"""Bad input to the ``llm-bridge`` commands refused with one line and exit status 2, never a
traceback or config lines the gateway refuses later: ``keys new`` names and limits,
``usage`` on a file that is not a ledger, ``serve``'s port, workers, log level and a port
in use, ``chat --temperature``."""

from __future__ import annotations

import socket
import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from cli_support import run_cli
from conftest import SUITE_SECRETS

from llm_bridge.cli._config_file import toml_string
from llm_bridge.gateway import hash_key, load_gateway_config

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ZHIPU_KEY = "fixesid.fixessecret0123456789abcdef"
SUITE_SECRETS.add(ZHIPU_KEY)


def gateway_config(tmp_path: Path, key_lines: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f'[providers.zhipu]\napi_key = "{ZHIPU_KEY}"\n\n[gateway]\nledger = "none"\n\n' + key_lines,
        encoding="utf-8",
    )
    return path


def refused(done: subprocess.CompletedProcess[str], option: str) -> str:
    """The stderr of a run refused at parsing because of ``option``."""
    assert done.returncode == 2, done.stderr
    assert f"argument {option}: expected" in done.stderr and "Traceback" not in done.stderr
    return done.stderr


def test_keys_new_prints_lines_that_load_whatever_the_name_models_and_budget(
    tmp_path: Path,
) -> None:
    done = run_cli(
        "keys",
        "new",
        "team.a",
        "--models",
        "glm-4-flash",
        'odd"name\\',
        "--rpm",
        "5",
        "--tpm",
        "1000",
        "--budget",
        "1e2",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    key = next(w for w in done.stdout.split() if w.startswith("sk-lb-"))
    lines = done.stdout[done.stdout.index("[gateway.keys.") :]
    assert lines.startswith('[gateway.keys."team.a"]\n')
    _, gateway = load_gateway_config(gateway_config(tmp_path, lines))
    (spec,) = gateway.keys
    assert spec.name == "team.a" and spec.models == ("glm-4-flash", 'odd"name\\')
    assert (spec.rpm, spec.tpm, spec.monthly_budget_cny) == (5, 1000, Decimal(100))
    assert spec.digest.hex() == hash_key(key)


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--rpm", "-5", ">= 1"),
        ("--rpm", "0", ">= 1"),
        ("--tpm", "0", ">= 1"),
        ("--budget", "-3", ">= 0"),
        ("--budget", "nan", ">= 0"),
        ("--budget", "ten", ">= 0"),
        ("--models", "", "a model name or pattern"),
    ],
)
def test_keys_new_refuses_a_limit_the_gateway_would_refuse(
    tmp_path: Path, option: str, value: str, allowed: str
) -> None:
    done = run_cli("keys", "new", "team", option, value, cwd=tmp_path)
    assert allowed in refused(done, option)
    assert "sk-lb-" not in done.stdout and "[gateway.keys" not in done.stdout


def test_toml_strings_read_back_as_written() -> None:
    text = 'a "quoted" back\\slash\ttab\nnewline\x00nul\x7fdel 中文'
    assert tomllib.loads(f"v = {toml_string(text)}")["v"] == text


def test_usage_on_a_file_that_is_not_a_ledger_says_so_in_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"not sqlite\n")
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE notes (text TEXT)")
    connection.close()
    for path, why in ((garbage, "file is not a database"), (other, "no such table: ledger")):
        done = run_cli("usage", "--ledger", str(path), cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.strip() == f"llm-bridge: {path}: not a ledger the gateway wrote: {why}"


@pytest.mark.parametrize(
    ("option", "value", "allowed"),
    [
        ("--port", "70000", "from 1 to 65535"),
        ("--port", "-1", "from 1 to 65535"),
        ("--port", "0", "from 1 to 65535"),
        ("--workers", "0", ">= 1"),
        ("--timeout-graceful-shutdown", "-1", ">= 0"),
    ],
)
def test_serve_refuses_a_number_out_of_range(
    tmp_path: Path, option: str, value: str, allowed: str
) -> None:
    # (a config that does not exist: were the option let through, nothing would start)
    done = run_cli("serve", "--config", "missing.toml", option, value, cwd=tmp_path)
    assert allowed in refused(done, option)


def test_serve_refuses_a_log_level_uvicorn_lacks_and_lists_its_own(tmp_path: Path) -> None:
    uvicorn_config = pytest.importorskip("uvicorn.config")
    from llm_bridge.cli._serve import LOG_LEVELS

    assert tuple(uvicorn_config.LOG_LEVELS) == LOG_LEVELS
    done = run_cli("serve", "--config", "missing.toml", "--log-level", "verbose", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "argument --log-level: invalid choice: 'verbose'" in done.stderr
    assert all(repr(level) in done.stderr for level in LOG_LEVELS)


def test_serve_on_a_port_in_use_says_so_and_exits_2(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    lines = f'[gateway.keys.team]\nkey_sha256 = "{hash_key("sk-lb-unused")}"\n'
    config = gateway_config(tmp_path, lines)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        done = run_cli("serve", "--config", str(config), "--port", str(port), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == f"llm-bridge: port {port} on 127.0.0.1 is in use"


@pytest.mark.parametrize("value", ["5", "-0.1", "nan", "inf"])
def test_chat_refuses_a_temperature_out_of_range_as_a_usage_error(
    tmp_path: Path, value: str
) -> None:
    env = {"ZHIPUAI_API_KEY": ZHIPU_KEY, "ZHIPUAI_BASE_URL": "http://127.0.0.1:9/api/paas/v4"}
    done = run_cli("chat", "glm-4-flash", "hi", "--temperature", value, cwd=tmp_path, env=env)
    assert "from 0 to 2" in refused(done, "--temperature")
