"""The fakes' unscripted answer to a request for JSON: an object, shaped by the schema asked for.

Code under test that asks for structured output (``chat.completions.parse``, langchain's
``with_structured_output``, instructor) fails on a prose echo. So an unscripted request with
``response_format`` gets JSON: with a JSON schema (given as ``json_schema``, or written into
a system message, as llm-bridge does for models without native ``json_schema``), the
smallest instance it describes; with ``json_object`` alone, ``{"reply": <the echo>}``.
"""

from __future__ import annotations

import json
from typing import Any, Optional

__all__ = ["json_content"]

#: How deep a schema is followed before the instance stops growing (recursive models).
_MAX_DEPTH = 8


def json_content(body: Any, messages: Any, echo: str) -> Optional[str]:
    """The JSON text to answer with, or None when the request asked for no JSON."""
    fmt = body.get("response_format") if isinstance(body, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("json_object", "json_schema"):
        return None
    assert isinstance(fmt, dict)
    block = fmt.get("json_schema") if kind == "json_schema" else None
    schema = block.get("schema") if isinstance(block, dict) else _written_schema(messages)
    if not isinstance(schema, dict):
        return json.dumps({"reply": echo}, ensure_ascii=False)
    return json.dumps(_instance(schema, schema, echo, 0), ensure_ascii=False)


def _written_schema(messages: Any) -> Optional[dict[str, Any]]:
    """A JSON schema written into a system message ("... this JSON Schema ...: {...}")."""
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if not (isinstance(message, dict) and message.get("role") == "system"):
            continue
        if isinstance(content, str) and "JSON Schema" in content and "{" in content:
            text = content[content.index("JSON Schema") :]
            try:
                found, _ = json.JSONDecoder().raw_decode(text[text.index("{") :])
            except ValueError:
                continue
            if isinstance(found, dict):
                return found
    return None


def _instance(schema: Any, root: dict[str, Any], echo: str, depth: int) -> Any:
    """The smallest value ``schema`` accepts (refs resolved in ``root``)."""
    if not isinstance(schema, dict) or depth > _MAX_DEPTH:
        return None
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _instance(target, root, echo, depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if o.get("type") != "null"), options[0])
            return _instance(chosen, root, echo, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        return {name: _instance(sub, root, echo, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        count = schema.get("minItems") or 1
        return [_instance(schema.get("items"), root, echo, depth + 1) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return True
    if kind == "string":
        return echo[: schema["maxLength"]] if "maxLength" in schema else echo
    return None
