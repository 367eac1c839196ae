"""Chat completion response models, at the module paths of ``openai.types.chat``.

Each model's module loads when the name is first used (see `llm_bridge.types`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import lazy_getattr

if TYPE_CHECKING:
    from .chat_completion import ChatCompletion
    from .chat_completion_chunk import ChatCompletionChunk
    from .chat_completion_message import ChatCompletionMessage
    from .chat_completion_message_tool_call import (
        ChatCompletionMessageFunctionToolCall,
        ChatCompletionMessageToolCall,
    )
    from .chat_completion_token_logprob import ChatCompletionTokenLogprob

_MODULES = {
    "ChatCompletion": ".chat_completion",
    "ChatCompletionChunk": ".chat_completion_chunk",
    "ChatCompletionMessage": ".chat_completion_message",
    "ChatCompletionMessageFunctionToolCall": ".chat_completion_message_tool_call",
    "ChatCompletionMessageToolCall": ".chat_completion_message_tool_call",
    "ChatCompletionTokenLogprob": ".chat_completion_token_logprob",
}

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageFunctionToolCall",
    "ChatCompletionMessageToolCall",
    "ChatCompletionTokenLogprob",
]


if not TYPE_CHECKING:  # (type checkers see the imports above, and flag unknown names)
    __getattr__ = lazy_getattr(__name__, _MODULES)


def __dir__() -> list[str]:
    return sorted(__all__)
