"""What the Compare tab shows, as plain values in the reader's language: the tally and ratings (tables,
sentences, figures), the automatic checks' results, and one line for an error. No gradio here;
studio/ui/compare_tab.py lays these out. Table headers and every sentence come from the message catalog."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from studio.errors import StudioError, error_text
from studio.evaluate import report
from studio.evaluate import votes as votes_mod
from studio.evaluate.checks import read_eval, suggested_rows
from studio.device_arbiter import DeviceBusy
from studio.evaluate.runs import checked_run
from studio.evaluate.tally import Tally, rating_summary, tally, tally_by_voter
from studio.messages import Msg, say
from studio.units import Seconds


def message(e: BaseException, lang: str) -> str:
    """An exception as one line for the page: the engine's own polite sentence when it has one."""
    if isinstance(e, DeviceBusy):
        return "⏳ " + error_text(e, lang)
    if isinstance(e, StudioError):
        return "⚠️ " + error_text(e, lang)
    return "⚠️ " + say("compare.failed", lang, error=f"{type(e).__name__}: {e}")


def model_name(which: str, lang: str) -> str:
    return say(f"compare.model.{which}", lang)


def pct(x) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _tally_row(name: str, tl: Tally, lang: str) -> dict:
    low, high = tl.interval
    return {say("compare.col.voter", lang): name, say("compare.col.ft_wins", lang): tl.finetuned_wins,
            say("compare.col.base_wins", lang): tl.base_wins, say("compare.col.ties", lang): tl.ties,
            say("compare.col.both_bad", lang): tl.both_bad, say("compare.col.win_rate", lang): pct(tl.win_rate),
            say("compare.col.ci", lang): f"{100 * low:.0f}-{100 * high:.0f}%" if tl.decided else "-"}


def voter_label(voter: str, me: str, lang: str) -> str:
    return f"{voter} ({say('compare.you', lang)})" if voter == me else voter


def tally_view(run_dir: str | Path | None, voter_id: str = "", lang: str = "en") -> dict:
    """{"tally_md", "tally_plot", "tally_table", "ratings_md", "ratings_plot", "ratings_table"} for the run's
    votes.jsonl: win rate with its Wilson interval and sentence, overall and per voter; mean ratings."""
    records = votes_mod.read_records(Path(run_dir) / votes_mod.VOTES_FILE) if run_dir else []
    votes = [r for r in records if r.get("kind", "vote") == "vote"]
    overall, by_voter = tally(votes), tally_by_voter(votes)
    lines = [say("compare.overall", lang, sentence=overall.sentence(lang))]
    mine = by_voter.get(voter_id)
    lines.append(say("compare.yours", lang, voter=voter_id, sentence=mine.sentence(lang)) if mine
                 else say("compare.yours.none", lang, voter=voter_id or "-"))
    table = pd.DataFrame([_tally_row(say("compare.all_voters", lang), overall, lang)]
                         + [_tally_row(voter_label(v, voter_id, lang), tl, lang) for v, tl in by_voter.items()])
    fig = None
    if votes:
        fig = report.tally_figure(votes, lang)
        fig.update_layout(title=None, margin=dict(t=20))  # its title is the sentence shown just above
        fig.update_xaxes(dtick=max(1, -(-overall.total // 10)))  # whole votes, not 0.2 of one
        for trace in fig.data:  # mark this session's own bar
            trace.y = [voter_label(v, voter_id, lang) for v in trace.y]

    summary = rating_summary(records)
    rt = report.ratings_table(records)
    ratings = pd.DataFrame({
        say("compare.col.voter", lang): [say("compare.all_voters", lang) if v == "all" else voter_label(v, voter_id, lang)
                                          for v in rt["voter"]],
        say("compare.col.model", lang): [model_name(m, lang) for m in rt["model"]],
        say("compare.col.mean", lang): [f"{m:.2f}" for m in rt["mean"]],
        say("compare.col.ci", lang): [f"{lo:.1f}-{hi:.1f}" if pd.notna(lo) and n and n > 1 else "-"
                                       for lo, hi, n in zip(rt["ci_low"], rt["ci_high"], rt["n"])],
        say("compare.col.n", lang): [int(n) if pd.notna(n) else "" for n in rt["n"]],
    })
    return {"tally_md": "\n\n".join(lines), "tally_plot": fig, "tally_table": table,
            "ratings_md": summary.sentence(lang),
            "ratings_plot": _untitled(report.ratings_figure(records, lang)) if summary.n else None,
            "ratings_table": ratings if summary.n else None}


def _untitled(fig):
    fig.update_layout(title=None, margin=dict(t=20))  # its title is the sentence shown just above
    return fig


def _fmt_metric(key: str, v) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    if key == "perplexity":
        return f"{v:.2f}"
    if key == "bleu":
        return f"{v:.1f}"
    return f"{100 * v:.1f}%"


def metrics_view(result: dict, lang: str = "en") -> dict:
    """{"scores_md", "metrics_plot", "metrics_table", "rows_table"} for eval.json's metrics part."""
    if not result or "base" not in result:
        return {"scores_md": "", "metrics_plot": None, "metrics_table": None, "rows_table": None}
    mt = report.metrics_table(result)
    table = pd.DataFrame({
        say("compare.col.metric", lang): [say(f"compare.metric.{k}", lang) for k in mt["metric"]],
        say("compare.col.base", lang): [_fmt_metric(k, v) for k, v in zip(mt["metric"], mt["base"])],
        say("compare.col.finetuned", lang): [_fmt_metric(k, v) for k, v in zip(mt["metric"], mt["finetuned"])],
        say("compare.col.change", lang): [("+" if isinstance(c, (int, float)) and c > 0 else "") + _fmt_metric(k, c)
                                           for k, c in zip(mt["metric"], mt["change"])],
    })
    rows = pd.DataFrame([{say("compare.col.prompt", lang): r.get("prompt"),
                          say("compare.col.reference", lang): r.get("reference"),
                          say("compare.col.base_answer", lang): r.get("base"),
                          say("compare.col.ft_answer", lang): r.get("finetuned"),
                          say("compare.col.rouge", lang, model=Msg("compare.col.base")):
                              round(100 * (r.get("rouge_l_base") or 0), 1),
                          say("compare.col.rouge", lang, model=Msg("compare.col.finetuned")):
                              round(100 * (r.get("rouge_l_finetuned") or 0), 1)}
                         for r in result.get("rows", [])])
    b, f = result["base"], result["finetuned"]
    md = say("compare.scored", lang, n=result.get("n", len(result.get("rows", []))),
              **{f"{short}_{w}": _fmt_metric(key, m.get(key)) for short, key in
                 (("em", "exact_match"), ("rl", "rouge_l"), ("bl", "bleu"), ("pp", "perplexity"))
                 for w, m in (("b", b), ("f", f))})
    return {"scores_md": md, "metrics_plot": report.metrics_figure(result, lang), "metrics_table": table,
            "rows_table": rows}


def consistency_view(result: dict, lang: str = "en") -> dict:
    if not result or not result.get("prompts"):
        return {"consistency_md": "", "consistency_plot": None, "consistency_table": None}
    ct = report.consistency_table(result)
    table = pd.DataFrame({
        say("compare.col.prompt", lang): ct["prompt"],
        say("compare.col.model", lang): [model_name(m, lang) for m in ct["model"]],
        say("compare.col.agreement", lang): [f"{100 * v:.0f}%" for v in ct["mean_rouge_l"]],
        say("compare.col.identical", lang): [f"{100 * v:.0f}%" for v in ct["identical_pairs"]],
        say("compare.col.majority", lang): [f"{100 * v:.0f}%" for v in ct["majority_share"]],
        say("compare.col.answers", lang): ct["answers"],
    })
    md = say("compare.consistent", lang, prompts=len(result["prompts"]), n=result.get("n"),
              b=pct(result["base"]["mean_rouge_l"]), f=pct(result["finetuned"]["mean_rouge_l"]))
    return {"consistency_md": md, "consistency_plot": report.consistency_figure(result, lang),
            "consistency_table": table}


def edge_view(result: dict, lang: str = "en") -> dict:
    if not result or not result.get("items"):
        return {"edge_md": "", "edge_table": None}
    et = report.edge_case_table(result)
    table = pd.DataFrame({say("compare.col.prompt", lang): et["prompt"],
                          say("compare.col.base_answer", lang): et["base"],
                          say("compare.col.ft_answer", lang): et["finetuned"]})
    return {"edge_md": say("compare.edged", lang, n=len(et)), "edge_table": table}


def general_view(result: dict, lang: str = "en") -> dict:
    """{"general_md", "general_table"}: the general-knowledge check (eval.json's "general") in plain words."""
    from studio.evaluate.forgetting import verdict_msg

    verdict = verdict_msg(result)
    if verdict is None:
        return {"general_md": "", "general_table": None}
    keys = ["perplexity"] + sorted(k for k in result["base"] if k.startswith("perplexity_"))
    table = pd.DataFrame({
        say("compare.col.metric", lang): [say(f"export.card.general.{k}", lang) for k in keys],
        say("compare.col.base", lang): [_fmt_metric("perplexity", result["base"].get(k)) for k in keys],
        say("compare.col.finetuned", lang): [_fmt_metric("perplexity", result["finetuned"].get(k)) for k in keys],
    })
    return {"general_md": verdict.text(lang), "general_table": table}


def checks_view(run_dir: str | None, lang: str = "en") -> dict:
    """What eval.json already holds for the run, so results survive a refresh or a restart."""
    ev = {}
    if run_dir:
        try:
            ev = read_eval(checked_run(run_dir))
        except StudioError:
            ev = {}
    return {**metrics_view(ev, lang), **consistency_view(ev.get("consistency") or {}, lang),
            **edge_view(ev.get("edge_cases") or {}, lang), **general_view(ev.get("general") or {}, lang),
            **rows_choice(run_dir, lang), "progress": "", "checks_status": "", "files": None}


def rows_choice(run_dir: str | None, lang: str = "en", max_new_tokens: int = 128) -> dict:
    """How many rows the automatic checks score by default, and how long that takes here."""
    if not run_dir:
        return {"max_rows": 20, "rows_hint": ""}
    rows, seconds = suggested_rows(run_dir, max_new_tokens)
    hint = (say("compare.rows_hint", lang, rows=rows, time=Seconds(seconds)) if seconds is not None
            else say("compare.rows_hint_first", lang, rows=rows))
    return {"max_rows": rows, "rows_hint": hint}
