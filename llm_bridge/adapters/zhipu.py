"""Zhipu GLM, API v4 (``open.bigmodel.cn/api/paas/v4``).

The body is OpenAI's JSON, so this adapter is the compatible one plus GLM's rules
(``protocols.md`` §1): temperature in (0, 1] with 0 meaning ``do_sample: false``; top_p in
[0.01, 0.99]; one stop word (more are emulated client-side); ``tool_choice`` only
``"auto"``; function tools must have a description and parameters and a plain-ASCII name;
``user_id`` of 6 to 128 characters; base64 images without their ``data:`` prefix;
``finish_reason`` ``sensitive`` (content filter) and ``network_error`` (raises). The
numbers live in ``providers/zhipu.toml``; this module holds only the logic.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Optional

from .._auth import BearerKey, Credentials, ZhipuJWT
from .._config import ProviderConfig
from .._errors import OpenAIError
from ._base import CallContext, JSONDict, require_key
from ._params import ParamContext
from .openai_compat import OpenAICompatAdapter

__all__ = ["ZhipuAdapter"]

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


class ZhipuAdapter(OpenAICompatAdapter):
    protocol = "zhipu"
    native_n = False

    @classmethod
    def make_credentials(
        cls, name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]]
    ) -> Credentials:
        api_key = require_key(name, spec, keys, "api_key")
        if spec.auth == "jwt":
            try:
                return ZhipuJWT(api_key, ttl=spec.token_ttl)
            except ValueError as exc:
                raise OpenAIError(f"provider {name!r}: {exc}") from None
        return BearerKey(api_key)

    # ------------------------------------------------------------------ chat

    def chat_body(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        body: JSONDict = {"messages": [_message(m) for m in ctx.params["messages"]]}
        self._sampling(ctx, body)
        self._tools(ctx, call, body)
        self._stop(ctx, call, body)
        max_tokens = ctx.get("max_completion_tokens", ctx.get("max_tokens"))
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        if ctx.get("seed") is not None:
            body["seed"] = ctx.get("seed")
        if ctx.get("n", 1) > 1:
            ctx.unsupported(
                "n",
                "GLM returns one choice per request, and a stream cannot be "
                "fanned out: you get one",
            )
        self._user(ctx, body)
        self._response_format(ctx, body)
        self._reasoning(ctx, call, body)
        ctx.refuse(self.spec.unsupported)
        return body

    def _sampling(self, ctx: ParamContext, body: JSONDict) -> None:
        temperature = ctx.get("temperature")
        if temperature is not None:
            if temperature <= 0:
                # GLM's range is open at 0; greedy decoding is asked for with do_sample.
                body["do_sample"] = False
            else:
                body["temperature"] = ctx.clamp("temperature", temperature)
        top_p = ctx.get("top_p")
        if top_p is not None:
            body["top_p"] = ctx.clamp("top_p", top_p)

    def _stop(self, ctx: ParamContext, call: CallContext, body: JSONDict) -> None:
        sent, call.emulated_stop = ctx.stops()
        if sent:
            body["stop"] = sent

    def _tools(self, ctx: ParamContext, call: CallContext, body: JSONDict) -> None:
        tools = ctx.get("tools")
        choice = ctx.get("tool_choice")
        if not tools:
            return
        if choice == "none":
            return  # GLM cannot be told not to call; not offering the tools says the same
        converted = [self._tool(ctx, index, tool) for index, tool in enumerate(tools)]
        if isinstance(choice, dict) and choice.get("type") == "function":
            name = (choice.get("function") or {}).get("name")
            converted = [t for t in converted if t["function"]["name"] == name]
            if not converted:
                raise ctx.error(
                    f"tool_choice names function {name!r}, which is not in tools",
                    param="tool_choice",
                )
            # Offering only the named function is the closest GLM gets to forcing it.
        elif choice not in (None, "auto"):
            ctx.unsupported(
                "tool_choice", f"GLM accepts only 'auto', so {choice!r} was sent as 'auto'"
            )
        rule = ctx.rules.get("tools")
        if rule is not None and rule.max_items and len(converted) > rule.max_items:
            raise ctx.error(
                f"GLM accepts at most {rule.max_items} tools, got {len(converted)}", param="tools"
            )
        body["tools"] = converted
        body["tool_choice"] = "auto"

    def _tool(self, ctx: ParamContext, index: int, tool: JSONDict) -> JSONDict:
        function = dict(tool["function"])
        if not _TOOL_NAME.match(function["name"]):
            raise ctx.error(
                f"tools[{index}].function.name {function['name']!r} is not accepted by GLM: "
                f"use 1-64 characters from a-z, A-Z, 0-9, '_' and '-'",
                param=f"tools[{index}].function.name",
            )
        # GLM requires both fields that OpenAI lets you omit.
        function.setdefault("description", "")
        if function.get("parameters") is None:
            function["parameters"] = _EMPTY_SCHEMA
        function.pop("strict", None)
        return {"type": "function", "function": function}

    def _user(self, ctx: ParamContext, body: JSONDict) -> None:
        user = ctx.get("user") or ctx.get("safety_identifier")
        if not user:
            return
        rule = ctx.rules.get("user")
        low = rule.min_length if rule and rule.min_length else 0
        high = rule.max_length if rule and rule.max_length else len(user)
        # Out-of-range ids are replaced by their SHA-256: stable per user, and GLM's
        # per-user abuse tracking keeps working.
        body["user_id"] = (
            user if low <= len(user) <= high else hashlib.sha256(user.encode("utf-8")).hexdigest()
        )

    def _response_format(self, ctx: ParamContext, body: JSONDict) -> None:
        fmt = ctx.get("response_format")
        if not fmt:
            return
        kind = fmt.get("type") if isinstance(fmt, dict) else None
        if kind in ("text", "json_object"):
            body["response_format"] = {"type": kind}
        elif kind == "json_schema":
            body["response_format"] = {"type": "json_object"}
            ctx.unsupported(
                "response_format",
                "json_schema is sent as json_object; GLM returns "
                "JSON but does not enforce the schema",
            )
        else:
            raise ctx.error(
                f"response_format type must be text, json_object or json_schema, got {kind!r}",
                param="response_format",
            )

    def _reasoning(self, ctx: ParamContext, call: CallContext, body: JSONDict) -> None:
        effort = ctx.get("reasoning_effort")
        if effort is None:
            return
        if call.info is not None and not call.info.supports("reasoning"):
            ctx.unsupported("reasoning_effort", f"{call.model} is not a thinking model")
            return
        body["thinking"] = {"type": "disabled" if effort in ("none", "minimal") else "enabled"}

    # ------------------------------------------------------------------ embeddings


def _message(message: Any) -> JSONDict:
    """One OpenAI message as GLM takes it."""
    out = dict(message)
    role = out.get("role")
    if role == "developer":
        out["role"] = "system"
    elif role == "function":  # openai's deprecated function-result message
        out["role"] = "tool"
        out.setdefault("tool_call_id", out.get("name", ""))
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_content_part(part) for part in content]
    return out


def _content_part(part: Any) -> Any:
    if isinstance(part, dict) and part.get("type") == "image_url":
        image = part.get("image_url") or {}
        url: Optional[str] = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
            # GLM wants bare base64, not a data URL (the official SDK strips it too).
            return {"type": "image_url", "image_url": {"url": url.split(";base64,", 1)[1]}}
    return part
