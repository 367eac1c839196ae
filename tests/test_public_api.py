"""The drop-in promise, checked against the openai package's own public surface."""

from __future__ import annotations

import inspect

import openai  # the contract itself (a dev dependency, never a runtime one)
import pytest

import llm_bridge
from llm_bridge.types import CompletionUsage, CreateEmbeddingResponse, Embedding, Model
from llm_bridge.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessage

EXCEPTIONS = [
    "OpenAIError",
    "APIError",
    "APIStatusError",
    "APIConnectionError",
    "APITimeoutError",
    "APIResponseValidationError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
]


@pytest.mark.parametrize("name", EXCEPTIONS)
def test_each_exception_is_openais_class_of_the_same_name(name: str) -> None:
    ours, theirs = getattr(llm_bridge, name), getattr(openai, name)
    assert issubclass(ours, theirs)
    # ... and sits where openai's does among ours: catching our APIStatusError catches it
    our_bases = [c.__name__ for c in ours.__mro__ if c.__module__.startswith("llm_bridge")]
    their_bases = [
        c.__name__
        for c in theirs.__mro__
        if c.__name__ in EXCEPTIONS and c is not openai.OpenAIError
    ]
    if name == "OpenAIError":
        assert ours is theirs
        return
    assert our_bases == their_bases


@pytest.mark.parametrize("name", ["APIError", "APIStatusError"])
def test_exceptions_carry_openais_attributes(name: str) -> None:
    theirs = set(getattr(openai, name).__annotations__)
    ours = set()
    for cls in getattr(llm_bridge, name).__mro__:
        ours |= set(getattr(cls, "__annotations__", {}))
    assert theirs <= ours
    assert {"provider", "provider_code"} <= ours


def test_client_accepts_openais_constructor_keywords() -> None:
    theirs = set(inspect.signature(openai.OpenAI).parameters)
    ours = set(inspect.signature(llm_bridge.OpenAI).parameters)
    for keyword in (
        "api_key",
        "base_url",
        "timeout",
        "max_retries",
        "default_headers",
        "default_query",
        "http_client",
        "organization",
        "project",
    ):
        assert keyword in theirs and keyword in ours


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (ChatCompletion, "types.chat.ChatCompletion"),
        (ChatCompletionChunk, "types.chat.ChatCompletionChunk"),
        (ChatCompletionMessage, "types.chat.ChatCompletionMessage"),
        (CompletionUsage, "types.CompletionUsage"),
        (CreateEmbeddingResponse, "types.CreateEmbeddingResponse"),
        (Embedding, "types.Embedding"),
        (Model, "types.Model"),
    ],
)
def test_response_types_have_openais_required_fields(ours: type, theirs: str) -> None:
    cls = openai
    for part in theirs.split("."):
        cls = getattr(cls, part)
    required = {name for name, field in cls.model_fields.items() if field.is_required()}
    assert required <= set(ours.model_fields)


def test_resources_are_where_openai_has_them() -> None:
    client = llm_bridge.OpenAI(provider="zhipu", api_key="id.secret")
    for path in (
        "chat.completions.create",
        "chat.completions.with_raw_response.create",
        "embeddings.create",
        "models.list",
        "models.retrieve",
        "with_options",
        "close",
    ):
        target = client
        for part in path.split("."):
            target = getattr(target, part)
        assert callable(target)
