"""Warnings llm-bridge gives once per process: a parameter the provider does not take
(dropped by the unsupported-parameter policy), a retired model called, a Coding Plan host
used. Once per process, not per client: a program that makes a client per request is
warned once. The engine emits them; adapters only report what they dropped.
"""

from __future__ import annotations

import threading
import warnings
from typing import Callable

from ._config import ModelInfo
from ._errors import CodingPlanWarning, ModelRetiredWarning, UnsupportedParameterWarning

__all__ = ["warn_coding_plan", "warn_once", "warn_retired", "warn_unsupported"]

#: (provider, subject) pairs already warned about in this process (see `warn_once`).
_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def warn_once(provider: str, subject: str, message: str, emit: Callable[[str], None]) -> None:
    """Emit ``message`` the first time (provider, subject) comes up in this process: a
    parameter dropped, a retired model called, a Coding Plan host used. Kept here, not in
    the adapters, which hold no state."""
    with _warned_lock:
        if (provider, subject) in _warned:
            return
        _warned.add((provider, subject))
    emit(message)


def warn_unsupported(provider: str, param: str, message: str) -> None:
    """Once per process and parameter: the unsupported-parameter policy dropped it."""
    warn_once(
        provider,
        param,
        message,
        lambda text: warnings.warn(text, UnsupportedParameterWarning, stacklevel=6),
    )


def warn_coding_plan(provider: str, root: str) -> None:
    """Once per process and host: Coding Plans are for interactive coding tools."""
    message = (
        f"{provider}: requests go to the Coding Plan host {root}. The plan is meant "
        f"for interactive coding tools; its terms forbid use from automated scripts and "
        f"application back-ends, and the provider may suspend keys used so. Use a "
        f"pay-as-you-go key and the standard plan for programs."
    )
    warn_once(
        provider,
        f"coding-plan:{root}",
        message,
        lambda text: warnings.warn(text, CodingPlanWarning, stacklevel=2),
    )


def warn_retired(provider: str, model: str, info: ModelInfo) -> None:
    """Once per process and model: it is retired, since when, and what replaces it."""
    successor = f"; its successor is {info.successor!r}" if info.successor else ""
    message = (
        f"{provider}/{model} was retired by {provider} on {info.retired}{successor}. "
        f"The request is sent anyway (some regions retire later), but expect it to fail."
    )
    warn_once(
        provider,
        f"retired:{model}",
        message,
        lambda text: warnings.warn(text, ModelRetiredWarning, stacklevel=2),
    )
