"""``llm-bridge keys new NAME``: a new gateway key, printed once, with the config lines that
hold only its SHA-256 (the gateway never stores a key, so a leaked config leaks none)."""

from __future__ import annotations

import argparse
import secrets
from decimal import Decimal, InvalidOperation
from typing import Any

from ._args import integer
from ._config_file import toml_key, toml_string

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
    new.add_argument(
        "--models", nargs="+", type=_model, default=["*"], help='names or patterns (default "*")'
    )
    new.add_argument("--rpm", type=integer(1), help="requests per minute (1 or more)")
    new.add_argument("--tpm", type=integer(1), help="tokens per minute (1 or more)")
    new.add_argument("--budget", type=_yuan, help="monthly budget in CNY (0 or more)")
    new.set_defaults(run=new_key)
    keys.set_defaults(run=lambda _args: _help(keys))


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _model(text: str) -> str:
    """One of ``--models``: a name or pattern, not empty (the gateway refuses an empty one)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a model name or pattern, got an empty one")
    return text


def _yuan(text: str) -> Decimal:
    """``--budget``: a number of yuan, 0 or more (what the gateway's config accepts)."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a number of yuan >= 0, got {text!r}")
    return value


def new_key(args: argparse.Namespace) -> int:
    import sys

    from ..gateway import hash_key
    from ..gateway._config import _NAME

    if not _NAME.fullmatch(args.name):
        print("llm-bridge: a key name is 1-64 of A-Z a-z 0-9 _ . -", file=sys.stderr)
        return 2
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    models = ", ".join(toml_string(m) for m in args.models)
    lines = [
        f"[gateway.keys.{toml_key(args.name)}]",
        f'key_sha256 = "{hash_key(key)}"',
        f"models = [{models}]",
        f"rpm = {args.rpm}" if args.rpm is not None else "# rpm = 60",
        f"tpm = {args.tpm}" if args.tpm is not None else "# tpm = 100000",
        # (the budget in plain digits: ``:f`` writes 1E+2 as 100, which TOML reads)
        f"monthly_budget_cny = {args.budget:f}"
        if args.budget is not None
        else "# monthly_budget_cny = 100",
    ]
    print(f"New gateway key {args.name!r} (shown only now; give it to its user):\n")
    print(f"    {key}\n")
    print("Add these lines to the gateway's config (they hold only the key's SHA-256):\n")
    print("\n".join(lines))
    return 0
