"""Evaluation results as pandas tables, plotly figures and CSV files, for the Compare tab and export.

Figures are built here (plotly is fine outside studio/ui) so the tab only puts them in a `gr.Plot`.
Axis titles and legends come from the message catalog, in `lang`.
"""

from __future__ import annotations

from pathlib import Path

from studio.evaluate import votes as votes_mod
from studio.evaluate.checks import read_eval
from studio.evaluate.tally import rating_summary, ratings_table, tally, tally_by_voter, tally_table
from studio.messages import say

COLORS = {"base": "#9aa5b1", "finetuned": "#2563eb"}
SCORE_KEYS = ("exact_match", "contains", "rouge_l", "bleu")


class _Labels:
    """Chart labels by short name (`eval.chart.<name>` in the catalog), in one language."""

    def __init__(self, lang: str):
        self.lang = lang

    def __getitem__(self, name: str) -> str:
        return say(f"eval.chart.{name}", self.lang)


def _t(lang: str) -> _Labels:
    return _Labels(lang)


# ---- tables -------------------------------------------------------------------------------------
def metrics_table(result: dict):
    """One row per metric: base, fine-tuned, change."""
    import pandas as pd

    rows = []
    for key in (*SCORE_KEYS, "perplexity"):
        b, f = result.get("base", {}).get(key), result.get("finetuned", {}).get(key)
        rows.append({"metric": key, "base": b, "finetuned": f,
                     "change": (f - b) if isinstance(b, (int, float)) and isinstance(f, (int, float)) else None})
    return pd.DataFrame(rows)


def rows_table(result: dict):
    import pandas as pd

    return pd.DataFrame(result.get("rows", []))


def consistency_table(result: dict):
    import pandas as pd

    rows = []
    for item in result.get("prompts", []):
        for which in ("base", "finetuned"):
            r = item[which]
            rows.append({"prompt": item["prompt"], "model": which, "mean_rouge_l": r["mean_rouge_l"],
                         "identical_pairs": r["identical_pairs"], "majority_share": r["majority_share"],
                         "answers": " | ".join(r["answers"])})
    return pd.DataFrame(rows, columns=["prompt", "model", "mean_rouge_l", "identical_pairs", "majority_share", "answers"])


def edge_case_table(result: dict):
    import pandas as pd

    return pd.DataFrame(result.get("items", []), columns=["prompt", "base", "finetuned"])


def votes_table(records: list[dict]):
    import pandas as pd

    cols = ["time", "kind", "voter", "prompt", "answer_a", "answer_b", "side_a", "side_b", "vote", "winner",
            "rating_base", "rating_finetuned"]
    rows = [{"time": r.get("time"), "kind": r.get("kind", "vote"), "voter": r.get("voter"), "prompt": r.get("prompt"),
             "answer_a": r.get("answer_a"), "answer_b": r.get("answer_b"),
             "side_a": (r.get("sides") or {}).get("A"), "side_b": (r.get("sides") or {}).get("B"),
             "vote": r.get("vote"), "winner": r.get("winner"),
             "rating_base": (r.get("scores") or {}).get("base"),
             "rating_finetuned": (r.get("scores") or {}).get("finetuned")} for r in records]
    return pd.DataFrame(rows, columns=cols)


# ---- figures ------------------------------------------------------------------------------------
def metrics_figure(result: dict, lang: str = "en"):
    """Scores (exact match, contains, ROUGE-L as %, BLEU 0-100) beside perplexity, base vs fine-tuned."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    t = _t(lang)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.72, 0.28], subplot_titles=(t["scores"], t["perplexity"]))
    for which in ("base", "finetuned"):
        m = result.get(which, {})
        ys = [(m.get(k) or 0) * (1 if k == "bleu" else 100) for k in SCORE_KEYS]
        fig.add_trace(go.Bar(name=t[which], x=[t[k] for k in SCORE_KEYS], y=ys, marker_color=COLORS[which],
                             text=[f"{y:.1f}" for y in ys], textposition="outside", legendgroup=which), 1, 1)
        ppl = m.get("perplexity")
        fig.add_trace(go.Bar(name=t[which], x=[t[which]], y=[ppl or 0], marker_color=COLORS[which],
                             text=[f"{ppl:.2f}" if ppl else "-"], textposition="outside", legendgroup=which,
                             showlegend=False), 1, 2)
    fig.update_layout(barmode="group", height=380, margin=dict(t=50, b=30, l=40, r=20))
    fig.update_yaxes(range=[0, 110], row=1, col=1)
    return fig


def consistency_figure(result: dict, lang: str = "en"):
    import plotly.graph_objects as go

    t = _t(lang)
    prompts = result.get("prompts", [])
    labels = [(p["prompt"][:40] + "…") if len(p["prompt"]) > 40 else p["prompt"] for p in prompts]
    fig = go.Figure()
    for which in ("base", "finetuned"):
        fig.add_trace(go.Bar(name=t[which], x=labels, y=[100 * p[which]["mean_rouge_l"] for p in prompts],
                             marker_color=COLORS[which]))
    fig.update_layout(barmode="group", title=t["agreement"], height=360, yaxis=dict(range=[0, 105]),
                      margin=dict(t=50, b=30, l=40, r=20))
    return fig


def tally_figure(records: list[dict], lang: str = "en"):
    """Stacked bars of the votes, everyone first then each voter; the title is the plain sentence."""
    import plotly.graph_objects as go

    t = _t(lang)
    votes = [r for r in records if r.get("kind", "vote") == "vote"]
    overall = tally(votes)
    groups = [(t["all"], overall)] + list(tally_by_voter(votes).items())
    names = [g for g, _ in groups]
    fig = go.Figure()
    for attr, label, color in (("finetuned_wins", t["ft_wins"], COLORS["finetuned"]), ("ties", t["ties"], "#d1d5db"),
                               ("both_bad", t["both_bad"], "#f59e0b"), ("base_wins", t["base_wins"], COLORS["base"])):
        fig.add_trace(go.Bar(name=label, y=names, x=[getattr(tl, attr) for _, tl in groups], orientation="h",
                             marker_color=color))
    fig.update_layout(barmode="stack", title=dict(text=overall.sentence(lang), font=dict(size=13)),
                      xaxis_title=t["votes"], height=200 + 30 * len(groups), margin=dict(t=60, b=30, l=80, r=20),
                      yaxis=dict(autorange="reversed"))
    return fig


def ratings_figure(records: list[dict], lang: str = "en"):
    import plotly.graph_objects as go

    t = _t(lang)
    s = rating_summary(records)
    fig = go.Figure()
    for which in ("base", "finetuned"):
        m = s.means.get(which)
        if not m:
            continue
        fig.add_trace(go.Bar(name=t[which], x=[t[which]], y=[m["mean"]], marker_color=COLORS[which],
                             error_y=dict(type="data", symmetric=False, array=[m["ci_high"] - m["mean"]],
                                          arrayminus=[m["mean"] - m["ci_low"]])))
    fig.update_layout(title=dict(text=s.sentence(lang), font=dict(size=13)), yaxis=dict(range=[0, 5.5], title=t["mean"]),
                      height=360, showlegend=False, margin=dict(t=60, b=30, l=40, r=20))
    return fig


# ---- export --------------------------------------------------------------------------------------
def export_csv(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Everything the Compare tab shows, as CSV files (UTF-8 with BOM so Excel opens Chinese correctly).
    Default folder: RUN/eval_export/. Returns the files written."""
    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "eval_export"
    out.mkdir(parents=True, exist_ok=True)
    ev = read_eval(run_dir)
    records = votes_mod.read_records(run_dir / votes_mod.VOTES_FILE)
    tables = {}
    if "base" in ev:
        tables["metrics.csv"] = metrics_table(ev)
        tables["rows.csv"] = rows_table(ev)
    if ev.get("consistency"):
        tables["consistency.csv"] = consistency_table(ev["consistency"])
    if ev.get("edge_cases"):
        tables["edge_cases.csv"] = edge_case_table(ev["edge_cases"])
    if records:
        tables["votes.csv"] = votes_table(records)
        tables["tally.csv"] = tally_table([r for r in records if r.get("kind", "vote") == "vote"])
        tables["ratings.csv"] = ratings_table(records)
    written = []
    for name, frame in tables.items():
        path = out / name
        frame.to_csv(path, index=False, encoding="utf-8-sig")
        written.append(path)
    return written
