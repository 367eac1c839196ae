"""The commands read a config as the SDK does, and refuse what the SDK refuses: a review
of the configuration, the command line and their messages."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from cli_support import run_cli


@pytest.mark.parametrize("command", [["doctor", "--offline"], ["chat", "glm-4-flash", "hi"]])
def test_a_working_directory_config_naming_code_is_refused_as_the_sdk_refuses_it(
    tmp_path: Path, command: list[str]
) -> None:
    """``doctor`` and ``chat`` imported the ``on_usage`` module of a ``./llm_bridge.toml``
    that came with a checked-out repository, which ``OpenAI()`` refuses to do."""
    (tmp_path / "evil_hook.py").write_text(
        'open("IMPORTED", "w").write("ran")\ndef record(usage): pass\n'
    )
    (tmp_path / "llm_bridge.toml").write_text(
        'on_usage = "evil_hook:record"\n'
        '[providers.zhipu]\nbase_url = "http://127.0.0.1:9/api/paas/v4"\n'
    )
    done = run_cli(*command, cwd=tmp_path, env={"ZHIPUAI_API_KEY": "id.secret"})
    assert done.returncode != 0
    assert "imports code only from a config you chose" in done.stdout + done.stderr
    assert not (tmp_path / "IMPORTED").exists()
    chosen = run_cli(*command, "--config", "llm_bridge.toml", cwd=tmp_path)
    assert "imports code only" not in chosen.stdout + chosen.stderr


def test_serve_names_a_ledger_it_cannot_use(tmp_path: Path) -> None:
    """A ledger that is not a SQLite file was a uvicorn traceback, exit status 1."""
    (tmp_path / "bad.sqlite").write_text("not a database")
    (tmp_path / "gw.toml").write_text(
        f'[gateway]\nledger = "bad.sqlite"\n[gateway.keys.a]\nkey_sha256 = "{"0" * 64}"\n'
    )
    with socket.socket() as probe:  # (a port free now; the run stops before listening)
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    done = run_cli("serve", "--config", "gw.toml", "--port", port, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert "gateway.ledger: cannot use" in done.stderr and "bad.sqlite" in done.stderr
