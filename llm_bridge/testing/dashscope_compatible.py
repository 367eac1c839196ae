"""An offline fake of Alibaba DashScope's OpenAI-compatible mode (``/compatible-mode/v1``).

:class:`FakeDashScopeCompatible` (``https://dashscope.aliyuncs.com/compatible-mode/v1``) is
OpenAI-shaped with ``chatcmpl-<uuid>`` ids, ``usage: null`` on stream chunks, a
``choices: []`` usage chunk when ``stream_options.include_usage`` is set and ``data: [DONE]``
(D8, docs/providers/dashscope.md "The compatible wire"); it also serves the Responses API.
The gateway and model rules it shares with the native fake are in ``_dashscope_gateway``;
the OpenAI wire itself in ``_openai_wire``.

It takes ``host="dashscope-intl.aliyuncs.com"`` to serve the international region instead.
API keys are region-bound, so a request to the other region's host answers 401.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any, Mapping

import httpx

from ._dashscope_gateway import (
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
    tool_call_id,
    tool_call_piece,
    wants_json_object,
)
from ._fake import approx_tokens, dumps, last_user_text, sse_event, uuid_from
from ._openai_wire import OpenAIWireFake, WireCall, WireError, embedding_items
from ._script import Failure, Raw, Reply, chunk_text

__all__ = ["FakeDashScopeCompatible"]

#: The roles compatible mode takes, and its answer to another (OpenAI's ``developer``
#: among them), as projects calling it report (openclaw#22710, Proma#1496, 2026).
ROLES = ("system", "assistant", "user", "tool", "function")
BAD_ROLE = f"{{role}} is not one of {list(ROLES)} - 'messages.[{{index}}].role'"

#: Failure kind -> (HTTP status, code, message, type) in compatible mode (D8, docs/providers/
#: dashscope.md "The compatible wire"). The
#: data_inspection_failed, Arrearage, invalid_api_key and invalid_parameter_error bodies
#: are documented; the 429/503/500/404 codes are UNSURE.
COMPAT_ERRORS: dict[str, WireError] = {
    "rate_limit": WireError(
        429,
        "limit_requests",
        "Requests rate limit exceeded, please try again later.",
        "limit_requests",
    ),
    "overloaded": WireError(
        503,
        "ModelUnavailable",
        "Model is unavailable, please try again later.",
        "ModelUnavailable",
    ),
    "arrears": WireError(400, "Arrearage", ARREARS, "Arrearage"),
    "auth": WireError(
        401, "invalid_api_key", "Incorrect API key provided.", "invalid_request_error"
    ),
    "content_filter": WireError(
        400,
        "data_inspection_failed",
        "Input text data may contain inappropriate content.",
        "data_inspection_failed",
    ),
    "context_length": WireError(
        400, "invalid_parameter_error", CONTEXT_LENGTH, "invalid_request_error"
    ),
    "server_error": WireError(500, "internal_error", INTERNAL_ERROR, "internal_error"),
    "model_not_found": WireError(
        404,
        "model_not_found",
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
    ),
    "bad_request": WireError(
        400, "invalid_parameter_error", BAD_PARAMETER, "invalid_request_error"
    ),
}


#: An unknown ``previous_response_id`` (UNSURE: the code DashScope gives it).
RESPONSE_NOT_FOUND = WireError(404, "not_found", "Not found.", "invalid_request_error")


class FakeDashScopeCompatible(DashScopeGateway, OpenAIWireFake):
    """Fake DashScope compatible mode on ``https://dashscope.aliyuncs.com/compatible-mode/v1``.

    ``POST /chat/completions``, ``POST /embeddings`` and ``GET /models`` (the catalogue's
    chat models, or ``model_names``) in OpenAI's shapes with DashScope's details (D8):
    ``chatcmpl-<uuid>`` ids, ``system_fingerprint: null``,
    ``prompt_tokens_details.cached_tokens``, ``usage: null`` on stream chunks, a final
    ``choices: []`` usage chunk only with ``stream_options.include_usage``, then
    ``data: [DONE]``. Errors are ``{"error":{code,param,message,type},"id","request_id"}``;
    answers carry their request id (the uuid) in ``x-request-id``. ``api_key``,
    ``model_names``, ``stream_only_models`` and :attr:`workspaces` work as on
    :class:`~llm_bridge.testing.dashscope.FakeDashScope`.
    """

    root = "/compatible-mode/v1"
    base_url = f"https://{DEFAULT_HOST}{root}"
    routes = (*OpenAIWireFake.routes, ("POST", "/responses", "responses"))
    #: ``GET /models`` lists the models as ``owned_by: "system"`` (UNSURE: the value
    #: compatible mode writes there).
    model_owner = "system"
    errors = COMPAT_ERRORS
    #: (DashScope's answers carry their request id in this header; its SDK reads it.)
    request_id_header = "x-request-id"
    embedding_input_message = "input must be a string or a non-empty list of strings"

    # -- the Responses API -------------------------------------------------------------------

    def responses(self, request: httpx.Request) -> httpx.Response:
        """``POST /responses``: OpenAI's Responses API, as compatible mode serves it for
        the models that have it: a ``Response`` whose output is the reply's message and a
        ``function_call`` item per tool call, or its events streamed
        (``response.created`` ... ``response.completed``). No ``background`` mode (400).
        A queued `Reply` gives the output, a `Failure` the error; unscripted, the answer
        echoes the last user text of the input (or of the conversation
        ``previous_response_id`` continues), as the chat route does;
        ``previous_response_id`` must name a response this fake made."""
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        if body.get("background"):
            return self._invalid("background is not supported")
        previous = body.get("previous_response_id")
        if previous is not None and previous not in self.response_ids:
            message = f"Response {previous} not found"
            return self._error_response(RESPONSE_NOT_FOUND._replace(message=message))
        user_text = self._responses_user_text(body)
        outcome = self.next_outcome() or self.default_reply(body["model"], user_text)
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome)
        if not isinstance(outcome, Reply):
            return self._invalid("this fake renders only replies and failures on /responses")
        response_id = f"resp_{self._uuid()}"
        with self._lock:
            self.response_ids.add(response_id)
            self._response_user_texts[response_id] = user_text
        done = {
            "id": response_id,
            "object": "response",
            "created_at": int(self.clock()),
            "model": body["model"],
            "status": "completed",
            "output": self._output_items(response_id, outcome),
            "usage": _responses_usage(body, outcome),
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
        }
        if body.get("stream") is not True:
            return self.json_response(200, done)
        frames = [
            f"event: {event['type']}\ndata: "
            f"{dumps({**event, 'sequence_number': number})}\n\n".encode()
            for number, event in enumerate(_response_events(done, outcome.chunk_size))
        ]
        return self.stream_response(200, frames, {"Content-Type": "text/event-stream"})

    def _responses_user_text(self, body: dict[str, Any]) -> str:
        """The text the unscripted answer echoes: the input's last user text (a string
        input is one), else that of the conversation ``previous_response_id`` continues
        (a follow-up of tool outputs alone has none of its own)."""
        given = body.get("input")
        if isinstance(given, str):
            return given
        text = last_user_text(given) if isinstance(given, list) else ""
        if text:
            return text
        with self._lock:
            return self._response_user_texts.get(body.get("previous_response_id") or "", "")

    def _output_items(self, response_id: str, reply: Reply) -> list[dict[str, Any]]:
        """The Response's output: a ``message`` with the reply's text (left out when the
        reply is tool calls alone), then one ``function_call`` item per tool call, in
        OpenAI's shapes (ids ``msg_``/``fc_`` plus a uuid; call ids as the chat route's)."""
        items: list[dict[str, Any]] = []
        if reply.content or not reply.tool_calls:
            part = {"type": "output_text", "text": reply.content, "annotations": []}
            message = {"id": f"msg_{self._uuid()}", "type": "message", "role": "assistant"}
            items.append({**message, "status": "completed", "content": [part]})
        for index, spec in enumerate(reply.tool_calls):
            call = {
                "type": "function_call",
                "id": f"fc_{self._uuid()}",
                "call_id": tool_call_id(response_id, index, spec),
                "name": spec.name,
                "arguments": spec.arguments_json(),
                "status": "completed",
            }
            items.append(call)
        return items

    # -- admission and request rules ---------------------------------------------------------

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

    def _check_chat(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> httpx.Response | None:
        """Messages, the json_object rule, thinking-mode rules and stream-only models."""
        if not messages:
            return self._invalid(NO_USER_MESSAGE)
        if not all(isinstance(m, dict) for m in messages):
            return self._invalid(BAD_PARAMETER)
        for index, message in enumerate(messages):
            if message.get("role") not in ROLES:
                return self._invalid(BAD_ROLE.format(role=message.get("role"), index=index))
        if wants_json_object(body) and not mentions_json(messages):
            return self._invalid(JSON_WORD)
        thinking = self.thinking_problem(model, body)
        if thinking is not None:
            return self._invalid(thinking)
        if self.is_stream_only(model) and not self._wants_stream(body):
            return self._invalid(STREAM_ONLY)
        return None

    def _choices(self, model: str, body: dict[str, Any]) -> int:
        """``n``, but one with tools or in thinking mode (`DashScopeGateway.choices_served`)."""
        return self.choices_served(model, body)

    def _wants_stream(self, body: dict[str, Any]) -> bool:
        """Only ``stream: true`` streams."""
        return body.get("stream") is True

    def _include_usage(self, body: dict[str, Any]) -> bool:
        """Only ``stream_options.include_usage: true`` adds the usage chunk."""
        options = body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    def _ids(self, body: dict[str, Any]) -> tuple[str, str]:
        """``chatcmpl-<uuid>``, and the uuid as the request id."""
        uuid = self._uuid()
        return f"chatcmpl-{uuid}", uuid

    def _prompt_details(self, messages: list[Any]) -> Mapping[str, Any] | None:
        """Explicit-cache details, else ``cached_tokens: 0`` (always sent). An explicit-cache
        answer says ``cache_type: "ephemeral"``, on a hit as on a creation (the
        context-cache page's examples); the ledger prices hits by it."""
        details = self.cache_details(messages)
        return {**details, "cache_type": "ephemeral"} if details else {"cached_tokens": 0}

    def _embedding_size(self, body: dict[str, Any], count: int) -> int | str:
        """The model's vector size for ``dimensions``, within its batch limit."""
        rule = embedding_rule(body["model"], {"dimension": body.get("dimensions")})
        if isinstance(rule, str):
            return rule
        size, limit = rule
        return batch_error(limit) if count > limit else size

    def _embedding_body(
        self, body: dict[str, Any], vectors: list[list[float]], tokens: int
    ) -> dict[str, Any]:
        """OpenAI's list, with the request's uuid last."""
        return {
            "data": embedding_items(vectors),
            "model": body["model"],
            "object": "list",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "id": self._uuid(),
        }

    # -- rendering -------------------------------------------------------------------------

    def _completion(
        self, call: WireCall, reply: Reply, *, filtered: bool = False
    ) -> dict[str, Any]:
        """The compatible-mode ``chat.completion`` body, in DashScope's key order."""
        message = assistant_message(call.request_id, reply.content, reply)
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

    def _opening_events(self, call: WireCall) -> list[bytes]:
        """D8's first chunk: empty content with the role."""
        choice = {
            "delta": {"content": "", "role": "assistant"},
            "index": 0,
            "logprobs": None,
            "finish_reason": None,
        }
        return [sse_event({"choices": [choice], **_tail(call)})]

    def _delta_event(self, call: WireCall, delta: dict[str, Any]) -> bytes:
        """A content chunk in D8's later key order (finish_reason first)."""
        return self._chunk(call, delta, None)

    def _closing_deltas(
        self, call: WireCall, reply: Reply, deltas: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """As in D8, the last piece of a plain answer rides on the finishing chunk; tool calls
        follow the text, their arguments in fragments."""
        if not reply.tool_calls:
            last = deltas.pop()["content"] if reply.content else ""
            return deltas, {"content": last}
        for index, spec in enumerate(reply.tool_calls):
            pieces = chunk_text(spec.arguments_json(), reply.chunk_size) or [""]
            deltas += [
                {"tool_calls": [tool_call_piece(call.request_id, index, spec, p, first=n == 0)]}
                for n, p in enumerate(pieces)
            ]
        return deltas, {"content": ""}

    def _finish_events(
        self, call: WireCall, reply: Reply, delta: dict[str, Any], *, filtered: bool = False
    ) -> list[bytes]:
        """The finishing chunk, then the usage chunk when asked for."""
        events = [self._chunk(call, delta, reply.resolved_finish_reason())]
        if call.include_usage:
            # Replacing the null keeps D8's key order: usage between object and created.
            usage = self._usage(call, reply)
            events.append(sse_event({"choices": [], **_tail(call), "usage": usage}))
        return events

    def _chunk(self, call: WireCall, delta: dict[str, Any], finish: str | None) -> bytes:
        """One chunk with a single choice, finish_reason first."""
        choice = {"finish_reason": finish, "delta": delta, "index": 0, "logprobs": None}
        return sse_event({"choices": [choice], **_tail(call)})

    def _stream_error(self, call: WireCall, kind: str) -> dict[str, Any]:
        """The compatible-mode error object as a data event (the output filter's own text)."""
        error = COMPAT_ERRORS[kind]
        message = OUTPUT_FILTERED if kind == "content_filter" else error.message
        return {
            "error": {"message": message, "type": error.type, "param": None, "code": error.code}
        }

    # -- errors and ids ----------------------------------------------------------------------

    def _error_body(self, error: WireError, call: WireCall | None) -> dict[str, Any]:
        """``{"error":{code,param,message,type},"id":"chatcmpl-…","request_id":"…"}``, with
        the request's uuid (a fresh one before a request got one)."""
        uuid = call.request_id if call is not None else self._uuid()
        return {
            "error": {
                "code": error.code,
                "param": None,
                "message": error.message,
                "type": error.type,
            },
            "id": f"chatcmpl-{uuid}",
            "request_id": uuid,
        }

    def _uuid(self) -> str:
        """A fresh UUID-shaped id, deterministic per fake."""
        return uuid_from(f"dashscope-compatible/{self.next_serial()}")


def _tail(call: WireCall) -> dict[str, Any]:
    """The keys after ``choices`` in D8's chunk order (``usage`` first, as null)."""
    return {
        "object": "chat.completion.chunk",
        "usage": None,
        "created": call.created,
        "system_fingerprint": None,
        "model": call.model,
        "id": call.id,
    }


def _responses_usage(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """A Response's usage: the input's tokens, and the output's (text and tool calls;
    reasoning is not rendered on this route)."""
    prompt = approx_tokens(json.dumps(body.get("input"), ensure_ascii=False))
    output = approx_tokens(replace(reply, reasoning_content=None).completion_text())
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + output,
    }


def _response_events(done: dict[str, Any], chunk_size: int) -> list[dict[str, Any]]:
    """The events of a streamed Response (without sequence numbers), in OpenAI's order:
    created, in progress, each output item's events, completed."""
    opening = {**done, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
    ]
    for index, item in enumerate(done["output"]):
        if item["type"] == "message":
            events += _message_events(index, item, chunk_size)
        else:
            events += _function_call_events(index, item, chunk_size)
    events.append({"type": "response.completed", "response": done})
    return events


def _message_events(index: int, message: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """A ``message`` item streamed: added, its text part opened, the text in pieces of
    ``size`` characters, the text and part done, the item done."""
    (part,) = message["content"]
    ids = {"item_id": message["id"], "output_index": index, "content_index": 0}
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**message, "status": "in_progress", "content": []},
        },
        {"type": "response.content_part.added", **ids, "part": {**part, "text": ""}},
        *(
            {"type": "response.output_text.delta", **ids, "delta": piece, "logprobs": []}
            for piece in chunk_text(part["text"], size)
        ),
        {"type": "response.output_text.done", **ids, "text": part["text"], "logprobs": []},
        {"type": "response.content_part.done", **ids, "part": part},
        {"type": "response.output_item.done", "output_index": index, "item": message},
    ]


def _function_call_events(index: int, call: dict[str, Any], size: int) -> list[dict[str, Any]]:
    """A ``function_call`` item streamed as OpenAI streams one: added with empty
    arguments, the arguments in pieces of ``size`` characters, the arguments done, the
    item done."""
    ids = {"item_id": call["id"], "output_index": index}
    arguments = call["arguments"]
    return [
        {
            "type": "response.output_item.added",
            "output_index": index,
            "item": {**call, "arguments": "", "status": "in_progress"},
        },
        *(
            {"type": "response.function_call_arguments.delta", **ids, "delta": piece}
            for piece in chunk_text(arguments, size)
        ),
        {"type": "response.function_call_arguments.done", **ids, "arguments": arguments},
        {"type": "response.output_item.done", "output_index": index, "item": call},
    ]
