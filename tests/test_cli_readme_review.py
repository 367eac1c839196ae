"""Defects a reviewer found by following the README, each pinned by a command run.

- ``doctor`` took any answer to ``GET /models`` but a 401 as proof of the key ("key
  accepted; GET /models then failed: 404"), so a key the provider refuses was called
  accepted where the root serves no list; only a list verifies a key now, and anything
  but a 401/403 falls back to the 1-token chat (region probing included). ``models
  --remote`` says plainly that such a root serves no list. The OpenAI-wire fakes list
  their models where the real APIs do (DashScope compatible mode, Qianfan v2; not
  Zhipu's v4), so the README's doctor example is reproducible with stock fakes.
- ``doctor`` and ``migrate``'s starter config advertised ``QIANFAN_AK``, an application
  key of the closed v1 API that the client refuses.
- ``usage --config`` needed the providers' ``${VAR}`` keys to find the ledger.
- ``migrate`` missed the model named as an environment read's default when a ``.env``
  set the variable to another model.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from pathlib import Path

import httpx
from cli_support import run_cli, toml_string
from conftest import SUITE_SECRETS

from llm_bridge import load_config
from llm_bridge.cli._remote import cheapest_chat_model
from llm_bridge.gateway import LedgerEntry, SQLiteLedger
from llm_bridge.testing import (
    FakeDashScopeCompatible,
    FakeProvider,
    FakeQianfanV2,
    FakeZhipu,
    LoopbackServer,
    serve,
)

KEY = "sk-review-intl-0123456789abcdef012"
OTHER_KEY = "sk-review-beijing-0123456789abcdef"
QIANFAN_KEY = "bce-v3/ALTAK-reviewkey0123456789/abcdef0123456789abcdef"
SUITE_SECRETS.update({KEY, OTHER_KEY, QIANFAN_KEY})
README_MODELS = {"qwen-flash", "qwen-max", "qwen-plus", "qwen3-coder-plus"}
#: The model of doctor's 1-token chat on DashScope (the catalogue's cheapest).
CHEAPEST = cheapest_chat_model(load_config(), "dashscope")


class NoModelList(FakeDashScopeCompatible):
    """A compatible-mode root that serves no ``GET /models`` (a proxy, a private
    deployment): 404 there, as the reviewer's fake answered."""

    lists_models = False


def regions(tmp_path: Path, cn: LoopbackServer, intl: LoopbackServer, region: str = "cn") -> Path:
    """A config sending DashScope to ``region``, with one ``[[endpoints]]`` row per fake."""
    rows = "".join(
        f'\n[[providers.dashscope.endpoints]]\napi = "compatible"\nregion = "{name}"\n'
        f"url = {toml_string(server.url + '/compatible-mode/v1')}\n"
        f"label = {toml_string(label)}\n"
        for name, label, server in (
            ("cn", "China (Beijing)", cn),
            ("intl", "Singapore (international)", intl),
        )
    )
    path = tmp_path / "llm_bridge.toml"
    path.write_text(
        f"[providers.dashscope]\napi_key = {toml_string(KEY)}\n"
        f"region = {toml_string(region)}\n{rows}",
        encoding="utf-8",
    )
    return path


def finding(out: str, verdict: str, check: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{verdict:<4}  {check}:")]


def paths(fake: FakeDashScopeCompatible) -> list[tuple[str, str]]:
    return [(r.method, r.url.path.removeprefix("/compatible-mode/v1")) for r in fake.requests]


# --------------------------------------------------------------------------- 1: doctor


def test_a_404_from_get_models_verifies_nothing_the_chat_decides(tmp_path: Path) -> None:
    fake = NoModelList(KEY)
    with serve(fake) as server:
        regions(tmp_path, server, server)
        done = run_cli("doctor", "--provider", "dashscope", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (accepted,) = [line for line in finding(done.stdout, "ok", "dashscope") if "accepted" in line]
    assert f"(GET /models answered 404, so a 1-token chat with {CHEAPEST}: answered)" in accepted
    assert "then failed" not in done.stdout
    assert paths(fake) == [("GET", "/models"), ("POST", "/chat/completions")]
    chat = json.loads(fake.requests[1].content)
    assert chat["model"] == CHEAPEST, chat
    assert 1 in (chat.get("max_tokens"), chat.get("max_completion_tokens")), chat


def test_a_refused_key_behind_a_404_is_refused_and_found_in_its_region(tmp_path: Path) -> None:
    """The reviewer's case: the key is Singapore's, the config says Beijing, neither root
    lists models. Doctor used to call the key accepted (exit 0) and probe nothing."""
    beijing, singapore = NoModelList(OTHER_KEY), NoModelList(KEY)
    with serve(beijing) as cn, serve(singapore) as intl:
        regions(tmp_path, cn, intl)
        done = run_cli("doctor", "--provider", "dashscope", cwd=tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    (refused,) = finding(done.stdout, "fail", "dashscope")
    assert "key rejected at China (Beijing)" in refused
    assert "accepted at Singapore (international)" in refused
    assert f"(GET /models answered 404, so a 1-token chat with {CHEAPEST})" in refused
    assert refused.endswith('fix: write region = "intl" under [providers.dashscope]')
    assert "key accepted;" not in done.stdout
    assert paths(beijing) == [("GET", "/models"), ("POST", "/chat/completions")]
    assert paths(singapore) == [("GET", "/models"), ("POST", "/chat/completions")]


def test_a_server_error_on_get_models_falls_back_to_the_chat(tmp_path: Path) -> None:
    fake = FakeDashScopeCompatible(KEY)
    fake.fail("server_error")  # the listing's answer: 500
    with serve(fake) as server:
        regions(tmp_path, server, server)
        done = run_cli("doctor", "--provider", "dashscope", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"(GET /models answered 500, so a 1-token chat with {CHEAPEST}: answered)" in done.stdout
    assert paths(fake) == [("GET", "/models"), ("POST", "/chat/completions")]


def test_the_readme_doctor_example_runs_with_stock_fakes(tmp_path: Path) -> None:
    """README "How doctor checks a key": two stock FakeDashScopeCompatible on loopback
    for Beijing and Singapore; the key is Singapore's, the config says Beijing."""
    with (
        serve(FakeDashScopeCompatible(OTHER_KEY, model_names=README_MODELS)) as cn,
        serve(FakeDashScopeCompatible(KEY, model_names=README_MODELS)) as intl,
    ):
        config = regions(tmp_path, cn, intl)
        singapore = f"Singapore (international) {intl.url}/compatible-mode/v1"
        first = run_cli("doctor", cwd=tmp_path)
        text = config.read_text(encoding="utf-8").replace('region = "cn"', 'region = "intl"', 1)
        config.write_text(text, encoding="utf-8")
        again = run_cli("doctor", "--provider", "dashscope", cwd=tmp_path)
        listed = run_cli("models", "--remote", cwd=tmp_path)
    assert first.returncode == 1, first.stdout + first.stderr
    (refused,) = finding(first.stdout, "fail", "dashscope")
    assert refused.endswith(
        f'accepted at {singapore} (GET /models)  fix: write region = "intl" under '
        "[providers.dashscope]"
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert finding(again.stdout, "ok", "dashscope")[-1] == (
        f"ok    dashscope: key accepted at {singapore} (GET /models: 4 models listed)"
    )
    assert listed.returncode == 0, listed.stderr
    assert "dashscope: 4 models listed by Singapore (international)" in listed.stderr
    assert [line.split()[1] for line in listed.stdout.splitlines()[1:]] == sorted(README_MODELS)


def test_models_remote_says_a_root_serves_no_list(tmp_path: Path) -> None:
    with serve(NoModelList(KEY)) as server:
        regions(tmp_path, server, server)
        root = f"{server.url}/compatible-mode/v1"
        done = run_cli("models", "--remote", "--provider", "dashscope", cwd=tmp_path)
        as_json = run_cli("models", "--remote", "--provider", "dashscope", "--json", cwd=tmp_path)
    assert done.returncode == 1
    assert (
        f"dashscope: China (Beijing), standard plan, compatible API ({root}) "
        "serves no model list (GET /models answered 404): the catalogue "
        "(llm-bridge models --provider dashscope) is what llm-bridge knows"
    ) in done.stderr
    assert "Error code: 404" not in done.stderr
    assert as_json.returncode == 1
    (report,) = json.loads(as_json.stdout)["providers"]
    assert "serves no model list" in report["error"]


# --------------------------------------------------------------------------- 1: the fakes


def test_the_fakes_list_models_where_the_real_apis_do() -> None:
    from llm_bridge.testing._openai_wire import catalogue_chat_models

    dashscope = FakeDashScopeCompatible(KEY)
    qianfan = FakeQianfanV2(QIANFAN_KEY)
    zhipu = FakeZhipu("reviewid.reviewsecret0123456789")

    def get(fake: FakeProvider, key: str) -> httpx.Response:
        with httpx.Client(transport=fake.transport()) as client:
            return client.get(f"{fake.base_url}/models", headers={"Authorization": f"Bearer {key}"})

    listed = get(dashscope, KEY)
    assert listed.status_code == 200
    body = listed.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == catalogue_chat_models(dashscope.base_url)
    assert {"qwen-plus", "qwen-flash"} <= {m["id"] for m in body["data"]}
    assert body["data"][0] == {
        "id": body["data"][0]["id"],
        "object": "model",
        "created": 0,
        "owned_by": "system",
    }
    assert get(dashscope, OTHER_KEY).status_code == 401  # the key is checked as elsewhere
    chosen = FakeDashScopeCompatible(KEY, model_names={"qwen-max", "qwen-plus"})
    assert [m["id"] for m in get(chosen, KEY).json()["data"]] == ["qwen-max", "qwen-plus"]
    spec = load_config().provider("qianfan")
    v2 = get(qianfan, QIANFAN_KEY).json()["data"]
    assert v2 and all(m["owned_by"] == "" for m in v2)  # Qianfan v2 documents ""
    assert all(not spec.models[m["id"]].retired for m in v2)  # v1-only models are gone
    assert get(qianfan, "bce-v3/wrong").status_code == 401
    assert get(zhipu, "reviewid.reviewsecret0123456789").status_code == 404  # v4: no list


# --------------------------------------------------------------------------- 2: Qianfan keys


def test_doctor_and_migrate_name_only_the_qianfan_keys_the_client_takes(tmp_path: Path) -> None:
    ways = "QIANFAN_API_KEY, or QIANFAN_ACCESS_KEY/QIANFAN_SECRET_KEY"
    done = run_cli("doctor", "--offline", cwd=tmp_path)
    (skipped,) = finding(done.stdout, "skip", "qianfan")
    expected = f"no credential (set {ways}, or api_key under [providers.qianfan])"
    assert skipped == f"skip  qianfan: {expected}"
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        'from openai import OpenAI\nOpenAI().chat.completions.create(model="gpt-4o", '
        'messages=[{"role": "user", "content": "hi"}])\n',
        encoding="utf-8",
    )
    starter = tmp_path / "starter.toml"
    migrated = run_cli("migrate", str(code), "--config-out", str(starter), cwd=tmp_path)
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    comment = " ".join(
        line.removeprefix("#").strip()
        for line in starter.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    )
    assert f"{ways} (qianfan)" in comment
    assert "QIANFAN_AK" not in starter.read_text(encoding="utf-8") + done.stdout


def test_application_keys_are_named_only_for_a_v1_deployment() -> None:
    from llm_bridge.cli._config_file import credential_variables

    shipped = load_config().provider("qianfan")
    assert credential_variables(shipped) == [
        "QIANFAN_API_KEY",
        "QIANFAN_ACCESS_KEY/QIANFAN_SECRET_KEY",
    ]
    v1 = load_config({"providers": {"qianfan": {"api": "v1"}}}).provider("qianfan")
    assert "QIANFAN_AK/QIANFAN_SK" in credential_variables(v1)
    assert credential_variables(load_config().provider("zhipu")) == ["ZHIPUAI_API_KEY"]


# --------------------------------------------------------------------------- 3: usage


def test_usage_reads_the_ledger_without_the_providers_keys(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite"

    async def write() -> None:
        sink = SQLiteLedger(ledger)
        await sink.write(
            LedgerEntry(
                request_id="req-1",
                at=1796083200.0,  # 2026-12-01 UTC
                key="team-a",
                model="fast",
                provider="zhipu",
                upstream_model="glm-4-flash",
                prompt_tokens=10,
                completion_tokens=5,
                cost_cny=Decimal("0"),
                status=200,
            )
        )
        await sink.close()

    asyncio.run(write())
    config = tmp_path / "llm_bridge.toml"
    config.write_text(
        '[providers.zhipu]\napi_key = "${ZHIPUAI_API_KEY}"\n\n'
        '[providers.dashscope]\napi_key = "${DASHSCOPE_API_KEY}"\n\n'
        f"[gateway]\nledger = {toml_string(str(ledger))}\n\n"
        f"[gateway.keys.team-a]\nkey_sha256 = {toml_string('0' * 64)}\n",
        encoding="utf-8",
    )
    done = run_cli("usage", "--config", str(config), "--month", "2026-12", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ledger"] == str(ledger) and report["total"]["requests"] == 1
    # The gateway's own settings are still resolved, and their errors named.
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "[gateway]\n", '[gateway]\nstate = "${REVIEW_REDIS_URL}"\n', 1
        ),
        encoding="utf-8",
    )
    unset = run_cli("usage", "--config", str(config), cwd=tmp_path)
    assert unset.returncode == 2
    assert "gateway.state: environment variable REVIEW_REDIS_URL is not set" in unset.stderr
    plain = tmp_path / "client.toml"
    plain.write_text('[providers.zhipu]\napi_key = "${ZHIPUAI_API_KEY}"\n', encoding="utf-8")
    none = run_cli("usage", "--config", str(plain), cwd=tmp_path)
    assert none.returncode == 2
    assert "no [gateway] table" in none.stderr and "--ledger" in none.stderr


# --------------------------------------------------------------------------- 4: migrate


def test_migrate_aliases_the_defaults_of_environment_reads(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / ".env").write_text("OPENAI_MODEL=gpt-4.1\n", encoding="utf-8")
    (code / "app.py").write_text(
        "import os\n"
        "from os import environ, getenv\n"
        "from openai import OpenAI\n"
        "\n"
        'MODEL = os.getenv("OPENAI_MODEL", "gpt-4o")\n'
        'SMALL = environ.get("SMALL_MODEL", default="gpt-4o-mini")\n'
        'REASONER = getenv("REASONER") or "o3-mini"\n'
        'HOST = os.getenv("OPENAI_HOST", "localhost")\n'
        "client = OpenAI()\n"
        "client.chat.completions.create(\n"
        '    model=os.environ.get("CHAT_MODEL", "gpt-4-turbo"),\n'
        '    messages=[{"role": "user", "content": "hi"}],\n'
        ")\n",
        encoding="utf-8",
    )
    starter = tmp_path / "starter.toml"
    done = run_cli("migrate", str(code), "--config-out", str(starter), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    aliases = load_config(starter).aliases
    assert {"gpt-4.1", "gpt-4o", "gpt-4o-mini", "o3-mini", "gpt-4-turbo"} <= set(aliases)
    assert "localhost" not in aliases
    text = starter.read_text(encoding="utf-8")
    assert "# gpt-4o (app.py:5)" in text and "# gpt-4-turbo (app.py:11)" in text
