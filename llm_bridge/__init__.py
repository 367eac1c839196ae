"""llm-bridge: the openai client's API, spoken natively to China's model platforms.

    from llm_bridge import OpenAI          # instead of: from openai import OpenAI

    client = OpenAI(provider="zhipu")      # or a config file: llm_bridge.toml
    client.chat.completions.create(model="glm-4-flash", messages=[...])

Everything public is importable from here; the modules behind it are private.
"""

from . import types
from ._client import AsyncOpenAI, OpenAI
from ._config import Config, load_config
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConflictError,
    InternalServerError,
    ModelNotFoundError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    UnprocessableEntityError,
    UnsupportedParameterWarning,
)
from ._http_clients import DefaultAioHttpClient, DefaultAsyncHttpxClient, DefaultHttpxClient
from ._logs import setup_logging as _setup_logging
from ._response import LegacyAPIResponse
from ._streaming import AsyncStream, Stream
from ._version import __version__

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AsyncOpenAI",
    "AsyncStream",
    "AuthenticationError",
    "BadRequestError",
    "Config",
    "ConfigError",
    "ConflictError",
    "DefaultAioHttpClient",
    "DefaultAsyncHttpxClient",
    "DefaultHttpxClient",
    "InternalServerError",
    "LegacyAPIResponse",
    "ModelNotFoundError",
    "NotFoundError",
    "OpenAI",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "Stream",
    "UnprocessableEntityError",
    "UnsupportedParameterWarning",
    "__version__",
    "load_config",
    "types",
]

_setup_logging()
