"""Token counting that works offline, with the providers' own vocabularies where we have them.

Counting Chinese text with OpenAI's vocabulary gives about twice the tokens Qwen bills, so
each provider table names the vocabulary that counts for it (``tokenizer``) and says
whether that count is exact (``tokenizer_exact``):

* DashScope (Qwen) uses Qwen's own BPE vocabulary, shipped in this package: exact.
* Zhipu (GLM-4) and Qianfan (ERNIE) use the same vocabulary as a declared approximation:
  their vocabularies are also large Chinese-first BPEs, far closer to it than to OpenAI's.
  How far off it is, measured, is in README.

Nothing is downloaded: tiktoken's own download would fail in CI and behind firewalls. The
vocabulary is loaded on first use, never at import, and its SHA-256 is checked so that a
damaged file fails loudly instead of miscounting quietly.
"""

from __future__ import annotations

import base64
import hashlib
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, cast

__all__ = ["TokenizerInfo", "count_message_tokens", "count_tokens", "tokenizer_info"]

_VOCAB_DIR = Path(__file__).with_name("vocab")


@dataclass(frozen=True)
class _Vocabulary:
    file: str
    sha256: str
    pattern: str
    specials: tuple[str, ...]
    first_special: int


# Qwen's vocabulary (151,643 BPE ranks) and pre-tokenizer, as Alibaba publishes them in the
# dashscope SDK (Apache-2.0); Qwen 1 to 3 share it. See vocab/README.md.
_QWEN = _Vocabulary(
    file="qwen.tiktoken",
    sha256="b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186",
    pattern=(
        r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
        r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
    ),
    specials=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
    first_special=151643,
)
_VOCABULARIES = {"qwen": _QWEN}


@dataclass(frozen=True)
class TokenizerInfo:
    """Which vocabulary counts a model's tokens, and whether the count is the provider's."""

    model: str
    provider: Optional[str]
    vocabulary: str
    exact: bool
    template: Optional[str]  # the chat template whose overhead count_message_tokens adds
    default_system_prompt: Optional[str] = None  # billed when a request has no system message


class VocabularyError(RuntimeError):
    """A shipped vocabulary file is missing or damaged."""


#: The encodings built so far, by vocabulary name (see `_encoding`).
_encodings: dict[str, Any] = {}
_lock = threading.Lock()


def _encoding(name: str) -> Any:
    """The tiktoken encoding for a shipped vocabulary, built once per process.

    A thread that asks while another builds it waits for that one: a build takes about
    0.2 s and 50 MiB at its peak, and the threads of a server whose first streams are
    closed early at once would otherwise each build (and hold, for that moment) their own."""
    encoding = _encodings.get(name)
    if encoding is None:
        with _lock:
            encoding = _encodings.get(name)
            if encoding is None:
                encoding = _encodings[name] = _built(name)
    return encoding


def _built(name: str) -> Any:
    """The tiktoken encoding for a shipped vocabulary, read from its file (checked)."""
    import tiktoken  # imported here: importing llm_bridge must stay cheap

    vocab = _VOCABULARIES[name]
    path = _VOCAB_DIR / vocab.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise VocabularyError(f"vocabulary {name!r} is missing ({path}): {exc}") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != vocab.sha256:
        raise VocabularyError(
            f"vocabulary {name!r} at {path} is damaged: SHA-256 {digest}, expected "
            f"{vocab.sha256}; reinstall llm-bridge-cn"
        )
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    specials = {token: vocab.first_special + i for i, token in enumerate(vocab.specials)}
    return tiktoken.Encoding(
        name=name, pat_str=vocab.pattern, mergeable_ranks=ranks, special_tokens=specials
    )


def tokenizer_info(model: str, *, provider: Optional[str] = None) -> TokenizerInfo:
    """How ``model``'s tokens are counted (``"dashscope/qwen-max"`` or a bare catalogue name)."""
    from ._config import builtin_providers

    tables = builtin_providers()
    if provider is None and "/" in model and model.split("/", 1)[0] in tables:
        provider, model = model.split("/", 1)
    if provider is None:
        provider = next(
            (name for name, table in tables.items() if table.canonical_model(model)), None
        )
    table = tables.get(provider) if provider else None
    if table is None or table.tokenizer is None:
        # Unknown provider or model: Qwen's vocabulary is the closest we ship for Chinese.
        return TokenizerInfo(model, provider, "qwen", False, None)
    return TokenizerInfo(
        model,
        provider,
        table.tokenizer,
        table.tokenizer_exact,
        table.chat_template,
        table.default_system_prompt,
    )


def count_tokens(text: str, model: str, *, provider: Optional[str] = None) -> int:
    """Tokens in ``text`` as ``model``'s provider counts them (see `tokenizer_info`);
    beyond `EXACT_LIMIT` characters, an estimate (see `_count`)."""
    info = tokenizer_info(model, provider=provider)
    return _count(_encoding(info.vocabulary), text)


#: Characters counted exactly; a longer text is estimated from them. The tokenizer's time
#: and memory grow with its input (hundreds of MB of streamed text took minutes and GBs,
#: and a few hundred MB ended the process from inside the native tokenizer, which Python
#: cannot catch), so it never sees more than this at once.
EXACT_LIMIT = 262_144


def _count(encoding: Any, text: str) -> int:
    """Tokens in ``text``: exact up to `EXACT_LIMIT` characters; beyond, the exact count of
    the first `EXACT_LIMIT` scaled to the whole length (rounded up)."""
    if len(text) <= EXACT_LIMIT:
        return len(encoding.encode(text, disallowed_special=()))
    head = len(encoding.encode(text[:EXACT_LIMIT], disallowed_special=()))
    return -(-head * len(text) // EXACT_LIMIT)


#: Tokens a chat template adds: (once per conversation, per message, after the last message).
_TEMPLATES = {
    # <|im_start|>role\n ... <|im_end|>\n per message; <|im_start|>assistant\n to answer.
    "chatml": (0, 5, 3),
    # [gMASK]<sop> once; <|role|>\n per message; <|assistant|> to answer.
    "glm4": (2, 2, 1),
}


def count_message_tokens(
    messages: Iterable[Mapping[str, Any]],
    model: str,
    *,
    provider: Optional[str] = None,
    api: Optional[str] = None,
    tools: Optional[Iterable[Mapping[str, Any]]] = None,
) -> int:
    """Prompt tokens of a chat, chat-template overhead included where it is known.

    Text parts count; images and audio do not (their cost is provider-specific).
    Tool calls count as their JSON. ChatML (Qwen) adds the role name's tokens too.
    ``api`` is the provider's API flavour when it has several (DashScope's native API bills
    a default system prompt when there is none; its compatible mode does not).
    ``tools`` (the request's tool definitions) count as their JSON: providers put them in
    the prompt and bill them, often more than the messages. The template's own wording
    around them is not known and not counted, so the figure is a lower bound.
    """
    info = tokenizer_info(model, provider=provider)
    encoding = _encoding(info.vocabulary)
    once, per_message, primer = _TEMPLATES.get(info.template or "", (0, 0, 0))
    total = once + primer
    messages = list(messages)
    injects = info.default_system_prompt and (api or "native") == "native"
    if injects and not any(m.get("role") in ("system", "developer") for m in messages):
        messages.insert(0, {"role": "system", "content": info.default_system_prompt or ""})
    for message in messages:
        total += per_message + _count(encoding, _message_text(message))
        if info.template == "chatml":
            total += _count(encoding, str(message.get("role", ""))) - 1
    if tools:
        total += _count(encoding, _tools_text(tools))
    return total


def _tools_text(tools: Iterable[Mapping[str, Any]]) -> str:
    """Tool definitions as the JSON text a provider puts in the prompt."""
    import json

    return json.dumps([dict(tool) for tool in tools], ensure_ascii=False, default=str)


def _message_text(message: Mapping[str, Any]) -> str:
    import json

    content = message.get("content")
    if isinstance(content, list):
        parts = cast("list[Any]", content)
        pieces = [cast("Mapping[str, Any]", part) for part in parts if isinstance(part, Mapping)]
        text = "".join(str(piece.get("text", "")) for piece in pieces)
    else:
        text = content or ""
    calls: Any = message.get("tool_calls")
    if calls:
        text += json.dumps(
            [
                dict(cast("Mapping[str, Any]", call)) if isinstance(call, Mapping) else call
                for call in calls
            ],
            ensure_ascii=False,
            default=str,
        )
    return text
