"""Every message the engine gives a person reads in every language of the catalog.

The catalog itself (every id in every language, no sentence written in the code) is tests/test_messages.py;
here: the returned sentences (config problems, job errors, refusals) and the tabs that show them, in Chinese.
"""

import json
import re

import pytest

from studio.config import ConfigError, RunConfig
from studio.errors import StudioError, error_text, joined
from studio.messages import Msg, text_of

CJK = re.compile(r"[\u3400-\u9fff\uff00-\uffef\u3000-\u303f]")


def test_studio_error_carries_every_language():
    e = StudioError("error.disk_full_at", where="/tmp/x")
    assert str(e) == e.text("en") and "/tmp/x" in e.text("zh") and CJK.search(e.text("zh"))
    assert error_text(e, "zh") == e.text("zh") and error_text(ValueError("plain"), "zh") == "plain"
    m = Msg("error.disk_full")
    assert joined([m, m]) == m.text("en") + " " + m.text("en") and joined([m, m], "zh") == m.text("zh") * 2


# ---- returned sentences ---------------------------------------------------------------------------

def _qlora_config(tmp_path) -> RunConfig:
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "hello"}]}) + "\n")
    cfg = RunConfig()
    cfg.data.train_file = str(data)
    cfg.method.method = "qlora"
    return cfg


def test_validate_speaks_chinese_for_qlora_on_a_cpu(tmp_path):
    cfg = _qlora_config(tmp_path)
    cpu = {"cuda": False, "mps": False}
    (problem,) = cfg.validate(cpu)
    en, zh = problem.text("en"), problem.text("zh")
    assert en == "QLoRA needs an NVIDIA GPU; this machine has none. Choose LoRA."
    assert "QLoRA" in zh and "NVIDIA GPU" in zh and CJK.search(zh)
    with pytest.raises(ConfigError) as caught:
        cfg.check(cpu)
    assert en in str(caught.value) and zh in caught.value.text("zh")


def test_every_validate_problem_has_chinese(tmp_path):
    cfg = RunConfig()
    t, m, d = cfg.training, cfg.method, cfg.data
    t.stage, m.method, t.device, t.precision, t.scheduler = "x", "y", "z", "w", "v"
    t.gradient_checkpointing, t.learning_rate, t.batch_size, t.grad_accum = "maybe", 0, 0, 0
    t.max_length, t.epochs, t.max_steps, d.eval_share = 1, 0, -1, 2
    d.train_file, d.eval_file = str(tmp_path / "none.jsonl"), str(tmp_path / "none2.jsonl")
    problems = cfg.validate({"cuda": False})
    assert len(problems) >= 15
    for p in problems:
        assert CJK.search(p.text("zh")) and p.text("en") != p.text("zh")


def test_a_failed_job_keeps_its_error_in_both_languages(tmp_path):
    from studio.engine.job import Job, _explain

    job = Job(RunConfig())
    m = _explain(StudioError("error.disk_full"), job)
    assert m.text("en") == Msg("error.disk_full").text("en")
    m = _explain(MemoryError(), job)
    assert m.text("en").startswith("Out of memory") and m.text("zh").startswith("内存不足")
    m = _explain(RuntimeError("boom"), job)
    assert "unexpected error" in m.text("en") and "意外错误" in m.text("zh") and "boom" in m.text("zh")
    job._say(Msg("engine.log.completed"))
    snap = job.snapshot()
    assert snap["log"][-1].endswith(Msg("engine.log.completed").text("en"))
    assert text_of(snap["log_messages"][-1]["message"], "zh") == Msg("engine.log.completed").text("zh")
    json.dumps(snap["log_messages"])  # kept as data: summary.json and the page read it in any language


def test_start_refuses_in_both_languages():
    from studio.engine.job import Job

    with pytest.raises(StudioError) as caught:
        Job(RunConfig()).start()  # no training data
    assert "No training data" in str(caught.value) and "没有训练数据" in caught.value.text("zh")


# ---- the tabs show the reader's language ------------------------------------------------------------

def test_train_tab_shows_engine_errors_in_chinese(tmp_path):
    from studio.engine import settings
    from studio.ui import train_tab as tt

    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    res = settings.check_data_file(str(empty), "sft")
    assert res["message"].text("en") == "empty.jsonl is empty." and res["message"].text("zh") == "empty.jsonl 是空文件。"

    settings_now, base = settings.settings_from_config(RunConfig()), RunConfig().to_dict()  # no data: start refuses
    assert "No training data" in tt.start_run(settings_now, base, "en")["status"]
    assert "没有训练数据" in tt.start_run(settings_now, base, "zh")["status"]

    failed = Msg("engine.log.failed", error=Msg("error.disk_full"))
    snap = {"state": "failed", "step": 1, "total_steps": 2, "error": Msg("error.disk_full").text("en"),
            "error_message": Msg("error.disk_full").to_dict(), "log": ["10:00:00 " + failed.text("en")],
            "log_messages": [{"time": "10:00:00", "message": failed.to_dict()}], "metrics": []}
    assert Msg("error.disk_full").text("zh") in tt.progress_html(snap, "zh")
    assert Msg("error.disk_full").text("en") in tt.progress_html(snap, "en")
    assert tt.live_view(snap, None, "zh")["log"] == "10:00:00 " + failed.text("zh")
    old = dict(snap, error_message=None, log_messages=None)  # a summary.json with the English text only
    assert "disk" in tt.progress_html(old, "zh") and tt.live_view(old, None, "zh")["log"] == snap["log"][0]


def test_model_tab_shows_engine_errors_in_chinese():
    from studio.ui import model_tab as mt

    no_gpu = {"cuda": False, "mps": False, "gpus": [], "cpu_cores": 2, "ram_bytes": 16 * 2**30, "cpu_bf16": False}
    res = mt.evaluate({"target": "lots"}, "zh", hw=no_gpu)
    assert not res["ok"] and "不是内存大小" in res["error"] and res["verdict_md"].endswith(res["error"])
