"""Response of a non-streamed ``client.chat.completions.create()``.

Mirrors ``openai.types.chat.chat_completion``.  ``finish_reason`` accepts any string: the
adapters map the providers' values onto OpenAI's five, but a value they do not know
(a provider's new stop reason) must reach the caller instead of failing validation.
"""

from typing import List, Literal, Optional, Union

from .._base import BaseModel
from ..completion_usage import CompletionUsage
from .chat_completion_message import ChatCompletionMessage
from .chat_completion_token_logprob import ChatCompletionTokenLogprob

__all__ = ["ChatCompletion", "Choice", "ChoiceLogprobs", "FinishReason"]

# OpenAI's values are listed for editors; ``str`` keeps unknown provider values valid.
FinishReason = Union[
    Literal["stop", "length", "tool_calls", "content_filter", "function_call"], str
]


class ChoiceLogprobs(BaseModel):
    """Log probabilities of the choice's content and refusal tokens."""

    content: Optional[List[ChatCompletionTokenLogprob]] = None
    refusal: Optional[List[ChatCompletionTokenLogprob]] = None


class Choice(BaseModel):
    """One completion choice; there are several when the request set ``n > 1``."""

    # Required in openai; Optional here because some providers send null.
    finish_reason: Optional[FinishReason] = None
    index: int
    logprobs: Optional[ChoiceLogprobs] = None
    message: ChatCompletionMessage


class ChatCompletion(BaseModel):
    """A chat completion: the choices, the model that produced them and token usage."""

    id: str
    choices: List[Choice]
    created: int
    """Unix timestamp (seconds) of the completion's creation."""
    model: str
    object: str = "chat.completion"
    service_tier: Optional[str] = None
    system_fingerprint: Optional[str] = None
    usage: Optional[CompletionUsage] = None
