"""DashScope's compatible mode and Qianfan v2 take OpenAI's request shape, and ignore, without
a word, the parameters their models have no use for. Those the providers' models lack
whatever the wire (a logit bias, predicted outputs, GPT-5's verbosity) go through the
unsupported-parameter policy there as they do on the native protocols: warned about and
not sent, refused under "error", dropped silently under "drop"."""

from __future__ import annotations

import json
import warnings
from typing import Any

import httpx
import pytest

import llm_bridge
from llm_bridge import BadRequestError, UnsupportedParameterWarning
from llm_bridge._config import builtin_providers
from llm_bridge.adapters.dashscope import DashScopeCompatAdapter
from llm_bridge.adapters.qianfan import QianfanV2Adapter
from llm_bridge.testing import FakeDashScopeCompatible, FakeQianfanV2

HELLO = [{"role": "user", "content": "你好"}]
LACKED = {
    "logit_bias": {"1234": 5},
    "prediction": {"type": "content", "content": "x"},
    "verbosity": "low",
}
SETUPS = {
    "dashscope": (lambda: FakeDashScopeCompatible("sk-ds"), "sk-ds", "qwen-plus"),
    "qianfan": (
        lambda: FakeQianfanV2("bce-v3/ALTAK-a/b"),
        "bce-v3/ALTAK-a/b",
        "ernie-4.5-turbo-128k",
    ),
}


def _client(provider: str, policy: str) -> tuple[Any, Any, str]:
    make, key, model = SETUPS[provider]
    fake = make()
    client = llm_bridge.OpenAI(
        provider=provider,
        api_key=key,
        config={"policy": {"unsupported_params": policy}},
        http_client=httpx.Client(transport=fake.transport()),
    )
    return client, fake, model


@pytest.mark.parametrize("provider", list(SETUPS))
@pytest.mark.parametrize("name", list(LACKED))
def test_a_parameter_the_models_lack_is_warned_about_and_not_sent(provider: str, name: str) -> None:
    client, fake, model = _client(provider, "warn")
    with pytest.warns(UnsupportedParameterWarning, match=f"{provider} does not support {name}"):
        client.chat.completions.create(model=model, messages=HELLO, **{name: LACKED[name]})
    assert name not in json.loads(fake.requests[-1].content)


@pytest.mark.parametrize("provider", list(SETUPS))
def test_under_the_error_policy_it_is_refused_before_sending(provider: str) -> None:
    client, fake, model = _client(provider, "error")
    with pytest.raises(BadRequestError, match="does not support verbosity"):
        client.chat.completions.create(model=model, messages=HELLO, verbosity="high")
    assert fake.requests == []


@pytest.mark.parametrize("provider", list(SETUPS))
def test_under_the_drop_policy_it_is_left_out_silently(provider: str) -> None:
    client, fake, model = _client(provider, "drop")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        client.chat.completions.create(model=model, messages=HELLO, logit_bias={"1": 1})
    assert "logit_bias" not in json.loads(fake.requests[-1].content)


@pytest.mark.parametrize("provider", list(SETUPS))
def test_parameters_the_wire_serves_still_go(provider: str) -> None:
    client, fake, model = _client(provider, "error")
    client.chat.completions.create(model=model, messages=HELLO, seed=7, presence_penalty=0.5)
    body = json.loads(fake.requests[-1].content)
    assert (body["seed"], body["presence_penalty"]) == (7, 0.5)


@pytest.mark.parametrize(
    ("adapter", "provider"), [(DashScopeCompatAdapter, "dashscope"), (QianfanV2Adapter, "qianfan")]
)
def test_every_lacked_parameter_has_its_reason_in_the_provider_table(
    adapter: Any, provider: str
) -> None:
    """A name missing from ``[unsupported]`` would be dropped with no reason to give."""
    assert adapter.models_lack <= builtin_providers()[provider].unsupported.keys()
