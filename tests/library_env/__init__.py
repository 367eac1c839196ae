"""Tests run only in the openai 2.x environment (see conftest.py here).

A package, so that its conftest.py is imported as ``library_env.conftest`` and does not
replace tests/conftest.py as the top-level ``conftest`` (tests/test_zz_secret_scan.py
imports that one by name).
"""
