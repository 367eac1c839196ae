"""The Responses API at the front door: requests in, chat calls to the engine, Responses out.

OpenAI's Responses API (``client.responses.create/stream/parse/retrieve/delete``) is served
for every provider by way of chat completions: `prepare` reads a Responses request into the
chat parameters the engine takes (with the stored conversation a ``previous_response_id``
names), `answer` turns the chat completion into a ``Response``, and `ResponseEventStream`
turns a chat stream into Responses events. The translation itself is
`llm_bridge._responses`; this module adds ids, what is stored, the unsupported-parameter
policy and the SSE framing. Shared by the transport under the openai client (and the
gateway).

No function here touches the store: the store may be on the network, and only the caller
knows whether to call it or await it. The caller looks up what a request names
(`previous_id`, or the id in the URL) and hands the result in (`prepare`, `found`,
`deleted`); what is to be stored comes back as a `Keep` (from `to_keep`, or, in an event
stream, as an item among the frames, just before the frames that end the response), which
the caller writes before the client can see the end of the response, so a next turn sent
at once finds it.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Protocol, Union

import httpx

from . import _responses
from ._errors import BadRequestError, NotFoundError, UnsupportedParameterWarning, local_error
from ._front import json_body
from ._response_store import StoredResponse
from .adapters._params import check_booleans, policy_refusal, policy_warning

__all__ = [
    "Keep",
    "ResponseEventStream",
    "ResponsesCall",
    "answer",
    "deleted",
    "found",
    "input_items_page",
    "prepare",
    "previous_id",
    "to_keep",
]

JSONDict = dict[str, Any]

#: The Responses parameters OpenAI takes as booleans only (a string "yes" is refused).
_BOOLEANS = ("stream", "store", "background", "parallel_tool_calls")

#: ``input_items.list``'s page size when the query names none, and the largest (OpenAI's).
_PAGE_DEFAULT, _PAGE_MOST = 20, 100


class _Described(Protocol):
    """A store, as error messages name it (`SyncResponseStore.describe`)."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Keep:
    """A finished response the caller is to store under ``response_id``."""

    response_id: str
    entry: StoredResponse


def new_id(prefix: str) -> str:
    """``prefix`` and 32 random hex digits (128 bits, as a UUID's hex; made directly: a
    Responses answer takes three ids, and ``uuid4()`` costs five times as much)."""
    return f"{prefix}_{os.urandom(16).hex()}"


@dataclass
class ResponsesCall:
    """One Responses request, read: the engine call it becomes, and what the answer needs.

    ``native`` calls go to a provider that serves the Responses API itself, with the
    request as ``params``; the others become a chat call, with chat parameters."""

    request: JSONDict  # the Responses parameters
    params: JSONDict  # what the engine is given: chat parameters, or the request itself
    extras: JSONDict  # the caller's provider extras
    response_id: str
    created_at: int  # whole seconds, as OpenAI's timestamps
    history: list[JSONDict]  # the stored conversation before this turn
    input_items: list[JSONDict] = field(default_factory=list)
    native: bool = False
    omitted: dict[str, str] = field(default_factory=dict)  # what `history` lacks

    @property
    def stored(self) -> bool:
        return self.request.get("store") is not False


#: What a provider's own Responses endpoint cannot do either (DashScope: no background
#: mode, no conversation objects), with the reason the policy's message gives.
_NATIVE_UNSUPPORTED = {
    "background": "the provider answers Responses requests synchronously only",
    "conversation": "the provider has no conversation objects; use previous_response_id",
}

#: Why a ``cache_control`` marker is not passed to a provider's own Responses API: Model
#: Studio's explicit cache "applies to the OpenAI Chat Completions and DashScope APIs. For
#: the Responses API, use session instead" (alibabacloud.com/help/en/model-studio/
#: context-cache; session cache is the ``x-dashscope-session-cache: enable`` header).
_NATIVE_MARKER = (
    "explicit-cache markers are read by chat completions only; the provider's Responses "
    "API caches a conversation with its session cache instead"
)


def _namespaced(tools: Any) -> bool:
    """Whether a Responses ``tools`` list holds a ``namespace`` tool."""
    return isinstance(tools, list) and any(
        isinstance(tool, dict) and tool.get("type") == "namespace" for tool in tools
    )


def previous_id(body: object) -> Optional[str]:
    """The stored response a Responses request body continues from (``previous_response_id``),
    which the caller looks up before `prepare`; None when it names none."""
    if not isinstance(body, dict):
        return None
    previous = body.get("previous_response_id")
    return str(previous) if previous else None


def prepare(
    body: object,
    *,
    previous: Optional[StoredResponse],
    store: _Described,
    policy: str,
    provider: Optional[str],
    url: str,
    native: Callable[[str], bool] = lambda model: False,
) -> ResponsesCall:
    """Read a Responses request body into an engine call.

    ``previous`` is what the store holds under the body's `previous_id` (None: nothing, or
    no such id); ``store`` is named in the error for an unknown one (a `BadRequestError`,
    code ``previous_response_not_found``, as OpenAI answers). ``native(model)`` says
    whether every provider the model routes to serves the Responses API itself: then the
    request passes through (a stored previous response of ours that was translated keeps
    the conversation translated; one that passed through is continued in chat from the
    conversation stored with it), unless it starts a conversation with Codex's namespace
    tools or ``cache_control`` markers, which the translation serves and the provider's
    endpoint does not; markers on a turn that must pass are reported and left out.
    ``policy`` is the config's unsupported-parameter policy: a Responses feature the
    provider lacks (built-in tools on chat providers, ``background``, conversation objects,
    earlier turns that have no chat form ...) warns and is dropped, is dropped, or raises
    `BadRequestError` naming it, before any request."""
    if not isinstance(body, dict):
        raise _bad_request("the request body must be a JSON object", None, url)
    known = _responses.RESPONSES_PARAMS
    request = {k: v for k, v in body.items() if k in known and v is not None}
    extras = {k: v for k, v in body.items() if k not in known}
    check_booleans(request, _BOOLEANS)
    wanted = previous_id(request)
    passes = isinstance(request.get("model"), str) and native(request["model"])
    markers = _responses.cache_markers(request)
    if passes and not wanted and _namespaced(request.get("tools")):
        # Codex's namespace tools are OpenAI's own; a provider's Responses endpoint may not
        # know them (UNSURE for DashScope), while the translation flattens them reliably.
        passes = False
    if passes and not wanted and markers:
        # The caller asked for DashScope's explicit cache, which only its chat completions
        # serve: the turn (and so the conversation) goes there.
        passes = False
    entry = previous if wanted else None
    if wanted and entry is None and not passes:
        raise local_error(
            BadRequestError,
            f"Previous response with id '{wanted}' not found: {store.describe()}; it is "
            f"unknown, expired, deleted, or was made with store=false.",
            request=_request(url),
            param="previous_response_id",
            code="previous_response_not_found",
            provider=provider,
        )
    if entry is not None and not entry.native:
        passes = False  # a translated conversation stays translated
    unsupported = _policy(policy, provider, url)
    history, omitted = _before(entry, wanted, passes, unsupported)
    if passes:
        for name, reason in _NATIVE_UNSUPPORTED.items():
            if request.get(name) not in (None, False):
                unsupported(name, reason)
                del request[name]
        # A turn that continues a conversation the provider keeps must pass, markers and all:
        # they are reported and left out, as any parameter the provider cannot honour.
        for where in markers:
            unsupported(where, _NATIVE_MARKER)
        params = _responses.without_cache_markers(request) if markers else dict(request)
    else:
        try:
            params = _responses.chat_params(request, history, unsupported=unsupported)
        except (TypeError, ValueError) as error:
            raise _bad_request(str(error), None, url) from error
    return ResponsesCall(
        request=request,
        params=params,
        extras=extras,
        response_id=new_id("resp"),
        created_at=_now(),
        history=history,
        input_items=_input_items(request),
        native=passes,
        omitted=omitted,
    )


def _before(
    entry: Optional[StoredResponse],
    wanted: Optional[str],
    passes: bool,
    unsupported: Callable[[str, str], None],
) -> tuple[list[JSONDict], dict[str, str]]:
    """The conversation before this turn as chat messages (``entry``'s), and what they
    lack (`StoredResponse.omitted`). A turn sent as chat is sent without that: each piece
    is reported through the policy, so no earlier turn is lost unsaid. A turn passed through
    after a provider's response llm-bridge has no copy of (``wanted``, with no ``entry``)
    starts a conversation that lacks everything before it."""
    if entry is None:
        if not (wanted and passes):
            return [], {}
        gap = f"the conversation before {wanted}"
        return [], {gap: "only the provider has it; llm-bridge kept no copy"}
    if not passes:
        for where, why in entry.omitted.items():
            unsupported(where, why)
    return entry.messages, dict(entry.omitted)


def _now() -> int:
    """The time now, in whole seconds (``created_at``, ``completed_at``), as OpenAI's."""
    return int(time.time())


def _policy(policy: str, provider: Optional[str], url: str) -> Callable[[str, str], None]:
    """The unsupported-parameter policy as a callback: warn, stay silent, or refuse."""

    def unsupported(param: str, reason: str) -> None:
        message = f"{provider or 'this provider'} does not support {param}: {reason}"
        if policy == "error":
            raise _bad_request(policy_refusal(message), param, url, "unsupported_parameter")
        if policy == "warn":
            warnings.warn(
                policy_warning(f"{message}; it was not sent"),
                UnsupportedParameterWarning,
                stacklevel=2,
            )

    return unsupported


def answer(call: ResponsesCall, completion: JSONDict) -> JSONDict:
    """The ``Response`` for a chat completion (`to_keep` says what to store of it)."""
    return _responses.response_from_chat(
        completion,
        request=call.request,
        response_id=call.response_id,
        created_at=call.created_at,
        item_ids=new_id,
        completed_at=_now(),
    )


def to_keep(call: ResponsesCall, response: JSONDict) -> Optional[Keep]:
    """What to store of a finished response: it, with the conversation it ends as chat
    messages; None when the request said ``store=false``.

    Never raises: the provider has answered (and billed) by now. A passed-through turn's
    items and parts with no chat form are left out of the conversation and noted in the
    entry's ``omitted`` (``"<where> of <response id>"``: why), for a continuation in chat
    to report (`prepare`); a translated turn's were refused or reported when it was sent."""
    if not call.stored:
        return None
    response_id = str(response.get("id") or call.response_id)
    omitted = dict(call.omitted)

    def skipped(where: str, why: str) -> None:
        omitted[f"{where} of {response_id}"] = why

    # UNSURE (docs/unsure.md X2): which item and part types DashScope's own Responses API
    # takes and gives beyond the chat translation's; those are noted here, not kept.
    report = skipped if call.native else None
    messages = [
        *call.history,
        *_responses.input_messages(call.request, skipped=report),
        *_responses.output_messages(response, skipped=report),
    ]
    entry = StoredResponse(
        response, messages, call.input_items, native=call.native, omitted=omitted
    )
    return Keep(response_id, entry)


def found(
    entry: Optional[StoredResponse], response_id: str, url: str, store: _Described
) -> StoredResponse:
    """The stored response the store gave for ``response_id``; `NotFoundError` for None."""
    if entry is None:
        raise _not_found(response_id, url, store)
    return entry


def no_streamed_retrieval(response_id: str, url: str) -> BadRequestError:
    """``responses.retrieve(id, stream=True)`` picks up a background response's events;
    there are no background responses here, so there is nothing to stream."""
    return _bad_request(
        f"Response '{response_id}' cannot be streamed again: llm-bridge runs every response "
        f"in the foreground (no background mode), so its events went to the request that "
        f"made it. Retrieve it without stream=True for the finished response.",
        "stream",
        url,
        "unsupported_parameter",
    )


def deleted(gone: bool, response_id: str, url: str, store: _Described) -> JSONDict:
    """``responses.delete``'s answer, given whether the store had the response to delete.

    UNSURE (docs/unsure.md X3): a response DashScope answered itself is deleted from
    llm-bridge's store only; DashScope may still continue it by id."""
    if not gone:
        raise _not_found(response_id, url, store)
    return {"id": response_id, "object": "response.deleted", "deleted": True}


def _not_found(response_id: str, url: str, store: _Described) -> Exception:
    return local_error(
        NotFoundError,
        f"Response with id '{response_id}' not found (unknown, expired, deleted, or made "
        f"with store=false; {store.describe()}).",
        request=_request(url),
        param="response_id",
        code="response_not_found",
    )


def input_items_page(entry: StoredResponse, url: str) -> JSONDict:
    """``responses.input_items.list``: a page of the stored request's input items, as the
    query of ``url`` asks (OpenAI's parameters): ``order`` ``desc`` (newest first, the
    default) or ``asc``, ``limit`` items (1 to 100, default 20), those ``after`` the item
    with that id in this order. A value out of range is a `BadRequestError` naming it."""
    query = httpx.URL(url).params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _invalid("order", order, "'asc' or 'desc'", url)
    items = entry.input_items if order == "asc" else entry.input_items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise _invalid("after", after, "the id of one of the response's input items", url)
        items = items[ids.index(after) + 1 :]
    data = items[: _page_size(query.get("limit"), url)]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": len(items) > len(data),
    }


def _page_size(given: Optional[str], url: str) -> int:
    """The page size a ``limit`` asks for (None: the default); a `BadRequestError` naming it
    outside 1 to 100."""
    if given is None:
        return _PAGE_DEFAULT
    try:
        size = int(given)
    except ValueError:
        size = 0
    if not 1 <= size <= _PAGE_MOST:
        raise _invalid("limit", given, f"an integer from 1 to {_PAGE_MOST}", url)
    return size


def _invalid(param: str, given: str, allowed: str, url: str) -> BadRequestError:
    return _bad_request(
        f"Invalid '{param}': {given!r}; expected {allowed}.", param, url, "invalid_value"
    )


def _input_items(request: JSONDict) -> list[JSONDict]:
    """The request's input as stored items, each with an id (a plain string input is one
    user message)."""
    given = request.get("input")
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    items: list[JSONDict] = []
    for given_item in given or []:
        if not isinstance(given_item, dict):
            continue
        item: JSONDict = dict(given_item)
        if item.get("type", "message") == "message":
            item["type"] = "message"
            item["content"] = _listed_content(item.get("role"), item.get("content"))
            item.setdefault("status", "completed")
        item.setdefault("id", new_id("msg" if item["type"] == "message" else "item"))
        items.append(item)
    return items


def _listed_content(role: Any, content: Any) -> Any:
    """A message's content as OpenAI lists it: parts; an assistant's text as
    ``output_text`` (as in its answers), the others' as ``input_text``."""
    if isinstance(content, str):
        content = [{"type": "input_text", "text": content}]
    if role != "assistant" or not isinstance(content, list):
        return content
    return [_output_text(part) for part in content]


def _output_text(part: Any) -> Any:
    """An assistant's text part as ``output_text``, with the fields OpenAI's has; any other
    part as it is."""
    text = part.get("text") if isinstance(part, dict) else None
    if not isinstance(text, str) or part.get("type") not in ("input_text", "output_text"):
        return part
    return {**_responses.text_part(text), **part, "type": "output_text"}


#: The chat chunk that says a content filter cut the answer short.
_FILTERED: JSONDict = {"choices": [{"index": 0, "delta": {}, "finish_reason": "content_filter"}]}

#: What an event stream yields: SSE frames, and the response to store before the frames
#: that end it.
Frame = Union[bytes, Keep]


class ResponseEventStream:
    """A chat stream as Responses server-sent events.

    Iterate it (sync or async, as the chat stream is) for the SSE bytes, and a `Keep` (the
    finished response, unless ``store=false``) just before the frames that end the
    response: the caller stores it, then passes the rest on. A chat stream that fails
    mid-way ends with ``response.failed``, as OpenAI's server ends a failed response (not
    stored), but for a content filter's refusal (see `_ended_by`); closing it closes the
    chat stream."""

    def __init__(self, chunks: Any, call: ResponsesCall) -> None:
        self._chunks = chunks
        self._call = call
        self._writer = _responses.ResponseEvents(
            call.request,
            response_id=call.response_id,
            created_at=call.created_at,
            item_ids=new_id,
        )

    def __iter__(self) -> Iterator[Frame]:
        yield from _frames(self._writer.start())
        try:
            for chunk in self._chunks:
                yield from self._translated(chunk)
        except Exception as error:
            yield from self._ended_by(error)
            return
        yield from self._finish()

    async def __aiter__(self) -> AsyncIterator[Frame]:
        for frame in _frames(self._writer.start()):
            yield frame
        try:
            async for chunk in self._chunks:
                for frame in self._translated(chunk):
                    yield frame
        except Exception as error:
            for frame in self._ended_by(error):
                yield frame
            return
        for frame in self._finish():
            yield frame

    def _translated(self, chunk: Any) -> Iterable[bytes]:
        """A chat chunk's frames. A chunk that is only the next piece of the text being
        written (most of a stream) is written as its one event straight away, without
        turning the chunk into JSON values first: that was a third of what the
        translation cost per event."""
        text = _plain_text(chunk)
        if text is not None:
            event = self._writer.continued_text(text)
            if event is not None:
                return (_frame(event),)
        return _frames(self._writer.chunk(_as_dict(chunk)))

    def _ended_by(self, error: Exception) -> Iterator[Frame]:
        """The frames that end a stream the provider broke off with ``error``: a content
        filter's refusal (GLM's 1301 comes as an error event) ends the response
        ``incomplete`` with reason ``content_filter``, as the same filter given as a finish
        reason does and as OpenAI reports filtered output; anything else fails it."""
        if getattr(error, "code", None) == "content_filter":
            # The chat stream has recorded what it cost (the provider's figures, else an
            # estimate) as it broke: the response reports it, as OpenAI's incomplete
            # responses report their usage.
            usage = getattr(self._chunks, "usage", None)
            filtered = _FILTERED
            if usage is not None:
                filtered = {**_FILTERED, "usage": usage.model_dump(exclude_none=True)}
            yield from _frames(self._writer.chunk(filtered))
            yield from self._finish()
        else:
            yield from _frames(self._writer.fail(_error_of(error)))

    def _finish(self) -> Iterator[Frame]:
        frames = list(_frames(self._writer.finish(completed_at=_now())))  # (completes it)
        kept = to_keep(self._call, self._writer.response)
        if kept is not None:
            yield kept
        yield from frames

    def close(self) -> Any:
        return self._chunks.close()


class PassedEventStream:
    """A provider's own Responses events, passed on as server-sent events, with a `Keep`
    of the final response before the event that completes it (as `ResponseEventStream`).
    A stream that fails mid-way ends with ``response.failed`` (built from the last
    response snapshot the provider sent, with the output streamed since), as a translated
    one does."""

    def __init__(self, events: Any, call: ResponsesCall) -> None:
        self._events = events
        self._call = call
        self._snapshot: JSONDict = {"id": call.response_id, "object": "response"}
        self._sequence = 0
        self._output: dict[int, JSONDict] = {}  # the output items so far, by output_index

    def __iter__(self) -> Iterator[Frame]:
        try:
            for event in self._events:
                yield from self._seen(event)
        except Exception as error:
            yield from _frames([self._failed(error)])

    async def __aiter__(self) -> AsyncIterator[Frame]:
        try:
            async for event in self._events:
                for frame in self._seen(event):
                    yield frame
        except Exception as error:
            for frame in _frames([self._failed(error)]):
                yield frame

    def _seen(self, event: JSONDict) -> list[Frame]:
        """The event's frame, after the `Keep` of the response it completes."""
        out: list[Frame] = []
        snapshot = event.get("response")
        if isinstance(snapshot, dict):
            self._snapshot = snapshot
            if event.get("type") in ("response.completed", "response.incomplete"):
                kept = to_keep(self._call, snapshot)
                if kept is not None:
                    out.append(kept)
        else:
            self._note_output(event)
        sequence = event.get("sequence_number")
        self._sequence = sequence + 1 if isinstance(sequence, int) else self._sequence + 1
        out.extend(_frames([event]))
        return out

    def _note_output(self, event: JSONDict) -> None:
        """Follow the output items (and a message's text) the events build, so that a
        failure keeps what was already streamed, as a translated stream's does."""
        kind, index = event.get("type"), event.get("output_index")
        if not isinstance(index, int):
            return
        item = event.get("item")
        if kind in ("response.output_item.added", "response.output_item.done"):
            if isinstance(item, dict):
                self._output[index] = {**item, "content": list(item.get("content") or [])}
            return
        parts = self._output.get(index, {}).get("content")
        position = event.get("content_index")
        if not isinstance(parts, list) or not isinstance(position, int):
            return
        part, delta = event.get("part"), event.get("delta")
        if kind == "response.content_part.added" and isinstance(part, dict):
            parts.append(dict(part))
        elif (
            kind == "response.output_text.delta"
            and isinstance(delta, str)
            and 0 <= position < len(parts)
            and isinstance(parts[position].get("text"), str)
        ):
            parts[position]["text"] += delta

    def _failed(self, error: BaseException) -> JSONDict:
        response = {**self._snapshot, "status": "failed", "error": _error_of(error)}
        if self._output:
            response["output"] = [self._output[index] for index in sorted(self._output)]
        return {"type": "response.failed", "sequence_number": self._sequence, "response": response}

    def close(self) -> Any:
        return self._events.close()


def event_stream(chunks: Any, call: ResponsesCall) -> Any:
    """The Responses events of a stream: the provider's own passed on, or a chat stream's
    translated (frames and a `Keep`, see `ResponseEventStream`)."""
    if call.native:
        return PassedEventStream(chunks, call)
    return ResponseEventStream(chunks, call)


def _frames(events: Iterable[JSONDict]) -> Iterator[bytes]:
    for event in events:
        yield _frame(event)


def _frame(event: JSONDict) -> bytes:
    kind = str(event["type"]).encode(errors="replace")
    return b"event: " + kind + b"\ndata: " + json_body(event) + b"\n\n"


def _plain_text(chunk: Any) -> Optional[str]:
    """The text of a typed chat chunk that carries nothing else `ResponseEvents.chunk`
    reads (no usage, reasoning, refusal, tool calls or finish reason; one choice, the
    first), else None."""
    if isinstance(chunk, dict) or chunk.usage is not None or len(chunk.choices) != 1:
        return None
    choice = chunk.choices[0]
    delta = choice.delta
    content = delta.content
    if (
        choice.index != 0
        or choice.finish_reason is not None
        or not isinstance(content, str)
        or not content
        or delta.refusal
        or delta.tool_calls
        or (delta.__pydantic_extra__ or {}).get("reasoning_content")
    ):
        return None
    return content


def _as_dict(chunk: Any) -> JSONDict:
    return chunk if isinstance(chunk, dict) else chunk.model_dump(mode="json", exclude_none=True)


def _error_of(error: BaseException) -> JSONDict:
    """A failed response's ``error``: its code one of those openai's `ResponseError`
    takes (else ``server_error``, as a translated stream's), its message the error's."""
    code = getattr(error, "code", None)
    message = getattr(error, "message", None) or str(error)
    return {"code": code if code in _responses.ERROR_CODES else "server_error", "message": message}


def _request(url: str) -> httpx.Request:
    return httpx.Request("POST", url)


def _bad_request(
    message: str, param: Optional[str], url: str, code: Optional[str] = None
) -> BadRequestError:
    error = local_error(BadRequestError, message, request=_request(url), param=param, code=code)
    assert isinstance(error, BadRequestError)
    return error
