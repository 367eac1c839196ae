"""The older openai major: the front-door and library tests again, on openai 2.x.

The main environment has the newest openai 3.x. instructor and llama-index cannot sit
beside it (instructor pins ``jiter<0.15``, openai 3.63 needs ``jiter>=0.16``;
llama-index-llms-openai pins ``openai<3``), so a second environment, openai 2.x with every
library (tests/envs/openai2.txt), is built here with ``python -m venv`` and pip, and
tests/test_front_door.py, tests/test_libraries.py and tests/library_env/ run in it as a
subprocess (the session's secret scan with them). The venv is cached between runs, keyed
by a hash of the requirements, pyproject.toml, this checkout's path (llm-bridge is
installed editable from it) and the Python version, under ``$LLM_BRIDGE_TEST_CACHE`` or
``$XDG_CACHE_HOME/llm-bridge-tests`` (``~/.cache/llm-bridge-tests``). A venv that cannot
be built fails the test: never a skip.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REQUIREMENTS = REPO / "tests" / "envs" / "openai2.txt"
INNER_TESTS = (
    "tests/test_front_door.py",
    "tests/test_front_client.py",
    "tests/test_libraries.py",
    "tests/library_env/",
)  # (the secret scan runs when the inner session ends, as in every session: conftest.py)
READY = "ready.txt"  # written last: the venv's `pip freeze`, proof the build finished
PYCACHE = "pycache"  # the inner run's bytecode, kept in the venv rather than the checkout

# Bounds, in seconds. On a 2-core machine building the venv takes about a minute, the inner
# run ten to twenty seconds.
BUILD_TIMEOUT = 1200
RUN_TIMEOUT = 600

# Variables that would point the inner interpreter, pip or pytest at the outer environment.
_LEAKS = {
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "PYTHONEXECUTABLE",
    "PYTHONSAFEPATH",
    "VIRTUAL_ENV",
    "VIRTUAL_ENV_PROMPT",
    "CONDA_PREFIX",
    "__PYVENV_LAUNCHER__",
}
_LEAK_PREFIXES = ("PYTEST_", "COV_CORE_")
# pip variables that say where packages come from pass; the rest (PIP_TARGET, PIP_PREFIX,
# PIP_USER, PIP_CONSTRAINT, PIP_NO_BUILD_ISOLATION, ...) would change what gets installed
# or where, and do not.
_PIP_SOURCES = {
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIP_CERT",
    "PIP_CLIENT_CERT",
    "PIP_TRUSTED_HOST",
    "PIP_PROXY",
    "PIP_TIMEOUT",
    "PIP_DEFAULT_TIMEOUT",
    "PIP_RETRIES",
    "PIP_CACHE_DIR",
    "PIP_NO_CACHE_DIR",
    "PIP_CONFIG_FILE",
    "PIP_KEYRING_PROVIDER",
    "PIP_DISABLE_PIP_VERSION_CHECK",
    "PIP_PROGRESS_BAR",
    "PIP_NO_INPUT",
}


def cache_root() -> Path:
    explicit = os.environ.get("LLM_BRIDGE_TEST_CACHE")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "llm-bridge-tests"


def env_key() -> str:
    digest = hashlib.sha256()
    for path in (REQUIREMENTS, REPO / "pyproject.toml"):
        digest.update(path.read_bytes())
    digest.update(str(REPO).encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def isolated_env(venv: Path) -> dict[str, str]:
    """The process environment for commands in ``venv``: the outer venv, PYTHONPATH, pytest's
    own variables and install-location pip settings left out; ``venv``'s bin first on PATH."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in _LEAKS
        and not name.startswith(_LEAK_PREFIXES)
        and (not name.startswith("PIP_") or name in _PIP_SOURCES)
    }
    outer = os.environ.get("VIRTUAL_ENV")
    outer_bin = bin_dir(Path(outer)) if outer else None
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != outer_bin]
    env["PATH"] = os.pathsep.join([str(bin_dir(venv)), *path])
    env["VIRTUAL_ENV"] = str(venv)
    env["PYTHONNOUSERSITE"] = "1"  # nor the user's site-packages
    return env


def bin_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def python_of(venv: Path) -> Path:
    return bin_dir(venv) / ("python.exe" if os.name == "nt" else "python")


def tail(text: str, lines: int = 80) -> str:
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def exclusive(lock_path: Path) -> Iterator[None]:
    """One builder at a time per venv (parallel runs, several checkouts)."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock
        yield
        return
    with open(lock_path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_logged(command: list[str], venv: Path, log: Path, timeout: float) -> None:
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        try:
            done = subprocess.run(
                command,
                cwd=REPO,
                env=isolated_env(venv),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"building {venv} timed out after {timeout:.0f} s at: {' '.join(command)}\n"
                + tail(log.read_text()),
                pytrace=False,
            )
    if done.returncode != 0:
        pytest.fail(
            f"building the openai 2.x environment failed ({' '.join(command)}, exit "
            f"{done.returncode}); log {log}:\n" + tail(log.read_text()),
            pytrace=False,
        )


def build(venv: Path, deadline: float) -> None:
    log = venv.with_suffix(".log")
    log.write_text("")
    shutil.rmtree(venv, ignore_errors=True)
    run_logged([sys.executable, "-m", "venv", str(venv)], venv, log, deadline - time.monotonic())
    python = str(python_of(venv))
    # One resolve: the pins and llm-bridge's own dependencies (from pyproject.toml) together,
    # llm-bridge itself editable from this checkout. --no-compile: compiling every installed
    # module costs more than a minute; the inner run compiles what it imports, into
    # PYCACHE (see `inner_env`), once.
    install = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile"]
    run_logged(
        [*install, "-r", str(REQUIREMENTS), "-e", str(REPO)], venv, log, deadline - time.monotonic()
    )
    freeze = subprocess.run(
        [python, "-m", "pip", "freeze", "--disable-pip-version-check"],
        env=isolated_env(venv),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    (venv / READY).write_text(freeze.stdout)


@pytest.fixture(scope="session")
def openai2_venv() -> Path:
    """The openai 2.x environment, built now or reused from the cache."""
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    venv = root / f"openai2-{env_key()}"
    with exclusive(root / f"{venv.name}.lock"):
        if not (venv / READY).is_file():
            build(venv, time.monotonic() + BUILD_TIMEOUT)
    return venv


def inner_env(venv: Path) -> dict[str, str]:
    env = isolated_env(venv)
    env["LLM_BRIDGE_TEST_ENV"] = "openai2"  # tests/library_env/ is collected, and checks it
    # Bytecode is written, but only under the venv: later runs start faster, and nothing
    # lands in the checkout.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(venv / PYCACHE)
    return env


@pytest.mark.timeout(BUILD_TIMEOUT + RUN_TIMEOUT + 60)
def test_front_door_and_libraries_pass_on_openai_2(openai2_venv: Path, tmp_path: Path) -> None:
    command = [
        str(python_of(openai2_venv)),
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--basetemp={tmp_path / 'inner'}",
        *INNER_TESTS,
    ]
    try:
        done = subprocess.run(
            command,
            cwd=REPO,
            env=inner_env(openai2_venv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout or b""
        text = output.decode(errors="replace") if isinstance(output, bytes) else output
        pytest.fail(f"the openai 2.x run timed out after {RUN_TIMEOUT} s:\n{tail(text)}")
    output = done.stdout + done.stderr
    if done.returncode != 0:
        pytest.fail(f"the openai 2.x run failed in {openai2_venv}:\n{tail(output)}", pytrace=False)
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary, summary
