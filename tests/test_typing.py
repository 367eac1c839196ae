"""A user file type-checks under pyright exactly as it does with openai.

tests/typing/user_code.py uses ``llm_bridge`` the way openai code uses ``openai`` and states,
with ``assert_type``, the types openai's own stubs give: ``create`` is a ``ChatCompletion``,
with ``stream=True`` a ``Stream[ChatCompletionChunk]`` (``AsyncStream`` on the async client),
``parse`` a ``ParsedChatCompletion[Model]``, ``embeddings.create`` a
``CreateEmbeddingResponse``; ``llm_bridge.OpenAI`` goes where ``openai.OpenAI`` is expected,
``llm_bridge.RateLimitError`` where ``openai.RateLimitError`` is, and ``llm_bridge.http_client()``
where openai 3.x's ``httpx2.Client`` is.

One pyright run (the CLI beside this interpreter, basic mode, this Python version and venv)
checks three files: the user file, its twin with ``llm_bridge`` replaced by ``openai`` (the
same assertions hold for openai itself, so they say something), and a negative control whose
deliberately wrong ``assert_type`` lines must be reported (so these tests can fail).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent / "typing"
USER_CODE = HERE / "user_code.py"
WRONG = HERE / "wrong_assert.py"
PYRIGHT_TIMEOUT = 300  # seconds; a run takes a few

#: How the openai twin of the user file is made: the bridge's HTTP clients become openai's
#: defaults, the arguments only llm-bridge takes go, and every other name is openai's.
TWIN_EDITS = [
    (r"llm_bridge\.http_client\(\)", "openai.DefaultHttpx2Client()"),
    (r"llm_bridge\.async_http_client\(\)", "openai.DefaultAsyncHttpx2Client()"),
    (r'provider="[^"]*", ', ""),
    (r"\bllm_bridge\b", "openai"),
]


def pyright_command() -> list[str]:
    found = Path(sys.executable).parent / "pyright"
    if found.exists():
        return [str(found)]
    which = shutil.which("pyright")
    if which is None:
        pytest.skip("pyright is not installed (pip install pyright)")
    return [which]


def openai_twin(text: str) -> str:
    for pattern, replacement in TWIN_EDITS:
        text, count = re.subn(pattern, replacement, text)
        assert count, f"the edit {pattern!r} no longer applies to user_code.py"
    assert "llm_bridge" not in text and 'provider="' not in text
    return text


class Report:
    """pyright's ``--outputjson`` diagnostics, by file name."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self.by_file: dict[str, list[dict[str, Any]]] = {}
        for diagnostic in raw.get("generalDiagnostics", []):
            self.by_file.setdefault(Path(diagnostic["file"]).name, []).append(diagnostic)

    def problems(self, name: str) -> list[str]:
        """Errors and warnings in one file, as ``line: message (rule)``."""
        return [
            f"{d['range']['start']['line'] + 1}: {d['severity']}: {d['message']} ({d.get('rule')})"
            for d in self.by_file.get(name, [])
            if d["severity"] in ("error", "warning")
        ]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Report:
    """One pyright run over the three files."""
    work = tmp_path_factory.mktemp("typing")
    files = {
        "bridge_user.py": USER_CODE.read_text(encoding="utf-8"),
        "openai_user.py": openai_twin(USER_CODE.read_text(encoding="utf-8")),
        "wrong_assert.py": WRONG.read_text(encoding="utf-8"),
    }
    for name, text in files.items():
        (work / name).write_text(text, encoding="utf-8")
    config = {
        "include": sorted(files),
        "typeCheckingMode": "basic",
        "pythonVersion": f"{sys.version_info.major}.{sys.version_info.minor}",
        "pythonPlatform": "Linux" if sys.platform.startswith("linux") else "All",
        "reportMissingImports": "error",
        "reportMissingModuleSource": "error",
    }
    (work / "pyrightconfig.json").write_text(json.dumps(config), encoding="utf-8")
    environment = {**os.environ, "PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"}
    try:
        done = subprocess.run(
            [
                *pyright_command(),
                "--outputjson",
                "--project",
                str(work / "pyrightconfig.json"),
                "--pythonpath",
                sys.executable,
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=PYRIGHT_TIMEOUT,
            env=environment,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"pyright took more than {PYRIGHT_TIMEOUT}s")
    # 0: no errors, 1: errors found; anything else is pyright failing to run.
    assert done.returncode in (0, 1), f"pyright failed:\n{done.stdout}\n{done.stderr}"
    result = Report(json.loads(done.stdout))
    assert result.raw["summary"]["filesAnalyzed"] == len(files), result.raw["summary"]
    return result


def test_the_user_file_type_checks_with_llm_bridge(report: Report) -> None:
    problems = report.problems("bridge_user.py")
    assert problems == [], "pyright on tests/typing/user_code.py:\n" + "\n".join(problems)


def test_the_same_assertions_hold_for_openai_itself(report: Report) -> None:
    problems = report.problems("openai_user.py")
    assert problems == [], "pyright on the openai twin of user_code.py:\n" + "\n".join(problems)


def test_a_wrong_assert_type_is_reported(report: Report) -> None:
    lines = WRONG.read_text(encoding="utf-8").splitlines()
    expected = {number for number, line in enumerate(lines, 1) if line.endswith("# wrong")}
    assert len(expected) == 2
    found = {
        d["range"]["start"]["line"] + 1
        for d in report.by_file.get("wrong_assert.py", [])
        if d["severity"] == "error" and d.get("rule") == "reportAssertTypeFailure"
    }
    assert found == expected, report.problems("wrong_assert.py")
    assert len(report.problems("wrong_assert.py")) == len(expected)
