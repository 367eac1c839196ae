"""Usage records, the per-client ledger, and cost in yuan.

Every call leaves one `UsageRecord`: the provider's own figures when it reported them, or
figures counted here with `llm_bridge.tokens` (``estimated=True``) when it did not — a
stream cut short, a provider that omits usage. Cost uses the per-model prices in CNY from
the provider tables, overridden by the config's ``[prices."provider/model"]``.

The ledger (``client.usage``) is safe across threads and asyncio tasks: records are added
under a lock and no ``await`` happens while it is held.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Callable, Optional

from ._shapes.completion_usage import CompletionUsage

_log = logging.getLogger("llm_bridge")

__all__ = ["Price", "UsageLedger", "UsageRecord", "UsageSummary", "cost_of"]

MILLION = Decimal(1_000_000)
#: What a hit on an explicit cache costs, as a share of the input price. DashScope marks
#: such hits ``cache_type: "ephemeral"`` and bills them at 10 % of input, half its
#: implicit-cache rate (help.aliyun.com/en/model-studio/context-cache). UNSURE (D4 in
#: docs/unsure.md): that every explicit hit carries ``cache_type``, as the page's examples do.
EXPLICIT_HIT_SHARE = Decimal("0.1")


@dataclass(frozen=True)
class Price:
    """CNY per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Optional[Decimal] = None
    cache_creation: Optional[Decimal] = None  # writing an explicit cache (DashScope: 125%)
    # Output of a call that thought, on a hybrid model priced higher in thinking mode
    # (DashScope's qwen-plus: 2 without thinking, 8 with); None: ``output`` either way.
    thinking_output: Optional[Decimal] = None


def cost_of(usage: CompletionUsage, price: Optional[Price]) -> Optional[Decimal]:
    """Yuan for ``usage`` at ``price`` (None when the model has no price).

    Prompt tokens fall in three tiers: read from the provider's cache (``cached_tokens``,
    at the cached-input price), written to an explicit cache (``cache_write_tokens``, or
    DashScope's ``cache_creation_input_tokens``, at the cache-creation price), and the rest
    at the input price. A tier without a price of its own costs the input price; a read
    from an explicit cache (`explicit_hit`) costs `EXPLICIT_HIT_SHARE` of it. The output
    of a call that reports reasoning tokens costs the thinking-mode price, where one is
    known."""
    if price is None:
        return None
    cached, written = cache_tiers(usage)
    cached_price = price.cached_input if price.cached_input is not None else price.input
    if explicit_hit(usage):
        cached_price = price.input * EXPLICIT_HIT_SHARE
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
    ``cache_control`` markers: ``cache_type`` "ephemeral"), not from the implicit one."""
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
                self.on_usage(record)
            except Exception:  # the provider has answered (and billed): the caller gets it
                _log.exception("on_usage callback %r failed on %s", self.on_usage, record.key)

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
