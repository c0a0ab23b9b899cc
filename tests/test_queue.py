"""Try several models: the queue of runs kept in the runs folder (studio.engine.queue), on tiny models:
entries persist, are removed and cancelled, run one after another, and a restart picks the queue up again."""

import json
import os

import pytest

from studio.config import RunConfig
from studio.engine import queue
from studio.errors import StudioError

ROWS = [{"messages": [{"role": "user", "content": f"Say {w}"}, {"role": "assistant", "content": w}]}
        for w in ("red", "green", "blue", "cyan", "pink", "gold", "grey", "teal") * 2]


@pytest.fixture()
def two_models(tiny_model_dir, tmp_path_factory):
    from tiny import save_tiny_model

    return [str(tiny_model_dir), str(save_tiny_model(tmp_path_factory.mktemp("tiny-wide"), hidden=48))]


def base_config(tmp_path, steps=3) -> RunConfig:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    cfg = RunConfig()
    cfg.data.train_file, cfg.data.eval_share = str(data), 0.25
    cfg.training.max_steps, cfg.training.batch_size, cfg.training.max_length = steps, 4, 32
    return cfg


def test_entries_persist_and_can_be_removed_or_cancelled(runs_parent, tmp_path, two_models):
    new = queue.add(base_config(tmp_path), two_models)
    assert [e["status"] for e in new] == ["waiting", "waiting"]
    on_disk = json.loads(queue.path().read_text())  # what a reloaded page or a restarted app reads
    assert [e["model"] for e in on_disk["entries"]] == two_models and on_disk["active"] is False
    assert RunConfig.from_dict(on_disk["entries"][1]["config"]).model.name == two_models[1]
    queue.cancel(new[0]["id"])
    assert [e["status"] for e in queue.entries()] == ["cancelled", "waiting"]
    queue.remove(new[1]["id"])
    assert [e["id"] for e in queue.entries()] == [new[0]["id"]]
    assert queue.clear_finished() == 1 and queue.entries() == []
    with pytest.raises(StudioError):
        queue.remove("nope")
    assert queue.start().key == "queue.empty"


def test_a_bad_config_is_refused_before_it_waits(runs_parent, tmp_path):
    cfg = base_config(tmp_path)
    cfg.training.learning_rate = -1
    with pytest.raises(StudioError) as e:
        queue.add(cfg, ["embedded"])
    assert e.value.key == "queue.config_problems" and queue.entries() == []


def test_the_queue_trains_one_model_after_another(runs_parent, tmp_path, two_models):
    queue.add(base_config(tmp_path), two_models)
    assert queue.start().key == "queue.running"
    assert queue.wait(600)
    done = queue.entries()
    assert [e["status"] for e in done] == ["completed", "completed"]
    first, second = (os.path.realpath(e["run_dir"]) for e in done)
    assert first != second and all(os.path.isdir(p) for p in (first, second))
    assert done[0]["finished"] <= os.path.getctime(second), "the second started after the first ended"
    from studio.engine.runs import load_run_config, read_summary

    assert [load_run_config(e["run_dir"]).model.name for e in done] == two_models
    assert all(read_summary(e["run_dir"])["steps"] == 3 for e in done)
    assert queue.load()["active"] is False and not queue.runner_alive()
    assert queue.finished_runs() == [e["run_dir"] for e in done]


def test_a_restart_resumes_the_entry_that_was_running(runs_parent, tmp_path):
    from studio import run_files

    rd = runs_parent / "20260101-000000-sft-x"
    (run_files.checkpoints(rd) / "checkpoint-2").mkdir(parents=True)
    (run_files.checkpoints(rd) / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    RunConfig().save(run_files.config(rd))
    # the process that ran it is gone: summary.json still says training, under a pid that is not alive
    run_files.summary(rd).write_text(json.dumps({"status": "training", "pid": 999999, "pid_started": 1.0,
                                                 "host": os.uname().nodename}))
    cfg = base_config(tmp_path)
    a, b = queue.add(cfg, ["embedded", "smollm2-135m-instruct"])
    with queue._Edit() as q:
        q["active"] = True
        q["entries"][0].update(status="running", run_dir=str(rd))
        q["runner"] = {"pid": 999999, "pid_started": 1.0, "host": os.uname().nodename}
        queue._recover(q)
        entries = q["entries"]
        q["active"] = False  # this test does not train
    assert entries[0]["status"] == "waiting" and entries[0]["resume"] is True and entries[0]["run_dir"] == str(rd)
    assert not queue.runner_alive(), "a runner whose process is gone does not hold the queue"


def test_the_cli_shows_fills_and_runs_the_queue(runs_parent, tmp_path, tiny_model_dir, capsys):
    from studio.cli import main

    cfg = base_config(tmp_path, steps=2)
    path = tmp_path / "run.yaml"
    cfg.save(path)
    assert main(["queue", "add", str(path), "--models", str(tiny_model_dir)]) == 0
    assert main(["queue"]) == 0
    out = capsys.readouterr().out
    assert "waiting" in out and tiny_model_dir.name in out
    assert main(["queue", "run"]) == 0
    assert "completed" in capsys.readouterr().out
    assert main(["queue", "compare"]) == 0
    out = capsys.readouterr().out
    assert "Run folder" in out and "Best validation loss" in out


@pytest.mark.slow
def test_the_embedded_model_through_the_queue_then_compared(runs_parent, tmp_path, tiny_model_dir):
    """End to end: the embedded default and a tiny model, queued with the same data and settings, run one
    after another by the queue's thread, then compared side by side."""
    from studio.evaluate import compare_runs

    cfg = base_config(tmp_path, steps=4)
    cfg.training.max_length = 96  # the embedded model's template adds a system prompt
    queue.add(cfg, ["embedded", str(tiny_model_dir)])
    queue.start()
    assert queue.wait(1800)
    done = queue.entries()
    assert [e["status"] for e in done] == ["completed", "completed"], done
    facts = compare_runs.gather(queue.finished_runs())
    headers, rows = compare_runs.table(facts)
    assert [f.model for f in facts] == ["embedded", tiny_model_dir.name]
    assert compare_runs.best_run(facts) is not None and any(h.startswith("★") for h in headers)
    assert len({r[2] for r in compare_runs.curves(facts)["data"]}) == 4
