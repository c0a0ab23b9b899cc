"""Early stopping and the best checkpoint, on a tiny model built to overfit: a few dozen rows, many epochs,
a high learning rate."""

import json
import math

import pytest

from studio.config import RunConfig
from studio.engine.best import best_eval, default_eval_steps
from studio.engine.job import Job
from studio.engine.runs import read_metrics

QA = [("What colour is the sky?", "blue"), ("Two plus two?", "four"), ("Capital of France?", "Paris"),
      ("Opposite of hot?", "cold"), ("A baby cat is a?", "kitten"), ("Frozen water is?", "ice")]


def _rows(path, n):
    path.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"{QA[i % 6][0]} #{i}"},
                                                     {"role": "assistant", "content": f"{QA[i % 6][1]} {i * 7919 % 97}"}]})
                            + "\n" for i in range(n)))
    return path


def _overfit_cfg(tiny_model_dir, data, **training):
    cfg = RunConfig()
    cfg.model.name, cfg.data.train_file, cfg.data.eval_share = str(tiny_model_dir), str(data), 0.25
    t = dict(epochs=12, batch_size=4, max_length=48, learning_rate=3e-2, warmup_ratio=0.0, scheduler="constant", eval_steps=2)
    for k, v in {**t, **training}.items():
        setattr(cfg.training, k, v)
    return cfg


def test_best_eval_is_the_lowest_finite_validation_loss():
    events = [{"step": 1, "loss": 3.0}, {"step": 2, "eval_loss": 2.5}, {"step": 4, "eval_loss": 2.1},
              {"step": 6, "eval_loss": float("nan")}, {"step": 8, "eval_loss": 2.4}]
    assert best_eval(events) == (4, 2.1)
    assert best_eval([{"step": 1, "loss": 1.0}]) is None
    assert default_eval_steps(10) == 3 and default_eval_steps(1) == 1


def test_config_holds_the_contract_keys():
    cfg = RunConfig.from_yaml("training:\n  eval_steps:\n  early_stopping_patience: 3\n")
    assert cfg.training.eval_steps is None and cfg.training.early_stopping_patience == 3
    assert cfg.training.final_adapter == "best"
    assert RunConfig.from_yaml("training:\n  eval_steps: 5\n").training.eval_steps == 5
    cfg.training.final_adapter = "middle"
    assert any("best or last" in p.text() for p in cfg.validate({"cuda": False}))


def test_an_overfitting_run_stops_early_and_keeps_its_best_weights(tiny_model_dir, tmp_path):
    data = _rows(tmp_path / "d.jsonl", 32)
    job = Job(_overfit_cfg(tiny_model_dir, data, early_stopping_patience=3), output_dir=tmp_path / "runs").start()
    assert job.wait(600)
    events = read_metrics(job.run_dir)
    evals = [e for e in events if "eval_loss" in e]
    step, loss = best_eval(events)
    last_step = max(e["step"] for e in events)
    planned = 12 * math.ceil(24 / 4)
    assert last_step < planned  # stopped early
    assert evals[-1]["eval_loss"] > loss and step < last_step  # it had turned worse: overfitting
    assert sum(1 for e in evals if e["step"] > step) >= 3  # patience 3
    assert (job.run_dir / "best" / "weights.safetensors").is_file()
    # the adapter kept is the best one: evaluating it gives the best validation loss
    from peft import PeftModel
    from transformers import AutoModelForCausalLM
    from safetensors.torch import load_file

    best = load_file(str(job.run_dir / "best" / "weights.safetensors"))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(job.run_dir / "adapter"))
    params = dict(model.named_parameters())
    name = next(n for n in best if "lora_A" in n)
    assert params[name].detach().float().allclose(best[name].float())

    # summary.json: the contract other tools read
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert (summary["best_step"], summary["best_eval_loss"]) == (step, loss)
    assert summary["eval_loss"] > summary["best_eval_loss"] and summary["steps"] < summary["total_steps"]

    # Compare loads the run's model through load_run_model, Export copies adapter/: both give the best weights
    from studio.engine.runs import load_run_model
    from studio.export.adapter import export_adapter

    compared, _, _ = load_run_model(job.run_dir, device="cpu")
    assert _same_lora(dict(compared.named_parameters()), best)
    out = export_adapter(job.run_dir, tmp_path / "export")
    exported = load_file(str(out / "adapter_model.safetensors"))
    assert _same_lora({_peft_name(k): v for k, v in exported.items()}, best)


def _peft_name(saved: str) -> str:
    """adapter_model.safetensors drops the adapter name: base_model...lora_A.weight -> ...lora_A.default.weight"""
    return saved.replace(".lora_A.weight", ".lora_A.default.weight").replace(".lora_B.weight", ".lora_B.default.weight")


def _same_lora(params: dict, best: dict) -> bool:
    names = [n for n in best if "lora_" in n]
    assert names and all(n in params for n in names), (names[:2], list(params)[:2])
    return all(params[n].detach().float().cpu().allclose(best[n].float()) for n in names)


def test_the_last_weights_when_asked(tiny_model_dir, tmp_path):
    data = _rows(tmp_path / "d.jsonl", 32)
    job = Job(_overfit_cfg(tiny_model_dir, data, epochs=4, final_adapter="last"), output_dir=tmp_path / "runs").start()
    assert job.wait(600) and job.state == "completed"
    from safetensors.torch import load_file

    from studio.engine.runs import load_run_model

    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["final_adapter"] == "last" and summary["steps"] == summary["total_steps"]
    best = load_file(str(job.run_dir / "best" / "weights.safetensors"))
    model, _, _ = load_run_model(job.run_dir, device="cpu")
    if summary["best_step"] != summary["steps"]:  # the last weights are not the best ones: adapter/ holds the last
        assert not _same_lora(dict(model.named_parameters()), best)


@pytest.mark.slow
def test_the_embedded_model_stops_early_and_keeps_its_best_adapter(tmp_path):
    """End to end on the embedded default: answers that are arbitrary codes, learnt by heart, so validation
    loss turns up; early stopping ends the run, and the adapter is the best one."""
    import random

    rng = random.Random(0)
    data = tmp_path / "codes.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"What is the code word for parcel {i}?"},
        {"role": "assistant", "content": f"{rng.choice(['amber', 'basil', 'cedar', 'delta', 'ember'])}-{rng.randint(10, 99)}"}]})
        + "\n" for i in range(12)))
    cfg = RunConfig()
    cfg.model.name, cfg.data.train_file, cfg.data.eval_share = "embedded", str(data), 0.25
    t = cfg.training
    t.epochs, t.learning_rate, t.batch_size, t.max_length, t.warmup_ratio, t.scheduler = 10, 3e-3, 3, 96, 0.0, "constant"
    t.early_stopping_patience, t.eval_steps = 2, 1  # 9 rows to learn, 3 to validate: 3 steps an epoch
    cfg.method.lora_dropout = 0.0
    job = Job(cfg, output_dir=tmp_path / "runs").start()
    assert job.wait(1800) and job.state == "completed", job.error
    summary = json.loads((job.run_dir / "summary.json").read_text())
    assert summary["steps"] < summary["total_steps"], "stopped early"
    assert (summary["best_step"], summary["best_eval_loss"]) == best_eval(read_metrics(job.run_dir))
    assert summary["eval_loss"] > summary["best_eval_loss"]
    from safetensors.torch import load_file

    from studio.engine.runs import load_run_model

    best = load_file(str(job.run_dir / "best" / "weights.safetensors"))
    model, _, _ = load_run_model(job.run_dir, device="cpu")
    assert _same_lora(dict(model.named_parameters()), best)
