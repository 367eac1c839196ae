"""Which config file the commands read, and reading it as the SDK and the gateway do.

The SDK looks for ``--config`` F, else ``$LLM_BRIDGE_CONFIG``, else ``./llm_bridge.toml``,
else uses the shipped provider tables with keys from the environment (``load_config``).
The commands follow the same order and can say which one they used. A gateway's config
(with a ``[gateway]`` table) serves too: ``chat``, ``models`` and ``doctor`` read its
providers, so the keys the gateway will use can be checked before it runs.

Commands that print config lines (``keys new``, ``migrate``) quote names and strings with
`toml_key` and `toml_string`, so the lines read back as what they say.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

if TYPE_CHECKING:
    from .._config import Config, ProviderConfig
    from ..gateway import GatewayConfig

__all__ = [
    "ConfigFile",
    "credential_variables",
    "find_config",
    "load",
    "load_gateway_table",
    "toml_key",
    "toml_string",
]


#: Why `find_config` chose ``./llm_bridge.toml``: the one file the user did not name.
_FOUND = "found in the working directory"


class ConfigFile(NamedTuple):
    """Where a config comes from: ``path`` (None: no file, the shipped tables and the
    environment) and why that one (``--config``, ``$LLM_BRIDGE_CONFIG``, ``./llm_bridge.toml``)."""

    path: Optional[Path]
    reason: str

    @property
    def chosen(self) -> bool:
        """Whether the user named the file (a file only found in the working directory
        may not name code to import, as the SDK's `load_config` says)."""
        return self.reason != _FOUND

    def describe(self) -> str:
        if self.path is None:
            return self.reason
        return f"{self.path} ({self.reason})"


def find_config(given: Optional[str]) -> ConfigFile:
    """The file the SDK would read, given a command's ``--config`` (None when absent)."""
    from .._config import CONFIG_ENV, DEFAULT_CONFIG_FILE

    if given:
        return ConfigFile(Path(given), "--config")
    env_path = os.environ.get(CONFIG_ENV)
    if env_path:
        return ConfigFile(Path(env_path), f"${CONFIG_ENV}")
    if Path(DEFAULT_CONFIG_FILE).is_file():
        return ConfigFile(Path(DEFAULT_CONFIG_FILE), _FOUND)
    return ConfigFile(
        None,
        f"no config file (no --config, ${CONFIG_ENV} unset, no ./{DEFAULT_CONFIG_FILE}): "
        f"the shipped provider tables, keys from the environment",
    )


def read_raw(path: Path) -> dict[str, Any]:
    """The file's TOML (a `ConfigError` naming the file when it is missing or invalid)."""
    from .._config import _read_toml
    from .._errors import ConfigError

    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    return _read_toml(path)


def load(found: ConfigFile) -> Config:
    """The SDK's `Config` from ``found``, a ``[gateway]`` table left to the gateway (raises
    `ConfigError` for a mistake, naming the file and the key)."""
    from .._config import _build, load_file

    if found.path is None:
        return _build({}, "the shipped provider tables")
    return load_file(found.path, chosen=found.chosen)


def load_gateway_table(path: Path) -> Optional[GatewayConfig]:
    """The file's ``[gateway]`` table as the gateway reads it (None when it has none), with
    only that table's ``${VAR}`` references resolved: what the gateway's own settings need
    (a Redis password in ``state``) is asked for, and the providers' keys
    (``api_key = "${ZHIPUAI_API_KEY}"``) are not, as a command that reads the ledger's place
    may run where they are not set. Raises `ConfigError` naming the key at fault."""
    from .._config import _interpolate
    from ..gateway._config import parse_gateway

    table = read_raw(path).get("gateway")
    if table is None:
        return None
    source = str(path)
    return parse_gateway(_interpolate(table, source, "gateway"), source)


def credential_variables(spec: ProviderConfig) -> list[str]:
    """The environment variables that give the provider a credential the client uses, one
    entry per way, from its table's ``*_env`` lists: ``["QIANFAN_API_KEY",
    "QIANFAN_ACCESS_KEY/QIANFAN_SECRET_KEY"]`` (a pair is one way). A Qianfan application's
    keys (``QIANFAN_AK``/``QIANFAN_SK``) reach only the v1 API, shut down on 2026-08-31, and
    the client refuses them, so they are named only where ``api = "v1"`` is chosen (a
    private deployment)."""
    application_keys: tuple[str, ...] = ()
    if spec.protocol == "qianfan":
        from ..adapters.qianfan import _APP_KEY_VARIABLES

        application_keys = _APP_KEY_VARIABLES
    ways = []
    for variable in spec.api_key_env:
        if variable not in application_keys:
            ways.append(variable)
        elif spec.api == "v1" and spec.secret_key_env:
            ways.append(f"{variable}/{spec.secret_key_env[0]}")
    pairs = zip(spec.iam_access_key_env, spec.iam_secret_key_env)
    ways += [f"{access}/{secret}" for access, secret in pairs]
    return ways


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def toml_key(name: str) -> str:
    """``name`` as one TOML key: bare when it can be, else quoted (a bare ``team.a`` would be
    the key ``a`` of a table ``team``)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)
