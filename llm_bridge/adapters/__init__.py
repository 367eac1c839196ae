"""Protocol adapters: one module per wire protocol, pure translation (no I/O).

`adapter_class` maps a provider table's ``protocol`` to its adapter.
"""

from __future__ import annotations

from ._base import Adapter, CallContext, HTTPRequest, StreamParser
from .dashscope import DashScopeAdapter
from .openai_compat import OpenAICompatAdapter
from .qianfan import QianfanAdapter
from .zhipu import ZhipuAdapter

__all__ = ["Adapter", "CallContext", "HTTPRequest", "StreamParser", "adapter_class"]

_ADAPTERS: dict[str, type[Adapter]] = {
    OpenAICompatAdapter.protocol: OpenAICompatAdapter,
    ZhipuAdapter.protocol: ZhipuAdapter,
    QianfanAdapter.protocol: QianfanAdapter,
    DashScopeAdapter.protocol: DashScopeAdapter,
}


def adapter_class(protocol: str) -> type[Adapter]:
    """The adapter for a wire protocol named in a provider table."""
    try:
        return _ADAPTERS[protocol]
    except KeyError:
        raise NotImplementedError(
            f"the {protocol!r} protocol is not implemented yet (available: "
            f"{', '.join(sorted(_ADAPTERS))})"
        ) from None
