"""``llm-bridge serve`` as a real process on a loopback port, in front of a provider fake on
another (``llm_bridge.testing.serve``), used by real clients: openai's Python client and
the official ``openai`` npm package from Node. SIGTERM lets a stream in flight finish and
flushes the ledger; a killed gateway gives its client an error, not a silent end."""

from __future__ import annotations

import contextlib
import json
import os
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
from typing import Any, Optional

import httpx
import openai
import pytest
from conftest import SUITE_SECRETS, SUITE_TEXTS
from helpers import HELLO, npm_project
from redis_server import RedisServer, free_port

from llm_bridge.gateway import hash_key, read_entries
from llm_bridge.gateway._ledger import IN_PROGRESS
from llm_bridge.gateway._redis import read_ledger
from llm_bridge.testing import FakeZhipu, Fault, LoopbackServer, serve

ZHIPU_KEY = "gwserver.zhipusecret0123456789abcdef"
KEY = "sk-lb-servertestkey-0123456789abcdef"
SUITE_SECRETS.update({ZHIPU_KEY, KEY, hash_key(KEY)})
NODE_DIR = Path(__file__).parent / "node"


class Gateway:
    """A ``llm-bridge serve`` process in front of ``upstream`` (a Zhipu fake).

    ``models`` and ``keys`` replace the config's ``[models]`` table and its key block (the
    default: key ``node-team`` with ``rpm``/``tpm`` limits); ``extra`` adds ``[gateway]``
    settings; ``tables`` adds other tables (``[prices]``, say)."""

    def __init__(
        self,
        workdir: Path,
        upstream: LoopbackServer,
        *,
        grace: int = 10,
        extra: str = "",
        rpm: int = 1000,
        tpm: int = 1000000,
        models: str = 'fast = "zhipu/glm-4-flash"',
        keys: Optional[str] = None,
        tables: str = "",
    ) -> None:
        self.workdir = workdir
        self.ledger = workdir / "ledger.sqlite"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        keys = (
            keys
            or f"""[gateway.keys.node-team]
key_sha256 = "{hash_key(KEY)}"
models = ["fast", "glm-*", "embedding-*"]
rpm = {rpm}
tpm = {tpm}
monthly_budget_cny = 100"""
        )
        config = workdir / "gateway.toml"
        # The SQLite file unless ``extra`` names another ledger.
        ledger = "" if "ledger =" in extra else f'ledger = "{self.ledger}"'
        config.write_text(
            f"""
[providers.zhipu]
api_key = "{ZHIPU_KEY}"
base_url = "{upstream.url}/api/paas/v4"

[models]
{models}

{tables}

[gateway]
{ledger}
{extra}

{keys}
""",
            encoding="utf-8",
        )
        self.log = workdir / "server.log"
        command = [sys.executable, "-m", "llm_bridge.cli", "serve", "--config", str(config)]
        command += ["--port", str(self.port), "--timeout-graceful-shutdown", str(grace)]
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"llm-bridge serve exited early:\n{self.output()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"llm-bridge serve did not become ready:\n{self.output()}")

    def entries(self, count: int, timeout: float = 10) -> list[Any]:
        """The ledger once it holds ``count`` final entries (each request's provisional
        entry is replaced after its answer)."""
        entries: list[Any] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entries = list(read_entries(self.ledger)) if self.ledger.exists() else []
            if len(entries) >= count and ended(entries):
                break
            time.sleep(0.05)
        assert len(entries) == count, entries
        return entries

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(5)
            SUITE_TEXTS.append(self.output())  # the server's whole log: the secret scan
        return code


@contextmanager
def running_gateway(workdir: Path, upstream: LoopbackServer, **kwargs: Any) -> Iterator[Gateway]:
    gateway = Gateway(workdir, upstream, **kwargs)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="module")
def fake() -> FakeZhipu:
    return FakeZhipu(api_key=ZHIPU_KEY)


@pytest.fixture(scope="module")
def gateway(fake: FakeZhipu, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with serve(fake) as upstream, running_gateway(tmp_path_factory.mktemp("gw"), upstream) as gw:
        yield gw


def client(gateway: Gateway, key: str = KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0, timeout=20)


def test_openai_python_client_through_the_gateway(gateway: Gateway, fake: FakeZhipu) -> None:
    fake.reply("你好！").reply("一二三四五六", chunk_size=2).tool_call(
        "get_weather", {"city": "北京"}
    )
    api = client(gateway)
    chat = api.chat.completions.create(model="fast", messages=HELLO)
    assert chat.choices[0].message.content == "你好！" and chat.usage and chat.usage.total_tokens
    chunks = list(api.chat.completions.create(model="fast", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "一二三四五六"
    tools = api.chat.completions.create(
        model="glm-4-flash",
        messages=HELLO,
        tools=[{"type": "function", "function": {"name": "get_weather", "parameters": {}}}],
    )
    call = (tools.choices[0].message.tool_calls or [])[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    vectors = api.embeddings.create(model="embedding-3", input=["一", "二"])
    assert [d.index for d in vectors.data] == [0, 1] and len(vectors.data[0].embedding) > 8
    with pytest.raises(openai.AuthenticationError):
        client(gateway, "sk-lb-not-a-key").models.list()
    with pytest.raises(openai.PermissionDeniedError) as denied:
        api.chat.completions.create(model="qwen-plus", messages=HELLO)
    SUITE_TEXTS.append(str(denied.value))
    assert "fast" in {m.id for m in api.models.list()}
    metrics = httpx.get(gateway.url + "/metrics").text
    SUITE_TEXTS.append(metrics)
    assert 'key="node-team"' in metrics and ZHIPU_KEY not in metrics and KEY not in metrics


def test_the_gateway_runs_on_httptools_and_uvloop(gateway: Gateway) -> None:
    """The [server] extra's C parser and event loop are what the gateway's uvicorn runs on
    (uvicorn picks them when installed, else h11 and asyncio's loop, 0.27 ms a request
    slower here). Read from the process's mapped files: Linux only, as CI is."""
    maps = Path(f"/proc/{gateway.process.pid}/maps").read_text()
    assert "/uvloop/" in maps and "/httptools/" in maps
    assert client(gateway).models.list().data  # and it answers


@pytest.fixture(scope="session")
def node_project(request: pytest.FixtureRequest) -> Path:
    """The Node test project with its locked openai package installed (once per lockfile;
    npm failing fails the test: this suite never skips its real clients)."""
    target = npm_project(
        request,
        NODE_DIR,
        "openai",
        lambda target: (target / "node_modules" / "openai" / "package.json").is_file(),
        timeout=300,
    )
    shutil.copy(NODE_DIR / "gateway_client.mjs", target)
    return target


def test_the_openai_npm_package_through_the_gateway(
    gateway: Gateway, fake: FakeZhipu, node_project: Path
) -> None:
    fake.reply("你好 from the fake").reply("流式回答", chunk_size=1)
    fake.tool_call("get_weather", {"city": "北京"})
    env = {
        **os.environ,
        "GATEWAY_URL": gateway.url + "/v1",
        "GATEWAY_KEY": KEY,
        "GATEWAY_MODEL": "fast",
        "GATEWAY_EMBEDDING_MODEL": "embedding-3",
    }
    done = subprocess.run(
        ["node", "gateway_client.mjs"],
        cwd=node_project,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    SUITE_TEXTS.append(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["chat"]["object"] == "chat.completion"
    assert out["chat"]["content"] == "你好 from the fake"
    assert out["chat"]["usage"]["total_tokens"] > 0
    assert out["stream"]["text"] == "流式回答" and out["stream"]["chunks"] >= 4
    assert out["stream"]["finish_reason"] == "stop"
    assert out["tools"] == {
        "finish_reason": "tool_calls",
        "name": "get_weather",
        "arguments": {"city": "北京"},
    }
    assert out["embeddings"]["count"] == 2 and out["embeddings"]["indexes"] == [0, 1]
    assert out["embeddings"]["dimensions"] > 8
    forbidden = out["forbidden"]
    assert forbidden["status"] == 403 and forbidden["class"] == "PermissionDeniedError"
    assert forbidden["code"] == "model_not_allowed"


REQUEST_ID = "x-llm-bridge-gateway-request-id"


class StreamWatch:
    """A streamed chat read with httpx in a thread: its status, id, body and error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.status: Optional[int] = None
        self.request_id: Optional[str] = None
        self.body = b""
        self.error: Optional[BaseException] = None
        self.first = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        body = {"model": "fast", "messages": HELLO, "stream": True}
        try:
            with httpx.stream(
                "POST",
                self.url + "/v1/chat/completions",
                json=body,
                headers={"Authorization": f"Bearer {KEY}"},
                timeout=30,
            ) as response:
                self.status = response.status_code
                self.request_id = response.headers.get(REQUEST_ID)
                for chunk in response.iter_raw():
                    self.body += chunk
                    self.first.set()
        except httpx.HTTPError as error:
            self.error = error
        finally:
            self.first.set()

    def events(self) -> list[bytes]:
        return [e for e in self.body.split(b"\n\n") if e.strip()]


def test_sigterm_lets_a_stream_finish_flushes_the_ledger_and_a_restart_keeps_it(
    tmp_path: Path,
) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("一二三四五六七八九十", chunk_size=1)
    # The provider sends some of the stream, then pauses 2 s: SIGTERM arrives in between.
    with serve(fake, faults=[Fault.stall_after(300, 2.0)]) as upstream:
        gateway = Gateway(tmp_path, upstream)
        try:
            watch = StreamWatch(gateway.url)
            assert watch.first.wait(15) and watch.error is None
            gateway.process.send_signal(signal.SIGTERM)
            watch.thread.join(20)
            assert watch.status == 200 and watch.error is None, watch.__dict__
            assert watch.body.rstrip().endswith(b"data: [DONE]")
            # uvicorn re-raises the SIGTERM it handled once it has shut down cleanly.
            assert gateway.stop() in (0, -signal.SIGTERM)
            assert "Application shutdown complete." in gateway.output()
        finally:
            gateway.stop()
        (entry,) = read_entries(gateway.ledger)
        assert entry.status == 200 and entry.key == "node-team" and entry.completion_tokens > 0
        # A new process on the same ledger file keeps what the last one wrote.
        with running_gateway(tmp_path, upstream) as second:
            assert client(second).chat.completions.create(model="fast", messages=HELLO).id
        assert len(list(read_entries(gateway.ledger))) == 2


@pytest.mark.parametrize("ledger", ["sqlite", "redis"])
def test_a_gateway_killed_mid_stream_gives_its_client_an_error_and_leaves_one_entry(
    tmp_path: Path, ledger: str
) -> None:
    """SIGKILL mid-stream: the client sees the connection break (never a clean end), and
    the ledger keeps the request once, as admitted and never ended (``in_progress``), in
    the SQLite file and in the Redis stream alike, also after a new gateway has opened
    (and may have recovered) the same ledger.

    The provisional row is written behind the request (no request waits for a commit), so
    the kill comes once it is stored: the rows of the last few milliseconds before a
    SIGKILL are the documented loss, and what is checked is that the stored row is neither
    lost, doubled nor taken for an ended request."""
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("一二三四五六七八九十", chunk_size=1)
    with contextlib.ExitStack() as stack:
        extra, redis_url = "", ""
        if ledger == "redis":
            redis_url = stack.enter_context(RedisServer(tmp_path / "redis").start()).url
            extra = f'state = "{redis_url}"\nledger = "redis"'
        upstream = stack.enter_context(serve(fake, faults=[Fault.stall_after(300, 10.0)]))
        gateway = Gateway(tmp_path, upstream, extra=extra)

        def entries() -> list[Any]:
            if redis_url:
                return read_ledger(redis_url)
            return list(read_entries(gateway.ledger)) if gateway.ledger.exists() else []

        try:
            watch = StreamWatch(gateway.url)
            assert watch.first.wait(15)
            stored = time.monotonic() + 8
            while not entries() and time.monotonic() < stored:
                time.sleep(0.05)
            assert entries(), "the admitted request's provisional row was never stored"
            gateway.process.kill()
            watch.thread.join(20)
        finally:
            gateway.stop(signal.SIGKILL)
        with running_gateway(tmp_path, upstream, extra=extra):
            pass  # a new process opens (and may recover) the same ledger
        after_restart = entries()
    assert watch.status == 200 and isinstance(watch.error, httpx.RemoteProtocolError)
    assert b"[DONE]" not in watch.body
    (entry,) = after_restart
    assert entry.request_id == watch.request_id
    assert (entry.key, entry.model, entry.error_code) == ("node-team", "fast", IN_PROGRESS)


def ended(entries: list[Any]) -> bool:
    """Whether the ledger holds a request's final row (not only its provisional one)."""
    return bool(entries) and all(e.error_code != IN_PROGRESS for e in entries)


def test_a_client_hanging_up_mid_stream_ends_the_request_at_once(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("一二三四五六七八九十", chunk_size=1)
    # The provider stalls 20 s mid-stream; the request must end when the client leaves.
    stalled = serve(fake, faults=[Fault.stall_after(300, 20.0)])
    with stalled as upstream, running_gateway(tmp_path, upstream) as gateway:
        body = {"model": "fast", "messages": HELLO, "stream": True}
        headers = {"Authorization": f"Bearer {KEY}"}
        url = gateway.url + "/v1/chat/completions"
        with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as response:
            assert next(response.iter_raw()).startswith(b"data: ")
        left = time.monotonic()  # the connection is closed here
        entries: list[Any] = []
        while time.monotonic() - left < 10 and not ended(entries):
            time.sleep(0.1)
            entries = list(read_entries(gateway.ledger)) if gateway.ledger.exists() else []
        assert time.monotonic() - left < 5, entries
    (entry,) = entries
    assert (entry.status, entry.error_code) == (499, "client_disconnected")
    assert entry.estimated and entry.completion_tokens > 0


def test_a_client_that_reads_nothing_is_given_up_after_client_write_timeout(
    tmp_path: Path,
) -> None:
    """A client that stops reading a stream would hold it, and the provider call behind
    it, until shutdown: once the sockets' buffers are full the server waits on it."""
    fake = FakeZhipu(api_key=ZHIPU_KEY).reply("字" * 400_000, chunk_size=8)  # ~10 MB of SSE
    with (
        serve(fake) as upstream,
        running_gateway(tmp_path, upstream, extra="client_write_timeout = 1") as gateway,
    ):
        body = json.dumps({"model": "fast", "messages": HELLO, "stream": True}).encode()
        request = (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
            b"authorization: Bearer " + KEY.encode() + b"\r\n"
            b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
        ) + body
        with socket.socket() as client:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            client.connect(("127.0.0.1", gateway.port))
            client.sendall(request)
            assert client.recv(1024).startswith(b"HTTP/1.1 200")
            (entry,) = gateway.entries(1, timeout=60)  # ... and then reads nothing more
            assert (entry.status, entry.error_code) == (499, "client_stalled")
            client.settimeout(30)
            rest = b""
            while piece := client.recv(1 << 20):  # the gateway closed the connection
                rest += piece
    assert b"data: [DONE]" not in rest
    assert "client_write_timeout" in gateway.output()
