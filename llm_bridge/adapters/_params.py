"""OpenAI parameter checks and the unsupported-parameter policy, shared by all adapters.

The caller wrote parameters for OpenAI. Before any adapter maps them, this module checks
them as OpenAI's server would (types, ranges, roles), so a mistake fails here, naming the
parameter, instead of as a provider's 400 in another language. When a provider cannot
honour a parameter, `ParamContext.unsupported` applies the configured policy: warn and
drop (default; the engine says it once per provider and parameter), drop silently, or
refuse the request before sending (`Refused`, raised to the caller as `BadRequestError`).
The module holds no state: what was warned about is the engine's to remember.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from .._config import ModelInfo, ParamRule
from .._fan_out import BatchLimits, InputSlice
from .._wire import Refused

__all__ = [
    "CHAT_PARAMS",
    "EMBEDDING_PARAMS",
    "ParamContext",
    "ParamError",
    "batch_token_limits",
    "check_chat_params",
    "check_embedding_params",
    "token_ids",
]

#: Every keyword ``chat.completions.create`` accepts, as in openai (plus the extras).
CHAT_PARAMS = frozenset(
    {
        "messages",
        "model",
        "audio",
        "frequency_penalty",
        "function_call",
        "functions",
        "logit_bias",
        "logprobs",
        "max_completion_tokens",
        "max_tokens",
        "metadata",
        "modalities",
        "n",
        "parallel_tool_calls",
        "prediction",
        "presence_penalty",
        "moderation",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning_effort",
        "response_format",
        "safety_identifier",
        "seed",
        "service_tier",
        "stop",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "user",
        "verbosity",
        "web_search_options",
    }
)
EMBEDDING_PARAMS = frozenset({"input", "model", "dimensions", "encoding_format", "user"})
#: Keywords that shape the HTTP call rather than the body, accepted by every method.
REQUEST_OPTIONS = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
#: The ``encoding_format`` values OpenAI's embeddings take.
ENCODING_FORMATS = ("float", "base64")


class ParamError(ValueError):
    """A check's failure in OpenAI's own words, which do not start with the parameter's
    name (``Missing required parameter: 'messages'.``), so it names the parameter
    (``param``) and OpenAI's error ``code`` for the front door's 400 itself."""

    def __init__(self, message: str, *, param: str, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.param = param
        self.code = code


def missing(name: str) -> ParamError:
    """OpenAI's error for a required parameter the request does not give."""
    return ParamError(
        f"Missing required parameter: {name!r}.", param=name, code="missing_required_parameter"
    )


def policy_refusal(message: str) -> str:
    """The text of a request refused under ``[policy] unsupported_params = "error"`` for
    what ``message`` says the provider cannot do."""
    return f'{message}. Refused (policy unsupported_params = "error"): nothing was sent'


def policy_warning(message: str) -> str:
    """The text of the warning ``[policy] unsupported_params = "warn"`` gives for
    ``message`` (what the provider cannot do, and what was sent instead)."""
    return (
        f'{message}. Set [policy] unsupported_params = "drop" to silence this or "error" '
        f"to refuse such requests."
    )


class ParamContext:
    """The caller's parameters plus the policy for what the provider cannot take."""

    def __init__(
        self,
        params: Mapping[str, Any],
        *,
        provider: str,
        url: str,
        policy: str,
        rules: Mapping[str, ParamRule],
        warn: Callable[[str, str], None],
    ) -> None:
        self.params = params
        self.provider = provider
        self.url = url
        self.policy = policy
        self.rules = rules
        self._warn = warn

    def get(self, name: str, default: Any = None) -> Any:
        value = self.params.get(name, default)
        return default if value is None else value

    def unsupported(self, name: str, reason: str, instead: str = "it was not sent") -> None:
        """Apply the policy to a parameter the provider cannot honour. ``reason`` says why
        ("GLM accepts only 'auto'"), ``instead`` what the "warn" and "drop" policies send
        in its place ("'required' was sent as 'auto'"): the "error" policy's refusal leaves
        that out, as nothing is sent then."""
        message = f"{self.provider} does not support {name}: {reason}"
        if self.policy == "error":
            raise self.error(policy_refusal(message), param=name, code="unsupported_parameter")
        if self.policy == "warn":
            self._warn(name, policy_warning(f"{message}; {instead}"))

    def refuse(self, unsupported: Mapping[str, str]) -> None:
        """Apply the policy to every given parameter the provider table lists as unsupported."""
        given = unsupported.keys() & self.params.keys()
        if not given:  # the usual case
            return
        for name, reason in unsupported.items():  # in the table's order: errors are stable
            if name in given and self.params[name] not in (None, False):
                self.unsupported(name, reason)

    def error(
        self, message: str, *, param: Optional[str] = None, code: Optional[str] = None
    ) -> Refused:
        """The refusal of this request, before sending (a `BadRequestError` for the caller)."""
        return Refused(message, url=self.url, provider=self.provider, param=param, code=code)

    def stops(self) -> tuple[list[str], list[str]]:
        """The stop sequences to send and those to apply client-side (beyond ``max_items``)."""
        stop = self.get("stop")
        if not stop:
            return [], []
        stops = [stop] if isinstance(stop, str) else list(stop)
        rule = self.rules.get("stop")
        limit = rule.max_items if rule is not None and rule.max_items else len(stops)
        return stops[:limit], stops[limit:]

    def dimensions(self, model: str, offered: list[int]) -> Optional[int]:
        """The ``dimensions`` value to send for an embedding model offering ``offered``.

        A fixed-size model (one entry) asked for its own size gets nothing sent: its
        providers reject the field. A size the model does not offer is refused, whatever
        the unsupported-parameter policy, as OpenAI refuses ``dimensions`` for a model
        without them: vectors of another size than asked for would fail far from here (in
        the index they are stored in).
        """
        dimensions = self.get("dimensions")
        if dimensions is None or not offered:
            return dimensions
        if dimensions not in offered:
            sizes = (
                f"it always returns {offered[0]}"
                if len(offered) == 1
                else f"allowed: {', '.join(map(str, offered))}"
            )
            raise self.error(
                f"dimensions={dimensions} is not offered by {model}; {sizes}",
                param="dimensions",
            )
        return None if len(offered) == 1 else dimensions

    def clamp(self, name: str, value: float) -> float:
        """``value`` kept inside the provider's range for ``name`` (from its table)."""
        rule = self.rules.get(name)
        if rule is None:
            return value
        if rule.min is not None and value < rule.min:
            return rule.min
        if rule.max is not None and value > rule.max:
            return rule.max
        return value


#: How far an approximate count (a provider whose vocabulary is not shipped, see
#: `llm_bridge.tokens`) must exceed an embedding model's limit before the text is refused
#: locally: the shipped vocabulary is off by tens of percent on those providers, so only a
#: text far beyond the limit is surely too long; a nearer one is left to the provider.
APPROXIMATE_MARGIN = 2


def check_input_length(
    ctx: ParamContext, texts: Any, model: str, provider: str, limit: int
) -> None:
    """Refuse, before sending, an embeddings text longer than ``limit`` tokens (the model's
    ``max_input_tokens``), naming the limit and the text, as OpenAI does for its own
    models; the provider would answer a 400 that names neither (or bill a truncation).

    A text of at most ``limit`` UTF-8 bytes cannot exceed it and is not tokenized."""
    rows = [texts] if isinstance(texts, str) else texts
    if not isinstance(rows, list):
        return
    for index, text in enumerate(rows):
        if not isinstance(text, str) or len(text.encode()) <= limit:
            continue
        from ..tokens import count_tokens, tokenizer_info

        exact = tokenizer_info(model, provider=provider).exact
        tokens = count_tokens(text, model, provider=provider)
        if tokens > (limit if exact else limit * APPROXIMATE_MARGIN):
            # (a request of a split call names the text by its index in the whole call)
            start = texts.start if isinstance(texts, InputSlice) else 0
            where = "input" if isinstance(texts, str) else f"input[{start + index}]"
            counted = "" if exact else "about "
            raise ctx.error(
                f"This model's maximum context length is {limit} tokens, however you "
                f"requested {counted}{tokens} tokens in {where}. Please reduce the length "
                f"of the input. ({provider}/{model}; counted before sending)",
                param="input",
                code="context_length_exceeded",
            )


def batch_token_limits(provider: str, model: str, info: ModelInfo) -> BatchLimits:
    """The per-request limits of an embedding model that caps a request's total tokens
    (``max_batch_tokens``; Zhipu's 8K), with texts counted by the provider's vocabulary.

    Where that count is approximate the requests are packed to half the limit
    (`APPROXIMATE_MARGIN`): a request more costs only a round trip, one past the limit
    fails the whole call."""
    from ..tokens import count_tokens, tokenizer_info

    assert info.max_batch_tokens is not None
    tokens = info.max_batch_tokens
    if not tokenizer_info(model, provider=provider).exact:
        tokens //= APPROXIMATE_MARGIN
    return BatchLimits(
        info.max_batch, tokens, lambda text: count_tokens(text, model, provider=provider)
    )


# --------------------------------------------------------------------------- OpenAI checks


def check_chat_params(params: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` for what OpenAI itself would reject.

    Wrong types and structural errors are programming errors and raise ``TypeError`` or
    ``ValueError`` (as openai's client does for bad arguments), naming the parameter.
    """
    if not CHAT_PARAMS.issuperset(params):
        name = sorted(set(params) - CHAT_PARAMS)[0]
        raise TypeError(
            f"create() got an unexpected keyword argument {name!r}; provider-only fields go "
            f"in extra_body={{{name!r}: ...}}"
        )
    _check_model(params.get("model"))
    _check_messages(params.get("messages"))
    _check_stream(params)
    for name, low, high in _RANGES:
        value = params.get(name)
        if value is not None:
            _check_number(name, value, low, high)
    for name, least, most in _INTEGERS:
        value = params.get(name)
        if value is None:
            continue
        if not _integer(value):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if least is not None and value < least:
            raise ValueError(f"{name} must be >= {least}, got {value}")
        if most is not None and value > most:
            raise ValueError(f"{name} must be <= {most}, got {value}")
    stop = params.get("stop")
    if (
        stop is not None
        and not isinstance(stop, str)
        and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop))
    ):
        raise TypeError("stop must be a string or a list of strings")
    _check_tools(params.get("tools"))


#: (parameter, lowest, highest) of OpenAI's numeric ranges.
_RANGES = (
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("presence_penalty", -2.0, 2.0),
    ("frequency_penalty", -2.0, 2.0),
)
#: Integer parameters and their least and greatest values (None: any), as OpenAI takes
#: them. ``n`` past OpenAI's 128 is refused here too: where a provider takes one choice a
#: request, each choice is a request of its own (`_fan_out`).
_INTEGERS = (
    ("max_tokens", 1, None),
    ("max_completion_tokens", 1, None),
    ("n", 1, 128),
    ("seed", None, None),
    ("top_logprobs", 0, 20),
)
#: The most texts (or token lists) one embeddings request takes, as OpenAI's.
MAX_EMBEDDING_INPUTS = 2048
#: OpenAI's boolean chat parameters (a string such as "yes" is refused, not read as true).
_BOOLEANS = ("stream", "logprobs", "parallel_tool_calls", "store")


def check_embedding_params(params: Mapping[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` for what OpenAI's embeddings refuse, as
    `check_chat_params` does for chat."""
    if not EMBEDDING_PARAMS.issuperset(params):
        name = sorted(set(params) - EMBEDDING_PARAMS)[0]
        raise TypeError(f"create() got an unexpected keyword argument {name!r}")
    _check_model(params.get("model"))
    texts = params.get("input")
    if texts is None:
        raise missing("input")
    if isinstance(texts, list) and not texts:
        raise ValueError("input must not be an empty list")
    # (a flat list of ints is one text's token ids, as long as the text)
    if isinstance(texts, list) and len(texts) > MAX_EMBEDDING_INPUTS and not _integer(texts[0]):
        raise ValueError(f"input must hold at most {MAX_EMBEDDING_INPUTS} items, got {len(texts)}")
    _check_no_empty_text(texts)
    encoding = params.get("encoding_format")
    if encoding is not None and encoding not in ENCODING_FORMATS:
        raise ValueError(f"encoding_format must be 'float' or 'base64', got {encoding!r}")


def _check_no_empty_text(texts: Any) -> None:
    """Refuse an empty text, naming where it is: OpenAI answers 400 for one, and so do the
    providers (with a message that names no index, after the other texts were billed
    in earlier batches)."""
    if texts == "":
        raise ValueError("input must not be an empty string")
    if isinstance(texts, list):
        for index, text in enumerate(texts):
            if text == "" or text == []:
                raise ValueError(f"input[{index}] must not be empty")


def token_ids(texts: Any) -> bool:
    """Whether an embeddings ``input`` is token ids (a list of ints, or a list of lists of
    ints), which OpenAI takes beside text."""
    if not isinstance(texts, list) or not texts:
        return False
    rows = texts if all(isinstance(row, list) for row in texts) else [texts]
    return all(_integer(t) for row in rows for t in row)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_model(model: Any) -> None:
    if model is None:
        raise missing("model")
    if not isinstance(model, str):
        raise TypeError(f"model must be a string, got {type(model).__name__}")


def check_booleans(params: Mapping[str, Any], names: Iterable[str]) -> None:
    """A ``TypeError`` naming the first of ``names`` that ``params`` gives as something
    other than a boolean (OpenAI refuses ``"stream": "yes"``; Python would take it as true)."""
    for name in names:
        value = params.get(name)
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"{name} must be a boolean, got {type(value).__name__}")


def _check_stream(params: Mapping[str, Any]) -> None:
    """OpenAI's boolean parameters are booleans, and ``stream_options`` comes only with
    ``stream: true`` (the server refuses it otherwise)."""
    check_booleans(params, _BOOLEANS)
    options = params.get("stream_options")
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise TypeError(f"stream_options must be an object, got {type(options).__name__}")
    if params.get("stream") is not True:
        raise ParamError(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
        )


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise missing("messages")
    if isinstance(messages, (str, bytes)) or not hasattr(messages, "__iter__"):
        raise TypeError(f"messages must be a list of message dicts, got {type(messages).__name__}")
    messages = list(messages)
    if not messages:
        raise ValueError("messages must contain at least one message")
    for index, message in enumerate(messages):
        if type(message) is not dict and not isinstance(message, Mapping):
            raise TypeError(
                f"messages[{index}] must be a dict with 'role' and 'content', "
                f"got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise ValueError(f"messages[{index}].role must be one of {sorted(ROLES)}, got {role!r}")
        content = message.get("content")
        if content is not None and not isinstance(content, (str, list)):
            raise TypeError(
                f"messages[{index}].content must be a string or a list of content parts, "
                f"got {type(content).__name__}"
            )
        if role == "tool" and not message.get("tool_call_id"):
            raise ValueError(f"messages[{index}] has role 'tool' but no 'tool_call_id'")


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:g} and {high:g}, got {value}")


def _check_tools(tools: Any) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise TypeError(f"tools must be a list, got {type(tools).__name__}")
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or tool.get("type") not in ("function", None):
            kind = tool.get("type") if isinstance(tool, Mapping) else type(tool).__name__
            raise TypeError(
                f"tools[{index}] must be {{'type': 'function', 'function': {{...}}}}, got {kind!r}"
            )
        function = tool.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise TypeError(f"tools[{index}].function must be a dict with a string 'name'")
        try:
            json.dumps(function.get("parameters", {}))
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"tools[{index}].function.parameters is not JSON-serialisable: {exc}"
            ) from None


def tools_as_sent(params: dict[str, Any]) -> dict[str, Any]:
    """The call's tools and ``tool_choice`` as a provider takes them: openai's deprecated
    ``functions`` as tools (`legacy_functions_as_tools`), and an ``allowed_tools`` choice
    as the tools it allows, with its mode as the choice (no provider here takes the
    object; sent on, the model was offered every tool, the disallowed ones included)."""
    params = legacy_functions_as_tools(params)
    choice = params.get("tool_choice")
    if not (isinstance(choice, Mapping) and choice.get("type") == "allowed_tools"):
        return params
    allowed = choice.get("allowed_tools")
    mode = allowed.get("mode") if isinstance(allowed, Mapping) else None
    listed = allowed.get("tools") if isinstance(allowed, Mapping) else None
    if mode not in ("auto", "required"):
        raise ParamError(
            f"tool_choice.allowed_tools.mode must be 'auto' or 'required', got {mode!r}",
            param="tool_choice",
        )
    if not isinstance(listed, list):
        raise ParamError("tool_choice.allowed_tools.tools must be a list", param="tool_choice")
    names = {_tool_name(tool) for tool in listed} - {None}
    tools = [tool for tool in params.get("tools") or [] if _tool_name(tool) in names]
    return {**params, "tools": tools or None, "tool_choice": mode if tools else None}


def _tool_name(tool: Any) -> Optional[str]:
    """A function tool's name (``{"type": "function", "function": {"name": ...}}``)."""
    function = tool.get("function") if isinstance(tool, Mapping) else None
    name = function.get("name") if isinstance(function, Mapping) else None
    return name if isinstance(name, str) else None


def legacy_functions_as_tools(params: dict[str, Any]) -> dict[str, Any]:
    """openai's deprecated ``functions``/``function_call`` as ``tools``/``tool_choice``,
    and a conversation's legacy turns (an assistant's ``function_call``, a ``function``
    result) as a tool call and its result (`_legacy_turns_as_tools`): the providers take
    only these, and dropped the legacy call, leaving its result with no call before it."""
    messages = params.get("messages")
    legacy_turns = isinstance(messages, list) and any(
        isinstance(m, Mapping) and (m.get("role") == "function" or m.get("function_call"))
        for m in messages
    )
    if params.get("functions") is None and not legacy_turns:
        return params
    params = dict(params)
    if params.get("functions") is not None:
        params["tools"] = [{"type": "function", "function": f} for f in params.pop("functions")]
        choice = params.pop("function_call", None)
        if isinstance(choice, Mapping):
            params["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        elif choice is not None:
            params["tool_choice"] = choice
    if legacy_turns and isinstance(messages, list):
        params["messages"] = _legacy_turns_as_tools(messages)
    return params


def _legacy_turns_as_tools(messages: list[Any]) -> list[Any]:
    """Each assistant ``function_call`` as a tool call with an id made here, and each
    ``function`` result as the tool result of the latest call of its name without one."""
    out: list[Any] = []
    waiting: dict[Any, list[str]] = {}  # function name -> ids of its calls with no result yet
    for position, message in enumerate(messages):
        call = message.get("function_call") if isinstance(message, Mapping) else None
        role = message.get("role") if isinstance(message, Mapping) else None
        if role == "assistant" and isinstance(call, Mapping) and not message.get("tool_calls"):
            ident = f"call_legacy_{position}"
            waiting.setdefault(call.get("name"), []).append(ident)
            function = {"name": call.get("name"), "arguments": call.get("arguments") or "{}"}
            turn = {k: v for k, v in message.items() if k != "function_call"}
            turn["tool_calls"] = [{"id": ident, "type": "function", "function": function}]
            out.append(turn)
        elif role == "function":
            calls = waiting.get(message.get("name")) or [f"call_legacy_{position}"]
            ident = calls.pop()
            out.append({"role": "tool", "tool_call_id": ident, "content": message.get("content")})
        else:
            out.append(message)
    return out


def as_legacy_function_call(choice: dict[str, Any], field: str) -> None:
    """A choice of an answer to openai's deprecated ``functions`` as openai words it: its
    first tool call as ``function_call`` (in ``field``, the message or a stream's delta),
    no ``tool_calls``, and ``finish_reason`` ``function_call`` for ``tool_calls``."""
    if choice.get("finish_reason") == "tool_calls":
        choice["finish_reason"] = "function_call"
    part = choice.get(field)
    calls = part.pop("tool_calls", None) if isinstance(part, dict) else None
    if not isinstance(part, dict) or not isinstance(calls, list):
        return
    first = [c for c in calls if isinstance(c, Mapping) and c.get("index", 0) == 0][:1]
    function = first[0].get("function") if first else None
    if isinstance(function, Mapping):
        part["function_call"] = {k: v for k, v in function.items() if v is not None}
