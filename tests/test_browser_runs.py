"""Compare runs and the queue in a real browser: two runs side by side with the best marked, and a queue
that a reload and an app restart both show again (it lives in the runs folder), with an entry removed in
the page staying removed."""

import json
import os

import pytest

from test_browser_train import ARGS, CHROMIUM, free_port
from test_compare_runs import make_run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def launch():
    from studio.ui.app import build_app, launch_kwargs

    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    return demo, f"http://127.0.0.1:{port}"


def open_section(page, url):
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("tab", name="3 · Train", exact=True).click()
    page.locator("#runs-section").get_by_text("Compare runs · try several models").first.click()
    expect(page.locator("#runs-compare-show")).to_be_visible(timeout=30_000)


def test_compare_runs_and_the_queue_survive_a_reload_and_a_restart(runs_parent, tmp_path):
    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    from studio.config import RunConfig
    from studio.engine import queue

    a = make_run(runs_parent, "20260101-000000-a", "qwen2.5-0.5b-instruct", 2e-4, [(5, 1.4), (10, 1.6)])
    b = make_run(runs_parent, "20260101-000001-b", "smollm2-360m-instruct", 1e-4, [(5, 1.2), (10, 1.1)])
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello"}]}) + "\n")
    cfg = RunConfig()
    cfg.data.train_file = str(data)
    queue.add(cfg, ["qwen2.5-0.5b-instruct", "smollm2-360m-instruct"])  # waiting: this test trains nothing

    demo, url = launch()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1400}, locale="en-US")
            open_section(page, url)
            # compare: pick both runs, the table and chart appear, the better run marked
            page.locator("#runs-compare-pick input").click()
            for name in (a.name, b.name):
                page.get_by_role("option", name=name, exact=True).click()
            page.locator("#runs-compare-show").click()
            expect(page.locator("#runs-compare-summary")).to_contain_text("Best: 2. smollm2-360m-instruct",
                                                                          timeout=30_000)
            expect(page.locator("#runs-compare-table")).to_contain_text("★ 1.1000")
            expect(page.locator("#runs-compare-plot")).to_be_visible()
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)

            # the queue: both entries waiting; remove one in the page
            table = page.locator("#queue-table")
            expect(table).to_contain_text("qwen2.5-0.5b-instruct", timeout=30_000)
            expect(table).to_contain_text("smollm2-360m-instruct")
            page.locator("#queue-entry input").click()
            page.get_by_role("option", name="qwen2.5-0.5b-instruct · waiting").click()
            page.locator("#queue-remove").click()
            expect(page.locator("#queue-line")).to_contain_text("Removed qwen2.5-0.5b-instruct", timeout=30_000)
            expect(table).not_to_contain_text("qwen2.5-0.5b-instruct")

            # a reload shows the same queue
            page.reload()
            open_section(page, url)
            expect(page.locator("#queue-table")).to_contain_text("smollm2-360m-instruct", timeout=30_000)
            expect(page.locator("#queue-table")).not_to_contain_text("qwen2.5-0.5b-instruct")
            expect(page.locator("#queue-line")).to_contain_text("1 waiting")

            # so does a restarted app
            demo.close()
            demo, url = launch()
            open_section(page, url)
            expect(page.locator("#queue-table")).to_contain_text("smollm2-360m-instruct", timeout=30_000)
            expect(page.locator("#queue-table")).not_to_contain_text("qwen2.5-0.5b-instruct")
            browser.close()
    finally:
        demo.close()
