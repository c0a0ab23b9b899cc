"""Faults: a kill at any moment leaves the last good checkpoint, a killed run reads as interrupted and
resumes at its step, a full disk or an unwritable folder is a sentence, and a failing handler shows a
message in the page while the app keeps working."""

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio import run_files
from studio.engine import runs
from studio.engine.job import Job
from studio.errors import StudioError, from_os_error
from test_engine import make_cfg, write_rows


def fake_checkpoint(run_dir: Path, step: int, complete: bool = True) -> Path:
    ck = run_dir / "checkpoints" / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    (ck / "adapter_model.safetensors").write_bytes(b"x")
    state = json.dumps({"global_step": step, "log_history": []})
    (ck / "trainer_state.json").write_text(state if complete else state[: len(state) // 2])
    return ck


def test_a_checkpoint_cut_short_is_skipped_and_cleared_on_resume(tmp_path, tiny_model_dir):
    run_dir = tmp_path / "run"
    cfg = make_cfg(tiny_model_dir, write_rows(tmp_path / "d.jsonl"))
    cfg.save(run_dir / run_files.CONFIG)
    fake_checkpoint(run_dir, 2)
    fake_checkpoint(run_dir, 4, complete=False)  # killed while writing its trainer state
    (run_dir / "checkpoints" / "checkpoint-6").mkdir()  # killed before anything was written
    assert runs.last_checkpoint(run_dir).name == "checkpoint-2"
    job = Job.resume(run_dir)
    assert job.resume_from.name == "checkpoint-2"
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["checkpoint-2"]


def test_a_run_whose_process_is_gone_reads_as_interrupted(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    assert runs.run_status(run_dir) == "failed"  # nothing there at all
    fake_checkpoint(run_dir, 3)
    assert runs.run_status(run_dir) == "interrupted"  # a checkpoint but no summary: killed early

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import psutil

        owner = {"pid": sleeper.pid, "pid_started": psutil.Process(sleeper.pid).create_time(),
                 "host": runs.process_id()["host"]}
        (run_dir / run_files.SUMMARY).write_text(json.dumps({"status": "training", "steps": 3, **owner}))
        assert runs.run_status(run_dir) == "training"  # another process (a CLI run) is still on it
    finally:
        sleeper.kill()
        sleeper.wait()
    assert runs.run_status(run_dir) == "interrupted"
    # a reused pid is not the same process
    (run_dir / run_files.SUMMARY).write_text(json.dumps({"status": "training", "pid": os.getppid(), "pid_started": 1.0}))
    assert runs.run_status(run_dir) == "interrupted"
    # this very process named as owner, but not training it: interrupted too (a crash that skipped the summary)
    (run_dir / run_files.SUMMARY).write_text(json.dumps({"status": "training", **runs.process_id()}))
    assert runs.run_status(run_dir) == "interrupted"
    assert runs.run_status(run_dir, live_run_dir=run_dir, live_state="saving") == "saving"


def test_kill_mid_training_then_resume_at_the_same_step(tmp_path, tiny_model_dir):
    """`studio train` killed with SIGKILL between checkpoints: the folder says interrupted, and a resume
    continues from the last checkpoint to the end."""
    cfg = make_cfg(tiny_model_dir, write_rows(tmp_path / "d.jsonl", n=64), epochs=1, max_steps=400, batch_size=2,
                   learning_rate=1e-3, save_minutes=0.002)  # a checkpoint about every 0.1 s
    cfg.save(tmp_path / "c.yaml")
    out = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    proc = subprocess.Popen([sys.executable, "-m", "studio", "train", str(tmp_path / "c.yaml"), "--output-dir", str(out)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    run_dir = None
    try:
        while time.time() < deadline and proc.poll() is None:
            found = list(out.glob("*/checkpoints/checkpoint-*/trainer_state.json"))
            if len(found) >= 2:
                run_dir = found[0].parents[2]
                break
            time.sleep(0.05)
        assert run_dir is not None, proc.stderr.read().decode()[-2000:] if proc.poll() is not None else "no checkpoint"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert runs.read_summary(run_dir)["status"] == "training"
    assert runs.run_status(run_dir) == "interrupted"
    ck = runs.last_checkpoint(run_dir)
    step = runs.checkpoint_step(ck)
    assert 0 < step < 400

    job = Job.resume(run_dir)
    seen = []
    job._on_train_begin = (lambda orig: lambda state, model: (seen.append(int(state.global_step)), orig(state, model)))(
        job._on_train_begin)
    job.cfg.training.save_minutes = 0  # the rest at full speed
    job.start()
    assert job.wait(300)
    assert job.state == "completed", job.error
    assert seen == [step]  # training went on from the checkpoint's step, not from 0
    s = runs.read_summary(run_dir)
    assert s["status"] == "completed" and s["steps"] == 400 and "pid" not in s
    steps = [e["step"] for e in runs.read_metrics(run_dir) if "loss" in e]
    assert steps == sorted(steps) and len(steps) == len(set(steps))  # one curve, no repeated steps


def test_a_full_disk_is_a_sentence_and_the_next_job_runs(tmp_path, tiny_model_dir, monkeypatch):
    import studio.engine.job as job_mod

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "runs"))

    cfg = make_cfg(tiny_model_dir, write_rows(tmp_path / "d.jsonl"), epochs=1, max_steps=2)
    with monkeypatch.context() as m:
        m.setattr(job_mod, "_shared_run_dir", full)
        job = Job(cfg, output_dir=tmp_path / "runs").start()
        assert job.wait(120)
    assert job.state == "failed"
    assert job.error.startswith("The disk is full")
    again = Job(cfg, output_dir=tmp_path / "runs").start()
    assert again.wait(300) and again.state == "completed", again.error


def unwritable_dir(tmp_path) -> Path:
    d = tmp_path / "locked"
    d.mkdir()
    d.chmod(0o555)
    probe = d / "probe"
    try:
        probe.mkdir()  # root ignores permissions: use a folder nobody may write to instead
        probe.rmdir()
        return Path("/sys/studio-test")
    except OSError:
        return d / "runs"


def test_an_unwritable_output_folder_is_one_sentence(tmp_path, tiny_model_dir):
    cfg = make_cfg(tiny_model_dir, write_rows(tmp_path / "d.jsonl"), epochs=1, max_steps=1)
    cfg.save(tmp_path / "c.yaml")
    target = unwritable_dir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    r = subprocess.run([sys.executable, "-m", "studio", "train", str(tmp_path / "c.yaml"), "--output-dir", str(target)],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "may not write to" in r.stderr, r.stderr[-1500:]


def test_os_errors_in_plain_words():
    assert from_os_error(OSError(errno.ENOSPC, "x", "/data/runs")).text("zh").startswith("磁盘已满")
    assert "may not write" in str(from_os_error(PermissionError(errno.EACCES, "x", "/srv")))
    assert from_os_error(ValueError("x")) is None
    assert from_os_error(OSError(errno.ENOENT, "x")) is None


def test_a_failing_handler_shows_a_message_and_the_app_goes_on(tmp_path):
    """Every handler is guarded: an unexpected exception or a StudioError reaches the page as a message
    (gradio's error toast), and the next event works."""
    import gradio as gr
    from gradio_client import Client

    from studio.ui.guard import guard_handlers

    def broken(x):
        raise KeyError("surprise")

    def plain(x, request: gr.Request):
        raise StudioError("data.file.missing", path="x")

    def gen(x):
        yield "one"
        raise RuntimeError("mid-stream")

    with gr.Blocks() as demo:
        box = gr.Textbox()
        out = gr.Textbox()
        box.submit(broken, box, out, api_name="broken")
        box.change(plain, box, out, api_name="plain")
        box.blur(gen, box, out, api_name="gen")
        box.focus(lambda x: x.upper(), box, out, api_name="works")
    guard_handlers(demo)
    assert all(getattr(f.fn, "_studio_guarded", False) for f in demo.fns.values() if f.fn)
    demo.queue()
    _, url, _ = demo.launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(url, verbose=False)
        with pytest.raises(Exception, match="Something went wrong in this step \\(KeyError"):
            client.predict("a", api_name="/broken")
        with pytest.raises(Exception, match="The data file x does not exist"):
            client.predict("a", api_name="/plain")
        with pytest.raises(Exception, match="mid-stream"):
            client.predict("a", api_name="/gen")
        assert client.predict("ok", api_name="/works") == "OK"
    finally:
        demo.close()


def test_the_app_guards_every_handler():
    from studio.ui.app import build_app

    demo = build_app()
    assert all(getattr(f.fn, "_studio_guarded", False) for f in demo.fns.values() if f.fn)
