"""What did we spend? A few calls across providers, then tokens and yuan per model.

    python examples/usage_report.py

Offline by default: each provider is answered by its fake from ``llm_bridge.testing``,
speaking its wire (Zhipu v4, Qianfan v2, DashScope's compatible mode; usage arrives on
the last stream chunk, or only when asked for, and is recorded either way). Set
``ZHIPUAI_API_KEY``, ``QIANFAN_API_KEY`` and ``DASHSCOPE_API_KEY`` to spend real money
instead.
"""

from __future__ import annotations

import os

import httpx

from llm_bridge import OpenAI
from llm_bridge.testing import FakeDashScopeCompatible, FakeQianfanV2, FakeZhipu

QUESTION = [{"role": "user", "content": "用一句话介绍杭州西湖。"}]


def clients() -> list[tuple[OpenAI, str]]:
    """(client, model) per provider: live where a key is set, else its offline fake."""
    made = []
    if os.environ.get("ZHIPUAI_API_KEY"):
        made.append((OpenAI(provider="zhipu"), "glm-4-flash"))
    else:
        fake = FakeZhipu(api_key="id.secret").reply("西湖是杭州的名片，湖光山色四季皆美。")
        fake.reply("西湖以断桥残雪和苏堤春晓闻名。")
        made.append(
            (
                OpenAI(
                    provider="zhipu",
                    api_key="id.secret",
                    http_client=httpx.Client(transport=fake.transport()),
                ),
                "glm-4-flash",
            )
        )
    if os.environ.get("QIANFAN_API_KEY") or os.environ.get("QIANFAN_ACCESS_KEY"):
        made.append((OpenAI(provider="qianfan"), "ernie-4.5-turbo-128k"))
    else:
        key = "bce-v3/ALTAK-demo/0123456789abcdef"
        fake = FakeQianfanV2(api_key=key).reply("西湖位于杭州，是中国著名的风景名胜。")
        fake.reply("西湖十景各有特色，值得一游。")
        made.append(
            (
                OpenAI(
                    provider="qianfan",
                    api_key=key,
                    http_client=httpx.Client(transport=fake.transport()),
                ),
                "ernie-4.5-turbo-128k",
            )
        )
    if os.environ.get("DASHSCOPE_API_KEY"):
        made.append((OpenAI(provider="dashscope"), "qwen-plus"))
    else:
        fake = FakeDashScopeCompatible(api_key="sk-demo")
        fake.reply("西湖是杭州的灵魂，也是世界文化遗产。")
        fake.reply("春天的西湖桃红柳绿，最是动人。")
        made.append(
            (
                OpenAI(
                    provider="dashscope",
                    api_key="sk-demo",
                    http_client=httpx.Client(transport=fake.transport()),
                ),
                "qwen-plus",
            )
        )
    return made


def main() -> None:
    rows = []
    for client, model in clients():
        with client:
            client.chat.completions.create(model=model, messages=QUESTION)
            stream = client.chat.completions.create(model=model, messages=QUESTION, stream=True)
            for _ in stream:
                pass
            rows.extend(client.usage.by_model().items())

    print(
        f"{'provider/model':<30}{'requests':>9}{'prompt':>8}{'completion':>12}"
        f"{'total':>7}{'estimated':>11}{'cost (CNY)':>14}"
    )
    for key, summary in rows:
        print(
            f"{key:<30}{summary.requests:>9}{summary.prompt_tokens:>8}"
            f"{summary.completion_tokens:>12}{summary.total_tokens:>7}"
            f"{summary.estimated_requests:>11}{summary.cost_cny:>14.8f}"
        )


if __name__ == "__main__":
    main()
