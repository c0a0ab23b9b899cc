"""The training engine on a tiny random Llama: what changed, not how long it took."""

import json
import math
import time

import pytest
import torch

from studio.config import RunConfig
from studio.engine import job as job_mod
from studio.engine.job import Job
from studio.engine.runs import last_checkpoint, read_metrics, read_summary
from studio.errors import StudioError

QA = [("What colour is the sky?", "blue"), ("Two plus two?", "four"), ("Capital of France?", "Paris"),
      ("Opposite of hot?", "cold")]


def write_rows(path, kind="sft", n=16):
    rows = []
    for i in range(n):
        q, a = QA[i % len(QA)]
        if kind == "sft":
            rows.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]})
        elif kind == "dpo":
            rows.append({"prompt": q, "chosen": a, "rejected": "no idea"})
        else:
            rows.append({"text": f"{q} {a}. The quick brown fox jumps over the lazy dog {i}."})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def make_cfg(tiny_model_dir, data, **training):
    cfg = RunConfig()
    cfg.model.name = str(tiny_model_dir)
    cfg.data.train_file = str(data)
    cfg.data.eval_share = 0.25
    t = dict(epochs=2, batch_size=4, max_length=64, learning_rate=5e-2, warmup_ratio=0.0, scheduler="constant")
    t.update(training)
    for k, v in t.items():
        setattr(cfg.training, k, v)
    return cfg


def run(cfg, tmp_path):
    job = Job(cfg, output_dir=tmp_path / "runs")
    job.start()
    assert job.wait(300), "job did not finish"
    return job


def test_config_yaml_roundtrip_and_plain_validation(tmp_path):
    cfg = RunConfig()
    cfg.method.method = "qlora"
    cfg.training.learning_rate = 3e-4
    p = tmp_path / "c.yaml"
    cfg.save(p)
    again = RunConfig.load(p)
    assert again == cfg
    problems = [p.text("en") for p in again.validate({"cuda": False, "mps": False})]
    assert "QLoRA needs an NVIDIA GPU; this machine has none. Choose LoRA." in problems
    assert any("No training data" in x for x in problems)
    with pytest.raises(StudioError, match="Unknown setting"):
        RunConfig.from_yaml("training:\n  learning_rat: 1\n")
    with pytest.raises(StudioError, match="should be a int"):
        RunConfig.from_yaml("training:\n  batch_size: lots\n")


def test_optimizer_setting_round_trips_validates_and_maps_to_transformers(tmp_path):
    from transformers.training_args import OptimizerNames

    from studio import memory
    from studio.config import HF_OPTIM, OPTIMIZERS

    assert OPTIMIZERS == memory.OPTIMIZERS and set(HF_OPTIM) == set(OPTIMIZERS)
    assert HF_OPTIM["adamw"] == "adamw_torch" and HF_OPTIM["adamw_8bit"] == "adamw_bnb_8bit"
    assert HF_OPTIM["paged_adamw_8bit"] == "paged_adamw_8bit"
    for name in HF_OPTIM.values():
        OptimizerNames(name)  # a value TrainingArguments accepts
    # an old config without the field is still valid, with AdamW
    old = RunConfig.from_yaml("training:\n  learning_rate: 0.0001\n")
    assert old.training.optimizer == "adamw"
    cfg = RunConfig()
    cfg.training.optimizer = "adamw_8bit"
    cfg.save(tmp_path / "c.yaml")
    assert RunConfig.load(tmp_path / "c.yaml").training.optimizer == "adamw_8bit"
    assert "optimizer: adamw_8bit" in cfg.to_yaml()
    no_gpu = cfg.validate({"cuda": False, "mps": False})
    assert "8-bit AdamW needs an NVIDIA GPU and bitsandbytes; this machine has none. Choose AdamW." in [
        p.text("en") for p in no_gpu]
    assert any("8 位 AdamW 需要 NVIDIA GPU" in p.text("zh") for p in no_gpu)
    gpu = [p.text("en") for p in cfg.validate({"cuda": True, "bitsandbytes": True})]
    assert not any("AdamW" in p for p in gpu)
    assert any("bitsandbytes package" in p.text("en")
               for p in cfg.validate({"cuda": True, "bitsandbytes": False}))
    cfg.training.optimizer = "lion"
    assert any("Unknown optimizer 'lion'" in p.text("en") for p in cfg.validate({"cuda": True}))
    # the estimate of a run counts the optimizer it trains with
    from studio.hardware import described_gpu
    from studio.plan import plan

    cfg.method.method, cfg.model.name = "full", "qwen2.5-0.5b-instruct"
    sizes = {}
    for opt in ("adamw", "adamw_8bit"):
        cfg.training.optimizer = opt
        e = plan(cfg, described_gpu(24), with_recommendations=False, with_duration=False).estimate
        assert e.setup["optimizer"] == opt
        sizes[opt] = e.breakdown["optimizer"]
    assert sizes["adamw_8bit"] < 0.6 * sizes["adamw"]


def test_training_arguments_keep_epoch_checkpoints_show_nan_and_use_the_optimizer(tmp_path):
    from studio.engine.device import Placement
    from studio.engine.trainers import common_args

    cfg = RunConfig()
    cfg.training.optimizer = "paged_adamw_8bit"
    args = common_args(cfg, tmp_path, Placement("cpu", "bf16", ""), has_eval=True, gradient_checkpointing=False)
    assert args["optim"] == "paged_adamw_8bit"
    assert args["logging_nan_inf_filter"] is False  # else a NaN loss is logged as the average of earlier ones
    assert args["save_total_limit"] is None and args["save_strategy"] == "epoch"
    assert args["gradient_checkpointing"] is False and args["bf16"] is True and args["use_cpu"] is True


def _fake_checkpoint(ck_dir, step, epoch, complete=True):
    ck = ck_dir / f"checkpoint-{step}"
    ck.mkdir(parents=True)
    if complete:
        (ck / "trainer_state.json").write_text(json.dumps({"global_step": step, "epoch": epoch}))
    return ck


def test_superseded_timed_checkpoints_go_epoch_checkpoints_stay(tmp_path):
    from studio.engine.trainers import superseded_checkpoints

    ck_dir = tmp_path / "checkpoints"
    _fake_checkpoint(ck_dir, 5, 0.5)  # a timed save
    _fake_checkpoint(ck_dir, 10, 1.0)  # end of epoch 1
    _fake_checkpoint(ck_dir, 13, 1.3)  # a timed save
    _fake_checkpoint(ck_dir, 17, 1.7)  # a stop: the newest, resumed from
    _fake_checkpoint(ck_dir, 18, None, complete=False)  # cut short by a kill: Job.resume removes it
    assert [p.name for p in superseded_checkpoints(ck_dir)] == ["checkpoint-13", "checkpoint-5"]
    for p in superseded_checkpoints(ck_dir):
        import shutil

        shutil.rmtree(p)
    assert last_checkpoint(tmp_path).name == "checkpoint-17"
    _fake_checkpoint(ck_dir, 20, 2.0)
    assert [p.name for p in superseded_checkpoints(ck_dir)] == ["checkpoint-17"]
    assert superseded_checkpoints(tmp_path / "none") == []


def test_gradient_checkpointing_is_off_when_the_run_fits(tiny_model_dir, tmp_path, monkeypatch):
    from studio.plan import plan

    cfg = make_cfg(tiny_model_dir, tmp_path / "unused.jsonl")
    cfg.training.device = "cpu"
    assert cfg.training.gradient_checkpointing == "auto"
    roomy = {"cuda": False, "mps": False, "ram_bytes": 16 * 2**30, "ram_for_app_bytes": 16 * 2**30}
    p = plan(cfg, roomy, with_recommendations=False, with_duration=False)
    assert p.gradient_checkpointing is False and "fits in memory" in p.gc_reason.text("en")
    tiny = dict(roomy, ram_bytes=1024, ram_for_app_bytes=1024)  # a device far too small
    p = plan(cfg, tiny, with_recommendations=False, with_duration=False)
    assert p.gradient_checkpointing is True and "more than 90%" in p.gc_reason.text("en")
    cfg.training.gradient_checkpointing = "off"
    assert plan(cfg, tiny, with_recommendations=False, with_duration=False).gradient_checkpointing is False


@pytest.mark.parametrize("flags,precision", [
    ("fpu sse avx2 avx512f avx512_bf16 avx512_vnni", "bf16"),  # this machine's kind of CPU
    ("fpu sse avx2 amx_bf16 amx_tile", "bf16"),
    ("fpu sse avx2 avx512f", "fp32"),  # no native bf16: emulated bf16 is slower than fp32
])
def test_cpu_placement_follows_the_processor_flags(flags, precision):
    from studio import hardware
    from studio.engine import device

    cpuinfo = f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n"
    hw = {"cuda": False, "mps": False, "gpus": [], "cpu_bf16": hardware.cpu_bf16_support(cpuinfo)}
    for asked in ("auto", "cpu"):
        p = device.choose(asked, hw=hw)
        assert (p.device, p.precision) == ("cpu", precision)
        assert p.weights_dtype == torch.float32  # bf16 on a CPU is autocast over fp32 weights


def test_device_choice_on_this_machine():
    from studio import hardware
    from studio.engine.device import choose

    p = choose()
    assert p.device in ("cpu", "cuda", "mps")
    if p.device == "cpu":
        assert p.precision == ("bf16" if hardware.detect()["cpu_bf16"] else "fp32")
    assert choose("cpu", "fp32").precision == "fp32"


def test_sft_lora_learns_and_writes_the_run_folder(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "train.jsonl")
    job = run(make_cfg(tiny_model_dir, data, epochs=6), tmp_path)
    assert job.state == "completed", job.error
    rd = job.run_dir
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "data/train.jsonl", "data/eval.jsonl",
                 "adapter/adapter_model.safetensors", "adapter/adapter_config.json"):
        assert (rd / name).exists(), name
    assert len((rd / "data/train.jsonl").read_text().splitlines()) == 12
    assert len(list((rd / "checkpoints").glob("checkpoint-*"))) == 6, "a checkpoint per epoch, all kept"
    assert job.gradient_checkpointing is False, "auto: off when the run fits"
    events = read_metrics(rd)
    losses = [e["loss"] for e in events if "loss" in e]
    assert losses[-1] < losses[0] * 0.7, losses
    # the default schedule looks several times an epoch: 3 steps an epoch here, so after every step
    assert sum("eval_loss" in e for e in events) == 18
    s = read_summary(rd)
    for key in ("status", "steps", "duration_s", "train_loss", "eval_loss", "tokens_per_second", "peak_memory_bytes",
                "estimated_memory_bytes", "trainable_params", "world_size"):
        assert key in s, key
    assert s["status"] == "completed" and s["world_size"] == 1
    assert 0 < s["trainable_params"] < s["total_params"]
    # the adapter's B matrices start at zero: training moved them
    from safetensors.torch import load_file

    weights = load_file(rd / "adapter/adapter_model.safetensors")
    assert any(k.endswith("lora_B.weight") and v.abs().sum() > 0 for k, v in weights.items())
    # the config in the run folder runs the same thing again
    assert RunConfig.load(rd / "config.yaml").training.epochs == 6


def test_loss_only_on_answers(tiny_model_dir):
    from transformers import AutoTokenizer

    from studio.models.chat import tokenize_conversation

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hi there"}, {"role": "user", "content": "and?"},
            {"role": "assistant", "content": "bye"}]
    enc = tokenize_conversation(tok, msgs)
    answer = tok.decode([i for i, m in zip(enc["input_ids"], enc["assistant_masks"]) if m])
    assert answer == "hi there<|im_end|>bye<|im_end|>"


def test_stop_then_resume_continues_at_the_same_step(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "train.jsonl", n=64)
    cfg = make_cfg(tiny_model_dir, data, epochs=1, batch_size=1, max_steps=40)
    job = Job(cfg, output_dir=tmp_path / "runs").start()
    deadline = time.time() + 120
    while job.step < 3 and time.time() < deadline and not job.done:
        time.sleep(0.01)
    job.stop()
    assert job.wait(120)
    assert job.state == "stopped", job.error
    stopped_at = job.step
    assert 3 <= stopped_at < 40
    ck = last_checkpoint(job.run_dir)
    assert ck is not None and ck.name == f"checkpoint-{stopped_at}"
    assert (job.run_dir / "adapter/adapter_model.safetensors").exists(), "the adapter so far is saved"

    again = Job.resume(job.run_dir).start()
    assert again.wait(300)
    assert again.state == "completed", again.error
    steps = [e["step"] for e in read_metrics(job.run_dir) if "loss" in e]
    assert steps == sorted(set(steps)), "no step logged twice"
    assert steps[0] == 1 and steps[-1] == 40
    assert min(s for s in steps if s > stopped_at) == stopped_at + 1
    # the stop's checkpoint was superseded by the final one (mid-epoch, as max_steps ends before the epoch)
    assert [p.name for p in (job.run_dir / "checkpoints").glob("checkpoint-*")] == ["checkpoint-40"]


def test_absurd_learning_rate_trips_the_nan_guard(tiny_model_dir, tmp_path, monkeypatch):
    from studio.engine.metrics import StudioCallback

    # The guard must catch it through the loss alone: hide the gradient norm from it.
    on_log = StudioCallback.on_log

    def without_grad_norm(self, args, state, control, logs=None, **kw):
        return on_log(self, args, state, control, logs={k: v for k, v in (logs or {}).items() if k != "grad_norm"}, **kw)

    monkeypatch.setattr(StudioCallback, "on_log", without_grad_norm)
    data = write_rows(tmp_path / "train.jsonl")
    cfg = make_cfg(tiny_model_dir, data, learning_rate=1e12, epochs=3)
    cfg.method.method = "full"
    cfg.validate = lambda hardware=None: []  # the validator would refuse this rate for full fine-tuning
    job = run(cfg, tmp_path)
    assert job.state == "failed"
    assert "learning rate is likely too high" in job.error
    assert read_summary(job.run_dir)["status"] == "failed"
    losses = [e["loss"] for e in read_metrics(job.run_dir) if "loss" in e]
    assert not math.isfinite(losses[-1]), "the NaN loss itself is logged, not the average of earlier ones"
    assert all("grad_norm" not in e for e in read_metrics(job.run_dir))


def test_out_of_memory_fails_with_advice_and_the_next_job_runs(tiny_model_dir, tmp_path, monkeypatch):
    from transformers import Trainer

    data = write_rows(tmp_path / "train.jsonl")
    original = Trainer.training_step

    def boom(self, *a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(Trainer, "training_step", boom)
    job = run(make_cfg(tiny_model_dir, data), tmp_path)
    assert job.state == "failed"
    assert job.error.startswith("Out of memory")
    assert "batch size" in job.error or "gradient checkpointing" in job.error
    monkeypatch.setattr(Trainer, "training_step", original)
    job2 = run(make_cfg(tiny_model_dir, data, epochs=1), tmp_path)
    assert job2.state == "completed", job2.error


def test_one_job_at_a_time(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "train.jsonl", n=64)
    first = Job(make_cfg(tiny_model_dir, data, batch_size=1, max_steps=60), output_dir=tmp_path / "runs").start()
    try:
        with pytest.raises(StudioError, match="already training"):
            Job(make_cfg(tiny_model_dir, data), output_dir=tmp_path / "runs").start()
        assert job_mod.current_job() is first
    finally:
        first.stop()
        first.wait(120)


def test_cpt_packs_plain_text(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "text.jsonl", kind="text", n=24)
    job = run(make_cfg(tiny_model_dir, data, stage="cpt", max_length=32, epochs=1), tmp_path)
    assert job.state == "completed", job.error
    assert any("loss" in e for e in read_metrics(job.run_dir))


def test_dpo_with_lora(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "pref.jsonl", kind="dpo", n=12)
    job = run(make_cfg(tiny_model_dir, data, stage="dpo", epochs=1, learning_rate=1e-3), tmp_path)
    assert job.state == "completed", job.error
    losses = [e["loss"] for e in read_metrics(job.run_dir) if "loss" in e]
    assert losses and all(math.isfinite(x) for x in losses)


def test_full_fine_tuning_saves_a_model(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "train.jsonl")
    cfg = make_cfg(tiny_model_dir, data, epochs=1, learning_rate=1e-4)
    cfg.method.method = "full"
    job = run(cfg, tmp_path)
    assert job.state == "completed", job.error
    assert (job.run_dir / "model/config.json").exists()
    assert read_summary(job.run_dir)["trainable_params"] == read_summary(job.run_dir)["total_params"]


def test_wrong_stage_for_the_data_is_one_sentence(tiny_model_dir, tmp_path):
    data = write_rows(tmp_path / "train.jsonl")
    job = run(make_cfg(tiny_model_dir, data, stage="dpo"), tmp_path)
    assert job.state == "failed"
    assert job.error.startswith("The DPO stage needs preference rows")


def test_cli_train_prints_the_run_folder_last(tiny_model_dir, tmp_path, capsys):
    from studio.cli import main

    data = write_rows(tmp_path / "train.jsonl")
    cfg = make_cfg(tiny_model_dir, data, epochs=1)
    cfg.save(tmp_path / "c.yaml")
    assert main(["train", str(tmp_path / "c.yaml"), "--output-dir", str(tmp_path / "out")]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith(str(tmp_path / "out")) and (tmp_path / "out").is_dir()
    assert read_summary(last)["status"] == "completed"


def test_cli_train_bad_config_is_one_line(tmp_path, capsys):
    from studio.cli import main

    (tmp_path / "bad.yaml").write_text("training: [1, 2\n")
    assert main(["train", str(tmp_path / "bad.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not valid YAML" in err[0]


def test_a_stop_is_acknowledged_at_once_and_does_not_wait_for_the_whole_step():
    """Stop answers with what is happening, and ends the run at the next micro-batch, not only at the end of
    a gradient-accumulation step (on a CPU one step can take a minute)."""
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from studio.engine.metrics import StudioCallback

    job = Job(RunConfig())
    job.state, job.total_steps, job.step = "training", 15, 13
    job._first_step, job._first_step_at, job._last_step_at = 0, time.time() - 130, time.time() - 3
    said = job.stop()
    assert said.text("en").startswith("Stopping: finishing step 14 of 15 (about 7 s)"), said.text("en")
    assert "第 14/15 步" in said.text("zh")
    assert job.snapshot()["stopping"] and job.snapshot()["stop_message"]["id"] == "engine.stop.finishing"
    control = StudioCallback(job).on_substep_end(TrainingArguments(output_dir="/tmp/x", report_to=[]),
                                                 TrainerState(), TrainerControl())
    assert control.should_training_stop and control.should_save
