"""Data that others made (issue 15): every valid row kept, no bad answer trained, on files written here.

One section per kind of failure: lines split only on line feeds; unpaired good/bad labels in every shape;
plain text split into blocks, never dropped; the cutoff chosen from the data within the model and memory;
data and model language; template placeholders. Token lengths use the tiny test tokenizer (a folder with
a ChatML template), so nothing loads the embedded model.
"""

import json
from pathlib import Path

import pytest

from studio.cli import main
from studio.data import session as ds
from studio.data.clean import CleanOptions, clean
from studio.data.cutoff import MIN_CUTOFF, choose_cutoff
from studio.data.detect import detect, to_rows
from studio.data.language import chinese_share, language_advice, speaks_chinese
from studio.data.pipeline import clean_file
from studio.data.read import lines_of, read_file
from studio.data.rows import make_row
from studio.messages import say

TINY = str(Path(__file__).parent / "fixtures" / "data" / "tiny_tokenizer")


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY)


def jsonl(path: Path, rows: list[dict]) -> Path:
    """JSONL as many writers leave it: non-ASCII characters as they are, not escaped."""
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# ---- 1. lines split on line feeds only ------------------------------------------------------------

# Each may sit inside a JSON string as it is; str.splitlines() splits on every one of them.
BREAKERS = {"NEL": "\u0085", "LS": "\u2028", "PS": "\u2029", "FF": "\x0c", "VT": "\x0b"}
# UTF-8 Chinese read as Latin-1: "入" is E5 85 A5, so its mojibake holds U+0085.
MOJIBAKE = "请输入您的问题".encode("utf-8").decode("latin-1")


def breaker_rows() -> list[dict]:
    rows = [{"instruction": f"Row with {name} inside", "output": f"before{c}after, kept whole"}
            for name, c in BREAKERS.items()]
    rows.append({"instruction": MOJIBAKE, "output": "这一行的问题是乱码，修好后保留。"})
    return rows


def raw_jsonl(path: Path, rows: list[dict]) -> Path:
    """Control characters written raw inside the strings, as a careless writer does (json.dumps escapes them)."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    for c in ("\x0c", "\x0b"):
        text = text.replace(json.dumps(c)[1:-1], c)
    path.write_bytes(text.encode("utf-8"))
    return path


def test_lines_of_splits_on_line_feeds_and_crlf_only():
    text = "a\u0085b\u2028c\u2029d\x0ce\x0bf\r\ng\n\nh"
    assert text.splitlines() != lines_of(text)
    assert lines_of(text) == ["a\u0085b\u2028c\u2029d\x0ce\x0bf", "g", "", "h"]
    assert lines_of("x\ry\r") == ["x", "y"]  # classic Mac line ends, and nothing else, split on CR


def test_the_reader_keeps_rows_with_line_breaking_characters_in_strings(tmp_path):
    p = raw_jsonl(tmp_path / "breakers.jsonl", breaker_rows())
    assert "\x0c" in p.read_text(encoding="utf-8")  # written raw, not escaped
    table = read_file(p)
    assert len(table.rows) == 6 and not table.skipped and table.numbers == [1, 2, 3, 4, 5, 6]
    assert [r["output"] for r in table.rows[:5]] == [f"before{c}after, kept whole" for c in BREAKERS.values()]
    # CRLF files too, and a text file: one document per line, whatever the line holds
    crlf = tmp_path / "crlf.jsonl"
    crlf.write_bytes(p.read_bytes().replace(b"\n", b"\r\n"))
    assert len(read_file(crlf).rows) == 6
    txt = tmp_path / "docs.txt"
    txt.write_text("".join(f"document {name}: one{c}two\n" for name, c in BREAKERS.items()), encoding="utf-8")
    assert [r["text"] for r in read_file(txt).rows] == [f"document {n}: one{c}two" for n, c in BREAKERS.items()]


def test_upload_keeps_every_row_and_repairs_the_mojibake(tmp_path):
    res = ds.load_data(raw_jsonl(tmp_path / "up.jsonl", breaker_rows()), session="s")
    assert res["ok"], res["error"]
    assert len(res["state"]["converted"].rows) == 6 and "⚠️" not in res["info_md"]
    out = ds.run_clean(res["state"], None, {"near_dup": False}, "none", session="s")
    assert out["ok"] and out["report"]["output_rows"] == 6
    assert out["report"]["changed"]["fixed_mojibake"] >= 1
    assert "请输入您的问题" in Path(out["cleaned_file"]).read_text(encoding="utf-8")


def test_studio_clean_keeps_every_row_and_repairs_the_mojibake(tmp_path):
    src, out, rep = raw_jsonl(tmp_path / "in.jsonl", breaker_rows()), tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none",
                 "--no-near-dup"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["input_rows"] == 6 and report["output_rows"] == 6 and report["removed"].get("unparseable", 0) == 0
    written = out.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(written) == 6
    assert "请输入您的问题" in written[-1]


def test_evaluation_rows_training_rows_and_edge_case_prompts_keep_every_row(tmp_path):
    from studio.engine.datasets import load_rows as training_rows
    from studio.evaluate.rows import load_rows as evaluation_rows

    p = raw_jsonl(tmp_path / "eval.jsonl", breaker_rows())
    assert len(evaluation_rows(p)) == 6
    assert len(training_rows(p)[0]) == 6
    canonical = jsonl(tmp_path / "canonical.jsonl", [
        {"messages": [{"role": "user", "content": f"q{c}q"}, {"role": "assistant", "content": f"a{c}a"}]}
        for c in BREAKERS.values()])
    assert len(evaluation_rows(canonical)) == 5 and len(training_rows(canonical)[0]) == 5
    from studio.evaluate.cli import read_prompts

    prompts = tmp_path / "edge.txt"
    prompts.write_text("".join(f"prompt{c}{i}\n" for i, c in enumerate(BREAKERS.values())), encoding="utf-8")
    assert len(read_prompts(prompts)) == 5


def test_every_bundled_sample_reads_one_record_per_line_feed():
    from studio.paths import SAMPLES_DIR

    for p in sorted(SAMPLES_DIR.glob("*.jsonl")):
        lines = [x for x in p.read_text(encoding="utf-8").split("\n") if x.strip()]
        table = read_file(p)
        assert len(table.rows) + len(table.skipped) == len(lines), p.name


# ---- 2. unpaired labels beside every shape ---------------------------------------------------------

GOOD, BAD = "Paris is the capital of France.", "Lyon is the capital of France."


def labelled(shape: str, good: bool, i: int, column: str = "label") -> dict:
    q = f"What is the capital of France? ({i})"
    a = GOOD if good else BAD
    if shape == "messages":  # LLaMA-Factory's KTO shape with OpenAI messages
        row = {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
    elif shape == "sharegpt":
        row = {"conversations": [{"from": "human", "value": q}, {"from": "gpt", "value": a}]}
    elif shape == "prompt_completion":  # TRL's unpaired shape
        row = {"prompt": q, "completion": a}
    else:
        row = {"instruction": q, "input": "", "output": a}
    return {**row, column: good}


@pytest.mark.parametrize("shape", ["messages", "sharegpt", "prompt_completion", "instruction"])
@pytest.mark.parametrize("column", ["label", "kto_tag"])
def test_answers_labelled_bad_never_become_sft_answers(tmp_path, shape, column):
    rows = [labelled(shape, i % 3 != 0, i, column) for i in range(9)]  # 3 bad, 6 good
    src = jsonl(tmp_path / f"{shape}.jsonl", rows)
    m = detect(read_file(src))
    assert m.kind == "unpaired" and m.label == column
    out, rep = tmp_path / "o.jsonl", tmp_path / "r.json"
    report = clean_file(src, out, rep, options=CleanOptions(near_dup=False, dedup=False))
    written = out.read_text(encoding="utf-8")
    assert BAD not in written and written.count(GOOD) == 6
    assert report["removed"]["labelled_bad"] == 3 and report["output_rows"] == 6
    assert {r["number"] for r in report["removed_rows"] if r["reason"] == "labelled_bad"} == {1, 4, 7}
    assert any("3 answers labelled bad were set aside" in n for n in report["notes"])


def test_labels_as_text_in_a_csv_and_in_the_data_tab(tmp_path):
    src = tmp_path / "kto.csv"
    src.write_text("instruction,output,kto_tag\nCapital of France?,Paris.,true\nCapital of France?,Lyon.,false\n"
                   "Capital of Italy?,Rome.,1\nCapital of Italy?,Milan.,0\n", encoding="utf-8")
    res = ds.load_data(src, session="s")
    assert res["ok"] and res["mapping"].kind == "unpaired"
    assert "2 answers labelled bad were set aside" in res["info_md"] and "cannot be used" not in res["info_md"]
    out = ds.run_clean(res["state"], None, {"near_dup": False}, "none", session="s")
    assert out["report"]["removed"]["labelled_bad"] == 2
    cleaned = Path(out["cleaned_file"]).read_text(encoding="utf-8")
    assert "Lyon" not in cleaned and "Milan" not in cleaned and "Paris" in cleaned and "Rome" in cleaned


# ---- 3. plain text for continued pre-training: blocks, never dropped -------------------------------

def test_long_documents_become_blocks_and_none_is_dropped(tmp_path, tiny):
    long_doc = " ".join(f"The handbook section {i} explains the travel allowance." for i in range(400))
    docs = [{"text": long_doc}, {"text": "A short note about the office hours."}, {"text": "差旅补贴 " * 300}]
    src, out, rep = jsonl(tmp_path / "cpt.jsonl", docs), tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", TINY,
                 "--cutoff-len", "256"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["removed"]["too_long"] == 0
    blocks = [json.loads(x)["text"] for x in out.read_text(encoding="utf-8").split("\n") if x]
    assert report["text"] == {"documents": 3, "blocks": len(blocks)} and len(blocks) > 3
    assert any("3 documents became" in n for n in report["notes"])
    from studio.data.tokens import encode_lengths

    assert max(encode_lengths(tiny, blocks)) <= 256
    # every character of every document is in the blocks, in order (blocks are cut at token boundaries)
    assert "".join("".join(b.split()) for b in blocks) == "".join("".join(d["text"].split()) for d in docs)


def test_a_text_file_is_split_with_the_default_block_length_when_the_cutoff_is_open(tmp_path, tiny):
    doc = "word " * 5000  # well over 2048 tokens
    src = tmp_path / "book.txt"
    src.write_text(doc + "\n", encoding="utf-8")
    report = clean_file(src, tmp_path / "o.jsonl", options=CleanOptions(), tokenizer=tiny)
    assert report["removed"]["too_long"] == 0 and report["text"]["documents"] == 1
    assert report["text"]["blocks"] >= 2 and report["cutoff"]["cutoff_len"] == 2048
    # the Data tab says it once in the notes, and the block length under the cutoff
    res = ds.load_data(src, session="s")
    tab = ds.run_clean(res["state"], None, {}, TINY, session="s")
    assert tab["report_md"].count("1 documents became") == 1 and "1 documents became" not in tab["cutoff_md"]
    assert "Plain text is cut into blocks of 2048 tokens" in tab["cutoff_md"]
    # no tokenizer: nothing is split and nothing dropped, and the report says so
    bare = clean_file(src, tmp_path / "o2.jsonl")
    assert bare["output_rows"] == 1 and any("not split into blocks" in n for n in bare["notes"])


# ---- 4. the cutoff chosen from the data ------------------------------------------------------------

def test_the_cutoff_keeps_99_percent_and_says_what_other_cutoffs_cost():
    lengths = [300] * 720 + [700] * 275 + [3000] * 5  # 28% over 512, as the Chinese Alpaca demo
    c = choose_cutoff(lengths, context_len=4096)
    assert c.cutoff >= 700 and c.covered >= 0.99 and c.over == 5
    texts = [str(m) for m in c.messages]
    assert texts[0] == (f"Cutoff {c.cutoff} tokens, chosen from the data: 100% of the rows fit whole "
                        "(the longest has 3000 tokens; 5 rows are longer).")
    assert any(t.startswith("A lower cutoff of") for t in texts)
    assert any(t.startswith("A cutoff of 3072 would keep every row whole") for t in texts)
    assert any("removed, or kept for training to truncate" in t for t in texts)


def test_the_cutoff_stays_within_the_context_and_the_memory_bound():
    lengths = [100] * 50 + [5000] * 50
    by_context = choose_cutoff(lengths, context_len=2048)
    assert by_context.cutoff == 2048 and by_context.over == 50
    assert any("The model reads at most 2048 tokens" in str(m) for m in by_context.messages)
    by_memory = choose_cutoff(lengths, context_len=8192, upper_bound=1024)
    assert by_memory.cutoff == 1024 and any("fits 1024 tokens per row in memory" in str(m) for m in by_memory.messages)
    assert choose_cutoff([10] * 100, None).cutoff == MIN_CUTOFF


def test_the_memory_bound_comes_from_the_run_plan(tmp_path, monkeypatch):
    from studio import hardware
    from studio.config import RunConfig
    from studio.plan import longest_fitting_length, plan

    cfg = RunConfig()
    cfg.model.name = "qwen2.5-7b-instruct"
    cfg.method.method, cfg.training.batch_size = "lora", 8
    gpu = hardware.described_gpu(24)
    n = longest_fitting_length(cfg, gpu)
    assert n and MIN_CUTOFF <= n < 32768
    for length, fits in ((n, True), (n + 256, False)):
        cfg.training.max_length = length
        assert plan(cfg, gpu, with_recommendations=False, with_duration=False).fits is fits
    # the Data tab asks with the Model tab's choices (ctx.model), for the hardware the plan is for
    small = ds.memory_bound({"name": "qwen2.5-7b-instruct", "method": "lora", "batch_size": 8, "target": "24"})
    assert small == n
    assert ds.memory_bound({"name": "/no/such/model/folder"}) is None
    # `studio clean` asks the plan of a run's config, or of the defaults for its model, on this machine
    from studio.data import cli as data_cli

    monkeypatch.setattr(hardware, "detect", lambda *a, **k: gpu)
    cfg.training.max_length = 1024
    cfg.save(tmp_path / "run.yaml")
    assert data_cli.memory_bound("embedded", str(tmp_path / "run.yaml")) == n
    assert data_cli.memory_bound("/a/tokenizer/folder") is None


def test_too_long_rows_are_dropped_or_truncated_and_the_reason_says_how_to_keep_them(tiny):
    rows = [make_row({"messages": [{"role": "user", "content": f"question {i}"},
                                   {"role": "assistant", "content": "short answer " + str(i)}]}, i + 1)
            for i in range(200)]
    rows.append(make_row({"messages": [{"role": "user", "content": "long"},
                                       {"role": "assistant", "content": "word " * 1500}]}, 201))
    dropped = clean(rows, CleanOptions(near_dup=False, dedup=False), tiny)
    assert dropped.cutoff is not None and dropped.cutoff_len == MIN_CUTOFF and len(dropped.rows) == 200
    why = dropped.removed[0].detail
    assert dropped.removed[0].reason == "too_long" and dropped.removed[0].number == 201
    assert "to keep it, raise the cutoff to" in str(why) and "truncate" in str(why)
    kept = clean(rows, CleanOptions(near_dup=False, dedup=False, too_long="truncate"), tiny)
    assert len(kept.rows) == 201 and kept.flagged_counts()["truncated"] == 1
    # a row longer than the model can read: raising the cutoff cannot keep it, and the reason says so
    capped = clean(rows, CleanOptions(near_dup=False, dedup=False, context_len=256), tiny)
    assert "truncate" in str(capped.removed[0].detail) and "raise the cutoff" not in str(capped.removed[0].detail)


def test_studio_clean_chooses_the_cutoff_and_says_how(tmp_path, capsys):
    rows = [{"instruction": f"Question {i}?", "output": "word " * (10 + 3 * i)} for i in range(200)]
    rows += [{"instruction": f"Long question {i}?", "output": "word " * 3000} for i in range(2)]  # the last 1%
    src, out, rep = jsonl(tmp_path / "grow.jsonl", rows), tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", TINY, "--no-near-dup"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    cutoff = report["cutoff"]
    assert cutoff["chosen_from_data"] and cutoff["covered"] >= 0.99 and cutoff["cutoff_len"] >= MIN_CUTOFF
    assert report["removed"]["too_long"] == cutoff["over"] == 2
    printed = capsys.readouterr().out
    assert f"cutoff: Cutoff {cutoff['cutoff_len']} tokens, chosen from the data" in printed
    for r in report["removed_rows"]:
        assert "to keep it" in r["detail"]
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", TINY, "--no-near-dup",
                 "--too-long", "truncate"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["output_rows"] == 202 and report["flagged"].get("truncated", 0) == 2


def test_the_data_tab_uses_the_memory_bound_and_shows_the_cutoff(tmp_path):
    rows = [{"question": f"Question {i} about the refund policy?", "answer": "Answer " + "word " * (20 + 5 * i)}
            for i in range(60)]
    res = ds.load_data(jsonl(tmp_path / "qa.jsonl", rows), session="s")
    out = ds.run_clean(res["state"], None, {"near_dup": False, "memory_len": 128}, TINY, session="s")
    assert out["ok"], out["error"]
    assert out["cutoff"] == 128 and "in memory" in out["cutoff_md"]
    assert out["report"]["cutoff"]["chosen_from_data"] is True


# ---- 5. data and model language --------------------------------------------------------------------

ZH = [{"instruction": "请介绍一下公司的差旅报销流程。", "output": "先在系统里提交申请，经理批准后再报销。"}] * 3


def test_chinese_data_on_an_english_model_names_a_model_that_speaks_chinese():
    rows = [make_row({"messages": [{"role": "user", "content": r["instruction"]},
                                   {"role": "assistant", "content": r["output"]}]}, i) for i, r in enumerate(ZH)]
    share = chinese_share(rows)
    assert share == 1.0
    advice = language_advice(share, "embedded")
    assert advice is not None
    text = str(advice)
    assert "100% of the rows are Chinese" in text and "embedded" in text and "qwen" in text.lower()
    assert language_advice(share, "qwen2.5-0.5b-instruct") is None  # it speaks Chinese
    assert language_advice(0.2, "embedded") is None  # mostly English data
    assert language_advice(share, "/a/local/folder") is None  # nothing says what it speaks
    assert speaks_chinese(("en", "multilingual (zh included)")) and not speaks_chinese(("en", "de"))
    assert "。" in say("data.language.model_no_zh_try", "zh", share="100%", model="x", suggestion="y") or \
        "中文" in say("data.language.model_no_zh_try", "zh", share="100%", model="x", suggestion="y")


def test_a_gated_model_is_proposed_only_with_the_login_it_needs(monkeypatch):
    from studio.models import catalog

    real = catalog.load()
    english = next(e for e in real if e.id == "smollm2-360m-instruct")
    gated = next(e for e in real if "gated" in e.licence.lower())
    import dataclasses

    gated_zh = dataclasses.replace(gated, id="gated-zh", languages=("zh", "en"), params_b=0.5)
    monkeypatch.setattr(catalog, "load", lambda path=None: [english, gated_zh])
    advice = str(language_advice(0.9, "smollm2-360m-instruct"))
    assert "gated-zh" in advice and "log in to the Hugging Face Hub" in advice


def test_the_data_and_model_tabs_say_so(tmp_path, monkeypatch, tiny):
    monkeypatch.setattr(ds, "_tokenizer", lambda name: tiny)  # the embedded model's tokenizer is not loaded
    res = ds.load_data(jsonl(tmp_path / "zh.jsonl", [{**r, "output": r["output"] + str(i)}
                                                     for i, r in enumerate(ZH)]), session="s")
    out = ds.run_clean(res["state"], None, {}, "embedded", session="s")
    assert out["ok"] and "qwen" in out["language_md"].lower()
    used = ds.use_for_training(res["state"], None, {}, {"eval_share": 0}, "embedded", session="s")
    assert used["ok"] and used["data"]["zh_share"] == 1.0
    from studio.ui.model_tab import default_settings, evaluate

    hw = {"cuda": False, "gpus": [], "ram_bytes": 64 * 2**30}
    model = evaluate(default_settings(), "en", hw, data=used["data"])
    assert "qwen" in model["language_md"].lower() and "Chinese" in model["language_md"]
    assert evaluate(default_settings(), "en", hw, data={})["language_md"] == ""
    zh = evaluate(default_settings(), "zh", hw, data=used["data"])
    assert "中文" in zh["language_md"]
    qwen = evaluate({**default_settings(), "model": "qwen2.5-0.5b-instruct"}, "en", hw, data=used["data"])
    assert qwen["language_md"] == ""


# ---- 6. placeholders --------------------------------------------------------------------------------

IDENTITY = [
    {"instruction": "Who are you?", "output": "I am {{name}}, an AI assistant developed by {{author}}."},
    {"instruction": "What is your name?", "output": "My name is {name}, made by {author}."},
    {"instruction": "Introduce yourself.", "output": "Hello! I am <NAME>, built by <AUTHOR>."},
    {"instruction": "Write a format string.", "output": "Use f'{x}' or '{0}'.format(x); HTML uses <div>."},
]


def test_placeholders_are_flagged_with_a_count(tmp_path):
    src, out, rep = jsonl(tmp_path / "identity.jsonl", IDENTITY), tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["flagged"]["placeholder"] == 3 and report["output_rows"] == 4
    assert sorted(f["number"] for f in report["flagged_rows"] if f["reason"] == "placeholder") == [1, 2, 3]
    assert any("3 rows hold unfilled placeholders" in n for n in report["notes"])


def test_a_name_and_an_author_fill_them_on_the_command_line_and_in_the_tab(tmp_path):
    src, out, rep = jsonl(tmp_path / "identity.jsonl", IDENTITY), tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none",
                 "--fill-name", "Ada", "--fill-author", "Acme Labs"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    written = out.read_text(encoding="utf-8")
    assert report["flagged"]["placeholder"] == 0 and report["changed"]["filled_placeholders"] == 3
    assert written.count("Ada") == 3 and written.count("Acme Labs") == 3
    assert "{x}" in written and "<div>" in written  # code and HTML are not placeholders
    res = ds.load_data(src, session="s")
    tab = ds.run_clean(res["state"], None, {"fill_name": "Ada", "fill_author": "Acme Labs"}, "none", session="s")
    assert tab["ok"] and tab["report"]["changed"]["filled_placeholders"] == 3
    assert "{{name}}" not in Path(tab["cleaned_file"]).read_text(encoding="utf-8")


def test_the_model_tab_never_proposes_a_gated_model_without_the_login(monkeypatch):
    from studio.models import catalog
    from studio.ui import model_tab as mt

    gated = next(e for e in catalog.load() if e.gated)
    hw = {"cuda": False, "gpus": [], "ram_bytes": 64 * 2**30}
    monkeypatch.setattr(mt, "largest_fitting", lambda cfg, p: (gated, p.estimate))
    res = mt.evaluate(mt.default_settings(), "en", hw)
    assert gated.id in res["largest"]["md"] and "needs a Hugging Face Hub login" in res["largest"]["md"]
    assert "Hugging Face Hub" in mt.evaluate(mt.default_settings(), "zh", hw)["largest"]["md"]
    big = mt.evaluate({**mt.default_settings(), "model": "qwen2.5-32b-instruct", "method": "full", "target": "8"},
                      "en", hw)
    for rec in big["recommendations"]:
        entry = catalog.find(rec["change"].get("model", ""))
        assert entry is None or not entry.gated or "needs a Hugging Face Hub login" in rec["text"]


def test_a_label_column_of_categories_is_not_read_as_good_or_bad(tmp_path):
    rows = [{"prompt": f"Where is my parcel {i}?", "completion": f"It ships in {i + 1} days.",
             "label": ["shipping", "billing", 3][i % 3]} for i in range(6)]
    m = detect(read_file(jsonl(tmp_path / "categories.jsonl", rows)))
    assert m.kind == "instruction" and m.label == ""
    report = clean_file(tmp_path / "categories.jsonl", tmp_path / "o.jsonl", options=CleanOptions(near_dup=False))
    assert report["output_rows"] == 6 and report["removed"].get("labelled_bad", 0) == 0
