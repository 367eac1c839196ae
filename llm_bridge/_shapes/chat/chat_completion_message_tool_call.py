"""A function call requested by the model in a chat completion message.

Mirrors ``openai.types.chat.chat_completion_message_tool_call``; providers only emit
function tools, so ``ChatCompletionMessageFunctionToolCall`` (openai's newer name) is the
same class.
"""

from .._base import BaseModel

__all__ = [
    "ChatCompletionMessageFunctionToolCall",
    "ChatCompletionMessageToolCall",
    "Function",
]


class Function(BaseModel):
    """The function the model wants called."""

    arguments: str
    """JSON-encoded arguments as the model wrote them; not guaranteed to be valid JSON."""
    name: str


class ChatCompletionMessageToolCall(BaseModel):
    """One tool call of an assistant message."""

    id: str
    function: Function
    # openai: Literal["function"]; a plain str so an unknown tool type still validates.
    type: str = "function"


ChatCompletionMessageFunctionToolCall = ChatCompletionMessageToolCall
