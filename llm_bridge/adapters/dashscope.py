"""Alibaba DashScope / Qwen: the native protocol, and compatible mode through the shared adapter.

Native DashScope (docs/providers/dashscope.md, "Which API") wraps the conversation as
``{model, input: {messages}, parameters: {...}}``; streaming is switched on by a header, not
the body; vision models live on a separate multimodal path with their own content parts
(``{"image": url}``, ``{"text": ...}``); usage is ``input_tokens``/``output_tokens`` and
repeats on every stream event; ``finish_reason`` is the *string* ``"null"`` mid-stream; in
cumulative mode every event repeats the whole text so far; errors are flat
``{code, message, request_id}`` bodies, SSE-framed on stream requests even when the
content type says JSON, and sometimes inside HTTP 200. This module turns all of that into
OpenAI's shapes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional, Union

from .._config import ModelInfo, ProviderConfig
from .._errors import ConfigError
from .._reasoning import forces_a_tool, plan_reasoning
from ._base import (
    Adapter,
    CallContext,
    HTTPRequest,
    JSONDict,
    Reply,
    StreamParser,
    Translated,
    _endpoint_url,
    embedding_usage,
    split_url,
    with_web_search,
    without_openai_only_fields,
)
from ._params import ParamContext, policy_refusal, tools_as_sent
from .openai_compat import OPENAI_SERVICE_PARAMS, OpenAICompatAdapter, OpenAICompatStreamParser

if TYPE_CHECKING:
    from .._shapes.chat import ChatCompletionChunk

__all__ = ["DashScopeAdapter", "DashScopeCompatAdapter"]

_TEXT_PATH = "services/aigc/text-generation/generation"
_MULTIMODAL_PATH = "services/aigc/multimodal-generation/generation"
_EMBEDDING_PATH = "services/embeddings/text-embedding/text-embedding"
#: Body keys of the native envelope; every other ``extra_body`` key is a parameter.
_ENVELOPE = frozenset({"model", "input", "parameters", "resources"})

#: OpenAI parameters the native API takes under the same name in ``parameters``.
_PASSTHROUGH = ("seed", "presence_penalty", "logprobs", "top_logprobs", "parallel_tool_calls", "n")


def _auth_hint(self: Adapter, reply: Reply) -> str:
    """The base adapter's 401 hint (region and plan the key went to), plus DashScope's
    Coding Plan rule: its sk-sp- keys work only on its own host, other keys only off it."""
    return Adapter.auth_hint(self, reply) + (
        "; a Coding Plan key (sk-sp-...) works only on the Coding Plan host, and a "
        "pay-as-you-go key only off it"
    )


class DashScopeAdapter(Adapter):
    """Native DashScope (``dashscope.aliyuncs.com/api/v1``)."""

    protocol = "dashscope"
    api = "native"
    # The multimodal path takes text, image, video and audio parts; OpenAI's file part has
    # no native counterpart (documents go through the file API and ``fileid://``).
    # UNSURE (docs/unsure.md D29): compatible mode sends it unchanged.
    refused_parts = frozenset({"file"})

    @classmethod
    def variant(
        cls, spec: ProviderConfig, keys: Mapping[str, Optional[str]], base_url: Optional[str]
    ) -> tuple[type[Adapter], Optional[str]]:
        """Compatible mode unless ``api = "native"``; an explicit base URL (argument,
        environment or config) wins over the table, and its path says which wire it is
        (``.../api/v1`` native, ``.../compatible-mode/v1`` or a listed root compatible)."""
        root = base_url or spec.base_url
        api = _api_of(spec, root) if root else spec.api or "compatible"
        root = root or _endpoint_url(spec, api)
        _check_key_plan(spec, keys.get("api_key"), root)
        return (cls if api == "native" else DashScopeCompatAdapter), root

    # ------------------------------------------------------------------ request

    def as_sent(self, params: JSONDict) -> JSONDict:
        """The call's tools and choice as this wire sends them (`tools_as_sent`), which
        its decisions (stream or not, ``n`` in one request or several, thinking) are made
        on, as its body is: the native API has no ``tool_choice`` of none, so such a
        call is sent without its tools."""
        sent = tools_as_sent(params)
        if sent.get("tool_choice") == "none" and sent.get("tools"):
            return {**sent, "tools": None, "tool_choice": None}
        return sent

    def must_stream(self, params: JSONDict, call: CallContext) -> bool:
        """A model that thinks only in streams, for a call that thinks (decided on the
        call as sent: `as_sent`)."""
        info = call.info
        if info is None:
            return False
        return info.stream_only or (
            info.stream_only_when_thinking and _thinking_decision(self.as_sent(params), call)[0]
        )

    def native_n_for(
        self, params: JSONDict, info: Optional[ModelInfo], extra_body: Mapping[str, Any]
    ) -> bool:
        """DashScope answers ``n > 1`` in one request only without tools and without
        thinking; thinking is turned off for such a call on a hybrid model, so a call with
        tools, to a model that always thinks, or with thinking forced in ``extra_body`` is
        the one to fan out."""
        return _native_n(self.as_sent(params), info, extra_body)

    def merge_extra_body(self, body: JSONDict, extra: Mapping[str, Any]) -> JSONDict:
        """``extra_body`` keys that are not part of the envelope are DashScope parameters
        (``enable_thinking``, ``enable_search``, ``top_k`` ...), so they go there."""
        body = dict(body)
        parameters = dict(body.get("parameters") or {})
        for key, value in extra.items():
            if key == "parameters" and isinstance(value, dict):
                parameters.update(value)
            elif key in _ENVELOPE and isinstance(value, dict) and isinstance(body.get(key), dict):
                body[key] = {**body[key], **value}
            elif key in _ENVELOPE:
                body[key] = value
            else:
                parameters[key] = value
        _clamp_budget(self, parameters, parameters.get("max_tokens"))
        body["parameters"] = parameters
        return body

    def chat_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        multimodal = self._multimodal(params, call)
        url = self.url(_MULTIMODAL_PATH if multimodal else _TEXT_PATH)
        ctx = self.params(self.as_sent(params), url)
        self.check_parts(ctx)
        source = _with_json_word(ctx.params["messages"], ctx.get("response_format"))
        messages = _with_tool_names([_message(m, multimodal) for m in source])
        self._check_messages(ctx, messages)
        body = {
            "model": call.model,
            "input": {"messages": messages},
            "parameters": self._parameters(ctx, call),
        }
        headers = self._headers()
        if call.stream:
            headers.update({"X-DashScope-SSE": "enable", "Accept": "text/event-stream"})
        return HTTPRequest("POST", url, headers=headers, json=body)

    def _headers(self) -> dict[str, str]:
        return {"X-DashScope-WorkSpace": self.spec.workspace} if self.spec.workspace else {}

    def _multimodal(self, params: JSONDict, call: CallContext) -> bool:
        has_media = any(
            isinstance(m.get("content"), list)
            and any(
                isinstance(p, dict) and p.get("type") not in (None, "text") for p in m["content"]
            )
            for m in params["messages"]
        )
        info = call.info
        vision = (
            info.supports("vision")
            if info is not None
            else any(stem in call.model.lower() for stem in self.spec.vision_name_stems)
        )
        if has_media and info is not None and not vision:
            url = self.url(_TEXT_PATH)
            current = [
                name
                for name, model in self.spec.models.items()
                if model.supports("vision") and not model.retired
            ]
            such_as = f" such as {', '.join(current[:3])}" if current else ""
            raise self.params(params, url).error(
                f"{call.model} is a text-only model and cannot take image, audio or video "
                f"parts; use a vision model{such_as}",
                param="messages",
            )
        return vision or has_media

    def _check_messages(self, ctx: ParamContext, messages: list[JSONDict]) -> None:
        last = messages[-1]["role"]
        if last not in ("user", "tool", "function"):
            raise ctx.error(
                f"DashScope needs the last message to be from the user or a tool, not {last!r}",
                param="messages",
            )

    def _parameters(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        parameters: JSONDict = {"result_format": "message"}
        if call.stream:
            # Incremental output is what thinking models require and what the official SDK
            # now always asks for; cumulative streams (extra_body) are diffed by the parser.
            parameters["incremental_output"] = True
        for name in ("temperature", "top_p"):
            value = ctx.get(name)
            if value is not None:
                parameters[name] = ctx.clamp(name, value)
        # The native API names the limit max_tokens (docs/providers/dashscope.md, "Parameters").
        max_tokens = _max_tokens(ctx)
        if max_tokens is not None:
            parameters["max_tokens"] = max_tokens
        for name in _PASSTHROUGH:
            value = ctx.get(name)
            if value is not None:
                parameters[name] = value
        stop = ctx.get("stop")
        if stop:
            parameters["stop"] = stop
        if ctx.get("tools") and ctx.get("tool_choice") != "none":
            parameters["tools"] = ctx.get("tools")
            choice = ctx.get("tool_choice")
            if choice == "required":
                ctx.unsupported(
                    "tool_choice",
                    "DashScope accepts auto, none or a named function",
                    instead="'required' was sent as 'auto'",
                )
            elif choice is not None:
                parameters["tool_choice"] = choice
        if ctx.get("n") is not None:
            parameters["n"] = _choice_count(ctx, call)
        fmt = _response_format(ctx, call)
        if fmt:
            parameters["response_format"] = fmt
        parameters.update(_thinking_fields(self, ctx, call, max_tokens))
        search = self.web_search(ctx, call)  # enable_search, from providers/dashscope.toml
        if search is not None:
            with_web_search(parameters, search)
        ctx.refuse(self.spec.unsupported)
        return parameters

    # ------------------------------------------------------------------ response

    def chat_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        output = body.get("output") if isinstance(body, dict) else None
        if not isinstance(output, dict):
            raise self.invalid_body(body, "a response without 'output'")
        choices = []
        for position, choice in enumerate(_choices(output)):
            message = dict(choice.get("message") or {})
            message["role"] = message.get("role") or "assistant"
            message["content"] = _text(message.get("content"))
            if message.get("tool_calls"):
                message["tool_calls"] = self.function_tool_calls(message["tool_calls"])
                message["content"] = message["content"] or None
            entry = {
                "index": choice.get("index", position),
                "message": message,
                "finish_reason": _finish(choice.get("finish_reason")),
            }
            if isinstance(choice.get("logprobs"), dict):  # (OpenAI's shape: `logprobs: true`)
                entry["logprobs"] = choice["logprobs"]
            choices.append(entry)
        return {
            "id": body.get("request_id") or "",
            "object": "chat.completion",
            "created": int(self.clock()),
            "model": call.model,
            "choices": choices,
            "usage": openai_usage(body.get("usage")),
            "request_id": body.get("request_id"),
            **{k: v for k, v in output.items() if k in ("search_info", "tool_info")},
        }

    function_tool_calls = OpenAICompatAdapter.function_tool_calls

    def stream_parser(self, reply: Reply, call: CallContext) -> StreamParser:
        return DashScopeStreamParser(self, reply, call)

    # ------------------------------------------------------------------ embeddings

    def embeddings_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        url = self.url(_EMBEDDING_PATH)
        ctx = self.params(params, url)
        offered = call.info.dimensions if call.info is not None else []
        texts = self.embedding_input(ctx, call)
        parameters: JSONDict = {}
        dimensions = ctx.dimensions(call.model, offered)
        if dimensions is not None:
            parameters["dimension"] = dimensions
        body = {
            "model": call.model,
            "input": {"texts": [texts] if isinstance(texts, str) else list(texts)},
            "parameters": parameters,
        }
        return HTTPRequest("POST", url, headers=self._headers(), json=body)

    def embeddings_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        output = body.get("output") if isinstance(body, dict) else None
        if not isinstance(output, dict) or not isinstance(output.get("embeddings"), list):
            raise self.invalid_body(body, "an embeddings response without 'embeddings'")
        items = sorted(output["embeddings"], key=lambda item: item.get("text_index", 0))
        return {
            "object": "list",
            "model": call.model,
            "data": [
                {
                    "object": "embedding",
                    "index": item.get("text_index", position),
                    "embedding": item["embedding"],
                }
                for position, item in enumerate(items)
            ],
            "usage": embedding_usage(body.get("usage")),
            "request_id": body.get("request_id"),
        }

    # ------------------------------------------------------------------ errors

    auth_hint = _auth_hint

    def error_fields(self, body: Any) -> tuple[Optional[str], Optional[str]]:
        # Reads only `_ERROR_KEYS` for the code: a body without them is no error.
        if not isinstance(body, dict):
            return None, None
        if isinstance(body.get("error"), dict):  # the OpenAI-style 404 some gateways send
            error = body["error"]
            return error.get("code") or error.get("type"), error.get("message")
        code = body.get("code")
        return (str(code) if code else None), body.get("message")


#: The keys `DashScopeAdapter.error_fields` finds a code under (native and OpenAI-style
#: bodies): a stream event with neither, and not named ``error``, is no error.
_ERROR_KEYS = frozenset({"code", "error"})


class DashScopeStreamParser(StreamParser):
    """Native SSE events -> OpenAI chunks, for incremental and cumulative streams alike.

    In cumulative mode each event repeats everything so far (text, reasoning and tool-call
    arguments); only the new suffix becomes the delta. In incremental mode the suffix is the
    whole piece, so the same diffing code serves both.

    An event that is the one choice's next piece of text or reasoning becomes a typed
    chunk directly (`_text_chunk`), with no chunk dict to validate.
    """

    def __init__(
        self,
        adapter: DashScopeAdapter,
        reply: Reply,
        call: CallContext,
        *,
        typed_chunks: bool = True,
    ) -> None:
        from ._typed_chunks import text_chunk  # the chunk types load with the first stream

        super().__init__(adapter, reply, call, typed_chunks=typed_chunks)
        self._make_text_chunk = text_chunk
        self.cumulative = not _incremental(call)
        self._seen: dict[tuple[int, str], str] = {}  # (choice, field) -> text so far
        self._tools_seen: dict[tuple[int, int], JSONDict] = {}
        self._started: set[int] = set()
        self._created = int(adapter.clock())  # one stream, one creation time (as OpenAI's)

    def chunk(self, data: JSONDict, event: Optional[str]) -> Union[JSONDict, Translated]:
        if event == "error" or not _ERROR_KEYS.isdisjoint(data):
            code, message = self.adapter.error_fields(data)
            if event == "error" or code is not None:
                raise self.adapter.make_error(self.reply, data, code, message)
        output = data.get("output") or {}
        choices = output.get("choices")
        if type(choices) is not list:
            choices = _choices(output)
        request_id = data.get("request_id")
        if self.typed_chunks and len(choices) == 1:
            typed = self._text_chunk(choices[0], request_id)
            if typed is not None:
                return self.typed(typed, data.get("usage"))
        chunk: JSONDict = {
            "id": request_id or "",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self.call.model,
            "choices": [self._choice(position, choice) for position, choice in enumerate(choices)],
            "request_id": request_id,
        }
        usage = data.get("usage")
        if usage:
            chunk["usage"] = usage  # running figures: the stream layer keeps the last
        return chunk

    def usage_of(self, usage: JSONDict) -> Optional[JSONDict]:
        return openai_usage(usage)

    def _text_chunk(self, choice: Any, request_id: Any) -> Optional[ChatCompletionChunk]:
        """The typed chunk `_choice` would give the one choice, if it is a piece of text or
        reasoning and nothing else (no tool calls, no finish word); else None, with
        nothing changed."""
        if choice.__class__ is not dict:
            return None
        message = choice.get("message")
        index = choice.get("index", 0)
        if (
            message.__class__ is not dict
            or index.__class__ is not int
            or choice.get("finish_reason") not in _NOT_FINISHED
            or message.get("tool_calls")
            or choice.get("logprobs")
            or (request_id is not None and request_id.__class__ is not str)
        ):
            return None
        content = message.get("content")
        reasoning = message.get("reasoning_content")
        if (content is not None and content.__class__ is not str) or (
            reasoning is not None and reasoning.__class__ is not str
        ):
            return None  # (multimodal content parts take the general way)
        if self.cumulative:
            content = self._new_text(index, "content", content)
            reasoning = self._new_text(index, "reasoning_content", reasoning)
        role = index not in self._started
        self._started.add(index)
        return self._make_text_chunk(
            request_id or "",
            self._created,
            self.call.model,
            index,
            content,
            reasoning,
            role,
            {"request_id": request_id, "provider": self.call.provider},
        )

    def _choice(self, position: int, choice: JSONDict) -> JSONDict:
        """One native choice as a delta: any choice (`_text_chunk` takes a plain piece of
        text or reasoning straight to its typed chunk)."""
        index = choice.get("index", position)
        message = choice.get("message") or {}
        delta: JSONDict = {}
        if index not in self._started:
            delta["role"] = "assistant"
            self._started.add(index)
        if "reasoning_content" in message:
            piece = self._new_text(index, "reasoning_content", _text(message["reasoning_content"]))
            if piece:
                delta["reasoning_content"] = piece
        content = message.get("content")
        if content:
            if content.__class__ is not str:
                content = _text(content)
            if self.cumulative:
                content = self._new_text(index, "content", content)
            if content:
                delta["content"] = content
        if message.get("tool_calls"):
            calls = [
                self._tool_delta(index, position, call)
                for position, call in enumerate(message["tool_calls"])
            ]
            calls = [call for call in calls if call is not None]
            if calls:
                delta["tool_calls"] = calls
        finish = choice.get("finish_reason")
        if finish in _NOT_FINISHED:
            finish = None
        else:
            self.done = True
        out = {"index": index, "delta": delta, "finish_reason": finish}
        if isinstance(choice.get("logprobs"), dict):  # (OpenAI's shape: `logprobs: true`)
            out["logprobs"] = choice["logprobs"]
        return out

    def _new_text(self, index: int, field: str, text: Optional[str]) -> str:
        if not text:
            return ""
        if not self.cumulative:
            return text
        before = self._seen.get((index, field), "")
        self._seen[(index, field)] = text
        # Normally a prefix; if the provider rewrote earlier text, send it all again.
        return text[len(before) :] if text.startswith(before) else text

    def _tool_delta(self, index: int, position: int, call: JSONDict) -> Optional[JSONDict]:
        slot = call.get("index", position)
        function = call.get("function") or {}
        seen = self._tools_seen.setdefault((index, slot), {"arguments": "", "announced": False})
        arguments = function.get("arguments") or ""
        if self.cumulative:
            piece = (
                arguments[len(seen["arguments"]) :]
                if arguments.startswith(seen["arguments"])
                else arguments
            )
            seen["arguments"] = arguments
        else:
            piece = arguments
        delta: JSONDict = {"index": slot}
        if not seen["announced"] and (call.get("id") or function.get("name")):
            seen["announced"] = True
            delta.update(
                {
                    "id": call.get("id"),
                    "type": "function",
                    "function": {"name": function.get("name") or "", "arguments": piece},
                }
            )
            return delta
        if not piece:
            return None
        delta["function"] = {"arguments": piece}
        return delta


class DashScopeCompatAdapter(OpenAICompatAdapter):
    """DashScope compatible mode (``/compatible-mode/v1``): OpenAI-shaped, workspace aware.

    What it adds to the OpenAI wire: the word "JSON" for ``json_object``, the token limit
    as ``max_completion_tokens``, ``reasoning_effort`` as ``enable_thinking`` and
    ``thinking_budget``, thinking off where the model refuses it (structured output, forced
    tool choice), 401 errors naming the region and plan, and cache-creation usage kept.
    """

    protocol = "dashscope"
    api = "compatible"
    takes_token_ids = False
    unsent = OPENAI_SERVICE_PARAMS
    models_lack = frozenset({"logit_bias", "prediction", "verbosity"})

    def as_sent(self, params: JSONDict) -> JSONDict:
        """As `DashScopeAdapter.as_sent`; compatible mode takes ``tool_choice`` none with
        the tools."""
        return tools_as_sent(params)

    def must_stream(self, params: JSONDict, call: CallContext) -> bool:
        return DashScopeAdapter.must_stream(self, params, call)  # type: ignore[arg-type]

    def native_n_for(
        self, params: JSONDict, info: Optional[ModelInfo], extra_body: Mapping[str, Any]
    ) -> bool:
        """As `DashScopeAdapter.native_n_for`: one request serves ``n`` only without tools
        and without thinking."""
        return _native_n(self.as_sent(params), info, extra_body)

    def chat_body(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        body = super().chat_body(ctx, call)
        # (openai's message objects, appended as they came back, carry fields compatible
        # mode has no use for: null refusal, audio ...; parsed from its helpers)
        messages = [
            without_openai_only_fields(m)
            if isinstance(m, dict) and m.get("role") == "assistant"
            else _as_system(m)
            for m in body["messages"]
        ]
        body["messages"] = _with_json_word(messages, ctx.get("response_format"))
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                body[name] = ctx.clamp(name, body[name])
        # UNSURE (docs/providers/dashscope.md): max_tokens is reported deprecated in
        # favour of max_completion_tokens (2026-04); the newer name is accepted either way.
        max_tokens = _max_tokens(ctx)
        body.pop("max_tokens", None)
        if max_tokens is not None:
            body["max_completion_tokens"] = max_tokens
        body.pop("reasoning_effort", None)
        if ctx.get("n") is not None:
            body["n"] = _choice_count(ctx, call)
        if _response_format(ctx, call) is None:
            body.pop("response_format", None)
        body.update(_thinking_fields(self, ctx, call, max_tokens))
        return body

    def chat_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        return self._workspace(super().chat_request(params, call))

    def merge_extra_body(self, body: JSONDict, extra: Mapping[str, Any]) -> JSONDict:
        body = {**body, **extra}
        _clamp_budget(self, body, body.get("max_completion_tokens") or body.get("max_tokens"))
        return body

    def chat_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        data = super().chat_response(reply, body, call)
        if isinstance(data.get("usage"), dict):
            data["usage"] = _with_cache_details(data["usage"])
        return data

    def stream_parser(self, reply: Reply, call: CallContext) -> StreamParser:
        return _CompatStreamParser(self, reply, call)

    def embeddings_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        return self._workspace(super().embeddings_request(params, call))

    def serves_responses(self, info: Optional[ModelInfo]) -> bool:
        """Compatible mode serves the Responses API for the models the catalogue marks
        ``responses`` (help.aliyun.com: compatibility-with-openai-responses-api)."""
        return info is not None and info.supports("responses")

    def responses_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        """The request as is, to ``/compatible-mode/v1/responses``, with DashScope's
        sampling ranges kept (it processes only the parameters it lists)."""
        url = self.url("responses")
        ranges = self.params(params, url)
        body = dict(params)
        body["model"] = call.model
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                body[name] = ranges.clamp(name, body[name])
        return self._workspace(HTTPRequest("POST", url, json=body))

    auth_hint = _auth_hint

    def _workspace(self, request: HTTPRequest) -> HTTPRequest:
        if self.spec.workspace:
            request.headers["X-DashScope-WorkSpace"] = self.spec.workspace
        return request


class _CompatStreamParser(OpenAICompatStreamParser):
    """OpenAI-shaped stream events; the usage chunk's cache figures normalised."""

    def usage_of(self, usage: JSONDict) -> Optional[JSONDict]:
        return _with_cache_details(usage)


# --------------------------------------------------------------------------- helpers


def openai_usage(usage: Any) -> Optional[JSONDict]:
    """DashScope's ``input_tokens``/``output_tokens`` in OpenAI's names, details kept."""
    if not isinstance(usage, dict) or not usage:
        return None
    prompt = usage.get("input_tokens", 0)
    completion = usage.get("output_tokens", 0)
    result: JSONDict = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": usage.get("total_tokens", prompt + completion),
    }
    reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
    if reasoning is not None:
        result["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    details = dict(usage.get("prompt_tokens_details") or usage.get("input_tokens_details") or {})
    if "cached_tokens" not in details and usage.get("cached_tokens") is not None:
        details["cached_tokens"] = usage["cached_tokens"]  # a flat variant (UNSURE)
    if details:
        result["prompt_tokens_details"] = details
    return _with_cache_details(result)


def _with_cache_details(usage: JSONDict) -> JSONDict:
    """Cache tiers in one place, whichever API reported them.

    DashScope reports implicit and explicit cache hits as
    ``prompt_tokens_details.cached_tokens`` and explicit cache creation as
    ``cache_creation_input_tokens`` (with ``cache_creation`` and ``cache_type``) beside it.
    Those provider keys stay; ``cache_write_tokens`` (the name the response types carry)
    repeats the creation count, and ``cached_tokens`` is 0 rather than absent when the
    details exist, so cost and ledger code read one pair of names.
    """
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict) or not details:
        return usage
    details = dict(details)
    created = details.get("cache_creation_input_tokens")
    if created is None and isinstance(details.get("cache_creation"), dict):
        created = sum(v for v in details["cache_creation"].values() if isinstance(v, int)) or None
    if created is not None:
        details.setdefault("cache_creation_input_tokens", created)
        details.setdefault("cache_write_tokens", created)
    details.setdefault("cached_tokens", 0)
    return {**usage, "prompt_tokens_details": details}


def _choices(output: JSONDict) -> list[JSONDict]:
    """``output.choices``, or the ``result_format: text`` shape as one choice."""
    if isinstance(output.get("choices"), list):
        return output["choices"]
    if "text" in output:
        return [
            {
                "message": {"role": "assistant", "content": output.get("text")},
                "finish_reason": output.get("finish_reason"),
            }
        ]
    return []


#: How DashScope says "not finished": the string "null", mostly.
_NOT_FINISHED = (None, "null", "")


def _finish(value: Any) -> Optional[str]:
    """DashScope marks "not finished" with the string "null"."""
    return None if value in _NOT_FINISHED else value


def _text(content: Any) -> Optional[str]:
    """Message content as a string; the multimodal endpoint answers with ``[{"text": ...}]``."""
    if content.__class__ is list:
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content


def _api_of(spec: ProviderConfig, root: str) -> str:
    """Which wire an explicit root speaks: a listed endpoint's api, else its path's."""
    endpoint = spec.endpoint_of(root)
    if endpoint is not None:
        return endpoint.api
    path = split_url(root)[2].rstrip("/")
    if path.endswith("/api/v1"):
        return "native"
    if "compatible-mode" in path:
        return "compatible"
    return spec.api or "compatible"


#: Coding Plan keys start so; they work only on the plan's own host.
_CODING_KEY_PREFIX = "sk-sp-"


def _check_key_plan(spec: ProviderConfig, key: Optional[str], root: Optional[str]) -> None:
    """A Coding-Plan key (``sk-sp-``) off the plan's host fails here, before any request
    (the host would answer 401). On the plan's host, `Adapter.create` warns about the
    plan's terms."""
    if not key or not key.startswith(_CODING_KEY_PREFIX) or not root:
        return
    endpoint = spec.endpoint_of(root)
    coding = [e for e in spec.endpoints if e.plan == "coding"]
    if endpoint is not None and endpoint.plan != "coding":
        hosts = ", ".join(e.url for e in coding) or "the Coding Plan host"
        raise ConfigError(
            f"dashscope: this API key (sk-sp-...) belongs to the Coding Plan, which works only "
            f"at {hosts}, but it would be sent to {endpoint.describe()}, which refuses it "
            f'(401). Set plan = "coding" under [providers.dashscope] to use the plan, or use a '
            f"pay-as-you-go key (sk-...) for this endpoint. Note that the Coding Plan's terms "
            f"forbid its use from scripts and application back-ends."
        )


def _max_tokens(ctx: ParamContext) -> Optional[int]:
    """The caller's token limit, whichever of OpenAI's two names carried it."""
    return ctx.get("max_completion_tokens", ctx.get("max_tokens"))


def _structured_format(params: Mapping[str, Any]) -> Optional[str]:
    """The structured-output type asked for (``json_object`` or ``json_schema``), else None.

    DashScope serves both only in non-thinking mode ("思考模式的模型暂不支持结构化输出功能",
    help.aliyun.com/zh/model-studio/json-mode). A ``json_schema`` the model lacks arrives
    here already emulated as ``json_object`` (`llm_bridge._structured`), or, when only
    deciding whether to stream (`must_stream`), still as ``json_schema``: either way the
    call is one to serve without thinking."""
    fmt = params.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    return kind if kind in ("json_object", "json_schema") else None


def _response_format(ctx: ParamContext, call: CallContext) -> Optional[JSONDict]:
    """The ``response_format`` to send: the caller's, except structured output for a model
    that always thinks. DashScope serves structured output only in non-thinking mode, and
    such a model cannot leave it; the messages still ask for JSON (`_with_json_word`, or
    the schema instruction of an emulated ``json_schema``), so the policy reports the
    format as not sent. UNSURE (D28 in docs/unsure.md): whether DashScope refuses the
    format on such a model or ignores it; not sending it is right either way."""
    fmt = ctx.get("response_format")
    info = call.info
    if _structured_format(ctx.params) and info is not None and info.thinking == "always":
        ctx.unsupported(
            "response_format",
            f"{call.model} always thinks, and DashScope serves structured output only in "
            f"non-thinking mode",
            instead="it was not sent (the messages ask for JSON)",
        )
        return None
    return fmt if isinstance(fmt, dict) else None


def _choice_count(ctx: ParamContext, call: CallContext) -> int:
    """``n`` as DashScope serves it, under the unsupported-parameter policy where it cannot.

    Its chat reference: ``n`` (1 to ``[params.n] max``) is served by Qwen3 in non-thinking
    mode only, and must be 1 when ``tools`` are given. A hybrid model stops thinking for an
    ``n > 1`` call without tools (`_thinking_decision`); a call with tools, or one that
    still thinks (a model that always thinks, or ``enable_thinking`` forced in
    ``extra_body``), gets one choice, where the provider would answer one silently.
    Non-stream calls of that kind are sent as ``n`` one-choice requests instead where the
    engine asks `DashScopeAdapter.native_n_for`. A larger ``n`` is cut to the maximum,
    where DashScope would refuse the request."""
    n = int(ctx.get("n"))
    if n > 1 and _sends_tools(ctx.params):
        ctx.unsupported(
            "n",
            "DashScope returns one choice when tools are given",
            instead=f"n={n} was sent as n=1",
        )
        return 1
    if n > 1 and _thinking_decision(ctx.params, call)[0]:
        ctx.unsupported(
            "n",
            f"{call.model} thinks for this call, and DashScope returns one choice in thinking mode",
            instead=f"n={n} was sent as n=1",
        )
        return 1
    rule = ctx.rules.get("n")
    top = int(rule.max) if rule is not None and rule.max is not None else n
    if n <= top:
        return n
    ctx.unsupported(
        "n",
        f"{call.model} returns 1 to {top} choices per request",
        instead=f"n={n} was sent as n={top}",
    )
    return top


def _asks_n(params: Mapping[str, Any]) -> int:
    """The ``n`` a call asks for (1 when absent)."""
    n = params.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def _sends_tools(params: Mapping[str, Any]) -> bool:
    """Whether the call gives ``tools`` (DashScope then returns one choice)."""
    return bool(params.get("tools"))


def _native_n(params: JSONDict, info: Optional[ModelInfo], extra_body: Mapping[str, Any]) -> bool:
    """Whether one request serves the call's ``n`` (see `_choice_count`), judged on the
    call as sent (``params``: the adapter's `as_sent`)."""
    if _asks_n(params) <= 1:
        return True
    if _sends_tools(params) or (info is not None and info.thinking == "always"):
        return False
    return _forced_thinking(extra_body) is not True


def _forced_thinking(extra_body: Mapping[str, Any]) -> Optional[bool]:
    """The caller's ``enable_thinking`` in ``extra_body`` (or its ``parameters``), which
    always wins; None when it sets none."""
    nested = extra_body.get("parameters")
    for source in (extra_body, nested if isinstance(nested, dict) else {}):
        if "enable_thinking" in source:
            return bool(source["enable_thinking"])
    return None


#: Why thinking was turned off for a call: the parameter that needed it off, and the text.
_TurnedOff = tuple[str, str]


def _thinking_decision(
    params: Mapping[str, Any], call: CallContext
) -> tuple[bool, Optional[_TurnedOff]]:
    """Whether the call thinks, and (the parameter, why) when this module turned thinking
    off (None otherwise). The caller's ``extra_body`` ``enable_thinking`` always wins.

    A hybrid model stops thinking for what DashScope serves only without it: structured
    output, a forced tool call, and several choices (``n > 1`` without tools; with tools
    one choice comes back either way, `_choice_count`). Without ``reasoning_effort`` the
    model's default decides (``thinking_by_default``: Qwen3.5 and later, open-source
    Qwen3), so the same guards hold for a call that says nothing about thinking."""
    forced = _forced_thinking(call.extra_body)
    if forced is not None:
        return forced, None
    info = call.info
    effort = params.get("reasoning_effort")
    always = info is not None and info.thinking == "always"
    if effort is not None:
        thinking = always or effort not in ("none", "minimal")
    else:
        thinking = info is not None and (always or info.thinking_by_default)
    if not thinking or info is None or info.thinking != "hybrid":
        return thinking, None
    structured = _structured_format(params)
    if structured is not None:
        return False, (
            "response_format",
            f"response_format {structured} is served only in non-thinking mode",
        )
    if params.get("tools") and forces_a_tool(params.get("tool_choice")):
        return False, (
            "tool_choice",
            "DashScope refuses tool_choice 'required' or a named function in thinking mode",
        )
    if _asks_n(params) > 1 and not _sends_tools(params):
        return False, (
            "n",
            f"DashScope returns n={_asks_n(params)} choices only in non-thinking mode",
        )
    return True, None


def _thinking_fields(
    adapter: Adapter, ctx: ParamContext, call: CallContext, max_tokens: Optional[int]
) -> JSONDict:
    """``enable_thinking`` and ``thinking_budget`` for the call (both APIs name them so).

    ``reasoning_effort`` is planned from the catalogue (`plan_reasoning`); a hybrid model
    stops thinking for a call it cannot serve while thinking (the unsupported-parameter
    policy warns, stays silent or refuses); and a thinking call with a token limit gets a
    budget below it (the provider's default budget can exceed a client's limit: a 400).
    """
    info = call.info
    fields: JSONDict = {}
    effort = ctx.get("reasoning_effort")
    if effort is not None:
        plan = plan_reasoning(
            effort,
            info,
            budgets=adapter.spec.thinking_budgets,
            max_tokens=max_tokens,
            error=lambda text: ctx.error(text, param="reasoning_effort"),
            model=f"{adapter.name}/{call.model}",
        )
        if plan is not None:
            if plan.thinking is not None:
                fields["enable_thinking"] = plan.thinking
            if plan.thinking and plan.budget is not None:
                fields["thinking_budget"] = plan.budget
        elif info is not None and not info.supports("reasoning"):
            ctx.unsupported("reasoning_effort", f"{call.model} has no thinking mode")
        else:  # a model the catalogue does not describe: the switch alone
            fields["enable_thinking"] = effort not in ("none", "minimal")
    thinking, turned_off = _thinking_decision(ctx.params, call)
    if turned_off is not None:
        if effort is not None:  # thinking the caller asked for (not the model's default)
            _report_thinking_off(adapter, ctx, call, *turned_off)
        fields["enable_thinking"] = False
        fields.pop("thinking_budget", None)
    elif (
        thinking
        and info is not None
        and info.thinking is not None
        and max_tokens is not None
        and max_tokens >= 2
        and "thinking_budget" not in fields
        and "thinking_budget" not in call.extra_body
    ):
        budget = max_tokens // 2
        if info.max_thinking_budget is not None:
            budget = min(budget, info.max_thinking_budget)
        fields["thinking_budget"] = budget
    return fields


def _report_thinking_off(
    adapter: Adapter, ctx: ParamContext, call: CallContext, param: str, why: str
) -> None:
    """Apply the unsupported-parameter policy to thinking the caller asked for with
    ``reasoning_effort`` and this call cannot have because of ``param`` (``why``). A model
    that thinks only by default is switched off silently: the caller asked for nothing
    that was dropped."""
    message = f"{adapter.name}: {call.model}: {why}"
    if ctx.policy == "error":
        raise ctx.error(policy_refusal(message), param=param)
    if ctx.policy == "warn":
        adapter._warn(param, f"{message}, so thinking was turned off for this call")


def _clamp_budget(adapter: Adapter, body: JSONDict, max_tokens: Any) -> None:
    """A caller's ``thinking_budget`` (extra_body) at or above the token limit is cut to half
    of it: DashScope answers such a request with a 400."""
    budget = body.get("thinking_budget")
    if (
        isinstance(budget, int)
        and isinstance(max_tokens, int)
        and max_tokens >= 2
        and budget >= max_tokens
    ):
        body["thinking_budget"] = max_tokens // 2
        adapter._warn(
            "thinking_budget",
            f"{adapter.name}: thinking_budget={budget} is not below the token limit "
            f"{max_tokens} (DashScope refuses that); {max_tokens // 2} was sent",
        )


#: Added to a conversation that asks for json_object without saying "JSON" (DashScope
#: refuses such requests): the smallest change that makes the call valid.
JSON_HINT = "Answer in JSON."


def _with_json_word(messages: list[Any], fmt: Any) -> list[Any]:
    """``messages``, with "JSON" added when ``json_object`` is asked for and no message
    mentions it: appended to the first system message, or as a new system message."""
    if not (isinstance(fmt, dict) and fmt.get("type") == "json_object"):
        return messages
    if any("json" in text.lower() for text in _texts(messages)):
        return messages
    messages = list(messages)
    first = messages[0] if messages else None
    if isinstance(first, dict) and first.get("role") in ("system", "developer"):
        content = first.get("content")
        if isinstance(content, str):
            content = f"{content}\n\n{JSON_HINT}" if content else JSON_HINT
        elif isinstance(content, list):
            content = [*content, {"type": "text", "text": JSON_HINT}]
        else:
            content = JSON_HINT
        messages[0] = {**first, "content": content}
    else:
        messages.insert(0, {"role": "system", "content": JSON_HINT})
    return messages


def _texts(messages: list[Any]) -> Iterator[str]:
    """The text of ``messages``: string contents and the ``text`` of content parts (in
    OpenAI's form and the native API's), never an image's URL or inline data, where
    "json" may occur by chance."""
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            yield content
        for part in content if isinstance(content, list) else ():
            text = part.get("text") if isinstance(part, dict) else None
            if isinstance(text, str):
                yield text


def _as_system(message: Any) -> Any:
    """A ``developer`` message as ``system``: compatible mode takes only system, user,
    assistant, tool and function (400 "developer is not one of [...]"), like the native
    API."""
    if isinstance(message, dict) and message.get("role") == "developer":
        return {**message, "role": "system"}
    return message


def _incremental(call: CallContext) -> bool:
    flag = call.extra_body.get("incremental_output")
    return True if flag is None else bool(flag)


def _message(message: Mapping[str, Any], multimodal: bool) -> JSONDict:
    """One OpenAI message as the native API takes it."""
    out = dict(message)
    role = out.get("role")
    if role == "developer":
        out["role"] = "system"
    elif role == "function":
        out["role"] = "tool"
    if role == "assistant" and out.get("tool_calls") and out.get("content") is None:
        out["content"] = ""  # the native API wants a string next to tool calls
    content = out.get("content")
    if multimodal:
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content
        out["content"] = [_native_part(p) for p in parts or []]
    elif isinstance(content, list) and not any(
        isinstance(p, dict) and "cache_control" in p for p in content
    ):
        out["content"] = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    # Text parts with cache_control markers (explicit context cache) stay a list of
    # OpenAI-style parts, as DashScope's context-cache examples send them.
    return out


def _with_tool_names(messages: list[JSONDict]) -> list[JSONDict]:
    """Tool results also carry the function's ``name`` (older models read it, not the id)."""
    names: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or []:
            names[call.get("id", "")] = (call.get("function") or {}).get("name", "")
        if message["role"] == "tool" and not message.get("name"):
            name = names.get(message.get("tool_call_id", ""))
            if name:
                message["name"] = name
    return messages


def _native_part(part: Any) -> JSONDict:
    """An OpenAI content part as a DashScope multimodal part."""
    if not isinstance(part, dict):
        return {"text": str(part)}
    kind = part.get("type")
    if kind == "text":
        text: JSONDict = {"text": part.get("text", "")}
        if "cache_control" in part:  # UNSURE on the multimodal path (docs/providers)
            text["cache_control"] = part["cache_control"]
        return text
    if kind == "image_url":
        image = part.get("image_url")
        return {"image": image.get("url") if isinstance(image, dict) else image}
    if kind == "video_url":
        video = part.get("video_url")
        return {"video": video.get("url") if isinstance(video, dict) else video}
    if kind == "input_audio":
        audio = part.get("input_audio") or {}
        return {"audio": f"data:audio/{audio.get('format', 'wav')};base64,{audio.get('data', '')}"}
    return {key: value for key, value in part.items() if key != "type"}
