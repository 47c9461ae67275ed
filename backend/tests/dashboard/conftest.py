"""Browser fixtures: Debian's chromium driven by Playwright (never a downloaded browser), one fresh context per
test, logged in through the real log-in form of the real backend process (`server` in ../conftest.py)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("HASHED_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
_SKIP = "Debian's chromium is not installed: apt-get install chromium (./dev test installs it)"


@pytest.fixture
def browser() -> Iterator[Any]:
    """A headless chromium for one test.

    Not shared across tests: Playwright's sync API keeps an event loop running in this thread while it is
    started, and other backend tests call `asyncio.run()`, which refuses to run inside one.
    """
    if not os.path.exists(CHROMIUM):
        pytest.skip(_SKIP)
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is missing: ./dev test")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """Pages in fresh contexts (own cookies), each from its own client address so auth rate limits never mix."""
    contexts: list[Any] = []

    def make(ip: str, base_url: str) -> Any:
        context = browser.new_context(base_url=base_url, extra_http_headers={"X-Forwarded-For": ip})
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def dashboard(new_page: Callable[..., Any]) -> Callable[[Any], Any]:
    """A page logged in as `org`'s owner through the log-in form, as a person does."""

    def open_as(org: Any) -> Any:
        page = new_page(org.ip, org.server.url)
        page.goto("/login")
        page.fill("input[name=email]", org.email)
        page.fill("input[name=password]", org.password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{org.server.url}/")
        return page

    return open_as
