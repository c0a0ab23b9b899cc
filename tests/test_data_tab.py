"""The Data tab's handlers as plain functions (no browser), on small files written here and on the bundled
samples; and the whole app built once with the tab in it. Token lengths use the tiny test tokenizer (a
folder with a chat template), so nothing loads the embedded model."""

import json
import re
from pathlib import Path

import plotly.graph_objects as go
import pytest

from studio.paths import SAMPLES_DIR
from studio.data import session as ds
from studio.ui import data_tab as dt
from studio.messages import catalog

TINY_TOKENIZER = str(Path(__file__).parent / "fixtures" / "data" / "tiny_tokenizer")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    """Everything the tab writes goes under a temporary STUDIO_HOME."""
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def qa_rows(n: int = 6) -> list[dict]:
    topics = ["refund", "shipping", "password", "invoice", "warranty", "delivery", "exchange", "coupon", "account"]
    return [{"question": f"How does the {topics[i]} policy work for order {i}?",
             "answer": f"The {topics[i]} policy: contact support with order {i} and we reply within {i + 1} days."}
            for i in range(n)]


def test_upload_shows_the_mapping_and_an_editable_preview(tmp_path, home):
    src = write_jsonl(tmp_path / "faq.jsonl", qa_rows())
    before = src.read_bytes()
    res = ds.load_data(src, session="abc", lang="en")
    assert res["ok"], res["error"]
    m = res["mapping"]
    assert (m.kind, m.prompt, m.response) == ("instruction", "question", "answer")
    assert "faq.jsonl" in res["info_md"] and "6 rows" in res["info_md"] and "SFT" in res["info_md"]
    df = res["preview"]
    assert list(df.columns) == ["#", "kind", "question", "answer"]  # no row has a system prompt: no blank column
    assert df.iloc[0]["#"] == 1 and df.iloc[0]["question"].startswith("How does the refund")
    # the upload is copied into the session's folder; the user's file is untouched
    copy = home / "uploads" / "abc" / "faq.jsonl"
    assert copy.read_bytes() == before and src.read_bytes() == before
    assert res["state"]["path"] == str(copy)
    # Chinese headers and text for a Chinese browser
    zh = ds.load_data(src, session="abc", lang="zh")
    assert list(zh["preview"].columns) == ["#", "类型", "问题", "回答"] and "识别为" in zh["info_md"]


@pytest.mark.parametrize("name, kind, fmt", [("company_policy_zh.jsonl", "instruction", "sft"),
                                             ("dpo_preferences.jsonl", "preference", "preference"),
                                             ("handbook_cpt.txt", "text", "text"),
                                             ("reviews_sentiment.jsonl", "instruction", "sft")])
def test_every_bundled_sample_loads(name, kind, fmt, home):
    assert str(SAMPLES_DIR / name) in [v for _, v in ds.sample_choices()]
    res = ds.load_data(SAMPLES_DIR / name, session="s", copy=False)
    assert res["ok"], res["error"]
    assert res["mapping"].kind == kind and res["state"]["converted"].format == fmt
    assert len(res["preview"]) == min(ds.PREVIEW_ROWS, len(res["state"]["converted"].rows))
    assert not (home / "uploads").exists()  # a sample is read where it is, never copied


def test_columns_that_cannot_be_mapped_say_so_and_remapping_fixes_it(tmp_path):
    src = tmp_path / "sheet.csv"
    src.write_text("frage,antwort,note\nWie spät ist es?,Zehn Uhr.,a\nWo ist das Büro?,Im dritten Stock.,b\n",
                   encoding="utf-8")
    res = ds.load_data(src, session="s")
    assert not res["ok"]
    assert "Could not tell what the columns mean" in res["error"] and "frage, antwort, note" in res["error"]
    assert res["state"]["table"].columns == ["frage", "antwort", "note"]  # the dropdowns get the file's columns

    st = res["state"]
    half = ds.remap(st, {"kind": "instruction", "prompt": "frage"})
    assert not half["ok"] and "choose a column for Answer" in half["error"]

    ok = ds.remap(half["state"], {"kind": "instruction", "prompt": "frage", "response": "antwort"})
    assert ok["ok"], ok["error"]
    assert list(ok["preview"]["answer"]) == ["Zehn Uhr.", "Im dritten Stock."]

    other = ds.remap(ok["state"], {"kind": "instruction", "prompt": "frage", "response": "note"})
    assert list(other["preview"]["answer"]) == ["a", "b"]
    # a part the kind does not read is left out of the mapping (the dropdown keeps it)
    assert ds.mapping_from({"kind": "text", "text": "note", "prompt": "frage"}, ["frage", "note"]).used() == \
        {"text": "note"}
    gone = ds.remap(ok["state"], {"kind": "instruction", "prompt": "frage", "response": "missing"})
    assert not gone["ok"] and "No column named missing" in gone["error"]


def test_an_edit_in_the_preview_reaches_the_cleaned_output(tmp_path, home):
    res = ds.load_data(write_jsonl(tmp_path / "faq.jsonl", qa_rows()), session="s")
    st, df = res["state"], res["preview"].copy()
    df.loc[df["#"] == 3, "answer"] = "Corrected by the expert."
    out = ds.run_clean(st, df, {"near_dup": False}, "none", session="s")
    assert out["ok"], out["error"]
    cleaned = [json.loads(line) for line in Path(out["cleaned_file"]).read_text(encoding="utf-8").splitlines()]
    assert cleaned[2]["messages"][-1] == {"role": "assistant", "content": "Corrected by the expert."}
    assert cleaned[1]["messages"][-1]["content"].startswith("The shipping policy")
    assert out["report"]["edited_rows"] == [3] and "Rows with your edits from the preview: 1" in out["report_md"]
    # the edit stays through a search, and shows in the preview
    found = ds.show_preview(st, None, "Corrected", "en")
    assert list(found["preview"]["#"]) == [3] and "Rows you edited: 1" in found["count_md"]
    # changed back: no longer an edit
    df.loc[df["#"] == 3, "answer"] = cleaned[2]["messages"][-1]["content"].replace("Corrected by the expert.",
                                                                                   qa_rows()[2]["answer"])
    assert ds.merge_edits(st, df) == 0


def test_clean_reports_counts_rows_and_statistics(tmp_path):
    rows = qa_rows(6) + [
        {"question": "Where is my parcel?", "answer": "   "},  # empty
        qa_rows(1)[0],  # exact duplicate of row 1
        {"question": "How does the refund policy work for order 0?",  # near duplicate of row 1
         "answer": "The refund policy: contact support with order 0 and we reply within 1 days!"},
        {"question": "Who do I write to?", "answer": "Write to jane.doe@example.com for help."},  # personal data
    ]
    res = ds.load_data(write_jsonl(tmp_path / "mixed.jsonl", rows), session="s")
    out = ds.run_clean(res["state"], res["preview"], {"near_dup_threshold": 0.8, "cutoff_len": 2048},
                       TINY_TOKENIZER, session="s")
    assert out["ok"], out["error"]
    rep = out["report"]
    assert rep["input_rows"] == 10 and rep["output_rows"] == 7
    assert rep["removed"]["empty"] == 1 and rep["removed"]["duplicate"] == 1 and rep["removed"]["near_duplicate"] == 1
    assert rep["flagged"]["personal_data"] == 1
    assert "**10 rows in → 7 rows kept**" in out["report_md"]
    assert re.search(r"\| \*\*duplicate\*\* · [^|]+\| \*\*1\*\* \|", out["report_md"])
    table = out["rows_table"]
    assert sorted(zip(table["#"], table["reason"])) == [(7, "empty"), (8, "duplicate"), (9, "near duplicate"),
                                                        (10, "personal data")]
    assert set(table["what happened"]) == {"removed", "flagged"}
    assert "jane.doe@example.com" in table.loc[table["#"] == 10, "row"].iloc[0]  # a flagged row shows its text
    assert isinstance(out["figure"], go.Figure) and len(out["figure"].data) == 2  # before and after
    assert "Tokens per row" in out["stats_md"] and "English 100%" in out["stats_md"]
    assert "✅ All 7 rows render" in out["template_md"]
    saved = json.loads(Path(out["report_file"]).read_text(encoding="utf-8"))
    assert saved["removed"] == rep["removed"] and saved["template"]["ok"] is True
    # a cutoff that cuts answers is reported by the template check, with the row numbers
    cut = ds.run_clean(res["state"], None, {"cutoff_len": 0}, TINY_TOKENIZER)
    assert cut["ok"] and "✅" in cut["template_md"]
    short = ds.run_clean(res["state"], None, {"cutoff_len": 24, "near_dup": False}, TINY_TOKENIZER)
    assert short["report"]["removed"]["too_long"] > 0 and "too long" in short["report_md"]
    # Chinese
    zh = ds.run_clean(res["state"], None, {}, "none", lang="zh")
    assert "输入 10 行" in zh["report_md"] and "清洗前" in zh["stats_md"]


def test_a_model_whose_tokenizer_cannot_load_falls_back_to_the_embedded_one(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    tiny = AutoTokenizer.from_pretrained(TINY_TOKENIZER)

    def fake(name):
        if name == "embedded":
            return tiny
        raise ds.StudioError(f"Could not download '{name}' from the Hugging Face Hub: this machine seems to be offline.")

    monkeypatch.setattr(ds, "_tokenizer", fake)
    res = ds.load_data(write_jsonl(tmp_path / "faq.jsonl", qa_rows()), session="s")
    out = ds.run_clean(res["state"], None, {}, "qwen2.5-7b-instruct")
    assert out["ok"] and out["report"]["tokenizer"] == "embedded"
    assert "tokenizer of qwen2.5-7b-instruct could not be loaded" in out["report_md"] and "offline" in out["report_md"]
    assert "could not be loaded" in json.loads(Path(out["report_file"]).read_text(encoding="utf-8"))["notes"][0]


def test_bad_options_are_a_sentence():
    res = ds.load_data(SAMPLES_DIR / "reviews_sentiment.jsonl", copy=False)
    out = ds.run_clean(res["state"], None, {"pii": "shout"}, "none")
    assert not out["ok"] and "Personal data handling must be one of" in out["error"]


def test_bad_files_give_one_plain_sentence(tmp_path, home, monkeypatch):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "blank.csv").write_text("  \n\n \t\n")
    (tmp_path / "blob.jsonl").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "object.json").write_text(json.dumps({"name": "x", "version": 2, "config": {"a": 1}}))
    (tmp_path / "folder").mkdir()
    (tmp_path / "big.jsonl").write_text(json.dumps(qa_rows(1)[0]) + "\n" + "x" * (2 * 2**20))
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "1")
    expect = {"empty.jsonl": "is empty", "blank.csv": "holds only whitespace", "blob.jsonl": "does not look like text",
              "object.json": "single JSON object", "missing.jsonl": "There is no file at", "folder": "is a folder",
              "big.jsonl": "over the 1 MB upload limit"}
    for name, words in expect.items():
        res = ds.load_data(tmp_path / name, session="bad")
        assert not res["ok"], name
        assert words in res["error"] and res["error"].startswith("⚠️"), (name, res["error"])
        assert "Traceback" not in res["error"] and res["error"].count("\n") == 0
    assert not (home / "uploads" / "bad").exists()  # nothing copied for a file that does not read
    # handlers before any data: a sentence, not a crash
    for out in (ds.run_clean(ds.new_state(), None, {}, "none"), ds.use_for_training(None, None, {}, {}, "none"),
                ds.remap(ds.new_state(), {"kind": "text"}), ds.load_data(None)):
        assert not out["ok"] and "Upload a file or pick a sample first" in out["error"]


def test_use_for_training_sets_ctx_data_with_a_readable_train_file(tmp_path, home):
    from studio.engine.datasets import load_rows

    res = ds.load_data(SAMPLES_DIR / "company_policy_zh.jsonl", copy=False)
    st = res["state"]
    # not cleaned yet: Use cleans first with the options shown, then splits and mixes
    out = ds.use_for_training(st, res["preview"], {}, {"eval_share": 0.1, "general_share": 0.1, "seed": 7}, "none",
                              session="s")
    assert out["ok"], out["error"]
    assert out.get("clean") is True and "cleaned again" in out["use_md"]
    data = out["data"]
    assert set(data) == {"train_file", "eval_file", "format", "rows", "zh_share"} and data["format"] == "sft"
    folder = Path(data["train_file"]).parent
    # in the session's own folder: no other session replaces or lists it (tests/test_security.py)
    assert folder.parent == home / "sessions" / "s" / "datasets" and folder.name.startswith("company_policy_zh-")
    rows, fmt = load_rows(data["train_file"])
    assert fmt == "sft" and len(rows) == data["rows"]
    eval_rows, _ = load_rows(data["eval_file"])
    assert len(eval_rows) == 15 and len(rows) == 133 + 15  # 148 rows: 15 held out, 10% general chat in training
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert report["split"]["general"] == 15 and report["mix"]["seed"] == 7
    assert "**148** training rows" in out["use_md"] and "15 general chat" in out["use_md"]
    assert sorted(Path(f).name for f in out["files"]) == ["eval.jsonl", "report.json", "train.jsonl"]
    # unchanged since: no second clean; a new folder each time
    again = ds.use_for_training(st, None, {}, {"eval_share": 0}, "none")
    assert again["ok"] and not again.get("clean") and again["data"]["eval_file"] == ""
    assert Path(again["data"]["train_file"]).parent != folder
    # preference data trains DPO; general chat is not mixed into it, and says so
    dpo = ds.load_data(SAMPLES_DIR / "dpo_preferences.jsonl", copy=False)
    out = ds.use_for_training(dpo["state"], None, {}, {"general_share": 0.05}, "none")
    assert out["data"]["format"] == "preference" and "only mix into conversation" in out["use_md"]


def test_the_template_check_reports_answers_training_would_cut(tmp_path, home):
    rows = qa_rows(3) + [{"question": "Tell me everything.", "answer": "word " * 2100},
                         {"question": "Read this: " + "word " * 2100, "answer": "Done."}]
    res = ds.load_data(write_jsonl(tmp_path / "long.jsonl", rows), session="s")
    # cutoff 0 keeps every row, and training cuts at its default length: 2048 tokens
    out = ds.run_clean(res["state"], None, {"cutoff_len": 0, "near_dup": False}, TINY_TOKENIZER, session="s")
    assert out["ok"], out["error"]
    t = out["report"]["template"]
    assert t["cutoff"] == 2048 and (t["cut"], t["cut_entirely"], t["cut_partly"]) == (2, 1, 1)
    assert [c["number"] for c in t["cut_rows"]] == [4, 5]
    md = out["template_md"]
    assert "**2 answers would be cut** by the cutoff of 2048 tokens" in md and "1 entirely" in md and "1 partly" in md
    assert "row 4:" in md and "row 5:" in md
    assert "2 个回答在训练时会被截断" in ds.run_clean(res["state"], None, {"cutoff_len": 0, "near_dup": False},
                                                TINY_TOKENIZER, lang="zh")["template_md"]
    used = ds.use_for_training(res["state"], None, {"cutoff_len": 0, "near_dup": False}, {"eval_share": 0},
                               TINY_TOKENIZER, session="s")
    assert used["ok"] and "**2 answers would be cut**" in used["use_md"]
    assert used["prepared_report"]["template"]["cut"] == 2
    # a cutoff that Clean applies removes those rows, and the check says nothing trained is cut
    out = ds.run_clean(res["state"], None, {"cutoff_len": 2048, "near_dup": False}, TINY_TOKENIZER)
    assert out["report"]["removed"]["too_long"] == 2 and out["report"]["template"]["cut"] == 0
    assert "✅ All 3 rows render" in out["template_md"] and "2 rows longer than the cutoff" in out["template_md"]


def test_cleaning_progress_speaks_the_pages_language(tmp_path):
    res = ds.load_data(write_jsonl(tmp_path / "faq.jsonl", qa_rows()), session="p")
    seen = {"en": [], "zh": []}
    for lang in seen:
        out = ds.run_clean(res["state"], None, {}, "none", lang=lang, progress=lambda f, d: seen[lang].append(d))
        assert out["ok"]
    assert any("正在清洗…… 删除完全重复" in d for d in seen["zh"]) and any("完成" in d for d in seen["zh"])
    from studio.data.clean import STEPS, step_name

    assert not any(step_name(n).text("en") in d for n in STEPS for d in seen["zh"]), seen["zh"]  # no English step names
    assert any("Cleaning… removing duplicates" in d for d in seen["en"]) and any("done" in d for d in seen["en"])


def test_downloads_are_served_from_a_folder_gradio_allows(tmp_path, home):
    f = home / "datasets" / "x" / "train.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text("{}\n")
    served = Path(dt.servable(f, "sess"))
    assert served.read_text() == "{}\n" and served.name == "train.jsonl"


def test_every_data_control_has_help_in_the_catalog():
    assert len([k for k in catalog("en") if k.startswith("data.")]) > 100
    help_keys = {f"help.CleanOptions.{n}" for n in ds.CLEAN_FIELDS} | {f"help.MixOptions.{n}" for n in ds.MIX_FIELDS}
    assert help_keys <= set(catalog("en")) and help_keys <= set(catalog("zh"))


def test_the_app_builds_with_the_data_tab_first():
    from studio.ui.app import available_tabs, build_app

    assert available_tabs()[0] is dt
    demo = build_app()
    assert demo is not None


# ---- in a real browser ---------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"


@pytest.mark.browser
@pytest.mark.slow
def test_sample_edit_clean_and_use_in_the_browser(tmp_path, monkeypatch):
    """Pick a sample, correct an answer in the preview, clean (report and histogram appear), download the
    cleaned JSONL with the correction in it, and send the set to the Train tab."""
    import os
    import socket

    if not os.path.exists(CHROMIUM):
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    from playwright.sync_api import expect, sync_playwright

    from studio.paths import studio_home
    from studio.ui.app import build_app, launch_kwargs

    real_models = studio_home() / "models"
    home = tmp_path / "browser-home"
    home.mkdir()
    if real_models.is_dir():  # reuse the converted embedded model rather than converting it again
        (home / "models").symlink_to(real_models)
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(tmp_path / "runs"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    demo = build_app()
    demo.queue(default_concurrency_limit=8)
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, quiet=True, **launch_kwargs())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="en-US")
            page.goto(f"http://127.0.0.1:{port}")
            page.locator("#data-sample input").click()
            page.get_by_role("option", name="Product review sentiment (English, Alpaca)", exact=True).click()
            expect(page.locator("#data-preview-count")).to_contain_text("Showing 200 of 340", timeout=60_000)
            expect(page.locator("#data-part-response input")).to_have_value("output")

            page.locator('#data-preview [data-testid="cell-0-3"]').dblclick()
            page.keyboard.press("Control+A")
            page.keyboard.type("negative (checked by an expert)")
            page.keyboard.press("Enter")

            page.locator("#data-clean").click()
            expect(page.locator("#data-report")).to_contain_text("340 rows in", timeout=240_000)
            expect(page.locator("#data-report")).to_contain_text("Rows with your edits from the preview: 1")
            expect(page.locator("#data-histogram .js-plotly-plot")).to_be_visible(timeout=60_000)
            expect(page.locator("#data-template")).to_contain_text("render")
            with page.expect_download() as dl:
                page.locator("#data-download").click()
            first = json.loads(Path(dl.value.path()).read_text(encoding="utf-8").splitlines()[0])
            assert first["messages"][-1]["content"] == "negative (checked by an expert)"

            page.locator("#data-use").click()
            expect(page.locator("#data-used")).to_contain_text("Sent to the Train tab", timeout=120_000)
            SHOTS.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOTS / "data_tab.png"), full_page=True)
            page.get_by_role("tab", name="3 · Train", exact=True).click()
            expect(page.locator("#train-data")).to_contain_text("train.jsonl", timeout=30_000)
            browser.close()
    finally:
        demo.close()


def test_the_tab_comes_back_from_the_browsers_workspace(tmp_path, home):
    """A reload (or a language switch, or the next day) finds the file, the mapping, the edits, the options and
    the cleaning again: the workspace keeps paths and choices, and the tab rebuilds the rest."""
    from studio import workspace

    res = ds.load_data(write_jsonl(tmp_path / "faq.jsonl", qa_rows()), session="ws-1")
    st, df = res["state"], res["preview"].copy()
    df.loc[df["#"] == 3, "answer"] = "Corrected by the expert."
    options = {"near_dup": False, "min_chars": 3, "fill_name": "Ada"}
    out = ds.run_clean(st, df, options, "none", session="ws-1")
    assert out["ok"], out["error"]
    workspace.save("ws-1", data_tab=ds.saved_part(out["state"], options=options, cleaned=True), model={"model": "none"})
    saved = workspace.load("ws-1")
    assert json.dumps(saved)  # plain JSON: paths and choices, not rows
    assert Path(saved["data_tab"]["path"]).is_file() and saved["data_tab"]["path"] != str(tmp_path / "faq.jsonl")

    again = ds.restore(saved["data_tab"], "none", "ws-1", "zh")
    assert again["ok"] and again["state"]["edits"].keys() == {3}
    assert again["clean"]["ok"] and again["clean"]["report"]["edited_rows"] == [3]
    cleaned = [json.loads(x) for x in Path(again["clean"]["cleaned_file"]).read_text(encoding="utf-8").splitlines()]
    assert cleaned[2]["messages"][-1]["content"] == "Corrected by the expert."
    # a file that is gone since: nothing to restore, no error
    Path(saved["data_tab"]["path"]).unlink()
    assert ds.restore(saved["data_tab"], "none", "ws-1", "en") is None


def test_a_workbook_with_sheets_that_differ_offers_the_choice_and_the_report_names_them(tmp_path, home):
    from workbooks import agreeing_sheets, two_sheets

    res = ds.load_data(two_sheets(tmp_path / "two.xlsx"), session="s")
    assert res["ok"] and res["sheets"] == ["First", "Second"] and len(res["state"]["converted"].rows) == 50
    assert "Sheets read: “First” (50 rows)." in res["info_md"] and "“Second” (70 rows)" in res["info_md"]
    other = ds.choose_sheet(res["state"], "Second", "zh")
    assert other["ok"] and len(other["state"]["converted"].rows) == 70 and other["state"]["name"] == "two.xlsx"
    assert "已读取的工作表：“Second”（70 行）。" in other["info_md"] and "“First”（50 行）" in other["info_md"]
    out = ds.run_clean(other["state"], None, {"near_dup": False}, "none", "zh", session="s")
    assert out["ok"], out.get("error")
    assert "已读取的工作表：“Second”（70 行）。" in out["report_md"] and "未读取的工作表" in out["report_md"]
    assert [(s["name"], s["rows"], s["read"]) for s in out["report"]["sheets"]] == [("First", 50, False),
                                                                                  ("Second", 70, True)]
    assert "Sheets read: “Second” (70 rows)." in out["report"]["notes"]
    both = ds.load_data(agreeing_sheets(tmp_path / "agree.xlsx"), session="s")
    assert both["ok"] and both["sheets"] == [] and len(both["state"]["converted"].rows) == 50
    assert "“Q1” (30 rows, numbered 1–30 here), “Q2” (20 rows, numbered 31–50 here)" in both["info_md"]


def test_the_wait_says_why_while_a_run_trains():
    from studio.device_arbiter import ARBITER
    from studio.messages import say
    from studio.ui.priority import training_note

    assert training_note("en") == ""
    holder = object()
    ARBITER.claim_training(holder)
    try:
        assert training_note("en") == " · " + say("app.training_first", "en") and "训练" in training_note("zh")
    finally:
        ARBITER.release_training(holder)
    src = (Path(dt.__file__)).read_text()
    assert src.count("training_note(lang)") >= 4  # reading a file or a sheet, cleaning and preparing say it
