"""One reasoning knob: openai's ``reasoning_effort`` as each provider's thinking switch.

Zhipu spells thinking ``thinking: {"type": "enabled" | "disabled"}`` (and, from GLM-5.2,
takes ``reasoning_effort`` itself); DashScope and Qianfan v2 spell it ``enable_thinking``
with an optional ``thinking_budget``. What a *model* can do is data in its catalogue entry
(``thinking``, ``reasoning_efforts``, ``thinking_budget_required``, ``max_thinking_budget``)
and the provider's ``thinking_budgets`` table; this module turns an effort into a
provider-neutral `ReasoningPlan`, and each adapter writes the plan in its own words.

Pure: no I/O, no clock. Errors are made by the caller's ``error`` factory, so they come
out as the adapter's refusal naming the parameter (a `BadRequestError` for the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from ._config import ModelInfo

__all__ = ["ReasoningPlan", "forces_a_tool", "plan_reasoning"]

#: openai's values, plus "max" (GLM-5.x's top level), in increasing order.
EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
#: Efforts that mean "do not think" on a model that can stop.
_OFF = ("none", "minimal")


@dataclass(frozen=True)
class ReasoningPlan:
    """What to ask the provider for: think or not (None: the model's default), the effort
    to send natively (models that take ``reasoning_effort``), and a thinking budget."""

    thinking: Optional[bool] = None
    effort: Optional[str] = None
    budget: Optional[int] = None


def plan_reasoning(
    effort: Optional[str],
    info: Optional[ModelInfo],
    *,
    budgets: dict[str, int],
    max_tokens: Optional[int],
    error: Callable[[str], Exception],
    model: str = "this model",
) -> Optional[ReasoningPlan]:
    """The plan for ``effort`` on the model ``info`` describes; None when the model has no
    thinking to control (the caller applies the unsupported-parameter policy). ``model``
    names the model in refusals ("provider/model"), which say what was refused and why.

    - "none"/"minimal" turn thinking off on a hybrid model; a model that always thinks
      refuses "none" (before any request: the provider's own 400 says less) and takes
      "minimal" as its lowest level.
    - Other efforts turn thinking on. A model that takes ``reasoning_effort`` gets it
      as it is (the nearest value it lists, when it lists fewer); otherwise the effort
      becomes a thinking budget from the provider's table, where one is needed. A level
      the table lacks takes the nearest level it has (`_budget`), so budgets never shrink
      as the effort rises.
    - A budget stays under half of ``max_tokens``, so the answer keeps room (providers
      reject a budget at or above the token limit).
    """
    if effort is None or info is None or info.thinking is None:
        return None
    if effort not in EFFORTS:
        raise error(
            f"reasoning_effort must be one of {list(EFFORTS)}, got {effort!r} (for {model})"
        )
    if effort == "none" and info.thinking == "always":
        levels = [e for e in info.reasoning_efforts if e != "none"] or ["low", "medium", "high"]
        raise error(
            f"{model} always thinks and cannot turn thinking off: reasoning_effort "
            f"'none' is not accepted; use one of {levels}"
        )
    if effort in _OFF and info.thinking == "hybrid":
        return ReasoningPlan(thinking=False)
    native = _nearest(effort, info.reasoning_efforts) if info.reasoning_efforts else None
    budget = None
    if native is None and (budgets or info.thinking_budget_required):
        budget = _budget(effort, budgets) or info.max_thinking_budget
        if info.max_thinking_budget is not None and budget is not None:
            budget = min(budget, info.max_thinking_budget)
    if budget is not None and max_tokens is not None and max_tokens >= 2:
        budget = min(budget, max_tokens // 2)
    return ReasoningPlan(thinking=True, effort=native, budget=budget)


def _nearest(effort: str, offered: list[str]) -> Optional[str]:
    """``effort`` if the model lists it, else the closest level it does list."""
    if effort in offered:
        return effort
    known = [e for e in offered if e in EFFORTS]
    if not known:
        return None
    rank = EFFORTS.index(effort)
    return min(known, key=lambda e: (abs(EFFORTS.index(e) - rank), -EFFORTS.index(e)))


def _budget(effort: str, budgets: dict[str, int]) -> Optional[int]:
    """The budget the provider's table gives ``effort``: its own row, else the row of the
    nearest level by rank (`_nearest`). A level above the table's top ("xhigh", "max"
    where the table stops at "high") takes the largest budget, one below its bottom
    ("minimal") the smallest: falling back to a fixed middle level would give "xhigh"
    less than "high" and "minimal" more than "low". None for an empty table."""
    level = _nearest(effort, list(budgets))
    return budgets[level] if level is not None else None


def forces_a_tool(tool_choice: object) -> bool:
    """Whether ``tool_choice`` forces a call ("required" or a named function): providers
    refuse that in thinking mode (DashScope, GLM)."""
    return tool_choice == "required" or (
        isinstance(tool_choice, dict) and tool_choice.get("type") == "function"
    )
