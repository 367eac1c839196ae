"""``llm-bridge serve``: the OpenAI-compatible gateway under uvicorn (the ``[server]`` extra).

The config is loaded once here, so a mistake in it is reported before any worker starts;
the workers read the same file through ``$LLM_BRIDGE_GATEWAY_CONFIG``.

Several workers are several processes, and a ``state = "memory"`` would give each its own
rate-limit windows and budgets (a key's limits enforced once per worker). So with
``--workers N`` (N > 1) and the memory state, this process makes a SQLite state file in a
fresh temporary directory, names it to the workers in ``$LLM_BRIDGE_GATEWAY_SHARED_STATE``
(their factory, `worker_app`, puts it in place of "memory"), and deletes it when the
server stops: one set of limits for the machine, as lasting as the memory was, with the
budgets still started from the ledger; stored Responses and Qianfan's access token are
shared through the same file. One worker keeps the faster memory state.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ._args import integer

if TYPE_CHECKING:
    from ..gateway import GatewayApp, GatewayConfig

__all__ = ["SHARED_STATE_ENV", "configure", "run", "worker_app"]

#: The SQLite state the workers share in place of ``state = "memory"`` (set by `run`).
SHARED_STATE_ENV = "LLM_BRIDGE_GATEWAY_SHARED_STATE"

#: uvicorn's log levels (its ``LOG_LEVELS``), named here so ``--help`` and a mistake's
#: message need no uvicorn.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

DESCRIPTION = """\
Run the OpenAI-compatible gateway: any openai client (any language) talks to it as to
OpenAI; it holds the provider keys, checks gateway keys, limits and budgets, and records
every request in its usage ledger (llm-bridge usage). Needs the [server] extra:
pip install "llm-bridge-cn[server]".

With --workers N the workers enforce one set of limits and budgets: the config's
[gateway] state, or, when that is "memory", a SQLite file in a temporary directory that
the server deletes when it stops.

exit status: 0 after a clean shutdown, 2 usage or config error, the port in use, or
uvicorn missing"""

EPILOG = """\
examples:
  llm-bridge keys new team-a --models "glm-*"     # then add the printed lines
  llm-bridge serve --config llm_bridge.toml --port 8000 --workers 2"""


def configure(subparsers: Any) -> None:
    """Add ``serve`` to the command's subparsers."""
    parser = subparsers.add_parser(
        "serve",
        help="run the OpenAI-compatible gateway",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", required=True, metavar="FILE", help="the TOML config with a [gateway] table"
    )
    parser.add_argument("--host", default="127.0.0.1", help="default: 127.0.0.1")
    parser.add_argument("--port", type=integer(1, 65535), default=8000, help="default: 8000")
    parser.add_argument(
        "--workers", type=integer(1), default=1, help="worker processes (default 1)"
    )
    parser.add_argument(
        "--timeout-graceful-shutdown",
        type=integer(0),
        default=30,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests (streams) may take to finish",
    )
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        default="info",
        help="uvicorn's: %(choices)s (default: info)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print(
            'llm-bridge serve needs uvicorn: pip install "llm-bridge-cn[server]"', file=sys.stderr
        )
        return 2
    from ..gateway import CONFIG_ENV, load_gateway_config
    from ..gateway._dashboard import SECRET_ENV

    path = Path(args.config).resolve()
    gateway = load_gateway_config(path)[1]  # a config mistake is reported now, not by every worker
    problem = _cannot_listen(args.host, args.port)
    if problem:
        print(f"llm-bridge: {problem}", file=sys.stderr)
        return 2
    shared_dir: Optional[str] = None
    os.environ.pop(SHARED_STATE_ENV, None)
    if args.workers > 1 and gateway.state_kind == "memory":
        shared_dir = _shared_dir(args.workers)
        os.environ[SHARED_STATE_ENV] = str(Path(shared_dir, "state.sqlite"))
    try:
        # The state file opens now (made, or found unusable: a ConfigError, status 2).
        _check_state(_with_shared_state(gateway))
        os.environ[CONFIG_ENV] = str(path)
        # The workers sign dashboard sessions with one secret, so any of them accepts a
        # browser's session (replicas on other machines set the variable themselves).
        os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(32))
        uvicorn.run(
            "llm_bridge.cli._serve:worker_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            lifespan="on",
            timeout_graceful_shutdown=args.timeout_graceful_shutdown,
            log_level=args.log_level,
            server_header=False,
        )
    finally:
        if shared_dir is not None:
            shutil.rmtree(shared_dir, ignore_errors=True)
    return 0


def _shared_dir(workers: int) -> str:
    """A new private directory for the workers' shared state (``$TMPDIR`` or the
    system's temporary directory)."""
    from .._errors import ConfigError

    try:
        return tempfile.mkdtemp(prefix="llm-bridge-state-")
    except OSError as error:
        raise ConfigError(
            f"--workers {workers}: cannot make a directory for the workers' shared limits in "
            f"{tempfile.gettempdir()}: {error.strerror} (set TMPDIR, or [gateway] state)"
        ) from None


def worker_app() -> GatewayApp:
    """The app factory uvicorn's workers call (``--factory``): the config file
    ``$LLM_BRIDGE_GATEWAY_CONFIG`` names, its memory state replaced by the SQLite file
    ``$LLM_BRIDGE_GATEWAY_SHARED_STATE`` names when `run` made one."""
    from ..gateway import CONFIG_ENV, GatewayApp, load_gateway_config

    config, gateway = load_gateway_config(os.environ[CONFIG_ENV])
    return GatewayApp(config, _with_shared_state(gateway))


def _with_shared_state(gateway: GatewayConfig) -> GatewayConfig:
    """``gateway`` with the workers' shared SQLite state in place of a memory state, when
    `run` made one."""
    from ..gateway._config import SQLITE_PREFIX

    shared = os.environ.get(SHARED_STATE_ENV)
    if not shared or gateway.state_kind != "memory":
        return gateway
    return dataclasses.replace(gateway, state=SQLITE_PREFIX + shared)


def _check_state(gateway: GatewayConfig) -> None:
    """Open a SQLite state and ledger once before any worker does: their files and tables
    are made, or the reason one cannot be used is one line (a `ConfigError`) rather than
    every worker's traceback."""
    from ..gateway._app import sqlite_ledger_path
    from ..gateway._ledger import open_file

    ledger = sqlite_ledger_path(gateway)
    if ledger is not None:
        open_file(Path(ledger), gateway.source).close()
    if gateway.state_path is None:
        return
    from ..gateway._sqlite_state import SQLiteState

    key = "gateway.state" if os.environ.get(SHARED_STATE_ENV) is None else "--workers"
    state = SQLiteState.open(gateway.state_path, source=gateway.source, key=key)
    state.close_sync()


def _cannot_listen(host: str, port: int) -> Optional[str]:
    """Why uvicorn could not listen on ``host:port`` (the port in use, say), found by binding
    each address as uvicorn would, then letting go; None when it can. Said here, the
    reason is one line and exit status 2, not uvicorn's log and status 3 (which remain
    when another process takes the port between this check and uvicorn's bind)."""
    import socket

    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        return f"--host {host}: {error.strerror}"
    for family, _, _, _, address in addresses:
        try:
            socket.create_server(address, family=family).close()
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use"
            return f"cannot listen on {host}: {error.strerror}"  # (it names the address)
    return None
