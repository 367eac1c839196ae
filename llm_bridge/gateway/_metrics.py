"""The gateway's metrics in Prometheus' text format, written by hand (no client library).

What is counted: requests by route and status, errors by provider and code, request
latency as a histogram by route, tokens and cost in yuan by key name, provider and model,
and the requests in flight. Labels hold only names the config chose (key names, routes,
providers, upstream models) and error codes; never a key, a header or a request body.
Each worker process counts its own (scrape each, or sum them).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from decimal import Decimal
from typing import Optional

__all__ = ["Metrics"]

#: Latency buckets in seconds (a streamed request's latency is the whole stream's).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)

_PREFIX = "llm_bridge_gateway"

Labels = tuple[tuple[str, str], ...]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _number(value: object) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


class Metrics:
    """Counters, a gauge and a histogram, safe across threads and tasks."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[Labels, int] = defaultdict(int)
        self.errors: dict[Labels, int] = defaultdict(int)
        self.tokens: dict[Labels, int] = defaultdict(int)
        self.cost: dict[Labels, Decimal] = defaultdict(Decimal)
        self.latency: dict[Labels, list[int]] = {}  # per route: counts per bucket (+Inf)
        self.latency_sum: dict[Labels, float] = defaultdict(float)
        self.in_flight = 0

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(
        self,
        *,
        route: str,
        status: int,
        seconds: float,
        provider: Optional[str] = None,
        error_code: Optional[str] = None,
    ) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests[(("route", route), ("status", str(status)))] += 1
            if status >= 400:
                self.errors[
                    (("provider", provider or "gateway"), ("code", error_code or str(status)))
                ] += 1
            key = (("route", route),)
            counts = self.latency.get(key)
            if counts is None:
                counts = self.latency[key] = [0] * (len(BUCKETS) + 1)
            index = next((i for i, le in enumerate(BUCKETS) if seconds <= le), len(BUCKETS))
            counts[index] += 1
            self.latency_sum[key] += seconds

    def usage(
        self,
        *,
        key: str,
        provider: str,
        model: str,
        prompt_tokens: int,
        completion_tokens: int,
        cost_cny: Optional[Decimal],
    ) -> None:
        base = (("key", key), ("provider", provider), ("model", model))
        with self._lock:
            self.tokens[(*base, ("kind", "prompt"))] += prompt_tokens
            self.tokens[(*base, ("kind", "completion"))] += completion_tokens
            if cost_cny is not None:
                self.cost[base] += cost_cny

    def render(self) -> str:
        """The exposition text (``text/plain; version=0.0.4``)."""
        with self._lock:
            lines: list[str] = []
            self._family(lines, "requests_total", "counter", "Requests answered.", self.requests)
            self._family(
                lines, "errors_total", "counter", "Error answers by provider and code.", self.errors
            )
            self._family(
                lines, "tokens_total", "counter", "Tokens by key, provider and model.", self.tokens
            )
            self._family(
                lines,
                "cost_cny_total",
                "counter",
                "Cost in yuan by key, provider and model.",
                {k: float(v) for k, v in self.cost.items()},
            )
            name = f"{_PREFIX}_in_flight_requests"
            lines += [f"# HELP {name} Requests being answered.", f"# TYPE {name} gauge"]
            lines.append(f"{name} {self.in_flight}")
            name = f"{_PREFIX}_request_duration_seconds"
            lines += [
                f"# HELP {name} Time from request to the end of the answer (streams included).",
                f"# TYPE {name} histogram",
            ]
            for labels, counts in sorted(self.latency.items()):
                cumulative = 0
                for le, count in zip((*BUCKETS, float("inf")), counts):
                    cumulative += count
                    bound = "+Inf" if le == float("inf") else repr(le)
                    le_label = 'le="' + bound + '"'
                    lines.append(f"{name}_bucket{_labels(labels, le_label)} {cumulative}")
                lines.append(f"{name}_sum{_labels(labels)} {self.latency_sum[labels]!r}")
                lines.append(f"{name}_count{_labels(labels)} {cumulative}")
        return "\n".join(lines) + "\n"

    @staticmethod
    def _family(lines: list[str], name: str, kind: str, help: str, values: dict) -> None:
        full = f"{_PREFIX}_{name}"
        lines += [f"# HELP {full} {help}", f"# TYPE {full} {kind}"]
        for labels, value in sorted(values.items()):
            lines.append(f"{full}{_labels(labels)} {_number(value)}")
