"""The ``llm-bridge`` command as a whole: ``python -m llm_bridge``, help at every level,
exit codes, output with and without rich, and ``import llm_bridge`` staying free of both
the command and rich."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_support import run_cli
from conftest import SUITE_TEXTS

from llm_bridge import __version__

COMMANDS = ["chat", "models", "doctor", "usage", "serve", "keys", "keys new"]


def test_help_at_every_level_says_what_and_the_exit_codes(tmp_path: Path) -> None:
    top = run_cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    for command in ("chat", "models", "doctor", "usage", "serve", "keys"):
        assert f"\n    {command} " in top.stdout
    assert "exit status: 0 success, 1" in top.stdout
    for command in COMMANDS:
        done = run_cli(*command.split(), "--help", cwd=tmp_path)
        assert done.returncode == 0, command
        assert done.stdout.startswith(f"usage: llm-bridge {command}"), command
        assert "examples:" in done.stdout, command
    for command in ("chat", "models", "doctor", "usage"):
        assert "exit status:" in run_cli(command, "--help", cwd=tmp_path).stdout


def test_usage_mistakes_exit_2_with_help(tmp_path: Path) -> None:
    bare = run_cli(cwd=tmp_path)
    assert bare.returncode == 2 and "usage: llm-bridge" in bare.stderr
    assert run_cli("nonsense", cwd=tmp_path).returncode == 2
    keys = run_cli("keys", cwd=tmp_path)
    assert keys.returncode == 2 and "new" in keys.stdout
    assert run_cli("models", "--no-such-option", cwd=tmp_path).returncode == 2


def test_version_and_the_older_module_entry_point(tmp_path: Path) -> None:
    assert run_cli("--version", cwd=tmp_path).stdout.strip() == f"llm-bridge {__version__}"
    older = subprocess.run(
        [sys.executable, "-m", "llm_bridge.cli", "models", "--provider", "zhipu", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert older.returncode == 0 and '"glm-4-flash"' in older.stdout


def modules_after(code: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(done.stdout.split())


def test_importing_llm_bridge_loads_neither_the_command_nor_rich() -> None:
    loaded = modules_after(
        "import httpx\nimport llm_bridge\nfrom llm_bridge import OpenAI\n"
        "from llm_bridge.testing import FakeZhipu\n"
        "OpenAI(provider='zhipu', api_key='id.secret', http_client=httpx.Client("
        "transport=FakeZhipu().transport())).chat.completions.create(model='glm-4-flash', "
        "messages=[{'role': 'user', 'content': 'hi'}])"
    )
    assert not {m for m in loaded if m.startswith("llm_bridge.cli")}
    # httpx imports its own command line (click, rich, pygments) when all are installed;
    # llm-bridge adds no rich module to what httpx alone loads.
    rich = {m for m in loaded if m == "rich" or m.startswith("rich.")}
    assert rich <= modules_after("import httpx")


def test_without_rich_every_table_is_plain_text(tmp_path: Path) -> None:
    hidden = tmp_path / "no-rich"
    done = run_cli("models", "--provider", "zhipu", cwd=tmp_path, hide_rich=hidden)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[:3] == ["provider", "model", "kind"]
    doctor = run_cli("doctor", "--offline", cwd=tmp_path, hide_rich=hidden)
    assert doctor.stdout.startswith("ok    config: no config file")
    check = run_cli(
        "chat", "x", "--config", "/nonexistent.toml", cwd=tmp_path, hide_rich=hidden
    )  # the hidden package really is hidden: the command still runs and reports
    assert check.returncode == 2 and "config file not found" in check.stderr


def on_a_terminal(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    """What the command writes to a terminal (a pseudo-terminal), all of it."""
    import pty  # POSIX only
    import select

    master, slave = pty.openpty()
    full = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "TERM")}
    full.update(env, COLUMNS="200", LINES="50", TERM="xterm-256color")
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_bridge", *args],
        cwd=cwd,
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # the other end closed: the process is done
                break
            if not data:
                break
            chunks.append(data)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    SUITE_TEXTS.append(text)
    return text


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_on_a_terminal_tables_are_richs_and_plain_without_it(tmp_path: Path) -> None:
    pytest.importorskip("rich")
    args = ["models", "--provider", "zhipu"]
    with_rich = on_a_terminal(args, tmp_path, {})
    assert "glm-4-flash" in with_rich and "┃" in with_rich  # rich's heavy header rule
    hidden = tmp_path / "no-rich"
    run_cli("--version", cwd=tmp_path, hide_rich=hidden)  # makes the hiding package
    plain = on_a_terminal(args, tmp_path, {"PYTHONPATH": str(hidden)})
    assert "glm-4-flash" in plain and "┃" not in plain and "\x1b[" not in plain
    assert plain.lstrip().startswith("provider  model")
