"""Metric events -> what the Train tab's gr.LinePlots draw.

Each chart gets the payload gr.LinePlot sends to the browser ({"columns", "data", "datatypes",
"mark"}), built straight from the events: LinePlot passes a dict through untouched, so the pandas
round trip (a DataFrame per chart, then `to_json` and back) is skipped on every live update.
`frames()` gives the same series as DataFrames, for reading and tests.

Why gr.LinePlot and not plotly: a LinePlot update carries only the data (Vega-Lite draws it in the
browser), while a plotly figure carries its layout and template on every update: about 4x the server
time and 2x the bytes (benchmarks/ui_overhead.py measures both).
"""

from __future__ import annotations

import dataclasses
import math

import pandas as pd

from studio.engine.best import best_eval
from studio.messages import say

GiB = 2**30
MAX_POINTS = 500  # per loss series: a 10,000-step run still redraws in milliseconds
SMALL_POINTS = 120  # per series of the four small charts (each point costs server time per viewer)

# (chart, metric key, y column, scale)
SERIES = (
    ("lr", "learning_rate", "learning_rate", 1.0),
    ("grad", "grad_norm", "grad_norm", 1.0),
    ("speed", "tokens_per_second", "tokens_per_second", 1.0),
    ("memory", "memory_bytes", "memory_gib", 1.0 / GiB),
)
# The loss series are named in the reader's language. The browser fixes the chart's colours from the
# series names of its first value, so the empty chart is seeded with every name (`initial_frames`), and
# the Train tab sends it again, with its colour map, in the reader's language when the page opens.
# The third marks the lowest validation loss: the weights a run keeps unless told to keep the last.
LOSS_COLORS = ("#2563eb", "#dc2626", "#15803d")


def _ok(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def loss_names(lang: str = "en") -> tuple[str, str, str]:
    return say("train.series.training", lang), say("train.series.validation", lang), say("train.series.best", lang)


def loss_color_map(lang: str = "en") -> dict[str, str]:
    return dict(zip(loss_names(lang), LOSS_COLORS))


# Each chart's axis titles (catalog ids), written in the reader's language when the page opens, and its
# y labels' d3 format: a few significant digits, a learning rate in scientific notation.
AXES = {"loss": ("train.axis.loss", "train.axis.series", ".3~g"), "lr": ("train.axis.lr", None, ".1e"),
        "grad": ("train.axis.grad", None, ".3~g"), "speed": ("train.axis.speed", None, ",.0f"),
        "memory": ("train.axis.memory", None, ".1f")}


def titles(chart: str, lang: str = "en") -> dict:
    """Axis titles and label formats of `chart` in `lang`, for gr.LinePlot: steps are whole numbers."""
    y, color, y_format = AXES[chart]
    out = {"x_title": say("train.axis.step", lang), "y_title": say(y, lang), "x_axis_format": "d",
           "y_axis_format": y_format}
    if color:
        out["color_title"] = say(color, lang)
    return out


def thin(rows: list, limit: int = MAX_POINTS) -> list:
    """At most `limit` points, evenly spaced, always keeping the latest."""
    if len(rows) <= limit:
        return rows
    stride = math.ceil(len(rows) / limit)
    kept = rows[::stride]
    return kept if kept[-1] is rows[-1] else kept + [rows[-1]]


def series(metrics: list[dict], lang: str = "en") -> dict[str, tuple[list[str], list[list]]]:
    """{chart: (columns, rows)}. Non-finite values are left out (the health panel reports them)."""
    train_name, eval_name, best_name = loss_names(lang)
    train = [[e.get("step", 0), float(e["loss"]), train_name] for e in metrics if _ok(e.get("loss"))]
    # The validation loss is a curve through its evaluations, each at its own step (the chart's hover
    # shows each one). A single evaluation is drawn as a short level dash: a line through one point
    # draws nothing.
    evals = [[e.get("step", 0), float(e["eval_loss"]), eval_name] for e in metrics if _ok(e.get("eval_loss"))]
    if len(evals) == 1:
        (s, v, _), half = evals[0], max(0.25, 0.015 * max([e.get("step", 0) for e in metrics] or [0]))
        evals = [[round(max(0, s - half), 3), v, eval_name], [round(s + half, 3), v, eval_name]]
    out = {"loss": (["step", "loss", "series"], sorted(thin(train) + evals + _best_mark(metrics, train, evals, best_name),
                                                       key=lambda r: r[0]))}
    for name, key, col, scale in SERIES:
        rows = [[e.get("step", 0), float(e[key]) * scale] for e in metrics if _ok(e.get(key))]
        if key == "tokens_per_second":
            rows = [r for r in rows if r[1] > 0]
        if key == "memory_bytes":  # sampled at every event, several per step: keep the step's last
            rows = list({r[0]: r for r in rows}.values())
        out[name] = (["step", col], thin(rows, SMALL_POINTS))
    return out


def _best_mark(metrics: list[dict], train: list, evals: list, name: str) -> list[list]:
    """The best validation point as a vertical tick across the loss range at its step (a line chart draws
    no lone point): where the kept weights come from."""
    best = best_eval(metrics)
    if best is None:
        return []
    step, loss = best
    values = [r[1] for r in train + evals]
    low, high = min(values + [loss]), max(values + [loss])
    pad = 0.05 * (high - low or abs(loss) or 1.0)
    return [[step, round(low - pad, 6), name], [step, round(high + pad, 6), name]]


def payloads(metrics: list[dict], lang: str = "en") -> dict[str, dict]:
    """{chart: the value gr.LinePlot sends to the browser}."""
    out = {}
    for name, (cols, rows) in series(metrics, lang).items():
        types = {c: ("nominal" if c == "series" else "quantitative") for c in cols}
        out[name] = {"columns": cols, "data": rows, "datatypes": types, "mark": _mark(cols, rows)}
    return out


def _mark(cols: list[str], rows: list[list]) -> str:
    """"line", or "point" while every series has a single point (a line through one point draws nothing)."""
    if "series" not in cols:
        return "line" if len(rows) > 1 else "point"
    counts: dict = {}
    for r in rows:
        counts[r[-1]] = counts.get(r[-1], 0) + 1
    return "line" if any(n > 1 for n in counts.values()) else "point"


@dataclasses.dataclass(frozen=True)
class Passthrough:
    """A LinePlot payload as one opaque value, for events with postprocess=False. Gradio still walks every
    list and dict of such an event's outputs looking for files to move into its cache: for five charts
    of a few hundred points that walk was most of a live update's server time, paid once per viewer. A
    dataclass is not walked, and is sent as the same JSON object."""

    columns: list
    data: list
    datatypes: dict
    mark: str


def passthrough(payload: dict) -> Passthrough:
    return Passthrough(**payload)


def initial_frames(lang: str = "en") -> dict[str, pd.DataFrame]:
    """The charts' values before any run: empty, except blank rows that name the loss series."""
    out = frames([], lang)
    names = loss_names(lang)
    out["loss"] = pd.DataFrame({"step": pd.Series([0] * len(names), dtype="float64"),
                                "loss": pd.Series([math.nan] * len(names), dtype="float64"),
                                "series": list(names)})
    return out


def frames(metrics: list[dict], lang: str = "en") -> dict[str, pd.DataFrame]:
    """The same series as typed DataFrames (numeric columns stay numeric even when empty: LinePlot picks
    each axis' scale from the dtypes, and an empty object column would make it categorical)."""
    out = {}
    for name, (cols, rows) in series(metrics, lang).items():
        df = pd.DataFrame(rows, columns=cols)
        for c in cols:
            if c != "series":
                df[c] = df[c].astype("float64")
        out[name] = df
    return out
