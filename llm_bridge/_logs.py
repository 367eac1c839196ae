"""The ``llm_bridge`` logger, switched on by ``LLM_BRIDGE_LOG`` as ``OPENAI_LOG`` does for openai.

``LLM_BRIDGE_LOG=debug`` logs every request line, status and timing; ``info`` logs retries
and fallbacks. URLs are logged with token-bearing query values redacted and headers are
never logged, so keys stay out of log files.
"""

from __future__ import annotations

import logging
import os

__all__ = ["setup_logging"]

logger = logging.getLogger("llm_bridge")


class _UnlessConfigured(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr, for as long as the program has given the root logger no handler of its
    own: from then on its handlers (reached by propagation) write each line, once."""

    def emit(self, record: logging.LogRecord) -> None:
        if not logging.getLogger().handlers:
            super().emit(record)


def setup_logging() -> None:
    """Log at ``LLM_BRIDGE_LOG``'s level, as openai's ``OPENAI_LOG`` does: through the
    program's logging handlers if it configures any, whether before or after importing
    llm_bridge, else to stderr. (openai calls ``logging.basicConfig`` on import, which
    a program's own ``basicConfig`` after the import then silently does nothing to.)"""
    level = os.environ.get("LLM_BRIDGE_LOG", "").lower()
    if level not in ("debug", "info"):
        return
    handler = _UnlessConfigured()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
