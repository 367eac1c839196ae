"""``llm-bridge migrate``: the report, the rewrite, the starter config, on real codebases.

The codebases are shipped in ``tests/data/migrate`` (openai-python's own examples, and
openai/swarm, which uses the client in several modules; see the README there). Each is
copied to a temporary directory first: the shipped copies are never written.

The acceptance check: after ``--write`` every file is byte-identical to the original except
for its import lines, and the rewritten programs run against the offline fakes (a loopback
``FakeZhipu``), with the starter config the command wrote.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

import pytest

from llm_bridge import load_config
from llm_bridge.testing import FakeZhipu, serve

DATA = Path(__file__).parent / "data" / "migrate"
CODEBASES = ("openai-python", "swarm")

#: How the command is run: as `llm-bridge migrate` (``python -m llm_bridge``).
MIGRATE = [sys.executable, "-m", "llm_bridge", "migrate"]
#: The same with rich made unimportable: the plain-text path.
MIGRATE_PLAIN = [
    sys.executable,
    "-c",
    "import sys; sys.modules['rich'] = None\n"
    "from llm_bridge.cli import main; sys.exit(main(['migrate', *sys.argv[1:]]))",
]
KEY = "migrate.fakezhipukey0123456789"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without provider keys, base URLs or llm-bridge settings."""
    prefixes = ("OPENAI", "ZHIPUAI", "DASHSCOPE", "QIANFAN", "LLM_BRIDGE")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(extra)
    return env


def migrate(
    *args: str, plain: bool = False, cwd: Optional[Path] = None, **env: str
) -> subprocess.CompletedProcess[str]:
    command = MIGRATE_PLAIN if plain else MIGRATE
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=cwd,
        env=clean_env(**env),
    )


def report(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def site(data: dict[str, Any], where: str, call: Optional[str] = None) -> dict[str, Any]:
    """The call site at ``file:line`` (of the given call, where several share a line)."""
    path, line = where.rsplit(":", 1)
    found = [
        s
        for s in data["call_sites"]
        if s["file"] == path and s["line"] == int(line) and call in (None, s["call"])
    ]
    assert len(found) == 1, (where, [s["call"] for s in found])
    return found[0]


def messages(entry: dict[str, Any]) -> str:
    return "\n".join(f"{f['severity']}: {f['message']}" for f in entry["findings"])


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    """Each codebase copied and migrated with ``--write --json``: (copy, report)."""
    out = {}
    for name in CODEBASES:
        root = tmp_path_factory.mktemp("migrated") / name
        shutil.copytree(DATA / name, root)
        result = migrate(str(root), "--write", "--json")
        assert result.returncode == 1, result.stderr  # both use APIs that are not served
        out[name] = (root, report(result))
    return out


# --------------------------------------------------------------------------- the report


def test_the_report_lists_each_call_site_with_its_parameters_and_verdict(migrated) -> None:
    _, data = migrated["openai-python"]
    demo = site(data, "examples/demo.py:11")
    assert demo["call"] == "chat.completions.create"
    assert [p["name"] for p in demo["parameters"]] == ["model", "messages"]
    assert demo["model"] == "gpt-6.2-sol"
    assert demo["target"] == "zhipu/glm-4.7"
    assert demo["status"] == "ok"
    stream = site(data, "examples/demo.py:24")
    assert {"name": "stream", "value": True, "literal": True, "code": "True"} in stream[
        "parameters"
    ]
    raw = site(data, "examples/demo.py:43")  # client.chat.completions.with_raw_response.create
    assert raw["call"] == "chat.completions.create"
    assert raw["written"].endswith("with_raw_response.create")

    # what the providers do not serve, named as the front door's NotFoundError names it
    assert "image generation" in messages(site(data, "examples/picture.py:12"))
    assert site(data, "examples/picture.py:12")["status"] == "blocks"
    assert "audio" in messages(site(data, "examples/speech_to_text.py:25"))
    assert "files" in messages(site(data, "examples/uploads.py:68"))
    assert "the Realtime API" in messages(site(data, "examples/realtime/realtime.py:52"))
    assert "WebSocket" in messages(site(data, "examples/responses/websocket.py:416"))
    assert "module-level client" in messages(site(data, "examples/module_client.py:10"))
    # emulated json_schema and dropped Responses features are changes, not blockers
    parse = site(data, "examples/parsing.py:21")
    assert parse["status"] == "changes"
    assert "json_schema is emulated on glm-4.7" in messages(parse)
    assert "assuming" not in messages(parse)  # parse(response_format=Model) is json_schema
    background = site(data, "examples/responses/background.py:9")
    assert background["status"] == "changes"
    assert "background responses are not available" in messages(background)
    assert "cannot be streamed again" in messages(site(data, "examples/responses/background.py:29"))
    # a client that cannot become llm-bridge's says why
    x509 = site(data, "examples/x509_workload_identity.py:24", "OpenAI")
    assert "workload_identity" in messages(x509)
    assert "provider hook" in messages(site(data, "examples/bedrock.py:6", "OpenAI"))
    azure = [f for f in data["file_findings"] if f["file"] == "examples/azure.py"]
    assert azure and all("Azure" in f["message"] for f in azure)


def test_every_reported_line_holds_the_call_it_names(migrated) -> None:
    for name in CODEBASES:
        _, data = migrated[name]
        assert data["call_sites"]
        for entry in data["call_sites"]:
            source = (DATA / name / entry["file"]).read_text(encoding="utf-8").splitlines()
            line = source[entry["line"] - 1]
            head = entry["written"].split(".")[-1].split("(")[0]
            assert head in line, (entry["file"], entry["line"], head, line)


def test_a_codebase_using_the_client_in_several_modules(migrated) -> None:
    _, data = migrated["swarm"]
    core = site(data, "swarm/core.py:69")  # create(**create_params), a dict built just above
    assert core["call"] == "chat.completions.create"
    names = [p["name"] for p in core["parameters"]]
    assert names == ["model", "messages", "tools", "tool_choice", "stream", "parallel_tool_calls"]
    assert core["target"] == "zhipu/glm-4.7"  # its model is computed: the usual chat model
    embed = site(data, "examples/support_bot/prep_data.py:34")  # model=EMBEDDING_MODEL
    assert embed["model"] == "text-embedding-3-large"
    assert embed["target"] == "zhipu/embedding-3"
    assert "re-embed" in messages(embed)
    assistants = site(
        data, "examples/customer_service_streaming/src/swarm/engines/assistants_engine.py:74"
    )
    assert assistants["call"] == "beta.assistants.create"
    assert "does not serve assistants" in messages(assistants)
    rewritten = {r["file"] for r in data["rewrites"]}
    assert {"swarm/core.py", "examples/support_bot/main.py", "tests/mock_client.py"} <= rewritten


def test_findings_come_from_the_provider_tables_and_translation() -> None:
    """Parameters the adapters would drop, fan out, emulate or refuse, per provider."""
    from llm_bridge.cli._migrate_check import Checker
    from llm_bridge.cli._migrate_scan import UNKNOWN, CallSite, Param

    def call(resource: str, **params: Any) -> CallSite:
        written = [Param(k, v, repr(v)) for k, v in params.items()]
        return CallSite("app.py", 1, 1, "api", resource, resource, written)

    config = load_config({"models": {"fast": "zhipu/glm-4-flash", "qwen": "dashscope/qwen-plus"}})
    checker = Checker(config, {"chat": "zhipu/glm-4-flash"})
    hello = [{"role": "user", "content": "hi"}]

    glm = checker.check(
        call("chat.completions.create", model="fast", messages=hello, logprobs=True)
    )
    assert glm.target == "zhipu/glm-4-flash"
    assert [(f.severity, f.param) for f in glm.findings] == [("changes", "logprobs")]
    assert "GLM returns no log probabilities" in glm.findings[0].message
    qwen = checker.check(
        call("chat.completions.create", model="qwen", messages=hello, logprobs=True)
    )
    assert qwen.target == "dashscope/qwen-plus" and qwen.findings == []

    fanned = checker.check(call("chat.completions.create", model="fast", messages=hello, n=3))
    assert "sent as that many requests" in fanned.findings[0].message
    streamed = checker.check(
        call("chat.completions.create", model="fast", messages=hello, n=3, stream=True)
    )
    assert "a stream cannot be fanned out" in streamed.findings[0].message
    computed = checker.check(call("chat.completions.create", model=UNKNOWN, messages=hello))
    assert computed.target == "zhipu/glm-4-flash"

    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    emulated = checker.check(
        call("chat.completions.create", model="fast", messages=hello, response_format=schema)
    )
    assert "json_schema is emulated" in emulated.findings[0].message
    native = checker.check(
        call("chat.completions.create", model="qwen", messages=hello, response_format=schema)
    )
    assert native.findings == []  # qwen-plus takes json_schema itself

    tools = [{"type": "file_search", "vector_store_ids": ["vs_1"]}]
    translated = checker.check(call("responses.create", model="fast", input="hi", tools=tools))
    assert [f.param for f in translated.findings] == ["tools[0]"]
    assert "file_search" in translated.findings[0].message
    passed = checker.check(call("responses.create", model="qwen", input="hi"))
    assert "serves the Responses API itself" in passed.findings[0].message

    strict = Checker(
        load_config(
            {"models": {"fast": "zhipu/glm-4-flash"}, "policy": {"unsupported_params": "error"}}
        ),
        {},
    )
    refused = strict.check(
        call("chat.completions.create", model="fast", messages=hello, seed=1, presence_penalty=1.0)
    )
    assert [f.severity for f in refused.findings] == ["blocks"]
    wrapped = checker.check(
        call("chat.completions.create", model="fast", messages=hello, response_model=UNKNOWN)
    )
    assert [(f.severity, f.param) for f in wrapped.findings] == [("note", "response_model")]
    assert "not a parameter of openai's chat.completions.create" in wrapped.findings[0].message
    nowhere = checker.check(call("chat.completions.create", model="gpt-x", messages=hello))
    assert "routes to no provider" in nowhere.findings[0].message
    unserved = checker.check(call("moderations.create", input="x"))
    assert "does not serve moderations" in unserved.findings[0].message


# --------------------------------------------------------------------------- the rewrite


def import_lines(source: bytes) -> set[int]:
    """The (1-based) line numbers of every import statement in ``source``."""
    lines: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return lines


#: The line the rewrite adds after ``import openai`` where openai's module-level client is
#: used: that client then sends through llm-bridge.
HOOK = b"openai.http_client = llm_bridge.http_client()"


def without_imports(source: bytes) -> list[bytes]:
    skip = import_lines(source)
    return [
        line
        for n, line in enumerate(source.splitlines(True), 1)
        if n not in skip and line.strip() != HOOK
    ]


@pytest.mark.parametrize("name", CODEBASES)
def test_write_changes_nothing_but_import_lines(migrated, name: str) -> None:
    root, data = migrated[name]
    before, after = files(DATA / name), files(root)
    assert set(after) == set(before) | {"llm_bridge.toml"}
    changed = {path for path in before if before[path] != after[path]}
    assert changed == {r["file"] for r in data["rewrites"]}
    assert all(r["written"] for r in data["rewrites"])
    assert changed, "the codebase has imports to move"
    for path in changed:
        old, new = before[path], after[path]
        assert without_imports(old) == without_imports(new), path
        removed = {
            line.strip() for n, line in enumerate(old.splitlines(), 1) if n in import_lines(old)
        } - {line.strip() for line in new.splitlines()}
        added = {
            line.strip()
            for n, line in enumerate(new.splitlines(), 1)
            if n in import_lines(new) or line.strip() == HOOK
        } - {line.strip() for line in old.splitlines()}
        assert all(b"openai" in line for line in removed), (path, removed)
        assert added and all(
            line.startswith((b"from llm_bridge import ", b"from openai import "))
            or line in (b"import llm_bridge", HOOK)
            for line in added
        ), (path, added)
        compile(new, path, "exec")
    # a client llm-bridge's constructor cannot take stays openai's: the file is untouched
    if name == "openai-python":
        for untouched in (
            "examples/x509_workload_identity.py",
            "examples/bedrock.py",
            "examples/azure.py",
        ):
            assert before[untouched] == after[untouched], untouched
        # openai's module-level client is given llm-bridge's HTTP client after the import
        assert after["examples/module_client.py"].startswith(
            b"import openai\nimport llm_bridge\n" + HOOK + b"\n"
        )


@pytest.mark.parametrize("name", CODEBASES)
def test_a_second_run_finds_nothing_left_to_rewrite(migrated, name: str) -> None:
    root, _ = migrated[name]
    again = report(migrate(str(root), "--json", "--no-progress"))
    assert again["rewrites"] == []
    assert again["config"]["judged_against"].endswith("llm_bridge.toml")


def test_the_diff_mode_writes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "openai-python"
    shutil.copytree(DATA / "openai-python", root)
    before = files(root)
    result = migrate(str(root), plain=True)
    assert result.returncode == 1, result.stderr
    assert files(root) == before
    out = result.stdout
    assert "--- a/examples/demo.py\n+++ b/examples/demo.py\n" in out
    assert "-from openai import OpenAI\n+from llm_bridge import OpenAI\n" in out
    assert "-from openai import OpenAI, DefaultHttpxClient\n" in out
    assert "+from openai import DefaultHttpxClient\n+from llm_bridge import OpenAI\n" in out
    # the plain table: one row per call site, findings under it
    assert "examples/demo.py:11" in out and "chat.completions.create" in out
    assert "blocks: llm-bridge does not serve image generation" in out
    assert '"gpt-6.2-sol" = "zhipu/glm-4.7"' in out  # the starter config, shown
    assert "files to rewrite (the diff above); --write applies it." in out


REWRITES = {
    "parenthesised, comments kept": (
        b"from openai import (\n    RateLimitError,  # retried\n    OpenAI,  # the client\n)\n",
        b"from openai import (\n    RateLimitError,  # retried\n)\n"
        b"from llm_bridge import OpenAI  # the client\n",
    ),
    "aliases": (
        b"from openai import OpenAI as Client, AsyncOpenAI as AClient\n",
        b"from llm_bridge import OpenAI as Client, AsyncOpenAI as AClient\n",
    ),
    "module construction": (
        b'import openai\n\nclient = openai.OpenAI(api_key="k")  # one\n'
        b"except_ = openai.RateLimitError\n",
        b'import openai\nimport llm_bridge\n\nclient = llm_bridge.OpenAI(api_key="k")  # one\n'
        b"except_ = openai.RateLimitError\n",
    ),
    "in a function": (
        b"def make():\n    from openai import OpenAI, APIError\n    return OpenAI()\n",
        b"def make():\n    from openai import APIError\n    from llm_bridge import OpenAI\n"
        b"    return OpenAI()\n",
    ),
    "one-line suite": (
        b"if True: from openai import OpenAI, APIError\n",
        b"if True: from openai import APIError; from llm_bridge import OpenAI\n",
    ),
    "statements after the import on its line": (
        b'import openai; c = openai.OpenAI(api_key="k")  # one line\n',
        b'import openai  # one line\nimport llm_bridge\nc = llm_bridge.OpenAI(api_key="k")\n',
    ),
    "a name imported with others, used on the same line": (
        b"from openai import OpenAI, RateLimitError; c = OpenAI()\n",
        b"from openai import RateLimitError\nfrom llm_bridge import OpenAI\nc = OpenAI()\n",
    ),
    "CRLF": (
        b"from openai import OpenAI, APIError\r\nclient = OpenAI()\r\n",
        b"from openai import APIError\r\nfrom llm_bridge import OpenAI\r\nclient = OpenAI()\r\n",
    ),
    "latin-1": (
        "# -*- coding: latin-1 -*-\nfrom openai import OpenAI\nx = 'café'\n".encode("latin-1"),
        "# -*- coding: latin-1 -*-\nfrom llm_bridge import OpenAI\nx = 'café'\n".encode("latin-1"),
    ),
    "a keyword llm-bridge lacks": (
        b'from openai import OpenAI, AsyncOpenAI\na = OpenAI(admin_api_key="k")\n'
        b"b = AsyncOpenAI()\n",
        b"from openai import OpenAI\nfrom llm_bridge import AsyncOpenAI\n"
        b'a = OpenAI(admin_api_key="k")\nb = AsyncOpenAI()\n',
    ),
    "keywords both take": (
        b'from openai import OpenAI\na = OpenAI(websocket_base_url="w", '
        b"_strict_response_validation=True)\n",
        b'from llm_bridge import OpenAI\na = OpenAI(websocket_base_url="w", '
        b"_strict_response_validation=True)\n",
    ),
    "type checking only": (
        b"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from openai import OpenAI\n",
        None,
    ),
    "already moved": (b"from llm_bridge import OpenAI\nc = OpenAI()\n", None),
    "a local module named openai": (b"from .openai import OpenAI\n", None),
    "star import": (b"from openai import *\n", None),
}


@pytest.mark.parametrize("case", REWRITES)
def test_rewrite_cases(case: str) -> None:
    from llm_bridge.cli._migrate_check import openai_api
    from llm_bridge.cli._migrate_scan import scan_source

    source, expected = REWRITES[case]
    scan = scan_source("case.py", source, openai_api())
    assert scan.error is None
    assert scan.rewritten == expected
    if case == "a keyword llm-bridge lacks":
        construction = scan.calls[0]
        assert construction.findings[0].severity == "blocks"
    if case == "star import":
        assert scan.findings[0][1].severity == "blocks"


def test_files_that_do_not_parse_are_reported_and_left_alone(tmp_path: Path) -> None:
    bad = b"from openai import OpenAI\ndef broken(:\n    pass\n"
    (tmp_path / "bad.py").write_bytes(bad)
    (tmp_path / "good.py").write_bytes(b"from openai import OpenAI\nclient = OpenAI()\n")
    data = report(migrate(str(tmp_path), "--write", "--json"))
    assert data["exit_code"] == 1
    assert [n["file"] for n in data["not_parsed"]] == ["bad.py"]
    assert "line 2" in data["not_parsed"][0]["error"]
    assert (tmp_path / "bad.py").read_bytes() == bad
    assert (tmp_path / "good.py").read_bytes().startswith(b"from llm_bridge import OpenAI\n")


def test_environments_vendored_and_build_directories_are_skipped(tmp_path: Path) -> None:
    source = b"from openai import OpenAI\nOpenAI().images.generate(prompt='x')\n"
    skipped = [
        ".venv/lib",
        "venv",
        "env",
        "site-packages/pkg",
        "node_modules/x",
        "build",
        "dist",
        "vendor",
        "third_party",
        "__pycache__",
        ".git",
        "myenv",
        "pkg.egg-info",
    ]
    for directory in skipped:
        (tmp_path / directory).mkdir(parents=True)
        (tmp_path / directory / "mod.py").write_bytes(source)
    (tmp_path / "myenv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (tmp_path / "app.py").write_bytes(b"from openai import OpenAI\nOpenAI()\n")
    result = migrate(str(tmp_path), "--write", "--json")
    data = report(result)
    assert result.returncode == 0, data["call_sites"]
    assert data["summary"]["files_scanned"] == 1
    assert {d.split("/")[0] for d in data["skipped_directories"]} == {
        d.split("/")[0] for d in skipped
    }
    for directory in skipped:
        assert (tmp_path / directory / "mod.py").read_bytes() == source


# --------------------------------------------------------------------------- the config


def test_the_starter_config_loads_and_maps_each_model(migrated) -> None:
    root, data = migrated["swarm"]
    config = load_config(root / "llm_bridge.toml")
    assert config.aliases["gpt-4o"] == ["zhipu/glm-4.7"]
    assert config.aliases["text-embedding-3-large"] == ["zhipu/embedding-3"]
    assert data["config"]["written"] and data["config"]["path"] == str(root / "llm_bridge.toml")
    text = (root / "llm_bridge.toml").read_text(encoding="utf-8")
    assert '"gpt-4o" = "zhipu/glm-4.7"' in text
    assert "# gpt-4o (examples/support_bot/prep_data.py:10" in text
    assert 'Instead: "dashscope/qwen3-max"' in text

    root, data = migrated["openai-python"]
    config = load_config(root / "llm_bridge.toml")
    assert config.aliases["gpt-6.2-sol"] == ["zhipu/glm-4.7"]
    text = (root / "llm_bridge.toml").read_text(encoding="utf-8")
    prose = " ".join(line.lstrip("#").strip() for line in text.splitlines())  # comments unwrapped
    assert (
        "gpt-image-2.6-flare (examples/image_stream.py:14, examples/picture.py:14): image "
        "generation is not served by llm-bridge: no alias." in prose
    )
    assert "gpt-image-2.6-flare" not in config.aliases
    assert data["models"]["gpt-realtime-2.1"]["target"] is None


def test_the_starter_config_follows_the_providers_asked_for(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from openai import OpenAI\nclient = OpenAI()\n"
        "hi = [{'role': 'user', 'content': 'hi'}]\n"
        "client.chat.completions.create(model='gpt-4o-mini', messages=hi)\n"
        "client.chat.completions.create(model='o4-mini', messages=hi, reasoning_effort='high')\n"
        "client.embeddings.create(model='text-embedding-3-small', input=['x'])\n"
    )
    out = tmp_path / "conf" / "llm_bridge.toml"
    result = migrate(str(tmp_path), "--provider", "dashscope", "--config-out", str(out), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "app.py").read_text().startswith("from openai import OpenAI\n")  # no --write
    config = load_config(out)
    assert config.aliases == {
        "gpt-4o-mini": ["dashscope/qwen-flash"],
        "o4-mini": ["dashscope/qwen-flash"],  # small: the fast model, not the dearest reasoner
        "text-embedding-3-small": ["dashscope/text-embedding-v4"],
    }
    again = migrate(str(tmp_path), "--config-out", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr


def test_each_pick_is_a_current_model_of_its_kind() -> None:
    from llm_bridge.cli._migrate_models import pick

    config = load_config({})
    tables = {name: spec.stand_ins for name, spec in config.providers.items() if spec.stand_ins}
    assert set(tables) >= {"zhipu", "dashscope", "qianfan"}
    for provider, picks in tables.items():
        assert set(picks) == {"fast", "flagship", "reasoning", "embedding"}, provider
        for cls, model in picks.items():
            info = config.provider(provider).model(model)
            assert info is not None and not info.retired, (provider, model)
            assert info.kind == ("embedding" if cls == "embedding" else "chat")
            assert pick(config, provider, cls) == model
            if cls == "reasoning":
                assert info.thinking is not None and (
                    info.thinking == "always" or info.thinking_by_default
                ), model


def test_model_names_are_sorted_by_what_they_are_for() -> None:
    from llm_bridge.cli._migrate_models import classify

    assert classify("gpt-4o-mini") == "fast"
    assert classify("gpt-4.1") == "flagship"
    assert classify("o3") == "reasoning"
    assert classify("text-embedding-3-large") == "embedding"
    assert classify("my-embedder", ["embedding"]) == "embedding"
    assert classify("dall-e-3") == "unserved:images"
    assert classify("whisper-1") == "unserved:audio"
    assert classify("gpt-realtime") == "unserved:realtime"
    assert classify("omni-moderation-latest") == "unserved:moderations"


# --------------------------------------------------------------------------- running it


def run_program(root: Path, script: str, url: str) -> subprocess.CompletedProcess[str]:
    """A rewritten program, in its codebase's root (where the starter config is), with the
    Zhipu key and base URL pointing at the loopback fake: no other network is used."""
    env = clean_env(
        ZHIPUAI_API_KEY=KEY, ZHIPUAI_BASE_URL=url + "/api/paas/v4", PYTHONPATH=str(root)
    )
    return subprocess.run(
        [sys.executable, script], cwd=root, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_rewritten_examples_run_against_the_fakes(migrated) -> None:
    root, _ = migrated["openai-python"]
    fake = FakeZhipu(api_key=KEY)
    answer = {
        "steps": [{"explanation": "subtract 31", "output": "8x = -29"}],
        "final_answer": "x = -29/8",
    }
    with serve(fake) as server:
        demo = run_program(root, "examples/demo.py", server.url)
        assert demo.returncode == 0, demo.stderr
        assert demo.stdout.count("(offline fake glm-4.7) You said: Say this is a test") == 2
        assert "How do I output all files" in demo.stdout  # the streamed answer
        assert len(fake.requests) == 3
        assert {r.url.path for r in fake.requests} == {"/api/paas/v4/chat/completions"}
        assert {json.loads(r.content)["model"] for r in fake.requests} == {"glm-4.7"}

        # the same program before the rewrite is openai's: it never reaches the fake
        original = run_program(DATA / "openai-python", "examples/demo.py", server.url)
        assert original.returncode != 0
        assert len(fake.requests) == 3

        fake.reply(json.dumps(answer))
        parsing = run_program(root, "examples/parsing.py", server.url)  # prints with rich
        assert parsing.returncode == 0, parsing.stderr
        assert "answer:  x = -29/8" in parsing.stdout
        sent = json.loads(fake.requests[-1].content)
        assert sent["response_format"] == {"type": "json_object"}  # emulated json_schema


def test_the_rewritten_library_runs_against_the_fakes(migrated) -> None:
    root, _ = migrated["swarm"]
    fake = FakeZhipu(api_key=KEY)
    with serve(fake) as server:
        bare = run_program(root, "examples/basic/bare_minimum.py", server.url)
        assert bare.returncode == 0, bare.stderr
        assert "(offline fake glm-4.7) You said: Hi!" in bare.stdout

        fake.tool_call("get_weather", {"location": "NYC"}).reply("It is 67°F in New York.")
        tools = run_program(root, "examples/basic/function_calling.py", server.url)
        assert tools.returncode == 0, tools.stderr
        assert "It is 67°F in New York." in tools.stdout
        second = json.loads(fake.requests[-1].content)
        assert second["messages"][-1]["role"] == "tool"
        assert second["messages"][-1]["content"] == "{'temp':67, 'unit':'F'}"


# --------------------------------------------------------------------------- the command


def test_exit_codes_and_usage_errors(tmp_path: Path) -> None:
    (tmp_path / "ok.py").write_text(
        "from openai import OpenAI\n"
        "OpenAI().chat.completions.create(model='gpt-4o', messages=[{'role': 'user', "
        "'content': 'hi'}])\n"
    )
    assert migrate(str(tmp_path), "--json").returncode == 0
    (tmp_path / "img.py").write_text("from openai import OpenAI\nOpenAI().images.generate()\n")
    assert migrate(str(tmp_path), "--json").returncode == 1
    missing = migrate(str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    unknown = migrate(str(tmp_path), "--provider", "nosuch")
    assert unknown.returncode == 2 and "unknown provider 'nosuch'" in unknown.stderr
    (tmp_path / "llm_bridge.toml").write_text("[models]\nfast = 42\n")
    broken = migrate(str(tmp_path))
    assert broken.returncode == 2 and "llm_bridge.toml" in broken.stderr
    no_libcst = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.modules['libcst'] = None\n"
            "from llm_bridge.cli._migrate import main; sys.exit(main([sys.argv[1]]))",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
    )
    assert no_libcst.returncode == 2 and "llm-bridge-cn[cli]" in no_libcst.stderr


def test_an_existing_config_is_what_the_call_sites_are_judged_against(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        "from openai import OpenAI\nc = OpenAI()\n"
        "hi = [{'role': 'user', 'content': 'x'}]\n"
        "c.chat.completions.create(model='gpt-4o', messages=hi, logprobs=True)\n"
        "c.chat.completions.create(model='gpt-4o-mini', messages=hi)\n"
    )
    (tmp_path / "llm_bridge.toml").write_text('[models]\n"gpt-4o" = "dashscope/qwen-plus"\n')
    result = migrate(str(tmp_path), "--json")
    data = report(result)
    assert result.returncode == 1
    assert data["config"] == {
        "judged_against": str(tmp_path / "llm_bridge.toml"),
        "path": None,
        "written": False,
        "text": None,
        "how_to_use": None,
    }
    assert site(data, "app.py:4")["target"] == "dashscope/qwen-plus"
    assert site(data, "app.py:4")["status"] == "ok"  # DashScope returns log probabilities
    assert "routes to no provider" in messages(site(data, "app.py:5"))


def on_a_terminal(*args: str) -> tuple[int, str]:
    """Run the command with stdout and stderr on a pseudo-terminal; its exit status and
    everything it wrote."""
    import pty
    import select

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [*MIGRATE, *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=clean_env(COLUMNS="200", LINES="50", TERM="xterm-256color"),
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise AssertionError("migrate did not finish on the terminal")
        return process.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")
    finally:
        os.close(master)


def test_on_a_terminal_rich_draws_the_table_and_a_progress_bar() -> None:
    pytest.importorskip("rich")  # the [cli] extra; without it the terminal gets plain text
    code, out = on_a_terminal(str(DATA / "swarm"), "--provider", "zhipu")  # no --write
    assert code == 1
    assert "\x1b[" in out  # colour
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out)
    assert "┃ where" in text and "│ swarm/core.py:69" in text  # rich's table
    assert "scanning" in text  # the progress bar: 62 files is a large tree


def test_piped_output_is_plain_and_the_import_stays_lean() -> None:
    result = migrate(str(DATA / "swarm" / "swarm"))  # no --write: read only
    assert result.returncode == 0, result.stderr
    assert "┃" not in result.stdout and "\x1b[" not in result.stdout
    assert "core.py:69" in result.stdout and "chat.completions.create" in result.stdout
    assert "2 call sites: 2 ok, 0 with changes, 0 blocked" in result.stdout
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, llm_bridge, llm_bridge.cli._migrate\nprint('libcst' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(),
        check=True,
    )
    assert loaded.stdout.strip() == "False"


def test_a_client_class_passed_on_rather_than_called_blocks() -> None:
    """``Factory = openai.OpenAI`` (or ``partial(openai.OpenAI, ...)``) made openai's
    clients after the rewrite, and the report said nothing. Checking against the class
    (``isinstance``) and naming it as a type are fine: llm-bridge's client is one."""
    from llm_bridge.cli._migrate_check import openai_api
    from llm_bridge.cli._migrate_scan import scan_source

    source = (
        b"import functools\nimport openai\nimport typing\nfrom unittest import mock\n"
        b"Factory = openai.OpenAI\n"
        b'make = functools.partial(openai.AsyncOpenAI, api_key="k")\n'
        b"def check(c: openai.OpenAI) -> bool:\n"
        b"    return isinstance(c, (int, (openai.OpenAI, openai.AsyncOpenAI)))\n"
        b"client = openai.OpenAI()\n"
        b"typed = typing.cast(openai.OpenAI, client)\n"
        b'T = typing.TypeVar("T", bound=openai.OpenAI)\n'
        b'patched = mock.patch.object(openai.OpenAI, "close")\n'
    )
    scan = scan_source("case.py", source, openai_api())
    blocking = [(line, f.message) for line, f in scan.findings if f.severity == "blocks"]
    assert [line for line, _ in blocking] == [5, 6]
    assert "write llm_bridge.OpenAI here" in blocking[0][1]
    assert "write llm_bridge.AsyncOpenAI here" in blocking[1][1]
