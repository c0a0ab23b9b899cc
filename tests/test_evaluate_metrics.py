"""Text metrics on known strings, against values worked out by hand, and reading evaluation rows."""

import json
import math

import pytest

from studio.errors import StudioError
from studio.evaluate.metrics import (agreement, bleu, bleu_tokenizer, contains, exact_match, normalize, rouge_l,
                                     text_scores, tokenize)
from studio.evaluate.rows import alpaca_user_text, load_rows


def test_exact_match_trims_whitespace_punctuation_and_case():
    assert exact_match("  Positive. ", "positive") == 1.0
    assert exact_match("“正面”。", "正面") == 1.0
    assert exact_match("NEGATIVE!!", "negative") == 1.0
    assert exact_match("not positive", "positive") == 0.0
    assert normalize("  a   b  ") == "a b"
    assert contains("The review is positive.", "Positive") == 1.0
    assert contains("The review is negative.", "positive") == 0.0


def test_tokenize_splits_cjk_into_characters():
    assert tokenize("我喜欢 NLP 模型, OK!") == ["我", "喜", "欢", "nlp", "模", "型", "ok"]


def test_rouge_l_known_values():
    # LCS("the cat sat", "the cat sat on the mat") = 3: P = 3/3, R = 3/6, F = 2PR/(P+R) = 2/3.
    assert rouge_l("the cat sat", "the cat sat on the mat") == pytest.approx(2 / 3)
    # Character level for Chinese: LCS(今天天气很好, 今天天气不好) = 5 of 6 each way: F = 5/6.
    assert rouge_l("今天天气很好", "今天天气不好") == pytest.approx(5 / 6)
    assert rouge_l("", "anything") == 0.0
    assert rouge_l("Same words", "same words.") == pytest.approx(1.0)


def test_bleu_known_values_and_chinese_tokenizer():
    # Every n-gram matches; only the brevity penalty bites: BP = exp(1 - 7/6).
    expected = 100 * math.exp(1 - 7 / 6)
    assert bleu(["the cat sat on the mat"], ["the cat sat on the mat today"]) == pytest.approx(expected, abs=1e-6)
    # Chinese uses sacreBLEU's zh tokenizer (one character a token): the same arithmetic holds...
    assert bleu_tokenizer(["今天天气很好啊"]) == "zh"
    assert bleu(["今天天气很好"], ["今天天气很好啊"]) == pytest.approx(expected, abs=1e-6)
    # ...where 13a would see one "word" each and score 0.
    from sacrebleu.metrics import BLEU

    assert BLEU(tokenize="13a").corpus_score(["今天天气很好"], [["今天天气很好啊"]]).score == 0.0
    assert bleu_tokenizer(["plain English"]) == "13a"
    assert bleu(["an identical sentence here"], ["an identical sentence here"]) == pytest.approx(100.0)


def test_text_scores_means():
    s = text_scores(["positive", "The review is negative", "negative"], ["Positive", "negative", "positive"])
    assert s["n"] == 3
    assert s["exact_match"] == pytest.approx(1 / 3)
    assert s["contains"] == pytest.approx(2 / 3)
    assert 0 < s["rouge_l"] < 1


def test_agreement():
    same = agreement(["positive", "Positive.", "positive"])
    assert same["identical_pairs"] == 1.0 and same["majority_share"] == 1.0 and same["mean_rouge_l"] == 1.0
    mixed = agreement(["positive", "negative", "positive", "negative"])
    assert mixed["identical_pairs"] == pytest.approx(2 / 6)
    assert mixed["majority_share"] == 0.5


def test_load_rows_formats(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [
        {"instruction": "Classify.", "input": "Review: great", "output": "positive"},
        {"instruction": "Say hi.", "input": "", "output": "hi"},
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q1"},
                      {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Q2"},
                      {"role": "assistant", "content": "A2"}]},
        {"conversations": [{"from": "human", "value": "你好"}, {"from": "gpt", "value": "你好！"}]},
        {"question": "2+2?", "answer": "4"},
        {"text": "plain text has no reference"},
        {"prompt": "Be polite?", "chosen": "Of course.", "rejected": "No."},
        {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello!"}],
         "rejected": [{"role": "assistant", "content": "What."}]},
    ]
    path.write_text("\n".join(json.dumps(x, ensure_ascii=False) for x in lines), encoding="utf-8")
    rows = load_rows(path)
    assert len(rows) == 7
    assert rows[0].messages == [{"role": "user", "content": "Classify.\n\nReview: great"}]
    assert rows[0].reference == "positive"
    assert rows[1].messages[0]["content"] == "Say hi." == alpaca_user_text("Say hi.", "")
    assert rows[2].reference == "A2" and rows[2].messages[-1] == {"role": "user", "content": "Q2"}
    assert rows[2].prompt_text == "Q2" and len(rows[2].messages) == 4
    assert rows[3].reference == "你好！"
    assert rows[4].prompt_text == "2+2?"
    assert (rows[5].prompt_text, rows[5].reference) == ("Be polite?", "Of course.")
    assert (rows[6].prompt_text, rows[6].reference) == ("Hi", "Hello!")
    assert len(load_rows(path, max_rows=2)) == 2


def test_load_rows_refuses_unusable_files(tmp_path):
    path = tmp_path / "text.jsonl"
    path.write_text('{"text": "a"}\n', encoding="utf-8")
    with pytest.raises(StudioError):
        load_rows(path)
    with pytest.raises(StudioError):
        load_rows(tmp_path / "missing.jsonl")


def test_bleu_of_perfect_one_word_answers_is_100():
    from studio.evaluate.metrics import bleu

    assert bleu(["positive", "negative"], ["positive", "negative"]) > 99.9
    assert bleu(["negative", "positive"], ["positive", "negative"]) < 1.0
