"""Response of ``client.embeddings.create()``, as ``openai.types.create_embedding_response``.

``Usage.estimated`` is an llm-bridge addition: providers that report no usage for
embeddings get locally counted figures, flagged as such.
"""

from typing import List

from ._base import BaseModel
from .embedding import Embedding

__all__ = ["CreateEmbeddingResponse", "Usage"]


class Usage(BaseModel):
    """Token counts for an embeddings request."""

    prompt_tokens: int
    total_tokens: int
    estimated: bool = False
    """True when the figures were computed locally because the provider did not report them."""


class CreateEmbeddingResponse(BaseModel):
    """A list of embeddings, one per input, with the model name and usage."""

    data: List[Embedding]
    model: str
    object: str = "list"
    usage: Usage
