"""What every browser test shares: Debian's chromium driven by playwright (its own browser download does not
work here), and the app served in this process on a free port."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager

import pytest

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def served_app():
    """The app, launched in this process; yields its URL. Skips the test where chromium is missing."""
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    from studio.ui.app import build_app, launch_kwargs

    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


def new_page(playwright, locale: str = "en-US"):
    """(browser, page): chromium with the flags this machine needs, one page of the usual size."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
    return browser, browser.new_page(viewport={"width": 1400, "height": 1000}, locale=locale)


def switch_language(page, label: str) -> None:
    """Click a language choice and wait for the reload it makes, so the next click lands on the new page."""
    with page.expect_navigation(timeout=60_000):
        page.locator("#studio-language").get_by_text(label, exact=True).click()
    page.wait_for_load_state()
