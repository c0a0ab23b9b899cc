"""What the model already knew: the bundled general set, perplexity before (adapter off) and after (on) on a
tiny model, the plain-words verdict with a mix recommendation, eval.json, the Compare tab's view, the card."""

import json
import math

import pytest

from test_evaluate_models import pair, tiny_run  # noqa: F401  (fixtures)


def test_the_bundled_set_is_small_and_bilingual():
    from studio.evaluate.forgetting import general_rows

    rows = general_rows()
    assert 20 <= len(rows) <= 60
    langs = [lang for lang, _, _ in rows]
    assert langs.count("en") >= 10 and langs.count("zh") >= 10
    for lang, prompt, reference in rows:
        assert prompt[-1]["role"] == "user" and reference.strip()
        if lang == "zh":
            assert any("\u4e00" <= ch <= "\u9fff" for ch in reference)


def test_perplexity_before_and_after(pair):  # noqa: F811
    from studio.evaluate.checks import run_to_end
    from studio.evaluate.forgetting import forgetting_steps, general_rows
    from studio.evaluate.generate import answer_nll

    rows = general_rows()
    seen = []
    result = run_to_end(forgetting_steps(pair, rows, is_busy=lambda: False, train_rows=300), seen.append)
    assert seen and seen[-1]["done"] == seen[-1]["total"]
    assert result["n"] == len(rows)
    for which in ("base", "finetuned"):
        m = result[which]
        assert m["perplexity"] > 1 and m["perplexity_en"] > 1 and m["perplexity_zh"] > 1
    # "before" is the model with its adapter off: the same figure as scoring the base directly.
    with pair.use("base") as model:
        total, count = answer_nll(model, pair.tokenizer, [(m, r) for _, m, r in rows])
    assert math.isclose(result["base"]["perplexity"], math.exp(total / count), rel_tol=1e-4)
    assert result["finetuned"]["perplexity"] != result["base"]["perplexity"]  # the adapter changes it
    assert result["verdict"] in ("improved", "kept", "slight", "marked")


@pytest.mark.parametrize("before,after,verdict,share,rows", [
    (10.0, 10.2, "kept", None, None), (10.0, 9.0, "improved", None, None), (10.0, 11.0, "slight", None, None),
    (10.0, 13.0, "marked", 0.10, 100), (10.0, 16.0, "marked", 0.20, 225), (10.0, 25.0, "marked", 0.30, 386)])
def test_verdict_and_recommendation(before, after, verdict, share, rows):
    from studio.evaluate.forgetting import judge, verdict_msg

    got = judge(before, after, train_rows=900)
    assert got["verdict"] == verdict and got["recommended_general_share"] == share and got["recommended_rows"] == rows
    result = {"n": 32, "base": {"perplexity": before}, "finetuned": {"perplexity": after}, **got}
    en, zh = verdict_msg(result).text("en"), verdict_msg(result).text("zh")
    assert f"{before:.2f}" in en and f"{after:.2f}" in en and f"{before:.2f}" in zh
    if share:
        assert f"{share * 100:.0f}% general chat" in en and f"{rows} rows" in en and "通用对话" in zh
    else:
        assert "general chat" not in en


def test_the_check_lands_in_eval_json_the_compare_tab_and_the_card(tiny_run, monkeypatch):  # noqa: F811
    from studio.evaluate import runner
    from studio.evaluate.checks import read_eval
    from studio.evaluate.views import checks_view
    from studio.export.card import _general

    monkeypatch.setattr(runner, "checked_run", lambda run_dir, *a: tiny_run)
    updates = list(runner.run_general(str(tiny_run), "en", is_busy=lambda: False))
    assert "progress" in updates[0] and updates[-1]["general_md"]
    general = read_eval(tiny_run)["general"]
    assert general["n"] >= 20 and general["base"]["perplexity"]
    monkeypatch.setattr("studio.evaluate.views.checked_run", lambda run_dir, *a: tiny_run)
    view = checks_view(str(tiny_run), "zh")
    assert "困惑度" in view["general_md"] and len(view["general_table"]) == 3
    card = "\n".join(_general(general, "en"))
    assert "Perplexity, Chinese" in card and f"{general['base']['perplexity']:.4g}" in card
    assert _general({}, "en") == []
    json.dumps(general)  # plain values only


def test_studio_eval_general(tiny_run, capsys):  # noqa: F811
    from studio.cli import main

    rc = main(["eval", str(tiny_run), "--json", "--max-rows", "2", "--max-new-tokens", "3", "--device", "cpu",
               "--general"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["general"]["verdict"] in ("improved", "kept", "slight", "marked")
    saved = json.loads((tiny_run / "eval.json").read_text(encoding="utf-8"))
    assert saved["general"]["finetuned"] == report["general"]["finetuned"]
    rc = main(["eval", str(tiny_run), "--max-rows", "2", "--max-new-tokens", "3", "--device", "cpu", "--general"])
    assert rc == 0 and "general questions" in capsys.readouterr().out
