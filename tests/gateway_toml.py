"""A gateway config file for the tests that load one (``tests/test_gateway_app.py``,
``tests/test_gateway_sqlite_state.py``): Zhipu, the alias ``fast``, a ``[gateway]`` table
and one gateway key."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from llm_bridge.gateway import hash_key


def gateway_toml(
    zhipu_key: str,
    gateway_key: str,
    *,
    gateway: str = "",
    key: str = "",
    upstream: Optional[str] = None,
) -> str:
    """The text of a config: Zhipu with ``zhipu_key`` (served at ``upstream``, a fake's
    URL, when given), the alias ``fast`` for glm-4-flash with a price (1 CNY per million
    tokens either way: a budgeted key may use it), ``gateway`` in the ``[gateway]`` table,
    and the gateway key ``team`` (``gateway_key``, by its digest) with ``key`` in its
    table."""
    base_url = f'base_url = "{upstream}/api/paas/v4"' if upstream is not None else ""
    return f"""
[providers.zhipu]
api_key = "{zhipu_key}"
{base_url}

[models]
fast = "zhipu/glm-4-flash"

[prices."zhipu/glm-4-flash"]
input = 1
output = 1

[gateway]
{gateway}

[gateway.keys.team]
key_sha256 = "{hash_key(gateway_key)}"
{key}
"""


def write_gateway_toml(directory: Path, text: str) -> Path:
    """``text`` as ``gateway.toml`` in ``directory`` (made if need be)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    return path
