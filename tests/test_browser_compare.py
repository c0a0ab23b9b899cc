"""One blind round of the Compare tab in a real browser: the app launched in this process, headless
Chromium driven by playwright. Pick the run, type a prompt, generate; the page shows answers A and B and
nothing that says which model wrote which; vote; the reveal and the tally appear, and the vote is in the
run's votes.jsonl. Then the scores on the validation split, with their table and chart.

Which run: by default a tiny run folder (a random 2-layer Llama with a LoRA adapter, built in seconds),
so the test stays fast on a busy CPU. STUDIO_BROWSER_COMPARE=smoke trains the smoke recipe
(presets/recipes/smoke.yaml, the embedded model) in the fixture instead, which takes minutes on a
CPU; STUDIO_BROWSER_COMPARE=/path/to/run copies an existing run folder (say, a smoke run you trained)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from browser import ARGS, CHROMIUM, served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots"
# The engine's own names for the two models: never in the page before a vote.
SIDE_TOKENS = ("finetuned", '"sides"')
IDENTITY = ("base", "fine-tuned", "finetuned")


@pytest.fixture()
def run_dir(runs_parent, tiny_model_dir):
    runs_parent.mkdir(parents=True, exist_ok=True)
    which = os.environ.get("STUDIO_BROWSER_COMPARE", "tiny")
    if which == "smoke":
        subprocess.run([sys.executable, "-m", "studio", "train", "presets/recipes/smoke.yaml", "--output-dir",
                        str(runs_parent)], cwd=ROOT, check=True, timeout=3600)
        (run,) = [p for p in runs_parent.iterdir() if p.is_dir()]
    elif which != "tiny":
        src = Path(which)
        run = runs_parent / src.name
        shutil.copytree(src, run, ignore=shutil.ignore_patterns("votes.jsonl", "eval.json", "eval_export",
                                                                "checkpoints", "preferences.jsonl"))
    else:
        from test_compare_tab import make_run

        run = make_run(runs_parent, tiny_model_dir)
    yield run
    from studio.evaluate.arena import close_arenas

    close_arenas()


@pytest.fixture()
def app_url(run_dir):
    with served_app() as url:
        yield url


def test_one_blind_round_in_the_browser(app_url, run_dir):
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        try:
            page.goto(app_url)
            page.get_by_role("tab", name="4 · Compare", exact=True).click()

            # pick the run (the newest is preselected; choose it as a person would)
            page.locator("#compare-run input").click()
            page.get_by_role("option", name=run_dir.name, exact=True).click()
            expect(page.locator("#compare-run-info")).to_contain_text(run_dir.name, timeout=30_000)
            expect(page.locator("#compare-run-info")).to_contain_text("votes so far: 0", timeout=30_000)

            page.locator("#compare-prompt textarea").fill("Classify the sentiment of this product review as "
                                                          "positive or negative.\n\nReview: Great phone, works perfectly.")
            page.locator("#compare-max-tokens input[type=number]").fill("32")
            page.locator("#compare-max-tokens input[type=number]").press("Enter")
            # The page's own config names the models (translation keys such as compare.model.finetuned):
            # what must not happen is a new mention once a round is on screen.
            before = {tok: page.content().count(tok) for tok in SIDE_TOKENS}
            vote_a = page.locator("#compare-vote-A")
            expect(vote_a).to_be_disabled()
            page.get_by_role("button", name="Generate answers", exact=True).click()
            expect(page.locator("#compare-status")).to_contain_text("Both answers are complete", timeout=300_000)
            expect(vote_a).to_be_enabled()

            # two answers labelled only A and B; nothing about the round names a model
            a = page.locator("#compare-answer-a textarea").input_value()
            b = page.locator("#compare-answer-b textarea").input_value()
            assert a.strip() and b.strip()
            assert page.locator("#compare-answer-a label").inner_text().strip() == "A"
            assert page.locator("#compare-answer-b label").inner_text().strip() == "B"
            for sel in ("#compare-status", "#compare-reveal", "#compare-answer-a label", "#compare-answer-b label"):
                shown = page.locator(sel).inner_text().lower()
                assert not any(w in shown for w in IDENTITY), (sel, shown)
            html = page.content()
            assert {tok: html.count(tok) for tok in SIDE_TOKENS} == before
            page.locator("#compare-answer-a").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "compare_round.png"))

            vote_a.click()
            reveal = page.locator("#compare-reveal")
            expect(reveal).to_contain_text("Revealed: A was the", timeout=60_000)
            expect(reveal).to_contain_text("Your vote is saved")
            expect(vote_a).to_be_disabled()
            (rec,) = [json.loads(x) for x in (run_dir / "votes.jsonl").read_text(encoding="utf-8").splitlines()]
            names = {"base": "base", "finetuned": "fine-tuned"}
            expect(reveal).to_contain_text(f"A was the {names[rec['sides']['A']]} model, "
                                           f"B was the {names[rec['sides']['B']]} model")
            assert rec["vote"] == "A" and rec["answer_a"] == a and rec["answer_b"] == b

            tally = page.locator("#compare-tally")
            won = rec["winner"] == "finetuned"
            expect(tally).to_contain_text(f"Fine-tuned wins {100 if won else 0}% of decided votes")
            expect(tally).to_contain_text("Your votes")
            expect(page.locator("#compare-tally-table")).to_contain_text("(you)")
            expect(page.locator("#compare-tally-plot .js-plotly-plot")).to_be_visible(timeout=30_000)
            page.locator("#compare-reveal").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "compare_reveal.png"), full_page=True)
            expect(page.locator("#compare-run-info")).to_contain_text("votes so far: 1")

            # the winner becomes a DPO pair, and the Train tab takes it as its data with the DPO stage
            if a.strip() != b.strip():
                page.get_by_role("button", name="Save winners as a DPO dataset", exact=True).click()
                expect(page.locator("#compare-flywheel")).to_contain_text("Preference pairs saved: 1")
                page.get_by_role("button", name="Use for DPO training", exact=True).click()
                expect(page.locator("#compare-flywheel")).to_contain_text("The Train tab now trains on")
                page.get_by_role("tab", name="3 · Train", exact=True).click()
                expect(page.locator("#train-data")).to_contain_text("preferences.jsonl", timeout=30_000)
                expect(page.locator("#train-stage input[value=dpo]")).to_be_checked()
                page.get_by_role("tab", name="4 · Compare", exact=True).click()

            # the automatic scores on a few validation rows: progress, then a table and a chart
            page.get_by_role("tab", name="Automatic checks", exact=True).click()
            page.locator("#compare-max-rows input").fill("3")
            page.get_by_role("button", name="Run the scores", exact=True).click()
            expect(page.locator("#compare-scores")).to_contain_text("On 3 validation rows", timeout=600_000)
            expect(page.locator("#compare-metrics-table")).to_contain_text("Perplexity")
            expect(page.locator("#compare-metrics-plot .js-plotly-plot")).to_be_visible()
            assert (run_dir / "eval.json").is_file()
            page.screenshot(path=str(SHOTS / "compare_checks.png"), full_page=True)
        finally:
            browser.close()
