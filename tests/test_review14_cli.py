"""Review 14 of the command line, as a team moving a codebase would use it: ``migrate`` on
Azure clients made through the module, symlinks, notebooks, large data modules, langchain
and ``base_url=`` clients; ``doctor`` on a Coding Plan endpoint; ``chat`` on stdin that is
not UTF-8. Everything runs offline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_support import run_cli
from conftest import MACHINE_VARIABLES, SUITE_SECRETS

from llm_bridge.cli import _migrate

pytest.importorskip("libcst")

ZHIPU_KEY = "reviewid.review14secret0123456789"
SUITE_SECRETS.add(ZHIPU_KEY)


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """``llm-bridge migrate ARGS --json`` in this process: its exit code and report."""
    code = _migrate.main([*args, "--json", "--no-progress"])
    return code, json.loads(capsys.readouterr().out)


def file_findings(data: dict[str, Any], file: str) -> list[dict[str, Any]]:
    return [f for f in data["file_findings"] if f["file"] == file]


# --------------------------------------------------------------------------- migrate


def test_an_azure_client_made_through_the_module_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "app.py").write_text(
        "import openai\n\n"
        'az = openai.AzureOpenAI(api_version="2024-02-01", azure_endpoint="https://x")\n'
    )
    code, data = migrate(capsys, str(tmp_path))
    found = file_findings(data, "app.py")
    assert [(f["line"], f["severity"]) for f in found] == [(3, "blocks")]
    assert "Azure" in found[0]["message"]
    assert code == _migrate.EXIT_BLOCKED


def test_write_never_follows_a_symlinked_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = "from openai import OpenAI\nclient = OpenAI()\n"
    outside = tmp_path / "elsewhere.py"
    outside.write_text(source)
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "app.py").write_text(source)
    (tree / "outside.py").symlink_to(outside)
    (tree / "again.py").symlink_to(tree / "app.py")
    code, data = migrate(capsys, str(tree), "--write")
    assert outside.read_text() == source  # not the user's to rewrite: outside PATH
    assert (tree / "outside.py").is_symlink() and (tree / "again.py").is_symlink()
    assert data["skipped_symlinks"] == ["again.py", "outside.py"]
    assert [r["file"] for r in data["rewrites"]] == ["app.py"]  # once, not through the link
    assert data["summary"]["call_sites"] == 1
    assert code == _migrate.EXIT_OK


def test_a_notebook_is_reported_by_cell_and_never_rewritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": ["# demo"]},
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": ["%pip install openai\n", "from openai import OpenAI\n", "c = OpenAI()"],
        },
        {
            "cell_type": "code",
            "metadata": {},
            "outputs": [],
            "execution_count": None,
            "source": [
                "!ls\n",
                'c.images.generate(model="dall-e-3", prompt="""Why?\n',
                'A cat."""\n',
                ")",
            ],
        },
    ]
    notebook = json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    (tmp_path / "demo.ipynb").write_text(notebook)
    code, data = migrate(capsys, str(tmp_path), "--write")
    assert (tmp_path / "demo.ipynb").read_text() == notebook
    sites = [(s["file"], s["line"], s["call"], s["status"]) for s in data["call_sites"]]
    assert sites == [
        ("demo.ipynb cell 1", 3, "OpenAI", "ok"),
        ("demo.ipynb cell 2", 2, "images.generate", "blocks"),
    ]
    [note] = file_findings(data, "demo.ipynb")
    assert note["severity"] == "changes" and "llm_bridge" in note["message"]
    assert data["models"]["dall-e-3"]["found_at"] == ["demo.ipynb cell 2:2"]
    assert data["rewrites"] == []
    assert code == _migrate.EXIT_BLOCKED


def test_a_module_that_never_mentions_openai_is_not_parsed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """libcst takes minutes on a large generated data module; nothing is in it to find."""
    import libcst

    from llm_bridge.cli._migrate_check import openai_api
    from llm_bridge.cli._migrate_scan import scan_source

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed a file with nothing to find")

    monkeypatch.setattr(libcst, "parse_module", refuse)
    source = b"DATA = [\n" + b'    {"id": 1, "name": "item"},\n' * 1000 + b"]\n"
    scan = scan_source("data.py", source, openai_api())
    assert scan.error is None and scan.calls == [] and scan.rewritten is None


def test_a_langchain_chat_model_is_named_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "chain.py").write_text(
        "from langchain_openai import ChatOpenAI, OpenAIEmbeddings\n"
        "import llm_bridge\n"
        "llm = ChatOpenAI(model=MODEL)\n"
        'emb = OpenAIEmbeddings(model="x", http_client=llm_bridge.http_client())\n'
    )
    _, data = migrate(capsys, str(tmp_path))
    found = file_findings(data, "chain.py")
    assert [(f["line"], f["severity"]) for f in found] == [(3, "changes")]
    assert "http_client=llm_bridge.http_client()" in found[0]["message"]


def test_a_client_with_a_base_url_llm_bridge_does_not_know_is_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """llm_bridge.OpenAI(base_url=<unknown root>) sends every request there as provider
    "openai": the model routes the report shows for its calls would not hold."""
    (tmp_path / "app.py").write_text(
        "import os\n"
        "from openai import OpenAI\n"
        'a = OpenAI(base_url="https://api.openai.com/v1")\n'
        'b = OpenAI(base_url=os.environ["BASE"])\n'
        'c = OpenAI(base_url="https://open.bigmodel.cn/api/paas/v4")\n'
    )
    _, data = migrate(capsys, str(tmp_path))
    verdicts = {s["line"]: (s["status"], s["findings"]) for s in data["call_sites"]}
    status, findings = verdicts[3]
    assert status == "changes" and findings[0]["param"] == "base_url"
    assert "api.openai.com" in findings[0]["message"]
    assert [f["severity"] for f in verdicts[4][1]] == ["note"]
    assert verdicts[5] == ("ok", [])


def test_model_names_in_settings_files_get_an_alias(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Code that reads its model from YAML or .env passes a value the scan cannot see;
    the starter config must alias it all the same, or the call routes to no provider."""
    (tmp_path / "app.py").write_text(
        "import os\nfrom openai import OpenAI\n"
        'OpenAI().chat.completions.create(model=os.environ["OPENAI_MODEL"], messages=[])\n'
    )
    (tmp_path / ".env").write_text("OPENAI_API_KEY=sk-x\nOPENAI_MODEL=gpt-4.1\n")
    (tmp_path / "settings.yaml").write_text("llm:\n  model: o3-mini  # reasoning\n")
    (tmp_path / "llm_bridge.toml.example").write_text("nothing: here\n")
    _, data = migrate(capsys, str(tmp_path), "--write")
    assert data["models"]["gpt-4.1"]["found_at"] == [".env:2"]
    assert data["models"]["o3-mini"]["found_at"] == ["settings.yaml:2"]
    config = (tmp_path / "llm_bridge.toml").read_text()
    assert '"gpt-4.1" = ' in config and '"o3-mini" = ' in config
    assert (tmp_path / ".env").read_text() == "OPENAI_API_KEY=sk-x\nOPENAI_MODEL=gpt-4.1\n"
    assert data["summary"]["files_scanned"] == 1  # Python files: settings are only read


# --------------------------------------------------------------------------- doctor


def test_doctor_warns_of_a_coding_plan_endpoint_as_a_finding(tmp_path: Path) -> None:
    (tmp_path / "llm_bridge.toml").write_text('[providers.zhipu]\nplan = "coding"\n')
    done = run_cli(
        "doctor",
        "--offline",
        "--provider",
        "zhipu",
        "--json",
        cwd=tmp_path,
        env={"ZHIPUAI_API_KEY": ZHIPU_KEY},
    )
    assert done.returncode == 0, done.stderr
    findings = json.loads(done.stdout)["findings"]
    warned = [f for f in findings if f["verdict"] == "warn" and f["check"] == "zhipu"]
    assert len(warned) == 1 and "Coding Plan" in warned[0]["finding"]
    assert 'plan = "coding"' in warned[0]["fix"]
    assert "Coding Plan" not in done.stderr  # said once, as a finding


# --------------------------------------------------------------------------- chat


@pytest.mark.parametrize("encoding", ["utf-8", None])
def test_chat_refuses_stdin_that_is_not_utf8_text(tmp_path: Path, encoding: Any) -> None:
    env = {k: v for k, v in os.environ.items() if k not in MACHINE_VARIABLES}
    env.pop("PYTHONIOENCODING", None)
    env.update({"ZHIPUAI_API_KEY": ZHIPU_KEY, "LC_ALL": "C.UTF-8"})
    env["ZHIPUAI_BASE_URL"] = "http://127.0.0.1:9/api/paas/v4"  # never the real API
    if encoding:
        env["PYTHONIOENCODING"] = encoding
    done = subprocess.run(
        [sys.executable, "-m", "llm_bridge", "chat", "glm-4-flash"],
        cwd=tmp_path,
        env=env,
        input="你好".encode("gbk"),
        capture_output=True,
        timeout=60,
    )
    stderr = done.stderr.decode("utf-8", "replace")
    assert done.returncode == 2, stderr
    assert "Traceback" not in stderr and "not UTF-8" in stderr
