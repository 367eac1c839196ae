"""Authenticated calls the commands make to a provider: list its models, or prove its key.

Both go through ``llm_bridge.OpenAI`` built for one provider, so the key, its kind (a
Zhipu JWT, a Qianfan IAM token minted first), the API root (``base_url``, the provider's
``*_BASE_URL`` variable, or the ``[[endpoints]]`` row for its ``api``/``region``/``plan``)
and the error mapping are exactly what a program using the SDK gets.

- `list_models`: ``GET {root}/models`` where the API has one (OpenAI's shape): DashScope's
  compatible mode, Qianfan v2 and OpenAI-compatible providers. Zhipu's v4 API, DashScope's
  native API and Qianfan's v1 list none. ``client.models.list()`` answers from the
  catalogue without a call, so this asks the provider itself.
- `check_key`: the cheapest proof that a key works: that listing where there is one (it
  costs nothing), else a chat of one output token with the provider's cheapest catalogued
  chat model (a free one where there is one: glm-4-flash on Zhipu). Only a 2xx listing
  verifies a key and only a 401 (403: the account) refuses it: a 404 (a proxy, a private
  deployment or a fake that serves no list), a 5xx or a 429 says nothing about the key,
  so the chat is made then too.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from .._client import OpenAI
    from .._config import Config, Endpoint, ProviderConfig
    from .._errors import APIError
    from ..adapters import Adapter

__all__ = [
    "KeyCheck",
    "cheapest_chat_model",
    "check_key",
    "client_for",
    "has_models_endpoint",
    "list_models",
    "listing_failure",
    "serves_no_list",
]

#: Seconds an online check may take per call (connect, read).
DEFAULT_TIMEOUT = 15.0


def client_for(
    config: Config, provider: str, *, base_url: Optional[str] = None, timeout: float
) -> OpenAI:
    """A client of ``provider`` alone, without retries (a check reports the first answer).
    ``base_url`` sends it to that root instead of the configured one (its ``[[endpoints]]``
    row then sets api, region and plan, as a recognised base URL always does). A probe's
    usage goes to no ``on_usage`` callback of the config: it is not the program's."""
    from .._client import OpenAI

    return OpenAI(
        provider=provider,
        config=config,
        base_url=base_url,
        max_retries=0,
        timeout=timeout,
        on_usage=_ignore,
    )


def _ignore(record: Any) -> None:
    """The usage callback of probes: nothing to record."""


def adapter_of(client: OpenAI, provider: str) -> Adapter:
    """The adapter the client built for ``provider`` (its API root and credentials)."""
    return client._engine.adapter(provider)


def has_models_endpoint(adapter: Adapter) -> bool:
    """Whether the adapter's API lists models at ``GET {root}/models``."""
    return adapter.lists_models  # (a property of the wire: `Adapter.lists_models`)


def endpoint_of(spec: ProviderConfig, adapter: Adapter) -> Optional[Endpoint]:
    """The ``[[endpoints]]`` row the adapter's root is (None: a base URL of the user's)."""
    return spec.endpoint_of(adapter.base_url)


def where(spec: ProviderConfig, adapter: Adapter, *, short: bool = False) -> str:
    """The root a call goes to, as errors name it: ``Singapore (international), standard
    plan, compatible API (https://...)`` (``short``: ``Singapore (international)
    https://...``), or the bare URL when it is no ``[[endpoints]]`` row."""
    endpoint = endpoint_of(spec, adapter)
    if endpoint is None:
        return adapter.base_url
    if short:
        return f"{endpoint.label or endpoint.region} {endpoint.url}"
    return endpoint.describe()


def list_models(client: OpenAI, provider: str) -> list[dict[str, Any]]:
    """The provider's own ``GET /models`` answer (its ``data`` entries), through the
    client's credentials; raises the SDK's `APIError` family as any call does."""
    from .._engine import _transport_error
    from .._errors import APIResponseValidationError
    from .._wire import call_adapter, reply_of
    from ..adapters._base import HTTPRequest, parse_json

    engine = client._engine
    adapter = adapter_of(client, provider)
    credentials = adapter.credentials
    http = engine.http
    try:
        token_request = engine.token_request(credentials)
        if token_request is not None:
            credentials.accept_token(http.send(token_request))
        headers = {}
        if adapter.spec.workspace:
            headers["X-DashScope-WorkSpace"] = adapter.spec.workspace
        spec = HTTPRequest("GET", adapter.url("models"), headers, params=credentials.query())
        request = engine.http_request(http, spec, engine.options(), stream=False)
        credentials.sign(request)
        response = http.send(request)
    except Exception as error:
        import httpx

        if isinstance(error, httpx.HTTPError):
            raise _transport_error(error, error.request, provider) from error
        raise
    reply = reply_of(response)
    body = parse_json(reply)
    failure = call_adapter(response, adapter.find_error, reply, body)
    if failure is not None:
        raise failure.api_error(response)
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise APIResponseValidationError(
            response, body, message=f"{provider} answered GET /models with no list of models"
        )
    return [entry for entry in data if isinstance(entry, dict) and "id" in entry]


def cheapest_chat_model(config: Config, provider: str) -> Optional[str]:
    """The catalogue's cheapest current chat model that need not think (thinking would
    spend tokens the probe does not want), by input plus output price; None if none."""
    spec = config.provider(provider)
    best: Optional[tuple[Any, ...]] = None
    for name, info in spec.models.items():
        if info.kind != "chat" or info.retired or info.thinking == "always":
            continue
        price = config.price(provider, name)
        cost = price.input + price.output if price is not None else Decimal("Infinity")
        rank = (cost, info.thinking is not None, info.stream_only, name)
        if best is None or rank < best:
            best = rank
    return best[-1] if best is not None else None


@dataclass
class KeyCheck:
    """What one authenticated call said about a key at one API root."""

    where: str  # the root, as `where` names it
    how: str  # "GET /models" or "a 1-token chat with glm-4-flash"
    accepted: bool  # the provider authenticated the key (even if the call failed after)
    detail: str  # what came back: "35 models", or the error
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        return self.accepted and self.error is None


def check_key(
    config: Config, provider: str, *, base_url: Optional[str], timeout: float
) -> KeyCheck:
    """Call ``provider`` once (at ``base_url``, else its configured root) and say whether
    its key was accepted. Raises only for what no call can cure: a config or credential
    mistake found before sending (`OpenAIError`, not `APIError`).

    Where the API lists models, only a 2xx answer with a list verifies the key; a 401
    rejects it and a 403 refuses the account, as a chat's would. Any other answer (404
    from a root or proxy that serves no list, a 5xx, a 429, a 2xx without a list) says
    nothing about the key, so the 1-token chat decides, and ``how`` names both calls."""
    from .._errors import APIConnectionError, APIError, AuthenticationError, PermissionDeniedError

    client = client_for(config, provider, base_url=base_url, timeout=timeout)
    try:
        spec = client._engine.config.provider(provider)
        adapter = adapter_of(client, provider)
        place = where(spec, adapter, short=True)
        listing = None
        if has_models_endpoint(adapter):
            how = "GET /models"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # notes are not the check's
                    listed = list_models(client, provider)
            except AuthenticationError as error:  # 401: the key is not known there
                return KeyCheck(place, how, False, str(error), error)
            except APIConnectionError as error:  # a chat would go to the same root
                return KeyCheck(place, how, False, f"not reached: {error}", error)
            except PermissionDeniedError as error:  # authenticated, the account refused
                return KeyCheck(place, how, True, str(error), error)
            except APIError as error:  # not an answer about the key: chat instead
                listing = listing_failure(error)
            else:
                return KeyCheck(place, how, True, f"{len(listed)} models listed")
        model = cheapest_chat_model(client._engine.config, provider)
        if model is None:
            detail = "no catalogued chat model to call"
            return KeyCheck(place, "no call", False, f"{listing}; {detail}" if listing else detail)
        how = f"a 1-token chat with {model}"
        if listing:
            how = f"{listing}, so {how}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # parameter notes are not the check's
                client.chat.completions.create(
                    model=f"{provider}/{model}",
                    messages=[{"role": "user", "content": "hi"}],
                    max_tokens=1,
                )
        except AuthenticationError as error:  # 401: the key is not known there
            return KeyCheck(place, how, False, str(error), error)
        except APIConnectionError as error:
            return KeyCheck(place, how, False, f"not reached: {error}", error)
        except APIError as error:  # authenticated, then refused (403: account, model...)
            return KeyCheck(place, how, True, str(error), error)
        return KeyCheck(place, how, True, "answered")
    finally:
        client.close()


def listing_failure(error: APIError) -> str:
    """What a ``GET /models`` that verified nothing answered: ``GET /models answered 404``
    (its HTTP status), or that a 2xx held no list of models."""
    from .._errors import APIStatusError

    if isinstance(error, APIStatusError):
        return f"GET /models answered {error.status_code}"
    return "GET /models answered no list of models"


def serves_no_list(error: APIError) -> bool:
    """Whether ``error`` says the root has no ``GET /models`` at all (404, or 405 from a
    server that knows the path only for other methods), not that the call failed."""
    from .._errors import APIStatusError

    return isinstance(error, APIStatusError) and error.status_code in (404, 405)
