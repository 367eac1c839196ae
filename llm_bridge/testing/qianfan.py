"""Offline fakes of Baidu Qianfan: the native v1 "wenxinworkshop" API and the v2 compatible one.

They follow the wire shapes B1–B8 of docs/providers/qianfan.md ("The fakes"). The OpenAI wire
of v2 is shared with the other OpenAI-shaped fakes (``_openai_wire``).

:class:`FakeQianfan` (v1, ``https://aip.baidubce.com``) issues OAuth access tokens (B1),
accepts ``?access_token=`` or a well-formed ``Authorization: bce-auth-v1/...`` header, enforces
v1's message rules, and answers with flat ``result`` bodies (B2, B4, B6), ``data: {json}``
streams that end on ``is_end`` without ``[DONE]`` (B3), embeddings (B7), and errors as
``{"error_code": N, "error_msg": ...}`` inside HTTP 200 JSON bodies — also for stream
requests (B5).

:class:`FakeQianfanV2` (``https://qianfan.baidubce.com/v2``) is OpenAI-shaped with Qianfan's
``as-`` ids, per-choice ``flag``, ``stream_options.include_usage`` and ``data: [DONE]`` (B8),
as v2 answers today (its chat reference, updated 2025-12-23): ``finish_reason`` ``stop``,
``reasoning_content`` on messages and deltas, ``usage.prompt_tokens_details.cached_tokens``,
v2's message-order rules, and the IAM endpoint that mints bearer tokens from account keys
(``GET https://iam.bj.baidubce.com/v1/BCE-BEARER/token``, bce-auth-v1 signature verified).
v1 was shut down on the public cloud on 2026-08-31; :class:`FakeQianfan` stays for
deployments that still serve it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Iterable, Mapping, Optional
from urllib.parse import quote

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
    uuid_from,
)
from ._openai_wire import OpenAIWireFake, PrefixCache, WireCall, WireError
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
    stop_words,
    stopped,
)

__all__ = ["IAM_HOST", "KNOWN_ENDPOINTS", "FakeQianfan", "FakeQianfanV2"]

SSE_HEADERS = {"Content-Type": "text/event-stream"}
DONE_EVENT = b"data: [DONE]\n\n"

V1_ROOT = "/rpc/2.0/ai_custom/v1/wenxinworkshop"

#: Default OAuth token lifetime in seconds (B1: 30 days).
DEFAULT_TOKEN_TTL = 2592000
#: Lifetime written into the (never honoured) refresh token, as in B1.
REFRESH_TTL = 315360000

#: v1 error messages by code (B5, docs/providers/qianfan.md "The fakes"); used when a test
#: overrides only the code.
V1_MESSAGES: dict[int, str] = {
    1: "Unknown error",
    2: "Service temporarily unavailable",
    3: "Unsupported openapi method",
    4: "Open api request limit reached",
    6: "No permission to access data",
    13: "Get service token failed",
    14: "IAM Certification failed",
    15: "app not exists or create failed",
    17: "Open api daily request limit reached",
    18: "Open api qps request limit reached",
    19: "Open api total request limit reached",
    100: "Invalid parameter",
    110: "Access token invalid or no longer valid",
    111: "Access token expired",
    336000: "Internal error",
    336001: "Invalid Argument",
    336002: "Invalid JSON",
    336003: "Invalid parameter",
    336004: "Permission error for accessing model",
    336005: "API name not exist",
    336006: "the length of messages must be an odd number",
    336007: "the max length of current question is 2000",
    336008: "the max length of system is 20000",
    336100: "try again later",
    336101: "Invalid HTTP method",
    336103: "input too long",
    336104: "invalid system argument",
    336105: "invalid user_setting argument",
    336501: "Rate limit reached for RPM",
    336502: "Rate limit reached for TPM",
}

#: Failure kind -> (error_code, error_msg) for v1; all sent as HTTP 200 unless overridden.
V1_ERRORS: dict[str, tuple[int, str]] = {
    "rate_limit": (18, V1_MESSAGES[18]),
    "overloaded": (336100, V1_MESSAGES[336100]),
    "arrears": (17, V1_MESSAGES[17]),
    "auth": (110, V1_MESSAGES[110]),
    # UNSURE: no native code for a refused prompt was found (B6 filtering is a
    # successful body with finish_reason "content_filter"); 336003 with a "sensitive" message
    # is the choice here.
    "content_filter": (336003, "the input or output contains sensitive content"),
    "context_length": (336103, V1_MESSAGES[336103]),
    "server_error": (336000, V1_MESSAGES[336000]),
    "model_not_found": (3, V1_MESSAGES[3]),
    "bad_request": (336003, "the first message must be user"),
}
TOKEN_INVALID = (110, V1_MESSAGES[110])
TOKEN_EXPIRED = (111, V1_MESSAGES[111])

# Message-rule answers. The 336006 texts are Baidu's own (quoted in public client code next
# to the rule they work around); 336003 for empty content likewise. UNSURE: some reports
# give 336003 for the odd-length rule; 336006 is used.
ODD_LENGTH = (336006, "the length of messages must be an odd number")
EVEN_INDEX_ROLE = (
    336006,
    "the role of message with even index in the messages must be user or function",
)
ODD_INDEX_ROLE = (336006, "the role of message with odd index in the messages must be assistant")
FIRST_NOT_USER = (336003, "the first message must be user")  # UNSURE: code and text
EMPTY_CONTENT = (336003, "message content can not be empty")

#: Endpoint suffix -> model name (chat and embeddings; docs/providers/qianfan.md "The
#: fakes"). Pass it (or
#: your own mapping) as ``endpoints=`` to make unknown suffixes answer error_code 3.
KNOWN_ENDPOINTS: dict[str, str] = {
    "completions_pro": "ERNIE-4.0-8K",
    "ernie-4.0-8k-preview": "ERNIE-4.0-8K-Preview",
    "ernie-4.0-8k-latest": "ERNIE-4.0-8K-Latest",
    "ernie-4.0-turbo-8k": "ERNIE-4.0-Turbo-8K",
    "ernie-4.0-turbo-128k": "ERNIE-4.0-Turbo-128K",
    "completions": "ERNIE-3.5-8K",
    "ernie-3.5-8k-preview": "ERNIE-3.5-8K-Preview",
    "ernie-3.5-128k": "ERNIE-3.5-128K",
    "ernie_bot_8k": "ERNIE-Bot-8K",
    "ernie_speed": "ERNIE-Speed-8K",
    "ernie-speed-128k": "ERNIE-Speed-128K",
    "ernie-speed-pro-128k": "ERNIE-Speed-Pro-128K",
    "eb-instant": "ERNIE-Lite-8K-0922",
    "ernie-lite-8k": "ERNIE-Lite-8K",
    "ernie-lite-pro-128k": "ERNIE-Lite-Pro-128K",
    "ernie-tiny-8k": "ERNIE-Tiny-8K",
    "ernie-novel-8k": "ERNIE-Novel-8K",
    "ernie-func-8k": "ERNIE-Function-8K",
    "ernie-char-8k": "ERNIE-Character-8K",
    "ernie-char-fiction-8k": "ERNIE-Character-Fiction-8K",
    "llama_3_8b": "Meta-Llama-3-8B",
    "llama_3_70b": "Meta-Llama-3-70B",
    "embedding-v1": "Embedding-V1",
    "bge_large_zh": "bge-large-zh",
    "bge_large_en": "bge-large-en",
    "tao_8k": "tao-8k",
}

#: Embedding vector length per v1 endpoint (B7; bge/tao UNSURE); default 384.
EMBEDDING_SIZES = {"embedding-v1": 384, "bge_large_zh": 1024, "bge_large_en": 1024, "tao_8k": 1024}
MAX_EMBEDDING_INPUTS = 16
#: tao-8k takes exactly one text per call (Baidu's page; UNSURE, see B7).
MAX_EMBEDDING_INPUTS_BY_ENDPOINT = {"tao_8k": 1}

#: ``bce-auth-v1/{ak}/{UTC timestamp}/{expiration}/{signed;headers}/{64 hex}``
#: (docs/providers/qianfan.md, "The fakes").
BCE_AUTH = re.compile(
    r"bce-auth-v1/[^/\s]+/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z/\d+/"
    r"(?:[a-z0-9-]+(?:;[a-z0-9-]+)*)?/[0-9a-f]{64}"
)
#: The gateway's answer to a malformed signature (B5; body shape UNSURE).
BCE_SIGNATURE_ERROR = "SignatureDoesNotMatch"
BCE_SIGNATURE_MESSAGE = "Fail to authn user: Signature does not match"


@dataclass
class _Token:
    """One issued access token: when it lapses and whether a test expired or revoked it."""

    expires_at: float
    state: str = "valid"  # "valid" | "expired" | "revoked"


class FakeQianfan(FakeProvider):
    """Fake Qianfan v1 on ``https://aip.baidubce.com``: OAuth tokens, chat and embeddings.

    ``api_key``/``secret_key`` are the application API Key / Secret Key the token endpoint
    checks (None accepts any). With ``api_key`` set, chat and embedding requests must carry
    ``?access_token=`` or a well-formed ``Authorization: bce-auth-v1/...`` header (any keys,
    signature not verified; recorded in :attr:`bce_authorizations`); a malformed bce-auth-v1
    header always gets the gateway's 401. A token this fake issued answers 111 once it lapses
    (``token_ttl`` seconds by ``clock``) or after :meth:`expire_tokens`, and 110 after
    :meth:`revoke_tokens`; a token it never issued answers 110 when ``api_key`` is set and is
    accepted otherwise. With ``endpoints`` (suffix -> model name, e.g. :data:`KNOWN_ENDPOINTS`)
    other suffixes answer error_code 3. v1 carries one function call per answer: extra
    ``ToolCallSpec``s of a Reply are not sent.
    """

    base_url = "https://aip.baidubce.com"
    routes = (
        ("POST", "/oauth/2\\.0/token", "oauth_token"),
        ("GET", "/oauth/2\\.0/token", "oauth_token"),
        ("POST", re.escape(V1_ROOT) + "/chat/(?P<endpoint>[^/]+)", "chat"),
        ("POST", re.escape(V1_ROOT) + "/embeddings/(?P<endpoint>[^/]+)", "embeddings"),
    )
    #: The application id at the end of issued tokens (``...-<appid>``).
    app_id: ClassVar[str] = "8574074"

    def __init__(
        self,
        api_key: str | None = None,
        secret_key: str | None = None,
        *,
        token_ttl: int = DEFAULT_TOKEN_TTL,
        endpoints: dict[str, str] | None = None,
        split_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(split_bytes=split_bytes, clock=clock)
        self.api_key = api_key
        self.secret_key = secret_key
        self.token_ttl = token_ttl
        self.endpoints = endpoints
        #: Requests to ``/oauth/2.0/token``, successful or not (the fake never deduplicates).
        self.token_requests = 0
        #: Every access token issued, in order.
        self.issued_tokens: list[str] = []
        #: Every accepted ``Authorization: bce-auth-v1/...`` header value, in order.
        self.bce_authorizations: list[str] = []
        self._tokens: dict[str, _Token] = {}

    # -- token control ---------------------------------------------------------------------

    def expire_tokens(self) -> FakeQianfan:
        """Make every token issued so far answer error_code 111 (tokens issued later work)."""
        with self._lock:
            for token in self._tokens.values():
                if token.state == "valid":
                    token.state = "expired"
        return self

    def revoke_tokens(self) -> FakeQianfan:
        """Make every token issued so far answer error_code 110 (tokens issued later work)."""
        with self._lock:
            for token in self._tokens.values():
                token.state = "revoked"
        return self

    # -- routes ----------------------------------------------------------------------------

    def oauth_token(self, request: httpx.Request) -> httpx.Response:
        """``POST /oauth/2.0/token?grant_type=client_credentials&client_id=&client_secret=``."""
        with self._lock:
            self.token_requests += 1
        params = request.url.params
        if params.get("grant_type") != "client_credentials":
            # UNSURE: status and text; OAuth 2.0's standard error name.
            payload = {
                "error": "unsupported_grant_type",
                "error_description": "The authorization grant type is not supported",
            }
            return self.json_response(400, payload)
        client_id, client_secret = params.get("client_id", ""), params.get("client_secret", "")
        # B1 gives 401 for both (status UNSURE; the body is what clients match).
        if not client_id or (self.api_key is not None and client_id != self.api_key):
            payload = {"error": "invalid_client", "error_description": "unknown client id"}
            return self.json_response(401, payload)
        if not client_secret or (self.secret_key is not None and client_secret != self.secret_key):
            payload = {
                "error": "invalid_client",
                "error_description": "Client authentication failed",
            }
            return self.json_response(401, payload)
        return self.json_response(200, self._issue_token())

    def chat(self, request: httpx.Request, endpoint: str) -> httpx.Response:
        """``POST .../wenxinworkshop/chat/{endpoint}``: B2/B4/B6 bodies or a B3 stream, cut
        at the request's ``stop`` words (`stopped`; finish ``stop``, not ``normal``)."""
        body, rejection = self._admit(request, endpoint)
        if rejection is not None:
            return rejection
        messages = body.get("messages")
        broken = _check_messages(messages)
        if broken is not None:
            return self._error_response(*broken)
        assert isinstance(messages, list)  # _check_messages refuses anything else
        model = (self.endpoints or {}).get(endpoint, endpoint)
        outcome = self.next_outcome() or self.default_reply(model, last_user_text(messages))
        outcome = stopped(outcome, stop_words(body.get("stop")))
        system = body.get("system") if isinstance(body.get("system"), str) else ""
        prompt = sum(approx_tokens(message_text(m)) for m in messages)
        call = _V1Call(
            id=_as_id(self.next_serial()),
            created=int(self.clock()),
            prompt_tokens=prompt + (approx_tokens(system) if system else 0),
        )
        if body.get("stream"):
            return self._stream(call, outcome)
        return self._complete(call, outcome)

    def embeddings(self, request: httpx.Request, endpoint: str) -> httpx.Response:
        """``POST .../wenxinworkshop/embeddings/{endpoint}``: B7 ``embedding_list`` bodies.

        Only a queued Failure or Raw at the head of the queue applies here; chat replies stay
        queued for the chat requests they were scripted for.
        """
        body, rejection = self._admit(request, endpoint)
        if rejection is not None:
            return rejection
        failed = self.queued_failure(self._error)
        if failed is not None:
            return failed
        texts = body.get("input")
        if not is_text_list(texts) or not texts:
            return self._error_response(336003, "input must be a non-empty array of strings")
        limit = MAX_EMBEDDING_INPUTS_BY_ENDPOINT.get(endpoint, MAX_EMBEDDING_INPUTS)
        if len(texts) > limit:
            return self._error_response(336003, f"embeddings max size is {limit}")
        size = EMBEDDING_SIZES.get(endpoint, 384)
        tokens = sum(approx_tokens(text) for text in texts)
        payload = {
            "id": _as_id(self.next_serial()),
            "object": "embedding_list",
            "created": int(self.clock()),
            "data": [
                {"object": "embedding", "embedding": unit_vector(text, size), "index": i}
                for i, text in enumerate(texts)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
        return self.json_response(200, payload)

    def unknown_route(self, request: httpx.Request) -> httpx.Response:
        """Other ``/rpc/2.0/`` paths answer error_code 3 in a 200 body; anything else 404."""
        if request.url.path.startswith("/rpc/2.0/"):
            return self._error_response(*V1_ERRORS["model_not_found"])
        return super().unknown_route(request)

    # -- admission: auth, endpoint, body -----------------------------------------------------

    def _admit(
        self, request: httpx.Request, endpoint: str
    ) -> tuple[dict[str, Any], httpx.Response | None]:
        """Check credentials, endpoint and JSON body the way the server does before generating."""
        token = request.url.params.get("access_token")
        authorization = request.headers.get("Authorization", "").strip()
        if token is not None:
            auth_error = self._token_error(token)
            if auth_error is not None:
                return {}, self._error_response(*auth_error)
        elif authorization.lower().startswith("bce-auth-v1"):
            if not BCE_AUTH.fullmatch(authorization):
                return {}, self._signature_error()
            with self._lock:
                self.bce_authorizations.append(authorization)
        elif self.api_key is not None:
            return {}, self._error_response(*TOKEN_INVALID)
        if self.endpoints is not None and endpoint not in self.endpoints:
            return {}, self._error_response(*V1_ERRORS["model_not_found"])
        try:
            body = json.loads(request.content)
        except ValueError:
            return {}, self._error_response(336002, V1_MESSAGES[336002])
        if not isinstance(body, dict):
            return {}, self._error_response(336001, V1_MESSAGES[336001])
        return body, None

    def _token_error(self, token: str) -> tuple[int, str] | None:
        """None when ``token`` may be used now, else the (code, message) to answer."""
        with self._lock:
            record = self._tokens.get(token)
        if record is None:
            return None if self.api_key is None else TOKEN_INVALID
        if record.state == "revoked":
            return TOKEN_INVALID
        if record.state == "expired" or self.clock() >= record.expires_at:
            return TOKEN_EXPIRED
        return None

    def _issue_token(self) -> dict[str, Any]:
        """A fresh B1 body; the token is ``24.<hex>.<ttl>.<expiry unix>.<n>-<appid>``."""
        serial = self.next_serial()
        now = int(self.clock())
        digest = hashlib.sha256(f"qianfan-token/{self.api_key}/{serial}".encode()).hexdigest()
        suffix = f"{282334 + serial}-{self.app_id}"
        access = f"24.{digest[:32]}.{self.token_ttl}.{now + self.token_ttl}.{suffix}"
        refresh = f"25.{digest[32:]}.{REFRESH_TTL}.{now + REFRESH_TTL}.{suffix}"
        with self._lock:
            self._tokens[access] = _Token(expires_at=now + self.token_ttl)
            self.issued_tokens.append(access)
        secret = hashlib.sha256(f"qianfan-session/{digest}".encode()).hexdigest()
        return {
            "refresh_token": refresh,
            "expires_in": self.token_ttl,
            "session_key": secret[:32],
            "access_token": access,
            "scope": "public brain_all_scope wenxinworkshop_mgr ai_custom_yiyan_com",
            "session_secret": secret[32:],
        }

    # -- non-stream rendering --------------------------------------------------------------

    def _complete(self, call: _V1Call, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a non-stream request."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        if isinstance(outcome, MidStreamError):
            return self._error(Failure(outcome.kind))
        if isinstance(outcome, Sensitive):
            return self.json_response(200, self._sensitive_body(call))
        if isinstance(outcome, StreamCut):
            body = dumps(self._completion(call, Reply(outcome.content))).encode("utf-8")
            headers = {"Content-Type": "application/json"}
            half = [body[: len(body) // 2]]
            return self.stream_response(200, half, headers, cut=outcome.cut_raises)
        return self.json_response(200, self._completion(call, outcome))

    def _completion(self, call: _V1Call, reply: Reply) -> dict[str, Any]:
        """The B2 body, or B4 when the reply is a function call."""
        finish = _v1_finish(reply)
        body: dict[str, Any] = {
            "id": call.id,
            "object": "chat.completion",
            "created": call.created,
            "result": "" if reply.tool_calls else reply.content,
            "is_truncated": finish == "length",
            "need_clear_history": False,
            "finish_reason": finish,
        }
        if reply.tool_calls:
            body["function_call"] = _function_call(reply)
        body["usage"] = self._usage(call, reply)
        return body

    def _sensitive_body(self, call: _V1Call) -> dict[str, Any]:
        """B6: the safety filter's answer, with an empty result."""
        return {
            "id": call.id,
            "object": "chat.completion",
            "created": call.created,
            "result": "",
            "is_truncated": False,
            "need_clear_history": True,
            "ban_round": -1,
            "finish_reason": "content_filter",
            "usage": _usage(call.prompt_tokens, 0),
        }

    def _usage(self, call: _V1Call, reply: Reply) -> dict[str, Any]:
        """Scripted usage, or usage computed from prompt and reply text lengths."""
        if reply.usage is not None:
            return dict(reply.usage)
        return _usage(call.prompt_tokens, approx_tokens(reply.completion_text()))

    # -- stream rendering ------------------------------------------------------------------

    def _stream(self, call: _V1Call, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a ``stream: true`` request as B3-framed SSE (no [DONE])."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)  # B5: a JSON body, not SSE, also for streams
        if isinstance(outcome, Reply):
            usage = self._usage(call, outcome)
            pieces = chunk_text(outcome.content, outcome.chunk_size)
            events = self._content_events(call, pieces, usage)
            function_call = _function_call(outcome) if outcome.tool_calls else None
            finish = _v1_finish(outcome)
            final = self._event(call, len(events), "", finish, usage, function_call=function_call)
            return self.stream_response(200, [*events, final], SSE_HEADERS)
        sent = sent_chunks(outcome)
        usage = _usage(call.prompt_tokens, approx_tokens("".join(sent)) if sent else 0)
        events = self._content_events(call, sent, usage)
        if isinstance(outcome, StreamCut):
            return self.stream_response(200, events, SSE_HEADERS, cut=outcome.cut_raises)
        if isinstance(outcome, MidStreamError):
            # UNSURE: framed as a ``data:`` event; QF-SDK also accepts a bare JSON line.
            code, message = V1_ERRORS[outcome.kind]
            events.append(sse_event({"error_code": code, "error_msg": message}))
            return self.stream_response(200, events, SSE_HEADERS)
        # Sensitive: the last event ends the stream with B6's safety fields (UNSURE for streams).
        final = self._event(call, len(events), "", "content_filter", usage, banned=True)
        return self.stream_response(200, [*events, final], SSE_HEADERS)

    def _content_events(
        self, call: _V1Call, pieces: Iterable[str], final_usage: Mapping[str, Any]
    ) -> list[bytes]:
        """One event per piece: ``is_end`` false, ``finish_reason`` normal, usage cumulative.

        The prompt count stays that of ``final_usage``; the completion count grows with the
        text sent so far and never passes the final one.
        """
        prompt = final_usage.get("prompt_tokens", call.prompt_tokens)
        ceiling = final_usage.get("completion_tokens")
        events, so_far = [], ""
        for index, piece in enumerate(pieces):
            so_far += piece
            completion = approx_tokens(so_far)
            if isinstance(ceiling, int):
                completion = min(completion, ceiling)
            usage = _usage(prompt, completion)
            events.append(self._event(call, index, piece, "normal", usage, is_end=False))
        return events

    def _event(
        self,
        call: _V1Call,
        sentence_id: int,
        result: str,
        finish: str,
        usage: Mapping[str, Any],
        *,
        is_end: bool = True,
        function_call: Mapping[str, Any] | None = None,
        banned: bool = False,
    ) -> bytes:
        """One B3 event in B3 key order; ``banned`` adds B6's safety fields."""
        event: dict[str, Any] = {
            "id": call.id,
            "object": "chat.completion",
            "created": call.created,
            "sentence_id": sentence_id,
            "is_end": is_end,
            "is_truncated": finish == "length",
            "result": result,
            "need_clear_history": banned,
        }
        if banned:
            event["ban_round"] = -1
        event["finish_reason"] = finish
        if function_call is not None:
            event["function_call"] = dict(function_call)
        event["usage"] = dict(usage)
        return sse_event(event)

    # -- errors ----------------------------------------------------------------------------

    def _error(self, failure: Failure) -> httpx.Response:
        """A Failure as a v1 error body (HTTP 200 unless ``failure.status``), overrides applied."""
        default_code, message = V1_ERRORS[failure.kind]
        code: int | str = default_code
        if failure.code is not None:
            # "336501" is sent as the number 336501, with its documented message.
            code = int(failure.code) if failure.code.isdigit() else failure.code
            message = V1_MESSAGES.get(code, message) if isinstance(code, int) else message
        return self._error_response(
            code, failure.message or message, failure.headers, status=failure.status or 200
        )

    def _error_response(
        self,
        code: int | str,
        message: str,
        headers: Mapping[str, str] | None = None,
        *,
        status: int = 200,
    ) -> httpx.Response:
        """``{"error_code":N,"error_msg":"..."}`` as JSON, HTTP 200 by default (B5)."""
        return self.json_response(status, {"error_code": code, "error_msg": message}, headers)

    def _signature_error(self) -> httpx.Response:
        """The BCE gateway's 401 for a bad bce-auth-v1 header (B5; body shape UNSURE)."""
        headers = {
            "X-Bce-Error-Code": BCE_SIGNATURE_ERROR,
            "X-Bce-Error-Message": f"{BCE_SIGNATURE_ERROR}, cause: {BCE_SIGNATURE_MESSAGE}",
        }
        payload = {
            "requestId": _request_id(self.next_serial()),
            "code": BCE_SIGNATURE_ERROR,
            "message": BCE_SIGNATURE_MESSAGE,
        }
        return self.json_response(401, payload, headers)


@dataclass(frozen=True)
class _V1Call:
    """What one v1 chat request contributes to its answer."""

    id: str
    created: int
    prompt_tokens: int


# ---------------------------------------------------------------------------------- v2

#: Failure kind -> v2's answer: HTTP status, code, message, type (B8, docs/providers/
#: qianfan.md "Errors"). Only auth and rate_limit are documented; the rest are UNSURE,
#: chosen to look like the known codes.
V2_ERRORS: dict[str, WireError] = {
    "rate_limit": WireError(
        429,
        "rpm_rate_limit_exceeded",
        "Rate limit reached for RPM",
        "rate_limit_exceeded",
    ),
    "overloaded": WireError(503, "server_overloaded", "try again later", "server_error"),
    "arrears": WireError(
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
    ),
    "auth": WireError(
        401, "invalid_iam_token", "IAM Certification failed", "invalid_request_error"
    ),
    "content_filter": WireError(
        400,
        "content_filter",
        "the input or output contains sensitive content",
        "invalid_request_error",
    ),
    "context_length": WireError(
        400, "characters_too_long", "characters too long", "invalid_request_error"
    ),
    "server_error": WireError(500, "internal_error", "Internal error", "server_error"),
    "model_not_found": WireError(
        400, "invalid_model", "model is not supported", "invalid_request_error"
    ),
    "bad_request": WireError(400, "invalid_argument", "invalid argument", "invalid_request_error"),
}
V2_EMPTY_MODEL = WireError(400, "invalid_model", "model is empty", "invalid_request_error")
V2_MALFORMED_JSON = WireError(400, "malformed_json", "malformed json", "invalid_request_error")
V2_EMBEDDING_DIMENSIONS = 1024

# v2's message-order answers. UNSURE: v2's code and text for a bad order were not found in
# Baidu's docs or in public issues; the rules are those of the v2 chat reference
# ("messages的role说明"), answered as HTTP 400 ``invalid_argument`` with v1's wording.
V2_FIRST_ROLE = "the role of the first message must be user or system"
V2_SYSTEM_FIRST = "the system message must be the first message"
V2_USER_SLOT = "the role of message after system or assistant must be user or tool"
V2_ASSISTANT_SLOT = "the role of message after user must be assistant"
V2_TOOL_AFTER = "a tool message must follow an assistant message with tool_calls, or a tool"
V2_LAST_ROLE = "the role of the last message must be user or tool"
V2_LAST_USER = "the role of the last message must be user for ERNIE 4.5 and ERNIE X1 models"
V2_EMPTY_CONTENT = "the content of the last message can not be blank"
#: Model-name stems v2 holds to the last-message-is-user rule (its chat reference).
V2_LAST_USER_STEMS = ("ernie-4.5", "ernie-x1")
#: v2's thinking_budget floor (chat reference: default 16384, minimum 100).
V2_MIN_THINKING_BUDGET = 100

#: The IAM endpoint that mints v2 bearer tokens from account keys (docs/providers/qianfan.md,
#: "IAM keys → v2 bearer token").
IAM_HOST = "iam.bj.baidubce.com"
IAM_TOKEN_PATH = "/v1/BCE-BEARER/token"
#: IAM's default token lifetime when expireInSeconds is not given (30 minutes).
IAM_DEFAULT_TTL = 1800
#: UNSURE: IAM's exact answers to a bad signature / unknown key / stale timestamp; these
#: follow the BCE gateway's (docs/providers/qianfan.md, "UNSURE").
IAM_SIGNATURE_ERROR = ("SignatureDoesNotMatch", "Fail to authn user: Signature does not match")
IAM_UNKNOWN_KEY = ("InvalidAccessKeyId", "Could not find credential.")
IAM_STALE_REQUEST = ("RequestExpired", "Request has expired. Timestamp date is out of range")


class FakeQianfanV2(OpenAIWireFake):
    """Fake Qianfan v2 on ``https://qianfan.baidubce.com/v2``: OpenAI-shaped chat and
    embeddings, and the IAM token endpoint on ``https://iam.bj.baidubce.com``.

    With ``api_key`` set, requests need ``Authorization: Bearer <api_key>``; with
    ``access_key``/``secret_key`` (IAM account keys) set, a bearer token this fake minted
    is accepted too (until it lapses by ``clock``, or after :meth:`expire_tokens`); with
    neither, any bearer passes. Otherwise 401 ``invalid_iam_token``. ``GET
    /v1/BCE-BEARER/token`` on the IAM host verifies the bce-auth-v1 signature against the
    known keys as IAM does (the count is :attr:`token_requests`, the tokens
    :attr:`issued_tokens`). With ``model_names`` set, other models get 400
    ``invalid_model``. The ``appid`` header of every chat/embeddings request is recorded
    in :attr:`appids` (None when absent). Messages out of v2's order get 400
    ``invalid_argument``. With ``prompt_cache=True`` a request repeating an earlier
    request's leading messages reports them as ``cached_tokens``. A request with
    ``enable_thinking`` (or to an ERNIE X1 / "thinking" model) that gets the unscripted
    answer also gets ``reasoning_content``.
    """

    base_url = "https://qianfan.baidubce.com/v2"
    other_hosts: ClassVar[Mapping[str, str]] = {IAM_TOKEN_PATH: f"https://{IAM_HOST}"}
    errors = V2_ERRORS
    embedding_input_message = f"input must be 1 to {MAX_EMBEDDING_INPUTS} strings"

    def __init__(
        self,
        api_key: str | None = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        model_names: set[str] | None = None,
        prompt_cache: bool = False,
        split_bytes: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(split_bytes=split_bytes, clock=clock)
        self.api_key = api_key
        self.access_key = access_key
        self.secret_key = secret_key
        self.model_names = model_names
        self.prompt_cache = prompt_cache
        #: The ``appid`` header of each chat/embeddings request, None when absent.
        self.appids: list[Optional[str]] = []
        #: Bearer tokens minted by the IAM endpoint, in order.
        self.issued_tokens: list[str] = []
        self._token_expiry: dict[str, float] = {}
        self._prefixes = PrefixCache(whole=True)

    # -- IAM -------------------------------------------------------------------------------

    @property
    def token_requests(self) -> int:
        """How many requests reached the IAM token endpoint."""
        return sum(1 for r in self.requests if r.url.host == IAM_HOST)

    def expire_tokens(self) -> FakeQianfanV2:
        """Make every token minted so far answer 401 (as if their expireTime had passed)."""
        with self._lock:
            for token in self._token_expiry:
                self._token_expiry[token] = float("-inf")
        return self

    def handler(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == IAM_HOST:
            request.read()
            with self._lock:
                self.requests.append(request)
            if request.method == "GET" and request.url.path == IAM_TOKEN_PATH:
                return self.iam_token(request)
            return self._iam_error(404, "NoSuchKey", "The requested resource does not exist")
        return super().handler(request)

    def iam_token(self, request: httpx.Request) -> httpx.Response:
        """``GET /v1/BCE-BEARER/token?expireInSeconds=N``: a bce-v3 bearer token, if the
        request is signed with the known keys within its validity window."""
        if self.access_key is None or self.secret_key is None:
            return self._iam_error(401, *IAM_UNKNOWN_KEY)
        problem = verify_bce_signature(request, self.access_key, self.secret_key, now=self.clock())
        if problem is not None:
            return self._iam_error(401, *problem)
        try:
            ttl = int(request.url.params.get("expireInSeconds", IAM_DEFAULT_TTL))
        except ValueError:
            return self._iam_error(400, "InvalidParameter", "expireInSeconds must be an integer")
        now = int(self.clock())
        serial = self.next_serial()
        digest = hashlib.sha256(f"iam-token/{serial}".encode()).hexdigest()
        token = f"bce-v3/ALTAK-{digest[:20]}/{digest[20:60]}"
        with self._lock:
            self.issued_tokens.append(token)
            self._token_expiry[token] = now + ttl
        payload = {
            "userId": hashlib.sha256(self.access_key.encode()).hexdigest()[:32],
            "token": token,
            "status": "enable",
            "createTime": _iso_utc(now),
            "expireTime": _iso_utc(now + ttl),
        }
        return self.json_response(201, payload, {"x-bce-request-id": _request_id(serial)})

    def _iam_error(self, status: int, code: str, message: str) -> httpx.Response:
        request_id = _request_id(self.next_serial())
        body = {"code": code, "message": message, "requestId": request_id}
        return self.json_response(status, body, {"x-bce-request-id": request_id})

    def _bearer_ok(self, bearer: str) -> bool:
        if self.api_key is None and self.access_key is None:
            return True
        if self.api_key is not None and bearer == f"Bearer {self.api_key}":
            return True
        token = bearer.removeprefix("Bearer ")
        with self._lock:
            expiry = self._token_expiry.get(token)
        return expiry is not None and self.clock() < expiry

    # -- admission and request rules ---------------------------------------------------------

    def _admit(self, request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None]:
        """Check bearer key, JSON body and model; record the ``appid`` header."""
        with self._lock:
            self.appids.append(request.headers.get("appid"))
        if not self._bearer_ok(request.headers.get("Authorization", "")):
            return {}, self._error(Failure("auth"))
        try:
            body = json.loads(request.content)
        except ValueError:
            return {}, self._error_response(V2_MALFORMED_JSON)
        if not isinstance(body, dict):
            return {}, self._error_response(V2_MALFORMED_JSON)
        if not body.get("model"):
            return body, self._error_response(V2_EMPTY_MODEL)
        if self.model_names is not None and body["model"] not in self.model_names:
            return body, self._error(Failure("model_not_found"))
        return body, None

    def _check_chat(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> httpx.Response | None:
        """v2's message order, and its ``thinking_budget`` floor (400 ``invalid_argument``)."""
        problem = _check_v2_messages(messages, model)
        if problem is not None:
            return self._invalid(problem)
        budget = body.get("thinking_budget")
        if budget is not None and (not isinstance(budget, int) or budget < V2_MIN_THINKING_BUDGET):
            return self._invalid(f"thinking_budget must be an integer >= {V2_MIN_THINKING_BUDGET}")
        return None

    def _outcome(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> Outcome:
        """The next outcome; the echo reply thinks aloud when the request thinks."""
        outcome = self.next_outcome()
        if outcome is not None:
            return outcome
        reply = self.default_reply(model, last_user_text(messages), body, messages)
        if _thinks(body, model):
            return Reply(reply.content, reasoning_content=f"(offline fake {model} thinking)")
        return reply

    def _ids(self, body: dict[str, Any]) -> tuple[str, str]:
        """An ``as-`` id, which is also the request's id."""
        call_id = _as_id(self.next_serial())
        return call_id, call_id

    def _prompt_details(self, messages: list[Any]) -> Mapping[str, Any] | None:
        """With ``prompt_cache``, ``cached_tokens`` (and ``search_tokens: 0``) when a run of
        leading messages an earlier request began with was hit."""
        cached = self._prefixes.hit(messages) if self.prompt_cache else 0
        return {"search_tokens": 0, "cached_tokens": cached} if cached else None

    def _embedding_size(self, body: dict[str, Any], count: int) -> int | str:
        """At most 16 texts, each embedded in 1024 dimensions."""
        if count > MAX_EMBEDDING_INPUTS:
            return self.embedding_input_message
        return V2_EMBEDDING_DIMENSIONS

    def _embedding_body(
        self, body: dict[str, Any], vectors: list[list[float]], tokens: int
    ) -> dict[str, Any]:
        """OpenAI's list with an ``as-`` id and ``created``."""
        return {
            "id": _as_id(self.next_serial()),
            "object": "list",
            "created": int(self.clock()),
            "model": body["model"],
            "data": [
                {"object": "embedding", "embedding": vector, "index": i}
                for i, vector in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }

    # -- rendering -------------------------------------------------------------------------

    def _completion(
        self, call: WireCall, reply: Reply, *, filtered: bool = False
    ) -> dict[str, Any]:
        """The OpenAI-shaped body with Qianfan's ``as-`` id and per-choice ``flag`` (non-zero
        when the filter stopped the answer: UNSURE, QF-SDK's typing only names it)."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.content}
        if reply.reasoning_content is not None:
            message["reasoning_content"] = reply.reasoning_content
        if reply.tool_calls:
            message["tool_calls"] = self._tool_calls(call, reply.tool_calls)
        choice = {
            "index": 0,
            "message": message,
            "finish_reason": reply.resolved_finish_reason(),
            "flag": int(filtered),
        }
        return {
            "id": call.id,
            "object": "chat.completion",
            "created": call.created,
            "model": call.model,
            "choices": [choice],
            "usage": self._usage(call, reply),
        }

    def _tool_calls(self, call: WireCall, specs: Iterable[ToolCallSpec]) -> list[dict[str, Any]]:
        """OpenAI tool calls; ids invented from the response id when not scripted."""
        return [
            {
                "id": spec.id
                or f"call_{hashlib.sha256(f'{call.id}/{i}'.encode()).hexdigest()[:24]}",
                "type": "function",
                "function": {"name": spec.name, "arguments": spec.arguments_json()},
            }
            for i, spec in enumerate(specs)
        ]

    def _delta_event(self, call: WireCall, delta: dict[str, Any]) -> bytes:
        """One ``chat.completion.chunk`` with ``flag: 0`` (B8 key order)."""
        return self._chunk(call, {"index": 0, "delta": delta, "flag": 0})

    def _closing_deltas(
        self, call: WireCall, reply: Reply, deltas: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Every text chunk as it is; the finishing chunk carries the tool calls, indexed."""
        last: dict[str, Any] = {"content": ""}
        if reply.tool_calls:
            last["tool_calls"] = [
                {"index": i, **tool}
                for i, tool in enumerate(self._tool_calls(call, reply.tool_calls))
            ]
        return deltas, last

    def _finish_events(
        self, call: WireCall, reply: Reply, delta: dict[str, Any], *, filtered: bool = False
    ) -> list[bytes]:
        """The finish chunk, then a ``choices: []`` usage chunk when include_usage was asked."""
        finish = reply.resolved_finish_reason()
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "flag": int(filtered)}
        events = [self._chunk(call, choice)]
        if call.include_usage:
            events.append(
                sse_event({**_v2_header(call), "choices": [], "usage": self._usage(call, reply)})
            )
        return events

    def _chunk(self, call: WireCall, choice: dict[str, Any]) -> bytes:
        """One ``chat.completion.chunk`` with a single choice."""
        return sse_event({**_v2_header(call), "choices": [choice]})

    def _stream_error(self, call: WireCall, kind: str) -> dict[str, Any]:
        """UNSURE: v2's in-stream error framing; the v2 error object as a data event."""
        error = V2_ERRORS[kind]
        return {
            "error": {"code": error.code, "message": error.message, "type": error.type},
            "id": call.id,
        }

    # -- errors ----------------------------------------------------------------------------

    def _error_body(self, error: WireError, call: WireCall | None) -> dict[str, Any]:
        """v2's ``{"error":{code,message,type},"id"}`` with a fresh ``as-`` id."""
        return {
            "error": {"code": error.code, "message": error.message, "type": error.type},
            "id": _as_id(self.next_serial()),
        }


def _v2_header(call: WireCall) -> dict[str, Any]:
    """The leading keys of every v2 stream chunk, in B8 order."""
    return {
        "id": call.id,
        "object": "chat.completion.chunk",
        "created": call.created,
        "model": call.model,
    }


# ------------------------------------------------------------------------------ helpers


def _check_messages(messages: Any) -> tuple[int, str] | None:
    """None when ``messages`` obeys v1's rules (docs/providers/qianfan.md "The fakes"), else
    Baidu's (code, message)."""
    if not isinstance(messages, list):
        return 336001, V1_MESSAGES[336001]
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return 336001, V1_MESSAGES[336001]
        role = message.get("role")
        if index == 0 and role == "function":
            return FIRST_NOT_USER
        if index % 2 == 0 and role not in ("user", "function"):
            return EVEN_INDEX_ROLE
        if index % 2 == 1 and role != "assistant":
            return ODD_INDEX_ROLE
    if len(messages) % 2 == 0:
        return ODD_LENGTH
    for message in messages:
        content = message.get("content")
        if message.get("role") == "assistant" and message.get("function_call"):
            continue  # a replayed call may have empty content (B4 follow-up)
        if not isinstance(content, str) or not content.strip():
            return EMPTY_CONTENT
    return None


def _v1_finish(reply: Reply) -> str:
    """v1's finish reason: ``normal`` for a natural end, ``stop`` for one at a stop word,
    ``function_call`` for a call."""
    if reply.stopped_by is not None:
        return "stop"
    if reply.tool_calls and reply.finish_reason is None:
        return "function_call"
    finish = reply.resolved_finish_reason()
    return {"stop": "normal", "tool_calls": "function_call"}.get(finish, finish)


def _check_v2_messages(messages: list[Any], model: str) -> str | None:
    """None when ``messages`` obeys v2's order rules, else the (UNSURE) message v2 gives:
    system only first; then user and assistant alternate, tool results (one or more)
    in the user slot right after an assistant turn with tool calls; the last message is
    user or tool (user for ERNIE 4.5 / X1); the last content not blank."""
    if not messages:
        return "messages can not be empty"
    expect_user = True  # the next message is in the user slot
    previous: dict[str, Any] | None = None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return "invalid message"
        role = message.get("role")
        if role == "system":
            if index != 0:
                return V2_SYSTEM_FIRST
            continue
        if previous is None and role not in ("user", "tool"):
            return V2_FIRST_ROLE if index == 0 else V2_USER_SLOT
        if role == "tool":
            after = previous.get("role") if previous else None
            if after not in ("assistant", "tool") or (
                after == "assistant" and not (previous or {}).get("tool_calls")
            ):
                return V2_TOOL_AFTER
            expect_user = False
        elif role == "user":
            if not expect_user:
                return V2_ASSISTANT_SLOT
            expect_user = False
        elif role == "assistant":
            if expect_user:
                return V2_USER_SLOT
            expect_user = True
        else:
            return f"invalid role {role!r}"
        previous = message
    last = messages[-1]
    if last.get("role") not in ("user", "tool"):
        return V2_LAST_ROLE
    if last.get("role") != "user" and model.lower().startswith(V2_LAST_USER_STEMS):
        return V2_LAST_USER
    content = last.get("content")
    if isinstance(content, str) and not content.strip():
        return V2_EMPTY_CONTENT
    return None


def _thinks(body: dict[str, Any], model: str) -> bool:
    """Whether v2 would think for this request: asked to, or a model that always does."""
    if body.get("enable_thinking") is not None:
        return bool(body["enable_thinking"])
    name = model.lower()
    return name.startswith("ernie-x1") or "thinking" in name


def _iso_utc(epoch: float) -> str:
    """IAM's time format: ``2026-12-05T08:00:00Z``."""
    return datetime.fromtimestamp(int(epoch), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _bce_normalize(value: str, *, keep_slash: bool = False) -> str:
    """BCE's percent-encoding: everything but ``A-Za-z0-9-_.~`` (and ``/``), uppercase hex."""
    return quote(value, safe="-_.~/" if keep_slash else "-_.~")


def verify_bce_signature(
    request: httpx.Request, access_key: str, secret_key: str, *, now: float
) -> tuple[str, str] | None:
    """None when ``request`` carries a valid bce-auth-v1 signature by ``access_key`` /
    ``secret_key`` whose window (``x-bce-date`` .. + expiration) holds ``now``; else IAM's
    (code, message). An implementation of Baidu's algorithm of its own (BCE's signer),
    independent of ``llm_bridge._bce_signer``, so the two check each other."""
    parts = request.headers.get("authorization", "").split("/")
    if len(parts) != 6 or parts[0] != "bce-auth-v1":
        return IAM_SIGNATURE_ERROR
    _, key, timestamp, expiration, signed, signature = parts
    if key != access_key:
        return IAM_UNKNOWN_KEY
    try:
        start = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        window = int(expiration)
    except ValueError:
        return IAM_SIGNATURE_ERROR
    if not start.timestamp() - 300 <= now <= start.timestamp() + window:
        return IAM_STALE_REQUEST
    prefix = f"bce-auth-v1/{key}/{timestamp}/{expiration}"
    signing_key = hmac.new(secret_key.encode(), prefix.encode(), hashlib.sha256).hexdigest()
    names = (
        set(signed.split(";"))
        if signed
        else {"host", "content-md5", "content-length", "content-type"}
    )
    headers = sorted(
        f"{_bce_normalize(name.lower())}:{_bce_normalize(value.strip())}"
        for name, value in request.headers.items()
        if (name.lower() in names or name.lower().startswith("x-bce-")) and value.strip()
    )
    query = sorted(
        f"{_bce_normalize(k)}={_bce_normalize(v)}"
        for k, v in request.url.params.multi_items()
        if k.lower() != "authorization"
    )
    canonical = "\n".join(
        [
            request.method.upper(),
            _bce_normalize(request.url.path, keep_slash=True),
            "&".join(query),
            "\n".join(headers),
        ]
    )
    expected = hmac.new(signing_key.encode(), canonical.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return IAM_SIGNATURE_ERROR
    return None


def _function_call(reply: Reply) -> dict[str, Any]:
    """B4's ``function_call`` for the reply's first tool call (v1 carries only one)."""
    spec = reply.tool_calls[0]
    return {
        "name": spec.name,
        "thoughts": reply.reasoning_content or reply.content,
        "arguments": spec.arguments_json(),
    }


def _usage(prompt: int, completion: int) -> dict[str, int]:
    """``{prompt_tokens, completion_tokens, total_tokens}``."""
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _as_id(serial: int) -> str:
    """A Qianfan-style ``as-`` id: ten lowercase base-36 characters, deterministic."""
    number = int(hashlib.sha256(f"qianfan-id/{serial}".encode()).hexdigest(), 16)
    chars = []
    for _ in range(10):
        number, digit = divmod(number, 36)
        chars.append("0123456789abcdefghijklmnopqrstuvwxyz"[digit])
    return "as-" + "".join(chars)


def _request_id(serial: int) -> str:
    """A BCE gateway request id (UUID-shaped, deterministic)."""
    return uuid_from(f"bce-request/{serial}")
