"""One embedding vector of a ``CreateEmbeddingResponse``, as ``openai.types.embedding``."""

from typing import List, Union

from ._base import BaseModel

__all__ = ["Embedding"]


class Embedding(BaseModel):
    """An embedding vector and its position in the request's input list."""

    # openai declares List[float], yet with encoding_format="base64" the API (and openai's
    # client, which passes the string through) yields a base64 string of little-endian
    # float32s. Accept both so a base64 request does not fail validation.
    embedding: Union[List[float], str]
    index: int
    object: str = "embedding"
