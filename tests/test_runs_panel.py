"""The Train tab's runs section without a browser: compare runs, the queue table and its actions, the trial."""

from studio.config import RunConfig
from studio.engine import queue
from studio.engine.settings import settings_from_config
from studio.messages import say
from studio.ui import runs_panel

from test_compare_runs import make_run


def test_compare_view_needs_two_runs_and_shows_curves_and_table(runs_parent):
    a = make_run(runs_parent, "20260101-000000-a", "embedded", 2e-4, [(5, 1.4), (10, 1.6)])
    b = make_run(runs_parent, "20260101-000001-b", "embedded", 1e-4, [(5, 1.2), (10, 1.1)])
    assert runs_panel.compare_view([a.name], "en")["summary"] == say("runs.compare.pick_two")
    v = runs_panel.compare_view([a.name, b.name], "zh")
    assert "★" in v["summary"] and list(v["table"].columns)[0] == say("runs.compare.what", "zh")
    assert any(c.startswith("★ 2.") for c in v["table"].columns) and v["curves"]["data"]


def test_the_queue_table_and_its_actions(runs_parent, tmp_path):
    cfg = RunConfig()
    settings = settings_from_config(cfg)
    assert runs_panel.queue_models(settings, cfg.to_dict(), ["embedded"], "en") == say("queue.pick_models")
    assert runs_panel.queue_line("en") == say("queue.line.empty")
    data = tmp_path / "d.jsonl"
    data.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}\n')
    cfg.data.train_file = str(data)
    queue.add(cfg, ["embedded", "smollm2-135m-instruct"])
    frame = runs_panel.queue_frame("zh")
    assert list(frame.columns) == [say(f"queue.col.{c}", "zh") for c in runs_panel.QUEUE_COLS]
    assert list(frame.iloc[:, 2]) == [say("queue.status.waiting", "zh")] * 2
    assert runs_panel.queue_line("en") == say("queue.line.waiting", waiting=2)
    assert [v for _, v in runs_panel.queue_choices()] == [e["id"] for e in queue.entries()]
    before = runs_panel.queue_signature()
    queue.cancel(queue.entries()[0]["id"])
    assert runs_panel.queue_signature() != before, "the page's tick sees the change"


def test_the_trial_without_data_says_so(runs_parent):
    cfg = RunConfig()
    out = list(runs_panel.trial_steps(settings_from_config(cfg), cfg.to_dict(), "en"))
    assert out == [say("train.no_data")]
