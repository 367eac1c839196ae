"""Client defaults, in a module of their own so that the facade can name them without
importing the engine (which ``from llm_bridge import OpenAI`` must not pay for)."""

import httpx

from ._version import __version__

DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
DEFAULT_MAX_RETRIES = 2
DEFAULT_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)
USER_AGENT = f"llm-bridge-cn/{__version__}"
#: Largest provider answer read, after decompression (``[limits] max_response_bytes``).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Longest server-sent events line read (``[limits] max_sse_line_bytes``).
MAX_SSE_LINE_BYTES = 16 * 1024 * 1024
