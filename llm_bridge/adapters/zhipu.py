"""Zhipu GLM, API v4 (``open.bigmodel.cn/api/paas/v4``).

The body is OpenAI's JSON, so this adapter is the compatible one plus GLM's rules
(docs/providers/zhipu.md, "Parameters"): temperature in (0, 1] with 0 meaning
``do_sample: false``; top_p in [0.01, 0.99]; one stop word (more are emulated
client-side); ``tool_choice`` only ``"auto"``; function tools must have a description and
parameters and a plain-ASCII name; ``user_id`` of 6 to 128 characters; base64 images
without their ``data:`` prefix; ``finish_reason`` ``sensitive`` (content filter) and
``network_error`` (raises). The numbers live in ``providers/zhipu.toml``; this module
holds only the logic.

Thinking (docs/providers/zhipu.md): openai's ``reasoning_effort`` becomes GLM's
``thinking: {"type": ...}`` and, on models that take it (GLM-5.2 on), ``reasoning_effort``,
from the model's catalogue entry through `plan_reasoning`; a caller's own ``thinking`` in
``extra_body`` wins key by key. GLM wants the reasoning of an assistant turn that called
tools sent back with the tool results (interleaved thinking): ``reasoning_content`` on
assistant messages is kept, and, while thinking is on, an assistant tool-call message
without it gets an empty one rather than a 400. History is repaired where GLM's rules
differ from OpenAI's, never dropping text: ``developer`` is ``system``; a conversation
without a user message has its last system message sent as the user's; an assistant
message with tool calls and empty content gets ``content: null``; an assistant message
with nothing in it is left out.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Optional

from .._auth import BearerKey, Credentials, ZhipuJWT
from .._config import ProviderConfig
from .._errors import ConfigError
from .._reasoning import ReasoningPlan, plan_reasoning
from ._base import (
    CallContext,
    JSONDict,
    require_key,
    with_web_search,
    without_openai_only_fields,
)
from ._params import ParamContext
from .openai_compat import OpenAICompatAdapter

__all__ = ["ZhipuAdapter"]

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EMPTY_SCHEMA = {"type": "object", "properties": {}}


class ZhipuAdapter(OpenAICompatAdapter):
    protocol = "zhipu"
    lists_models = False  # (v4 documents no models endpoint)
    native_n = False
    takes_token_ids = False
    # GLM's parts are text, image_url, video_url, file_url (vision models) and input_audio
    # (glm-4-voice); OpenAI's file part (file_id/file_data) has no counterpart.
    refused_parts = frozenset({"file"})

    @classmethod
    def make_credentials(
        cls, name: str, spec: ProviderConfig, keys: Mapping[str, Optional[str]]
    ) -> Credentials:
        api_key = require_key(name, spec, keys, "api_key")
        if spec.auth == "jwt":
            try:
                return ZhipuJWT(api_key, ttl=spec.token_ttl)
            except ValueError as exc:
                raise ConfigError(f"provider {name!r}: {exc}") from None
        return BearerKey(api_key)

    # ------------------------------------------------------------------ chat

    def chat_body(self, ctx: ParamContext, call: CallContext) -> JSONDict:
        thinking_fields, thinking_on = self._reasoning(ctx, call)
        body: JSONDict = {"messages": _messages(ctx.params["messages"], thinking_on)}
        self._sampling(ctx, body)
        self._tools(ctx, call, body)
        search = self.web_search(ctx, call)  # GLM's built-in web_search tool
        if search is not None:
            with_web_search(body, search)
        sent = ctx.stops()[0]
        if sent:
            body["stop"] = sent
        self._max_tokens(ctx, body)
        if ctx.get("seed") is not None:
            body["seed"] = ctx.get("seed")
        if ctx.get("n", 1) > 1:
            ctx.unsupported(
                "n",
                "GLM returns one choice per request, and a stream cannot be fanned out",
                instead="you get one",
            )
        self._user(ctx, body)
        self._response_format(ctx, body)
        body.update(thinking_fields)
        ctx.refuse(self.spec.unsupported)
        return body

    def merge_extra_body(self, body: JSONDict, extra: Mapping[str, Any]) -> JSONDict:
        """``extra_body`` at the top level, but a caller's ``thinking`` merged key by key
        into the one ``reasoning_effort`` made (``{"clear_thinking": False}`` keeps the
        type). A caller who turns thinking off there also drops the effort sent for it."""
        merged = {**body, **extra}
        ours, theirs = body.get("thinking"), extra.get("thinking")
        if isinstance(ours, dict) and isinstance(theirs, dict):
            merged["thinking"] = {**ours, **theirs}
        if (
            isinstance(theirs, dict)
            and theirs.get("type") == "disabled"
            and "reasoning_effort" not in extra
        ):
            merged.pop("reasoning_effort", None)
        return merged

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

    def emulated_stop(self, ctx: ParamContext) -> list[str]:
        """GLM takes one stop word (``[params.stop] max_items``); the rest are cut here."""
        return ctx.stops()[1]

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
                "tool_choice", "GLM accepts only 'auto'", instead=f"{choice!r} was sent as 'auto'"
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

    def _max_tokens(self, ctx: ParamContext, body: JSONDict) -> None:
        """GLM reads only ``max_tokens`` (``max_completion_tokens`` is ignored there, so an
        unsent limit would silently not apply). Given both, the smaller limit holds: each
        of them is a ceiling the caller asked for."""
        limits = [
            value
            for value in (ctx.get("max_completion_tokens"), ctx.get("max_tokens"))
            if value is not None
        ]
        if limits:
            body["max_tokens"] = min(limits)

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
                "GLM returns JSON but does not enforce the schema",
                instead="json_schema was sent as json_object",
            )
        else:
            raise ctx.error(
                f"response_format type must be text, json_object or json_schema, got {kind!r}",
                param="response_format",
            )

    def _reasoning(self, ctx: ParamContext, call: CallContext) -> tuple[JSONDict, Optional[bool]]:
        """The body fields for ``reasoning_effort`` and whether the model will think (None:
        unknown, GLM-4.5/4.6 decide for themselves).

        Models up to GLM-5.1 take only ``thinking.type``; GLM-5.2 and later also take
        ``reasoning_effort`` (the catalogue's ``reasoning_efforts``), sent with thinking
        enabled. A model that always thinks refuses "none" here, before any request
        (GLM-5.3 answers ``thinking.type: "disabled"`` with a 400, code 1210)."""
        effort = ctx.get("reasoning_effort")
        info = call.info
        fields: JSONDict = {}
        if effort is not None:
            plan = plan_reasoning(
                effort,
                info,
                budgets=self.spec.thinking_budgets,
                max_tokens=None,
                error=lambda message: ctx.error(message, param="reasoning_effort"),
                model=f"{self.name}/{call.model}",
            )
            if plan is None and info is None:
                # A model the catalogue does not know yet: GLM's own switch, as GLM-4.5+ take it.
                plan = ReasoningPlan(thinking=effort not in ("none", "minimal"))
            if plan is None:
                ctx.unsupported("reasoning_effort", f"{call.model} is not a thinking model")
            else:
                fields = self._thinking_fields(plan, info)
        return fields, _thinking_on(fields, call)

    @staticmethod
    def _thinking_fields(plan: ReasoningPlan, info: Any) -> JSONDict:
        if not plan.thinking:
            return {"thinking": {"type": "disabled"}}
        if plan.effort is None and info is not None and info.thinking == "always":
            return {}  # it thinks anyway, and has no level to set (GLM-Z1, GLM-4.1V-Thinking)
        fields: JSONDict = {"thinking": {"type": "enabled"}}
        if plan.effort is not None:
            fields["reasoning_effort"] = plan.effort
        return fields

    # ------------------------------------------------------------------ embeddings


def _thinking_on(fields: JSONDict, call: CallContext) -> Optional[bool]:
    """Whether GLM will think for this call: the caller's ``thinking`` in extra_body, else
    what ``reasoning_effort`` asked for, else the model's default (None: its own choice)."""
    for given in (call.extra_body.get("thinking"), fields.get("thinking")):
        if isinstance(given, dict) and given.get("type") in ("enabled", "disabled"):
            return given["type"] == "enabled"
    info = call.info
    if info is not None and (info.thinking == "always" or info.thinking_by_default):
        return True
    return None


def _messages(messages: Any, thinking_on: Optional[bool]) -> list[JSONDict]:
    """The conversation as GLM takes it (see the module docstring)."""
    out = [_message(m, thinking_on) for m in messages]
    out = [m for m in out if not _empty_assistant(m)]
    if not any(m.get("role") == "user" for m in out):
        # GLM refuses a conversation without a user message (400, code 1214); the last
        # system message carries the instruction, so it is sent as the user's.
        for message in reversed(out):
            if message.get("role") == "system":
                message["role"] = "user"
                break
    return out


def _message(message: Any, thinking_on: Optional[bool] = None) -> JSONDict:
    """One OpenAI message as GLM takes it."""
    out = dict(message)
    role = out.get("role")
    if role == "developer":
        out["role"] = "system"
    elif role == "function":  # openai's deprecated function-result message
        out["role"] = "tool"
        out.setdefault("tool_call_id", out.get("name", ""))
    elif role == "assistant":
        # openai's message objects, appended as they came back, carry fields GLM has no
        # use for (null refusal, audio ...; parsed and parsed_arguments from its helpers).
        out = without_openai_only_fields(out)
        if out.get("tool_calls"):
            if out.get("content") in ("", []):
                out["content"] = None  # GLM: empty content next to tool_calls is invalid
            if thinking_on is not False and out.get("reasoning_content") is None:
                # Interleaved thinking: GLM wants the turn's reasoning back with the tool
                # results and refuses a tool-call message without it. History written by
                # hand has none to give; an empty one keeps the request valid.
                out["reasoning_content"] = ""
        elif out.get("tool_calls") is not None:
            out.pop("tool_calls")  # an empty list: GLM takes it as a malformed message
    content = out.get("content")
    if isinstance(content, list):
        out["content"] = [_content_part(part) for part in content]
    return out


def _empty_assistant(message: JSONDict) -> bool:
    """An assistant message with no text, no tool calls and no reasoning: GLM refuses it
    (400, code 1214) and it says nothing, so it is left out."""
    return (
        message.get("role") == "assistant"
        and not message.get("content")
        and not message.get("tool_calls")
        and not message.get("reasoning_content")
    )


def _content_part(part: Any) -> Any:
    if isinstance(part, dict) and part.get("type") == "image_url":
        image = part.get("image_url") or {}
        url: Optional[str] = image.get("url") if isinstance(image, dict) else image
        if isinstance(url, str) and url.startswith("data:") and ";base64," in url:
            # GLM wants bare base64, not a data URL (the official SDK strips it too).
            return {"type": "image_url", "image_url": {"url": url.split(";base64,", 1)[1]}}
    return part
