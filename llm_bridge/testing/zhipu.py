"""An offline fake of Zhipu GLM API v4 that answers in Zhipu's native wire format.

It follows /work/shared/protocols.md §1 and the §7.1 fixtures: non-stream bodies are
key-sorted compact JSON without an ``object`` field (Z1, Z3), streams are ``data: {json}``
events in Z2 order ending with ``data: [DONE]``, and errors are
``{"error":{"code":"<digits>","message":...}}`` with Zhipu's business codes.

Thinking, as docs/providers/zhipu.md records it: ``thinking: {"type": ...}`` is honoured
(a reply's ``reasoning_content`` is left out when thinking is off); GLM-5.3 and
GLM-5.3-Flash always think and answer ``"disabled"`` with 400 code 1210 on the standard
root (the Coding Plan's root takes it and thinks anyway); while thinking is on, an
assistant message with tool calls but no ``reasoning_content`` is refused (interleaved
thinking). Messages follow GLM's rules: at least one user message, and no assistant
message without both content and tool calls (400 code 1214). The implicit context cache
is modelled: a request whose leading messages were the leading messages of an earlier
request reports them as ``usage.prompt_tokens_details.cached_tokens``.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Optional

import httpx

from ._fake import (
    FakeProvider,
    approx_tokens,
    dumps,
    is_text_list,
    last_user_text,
    message_text,
    sse_event,
    unit_vector,
)
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

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=UTF-8"}
DONE_EVENT = b"data: [DONE]\n\n"

#: Failure kind -> (HTTP status, business code, message), from protocols.md §1.8 and §7.1.
ERRORS: dict[str, tuple[int, str, str]] = {
    "rate_limit": (429, "1302", "您的账户已达到速率限制，请您控制请求频率"),
    "overloaded": (429, "1305", "该模型当前访问量过大，请您稍后再试"),
    "arrears": (429, "1113", "您的账户已欠费，请充值后重试"),
    "auth": (401, "1002", "Authorization Token非法，请确认Authorization Token正确传递。"),
    "content_filter": (
        400,
        "1301",
        "系统检测到输入或生成内容可能包含不安全或敏感内容，"
        "请您避免输入易产生敏感内容的提示语，感谢您的配合。",
    ),
    "context_length": (400, "1261", "Prompt 超过最大长度"),
    "server_error": (500, "500", "服务内部错误"),
    "model_not_found": (400, "1211", "模型不存在，请检查模型代码。"),
    "bad_request": (400, "1214", "参数非法，请检查文档。"),
}
EXPIRED_TOKEN = (401, "1003", "Authentication Token 已过期，请重新生成/获取")
#: GLM-5.3 refusing thinking.type "disabled" (THU-MAIC/OpenMAIC#1400, OpenCSGs/csglite#195).
ALWAYS_THINKS = (400, "1210", "该模型始终思考，不支持关闭思考；请使用 low、high 或 max。")
MISSING_REASONING = (
    "thinking is enabled but reasoning_content is missing in assistant tool call message "
    "at index {index}"
)

#: Model-name stems by thinking behaviour (docs.bigmodel.cn thinking-mode; GLM-5.3 notes).
ALWAYS_THINKING_STEMS = ("glm-5.3",)
THINKING_BY_DEFAULT_STEMS = ("glm-4.7", "glm-5")

EMBEDDING_3_DIMENSIONS = frozenset({256, 512, 1024, 2048})
EMBEDDING_3_DEFAULT_DIMENSIONS = 2048
EMBEDDING_2_DIMENSIONS = 1024
MAX_EMBEDDING_INPUTS = 64


class FakeZhipu(FakeProvider):
    """Fake ``https://open.bigmodel.cn/api/paas/v4``: chat completions (JSON or SSE) and embeddings.

    With ``api_key`` set, requests must authenticate with ``Bearer <api_key>`` or a valid
    HS256 JWT signed with the key's secret (401 code 1002 otherwise, 1003 when expired).
    With ``model_names`` set, other models get 400 code 1211. ``clock`` (seconds) drives
    ``created`` and JWT expiry checks; ``split_bytes`` re-chunks stream bodies.
    """

    base_url = "https://open.bigmodel.cn/api/paas/v4"
    #: The Coding Plan's root serves the same API (on either host).
    other_roots = ("/api/coding/paas/v4",)
    routes = (
        ("POST", "/chat/completions", "chat_completions"),
        ("POST", "/embeddings", "embeddings"),
    )

    def __init__(
        self,
        api_key: str | None = None,
        *,
        model_names: set[str] | None = None,
        split_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(split_bytes=split_bytes, clock=clock)
        self.api_key = api_key
        self.model_names = model_names
        self._cached_prefixes: set[str] = set()

    # -- routes ----------------------------------------------------------------------------

    def chat_completions(self, request: httpx.Request) -> httpx.Response:
        """``POST /chat/completions``: a scripted (or echo) answer, streamed when asked."""
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        messages = body.get("messages") or []
        model = str(body.get("model", ""))
        coding = "/coding/" in request.url.path
        thinking = _thinking(model, body.get("thinking"), coding)
        if thinking == "refused":
            return self._error_response(*ALWAYS_THINKS)
        rejection = self._check_messages(messages, thinking is True)
        if rejection is not None:
            return rejection
        outcome = self.next_outcome() or self.default_reply(model, last_user_text(messages))
        if thinking is False and isinstance(outcome, Reply) and outcome.reasoning_content:
            outcome = dataclasses.replace(outcome, reasoning_content=None)
        call = _Call(
            task_id=self._task_id(),
            created=int(self.clock()),
            model=model,
            request_id=body.get("request_id"),
            prompt_tokens=sum(approx_tokens(message_text(m)) for m in messages),
            cached_tokens=self._cache(messages),
        )
        if body.get("stream"):
            return self._stream(call, outcome)
        return self._complete(call, outcome)

    def embeddings(self, request: httpx.Request) -> httpx.Response:
        """``POST /embeddings``: deterministic hash-derived vectors in the OpenAI shape.

        Only a queued Failure or Raw at the head of the queue applies here; chat replies stay
        queued for the chat requests they were scripted for.
        """
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        outcome = self.next_outcome(lambda o: isinstance(o, (Failure, Raw)))
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        model = str(body.get("model", ""))
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not is_text_list(texts) or not texts or len(texts) > MAX_EMBEDDING_INPUTS:
            return self._invalid("input")
        size = _embedding_size(model, body.get("dimensions"))
        if size is None:
            return self._invalid("dimensions")
        tokens = sum(approx_tokens(text) for text in texts)
        payload = {
            "data": [
                {"embedding": unit_vector(text, size), "index": i, "object": "embedding"}
                for i, text in enumerate(texts)
            ],
            "model": model,
            "object": "list",
            "usage": {"completion_tokens": 0, "prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self.json_response(200, payload, sort_keys=True)

    # -- admission: auth, body, model --------------------------------------------------------

    def _admit(self, request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None]:
        """Check auth, JSON body and model the way the server does before generating."""
        auth_error = self._check_auth(request.headers.get("Authorization", ""))
        if auth_error is not None:
            return {}, self._error_response(*auth_error)
        try:
            body = json.loads(request.content)
        except ValueError:
            return {}, self._invalid("body")
        if not isinstance(body, dict):
            return {}, self._invalid("body")
        if self.model_names is not None and body.get("model") not in self.model_names:
            return body, self._error(Failure("model_not_found"))
        return body, None

    def _check_auth(self, header: str) -> tuple[int, str, str] | None:
        """None when ``header`` carries the raw key or a valid JWT, else the error to send."""
        if self.api_key is None:
            return None
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else header
        if token == self.api_key:
            return None
        expiry_ms = verify_jwt(token, self.api_key)
        if expiry_ms is None:
            return ERRORS["auth"]
        if expiry_ms <= int(self.clock() * 1000):
            return EXPIRED_TOKEN
        return None

    def _check_messages(self, messages: list[Any], thinking: bool) -> httpx.Response | None:
        """GLM's message rules (400 code 1214), checked before generating."""
        if not isinstance(messages, list) or not messages:
            return self._invalid("messages")
        if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
            return self._invalid("messages")
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            if not message.get("content") and not message.get("tool_calls"):
                status, code, _ = ERRORS["bad_request"]
                text = f"messages[{index}]:content和tool_calls 字段不能同时为空"
                return self._error_response(status, code, text)
            if thinking and message.get("tool_calls") and message.get("reasoning_content") is None:
                status, code, _ = ERRORS["bad_request"]
                return self._error_response(status, code, MISSING_REASONING.format(index=index))
        return None

    def _cache(self, messages: list[Any]) -> int:
        """Tokens of the longest leading run of ``messages`` an earlier request began with
        (GLM's implicit cache); this request's leading runs are remembered."""
        keys = [dumps(messages[:length], sort_keys=True) for length in range(1, len(messages))]
        cached = 0
        with self._lock:
            for length in range(len(keys), 0, -1):
                if keys[length - 1] in self._cached_prefixes:
                    cached = sum(approx_tokens(message_text(m)) for m in messages[:length])
                    break
            self._cached_prefixes.update(keys)
        return cached

    # -- non-stream rendering --------------------------------------------------------------

    def _complete(self, call: _Call, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a non-stream request."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        if isinstance(outcome, MidStreamError):
            return self._error(Failure(outcome.kind))
        if isinstance(outcome, Sensitive):
            outcome = Reply("".join(sent_chunks(outcome)), finish_reason="sensitive")
        if isinstance(outcome, StreamCut):
            body = dumps(self._completion(call, Reply(outcome.content)), sort_keys=True)
            half = body.encode("utf-8")[: len(body.encode("utf-8")) // 2]
            headers = {"Content-Type": "application/json"}
            return self.stream_response(200, [half], headers, cut=outcome.cut_raises)
        return self.json_response(200, self._completion(call, outcome), sort_keys=True)

    def _completion(self, call: _Call, reply: Reply) -> dict[str, Any]:
        """The Z1/Z3 body for a reply (keys are sorted on output, as Zhipu sends them)."""
        message: dict[str, Any] = {"content": reply.content, "role": "assistant"}
        if reply.tool_calls:
            message["content"] = reply.content or None
            message["tool_calls"] = self._tool_calls(call, reply.tool_calls)
        if reply.reasoning_content is not None:
            message["reasoning_content"] = reply.reasoning_content
        return {
            "choices": [
                {"finish_reason": reply.resolved_finish_reason(), "index": 0, "message": message}
            ],
            "created": call.created,
            "id": call.task_id,
            "model": call.model,
            "request_id": call.request_id or call.task_id,
            "usage": self._usage(call, reply),
        }

    def _tool_calls(self, call: _Call, specs: Iterable[ToolCallSpec]) -> list[dict[str, Any]]:
        """Wire tool calls: ``call_<digits>`` ids, ``index``, ``type``, string arguments."""
        return [
            {
                "id": spec.id or f"call_{_digits(f'{call.task_id}/{index}', 19)}",
                "index": index,
                "type": "function",
                "function": {"name": spec.name, "arguments": spec.arguments_json()},
            }
            for index, spec in enumerate(specs)
        ]

    def _usage(self, call: _Call, reply: Reply) -> dict[str, Any]:
        """Scripted usage, or usage computed from prompt and reply text lengths."""
        if reply.usage is not None:
            return dict(reply.usage)
        completion = approx_tokens(reply.completion_text())
        usage: dict[str, Any] = {
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": call.prompt_tokens + completion,
        }
        if call.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": call.cached_tokens}
        return usage

    # -- stream rendering ------------------------------------------------------------------

    def _stream(self, call: _Call, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a ``stream: true`` request as Z2-framed SSE."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        if isinstance(outcome, Reply):
            return self.stream_response(200, self._reply_events(call, outcome), SSE_HEADERS)
        events = [self._event(call, {"content": text}) for text in sent_chunks(outcome)]
        if isinstance(outcome, StreamCut):
            return self.stream_response(200, events, SSE_HEADERS, cut=outcome.cut_raises)
        if isinstance(outcome, MidStreamError):
            _, code, message = ERRORS[outcome.kind]
            events.append(sse_event({"error": {"code": code, "message": message}}))
            return self.stream_response(200, events, SSE_HEADERS)
        partial = Reply("".join(sent_chunks(outcome)), finish_reason="sensitive")
        events.append(self._final_event(call, partial, {"content": ""}))
        return self.stream_response(200, [*events, DONE_EVENT], SSE_HEADERS)

    def _reply_events(self, call: _Call, reply: Reply) -> list[bytes]:
        """Reasoning chunks, content chunks, the finishing chunk with usage, then [DONE]."""
        size = reply.chunk_size
        events = [
            self._event(call, {"reasoning_content": text})
            for text in chunk_text(reply.reasoning_content or "", size)
        ]
        events += [self._event(call, {"content": text}) for text in chunk_text(reply.content, size)]
        if reply.tool_calls:
            last_delta = {"tool_calls": self._tool_calls(call, reply.tool_calls)}
        else:
            last_delta = {"content": ""}
        events.append(self._final_event(call, reply, last_delta))
        return [*events, DONE_EVENT]

    def _event(self, call: _Call, delta: dict[str, Any]) -> bytes:
        """An intermediate chunk: ``finish_reason`` absent, role repeated."""
        choice = {"index": 0, "delta": {"role": "assistant", **delta}}
        return sse_event({**call.chunk_header(), "choices": [choice]})

    def _final_event(self, call: _Call, reply: Reply, delta: dict[str, Any]) -> bytes:
        """The last chunk: ``finish_reason`` set and ``usage`` at top level."""
        choice = {
            "index": 0,
            "finish_reason": reply.resolved_finish_reason(),
            "delta": {"role": "assistant", **delta},
        }
        chunk = {**call.chunk_header(), "choices": [choice], "usage": self._usage(call, reply)}
        return sse_event(chunk)

    # -- errors and ids --------------------------------------------------------------------

    def _error(self, failure: Failure) -> httpx.Response:
        """A Failure rendered as Zhipu's native error body, with any overrides applied."""
        status, code, message = ERRORS[failure.kind]
        return self._error_response(
            failure.status or status,
            failure.code or code,
            failure.message or message,
            failure.headers,
        )

    def _invalid(self, field: str) -> httpx.Response:
        """400 code 1214: a parameter is invalid."""
        status, code, _ = ERRORS["bad_request"]
        return self._error_response(status, code, f"{field}参数非法，请检查文档。")

    def _error_response(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """``{"error":{"code","message"}}`` with the given HTTP status."""
        payload = {"error": {"code": code, "message": message}}
        return self.json_response(status, payload, headers, sort_keys=True)

    def _task_id(self) -> str:
        """A Zhipu-style task id: Beijing-time timestamp plus 32 hex digits, deterministic."""
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.clock() + 8 * 3600))
        digest = hashlib.sha256(f"zhipu-task/{self.next_serial()}".encode()).hexdigest()
        return stamp + digest[:32]


@dataclass(frozen=True)
class _Call:
    """What one chat request contributes to its answer: ids, model and prompt size."""

    task_id: str
    created: int
    model: str
    request_id: Optional[str]
    prompt_tokens: int
    cached_tokens: int = 0

    def chunk_header(self) -> dict[str, Any]:
        """The leading keys of every stream chunk, in Z2 order."""
        return {"id": self.task_id, "created": self.created, "model": self.model}


def _thinking(model: str, given: object, coding: bool) -> bool | str | None:
    """Whether ``model`` thinks for a request with ``thinking: given``: True, False (turned
    off), None (the model's own default where it has no fixed one: GLM-4.5/4.6 decide per
    request, older models do not think; a scripted reasoning_content is sent as given),
    or "refused" (turning it off on a model that always thinks, on the standard root)."""
    always = model.startswith(ALWAYS_THINKING_STEMS)
    kind = given.get("type") if isinstance(given, dict) else None
    if kind == "disabled":
        if always:
            return True if coding else "refused"
        return False
    if kind == "enabled" or always or model.startswith(THINKING_BY_DEFAULT_STEMS):
        return True
    return None


def verify_jwt(token: str, api_key: str) -> int | None:
    """Return the ``exp`` (ms) of a well-formed Zhipu JWT signed for ``api_key``, else None.

    Checks: three base64url parts; header ``alg: HS256`` and ``sign_type: SIGN``; HMAC-SHA256
    signature with the key's secret; payload ``api_key`` equal to the key's id; integer
    ``timestamp`` and ``exp`` in milliseconds. Expiry is left to the caller's clock.
    """
    key_id, dot, secret = api_key.partition(".")
    parts = token.split(".")
    if not dot or len(parts) != 3:
        return None
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    expected = hmac.new(secret.encode("utf-8"), signing_input, hashlib.sha256).digest()
    try:
        header, payload = (json.loads(_b64url(part)) for part in parts[:2])
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error):
        return None
    if not hmac.compare_digest(signature, expected):
        return None
    if not (isinstance(header, dict) and isinstance(payload, dict)):
        return None
    if header.get("alg") != "HS256" or header.get("sign_type") != "SIGN":
        return None
    timestamp, exp = payload.get("timestamp"), payload.get("exp")
    if payload.get("api_key") != key_id or not (_is_ms(timestamp) and _is_ms(exp)):
        return None
    return exp


def _is_ms(value: object) -> bool:
    """True for an integer that looks like a Unix time in milliseconds (not seconds)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 10**12


def _b64url(part: str) -> bytes:
    """Decode unpadded base64url, as used by JWTs."""
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _embedding_size(model: str, dimensions: object) -> int | None:
    """Vector length for a model: embedding-2 is fixed; others take an allowed ``dimensions``."""
    if model == "embedding-2":
        return EMBEDDING_2_DIMENSIONS
    if dimensions is None:
        return EMBEDDING_3_DEFAULT_DIMENSIONS
    if isinstance(dimensions, int) and dimensions in EMBEDDING_3_DIMENSIONS:
        return dimensions
    return None


def _digits(seed: str, count: int) -> str:
    """``count`` decimal digits derived from ``seed`` (for ``call_<digits>`` ids)."""
    return str(int(hashlib.sha256(seed.encode()).hexdigest(), 16))[:count]
