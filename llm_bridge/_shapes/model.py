"""A model entry as listed by ``client.models.list()``, as ``openai.types.model``."""

from typing import Optional

from ._base import BaseModel

__all__ = ["Model"]


class Model(BaseModel):
    """A model the provider serves; ``owned_by`` names the organisation behind it."""

    id: str
    created: int
    """Unix timestamp (seconds) of the model's creation."""
    object: str = "model"
    owned_by: str
    shutdown_date: Optional[str] = None
