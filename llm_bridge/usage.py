"""Usage records, the per-client ledger, and cost in yuan.

Every call leaves one `UsageRecord`: the provider's own figures when it reported them, or
figures counted here with `llm_bridge.tokens` (``estimated=True``) when it did not — a
stream cut short, a provider that omits usage. Cost uses the per-model prices in CNY from
the provider tables, overridden by the config's ``[prices."provider/model"]``.

The ledger (``client.usage``) is safe across threads and asyncio tasks: records are added
under a lock and no ``await`` happens while it is held.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Optional

from .types.completion_usage import CompletionUsage

__all__ = ["Price", "UsageLedger", "UsageRecord", "UsageSummary", "cost_of"]

MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Price:
    """CNY per million tokens."""

    input: Decimal
    output: Decimal
    cached_input: Optional[Decimal] = None


def cost_of(usage: CompletionUsage, price: Optional[Price]) -> Optional[Decimal]:
    """Yuan for ``usage`` at ``price`` (None when the model has no price)."""
    if price is None:
        return None
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens or 0) if details is not None else 0
    cached_price = price.cached_input if price.cached_input is not None else price.input
    uncached = max(usage.prompt_tokens - cached, 0)
    total = uncached * price.input + cached * cached_price + usage.completion_tokens * price.output
    return total / MILLION


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


class UsageLedger:
    """What a client has spent: ``total()``, ``by_model()`` and the records themselves."""

    def __init__(self, on_usage: Optional[Callable[[UsageRecord], Any]] = None) -> None:
        self._records: list[UsageRecord] = []
        self._lock = threading.Lock()
        self.on_usage = on_usage

    def record(self, record: UsageRecord) -> None:
        with self._lock:
            self._records.append(record)
        if self.on_usage is not None:
            self.on_usage(record)

    def records(self) -> list[UsageRecord]:
        with self._lock:
            return list(self._records)

    def total(self) -> UsageSummary:
        summary = UsageSummary()
        for record in self.records():
            summary.add(record)
        return summary

    def by_model(self) -> dict[str, UsageSummary]:
        """Summaries keyed ``"provider/model"``."""
        summaries: dict[str, UsageSummary] = {}
        for record in self.records():
            summaries.setdefault(record.key, UsageSummary()).add(record)
        return summaries

    def reset(self) -> None:
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[UsageRecord]:
        return iter(self.records())

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def __repr__(self) -> str:
        total = self.total()
        return (
            f"UsageLedger(requests={total.requests}, total_tokens={total.total_tokens}, "
            f"cost_cny={total.cost_cny})"
        )
