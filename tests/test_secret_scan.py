"""The session's secret scan (see ``collect_logs_and_secrets`` in conftest.py): what it
collects, and what it counts as a leak. The scan itself runs when the session ends, over
whichever tests ran."""

from __future__ import annotations

import logging

import httpx
import pytest
from conftest import SUITE_TEXTS, leaked_secrets

import llm_bridge


def test_the_collector_sees_every_loggers_info_records_and_our_errors() -> None:
    logging.getLogger("httpx").info("HTTP Request: marker-one")
    logging.getLogger("llm_bridge").debug("marker-two")
    error = llm_bridge.APIConnectionError(
        message="marker-three", request=httpx.Request("GET", "https://example.invalid/")
    )
    assert any("marker-one" in text for text in SUITE_TEXTS)
    assert any("marker-two" in text for text in SUITE_TEXTS)
    assert any("marker-three" in text for text in SUITE_TEXTS), error


def test_a_leak_is_a_secret_of_real_length_or_a_zhipu_keys_secret_half() -> None:
    secrets = {"sk-0123456789", "ab", "zhipuid1.zhipusecret99"}
    texts = ["a key sk-0123456789 here", "ab is too short to count", "half: zhipusecret99"]
    found = sorted(secret for secret, _ in leaked_secrets(texts, secrets))
    assert found == ["sk-0123456789", "zhipusecret99"]
    assert leaked_secrets(["nothing to see"], secrets) == []


def test_httpx_request_log_lines_lose_their_query_secrets(caplog: pytest.LogCaptureFixture) -> None:
    """httpx logs each request's URL at INFO; Qianfan v1's carry the OAuth client secret and
    access token. Once a client exists, those lines are scrubbed."""
    llm_bridge.OpenAI(provider="zhipu", api_key="id.secret")
    url = httpx.URL("https://aip.baidubce.com/oauth/2.0/token?client_secret=s3cr3tvalue9&x=1")
    with caplog.at_level(logging.INFO, logger="httpx"):
        logging.getLogger("httpx").info('HTTP Request: %s %s "%s"', "POST", url, "HTTP/1.1 200 OK")
    (record,) = [r for r in caplog.records if r.name == "httpx"]
    assert "s3cr3tvalue9" not in record.getMessage()
    assert "client_secret=<redacted>&x=1" in record.getMessage()
