"""Calls that take several requests, and their answers put back together as one.

Two OpenAI features meet providers that cannot serve them in one request: ``n > 1`` on a
provider that answers a single choice (`chat_copies`: ``n`` one-choice requests, merged
by `merged_choices`), and more embedding inputs than the model takes at once
(`embedding_batches`, merged by `merged_embeddings`). Pure: the engine sends the requests
and hands their parsed answers back here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

if TYPE_CHECKING:
    from ._shapes.chat import ChatCompletion
    from ._shapes.create_embedding_response import CreateEmbeddingResponse

__all__ = ["chat_copies", "embedding_batches", "merged_choices", "merged_embeddings"]

JSONDict = dict[str, Any]


def chat_copies(params: JSONDict, native_n: Callable[[], bool]) -> list[JSONDict]:
    """One request, or ``n`` copies without ``n`` for a non-stream ``n > 1`` on a provider
    that answers one choice (``native_n`` asked only then)."""
    n = params.get("n") or 1
    if n <= 1 or params.get("stream") or native_n():
        return [params]
    return [{**params, "n": None}] * n


def embedding_batches(params: JSONDict, max_batch: Callable[[], Optional[int]]) -> list[JSONDict]:
    """``input`` (checked: `check_embedding_params`) split to the model's batch limit
    (``max_batch``: None, no limit)."""
    texts = params["input"]
    if not isinstance(texts, list):
        return [params]
    size = max_batch() or len(texts)
    return [{**params, "input": texts[i : i + size]} for i in range(0, len(texts), size)]


def merged_choices(completions: Sequence[ChatCompletion]) -> ChatCompletion:
    """``n`` one-choice completions as one completion with ``n`` choices, usage summed
    (each request was billed for its prompt, so the prompt counts ``n`` times)."""
    choices = [
        c.model_copy(update={"index": i})
        for i, c in enumerate(c for completion in completions for c in completion.choices)
    ]
    usages = [c.usage for c in completions if c.usage is not None]
    usage = None
    if usages:
        usage = usages[0].model_copy(
            update={
                field: sum(getattr(u, field) for u in usages)
                for field in ("prompt_tokens", "completion_tokens", "total_tokens")
            }
        )
    return completions[0].model_copy(update={"choices": choices, "usage": usage})


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
