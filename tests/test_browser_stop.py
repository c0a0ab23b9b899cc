"""Stop answers at once, in a real browser: the page says within 2 s what is happening (the step being
finished and about how long, then the checkpoint), the run stops at the end of the micro-batch under way,
and the status never stays "Stopping" after the run stopped. Prints the stop latency."""

import time

import pytest

from browser import new_page
from test_browser_train import app_url  # noqa: F401  (fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_stop_is_acknowledged_at_once_and_ends_soon(app_url, runs_parent):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page = new_page(p)
        try:
            page.goto(app_url)
            page.get_by_role("tab", name="3 · Train", exact=True).click()
            page.get_by_label("Recipe").click()
            page.get_by_role("option", name="smoke", exact=True).click()
            expect(page.locator("#train-data")).to_contain_text("reviews_sentiment.jsonl", timeout=30_000)
            page.locator("#train-advanced").locator("button, span").first.click()
            for sel, value in (("#train-max-steps", "40"), ("#train-grad-accum", "4")):
                box = page.locator(f"{sel} input[type=number]")
                box.fill(value)
                box.press("Tab")
            page.get_by_role("button", name="Start training", exact=True).click()
            bar = page.locator("#train-progress .train-progress")
            expect(bar).to_have_attribute("data-state", "training", timeout=300_000)
            expect(bar).not_to_have_attribute("data-step", "0", timeout=300_000)

            clicked = time.time()
            page.locator("#train-stop").click()
            expect(page.locator("#train-status")).to_contain_text("Stopping", timeout=2_000)
            acknowledged = time.time() - clicked
            expect(page.locator("#train-progress")).to_contain_text("Stopping", timeout=5_000)
            expect(bar).to_have_attribute("data-state", "stopped", timeout=300_000)
            stopped = time.time() - clicked
            expect(page.locator("#train-status")).to_contain_text("Stopped", timeout=10_000)
            expect(page.locator("#train-status")).not_to_contain_text("Stopping")
            print(f"\nstop acknowledged in {acknowledged:.1f} s, stopped in {stopped:.1f} s")
        finally:
            browser.close()
