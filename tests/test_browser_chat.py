"""The Chat tab in a real browser (the app launched in this process, headless Chromium): a two-turn
exchange, the second turn answered by the base model after the switch; keep the conversation as a
training row and hand it to the Train tab; clear. On a tiny run (a random 2-layer Llama with a LoRA)."""

import json

import pytest

from test_browser_compare import ARGS, CHROMIUM, SHOTS, app_url, run_dir  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture()
def studio_home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_two_turns_and_the_switch_in_the_browser(studio_home, app_url, run_dir):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100}, locale="en-US")
        try:
            page.goto(app_url)
            page.get_by_role("tab", name="5 · Chat", exact=True).click()
            expect(page.locator("#chat-run-info")).to_contain_text(run_dir.name, timeout=60_000)
            bot = page.locator("#chat-chatbot [data-testid='bot']")
            user = page.locator("#chat-chatbot [data-testid='user']")
            status = page.locator("#chat-status")

            page.locator("#chat-system textarea").fill("Answer briefly.")
            page.locator("#chat-max-tokens input[type=number]").fill("16")
            page.locator("#chat-max-tokens input[type=number]").press("Tab")
            page.locator("#chat-input textarea").fill("hello world")
            page.locator("#chat-send").click()
            expect(status).to_contain_text("Answered by the fine-tuned model", timeout=120_000)
            expect(user).to_have_count(1)
            expect(bot).to_have_count(1)
            expect(page.locator("#chat-input textarea")).to_have_value("")

            page.locator("#chat-model").get_by_text("Base model (adapter off)").click()
            page.locator("#chat-input textarea").fill("and again?")
            page.locator("#chat-input textarea").press("Enter")  # Enter sends too
            expect(status).not_to_contain_text("fine-tuned", timeout=30_000)
            page.screenshot(path=str(SHOTS / "chat-second-turn.png"), full_page=True)
            expect(status).to_contain_text("Answered by the base model", timeout=120_000)
            expect(user).to_have_count(2)
            expect(bot).to_have_count(2)
            expect(user.nth(1)).to_contain_text("and again?")
            page.screenshot(path=str(SHOTS / "chat-two-turns.png"), full_page=True)

            page.locator("#chat-keep").click()
            expect(page.locator("#chat-keep-status")).to_contain_text("Kept: 1 rows", timeout=30_000)
            (kept,) = list(studio_home.glob("sessions/*/chat/kept.jsonl"))
            row = json.loads(kept.read_text(encoding="utf-8"))
            assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "user", "assistant"]
            assert row["messages"][3]["content"] == "and again?"
            page.locator("#chat-use").click()
            expect(page.locator("#chat-keep-status")).to_contain_text("Sent to the Train tab", timeout=30_000)

            page.locator("#chat-clear").click()
            expect(bot).to_have_count(0, timeout=30_000)
        finally:
            browser.close()
