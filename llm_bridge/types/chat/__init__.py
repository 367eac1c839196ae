"""``llm_bridge.types.chat`` is ``openai.types.chat`` (see `llm_bridge.types`)."""

from __future__ import annotations

import importlib
from typing import Any

from openai.types.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageToolCall,
    ChatCompletionTokenLogprob,
)


def __getattr__(name: str) -> Any:
    module = importlib.import_module("openai.types.chat")
    try:
        return getattr(module, name)
    except AttributeError:
        return importlib.import_module(f"openai.types.chat.{name}")


__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageToolCall",
    "ChatCompletionTokenLogprob",
]
