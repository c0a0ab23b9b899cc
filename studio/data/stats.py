"""Before / after statistics, the language mix and the token-length histogram (a plotly Figure)."""

from __future__ import annotations

import numpy as np

from studio.data.rows import Row, texts
from studio.messages import say

def describe(values) -> dict:
    """mean / median / p95 / max / total of a list of lengths (zeros for an empty list)."""
    a = np.asarray(values, dtype=np.int64)
    if a.size == 0:
        return {"mean": 0.0, "median": 0.0, "p95": 0.0, "max": 0, "total": 0}
    return {"mean": round(float(a.mean()), 1), "median": float(np.median(a)),
            "p95": round(float(np.percentile(a, 95)), 1), "max": int(a.max()), "total": int(a.sum())}


def char_lengths(rows: list[Row]) -> list[int]:
    return [sum(map(len, texts(r.data))) for r in rows]


def summarize(rows: list[Row], tokens: list[int] | None = None) -> dict:
    """{"rows", "chars": describe(...), "tokens": describe(...) or None}. `tokens` may be a sample:
    its size is then given as tokens["sampled_rows"]."""
    out = {"rows": len(rows), "chars": describe(char_lengths(rows)), "tokens": None}
    if tokens is not None:
        out["tokens"] = describe(tokens)
        if len(tokens) < len(rows):
            out["tokens"]["sampled_rows"] = len(tokens)
    return out


def language_mix(rows: list[Row], chunk: int = 20000) -> dict:
    """Share of letters that are Chinese (Han), English (basic Latin) or other scripts. Digits,
    punctuation, symbols and spaces do not count either way."""
    zh = en = other = 0
    for start in range(0, len(rows), chunk):
        s = "".join(t for r in rows[start:start + chunk] for t in texts(r.data))
        c = np.frombuffer(s.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        han = ((c >= 0x4E00) & (c <= 0x9FFF)) | ((c >= 0x3400) & (c <= 0x4DBF)) | \
              ((c >= 0xF900) & (c <= 0xFAFF)) | ((c >= 0x20000) & (c <= 0x2FFFF))
        latin = ((c >= 0x41) & (c <= 0x5A)) | ((c >= 0x61) & (c <= 0x7A))
        # Other letters: non-ASCII outside the punctuation, symbol, private-use and emoji blocks.
        non_letter = (c < 0xC0) | ((c >= 0x2000) & (c <= 0x2BFF)) | ((c >= 0x3000) & (c <= 0x303F)) | \
                     ((c >= 0xFE30) & (c <= 0xFE4F)) | ((c >= 0xFF00) & (c <= 0xFF20)) | \
                     ((c >= 0xE000) & (c <= 0xF8FF)) | ((c >= 0x1F000) & (c < 0x20000)) | (c == 0xFFFD)
        zh += int(han.sum())
        en += int(latin.sum())
        other += int((~han & ~non_letter).sum())
    total = zh + en + other
    if total == 0:
        return {"zh": 0.0, "en": 0.0, "other": 0.0}
    return {"zh": round(zh / total, 4), "en": round(en / total, 4), "other": round(other / total, 4)}


def histogram(before: list[int], after: list[int] | None = None, bins: int = 40) -> dict:
    """Shared bin edges and counts, small enough for a JSON report whatever the row count."""
    both = np.concatenate([np.asarray(before, dtype=np.int64), np.asarray(after or [], dtype=np.int64)])
    if both.size == 0:
        return {"edges": [], "before": [], "after": []}
    edges = np.histogram_bin_edges(both, bins=bins)
    out = {"edges": [round(float(e), 1) for e in edges], "before": np.histogram(before, edges)[0].tolist()}
    out["after"] = np.histogram(after, edges)[0].tolist() if after is not None else []
    return out


def token_histogram(before: list[int], after: list[int] | None = None, cutoff: int | None = None,
                    lang: str = "en", bins: int = 40):
    """A plotly Figure of row lengths in tokens, before and after cleaning, with the cutoff marked.
    Bars are pre-binned so a million rows still make a small figure for the browser."""
    import plotly.graph_objects as go

    words = {k: say(f"data.plot.{k}", lang) for k in ("title", "x", "y", "before", "after", "cutoff")}
    h = histogram(before, after, bins)
    edges = np.asarray(h["edges"])
    fig = go.Figure()
    if edges.size:
        centers, widths = (edges[:-1] + edges[1:]) / 2, np.diff(edges)
        fig.add_bar(x=centers, y=h["before"], width=widths, name=words["before"], opacity=0.45)
        if h["after"]:
            fig.add_bar(x=centers, y=h["after"], width=widths, name=words["after"], opacity=0.75)
    if cutoff:
        fig.add_vline(x=cutoff, line_dash="dash", line_color="red", annotation_text=f"{words['cutoff']} {cutoff}")
    fig.update_layout(title=words["title"], xaxis_title=words["x"], yaxis_title=words["y"], barmode="overlay",
                      bargap=0, legend=dict(orientation="h", y=1.1), margin=dict(l=40, r=20, t=60, b=40))
    return fig
