"""``llm-bridge usage``: the gateway's usage ledger summed by key, model or day.

The ledger is the gateway's (``llm-bridge serve``): its SQLite file (``--ledger``, or the
``ledger`` a config's ``[gateway]`` table names, or ``./llm_bridge_ledger.sqlite``), or
with a Redis state, the fleet's Redis stream. The SDK keeps no ledger file of its own:
a program's usage is ``client.usage`` in process, or whatever its ``on_usage`` callback
writes, so there is nothing client-side for this command to read.

Each row: requests, errors (HTTP status 400 and up), prompt and completion tokens, the
share of those tokens that were estimated (counted locally because the provider did not
report them: a stream cut short, a request still in flight), and the cost in yuan.
"""

from __future__ import annotations

import argparse
import calendar
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from ._output import Column, Output

if TYPE_CHECKING:
    from ..gateway import LedgerEntry

__all__ = ["configure", "run"]

DESCRIPTION = """\
Sum the gateway's usage ledger (written by `llm-bridge serve`) by key, model or day:
requests, errors, prompt and completion tokens, the share of tokens that were estimated
(not reported by the provider), and the cost in CNY.

The ledger read is --ledger FILE; else the one the --config file's [gateway] table names
(its SQLite file, or with a Redis state the fleet's Redis stream); else
./llm_bridge_ledger.sqlite. Only the [gateway] table of the config is read: the
providers' keys (api_key = "${ZHIPUAI_API_KEY}") need not be set to sum the ledger.
The SDK itself keeps no ledger file (a program's usage is client.usage, or what its
on_usage callback records), so only the gateway's is read.

exit status: 0 ok, 1 the Redis ledger cannot be read, 2 usage or config error (no
ledger, a file that is not one, a bad date)"""

EPILOG = """\
examples:
  llm-bridge usage --config gateway.toml --month 2026-09
  llm-bridge usage --ledger llm_bridge_ledger.sqlite --since 2026-09-01 --by day
  llm-bridge usage --by model --json"""

GROUPS = {
    "key": (Column("key"), Column("provider")),
    "model": (Column("provider"), Column("model")),
    "day": (Column("day"),),
}
FIGURES = (
    Column("requests", right=True),
    Column("errors", right=True),
    Column("prompt", right=True),
    Column("completion", right=True),
    Column("estimated", right=True),
    Column("cost_cny", right=True),
)


def _since(value: str) -> float:
    """``--since``: a date (``2026-09-01``) or time (``2026-09-01T08:00``), UTC unless it
    names an offset, as Unix time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM, got {value!r}"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _month(value: str) -> tuple[float, float]:
    """``--month YYYY-MM`` (UTC) as [start, end) in Unix time."""
    try:
        year, month = (int(part) for part in value.split("-"))
        if not 1 <= month <= 12:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM, got {value!r}") from None
    start = float(calendar.timegm((year, month, 1, 0, 0, 0)))
    end = float(calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0)))
    return start, end


def configure(subparsers: Any) -> None:
    """Add ``usage`` to the command's subparsers."""
    parser = subparsers.add_parser(
        "usage",
        help="sum the gateway's usage ledger (tokens, cost in CNY)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--ledger", metavar="FILE", help="the gateway's SQLite ledger file")
    parser.add_argument(
        "--config", metavar="FILE", help="read the ledger's place from this gateway config"
    )
    parser.add_argument(
        "--since", type=_since, metavar="DATE", help="from this date or time on (UTC)"
    )
    parser.add_argument("--month", type=_month, metavar="YYYY-MM", help="one month (UTC)")
    parser.add_argument(
        "--by", choices=sorted(GROUPS), default="key", help="group rows by (default: key)"
    )
    parser.add_argument("--json", action="store_true", help="JSON instead of a table")
    parser.set_defaults(run=run)


@dataclass
class Sums:
    """One row's sums."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    estimated_tokens: int = 0
    cost_cny: Decimal = field(default_factory=lambda: Decimal(0))

    def add(self, entry: LedgerEntry) -> None:
        self.requests += 1
        self.errors += entry.status >= 400
        self.prompt_tokens += entry.prompt_tokens
        self.completion_tokens += entry.completion_tokens
        if entry.estimated:
            self.estimated_tokens += entry.prompt_tokens + entry.completion_tokens
        self.cost_cny += entry.cost_cny or Decimal(0)

    @property
    def estimated_share(self) -> float:
        """The share of the tokens that were estimated, 0 to 1."""
        tokens = self.prompt_tokens + self.completion_tokens
        return self.estimated_tokens / tokens if tokens else 0.0

    def cells(self) -> list[Any]:
        return [
            self.requests,
            self.errors,
            self.prompt_tokens,
            self.completion_tokens,
            f"{self.estimated_share:.0%}",
            f"{self.cost_cny:.6f}",  # (as `chat` prints it: a small call costs 0.00004)
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "estimated_tokens": self.estimated_tokens,
            "estimated_share": round(self.estimated_share, 4),
            "cost_cny": self.cost_cny,
        }


def _group(entry: LedgerEntry, by: str) -> tuple[str, ...]:
    if by == "key":
        return (entry.key, entry.provider or "-")
    if by == "model":
        return (entry.provider or "-", entry.upstream_model or entry.model)
    return (time.strftime("%Y-%m-%d", time.gmtime(entry.at)),)


def run(args: argparse.Namespace) -> int:
    out = Output(json_mode=args.json)
    since, until = args.since, None
    if args.month:
        start, until = args.month
        since = max(since or start, start)
    found = _entries(args, since, until, out)
    if isinstance(found, int):
        return found
    where, entries = found
    sums: dict[tuple[str, ...], Sums] = {}
    total = Sums()
    in_flight = 0
    for entry in entries:
        sums.setdefault(_group(entry, args.by), Sums()).add(entry)
        total.add(entry)
        in_flight += _in_progress(entry)
    period = _period(args, since)
    if out.json_mode:
        columns = [c.name for c in GROUPS[args.by]]
        out.json(
            {
                "ledger": where,
                "period": period,
                "since": since,
                "until": until,
                "by": args.by,
                "rows": [
                    {**dict(zip(columns, group)), **row.as_json()}
                    for group, row in sorted(sums.items())
                ],
                "total": total.as_json(),
                "in_flight": in_flight,
            }
        )
        return 0
    group_columns = GROUPS[args.by]
    out.table(
        (*group_columns, *FIGURES),
        [[*group, *row.cells()] for group, row in sorted(sums.items())],
        title=f"{where} ({period}, as of {_utc(time.time())})",
        footer=["total", *[""] * (len(group_columns) - 1), *total.cells()] if sums else None,
    )
    if in_flight:
        out.note(f"{in_flight} request(s) still in flight: their tokens are estimates")
    return 0


def _in_progress(entry: LedgerEntry) -> bool:
    from ..gateway._state import IN_PROGRESS

    return entry.error_code == IN_PROGRESS


def _period(args: argparse.Namespace, since: Optional[float]) -> str:
    if args.month:
        start = time.strftime("%Y-%m", time.gmtime(args.month[0]))
        if since is not None and since > args.month[0]:
            return f"{start}, since {_utc(since)}"
        return start
    return f"since {_utc(since)}" if since is not None else "all time"


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(moment))


def _entries(
    args: argparse.Namespace, since: Optional[float], until: Optional[float], out: Output
) -> Union[int, tuple[str, Iterable[LedgerEntry]]]:
    """Where the ledger is and its entries in [since, until); or the exit status, the
    reason reported: 2 when there is no ledger to read (or the file is not one), 1 when
    its Redis cannot be read."""
    import sqlite3

    from ..gateway import read_entries
    from ..gateway._config import DEFAULT_LEDGER

    ledger = args.ledger
    if ledger is None and args.config:
        from ._config_file import load_gateway_table

        # Only the [gateway] table: the providers' keys are not needed to sum the ledger.
        gateway = load_gateway_table(Path(args.config))
        if gateway is None:
            out.error(
                f"{args.config}: no [gateway] table, so no ledger is named there: give the "
                f"ledger file with --ledger"
            )
            return 2
        ledger = gateway.ledger
        if ledger == "none":
            out.error(f'{args.config}: the gateway keeps no ledger (ledger = "none")')
            return 2
        if ledger == "redis" or (ledger is None and gateway.state_kind == "redis"):
            try:
                from ..gateway._redis import read_ledger
            except ImportError:
                out.error('reading a Redis ledger needs redis: pip install "llm-bridge-cn[server]"')
                return 2
            from redis.exceptions import RedisError

            try:
                fleet = read_ledger(gateway.state, since)
            except RedisError as error:
                out.error(f"the fleet's Redis ledger cannot be read: {error}")
                return 1
            return "the fleet's Redis ledger", [e for e in fleet if until is None or e.at < until]
    path = Path(ledger or DEFAULT_LEDGER)
    if not path.is_file():
        out.error(f"{path}: no ledger file (the gateway writes it; see --help)")
        return 2
    try:
        return str(path), list(read_entries(path, since=since, until=until))
    except sqlite3.DatabaseError as error:  # not SQLite, no ledger table, unreadable
        out.error(f"{path}: not a ledger the gateway wrote: {error}")
        return 2
