"""The run history as a person reads it: every run folder, newest first, with the live run's step and
elapsed time as they are now (not as its summary last saved them)."""

from __future__ import annotations

import math
from pathlib import Path

from studio.engine import runs
from studio.engine.job import current_job

COLUMNS = ("run", "status", "stage", "model", "steps", "train_loss", "eval_loss", "best_eval", "duration_s")


def rows(limit: int = 50) -> list[dict]:
    """One dict per run (COLUMNS): status is the engine's word (completed, training, interrupted...);
    best_eval is {"loss", "step"} of the lowest validation loss the run kept, or None."""
    job = current_job()
    live = str(job.run_dir) if job is not None and job.run_dir and not job.done else None
    out = []
    for rd in runs.list_runs()[:limit]:
        s = runs.read_summary(rd)
        if live and str(rd) == live:
            snap = job.snapshot(since=len(job.metrics))
            s = {**s, "steps": snap["step"], "duration_s": snap["elapsed_s"]}
        model = s.get("model")
        if model is None:
            try:
                model = runs.load_run_config(rd).model.name
            except Exception:
                model = "?"
        out.append({"run": rd.name, "status": runs.run_status(rd, live, job.state if live else None),
                    "stage": (s.get("stage") or "").upper(), "model": Path(str(model)).name, "steps": s.get("steps"),
                    "train_loss": _round(s.get("train_loss")), "eval_loss": _round(s.get("eval_loss")),
                    "best_eval": _best(s), "duration_s": s.get("duration_s")})
    return out


def _best(summary: dict) -> dict | None:
    loss, step = _round(summary.get("best_eval_loss")), summary.get("best_step")
    return {"loss": loss, "step": step} if loss is not None and step is not None else None


def _round(x):
    return round(x, 4) if isinstance(x, (int, float)) and math.isfinite(x) else None
