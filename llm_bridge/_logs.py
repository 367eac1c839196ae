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
    """Log at ``LLM_BRIDGE_LOG``'s level to the root logger's handlers, as openai does for
    ``OPENAI_LOG``: a program that configured logging keeps its handlers (each line is
    written once), one that did not gets stderr (``logging.basicConfig``)."""
    level = os.environ.get("LLM_BRIDGE_LOG", "").lower()
    if level not in ("debug", "info"):
        return
    logging.basicConfig(format="[%(asctime)s %(name)s %(levelname)s] %(message)s")
    logger.setLevel(logging.DEBUG if level == "debug" else logging.INFO)
