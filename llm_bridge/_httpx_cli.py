"""Keep ``import httpx`` from importing httpx's command-line client.

httpx 0.x imports its CLI (``httpx._main``) with the package, and with it rich, pygments
and click whenever they are installed, as they are with llm-bridge's own ``[cli]`` extra:
about 28 ms and 4.5 MiB for every process that imports llm-bridge, for a command it never
runs. (httpx2 already imports its CLI only when asked.) Imported first by ``llm_bridge``,
this module puts a stand-in for ``httpx._main`` in place, unless httpx is imported already:
httpx binds the stand-in's ``main``, and the real module is imported the first time
anything of it is used (``httpx.main()``, or any other name of ``httpx._main``). The
``httpx`` command itself runs in a process of its own and is not affected."""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

_NAME = "httpx._main"


def _real() -> types.ModuleType:
    """The real ``httpx._main``, imported now in place of the stand-in."""
    if isinstance(sys.modules.get(_NAME), _StandIn):
        del sys.modules[_NAME]
    return importlib.import_module(_NAME)


def main(*args: Any, **kwargs: Any) -> Any:
    """httpx's CLI entry point, imported when it is first called."""
    return _real().main(*args, **kwargs)


class _StandIn(types.ModuleType):
    main = staticmethod(main)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # the import system's questions (``__path__``, ...)
            raise AttributeError(name)
        return getattr(_real(), name)


if "httpx" not in sys.modules and _NAME not in sys.modules:
    sys.modules[_NAME] = _StandIn(_NAME, __doc__)
