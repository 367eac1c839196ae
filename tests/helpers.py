"""Helpers shared by the test modules (imported as ``helpers``: tests/ is on sys.path)."""

from __future__ import annotations

from array import array
from typing import Any


def float32(vectors: Any) -> Any:
    """Vectors as openai hands them back: it asks for base64 float32 and decodes that, so
    a provider's decimal figures arrive rounded to the nearest float32."""
    if vectors and isinstance(vectors[0], (int, float)):
        return list(array("f", vectors))
    return [float32(v) for v in vectors]
