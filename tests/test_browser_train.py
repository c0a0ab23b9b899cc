"""The Train tab in a real browser: the app launched in this process, headless Chromium driven by
playwright. Start the smoke recipe (the embedded model, 8 steps), watch the loss chart gain points
within 2 s of the trainer logging them, let it complete, and find the run in the history.

STUDIO_BROWSER_MODEL=/path/to/model-folder types another base model into the advanced panel (a tiny
one makes the test fast on a busy machine); by default the recipe's embedded model trains."""

import json
import os
import statistics
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

from browser import ARGS, CHROMIUM, free_port, served_app  # noqa: F401  (other browser tests import them here)
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
POINTS_JS = "el => el.querySelectorAll('.hover_marks > *').length"
# One round trip per look (each costs time on a busy machine, and would count as lag): the loss chart's
# points, and the progress bar's state and step.
LOOK_JS = """() => {
  const bar = document.querySelector('#train-progress .train-progress');
  const chart = document.querySelector('#train-loss-plot');
  return [chart ? chart.querySelectorAll('.hover_marks > *').length : 0,
          bar ? bar.dataset.state || '' : '', bar ? Number(bar.dataset.step || 0) : 0, Date.now() / 1000];
}"""


@pytest.fixture()
def app_url(runs_parent):
    with served_app() as url:
        yield url


def test_smoke_recipe_trains_live_in_the_browser(app_url, runs_parent):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        try:
            page.goto(app_url)
            page.get_by_role("tab", name="3 · Train", exact=True).click()

            # the smoke recipe: the embedded model, 40 review rows, 8 steps
            page.get_by_label("Recipe").click()
            page.get_by_role("option", name="smoke", exact=True).click()
            expect(page.locator("#train-data")).to_contain_text("reviews_sentiment.jsonl", timeout=30_000)
            if os.environ.get("STUDIO_BROWSER_MODEL"):
                page.locator("#train-advanced").get_by_text("Advanced settings").click()
                page.locator("#train-model-name textarea, #train-model-name input").first.fill(
                    os.environ["STUDIO_BROWSER_MODEL"])
                page.keyboard.press("Tab")
            expect(page.locator("#train-plan")).to_contain_text("Trainable parameters", timeout=60_000)
            expect(page.locator("#train-plan")).to_contain_text("an estimate", timeout=60_000)
            # the plan follows the recipe: its 40 rows, a 20% validation share, 8 steps
            expect(page.locator("#train-plan")).to_contain_text("32 training rows, 8 for validation → about 8 steps")

            page.get_by_role("button", name="Start training", exact=True).click()
            expect(page.locator("#train-status")).to_contain_text("Started", timeout=30_000)

            # watch the loss chart gain points; note when each count first shows
            chart = page.locator("#train-loss-plot")
            seen_at: dict[int, float] = {}
            step_at: dict[int, float] = {}  # when the progress bar first showed each step
            deadline = time.time() + 600
            state = ""
            while time.time() < deadline:
                n, state, step, now = page.evaluate(LOOK_JS)  # the browser's clock: the same machine's
                if n and n not in seen_at:
                    seen_at[n] = now
                step_at.setdefault(step, now)
                if state in ("completed", "stopped", "failed") and len(seen_at) >= 2:
                    break
                page.wait_for_timeout(50)
            assert state == "completed", page.locator("#train-progress").inner_text()
            assert max(seen_at) >= 2 and len(seen_at) >= 2, f"the loss chart did not gain points: {seen_at}"
            page.locator("#train-progress").scroll_into_view_if_needed()
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "train_tab.png"), full_page=True)

            # the run is in the history, completed, and its curves match metrics.jsonl
            history = page.locator("#train-history-table")
            expect(history).to_contain_text("smoke", timeout=30_000)
            expect(history).to_contain_text("Completed", timeout=30_000)
            (run_dir,) = [p for p in runs_parent.iterdir() if p.is_dir()]
            events = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
            # every training loss a point; the validation curve a point per evaluation (a lone one a two-point
            # dash); the best evaluation marked by a two-point tick
            n_evals = sum("eval_loss" in e for e in events)
            expected = sum("loss" in e for e in events) + (2 if n_evals == 1 else n_evals) + (2 if n_evals else 0)
            assert chart.evaluate(POINTS_JS) == expected
            # the live lag is read on the training curve before the first evaluation (until then the k-th
            # point on the chart is the k-th logged loss)
            first_eval = min([e["time"] for e in events if "eval_loss" in e] or [float("inf")])
            points = [e for e in events if "loss" in e and e["time"] < first_eval]

            # Live curves lag the trainer by at most 2 s: the k-th point shows within 2 s of being logged (on a
            # quiet machine, about 1 s: half the timer's period plus two short round trips). A machine shared with
            # other heavy work stretches every round trip, so the typical lag is held to 2 s and a single late
            # point to 4 s; benchmarks/ui_overhead.py measures the lag seen by several clients.
            lags = [seen_at[k] - points[k - 1]["time"] for k in sorted(seen_at) if k <= len(points)]
            detail = [(k, points[k - 1]["step"], "eval" if "eval_loss" in points[k - 1] else "loss",
                       round(seen_at[k] - points[k - 1]["time"], 2),
                       round(step_at.get(points[k - 1]["step"], float("nan")) - points[k - 1]["time"], 2))
                      for k in sorted(seen_at) if k <= len(points)]
            print(f"\nlive-curve lag over {len(lags)} updates: max {max(lags):.2f} s, "
                  f"mean {sum(lags) / len(lags):.2f} s; (point, step, kind, chart lag, progress-bar lag): {detail}")
            assert statistics.median(lags) <= 2.0 and max(lags) <= 4.0, detail
        finally:
            browser.close()
