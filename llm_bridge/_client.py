"""``llm_bridge.OpenAI`` and ``AsyncOpenAI``: openai's own clients, talking through llm-bridge.

Each is a subclass of openai's client whose HTTP client holds llm-bridge's transport
(`_transport`). Every resource, helper, type and exception path is openai's own —
``chat.completions.create/parse/stream``, ``with_raw_response``, ``with_streaming_response``,
``beta``, ``base_url`` — so code and libraries written for openai see openai. The
constructor adds ``provider=``, ``config=``, ``secret_key=`` and ``on_usage=``; the
``http_client`` given carries the traffic to the providers, as before.

With one provider (``provider=``, the config's ``default_provider``, or a recognised
``base_url``), ``client.base_url`` is that provider's real API root.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, Callable, Optional, Union, cast

import openai
from typing_extensions import Self

from ._answer_models import built
from ._constants import DEFAULT_MAX_RETRIES

if TYPE_CHECKING:
    import httpx
    import httpx2

    from ._config import Config
    from .usage import UsageLedger, UsageRecord

__all__ = ["AsyncOpenAI", "OpenAI"]

ConfigSource = Union[str, "os.PathLike[str]", Mapping[str, Any], "Config", None]
#: A client's ``timeout``: seconds, or a timeout of either HTTP library (openai 3.x's
#: ``openai.Timeout`` is httpx2's).
TimeoutArg = Union[float, "httpx.Timeout", "httpx2.Timeout", None]

#: ``base_url`` of a client that routes to several providers: requests never leave the
#: process for it (the transport answers them), and ``.invalid`` can never resolve.
ROUTER_BASE_URL = "https://llm-bridge.invalid/v1"
#: What ``client.api_key`` holds when no single provider key applies.
PLACEHOLDER_KEY = "llm-bridge"

#: Constructor arguments openai's ``copy()`` merges rather than replaces.
_MERGED = {"default_headers": "set_default_headers", "default_query": "set_default_query"}


class _Bridged:
    """What both clients share: building the engine and transport, ``copy``, errors."""

    _bridge: dict[str, Any]
    _transport: Any

    def _setup(
        self,
        flavour: str,
        *,
        api_key: Optional[str],
        secret_key: Optional[str],
        base_url: Union[str, httpx.URL, None],
        timeout: Any,
        max_retries: int,
        http_client: Any,
        provider: Optional[str],
        config: ConfigSource,
        on_usage: Optional[Callable[[UsageRecord], Any]],
        usage: Optional[UsageLedger],
    ) -> dict[str, Any]:
        """Build the engine and transport; return what openai's constructor needs."""
        import httpx  # (here, not at the top: `from llm_bridge import OpenAI` skips it)

        from ._config import Config, load_config
        from ._endpoints import recognise
        from ._engine import AsyncEngine, SyncEngine
        from ._front_client import front_client
        from ._transport import (
            AsyncBridgeTransport,
            BridgeTransport,
            EngineFactory,
            FixedEngine,
            client_library,
        )

        resolved = config if isinstance(config, Config) else load_config(config)
        url = str(base_url) if base_url is not None else os.environ.get("OPENAI_BASE_URL")
        known = recognise(resolved, url) if url else None
        if known is not None:
            resolved = resolved.with_provider_settings(known.provider, known.settings)
            provider = provider or known.provider
            url = known.root
            if api_key is None and not _has_key(resolved, known.provider):
                # Configured the openai way (a provider's root as the base URL): the key is
                # where openai's client looks, as a plain openai client would send it.
                api_key = os.environ.get("OPENAI_API_KEY") or None
        elif base_url is None:
            url = None  # OPENAI_BASE_URL for no known provider: the openai provider's own
        elif provider is None and resolved.default_provider is None:
            # An OpenAI-compatible root llm-bridge does not know (DeepSeek, a proxy): every
            # request goes there, as openai's client would send it, on OpenAI's wire.
            provider = "openai"
        factory = EngineFactory(
            SyncEngine if flavour == "sync" else AsyncEngine,
            http_client=http_client,
            timeout=timeout,
            max_retries=max_retries,
            on_usage=on_usage,
            usage=usage,
        )
        engine = factory(
            resolved, provider=provider, api_key=api_key, base_url=url, secret_key=secret_key
        )
        primary = engine.primary_provider()
        root = engine.adapter(primary).base_url if primary else ROUTER_BASE_URL
        root_path = httpx.URL(root).path
        self._bridge = {
            "api_key": api_key,
            "secret_key": secret_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
            "http_client": factory.http,
            "provider": provider,
            "config": resolved,
            "on_usage": on_usage,
            "_usage": engine.usage,
        }
        self._engine = engine
        source = FixedEngine(factory, engine, root_path)
        lib = client_library(None)
        if flavour == "sync":
            self._transport = BridgeTransport(source, stash_errors=True)
        else:
            self._transport = AsyncBridgeTransport(source, stash_errors=True)
        front = front_client(lib, self._transport, sync=flavour == "sync")
        key = api_key or (resolved.api_key(primary) if primary else None) or PLACEHOLDER_KEY
        return {"api_key": key, "base_url": root, "http_client": front}

    def _init(self, flavour: str, arguments: dict[str, Any]) -> None:
        """The constructors' shared body: ``arguments`` are their own (``locals()``)."""
        args = {k: v for k, v in arguments.items() if k not in ("self", "__class__")}
        front = self._setup(
            flavour,
            api_key=args["api_key"],
            secret_key=args["secret_key"],
            base_url=args["base_url"],
            timeout=args["timeout"],
            max_retries=args["max_retries"],
            http_client=args["http_client"],
            provider=args["provider"],
            config=args["config"],
            on_usage=args["on_usage"],
            usage=args["_usage"],
        )
        openai_init: Any = super().__init__  # openai's client: next in the MRO
        openai_init(
            **front,
            timeout=_openai_timeout(args["timeout"]),
            max_retries=args["max_retries"],
            default_headers=args["default_headers"],
            default_query=args["default_query"],
            organization=args["organization"],
            project=args["project"],
            # (only when given: openai versions before these arguments refuse them)
            **{name: args[name] for name in _OPENAI_PASSED if args[name]},
        )

    def _refuse_connect(self, resource: Any, api: str) -> Any:
        """``resource`` with its ``connect()`` refused.

        ``responses.connect()`` and ``realtime.connect()`` open a WebSocket to the
        provider's host themselves, past the transport (with the provider key): no
        provider speaks them, so they raise openai's NotFoundError, as unserved APIs do."""
        from ._front import Endpoint, unserved

        error = unserved(Endpoint("unserved", api), self._engine.primary_provider())

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise error

        vars(resource)["connect"] = refuse  # an instance attribute shadows the method
        return resource

    if not TYPE_CHECKING:  # (type checkers see openai's own resources)
        # Patched as openai builds them, on first use: building them at construction
        # imported openai's Realtime and Responses-streaming types (hundreds of modules,
        # a tenth of a second, megabytes) for every client, used or not.

        @cached_property
        def responses(self):
            return self._refuse_connect(super().responses, "Responses WebSocket mode")

        @cached_property
        def realtime(self):
            return self._refuse_connect(super().realtime, "the Realtime API")

    # ------------------------------------------------------------------ openai hooks

    def _refuse_if_closed(self) -> None:
        """A closed client's request is an openai-style error saying so, not the HTTP
        library's bare ``RuntimeError`` (which openai would pass on)."""
        if self.is_closed():  # type: ignore[attr-defined]
            from ._errors import ClientClosedError

            raise ClientClosedError(
                f"This {type(self).__name__} client was closed (close() or the end of its "
                f"`with` block); create a new client to send more requests."
            )

    def _make_status_error(self, err_msg: str, *, body: object, response: Any) -> Any:
        """The exception the transport reported (ours, with ``provider``), else openai's."""
        from ._errors import APIStatusError
        from ._front import ERROR_EXTENSION

        stashed = response.extensions.get(ERROR_EXTENSION)
        if isinstance(stashed, APIStatusError):
            # What openai read (see `APIStatusError`), naming the provider request, whose
            # credentials are masked, rather than openai's, which carries the caller's key.
            response.request = stashed.request
            stashed.response = response
        if stashed is not None:
            return stashed
        return super()._make_status_error(err_msg, body=body, response=response)  # type: ignore[misc]

    def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
        """openai's answer object for ``data``: built by pydantic's validator, equal to
        and much faster than openai's own way (`_answer_models`), where it may be."""
        if not self._strict_response_validation:  # type: ignore[attr-defined]
            model = built(data, cast_to)
            if model is not None:
                return model
        return super()._process_response_data(  # type: ignore[misc]
            data=data, cast_to=cast_to, response=response
        )

    def copy(self, **overrides: Any) -> Self:  # pyright: ignore[reportIncompatibleMethodOverride]
        """A client like this one with some constructor arguments changed (as openai's).

        The copy shares this client's provider connections and usage ledger."""
        settings = dict(self._bridge)
        settings["default_headers"] = dict(getattr(self, "_custom_headers", {}))
        settings["default_query"] = dict(getattr(self, "_custom_query", {}))
        for name in ("organization", "project", *_OPENAI_PASSED):
            settings[name] = getattr(self, name, None)
        for name, replacing in _MERGED.items():
            if overrides.get(name) is not None:
                settings[name] = {**settings[name], **overrides.pop(name)}
            if overrides.get(replacing) is not None:
                settings[name] = dict(overrides.pop(replacing))
            overrides.pop(replacing, None)
        settings.update({k: v for k, v in overrides.items() if _given(v)})
        return type(self)(**settings)

    with_options = copy

    @property
    def provider(self) -> Optional[str]:
        """Where bare model names go (``provider=``, a recognised ``base_url`` or the
        config's ``default_provider``), or None for a client that routes by config."""
        return self._engine.primary_provider()

    @property
    def config(self) -> Config:
        return self._bridge["config"]

    @property
    def usage(self) -> UsageLedger:
        """What this client (and its copies) spent: tokens and yuan."""
        return self._bridge["_usage"]

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and bug reports.
        return (
            f"{type(self).__name__}(provider={self.provider!r}, "
            f"base_url={str(getattr(self, 'base_url', ''))!r}, "
            f"config={self.config.source!r}, max_retries={getattr(self, 'max_retries', None)})"
        )


class OpenAI(_Bridged, openai.OpenAI):
    """``openai.OpenAI``, answered by Zhipu, Qianfan and DashScope through llm-bridge."""

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: TimeoutArg = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Optional[Mapping[str, str]] = None,
        default_query: Optional[Mapping[str, object]] = None,
        http_client: Optional[httpx.Client] = None,
        provider: Optional[str] = None,
        config: ConfigSource = None,
        on_usage: Optional[Callable[[UsageRecord], Any]] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        webhook_secret: Optional[str] = None,
        websocket_base_url: Union[str, httpx.URL, None] = None,
        _strict_response_validation: bool = False,
        _usage: Optional[UsageLedger] = None,
    ) -> None:
        """openai's constructor arguments, plus:

        - ``provider``: where bare model names go (``"zhipu"``, ``"qianfan"``, ...);
        - ``config``: a TOML path or a mapping of the same schema (default: the
          ``$LLM_BRIDGE_CONFIG`` file, else ``./llm_bridge.toml``, else the environment);
        - ``secret_key``: the second half of a key pair (Qianfan's Secret Key);
        - ``on_usage``: called with each `UsageRecord` (tokens, yuan, estimated or not).

        ``http_client`` (an ``httpx.Client``) carries the traffic to the providers.
        ``api_key``, ``secret_key`` and ``base_url`` apply to ``provider`` (or the config's
        ``default_provider``); other providers take theirs from the config or environment,
        and a key given without either goes only to providers that have none there.
        """
        self._init("sync", locals())

    def request(self, *args: Any, **kwargs: Any) -> Any:
        """openai's, refusing at once on a closed client (see `_refuse_if_closed`)."""
        self._refuse_if_closed()
        request = cast("Callable[..., Any]", super().request)
        return request(*args, **kwargs)

    def _process_response(self, **kwargs: Any) -> Any:
        """openai's, with ``retries_taken`` counting the engine's retries too."""
        from ._front import retries_of

        if "retries_taken" in kwargs:
            kwargs["retries_taken"] += retries_of(kwargs.get("response"))
        return _acyclic(super()._process_response(**kwargs))


class AsyncOpenAI(_Bridged, openai.AsyncOpenAI):
    """``openai.AsyncOpenAI``, answered through llm-bridge."""

    def __init__(
        self,
        *,
        api_key: Optional[str] = None,
        secret_key: Optional[str] = None,
        base_url: Union[str, httpx.URL, None] = None,
        timeout: TimeoutArg = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        default_headers: Optional[Mapping[str, str]] = None,
        default_query: Optional[Mapping[str, object]] = None,
        http_client: Optional[httpx.AsyncClient] = None,
        provider: Optional[str] = None,
        config: ConfigSource = None,
        on_usage: Optional[Callable[[UsageRecord], Any]] = None,
        organization: Optional[str] = None,
        project: Optional[str] = None,
        webhook_secret: Optional[str] = None,
        websocket_base_url: Union[str, httpx.URL, None] = None,
        _strict_response_validation: bool = False,
        _usage: Optional[UsageLedger] = None,
    ) -> None:
        """As `OpenAI`; ``http_client`` is an ``httpx.AsyncClient``."""
        self._init("async", locals())

    async def request(self, *args: Any, **kwargs: Any) -> Any:
        """openai's, refusing at once on a closed client (see `_refuse_if_closed`)."""
        self._refuse_if_closed()
        return await super().request(*args, **kwargs)

    async def _process_response(self, **kwargs: Any) -> Any:
        """openai's, with ``retries_taken`` counting the engine's retries too."""
        from ._front import retries_of

        if "retries_taken" in kwargs:
            kwargs["retries_taken"] += retries_of(kwargs.get("response"))
        return _acyclic(await super()._process_response(**kwargs))


#: openai constructor arguments passed on as they are (``webhooks.unwrap`` reads the
#: secret; WebSocket modes are refused, but the URL is kept as openai keeps it).
_OPENAI_PASSED = ("webhook_secret", "websocket_base_url", "_strict_response_validation")


def _given(value: object) -> bool:
    """Whether a ``copy()`` argument changes anything: neither None nor openai's
    ``NOT_GIVEN`` (its own ``copy`` defaults ``timeout``, ``max_retries`` and ``base_url``
    to that sentinel, and code written for it may pass it on)."""
    return value is not None and not isinstance(value, openai.NotGiven)


def _acyclic(result: Any) -> Any:
    """``result``, an openai stream made free by reference counting: one abandoned unclosed
    then closes its connection as soon as it is dropped (see
    `_streaming.unlink_openai_stream`)."""
    if isinstance(result, (openai.Stream, openai.AsyncStream)):
        from ._streaming import unlink_openai_stream

        unlink_openai_stream(cast("Any", result))
    return cast("Any", result)


def _openai_timeout(timeout: Any) -> Any:
    """The timeout openai's constructor gets: the caller's own object (an ``openai.Timeout``
    stays one, as ``client.timeout`` shows it), checked, else llm-bridge's default (the
    same figures as openai's). Per request it reaches the engine, which applies it."""
    from ._http_clients import DEFAULT_TIMEOUT
    from ._transport import checked_timeout

    if timeout is None:
        return DEFAULT_TIMEOUT
    checked_timeout(timeout)
    return timeout


def _has_key(config: Config, provider: str) -> bool:
    """Whether the config or the provider's own environment variables hold a key for it."""
    return any(config.secret(provider, field) for field in ("api_key", "iam_access_key"))
