"""`studio clean` end to end: the report contract, bad input, and nothing written on failure."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.cli import main
from studio.data.cli import load_tokenizer_or_none
from studio.data.pipeline import apply_edits, clean_file, load, preview_records
from studio.data.stats import language_mix, token_histogram
from studio.data.rows import make_row

REPO = Path(__file__).resolve().parent.parent
TINY = str(Path(__file__).parent / "fixtures" / "data" / "tiny_tokenizer")
FIVE = ("empty", "duplicate", "near_duplicate", "garbled", "too_long")
ANSWER = ("LoRA freezes the pretrained weights and trains two small low-rank matrices per layer, so one modest GPU "
          "can fine-tune a model that would otherwise need several, and the adapter is only a few megabytes.")


def rows_file(tmp_path):
    rows = [{"instruction": "What is LoRA?", "input": "", "output": ANSWER},
            {"instruction": "What is LoRA?", "input": "", "output": ANSWER + "  "},  # duplicate after normalising
            {"instruction": "What is LoRA?", "input": "", "output": ANSWER.replace("modest", "small")},  # near dup
            {"instruction": "Blank", "input": "", "output": " \t "},  # empty
            {"instruction": "Broken", "input": "", "output": "\ufffd\ufffd\ufffd\ufffd\ufffd"},  # garbled
            {"instruction": "Long", "input": "", "output": "word " * 300},  # too long at --cutoff-len 100
            {"instruction": "什么是微调？", "input": "", "output": "在预训练模型上继续训练，联系 bob@example.com。"}]
    p = tmp_path / "in.jsonl"
    p.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n{broken\n", encoding="utf-8")
    return p


def test_report_contract_and_output(tmp_path):
    src, out, rep = rows_file(tmp_path), tmp_path / "out.jsonl", tmp_path / "report.json"
    code = main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", TINY, "--cutoff-len", "100"])
    assert code == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["format"] == "sft" and report["detected"] == "instruction"
    assert all(report["removed"][k] == 1 for k in FIVE)
    assert report["removed"]["unparseable"] == 1
    assert report["input_rows"] == 8 and report["output_rows"] == 2
    assert report["input_rows"] == report["output_rows"] + sum(report["removed"].values())
    assert {(r["number"], r["reason"]) for r in report["removed_rows"]} == {
        (2, "duplicate"), (3, "near_duplicate"), (4, "empty"), (5, "garbled"), (6, "too_long"), (8, "unparseable")}
    assert report["flagged"] == {"personal_data": 1, "placeholder": 0} and report["flagged_rows"][0]["number"] == 7
    assert report["stats"]["before"]["rows"] == 7 and report["stats"]["after"]["rows"] == 2
    assert report["stats"]["after"]["tokens"]["max"] <= 100 and report["histogram"]["edges"]
    assert report["language"]["zh"] > 0 and report["language"]["en"] > 0
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"messages": [{"role": "user", "content": "What is LoRA?"}, {"role": "assistant", "content": ANSWER}]}
    assert lines[1]["messages"][1]["content"] == "在预训练模型上继续训练，联系 bob@example.com。"


def test_report_keys_are_present_with_zero_counts(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("prompt,completion\nHi,Hello\n", encoding="utf-8")
    report = clean_file(src, tmp_path / "o.jsonl", tmp_path / "r.json")
    assert all(report["removed"][k] == 0 for k in FIVE)
    assert json.loads((tmp_path / "r.json").read_text())["removed"] == report["removed"]
    assert any("No tokenizer" in n for n in report["notes"])


@pytest.mark.parametrize("name,data", [
    ("empty.jsonl", b""), ("blank.txt", b" \n\t\n"), ("bin.jsonl", bytes(range(256)) * 8),
    ("obj.json", b'{"name": "not a dataset"}'), ("cols.csv", b"foo,bar\n1,2\n"), ("missing.jsonl", None), ("folder", "dir"),
])
def test_bad_input_exits_non_zero_with_one_line_and_writes_nothing(tmp_path, capsys, name, data):
    src = tmp_path / name
    if data == "dir":
        src.mkdir()
    elif data is not None:
        src.write_bytes(data)
    before = hashlib.sha256(src.read_bytes()).hexdigest() if src.is_file() else None
    out, rep = tmp_path / "out" / "o.jsonl", tmp_path / "out" / "r.json"
    code = main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none"])
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith("studio clean: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists() and not rep.exists() and not (tmp_path / "out").exists()
    if before:
        assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    if name == "cols.csv":
        assert "foo, bar" in err


def test_output_over_the_input_is_refused(tmp_path, capsys):
    src = rows_file(tmp_path)
    before = src.read_bytes()
    assert main(["clean", str(src), "--out", str(src), "--tokenizer", "none"]) == 1
    assert "overwrite the input" in capsys.readouterr().err and src.read_bytes() == before


def test_mapping_override_split_and_mix(tmp_path, capsys):
    src = tmp_path / "qa.csv"
    src.write_text("q,a\n" + "".join(f"Question {i}?,Answer number {i} is here.\n" for i in range(20)), encoding="utf-8")
    out, ev = tmp_path / "train.jsonl", tmp_path / "eval.jsonl"
    code = main(["clean", str(src), "--out", str(out), "--format", "instruction", "--map", "prompt=q", "--map", "response=a",
                 "--tokenizer", "none", "--no-near-dup", "--eval-out", str(ev), "--eval-share", "0.2", "--general-share", "0"])
    assert code == 0, capsys.readouterr().err
    assert len(out.read_text().splitlines()) == 16 and len(ev.read_text().splitlines()) == 4
    assert main(["clean", str(src), "--out", str(out), "--map", "nothing=q", "--tokenizer", "none"]) == 1
    assert "--map takes PART=COLUMN" in capsys.readouterr().err


def test_tokenizer_fallbacks(monkeypatch, capsys):
    assert load_tokenizer_or_none("none") == (None, None)
    monkeypatch.setitem(sys.modules, "studio.models.loading", None)  # the lead's loader not there: no crash
    assert load_tokenizer_or_none("embedded") == (None, None)
    assert "no tokenizer is available" in capsys.readouterr().err
    tok, name = load_tokenizer_or_none(TINY)
    assert name == TINY and tok.chat_template


def test_python_dash_m_studio_clean(tmp_path):
    src, out, rep = rows_file(tmp_path), tmp_path / "o.jsonl", tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "studio", "clean", str(src), "--out", str(out), "--report", str(rep),
                           "--tokenizer", "none"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == str(out)
    assert json.loads(rep.read_text())["output_rows"] == len(out.read_text().splitlines()) == 3


def test_load_for_the_tab_and_histogram_figure(tmp_path):
    table, mapping = load(rows_file(tmp_path))
    assert mapping.kind == "instruction" and mapping.columns == ["instruction", "input", "output"]
    fig = token_histogram([10, 20, 30, 400], [10, 20, 30], cutoff=256, lang="zh")
    assert [t.name for t in fig.data] == ["清洗前", "清洗后"] and sum(fig.data[0].y) == 4
    assert [s.x0 for s in fig.layout.shapes] == [256]
    assert language_mix([make_row({"text": "中文中文 abcd 1234 ！？"}, 1)]) == {"zh": 0.5, "en": 0.5, "other": 0.0}


def test_preview_records_and_expert_edits_round_trip():
    rows = [make_row({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital?"},
                                   {"role": "assistant", "content": "Lyon."}]}, 3),
            make_row({"prompt": "Pet?", "chosen": "Cat", "rejected": "Rock"}, 4), make_row({"text": "doc"}, 5)]
    recs = preview_records(rows)
    assert recs[0] == {"number": 3, "kind": "dialog", "system": "Be brief.", "prompt": "Capital?", "answer": "Lyon."}
    assert recs[1]["chosen"] == "Cat" and recs[2]["text"] == "doc"
    recs[0]["answer"] = "Paris."
    out = apply_edits(rows, recs)
    assert out[0].data["messages"][-1]["content"] == "Paris." and rows[0].data["messages"][-1]["content"] == "Lyon."
    assert out[1] is rows[1] and out[2] is rows[2]


def test_unpaired_labels_on_the_command_line(tmp_path):
    src = tmp_path / "kto.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"prompt": "Capital of France?", "completion": "Paris.", "label": True},
        {"prompt": "Capital of France?", "completion": "Lyon.", "label": False}]) + "\n", encoding="utf-8")
    out, rep = tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none"]) == 0
    assert json.loads(rep.read_text())["removed"]["labelled_bad"] == 1
    assert "Lyon" not in out.read_text()
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none",
                 "--label-mode", "pairs"]) == 0
    assert json.loads(rep.read_text())["format"] == "preference"
    assert json.loads(out.read_text()) == {"prompt": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon."}


def test_report_has_the_template_check_of_the_rows_as_written(tmp_path):
    src, out, rep = rows_file(tmp_path), tmp_path / "o.jsonl", tmp_path / "r.json"
    # --cutoff-len 100: too_long removes the long row, so no answer that is written would be cut
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", TINY,
                 "--cutoff-len", "100"]) == 0
    template = json.loads(rep.read_text(encoding="utf-8"))["template"]
    assert template["cutoff"] == 100 and template["checked"] == 2 and template["ok"] is True
    assert (template["cut"], template["cut_entirely"], template["cut_partly"], template["failed"]) == (0, 0, 0, 0)
    # --cutoff-len 0 keeps every row; the check still meets training's default length, 2048 tokens
    long_rows = [{"instruction": "Long", "input": "", "output": "word " * 2100},
                 {"instruction": "Huge prompt " + "word " * 2100, "input": "", "output": "yes"},
                 {"instruction": "Short", "input": "", "output": "fine"}]
    src2 = tmp_path / "long.jsonl"
    src2.write_text("".join(json.dumps(r) + "\n" for r in long_rows), encoding="utf-8")
    assert main(["clean", str(src2), "--out", str(out), "--report", str(rep), "--tokenizer", TINY,
                 "--cutoff-len", "0", "--no-near-dup"]) == 0
    report = json.loads(rep.read_text(encoding="utf-8"))
    assert report["output_rows"] == 3 and report["removed"]["too_long"] == 0
    t = report["template"]
    assert t["cutoff"] == 2048 and (t["cut"], t["cut_entirely"], t["cut_partly"]) == (2, 1, 1)
    assert [(c["number"], c["cut"]) for c in t["cut_rows"]] == [(1, "partly"), (2, "entirely")]
    assert any("2 answers would be cut" in n for n in report["notes"])
    assert set(FIVE) <= set(report["removed"]) and {"format", "input_rows", "output_rows"} <= set(report)


def test_report_without_a_tokenizer_says_the_template_was_not_checked(tmp_path):
    src = tmp_path / "a.csv"
    src.write_text("prompt,completion\nHi,Hello\n", encoding="utf-8")
    report = clean_file(src, tmp_path / "o.jsonl", tmp_path / "r.json")
    assert report["template"]["ok"] is False and "No tokenizer" in report["template"]["problem"]


def test_clean_says_which_workbook_sheets_it_read_and_takes_another(tmp_path, capsys):
    from workbooks import two_sheets

    src, out, rep = two_sheets(tmp_path / "two.xlsx"), tmp_path / "o.jsonl", tmp_path / "r.json"
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none", "--no-near-dup"]) == 0
    said = capsys.readouterr().out
    assert "note: Sheets read: “First” (50 rows)." in said and "“Second” (70 rows)" in said and "--sheet" in said
    assert len(out.read_text().splitlines()) == 50
    assert main(["clean", str(src), "--out", str(out), "--report", str(rep), "--tokenizer", "none",
                 "--no-near-dup", "--sheet", "Second"]) == 0
    assert len(out.read_text().splitlines()) == 70
    assert json.loads(rep.read_text())["sheets"][1] == {"name": "Second", "rows": 70, "columns": ["prompt", "response"],
                                                       "read": True}
    assert main(["clean", str(src), "--out", str(out), "--tokenizer", "none", "--sheet", "Nope"]) == 1
    assert "Nope" in capsys.readouterr().err
