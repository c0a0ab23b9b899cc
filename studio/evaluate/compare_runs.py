"""Compare runs: two or more run folders side by side. Their loss curves overlaid, and one table of their
settings, duration, best validation loss and automatic-check results (eval.json), the best marked.

    facts = gather(run_dirs)            # one RunFacts per run, read from its folder
    table(facts, lang)                  # (headers, rows): one column per run, one row per setting or figure
    curves(facts, lang)                 # the overlaid loss curves, as a gr.LinePlot payload
    best_run(facts)                     # the index of the run with the lowest best validation loss

Plain values only: the Train tab shows them, tests read them, and the queue (studio.engine.queue) ends here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from studio import units
from studio.engine import runs
from studio.engine.best import best_eval
from studio.evaluate.checks import read_eval
from studio.messages import say

MAX_POINTS = 200  # training-loss points per run on the overlaid chart

# The table's rows: (key, which way is better: -1 lower, +1 higher, 0 not ranked). Settings first, then
# the figures; the best cell of a ranked row is marked, and the best run's column header too.
ROWS = (
    ("model", 0), ("method", 0), ("stage", 0), ("epochs", 0), ("learning_rate", 0), ("batch", 0),
    ("max_length", 0), ("lora_rank", 0), ("patience", 0), ("final_adapter", 0),
    ("status", 0), ("steps", 0), ("duration", -1), ("tokens_per_second", +1),
    ("best_eval_loss", -1), ("best_step", 0), ("last_eval_loss", -1), ("train_loss", 0),
    ("exact_match", +1), ("rouge_l", +1), ("bleu", +1), ("perplexity", -1), ("consistency", +1),
)
MARK = "★"


@dataclass
class RunFacts:
    name: str
    run_dir: str
    settings: dict = field(default_factory=dict)  # model, method, stage, epochs, learning_rate, ...
    summary: dict = field(default_factory=dict)
    metrics: list = field(default_factory=list)
    checks: dict = field(default_factory=dict)  # eval.json's fine-tuned figures: exact_match, rouge_l, ...

    @property
    def best(self) -> tuple[int, float] | None:
        """(step, validation loss) of the lowest validation loss: summary.json's, else from metrics.jsonl."""
        s = self.summary
        if isinstance(s.get("best_eval_loss"), (int, float)) and s.get("best_step") is not None:
            return int(s["best_step"]), float(s["best_eval_loss"])
        return best_eval(self.metrics)

    @property
    def model(self) -> str:
        return Path(str(self.settings.get("model") or self.summary.get("model") or "?")).name


def _checks(run_dir: Path) -> dict:
    """The fine-tuned model's automatic-check figures from eval.json (studio.evaluate.checks writes it)."""
    data = read_eval(run_dir)
    tuned = data.get("finetuned") if isinstance(data.get("finetuned"), dict) else {}
    out = {k: tuned.get(k) for k in ("exact_match", "rouge_l", "bleu", "perplexity") if _num(tuned.get(k))}
    consistency = (data.get("consistency") or {}).get("finetuned") if isinstance(data.get("consistency"), dict) else None
    if isinstance(consistency, dict) and _num(consistency.get("mean_rouge_l")):
        out["consistency"] = consistency["mean_rouge_l"]
    return out


def facts_of(run_dir: str | Path) -> RunFacts:
    rd = Path(run_dir)
    settings: dict = {}
    try:
        cfg = runs.load_run_config(rd)
        t, m = cfg.training, cfg.method
        settings = {"model": cfg.model.name, "method": m.method, "stage": t.stage, "epochs": t.epochs,
                    "learning_rate": t.learning_rate, "batch": f"{t.batch_size} × {t.grad_accum}",
                    "max_length": t.max_length, "lora_rank": m.lora_rank if m.method != "full" else None,
                    "patience": t.early_stopping_patience, "final_adapter": t.final_adapter,
                    "max_steps": t.max_steps}
    except Exception:  # a folder without a readable config still shows its figures
        pass
    return RunFacts(name=rd.name, run_dir=str(rd), settings=settings, summary=runs.read_summary(rd),
                    metrics=runs.read_metrics(rd), checks=_checks(rd))


def gather(run_dirs: list) -> list[RunFacts]:
    return [facts_of(rd) for rd in run_dirs if rd]


def best_run(facts: list[RunFacts]) -> int | None:
    """The run with the lowest best validation loss (None when no run has a validation loss)."""
    scored = [(f.best[1], i) for i, f in enumerate(facts) if f.best is not None]
    return min(scored)[1] if scored else None


def label(facts: list[RunFacts], i: int) -> str:
    """A short name for the chart's legend and the table's header: its number and its model."""
    return f"{i + 1}. {facts[i].model}"


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def values(f: RunFacts) -> dict:
    """Each table row's raw value for one run (numbers stay numbers, for ranking)."""
    s, best = f.summary, f.best
    status = runs.run_status(f.run_dir)
    return {**f.settings, "status": status, "steps": s.get("steps"), "duration": s.get("duration_s"),
            "tokens_per_second": s.get("tokens_per_second"), "best_eval_loss": best[1] if best else None,
            "best_step": best[0] if best else None, "last_eval_loss": s.get("eval_loss"),
            "train_loss": s.get("train_loss"), **f.checks}


def _shown(key: str, v, lang: str) -> str:
    if v is None or v == "":
        return "—"
    if key == "duration":
        return units.seconds_text(v, lang)
    if key == "status":
        return say(f"train.state.{v}", lang)
    if key == "final_adapter":
        return say(f"train.final_adapter.{v}", lang)
    if key == "method":
        return str(v).upper()
    if key == "learning_rate":
        return f"{v:g}"
    if key in ("exact_match", "rouge_l", "bleu", "consistency") and _num(v):
        return f"{100 * v:.1f}%"
    if key == "tokens_per_second" and _num(v):
        return f"{v:,.0f}"
    if key in ("best_eval_loss", "last_eval_loss", "train_loss", "perplexity") and _num(v):
        return f"{v:.4f}"
    return f"{v:g}" if _num(v) else str(v)


def table(facts: list[RunFacts], lang: str = "en") -> tuple[list[str], list[list[str]]]:
    """(headers, rows): the first column names the setting or figure, then one column per run. The best
    run's header and the best cell of each ranked row carry ★. Rows no run has a value for are left out."""
    vals = [values(f) for f in facts]
    best = best_run(facts)
    headers = [say("runs.compare.what", lang)]
    headers += [f"{MARK} {label(facts, i)}" if i == best else label(facts, i) for i in range(len(facts))]
    rows = [[say("runs.compare.row.run", lang)] + [f.name for f in facts]]
    for key, better in ROWS:
        raw = [v.get(key) for v in vals]
        if all(x is None or x == "" for x in raw):
            continue
        shown = [_shown(key, x, lang) for x in raw]
        ranked = [(x * -better, i) for i, x in enumerate(raw) if better and _num(x)]
        if len(ranked) > 1 and len({x for x, _ in ranked}) > 1:
            top = min(ranked)[0]
            shown = [f"{MARK} {s}" if better and _num(raw[i]) and raw[i] * -better == top else s
                     for i, s in enumerate(shown)]
        rows.append([say(f"runs.compare.row.{key}", lang)] + shown)
    return headers, rows


def curves(facts: list[RunFacts], lang: str = "en") -> dict:
    """The loss curves of every run on one chart: each run's training loss and its validation loss, as the
    payload a gr.LinePlot takes (x "step", y "loss", colour "series")."""
    rows = []
    train_word, eval_word = say("train.series.training", lang), say("train.series.validation", lang)
    for i, f in enumerate(facts):
        name = label(facts, i)
        train = [[e.get("step", 0), float(e["loss"]), f"{name} · {train_word}"] for e in f.metrics if _num(e.get("loss"))]
        if len(train) > MAX_POINTS:
            stride = math.ceil(len(train) / MAX_POINTS)
            train = train[::stride] + ([train[-1]] if (len(train) - 1) % stride else [])
        evals = [[e.get("step", 0), float(e["eval_loss"]), f"{name} · {eval_word}"]
                 for e in f.metrics if _num(e.get("eval_loss"))]
        rows += train + evals
    rows.sort(key=lambda r: (r[2], r[0]))
    return {"columns": ["step", "loss", "series"], "data": rows,
            "datatypes": {"step": "quantitative", "loss": "quantitative", "series": "nominal"}, "mark": "line"}


def summary_line(facts: list[RunFacts], lang: str = "en") -> str:
    """One sentence: which run kept the lowest validation loss, or that none had a validation split."""
    best = best_run(facts)
    if best is None:
        return say("runs.compare.no_validation", lang)
    step, loss = facts[best].best
    return say("runs.compare.best", lang, run=label(facts, best), loss=loss, step=step)
