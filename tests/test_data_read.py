"""Readers: every file type and encoding on small files written here; bad input is one sentence."""

import hashlib
import json
from pathlib import Path

import pytest

from studio.data.read import decode_bytes, read_file, upload_limit
from studio.errors import StudioError

ALPACA = [{"instruction": "什么是微调？", "input": "", "output": "在预训练模型上继续训练。"},
          {"instruction": "Translate", "input": "你好", "output": "Hello"}]
QA_BIG5 = "問題,答案\r\n什麼是微調？,在預訓練模型上繼續訓練，讓它更懂你的領域。\r\n什麼是 LoRA？,低秩適配器：只訓練很少的參數。\r\n"
QA_ZH = "问题,答案\r\n什么是微调？,在预训练模型上继续训练，让它更懂你的领域。\r\n什么是 LoRA？,低秩适配器：只训练很少的参数。\r\n"


def write(tmp_path, name, data):
    p = tmp_path / name
    p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return p


def jsonl(rows):
    return "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"


def test_jsonl_skips_bad_lines_with_their_numbers_and_keeps_the_rest(tmp_path):
    text = jsonl(ALPACA[:1]) + "\n   \n{not json}\n[1, 2]\n" + jsonl(ALPACA[1:])
    t = read_file(write(tmp_path, "d.jsonl", text.replace("\n", "\r\n")))
    assert [r["output"] for r in t.rows] == ["在预训练模型上继续训练。", "Hello"]
    assert t.numbers == [1, 6]
    assert [(s["number"], s["reason"]) for s in t.skipped] == [(4, "unparseable"), (5, "unparseable")]
    assert t.columns == ["instruction", "input", "output"] and t.input_rows == 4 and t.encoding == "utf-8"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-le-bom", "utf-16-be-bom", "gbk", "gb18030"])
def test_jsonl_in_every_common_encoding(tmp_path, encoding):
    text = jsonl(ALPACA)
    if encoding == "utf-16-le-bom":
        data = b"\xff\xfe" + text.encode("utf-16-le")
    elif encoding == "utf-16-be-bom":
        data = b"\xfe\xff" + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    t = read_file(write(tmp_path, "d.jsonl", data))
    assert t.rows == ALPACA


@pytest.mark.parametrize("encoding", ["gbk", "gb18030", "big5", "utf-8-sig", "utf-16"])
def test_chinese_csv_in_its_encoding(tmp_path, encoding):
    text = QA_BIG5 if encoding == "big5" else QA_ZH
    t = read_file(write(tmp_path, "qa.csv", text.encode(encoding)))
    assert len(t.rows) == 2
    assert t.columns[0] in ("问题", "問題")
    assert "LoRA" in list(t.rows[1].values())[0]
    assert list(t.rows[0].values())[1].endswith("。")


def test_csv_quoted_multiline_cells_crlf_and_blank_lines(tmp_path):
    text = 'prompt,response\r\n"Write a poem","Line one\r\nLine two, with a comma"\r\n\r\n"Say ""hi""",42\r\n'
    t = read_file(write(tmp_path, "d.csv", text))
    assert t.rows == [{"prompt": "Write a poem", "response": "Line one\r\nLine two, with a comma"},
                      {"prompt": 'Say "hi"', "response": "42"}]
    assert t.numbers == [2, 5]  # where each record starts in the file


def test_tsv_and_semicolon_csv(tmp_path):
    t = read_file(write(tmp_path, "d.tsv", "question\tanswer\nA?\tB.\n"))
    assert t.rows == [{"question": "A?", "answer": "B."}] and t.file_type == "tsv"
    t = read_file(write(tmp_path, "d.csv", "question;answer\nA?;B, C.\n"))
    assert t.rows == [{"question": "A?", "answer": "B, C."}]


def test_json_array_and_wrapper(tmp_path):
    t = read_file(write(tmp_path, "a.json", json.dumps(ALPACA, ensure_ascii=False, indent=2)))
    assert t.rows == ALPACA and t.number_label == "item" and t.numbers == [1, 2]
    t = read_file(write(tmp_path, "w.json", json.dumps({"version": 2, "data": ALPACA}, ensure_ascii=False)))
    assert t.rows == ALPACA
    t = read_file(write(tmp_path, "l.json", jsonl(ALPACA)))  # JSONL saved as .json
    assert t.rows == ALPACA
    t = read_file(write(tmp_path, "a.jsonl", json.dumps(ALPACA, indent=1)))  # and the other way round
    assert t.rows == ALPACA


def test_txt_lines_and_paragraphs(tmp_path):
    t = read_file(write(tmp_path, "a.txt", "First document.\r\nSecond document.\r\nThird document.\r\n"))
    assert [r["text"] for r in t.rows] == ["First document.", "Second document.", "Third document."]
    many = [f"Document {i}." for i in range(60)]
    t = read_file(write(tmp_path, "stray.txt", "\n".join(many[:30] + [""] + many[30:])))
    assert len(t.rows) == 60 and t.numbers[-1] == 61
    t = read_file(write(tmp_path, "b.txt", "Para one,\nstill one.\n\n\nPara two.\n"))
    assert [r["text"] for r in t.rows] == ["Para one,\nstill one.", "Para two."]


def test_parquet_with_nested_messages(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}], "n": 1}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    t = read_file(tmp_path / "d.parquet")
    assert t.rows == rows and t.file_type == "parquet"


def test_xlsx_skips_an_empty_first_sheet_and_keeps_numbers(tmp_path):
    import openpyxl

    wb = openpyxl.Workbook()
    wb.active.title = "notes"
    ws = wb.create_sheet("data")
    ws.append(["问题", "答案"])
    ws.append(["一加一等于几？", 2])
    ws.append([None, None])
    ws.append(["Line\nbreak?", "yes"])
    wb.save(tmp_path / "d.xlsx")
    t = read_file(tmp_path / "d.xlsx")
    assert t.rows == [{"问题": "一加一等于几？", "答案": 2}, {"问题": "Line\nbreak?", "答案": "yes"}]
    assert t.numbers == [2, 4] and t.number_label == "row"


def test_reading_never_changes_the_file(tmp_path):
    p = write(tmp_path, "d.csv", QA_ZH.encode("gbk"))
    before = hashlib.sha256(p.read_bytes()).hexdigest()
    read_file(p)
    assert hashlib.sha256(p.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("name,data,words", [
    ("empty.jsonl", b"", "empty"),
    ("blank.jsonl", b"  \r\n\n\t \n", "whitespace"),
    ("bin.jsonl", bytes(range(256)) * 20, "binary"),
    ("bin.csv", b"PK\x03\x04\x00\x00\x08\x00" + bytes(range(256)) * 8, "binary"),
    ("obj.json", b'{"name": "my data", "rows": 3}', "single JSON object"),
    ("two.json", b'{"a": [{"x": 1}], "b": [{"y": 2}]}', "several lists"),
    ("strs.json", b'["a", "b"]', "not of rows"),
    ("bad.json", b'[{"a": 1},', "not valid JSON"),
    ("all_bad.jsonl", b"nope\nstill nope\n", "No line"),
    ("fake.parquet", b"not parquet at all", "Parquet"),
    ("fake.xlsx", b"not a workbook", "Excel"),
    ("header_only.csv", b"question,answer\n", "no rows"),
])
def test_bad_input_is_one_sentence(tmp_path, name, data, words):
    p = write(tmp_path, name, data)
    with pytest.raises(StudioError) as e:
        read_file(p)
    msg = str(e.value)
    assert words.lower() in msg.lower() and "\n" not in msg


def test_missing_file_folder_and_size_cap(tmp_path):
    with pytest.raises(StudioError, match="no file"):
        read_file(tmp_path / "nope.jsonl")
    with pytest.raises(StudioError, match="folder"):
        read_file(tmp_path)
    p = write(tmp_path, "d.jsonl", jsonl(ALPACA))
    with pytest.raises(StudioError, match="upload limit"):
        read_file(p, max_bytes=10)


def test_upload_limit_is_configurable(monkeypatch):
    monkeypatch.delenv("STUDIO_MAX_UPLOAD_MB", raising=False)
    assert upload_limit() == 200 * 2**20
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "1.5")
    assert upload_limit() == int(1.5 * 2**20)


def test_decode_prefers_utf8_and_recognises_short_gbk():
    assert decode_bytes("中文 text".encode("utf-8")) == ("中文 text", "utf-8")
    text, enc = decode_bytes("问题,答案\n什么是微调？,继续训练。\n".encode("gbk"))
    assert text.startswith("问题") and enc == "gb18030"


# ---- short and long CJK files: GBK and Big5 are told apart from Korean, Japanese and UTF-16 guesses ----

GBK_SHORT = ["年假规定", "往返大交通", "实报实销", "机票、火车票", "差旅管理办法", "我去北京出差"]
BIG5_SHORT = ["年假規定", "什麼是微調", "請幫我翻譯這句話", "電腦壞了應該找誰處理", "網路連線不穩定時請重新開機",
              "請問年假怎麼計算", "低秩適配器只訓練很少的參數"]


@pytest.mark.parametrize("words", GBK_SHORT)
def test_short_gbk_strings_are_chinese(words):
    assert decode_bytes(words.encode("gbk")) == (words, "gb18030")


@pytest.mark.parametrize("words", BIG5_SHORT)
def test_short_big5_strings_are_chinese(words):
    assert decode_bytes(words.encode("big5")) == (words, "big5")


@pytest.mark.parametrize("encoding,words", [("gbk", w) for w in GBK_SHORT] + [("big5", w) for w in BIG5_SHORT])
def test_one_row_jsonl_and_csv_in_gbk_or_big5(tmp_path, encoding, words):
    row = {"instruction": words, "output": words + "。"}
    t = read_file(write(tmp_path, "one.jsonl", (json.dumps(row, ensure_ascii=False) + "\n").encode(encoding)))
    assert t.rows == [row] and t.encoding == ("gb18030" if encoding == "gbk" else "big5")
    header = "问题,答案" if encoding == "gbk" else "問題,答案"
    t = read_file(write(tmp_path, "one.csv", f"{header}\r\n{words},{words}。\r\n".encode(encoding)))
    assert t.rows == [dict(zip(header.split(","), [words, words + "。"]))]


def test_longer_gbk_and_big5_files(tmp_path):
    rows = [json.loads(line) for line in (Path(__file__).resolve().parents[1] / "assets" / "samples"
                                          / "company_policy_zh.jsonl").read_text(encoding="utf-8").splitlines()[:40]]
    t = read_file(write(tmp_path, "long.jsonl", jsonl(rows).encode("gbk")))
    assert t.rows == rows and t.encoding == "gb18030"
    text = "問題,答案\r\n" + "".join(f"{w},{w}。\r\n" for w in BIG5_SHORT * 3)
    t = read_file(write(tmp_path, "long.csv", text.encode("big5")))
    assert len(t.rows) == 3 * len(BIG5_SHORT) and t.rows[3]["問題"] == BIG5_SHORT[3] and t.encoding == "big5"


def test_utf16_needs_its_bom_or_its_nul_bytes():
    text = "问题,答案\n你好,世界\n"
    assert decode_bytes(text.encode("utf-16")) == (text, "utf-16")  # with a BOM
    assert decode_bytes("a,b\nhello,world\n".encode("utf-16-le"))[0] == "a,b\nhello,world\n"  # ASCII: NUL bytes
    # Big5 bytes that happen to be valid UTF-16 are not read as UTF-16 without a BOM
    assert decode_bytes("年假規定".encode("big5"))[1] == "big5"


def test_japanese_and_korean_files_still_read():
    ja = "会社の休暇制度について教えてください。"
    assert decode_bytes(ja.encode("shift_jis"))[0] == ja
    ko = "회사의 휴가 정책은 무엇입니까? 오늘 날씨가 좋네요."
    assert decode_bytes(ko.encode("cp949"))[0] == ko


# ---- the upload cap: one number for Gradio, the reader and the tab ----

def test_upload_limit_on_a_space_is_the_safe_mode_cap(monkeypatch):
    from studio.policy import SPACE_LIMITS

    monkeypatch.delenv("STUDIO_MAX_UPLOAD_MB", raising=False)
    monkeypatch.setenv("SPACE_ID", "someone/studio")
    monkeypatch.delenv("STUDIO_SAFE_MODE", raising=False)
    assert upload_limit() == SPACE_LIMITS.max_upload_mb * 2**20 == 20 * 2**20
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "50")  # the Space owner's variable
    assert upload_limit() == 50 * 2**20
    monkeypatch.setenv("STUDIO_SAFE_MODE", "0")  # a private Space without safe mode: the plain setting
    assert upload_limit() == 50 * 2**20


def test_bad_or_zero_cap_falls_back_to_the_default(monkeypatch):
    for value in ("lots", "0", "-3"):
        monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", value)
        assert upload_limit() == 200 * 2**20


def test_a_file_over_a_tiny_cap_is_one_clear_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_MAX_UPLOAD_MB", "0.001")  # about 1 KB
    p = write(tmp_path, "big.jsonl", jsonl(ALPACA * 20))
    with pytest.raises(StudioError) as e:
        read_file(p, max_bytes=upload_limit())
    assert str(e.value) == "big.jsonl is 3 KB, over the 1 KB upload limit; split it into smaller files."
    assert "超过了 1 KB 的上传上限" in e.value.text("zh")


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods"])
def test_a_workbook_whose_sheets_differ_reads_one_and_says_which_were_left(tmp_path, suffix):
    from workbooks import two_sheets

    from studio.data.read import sheet_choices, sheet_notes
    from studio.messages import say

    p = two_sheets(tmp_path / f"two{suffix}")
    t = read_file(p)
    assert len(t.rows) == 50 and t.columns == ["instruction", "output"] and t.numbers[:2] == [2, 3]
    assert [(s["name"], s["rows"], s["read"]) for s in t.sheets] == [("First", 50, True), ("Second", 70, False)]
    assert sheet_choices(t) == ["First", "Second"]
    notes = [n.text("en") for n in sheet_notes(t)]
    assert notes[0] == "Sheets read: “First” (50 rows)." and "“Second” (70 rows)" in notes[1]
    assert "--sheet" in notes[1] and "“First”（50 行）" in sheet_notes(t)[0].text("zh")
    second = read_file(p, sheet="Second")
    assert len(second.rows) == 70 and second.columns == ["prompt", "response"]
    assert [s["read"] for s in second.sheets] == [False, True]
    with pytest.raises(StudioError) as e:
        read_file(p, sheet="Third")
    assert "Third" in str(e.value) and "First" in str(e.value)
    with pytest.raises(StudioError):
        read_file(write(tmp_path, "d.csv", b"a,b\n1,2\n"), sheet="First")
    assert say("data.sheets.left", "zh", sheets="x").startswith("未读取的工作表")


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods"])
def test_a_workbook_whose_sheets_agree_is_read_as_one_table(tmp_path, suffix):
    from workbooks import agreeing_sheets

    from studio.data.read import sheet_choices, sheet_notes

    t = read_file(agreeing_sheets(tmp_path / f"agree{suffix}"))
    assert len(t.rows) == 50 and t.number_label == "item" and t.numbers == list(range(1, 51))
    assert t.rows[30] == {"output": "Answer 0 of the second quarter.", "instruction": "Question 0 of Q2?"}
    assert sheet_choices(t) == []  # nothing to choose: every sheet with rows is read
    en = [n.text("en") for n in sheet_notes(t)]
    assert en == ["Sheets read: “Q1” (30 rows, numbered 1–30 here), “Q2” (20 rows, numbered 31–50 here).",
                  "Sheets with no rows: Notes."]
