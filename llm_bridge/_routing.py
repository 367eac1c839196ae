"""Model name -> the ordered list of (provider, upstream model) to try.

The code being migrated says ``model="gpt-4o"``; the config says where that goes. A name
is resolved, first match wins, as:

1. an alias from the config's ``[models]`` table (recursively; a list is a fallback chain);
2. ``"provider/model"`` when ``provider`` is a known provider;
3. the client's own ``provider=``: bare names go there even when not catalogued, because
   providers ship new models weekly and a catalogue is always a little behind;
4. a catalogue entry (``"glm-4-flash"`` -> zhipu), case-insensitively, default provider first;
5. the config's ``default_provider``.

Anything else is a `ModelNotFoundError` naming the nearest known names.
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional

from ._config import Config
from ._errors import ModelNotFoundError

__all__ = ["Route", "resolve_model"]


class Route(NamedTuple):
    provider: str
    model: str


def resolve_model(config: Config, model: str, *, client_provider: Optional[str]) -> list[Route]:
    """The targets for ``model``, in the order they are to be tried."""
    if not isinstance(model, str) or not model.strip():
        raise ModelNotFoundError(
            f"model must be a non-empty string, got {model!r}", model=str(model), suggestions=[]
        )
    if model in config.aliases:
        return _expand_alias(config, model, client_provider)
    route = _resolve_single(config, model, client_provider)
    if route is None:
        suggestions = _nearest(config, model)
        hint = _openai_name_hint(config, model) or (
            f"; nearest known names: {', '.join(suggestions)}" if suggestions else ""
        )
        where = (
            f"the config ({config.source})"
            if config.source != "defaults"
            else "a config (none was loaded: no $LLM_BRIDGE_CONFIG, no ./llm_bridge.toml in "
            f"{os.getcwd()})"
        )
        raise ModelNotFoundError(
            f"model {model!r} routes to no provider: it is not an alias in {where}, has no "
            f"known 'provider/' prefix, is in no provider's catalogue, and no default_provider "
            f"or provider= is set{hint}",
            model=model,
            suggestions=suggestions,
        )
    return [route]


def _expand_alias(config: Config, alias: str, client_provider: Optional[str]) -> list[Route]:
    routes: list[Route] = []
    for target in config.aliases[alias]:
        # Cycles and dangling targets were rejected when the config was loaded.
        found = (
            _expand_alias(config, target, client_provider)
            if target in config.aliases
            else [_resolve_single(config, target, client_provider)]
        )
        routes.extend(route for route in found if route is not None and route not in routes)
    return routes


def _resolve_single(config: Config, model: str, client_provider: Optional[str]) -> Optional[Route]:
    if "/" in model:
        prefix, rest = model.split("/", 1)
        if prefix in config.providers and rest:
            return Route(prefix, _canonical(config, prefix, rest))
    if client_provider is not None:
        return Route(client_provider, _canonical(config, client_provider, model))
    for name in _search_order(config):
        canonical = config.providers[name].canonical_model(model)
        if canonical is not None:
            return Route(name, canonical)
    if config.default_provider is not None:
        return Route(config.default_provider, model)
    return None


def _canonical(config: Config, provider: str, model: str) -> str:
    return config.providers[provider].canonical_model(model) or model


def _search_order(config: Config) -> list[str]:
    names = list(config.providers)
    if config.default_provider in names:
        names.remove(config.default_provider)
        names.insert(0, config.default_provider)
    return names


def _nearest(config: Config, model: str) -> list[str]:
    candidates = list(config.aliases)
    for name, provider in config.providers.items():
        candidates.extend(provider.models)
        candidates.extend(f"{name}/{m}" for m in provider.models)
    import difflib  # only an error message needs it

    return difflib.get_close_matches(model, candidates, n=5, cutoff=0.5)


#: How OpenAI's model names begin: code moved from openai names them, and no provider
#: serves them, so the nearest names by spelling would only mislead.
_OPENAI_NAMES = ("gpt-", "chatgpt-", "o1", "o3", "o4", "text-embedding-", "davinci", "babbage")


def _openai_name_hint(config: Config, model: str) -> str:
    """For an OpenAI model name: how to alias it to a provider's model, with the stand-in
    (see ``[stand_ins]`` in the provider tables) of a provider that has a key, if any."""
    if not model.lower().startswith(_OPENAI_NAMES):
        return ""
    kind = "embedding" if "embedding" in model else "fast"
    keyed = [name for name in _search_order(config) if config.api_key(name)]
    for name in [*keyed, *_search_order(config)]:
        stand_in = config.providers[name].stand_ins.get(kind)
        if stand_in:
            return (
                f"; {model!r} is an OpenAI model name: alias it to a provider's model in the "
                f'config, e.g. [models] "{model}" = "{name}/{stand_in}" (`llm-bridge migrate` '
                f"writes these aliases for a codebase)"
            )
    return ""
