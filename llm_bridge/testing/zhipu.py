"""An offline fake of Zhipu GLM API v4 that answers in Zhipu's native wire format.

It follows the wire shapes of docs/providers/zhipu.md ("The fake"): non-stream bodies are
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
from typing import Any, Callable, Iterable, Mapping

import httpx

from ._fake import approx_tokens, sse_event
from ._openai_wire import OpenAIWireFake, PrefixCache, WireCall, WireError, embedding_items
from ._script import Failure, Outcome, Reply, ToolCallSpec

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=UTF-8"}

#: Failure kind -> Zhipu's answer: HTTP status, business code, message (docs/providers/
#: zhipu.md, "The fake" / "Errors").
ERRORS: dict[str, WireError] = {
    "rate_limit": WireError(429, "1302", "您的账户已达到速率限制，请您控制请求频率"),
    "overloaded": WireError(429, "1305", "该模型当前访问量过大，请您稍后再试"),
    "arrears": WireError(429, "1113", "您的账户已欠费，请充值后重试"),
    "auth": WireError(401, "1002", "Authorization Token非法，请确认Authorization Token正确传递。"),
    "content_filter": WireError(
        400,
        "1301",
        "系统检测到输入或生成内容可能包含不安全或敏感内容，"
        "请您避免输入易产生敏感内容的提示语，感谢您的配合。",
    ),
    "context_length": WireError(400, "1261", "Prompt 超过最大长度"),
    "server_error": WireError(500, "500", "服务内部错误"),
    "model_not_found": WireError(400, "1211", "模型不存在，请检查模型代码。"),
    "bad_request": WireError(400, "1214", "参数非法，请检查文档。"),
}
EXPIRED_TOKEN = WireError(401, "1003", "Authentication Token 已过期，请重新生成/获取")
#: No ``Authorization`` header at all (protocols.md §1.9: 1001, not 1002's invalid token).
NO_AUTH_HEADER = WireError(401, "1001", "Header中未收到Authentication参数，无法进行身份验证。")
#: GLM-5.3 refusing thinking.type "disabled" (THU-MAIC/OpenMAIC#1400, OpenCSGs/csglite#195).
ALWAYS_THINKS = WireError(400, "1210", "该模型始终思考，不支持关闭思考；请使用 low、high 或 max。")
#: 400 code 1214's message naming the parameter at fault.
INVALID = "{field}参数非法，请检查文档。"
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
#: The most tokens one embeddings request may carry, all texts together (counted here by
#: `approx_tokens`).
MAX_EMBEDDING_REQUEST_TOKENS = 8192


class FakeZhipu(OpenAIWireFake):
    """Fake ``https://open.bigmodel.cn/api/paas/v4``: chat completions (JSON or SSE) and embeddings.

    With ``api_key`` set, requests must authenticate with ``Bearer <api_key>`` or a valid
    HS256 JWT signed with the key's secret (401 code 1002 otherwise, 1003 when expired).
    With ``model_names`` set, other models get 400 code 1211. ``clock`` (seconds) drives
    ``created`` and JWT expiry checks; ``split_bytes`` re-chunks stream bodies.
    """

    base_url = "https://open.bigmodel.cn/api/paas/v4"
    #: The Coding Plan's root serves the same API (on either host).
    other_roots = ("/api/coding/paas/v4",)
    sse_headers = SSE_HEADERS
    sort_keys = True
    filter_finish = "sensitive"
    #: Zhipu's v4 API documents no model list: ``GET /models`` answers 404, as the real
    #: one does (the SDK's Zhipu adapter says so too: ``lists_models = False``).
    lists_models = False
    errors = ERRORS
    embedding_input_message = INVALID.format(field="input")

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
        self._cache = PrefixCache(whole=False)

    # -- admission and request rules ---------------------------------------------------------

    def _admit(self, request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None]:
        """Check auth, JSON body and model the way the server does before generating."""
        auth_error = self._check_auth(request.headers.get("Authorization", ""))
        if auth_error is not None:
            return {}, self._error_response(auth_error)
        try:
            body = json.loads(request.content)
        except ValueError:
            return {}, self._invalid(INVALID.format(field="body"))
        if not isinstance(body, dict):
            return {}, self._invalid(INVALID.format(field="body"))
        if self.model_names is not None and body.get("model") not in self.model_names:
            return body, self._error(Failure("model_not_found"))
        return body, None

    def _check_auth(self, header: str) -> WireError | None:
        """None when ``header`` carries the raw key or a valid JWT, else the error to send."""
        if self.api_key is None:
            return None
        if not header.strip():
            return NO_AUTH_HEADER
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else header
        if token == self.api_key:
            return None
        expiry_ms = verify_jwt(token, self.api_key)
        if expiry_ms is None:
            return ERRORS["auth"]
        if expiry_ms <= int(self.clock() * 1000):
            return EXPIRED_TOKEN
        return None

    def _check_chat(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> httpx.Response | None:
        """Thinking that cannot be turned off (400 code 1210), then GLM's parameter and
        message rules (400 code 1214): one stop word at most, ``tool_choice`` "auto" only
        (protocols.md §1.3), sampling within GLM's ranges, a ``user_id`` of 6 to 128
        characters, function tools with a description and parameters, a user message
        among the messages."""
        thinking = _thinking(model, body.get("thinking"), _coding(request))
        if thinking == "refused":
            return self._error_response(ALWAYS_THINKS)
        field = _bad_param(body)
        if field is not None:
            return self._invalid(INVALID.format(field=field))
        if not messages:
            return self._invalid(INVALID.format(field="messages"))
        if not any(isinstance(m, dict) and m.get("role") == "user" for m in messages):
            return self._invalid(INVALID.format(field="messages"))
        for index, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") != "assistant":
                continue
            if not message.get("content") and not message.get("tool_calls"):
                return self._invalid(f"messages[{index}]:content和tool_calls 字段不能同时为空")
            if (
                thinking is True
                and message.get("tool_calls")
                and message.get("reasoning_content") is None
            ):
                return self._invalid(MISSING_REASONING.format(index=index))
        return None

    def _outcome(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> Outcome:
        """The next outcome, without its ``reasoning_content`` when thinking was turned off."""
        outcome = super()._outcome(request, body, model, messages)
        thinking = _thinking(model, body.get("thinking"), _coding(request))
        if thinking is False and isinstance(outcome, Reply) and outcome.reasoning_content:
            return dataclasses.replace(outcome, reasoning_content=None)
        return outcome

    def _ids(self, body: dict[str, Any]) -> tuple[str, str]:
        """The task id, and the caller's ``request_id`` (the task id when it gave none)."""
        task_id = self._task_id()
        return task_id, body.get("request_id") or task_id

    def _prompt_details(self, messages: list[Any]) -> Mapping[str, Any] | None:
        """``cached_tokens`` when GLM's implicit cache holds leading messages of the prompt."""
        cached = self._cache.hit(messages)
        return {"cached_tokens": cached} if cached else None

    def _embedding_size(self, body: dict[str, Any], count: int) -> int | str:
        """At most 64 texts of at most 8K tokens in all; embedding-2 is fixed, others take
        an allowed ``dimensions``."""
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        tokens = sum(approx_tokens(text) for text in texts)
        if count > MAX_EMBEDDING_INPUTS or tokens > MAX_EMBEDDING_REQUEST_TOKENS:
            return INVALID.format(field="input")
        size = _embedding_size(str(body.get("model", "")), body.get("dimensions"))
        return INVALID.format(field="dimensions") if size is None else size

    def _embedding_body(
        self, body: dict[str, Any], vectors: list[list[float]], tokens: int
    ) -> dict[str, Any]:
        """OpenAI's list, with ``completion_tokens: 0`` in the usage (keys sorted on output)."""
        return {
            "data": embedding_items(vectors),
            "model": str(body.get("model", "")),
            "object": "list",
            "usage": {"completion_tokens": 0, "prompt_tokens": tokens, "total_tokens": tokens},
        }

    # -- rendering -------------------------------------------------------------------------

    def _completion(
        self, call: WireCall, reply: Reply, *, filtered: bool = False
    ) -> dict[str, Any]:
        """The Z1/Z3 body for a reply, without ``object`` (keys are sorted on output, as Zhipu
        sends them)."""
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
            "id": call.id,
            "model": call.model,
            "request_id": call.request_id,
            "usage": self._usage(call, reply),
        }

    def _tool_calls(self, call: WireCall, specs: Iterable[ToolCallSpec]) -> list[dict[str, Any]]:
        """Wire tool calls: ``call_<digits>`` ids, ``index``, ``type``, string arguments."""
        return [
            {
                "id": spec.id or f"call_{_digits(f'{call.id}/{index}', 19)}",
                "index": index,
                "type": "function",
                "function": {"name": spec.name, "arguments": spec.arguments_json()},
            }
            for index, spec in enumerate(specs)
        ]

    def _delta_event(self, call: WireCall, delta: dict[str, Any]) -> bytes:
        """An intermediate Z2 chunk: ``finish_reason`` absent, role repeated."""
        choice = {"index": 0, "delta": {"role": "assistant", **delta}}
        return sse_event({**_chunk_header(call), "choices": [choice]})

    def _closing_deltas(
        self, call: WireCall, reply: Reply, deltas: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every text chunk as it is; the tool calls, all at once, finish the stream."""
        if reply.tool_calls:
            return deltas, {"tool_calls": self._tool_calls(call, reply.tool_calls)}
        return deltas, {"content": ""}

    def _finish_events(
        self, call: WireCall, reply: Reply, delta: dict[str, Any], *, filtered: bool = False
    ) -> list[bytes]:
        """The last chunk: ``finish_reason`` set and ``usage`` at top level."""
        choice = {
            "index": 0,
            "finish_reason": reply.resolved_finish_reason(),
            "delta": {"role": "assistant", **delta},
        }
        chunk = {**_chunk_header(call), "choices": [choice], "usage": self._usage(call, reply)}
        return [sse_event(chunk)]

    def _stream_error(self, call: WireCall, kind: str) -> dict[str, Any]:
        """Zhipu's error object, sent as a data event."""
        return self._error_body(ERRORS[kind], call)

    # -- errors and ids --------------------------------------------------------------------

    def _error_body(self, error: WireError, call: WireCall | None) -> dict[str, Any]:
        """``{"error":{"code","message"}}``."""
        return {"error": {"code": error.code, "message": error.message}}

    def _task_id(self) -> str:
        """A Zhipu-style task id: Beijing-time timestamp plus 32 hex digits, deterministic."""
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(self.clock() + 8 * 3600))
        digest = hashlib.sha256(f"zhipu-task/{self.next_serial()}".encode()).hexdigest()
        return stamp + digest[:32]


def _chunk_header(call: WireCall) -> dict[str, Any]:
    """The leading keys of every stream chunk, in Z2 order."""
    return {"id": call.id, "created": call.created, "model": call.model}


def _coding(request: httpx.Request) -> bool:
    """True for a request to the Coding Plan's root."""
    return "/coding/" in request.url.path


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


def _bad_param(body: dict[str, Any]) -> str | None:
    """The first parameter GLM refuses (protocols.md §1.3; docs/providers/zhipu.md): more
    than one stop word, a ``tool_choice`` other than "auto", a temperature outside
    (0, 1] or a ``top_p`` outside (0, 1) (GLM's documented ranges, taken leniently: the
    adapter keeps within [0.01, 0.99]), a ``user_id`` not of 6 to 128 characters, a
    function tool without its description or parameters."""
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > 1:
        return "stop"
    if body.get("tool_choice") not in (None, "auto"):
        return "tool_choice"
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if isinstance(temperature, (int, float)) and not 0 < temperature <= 1:
        return "temperature"
    if isinstance(top_p, (int, float)) and not 0 < top_p < 1:
        return "top_p"
    user_id = body.get("user_id")
    if isinstance(user_id, str) and not 6 <= len(user_id) <= 128:
        return "user_id"
    for tool in body.get("tools") or ():
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and not {"description", "parameters"} <= function.keys():
            return "tools"
    return None
