"""Protocol adapters: one module per wire protocol, pure translation (no I/O).

`adapter_class` maps a provider table's ``protocol`` to its adapter. Each adapter's module
is imported when a client first uses that protocol: a Zhipu-only program never loads the
Qianfan signer or the DashScope tables.
"""

from __future__ import annotations

import importlib

from ._base import Adapter, CallContext, HTTPRequest, StreamParser

__all__ = ["Adapter", "CallContext", "HTTPRequest", "StreamParser", "adapter_class"]

#: protocol -> (module, class); each class's ``protocol`` says the same (a test checks).
ADAPTERS: dict[str, tuple[str, str]] = {
    "openai_compat": ("openai_compat", "OpenAICompatAdapter"),
    "zhipu": ("zhipu", "ZhipuAdapter"),
    "qianfan": ("qianfan", "QianfanAdapter"),
    "dashscope": ("dashscope", "DashScopeAdapter"),
}


def adapter_class(protocol: str) -> type[Adapter]:
    """The adapter for a wire protocol named in a provider table."""
    try:
        module, name = ADAPTERS[protocol]
    except KeyError:
        raise NotImplementedError(
            f"the {protocol!r} protocol is not implemented yet (available: "
            f"{', '.join(sorted(ADAPTERS))})"
        ) from None
    cls: type[Adapter] = getattr(importlib.import_module(f".{module}", __name__), name)
    return cls
