"""Run folders: `runs/<run-id>/` with config.yaml, data/, metrics.jsonl, checkpoints/, adapter/ (or model/),
summary.json, votes.jsonl and eval.json (see DESIGN.md). Plain functions over paths."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from studio.config import RunConfig
from studio.errors import StudioError
from studio.paths import runs_dir

CONFIG = "config.yaml"
SUMMARY = "summary.json"
METRICS = "metrics.jsonl"
VOTES = "votes.jsonl"
EVAL = "eval.json"


def new_run_dir(cfg: RunConfig, parent: str | Path | None = None) -> Path:
    parent = Path(parent) if parent else runs_dir()
    model = Path(cfg.model.name).name if cfg.model.name else "model"
    label = cfg.name or f"{cfg.training.stage}-{model}"
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-")[:48] or "run"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = parent / f"{stamp}-{label}"
    n = 1
    while path.exists():
        n += 1
        path = parent / f"{stamp}-{label}-{n}"
    path.mkdir(parents=True)
    return path


def read_summary(run_dir: str | Path) -> dict:
    p = Path(run_dir) / SUMMARY
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_metrics(run_dir: str | Path) -> list[dict]:
    p = Path(run_dir) / METRICS
    if not p.is_file():
        return []
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line cut by a kill mid-write
    return out


def load_run_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    if not (run_dir / CONFIG).is_file():
        raise StudioError(f"{run_dir} is not a run folder (it has no {CONFIG}).",
                          f"{run_dir} 不是训练文件夹（里面没有 {CONFIG}）。")
    return RunConfig.load(run_dir / CONFIG)


def list_runs(parent: str | Path | None = None) -> list[Path]:
    """Run folders, newest first."""
    parent = Path(parent) if parent else runs_dir()
    if not parent.is_dir():
        return []
    runs = [p for p in parent.iterdir() if p.is_dir() and (p / CONFIG).is_file()]
    return sorted(runs, key=lambda p: p.name, reverse=True)


def checkpoint_step(ck: Path) -> int | None:
    """The step a checkpoint folder holds, or None when it is incomplete. The trainer writes
    trainer_state.json last, after the weights, optimizer and scheduler: a folder cut short by a kill has
    none, or one that does not parse."""
    try:
        state = json.loads((ck / "trainer_state.json").read_text(encoding="utf-8"))
        return int(state["global_step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def last_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (an incomplete one, left by a kill while saving, is skipped)."""
    ck = Path(run_dir) / "checkpoints"
    if not ck.is_dir():
        return None
    good = [(step, p) for p in ck.glob("checkpoint-*") if p.is_dir() and (step := checkpoint_step(p)) is not None]
    return max(good, key=lambda sp: sp[0])[1] if good else None


# A run's status as its folder tells it. summary.json says "training" from the first step on, with the
# process that runs it; when that process is gone (killed, machine restarted) the run was interrupted.
ACTIVE = ("preparing", "training", "saving")


def process_id() -> dict:
    """Who runs a run, as written in its summary.json while it trains."""
    import psutil

    me = psutil.Process()
    return {"pid": me.pid, "pid_started": round(me.create_time(), 2), "host": socket.gethostname()}


def _owner_alive(s: dict) -> bool:
    """Is the process named in a summary still running (the same one: pids are reused)?"""
    import psutil

    if s.get("host") not in (None, socket.gethostname()) or not s.get("pid") or s.get("pid") == os.getpid():
        return False
    try:
        return abs(psutil.Process(int(s["pid"])).create_time() - float(s.get("pid_started") or 0)) < 1.0
    except (psutil.Error, ValueError, TypeError):
        return False


def run_status(run_dir: str | Path, live_run_dir: str | Path | None = None, live_state: str | None = None) -> str:
    """completed / stopped / failed / interrupted, or the live state of the run this process is running."""
    if live_run_dir is not None and Path(live_run_dir) == Path(run_dir) and live_state:
        return live_state
    s = read_summary(run_dir)
    status = s.get("status")
    if status in ACTIVE:
        return status if _owner_alive(s) else "interrupted"
    if not status:
        return "interrupted" if last_checkpoint(run_dir) else "failed"
    return status


def load_run_model(run_dir: str | Path, device: str | None = None):
    """(model, tokenizer, config) for a finished run: the base model with the run's adapter on top
    (a PeftModel; `with model.disable_adapter():` gives the base), or the full fine-tuned model
    (then there is no base inside it: `model.disable_adapter` does not exist).
    """
    import torch

    from studio.models.loading import check_safetensors, load_model, load_tokenizer

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    adapter = run_dir / "adapter"
    full = run_dir / "model"
    dtype = torch.float32
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if (adapter / "adapter_config.json").is_file():
        from peft import PeftModel

        check_safetensors(adapter, "adapter")  # PEFT would fall back to unpickling adapter_model.bin
        tok = load_tokenizer(cfg.model.name, trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
        base = load_model(cfg.model.name, dtype=dtype, trust_remote_code=cfg.model.trust_remote_code,
                          revision=cfg.model.revision)
        model = PeftModel.from_pretrained(base, str(adapter))
    elif (full / "config.json").is_file():
        tok = load_tokenizer(str(full))
        model = load_model(str(full), dtype=dtype)
    else:
        raise StudioError(f"The run {run_dir.name} has no trained model yet (no adapter/ or model/ folder).",
                          f"训练 {run_dir.name} 还没有训练好的模型（没有 adapter/ 或 model/ 文件夹）。")
    model.to(device)
    model.eval()
    return model, tok, cfg
