"""Names of a package that load their module on first use (PEP 562 ``__getattr__``).

`import llm_bridge` must cost about what `import httpx` costs, and a client that only
chats should not create the embedding and model classes: pydantic classes cost time and
memory to build. The packages that re-export such names share this one loader.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Any, Callable


def lazy_getattr(package: str, modules: Mapping[str, str]) -> Callable[[str], Any]:
    """A ``__getattr__`` for ``package``: ``modules`` maps each name to the module,
    relative to the package, that defines it. A name mapped to the module of its own
    name (``"chat": ".chat"``) is that submodule itself. A name is looked up once; after
    that it is an ordinary attribute of the package."""

    def __getattr__(name: str) -> Any:
        module_name = modules.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module = importlib.import_module(module_name, package)
        value = module if module_name == f".{name}" else getattr(module, name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
