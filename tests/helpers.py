"""Helpers shared by the test modules (imported as ``helpers``: tests/ is on sys.path).

Clients answered by a fake (`bridge`, `door_client`), chat and embedding calls of either
flavour (`chat`, `embed`, `consume`), what the provider received (`sent`, `bodies`), and
`ProviderChat`, the per-provider set a provider's test module binds to its own names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import warnings
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Union

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge import APIError, UnsupportedParameterWarning

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the same parser, as a package, before 3.11
    import tomli as tomllib

HELLO: Any = [{"role": "user", "content": "你好"}]
MODES = pytest.mark.parametrize("mode", ["sync", "async"])
ZHIPU_ROOT = "https://open.bigmodel.cn/api/paas/v4"
#: The two front doors: ``llm_bridge.OpenAI`` and a plain ``openai.OpenAI`` given
#: ``llm_bridge.http_client()``.
DOORS = ("bridge", "http_client")
by_door = pytest.mark.parametrize("door", DOORS)
PROVIDERS_DIR = Path(__file__).resolve().parents[1] / "providers"
#: The usual HTTP status of each exception class: for error codes documented without one.
CLASS_STATUS = {
    "BadRequestError": 400,
    "AuthenticationError": 401,
    "PermissionDeniedError": 403,
    "NotFoundError": 404,
    "ConflictError": 409,
    "RateLimitError": 429,
    "InternalServerError": 500,
    "APIStatusError": 400,
}


def provider_table(name: str, **options: Any) -> dict[str, Any]:
    """``providers/<name>.toml``, parsed (``options`` go to ``tomllib.loads``, e.g.
    ``parse_float=Decimal`` for prices exactly as written)."""
    return tomllib.loads((PROVIDERS_DIR / f"{name}.toml").read_text("utf-8"), **options)


def float32(vectors: Any) -> Any:
    """Vectors as openai hands them back: it asks for base64 float32 and decodes that, so
    a provider's decimal figures arrive rounded to the nearest float32."""
    if vectors and isinstance(vectors[0], (int, float)):
        return list(array("f", vectors))
    return [float32(v) for v in vectors]


# --------------------------------------------------------------------------- clients


def transport_of(source: Any) -> Any:
    """What answers a client's requests: a transport as it is, a fake's (anything with a
    ``transport()``), or a handler function wrapped in ``httpx.MockTransport``."""
    if isinstance(source, (httpx.BaseTransport, httpx.AsyncBaseTransport)):
        return source
    if hasattr(source, "transport"):
        return source.transport()
    return httpx.MockTransport(source)


def upstream(source: Any, mode: str = "sync") -> Union[httpx.Client, httpx.AsyncClient]:
    """An httpx client of the ``mode``'s flavour answered by ``source`` (see `transport_of`)."""
    if mode == "sync":
        return httpx.Client(transport=transport_of(source))
    return httpx.AsyncClient(transport=transport_of(source))


def bridge(provider: Optional[str], source: Any, *, mode: str = "sync", **options: Any) -> Any:
    """``llm_bridge.OpenAI`` (``AsyncOpenAI`` when ``mode`` is "async") for ``provider``,
    answered by ``source``; ``options`` are the constructor's other arguments."""
    cls = llm_bridge.OpenAI if mode == "sync" else llm_bridge.AsyncOpenAI
    return cls(provider=provider, http_client=upstream(source, mode), **options)


def door_client(
    door: str, fake: Any, *, api_key: str = "id.secret", mode: str = "sync", **options: Any
) -> Any:
    """A Zhipu client through one of the `DOORS`, answered by ``fake``: ``llm_bridge.OpenAI``
    ("bridge") or a plain ``openai.OpenAI`` on Zhipu's root given ``llm_bridge.http_client()``
    ("http_client"); ``options`` go to whichever llm-bridge function builds it."""
    if door == "bridge":
        return bridge("zhipu", fake, mode=mode, api_key=api_key, **options)
    if mode == "sync":
        sync = llm_bridge.http_client(http_client=upstream(fake), **options)
        return openai.OpenAI(api_key=api_key, base_url=ZHIPU_ROOT, http_client=sync)
    bridged = llm_bridge.async_http_client(http_client=upstream(fake, mode), **options)
    return openai.AsyncOpenAI(api_key=api_key, base_url=ZHIPU_ROOT, http_client=bridged)


#: The doors a program written against openai comes through (see `example_makers`).
EXAMPLE_DOORS = ("openai", "llm_bridge")


def example_makers(door: str, fake: Any) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """The client constructors (sync, async) a program written against openai gets through
    ``door``, answered by ``fake``. They pass nothing the program does not: keys and base
    URL come from the environment. "openai" is a plain ``openai.OpenAI`` given
    ``llm_bridge.http_client()``; "llm_bridge" is ``llm_bridge.OpenAI``. ``options`` go to
    the llm-bridge function that builds either."""
    if door == "openai":

        def sync(**options: Any) -> Any:
            bridged = llm_bridge.http_client(http_client=upstream(fake), **options)
            return openai.OpenAI(http_client=bridged)

        def asynchronous(**options: Any) -> Any:
            bridged = llm_bridge.async_http_client(http_client=upstream(fake, "async"), **options)
            return openai.AsyncOpenAI(http_client=bridged)

        return sync, asynchronous

    def bridge_sync(**options: Any) -> Any:
        return llm_bridge.OpenAI(http_client=upstream(fake), **options)

    def bridge_async(**options: Any) -> Any:
        return llm_bridge.AsyncOpenAI(http_client=upstream(fake, "async"), **options)

    return bridge_sync, bridge_async


def npm_project(
    request: pytest.FixtureRequest,
    source: Path,
    name: str,
    installed: Callable[[Path], bool],
    *,
    timeout: float,
) -> Path:
    """A copy of the Node project in ``source`` with its locked packages installed by
    ``npm ci``, once per lockfile (in pytest's cache, else the temporary directory), or
    again when ``installed`` says the install is incomplete. A missing node or npm, or
    npm failing, fails the test: this suite never skips its real clients."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.fail(f"the {name} test needs node and npm on PATH")
    manifest = (source / "package.json").read_bytes()
    lock = (source / "package-lock.json").read_bytes()
    digest = hashlib.sha256(manifest + lock).hexdigest()[:16]
    cache = getattr(request.config, "cache", None)
    if cache is not None:
        target = Path(cache.mkdir(f"node-{name}-{digest}"))
    else:
        target = Path(tempfile.gettempdir()) / f"llm-bridge-node-{name}-{digest}"
        target.mkdir(exist_ok=True)
    if not installed(target):
        shutil.copy(source / "package.json", target)
        shutil.copy(source / "package-lock.json", target)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            pytest.fail(f"npm ci failed in {target}:\n{done.stdout}\n{done.stderr}")
    return target


def sse_payloads(raw: bytes) -> list[str]:
    """Split an OpenAI-framed SSE body into its ``data: `` payloads, asserting the framing
    on the way (each event one ``data: `` line, events apart by a blank line)."""
    text = raw.decode("utf-8")
    assert text.endswith("\n\n")
    blocks = text[:-2].split("\n\n")
    assert all(block.startswith("data: ") and "\n" not in block for block in blocks)
    return [block[len("data: ") :] for block in blocks]


#: Where a client can take a provider's keys from (see `keys_from`).
KEY_SOURCES = ("arguments", "environment", "config")


def keys_from(
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    provider: str,
    api_key: str,
    secret_key: Optional[str] = None,
    *,
    variables: tuple[str, ...] = ("QIANFAN_AK", "QIANFAN_SK"),
) -> dict[str, Any]:
    """The client options that hand ``provider`` its keys through ``source``: constructor
    arguments, the environment (``variables``: the key's, then the secret's when there is
    one) or the config. The environment needs no options."""
    keys = {"api_key": api_key, **({"secret_key": secret_key} if secret_key else {})}
    if source == "arguments":
        return keys
    if source == "environment":
        monkeypatch.setenv(variables[0], api_key)
        if secret_key:
            monkeypatch.setenv(variables[1], secret_key)
        return {}
    return {"config": {"providers": {provider: keys}}}


def credentials_of(c: Any) -> Any:
    """The credentials a client's engine holds for Qianfan."""
    return c._engine.adapter("qianfan").credentials


class Clock:
    """A clock the test moves by hand (set ``now``)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- calls


async def chat(mode: str, c: Any, **params: Any) -> Any:
    """One chat call (``messages`` default: `HELLO`) through a client of either flavour."""
    params.setdefault("messages", HELLO)
    result = c.chat.completions.create(**params)
    return await result if mode == "async" else result


async def embed(mode: str, c: Any, **params: Any) -> Any:
    """One embeddings call through a client of either flavour."""
    result = c.embeddings.create(**params)
    return await result if mode == "async" else result


async def consume(
    stream: Any, errors: Union[type[BaseException], tuple[type[BaseException], ...]] = APIError
) -> tuple[list[Any], Optional[BaseException]]:
    """Every chunk of a stream of either flavour, and the error (one of ``errors``) that
    ended it, if any."""
    chunks: list[Any] = []
    try:
        if hasattr(stream, "__aiter__"):
            async for chunk in stream:
                chunks.append(chunk)
        else:
            for chunk in stream:
                chunks.append(chunk)
    except errors as error:
        return chunks, error
    return chunks, None


def text_of(chunks: Any) -> str:
    """The content of chat chunks (a list, or a sync stream read to its end), joined."""
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)


def openai_answer(request: httpx.Request, text: str, **more: Any) -> httpx.Response:
    """An OpenAI-compatible server's chat answer to ``request`` (its model echoed), saying
    ``text``; ``more`` adds top-level fields (``usage``)."""
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": json.loads(request.read())["model"],
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        **more,
    }
    return httpx.Response(200, json=body)


def sent(fake: Any, index: int = -1) -> dict[str, Any]:
    """The JSON body of a request the fake received (by default its last)."""
    return json.loads(fake.requests[index].content)


def bodies(fake: Any, path: Optional[str] = None) -> list[dict[str, Any]]:
    """The JSON bodies of every request the fake received (only those to ``path`` when
    given), in order."""
    return [
        json.loads(request.content)
        for request in fake.requests
        if path is None or request.url.path == path
    ]


@contextlib.contextmanager
def no_unsupported_warnings() -> Iterator[None]:
    """A context in which an UnsupportedParameterWarning fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnsupportedParameterWarning)
        yield


# --------------------------------------------------------------------------- per provider


@dataclass(frozen=True)
class ProviderChat:
    """Chat calls to one provider's fake through fresh facade clients, sync or async.

    ``fake`` makes a fake with the module's defaults, ``options`` are the clients'
    constructor defaults (keys, config), ``body`` reads the JSON of the chat request a fake
    received last. A provider's test module binds the methods to its own names
    (``create = ZHIPU.create``) so that its tests read as plain calls.
    """

    provider: str
    model: str
    fake: Callable[[], Any]
    options: dict[str, Any] = field(default_factory=dict)
    body: Callable[[Any], dict[str, Any]] = lambda f: f.last_json

    def client(self, source: Any, **options: Any) -> llm_bridge.OpenAI:
        """A sync client answered by ``source`` (a fake, a transport or a handler)."""
        return bridge(self.provider, source, **{**self.options, **options})

    def aclient(self, source: Any, **options: Any) -> llm_bridge.AsyncOpenAI:
        """An async client answered by ``source``."""
        return bridge(self.provider, source, mode="async", **{**self.options, **options})

    def plain_client(self, mode: str) -> Any:
        """A client without an http_client of its own: for respx, which patches httpx."""
        cls = llm_bridge.OpenAI if mode == "sync" else llm_bridge.AsyncOpenAI
        return cls(provider=self.provider, **self.options)

    async def create(self, mode: str, f: Any, *, options: Any = None, **params: Any) -> Any:
        """One chat call through a fresh sync or async client (``options``: client kwargs)."""
        make = self.client if mode == "sync" else self.aclient
        return await self.call(mode, make(f, **(options or {})), **params)

    async def call(self, mode: str, c: Any, **params: Any) -> Any:
        """One chat call (the module's model and `HELLO` by default) through ``c``."""
        params.setdefault("model", self.model)
        return await chat(mode, c, **params)

    async def sent(self, mode: str, f: Any = None, **params: Any) -> dict[str, Any]:
        """The JSON body the provider received for one (successful) call."""
        f = f or self.fake()
        await self.create(mode, f, **params)
        return self.body(f)

    async def stream_chunks(
        self, mode: str, f: Any, **params: Any
    ) -> tuple[list[Any], Optional[BaseException]]:
        """The chunks of one streamed call, and the APIError that ended it, if any."""
        return await consume(await self.create(mode, f, stream=True, **params))


def loopback_server(answer: Callable[[socket.socket, threading.Event], None]) -> Iterator[str]:
    """A loopback server (its Zhipu root) whose every connection is answered by
    ``answer(conn, stop)`` in a thread of its own, after the request is read; ``stop``
    is set when the server closes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    stop = threading.Event()

    def handle(conn: socket.socket) -> None:
        with conn:
            try:
                conn.recv(65536)
                answer(conn, stop)
            except OSError:
                return

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/api/paas/v4"
    finally:
        stop.set()
        listener.close()
