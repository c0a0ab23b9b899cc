"""Try it small first (studio.engine.trial): the small model of the same family, and the verdict in plain
words (rows render, the loss falls, how long the full run would take), on a tiny model."""

import json

import pytest

from studio.config import RunConfig
from studio.engine import trial
from studio.messages import say


def test_the_small_model_is_of_the_same_family():
    assert trial.small_model_for("qwen2.5-7b-instruct", offline=False) == "qwen2.5-0.5b-instruct"
    assert trial.small_model_for("Qwen/Qwen2.5-14B-Instruct", offline=False) == "qwen2.5-0.5b-instruct"
    assert trial.small_model_for("qwen3-8b", offline=False) == "qwen3-0.6b"
    assert trial.small_model_for("llama-3.1-8b-instruct", offline=False) == "llama-3.2-1b-instruct"
    assert trial.small_model_for("smollm2-1.7b-instruct", offline=False) == "smollm2-135m-instruct"
    # a distilled model of another maker: the smallest of its architecture
    assert trial.small_model_for("deepseek-r1-distill-qwen-7b", offline=False) == "qwen2.5-0.5b-instruct"
    # offline, with nothing of that family cached, and for a model the catalog does not know: the embedded one
    assert trial.small_model_for("qwen3-8b", offline=True) in ("embedded", "qwen3-0.6b")
    assert trial.small_model_for("/some/folder", offline=False) == "embedded"
    assert trial.small_model_for("embedded") == "embedded"


def test_the_loss_trend():
    falling = [{"step": i, "loss": 3.0 - 0.2 * i} for i in range(12)]
    assert trial.loss_trend(falling)[2] is True
    assert trial.loss_trend([{"step": i, "loss": 2.0} for i in range(12)])[2] is False
    assert trial.loss_trend(falling[:3]) == (None, None, None)


def test_a_trial_run_says_whether_rows_render_the_loss_falls_and_how_long(runs_parent, tmp_path, tiny_model_dir):
    rows = [{"messages": [{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": w}]}
            for w in ("red", "green", "blue", "cyan", "pink", "gold") * 4]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig()
    cfg.model.name, cfg.data.train_file = str(tiny_model_dir), str(data)
    cfg.training.batch_size, cfg.training.max_length, cfg.training.learning_rate = 4, 32, 1e-2
    cfg.training.epochs = 3

    job = trial.start(cfg, small=str(tiny_model_dir), steps=16)
    assert job.wait(600) and job.state == "completed"
    assert job.run_dir.parent == trial.trials_dir(), "trials stay out of the history"
    from studio.engine.runs import list_runs

    assert list_runs() == []
    result = trial.verdict(job.run_dir, cfg)
    assert result.rows_checked == len(rows) and result.rows_failed == 0 and result.rows_cut == 0
    assert result.loss_falls is True and result.loss_last < result.loss_first
    assert result.tokens_per_second and result.full_duration_s and result.full_steps == 18  # 24 rows, 2 for validation: 6 steps an epoch
    text = result.text()
    assert say("trial.render_ok", n=len(rows), model=tiny_model_dir.name) in text
    assert "The loss falls" in text and "would take about" in text
    assert "的" in result.text("zh")
    assert trial.read_result(job.run_dir)["loss_falls"] is True

    # a row the template cannot render (two user turns in a row, with a template that insists on turns)
    from tiny import build_tokenizer

    strict = build_tokenizer()
    strict.chat_template = ("{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
                            "{{ raise_exception('roles must alternate') }}{% endif %}{{ m['content'] }}{% endfor %}")
    folder = tmp_path / "strict"
    strict.save_pretrained(folder)
    from studio.data.rows import make_row
    from studio.data.template_check import check_template

    bad = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
    assert check_template([make_row(bad, 1)], strict, 32).counts()["failed"] == 1
