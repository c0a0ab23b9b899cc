"""Data-parallel training on two CPU processes (DDP over gloo), launched the way the README says,
`accelerate launch --multi_gpu --num_processes 2 -m studio train CONFIG`: one run folder, metrics and
checkpoints written once (by the main process), and the world size in summary.json."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_two_processes_train_into_one_run_folder(tiny_model_dir, tmp_path):
    from studio.config import RunConfig

    rows = [{"messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": "A"}]}
            for i in range(32)]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = RunConfig()
    cfg.model.name, cfg.data.train_file, cfg.data.eval_share = str(tiny_model_dir), str(data), 0.25
    t = cfg.training
    t.epochs, t.batch_size, t.max_length, t.learning_rate = 2, 2, 32, 1e-2
    cfg.save(tmp_path / "c.yaml")
    # `accelerate launch --cpu --num_processes 2` silently starts one process; `--multi_gpu` starts two,
    # which join over gloo on a machine without GPUs. HF_HOME: no accelerate config of this machine's applies.
    proc = subprocess.run([sys.executable, "-m", "accelerate.commands.accelerate_cli", "launch", "--multi_gpu",
                           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
                           "--dynamo_backend", "no", "-m", "studio", "train", str(tmp_path / "c.yaml"),
                           "--output-dir", str(tmp_path / "runs")],
                          capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, OMP_NUM_THREADS="1", HF_HOME=str(tmp_path / "hf-home")))
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, "both processes share one run folder"
    run = runs[0]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["world_size"] == 2
    # 24 training rows, batch 2 per process x 2 processes, 2 epochs = 12 steps
    assert summary["steps"] == 12
    events = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    loss_steps = [e["step"] for e in events if "loss" in e]
    assert loss_steps == sorted(set(loss_steps)) and len(loss_steps) == 12, "metrics written once, by the main process"
    # the default schedule evaluates every 2 of an epoch's 6 steps: 6 evaluations, not one set per process
    assert sum("eval_loss" in e for e in events) == 6
    # one checkpoint per epoch (6 steps each), each saved once: one model, one trainer state, no leftovers
    checkpoints = sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-12", "checkpoint-6"], checkpoints
    for ck in checkpoints:
        files = {p.name for p in (run / "checkpoints" / ck).iterdir()}
        assert {"adapter_model.safetensors", "trainer_state.json"} <= files, files
        assert json.loads((run / "checkpoints" / ck / "trainer_state.json").read_text())["global_step"] == int(ck[11:])
    assert (run / "adapter/adapter_model.safetensors").is_file()
    assert not [p.name for p in run.iterdir() if p.name.endswith((".partial", ".old"))]
    assert Path(proc.stdout.strip().splitlines()[-1]) == run
