"""The run plan's data figures: rows, steps, tokens and how long it takes (see studio.plan).

Token lengths come from the model's own tokenizer and chat template on a sample of the training file
(cached by the file's path, modification time and the model); the speed from recent finished runs of
the same model, stage and device on this machine; before any, on a CPU, from this processor's measured
matrix-product speed (studio.engine.cpu_speed.matmul_flops) and the share of it training reaches; on a
GPU from a conservative assumption. The duration counts loading, the training steps and the validation
passes the trainer's schedule will make.
"""

from __future__ import annotations

import math
import statistics
from functools import lru_cache
from pathlib import Path

from studio.messages import Msg

# Effective training FLOP/s on a GPU when no run of this model was measured yet, deliberately conservative.
ASSUMED_FLOPS = {"cuda": 40e12, "mps": 3e12}
# On a CPU: the share of the processor's matrix-product FLOP/s a LoRA training step reaches, counting
# 4 x parameters FLOPs a token (6 x for full fine-tuning). Measured on the quickstart (SmolLM2-135M, 2-core
# AMD EPYC with avx512_bf16): 270 tokens/s (148 GFLOP/s) against the best 390 GFLOP/s of bf16 products
# matmul_flops measured there, 2026-12-06.
CPU_TRAINING_EFFICIENCY = 0.38
EVAL_SPEEDUP = 3.0  # a validation pass is forward only: about a third of a training step's work a token
LOAD_SECONDS = 6  # starting the run: loading a small model, tokenizing, building the trainer
LOAD_SECONDS_PER_GB = 2.0  # and reading the weights


@lru_cache(maxsize=16)
def _rows_cached(path: str, mtime: float) -> tuple[dict, ...]:
    from studio.engine.datasets import load_rows

    return tuple(load_rows(path)[0])


def training_rows(path: str) -> tuple[dict, ...]:
    return _rows_cached(path, Path(path).stat().st_mtime)


@lru_cache(maxsize=16)
def _token_lengths_cached(path: str, mtime: float, model_name: str) -> tuple[int, ...]:
    """Tokens per row (a sample of at most 2,000 rows) as training sees them: rendered with the model's
    chat template and tokenized by its tokenizer. DPO counts the prompt twice (chosen and rejected)."""
    rows = training_rows(path)
    sample = rows[::max(1, len(rows) // 2000)]
    try:
        from studio.models.chat import ensure_chat_template
        from studio.models.loading import load_tokenizer

        tok = load_tokenizer(model_name)
        ensure_chat_template(tok)

        def rendered(r: dict) -> str:
            if "messages" in r:
                return tok.apply_chat_template(r["messages"], tokenize=False)
            if "chosen" in r:
                prompt = r["prompt"] if not isinstance(r["prompt"], str) else [{"role": "user", "content": r["prompt"]}]
                return "".join(tok.apply_chat_template(prompt + [{"role": "assistant", "content": str(r[k])}],
                                                       tokenize=False) for k in ("chosen", "rejected"))
            return str(r.get("text", ""))

        ids = tok([rendered(r) for r in sample], add_special_tokens=False)["input_ids"]
        return tuple(len(i) for i in ids)
    except Exception:  # no tokenizer here (an offline Hub id): about 4 characters a token
        return tuple(max(1, len(str(r)) // 4) for r in sample)


def token_lengths(path: str, model_name: str) -> tuple[int, ...]:
    return _token_lengths_cached(path, Path(path).stat().st_mtime, model_name)


def measured_throughput(model_name: str, device: str, stage: str) -> tuple[float, int] | None:
    """(median tokens/s, number of runs) over recent finished runs of this model on this kind of device."""
    from studio.engine import runs

    found = []
    for rd in runs.list_runs()[:50]:
        s = runs.read_summary(rd)
        if (s.get("model") == model_name and s.get("device") == device and s.get("stage", "sft") == stage
                and s.get("tokens_per_second") and s.get("status") in ("completed", "stopped")):
            found.append(float(s["tokens_per_second"]))
        if len(found) >= 5:
            break
    return (statistics.median(found), len(found)) if found else None


def add_duration(p, cfg, tokens_per_second: float | None = None) -> None:
    """Fill the plan's rows, eval_rows, steps, tokens, tokens_per_second, speed_basis and duration_s from
    the config's training file (at `tokens_per_second` when given: a speed measured by a trial). Leaves
    them None when the file cannot be read."""
    t, d = cfg.training, cfg.data
    f = d.train_file
    if not f or not Path(f).is_file():
        return
    try:
        n_rows = len(training_rows(f))
        lengths = token_lengths(f, cfg.model.name)
    except Exception:
        return
    if not n_rows:
        return
    if d.max_rows:
        n_rows = min(n_rows, d.max_rows)
    if d.eval_file:
        n_train, n_eval = n_rows, None
    elif d.eval_share > 0 and n_rows >= 2:
        n_eval = min(n_rows - 1, max(1, round(n_rows * d.eval_share)))
        n_train = n_rows - n_eval
    else:
        n_train, n_eval = n_rows, 0
    avg = sum(min(x, t.max_length) for x in lengths) / max(1, len(lengths))
    per_step = max(1, t.batch_size * t.grad_accum)
    if t.stage == "cpt":  # texts are packed into full blocks
        steps_per_epoch = max(1, math.ceil(n_train * sum(lengths) / max(1, len(lengths)) / t.max_length / per_step))
        tokens_per_step = per_step * t.max_length
    else:
        steps_per_epoch = max(1, math.ceil(n_train / per_step))
        tokens_per_step = per_step * avg
    steps = t.max_steps if t.max_steps > 0 else max(1, math.ceil(t.epochs * steps_per_epoch))
    p.rows, p.eval_rows, p.steps, p.tokens = n_train, n_eval, steps, int(steps * tokens_per_step)
    measured = measured_throughput(cfg.model.name, p.device, t.stage)
    per_token = (6 if cfg.method.method == "full" else 4) * (p.total_params or 0)
    if tokens_per_second:
        tps = float(tokens_per_second)
        p.speed_basis = Msg("plan.speed.trial", tps=tps)
    elif measured:
        tps, n = measured
        p.speed_basis = Msg("plan.speed.measured", tps=tps, n=n)
    elif per_token and p.device == "cpu":
        from studio.engine.cpu_speed import matmul_flops

        tps = matmul_flops(p.precision == "bf16") * CPU_TRAINING_EFFICIENCY / per_token
        p.speed_basis = Msg("plan.speed.processor", tps=tps)
    elif per_token and p.device in ASSUMED_FLOPS:
        tps = ASSUMED_FLOPS[p.device] / per_token
        p.speed_basis = Msg("plan.speed.assumed", tps=tps)
    else:
        return
    p.tokens_per_second = tps
    p.duration_s = (_load_seconds(p) + p.tokens / tps
                    + _validation_passes(cfg, steps, steps_per_epoch, n_eval) * (n_eval or 0) * avg / (EVAL_SPEEDUP * tps))


def _load_seconds(p) -> float:
    weights_gb = (p.estimate.breakdown.get("weights", 0) if p.estimate is not None else 0) / 1e9
    return LOAD_SECONDS + LOAD_SECONDS_PER_GB * weights_gb


def _validation_passes(cfg, steps: int, steps_per_epoch: int, n_eval: int | None) -> int:
    """How many times the trainer will score the validation rows: every eval_steps (by default several
    times an epoch, studio.engine.best), as the trainer schedules it."""
    from studio.engine.best import default_eval_steps

    t = cfg.training
    if not n_eval or not t.eval_every_epoch:
        return 0
    every = t.eval_steps or default_eval_steps(steps_per_epoch)
    return steps // max(1, every)
