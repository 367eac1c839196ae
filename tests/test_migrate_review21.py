"""``llm-bridge migrate``, review 21: a refusal of a literal parameter reported as a note.

``client.embeddings.create(model="text-embedding-3-large", input=t, dimensions=3072)`` was
reported ``ok``, with a note that the call "may be refused ... depending on values
computed at run time (input)": any refusal became a note once any argument was computed.
At run time the call is always refused: ``dimensions`` is a literal the model does not
offer. A refusal is now a note only when it may depend on a computed value: the parameter
it names (or one it is made from) is computed, or it names none and something is.

Everything runs in this process, offline.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from llm_bridge import load_config
from llm_bridge._wire import Refused
from llm_bridge.cli import _migrate
from llm_bridge.cli._migrate_check import Checker, Verdict, _refusal
from llm_bridge.cli._migrate_scan import UNKNOWN, CallSite, Param

pytest.importorskip("libcst")

#: The reviewer's program: only ``input`` is computed; ``dimensions=3072`` is refused.
PROGRAM = (
    "from openai import OpenAI\n"
    "\n"
    "client = OpenAI()\n"
    "\n"
    "def emb(t):\n"
    '    return client.embeddings.create(model="text-embedding-3-large", input=t, '
    "dimensions=3072)\n"
)

HELLO = [{"role": "user", "content": "hi"}]


def call(resource: str, **params: Any) -> CallSite:
    """A call site of ``resource`` with ``params`` as written (`UNKNOWN`: computed)."""
    written = [Param(k, v, "computed" if v is UNKNOWN else repr(v)) for k, v in params.items()]
    return CallSite("app.py", 1, 1, "api", resource, resource, written)


def checker(target: str) -> Checker:
    """A checker whose model ``m`` goes to ``target``."""
    return Checker(load_config({"models": {"m": target}}), {})


def refusals(verdict: Verdict) -> list[tuple[str, Any]]:
    """(severity, param) of the verdict's findings about a refusal before sending."""
    return [
        (f.severity, f.param) for f in verdict.findings if "refused before sending" in f.message
    ]


# --------------------------------------------------------------------------- (a) the case


def test_a_literal_refused_parameter_blocks_beside_a_computed_one_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    code = _migrate.main([str(tmp_path), "--json", "--no-progress"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    (site,) = [s for s in data["call_sites"] if s["call"] == "embeddings.create"]
    assert site["status"] == "blocks"
    assert {
        "severity": "blocks",
        "param": "dimensions",
        "message": "refused before sending: dimensions=3072 is not offered by embedding-3; "
        "allowed: 2048, 1024, 512, 256",
    } in site["findings"]
    assert not any("may be refused" in f["message"] for f in site["findings"])


def test_a_literal_refused_parameter_blocks_beside_a_computed_one_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "prog.py").write_text(PROGRAM)
    _migrate.main([str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out
    (row,) = [line for line in out.splitlines() if line.startswith("prog.py:6")]
    assert row.rstrip().endswith("blocks"), row
    assert "blocks: dimensions: refused before sending: dimensions=3072" in out
    assert "may be refused" not in out
    assert "1 blocked" in out


def test_the_checker_blocks_a_literal_dimensions_beside_a_computed_input() -> None:
    verdict = checker("zhipu/embedding-3").check(
        call("embeddings.create", model="m", input=UNKNOWN, dimensions=3072)
    )
    assert refusals(verdict) == [("blocks", "dimensions")]


def test_a_literal_out_of_range_value_blocks_beside_computed_messages() -> None:
    """OpenAI's own checks raise a bare ValueError: the parameter its message names."""
    verdict = checker("zhipu/glm-4-flash").check(
        call("chat.completions.create", model="m", messages=UNKNOWN, temperature=3)
    )
    assert refusals(verdict) == [("blocks", "temperature")]
    assert "temperature must be between 0 and 2, got 3" in verdict.findings[-1].message


# --------------------------------------------------------------------------- (b) computed


def test_a_refusal_of_a_computed_parameter_stays_a_note() -> None:
    """A tools list with a computed schema: the whole parameter counts as computed."""
    tools = [{"type": "function", "function": {"name": "bad name!", "parameters": UNKNOWN}}]
    verdict = checker("zhipu/glm-4-flash").check(
        call("chat.completions.create", model="m", messages=HELLO, tools=tools)
    )
    (finding,) = [f for f in verdict.findings if f.param == "tools"]
    assert finding.severity == "note"
    assert finding.message.startswith(
        "may be refused before sending, depending on values computed at run time (tools): "
        "tools[0].function.name 'bad name!'"
    )


def test_a_refusal_traced_to_the_responses_parameter_it_is_made_from() -> None:
    """A Responses call is checked as chat: a refusal of ``messages`` is ``input``'s, of
    ``reasoning_effort`` ``reasoning``'s; computed, each stays a note naming it."""
    ernie = checker("qianfan/ernie-4.5-turbo-128k")
    computed = ernie.check(
        call("responses.create", model="m", input=[{"role": "system", "content": UNKNOWN}])
    )
    (finding,) = [f for f in computed.findings if f.param == "messages"]
    assert finding.severity == "note" and "run time (input)" in finding.message
    literal = ernie.check(
        call("responses.create", model="m", input=[{"role": "system", "content": "be brief"}])
    )
    assert refusals(literal) == [("blocks", "messages")]

    glm = checker("zhipu/glm-5.3")
    thinking = glm.check(
        call("responses.create", model="m", input="hi", reasoning={"effort": "none", "x": UNKNOWN})
    )
    (finding,) = [f for f in thinking.findings if f.param == "reasoning_effort"]
    assert finding.severity == "note" and "run time (reasoning)" in finding.message


def test_a_refusal_depending_on_several_parameters() -> None:
    """A prompt over the context window names ``messages`` but is the completion limit's
    doing too: a computed ``max_tokens`` keeps it a note; all literal, it blocks."""
    error = Refused(
        "This model's maximum context length is 8192 tokens.",
        url="https://example.invalid",
        provider="zhipu",
        param="messages",
        code="context_length_exceeded",
    )
    verdict = Verdict()
    _refusal(error, {"max_tokens": ""}, verdict)
    assert [(f.severity, f.param) for f in verdict.findings] == [("note", "messages")]
    assert "run time (max_tokens)" in verdict.findings[0].message
    verdict = Verdict()
    _refusal(error, {"temperature": ""}, verdict)
    assert [(f.severity, f.param) for f in verdict.findings] == [("blocks", "messages")]


def test_a_refusal_naming_no_parameter_stays_a_note_beside_a_computed_one() -> None:
    verdict = Verdict()
    _refusal(ValueError("the request cannot be sent"), {"input": ""}, verdict)
    assert [(f.severity, f.param) for f in verdict.findings] == [("note", None)]
    assert "run time (input)" in verdict.findings[0].message


# --------------------------------------------------------------------------- (c) literal


def test_an_all_literal_refused_call_still_blocks() -> None:
    verdict = checker("zhipu/embedding-3").check(
        call("embeddings.create", model="m", input="hello", dimensions=3072)
    )
    assert refusals(verdict) == [("blocks", "dimensions")]
    verdict = Verdict()
    _refusal(ValueError("the request cannot be sent"), {}, verdict)
    assert [(f.severity, f.param) for f in verdict.findings] == [("blocks", None)]


# --------------------------------------------------------------------------- review of the fix


def test_a_refusal_caused_by_another_computed_parameter_stays_a_note() -> None:
    """``stream_options`` is refused without ``stream``: a computed ``stream`` (which the
    dry run takes as false) may well be true at run time, so the refusal is a note; with
    ``stream=False`` written out it blocks."""
    options = {"include_usage": True}
    computed = checker("zhipu/glm-4-flash").check(
        call(
            "chat.completions.create",
            model="m",
            messages=HELLO,
            stream=UNKNOWN,
            stream_options=options,
        )
    )
    assert refusals(computed) == [("note", "stream_options")]
    literal = checker("zhipu/glm-4-flash").check(
        call(
            "chat.completions.create",
            model="m",
            messages=HELLO,
            stream=False,
            stream_options=options,
        )
    )
    assert refusals(literal) == [("blocks", "stream_options")]


def test_under_the_error_policy_a_finding_says_what_other_policies_send() -> None:
    """The dry run reports with the "warn" policy's words ("'required' was sent as
    'auto'"); under "error" nothing is sent, and the finding says whose words they are."""
    config = {"models": {"m": "zhipu/glm-4-flash"}, "policy": {"unsupported_params": "error"}}
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    verdict = Checker(load_config(config), {}).check(
        call(
            "chat.completions.create",
            model="m",
            messages=HELLO,
            tools=tools,
            tool_choice="required",
        )
    )
    (finding,) = [f for f in verdict.findings if f.param == "tool_choice"]
    assert finding.severity == "blocks"
    assert finding.message.startswith(
        'refused before sending (policy "error"); under "warn" or "drop": '
    )
