"""``llm-bridge models``: the catalogue llm-bridge routes by, or what a provider's API lists.

Without ``--remote`` nothing is called: the rows are the provider tables
(``providers/*.toml``) as the config amends them (its models, its ``[prices]``), with
the context window, prices in yuan per million tokens, capabilities and retirement. With
``--remote`` each provider with a credential is asked (`_remote.list_models`, a real
authenticated ``GET /models``) where its API has a models endpoint; the others are named.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, Optional

from ._output import Column, Output

if TYPE_CHECKING:
    from .._config import Config, ModelInfo

__all__ = ["configure", "run"]

DESCRIPTION = """\
List the model catalogue: context window, prices (CNY per million tokens, input/output),
capabilities, and retired models with their successors. The config's own models and
[prices] are included; its aliases are listed after the models.

With --remote, ask each provider that has a credential what its API lists (one
authenticated GET /models each): DashScope (compatible mode), Qianfan v2 and
OpenAI-compatible providers have a models endpoint; Zhipu's v4 API has none (nor do
DashScope's native API and Qianfan's v1), which is said instead. A root that answers
GET /models with 404 (a proxy or private deployment that serves no list) is reported as
serving none, and counts as a failed call.

exit status: 0 ok, 1 a provider call failed, 2 usage or config error"""

EPILOG = """\
examples:
  llm-bridge models --provider zhipu
  llm-bridge models --json | jq '.models[] | select(.retired == null) | .model'
  llm-bridge models --remote --provider dashscope"""


def configure(subparsers: Any) -> None:
    """Add ``models`` to the command's subparsers."""
    from ._remote import DEFAULT_TIMEOUT

    parser = subparsers.add_parser(
        "models",
        help="the model catalogue, or (--remote) what a provider lists",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--provider", action="append", metavar="NAME", help="only this provider (repeatable)"
    )
    parser.add_argument(
        "--remote", action="store_true", help="ask each provider's API (an authenticated call)"
    )
    parser.add_argument("--config", metavar="FILE", help="the config file (default: as the SDK)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"per --remote call (default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ._config_file import find_config, load

    out = Output(json_mode=args.json)
    config = load(find_config(args.config))
    names = args.provider or list(config.providers)
    for name in names:
        config.provider(name)  # an unknown name is a ConfigError (exit 2), with suggestions
    if args.remote:
        return _remote(config, names, explicit=bool(args.provider), out=out, timeout=args.timeout)
    return _catalogue(config, names, out)


# --------------------------------------------------------------------------- catalogue

CATALOGUE_COLUMNS = (
    Column("provider"),
    Column("model"),
    Column("kind"),
    Column("context", right=True),
    Column("max_out", right=True),
    Column("in_cny/M", right=True),
    Column("out_cny/M", right=True),
    Column("capabilities"),
    Column("retired"),
)


def _entry(config: Config, provider: str, name: str, info: ModelInfo) -> dict[str, Any]:
    price = config.price(provider, name)
    capabilities = list(info.capabilities)
    if info.thinking == "always":
        capabilities.append("always-thinking")  # cannot be turned off: it spends tokens
    return {
        "provider": provider,
        "model": name,
        "kind": info.kind,
        "context_window": info.context_window,
        "max_output_tokens": info.max_output_tokens,
        "input_cny_per_million": price.input if price is not None else None,
        "output_cny_per_million": price.output if price is not None else None,
        "capabilities": capabilities,
        "retired": info.retired,
        "successor": info.successor,
    }


def _retired(entry: dict[str, Any]) -> Optional[str]:
    if not entry["retired"]:
        return None
    successor = entry["successor"]
    return f"{entry['retired']} -> {successor}" if successor else str(entry["retired"])


def _number(value: Any) -> Any:
    """A price as written: ``0.8``, not ``0.80000`` (exact: Decimal, never float)."""
    if value is None:
        return None
    text = format(value.normalize(), "f") if hasattr(value, "normalize") else str(value)
    return text


def _catalogue(config: Config, names: list[str], out: Output) -> int:
    entries = [
        _entry(config, name, model, info)
        for name in names
        for model, info in config.providers[name].models.items()
    ]
    aliases = dict(config.aliases)
    if out.json_mode:
        out.json({"config": config.source, "models": entries, "aliases": aliases})
        return 0
    rows = [
        [
            e["provider"],
            e["model"],
            e["kind"],
            e["context_window"],
            e["max_output_tokens"],
            _number(e["input_cny_per_million"]),
            _number(e["output_cny_per_million"]),
            ", ".join(e["capabilities"]) or None,
            _retired(e),
        ]
        for e in entries
    ]
    out.table(CATALOGUE_COLUMNS, rows)
    if aliases:
        out.table(
            (Column("alias"), Column("targets")),
            [[alias, " -> ".join(targets)] for alias, targets in aliases.items()],
        )
    retired = sum(1 for e in entries if e["retired"])
    out.note(
        f"{len(entries)} models ({retired} retired) from {config.source}; prices in CNY per "
        f"million tokens"
    )
    return 0


# --------------------------------------------------------------------------- remote

REMOTE_COLUMNS = (
    Column("provider"),
    Column("model"),
    Column("owned_by"),
    Column("catalogued"),
    Column("retired"),
)


def _has_credential(config: Config, name: str) -> bool:
    from .._config import CREDENTIAL_FIELDS

    return any(config.secret(name, field) for field in CREDENTIAL_FIELDS)


def _remote(
    config: Config, names: list[str], *, explicit: bool, out: Output, timeout: float
) -> int:
    from .._errors import APIError
    from ._remote import (
        adapter_of,
        client_for,
        endpoint_of,
        has_models_endpoint,
        list_models,
        listing_failure,
        serves_no_list,
        where,
    )

    if not explicit:
        names = [name for name in names if _has_credential(config, name)]
        if not names:
            out.error(
                "--remote: no provider has a credential (set ZHIPUAI_API_KEY, "
                "DASHSCOPE_API_KEY, QIANFAN_API_KEY ..., or api_key in the config)"
            )
            return 2
    reports: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    failed = False
    for name in names:
        spec = config.provider(name)
        client = client_for(config, name, timeout=timeout)  # no credential: OpenAIError, 2
        try:
            adapter = adapter_of(client, name)
            report: dict[str, Any] = {"provider": name, "root": where(spec, adapter)}
            reports.append(report)
            if not has_models_endpoint(adapter):
                endpoint = endpoint_of(spec, adapter)
                api = f"{endpoint.api} API" if endpoint is not None else "API"
                report["models"] = None
                report["note"] = (
                    f"{spec.display_name or name}'s {api} has no models endpoint: the catalogue "
                    f"(llm-bridge models --provider {name}) is what llm-bridge knows"
                )
                continue
            try:
                with out.status(f"asking {name}…"):
                    listed = list_models(client, name)
            except APIError as error:
                failed = True
                report["error"] = str(error)
                if serves_no_list(error):  # a proxy, a private deployment, a fake
                    report["error"] = (
                        f"{report['root']} serves no model list ({listing_failure(error)}): "
                        f"the catalogue (llm-bridge models --provider {name}) is what "
                        f"llm-bridge knows"
                    )
                continue
        finally:
            client.close()
        report["models"] = []
        for item in sorted(listed, key=lambda m: str(m["id"])):
            model = str(item["id"])
            info = spec.model(model)
            entry = {
                "id": model,
                "owned_by": item.get("owned_by"),
                "catalogued": info is not None,
                "retired": info.retired if info is not None else None,
            }
            report["models"].append(entry)
            rows.append([name, model, entry["owned_by"], entry["catalogued"], entry["retired"]])
    if out.json_mode:
        out.json({"config": config.source, "providers": reports})
    else:
        if rows:
            out.table(REMOTE_COLUMNS, rows)
        for report in reports:
            if "note" in report:
                out.note(f"{report['provider']}: {report['note']}")
            elif "error" in report:
                out.error(f"{report['provider']}: {report['error']}")
            else:
                known = sum(1 for m in report["models"] if m["catalogued"])
                out.note(
                    f"{report['provider']}: {len(report['models'])} models listed by "
                    f"{report['root']}; {known} of them in the catalogue"
                )
    return 1 if failed else 0
