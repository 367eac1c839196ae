"""Client defaults, in a module of their own so that the facade can name them without
importing the engine or httpx (which ``from llm_bridge import OpenAI`` must not pay
for: the HTTP defaults are built from these figures in `_http_clients`)."""

from ._version import __version__

#: Seconds a request may take, and its connection (openai's figures).
DEFAULT_TIMEOUT_SECONDS = 600.0
DEFAULT_CONNECT_SECONDS = 5.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_MAX_CONNECTIONS = 1000
DEFAULT_MAX_KEEPALIVE = 100
USER_AGENT = f"llm-bridge-cn/{__version__}"
#: Largest provider answer read, after decompression (``[limits] max_response_bytes``).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Longest server-sent events line read (``[limits] max_sse_line_bytes``).
MAX_SSE_LINE_BYTES = 16 * 1024 * 1024
