"""``python -m llm_bridge.cli``: the ``llm-bridge`` command without its console script."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
