"""Quick start: the openai call you already have, answered by Zhipu GLM.

    python examples/quickstart.py

With ``ZHIPUAI_API_KEY`` set it talks to Zhipu for real. Without it, it runs the very
same path (config -> routing -> adapter -> Zhipu's wire format -> stream -> usage)
against the fake provider in ``llm_bridge.testing``, offline.
"""

from __future__ import annotations

import os

import httpx

from llm_bridge import OpenAI
from llm_bridge.testing import FakeZhipu

# The one line a migrating program changes is the import; the other is this config:
# the name the code already uses ("gpt-4o-mini") now means Zhipu's glm-4-flash.
CONFIG = {
    "default_provider": "zhipu",
    "models": {"gpt-4o-mini": "zhipu/glm-4-flash"},
}


def make_client() -> OpenAI:
    if os.environ.get("ZHIPUAI_API_KEY"):
        print("Using Zhipu live (ZHIPUAI_API_KEY is set).\n")
        return OpenAI(config=CONFIG)
    print("No ZHIPUAI_API_KEY: answering from the offline fake Zhipu (same wire format).\n")
    fake = FakeZhipu(api_key="demo-id.demo-secret")
    fake.reply("北京是中华人民共和国的首都，也是全国的政治和文化中心。")
    fake.reply("Beijing is the capital of China: a city of palaces, hutongs and dumplings.")
    return OpenAI(
        config=CONFIG,
        api_key="demo-id.demo-secret",
        http_client=httpx.Client(transport=fake.transport()),
    )


def main() -> None:
    with make_client() as client:
        messages = [{"role": "user", "content": "用一句话介绍北京。"}]

        completion = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
        print(f"[{completion.provider}/{completion.model}] {completion.choices[0].message.content}")
        print(
            f"usage: {completion.usage.prompt_tokens} prompt + "
            f"{completion.usage.completion_tokens} completion = "
            f"{completion.usage.total_tokens} tokens\n"
        )

        print("streamed: ", end="", flush=True)
        stream = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Describe Beijing in one sentence."}],
            stream=True,
            stream_options={"include_usage": True},
        )
        with stream:
            for chunk in stream:
                if chunk.choices:
                    print(chunk.choices[0].delta.content or "", end="", flush=True)
                elif chunk.usage is not None:
                    print(
                        f"\nusage: {chunk.usage.total_tokens} tokens "
                        f"({chunk.usage.prompt_tokens} prompt, "
                        f"{chunk.usage.completion_tokens} completion)"
                    )


if __name__ == "__main__":
    main()
