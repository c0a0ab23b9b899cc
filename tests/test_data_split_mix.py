"""Seeded split, reasoning / dialog rebalancing, and mixing in general chat and refusals."""

import json

from studio.data.rows import make_row
from studio.data.split_mix import MixOptions, load_mixin, prepare, rebalance, split


def dialog(i):
    return make_row({"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}, i)


def reasoning(i):
    return make_row({"messages": [{"role": "user", "content": f"r{i}"},
                                 {"role": "assistant", "content": f"<think>\nt{i}\n</think>\n\na{i}"}]}, i)


def pool_file(tmp_path, name, n, tag):
    p = tmp_path / name
    p.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{tag}{i}"},
                                                  {"role": "assistant", "content": "ok"}]}) + "\n" for i in range(n))
                 + "not json\n", encoding="utf-8")
    return p


def test_split_is_seeded_disjoint_and_complete():
    rows = [dialog(i) for i in range(100)]
    train, eval_ = split(rows, 0.1, seed=7)
    assert len(eval_) == 10 and len(train) == 90
    assert {r.number for r in train} | {r.number for r in eval_} == set(range(100))
    assert [r.number for r in split(rows, 0.1, seed=7)[1]] == [r.number for r in eval_]
    assert [r.number for r in split(rows, 0.1, seed=8)[1]] != [r.number for r in eval_]
    assert len(split(rows[:3], 0.01)[1]) == 1  # asked for validation: at least one row
    assert split(rows, 0.0) == (rows, [])


def test_rebalance_downsamples_the_larger_side_to_the_ratio():
    rows = [reasoning(i) for i in range(60)] + [dialog(i) for i in range(60, 120)]
    kept, removed, note = rebalance(rows, 0.25, seed=1)
    kinds = [r.kind for r in kept]
    assert kinds.count("dialog") == 60 and kinds.count("reasoning") == 20
    assert len(removed) == 40 and all(r.reason == "rebalanced" for r in removed) and "25%" in str(note)
    rows = [reasoning(i) for i in range(10)] + [dialog(i) for i in range(10, 110)]
    kept, removed, _ = rebalance(rows, 0.25)
    assert [r.kind for r in kept].count("dialog") == 30 and len(removed) == 70
    assert rebalance([dialog(i) for i in range(5)], 0.25)[1] == []  # one kind only: nothing to balance


def test_prepare_mixes_general_and_refusals_into_train_only(tmp_path):
    general, refusals = pool_file(tmp_path, "g.jsonl", 50, "g"), pool_file(tmp_path, "r.jsonl", 50, "r")
    rows = [dialog(i) for i in range(100)]
    res = prepare(rows, MixOptions(eval_share=0.1, general_share=0.1, refusal_share=0.05, seed=3), general, refusals)
    # shares of the final training set: 11 / 106 general, 5 / 106 refusals
    assert res.counts["eval"] == 10 and res.counts["general"] == 11 and res.counts["refusals"] == 5
    assert len(res.train) == 90 + 11 + 5
    texts = {r.data["messages"][0]["content"] for r in res.train}
    assert sum(t.startswith("g") for t in texts) == 11 and sum(t.startswith("r") for t in texts) == 5
    assert not any(r.data["messages"][0]["content"][0] in "gr" for r in res.eval)
    again = prepare(rows, MixOptions(eval_share=0.1, general_share=0.1, refusal_share=0.05, seed=3), general, refusals)
    assert [r.data for r in again.train] == [r.data for r in res.train]


def test_missing_or_small_pools_are_notes_not_errors(tmp_path):
    rows = [dialog(i) for i in range(100)]
    res = prepare(rows, MixOptions(eval_share=0, general_share=0.5), tmp_path / "absent.jsonl")
    assert res.counts["general"] == 0 and "missing" in str(res.notes[0]) and len(res.train) == 100
    res = prepare(rows, MixOptions(eval_share=0, general_share=0.5), pool_file(tmp_path, "g.jsonl", 5, "g"))
    assert res.counts["general"] == 5 and "Only 5" in str(res.notes[0])
    assert len(load_mixin(tmp_path / "g.jsonl")) == 5  # the line that is not JSON is skipped


def test_preference_data_is_not_mixed_with_chat(tmp_path):
    rows = [make_row({"prompt": f"p{i}", "chosen": "a", "rejected": "b"}, i) for i in range(10)]
    res = prepare(rows, MixOptions(eval_share=0.2, general_share=0.1), pool_file(tmp_path, "g.jsonl", 5, "g"))
    assert res.counts["general"] == 0 and "only mix into conversation" in str(res.notes[0])
    assert len(res.train) == 8 and len(res.eval) == 2
