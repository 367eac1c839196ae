"""The drop-in facade: ``OpenAI`` and ``AsyncOpenAI`` with openai's constructor and resources.

``client.chat.completions.create(...)``, ``client.embeddings.create(...)`` and
``client.models.list()`` take openai's keyword arguments and return openai-shaped objects;
``provider=`` and ``config=`` are the only additions. Everything below the resource methods
is the engine's; the sync and async classes differ only in ``await``.

This module imports only httpx and the exceptions: the engine, the configuration and the
response types (pydantic models) load when the first client is made, so that
``from llm_bridge import OpenAI`` costs about what ``import httpx`` does.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Generic, Optional, TypeVar, Union

import httpx

from ._constants import DEFAULT_MAX_RETRIES
from ._errors import NotFoundError, local_error
from ._response import LegacyAPIResponse  # httpx only: with_raw_response is a hot path too

if TYPE_CHECKING:
    from ._config import Config
    from ._engine import AsyncEngine, Engine, RawResult, RequestOptions, SyncEngine
    from ._streaming import AsyncStream, Stream
    from .types.chat import ChatCompletion
    from .types.create_embedding_response import CreateEmbeddingResponse
    from .types.model import Model
    from .usage import UsageLedger, UsageRecord

__all__ = ["AsyncOpenAI", "OpenAI"]

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], "Config", None]
_OPTION_NAMES = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
M = TypeVar("M")


def _given(params: dict[str, Any]) -> dict[str, Any]:
    """Drop omitted values, including openai's ``NOT_GIVEN``/``omit`` sentinels."""
    return {
        k: v
        for k, v in params.items()
        if v is not None and type(v).__name__ not in ("NotGiven", "Omit")
    }


def _split(
    engine: Engine, params: dict[str, Any], *, raw: bool
) -> tuple[dict[str, Any], RequestOptions]:
    """The API parameters, and the per-call HTTP options (``extra_headers``, ...)."""
    if _OPTION_NAMES.isdisjoint(params):
        return params, engine.options(raw=raw)
    options = {name: params.pop(name) for name in _OPTION_NAMES if name in params}
    return params, engine.options(raw=raw, **options)


def _result(result: RawResult, raw: bool) -> Any:
    if raw:
        return LegacyAPIResponse(result.response, result.parsed, retries_taken=result.retries_taken)
    return result.parsed


# --------------------------------------------------------------------------- models


class ModelPage(Generic[M]):
    """``client.models.list()``: iterable, with ``.data``, like openai's page."""

    object = "list"

    def __init__(self, data: list[M]) -> None:
        self.data = data

    def __iter__(self) -> Iterator[M]:  # type: ignore[override]
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"ModelPage(data=[{len(self.data)} models])"


class AsyncModelPage(ModelPage[M]):
    """The async page: ``await client.models.list()`` or ``async for m in client.models.list()``."""

    def __await__(self):  # type: ignore[no-untyped-def]
        async def itself() -> AsyncModelPage[M]:
            return self

        return itself().__await__()

    async def __aiter__(self) -> AsyncIterator[M]:  # type: ignore[override]
        for model in self.data:
            yield model


def _catalogue(engine: Engine) -> list[Model]:
    """The models this client can reach: its provider's catalogue, or all of them plus aliases."""
    from .types.model import Model

    config = engine.config
    names = [engine.provider] if engine.provider else list(config.providers)
    models = [
        Model(id=name, created=0, object="model", owned_by=provider)
        for provider in names
        for name in config.providers[provider].models
    ]
    models.extend(
        Model(id=alias, created=0, object="model", owned_by="llm-bridge-alias")
        for alias in config.aliases
    )
    return models


def _retrieve(engine: Engine, model: str) -> Model:
    from .types.model import Model

    route = engine.routes(model)[0]
    if (
        model not in engine.config.aliases
        and engine.config.provider(route.provider).model(route.model) is None
    ):
        request = httpx.Request("GET", f"models/{model}")
        raise local_error(
            NotFoundError,
            f"The model {model!r} is not in the {route.provider} catalogue",
            request=request,
            code="model_not_found",
            provider=route.provider,
        )
    return Model(id=model, created=0, object="model", owned_by=route.provider)


# --------------------------------------------------------------------------- sync resources


class Completions:
    def __init__(self, client: OpenAI, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    def create(
        self, *, messages: Any, model: str, stream: Optional[bool] = None, **params: Any
    ) -> Union[ChatCompletion, Stream]:
        """Create a chat completion (``stream=True`` returns a `Stream` of chunks)."""
        engine = self._client._engine
        params, options = _split(
            engine,
            _given({"messages": messages, "model": model, "stream": stream, **params}),
            raw=self._raw,
        )
        return _result(engine.chat(params, options), self._raw)

    @cached_property
    def with_raw_response(self) -> Completions:
        return Completions(self._client, raw=True)


class Chat:
    def __init__(self, client: OpenAI) -> None:
        self.completions = Completions(client)


class Embeddings:
    def __init__(self, client: OpenAI, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    def create(self, *, input: Any, model: str, **params: Any) -> CreateEmbeddingResponse:
        """Create embeddings; inputs beyond the model's batch limit are split and reassembled."""
        engine = self._client._engine
        params, options = _split(
            engine, _given({"input": input, "model": model, **params}), raw=self._raw
        )
        return _result(engine.embed(params, options), self._raw)

    @cached_property
    def with_raw_response(self) -> Embeddings:
        return Embeddings(self._client, raw=True)


class Models:
    def __init__(self, client: OpenAI) -> None:
        self._client = client

    def list(self) -> ModelPage[Model]:
        return ModelPage(_catalogue(self._client._engine))

    def retrieve(self, model: str) -> Model:
        return _retrieve(self._client._engine, model)


# --------------------------------------------------------------------------- async resources


class AsyncCompletions:
    def __init__(self, client: AsyncOpenAI, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    async def create(
        self, *, messages: Any, model: str, stream: Optional[bool] = None, **params: Any
    ) -> Union[ChatCompletion, AsyncStream]:
        """Create a chat completion (``stream=True`` returns an `AsyncStream` of chunks)."""
        engine = self._client._engine
        params, options = _split(
            engine,
            _given({"messages": messages, "model": model, "stream": stream, **params}),
            raw=self._raw,
        )
        return _result(await engine.chat(params, options), self._raw)

    @cached_property
    def with_raw_response(self) -> AsyncCompletions:
        return AsyncCompletions(self._client, raw=True)


class AsyncChat:
    def __init__(self, client: AsyncOpenAI) -> None:
        self.completions = AsyncCompletions(client)


class AsyncEmbeddings:
    def __init__(self, client: AsyncOpenAI, *, raw: bool = False) -> None:
        self._client = client
        self._raw = raw

    async def create(self, *, input: Any, model: str, **params: Any) -> CreateEmbeddingResponse:
        """Create embeddings; inputs beyond the model's batch limit are split and reassembled."""
        engine = self._client._engine
        params, options = _split(
            engine, _given({"input": input, "model": model, **params}), raw=self._raw
        )
        return _result(await engine.embed(params, options), self._raw)

    @cached_property
    def with_raw_response(self) -> AsyncEmbeddings:
        return AsyncEmbeddings(self._client, raw=True)


class AsyncModels:
    def __init__(self, client: AsyncOpenAI) -> None:
        self._client = client

    def list(self) -> AsyncModelPage[Model]:
        return AsyncModelPage(_catalogue(self._client._engine))

    async def retrieve(self, model: str) -> Model:
        return _retrieve(self._client._engine, model)


# --------------------------------------------------------------------------- clients


class _ClientBase:
    """What both clients share: the constructor, settings, ``with_options`` and ``repr``."""

    _engine: Any

    @staticmethod
    def _engine_class() -> type[Engine]:
        """The engine flavour (imported here: see the module docstring)."""
        raise NotImplementedError

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: Union[float, httpx.Timeout, None] = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Optional[Mapping[str, str]] = None,
        default_query: Optional[Mapping[str, Any]] = None,
        http_client: Union[httpx.Client, httpx.AsyncClient, None] = None,
        provider: Optional[str] = None,
        config: ConfigSource = None,
        on_usage: Optional[Callable[[UsageRecord], Any]] = None,
        organization: Optional[str] = None,  # accepted for drop-in compatibility; unused
        project: Optional[str] = None,  # accepted for drop-in compatibility; unused
        _usage: Optional[UsageLedger] = None,
    ) -> None:
        """openai's constructor arguments, plus:

        - ``provider``: where bare model names go (``"zhipu"``, ``"qianfan"``, ...);
        - ``config``: a TOML path or a mapping of the same schema (default: the
          ``$LLM_BRIDGE_CONFIG`` file, else ``./llm_bridge.toml``, else the environment);
        - ``secret_key``: the second half of a key pair (Qianfan's application Secret Key);
        - ``on_usage``: called with each `UsageRecord` (tokens, yuan, estimated or not).

        ``api_key``, ``secret_key`` and ``base_url`` apply to ``provider`` (or the config's
        ``default_provider``); other providers take theirs from the config or environment.
        """
        from ._config import Config, load_config

        self._engine = self._engine_class()(
            config if isinstance(config, Config) else load_config(config),
            http_client=http_client,
            provider=provider,
            api_key=api_key,
            secret_key=secret_key,
            base_url=str(base_url) if base_url is not None else None,
            timeout=timeout,
            max_retries=max_retries,
            default_headers=dict(default_headers or {}),
            default_query=dict(default_query or {}),
            on_usage=on_usage,
            usage=_usage,
        )
        self._mount_resources()

    def _mount_resources(self) -> None:
        raise NotImplementedError

    def with_options(self, **overrides: Any) -> Any:
        """A copy with some constructor arguments changed; it shares the HTTP connection pool."""
        engine = self._engine
        settings = {
            "api_key": engine.client_key("api_key"),
            "secret_key": engine.client_key("secret_key"),
            "base_url": engine._base_url,
            "timeout": engine.timeout,
            "max_retries": engine.max_retries,
            "default_headers": engine.default_headers,
            "default_query": engine.default_query,
            "http_client": engine.http,
            "provider": engine.provider,
            "config": engine.config,
            "_usage": engine.usage,
        }
        return type(self)(**{**settings, **overrides})

    copy = with_options

    @property
    def usage(self) -> UsageLedger:
        """What this client (and its ``with_options`` copies) spent: tokens and yuan."""
        return self._engine.usage

    @property
    def config(self) -> Config:
        return self._engine.config

    @property
    def provider(self) -> Optional[str]:
        return self._engine.provider

    @property
    def max_retries(self) -> int:
        return self._engine.max_retries

    @property
    def timeout(self) -> Union[float, httpx.Timeout]:
        return self._engine.timeout

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and bug reports.
        return (
            f"{type(self).__name__}(provider={self.provider!r}, "
            f"config={self.config.source!r}, max_retries={self.max_retries})"
        )


class OpenAI(_ClientBase):
    """Drop-in for ``openai.OpenAI`` that speaks Zhipu, Qianfan and DashScope natively."""

    _engine: SyncEngine

    @staticmethod
    def _engine_class() -> type[SyncEngine]:
        from ._engine import SyncEngine

        return SyncEngine

    def _mount_resources(self) -> None:
        self.chat = Chat(self)
        self.embeddings = Embeddings(self)
        self.models = Models(self)

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> OpenAI:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


class AsyncOpenAI(_ClientBase):
    """Drop-in for ``openai.AsyncOpenAI``."""

    _engine: AsyncEngine

    @staticmethod
    def _engine_class() -> type[AsyncEngine]:
        from ._engine import AsyncEngine

        return AsyncEngine

    def _mount_resources(self) -> None:
        self.chat = AsyncChat(self)
        self.embeddings = AsyncEmbeddings(self)
        self.models = AsyncModels(self)

    async def close(self) -> None:
        await self._engine.close()

    async def __aenter__(self) -> AsyncOpenAI:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()
