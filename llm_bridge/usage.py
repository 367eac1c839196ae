"""Usage records, the per-client ledger, and cost in yuan.

Every call leaves one `UsageRecord`: the provider's own figures when it reported them, or
figures counted here with `llm_bridge.tokens` (``estimated=True``) when it did not — a
stream cut short, a provider that omits usage. Cost uses the per-model prices in CNY from
the provider tables, overridden by the config's ``[prices."provider/model"]``.

The ledger (``client.usage``) is safe across threads and asyncio tasks: records are added
under a lock and no ``await`` happens while it is held.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import partial
from typing import Any, Callable, Optional

from ._shapes.completion_usage import CompletionUsage

_log = logging.getLogger("llm_bridge")

__all__ = ["Price", "PriceTier", "UsageLedger", "UsageRecord", "UsageSummary", "cost_of"]

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class PriceTier:
    """One band of a price that depends on the call's length, CNY per million tokens.

    DashScope prices qwen-plus and the Qwen3.5+ models by the prompt's length (up to 128K,
    up to 256K, beyond), and Zhipu's GLM-4.5 to GLM-5 by the prompt's and sometimes the
    answer's length; each band has its own input, output and cache prices. A call falls in
    the first tier whose bounds (inclusive; None: no bound) hold both its prompt and its
    completion tokens. A price a tier leaves out falls back as `Price`'s do: a cached,
    cache-creation or explicit-hit price to the tier's input (or cached) price, a
    thinking-mode output price to its output price."""

    up_to_input_tokens: Optional[int]
    up_to_output_tokens: Optional[int]
    input: Decimal
    output: Decimal
    cached_input: Optional[Decimal] = None
    cache_creation: Optional[Decimal] = None
    thinking_output: Optional[Decimal] = None
    explicit_cache_hit: Optional[Decimal] = None

    def holds(self, prompt_tokens: int, completion_tokens: int) -> bool:
        """Whether a call of this length falls within the tier's bounds."""
        return (self.up_to_input_tokens is None or prompt_tokens <= self.up_to_input_tokens) and (
            self.up_to_output_tokens is None or completion_tokens <= self.up_to_output_tokens
        )

    def flat(self) -> Price:
        """The tier as a flat price."""
        return Price(
            self.input,
            self.output,
            self.cached_input,
            self.cache_creation,
            self.thinking_output,
            self.explicit_cache_hit,
        )


@dataclass(frozen=True)
class Price:
    """CNY per million tokens.

    ``input`` and the other fields are the price of a call in the first (cheapest) tier,
    which is what listings show; ``tiers``, when the provider prices by length, are all the
    tiers in ascending order, and `for_call` picks the one a call falls in."""

    input: Decimal
    output: Decimal
    cached_input: Optional[Decimal] = None
    cache_creation: Optional[Decimal] = None  # writing an explicit cache (DashScope: 125%)
    # Output of a call that thought, on a hybrid model priced higher in thinking mode
    # (DashScope's qwen-plus: 2 without thinking, 8 with); None: ``output`` either way.
    thinking_output: Optional[Decimal] = None
    # A read from an explicit cache (DashScope's cache_control: 10 % of input, half its
    # implicit-cache rate); None: ``cached_input``. Catalogue data, per model.
    explicit_cache_hit: Optional[Decimal] = None
    tiers: tuple[PriceTier, ...] = ()

    def for_call(self, prompt_tokens: int, completion_tokens: int = 0) -> Price:
        """The flat price a call of this length pays: its tier's, else this one. A call
        beyond the last tier's bounds pays the last tier's (the dearest, as the provider's
        own limits should never let it happen)."""
        if not self.tiers:
            return self
        return self.tiers[self._tier_index(prompt_tokens, completion_tokens)].flat()

    def upper_cost(self, prompt_tokens: int, completion_tokens: int) -> Decimal:
        """Yuan no call with at most these tokens can exceed, whichever tier it falls in,
        whether it thinks, and whatever part of its prompt is read from or written to a
        cache: what a budget should reserve before the call (`cost_of` settles it after).

        Tiers are ascending, so a shorter call falls in the same tier or an earlier one;
        each of those is priced at its dearest input and output rates."""
        candidates = (
            [
                tier.flat()
                for tier in self.tiers[: self._tier_index(prompt_tokens, completion_tokens) + 1]
            ]
            if self.tiers
            else [self]
        )
        worst = max(
            prompt_tokens * max(_input_rates(price)) + completion_tokens * max(_output_rates(price))
            for price in candidates
        )
        return worst / MILLION

    def _tier_index(self, prompt_tokens: int, completion_tokens: int) -> int:
        for index, tier in enumerate(self.tiers):
            if tier.holds(prompt_tokens, completion_tokens):
                return index
        return len(self.tiers) - 1


def _input_rates(price: Price) -> list[Decimal]:
    rates = [price.input, price.cached_input, price.cache_creation, price.explicit_cache_hit]
    return [rate for rate in rates if rate is not None]


def _output_rates(price: Price) -> list[Decimal]:
    return [rate for rate in (price.output, price.thinking_output) if rate is not None]


def cost_of(usage: CompletionUsage, price: Optional[Price]) -> Optional[Decimal]:
    """Yuan for ``usage`` at ``price`` (None when the model has no price).

    A tiered price is first narrowed to the tier the call's prompt and completion tokens
    fall in (`Price.for_call`). Prompt tokens then fall in three parts: read from the
    provider's cache (``cached_tokens``, at the cached-input price, or the explicit-hit
    price for a read from an explicit cache: `explicit_hit`), written to an explicit cache
    (``cache_write_tokens``, or DashScope's ``cache_creation_input_tokens``, at the
    cache-creation price), and the rest at the input price. A part without a price of its
    own costs the input price (an explicit hit without one: the cached-input price). The
    output of a call that reports reasoning tokens costs the thinking-mode price, where
    one is known."""
    if price is None:
        return None
    price = price.for_call(usage.prompt_tokens, usage.completion_tokens)
    cached, written = cache_tiers(usage)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    if explicit_hit(usage) and price.explicit_cache_hit is not None:
        cached_price = price.explicit_cache_hit
    written_price = price.cache_creation if price.cache_creation is not None else price.input
    uncached = max(usage.prompt_tokens - cached - written, 0)
    total = (
        uncached * price.input
        + cached * cached_price
        + written * written_price
        + usage.completion_tokens * _output_price(usage, price)
    )
    return total / MILLION


def _output_price(usage: CompletionUsage, price: Price) -> Decimal:
    """The output price: the thinking-mode one for a call that reasoned (it reports
    reasoning tokens), else the plain one."""
    details = usage.completion_tokens_details
    thought = details is not None and bool(details.reasoning_tokens)
    if thought and price.thinking_output is not None:
        return price.thinking_output
    return price.output


def cache_tiers(usage: CompletionUsage) -> tuple[int, int]:
    """(prompt tokens read from a cache, prompt tokens written to one)."""
    details = usage.prompt_tokens_details
    if details is None:
        return 0, 0
    extra = details.__pydantic_extra__ or {}
    written = details.cache_write_tokens or extra.get("cache_creation_input_tokens") or 0
    return details.cached_tokens or 0, written if isinstance(written, int) else 0


def explicit_hit(usage: CompletionUsage) -> bool:
    """Whether the cached tokens were read from an explicit cache (DashScope's
    ``cache_control`` markers: ``cache_type`` "ephemeral"), not from the implicit one.
    UNSURE (D4 in docs/unsure.md): that every explicit hit carries ``cache_type``, as the
    examples of Alibaba's context-cache page do."""
    details = usage.prompt_tokens_details
    extra = (details.__pydantic_extra__ or {}) if details is not None else {}
    return extra.get("cache_type") == "ephemeral"


@dataclass(frozen=True)
class UsageRecord:
    """One call's usage, as the ledger and ``on_usage`` callbacks see it."""

    provider: str
    model: str
    usage: CompletionUsage
    cost_cny: Optional[Decimal]
    estimated: bool
    request_id: Optional[str]
    kind: str = "chat"  # or "embeddings"

    @property
    def key(self) -> str:
        return f"{self.provider}/{self.model}"


@dataclass
class UsageSummary:
    """Sums over records; ``cost_cny`` counts only records whose model has a price."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    estimated_requests: int = 0
    cost_cny: Decimal = field(default_factory=lambda: Decimal(0))

    def add(self, record: UsageRecord) -> None:
        self.requests += 1
        self.prompt_tokens += record.usage.prompt_tokens
        self.completion_tokens += record.usage.completion_tokens
        self.total_tokens += record.usage.total_tokens
        self.estimated_requests += int(record.estimated)
        if record.cost_cny is not None:
            self.cost_cny += record.cost_cny

    def merge(self, other: UsageSummary) -> None:
        """Add another summary's sums to this one."""
        self.requests += other.requests
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.total_tokens += other.total_tokens
        self.estimated_requests += other.estimated_requests
        self.cost_cny += other.cost_cny


#: How many of the latest records a ledger keeps for `UsageLedger.records`.
KEEP_RECORDS = 100


class UsageLedger:
    """What a client has spent: ``total()``, ``by_model()`` and the latest records.

    Sums are kept per model as calls are recorded, not recomputed from every record ever
    made: a long-lived client (a gateway, a worker) must not grow with its traffic. So
    ``records()`` holds only the latest ``keep`` calls; an ``on_usage`` callback sees
    every one, for whoever needs the full history.
    """

    def __init__(
        self, on_usage: Optional[Callable[[UsageRecord], Any]] = None, *, keep: int = KEEP_RECORDS
    ) -> None:
        self._recent: deque[UsageRecord] = deque(maxlen=keep)
        self._by_model: dict[str, UsageSummary] = {}
        self._lock = threading.Lock()
        self.on_usage = on_usage
        self._callbacks: set[Any] = set()  # an async on_usage's tasks, kept until done

    def record(self, record: UsageRecord) -> None:
        key = record.key
        with self._lock:
            self._recent.append(record)
            summary = self._by_model.get(key)
            if summary is None:
                summary = self._by_model[key] = UsageSummary()
            summary.add(record)
        if self.on_usage is not None:
            try:
                result = self.on_usage(record)
            except Exception:  # the provider has answered (and billed): the caller gets it
                _log.exception("on_usage callback %r failed on %s", self.on_usage, record.key)
            else:
                if inspect.isawaitable(result):
                    self._run_later(result, record)

    def _run_later(self, callback: Awaitable[Any], record: UsageRecord) -> None:
        """Run what an ``async def`` ``on_usage`` returned as a task of the running event
        loop (the call that made the record does not wait for it), keeping it until it
        ends and logging its failure. Without a running loop (a sync client) nothing can
        run it: that is logged, with what to give instead."""
        try:
            task = asyncio.get_running_loop().create_task(_awaited(callback))
        except RuntimeError:  # no running loop
            if inspect.iscoroutine(callback):
                callback.close()  # (never awaited: no warning at its collection)
            _log.error(
                "on_usage callback %r returned an awaitable outside an event loop (a sync "
                "client), which nothing can await: the record of %s reached it unread. Give "
                "a sync client a plain function.",
                self.on_usage,
                record.key,
            )
            return
        self._callbacks.add(task)
        task.add_done_callback(partial(self._ran, record))

    async def drain(self) -> None:
        """Wait for the async ``on_usage`` callbacks still running: the client's
        ``close()`` does, so that the last records of a program reach them."""
        while self._callbacks:
            await asyncio.gather(*self._callbacks, return_exceptions=True)

    def _ran(self, record: UsageRecord, task: Any) -> None:
        self._callbacks.discard(task)
        if task.cancelled():  # (the event loop ended first: asyncio.run cancels what is left)
            _log.warning(
                "on_usage callback %r was cancelled before it took the record of %s: "
                "close the client (await client.close(), or async with) to wait for it",
                self.on_usage,
                record.key,
            )
        elif task.exception() is not None:
            _log.error(
                "on_usage callback %r failed on %s",
                self.on_usage,
                record.key,
                exc_info=task.exception(),
            )

    def records(self) -> list[UsageRecord]:
        """The latest records (up to ``keep``), oldest first."""
        with self._lock:
            return list(self._recent)

    def total(self) -> UsageSummary:
        total = UsageSummary()
        for summary in self.by_model().values():
            total.merge(summary)
        return total

    def by_model(self) -> dict[str, UsageSummary]:
        """Summaries keyed ``"provider/model"`` (copies: the ledger keeps counting)."""
        with self._lock:
            return {key: replace(summary) for key, summary in self._by_model.items()}

    def reset(self) -> None:
        with self._lock:
            self._recent.clear()
            self._by_model.clear()

    def __iter__(self) -> Iterator[UsageRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        """The records kept (the latest ``keep``), as iterating gives them; the number of
        calls ever recorded is ``total().requests``."""
        with self._lock:
            return len(self._recent)

    def __repr__(self) -> str:
        total = self.total()
        return (
            f"UsageLedger(requests={total.requests}, total_tokens={total.total_tokens}, "
            f"cost_cny={total.cost_cny})"
        )


async def _awaited(callback: Awaitable[Any]) -> Any:
    """``callback`` awaited (a task needs a coroutine; an ``on_usage`` may return any
    awaitable)."""
    return await callback
