"""Two languages in a real browser: the page follows the browser's language, the switch in the header
changes it (labels and the messages handlers write alike), and the choice survives a reload."""

import pytest

from browser import ARGS, CHROMIUM, served_app, switch_language

pytestmark = [pytest.mark.browser]


@pytest.fixture()
def app_url(runs_parent):
    with served_app() as url:
        yield url


def test_language_follows_the_browser_and_the_switch(app_url):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            # a Chinese browser gets Chinese labels without doing anything
            zh = browser.new_page(locale="zh-CN")
            zh.goto(app_url)
            expect(zh.get_by_role("tab", name="3 · 训练", exact=True)).to_be_visible(timeout=30_000)
            zh.close()

            page = browser.new_page(locale="en-US", viewport={"width": 1400, "height": 1000})
            page.goto(app_url)
            expect(page.get_by_role("tab", name="3 · Train", exact=True)).to_be_visible(timeout=30_000)
            switch_language(page, "中文")
            expect(page.get_by_role("tab", name="3 · 训练", exact=True)).to_be_visible(timeout=30_000)
            # a message written by a handler follows the switch, not the browser's Accept-Language
            page.get_by_role("tab", name="3 · 训练", exact=True).click()
            page.locator("#train-resume").click()
            expect(page.locator("#train-status")).to_contain_text("请在下方训练记录中选择", timeout=30_000)
            # the choice survives a reload, and switching back works
            page.reload()
            expect(page.get_by_role("tab", name="3 · 训练", exact=True)).to_be_visible(timeout=30_000)
            expect(page.locator("#studio-language input[value='zh']")).to_be_checked()
            switch_language(page, "English")
            expect(page.get_by_role("tab", name="3 · Train", exact=True)).to_be_visible(timeout=30_000)
        finally:
            browser.close()
