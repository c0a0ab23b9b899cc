"""A person's work survives a reload and a language switch, in a real browser: an uploaded, cleaned set (with
an option changed) comes back with its report, in the page's new language."""

import pytest

from test_browser_journey import SAMPLE, app_url, home  # noqa: F401  (fixtures)
from browser import new_page, switch_language

pytestmark = [pytest.mark.browser]


def test_an_uploaded_cleaned_set_survives_a_reload_and_a_language_switch(app_url, home):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser, page = new_page(p)
        try:
            page.goto(app_url)
            page.locator("#data-upload input[type=file]").set_input_files(str(SAMPLE))
            expect(page.locator("#data-preview-count")).to_contain_text("of 340", timeout=120_000)
            name = page.locator("#data-fill-name textarea, #data-fill-name input").first
            name.fill("Ada")
            name.press("Tab")
            page.locator("#data-clean").click()
            expect(page.locator("#data-report")).to_contain_text("340 rows in", timeout=240_000)
            report = page.locator("#data-report").inner_text()

            page.reload()
            expect(page.locator("#data-preview-count")).to_contain_text("of 340", timeout=120_000)
            expect(page.locator("#data-report")).to_contain_text("340 rows in", timeout=240_000)
            assert page.locator("#data-report").inner_text() == report
            expect(page.locator("#data-fill-name textarea, #data-fill-name input").first).to_have_value("Ada")

            switch_language(page, "中文")
            expect(page.locator("#studio-language input[value='zh']")).to_be_checked(timeout=60_000)
            expect(page.locator("#data-preview-count")).to_contain_text("340", timeout=120_000)
            expect(page.locator("#data-report")).to_contain_text("340", timeout=240_000)
            expect(page.locator("#data-report")).not_to_contain_text("rows in")  # now in Chinese
            expect(page.locator("#data-fill-name textarea, #data-fill-name input").first).to_have_value("Ada")
        finally:
            browser.close()
