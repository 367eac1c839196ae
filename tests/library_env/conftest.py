"""Tests that need libraries the main environment cannot hold beside openai 3.

instructor (its ``jiter<0.15`` against openai 3.63's ``jiter>=0.16``) and llama-index
(``llama-index-llms-openai`` pins ``openai<3``) are installed in a second environment,
openai 2.x (tests/envs/openai2.txt), that tests/test_openai_major2.py builds and runs this
directory in, with ``LLM_BRIDGE_TEST_ENV=openai2``. Without that variable (the main run)
nothing here is collected. To run it by hand in such an environment:
``LLM_BRIDGE_TEST_ENV=openai2 python -m pytest tests/library_env``.
"""

from __future__ import annotations

import os

from test_libraries import fake  # noqa: F401  (the fake Zhipu fixture, shared)

collect_ignore_glob = [] if os.environ.get("LLM_BRIDGE_TEST_ENV") else ["test_*.py"]
