"""Two people at once, in a real browser (issue 21): while one page trains (the tiny model, a long run),
a second page votes on a blind round it generated before, uploads a workbook of two sheets, chooses the
second sheet and cleans it, and asks for another round. Nothing fails, each step answers, and a request the device cannot serve says why at once.

The app is launched as `studio ui` launches it (studio.ui.launch: its queue and limits). How long each
step waited is printed (tests do not hold wall-clock times; benchmarks do)."""

import os
import time
from pathlib import Path

import pytest

from test_browser_train import ARGS, CHROMIUM, free_port
from workbooks import two_sheets

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SHOTS = Path(__file__).resolve().parent.parent / "screenshots" / "two_pages"
TOASTS = "[data-testid='toast-body']"


@pytest.fixture()
def run_dir(runs_parent, tiny_model_dir):
    from test_compare_tab import make_run

    runs_parent.mkdir(parents=True, exist_ok=True)
    yield make_run(runs_parent, tiny_model_dir)
    from studio.evaluate.arena import close_arenas

    close_arenas()


@pytest.fixture()
def app_url(run_dir, tmp_path, monkeypatch):
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    from studio.paths import studio_home
    from studio.ui.launch import launch

    real_models = studio_home() / "models"  # the converted embedded model (its tokenizer cleans), when there
    home = tmp_path / "home"
    home.mkdir()
    if real_models.is_dir():
        (home / "models").symlink_to(real_models)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    port = free_port()
    demo = launch(host="127.0.0.1", port=port, block=False)
    yield f"http://127.0.0.1:{port}"
    demo.close()


LOOK_JS = """([selector, note]) => {
  const el = document.querySelector(selector);
  const progress = [...document.querySelectorAll('.progress-text, .meta-text, .meta-text-center')]
    .map(e => e.innerText).filter(t => t).join(' | ');
  return [el ? el.innerText : '', document.body.innerText.includes(note), progress];
}"""


def timed(waits: dict, name: str, page, action, selector: str, words: str, timeout: float = 300) -> None:
    """Do `action`, then wait until the element at `selector` shows `words`; note how long it took, and whether
    the page said meanwhile that a training run comes first (the progress text of a step that waits on it).
    One look per 100 ms, without playwright's auto-waiting (which would hide what the page showed)."""
    from studio.messages import say

    note = say("app.training_first", "en")
    started, said, shown = time.time(), False, ""
    action()
    while time.time() - started < timeout:
        text, noted, progress = page.evaluate(LOOK_JS, [selector, note])
        said = said or noted
        if os.environ.get("STUDIO_TWO_PAGES_TRACE") and progress:
            print(f"{name} {time.time() - started:.1f}s: {progress}")
        if words in text:
            break
        page.wait_for_timeout(100)
    shown = page.evaluate(LOOK_JS, [selector, note])[0]
    assert words in shown, shown
    waits[name] = (round(time.time() - started, 2), "said why" if said else "")


def test_a_second_page_works_while_the_first_trains(app_url, run_dir, tiny_model_dir, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from studio.messages import say

    waits: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        # two people: two browser contexts (their own cookies, storage and gradio sessions)
        trainer = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US").new_page()
        other = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US").new_page()
        try:
            # the second person opens a blind round on the finished tiny run before anyone trains
            other.goto(app_url)
            other.get_by_role("tab", name="4 · Compare", exact=True).click()
            expect(other.locator("#compare-run-info")).to_contain_text(run_dir.name, timeout=60_000)
            other.locator("#compare-prompt textarea").fill("Is this review positive? Great kettle, boils fast.")
            other.locator("#compare-max-tokens input[type=number]").fill("16")
            other.locator("#compare-max-tokens input[type=number]").press("Enter")
            other.locator("#compare-ask").click()
            expect(other.locator("#compare-status")).to_contain_text("Both answers are complete", timeout=300_000)

            # for comparison: the same upload on a third page, with no run training
            third = browser.new_context(viewport={"width": 1400, "height": 1000}, locale="en-US").new_page()
            third.goto(app_url)
            src = two_sheets(tmp_path / "two.xlsx")  # sheets whose columns differ: the first is read
            timed(waits, "upload, nobody training", third,
                  lambda: third.locator("#data-upload input[type=file]").set_input_files(str(src)),
                  "#data-preview-count", "of 50")

            # the first person starts a long run of the tiny model (the smoke recipe's data, many steps)
            trainer.goto(app_url)
            trainer.get_by_role("tab", name="3 · Train", exact=True).click()
            trainer.get_by_label("Recipe").click()
            trainer.get_by_role("option", name="smoke", exact=True).click()
            expect(trainer.locator("#train-data")).to_contain_text("reviews_sentiment.jsonl", timeout=30_000)
            trainer.locator("#train-advanced").get_by_text("Advanced settings").click()
            trainer.locator("#train-model-name textarea, #train-model-name input").first.fill(str(tiny_model_dir))
            trainer.keyboard.press("Tab")
            steps = trainer.locator("#train-max-steps input[type=number]")
            steps.fill("100000")
            steps.press("Tab")
            expect(trainer.locator("#train-plan")).to_contain_text("100000 steps", timeout=60_000)
            trainer.locator("#train-start").click()
            expect(trainer.locator("#train-status")).to_contain_text("Started", timeout=30_000)
            bar = trainer.locator("#train-progress .train-progress")
            expect(bar).to_have_attribute("data-state", "training", timeout=300_000)

            # while it trains, the second person votes, uploads and cleans, and asks for another round
            timed(waits, "vote", other, lambda: other.locator("#compare-vote-B").click(),
                  "#compare-reveal", "Revealed")
            other.get_by_role("tab", name="1 · Data", exact=True).click()
            timed(waits, "upload", other,
                  lambda: other.locator("#data-upload input[type=file]").set_input_files(str(src)),
                  "#data-preview-count", "of 50")
            expect(other.locator("#data-info")).to_contain_text("Sheets left out (their columns differ): “Second”")

            def choose_second():
                other.locator("#data-sheet input").click()
                other.get_by_role("option", name="“Second” (70 rows)", exact=True).click()

            timed(waits, "choose a sheet", other, choose_second, "#data-preview-count", "of 70")
            timed(waits, "clean", other, lambda: other.locator("#data-clean").click(), "#data-report", "70 rows in")
            expect(other.locator("#data-report")).to_contain_text("Sheets read: “Second” (70 rows).")
            other.get_by_role("tab", name="4 · Compare", exact=True).click()
            timed(waits, "ask while training", other, lambda: other.locator("#compare-ask").click(),
                  "#compare-status", say("engine.busy.training", "en"))
            SHOTS.mkdir(parents=True, exist_ok=True)
            other.screenshot(path=str(SHOTS / "second-page.png"), full_page=True)
            assert bar.get_attribute("data-state") == "training", "the run went on meanwhile"
            for page in (trainer, other):
                assert page.locator(TOASTS).count() == 0, page.locator(TOASTS).all_inner_texts()
            trainer.locator("#train-stop").click()
            expect(bar).to_have_attribute("data-state", "stopped", timeout=300_000)
        finally:
            browser.close()
    print(f"\nseconds the second page waited while the first trained (and whether it said why): {waits}")
