"""Collected last: scan everything the suite logged and every API error it raised for every
credential it used (see ``collect_logs_and_secrets`` in conftest.py)."""

from __future__ import annotations

from conftest import SUITE_SECRETS, SUITE_TEXTS

# Short placeholders ("ak", "a.b") occur in ordinary text; real-looking secrets do not.
MIN_LENGTH = 8


def test_no_secret_the_suite_used_appears_in_its_logs_or_errors() -> None:
    secrets = {s for s in SUITE_SECRETS if len(s) >= MIN_LENGTH}
    # Zhipu keys are "<id>.<secret>": the secret half alone is a secret too.
    secrets |= {
        part
        for s in secrets
        if s.count(".") == 1
        for part in s.split(".")
        if len(part) >= MIN_LENGTH
    }
    leaks = [(secret, text) for text in SUITE_TEXTS for secret in secrets if secret in text]
    assert not leaks, "\n".join(f"{s[:6]}… in: {t[:300]}" for s, t in leaks[:20])
    assert SUITE_TEXTS  # the collector saw the suite's logs and errors
