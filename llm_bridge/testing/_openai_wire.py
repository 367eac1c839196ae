"""The OpenAI wire shared by the OpenAI-shaped fakes: chat completions, embeddings, SSE,
and the model list.

Zhipu's v4 API, Qianfan v2 and DashScope's compatible mode all speak OpenAI's
``/chat/completions`` and ``/embeddings`` (Qianfan v2 and compatible mode also list their
models at ``GET /models``; Zhipu's v4 answers 404 there): the same request flow, the same
outcome rendering (non-stream JSON, ``data: {json}`` events ending in ``data: [DONE]``, cut
and failed streams) and the same usage arithmetic. :class:`OpenAIWireFake` does that once;
each provider fake supplies only its own rules: authentication and admission, message
checks, ids, error codes and bodies, the key order and extra fields of its JSON, and its
stream quirks (described in docs/providers/zhipu.md, qianfan.md and dashscope.md).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple, Optional

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
    chunk_text,
    sent_chunks,
    stop_words,
    stopped,
)

DONE_EVENT = b"data: [DONE]\n\n"


class WireError(NamedTuple):
    """One error answer: HTTP status, the provider's code and message, and the OpenAI-style
    ``type`` where the provider sends one (None for Zhipu)."""

    status: int
    code: str
    message: str
    type: Optional[str] = None


@dataclass(frozen=True)
class WireCall:
    """What one chat request contributes to its answer.

    ``id`` is the completion id, ``request_id`` the id the provider also reports (in the body
    or its errors); ``prompt_details``, when set, is sent as ``usage.prompt_tokens_details``.
    """

    id: str
    request_id: str
    created: int
    model: str
    prompt_tokens: int
    include_usage: bool
    prompt_details: Optional[Mapping[str, Any]] = None
    #: Choices asked for (``n``): a non-stream answer holds that many copies of the reply.
    n: int = 1


class PrefixCache:
    """An implicit prompt cache: the leading runs of messages earlier requests began with.

    A request's hit is its longest leading run (shorter than the whole request) that an
    earlier request also began with. ``whole`` also remembers each request in full, so a
    later request that continues the whole conversation hits all of it (Qianfan v2); without
    it only the shorter runs are remembered (Zhipu).
    """

    def __init__(self, *, whole: bool) -> None:
        self.whole = whole
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def hit(self, messages: list[Any]) -> int:
        """The tokens of the cached leading run of ``messages``; its runs are remembered."""
        keys = [dumps(messages[:length], sort_keys=True) for length in range(1, len(messages))]
        with self._lock:
            cached = next((n for n in range(len(keys), 0, -1) if keys[n - 1] in self._seen), 0)
            self._seen.update(keys)
            if self.whole and messages:
                self._seen.add(dumps(messages, sort_keys=True))
        return sum(approx_tokens(message_text(m)) for m in messages[:cached])


def embedding_items(vectors: list[list[float]]) -> list[dict[str, Any]]:
    """OpenAI's ``data`` items for ``vectors``, in input order."""
    return [
        {"embedding": vector, "index": i, "object": "embedding"} for i, vector in enumerate(vectors)
    ]


class OpenAIWireFake(FakeProvider, ABC):
    """A fake of an OpenAI-shaped API: ``POST /chat/completions``, ``POST /embeddings`` and
    (where the provider has it, `lists_models`) ``GET /models``.

    The request flow and the rendering of every scripted outcome are here; a subclass
    implements the abstract hooks (admission, checks, ids, bodies, stream chunks, errors) and
    may override the defaults (opening events, include_usage, the filter's finish reason).
    """

    routes = (
        ("POST", "/chat/completions", "chat_completions"),
        ("POST", "/embeddings", "embeddings"),
        ("GET", "/models", "models"),
    )
    #: Whether the provider lists its models at ``GET /models`` (Qianfan v2 and DashScope's
    #: compatible mode do; without it the path answers as any unknown one, 404).
    lists_models: ClassVar[bool] = True
    #: The ``owned_by`` of each listed model (Qianfan v2 documents an empty string).
    model_owner: ClassVar[str] = ""
    #: The models the fake serves (None: any); subclasses set it from their arguments.
    model_names: Optional[set[str]] = None
    #: Headers of a successful stream.
    sse_headers: ClassVar[Mapping[str, str]] = {"Content-Type": "text/event-stream"}
    #: The header a successful answer carries its request id in (None: no such header).
    request_id_header: ClassVar[Optional[str]] = None
    #: Whether non-stream bodies are written with sorted keys (Zhipu's are).
    sort_keys: ClassVar[bool] = False
    #: The finish reason of an answer the safety filter stopped.
    filter_finish: ClassVar[str] = "content_filter"
    #: Failure kind -> the provider's error answer.
    errors: ClassVar[Mapping[str, WireError]]
    #: The 400 message for an ``input`` that is not one or more strings.
    embedding_input_message: ClassVar[str]

    # -- routes ----------------------------------------------------------------------------

    def chat_completions(self, request: httpx.Request) -> httpx.Response:
        """``POST /chat/completions``: a scripted (or echo) answer, streamed when asked, cut
        at the request's ``stop`` words as the provider cuts it (`stopped`)."""
        body, rejection = self._admit(request)
        if rejection is not None:
            return rejection
        model = str(body.get("model", ""))
        given = body.get("messages")
        messages: list[Any] = given if isinstance(given, list) else []
        rejection = self._check_chat(request, body, model, messages)
        if rejection is not None:
            return rejection
        outcome = self._outcome(request, body, model, messages)
        outcome = stopped(outcome, stop_words(body.get("stop")))
        call_id, request_id = self._ids(body)
        call = WireCall(
            id=call_id,
            request_id=request_id,
            created=int(self.clock()),
            model=model,
            prompt_tokens=sum(approx_tokens(message_text(m)) for m in messages),
            include_usage=self._include_usage(body),
            prompt_details=self._prompt_details(messages),
            n=self._choices(model, body),
        )
        if self._wants_stream(body):
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
        failed = self.queued_failure(self._error)
        if failed is not None:
            return failed
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not is_text_list(texts) or not texts:
            return self._invalid(self.embedding_input_message)
        size = self._embedding_size(body, len(texts))
        if isinstance(size, str):
            return self._invalid(size)
        vectors = [unit_vector(text, size) for text in texts]
        tokens = sum(approx_tokens(text) for text in texts)
        payload = self._embedding_body(body, vectors, tokens)
        return self.json_response(200, payload, sort_keys=self.sort_keys)

    def models(self, request: httpx.Request) -> httpx.Response:
        """``GET /models``: OpenAI's list (``{"object": "list", "data": [...]}``) of
        ``model_names`` when set, else of the current chat models of the shipped provider
        table that has this fake's root among its ``[[endpoints]]`` (sorted, ``created``
        0). The credentials are checked as on the other routes (their 401/403 answer; the
        checks of a request body do not apply to a GET). Only a queued Failure or Raw at
        the head of the queue applies here, as on ``/embeddings``. A provider that lists no
        models (`lists_models` false) answers as for an unknown path."""
        if not self.lists_models:
            return self.unknown_route(request)
        _, rejection = self._admit(request)
        if rejection is not None and rejection.status_code in (401, 403):
            return rejection
        failed = self.queued_failure(self._error)
        if failed is not None:
            return failed
        names = self.model_names
        ids = sorted(names) if names is not None else catalogue_chat_models(self.base_url)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": self.model_owner}
            for name in ids
        ]
        return self.json_response(200, {"object": "list", "data": data}, sort_keys=self.sort_keys)

    # -- hooks: admission and request rules ------------------------------------------------

    @abstractmethod
    def _admit(self, request: httpx.Request) -> tuple[dict[str, Any], httpx.Response | None]:
        """The JSON body, and the error answer when the request is refused before any model
        sees it (credentials, body, model)."""

    @abstractmethod
    def _check_chat(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> httpx.Response | None:
        """The error answer when a chat request breaks the provider's rules, else None."""

    def _outcome(
        self, request: httpx.Request, body: dict[str, Any], model: str, messages: list[Any]
    ) -> Outcome:
        """The next scripted outcome, or the echo reply."""
        return self.next_outcome() or self.default_reply(
            model, last_user_text(messages), body, messages
        )

    @abstractmethod
    def _ids(self, body: dict[str, Any]) -> tuple[str, str]:
        """A fresh (completion id, request id) pair in the provider's format."""

    def _include_usage(self, body: dict[str, Any]) -> bool:
        """Whether the stream ends with a usage chunk (``stream_options.include_usage``)."""
        options = body.get("stream_options")
        return isinstance(options, dict) and bool(options.get("include_usage"))

    @abstractmethod
    def _prompt_details(self, messages: list[Any]) -> Mapping[str, Any] | None:
        """``usage.prompt_tokens_details`` for this prompt (cache hits), None to leave out."""

    def _choices(self, model: str, body: dict[str, Any]) -> int:
        """How many choices the answer carries: the request's ``n`` (`_choices_asked`)."""
        return _choices_asked(body)

    def _wants_stream(self, body: dict[str, Any]) -> bool:
        """Whether the request asked for a stream."""
        return bool(body.get("stream"))

    @abstractmethod
    def _embedding_size(self, body: dict[str, Any], count: int) -> int | str:
        """The vector length for ``count`` texts, or the 400 message refusing the request."""

    @abstractmethod
    def _embedding_body(
        self, body: dict[str, Any], vectors: list[list[float]], tokens: int
    ) -> dict[str, Any]:
        """The embeddings answer for ``vectors`` (in input order)."""

    # -- hooks: rendering ------------------------------------------------------------------

    @abstractmethod
    def _completion(
        self, call: WireCall, reply: Reply, *, filtered: bool = False
    ) -> dict[str, Any]:
        """The ``chat.completion`` body; ``filtered`` when the safety filter stopped it."""

    def _opening_events(self, call: WireCall) -> list[bytes]:
        """Events every stream starts with, before any text (none by default)."""
        return []

    @abstractmethod
    def _delta_event(self, call: WireCall, delta: dict[str, Any]) -> bytes:
        """An intermediate chunk carrying ``delta``."""

    @abstractmethod
    def _closing_deltas(
        self, call: WireCall, reply: Reply, deltas: list[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """The reply's text ``deltas`` (reasoning, then content) as the provider streams
        them with its tool calls, and the delta of the finishing chunk."""

    @abstractmethod
    def _finish_events(
        self, call: WireCall, reply: Reply, delta: dict[str, Any], *, filtered: bool = False
    ) -> list[bytes]:
        """The finishing chunk (and any usage chunk), before ``[DONE]``."""

    @abstractmethod
    def _stream_error(self, call: WireCall, kind: str) -> dict[str, Any]:
        """The payload of the error event a stream ends with after a failure of ``kind``."""

    @abstractmethod
    def _error_body(self, error: WireError, call: WireCall | None) -> dict[str, Any]:
        """``error`` as the provider's error body (``call``: the request it answers, if known)."""

    # -- rendering -------------------------------------------------------------------------

    def _complete(self, call: WireCall, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a non-stream request."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, call)
        if isinstance(outcome, MidStreamError):
            return self._error(Failure(outcome.kind), call)
        if isinstance(outcome, StreamCut):
            body = dumps(self._completion(call, Reply(outcome.content)), sort_keys=self.sort_keys)
            data = body.encode("utf-8")
            headers = {"Content-Type": "application/json"}
            return self.stream_response(
                200, [data[: len(data) // 2]], headers, cut=outcome.cut_raises
            )
        headers = self._answer_headers(call)
        if isinstance(outcome, Sensitive):
            filtered = self._completion(call, self._filtered(outcome), filtered=True)
            return self.json_response(200, filtered, headers, sort_keys=self.sort_keys)
        completion = _copies(self._completion(call, outcome), call.n, scripted=outcome.usage)
        return self.json_response(200, completion, headers, sort_keys=self.sort_keys)

    def _stream(self, call: WireCall, outcome: Outcome) -> httpx.Response:
        """Render any outcome for a ``stream: true`` request as SSE ending in ``[DONE]``."""
        if isinstance(outcome, Raw):
            return self.raw_response(outcome)
        if isinstance(outcome, Failure):
            return self._error(outcome, call)
        headers = {**self.sse_headers, **self._answer_headers(call)}
        if isinstance(outcome, Reply):
            return self.stream_response(200, self._reply_events(call, outcome), headers)
        events = self._opening_events(call)
        events += [self._delta_event(call, {"content": text}) for text in sent_chunks(outcome)]
        if isinstance(outcome, StreamCut):
            return self.stream_response(200, events, headers, cut=outcome.cut_raises)
        if isinstance(outcome, MidStreamError):
            events.append(sse_event(self._stream_error(call, outcome.kind)))
            return self.stream_response(200, events, headers)
        partial = self._filtered(outcome)
        events += self._finish_events(call, partial, {"content": ""}, filtered=True)
        return self.stream_response(200, [*events, DONE_EVENT], headers)

    def _answer_headers(self, call: WireCall) -> dict[str, str]:
        """A successful answer's own headers: its request id, where the provider sends it."""
        header = self.request_id_header
        return {header: call.request_id} if header else {}

    def _reply_events(self, call: WireCall, reply: Reply) -> list[bytes]:
        """Opening events, reasoning and content chunks, tool calls, the finish, [DONE]."""
        size = reply.chunk_size
        deltas: list[dict[str, Any]] = [
            {"reasoning_content": text} for text in chunk_text(reply.reasoning_content or "", size)
        ]
        deltas += [{"content": text} for text in chunk_text(reply.content, size)]
        deltas, last = self._closing_deltas(call, reply, deltas)
        events = self._opening_events(call)
        events += [self._delta_event(call, delta) for delta in deltas]
        return [*events, *self._finish_events(call, reply, last), DONE_EVENT]

    def _filtered(self, outcome: Sensitive) -> Reply:
        """What the safety filter lets through: the chunks sent, with the filter's finish."""
        return Reply("".join(sent_chunks(outcome)), finish_reason=self.filter_finish)

    def _usage(self, call: WireCall, reply: Reply) -> dict[str, Any]:
        """Scripted usage, or usage computed from prompt and reply text lengths."""
        if reply.usage is not None:
            return dict(reply.usage)
        completion = approx_tokens(reply.completion_text())
        usage: dict[str, Any] = {
            "prompt_tokens": call.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": call.prompt_tokens + completion,
        }
        if call.prompt_details is not None:
            usage["prompt_tokens_details"] = dict(call.prompt_details)
        return usage

    # -- errors ----------------------------------------------------------------------------

    def _error(self, failure: Failure, call: WireCall | None = None) -> httpx.Response:
        """A Failure as the provider's error answer, with any overrides applied."""
        default = self.errors[failure.kind]
        error = WireError(
            failure.status or default.status,
            failure.code or default.code,
            failure.message or default.message,
            default.type,
        )
        return self._error_response(error, failure.headers, call)

    def _error_response(
        self,
        error: WireError,
        headers: Mapping[str, str] | None = None,
        call: WireCall | None = None,
    ) -> httpx.Response:
        """``error`` as a JSON answer with its HTTP status and ``headers``."""
        body = self._error_body(error, call)
        return self.json_response(error.status, body, headers, sort_keys=self.sort_keys)

    def _invalid(self, message: str) -> httpx.Response:
        """The provider's 400 for an invalid parameter, with ``message``."""
        return self._error_response(self.errors["bad_request"]._replace(message=message))


def catalogue_chat_models(root: str) -> list[str]:
    """The current (not retired) chat models, sorted, of the shipped provider table with
    an ``[[endpoints]]`` row at ``root``; none when no table has one. The tables are read
    only when a model list is asked for, so importing the fakes needs no more of the SDK."""
    from .._config import builtin_providers

    for spec in builtin_providers().values():
        if spec.endpoint_of(root) is not None:
            return sorted(
                name
                for name, info in spec.models.items()
                if info.kind == "chat" and not info.retired
            )
    return []


def _choices_asked(body: dict[str, Any]) -> int:
    """The request's ``n``: a positive integer, else 1 (the fake serves what it is asked;
    the provider's own range is the adapter's to keep)."""
    n = body.get("n")
    return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1


def _copies(
    completion: dict[str, Any], n: int, *, scripted: Optional[Mapping[str, Any]]
) -> dict[str, Any]:
    """``completion`` with its one choice repeated ``n`` times (indexes 0..n-1), as a
    provider answers ``n``; computed completion tokens count every choice, as providers
    count them (scripted usage stands as written)."""
    if n == 1:
        return completion
    (choice,) = completion["choices"]
    completion["choices"] = [{**choice, "index": index} for index in range(n)]
    usage = completion.get("usage")
    if scripted is None and isinstance(usage, dict):
        usage["completion_tokens"] *= n
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return completion
