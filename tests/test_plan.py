"""One run plan: the figure a person sees for a run is the same in the Model tab, the Train tab, `studio
estimate`, the trainer and summary.json, for LoRA, QLoRA and full, SFT and DPO, on a CPU and a described GPU."""

import json

import pytest

from studio import hardware
from studio.cli import main as cli_main
from studio.config import RunConfig
from studio.engine.settings import with_model
from studio.plan import apply_change, placement, plan
from studio.ui import model_tab as mt
from studio.ui import train_tab as tt

GiB = 2**30
CPU = {"cuda": False, "mps": False, "gpus": [], "cpu_cores": 2, "ram_bytes": 24 * GiB, "ram_available_bytes": 20 * GiB,
       "ram_for_app_bytes": 21 * GiB, "cpu_bf16": True, "torch": "2"}


def _gpu(gib):
    return {**CPU, "cuda": True, "gpus": [{"index": 0, "name": "", "total_bytes": int(gib * GiB), "free_bytes": None,
                                           "bf16": True, "compute_capability": ""}], "described": True}


# (model, method, quant_bits, stage, gradient checkpointing, batch, length, GPU GiB or None for this CPU)
CASES = [
    ("smollm2-135m-instruct", "lora", 4, "sft", "off", 8, 512, None),
    ("smollm2-360m-instruct", "full", 4, "sft", "on", 2, 256, None),
    ("smollm2-135m-instruct", "lora", 4, "dpo", "off", 4, 512, None),
    ("qwen2.5-7b-instruct", "qlora", 4, "sft", "on", 4, 1024, 24),
    ("qwen2.5-1.5b-instruct", "lora", 4, "dpo", "off", 4, 2048, 80),
    ("qwen2.5-0.5b-instruct", "full", 4, "sft", "off", 8, 1024, 16),
    ("qwen2.5-7b-instruct", "qlora", 8, "dpo", "on", 1, 4096, 48),
]


def _cfg(model, method, bits, stage, gc, batch, length, gpu):
    cfg = RunConfig()
    cfg.model.name = model
    cfg.method.method, cfg.method.quant_bits = method, bits
    t = cfg.training
    t.stage, t.gradient_checkpointing, t.batch_size, t.max_length = stage, gc, batch, length
    t.device = "cuda" if gpu else "cpu"
    return cfg


def _model_tab_settings(cfg, gpu):
    method = {"full": "full", "lora": "lora"}.get(cfg.method.method, f"qlora{cfg.method.quant_bits}")
    t = cfg.training
    return {"model": cfg.model.name, "target": str(gpu) if gpu else "auto", "method": method, "precision": "auto",
            "batch_size": t.batch_size, "grad_accum": t.grad_accum, "max_length": t.max_length,
            "gradient_checkpointing": t.gradient_checkpointing, "lora_rank": cfg.method.lora_rank, "optimizer": "adamw"}


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1]}{c[2]}-{c[3]}-gc{c[4]}-{c[7] or 'cpu'}" for c in CASES])
def test_the_same_number_on_every_screen(case, monkeypatch, capsys):
    gpu = case[-1]
    hw = _gpu(gpu) if gpu else CPU
    monkeypatch.setattr(hardware, "detect", lambda refresh=False: dict(CPU))  # this machine: 2 cores, no GPU
    cfg = _cfg(*case)
    p = plan(cfg, hw)
    assert p.estimate is not None and p.total_bytes > 0
    # the Model tab (its own controls, on this machine or "a GPU with N GiB"), handed the Train tab's stage
    res = mt.evaluate(_model_tab_settings(cfg, gpu), base={"training": {"stage": cfg.training.stage}})
    assert res["ok"], res.get("error")
    assert res["plan"].total_bytes == p.total_bytes == res["model_ctx"]["estimate_bytes"]
    assert f"{p.total_bytes / GiB:.1f} GiB" in res["verdict_md"]
    # the Train tab's plan: the config the Model tab hands over
    train_cfg = RunConfig.from_dict(with_model(cfg.to_dict(), res["model_ctx"]))
    train_cfg.training.device = cfg.training.device
    assert plan(train_cfg, hw).total_bytes == p.total_bytes
    if not gpu:
        assert f"{p.total_bytes / GiB:.1f} GiB" in tt.plan_markdown(train_cfg)
    # studio estimate --json: the figure for studio train
    args = ["estimate", "--model", cfg.model.name, "--method", cfg.method.method, "--quant-bits", str(cfg.method.quant_bits),
            "--batch-size", str(cfg.training.batch_size), "--seq-len", str(cfg.training.max_length),
            "--stage", cfg.training.stage, "--json",
            "--gradient-checkpointing" if cfg.training.gradient_checkpointing == "on" else "--no-gradient-checkpointing"]
    args += ["--gpu-memory-gib", str(gpu)] if gpu else ["--cpu"]
    assert cli_main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["studio_train_total_bytes"] == p.total_bytes == out["plan"]["total_bytes"]
    # the trainer: what it records as estimated_memory_bytes
    from studio.engine import trainers

    monkeypatch.setattr(hardware, "detect", lambda refresh=False: dict(hw))
    assert trainers.run_plan(cfg).total_bytes == p.total_bytes


def test_summary_json_records_the_plans_figure(tiny_model_dir, tmp_path, monkeypatch):
    from studio.engine.job import Job
    from studio.engine.runs import read_summary

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                     {"role": "assistant", "content": f"a{i}"}]}) + "\n"
                            for i in range(8)))
    cfg = RunConfig()
    cfg.model.name, cfg.data.train_file, cfg.data.eval_share = str(tiny_model_dir), str(data), 0.0
    cfg.training.max_steps, cfg.training.batch_size, cfg.training.max_length = 2, 2, 32
    monkeypatch.setattr(hardware, "detect", lambda refresh=False: dict(CPU))
    expected = plan(cfg, CPU).total_bytes
    job = Job(cfg, output_dir=tmp_path / "runs").start()
    assert job.wait(300)
    assert read_summary(job.run_dir)["estimated_memory_bytes"] == expected


def test_auto_checkpointing_turns_on_only_when_it_does_not_fit():
    cfg = _cfg("qwen2.5-1.5b-instruct", "lora", 4, "sft", "auto", 8, 2048, 80)
    roomy = plan(cfg, _gpu(80))
    assert roomy.gradient_checkpointing is False and "fits in memory" in roomy.gc_reason.text()
    tight = plan(cfg, _gpu(16))
    assert tight.gradient_checkpointing is True and "more than 90%" in tight.gc_reason.text()
    assert tight.total_bytes < roomy.total_bytes
    assert "梯度检查点" in tight.gc_reason.text("zh")


def test_on_a_cpu_the_weights_count_four_bytes_and_the_capacity_is_this_process_ram():
    cfg = _cfg("smollm2-135m-instruct", "lora", 4, "sft", "off", 8, 512, None)
    p = plan(cfg, CPU)
    assert (p.device, p.precision, p.weights) == ("cpu", "bf16", "fp32")
    assert p.estimate.setup["precision"] == "fp32" and p.capacity_bytes == 21 * GiB
    assert any("FP32" in n.text() for n in p.notes)
    assert placement("auto", "auto", {**CPU, "cpu_bf16": False})[1] == "fp32"
    assert placement("auto", "auto", _gpu(24))[:2] == ("cuda", "bf16")
    # DPO doubles the rows: more memory for the same batch
    dpo = plan(_cfg("smollm2-135m-instruct", "lora", 4, "dpo", "off", 8, 512, None), CPU)
    assert dpo.total_bytes > p.total_bytes
    # QLoRA on a machine without CUDA is planned for a GPU, and says so
    q = plan(_cfg("qwen2.5-7b-instruct", "qlora", 4, "sft", "on", 1, 512, None), CPU)
    assert q.device == "cpu"  # the config asked for the CPU: the plan says where it goes
    cfg_auto = _cfg("qwen2.5-7b-instruct", "qlora", 4, "sft", "on", 1, 512, None)
    cfg_auto.training.device = "auto"
    qa = plan(cfg_auto, CPU)
    assert qa.device == "cuda" and qa.capacity_bytes == 24 * GiB and any("NVIDIA" in n.text() for n in qa.notes)


def test_every_recommendation_is_planned_again_as_applying_it_would():
    cfg = _cfg("qwen2.5-7b-instruct", "lora", 4, "sft", "off", 8, 2048, 24)
    p = plan(cfg, _gpu(24))
    assert p.verdict == "does not fit" and p.recommendations
    for r in p.recommendations:
        again = plan(apply_change(cfg, r.change), _gpu(24))
        assert again.total_bytes == r.total_bytes and again.verdict == r.verdict
        assert r.message.text("zh") != r.message.text("en")
    assert p.to_dict()["recommendations"][0].startswith("turn on gradient checkpointing")


def test_an_unknown_model_gives_a_plan_with_a_reason_not_an_exception(tmp_path):
    cfg = RunConfig()
    cfg.model.name = str(tmp_path / "nowhere")
    p = plan(cfg, CPU)
    assert p.estimate is None and p.error is not None and p.to_dict()["error"]


def test_the_duration_counts_the_tokens_training_sees_and_its_validation_passes(tiny_model_dir, tmp_path,
                                                                                 runs_parent):
    """Tokens as the chat template renders them (the system prompt, role markers and all), and the
    validation passes the trainer's schedule makes: the figures the duration is built from."""
    from studio.engine.best import default_eval_steps
    from studio.models.chat import tokenize_conversation
    from studio.models.loading import load_tokenizer
    from studio.plan_duration import _validation_passes

    row = {"messages": [{"role": "system", "content": "Answer with one word."},
                        {"role": "user", "content": "Review: great product, works perfectly."},
                        {"role": "assistant", "content": "positive"}]}
    data = tmp_path / "rows.jsonl"
    data.write_text((json.dumps(row) + "\n") * 40)
    cfg = RunConfig()
    cfg.model.name, cfg.data.train_file, cfg.data.eval_share = str(tiny_model_dir), str(data), 0.25
    cfg.training.batch_size, cfg.training.max_length = 4, 512
    p = plan(cfg)
    length = len(tokenize_conversation(load_tokenizer(str(tiny_model_dir)), row["messages"])["input_ids"])
    assert (p.rows, p.eval_rows, p.steps) == (30, 10, 8)
    assert p.tokens == 8 * 4 * length
    assert _validation_passes(cfg, 8, 8, 10) == 8 // default_eval_steps(8) > 0
    assert p.duration_s > p.tokens / p.tokens_per_second
