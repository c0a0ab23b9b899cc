"""Tally and interval arithmetic, ratings, the votes file and the preference pairs it yields."""

import json
import threading

import pytest

from studio.evaluate import votes as votes_mod
from studio.evaluate.report import export_csv, ratings_figure, tally_figure
from studio.evaluate.tally import Tally, mean_ci, rating_summary, t95, tally, tally_by_voter, tally_table, wilson


def _vote(winner, voter="v1", prompt="p", base="b", ft="f"):
    return {"kind": "vote", "voter": voter, "winner": winner, "prompt": prompt,
            "messages": [{"role": "user", "content": prompt}], "answers": {"base": base, "finetuned": ft}}


def test_wilson_reference_values():
    # Reference: 8 of 10 gives (0.4902, 0.9433) (statsmodels proportion_confint(8, 10, method="wilson")).
    low, high = wilson(8, 10)
    assert low == pytest.approx(0.49016, abs=1e-4) and high == pytest.approx(0.94332, abs=1e-4)
    low, high = wilson(21, 27)
    assert low == pytest.approx(0.5924, abs=1e-4) and high == pytest.approx(0.8939, abs=1e-4)
    assert wilson(0, 5)[0] == 0.0 and wilson(5, 5)[1] == 1.0  # stays inside [0, 1]
    assert wilson(0, 0) == (0.0, 1.0)


def test_t_quantiles_and_mean_ci():
    assert t95(1) == 12.706 and t95(30) == 2.042
    assert t95(60) == pytest.approx(2.000, abs=2e-3) and t95(1000) == pytest.approx(1.962, abs=1e-3)
    mean, low, high = mean_ci([4, 5, 3, 4])  # sd = 0.8165, half = 3.182 * 0.8165 / 2
    assert mean == 4 and high - mean == pytest.approx(3.182 * 0.816497 / 2, abs=1e-4)
    assert mean_ci([5, 5, 5], 1, 5) == (5, 5, 5)
    assert mean_ci([1, 5], 1, 5)[1] == 1  # clipped to the rating scale


def test_tally_counts_ties_and_both_bad_apart():
    records = [_vote("finetuned")] * 21 + [_vote("base", voter="v2")] * 6 + [_vote("tie")] * 3 + [_vote("both_bad")]
    t = tally(records)
    assert (t.finetuned_wins, t.base_wins, t.ties, t.both_bad) == (21, 6, 3, 1)
    assert t.decided == 27 and t.total == 31 and t.voters == 2
    assert t.win_rate == pytest.approx(21 / 27)
    assert t.verdict == "improvement"
    assert t.sentence() == ("Fine-tuned wins 78% of decided votes, 95% CI 59-89%, from 27 votes "
                            "(plus 3 ties, 1 both bad): a clear improvement.")
    assert "78%" in t.sentence("zh") and "明显提升" in t.sentence("zh")
    d = t.to_dict()
    assert d["ci_low"] == pytest.approx(0.5924, abs=1e-4) and d["message"]["id"] == "eval.tally.sentence"


def test_tally_verdicts():
    assert Tally(finetuned_wins=6, base_wins=4).verdict == "unclear"
    assert "no clear difference" in Tally(finetuned_wins=6, base_wins=4).sentence()
    assert Tally(finetuned_wins=1, base_wins=20).verdict == "worse"
    assert Tally(ties=2).verdict == "none" and "No decided votes" in Tally(ties=2).sentence()
    assert "还没有" in Tally().sentence("zh")


def test_tally_per_voter_and_table():
    records = [_vote("finetuned", "alice"), _vote("finetuned", "alice"), _vote("base", "bob"), _vote("tie", "bob")]
    by = tally_by_voter(records)
    assert by["alice"].finetuned_wins == 2 and by["bob"].base_wins == 1 and by["bob"].ties == 1
    table = tally_table(records)
    assert list(table["voter"]) == ["all", "alice", "bob"]
    assert table.loc[0, "decided"] == 3


def test_rating_summary_paired_difference():
    ratings = [{"kind": "rating", "voter": v, "scores": {"base": b, "finetuned": f}}
               for v, b, f in [("a", 2, 4), ("a", 3, 5), ("b", 2, 4), ("b", 1, 4), ("c", 3, 4)]]
    s = rating_summary(ratings + [_vote("base")])  # votes are ignored here
    assert s.n == 5
    assert s.means["finetuned"]["mean"] == pytest.approx(4.2)
    assert s.means["base"]["mean"] == pytest.approx(2.2)
    assert s.difference["mean"] == pytest.approx(2.0) and s.difference["ci_low"] > 0
    assert s.verdict == "improvement"
    assert s.per_voter["a"] == {"base": 2.5, "finetuned": 4.5}
    assert "fine-tuned 4.2" in s.sentence() and "微调模型" in s.sentence("zh")
    assert rating_summary([]).sentence() == "No ratings yet."


def test_votes_file_concurrent_appends(tmp_path):
    path = tmp_path / "votes.jsonl"

    def voter(k):
        for i in range(25):
            votes_mod.append_record(path, {"kind": "vote", "voter": f"v{k}", "i": i, "text": "答" * 200})

    threads = [threading.Thread(target=voter, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 100 and all(json.loads(line)["kind"] == "vote" for line in lines)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"kind": "vote", "cut by a cra')  # a crash mid-line is skipped on reading
    assert len(votes_mod.read_records(path)) == 100
    assert votes_mod.read_records(tmp_path) == votes_mod.read_records(path)


def test_winner_of():
    sides = {"A": "finetuned", "B": "base"}
    assert votes_mod.winner_of("A", sides) == "finetuned"
    assert votes_mod.winner_of("B", sides) == "base"
    assert votes_mod.winner_of("both_bad", sides) == "both_bad"
    with pytest.raises(ValueError):
        votes_mod.winner_of("C", sides)


def test_preference_pairs_flywheel(tmp_path):
    records = [
        _vote("finetuned", prompt="q1", base="bad answer", ft="good answer"),
        _vote("finetuned", voter="v2", prompt="q1", base="bad answer", ft="good answer"),  # same round, 2 voters
        _vote("base", prompt="q2", base="base wins", ft="ft loses"),
        _vote("tie", prompt="q3"),
        _vote("both_bad", prompt="q4"),
        _vote("finetuned", prompt="q5", base="same", ft="same"),
        {"kind": "rating", "voter": "v1", "scores": {"base": 1, "finetuned": 5}},
        {**_vote("finetuned", prompt="q6", base="x", ft="y"),
         "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "q6"}]},
    ]
    pairs = votes_mod.preference_pairs(records)
    assert pairs[0] == {"prompt": "q1", "chosen": "good answer", "rejected": "bad answer"}
    assert pairs[1] == {"prompt": "q2", "chosen": "base wins", "rejected": "ft loses"}
    assert pairs[2]["prompt"][0]["role"] == "system"  # a conversation keeps TRL's conversational form
    assert pairs[2]["chosen"] == [{"role": "assistant", "content": "y"}]
    assert len(pairs) == 3
    for rec in records:
        votes_mod.append_record(tmp_path / "votes.jsonl", rec)
    out, n = votes_mod.save_preference_pairs(tmp_path)
    assert n == 3 and out == tmp_path / "data" / "preferences.jsonl"
    assert json.loads(out.read_text(encoding="utf-8").splitlines()[0])["chosen"] == "good answer"


def test_figures_and_csv_export(tmp_path):
    records = [_vote("finetuned", "alice"), _vote("base", "bob"),
               {**_vote(None, "alice"), "kind": "rating", "scores": {"base": 2, "finetuned": 4}},
               {**_vote(None, "bob"), "kind": "rating", "scores": {"base": 3, "finetuned": 4}}]
    fig = tally_figure(records)
    assert len(fig.data) == 4 and "Fine-tuned wins 50%" in fig.layout.title.text
    assert len(ratings_figure(records, lang="zh").data) == 2
    for rec in records:
        votes_mod.append_record(tmp_path / "votes.jsonl", rec)
    files = {p.name for p in export_csv(tmp_path)}
    assert {"votes.csv", "tally.csv", "ratings.csv"} <= files
    assert (tmp_path / "eval_export" / "votes.csv").read_bytes().startswith(b"\xef\xbb\xbf")  # Excel-friendly
