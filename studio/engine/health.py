"""Is the run healthy? Pure functions over a metrics list (the events of metrics.jsonl), each finding
a message from the catalog (shown in the reader's language, stored as {"id", "params"} next to its
English text), and each saying what to do.

    findings = check(job.snapshot()["metrics"], error=job.error_message, learning_rate=cfg.training.learning_rate)
    for f in findings: print(f.level, f.text("zh"))

Rules (thresholds chosen so a normal noisy LoRA curve never trips them; see tests/test_health.py):
- nan:         a training loss or gradient norm that is NaN or infinite -> learning rate too high.
- exploding:   the recent loss is far above the best loss so far, or the gradient norm jumps
               far above its usual size -> learning rate too high.
- overfitting: validation loss rose from its best while training loss kept falling -> stop at the
               best epoch, train fewer epochs.
- flat:        training loss has not moved after warmup -> learning rate too low, or a data problem.
- oom:         the job failed out of memory -> the engine's advice (from the memory estimator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import median
from typing import Any

from studio.messages import Msg

# Thresholds. Named so the tests and the docstring above can refer to them.
EXPLODE_FACTOR = 3.0  # recent loss > 3x the best smoothed loss so far
GRAD_SPIKE_FACTOR = 20.0  # latest grad norm > 20x the median of the earlier ones
OVERFIT_TOLERANCE = 0.02  # validation loss 2% above its best counts as rising
FLAT_MIN_POINTS = 12  # training-loss points after warmup before "flat" can be said
FLAT_REL_CHANGE = 0.02  # first vs last quarter of the curve moved less than 2%
FLAT_FLOOR = 0.05  # a loss already this low is "learned", not "flat"
SMOOTH = 3  # points in the moving mean


@dataclass(frozen=True)
class Finding:
    code: str  # nan | exploding | overfitting | flat | oom
    level: str  # "error" (the run is or should be stopped) | "warning"
    message: Any  # a Msg (or a message with .text(lang) carried over from the job's error)

    def text(self, lang: str = "en") -> str:
        return self.message.text(lang)

    @property
    def en(self) -> str:
        return self.text("en")

    def to_dict(self) -> dict:
        """As stored: the English text, and the message to show it in any language (messages.text_of)."""
        stored = self.message.to_dict() if isinstance(self.message, Msg) else self.en
        return {"code": self.code, "level": self.level, "en": self.en, "message": stored}


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _series(metrics: list[dict], key: str) -> list[tuple[dict, float]]:
    return [(e, float(e[key])) for e in metrics if e.get(key) is not None]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _moving_mean(xs: list[float], k: int = SMOOTH) -> list[float]:
    return [_mean(xs[max(0, i - k + 1): i + 1]) for i in range(len(xs))]


def _lr_text(lr: float) -> str:
    return f"{lr:.0e}".replace("e-0", "e-")


def _peak_lr(metrics: list[dict], learning_rate: float | None) -> float | None:
    if learning_rate:
        return learning_rate
    lrs = [v for _, v in _series(metrics, "learning_rate") if _finite(v)]
    return max(lrs) if lrs else None


# ---- the rules ---------------------------------------------------------------------------------

def check_nan(metrics: list[dict], learning_rate: float | None = None) -> Finding | None:
    for e in metrics:
        for key in ("loss", "grad_norm", "eval_loss"):
            v = e.get(key)
            if v is not None and not _finite(v):
                lr = _peak_lr(metrics, learning_rate)
                return Finding("nan", "error", Msg("health.nan", what=Msg(f"health.what.{key}"),
                                                   step=e.get("step", "?"), example=_example(lr, 10)))
    return None


def check_exploding(metrics: list[dict], learning_rate: float | None = None) -> Finding | None:
    losses = [v for _, v in _series(metrics, "loss") if _finite(v)]
    example = _example(_peak_lr(metrics, learning_rate), 5)
    if len(losses) >= 2 * SMOOTH:
        smooth = _moving_mean(losses)
        best = min(smooth[:-SMOOTH])
        recent = _mean(losses[-SMOOTH:])
        start = _mean(losses[:SMOOTH])
        if best > 0 and recent > EXPLODE_FACTOR * best and recent > 1.5 * start:
            return Finding("exploding", "error", Msg("health.exploding", best=best, recent=recent, example=example))
    grads = [v for _, v in _series(metrics, "grad_norm") if _finite(v)]
    if len(grads) >= 6:
        usual = median(grads[:-1])
        if usual > 0 and grads[-1] > GRAD_SPIKE_FACTOR * usual:
            return Finding("exploding", "warning", Msg("health.grad_spike", grad=grads[-1], times=grads[-1] / usual,
                                                       usual=usual, example=example))
    return None


def check_overfitting(metrics: list[dict]) -> Finding | None:
    evals = [(e, v) for e, v in _series(metrics, "eval_loss") if _finite(v)]
    if len(evals) < 2:
        return None
    best_i = min(range(len(evals)), key=lambda i: evals[i][1])
    (best_e, best), (_, last) = evals[best_i], evals[-1]
    if best_i == len(evals) - 1 or last <= best * (1 + OVERFIT_TOLERANCE):
        return None
    # ... while the training loss kept falling: compare the training loss around the best eval with the latest.
    train = [(e.get("step", 0), v) for e, v in _series(metrics, "loss") if _finite(v)]
    at_best = [v for s, v in train if s <= best_e.get("step", 0)][-SMOOTH:]
    after = [v for s, v in train if s > best_e.get("step", 0)][-SMOOTH:]
    if not at_best or not after or _mean(after) >= _mean(at_best):
        return None
    epoch = max(1, round(float(best_e.get("epoch") or 0))) if best_e.get("epoch") else None
    if epoch:
        where = Msg("health.at_epoch", epoch=epoch)
        fewer = Msg("health.fewer.one" if epoch == 1 else "health.fewer.n", epoch=epoch)
    else:
        where, fewer = Msg("health.at_step", step=best_e.get("step")), Msg("health.fewer.any")
    return Finding("overfitting", "warning", Msg("health.overfitting", best=best, last=last, where=where, fewer=fewer))


def check_flat(metrics: list[dict], learning_rate: float | None = None, method: str = "lora") -> Finding | None:
    events = [e for e in metrics if _finite(e.get("loss"))]
    # Skip the warmup: the curve cannot move before the learning rate has reached its peak.
    lrs = [e.get("learning_rate") for e in events]
    if all(_finite(x) for x in lrs) and lrs:
        peak_at = max(range(len(lrs)), key=lambda i: lrs[i])
        events = events[peak_at:]
    losses = [float(e["loss"]) for e in events]
    if len(losses) < FLAT_MIN_POINTS:
        return None
    q = max(SMOOTH, len(losses) // 4)
    first, last = _mean(losses[:q]), _mean(losses[-q:])
    if first <= FLAT_FLOOR or last <= FLAT_FLOOR:
        return None
    if abs(first - last) / first >= FLAT_REL_CHANGE:
        return None
    lr = _peak_lr(metrics, learning_rate)
    usual = (1e-5, 5e-5) if method == "full" else (1e-4, 3e-4)
    low = lr is not None and lr < usual[0]
    lo, hi = _lr_text(usual[0]), _lr_text(usual[1])
    advice = Msg("health.flat.lr_low", lr=_lr_text(lr), lo=lo, hi=hi) if low else Msg("health.flat.lr_maybe")
    how = Msg("health.flat.usual", method=Msg(f"health.method.{'full' if method == 'full' else 'lora'}"), lo=lo, hi=hi)
    return Finding("flat", "warning", Msg("health.flat", n=len(losses), last=last, advice=advice, usual=how))


def _example(lr: float | None, factor: float) -> Msg | str:
    return Msg("health.example", lr=_lr_text(lr / factor)) if lr else ""


def check_oom(error: Any) -> Finding | None:
    """The job's error (a Msg, its stored dict, or the English sentence of an older summary) when it ran
    out of memory: the engine's advice, from the memory estimator, is the finding."""
    if isinstance(error, dict) and error.get("id"):
        try:
            error = Msg.from_dict(error)
        except KeyError:
            return None
    if isinstance(error, Msg):
        return Finding("oom", "error", error) if error.key == "engine.oom" else None
    if not error or "out of memory" not in str(error).lower():
        return None
    return Finding("oom", "error", Msg("health.oom", advice=str(error)))


def check(metrics: list[dict], error: Any = None, *, learning_rate: float | None = None,
          method: str = "lora") -> list[Finding]:
    """Every finding for a run, the most serious first. Empty when all looks normal. `error` is why the
    run failed, as the job or summary.json keeps it (see studio.engine.runs.error_of)."""
    metrics = [e for e in metrics or [] if isinstance(e, dict)]
    out = []
    oom = check_oom(error)
    if oom:
        out.append(oom)
    nan = check_nan(metrics, learning_rate)
    if nan:
        out.append(nan)
    else:
        boom = check_exploding(metrics, learning_rate)
        if boom:
            out.append(boom)
        else:
            flat = check_flat(metrics, learning_rate, method)
            if flat:
                out.append(flat)
    over = check_overfitting(metrics)
    if over:
        out.append(over)
    return out


def findings_for(metrics: list[dict], error: Any, cfg=None) -> list[Finding]:
    """check() with the learning rate and method from a run's config (None: unknown)."""
    lr = cfg.training.learning_rate if cfg else None
    method = cfg.method.method if cfg else "lora"
    return check(metrics, error, learning_rate=lr, method=method)
