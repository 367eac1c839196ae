"""Packaging: the provider tables ship inside the wheel, and importing stays cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """The environment for child interpreters: nothing that points back at the source tree."""
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("PYTHONHOME", None)
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(out),
            str(REPO),
        ],
        cwd=out,
    )
    (built,) = out.glob("llm_bridge_cn-*.whl")
    return built


def test_wheel_contains_provider_tables_and_marker(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "llm_bridge/providers/zhipu.toml" in names
    assert "llm_bridge/py.typed" in names
    assert "llm_bridge/__init__.py" in names
    # every table in the source tree travels, byte for byte
    for table in (REPO / "providers").glob("*.toml"):
        member = f"llm_bridge/providers/{table.name}"
        assert member in names
        assert zipfile.ZipFile(wheel).read(member) == table.read_bytes()


def test_installed_wheel_finds_provider_tables(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # The runtime dependencies (and pip) come from the environment running the tests,
    # whatever it is (a fresh venv's packages are not the system's): its site-packages
    # directories are added by a path file. Path files inside them are not run, so an
    # editable install of llm_bridge there stays invisible; the package itself comes
    # only from the wheel installed below.
    nested = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        cwd=tmp_path,
    ).stdout.strip()
    outer = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(nested, "outer_environment.pth").write_text("\n".join(sorted(outer)) + "\n")
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "--disable-pip-version-check",
            "-q",
            str(wheel),
        ],
        cwd=tmp_path,
    )
    probe = textwrap.dedent(
        """
        import json, sys
        import llm_bridge
        from llm_bridge import _config
        tables = _config.builtin_providers()
        zhipu = tables["zhipu"]
        print(json.dumps({
            "file": llm_bridge.__file__,
            "providers_dir": str(_config._providers_dir()),
            "providers": sorted(tables),
            "has_flash": "glm-4-flash" in zhipu.models,
            "context_window": zhipu.models["glm-4-flash"].context_window,
            "prefix": sys.prefix,
        }))
        """
    )
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    result = _run([str(python), "-c", probe], cwd=workdir)
    found = json.loads(result.stdout.strip().splitlines()[-1])

    venv_root = venv.resolve()
    assert Path(found["prefix"]).resolve() == venv_root
    installed = Path(found["file"]).resolve()
    assert venv_root in installed.parents, found["file"]
    assert REPO not in installed.parents
    tables_dir = Path(found["providers_dir"]).resolve()
    assert venv_root in tables_dir.parents, found["providers_dir"]
    assert "zhipu" in found["providers"]
    assert found["has_flash"] is True
    assert found["context_window"] and found["context_window"] > 0


def test_import_is_cheap(tmp_path: Path) -> None:
    probe = textwrap.dedent(
        """
        import json, sys
        import llm_bridge
        from llm_bridge._config import builtin_providers
        print(json.dumps({
            "tiktoken": sorted(m for m in sys.modules if m.split(".")[0] == "tiktoken"),
            "tables_parsed": builtin_providers.cache_info().currsize,
        }))
        builtin_providers()
        print(builtin_providers.cache_info().currsize)
        """
    )
    result = _run([sys.executable, "-c", probe], cwd=tmp_path)
    lines = result.stdout.strip().splitlines()
    found = json.loads(lines[-2])
    assert found["tiktoken"] == []
    assert found["tables_parsed"] == 0
    # the probe can see a parse when one happens
    assert int(lines[-1]) == 1
