"""Codex CLI (``@openai/codex`` from npm, locked in tests/codex/) with ``llm-bridge serve`` as
its model provider (issue 16): ``codex exec`` speaks the Responses API (``wire_api =
"responses"``) to a real gateway process, which translates it to chat completions for a
``FakeZhipu`` behind it (``llm_bridge.testing.serve``).

Codex runs with a temporary ``CODEX_HOME`` holding tests/codex/config.toml (checked with
``--strict-config``), the gateway key in ``LLMB_KEY``, and every proxy variable pointing at
a local listener that records and drops what reaches it: Codex can reach the gateway on
loopback and nothing else, and the tests assert it tried nothing else.

What Codex 0.171 sends, and what reaches Zhipu: no ``instructions``; its base instructions
and skill list are ``developer`` input items (Zhipu gets them as ``system`` messages), then
a ``<environment_context>`` user message, then the prompt. ``store: false`` with the whole
conversation every turn (no ``previous_response_id``), ``stream: true``, ``reasoning:
{"summary": "auto"}``, ``include: ["reasoning.encrypted_content"]``, ``prompt_cache_key``,
``client_metadata``, and tools: function tools (its shell tool is ``exec_command`` with
``{"cmd": ...}``), a ``namespace`` tool (``multi_agent_v1``: its sub-agent functions) and
``web_search`` with ``external_web_access: false`` (docs/responses-tools.md). GLM gets the
namespace's functions as ``multi_agent_v1__<name>`` and its own ``web_search`` tool; a call
to one comes back to Codex as a ``function_call`` with ``namespace``, which Codex
dispatches. A tool turn comes back as the ``reasoning`` (summary, ``encrypted_content:
null``), ``function_call`` and ``function_call_output`` items. (Codex's ``client_metadata``
body field and its ``x-codex-*``, ``session-id``, ``thread-id`` and ``originator`` headers
currently pass on to the provider as caller extras; not asserted either way here.)
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import SUITE_TEXTS
from helpers import bodies, npm_project
from test_gateway_server import KEY, ZHIPU_KEY, Gateway

from llm_bridge.gateway import hash_key
from llm_bridge.testing import FakeZhipu, ToolCallSpec, serve

#: The gateway (tests/test_gateway_server.py's) with a key ``codex`` that may use only
#: the ``codex-*`` aliases.
CODEX_MODELS = 'codex-glm = "zhipu/glm-4-flash"\ncodex-thinker = "zhipu/glm-4.7"'
CODEX_KEY = f"""[gateway.keys.codex]
key_sha256 = "{hash_key(KEY)}"
models = ["codex-*"]
rpm = 100
tpm = 1000000
monthly_budget_cny = 100"""
CODEX_DIR = Path(__file__).parent / "codex"
CODEX_VERSION = "0.171.0"  # tests/codex/package.json
#: How long one ``codex exec`` may take (it takes about a second against the fakes).
CODEX_TIMEOUT = 60
#: The first test may also install the pinned package (npm ci: the native binary is a
#: download of some 170 MB).
pytestmark = pytest.mark.timeout(480)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture(scope="session")
def codex_cli(request: pytest.FixtureRequest) -> list[str]:
    """The command that runs the locked Codex CLI, installed once per lockfile (npm failing,
    or the installed CLI not running, fails the test: this suite never skips its clients)."""
    # The CLI is a JS launcher; the program is a native binary in a per-platform optional
    # dependency, which npm leaves out silently when it cannot install it.
    native = None
    if sys.platform == "linux" and platform.machine() == "x86_64":
        native = Path(
            "node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex"
        )

    def installed(target: Path) -> bool:
        package = target / "node_modules" / "@openai" / "codex" / "package.json"
        return package.is_file() and (native is None or (target / native).is_file())

    target = npm_project(request, CODEX_DIR, "codex", installed, timeout=400)
    if native is not None and not (target / native).is_file():
        pytest.fail(f"npm ci left out @openai/codex-linux-x64 ({target / native} is missing)")
    package = target / "node_modules" / "@openai" / "codex"
    command = [str(shutil.which("node")), str(package / "bin" / "codex.js")]
    version = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, timeout=60, env=_bare_env()
    )
    if version.returncode != 0 or version.stdout.split() != ["codex-cli", CODEX_VERSION]:
        pytest.fail(
            f"the installed Codex CLI does not run (exit {version.returncode}):\n"
            f"{version.stdout}\n{version.stderr}"
        )
    return command


def _bare_env() -> dict[str, str]:
    """Only what Codex needs from this process's environment (no keys, no proxies)."""
    return {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}


class BlackHole:
    """A proxy that records the first line of each connection (``CONNECT host:443 ...``)
    and closes it: set as every proxy variable, it keeps Codex off the network."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.05)
        self._closed = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:  # the poll timed out, or the listener closed
                continue
            with connection:
                connection.settimeout(2)
                try:
                    self.seen.append(connection.recv(512).split(b"\r\n", 1)[0].decode("latin-1"))
                except OSError as error:
                    self.seen.append(f"(nothing read: {error})")

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        self._listener.close()


@contextmanager
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


class CodexRun:
    """One ``codex exec --json``: its exit code, output and JSONL events."""

    def __init__(self, returncode: int, stdout: str, stderr: str, outbound: list[str]) -> None:
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.outbound = outbound  # what reached the black-hole proxy
        self.events = [json.loads(line) for line in stdout.splitlines() if line[:1] == "{"]

    def items(self, kind: str) -> list[dict[str, Any]]:
        return [
            event["item"]
            for event in self.events
            if event.get("type") == "item.completed" and event["item"].get("type") == kind
        ]

    def event(self, kind: str) -> dict[str, Any]:
        found = [event for event in self.events if event.get("type") == kind]
        assert found, f"no {kind} event in Codex's output:\n{self.stdout}\n{self.stderr}"
        return found[-1]

    def __str__(self) -> str:
        return f"codex exec exited {self.returncode}\n{self.stdout}\n{self.stderr}"


def codex_exec(
    cli: list[str],
    gateway: Gateway,
    home: Path,
    prompt: str,
    *,
    model: str,
    sandbox: str = "read-only",
) -> CodexRun:
    """``codex exec`` in ``home/work`` against the gateway, with a fresh ``CODEX_HOME``."""
    codex_home, workdir = home / "codex_home", home / "work"
    codex_home.mkdir()
    workdir.mkdir()
    template = (CODEX_DIR / "config.toml").read_text(encoding="utf-8")
    config = template.replace("@BASE_URL@", gateway.url + "/v1").replace("@MODEL@", model)
    (codex_home / "config.toml").write_text(config, encoding="utf-8")
    with black_hole() as hole:
        env = {
            **_bare_env(),
            "HOME": str(home),
            "CODEX_HOME": str(codex_home),
            "LLMB_KEY": KEY,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            env[name] = env[name.lower()] = hole.url
        command = [*cli, "exec", "--json", "--ephemeral", "--strict-config"]
        command += ["--skip-git-repo-check", "--sandbox", sandbox, "--color", "never"]
        command += ["-C", str(workdir), prompt]
        # Its own process group: the JS launcher runs the native binary as a child, and a
        # timeout must end both.
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, stderr = process.communicate(timeout=CODEX_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            stdout, stderr = process.communicate()
            pytest.fail(f"codex exec took over {CODEX_TIMEOUT} s:\n{stdout}\n{stderr}")
        time.sleep(0.2)  # a connection accepted just now gets its line read
    run = CodexRun(process.returncode, stdout, stderr, list(hole.seen))
    SUITE_TEXTS.append(run.stdout + run.stderr)
    return run


# --------------------------------------------------------------------------- the gateway


@pytest.fixture
def fake() -> FakeZhipu:
    return FakeZhipu(api_key=ZHIPU_KEY)


@pytest.fixture
def gateway(fake: FakeZhipu, tmp_path: Path) -> Iterator[Gateway]:
    with serve(fake) as upstream:
        gw = Gateway(tmp_path, upstream, models=CODEX_MODELS, keys=CODEX_KEY)
        try:
            yield gw
        finally:
            gw.stop()


def text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if part.get("type") == "text")
    return content or ""


# --------------------------------------------------------------------------- the tests


def test_codex_exec_answers_through_the_gateway(
    codex_cli: list[str], gateway: Gateway, fake: FakeZhipu, tmp_path: Path
) -> None:
    fake.reply("Hello from GLM, by way of llm-bridge!", chunk_size=5)
    run = codex_exec(codex_cli, gateway, tmp_path, "Say hello to llm-bridge.", model="codex-glm")
    assert run.returncode == 0, run
    assert [m["text"] for m in run.items("agent_message")] == [
        "Hello from GLM, by way of llm-bridge!"
    ]
    usage = run.event("turn.completed")["usage"]
    assert usage["input_tokens"] > 1000 and usage["output_tokens"] > 0
    assert run.outbound == [], f"Codex tried to reach past the gateway: {run.outbound}"

    (body,) = bodies(fake)
    assert body["model"] == "glm-4-flash" and body["stream"] is True
    messages = body["messages"]
    # Codex's base instructions are a developer item; Zhipu has no developer role.
    assert {m["role"] for m in messages} == {"system", "user"}
    assert messages[0]["role"] == "system"
    assert text_of(messages[0]).startswith("You are a coding agent running in the Codex CLI")
    environment = [m for m in messages if "<environment_context>" in text_of(m)]
    assert environment and environment[0]["role"] == "user"
    assert f"<cwd>{tmp_path / 'work'}</cwd>" in text_of(environment[0])
    assert messages[-1]["role"] == "user"
    assert text_of(messages[-1]) == "Say hello to llm-bridge."
    functions = [tool for tool in body["tools"] if tool["type"] == "function"]
    tools = {tool["function"]["name"] for tool in functions}
    assert {"exec_command", "write_stdin", "view_image"} <= tools
    # Its sub-agent namespace, flattened; its web_search, as GLM's own search tool.
    assert {"multi_agent_v1__spawn_agent", "multi_agent_v1__close_agent"} <= tools
    assert [t for t in body["tools"] if t["type"] != "function"] == [
        {"type": "web_search", "web_search": {"enable": True, "search_result": True}}
    ]
    log = gateway.output()
    assert "UnsupportedParameterWarning" not in log and "does not support" not in log

    (entry,) = gateway.entries(1)
    assert (entry.key, entry.model, entry.status) == ("codex", "codex-glm", 200)
    assert (entry.provider, entry.upstream_model) == ("zhipu", "glm-4-flash")
    assert entry.extra == {"route": "/v1/responses"}
    assert entry.prompt_tokens > 1000 and entry.completion_tokens > 0
    assert entry.error_code is None


def test_codex_runs_its_shell_tool_with_a_thinking_glm(
    codex_cli: list[str], gateway: Gateway, fake: FakeZhipu, tmp_path: Path
) -> None:
    call = ToolCallSpec("exec_command", {"cmd": "echo codex-tool-ran"})
    fake.reply(reasoning_content="I should run echo first.", tool_calls=[call])
    fake.reply("The command printed codex-tool-ran.", reasoning_content="It printed it.")
    # The command is a harmless echo in a temporary directory: no sandbox needed (the
    # sandbox would need user namespaces, which containers often lack).
    run = codex_exec(
        codex_cli,
        gateway,
        tmp_path,
        "Run echo codex-tool-ran and tell me what it printed.",
        model="codex-thinker",
        sandbox="danger-full-access",
    )
    assert run.returncode == 0, run
    (command,) = run.items("command_execution")
    assert command["exit_code"] == 0 and command["status"] == "completed"
    assert command["aggregated_output"] == "codex-tool-ran\n"
    assert [r["text"] for r in run.items("reasoning")] == [
        "I should run echo first.",
        "It printed it.",
    ]
    assert [m["text"] for m in run.items("agent_message")] == [
        "The command printed codex-tool-ran."
    ]
    # The second turn resends the first: the fake's prefix cache reports it, Codex sums it.
    assert run.event("turn.completed")["usage"]["cached_input_tokens"] > 0
    assert run.outbound == [], f"Codex tried to reach past the gateway: {run.outbound}"

    first, second = bodies(fake)
    assert first["model"] == second["model"] == "glm-4.7"
    assert second["messages"][: len(first["messages"])] == first["messages"]
    assistant, result = second["messages"][-2:]
    (tool_call,) = assistant["tool_calls"]
    assert tool_call["function"]["name"] == "exec_command"
    assert json.loads(tool_call["function"]["arguments"]) == {"cmd": "echo codex-tool-ran"}
    # Interleaved thinking: GLM wants its reasoning back beside its tool calls, and Codex's
    # reasoning item (summary only, encrypted_content null) carries it.
    assert assistant["reasoning_content"] == "I should run echo first."
    assert result["role"] == "tool" and result["tool_call_id"] == tool_call["id"]
    assert "codex-tool-ran" in result["content"]

    entries = gateway.entries(2)
    assert [(e.model, e.upstream_model, e.status) for e in entries] == [
        ("codex-thinker", "glm-4.7", 200)
    ] * 2
    assert entries[1].cached_tokens > 0


def test_codex_dispatches_a_namespaced_call_from_glm(
    codex_cli: list[str], gateway: Gateway, fake: FakeZhipu, tmp_path: Path
) -> None:
    """GLM calls ``multi_agent_v1__close_agent``; Codex gets ``close_agent`` in namespace
    ``multi_agent_v1`` and runs its own sub-agent tool (closing an agent that does not
    exist is harmless: the tool answers with an error the model reads)."""
    call = ToolCallSpec("multi_agent_v1__close_agent", {"target": "no-such-agent"})
    fake.reply(tool_calls=[call])
    fake.reply("There was no such agent to close.")
    run = codex_exec(
        codex_cli, gateway, tmp_path, "Close the agent no-such-agent.", model="codex-glm"
    )
    assert run.returncode == 0, run
    assert [m["text"] for m in run.items("agent_message")] == ["There was no such agent to close."]
    assert run.outbound == [], f"Codex tried to reach past the gateway: {run.outbound}"

    first, second = bodies(fake)
    assistant, result = second["messages"][-2:]
    (tool_call,) = assistant["tool_calls"]
    # Codex sent its function_call item back with the namespace: the same chat name again.
    assert tool_call["function"]["name"] == "multi_agent_v1__close_agent"
    assert json.loads(tool_call["function"]["arguments"]) == {"target": "no-such-agent"}
    assert result["role"] == "tool" and result["tool_call_id"] == tool_call["id"]
    # Codex ran its close_agent handler, which refuses the id ("invalid agent id
    # no-such-agent: ..."). Without the namespace Codex answers "unsupported call:
    # close_agent" (the plain name is no tool of its own).
    output = text_of(result)
    assert "unsupported call" not in output and "no-such-agent" in output, output
    assert first["tools"] == second["tools"]


def test_a_gateway_refusal_ends_codex_exec_with_the_gateway_message(
    codex_cli: list[str], gateway: Gateway, fake: FakeZhipu, tmp_path: Path
) -> None:
    run = codex_exec(codex_cli, gateway, tmp_path, "Say hello.", model="glm-4-plus")
    assert run.returncode != 0, run
    failed = run.event("turn.failed")["error"]["message"]
    assert "403" in failed and "may not use the model 'glm-4-plus'" in failed
    assert fake.requests == []
    (entry,) = gateway.entries(1)
    assert (entry.status, entry.error_code, entry.model) == (403, "model_not_allowed", "glm-4-plus")
