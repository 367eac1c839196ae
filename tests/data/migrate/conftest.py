"""The codebases here are test data for ``llm-bridge migrate`` (tests/test_cli_migrate.py),
not tests: pytest collects nothing below this directory."""

collect_ignore_glob = ["*"]
