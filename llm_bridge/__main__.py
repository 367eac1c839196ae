"""``python -m llm_bridge``: the ``llm-bridge`` command, without its console script."""

from __future__ import annotations

import sys

from .cli import main

sys.exit(main())
