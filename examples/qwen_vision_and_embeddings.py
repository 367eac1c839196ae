"""An image question to Qwen-VL and a batch of embeddings, through openai's calls.

    python examples/qwen_vision_and_embeddings.py

It speaks DashScope's native protocol (``api = "native"``; compatible mode is the default),
to show the translation: the multimodal path, ``{"image": url}`` parts, ``input.texts``
embeddings answered out of order. With ``DASHSCOPE_API_KEY`` set it talks to DashScope for
real; without it, it runs offline against ``llm_bridge.testing.FakeDashScope``, which
speaks the same wire.
"""

from __future__ import annotations

import math
import os

import httpx

from llm_bridge import OpenAI
from llm_bridge.testing import FakeDashScope

IMAGE = "https://dashscope.oss-cn-beijing.aliyuncs.com/images/dog_and_girl.jpeg"
NATIVE = {"providers": {"dashscope": {"api": "native"}}}
SENTENCES = [
    "衣服的质量杠杠的",
    "这件衣服质量很好",
    "今天天气不错",
    "物流太慢了",
    "客服态度很好",
    "面料舒服透气",
    "尺码偏小",
    "颜色和图片一样",
    "包装很用心",
    "会回购的",
    "价格实惠",
    "做工精细",
]


def make_client() -> OpenAI:
    if os.environ.get("DASHSCOPE_API_KEY"):
        print("Using DashScope live (DASHSCOPE_API_KEY is set).\n")
        return OpenAI(provider="dashscope", config=NATIVE)
    print("No DASHSCOPE_API_KEY: answering from the offline fake DashScope (native wire).\n")
    fake = FakeDashScope(api_key="sk-demo")
    fake.reply("图中是一位女孩和一只狗在海滩上玩耍，夕阳西下，气氛温馨。")
    return OpenAI(
        provider="dashscope",
        api_key="sk-demo",
        config=NATIVE,
        http_client=httpx.Client(transport=fake.transport()),
    )


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def main() -> None:
    with make_client() as client:
        answer = client.chat.completions.create(
            model="qwen3-vl-plus",
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "图里有什么？用一句话回答。"},
                        {"type": "image_url", "image_url": {"url": IMAGE}},
                    ],
                }
            ],
        )
        print(f"[{answer.provider}/{answer.model}] {answer.choices[0].message.content}\n")

        # Twelve texts: more than text-embedding-v3 takes in one request (10), so the
        # client splits them and puts the answers back in input order.
        result = client.embeddings.create(
            model="text-embedding-v3", input=SENTENCES, dimensions=512
        )
        print(
            f"{len(result.data)} embeddings of {len(result.data[0].embedding)} dimensions, "
            f"{result.usage.total_tokens} tokens"
        )
        first = result.data[0].embedding
        ranked = sorted(
            range(1, len(SENTENCES)),
            key=lambda i: cosine(first, result.data[i].embedding),
            reverse=True,
        )
        print(f"closest to {SENTENCES[0]!r}: {SENTENCES[ranked[0]]!r}")


if __name__ == "__main__":
    main()
