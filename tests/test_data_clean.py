"""Each cleaning step on rows built to trip it, and the whole run on a mixed bag."""

import copy
from pathlib import Path

import pytest

from studio.data import clean as C
from studio.data import pii
from studio.data.rows import make_row
from studio.errors import StudioError

TINY = Path(__file__).parent / "fixtures" / "data" / "tiny_tokenizer"
LONG_EN = ("Low-rank adaptation freezes the pretrained weights and trains two small matrices per layer, "
           "so a single consumer GPU can fine-tune a model that would otherwise need a cluster of them.")
LONG_ZH = ("低秩适配冻结预训练权重，只在每一层训练两个很小的矩阵，因此一张消费级显卡就能微调原本需要一整个集群才能训练的模型。"
           "训练结束后，适配器可以合并回原模型，推理时不增加任何延迟，也可以为不同任务保存多个小适配器。")


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY)


def qa(q, a, n=1):
    return make_row({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}, n)


def rows_of(*pairs):
    return [qa(q, a, i) for i, (q, a) in enumerate(pairs, 1)]


def answers(result):
    return [r.data["messages"][-1]["content"] for r in result.kept]


def test_normalize_nfc_whitespace_and_keeps_fullwidth_punctuation_and_indentation():
    r = C.normalize(rows_of(("  Cafe\u0301?\r\n", "你好，世界！（全角）\u00a0ok\u200b \n\n\n\nend\t"),
                            ("code", "def f():\n    return 1  \n")))
    assert r.kept[0].data["messages"][0]["content"] == "Café?"
    assert answers(r) == ["你好，世界！（全角） ok\n\nend", "def f():\n    return 1"]
    assert [(c.number, c.reason) for c in r.changed] == [(1, "normalized"), (2, "normalized")]


def test_fix_mojibake_repairs_and_reports_before_and_after():
    broken = "微调很有用，对吧？".encode("utf-8").decode("latin-1")
    r = C.fix_mojibake(rows_of(("cafÃ© au lait", broken), ("我们今天学习微调。", "你好，世界！")))
    assert r.kept[0].data["messages"][0]["content"] == "café au lait"
    assert answers(r) == ["微调很有用，对吧？", "你好，世界！"]
    assert [(c.number, c.reason) for c in r.changed] == [(1, "fixed_mojibake")]
    assert r.changed[0].before == "cafÃ© au lait" and r.changed[0].after == "café au lait"


def test_strip_control_characters():
    r = C.strip_control(rows_of(("he\x00llo\x07", "fine\ttab\nnewline"),))
    assert r.kept[0].data["messages"][0]["content"] == "hello"
    assert answers(r) == ["fine\ttab\nnewline"]
    assert [c.reason for c in r.changed] == ["stripped_control"]


@pytest.mark.parametrize("bad", ["\ufffd\ufffd\ufffd\ufffd ok", "锟斤拷锟斤拷锟斤拷", "???? ??? ?????", "\ue000\ue001\ue002x",
                                 "\x01\x02\x03\x04ab"])
def test_garbled_rows_are_dropped(bad):
    r = C.drop_garbled(rows_of(("question", bad), ("question", "A real answer, is it? Yes\ufffd.")))
    assert [x.reason for x in r.removed] == ["garbled"] and r.removed[0].number == 1
    assert len(r.kept) == 1


@pytest.mark.parametrize("q,a,why", [("Q?", "   ", "blank answer"), ("\u3000 ", "A.", "no question"),
                                     ("Q?", "<think>\nhmm\n</think>\n\n ", "blank answer")])
def test_empty(q, a, why):
    r = C.drop_empty(rows_of((q, a), ("Q?", "A.")))
    assert [(x.reason, str(x.detail)) for x in r.removed] == [("empty", why)] and len(r.kept) == 1


def test_empty_preference_text_and_identical_pairs():
    rows = [make_row({"prompt": "P", "chosen": " ", "rejected": "r"}, 1), make_row({"prompt": "P", "chosen": "x", "rejected": "x"}, 2),
            make_row({"prompt": "P", "chosen": "good", "rejected": "bad"}, 3)]
    r = C.drop_empty(rows)
    assert [(x.number, x.reason) for x in r.removed] == [(1, "empty"), (2, "identical_pair")]
    r = C.drop_empty([make_row({"text": "\n "}, 1), make_row({"text": "doc"}, 2)])
    assert [x.reason for x in r.removed] == ["empty"]


def test_too_short_counts_the_visible_answer():
    r = C.drop_too_short(rows_of(("Q", "ok"), ("Q", "<think>\nlong thinking here\n</think>\n\nA"), ("Q", "long enough")), 3)
    assert [(x.number, x.reason) for x in r.removed] == [(1, "too_short"), (2, "too_short")]


def test_exact_duplicates_after_normalisation():
    rows = C.normalize(rows_of(("What is LoRA?", "An adapter."), ("What is LoRA?  ", "An adapter.\r\n"),
                               ("What is LoRA?", "Something else."))).kept
    r = C.drop_duplicates(rows)
    assert [(x.number, x.reason, str(x.detail)) for x in r.removed] == [(2, "duplicate", "same as #1")]
    assert len(r.kept) == 2


def test_near_duplicates_english_and_chinese_threshold_adjustable():
    rows = rows_of(("Explain LoRA", LONG_EN), ("Explain LoRA", LONG_EN.replace("single", "lone")),
                   ("解释一下", LONG_ZH), ("解释一下", LONG_ZH.replace("消费级", "消费")),
                   ("Something else", "A completely different answer about the weather in Paris today."))
    r = C.drop_near_duplicates(rows, 0.85)
    assert [(x.number, x.reason) for x in r.removed] == [(2, "near_duplicate"), (4, "near_duplicate")]
    assert "alike to #1" in str(r.removed[0].detail)
    assert C.drop_near_duplicates(rows, 0.99).removed == []


def test_personal_data_patterns():
    good_id = "11010519491231002X"  # checksum right
    text = f"身份证{good_id}，手机 138-1234-5678，邮箱 a.b@example.com，卡 4111 1111 1111 1111，电话 +44 20 7946 0958"
    masked, kinds = pii.scan(text)
    assert sorted(kinds) == ["bank_card", "email", "id_number", "phone", "phone"]
    assert masked == "身份证[ID_NUMBER]，手机 [PHONE]，邮箱 [EMAIL]，卡 [BANK_CARD]，电话 [PHONE]"
    # wrong check digits, order numbers and dates are left alone
    assert pii.scan("身份证110105194912310021 卡 4111 1111 1111 1112 订单 2024-01-01 共 100000 元")[1] == []


@pytest.mark.parametrize("mode", ["flag", "mask", "drop"])
def test_personal_data_modes(mode):
    r = C.personal_data(rows_of(("Call me", "My number is 13812345678."), ("Hi", "Hello.")), mode)
    if mode == "flag":
        assert len(r.kept) == 2 and r.flagged == [{"number": 1, "reason": "personal_data", "detail": "phone"}]
    elif mode == "mask":
        assert answers(r)[0] == "My number is [PHONE]." and r.changed[0].reason == "masked_personal_data"
    else:
        assert [(x.number, x.reason) for x in r.removed] == [(1, "personal_data")] and len(r.kept) == 1


def test_too_long_uses_the_template_and_only_tokenizes_rows_that_could_be_long(tiny):
    rows = rows_of(("one two three", "four five six seven"), ("short", "x " * 80))
    r = C.drop_too_long(rows, tiny, cutoff_len=60)
    # row 1 is 40 bytes with its template: it cannot reach 60 tokens, so it is never tokenized
    assert rows[0].tokens is None
    assert [(x.number, x.reason) for x in r.removed] == [(2, "too_long")]
    assert str(r.removed[0].detail).startswith("87 tokens, over the cutoff of 60")  # 6 template + 1 + 80


def test_too_long_without_a_tokenizer_is_a_note():
    r = C.drop_too_long(rows_of(("q", "a")), None)
    assert len(r.kept) == 1 and "No tokenizer" in str(r.note)


def test_clean_runs_every_step_and_never_changes_its_input(tiny):
    rows = rows_of(("What is LoRA?", LONG_EN), ("What is LoRA?", LONG_EN + "  "), ("What is LoRA?", LONG_EN.replace("two", "2")),
                   ("Q", "   "), ("Q", "\ufffd\ufffd\ufffd\ufffd"), ("Mail?", "bob@example.com"), ("cafÃ©?", "Yes."),
                   ("Long?", "word " * 3000), ("你好，世界！", "你好！"))
    before = copy.deepcopy([r.data for r in rows])
    res = C.clean(rows, C.CleanOptions(cutoff_len=2048), tiny)
    assert [r.data for r in rows] == before
    counts = res.removed_counts()
    assert {k: counts[k] for k in ("empty", "duplicate", "near_duplicate", "garbled", "too_long")} == \
           {"empty": 1, "duplicate": 1, "near_duplicate": 1, "garbled": 1, "too_long": 1}
    assert res.changed_counts()["fixed_mojibake"] == 1
    assert [f["number"] for f in res.flagged] == [6]
    assert [r.number for r in res.rows] == [1, 6, 7, 9]
    assert res.rows[-1].data["messages"][0]["content"] == "你好，世界！"
    assert len(res.tokens_before) == 9 and len(res.tokens_after) == 4 and all(n > 0 for n in res.tokens_after)


def test_token_statistics_are_sampled_in_big_inputs(tiny):
    rows = [qa(f"question number {i}", f"answer {i} " * (i % 7 + 1), i) for i in range(1, 41)]
    res = C.clean(rows, C.CleanOptions(token_sample=10, near_dup=False), tiny)
    assert len(res.tokens_before) == 10 and len(res.tokens_after) == 10


def test_options_are_checked():
    with pytest.raises(StudioError, match="flag, mask, drop"):
        C.clean([], C.CleanOptions(pii="hide"))
    with pytest.raises(StudioError, match="threshold"):
        C.CleanOptions(near_dup_threshold=1.5).check()
