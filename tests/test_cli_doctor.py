"""``llm-bridge doctor`` as a subprocess against loopback fakes: the config it finds, the
credentials it shows (masked), the one cheap call per provider, and the region probing
that names the config line for the region that accepts a key.

Region probing needs each region's root to be a different fake: the user's config
replaces a provider's ``[[endpoints]]`` rows (a documented way to reach a provider
through per-region proxies), and doctor probes the configured rows.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Optional

from cli_support import DashScopeWithModels, QianfanV2WithModels, run_cli, toml_string
from conftest import SUITE_SECRETS

from llm_bridge.testing import FakeZhipu, LoopbackServer, serve

DASHSCOPE_KEY = "sk-doctor-intl-0123456789abcdef"
OTHER_DASHSCOPE_KEY = "sk-doctor-beijing-0123456789abcd"
ZHIPU_KEY = "doctorid.doctorsecret0123456789abcdef"
OTHER_ZHIPU_KEY = "otherid.othersecret0123456789abcdef"
QIANFAN_KEY = "bce-v3/ALTAK-doctorkey0123456789/abcdef0123456789abcdef"
APP_KEY = "AbCdEfGhIjKlMnOpQrStUvWx"  # an application API Key's form: 24 letters and digits
APP_SECRET = "appsecret0123456789abcdefghijklmn"
SUITE_SECRETS.update(
    {DASHSCOPE_KEY, OTHER_DASHSCOPE_KEY, ZHIPU_KEY, OTHER_ZHIPU_KEY, QIANFAN_KEY, APP_SECRET}
)


def endpoints(provider: str, api: str, rows: dict[str, str]) -> str:
    """``[[providers.P.endpoints]]`` rows, one per region -> root."""
    labels = {"cn": "Beijing test fake", "intl": "Singapore test fake", "us": "US test fake"}
    return "".join(
        f"\n[[providers.{provider}.endpoints]]\napi = {toml_string(api)}\n"
        f"region = {toml_string(region)}\nurl = {toml_string(url)}\n"
        f"label = {toml_string(labels[region])}\n"
        for region, url in rows.items()
    )


def dashscope_config(
    tmp_path: Path, cn: LoopbackServer, intl: LoopbackServer, region: str = "cn"
) -> Path:
    path = tmp_path / "llm_bridge.toml"
    path.write_text(
        f"[providers.dashscope]\napi_key = {toml_string(DASHSCOPE_KEY)}\n"
        f"region = {toml_string(region)}\n"
        + endpoints(
            "dashscope",
            "compatible",
            {"cn": cn.url + "/compatible-mode/v1", "intl": intl.url + "/compatible-mode/v1"},
        ),
        encoding="utf-8",
    )
    return path


def lines(out: str, verdict: str, check: str) -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{verdict:<4}  {check}:")]


def test_a_key_rejected_in_its_region_is_found_in_another_and_the_fix_works(
    tmp_path: Path,
) -> None:
    cn_fake = DashScopeWithModels(OTHER_DASHSCOPE_KEY, ["qwen-plus"])
    intl_fake = DashScopeWithModels(DASHSCOPE_KEY, ["qwen-plus", "qwen-max"])
    with serve(cn_fake) as cn, serve(intl_fake) as intl:
        config = dashscope_config(tmp_path, cn, intl)
        done = run_cli("doctor", "--provider", "dashscope", cwd=tmp_path)
        assert done.returncode == 1, done.stderr
        (finding,) = lines(done.stdout, "fail", "dashscope")
        assert "rejected at Beijing test fake" in finding
        assert "accepted at Singapore test fake" in finding and "(GET /models)" in finding
        assert finding.endswith('fix: write region = "intl" under [providers.dashscope]')
        # One authenticated GET /models at each region, with the same key.
        for fake in (cn_fake, intl_fake):
            (request,) = fake.requests
            assert request.method == "GET" and request.url.path == "/compatible-mode/v1/models"
            assert request.headers["Authorization"] == f"Bearer {DASHSCOPE_KEY}"
        # The line doctor printed, written into the config, is the cure.
        text = config.read_text(encoding="utf-8").replace('region = "cn"', 'region = "intl"', 1)
        config.write_text(text, encoding="utf-8")
        again = run_cli("doctor", "--provider", "dashscope", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    (accepted,) = [line for line in lines(again.stdout, "ok", "dashscope") if "accepted" in line]
    assert "Singapore test fake" in accepted and "2 models listed" in accepted
    assert len(cn_fake.requests) == 1  # the second run went straight to the right region


def test_zhipu_is_checked_with_a_one_token_chat_and_probed_by_region(tmp_path: Path) -> None:
    cn_fake, intl_fake = FakeZhipu(api_key=OTHER_ZHIPU_KEY), FakeZhipu(api_key=ZHIPU_KEY)
    with serve(cn_fake) as cn, serve(intl_fake) as intl:
        (tmp_path / "llm_bridge.toml").write_text(
            f"[providers.zhipu]\napi_key = {toml_string(ZHIPU_KEY)}\n"
            + endpoints(
                "zhipu", "v4", {"cn": cn.url + "/api/paas/v4", "intl": intl.url + "/api/paas/v4"}
            ),
            encoding="utf-8",
        )
        done = run_cli("doctor", "--provider", "zhipu", cwd=tmp_path)
    assert done.returncode == 1
    (finding,) = lines(done.stdout, "fail", "zhipu")
    assert "a 1-token chat with glm-4-flash" in finding  # Zhipu's v4 API lists no models
    assert finding.endswith('fix: write region = "intl" under [providers.zhipu]')
    (probe,) = intl_fake.requests
    body = json.loads(probe.content)
    assert probe.url.path == "/api/paas/v4/chat/completions"
    assert body["model"] == "glm-4-flash" and body["max_tokens"] == 1
    assert len(cn_fake.requests) == 1


def test_a_key_rejected_everywhere_says_to_check_the_key(tmp_path: Path) -> None:
    with (
        serve(DashScopeWithModels(OTHER_DASHSCOPE_KEY, [])) as cn,
        serve(DashScopeWithModels(OTHER_DASHSCOPE_KEY, [])) as intl,
    ):
        dashscope_config(tmp_path, cn, intl)
        done = run_cli("doctor", "--provider", "dashscope", "--json", cwd=tmp_path)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["exit_code"] == 1
    (failure,) = [f for f in report["findings"] if f["verdict"] == "fail"]
    assert "also rejected at Singapore test fake" in failure["finding"]
    assert "invalid_api_key" in failure["finding"]  # the provider's own answer is shown
    assert failure["fix"].startswith("check the key")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def test_an_unreachable_provider_fails_without_probing_other_regions(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/api/paas/v4"
    intl_fake = FakeZhipu(api_key=ZHIPU_KEY)
    with serve(intl_fake) as intl:
        (tmp_path / "llm_bridge.toml").write_text(
            f"[providers.zhipu]\napi_key = {toml_string(ZHIPU_KEY)}\n"
            + endpoints("zhipu", "v4", {"cn": dead, "intl": intl.url + "/api/paas/v4"}),
            encoding="utf-8",
        )
        done = run_cli("doctor", "--provider", "zhipu", "--timeout", "5", cwd=tmp_path)
    assert done.returncode == 1
    (finding,) = lines(done.stdout, "fail", "zhipu")
    assert "Connection error" in finding and "fix: check the network" in finding
    assert intl_fake.requests == []  # an outage says nothing about the key's region


def test_an_account_in_arrears_fails_with_its_own_fix(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY).fail("arrears")
    with serve(fake) as server:
        done = run_cli(
            "doctor",
            "--provider",
            "zhipu",
            cwd=tmp_path,
            env={"ZHIPUAI_API_KEY": ZHIPU_KEY, "ZHIPUAI_BASE_URL": server.url + "/api/paas/v4"},
        )
    assert done.returncode == 1
    (finding,) = lines(done.stdout, "fail", "zhipu")
    assert "key accepted, but the account cannot pay" in finding and "top up" in finding


def test_offline_shows_where_each_credential_comes_from_masked(tmp_path: Path) -> None:
    fake = FakeZhipu(api_key=ZHIPU_KEY)
    with serve(fake) as server:
        root = server.url + "/api/paas/v4"
        done = run_cli(
            "doctor",
            "--offline",
            cwd=tmp_path,
            env={
                "ZHIPUAI_API_KEY": ZHIPU_KEY,
                "ZHIPUAI_BASE_URL": root,
                "QIANFAN_API_KEY": QIANFAN_KEY,
            },
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert fake.requests == []  # offline: no call
    (config,) = lines(done.stdout, "ok", "config")
    assert "no config file" in config
    (zhipu,) = lines(done.stdout, "ok", "zhipu")
    assert f"api_key doct… ({len(ZHIPU_KEY)} characters) from ZHIPUAI_API_KEY" in zhipu
    assert f"sent to {root}" in zhipu  # the variable's root
    (qianfan,) = lines(done.stdout, "ok", "qianfan")
    assert "api_key bce-… " in qianfan and "from QIANFAN_API_KEY" in qianfan
    assert lines(done.stdout, "skip", "dashscope") and lines(done.stdout, "skip", "openai")
    for secret in (ZHIPU_KEY, "doctorsecret", QIANFAN_KEY):
        assert secret not in done.stdout + done.stderr


def test_qianfan_application_keys_get_the_v1_closure_explained(tmp_path: Path) -> None:
    done = run_cli(
        "doctor",
        "--provider",
        "qianfan",
        cwd=tmp_path,
        env={"QIANFAN_AK": APP_KEY, "QIANFAN_SK": APP_SECRET},
    )
    assert done.returncode == 1
    (finding,) = lines(done.stdout, "fail", "qianfan")
    assert "from QIANFAN_AK" in finding and "from QIANFAN_SK" in finding
    assert "v1 API, shut down on 2026-08-31" in finding
    assert "fix: create a v2 API key" in finding and "QIANFAN_API_KEY" in finding
    assert APP_KEY not in done.stdout and APP_SECRET not in done.stdout


def test_qianfan_v2_keys_are_checked_by_listing_models(tmp_path: Path) -> None:
    fake = QianfanV2WithModels(QIANFAN_KEY, ["ernie-4.5-turbo-128k", "deepseek-v3"])
    with serve(fake) as server:
        (tmp_path / "llm_bridge.toml").write_text(
            f"[providers.qianfan]\nbase_url = {toml_string(server.url + '/v2')}\n",
            encoding="utf-8",
        )
        done = run_cli("doctor", cwd=tmp_path, env={"QIANFAN_API_KEY": QIANFAN_KEY})
    assert done.returncode == 0, done.stdout
    (accepted,) = [line for line in lines(done.stdout, "ok", "qianfan") if "accepted" in line]
    assert "GET /models: 2 models listed" in accepted
    assert fake.requests[0].headers["Authorization"] == f"Bearer {QIANFAN_KEY}"


def test_a_coding_plan_key_off_its_plan_fails_before_any_call(tmp_path: Path) -> None:
    key = "sk-sp-doctorcodingplan0123456789"
    SUITE_SECRETS.add(key)
    done = run_cli("doctor", cwd=tmp_path, env={"DASHSCOPE_API_KEY": key})
    assert done.returncode == 1
    (finding,) = lines(done.stdout, "fail", "dashscope")
    assert "Coding Plan" in finding and 'plan = "coding"' in finding
    assert key not in done.stdout


def test_no_credential_anywhere_is_a_failure(tmp_path: Path) -> None:
    done = run_cli("doctor", "--offline", cwd=tmp_path)
    assert done.returncode == 1
    assert lines(done.stdout, "fail", "credentials")


def config_error(tmp_path: Path, text: str, *args: str) -> tuple[int, str]:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    done = run_cli("doctor", "--config", str(path), *args, cwd=tmp_path)
    return done.returncode, done.stdout


def test_config_mistakes_exit_2_naming_the_file_and_key(tmp_path: Path) -> None:
    code, out = config_error(tmp_path, '[providers.zhipu]\napi_kee = "x"\n')
    assert code == 2
    (finding,) = lines(out, "fail", "config")
    assert "bad.toml: providers.zhipu.api_kee: unknown key; did you mean 'api_key'" in finding
    code, out = config_error(tmp_path, "[providers.dashscope]\nregion = 'mars'\n")
    assert code == 2 and "expected one of ['cn', 'hk', 'intl', 'us']" in out
    code, out = config_error(tmp_path, 'on_usage = "no_such_module:record"\n', "--offline")
    assert code == 2 and "on_usage: cannot import 'no_such_module:record'" in out
    (tmp_path / "billing.py").write_text("def record(usage):\n    pass\n", encoding="utf-8")
    code, out = config_error(tmp_path, 'on_usage = "billing:record"\n', "--offline")
    assert "valid; on_usage 'billing:record' imports" in out
    missing = run_cli("doctor", "--config", "nowhere.toml", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere.toml (--config): no such file" in missing.stdout
    assert run_cli("doctor", "--provider", "nope", cwd=tmp_path).returncode == 2


def test_a_gateway_config_is_checked_with_its_gateway_table(tmp_path: Path) -> None:
    text = (
        f"[providers.zhipu]\napi_key = {toml_string(ZHIPU_KEY)}\n\n[gateway]\n"
        'ledger = "none"\n[gateway.keys.team]\n'
        'key_sha256 = "' + "0" * 64 + '"\nmodels = ["*"]\n'
    )
    code, out = config_error(tmp_path, text, "--offline")
    assert code == 0, out
    (gateway,) = lines(out, "ok", "gateway")
    assert "1 key(s)" in gateway and "ledger none" in gateway
    code, out = config_error(tmp_path, text.replace("[gateway.keys.team]", "[gateway.keys.x y]"))
    assert code == 2


def test_doctor_json_lists_every_finding(tmp_path: Path) -> None:
    done = run_cli(
        "doctor", "--offline", "--json", cwd=tmp_path, env={"ZHIPUAI_API_KEY": ZHIPU_KEY}
    )
    report = json.loads(done.stdout)
    verdicts: dict[str, Optional[str]] = {f["check"]: f["verdict"] for f in report["findings"]}
    assert verdicts == {
        "config": "ok",
        "dashscope": "skip",
        "openai": "skip",
        "qianfan": "skip",
        "zhipu": "ok",
    }
    assert report["config"] is None and report["exit_code"] == done.returncode == 0
