"""Offline fakes of Alibaba DashScope: the native API and its OpenAI-compatible mode.

They follow /work/shared/protocols.md §3 and the §7.3 fixtures D1–D8.

:class:`FakeDashScope` (``https://dashscope.aliyuncs.com/api/v1``) speaks the native protocol:
``{model, input: {messages}, parameters}`` bodies on the text-generation and
multimodal-generation paths, streaming selected by the ``X-DashScope-SSE: enable`` header (a
``stream`` body field is ignored), D1/D4 bodies, D2/D3 streams framed as
``id:N``/``event:result``/``:HTTP_STATUS/200``/``data:{json}`` with the string ``"null"`` as
the mid-stream finish reason, running usage on every event and no ``[DONE]``; cumulative
content unless ``parameters.incremental_output`` is true; flat ``{code, message,
request_id}`` errors, SSE-framed (D6) on stream requests while the content type still says
JSON; and D7 embeddings returned out of order with ``text_index``.

:class:`FakeDashScopeCompatible` (``https://dashscope.aliyuncs.com/compatible-mode/v1``) is
OpenAI-shaped with ``chatcmpl-<uuid>`` ids, ``usage: null`` on stream chunks, a ``choices: []``
usage chunk when ``stream_options.include_usage`` is set and ``data: [DONE]`` (D8).

Both take ``host="dashscope-intl.aliyuncs.com"`` to serve the international region instead.
API keys are region-bound, so a request to the other region's host answers 401.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

import httpx

from ._fake import FakeProvider, approx_tokens, dumps, is_text_list, last_user_text, unit_vector
from ._script import (
    Failure,
    MidStreamError,
    Outcome,
    Raw,
    Reply,
    Sensitive,
    StreamCut,
    ToolCallSpec,
    chunk_text,
    sent_chunks,
)

__all__ = ["FakeDashScope", "FakeDashScopeCompatible"]

DEFAULT_HOST = "dashscope.aliyuncs.com"
INTL_HOST = "dashscope-intl.aliyuncs.com"
#: The public regional hosts; a key of one region is refused on the other (§3.1).
REGION_HOSTS = frozenset({DEFAULT_HOST, INTL_HOST})

TEXT_PATH = "/services/aigc/text-generation/generation"
MULTIMODAL_PATH = "/services/aigc/multimodal-generation/generation"
EMBEDDING_PATH = "/services/embeddings/text-embedding/text-embedding"

SSE_HEADERS = {"Content-Type": "text/event-stream;charset=UTF-8"}
#: Failed stream requests: SSE-framed body, JSON content type (D6, live-probe note).
SSE_ERROR_HEADERS = {"Content-Type": "application/json"}
COMPAT_SSE_HEADERS = {"Content-Type": "text/event-stream"}
DONE_EVENT = b"data: [DONE]\n\n"

INTERNAL_ERROR = "An internal error has occured, please try again later or contact service support."
BAD_PARAMETER = "Required parameter(s) missing or invalid, please check the request parameters."
ARREARS = "Access denied, please make sure your account is in good standing."
CONTEXT_LENGTH = "Range of input length should be [1, 129024]"

#: Failure kind -> (HTTP status, code, message) for the native API (§3.6, D5, D6).
ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "Throttling.RateQuota",
        "Requests rate limit exceeded, please try again later.",
    ),
    # UNSURE: §3.6 lists both 429 Throttling and 503 ModelUnavailable; 503 is the one the
    # official SDK retries as "repeatable", which is what "overloaded" means here.
    "overloaded": (503, "ModelUnavailable", "Model is unavailable, please try again later."),
    "arrears": (400, "Arrearage", ARREARS),
    "auth": (401, "InvalidApiKey", "Invalid API-key provided."),
    "content_filter": (
        400,
        "DataInspectionFailed",
        "Input data may contain inappropriate content.",
    ),
    "context_length": (400, "InvalidParameter", CONTEXT_LENGTH),
    "server_error": (500, "InternalError", INTERNAL_ERROR),
    # UNSURE: message text; §3.6 documents only the code for the public host.
    "model_not_found": (404, "ModelNotFound", "Model not exist."),
    "bad_request": (400, "InvalidParameter", BAD_PARAMETER),
}
#: A filter tripping on generated text mid-stream (D6 second form; text UNSURE there too).
OUTPUT_FILTERED = "Output data may contain inappropriate content."

# Request-validation answers (all 400 InvalidParameter unless noted). Texts marked UNSURE
# are this fake's wording of a rule protocols.md documents without the server's text.
ALGO = "<400> InternalError.Algo.InvalidParameter: "
NO_USER_MESSAGE = ALGO + "The input messages do not contain elements with the role of user"
NO_MESSAGES = 'Either "prompt" or "messages" must exist and cannot both be none'
BAD_ROLE = (  # UNSURE: wording
    ALGO + "Role must be in [user, assistant, system, function, plugin, tool] and the last "
    "message's role must be user, function or tool"
)
JSON_WORD = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
    "'json_object'."
)
URL_ERROR = "url error"
MEDIA_ON_TEXT_PATH = (  # UNSURE: wording
    ALGO + "Input content must be a string for text-generation models; image, video and audio "
    "parts need a multimodal model on the multimodal-generation endpoint"
)
STREAM_ONLY = (
    "This model only support stream mode, please enable the stream parameter to access the model."
)
THINKING_NEEDS_INCREMENTAL = (  # UNSURE: wording
    ALGO + 'The incremental_output parameter must be "true" when enable_thinking is true'
)
STREAM_ONLY_NEEDS_INCREMENTAL = ALGO + "This model only support incremental_output set to True"
INCREMENTAL_WITHOUT_STREAM = "parameter incremental_output only support stream call"
EMPTY_MODEL = ("BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
EMPTY_INPUT = ("BadRequest.EmptyInput", 'Required parameter "input" missing from request.')
BAD_JSON = "Request body is not valid JSON."  # UNSURE: wording
# Thinking-mode rules (providers-2026.md §1.3; wordings UNSURE but for the first, quoted
# from a user report as "restricted to True").
THINKING_ONLY = "The value of the enable_thinking parameter is restricted to True."
FORCED_TOOL_WHEN_THINKING = (
    "The tool_choice parameter does not support being set to required or object in thinking mode"
)
SCHEMA_WHEN_THINKING = "The json_schema response_format is not supported in thinking mode"
BUDGET_OVER_LIMIT = (
    "The value of thinking_budget must be less than the value of max_completion_tokens"
)

MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "plugin"})
LAST_ROLES = frozenset({"user", "tool", "function"})
MEDIA_KEYS = ("image", "video", "audio")
MEDIA_TYPES = frozenset({"image_url", "video_url", "input_audio", "image", "video", "audio"})

#: Embedding dimensions: v3 and v4 choose (1024 default); v1/v2 are fixed at 1536 (§3.7).
EMBEDDING_V3_DIMENSIONS = (1024, 768, 512, 256, 128, 64)
EMBEDDING_V4_DIMENSIONS = (2048, 1536, 1024, 768, 512, 256, 128, 64)
EMBEDDING_DEFAULT_DIMENSION = 1024
EMBEDDING_V1_V2_DIMENSION = 1536
#: Texts per call: v1/v2 25; v3/v4 10 (§3.7 CONFLICT across doc versions; 10 is chosen).
EMBEDDING_BATCH_V1_V2 = 25
EMBEDDING_BATCH = 10


def _batch_error(limit: int) -> str:
    return f"batch size is invalid, it should not be larger than {limit}."


def _dimension_error(allowed: Iterable[int]) -> str:  # UNSURE: wording
    return f"dimension is invalid, it should be one of {list(allowed)}."


# ------------------------------------------------------------------------------ native


@dataclass(frozen=True)
class _Call:
    """What one native generation request contributes to its answer."""

    request_id: str
    model: str
    prompt_tokens: int
    message_format: bool
    multimodal: bool
    incremental: bool
    cache: Optional[dict[str, Any]] = None


class _DashScopeGateway(FakeProvider):
    """What both DashScope fakes share: the region host, the key, the workspace log, the
    stream-only models, and the gateway's checks before a request reaches a model."""

    #: The API root below the host ("/api/v1" or "/compatible-mode/v1").
    root = ""

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str = DEFAULT_HOST,
        model_names: set[str] | None = None,
        stream_only_models: set[str] | None = None,
        split_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(split_bytes=split_bytes, clock=clock)
        self.api_key = api_key
        self.host = host
        # This root follows the region host; the class attribute stays the default region's
        # (tests read it off the class).
        self.base_url = f"https://{host}{self.root}"
        self.model_names = model_names
        self.stream_only_models = stream_only_models
        #: The ``X-DashScope-WorkSpace`` header of each request, None when absent.
        self.workspaces: list[Optional[str]] = []
        #: Explicit-cache prefixes created so far (``cache_control`` markers).
        self._cache_blocks: set[str] = set()
        #: The ids of the Responses this fake made (``previous_response_id`` must be one).
        self.response_ids: set[str] = set()

    def is_thinking_only(self, model: str) -> bool:
        """True for models that cannot stop thinking (qwen3.8-max, *-thinking-*)."""
        return model.startswith("qwen3.8-max") or "-thinking" in model

    def thinking_problem(self, model: str, fields: Mapping[str, Any]) -> str | None:
        """The 400 message for thinking-mode rules ``fields`` (body or parameters) break."""
        flag = fields.get("enable_thinking")
        if self.is_thinking_only(model) and flag is False:
            return THINKING_ONLY
        if not (flag is True or self.is_thinking_only(model)):
            return None
        choice = fields.get("tool_choice")
        if fields.get("tools") and (choice == "required" or isinstance(choice, dict)):
            return FORCED_TOOL_WHEN_THINKING
        fmt = fields.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return SCHEMA_WHEN_THINKING
        budget = fields.get("thinking_budget")
        limit = fields.get("max_completion_tokens") or fields.get("max_tokens")
        if isinstance(budget, int) and isinstance(limit, int) and budget >= limit:
            return BUDGET_OVER_LIMIT
        return None

    def cache_details(self, messages: list[Any]) -> dict[str, Any] | None:
        """Explicit-cache usage for messages with ``cache_control`` markers: the prefix up to
        the last marker is created on first sight (``cache_creation_input_tokens``) and hit
        afterwards (``cached_tokens``). None without markers (implicit cache: 0 hits)."""
        end = None
        for position, message in enumerate(messages):
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, list) and any(
                isinstance(p, dict) and "cache_control" in p for p in content
            ):
                end = position
        if end is None:
            return None
        prefix = messages[: end + 1]
        tokens = sum(approx_tokens(_message_text(m)) for m in prefix)
        key = hashlib.sha256(dumps(prefix).encode()).hexdigest()
        with self._lock:
            hit = key in self._cache_blocks
            self._cache_blocks.add(key)
        if hit:
            return {"cached_tokens": tokens}
        return {
            "cached_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": tokens},
            "cache_creation_input_tokens": tokens,
            "cache_type": "ephemeral",
        }

    def is_stream_only(self, model: str) -> bool:
        """True for models that answer only to streaming requests."""
        if self.stream_only_models is not None:
            return model in self.stream_only_models
        return model == "qwq-plus" or "qwq" in model

    def _gate(self, request: httpx.Request) -> tuple[dict[str, Any], Optional[str]]:
        """The JSON body and what the gateway refuses it for: "auth" (key or region),
        "json", "model" (empty) or "unknown_model"; None when it passes. The workspace
        header is recorded either way."""
        with self._lock:
            self.workspaces.append(request.headers.get("X-DashScope-WorkSpace"))
        host = request.url.host
        wrong_region = host != self.host and host in REGION_HOSTS
        bearer = request.headers.get("Authorization", "")
        if wrong_region or (self.api_key is not None and bearer != f"Bearer {self.api_key}"):
            return {}, "auth"
        try:
            body = json.loads(request.content)
        except ValueError:
            return {}, "json"
        if not isinstance(body, dict):
            return {}, "json"
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return body, "model"
        if self.model_names is not None and model not in self.model_names:
            return body, "unknown_model"
        return body, None


class FakeDashScope(_DashScopeGateway):
    """Fake native DashScope on ``https://dashscope.aliyuncs.com/api/v1``.

    Routes: ``POST /services/aigc/text-generation/generation``,
    ``POST /services/aigc/multimodal-generation/generation`` and
    ``POST /services/embeddings/text-embedding/text-embedding``.

    With ``api_key`` set, requests need ``Authorization: Bearer <api_key>`` (401
    ``InvalidApiKey`` otherwise). With ``model_names`` set, other models get 404
    ``ModelNotFound``. ``multimodal_models`` (default: names starting ``qwen-vl`` or ``qvq``)
    must use the multimodal path and other models the text path (400 ``url error``
    otherwise). ``stream_only_models`` (default: ``qwq-plus`` and any name containing
    ``qwq``) answer 400 without the ``X-DashScope-SSE: enable`` header, and need
    ``incremental_output: true`` when streaming. The ``X-DashScope-WorkSpace`` header of
    every request is recorded in :attr:`workspaces` (None when absent).

    ``result_format: "message"`` answers D1's ``output.choices`` shape; anything else the
    ``output.text`` shape (tool calls and the multimodal path always use ``choices``). A
    scripted ``Sensitive`` outcome ends with ``finish_reason: "content_filter"`` (UNSURE).
    An "HTTP 200 with a non-empty ``code``" answer is scripted with ``raw``.
    """

    root = "/api/v1"
    base_url = f"https://{DEFAULT_HOST}{root}"
    routes = (
        ("POST", re.escape(TEXT_PATH), "text_generation"),
        ("POST", re.escape(MULTIMODAL_PATH), "multimodal_generation"),
        ("POST", re.escape(EMBEDDING_PATH), "text_embedding"),
    )

    def __init__(
        self,
        api_key: str | None = None,
        *,
        host: str = DEFAULT_HOST,
        model_names: set[str] | None = None,
        multimodal_models: set[str] | None = None,
        stream_only_models: set[str] | None = None,
        split_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(
            api_key,
            host=host,
            model_names=model_names,
            stream_only_models=stream_only_models,
            split_bytes=split_bytes,
            clock=clock,
        )
        self.multimodal_models = multimodal_models

    # -- model families --------------------------------------------------------------------

    def is_multimodal(self, model: str) -> bool:
        """True for models served on the multimodal-generation path."""
        if self.multimodal_models is not None:
            return model in self.multimodal_models
        # Qwen3.5+ plus/flash and qwen3.8-max are vision-language models (url error on the
        # text path), as are the VL families (qwen-vl*, qwen2/2.5/3-vl*) and qvq*.
        vl = ("qwen-vl", "qwen2-vl", "qwen2.5-vl", "qwen3-vl", "qvq", "qwen3.8-max")
        return model.startswith(vl) or bool(re.match(r"qwen3\.[5-9]-(plus|flash)", model))

    # -- routes ----------------------------------------------------------------------------

    def text_generation(self, request: httpx.Request) -> httpx.Response:
        """``POST .../text-generation/generation``: D1/D4 bodies or D2/D3 streams."""
        return self._generation(request, multimodal_path=False)

    def multimodal_generation(self, request: httpx.Request) -> httpx.Response:
        """``POST .../multimodal-generation/generation``: content answered as ``[{"text"}]``."""
        return self._generation(request, multimodal_path=True)

    def text_embedding(self, request: httpx.Request) -> httpx.Response:
        """``POST .../text-embedding/text-embedding``: D7 bodies, embeddings out of order.

        Only a queued Failure or Raw at the head of the queue applies here; chat replies stay
        queued for the chat requests they were scripted for.
        """
        body, rejection = self._admit(request, sse=False)
        if rejection is not None:
            return rejection
        outcome = self.next_outcome(lambda o: isinstance(o, (Failure, Raw)))
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, sse=False)
        model = body["model"]
        source = body.get("input")
        texts = source.get("texts") if isinstance(source, dict) else None
        if not is_text_list(texts) or not texts:
            return self._invalid("input.texts must be a non-empty list of strings", sse=False)
        rule = _embedding_rule(model, body.get("parameters"))
        if isinstance(rule, str):
            return self._invalid(rule, sse=False)
        size, limit = rule
        if len(texts) > limit:
            return self._invalid(_batch_error(limit), sse=False)
        # Deterministically shuffled (reversed): clients must order by text_index.
        embeddings = [
            {"embedding": unit_vector(texts[i], size), "text_index": i}
            for i in reversed(range(len(texts)))
        ]
        payload = {
            "output": {"embeddings": embeddings},
            "usage": {"total_tokens": sum(approx_tokens(text) for text in texts)},
            "request_id": self._request_id(),
        }
        return self.json_response(200, payload)

    # -- admission -------------------------------------------------------------------------

    def _admit(
        self, request: httpx.Request, *, sse: bool
    ) -> tuple[dict[str, Any], httpx.Response | None]:
        """Check region, key, JSON body and model the way the gateway does; record workspace."""
        body, refused = self._gate(request)
        if refused == "auth":
            return body, self._error(Failure("auth"), sse=sse)
        if refused == "json":
            return body, self._invalid(BAD_JSON, sse=sse)
        if refused == "model":
            return body, self._error_response(400, *EMPTY_MODEL, sse=sse)
        if refused == "unknown_model":
            return body, self._error(Failure("model_not_found"), sse=sse)
        return body, None

    def _generation(self, request: httpx.Request, *, multimodal_path: bool) -> httpx.Response:
        """Validate like the server, then answer the next scripted (or echo) outcome."""
        sse = request.headers.get("X-DashScope-SSE", "").strip().lower() == "enable"
        body, rejection = self._admit(request, sse=sse)
        if rejection is not None:
            return rejection
        model = body["model"]
        parameters = body.get("parameters")
        parameters = parameters if isinstance(parameters, dict) else {}
        messages = _input_messages(body.get("input"))
        if isinstance(messages, tuple):
            return self._error_response(400, *messages, sse=sse)
        broken = self._check(model, messages, parameters, sse=sse, multimodal_path=multimodal_path)
        if broken is not None:
            return self._invalid(broken, sse=sse)
        outcome = self.next_outcome() or self.default_reply(
            model, last_user_text(messages, _message_text)
        )
        call = _Call(
            request_id=self._request_id(),
            model=model,
            prompt_tokens=sum(approx_tokens(_message_text(m)) for m in messages),
            message_format=parameters.get("result_format") == "message",
            multimodal=multimodal_path,
            incremental=parameters.get("incremental_output") is True,
            cache=self.cache_details(messages),
        )
        if sse:
            return self._stream(call, outcome)
        return self._complete(call, outcome)

    def _check(
        self,
        model: str,
        messages: list[dict[str, Any]],
        parameters: Mapping[str, Any],
        *,
        sse: bool,
        multimodal_path: bool,
    ) -> str | None:
        """None when the request passes the server's checks, else the 400 message."""
        if not messages:
            return NO_USER_MESSAGE
        if any(m.get("role") not in MESSAGE_ROLES for m in messages):
            return BAD_ROLE
        if messages[-1].get("role") not in LAST_ROLES:
            return BAD_ROLE
        if self.is_multimodal(model) != multimodal_path:
            return URL_ERROR
        if not multimodal_path and any(_has_media(m) for m in messages):
            return MEDIA_ON_TEXT_PATH
        if _wants_json_object(parameters) and not _mentions_json(messages):
            return JSON_WORD
        thinking = self.thinking_problem(model, parameters)
        if thinking is not None:
            return thinking
        incremental = parameters.get("incremental_output") is True
        if self.is_stream_only(model):
            if not sse:
                return STREAM_ONLY
            if not incremental:
                return STREAM_ONLY_NEEDS_INCREMENTAL
        if sse and parameters.get("enable_thinking") is True and not incremental:
            return THINKING_NEEDS_INCREMENTAL
        if not sse and incremental:
            return INCREMENTAL_WITHOUT_STREAM
        return None

    # -- non-stream rendering --------------------------------------------------------------

    def _complete(self, call: _Call, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a request without the SSE header."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, sse=False, request_id=call.request_id)
        if isinstance(outcome, MidStreamError):
            return self._error(Failure(outcome.kind), sse=False, request_id=call.request_id)
        if isinstance(outcome, Sensitive):
            outcome = Reply("".join(sent_chunks(outcome)), finish_reason="content_filter")
        if isinstance(outcome, StreamCut):
            body = dumps(self._completion(call, Reply(outcome.content))).encode("utf-8")
            headers = {"Content-Type": "application/json"}
            half = [body[: len(body) // 2]]
            return self.stream_response(200, half, headers, cut=outcome.cut_raises)
        return self.json_response(200, self._completion(call, outcome))

    def _completion(self, call: _Call, reply: Reply) -> dict[str, Any]:
        """The D1 body (``choices``, or ``text`` for result_format text), or D4 for calls."""
        finish = reply.resolved_finish_reason()
        output: dict[str, Any]
        if _text_format(call, reply):
            output = {"text": reply.content, "finish_reason": finish}
        else:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": _content(call, reply.content),
            }
            if reply.reasoning_content is not None:
                message["reasoning_content"] = reply.reasoning_content
            if reply.tool_calls:
                message["tool_calls"] = [
                    self._tool_call(call, i, spec, spec.arguments_json())
                    for i, spec in enumerate(reply.tool_calls)
                ]
            output = {"choices": [{"finish_reason": finish, "message": message}]}
        usage = self._final_usage(call, reply, stream=False)
        return {"output": output, "usage": usage, "request_id": call.request_id}

    def _tool_call(
        self, call: _Call, index: int, spec: ToolCallSpec, arguments: str
    ) -> dict[str, Any]:
        """One D4 tool call (key order as D4) with ``arguments`` as given."""
        return {
            "function": {"name": spec.name, "arguments": arguments},
            "index": index,
            "id": _tool_call_id(call.request_id, index, spec),
            "type": "function",
        }

    def _final_usage(self, call: _Call, reply: Reply, *, stream: bool) -> dict[str, Any]:
        """Scripted usage, or usage from text lengths (stream events use D2's key order)."""
        if reply.usage is not None:
            return dict(reply.usage)
        reasoning = reply.reasoning_content if not _text_format(call, reply) else None
        completion = approx_tokens(reply.completion_text())
        usage = _native_usage(call.prompt_tokens, completion, reasoning, stream=stream)
        if call.cache is not None:
            usage["prompt_tokens_details"] = dict(call.cache)
        return usage

    # -- stream rendering ------------------------------------------------------------------

    def _stream(self, call: _Call, outcome: Outcome) -> httpx.Response:
        """Render any outcome for an ``X-DashScope-SSE: enable`` request (D2/D3/D6)."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, sse=True, request_id=call.request_id)
        if isinstance(outcome, Reply):
            writer = _NativeStream(self, call, outcome)
            writer.run(_steps(call, outcome))
            return self.stream_response(200, writer.finish(), SSE_HEADERS)
        partial = Reply("".join(sent_chunks(outcome)), chunk_size=outcome.chunk_size)
        writer = _NativeStream(self, call, partial)
        writer.run(("content", 0, piece) for piece in sent_chunks(outcome))
        if isinstance(outcome, StreamCut):
            return self.stream_response(200, writer.frames(), SSE_HEADERS, cut=outcome.cut_raises)
        if isinstance(outcome, MidStreamError):
            status, code, message = ERRORS[outcome.kind]
            if outcome.kind == "content_filter":
                message = OUTPUT_FILTERED
            payload = {"code": code, "message": message, "request_id": call.request_id}
            frames = writer.frames()
            frames.append(_frame(len(frames) + 1, "error", status, payload))
            return self.stream_response(200, frames, SSE_HEADERS)
        # Sensitive: the filter ends the answer with a content_filter finish (UNSURE).
        return self.stream_response(200, writer.finish("content_filter"), SSE_HEADERS)

    # -- errors and ids --------------------------------------------------------------------

    def _error(
        self, failure: Failure, *, sse: bool, request_id: str | None = None
    ) -> httpx.Response:
        """A Failure as a flat native error, overrides applied (SSE-framed when ``sse``)."""
        status, code, message = ERRORS[failure.kind]
        return self._error_response(
            failure.status or status,
            failure.code or code,
            failure.message or message,
            sse=sse,
            headers=failure.headers,
            request_id=request_id,
        )

    def _invalid(self, message: str, *, sse: bool) -> httpx.Response:
        """400 ``InvalidParameter`` with ``message``."""
        return self._error_response(400, "InvalidParameter", message, sse=sse)

    def _error_response(
        self,
        status: int,
        code: str,
        message: str,
        *,
        sse: bool,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> httpx.Response:
        """``{"code","message","request_id"}``: JSON (D5), or one D6 frame when ``sse``.

        The SSE-framed variant keeps ``Content-Type: application/json``, as the live service
        does, so clients must parse error bodies by content rather than by header.
        """
        payload = {"code": code, "message": message, "request_id": request_id or self._request_id()}
        if not sse:
            return self.json_response(status, payload, headers)
        frame = _frame(1, "error", status, payload)
        return self.stream_response(status, [frame], {**SSE_ERROR_HEADERS, **(headers or {})})

    def _request_id(self) -> str:
        """A UUID-shaped request id, deterministic per fake."""
        return _uuid(f"dashscope-request/{self.next_serial()}")


@dataclass
class _NativeStream:
    """Builds D2 (incremental) or D3 (cumulative) events from generation steps.

    A step is ``(kind, tool index, piece)`` with kind ``reasoning``, ``content`` or ``tool``.
    Snapshots are rendered only at the end, because in cumulative mode the last content
    event also carries the finish reason (D3) while incremental streams add an empty one (D2).
    """

    fake: FakeDashScope
    call: _Call
    reply: Reply
    reasoning: str = ""
    content: str = ""
    arguments: dict[int, str] = field(default_factory=dict)
    snapshots: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)

    def run(self, steps: Iterable[tuple[str, int, str]]) -> None:
        """Record one snapshot (message, running usage) per step."""
        text_format = _text_format(self.call, self.reply)
        for kind, index, piece in steps:
            first_piece = kind == "tool" and index not in self.arguments
            if kind == "reasoning":
                self.reasoning += piece
            elif kind == "content":
                self.content += piece
            else:
                self.arguments[index] = self.arguments.get(index, "") + piece
            if text_format:
                message = {"text": piece if self.call.incremental else self.content}
            elif self.call.incremental:
                message = self._increment(kind, index, piece, first_piece)
            else:
                message = self._so_far()
            self.snapshots.append((message, self._running_usage()))

    def frames(self, finish: str | None = None) -> list[bytes]:
        """The SSE frames: ``finish_reason`` "null" everywhere but a final ``finish``."""
        frames = []
        for number, (message, usage) in enumerate(self.snapshots, start=1):
            last = number == len(self.snapshots)
            payload = self._payload(
                message, finish if last and finish is not None else "null", usage
            )
            frames.append(_frame(number, "result", 200, payload))
        return frames

    def finish(self, finish: str | None = None) -> list[bytes]:
        """Close the stream: D2's empty final event, or D3's finish on the last event."""
        finish = finish or self.reply.resolved_finish_reason()
        final_usage = self.fake._final_usage(self.call, self.reply, stream=True)
        empty: dict[str, Any]
        if _text_format(self.call, self.reply):
            empty = {"text": ""}
        else:
            empty = {"content": _content(self.call, ""), "role": "assistant"}
        if self.call.incremental or not self.snapshots:
            self.snapshots.append((empty, final_usage))
        else:
            message, _ = self.snapshots[-1]
            self.snapshots[-1] = (message, final_usage)
        return self.frames(finish)

    def _increment(self, kind: str, index: int, piece: str, first_piece: bool) -> dict[str, Any]:
        """An incremental message carrying only the new piece."""
        message: dict[str, Any] = {"content": _content(self.call, "")}
        if kind == "content":
            message["content"] = _content(self.call, piece)
        elif kind == "reasoning":
            message["reasoning_content"] = piece
        message["role"] = "assistant"
        if kind == "tool":
            spec = self.reply.tool_calls[index]
            if first_piece:
                tool = self.fake._tool_call(self.call, index, spec, piece)
            else:
                # UNSURE: later fragments' id/name; an empty id and no name are sent.
                tool = {
                    "function": {"arguments": piece},
                    "index": index,
                    "id": "",
                    "type": "function",
                }
            message["tool_calls"] = [tool]
        return message

    def _so_far(self) -> dict[str, Any]:
        """A cumulative message: everything generated so far, tool arguments included."""
        message: dict[str, Any] = {"content": _content(self.call, self.content)}
        if self.reasoning:
            message["reasoning_content"] = self.reasoning
        message["role"] = "assistant"
        if self.arguments:
            message["tool_calls"] = [
                self.fake._tool_call(self.call, i, self.reply.tool_calls[i], arguments)
                for i, arguments in sorted(self.arguments.items())
            ]
        return message

    def _running_usage(self) -> dict[str, Any]:
        """D2's running usage: output tokens for the text so far, never past the final count."""
        final = self.fake._final_usage(self.call, self.reply, stream=True)
        prompt = final.get("input_tokens", self.call.prompt_tokens)
        names = "".join(self.reply.tool_calls[i].name for i in self.arguments)
        so_far = self.reasoning + self.content + names + "".join(self.arguments.values())
        completion = approx_tokens(so_far)
        ceiling = final.get("output_tokens")
        if isinstance(ceiling, int):
            completion = min(completion, ceiling)
        has_reasoning = not _text_format(self.call, self.reply) and self.reply.reasoning_content
        reasoning = self.reasoning if has_reasoning else None
        return _native_usage(prompt, completion, reasoning, stream=True)

    def _payload(
        self, message: dict[str, Any], finish: str, usage: dict[str, Any]
    ) -> dict[str, Any]:
        """One event's JSON: ``output`` in choices or text shape, usage, request id."""
        if "text" in message and _text_format(self.call, self.reply):
            output: dict[str, Any] = {"text": message["text"], "finish_reason": finish}
        else:
            output = {"choices": [{"message": message, "finish_reason": finish}]}
        return {"output": output, "usage": usage, "request_id": self.call.request_id}


def _steps(call: _Call, reply: Reply) -> list[tuple[str, int, str]]:
    """A reply as generation steps: reasoning pieces, content pieces, tool-argument pieces."""
    size = reply.chunk_size
    steps: list[tuple[str, int, str]] = []
    if not _text_format(call, reply):
        steps += [("reasoning", 0, p) for p in chunk_text(reply.reasoning_content or "", size)]
    steps += [("content", 0, p) for p in chunk_text(reply.content, size)]
    for index, spec in enumerate(reply.tool_calls):
        pieces = chunk_text(spec.arguments_json(), size) or [""]
        steps += [("tool", index, p) for p in pieces]
    return steps


def _text_format(call: _Call, reply: Reply) -> bool:
    """True when the answer uses ``output.text`` (result_format text, text path, no calls)."""
    return not (call.message_format or call.multimodal or reply.tool_calls)


def _content(call: _Call, text: str) -> Any:
    """Message content: a string, or ``[{"text": ...}]`` parts on the multimodal path."""
    if call.multimodal:
        return [{"text": text}] if text else []
    return text


def _native_usage(
    prompt: int, completion: int, reasoning: str | None, *, stream: bool
) -> dict[str, Any]:
    """``input_tokens``/``output_tokens``/``total_tokens`` in D1 order, or D2's for streams."""
    if stream:
        usage: dict[str, Any] = {
            "total_tokens": prompt + completion,
            "output_tokens": completion,
            "input_tokens": prompt,
        }
    else:
        usage = {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        }
    if reasoning:
        usage["output_tokens_details"] = {"reasoning_tokens": approx_tokens(reasoning)}
    return usage


def _frame(number: int, event: str, status: int, payload: Mapping[str, Any]) -> bytes:
    """One native SSE event: ``id:``, ``event:``, the status comment, ``data:`` (no spaces)."""
    return f"id:{number}\nevent:{event}\n:HTTP_STATUS/{status}\ndata:{dumps(payload)}\n\n".encode()


def _input_messages(source: Any) -> list[dict[str, Any]] | tuple[str, str]:
    """``input.messages`` (plus a legacy ``input.prompt`` as a user turn), or (code, message)."""
    if not isinstance(source, dict):
        return EMPTY_INPUT
    messages, prompt = source.get("messages"), source.get("prompt")
    if messages is None and prompt is None:
        return "InvalidParameter", NO_MESSAGES
    if messages is not None and not (
        isinstance(messages, list) and all(isinstance(m, dict) for m in messages)
    ):
        return "InvalidParameter", BAD_PARAMETER
    result = list(messages or [])
    if isinstance(prompt, str):
        result.append({"role": "user", "content": prompt})
    return result


def _has_media(message: Mapping[str, Any]) -> bool:
    """True when list content has an image, video or audio part (native or OpenAI style)."""
    content = message.get("content")
    if not isinstance(content, list):
        return False
    return any(
        isinstance(part, dict)
        and (any(key in part for key in MEDIA_KEYS) or part.get("type") in MEDIA_TYPES)
        for part in content
    )


def _wants_json_object(parameters: Mapping[str, Any]) -> bool:
    fmt = parameters.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_object"


def _mentions_json(messages: Iterable[Any]) -> bool:
    """The json_object rule: some message must contain the word "json" (any case)."""
    return any("json" in _message_text(m).lower() for m in messages)


def _tool_call_id(request_id: str, index: int, spec: ToolCallSpec) -> str:
    """The scripted id, or ``call_`` plus 22 hex digits as in D4."""
    if spec.id:
        return spec.id
    return "call_" + hashlib.sha256(f"{request_id}/{index}".encode()).hexdigest()[:22]


def _embedding_rule(model: str, parameters: Any) -> tuple[int, int] | str:
    """(vector size, batch limit) for a model and its ``parameters``, or the 400 message."""
    if model in ("text-embedding-v1", "text-embedding-v2"):
        return EMBEDDING_V1_V2_DIMENSION, EMBEDDING_BATCH_V1_V2
    allowed = EMBEDDING_V4_DIMENSIONS if model == "text-embedding-v4" else EMBEDDING_V3_DIMENSIONS
    dimension = parameters.get("dimension") if isinstance(parameters, dict) else None
    if dimension is None:
        return EMBEDDING_DEFAULT_DIMENSION, EMBEDDING_BATCH
    if isinstance(dimension, bool) or dimension not in allowed:
        return _dimension_error(allowed)
    return int(dimension), EMBEDDING_BATCH


# ------------------------------------------------------------------------ compatible mode

#: Failure kind -> (HTTP status, code, message, type) in compatible mode (§3.8, D8). The
#: data_inspection_failed, Arrearage, invalid_api_key and invalid_parameter_error bodies
#: are documented; the 429/503/500/404 codes are UNSURE.
COMPAT_ERRORS: dict[str, tuple[int, str, str, str]] = {
    "rate_limit": (
        429,
        "limit_requests",
        "Requests rate limit exceeded, please try again later.",
        "limit_requests",
    ),
    "overloaded": (
        503,
        "ModelUnavailable",
        "Model is unavailable, please try again later.",
        "ModelUnavailable",
    ),
    "arrears": (400, "Arrearage", ARREARS, "Arrearage"),
    "auth": (401, "invalid_api_key", "Incorrect API key provided.", "invalid_request_error"),
    "content_filter": (
        400,
        "data_inspection_failed",
        "Input text data may contain inappropriate content.",
        "data_inspection_failed",
    ),
    "context_length": (400, "invalid_parameter_error", CONTEXT_LENGTH, "invalid_request_error"),
    "server_error": (500, "internal_error", INTERNAL_ERROR, "internal_error"),
    "model_not_found": (
        404,
        "model_not_found",
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
    ),
    "bad_request": (400, "invalid_parameter_error", BAD_PARAMETER, "invalid_request_error"),
    # UNSURE: the code DashScope gives an unknown previous_response_id.
    "not_found": (404, "not_found", "Not found.", "invalid_request_error"),
}


@dataclass(frozen=True)
class _CompatCall:
    """What one compatible-mode chat request contributes to its answer."""

    uuid: str
    created: int
    model: str
    prompt_tokens: int
    include_usage: bool
    cache: Optional[dict[str, Any]] = None

    @property
    def id(self) -> str:
        return f"chatcmpl-{self.uuid}"

    def tail(self) -> dict[str, Any]:
        """The keys after ``choices`` in D8's chunk order (``usage`` first, as null)."""
        return {
            "object": "chat.completion.chunk",
            "usage": None,
            "created": self.created,
            "system_fingerprint": None,
            "model": self.model,
            "id": self.id,
        }


class FakeDashScopeCompatible(_DashScopeGateway):
    """Fake DashScope compatible mode on ``https://dashscope.aliyuncs.com/compatible-mode/v1``.

    ``POST /chat/completions`` and ``POST /embeddings`` in OpenAI's shapes with DashScope's
    details (D8): ``chatcmpl-<uuid>`` ids, ``system_fingerprint: null``,
    ``prompt_tokens_details.cached_tokens``, ``usage: null`` on stream chunks, a final
    ``choices: []`` usage chunk only with ``stream_options.include_usage``, then
    ``data: [DONE]``. Errors are ``{"error":{code,param,message,type},"id","request_id"}``.
    ``api_key``, ``model_names``, ``stream_only_models`` and :attr:`workspaces` work as on
    :class:`FakeDashScope`.
    """

    root = "/compatible-mode/v1"
    base_url = f"https://{DEFAULT_HOST}{root}"
    routes = (
        ("POST", "/chat/completions", "chat_completions"),
        ("POST", "/embeddings", "embeddings"),
        ("POST", "/responses", "responses"),
    )

    # -- routes ----------------------------------------------------------------------------

    def chat_completions(self, request: httpx.Request) -> httpx.Response:
        """``POST /chat/completions``: OpenAI-shaped answers; streamed per D8."""
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        model = body["model"]
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._invalid(NO_USER_MESSAGE)
        if not all(isinstance(m, dict) for m in messages):
            return self._invalid(BAD_PARAMETER)
        if _wants_json_object(body) and not _mentions_json(messages):
            return self._invalid(JSON_WORD)
        thinking = self.thinking_problem(model, body)
        if thinking is not None:
            return self._invalid(thinking)
        stream = body.get("stream") is True
        if self.is_stream_only(model) and not stream:
            return self._invalid(STREAM_ONLY)
        outcome = self.next_outcome() or self.default_reply(
            model, last_user_text(messages, _message_text)
        )
        options = body.get("stream_options")
        call = _CompatCall(
            uuid=self._uuid(),
            created=int(self.clock()),
            model=model,
            prompt_tokens=sum(approx_tokens(_message_text(m)) for m in messages),
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            cache=self.cache_details(messages),
        )
        if stream:
            return self._stream(call, outcome)
        return self._complete(call, outcome)

    def embeddings(self, request: httpx.Request) -> httpx.Response:
        """``POST /embeddings``: OpenAI-shaped; only a queued Failure or Raw applies here."""
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        outcome = self.next_outcome(lambda o: isinstance(o, (Failure, Raw)))
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        model = body["model"]
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not is_text_list(texts) or not texts:
            return self._invalid("input must be a string or a non-empty list of strings")
        rule = _embedding_rule(model, {"dimension": body.get("dimensions")})
        if isinstance(rule, str):
            return self._invalid(rule)
        size, limit = rule
        if len(texts) > limit:
            return self._invalid(_batch_error(limit))
        tokens = sum(approx_tokens(text) for text in texts)
        payload = {
            "data": [
                {"embedding": unit_vector(text, size), "index": i, "object": "embedding"}
                for i, text in enumerate(texts)
            ],
            "model": model,
            "object": "list",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "id": self._uuid(),
        }
        return self.json_response(200, payload)

    def responses(self, request: httpx.Request) -> httpx.Response:
        """``POST /responses``: OpenAI's Responses API, as compatible mode serves it for
        the models that have it: a ``Response`` with one message, or its events streamed
        (``response.created`` ... ``response.completed``). No ``background`` mode (400).
        A queued `Reply` gives the text (tool calls are not rendered here), a `Failure`
        the error; ``previous_response_id`` must name a response this fake made."""
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        if body.get("background"):
            return self._invalid("background is not supported")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.response_ids:
            return self._error(Failure("not_found", message=f"Response {previous} not found"))
        outcome = self.next_outcome() or Reply("你好！")
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        if not isinstance(outcome, Reply):
            return self._invalid("this fake renders only replies and failures on /responses")
        text = outcome.content
        response_id, message_id = f"resp_{self._uuid()}", f"msg_{self._uuid()}"
        self.response_ids.add(response_id)
        prompt = approx_tokens(json.dumps(body.get("input"), ensure_ascii=False))
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": approx_tokens(text),
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + approx_tokens(text),
        }
        part = {"type": "output_text", "text": text, "annotations": []}
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [part],
        }
        done = {
            "id": response_id,
            "object": "response",
            "created_at": int(self.clock()),
            "model": body["model"],
            "status": "completed",
            "output": [message],
            "usage": usage,
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if body.get("stream") is not True:
            return self.json_response(200, done)
        pieces = [text[i : i + outcome.chunk_size] for i in range(0, len(text), outcome.chunk_size)]
        opening = {**done, "status": "in_progress", "output": [], "usage": None}
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": opening},
            {"type": "response.in_progress", "response": opening},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**message, "status": "in_progress", "content": []},
            },
            {
                "type": "response.content_part.added",
                "item_id": message_id,
                "output_index": 0,
                "content_index": 0,
                "part": {**part, "text": ""},
            },
            *(
                {
                    "type": "response.output_text.delta",
                    "item_id": message_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                }
                for piece in pieces
            ),
            {
                "type": "response.output_text.done",
                "item_id": message_id,
                "output_index": 0,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
            {
                "type": "response.content_part.done",
                "item_id": message_id,
                "output_index": 0,
                "content_index": 0,
                "part": part,
            },
            {"type": "response.output_item.done", "output_index": 0, "item": message},
            {"type": "response.completed", "response": done},
        ]
        frames = [
            f"event: {event['type']}\ndata: "
            f"{dumps({**event, 'sequence_number': number})}\n\n".encode()
            for number, event in enumerate(events)
        ]
        return self.stream_response(200, frames, {"Content-Type": "text/event-stream"})

    # -- admission ------------------------------------------------------------------------

    def _admit(self, request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None]:
        """Check region, key, JSON body and model; record the workspace header."""
        body, refused = self._gate(request)
        if refused == "auth":
            return body, self._error(Failure("auth"))
        if refused == "json":
            return body, self._invalid(BAD_JSON)
        if refused == "model":
            return body, self._invalid(EMPTY_MODEL[1])
        if refused == "unknown_model":
            message = f"The model `{body['model']}` does not exist or you do not have access to it."
            return body, self._error(Failure("model_not_found", message=message))
        return body, None

    # -- non-stream rendering --------------------------------------------------------------

    def _complete(self, call: _CompatCall, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a non-stream request."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, call.uuid)
        if isinstance(outcome, MidStreamError):
            return self._error(Failure(outcome.kind), call.uuid)
        if isinstance(outcome, Sensitive):
            outcome = Reply("".join(sent_chunks(outcome)), finish_reason="content_filter")
        if isinstance(outcome, StreamCut):
            body = dumps(self._completion(call, Reply(outcome.content))).encode("utf-8")
            headers = {"Content-Type": "application/json"}
            half = [body[: len(body) // 2]]
            return self.stream_response(200, half, headers, cut=outcome.cut_raises)
        return self.json_response(200, self._completion(call, outcome))

    def _completion(self, call: _CompatCall, reply: Reply) -> dict[str, Any]:
        """The compatible-mode ``chat.completion`` body, in DashScope's key order."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning_content is not None:
            message["reasoning_content"] = reply.reasoning_content
        if reply.tool_calls:
            message["tool_calls"] = [
                self._tool_call(call, i, spec, spec.arguments_json())
                for i, spec in enumerate(reply.tool_calls)
            ]
        choice = {
            "message": message,
            "finish_reason": reply.resolved_finish_reason(),
            "index": 0,
            "logprobs": None,
        }
        return {
            "choices": [choice],
            "object": "chat.completion",
            "usage": self._usage(call, reply),
            "created": call.created,
            "system_fingerprint": None,
            "model": call.model,
            "id": call.id,
        }

    def _tool_call(
        self, call: _CompatCall, index: int, spec: ToolCallSpec, arguments: str
    ) -> dict[str, Any]:
        return {
            "function": {"name": spec.name, "arguments": arguments},
            "index": index,
            "id": _tool_call_id(call.uuid, index, spec),
            "type": "function",
        }

    def _usage(self, call: _CompatCall, reply: Reply) -> dict[str, Any]:
        """Scripted usage, or OpenAI usage with ``cached_tokens: 0`` from text lengths."""
        if reply.usage is not None:
            return dict(reply.usage)
        completion = approx_tokens(reply.completion_text())
        return {
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": call.prompt_tokens + completion,
            "prompt_tokens_details": dict(call.cache or {"cached_tokens": 0}),
        }

    # -- stream rendering ------------------------------------------------------------------

    def _stream(self, call: _CompatCall, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a ``stream: true`` request as D8 SSE."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, call.uuid)
        if isinstance(outcome, Reply):
            return self.stream_response(200, self._reply_events(call, outcome), COMPAT_SSE_HEADERS)
        events = [self._role_chunk(call)]
        events += [self._chunk(call, {"content": text}) for text in sent_chunks(outcome)]
        if isinstance(outcome, StreamCut):
            return self.stream_response(200, events, COMPAT_SSE_HEADERS, cut=outcome.cut_raises)
        if isinstance(outcome, MidStreamError):
            _, code, message, kind = COMPAT_ERRORS[outcome.kind]
            if outcome.kind == "content_filter":
                message = OUTPUT_FILTERED
            error = {"message": message, "type": kind, "param": None, "code": code}
            events.append(_data({"error": error}))
            return self.stream_response(200, events, COMPAT_SSE_HEADERS)
        partial = Reply("".join(sent_chunks(outcome)), finish_reason="content_filter")
        events += self._finish_events(call, partial, {"content": ""})
        return self.stream_response(200, events, COMPAT_SSE_HEADERS)

    def _reply_events(self, call: _CompatCall, reply: Reply) -> list[bytes]:
        """Role chunk, reasoning, content, tool calls, finish chunk, [usage chunk], [DONE]."""
        size = reply.chunk_size
        events = [self._role_chunk(call)]
        events += [
            self._chunk(call, {"reasoning_content": text})
            for text in chunk_text(reply.reasoning_content or "", size)
        ]
        pieces = chunk_text(reply.content, size)
        # As in D8, the last piece of a plain answer rides on the finishing chunk.
        last = pieces.pop() if pieces and not reply.tool_calls else ""
        events += [self._chunk(call, {"content": text}) for text in pieces]
        for index, spec in enumerate(reply.tool_calls):
            for number, piece in enumerate(chunk_text(spec.arguments_json(), size) or [""]):
                if number == 0:
                    tool = self._tool_call(call, index, spec, piece)
                else:
                    # UNSURE: later fragments' fields; an empty id and no name are sent.
                    tool = {
                        "function": {"arguments": piece},
                        "index": index,
                        "id": "",
                        "type": "function",
                    }
                events.append(self._chunk(call, {"tool_calls": [tool]}))
        return events + self._finish_events(call, reply, {"content": last})

    def _role_chunk(self, call: _CompatCall) -> bytes:
        """D8's first chunk: empty content with the role."""
        choice = {
            "delta": {"content": "", "role": "assistant"},
            "index": 0,
            "logprobs": None,
            "finish_reason": None,
        }
        return _data({"choices": [choice], **call.tail()})

    def _chunk(self, call: _CompatCall, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """A content chunk in D8's later key order (finish_reason first)."""
        choice = {"finish_reason": finish, "delta": delta, "index": 0, "logprobs": None}
        return _data({"choices": [choice], **call.tail()})

    def _finish_events(self, call: _CompatCall, reply: Reply, delta: dict[str, Any]) -> list[bytes]:
        """The finishing chunk, the usage chunk when asked for, then ``[DONE]``."""
        events = [self._chunk(call, delta, reply.resolved_finish_reason())]
        if call.include_usage:
            # Replacing the null keeps D8's key order: usage between object and created.
            events.append(_data({"choices": [], **call.tail(), "usage": self._usage(call, reply)}))
        return [*events, DONE_EVENT]

    # -- errors ------------------------------------------------------------------------------

    def _error(self, failure: Failure, uuid: str | None = None) -> httpx.Response:
        """A Failure as the compatible-mode error body, overrides applied."""
        status, code, message, kind = COMPAT_ERRORS[failure.kind]
        return self._error_response(
            failure.status or status,
            failure.code or code,
            failure.message or message,
            kind,
            failure.headers,
            uuid,
        )

    def _invalid(self, message: str) -> httpx.Response:
        """400 ``invalid_parameter_error``."""
        return self._error_response(
            400, "invalid_parameter_error", message, "invalid_request_error"
        )

    def _error_response(
        self,
        status: int,
        code: str,
        message: str,
        kind: str,
        headers: Mapping[str, str] | None = None,
        uuid: str | None = None,
    ) -> httpx.Response:
        """``{"error":{code,param,message,type},"id":"chatcmpl-…","request_id":"…"}``."""
        uuid = uuid or self._uuid()
        payload = {
            "error": {"code": code, "param": None, "message": message, "type": kind},
            "id": f"chatcmpl-{uuid}",
            "request_id": uuid,
        }
        return self.json_response(status, payload, headers)

    def _uuid(self) -> str:
        return _uuid(f"dashscope-compatible/{self.next_serial()}")


# ------------------------------------------------------------------------------ helpers


def _data(payload: Mapping[str, Any]) -> bytes:
    """One OpenAI-style SSE event: ``data: {json}`` and a blank line."""
    return f"data: {dumps(payload)}\n\n".encode()


def _uuid(seed: str) -> str:
    """A UUID-shaped id (8-4-4-4-12 hex) derived from ``seed``."""
    h = hashlib.sha256(seed.encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def _message_text(message: Any) -> str:
    """The text of a message: string content or the joined text parts (native or OpenAI)."""
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = (part.get("text") for part in content if isinstance(part, dict))
        return " ".join(text for text in texts if isinstance(text, str))
    return ""
