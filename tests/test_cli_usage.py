"""``llm-bridge usage`` as a subprocess over a gateway ledger written by the gateway's own
writers (the SQLite file, and the Redis stream a fleet shares): sums by key, model and
day, the estimated share, cost in yuan, periods, JSON, and the errors' exit codes."""

from __future__ import annotations

import asyncio
import calendar
import json
from decimal import Decimal
from pathlib import Path
from typing import Optional

import pytest
from cli_support import run_cli, toml_string
from redis_server import RedisServer

from llm_bridge.gateway import LedgerEntry, SQLiteLedger
from llm_bridge.gateway._redis import RedisLedger

SEP_1 = calendar.timegm((2026, 9, 1, 10, 0, 0))
SEP_2 = calendar.timegm((2026, 9, 2, 23, 30, 0))
OCT_1 = calendar.timegm((2026, 10, 1, 1, 0, 0))


def entry(
    n: int,
    at: float,
    key: str,
    provider: Optional[str],
    model: str,
    prompt: int,
    completion: int,
    cost: Optional[str],
    *,
    estimated: bool = False,
    status: int = 200,
) -> LedgerEntry:
    return LedgerEntry(
        request_id=f"req-{n}",
        at=at,
        key=key,
        model="fast" if model == "glm-4-flash" else model,
        provider=provider,
        upstream_model=model if provider else None,
        prompt_tokens=prompt,
        completion_tokens=completion,
        estimated=estimated,
        cost_cny=Decimal(cost) if cost is not None else None,
        status=status,
    )


ENTRIES = [
    entry(1, SEP_1, "team-a", "zhipu", "glm-4-flash", 100, 50, "0"),
    entry(2, SEP_1, "team-a", "dashscope", "qwen-plus", 1000, 500, "0.0018"),
    entry(3, SEP_2, "team-b", "dashscope", "qwen-plus", 2000, 0, "0.0016", estimated=True),
    entry(4, SEP_2, "team-b", None, "nosuch", 0, 0, None, status=404),
    entry(5, OCT_1, "team-a", "zhipu", "glm-4-flash", 10, 10, "0.0000368"),
]


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"

    async def write() -> None:
        sink = SQLiteLedger(path)
        for e in ENTRIES:
            await sink.write(e)
        await sink.close()

    asyncio.run(write())
    return path


def table(out: str) -> list[list[str]]:
    """The rows under the title and heading (the total included), split on spaces."""
    return [line.split() for line in out.splitlines()[2:] if not line.startswith("---")]


def test_sums_by_key_with_the_estimated_share_and_a_total(ledger: Path) -> None:
    done = run_cli("usage", "--ledger", str(ledger), cwd=ledger.parent)
    assert done.returncode == 0, done.stderr
    title, heading = done.stdout.splitlines()[:2]
    assert title.startswith(f"{ledger} (all time, as of ")
    assert heading.split() == [
        "key", "provider", "requests", "errors", "prompt", "completion", "estimated", "cost_cny",
    ]  # fmt: skip
    assert table(done.stdout) == [
        ["team-a", "dashscope", "1", "0", "1000", "500", "0%", "0.001800"],
        ["team-a", "zhipu", "2", "0", "110", "60", "0%", "0.000037"],  # (not 0.0000)
        ["team-b", "-", "1", "1", "0", "0", "0%", "0.000000"],
        ["team-b", "dashscope", "1", "0", "2000", "0", "100%", "0.001600"],
        ["total", "5", "1", "3110", "560", "54%", "0.003437"],  # 2000 of 3670 estimated
    ]


def test_by_model_and_by_day_with_since(ledger: Path) -> None:
    by_model = run_cli("usage", "--ledger", str(ledger), "--by", "model", cwd=ledger.parent)
    assert table(by_model.stdout)[:3] == [
        ["-", "nosuch", "1", "1", "0", "0", "0%", "0.000000"],
        ["dashscope", "qwen-plus", "2", "0", "3000", "500", "57%", "0.003400"],
        ["zhipu", "glm-4-flash", "2", "0", "110", "60", "0%", "0.000037"],
    ]  # the upstream model, not the alias ("fast") the client asked for
    by_day = run_cli(
        "usage", "--ledger", str(ledger), "--by", "day", "--since", "2026-09-02",
        cwd=ledger.parent,
    )  # fmt: skip
    assert by_day.returncode == 0
    assert "(since 2026-09-02 00:00 UTC, as of" in by_day.stdout.splitlines()[0]
    assert table(by_day.stdout) == [
        ["2026-09-02", "2", "1", "2000", "0", "100%", "0.001600"],
        ["2026-10-01", "1", "0", "10", "10", "0%", "0.000037"],
        ["total", "3", "1", "2010", "10", "99%", "0.001637"],
    ]


def test_a_month_as_json_with_exact_yuan(ledger: Path) -> None:
    done = run_cli(
        "usage", "--ledger", str(ledger), "--month", "2026-09", "--json", cwd=ledger.parent
    )
    report = json.loads(done.stdout)
    assert report["period"] == "2026-09" and report["by"] == "key"
    assert report["since"] == calendar.timegm((2026, 9, 1, 0, 0, 0))
    assert report["until"] == calendar.timegm((2026, 10, 1, 0, 0, 0))
    assert report["total"] == {
        "requests": 4,
        "errors": 1,
        "prompt_tokens": 3100,
        "completion_tokens": 550,
        "estimated_tokens": 2000,
        "estimated_share": round(2000 / 3650, 4),
        "cost_cny": "0.0034",
    }
    first = report["rows"][0]
    assert (first["key"], first["provider"], first["cost_cny"]) == ("team-a", "dashscope", "0.0018")


def gateway_config(tmp_path: Path, gateway: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"[gateway]\n{gateway}\n[gateway.keys.team-a]\nkey_sha256 = {toml_string('0' * 64)}\n",
        encoding="utf-8",
    )
    return path


def test_the_ledger_named_by_a_gateway_config(ledger: Path) -> None:
    config = gateway_config(ledger.parent, f"ledger = {toml_string(str(ledger))}")
    done = run_cli("usage", "--config", str(config), "--by", "day", cwd=ledger.parent)
    assert done.returncode == 0, done.stderr
    assert [row[0] for row in table(done.stdout)] == [
        "2026-09-01",
        "2026-09-02",
        "2026-10-01",
        "total",
    ]
    none = gateway_config(ledger.parent, 'ledger = "none"')
    refused = run_cli("usage", "--config", str(none), cwd=ledger.parent)
    assert refused.returncode == 2 and "keeps no ledger" in refused.stderr


def test_mistakes_exit_2(tmp_path: Path) -> None:
    missing = run_cli("usage", cwd=tmp_path)
    assert missing.returncode == 2 and "llm_bridge_ledger.sqlite: no ledger file" in missing.stderr
    for bad in (["--since", "yesterday"], ["--month", "2026-13"], ["--by", "week"]):
        done = run_cli("usage", *bad, cwd=tmp_path)
        assert done.returncode == 2 and "error: argument" in done.stderr, bad


def test_the_fleets_redis_ledger(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis") as server:

        async def write() -> None:
            sink = RedisLedger.from_url(server.url)
            for e in ENTRIES:
                await sink.write(e)
            await sink.flush(timeout=10)
            await sink.close()

        asyncio.run(write())
        config = gateway_config(tmp_path, f"state = {toml_string(server.url)}")
        done = run_cli("usage", "--config", str(config), "--month", "2026-09", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("the fleet's Redis ledger (2026-09, as of")
    assert table(done.stdout)[-1] == ["total", "4", "1", "3100", "550", "55%", "0.003400"]
