"""``llm-bridge models`` as a subprocess: the catalogue (as the config amends it) as a plain
table and as JSON, and ``--remote``, a real authenticated ``GET /models`` to a loopback
fake where the provider's API has one."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
from cli_support import DashScopeWithModels, QianfanV2WithModels, run_cli, toml_string
from conftest import SUITE_SECRETS

from llm_bridge import OpenAI, load_config
from llm_bridge.cli._remote import list_models
from llm_bridge.testing import FakeZhipu, serve

DASHSCOPE_KEY = "sk-models-0123456789abcdef0123"
ZHIPU_KEY = "modelsid.modelssecret0123456789abcdef"
IAM_AK, IAM_SK = "ALTAKmodelsaccesskey0123", "modelsiamsecret0123456789abcdef"
SUITE_SECRETS.update({DASHSCOPE_KEY, ZHIPU_KEY, IAM_AK, IAM_SK})


def rows(out: str) -> dict[str, list[str]]:
    """Plain table rows by model name (the second column); cells split on 2+ spaces."""
    import re

    lines = out.splitlines()
    assert lines[0].split()[:3] == ["provider", "model", "kind"]
    return {cells[1]: cells for cells in (re.split(r"\s{2,}", line) for line in lines[1:])}


def test_the_catalogue_lists_context_prices_capabilities_and_retirement(tmp_path: Path) -> None:
    done = run_cli("models", "--provider", "qianfan", "--provider", "zhipu", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    table = rows(done.stdout)
    shipped = load_config({})
    expected = {**shipped.providers["qianfan"].models, **shipped.providers["zhipu"].models}
    assert set(table) == set(expected)
    flash = table["glm-4-flash"]
    info = expected["glm-4-flash"]
    limit = str(info.max_output_tokens) if info.max_output_tokens else "-"
    assert flash[:5] == ["zhipu", "glm-4-flash", "chat", str(info.context_window), limit]
    assert Decimal(flash[5]) == info.input_price and Decimal(flash[6]) == info.output_price
    assert "tools" in flash[7]
    retired = [name for name, model in expected.items() if model.retired and model.successor]
    assert retired  # Qianfan's v1-only models, retired on 2026-08-31
    model = expected[retired[0]]
    assert table[retired[0]][-1] == f"{model.retired} -> {model.successor}"
    assert "prices in CNY per million tokens" in done.stderr


def test_json_carries_the_configs_own_models_prices_and_aliases(tmp_path: Path) -> None:
    (tmp_path / "llm_bridge.toml").write_text(
        '[models]\nfast = "zhipu/glm-4-flash"\n\n'
        '[prices."zhipu/glm-4-flash"]\ninput = 0.25\noutput = 1.5\n\n'
        '[providers.zhipu.models."glm-test"]\ncontext_window = 4096\ninput_price = 3\n'
        "output_price = 4\ncapabilities = ['tools']\n",
        encoding="utf-8",
    )
    done = run_cli("models", "--provider", "zhipu", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    listing = json.loads(done.stdout)
    by_name = {m["model"]: m for m in listing["models"]}
    assert by_name["glm-4-flash"]["input_cny_per_million"] == "0.25"  # exact, as a string
    assert by_name["glm-4-flash"]["output_cny_per_million"] == "1.5"
    assert by_name["glm-test"]["context_window"] == 4096
    assert by_name["glm-test"]["capabilities"] == ["tools"]
    assert listing["aliases"] == {"fast": ["zhipu/glm-4-flash"]}
    assert listing["config"] == "llm_bridge.toml"


def dashscope_config(tmp_path: Path, url: str) -> None:
    (tmp_path / "llm_bridge.toml").write_text(
        f"[providers.dashscope]\napi_key = {toml_string(DASHSCOPE_KEY)}\n"
        f"base_url = {toml_string(url + '/compatible-mode/v1')}\n",
        encoding="utf-8",
    )


def test_remote_asks_the_provider_and_marks_what_the_catalogue_knows(tmp_path: Path) -> None:
    fake = DashScopeWithModels(DASHSCOPE_KEY, ["qwen-plus", "qwen-future-9"])
    with serve(fake) as server:
        dashscope_config(tmp_path, server.url)
        done = run_cli("models", "--remote", cwd=tmp_path)
        listed = run_cli("models", "--remote", "--json", "--provider", "dashscope", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "provider   model          owned_by  catalogued  retired",
        "dashscope  qwen-future-9  system    no          -",
        "dashscope  qwen-plus      system    yes         -",
    ]
    assert "dashscope: 2 models listed by" in done.stderr and "1 of them in the catalogue" in (
        done.stderr
    )
    request = fake.requests[0]
    assert (request.method, request.url.path) == ("GET", "/compatible-mode/v1/models")
    assert request.headers["Authorization"] == f"Bearer {DASHSCOPE_KEY}"
    (report,) = json.loads(listed.stdout)["providers"]
    assert [m["id"] for m in report["models"]] == ["qwen-future-9", "qwen-plus"]
    assert [m["catalogued"] for m in report["models"]] == [False, True]


def test_remote_names_providers_without_a_models_endpoint(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    with serve(fake) as server:
        env = {"ZHIPUAI_API_KEY": ZHIPU_KEY, "ZHIPUAI_BASE_URL": server.url + "/api/paas/v4"}
        done = run_cli("models", "--remote", "--provider", "zhipu", cwd=tmp_path, env=env)
    assert done.returncode == 0
    assert done.stdout == ""
    assert "zhipu: Zhipu AI (GLM)'s API has no models endpoint" in done.stderr
    assert fake.requests == []


def test_remote_failures_and_mistakes_have_their_exit_codes(tmp_path: Path) -> None:
    with serve(DashScopeWithModels("sk-someone-else-0123456789", [])) as server:
        dashscope_config(tmp_path, server.url)
        refused = run_cli("models", "--remote", cwd=tmp_path)
    assert refused.returncode == 1
    assert "dashscope: Error code: 401" in refused.stderr and DASHSCOPE_KEY not in refused.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_cli("models", "--remote", cwd=empty).returncode == 2  # no credential at all
    unknown = run_cli("models", "--provider", "zhipuu", cwd=empty)
    assert unknown.returncode == 2 and "did you mean 'zhipu'" in unknown.stderr


def test_listing_models_with_iam_keys_mints_a_token_first() -> None:
    fake = QianfanV2WithModels(None, ["ernie-4.5-turbo-128k"], access_key=IAM_AK, secret_key=IAM_SK)
    client = OpenAI(
        provider="qianfan",
        config={"providers": {"qianfan": {"iam_access_key": IAM_AK, "iam_secret_key": IAM_SK}}},
        http_client=httpx.Client(transport=fake.transport()),
    )
    assert [m["id"] for m in list_models(client, "qianfan")] == ["ernie-4.5-turbo-128k"]
    token_request, listing = fake.requests
    assert token_request.url.host == "iam.bj.baidubce.com"
    assert listing.headers["Authorization"] == f"Bearer {fake.issued_tokens[0]}"
    SUITE_SECRETS.update(fake.issued_tokens)
