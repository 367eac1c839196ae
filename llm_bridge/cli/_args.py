"""Argument types the commands share: a number outside its range is refused as the command
line is parsed (argparse names the option; exit status 2), before a command runs or prints
config lines its reader would refuse later."""

from __future__ import annotations

import argparse
from typing import Callable, Optional

__all__ = ["integer"]


def integer(low: int, high: Optional[int] = None) -> Callable[[str], int]:
    """The type of an integer option from ``low`` to ``high`` (no bound above when None)."""
    allowed = f"an integer from {low} to {high}" if high is not None else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"expected {allowed}, got {text!r}")
        return value

    return parse
