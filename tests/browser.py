"""A real headless Chromium for the tests: Debian's ``chromium`` driven by Selenium through
Debian's ``chromedriver`` (imported as ``browser``: tests/ is on sys.path).

Like ``redis_server``, it fails loudly when the browser is missing: on a Debian machine as
root the two packages are installed first (``apt-get install chromium chromium-driver``), so
the README's test command needs nothing done by hand; elsewhere the error names the command.
Nothing is ever downloaded by Selenium itself: the driver's path is given explicitly, which
skips Selenium Manager (it would otherwise fetch a driver and a browser from the internet).

The flags are those that keep Chromium off the network (no background requests, no
component updates, no QUIC): the machines that run the suite may have none, and a refused
connection must not slow or fail a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

__all__ = ["chromium_binaries", "headless_chromium"]

_PACKAGES = ("chromium", "chromium-driver")
_INSTALL = "apt-get update && apt-get install -y chromium chromium-driver"


def _installed() -> Optional[tuple[str, str]]:
    browser = shutil.which("chromium") or _executable("/usr/bin/chromium")
    driver = shutil.which("chromedriver") or _executable("/usr/bin/chromedriver")
    return (browser, driver) if browser and driver else None


def _executable(path: str) -> Optional[str]:
    return path if os.access(path, os.X_OK) else None


def chromium_binaries() -> tuple[str, str]:
    """The paths of chromium and chromedriver; on a fresh Debian machine (as root) Debian's
    packages are installed first."""
    found = _installed()
    if found is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", *_PACKAGES],
        ):
            subprocess.run(
                command,
                check=False,
                capture_output=True,
                timeout=900,
                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
            )
        found = _installed()
    if found is None:
        raise RuntimeError(
            "chromium and chromedriver not found: the dashboard's browser test needs Debian's "
            f"packages ({_INSTALL}, as root)"
        )
    return found


@contextmanager
def headless_chromium(*, width: int = 1280, height: int = 900) -> Iterator[WebDriver]:
    """A headless Chromium session in a fresh profile, closed afterwards. Its console
    (``driver.get_log("browser")``) is kept, so a test can check that a page logged no
    error and no Content-Security-Policy violation."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as error:  # the dev extra brings it
        raise RuntimeError(
            'the dashboard\'s browser test needs selenium (pip install -e ".[dev]")'
        ) from error
    browser, driver = chromium_binaries()
    profile = tempfile.mkdtemp(prefix="llm-bridge-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",  # the suite runs as root in CI, where the sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        "--lang=en-US",
        f"--window-size={width},{height}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=driver, log_output=subprocess.DEVNULL)
    session = webdriver.Chrome(service=service, options=options)
    try:
        session.set_page_load_timeout(30)
        session.set_script_timeout(30)
        yield session
    finally:
        session.quit()
        shutil.rmtree(profile, ignore_errors=True)
