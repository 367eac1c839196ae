"""The ``llm-bridge`` command (also ``python -m llm_bridge``): its parser and dispatch.

Each command lives in a module of its own that adds its parser with
``configure(subparsers)`` and sets ``run`` (``args -> exit status``):

* ``chat MODEL [PROMPT]`` (`_chat`): stream an answer, or a conversation on a terminal;
* ``models`` (`_models`): the catalogue, or with ``--remote`` what a provider lists;
* ``doctor`` (`_doctor`): config, credentials, and whether each provider takes its key;
* ``usage`` (`_usage`): the gateway's ledger summed by key, model or day;
* ``serve`` (`_serve`): the gateway under uvicorn (the ``[server]`` extra);
* ``keys new NAME`` (`_keys`): a gateway key, printed once, with its config lines.

Results go to stdout (a table on a terminal, plain columns when piped, JSON with
``--json``; `_output`), notes and errors to stderr. Exit status: 0 success, 1 a check or
a provider call failed, 2 a usage or config error (argparse's own errors included).

Only the standard library is imported until a command runs; rich (the ``[cli]`` extra)
only when a terminal shows its output.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Any, Optional, Sequence

__all__ = ["main"]

#: Exit statuses of every command.
OK, FAILED, USAGE = 0, 1, 2

DESCRIPTION = """\
llm-bridge: the openai client's API for Zhipu GLM, Baidu Qianfan and Alibaba DashScope,
and its gateway. Run `llm-bridge COMMAND --help` for a command's options.

exit status: 0 success, 1 a check or provider call failed, 2 usage or config error"""


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    # argparse cannot take an optional positional after an option (`chat MODEL --json
    # "hi"`): a command names the one it takes late as its ``trailing`` default.
    trailing = getattr(args, "trailing", None)
    late = len(extra) == 1 and not extra[0].startswith("-")
    if trailing and late and getattr(args, trailing) is None:
        setattr(args, trailing, extra.pop())
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    run = getattr(args, "run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return USAGE
    _plain_warnings()
    from .._errors import APIError, ConfigError, OpenAIError

    try:
        return run(args)
    except ConfigError as error:
        print(f"llm-bridge: {error}", file=sys.stderr)
        return USAGE
    except APIError as error:  # a provider call failed (the provider's error, scrubbed)
        print(f"llm-bridge: {error}", file=sys.stderr)
        return FAILED
    except OpenAIError as error:  # found before any call: no key, an unknown model ...
        print(f"llm-bridge: {error}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `llm-bridge models | head`: the reader left
        _silence_stdout()
        return FAILED


def _parser() -> argparse.ArgumentParser:
    from .._version import __version__
    from . import _chat, _doctor, _keys, _migrate, _models, _serve, _usage

    parser = argparse.ArgumentParser(
        prog="llm-bridge",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"llm-bridge {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in (_chat, _models, _doctor, _usage, _migrate, _serve, _keys):
        command.configure(commands)
    return parser


def _plain_warnings() -> None:
    """Warnings (an unsupported parameter, a retired model) as one line each on stderr,
    without the file and line of the library code that raised them."""

    def show(message: Any, category: Any, filename: Any, lineno: Any, *args: Any) -> None:
        print(f"llm-bridge: warning: {message}", file=sys.stderr)

    warnings.showwarning = show


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
