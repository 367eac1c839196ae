"""Tests run only in the openai 2.x environment (see conftest.py here).

A package, so that its conftest.py is imported as ``library_env.conftest`` and does not
replace tests/conftest.py as the top-level ``conftest`` (the tests import that one by
name, for the secret scan's collections).
"""
