"""What DashScope's two wires share: the gateway in front of every model and its rules.

DashScope answers on two roots of the same regional host: the native protocol
(``/api/v1``, :mod:`llm_bridge.testing.dashscope`) and the OpenAI-compatible mode
(``/compatible-mode/v1``, :mod:`llm_bridge.testing.dashscope_compatible`). Both pass the same
gateway (region-bound key, JSON body, model name, workspace header) and the same model
rules: stream-only models, thinking-mode restrictions, the explicit context cache, the
json_object rule and the embedding models' dimensions and batch sizes
(docs/providers/dashscope.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from typing import Any, Callable, Iterable, Mapping, Optional

import httpx

from ._fake import FakeProvider, approx_tokens, dumps, message_text
from ._script import Reply, ToolCallSpec

DEFAULT_HOST = "dashscope.aliyuncs.com"
INTL_HOST = "dashscope-intl.aliyuncs.com"
#: The public regional hosts; a key of one region is refused on the other (docs/providers/
#: dashscope.md, "Hosts").
REGION_HOSTS = frozenset({DEFAULT_HOST, INTL_HOST})

INTERNAL_ERROR = "An internal error has occured, please try again later or contact service support."
BAD_PARAMETER = "Required parameter(s) missing or invalid, please check the request parameters."
ARREARS = "Access denied, please make sure your account is in good standing."
CONTEXT_LENGTH = "Range of input length should be [1, 129024]"
#: A filter tripping on generated text mid-stream (text UNSURE).
OUTPUT_FILTERED = "Output data may contain inappropriate content."

# Request-validation answers shared by both wires. Texts marked UNSURE are this fake's
# wording of a rule documented without the server's text.
ALGO = "<400> InternalError.Algo.InvalidParameter: "
NO_USER_MESSAGE = ALGO + "The input messages do not contain elements with the role of user"
JSON_WORD = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
    "'json_object'."
)
STREAM_ONLY = (
    "This model only support stream mode, please enable the stream parameter to access the model."
)
EMPTY_MODEL = ("BadRequest.EmptyModel", 'Required parameter "model" missing from request.')
BAD_JSON = "Request body is not valid JSON."  # UNSURE: wording
# Thinking-mode rules (docs/providers/dashscope.md, "Thinking-mode rules"; wordings UNSURE
# but for the first, quoted from a user report as "restricted to True").
THINKING_ONLY = "The value of the enable_thinking parameter is restricted to True."
FORCED_TOOL_WHEN_THINKING = (
    "The tool_choice parameter does not support being set to required or object in thinking mode"
)
SCHEMA_WHEN_THINKING = "The json_schema response_format is not supported in thinking mode"
BUDGET_OVER_LIMIT = (
    "The value of thinking_budget must be less than the value of max_completion_tokens"
)
#: A thinking call without streaming (quoted from user reports: langchain4j#3974,
#: tencentmusic/supersonic#2355).
THINKING_NEEDS_STREAM = "parameter.enable_thinking must be set to false for non-streaming calls"

#: "qwen3.<minor>-...": Qwen3.5 and later think by default.
_QWEN3_MINOR = re.compile(r"qwen3\.(\d+)-")
#: The open-source Qwen3 (hybrid, thinking by default): qwen3-32b, qwen3-235b-a22b ...;
#: not their -instruct-/-thinking- variants, nor qwen3-max, qwen3-coder, qwen3-vl.
_OPEN_QWEN3 = re.compile(r"qwen3-[\d.]+b(-a[\d.]+b)?$")

#: Embedding dimensions: v3 and v4 choose (1024 default); v1/v2 are fixed at 1536
#: (docs/providers/dashscope.md, "Embeddings").
EMBEDDING_V3_DIMENSIONS = (1024, 768, 512, 256, 128, 64)
EMBEDDING_V4_DIMENSIONS = (2048, 1536, 1024, 768, 512, 256, 128, 64)
EMBEDDING_DEFAULT_DIMENSION = 1024
EMBEDDING_V1_V2_DIMENSION = 1536
#: Texts per call: v1/v2 25; v3/v4 10 (Alibaba's pages disagree across versions; 10 is
#: chosen).
EMBEDDING_BATCH_V1_V2 = 25
EMBEDDING_BATCH = 10


def batch_error(limit: int) -> str:
    """The 400 message for more texts than an embedding model takes per call."""
    return f"batch size is invalid, it should not be larger than {limit}."


def _dimension_error(allowed: Iterable[int]) -> str:  # UNSURE: wording
    return f"dimension is invalid, it should be one of {list(allowed)}."


class DashScopeGateway(FakeProvider):
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
        #: The last user text of each Response's conversation, by its id (what an
        #: unscripted follow-up without user text of its own echoes).
        self._response_user_texts: dict[str, str] = {}

    def is_thinking_only(self, model: str) -> bool:
        """True for models that cannot stop thinking (qwen3.8-max, *-thinking-*)."""
        return model.startswith("qwen3.8-max") or "-thinking" in model

    def is_thinking_by_default(self, model: str) -> bool:
        """True for hybrid models that think when ``enable_thinking`` is not sent: Qwen3.5
        and later (qwen3.5-plus, qwen3.6-flash, qwen3.8-flash ...) and the open-source
        Qwen3 (qwen3-32b, qwen3-235b-a22b ...); the commercial qwen-plus/-flash/-turbo
        and qwen3-max default to not thinking (docs/providers/dashscope.md)."""
        if self.is_thinking_only(model):
            return False
        version = _QWEN3_MINOR.match(model)
        if version is not None:
            return int(version.group(1)) >= 5
        return _OPEN_QWEN3.match(model) is not None

    def thinks(self, model: str, fields: Mapping[str, Any]) -> bool:
        """Whether a request with ``fields`` (body or parameters) thinks: its
        ``enable_thinking``, else the model's default."""
        if self.is_thinking_only(model):
            return True
        flag = fields.get("enable_thinking")
        if flag is None:
            return self.is_thinking_by_default(model)
        return flag is True

    def choices_served(self, model: str, fields: Mapping[str, Any]) -> int:
        """How many choices the answer carries: ``n`` (a positive integer, else 1), but one
        with ``tools`` or in thinking mode, where Alibaba's chat reference says ``n`` is not
        served (UNSURE D33: one choice or a 400; one choice is what this fake answers)."""
        n = fields.get("n")
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            return 1
        if fields.get("tools") or self.thinks(model, fields):
            return 1
        return n

    def thinking_problem(
        self, model: str, fields: Mapping[str, Any], *, stream: bool | None = None
    ) -> str | None:
        """The 400 message for thinking-mode rules ``fields`` (body or parameters) break;
        a request without ``enable_thinking`` is held to the model's default (`thinks`).
        ``stream``: whether the request streams (None: the body's ``stream``, as the
        compatible wire says it); a thinking call must, on a model that is not already
        stream-only (whose own refusal comes first)."""
        flag = fields.get("enable_thinking")
        if self.is_thinking_only(model) and flag is False:
            return THINKING_ONLY
        if not self.thinks(model, fields):
            return None
        streaming = fields.get("stream") is True if stream is None else stream
        if not streaming and not self.is_stream_only(model):
            return THINKING_NEEDS_STREAM
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
        tokens = sum(approx_tokens(message_text(m)) for m in prefix)
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


def wants_json_object(parameters: Mapping[str, Any]) -> bool:
    """True when ``response_format`` asks for a JSON object."""
    fmt = parameters.get("response_format")
    return isinstance(fmt, dict) and fmt.get("type") == "json_object"


def mentions_json(messages: Iterable[Any]) -> bool:
    """The json_object rule: some message must contain the word "json" (any case)."""
    return any("json" in message_text(m).lower() for m in messages)


def assistant_message(request_id: str, content: Any, reply: Reply) -> dict[str, Any]:
    """The answer's assistant message, as both wires write it: role, content, then the
    reasoning text and the tool calls when the reply has them."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if reply.reasoning_content is not None:
        message["reasoning_content"] = reply.reasoning_content
    if reply.tool_calls:
        message["tool_calls"] = [
            tool_call(request_id, i, spec, spec.arguments_json())
            for i, spec in enumerate(reply.tool_calls)
        ]
    return message


def tool_call_id(request_id: str, index: int, spec: ToolCallSpec) -> str:
    """A tool call's id: the scripted one, or ``call_`` plus 22 hex digits (as in D4)
    derived from the request and the call's place in it."""
    return spec.id or "call_" + hashlib.sha256(f"{request_id}/{index}".encode()).hexdigest()[:22]


def tool_call(request_id: str, index: int, spec: ToolCallSpec, arguments: str) -> dict[str, Any]:
    """One tool call in D4/D8 key order with ``arguments`` as given (`tool_call_id`)."""
    return {
        "function": {"name": spec.name, "arguments": arguments},
        "index": index,
        "id": tool_call_id(request_id, index, spec),
        "type": "function",
    }


def tool_call_piece(
    request_id: str, index: int, spec: ToolCallSpec, piece: str, *, first: bool
) -> dict[str, Any]:
    """One streamed fragment of a tool call: the first is the whole call with the first
    piece of its arguments; later ones carry only their piece (UNSURE: their id and name
    fields; an empty id and no name are sent)."""
    if first:
        return tool_call(request_id, index, spec, piece)
    return {"function": {"arguments": piece}, "index": index, "id": "", "type": "function"}


def embedding_rule(model: str, parameters: Any) -> tuple[int, int] | str:
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
