"""Chat completion response models, at the module paths of ``openai.types.chat``."""

from .chat_completion import ChatCompletion
from .chat_completion_chunk import ChatCompletionChunk
from .chat_completion_message import ChatCompletionMessage
from .chat_completion_message_tool_call import (
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageToolCall,
)
from .chat_completion_token_logprob import ChatCompletionTokenLogprob

__all__ = [
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionMessageFunctionToolCall",
    "ChatCompletionMessageToolCall",
    "ChatCompletionTokenLogprob",
]
