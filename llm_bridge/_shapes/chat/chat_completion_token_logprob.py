"""Per-token log probabilities, as ``openai.types.chat.chat_completion_token_logprob``."""

from typing import List, Optional

from .._base import BaseModel

__all__ = ["ChatCompletionTokenLogprob", "TopLogprob"]


class TopLogprob(BaseModel):
    """One of the most likely candidates at a token position."""

    token: str
    bytes: Optional[List[int]] = None
    """UTF-8 bytes of the token, for tokens that split a multi-byte character."""
    logprob: float


class ChatCompletionTokenLogprob(BaseModel):
    """The sampled token, its log probability and the top alternatives."""

    token: str
    bytes: Optional[List[int]] = None
    """UTF-8 bytes of the token, for tokens that split a multi-byte character."""
    logprob: float
    top_logprobs: List[TopLogprob]
