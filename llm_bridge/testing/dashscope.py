"""An offline fake of Alibaba DashScope's native API (``/api/v1``).

:class:`FakeDashScope` (``https://dashscope.aliyuncs.com/api/v1``) speaks the native protocol
described in docs/providers/dashscope.md ("The native wire"): ``{model, input: {messages},
parameters}`` bodies on the text-generation and multimodal-generation paths, streaming
selected by the ``X-DashScope-SSE: enable`` header (a ``stream`` body field is ignored),
D1/D4 bodies, D2/D3 streams framed as ``id:N``/``event:result``/``:HTTP_STATUS/200``/
``data:{json}`` with the string ``"null"`` as the mid-stream finish reason, running usage on
every event and no ``[DONE]``; cumulative content unless ``parameters.incremental_output`` is
true; flat ``{code, message, request_id}`` errors, SSE-framed (D6) on stream requests while
the content type still says JSON; and D7 embeddings returned out of order with
``text_index``.

It takes ``host="dashscope-intl.aliyuncs.com"`` to serve the international region instead.
API keys are region-bound, so a request to the other region's host answers 401. The
OpenAI-compatible mode is :class:`~llm_bridge.testing.dashscope_compatible.FakeDashScopeCompatible`
(re-exported here).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Optional

import httpx

from ._dashscope_gateway import (
    ALGO,
    ARREARS,
    BAD_JSON,
    BAD_PARAMETER,
    CONTEXT_LENGTH,
    DEFAULT_HOST,
    EMPTY_MODEL,
    INTERNAL_ERROR,
    JSON_WORD,
    NO_USER_MESSAGE,
    OUTPUT_FILTERED,
    STREAM_ONLY,
    DashScopeGateway,
    assistant_message,
    batch_error,
    embedding_rule,
    mentions_json,
    tool_call,
    tool_call_piece,
    wants_json_object,
)
from ._fake import (
    approx_tokens,
    dumps,
    is_text_list,
    last_user_text,
    message_text,
    unit_vector,
    uuid_from,
)
from ._script import (
    Failure,
    MidStreamError,
    Outcome,
    Raw,
    Reply,
    Sensitive,
    StreamCut,
    chunk_text,
    sent_chunks,
    stop_words,
    stopped,
)
from .dashscope_compatible import FakeDashScopeCompatible

__all__ = ["FakeDashScope", "FakeDashScopeCompatible"]

TEXT_PATH = "/services/aigc/text-generation/generation"
MULTIMODAL_PATH = "/services/aigc/multimodal-generation/generation"
EMBEDDING_PATH = "/services/embeddings/text-embedding/text-embedding"

SSE_HEADERS = {"Content-Type": "text/event-stream;charset=UTF-8"}
#: Failed stream requests: SSE-framed body, JSON content type (D6, live-probe note).
SSE_ERROR_HEADERS = {"Content-Type": "application/json"}

#: Failure kind -> (HTTP status, code, message) for the native API (D5, D6; docs/providers/
#: dashscope.md "The native wire").
ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (
        429,
        "Throttling.RateQuota",
        "Requests rate limit exceeded, please try again later.",
    ),
    # UNSURE: Alibaba lists both 429 Throttling and 503 ModelUnavailable; 503 is the one the
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
    # UNSURE: message text; only the code is documented for the public host.
    "model_not_found": (404, "ModelNotFound", "Model not exist."),
    "bad_request": (400, "InvalidParameter", BAD_PARAMETER),
}
# Request-validation answers of the native API (all 400 InvalidParameter unless noted).
# Texts marked UNSURE are this fake's wording of a rule documented without the server's text.
NO_MESSAGES = 'Either "prompt" or "messages" must exist and cannot both be none'
BAD_ROLE = (  # UNSURE: wording
    ALGO + "Role must be in [user, assistant, system, function, plugin, tool] and the last "
    "message's role must be user, function or tool"
)
URL_ERROR = "url error"
MEDIA_ON_TEXT_PATH = (  # UNSURE: wording
    ALGO + "Input content must be a string for text-generation models; image, video and audio "
    "parts need a multimodal model on the multimodal-generation endpoint"
)
THINKING_NEEDS_INCREMENTAL = (  # UNSURE: wording
    ALGO + 'The incremental_output parameter must be "true" when enable_thinking is true'
)
STREAM_ONLY_NEEDS_INCREMENTAL = ALGO + "This model only support incremental_output set to True"
INCREMENTAL_WITHOUT_STREAM = "parameter incremental_output only support stream call"
EMPTY_INPUT = ("BadRequest.EmptyInput", 'Required parameter "input" missing from request.')

MESSAGE_ROLES = frozenset({"system", "user", "assistant", "tool", "function", "plugin"})
LAST_ROLES = frozenset({"user", "tool", "function"})
MEDIA_KEYS = ("image", "video", "audio")
MEDIA_TYPES = frozenset({"image_url", "video_url", "input_audio", "image", "video", "audio"})


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
    #: ``parameters.n``: a non-stream answer in ``choices`` holds that many copies.
    n: int = 1


class FakeDashScope(DashScopeGateway):
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
        failed = self.queued_failure(lambda failure: self._error(failure, sse=False))
        if failed is not None:
            return failed
        model = body["model"]
        source = body.get("input")
        texts = source.get("texts") if isinstance(source, dict) else None
        if not is_text_list(texts) or not texts:
            return self._invalid("input.texts must be a non-empty list of strings", sse=False)
        rule = embedding_rule(model, body.get("parameters"))
        if isinstance(rule, str):
            return self._invalid(rule, sse=False)
        size, limit = rule
        if len(texts) > limit:
            return self._invalid(batch_error(limit), sse=False)
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
        """Validate like the server, then answer the next scripted (or echo) outcome, cut at
        ``parameters.stop`` (`stopped`)."""
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
            model, last_user_text(messages, message_text), parameters, messages
        )
        outcome = stopped(outcome, stop_words(parameters.get("stop")))
        call = _Call(
            request_id=self._request_id(),
            model=model,
            prompt_tokens=sum(approx_tokens(message_text(m)) for m in messages),
            message_format=parameters.get("result_format") == "message",
            multimodal=multimodal_path,
            incremental=parameters.get("incremental_output") is True,
            cache=self.cache_details(messages),
            n=self.choices_served(model, parameters),
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
        if wants_json_object(parameters) and not mentions_json(messages):
            return JSON_WORD
        thinking = self.thinking_problem(model, parameters, stream=sse)
        if thinking is not None:
            return thinking
        incremental = parameters.get("incremental_output") is True
        if self.is_stream_only(model):
            if not sse:
                return STREAM_ONLY
            if not incremental:
                return STREAM_ONLY_NEEDS_INCREMENTAL
        if sse and self.thinks(model, parameters) and not incremental:
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
        return self.json_response(200, self._completion(call, outcome), _answered(call))

    def _completion(self, call: _Call, reply: Reply) -> dict[str, Any]:
        """The D1 body (``choices``, or ``text`` for result_format text), or D4 for calls."""
        finish = reply.resolved_finish_reason()
        output: dict[str, Any]
        if _text_format(call, reply):
            output = {"text": reply.content, "finish_reason": finish}
        else:
            message = assistant_message(call.request_id, _content(call, reply.content), reply)
            output = {"choices": [{"finish_reason": finish, "message": message}] * call.n}
        usage = self._final_usage(call, reply, stream=False)
        if call.n > 1 and reply.usage is None and "choices" in output:
            usage["output_tokens"] *= call.n  # (every choice's tokens, as providers count)
            usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        return {"output": output, "usage": usage, "request_id": call.request_id}

    def _final_usage(self, call: _Call, reply: Reply, *, stream: bool) -> dict[str, Any]:
        """Scripted usage, or usage from text lengths (stream events use D2's key order)."""
        if reply.usage is not None:
            return dict(reply.usage)
        reasoning = reply.reasoning_content if not _text_format(call, reply) else None
        completion = approx_tokens(reply.completion_text())
        usage = _native_usage(call.prompt_tokens, completion, reasoning, stream=stream)
        if call.cache is not None:
            # Explicit-cache figures name their cache, on a hit as on a creation.
            usage["prompt_tokens_details"] = {**call.cache, "cache_type": "ephemeral"}
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
            return self.stream_response(200, writer.finish(), _answered(call, SSE_HEADERS))
        partial = Reply("".join(sent_chunks(outcome)), chunk_size=outcome.chunk_size)
        writer = _NativeStream(self, call, partial)
        writer.run(("content", 0, piece) for piece in sent_chunks(outcome))
        if isinstance(outcome, StreamCut):
            frames = writer.frames()
            return self.stream_response(
                200, frames, _answered(call, SSE_HEADERS), cut=outcome.cut_raises
            )
        if isinstance(outcome, MidStreamError):
            status, code, message = ERRORS[outcome.kind]
            if outcome.kind == "content_filter":
                message = OUTPUT_FILTERED
            payload = {"code": code, "message": message, "request_id": call.request_id}
            frames = writer.frames()
            frames.append(_frame(len(frames) + 1, "error", status, payload))
            return self.stream_response(200, frames, _answered(call, SSE_HEADERS))
        # Sensitive: the filter ends the answer with a content_filter finish (UNSURE).
        frames = writer.finish("content_filter")
        return self.stream_response(200, frames, _answered(call, SSE_HEADERS))

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
        return uuid_from(f"dashscope-request/{self.next_serial()}")


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
            tool = tool_call_piece(self.call.request_id, index, spec, piece, first=first_piece)
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
                tool_call(self.call.request_id, i, self.reply.tool_calls[i], arguments)
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


def _answered(call: _Call, headers: Mapping[str, str] = {}) -> dict[str, str]:
    """``headers`` with the answer's request id in ``x-request-id``, where DashScope sends it
    (its SDK reads the header when a body has none)."""
    return {**headers, "x-request-id": call.request_id}
