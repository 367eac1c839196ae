"""Token accounting attached to chat completions (``CompletionUsage``).

Mirrors ``openai.types.completion_usage``, plus ``estimated``: some providers omit usage
(or omit it from streams), in which case llm-bridge counts tokens locally and says so.
"""

from typing import Optional

from ._base import BaseModel

__all__ = ["CompletionTokensDetails", "CompletionUsage", "PromptTokensDetails"]


class CompletionTokensDetails(BaseModel):
    """Breakdown of ``completion_tokens``."""

    accepted_prediction_tokens: Optional[int] = None
    audio_tokens: Optional[int] = None
    reasoning_tokens: Optional[int] = None
    """Tokens the model spent on its chain of thought (counted in ``completion_tokens``)."""
    rejected_prediction_tokens: Optional[int] = None
    text_tokens: Optional[int] = None


class PromptTokensDetails(BaseModel):
    """Breakdown of ``prompt_tokens``."""

    audio_tokens: Optional[int] = None
    cache_write_tokens: Optional[int] = None
    cached_tokens: Optional[int] = None
    """Prompt tokens served from the provider's context cache."""
    image_tokens: Optional[int] = None
    text_tokens: Optional[int] = None


class CompletionUsage(BaseModel):
    """Token counts for one request."""

    completion_tokens: int
    prompt_tokens: int
    total_tokens: int
    completion_tokens_details: Optional[CompletionTokensDetails] = None
    prompt_tokens_details: Optional[PromptTokensDetails] = None
    estimated: bool = False
    """True when the figures were computed locally because the provider did not report them."""
