"""``llm-bridge serve`` against the provider fake it fronts, a bare uvicorn app and the litellm
proxy, all on this machine's loopback (issue 16).

    python benchmarks/gateway.py             # the full run, ~6 minutes on 2 cores; writes
                                             # gateway_results.md
    python benchmarks/gateway.py --quick     # ~2 minutes; prints only (add --out to write)
    python benchmarks/gateway.py --no-litellm   # the gateway rows alone

Every server runs in its own process on 127.0.0.1 and is stopped at the end, always:

* **the fake** (``benchmarks/server.py``): pre-rendered answers on the OpenAI and Zhipu wires
  (among others), a few microseconds a request. The floor of every latency. litellm gets
  one of its own (it also calls ``GET /v1/models`` by itself now and then; those calls are
  counted apart), so each fake's hit counts are one server's.
* **the gateway**: ``python -m llm_bridge.cli serve --config F --port P --workers N``, its
  Zhipu provider's ``base_url`` pointing at the fake's Zhipu root, provider calls through
  aiohttp's pool (``upstream = "aiohttp"``, opt-in); the key has ``rpm``,
  ``tpm`` and ``monthly_budget_cny`` (set too high to refuse anything, so every limit is
  checked and every budget reserved and settled) and the default SQLite ledger: the
  configuration the README documents. A second gateway whose key has no limits and whose
  ledger is ``"none"`` (*lean*) shows what those cost; it has no budget line.
* **a bare uvicorn hello-world**: an ASGI function that reads the body and answers 17 bytes
  of JSON, under the same uvicorn, with the same settings (``--workers N``, log level info).
  The memory floor, and uvicorn's own ceiling on this machine.
* **the litellm proxy** (``litellm --config cfg.yaml --port P --num_workers N``), installed
  in a virtualenv of its own (``~/.cache/llm-bridge-bench/litellm-venv``, built from
  ``benchmarks/litellm_env.txt`` when missing or stale), with one model ``openai/gpt-4o-mini``
  whose ``api_base`` is the fake's ``/v1`` and a ``master_key``: no database, so no spend
  tracking, budgets or rate limits (lighter work than the gateway's). Each server keeps its
  own install's defaults (litellm's brings uvloop; ``llm-bridge-cn[server]`` does not).

The load generator is this process: one asyncio loop speaking HTTP/1.1 with keep-alive over
raw streams (pre-rendered request bytes, a minimal response parser), so the client costs
tens of microseconds a request rather than an HTTP library's hundreds, and leaves the two
cores to the servers. Every response must be a 200 whose body has the reply's text (the
hello-world's own bytes for it).

Start-up check: one request through each row, and the fake's per-route hit counts must show
it reached the intended wire (the gateway: Zhipu's; litellm: OpenAI's; the hello-world:
none) with the expected reply. After every measured batch the counts must have grown by
exactly the requests sent through it. A row with a failed request, or wrong counts, is
reported as failed and the script exits non-zero.

Measured, with rows interleaved in rounds (rotating order) so drift and noise hit all alike:

* **added latency**: sequential requests (one connection), p50/p99 of each row, minus the
  fake's called directly (its Zhipu route, the request the gateway receives);
* **throughput**: a fixed number of requests over 50 and 200 connections (each opened and
  warmed with one request first; a new set each batch), requests/s and the server's CPU
  time per request (``/proc``: its processes' user + system time), median of the rounds,
  for 1 and 2 workers; the ratio to litellm is the median of per-round ratios. Each
  *sustained* batch comes right after an untimed priming batch with the same clients (no
  pause between them): a load already going. The gateway is also measured *after idle*: a
  batch once it has served nothing for 6 s (its upstream keep-alive connections expired),
  no priming, so the batch's own first burst meets a cold gateway. The gateway's rate is
  bimodal: when a burst finds too few upstream connections it opens one per request in
  flight, and httpcore's pool, whose bookkeeping grows with the square of its connections,
  then costs several milliseconds of CPU a request, a state the gateway can stay in for the
  whole batch (more often after idle). The CPU/req column tells which state a batch was in;
* **memory**: after all the load, the RSS (``VmRSS``) of every worker process (the server
  itself with 1 worker, the spawned workers with 2), per worker, against the hello-world's.

Budget (issue 16): added p50 <= 1 ms; throughput >= 3x litellm's at each concurrency and
worker count; RSS per worker <= 1.5x the hello-world's. PASS/MISS lines; nothing here fails a
build (a failed request or a wrong route does make the script exit non-zero).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "gateway_results.md"
LITELLM_PIN = HERE / "litellm_env.txt"
LITELLM_VENV = Path.home() / ".cache" / "llm-bridge-bench" / "litellm-venv"
#: litellm releases never to install: 1.82.7 and 1.82.8 were malicious (March 2026).
LITELLM_BANNED = ("1.82.7", "1.82.8")

sys.path.insert(0, str(HERE))
from server import BenchServer  # noqa: E402  (this folder's fake)

#: Seconds a server must have been idle before an "after idle" batch: more than httpx's
#: 5-second keep-alive expiry (the gateway's upstream connections are gone by then).
IDLE = 6.0

#: Issue 16's budget.
ADDED_P50_MS = 1.0
THROUGHPUT_X_LITELLM = 3.0
RSS_X_HELLO = 1.5

CONCURRENCY = (50, 200)
WORKERS = (1, 2)
MESSAGES = [
    {"role": "system", "content": "你是一个乐于助人的助手"},
    {"role": "user", "content": "你好"},
]
PROVIDER_KEY = "bench-key"
LITELLM_MASTER = "sk-bench-litellm-master"
#: Text of the fake's replies (the Zhipu and OpenAI fixtures of benchmarks/server.py).
ZHIPU_TEXT = "我是人工智能助手智谱清言".encode()
OPENAI_TEXT = "有什么可以帮你的吗".encode()
HELLO_BODY = b'{"hello":"world"}'

HELLO_APP = f'''"""A bare ASGI hello-world: read the body, answer 17 bytes of JSON."""

BODY = {HELLO_BODY!r}
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(BODY))]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({{"type": "lifespan.startup.complete"}})
            elif message["type"] == "lifespan.shutdown":
                await send({{"type": "lifespan.shutdown.complete"}})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({{"type": "http.response.start", "status": 200, "headers": HEADERS}})
    await send({{"type": "http.response.body", "body": BODY}})
'''

ns = time.perf_counter_ns

# ----------------------------------------------------------------------------- modes

MODES: dict[str, dict[str, Any]] = {
    # latency: rounds x sequential requests per row per round
    # throughput: rounds; requests per batch at each concurrency
    # sustained batches: max(tp_prime, clients) untimed requests first
    "full": {
        "lat_rounds": 10,
        "lat_per_round": 200,
        "tp_rounds": 4,
        "tp_requests": 800,
        "tp_prime": 200,
        "idle_clients": CONCURRENCY,
    },
    "quick": {
        "lat_rounds": 4,
        "lat_per_round": 100,
        "tp_rounds": 2,
        "tp_requests": 400,
        "tp_prime": 100,
        "idle_clients": (200,),
    },
}


# ----------------------------------------------------------------------------- HTTP/1.1


def post(port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    """The bytes of one keep-alive POST (rendered once, sent many times)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}", "", ""]
    return "\r\n".join(lines).encode() + body


class Conn:
    """One keep-alive connection: send pre-rendered requests, read whole responses."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: Optional[asyncio.StreamReader] = None
        self.writer: Optional[asyncio.StreamWriter] = None

    async def open(self) -> Conn:
        self.reader, self.writer = await asyncio.open_connection(
            "127.0.0.1", self.port, limit=1 << 20
        )
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def call(self, request: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None and self.writer is not None
        self.writer.write(request)
        reader = self.reader
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        chunked = close = False
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = b"close" in value.lower()
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                parts.append((await reader.readexactly(size + 2))[:-2])
            body = b"".join(parts)
        else:
            body = await reader.readexactly(length)
        if close:
            self.close()
        return status, body


# ----------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(workdir: Path) -> dict[str, str]:
    """The servers' environment: no provider keys from ours, the checkout first on the path,
    bytecode compiled once into a private cache (as an installed package has it)."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


class Server:
    """A server process (and its workers), started now; ``stop()`` always ends it."""

    def __init__(
        self,
        name: str,
        command: list[str],
        workdir: Path,
        env: dict[str, str],
        workers: int,
        ready_path: str,
        port: int,
    ) -> None:
        self.name, self.workers, self.ready_path, self.port = name, workers, ready_path, port
        self.log = workdir / f"{name}.log"
        with self.log.open("wb") as log:
            self.proc: Optional[subprocess.Popen] = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stop() reaches its workers
            )
        self.started = time.monotonic()
        self.ready_after: Optional[float] = None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(encoding="utf-8", errors="replace")[-tail:]
        except OSError:
            return ""

    def ready(self) -> bool:
        """Whether every worker has finished its start-up and the ready path answers 200
        (raises if the server exited)."""
        if self.ready_after is not None:
            return True
        if self.proc is None or self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited early:\n{self.output()}")
        if self.output(10**7).count("Application startup complete") < self.workers:
            return False
        try:
            url = f"http://127.0.0.1:{self.port}{self.ready_path}"
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status != 200:
                    return False
        except OSError:
            return False
        self.ready_after = time.monotonic() - self.started
        return True

    def pids(self) -> list[int]:
        assert self.proc is not None
        return [self.proc.pid, *_descendants(self.proc.pid)]

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: the spawned workers, or the server itself."""
        assert self.proc is not None
        children = []
        for pid in _descendants(self.proc.pid):
            cmdline = _cmdline(pid)
            if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
                children.append(pid)
        return children or [self.proc.pid]

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        finally:
            # anything of its group still there (a worker the supervisor left behind)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=5)


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far."""
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_ready(servers: list[Server], deadline: float) -> dict[str, str]:
    """Poll every server until all are ready; returns {name: why} for those that are not."""
    failed: dict[str, str] = {}
    waiting = list(servers)
    while waiting and time.monotonic() < deadline:
        for server in list(waiting):
            try:
                if server.ready():
                    waiting.remove(server)
            except RuntimeError as error:
                failed[server.name] = str(error)
                waiting.remove(server)
        time.sleep(0.2)
    for server in waiting:
        failed[server.name] = f"{server.name} did not become ready:\n{server.output()}"
    return failed


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def gateway_config(workdir: Path, name: str, fake_url: str, key: str, lean: bool) -> Path:
    digest = hashlib.sha256(key.encode()).hexdigest()
    if lean:
        limits = ""
        ledger = 'ledger = "none"'
    else:
        # Far above what the run sends: every limit is checked, nothing is refused.
        limits = "rpm = 100000000\ntpm = 100000000000\nmonthly_budget_cny = 100000000\n"
        ledger = f'ledger = "{workdir / (name + "-ledger.sqlite")}"'
    path = workdir / f"{name}.toml"
    path.write_text(
        f"""[providers.zhipu]
api_key = "{PROVIDER_KEY}"
base_url = "{fake_url}/api/paas/v4"

[models]
fast = "zhipu/glm-4-flash"

[gateway]
{ledger}
upstream = "aiohttp"

[gateway.keys.bench]
key_sha256 = "{digest}"
models = ["fast"]
{limits}""",
        encoding="utf-8",
    )
    return path


def start_gateway(workdir: Path, fake_url: str, key: str, workers: int, lean: bool) -> Server:
    name = f"gateway{'-lean' if lean else ''}-{workers}w"
    config = gateway_config(workdir, name, fake_url, key, lean)
    port = free_port()
    command = [sys.executable, "-m", "llm_bridge.cli", "serve", "--config", str(config)]
    command += ["--port", str(port), "--workers", str(workers)]
    return Server(name, command, workdir, child_env(workdir), workers, "/readyz", port)


def start_hello(workdir: Path, workers: int) -> Server:
    (workdir / "bench_hello.py").write_text(HELLO_APP, encoding="utf-8")
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bench_hello:app", "--app-dir", str(workdir)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--log-level", "info", "--no-server-header"]  # (as llm-bridge serve runs it)
    return Server(f"hello-{workers}w", command, workdir, child_env(workdir), workers, "/", port)


def start_litellm(workdir: Path, venv: Path, fake_url: str, workers: int) -> Server:
    name = f"litellm-{workers}w"
    config = workdir / f"{name}.yaml"
    config.write_text(
        f"""model_list:
  - model_name: fast
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {fake_url}/v1
      api_key: {PROVIDER_KEY}
general_settings:
  master_key: {LITELLM_MASTER}
""",
        encoding="utf-8",
    )
    port = free_port()
    command = [str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--num_workers", str(workers)]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.pop("PYTHONPATH", None)
    # The bundled price table, not a fetch from the internet at start-up (none is reachable).
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    return Server(name, command, workdir, env, workers, "/health/liveliness", port)


# ----------------------------------------------------------------------------- litellm's venv


def litellm_requirement() -> str:
    """The pinned ``litellm[proxy]==X`` line of the pin file (refusing banned releases)."""
    for line in LITELLM_PIN.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("litellm[") or line.startswith("litellm=="):
            version = line.rsplit("==", 1)[1]
            if version in LITELLM_BANNED:
                raise SystemExit(f"{LITELLM_PIN}: litellm {version} is a known-malicious release")
            return line
    raise SystemExit(f"{LITELLM_PIN}: no litellm[proxy]==VERSION line")


def ensure_litellm(rebuild: bool = False) -> tuple[Optional[Path], str]:
    """litellm's own virtualenv, built from the pin file when missing or stale.
    Returns (venv, its litellm version) or (None, why not)."""
    requirement = litellm_requirement()
    digest = hashlib.sha256(LITELLM_PIN.read_bytes()).hexdigest()
    marker = LITELLM_VENV / ".llm-bridge-pin"
    python = LITELLM_VENV / "bin" / "python"
    if not rebuild and marker.is_file() and marker.read_text().strip() == digest:
        return LITELLM_VENV, requirement.rsplit("==", 1)[1]
    print(f"building litellm's virtualenv in {LITELLM_VENV} ({requirement}; about a minute)")
    shutil.rmtree(LITELLM_VENV, ignore_errors=True)
    LITELLM_VENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", None) or sys.executable
    steps = [
        [base, "-m", "venv", str(LITELLM_VENV)],
        [str(python), "-m", "pip", "install", "--quiet", "-r", str(LITELLM_PIN)],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            err = "\n".join(
                line
                for line in (done.stderr + done.stdout).splitlines()
                if not line.startswith("WARNING: Location")
            )
            return None, f"`{' '.join(step[-4:])}` failed: {err.strip()[-600:]}"
    check = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
    )
    version = check.stdout.strip()
    if version in LITELLM_BANNED or version != requirement.rsplit("==", 1)[1]:
        shutil.rmtree(LITELLM_VENV, ignore_errors=True)
        return None, f"the venv holds litellm {version!r}, not the pinned {requirement}"
    marker.write_text(digest)
    return LITELLM_VENV, version


# ----------------------------------------------------------------------------- rows


@dataclass
class Row:
    key: str  # e.g. "gateway-1w"
    label: str
    kind: str  # fake, gateway, lean, litellm, hello
    workers: int
    port: int
    request: bytes
    route: Optional[str]  # the fake's route every request must reach (None: no upstream)
    expect: bytes  # what every answer's body must contain
    fake: BenchServer  # the fake whose hit counts show what the row reached
    server: Optional[Server] = None
    #: routes of the fake the server may also call on its own (litellm's GET /v1/models,
    #: which the fake counts as "404"): not the row's requests, counted apart
    tolerated: frozenset[str] = frozenset()
    side_hits: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def pids(self) -> list[int]:
        if self.server is not None:
            return self.server.pids()
        assert self.fake.proc is not None
        return [self.fake.proc.pid]


KIND_LABELS = {
    "fake": "the fake, called directly (floor)",
    "gateway": "llm-bridge serve",
    "lean": "llm-bridge serve, lean key",
    "litellm": "litellm proxy",
    "hello": "uvicorn hello-world",
}


def chat_body(model: str) -> bytes:
    return json.dumps(
        {"model": model, "messages": MESSAGES, "temperature": 0.7}, ensure_ascii=False
    ).encode()


def make_row(kind: str, server: Optional[Server], fake: BenchServer, key: str) -> Row:
    if kind == "fake":
        request = post(
            fake.port,
            "/api/paas/v4/chat/completions",
            chat_body("glm-4-flash"),
            {"Authorization": f"Bearer {PROVIDER_KEY}"},
        )
        return Row(
            "fake", KIND_LABELS[kind], kind, 0, fake.port, request, "zhipu", ZHIPU_TEXT, fake
        )
    assert server is not None
    tolerated: frozenset[str] = frozenset()
    if kind in ("gateway", "lean"):
        auth, route, expect = key, "zhipu", ZHIPU_TEXT
    elif kind == "litellm":
        auth, route, expect = LITELLM_MASTER, "openai", OPENAI_TEXT
        tolerated = frozenset({"404"})
    else:
        auth, route, expect = "none", None, HELLO_BODY
    headers = {"Authorization": f"Bearer {auth}"}
    request = post(server.port, "/v1/chat/completions", chat_body("fast"), headers)
    label = KIND_LABELS[kind]
    row = Row(
        server.name, label, kind, server.workers, server.port, request, route, expect, fake, server
    )
    row.tolerated = tolerated
    return row


def hits(fake: BenchServer) -> dict[str, int]:
    with urllib.request.urlopen(fake.url + "/_bench/hits", timeout=5) as response:
        return json.loads(response.read())


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    out = {k: after.get(k, 0) - before.get(k, 0) for k in set(before) | set(after)}
    return {k: v for k, v in out.items() if v}


def check_counts(row: Row, before: dict[str, int], after: dict[str, int], sent: int) -> None:
    """The fake saw exactly ``sent`` requests on the row's route, and nothing else (but the
    routes the server may call on its own, counted apart)."""
    seen = delta(before, after)
    for route in row.tolerated & set(seen):
        row.side_hits[route] = row.side_hits.get(route, 0) + seen.pop(route)
    wanted = {row.route: sent} if row.route else {}
    if seen != wanted:
        row.errors.append(f"the fake's hit counts moved by {seen}, expected {wanted}")


async def start_check(rows: list[Row]) -> list[str]:
    """One request through each row: a 200 with the reply's text, on the intended route."""
    problems = []
    for row in rows:
        before = hits(row.fake)
        conn = await Conn(row.port).open()
        try:
            status, body = await asyncio.wait_for(conn.call(row.request), 30)
        except Exception as error:
            problems.append(f"{row.key}: {type(error).__name__}: {error}")
            continue
        finally:
            conn.close()
        after = hits(row.fake)
        if status != 200 or row.expect not in body:
            problems.append(f"{row.key}: {status} {body[:300]!r}")
        check_counts(row, before, after, 1)
        if row.errors:
            problems.append(f"{row.key}: {row.errors.pop()}")
    return problems


# ----------------------------------------------------------------------------- measuring


def rotated(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latency_batch(row: Row, n: int) -> list[int]:
    """``n`` sequential requests on one connection (opened and warmed first), in ns."""
    before = hits(row.fake)
    conn = await Conn(row.port).open()
    times = []
    try:
        status, body = await conn.call(row.request)
        for _ in range(n):
            start = ns()
            status, body = await conn.call(row.request)
            times.append(ns() - start)
            if status != 200 or row.expect not in body:
                row.errors.append(f"latency: {status} {body[:200]!r}")
                break
    except Exception as error:
        row.errors.append(f"latency: {type(error).__name__}: {error}")
    finally:
        conn.close()
    check_counts(row, before, hits(row.fake), n + 1)
    return times


async def throughput_batch(row: Row, concurrency: int, total: int) -> tuple[float, float]:
    """``total`` requests over ``concurrency`` connections (each opened and warmed with one
    request, untimed): (requests per second, the server's CPU µs per request), or zeros if
    any failed."""
    before = hits(row.fake)
    pids = row.pids()
    conns = [Conn(row.port) for _ in range(concurrency)]
    failures: list[str] = []
    remaining = total

    async def warm(conn: Conn) -> None:
        await conn.open()
        status, body = await conn.call(row.request)
        if status != 200 or row.expect not in body:
            failures.append(f"{status} {body[:200]!r}")

    async def client(conn: Conn) -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            try:
                status, body = await conn.call(row.request)
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                failures.append(f"{type(error).__name__}: {error}")
                conn.close()
                continue
            if status != 200 or row.expect not in body:
                failures.append(f"{status} {body[:200]!r}")

    elapsed, cpu = 0, 0.0
    try:
        await asyncio.wait_for(asyncio.gather(*(warm(c) for c in conns)), 120)
        cpu = cpu_seconds(pids)
        start = ns()
        await asyncio.wait_for(asyncio.gather(*(client(c) for c in conns)), 600)
        elapsed = ns() - start
        cpu = cpu_seconds(pids) - cpu
    except Exception as error:
        failures.append(f"{type(error).__name__}: {error}")
    finally:
        for conn in conns:
            conn.close()
    await asyncio.sleep(0.05)  # (let the servers see the connections close)
    if failures:
        row.errors.append(f"{concurrency} clients: {len(failures)} failed, e.g. {failures[0]}")
        return 0.0, 0.0
    check_counts(row, before, hits(row.fake), total + concurrency)
    return total / (elapsed / 1e9), cpu / total * 1e6


async def bench_latency(rows: list[Row], p: dict[str, Any]) -> dict:
    samples: dict[str, list[int]] = {row.key: [] for row in rows}
    for r in range(p["lat_rounds"]):
        for row in rotated(rows, r):
            samples[row.key] += await latency_batch(row, p["lat_per_round"])
    return samples


#: A (row, clients, mode) cell's rates and CPU per request, one pair a round.
Cells = dict[tuple[str, int, str], list[tuple[float, float]]]


async def bench_throughput(rows: list[Row], idle_rows: list[Row], p: dict[str, Any]) -> Cells:
    """Each round: every (row, clients) cell in rotated order, *sustained*: an untimed
    priming batch right before the timed one, so the server is measured in the state a
    steady load keeps it in. And once a round, for each of ``idle_rows`` and
    ``p["idle_clients"]``, *after idle*: a timed batch (no priming) once that server has
    served nothing for IDLE seconds (its upstream keep-alive connections expired); run as
    soon as a server qualifies between the other cells, else at the round's end."""
    results: Cells = {}
    last_used = {row.key: time.monotonic() for row in rows}  # (the latency rounds just ran)
    cells = [(row, c) for c in CONCURRENCY for row in rows]
    total = p["tp_requests"]

    async def measure(row: Row, c: int, mode: str, n: int) -> None:
        rate, cpu = await throughput_batch(row, c, n)
        last_used[row.key] = time.monotonic()
        results.setdefault((row.key, c, mode), []).append((rate, cpu))
        print(
            f"  round {r + 1}: {row.key:>16} x {c:>3} clients, {mode:>9}: {rate:7.0f} req/s, "
            f"{cpu:6.0f} µs CPU/req",
            flush=True,
        )

    def idle_for(row: Row) -> float:
        return time.monotonic() - last_used[row.key]

    for r in range(p["tp_rounds"]):
        pending = [(row, c) for c in p["idle_clients"] for row in idle_rows]
        for row, c in rotated(cells, r):
            for cell in [cell for cell in pending if idle_for(cell[0]) >= IDLE]:
                pending.remove(cell)
                await measure(cell[0], cell[1], "idle", total // 2)
            await throughput_batch(row, c, max(p["tp_prime"], c))
            await measure(row, c, "sustained", total)
        while pending:
            pending.sort(key=lambda cell: -idle_for(cell[0]))
            row, c = pending.pop(0)
            if idle_for(row) < IDLE:
                await asyncio.sleep(IDLE - idle_for(row))
            await measure(row, c, "idle", total // 2)
    return results


def memory(rows: list[Row]) -> dict[str, dict[str, Any]]:
    out = {}
    for row in rows:
        if row.server is None:
            continue
        pids = row.server.worker_pids()
        workers = [rss_kib(pid) for pid in pids]
        supervisor = None if pids == [row.server.proc.pid] else rss_kib(row.server.proc.pid)
        out[row.key] = {"workers": workers, "supervisor": supervisor}
    return out


# ----------------------------------------------------------------------------- report


def table(header: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    align = ["---" if i < left else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def versions(litellm_version: Optional[str]) -> str:
    from importlib.metadata import version

    names = ["llm-bridge-cn", "uvicorn", "httpx", "openai", "h11"]
    found = []
    for name in names:
        with contextlib.suppress(Exception):
            found.append(f"{name} {version(name)}")
    if litellm_version:
        found.append(f"litellm {litellm_version} (its own venv, with its own uvicorn and uvloop)")
    return ", ".join(found)


def report(data: dict[str, Any], mode: str) -> list[str]:
    rows: dict[str, Row] = data["rows"]
    lat: dict[str, list[int]] = data["latency"]
    tp: Cells = data["throughput"]
    mem: dict[str, dict[str, Any]] = data["memory"]
    p = MODES[mode]
    budget: list[tuple[str, str, Optional[bool]]] = []
    out = [
        "# llm-bridge serve: gateway benchmark (issue 16)",
        "",
        f"Produced by `python benchmarks/gateway.py{' --quick' if mode == 'quick' else ''}` "
        f"({data['seconds']:.0f} s). All servers on 127.0.0.1 of this machine; the provider is "
        "the loopback fake (`benchmarks/server.py`). Every row was checked before it was "
        "measured (one request: a 200 with the reply's text, reaching the fake's intended "
        "route), and after every measured batch the fake's hit counts had grown by exactly "
        "the requests sent. What each row is, and how it is measured: the docstring of "
        "`benchmarks/gateway.py`.",
        "",
        f"- date: {data['ended'].strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.system()} {platform.machine()}, nproc {len(os.sched_getaffinity(0))}"
        f", Python {platform.python_version()}; the servers, the fake and the load generator "
        "share the cores",
        f"- versions: {data['versions']}",
        "- load average at the start / end: "
        + ", ".join(f"{x:.2f}" for x in data["load_start"])
        + " / "
        + ", ".join(f"{x:.2f}" for x in data["load_end"]),
        '- gateway config: `upstream = "aiohttp"` (opt-in); key with `rpm`, `tpm`, '
        "`monthly_budget_cny` (never reached) and the "
        'SQLite ledger; *lean*: key without limits, `ledger = "none"`',
        "- litellm config: one model `openai/gpt-4o-mini` with `api_base` = the fake's `/v1`, "
        "a `master_key`, no database (so no spend tracking, budgets or rate limits)",
        "",
    ]
    side = [
        f"{row.label} ({row.workers} worker{'s' if row.workers > 1 else ''}): "
        + ", ".join(f"{n} on the fake's {route!r} route" for route, n in row.side_hits.items())
        for row in rows.values()
        if row.side_hits
    ]
    if side:
        out[-1:-1] = [
            "- requests the servers made of the provider by themselves, counted apart from the "
            "rows' (litellm's `GET /v1/models`, unknown to the fake): " + "; ".join(side)
        ]
    if data.get("litellm_note"):
        out += [f"> **litellm not measured**: {data['litellm_note']}", ""]

    # latency
    floor = lat.get("fake") or []
    out += [
        "## Added latency",
        "",
        f"Sequential requests on one keep-alive connection, {p['lat_rounds']} interleaved "
        f"rounds of {p['lat_per_round']} per row; µs. *Added* is the row's percentile minus the "
        "floor's: the fake called directly on its Zhipu route, which is what the gateway "
        "calls. 1-worker servers.",
        "",
    ]
    body = []
    f50, f99 = (percentile(floor, 0.5) / 1e3, percentile(floor, 0.99) / 1e3) if floor else (0, 0)
    for key, samples in lat.items():
        row = rows[key]
        if not samples or row.errors:
            body.append([row.label, "failed", "", "", ""])
            continue
        p50, p99 = percentile(samples, 0.5) / 1e3, percentile(samples, 0.99) / 1e3
        added = [f"{p50 - f50:+.0f}", f"{p99 - f99:+.0f}"] if key != "fake" else ["", ""]
        body.append([row.label, f"{p50:.0f}", f"{p99:.0f}", *added])
        if row.kind == "gateway":
            ok = (p50 - f50) / 1e3 <= ADDED_P50_MS
            budget.append(
                (f"added p50 latency ≤ {ADDED_P50_MS:g} ms", f"{(p50 - f50) / 1e3:.2f} ms", ok)
            )
    out += [*table(["row", "p50", "p99", "added p50", "added p99"], body), ""]

    # throughput
    prime = f"max({p['tp_prime']}, clients)"
    out += [
        "## Throughput",
        "",
        f"{p['tp_requests']} requests over N connections (opened and warmed with one request "
        f"each first; a new set each batch), {p['tp_rounds']} interleaved rounds; requests/s, "
        "median, and each round's in order. *Sustained*: right after an untimed batch of "
        f"{prime} requests with the same clients (no pause between them). *CPU/req*: the "
        "server's processes' CPU time (user + system, workers "
        "and supervisor) per request, µs, median. *× litellm*: the median over rounds of the "
        "row's rate divided by litellm's (sustained) with the same workers and clients in "
        "that round.",
        "",
    ]
    body = throughput_rows(rows, tp, "sustained", budget)
    header = ["row", "workers", "clients", "req/s", "rounds", "CPU/req", "× litellm"]
    out += [*table(header, body), ""]
    if any(mode == "idle" for _, _, mode in tp):
        out += [
            "### After idle: the first burst",
            "",
            f"The gateway again, {p['tp_requests'] // 2} requests, but each batch only once it "
            f"has served nothing for {IDLE:g} s (longer than httpx's 5 s keep-alive expiry: "
            "its upstream connections are gone), with no priming: the clients' warm-up burst "
            "meets a cold gateway, as traffic after a quiet spell does. Once per round; "
            "*× litellm* against litellm's sustained rate (no budget line).",
            "",
            *table(header, throughput_rows(rows, tp, "idle", None)),
            "",
        ]

    # memory
    out += [
        "## Memory per worker",
        "",
        "`VmRSS` of each worker process after all the load above (with 2 workers, uvicorn's "
        "spawned workers; the supervisor that only watches them is listed apart), MiB. "
        "*× hello* divides the mean worker RSS by the hello-world's with the same workers.",
        "",
    ]
    body = []
    for key, m in sorted(mem.items(), key=lambda kv: (rows[kv[0]].workers, _order(rows[kv[0]]))):
        row = rows[key]
        workers = m["workers"]
        mean = statistics.mean(workers) / 1024
        hello = mem.get(f"hello-{row.workers}w")
        ratio = ""
        if hello and row.kind != "hello":
            x = mean / (statistics.mean(hello["workers"]) / 1024)
            ratio = f"{x:.2f}×"
            if row.kind == "gateway":
                budget.append(
                    (
                        f"RSS per worker ≤ {RSS_X_HELLO:g}× hello-world, {row.workers} worker"
                        f"{'s' if row.workers > 1 else ''}",
                        f"{x:.2f}× ({mean:.0f} MiB)",
                        x <= RSS_X_HELLO,
                    )
                )
        sup = m["supervisor"]
        body.append(
            [
                row.label,
                str(row.workers),
                " / ".join(f"{w / 1024:.1f}" for w in workers),
                f"{mean:.1f}",
                "" if sup is None else f"{sup / 1024:.1f}",
                ratio,
            ]
        )
    out += [
        *table(["row", "workers", "each worker", "mean", "supervisor", "× hello"], body),
        "",
    ]

    # start-up times
    starts = [
        [row.label, str(row.workers), f"{row.server.ready_after:.1f}"]
        for row in sorted(rows.values(), key=lambda r: (r.workers, _order(r)))
        if row.server is not None and row.server.ready_after is not None
    ]
    out += [
        "## Start-up",
        "",
        "Seconds from the command to every worker started and the ready URL answering (the "
        "servers start together, so they share the cores).",
        "",
        *table(["row", "workers", "s"], starts),
        "",
    ]

    failed = [f"- {row.key}: {e}" for row in rows.values() for e in row.errors]
    if failed:
        out += ["## Failures", "", *failed, ""]

    out += [
        "## Budget",
        "",
        *table(
            ["line", "measured", "result"],
            [
                [line, value, "not measured" if ok is None else "PASS" if ok else "**MISS**"]
                for line, value, ok in budget
            ],
        ),
        "",
    ]
    passes = sum(1 for *_, ok in budget if ok is True)
    misses = sum(1 for *_, ok in budget if ok is False)
    unmeasured = sum(1 for *_, ok in budget if ok is None)
    summary = f"{passes} PASS, {misses} MISS"
    if unmeasured:
        summary += f", {unmeasured} not measured"
    out += [summary + ". The benchmark only reports; nothing here fails a build.", ""]
    return out


def throughput_rows(
    rows: dict[str, Row],
    tp: Cells,
    mode: str,
    budget: Optional[list[tuple[str, str, Optional[bool]]]],
) -> list[list[str]]:
    """The table rows of one mode; budget lines for the gateway (when ``budget`` is given)."""
    body = []
    cells = sorted(
        ((key, c) for key, c, m in tp if m == mode), key=lambda kc: (kc[1], _order(rows[kc[0]]))
    )
    for key, c in cells:
        row = rows[key]
        rates = [rate for rate, _ in tp[key, c, mode]]
        cpus = [cpu for _, cpu in tp[key, c, mode]]
        workers = str(row.workers) if row.workers else ""
        line = (
            f"throughput ≥ {THROUGHPUT_X_LITELLM:g}× litellm, {row.workers} worker"
            f"{'s' if row.workers > 1 else ''}, {c} clients"
        )
        if row.errors or not all(rates):
            body.append([row.label, workers, str(c), "failed", "", "", ""])
            if budget is not None and row.kind == "gateway":
                budget.append((line, "gateway failed", False))
            continue
        ratio = ""
        lite = [rate for rate, _ in tp.get((f"litellm-{row.workers}w", c, "sustained"), [])]
        if row.kind in ("gateway", "lean") and lite and all(lite):
            x = statistics.median(a / b for a, b in zip(rates, lite))
            ratio = f"{x:.2f}×"
            if budget is not None and row.kind == "gateway":
                budget.append((line, f"{x:.2f}×", x >= THROUGHPUT_X_LITELLM))
        elif budget is not None and row.kind == "gateway":
            failed = rows.get(f"litellm-{row.workers}w")
            budget.append((line, "litellm failed" if failed else "litellm not measured", None))
        body.append(
            [
                row.label,
                workers,
                str(c),
                f"{statistics.median(rates):.0f}",
                " / ".join(f"{x:.0f}" for x in rates),
                f"{statistics.median(cpus):.0f}",
                ratio,
            ]
        )
    return body


def _order(row: Row) -> int:
    return list(KIND_LABELS).index(row.kind)


# ----------------------------------------------------------------------------- main


def run(args: argparse.Namespace) -> dict[str, Any]:
    p = dict(MODES["quick" if args.quick else "full"])
    started = time.monotonic()
    load_start = os.getloadavg()
    litellm_venv, litellm_note, litellm_version = None, "", None
    if not args.no_litellm:
        litellm_venv, info = ensure_litellm(args.rebuild_litellm)
        if litellm_venv is None:
            litellm_note = f"litellm could not be installed: {info}"
            print(litellm_note, file=sys.stderr)
        else:
            litellm_version = info
    else:
        litellm_note = "left out by --no-litellm"
    key = "sk-lb-bench-" + secrets.token_urlsafe(24)
    workdir = Path(tempfile.mkdtemp(prefix="llm-bridge-gwbench-"))
    servers: list[Server] = []
    try:
        # (litellm gets a fake of its own: it also calls the provider by itself, a GET
        # /v1/models now and then, which must not blur the other rows' hit counts)
        with BenchServer() as fake, BenchServer() as litellm_fake:
            for w in WORKERS:
                servers.append(start_gateway(workdir, fake.url, key, w, lean=False))
                servers.append(start_hello(workdir, w))
                if litellm_venv is not None:
                    servers.append(start_litellm(workdir, litellm_venv, litellm_fake.url, w))
            servers.append(start_gateway(workdir, fake.url, key, 1, lean=True))
            failed = wait_ready(servers, time.monotonic() + 180)
            for name, why in failed.items():
                if not name.startswith("litellm"):
                    raise RuntimeError(why)
                litellm_note = f"the litellm proxy did not start: {why[-1500:]}"
                print(litellm_note, file=sys.stderr)
            if failed:  # one litellm of two (or both) failed: measure neither
                for server in [s for s in servers if s.name.startswith("litellm")]:
                    server.stop()
                    servers.remove(server)
            ready = ", ".join(f"{s.name} ({s.ready_after:.1f} s)" for s in servers)
            print(f"servers ready: {ready}", flush=True)
            kinds = {"gateway": "gateway", "gateway-lean": "lean", "hello": "hello"}
            kinds["litellm"] = "litellm"
            rows = [make_row("fake", None, fake, key)]
            for server in servers:
                kind = kinds[server.name.rsplit("-", 1)[0]]
                own = litellm_fake if kind == "litellm" else fake
                rows.append(make_row(kind, server, own, key))
            by_key = {row.key: row for row in rows}
            problems = asyncio.run(start_check(rows))
            if problems:
                sys.exit("start-up check failed:\n  " + "\n  ".join(problems))
            print("start-up check: every row answers on its intended route", flush=True)

            one = [r for r in rows if r.workers <= 1]
            print("latency ...", flush=True)
            lat = asyncio.run(bench_latency(one, p))
            print("throughput ...", flush=True)
            tp_rows = [r for r in rows if r.kind != "lean" or not args.quick]
            idle_rows = [r for r in rows if r.kind == "gateway"]
            tp = asyncio.run(bench_throughput(tp_rows, idle_rows, p))
            mem = memory(rows)
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return {
        "rows": by_key,
        "latency": lat,
        "throughput": tp,
        "memory": mem,
        "seconds": time.monotonic() - started,
        "ended": datetime.now(timezone.utc),
        "load_start": load_start,
        "load_end": os.getloadavg(),
        "versions": versions(litellm_version),
        "litellm_note": litellm_note,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="~2 minutes; prints only")
    parser.add_argument("--out", help="write the markdown here (the full run: gateway_results.md)")
    parser.add_argument("--no-litellm", action="store_true", help="measure the gateway rows alone")
    parser.add_argument(
        "--rebuild-litellm", action="store_true", help="rebuild litellm's venv from the pin file"
    )
    args = parser.parse_args()
    data = run(args)
    lines = report(data, "quick" if args.quick else "full")
    text = "\n".join(lines)
    print()
    print(text)
    out = args.out or (None if args.quick else str(RESULTS))
    if out:
        Path(out).write_text(text, encoding="utf-8")
        print(f"wrote {out}")
    if any(row.errors for row in data["rows"].values()):
        sys.exit("some requests failed (see Failures)")


if __name__ == "__main__":
    main()
