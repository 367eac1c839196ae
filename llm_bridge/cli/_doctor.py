"""``llm-bridge doctor``: is the setup sound, and does each provider's key work?

It checks, and prints one line per finding (``ok``, ``warn``, ``fail``, or ``skip`` for a
provider with no credential) with the fix where there is one:

- which config file is read (the order the SDK uses) and whether it is valid, its
  ``[gateway]`` table included; with none read, an ``llm_bridge.toml`` in a parent
  directory (up to the repository's root) is pointed out, since the SDK never looks there;
- that every ``[models]`` alias can be served: each target's provider has a credential
  (the first target without one: every call to that alias fails with ``ConfigError``,
  which no fallback moves past; only a later target without one: a warning);
- per provider, which credential is used and where it came from (shown masked: its first
  4 characters), and the API root it is sent to; Qianfan application keys get the v1
  explanation (the v1 API closed on 2026-08-31);
- online (not with ``--offline``), one cheap authenticated call per provider
  (`_remote.check_key`: ``GET /models`` where the API has one, else a 1-token chat with
  the cheapest catalogued model). Only a listing (a 2xx) verifies a key; a 401 rejects
  it; any other answer to ``GET /models`` (a 404 from a root that serves no list, a 5xx)
  verifies nothing, and the 1-token chat decides (a 403 refuses the account, as a chat's
  would). A key the provider rejects is tried at the provider's other regions and plans
  (the ``[[endpoints]]`` rows of its table, or of the user's config, which may replace
  them), and the finding names the config lines that select the one that accepted it.

Exit status: 0 when nothing failed (warnings allowed), 1 when a check failed, 2 for a
usage or config error.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ._output import Output, mask

if TYPE_CHECKING:
    from .._config import Config, Endpoint, ProviderConfig
    from ._config_file import ConfigFile
    from ._remote import KeyCheck

__all__ = ["configure", "run"]

DESCRIPTION = """\
Check the config and, per provider, the credential and whether the provider accepts it.

Online, each provider with a credential gets one authenticated call: GET /models where
its API lists models (DashScope compatible mode, Qianfan v2, OpenAI-compatible
providers; free), else a chat of one output token with its cheapest catalogued chat
model (Zhipu: glm-4-flash, free; DashScope native API: qwen-flash). Only a model list
verifies a key and a 401 rejects it; any other answer to GET /models (404: the root
serves no list; 5xx) verifies nothing, so the 1-token chat is made. A rejected key is
tried at the provider's other regions and plans ([[endpoints]] rows), and the config
line that selects the one that accepted it is printed.

exit status: 0 all ok (warnings allowed), 1 a check failed, 2 usage or config error"""

EPILOG = """\
examples:
  llm-bridge doctor
  llm-bridge doctor --config llm_bridge.toml --offline
  llm-bridge doctor --provider dashscope --json"""


def configure(subparsers: Any) -> None:
    """Add ``doctor`` to the command's subparsers."""
    from ._remote import DEFAULT_TIMEOUT

    parser = subparsers.add_parser(
        "doctor",
        help="check the config, the credentials and the keys",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", metavar="FILE", help="the config file (default: as the SDK)")
    parser.add_argument(
        "--offline", action="store_true", help="no calls: check the config and credentials only"
    )
    parser.add_argument(
        "--provider",
        action="append",
        metavar="NAME",
        help="check only this provider (repeatable; default: every provider)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per call (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="the findings as JSON")
    parser.set_defaults(run=run)


@dataclass
class Finding:
    """One checked fact: its verdict, what was checked, what was found, how to fix it."""

    verdict: str  # "ok" | "warn" | "fail" | "skip"
    check: str  # "config", "gateway" or a provider's name
    finding: str
    fix: Optional[str] = None


class Report:
    """The findings so far: printed as they come (JSON: all at the end)."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.findings: list[Finding] = []

    def add(self, verdict: str, check: str, text: str, fix: Optional[str] = None) -> None:
        finding = Finding(verdict, check, text, fix)
        self.findings.append(finding)
        if not self.out.json_mode:
            self.out.finding(verdict, check, text, fix)

    @property
    def failed(self) -> bool:
        return any(f.verdict == "fail" for f in self.findings)


def run(args: argparse.Namespace) -> int:
    from .._errors import ConfigError
    from ._config_file import find_config

    out = Output(json_mode=args.json)
    report = Report(out)
    found = find_config(args.config)
    if found.path is not None and not found.path.is_file():
        report.add(
            "fail",
            "config",
            f"{found.path} ({found.reason}): no such file",
            "name an existing file with --config, or unset $LLM_BRIDGE_CONFIG to use none",
        )
        return _finish(out, report, found, code=2)
    try:
        config = _check_config(found, report)
    except ConfigError as error:
        report.add("fail", "config", str(error), "correct the file (the message names the key)")
        return _finish(out, report, found, code=2)
    names = args.provider or list(config.providers)
    unknown = [name for name in names if name not in config.providers]
    if unknown:
        out.error(f"unknown provider {unknown[0]!r} (known: {', '.join(sorted(config.providers))})")
        return 2
    with_credentials = 0
    for name in names:
        with_credentials += _check_provider(config, name, report, args)
    _check_aliases(config, report, args.provider)
    if not with_credentials and not args.provider:
        report.add(
            "fail",
            "credentials",
            "no provider has a credential",
            "set ZHIPUAI_API_KEY, DASHSCOPE_API_KEY or QIANFAN_API_KEY, or api_key under "
            "[providers.NAME] in the config",
        )
    return _finish(out, report, found, code=1 if report.failed else 0)


def _finish(out: Output, report: Report, found: ConfigFile, *, code: int) -> int:
    if out.json_mode:
        out.json(
            {
                "config": str(found.path) if found.path else None,
                "config_reason": found.reason,
                "findings": [asdict(f) for f in report.findings],
                "exit_code": code,
            }
        )
    return code


# --------------------------------------------------------------------------- config


def _check_config(found: ConfigFile, report: Report) -> Config:
    """Load the config (raises `ConfigError`) and say which one and that it is valid."""
    from ._config_file import load, load_gateway_table

    config = load(found)
    if found.path is None:
        _config_elsewhere(report)
    if config.on_usage:  # the SDK imports it when a client is made: a typo fails there
        from .._engine import _import_callback

        _import_callback(config.on_usage)
    if found.path is None:
        report.add("ok", "config", found.describe())
        return config
    hook = f"; on_usage {config.on_usage!r} imports" if config.on_usage else ""
    report.add("ok", "config", f"{found.describe()}: valid{hook}")
    gateway = load_gateway_table(found.path)
    if gateway is not None:
        from ..gateway._config import _redact_url

        ledger = gateway.ledger or ("the Redis stream" if gateway.state_kind == "redis" else None)
        report.add(
            "ok",
            "gateway",
            f"[gateway] valid: {len(gateway.keys)} key(s), state {_redact_url(gateway.state)}, "
            f"ledger {ledger or 'llm_bridge_ledger.sqlite'}",
        )
    return config


#: Directories that mark a repository's root: the search for a config above the working
#: directory stops there (a file beyond it belongs to another project).
_VCS_MARKERS = (".git", ".hg", ".svn", ".bzr")


def config_above(start: Path) -> Optional[Path]:
    """The nearest ``llm_bridge.toml`` in a parent of ``start``, looking up to the
    filesystem root or the first directory that is a repository's root (it included),
    whichever comes first; None when there is none. ``start`` itself is not searched: the
    SDK reads a config there already."""
    from .._config import DEFAULT_CONFIG_FILE

    here = start.resolve()
    if any((here / marker).exists() for marker in _VCS_MARKERS):
        return None  # the working directory is the repository's root: nothing above is ours
    for directory in here.parents:
        candidate = directory / DEFAULT_CONFIG_FILE
        if candidate.is_file():
            return candidate
        if any((directory / marker).exists() for marker in _VCS_MARKERS):
            return None
    return None


def _config_elsewhere(report: Report) -> None:
    """No config is read, but one sits in a parent directory: the SDK reads only
    ``$LLM_BRIDGE_CONFIG`` or ``./llm_bridge.toml``, so a program run from here would use
    the shipped tables, without the aliases that file maps (a starter config written by
    ``migrate PATH --write`` into PATH, say). Said as a warning with both ways to use it."""
    from .._config import CONFIG_ENV

    found = config_above(Path.cwd())
    if found is None:
        return
    report.add(
        "warn",
        "config",
        f"no config is read here, but {found} exists: the SDK reads only ${CONFIG_ENV} or "
        f"./{found.name} in the working directory, so its [models] aliases are not used",
        f"run the program from {found.parent}, or set {CONFIG_ENV}={found}",
    )


# --------------------------------------------------------------------------- aliases


def _has_credential(config: Config, name: str) -> bool:
    keys = _credentials(config, name)
    return any(value for field, value in keys.items() if field != "api_key_from")


def _check_aliases(config: Config, report: Report, only: Optional[list[str]]) -> None:
    """Each ``[models]`` alias, target by target: a provider without a credential makes
    every call to it fail with ``ConfigError`` before any request, which the per-provider
    ``skip`` lines do not say. A missing key is not a fault a fallback list moves past
    (``[policy] fallback_on``), so an alias whose first target lacks one fails; one whose
    later targets lack one warns (falling back to them would fail). With ``--provider``,
    only aliases reaching those providers are checked."""
    from .._errors import OpenAIError
    from .._routing import resolve_model
    from ._config_file import credential_variables

    checked = 0
    before = len(report.findings)
    for alias in sorted(config.aliases):
        try:
            routes = resolve_model(config, alias, client_provider=None)
        except OpenAIError as error:  # a dangling target is refused at load; defensive
            report.add("fail", "models", f"alias {alias!r}: {error}")
            continue
        if only and not any(route.provider in only for route in routes):
            continue
        checked += 1
        missing = [r for r in routes if not _has_credential(config, r.provider)]
        if not missing:
            continue
        providers = sorted({r.provider for r in missing})
        variables = []
        for provider in providers:
            ways = credential_variables(config.provider(provider)) or [
                f"api_key under [providers.{provider}]"
            ]
            variables.append(f"{' or '.join(ways)} ({provider})")
        targets = ", ".join(f"{r.provider}/{r.model}" for r in missing)
        if routes[0] in missing:
            # a missing key is no fault a fallback list moves past: the call fails here
            chain = "" if len(routes) == 1 else " (a missing key does not fall back)"
            report.add(
                "fail",
                "models",
                f"alias {alias!r} -> {routes[0].provider}/{routes[0].model}: no credential "
                f"for {routes[0].provider}, so every call to {alias!r} fails with "
                f"ConfigError{chain}",
                f"set {'; '.join(variables)}, or point the alias at a provider that has a key",
            )
        else:
            report.add(
                "warn",
                "models",
                f"alias {alias!r}: no credential for {targets}: calls go to "
                f"{routes[0].provider}/{routes[0].model}, and falling back to {targets} "
                "would fail with ConfigError",
                f"set {'; '.join(variables)}, or remove it from the list",
            )
    if checked and len(report.findings) == before:
        report.add("ok", "models", f"{checked} alias(es): every target's provider has a credential")


# --------------------------------------------------------------------------- providers


def _credentials(config: Config, name: str) -> dict[str, Optional[str]]:
    """What the engine would give the adapter (`Engine._keys`, with no client arguments)."""
    from .._config import CREDENTIAL_FIELDS

    keys = {field: config.secret(name, field) for field in CREDENTIAL_FIELDS}
    keys["api_key_from"] = config.secret_source(name, "api_key")
    return keys


def _sources(config: Config, name: str, keys: dict[str, Optional[str]]) -> str:
    """``api_key abcd… (49 characters) from ZHIPUAI_API_KEY; ...``: the credentials found."""
    from .._config import CREDENTIAL_FIELDS

    parts = []
    for field in CREDENTIAL_FIELDS:
        value = keys.get(field)
        if value:
            source = config.secret_source(name, field)
            origin = f"the config ({config.source})" if source == "config" else source
            parts.append(f"{field} {mask(value)} from {origin}")
    return "; ".join(parts)


def _check_provider(config: Config, name: str, report: Report, args: Any) -> int:
    """Report on one provider; 1 when it has a credential (0: skipped)."""
    from .._errors import CodingPlanWarning, OpenAIError
    from ._config_file import credential_variables
    from ._remote import adapter_of, client_for, endpoint_of, where

    spec = config.provider(name)
    keys = _credentials(config, name)
    if not any(value for field, value in keys.items() if field != "api_key_from"):
        ways = [*credential_variables(spec), f"api_key under [providers.{name}]"]
        report.add("skip", name, f"no credential (set {', or '.join(ways)})")
        return 0
    sources = _sources(config, name, keys)
    used, notes = "", []
    if spec.protocol == "qianfan":
        plan = _qianfan_plan(name, spec, keys, sources, report)
        if plan is None:
            return 1
        used, notes = plan
    try:
        with warnings.catch_warnings():  # the Coding Plan warning becomes a finding below
            warnings.simplefilter("ignore", CodingPlanWarning)
            client = client_for(config, name, timeout=args.timeout)
    except OpenAIError as error:  # an incomplete credential, found before any call
        report.add("fail", name, f"{sources}: {error}")
        return 1
    try:
        adapter = adapter_of(client, name)
        place = where(spec, adapter)
        endpoint = endpoint_of(spec, adapter)
    finally:
        client.close()
    report.add("ok", name, f"{sources}{used}; sent to {place}")
    if endpoint is not None and endpoint.plan == "coding":
        notes.insert(0, _coding_plan(name, endpoint.url))
    for note in notes:
        report.add(note.verdict, note.check, note.finding, note.fix)
    if not args.offline:
        _check_online(config, name, spec, report, args.timeout)
    return 1


def _coding_plan(name: str, url: str) -> Finding:
    """The warning for requests sent to a Coding Plan host: its terms forbid scripts and
    back-ends, which is what a migrated program is (the SDK warns once at run time; here
    it is a finding with its fix, in the text and the JSON alike)."""
    return Finding(
        "warn",
        name,
        f"requests go to the Coding Plan host {url}: the plan is meant for interactive "
        "coding tools; its terms forbid use from scripts and application back-ends, and "
        "the provider may suspend keys used so",
        f'use a pay-as-you-go key and the standard plan: remove plan = "coding" (or the '
        f"Coding Plan base_url / OPENAI_BASE_URL) for [providers.{name}]",
    )


def _qianfan_plan(
    name: str, spec: ProviderConfig, keys: dict[str, Any], sources: str, report: Report
) -> Optional[tuple[str, list[Finding]]]:
    """Which Qianfan credential is used, and how (``"; used as ..."``), with warnings to
    add after it; None when the keys cannot work (reported: application keys get the v1
    explanation)."""
    from .._errors import OpenAIError
    from ..adapters.qianfan import V1_CLOSED_ON, _v1_closed, key_kind, plan_keys

    try:
        plan = plan_keys(name, spec, keys)
    except OpenAIError as error:
        if str(error) != _v1_closed(name):
            report.add("fail", name, f"{sources}: {error}")
            return None
        report.add(
            "fail",
            name,
            f"{sources}: these are a Qianfan application's API Key and Secret Key, which work "
            f"only on Qianfan's v1 API, shut down on {V1_CLOSED_ON} (docs/providers/qianfan.md)",
            "create a v2 API key in the Qianfan console (API Key -> create; it starts with "
            "'bce-v3/') and set QIANFAN_API_KEY, or use IAM account keys (QIANFAN_ACCESS_KEY / "
            f'QIANFAN_SECRET_KEY); a private deployment still serving v1: api = "v1" under '
            f"[providers.{name}]",
        )
        return None
    if plan.kind == "bearer":
        used = "; used as a v2 API key"
    elif plan.kind == "iam":
        fields = "iam_access_key" if plan.key == keys.get("iam_access_key") else "api_key"
        used = f"; {fields} and its secret used as IAM account keys (they mint v2 tokens)"
    else:
        used = "; used as an application's keys on the v1 API"
    notes = []
    if plan.api == "v1":
        notes.append(
            Finding(
                "warn",
                name,
                f'api = "v1": Qianfan\'s public v1 API was shut down on {V1_CLOSED_ON}; only a '
                f"private deployment still serves it",
                f'remove api = "v1" under [providers.{name}] and use a v2 key (bce-v3/...)',
            )
        )
    elif plan.assumed and key_kind(plan.key) == "unknown":  # neither form: a guess
        notes.append(Finding("warn", name, plan.assumed))
    return used, notes


# --------------------------------------------------------------------------- online


def _check_online(
    config: Config, name: str, spec: ProviderConfig, report: Report, timeout: float
) -> None:
    """One call at the configured root; on a rejected key, one at each other region/plan."""
    from .._errors import AuthenticationError, PermissionDeniedError, RateLimitError
    from ._remote import check_key

    with report.out.status(f"checking {name}…"):
        result = check_key(config, name, base_url=None, timeout=timeout)
    if result.ok:
        report.add("ok", name, f"key accepted at {result.where} ({result.how}: {result.detail})")
        return
    if result.accepted:
        error = result.error
        if (
            isinstance(error, RateLimitError)
            and getattr(error, "code", None) == "insufficient_quota"
        ):
            report.add(
                "fail",
                name,
                f"key accepted, but the account cannot pay ({result.how}): {result.detail}",
                "top up the account, or check its resource package, in the provider's console",
            )
        elif isinstance(error, RateLimitError):
            report.add("warn", name, f"key accepted, rate limited just now: {result.detail}")
        elif isinstance(error, PermissionDeniedError):
            report.add(
                "fail",
                name,
                f"key accepted, but the account was refused ({result.how}): {result.detail}",
                "check the account in the provider's console (its status, balance, and which "
                "models it may use)",
            )
        else:
            report.add("warn", name, f"key accepted; {result.how} then failed: {result.detail}")
        return
    if result.error is None:  # no call could be made
        report.add("warn", name, f"key not checked: {result.detail}")
        return
    if not isinstance(result.error, AuthenticationError):  # not reached
        report.add(
            "fail",
            name,
            f"{result.how} at {result.where}: {result.detail}",
            "check the network (a proxy: HTTPS_PROXY) and the base URL",
        )
        return
    _probe_elsewhere(config, name, spec, report, timeout, result)


def _probe_elsewhere(
    config: Config,
    name: str,
    spec: ProviderConfig,
    report: Report,
    timeout: float,
    first: KeyCheck,
) -> None:
    """The key was rejected where it is sent: try it at every other region and plan."""
    from ._remote import check_key

    current = _current_endpoint(config, name, spec)
    tried: list[str] = []
    for endpoint in _alternatives(spec, current):
        with report.out.status(f"trying the {name} key at {endpoint.label or endpoint.region}…"):
            result = check_key(config, name, base_url=endpoint.url, timeout=timeout)
        if result.accepted:
            report.add(
                "fail",
                name,
                f"key rejected at {first.where}, accepted at {result.where} ({result.how})",
                _settings_fix(config, name, spec, endpoint),
            )
            return
        tried.append(endpoint.label or endpoint.url)
    elsewhere = f"; also rejected at {', '.join(tried)}" if tried else ""
    report.add(
        "fail",
        name,
        f"key rejected at {first.where} ({first.how}): {first.detail}{elsewhere}",
        "check the key: copy it again from the provider's console (of the region and plan "
        "it was made for), or make a new one",
    )


def _current_endpoint(config: Config, name: str, spec: ProviderConfig) -> Optional[Endpoint]:
    """The row the configured root is: a base URL (config or environment) if it is one,
    else the row for the configured api, region and plan."""
    explicit = config.base_url(name)
    if explicit:
        return spec.endpoint_of(explicit)
    return spec.endpoint()


def _alternatives(spec: ProviderConfig, current: Optional[Endpoint]) -> list[Endpoint]:
    """One row per other (region, plan), of the current API where the pair has it."""
    api = current.api if current is not None else spec.api
    pairs: dict[tuple[str, str], Endpoint] = {}
    for endpoint in spec.endpoints:
        pair = (endpoint.region, endpoint.plan)
        if current is not None and pair == (current.region, current.plan):
            continue
        if pair not in pairs or (pairs[pair].api != api and endpoint.api == api):
            pairs[pair] = endpoint
    return list(pairs.values())


def _settings_fix(config: Config, name: str, spec: ProviderConfig, endpoint: Endpoint) -> str:
    """The config lines that send the provider to ``endpoint``."""
    first = spec.endpoints[0]
    now = {
        "api": spec.api or first.api,
        "region": spec.region or first.region,
        "plan": spec.plan or first.plan,
    }
    lines = [
        f'{key} = "{getattr(endpoint, key)}"'
        for key in ("region", "plan", "api")
        if getattr(endpoint, key) != now[key]
    ]
    fix = f"write {'; '.join(lines)} under [providers.{name}]" if lines else ""
    extra = []
    if spec.base_url:
        extra.append(f"remove base_url under [providers.{name}]")
    if config.base_url_from_env(name) and spec.base_url_env:
        extra.append(f"unset {spec.base_url_env}")
    return "; and ".join([part for part in (fix, *extra) if part])
