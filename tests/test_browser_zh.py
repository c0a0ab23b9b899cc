"""The whole journey with the page in Chinese, and no English on it: upload and clean a Chinese data set,
check the model's fit, train a few steps, vote in one blind round, export. After each step every tab is
scanned for visible English words outside model names, file names, units and code. Screenshots of each
step go to screenshots/journey/zh-*.png."""

import re

import pytest

from test_browser_journey import SHOTS, app_url, home  # noqa: F401  (fixtures)
from test_browser_train import ARGS, CHROMIUM

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SAMPLE_ZH = SHOTS.parent.parent / "assets" / "samples" / "company_policy_zh.jsonl"
# What a person's own data and a model's own words may hold: never scanned.
NOT_OURS = ["#compare-answer-a", "#compare-answer-b", "#data-preview", "#data-search", "#compare-prompt",
            "#compare-edge-prompts", "#train-log",
            "#studio-language",  # each language named in itself, so anyone finds theirs
            "pre", "code", ".cm-editor"]  # code: the model card's snippet, the re-run YAML and commands
UNITS_AND_CODE = {"GiB", "MiB", "GB", "MB", "KB", "tokens", "token", "LoRA", "QLoRA", "GPU", "CPU", "RAM", "BF16", "FP16",
                  "FP32", "INT8", "INT4", "NF4", "AdamW", "SGD", "JSONL", "JSON", "CSV", "TSV", "YAML", "GGUF", "Parquet",
                  "Excel", "TXT", "ROUGE", "BLEU", "DPO", "SFT", "CPT", "API", "Hub", "Hugging", "Face", "PyTorch",
                  "CUDA", "MPS", "Apple", "NVIDIA", "Ollama", "llama", "cpp", "safetensors", "PEFT", "TRL", "Gradio",
                  "Accelerate", "FSDP", "DeepSpeed", "DDP", "ETA", "ID", "PII", "URL", "HTTP", "HTTPS", "ASCII", "UTF",
                  "GBK", "BOM", "CoT", "max", "min", "auto", "true", "false", "none", "null", "png", "svg", "zip"}


def allowed_words() -> set[str]:
    """Latin words the Chinese catalog itself keeps (names the translation chose not to translate), model
    names from the catalog, and units and code."""
    from studio.messages import catalog
    from studio.models import catalog as models

    words = set(UNITS_AND_CODE)
    for value in catalog("zh").values():
        words |= set(re.findall(r"[A-Za-z][A-Za-z0-9]*", re.sub(r"\{[^}]*\}", "", value)))
    for e in models.load():
        words |= set(re.findall(r"[A-Za-z][A-Za-z0-9]*", f"{e.id} {e.hub_id} {e.licence}"))
    return {w.lower() for w in words}


def english_words(page, allowed: set[str]) -> list[str]:
    text = page.evaluate("""(skip) => {
        const hidden = [];
        for (const sel of skip) for (const el of document.querySelectorAll(sel)) {
            hidden.push([el, el.style.display]); el.style.display = 'none'; }
        const t = document.body.innerText;
        for (const [el, d] of hidden) el.style.display = d;
        return t; }""", NOT_OURS)
    found = []
    for token in re.findall(r"[^\s，。：；、（）()“”\"'|·]+", text):
        if re.search(r"[./\\_@]|\d", token):  # file names, paths, numbers with units, ids
            continue
        for word in re.findall(r"[A-Za-z]{3,}", token):
            if word.lower() not in allowed:
                found.append(word)
    return found


def scan_every_tab(page, allowed, step: str) -> dict:
    tabs = page.get_by_role("tab")
    leaks = {}
    for i in range(tabs.count()):
        tabs.nth(i).click()
        page.wait_for_timeout(600)
        words = english_words(page, allowed)
        if words:
            leaks[f"{step} / tab {i + 1}"] = sorted(set(words))
    return leaks


def test_a_chinese_page_shows_no_english(app_url, home):  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    allowed = allowed_words()
    leaks: dict = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="zh-CN")
        tabs = page.get_by_role("tab")
        try:
            page.goto(app_url)
            expect(tabs.first).to_be_visible(timeout=60_000)
            leaks |= scan_every_tab(page, allowed, "start")
            tabs.nth(0).click()
            page.locator("#data-upload input[type=file]").set_input_files(str(SAMPLE_ZH))
            expect(page.locator("#data-preview-count")).to_contain_text("148", timeout=120_000)
            page.locator("#data-clean").click()
            expect(page.locator("#data-histogram .js-plotly-plot")).to_be_visible(timeout=240_000)
            page.locator("#data-use").click()
            expect(page.locator("#data-used")).to_contain_text("✅", timeout=120_000)
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "zh-01-data.png"), full_page=True)
            leaks |= scan_every_tab(page, allowed, "cleaned")

            tabs.nth(1).click()
            expect(page.locator("#model-verdict")).to_contain_text("GiB", timeout=60_000)
            page.locator("#model-use").click()
            expect(page.locator("#model-used")).to_contain_text("✅", timeout=60_000)
            page.screenshot(path=str(SHOTS / "zh-02-model.png"), full_page=True)

            tabs.nth(2).click()
            page.locator("#train-advanced").locator("button, span").first.click()
            steps = page.locator("#train-max-steps input[type=number]")
            steps.fill("2")
            steps.press("Tab")
            page.locator("#train-start").click()
            bar = page.locator("#train-progress .train-progress")
            expect(bar).to_have_attribute("data-state", "completed", timeout=600_000)
            page.screenshot(path=str(SHOTS / "zh-03-trained.png"), full_page=True)
            leaks |= scan_every_tab(page, allowed, "trained")

            tabs.nth(3).click()
            page.locator("#compare-prompt textarea").fill("年假有几天？")
            page.locator("#compare-max-tokens input[type=number]").fill("16")
            page.locator("#compare-max-tokens input[type=number]").press("Enter")
            page.locator("#compare-ask").click()
            expect(page.locator("#compare-vote-A")).to_be_enabled(timeout=300_000)
            page.locator("#compare-vote-A").click()
            expect(page.locator("#compare-reveal")).not_to_be_empty(timeout=60_000)
            page.screenshot(path=str(SHOTS / "zh-04-compare.png"), full_page=True)

            tabs.nth(5).click()  # 6 · Export (5 · Chat sits before it)
            page.locator("#export-go").click()
            expect(page.locator("#export-zip")).to_be_visible(timeout=300_000)
            page.screenshot(path=str(SHOTS / "zh-05-export.png"), full_page=True)
            leaks |= scan_every_tab(page, allowed, "exported")
        except Exception:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "zh-failed.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert leaks == {}, f"English words on the Chinese page: {leaks}"
