"""``llm-bridge migrate``, review 19: what the rewrite left broken or the report left out.

- a file importing ``llm_bridge`` only in a function or under ``if TYPE_CHECKING:`` got
  ``llm_bridge.OpenAI(...)`` without a module-level ``import llm_bridge`` (NameError);
- ``openai.http_client = <the project's own client>`` counted as routed through llm-bridge;
- ``openai.OpenAI`` stored in a dict, returned, a default or an argument went unreported;
- the ``else:`` of ``if TYPE_CHECKING:`` was taken as type-checking only;
- an unreadable directory and a symlinked directory vanished from the report;
- every file's bytes were kept to the end of the run;
- a notebook cell holding U+2028 in a string did not parse;
- a conda environment was scanned.

Everything runs in this process, offline.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from llm_bridge.cli import _migrate
from llm_bridge.cli._migrate_check import openai_api
from llm_bridge.cli._migrate_scan import FileScan, scan_notebook, scan_source

pytest.importorskip("libcst")


def migrate(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    """``llm-bridge migrate ARGS --json`` in this process: its exit code and report."""
    code = _migrate.main([*args, "--json", "--no-progress"])
    return code, json.loads(capsys.readouterr().out)


def scan(source: str) -> FileScan:
    found = scan_source("case.py", source.encode(), openai_api())
    assert found.error is None
    return found


def blocking_lines(found: FileScan) -> list[int]:
    return [line for line, finding in found.findings if finding.severity == "blocks"]


# --------------------------------------------------------------------------- 1. NameError

#: source -> its rewrite: ``import llm_bridge`` is added after ``import openai`` unless a
#: module-level one runs before it.
IMPORTS = {
    "under TYPE_CHECKING": (
        "from typing import TYPE_CHECKING\nimport openai\nif TYPE_CHECKING:\n"
        "    import llm_bridge\nclient = openai.OpenAI(api_key='k')\n",
        "from typing import TYPE_CHECKING\nimport openai\nimport llm_bridge\n"
        "if TYPE_CHECKING:\n    import llm_bridge\nclient = llm_bridge.OpenAI(api_key='k')\n",
    ),
    "in a function": (
        "import openai\ndef helper():\n    import llm_bridge\n    return llm_bridge\n"
        "client = openai.OpenAI(api_key='k')\n",
        "import openai\nimport llm_bridge\ndef helper():\n    import llm_bridge\n"
        "    return llm_bridge\nclient = llm_bridge.OpenAI(api_key='k')\n",
    ),
    "in a function, module client": (
        "import openai\ndef helper():\n    import llm_bridge\n"
        "def ask():\n    return openai.chat.completions.create(model='gpt-4o', messages=[])\n",
        "import openai\nimport llm_bridge\nopenai.http_client = llm_bridge.http_client()\n"
        "def helper():\n    import llm_bridge\n"
        "def ask():\n    return openai.chat.completions.create(model='gpt-4o', messages=[])\n",
    ),
    "at module level, before": (
        "import llm_bridge\nimport openai\nclient = openai.OpenAI(api_key='k')\n",
        "import llm_bridge\nimport openai\nclient = llm_bridge.OpenAI(api_key='k')\n",
    ),
}


@pytest.mark.parametrize("case", IMPORTS)
def test_the_rewrite_imports_llm_bridge_where_the_module_does_not(
    case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openai

    source, expected = IMPORTS[case]
    rewritten = scan(source).rewritten
    assert rewritten is not None and rewritten.decode() == expected
    monkeypatch.setattr(openai, "http_client", openai.http_client)  # restored after the run
    exec(compile(rewritten, "case.py", "exec"), {"__name__": "case"})  # no NameError


# --------------------------------------------------------------------------- 2. own client


@pytest.mark.parametrize(
    ("setting", "hook"),
    [
        ("import httpx\nopenai.http_client = httpx.Client(timeout=30)", "own"),
        ("openai.http_client = llm_bridge.http_client", "own"),  # not called
        ("import llm_bridge\nopenai.http_client = llm_bridge.http_client(timeout=30)", "set"),
        ("from llm_bridge import http_client as hc\nopenai.http_client = hc()", "set"),
        ("import llm_bridge as lb\nopenai.http_client = lb.async_http_client()", "set"),
    ],
)
def test_only_llm_bridges_http_client_routes_the_module_client(setting: str, hook: str) -> None:
    found = scan(
        f"import openai\n{setting}\n"
        "def ask():\n    return openai.chat.completions.create(model='gpt-4o', messages=[])\n"
    )
    assert [site.module_hook for site in found.calls] == [hook]
    assert found.rewritten is None


def test_the_projects_own_http_client_on_the_module_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "own.py").write_text(
        "import httpx\nimport openai\nopenai.http_client = httpx.Client(timeout=30)\n"
        "def ask():\n    return openai.chat.completions.create(model='gpt-4o', messages=[])\n"
    )
    code, data = migrate(capsys, str(tmp_path))
    [chat] = data["call_sites"]
    assert chat["status"] == "blocks"
    assert "llm_bridge.http_client(http_client=<your client>)" in chat["findings"][0]["message"]
    assert code == _migrate.EXIT_BLOCKED


# --------------------------------------------------------------------------- 3. passed on


def test_a_client_class_used_without_a_call_blocks_wherever_it_goes() -> None:
    found = scan(
        "import openai\n"
        'CLIENTS = {"sync": openai.OpenAI}\n'  # 2
        "def factory():\n    return openai.OpenAI\n"  # 4
        "def make(cls=openai.AsyncOpenAI):\n    return cls()\n"  # 5
        "build(openai.OpenAI, api_key='x')\n"  # 7
        "class Mine(openai.OpenAI):\n    pass\n"  # 8
        "from typing import Optional\n"
        "def typed(c: Optional[openai.OpenAI] = None) -> type[openai.OpenAI]: ...\n"
        "Alias = Optional[openai.OpenAI]\n"
        "close = openai.OpenAI.close\n"
        "ok = issubclass(Mine, openai.OpenAI)\n"
        "mock.patch(openai.OpenAI)\n"
        "monkeypatch.setattr(openai.OpenAI, 'close', None)\n"
        "client = openai.OpenAI()\n"
    )
    assert blocking_lines(found) == [2, 4, 5, 7, 8]
    assert [site.line for site in found.calls] == [17]


# --------------------------------------------------------------------------- 4. else:


def test_the_else_of_type_checking_is_what_runs() -> None:
    names = scan(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from openai import OpenAI\n"
        "else:\n    from openai import OpenAI\nclient = OpenAI()\n"
    )
    assert names.rewritten == (
        b"from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from openai import OpenAI\n"
        b"else:\n    from llm_bridge import OpenAI\nclient = OpenAI()\n"
    )
    module = scan(
        "import typing\nif typing.TYPE_CHECKING:\n    import openai\n"
        "else:\n    import openai\nclient = openai.OpenAI()\n"
    )
    assert module.rewritten == (
        b"import typing\nif typing.TYPE_CHECKING:\n    import openai\n"
        b"else:\n    import openai\n    import llm_bridge\nclient = llm_bridge.OpenAI()\n"
    )
    assert [(site.line, site.resource) for site in module.calls] == [(6, "OpenAI")]


# --------------------------------------------------------------------------- 5, 6, conda


def test_an_unreadable_directory_is_reported_and_blocks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tests run as root, which reads anything: listing ``secret`` is made to fail as
    it does for a user without the permission."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "client.py").write_text("from openai import OpenAI\nOpenAI()\n")
    (tmp_path / "main.py").write_text("from openai import OpenAI\nOpenAI()\n")
    scandir = os.scandir

    def refuse(path: Any = ".") -> Any:
        if Path(path).name == "secret":
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refuse)
    code, data = migrate(capsys, str(tmp_path))
    assert data["not_parsed"] == [
        {"file": "secret", "error": "directory could not be read: Permission denied"}
    ]
    assert code == _migrate.EXIT_BLOCKED


def test_symlinked_directories_are_listed_and_conda_environments_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "client.py").write_text("from openai import OpenAI\nOpenAI()\n")
    tree = tmp_path / "proj"
    (tree / "src").mkdir(parents=True)
    (tree / "src" / "main.py").write_text("from openai import OpenAI\nOpenAI()\n")
    (tree / "src" / "pkg").symlink_to(shared)
    (tree / "conda" / "conda-meta").mkdir(parents=True)
    (tree / "conda" / "mod.py").write_text("from openai import OpenAI\nOpenAI()\n")
    code, data = migrate(capsys, str(tree))
    assert [site["file"] for site in data["call_sites"]] == ["src/main.py"]
    assert data["skipped_symlinks"] == ["src/pkg"]
    assert data["skipped_directories"] == ["conda"]
    assert code == _migrate.EXIT_OK
    _migrate.main([str(tree), "--no-progress"])
    assert "1 symlink not followed: src/pkg; scan what they point to." in capsys.readouterr().out


# --------------------------------------------------------------------------- 7. memory


def test_only_a_file_to_rewrite_keeps_its_bytes() -> None:
    untouched = "import openai\nprint(openai.OpenAI)\n"
    assert scan("from openai import APIError\n").original == b""
    assert scan(untouched).original == b""
    moved = "from openai import OpenAI\n"
    assert scan(moved).original == moved.encode()


# --------------------------------------------------------------------------- 8. notebooks


def notebook(*cells: list[str]) -> bytes:
    code = [{"cell_type": "code", "metadata": {}, "outputs": [], "source": c} for c in cells]
    return json.dumps({"cells": code, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def test_a_notebook_line_ends_where_python_ends_it() -> None:
    found = scan_notebook(
        "nb.ipynb",
        notebook(
            ["import openai\n", "client = openai.OpenAI()\n"],
            ["SEP = '\u2028\x0c\x85'\n", "client.chat.completions.create(model='gpt-4o')\n"],
        ),
        openai_api(),
    )
    assert found.error is None and found.original == b""
    assert [(s.path, s.line, s.resource) for s in found.calls] == [
        ("nb.ipynb cell 1", 2, "OpenAI"),
        ("nb.ipynb cell 2", 2, "chat.completions.create"),
    ]


def test_a_notebook_that_does_not_parse_names_the_cell() -> None:
    found = scan_notebook(
        "nb.ipynb", notebook(["import openai\n"], ["x = 1\n", "def broken(:\n"]), openai_api()
    )
    assert found.error is not None and found.error.startswith("cell 2, line 2, column")


# --------------------------------------------------------------------------- review 19b

#: What ``openai.http_client`` is set to -> whose client the scan takes it for: a name is
#: followed to its assignment; only a value known not to be llm-bridge's blocks.
HOOKS = {
    "a name bound to llm-bridge's": (
        "import llm_bridge\nclient = llm_bridge.http_client(timeout=30)\n"
        "openai.http_client = client",
        "set",
    ),
    "a name, imported by another name": (
        "from llm_bridge import async_http_client as make\nclient = make()\n"
        "openai.http_client = client",
        "set",
    ),
    "a name through a name": (
        "import llm_bridge as lb\nbase = lb.http_client()\nclient = base\n"
        "openai.http_client = client",
        "set",
    ),
    "in a function, a module name": (
        "import llm_bridge\nclient = llm_bridge.http_client()\n"
        "def setup():\n    openai.http_client = client\nsetup()",
        "set",
    ),
    "a name bound to httpx's": (
        "import httpx\nclient = httpx.Client(timeout=30)\nopenai.http_client = client",
        "own",
    ),
    "None": ("openai.http_client = None", "own"),
    "an imported name": ("from .net import client\nopenai.http_client = client", "unknown"),
    "an attribute": ("import config\nopenai.http_client = config.client", "unknown"),
    "a name bound two ways": (
        "import httpx, llm_bridge\nclient = llm_bridge.http_client()\n"
        "if DEBUG:\n    client = httpx.Client()\nopenai.http_client = client",
        "unknown",
    ),
    "a function's parameter": (
        "def setup(client):\n    openai.http_client = client",
        "unknown",
    ),
}


@pytest.mark.parametrize("case", HOOKS)
def test_a_name_set_as_the_module_client_is_followed_to_its_value(case: str) -> None:
    setting, hook = HOOKS[case]
    found = scan(
        f"import openai\n{setting}\n"
        "def ask():\n    return openai.chat.completions.create(model='gpt-4o', messages=[])\n"
    )
    assert [site.module_hook for site in found.calls] == [hook]
    assert found.rewritten is None


def test_a_module_client_set_to_a_name_blocks_only_when_it_is_not_llm_bridges(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    call = (
        "def ask():\n    return openai.chat.completions.create(\n"
        "        model='gpt-4o', messages=[{'role': 'user', 'content': 'hi'}]\n    )\n"
    )
    (tmp_path / "ours.py").write_text(
        "import openai\nimport llm_bridge\nclient = llm_bridge.http_client(timeout=30)\n"
        f"openai.http_client = client\n{call}"
    )
    (tmp_path / "elsewhere.py").write_text(
        f"import openai\nfrom .net import client\nopenai.http_client = client\n{call}"
    )
    code, data = migrate(capsys, str(tmp_path))
    status = {site["file"]: site["status"] for site in data["call_sites"]}
    assert status == {"elsewhere.py": "changes", "ours.py": "ok"}
    [elsewhere] = [site for site in data["call_sites"] if site["file"] == "elsewhere.py"]
    assert "cannot trace" in elsewhere["findings"][0]["message"]
    assert code == _migrate.EXIT_OK


def test_a_client_class_mocked_inspected_or_registered_makes_no_client() -> None:
    found = scan(
        "import inspect\nfrom functools import singledispatch\nfrom unittest import mock\n"
        "import openai\n"
        "fake = mock.MagicMock(spec=openai.OpenAI)\n"  # 5
        "strict = mock.Mock(spec_set=openai.AsyncOpenAI)\n"
        "auto = mock.create_autospec(openai.OpenAI)\n"
        "has = hasattr(openai.OpenAI, 'responses')\n"
        "close = getattr(openai.OpenAI, 'close')\n"
        "params = inspect.signature(openai.OpenAI).parameters\n"  # 10
        "@singledispatch\ndef describe(x):\n    return '?'\n"
        "@describe.register(openai.OpenAI)\ndef _(x):\n    return 'client'\n"  # 14
        "same = type(fake) is openai.OpenAI\n"  # 17
        "make = getattr(config, 'client_class', openai.OpenAI)\n"  # 18: the default is returned
        "factories.register('openai', openai.OpenAI)\n"  # 19: a registry keeps it
    )
    assert blocking_lines(found) == [18, 19]


def test_a_symlinked_environment_is_skipped_not_listed_as_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = tmp_path / "envs" / "app"
    (env / "lib").mkdir(parents=True)
    (env / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (env / "lib" / "mod.py").write_text("from openai import OpenAI\nOpenAI()\n")
    tree = tmp_path / "proj"
    tree.mkdir()
    (tree / "app.py").write_text("import openai\nclient = openai.OpenAI()\n")
    (tree / "venv").symlink_to(env)  # by its pyvenv.cfg
    (tree / ".venv").symlink_to(env)  # by its name too
    (tree / "node_modules").symlink_to(env / "lib")  # by its name only
    code, data = migrate(capsys, str(tree))
    assert [site["file"] for site in data["call_sites"]] == ["app.py"]
    assert data["skipped_directories"] == [".venv", "node_modules", "venv"]
    assert data["skipped_symlinks"] == []
    assert code == _migrate.EXIT_OK
