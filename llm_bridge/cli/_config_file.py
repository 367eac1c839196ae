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
    from .._config import Config

__all__ = ["ConfigFile", "find_config", "load", "toml_key", "toml_string"]


class ConfigFile(NamedTuple):
    """Where a config comes from: ``path`` (None: no file, the shipped tables and the
    environment) and why that one (``--config``, ``$LLM_BRIDGE_CONFIG``, ``./llm_bridge.toml``)."""

    path: Optional[Path]
    reason: str

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
        return ConfigFile(Path(DEFAULT_CONFIG_FILE), "found in the working directory")
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
    from .._config import _build, _interpolate

    if found.path is None:
        return _build({}, "the shipped provider tables")
    raw = read_raw(found.path)
    raw.pop("gateway", None)
    source = str(found.path)
    return _build(_interpolate(raw, source, ""), source)


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    escaped = re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped)
    return f'"{escaped}"'


def toml_key(name: str) -> str:
    """``name`` as one TOML key: bare when it can be, else quoted (a bare ``team.a`` would be
    the key ``a`` of a table ``team``)."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else toml_string(name)
