"""``llm-bridge serve``: the OpenAI-compatible gateway under uvicorn (the ``[server]`` extra).

The config is loaded once here, so a mistake in it is reported before any worker starts;
the workers read the same file through ``$LLM_BRIDGE_GATEWAY_CONFIG``.
"""

from __future__ import annotations

import argparse
import errno
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Optional

from ._args import integer

__all__ = ["configure", "run"]

#: uvicorn's log levels (its ``LOG_LEVELS``), named here so ``--help`` and a mistake's
#: message need no uvicorn.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

DESCRIPTION = """\
Run the OpenAI-compatible gateway: any openai client (any language) talks to it as to
OpenAI; it holds the provider keys, checks gateway keys, limits and budgets, and records
every request in its usage ledger (llm-bridge usage). Needs the [server] extra:
pip install "llm-bridge-cn[server]".

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
    load_gateway_config(path)  # a config mistake is reported now, not by every worker
    problem = _cannot_listen(args.host, args.port)
    if problem:
        print(f"llm-bridge: {problem}", file=sys.stderr)
        return 2
    os.environ[CONFIG_ENV] = str(path)
    # The workers sign dashboard sessions with one secret, so any of them accepts a
    # browser's session (replicas on other machines set the variable themselves).
    os.environ.setdefault(SECRET_ENV, secrets.token_urlsafe(32))
    uvicorn.run(
        "llm_bridge.gateway:app_from_environment",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        lifespan="on",
        timeout_graceful_shutdown=args.timeout_graceful_shutdown,
        log_level=args.log_level,
        server_header=False,
    )
    return 0


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
