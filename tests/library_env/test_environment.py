"""The run is in the environment it was built for, not in one that merely has the names.

A run that silently used the main environment (openai 3, no instructor) or another
checkout's llm_bridge would prove nothing; these fail it.
"""

from __future__ import annotations

import os
import re
from importlib.metadata import version
from pathlib import Path

import openai

import llm_bridge

TESTS = Path(__file__).resolve().parents[1]
#: ``name==version``, with an optional ``[extra]`` (and ``; marker`` after it, read apart).
PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==(\S+)$")


def test_openai_is_the_older_major() -> None:
    assert os.environ["LLM_BRIDGE_TEST_ENV"] == "openai2"
    assert openai.__version__.startswith("2."), openai.__version__


def test_every_pin_of_the_environment_is_installed() -> None:
    requirements = TESTS / "envs" / (os.environ["LLM_BRIDGE_TEST_ENV"] + ".txt")
    from packaging.markers import Marker  # (pip's own marker rules; pytest depends on it)

    expected = {}
    for line in requirements.read_text().splitlines():
        pin, _, marker = line.partition(";")
        match = PIN.match(pin.strip())
        if match and (not marker.strip() or Marker(marker.strip()).evaluate()):
            expected[match.group(1)] = match.group(2)
    assert "openai" in expected
    assert {name: version(name) for name in expected} == expected


def test_llm_bridge_is_this_checkouts() -> None:
    assert Path(llm_bridge.__file__).resolve().parent == TESTS.parent / "llm_bridge"
