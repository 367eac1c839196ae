"""llm-bridge against raw httpx (the floor) and the openai client, on a loopback fake server.

    pip install openai httpx-aiohttp     # optional comparison rows; skipped with a note if missing
    python benchmarks/run.py             # everything, a few minutes on 2 cores; writes results.md
    python benchmarks/run.py --quick     # ~1-minute smoke run; prints only (add --out to write)

    # one llm-bridge loop alone, for a profiler:
    python -m cProfile -s cumtime benchmarks/run.py --loop nonstream --provider zhipu -n 3000
    python -m cProfile -s cumtime benchmarks/run.py --loop stream --provider dashscope -n 20

``openai`` and ``httpx-aiohttp`` are not llm-bridge dependencies: install them in the
benchmark's environment to get the comparison rows (``pip install openai``; the aiohttp rows
need ``pip install httpx-aiohttp``, i.e. llm-bridge's ``[aiohttp]`` extra).

The server (``benchmarks/server.py``) runs in its own process on 127.0.0.1 and speaks the
OpenAI, Zhipu v4, Qianfan v1 (with its OAuth token endpoint) and DashScope native wire
formats from pre-rendered bytes; it is always stopped at the end. For every wire format the
same request is made by

* raw httpx: the exact URL, headers and JSON body llm-bridge's adapter sends (checked at
  start-up against a captured llm-bridge request), then ``response.json()``; streams are read
  with ``iter_lines()`` and every ``data:`` event is ``json.loads``-ed. This is the floor, with
  httpx's defaults (which include keeping response cookies);
* llm-bridge (``llm_bridge.OpenAI(provider=...)``, base URL pointed at the loopback server),
  with its own default client, which keeps no response cookies (see ``_http_clients``): it can
  come out under 1.0x on non-stream and concurrent requests for that reason;
* the ``openai`` client, against the OpenAI-shaped endpoint only.

Measured: cold import time (fresh interpreter, median, minus an empty interpreter; and, with no
budget, the import plus the first client, where llm-bridge pays what it defers), sequential
non-stream latency p50/p99, one 1000-chunk stream consumed whole (median of several), 200
concurrent async requests (``asyncio.gather``, median wall time of several batches) and peak
RSS of a child process making 1000 requests. Clients are interleaved in rounds (rotating
order) so drift and noise hit all of them alike; every row reuses one client and is warmed up.
Every async client is given the same pool limits (llm-bridge's defaults: 1000 connections,
100 keep-alive) so the ratio measures the library, not the pool size.

Nothing here fails: the budget section reports PASS/MISS per line.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results.md"

FORMATS = ("openai", "zhipu", "qianfan", "dashscope")
MODEL = {
    "openai": "gpt-4o-mini",
    "zhipu": "glm-4-flash",
    "qianfan": "ernie-speed-8k",
    "dashscope": "qwen-plus",
}
MESSAGES = [
    {"role": "system", "content": "你是一个乐于助人的助手"},
    {"role": "user", "content": "你好"},
]
TEMPERATURE = 0.7
API_KEY = "bench-key"
SECRET_KEY = "bench-secret"
STREAM_CHUNKS = 1000
CONCURRENCY = 200
RSS_REQUESTS = 1000
POOL = {"max_connections": 1000, "max_keepalive_connections": 100}  # = llm-bridge's defaults

BUDGET = {"import": 1.5, "nonstream": 1.10, "stream": 1.3, "concurrent": 1.0, "rss": 1.3}


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


HAVE_OPENAI = _installed("openai")
HAVE_AIOHTTP = _installed("httpx_aiohttp")

ns = time.perf_counter_ns


# ----------------------------------------------------------------------------- the wire


def base_url(fmt: str, url: str) -> str:
    return {
        "openai": url + "/v1",
        "zhipu": url + "/api/paas/v4",
        "qianfan": url,
        "dashscope": url + "/api/v1",
    }[fmt]


_TOKENS: dict[str, str] = {}


def qianfan_token(url: str) -> str:
    """The raw rows fetch Qianfan's OAuth token once, as llm-bridge does (B1)."""
    if url not in _TOKENS:
        import httpx

        r = httpx.post(
            url + "/oauth/2.0/token",
            params={
                "grant_type": "client_credentials",
                "client_id": API_KEY,
                "client_secret": SECRET_KEY,
            },
        )
        _TOKENS[url] = r.json()["access_token"]
    return _TOKENS[url]


def wire(fmt: str, url: str, stream: bool) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(URL, headers, JSON body) of the request llm-bridge's adapter sends for MESSAGES."""
    headers = {"accept": "text/event-stream" if stream else "application/json"}
    if fmt != "qianfan":
        headers["authorization"] = f"Bearer {API_KEY}"
    if fmt in ("openai", "zhipu"):
        body: dict[str, Any] = {
            "messages": MESSAGES,
            "model": MODEL[fmt],
            "temperature": TEMPERATURE,
        }
        if stream:
            body.update(stream=True, stream_options={"include_usage": True})
        return base_url(fmt, url) + "/chat/completions", headers, body
    if fmt == "qianfan":
        body = {
            "messages": MESSAGES[1:],
            "system": MESSAGES[0]["content"],
            "temperature": TEMPERATURE,
        }
        if stream:
            body["stream"] = True
        endpoint = f"{url}/rpc/2.0/ai_custom/v1/wenxinworkshop/chat/ernie_speed"
        return f"{endpoint}?access_token={qianfan_token(url)}", headers, body
    parameters: dict[str, Any] = {"result_format": "message", "temperature": TEMPERATURE}
    if stream:
        parameters["incremental_output"] = True
        headers["x-dashscope-sse"] = "enable"
    body = {"model": MODEL[fmt], "input": {"messages": MESSAGES}, "parameters": parameters}
    return base_url(fmt, url) + "/services/aigc/text-generation/generation", headers, body


def lb_kwargs(fmt: str, url: str) -> dict[str, Any]:
    if fmt == "qianfan":
        return {
            "provider": "qianfan",
            "api_key": API_KEY,
            "secret_key": SECRET_KEY,
            "config": {
                "providers": {"qianfan": {"base_url": url, "token_url": url + "/oauth/2.0/token"}}
            },
        }
    return {"provider": fmt, "api_key": API_KEY, "base_url": base_url(fmt, url)}


def chunks_header(n: int) -> dict[str, str]:
    return {"x-bench-chunks": str(n)}


# ----------------------------------------------------------------------------- sync rows


class SyncRow:
    """One client on one wire format: ``call()`` one request, ``stream(n)`` one whole stream."""

    def __init__(self, kind: str, fmt: str, url: str) -> None:
        self.kind, self.fmt = kind, fmt
        self.name = {"raw": "raw httpx", "lb": "llm-bridge", "openai": "openai"}[kind]
        model = MODEL[fmt]
        if kind == "raw":
            import httpx

            self.client = httpx.Client()
            u, h, b = wire(fmt, url, False)
            su, sh, sb = wire(fmt, url, True)
            post, client_stream, loads = self.client.post, self.client.stream, json.loads

            def call() -> Any:
                r = post(u, json=b, headers=h)
                if r.status_code != 200:
                    raise RuntimeError(r.text)
                return r.json()

            def stream(n: int) -> int:
                events = 0
                with client_stream("POST", su, json=sb, headers={**sh, **chunks_header(n)}) as r:
                    for line in r.iter_lines():
                        if line.startswith("data:"):
                            data = line[5:].lstrip()
                            if data == "[DONE]":
                                break
                            loads(data)
                            events += 1
                return events
        else:
            if kind == "lb":
                import llm_bridge

                self.client = llm_bridge.OpenAI(**lb_kwargs(fmt, url))
            else:
                import openai

                self.client = openai.OpenAI(api_key=API_KEY, base_url=url + "/v1")
            create = self.client.chat.completions.create

            def call() -> Any:
                return create(model=model, messages=MESSAGES, temperature=TEMPERATURE)

            def stream(n: int) -> int:
                events = 0
                for _ in create(
                    model=model,
                    messages=MESSAGES,
                    temperature=TEMPERATURE,
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers=chunks_header(n),
                ):
                    events += 1
                return events

        self.call, self.stream = call, stream

    def close(self) -> None:
        self.client.close()


def sync_rows(url: str) -> list[SyncRow]:
    rows = []
    for fmt in FORMATS:
        rows.append(SyncRow("raw", fmt, url))
        rows.append(SyncRow("lb", fmt, url))
        if fmt == "openai" and HAVE_OPENAI:
            rows.append(SyncRow("openai", fmt, url))
    return rows


def rotated(items: list, k: int) -> list:
    k %= len(items)
    return items[k:] + items[:k]


def percentile(sorted_values: list[int], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, round(q * (len(sorted_values) - 1)))]


def bench_nonstream(rows: list[SyncRow], rounds: int, per_round: int) -> dict[SyncRow, dict]:
    for row in rows:  # warm up: connections, token, caches
        for _ in range(50):
            row.call()
    samples: dict[SyncRow, list[int]] = {row: [] for row in rows}
    gc.collect()
    for r in range(rounds):
        for row in rotated(rows, r):
            call, out = row.call, samples[row]
            for _ in range(per_round):
                t0 = ns()
                call()
                out.append(ns() - t0)
    result = {}
    for row, values in samples.items():
        values.sort()
        result[row] = {
            "p50": percentile(values, 0.50) / 1e3,
            "p99": percentile(values, 0.99) / 1e3,
            "n": len(values),
        }
    return result


def bench_stream(rows: list[SyncRow], rounds: int) -> dict[SyncRow, dict]:
    for row in rows:
        row.stream(STREAM_CHUNKS)
    samples: dict[SyncRow, list[int]] = {row: [] for row in rows}
    counts: dict[SyncRow, int] = {}
    gc.collect()
    for r in range(rounds):
        for row in rotated(rows, r):
            t0 = ns()
            counts[row] = row.stream(STREAM_CHUNKS)
            samples[row].append(ns() - t0)
    return {
        row: {
            "ms": statistics.median(v) / 1e6,
            "min": min(v) / 1e6,
            "events": counts[row],
            "n": len(v),
        }
        for row, v in samples.items()
    }


# ----------------------------------------------------------------------------- async rows


class AsyncRow:
    def __init__(self, kind: str, fmt: str, url: str, transport: str) -> None:
        import httpx

        self.kind, self.fmt, self.transport = kind, fmt, transport
        label = {"raw": "raw", "lb": "llm-bridge", "openai": "openai"}[kind]
        self.name = f"{label} + {'httpx.AsyncClient' if transport == 'httpx' else 'httpx-aiohttp'}"
        http: Any = None  # llm-bridge and openai build their own default httpx client
        if transport == "aiohttp":
            from httpx_aiohttp import HttpxAiohttpClient

            http = HttpxAiohttpClient(limits=httpx.Limits(**POOL))
        elif kind == "raw":
            http = httpx.AsyncClient(limits=httpx.Limits(**POOL))
        self.http = http
        model = MODEL[fmt]
        if kind == "raw":
            self.client = http
            u, h, b = wire(fmt, url, False)

            async def call() -> Any:
                r = await http.post(u, json=b, headers=h)
                if r.status_code != 200:
                    raise RuntimeError(r.text)
                return r.json()
        else:
            if kind == "lb":
                import llm_bridge

                # The default row lets llm-bridge build its own httpx.AsyncClient.
                extra = {} if http is None else {"http_client": http}
                self.client = llm_bridge.AsyncOpenAI(**lb_kwargs(fmt, url), **extra)
            else:
                import openai

                extra = {} if http is None else {"http_client": http}
                self.client = openai.AsyncOpenAI(api_key=API_KEY, base_url=url + "/v1", **extra)
            create = self.client.chat.completions.create

            async def call() -> Any:
                return await create(model=model, messages=MESSAGES, temperature=TEMPERATURE)

        self.call = call

    async def batch(self, n: int) -> int:
        call = self.call
        t0 = ns()
        await asyncio.gather(*[call() for _ in range(n)])
        return ns() - t0

    async def close(self) -> None:
        if self.kind == "raw":
            await self.client.aclose()
        else:
            await self.client.close()
            if self.http is not None:  # given to the client, so not closed by it
                await self.http.aclose()


async def bench_concurrent(url: str, rounds: int) -> dict[AsyncRow, dict]:
    rows = []
    for fmt in FORMATS:
        transports = ["httpx"] + (["aiohttp"] if HAVE_AIOHTTP else [])
        for transport in transports:
            rows.append(AsyncRow("raw", fmt, url, transport))
            rows.append(AsyncRow("lb", fmt, url, transport))
        if fmt == "openai" and HAVE_OPENAI:
            rows.append(AsyncRow("openai", fmt, url, "httpx"))
    try:
        for row in rows:
            # httpx's pool takes seconds over its second and third bursts of 200 fresh
            # connections (raw and llm-bridge alike); from the fourth on it is steady.
            for _ in range(4):
                await row.batch(CONCURRENCY)
        samples: dict[AsyncRow, list[int]] = {row: [] for row in rows}
        gc.collect()
        for r in range(rounds):
            for row in rotated(rows, r):
                samples[row].append(await row.batch(CONCURRENCY))
        return {
            row: {"ms": statistics.median(v) / 1e6, "min": min(v) / 1e6, "n": len(v)}
            for row, v in samples.items()
        }
    finally:
        for row in rows:
            await row.close()


# ----------------------------------------------------------------------------- child processes


def child_env(cache_dir: str) -> dict[str, str]:
    """Children compile bytecode once into a private cache (``PYTHONPYCACHEPREFIX``) and reuse it,
    as an installed package does, even where ``PYTHONDONTWRITEBYTECODE`` is set (an editable
    checkout would otherwise be compiled from source on every import)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = cache_dir
    return env


#: The import and the first client, together: llm-bridge defers pydantic, the config and
#: the engine from the import to the first client, so this is where they are paid.
HTTPX_CLIENT_STATEMENT = "import httpx; httpx.Client()"
CLIENT_STATEMENTS = [
    HTTPX_CLIENT_STATEMENT,
    "from llm_bridge import OpenAI; OpenAI(provider='zhipu', api_key='id.secret')",
]
OPENAI_CLIENT_STATEMENT = "import openai; openai.OpenAI(api_key='k')"


def import_times(runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median wall time of ``python -c STATEMENT`` minus an empty interpreter's, in ms.

    ``from llm_bridge import OpenAI`` is timed too: ``import llm_bridge`` may defer work to
    first attribute access, and the drop-in line is what every user runs."""
    statements = ["import httpx", "import llm_bridge", "from llm_bridge import OpenAI"]
    if HAVE_OPENAI:
        statements.append("import openai")
    statements += CLIENT_STATEMENTS
    if HAVE_OPENAI:
        statements.append(OPENAI_CLIENT_STATEMENT)
    codes = {"(empty)": "pass", **{st: st for st in statements}}
    samples: dict[str, list[int]] = {k: [] for k in codes}
    names = list(codes)
    for name in names:  # warm the page cache and the .pyc files
        subprocess.run([sys.executable, "-c", codes[name]], check=True, env=env)
    for r in range(runs):
        for name in rotated(names, r):
            t0 = ns()
            subprocess.run([sys.executable, "-c", codes[name]], check=True, env=env)
            samples[name].append(ns() - t0)
    empty = statistics.median(samples["(empty)"])
    out = {
        name: (statistics.median(v) - empty) / 1e6
        for name, v in samples.items()
        if name != "(empty)"
    }
    out["(empty interpreter)"] = empty / 1e6
    return out


def rss_child(kind: str, fmt: str, url: str, n: int) -> None:
    """In a child process: n sequential requests, then print peak RSS (KiB)."""
    import resource

    row = SyncRow(kind, fmt, url) if kind != "none" else None
    if row is not None:
        for _ in range(n):
            row.call()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)


def rss(url: str, runs: int, env: dict[str, str]) -> dict[tuple[str, str], float]:
    cases = [("none", "openai")]
    for fmt in FORMATS:
        cases += [("raw", fmt), ("lb", fmt)]
        if fmt == "openai" and HAVE_OPENAI:
            cases.append(("openai", fmt))
    samples: dict[tuple[str, str], list[int]] = {c: [] for c in cases}
    for r in range(runs):
        for kind, fmt in rotated(cases, r):
            # Started through sh: Linux carries the parent's peak RSS over fork+exec into
            # ru_maxrss, so the child is forked from a small process, not from this one.
            child = [sys.executable, __file__, "--rss-child", kind, fmt, url, str(RSS_REQUESTS)]
            out = subprocess.run(
                ["sh", "-c", '"$@"; exit $?', "sh", *child],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            )
            samples[(kind, fmt)].append(int(out.stdout.strip().splitlines()[-1]))
    return {c: statistics.median(v) / 1024 for c, v in samples.items()}


# ----------------------------------------------------------------------------- wire check


def wire_check(url: str) -> list[str]:
    """Capture what llm-bridge sends and compare with what the raw rows send."""
    import httpx

    import llm_bridge

    problems = []
    for fmt in FORMATS:
        for stream in (False, True):
            seen: list[httpx.Request] = []
            http = httpx.Client(event_hooks={"request": [seen.append]})
            client = llm_bridge.OpenAI(**lb_kwargs(fmt, url), http_client=http)
            kwargs: dict[str, Any] = {
                "model": MODEL[fmt],
                "messages": MESSAGES,
                "temperature": TEMPERATURE,
            }
            if stream:
                kwargs.update(
                    stream=True,
                    stream_options={"include_usage": True},
                    extra_headers=chunks_header(3),
                )
                for _ in client.chat.completions.create(**kwargs):
                    pass
            else:
                client.chat.completions.create(**kwargs)
            client.close()
            request = [r for r in seen if "/oauth/" not in r.url.path][-1]
            u, h, b = wire(fmt, url, stream)
            where = f"{fmt} {'stream' if stream else 'non-stream'}"
            if str(request.url) != u:
                problems.append(f"{where}: URL {request.url} != {u}")
            if json.loads(request.content) != b:
                problems.append(
                    f"{where}: body {request.content.decode()} != "
                    + json.dumps(b, ensure_ascii=False)
                )
            for k, v in h.items():
                if request.headers.get(k) != v:
                    problems.append(f"{where}: header {k}: {request.headers.get(k)!r} != {v!r}")
    return problems


# ----------------------------------------------------------------------------- report


def fmt_ratio(x: Optional[float]) -> str:
    return "" if x is None else f"{x:.2f}×"


def table(header: list[str], rows: list[list[str]], left: int = 2) -> list[str]:
    align = ["---" if i < left else "---:" for i in range(len(header))]
    return [
        "| " + " | ".join(header) + " |",
        "| " + " | ".join(align) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def machine() -> list[str]:
    import httpx

    import llm_bridge

    versions = [f"httpx {httpx.__version__}", f"llm-bridge {llm_bridge.__version__}"]
    if HAVE_OPENAI:
        import openai

        versions.append(f"openai {openai.__version__}")
    if HAVE_AIOHTTP:
        from importlib.metadata import version

        versions.append(f"httpx-aiohttp {version('httpx-aiohttp')}")
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()
        if commit:
            versions[1] += f" (commit {commit}, plus any uncommitted changes)"
    except OSError:
        pass
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 0
    return [
        f"- date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- machine: {platform.system()} {platform.machine()}, nproc {cpus}, "
        f"Python {platform.python_version()} ({platform.python_implementation()})",
        f"- versions: {', '.join(versions)}",
        "- load average when the run ended: "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
        + " (other work on the machine shows up as noise, mostly in p99 and the async batches)",
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="about a minute; prints only")
    ap.add_argument(
        "--out", type=Path, help=f"write markdown here (default for a full run: {RESULTS})"
    )
    ap.add_argument(
        "--loop", choices=["nonstream", "stream"], help="run one llm-bridge loop (for a profiler)"
    )
    ap.add_argument("--provider", choices=FORMATS, default="zhipu")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument(
        "--rss-child", nargs=4, metavar=("KIND", "FMT", "URL", "N"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()

    if args.rss_child:
        kind, fmt, url, n = args.rss_child
        rss_child(kind, fmt, url, int(n))
        return

    sys.path.insert(0, str(HERE))
    from server import BenchServer

    if args.loop:
        with BenchServer() as srv:
            row = SyncRow("lb", args.provider, srv.url)
            t0 = ns()
            for _ in range(args.n):
                row.call() if args.loop == "nonstream" else row.stream(STREAM_CHUNKS)
            dt = (ns() - t0) / 1e6
            row.close()
        print(f"{args.loop} {args.provider}: {args.n} in {dt:.0f} ms ({dt / args.n:.3f} ms each)")
        return

    quick = args.quick
    p = {
        "import_runs": 7 if quick else 15,
        "ns_rounds": 4 if quick else 20,
        "ns_per_round": 50 if quick else 100,
        "stream_rounds": 3 if quick else 25,
        "conc_rounds": 2 if quick else 20,
        "rss_runs": 1 if quick else 3,
    }
    out_path = args.out or (None if quick else RESULTS)
    notes = []
    if not HAVE_OPENAI:
        notes.append("openai is not installed: the openai rows are skipped (pip install openai).")
    if not HAVE_AIOHTTP:
        notes.append(
            "httpx-aiohttp is not installed: the aiohttp rows are skipped "
            "(pip install httpx-aiohttp, or llm-bridge-cn[aiohttp])."
        )
    for n in notes:
        print("note:", n)

    started = time.monotonic()

    def stage(name: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {name}", file=sys.stderr, flush=True)

    cache_dir = tempfile.mkdtemp(prefix="llm-bridge-bench-pycache-")
    env = child_env(cache_dir)
    try:
        with BenchServer() as srv:
            url = srv.url
            stage(f"server on {url}; wire check")
            problems = wire_check(url)
            for problem in problems:
                print("wire check MISMATCH:", problem)
            stage("import times")
            imports = import_times(p["import_runs"], env)
            rows = sync_rows(url)
            try:
                stage(
                    f"non-stream: {len(rows)} rows x {p['ns_rounds'] * p['ns_per_round']} requests"
                )
                nonstream = bench_nonstream(rows, p["ns_rounds"], p["ns_per_round"])
                stage(f"stream: {len(rows)} rows x {p['stream_rounds']} streams of {STREAM_CHUNKS}")
                stream = bench_stream(rows, p["stream_rounds"])
            finally:
                for row in rows:
                    row.close()
            stage(f"{CONCURRENCY} concurrent async requests x {p['conc_rounds']} rounds")
            concurrent = asyncio.run(bench_concurrent(url, p["conc_rounds"]))
            stage(f"peak RSS: children making {RSS_REQUESTS} requests x {p['rss_runs']}")
            peak = rss(url, p["rss_runs"], env)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    stage("done; server stopped")
    elapsed = time.monotonic() - started

    # ---- tables
    lines = ["# llm-bridge performance benchmark", ""]
    cmd = "python benchmarks/run.py" + (" --quick" if quick else "")
    lines += [
        f"Produced by `{cmd}` ({elapsed:.0f} s). Ratios are to raw httpx on the same wire "
        "format (the floor: same URL, headers and body, `response.json()`).",
        "",
    ]
    lines += [*machine(), ""]
    if problems:
        lines += ["**Wire check mismatches** (raw rows do not send what llm-bridge sends):", ""]
        lines += [f"- {x}" for x in problems] + [""]
    for n in notes:
        lines += [f"> note: {n}", ""]

    budget: list[tuple[str, float, float]] = []  # (line, ratio, limit)

    lines += [
        "## Cold import",
        "",
        f'Fresh interpreter `python -c "<statement>"`, median of '
        f"{p['import_runs']}, minus an empty interpreter "
        f"({imports['(empty interpreter)']:.1f} ms).",
        "",
    ]
    base = imports["import httpx"]
    trs = []
    clients = [*CLIENT_STATEMENTS, OPENAI_CLIENT_STATEMENT]
    for statement, ms in imports.items():
        if statement.startswith("(") or statement in clients:
            continue
        trs.append([f"`{statement}`", f"{ms:.1f} ms", fmt_ratio(ms / base)])
        if "llm_bridge" in statement:
            budget.append((f"`{statement}` ≤ 1.5× `import httpx`", ms / base, BUDGET["import"]))
    lines += [*table(["statement", "time", "× import httpx"], trs, left=1), ""]
    lines += [
        "Import and first client together (no budget: shown because llm-bridge loads pydantic,",
        "the configuration and the engine when the first client is made, not at import):",
        "",
    ]
    client_base = imports[HTTPX_CLIENT_STATEMENT]
    trs = [
        [f"`{st}`", f"{imports[st]:.1f} ms", fmt_ratio(imports[st] / client_base)]
        for st in clients
        if st in imports
    ]
    lines += [*table(["statement", "time", "× httpx client"], trs, left=1), ""]

    def raw_of(results: dict, fmt: str) -> Any:
        return next(
            r
            for r in results
            if r.fmt == fmt and r.kind == "raw" and getattr(r, "transport", "httpx") == "httpx"
        )

    n_ns = next(iter(nonstream.values()))["n"]
    lines += [
        "## Non-stream request latency",
        "",
        f"{n_ns} sequential requests per row (one client, keep-alive), in µs.",
        "",
    ]
    trs = []
    for row, v in nonstream.items():
        raw = nonstream[raw_of(nonstream, row.fmt)]
        trs.append(
            [
                row.fmt,
                row.name,
                f"{v['p50']:.0f}",
                f"{v['p99']:.0f}",
                fmt_ratio(v["p50"] / raw["p50"]),
                fmt_ratio(v["p99"] / raw["p99"]),
            ]
        )
        if row.kind == "lb":
            budget.append(
                (f"non-stream p50, {row.fmt} ≤ 1.10×", v["p50"] / raw["p50"], BUDGET["nonstream"])
            )
    header = ["wire format", "client", "p50 µs", "p99 µs", "p50 × raw", "p99 × raw"]
    lines += [*table(header, trs), ""]

    lines += [
        "## One 1000-chunk stream",
        "",
        f"A {STREAM_CHUNKS}-event SSE stream consumed whole; median (and best) of "
        f"{p['stream_rounds']}, in ms. Raw httpx iterates lines and `json.loads` each event.",
        "",
    ]
    trs = []
    for row, v in stream.items():
        raw = stream[raw_of(stream, row.fmt)]
        trs.append(
            [
                row.fmt,
                row.name,
                f"{v['ms']:.1f}",
                f"{v['min']:.1f}",
                str(v["events"]),
                fmt_ratio(v["ms"] / raw["ms"]),
            ]
        )
        if row.kind == "lb":
            budget.append((f"stream, {row.fmt} ≤ 1.3×", v["ms"] / raw["ms"], BUDGET["stream"]))
    header = ["wire format", "client", "median ms", "best ms", "events/chunks", "× raw"]
    lines += [*table(header, trs), ""]

    lines += [
        "## 200 concurrent async requests",
        "",
        f"`asyncio.gather` of {CONCURRENCY} requests; median (and best) wall time of "
        f"{p['conc_rounds']} batches, in ms. Every client has the same pool limits "
        f"({POOL['max_connections']} connections, {POOL['max_keepalive_connections']} keep-alive)"
        ". Ratios of medians, and of bests in the `(best)` columns: httpx's own pool stalls on"
        " some bursts and other work on the machine lands in single batches, so the httpx"
        " medians are noisy and the best-of ratios are the steadier comparison.",
        "",
    ]
    trs = []
    for row, v in concurrent.items():
        raw = concurrent[raw_of(concurrent, row.fmt)]
        raw_aio = next(
            (
                concurrent[r]
                for r in concurrent
                if r.fmt == row.fmt and r.kind == "raw" and r.transport == "aiohttp"
            ),
            None,
        )
        trs.append(
            [
                row.fmt,
                row.name,
                f"{v['ms']:.0f}",
                f"{v['min']:.0f}",
                fmt_ratio(v["ms"] / raw["ms"]),
                fmt_ratio(v["min"] / raw["min"]),
                fmt_ratio(v["ms"] / raw_aio["ms"]) if raw_aio else "n/a",
                fmt_ratio(v["min"] / raw_aio["min"]) if raw_aio else "n/a",
            ]
        )
        if row.kind == "lb":
            budget.append(
                (
                    f"200 concurrent, {row.fmt}, llm-bridge + {row.name.split(' + ')[1]} "
                    "≤ 1.0× raw httpx.AsyncClient",
                    v["ms"] / raw["ms"],
                    BUDGET["concurrent"],
                )
            )
    header = [
        "wire format",
        "client",
        "median ms",
        "best ms",
        "× raw httpx.AsyncClient",
        "(best)",
        "× raw httpx-aiohttp",
        "(best)",
    ]
    lines += [*table(header, trs), ""]

    lines += [
        "## Peak RSS",
        "",
        f"`ru_maxrss` of a child process that imports the client and makes {RSS_REQUESTS} "
        f"requests; median of {p['rss_runs']}, in MiB (an idle interpreter running this "
        f"script: {peak[('none', 'openai')]:.1f} MiB).",
        "",
    ]
    trs = []
    for (kind, fmt), mib in peak.items():
        if kind == "none":
            continue
        ratio = mib / peak[("raw", fmt)]
        trs.append(
            [
                fmt,
                {"raw": "raw httpx", "lb": "llm-bridge", "openai": "openai"}[kind],
                f"{mib:.1f}",
                fmt_ratio(ratio),
            ]
        )
        if kind == "lb":
            budget.append((f"RSS, {fmt} ≤ 1.3×", ratio, BUDGET["rss"]))
    lines += [*table(["wire format", "client", "peak RSS MiB", "× raw"], trs), ""]

    lines += ["## Budget (issue 7)", ""]
    verdicts = [
        [name, f"{ratio:.3f}×", "PASS" if ratio <= limit else "**MISS**"]
        for name, ratio, limit in budget
    ]
    lines += [*table(["line", "ratio", "result"], verdicts, left=1), ""]
    misses = sum(ratio > limit for _, ratio, limit in budget)
    lines += [
        f"{len(budget) - misses} PASS, {misses} MISS. The benchmark only reports; "
        "nothing here fails a build.",
        "",
    ]

    text = "\n".join(lines)
    print(text)
    if out_path:
        out_path.write_text(text, encoding="utf-8")
        print(f"written to {out_path}")
    elif quick:
        print("(quick run: results.md not written; add --out PATH to write one)")


if __name__ == "__main__":
    main()
