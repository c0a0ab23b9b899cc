"""Run folders: `runs/<run-id>/` with config.yaml, data/, metrics.jsonl, checkpoints/, adapter/ (or model/),
summary.json, votes.jsonl and eval.json (names in studio.run_files, see DESIGN.md). Plain functions over
paths: creating, reading, listing (the history the Train tab and `studio` show), a run's status."""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

from studio import run_files
from studio.config import RunConfig
from studio.errors import StudioError
from studio.files import read_jsonl_tolerant
from studio.messages import Msg
from studio.paths import runs_dir


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
    p = run_files.summary(run_dir)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def read_metrics(run_dir: str | Path) -> list[dict]:
    return read_jsonl_tolerant(run_files.metrics(run_dir))  # a line cut by a kill mid-write is skipped


def load_run_config(run_dir: str | Path) -> RunConfig:
    run_dir = Path(run_dir)
    if not run_files.config(run_dir).is_file():
        raise StudioError("engine.not_a_run", path=str(run_dir), file=run_files.CONFIG)
    return RunConfig.load(run_files.config(run_dir))


def list_runs(parent: str | Path | None = None) -> list[Path]:
    """Run folders, newest first."""
    parent = Path(parent) if parent else runs_dir()
    if not parent.is_dir():
        return []
    runs = [p for p in parent.iterdir() if p.is_dir() and run_files.config(p).is_file()]
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
    ck = run_files.checkpoints(run_dir)
    if not ck.is_dir():
        return None
    good = [(step, p) for p in ck.glob(run_files.CHECKPOINT_PREFIX + "*")
            if p.is_dir() and (step := checkpoint_step(p)) is not None]
    return max(good, key=lambda sp: sp[0])[1] if good else None


# A run's status as its folder tells it. summary.json says "training" from the first step on, with the
# process that runs it; when that process is gone (killed, machine restarted) the run was interrupted.
ACTIVE = ("preparing", "training", "saving")


def process_id() -> dict:
    """Who runs a run, as written in its summary.json while it trains."""
    import psutil

    me = psutil.Process()
    return {"pid": me.pid, "pid_started": round(me.create_time(), 2), "host": socket.gethostname()}


def owner_alive(s: dict) -> bool:
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
        return status if owner_alive(s) else "interrupted"
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
    adapter = run_files.adapter(run_dir)
    full = run_files.full_model(run_dir)
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
        raise StudioError("engine.no_trained_model", run=run_dir.name)
    model.to(device)
    model.eval()
    return model, tok, cfg


# ---- the history: what the Train tab's table and the CLI list ------------------------------------------

def history(limit: int = 50, live_run_dir: str | Path | None = None, live_state: str | None = None) -> list[dict]:
    """The newest run folders, one dict each: run, run_dir, status, stage, model, steps, train_loss,
    eval_loss, duration_s. The run this process is training shows its live state."""
    rows = []
    for rd in list_runs()[:limit]:
        s = read_summary(rd)
        model = s.get("model")
        if model is None:
            try:
                model = load_run_config(rd).model.name
            except Exception:
                model = "?"
        rows.append({"run": rd.name, "run_dir": str(rd), "status": run_status(rd, live_run_dir, live_state),
                     "stage": s.get("stage") or "", "model": Path(str(model)).name, "steps": s.get("steps"),
                     "train_loss": s.get("train_loss"), "eval_loss": s.get("eval_loss"),
                     "duration_s": s.get("duration_s")})
    return rows


def run_names(limit: int = 50) -> list[str]:
    return [rd.name for rd in list_runs()[:limit]]


def run_dir_of(name: str | None) -> str | None:
    """The folder of the run called `name` in the runs folder (None for a name that is not there)."""
    if not name:
        return None
    for rd in list_runs():
        if rd.name == name:
            return str(rd)
    return None


def error_of(summary: dict):
    """Why a run failed, as summary.json keeps it: the message ({"id", "params"}) where there is one, else
    the English sentence. Show it with messages.text_of."""
    return summary.get("error_message") or summary.get("error")


def progress_shown(epoch: float, epochs: float | None, max_steps: int | None) -> dict:
    """What a progress line counts, decided here so every view agrees: {"bound", "epoch", "epochs"}.
    A run bounded by max steps counts steps only ("bound": "steps", no epochs): the trainer goes round the
    data as often as the steps need, so an epoch count would read "5.00 / 1". A run bounded by epochs
    counts epochs too, never past the epochs planned (the trainer's float epoch may overshoot by a hair)."""
    if (max_steps or 0) > 0 or not epochs:
        return {"bound": "steps", "epoch": None, "epochs": None}
    return {"bound": "epochs", "epoch": round(min(float(epoch or 0.0), float(epochs)), 3), "epochs": epochs}


def past_run_snapshot(run_dir: str | Path) -> dict:
    """A finished run's summary and metrics in the shape of Job.snapshot() (its config says what its
    progress counts; without one, steps)."""
    s = read_summary(run_dir)
    try:
        t = load_run_config(run_dir).training
        shown = progress_shown(s.get("epochs", 0), t.epochs, t.max_steps)
    except Exception:  # noqa: BLE001 - a run folder without a readable config still opens
        shown = progress_shown(0, None, None)
    return {"state": run_status(run_dir),
            "step": s.get("steps", 0), "total_steps": s.get("total_steps") or s.get("steps", 0),
            **shown, "elapsed_s": s.get("duration_s"), "eta_s": None,
            "run_dir": str(run_dir), "error": s.get("error"), "error_message": s.get("error_message"),
            "log": [], "log_messages": [], "metrics": read_metrics(run_dir)}


def interrupted_notice(scan: int = 20) -> Msg | None:
    """After a restart: the newest run a kill interrupted, and how to resume it (None when there is none)."""
    for rd in list_runs()[:scan]:
        if run_status(rd) != "interrupted":
            continue
        ck = last_checkpoint(rd)
        if ck is None:
            return Msg("train.interrupted_no_checkpoint", run=rd.name)
        return Msg("train.interrupted_notice", run=rd.name, step=read_summary(rd).get("steps", 0),
                   ck=checkpoint_step(ck))
    return None


def newest_interrupted(scan: int = 20) -> str | None:
    return next((str(rd) for rd in list_runs()[:scan] if run_status(rd) == "interrupted"), None)
