"""``GET /models`` and ``GET /models/{id}`` answered from the provider tables and aliases.

The catalogue is what llm-bridge knows a client can reach: the routed provider's models
(or, for a client without one, those of every provider it has credentials for) and the
config's aliases, whose ``owned_by`` says ``llm-bridge-alias``. A provider without
credentials is left out as OpenAI leaves out what a key cannot use: a gateway's clients
fill their model menus from this list. Asking the providers themselves is the CLI's
``models --remote``.

A model its provider has retired (a catalogue entry with ``retired``) is left out of the
list too: a menu that offers it offers a model the provider no longer serves (a request
naming it is still sent, with a `ModelRetiredWarning`, as some regions lag). It can still
be retrieved by name, and its entry then says since when: OpenAI's ``shutdown_date`` ("the
date when the model will shut down", YYYY-MM-DD, as the catalogue's ``retired``), with the
catalogue's ``successor`` beside it where there is one, for the code that still names it.

``created`` is 0: the provider tables record no release dates, and a date made up from
a snapshot's name or a price's reading date would be a guess presented as a fact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import httpx

from ._errors import ConfigError, NotFoundError, OpenAIError, local_error

if TYPE_CHECKING:
    from ._engine import Engine

__all__ = ["model_entry", "model_list"]


def _model(name: str, owner: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}


def model_list(engine: Engine, provider: Optional[str]) -> dict[str, Any]:
    """The page ``client.models.list()`` (and the gateway's ``GET /v1/models``) reads: the
    catalogued models that are not retired, then the aliases."""
    config = engine.config
    names = [provider] if provider else [name for name in config.providers if _usable(engine, name)]
    data = [
        _model(model, name)
        for name in names
        for model, info in config.providers[name].models.items()
        if not info.retired
    ]
    data.extend(
        _model(alias, "llm-bridge-alias")
        for alias in config.aliases
        if any(_usable(engine, route.provider) for route in _routes(engine, alias))
    )
    return {"object": "list", "data": data}


def _routes(engine: Engine, alias: str) -> list[Any]:
    """Where ``alias`` goes (none, if it cannot be routed): an alias is listed when one of
    its targets is a provider with credentials here, so a menu never offers a name whose
    every target has none (`model_entry` refuses it, and so would the call)."""
    try:
        return engine.routes(alias)
    except OpenAIError:  # (ModelNotFoundError, ConfigError)
        return []


def model_entry(engine: Engine, model: str) -> dict[str, Any]:
    """One model, if the config can route it and it is an alias or catalogued; a retired
    one too, with its ``shutdown_date`` (and ``successor``)."""
    route = engine.routes(model)[0]
    config = engine.config
    why = None
    if model not in config.aliases and config.provider(route.provider).model(route.model) is None:
        from ._config import _did_you_mean

        why = f"is not in the {route.provider} catalogue"
        why += _did_you_mean(
            route.model, [*config.providers[route.provider].models, *config.aliases], 0.75
        )
    elif not _usable(engine, route.provider):
        why = f"is served by {route.provider}, which has no credentials here"
    if why is not None:
        raise local_error(
            NotFoundError,
            f"The model {model!r} {why}",
            request=httpx.Request("GET", f"models/{model}"),
            code="model_not_found",
            provider=route.provider,
        )
    if model in config.aliases:
        return _model(model, "llm-bridge-alias")
    entry = _model(model, route.provider)
    info = config.provider(route.provider).model(route.model)
    if info is not None and info.retired:
        # Left out of the list; said here, so a caller who asks by name learns why.
        entry["shutdown_date"] = info.retired
        if info.successor:
            entry["successor"] = info.successor
    return entry


def _usable(engine: Engine, provider: str) -> bool:
    """Whether requests can go to ``provider``: its credentials are there (its adapter,
    built on first use and kept, can be made)."""
    try:
        engine.adapter(provider)
    except ConfigError:
        return False
    return True
