"""What the ``llm-bridge`` command tests share (imported as ``cli_support``: tests/ is on
sys.path): running the command as a subprocess with a clean environment, and fakes that
also answer ``GET /models`` as DashScope's compatible mode and Qianfan v2 do.

Every run's output is added to the secret scan's texts (``SUITE_TEXTS``), so a key the
command printed unmasked fails the session's secret scan (conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import httpx
from conftest import MACHINE_VARIABLES, SUITE_TEXTS

from llm_bridge.testing import Failure, FakeDashScopeCompatible, FakeQianfanV2

#: Variables that would point the command at real providers or another config.
_SCRUBBED = (*MACHINE_VARIABLES, "LLM_BRIDGE_GATEWAY_CONFIG", "NO_COLOR")
#: Bounds every command run (a hung command fails the test instead of stalling it).
TIMEOUT = 60


def run_cli(
    *args: str,
    cwd: Path,
    env: Optional[dict[str, str]] = None,
    stdin: Optional[str] = None,
    hide_rich: Optional[Path] = None,
) -> subprocess.CompletedProcess[str]:
    """``python -m llm_bridge ARGS`` in ``cwd`` with only ``env`` added to a clean
    environment; ``hide_rich`` (a directory) makes ``import rich`` fail in it."""
    clean = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    clean["PYTHONIOENCODING"] = "utf-8"
    if hide_rich is not None:
        package = hide_rich / "rich"
        package.mkdir(parents=True, exist_ok=True)
        (package / "__init__.py").write_text('raise ImportError("rich is hidden here")\n')
        clean["PYTHONPATH"] = os.pathsep.join(
            [str(hide_rich), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
    clean.update(env or {})
    done = subprocess.run(
        [sys.executable, "-m", "llm_bridge", *args],
        cwd=cwd,
        env=clean,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
    )
    SUITE_TEXTS.extend([done.stdout, done.stderr])
    return done


def toml_string(value: str) -> str:
    """``value`` as a TOML basic string."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _model_list(ids: list[str], owner: str) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": owner} for i in ids],
    }


class DashScopeWithModels(FakeDashScopeCompatible):
    """DashScope's compatible mode, also answering ``GET /models`` (OpenAI's list) to the
    key it was made with (``InvalidApiKey`` otherwise, as its other routes do)."""

    routes = (*FakeDashScopeCompatible.routes, ("GET", "/models", "models"))

    def __init__(self, api_key: str, model_ids: list[str], **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.model_ids = model_ids

    def models(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._error(Failure("auth"))
        return self.json_response(200, _model_list(self.model_ids, "system"))


class QianfanV2WithModels(FakeQianfanV2):
    """Qianfan v2, also answering ``GET /models`` to a bearer it accepts (its API key, or
    a token it minted from IAM keys)."""

    routes = (*FakeQianfanV2.routes, ("GET", "/models", "models"))

    def __init__(self, api_key: Optional[str], model_ids: list[str], **kwargs: Any) -> None:
        super().__init__(api_key, **kwargs)
        self.model_ids = model_ids

    def models(self, request: httpx.Request) -> httpx.Response:
        if not self._bearer_ok(request.headers.get("Authorization", "")):
            return self._error(Failure("auth"))
        return self.json_response(200, _model_list(self.model_ids, "qianfan"))
