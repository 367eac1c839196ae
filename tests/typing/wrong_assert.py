"""The negative control for tests/test_typing.py: each line marked ``# wrong`` states a type
the call does not have, so pyright must report an ``assert_type`` mismatch there (and only
there). If it did not, the checks on user_code.py would prove nothing."""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from typing_extensions import assert_type

import llm_bridge

HELLO: list[Any] = [{"role": "user", "content": "你好"}]


def user() -> None:
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret")
    completion = client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert_type(completion, openai.Stream[ChatCompletionChunk])  # wrong
    stream = client.chat.completions.create(model="glm-4-flash", messages=HELLO, stream=True)
    assert_type(stream, ChatCompletion)  # wrong
    assert_type(completion, ChatCompletion)
