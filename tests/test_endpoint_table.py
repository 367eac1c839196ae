"""Provider hosts are data: ``[[endpoints]]`` in ``providers/*.toml`` by api, region and plan.

The same table drives where a client sends its requests (``region``/``plan``/``api`` in the
config) and which provider a base URL belongs to (``llm_bridge.OpenAI(base_url=...)`` and
``llm_bridge.http_client()``). Bad choices are config errors naming the key and the values
that exist.
"""

from __future__ import annotations

import httpx
import openai
import pytest

import llm_bridge
from llm_bridge import ConfigError
from llm_bridge._config import load_config
from llm_bridge._endpoints import recognise
from llm_bridge.testing import FakeZhipu

KEY = "id.secret"
HELLO = [{"role": "user", "content": "你好"}]


def zhipu_client(config: dict, fake: FakeZhipu) -> llm_bridge.OpenAI:
    upstream = httpx.Client(transport=fake.transport())
    return llm_bridge.OpenAI(provider="zhipu", api_key=KEY, config=config, http_client=upstream)


@pytest.mark.parametrize(
    "settings, root",
    [
        ({}, "https://open.bigmodel.cn/api/paas/v4"),
        ({"region": "intl"}, "https://api.z.ai/api/paas/v4"),
        ({"plan": "coding"}, "https://open.bigmodel.cn/api/coding/paas/v4"),
        ({"region": "intl", "plan": "coding"}, "https://api.z.ai/api/coding/paas/v4"),
    ],
    ids=["cn", "intl", "coding", "intl-coding"],
)
def test_zhipu_region_and_plan_pick_the_host(settings: dict, root: str) -> None:
    fake = FakeZhipu(api_key=KEY).reply("好")
    if settings.get("plan") == "coding":  # the plan's terms: interactive coding tools only
        with pytest.warns(llm_bridge.CodingPlanWarning, match="forbid use from automated"):
            client = zhipu_client({"providers": {"zhipu": settings}}, fake)
    else:
        client = zhipu_client({"providers": {"zhipu": settings}}, fake)
    assert str(client.base_url).rstrip("/") == root
    client.chat.completions.create(model="glm-4-flash", messages=HELLO)
    assert str(fake.requests[0].url) == root + "/chat/completions"


@pytest.mark.parametrize(
    "key, value, expected",
    [("region", "mars", "'cn', 'intl'"), ("plan", "gold", "'coding', 'standard'")],
)
def test_an_unknown_region_or_plan_names_the_key_and_the_choices(
    key: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config({"providers": {"zhipu": {key: value}}})
    message = str(caught.value)
    assert f"providers.zhipu.{key}" in message and expected in message and value in message


def test_a_combination_no_endpoint_serves_is_a_config_error_listing_them() -> None:
    # DashScope's Coding Plan has a compatible-mode host only.
    with pytest.raises(ConfigError, match=r"no endpoint for api='native'.*plan='coding'"):
        load_config({"providers": {"dashscope": {"api": "native", "plan": "coding"}}})


@pytest.mark.parametrize(
    "url, provider, settings",
    [
        ("https://api.z.ai/api/paas/v4", "zhipu", {"region": "intl", "plan": "standard"}),
        ("https://open.bigmodel.cn/api/coding/paas/v4/", "zhipu", {"plan": "coding"}),
        ("https://dashscope-us.aliyuncs.com/compatible-mode/v1", "dashscope", {"region": "us"}),
        ("https://coding.dashscope.aliyuncs.com/v1", "dashscope", {"plan": "coding"}),
        ("https://qianfan.baidubce.com/v2/chat/completions", "qianfan", {"api": "v2"}),
    ],
)
def test_every_listed_root_is_recognised_with_its_settings(
    url: str, provider: str, settings: dict
) -> None:
    known = recognise(load_config(None), url)
    assert known is not None and known.provider == provider
    assert settings.items() <= known.settings.items()


def test_a_plain_client_on_the_international_host_reaches_it() -> None:
    fake = FakeZhipu(api_key=KEY).reply("hi")
    bridge = llm_bridge.http_client(http_client=httpx.Client(transport=fake.transport()))
    client = openai.OpenAI(api_key=KEY, base_url="https://api.z.ai/api/paas/v4", http_client=bridge)
    assert client.chat.completions.create(model="glm-4-flash", messages=HELLO).choices
    assert fake.requests[0].url.host == "api.z.ai"


def test_a_refused_key_says_which_region_and_plan_it_was_sent_to() -> None:
    fake = FakeZhipu(api_key="other.key")
    client = zhipu_client({"providers": {"zhipu": {"region": "intl"}}}, fake)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.with_options(max_retries=0).chat.completions.create(
            model="glm-4-flash", messages=HELLO
        )
    message = str(caught.value)
    assert "api.z.ai (international), standard plan" in message
    assert "region (one of ['cn', 'intl'])" in message and "[providers.zhipu]" in message
    assert KEY not in message
