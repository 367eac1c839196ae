"""The ``llm-bridge`` command.

* ``llm-bridge serve --config F [--host 127.0.0.1] [--port 8000] [--workers N]``: the
  gateway under uvicorn (``pip install "llm-bridge-cn[server]"``).
* ``llm-bridge keys new NAME``: a new gateway key, printed once, with the config lines
  that hold only its SHA-256.
* ``llm-bridge usage [--ledger F] [--month YYYY-MM]``: the ledger summed by key and model.

Only the standard library is imported until a command needs more.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

__all__ = ["main"]

#: Gateway keys look like OpenAI's, with a prefix that says whose they are.
KEY_PREFIX = "sk-lb-"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from .._errors import ConfigError

    try:
        return args.run(args)
    except ConfigError as error:
        print(f"llm-bridge: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llm-bridge", description="llm-bridge: the gateway and its tools"
    )
    commands = parser.add_subparsers(title="commands")

    serve = commands.add_parser("serve", help="run the OpenAI-compatible gateway")
    serve.add_argument("--config", required=True, help="the TOML config with a [gateway] table")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument(
        "--timeout-graceful-shutdown",
        type=int,
        default=30,
        metavar="SECONDS",
        help="on SIGTERM, how long in-flight requests (streams) may take to finish",
    )
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(run=_serve)

    keys = commands.add_parser("keys", help="gateway keys")
    key_commands = keys.add_subparsers(title="keys commands")
    new = key_commands.add_parser("new", help="make a key; print it once with its config lines")
    new.add_argument("name")
    new.add_argument("--models", nargs="+", default=["*"], help='names or patterns (default "*")')
    new.add_argument("--rpm", type=int)
    new.add_argument("--tpm", type=int)
    new.add_argument("--budget", help="monthly budget in CNY")
    new.set_defaults(run=_new_key)

    usage = commands.add_parser("usage", help="sum the gateway's usage ledger")
    usage.add_argument("--ledger", help="the SQLite ledger (default: the config's, or ./)")
    usage.add_argument("--config", help="read the ledger's path from this config")
    usage.add_argument("--month", help="YYYY-MM (UTC); default: everything")
    usage.set_defaults(run=_usage)
    return parser


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn
    except ImportError:
        print(
            'llm-bridge serve needs uvicorn: pip install "llm-bridge-cn[server]"', file=sys.stderr
        )
        return 2
    from ..gateway import CONFIG_ENV, load_gateway_config

    path = Path(args.config).resolve()
    load_gateway_config(path)  # a config mistake is reported now, not by every worker
    os.environ[CONFIG_ENV] = str(path)
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


def _new_key(args: argparse.Namespace) -> int:
    import re

    from ..gateway import hash_key

    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", args.name):
        print("llm-bridge: a key name is 1-64 of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    models = ", ".join(f'"{m}"' for m in args.models)
    lines = [
        f"[gateway.keys.{args.name}]",
        f'key_sha256 = "{hash_key(key)}"',
        f"models = [{models}]",
        f"rpm = {args.rpm}" if args.rpm else "# rpm = 60",
        f"tpm = {args.tpm}" if args.tpm else "# tpm = 100000",
        f"monthly_budget_cny = {args.budget}" if args.budget else "# monthly_budget_cny = 100",
    ]
    print(f"New gateway key {args.name!r} (shown only now; give it to its user):\n")
    print(f"    {key}\n")
    print("Add these lines to the gateway's config (they hold only the key's SHA-256):\n")
    print("\n".join(lines))
    return 0


def _usage(args: argparse.Namespace) -> int:
    import calendar
    import time
    from decimal import Decimal

    from ..gateway import LedgerEntry, read_entries
    from ..gateway._config import DEFAULT_LEDGER

    since = until = None
    if args.month:
        year, month = (int(part) for part in args.month.split("-"))
        since = float(calendar.timegm((year, month, 1, 0, 0, 0)))
        until = float(calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0)))
    ledger = args.ledger
    entries: Iterable[LedgerEntry] = ()
    if ledger is None and args.config:
        from ..gateway import load_gateway_config

        gateway = load_gateway_config(args.config)[1]
        ledger = gateway.ledger
        if ledger == "redis" or (ledger is None and gateway.state != "memory"):
            from ..gateway._redis import read_ledger

            ledger = "the fleet's Redis ledger"
            fleet = read_ledger(gateway.state, since)
            entries = [e for e in fleet if until is None or e.at < until]
    if ledger != "the fleet's Redis ledger":
        path = Path(ledger or DEFAULT_LEDGER)
        if not path.is_file():
            print(f"llm-bridge: {path}: no ledger file", file=sys.stderr)
            return 2
        entries = read_entries(path, since=since, until=until)
    sums: dict[tuple[str, str], list[Any]] = {}
    for entry in entries:
        row = sums.setdefault((entry.key, entry.provider or "-"), [0, 0, 0, Decimal(0), 0])
        row[0] += 1
        row[1] += entry.prompt_tokens
        row[2] += entry.completion_tokens
        row[3] += entry.cost_cny or Decimal(0)
        row[4] += entry.status >= 400
    period = args.month or "all time"
    print(f"{ledger or DEFAULT_LEDGER} ({period}, as of {time.strftime('%Y-%m-%d %H:%M:%S')})")
    header = ("key", "provider", "requests", "errors", "prompt", "completion", "cost_cny")
    print("{:<20} {:<12} {:>9} {:>7} {:>12} {:>12} {:>12}".format(*header))
    for (key, provider), (n, prompt, completion, cost, errors) in sorted(sums.items()):
        print(
            f"{key:<20} {provider:<12} {n:>9} {errors:>7} {prompt:>12} {completion:>12} "
            f"{cost:>12.4f}"
        )
    return 0
