"""The ``[gateway]`` table of a config file: keys, limits, the ledger, the state store.

The rest of the file (providers, aliases, prices, policy) is the ordinary llm-bridge
config, read by ``llm_bridge._config`` exactly as the clients read it (their loader skips
the ``[gateway]`` table, so one file serves the gateway and its Python clients); this
module takes the table out first and checks it. It is as strict as the rest: a typo
(``rmp = 60``) is an error naming the key, not a limit silently missing.

Paths in the table (``ledger``, a ``sqlite:///`` state) that are relative resolve against
the directory of the config file they are written in, wherever the server is started
from; a config given as a mapping has no directory, and they stay relative to the working
directory.

A key is stored only as the SHA-256 of its text (``llm-bridge keys new NAME`` prints both,
once), so a config file that leaks gives nobody a working key. ``admin = true`` lets a key
open the usage dashboard (``/dashboard``); ``models = []`` makes a key that opens only that.
"""

from __future__ import annotations

import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Optional, Union

from .._config import Config, _build, _interpolate, _read_toml
from .._errors import ConfigError

__all__ = [
    "DEFAULT_LEDGER",
    "DEFAULT_STATE_FILE",
    "GatewayConfig",
    "KeySpec",
    "hash_key",
    "load_gateway_config",
]

#: The ledger with no configuration: a SQLite file in the working directory.
DEFAULT_LEDGER = "llm_bridge_ledger.sqlite"
#: The file of ``state = "sqlite"``, in the config file's directory.
DEFAULT_STATE_FILE = "llm_bridge_state.sqlite"
#: What a SQLite state is written as: ``sqlite:///`` then the file's path, so a relative
#: path has three slashes and an absolute one four (``sqlite:////var/lib/state.sqlite``),
#: as in SQLAlchemy's URLs.
SQLITE_PREFIX = "sqlite:///"
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
#: Request bodies larger than this are refused with 413 (images travel as base64).
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024

#: Seconds a stream may wait on a client that reads nothing (``client_write_timeout``).
DEFAULT_CLIENT_WRITE_TIMEOUT = 60.0
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

_GATEWAY_KEYS = {
    "client_write_timeout",
    "cors_origins",
    "keys",
    "ledger",
    "state",
    "state_failure",
    "max_body_bytes",
    "max_retries",
    "timeout",
    "upstream",
}
_KEY_KEYS = {"key_sha256", "models", "rpm", "tpm", "monthly_budget_cny", "admin"}


@dataclass(frozen=True)
class KeySpec:
    """One gateway key: its name (what the ledger and metrics show), the digest of its
    text, and what it may do."""

    name: str
    digest: bytes = field(repr=False)
    models: tuple[str, ...] = ("*",)
    rpm: Optional[int] = None
    tpm: Optional[int] = None
    monthly_budget_cny: Optional[Decimal] = None
    #: Whether the key opens the usage dashboard (``/dashboard``): spend, errors and every
    #: key's limits, so only for the gateway's operators.
    admin: bool = False

    def allows(self, model: str, routes: tuple[str, ...] = ()) -> bool:
        """Whether the key may use ``model``: the name the client asked for matches one
        of its patterns, or every ``provider/model`` it routes to does (so ``zhipu/*``
        allows whatever goes to Zhipu, under any alias). Case does not matter, as it does
        not when names are routed (``GLM-4-Flash`` is glm-4-flash)."""
        patterns = [pattern.lower() for pattern in self.models]
        if any(fnmatchcase(model.lower(), pattern) for pattern in patterns):
            return True
        return bool(routes) and all(
            any(fnmatchcase(route.lower(), pattern) for pattern in patterns) for route in routes
        )


@dataclass(frozen=True)
class GatewayConfig:
    """The ``[gateway]`` table, checked."""

    keys: tuple[KeySpec, ...] = ()
    # A SQLite path, "redis" (a stream in the state's Redis) or "none"; unset: the SQLite
    # file DEFAULT_LEDGER with state "memory" or SQLite, the Redis stream with a Redis
    # state. A relative path read from a file is made absolute against its directory.
    ledger: Optional[str] = None
    # "memory", "sqlite:///" + a SQLite file's path (absolute when read from a file), or
    # a Redis URL ("redis://host:port/db"); `state_kind` says which.
    state: str = "memory"
    # With the shared store (Redis, a SQLite file) failing: per-process limits ("open"),
    # or 503 ("closed").
    state_failure: str = "open"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_retries: int = 2
    timeout: Optional[float] = None  # seconds per provider call (None: the engine's)
    # Seconds a streamed answer waits for a client that reads none of it before the
    # gateway gives up on it (closes the connection and the provider call).
    client_write_timeout: float = DEFAULT_CLIENT_WRITE_TIMEOUT
    # The HTTP client of provider calls: "httpx" (default) or "aiohttp" (faster; see
    # `_app._aiohttp_upstream`).
    upstream: str = "httpx"
    # The origins whose browser pages may call the API (CORS); "*": any page. Keys travel
    # in a header a page must be given, never in cookies, so "*" opens nothing by itself.
    cors_origins: tuple[str, ...] = ("*",)
    source: str = "<mapping>"

    @property
    def state_kind(self) -> str:
        """Where limits and budgets live: ``"memory"`` (this process), ``"sqlite"`` (a
        file every process on the machine shares) or ``"redis"`` (every replica)."""
        if self.state == "memory":
            return "memory"
        return "sqlite" if self.state.startswith(SQLITE_PREFIX) else "redis"

    @property
    def state_path(self) -> Optional[Path]:
        """The file of a SQLite state (None for the others)."""
        if not self.state.startswith(SQLITE_PREFIX):
            return None
        return Path(self.state[len(SQLITE_PREFIX) :])

    def __repr__(self) -> str:
        return (
            f"GatewayConfig(source={self.source!r}, keys={[k.name for k in self.keys]}, "
            f"ledger={self.ledger!r}, state={_redact_url(self.state)!r})"
        )


def _redact_url(url: str) -> str:
    """A state URL without its credentials: the whole user part, up to the authority's
    last ``@`` (``redis://:p@ss@host`` -> ``redis://***@host``), and a ``password`` (or
    ``username``) query parameter, which redis-py takes too."""
    url = re.sub(r"//[^/?#]*@", "//***@", url)
    return re.sub(r"([?&](?:password|username)=)[^&#]*", r"\1***", url, flags=re.IGNORECASE)


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key's text: what the config holds."""
    return hashlib.sha256(key.encode()).hexdigest()


def load_gateway_config(
    source: Union[str, os.PathLike[str], Mapping[str, Any]],
) -> tuple[Config, GatewayConfig]:
    """Read a config file (or a mapping of the same schema) into the engine's `Config`
    and the `GatewayConfig`. Relative paths in a file's ``[gateway]`` table resolve
    against the file's directory."""
    base_dir: Optional[Path] = None
    if isinstance(source, Mapping):
        raw, where = dict(source), "<mapping>"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        raw, where = _read_toml(path), str(path)
        base_dir = path.resolve().parent
    raw = _interpolate(raw, where, "")
    table = raw.pop("gateway", None)
    config = _build(raw, where)
    return config, parse_gateway(table, where, base_dir=base_dir)


def parse_gateway(table: Any, source: str, *, base_dir: Optional[Path] = None) -> GatewayConfig:
    """The ``[gateway]`` table ``table`` of the config ``source`` (a file's path, or
    ``"<mapping>"``), checked. Relative paths resolve against ``base_dir``; by default
    the directory of ``source`` when it names a file, else they are kept as written
    (relative to the working directory)."""
    if base_dir is None and source != "<mapping>" and Path(source).is_file():
        base_dir = Path(source).resolve().parent
    if table is None:
        table = {}
    if not isinstance(table, dict):
        raise ConfigError(f"{source}: gateway: expected a table")
    _no_unknown(table, _GATEWAY_KEYS, source, "gateway")
    keys_table = table.get("keys", {})
    if not isinstance(keys_table, dict):
        raise ConfigError(f"{source}: gateway.keys: expected a table of [gateway.keys.NAME]")
    keys = tuple(_key(name, spec, source) for name, spec in keys_table.items())
    if not keys:
        raise ConfigError(
            f"{source}: gateway.keys: no gateway key is defined, so no request could be "
            f"served; create one with `llm-bridge keys new NAME` and add the lines it prints"
        )
    digests = [k.digest for k in keys]
    if len(set(digests)) != len(digests):
        raise ConfigError(f"{source}: gateway.keys: two keys have the same key_sha256")
    state = _state(table, source, base_dir)
    failure = _string(table, "state_failure", "open", source)
    if failure not in ("open", "closed"):
        raise ConfigError(f'{source}: gateway.state_failure: expected "open" or "closed"')
    timeout = _seconds(table, "timeout", None, source)
    upstream = _string(table, "upstream", "httpx", source)
    if upstream not in ("aiohttp", "httpx"):
        raise ConfigError(f'{source}: gateway.upstream: expected "aiohttp" or "httpx"')
    return GatewayConfig(
        keys=keys,
        upstream=upstream,
        cors_origins=_origins(table, source),
        ledger=_ledger(table, state, source, base_dir),
        state=state,
        state_failure=failure,
        max_body_bytes=_int(table, "max_body_bytes", DEFAULT_MAX_BODY_BYTES, source, "gateway")
        or DEFAULT_MAX_BODY_BYTES,
        max_retries=_int(table, "max_retries", 2, source, "gateway", minimum=0) or 0,
        timeout=timeout,
        client_write_timeout=_seconds(
            table, "client_write_timeout", DEFAULT_CLIENT_WRITE_TIMEOUT, source
        )
        or DEFAULT_CLIENT_WRITE_TIMEOUT,
        source=source,
    )


def _seconds(
    table: dict[str, Any], name: str, default: Optional[float], source: str
) -> Optional[float]:
    """``[gateway] name``: a positive number of seconds, else ``default``."""
    value = table.get(name, default)
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(
            f"{source}: gateway.{name}: expected a positive number of seconds, got {value!r}"
        )
    return float(value)


def _origins(table: dict[str, Any], source: str) -> tuple[str, ...]:
    """``cors_origins``: "*" or a list of origins (``https://chat.example.com``), or []."""
    origins = table.get("cors_origins", ["*"])
    if isinstance(origins, str):
        origins = [origins]
    if not isinstance(origins, list) or not all(
        isinstance(o, str) and (o == "*" or re.fullmatch(r"https?://[^/\s]+", o)) for o in origins
    ):
        raise ConfigError(
            f'{source}: gateway.cors_origins: expected "*" or a list of origins such as '
            f'"https://chat.example.com" (scheme and host, no path), or [] for none'
        )
    return tuple(o.lower() for o in origins)


def _state(table: dict[str, Any], source: str, base_dir: Optional[Path]) -> str:
    """``state``: "memory", "sqlite" (`DEFAULT_STATE_FILE` in the config's directory),
    ``sqlite:///PATH`` or a Redis URL; a SQLite path made absolute against ``base_dir``."""
    state = _string(table, "state", "memory", source)
    if state == "memory" or state.startswith(_REDIS_SCHEMES):
        return state
    if state == "sqlite":
        path = DEFAULT_STATE_FILE
    elif state.startswith(SQLITE_PREFIX) and len(state) > len(SQLITE_PREFIX):
        path = state[len(SQLITE_PREFIX) :]
    else:
        raise ConfigError(
            f'{source}: gateway.state: expected "memory", "sqlite", "sqlite:///PATH" (a '
            f'path relative to the directory of the config file; "sqlite:////PATH" for an '
            f"absolute one) or a redis:// URL, got {_redact_url(state)!r}"
        )
    return SQLITE_PREFIX + _resolved(path, base_dir)


def _resolved(path: str, base_dir: Optional[Path]) -> str:
    """``path``, made absolute against ``base_dir`` when it is relative (and there is
    one)."""
    if base_dir is None or Path(path).is_absolute():
        return path
    return str(base_dir / path)


def _ledger(
    table: dict[str, Any], state: str, source: str, base_dir: Optional[Path]
) -> Optional[str]:
    if "ledger" not in table:
        # With a SQLite state the default ledger is named: callers that take an unnamed
        # ledger with a non-memory state for the Redis stream then find the file.
        return DEFAULT_LEDGER if state.startswith(SQLITE_PREFIX) else None
    ledger = _string(table, "ledger", DEFAULT_LEDGER, source)
    if ledger == "redis" and not state.startswith(_REDIS_SCHEMES):
        raise ConfigError(f'{source}: gateway.ledger: "redis" needs a redis:// gateway.state')
    if ledger in ("redis", "none"):
        return ledger
    return _resolved(ledger, base_dir)


def _key(name: str, spec: Any, source: str) -> KeySpec:
    where = f"gateway.keys.{name}"
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{source}: {where}: a key name is 1-64 of A-Z a-z 0-9 _ . -")
    if not isinstance(spec, dict):
        raise ConfigError(f"{source}: {where}: expected a table")
    _no_unknown(spec, _KEY_KEYS, source, where)
    digest = spec.get("key_sha256")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest.lower()):
        raise ConfigError(
            f"{source}: {where}.key_sha256: expected the key's SHA-256 as 64 hex digits "
            f"(`llm-bridge keys new {name}` prints it)"
        )
    models = spec.get("models", ["*"])
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise ConfigError(f"{source}: {where}.models: expected a list of names or patterns")
    budget = spec.get("monthly_budget_cny")
    if budget is not None:
        try:
            if isinstance(budget, bool):
                raise InvalidOperation
            budget = Decimal(str(budget))
        except InvalidOperation:
            raise ConfigError(
                f"{source}: {where}.monthly_budget_cny: expected a number of yuan"
            ) from None
        if not budget.is_finite() or budget < 0:
            raise ConfigError(
                f"{source}: {where}.monthly_budget_cny: expected a finite number of yuan "
                f">= 0, got {budget}"
            )
    admin = spec.get("admin", False)
    if not isinstance(admin, bool):
        raise ConfigError(f"{source}: {where}.admin: expected true or false")
    return KeySpec(
        name=name,
        digest=bytes.fromhex(digest.lower()),
        models=tuple(models),
        rpm=_int(spec, "rpm", None, source, where),
        tpm=_int(spec, "tpm", None, source, where),
        monthly_budget_cny=budget,
        admin=admin,
    )


def _no_unknown(table: dict[str, Any], known: set[str], source: str, where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(
            f"{source}: {where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})"
        )


def _string(table: dict[str, Any], name: str, default: str, source: str) -> str:
    value = table.get(name, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{source}: gateway.{name}: expected a non-empty string")
    return value


def _int(
    table: dict[str, Any],
    name: str,
    default: Optional[int],
    source: str,
    where: str,
    *,
    minimum: int = 1,
) -> Optional[int]:
    value = table.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{source}: {where}.{name}: expected an integer >= {minimum}")
    return value
