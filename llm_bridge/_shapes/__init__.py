"""The engine's own models of OpenAI's response shapes (users get openai's types).

The adapters' output is validated into these models inside the engine: they hold what
OpenAI's shapes hold and keep provider-specific fields (see ``_base``). The front doors
serialise them to OpenAI's JSON; callers then read openai's own classes.

Each model's module loads when the name is first used: a client that only chats does not
build the embedding and model classes (pydantic classes cost memory to create).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_getattr

if TYPE_CHECKING:
    from . import chat
    from .completion_usage import CompletionUsage
    from .create_embedding_response import CreateEmbeddingResponse
    from .embedding import Embedding
    from .model import Model

_MODULES = {
    "chat": ".chat",
    "CompletionUsage": ".completion_usage",
    "CreateEmbeddingResponse": ".create_embedding_response",
    "Embedding": ".embedding",
    "Model": ".model",
}

__all__ = ["CompletionUsage", "CreateEmbeddingResponse", "Embedding", "Model", "chat"]


if not TYPE_CHECKING:  # (type checkers see the imports above, and flag unknown names)
    __getattr__ = lazy_getattr(__name__, _MODULES)


def __dir__() -> list[str]:
    return sorted(__all__)
