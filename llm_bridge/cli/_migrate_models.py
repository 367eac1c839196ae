"""``llm-bridge migrate``: OpenAI model names mapped to provider models, as a starter config.

A name is sorted into what it is for (`classify`): a kind of model llm-bridge does not
serve (images, audio, moderation, video, the legacy completions API), an embedding model,
a small fast model (``mini``, ``nano``, ``3.5``: size first, so ``o4-mini`` and
``gpt-5-nano`` get the provider's cheap model, not its dearest reasoner), a reasoning model
(the o-series, GPT-5, ``*-thinking``), else a flagship chat model. How the code uses it
decides where the name alone does not (a name only passed to ``embeddings.create`` is an
embedding model).

The comments say what changes in kind: a small reasoning model mapped to a model that does
not think names the provider's cheapest one that does; a model that does not reason
(``gpt-4o``) mapped to one that thinks by default shows how to turn thinking off
(``reasoning_effort="none"``, `_reasoning.plan_reasoning`). An embedding model the code asks
for a number of ``dimensions`` goes to a provider model that offers it, where one does.

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
    "is_reasoning",
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
    """``fast``, ``flagship``, ``reasoning``, ``embedding``, or ``unserved:<api>``.

    Size decides before kind: a small model (``gpt-5-nano``, ``o4-mini``) is ``fast``
    even when it reasons, since the provider's reasoning stand-in is its dearest model;
    `is_reasoning` keeps the kind, for the comment."""
    uses = {u for u in used_for if u}
    for pattern, api in _UNSERVED:
        if pattern.search(name):
            return f"unserved:{api}"
    if _EMBEDDING.search(name) or uses == {"embedding"}:
        return "embedding"
    if _FAST.search(name):
        return "fast"
    if _REASONING.search(name):
        return "reasoning"
    return "flagship"


def is_reasoning(name: str) -> bool:
    """Whether OpenAI's model of this name reasons (the o-series, GPT-5, ``*-thinking``)."""
    return bool(_REASONING.search(name))


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
    dimensions: Sequence[Any] = (),
) -> Choice:
    """Where ``name`` should go, on the first of ``providers`` that has a model for it,
    with the comment lines that explain the choice and name the alternatives.

    ``dimensions`` are the sizes the code passes with the name to ``embeddings.create``
    (an int where it is a literal, else the code's text, which is unchecked): an embedding
    target that offers every literal size is preferred, on any provider."""
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
    sizes = sorted({d for d in dimensions if isinstance(d, int) and not isinstance(d, bool)})
    computed = sorted({str(d) for d in dimensions if not isinstance(d, int)})
    size_lines: list[str] = []
    if cls == "embedding" and sizes:
        targets, size_lines = _by_dimensions(config, targets, providers, sizes)
    provider, model = targets[0]
    about = _ABOUT[cls]
    reasons = cls == "fast" and is_reasoning(name)
    if reasons:
        about = "a small reasoning model, mapped by size to a fast model"
    if not _OPENAI_NAME.match(name):
        about = f"not a model name llm-bridge knows; taken as {about}"
    lines = list(_describe(config, provider, model, cls))
    lines += size_lines
    if cls == "embedding" and computed:
        lines.append(f"dimensions not a literal ({', '.join(computed)}): unchecked.")
    if cls != "embedding":
        lines += _thinking_lines(config, provider, model, name, reasons)
    others = [f'"{p}/{m}" ({_price(config, p, m)})' for p, m in targets[1:]]
    if others:
        lines.append("Instead: " + ", ".join(others) + ".")
    return Choice(name, cls, f"{provider}/{model}", about, tuple(lines))


def _offers(info: Any, size: int) -> bool:
    return info is not None and (size in info.dimensions or size == info.default_dimensions)


def _by_dimensions(
    config: Any, targets: list[tuple[str, str]], providers: Sequence[str], sizes: list[int]
) -> tuple[list[tuple[str, str]], list[str]]:
    """The embedding targets reordered so that the first offers every size in ``sizes``
    (the provider's stand-in if it does, else another current embedding model of that
    provider), with the comment lines that say why; unchanged, with a warning line, when
    no provider here offers them."""
    wanted = ", ".join(str(d) for d in sizes)
    fitting: list[tuple[str, str]] = []
    for provider in providers:
        spec = config.provider(provider)
        stand_in = dict(targets).get(provider)
        names = [stand_in] if stand_in else []
        names += [
            n
            for n, info in spec.models.items()
            if info.kind == "embedding" and not info.retired and n != stand_in
        ]
        for candidate in names:
            info = spec.model(candidate)
            if all(_offers(info, d) for d in sizes):
                fitting.append((provider, candidate))
                break
    if not fitting:
        return targets, [
            f"The code asks for {wanted} dimensions, which no provider here offers: the "
            "call is refused until dimensions= is changed or removed."
        ]
    first = fitting[0]
    rest = [t for t in fitting[1:]] + [t for t in targets if t not in fitting]
    passed = [f"{p}/{m}" for p, m in targets if (p, m) not in fitting]
    line = f"Chosen for the {wanted} dimensions the code asks for"
    if passed:
        line += f" (not offered by {', '.join(passed)})"
    return [first, *rest], [line + "."]


def _thinking_lines(
    config: Any, provider: str, model: str, name: str, reasons: bool
) -> Iterable[str]:
    """What changes in thinking: a small reasoning model on a model that does not think
    (named: the provider's cheapest one that does), or a model that does not reason on one
    that thinks by default (how to turn it off: ``reasoning_effort="none"`` is thinking
    disabled on a hybrid model, `_reasoning.plan_reasoning`)."""
    info = config.provider(provider).model(model)
    if info is None:
        return
    if reasons:
        if info.thinking is None:
            other = _cheapest_thinker(config, provider)
            instead = ""
            if other:
                instead = (
                    f'; for thinking: "{provider}/{other}" ({_price(config, provider, other)})'
                )
            yield f"{name} reasons, {model} does not think{instead}."
        elif info.thinking == "hybrid" and not info.thinking_by_default:
            yield (
                f'{model} thinks only on request: pass reasoning_effort ("low", "medium", '
                '"high") to turn it on.'
            )
        return
    if is_reasoning(name):
        return
    if info.thinking == "hybrid" and info.thinking_by_default:
        yield (
            f"{name} does not reason, but {model} thinks by default (slower, more output "
            f'tokens): reasoning_effort="none" turns thinking off.'
        )
    elif info.thinking == "always":
        yield f"{name} does not reason, but {model} always thinks (it cannot be turned off)."


def _cheapest_thinker(config: Any, provider: str) -> Optional[str]:
    """The provider's cheapest current chat model that can think, with tools where one has
    them (None if it has none)."""
    spec = config.provider(provider)
    current = [
        (n, i)
        for n, i in spec.models.items()
        if i.kind == "chat"
        and not i.retired
        and i.thinking is not None
        and i.input_price is not None
    ]
    current = [c for c in current if c[1].supports("tools")] or current
    if not current:
        return None
    return min(current, key=lambda c: (c[1].input_price or 0) + (c[1].output_price or 0))[0]


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
    """A model's price as a comment says it: the first tier's, ``from`` it where the
    provider prices by length (a long prompt pays several times more)."""
    price = config.price(provider, model)
    if price is None:
        return "price not in the catalogue"
    if price.input == 0 and price.output == 0:
        return "free"
    tiered = len(price.tiers) > 1
    start = "from " if tiered else ""
    end = " (tiered by length)" if tiered else ""
    if price.output == 0:
        return f"{start}{_num(price.input)} CNY/M tokens{end}"
    thinking = ""
    if price.thinking_output is not None and price.thinking_output != price.output:
        thinking = f", output {_num(price.thinking_output)} when thinking"
    return f"{start}{_num(price.input)}/{_num(price.output)} CNY/M tokens in/out{end}{thinking}"


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
    dimensions: Optional[Mapping[str, Sequence[Any]]] = None,
) -> tuple[str, dict[str, Choice]]:
    """The text of a starter ``llm_bridge.toml`` and the choice made for each name.

    ``found`` maps each model name to where it was seen (``"path:line"``) and what it was
    used for; ``providers`` are the providers to map to, in order of preference;
    ``dimensions`` the sizes the code asks of each embedding model (`choose`)."""
    sizes = dimensions or {}
    choices = {
        name: choose(config, name, [u for _, u in seen], providers, sizes.get(name, ()))
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
