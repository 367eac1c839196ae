"""``llm_bridge.types`` is ``openai.types``: the classes responses arrive as.

Kept so that code importing response types from here keeps working; every name (and
submodule, such as ``llm_bridge.types.chat``) is openai's own object.
"""

from __future__ import annotations

import importlib
from typing import Any

from openai.types import CompletionUsage, CreateEmbeddingResponse, Embedding, Model

from . import chat


def __getattr__(name: str) -> Any:
    module = importlib.import_module("openai.types")
    try:
        return getattr(module, name)
    except AttributeError:
        return importlib.import_module(f"openai.types.{name}")


__all__ = ["CompletionUsage", "CreateEmbeddingResponse", "Embedding", "Model", "chat"]
