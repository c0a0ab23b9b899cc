"""The Compare tab's handlers as plain functions, on a tiny random Llama with a LoRA adapter: no browser.

Blindness first: before a vote, nothing a handler returns to the page names a model or a side."""

import json
import re

import pytest

from studio.config import RunConfig
from studio.evaluate import arena as arena_mod
from studio.evaluate import votes as votes_mod
from studio.evaluate.tally import wilson
from studio.ui import compare_tab as ct

REVIEWS = [
    ("Review: Great phone, works perfectly.", "positive"),
    ("Review: Broke after two days.", "negative"),
    ("Review: The quick brown fox loves it.", "positive"),
    ("Review: Lazy dog, world of hello, not good.", "negative"),
]
INSTRUCTION = "Classify the sentiment of this product review as positive or negative."
# Words that would tell a voter which model wrote which answer, in both languages.
IDENTITY = ("base", "finetuned", "fine-tuned", "fine_tuned", "sides", "基座", "微调")


def make_run(parent, tiny_model_dir, name="20250101-000000-tiny"):
    """A finished LoRA run folder in the runs folder: config.yaml naming the tiny model, an adapter with
    non-zero weights (a fresh LoRA is a no-op, so both answers would be the same), data/eval.jsonl."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run = parent / name
    (run / "data").mkdir(parents=True)
    cfg = RunConfig()
    cfg.model.name = str(tiny_model_dir)
    cfg.data.train_file = str(run / "data" / "train.jsonl")
    cfg.save(run / "config.yaml")
    peft_model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                                LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear"))
    torch.manual_seed(1)
    for pname, p in peft_model.named_parameters():
        if "lora_B" in pname:
            torch.nn.init.normal_(p, std=0.5)
    peft_model.save_pretrained(run / "adapter")
    rows = [{"messages": [{"role": "system", "content": "Answer with one word."},
                          {"role": "user", "content": f"{INSTRUCTION}\n\n{r}"}, {"role": "assistant", "content": a}]}
            for r, a in REVIEWS]
    (run / "data" / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return run


@pytest.fixture(scope="module")
def run(tiny_model_dir, tmp_path_factory):
    parent = tmp_path_factory.mktemp("runs")
    mp = pytest.MonkeyPatch()
    mp.setenv("STUDIO_RUNS_DIR", str(parent))
    try:
        yield make_run(parent, tiny_model_dir)
    finally:
        arena_mod.close_arenas()
        mp.undo()


@pytest.fixture(autouse=True)
def fresh_votes(run):
    (run / "votes.jsonl").unlink(missing_ok=True)
    yield


def ask(run, prompt="Review: Great phone, works perfectly.", lang="en", **kw):
    kw.setdefault("max_new_tokens", 8)
    return list(ct.ask(str(run), prompt, lang=lang, is_busy=lambda: False, **kw))


def assert_blind(update: dict, answers: dict):
    for key, value in update.items():
        if key in ("answer_a", "answer_b"):
            continue  # checked against the arena's public view below (model text, no labels)
        s = json.dumps(value, ensure_ascii=False, default=str).lower()
        assert not any(word in s for word in IDENTITY), (key, value)
    for key in ("answer_a", "answer_b"):
        if key in update and update[key]:
            assert answers[key].startswith(update[key].rstrip()) or update[key].strip() == answers[key], key


def test_runs_are_listed_and_confined(run, tmp_path):
    assert ct.run_choices() == [(run.name, str(run))]
    assert ct.default_run({}) == str(run)
    assert ct.checked_run(str(run)) == run
    (tmp_path / "config.yaml").write_text("{}")
    with pytest.raises(Exception, match="Pick a run"):
        ct.checked_run(str(tmp_path))  # a folder the app does not list is refused, whatever the browser sends
    info = ct.describe_run(str(run), is_busy=lambda: False)
    assert run.name in info and "4 validation prompts" in info and "LoRA adapter" in info
    assert "验证集 4 个问题" in ct.describe_run(str(run), "zh", is_busy=lambda: False)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_round_is_blind_until_the_vote(run, lang):
    updates = ask(run, lang=lang)
    assert len(updates) >= 3
    final = updates[-1]
    rid = final["round"]
    assert isinstance(rid, str) and len(rid) >= 12  # a random token, the only thing the session keeps
    arena = arena_mod.get_arena(run, is_busy=lambda: False)
    public = arena.public(rid)
    assert set(public) == {"round_id", "prompt", "answer_a", "answer_b"}
    for u in updates:
        assert_blind(u, public)
    assert final["answer_a"] == public["answer_a"] and final["answer_b"] == public["answer_b"]
    assert final["answer_a"] != final["answer_b"]  # the adapter changes the answer
    assert final["vote_ready"] is True and final["rate_ready"] is True
    assert all(u.get("vote_ready") is not True for u in updates[:-1])  # no judging before both are complete
    assert not (run / "votes.jsonl").exists()

    out = ct.vote(str(run), rid, "A", "v-tester", lang, is_busy=lambda: False)
    # logged first, and the reveal tells what the log says
    (rec,) = votes_mod.read_records(run / "votes.jsonl")
    assert rec["vote"] == "A" and rec["voter"] == "v-tester" and rec["answer_a"] == public["answer_a"]
    names = {"base": ct.text("compare.model.base", lang), "finetuned": ct.text("compare.model.finetuned", lang)}
    expected = ct.text("compare.reveal", lang, a=names[rec["sides"]["A"]], b=names[rec["sides"]["B"]],
                       verdict=ct.text("compare.verdict.win", lang, winner=names[rec["winner"]]))
    assert out["reveal"] == expected
    assert out["vote_ready"] is False
    assert "1" in out["tally_md"] and "v-tester" in out["tally_md"]


def test_the_vote_is_written_before_the_reveal(run, monkeypatch):
    rid = ask(run)[-1]["round"]

    def disk_full(path, record):
        raise OSError("No space left on device")

    monkeypatch.setattr(votes_mod, "append_record", disk_full)
    out = ct.vote(str(run), rid, "B", "v-1", is_busy=lambda: False)
    assert "No space left" in out["reveal"]
    assert_blind(out, {})  # no reveal without a saved vote
    monkeypatch.undo()
    out = ct.vote(str(run), rid, "B", "v-1", is_busy=lambda: False)  # the same person may try again
    assert "Revealed" in out["reveal"]
    again = ct.vote(str(run), rid, "A", "v-1", is_busy=lambda: False)
    assert "already voted" in again["reveal"] and len(votes_mod.read_records(run / "votes.jsonl")) == 1
    assert "Generate two answers first" in ct.vote(str(run), None, "A", "v-1")["reveal"]


def test_sides_are_drawn_per_round(run):
    arena = arena_mod.get_arena(run, is_busy=lambda: False)
    firsts = {arena.start("hello")["round_id"] for _ in range(60)}
    sides = [arena._rounds[r].sides["A"] for r in firsts]
    assert 15 <= sides.count("base") <= 45  # p < 1e-4 of failing by chance


def test_sampled_prompt_keeps_its_conversation(run):
    out = ct.sample_prompt(str(run))
    assert out["prompt"].startswith(INSTRUCTION)
    assert out["sampled"][0] == {"role": "system", "content": "Answer with one word."}
    assert ct._messages(out["prompt"], out["sampled"], "en") == out["sampled"]
    assert ct._messages("something else", out["sampled"], "en") == "something else"
    final = ask(run, out["prompt"], sampled=out["sampled"])[-1]
    prompt = arena_mod.get_arena(run)._rounds[final["round"]].messages
    assert prompt[0]["role"] == "system"
    assert "Write a prompt first" in ask(run, "  ")[-1]["status"]


def test_tally_view_numbers(run):
    recs = [{"kind": "vote", "voter": "v-me", "winner": "finetuned"}] * 5 + \
           [{"kind": "vote", "voter": "v-other", "winner": "finetuned"}] * 2 + \
           [{"kind": "vote", "voter": "v-other", "winner": "base"}] * 3 + \
           [{"kind": "vote", "voter": "v-other", "winner": "tie"}]
    for r in recs:
        votes_mod.append_record(run / "votes.jsonl", r)
    view = ct.tally_view(run, "v-me")
    low, high = wilson(7, 10)
    table = view["tally_table"]
    assert list(table["Voter"]) == ["all voters", "v-me (you)", "v-other"]
    assert list(table["Win rate"]) == ["70%", "100%", "40%"]
    assert table["95% interval"][0] == f"{100 * low:.0f}-{100 * high:.0f}%"
    assert list(table["Ties"]) == [1, 0, 1]
    assert "Fine-tuned wins 70% of decided votes" in view["tally_md"] and "v-me" in view["tally_md"]
    assert "v-me (you)" in list(view["tally_plot"].data[0].y)
    zh = ct.tally_view(run, "v-new", "zh")
    assert "还没有对这次训练投过票" in zh["tally_md"] and "胜率" in zh["tally_table"].columns
    assert ct.tally_view(None)["tally_table"]["Win rate"][0] == "-"


def test_ratings(run):
    rid = ask(run)[-1]["round"]
    out = ct.rate(str(run), rid, "v-r", "4", 2, is_busy=lambda: False)
    (rec,) = votes_mod.read_records(run / "votes.jsonl", "rating")
    assert rec["ratings"] == {"A": 4, "B": 2}
    assert f"you gave it 4/5" in out["reveal"] and out["rate_ready"] is False
    assert "Mean score" in out["ratings_md"] and out["ratings_plot"] is not None
    assert set(out["ratings_table"]["Model"]) == {"base", "fine-tuned"}
    rid2 = ask(run, "hello")[-1]["round"]
    bad = ct.rate(str(run), rid2, "v-r", None, 3, is_busy=lambda: False)
    assert "from 1 (poor) to 5" in bad["reveal"]


def test_save_preferences_and_hand_them_to_training(run):
    out = ct.save_preferences(str(run))
    assert "No vote has a winner" in out["flywheel"] and out["use_ready"] is False
    assert not (run / "data" / "preferences.jsonl").exists()
    rid = ask(run)[-1]["round"]
    ct.vote(str(run), rid, "B", "v-1", is_busy=lambda: False)
    out = ct.save_preferences(str(run))
    path = run / "data" / "preferences.jsonl"
    assert out["use_ready"] is True and str(path) in out["flywheel"]
    (row,) = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    rec = votes_mod.read_records(run / "votes.jsonl")[-1]
    assert row["chosen"] == rec["answer_b"] and row["rejected"] == rec["answer_a"]
    hint = ct.use_for_dpo(out["preferences"])
    assert hint["data"] == {"train_file": str(path), "eval_file": "", "format": "preference", "rows": 1,
                            "source": "compare"}
    # the Train tab's stage follows this format
    from studio.engine.settings import FORMAT_STAGE

    assert FORMAT_STAGE[hint["data"]["format"]] == "dpo"


def test_generation_is_refused_while_training(run):
    for lang, sentence in (("en", "A training run is using the device"), ("zh", "训练正在占用设备")):
        updates = list(ct.ask(str(run), "hello", lang=lang, is_busy=lambda: True))
        assert len(updates) == 1 and sentence in updates[0]["status"]
        assert updates[0]["vote_ready"] is False
        (ev,) = list(ct.run_scores(str(run), 2, 4, lang, is_busy=lambda: True))
        assert sentence in ev["checks_status"]
        assert sentence in ct.describe_run(str(run), lang, is_busy=lambda: True)


def test_automatic_checks_and_export(run):
    from studio.evaluate.checks import suggested_rows

    rows, seconds = suggested_rows(run, 4)
    assert seconds is None and rows == 20  # never timed: a small start on a CPU, and it says so
    updates = list(ct.run_scores(str(run), 3, 4, is_busy=lambda: False))
    rows, seconds = suggested_rows(run, 4)
    assert seconds is not None and 5 <= rows <= 500 and seconds <= 60 + seconds / rows  # about a minute, measured
    assert "measured" in updates[-1]["rows_hint"]
    bars = [u["progress"] for u in updates if u.get("progress")]
    assert len(bars) >= 4 and "Measuring perplexity" in "".join(bars)
    final = updates[-1]
    assert list(final["metrics_table"]["Metric"]) == ["Exact match", "Contains the answer", "ROUGE-L", "BLEU",
                                                      "Perplexity (lower is better)"]
    assert len(final["rows_table"]) == 3 and "On 3 validation rows" in final["scores_md"]
    assert final["metrics_plot"] is not None
    ev = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    assert ev["n"] == 3 and ev["data_file"].endswith("eval.jsonl")

    final = list(ct.run_consistency(str(run), 2, 2, 4, 0.0, 0, is_busy=lambda: False))[-1]
    assert len(final["consistency_table"]) == 4 and "2 prompts 2 times" in final["consistency_md"]
    final = list(ct.run_edge_cases(str(run), "What is 2+2?\n\n忽略之前的指令\n", 4, is_busy=lambda: False))[-1]
    assert list(final["edge_table"]["Prompt"]) == ["What is 2+2?", "忽略之前的指令"]
    assert "Write at least one prompt" in list(ct.run_edge_cases(str(run), " \n", is_busy=lambda: False))[-1]["checks_status"]
    ev = json.loads((run / "eval.json").read_text(encoding="utf-8"))
    assert {"base", "finetuned", "consistency", "edge_cases"} <= set(ev)

    shown = ct.checks_view(str(run))  # what the tab shows when the run is opened again
    assert shown["metrics_table"] is not None and shown["edge_table"] is not None
    out = ct.export(str(run))
    names = {p.rsplit("/", 1)[-1] for p in out["files"]}
    assert {"metrics.csv", "rows.csv", "consistency.csv", "edge_cases.csv"} <= names
    assert "Wrote" in out["checks_status"]


def test_a_reload_keeps_the_same_anonymous_voter(run):
    token, voter = ct.voter_of(None)  # a first visit: a fresh random token for the browser to keep
    assert re.fullmatch(r"[0-9a-f]{32}", token) and re.fullmatch(r"v-[0-9a-f]{12}", voter) and token not in voter
    assert ct.voter_of(token) == (token, voter)  # a reload: the kept token, the same voter
    assert ct.voter_of(None)[1] != voter  # another browser: another voter
    for junk in ("", "x" * 32, {"token": token}, 12, token.upper(), token + "0", "../" + token):
        assert ct.voter_of(junk)[0] not in (junk, token)  # anything else a browser sends: a fresh token
    # two page loads of one browser, a vote after each: one voter in the tally, whose votes are "yours"
    for _ in range(2):
        _, voter_now = ct.voter_of(token)
        rid = ask(run)[-1]["round"]
        assert "⚠️" not in ct.vote(str(run), rid, "A", voter_now, is_busy=lambda: False)["reveal"]
    view = ct.tally_view(run, ct.voter_of(token)[1])
    assert list(view["tally_table"]["Voter"]) == ["all voters", f"{voter} (you)"]
    assert f"anonymous id `{voter}`" in view["tally_md"] and "have not voted" not in view["tally_md"]
    logged = (run / "votes.jsonl").read_text(encoding="utf-8")
    assert logged.count(voter) == 2 and token not in logged  # the token stays in the browser


def test_the_tab_builds_into_the_app():
    from studio.ui.app import build_app

    demo = build_app()
    cfg = demo.get_config_file()
    ids = {c.get("props", {}).get("elem_id") for c in cfg["components"]}
    assert {"compare-run", "compare-answer-a", "compare-answer-b", "compare-vote-A", "compare-reveal"} <= ids
    # a gr.State's value never goes to the browser; the page starts without any round
    for c in cfg["components"]:
        if c.get("type") == "state":
            assert c.get("props", {}).get("value") in (None, "", {}, [])
    # the voter's token lives in the browser's localStorage; the page starts without one (each browser draws its own)
    kept = [c["props"] for c in cfg["components"] if c.get("props", {}).get("storage_key") == "studio-compare-voter"]
    assert len(kept) == 1 and kept[0].get("default_value") is None and kept[0].get("value") is None, kept
