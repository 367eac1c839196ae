"""``llm-bridge chat`` as a subprocess against loopback fakes: the answer streamed to stdout,
the usage and cost (from the client's usage record) on stderr, ``--json`` chunks, the
prompt from stdin, exit codes, and the conversation on a terminal (a pseudo-terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from cli_support import DashScopeWithModels, run_cli, toml_string
from conftest import SUITE_SECRETS, SUITE_TEXTS

from llm_bridge.testing import FakeZhipu, serve

ZHIPU_KEY = "chatid.chatsecret0123456789abcdef"
DASHSCOPE_KEY = "sk-chat-0123456789abcdef0123"
SUITE_SECRETS.update({ZHIPU_KEY, DASHSCOPE_KEY})


def zhipu_env(url: str) -> dict[str, str]:
    return {"ZHIPUAI_API_KEY": ZHIPU_KEY, "ZHIPUAI_BASE_URL": url + "/api/paas/v4"}


def test_the_answer_streams_to_stdout_and_the_usage_to_stderr(tmp_path: Path) -> None:
    usage = {"prompt_tokens": 9, "completion_tokens": 7, "total_tokens": 16}
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("你好！我是 GLM。", usage=usage)
    with serve(fake) as server:
        done = run_cli(
            "chat",
            "glm-4-flash",
            "你好",
            "--system",
            "简短回答",
            "--temperature",
            "0.5",
            cwd=tmp_path,
            env=zhipu_env(server.url),
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "你好！我是 GLM。\n"  # the answer alone: pipe it anywhere
    body = json.loads(fake.requests[0].content)
    assert body["stream"] is True and body["temperature"] == 0.5
    assert body["messages"] == [
        {"role": "system", "content": "简短回答"},
        {"role": "user", "content": "你好"},
    ]
    # The provider's own figures (not estimated); glm-4-flash is free.
    assert done.stderr.splitlines() == [
        "[zhipu/glm-4-flash] 9 prompt + 7 completion tokens, 0.000000 CNY"
    ]


def test_the_prompt_comes_from_stdin_and_cost_from_the_catalogue(tmp_path: Path) -> None:
    fake = DashScopeWithModels(DASHSCOPE_KEY, []).reply(
        "Paris.", usage={"prompt_tokens": 1200, "completion_tokens": 300, "total_tokens": 1500}
    )
    with serve(fake) as server:
        (tmp_path / "llm_bridge.toml").write_text(
            "[providers.dashscope]\n"
            f"api_key = {toml_string(DASHSCOPE_KEY)}\n"
            f"base_url = {toml_string(server.url + '/compatible-mode/v1')}\n",
            encoding="utf-8",
        )
        done = run_cli("chat", "dashscope/qwen-plus", cwd=tmp_path, stdin="Capital of France?\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Paris.\n"
    assert json.loads(fake.requests[0].content)["messages"] == [
        {"role": "user", "content": "Capital of France?"}
    ]
    # qwen-plus: 0.8 in, 2 out (CNY per million tokens) in the shipped table.
    cost = (1200 * Decimal("0.8") + 300 * Decimal(2)) / 1_000_000
    assert done.stderr.strip() == (
        f"[dashscope/qwen-plus] 1200 prompt + 300 completion tokens, {cost:.6f} CNY"
    )


def test_json_prints_each_chunk_then_the_usage_record(tmp_path: Path) -> None:
    # (PROMPT after an option, as people type it.)
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("one two three", chunk_size=4)
    with serve(fake) as server:
        done = run_cli(
            "chat", "glm-4-flash", "--json", "hi", cwd=tmp_path, env=zhipu_env(server.url)
        )
    assert done.returncode == 0, done.stderr
    *chunks, usage = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(chunks) > 3 and all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "one two three"
    assert chunks[-1]["usage"]["completion_tokens"] == usage["completion_tokens"]
    assert usage["object"] == "llm_bridge.usage" and usage["provider"] == "zhipu"
    assert usage["cost_cny"] == "0" and usage["estimated"] is False
    assert done.stderr == ""


def test_a_provider_error_exits_1_and_usage_mistakes_exit_2(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key="someone.elsesecret0123456789")
    with serve(fake) as server:
        refused = run_cli("chat", "glm-4-flash", "hi", cwd=tmp_path, env=zhipu_env(server.url))
        unknown = run_cli("chat", "no-such-model", "hi", cwd=tmp_path, env=zhipu_env(server.url))
        empty = run_cli("chat", "glm-4-flash", cwd=tmp_path, env=zhipu_env(server.url), stdin="")
    assert refused.returncode == 1 and refused.stdout == ""
    assert "401" in refused.stderr and ZHIPU_KEY not in refused.stderr
    assert unknown.returncode == 2 and "no-such-model" in unknown.stderr
    assert empty.returncode == 2 and "no prompt" in empty.stderr
    nokey = run_cli("chat", "glm-4-flash", "hi", cwd=tmp_path)
    assert nokey.returncode == 2 and "ZHIPUAI_API_KEY" in nokey.stderr
    assert run_cli("chat", cwd=tmp_path).returncode == 2  # MODEL is required
    two = run_cli("chat", "glm-4-flash", "--json", "one", "two", cwd=tmp_path)
    assert two.returncode == 2 and "unrecognized arguments: one two" in two.stderr


# --------------------------------------------------------------------------- terminal


class Terminal:
    """The command on a pseudo-terminal: what a person at a terminal sees and types."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str]) -> None:
        import pty  # POSIX only

        self.master, slave = pty.openpty()
        full_env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        full_env.update(env, TERM="dumb", NO_COLOR="1", PYTHONIOENCODING="utf-8")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "llm_bridge", *args],
            cwd=cwd,
            env=full_env,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            close_fds=True,
        )
        os.close(slave)
        self.seen = b""

    def read_until(self, text: str, timeout: float = 20) -> str:
        import select

        deadline = time.monotonic() + timeout
        while text.encode() not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"{text!r} did not appear; the terminal shows:\n{self.screen()}")
            ready, _, _ = select.select([self.master], [], [], min(left, 0.2))
            if ready:
                try:
                    self.seen += os.read(self.master, 4096)
                except OSError:  # the process is gone
                    break
        return self.screen()

    def type(self, line: str) -> None:
        os.write(self.master, (line + "\n").encode())

    def screen(self) -> str:
        return self.seen.decode("utf-8", errors="replace")

    def close(self) -> int:
        try:
            return self.process.wait(timeout=20)
        finally:
            if self.process.poll() is None:
                self.process.kill()
            os.close(self.master)
            SUITE_TEXTS.append(self.screen())


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_a_conversation_on_a_terminal_keeps_its_history(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("first answer").reply("second answer")
    with serve(fake) as server:
        terminal = Terminal(["chat", "glm-4-flash"], tmp_path, zhipu_env(server.url))
        try:
            terminal.read_until("> ")
            terminal.type("first question")
            terminal.read_until("[zhipu/glm-4-flash]")
            terminal.type("")  # an empty line is ignored
            terminal.type("second question")
            terminal.read_until("second answer")
            terminal.read_until("CNY", timeout=20)
            terminal.type("/exit")
        finally:
            code = terminal.close()
    assert code == 0, terminal.screen()
    assert "first answer" in terminal.screen() and "/exit" in terminal.screen()
    assert len(fake.requests) == 2  # the empty line sent nothing
    assert json.loads(fake.requests[1].content)["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
