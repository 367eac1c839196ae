"""Response models of llm-bridge, at the module paths of ``openai.types``.

Code written against ``openai.types`` can import the same names from ``llm_bridge.types``;
the models additionally keep provider-specific fields (see ``_base``).
"""

from . import chat
from .completion_usage import CompletionUsage
from .create_embedding_response import CreateEmbeddingResponse
from .embedding import Embedding
from .model import Model

__all__ = ["CompletionUsage", "CreateEmbeddingResponse", "Embedding", "Model", "chat"]
