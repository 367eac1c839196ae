"""Configuration: the shipped provider tables, the user's config file, and the environment.

Two sources share one schema (`ProviderConfig`): the provider tables shipped in
``providers/*.toml`` (base URLs, models, prices, parameter ranges, error codes) and the
``[providers.NAME]`` blocks of a user's ``llm_bridge.toml``, which override or extend
them (credentials, a base URL, a whole new OpenAI-compatible provider). Keeping it one
schema means a user-defined provider can say everything a shipped one does.

Every mistake is reported as a `ConfigError` naming the file, the key path and what was
expected, because a config error found at the first request, in production, is the
expensive kind. Secrets are held as `pydantic.SecretStr` so they never print.
"""

from __future__ import annotations

import codecs
import copy
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import replace
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ._constants import MAX_RESPONSE_BYTES, MAX_SSE_LINE_BYTES
from ._errors import EXCEPTIONS_BY_NAME, APIStatusError, ConfigError
from .usage import Price, PriceTier

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

__all__ = [
    "CREDENTIAL_FIELDS",
    "Config",
    "ErrorRule",
    "Limits",
    "ModelInfo",
    "ParamRule",
    "PriceOverride",
    "PriceTierRow",
    "ProviderConfig",
    "WebSearchRule",
    "load_config",
]

_log = logging.getLogger("llm_bridge")

CONFIG_ENV = "LLM_BRIDGE_CONFIG"
DEFAULT_CONFIG_FILE = "llm_bridge.toml"
PROTOCOLS = ("openai_compat", "zhipu", "qianfan", "dashscope")
CREDENTIAL_FIELDS = ("api_key", "secret_key", "iam_access_key", "iam_secret_key")
#: An environment variable's name, as ``${NAME}`` and the ``*_env`` fields take it.
_ENV_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
#: Wrong values are echoed in errors (seeing one helps) up to this length of their repr;
#: a longer one may be a key pasted into the wrong field (provider keys run 32 characters
#: and more), so only its first few characters are shown.
_ECHO_LIMIT = 32


class _Strict(BaseModel):
    """Unknown keys are errors: a typo in a config file must not be silently ignored. So
    is a boolean where a number belongs (``stream_idle_timeout = true`` was a 1-second
    timeout): pydantic reads ``true`` as 1. Other conversions stay, as a value from
    ``${VAR}`` is always a string: ``"30"`` is 30 seconds, ``"false"`` is false."""

    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_for_a_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name is not None:
            field = cls.model_fields.get(info.field_name)
            if field is not None and _numeric(field.annotation):
                raise ValueError(f"expected a number, got {str(value).lower()}")
        return value


def _numeric(annotation: Any) -> bool:
    """Whether a field's type is a number (``int``, ``float``, ``Decimal``, or Optional)."""
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if getattr(annotation, "__origin__", None) is Union and len(args) == 1:
        annotation = args[0]
    return annotation in (int, float, Decimal)


#: The price fields a tier may carry, as the catalogue (``*_price``) and a ``[prices]`` row
#: name them.
_TIER_PRICES = (
    "input",
    "output",
    "cached_input",
    "cache_creation",
    "thinking_output",
    "explicit_cache_hit",
)


class _Tier(_Strict):
    """The bounds of one price tier, shared by the catalogue's and the overrides' form:
    the tier holds calls of at most ``up_to_input_tokens`` prompt tokens and at most
    ``up_to_output_tokens`` completion tokens (inclusive; absent: no bound)."""

    up_to_input_tokens: Optional[int] = Field(default=None, gt=0)
    up_to_output_tokens: Optional[int] = Field(default=None, gt=0)

    def prices(self) -> dict[str, Optional[Decimal]]:
        """The tier's prices by their short names (``input``, ``cached_input`` ...)."""
        raise NotImplementedError

    def as_price_tier(self) -> PriceTier:
        prices = self.prices()
        input_price, output_price = prices["input"], prices["output"]
        assert input_price is not None and output_price is not None  # required fields
        return PriceTier(
            self.up_to_input_tokens,
            self.up_to_output_tokens,
            input_price,
            output_price,
            cached_input=prices["cached_input"],
            cache_creation=prices["cache_creation"],
            thinking_output=prices["thinking_output"],
            explicit_cache_hit=prices["explicit_cache_hit"],
        )


class PriceTierRow(_Tier):
    """One ``[[models."NAME".price_tiers]]`` entry: a length band and its prices (CNY per
    million tokens), named as the model's own price fields are."""

    input_price: Decimal = Field(ge=0)
    output_price: Decimal = Field(ge=0)
    cached_input_price: Optional[Decimal] = Field(default=None, ge=0)
    cache_creation_price: Optional[Decimal] = Field(default=None, ge=0)
    thinking_output_price: Optional[Decimal] = Field(default=None, ge=0)
    explicit_cache_hit_price: Optional[Decimal] = Field(default=None, ge=0)

    def prices(self) -> dict[str, Optional[Decimal]]:
        return {name: getattr(self, f"{name}_price") for name in _TIER_PRICES}


def _check_tiers(tiers: List[Any], name: str) -> None:
    """Tiers must be ascending: by ``up_to_input_tokens``, then, among tiers with the same
    input bound, by ``up_to_output_tokens``; and the last tier of each input band must not
    bound the output (a longer answer would otherwise fall into the next band's prices).
    A call picks the first tier that holds it, so a tier out of order would never be used
    or would price calls it was not meant for."""
    infinity = float("inf")
    for index, tier in enumerate(tiers):
        here = f"{name}[{index}]"
        if index + 1 < len(tiers):
            after = tiers[index + 1]
            same_band = after.up_to_input_tokens == tier.up_to_input_tokens
        else:
            same_band = False
        if tier.up_to_output_tokens is not None and not same_band:
            raise ValueError(
                f"{here}.up_to_output_tokens: {tier.up_to_output_tokens} bounds the output, "
                f"but no next tier with the same up_to_input_tokens prices longer answers "
                f"(add one without up_to_output_tokens)"
            )
        if index == 0:
            continue
        before = tiers[index - 1]
        low = before.up_to_input_tokens if before.up_to_input_tokens is not None else infinity
        high = tier.up_to_input_tokens if tier.up_to_input_tokens is not None else infinity
        if high < low or (high == low and before.up_to_output_tokens is None):
            shown = "none" if tier.up_to_input_tokens is None else tier.up_to_input_tokens
            raise ValueError(
                f"{here}.up_to_input_tokens: {shown} does not come after {name}[{index - 1}]'s "
                f"{'none' if before.up_to_input_tokens is None else before.up_to_input_tokens}"
                f"; tiers go in ascending order of up_to_input_tokens (then "
                f"up_to_output_tokens), the last one unbounded or the largest"
            )
        if high == low:
            out_low = before.up_to_output_tokens
            out_high = tier.up_to_output_tokens
            if out_low is not None and out_high is not None and out_high <= out_low:
                raise ValueError(
                    f"{here}.up_to_output_tokens: {out_high} does not come after "
                    f"{name}[{index - 1}]'s {out_low}; tiers with the same up_to_input_tokens "
                    f"go in ascending order of up_to_output_tokens"
                )


class ModelInfo(_Strict):
    """One catalogue entry: what the model is, what it can do, what it costs."""

    kind: Literal["chat", "embedding", "image"] = "chat"
    aliases: List[str] = []  # other names the provider accepts for it (ERNIE-Bot-4 ...)
    context_window: Optional[int] = Field(default=None, gt=0)
    max_output_tokens: Optional[int] = Field(default=None, gt=0)
    capabilities: List[str] = []
    # Prices in CNY per million tokens.
    input_price: Optional[Decimal] = Field(default=None, ge=0)
    output_price: Optional[Decimal] = Field(default=None, ge=0)
    cached_input_price: Optional[Decimal] = Field(default=None, ge=0)
    # Embedding models.
    dimensions: List[int] = []
    default_dimensions: Optional[int] = None
    max_batch: Optional[int] = Field(default=None, gt=0)
    max_input_tokens: Optional[int] = Field(default=None, gt=0)
    # The most tokens one embeddings request may carry, all its texts together (Zhipu: 8K).
    max_batch_tokens: Optional[int] = Field(default=None, gt=0)
    # Protocol-specific routing facts (Qianfan v1 endpoint suffix, v2 model id, ...).
    endpoint: Optional[str] = None
    v2_model: Optional[str] = None
    stream_only: bool = False  # refuses non-stream calls: they are streamed and aggregated
    stream_only_when_thinking: bool = False
    thinking_by_default: bool = False  # a hybrid model that thinks unless told not to
    # Reasoning (see llm_bridge/_reasoning.py): "hybrid" models think or not on request,
    # "always" models cannot stop thinking; the reasoning_effort values the model takes
    # natively (else effort maps to the on/off switch and a thinking budget); whether a
    # budget must accompany thinking, and the largest budget it takes.
    thinking: Optional[Literal["hybrid", "always"]] = None
    reasoning_efforts: List[str] = []
    thinking_budget_required: bool = False
    max_thinking_budget: Optional[int] = Field(default=None, gt=0)
    # Cache tiers: explicit cache creation (DashScope cache_control) in CNY per million.
    cache_creation_price: Optional[Decimal] = Field(default=None, ge=0)
    # Output of a call that thought, where a hybrid model costs more in thinking mode
    # (DashScope's qwen-plus: 2 without, 8 with); None: ``output_price`` either way.
    thinking_output_price: Optional[Decimal] = Field(default=None, ge=0)
    # A read from an explicit cache (DashScope's cache_control hits, usage ``cache_type``
    # "ephemeral": 10 % of input); None: such a read costs ``cached_input_price``.
    explicit_cache_hit_price: Optional[Decimal] = Field(default=None, ge=0)
    # Prices by the call's length, ascending (see `PriceTierRow`); the first tier's prices
    # are also the model's own (``input_price`` ...), filled in from it when left out.
    price_tiers: List[PriceTierRow] = []
    # Retirement: the date the provider retired it (YYYY-MM-DD) and what replaces it.
    retired: Optional[str] = None
    successor: Optional[str] = None

    @model_validator(mode="before")
    @classmethod
    def _first_tier_prices(cls, data: Any) -> Any:
        """With ``price_tiers``, the model's own prices left out are the first tier's: what
        listings (``llm-bridge models``) show and tools that know no tiers use."""
        tiers = data.get("price_tiers") if isinstance(data, Mapping) else None
        if not isinstance(tiers, list) or not tiers:
            return data
        first = tiers[0]
        if isinstance(first, BaseModel):
            first = first.model_dump(exclude_none=True)
        if not isinstance(first, Mapping):
            return data  # the field's own validation reports it
        filled = dict(data)
        for name in _TIER_PRICES:
            key = f"{name}_price"
            if filled.get(key) is None and first.get(key) is not None:
                filled[key] = first[key]
        return filled

    @field_validator("price_tiers")
    @classmethod
    def _ascending_tiers(cls, value: List[PriceTierRow]) -> List[PriceTierRow]:
        _check_tiers(value, "price_tiers")
        return value

    @model_validator(mode="after")
    def _prices_match_first_tier(self) -> ModelInfo:
        """A model's own price that differs from its first tier's is a contradiction (a
        user's ``input_price`` on a model the catalogue tiers, say): which one is meant
        cannot be told, so it is refused."""
        if not self.price_tiers:
            return self
        first = self.price_tiers[0]
        for name in _TIER_PRICES:
            key = f"{name}_price"
            own, tiered = getattr(self, key), getattr(first, key)
            if own is not None and own != tiered:
                raise ValueError(
                    f"{key} = {own} differs from price_tiers[0].{key} = {tiered}: with "
                    f"price_tiers the model's own prices are its first tier's; change the "
                    f"tiers (price_tiers = [] prices the model flat) or leave {key} out"
                )
        return self

    def supports(self, capability: str) -> bool:
        return capability in self.capabilities


class ParamRule(_Strict):
    """How a provider bounds one OpenAI parameter (values outside are clamped)."""

    min: Optional[float] = None
    max: Optional[float] = None
    max_items: Optional[int] = Field(default=None, gt=0)
    min_length: Optional[int] = Field(default=None, ge=0)
    max_length: Optional[int] = Field(default=None, gt=0)


class ErrorRule(_Strict):
    """What a provider's own error code means in openai's terms."""

    exception: str
    code: Optional[str] = None  # the OpenAI `code` to report, e.g. "insufficient_quota"
    retryable: bool = False
    reauth: bool = False  # a fresh credential (new JWT, new access token) may cure it
    meaning: Optional[str] = None

    @field_validator("exception")
    @classmethod
    def _known_exception(cls, value: str) -> str:
        if value not in EXCEPTIONS_BY_NAME:
            raise ValueError(
                f"unknown exception {_shown(value)}; expected one of {sorted(EXCEPTIONS_BY_NAME)}"
            )
        return value

    @property
    def exception_class(self) -> type[APIStatusError]:
        return EXCEPTIONS_BY_NAME[self.exception]


class WebSearchRule(_Strict):
    """How a provider searches the web when a call asks with OpenAI's ``web_search_options``
    (what a Responses ``web_search`` tool becomes): ``fields`` are set at the top level of
    the body, as ``extra_body`` is (DashScope's ``enable_search``), and ``tool`` is added to
    its ``tools`` (GLM's built-in ``web_search`` tool). A model the catalogue lists without
    the ``web_search`` capability, or ``enabled = false`` in a user's config, gets the
    unsupported-parameter policy instead (no search is sent)."""

    enabled: bool = True
    fields: Dict[str, Any] = {}
    tool: Optional[Dict[str, Any]] = None


class Endpoint(_Strict):
    """One API root of a provider: which protocol generation it speaks, for which region
    and billing plan. Keys are bound to their region and plan (a DashScope Beijing key is
    refused in Singapore, a Coding-Plan key on the pay-as-you-go host), so an error from
    an endpoint can say which one the key was sent to."""

    url: str
    api: str  # "v4" (Zhipu), "native" | "compatible" (DashScope), "v1" | "v2" (Qianfan)
    region: str = "cn"
    plan: str = "standard"  # "standard" (pay as you go) or "coding" (Coding Plan)
    label: Optional[str] = None  # how errors name it: "Singapore (international)"

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http(s) URL, got {_shown(value)}")
        return value.rstrip("/")

    def describe(self) -> str:
        """``Singapore (international), standard plan, compatible API`` for errors."""
        where = self.label or f"region {self.region!r}"
        return f"{where}, {self.plan} plan, {self.api} API ({self.url})"


class ProviderConfig(_Strict):
    """A provider: shipped table, user override, or a provider the user defines."""

    protocol: Optional[str] = None
    display_name: Optional[str] = None
    base_url: Optional[str] = None
    base_url_env: Optional[str] = None
    auth: Optional[str] = None
    auth_choices: List[str] = []
    # Credentials: a value here wins; else the first set variable of the matching *_env list.
    api_key: Optional[SecretStr] = None
    api_key_env: List[str] = []
    secret_key: Optional[SecretStr] = None
    secret_key_env: List[str] = []
    iam_access_key: Optional[SecretStr] = None
    iam_access_key_env: List[str] = []
    iam_secret_key: Optional[SecretStr] = None
    iam_secret_key_env: List[str] = []
    # Sent with every request to the provider; values never shown (they often hold tokens).
    headers: Dict[str, str] = Field(default={}, repr=False)
    prices_read: Optional[str] = None
    prices_source: Optional[str] = None
    params: Dict[str, ParamRule] = {}
    models: Dict[str, ModelInfo] = {}
    errors: Dict[str, ErrorRule] = {}
    # Qianfan: the v1 OAuth token endpoint, the IAM endpoint that mints v2 bearer tokens
    # from account keys, and the app id sent as `appid`.
    token_url: Optional[str] = None
    iam_token_url: Optional[str] = None
    appid: Optional[str] = None
    # The provider's API roots by api, region and plan, and which of them to use: the
    # first endpoint matching `api`, `region` and `plan` (each defaulting to the first
    # endpoint's value). An explicit `base_url` wins over all of them.
    endpoints: List[Endpoint] = []
    api: Optional[str] = None
    region: Optional[str] = None
    plan: Optional[str] = None
    # DashScope: the workspace (X-DashScope-WorkSpace header).
    workspace: Optional[str] = None
    # OpenAI parameters the native protocol cannot honour -> why (the policy applies).
    unsupported: Dict[str, str] = {}
    # Name stems of vision models, for names the catalogue does not list yet.
    vision_name_stems: List[str] = []
    # The provider's finish_reason words in OpenAI's vocabulary; "error" means it raises.
    finish_reasons: Dict[str, str] = {}
    # Token counting (llm_bridge.tokens): the vocabulary that counts for this provider,
    # whether its counts equal the provider's, and the chat template whose overhead to add.
    tokenizer: Optional[str] = None
    tokenizer_exact: bool = False
    chat_template: Optional[str] = None
    # A system prompt the provider adds when the request has none (it is billed).
    default_system_prompt: Optional[str] = None
    # reasoning_effort -> thinking budget (tokens) for models switched by a budget.
    thinking_budgets: Dict[str, int] = {}
    # Seconds a signed token lives (Zhipu `auth = "jwt"`); it is renewed well before.
    token_ttl: float = Field(default=210.0, gt=30)
    # The provider's own web search, for OpenAI's web_search_options (None: the parameter
    # goes as it is, or the [unsupported] table says why not).
    web_search: Optional[WebSearchRule] = None
    # The model standing in for each class of OpenAI model (fast, flagship, reasoning,
    # embedding): what `llm-bridge migrate` writes into a starter config.
    stand_ins: Dict[Literal["fast", "flagship", "reasoning", "embedding"], str] = {}

    @field_validator("protocol")
    @classmethod
    def _known_protocol(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in PROTOCOLS:
            raise ValueError(f"unknown protocol {_shown(value)}; expected one of {list(PROTOCOLS)}")
        return value

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"expected an http(s) URL, got {_shown(value)}")
        return value.rstrip("/") if value else value

    @field_validator(
        "base_url_env", "api_key_env", "secret_key_env", "iam_access_key_env", "iam_secret_key_env"
    )
    @classmethod
    def _variable_names(cls, value: Union[str, List[str], None]) -> Union[str, List[str], None]:
        """Only names: a value that is not one is most likely the key itself, pasted into
        the wrong field, so the error does not show it (every later error would)."""
        names = [value] if isinstance(value, str) else value or []
        if not all(re.fullmatch(_ENV_NAME, name) for name in names):
            raise ValueError(
                "expected names of environment variables (letters, digits, underscores, not "
                "starting with a digit); a value here is not one (not shown: it may be a key)"
            )
        return value

    def error_rule(self, code: str, message: Optional[str] = None) -> Optional[ErrorRule]:
        """The row for a provider error code: ``CODE:text`` rows (matched when the message
        contains text) first, then ``CODE``, then the longest ``PREFIX.*`` row."""
        if message:
            for key, rule in self.errors.items():
                row_code, sep, text = key.partition(":")
                if sep and row_code == code and text in message:
                    return rule
        rule = self.errors.get(code)
        if rule is not None:
            return rule
        parts = code.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            rule = self.errors.get(".".join(parts[:cut]) + ".*")
            if rule is not None:
                return rule
        return None

    def endpoint(
        self, api: Optional[str] = None, *, region: Optional[str] = None
    ) -> Optional[Endpoint]:
        """The endpoint for ``api`` (default: the configured one) in the configured region
        and plan; None when the table lists no endpoints."""
        if not self.endpoints:
            return None
        first = self.endpoints[0]
        want = (
            api or self.api or first.api,
            region or self.region or first.region,
            self.plan or first.plan,
        )
        for endpoint in self.endpoints:
            if (endpoint.api, endpoint.region, endpoint.plan) == want:
                return endpoint
        return None

    def endpoint_of(self, url: str) -> Optional[Endpoint]:
        """The listed endpoint whose root ``url`` is (or is below)."""
        url = url.rstrip("/")
        for endpoint in self.endpoints:
            if url == endpoint.url or url.startswith(endpoint.url + "/"):
                return endpoint
        return None

    def model(self, name: str) -> Optional[ModelInfo]:
        """The catalogue entry for ``name`` (case-insensitive), if any."""
        info = self.models.get(name)
        if info is None:
            canonical = self.canonical_model(name)
            info = self.models.get(canonical) if canonical else None
        return info

    def canonical_model(self, name: str) -> Optional[str]:
        """The catalogue's spelling of ``name``: providers' docs capitalise inconsistently."""
        if name in self.models:
            return name
        return _lowercase_index(self).get(name.lower())


def _lowercase_index(provider: ProviderConfig) -> dict[str, str]:
    # Cached on the (frozen) instance: catalogue lookups sit on the request path.
    index = provider.__dict__.get("_lower_index")
    if index is None:
        index = {
            alias.lower(): name for name, info in provider.models.items() for alias in info.aliases
        }
        index.update({name.lower(): name for name in provider.models})
        object.__setattr__(provider, "_lower_index", index)
    return index


FallbackKind = Literal[
    "connection",
    "timeout",
    "server_error",
    "rate_limit",
    "quota",
    "content_filter",
    "bad_request",
    "auth",
    "permission",
    "not_found",
    "other",
]
#: Faults of one provider that another may not have: the default fallback triggers.
DEFAULT_FALLBACK_ON = ("connection", "timeout", "server_error", "rate_limit", "quota")


class Policy(_Strict):
    """How to treat what a provider cannot do."""

    unsupported_params: Literal["warn", "drop", "error"] = "warn"
    # Refuse, before sending, a prompt that cannot fit the model's context window.
    preflight: bool = True
    # Errors that move an alias's fallback chain to its next target (after retries).
    fallback_on: List[FallbackKind] = list(DEFAULT_FALLBACK_ON)


class Limits(_Strict):
    """``[limits]``: how much of a provider's answer is read, and how long a stream is waited
    for, before giving up on it, so a hostile or broken upstream can exhaust neither memory
    nor time (each raises `ResponseTooLargeError` or `APITimeoutError` naming its key)."""

    # The largest answer read, after decompression (a gzip bomb counts as what it inflates to).
    max_response_bytes: int = Field(default=MAX_RESPONSE_BYTES, gt=0)
    # The longest line of a server-sent event stream.
    max_sse_line_bytes: int = Field(default=MAX_SSE_LINE_BYTES, gt=0)
    # The longest wait between two events of a stream, keep-alives not counting (None: the
    # call's read timeout), and the longest a whole stream may take (None: no limit). See
    # `llm_bridge._stream_reading`.
    stream_idle_timeout: Optional[float] = Field(default=None, gt=0)
    stream_deadline: Optional[float] = Field(default=None, gt=0)


class PriceOverrideTier(_Tier):
    """One ``[[prices."provider/model".tiers]]`` entry, named as the row's prices are."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cached_input: Optional[Decimal] = Field(default=None, ge=0)
    cache_creation: Optional[Decimal] = Field(default=None, ge=0)
    thinking_output: Optional[Decimal] = Field(default=None, ge=0)
    explicit_cache_hit: Optional[Decimal] = Field(default=None, ge=0)

    def prices(self) -> dict[str, Optional[Decimal]]:
        return {name: getattr(self, name) for name in _TIER_PRICES}


class PriceOverride(_Strict):
    """A ``[prices."provider/model"]`` row: CNY per million tokens, flat (``input`` and
    ``output``) or by the call's length (``tiers``, ascending, as the catalogue's
    ``price_tiers``; then the row's own prices are the first tier's and may be left out).
    It replaces the catalogue's price whole: catalogue tiers are not kept under it."""

    input: Optional[Decimal] = Field(default=None, ge=0)
    output: Optional[Decimal] = Field(default=None, ge=0)
    cached_input: Optional[Decimal] = Field(default=None, ge=0)
    cache_creation: Optional[Decimal] = Field(default=None, ge=0)
    thinking_output: Optional[Decimal] = Field(default=None, ge=0)
    explicit_cache_hit: Optional[Decimal] = Field(default=None, ge=0)
    tiers: List[PriceOverrideTier] = []

    @field_validator("tiers")
    @classmethod
    def _ascending_tiers(cls, value: List[PriceOverrideTier]) -> List[PriceOverrideTier]:
        _check_tiers(value, "tiers")
        return value

    @model_validator(mode="after")
    def _complete(self) -> PriceOverride:
        if not self.tiers:
            missing = [name for name in ("input", "output") if getattr(self, name) is None]
            if missing:
                raise ValueError(
                    f"{' and '.join(missing)} required (CNY per million tokens), or tiers"
                )
            return self
        first = self.tiers[0]
        for name in _TIER_PRICES:
            own, tiered = getattr(self, name), getattr(first, name)
            if own is not None and own != tiered:
                raise ValueError(
                    f"{name} = {own} differs from tiers[0].{name} = {tiered}: with tiers the "
                    f"row's own prices are its first tier's; leave {name} out"
                )
        return self

    def as_price(self) -> Price:
        """The row as the ledger's `Price`: its first tier's prices, with all its tiers. A
        flat row is one tier without bounds, so both forms go through `PriceTier.flat`."""
        if self.tiers:
            tiers = tuple(tier.as_price_tier() for tier in self.tiers)
            return replace(tiers[0].flat(), tiers=tiers)
        assert self.input is not None and self.output is not None  # checked above
        unbounded = PriceTier(
            None,
            None,
            self.input,
            self.output,
            self.cached_input,
            self.cache_creation,
            self.thinking_output,
            self.explicit_cache_hit,
        )
        return unbounded.flat()


Target = Union[str, List[str]]


class _UserConfig(_Strict):
    default_provider: Optional[str] = None
    providers: Dict[str, ProviderConfig] = {}
    models: Dict[str, Target] = {}
    policy: Policy = Policy()
    limits: Limits = Limits()
    prices: Dict[str, PriceOverride] = {}
    on_usage: Optional[str] = None  # "package.module:function", called with each UsageRecord

    @field_validator("models")
    @classmethod
    def _non_empty_targets(cls, value: Dict[str, Target]) -> Dict[str, Target]:
        for alias, target in value.items():
            if isinstance(target, list) and not target:
                raise ValueError(f"alias {alias!r} has an empty list of targets")
        return value


class Config:
    """The resolved configuration a client works from (immutable once built)."""

    def __init__(
        self,
        *,
        providers: dict[str, ProviderConfig],
        aliases: dict[str, list[str]],
        default_provider: Optional[str],
        policy: Policy,
        source: str,
        prices: Optional[dict[str, PriceOverride]] = None,
        on_usage: Optional[str] = None,
        limits: Optional[Limits] = None,
        configured_roots: frozenset[str] = frozenset(),
    ) -> None:
        self.providers = providers
        #: The providers whose ``base_url`` the user's config sets (`base_url_from_env`).
        self.configured_roots = configured_roots
        self.limits = limits or Limits()
        self.aliases = aliases
        self.default_provider = default_provider
        self.policy = policy
        self.source = source
        self.prices = prices or {}
        self.on_usage = on_usage

    def price(self, provider: str, model: str) -> Optional[Price]:
        """CNY per million tokens for a model: the config's override, else the catalogue's
        (with its length tiers, if it has any: `Price.for_call` picks a call's)."""
        override = self.prices.get(f"{provider}/{model}")
        if override is not None:
            return override.as_price()
        info = self.provider(provider).model(model)
        if info is None or info.input_price is None:
            return None
        output = info.output_price if info.output_price is not None else Decimal(0)
        return Price(
            info.input_price,
            output,
            info.cached_input_price,
            info.cache_creation_price,
            info.thinking_output_price,
            info.explicit_cache_hit_price,
            tuple(tier.as_price_tier() for tier in info.price_tiers),
        )

    def with_provider_settings(self, name: str, settings: Mapping[str, Any]) -> Config:
        """A copy in which provider ``name`` has ``settings`` (e.g. ``api``, ``region``)."""
        if not settings:
            return self
        spec = self.provider(name).model_copy(update=dict(settings))
        return Config(
            providers={**self.providers, name: spec},
            aliases=self.aliases,
            default_provider=self.default_provider,
            policy=self.policy,
            source=self.source,
            prices=self.prices,
            on_usage=self.on_usage,
            limits=self.limits,
            configured_roots=self.configured_roots,
        )

    def shown_as(self, source: str) -> Config:
        """A copy that names its source as ``source`` in the messages it gives (the
        gateway's, sent to its clients, name the file without the server's directories)."""
        shown = copy.copy(self)
        shown.source = source
        return shown

    def __repr__(self) -> str:
        return (
            f"Config(source={self.source!r}, providers={sorted(self.providers)}, "
            f"aliases={sorted(self.aliases)}, default_provider={self.default_provider!r})"
        )

    def provider(self, name: str) -> ProviderConfig:
        try:
            return self.providers[name]
        except KeyError:
            raise ConfigError(
                f"unknown provider {_shown(name)} (known: {', '.join(sorted(self.providers))})"
                + _did_you_mean(name, self.providers)
            ) from None

    def api_key(self, name: str) -> Optional[str]:
        """The provider's API key: configured, else from its environment variables."""
        return self.secret(name, "api_key")

    def secret(self, name: str, field: str = "api_key") -> Optional[str]:
        """A credential of a provider (``api_key``, ``secret_key``, ``iam_access_key`` ...):
        the configured value, else the first of its environment variables that is set."""
        provider = self.provider(name)
        value: Optional[SecretStr] = getattr(provider, field)
        if value is not None:
            return value.get_secret_value()
        for variable in getattr(provider, f"{field}_env"):
            if os.environ.get(variable):
                return os.environ[variable]
        return None

    def secret_source(self, name: str, field: str = "api_key") -> Optional[str]:
        """Where `secret` found the value: ``"config"``, the environment variable's name,
        or None when it found none (Qianfan tells key kinds apart by their source)."""
        provider = self.provider(name)
        if getattr(provider, field) is not None:
            return "config"
        for variable in getattr(provider, f"{field}_env"):
            if os.environ.get(variable):
                return variable
        return None

    def base_url(self, name: str) -> Optional[str]:
        """The API root the environment or the provider's table declares, if any."""
        return self.base_url_from_env(name) or self.provider(name).base_url

    def base_url_from_env(self, name: str) -> Optional[str]:
        """The API root the provider's environment variable sets (``ZHIPUAI_BASE_URL`` ...),
        unless the config gives the provider a ``base_url`` of its own: the config's root
        wins, as its ``api_key`` wins over the key's variable (else the config's key would
        be sent to a host the environment chose).

        Otherwise each adapter picks its root from the table: ``base_url``, else the
        ``endpoints`` entry for the configured ``api``, ``region`` and ``plan``.
        """
        provider = self.provider(name)
        if name in self.configured_roots:
            return None
        if provider.base_url_env and os.environ.get(provider.base_url_env):
            return os.environ[provider.base_url_env].rstrip("/")
        return None


# --------------------------------------------------------------------------- shipped tables


def _providers_dir() -> Path:
    """Where the shipped tables are: inside the wheel, or at the top of a source checkout."""
    packaged = Path(__file__).with_name("providers")
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "providers"


@cache
def builtin_providers() -> dict[str, ProviderConfig]:
    """Parse ``providers/*.toml`` once per process (never at import: imports stay cheap)."""
    tables = {}
    for path in sorted(_providers_dir().glob("*.toml")):
        raw = _read_toml(path)
        tables[path.stem] = _validate(ProviderConfig, raw, str(path), prefix="")
    if not tables:
        raise ConfigError(f"no provider tables found in {_providers_dir()}")
    return tables


# --------------------------------------------------------------------------- user config


def load_config(
    source: Union[str, os.PathLike[str], Mapping[str, Any], None] = None,
) -> Config:
    """Build a `Config` from a TOML file path, a mapping of the same schema, or defaults.

    With no argument: ``$LLM_BRIDGE_CONFIG`` if set, else ``./llm_bridge.toml`` if it
    exists, else the shipped tables with credentials from the providers' usual
    environment variables. The file loaded is named in one INFO log line.

    A file found in the working directory was not chosen by the caller (it may have come
    with a checked-out repository), so it may not name code to import: an ``on_usage``
    callable there is refused until the file is chosen explicitly (``config=`` or
    ``$LLM_BRIDGE_CONFIG``).

    A ``[gateway]`` table is skipped, so one file serves ``llm-bridge serve`` and its
    clients alike: the gateway's loader checks it (`llm_bridge.gateway.load_gateway_config`).
    """
    chosen = source is not None
    if source is None:
        env_path = os.environ.get(CONFIG_ENV)
        if env_path:
            source, chosen = env_path, True
        elif Path(DEFAULT_CONFIG_FILE).is_file():
            source = DEFAULT_CONFIG_FILE
        else:
            return _build({}, "defaults")
    if isinstance(source, Mapping):
        return _build(_interpolate(_without_gateway(source), "<mapping>", ""), "<mapping>")
    if not isinstance(source, (str, os.PathLike)):
        raise ConfigError(
            f"config: expected a path to a TOML file (str or os.PathLike) or a mapping of the "
            f"same schema (a client's config= also takes a Config), got {type(source).__name__}"
        )
    return load_file(Path(source), chosen=chosen)


def load_file(path: Path, *, chosen: bool) -> Config:
    """The `Config` of the TOML file at ``path`` (its ``[gateway]`` table skipped); one
    not ``chosen`` (found in the working directory) may not name code to import."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    raw = _interpolate(_without_gateway(_read_toml(path)), str(path), "")
    if not chosen and raw.get("on_usage") is not None:
        raise ConfigError(
            f"{path}: on_usage: this config file was found in the working directory, not "
            f"chosen, and llm-bridge imports code only from a config you chose: pass "
            f"config={str(path)!r} to the client or set {CONFIG_ENV}={path} (or remove "
            f"on_usage and pass on_usage= in code)"
        )
    _log.info("llm-bridge: config loaded from %s%s", path, "" if chosen else " (working directory)")
    return _build(raw, str(path))


def _without_gateway(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The config without the gateway's table, left uninterpolated: a variable only the
    gateway's host sets (a Redis password) must not be needed by a client of the file."""
    return {key: value for key, value in raw.items() if key != "gateway"}


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror}") from None
    try:
        return tomllib.loads(_utf8_text(path, data))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _utf8_text(path: Path, data: bytes) -> str:
    """The file's text. TOML is UTF-8 by definition, so a file an editor saved as GBK (a
    Chinese comment on Windows) is refused naming the line of its first bad byte; a UTF-8
    byte-order mark (Notepad writes one) is tolerated, as TOML parsers commonly do."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{path}: line {line}: byte 0x{data[exc.start]:02x} is not UTF-8; TOML files must "
            f"be UTF-8: save the file as UTF-8 (not GBK or another local encoding)"
        ) from None


#: ``${NAME}`` or ``${NAME:-default}`` (the default when NAME is unset or empty).
_VAR = re.compile(r"\$\{(" + _ENV_NAME + r")(?::-([^${}]*))?\}")


def _interpolate(value: Any, source: str, path: str) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string with the environment's
    value (or the default), naming the key of any reference that cannot be resolved."""
    if isinstance(value, dict):
        return {k: _interpolate(v, source, f"{path}.{k}" if path else k) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, source, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        return _interpolate_string(value, source, path)
    return value


def _interpolate_string(value: str, source: str, path: str) -> str:
    """One string's references resolved. Errors: an unset variable without a default; any
    other ``${...}`` form (nested, unterminated, another shell operator); and a value that
    comes out empty from a variable that is set but empty (``KEY=`` in a compose file, a
    CI secret not granted). No key, URL or name is empty on purpose, and the error such a
    value causes later names the wrong place ("set ZHIPUAI_API_KEY"), so this one names the
    variable; ``${VAR:-}`` says an empty value is meant, and is left alone."""

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if default is not None and not found:
            return default
        if found is None:
            raise ConfigError(
                f"{source}: {path}: environment variable {name} is not set "
                f"(referenced as ${{{name}}}; ${{{name}:-default}} gives a default)"
            )
        return found

    result = _VAR.sub(substitute, value)
    leftover = _VAR.sub("", value)
    if "${" in leftover:
        raise ConfigError(
            f"{source}: {path}: unsupported ${{...}} form; write ${{NAME}} or "
            f"${{NAME:-default}} (NAME: letters, digits, underscores)"
        )
    bare = [match.group(1) for match in _VAR.finditer(value) if match.group(2) is None]
    if not result and bare:
        raise ConfigError(
            f"{source}: {path}: ${{{bare[0]}}} is set but empty "
            f"(write ${{{bare[0]}:-}} if an empty value is meant)"
        )
    return result


def _validate(model: type[BaseModel], raw: Any, source: str, *, prefix: str) -> Any:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        # where -> (what was expected, what was got): the branches of a Union fail at one
        # place (``fast = 3``: neither a string nor a list), so they share one line.
        problems: dict[str, tuple[list[str], str]] = {}
        for error in exc.errors():
            loc = _data_path(raw, error)
            where = ".".join(filter(None, (prefix, *loc)))
            text, got = _describe(model, error, loc, where)
            problems.setdefault(where, ([], got))[0].append(text)
        raise ConfigError(
            "\n".join(
                f"{source}: {where}: {' or '.join(texts)}{got}"
                for where, (texts, got) in problems.items()
            )
        ) from None


def _data_path(raw: Any, error: Any) -> tuple[str, ...]:
    """The key path of an error in the data: pydantic's location also names the branch of a
    Union it tried (``models.fast.str``), a part the user never wrote. The missing key of a
    "missing" error is not in the data either, and is kept."""
    path, current = [], raw
    for part in error["loc"]:
        if _holds(current, part):
            current = current[part]
        elif error["type"] != "missing":
            continue
        path.append(str(part))
    return tuple(path)


def _holds(data: Any, part: Union[str, int]) -> bool:
    if isinstance(data, list):
        return isinstance(part, int) and 0 <= part < len(data)
    return isinstance(data, Mapping) and part in data


def _describe(
    model: type[BaseModel], error: Any, loc: tuple[str, ...], where: str
) -> tuple[str, str]:
    """What an error says was expected, and the ``(got ...)`` to add (empty when the value
    is absent, may be a key, or the message already shows it: a validator's own)."""
    if error["type"] == "extra_forbidden":
        known = _keys_at(model, loc[:-1])
        hint = _did_you_mean(loc[-1], known) or f"; expected one of: {', '.join(known)}"
        # The value is not repeated: a misspelt api_key must not print the key.
        return f"unknown key{hint}", ""
    if error["type"] == "value_error":
        return error["msg"].removeprefix("Value error, "), ""
    if error["type"] == "missing":
        return error["msg"], ""
    return error["msg"], f" (got {_safe_input(where, error)})"


#: Words in a key path whose values are not shown: credentials, and the ``*_env`` names
#: where a key pasted into the wrong field ends up.
_SENSITIVE = ("key", "secret", "token", "header", "auth", "password", "credential", "_env")


def _safe_input(where: str, error: Any) -> str:
    """The offending value for the message, unless it may be a credential (then its type)."""
    value = error.get("input")
    if any(word in where.lower() for word in _SENSITIVE):
        return f"a value of type {type(value).__name__}"
    return _shown(value)


def _shown(value: object) -> str:
    """A wrong value as errors echo it: whole when short, else a string's first characters
    (a key pasted into the wrong field is not printed whole) or a container's type."""
    text = repr(value)
    if len(text) <= _ECHO_LIMIT:
        return text
    if isinstance(value, str):
        return f"{value[:8] + '…'!r} ({len(value)} characters)"
    return f"a value of type {type(value).__name__}"


def _keys_at(model: type[BaseModel], path: tuple[str, ...]) -> list[str]:
    """The keys allowed at ``path`` inside ``model`` (for "did you mean" on unknown keys)."""
    current: Any = model
    for part in path:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(part)
            current = field.annotation if field is not None else None
        else:  # a Dict[str, X] level (``part`` a user-chosen name) or a List[X] (an index)
            current = _item_type(current)
        current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in getattr(annotation, "__args__", ()) if a is not type(None)]
    if getattr(annotation, "__origin__", None) is Union and len(args) == 1:
        return args[0]
    return annotation


def _item_type(annotation: Any) -> Any:
    """The type of a ``Dict[str, X]``'s values or a ``List[X]``'s items (else None)."""
    args, origin = getattr(annotation, "__args__", ()), getattr(annotation, "__origin__", None)
    if origin is dict and len(args) == 2:
        return args[1]
    return args[0] if origin is list and len(args) == 1 else None


def _build(raw: dict[str, Any], source: str) -> Config:
    user = _validate(_UserConfig, raw, source, prefix="")
    builtins = builtin_providers()
    providers = dict(builtins)
    for name, block in user.providers.items():
        if name in builtins:
            providers[name] = _merge(builtins[name], block, source, name)
        else:
            _check_new_provider(name, block, source, builtins)
            providers[name] = block
    for name, provider in providers.items():
        _check_endpoint_choice(name, provider, source)
        if provider.auth_choices and provider.auth not in provider.auth_choices:
            raise ConfigError(
                f"{source}: providers.{name}.auth: expected one of {provider.auth_choices}, "
                f"got {_shown(provider.auth)}"
            )
    default = user.default_provider
    if default is not None and default not in providers:
        raise ConfigError(
            f"{source}: default_provider: unknown provider {_shown(default)} "
            f"(known: {', '.join(sorted(providers))})" + _did_you_mean(default, providers)
        )
    aliases = {
        alias: target if isinstance(target, list) else [target]
        for alias, target in user.models.items()
    }
    _check_aliases(aliases, providers, default, source)
    for key in user.prices:
        if key.split("/", 1)[0] not in providers or "/" not in key:
            raise ConfigError(
                f'{source}: prices.{key}: expected "provider/model" with a known provider '
                f"(known: {', '.join(sorted(providers))})"
            )
    return Config(
        providers=providers,
        aliases=aliases,
        default_provider=default,
        policy=user.policy,
        source=source,
        prices=dict(user.prices),
        on_usage=user.on_usage,
        limits=user.limits,
        configured_roots=frozenset(
            name for name, block in user.providers.items() if block.base_url is not None
        ),
    )


def _merge(
    base: ProviderConfig, override: ProviderConfig, source: str, name: str
) -> ProviderConfig:
    """The user's block wins key by key; table entries (a model, an error code, a parameter
    range) merge field by field, so overriding a price keeps the model's context window.
    A model's ``price_tiers`` given by the user replace the catalogue's, and with them the
    model's own prices the user left out (they were the old first tier's). A merge that
    contradicts itself (a flat ``input_price`` on a model the catalogue tiers) is reported
    naming the user's file and key."""
    merged = base.model_dump()
    for key in override.model_fields_set:
        value = getattr(override, key)
        if isinstance(value, dict):
            table = dict(merged.get(key) or {})
            for entry_name, entry in value.items():
                if isinstance(entry, BaseModel):
                    given = entry.model_dump(include=entry.model_fields_set)
                    entry = {**_kept_from_base(table.get(entry_name) or {}, given), **given}
                table[entry_name] = entry
            merged[key] = table
        else:
            merged[key] = value
    return _validate(ProviderConfig, merged, source, prefix=f"providers.{name}")


def _kept_from_base(base: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """What a catalogue entry keeps under a user's entry: everything, except the prices
    derived from tiers the user's own ``price_tiers`` replace (``price_tiers = []`` keeps
    them: the model is then priced flat at the old first tier's prices, or the user's)."""
    if not given.get("price_tiers"):
        return base
    derived = {f"{price}_price" for price in _TIER_PRICES}
    return {key: value for key, value in base.items() if key not in derived}


def _check_endpoint_choice(name: str, provider: ProviderConfig, source: str) -> None:
    """``api``, ``region`` and ``plan`` must name an endpoint the table lists."""
    if not provider.endpoints:
        return
    for key in ("api", "region", "plan"):
        value = getattr(provider, key)
        choices = sorted({getattr(endpoint, key) for endpoint in provider.endpoints})
        if value is not None and value not in choices:
            raise ConfigError(
                f"{source}: providers.{name}.{key}: expected one of {choices}, "
                f"got {_shown(value)}" + _did_you_mean(value, choices)
            )
    if provider.endpoint() is None:
        listed = "; ".join(
            f"api={e.api!r} region={e.region!r} plan={e.plan!r}" for e in provider.endpoints
        )
        raise ConfigError(
            f"{source}: providers.{name}: no endpoint for api={provider.api!r}, "
            f"region={provider.region!r}, plan={provider.plan!r} (listed: {listed})"
        )


def _check_new_provider(
    name: str, block: ProviderConfig, source: str, builtins: Mapping[str, ProviderConfig]
) -> None:
    missing = [key for key in ("protocol", "base_url") if getattr(block, key) is None]
    if block.endpoints and "base_url" in missing:
        missing.remove("base_url")
    if missing:
        raise ConfigError(
            f"{source}: providers.{name}: unknown provider {name!r}"
            + _did_you_mean(name, builtins)
            + f". Built-in providers are {', '.join(sorted(builtins))}; to define a new one, "
            f'set {" and ".join(missing)} (e.g. protocol = "openai_compat")'
        )


def _check_aliases(
    aliases: dict[str, list[str]],
    providers: Mapping[str, ProviderConfig],
    default: Optional[str],
    source: str,
) -> None:
    def visit(alias: str, trail: list[str]) -> None:
        if alias in trail:
            cycle = " -> ".join([*trail[trail.index(alias) :], alias])
            raise ConfigError(f"{source}: models.{trail[0]}: alias cycle: {cycle}")
        for target in aliases[alias]:
            if target in aliases:
                visit(target, [*trail, alias])
            else:
                _check_target(alias if not trail else trail[0], target, providers, default, source)

    for alias in aliases:
        visit(alias, [])


def _check_target(
    alias: str,
    target: str,
    providers: Mapping[str, ProviderConfig],
    default: Optional[str],
    source: str,
) -> None:
    if "/" in target:
        provider_name, model = target.split("/", 1)
        if provider_name in providers:
            if not model:
                raise ConfigError(f"{source}: models.{alias}: {_shown(target)} names no model")
            return
    if any(p.canonical_model(target) for p in providers.values()) or default is not None:
        return
    known = [f"{p}/{m}" for p, cfg in providers.items() for m in cfg.models]
    raise ConfigError(
        f"{source}: models.{alias}: {_shown(target)} points nowhere: it is not an alias, not "
        f"in any provider's catalogue, and has no 'provider/' prefix" + _did_you_mean(target, known)
    )


def _did_you_mean(name: str, candidates: Any, cutoff: float = 0.6) -> str:
    """ "; did you mean ..." with up to three of ``candidates`` closest to a misspelt
    ``name``, case aside (an error that only says "not found" leaves the caller guessing
    at the spelling); "" when none is close."""
    import difflib  # only an error message needs it

    lowered = {str(candidate).lower(): candidate for candidate in candidates}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=cutoff)
    return f"; did you mean {', '.join(repr(lowered[c]) for c in close)}?" if close else ""
