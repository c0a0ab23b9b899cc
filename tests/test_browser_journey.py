"""The whole journey in a real browser, as a new user would take it, on the embedded default model:
upload a sample file and clean it, choose the model (the fit check shows), train with the smoke
recipe's settings, run one blind comparison and vote, export the adapter. A screenshot of each step goes
to screenshots/journey/ for people to look at.

Then the fault a workstation meets: the server killed mid-training and started again shows the run as
interrupted, and Resume continues it from its last checkpoint to the end."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from browser import ARGS, CHROMIUM, free_port, served_app

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "screenshots" / "journey"
SAMPLE = ROOT / "assets" / "samples" / "reviews_sentiment.jsonl"


@pytest.fixture()
def home(tmp_path, monkeypatch):
    """A fresh STUDIO_HOME and runs folder, reusing the converted embedded model."""
    from studio.paths import studio_home

    real_models = studio_home() / "models"
    h = tmp_path / "home"
    h.mkdir()
    if real_models.is_dir():
        (h / "models").symlink_to(real_models)
    monkeypatch.setenv("STUDIO_HOME", str(h))
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


@pytest.fixture()
def app_url(home):
    with served_app() as url:
        yield url


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_the_whole_journey(app_url, home):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
        try:
            page.goto(app_url)
            # 1 · Data: upload, see the detected format, clean, use for training
            page.locator("#data-upload input[type=file]").set_input_files(str(SAMPLE))
            expect(page.locator("#data-preview-count")).to_contain_text("of 340", timeout=120_000)
            shot(page, "01-data-uploaded")
            page.locator("#data-clean").click()
            expect(page.locator("#data-report")).to_contain_text("340 rows in", timeout=240_000)
            expect(page.locator("#data-histogram .js-plotly-plot")).to_be_visible(timeout=60_000)
            shot(page, "02-data-cleaned")
            page.locator("#data-use").click()
            expect(page.locator("#data-used")).to_contain_text("Sent to the Train tab", timeout=120_000)

            # 2 · Model: the embedded default, its fit verdict, sent to the Train tab
            page.get_by_role("tab", name="2 · Model & hardware", exact=True).click()
            expect(page.locator("#model-verdict")).to_contain_text("GiB", timeout=60_000)
            page.locator("#model-use").click()
            expect(page.locator("#model-used")).to_contain_text("Sent to the Train tab", timeout=60_000)
            shot(page, "03-model-fit")

            # 3 · Train: the smoke recipe's length (8 steps) on the cleaned data, watched to the end
            page.get_by_role("tab", name="3 · Train", exact=True).click()
            expect(page.locator("#train-data")).to_contain_text("train.jsonl", timeout=30_000)
            page.locator("#train-advanced").get_by_text("Advanced settings").click()
            steps = page.locator("#train-max-steps input[type=number]")
            steps.fill("8")
            steps.press("Tab")
            expect(page.locator("#train-plan")).to_contain_text("8 steps", timeout=60_000)
            page.locator("#train-start").click()
            expect(page.locator("#train-status")).to_contain_text("Started", timeout=30_000)
            bar = page.locator("#train-progress .train-progress")
            expect(bar).to_have_attribute("data-state", "training", timeout=300_000)
            shot(page, "04-training")
            expect(bar).to_have_attribute("data-state", "completed", timeout=600_000)
            expect(page.locator("#train-history-table")).to_contain_text("Completed", timeout=60_000)
            shot(page, "05-trained")
            (run_dir,) = [p for p in (home / "runs").iterdir() if p.is_dir()]
            assert json.loads((run_dir / "summary.json").read_text())["steps"] == 8

            # 4 · Compare: one blind round and a vote
            page.get_by_role("tab", name="4 · Compare", exact=True).click()
            expect(page.locator("#compare-run-info")).to_contain_text(run_dir.name, timeout=60_000)
            page.locator("#compare-prompt textarea").fill(
                "Classify the sentiment of this product review as positive or negative.\n\n"
                "Review: The blender broke after two days and support never answered.")
            page.locator("#compare-max-tokens input[type=number]").fill("16")
            page.locator("#compare-max-tokens input[type=number]").press("Enter")
            page.get_by_role("button", name="Generate answers", exact=True).click()
            expect(page.locator("#compare-status")).to_contain_text("Both answers are complete", timeout=300_000)
            shot(page, "06-compare-blind")
            page.locator("#compare-vote-B").click()
            expect(page.locator("#compare-reveal")).to_contain_text("Revealed", timeout=60_000)
            shot(page, "07-compare-revealed")
            (vote,) = [json.loads(x) for x in (run_dir / "votes.jsonl").read_text(encoding="utf-8").splitlines()]
            assert vote["vote"] == "B"

            # 6 · Export: the adapter as a folder and a zip
            page.get_by_role("tab", name="6 · Export", exact=True).click()
            expect(page.locator("#export-run-info")).to_contain_text(run_dir.name, timeout=60_000)
            # the card follows the vote just made, without a Refresh button
            expect(page.locator("#export-card-preview")).to_contain_text("Over 1 vote", timeout=60_000)
            page.locator("#export-go").click()
            expect(page.locator("#export-status")).to_contain_text("Exported to", timeout=300_000)
            expect(page.locator("#export-zip")).to_be_visible(timeout=60_000)
            # every file it wrote is listed with a download: the card and the re-run folder's files
            listed = page.locator("#export-files")
            for name in ("README", "config", "COMMANDS"):  # the list shows "README .md": name, then extension
                expect(listed).to_contain_text(name, timeout=30_000)
            with page.expect_download() as dl:
                page.locator("#export-zip").click()
            assert dl.value.suggested_filename.endswith(".zip")
            shot(page, "08-exported")
        finally:
            browser.close()


def start_server(port: int, env: dict) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "studio", "ui", "--port", str(port)], cwd=str(ROOT), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import urllib.request

    deadline = time.time() + 180
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return proc
        except OSError:
            assert proc.poll() is None, "the server did not start"
            time.sleep(0.5)
    raise AssertionError("the server did not answer")


def test_server_killed_mid_training_then_restarted_resumes(home):
    from playwright.sync_api import expect, sync_playwright

    from studio.engine import runs

    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    server = start_server(port, env)
    url = f"http://127.0.0.1:{port}"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
            page.goto(url)
            page.get_by_role("tab", name="3 · Train", exact=True).click()
            page.get_by_label("Recipe").click()
            page.get_by_role("option", name="smoke", exact=True).click()
            expect(page.locator("#train-data")).to_contain_text("reviews_sentiment.jsonl", timeout=30_000)
            page.locator("#train-start").click()
            expect(page.locator("#train-status")).to_contain_text("Started", timeout=30_000)

            # kill the server once a checkpoint is on disk and training has gone past it
            deadline = time.time() + 600
            run_dir = None
            while time.time() < deadline:
                cks = list((home / "runs").glob("*/checkpoints/checkpoint-*/trainer_state.json"))
                if cks:
                    run_dir = cks[0].parents[2]
                    ck = runs.last_checkpoint(run_dir)
                    if ck is not None and runs.read_summary(run_dir).get("status") == "training":
                        break
                time.sleep(0.2)
            assert run_dir is not None, "no checkpoint was written"
            server.send_signal(signal.SIGKILL)
            server.wait()
            killed_at = runs.checkpoint_step(runs.last_checkpoint(run_dir))
            assert runs.run_status(run_dir) == "interrupted"

            # started again, the page says the run was interrupted and Resume continues it
            server = start_server(port, env)
            page.goto(url)
            page.get_by_role("tab", name="3 · Train", exact=True).click()
            expect(page.locator("#train-progress")).to_contain_text("was interrupted", timeout=60_000)
            expect(page.locator("#train-history-table")).to_contain_text("Interrupted", timeout=60_000)
            shot(page, "09-interrupted")
            page.locator("#train-resume").click()
            expect(page.locator("#train-status")).to_contain_text("Resum", timeout=30_000)
            bar = page.locator("#train-progress .train-progress")
            expect(bar).to_have_attribute("data-state", "completed", timeout=600_000)
            shot(page, "10-resumed")
            browser.close()
        s = runs.read_summary(run_dir)
        assert s["status"] == "completed" and s["steps"] == 8
        steps = [e["step"] for e in runs.read_metrics(run_dir) if "loss" in e]
        assert steps == sorted(set(steps)) and steps[-1] == 8 and killed_at < 8
    finally:
        server.kill()
        server.wait()
