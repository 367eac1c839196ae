"""The OpenAI-shaped wire, as the compatible endpoints actually speak it.

OpenAI itself, Qianfan v2, DashScope compatible mode, DeepSeek, Moonshot, Ark and Zhipu v4
all take OpenAI's JSON, but each bends it somewhere: usage on the finish chunk instead of a
separate one (DeepSeek, Zhipu), usage inside ``choices[0]`` (Moonshot), ``: keep-alive``
comments (DeepSeek), no ``object`` field (Zhipu), their own ``finish_reason`` words. This
adapter reads all of those variants, so a provider defined in a user's config with
``protocol = "openai_compat"`` works without code.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar, Optional, Union

from .._sse import SSEEvent
from ._base import (
    Adapter,
    CallContext,
    HTTPRequest,
    JSONDict,
    Reply,
    StreamParser,
    Translated,
    embedding_usage,
    with_web_search,
)
from ._params import ParamContext, tools_as_sent

if TYPE_CHECKING:
    from .._shapes.chat.chat_completion_chunk import ChatCompletionChunk

__all__ = ["OpenAICompatAdapter", "OpenAICompatStreamParser"]

#: Parameters answered here, never forwarded: streaming options are the stream layer's.
_LOCAL_PARAMS = frozenset({"stream", "stream_options"})


#: OpenAI parameters that change nothing the caller sees of the answer (storage, tracking,
#: OpenAI's own caching, tiering and moderation), which a provider with an OpenAI-shaped
#: wire of its own is not sent (see `OpenAICompatAdapter.unsent`): the providers document
#: none of them, cache prompts on their own and run their own content safety on every
#: request.
OPENAI_SERVICE_PARAMS = frozenset(
    {
        "metadata",
        "moderation",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "safety_identifier",
        "service_tier",
        "store",
    }
)


class OpenAICompatAdapter(Adapter):
    protocol = "openai_compat"
    lists_models = True
    takes_token_ids = True  # OpenAI's own embeddings do (so may a compatible server)
    #: Parameters this wire is not sent: none for OpenAI itself and the servers that copy
    #: it; `OPENAI_SERVICE_PARAMS` for the providers' own OpenAI-shaped wires.
    unsent: ClassVar[frozenset[str]] = frozenset()
    #: Entries of the provider table's ``[unsupported]`` (written for its native protocol)
    #: that hold on this wire too, because the provider's models lack the feature (a logit
    #: bias, predicted outputs, GPT-5's verbosity): refused under the policy here as there,
    #: not forwarded for the provider to ignore without a word.
    models_lack: ClassVar[frozenset[str]] = frozenset()

    chat_path = "chat/completions"
    embeddings_path = "embeddings"

    # ------------------------------------------------------------------ chat

    def chat_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        url = self.url(self.chat_path)
        ctx = self.params(tools_as_sent(params), url)
        self.check_parts(ctx)
        body = self.chat_body(ctx, call)
        body["model"] = call.model
        if call.stream:
            body["stream"] = True
            # Always ask for usage: the ledger needs it even when the caller did not.
            body["stream_options"] = {"include_usage": True}
        return HTTPRequest("POST", url, json=body, emulated_stop=self.emulated_stop(ctx))

    def chat_body(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        """The provider's body from OpenAI parameters. Compatible providers take them as
        is, but for ``web_search_options`` where the provider table has a ``[web_search]``
        rule (its own way to search, as DashScope's ``enable_search``)."""
        unsent = self.unsent
        body = {
            k: v
            for k, v in ctx.params.items()
            if v is not None and k not in _LOCAL_PARAMS and k not in unsent
        }
        body["messages"] = list(body["messages"])
        lacking = self.models_lack.intersection(body)
        if lacking:
            ctx.refuse({n: r for n, r in self.spec.unsupported.items() if n in lacking})
            for name in lacking:
                del body[name]
        if self.spec.web_search is not None:
            body.pop("web_search_options", None)
            rule = self.web_search(ctx, call)
            if rule is not None:
                with_web_search(body, rule)
        return body

    def chat_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        if not isinstance(body, dict) or not isinstance(body.get("choices"), list):
            raise self.invalid_body(body, "a chat response without 'choices'")
        body.setdefault("object", "chat.completion")
        body.setdefault("model", call.model)
        for choice in body["choices"]:
            choice["finish_reason"] = self.finish_reason(choice.get("finish_reason"), reply, body)
            message = choice.get("message") or {}
            choice["message"] = message
            if not message.get("role"):  # (GLM-5 has sent "": strict clients refuse it)
                message["role"] = "assistant"
            if message.get("tool_calls"):
                message["tool_calls"] = self.function_tool_calls(message["tool_calls"])
                if message.get("content") == "":  # (Qianfan v2, DashScope: OpenAI's is null)
                    message["content"] = None
        _usage_in_openai_form(body)
        return body

    def function_tool_calls(self, tool_calls: list[JSONDict]) -> list[JSONDict]:
        """Only function calls map to OpenAI; built-in tools (web search) are not the
        caller's. A call without an id (or with ``""``) is given one (`new_call_id`)."""
        calls = []
        for call in tool_calls:
            if (call.get("type") or "function") != "function":  # ("" is a function's too)
                continue
            function = dict(call.get("function") or {})
            arguments = function.get("arguments")
            if not isinstance(arguments, str):
                function["arguments"] = json.dumps(arguments or {}, ensure_ascii=False)
            call_id = call.get("id") or self.new_call_id()
            calls.append({**call, "id": call_id, "type": "function", "function": function})
        return calls

    def stream_parser(self, reply: Reply, call: CallContext) -> StreamParser:
        return OpenAICompatStreamParser(self, reply, call)

    # ------------------------------------------------------------------ embeddings

    def embeddings_request(self, params: JSONDict, call: CallContext) -> HTTPRequest:
        ctx = self.params(params, self.url(self.embeddings_path))
        offered = call.info.dimensions if call.info is not None else []
        params = {
            **params,
            "input": self.embedding_input(ctx, call),
            "dimensions": ctx.dimensions(call.model, offered),
        }
        body = {k: v for k, v in params.items() if v is not None}
        body["model"] = call.model
        # Floats are asked for and, when the caller wanted base64, encoded here: not every
        # compatible provider implements encoding_format.
        body.pop("encoding_format", None)
        return HTTPRequest("POST", self.url(self.embeddings_path), json=body)

    def embeddings_response(self, reply: Reply, body: Any, call: CallContext) -> JSONDict:
        if not isinstance(body, dict) or not isinstance(body.get("data"), list):
            raise self.invalid_body(body, "an embeddings response without 'data'")
        body.setdefault("object", "list")
        body.setdefault("model", call.model)
        # In input order, as OpenAI answers: callers (langchain, llama-index) zip the
        # vectors with their texts by position, not by ``index``.
        body["data"] = sorted(body["data"], key=_embedding_index)
        body["usage"] = embedding_usage(body.get("usage"))
        return body

    # ------------------------------------------------------------------ errors

    def error_fields(self, body: Any) -> tuple[Optional[str], Optional[str]]:
        if not isinstance(body, dict):
            return None, None
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("code") or error.get("type")
            return (str(code) if code is not None else None), error.get("message")
        if isinstance(error, str):  # some gateways send {"error": "text"}
            return None, error
        return None, None


class OpenAICompatStreamParser(StreamParser):
    """OpenAI-shaped SSE events -> OpenAI chunks, tolerant of each provider's variant.

    The usual event is already an OpenAI chunk but for the role rule, so it is validated
    straight from its bytes into `ChatCompletionChunk` and finished there
    (`_typed_chunks.finish_validated`), skipping the JSON objects and the dict
    translation. An event that needs more takes the general way, `chunk`: usage (also
    inside a choice, as Moonshot puts it), no choices, a finish word, tool calls, an
    ``error``, a missing field or a field of another JSON type.
    tests/test_typed_chunks.py holds the two ways equal.
    """

    #: After this many events in a row that the short cut refuses (a provider that never
    #: sends ``model``, a stream of tool calls), the stream stops trying it: a refused
    #: event is validated twice.
    MAX_REFUSALS = 8

    def __init__(
        self,
        adapter: OpenAICompatAdapter,
        reply: Reply,
        call: CallContext,
        *,
        typed_chunks: bool = True,
    ) -> None:
        from ._typed_chunks import finish_validated, validate_chunk_json

        super().__init__(adapter, reply, call, typed_chunks=typed_chunks)
        self._roles_sent: set[int] = set()
        self._refusals = 0
        self._validate_json = validate_chunk_json
        self._finish_validated = finish_validated

    def translate(self, event: Union[bytes, SSEEvent]) -> Optional[Translated]:
        """`StreamParser.translate`, with the short cut tried first for a plain event."""
        if self.typed_chunks and type(event) is bytes:
            chunk = self._typed_chunk(event)
            if chunk is not None:
                self._refusals = 0
                if self.head is None:
                    self._take_head(chunk)
                return chunk, None, None  # (`typed`, inline: it runs per event)
            self._refusals += 1
            if self._refusals >= self.MAX_REFUSALS:
                self.typed_chunks = False
        return super().translate(event)

    def _typed_chunk(self, raw: bytes) -> Optional[ChatCompletionChunk]:
        """The event validated into its chunk and given what `chunk` would give it (the
        role rule, ``object``, ``provider``, no ``usage``), or None if it needs more."""
        try:
            # Strict: exact JSON types only, so nothing is coerced that `chunk` would have
            # seen differently first (an index of "0" is not the 0 of the role rule).
            chunk = self._validate_json(raw, strict=True)
        except ValueError:
            return None
        extra = chunk.__pydantic_extra__
        assert extra is not None  # the chunk types keep extras (extra="allow")
        if chunk.usage is not None or not chunk.choices or extra.get("error") is not None:
            return None
        # Every refusal is decided before anything changes: a refused event goes the
        # general way, which must find the role state as this event found it.
        for choice in chunk.choices:
            if (
                choice.finish_reason is not None
                or choice.delta.tool_calls is not None
                or (choice.__pydantic_extra__ and "usage" in choice.__pydantic_extra__)
            ):
                return None
        return self._finish_validated(chunk, self.call.provider, self._roles_sent)

    def chunk(self, data: JSONDict, event: Optional[str]) -> JSONDict:
        if event == "error" or data.get("error") is not None:
            code, message = self.adapter.error_fields(data)
            raise self.adapter.make_error(self.reply, data, code, message)
        data["object"] = "chat.completion.chunk"
        if "model" not in data:
            data["model"] = self.call.model
        choices = data.get("choices")
        if type(choices) is not list:
            data["choices"] = choices = []
        roles_sent = self._roles_sent
        for choice in choices:
            index = choice.get("index")
            if index is None:
                choice["index"] = index = 0
            delta = choice.get("delta")
            if not delta:
                choice["delta"] = delta = {}
            # OpenAI names the role once, on a choice's first chunk; some repeat it.
            # (`_typed_chunks.finish_validated` applies the same rule to a validated chunk.)
            if index in roles_sent:
                if "role" in delta:
                    del delta["role"]
            elif (
                delta.get("role")
                or delta.get("content") is not None
                or delta.get("reasoning_content") is not None  # (a thinking model's first)
                or delta.get("tool_calls")
            ):
                if not delta.get("role"):  # (absent, or GLM-5's "": OpenAI's is "assistant")
                    delta["role"] = "assistant"
                roles_sent.add(index)
            elif "role" in delta:  # an empty one before anything else: it names nothing
                del delta["role"]
            if delta.get("tool_calls"):
                for position, call in enumerate(delta["tool_calls"]):
                    call.setdefault("index", position)
                if delta.get("content") == "":  # (DashScope, Qianfan v2: OpenAI's is null)
                    delta["content"] = None
            finish = choice.get("finish_reason")
            if finish is not None:
                choice["finish_reason"] = finish = self.adapter.finish_reason(
                    finish, self.reply, data
                )
                if finish is not None:
                    self.finished = True
            if "usage" in choice:  # Moonshot's place for it; OpenAI's is the top level
                usage = choice.pop("usage")
                if usage and not data.get("usage"):
                    data["usage"] = usage
        return data


def _usage_in_openai_form(body: JSONDict) -> None:
    """``usage`` where and as OpenAI's type has it: Moonshot puts it inside ``choices[0]``,
    OpenAI at the top level. A usage without ``total_tokens`` is given the sum of the other
    two, which openai's type requires, and one without those is dropped, to be estimated:
    the answer was refused whole for either (a stream's was read, its usage estimated)."""
    if not body.get("usage"):
        for choice in body.get("choices") or []:
            usage = choice.pop("usage", None) if isinstance(choice, dict) else None
            if usage:
                body["usage"] = usage
                break
    usage = body.get("usage")
    if not isinstance(usage, dict):
        return
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if prompt is None or completion is None:  # (estimated here, not the answer refused)
        body["usage"] = None
    elif usage.get("total_tokens") is None and type(prompt) is int and type(completion) is int:
        usage["total_tokens"] = prompt + completion


def _embedding_index(item: Any) -> int:
    """An embedding's ``index`` (0 where a body leaves it out), to sort by."""
    index = item.get("index") if isinstance(item, dict) else None
    return index if isinstance(index, int) else 0
