"""A tool-calling conversation on Baidu ERNIE, written exactly as for openai.

    python examples/qianfan_tools.py

With ``QIANFAN_API_KEY`` (a ``bce-v3/...`` API key from the Qianfan console) or IAM keys
(``QIANFAN_ACCESS_KEY``/``QIANFAN_SECRET_KEY``: a bearer token is minted and renewed for
you) set, it talks to ERNIE for real, on the v2 API. Without them it runs offline against
``llm_bridge.testing.FakeQianfanV2``, which speaks the same wire, including v2's message
rules (strict alternation, the last turn from the user on ERNIE 4.5), repaired for you.
"""

from __future__ import annotations

import json
import os

import httpx

from llm_bridge import OpenAI
from llm_bridge.testing import FakeQianfanV2

MODEL = "ernie-4.5-turbo-128k"
DEMO_KEY = "bce-v3/ALTAK-demo/0123456789abcdef"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_current_weather",
            "description": "获取指定城市的当前天气",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string", "description": "城市名，如 北京"}},
                "required": ["location"],
            },
        },
    }
]


def get_current_weather(location: str) -> dict[str, str]:
    """The local function the model may call (a stand-in for a real weather service)."""
    return {"location": location, "weather": "晴", "temperature": "25℃"}


def make_client() -> OpenAI:
    if os.environ.get("QIANFAN_API_KEY") or os.environ.get("QIANFAN_ACCESS_KEY"):
        print("Using Qianfan live (v2 API).\n")
        return OpenAI(provider="qianfan")
    print("No Qianfan keys: answering from the offline fake Qianfan (v2 wire).\n")
    fake = FakeQianfanV2(api_key=DEMO_KEY)
    fake.tool_call("get_current_weather", {"location": "北京"})
    fake.reply("北京今天晴，气温25℃，适合出门散步。")
    return OpenAI(
        provider="qianfan",
        api_key=DEMO_KEY,
        http_client=httpx.Client(transport=fake.transport()),
    )


def main() -> None:
    with make_client() as client:
        messages = [
            {"role": "system", "content": "你是一个天气助手，需要时调用工具。"},
            {"role": "user", "content": "北京今天天气怎么样？"},
        ]
        first = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        message = first.choices[0].message
        print(f"finish_reason: {first.choices[0].finish_reason}")
        if not message.tool_calls:
            print(f"answer: {message.content}")
            return

        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)
            print(f"tool call: {call.function.name}({arguments})")
            result = get_current_weather(**arguments)
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": call.id,
                    "content": json.dumps(result, ensure_ascii=False),
                }
            )

        final = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        print(f"answer: {final.choices[0].message.content}")
        print(
            f"usage: {final.usage.total_tokens} tokens "
            f"({final.usage.prompt_tokens} prompt, {final.usage.completion_tokens} completion)"
        )


if __name__ == "__main__":
    main()
