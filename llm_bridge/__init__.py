"""llm-bridge: the openai client's API, spoken natively to China's model platforms.

    from llm_bridge import OpenAI          # instead of: from openai import OpenAI

    client = OpenAI(provider="zhipu")      # or a config file: llm_bridge.toml
    client.chat.completions.create(model="glm-4-flash", messages=[...])

Everything public is importable from here; the modules behind it are private.
"""

from typing import TYPE_CHECKING

from . import _httpx_cli  # noqa: F401  # pyright: ignore[reportUnusedImport]  (first: before httpx)
from ._errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    CodingPlanWarning,
    ConfigError,
    ConflictError,
    InternalServerError,
    ModelNotFoundError,
    ModelRetiredWarning,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    ResponseTooLargeError,
    StructuredOutputError,
    UnprocessableEntityError,
    UnsupportedParameterWarning,
)
from ._lazy import lazy_getattr
from ._logs import setup_logging as _setup_logging
from ._version import __version__

if TYPE_CHECKING:
    from openai import AsyncStream, Stream
    from openai._legacy_response import LegacyAPIResponse

    from . import types
    from ._client import AsyncOpenAI, OpenAI
    from ._config import Config, load_config
    from ._http_clients import DefaultAioHttpClient, DefaultAsyncHttpxClient, DefaultHttpxClient
    from ._transport import async_http_client, http_client

# The clients pull in the configuration, the engine and the adapters. They load on first
# use, so that `import llm_bridge` (and code that only catches its exceptions) costs
# about what `import openai` does.
_LAZY = {
    "OpenAI": "._client",
    "AsyncOpenAI": "._client",
    "Config": "._config",
    "load_config": "._config",
    "DefaultAioHttpClient": "._http_clients",
    "DefaultAsyncHttpxClient": "._http_clients",
    "DefaultHttpxClient": "._http_clients",
    "http_client": "._transport",
    "async_http_client": "._transport",
}


if not TYPE_CHECKING:  # (type checkers see the imports above, and flag unknown names)
    from openai import AsyncStream, Stream
    from openai._legacy_response import LegacyAPIResponse

    __getattr__ = lazy_getattr(__name__, {**_LAZY, "types": ".types"})


def __dir__() -> list[str]:
    return sorted(__all__)


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
    "ClientClosedError",
    "CodingPlanWarning",
    "Config",
    "ConfigError",
    "ConflictError",
    "DefaultAioHttpClient",
    "DefaultAsyncHttpxClient",
    "DefaultHttpxClient",
    "InternalServerError",
    "LegacyAPIResponse",
    "ModelNotFoundError",
    "ModelRetiredWarning",
    "NotFoundError",
    "OpenAI",
    "OpenAIError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseTooLargeError",
    "Stream",
    "StructuredOutputError",
    "UnprocessableEntityError",
    "UnsupportedParameterWarning",
    "__version__",
    "async_http_client",
    "http_client",
    "load_config",
    "types",
]

_setup_logging()
