"""OpenAI's Responses API served by a chat-completions model (issue 15, the translation core).

Zhipu and Qianfan have only chat completions; this module translates a Responses request
into chat-completions parameters, and chat results (a completion, or a stream of chunks)
back into Responses objects and stream events, in openai's shapes
(``openai.types.responses.Response`` and the ``ResponseStreamEvent`` union).

Pure: no I/O, no clock, no randomness. Response ids, item ids and timestamps are passed in;
the store (``previous_response_id``) is the caller's: it keeps, per response, the chat
messages `input_messages` and `output_messages` give, and hands them back as ``history``.

The translation, and the choices it makes:

- ``instructions`` become a leading ``system`` message of the chat call and are *not* part of
  `input_messages`, so a store that keeps ``input_messages + output_messages`` does not carry
  them into the next turn (OpenAI: "the instructions from a previous response will not be
  carried over"). The order sent is: instructions, history, this request's input.
- Input messages keep their role (``developer`` stays ``developer``; the adapters map it);
  a string content stays a string, a list of parts stays a list of chat parts
  (``input_text`` -> ``text``, ``input_image`` with a URL -> ``image_url``). Assistant text
  (``output_text`` and ``refusal`` parts) becomes one string.
- Consecutive ``reasoning``, assistant ``message`` and ``function_call`` items form one chat
  assistant message (``reasoning_content``, ``content``, ``tool_calls``). A new one starts
  at a ``reasoning`` item once the current one has text or calls, and at an assistant
  message once the current one has text. Reasoning travels as its summary texts (or its
  ``reasoning_text`` content when there is no summary), joined by blank lines; a reasoning
  item with only ``encrypted_content`` says nothing we can send and is skipped.
- ``function_call_output`` becomes a ``tool`` message (``tool_call_id`` = ``call_id``).
- ``cache_control`` markers (an explicit-cache breakpoint, ``{"type": "ephemeral"}``: no
  field of OpenAI's, but what DashScope's chat completions read, and what a caller writes
  for it) stay where the caller put them: a part's on the chat part it becomes, an item's
  on the chat message it becomes or joins. An assistant message whose parts carry one
  keeps its text as a list of text parts, for the markers to sit on. Whether and how a
  provider takes them is its adapter's business, as for chat completions. The conversation
  before this request (``history``) keeps its markers too, so a prefix marked once stays
  cached turn after turn; but a request carries at most four (the limit of this
  convention, Anthropic's and DashScope's alike): the request's own markers all go, and
  the history keeps its newest within what is left. `cache_markers` and
  `without_cache_markers` are for the front door, which passes a request to a provider's
  own Responses API (DashScope's takes no markers: its conversations are cached by its
  session cache instead).
- A chat tool call without an id gets ``item_ids("call")`` as its ``call_id``.
- Tools (docs/responses-tools.md): function tools become chat function tools. A
  ``namespace`` tool (a named group of function tools; Codex's sub-agent tools) has no chat
  form, so each of its functions becomes a chat function named ``<namespace>__<name>``,
  after the plain functions of the request and only when that is a valid, unused function
  name (``^[a-zA-Z0-9_-]{1,64}$``); otherwise a stable name with a hash of the pair
  (`_ToolNames`). The namespace's description leads each of its functions' descriptions.
  The mapping is a function of the request's ``tools`` alone, so a call the model makes
  comes back as a ``function_call`` item with ``namespace`` and the plain ``name`` (what
  Codex dispatches on), and a ``function_call`` item with a ``namespace`` sent back in a
  later turn (or kept by the store) becomes the same chat name again.
- A ``web_search`` tool (or ``web_search_preview``) becomes chat completions' own
  ``web_search_options`` (``search_context_size``; ``user_location`` in the chat shape):
  whether and how the provider searches is the adapter's business (its ``[web_search]``
  table), so this translation stays provider-neutral. ``external_web_access`` is not
  translated (the provider searches its own index either way); ``filters.allowed_domains``
  cannot be honoured, so such a tool is reported and not sent. ``tool_choice: "none"``, a
  forced function, or an ``allowed_tools`` choice that leaves the search out sends no
  search. A provider's own tool calls in a chat answer (``type`` other than ``function``,
  as GLM may report its searches) are not the caller's and make no ``function_call``.
- The Response echoes the request (model, instructions, tools, tool_choice, sampling, text,
  reasoning, metadata, store, ...) with OpenAI's defaults where the request is silent.
  ``completed_at`` needs a clock, so it is an optional argument (absent if not given).
- ``usage``: chat ``prompt_tokens_details.cached_tokens`` -> ``cached_tokens``,
  ``completion_tokens_details.reasoning_tokens`` -> ``reasoning_tokens``;
  ``cache_write_tokens`` (required by openai's type) is the provider's count where it
  gives one (``cache_write_tokens``, or DashScope's ``cache_creation_input_tokens``), else
  0. DashScope's own cache keys (``cache_creation_input_tokens``, ``cache_creation``,
  ``cache_type``) are kept beside them in ``input_tokens_details``, as chat keeps them.
- Streams: items open in the order the chunks reveal them (reasoning, text, tool calls).
  A reasoning or text item closes when another kind of output starts; tool calls stay open
  until the stream ends (providers may interleave their argument deltas), then close in
  order. When the answer is cut short (``length`` / ``content_filter``), the last output
  item is ``incomplete``, in streams and in `response_from_chat` alike.

Unsupported features are reported through the caller's ``unsupported(param, reason)``
(warn-and-drop or raise is the caller's policy); malformed requests raise ``TypeError`` /
``ValueError`` naming the parameter (``"input[2].type: unknown item type 'foo'"``), except
where the store keeps a conversation a provider has already answered (`input_messages` and
`output_messages` with ``skipped``): there what cannot be read is reported and left out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from typing import Any, Callable, Optional, TypeVar, Union

__all__ = [
    "ERROR_CODES",
    "RESPONSES_PARAMS",
    "JSONDict",
    "ResponseEvents",
    "Unsupported",
    "cache_markers",
    "chat_params",
    "input_messages",
    "instruction_messages",
    "output_messages",
    "response_from_chat",
    "text_part",
    "without_cache_markers",
]

JSONDict = dict[str, Any]
ItemIds = Callable[[str], str]
Report = Callable[[str, str], None]
_Read = TypeVar("_Read")

#: Every body parameter ``responses.create`` sends (openai 3.63), plus ``verbosity``, which
#: ``responses.parse(verbosity=...)`` puts at the top level. Anything else is the caller's
#: provider extras and belongs apart; `chat_params` reports a name it does not know through
#: ``unsupported`` (a parameter a newer openai added) and never sends it.
RESPONSES_PARAMS = frozenset(
    {
        "access_programs",
        "background",
        "background_options",
        "client_metadata",
        "context_management",
        "conversation",
        "image",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "multi_agent",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
        "verbosity",
    }
)

#: Parameters with no chat equivalent, and why (reported when set to anything but null).
_UNSUPPORTED_PARAMS = {
    "background_options": "background responses are not available on this provider",
    "conversation": "conversation objects are not available on this provider; "
    "use previous_response_id",
    "prompt": "prompt templates are not available on this provider",
    "context_management": "context compaction is not available on this provider",
    "moderation": "moderated responses are not available on this provider",
    "access_programs": "access programs are OpenAI's",
    "multi_agent": "OpenAI's server-run sub-agents are not available on this provider",
    "top_logprobs": "log probabilities are not translated for the Responses API",
}

#: Parameters accepted without effect: hints about OpenAI's cache and image handling, the
#: built-in tool budget (no built-in tool ever runs here), stream obfuscation, and what the
#: caller itself handles (store, previous_response_id, metadata: echoed, never sent).
_IGNORED_PARAMS = frozenset(
    {
        "client_metadata",  # a client's own tracking (Codex: installation, session ids)
        "prompt_cache_options",
        "prompt_cache_retention",
        "image",
        "max_tool_calls",
        "stream_options",
        "store",
        "previous_response_id",
        "metadata",
    }
)

#: ``include`` values asking for what the translation cannot give. The others are
#: accepted: those of built-in tools have nothing to fill (a tool the provider lacks is
#: reported as the tool; GLM's web search, the one mapped, returns no ``web_search_call``
#: items), as OpenAI fills nothing for a tool a request does not use, and input images
#: are kept in the stored input items.
_INCLUDE_UNSUPPORTED = {
    "message.output_text.logprobs": "log probabilities are not translated for the Responses API",
}
#: ``reasoning.encrypted_content`` is accepted: reasoning goes back to the model as its
#: summary text, which works with ``store=false`` too; no encrypted content is ever produced.

#: Input item types that belong to built-in tools (or server features) the chat wire lacks.
_HOSTED_ITEMS = frozenset(
    {
        "file_search_call",
        "computer_call",
        "computer_call_output",
        "web_search_call",
        "image_generation_call",
        "code_interpreter_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "custom_tool_call",
        "custom_tool_call_output",
        "tool_search_call",
        "tool_search_output",
        "additional_tools",
        "compaction",
        "compaction_trigger",
        "configuration_update",
        "program",
        "program_output",
    }
)

#: Responses tool types that are OpenAI's hosted web search: chat completions' form of it
#: is the ``web_search_options`` parameter.
_WEB_SEARCH_TOOLS = frozenset(
    {"web_search", "web_search_2025_08_26", "web_search_preview", "web_search_preview_2025_03_11"}
)
#: A chat function name, as OpenAI and GLM both define it: flattened names keep to it.
_FUNCTION_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_-]")
_NAMESPACE_SEPARATOR = "__"

_ROLES = ("user", "system", "developer", "assistant")
#: ``cache_control`` markers a request may carry: Anthropic's limit for the convention,
#: which DashScope's explicit cache follows ("a single request supports a maximum of four
#: cache markers", alibabacloud.com/help/en/model-studio/context-cache).
_MOST_CACHE_MARKERS = 4
#: The item fields whose parts may carry a marker.
_PART_FIELDS = ("content", "output")
#: DashScope's cache figures in chat's ``prompt_tokens_details``, kept in the Response's.
_CACHE_DETAILS = ("cache_creation_input_tokens", "cache_creation", "cache_type")
_CONTENT_FILTER = ("content_filter", "sensitive")
#: The codes of a failed response's ``error`` (openai's `ResponseError`) a provider's
#: failure can be given; any other is reported as ``server_error``.
ERROR_CODES = frozenset({"server_error", "rate_limit_exceeded", "invalid_prompt"})


class Unsupported(Exception):
    """A Responses feature with no chat-completions equivalent."""

    def __init__(self, param: str, reason: str) -> None:
        super().__init__(f"{param}: {reason}")
        self.param = param
        self.reason = reason


# --------------------------------------------------------------------------- requests


def chat_params(request: JSONDict, history: list[JSONDict], *, unsupported: Report) -> JSONDict:
    """The chat-completions parameters for a Responses request body.

    ``history`` (the chat messages of the conversation so far, from
    ``previous_response_id``) goes after the ``instructions`` and before the new input.
    """
    _check_request(request)
    for name in sorted(set(request) - RESPONSES_PARAMS):
        # A parameter a newer openai sends that this translation does not know yet.
        unsupported(name, "not translated to chat completions")
    for name, reason in _UNSUPPORTED_PARAMS.items():
        if request.get(name) is not None:
            unsupported(name, reason)
    if request.get("background"):
        unsupported("background", "background responses are not available on this provider")
    if request.get("truncation") == "auto":
        unsupported("truncation", "automatic truncation is not available on this provider")
    include = request.get("include")
    if include is not None:
        if not isinstance(include, list):
            raise TypeError(f"include: must be a list, got {type(include).__name__}")
        for index, value in enumerate(include):
            if value in _INCLUDE_UNSUPPORTED:
                unsupported(f"include[{index}]", f"{value}: {_INCLUDE_UNSUPPORTED[value]}")

    names = _ToolNames(request.get("tools"))
    instructions = _items_to_messages(request, "instructions", unsupported, names)
    given = _items_to_messages(request, "input", unsupported, names)
    own = sum(_markers_in(m) for m in (*instructions, *given))
    messages = [
        *instructions,
        *_newest_markers(history, _MOST_CACHE_MARKERS - own),
        *given,
    ]
    if not messages:
        raise ValueError("input: the request has no input and no instructions")
    params: JSONDict = {"model": request["model"], "messages": messages}

    for name in ("temperature", "top_p", "parallel_tool_calls", "user", "safety_identifier"):
        if request.get(name) is not None:
            params[name] = request[name]
    for name in ("prompt_cache_key", "service_tier"):
        if request.get(name) is not None:
            params[name] = request[name]
    if request.get("max_output_tokens") is not None:
        params["max_completion_tokens"] = request["max_output_tokens"]

    tools, search = _tools(request.get("tools"), names, unsupported)
    choice = request.get("tool_choice")
    if choice is not None:
        choice, tools, search = _tool_choice(choice, tools, search, names, unsupported)
        if choice is not None:
            params["tool_choice"] = choice
    if tools:
        params["tools"] = tools
    if search is not None:
        params["web_search_options"] = search

    text = request.get("text")
    if text is not None:
        if not isinstance(text, dict):
            raise TypeError(f"text: must be an object, got {type(text).__name__}")
        fmt = text.get("format")
        if fmt is not None:
            params["response_format"] = _response_format(fmt)
        if text.get("verbosity") is not None:
            params["verbosity"] = text["verbosity"]
    if request.get("verbosity") is not None:
        params["verbosity"] = request["verbosity"]

    reasoning = request.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict):
            raise TypeError(f"reasoning: must be an object, got {type(reasoning).__name__}")
        if reasoning.get("effort") is not None:
            params["reasoning_effort"] = reasoning["effort"]
        if reasoning.get("mode") not in (None, "standard"):
            unsupported("reasoning.mode", "reasoning modes are OpenAI's")
        # reasoning.summary / generate_summary: the model's reasoning is always returned
        # as a summary when the provider gives it; nothing to send.

    if request.get("stream"):
        params["stream"] = True
        params["stream_options"] = {"include_usage": True}
    return params


def input_messages(
    request: JSONDict, *, skipped: Optional[Report] = None, lenient: bool = False
) -> list[JSONDict]:
    """The chat messages the request's ``input`` becomes: what the store keeps for
    continuation. ``instructions`` are left out (see `instruction_messages`): OpenAI does
    not carry them over to the next turn. Unsupported items and parts are left out too.

    With ``skipped`` (or ``lenient``), an item or part that cannot be translated (an
    unknown type, a malformed field) is left out as well, where it would raise, and
    reported to ``skipped`` with what is unsupported: for a request a provider has already
    answered as it was (its own Responses API), whose conversation is kept, or estimated,
    as far as it translates."""
    _check_request(request)
    names = _ToolNames(request.get("tools"))
    lenient = lenient or skipped is not None
    return _items_to_messages(request, "input", skipped or _ignore, names, lenient)


def instruction_messages(request: JSONDict, *, lenient: bool = False) -> list[JSONDict]:
    """The leading message(s) the request's ``instructions`` become (not kept in the store);
    ``lenient``: what cannot be translated is left out rather than raised (an estimate of
    a request a provider has already answered)."""
    _check_request(request)
    names = _ToolNames(request.get("tools"))
    return _items_to_messages(request, "instructions", _ignore, names, lenient)


def cache_markers(request: JSONDict) -> list[str]:
    """Where the request's ``input`` and ``instructions`` items, and their parts, carry a
    ``cache_control`` marker, as paths (``input[1].content[0].cache_control``), in order."""
    found: list[str] = []
    for name in ("instructions", "input"):
        items = request.get(name)
        for index, item in enumerate(items if isinstance(items, list) else []):
            if not isinstance(item, dict):
                continue
            where = f"{name}[{index}]"
            if item.get("cache_control") is not None:
                found.append(f"{where}.cache_control")
            for field in _PART_FIELDS:
                parts = item.get(field)
                for at, part in enumerate(parts if isinstance(parts, list) else []):
                    if isinstance(part, dict) and part.get("cache_control") is not None:
                        found.append(f"{where}.{field}[{at}].cache_control")
    return found


def without_cache_markers(request: JSONDict) -> JSONDict:
    """A copy of ``request`` whose ``input`` and ``instructions`` items and parts carry no
    ``cache_control`` marker (those `cache_markers` finds); the request is left as it is."""
    out = dict(request)
    for name in ("instructions", "input"):
        items = request.get(name)
        if isinstance(items, list):
            out[name] = [_unmarked_item(item) for item in items]
    return out


def _unmarked_item(item: Any) -> Any:
    if not isinstance(item, dict):
        return item
    out = _unmarked(item)
    for field in _PART_FIELDS:
        parts = out.get(field)
        if isinstance(parts, list):
            out[field] = [_unmarked(part) for part in parts]
    return out


def _unmarked(value: Any) -> Any:
    """A part or item without its ``cache_control`` marker (as it is when it has none)."""
    if not isinstance(value, dict) or "cache_control" not in value:
        return value
    return {key: field for key, field in value.items() if key != "cache_control"}


def _mark(chat: JSONDict, given: Any) -> JSONDict:
    """``chat`` (a message or part) with the ``cache_control`` marker of the item or part
    ``given`` it comes from, if that has one."""
    marker = given.get("cache_control") if isinstance(given, dict) else None
    if marker is not None:
        chat["cache_control"] = marker
    return chat


def _markers_in(message: JSONDict) -> int:
    """How many ``cache_control`` markers a chat message carries, on it and its parts."""
    content = message.get("content")
    parts = content if isinstance(content, list) else []
    on_parts = sum(1 for p in parts if isinstance(p, dict) and p.get("cache_control") is not None)
    return on_parts + (message.get("cache_control") is not None)


def _newest_markers(history: list[JSONDict], budget: int) -> list[JSONDict]:
    """Copies of the ``history`` messages keeping only their newest ``budget`` markers.

    The store keeps a turn's markers with it, so a conversation continued by
    ``previous_response_id`` would gather one more each turn where the caller marks each
    new turn (the pattern Alibaba's explicit-cache guide recommends) and pass the limit. A
    marker caches the whole prefix up to it, so the newest ones cover the older ones."""
    out: list[JSONDict] = []
    for message in reversed(history):
        message = dict(message)
        if message.get("cache_control") is not None:
            if budget > 0:
                budget -= 1
            else:
                del message["cache_control"]
        content = message.get("content")
        if isinstance(content, list):
            parts: list[Any] = []
            for part in reversed(content):
                if isinstance(part, dict) and part.get("cache_control") is not None:
                    if budget > 0:
                        budget -= 1
                    else:
                        part = _unmarked(part)
                parts.append(part)
            message["content"] = parts[::-1]
        out.append(message)
    return out[::-1]


def _ignore(param: str, reason: str) -> None:
    del param, reason


def _check_request(request: Any) -> None:
    if not isinstance(request, dict):
        raise TypeError(f"request: must be an object, got {type(request).__name__}")
    if not isinstance(request.get("model"), str) or not request["model"]:
        raise TypeError("model: required, a string")


def _items_to_messages(
    request: JSONDict, name: str, unsupported: Report, names: _ToolNames, lenient: bool = False
) -> list[JSONDict]:
    value = request.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        role = "system" if name == "instructions" else "user"
        return [{"role": role, "content": value}]
    conversation = _Conversation(unsupported, names, lenient)
    conversation.read(conversation.run, name, value)
    return conversation.out


class _Conversation:
    """Input items -> chat messages, grouping assistant turns (see the module docstring).

    ``lenient``: an item, or a part of a message, that raises (an unknown type, a malformed
    field) is reported to ``unsupported`` under the path its error names and left out."""

    def __init__(self, unsupported: Report, names: _ToolNames, lenient: bool = False) -> None:
        self.unsupported = unsupported
        self.names = names
        self.lenient = lenient
        self.out: list[JSONDict] = []
        self.turn: Optional[JSONDict] = None  # the assistant message being gathered
        self.reasoning: list[str] = []

    def run(self, where: str, items: Any) -> None:
        """Translate the list of items at ``where`` (``input``, ...) into `out`."""
        if not isinstance(items, list):
            raise TypeError(
                f"{where}: must be a string or a list of items, got {type(items).__name__}"
            )
        for index, item in enumerate(items):
            self.read(self.item, f"{where}[{index}]", item)
        self.flush()

    def read(self, reader: Callable[[str, Any], _Read], where: str, value: Any) -> Optional[_Read]:
        """``reader(where, value)``; when lenient, None for what it cannot read (reported).
        Readers raise before they change the conversation, so nothing is half-added."""
        if not self.lenient:
            return reader(where, value)
        try:
            return reader(where, value)
        except (TypeError, ValueError) as error:
            at, _, reason = str(error).partition(": ")  # "input[2].type: unknown item type"
            self.unsupported(at, reason)
            return None

    def flush(self) -> None:
        if self.turn is None:
            return
        if self.reasoning:
            self.turn["reasoning_content"] = "\n\n".join(self.reasoning)
        self.out.append(self.turn)
        self.turn = None
        self.reasoning = []

    def assistant(self) -> JSONDict:
        if self.turn is None:
            self.turn = {"role": "assistant", "content": None}
        return self.turn

    def item(self, where: str, item: Any) -> None:
        if not isinstance(item, dict):
            raise TypeError(f"{where}: must be an object, got {type(item).__name__}")
        kind = item.get("type")
        if kind is None and "role" in item:
            kind = "message"
        if kind == "message":
            self.message(where, item)
        elif kind == "function_call":
            namespace = item.get("namespace")
            if namespace is not None and not isinstance(namespace, str):
                raise TypeError(
                    f"{where}.namespace: must be a string, got {type(namespace).__name__}"
                )
            call = {
                "id": _string(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": self.names.chat_name(namespace, _string(item, "name", where)),
                    "arguments": _string(item, "arguments", where),
                },
            }
            _mark(self.assistant(), item).setdefault("tool_calls", []).append(call)
        elif kind == "function_call_output":
            self.flush()
            result = {
                "role": "tool",
                "tool_call_id": _string(item, "call_id", where),
                "content": self.tool_output(where, item.get("output")),
            }
            self.out.append(_mark(result, item))
        elif kind == "reasoning":
            text = _reasoning_text(where, item)
            if not text:
                return
            turn = self.turn
            if turn is not None and (turn.get("content") is not None or turn.get("tool_calls")):
                self.flush()
            _mark(self.assistant(), item)
            self.reasoning.append(text)
        elif kind == "item_reference":
            self.unsupported(
                where, "item_reference: items are not stored by id; pass the item itself"
            )
        elif kind in _HOSTED_ITEMS:
            self.unsupported(where, f"{kind}: built-in tools are not available on this provider")
        else:
            raise ValueError(f"{where}.type: unknown item type {kind!r}")

    def message(self, where: str, item: JSONDict) -> None:
        role = item.get("role")
        if role not in _ROLES:
            raise ValueError(f"{where}.role: must be one of {list(_ROLES)}, got {role!r}")
        content = item.get("content")
        if role == "assistant":
            text = self.assistant_text(where, content)
            turn = self.turn
            if turn is not None and turn.get("content") is not None:
                self.flush()
            turn = self.assistant()
            turn["content"] = text
            _mark(turn, item)
            return
        self.flush()
        if isinstance(content, str):
            self.out.append(_mark({"role": role, "content": content}, item))
            return
        parts: list[JSONDict] = []
        for at, part in _parts(where, "content", content):
            chat = self.read(self.input_part, at, part)
            if chat is not None:
                parts.append(_mark(chat, part))
        self.out.append(_mark({"role": role, "content": parts}, item))

    def assistant_text(self, where: str, content: Any) -> Union[str, list[JSONDict]]:
        """An assistant message's text: one string, or chat text parts where a part
        carries a ``cache_control`` marker (a string has nowhere to keep it)."""
        if isinstance(content, str):
            return content
        texts: list[JSONDict] = []
        for at, part in _parts(where, "content", content):
            kind = _part_type(at, part)
            if kind in ("output_text", "input_text"):
                text = _string(part, "text", at)
            elif kind == "refusal":
                text = _string(part, "refusal", at)
            else:
                raise ValueError(f"{at}.type: an assistant message holds text, got {kind!r}")
            texts.append(_mark({"type": "text", "text": text}, part))
        if any("cache_control" in text for text in texts):
            return texts
        return "".join(text["text"] for text in texts)

    def input_part(self, where: str, part: Any) -> Optional[JSONDict]:
        kind = _part_type(where, part)
        if kind in ("input_text", "output_text"):
            return {"type": "text", "text": _string(part, "text", where)}
        if kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str) or not url:
                if part.get("file_id"):
                    self.unsupported(where, "input_image with file_id: files are OpenAI's")
                    return None
                raise ValueError(f"{where}.image_url: required (a URL or a data URL)")
            image: JSONDict = {"url": url}
            detail = part.get("detail")
            if detail in ("low", "high", "auto"):
                image["detail"] = detail
            elif detail == "original":
                image["detail"] = "high"
            return {"type": "image_url", "image_url": image}
        if kind in ("input_file", "input_audio"):
            self.unsupported(where, f"{kind}: not available on this provider")
            return None
        raise ValueError(f"{where}.type: unknown content type {kind!r}")

    def tool_output(self, where: str, output: Any) -> Any:
        if isinstance(output, str):
            return output
        parts: list[JSONDict] = []
        for at, part in _parts(where, "output", output):
            kind = _part_type(at, part)
            if kind in ("input_text", "output_text"):
                parts.append(_mark({"type": "text", "text": _string(part, "text", at)}, part))
            elif kind in ("input_image", "input_file"):
                self.unsupported(at, f"{kind} in a function result: chat tool results are text")
            else:
                raise ValueError(f"{at}.type: unknown content type {kind!r}")
        return parts


def _parts(where: str, field: str, value: Any) -> list[tuple[str, Any]]:
    """Each part of a content list (``field`` of the item at ``where``) with its path; a
    string is the caller's to take, anything else but a list is a `TypeError`."""
    if not isinstance(value, list):
        raise TypeError(
            f"{where}.{field}: must be a string or a list of parts, got {type(value).__name__}"
        )
    return [(f"{where}.{field}[{index}]", part) for index, part in enumerate(value)]


def _part_type(where: str, part: Any) -> Any:
    if not isinstance(part, dict):
        raise TypeError(f"{where}: must be an object, got {type(part).__name__}")
    return part.get("type")


def _string(obj: JSONDict, key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        if value is None:
            raise ValueError(f"{where}.{key}: required")
        raise TypeError(f"{where}.{key}: must be a string, got {type(value).__name__}")
    return value


def _reasoning_text(where: str, item: JSONDict) -> str:
    texts: list[str] = []
    for key, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key)
        if parts is None:
            continue
        if not isinstance(parts, list):
            raise TypeError(f"{where}.{key}: must be a list, got {type(parts).__name__}")
        for index, part in enumerate(parts):
            at = f"{where}.{key}[{index}]"
            if _part_type(at, part) != kind:
                raise ValueError(f"{at}.type: must be {kind!r}, got {part.get('type')!r}")
            texts.append(_string(part, "text", at))
        if texts:
            break  # the summary when there is one, else the raw reasoning text
    return "\n\n".join(texts)


class _ToolNames:
    """The chat function name of each function tool of a request, and back.

    Plain function tools keep their names. A function of a ``namespace`` tool is named
    ``<namespace>__<name>`` when that is a valid chat function name that no plain function
    (or earlier namespaced one) has; otherwise `_hashed` names it. Built from the request's
    ``tools`` alone (malformed entries are skipped here; `_tools` reports them), so the
    request, its answer and its stream all agree, and so does the next turn with the same
    tools. A pair the tools do not declare (a call kept in history after its tool was
    removed) gets `_flat_name`.
    """

    def __init__(self, tools: Any) -> None:
        self._chat: dict[tuple[Optional[str], str], str] = {}
        self._responses: dict[str, tuple[Optional[str], str]] = {}
        self._members: dict[str, list[str]] = {}
        declared = list(_declared_functions(tools))
        for namespace, name in declared:
            if namespace is None:
                self._bind(None, name, name)
        for namespace, name in declared:
            if namespace is None or (namespace, name) in self._chat:
                continue
            self._members.setdefault(namespace, []).append(name)
            flat = _flat_name(namespace, name)
            if flat in self._responses:
                flat = _hashed(namespace, name)
            stem, count = flat, 2
            while flat in self._responses:  # only a plain tool named to collide gets here
                suffix = f"_{count}"
                flat, count = stem[: 64 - len(suffix)] + suffix, count + 1
            self._bind(namespace, name, flat)

    def _bind(self, namespace: Optional[str], name: str, flat: str) -> None:
        self._chat.setdefault((namespace, name), flat)
        self._responses.setdefault(flat, (namespace, name))

    def chat_name(self, namespace: Optional[str], name: str) -> str:
        """The chat function name for ``name`` in ``namespace`` (None or "": a plain one)."""
        if not namespace:
            return name
        return self._chat.get((namespace, name)) or _flat_name(namespace, name)

    def responses_name(self, flat: str) -> tuple[Optional[str], str]:
        """``(namespace, name)`` of a chat function name; a name the request did not
        declare is a plain one."""
        return self._responses.get(flat, (None, flat))

    def members(self, namespace: str) -> list[str]:
        """The chat function names of a namespace's functions."""
        return [self._chat[(namespace, name)] for name in self._members.get(namespace, [])]


def _declared_functions(tools: Any) -> Iterator[tuple[Optional[str], str]]:
    """``(namespace or None, name)`` of every well-formed function tool, in order."""
    if not isinstance(tools, list):
        return
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        kind = tool.get("type")
        if kind == "function" and isinstance(tool.get("name"), str):
            yield None, tool["name"]
        elif kind == "namespace" and isinstance(tool.get("name"), str) and tool["name"]:
            for member in tool.get("tools") or []:
                if (
                    isinstance(member, dict)
                    and member.get("type") == "function"
                    and isinstance(member.get("name"), str)
                ):
                    yield tool["name"], member["name"]


def _flat_name(namespace: str, name: str) -> str:
    """``<namespace>__<name>`` if that is a valid chat function name, else `_hashed`."""
    flat = f"{namespace}{_NAMESPACE_SEPARATOR}{name}"
    return flat if _FUNCTION_NAME.match(flat) else _hashed(namespace, name)


def _hashed(namespace: str, name: str) -> str:
    """A valid chat function name for the pair: its readable part (invalid characters as
    ``_``, cut to fit), then ``_`` and 8 hex digits of the pair's SHA-256."""
    digest = hashlib.sha256(f"{namespace}\x00{name}".encode()).hexdigest()[:8]
    stem = _NAME_UNSAFE.sub("_", f"{namespace}{_NAMESPACE_SEPARATOR}{name}")[: 64 - 9]
    return f"{stem}_{digest}"


def _tools(
    tools: Any, names: _ToolNames, unsupported: Report
) -> tuple[list[JSONDict], Optional[JSONDict]]:
    """The chat function tools, and the ``web_search_options`` (None: no search)."""
    if tools is None:
        return [], None
    if not isinstance(tools, list):
        raise TypeError(f"tools: must be a list, got {type(tools).__name__}")
    out: list[JSONDict] = []
    search: Optional[JSONDict] = None
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        kind = _part_type(where, tool)
        if kind == "function":
            name = _string(tool, "name", where)
            out.append(_function_tool(where, tool, names.chat_name(None, name), None, unsupported))
        elif kind == "namespace":
            out.extend(_namespace_tools(where, tool, names, unsupported))
        elif kind in _WEB_SEARCH_TOOLS:
            options = _web_search_options(where, tool, unsupported)
            if search is None:
                search = options
        elif isinstance(kind, str):
            unsupported(
                where,
                f"{kind}: built-in and hosted tools are not available on this "
                "provider; only function tools (also in namespaces) and web_search are",
            )
        else:
            raise ValueError(f"{where}.type: required")
    return out, search


def _function_tool(
    where: str, tool: JSONDict, name: str, about: Optional[str], unsupported: Report
) -> JSONDict:
    """A chat function tool; ``about`` (a namespace's description) leads its description."""
    function: JSONDict = {"name": name}
    description = None
    if tool.get("description") is not None:
        description = _string(tool, "description", where)
    if about:
        description = f"{about}\n\n{description}" if description else about
    if description is not None:
        function["description"] = description
    parameters = tool.get("parameters")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise TypeError(f"{where}.parameters: must be an object (a JSON schema)")
        function["parameters"] = parameters
    if tool.get("strict") is not None:
        function["strict"] = tool["strict"]
    for key in ("defer_loading", "output_schema", "allowed_callers", "async"):
        if tool.get(key) is not None:
            unsupported(f"{where}.{key}", "not available on this provider")
    return {"type": "function", "function": function}


def _namespace_tools(
    where: str, tool: JSONDict, names: _ToolNames, unsupported: Report
) -> list[JSONDict]:
    """The chat function tools of a ``namespace`` tool's functions (flattened names)."""
    namespace = _string(tool, "name", where)
    if not namespace:
        raise ValueError(f"{where}.name: must not be empty")
    about = None
    if tool.get("description") is not None:
        about = _string(tool, "description", where)
    members = tool.get("tools")
    if not isinstance(members, list):
        raise TypeError(f"{where}.tools: must be a list of function tools")
    out: list[JSONDict] = []
    for index, member in enumerate(members):
        at = f"{where}.tools[{index}]"
        kind = _part_type(at, member)
        if kind == "function":
            name = names.chat_name(namespace, _string(member, "name", at))
            out.append(_function_tool(at, member, name, about, unsupported))
        elif isinstance(kind, str):
            unsupported(at, f"{kind}: only function tools are available on this provider")
        else:
            raise ValueError(f"{at}.type: required")
    return out


def _web_search_options(where: str, tool: JSONDict, unsupported: Report) -> Optional[JSONDict]:
    """Chat completions' ``web_search_options`` for a Responses ``web_search`` tool (None:
    the tool asks for what chat completions cannot say, and is not sent)."""
    filters = tool.get("filters")
    if filters is not None:
        if not isinstance(filters, dict):
            raise TypeError(f"{where}.filters: must be an object")
        if filters.get("allowed_domains"):
            unsupported(
                f"{where}.filters",
                "web search limited to domains is not available on this provider",
            )
            return None
    options: JSONDict = {}
    size = tool.get("search_context_size")
    if size is not None:
        if size not in ("low", "medium", "high"):
            raise ValueError(
                f"{where}.search_context_size: must be 'low', 'medium' or 'high', got {size!r}"
            )
        options["search_context_size"] = size
    location = tool.get("user_location")
    if location is not None:
        if not isinstance(location, dict):
            raise TypeError(f"{where}.user_location: must be an object")
        approximate = {
            key: location[key]
            for key in ("city", "country", "region", "timezone")
            if location.get(key) is not None
        }
        options["user_location"] = {"type": "approximate", "approximate": approximate}
    return options


def _tool_choice(
    choice: Any,
    tools: list[JSONDict],
    search: Optional[JSONDict],
    names: _ToolNames,
    unsupported: Report,
) -> tuple[Any, list[JSONDict], Optional[JSONDict]]:
    """The chat ``tool_choice`` (None: leave it out), the tools it allows and the web
    search it allows."""
    if isinstance(choice, str):
        if choice not in ("auto", "none", "required"):
            raise ValueError(f"tool_choice: must be 'auto', 'none' or 'required', got {choice!r}")
        return choice, tools, None if choice == "none" else search
    kind = _part_type("tool_choice", choice)
    if kind == "function":
        namespace = choice.get("namespace")
        name = names.chat_name(
            namespace if isinstance(namespace, str) else None,
            _string(choice, "name", "tool_choice"),
        )
        return {"type": "function", "function": {"name": name}}, tools, None
    if kind == "allowed_tools":
        mode = choice.get("mode")
        if mode not in ("auto", "required"):
            raise ValueError(f"tool_choice.mode: must be 'auto' or 'required', got {mode!r}")
        allowed = choice.get("tools")
        if not isinstance(allowed, list):
            raise TypeError("tool_choice.tools: must be a list")
        chosen: set[str] = set()
        searches = False
        for index, tool in enumerate(allowed):
            where = f"tool_choice.tools[{index}]"
            allowed_kind = _part_type(where, tool)
            if allowed_kind == "function":
                namespace = tool.get("namespace")
                chosen.add(
                    names.chat_name(
                        namespace if isinstance(namespace, str) else None,
                        _string(tool, "name", where),
                    )
                )
            elif allowed_kind == "namespace":
                chosen.update(names.members(_string(tool, "name", where)))
            elif allowed_kind in _WEB_SEARCH_TOOLS:
                searches = True
            else:
                unsupported(where, f"{allowed_kind}: only function tools are available")
        kept = [t for t in tools if t["function"]["name"] in chosen]
        # (no function tool left: no choice to send, as chat's `tools_as_sent` does; a
        # web search cannot be forced)
        return mode if kept else None, kept, search if searches else None
    if kind in _WEB_SEARCH_TOOLS:
        unsupported("tool_choice", f"{kind}: a web search cannot be forced; the model decides")
        return None, tools, search
    if isinstance(kind, str):
        unsupported(
            "tool_choice", f"{kind}: built-in and hosted tools are not available on this provider"
        )
        return None, tools, search
    raise ValueError("tool_choice.type: required")


def _response_format(fmt: Any) -> JSONDict:
    kind = _part_type("text.format", fmt)
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise ValueError("text.format.schema: required, a JSON schema object")
        block: JSONDict = {"name": _string(fmt, "name", "text.format"), "schema": schema}
        for key in ("strict", "description"):
            if fmt.get(key) is not None:
                block[key] = fmt[key]
        return {"type": "json_schema", "json_schema": block}
    raise ValueError(
        f"text.format.type: must be 'text', 'json_object' or 'json_schema', got {kind!r}"
    )


# --------------------------------------------------------------------------- responses


def response_from_chat(
    completion: JSONDict,
    *,
    request: JSONDict,
    response_id: str,
    created_at: float,
    item_ids: ItemIds,
    completed_at: Optional[float] = None,
) -> JSONDict:
    """A chat completion as a Responses ``Response`` dict (choice 0)."""
    choices = completion.get("choices") or []
    choice: JSONDict = choices[0] if choices else {}
    message: JSONDict = choice.get("message") or {}
    output: list[JSONDict] = []
    reasoning = message.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        output.append(_reasoning_item(item_ids("rs"), reasoning))
    parts: list[JSONDict] = []
    content = message.get("content")
    if isinstance(content, list):  # a provider's text parts
        content = "".join(p.get("text") or "" for p in content if isinstance(p, dict))
    if isinstance(content, str) and content:
        parts.append(text_part(content))
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        parts.append({"type": "refusal", "refusal": refusal})
    if parts:
        output.append(_message_item(item_ids("msg"), parts, "completed"))
    names = _ToolNames(request.get("tools"))
    for call in message.get("tool_calls") or []:
        if call.get("type", "function") != "function":
            continue  # a provider's own tool at work (GLM's web search), not the caller's
        function = call.get("function") or {}
        item = _call_item(
            item_ids("fc"),
            call.get("id") or item_ids("call"),
            function.get("name") or "",
            function.get("arguments") or "",
            "completed",
        )
        output.append(_named(item, names))
    return _response(
        request,
        response_id=response_id,
        created_at=created_at,
        output=output,
        finish_reason=choice.get("finish_reason"),
        usage=completion.get("usage"),
        completed_at=completed_at,
    )


def output_messages(response: JSONDict, *, skipped: Optional[Report] = None) -> list[JSONDict]:
    """The chat messages a Response's output becomes, for the store's continuation: one
    assistant message with ``content``, ``tool_calls`` and ``reasoning_content``. With
    ``skipped``, what cannot be translated is reported to it and left out (`input_messages`)."""
    given = response.get("output")
    output = {"output": given if isinstance(given, list) else []}
    names = _ToolNames(response.get("tools"))
    return _items_to_messages(output, "output", skipped or _ignore, names, skipped is not None)


def _reasoning_item(item_id: str, text: str) -> JSONDict:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]}


def text_part(text: str) -> JSONDict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _message_item(item_id: str, content: list[JSONDict], status: str) -> JSONDict:
    return {
        "id": item_id,
        "type": "message",
        "role": "assistant",
        "status": status,
        "content": content,
    }


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> JSONDict:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _named(item: JSONDict, names: _ToolNames) -> JSONDict:
    """A ``function_call`` item whose ``name`` is a chat function name, with the
    Responses ``name`` and, for a namespaced function, its ``namespace``."""
    namespace, name = names.responses_name(item["name"])
    item = {k: v for k, v in item.items() if k != "namespace"}
    item["name"] = name
    if namespace is not None:
        item["namespace"] = namespace
    return item


def _incomplete_reason(finish_reason: Any) -> Optional[str]:
    if finish_reason in ("length", "model_context_window_exceeded"):
        return "max_output_tokens"
    if finish_reason in _CONTENT_FILTER:
        return "content_filter"
    return None


def _usage(usage: Any) -> Optional[JSONDict]:
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    total = usage.get("total_tokens")
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    cache_write = prompt_details.get("cache_write_tokens")
    if cache_write is None:
        cache_write = prompt_details.get("cache_creation_input_tokens")
    input_details: JSONDict = {
        "cached_tokens": prompt_details.get("cached_tokens") or 0,
        "cache_write_tokens": cache_write or 0,
    }
    for name in _CACHE_DETAILS:
        if prompt_details.get(name) is not None:
            input_details[name] = prompt_details[name]
    return {
        "input_tokens": prompt,
        "input_tokens_details": input_details,
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": completion_details.get("reasoning_tokens") or 0,
        },
        "total_tokens": total if isinstance(total, int) else prompt + completion,
    }


def _echo(request: JSONDict) -> JSONDict:
    """The request's settings as OpenAI echoes them on the Response."""
    text = dict(request.get("text") or {})
    text.setdefault("format", {"type": "text"})
    if request.get("verbosity") is not None:
        text.setdefault("verbosity", request["verbosity"])
    reasoning = request.get("reasoning") or {}
    return {
        "model": request.get("model"),
        "instructions": request.get("instructions"),
        "tools": list(request.get("tools") or []),
        "tool_choice": request.get("tool_choice") or "auto",
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "parallel_tool_calls": request.get("parallel_tool_calls") is not False,
        "previous_response_id": request.get("previous_response_id"),
        "store": request.get("store") is not False,
        "background": bool(request.get("background")),
        "metadata": dict(request.get("metadata") or {}),
        "text": text,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "truncation": request.get("truncation") or "disabled",
        "user": request.get("user"),
        "safety_identifier": request.get("safety_identifier"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "service_tier": request.get("service_tier"),
    }


def _response(
    request: JSONDict,
    *,
    response_id: str,
    created_at: float,
    output: list[JSONDict],
    status: str = "completed",
    finish_reason: Any = None,
    usage: Any = None,
    error: Optional[JSONDict] = None,
    completed_at: Optional[float] = None,
) -> JSONDict:
    """The Response around ``output``; a cut-short answer marks its last item incomplete."""
    reason = _incomplete_reason(finish_reason) if status == "completed" else None
    if reason is not None:
        status = "incomplete"
        if output:
            output[-1] = {**output[-1], "status": "incomplete"}
    response: JSONDict = {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": reason} if reason else None,
        **_echo(request),
        "output": output,
        "usage": _usage(usage),
    }
    if status == "completed" and completed_at is not None:
        response["completed_at"] = completed_at
    return response


# --------------------------------------------------------------------------- streams


class _Item:
    """One output item being streamed."""

    def __init__(self, index: int, data: JSONDict) -> None:
        self.index = index
        self.data = data
        # The reasoning summary, the message text, or the call's arguments, as the pieces
        # that came: joined when read (a stream of many pieces stays linear).
        self._pieces: list[str] = []
        self.refusal: Optional[str] = None
        self.open = True
        # A message's content parts, each's ``content_index`` the order it was added in
        # (a refusal may come before the text or after it); -1: not added.
        self.text_index = -1
        self.refusal_index = -1

    def add(self, piece: str) -> None:
        self._pieces.append(piece)

    @property
    def text(self) -> str:
        if len(self._pieces) > 1:
            self._pieces[:] = ["".join(self._pieces)]
        return self._pieces[0] if self._pieces else ""

    @property
    def has_text(self) -> bool:
        return any(self._pieces)


class ResponseEvents:
    """Chat stream chunks (OpenAI chunk JSON) -> Responses stream events, in openai's order.

    ``start()`` gives ``response.created`` and ``response.in_progress``; ``chunk()`` the
    events one chunk makes; ``finish()`` closes what is open and gives
    ``response.completed`` (or ``response.incomplete``); ``fail()`` gives
    ``response.failed``. Every event carries its ``sequence_number``.
    """

    def __init__(
        self,
        request: JSONDict,
        *,
        response_id: str,
        created_at: float,
        item_ids: ItemIds,
    ) -> None:
        self._request = request
        self._id = response_id
        self._created_at = created_at
        self._item_ids = item_ids
        self._sequence = 0
        self._items: list[_Item] = []
        self._current: Optional[_Item] = None  # the open reasoning or message item
        self._calls: dict[Any, _Item] = {}  # open tool calls, by chat index
        self._not_calls: set[Any] = set()  # chat indexes of a provider's own tools
        self._names = _ToolNames(request.get("tools"))
        self._finish_reason: Any = None
        self._usage: Any = None
        self._started = False
        self._final: Optional[JSONDict] = None

    # -- public

    @property
    def response(self) -> JSONDict:
        """The final Response after `finish` / `fail`; the snapshot so far before."""
        if self._final is not None:
            return self._final
        return self._snapshot("in_progress")

    def start(self) -> list[JSONDict]:
        if self._started:
            raise RuntimeError("ResponseEvents.start() was already called")
        self._started = True
        return [
            self._event("response.created", response=self._snapshot("in_progress")),
            self._event("response.in_progress", response=self._snapshot("in_progress")),
        ]

    def chunk(self, chunk: JSONDict) -> list[JSONDict]:
        self._check_open()
        events = [] if self._started else self.start()
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content")
            if isinstance(reasoning, str) and reasoning:
                events += self._reasoning(reasoning)
            content = delta.get("content")
            if isinstance(content, str) and content:
                events += self._text(content)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                events += self._refusal(refusal)
            for position, call in enumerate(delta.get("tool_calls") or []):
                events += self._call(position, call)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def finish(self, *, completed_at: Optional[float] = None) -> list[JSONDict]:
        self._check_open()
        events = [] if self._started else self.start()
        events += self._close_current()
        for call in list(self._calls.values()):
            events += self._close_call(call)
        self._calls.clear()
        if _incomplete_reason(self._finish_reason) is not None and self._items:
            # Cut short: the last item (still open until now) ends incomplete.
            last = self._items[-1]
            last.data = {**last.data, "status": "incomplete"}
            for event in events:
                if event["type"] == "response.output_item.done" and (
                    event["output_index"] == last.index
                ):
                    event["item"] = dict(last.data)
        final = _response(
            self._request,
            response_id=self._id,
            created_at=self._created_at,
            output=[dict(item.data) for item in self._items],
            finish_reason=self._finish_reason,
            usage=self._usage,
            completed_at=completed_at,
        )
        self._final = final
        kind = "response.completed" if final["status"] == "completed" else "response.incomplete"
        events.append(self._event(kind, response=final))
        return events

    def fail(self, error: JSONDict) -> list[JSONDict]:
        """``response.failed`` with ``error`` ({code, message}); open items end incomplete."""
        self._check_open()
        events = [] if self._started else self.start()
        code = error.get("code")
        output = []
        for item in self._items:
            data = self._built(item)
            if item.open and data["type"] != "reasoning":
                data["status"] = "incomplete"
            output.append(data)
        self._final = _response(
            self._request,
            response_id=self._id,
            created_at=self._created_at,
            output=output,
            status="failed",
            usage=self._usage,
            error={
                "code": code if code in ERROR_CODES else "server_error",
                "message": str(error.get("message") or "the provider failed"),
            },
        )
        events.append(self._event("response.failed", response=self._final))
        return events

    # -- internals

    def _check_open(self) -> None:
        if self._final is not None:
            raise RuntimeError("the response stream has already ended")

    def _event(self, kind: str, **fields: Any) -> JSONDict:
        event = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return event

    def _snapshot(self, status: str) -> JSONDict:
        return _response(
            self._request,
            response_id=self._id,
            created_at=self._created_at,
            output=[self._built(item) for item in self._items],
            status=status,
        )

    def _built(self, item: _Item) -> JSONDict:
        """The item as it stands (a copy)."""
        data = dict(item.data)
        kind = data["type"]
        if kind == "reasoning":
            data["summary"] = [{"type": "summary_text", "text": item.text}]
        elif kind == "message":
            data["content"] = self._parts(item)
        else:
            data["arguments"] = item.text
        return data

    @staticmethod
    def _parts(item: _Item) -> list[JSONDict]:
        """A message's content parts so far, in the order they were added."""
        parts: list[tuple[int, JSONDict]] = []
        if item.text_index >= 0:
            parts.append((item.text_index, text_part(item.text)))
        if item.refusal is not None:
            parts.append((item.refusal_index, {"type": "refusal", "refusal": item.refusal}))
        return [part for _, part in sorted(parts, key=lambda entry: entry[0])]

    def _add(self, data: JSONDict) -> tuple[_Item, JSONDict]:
        item = _Item(len(self._items), data)
        self._items.append(item)
        added = self._event(
            "response.output_item.added", output_index=item.index, item=self._built(item)
        )
        if data["type"] == "message":
            added["item"]["content"] = []
        elif data["type"] == "reasoning":
            added["item"]["summary"] = []
        return item, added

    def _reasoning(self, text: str) -> list[JSONDict]:
        events: list[JSONDict] = []
        item = self._current
        if item is None or item.data["type"] != "reasoning":
            events += self._close_current() + self._close_calls()
            item, added = self._add({"id": self._item_ids("rs"), "type": "reasoning"})
            self._current = item
            events.append(added)
            events.append(
                self._event(
                    "response.reasoning_summary_part.added",
                    item_id=item.data["id"],
                    output_index=item.index,
                    summary_index=0,
                    part={"type": "summary_text", "text": ""},
                )
            )
        item.add(text)
        events.append(
            self._event(
                "response.reasoning_summary_text.delta",
                item_id=item.data["id"],
                output_index=item.index,
                summary_index=0,
                delta=text,
            )
        )
        return events

    def _message(self) -> tuple[_Item, list[JSONDict]]:
        item = self._current
        if item is not None and item.data["type"] == "message":
            return item, []
        events = self._close_current() + self._close_calls()
        item, added = self._add(
            _message_item(self._item_ids("msg"), [], "in_progress"),
        )
        self._current = item
        events.append(added)
        return item, events

    def continued_text(self, text: str) -> Optional[JSONDict]:
        """The ``response.output_text.delta`` of ``text`` when it only continues the open
        message's text (most of a stream); None, with nothing done, when it needs more
        (no message open yet, its first text, a refusal in it): `chunk` then handles it."""
        item = self._current
        if (
            item is None
            or item.data["type"] != "message"
            or item.refusal is not None
            or not item.has_text
            or self._final is not None
        ):
            return None
        return self._text_delta(item, text)

    def _text(self, text: str) -> list[JSONDict]:
        continued = self.continued_text(text)
        if continued is not None:
            return [continued]
        item, events = self._message()
        if item.text_index < 0:
            item.text_index = 1 if item.refusal_index == 0 else 0
            events.append(self._part_event("response.content_part.added", item, text_part("")))
        events.append(self._text_delta(item, text))
        return events

    def _text_delta(self, item: _Item, text: str) -> JSONDict:
        """``text`` added to the message ``item``, and its ``output_text.delta`` event."""
        item.add(text)
        return self._event(
            "response.output_text.delta",
            item_id=item.data["id"],
            output_index=item.index,
            content_index=item.text_index,
            delta=text,
            logprobs=[],
        )

    def _refusal(self, text: str) -> list[JSONDict]:
        item, events = self._message()
        if item.refusal is None:
            item.refusal = ""
            item.refusal_index = 1 if item.text_index == 0 else 0
            events.append(
                self._part_event(
                    "response.content_part.added", item, {"type": "refusal", "refusal": ""}
                )
            )
        item.refusal += text
        events.append(
            self._event(
                "response.refusal.delta",
                item_id=item.data["id"],
                output_index=item.index,
                content_index=item.refusal_index,
                delta=text,
            )
        )
        return events

    def _part_event(self, kind: str, item: _Item, part: JSONDict) -> JSONDict:
        index = item.refusal_index if part["type"] == "refusal" else item.text_index
        return self._event(
            kind,
            item_id=item.data["id"],
            output_index=item.index,
            content_index=index,
            part=part,
        )

    def _call(self, position: int, delta: JSONDict) -> list[JSONDict]:
        key = delta.get("index")
        if key is None:
            key = delta.get("id") or position
        kind = delta.get("type")
        if key in self._not_calls or (kind is not None and kind != "function"):
            self._not_calls.add(key)  # a provider's own tool at work (GLM's web search)
            return []
        function = delta.get("function") or {}
        events: list[JSONDict] = []
        item = self._calls.get(key)
        if item is None:
            events += self._close_current()
            call = _call_item(
                self._item_ids("fc"),
                delta.get("id") or self._item_ids("call"),
                function.get("name") or "",
                "",
                "in_progress",
            )
            item, added = self._add(_named(call, self._names))
            self._calls[key] = item
            events.append(added)
        elif function.get("name") and not item.data["name"]:
            item.data = _named({**item.data, "name": function["name"]}, self._names)
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            item.add(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=item.data["id"],
                    output_index=item.index,
                    delta=arguments,
                )
            )
        return events

    def _close_current(self) -> list[JSONDict]:
        item = self._current
        if item is None:
            return []
        self._current = None
        item.open = False
        events: list[JSONDict] = []
        ids = {"item_id": item.data["id"], "output_index": item.index}
        if item.data["type"] == "reasoning":
            part = {"type": "summary_text", "text": item.text}
            events.append(
                self._event(
                    "response.reasoning_summary_text.done", **ids, summary_index=0, text=item.text
                )
            )
            events.append(
                self._event(
                    "response.reasoning_summary_part.done", **ids, summary_index=0, part=part
                )
            )
            item.data = _reasoning_item(item.data["id"], item.text)
        else:
            for part in self._parts(item):  # (in content_index order, so are their events)
                if part["type"] == "refusal":
                    events.append(
                        self._event(
                            "response.refusal.done",
                            **ids,
                            content_index=item.refusal_index,
                            refusal=part["refusal"],
                        )
                    )
                else:
                    events.append(
                        self._event(
                            "response.output_text.done",
                            **ids,
                            content_index=item.text_index,
                            text=part["text"],
                            logprobs=[],
                        )
                    )
                events.append(self._part_event("response.content_part.done", item, part))
            item.data = _message_item(item.data["id"], self._parts(item), "completed")
        events.append(self._event("response.output_item.done", **_done_fields(item)))
        return events

    def _close_calls(self) -> list[JSONDict]:
        events: list[JSONDict] = []
        for call in list(self._calls.values()):
            events += self._close_call(call)
        self._calls.clear()
        return events

    def _close_call(self, item: _Item) -> list[JSONDict]:
        item.open = False
        item.data = {**item.data, "arguments": item.text, "status": "completed"}
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=item.data["id"],
                output_index=item.index,
                arguments=item.text,
            ),
            self._event("response.output_item.done", **_done_fields(item)),
        ]


def _done_fields(item: _Item) -> JSONDict:
    return {"output_index": item.index, "item": dict(item.data)}
