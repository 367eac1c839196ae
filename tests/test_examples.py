"""The examples run offline, end to end, as a new user would run them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ZHIPUAI_", "QIANFAN_", "DASHSCOPE_", "LLM_BRIDGE_"))
    }
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_quickstart_prints_an_answer_a_stream_and_usage() -> None:
    out = run_example("quickstart.py")
    assert "offline fake Zhipu" in out
    assert "[zhipu/glm-4-flash] 北京是中华人民共和国的首都" in out
    assert "streamed: Beijing is the capital of China" in out
    assert out.count("usage:") == 2


def test_qianfan_tools_runs_a_tool_round_trip() -> None:
    out = run_example("qianfan_tools.py")
    assert "finish_reason: tool_calls" in out
    assert "tool call: get_current_weather({'location': '北京'})" in out
    assert "answer: 北京今天晴" in out


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_every_example_runs_offline(name: str) -> None:
    assert run_example(name).strip()


def test_qwen_vision_and_embeddings_runs_both_calls() -> None:
    out = run_example("qwen_vision_and_embeddings.py")
    assert "[dashscope/qwen3-vl-plus] 图中是一位女孩和一只狗" in out
    assert "12 embeddings of 512 dimensions" in out
    assert "closest to '衣服的质量杠杠的'" in out


def test_usage_report_prints_a_row_per_provider() -> None:
    out = run_example("usage_report.py")
    for key in ("zhipu/glm-4-flash", "qianfan/ernie-4.5-turbo-128k", "dashscope/qwen-plus"):
        line = next(line for line in out.splitlines() if line.startswith(key))
        assert line.split()[1] == "2"  # two requests each: one plain, one streamed


def test_the_migration_example_falls_back_parses_embeds_and_reports_usage() -> None:
    out = run_example("migration/app.py")
    assert "[glm-4-flash] 西湖位于浙江省杭州市。" in out
    assert "[qwen-plus] 苏堤春晓是西湖十景之首。" in out  # Zhipu rate limited: fallback
    assert "parsed: name='西湖' city='杭州' best_season='春季'" in out
    assert "embeddings: 2 vectors of 1024 floats" in out
    assert "usage: zhipu/glm-4-flash: 2 calls" in out
    assert "usage: dashscope/qwen-plus: 1 calls" in out
