"""Which provider an API root belongs to: ``https://dashscope.aliyuncs.com/compatible-mode/v1``
is DashScope's compatible mode in Beijing, ``https://open.bigmodel.cn/api/paas/v4`` is Zhipu.

Code that already calls a provider's OpenAI-compatible endpoint with the openai client names
that endpoint as its ``base_url``. Recognising it lets such code keep its ``base_url`` and
gain the provider's quirks handled: through ``llm_bridge.OpenAI(base_url=...)``,
``OPENAI_BASE_URL``, or a plain openai client given ``llm_bridge.http_client()``.

The roots are data: every provider table's ``[[endpoints]]`` (each with its ``api``,
``region`` and ``plan``) and any ``base_url`` a config sets. OpenAI's own root is not a
provider root here: it is the openai client's default, so it says nothing about where the
user meant to go.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional
from urllib.parse import urlsplit

from ._config import Config

__all__ = ["KnownRoot", "find_root", "known_roots", "recognise"]


class KnownRoot(NamedTuple):
    """A provider's API root, and the provider settings that root implies."""

    provider: str
    root: str  # scheme://host/path, no trailing slash
    settings: dict[str, Any]  # e.g. {"api": "compatible", "region": "intl"}


def _normalise(url: str) -> str:
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def known_roots(config: Config) -> list[KnownRoot]:
    """Every provider root the tables name, longest first (so a deeper path wins)."""
    roots: list[KnownRoot] = []
    for name, spec in config.providers.items():
        if name == "openai":
            continue
        if spec.base_url:
            roots.append(KnownRoot(name, _normalise(spec.base_url), {}))
        for endpoint in spec.endpoints:
            settings = {"api": endpoint.api, "region": endpoint.region, "plan": endpoint.plan}
            roots.append(KnownRoot(name, _normalise(endpoint.url), settings))
    return sorted(roots, key=lambda r: len(r.root), reverse=True)


def recognise(config: Config, url: str) -> Optional[KnownRoot]:
    """The known root ``url`` starts with (a base URL, or a request URL below it), if any."""
    return find_root(known_roots(config), url)


def find_root(roots: list[KnownRoot], url: str) -> Optional[KnownRoot]:
    """`recognise` over roots listed once (a transport asks for every request)."""
    target = _normalise(url)
    for known in roots:
        if target == known.root or target.startswith(known.root + "/"):
            return known
    return None
