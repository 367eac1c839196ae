"""Baidu Qianfan / ERNIE: v2 (OpenAI-shaped, the default) and the closed v1 "wenxinworkshop".

**v2** (``qianfan.baidubce.com/v2``, `QianfanV2Adapter`) takes OpenAI's JSON but keeps
ERNIE's rules: system first, strict user/assistant alternation with tool results in the
user slot, and for ERNIE 4.5 / X1 the last message from the user (the catalogue marks those
models with the ``last_user_turn`` capability). `repair_v2_messages` rewrites a history
to fit, never dropping text. Thinking is ``enable_thinking`` + ``thinking_budget``
(`llm_bridge._reasoning.plan_reasoning` turns ``reasoning_effort`` into them); the token
limit is ``max_tokens``. It authenticates with a ``bce-v3/…`` API key, or with a bearer
token that IAM account keys mint (`QianfanIamToken`).

**v1** (``aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop``, `QianfanAdapter`) was shut
down on the public cloud on 2026-08-31. It is used only with ``api = "v1"`` under
``[providers.qianfan]`` (a private deployment that still serves it), and gets no new
features. Its wire is nothing like OpenAI's (docs/providers/qianfan.md records only that v1
is closed; what follows is the wire as this adapter and its fake, ``FakeQianfan``,
implement it): the model is a URL suffix, the system prompt is a body field, the
conversation must alternate user/assistant with an odd number of messages, tools are
``functions`` and a call comes back as one ``function_call``, the answer is a flat
``result``, ``finish_reason`` is ``normal`` on every stream event (the end is ``is_end``),
usage repeats cumulatively on every event, and errors arrive as ``{"error_code": N}``
inside HTTP 200 bodies — also for stream requests.

Which keys are which (`plan_keys`): a ``bce-v3/…`` key is a v2 API key. A key pair from
``QIANFAN_ACCESS_KEY``/``QIANFAN_SECRET_KEY`` is IAM account keys. A pair given as
``api_key``/``secret_key`` (arguments, config, or ``QIANFAN_AK``/``QIANFAN_SK``: the engine
does not say which) is told apart by form: IAM Access Keys start with ``ALTAK`` or are 32
hex digits, application API Keys are 24 letters and digits; anything else is taken as IAM
keys on v2 (an auth error then says so) and as application keys on v1.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from .._auth import BearerKey, Credentials, QianfanAccessToken, QianfanIamToken
from .._bce_signer import BceSigner
from .._config import ProviderConfig
from .._errors import ConfigError
from .._reasoning import forces_a_tool, plan_reasoning
from ._base import (
    Adapter,
    CallContext,
    HTTPRequest,
    JSONDict,
    ProviderFault,
    Reply,
    StreamParser,
    Translated,
    _endpoint_url,
    embedding_usage,
    require_key,
    without_openai_only_fields,
)
from ._params import ParamContext, tools_as_sent
from .openai_compat import OPENAI_SERVICE_PARAMS, OpenAICompatAdapter

if TYPE_CHECKING:
    from .._shapes.chat import ChatCompletionChunk

__all__ = [
    "QianfanAdapter",
    "QianfanV2Adapter",
    "key_kind",
    "plan_keys",
    "repair_messages",
    "repair_v2_messages",
]

_V1_ROOT = "rpc/2.0/ai_custom/v1/wenxinworkshop"
#: Appended when a conversation ends on an assistant turn: v1 answers only a user turn.
CONTINUE_PROMPT = "请继续。"
#: Put between a function result and a following user turn, where v1 needs the assistant.
BRIDGE_REPLY = "好的。"


class QianfanAdapter(Adapter):
    """Qianfan v1 (``aip.baidubce.com/rpc/2.0/ai_custom/v1/wenxinworkshop``): shut down on the
    public cloud on 2026-08-31, used only with ``api = "v1"``; no new features."""

    protocol = "qianfan"
    native_n = False

    @classmethod
    def variant(
        cls, spec: ProviderConfig, keys: Mapping[str, Optional[str]], base_url: Optional[str]
    ) -> tuple[type[Adapter], Optional[str]]:
        # v1 only on request (api = "v1"); everything else is v2, whose make_credentials
        # refuses application keys with the v1-closed error before any request is sent.
        if spec.api == "v1":
            return cls, base_url or spec.base_url or _endpoint_url(spec, "v1")
        return QianfanV2Adapter, base_url or spec.base_url or _endpoint_url(spec, "v2")

    @classmethod
    def make_credentials(
        cls, name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]]
    ) -> Credentials:
        return _credentials(name, spec, plan_keys(name, spec, keys))

    # ------------------------------------------------------------------ chat

    def endpoint_url(self, kind: str, call: CallContext) -> str:
        endpoint = call.info.endpoint if call.info is not None and call.info.endpoint else None
        return self.url(f"{_V1_ROOT}/{kind}/{endpoint or call.model.lower()}")

    def chat_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        url = self.endpoint_url("chat", call)
        ctx = self.params(tools_as_sent(params), url)
        body = self._body(ctx, call)
        if call.stream:
            body["stream"] = True
        return HTTPRequest("POST", url, json=body, emulated_stop=self.emulated_stop(ctx))

    def emulated_stop(self, ctx: ParamContext) -> list[str]:
        """Stop words beyond what v1 takes (``[params.stop] max_items``), cut here."""
        return ctx.stops()[1]

    def _body(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        functions, forced = self._functions(ctx)
        system, messages = repair_messages(ctx.params["messages"], ctx)
        body: JSONDict = {"messages": messages}
        if system:
            body["system"] = system
        if functions:
            body["functions"] = functions
        if forced:
            body["tool_choice"] = {"type": "function", "function": {"name": forced}}
        temperature = ctx.get("temperature")
        if temperature is not None:
            body["temperature"] = ctx.clamp("temperature", temperature)
        if ctx.get("top_p") is not None:
            body["top_p"] = ctx.clamp("top_p", ctx.get("top_p"))
        if ctx.get("presence_penalty") is not None:
            # OpenAI's [-2, 2] onto ERNIE's penalty_score [1, 2], as Baidu's SDK maps it.
            body["penalty_score"] = ctx.clamp(
                "penalty_score", ctx.get("presence_penalty") / 4 + 1.5
            )
        max_tokens = ctx.get("max_completion_tokens", ctx.get("max_tokens"))
        if max_tokens is not None:
            body["max_output_tokens"] = int(ctx.clamp("max_output_tokens", max_tokens))
        sent = ctx.stops()[0]
        if sent:
            body["stop"] = sent
        user = ctx.get("user") or ctx.get("safety_identifier")
        if user:
            body["user_id"] = user
        self._response_format(ctx, body)
        if ctx.get("n", 1) > 1:
            ctx.unsupported(
                "n",
                "ERNIE returns one answer per request, and a stream cannot be fanned out",
                instead="you get one",
            )
        ctx.refuse(self.spec.unsupported)
        return body

    def _functions(self, ctx: ParamContext) -> tuple[list[JSONDict], Optional[str]]:
        """OpenAI tools as v1 ``functions``, and the name of a function to force, if any."""
        tools = ctx.get("tools")
        choice = ctx.get("tool_choice")
        if not tools or choice == "none":
            return [], None
        functions = []
        for tool in tools:
            function = tool["function"]
            functions.append(
                {
                    "name": function["name"],
                    "description": function.get("description", ""),
                    "parameters": function.get("parameters")
                    or {"type": "object", "properties": {}},
                }
            )
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            if name not in {f["name"] for f in functions}:
                raise ctx.error(
                    f"tool_choice names function {name!r}, which is not in tools",
                    param="tool_choice",
                )
            return functions, name
        if choice not in (None, "auto"):
            ctx.unsupported(
                "tool_choice",
                "ERNIE can force a named function or choose freely",
                instead=f"{choice!r} was sent as 'auto'",
            )
        return functions, None

    def _response_format(self, ctx: ParamContext, body: JSONDict) -> None:
        fmt = ctx.get("response_format")
        kind = fmt.get("type") if isinstance(fmt, dict) else fmt
        if kind is None:
            return
        if kind == "json_schema":
            ctx.unsupported(
                "response_format",
                "ERNIE returns JSON but does not enforce the schema",
                instead="json_schema was sent as json_object",
            )
            kind = "json_object"
        if kind not in ("text", "json_object"):
            raise ctx.error(
                f"response_format type must be text, json_object or json_schema, got {kind!r}",
                param="response_format",
            )
        body["response_format"] = kind  # v1 takes a plain string, not an object

    def chat_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        if not isinstance(body, dict) or (
            not isinstance(body.get("result"), str)
            and not isinstance(body.get("function_call"), dict)
        ):  # (``"result": null`` is no answer, not an empty one)
            raise self.invalid_body(body, "a chat response without 'result'")
        message: JSONDict = {"role": "assistant", "content": body.get("result") or ""}
        finish = self._finish(body, reply)
        function_call = body.get("function_call")
        if isinstance(function_call, dict) and function_call.get("name"):
            message["content"] = body.get("result") or None
            message["tool_calls"] = [_tool_call(function_call, body.get("id"), 0, self.new_id)]
            if function_call.get("thoughts"):
                message["thoughts"] = function_call["thoughts"]
            finish = "tool_calls"
        extras = {
            k: v
            for k, v in body.items()
            if k not in ("result", "function_call", "finish_reason", "usage", "object")
        }
        return {
            **extras,
            "id": body.get("id") or f"as-{self.new_id()[:10]}",
            "object": "chat.completion",
            "created": body.get("created") or int(self.clock()),
            "model": call.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": body.get("usage"),
        }

    def _finish(self, body: JSONDict, reply: Reply) -> Optional[str]:
        """v1's finish word, with its content-filter signals folded into ``content_filter``."""
        if body.get("need_clear_history") and not body.get("result"):
            return "content_filter"
        return self.finish_reason(body.get("finish_reason") or "normal", reply, body)

    def stream_parser(self, reply: Reply, call: CallContext) -> StreamParser:
        return QianfanStreamParser(self, reply, call)

    # ------------------------------------------------------------------ embeddings

    def embeddings_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        url = self.endpoint_url("embeddings", call)
        ctx = self.params(params, url)
        offered = call.info.dimensions if call.info is not None else []
        if ctx.dimensions(call.model, offered) is not None:
            ctx.unsupported("dimensions", f"{call.model} has a fixed size")
        texts = self.embedding_input(ctx, call)
        body: JSONDict = {"input": [texts] if isinstance(texts, str) else list(texts)}
        if params.get("user"):
            body["user_id"] = params["user"]
        return HTTPRequest("POST", url, json=body)

    def embeddings_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise self.invalid_body(body, "an embeddings response without 'data'")
        data = sorted(body["data"], key=lambda item: item.get("index", 0))
        return {
            "id": body.get("id"),
            "object": "list",
            "model": call.model,
            "data": [
                {
                    "object": "embedding",
                    "index": item.get("index", position),
                    "embedding": item["embedding"],
                }
                for position, item in enumerate(data)
            ],
            "usage": embedding_usage(body.get("usage")),
        }

    # ------------------------------------------------------------------ errors

    def error_fields(self, body: Any) -> tuple[Optional[str], Optional[str]]:
        # Reads only `_ERROR_KEYS` for the code: a body without them is no error.
        if isinstance(body, dict):
            if body.get("error_code") not in (None, 0, "0"):
                return str(body["error_code"]), body.get("error_msg")
            if isinstance(body.get("code"), str):  # BCE gateway bodies (IAM signing)
                return body["code"], body.get("message")
        return None, None

    def find_error(self, reply: Reply, body: Any) -> Optional[ProviderFault]:
        header_code = reply.headers.get("x-bce-error-code")
        if header_code and reply.status_code >= 400:
            message = reply.headers.get("x-bce-error-message")
            return self.make_error(reply, body, header_code, message)
        return super().find_error(reply, body)


#: The keys `QianfanAdapter.error_fields` finds a code under (v1 and BCE gateway bodies):
#: a stream event with neither is not looked at as an error.
_ERROR_KEYS = frozenset({"error_code", "code"})


class QianfanStreamParser(StreamParser):
    """v1 SSE events (``result`` increments, ``is_end``, cumulative usage) -> OpenAI chunks.

    An event that is only the next piece of text becomes a typed chunk directly
    (`_typed_chunks`), with no chunk dict to validate.
    """

    def __init__(
        self,
        adapter: QianfanAdapter,
        reply: Reply,
        call: CallContext,
        *,
        typed_chunks: bool = True,
    ) -> None:
        from ._typed_chunks import text_chunk  # the chunk types load with the first stream

        super().__init__(adapter, reply, call, typed_chunks=typed_chunks)
        self._make_text_chunk = text_chunk
        self._started = False
        self._created = int(adapter.clock())  # for events without their own

    def chunk(self, data: JSONDict, event: Optional[str]) -> Union[JSONDict, Translated]:
        if not _ERROR_KEYS.isdisjoint(data):
            code, message = self.adapter.error_fields(data)
            if code is not None:
                raise self.adapter.make_error(self.reply, data, code, message)
        elif self.typed_chunks:
            typed = self._text_chunk(data)
            if typed is not None:
                return self.typed(typed, data.get("usage"))
        delta: JSONDict = {}
        if not self._started:
            delta["role"] = "assistant"
            self._started = True
        if data.get("result"):
            delta["content"] = data["result"]
        finish = None
        function_call = data.get("function_call")
        if isinstance(function_call, dict) and function_call.get("name"):
            delta["tool_calls"] = [
                {**_tool_call(function_call, data.get("id"), 0, self.adapter.new_id), "index": 0}
            ]
            finish = "tool_calls"
        if data.get("is_end"):
            self.done = True
            adapter = self.adapter
            assert isinstance(adapter, QianfanAdapter)  # the adapter that made this parser
            finish = finish or adapter._finish(data, self.reply)
        chunk = {
            "id": data.get("id"),
            "object": "chat.completion.chunk",
            "created": data.get("created") or self._created,
            "model": self.call.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        if data.get("usage"):
            chunk["usage"] = data["usage"]  # cumulative: the stream layer keeps the last
        return chunk

    def _text_chunk(self, data: JSONDict) -> Optional[ChatCompletionChunk]:
        """The typed chunk `chunk` would give an event that is a piece of text and
        nothing else (no function call, not the end); else None, with nothing changed."""
        result, id, created = data.get("result"), data.get("id"), data.get("created")
        if (
            data.get("is_end")
            or data.get("function_call")
            or type(id) is not str
            or (result is not None and result.__class__ is not str)
        ):
            return None
        if not created:
            created = self._created
        elif created.__class__ is not int:
            return None
        role, self._started = not self._started, True
        return self._make_text_chunk(
            id, created, self.call.model, 0, result, None, role, {"provider": self.call.provider}
        )


class QianfanV2Adapter(OpenAICompatAdapter):
    """Qianfan v2 (``qianfan.baidubce.com/v2``): OpenAI-shaped, with ERNIE's message rules,
    ranges and thinking switch."""

    protocol = "qianfan"
    api = "v2"
    takes_token_ids = False
    unsent = OPENAI_SERVICE_PARAMS
    models_lack = frozenset({"logit_bias", "prediction", "verbosity"})
    # v2 takes text and image_url parts (vision models); no audio or file parts.
    # UNSURE (docs/unsure.md Q42): other part types (video_url) are sent unchanged.
    refused_parts = frozenset({"input_audio", "file"})

    @classmethod
    def make_credentials(
        cls, name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]]
    ) -> Credentials:
        return _credentials(name, spec, plan_keys(name, spec, keys))

    def chat_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        request = super().chat_request(params, call)
        request.json["model"] = self._v2_model(call)
        return self._with_appid(request)

    def chat_body(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        body = super().chat_body(ctx, call)
        info = call.info
        # openai's message objects, appended as they came back, carry fields v2 has no use
        # for (null refusal, audio ...; parsed and parsed_arguments from its helpers).
        messages = [
            without_openai_only_fields(m)
            if isinstance(m, dict) and m.get("role") == "assistant"
            else m
            for m in body["messages"]
        ]
        body["messages"] = repair_v2_messages(
            messages, ctx, last_user=info is not None and info.supports("last_user_turn")
        )
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                body[name] = ctx.clamp(name, body[name])
        # v2 documents max_tokens as its output limit; openai's newer name maps onto it.
        limit = body.pop("max_completion_tokens", None)
        if limit is not None:
            body["max_tokens"] = limit
        sent = ctx.stops()[0]
        if sent:
            body["stop"] = sent  # at most [params.stop] max_items; the rest are cut here
        self._reasoning(ctx, call, body)
        return body

    def emulated_stop(self, ctx: ParamContext) -> list[str]:
        """Stop words beyond ``[params.stop] max_items``, cut here. UNSURE: v2's own limit
        is not confirmed; v1's (4) is kept, so a longer list works either way."""
        return ctx.stops()[1]

    def _reasoning(self, ctx: ParamContext, call: CallContext, body: JSONDict) -> None:
        """``reasoning_effort`` as ``enable_thinking`` / ``thinking_budget`` (or as itself,
        for a model the catalogue lists efforts for); a forced tool call turns thinking
        off on a model that can stop (docs/providers/qianfan.md)."""
        effort = body.pop("reasoning_effort", None)
        info = call.info
        if info is not None and info.thinking is None and effort is not None:
            ctx.unsupported("reasoning_effort", f"{call.model} is not a thinking model")
            return
        if info is None:
            if effort is not None:
                body["reasoning_effort"] = effort  # an uncatalogued model: v2 takes it as is
            return
        plan = plan_reasoning(
            effort,
            info,
            budgets=self.spec.thinking_budgets,
            max_tokens=body.get("max_tokens"),
            error=lambda message: ctx.error(message, param="reasoning_effort"),
            model=f"{self.name}/{call.model}",
        )
        thinking = plan.thinking if plan is not None else None
        would_think = thinking if thinking is not None else info.thinking_by_default
        if forces_a_tool(body.get("tool_choice")) and (would_think or info.thinking == "always"):
            if info.thinking == "always":
                ctx.unsupported(
                    "tool_choice",
                    f"{call.model} always thinks, and thinking mode does not take a forced "
                    f"tool call",
                    instead="tool_choice was sent as 'auto'",
                )
                body["tool_choice"] = "auto"
            else:
                if effort is not None and thinking:
                    ctx.unsupported(
                        "reasoning_effort",
                        "tool_choice forces a tool call, which thinking mode does not take",
                        instead="thinking was turned off for this call",
                    )
                body["enable_thinking"] = False
                return
        if plan is None:
            return
        if plan.thinking is not None:
            body["enable_thinking"] = plan.thinking
        if plan.effort is not None:
            body["reasoning_effort"] = plan.effort
        # Only models whose entry gives a largest budget take one (not every thinking
        # model on v2 honours thinking_budget; X1 Turbo, for one, takes few parameters).
        takes_budget = info.max_thinking_budget is not None or info.thinking_budget_required
        if plan.thinking and plan.budget is not None and takes_budget:
            budget = _thinking_budget(plan.budget, body.get("max_tokens"))
            if budget is not None:
                body["thinking_budget"] = budget

    def embeddings_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        request = super().embeddings_request(params, call)
        request.json["model"] = self._v2_model(call)
        return self._with_appid(request)

    def _v2_model(self, call: CallContext) -> str:
        return call.info.v2_model if call.info is not None and call.info.v2_model else call.model

    def _with_appid(self, request: HTTPRequest) -> HTTPRequest:
        if self.spec.appid:
            request.headers["appid"] = self.spec.appid
        return request

    def auth_hint(self, reply: Reply) -> str:
        """Keys of an ambiguous form were taken as IAM keys: a refusal says so."""
        assumed = getattr(self.credentials, "assumed", None)
        return super().auth_hint(reply) + (f" (note: {assumed})" if assumed else "")


#: v2's smallest thinking budget (its API reference: default 16384, minimum 100).
_MIN_THINKING_BUDGET = 100


def _thinking_budget(planned: int, max_tokens: Any) -> Optional[int]:
    """The ``thinking_budget`` to send: the plan's (already under half of ``max_tokens``),
    raised to v2's minimum; None (send none) when that minimum would not stay below
    ``max_tokens``. Providers refuse a budget at or above the output limit, and a limit
    too small for the smallest budget leaves no budget to ask for: the model's own
    default applies, as when no effort is given. UNSURE (docs/unsure.md Q43): whether v2
    refuses such a budget or caps it; leaving it out is valid either way."""
    budget = max(planned, _MIN_THINKING_BUDGET)
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and budget >= max_tokens:
        return None
    return budget


# --------------------------------------------------------------------------- keys

#: The day Baidu shut the v1 API down on the public cloud.
V1_CLOSED_ON = "2026-08-31"
_IAM_HEX_KEY = re.compile(r"[0-9a-fA-F]{32}")
_APP_KEY = re.compile(r"[A-Za-z0-9]{24}")


def key_kind(access_key: str) -> str:
    """What an access key given as ``api_key`` is, by its form: ``"iam"`` (an IAM Access
    Key: ``ALTAK…`` or 32 hex digits), ``"app"`` (an application API Key: 24 letters and
    digits) or ``"unknown"``."""
    if access_key.startswith("ALTAK") or _IAM_HEX_KEY.fullmatch(access_key):
        return "iam"
    if _APP_KEY.fullmatch(access_key):
        return "app"
    return "unknown"


@dataclass(frozen=True)
class KeyPlan:
    """How a Qianfan client authenticates: which API, which kind of credential, and (for
    keys of an ambiguous form) why they were taken as IAM keys."""

    api: str  # "v1" | "v2"
    kind: str  # "bearer" (a bce-v3 key) | "app" (application keys) | "iam" (account keys)
    key: str
    secret: str = ""
    assumed: Optional[str] = None

    def __repr__(self) -> str:
        return f"KeyPlan(api={self.api!r}, kind={self.kind!r}, <keys redacted>)"


def plan_keys(name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]]) -> KeyPlan:
    """Which API and credential ``keys`` give (see the module docstring); raises, before
    any request, for application keys without ``api = "v1"`` and for incomplete keys."""
    v1 = spec.api == "v1"
    api_key, secret_key = keys.get("api_key"), keys.get("secret_key")
    iam_key, iam_secret = keys.get("iam_access_key"), keys.get("iam_secret_key")
    if api_key and api_key.startswith("bce-v3/"):
        if v1:
            raise ConfigError(
                f"provider {name!r}: a 'bce-v3/' API key works on v2 only, but api = \"v1\" "
                f"is set under [providers.{name}]; remove it to use v2"
            )
        return KeyPlan("v2", "bearer", api_key)
    if api_key and secret_key:
        kind = key_kind(api_key)
        if kind == "unknown" and keys.get("api_key_from") in _APP_KEY_VARIABLES:
            kind = "app"  # QIANFAN_AK / QIANFAN_SK hold an application's keys
        if kind == "iam":
            return KeyPlan(
                "v1" if v1 else "v2",
                "iam",
                api_key,
                secret_key,
                "api_key/secret_key were taken as IAM account keys (the access key has the "
                "form of an IAM Access Key)",
            )
        if kind == "unknown" and not v1:
            return KeyPlan(
                "v2",
                "iam",
                api_key,
                secret_key,
                "api_key/secret_key were taken as IAM account keys: the access key has "
                "neither an IAM Access Key's form ('ALTAK...' or 32 hex digits) nor an "
                "application API Key's (24 letters and digits)",
            )
        if v1:
            return KeyPlan("v1", "app", api_key, secret_key)
        if iam_key and iam_secret:  # application keys, but IAM keys reach v2
            return KeyPlan("v2", "iam", iam_key, iam_secret)
        raise ConfigError(_v1_closed(name))
    if iam_key and iam_secret:
        return KeyPlan("v1" if v1 else "v2", "iam", iam_key, iam_secret)
    if api_key:
        raise ConfigError(
            f"provider {name!r}: an access key needs its secret key (secret_key=..., "
            f"QIANFAN_SK, or secret_key under [providers.{name}]); a v2 API key alone "
            f"starts with 'bce-v3/'"
        )
    require_key(name, spec, keys, "api_key")  # raises, naming every way to give one
    raise AssertionError("unreachable")


#: The environment variables that hold an application's API Key (v1), not IAM keys.
_APP_KEY_VARIABLES = ("QIANFAN_AK",)


def _v1_closed(name: str) -> str:
    return (
        f"provider {name!r}: these are a Qianfan application's API Key and Secret Key "
        f"(24-character API Key), which work only on the v1 API, which Baidu shut down on "
        f"{V1_CLOSED_ON}. Create a v2 API key in the Qianfan console (API Key -> create; it "
        f"starts with 'bce-v3/') and pass it as api_key or QIANFAN_API_KEY, or use IAM "
        f"account keys (QIANFAN_ACCESS_KEY / QIANFAN_SECRET_KEY). A private deployment that "
        f'still serves v1 can opt in with api = "v1" under [providers.{name}].'
    )


def _credentials(name: str, spec: ProviderConfig, plan: KeyPlan) -> Credentials:
    if plan.kind == "bearer":
        return BearerKey(plan.key)
    if plan.kind == "app":
        assert spec.token_url is not None, "the qianfan table names its token_url"
        return QianfanAccessToken.shared(plan.key, plan.secret, token_url=spec.token_url)
    if plan.api == "v1":
        return BceSigner(plan.key, plan.secret)
    if spec.iam_token_url is None:
        raise ConfigError(f"provider {name!r} has no iam_token_url to mint v2 tokens with")
    return QianfanIamToken.shared(
        plan.key, plan.secret, iam_token_url=spec.iam_token_url, assumed=plan.assumed
    )


def _tool_call(
    function_call: JSONDict, response_id: Optional[str], index: int, new_id: Callable[[], str]
) -> JSONDict:
    """v1's single ``function_call`` as an OpenAI tool call with a unique id (from
    ``new_id`` when the answer has no id of its own)."""
    arguments = function_call.get("arguments")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments or {}, ensure_ascii=False)
    return {
        "id": f"call_{response_id or new_id()[:12]}_{index}",
        "type": "function",
        "function": {"name": function_call["name"], "arguments": arguments},
    }


# --------------------------------------------------------------------------- messages


def repair_messages(messages: Any, ctx: ParamContext) -> tuple[str, list[JSONDict]]:
    """OpenAI messages as v1 accepts them: (system prompt, alternating odd list from user).

    System and developer messages join the ``system`` field; tool results become
    ``function`` messages named after the call they answer, each right after the call it
    answers; consecutive same-role messages merge; empty messages go; a leading assistant
    turn is kept in the system prompt, a trailing one is followed by `CONTINUE_PROMPT`, and
    a user turn straight after a tool result is preceded by `BRIDGE_REPLY`. No text is
    dropped.
    """
    system: list[str] = []
    pending: dict[str, JSONDict] = {}  # tool calls awaiting their result, by call id
    out: list[JSONDict] = []

    def flush_pending() -> None:
        for call in pending.values():
            out.append(_call_turn(call))
        pending.clear()

    for index, message in enumerate(messages):
        role = message["role"]
        text = _text(message.get("content"), ctx, index)
        if role in ("tool", "function"):
            # v1 takes one call per assistant turn: each call is replayed right before its
            # result, so several parallel calls become alternating call/result pairs.
            call_id = message.get("tool_call_id", "")
            call = pending.pop(call_id, None) or (
                pending.pop(next(iter(pending))) if pending else None
            )
            name = message.get("name") or (call or {}).get("name", "")
            if call is not None:
                out.append(_call_turn(call))
            out.append({"role": "function", "name": name, "content": text or "{}"})
            continue
        flush_pending()
        if role in ("system", "developer"):
            if text:
                system.append(text)
        elif role == "assistant" and message.get("tool_calls"):
            for position, call in enumerate(message["tool_calls"]):
                function = call.get("function") or {}
                pending[call.get("id") or f"#{index}.{position}"] = {
                    "name": function.get("name", ""),
                    "arguments": function.get("arguments") or "{}",
                    # Text said alongside the calls rides on the first call's turn.
                    "text": text if position == 0 else "",
                }
        elif text:
            _append(out, role, text)
    flush_pending()
    while out and out[0]["role"] == "assistant" and "function_call" not in out[0]:
        # v1 conversations start with the user: an opening assistant line becomes context.
        system.append(f"(The assistant opened the conversation with: {out.pop(0)['content']})")
    if out and out[-1]["role"] == "assistant" and "function_call" not in out[-1]:
        out.append({"role": "user", "content": CONTINUE_PROMPT})
    if not out:
        raise ctx.error(
            "messages need at least one user message with text for Qianfan v1", param="messages"
        )
    return "\n\n".join(system), out


def _call_turn(call: JSONDict) -> JSONDict:
    """The assistant turn that made one function call."""
    return {
        "role": "assistant",
        "content": call["text"],
        "function_call": {"name": call["name"], "arguments": call["arguments"]},
    }


def _append(out: list[JSONDict], role: str, text: str) -> None:
    """Add a message keeping v1's alternation: a repeated role merges into the previous
    message, and a user turn right after a function result gets a brief assistant reply
    in between (v1 expects the assistant to speak after every result)."""
    last = out[-1] if out else None
    if last is not None and last["role"] == role and "function_call" not in last:
        last["content"] += "\n\n" + text
        return
    if role == "user" and last is not None and last["role"] == "function":
        out.append({"role": "assistant", "content": BRIDGE_REPLY})
    out.append({"role": role, "content": text})


def _text(content: Any, ctx: ParamContext, index: int) -> str:
    if content is None or isinstance(content, str):
        return content if content and content.strip() else ""
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(part.get("text", ""))
        else:
            kind = part.get("type") if isinstance(part, dict) else type(part).__name__
            raise ctx.error(
                f"messages[{index}] has a {kind!r} part; Qianfan v1 takes text only "
                f"(vision models are on v2: use a 'bce-v3/' API key)",
                param=f"messages[{index}].content",
            )
    return "\n".join(parts)


# --------------------------------------------------------------------------- v2 messages


def repair_v2_messages(messages: Any, ctx: ParamContext, *, last_user: bool) -> list[JSONDict]:
    """OpenAI messages as v2 accepts them (its chat reference, "messages的role说明").

    - System and developer messages become one leading ``system`` message.
    - After it, user and assistant alternate; tool results sit in the user slot (several
      in a row are allowed) and follow the assistant turn that called them.
    - Consecutive user messages merge, as do consecutive assistant messages (text,
      reasoning and tool calls); empty messages go.
    - An assistant turn before any user turn becomes context in the system message; a
      user turn straight after tool results gets `BRIDGE_REPLY` before it; a tool result
      with no call before it becomes text of the user turn.
    - The last message is a user or tool message (a trailing assistant turn is followed
      by `CONTINUE_PROMPT`); with ``last_user`` (ERNIE 4.5 / X1) it must be a user one.

    No text is dropped. The caller's message dicts are not changed.
    """
    system: list[str] = []
    out: list[JSONDict] = []
    for index, original in enumerate(messages):
        message = dict(original)
        role = message["role"]
        if role in ("system", "developer"):
            _check_text_only(message.get("content"), index, role, ctx)
            text = _plain_text(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "function":  # openai's legacy function result
            message["role"] = role = "tool"
        last = out[-1]["role"] if out else None
        if role == "assistant":
            if _blank(message.get("content")) and not message.get("tool_calls"):
                if not message.get("reasoning_content"):
                    continue
                message["content"] = ""
            if last is None and not message.get("tool_calls"):
                system.append(
                    "(The assistant opened the conversation with: "
                    f"{_plain_text(message.get('content'))})"
                )
            elif last == "assistant":
                _merge_assistant(out[-1], message)
            elif last is None:  # calls before any user turn: the user turn is implied
                out += [{"role": "user", "content": CONTINUE_PROMPT}, message]
            else:
                out.append(message)
        elif role == "tool":
            if _blank(message.get("content")):
                message["content"] = "{}"
            if last in ("assistant", "tool") and _answers_a_call(out):
                out.append(message)
            else:  # a result with no call before it: keep its text in the user turn
                name = message.get("name") or message.get("tool_call_id") or "a tool"
                text = f"(Result of {name}: {_plain_text(message.get('content'))})"
                _add_user(out, {"role": "user", "content": text})
        elif role == "user":
            if _blank(message.get("content")):
                continue
            _add_user(out, message)
        else:  # pragma: no cover - roles are checked before the adapter sees them
            raise ctx.error(f"messages[{index}] has an unknown role {role!r}", param="messages")
    if not out:
        raise ctx.error(
            "messages need at least one user message with text for Qianfan", param="messages"
        )
    if out[-1]["role"] == "assistant":
        out.append({"role": "user", "content": CONTINUE_PROMPT})
    elif out[-1]["role"] == "tool" and last_user:
        out += [
            {"role": "assistant", "content": BRIDGE_REPLY},
            {"role": "user", "content": CONTINUE_PROMPT},
        ]
    if system:
        out.insert(0, {"role": "system", "content": "\n\n".join(system)})
    return out


def _check_text_only(content: Any, index: int, role: str, ctx: ParamContext) -> None:
    """Refuse a non-text part in a system or developer message: v2's system message is
    text, so an image there would be dropped without a word (OpenAI refuses it too)."""
    for position, part in enumerate(content if isinstance(content, list) else []):
        kind = part.get("type") if isinstance(part, dict) else type(part).__name__
        if kind != "text":
            raise ctx.error(
                f"messages[{index}] is a {role} message with a part of type {kind!r}; "
                f"Qianfan takes images in user messages only",
                param=f"messages[{index}].content[{position}].type",
            )


def _answers_a_call(out: list[JSONDict]) -> bool:
    """Whether a tool result appended now follows an assistant turn that made calls."""
    for message in reversed(out):
        if message["role"] == "assistant":
            return bool(message.get("tool_calls"))
        if message["role"] != "tool":
            return False
    return False


def _add_user(out: list[JSONDict], message: JSONDict) -> None:
    """A user turn: merged into a user turn before it; after tool results, with a brief
    assistant reply in between (v2 wants the assistant to speak after the user slot)."""
    last = out[-1] if out else None
    if last is not None and last["role"] == "user":
        last["content"] = _join_content(last.get("content"), message.get("content"))
        return
    if last is not None and last["role"] == "tool":
        out.append({"role": "assistant", "content": BRIDGE_REPLY})
    out.append(message)


def _merge_assistant(into: JSONDict, message: JSONDict) -> None:
    into["content"] = _join_content(into.get("content"), message.get("content"))
    if message.get("tool_calls"):
        into["tool_calls"] = [*(into.get("tool_calls") or []), *message["tool_calls"]]
    reasoning = [r for r in (into.get("reasoning_content"), message.get("reasoning_content")) if r]
    if reasoning:
        into["reasoning_content"] = "\n\n".join(reasoning)


def _join_content(first: Any, second: Any) -> Any:
    """Two contents as one: text joined by a blank line, parts lists concatenated."""
    if _blank(first):
        return second if second is not None else ""
    if _blank(second):
        return first
    if isinstance(first, str) and isinstance(second, str):
        return f"{first}\n\n{second}"
    return [*_parts(first), *_parts(second)]


def _parts(content: Any) -> list[Any]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else list(content)


def _blank(content: Any) -> bool:
    if content is None:
        return True
    if isinstance(content, str):
        return not content.strip()
    return not content  # an empty parts list


def _plain_text(content: Any) -> str:
    """The text of a content (a string, or the text parts of a parts list)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )
