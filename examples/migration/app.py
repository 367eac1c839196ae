"""A whole migration: an openai program moved to Zhipu and DashScope by one import and a
config file (``llm_bridge.toml`` beside this script).

    python examples/migration/app.py

What changed from the OpenAI version of this program: the import line (marked below) and
the config file. Everything else, including ``except openai.RateLimitError`` and
``chat.completions.parse``, is the code as it was written for OpenAI.

Offline by default: both providers are answered by their fakes from ``llm_bridge.testing``,
and Zhipu is scripted to be rate limited on the second question, so the fallback chain
visibly moves to Qwen. Set ``ZHIPUAI_API_KEY`` and ``DASHSCOPE_API_KEY`` to run it live.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import openai
from pydantic import BaseModel

from llm_bridge import OpenAI  # was: from openai import OpenAI

CONFIG = Path(__file__).with_name("llm_bridge.toml")


class Sight(BaseModel):
    name: str
    city: str
    best_season: str


def make_client() -> OpenAI:
    """The client; offline, its provider traffic goes to the fakes."""
    if os.environ.get("ZHIPUAI_API_KEY") and os.environ.get("DASHSCOPE_API_KEY"):
        return OpenAI(config=CONFIG)
    return OpenAI(config=CONFIG, http_client=offline_providers(), max_retries=1)


def offline_providers() -> httpx.Client:
    """Zhipu and DashScope fakes behind one HTTP client, routed by host."""
    from llm_bridge.testing import FakeDashScopeCompatible, FakeZhipu

    os.environ.setdefault("ZHIPUAI_API_KEY", "demo.key")
    os.environ.setdefault("DASHSCOPE_API_KEY", "sk-demo")
    zhipu = FakeZhipu(api_key="demo.key")
    zhipu.reply("西湖位于浙江省杭州市。")
    zhipu.fail("rate_limit").fail("rate_limit")  # the 2nd question: 429, retried once, 429
    zhipu.reply('{"name": "西湖", "city": "杭州", "best_season": "春季"}')
    qwen = FakeDashScopeCompatible(api_key="sk-demo")
    qwen.reply("苏堤春晓是西湖十景之首。")

    def route(request: httpx.Request) -> httpx.Response:
        fake = zhipu if request.url.host == "open.bigmodel.cn" else qwen
        return fake.handler(request)

    return httpx.Client(transport=httpx.MockTransport(route))


def main() -> None:
    client = make_client()

    # 1. Plain chat, as before: "gpt-4o-mini" is now GLM (the config's first target).
    answer = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "西湖在哪里？"}]
    )
    print(f"[{answer.model}] {answer.choices[0].message.content}")

    # 2. Zhipu is overloaded: after its retries the chain moves on to Qwen. Code written
    #    for OpenAI's rate limits still catches what is left over.
    try:
        answer = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "西湖十景之首是什么？"}]
        )
        print(f"[{answer.model}] {answer.choices[0].message.content}")
    except openai.RateLimitError as error:
        print(f"every target is rate limited: {error}")

    # 3. Structured output: GLM has no json_schema, llm-bridge emulates and checks it.
    sight = client.chat.completions.parse(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "推荐一个杭州景点。"}],
        response_format=Sight,
    )
    print("parsed:", sight.choices[0].message.parsed)

    # 4. Embeddings: openai asks for base64; the vectors come back as floats, in order.
    vectors = client.embeddings.create(model="text-embedding-3-small", input=["西湖", "断桥"])
    print(f"embeddings: {len(vectors.data)} vectors of {len(vectors.data[0].embedding)} floats")

    # 5. What it cost, per provider and model, in yuan.
    for key, summary in client.usage.by_model().items():
        print(
            f"usage: {key}: {summary.requests} calls, {summary.total_tokens} tokens, "
            f"¥{summary.cost_cny:.6f}"
        )


if __name__ == "__main__":
    main()
