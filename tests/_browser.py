"""Debian's chromium, driven by Playwright (never a browser download), for the browser tests."""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("GENSTACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if not os.path.exists(CHROMIUM):
    if os.environ.get("GENSTACK_REQUIRE_BROWSER"):
        raise RuntimeError(f"chromium not found at {CHROMIUM}: `make test` installs Debian's chromium package")
    pytest.skip("Debian's chromium is not installed (make test installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

# flags this closed network needs: no background connections to Google's services
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
