"""``llm-bridge migrate``: what each openai call site becomes on the configured providers.

Nothing here is a list of guesses about what a provider serves. A call site is judged by
the code that would serve it:

- which API a method reaches is `llm_bridge._front.endpoint_of` applied to the HTTP
  request openai sends for it (the method's route is openai's; `route_of`), so an API the
  front door does not serve is reported with the name its ``NotFoundError`` would give;
- a chat, embeddings or Responses call is translated, dry, by the adapter of the provider
  its model routes to under the config: the parameters written at the call site (literal
  values where the code has them, a representative value where it computes them) go
  through `resolve_model`, json_schema emulation (`_structured.emulates`), the ``n``
  fan-out rule (`Adapter.native_n`), the Responses translation (`_responses.chat_params`)
  and the adapter's own request builder, whose unsupported-parameter reports become the
  findings. No request is sent: the adapters are pure and get placeholder credentials.

Severity: ``blocks`` (the call cannot work as written: an API not served, a request the
adapter refuses before sending), ``changes`` (it works, differently: a parameter dropped,
json_schema emulated, ``n`` fanned out) and ``note`` (worth knowing, nothing to do).
"""

from __future__ import annotations

import functools
import inspect
import re
import time
import uuid
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ._migrate_scan import UNKNOWN, CallSite, Finding, Param

__all__ = [
    "CLIENT_NAMES",
    "Checker",
    "OpenAIApi",
    "Verdict",
    "client_parameters",
    "openai_api",
    "route_of",
]

#: The openai names `migrate` moves to llm-bridge: the clients. Everything else openai
#: exports (errors, types, ``Stream``, its HTTP client classes) stays imported from openai:
#: llm-bridge's clients subclass openai's and raise subclasses of openai's errors, so
#: ``except openai.RateLimitError`` and ``isinstance(x, openai.OpenAI)`` keep working.
CLIENT_NAMES = ("OpenAI", "AsyncOpenAI")

#: openai's wrappers around a resource's methods: the same request, another return type.
WRAPPERS = frozenset({"with_raw_response", "with_streaming_response", "with_options"})

#: Methods that run in the client, without a request (webhook signature checks).
LOCAL_METHODS = frozenset({"webhooks.unwrap", "webhooks.verify_signature"})

#: Placeholder credentials for the dry run, per wire protocol: adapters check a key's shape
#: when they are built, and these pass (a Qianfan ``bce-v3/`` key selects v2).
_DRY_KEYS: dict[str, dict[str, Optional[str]]] = {
    "zhipu": {"api_key": "dryrun.dryrunsecret"},
    "qianfan": {"api_key": "bce-v3/ALTAK-dryrun/dryrun"},
    "dashscope": {"api_key": "sk-dryrun"},
    "openai_compat": {"api_key": "sk-dryrun"},
}

#: A representative value for a parameter the call site computes, so the adapter can say
#: what it does with such a parameter. Chosen to take the path a real value takes: a
#: parameter given at all is what the providers' tables judge (their values are clamped,
#: not refused), so only ``n`` and ``response_format`` need a value that says "used".
_CHAT_PLACEHOLDERS: dict[str, Any] = {
    "messages": [{"role": "user", "content": "hi"}],
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
    "functions": [{"name": "f", "parameters": {"type": "object"}}],
    "function_call": "auto",
    "tool_choice": "auto",
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": {"type": "object"}},
    },
    "temperature": 0.5,
    "top_p": 0.5,
    "n": 2,
    "stream": False,
    "stop": ["\n\n"],
    "max_tokens": 256,
    "max_completion_tokens": 256,
    "logprobs": True,
    "top_logprobs": 2,
    "seed": 1,
    "presence_penalty": 0.5,
    "frequency_penalty": 0.5,
    "logit_bias": {"1": 1},
    "user": "user-000001",
    "safety_identifier": "user-000001",
    "audio": {"voice": "alloy", "format": "wav"},
    "modalities": ["text", "audio"],
    "prediction": {"type": "content", "content": "x"},
    "reasoning_effort": "medium",
    "verbosity": "medium",
    "web_search_options": {},
    "parallel_tool_calls": True,
    "store": True,
    "metadata": {},
    "service_tier": "auto",
    "stream_options": {"include_usage": True},
    "prompt_cache_key": "k",
}
_RESPONSES_PLACEHOLDERS: dict[str, Any] = {
    "input": "hi",
    "instructions": "x",
    "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
    "text": {"format": {"type": "json_schema", "name": "answer", "schema": {"type": "object"}}},
    "reasoning": {"effort": "medium"},
    "include": [],
    "tool_choice": "auto",
    "max_output_tokens": 256,
    "temperature": 0.5,
    "top_p": 0.5,
    "stream": False,
    "background": True,
    "truncation": "auto",
    "conversation": "conv_x",
    "prompt": {"id": "pmpt_x"},
}
_EMBEDDING_PLACEHOLDERS: dict[str, Any] = {
    "input": ["hi"],
    "dimensions": 256,
    "encoding_format": "float",
    "user": "user-000001",
}
#: The parameters whose placeholder is an assumption worth saying in a finding.
_ASSUMED = {
    "n": "assuming n > 1",
    "response_format": "assuming json_schema",
    "text": "assuming json_schema",
    "tools": "assuming function tools",
    "dimensions": "assuming a size the model does not offer",
}


# --------------------------------------------------------------------------- openai's API


class OpenAIApi:
    """The installed openai client's resources and methods, read from a client object
    (no request is made) as far as a call site's attribute chain needs: only the resources
    a codebase names are built.

    Resources are ``cached_property`` attributes in recent openai and instance attributes
    in older releases; both are followed."""

    def __init__(self) -> None:
        import openai

        self._client = openai.OpenAI(api_key="migrate-scan", base_url="http://127.0.0.1:9/v1")
        self._found: dict[tuple[str, ...], Optional[frozenset[str]]] = {}
        self._top = frozenset(
            name for name in dir(self._client) if self._is_resource(self._client, name)
        )

    @staticmethod
    def _is_resource(obj: Any, name: str) -> bool:
        from openai._resource import SyncAPIResource

        if name.startswith("_") or name in WRAPPERS:
            return False
        static = inspect.getattr_static(obj, name, None)
        return isinstance(static, (functools.cached_property, SyncAPIResource))

    def find(self, names: Sequence[str]) -> Optional[str]:
        """The ``resource.method`` a chain of attribute names ends in (``self.client.chat
        .completions.create`` -> ``chat.completions.create``), if it ends in one."""
        for start in range(len(names) - 1):
            if names[start] in self._top and self.parameters(names[start:]) is not None:
                return ".".join(names[start:])
        return None

    def parameters(self, path: Sequence[str]) -> Optional[frozenset[str]]:
        """The keyword parameters of the method at ``path``; None if it is not one."""
        key = tuple(path)
        if key not in self._found:
            self._found[key] = self._walk(key)
        return self._found[key]

    def _walk(self, path: tuple[str, ...]) -> Optional[frozenset[str]]:
        from openai._resource import SyncAPIResource

        obj: Any = self._client
        for name in path[:-1]:
            if not self._is_resource(obj, name):
                return None
            try:
                obj = getattr(obj, name)
            except Exception:  # a resource that needs an optional package to build
                return None
            if not isinstance(obj, SyncAPIResource):
                return None
        method = getattr(type(obj), path[-1], None)
        if len(path) < 2 or path[-1].startswith("_") or not inspect.isfunction(method):
            return None
        try:
            return frozenset(inspect.signature(method).parameters) - {"self"}
        except (TypeError, ValueError):
            return frozenset()


@functools.lru_cache(maxsize=1)
def openai_api() -> OpenAIApi:
    """The installed openai client's API (one per process)."""
    return OpenAIApi()


def route_of(resource: str) -> tuple[str, str]:
    """The HTTP method and path openai sends for ``resource`` (``"chat.completions.create"``
    → ``("POST", "/chat/completions")``), as `_front.endpoint_of` reads it.

    The routes written out are those of the APIs llm-bridge serves (and their neighbours
    it does not); any other method is a request under its first path segment, which is
    all ``endpoint_of`` needs to name the API it refuses."""
    parts = resource.split(".")
    if parts[0] == "beta" and len(parts) > 2:
        parts = parts[1:]  # beta.chat.completions.parse is chat.completions.parse
    *resources, method = parts
    where = "/" + "/".join(resources)
    if resources == ["chat", "completions"]:
        if method in ("create", "parse", "stream"):
            return "POST", where
        if method == "list":
            return "GET", where
        verb = {"retrieve": "GET", "update": "POST", "delete": "DELETE"}.get(method, "POST")
        return verb, where + "/id"
    if resources == ["chat", "completions", "messages"]:
        return "GET", "/chat/completions/id/messages"
    if resources == ["models"]:
        if method == "list":
            return "GET", where
        return ("DELETE" if method == "delete" else "GET"), where + "/id"
    if resources == ["responses"]:
        if method in ("create", "parse", "stream"):
            return "POST", where
        if method in ("retrieve", "delete"):
            return ("GET" if method == "retrieve" else "DELETE"), where + "/id"
        if method == "compact":
            return "POST", where + "/compact"
        return "POST", where + "/id/" + method
    if resources == ["responses", "input_items"]:
        return "GET", "/responses/id/input_items"
    if resources == ["responses", "input_tokens"]:
        return "POST", "/responses/input_tokens"
    return "POST", where


@functools.lru_cache(maxsize=1)
def client_parameters() -> dict[str, frozenset[str]]:
    """The keyword parameters of llm-bridge's client constructors (``OpenAI``,
    ``AsyncOpenAI``): a construction passing another (openai's ``workload_identity``,
    ``admin_api_key`` ...) would fail once moved. (``_usage`` is llm-bridge's own, for
    ``copy()``; openai's ``_strict_response_validation`` is taken.)"""
    from .. import _client

    return {
        name: frozenset(
            p
            for p in inspect.signature(getattr(_client, name).__init__).parameters
            if p not in ("self", "_usage")
        )
        for name in CLIENT_NAMES
    }


# --------------------------------------------------------------------------- verdicts


@dataclass
class Verdict:
    """What one call site becomes: where it goes (``"zhipu/glm-4-flash"``), and findings."""

    target: Optional[str] = None
    findings: list[Finding] = field(default_factory=list)

    def add(self, severity: str, message: str, param: Optional[str] = None) -> None:
        if not any(f.message == message and f.param == param for f in self.findings):
            self.findings.append(Finding(severity, message, param))


class Checker:
    """Judges call sites against one configuration (a `llm_bridge.Config`).

    ``fallback_models`` gives, per kind (``"chat"``, ``"embedding"``), the model a call
    whose model is not a literal is checked against (the starter config's usual target)."""

    def __init__(self, config: Any, fallback_models: Mapping[str, str]) -> None:
        self.config = config
        self.fallback_models = dict(fallback_models)
        self._adapters: dict[str, Any] = {}
        self._reports: list[tuple[str, str]] = []

    # ---------------------------------------------------------------- one call site

    def check(self, site: CallSite) -> Verdict:
        verdict = Verdict()
        if site.kind == "client":
            self._base_url(site, verdict)
            return verdict
        if site.resource in LOCAL_METHODS:
            return verdict
        if site.module_client:
            self._module_client(site, verdict)
        from .._front import endpoint_of

        method, path = route_of(site.resource)
        if site.resource.endswith("responses.connect"):
            verdict.add(
                "blocks",
                "the Responses API's WebSocket mode (responses.connect) is not served: "
                "it raises NotFoundError",
            )
            return verdict
        endpoint = endpoint_of(method, path)
        given = {p.name: p for p in site.params}
        stream = given.get("stream")
        if (endpoint.kind == "response" and stream is not None and stream.value is True) or (
            endpoint.kind == "responses" and "response_id" in given
        ):
            from .._responses_front import no_streamed_retrieval

            named = given.get("response_id")
            ident = named.value if named is not None and isinstance(named.value, str) else "…"
            error = no_streamed_retrieval(ident, "")
            verdict.add("blocks", f"refused before sending: {error.message}", "stream")
            return verdict
        if endpoint.kind == "unserved":
            verdict.add(
                "blocks",
                f"llm-bridge does not serve {endpoint.api}: the call raises openai's "
                "NotFoundError before any request",
            )
            return verdict
        if site.reference:
            verdict.add(
                "note",
                f"method referenced, call not analysed: {site.resource} is stored or passed "
                "on here and called elsewhere (or by a library), so its parameters and model "
                "are not checked",
            )
            return verdict
        if site.star_kwargs:
            verdict.add(
                "note",
                "parameters passed through ** are checked only where the code builds them "
                "as a dict literal in the same function",
            )
        self._openai_only(site, verdict)
        if endpoint.kind == "chat":
            self._chat(site, verdict)
        elif endpoint.kind == "embeddings":
            self._embeddings(site, verdict)
        elif endpoint.kind == "responses":
            self._responses(site, verdict)
        return verdict

    def _module_client(self, site: CallSite, verdict: Verdict) -> None:
        """openai's module-level client (``openai.chat.completions.create``) is openai's,
        and no import change moves it; one line does: ``openai.http_client =
        llm_bridge.http_client()`` before its first call (openai builds that client on
        first use with the module's ``http_client``; checked on openai 2.x and 3.x).
        openai still refuses to send without some ``api_key`` (``OPENAI_API_KEY`` or
        ``openai.api_key``: any value, as llm-bridge sends the provider's key). A client
        of the project's own set there (``httpx.Client(timeout=30)``) still sends to
        OpenAI: it blocks, saying how to keep its settings; one the scan cannot trace to
        either (a name imported from elsewhere) is a change to check, not a block."""
        key = (
            "openai still wants an api_key before it sends (OPENAI_API_KEY or openai.api_key, "
            "any value: llm-bridge sends the provider's own key)"
        )
        if site.module_hook == "set":
            verdict.add(
                "note",
                "openai's module-level client: this file sets openai.http_client, so its "
                f"calls go through llm-bridge if that runs first; {key}",
            )
        elif site.module_hook == "own":
            verdict.add(
                "blocks",
                "openai's module-level client: this file sets openai.http_client to a client "
                "of its own, not llm-bridge's, so its calls still go to OpenAI: give that "
                "client's settings to llm-bridge's, `openai.http_client = "
                "llm_bridge.http_client(http_client=<your client>)` (timeout=, max_retries= "
                f"too); {key}",
            )
        elif site.module_hook == "unknown":
            verdict.add(
                "changes",
                "openai's module-level client: this file sets openai.http_client to a client "
                "the scan cannot trace (imported, read from an attribute, bound more than "
                "one way), so its calls go through llm-bridge only if that client is "
                "llm_bridge.http_client(...) and is set before the first call: check it, or "
                "give its settings to llm-bridge's, `openai.http_client = "
                f"llm_bridge.http_client(http_client=<your client>)`; {key}",
            )
        elif site.module_hook == "added":
            verdict.add(
                "changes",
                "openai's module-level client (openai.<resource>): the rewrite adds "
                "openai.http_client = llm_bridge.http_client() after import openai, so its "
                f"calls go through llm-bridge; {key}",
            )
        else:
            verdict.add(
                "blocks",
                "openai's module-level client (openai.<resource>) is openai's own and no "
                "import change moves it: add `openai.http_client = llm_bridge.http_client()` "
                f"(after import openai and import llm_bridge, before the first call; {key}), "
                "or make a client with OpenAI() from llm_bridge and call that",
            )

    def _base_url(self, site: CallSite, verdict: Verdict) -> None:
        """A client made with ``base_url=``: a root llm-bridge knows picks its provider;
        any other URL (``https://api.openai.com/v1``, a proxy) makes llm-bridge's client
        send every request there as provider ``openai``, past the config's model routes
        (`OpenAI._setup`): the call sites' targets would not hold."""
        from ._migrate_scan import UNKNOWN

        given = {p.name: p for p in site.params}
        url = given.get("base_url")
        if url is None or url.value is None or "provider" in given:
            return
        if self.config.default_provider is not None:
            return
        if url.value is UNKNOWN or not isinstance(url.value, str):
            verdict.add(
                "note",
                f"{url.code} is computed: a Zhipu, DashScope or Qianfan root picks "
                "that provider, but any other URL sends every request of this client there "
                "as provider 'openai', past the config's model routes; leave base_url out to "
                "route by model",
                "base_url",
            )
            return
        from .._endpoints import recognise

        if recognise(self.config, url.value) is None:
            verdict.add(
                "changes",
                f"{url.value} is no provider root llm-bridge knows: this client "
                "sends every request there as provider 'openai', not to the targets shown "
                "for its calls; remove base_url= to route by model (keep it only for an "
                "OpenAI-compatible service you mean to stay on)",
                "base_url",
            )

    # ---------------------------------------------------------------- per API

    def _openai_only(self, site: CallSite, verdict: Verdict) -> None:
        """Keywords openai's method itself does not take: a wrapper's (instructor's
        ``response_model``, say), which this check cannot judge."""
        accepted = openai_api().parameters(site.resource.split("."))
        if accepted is None or "kwargs" in accepted:
            return
        for param in site.params:
            if param.name not in accepted:
                verdict.add(
                    "note",
                    f"{param.name}= is not a parameter of openai's {site.resource} (a "
                    "wrapper's, such as instructor's?): not checked",
                    param.name,
                )

    def _chat(self, site: CallSite, verdict: Verdict) -> None:
        from ..adapters._params import CHAT_PARAMS

        params, assumed = _values(site.params, CHAT_PARAMS, _CHAT_PLACEHOLDERS)
        if site.resource.endswith((".parse", ".stream")) and "response_format" in assumed:
            # a pydantic model (the usual value here), which openai sends as json_schema
            params["response_format"] = _CHAT_PLACEHOLDERS["response_format"]
            del assumed["response_format"]
        if site.resource.endswith(".stream"):
            params["stream"] = True
        params.setdefault("messages", _CHAT_PLACEHOLDERS["messages"])
        if "tools" in assumed:
            _name_tools(params, chat=True)
        route = self._route(site, params, "chat", verdict)
        if route is None:
            return
        self._dry_chat(route, params, assumed, verdict)

    def _embeddings(self, site: CallSite, verdict: Verdict) -> None:
        from ..adapters._base import CallContext
        from ..adapters._params import EMBEDDING_PARAMS

        params, assumed = _values(site.params, EMBEDDING_PARAMS, _EMBEDDING_PLACEHOLDERS)
        params.setdefault("input", ["hi"])
        unchecked = None
        if "dimensions" in assumed:  # a size the code computes: nothing to judge it by
            unchecked = next(p.code for p in site.params if p.name == "dimensions")
            del params["dimensions"], assumed["dimensions"]
        route = self._route(site, params, "embedding", verdict)
        if route is None:
            return
        provider, model = route
        adapter = self._adapter(provider, verdict)
        if adapter is None:
            return
        info = adapter.spec.model(model)
        if info is not None and info.kind != "embedding":
            verdict.add("blocks", f"{provider}/{model} is not an embedding model")
            return
        if unchecked is not None:
            offers = (
                f" ({provider}/{model} offers {', '.join(str(d) for d in info.dimensions)})"
                if info is not None and info.dimensions
                else ""
            )
            verdict.add(
                "note", f"dimensions not a literal ({unchecked}): unchecked{offers}", "dimensions"
            )
        dims = info.default_dimensions if info is not None else None
        asked = params.get("dimensions")
        if isinstance(asked, int) and info is not None and asked in info.dimensions:
            verdict.add(
                "note",
                f"{provider}/{model} offers the {asked} dimensions asked for, but vectors "
                "stored from another model cannot be compared with its own; re-embed them",
            )
        elif dims:
            verdict.add(
                "note",
                f"{provider}/{model} returns {dims}-dimension vectors by default: vectors "
                "stored from another model cannot be compared with them; re-embed them",
            )
        call = CallContext(
            provider=provider,
            model=model,
            requested_model=params["model"],
            info=info,
            encoding_format=params.get("encoding_format"),
        )
        self._run(
            lambda: adapter.embeddings_request({**params, "model": model}, call), assumed, verdict
        )

    def _responses(self, site: CallSite, verdict: Verdict) -> None:
        from .. import _responses, _responses_front

        known = _responses.RESPONSES_PARAMS
        given = [p for p in site.params if p.name != "text_format"]
        request, assumed = _values(given, known, _RESPONSES_PLACEHOLDERS)
        if any(p.name == "text_format" for p in site.params):
            request["text"] = _RESPONSES_PLACEHOLDERS["text"]  # openai makes it json_schema
        if site.resource.endswith(".stream"):
            request["stream"] = True
        request.pop("previous_response_id", None)  # served (the store): nothing to judge
        request.setdefault("input", "hi")
        if "tools" in assumed:
            _name_tools(request, chat=False)
        route = self._route(site, request, "chat", verdict)
        if route is None:
            return
        provider, model = route
        adapter = self._adapter(provider, verdict)
        if adapter is None:
            return
        if adapter.serves_responses(adapter.spec.model(model)):
            verdict.add(
                "note",
                f"{provider} serves the Responses API itself for {model}: the request "
                "passes through as written",
            )
            for name, reason in _responses_front._NATIVE_UNSUPPORTED.items():
                if request.get(name) not in (None, False):
                    self._unsupported(verdict, name, reason, assumed)
            return
        reports: list[tuple[str, str]] = []
        try:
            chat = _responses.chat_params(
                {**request, "model": model}, [], unsupported=lambda p, r: reports.append((p, r))
            )
        except (TypeError, ValueError) as error:
            verdict.add("note", f"could not translate the request as written: {error}")
            return
        for name, reason in reports:
            self._unsupported(verdict, name, reason, assumed)
        chat_assumed = dict(assumed)
        if "text" in assumed:
            chat_assumed["response_format"] = assumed["text"]
        self._dry_chat((provider, model), chat, chat_assumed, verdict, requested=model)

    # ---------------------------------------------------------------- the dry run

    def _route(
        self, site: CallSite, params: dict[str, Any], kind: str, verdict: Verdict
    ) -> Optional[tuple[str, str]]:
        """The first target the call's model routes to (its ``model`` param, else the
        kind's usual model); None, with a finding, when it routes nowhere."""
        from .._errors import OpenAIError
        from .._routing import resolve_model

        model = params.get("model")
        if not isinstance(model, str) or not model:
            fallback = self.fallback_models.get(kind)
            if fallback is None:
                verdict.add("note", "the model is not a literal and no default is configured")
                return None
            verdict.add("note", f"the model is not a literal: checked against {fallback}")
            model = fallback
        params["model"] = model
        try:
            routes = resolve_model(self.config, model, client_provider=None)
        except OpenAIError:
            verdict.add(
                "blocks",
                f"model {model!r} routes to no provider under this config: add an alias "
                "for it under [models]",
            )
            return None
        route = routes[0]
        verdict.target = f"{route.provider}/{route.model}"
        if len(routes) > 1:
            more = ", ".join(f"{r.provider}/{r.model}" for r in routes[1:])
            verdict.target += f" (then {more})"
        info = self.config.provider(route.provider).model(route.model)
        if info is not None and info.retired:
            successor = f"; its successor is {info.successor}" if info.successor else ""
            verdict.add(
                "changes",
                f"{route.provider}/{route.model} was retired on {info.retired}{successor}",
            )
        return route.provider, route.model

    def _dry_chat(
        self,
        route: tuple[str, str],
        params: dict[str, Any],
        assumed: dict[str, str],
        verdict: Verdict,
        *,
        requested: Optional[str] = None,
    ) -> None:
        from .._structured import emulate, emulates
        from ..adapters._base import CallContext
        from ..adapters._params import check_chat_params

        provider, model = route
        adapter = self._adapter(provider, verdict)
        if adapter is None:
            return
        info = adapter.spec.model(model)
        params = {k: v for k, v in params.items() if v is not None}
        if emulates(adapter.protocol, info, params):
            verdict.add(
                "changes",
                f"json_schema is emulated on {model}: json_object with the schema in a "
                "system instruction, the answer checked and asked for once more on a "
                "mismatch" + _because(assumed, "response_format"),
                "response_format",
            )
            params = emulate(params)[0]
        n = params.get("n") or 1
        if n > 1 and not adapter.native_n and not params.get("stream"):
            verdict.add(
                "changes",
                f"{provider} answers one choice per request: n={n if 'n' not in assumed else 'N'} "
                "is sent as that many requests, their choices merged (usage and cost summed)"
                + _because(assumed, "n"),
                "n",
            )
            params["n"] = None
        stream_options = params.get("stream_options") or {}
        call = CallContext(
            provider=provider,
            model=model,
            requested_model=requested or params["model"],
            stream=bool(params.get("stream")),
            include_usage=bool(
                isinstance(stream_options, dict) and stream_options.get("include_usage")
            ),
            info=info,
        )
        if not call.stream and adapter.must_stream(params, call):
            verdict.add(
                "note",
                f"{model} answers only streams: the call is streamed and the chunks put together",
            )
        sent = {**params, "model": model}

        def build() -> Any:
            check_chat_params(sent)  # what OpenAI's own server would refuse
            return adapter.chat_request(sent, call)

        self._run(build, assumed, verdict)

    def _run(self, build: Callable[[], Any], assumed: dict[str, str], verdict: Verdict) -> None:
        """Build the request; the adapter's unsupported-parameter reports and refusals
        become findings (a refusal as `_refusal` judges it)."""
        from .._wire import Refused

        self._reports.clear()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                build()
            except (Refused, TypeError, ValueError) as error:
                _refusal(error, assumed, verdict)
        for param, message in self._reports:
            reason = message.split(": ", 1)[1] if ": " in message else message
            self._unsupported(verdict, param, reason, assumed)
        for warning in caught:
            verdict.add("note", str(warning.message).split(". Set [policy]")[0])

    def _unsupported(
        self, verdict: Verdict, param: str, reason: str, assumed: dict[str, str]
    ) -> None:
        """A parameter the provider cannot honour, under the config's policy."""
        reason = reason.split(". Set [policy]")[0]
        top = param.split(".")[0].split("[")[0]
        policy = self.config.policy.unsupported_params
        if policy == "error":
            # (``reason`` says what the "warn" policy the dry run used sent instead)
            verdict.add(
                "blocks",
                f'refused before sending (policy "error"); under "warn" or "drop": {reason}'
                + _because(assumed, top),
                param,
            )
        else:
            verdict.add("changes", reason + _because(assumed, top), param)

    def _adapter(self, provider: str, verdict: Verdict) -> Any:
        """The provider's adapter with placeholder credentials (built once)."""
        if provider in self._adapters:
            return self._adapters[provider]
        from .._config import Policy
        from ..adapters import adapter_class

        spec = self.config.provider(provider)
        protocol = spec.protocol or "openai_compat"
        keys = dict(_DRY_KEYS.get(protocol, _DRY_KEYS["openai_compat"]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                adapter = adapter_class(protocol).create(
                    provider,
                    spec,
                    keys=keys,
                    base_url=None,
                    policy=Policy(unsupported_params="warn"),
                    warn=lambda param, message: self._reports.append((param, message)),
                    clock=time.time,
                    new_id=lambda: uuid.uuid4().hex,
                )
        except Exception as error:  # a provider configured in a way the dry run cannot copy
            verdict.add("note", f"could not check against {provider}: {error}")
            adapter = None
        self._adapters[provider] = adapter
        return adapter


#: Refusals (by OpenAI's error ``code``) that depend on more than the parameter they name:
#: a prompt over the context window is as much the completion limit's doing (and the
#: tools' definitions count in the prompt).
_CODE_DEPENDS: dict[str, frozenset[str]] = {
    "context_length_exceeded": frozenset(
        {"messages", "tools", "input", "max_tokens", "max_completion_tokens"}
    ),
}

#: The call's parameters a request parameter is made from, or is refused by, beside its
#: own name: a Responses call is checked as the chat request it is translated to, so a
#: refusal of ``messages`` is about the ``input`` and ``instructions`` the code wrote; an
#: ``allowed_tools`` choice picks the tools sent; ``stream_options`` is refused without
#: ``stream`` (which the dry run takes as false when the code computes it), a tool
#: choice or parallel calls without tools, ``top_logprobs`` without ``logprobs``.
_MADE_FROM: dict[str, frozenset[str]] = {
    "messages": frozenset({"input", "instructions"}),
    "max_completion_tokens": frozenset({"max_output_tokens"}),
    "response_format": frozenset({"text"}),
    "verbosity": frozenset({"text"}),
    "reasoning_effort": frozenset({"reasoning"}),
    "tools": frozenset({"tool_choice"}),
    "web_search_options": frozenset({"tools"}),
    "stream_options": frozenset({"stream"}),
    "tool_choice": frozenset({"tools"}),
    "parallel_tool_calls": frozenset({"tools"}),
    "top_logprobs": frozenset({"logprobs"}),
}


def _refusal(error: Exception, assumed: Mapping[str, str], verdict: Verdict) -> None:
    """A refusal of the dry run as a finding: ``blocks`` when it is certain; a ``note``,
    naming the computed values, when it may depend on a value the code computes (whose
    placeholder, not its real value, was refused).

    What a refusal depends on: the parameter it names (`_refused_param`); for some
    refusals, by ``code``, more (`_CODE_DEPENDS`: a prompt over the context window is the
    messages', the tools' and the completion limit's doing); and the call's parameters
    those are made from (`_MADE_FROM`: a Responses call's ``input`` for ``messages``). A
    refusal that names no parameter may depend on any. So a literal ``dimensions=3072``
    the model does not offer blocks beside a computed ``input`` (it is refused whatever
    ``input`` holds), as ``max_tokens=0`` does beside computed messages, while a
    context-length refusal beside a computed ``max_tokens`` stays a note. Where unsure the
    rule leans to a note: a refusal it cannot trace, or a parameter only partly computed
    (a tools list with a computed schema) counts as computed. A computed model is not
    counted: the call is checked against the kind's usual model, which a note of its own
    says, as before."""
    from .._wire import Refused

    message = error.message if isinstance(error, Refused) else str(error)
    param = _refused_param(error)
    if param is None:
        depends = set(assumed)
    else:
        depends = {param, *_CODE_DEPENDS.get(getattr(error, "code", None) or "", ())}
        depends.update(*(_MADE_FROM.get(name, ()) for name in list(depends)))
    computed = sorted(depends & assumed.keys())
    if computed:
        verdict.add(
            "note",
            f"may be refused before sending, depending on values computed at run time "
            f"({', '.join(computed)}): {message}",
            param,
        )
    else:
        verdict.add("blocks", f"refused before sending: {message}", param)


def _refused_param(error: Exception) -> Optional[str]:
    """The top-level parameter a refusal is about (``messages`` for
    ``messages[0].content[1].type``): its ``param`` (a `Refused`'s or a `ParamError`'s),
    else the parameter its message starts with (``temperature must be between 0 and 2``,
    as the OpenAI checks word a bare ``ValueError``); None when it names none."""
    from ..adapters._params import CHAT_PARAMS, EMBEDDING_PARAMS

    named = getattr(error, "param", None)
    if not isinstance(named, str) or not named:
        match = re.match(r"[A-Za-z_]\w*", str(error))
        named = match.group(0) if match else ""
    top = named.split(".")[0].split("[")[0]
    return top if top in CHAT_PARAMS | EMBEDDING_PARAMS else None


def _because(assumed: Mapping[str, str], param: str) -> str:
    """Why a finding about ``param`` may not apply: its value is computed at run time."""
    if not assumed.get(param):
        return ""
    return f" ({assumed[param]}: the value is not a literal)"


def _values(
    params: list[Param], known: frozenset[str], placeholders: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The call's parameters as values (literals as written, placeholders where computed)
    and the computed ones (with what their placeholder assumes, where that matters). Names
    that are not the API's body parameters are left out (`Checker._openai_only` reports a
    wrapper's)."""
    from ..adapters._params import REQUEST_OPTIONS

    values: dict[str, Any] = {}
    assumed: dict[str, str] = {}
    for param in params:
        if param.name in REQUEST_OPTIONS or param.name not in known:
            continue  # request options; openai's own helpers' (text_format ...); a wrapper's
        if param.name == "model" and not isinstance(param.value, str):
            continue  # routed to the kind's usual model instead (see Checker._route)
        value = _filled(param.value, placeholders.get(param.name, "x"))
        if value is UNKNOWN:
            continue
        if not _is_literal(param.value):
            assumed[param.name] = _ASSUMED.get(param.name, "")
        values[param.name] = value
    return values, assumed


def _name_tools(params: dict[str, Any], *, chat: bool) -> None:
    """A computed tools list whose ``tool_choice`` names a function: the placeholder tool
    takes that name (else the adapter would refuse the choice of an unknown tool)."""
    choice = params.get("tool_choice")
    tools = params.get("tools")
    if not isinstance(choice, dict) or not isinstance(tools, list) or not tools:
        return
    function = choice.get("function") if chat else choice
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        return
    first = tools[0]
    if isinstance(first, dict) and chat and isinstance(first.get("function"), dict):
        tools[0] = {**first, "function": {**first["function"], "name": name}}
    elif isinstance(first, dict) and not chat:
        tools[0] = {**first, "name": name}


def _is_literal(value: Any) -> bool:
    if value is UNKNOWN:
        return False
    if isinstance(value, dict):
        return all(_is_literal(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_literal(v) for v in value)
    return True


def _filled(value: Any, placeholder: Any) -> Any:
    """``value`` with each part the code computes replaced by the placeholder's shape."""
    if value is UNKNOWN:
        return placeholder
    if isinstance(value, list):
        element = placeholder[0] if isinstance(placeholder, list) and placeholder else "x"
        return [_filled(v, element) for v in value]
    if isinstance(value, dict):
        shape = placeholder if isinstance(placeholder, dict) else {}
        return {k: _filled(v, shape.get(k, "x")) for k, v in value.items()}
    return value
