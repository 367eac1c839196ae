"""Tests for the response models in ``llm_bridge._shapes``.

They check that OpenAI-shaped payloads validate, that provider extras (Zhipu's
``request_id`` / ``web_search``, ``reasoning_content``, our ``provider`` tag) survive as
attributes and in dumps, that unknown enum-like values are tolerated, and that the
shared fields dump exactly as openai's own models do.
"""

import copy
import json

from llm_bridge._shapes import (
    CompletionUsage,
    CreateEmbeddingResponse,
    Embedding,
    Model,
    chat,
)
from llm_bridge._shapes.chat import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionMessageFunctionToolCall,
    ChatCompletionMessageToolCall,
    ChatCompletionTokenLogprob,
)
from llm_bridge._shapes.chat.chat_completion_chunk import ChoiceDelta

OPENAI_COMPLETION = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion",
    "created": 1_717_000_000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "北京"}'},
                    }
                ],
            },
            "logprobs": {
                "content": [
                    {
                        "token": "北",
                        "bytes": [229, 140, 151],
                        "logprob": -0.01,
                        "top_logprobs": [{"token": "北", "bytes": None, "logprob": -0.01}],
                    }
                ],
                "refusal": None,
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 82,
        "completion_tokens": 17,
        "total_tokens": 99,
        "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
}

ZHIPU_COMPLETION = {
    "id": "20240801123456abcdef",
    "request_id": "req-zhipu-42",
    "created": 1_722_480_000,
    "model": "glm-4.5",
    "provider": "zhipu",
    "choices": [
        {
            "index": 0,
            "finish_reason": "sensitive",
            "message": {
                "role": "assistant",
                "content": "北京今天晴。",
                "reasoning_content": "用户问天气，先检索。",
            },
        }
    ],
    "web_search": [{"title": "北京天气", "link": "https://example.cn/w", "refer": "ref_1"}],
    "usage": {"prompt_tokens": 10, "completion_tokens": 6, "total_tokens": 16},
}

OPENAI_CHUNK = {
    "id": "chatcmpl-abc123",
    "object": "chat.completion.chunk",
    "created": 1_717_000_000,
    "model": "gpt-4o-mini",
    "system_fingerprint": "fp_44709d6fcb",
    "choices": [
        {
            "index": 0,
            "delta": {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": None,
        }
    ],
    "usage": None,
}

QWEN_REASONING_CHUNK = {
    "id": "chatcmpl-qwen-1",
    "object": "chat.completion.chunk",
    "created": 1_740_000_000,
    "model": "qwq-plus",
    "provider": "dashscope",
    "choices": [
        {
            "index": 0,
            "delta": {"content": None, "reasoning_content": "先想一想"},
            "finish_reason": None,
            "logprobs": None,
        }
    ],
}


# -- chat completion ---------------------------------------------------------------


def test_chat_completion_openai_payload() -> None:
    completion = ChatCompletion.model_validate(OPENAI_COMPLETION)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert isinstance(choice.message, ChatCompletionMessage)
    call = choice.message.tool_calls[0]
    assert isinstance(call, ChatCompletionMessageToolCall)
    assert ChatCompletionMessageFunctionToolCall is ChatCompletionMessageToolCall
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "北京"}
    assert isinstance(choice.logprobs.content[0], ChatCompletionTokenLogprob)
    assert choice.logprobs.content[0].top_logprobs[0].bytes is None
    assert isinstance(completion.usage, CompletionUsage)
    assert completion.usage.prompt_tokens_details.cached_tokens == 64
    assert completion.usage.estimated is False


def test_chat_completion_provider_extras_survive() -> None:
    completion = ChatCompletion.model_validate(ZHIPU_COMPLETION)
    assert completion.request_id == "req-zhipu-42"
    assert completion.provider == "zhipu"
    assert completion.web_search[0]["title"] == "北京天气"
    message = completion.choices[0].message
    assert message.reasoning_content == "用户问天气，先检索。"
    assert completion.object == "chat.completion"  # default when the provider omits it

    dumped = completion.model_dump()
    assert dumped["request_id"] == "req-zhipu-42"
    assert dumped["web_search"] == ZHIPU_COMPLETION["web_search"]
    assert dumped["choices"][0]["message"]["reasoning_content"] == "用户问天气，先检索。"

    as_json = json.loads(completion.model_dump_json())
    assert as_json["provider"] == "zhipu"
    assert as_json["choices"][0]["message"]["reasoning_content"] == "用户问天气，先检索。"
    assert ChatCompletion.model_validate_json(completion.model_dump_json()) == completion


def test_unknown_enum_like_values_validate() -> None:
    completion = ChatCompletion.model_validate(ZHIPU_COMPLETION)
    assert completion.choices[0].finish_reason == "sensitive"

    payload = copy.deepcopy(OPENAI_COMPLETION)
    payload["service_tier"] = "on_demand"
    payload["choices"][0]["finish_reason"] = None
    payload["choices"][0]["message"]["role"] = "bot"
    payload["choices"][0]["message"]["tool_calls"][0]["type"] = "web_search"
    completion = ChatCompletion.model_validate(payload)
    assert completion.choices[0].finish_reason is None
    assert completion.choices[0].message.role == "bot"
    assert completion.service_tier == "on_demand"

    chunk = ChatCompletionChunk.model_validate(
        {
            **OPENAI_CHUNK,
            "choices": [{"index": 0, "delta": {"role": "ai"}, "finish_reason": "abort"}],
        }
    )
    assert chunk.choices[0].finish_reason == "abort"
    assert chunk.choices[0].delta.role == "ai"


def test_message_defaults() -> None:
    message = ChatCompletionMessage(content="你好")
    assert message.role == "assistant"
    assert message.tool_calls is None
    assert not hasattr(message, "reasoning_content")


# -- streaming chunk -----------------------------------------------------------------


def test_chat_completion_chunk_openai_payload() -> None:
    chunk = ChatCompletionChunk.model_validate(OPENAI_CHUNK)
    delta = chunk.choices[0].delta
    assert isinstance(delta, ChoiceDelta)
    assert delta.role == "assistant"
    assert delta.tool_calls[0].index == 0
    assert delta.tool_calls[0].function.arguments == ""
    assert chunk.usage is None


def test_chat_completion_chunk_extras_and_usage_only_chunk() -> None:
    chunk = ChatCompletionChunk.model_validate(QWEN_REASONING_CHUNK)
    assert chunk.provider == "dashscope"
    assert chunk.choices[0].delta.reasoning_content == "先想一想"
    assert chunk.model_dump()["choices"][0]["delta"]["reasoning_content"] == "先想一想"
    assert json.loads(chunk.model_dump_json())["provider"] == "dashscope"

    final = ChatCompletionChunk(
        id="c",
        choices=[],
        created=1,
        model="qwq-plus",
        usage=CompletionUsage(prompt_tokens=3, completion_tokens=4, total_tokens=7, estimated=True),
    )
    assert final.object == "chat.completion.chunk"
    assert final.usage.estimated is True
    assert final.to_dict()["usage"]["estimated"] is True


# -- usage, embeddings, models -------------------------------------------------------


def test_completion_usage_details_and_extras() -> None:
    usage = CompletionUsage.model_validate(
        {
            "prompt_tokens": 20,
            "completion_tokens": 30,
            "total_tokens": 50,
            "completion_tokens_details": {"reasoning_tokens": 25},
            "prompt_tokens_details": {"cached_tokens": 16},
            "search_tokens": 5,
        }
    )
    assert usage.completion_tokens_details.reasoning_tokens == 25
    assert usage.completion_tokens_details.audio_tokens is None
    assert usage.prompt_tokens_details.cached_tokens == 16
    assert usage.search_tokens == 5
    assert usage.model_dump()["search_tokens"] == 5
    assert usage.estimated is False


def test_embeddings_float_and_base64() -> None:
    payload = {
        "object": "list",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [0.1, -0.2, 3]},
            {"object": "embedding", "index": 1, "embedding": "AACAPwAAAEA="},
        ],
        "model": "text-embedding-v3",
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
        "id": "emb-req-1",
        "provider": "dashscope",
    }
    response = CreateEmbeddingResponse.model_validate(payload)
    assert isinstance(response.data[0], Embedding)
    assert response.data[0].embedding == [0.1, -0.2, 3.0]
    assert response.data[1].embedding == "AACAPwAAAEA="
    assert response.usage.estimated is False
    assert response.id == "emb-req-1"
    assert response.model_dump()["provider"] == "dashscope"
    assert json.loads(response.model_dump_json())["id"] == "emb-req-1"

    minimal = CreateEmbeddingResponse(
        data=[Embedding(embedding=[1.0], index=0)],
        model="embedding-3",
        usage={"prompt_tokens": 2, "total_tokens": 2, "estimated": True},
    )
    assert minimal.object == "list"
    assert minimal.data[0].object == "embedding"
    assert minimal.usage.estimated is True


def test_model() -> None:
    model = Model.model_validate(
        {"id": "glm-4.5", "created": 1_722_480_000, "owned_by": "zhipu", "provider": "zhipu"}
    )
    assert model.object == "model"
    assert model.provider == "zhipu"
    assert model.model_dump()["provider"] == "zhipu"
    assert json.loads(model.model_dump_json())["owned_by"] == "zhipu"


# -- to_dict / to_json ---------------------------------------------------------------


def test_to_dict_and_to_json_exclude_unset_by_default() -> None:
    completion = ChatCompletion.model_validate(ZHIPU_COMPLETION)
    as_dict = completion.to_dict()
    # Only what the payload set: no defaulted ``object``/``system_fingerprint``/``estimated``.
    assert as_dict == ZHIPU_COMPLETION
    assert json.loads(completion.to_json()) == ZHIPU_COMPLETION
    assert completion.to_json().startswith('{\n  "')  # indent=2
    assert "\n" not in completion.to_json(indent=None)

    full = completion.to_dict(exclude_unset=False)
    assert full["object"] == "chat.completion"
    assert full["system_fingerprint"] is None
    assert full["usage"]["estimated"] is False
    assert full["request_id"] == "req-zhipu-42"
    assert json.loads(completion.to_json(exclude_unset=False)) == full
    assert "refusal" not in completion.to_dict(exclude_none=True)["choices"][0]["message"]

    embedding = Embedding(embedding=[0.5], index=0)
    assert embedding.to_dict(mode="json") == {"embedding": [0.5], "index": 0}


def test_chat_subpackage_exports() -> None:
    assert set(chat.__all__) == {
        "ChatCompletion",
        "ChatCompletionChunk",
        "ChatCompletionMessage",
        "ChatCompletionMessageFunctionToolCall",
        "ChatCompletionMessageToolCall",
        "ChatCompletionTokenLogprob",
    }
    for name in chat.__all__:
        assert getattr(chat, name) is not None


# -- cross-check against openai ------------------------------------------------------


def _strip_estimated(dumped: dict) -> dict:
    dumped = copy.deepcopy(dumped)
    if dumped.get("usage"):
        dumped["usage"].pop("estimated", None)
    return dumped


def test_shared_fields_match_openai() -> None:
    import openai  # a dev dependency: the contract these types mirror

    pairs = [
        (openai.types.chat.ChatCompletion, ChatCompletion, OPENAI_COMPLETION),
        (openai.types.chat.ChatCompletionChunk, ChatCompletionChunk, OPENAI_CHUNK),
    ]
    for theirs_cls, ours_cls, payload in pairs:
        # Every field we declare is an openai field (``estimated`` is our only addition).
        assert set(ours_cls.model_fields) <= set(theirs_cls.model_fields)
        theirs = theirs_cls.model_validate(payload)
        ours = ours_cls.model_validate(payload)
        # Fields openai declares and we do not (e.g. ``moderation``) dump as None there.
        assert _strip_estimated(ours.model_dump(exclude_none=True)) == theirs.model_dump(
            exclude_none=True
        )
        assert _strip_estimated(ours.to_dict()) == theirs.to_dict()

    assert set(CompletionUsage.model_fields) - {"estimated"} <= set(
        openai.types.CompletionUsage.model_fields
    )
    for name in ("Embedding", "Model", "CreateEmbeddingResponse"):
        ours_fields = set(globals()[name].model_fields)
        assert ours_fields <= set(getattr(openai.types, name).model_fields)
