"""What every adapter is: pure translation between OpenAI's wire JSON and a provider's.

An adapter never opens a socket, sleeps, reads a clock or draws a random id on its own:
the clock and the id source it needs are passed in (`Adapter.create`), as are the
credentials' (which sign with their own clock). It turns OpenAI parameters into an
`HTTPRequest`, and a provider's answer, read as plain values (a `Reply`: status, headers,
body), back into OpenAI-shaped dicts; what is wrong it raises as a `Fault` (`Refused`,
`ProviderFault`, `MalformedBody`), which the I/O layer (`llm_bridge._engine`) raises as
the openai-style exception with the HTTP exchange attached. No ``httpx`` object reaches
this package (a test holds it to that), so the same adapter serves the
``llm_bridge.OpenAI`` facade, the httpx transport for the real ``openai`` client and the
gateway, sync and async alike, and is tested with plain dicts and bytes.
"""

from __future__ import annotations

import copy
import functools
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Union
from urllib.parse import urlsplit

from pydantic_core import from_json

from .._auth import BearerKey, Credentials, scrub
from .._config import ErrorRule, ModelInfo, Policy, ProviderConfig, WebSearchRule
from .._errors import (
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    exception_for_status,
    status_message,
    status_of,
)
from .._sse import SSEEvent
from .._structured import FenceStripper
from .._wire import Fault, MalformedBody, ProviderFault, Refused, Reply
from ._params import ParamContext, as_legacy_function_call, check_input_length, token_ids
from ._stop import StopScanner

if TYPE_CHECKING:
    from .._shapes.chat.chat_completion_chunk import ChatCompletionChunk

__all__ = [
    "Adapter",
    "CallContext",
    "Credentials",
    "Fault",
    "HTTPRequest",
    "MalformedBody",
    "ProviderFault",
    "Refused",
    "Reply",
    "StreamParser",
    "Translated",
    "embedding_usage",
    "with_web_search",
    "without_openai_only_fields",
]

JSONDict = dict[str, Any]


@dataclass
class HTTPRequest:
    """A request to send, fully described; the I/O layer adds client-wide headers.

    ``emulated_stop`` holds the caller's stop sequences beyond what the provider takes
    (not sent): the engine cuts the answer at them (`llm_bridge.adapters._stop`)."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    params: dict[str, str] = field(default_factory=dict)
    emulated_stop: list[str] = field(default_factory=list)


@dataclass
class CallContext:
    """Facts about one call that the response side needs (it sees no parameters).

    The engine makes it and alone writes to it: ``emulated_stop`` is what the request
    builder returned in `HTTPRequest.emulated_stop`."""

    provider: str
    model: str  # the upstream model name actually sent
    requested_model: str  # what the caller wrote, before aliases
    stream: bool = False
    include_usage: bool = False
    emulated_stop: list[str] = field(default_factory=list)
    encoding_format: Optional[str] = None
    info: Optional[ModelInfo] = None
    extra_body: dict[str, Any] = field(default_factory=dict)
    #: ``parallel_tool_calls=False``: at most one tool call per choice reaches the caller
    #: (GLM and ERNIE take no such switch; where a provider honours it, nothing is cut).
    one_tool_call: bool = False
    #: A streamed answer to an emulated ``json_schema`` (`llm_bridge._structured`): code
    #: fences around it are removed as it streams.
    strip_fences: bool = False
    #: How many choices the provider is asked for in one request (``n`` sent natively).
    choices: int = 1
    #: The call used openai's deprecated ``functions``: its answer's tool call is given
    #: back as ``function_call`` (`as_legacy_function_call`).
    legacy_functions: bool = False

    def __post_init__(self) -> None:
        # A str subclass (an enum member naming the model, say) as the plain string it
        # holds: responses carry this name, as validation would make it (a plain str).
        self.model = str.__str__(self.model)


#: Exceptions a parser hits on a body of an unexpected shape (pydantic's included).
MALFORMED = (TypeError, KeyError, AttributeError, IndexError, ValueError)

#: The parsing entry points of adapters, guarded in every subclass (see `Adapter`).
_GUARDED = {
    "chat_response": "a chat response",
    "embeddings_response": "an embeddings response",
    "find_error": "an error response",
}


def _guard(method: Callable[..., Any], what: str) -> Callable[..., Any]:
    """``method(reply, body, ...)`` raising only faults: anything a malformed body makes
    it trip over becomes a `MalformedBody` carrying the body."""

    @functools.wraps(method)
    def guarded(self: Any, reply: Reply, body: Any, *args: Any) -> Any:
        try:
            return method(self, reply, body, *args)
        except Fault:
            raise
        except MALFORMED as exc:
            raise self.invalid_body(
                body, f"{what} of an unexpected shape ({type(exc).__name__}: {exc})"
            ) from exc

    return guarded


def _as_strings(method: Callable[..., Any]) -> Callable[..., Any]:
    """``error_fields`` returning strings (or None) whatever types the body held."""

    @functools.wraps(method)
    def normalised(self: Any, body: Any) -> tuple[Optional[str], Optional[str]]:
        try:
            code, message = method(self, body)
        except MALFORMED:
            return None, None
        return (None if code is None else str(code)), (None if message is None else str(message))

    return normalised


def _endpoint_url(spec: ProviderConfig, api: Optional[str]) -> Optional[str]:
    """The root the table lists for ``api`` in the configured region and plan."""
    endpoint = spec.endpoint(api)
    return endpoint.url if endpoint is not None else None


#: What `StreamParser.translate` makes of one stream event, the one shape the stream
#: layer takes: the chunk for the caller (None when the event holds none), the usage
#: figures the event carried (a non-empty dict in the provider's names, or None), and the
#: fault of a chunk the OpenAI types cannot hold (else None), which the stream layer
#: raises once it has kept those figures. A plain tuple: a named one costs several times
#: as much to make, once per event.
Translated = tuple[Optional["ChatCompletionChunk"], Optional[JSONDict], Optional[MalformedBody]]

#: The fields of a chunk every chunk of a stream shares (see `StreamParser.head`).
_HEAD = ("id", "created", "model", "object")


class StreamParser:
    """Turns a provider's stream events into typed OpenAI chunks; one per stream.

    `translate` takes one event, as the SSE decoder gave it, and returns what it makes of
    it (`Translated`), or None when the event holds nothing at all; whatever an event
    holds, it raises only faults (`ProviderFault`, `MalformedBody`). A subclass writes
    `chunk`, the translation of one event's JSON object into an OpenAI chunk dict, which
    this class finishes the general way (`_general`): usage taken out, emulated stop
    sequences cut, ``provider`` set, the dict validated into `ChatCompletionChunk`.

    What a stream costs over raw httpx is mostly Python work per event, and that
    validation was the largest part of it: so a parser may take a short cut for its usual
    event, making the typed chunk itself (`typed`) exactly as the general way would make
    it. `OpenAICompatStreamParser` validates an event that already is an OpenAI chunk
    straight from its bytes; DashScope's and Qianfan v1's make the chunk of an event that
    is one choice's next piece of text directly (`_typed_chunks`). Whether a parser takes
    its short cuts is decided when it is made (`typed_chunks`); tests/test_typed_chunks.py
    holds every short cut equal to the general way.
    """

    adapter: Adapter
    #: The stream's answer (status, headers; no body).
    reply: Reply
    #: The call the stream answers (its model, provider and emulated stop sequences).
    call: CallContext
    #: True once the provider signalled the end of the stream (OpenAI's ``[DONE]``, or
    #: its own last event).
    done: bool
    #: True once the answer is over though the provider's end of stream may not follow:
    #: a choice carried a finish word (OpenAI-compatible wires, where ``[DONE]`` comes
    #: after), or an emulated stop sequence cut the text. The stream layer accepts a
    #: stream that ends then, as it does one that is `done`.
    finished: bool
    #: What every chunk of the stream shares (``id``, ``created``, ``model``, ``object``
    #: as the first event translated gave them, a usage-only one included, and
    #: ``provider``), None until then: the stream layer makes the ``include_usage`` chunk
    #: from it and names the request by its ``id``.
    head: Optional[JSONDict]
    #: Whether this parser takes its short cuts (see the class docstring). Decided when it
    #: is made: off when asked (tests compare the two ways), and when the call has
    #: emulated stop sequences, which are cut out of chunk dicts. A parser may give its
    #: short cut up on its own (`OpenAICompatStreamParser.MAX_REFUSALS`); nothing else
    #: changes it.
    typed_chunks: bool
    #: The SSE event names `chunk` tells apart: it sees any other event with no name (and
    #: the decoder hands such events over as their data bytes: DashScope names every one).
    event_names: ClassVar[tuple[str, ...]] = ("error",)

    def __init__(
        self, adapter: Adapter, reply: Reply, call: CallContext, *, typed_chunks: bool = True
    ) -> None:
        from ._typed_chunks import validate_chunk  # the chunk types load with the first stream

        self.adapter = adapter
        self.reply = reply
        self.call = call
        self.done = False
        self.finished = False
        self.head = None
        # choice index -> its scanner for the emulated stop sequences (each choice's text
        # is its own: one choice's stop word ends that choice only)
        self._stops: Optional[dict[Any, StopScanner]] = {} if call.emulated_stop else None
        self._first_calls: dict[Any, Any] = {}  # choice index -> its first tool call's index
        self._fences: Optional[dict[Any, FenceStripper]] = {} if call.strip_fences else None
        self.typed_chunks = typed_chunks and self._stops is None and self._fences is None
        self._validate = validate_chunk

    @property
    def stopped(self) -> bool:
        """Whether a stop sequence applied here (one the provider was not sent) has ended
        the text of every choice: nothing the provider sends after it reaches the caller."""
        stops = self._stops
        if not stops or len(stops) < self.call.choices:
            return False
        return all(scanner.stopped for scanner in stops.values())

    def chunk(self, data: JSONDict, event: Optional[str]) -> Union[JSONDict, Translated]:
        """One event's JSON object as an OpenAI chunk dict, or a short cut's typed chunk
        (`typed`); ``event`` is the SSE event name, if the event had one. Raises the
        provider's error for an error event."""
        raise NotImplementedError  # pragma: no cover

    def translate(self, event: Union[bytes, SSEEvent]) -> Optional[Translated]:
        """What one event (its data bytes, or an `SSEEvent`) gives the caller, or None.

        Empty events give None, and so does ``data: [DONE]`` (OpenAI's end sentinel),
        which sets `done`; anything that is not a JSON object raises. The chunk, if any,
        is validated, has ``provider`` set and no ``usage`` (see `Translated`)."""
        if isinstance(event, bytes):  # (nearly always: a plain or an unnamed event)
            raw, name = event, None
        else:
            raw, name = event.raw, event.event
            if name not in self.event_names:
                name = None
        try:
            data = from_json(raw)
        except ValueError:
            data = None
        try:
            if type(data) is not dict:
                if raw == b"[DONE]" or raw == "[DONE]":
                    self.done = True
                    return None
                data = self.adapter.event_json(raw)
                if data is None:
                    return None
            chunk = self.chunk(data, name)
        except Fault:
            raise
        except MALFORMED as exc:
            text = raw.decode("utf-8", errors="replace") if isinstance(raw, bytes) else raw
            raise self.adapter.invalid_body(
                text, f"a stream event of an unexpected shape ({type(exc).__name__}: {exc})"
            ) from exc
        if isinstance(chunk, dict):
            return self._general(chunk)
        return chunk

    def typed(self, chunk: ChatCompletionChunk, usage: Any) -> Translated:
        """A short cut's chunk, and the usage figures its event carried (``usage``, as the
        event held it), as `translate` returns them. The chunk must be exactly what the
        general way would have made of the event: validated, ``provider`` set, no
        ``usage``, at least one choice, and no tool calls."""
        if self.head is None:
            self._take_head(chunk)
        return chunk, (usage if usage and usage.__class__ is dict else None), None

    def _take_head(self, chunk: ChatCompletionChunk) -> None:
        """`head`, from the stream's first chunk when a short cut made it."""
        self.head = {key: getattr(chunk, key) for key in _HEAD}
        self.head["provider"] = self.call.provider

    def _general(self, chunk: JSONDict) -> Translated:
        """The general way's end: a chunk dict from `chunk` as its typed chunk (none for a
        dict without choices, whose usage is kept all the same), its usage taken out."""
        usage = chunk.pop("usage", None)
        if not usage or usage.__class__ is not dict:
            usage = None
        if self.head is None:
            self.head = {key: chunk[key] for key in _HEAD if key in chunk}
            self.head["provider"] = self.call.provider
        if not chunk.get("choices") or (self._stops is not None and not self._cut_at_stop(chunk)):
            return None, usage, None
        if self.call.one_tool_call:
            self._keep_one_call(chunk)
        if self.call.legacy_functions:
            for choice in chunk["choices"]:
                as_legacy_function_call(choice, "delta")
        if self._fences is not None:
            self._strip_fences(chunk, self._fences)
        chunk["provider"] = self.call.provider
        try:
            return self._validate(chunk), usage, None
        except ValueError as exc:  # pydantic's ValidationError: OpenAI's type rejects it
            return None, usage, self.invalid_chunk(chunk, exc)

    def _keep_one_call(self, chunk: JSONDict) -> None:
        """Drop the pieces of every tool call but each choice's first (the first call index
        a choice streams), for ``parallel_tool_calls=False``."""
        for choice in chunk["choices"]:
            delta = choice.get("delta")
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if not isinstance(calls, list) or not calls:
                continue
            first = self._first_calls.setdefault(choice.get("index", 0), calls[0].get("index"))
            delta["tool_calls"] = [c for c in calls if c.get("index") == first] or None

    @staticmethod
    def _strip_fences(chunk: JSONDict, fences: dict[Any, FenceStripper]) -> None:
        """Each choice's text with the code fence around the answer removed (what may still
        be part of one is held until its next piece, or its finish)."""
        for choice in chunk["choices"]:
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                delta = choice["delta"] = {}
            stripper = fences.setdefault(choice.get("index", 0), FenceStripper())
            content = delta.get("content")
            text = stripper.feed(content) if isinstance(content, str) else ""
            if choice.get("finish_reason") is not None:
                text += stripper.end()
            if isinstance(content, str) or text:
                delta["content"] = text

    def invalid_chunk(self, chunk: JSONDict, reason: Exception) -> MalformedBody:
        """The fault for a chunk OpenAI's type cannot hold."""
        return self.adapter.invalid_body(
            chunk, f"a stream chunk the OpenAI types cannot hold ({reason})"
        )

    def _cut_at_stop(self, chunk: JSONDict) -> bool:
        """Cut each choice's content at an emulated stop sequence, and leave out the
        choices whose text stopped at an earlier one; False when no choice is left."""
        stops = self._stops
        assert stops is not None
        kept = []
        for choice in chunk["choices"]:
            index = choice.get("index", 0)
            stop = stops.get(index)
            if stop is None:
                stop = stops[index] = StopScanner(self.call.emulated_stop)
            if stop.stopped:
                continue
            kept.append(choice)
            delta = choice.get("delta")
            if not delta:
                delta = choice["delta"] = {}  # (attached: held text may be released into it)
            if isinstance(delta.get("content"), str):
                delta["content"] = stop.feed(delta["content"])
            if stop.stopped:
                choice["finish_reason"] = "stop"
            elif choice.get("finish_reason") is not None:
                held = stop.flush()
                content = delta.get("content")
                if held and (content is None or isinstance(content, str)):
                    delta["content"] = (content or "") + held  # (other content fails validation)
        chunk["choices"] = kept
        if self.stopped:
            self.finished = True
        return bool(kept)

    def usage_of(self, usage: JSONDict) -> Optional[JSONDict]:
        """Usage figures as an event carried them (`Translated`), in OpenAI's names. The
        stream layer calls this only for the figures it keeps (the last), not for every
        event that repeats them."""
        return usage


class Adapter:
    """Base of every protocol adapter. Subclasses translate; this class keeps the shared parts.

    Whatever a provider sends, parsing raises only faults: each subclass's
    ``chat_response``, ``embeddings_response`` and ``find_error`` are wrapped (and stream
    parsers' `StreamParser.translate` guards itself) so that a body of an unexpected shape
    becomes a `MalformedBody`, and ``error_fields`` always yields strings. Request
    builders raise `Refused` for what the provider cannot take.

    ``clock`` (Unix time) dates answers that carry no date of their own, and ``new_id``
    (a fresh random hex string) names what carries no id; the engine passes the real ones.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, what in _GUARDED.items():
            if name in cls.__dict__:
                setattr(cls, name, _guard(cls.__dict__[name], what))
        if "error_fields" in cls.__dict__:
            cls.error_fields = _as_strings(cls.__dict__["error_fields"])  # type: ignore[method-assign]

    protocol: ClassVar[str]
    #: The API flavour, where a provider has several (token counting differs between them).
    api: ClassVar[Optional[str]] = None
    #: Whether the API lists its models at ``GET {root}/models`` (`llm-bridge models
    #: --remote`, `doctor`'s free key check); OpenAI-compatible APIs do.
    lists_models: ClassVar[bool] = False
    #: False when the provider returns one choice per request: ``n > 1`` is then served by
    #: sending ``n`` requests and merging their choices (non-stream calls).
    native_n: ClassVar[bool] = True
    #: Whether the provider's embeddings take ``input`` as token ids, as OpenAI's do; the
    #: Chinese providers take text only (see `embedding_input`).
    takes_token_ids: ClassVar[bool] = False
    #: OpenAI content part types (``messages[].content[].type``) that no model of the
    #: provider takes: refused before sending by `check_parts`, naming the part and the
    #: provider, rather than answered by a 400 in the provider's words (or ignored).
    refused_parts: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        name: str,
        spec: ProviderConfig,
        *,
        base_url: str,
        credentials: Credentials,
        policy: Policy,
        warn: Callable[[str, str], None],
        clock: Callable[[], float],
        new_id: Callable[[], str],
    ) -> None:
        self.name = name
        self.spec = spec
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.policy = policy
        self._warn = warn
        self.clock = clock
        self.new_id = new_id

    @classmethod
    def create(
        cls,
        name: str,
        spec: ProviderConfig,
        *,
        keys: Mapping[str, Optional[str]],
        base_url: Optional[str],
        policy: Policy,
        warn: Callable[[str, str], None],
        clock: Callable[[], float],
        new_id: Callable[[], str],
    ) -> Adapter:
        """The adapter for a provider, with credentials made from ``keys``.

        ``base_url`` is an explicit API root (argument or environment); None means the
        one `variant` picks from the table. ``warn(param, message)`` reports a parameter
        the provider cannot honour (policy ``warn``); ``clock`` and ``new_id`` are the
        time and the ids answers lacking their own get (see the class docstring).
        """
        adapter_cls, root = cls.variant(spec, keys, base_url)
        if not root:
            raise ConfigError(f"provider {name!r} has no base_url: set one in the config")
        _warn_plain_http(name, root)
        credentials = adapter_cls.make_credentials(name, spec, keys)
        return adapter_cls(
            name,
            spec,
            base_url=root,
            credentials=credentials,
            policy=policy,
            warn=warn,
            clock=clock,
            new_id=new_id,
        )

    @classmethod
    def variant(
        cls, spec: ProviderConfig, keys: Mapping[str, Optional[str]], base_url: Optional[str]
    ) -> tuple[type[Adapter], Optional[str]]:
        """Which adapter class and API root serve this provider. A protocol with several
        APIs (Qianfan v1/v2, DashScope native/compatible) picks by credentials or config."""
        return cls, base_url or spec.base_url or _endpoint_url(spec, None)

    @classmethod
    def make_credentials(
        cls, name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]]
    ) -> Credentials:
        """How this protocol authenticates (a bearer key unless overridden)."""
        return BearerKey(require_key(name, spec, keys, "api_key"))

    # ------------------------------------------------------------------ parameters

    def params(self, params: JSONDict, url: str) -> ParamContext:
        """A view of the caller's parameters that applies the unsupported-parameter policy."""
        return ParamContext(
            params,
            provider=self.name,
            url=url,
            policy=self.policy.unsupported_params,
            rules=self.spec.params,
            warn=lambda param, message: self._warn(param, message),
        )

    def merge_extra_body(self, body: JSONDict, extra: Mapping[str, Any]) -> JSONDict:
        """``extra_body`` merged into the provider's body (top level unless overridden)."""
        return {**body, **extra}

    def web_search(self, ctx: ParamContext, call: CallContext) -> Optional[WebSearchRule]:
        """The provider's ``[web_search]`` rule when the call asks for a web search
        (``web_search_options``) and the model can search, else None. Where a search was
        asked for and cannot run (the catalogue lists the model without the ``web_search``
        capability, or the config turned the provider's search off) the policy applies.
        ``search_context_size`` is a hint with no provider equivalent: not translated."""
        rule = self.spec.web_search
        options = ctx.params.get("web_search_options")
        if rule is None or options is None:
            return None
        if not rule.enabled:
            ctx.unsupported(
                "web_search_options",
                "its web search is turned off in the config (web_search.enabled = false)",
                instead="no search was sent",
            )
            return None
        if call.info is not None and not call.info.supports("web_search"):
            ctx.unsupported(
                "web_search_options", f"{call.model} has no web search", instead="none was sent"
            )
            return None
        if isinstance(options, Mapping) and options.get("user_location"):
            ctx.unsupported(
                "web_search_options.user_location",
                "its web search takes no user location",
                instead="it searched without one",
            )
        return rule

    def must_stream(self, params: JSONDict, call: CallContext) -> bool:
        """True when the model refuses non-stream calls (the engine then streams and
        aggregates); from the catalogue's ``stream_only``."""
        return bool(call.info is not None and call.info.stream_only)

    def native_n_for(
        self, params: JSONDict, info: Optional[ModelInfo], extra_body: Mapping[str, Any]
    ) -> bool:
        """Whether one request answers this call's ``n > 1`` (``info``: the model's entry,
        None when uncatalogued; ``extra_body``: the caller's, sent with it); False has a
        non-stream call sent as ``n`` one-choice requests
        (`llm_bridge._fan_out.chat_copies`). `native_n` for every call, unless a provider
        serves ``n`` only for some calls (DashScope: not with tools, not while thinking)."""
        return self.native_n

    # ------------------------------------------------------------------ chat

    def chat_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        raise NotImplementedError

    def check_parts(self, ctx: ParamContext) -> None:
        """Refuse the first content part whose type is one of `refused_parts`."""
        if not self.refused_parts:
            return
        for index, message in enumerate(ctx.params.get("messages") or []):
            content = message.get("content") if isinstance(message, dict) else None
            for position, part in enumerate(content if isinstance(content, list) else []):
                kind = part.get("type") if isinstance(part, dict) else None
                if kind in self.refused_parts:
                    raise ctx.error(
                        f"messages[{index}].content[{position}] is a part of type {kind!r}, "
                        f"which {self.name} cannot take; send text (or an image_url part to "
                        f"a vision model) instead",
                        param=f"messages[{index}].content[{position}].type",
                    )

    def chat_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        raise NotImplementedError

    def stream_parser(self, reply: Reply, call: CallContext) -> StreamParser:
        raise NotImplementedError

    def emulated_stop(self, ctx: ParamContext) -> list[str]:
        """The caller's stop sequences applied here rather than sent (see
        `HTTPRequest.emulated_stop`): none, unless the adapter sends fewer."""
        return []

    def finish_reason(self, value: Optional[str], reply: Reply, body: Any) -> Optional[str]:
        """The provider's finish word in OpenAI's vocabulary; ``error`` words raise."""
        if value is None:
            return None
        mapped = self.spec.finish_reasons.get(value, value)
        if mapped == "error":
            raise self.make_error(
                reply,
                body,
                value,
                f"the provider ended the generation with finish_reason={value!r}",
                default=InternalServerError,
            )
        return mapped

    # ------------------------------------------------------------------ embeddings

    # ------------------------------------------------------------------ Responses API

    def serves_responses(self, info: Optional[ModelInfo]) -> bool:
        """Whether the provider serves OpenAI's Responses API itself for this model (else
        the front door translates it to chat completions)."""
        return False

    def responses_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        raise NotImplementedError(f"{self.name} does not serve the Responses API itself")

    def responses_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        """A provider's own ``Response`` body, checked to be one."""
        if not isinstance(body, dict) or not isinstance(body.get("output"), list):
            raise self.invalid_body(body, "a Responses answer without 'output'")
        return body

    def embeddings_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        raise NotImplementedError

    def embedding_input(self, ctx: ParamContext, call: Optional[CallContext] = None) -> Any:
        """The embeddings ``input`` to send. Token ids, which OpenAI takes and
        langchain-openai's ``OpenAIEmbeddings`` sends by default, are refused before sending
        by a provider that takes text only: it would answer with a 400 of its own, and
        they cannot be read back into text here (no tokenizer vocabulary is shipped).
        A text longer than the model's ``max_input_tokens`` (``call``'s catalogue entry)
        is refused too (`check_input_length`)."""
        texts = ctx.get("input")
        if token_ids(texts) and not self.takes_token_ids:
            raise ctx.error(
                f"input holds token ids (integers), but {self.name} embeddings take "
                f"text only: send a string or a list of strings. langchain-openai's "
                f"OpenAIEmbeddings sends token ids by default: pass "
                f"check_embedding_ctx_length=False to it",
                param="input",
            )
        if call is not None and call.info is not None and call.info.max_input_tokens:
            check_input_length(ctx, texts, call.model, self.name, call.info.max_input_tokens)
        return texts

    def embeddings_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        raise NotImplementedError

    # ------------------------------------------------------------------ errors

    def error_fields(self, body: Any) -> tuple[Optional[str], Optional[str]]:
        """The provider's own (code, message) from an error body; (None, None) if not one."""
        raise NotImplementedError

    def find_error(self, reply: Reply, body: Any) -> Optional[ProviderFault]:
        """The error an answer carries: a 4xx/5xx status, or an error inside a 200 body.

        A body that is SSE-framed text (a failed stream request, whatever its content type
        says) is read by content: its first ``data:`` line is the error."""
        if isinstance(body, str):
            body = first_sse_data(body) or body
        code, message = self.error_fields(body)
        if reply.status_code < 400 and code is None:
            return None
        return self.make_error(reply, body, code, message)

    def make_error(
        self,
        reply: Reply,
        body: Any,
        code: Optional[str],
        message: Optional[str],
        *,
        default: type[APIStatusError] = APIStatusError,
    ) -> ProviderFault:
        """Map a provider error to openai's class through the provider's code table.

        Without a row for the code, the HTTP status decides; an error inside a 200 body
        (or a stream's event) with no row, the OpenAI-shaped ``type`` it gives, if any
        (Qianfan v2 and DashScope's compatible mode give one), else ``default``.
        """
        rule: Optional[ErrorRule] = (
            self.spec.error_rule(code, message) if code is not None else None
        )
        status = reply.status_code
        if rule is not None:
            cls = rule.exception_class
        elif status >= 400:
            cls = exception_for_status(status)
        else:
            cls = _class_of_type(body) or default
        unknown = cls is APIStatusError  # nothing says what it is, or whether it passes
        if unknown:  # classed as openai classes the status it is answered with
            cls = exception_for_status(status_of(cls, status))
        quoted = not message  # the body itself then stands for the message
        if quoted:
            message = _json_text(body) if isinstance(body, dict) else reply.text
        text = scrub(str(message), self.credentials.secrets())
        if quoted:
            text = text[:500]  # cut only once scrubbed: a secret across the cut stays hidden
        openai_code = rule.code if rule is not None and rule.code else None
        label = f"{self.name} {code}" if code is not None else self.name
        suffix = f" ({openai_code})" if openai_code else ""
        if issubclass(cls, AuthenticationError):
            suffix += self.auth_hint(reply)
        retryable = rule.retryable if rule is not None else None
        if retryable is None and cls is InternalServerError:
            retryable = not unknown  # (a provider's own 5xx passes; an unknown code may not)
        if retryable is None and (openai_code or code) == "insufficient_quota":
            retryable = False  # OpenAI's own word for arrears, whatever the status (429)
        return ProviderFault(
            cls,
            status_message(status_of(cls, status), f"[{label}] {text}{suffix}"),
            body=body,
            code=openai_code or code,
            provider=self.name,
            provider_code=code,
            retryable=retryable,
            should_reauth=bool(rule and rule.reauth),
        )

    def auth_hint(self, reply: Reply) -> str:
        """For a refused key, where it was sent, when the provider has several regions or
        plans: keys belong to one of them, and a mismatch is a bare 401 otherwise."""
        endpoints = self.spec.endpoints
        if len({(e.region, e.plan) for e in endpoints}) < 2:
            return ""
        endpoint = self.spec.endpoint_of(reply.url) if reply.url is not None else None
        where = endpoint.describe() if endpoint is not None else self.base_url
        choices = sorted({e.region for e in endpoints}), sorted({e.plan for e in endpoints})
        return (
            f". The key was sent to {where}; {self.spec.display_name or self.name} keys "
            f"work only in the region and billing plan they were made for: use that key "
            f"here, or set region (one of {choices[0]}) and plan (one of {choices[1]}) "
            f"under [providers.{self.name}]"
        )

    def event_json(self, data: Union[bytes, str]) -> Optional[JSONDict]:
        """A stream event's JSON object, the slow way: what pydantic-core did not make an
        object of in `StreamParser.translate`. None for an empty event; else what the standard
        library reads (lone surrogates; data that is not UTF-8 is read with U+FFFD, as the
        decoder always has), and an error for anything that is not a JSON object."""
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        if not text.strip():
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested past the parser
            raise self.invalid_body(text, "malformed JSON in a stream event") from None
        if not isinstance(value, dict):
            raise self.invalid_body(value, "a stream event that is not an object")
        return value

    def new_call_id(self) -> str:
        """An id for a tool call the provider sent without one (``call_`` and 24 hex
        digits): OpenAI's calls always have one, and the tool message answering a call
        must name it."""
        return f"call_{self.new_id()[:24]}"

    def invalid_body(self, body: Any, what: str) -> MalformedBody:
        """The fault for an answer of a shape that cannot be translated (``what`` it was)."""
        return MalformedBody(f"{self.name} returned {what}", body=body, provider=self.name)

    # ------------------------------------------------------------------ helpers

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"


#: OpenAI's error ``type`` values, and the class OpenAI's status for each makes.
_TYPE_CLASSES: dict[str, type[APIStatusError]] = {
    "invalid_request_error": BadRequestError,
    "authentication_error": AuthenticationError,
    "permission_error": PermissionDeniedError,
    "not_found_error": NotFoundError,
    "rate_limit_error": RateLimitError,
    "rate_limit_exceeded": RateLimitError,
    "insufficient_quota": RateLimitError,
    "server_error": InternalServerError,
}


def _class_of_type(body: Any) -> Optional[type[APIStatusError]]:
    """The class an OpenAI-shaped error ``type`` in ``body`` (or its ``error``) names."""
    if not isinstance(body, dict):
        return None
    inner = body.get("error")
    kind = (inner if isinstance(inner, dict) else body).get("type")
    return _TYPE_CLASSES.get(kind) if isinstance(kind, str) else None


def require_key(
    name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]], field: str
) -> str:
    """``keys[field]``, or an error that says every way to provide it."""
    value = keys.get(field)
    if value:
        return value
    env = " or ".join(getattr(spec, f"{field}_env")) or "its environment variable"
    raise ConfigError(
        f"no {field} for provider {name!r}: pass {field}=..., set {env}, or set {field} "
        f"under [providers.{name}] in the config"
    )


def first_sse_data(text: str) -> Optional[JSONDict]:
    """The JSON object on the first ``data:`` line of an SSE-framed body, if there is one."""
    for line in text.splitlines():
        if line.startswith("data:"):
            try:
                value = json.loads(line[5:].strip())
            except (ValueError, RecursionError):
                return None
            return value if isinstance(value, dict) else None
    return None


def loads(data: Union[str, bytes]) -> Any:
    """``json.loads``, through pydantic-core's parser (several times faster on Chinese
    text). What it refuses (lone surrogates in escapes, non-UTF-8 bytes) goes to
    ``json.loads``, so what parses and what raises `ValueError` are the standard
    library's. Response bodies go through it; stream events take the same two steps in
    `StreamParser.translate`."""
    try:
        return from_json(data)
    except ValueError as error:
        if "recursion limit" in str(error):
            raise  # nested deeper than any answer is: not one (json.loads would recurse too)
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def parse_json(reply: Reply) -> Any:
    """The body as JSON, or the raw text when it is not JSON (errors can be HTML pages)."""
    content = reply.content
    if not content:
        return None
    try:
        return loads(content)
    except ValueError:
        return reply.text


def _json_text(body: JSONDict) -> str:
    """A body as JSON text for a message (a stream event's, say), whatever it holds."""
    try:
        return json.dumps(body, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(body)
    except RecursionError:
        return "<a body nested too deeply to show>"


def with_web_search(body: JSONDict, rule: WebSearchRule) -> None:
    """Turn the provider's web search on in ``body``: the rule's fields at its top level,
    its tool after the caller's ``tools`` (copies: the rule is shared configuration)."""
    body.update(copy.deepcopy(rule.fields))
    if rule.tool is not None:
        body["tools"] = [*(body.get("tools") or []), copy.deepcopy(rule.tool)]


#: Assistant-message fields of openai's message objects that only OpenAI's API reads; they
#: come back as they are (mostly as nulls) when a caller appends ``resp.choices[0].message``.
OPENAI_ONLY_FIELDS = ("refusal", "annotations", "audio", "function_call")
#: Fields no API reads, dropped whatever their value: ``provider`` (llm-bridge's tag on its
#: answers) and ``parsed`` (openai's ``.parse()`` / ``.stream()`` helpers' view of the
#: content, which is sent anyway).
_CLIENT_ONLY_FIELDS = ("provider", "parsed")
#: The same for a tool call's ``function``: the helpers' view of ``arguments``.
_CLIENT_ONLY_FUNCTION_FIELDS = ("parsed_arguments",)


def without_openai_only_fields(message: Mapping[str, Any]) -> JSONDict:
    """An assistant message as a provider with its own message schema takes it (GLM,
    Qianfan): without null `OPENAI_ONLY_FIELDS` (such a provider refuses or misreads
    them), without the client-side fields (`_CLIENT_ONLY_FIELDS`, and ``parsed_arguments``
    in each tool call's function). A non-null openai-only field (a refusal text, say)
    stays: it says something, and the provider decides. ``message`` is not changed."""
    out = {
        key: value
        for key, value in message.items()
        if key not in _CLIENT_ONLY_FIELDS and not (key in OPENAI_ONLY_FIELDS and value is None)
    }
    calls = out.get("tool_calls")
    if isinstance(calls, list) and any(
        isinstance(c, dict)
        and isinstance(c.get("function"), dict)
        and any(key in c["function"] for key in _CLIENT_ONLY_FUNCTION_FIELDS)
        for c in calls
    ):
        out["tool_calls"] = [_without_client_fields(call) for call in calls]
    return out


def _without_client_fields(call: Any) -> Any:
    """A tool call without the client-only fields of its ``function``."""
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        return call
    function = {
        key: value
        for key, value in call["function"].items()
        if key not in _CLIENT_ONLY_FUNCTION_FIELDS
    }
    return {**call, "function": function}


def split_url(url: str) -> tuple[str, str, str]:
    """The scheme, host (both lower case) and path of ``url``; a URL the standard library
    refuses (an unclosed IPv6 bracket) is split as written, so that a malformed root fails
    at the first request, as before, rather than when the client is built."""
    try:
        parts = urlsplit(url)
        return parts.scheme, parts.hostname or "", parts.path
    except ValueError:
        scheme, _, rest = url.partition("://")
        host, _, path = rest.partition("/")
        return scheme.lower(), host.lower(), "/" + path


def _warn_plain_http(name: str, root: str) -> None:
    """Warn when a provider's API root is plain ``http://`` to a host other than this
    machine: the key and every prompt would cross the network unencrypted."""
    scheme, host, _ = split_url(root)
    if scheme != "http":
        return
    if host in ("localhost", "::1") or host.startswith("127.") or host.endswith(".localhost"):
        return
    warnings.warn(
        f"provider {name!r}: base_url {root} is plain http:// to {host}: the API key and "
        f"prompts are sent unencrypted; use https:// (or a loopback address)",
        UserWarning,
        stacklevel=4,
    )


def embedding_usage(usage: Any) -> JSONDict:
    """An embeddings answer's ``usage`` in OpenAI's names, from the provider's (which may
    name the count ``prompt_tokens`` or ``total_tokens`` only). None there, or no count:
    zeros marked ``estimated``, for the engine to count the input instead (a usage of 0
    would bill nothing for a call the provider bills)."""
    given = usage if isinstance(usage, dict) else {}
    prompt, total = given.get("prompt_tokens"), given.get("total_tokens")
    prompt = prompt if type(prompt) is int else total
    if type(prompt) is not int:
        return {"prompt_tokens": 0, "total_tokens": 0, "estimated": True}
    return {"prompt_tokens": prompt, "total_tokens": total if type(total) is int else prompt}
