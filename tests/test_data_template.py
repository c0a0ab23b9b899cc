"""The template check renders every row with the model's chat template before training."""

from pathlib import Path

import pytest

from studio.data.rows import make_row
from studio.data.template_check import check_template
from studio.data.tokens import count_tokens, encode_lengths
from studio.messages import say

TINY = Path(__file__).parent / "fixtures" / "data" / "tiny_tokenizer"


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TINY)


def conv(*turns, n=1):
    roles = ["user", "assistant"] * len(turns)
    return make_row({"messages": [{"role": r, "content": c} for r, c in zip(roles, turns)]}, n)


def test_rows_that_fit_pass(tiny):
    rep = check_template([conv("one two", "three four"), conv("你好", "世界", n=2)], tiny, cutoff_len=50)
    assert rep.ok and rep.checked == 2 and rep.to_dict()["ok"] is True


def test_an_answer_crossing_the_cutoff_is_reported_with_how_much_is_lost(tiny):
    # prompt: <|im_start|> user q <|im_end|> <|im_start|> assistant = 6 tokens; answer 10 words + <|im_end|>
    rep = check_template([conv("q", "w " * 10, n=7)], tiny, cutoff_len=12)
    assert [c["number"] for c in rep.cut] == [7]
    assert rep.cut[0]["prompt_tokens"] == 6 and rep.cut[0]["total_tokens"] == 17
    assert "last 5 tokens" in rep.cut[0]["detail"]


def test_a_prompt_that_alone_reaches_the_cutoff_loses_the_whole_answer(tiny):
    rep = check_template([conv("w " * 20, "short", n=3)], tiny, cutoff_len=20)
    assert rep.cut[0]["number"] == 3 and "cut off entirely" in rep.cut[0]["detail"]


def test_only_the_last_answer_counts_in_multi_turn_rows(tiny):
    row = conv("a", "b", "c", "d")
    rep = check_template([row], tiny, cutoff_len=100)
    assert rep.ok


def test_rows_the_template_refuses_are_reported(tiny):
    bad = make_row({"messages": [{"role": "user", "content": "hi"}, {"role": "tool", "content": "x"},
                                 {"role": "assistant", "content": "ok"}]}, 4)
    rep = check_template([bad, conv("fine", "yes", n=5)], tiny)
    assert rep.failed == [{"number": 4, "error": "Unsupported role: tool"}] and rep.checked == 1


def test_preference_rows_check_the_longer_answer(tiny):
    row = make_row({"prompt": "which", "chosen": "w " * 20, "rejected": "no"}, 2)
    rep = check_template([row], tiny, cutoff_len=15)
    assert rep.cut[0]["total_tokens"] == 27  # 6 template + which + 20 words


def test_no_template_and_plain_text_are_one_sentence(tiny):
    from transformers import AutoTokenizer

    bare = AutoTokenizer.from_pretrained(TINY)
    bare.chat_template = None
    assert "no chat template" in str(check_template([conv("a", "b")], bare).problem)
    assert "Plain text" in str(check_template([make_row({"text": "doc"}, 1)], tiny).problem)


def test_token_counts_match_the_rendered_template(tiny):
    rows = [conv("one, two", "三四"), conv("a", "b", "c", "d"),
            make_row({"prompt": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}],
                      "chosen": "hello there", "rejected": "no"}, 3)]
    exact = []
    for r in rows:
        convs = [r.data["messages"]] if "messages" in r.data else \
            [r.data["prompt"] + [{"role": "assistant", "content": r.data[k]}] for k in ("chosen", "rejected")]
        exact.append(max(encode_lengths(tiny, [tiny.apply_chat_template(c, tokenize=False) for c in convs])))
    assert count_tokens(rows, tiny) == exact


def test_counts_say_how_answers_are_cut(tiny):
    rows = [conv("q", "w " * 10, n=1), conv("w " * 20, "short", n=2), conv("q", "fits", n=3)]
    rep = check_template(rows, tiny, cutoff_len=12)
    assert [(c["number"], c["cut"]) for c in rep.cut] == [(1, "partly"), (2, "entirely")]
    d = rep.to_dict()
    assert (d["cutoff"], d["checked"], d["cut"], d["cut_entirely"], d["cut_partly"], d["failed"]) == (12, 3, 2, 1, 1, 0)
    assert [c["number"] for c in d["cut_rows"]] == [1, 2] and d["ok"] is False


def test_a_cutoff_of_zero_is_checked_against_the_default_2048(tiny):
    rows = [conv("q", "w " * 2100, n=1), conv("q", "w " * 100, n=2)]
    rep = check_template(rows, tiny, cutoff_len=0)
    assert rep.cutoff == 2048 and [c["number"] for c in rep.cut] == [1]


def test_estimates_agree_with_rendering_every_row(tiny):
    from studio.data.template_check import TemplateReport, _measure

    rows = [conv("x " * (i % 13), "w " * (i * 7 % 90), n=i) for i in range(1, 200)]
    rows += [make_row({"prompt": "p " * (i % 30), "chosen": "c " * (i % 50), "rejected": "r " * (i % 40)}, 300 + i)
             for i in range(60)]
    for cutoff in (8, 20, 40, 64):
        exact = TemplateReport(cutoff=cutoff)
        _measure(rows, tiny, cutoff, 64, exact)
        assert check_template(rows, tiny, cutoff).cut == sorted(exact.cut, key=lambda c: c["number"])


def test_every_row_with_a_refused_role_order_is_reported(tiny):
    bad = [make_row({"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "tool", "content": "x"},
                                  {"role": "assistant", "content": "ok"}]}, i) for i in (4, 9)]
    rep = check_template([bad[0], conv("fine", "yes", n=5), bad[1]], tiny)
    assert [f["number"] for f in rep.failed] == [4, 9] and rep.checked == 1 and rep.to_dict()["failed"] == 2


def test_no_tokenizer_is_a_sentence_in_both_languages():
    rep = check_template([conv("a", "b")], None)
    assert "No tokenizer" in str(rep.problem) and rep.problem.text("zh") == say("data.template.no_tokenizer", "zh")
    assert rep.to_dict()["problem"] == str(rep.problem)
