"""The estimate as a chart (the Model tab) and as text (the CLI)."""

from __future__ import annotations

from studio.memory.estimate import FIT_SHARE, GiB, Estimate
from studio.messages import say

_COLORS = {"weights": "#4C78A8", "trainable": "#72B7B2", "gradients": "#F58518", "optimizer": "#E45756",
           "activations": "#54A24B", "logits": "#EECA3B", "overhead": "#9D755D"}


def part_name(part: str, lang: str = "en") -> str:
    return say(f"memory.part.{part}", lang)


def verdict_word(verdict: str | None, lang: str = "en") -> str:
    return say(f"memory.verdict.{verdict.replace(' ', '_')}", lang) if verdict else ""


def breakdown_figure(est: Estimate, lang: str = "en", title: str | None = None):
    """A plotly stacked horizontal bar of the breakdown, with the device's capacity and its 90% line."""
    import plotly.graph_objects as go

    fig = go.Figure()
    row = say("memory.chart.estimate", lang)
    for key, value in est.breakdown.items():
        if value <= 0:
            continue
        label = part_name(key, lang)
        fig.add_trace(go.Bar(y=[row], x=[value / GiB], name=label, orientation="h", marker_color=_COLORS.get(key),
                             hovertemplate=f"{label}: %{{x:.2f}} GiB<extra></extra>"))
    if est.capacity_bytes:
        cap = est.capacity_bytes / GiB
        fig.add_vline(x=cap, line_color="black", line_width=2, annotation_text=say("memory.chart.device", lang, gib=cap),
                      annotation_position="top")
        fig.add_vline(x=cap * FIT_SHARE, line_dash="dash", line_color="gray",
                      annotation_text="90%", annotation_position="bottom")
    fig.update_layout(barmode="stack", height=220, margin=dict(l=10, r=10, t=40, b=10),
                      title=title or say("memory.chart.title", lang, gib=est.total_gib),
                      xaxis_title="GiB", legend=dict(orientation="h", y=-0.4))
    return fig


def format_bytes(n: float) -> str:
    if n >= GiB:
        return f"{n / GiB:.1f} GiB"
    return f"{n / 1024**2:.0f} MiB"


def fmt_table(est: Estimate, lang: str = "en") -> str:
    """The breakdown as plain text lines (CLI)."""
    lines = [f"  {part_name(k, lang):<30} {format_bytes(v):>10}" for k, v in est.breakdown.items() if v]
    lines.append(f"  {part_name('total', lang):<30} {format_bytes(est.total_bytes):>10}")
    return "\n".join(lines)
