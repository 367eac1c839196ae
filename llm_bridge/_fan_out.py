"""Calls that take several requests, and their answers put back together as one.

Two OpenAI features meet providers that cannot serve them in one request: ``n > 1`` on a
provider that answers a single choice (`chat_copies`: ``n`` one-choice requests, merged
by `merged_choices`), and more embedding inputs than the model takes at once
(`embedding_batches`: by count, and by tokens where the model limits a request's
total, as Zhipu does; merged by `merged_embeddings`). Pure: the engine sends the requests
and hands their parsed answers back here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

if TYPE_CHECKING:
    from ._shapes.chat import ChatCompletion
    from ._shapes.create_embedding_response import CreateEmbeddingResponse

__all__ = [
    "BatchLimits",
    "InputSlice",
    "chat_copies",
    "embedding_batches",
    "merged_choices",
    "merged_embeddings",
]

JSONDict = dict[str, Any]


def chat_copies(params: JSONDict, native_n: Callable[[], bool]) -> list[JSONDict]:
    """One request, or ``n`` copies without ``n`` for a non-stream ``n > 1`` on a provider
    that answers one choice (``native_n`` asked only then). A ``seed`` is given to each
    copy as ``seed + i``: the same seed in every copy would make a provider that honours
    it answer ``n`` times the same, where ``n`` asks for different choices; the answers
    stay reproducible."""
    n = params.get("n") or 1
    if n <= 1 or params.get("stream") or native_n():
        return [params]
    seed = params.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return [{**params, "n": None, "seed": seed + i} for i in range(n)]
    return [{**params, "n": None}] * n


class InputSlice(list):  # type: ignore[type-arg]
    """The texts of one request of a split embeddings call, knowing where they start in
    the call's ``input`` (``start``), so that an error about one of them names its index
    in what the caller sent. Serialised as the plain list it is."""

    start: int = 0


def _slice(texts: list[Any], start: int, end: int) -> InputSlice:
    part = InputSlice(texts[start:end])
    part.start = start
    return part


class BatchLimits(NamedTuple):
    """What one embeddings request of a model may carry: at most ``items`` texts and at
    most ``tokens`` tokens in all (each None: no such limit), tokens counted by ``counter``."""

    items: Optional[int] = None
    tokens: Optional[int] = None
    counter: Callable[[str], int] = len


def embedding_batches(params: JSONDict, limits: Callable[[], BatchLimits]) -> list[JSONDict]:
    """``input`` (checked: `check_embedding_params`) split into requests within the
    model's limits (``limits`` asked only for a list input), in input order.

    Texts are packed greedily: a request ends when the next text would take it past
    either limit. A text that alone exceeds the token limit goes alone (the provider
    decides; `check_input_length` refused the surely-too-long ones before)."""
    texts = params["input"]
    if not isinstance(texts, list) or not isinstance(texts[0], (str, list)):
        return [params]  # one text, or one text's token ids
    items, tokens, count = limits()
    size = items or len(texts)
    if tokens is None or _fewer_bytes_than(texts, tokens):
        starts = list(range(0, len(texts), size))
    else:
        starts, held = [0], 0
        for index, text in enumerate(texts):
            # Token ids (a list of ints) are their own count.
            used = count(text) if isinstance(text, str) else len(text)
            if index > starts[-1] and (index - starts[-1] == size or held + used > tokens):
                starts.append(index)
                held = 0
            held += used
    ends = [*starts[1:], len(texts)]
    return [{**params, "input": _slice(texts, a, b)} for a, b in zip(starts, ends)]


def _fewer_bytes_than(texts: list[Any], tokens: int) -> bool:
    """Whether ``texts`` hold at most ``tokens`` UTF-8 bytes in all: no text has more
    tokens than bytes, so such a list fits the token limit without being tokenized."""
    total = 0
    for text in texts:
        total += len(text.encode()) if isinstance(text, str) else len(text)
        if total > tokens:
            return False
    return True


def merged_choices(completions: Sequence[ChatCompletion]) -> ChatCompletion:
    """``n`` one-choice completions as one completion with ``n`` choices, usage summed
    (each request was billed for its prompt, so the prompt counts ``n`` times)."""
    choices = [
        c.model_copy(update={"index": i})
        for i, c in enumerate(c for completion in completions for c in completion.choices)
    ]
    usages = [c.usage for c in completions if c.usage is not None]
    return completions[0].model_copy(update={"choices": choices, "usage": _summed(usages)})


def _summed(parts: Sequence[Any]) -> Any:
    """Usage figures of several requests as one (None when there are none): see
    `_sum_fields`."""
    if not parts:
        return None
    return type(parts[0]).model_validate(
        _sum_fields([part.model_dump(exclude_none=True) for part in parts])
    )


def _sum_fields(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Each count summed, at any depth (cached and reasoning tokens, DashScope's
    ``cache_creation`` by duration), ``estimated`` if any was, any other value the
    first's."""
    out: dict[str, Any] = {}
    for name in dict.fromkeys(name for entry in figures for name in entry):
        values = [entry[name] for entry in figures if name in entry]
        if name == "estimated":
            out[name] = any(values)
        elif all(type(value) is int for value in values):
            out[name] = sum(values)
        elif all(isinstance(value, dict) for value in values):
            out[name] = _sum_fields(values)
        else:
            out[name] = values[0]
    return out


def merged_embeddings(parts: Sequence[CreateEmbeddingResponse]) -> CreateEmbeddingResponse:
    """Batches reassembled in input order, usage summed."""
    data, offset, prompt, total = [], 0, 0, 0
    for part in parts:
        for item in sorted(part.data, key=lambda e: e.index):
            data.append(item.model_copy(update={"index": offset + item.index}))
        offset += len(part.data)
        prompt += part.usage.prompt_tokens
        total += part.usage.total_tokens
    first = parts[0]
    usage = first.usage.model_copy(update={"prompt_tokens": prompt, "total_tokens": total})
    return first.model_copy(update={"data": data, "usage": usage})
