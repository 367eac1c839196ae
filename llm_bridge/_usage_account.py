"""The usage of one call against one route: vetted, estimated where missing, recorded.

Every answer, stream and Responses result ends here: the provider's figures when they are
plausible, else a count made with the model's tokenizer (marked ``estimated``), recorded
with its cost in the client's `UsageLedger` (and so passed to ``on_usage``).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from ._responses import input_messages, instruction_messages
from ._routing import Route
from ._shapes.completion_usage import CompletionTokensDetails, CompletionUsage
from .usage import Price, UsageLedger, UsageRecord, cost_of

__all__ = ["MAX_PLAUSIBLE_TOKENS", "UsageAccount"]

log = logging.getLogger("llm_bridge")

#: More tokens than any one request can hold (the largest context windows are a few
#: million): usage beyond it, or below zero, is the provider's error, not a bill.
MAX_PLAUSIBLE_TOKENS = 100_000_000


class UsageAccount:
    """Usage for one call: ``kind`` (chat, embeddings, responses) of ``params`` to
    ``route``, counted with the chat template of ``api`` when estimated, priced by
    ``price`` and recorded in ``ledger``."""

    def __init__(
        self,
        ledger: UsageLedger,
        price: Callable[[str, str], Optional[Price]],
        route: Route,
        params: dict[str, Any],
        *,
        api: Optional[str],
        kind: str,
    ) -> None:
        self.ledger = ledger
        self.price = price
        self.route = route
        self.params = params
        self.api = api
        self.kind = kind

    def settle_stream(
        self,
        usage: Optional[dict[str, Any]],
        text: str,
        request_id: Optional[str],
        complete: bool,
        answered: bool,
        reasoning: str = "",
    ) -> Optional[dict[str, Any]]:
        """A finished, broken or abandoned stream's usage: the provider's, else estimated
        (``text`` all that reached the caller, ``reasoning`` the part of it that was
        reasoning, counted as reasoning tokens: thinking output may cost more).

        A stream that did not finish keeps the provider's last running figures when it
        sent any (closer to the bill than a local count), marked estimated. ``answered``:
        whether anything of the answer reached the caller (a role-only first chunk, say);
        a stream closed after that is billed for its prompt, text or not."""
        if usage is None and not text and not complete and not answered:
            return None  # broke before anything was generated (and is retried): no record
        final = None
        if usage is not None:
            try:
                final = CompletionUsage.model_validate(usage)
            except ValueError:  # figures of an unexpected shape: counted here instead
                final = None
            if final is not None and not complete:
                final.estimated = True
        final = self.vetted(final, lambda: (text, reasoning))
        self.record(final, request_id)
        return final.model_dump(exclude_none=True)

    def vetted(
        self, usage: Optional[CompletionUsage], answer: Callable[[], tuple[str, str]]
    ) -> CompletionUsage:
        """The provider's figures when they are plausible, else a count made here (marked
        ``estimated``, with a warning saying why): negative counts, or more tokens than
        any request can hold (`MAX_PLAUSIBLE_TOKENS`), would go into the ledger as
        negative or astronomical costs. ``answer()`` gives what the count is made of: all
        the answer's generated text (its message, reasoning and tool calls) and the part
        of it that was reasoning."""
        if usage is None:
            return self.estimate(*answer())
        counts = (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
        if all(0 <= count <= MAX_PLAUSIBLE_TOKENS for count in counts):
            return usage
        log.warning(
            "%s/%s reported implausible usage (prompt %s, completion %s, total %s tokens); "
            "counted here instead (marked estimated)",
            self.route.provider,
            self.route.model,
            *counts,
        )
        return self.estimate(*answer())

    def estimate(self, completion_text: str, reasoning: str = "") -> CompletionUsage:
        """Usage counted here, for a response or stream the provider gave none for;
        ``reasoning`` (part of ``completion_text``) counts as reasoning tokens too."""
        from .tokens import count_message_tokens, count_tokens

        provider, model = self.route
        messages = self.params.get("messages")
        if messages is None:  # a Responses request: its instructions and input as messages
            # (as far as they translate: a provider's own Responses API may have taken
            # parts chat has no form for, and its answer is in by now)
            messages = [
                *instruction_messages(self.params, lenient=True),
                *input_messages(self.params, lenient=True),
            ]
        tools = self.params.get("tools")  # (counted as their JSON: part of the prompt)
        prompt = count_message_tokens(messages, model, provider=provider, api=self.api, tools=tools)
        completion = count_tokens(completion_text, model, provider=provider)
        details = None
        if reasoning:
            thought = min(count_tokens(reasoning, model, provider=provider), completion)
            details = CompletionTokensDetails(reasoning_tokens=thought)
        return CompletionUsage(
            prompt_tokens=prompt,
            completion_tokens=completion,
            total_tokens=prompt + completion,
            completion_tokens_details=details,
            estimated=True,
        )

    def input_tokens(self) -> int:
        """The tokens of an embeddings call's ``input`` counted here (a provider that
        reported none): texts with the model's tokenizer, token arrays by their length."""
        from .tokens import count_tokens

        provider, model = self.route
        given = self.params.get("input")
        items = given if isinstance(given, list) else [given]
        if items and all(isinstance(item, int) for item in items):
            return len(items)  # (one token array)
        return sum(
            len(item)
            if isinstance(item, list)
            else count_tokens(str(item), model, provider=provider)
            for item in items
        )

    def record(self, usage: CompletionUsage, request_id: Optional[str]) -> None:
        provider, model = self.route
        self.ledger.record(
            UsageRecord(
                provider=provider,
                model=model,
                usage=usage,
                cost_cny=cost_of(usage, self.price(provider, model)),
                estimated=bool(usage.estimated),
                request_id=request_id,
                kind=self.kind,
            )
        )
