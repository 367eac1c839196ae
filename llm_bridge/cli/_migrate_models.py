"""``llm-bridge migrate``: OpenAI model names mapped to provider models, as a starter config.

A name is sorted into what it is for (`classify`): a kind of model llm-bridge does not
serve (images, audio, moderation, video, the legacy completions API), an embedding model,
a reasoning model (the o-series, GPT-5, ``*-thinking``), a small fast model (``mini``,
``nano``, ``3.5``), else a flagship chat model. How the code uses it decides where the name
alone does not (a name only passed to ``embeddings.create`` is an embedding model).

Each class of model gets one model per provider: the provider table's ``[stand_ins]``
(``providers/*.toml``, overridable in a config), checked against the catalogue as loaded,
so a retired or removed stand-in falls back to the catalogue's own best fit (`pick`). The comments
written beside each alias come from the catalogue too: context window, prices, thinking,
native or emulated json_schema, embedding dimensions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Optional

from ._config_file import credential_variables, toml_string

__all__ = [
    "Choice",
    "choose",
    "classify",
    "pick",
    "starter_config",
]

#: What each class is, in a comment.
_ABOUT = {
    "fast": "a small, fast chat model",
    "flagship": "a general chat model",
    "reasoning": "a reasoning model",
    "embedding": "an embedding model",
}

#: OpenAI model names of kinds llm-bridge does not serve, and the API (as `_front` names
#: it) they belong to.
_UNSERVED = (
    (re.compile(r"^(dall-e|gpt-image|chatgpt-image)", re.I), "images"),
    (re.compile(r"realtime", re.I), "realtime"),
    (re.compile(r"(whisper|^tts-|-tts|transcribe|-audio|-voice)", re.I), "audio"),
    (re.compile(r"moderation", re.I), "moderations"),
    (re.compile(r"^sora", re.I), "videos"),
    (
        re.compile(r"^(davinci|babbage|curie|ada$|text-davinci|gpt-3\.5-turbo-instruct)", re.I),
        "completions",
    ),
    (re.compile(r"^computer-use", re.I), "responses-computer-use"),
)
_EMBEDDING = re.compile(r"embedding|^text-search-|^text-similarity-", re.I)
_REASONING = re.compile(r"^o\d|^gpt-5(?!.*-chat)|thinking|reason|^codex-", re.I)
_FAST = re.compile(r"mini|nano|3\.5|flash|lite|small|turbo-instruct", re.I)


def classify(name: str, used_for: Iterable[Optional[str]] = ()) -> str:
    """``fast``, ``flagship``, ``reasoning``, ``embedding``, or ``unserved:<api>``."""
    uses = {u for u in used_for if u}
    for pattern, api in _UNSERVED:
        if pattern.search(name):
            return f"unserved:{api}"
    if _EMBEDDING.search(name) or uses == {"embedding"}:
        return "embedding"
    if _REASONING.search(name):
        return "reasoning"
    if _FAST.search(name):
        return "fast"
    return "flagship"


@dataclass(frozen=True)
class Choice:
    """Where an OpenAI model name goes: ``target`` (``provider/model``), or None with the
    reason in ``about`` (a kind llm-bridge does not serve, a name that routes already)."""

    name: str
    cls: str
    target: Optional[str]
    about: str
    lines: tuple[str, ...] = ()


def pick(config: Any, provider: str, cls: str) -> Optional[str]:
    """The model for ``cls`` on ``provider``: its ``[stand_ins]`` entry when the catalogue
    has it current, else the catalogue's best fit (None if it has no model of that kind)."""
    spec = config.provider(provider)
    wanted = spec.stand_ins.get(cls)
    if wanted:
        info = spec.model(wanted)
        if info is not None and not info.retired:
            return spec.canonical_model(wanted)
    kind = "embedding" if cls == "embedding" else "chat"
    current = [
        (name, info) for name, info in spec.models.items() if info.kind == kind and not info.retired
    ]
    if not current:
        return None
    if cls == "embedding":
        return current[0][0]
    if cls == "reasoning":
        thinking = [c for c in current if c[1].thinking is not None]
        current = thinking or current

    def price(entry: tuple[str, Any]) -> Decimal:
        info = entry[1]
        return (info.input_price or Decimal(0)) + (info.output_price or Decimal(0))

    priced = [c for c in current if c[1].input_price is not None] or current
    with_tools = [c for c in priced if c[1].supports("tools")] or priced
    ranked = sorted(with_tools, key=price)
    return (ranked[0] if cls == "fast" else ranked[-1])[0]


def choose(
    config: Any,
    name: str,
    used_for: Iterable[Optional[str]],
    providers: Sequence[str],
) -> Choice:
    """Where ``name`` should go, on the first of ``providers`` that has a model for it,
    with the comment lines that explain the choice and name the alternatives."""
    from .._errors import OpenAIError
    from .._routing import resolve_model

    cls = classify(name, used_for)
    if cls.startswith("unserved:"):
        api = cls.split(":", 1)[1]
        return Choice(name, cls, None, _unserved_text(api))
    if name not in config.aliases and not _OPENAI_NAME.match(name):
        try:
            route = resolve_model(config, name, client_provider=None)[0]
        except OpenAIError:
            pass
        else:
            return Choice(name, cls, None, f"routes to {route.provider}/{route.model} as it is")
    targets = [(p, pick(config, p, cls)) for p in providers]
    targets = [(p, m) for p, m in targets if m]
    if not targets:
        return Choice(name, cls, None, f"no provider here has {_ABOUT[cls]}")
    provider, model = targets[0]
    about = _ABOUT[cls]
    if not _OPENAI_NAME.match(name):
        about = f"not a model name llm-bridge knows; taken as {about}"
    lines = list(_describe(config, provider, model, cls))
    others = [f'"{p}/{m}" ({_price(config, p, m)})' for p, m in targets[1:]]
    if others:
        lines.append("Instead: " + ", ".join(others) + ".")
    return Choice(name, cls, f"{provider}/{model}", about, tuple(lines))


_OPENAI_NAME = re.compile(
    r"^(gpt-|chatgpt-|o\d(-|$)|text-embedding-|text-search-|text-similarity-|codex-)", re.I
)


def _unserved_text(api: str) -> str:
    from .._front import endpoint_of

    if api == "responses-computer-use":
        return "computer use is OpenAI's built-in tool, not served by llm-bridge: no alias"
    what = endpoint_of("POST", f"/{api}").api
    return f"{what} is not served by llm-bridge: no alias"


def _price(config: Any, provider: str, model: str) -> str:
    price = config.price(provider, model)
    if price is None:
        return "price not in the catalogue"
    if price.input == 0 and price.output == 0:
        return "free"
    if price.output == 0:
        return f"{_num(price.input)} CNY/M tokens"
    return f"{_num(price.input)}/{_num(price.output)} CNY/M tokens in/out"


def _num(value: Any) -> str:
    return format(Decimal(value).normalize(), "f")


def _describe(config: Any, provider: str, model: str, cls: str) -> Iterable[str]:
    """What the catalogue says of a target, for the comment above its alias."""
    from .._structured import emulates

    spec = config.provider(provider)
    info = spec.model(model)
    if info is None:
        return
    facts = []
    if info.context_window:
        facts.append(f"{info.context_window:,}-token context")
    facts.append(_price(config, provider, model))
    if cls == "embedding":
        sizes = ", ".join(str(d) for d in info.dimensions)
        if info.default_dimensions:
            facts.append(f"{info.default_dimensions} dimensions by default (offers {sizes})")
        yield f"{provider}/{model}: " + "; ".join(facts) + "."
        yield "Vectors stored from OpenAI's model cannot be compared with these: re-embed them."
        return
    if info.supports("tools"):
        facts.append("tools")
    if info.supports("vision"):
        facts.append("images in")
    if info.thinking == "always":
        facts.append("always thinks")
    elif info.thinking == "hybrid":
        facts.append("thinks by default" if info.thinking_by_default else "thinks on request")
    yield f"{provider}/{model}: " + ", ".join(facts) + "."
    schema = {"response_format": {"type": "json_schema"}}
    if emulates(spec.protocol or "openai_compat", info, schema):
        yield (
            "json_schema (parse) is emulated: the schema in a system instruction, the answer "
            "checked."
        )


def starter_config(
    config: Any,
    found: Mapping[str, Sequence[tuple[str, Optional[str]]]],
    providers: Sequence[str],
    *,
    origin: str,
) -> tuple[str, dict[str, Choice]]:
    """The text of a starter ``llm_bridge.toml`` and the choice made for each name.

    ``found`` maps each model name to where it was seen (``"path:line"``) and what it was
    used for; ``providers`` are the providers to map to, in order of preference."""
    choices = {
        name: choose(config, name, [u for _, u in seen], providers)
        for name, seen in sorted(found.items())
    }
    env = []
    for provider in providers:
        variables = credential_variables(config.provider(provider))
        if variables:
            env.append(f"{', or '.join(variables)} ({provider})")
    read = sorted({config.provider(p).prices_read for p in providers} - {None})
    out = [
        *_wrap(f"# llm-bridge configuration: a starter written by `llm-bridge migrate {origin}`."),
        "# Each model name the code asks for, and where it goes now. Change a target, or give",
        '# a list for a fallback chain: "gpt-4o" = ["zhipu/glm-4.7", "dashscope/qwen3-max"].',
    ]
    if env:
        out += _wrap("# Keys come from the environment: " + "; ".join(env) + ".")
    if read:
        out.append(f"# Prices: CNY per million tokens, from llm-bridge's tables (read {read[-1]}).")
    out += ["", "[models]"]
    if not choices:
        out += ["# (no model names found in the code)", ""]
    for name, choice in choices.items():
        seen = [where for where, _ in found[name]]
        places = ", ".join(seen[:3]) + (f" and {len(seen) - 3} more" if len(seen) > 3 else "")
        out += _wrap(f"# {name} ({places}): {choice.about}.")
        for line in choice.lines:
            out += _wrap("#   " + line, indent="#   ")
        key = toml_string(name)
        if choice.target:
            out.append(f"{key} = {toml_string(choice.target)}")
        out.append("")
    out += [
        "[policy]",
        '# An OpenAI parameter a provider cannot honour: "warn" (drop it and warn once),',
        '# "drop" (silently) or "error" (refuse the request before sending it).',
        'unsupported_params = "warn"',
        "",
    ]
    return "\n".join(out), choices


def _wrap(text: str, *, width: int = 92, indent: str = "# ") -> list[str]:
    """A comment split into lines of at most ``width`` characters."""
    import textwrap

    return textwrap.wrap(
        text,
        width=width,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [text]
