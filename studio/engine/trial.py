"""Try it small first: the prepared data and settings, a few dozen steps, on a small model of the same
family, before hours go into a large one. It answers three questions in plain words:

- does every row render with the model's chat template (studio.data.template_check)?
- does the loss fall?
- how long would the full run take on this machine (studio.plan's duration, at the speed the trial
  measured, scaled from the small model's size to the large one's)?

    job = start(cfg)                 # a Job in <runs>/trials/ (not in the history); returns at once
    result = verdict(job.run_dir, cfg)   # when it is done: TrialResult with .lines (Msg) and the figures

The small model: the smallest catalog model of the same maker and architecture (else of the same
architecture), the embedded default when the Hub cannot be reached and that model is not cached.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.config import EMBEDDED_MODEL, RunConfig
from studio.engine import runs
from studio.files import atomic_write_json
from studio.messages import Msg
from studio.paths import runs_dir
from studio.units import Seconds

TRIAL_STEPS = 30
TRIALS = "trials"  # <runs>/trials/<run>: a folder of runs the history does not list
FALLS = 0.97  # the loss "falls" when the last quarter's mean is below 97% of the first quarter's


def trials_dir() -> Path:
    return runs_dir() / TRIALS


def _offline() -> bool:
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:
        return os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0", "false")


def _cached(hub_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(hub_id, "config.json"), str)
    except Exception:
        return False


def small_model_for(name: str, offline: bool | None = None) -> str:
    """The catalog id of a small model of the same family as `name` (the model itself when it is the
    smallest), or the embedded default when none can be had here."""
    from studio.models import catalog

    offline = _offline() if offline is None else offline
    entry = catalog.find(name or EMBEDDED_MODEL)
    if entry is None or entry.id == EMBEDDED_MODEL:
        return EMBEDDED_MODEL
    org, arch = entry.hub_id.split("/")[0].lower(), entry.dims.model_type
    usable = [e for e in catalog.load() if not e.needs_remote_code and e.id != EMBEDDED_MODEL
              and e.params_b <= entry.params_b]
    maker = [e for e in usable if e.hub_id.split("/")[0].lower() == org and e.dims.model_type == arch]
    if all(e.id == entry.id for e in maker):  # nothing smaller from its maker: the same architecture
        maker = [e for e in usable if e.dims.model_type == arch and e.kind == entry.kind] or maker
    same = maker
    same.sort(key=lambda e: (e.params_b, e.kind != entry.kind))
    for e in same:
        if not offline or _cached(e.hub_id):
            return e.id
    return EMBEDDED_MODEL


def trial_config(cfg: RunConfig, small: str, steps: int = TRIAL_STEPS) -> RunConfig:
    """The same data and settings on the small model, for `steps` steps, evaluated at its end."""
    t = RunConfig.from_dict(cfg.to_dict())
    t.model.name = small
    t.name = f"trial-{Path(small).name}"
    t.training.max_steps = int(steps)
    t.training.early_stopping_patience = 0
    t.training.eval_steps = max(1, int(steps) // 3)
    t.training.logging_steps = 1
    return t


def start(cfg: RunConfig, small: str | None = None, steps: int = TRIAL_STEPS):
    """Start the trial run (one job per process: StudioError when a run holds the device)."""
    from studio.engine.job import Job

    small = small or small_model_for(cfg.model.name)
    return Job(trial_config(cfg, small, steps), output_dir=trials_dir()).start()


@dataclass
class TrialResult:
    small_model: str
    steps: int = 0
    rows_checked: int = 0
    rows_failed: int = 0
    rows_cut: int = 0
    render_note: Msg | None = None  # why rows could not be checked (plain text, no template)
    loss_first: float | None = None
    loss_last: float | None = None
    loss_falls: bool | None = None
    tokens_per_second: float | None = None  # measured on the small model
    full_tokens_per_second: float | None = None  # scaled to the full run's model
    full_duration_s: float | None = None
    full_steps: int | None = None
    status: str = ""
    error: object = None
    lines: list = field(default_factory=list)  # Msg, in the order to show

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k not in ("lines", "render_note", "error")}
        d["render_note"] = self.render_note.to_dict() if self.render_note else None
        d["error"] = self.error.to_dict() if isinstance(self.error, Msg) else self.error
        d["lines"] = [m.to_dict() for m in self.lines]
        return d

    def text(self, lang: str = "en") -> str:
        from studio.messages import join

        return join(self.lines, lang)


def loss_trend(events: list[dict]) -> tuple[float | None, float | None, bool | None]:
    """(mean of the first quarter of the logged losses, of the last quarter, whether it fell)."""
    import math

    losses = [e["loss"] for e in events if isinstance(e.get("loss"), (int, float)) and math.isfinite(e["loss"])]
    if len(losses) < 4:
        return None, None, None
    k = max(1, len(losses) // 4)
    first, last = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return first, last, last < first * FALLS


def _render_check(cfg: RunConfig, rows: list[dict], small: str):
    """(the template check, the model whose tokenizer it used): the full run's model's, else the small one's."""
    from studio.data.rows import make_row
    from studio.data.template_check import check_template
    from studio.models.loading import load_tokenizer

    tok, used = None, small
    for used in (cfg.model.name, small):
        try:
            tok = load_tokenizer(used, trust_remote_code=cfg.model.trust_remote_code, revision=cfg.model.revision)
            break
        except Exception:
            continue
    return check_template([make_row(r, i + 1) for i, r in enumerate(rows)], tok, cfg.training.max_length), used


def verdict(run_dir: str | Path, cfg: RunConfig) -> TrialResult:
    """What the finished trial in `run_dir` says about the full run `cfg`; saved as trial.json there."""
    from studio.files import read_jsonl
    from studio import run_files
    from studio.plan import plan

    rd = Path(run_dir)
    s = runs.read_summary(rd)
    small = str(s.get("model") or "")
    r = TrialResult(small_model=small, steps=int(s.get("steps") or 0), status=runs.run_status(rd),
                    error=s.get("error_message") or s.get("error"))
    if r.status == "failed":
        r.lines.append(Msg("trial.failed", model=Path(small).name, error=Msg.from_dict(r.error)
                           if isinstance(r.error, dict) else str(r.error or "")))
    # 1. every row renders
    rows = []
    for p in (run_files.train_data(rd), run_files.eval_data(rd)):
        if p.is_file():
            rows += read_jsonl(p)
    report, used = _render_check(cfg, rows, small) if rows else (None, small)
    if report is not None:
        counts = report.counts()
        r.rows_checked, r.rows_failed, r.rows_cut = report.checked, counts["failed"], counts["cut"]
        if report.problem is not None:
            r.render_note = report.problem
            r.lines.append(Msg("trial.render_unchecked", why=report.problem))
        elif report.ok:
            r.lines.append(Msg("trial.render_ok", n=report.checked, model=Path(used).name))
        else:
            r.lines.append(Msg("trial.render_bad", failed=counts["failed"], cut=counts["cut"], n=len(rows),
                               length=report.cutoff))
    # 2. the loss falls
    r.loss_first, r.loss_last, r.loss_falls = loss_trend(runs.read_metrics(rd))
    if r.loss_falls is None:
        r.lines.append(Msg("trial.loss_unknown", steps=r.steps))
    else:
        r.lines.append(Msg("trial.loss_falls" if r.loss_falls else "trial.loss_flat", first=r.loss_first,
                           last=r.loss_last, steps=r.steps))
    # 3. the full run's duration at the measured speed, scaled by model size (compute per token ~ parameters)
    r.tokens_per_second = s.get("tokens_per_second")
    if r.tokens_per_second:
        sized = plan(cfg, with_recommendations=False, with_duration=False)
        small_params, full_params = s.get("total_params") or 0, sized.total_params or 0
        scale = min(1.0, small_params / full_params) if small_params and full_params else 1.0
        r.full_tokens_per_second = float(r.tokens_per_second) * scale
        timed = plan(cfg, with_recommendations=False, tokens_per_second=r.full_tokens_per_second)
        r.full_duration_s = timed.duration_s
        r.full_steps = timed.steps
    if r.full_duration_s:
        r.lines.append(Msg("trial.duration", duration=Seconds(r.full_duration_s), model=Path(cfg.model.name).name,
                           steps=r.full_steps or "?", tps=r.full_tokens_per_second, small_tps=r.tokens_per_second))
    else:
        r.lines.append(Msg("trial.duration_unknown"))
    atomic_write_json(run_files.trial_result(rd), r.to_dict())
    return r


def read_result(run_dir: str | Path) -> dict:
    from studio import run_files

    try:
        return json.loads(run_files.trial_result(run_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
