"""``llm-bridge serve``: the engine behind an OpenAI-compatible HTTP gateway.

Any language's openai client (Node, Go, Java, curl, tools that take an OpenAI base URL)
talks to the gateway as to OpenAI; the gateway holds the provider keys, decides which
gateway key may use which model, enforces requests and tokens per minute and a monthly
budget in yuan, and records every request in a usage ledger.

`create_app` builds the ASGI application from a config file (run it under any ASGI
server); ``llm-bridge serve --config F`` runs it under uvicorn. Importing ``llm_bridge``
imports none of this.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional, Union

from .._errors import ConfigError
from ._app import GatewayApp, open_ledger, open_state
from ._config import GatewayConfig, KeySpec, hash_key, load_gateway_config
from ._ledger import SQLiteLedger, read_entries
from ._memory import MemoryState
from ._state import GatewayState, LedgerEntry, LedgerSink

__all__ = [
    "CONFIG_ENV",
    "GatewayApp",
    "GatewayConfig",
    "GatewayState",
    "KeySpec",
    "LedgerEntry",
    "LedgerSink",
    "MemoryState",
    "SQLiteLedger",
    "app_from_environment",
    "create_app",
    "hash_key",
    "load_gateway_config",
    "open_ledger",
    "open_state",
    "read_entries",
]

#: The config file a server's worker processes load (``llm-bridge serve`` sets it).
CONFIG_ENV = "LLM_BRIDGE_GATEWAY_CONFIG"


def create_app(
    config: Union[str, os.PathLike[str], Mapping[str, Any], None] = None,
    *,
    http_client: Any = None,
    state: Optional[GatewayState] = None,
    ledger: Optional[LedgerSink] = None,
) -> GatewayApp:
    """The gateway as an ASGI application.

    ``config`` is a TOML file (or a mapping of the same schema) holding the usual
    llm-bridge config plus a ``[gateway]`` table; None reads ``$LLM_BRIDGE_CONFIG`` or
    ``./llm_bridge.toml``. ``http_client`` (an ``httpx.AsyncClient``) carries the provider
    traffic (proxies, TLS settings, or a test transport); ``state`` and ``ledger`` replace
    the ones the config names.
    """
    if config is None:
        config = os.environ.get("LLM_BRIDGE_CONFIG") or "llm_bridge.toml"
        if not Path(config).is_file():
            raise ConfigError(
                f"{config}: config file not found (pass create_app(config) or set "
                f"$LLM_BRIDGE_CONFIG)"
            )
    engine_config, gateway = load_gateway_config(config)
    return GatewayApp(engine_config, gateway, http_client=http_client, state=state, ledger=ledger)


def app_from_environment() -> GatewayApp:
    """The app factory uvicorn's workers call (``--factory``): the config file
    ``$LLM_BRIDGE_GATEWAY_CONFIG`` names."""
    return create_app(os.environ.get(CONFIG_ENV) or None)
