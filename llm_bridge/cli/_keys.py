"""``llm-bridge keys new NAME``: a new gateway key, printed once, with the config lines that
hold only its SHA-256 (the gateway never stores a key, so a leaked config leaks none)."""

from __future__ import annotations

import argparse
import re
import secrets
from typing import Any

__all__ = ["KEY_PREFIX", "configure", "new_key"]

#: Gateway keys look like OpenAI's, with a prefix that says whose they are.
KEY_PREFIX = "sk-lb-"

EPILOG = """\
examples:
  llm-bridge keys new team-a --models fast "glm-*" --rpm 60 --budget 100"""


def configure(subparsers: Any) -> None:
    """Add ``keys`` (and ``keys new``) to the command's subparsers."""
    keys = subparsers.add_parser(
        "keys",
        help="gateway keys",
        description="Gateway keys: the keys clients of `llm-bridge serve` use.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = keys.add_subparsers(title="keys commands", metavar="COMMAND")
    new = commands.add_parser(
        "new",
        help="make a key; print it once with its config lines",
        description=(
            "Make a gateway key and print it once, with the [gateway.keys.NAME] lines to add "
            "to the gateway's config (they hold only the key's SHA-256)."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    new.add_argument("name", metavar="NAME", help="1-64 of A-Z a-z 0-9 _ . - (the ledger shows it)")
    new.add_argument("--models", nargs="+", default=["*"], help='names or patterns (default "*")')
    new.add_argument("--rpm", type=int, help="requests per minute")
    new.add_argument("--tpm", type=int, help="tokens per minute")
    new.add_argument("--budget", help="monthly budget in CNY")
    new.set_defaults(run=new_key)
    keys.set_defaults(run=lambda _args: _help(keys))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def new_key(args: argparse.Namespace) -> int:
    import sys

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
