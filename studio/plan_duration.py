"""The run plan's data figures: rows, steps, tokens and how long it takes (see studio.plan).

Token lengths come from the model's own tokenizer on a sample of the training file (cached by the file's
path, modification time and the model); the speed from recent finished runs of the same model, stage and
device on this machine, else a conservative assumption from the model's size.
"""

from __future__ import annotations

import math
import os
import statistics
from functools import lru_cache
from pathlib import Path

from studio.messages import Msg

# Effective training FLOP/s when no run of this model was measured yet, deliberately conservative.
# This CPU (2 cores, avx512_bf16) trains SmolLM2-135M LoRA at 50-90 tokens/s (FACTS.md): ~25 GFLOP/s a core.
ASSUMED_FLOPS = {"cuda": 40e12, "mps": 3e12, "cpu_core": 25e9}
LOAD_SECONDS = 15  # loading the model and building the trainer


@lru_cache(maxsize=16)
def _rows_cached(path: str, mtime: float) -> tuple[dict, ...]:
    from studio.engine.datasets import load_rows

    return tuple(load_rows(path)[0])


def training_rows(path: str) -> tuple[dict, ...]:
    return _rows_cached(path, Path(path).stat().st_mtime)


@lru_cache(maxsize=16)
def _token_lengths_cached(path: str, mtime: float, model_name: str) -> tuple[int, ...]:
    """Tokens per row (a sample of at most 2,000 rows), as the tokenizer of the model sees them."""
    rows = training_rows(path)
    sample = rows[::max(1, len(rows) // 2000)]
    texts = []
    for r in sample:
        if "messages" in r:
            texts.append((" ".join(str(m.get("content", "")) for m in r["messages"]), len(r["messages"])))
        elif "chosen" in r:
            prompt = r["prompt"] if isinstance(r["prompt"], str) else " ".join(m.get("content", "") for m in r["prompt"])
            # DPO runs the prompt twice: once with the chosen answer, once with the rejected one.
            texts.append((f"{prompt} {prompt} {r['chosen']} {r['rejected']}", 4))
        else:
            texts.append((str(r.get("text", "")), 0))
    try:
        from studio.models.loading import load_tokenizer

        tok = load_tokenizer(model_name)
        ids = tok([x for x, _ in texts], add_special_tokens=False)["input_ids"]
        # ChatML-like templates add about 5 tokens per message (role name and markers)
        return tuple(len(i) + 5 * n for i, (_, n) in zip(ids, texts))
    except Exception:
        return tuple(max(1, len(x) // 4) + 5 * n for x, n in texts)  # no tokenizer: about 4 characters a token


def token_lengths(path: str, model_name: str) -> tuple[int, ...]:
    return _token_lengths_cached(path, Path(path).stat().st_mtime, model_name)


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


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
    if tokens_per_second:
        tps = float(tokens_per_second)
        p.speed_basis = Msg("plan.speed.trial", tps=tps)
    elif measured:
        tps, n = measured
        p.speed_basis = Msg("plan.speed.measured", tps=tps, n=n)
    else:
        total = p.total_params or 0
        if not total:
            return
        per_token = (6 if cfg.method.method == "full" else 4) * total  # forward + backward FLOPs a token
        rate = ASSUMED_FLOPS.get(p.device) or ASSUMED_FLOPS["cpu_core"] * cpu_cores()
        tps = rate / per_token
        p.speed_basis = Msg("plan.speed.assumed", tps=tps)
    # + loading the model, and one validation pass an epoch (forward only: about a third of the cost)
    eval_tokens = (n_eval or 0) * (p.tokens / max(1, steps * per_step))
    n_epochs = max(1, math.ceil(t.epochs)) if not t.max_steps else 1
    p.tokens_per_second = tps
    p.duration_s = LOAD_SECONDS + p.tokens / tps + n_epochs * eval_tokens / (3 * tps)
