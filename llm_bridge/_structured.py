"""``response_format: {"type": "json_schema"}`` on providers and models that lack it.

Zhipu offers only ``json_object``; DashScope offers ``json_schema`` on some models (with
thinking off); Qianfan's support is unknown. So that ``chat.completions.parse`` and every
library built on structured output work everywhere, a model without native support gets
the request in the form it does take:

- ``response_format`` becomes ``json_object``, and the schema goes to the model in a system
  instruction (which also names "JSON", as DashScope's ``json_object`` requires);
- the answer is checked against the schema here. Code fences around it are removed. An
  answer that does not match is asked for once more, quoting what was wrong; if that one
  fails too, `StructuredOutputError` carries the raw text. A streamed answer is not
  checked (it has reached the caller by then), but its fences are removed as it streams
  (`FenceStripper`), so that a parser of the whole text sees JSON either way.

The validator covers the JSON Schema that structured outputs use (openai's strict subset:
types, properties, required, additionalProperties, items, enum, const, anyOf, $ref to
$defs) plus common bounds; keywords it does not know are accepted, never guessed at.

Pure: no I/O. The engine decides per route (`emulates`), rewrites the parameters
(`emulate`), checks the answer (`check`) and builds the corrected request (`correction`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Optional

from ._config import ModelInfo
from ._errors import StructuredOutputError

__all__ = [
    "FenceStripper",
    "Schema",
    "StructuredOutputError",
    "check",
    "correction",
    "emulate",
    "emulates",
    "mismatch",
]

JSONDict = dict[str, Any]

_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


@dataclass(frozen=True)
class Schema:
    """The caller's ``json_schema`` block: its name and the schema to check answers with."""

    name: str
    schema: JSONDict


class FenceStripper:
    """Removes a code fence around a streamed answer, piece by piece: the opening line
    (```` ``` ```` or ```` ```json ````) once it is whole, and the closing ```` ``` ````
    at the end. Text that could still turn out to be part of either is held back until it
    cannot (`feed`), or until the answer ends (`end`); an answer that does not open with a
    fence passes unchanged."""

    def __init__(self) -> None:
        self._held = ""
        self._fenced: Optional[bool] = None  # undecided until the answer's first text

    def feed(self, text: str) -> str:
        """What of ``text`` (the next piece) can be passed on now."""
        held = self._held + text
        if self._fenced is None:
            start = held.lstrip()
            if len(start) < 3 and "```".startswith(start):
                self._held = held
                return ""
            if not start.startswith("```"):
                self._fenced, self._held = False, ""
                return held
            if "\n" not in start:
                self._held = held
                return ""
            self._fenced = True
            held = start.split("\n", 1)[1]
        if not self._fenced:
            return held
        kept = len(held) - len(_CLOSING_TAIL.search(held).group(0))  # type: ignore[union-attr]
        self._held = held[kept:]
        return held[:kept]

    def end(self) -> str:
        """The rest, at the end of the answer, without a closing fence."""
        held, self._held = self._held, ""
        if self._fenced and _CLOSING.fullmatch(held):
            return ""
        return held


#: What may be a closing fence still coming: whitespace and up to three backticks, and
#: whatever follows three of them.
_CLOSING_TAIL = re.compile(r"\s*(?:```[\s\S]*|`{0,2})$")
_CLOSING = re.compile(r"\s*```\s*")


def emulates(protocol: str, info: Optional[ModelInfo], params: JSONDict) -> bool:
    """Whether this call asks for ``json_schema`` from a model that lacks it natively.

    OpenAI-wire providers (``openai_compat``: OpenAI itself, DeepSeek, ...) are trusted to
    serve it; the built-in providers serve it only where the catalogue says so."""
    fmt = params.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return False
    if protocol == "openai_compat":
        return False
    return info is None or not info.supports("json_schema")


def emulate(params: JSONDict) -> tuple[JSONDict, Schema]:
    """``params`` asking for ``json_object`` with the schema in a system instruction."""
    block = params["response_format"].get("json_schema") or {}
    given = block.get("schema")
    schema: JSONDict = given if isinstance(given, dict) else {}
    name = str(block.get("name") or "response")
    instruction = (
        "Respond with only a JSON object, no prose and no code fences, that conforms to this "
        f"JSON Schema (named {name!r}):\n{json.dumps(schema, ensure_ascii=False)}"
    )
    if block.get("description"):
        instruction += f"\nWhat the object is for: {block['description']}"
    out = dict(params)
    out["response_format"] = {"type": "json_object"}
    out["messages"] = [{"role": "system", "content": instruction}, *params["messages"]]
    return out, Schema(name, schema)


def check(content: Optional[str], schema: Schema) -> tuple[str, Optional[str]]:
    """The answer without code fences, and what is wrong with it (None when it matches)."""
    text = content or ""
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    text = text.strip()
    try:
        instance = json.loads(text)
    except ValueError as exc:
        return text, f"the answer is not JSON ({exc})"
    except RecursionError:
        return text, "the answer is JSON nested too deeply to check"
    try:
        problem = _first_problem(instance, schema.schema, schema.schema, "$")
    except RecursionError:
        problem = "the answer is JSON nested too deeply to check"
    return text, problem


def correction(params: JSONDict, answer: str, problem: str) -> JSONDict:
    """The emulated request once more, with the failed answer and what was wrong with it."""
    out = dict(params)
    out["messages"] = [
        *params["messages"],
        {"role": "assistant", "content": answer},
        {
            "role": "user",
            "content": (
                f"That JSON does not match the schema: {problem}. Reply with only the "
                "corrected JSON object."
            ),
        },
    ]
    return out


def mismatch(
    response: Any, schema: Schema, answer: str, problem: str, *, final: bool, provider: str
) -> StructuredOutputError:
    """The error for an answer that does not match: names the schema and the problem, and
    carries the raw answer."""
    again = ", also when asked again" if final else ""
    error = StructuredOutputError(
        response,
        {"raw_text": answer, "problem": problem},
        message=(
            f"the model's answer does not match the JSON schema {schema.name!r}{again}: "
            f"{problem}. Raw answer: {answer[:500]!r}"
        ),
        provider=provider,
    )
    error.raw_text, error.problem, error.final = answer, problem, final
    return error


# --------------------------------------------------------------------------- validation

_TYPES: dict[str, Any] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "null": type(None),
}


def _is(instance: Any, kind: str) -> bool:
    if kind == "integer":  # (3.0 too, as JSON Schema and pydantic take it)
        if isinstance(instance, float):
            return instance.is_integer()
        return isinstance(instance, int) and not isinstance(instance, bool)
    if kind == "number":
        return isinstance(instance, (int, float)) and not isinstance(instance, bool)
    expected = _TYPES.get(kind)
    return True if expected is None else isinstance(instance, expected)


def _resolve(ref: str, root: JSONDict) -> JSONDict:
    if not ref.startswith("#/"):
        return {}  # a remote reference: not followed (accepted)
    node: Any = root
    for part in ref[2:].split("/"):
        node = (
            node.get(part.replace("~1", "/").replace("~0", "~"), {})
            if isinstance(node, dict)
            else {}
        )
    return node if isinstance(node, dict) else {}


def _first_problem(instance: Any, schema: Any, root: JSONDict, where: str) -> Optional[str]:
    """The first way ``instance`` fails ``schema``, as ``$.path: reason``; None if none."""
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema:
        return _first_problem(instance, _resolve(schema["$ref"], root), root, where)
    for keyword in ("anyOf", "oneOf"):
        options = schema.get(keyword)
        if (
            isinstance(options, list)
            and options
            and all(_first_problem(instance, o, root, where) for o in options)
        ):
            return f"{where}: matches none of the allowed alternatives"
    for sub in schema.get("allOf") or []:
        problem = _first_problem(instance, sub, root, where)
        if problem:
            return problem
    kinds = schema.get("type")
    if kinds is not None:
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if not any(_is(instance, k) for k in kinds):
            return f"{where}: expected {' or '.join(map(str, kinds))}, got {_name(instance)}"
    if "enum" in schema and instance not in schema["enum"]:
        return f"{where}: {instance!r} is not one of {schema['enum']}"
    if "const" in schema and instance != schema["const"]:
        return f"{where}: expected {schema['const']!r}"
    if isinstance(instance, dict):
        return _object_problem(instance, schema, root, where)
    if isinstance(instance, list):
        return _array_problem(instance, schema, root, where)
    if isinstance(instance, str):
        if len(instance) < schema.get("minLength", 0):
            return f"{where}: shorter than {schema['minLength']} characters"
        if "maxLength" in schema and len(instance) > schema["maxLength"]:
            return f"{where}: longer than {schema['maxLength']} characters"
    elif _is(instance, "number"):
        if "minimum" in schema and instance < schema["minimum"]:
            return f"{where}: {instance} is below the minimum {schema['minimum']}"
        if "maximum" in schema and instance > schema["maximum"]:
            return f"{where}: {instance} is above the maximum {schema['maximum']}"
    return None


def _object_problem(instance: JSONDict, schema: JSONDict, root: JSONDict, where: str):
    properties = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in instance:
            return f"{where}: the required property {name!r} is missing"
    extra = schema.get("additionalProperties", True)
    for name, value in instance.items():
        if name in properties:
            problem = _first_problem(value, properties[name], root, f"{where}.{name}")
        elif extra is False:
            problem = f"{where}: the property {name!r} is not allowed"
        else:
            problem = _first_problem(value, extra, root, f"{where}.{name}")
        if problem:
            return problem
    return None


def _array_problem(instance: list, schema: JSONDict, root: JSONDict, where: str):
    if len(instance) < schema.get("minItems", 0):
        return f"{where}: fewer than {schema['minItems']} items"
    if "maxItems" in schema and len(instance) > schema["maxItems"]:
        return f"{where}: more than {schema['maxItems']} items"
    items = schema.get("items")
    for index, value in enumerate(instance):
        problem = _first_problem(value, items, root, f"{where}[{index}]")
        if problem:
            return problem
    return None


def _name(instance: Any) -> str:
    for kind in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _is(instance, kind):
            return kind
    return type(instance).__name__
