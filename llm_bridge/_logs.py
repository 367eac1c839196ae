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


def setup_logging() -> None:
    level = os.environ.get("LLM_BRIDGE_LOG", "").lower()
    if level not in ("debug", "info"):
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(name)s %(levelname)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
