"""`plan_reasoning`: openai's reasoning_effort as a provider-neutral plan, from catalogue data."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from llm_bridge._config import ModelInfo
from llm_bridge._errors import BadRequestError
from llm_bridge._reasoning import ReasoningPlan, forces_a_tool, plan_reasoning

BUDGETS = {"low": 2048, "medium": 8192, "high": 32768}


def error(message: str) -> BadRequestError:
    request = httpx.Request("POST", "https://example.invalid")
    return BadRequestError(
        message, response=httpx.Response(400, request=request), body=None, param="reasoning_effort"
    )


def plan(effort: Any, budgets: Any = None, max_tokens: Any = None, **info: Any) -> Any:
    return plan_reasoning(
        effort,
        ModelInfo(**info),
        budgets=BUDGETS if budgets is None else budgets,
        max_tokens=max_tokens,
        error=error,
    )


def test_no_effort_or_no_thinking_model_means_no_plan() -> None:
    assert plan(None, thinking="hybrid") is None
    assert plan("high") is None


@pytest.mark.parametrize("effort", ["none", "minimal"])
def test_none_and_minimal_turn_a_hybrid_model_off(effort: str) -> None:
    assert plan(effort, thinking="hybrid") == ReasoningPlan(thinking=False)


def test_a_model_that_always_thinks_refuses_none_naming_what_it_takes() -> None:
    with pytest.raises(BadRequestError, match=r"always thinks.*\['low', 'high', 'max'\]"):
        plan("none", thinking="always", reasoning_efforts=["low", "high", "max"])


def test_native_efforts_pass_through_or_take_the_nearest_listed() -> None:
    info = {"thinking": "always", "reasoning_efforts": ["low", "high", "max"]}
    assert plan("high", **info) == ReasoningPlan(thinking=True, effort="high")
    assert plan("medium", **info).effort == "high"  # ties go up
    assert plan("minimal", **info).effort == "low"
    assert plan("xhigh", **info).effort in ("high", "max")


def test_other_models_get_a_budget_from_the_table_capped_by_the_model() -> None:
    assert plan("low", thinking="hybrid") == ReasoningPlan(thinking=True, budget=2048)
    assert plan("high", thinking="hybrid", max_thinking_budget=16384).budget == 16384


def test_the_budget_stays_under_half_the_token_limit() -> None:
    assert plan("high", thinking="hybrid", max_tokens=1000).budget == 500


def test_no_budget_table_and_no_requirement_means_just_the_switch() -> None:
    assert plan("high", budgets={}, thinking="hybrid") == ReasoningPlan(thinking=True)


def test_an_unknown_effort_is_a_bad_request_naming_the_values() -> None:
    with pytest.raises(BadRequestError, match="must be one of"):
        plan("extreme", thinking="hybrid")


def test_forced_tool_choices_are_recognised() -> None:
    assert forces_a_tool("required") and forces_a_tool({"type": "function"})
    assert not forces_a_tool("auto") and not forces_a_tool(None)
