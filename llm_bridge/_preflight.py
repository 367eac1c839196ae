"""The context-window check made before sending (``[policy] preflight``).

A prompt plus ``max_tokens`` beyond the model's window is refused here with the error
OpenAI's server gives (``context_length_exceeded``), rather than sent, billed and refused
by the provider in its own words.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from ._config import ModelInfo
from ._errors import BadRequestError, local_error
from ._routing import Route

__all__ = ["check_context_window"]


def check_context_window(
    params: dict[str, Any], info: Optional[ModelInfo], route: Route, api: Optional[str], url: str
) -> None:
    """Raise `BadRequestError` when the messages plus ``max_tokens`` cannot fit ``info``'s
    context window (of the model ``route`` names; ``api`` picks the chat template, ``url``
    is the request's, for the error).

    The tokenizer runs only when a cheap bound says the prompt might not fit: a token is
    at least one UTF-8 byte, so a prompt of fewer bytes than the window has room."""
    if info is None or not info.context_window:
        return
    wanted = params.get("max_completion_tokens") or params.get("max_tokens") or 0
    room = info.context_window - wanted
    tools = params.get("tools") or None
    if sum(_byte_bound(m) for m in [*params["messages"], *(tools or [])]) < room:
        return
    from .tokens import count_message_tokens

    prompt = count_message_tokens(
        params["messages"], route.model, provider=route.provider, api=api, tools=tools
    )
    if prompt <= room:
        return
    import httpx

    raise local_error(
        BadRequestError,
        f"This model's maximum context length is {info.context_window} tokens. However, "
        f"you requested {prompt + wanted} tokens ({prompt} in the messages and tools, {wanted} in "
        f"the completion). Please reduce the length of the messages or completion. "
        f"({route.provider}/{route.model}; counted before sending)",
        request=httpx.Request("POST", url),
        param="messages",
        code="context_length_exceeded",
        provider=route.provider,
    )


def _byte_bound(message: dict[str, Any]) -> int:
    """At least the tokens a message (or a tool definition) can take: its text's UTF-8
    length (plain text is the fast path; anything else is measured as JSON) plus a
    template allowance."""
    content = message.get("content")
    if isinstance(content, str) and len(message) <= 2:
        return len(content.encode()) + 16
    return len(json.dumps(message, ensure_ascii=False, default=str).encode()) + 16
