"""The Train tab's handlers as plain functions, on a tiny random Llama: no browser."""

import json
import re
import time

import pytest

from studio.config import RunConfig
from studio.engine import job as job_mod
from studio.engine.runs import read_summary
from studio.engine import runs as runs_mod
from studio.engine import live as lv
from studio.engine import settings as st
from studio.ui import live as ui_live
from studio.ui import train_tab as tt
from studio.messages import catalog

QA = [("What colour is the sky?", "blue"), ("Two plus two?", "four"), ("Capital of France?", "Paris"),
      ("Opposite of hot?", "cold")]


def write_rows(path, kind="sft", n=32):
    rows = []
    for i in range(n):
        q, a = QA[i % len(QA)]
        rows.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} if kind == "sft"
                    else {"prompt": q, "chosen": a, "rejected": "no idea"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def settings_for(tiny_model_dir, **over):
    s = st.settings_from_config(RunConfig())
    s.update(name=str(tiny_model_dir), batch_size=2, max_length=64, learning_rate=5e-2, warmup_ratio=0.0,
             scheduler="constant", eval_share=0.25)
    s.update(over)
    return s


@pytest.fixture(autouse=True)
def no_leftover_job():
    yield
    job = job_mod.current_job()
    if job is not None and not job.done:
        job.stop()
        job.wait(120)


def test_presets_and_settings_build_a_valid_config(tmp_path):
    quick, thorough = st.preset_values("quick"), st.preset_values("thorough")
    assert quick["epochs"] < thorough["epochs"] and quick["lora_rank"] < thorough["lora_rank"]
    assert st.preset_values("quick", method="full")["learning_rate"] <= 5e-5  # full fine-tuning learns 10x lower
    assert st.preset_values("balanced", stage="dpo")["learning_rate"] < quick["learning_rate"]
    data = write_rows(tmp_path / "d.jsonl")
    base = st.with_data(RunConfig().to_dict(), str(data))
    base["training"]["logging_steps"] = 3  # not shown in the tab: kept from the base
    s = st.settings_from_config(RunConfig())
    s.update(st.preset_values("balanced"), batch_size="4", lora_rank=16.0)
    cfg = st.build_config(s, base)
    assert cfg.training.epochs == 3 and cfg.training.batch_size == 4 and cfg.method.lora_rank == 16
    assert cfg.training.logging_steps == 3 and cfg.data.train_file == str(data)
    assert cfg.validate({"cuda": False}) == []
    # every advanced control's help comes from the config dataclasses, in both languages
    from studio.config import TrainingConfig, field_help

    assert catalog("en")["help.TrainingConfig.learning_rate"] == field_help(TrainingConfig, "learning_rate")
    assert catalog("zh")["help.TrainingConfig.learning_rate"] == field_help(TrainingConfig, "learning_rate", "zh")


def test_model_tab_choices_flow_into_the_settings():
    base = st.with_model(RunConfig().to_dict(), {"name": "qwen2.5-0.5b", "method": "full", "precision": "fp32",
                                                 "batch_size": 2, "max_length": 256, "gradient_checkpointing": True,
                                                 "lora_rank": 4, "optimizer": "adamw_8bit", "verdict": "fits"})
    s = st.settings_from_config(RunConfig.from_dict(base))
    assert (s["name"], s["method"], s["batch_size"], s["max_length"], s["lora_rank"]) == ("qwen2.5-0.5b", "full", 2, 256, 4)
    assert s["optimizer"] == "adamw_8bit"  # the advanced panel's optimizer control shows the Model tab's choice
    assert st.build_config({**s, "optimizer": "adamw"}, base).training.optimizer == "adamw"
    assert st.with_model(RunConfig().to_dict(), {"name": "x"})["training"]["optimizer"] == "adamw"
    assert base["training"]["gradient_checkpointing"] == "on" and base["training"]["precision"] == "fp32"


def test_a_dropped_file_goes_through_the_engines_checks(tmp_path):
    ok = st.check_data_file(str(write_rows(tmp_path / "d.jsonl")), "sft")
    assert ok["ok"] and ok["rows"] == 32 and ok["format"] == "sft" and ok["stage"] == "sft"
    pref = st.check_data_file(str(write_rows(tmp_path / "p.jsonl", kind="dpo")), "sft")
    zh = pref["message"].text("zh")
    assert pref["ok"] and pref["stage"] == "dpo" and "DPO" in zh and "偏好" in zh
    (tmp_path / "empty.jsonl").write_text("")
    bad = st.check_data_file(str(tmp_path / "empty.jsonl"), "sft")
    assert not bad["ok"] and "empty.jsonl" in bad["message"].text("en")


def test_plan_counts_trainable_parameters_without_loading_weights(tiny_model_dir, tmp_path, runs_parent):
    data = write_rows(tmp_path / "d.jsonl", n=40)
    cfg = st.build_config(settings_for(tiny_model_dir, epochs=2.0), st.with_data({}, str(data)))
    from studio.plan import plan

    p = plan(cfg)
    # the same count the engine gets from the PEFT model
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=cfg.method.lora_rank, target_modules="all-linear", task_type="CAUSAL_LM"))
    assert p.trainable_params == sum(x.numel() for x in model.parameters() if x.requires_grad)
    assert p.total_params == sum(x.numel() for x in model.get_base_model().parameters() if not x.requires_grad)
    assert (p.rows, p.eval_rows, p.steps) == (30, 10, 30)  # 40 rows, 25% held out, batch 2, 2 epochs
    assert p.tokens > 0 and p.duration_s > 0
    md = tt.plan_markdown(cfg)
    assert "Trainable parameters" in md and "an estimate" in md and f"{p.total_bytes / 2**30:.1f} GiB" in md
    assert "可训练参数" in tt.plan_markdown(cfg, lang="zh")


def poll_until(pred, view=None, seen=None, ctx_run=None, timeout=180, lang="en"):
    deadline = time.time() + timeout
    outs = []
    while time.time() < deadline:
        out, seen = lv.poll(view or {}, seen, ctx_run, lang)
        if "snapshot" in out:  # what the tab draws from it
            out["progress"] = tt.progress_html(out.pop("snapshot"), lang)
        outs.append(out)
        if pred(out, seen):
            return outs, seen
        time.sleep(0.05)
    raise AssertionError(f"timed out; last poll: {outs[-1] if outs else None}")


def test_start_watch_stop_resume_and_history(tiny_model_dir, tmp_path, runs_parent):
    data = write_rows(tmp_path / "d.jsonl", n=64)
    base = st.with_data({}, str(data))
    settings = settings_for(tiny_model_dir, batch_size=1, max_steps=40, epochs=1.0)

    res = tt.start_run(settings, base)
    assert res["started"], res["status"]
    # a second person is told kindly, with the ETA once one is known
    poll_until(lambda o, s: job_mod.current_job().snapshot()["eta_s"] is not None)
    other = tt.start_run(settings, base)
    assert not other["started"] and "already training" in other["status"] and "should end in about" in other["status"]
    assert "一次只能运行一个" in tt.start_run(settings, base, "zh")["status"]

    # the live panel gains loss points; a tick sends the progress bar, and a "live" key when the curves changed
    outs, seen = poll_until(lambda o, s: "live" in o and len(lv.live_panel(None, tt.live_view)["loss"]["data"]) >= 3)
    assert any(o.get("history") for o in outs), "the new run appears in the history"
    assert [o["state"][1] for o in outs if "state" in o][:1] in (["preparing"], ["training"])
    panel = lv.live_panel(None, tt.live_view)
    live_row = tt.history_frame().iloc[0]
    assert live_row.iloc[4] >= 1 and live_row.iloc[8], "the history shows the live run's step and time"
    assert set(panel) >= {"health", "log", "loss", "lr", "grad", "speed", "memory"}
    assert panel["loss"]["columns"] == ["step", "loss", "series"] and panel["lr"]["data"]
    assert 'role="progressbar"' in outs[-1]["progress"] and "Step" in outs[-1]["progress"]
    quiet, _ = lv.poll({}, seen)
    assert set(quiet) <= {"snapshot", "live", "state"}
    assert lv.live_panel({"run_dir": "/elsewhere"}, tt.live_view) is None

    stopping = tt.stop_run()["status"]
    assert stopping.startswith("Stopping") and "then saving a checkpoint" in stopping, stopping
    job = job_mod.current_job()
    assert job.wait(120) and job.state == "stopped", job.error
    outs, seen = poll_until(lambda o, s: "run" in o)
    assert outs[-1]["run"] == {"run_dir": str(job.run_dir)} and outs[-1]["history"]
    assert outs[-1]["state"][1] == "stopped" and 'data-state="stopped"' in outs[-1]["progress"]
    assert lv.poll({}, seen)[0] == {}, "a finished run costs nothing to poll"
    assert tt.stop_run()["status"] == tt.text("train.nothing_running")

    hist = tt.history_frame()
    assert hist.iloc[0, 0] == job.run_dir.name and hist.iloc[0, 1] == "Stopped"
    assert runs_mod.run_names()[0] == job.run_dir.name

    before_resume = read_summary(job.run_dir)["duration_s"]
    # resume the stopped run (as picked in the history) to the end
    res = tt.resume_run(runs_mod.run_dir_of(job.run_dir.name))
    assert res["started"], res["status"]
    again = job_mod.current_job()
    assert again is not job and again.wait(300) and again.state == "completed", again.error
    assert read_summary(job.run_dir)["steps"] == 40
    assert read_summary(job.run_dir)["duration_s"] > before_resume, "the elapsed time counts the whole run"
    assert "nothing to resume" in tt.resume_run(str(job.run_dir))["status"]

    # re-open it: its curves from metrics.jsonl, and it becomes the run Compare/Export use
    opened = tt.open_run(str(job.run_dir))
    assert len(opened["loss"]["data"]) >= 40 and opened["run"] == {"run_dir": str(job.run_dir)}
    assert "Completed" in opened["progress"]
    # while a past run is open, the live poll leaves the panel alone unless it is that run
    assert lv.poll({"run_dir": "/elsewhere"}, {})[0] == {}


def test_progress_and_health_render_in_both_languages():
    snap = {"state": "training", "step": 5, "total_steps": 20, "epoch": 0.25, "epochs": 1, "elapsed_s": 75,
            "eta_s": 200, "run_dir": "/runs/x", "error": None, "log": ["a"], "metrics": []}
    en, zh = tt.progress_html(snap), tt.progress_html(snap, "zh")
    words = re.sub(r"<[^>]+>", "", en)
    assert "Step 5 / 20" in words and "elapsed 1 min 15 s" in words and "about 3 min 20 s left" in words
    assert 'aria-valuenow="5"' in en
    # the clocks carry their seconds, so the page moves them on between updates
    assert 'class="tp-clock" data-s="75.0" data-dir="up"' in en and 'data-s="200.0" data-dir="down"' in en
    assert "tp-clock" not in tt.progress_html({**snap, "state": "completed"})
    assert "第 5 / 20 步" in zh and "约剩" in zh
    bad = [{"step": 1, "loss": 2.0}, {"step": 2, "loss": float("nan")}]
    view = tt.live_view({**snap, "metrics": bad}, None)
    assert 'data-code="nan"' in view["health"] and len(view["loss"]["data"]) == 1  # NaN is reported, not drawn
    assert tt.progress_html(None) and "Idle" not in tt.progress_html(None)
    failed = tt.progress_html({**snap, "state": "failed", "error": "Out of memory: try less."})
    assert "Out of memory" in failed and "Failed" in failed


def test_chart_payloads_are_what_lineplot_would_send():
    import math

    import gradio as gr

    from studio.ui import plots

    metrics = [{"step": i, "loss": 2.0 / i, "learning_rate": 1e-4, "grad_norm": 1.0, "tokens_per_second": 50.0,
                "memory_bytes": 2**30} for i in range(1, 1201)] + [{"step": 600, "eval_loss": 0.5}]
    metrics.append({"step": 1201, "loss": math.inf})
    pay, fr = plots.payloads(metrics), plots.frames(metrics)
    for name, spec in (("loss", ("step", "loss", "series")), ("lr", ("step", "learning_rate", None))):
        sent = gr.LinePlot(x=spec[0], y=spec[1], color=spec[2], render=False).postprocess(fr[name]).model_dump()
        assert pay[name]["columns"] == sent["columns"] and pay[name]["datatypes"] == sent["datatypes"]
        assert len(pay[name]["data"]) == len(sent["data"])
        for mine, theirs in zip(pay[name]["data"], sent["data"]):  # pandas' to_json keeps 10 digits
            assert mine[0] == theirs[0] and mine[1] == pytest.approx(theirs[1], abs=1e-9) and mine[2:] == theirs[2:]
    losses = [r for r in pay["loss"]["data"] if r[2] == plots.loss_names()[0]]
    assert len(losses) <= plots.MAX_POINTS + 1 and losses[-1][0] == 1200, "thinned, the latest point kept"
    train_name, eval_name, best_name = plots.loss_names()
    assert [r[:2] for r in pay["loss"]["data"] if r[2] == eval_name] == [[581.985, 0.5], [618.015, 0.5]], \
        "a lone evaluation: a visible dash around step 600"
    curve = plots.payloads(metrics + [{"step": 900, "eval_loss": 0.4}])["loss"]["data"]
    assert [r[:2] for r in curve if r[2] == eval_name] == [[600, 0.5], [900, 0.4]], "a point per evaluation"
    mark = [r for r in pay["loss"]["data"] if r[2] == best_name]
    assert [r[0] for r in mark] == [600, 600] and mark[0][1] < 0.5 < mark[1][1], "the best validation point is marked"
    assert not [r for r in plots.payloads(metrics[:5])["loss"]["data"] if r[2] == best_name], "no validation, no mark"
    assert pay["memory"]["data"][0][1] == 1.0
    empty = plots.frames([])
    assert str(empty["loss"]["loss"].dtype) == "float64", "an empty chart keeps a numeric axis"
    # the first value names both loss series (the browser fixes the colours from it)
    assert set(plots.initial_frames()["loss"]["series"]) == set(plots.loss_names())


def test_the_live_key_moves_with_the_run_and_its_route_answers(tiny_model_dir, tmp_path):
    """The page's poller reads /studio/live every second: answered by a middleware, no gradio event."""

    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.testclient import TestClient

    client = TestClient(Starlette(middleware=[Middleware(ui_live.LiveKeyMiddleware)]))
    assert client.get("/elsewhere").status_code == 404  # everything else goes on to the app
    before = client.get(ui_live.LIVE_ROUTE).json()["key"]
    job = job_mod.Job(RunConfig())
    job_mod._current, saved = job, job_mod._current
    try:
        k1 = lv.live_key()
        job._say("a line")
        k2 = lv.live_key()
        assert k1 != k2 and client.get(ui_live.LIVE_ROUTE).json()["key"] == k2
        job.state = "training"
        assert lv.live_key() != k2
    finally:
        job_mod._current = saved
    assert before == lv.live_key()


def test_a_chart_with_one_point_shows_the_point_and_steps_are_whole():
    from studio.ui import plots

    one = [{"step": 1, "loss": 2.0, "learning_rate": 1e-4, "grad_norm": 1.5}]
    assert {p["mark"] for p in plots.payloads(one).values() if p["data"]} == {"point"}
    two = one + [{"step": 2, "loss": 1.8, "learning_rate": 1e-4, "grad_norm": 1.2}]
    assert plots.payloads(two)["loss"]["mark"] == "line" and plots.payloads(two)["lr"]["mark"] == "line"
    titles = plots.titles("loss", "zh")
    assert titles["x_axis_format"] == "d" and titles["x_title"] == "步数" and titles["color_title"] == "曲线"


def test_progress_counts_steps_for_a_run_bounded_by_steps_and_never_passes_the_epochs(tiny_model_dir, tmp_path,
                                                                                     runs_parent):
    from studio.engine.runs import progress_shown

    # 8 rows, 6 trained at batch 1: 30 steps are 5 rounds over the data ("epoch 5.00 / 1" before)
    data = write_rows(tmp_path / "d.jsonl", n=8)
    res = tt.start_run(settings_for(tiny_model_dir, batch_size=1, max_steps=30, epochs=1.0), st.with_data({}, str(data)))
    assert res["started"], res["status"]
    job = job_mod.current_job()
    assert job.wait(300) and job.state == "completed", job.error
    assert job.epoch > 1.0
    snap = job.snapshot()
    assert (snap["bound"], snap["epoch"], snap["epochs"]) == ("steps", None, None)
    words = re.sub(r"<[^>]+>", "", tt.progress_html(snap))
    assert "Step 30 / 30" in words and "epoch" not in words
    assert "第 30 / 30 步" in tt.progress_html(snap, "zh") and "轮" not in tt.progress_html(snap, "zh")
    opened = re.sub(r"<[^>]+>", "", tt.open_run(str(job.run_dir))["progress"])  # a past run reads the same
    assert "Step 30 / 30" in opened and "epoch" not in opened
    # bounded by epochs: the epoch shown stops at the epochs planned
    assert progress_shown(2.0004, 2.0, 0) == {"bound": "epochs", "epoch": 2.0, "epochs": 2.0}
    by_epochs = {**snap, "state": "training", **progress_shown(1.5, 2.0, 0), "step": 6, "total_steps": 8}
    assert "epoch 1.50 / 2" in re.sub(r"<[^>]+>", "", tt.progress_html(by_epochs))
    assert "第 1.50 / 2 轮" in tt.progress_html(by_epochs, "zh")


def test_the_history_shows_each_runs_best_validation_loss_and_its_step(runs_parent):
    import json

    from studio.config import RunConfig

    for name, summary in (("20261206-010000-sft-a", {"status": "completed", "steps": 41, "best_eval_loss": 0.014812,
                                                     "best_step": 33, "model": "embedded"}),
                          ("20261206-020000-sft-b", {"status": "completed", "steps": 8, "model": "embedded"})):
        folder = runs_parent / name
        folder.mkdir(parents=True)
        RunConfig().save(folder / "config.yaml")
        (folder / "summary.json").write_text(json.dumps(summary))
    en, zh = tt.history_frame(), tt.history_frame("zh")
    assert list(en.columns)[7] == "Best validation loss" and list(zh.columns)[7] == "最佳验证损失"
    assert en.iloc[1, 7] == "0.0148 at step 33" and zh.iloc[1, 7] == "0.0148（第 33 步）"
    assert en.iloc[0, 7] == ""  # no validation split: nothing to show
