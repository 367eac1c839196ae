"""``models.list()`` leaves out the models their providers retired; ``models.retrieve`` of
one still answers, with OpenAI's ``shutdown_date`` (the catalogue's ``retired``) and the
catalogue's ``successor``. The gateway's ``GET /v1/models`` is the same list. All of it is
answered from the catalogue: no request reaches a provider."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, AsyncIterator, cast

import httpx
import pytest
from conftest import SUITE_SECRETS
from helpers import provider_table

import llm_bridge
from llm_bridge.gateway import create_app, hash_key

KEYS = {"zhipu": "id.secret", "qianfan": "bce-v3/ALTAK-test/secret", "dashscope": "sk-ds"}
GATEWAY_KEY = "sk-lb-retiredmodels-0123456789abcdef"
SUITE_SECRETS.update({GATEWAY_KEY, hash_key(GATEWAY_KEY)})


def retired(provider: str) -> dict[str, dict[str, Any]]:
    """The shipped catalogue's retired models of ``provider``, by name."""
    models = provider_table(provider)["models"]
    return {name: entry for name, entry in models.items() if "retired" in entry}


def no_network() -> httpx.Client:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    return httpx.Client(transport=httpx.MockTransport(refuse))


def client(provider: str, **options: Any) -> llm_bridge.OpenAI:
    return llm_bridge.OpenAI(
        provider=provider, api_key=KEYS[provider], http_client=no_network(), **options
    )


@pytest.mark.parametrize("provider", sorted(KEYS))
def test_the_list_leaves_out_retired_models_and_keeps_the_rest(provider: str) -> None:
    gone = retired(provider)
    assert gone  # each shipped table has retired models to leave out
    ids = {m.id for m in client(provider).models.list()}
    assert not ids & set(gone)
    serving = set(provider_table(provider)["models"]) - set(gone)
    assert serving <= ids


@pytest.mark.parametrize("provider", sorted(KEYS))
def test_a_retired_model_is_still_retrieved_and_says_since_when(provider: str) -> None:
    c = client(provider)
    for name, entry in retired(provider).items():
        model = c.models.retrieve(name)
        assert model.id == name and model.owned_by == provider
        assert model.shutdown_date == entry["retired"]
        assert (model.model_extra or {}).get("successor") == entry.get("successor")


def test_a_model_still_served_has_no_shutdown_date() -> None:
    model = client("zhipu").models.retrieve("glm-4-flash")
    assert model.shutdown_date is None and "successor" not in (model.model_extra or {})


def test_a_model_the_config_retires_leaves_the_list_and_aliases_stay() -> None:
    config = {
        "providers": {
            "zhipu": {"models": {"glm-old-test": {"retired": "2026-10-10", "successor": "glm-4.7"}}}
        },
        "models": {"old": "zhipu/glm-old-test", "fast": "zhipu/glm-4-flash"},
    }
    c = client("zhipu", config=config)
    ids = [m.id for m in c.models.list()]
    assert "glm-old-test" not in ids
    assert "old" in ids and "fast" in ids  # aliases are the config's own choice
    model = c.models.retrieve("glm-old-test")
    assert model.shutdown_date == "2026-10-10" and model.model_extra == {"successor": "glm-4.7"}


def test_an_alias_whose_targets_have_no_credentials_is_not_listed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It was listed, and ``retrieve`` then said no credentials (a menu offering a name
    no call can use); an alias with one usable target in its chain is listed."""
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    config = {
        "providers": {"zhipu": {"api_key": KEYS["zhipu"]}},
        "models": {
            "qwen": "dashscope/qwen-plus",
            "fast": "zhipu/glm-4-flash",
            "either": ["dashscope/qwen-plus", "zhipu/glm-4-flash"],
        },
    }
    c = llm_bridge.OpenAI(config=config, http_client=no_network())
    aliases = {m.id for m in c.models.list() if m.owned_by == "llm-bridge-alias"}
    assert aliases == {"fast", "either"}
    with pytest.raises(llm_bridge.NotFoundError, match="no credentials"):
        c.models.retrieve("qwen")
    # A client routed to one provider still lists an alias to another it can reach.
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-ds")
    scoped = llm_bridge.OpenAI(provider="zhipu", config=config, http_client=no_network())
    aliases = {m.id for m in scoped.models.list() if m.owned_by == "llm-bridge-alias"}
    assert aliases == {"fast", "either", "qwen"}


def test_a_client_of_every_provider_lists_none_of_their_retired_models() -> None:
    config = {"providers": {name: {"api_key": key} for name, key in KEYS.items()}}
    c = llm_bridge.OpenAI(config=config, http_client=no_network())
    listed = [(m.owned_by, m.id) for m in c.models.list()]
    for provider in KEYS:
        assert not {(provider, name) for name in retired(provider)} & set(listed)
        assert any(owner == provider for owner, _ in listed)


@asynccontextmanager
async def gateway(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = {
        "providers": {"zhipu": {"api_key": KEYS["zhipu"]}},
        "gateway": {
            "ledger": str(tmp_path / "ledger.sqlite"),
            "keys": {"team": {"key_sha256": hash_key(GATEWAY_KEY), "models": ["*"]}},
        },
    }

    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    upstream = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    app = create_app(config, http_client=upstream)
    await app.startup()
    try:
        transport = httpx.ASGITransport(app=cast(Any, app))  # (httpx types scope as a dict)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            yield http
    finally:
        await app.shutdown()


async def test_the_gateway_lists_no_retired_model_and_retrieves_one(tmp_path: Path) -> None:
    auth = {"Authorization": f"Bearer {GATEWAY_KEY}"}
    gone = retired("zhipu")
    async with gateway(tmp_path) as http:
        listed = (await http.get("/v1/models", headers=auth)).json()
        ids = {m["id"] for m in listed["data"]}
        assert "glm-4-flash" in ids and not ids & set(gone)
        name, entry = next(iter(gone.items()))
        one = await http.get(f"/v1/models/{name}", headers=auth)
        assert one.status_code == 200
        assert one.json()["shutdown_date"] == entry["retired"]
